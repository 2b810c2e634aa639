"""Training loops: mini-batches, a progress bar, per-epoch history and checkpoints, exact resuming,
and a guard that stops a run whose loss stops being a finite number.

A model trained here has ``make_optimizers(lr)`` (a dict of named optimizers) and
``train_step(batch, optimizers)`` (one update, returning a dict of Python floats); the VAE, GAN and
VAE-GAN in :mod:`minigen.models` do.

Reproducibility.  Epoch ``e`` of a run with seed ``s`` reseeds the backend generator with a number
derived from (s, e) and shuffles with the permutation of (s, e).  So a run stopped after any epoch
and resumed from its checkpoint computes exactly what the uninterrupted run would have.
"""

import json
import math
import os
import time

from tqdm import tqdm  # the plain bar: tqdm.auto needs ipywidgets in notebooks

from . import backend as B
from .autograd import Tensor
from .data import DataLoader, binarize as binarize_batch
from .io import BadFileError, read_json, strict_json, write_json

__all__ = ["NonFiniteLoss", "fit", "save_checkpoint", "load_checkpoint", "read_history",
           "write_json", "read_json", "epoch_seed", "set_learning_rate"]

CHECKPOINT = "checkpoint.npz"
HISTORY = "history.json"
DURABLE_EVERY = 60.0    # seconds between checkpoints forced to the disk (fsync), and the last one


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss; the message says where and what to try."""


def epoch_seed(seed, epoch):
    """The generator seed for epoch ``epoch`` of a run seeded with ``seed``."""
    return (seed * 1_000_003 + epoch) % 2 ** 32


def save_checkpoint(path, model, optimizers, epoch, history=None, fsync=True):
    """Model parameters, every optimizer's state, the number of finished epochs and (when given)
    the history of those epochs, in one .npz, written atomically: a crash leaves the previous
    checkpoint as it was.  The history rides along so that a resumed run has it exactly, whatever
    became of history.json.  ``fsync=False``: see :func:`minigen.io.atomic_write`."""
    arrays = {"epoch": Tensor(epoch, dtype="int64").data}
    arrays.update({f"model.{k}": v for k, v in model.state_dict().items()})
    for name, optimizer in optimizers.items():
        arrays.update({f"optim.{name}.{k}": v for k, v in optimizer.state_dict().items()})
    if history is not None:   # JSON text as bytes: .npz holds no strings without pickling
        text = json.dumps(strict_json(history), allow_nan=False).encode()
        arrays["history"] = B.host_uint8(text, 0, (len(text),))
    B.save_arrays(path, arrays, fsync=fsync)


def load_checkpoint(path, model, optimizers, history=False):
    """Restore what :func:`save_checkpoint` wrote; returns the number of finished epochs, and with
    ``history=True`` ``(epochs, records)`` (records: None for a checkpoint written without them).

    A file that is damaged, lacks the epoch count, or holds other arrays than this model and these
    optimizers have raises :class:`minigen.io.BadFileError` naming the file and what is wrong."""
    arrays = B.load_arrays(path)
    epoch = arrays.get("epoch")
    value = epoch.item() if epoch is not None and tuple(epoch.shape) == () else None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadFileError(f"{path} is not a minigen checkpoint: it has no count of finished "
                           "epochs ('epoch', a whole number)")
    records = _history_from(arrays.get("history"), path)
    prefixes = ["model."] + [f"optim.{name}." for name in optimizers]
    strays = [k for k in arrays if k not in ("epoch", "history")
              and not any(k.startswith(p) for p in prefixes)]
    if strays:
        raise BadFileError(f"{path} does not fit this model: unexpected entries "
                           f"{', '.join(strays[:5])}{' ...' if len(strays) > 5 else ''}")
    try:
        model.load_state_dict({k[len("model."):]: v for k, v in arrays.items()
                               if k.startswith("model.")})
        for name, optimizer in optimizers.items():
            prefix = f"optim.{name}."
            optimizer.load_state_dict({k[len(prefix):]: v for k, v in arrays.items()
                                       if k.startswith(prefix)})
    except (ValueError, TypeError) as err:
        raise BadFileError(f"{path} does not fit this model: {err}") from None
    return (value, records) if history else value


def _history_from(array, path):
    if array is None:
        return None
    try:
        if B.dtype_name(array.dtype) != "uint8" or len(array.shape) != 1:
            raise ValueError("not a byte string")
        return _checked_history(json.loads(bytes(array).decode()), path)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadFileError(f"{path}: its history is damaged ({err})") from None


def _checked_history(history, path):
    if not isinstance(history, list) or not all(
            isinstance(h, dict) and isinstance(h.get("epoch"), int) for h in history):
        raise BadFileError(f"{path} is not a training history: expected a list of per-epoch "
                           "records, each with its \"epoch\"")
    return history


def read_history(path):
    """The per-epoch records in ``history.json`` (a list of dicts, each with its "epoch");
    :class:`minigen.io.BadFileError` naming the file when it is something else."""
    return _checked_history(read_json(path), path)


def set_learning_rate(optimizers, lr):
    """Give every optimizer in ``optimizers`` (a dict) the learning rate ``lr``, keeping its state
    (Adam's moments and step counts): what resuming with a new ``--lr`` does."""
    for optimizer in optimizers.values():
        optimizer.lr = float(lr)


def _guard(values, epoch, step, saved, out_dir, lr):
    """Stop with advice that can be followed when a loss is NaN or infinite; ``saved`` is the epoch
    of the last checkpoint written in ``out_dir`` (0: none)."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if not bad:
        return
    what = ", ".join(f"{k} = {v}" for k, v in bad.items())
    lower = f"--lr {lr / 10:g}" if lr else "a lower --lr"
    if out_dir and saved:
        checkpoint = os.path.join(out_dir, CHECKPOINT)
        advice = (f"the last good checkpoint, {checkpoint} (after epoch {saved}), is kept. Try a "
                  f"lower learning rate from there: --resume {lower}")
    else:
        advice = (f"no checkpoint had been written yet. Start again with a lower learning rate "
                  f"({lower})")
    raise NonFiniteLoss(f"non-finite loss (NaN or infinity) in epoch {epoch}, step {step}: {what}. "
                        f"Training stopped; {advice}.")


def fit(model, train_x, *, epochs, batch_size=128, seed=0, lr=None, out_dir=None, resume=False,
        quiet=False, binarize=False, optimizers=None, on_epoch=None, epoch_lines=None):
    """Train ``model`` on the rows of ``train_x`` for ``epochs`` epochs (in total, when resuming).

    Writes ``checkpoint.npz`` (which holds the history too) and ``history.json`` into ``out_dir``
    after every epoch, each atomically.  With ``resume=True`` it first restores the
    checkpoint there and continues after its epoch; a given ``lr`` then replaces the restored
    learning rate (the optimizers' moments and step counts are kept).  ``binarize=True`` draws a
    fresh binarization of each batch (for a Bernoulli likelihood on MNIST).  ``on_epoch(record)``,
    when given, is called after each epoch's files are written.  ``quiet=True`` shows neither the
    progress bar nor the per-epoch lines; ``epoch_lines`` (default: ``not quiet``) decides the
    lines alone (the command line's ``--quiet`` hides the bar only).  Each history record holds
    the epoch, the mean of each loss, the seconds it took and the learning rate (when ``lr`` is
    given).

    Returns ``(history, optimizers)``; raises :class:`NonFiniteLoss` when a loss is NaN or infinite.
    """
    if optimizers is None:
        optimizers = model.make_optimizers(lr) if lr is not None else model.make_optimizers()
    start, history = 0, []
    if resume:
        path = os.path.join(out_dir or "", CHECKPOINT)
        if not os.path.exists(path):
            raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
        start, history = load_checkpoint(path, model, optimizers, history=True)
        if start > epochs:
            raise ValueError(f"cannot resume: {path} has {start} finished epochs, more than the "
                             f"{epochs} asked for")
        if lr is not None:
            set_learning_rate(optimizers, lr)
        if history is None:       # a checkpoint from before histories were kept in it
            history_path = os.path.join(out_dir, HISTORY)
            history = read_history(history_path)[:start] if os.path.exists(history_path) else []
    saved, synced = start, time.monotonic()
    epoch_lines = not quiet if epoch_lines is None else epoch_lines

    loader = DataLoader(train_x, batch_size=batch_size, shuffle=True, seed=seed)
    bar = tqdm(total=max(epochs - start, 0) * len(loader), disable=quiet, unit="batch",
               desc=f"{getattr(model, 'kind', 'model')}", leave=False)
    try:
        for epoch in range(start, epochs):
            B.manual_seed(epoch_seed(seed, epoch))
            loader.set_epoch(epoch)
            model.train()
            began, sums, steps = time.perf_counter(), {}, 0
            for steps, batch in enumerate(loader, 1):
                if binarize:
                    batch = binarize_batch(batch)
                values = model.train_step(batch, optimizers)
                _guard(values, epoch + 1, steps, saved, out_dir, lr)
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
            record = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()},
                      "seconds": round(time.perf_counter() - began, 3)}
            if lr is not None:
                record["lr"] = float(lr)
            history.append(record)
            if out_dir:
                # fsync costs about as much as a small epoch: only every DURABLE_EVERY seconds and
                # at the end (a process killed at any moment loses nothing either way: the rename
                # is atomic; fsync matters when the whole machine stops)
                durable = epoch + 1 == epochs or time.monotonic() - synced >= DURABLE_EVERY
                save_checkpoint(os.path.join(out_dir, CHECKPOINT), model, optimizers, epoch + 1,
                                history=history, fsync=durable)
                write_json(os.path.join(out_dir, HISTORY), history, fsync=durable)
                saved, synced = epoch + 1, time.monotonic() if durable else synced
            if on_epoch is not None:
                on_epoch(record)
            if epoch_lines:
                summary = "  ".join(f"{k} {v:.4g}" for k, v in record.items()
                                    if k not in ("epoch", "lr"))
                tqdm.write(f"epoch {epoch + 1}/{epochs}  {summary}")
    finally:
        bar.close()
    return history, optimizers

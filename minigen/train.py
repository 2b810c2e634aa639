"""Training loops: mini-batches, a progress bar, per-epoch history and checkpoints, exact resuming, and a
guard that stops a run whose loss stops being a finite number.

A model trained here has ``make_optimizers(lr)`` (a dict of named optimizers) and
``train_step(batch, optimizers)`` (one update, returning a dict of Python floats); the VAE, GAN and
VAE-GAN in :mod:`minigen.models` do.

Reproducibility.  Epoch ``e`` of a run with seed ``s`` reseeds the backend generator with a number
derived from (s, e) and shuffles with the permutation of (s, e).  So a run stopped after any epoch and
resumed from its checkpoint computes exactly what the uninterrupted run would have.
"""

import json
import math
import os
import tempfile
import time

from tqdm import tqdm  # the plain bar: tqdm.auto needs ipywidgets in notebooks

from . import backend as B
from .autograd import Tensor
from .data import DataLoader, binarize as binarize_batch

__all__ = ["NonFiniteLoss", "fit", "save_checkpoint", "load_checkpoint", "write_json", "read_json",
           "epoch_seed"]

CHECKPOINT = "checkpoint.npz"
HISTORY = "history.json"


class NonFiniteLoss(RuntimeError):
    """Training produced a NaN or infinite loss; the message says where and what to try."""


def epoch_seed(seed, epoch):
    """The generator seed for epoch ``epoch`` of a run seeded with ``seed``."""
    return (seed * 1_000_003 + epoch) % 2 ** 32


def write_json(path, obj):
    """Write ``obj`` as indented JSON through a temporary file and a rename (never half a file)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, allow_nan=True)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def save_checkpoint(path, model, optimizers, epoch):
    """Model parameters, every optimizer's state and the number of finished epochs, in one .npz."""
    arrays = {"epoch": Tensor(epoch, dtype="int64").data}
    arrays.update({f"model.{k}": v for k, v in model.state_dict().items()})
    for name, optimizer in optimizers.items():
        arrays.update({f"optim.{name}.{k}": v for k, v in optimizer.state_dict().items()})
    B.save_arrays(path, arrays)


def load_checkpoint(path, model, optimizers):
    """Restore what :func:`save_checkpoint` wrote; returns the number of finished epochs."""
    arrays = B.load_arrays(path)
    model.load_state_dict({k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")})
    for name, optimizer in optimizers.items():
        prefix = f"optim.{name}."
        optimizer.load_state_dict({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
    return int(arrays["epoch"])


def _guard(values, epoch, step, out_dir, lr):
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if not bad:
        return
    what = ", ".join(f"{k} = {v}" for k, v in bad.items())
    checkpoint = os.path.join(out_dir, CHECKPOINT) if out_dir else None
    if checkpoint and os.path.exists(checkpoint) and epoch > 1:
        kept = f"the last good checkpoint, {checkpoint} (after epoch {epoch - 1}), is kept"
    else:
        kept = "no checkpoint had been written yet"
    advice = f"try a lower learning rate (e.g. --lr {lr / 10:g})" if lr else "try a lower learning rate"
    raise NonFiniteLoss(
        f"non-finite loss (NaN or infinity) in epoch {epoch}, step {step}: {what}. Training stopped; "
        f"{kept}. {advice[0].upper() + advice[1:]} and resume with --resume.")


def fit(model, train_x, *, epochs, batch_size=128, seed=0, lr=None, out_dir=None, resume=False,
        quiet=False, binarize=False, optimizers=None):
    """Train ``model`` on the rows of ``train_x`` for ``epochs`` epochs (in total, when resuming).

    Writes ``checkpoint.npz`` and ``history.json`` into ``out_dir`` after every epoch (atomically).
    With ``resume=True`` it first restores the checkpoint there and continues after its epoch.
    ``binarize=True`` draws a fresh binarization of each batch (for a Bernoulli likelihood on MNIST).
    Returns ``(history, optimizers)``; raises :class:`NonFiniteLoss` when a loss is NaN or infinite.
    """
    if optimizers is None:
        optimizers = model.make_optimizers(lr) if lr is not None else model.make_optimizers()
    start, history = 0, []
    if resume:
        path = os.path.join(out_dir or "", CHECKPOINT)
        if not os.path.exists(path):
            raise FileNotFoundError(f"cannot resume: no checkpoint at {path}")
        start = load_checkpoint(path, model, optimizers)
        history_path = os.path.join(out_dir, HISTORY)
        history = read_json(history_path)[:start] if os.path.exists(history_path) else []

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
                _guard(values, epoch + 1, steps, out_dir, lr)
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()}, refresh=False)
            record = {"epoch": epoch + 1, **{k: v / max(steps, 1) for k, v in sums.items()},
                      "seconds": round(time.perf_counter() - began, 3)}
            history.append(record)
            if out_dir:
                save_checkpoint(os.path.join(out_dir, CHECKPOINT), model, optimizers, epoch + 1)
                write_json(os.path.join(out_dir, HISTORY), history)
            if not quiet:
                summary = "  ".join(f"{k} {v:.4g}" for k, v in record.items() if k != "epoch")
                tqdm.write(f"epoch {epoch + 1}/{epochs}  {summary}")
    finally:
        bar.close()
    return history, optimizers

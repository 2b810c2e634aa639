"""A training run as a folder: what ``python -m minigen train | evaluate | sample`` do.

A run folder holds

==================  ============================================================================
``config.json``     the model's architecture, the data set, the training settings, and each resume
``checkpoint.npz``  model and optimizer state after the last finished epoch (for ``--resume``)
``model.npz``       the trained parameters (``Module.load``)
``history.json``    per epoch: the mean of each loss, the seconds it took, the learning rate
``metrics.json``    2-D data: modes covered, high-quality fraction, reverse KL; VAEs: test losses
``*.png``           loss curves, samples, and for VAEs reconstructions and the latent space
==================  ============================================================================

What a run folder guarantees:

* every file is written atomically (:mod:`minigen.io`): a crash or a full disk leaves the previous
  version of each file, never half of one; temporary files a killed process left are removed when
  training starts on the folder again; files are created with the umask's permissions;
* a folder that holds a run is never trained into again without ``overwrite=True``
  (``--overwrite``), which first removes that run's files, and a run that fails before its first
  checkpoint leaves the folder as it found it (only ``config.json`` is written before, once the
  data are loaded and the model is built);
* one training at a time: a run holds the folder's lock (:func:`minigen.io.folder_lock`) while
  it works, and a second training into the folder (``resume`` or ``overwrite`` too) is refused at
  once, naming the process that holds it; a lock left by a killed process blocks nothing;
* ``resume=True`` continues from the checkpoint, with exactly the parameters of an uninterrupted
  run when nothing is changed (the BLAS thread count included: the command line resumes with the
  run's own, ``config.json``'s "threads"), or with a new number of epochs, batch size or learning
  rate (applied to the restored optimizer state), which ``config.json`` (``"resumed"``) and each
  epoch's record in ``history.json`` keep; the model, the data and the seed cannot change (an
  error names them);
* a damaged or foreign file (truncated, random bytes, pickled objects, wrong shapes, bad JSON) is
  reported as :class:`minigen.io.BadFileError` naming it, and nothing in the folder is changed.
"""

import contextlib
import datetime
import math
import os
from dataclasses import dataclass

from . import backend as B
from . import plots
from .autograd import Tensor, no_grad
from .data import IMAGE_SETS, load_images, make_toy, moons
from .functions import sigmoid
from .io import (BadFileError, FolderInUse, atomic_write, folder_lock, read_json,
                 remove_stale_temporaries, strict_json, write_json)
from .image_report import image_figures, image_metrics, reference_images
from .metrics import evaluate_vae, mode_metrics
from .models import build_model
from .models.conv_nets import ARCHS
from .train import CHECKPOINT, HISTORY, fit, load_checkpoint, read_history

__all__ = ["MODELS", "DATASETS", "SETTINGS", "Setting", "defaults", "Dataset", "load_dataset",
           "train_run", "evaluate_run", "sample_run", "read_run_config", "RunError", "RunFault",
           "RunInterrupted", "RUN_FILES"]

MODELS = ("vae", "gan", "vaegan")
DATASETS = ("ring", "grid", "moons", "mnist", "fashion-mnist")
IMAGE_DATASETS = tuple(IMAGE_SETS)
N_TRAIN_2D, N_TEST_2D = 10_000, 2_000
N_METRIC_SAMPLES = 2_500     # the VEEGAN / PacGAN protocol

CONFIG, MODEL, METRICS = "config.json", "model.npz", "metrics.json"
FIGURES = ("loss.png", "samples.png", "reconstructions.png", "latent.png", "latent_grid.png",
           "interpolations.png")
RUN_FILES = (CONFIG, CHECKPOINT, MODEL, HISTORY, METRICS) + FIGURES   # what a run writes


class RunError(RuntimeError):
    """Bad input: a run folder that is missing, holds another run, or does not hold what the command
    needs, or settings that do not fit it (the command line's exit code 2)."""


class RunFault(RuntimeError):
    """A fault during the work (a full disk, a permission lost): the message says what is kept
    (the command line's exit code 1)."""


class RunInterrupted(RuntimeError):
    """Ctrl-C during training; the message says whether a checkpoint exists to resume from."""


# --------------------------------------------------------------------------------------------------
# Settings: one table that the command line, the defaults and resuming read.
# --------------------------------------------------------------------------------------------------

def positive_int(text):
    """A whole number >= 1 from a command-line word (ValueError saying so otherwise)."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"must be a positive integer, not {text!r}") from None
    if value < 1:
        raise ValueError(f"must be a positive integer, not {text}")
    return value


def positive_float(text):
    """A finite number > 0 from a command-line word (``inf`` and ``nan`` are refused)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"must be a positive number, not {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"must be a positive number (finite), not {text}")
    return value


def arch_name(text):
    """"mlp" or "conv" from a command-line word."""
    if text not in ARCHS:
        raise ValueError(f"must be one of {', '.join(ARCHS)}, not {text!r}")
    return text


def integer(text):
    """A whole number from a command-line word."""
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ValueError(f"must be a whole number, not {text!r}") from None


@dataclass(frozen=True)
class Setting:
    """One setting of a training run; its flag is ``--`` + ``name`` with ``-`` for ``_``.

    ``parse`` reads one command-line word (None: an on/off flag); ``choices`` the values allowed
    (None: any that ``parse`` takes); ``section`` is where config.json keeps it ("model": an
    argument of the model's constructor, "train": of the training); ``models`` those it applies to
    (others refuse it); ``resumable``: ``--resume`` may give it a new value.  A new setting is one
    row of :data:`SETTINGS` and its defaults in ``_DEFAULTS`` (or ``_COMMON``)."""
    name: str
    help: str
    parse: object = positive_int
    metavar: str = None
    nargs: str = None
    section: str = "train"
    models: tuple = MODELS
    resumable: bool = False
    choices: tuple = None

    @property
    def flag(self):
        return "--" + self.name.replace("_", "-")


SETTINGS = (
    Setting("epochs", "epochs in all; with --resume a new total, at least the epochs done",
            metavar="N", resumable=True),
    Setting("batch_size", "examples per step", metavar="B", resumable=True),
    Setting("lr", "learning rate of every optimizer; with --resume it replaces the checkpoint's "
                  "(the optimizer state is kept)", positive_float, metavar="LR", resumable=True),
    Setting("hidden", "hidden layer widths, e.g. --hidden 64 32", metavar="H", nargs="+",
            section="model"),
    Setting("latent_dim", "size of the latent code z", metavar="D", section="model"),
    Setting("beta", "weight of the KL term", positive_float, section="model",
            models=("vae", "vaegan")),
    Setting("gamma", "weight of the reconstruction term against the GAN's", positive_float,
            section="model", models=("vaegan",)),
    Setting("pack", "the discriminator judges this many points at a time (PacGAN)", metavar="M",
            section="model", models=("gan",)),
    Setting("arch", "the networks: mlp (Dense layers) or conv (DCGAN-style convolutions, for the "
                    "image sets; then --hidden gives their two channel counts, and the other "
                    "defaults are conv's: see minigen/runs.py)", arch_name, metavar="A",
            section="model"),
    Setting("seed", "seed of every random number of the run", integer, metavar="S"),
    Setting("binarize", "a fresh binarization of each batch (images)", None),
    Setting("limit", "train on the first N training rows only (quick tries)", metavar="N"),
)
_BY_NAME = {s.name: s for s in SETTINGS}

# Defaults per model and kind of data.  2-D: the founding document's Dense 64 -> 32 with ReLU and a
# 2-D latent, with the epochs, batch sizes and learning rates that meet the quality targets on the
# ring (benchmarks/quality.py); MNIST: the PyTorch example's 784-400-20 VAE, Adam 1e-3, batch 128.
# An entry for one data set, like ("gan", "grid"), takes precedence: on the 25 modes of the grid the
# 64 -> 32 GAN covers about 13; packing 2 points (PacGAN) with 128 -> 128 networks about 21.
# beta, gamma: the VAE's ELBO (beta 1); the VAE-GAN's 2-D weights, and Larsen et al.'s on images.
_COMMON = dict(seed=0, binarize=False, limit=None, arch="mlp")
_DEFAULTS = {
    ("vae", "2d"): dict(hidden=[64, 32], latent_dim=2, epochs=50, batch_size=256, lr=1e-3,
                        beta=1.0),
    ("gan", "2d"): dict(hidden=[64, 32], latent_dim=2, pack=1, epochs=150, batch_size=128, lr=1e-3),
    ("gan", "grid"): dict(hidden=[128, 128], latent_dim=2, pack=2, epochs=250, batch_size=128,
                          lr=1e-3),
    ("vaegan", "2d"): dict(hidden=[64, 32], latent_dim=2, epochs=100, batch_size=256, lr=2e-3,
                           beta=0.01, gamma=30.0),
    ("vae", "mnist"): dict(hidden=[400], latent_dim=20, epochs=10, batch_size=128, lr=1e-3,
                           beta=1.0),
    ("gan", "mnist"): dict(hidden=[400], latent_dim=20, pack=1, epochs=20, batch_size=128, lr=2e-4),
    ("vaegan", "mnist"): dict(hidden=[400], latent_dim=20, epochs=20, batch_size=128, lr=2e-4,
                              beta=1.0, gamma=30.0),
    # arch="conv" on either image set: DCGAN-style networks with 32 and 64 channels
    # (minigen/models/conv_nets.py); Adam at 2e-4 with beta1 = 0.5 for the adversarial models, as
    # DCGAN, in batches of 64; the same 8 epochs for the three models (comparable budgets), each
    # training within 20 minutes on two CPU cores (README, "Images").  The VAE-GAN's beta = 1,
    # gamma = 1 and feature likelihood were chosen on Fashion-MNIST (minigen/models/vaegan.py).
    ("vae", "conv"): dict(hidden=[32, 64], latent_dim=32, epochs=8, batch_size=128, lr=1e-3,
                          beta=1.0),
    ("gan", "conv"): dict(hidden=[32, 64], latent_dim=32, pack=1, epochs=8, batch_size=64,
                          lr=2e-4),
    ("vaegan", "conv"): dict(hidden=[32, 64], latent_dim=32, epochs=8, batch_size=64, lr=2e-4,
                             beta=1.0, gamma=1.0),
}


def defaults(kind, data, arch="mlp"):
    """The default settings for ``kind`` on ``data``: those of the networks (hidden, latent_dim,
    and beta, gamma, pack where the model has them) and of the training (epochs, batch_size, lr):
    the entry for ``data`` itself when there is one, else its kind of data's; with
    ``arch="conv"`` (images only) the conv networks' own."""
    if arch == "conv":
        return dict(_DEFAULTS[(kind, "conv")])
    if (kind, data) in _DEFAULTS:
        return dict(_DEFAULTS[(kind, data)])
    return dict(_DEFAULTS[(kind, "mnist" if data in IMAGE_DATASETS else "2d")])


def _all_defaults(kind, data, arch="mlp"):
    """:func:`defaults` and those of every run (seed, binarize, limit, arch): a value for each
    setting."""
    return dict(_COMMON, arch=arch, **defaults(kind, data, arch))


def _show(value):
    if value is None:
        return "all"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe_default(name):
    """``name``'s defaults in words, per model and data where they differ, and with ``--arch
    conv`` where that differs, e.g. "vae 50 (mnist/fashion-mnist 10, --arch conv 8), ..."."""
    parts = []
    for kind in _BY_NAME[name].models:
        base = _all_defaults(kind, DATASETS[0])[name]
        groups = {}                     # the data sets that differ, grouped by their value
        for data in DATASETS[1:]:
            value = _show(_all_defaults(kind, data)[name])
            if value != _show(base):
                groups.setdefault(value, []).append(data)
        other = [f"{'/'.join(sets)} {value}" for value, sets in groups.items()]
        if name != "arch":
            conv = _show(_all_defaults(kind, IMAGE_DATASETS[0], "conv")[name])
            if conv != _show(_all_defaults(kind, IMAGE_DATASETS[0])[name]):
                other.append(f"--arch conv {conv}")
        parts.append((kind, _show(base) + (f" ({', '.join(other)})" if other else "")))
    if len({text for _, text in parts}) == 1:
        return parts[0][1]
    return ", ".join(f"{kind} {text}" for kind, text in parts)




@dataclass
class Dataset:
    name: str
    train: Tensor
    test: Tensor
    test_labels: Tensor
    note: str = ""
    reference: Tensor = None     # images: the real images the sample measures compare with

    @property
    def is_image(self):
        return self.name in IMAGE_DATASETS

    @property
    def data_dim(self):
        return self.train.shape[1]


def load_dataset(name, seed=0, log=print, limit=None):
    """Training and test rows of ``name``: 2-D sets are generated (train and test from different
    seeds); MNIST and Fashion-MNIST are read from their IDX files
    (:func:`minigen.data.load_images`). ``limit``: keep only the first ``limit`` training rows
    (quick tries; the test rows stay)."""
    if name in IMAGE_SETS:
        split = load_images(name, log=log)
        dataset = Dataset(name, split.train_images, split.test_images, split.test_labels,
                          split.note, reference=reference_images(split))
    elif name == "moons":
        train, _ = moons(N_TRAIN_2D, seed=seed)
        test, labels = moons(N_TEST_2D, seed=seed + 10_000)
        dataset = Dataset(name, train, test, labels)
    else:
        train, _ = make_toy(name, N_TRAIN_2D, seed=seed)
        test, labels = make_toy(name, N_TEST_2D, seed=seed + 10_000)
        dataset = Dataset(name, train, test, labels)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"--limit must be a positive number of training rows, not {limit}")
        dataset.train = dataset.train[:min(limit, len(dataset.train))]
        dataset.note += f" (--limit: training on the first {len(dataset.train):,})"
    return dataset


def _model_config(kind, dataset, settings):
    """The model's constructor arguments: the data's size, every "model" setting that applies to
    ``kind``, and the likelihood the data call for."""
    config = {"data_dim": dataset.data_dim}
    for setting in SETTINGS:
        if setting.section == "model" and kind in setting.models:
            value = settings[setting.name]
            config[setting.name] = list(value) if setting.nargs else value
    if settings["arch"] != "mlp" and not dataset.is_image:
        raise RunError(f"--arch {settings['arch']} is for the image sets "
                       f"({', '.join(IMAGE_DATASETS)}), not {dataset.name}")
    if kind == "vae":
        config["likelihood"] = "bernoulli" if dataset.is_image else "gaussian"
    if kind == "vaegan" and dataset.is_image:   # Larsen et al.'s setting for images
        config.update(likelihood="bernoulli", llike="features")
    return config


# config.json, checked before anything is built from it: "hidden": "64" must not become sizes 6, 4
def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


_CHECKS = {
    "a positive whole number": lambda v: _is_int(v) and v >= 1,
    "a list of positive whole numbers": lambda v: isinstance(v, list) and all(
        _is_int(h) and h >= 1 for h in v),
    "a finite number": _is_number,
    "a positive finite number": lambda v: _is_number(v) and v > 0,
    "a whole number": _is_int,
    "true or false": lambda v: isinstance(v, bool),
    "a positive whole number or null": lambda v: v is None or (_is_int(v) and v >= 1),
    "a string": lambda v: isinstance(v, str),
}
_MODEL_FIELDS = {"data_dim": "a positive whole number", "latent_dim": "a positive whole number",
                 "pack": "a positive whole number", "hidden": "a list of positive whole numbers",
                 "disc_hidden": "a list of positive whole numbers", "beta": "a finite number",
                 "gamma": "a finite number", "ema": "a finite number", "likelihood": "a string",
                 "llike": "a string", "activation": "a string", "arch": "a string"}
_TRAIN_FIELDS = {"epochs": "a positive whole number", "batch_size": "a positive whole number",
                 "lr": "a positive finite number", "seed": "a whole number",
                 "binarize": "true or false", "limit": "a positive whole number or null"}
_OPTIONAL = ("limit",)      # absent from the config.json of runs made before it existed


def read_run_config(path):
    """A run's ``config.json``, checked: :class:`minigen.io.BadFileError` naming the file and every
    problem when it is not a run's configuration (not JSON, ``{}``, wrong types...)."""
    config = read_json(path)
    if not isinstance(config, dict):
        raise BadFileError(f"{path} is not a run configuration: expected a JSON object")
    problems = []
    if config.get("kind") not in MODELS:
        problems.append(f"kind is {config.get('kind')!r}, not one of {', '.join(MODELS)}")
    if config.get("data") not in DATASETS:
        problems.append(f"data is {config.get('data')!r}, not one of {', '.join(DATASETS)}")
    for section, fields, required in (("model", _MODEL_FIELDS,
                                       ("data_dim", "hidden", "latent_dim")),
                                      ("train", _TRAIN_FIELDS,
                                       tuple(f for f in _TRAIN_FIELDS if f not in _OPTIONAL))):
        part = config.get(section)
        if not isinstance(part, dict):
            problems.append(f"{section!r} is missing or not an object")
            continue
        problems += [f"{section}.{name} is missing" for name in required if name not in part]
        problems += [f"{section}.{name} is {value!r}, not {fields[name]}"
                     for name, value in part.items()
                     if name in fields and not _CHECKS[fields[name]](value)]
    if problems:
        raise BadFileError(f"{path} is not a valid run configuration: {'; '.join(problems)}")
    return config


def recorded_threads(out):
    """The BLAS thread count the run in ``out`` trained with (``config.json``'s "threads"), or None
    when there is no such number to read: ``--resume`` takes it so that the resumed run rounds as
    the uninterrupted one does (:func:`minigen.backend.get_num_threads`).  A missing or damaged
    file is left for the resume itself to report."""
    try:
        value = read_json(os.path.join(out, CONFIG)).get("threads")
    except (OSError, BadFileError, AttributeError):
        return None
    return value if type(value) is int and value >= 1 else None


def _build(config, path):
    try:
        return build_model(config["kind"], **config["model"])
    except (TypeError, ValueError) as err:
        raise BadFileError(f"{path}: its model settings do not make a {config['kind']} "
                           f"({err})") from None


# --------------------------------------------------------------------------------------------------
# Training a run
# --------------------------------------------------------------------------------------------------

_NAMES = {"vae": "VAE", "gan": "GAN", "vaegan": "VAE-GAN"}


def _check_given(kind, given):
    """The settings given (None: not given), checked as the command line checks them."""
    unknown = sorted(set(given) - set(_BY_NAME))
    if unknown:
        raise TypeError(f"train_run: unknown settings {', '.join(unknown)}; the settings are "
                        f"{', '.join(_BY_NAME)}")
    checked = {}
    for name, value in given.items():
        if value is None:
            continue
        setting = _BY_NAME[name]
        if kind not in setting.models:
            raise ValueError(f"{setting.flag} applies to the "
                             f"{' and '.join(_NAMES[m] for m in setting.models)} only, "
                             f"not to the {kind}")
        try:
            if setting.parse is None:
                value = bool(value)
            elif setting.nargs:
                value = [setting.parse(v) for v in value]
            else:
                value = setting.parse(value)
            if setting.choices is not None and value not in setting.choices:
                raise ValueError(f"must be one of {', '.join(map(str, setting.choices))}, "
                                 f"not {value!r}")
        except ValueError as err:
            raise ValueError(f"{setting.flag} {err}") from None
        checked[name] = value
    return checked


def _check_out(out, what="--out"):
    """``out`` as a folder a run can be written to, or :class:`RunError` saying why not."""
    if out is None or not os.fspath(out).strip():
        raise RunError(f"{what} is empty: name a folder (an empty path would put the run's files "
                       "into the current folder)")
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunError(f"{what} {out} is a file, not a folder: choose another {what}")
    ancestor = _nearest_existing(out)
    if not os.path.isdir(ancestor):
        raise RunError(f"{what} {out}: {ancestor} is a file, so no folder can be made in it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RunError(f"{what} {out}: no permission to write in {ancestor}")
    return out


def _nearest_existing(path):
    """``path`` or the nearest of its parents that exists (a folder, or a file in the way)."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        path = os.path.dirname(path)
    return path


def _make_folder(out):
    """Create ``out`` and its missing parents; returns those created, deepest first."""
    created, path = [], os.path.abspath(out)
    while not os.path.exists(path):
        created.append(path)
        path = os.path.dirname(path)
    os.makedirs(out, exist_ok=True)
    return created


def _run_files(folder):
    """The files of :data:`RUN_FILES` that ``folder`` holds."""
    return [name for name in RUN_FILES if os.path.exists(os.path.join(folder, name))]


def _remove(folder, names):
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path) or os.path.islink(path):
            os.remove(path)


def _continue_hint(kind, out):
    return f"python -m minigen train {kind} --out {out} --resume"


class _Progress:
    """The epoch of the last checkpoint written (fit's ``on_epoch`` moves it on)."""

    def __init__(self, epoch):
        self.epoch = epoch

    def __call__(self, record):
        self.epoch = record["epoch"]


def train_run(kind, data=None, out=None, resume=False, overwrite=False, quiet=False, log=print,
              **settings):
    """Train ``kind`` ("vae", "gan", "vaegan") on ``data`` (default "ring"), writing everything into
    the run folder ``out`` (default ``runs/<kind>-<data>-<time>``); returns the folder.

    ``settings``: any of :data:`SETTINGS` (epochs, batch_size, lr, hidden, latent_dim, beta, gamma,
    pack, seed, binarize, limit); None or left out means the default for the model and the data.
    A folder that holds a run is refused unless ``overwrite=True`` (which removes that run's files
    once the new run is ready to start).  ``resume=True`` continues the run in ``out`` from its
    checkpoint, with any new ``epochs``, ``batch_size`` or ``lr`` given (recorded in config.json
    and history.json); other settings given must equal the run's.  ``quiet=True`` hides the
    progress bar only (the line after each epoch stays).  Raises :class:`RunError` for bad input
    (nothing is written), :class:`RunFault` for a file error during the work,
    :class:`RunInterrupted` on Ctrl-C and :class:`minigen.train.NonFiniteLoss` when training
    diverges.
    """
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    if data is not None and data not in DATASETS:
        raise ValueError(f"unknown data {data!r}; choose one of {', '.join(DATASETS)}")
    given = _check_given(kind, settings)
    if resume:
        if overwrite:
            raise RunError("--resume continues a run and --overwrite replaces it: give one of them")
        return _resume(kind, data, out, given, quiet, log)

    data = data or DATASETS[0]
    if out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = os.path.join("runs", f"{kind}-{data}-{stamp}")
    out = _check_out(out)
    old = _run_files(out)
    if old and not overwrite:
        files = ", ".join(old)
        if CHECKPOINT in old:
            raise RunError(f"{out} already holds a run ({files}). Continue it with --resume, train "
                           "into a new --out, or replace it with --overwrite")
        what = ("a finished run" if MODEL in old else
                "the start of a run that never finished an epoch")
        raise RunError(f"{out} already holds {what} ({files}) and no checkpoint to --resume from. "
                       "Train into a new --out, or replace it with --overwrite")
    run = dict(_all_defaults(kind, data, given.get("arch", "mlp")), **given)
    dataset = load_dataset(data, seed=run["seed"], log=log, limit=run["limit"])
    model_config = _model_config(kind, dataset, run)
    B.manual_seed(run["seed"])
    model = build_model(kind, **model_config)
    train = {name: run[name] for name in _TRAIN_FIELDS}
    config = {"kind": kind, "data": data, "backend": B.get_backend(),
              "threads": B.get_num_threads(), "model": model_config, "train": train}

    # The run is known to start: from here on the folder is written, and undone on a failure that
    # comes before the first checkpoint.
    created = _make_folder(out)
    progress = _Progress(0)
    try:
        with _locked(out):
            now = _run_files(out)
            if now != old:
                raise RunError(f"{out} changed while this run was starting (another training "
                               f"wrote {', '.join(sorted(set(now) - set(old))) or 'into it'}); "
                               "train into a new --out")
            _remove(out, old)
            remove_stale_temporaries(out)
            try:
                write_json(os.path.join(out, CONFIG), config)
                log(f"training {kind} on {data} for {train['epochs']} epochs -> {out}")
                return _fit_and_finish(model, dataset, config, out, False, progress, quiet, log)
            except BaseException:
                if progress.epoch == 0:  # nothing worth keeping: leave the folder as it was found
                    _remove(out, (CONFIG, HISTORY, CHECKPOINT))
                    remove_stale_temporaries(out)
                raise
    except BaseException as err:
        if progress.epoch == 0:
            for folder in created:       # only folders this run made, once empty
                try:
                    os.rmdir(folder)
                except OSError:
                    break
        raise _explain(err, kind, out, progress.epoch, undone=True) from None


@contextlib.contextmanager
def _locked(out):
    """Hold the run folder's lock (:func:`minigen.io.folder_lock`) for the block: a second
    training into ``out`` while this one runs is refused with a :class:`RunError`."""
    held = contextlib.ExitStack()
    try:
        held.enter_context(folder_lock(out))
    except FolderInUse as err:
        raise RunError(f"{out} is in use: {err.holder or 'another process'} is training into it. "
                       "Wait for it to finish, or train into another --out") from None
    except OSError as err:
        raise RunFault(f"{out}: cannot lock the run folder ({err.strerror or err})") from None
    with held:
        yield


def _resume(kind, data, out, given, quiet, log):
    if out is None or not os.fspath(out).strip():
        raise RunError("--resume needs --out: the folder of the run to continue")
    out = os.fspath(out)
    config_path, checkpoint = os.path.join(out, CONFIG), os.path.join(out, CHECKPOINT)
    if not os.path.isfile(config_path):
        raise RunError(f"cannot resume: {config_path} does not exist, so {out} holds no run to "
                       "continue (train without --resume to start one)")
    if not os.path.isfile(checkpoint):
        raise RunError(f"cannot resume: {checkpoint} does not exist (the run never finished an "
                       "epoch, or the file was removed); start the run again with --overwrite")
    with _locked(out):
        return _resume_locked(kind, data, out, given, quiet, log)


def _resume_locked(kind, data, out, given, quiet, log):
    config_path, checkpoint = os.path.join(out, CONFIG), os.path.join(out, CHECKPOINT)
    with open(config_path, "rb") as f:
        original = f.read()
    config = read_run_config(config_path)
    data = data or config["data"]
    fixed = []
    if config["kind"] != kind:
        fixed.append(f"the model ({config['kind']}, given {kind})")
    if config["data"] != data:
        fixed.append(f"--data ({config['data']}, given {data})")
    train, changed = dict(config["train"]), {}
    for name, value in given.items():
        setting = _BY_NAME[name]
        saved = config[setting.section].get(name, _all_defaults(kind, config["data"])[name])
        if value == saved:
            continue
        if setting.resumable:
            changed[name] = [saved, value]
            train[name] = value
        else:
            fixed.append(f"{setting.flag} ({_show(saved)}, given {_show(value)})")
    if fixed:
        raise RunError(f"cannot resume {out} with other settings for {'; '.join(fixed)} (the run's "
                       "value first): they are fixed for a run. Leave them out to continue it, "
                       "or train a new run with a new --out")
    if config.get("backend") != B.get_backend():
        changed["backend"] = [config.get("backend"), B.get_backend()]
    threads = B.get_num_threads()    # another BLAS thread count rounds the sums differently
    if isinstance(config.get("threads"), int) and config["threads"] != threads:
        changed["threads"] = [config["threads"], threads]

    dataset = load_dataset(config["data"], seed=train["seed"], log=log, limit=train.get("limit"))
    B.manual_seed(train["seed"])
    model = _build(config, config_path)
    # everything is checked before anything is written: the checkpoint, and the history it
    # holds (or, from a checkpoint without one, history.json)
    start, history = load_checkpoint(checkpoint, model, model.make_optimizers(train["lr"]),
                                     history=True)
    if train["epochs"] < start:
        raise RunError(f"cannot resume: {checkpoint} holds {start} finished epochs and --epochs "
                       f"{train['epochs']} is fewer; give --epochs {start} or more")
    if history is None and os.path.exists(os.path.join(out, HISTORY)):
        read_history(os.path.join(out, HISTORY))

    remove_stale_temporaries(out)
    config = dict(config, train=train, backend=B.get_backend(), threads=threads)
    if changed:
        config["resumed"] = config.get("resumed", []) + [{"after_epoch": start, "changed": changed}]
    what = ", ".join(f"{name} {_show(a)} -> {_show(b)}" for name, (a, b) in changed.items())
    progress = _Progress(start)
    try:
        write_json(config_path, config)
        log(f"resuming {out} after epoch {start} of {train['epochs']} "
            f"({'changed: ' + what if what else 'with its own settings'})")
        return _fit_and_finish(model, dataset, config, out, True, progress, quiet, log)
    except BaseException as err:
        again = ""
        if progress.epoch == start and changed:   # no epoch with the new settings: as it was
            try:
                _write_bytes(config_path, original)
                again = "".join(f" {_BY_NAME[name].flag} {_show(new)}"
                                for name, (_, new) in changed.items() if name in _BY_NAME)
            except OSError:
                pass
        raise _explain(err, kind, out, progress.epoch, undone=False, again=again) from None


def _write_bytes(path, data):
    with atomic_write(path) as f:
        f.write(data)


def _explain(err, kind, out, epoch, undone, again=""):
    """The exception to raise for ``err`` during a run's work, saying what is kept; ``again``: the
    flags a continuation must repeat (new settings that config.json does not hold yet)."""
    if epoch:
        kept = (f"the checkpoint after epoch {epoch} is kept in {out}; continue with: "
                f"{_continue_hint(kind, out)}{again}")
    else:
        kept = (f"no checkpoint exists yet (the first epoch had not finished), so there is nothing "
                f"to resume{'; ' + out + ' is left as it was found' if undone else ''}")
    if isinstance(err, KeyboardInterrupt):
        interrupted = RunInterrupted(f"interrupted; {kept}")
        interrupted.original = err       # Ctrl-C, or what the command line makes of SIGTERM
        return interrupted
    if isinstance(err, OSError) and not isinstance(err, FileNotFoundError):
        where = f"{err.filename}: " if err.filename else ""
        return RunFault(f"{where}{err.strerror or err}. Training stopped; {kept}")
    return err


def _fit_and_finish(model, dataset, config, out, resume, progress, quiet, log):
    train = config["train"]
    fit(model, dataset.train, epochs=train["epochs"], batch_size=train["batch_size"],
        seed=train["seed"], lr=train["lr"], out_dir=out, resume=resume, quiet=quiet,
        binarize=train["binarize"], on_epoch=progress, epoch_lines=True)
    model.eval()         # batch norms use their running statistics from here on
    model.save(os.path.join(out, MODEL))
    metrics = _metrics(model, dataset, train["seed"])
    write_json(os.path.join(out, METRICS), metrics)
    figures = _figures(model, dataset, out)
    log(_format_metrics(metrics))
    log(f"run folder: {out}")
    log(f"figures: {', '.join(os.path.join(out, name) for name in figures)}")
    return out


# --------------------------------------------------------------------------------------------------
# Using a finished run
# --------------------------------------------------------------------------------------------------

def _load_run(folder):
    if folder is None or not os.fspath(folder).strip():
        raise RunError("the run folder is empty: name a folder that holds a finished run")
    folder = os.fspath(folder)
    config_path, model_path = os.path.join(folder, CONFIG), os.path.join(folder, MODEL)
    for path in (config_path, model_path):
        if not os.path.isfile(path):
            hint = ""
            if path == model_path and os.path.isfile(os.path.join(folder, CHECKPOINT)):
                kind = _kind_in(config_path)
                hint = f"; its checkpoint can finish it: {_continue_hint(kind or 'MODEL', folder)}"
            raise RunError(f"{folder} is not a finished run: {os.path.basename(path)} is missing"
                           f"{hint}")
    config = read_run_config(config_path)
    model = _build(config, config_path)
    try:
        model.load(model_path)
    except BadFileError:
        raise
    except (ValueError, TypeError) as err:
        raise BadFileError(f"{model_path} does not fit the model of {config_path}: {err}") from None
    model.eval()
    return config, model


def _kind_in(config_path):
    """The model named in a config.json, or None when it cannot be read."""
    try:
        return read_run_config(config_path)["kind"]
    except (OSError, BadFileError):
        return None


def _non_finite_parameters(model):
    """Names of the parameters holding a NaN or an infinity."""
    bad = []
    for name, p in model.named_parameters():
        xp = B.namespace(p.data)
        if not bool(xp.all(xp.isfinite(p.data))):
            bad.append(name)
    return bad


def evaluate_run(folder, log=print, warn=None):
    """Recompute a finished run's metrics and return them.  ``metrics.json`` is rewritten only when
    the metrics differ from it, the folder can be written and no training holds its lock (a
    ``--resume`` writes its own metrics at the end): otherwise ``log`` says why, and nothing is
    written.  Non-finite weights are reported through ``warn`` (default
    ``warnings.warn``): the metrics of such a model mean nothing."""
    config, model = _load_run(folder)
    bad = _non_finite_parameters(model)
    if bad:
        message = (f"{os.path.join(folder, MODEL)} holds non-finite weights (NaN or infinity) in "
                   f"{', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}: the metrics are "
                   "meaningless (null in JSON); retrain, or resume from a good checkpoint")
        if warn is None:
            import warnings
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        else:
            warn(message)
    dataset = load_dataset(config["data"], seed=config["train"]["seed"], log=log,
                           limit=config["train"].get("limit"))
    metrics = _metrics(model, dataset, config["train"]["seed"])
    path = os.path.join(folder, METRICS)
    try:
        same = os.path.exists(path) and read_json(path) == strict_json(metrics)
    except (BadFileError, OSError):
        same = False
    if not same:
        try:
            with folder_lock(folder):          # never under a training that writes it too
                write_json(path, metrics)
            log(f"wrote {path}")
        except FolderInUse as err:
            log(f"{path} not written: {err.holder or 'another process'} is training into "
                f"{folder}; the metrics are only printed")
        except OSError as err:
            log(f"{path} not written ({err.strerror or err}); the metrics are only printed")
    return metrics


def _check_image_path(out):
    if out is None or not os.fspath(out).strip():
        raise RunError("--out is empty: name the image file to write, e.g. samples.png")
    out = os.fspath(out)
    if os.path.isdir(out):
        raise RunError(f"--out {out} is a folder: name the image file to write, e.g. "
                       f"{os.path.join(out, 'samples.png')}")
    ancestor = _nearest_existing(os.path.dirname(os.path.abspath(out)))
    if not os.path.isdir(ancestor):
        raise RunError(f"--out {out}: {ancestor} is a file, so no file can be made in it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RunError(f"--out {out}: no permission to write in {ancestor}")
    return out


def sample_run(folder, n, out, seed=0):
    """Draw ``n`` samples from a finished run's model (seeded with ``seed``: the same figure each
    time) and save their figure to ``out``; returns ``out``."""
    out = _check_image_path(out)
    config, model = _load_run(folder)
    B.manual_seed(seed)
    with no_grad():
        samples = model.sample(n)
    if config["model"]["data_dim"] == 2:
        figure = plots.samples_2d(samples, title=f"{n} samples ({config['kind']})")
    else:
        side = max(1, int(math.sqrt(n)))
        figure = plots.image_grid(samples, rows=-(-n // side), cols=side)
    try:
        return plots.save(figure, out)
    except ValueError as err:            # matplotlib: a suffix it cannot write
        raise RunError(f"--out {out}: {err}") from None


# --------------------------------------------------------------------------------------------------

def _metrics(model, dataset, seed):
    B.manual_seed(seed + 1)
    if dataset.is_image:
        metrics = image_metrics(model, dataset)
        metrics["samples"] = metrics["quality_samples"]
        return metrics
    metrics = {}
    with no_grad():
        if dataset.name in ("ring", "grid"):
            metrics.update(mode_metrics(model.sample(N_METRIC_SAMPLES), dataset.name))
        if getattr(model, "kind", None) == "vae":
            metrics.update(evaluate_vae(model, dataset.test, k=500))
            metrics["iwae_k"] = 500
    metrics["samples"] = N_METRIC_SAMPLES if dataset.name in ("ring", "grid") else None
    return metrics


def _finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value)


def _nats(value):
    return f"{value:.2f} nats" if _finite(value) else "not a number"


def _format_metrics(metrics):
    parts = []
    if "modes_covered" in metrics:
        kl = metrics["reverse_kl"]
        parts.append(f"modes covered {metrics['modes_covered']}/{metrics['modes_total']}, "
                     f"high-quality samples {100 * metrics['high_quality_fraction']:.1f}%, "
                     + (f"reverse KL {kl:.3f}" if _finite(kl) else
                        "reverse KL undefined (no high-quality sample)"))
    if "frechet_distance" in metrics:
        parts.append(f"Frechet distance {metrics['frechet_distance']:.2f}, precision "
                     f"{metrics['precision']:.3f}, recall {metrics['recall']:.3f}, classes "
                     f"{metrics['class_coverage']}/10 (on minigen's classifier features, "
                     f"{metrics['quality_samples']} samples)")
    if "test_loss" in metrics:
        parts.append(f"test loss (negative ELBO) {_nats(metrics['test_loss'])}, "
                     f"IWAE NLL (K={metrics['iwae_k']}) {_nats(metrics['test_nll_iwae'])}")
    return "; ".join(parts) or "no metrics for this data set"


def _figures(model, dataset, out):
    """Write the run's figures into ``out``; returns their file names."""
    written = []

    def save(figure, name):
        plots.save(figure, os.path.join(out, name))
        written.append(name)

    history = read_json(os.path.join(out, HISTORY))
    save(plots.loss_curves(history, title=f"{model.kind} on {dataset.name}"), "loss.png")
    if dataset.is_image:       # samples, reconstructions and interpolations, large
        written += [os.path.basename(path) for path in image_figures(model, dataset, out)]
    with no_grad():
        if not dataset.is_image:
            save(plots.samples_2d(model.sample(N_METRIC_SAMPLES), dataset.test,
                                  title=f"{model.kind} samples on {dataset.name}"), "samples.png")
        if not hasattr(model, "encode") or not hasattr(model, "reconstruct"):
            return written
        x = dataset.test[:2000]          # the latent plot's points, and few enough for one batch
        if not dataset.is_image:
            save(plots.reconstructions_2d(x[:300], model.reconstruct(x[:300])),
                 "reconstructions.png")
        if model.kind == "vae":
            mu, _ = model.encode(x)
            save(plots.latent_space(mu, dataset.test_labels[:2000]), "latent.png")
            if mu.shape[1] == 2:
                steps = 15 if dataset.is_image else 25
                line = [-3.0 + 6.0 * i / (steps - 1) for i in range(steps)]
                z = Tensor([[a, b] for b in reversed(line) for a in line],
                           dtype=B.dtype_name(mu.dtype))
                decoded = _decode_mean(model, z.to(mu.device))
                save(plots.decoded_latent_grid(decoded, steps), "latent_grid.png")
    return written


def _decode_mean(model, z):
    """The data-space mean the decoder gives for latent points ``z``."""
    decoded = model.decode(z)
    return sigmoid(decoded) if getattr(model, "likelihood", "gaussian") == "bernoulli" else decoded

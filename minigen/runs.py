"""A training run as a folder: what ``python -m minigen train | evaluate | sample`` do.

A run folder holds

==================  ============================================================================
``config.json``     the model's architecture, the data set and the training settings
``checkpoint.npz``  model and optimizer state after the last finished epoch (for ``--resume``)
``model.npz``       the trained parameters (``Module.load``)
``history.json``    the mean of each loss per epoch
``metrics.json``    2-D data: modes covered, high-quality fraction, reverse KL; VAEs: test losses
``*.png``           loss curves, samples, and for VAEs reconstructions and the latent space
==================  ============================================================================
"""

import datetime
import math
import os
from dataclasses import dataclass

from . import backend as B
from . import plots
from .autograd import Tensor, no_grad
from .data import IMAGE_SETS, load_images, make_toy, moons
from .functions import sigmoid
from .metrics import evaluate_vae, mode_metrics
from .models import build_model
from .train import HISTORY, fit, read_json, write_json

__all__ = ["MODELS", "DATASETS", "defaults", "Dataset", "load_dataset", "train_run", "evaluate_run",
           "sample_run", "RunError"]

MODELS = ("vae", "gan", "vaegan")
DATASETS = ("ring", "grid", "moons", "mnist", "fashion-mnist")
N_TRAIN_2D, N_TEST_2D = 10_000, 2_000
N_METRIC_SAMPLES = 2_500     # the VEEGAN / PacGAN protocol
N_IWAE_IMAGES = 2_000        # test rows for the IWAE bound: all of MNIST's 2,000, 1/5 of Fashion's


class RunError(RuntimeError):
    """A run folder is missing or does not hold what the command needs."""


# Defaults per model and kind of data.  2-D: the founding document's Dense 64 -> 32 with ReLU and a 2-D
# latent, with the epochs, batch sizes and learning rates that meet the quality targets on the ring
# (benchmarks/quality.py); MNIST: the PyTorch example's 784-400-20 VAE, Adam 1e-3, batch 128.
# An entry for one data set, like ("gan", "grid"), takes precedence: on the 25 modes of the grid the
# 64 -> 32 GAN covers about 13; packing 2 points (PacGAN) with 128 -> 128 networks about 21.
_DEFAULTS = {
    ("vae", "2d"): dict(hidden=[64, 32], latent_dim=2, epochs=50, batch_size=256, lr=1e-3),
    ("gan", "2d"): dict(hidden=[64, 32], latent_dim=2, epochs=150, batch_size=128, lr=1e-3),
    ("gan", "grid"): dict(hidden=[128, 128], latent_dim=2, pack=2, epochs=250, batch_size=128, lr=1e-3),
    ("vaegan", "2d"): dict(hidden=[64, 32], latent_dim=2, epochs=100, batch_size=256, lr=2e-3),
    ("vae", "mnist"): dict(hidden=[400], latent_dim=20, epochs=10, batch_size=128, lr=1e-3),
    ("gan", "mnist"): dict(hidden=[400], latent_dim=20, epochs=20, batch_size=128, lr=2e-4),
    ("vaegan", "mnist"): dict(hidden=[400], latent_dim=20, epochs=20, batch_size=128, lr=2e-4),
}


def defaults(kind, data):
    """The default settings (hidden, latent_dim, epochs, batch_size, lr; for some GANs pack) for
    ``kind`` on ``data``: the entry for ``data`` itself when there is one, else its kind of data's."""
    if (kind, data) in _DEFAULTS:
        return dict(_DEFAULTS[(kind, data)])
    return dict(_DEFAULTS[(kind, "mnist" if data in IMAGE_SETS else "2d")])


@dataclass
class Dataset:
    name: str
    train: Tensor
    test: Tensor
    test_labels: Tensor
    note: str = ""

    @property
    def is_image(self):
        return self.name in IMAGE_SETS

    @property
    def data_dim(self):
        return self.train.shape[1]


def load_dataset(name, seed=0, log=print, limit=None):
    """Training and test rows of ``name``: 2-D sets are generated (train and test from different
    seeds); MNIST and Fashion-MNIST are read from their IDX files (:func:`minigen.data.load_images`).
    ``limit``: keep only the first ``limit`` training rows (quick tries; the test rows stay)."""
    if name in IMAGE_SETS:
        split = load_images(name, log=log)
        dataset = Dataset(name, split.train_images, split.test_images, split.test_labels, split.note)
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
    config = dict(data_dim=dataset.data_dim, hidden=list(settings["hidden"]),
                  latent_dim=settings["latent_dim"])
    if kind == "vae":
        config["likelihood"] = "bernoulli" if dataset.is_image else "gaussian"
        config["beta"] = settings.get("beta", 1.0)
    if kind == "gan" and settings.get("pack", 1) != 1:
        config["pack"] = settings["pack"]
    if kind == "vaegan":
        if dataset.is_image:  # Larsen et al.'s setting for images (the 2-D defaults are the model's)
            config.update(likelihood="bernoulli", llike="features", beta=1.0)
        if settings.get("gamma") is not None:
            config["gamma"] = settings["gamma"]
        if settings.get("beta") is not None:
            config["beta"] = settings["beta"]
    return config


def train_run(kind, data="ring", out=None, resume=False, quiet=False, seed=0, binarize=False,
              log=print, limit=None, **overrides):
    """Train ``kind`` ("vae", "gan", "vaegan") on ``data``, writing everything into the run folder
    ``out`` (default ``runs/<kind>-<data>-<time>``).  ``limit``: train on the first ``limit``
    training rows only.  ``overrides``: epochs, batch_size, lr, latent_dim, hidden, beta, gamma,
    pack (GAN) (None means the default).  Returns the folder."""
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    if data not in DATASETS:
        raise ValueError(f"unknown data {data!r}; choose one of {', '.join(DATASETS)}")
    if overrides.get("pack") is not None and kind != "gan":
        raise ValueError(f"--pack applies to the GAN only, not to the {kind}")
    settings = defaults(kind, data)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if out is None:
        if resume:
            raise RunError("--resume needs --out: the folder of the run to continue")
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = os.path.join("runs", f"{kind}-{data}-{stamp}")
    config_path = os.path.join(out, "config.json")
    if resume:
        if not os.path.exists(config_path):
            raise RunError(f"cannot resume: {config_path} does not exist")
        saved = read_json(config_path)
        if saved["kind"] != kind or saved["data"] != data:
            raise RunError(f"cannot resume: {out} holds a {saved['kind']} run on {saved['data']}, "
                           f"not {kind} on {data}")
        model_config = saved["model"]
        # the run continues with its own settings, except a larger --epochs to train longer
        epochs = overrides.get("epochs") or saved["train"]["epochs"]
        settings.update(saved["train"], epochs=epochs)
        seed, binarize = saved["train"]["seed"], saved["train"]["binarize"]
        limit = saved["train"].get("limit")
    dataset = load_dataset(data, seed=seed, log=log, limit=limit)
    if not resume:
        model_config = _model_config(kind, dataset, settings)
    B.manual_seed(seed)
    model = build_model(kind, **model_config)
    train_settings = dict(epochs=settings["epochs"], batch_size=settings["batch_size"],
                          lr=settings["lr"], seed=seed, binarize=binarize, limit=limit)
    write_json(config_path, {"kind": kind, "data": data, "backend": B.get_backend(),
                             "model": model_config, "train": train_settings})
    if not quiet:
        log(f"training {kind} on {data} for {settings['epochs']} epochs -> {out}")
    fit(model, dataset.train, epochs=settings["epochs"], batch_size=settings["batch_size"], seed=seed,
        lr=settings["lr"], out_dir=out, resume=resume, quiet=quiet, binarize=binarize)
    model.save(os.path.join(out, "model.npz"))
    metrics = _metrics(model, dataset, seed)
    write_json(os.path.join(out, "metrics.json"), metrics)
    _figures(model, dataset, out)
    if not quiet:
        log(_format_metrics(metrics))
    return out


def _load_run(folder, log=print):
    config_path = os.path.join(folder, "config.json")
    model_path = os.path.join(folder, "model.npz")
    for path in (config_path, model_path):
        if not os.path.exists(path):
            raise RunError(f"{folder} is not a finished run: {os.path.basename(path)} is missing")
    config = read_json(config_path)
    model = build_model(config["kind"], **config["model"])
    model.load(model_path)
    model.eval()
    return config, model


def evaluate_run(folder, log=print):
    """Recompute a finished run's metrics (written to metrics.json) and return them."""
    config, model = _load_run(folder)
    dataset = load_dataset(config["data"], seed=config["train"]["seed"], log=log)
    metrics = _metrics(model, dataset, config["train"]["seed"])
    write_json(os.path.join(folder, "metrics.json"), metrics)
    return metrics


def sample_run(folder, n, out):
    """Draw ``n`` samples from a finished run's model and save their figure to ``out``."""
    config, model = _load_run(folder)
    with no_grad():
        samples = model.sample(n)
    if config["model"]["data_dim"] == 2:
        figure = plots.samples_2d(samples, title=f"{n} samples ({config['kind']})")
    else:
        side = max(1, int(math.sqrt(n)))
        figure = plots.image_grid(samples, rows=-(-n // side), cols=side)
    return plots.save(figure, out)


# ----------------------------------------------------------------------------------------------------

def _metrics(model, dataset, seed):
    B.manual_seed(seed + 1)
    metrics = {}
    with no_grad():
        if dataset.name in ("ring", "grid"):
            metrics.update(mode_metrics(model.sample(N_METRIC_SAMPLES), dataset.name))
        if getattr(model, "kind", None) == "vae":
            k = 100 if dataset.is_image else 500
            metrics.update(evaluate_vae(model, dataset.test[:N_IWAE_IMAGES], k=k))
            metrics["iwae_k"] = k
            metrics["iwae_examples"] = min(N_IWAE_IMAGES, len(dataset.test))
    metrics["samples"] = N_METRIC_SAMPLES if dataset.name in ("ring", "grid") else None
    return metrics


def _format_metrics(metrics):
    parts = []
    if "modes_covered" in metrics:
        parts.append(f"modes covered {metrics['modes_covered']}/{metrics['modes_total']}, "
                     f"high-quality samples {100 * metrics['high_quality_fraction']:.1f}%, "
                     f"reverse KL {metrics['reverse_kl']:.3f}")
    if "test_loss" in metrics:
        parts.append(f"test loss (negative ELBO) {metrics['test_loss']:.2f} nats, "
                     f"IWAE NLL (K={metrics['iwae_k']}) {metrics['test_nll_iwae']:.2f} nats")
    return "; ".join(parts) or "no metrics for this data set"


def _figures(model, dataset, out):
    history = read_json(os.path.join(out, HISTORY))
    plots.save(plots.loss_curves(history, title=f"{model.kind} on {dataset.name}"),
               os.path.join(out, "loss.png"))
    with no_grad():
        if dataset.is_image:
            plots.save(plots.image_grid(model.sample(64), title="samples"),
                       os.path.join(out, "samples.png"))
        else:
            plots.save(plots.samples_2d(model.sample(N_METRIC_SAMPLES), dataset.test,
                                        title=f"{model.kind} samples on {dataset.name}"),
                       os.path.join(out, "samples.png"))
        if not hasattr(model, "encode") or not hasattr(model, "reconstruct"):
            return
        x = dataset.test
        recon = model.reconstruct(x[:300])
        if dataset.is_image:
            figure = plots.reconstructions(x[:10], recon[:10])
        else:
            figure = plots.reconstructions_2d(x[:300], recon)
        plots.save(figure, os.path.join(out, "reconstructions.png"))
        if model.kind == "vae":
            mu, _ = model.encode(x)
            plots.save(plots.latent_space(mu, dataset.test_labels), os.path.join(out, "latent.png"))
            if mu.shape[1] == 2:
                steps = 15 if dataset.is_image else 25
                line = [-3.0 + 6.0 * i / (steps - 1) for i in range(steps)]
                z = Tensor([[a, b] for b in reversed(line) for a in line], dtype=B.dtype_name(mu.dtype))
                decoded = _decode_mean(model, z.to(mu.device))
                plots.save(plots.decoded_latent_grid(decoded, steps),
                           os.path.join(out, "latent_grid.png"))


def _decode_mean(model, z):
    """The data-space mean the decoder gives for latent points ``z``."""
    decoded = model.decode(z)
    return sigmoid(decoded) if getattr(model, "likelihood", "gaussian") == "bernoulli" else decoded

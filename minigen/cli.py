"""The command line: ``python -m minigen`` (or the ``minigen`` script).

    python -m minigen train {vae,gan,vaegan} [--data ring|grid|moons|mnist|fashion-mnist] ...
    python -m minigen evaluate RUN_FOLDER
    python -m minigen sample RUN_FOLDER -n 64 --out samples.png
    python -m minigen demo

``train`` writes a run folder (see :mod:`minigen.runs`); ``evaluate`` recomputes its metrics;
``sample`` draws from its model.  ``demo`` fits a small network to a sine wave with nothing but
tensors and autograd.  Bad arguments give a short message and exit code 2, never a traceback.
"""

import argparse
import json
import math
import sys

from . import backend as B
from .autograd import no_grad
from .creation import rand, randn, zeros
from .data import DataError
from .functions import mean, sin, tanh
from .runs import DATASETS, MODELS, RunError, evaluate_run, sample_run, train_run
from .train import NonFiniteLoss


def demo(steps=300, seed=0, hidden=32, lr=0.05, report_every=50, out=sys.stdout):
    """Fit y = sin(x) on [-3, 3] with a tanh network by plain gradient descent; return the losses."""
    B.manual_seed(seed)
    x = rand(256, 1) * 6.0 - 3.0
    y = sin(x) + randn(256, 1) * 0.05
    w1 = randn(1, hidden, requires_grad=True)
    b1 = zeros(hidden, requires_grad=True)
    w2 = (randn(hidden, 1) / math.sqrt(hidden)).requires_grad_()
    b2 = zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]
    losses = []
    print(f"fitting sin(x) with a 1-{hidden}-1 tanh network, {steps} steps of gradient descent "
          f"(backend: {B.get_backend()})", file=out)
    for step in range(1, steps + 1):
        prediction = tanh(x @ w1 + b1) @ w2 + b2
        loss = mean((prediction - y) ** 2)
        for p in params:
            p.grad = None
        loss.backward()
        with no_grad():
            for p in params:
                p.data -= lr * p.grad.data
        losses.append(loss.item())
        if step == 1 or step % report_every == 0:
            print(f"step {step:4d}   mean squared error {losses[-1]:.4f}", file=out)
    return losses


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _add_machine_options(parser):
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--threads", type=_positive_int, default=1,
                        help="CPU threads for matrix products (default 1: the fastest for these "
                             "small models; see minigen.backend.set_num_threads)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minigen", description="minigen: train and inspect VAEs, GANs and VAE-GANs.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and write a run folder",
                       description="Train a VAE, GAN or VAE-GAN. Settings left out take the defaults "
                                   "for the model and the data (see minigen/runs.py).")
    t.add_argument("model", choices=MODELS)
    t.add_argument("--data", default="ring", choices=DATASETS, help="default: ring")
    t.add_argument("--epochs", type=_positive_int)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--latent-dim", type=_positive_int)
    t.add_argument("--hidden", type=_positive_int, nargs="+", metavar="H",
                   help="hidden layer widths, e.g. --hidden 64 32")
    t.add_argument("--lr", type=_positive_float, help="learning rate")
    t.add_argument("--beta", type=_positive_float, help="VAE: weight of the KL term (default 1)")
    t.add_argument("--gamma", type=_positive_float, help="VAE-GAN: weight of the decoder's "
                                                         "reconstruction term")
    t.add_argument("--pack", type=_positive_int, help="GAN: the discriminator judges this many points "
                                                      "at a time (PacGAN; default 1, on grid 2)")
    t.add_argument("--binarize", action="store_true", help="MNIST: dynamic binarization of batches")
    t.add_argument("--limit", type=_positive_int, metavar="N",
                   help="train on the first N training rows only (quick tries)")
    t.add_argument("--seed", type=int, default=0)
    _add_machine_options(t)
    t.add_argument("--out", help="run folder (default runs/<model>-<data>-<time>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="recompute a run's metrics")
    e.add_argument("run", help="a run folder")
    _add_machine_options(e)

    s = sub.add_parser("sample", help="draw samples from a trained model into a PNG")
    s.add_argument("run", help="a run folder")
    s.add_argument("-n", type=_positive_int, default=64, help="number of samples (default 64)")
    s.add_argument("--out", required=True, help="the PNG file to write")
    _add_machine_options(s)

    d = sub.add_parser("demo", help="fit a small network with autograd and print its loss falling")
    d.add_argument("--steps", type=_positive_int, default=300)
    d.add_argument("--seed", type=int, default=0)
    _add_machine_options(d)
    return parser


def _run(args):
    if args.command == "train":
        train_run(args.model, args.data, out=args.out, resume=args.resume, quiet=args.quiet,
                  seed=args.seed, binarize=args.binarize, limit=args.limit, epochs=args.epochs,
                  batch_size=args.batch_size, lr=args.lr, latent_dim=args.latent_dim,
                  hidden=args.hidden, beta=args.beta, gamma=args.gamma, pack=args.pack)
    elif args.command == "evaluate":
        metrics = evaluate_run(args.run)
        print(json.dumps(metrics, indent=2))
    elif args.command == "sample":
        print(f"wrote {sample_run(args.run, args.n, args.out)}")
    else:
        losses = demo(steps=args.steps, seed=args.seed)
        print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")


def main(argv=None):
    """Run the command line; returns the exit code (0 fine, 1 training diverged, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        B.set_backend(args.backend)
        B.set_num_threads(args.threads)
        _run(args)
    except NonFiniteLoss as err:
        print(f"minigen: error: {err}", file=sys.stderr)
        return 1
    except (B.BackendError, DataError, RunError, ValueError, FileNotFoundError) as err:
        print(f"minigen: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("minigen: interrupted; the last finished epoch's checkpoint is kept (--resume)",
              file=sys.stderr)
        return 130
    return 0

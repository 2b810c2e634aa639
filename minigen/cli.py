"""The command line: ``python -m minigen`` (or the ``minigen`` script).

    python -m minigen train {vae,gan,vaegan} [--data ring|grid|moons|mnist|fashion-mnist] ...
    python -m minigen evaluate RUN_FOLDER
    python -m minigen sample RUN_FOLDER -n 64 --out samples.png
    python -m minigen demo

``train`` writes a run folder (see :mod:`minigen.runs`); ``evaluate`` recomputes its metrics;
``sample`` draws from its model.  ``demo`` fits a small network to a sine wave with nothing but
tensors and autograd.

No traceback reaches the user: bad input (arguments, a damaged or missing file, a folder that holds
another run) gives one line naming the file and what is wrong, and exit code 2; a fault during the
work (a full disk, a lost permission) or a diverging loss exit code 1, saying what was kept; Ctrl-C
exit code 130, saying whether a checkpoint exists to resume from.
"""

import argparse
import json
import math
import os
import signal
import sys
import threading
import warnings

from . import backend as B
from .autograd import no_grad
from .creation import rand, randn, zeros
from .data import DataError
from .functions import mean, sin, tanh
from .io import BadFileError, strict_json
from .runs import (DATASETS, MODELS, SETTINGS, RunError, RunFault, RunInterrupted, describe_default,
                   evaluate_run, positive_int, recorded_threads, sample_run, train_run)
from .train import NonFiniteLoss


def demo(steps=300, seed=0, hidden=32, lr=0.05, report_every=50, out=sys.stdout):
    """Fit y = sin(x) on [-3, 3] with a tanh network by plain gradient descent; return the
    losses."""
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


def _argument_type(parse):
    """argparse shows the message of an ArgumentTypeError (a ValueError's it replaces with its
    own)."""
    def checked(text):
        try:
            return parse(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    checked.__name__ = parse.__name__
    return checked


def _add_machine_options(parser):
    parser.add_argument("--backend", choices=["numpy", "cupy"],
                        help="where the arrays live (default: $MINIGEN_BACKEND, else numpy; this "
                             "flag overrides the variable)")
    parser.add_argument("--threads", type=_argument_type(positive_int), default=None,
                        help="CPU threads for matrix products (default: the CPUs that other work "
                             "leaves idle now, at least 1; with --resume, the run's own count, "
                             "which keeps it bit-identical to an uninterrupted run; more than the "
                             "CPUs available are cut to their number)")


def _add_setting(parser, setting):
    """One flag of :data:`minigen.runs.SETTINGS`, its help ending with the defaults it takes."""
    models = "" if len(setting.models) == len(MODELS) else \
        "/".join(m.upper() if m != "vaegan" else "VAE-GAN" for m in setting.models) + ": "
    text = f"{models}{setting.help} (default: {describe_default(setting.name)})"
    if setting.parse is None:
        parser.add_argument(setting.flag, action="store_true", default=None, help=text)
    else:
        parser.add_argument(setting.flag, type=_argument_type(setting.parse), nargs=setting.nargs,
                            metavar=setting.metavar, choices=setting.choices, help=text)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minigen", description="minigen: train and inspect VAEs, GANs and VAE-GANs.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser(
        "train", help="train a model and write a run folder",
        description="Train a VAE, GAN or VAE-GAN into a run folder. Settings left out take the "
                    "defaults for the model and the data, shown with each flag.")
    t.add_argument("model", choices=MODELS, help="the model to train")
    t.add_argument("--data", choices=DATASETS,
                   help=f"the data set (default: {DATASETS[0]}; with --resume, the run's)")
    for setting in SETTINGS:
        _add_setting(t, setting)
    _add_machine_options(t)
    t.add_argument("--out", help="the run folder (default: runs/<model>-<data>-<time>)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its checkpoint; --epochs, --batch-size "
                        "and --lr may take new values")
    t.add_argument("--overwrite", action="store_true",
                   help="train into an --out that holds a run, removing that run's files first")
    t.add_argument("--quiet", action="store_true",
                   help="no progress bar (the line after each epoch, the run folder, the "
                        "figures and the final metrics are still printed)")

    e = sub.add_parser("evaluate", help="recompute a run's metrics",
                       description="Recompute a finished run's metrics and print them as JSON; "
                                   "metrics.json is rewritten when they differ and the folder is "
                                   "writable.")
    e.add_argument("run", help="a run folder")
    _add_machine_options(e)

    s = sub.add_parser("sample", help="draw samples from a trained model into an image",
                       description="Draw samples from a finished run's model into an image file.")
    s.add_argument("run", help="a run folder")
    s.add_argument("-n", type=_argument_type(positive_int), default=64,
                   help="number of samples (default: 64)")
    s.add_argument("--out", required=True, help="the image file to write (PNG, or any format "
                                                "matplotlib knows by its suffix)")
    s.add_argument("--seed", type=int, default=0,
                   help="seed of the samples: the same seed draws the same figure (default: 0)")
    _add_machine_options(s)

    d = sub.add_parser("demo", help="fit a small network with autograd and print its loss falling")
    d.add_argument("--steps", type=_argument_type(positive_int), default=300,
                   help="gradient-descent steps (default: 300)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    _add_machine_options(d)
    return parser


def _say(message):
    print(message, file=sys.stderr)


def _run(args):
    if args.command == "train":
        settings = {s.name: getattr(args, s.name) for s in SETTINGS}
        train_run(args.model, args.data, out=args.out, resume=args.resume,
                  overwrite=args.overwrite, quiet=args.quiet, **settings)
    elif args.command == "evaluate":
        metrics = evaluate_run(args.run, log=_say, warn=lambda m: _say(f"minigen: warning: {m}"))
        print(json.dumps(strict_json(metrics), indent=2))
    elif args.command == "sample":
        print(f"wrote {sample_run(args.run, args.n, args.out, seed=args.seed)}")
    else:
        losses = demo(steps=args.steps, seed=args.seed)
        print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")


def _available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _machine(args):
    """Choose the backend (--backend over $MINIGEN_BACKEND) and the number of BLAS threads."""
    if args.backend is not None:
        B.set_backend(args.backend)
    elif B.ENVIRONMENT_ERROR:
        raise B.BackendError(f"{B.ENVIRONMENT_ERROR}. Set MINIGEN_BACKEND to numpy or cupy, or "
                             "choose with --backend")
    threads, cpus = args.threads, _available_cpus()
    if threads is None and getattr(args, "resume", False) and args.out is not None:
        recorded = recorded_threads(args.out)   # the run's own count: the same rounding
        threads = None if recorded is None else min(recorded, cpus)
    if threads is None:
        threads = B.free_cpus()        # spinning BLAS threads on busy cores cost far more than
    elif threads > cpus:               # idle cores save: see set_num_threads
        _say(f"minigen: note: --threads {threads} is more than the {cpus} CPUs available; "
             f"using {cpus}")
        threads = cpus
    B.set_num_threads(threads)


def _describe_os_error(err):
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or err}"


class _Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``, a batch system's time limit), handled as Ctrl-C: the run says what it
    keeps and leaves its folder clean."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv=None):
    """Run the command line; returns the exit code (0 fine, 1 a fault during the work or a diverging
    loss, 2 bad input, 130 interrupted by Ctrl-C, 143 by SIGTERM)."""
    args = build_parser().parse_args(argv)
    if threading.current_thread() is threading.main_thread():   # signals reach the main thread only
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    else:
        previous = None
    try:
        return _main(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(args):
    terminated = 128 + signal.SIGTERM
    try:
        with warnings.catch_warnings():
            # a diverging run overflows before the NaN guard stops it with a message of its own
            warnings.filterwarnings("ignore", r"(overflow|invalid value) encountered",
                                    RuntimeWarning)
            _machine(args)
            _run(args)
    except BrokenPipeError:           # `minigen evaluate RUN | head`: the reader left; say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no error at exit either
        return 1
    except (NonFiniteLoss, RunFault) as err:
        _say(f"minigen: error: {err}")
        return 1
    except RunInterrupted as err:
        _say(f"minigen: {err}")
        return terminated if isinstance(getattr(err, "original", None), _Terminated) else 130
    except KeyboardInterrupt as err:
        _say("minigen: interrupted")
        return terminated if isinstance(err, _Terminated) else 130
    except (B.BackendError, DataError, RunError, BadFileError, ValueError) as err:
        _say(f"minigen: error: {err}")
        return 2
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
        _say(f"minigen: error: {_describe_os_error(err)}")
        return 2
    except OSError as err:
        _say(f"minigen: error: {_describe_os_error(err)}")
        return 1
    return 0

"""The command line: ``python -m minigen`` (or the ``minigen`` script).

    python -m minigen demo [--steps N] [--seed S] [--backend numpy|cupy]

``demo`` fits a small two-layer network to a noisy sine wave with nothing but tensors and autograd,
printing the loss as it falls: a one-screen check that an install works.
"""

import argparse
import math
import sys

from . import backend as B
from .autograd import no_grad
from .creation import rand, randn, zeros
from .functions import mean, sin, tanh


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


def build_parser():
    parser = argparse.ArgumentParser(prog="minigen", description="minigen: a small deep-learning engine")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="fit a small network with autograd and print its loss falling")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        B.set_backend(args.backend)
        if args.command == "demo":
            if args.steps < 1:
                parser.error("--steps must be at least 1")
            losses = demo(steps=args.steps, seed=args.seed)
            print(f"loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")
    except B.BackendError as err:
        print(f"minigen: error: {err}", file=sys.stderr)
        return 2
    return 0

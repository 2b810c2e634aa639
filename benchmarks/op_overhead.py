"""How much does recording an op cost, compared with the raw array call?

For each op and array size, times the raw NumPy (or CuPy) expression, the same op on minigen tensors
without a graph (no_grad) and with one being recorded (requires_grad=True), and reports the ratios.
The ratio tends to 1 as arrays grow: the overhead is a fixed cost per op (Python bookkeeping), which
is what this script makes visible.

    python benchmarks/op_overhead.py [--backend numpy|cupy] [--repeat 2000]
"""

import argparse
import time

import minigen as mg
from minigen import backend as B


def _time(fn, repeat):
    """Best of 5 runs of ``repeat`` calls, in microseconds per call; the device is synchronised
    before the clock starts and before it stops (GPU calls return before their work is done)."""
    fn()  # warm up
    best = float("inf")
    for _ in range(5):
        B.synchronize()
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        B.synchronize()
        best = min(best, time.perf_counter() - start)
    return best / repeat * 1e6


def measure(backend="numpy", repeat=2000):
    """Print the table and return its rows (dicts) plus the forward+backward comparison."""
    mg.set_backend(backend)
    xp = B.current().xp
    mg.manual_seed(0)
    rows = []
    print(f"backend: {backend}; microseconds per call (best of 5 x {repeat})")
    print(f"{'op':<10} {'size':>9} {'raw':>9} {'no_grad':>9} {'recorded':>9} "
          f"{'no_grad/raw':>12} {'recorded/raw':>13}")
    for n in (16, 128, 1024):
        a, b = mg.randn(n, n), mg.randn(n, n)
        ra, rb = a.data, b.data
        ga, gb = mg.Tensor(ra, requires_grad=True), mg.Tensor(rb, requires_grad=True)
        cases = [
            ("add", lambda: ra + rb, lambda: a + b, lambda: ga + gb),
            ("mul", lambda: ra * rb, lambda: a * b, lambda: ga * gb),
            ("tanh", lambda: xp.tanh(ra), lambda: mg.tanh(a), lambda: mg.tanh(ga)),
            ("matmul", lambda: ra @ rb, lambda: a @ b, lambda: ga @ gb),
            ("sum", lambda: xp.sum(ra, axis=0), lambda: a.sum(axis=0), lambda: ga.sum(axis=0)),
        ]
        n_calls = max(repeat // (n // 16) ** 2, 5)
        for name, raw, plain, recorded in cases:
            t_raw = _time(raw, n_calls)
            with mg.no_grad():
                t_plain = _time(plain, n_calls)
            t_rec = _time(recorded, n_calls)
            rows.append({"op": name, "size": n, "raw_us": t_raw, "no_grad_us": t_plain,
                         "recorded_us": t_rec})
            print(f"{name:<10} {f'{n}x{n}':>9} {t_raw:>9.2f} {t_plain:>9.2f} {t_rec:>9.2f} "
                  f"{t_plain / t_raw:>12.2f} {t_rec / t_raw:>13.2f}")

    # forward + backward of a small MLP layer against the same computation written by hand
    x_raw, w_raw = mg.randn(128, 256).data, mg.randn(256, 128).data
    x, w = mg.Tensor(x_raw), mg.Tensor(w_raw, requires_grad=True)

    def by_hand():
        h = xp.tanh(x_raw @ w_raw)
        gh = 1.0 - h * h            # d sum(tanh(xw)) / d(xw)
        return x_raw.T @ gh

    def with_autograd():
        w.grad = None
        mg.tanh(x @ w).sum().backward()
        return w.grad

    t_hand = _time(by_hand, max(repeat // 10, 5))
    t_auto = _time(with_autograd, max(repeat // 10, 5))
    print(f"\nsum(tanh(x @ w)) forward+backward, x 128x256, w 256x128: by hand {t_hand:.1f} us, "
          f"autograd {t_auto:.1f} us, ratio {t_auto / t_hand:.2f}")
    return {"ops": rows, "layer": {"hand_us": t_hand, "autograd_us": t_auto}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args(argv)
    mg.set_num_threads(1)
    measure(args.backend, args.repeat)


if __name__ == "__main__":
    main()

"""The convolution benchmark (``python benchmarks/run.py --suite conv``), the DCGAN-sized step of
issue 13: on 28 x 28 images, batch 64,

    discriminator side   x (64, 1, 28, 28) -> conv 1->64 (k4 s2 p1) -> conv 64->128 (k4 s2 p1)
    generator side       h (64, 64, 7, 7)  -> conv_transpose 64->32 (k4 s2 p1) -> 32->1 (k4 s2 p1)

forward and backward (every weight and bias gets its gradient; the inputs are data and need
none), timed for minigen's fused ops, minigen's im2col reference (fusion off) and PyTorch on the CPU
(oneDNN), one thread each.  Memory: the peak resident memory one step adds to its process, each
implementation in a fresh subprocess (Linux's peak resident set, reset before the step; PyTorch's
allocator is invisible to tracemalloc), for minigen also the exact peak of its arrays during a step
(tracemalloc), and the bytes of minigen's im2col / col2im buffers, counted from the shapes.  Both
allocators keep freed memory for reuse, so the resident peaks are rough.

Run alone: ``python benchmarks/conv_bench.py`` prints the table.
"""

import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import minigen as mg  # noqa: E402

BATCH = 64
LAYERS = (  # (kind, in_channels, out_channels, input size); all kernel 4, stride 2, padding 1
    ("conv", 1, 64, 28), ("conv", 64, 128, 14),
    ("transpose", 64, 32, 7), ("transpose", 32, 1, 14))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    h = rng.standard_normal((BATCH, 64, 7, 7)).astype(np.float32)
    return x, h


class MinigenStep:
    """The step with minigen's layers, fused (the default) or on the im2col reference."""

    def __init__(self, backend="numpy", fusion=True):
        self.name = "minigen" + ("" if fusion else " (reference: im2col in primitive ops)")
        self.fusion = fusion
        with mg.using_backend(backend):
            mg.manual_seed(0)
            nn = mg.nn
            self.d1, self.d2 = nn.Conv2d(1, 64, 4, 2, 1), nn.Conv2d(64, 128, 4, 2, 1)
            self.g1 = nn.ConvTranspose2d(64, 32, 4, 2, 1)
            self.g2 = nn.ConvTranspose2d(32, 1, 4, 2, 1)
            x, h = _data()
            self.x, self.h = mg.Tensor(x), mg.Tensor(h)
        self.params = [p for m in (self.d1, self.d2, self.g1, self.g2) for p in m.parameters()]

    def step(self):
        with mg.using_fusion(self.fusion):
            for p in self.params:
                p.grad = None
            loss = self.d2(self.d1(self.x)).sum() + self.g2(self.g1(self.h)).sum()
            loss.backward()
        mg.synchronize()


class TorchStep:
    """The same step in PyTorch: on the CPU with one thread (oneDNN), or on CUDA (cuDNN)."""

    def __init__(self, device="cpu"):
        import torch
        torch.set_num_threads(1)
        torch.manual_seed(0)
        nn = torch.nn
        self.torch, self.device = torch, device
        self.name = "PyTorch CPU (oneDNN)" if device == "cpu" else "PyTorch CUDA (cuDNN)"
        self.d1, self.d2 = nn.Conv2d(1, 64, 4, 2, 1), nn.Conv2d(64, 128, 4, 2, 1)
        self.g1, self.g2 = nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ConvTranspose2d(32, 1, 4, 2, 1)
        self.layers = [m.to(device) for m in (self.d1, self.d2, self.g1, self.g2)]
        x, h = _data()
        self.x, self.h = torch.from_numpy(x).to(device), torch.from_numpy(h).to(device)
        self.params = [p for m in self.layers for p in m.parameters()]

    def step(self):
        for p in self.params:
            p.grad = None
        loss = self.d2(self.d1(self.x)).sum() + self.g2(self.g1(self.h)).sum()
        loss.backward()
        if self.device != "cpu":
            self.torch.cuda.synchronize()


def im2col_bytes():
    """Bytes of the column buffers minigen's fused ops make in one step (float32): forward, the
    input gradients (transposed convolutions and convolutions) and the weight gradients."""
    total = {"forward": 0, "backward": 0}
    for kind, cin, cout, size in LAYERS:
        out = size // 2 if kind == "conv" else size * 2
        small, large = (out, size) if kind == "conv" else (size, out)
        if kind == "conv":
            # forward: im2col of x, (cin*16, N*out^2), reused by the weight gradient
            total["forward"] += cin * 16 * BATCH * small * small * 4
            if cin > 1:   # the first layer's input is data: no input gradient
                total["backward"] += cin * 16 * BATCH * small * small * 4   # col2im columns
        else:
            total["forward"] += cout * 16 * BATCH * small * small * 4      # columns for col2im
            total["backward"] += cout * 16 * BATCH * small * small * 4     # im2col of gy (weight)
    return total


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(f"no {field} in /proc/self/status")


def _peak_rss_of_step(which):
    """Run in a fresh process: the peak resident memory (bytes) that one step (after a warm-up
    step) adds to the process.  Linux resets the peak (VmHWM) when 5 is written to clear_refs."""
    step = TorchStep() if which == "torch" else MinigenStep(fusion=which == "fused")
    step.step()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kb("VmRSS")
    step.step()
    rss = (_status_kb("VmHWM") - before) * 1024
    traced = None
    if which != "torch":             # NumPy reports its allocations to tracemalloc, exactly
        tracemalloc.start()
        step.step()
        traced = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return rss, traced


def peak_rss(which):
    script = ("import sys, json; sys.path.insert(0, %r); import conv_bench; "
              "print(json.dumps(conv_bench._peak_rss_of_step(%r)))"
              % (os.path.dirname(os.path.abspath(__file__)), which))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def interleaved(steps, repeats, per_round=3):
    """Median seconds per step of each implementation: two warm-up steps each, then ``repeats``
    rounds in which each does ``per_round`` steps in turn (so load changes hit all alike)."""
    for s in steps:
        s.step()
        s.step()
    times = {s.name: [] for s in steps}
    for _ in range(repeats):
        for s in steps:
            start = time.perf_counter()
            for _ in range(per_round):
                s.step()
            times[s.name].append((time.perf_counter() - start) / per_round)
    return {name: statistics.median(v) for name, v in times.items()}


def conv_suite(backend="numpy", repeats=5, torch_ok=True, memory=True):
    """Rows {implementation, seconds (per step), peak_mb} for run.py's table: minigen fused, its
    reference, and PyTorch (CPU for the numpy backend, CUDA for cupy) when ``torch_ok``."""
    steps = [MinigenStep(backend), MinigenStep(backend, fusion=False)]
    if torch_ok:
        steps.append(TorchStep("cpu" if backend == "numpy" else "cuda"))
    seconds = interleaved(steps, repeats)
    kinds = ["fused", "reference", "torch"]
    memory = memory and backend == "numpy" and os.path.exists("/proc/self/clear_refs")
    rows = []
    for kind, s in zip(kinds, steps):
        row = {"implementation": s.name, "seconds": seconds[s.name]}
        if memory:
            rss, traced = peak_rss(kind)
            row["peak_mb"] = rss / 2**20
            row["traced_peak_mb"] = None if traced is None else traced / 2**20
        rows.append(row)
    buffers = im2col_bytes()
    rows[0]["im2col_mb"] = {k: v / 2**20 for k, v in buffers.items()}
    return rows


if __name__ == "__main__":
    mg.set_num_threads(1)
    for row in conv_suite(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 5):
        print(row)
    print("load", os.getloadavg()[0])

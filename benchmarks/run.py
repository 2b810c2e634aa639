"""minigen's speed benchmarks: seconds per epoch against hand-written NumPy and PyTorch.

    python benchmarks/run.py [--backend numpy|cupy] [--quick] [--suite NAME] [--blas both|as-is]
                             [--threads N] [--clock wall|cpu] [--repeats N] [--out FILE.json]

Suites (each a table; every number a median of interleaved repeats in one process, so the
implementations share the machine's mood):

* ``vae``: the MNIST VAE (784-400-20, batch 128, float32, Adam 1e-3, the negative ELBO) for one
  epoch of the 8,000 training digits: minigen's ``VAE``, the same VAE written by a user with the
  public layers (``UserVAE``: ``Dense`` layers, ``mg.relu``, the losses, ``mg.reparameterize``),
  both with fusion off too, the hand-written NumPy version with derived gradients
  (``benchmarks/references.py``) and PyTorch when it is installed; peak memory on the CPU
  (tracemalloc: the arrays NumPy allocates, building the model and training one epoch; the training
  images themselves are not counted).  On ``--backend cupy`` the same on the GPU, plus minigen on
  NumPy for the speed-up.
* ``gan``, ``vaegan``: minigen's GAN and VAE-GAN against PyTorch twins with the same updates
  (``TorchGAN``, ``TorchVAEGAN``), on the 2-D ring (8,000 points) and on 784-dim MNIST, fusion on
  and off.
* ``deep-mlp``: 8 Dense layers of 64 with tanh (a ``Sequential`` of ``Dense`` and ``Tanh``
  modules), batch 32, mean squared error, Adam: the per-op cost dominates.  Against hand-written
  NumPy and PyTorch.
* ``mlp``: a wide MLP autoencoder (784-2048-2048-784, batch 1024, Adam, bce_with_logits) - matrix
  products dominate; the GPU suite's main case.
* ``sweep``: the VAE's seconds per epoch against batch size and hidden width (``plot_sweep.py``
  draws it, with the GPU's results beside the CPU's).
* ``ops``: the cost of a recorded op against the raw array call (``op_overhead.py``).
* ``conv``: the DCGAN-sized convolution step of issue 13 (``conv_bench.py``): convolutions 1->64
  and 64->128, transposed convolutions 64->32 and 32->1, all kernel 4 stride 2 padding 1, batch 64,
  forward and backward, seconds per step: minigen's fused ops, its im2col reference (fusion off)
  and PyTorch on the CPU; the peak memory one step adds (each in a fresh process) and the size of
  minigen's im2col buffers.

BLAS settings: some machines set ``OPENBLAS_CORETYPE`` / ``OPENBLAS_L2_SIZE`` (this project's do:
they make OpenBLAS use slower kernels); a user's machine has neither.  With ``--blas both`` (the
default when either is set) every suite runs as the environment is and then again in a subprocess
with both unset, and both tables are printed and saved.

Without MNIST (``MINIGEN_DATA`` unset and nothing in the cache), random binary images of the same
shape stand in; the table says so.  PyTorch runs with as many threads as minigen's BLAS.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402  (benchmarks may use NumPy directly; the library may not)

import minigen as mg  # noqa: E402
from minigen import backend as B  # noqa: E402
from conv_bench import conv_suite  # noqa: E402
from references import (NumpyDeepMLP, NumpyVAE, TorchGAN, TorchVAEGAN,  # noqa: E402
                        torch_deep_mlp, torch_vae)

N_TRAIN = 8000
BLAS_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------

def training_images():
    """(8000, 784) float32 NumPy images in [0, 1] and a description of where they came from."""
    try:
        split = mg.data.load_mnist(download=False, log=lambda *a: None)
        images = split.train_images.numpy().astype(np.float32)[:N_TRAIN]
        return images, "MNIST (first 8,000 test digits)"
    except mg.data.DataError:
        rng = np.random.default_rng(0)
        images = (rng.random((N_TRAIN, 784)) < 0.13).astype(np.float32)
        return images, "random binary images (MNIST not found: set MINIGEN_DATA)"


def ring_points():
    """(8000, 2) float32 NumPy points of the ring of 8 Gaussians."""
    points, _ = mg.data.ring(n=N_TRAIN, seed=0)
    return points.numpy().astype(np.float32)


# --------------------------------------------------------------------------------------------------
# the implementations: each has .name, .epoch() (one pass over the data, finished on the device)
# --------------------------------------------------------------------------------------------------

class MinigenRun:
    """A minigen model trained with its own ``train_step`` and ``DataLoader``, as the CLI does;
    ``fusion=False`` runs it on the composite references (``mg.using_fusion(False)``)."""

    def __init__(self, images, backend, batch_size, build, lr=1e-3, fusion=True, label=None):
        self.backend, self.fusion = backend, fusion
        self.name = f"minigen{' ' + label if label else ''} ({backend}" + \
            ("" if fusion else ", fusion off") + ")"
        with mg.using_backend(backend):
            mg.manual_seed(0)
            self.model = build()
            self.optimizers = (self.model.make_optimizers() if lr is None
                               else self.model.make_optimizers(lr=lr))
            arrays = images if isinstance(images, tuple) else (images,)
            self.loader = mg.data.DataLoader(*(mg.Tensor(a) for a in arrays),
                                             batch_size=batch_size, shuffle=True)

    def epoch(self):
        with mg.using_backend(self.backend), mg.using_fusion(self.fusion):
            for x in self.loader:
                self.model.train_step(x, self.optimizers)
            B.synchronize()


class UserVAE(mg.nn.Module):
    """The MNIST VAE as a user writes it with minigen's public API, the way the PyTorch example is
    written: ``Dense`` layers, ``mg.relu`` between them, ``mg.reparameterize`` and the losses."""

    def __init__(self, sizes=(784, 400, 20)):
        super().__init__()
        d, h, k = sizes
        self.fc1, self.fc21, self.fc22 = mg.nn.Dense(d, h), mg.nn.Dense(h, k), mg.nn.Dense(h, k)
        self.fc3, self.fc4 = mg.nn.Dense(k, h), mg.nn.Dense(h, d)

    def loss(self, x):
        hidden = mg.relu(self.fc1(x))
        mu, log_var = self.fc21(hidden), self.fc22(hidden)
        z = mg.reparameterize(mu, log_var)
        logits = self.fc4(mg.relu(self.fc3(z)))
        rec = mg.losses.bce_with_logits(logits, x, reduction="none").sum(axis=1)
        kl = mg.losses.gaussian_kl(mu, log_var, reduction="none").sum(axis=1)
        return (rec + kl).mean()

    def make_optimizers(self, lr=1e-3):
        return {"adam": mg.optim.Adam(self.parameters(), lr=lr)}

    def train_step(self, x, optimizers):
        optimizers["adam"].zero_grad()
        loss = self.loss(x)
        loss.backward()
        optimizers["adam"].step()
        return {"loss": loss.item()}


class DeepMLP(mg.nn.Module):
    """8 Dense layers of 64 with Tanh modules between them, MSE against a fixed target."""

    def __init__(self, width=64, depth=8):
        super().__init__()
        layers = []
        for i in range(depth):
            layers.append(mg.nn.Dense(width, width))
            if i < depth - 1:
                layers.append(mg.nn.Tanh())
        self.net = mg.nn.Sequential(*layers)

    def make_optimizers(self, lr=1e-3):
        return {"adam": mg.optim.Adam(self.parameters(), lr=lr)}

    def train_step(self, batch, optimizers):
        x, y = batch
        optimizers["adam"].zero_grad()
        loss = mg.losses.mse(self.net(x), y)
        loss.backward()
        optimizers["adam"].step()
        return {"loss": loss.item()}


class Autoencoder(mg.nn.Module):
    """The wide MLP: x -> Dense stack (ReLU) -> logits of x itself; loss = per-example BCE."""

    def __init__(self, sizes):
        super().__init__()
        self.net = mg.models.mlp(sizes)

    def make_optimizers(self, lr):
        return {"adam": mg.optim.Adam(self.parameters(), lr=lr)}

    def train_step(self, x, optimizers):
        optimizers["adam"].zero_grad()
        loss = mg.losses.bce_with_logits(self.net(x), x, reduction="none").sum(axis=1).mean()
        loss.backward()
        optimizers["adam"].step()
        return {"loss": loss.item()}


class HandNumpyRun:
    """The hand-written VAE of references.py, on NumPy (or CuPy: ``xp``).  Like minigen's
    DataLoader, it draws each epoch's order on the host and gathers the batches where the data
    lives."""

    def __init__(self, images, batch_size, xp=np, label="NumPy"):
        self.name = f"hand-written ({label})"
        self.xp, self.batch_size = xp, batch_size
        self.images = xp.asarray(images)
        self.model = NumpyVAE(xp=xp)
        self.order_rng = np.random.default_rng(1)
        # NumPy's Generator and CuPy's RandomState both draw float32 normals directly
        self.noise = np.random.default_rng(2) if xp is np else xp.random.RandomState(2)
        self.sync = (lambda: None) if xp is np else xp.cuda.Device().synchronize

    def epoch(self):
        order = self.xp.asarray(self.order_rng.permutation(len(self.images)))
        for start in range(0, len(self.images), self.batch_size):
            x = self.images[order[start:start + self.batch_size]]
            eps = self.noise.standard_normal((x.shape[0], 20), dtype=np.float32)
            # the loss to the host, as a training loop logs it
            float(self.model.step(x, eps))
        self.sync()


class TorchRun:
    """The same model in PyTorch: ``model_fn`` builds a module with ``loss(*batch)`` trained by
    Adam, or (``twin=True``) an object with ``step(x)`` that makes its own updates (the GAN and
    VAE-GAN twins).  ``images`` is an array or a tuple of arrays (inputs, targets)."""

    def __init__(self, images, batch_size, model_fn, device="cpu", threads=1, lr=1e-3, twin=False):
        import torch
        self.torch, self.device, self.batch_size, self.twin = torch, device, batch_size, twin
        if device == "cpu":
            torch.set_num_threads(threads)
        self.name = f"PyTorch {torch.__version__.split('+')[0]} ({device})"
        torch.manual_seed(0)
        arrays = images if isinstance(images, tuple) else (images,)
        self.arrays = [torch.from_numpy(a).to(device) for a in arrays]
        self.model = model_fn()
        if not twin:
            self.model = self.model.to(device)
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)

    def epoch(self):
        n = len(self.arrays[0])
        order = self.torch.randperm(n, device=self.device)
        for start in range(0, n, self.batch_size):
            batch = [a[order[start:start + self.batch_size]] for a in self.arrays]
            if self.twin:
                self.model.step(*batch)
                continue
            loss = self.model.loss(*batch)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss.item()
        if self.device != "cpu":
            self.torch.cuda.synchronize()


class HandMLPRun:
    """The hand-written deep MLP of references.py on NumPy."""

    name = "hand-written (NumPy)"

    def __init__(self, arrays, batch_size):
        self.x, self.y = arrays
        self.batch_size = batch_size
        self.model = NumpyDeepMLP()
        self.order_rng = np.random.default_rng(1)

    def epoch(self):
        order = self.order_rng.permutation(len(self.x))
        for start in range(0, len(self.x), self.batch_size):
            index = order[start:start + self.batch_size]
            float(self.model.step(self.x[index], self.y[index]))


def torch_autoencoder(sizes):
    from torch import nn
    from torch.nn import functional as F

    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())

    class TorchAutoencoder(nn.Sequential):
        def loss(self, x):
            return F.binary_cross_entropy_with_logits(self(x), x, reduction="none").sum(1).mean()

    return TorchAutoencoder(*layers)


def torch_available(device="cpu"):
    try:
        import torch
    except ImportError:
        return False
    return device == "cpu" or torch.cuda.is_available()


# --------------------------------------------------------------------------------------------------
# measuring
# --------------------------------------------------------------------------------------------------

def settle():
    """Wait ``SETTLE`` seconds on this thread's core, busy (a sleep lets the CPU clock down, which
    the next epoch would then pay for), while the other cores' spinning threads give up."""
    end = time.perf_counter() + SETTLE
    while time.perf_counter() < end:
        pass


def interleaved_medians(runs, repeats):
    """Median seconds per epoch of each run: one warm-up epoch each, then ``repeats`` rounds in
    which every run does one epoch in turn.

    With more than one thread, each epoch is preceded by a pause of ``SETTLE`` seconds: the worker
    threads of a parallel library keep spinning on their cores for a while after its last call
    (PyTorch's OpenMP threads, OpenBLAS's), and without the pause they slowed down whichever run
    came next (at two threads, minigen's VAE right after PyTorch took 1.14 times the hand-written
    epoch, and 1.01-1.02 times in a loop without PyTorch)."""
    for run in runs:
        run.epoch()
    times = {run.name: [] for run in runs}
    for _ in range(repeats):
        for run in runs:
            if THREADS > 1:
                settle()
            start = CLOCK()
            run.epoch()
            times[run.name].append(CLOCK() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def peak_memory(make_run):
    """Peak bytes of host arrays while building a run (model, optimizer state) and training it for
    one epoch: what tracemalloc sees, which includes every buffer NumPy allocates."""
    tracemalloc.start()
    try:
        make_run().epoch()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def table(rows, unit="s / epoch"):
    """Rows of {implementation, seconds, peak_mb} -> markdown, with each row's ratio to the
    hand-written and to the PyTorch rows when the table has them (stored in the rows too)."""
    refs = [(label, next((r["seconds"] for r in rows if r["implementation"].startswith(prefix)),
                         None)) for label, prefix in (("hand-written", "hand-written (NumPy)"),
                                                      ("PyTorch", "PyTorch"))]
    refs = [(label, seconds) for label, seconds in refs if seconds is not None]
    memory = any(r.get("peak_mb") is not None for r in rows)
    head = f"| implementation | {unit} |" + "".join(f" vs {label} |" for label, _ in refs)
    lines = [head + (" peak memory (MB) |" if memory else ""),
             "|---|---:|" + "---:|" * (len(refs) + memory)]
    for r in rows:
        cells = [f"{r['seconds']:.3f}"]
        for label, seconds in refs:
            r[f"vs {label}"] = r["seconds"] / seconds
            cells.append(f"{r['seconds'] / seconds:.2f}")
        if memory:
            cells.append(f"{r['peak_mb']:.1f}" if r.get("peak_mb") is not None else "-")
        lines.append(f"| {r['implementation']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measured(runs, repeats, memory=None):
    """Rows for ``runs`` (interleaved medians), with peak memory from ``memory[i]`` factories."""
    seconds = interleaved_medians(runs, repeats)
    rows = []
    for i, run in enumerate(runs):
        row = {"implementation": run.name, "seconds": seconds[run.name]}
        if memory and memory[i] is not None:
            row["peak_mb"] = peak_memory(memory[i]) / 2**20
        rows.append(row)
    return rows


def vae_suite(images, backend, repeats, batch_size=128):
    def build():
        return mg.models.VAE(784, hidden=(400,), latent_dim=20)

    gpu = backend == "cupy"
    factories = [lambda: MinigenRun(images, backend, batch_size, build, label="VAE"),
                 lambda: MinigenRun(images, backend, batch_size, UserVAE, label="user-written VAE"),
                 lambda: MinigenRun(images, backend, batch_size, build, label="VAE", fusion=False),
                 lambda: MinigenRun(images, backend, batch_size, UserVAE, label="user-written VAE",
                                    fusion=False)]
    if gpu:
        import cupy
        factories.append(lambda: HandNumpyRun(images, batch_size, xp=cupy, label="CuPy"))
        factories.append(lambda: MinigenRun(images, "numpy", batch_size, build, label="VAE"))
    factories.append(lambda: HandNumpyRun(images, batch_size))
    if torch_available("cuda" if gpu else "cpu"):
        factories.append(lambda: TorchRun(images, batch_size, torch_vae, device="cuda" if gpu
                                          else "cpu", threads=THREADS))
    runs = [make() for make in factories]
    host = [make if (isinstance(run, HandNumpyRun) and run.xp is np
                     or getattr(run, "backend", "") == "numpy") else None
            for run, make in zip(runs, factories)]
    return measured(runs, repeats, host)


def gan_suite(data, backend, repeats, data_dim, batch_size):
    """minigen's GAN (fusion on and off) and its PyTorch twin; 2-D: the ring defaults (64-32
    networks, latent 2); 784-dim: 400 hidden units, latent 20."""
    hidden, latent = ((64, 32), 2) if data_dim == 2 else ((400,), 20)

    def build():
        return mg.models.GAN(data_dim, latent_dim=latent, hidden=hidden)

    runs = [MinigenRun(data, backend, batch_size, build, label="GAN"),
            MinigenRun(data, backend, batch_size, build, label="GAN", fusion=False)]
    if torch_available() and backend == "numpy":
        runs.append(TorchRun(data, batch_size, lambda: TorchGAN(data_dim, latent, hidden),
                             threads=THREADS, twin=True))
    return measured(runs, repeats)


def vaegan_suite(data, backend, repeats, data_dim, batch_size):
    """minigen's VAE-GAN (fusion on and off) and its PyTorch twin; 2-D: the ring defaults;
    784-dim: Larsen et al.'s image setting (features, Bernoulli, beta 1) with 400 hidden units."""
    if data_dim == 2:
        config = dict(hidden=(64, 32), latent_dim=2)
    else:
        config = dict(hidden=(400,), latent_dim=20, llike="features", likelihood="bernoulli",
                      beta=1.0)

    def build():
        return mg.models.VAEGAN(data_dim, **config)

    runs = [MinigenRun(data, backend, batch_size, build, lr=None, label="VAE-GAN"),
            MinigenRun(data, backend, batch_size, build, lr=None, label="VAE-GAN", fusion=False)]
    if torch_available() and backend == "numpy":
        runs.append(TorchRun(data, batch_size, lambda: TorchVAEGAN(data_dim, **config),
                             threads=THREADS, twin=True))
    return measured(runs, repeats)


def deep_mlp_suite(backend, repeats, batch_size=32):
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((N_TRAIN, 64)).astype(np.float32),
            rng.standard_normal((N_TRAIN, 64)).astype(np.float32))
    runs = [MinigenRun(data, backend, batch_size, DeepMLP, label="Sequential"),
            MinigenRun(data, backend, batch_size, DeepMLP, label="Sequential", fusion=False)]
    if backend == "numpy":
        runs.append(HandMLPRun(data, batch_size))
        if torch_available():
            runs.append(TorchRun(data, batch_size, torch_deep_mlp, threads=THREADS))
    return measured(runs, repeats)


def mlp_suite(images, backend, repeats, width=2048, batch_size=1024):
    sizes = (784, width, width, 784)
    runs = [MinigenRun(images, backend, batch_size, lambda: Autoencoder(sizes))]
    if backend == "cupy":
        runs.append(MinigenRun(images, "numpy", batch_size, lambda: Autoencoder(sizes)))
    device = "cuda" if backend == "cupy" else "cpu"
    if torch_available(device):
        runs.append(TorchRun(images, batch_size, lambda: torch_autoencoder(sizes), device=device,
                             threads=THREADS))
    return measured(runs, repeats)


def sweep_suite(images, backend, quick):
    """The VAE's seconds per epoch against batch size (hidden 400) and hidden width (batch 128)."""
    batches = (32, 128, 512) if quick else (32, 64, 128, 256, 512, 1024, 2048)
    widths = (100, 400, 1600) if quick else (100, 200, 400, 800, 1600, 3200)
    result = {"batch_size": [], "width": []}
    for key, values in (("batch_size", batches), ("width", widths)):
        for value in values:
            batch, width = (value, 400) if key == "batch_size" else (128, value)
            run = MinigenRun(images, backend, batch,
                             lambda w=width: mg.models.VAE(784, hidden=(w,), latent_dim=20))
            seconds = interleaved_medians([run], 1 if quick else 3)[run.name]
            result[key].append({"value": value, "seconds": seconds})
            print(f"  {backend}: {key} {value}: {seconds:.3f} s / epoch", flush=True)
    return result


def ops_suite(backend, quick):
    import op_overhead
    return op_overhead.measure(backend, repeat=200 if quick else 1000)


# --------------------------------------------------------------------------------------------------

def machine():
    info = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "date": time.strftime("%Y-%m-%d")}
    try:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        info["gpu"] = props["name"].decode()
        info["cupy"] = cupy.__version__
    except Exception:  # no CuPy or no GPU: a CPU machine
        pass
    return info


SUITES = ("vae", "gan", "vaegan", "deep-mlp", "mlp", "conv", "sweep", "ops")
THREADS = 1
SETTLE = 0.3          # seconds between epochs with several threads (see interleaved_medians)
# wall-clock seconds by default; "cpu" times this process's CPU (time.process_time), which other
# programs on a shared machine disturb far less (with one BLAS thread the two agree on an idle one)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK = CLOCKS["wall"]


def run_suites(args, suites, repeats, label):
    """Run ``suites`` in this process; print their tables; return {suite: rows or result}."""
    global THREADS, CLOCK
    THREADS, CLOCK = args.threads, CLOCKS[args.clock]
    mg.set_num_threads(args.threads)
    images, source = training_images()
    ring = ring_points()
    print(f"# minigen speed ({args.backend}; BLAS: {label}; {source}; {args.threads} BLAS "
          f"thread(s); medians of {repeats} interleaved epochs, {args.clock} time; load {load()})"
          "\n", flush=True)
    out = {"data": source, "load_before": load()}
    tables = {
        "vae": ("MNIST VAE 784-400-20, batch 128, one epoch of 8,000 digits",
                lambda: vae_suite(images, args.backend, repeats)),
        "gan": [("GAN on the 2-D ring, 64-32, batch 256, one epoch of 8,000 points", "gan-2d",
                 lambda: gan_suite(ring, args.backend, repeats, 2, 256)),
                ("GAN on MNIST, 784-400 / latent 20, batch 128, one epoch of 8,000 digits",
                 "gan-784", lambda: gan_suite(images, args.backend, repeats, 784, 128))],
        "vaegan": [("VAE-GAN on the 2-D ring, 64-32, batch 256, one epoch of 8,000 points",
                    "vaegan-2d", lambda: vaegan_suite(ring, args.backend, repeats, 2, 256)),
                   ("VAE-GAN on MNIST (features, Bernoulli), 784-400 / latent 20, batch 128, "
                    "one epoch", "vaegan-784",
                    lambda: vaegan_suite(images, args.backend, repeats, 784, 128))],
        "deep-mlp": ("Deep narrow MLP: 8 Dense layers of 64, tanh, batch 32, MSE, 8,000 examples",
                     lambda: deep_mlp_suite(args.backend, repeats)),
        "mlp": ("Wide MLP autoencoder 784-2048-2048-784, batch 1024, one epoch of 8,000 images",
                lambda: mlp_suite(images, args.backend, repeats)),
        "conv": ("DCGAN-sized convolutions (conv 1->64, 64->128, transposed 64->32, 32->1; k4 s2 "
                 "p1; 28 x 28, batch 64), forward and backward; peak memory a step adds",
                 lambda: conv_suite(args.backend, repeats, torch_available())),
    }
    for suite in suites:
        if suite in ("sweep", "ops"):
            continue
        entries = tables[suite]
        for title, key, fn in (entries if isinstance(entries, list)
                               else [(entries[0], suite, entries[1])]):
            rows = fn()
            out[key] = rows
            unit = "s / step" if suite == "conv" else "s / epoch"
            print(f"## {title}\n\n{table(rows, unit)}\n", flush=True)
            if suite == "conv":
                sizes = rows[0]["im2col_mb"]
                traced = "; ".join(f"{r['implementation']}: {r['traced_peak_mb']:.1f} MB"
                                   for r in rows if r.get("traced_peak_mb") is not None)
                print(f"minigen's im2col/col2im buffers per step: {sizes['forward']:.1f} MB "
                      f"forward, {sizes['backward']:.1f} MB backward; peak of its arrays during "
                      f"a step (tracemalloc): {traced or 'not measured'}\n", flush=True)
    if "sweep" in suites:
        print("## Sweep: VAE seconds per epoch against batch size and hidden width")
        out["sweep"] = sweep_suite(images, args.backend, args.quick)
    if "ops" in suites:
        print("\n## Op overhead (microseconds per call)\n")
        out["ops"] = ops_suite(args.backend, args.quick)
    out["load_after"] = load()
    return out


def load():
    """The 1-minute load average (the machine's mood, noted with every timing)."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a smaller sweep")
    parser.add_argument("--suite", action="append", choices=SUITES,
                        help="run only these suites (default: all but mlp on numpy; all on cupy)")
    parser.add_argument("--threads", type=int, default=B.free_cpus(),
                        help="BLAS threads, minigen's and PyTorch's (default: the CPUs other work "
                             "leaves idle, mg.backend.free_cpus())")
    parser.add_argument("--repeats", type=int, help="timed epochs per implementation (default 5; "
                                                    "3 with --quick)")
    parser.add_argument("--blas", choices=["both", "as-is"], default="both",
                        help="both: also rerun every suite with OPENBLAS_CORETYPE and "
                             "OPENBLAS_L2_SIZE unset, when either is set (default); as-is: only "
                             "the environment as it is")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: seconds on the clock (default); cpu: this process's CPU time, "
                             "for a machine other programs share")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/speed-BACKEND.json)")
    args = parser.parse_args(argv)
    try:
        mg.set_backend(args.backend)
    except B.BackendError as err:
        parser.exit(2, f"run.py: {err}\n")
    suites = args.suite or [s for s in SUITES if s != "mlp" or args.backend == "cupy"]
    repeats = args.repeats or (3 if args.quick else 5)
    variables = {name: os.environ[name] for name in BLAS_VARIABLES if name in os.environ}
    label = ", ".join(f"{k}={v}" for k, v in variables.items()) or "no OPENBLAS variables set"
    results = {"machine": machine(), "backend": args.backend, "threads": args.threads,
               "clock": args.clock,
               "command": " ".join(["python benchmarks/run.py"] + argv), "settings": {}}
    results["settings"][label] = run_suites(args, suites, repeats, label)
    if args.blas == "both" and variables:
        results["settings"]["OPENBLAS variables unset"] = rerun_unset(argv)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"speed-{args.backend}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(out + ".tmp", out)
    print(f"\nwrote {out}")


def rerun_unset(argv):
    """This script again in a subprocess with the OPENBLAS variables unset (OpenBLAS reads them
    when it loads, so a new process is the only way); its tables print as it runs."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "unset.json")
        print("\n# again with " + " and ".join(BLAS_VARIABLES) + " unset\n", flush=True)
        subprocess.run([sys.executable, os.path.abspath(__file__), *_without_out(argv),
                        "--blas", "as-is", "--out", path], env=env, check=True)
        with open(path) as f:
            return next(iter(json.load(f)["settings"].values()))


def _without_out(argv):
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--out", "--blas"):
            skip = True
        elif not a.startswith(("--out=", "--blas=")):
            out.append(a)
    return out


if __name__ == "__main__":
    main()

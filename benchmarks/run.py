"""minigen's speed benchmarks: seconds per epoch against hand-written NumPy and PyTorch.

    python benchmarks/run.py [--backend numpy|cupy] [--quick] [--out FILE.json]

Suites (each a table; every number a median of interleaved repeats in this one process, so the
implementations share the machine's mood):

* ``vae``: the MNIST VAE (784-400-20, batch 128, float32, Adam 1e-3, the negative ELBO) for one
  epoch of the 8,000 training digits, in minigen, in hand-written NumPy with derived gradients
  (``benchmarks/references.py``) and in PyTorch when it is installed; peak memory on the CPU
  (tracemalloc: the arrays NumPy allocates, building the model and training one epoch; the training
  images themselves are shared and not counted).  On ``--backend cupy`` the same on the GPU, plus
  minigen on NumPy for the speed-up.
* ``mlp``: a wide MLP autoencoder (784-2048-2048-784, batch 1024, Adam, bce_with_logits) - matrix
  products dominate; the GPU suite's main case.
* ``sweep``: the VAE's seconds per epoch against batch size and hidden width (``plot_sweep.py``
  draws it, with the GPU's results beside the CPU's).
* ``ops``: the cost of a recorded op against the raw array call (``op_overhead.py``).

Without MNIST (``MINIGEN_DATA`` unset and nothing in the cache), random binary images of the same
shape stand in; the table says so.  PyTorch runs with as many threads as minigen's BLAS (one by
default).
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402  (benchmarks may use NumPy directly; the library may not)

import minigen as mg  # noqa: E402
from minigen import backend as B  # noqa: E402
from references import NumpyVAE, torch_vae  # noqa: E402

N_TRAIN = 8000


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


# --------------------------------------------------------------------------------------------------
# the implementations: each has .name, .epoch() (one pass over the data, finished on the device)
# --------------------------------------------------------------------------------------------------

class MinigenRun:
    """A minigen model trained with its own ``train_step`` and ``DataLoader``, as the CLI does."""

    def __init__(self, images, backend, batch_size, build):
        self.backend = backend
        self.name = f"minigen ({backend})"
        with mg.using_backend(backend):
            mg.manual_seed(0)
            self.model = build()
            self.optimizers = self.model.make_optimizers(lr=1e-3)
            self.loader = mg.data.DataLoader(mg.Tensor(images), batch_size=batch_size, shuffle=True)

    def epoch(self):
        with mg.using_backend(self.backend):
            for x in self.loader:
                self.model.train_step(x, self.optimizers)
            B.synchronize()


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
    """The same model in PyTorch (``model_fn`` builds a module with ``loss(x)``)."""

    def __init__(self, images, batch_size, model_fn, device="cpu", threads=1):
        import torch
        self.torch, self.device, self.batch_size = torch, device, batch_size
        if device == "cpu":
            torch.set_num_threads(threads)
        self.name = f"PyTorch {torch.__version__.split('+')[0]} ({device})"
        torch.manual_seed(0)
        self.images = torch.from_numpy(images).to(device)
        self.model = model_fn().to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def epoch(self):
        order = self.torch.randperm(len(self.images), device=self.device)
        for start in range(0, len(self.images), self.batch_size):
            loss = self.model.loss(self.images[order[start:start + self.batch_size]])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            loss.item()
        if self.device != "cpu":
            self.torch.cuda.synchronize()


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

def interleaved_medians(runs, repeats):
    """Median seconds per epoch of each run: one warm-up epoch each, then ``repeats`` rounds in
    which every run does one epoch in turn."""
    for run in runs:
        run.epoch()
    times = {run.name: [] for run in runs}
    for _ in range(repeats):
        for run in runs:
            start = time.perf_counter()
            run.epoch()
            times[run.name].append(time.perf_counter() - start)
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


def table(rows, reference):
    """Rows of {implementation, seconds, peak_mb} -> markdown, with ratios to the ``reference``
    row."""
    ref = next(r["seconds"] for r in rows if r["implementation"] == reference)
    lines = ["| implementation | s / epoch | ratio | peak memory (MB) |", "|---|---:|---:|---:|"]
    for r in rows:
        r["ratio"] = r["seconds"] / ref
        memory = f"{r['peak_mb']:.1f}" if r.get("peak_mb") is not None else "-"
        lines.append(f"| {r['implementation']} | {r['seconds']:.3f} | {r['ratio']:.2f} | {memory} "
                     "|")
    return "\n".join(lines)


def vae_suite(images, backend, repeats, batch_size=128):
    def build():
        return mg.models.VAE(784, hidden=(400,), latent_dim=20)

    gpu = backend == "cupy"
    factories = [lambda: MinigenRun(images, backend, batch_size, build)]
    if gpu:
        import cupy
        factories.append(lambda: HandNumpyRun(images, batch_size, xp=cupy, label="CuPy"))
        factories.append(lambda: MinigenRun(images, "numpy", batch_size, build))
    factories.append(lambda: HandNumpyRun(images, batch_size))
    if torch_available("cuda" if gpu else "cpu"):
        factories.append(lambda: TorchRun(images, batch_size, torch_vae, device="cuda" if gpu
                                          else "cpu"))
    runs = [make() for make in factories]
    seconds = interleaved_medians(runs, repeats)
    rows = []
    for run, make in zip(runs, factories):
        host = (isinstance(run, HandNumpyRun) and run.xp is np
                or getattr(run, "backend", "") == "numpy")
        rows.append({"implementation": run.name, "seconds": seconds[run.name],
                     "peak_mb": peak_memory(make) / 2**20 if host else None})
    return rows, runs[1].name if gpu else "hand-written (NumPy)"


def mlp_suite(images, backend, repeats, width=2048, batch_size=1024):
    sizes = (784, width, width, 784)
    runs = [MinigenRun(images, backend, batch_size, lambda: Autoencoder(sizes))]
    if backend == "cupy":
        runs.append(MinigenRun(images, "numpy", batch_size, lambda: Autoencoder(sizes)))
    device = "cuda" if backend == "cupy" else "cpu"
    if torch_available(device):
        runs.append(TorchRun(images, batch_size, lambda: torch_autoencoder(sizes), device=device))
    seconds = interleaved_medians(runs, repeats)
    return [{"implementation": r.name, "seconds": seconds[r.name]} for r in runs], runs[0].name


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and a smaller sweep")
    parser.add_argument("--suite", action="append", choices=["vae", "mlp", "sweep", "ops"],
                        help="run only these suites (default: all; mlp only on cupy unless named)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--repeats", type=int, help="timed epochs per implementation (default 5; "
                                                    "3 with --quick)")
    parser.add_argument("--out", help="JSON file (default benchmarks/results/speed-BACKEND.json)")
    args = parser.parse_args(argv)
    try:
        mg.set_backend(args.backend)
    except B.BackendError as err:
        parser.exit(2, f"run.py: {err}\n")
    mg.set_num_threads(args.threads)
    suites = args.suite or (["vae", "mlp", "sweep", "ops"] if args.backend == "cupy"
                            else ["vae", "sweep", "ops"])
    repeats = args.repeats or (3 if args.quick else 5)
    images, source = training_images()
    results = {"machine": machine(), "backend": args.backend, "threads": args.threads,
               "data": source, "command": "python benchmarks/run.py " + " "
               "".join(argv or sys.argv[1:])}
    print(f"# minigen speed ({args.backend}; {source}; {args.threads} BLAS thread(s); "
          f"medians of {repeats} interleaved epochs)\n", flush=True)
    if "vae" in suites:
        rows, reference = vae_suite(images, args.backend, repeats)
        results["vae"] = rows
        print("## MNIST VAE 784-400-20, batch 128, one epoch of 8,000 digits\n")
        print(table(rows, reference) + "\n", flush=True)
    if "mlp" in suites:
        rows, reference = mlp_suite(images, args.backend, repeats)
        results["mlp"] = rows
        print("## Wide MLP autoencoder 784-2048-2048-784, batch 1024, one epoch of 8,000 images\n")
        print(table(rows, reference) + "\n", flush=True)
    if "sweep" in suites:
        print("## Sweep: VAE seconds per epoch against batch size and hidden width")
        results["sweep"] = sweep_suite(images, args.backend, args.quick)
    if "ops" in suites:
        print("\n## Op overhead (microseconds per call)\n")
        results["ops"] = ops_suite(args.backend, args.quick)
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"speed-{args.backend}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out + ".tmp", "w") as f:
        json.dump(results, f, indent=1)
    os.replace(out + ".tmp", out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()

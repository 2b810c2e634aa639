# %% [markdown]
# # 10. The GPU backend: moving work to CuPy, and timing it honestly
#
# Every array operation in minigen goes through an *array namespace*: NumPy on the CPU, or
# [CuPy](https://cupy.dev), which offers the same functions on an NVIDIA GPU. Switching is one line,
# `mg.set_backend("cupy")`, and the models of the previous tutorials run unchanged. Whether that
# makes them *faster* is another question, and answering it needs careful measurement. This tutorial
# covers:
#
# 1. finding out whether this machine can use the GPU, and why not when it cannot;
# 2. where a tensor's data lives (`t.device`), and moving tensors and models (`Tensor.to`,
#    `Module.to`);
# 3. timing code correctly: warm up first, and on a GPU *synchronise* before reading the clock,
#    because a GPU call returns before its work is done;
# 4. where the time of a training step goes on the CPU, as the batch and the layer width grow, and
#    what that tells us about where a GPU can overtake the CPU (measured, when this machine has
#    one);
# 5. what a GPU actually did (the repository's recorded measurements), and tutorial 8's VAE-GAN
#    moved to the device and trained there;
# 6. the *strict* backends, which catch GPU-only mistakes on a machine without a GPU.
#
# Every cell runs with or without a GPU, with or without MNIST, and with or without the test package
# array-api-strict (the strict backends at the end); what a cell cannot show on the machine running
# it, it says. The notebook you may be reading was executed on whatever machine built it; the first
# cells say which machine that was, and GPU measurements appear only if it had a usable GPU.

# %%
import json
import os
import platform
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"   # tiny runs for the test suite
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


mg.manual_seed(0)
# One BLAS thread for every CPU timing below, so that they measure the code and not the machine's
# other work: a BLAS thread that waits for a core another program holds can make a product many
# times slower.  On idle cores more threads make large products faster; the command line uses
# every free core (mg.backend.free_cpus()).
mg.backend.set_num_threads(1)

# %% [markdown]
# ## Can this machine use the GPU?
#
# `mg.set_backend("cupy")` either succeeds or raises `mg.BackendError` with the reason (CuPy
# missing, no CUDA driver, no device) and what to install. So the honest way to find out is to try,
# and to switch back to NumPy afterwards: `set_backend` decides where *new* tensors are made, for
# the rest of the program. `mg.available_backends()` tries every backend the same way.

# %%
try:
    mg.set_backend("cupy")
    GPU = True
except mg.BackendError as err:
    GPU = False
    print("The cupy backend is not usable here:\n ", err)
finally:
    mg.set_backend("numpy")

print("backends usable here:", mg.available_backends())
print(f"CPU: {os.cpu_count()} logical cores, {platform.machine()}, NumPy {np.__version__}")
if hasattr(os, "getloadavg"):
    print("load average over the last minute: {:.1f} (other work running on the same cores slows "
          "every timing below)".format(os.getloadavg()[0]))
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    if variable in os.environ:
        print(f"BLAS threads limited by {variable}={os.environ[variable]}")
if GPU:
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(0)
    print(f"GPU: {props['name'].decode()}, CuPy {cupy.__version__}")

# %% [markdown]
# ## Where a tensor lives
#
# A tensor's data is an array of one backend, and `t.device` says which: `"cpu"` for a NumPy array,
# `"gpu"` for a CuPy array (and `"strict"` for the test backends at the end of this tutorial).
#
# * `mg.set_backend(name)` and the context manager `with mg.using_backend(name):` choose where
#   *new* tensors are made (`mg.randn`, `mg.Tensor([...])`, `mg.data.ring`, the weights of a new
#   layer). Tensors that exist stay where they are.
# * `t.to("gpu")` / `t.to("cpu")` returns a copy on the other device (`t` itself if it is already
#   there). It is differentiable: the gradient travels back to the original device.
# * `model.to("gpu")` moves every parameter and buffer of a model *in place*: the `Parameter`
#   objects stay the same, so an optimizer built before the move keeps working.
# * An operation on tensors from two devices raises a `ValueError` naming both. Nothing is copied
#   behind your back, because every hidden copy between host and GPU costs time.
#
# On this machine the second device is the GPU if there is one. Without a GPU we use the `"strict"`
# test backend as a stand-in, which behaves like a separate device for everything shown here; it
# needs the package array-api-strict (`pip install "minigen[dev]"`). With neither, the cell says so
# and shows only the CPU side: the rest of the tutorial runs either way.

# %%
STRICT = "strict" in mg.available_backends()  # array-api-strict installed (the dev extra)
OTHER = "cupy" if GPU else ("strict" if STRICT else None)    # the backend of the second device
a = mg.randn(3)
print(f"a: device {a.device!r}, data {type(a.data).__module__}.{type(a.data).__name__}")
print("a.to('cpu') is a itself:", a.to("cpu") is a)
if OTHER is None:
    print("No second device here (no GPU, and array-api-strict is not installed), so mixing "
          "devices cannot be shown: pip install \"minigen[dev]\" adds the strict stand-in device.")
else:
    with mg.using_backend(OTHER):
        b = mg.randn(3)                       # made on the other device
    print(f"b: device {b.device!r}, data {type(b.data).__module__}.{type(b.data).__name__}")
    print("current backend after the with block:", mg.get_backend())
    try:
        a + b
    except ValueError as err:
        print("a + b ->", err)
    print("a.to(b.device) + b is on", (a.to(b.device) + b).device)

# %% [markdown]
# A whole training step moves the same way: put the model and the data on the device once, and every
# operation of the step runs there. `loss.item()` copies one number back to the host, and
# `state_dict()` always returns NumPy arrays, so a model trained on the GPU saves and loads
# anywhere. The `DataLoader` makes its batches by slicing tensors *on their own device*, so a data
# set moved once costs no copying per batch (only one small array of shuffled indices per epoch);
# moving every batch from the host instead would pay a copy across the PCIe bus (the link between
# the CPU's memory and the GPU's) at every step.

# %%
DEVICE = "gpu" if GPU else "cpu"
model = mg.nn.Sequential(mg.nn.Dense(2, 32, activation="relu"), mg.nn.Dense(32, 1))
optimizer = mg.optim.Adam(model.parameters(), lr=1e-2)
first_weight = model.parameters()[0]
model.to(DEVICE)                                       # in place: the same Parameter objects
print("same Parameter object after .to():", model.parameters()[0] is first_weight)

x_all, labels = mg.data.moons(512, noise=0.1, seed=0)
x_all = x_all.to(DEVICE)                               # the data set, moved once
t_all = labels.astype("float32").reshape(-1, 1).to(DEVICE)
for epoch in range(3):
    for xb, tb in mg.data.DataLoader(x_all, t_all, batch_size=128, shuffle=True, seed=epoch):
        optimizer.zero_grad()
        loss = mg.losses.bce_with_logits(model(xb), tb)
        loss.backward()
        optimizer.step()
print(f"batches on {xb.device!r}, weights on {model.parameters()[0].device!r}, "
      f"loss {loss.item():.3f} (a Python float, on the host)")
print("state_dict holds", type(model.state_dict()["0.weight"]).__name__, "arrays")

# %% [markdown]
# ## Timing code correctly
#
# Three rules, each with a reason:
#
# 1. **Warm up.** The first call of anything pays one-time costs: on the CPU, the first touch of
#    newly allocated memory; on the GPU, far more (creating the CUDA context, CuPy compiling each
#    kernel the first time it meets a new dtype or operation, the memory pool's first allocations).
#    Run the code once before timing it.
# 2. **Synchronise before reading the clock (GPU).** A CuPy call normally *queues* work for the GPU
#    and returns at once; the GPU works through its queue on its own. `time.perf_counter()` right
#    after the call measures only how long queueing took. Wait for the queue to empty first
#    (`cupy.cuda.Device().synchronize()`). Anything that needs a result on the host waits too, which
#    is why `loss.item()` can look surprisingly slow: it pays for all the work queued before it.
# 3. **Repeat, and take the minimum.** Other programs, interrupts and caches only ever *add* time,
#    so the fastest of several runs is the best estimate of the code's own cost (Python's `timeit`
#    recommends the same). Repeat until the total is long enough for the clock's resolution not to
#    matter.
#
# One helper does all three, for either device:

# %%
def synchronize(device):
    """Wait until the GPU has finished all queued work (nothing to wait for on the CPU)."""
    if device == "gpu":
        import cupy

        cupy.cuda.Device().synchronize()


def best_time(fn, device="cpu", min_total=0.2, min_repeats=3, max_repeats=100):
    """The fastest of several timed calls of fn(), in seconds: warmed up and synchronised."""
    fn()                                   # 1. warm up
    synchronize(device)
    times, total = [], 0.0
    while len(times) < min_repeats or (total < min_total and len(times) < max_repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)                # 2. wait for the device before reading the clock
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        total += elapsed
    return min(times)                      # 3. the least disturbed run


MIN_TOTAL = 0.02 if SMOKE else 0.2

# %% [markdown]
# On a GPU, here is what rule 2 looks like in numbers: a large matrix product timed without and with
# synchronisation. (This cell measures something only when the cupy backend works.)

# %%
if GPU:
    with mg.using_backend("cupy"):
        big = mg.randn(4096, 4096)
    big @ big                                          # warm up
    synchronize("gpu")
    start = time.perf_counter()
    product = big @ big
    returned = time.perf_counter() - start             # the call came back...
    synchronize("gpu")
    finished = time.perf_counter() - start             # ...the GPU finished here
    print(f"4096 x 4096 matmul on the GPU: the call returned after {returned * 1e6:.0f} us, "
          f"the work finished after {finished * 1e6:.0f} us")
else:
    print("No GPU here, so nothing to show: on a GPU, the unsynchronised time of a large matmul is "
          "the few microseconds it takes to queue it, whatever its size.")

# %% [markdown]
# ## Where the time of a training step goes on the CPU
#
# We time one forward and backward pass of a two-layer network of width $w$ on a batch of $B$
# examples, over a grid of batch sizes and widths:
#
# $$h = \mathrm{relu}(x W_1 + b_1), \qquad y = h W_2 + b_2, \qquad L = \operatorname{mean}(y^2),
#   \qquad x: B \times w, \quad W_1, W_2: w \times w .$$
#
# **Counting the arithmetic.** A $(B \times w)$ by $(w \times w)$ matrix product takes $B w^2$
# multiplications and as many additions: $2 B w^2$ floating-point operations (FLOPs). The forward
# pass has two products; the backward pass needs $\partial L / \partial W_2 = h^\top g_y$, $\partial
# L / \partial h = g_y W_2^\top$ and $\partial L / \partial W_1 = x^\top g_h$ (but no gradient for
# $x$, which does not require one): three more. So one step costs about $F = 5 \times 2 B w^2 = 10 B
# w^2$ FLOPs in matrix products. Everything else is much cheaper in arithmetic: the bias additions,
# the ReLU, the square and the mean, and their gradients are proportional to $B w$.
#
# **A model of the time.** Each of the step's two dozen operations also costs a roughly *fixed*
# amount of Python work (creating tensors, recording the graph, walking it backwards, calling
# NumPy), whatever the array sizes. So we expect
#
# $$t(B, w) \approx t_\text{fixed} + \frac{F}{R},$$
#
# with $R$ the FLOPs per second that the CPU's matrix-product library (BLAS) achieves. Small
# problems sit on the flat floor $t_\text{fixed}$; large ones grow in proportion to $F$. To see the
# split directly, we also time the five matrix products alone, as raw NumPy calls on arrays of the
# same shapes: the rest of the step's time is everything else.

# %%
BATCHES = [16, 128, 1024] if SMOKE else [16, 64, 256, 1024, 4096]
WIDTHS = [64, 256] if SMOKE else [64, 256, 1024]


def make_step(batch, width, device):
    """A forward+backward step of the two-layer network, with its model and data on `device`."""
    mg.manual_seed(0)
    net = mg.nn.Sequential(mg.nn.Dense(width, width, activation="relu"),
                           mg.nn.Dense(width, width)).to(device)
    x = mg.randn(batch, width).to(device)

    def step():
        net.zero_grad()
        loss = (net(x) ** 2).mean()
        loss.backward()

    return step


def make_matmuls(batch, width):
    """The same five matrix products as raw NumPy calls (forward 2, backward 3)."""
    rng = np.random.default_rng(0)
    x, h, g = (rng.standard_normal((batch, width), dtype=np.float32) for _ in range(3))
    w1, w2 = (rng.standard_normal((width, width), dtype=np.float32) for _ in range(2))

    def matmuls():
        x @ w1, h @ w2           # forward
        h.T @ g, g @ w2.T        # dL/dW2, dL/dh
        x.T @ g                  # dL/dW1

    return matmuls


cpu_step, cpu_matmul = {}, {}
start = time.perf_counter()
for width in WIDTHS:
    for batch in BATCHES:
        cpu_step[batch, width] = best_time(make_step(batch, width, "cpu"), min_total=MIN_TOTAL)
        cpu_matmul[batch, width] = best_time(make_matmuls(batch, width), min_total=MIN_TOTAL)
print(f"measured {len(cpu_step)} cases in {time.perf_counter() - start:.1f} s\n")
print(f"{'batch':>6} {'width':>6} {'step (ms)':>10} {'matmuls (ms)':>13} {'matmul share':>13} "
      f"{'GFLOP/s':>8}")
for (batch, width), t_step in cpu_step.items():
    flops = 10 * batch * width**2
    print(f"{batch:>6} {width:>6} {t_step * 1e3:>10.3f} {cpu_matmul[batch, width] * 1e3:>13.3f} "
          f"{min(cpu_matmul[batch, width] / t_step, 1):>13.0%} {flops / t_step / 1e9:>8.1f}")

# %% [markdown]
# Two figures summarise the table. Left: time per step against batch size, one line per width, with
# the floor $t_\text{fixed}$ (the smallest case) as a dashed line. Right: the share of each step
# spent in the matrix products, against the step's FLOPs.

# %%
t_fixed = min(cpu_step.values())
rate = max(10 * b * w**2 / t for (b, w), t in cpu_step.items())      # best FLOP/s achieved

fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(8.5, 3.2))
for width, color in zip(WIDTHS, ["C0", "C1", "C2"]):
    times = [cpu_step[b, width] * 1e3 for b in BATCHES]
    ax_t.loglog(BATCHES, times, "o-", ms=4, color=color, label=f"width {width}")
    flops = [10 * b * width**2 for b in BATCHES]
    share = [min(cpu_matmul[b, width] / cpu_step[b, width], 1) for b in BATCHES]
    ax_s.semilogx(flops, share, "o-", ms=4, color=color, label=f"width {width}")
ax_t.axhline(t_fixed * 1e3, color="gray", ls="--", lw=1, label="floor (smallest case)")
ax_t.set_xlabel("batch size B")
ax_t.set_ylabel("time per step (ms)")
ax_t.set_title("forward + backward, CPU (measured)", fontsize=8)
ax_t.legend(fontsize=7)
ax_s.set_ylim(0, 1.05)
ax_s.set_xlabel("FLOPs per step in matrix products, 10 B w^2")
ax_s.set_ylabel("share of the step in the matmuls")
ax_s.set_title("where the time goes, CPU (measured)", fontsize=8)
ax_s.legend(fontsize=7)
fig.tight_layout()
save(fig, "10_cpu_step_time.png")

balance = t_fixed * rate
print(f"floor t_fixed = {t_fixed * 1e6:.0f} us per step; best rate R = {rate / 1e9:.1f} GFLOP/s")
print(f"the matmuls take as long as the floor at F = t_fixed * R = {balance / 1e6:.1f} MFLOP, "
      f"i.e. B * w^2 = {balance / 10:.2e} (B = {balance / 10 / 256**2:.0f} at width 256)")

# %% [markdown]
# Read the left panel from the left. The smallest steps all cost about the same, whatever their
# size: they sit on the floor of fixed per-operation costs, and making their arrays bigger is nearly
# free. Further right, the time rises in proportion to $B$ (a slope of 1 on these log-log axes), and
# a wider layer shifts the line up by roughly its factor in $w^2$: that is the $F / R$ term. The
# right panel tells the same story as a share: in the smallest steps the matrix products are a small
# part of the time, and Python's bookkeeping and the small elementwise operations take the rest; in
# the largest, most of the time goes to the products. A wide layer on a small batch sits in between:
# allocating its $w^2$-sized gradient arrays is not free either. (Measurements on a busy machine are
# noisy; the shape of the curves is what matters, not each point.)
#
# ## What changes on a GPU
#
# A GPU does matrix products at a far higher rate $R$ than a CPU, tens of times higher or more in
# float32. But it does not shorten the floor. The same Python code records the same graph, and every
# operation additionally *launches a kernel* on the GPU, which itself takes microseconds. In the
# model above,
#
# $$t_\text{GPU} \approx t_\text{fixed, GPU} + \frac{F}{R_\text{GPU}},
#   \qquad t_\text{fixed, GPU} \gtrsim t_\text{fixed, CPU},
#   \qquad R_\text{GPU} \gg R_\text{CPU}.$$
#
# So:
#
# * **on the floor, the GPU cannot win**: a small network on a small batch (the 2-D networks of the
#   GAN tutorials) is limited by per-operation costs, and a GPU only adds its launch cost;
# * **it can win only where the CPU's $F / R$ dominates**, to the right of the balance point printed
#   above (how far to the right depends on how much the GPU adds to the floor), and there the
#   speed-up grows with $B w^2$ until the GPU's own rate is the limit;
# * **copies between host and GPU** cost time too: keep the model and the data on the GPU, and read
#   results back (`.item()`, `.numpy()`) only when you need them, since every such read also waits
#   for all the work queued before it;
# * **float32, not float64**: on the CPU a float64 product costs about twice a float32 one, and on
#   most consumer GPUs float64 arithmetic runs at a small fraction of the float32 rate. minigen
#   defaults to float32, and the strict backend below catches accidental float64.
#
# The next cell measures the same grid on the GPU and plots the speed-up, when the cupy backend
# works on the machine running it. Without a GPU it shows nothing: no GPU number in this tutorial is
# guessed.

# %%
if GPU:
    gpu_step = {}
    for width in WIDTHS:
        for batch in BATCHES:
            gpu_step[batch, width] = best_time(make_step(batch, width, "gpu"), device="gpu",
                                               min_total=MIN_TOTAL)
    fig, ax = plt.subplots()
    for width, color in zip(WIDTHS, ["C0", "C1", "C2"]):
        speedup = [cpu_step[b, width] / gpu_step[b, width] for b in BATCHES]
        ax.loglog(BATCHES, speedup, "o-", ms=4, color=color, label=f"width {width}")
        for b in BATCHES:
            cpu_ms, gpu_ms = cpu_step[b, width] * 1e3, gpu_step[b, width] * 1e3
            print(f"batch {b:>5}, width {width:>5}: CPU {cpu_ms:8.3f} ms, GPU {gpu_ms:8.3f} ms, "
                  f"speed-up {cpu_ms / gpu_ms:6.2f}")
    ax.axhline(1, color="gray", ls="--", lw=1, label="break-even")
    ax.set_xlabel("batch size B")
    ax.set_ylabel("speed-up (CPU time / GPU time)")
    ax.set_title(f"measured: {props['name'].decode()} vs this machine's CPU", fontsize=8)
    ax.legend(fontsize=7)
    save(fig, "10_gpu_speedup.png")
else:
    print("No GPU on this machine: the speed-up was not measured. Run this tutorial where "
          "mg.set_backend('cupy') works to see it.")

# %% [markdown]
# ## Recorded measurements from a GPU
#
# Whatever machine runs this notebook, the repository holds what a GPU did: `bash
# benchmarks/gpu_check.sh` (the test suite on CuPy, then `benchmarks/run.py --backend cupy`) was run
# on an NVIDIA H100 and wrote its results to `benchmarks/results/gpu/`. They time one epoch of the
# MNIST VAE of tutorial 5 (784-400-20, batch 128) and of a wide MLP (784-2048-2048-784, batch 1024),
# each in minigen on CuPy, in PyTorch on the same GPU, and in minigen on that machine's CPU (NumPy,
# 16 BLAS threads). The recorded numbers say:
#
# | seconds per epoch | minigen, CuPy | PyTorch, CUDA | minigen, NumPy (CPU) | GPU / CPU |
# | --- | --- | --- | --- | --- |
# | MNIST VAE, batch 128 | 0.123 | 0.138 | 0.361 | 2.9× faster |
# | wide MLP, batch 1024 | 0.0123 | 0.0134 | 0.785 | 64× faster |
#
# On both models **minigen on CuPy is a little faster than PyTorch on CUDA** on that GPU (0.123 s
# against 0.138 s on the VAE). The repository's README credits minigen's fused CUDA kernels (Adam's
# update, bias plus activation, the BCE, the KL and the reparameterization, each one launch) for its
# lead over the same VAE written by hand in CuPy, which the file also records.
# The cell below reads the file itself. It looks for it next to the minigen package it imported
# (`mg.__file__`), which is inside the repository when you run from a clone or an editable install
# (`pip install -e`); a plain `pip install .` copies only the package, and the cell then says where
# the file is.

# %%
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(mg.__file__)))  # above minigen/
RECORDED = os.path.join("benchmarks", "results", "gpu", "speed-cupy.json")
recorded = os.path.join(REPOSITORY, RECORDED)
if not os.path.exists(recorded):
    recorded = None
if recorded is None:
    print(f"minigen was imported from {os.path.dirname(mg.__file__)}, which is not inside a "
          "clone of the repository, so the recorded GPU results are not on this machine. They are "
          "in benchmarks/results/gpu/speed-cupy.json of the repository; the table above quotes "
          "them.")
else:
    with open(recorded) as f:
        gpu_results = json.load(f)
    machine = gpu_results["machine"]
    print(f"{RECORDED}: {machine['gpu']}, CuPy {machine['cupy']}, measured {machine['date']} "
          f"(NumPy with {gpu_results['threads']} BLAS threads on that machine's CPU)")
    print(f"data: {gpu_results['data']} - the time does not depend on the pixels")
    for suite, title in (("vae", "MNIST VAE, batch 128"), ("mlp", "wide MLP, batch 1024")):
        rows = {row["implementation"]: row["seconds"] for row in gpu_results[suite]}
        print(f"\n{title}: seconds per epoch")
        for name, seconds in rows.items():
            print(f"  {name:<24} {seconds:8.4f}")
        torch_gpu = next(v for k, v in rows.items() if k.startswith("PyTorch") and "cuda" in k)
        print(f"  minigen on the GPU is {rows['minigen (numpy)'] / rows['minigen (cupy)']:.1f}x as "
              f"fast as on the CPU, and takes {rows['minigen (cupy)'] / torch_gpu:.2f} of "
              "PyTorch's time on the same GPU")
    sweeps = gpu_results["sweep"]
    print("\nVAE on the GPU, seconds per epoch by batch size:",
          ", ".join(f"{p['value']}: {p['seconds']:.4f}" for p in sweeps["batch_size"]))
    print("VAE on the GPU, seconds per epoch by hidden width (batch 128):",
          ", ".join(f"{p['value']}: {p['seconds']:.3f}" for p in sweeps["width"]))

# %% [markdown]
# Three things to read there. On the wide MLP, where matrix products dominate, the GPU is 64 times
# faster than the CPU, and minigen and PyTorch take about the same time: both spend it in the same
# cuBLAS kernels. On the small VAE at batch 128 the GPU is only 2.9 times faster than the CPU: each
# step launches dozens of small kernels, and the time is the floor of per-operation costs, now about
# ten microseconds per launch (the `ops` entries of the file). Widening the VAE's hidden layer from
# 100 to 3,200 units barely changes its time on the GPU, which is what "on the floor" means. And as
# the batch grows from 32 to 2,048, the GPU's time per epoch falls almost in proportion (0.49 s to
# 0.0078 s, 63 times for 64 times the batch), because the number of steps (and launches) falls while
# each launch does more work for free: the floor, seen from the other side. (The recorded run used
# random binary images, since MNIST was not on that machine: the time does not depend on the
# pixels.)
#
# ## Tutorial 8's VAE-GAN, trained on the device
#
# Moving a real model is the same three steps as the small classifier above: build it, move it with
# `model.to(DEVICE)`, move the data set once with `.to(DEVICE)`, and hand both to
# `minigen.train.fit`, which slices its batches on the data's device. Here is the VAE-GAN of
# tutorial 8 on the ring, with its settings from `defaults("vaegan", "ring")`. We train it on the
# CPU and, when there is one, on the GPU, and compare the seconds per epoch that `fit` records.
# (`fit` reads each step's losses back as Python floats, which waits for the GPU, so its epoch times
# are honest; the first epoch also pays the warm-up, so we compare the fastest epoch.) Its networks
# are tiny, two hidden layers of 64 and 32 units on 2-D points: this is a model **on the floor** of
# the previous sections, where a GPU is not expected to win. The recorded numbers above show what
# happens for a model with real matrix products.

# %%
from minigen.metrics import mode_metrics          # noqa: E402  (used from here on)
from minigen.models import VAEGAN                 # noqa: E402
from minigen.runs import defaults                 # noqa: E402
from minigen.train import fit                     # noqa: E402

train_data, _ = mg.data.ring(2_000 if SMOKE else 10_000, seed=0)
settings = defaults("vaegan", "ring")
networks = {k: v for k, v in settings.items() if k not in ("epochs", "batch_size", "lr")}
vaegan_epochs = 2 if SMOKE else settings["epochs"]


def train_vaegan(device):
    """Tutorial 8's VAE-GAN built, moved to ``device`` with its data, and trained there with fit."""
    mg.manual_seed(0)
    model = VAEGAN(data_dim=2, **networks).to(device)     # the weights, moved once
    data = train_data.to(device)                          # the data set, moved once
    history, _ = fit(model, data, epochs=vaegan_epochs, batch_size=settings["batch_size"],
                     lr=settings["lr"], seed=0, quiet=True)
    return model, min(record["seconds"] for record in history), history[-1]


trained, epoch_seconds = {}, {}
for device in (["cpu", "gpu"] if GPU else ["cpu"]):
    trained[device], epoch_seconds[device], last = train_vaegan(device)
    print(f"ring VAE-GAN on {device}: {epoch_seconds[device] * 1e3:.0f} ms per epoch (fastest of "
          f"{vaegan_epochs}); weights on {trained[device].parameters()[0].device!r}; "
          f"last epoch's d_loss {last['d_loss']:.3f}")
if GPU:
    print(f"GPU time / CPU time: {epoch_seconds['gpu'] / epoch_seconds['cpu']:.2f}")
else:
    print("No GPU here: only the CPU run. Where mg.set_backend('cupy') works, the same cell also "
          "trains the model on the GPU and prints both times.")

# %% [markdown]
# The trained model stays on its device: `model.sample(n)` draws its noise there, and `.numpy()`
# copies the samples to the host for the picture, once. The picture shows the model trained on the
# GPU when there is one. (The two devices have separate random generators, so the GPU and CPU runs
# start from different weights and see their batches in a different order: their losses differ
# slightly, not their quality.)

# %%
shown_on = "gpu" if GPU else "cpu"
mg.manual_seed(1)
samples = trained[shown_on].sample(2500).numpy()        # one copy to the host
metrics = mode_metrics(samples, "ring")
print(f"{metrics['modes_covered']}/8 modes covered, "
      f"{metrics['high_quality_fraction']:.0%} of the samples high quality")
fig, ax = plt.subplots(figsize=(3.8, 3.8))
ax.scatter(*train_data.numpy()[:2500].T, s=12, color="0.7", linewidths=0, label="data")
ax.scatter(*samples.T, s=3, color="tab:red", alpha=0.5, linewidths=0, label="samples")
ax.set_aspect("equal")
ax.set_xlim(-2.8, 2.8)
ax.set_ylim(-2.8, 2.8)
ax.legend(fontsize=7, loc="center", markerscale=2)
ax.set_title(f"VAE-GAN samples after {vaegan_epochs} epochs on {shown_on}", fontsize=9)
save(fig, "10_vaegan_on_device.png")

# %% [markdown]
# Without a GPU, the strict stand-in device of the first section proves the same code device-clean:
# the model, its data, every batch, the noise and the samples must all stay on that device, and
# array-api-strict refuses any NumPy array that sneaks in. One short epoch on a slice of the data is
# enough to run every line of the training step there.

# %%
if STRICT and not GPU:
    mg.manual_seed(0)
    model = VAEGAN(data_dim=2, **networks).to("strict")
    fit(model, train_data[:512].to("strict"), epochs=1, batch_size=settings["batch_size"],
        lr=settings["lr"], seed=0, quiet=True)
    print("one epoch on the strict device: weights on", repr(model.parameters()[0].device),
          "| samples on", repr(model.sample(4).device))
elif not GPU:
    print('array-api-strict is not installed: pip install "minigen[dev]" to run this check')
# %% [markdown]
# The float32 versus float64 point is easy to check on the CPU: the same step, at the largest size
# of the grid, in both dtypes.

# %%
def make_step_dtype(batch, width, dtype):
    mg.manual_seed(0)
    net = mg.nn.Sequential(mg.nn.Dense(width, width, activation="relu", dtype=dtype),
                           mg.nn.Dense(width, width, dtype=dtype))
    x = mg.randn(batch, width, dtype=dtype)

    def step():
        net.zero_grad()
        (net(x) ** 2).mean().backward()

    return step


batch, width = BATCHES[-1], WIDTHS[-1]
t32 = best_time(make_step_dtype(batch, width, "float32"), min_total=MIN_TOTAL)
t64 = best_time(make_step_dtype(batch, width, "float64"), min_total=MIN_TOTAL)
print(f"batch {batch}, width {width}: float32 {t32 * 1e3:.2f} ms, float64 {t64 * 1e3:.2f} ms "
      f"(float64 takes {t64 / t32:.1f} times as long)")

# %% [markdown]
# ## Catching GPU-only mistakes without a GPU: the strict backends
#
# Code that runs on NumPy can still fail on CuPy, and the usual culprit is NumPy itself slipping
# into a computation: a NumPy array or function applied to device data, or an implicit copy to the
# host. CuPy refuses to mix its arrays with NumPy's. A second class of mistakes does not fail at
# all, but silently turns a float32 computation into float64, which wastes memory and, on a GPU, a
# lot of time.
#
# minigen's test suite catches both on an ordinary CPU with two extra backends built on
# [array-api-strict](https://data-apis.org/array-api-strict/), a deliberately unforgiving
# implementation of the Python array API standard:
#
# * `"strict"` keeps its arrays on a device of their own and refuses NumPy arrays and NumPy scalars
#   mixed into them, and any implicit conversion to a NumPy array: the mistakes that break on a GPU.
# * `"strict-float32"` does the same on a device that refuses float64 arrays altogether: the silent
#   promotions.
#
# Every backend-dependent test in `tests/` runs on `"numpy"`, on `"strict"` and, where a GPU is
# usable, on `"cupy"`; the float32 tests run on `"numpy"`, `"strict-float32"` and (with a GPU)
# `"cupy"`. You can run any script on them too: `MINIGEN_BACKEND=strict-float32 python
# my_script.py`.
#
# Here are three mistakes, each tried on the three CPU backends. The first is an operation whose
# forward multiplies by a **NumPy float64 scalar** instead of a Python float; the second adds a
# tensor made from a NumPy array, which is float64 unless you say otherwise; the third converts
# device data to NumPy inside a computation.

# %%
class HalfSquare(mg.Function):
    """y = x^2 / 2, with a NumPy scalar in forward: a GPU-only mistake."""

    def forward(self, x):
        return x * x * np.float64(0.5)      # should be the Python float 0.5

    def backward(self, gy):
        (x,) = self.inputs
        return gy * x


mistakes = {
    "NumPy float64 scalar in forward": lambda x: HalfSquare()(x),
    "adding a tensor made from NumPy": lambda x: x + mg.Tensor(np.linspace(0, 1, 4)),
    "np.asarray on device data": lambda x: mg.Tensor(np.sqrt(np.asarray(x.data) ** 2)),
}


def attempt(fn, x):
    try:
        out = fn(x)
    except (TypeError, ValueError, RuntimeError) as err:
        return f"{type(err).__name__}: {str(err)[:110]}"
    return f"runs, result {mg.backend.dtype_name(out.dtype)} on {out.device!r}"


# STRICT (set at the start): the strict backends come with the dev extra, pip install "minigen[dev]"
if not STRICT:
    print("array-api-strict is not installed here, so only NumPy is tried: "
          'pip install "minigen[dev]" to see the strict backends refuse these mistakes')
for name, fn in mistakes.items():
    print(name)
    for backend in ["numpy", "strict", "strict-float32"] if STRICT else ["numpy"]:
        with mg.using_backend(backend):
            x = mg.randn(4)                 # float32 on every backend
            print(f"  {backend:15s} {attempt(fn, x)}")

# %% [markdown]
# On NumPy every mistake "works", and the first two quietly produce **float64** from float32 inputs
# (NumPy 2 treats a NumPy float64 scalar, unlike a Python float, as a full float64 number). The
# strict backend refuses the NumPy scalar and the host conversion with errors at the exact line; the
# float64 device refuses the float64 tensor. A test suite that runs on these backends finds such
# lines before anyone runs the code on a GPU.
#
# The fixes are small: write `0.5`, not `np.float64(0.5)`; give tensors made from NumPy data a dtype
# (`mg.Tensor(array, dtype="float32")`, or `.astype(x.dtype)`), and inside `forward` take array
# functions from `xp = mg.backend.namespace(x)` (tutorial 3), never from `np`.
#
# minigen's own layers pass: the training step timed above runs unchanged on `"strict-float32"`, in
# float32 from end to end (without array-api-strict the cell runs it on NumPy and says so).

# %%
with mg.using_backend("strict-float32" if STRICT else "numpy"):
    mg.manual_seed(0)
    net = mg.nn.Sequential(mg.nn.Dense(32, 32, activation="relu"), mg.nn.Dense(32, 32))
    adam = mg.optim.Adam(net.parameters(), lr=1e-3)
    adam.zero_grad()
    (net(mg.randn(64, 32)) ** 2).mean().backward()
    adam.step()
    grad = net.parameters()[0].grad
    print(f"forward, backward and an Adam step ran on {grad.device!r}; "
          f"the gradient is {mg.backend.dtype_name(grad.dtype)}"
          + ("" if STRICT else " (array-api-strict is not installed: NumPy only)"))

# %% [markdown]
# ## What you learned
#
# * `mg.set_backend("cupy")` raises `mg.BackendError` with the reason when the GPU cannot be used;
#   `mg.using_backend` switches for a block. Both decide where *new* tensors go.
# * `t.device` tells where data lives; `t.to(device)` copies a tensor (differentiably),
#   `model.to(device)` moves a model in place. Mixing devices in one operation is an error, never a
#   silent copy. Move the data set once; read results back only when needed.
# * To time code: warm up, synchronise the GPU before reading the clock (a GPU call returns before
#   its work is done), repeat and take the minimum.
# * A training step costs a fixed amount per operation plus its arithmetic. Small steps are
#   dominated by the fixed part, which a GPU does not shrink; a GPU overtakes the CPU only once the
#   matrix products dominate, as batch and width grow.
# * On the recorded H100 run, minigen on CuPy was 2.9 times as fast as on the CPU for the MNIST VAE
#   and 64 times for the wide MLP, and a little faster than PyTorch on CUDA for both (0.123 s
#   against 0.138 s per VAE epoch).
# * A whole model trains on the GPU as it does on the CPU: `model.to("gpu")`, the data set moved
#   once with `.to("gpu")`, then `fit`; samples come back with `.numpy()` when you need them.
# * The `"strict"` and `"strict-float32"` backends turn GPU-only mistakes (NumPy in device code,
#   implicit host copies, silent float64) into errors on any CPU, which is how minigen's tests keep
#   the GPU path honest.
#
# ## Exercises
#
# 1. Extend the timing grid with a third layer and with batch sizes up to 16384. Does the balance
#    point move? Fit $t_\text{fixed}$ and $R$ to all the points by least squares (the model is
#    linear in $1$ and $F$) and compare the fitted line with the measurements.
# 2. Time the step *without* `best_time`'s warm-up, once, right after building the network. How much
#    slower is the very first call on the CPU? If you have a GPU, compare: how much of the first
#    call is one-time cost there?
# 3. Write an operation whose `forward` uses `np.exp` on its input and run it on `"strict"`. Then
#    fix it with `xp = mg.backend.namespace(x)` and check that it gives identical results on
#    `"numpy"` and `"strict"`, and passes `mg.gradcheck` on both.

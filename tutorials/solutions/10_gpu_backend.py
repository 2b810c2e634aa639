# %% [markdown]
# # Solutions: 10. The GPU backend
#
# Worked solutions to the exercises of [tutorial 10](../10_gpu_backend.py). Try each exercise before
# reading its solution. Everything runs on the CPU; the GPU parts run too where
# `mg.set_backend("cupy")` works, and exercise 3 uses the strict backend where array-api-strict is
# installed (`pip install "minigen[dev]"`), and says so where it is not.

# %%
import os
import time

import numpy as np

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
mg.manual_seed(0)
try:
    mg.set_backend("cupy")
    GPU = True
except mg.BackendError:
    GPU = False
finally:
    mg.set_backend("numpy")


def synchronize(device):
    if device == "gpu":
        import cupy

        cupy.cuda.Device().synchronize()


def best_time(fn, device="cpu", min_total=0.05 if SMOKE else 0.2, min_repeats=3, max_repeats=50):
    """The tutorial's helper: warm up, synchronise, repeat, take the fastest."""
    fn()
    synchronize(device)
    times = []
    while len(times) < min_repeats or (sum(times) < min_total and len(times) < max_repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return min(times)


def make_step(batch, width, layers, device="cpu"):
    mg.manual_seed(0)
    hidden = [mg.nn.Dense(width, width, activation="relu") for _ in range(layers - 1)]
    net = mg.nn.Sequential(*hidden, mg.nn.Dense(width, width)).to(device)
    x = mg.randn(batch, width).to(device)

    def step():
        net.zero_grad()
        (net(x) ** 2).mean().backward()

    return step


# %% [markdown]
# ## Exercise 1: three layers, larger batches, and a least-squares fit
#
# With $\ell$ layers a step has $\ell$ forward products and $2\ell - 1$ backward ones (no gradient
# for the input), so $F = 2(3\ell - 1) B w^2$: $10 B w^2$ for two layers, $16 B w^2$ for three. The
# model $t = t_\text{fixed} + F / R$ is linear in the unknowns $(t_\text{fixed}, 1/R)$, so ordinary
# least squares on the design matrix $[1, F]$ fits both. Large steps dominate an unweighted fit, so
# we fit the *relative* error (each row divided by its measured time), which treats small and large
# steps alike. The extra layer adds its own fixed cost (more operations per step), so the floor
# rises, and the balance point $t_\text{fixed} R$ moves accordingly.

# %%
batches = [16, 256, 4096] if SMOKE else [16, 64, 256, 1024, 4096, 16384]
widths = [64, 256] if SMOKE else [64, 256, 1024]
for layers in (2, 3):
    flops, times = [], []
    for width in widths:
        for batch in batches:
            if SMOKE and batch * width > 4096 * 64:
                continue
            times.append(best_time(make_step(batch, width, layers)))
            flops.append(2 * (3 * layers - 1) * batch * width**2)
    flops, times = np.array(flops, float), np.array(times)
    design = np.stack([np.ones_like(flops), flops], axis=1) / times[:, None]
    (t_fixed, inverse_rate), *_ = np.linalg.lstsq(design, np.ones_like(times), rcond=None)
    predicted = t_fixed + flops * inverse_rate
    print(f"{layers} layers: t_fixed = {t_fixed * 1e6:6.0f} us, R = {1 / inverse_rate / 1e9:6.1f} "
          f"GFLOP/s, balance F = {t_fixed / inverse_rate / 1e6:6.1f} MFLOP; "
          f"misfit: median {np.median(np.abs(predicted / times - 1)):.0%}, "
          f"largest {np.max(np.abs(predicted / times - 1)):.0%}")
print("(on a busy machine single points can be far off: the fit is only as good as the timings)")

# %% [markdown]
# ## Exercise 2: the first call, without warm-up
#
# The first call pays one-time costs: on the CPU, the first touch of freshly allocated memory and of
# the BLAS library's buffers (and, at the very first product of a process, loading its kernels), so
# it is slower than the warmed-up calls by a factor that depends on the size. On a GPU the first
# call also creates the CUDA context (once per process) and compiles each CuPy kernel the first time
# it meets a dtype and an operation, which costs milliseconds to seconds: most of a first GPU call
# is one-time cost.

# %%
for device in (["cpu", "gpu"] if GPU else ["cpu"]):
    step = make_step(256, 256, 2, device)
    start = time.perf_counter()
    step()
    synchronize(device)
    first = time.perf_counter() - start
    warm = best_time(step, device)
    print(f"{device}: first call {first * 1e3:.2f} ms, warmed up {warm * 1e3:.2f} ms "
          f"({first / warm:.1f} times)")
if not GPU:
    print("No GPU here: the GPU's first call was not measured.")

# %% [markdown]
# ## Exercise 3: `np.exp` inside `forward`, and the fix
#
# `np.exp` applied to an array of the strict backend tries to turn it into a NumPy array, which the
# strict device refuses: exactly the error a CuPy array would give on a GPU (CuPy refuses implicit
# conversion to NumPy). Taking the array functions from the input's own namespace,
# `xp = mg.backend.namespace(x)`, fixes it: the same line then calls NumPy's `exp` on NumPy arrays,
# array-api-strict's on strict arrays and CuPy's on the GPU.

# %%
class NumpyExp(mg.Function):
    """y = e^x, written with np.exp: works on NumPy only."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * mg.exp(x)


class Exp(mg.Function):
    """y = e^x, with the array namespace of the input: works on every backend."""

    def forward(self, x):
        xp = mg.backend.namespace(x)
        return xp.exp(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * mg.exp(x)


backends = ["numpy", "strict"] if "strict" in mg.available_backends() else ["numpy"]
if backends == ["numpy"]:
    print('array-api-strict is not installed: only NumPy is tried (pip install "minigen[dev]")')
values = np.linspace(-2, 2, 7)
results = {}
for backend in backends:
    with mg.using_backend(backend):
        x = mg.Tensor(values, dtype="float64", requires_grad=True)
        try:
            NumpyExp()(x)
            print(f"{backend:7s} np.exp version: runs")
        except (TypeError, RuntimeError, ValueError) as err:
            print(f"{backend:7s} np.exp version: {type(err).__name__}: {str(err)[:90]}")
        results[backend] = Exp()(x).numpy()
        print(f"{backend:7s} xp.exp version: gradcheck {mg.gradcheck(lambda t: Exp()(t), [x])}")
if len(results) == 2:
    print("identical results on numpy and strict:",
          np.array_equal(results["numpy"], results["strict"]))

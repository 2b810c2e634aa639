"""Shared test settings: hypothesis profiles and the backends every backend-dependent test runs on.

Profiles (choose with HYPOTHESIS_PROFILE=...; CI uses "ci"):
  ci        derandomized (the same examples every run), no deadline, 20 examples per property
  dev       random examples, 30 per property (the default outside CI)
  thorough  300 examples per property, for a change to the engine's core
"""

import contextlib
import os

import pytest
from hypothesis import HealthCheck, settings

import minigen as mg
from minigen import backend as B

# The backend fixtures only select a backend: nothing in them needs resetting between examples.
_common = dict(deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
settings.register_profile("ci", derandomize=True, max_examples=20, print_blob=True, **_common)
settings.register_profile("dev", max_examples=30, **_common)
settings.register_profile("thorough", max_examples=300, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# BLAS threads: the CPUs other work leaves idle, shared among the xdist workers (workers x threads
# <= CPUs; threads waiting for a busy core are what makes BLAS slow, see backend.set_num_threads).
B.set_num_threads(max(1, B.free_cpus() // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


def _gpu_available():
    try:
        B.instance("cupy")
    except B.BackendError as err:
        return str(err).split(" (")[0].split(". ")[0]  # the first clause: why, not the whole advice
    return None


_NO_GPU = _gpu_available()

# Every backend-dependent test runs on NumPy, on array-api-strict (which fails where CuPy would),
# and on CuPy when this machine has a usable GPU.
BACKENDS = [
    "numpy",
    "strict",
    pytest.param("cupy",
                 marks=pytest.mark.skipif(_NO_GPU is not None, reason=f"no GPU: {_NO_GPU}")),
]


@contextlib.contextmanager
def _selected(name, dtype):
    """``name`` as the current backend with ``dtype`` as the default dtype and a fixed seed."""
    with mg.using_backend(name), mg.using_default_dtype(dtype):
        mg.manual_seed(0)
        yield name


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The name of the backend under test, made current for the test (float64 by default)."""
    with _selected(request.param, "float64") as name:
        yield name


@pytest.fixture(params=["numpy", "strict-float32",
                        pytest.param("cupy", marks=pytest.mark.skipif(
                            _NO_GPU is not None, reason=f"no GPU: {_NO_GPU}"))])
def backend32(request):
    """A backend for float32 runs; "strict-float32" refuses any float64 array (silent
    promotions)."""
    with _selected(request.param, "float32") as name:
        yield name

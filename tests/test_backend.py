"""Backend switching, seeding, dtypes, scatter-add, and what the strict backend refuses."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import minigen as mg
from minigen import backend as B


def test_set_get_and_temporary_switch():
    assert mg.get_backend() == "numpy"
    with mg.using_backend("strict"):
        assert mg.get_backend() == "strict"
        assert mg.zeros(2).device == "strict"
    assert mg.get_backend() == "numpy"
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        mg.set_backend("tpu")


def test_environment_variable_selects_the_backend():
    code = "import minigen as mg; print(mg.get_backend(), mg.zeros(1).device)"
    env = dict(os.environ, MINIGEN_BACKEND="strict")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == ["strict", "strict"], out.stderr


def test_cupy_without_a_gpu_says_what_is_missing_and_how_to_fix_it():
    try:
        B.instance("cupy")
    except B.BackendError as err:
        message = str(err)
        assert "minigen[cuda12]" in message
        assert ("not installed" in message) or ("no CUDA device" in message)
    else:
        pytest.skip("a GPU is usable here")


def test_default_dtype():
    assert mg.get_default_dtype() == "float32"
    try:
        mg.set_default_dtype("float64")
        assert mg.Tensor(1.5).dtype == np.float64 and mg.randn(2).dtype == np.float64
    finally:
        mg.set_default_dtype("float32")
    assert mg.randn(2).dtype == np.float32
    with pytest.raises(ValueError, match="float32"):
        mg.set_default_dtype("int8")


def test_using_default_dtype_sets_it_for_the_block_and_back_even_on_error():
    with mg.using_default_dtype("float64"):
        assert mg.get_default_dtype() == "float64" and mg.Tensor(1.5).dtype == np.float64
        with mg.using_default_dtype(np.dtype("float32")):    # a dtype object works too
            assert mg.Tensor(1.5).dtype == np.float32
        assert mg.get_default_dtype() == "float64"
    assert mg.get_default_dtype() == "float32"
    with pytest.raises(KeyError):
        with mg.using_default_dtype("float64"):
            raise KeyError("inside")
    assert mg.get_default_dtype() == "float32"
    with pytest.raises(ValueError, match="float32"):          # a bad name changes nothing
        with mg.using_default_dtype("int8"):
            pass
    assert mg.get_default_dtype() == "float32"


def test_manual_seed_makes_every_backend_reproducible(backend):
    mg.manual_seed(123)
    a = mg.randn(5).numpy()
    b = mg.rand(5).numpy()
    mg.manual_seed(123)
    np.testing.assert_array_equal(mg.randn(5).numpy(), a)
    np.testing.assert_array_equal(mg.rand(5).numpy(), b)
    assert not np.array_equal(mg.randn(5).numpy(), a)


def test_randomness_never_touches_numpys_global_generator():
    np.random.seed(7)
    expected = np.random.rand()
    np.random.seed(7)
    mg.manual_seed(0)
    mg.randn(100), mg.rand(100)
    assert np.random.rand() == expected


def test_random_numbers_have_the_right_distribution(backend):
    mg.manual_seed(0)
    n = 100_000
    z = mg.randn(n).numpy()
    u = mg.rand(n).numpy()
    assert abs(z.mean()) < 4 / np.sqrt(n) and abs(z.std() - 1) < 0.01
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n)


def test_scatter_add_adds_repeated_indices(backend):
    x = mg.Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[[0, 2, 2, 2]]
    (y * mg.Tensor([1.0, 10.0, 100.0, 1000.0])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 1110.0])


def test_strict_backend_refuses_numpy_arrays_inside_ops():
    with mg.using_backend("strict"):
        x = mg.Tensor([1.0, 2.0])
        with pytest.raises(TypeError):
            x.data * np.float64(2.0)               # a NumPy scalar mixed into a device array
        with pytest.raises(TypeError):
            x.data + np.ones(2)                    # a NumPy array mixed into a device array
        with pytest.raises(RuntimeError):
            np.asarray(x.data)                     # an implicit copy to the host
        assert not hasattr(x.data, "sum")          # NumPy-only methods are not there


def test_strict_float32_refuses_float64():
    with mg.using_backend("strict-float32"):
        with pytest.raises(ValueError, match="float64"):
            mg.Tensor([1.0], dtype="float64")


def test_save_and_load_arrays_atomically_without_pickles(tmp_path):
    path = tmp_path / "sub" / "arrays.npz"
    B.save_arrays(path, {"w": np.arange(6.0).reshape(2, 3), "b": mg.zeros(3).data})
    loaded = B.load_arrays(path)
    np.testing.assert_array_equal(loaded["w"], np.arange(6.0).reshape(2, 3))
    assert [p.name for p in path.parent.iterdir()] == ["arrays.npz"]   # no temporary left over
    bad = tmp_path / "pickled.npz"
    np.savez(bad, obj=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="pickled.npz"):
        B.load_arrays(bad)


def test_set_num_threads_limits_blas_and_can_be_lifted():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    try:
        B.set_num_threads(1)
        assert blas_threads() == {1}
        with pytest.raises(ValueError, match="at least 1"):
            B.set_num_threads(0)
    finally:
        B.set_num_threads(None)
    B.set_num_threads(1)      # the test session runs single-threaded (see conftest.py)


def test_free_cpus_leaves_out_the_busy_ones(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.0, 0.0))
    assert B.free_cpus() == 4                       # an idle machine: every core
    monkeypatch.setattr(os, "getloadavg", lambda: (2.6, 0.0, 0.0))
    assert B.free_cpus() == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (19.0, 0.0, 0.0))
    assert B.free_cpus() == 1                       # never fewer than one


@pytest.mark.parametrize("gathered", [True, False])
@pytest.mark.parametrize("layout", ["plain", "slice", "strided", "fortran", "misaligned",
                                    "big-endian", "read-only", "float16"])
def test_flat_adam_updates_the_parameter_in_place_whatever_its_layout(layout, gathered):
    # whatever the parameter's memory layout, the update lands in its array itself, never in a
    # silently updated copy (as SciPy's BLAS axpy, once used here, did for a misaligned or
    # big-endian array), and equals the one-parameter kernel's
    from minigen import kernels

    rng = np.random.default_rng(0)
    g = rng.normal(size=(3, 4)).astype(np.float32)
    p = rng.normal(size=(3, 4)).astype(np.float32)
    if layout == "slice":
        p = np.concatenate([p, p])[1:4]
    elif layout == "strided":
        p = np.repeat(p, 2, axis=1)[:, ::2]
    elif layout == "fortran":
        p = np.asfortranarray(p)
    elif layout == "misaligned":
        buffer = np.zeros(p.nbytes + 1, np.uint8)
        p = buffer[1:].view(np.float32).reshape(3, 4)
        p[...] = rng.normal(size=(3, 4))
    elif layout == "big-endian":
        g, p = g.astype(">f4"), p.astype(">f4")
    elif layout == "float16":
        g, p = g.astype(np.float16), p.astype(np.float16)
    dtype = p.dtype.newbyteorder("=")
    expected, m1, v1 = p.astype(dtype), np.zeros((3, 4), dtype), np.zeros((3, 4), dtype)
    for _ in range(2):
        kernels.adam_update(expected, g.astype(dtype), m1, v1, np.empty_like(m1), 0.9, 0.999,
                            1e-2, 1e-8)
    m, v, scratch = (np.zeros(12, dtype) for _ in range(3))
    small = np.zeros(12 if gathered else 0, dtype)
    if layout == "read-only":
        p.flags.writeable = False
        with pytest.raises(ValueError, match="read-only"):
            kernels.adam_update_flat([p], [g], m, v, scratch, small, 0.9, 0.999, 1e-2, 1e-8)
        return
    for _ in range(2):
        kernels.adam_update_flat([p], [g], m, v, scratch, small, 0.9, 0.999, 1e-2, 1e-8)
    np.testing.assert_allclose(p, expected, rtol=1e-3 if layout == "float16" else 1e-6)


ADAM_STEPS = """
import sys, minigen as mg
model = mg.VAE(data_dim=12, hidden=(8,), latent_dim=2)
optimizers = model.make_optimizers()
x = mg.Tensor(mg.backend.instance("numpy").xp.ones((4, 12), dtype="float32") / 2)
for _ in range(2):
    model.train_step(x, optimizers)
print(sorted(m for m in sys.modules if m.split(".")[0] == "scipy"))
"""


def test_adam_loads_no_second_blas_library():
    # SciPy brings its own OpenBLAS with its own thread pool: two pools of spinning threads on two
    # cores made a VAE epoch on NumPy eight times as long.  Training uses NumPy's BLAS only.
    root = os.environ.get("MINIGEN_TEST_ROOT", str(pathlib.Path(__file__).resolve().parents[1]))
    env = dict(os.environ, PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", ADAM_STEPS], capture_output=True, text=True,
                         env=env, cwd=root, check=True).stdout
    assert out.strip() == "[]", out

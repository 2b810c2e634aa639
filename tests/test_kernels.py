"""minigen.kernels: each fused kernel (CUDA on CuPy, ufuncs with out= on NumPy, plain expressions on
the strict backends) against the formula written out here in NumPy float64."""

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen import backend as B
from minigen import kernels

ACTIVATIONS = {  # forward from z, derivative from z
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(float)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "sigmoid": (scipy.special.expit, lambda z: scipy.special.expit(z) * scipy.special.expit(-z)),
}


def device(array, dtype):
    """A copy on the current backend (the kernels write in place: the test keeps its originals)."""
    return mg.Tensor(np.array(array, copy=True), dtype=dtype).data


def host(array):
    return B.of(array).to_numpy(array).astype(np.float64)


def finite(shape, low=-4.0, high=4.0):
    # a grid that stays clear of 0, where relu's derivative jumps
    return hnp.arrays(np.float64, shape, elements=st.integers(int(low * 8), int(high * 8)).map(
        lambda i: i / 8 + 1 / 32))


def tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@settings(max_examples=10)
@given(data=st.data())
def test_adam_update_matches_the_formula(backend, dtype, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), label="shape")
    p, g, m = (data.draw(finite(shape), label=name) for name in ("p", "g", "m"))
    v = data.draw(finite(shape, 0.0, 2.0), label="v")
    beta1, beta2, step, eps = 0.9, 0.999, 1e-2, 1e-3
    arrays = [device(a, dtype) for a in (p, g, m, v)]
    scratch = device(np.zeros(shape), dtype)
    kernels.adam_update(arrays[0], arrays[1], arrays[2], arrays[3], scratch, beta1, beta2, step,
                        eps)

    m_new = beta1 * m + (1 - beta1) * g
    v_new = beta2 * v + (1 - beta2) * g * g
    p_new = p - step * m_new / (np.sqrt(v_new) + eps)
    for got, want in zip((arrays[0], arrays[2], arrays[3]), (p_new, m_new, v_new)):
        np.testing.assert_allclose(host(got), want, **tolerance(dtype))


@pytest.mark.parametrize("activation", [None, *kernels.FUSED_ACTIVATIONS])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bias_activation_and_its_derivative(backend, activation, dtype):
    rng = np.random.default_rng(3)
    z, bias, gy = rng.normal(0, 3, (7, 5)) + 1 / 64, rng.normal(0, 1, 5), rng.normal(0, 1, (7, 5))
    forward, derivative = ACTIVATIONS.get(activation, (lambda a: a, lambda a: np.ones_like(a)))
    y = kernels.bias_activation(device(z, dtype), device(bias, dtype), activation)
    np.testing.assert_allclose(host(y), forward(z + bias), **tolerance(dtype))
    if activation is not None:
        g = kernels.activation_grad(device(gy, dtype), y, activation)
        np.testing.assert_allclose(host(g), gy * derivative(z + bias), **tolerance(dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bce_with_logits_kernels(backend, dtype):
    x = np.array([-800.0, -30.0, -2.5, -1e-3, 0.0, 1e-3, 2.5, 30.0, 800.0])
    t = np.linspace(0.0, 1.0, x.size)
    gy = np.linspace(-2.0, 2.0, x.size)
    loss, saved = kernels.bce_with_logits(device(x, dtype), device(t, dtype))
    expected = np.logaddexp(0.0, x) - x * t          # -[t log s(x) + (1 - t) log(1 - s(x))]
    np.testing.assert_allclose(host(loss), expected, **tolerance(dtype))
    grad = kernels.bce_with_logits_grad(device(x, dtype), device(t, dtype), device(gy, dtype),
                                        saved)
    np.testing.assert_allclose(host(grad), (scipy.special.expit(x) - t) * gy, **tolerance(dtype))


def test_the_adam_optimizer_keeps_no_scratch_in_its_checkpoint(backend):
    p = mg.Tensor(np.ones(3), requires_grad=True)
    opt = mg.optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert sorted(opt.state_dict()) == ["0.exp_avg", "0.exp_avg_sq", "0.step", "beta1", "beta2",
                                        "eps",
                                        "lr", "weight_decay"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(), (5,), (3, 5), (2, 0)])
def test_maximum_of_zero(backend, dtype, shape):
    # (NumPy compares with a cached row of zeros, which must stay zeros when out= is x itself)
    values = np.resize(np.array([-np.inf, -2.5, -0.0, 0.0, 1e-30, 3.0, np.inf, np.nan]), shape)
    values = values.astype(dtype).astype(np.float64)
    for _ in range(2):
        x = device(values, dtype)
        np.testing.assert_array_equal(host(kernels.maximum_zero(x)), np.maximum(values, 0.0))
        if shape and B.of(x).name in ("numpy", "cupy"):          # (no out= in the array API)
            out = kernels.maximum_zero(x, out=x)
            np.testing.assert_array_equal(host(out), np.maximum(values, 0.0))


@pytest.mark.parametrize("dtype", ["bool", "int64", "int32", "float32"])
def test_maximum_zero_gives_the_dtype_of_max_x_0_whatever_the_shape(dtype):
    # NumPy's faster loop against a row of zeros is for floating arrays; a bool or integer one
    # gets what maximum(x, 0) gives (a bool array: int64), a 0-d one and a (3,) one alike
    with mg.using_backend("numpy"):
        for shape in [(), (3,), (2, 3)]:
            x = np.ones(shape, dtype=dtype)
            assert kernels.maximum_zero(x).dtype == np.maximum(x, 0).dtype, shape
        dtypes = {mg.relu(mg.Tensor(np.ones(shape, dtype=dtype))).dtype for shape in [(), (3,)]}
        assert len(dtypes) == 1, dtypes


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(), (13,), (2, 13)])
def test_sigmoid_and_its_derivative_from_exp_minus_abs(backend, dtype, shape):
    # e / (1 + e)^2 is y (1 - y) without the 1 - y that rounds to 0 where y rounds to 1 (x = 40)
    points = np.array([-np.inf, -1e4, -800.0, -40.0, -1.0, -0.0, 0.0, 1e-30, 1.0, 40.0, 800.0,
                       1e4, np.inf])
    values = np.resize(points, shape).astype(dtype).astype(np.float64)
    y, e = kernels.sigmoid(device(values, dtype))
    expected = scipy.special.expit(values)
    slope = scipy.special.expit(values) * scipy.special.expit(-values)
    rtol = 1e-6 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(host(y), expected, rtol=rtol, atol=0)
    upstream = device(np.full(shape, 3.0), dtype)
    grad = host(kernels.sigmoid_grad(upstream, e))
    np.testing.assert_allclose(grad, 3.0 * slope, rtol=rtol * 4, atol=0)
    assert np.all(grad[np.abs(values) == 40.0] > 0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_moving_average_in_place_where_it_can(backend, dtype):
    rng = np.random.default_rng(3)
    avg0, w0 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    avg, w = device(avg0, dtype), device(w0, dtype)
    out = kernels.moving_average(avg, w, 0.9)
    np.testing.assert_allclose(host(out), 0.9 * avg0 + 0.1 * w0, **tolerance(dtype))
    np.testing.assert_array_equal(host(w), w0.astype(dtype))            # the weights untouched
    if B.of(avg).name in ("numpy", "cupy"):
        assert out is avg                                                  # no new array
    if B.of(avg).name == "numpy":                  # a read-only average gets a new array instead
        frozen = device(avg0, dtype)
        frozen.flags.writeable = False
        again = kernels.moving_average(frozen, w, 0.9)
        assert again is not frozen
        np.testing.assert_allclose(host(again), 0.9 * avg0 + 0.1 * w0, **tolerance(dtype))

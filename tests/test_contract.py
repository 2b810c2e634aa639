"""PyTorch's contract under adversarial input: one regression test per case of issue 10.

Each expected value is written here, derived by hand (PyTorch is not a test dependency).  The numbers
in the test names follow the issue's list.  Backend-dependent tests run on NumPy and on the strict
backends ("strict" refuses NumPy-only code; "strict-float32" refuses any float64 array).
"""

import threading

import numpy as np
import pytest

import minigen as mg
from minigen import backend as B
from minigen.functions import Add, Mul, Sub


def _name(t):
    return B.dtype_name(t.dtype)


# ----------------------------------------------------------------------------------------------------
# 1 and 5: type promotion (the rules are in the Tensor docstring)
# ----------------------------------------------------------------------------------------------------

def test_1_python_numbers_with_a_bool_tensor_promote(backend32):
    mask = mg.Tensor([True, False])
    assert _name(mask + 1) == "int64" and (mask + 1).tolist() == [2, 1]
    assert _name(mask + 1.5) == "float32" and (mask + 1.5).tolist() == [2.5, 1.5]
    assert (mask == 2).tolist() == [False, False]
    assert (mask == 1).tolist() == [True, False]
    x = mg.Tensor([2.0, -3.0])
    y = mg.where(x > 0, x, -1)
    assert _name(y) == "float32" and y.tolist() == [2.0, -1.0]
    assert mg.where(mask, 1, 0).tolist() == [1, 0]


def test_5_integers_with_python_floats_give_the_default_dtype(backend32):
    i = mg.Tensor([1, 2])
    for y in (i * 0.5, i / 2, 0.5 + i, mg.exp(i), mg.sqrt(i), i.mean()):
        assert _name(y) == "float32"
    assert (i / 2).tolist() == [0.5, 1.0]
    assert _name(mg.Tensor(np.array([1, 2], dtype=np.int32)) + 1) == "int32"
    mg.set_default_dtype("float64") if backend32 != "strict-float32" else None
    if backend32 != "strict-float32":
        assert _name(i * 0.5) == "float64"


def test_5_a_0d_tensor_does_not_widen_a_dimensioned_one(backend):
    f32 = mg.Tensor(np.ones(3, np.float32), requires_grad=True)
    zero_d = mg.Tensor(np.array(2.0))                       # float64, 0-d
    assert _name(f32 * zero_d) == "float32"
    assert _name(zero_d * f32) == "float32"
    assert _name(mg.Tensor(np.array([1, 2])) * zero_d) == "float64"   # but it lifts a category
    assert _name(mg.Tensor(np.array(2.0, np.float32)) * mg.Tensor(np.ones(2))) == "float64"
    assert _name(mg.maximum(f32, zero_d)) == "float32"
    assert _name(mg.where(mg.Tensor([True, False, True]), f32, zero_d)) == "float32"
    assert _name(mg.concatenate([f32, mg.Tensor(np.ones(2))])) == "float64"
    assert mg.autograd.result_dtype(f32, zero_d, 2.5) == "float32"
    assert mg.autograd.result_dtype(mg.Tensor(np.array([1], np.uint8)),
                                    mg.Tensor(np.array([1], np.int8))) == "int16"


def test_5_a_leaf_gradient_has_the_leaf_dtype(backend):
    f32 = mg.Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    f64 = mg.Tensor(np.array([3.0, 4.0]), requires_grad=True)
    (f32 * f64).sum().backward()
    assert _name(f32.grad) == "float32" and f32.grad.tolist() == [3.0, 4.0]
    assert _name(f64.grad) == "float64" and f64.grad.tolist() == [1.0, 2.0]
    g = mg.grad((f32 * f64).sum(), [f32], create_graph=True)[0]
    assert _name(g) == "float32"
    # an upstream gradient of another dtype is taken in the output's dtype
    y = f32 * 2.0
    y.backward(mg.Tensor(np.ones(2)))
    assert _name(f32.grad) == "float32"


def test_5_mixed_float32_graphs_create_no_float64(backend32):
    # strict-float32 refuses any float64 array: none of these may make one
    x = mg.Tensor([0.5, 1.5], requires_grad=True)
    i = mg.Tensor([1, 2])
    b = mg.Tensor([True, False])
    y = (x * i + b) / i + x ** 2 * 0.5 - mg.where(b, x, 3) + mg.exp(i) * x   # dy/dx = 1 + x - b + e^i
    y.sum().backward()
    assert _name(x.grad) == "float32"
    np.testing.assert_allclose(x.grad.numpy(), [1 + 0.5 - 1 + np.e, 1 + 1.5 + np.exp(2)],
                               rtol=1e-6)


# ----------------------------------------------------------------------------------------------------
# 9: a gradient of the wrong shape is an error naming the op and both shapes
# ----------------------------------------------------------------------------------------------------

class _Transposing(mg.Function):
    """A wrong backward: it returns the gradient transposed."""

    def forward(self, x):
        return x * 2.0

    def backward(self, gy):
        return gy.T * 2.0


def test_9_a_backward_returning_the_wrong_shape_raises(backend):
    x = mg.Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"_transposing: .* shape \(3, 2\) for input 0 of shape "
                                         r"\(2, 3\)"):
        _Transposing()(x).sum().backward()
    assert x.grad is None


def test_9_sum_to_refuses_shapes_broadcasting_cannot_make(backend):
    with pytest.raises(ValueError, match=r"sum_to: cannot sum \(2, 3\) down to \(3, 2\)"):
        mg.sum_to(mg.Tensor(np.ones((2, 3))), (3, 2))
    with pytest.raises(ValueError, match=r"sum_to"):
        mg.sum_to(mg.Tensor(np.ones(3)), (2, 3))
    assert mg.sum_to(mg.Tensor(np.ones((2, 3))), (1, 3)).tolist() == [[2.0, 2.0, 2.0]]
    assert mg.sum_to(mg.Tensor(np.ones((2, 3))), ()).item() == 6.0


# ----------------------------------------------------------------------------------------------------
# 10: tensors changed in place between forward and backward
# ----------------------------------------------------------------------------------------------------

def test_10_an_optimizer_step_between_forward_and_backward_raises(backend):
    layer = mg.nn.Dense(3, 2)
    opt = mg.optim.SGD(layer.parameters(), lr=0.1)
    x = mg.randn(4, 3)
    first = layer(x).sum()
    first.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="dense: .*modified by an inplace operation"):
        first.backward()
    layer.zero_grad()
    layer(x).sum().backward()          # a new forward is fine
    assert layer.weight._version > 0


def test_10_load_state_dict_and_to_count_as_changes(backend):
    layer = mg.nn.Dense(2, 2)
    y = (layer(mg.ones(1, 2)) * 2.0).sum()
    layer.load_state_dict(layer.state_dict())
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    w = mg.nn.Parameter(np.ones(2))
    bn = mg.nn.BatchNorm1d(2)
    bn.eval()
    out = (bn(w.reshape((1, 2)) * 1.0)).sum()
    bn.train()
    bn(mg.randn(4, 2))                       # updates the running statistics in place
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_10_the_version_counter_is_cheap_and_starts_at_zero(backend):
    t = mg.Tensor([1.0], requires_grad=True)
    assert t._version == 0 and (t * 2.0)._version == 0


# ----------------------------------------------------------------------------------------------------
# 11: one Function instance, two calls
# ----------------------------------------------------------------------------------------------------

class _Square(mg.Function):
    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return 2.0 * x * gy


def test_11_reusing_a_function_instance_raises_at_the_second_call(backend):
    square = _Square()
    a, b = mg.Tensor(2.0, requires_grad=True), mg.Tensor(3.0, requires_grad=True)
    y = square(a)
    with pytest.raises(RuntimeError, match="already called.*new instance"):
        square(b)
    y.backward()
    assert a.grad.item() == 4.0
    with pytest.raises(RuntimeError, match="already called"):
        square(b)                          # released after backward: still refused
    with mg.no_grad():                     # an instance that recorded nothing may be called again
        f = _Square()
        f(a), f(b)


# ----------------------------------------------------------------------------------------------------
# 14: grad mode is per thread
# ----------------------------------------------------------------------------------------------------

def test_14_no_grad_in_one_thread_leaves_others_recording():
    inside, release, seen = threading.Event(), threading.Event(), {}

    def worker():
        with mg.no_grad():
            inside.set()
            release.wait(10)
            seen["worker"] = mg.is_grad_enabled()

    thread = threading.Thread(target=worker)
    thread.start()
    inside.wait(10)
    x = mg.Tensor([1.0], requires_grad=True)
    try:
        assert mg.is_grad_enabled()
        assert (x * 2.0).requires_grad
    finally:
        release.set()
        thread.join()
    assert seen["worker"] is False
    with mg.no_grad():                      # and a new thread starts recording, whatever this one does
        result = []
        t = threading.Thread(target=lambda: result.append(mg.is_grad_enabled()))
        t.start()
        t.join()
        assert result == [True]


# ----------------------------------------------------------------------------------------------------
# Mul, Add, Sub: no gradient is computed for an input that needs none
# ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [Add, Sub, Mul])
def test_binary_ops_skip_the_gradient_of_a_constant(backend, op):
    x = mg.Tensor(np.ones((4, 5)), requires_grad=True)
    c = mg.Tensor(np.full((1, 5), 0.5))
    f = op()
    f(x, c)
    gx, gc = f.backward(mg.ones(4, 5))
    assert gc is None and gx.shape == (4, 5)
    f = op()
    f(c, x)
    gc, gx = f.backward(mg.ones(4, 5))
    assert gc is None and gx is not None

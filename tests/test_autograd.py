"""The graph walk: accumulation, freeing, double backprop, no_grad, constants, deep graphs,
errors."""

import numpy as np
import pytest

import minigen as mg


def test_gradients_accumulate_until_reset(backend):
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3 + 2, 3 + 4])
    x.zero_grad()
    assert x.grad is None


def test_a_shared_input_gets_the_sum_of_its_paths(backend):
    x = mg.Tensor(3.0, requires_grad=True)
    y = x * x + x          # dy/dx = 2x + 1 = 7
    y.backward()
    assert x.grad.item() == pytest.approx(7.0)


def test_leaf_gradients_are_independent_arrays(backend):
    # a + b hands the same upstream gradient to both inputs; changing one .grad must not change the
    # other
    a = mg.Tensor([1.0, 2.0], requires_grad=True)
    b = mg.Tensor([1.0, 2.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.data[0] = 100.0
    assert b.grad.numpy()[0] == 1.0


def test_leaf_gradients_never_alias_other_arrays(backend):
    # a fresh array handed to two leaves ((a + b) * 3: Mul makes it, Add hands it on twice), a view
    # (reshape), the caller's own upstream gradient: every .grad must be the leaf's alone
    a, b, c, d = (mg.Tensor([1.0, 2.0], requires_grad=True) for _ in range(4))
    ((a + b) * 3.0).sum().backward()
    a.grad.data[0] = 100.0
    assert b.grad.numpy().tolist() == [3.0, 3.0]
    c.reshape((2, 1)).sum().backward()
    upstream = mg.Tensor([5.0, 6.0])
    d.backward(upstream)
    d.grad.data[0] = 100.0
    assert upstream.numpy().tolist() == [5.0, 6.0]
    # a weight's gradient from a matmul is fresh and handed out once: kept without a copy, and
    # correct
    x, w = mg.Tensor([[1.0, 2.0]]), mg.Tensor([[1.0], [1.0]], requires_grad=True)
    (x @ w).sum().backward()
    assert w.grad.numpy().tolist() == [[1.0], [2.0]]


def test_a_chain_of_ten_thousand_ops_needs_no_recursion(backend):
    x = mg.Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 10_000, rel=1e-9)


def test_backward_frees_the_graph_unless_retained(backend):
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = (mg.exp(x) * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    y.backward()                                    # still there: retained
    np.testing.assert_allclose(x.grad.numpy(), 2 * first)
    with pytest.raises(RuntimeError, match="freed.*retain_graph=True"):
        y.backward()                                # freed by the second call


def test_freeing_drops_saved_tensors(backend):
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    middle = y.creator.inputs[0].creator
    y.backward()
    assert middle.inputs is None


def test_create_graph_gives_differentiable_gradients(backend):
    x = mg.Tensor([0.5, -1.0, 2.0], requires_grad=True)
    y = (x ** 3).sum()
    (g,) = mg.grad(y, x, create_graph=True)         # 3x^2
    np.testing.assert_allclose(g.numpy(), 3 * x.numpy() ** 2)
    assert g.requires_grad
    (h,) = mg.grad(g.sum(), x)                      # 6x
    np.testing.assert_allclose(h.numpy(), 6 * x.numpy())
    assert x.grad is None                           # mg.grad touches no .grad


def test_gradient_penalty_through_a_small_network(backend):
    # |d critic / dx|^2 for critic(x) = sum(tanh(x @ W)); the penalty's gradient w.r.t. W is checked
    mg.manual_seed(1)
    x = mg.Tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    w = mg.Tensor(np.linspace(-0.5, 0.7, 12).reshape(3, 4), requires_grad=True)

    def penalty(w):
        (gx,) = mg.grad(mg.tanh(x @ w).sum(), x, create_graph=True)
        return (gx * gx).sum()

    assert mg.gradcheck(penalty, [w])


def test_no_grad_records_nothing(backend):
    x = mg.Tensor([1.0], requires_grad=True)
    with mg.no_grad():
        y = x * 2.0
        assert not mg.is_grad_enabled()
        with mg.enable_grad():
            z = x * 2.0
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.creator is None
    assert z.requires_grad


def test_integer_and_boolean_tensors_are_constants(backend):
    assert mg.backend.dtype_name(mg.Tensor([1, 2]).dtype) == "int64"
    assert mg.backend.dtype_name(mg.Tensor([True]).dtype) == "bool"
    with pytest.raises(TypeError, match="floating-point"):
        mg.Tensor([1, 2], requires_grad=True)
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    mask = x > 1.5
    assert not mask.requires_grad
    y = mg.where(mask, x, x * 0.0).sum()
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0])


def test_detach_cuts_the_graph(backend):
    x = mg.Tensor([2.0], requires_grad=True)
    y = (x.detach() * x).sum()       # only the second factor is differentiated
    y.backward()
    assert x.grad.item() == pytest.approx(2.0)


def test_grad_of_unused_input_is_zero_and_inputs_must_require_grad(backend):
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    unused = mg.Tensor([5.0], requires_grad=True)
    gx, gu = mg.grad((x * x).sum(), [x, unused])
    np.testing.assert_allclose(gu.numpy(), [0.0])
    with pytest.raises(ValueError, match="input 0 does not require grad"):
        mg.grad((x * x).sum(), [mg.Tensor([1.0])])


def test_grad_of_something_without_a_graph_is_an_error(backend):
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    (g,) = mg.grad((x * x).sum(), x)                    # no create_graph: g is a constant
    with pytest.raises(RuntimeError, match="create_graph=True"):
        mg.grad(g.sum(), x)


def test_backward_of_non_scalar_explains_what_to_pass(backend):
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*grad=.*\.sum\(\)"):
        (x * 2.0).backward()
    (x * 2.0).backward(grad=mg.Tensor([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 20.0])
    with pytest.raises(ValueError, match=r"grad has shape \(3,\)"):
        (x * 2.0).backward(grad=mg.Tensor([1.0, 1.0, 1.0]))


def test_backward_on_a_constant_says_why(backend):
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.Tensor([1.0]).sum().backward()


def test_shape_errors_name_the_op_and_both_shapes(backend):
    a, b = mg.zeros(2, 3), mg.zeros(4, 5)
    with pytest.raises(ValueError, match=r"^matmul: cannot multiply \(2, 3\) by \(4, 5\)$"):
        a @ b
    with pytest.raises(ValueError, match=r"^add: cannot broadcast \(2, 3\) with \(4, 5\)$"):
        a + b
    with pytest.raises(ValueError, match=r"^mul: cannot broadcast \(2, 3\) with \(3, 2\)$"):
        a * mg.zeros(3, 2)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape \(2, 3\) to \(4,\)"):
        a.reshape(4)


@pytest.mark.parametrize("bad", ["text", None, {"a": 1}, [["a", "b"]], np.array(["x"])])
def test_non_numeric_data_is_a_type_error(backend, bad):
    with pytest.raises(TypeError, match="Tensor"):
        mg.Tensor(bad)


def test_tensor_keeps_backend_arrays_without_copy_and_follows_the_default_dtype():
    array = np.zeros(3, dtype=np.float32)
    assert mg.Tensor(array).data is array
    assert mg.backend.dtype_name(mg.Tensor([1.0]).dtype) == mg.get_default_dtype() == "float32"
    assert mg.Tensor(np.zeros(2)).dtype == np.float64     # NumPy arrays keep their dtype
    assert mg.Tensor([1.0], dtype="float64").dtype == np.float64


def test_tensor_basics(backend):
    t = mg.Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.T.shape == (3, 2) and t.transpose(1, 0).shape == (3, 2)
    assert t.reshape(3, 2).shape == (3, 2) and t.reshape((6,)).shape == (6,)
    assert t.sum().item() == 21.0 and t.mean().item() == 3.5 and t.max().item() == 6.0
    assert isinstance(t.numpy(), np.ndarray)
    assert t[1, 2].item() == 6.0
    assert t.device == {"numpy": "cpu", "strict": "strict", "cupy": "gpu"}[backend]
    assert "tensor(" in repr(t)
    t.data[0, 0] = 10.0                                 # data is writable
    assert t[0, 0].item() == 10.0


def test_custom_function_with_double_backprop(backend):
    class Cube(mg.Function):
        def forward(self, x):
            return x * x * x

        def backward(self, gy):
            (x,) = self.inputs
            return 3.0 * x * x * gy

    x = mg.Tensor([0.5, -2.0], requires_grad=True)
    assert mg.gradcheck(lambda x: Cube()(x), [x])
    assert mg.gradgradcheck(lambda x: Cube()(x), [x])


def test_mixing_devices_is_an_error_naming_both():
    with mg.using_backend("strict"):
        on_strict = mg.Tensor([1.0, 2.0])
    on_cpu = mg.Tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="add: tensors on two devices.*cpu and strict"):
        on_cpu + on_strict


def test_to_moves_data_and_gradients_flow_back():
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    y = x.to("strict")
    assert y.device == "strict" and x.to("cpu") is x
    (y * y).sum().backward()
    assert x.grad.device == "cpu"
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])
    with pytest.raises(ValueError, match="unknown device"):
        x.to("tpu")

"""minigen.fused: each fused op equals its composite reference in value, gradient and second
derivative on every backend; the graph walk uses ``backward_arrays`` exactly when no graph is being
built; and with fusion off the models really train on the primitive ops of functions.py."""

import collections
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen import fused, nn
from op_specs import grid

TOL = dict(rtol=1e-9, atol=1e-11)


def arrays(shape, low=-2.0, high=2.0, offset=0.0, exclude_zero=False):
    return hnp.arrays(np.float64, shape, elements=grid(low, high, offset, exclude_zero))


def leaf(array):
    return mg.Tensor(array, requires_grad=True)


def first_and_second(fn, inputs, seed):
    """(value, d sum(u * fn) / d inputs, d sum(v * grads) / d inputs) with fixed random u and v:
    every number the fused op and its reference must agree on."""
    out = fn(*inputs)
    rng = np.random.default_rng(seed)
    u = mg.Tensor(rng.normal(size=out.shape))
    grads = mg.grad(out, inputs, grad_outputs=u, create_graph=True)
    total = None
    for g in grads:
        if g.requires_grad:
            term = (g * mg.Tensor(rng.normal(size=g.shape))).sum()
            total = term if total is None else total + term
    second = mg.grad(total, inputs) if total is not None else [None] * len(inputs)
    plain = mg.grad(fn(*inputs), inputs, grad_outputs=u)       # the backward_arrays path
    return out, grads, second, plain


def assert_same(fn_fused, fn_reference, inputs, seed=0):
    f_out, f_grads, f_second, f_plain = first_and_second(fn_fused, inputs, seed)
    r_out, r_grads, r_second, _ = first_and_second(fn_reference, inputs, seed)
    np.testing.assert_allclose(f_out.numpy(), r_out.numpy(), **TOL)
    for f, r, p in zip(f_grads, r_grads, f_plain):
        np.testing.assert_allclose(f.numpy(), r.numpy(), **TOL)
        np.testing.assert_allclose(p.numpy(), r.numpy(), **TOL)
    for f, r in zip(f_second, r_second):
        if f is not None or r is not None:
            np.testing.assert_allclose(f.numpy(), r.numpy(), **TOL)


@pytest.mark.parametrize("activation", [None, *fused.FUSED_ACTIVATIONS])
@settings(max_examples=8)
@given(data=st.data())
def test_dense_equals_its_reference(backend, activation, data):
    batch = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3),
                      label="batch")
    n_in, n_out = data.draw(st.integers(1, 3), label="in"), data.draw(st.integers(1, 3),
                                                                      label="out")
    x = leaf(data.draw(arrays(batch + (n_in,)), label="x"))
    w = leaf(data.draw(arrays((n_in, n_out)), label="w"))
    b = leaf(data.draw(arrays((n_out,), offset=1 / 8192), label="b"))   # clear of relu's kink
    reference = fused.ACTIVATIONS.get(activation)
    assert_same(lambda x, w, b: fused.DenseFunction(activation)(x, w, b),
                lambda x, w, b: fused.dense_reference(x, w, b, reference), [x, w, b])


def reduced(reference, reduction):
    """``reference`` followed by the reduction in primitive ops (Sum, Mean)."""
    def fn(*inputs):
        terms = reference(*inputs)
        if reduction == "batchmean":                    # (len(terms) >= 1 in these tests)
            return terms.sum() / len(terms)
        return {"none": terms, "sum": terms.sum(), "mean": terms.mean()}[reduction]
    return fn


def loss_shapes(reduction):
    """Shapes with 0-d and empty ones; batchmean needs a batch axis of length >= 1 here."""
    low = 1 if reduction == "batchmean" else 0
    return hnp.array_shapes(min_dims=low, max_dims=2, min_side=low, max_side=3)


@pytest.mark.parametrize("reduction", fused.REDUCTIONS)
@settings(max_examples=15)
@given(data=st.data())
def test_bce_with_logits_equals_its_reference(backend, reduction, data):
    shape = data.draw(loss_shapes(reduction), label="shape")
    x = leaf(data.draw(arrays(shape, -6.0, 6.0), label="x"))         # 0 included: exact there too
    t = leaf(data.draw(arrays(shape, 0.0, 1.0), label="t"))
    assert_same(lambda x, t: fused.BCEWithLogits(reduction)(x, t),
                reduced(fused.bce_with_logits_reference, reduction), [x, t])


@pytest.mark.parametrize("reduction", fused.REDUCTIONS)
@settings(max_examples=15)
@given(data=st.data())
def test_gaussian_kl_equals_its_reference(backend, reduction, data):
    shape = data.draw(loss_shapes(reduction), label="shape")
    mu, lv = (leaf(data.draw(arrays(shape), label=name)) for name in ("mu", "log_var"))
    assert_same(lambda m, v: fused.GaussianKL(reduction)(m, v),
                reduced(fused.gaussian_kl_reference, reduction), [mu, lv])


def test_loss_ops_refuse_an_unknown_reduction_and_a_batchmean_without_batch():
    for op in (fused.BCEWithLogits, fused.GaussianKL):
        with pytest.raises(ValueError, match="reduction must be 'mean', 'sum', 'batchmean' or "
                                             "'none', not 'avg'"):
            op("avg")
        with pytest.raises(ValueError, match=f"{op.name}: reduction='batchmean' divides by the "
                                             "batch size .* 0-d"):
            op("batchmean")(mg.Tensor(0.5), mg.Tensor(0.5))
        empty = op("batchmean")(mg.zeros(0, 3), mg.zeros(0, 3))     # an empty batch: NaN, as mean
        assert empty.shape == () and np.isnan(empty.item())


@settings(max_examples=15)
@given(data=st.data())
def test_reparameterize_equals_its_reference(backend, data):
    shapes = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=2,
                                                         max_side=3), label="shapes")
    mu, lv, eps = (leaf(data.draw(arrays(s), label=name))
                   for s, name in zip(shapes.input_shapes, ("mu", "log_var", "eps")))
    assert_same(lambda m, v, e: fused.Reparameterize()(m, v, e), fused.reparameterize_reference,
                [mu, lv, eps])


def test_adam_step_equals_its_reference(backend):
    rng = np.random.default_rng(1)
    p, g, m = (rng.normal(size=(4, 3)) for _ in range(3))
    v = rng.uniform(0.0, 2.0, (4, 3))
    results = []
    for fusion in (True, False):
        arrays_ = [mg.Tensor(a.copy()).data for a in (p, g, m, v)]
        with mg.using_fusion(fusion):
            fused.adam_step(arrays_[0], arrays_[1], arrays_[2], arrays_[3],
                            mg.zeros(4, 3).data, 0.9, 0.999, 1e-2, 1e-3)
        results.append([mg.Tensor(a).numpy() for a in (arrays_[0], arrays_[2], arrays_[3])])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **TOL)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_adam_step_flat_equals_its_reference(dtype):
    # small parameters (gathered into one array), a 0-d one, an empty one, and two larger than
    # _FlatMoments.SMALL (updated one by one), one of them not contiguous (a transposed view)
    rng = np.random.default_rng(2)
    shapes = [(3, 4), (), (0, 2), (5,), (130, 131), (131, 130)]
    small = 3 * 4 + 1 + 0 + 5
    values = [rng.normal(size=s).astype(dtype) for s in shapes]
    gs = [rng.normal(size=s).astype(dtype) for s in shapes]
    total = sum(p.size for p in values)
    moments = rng.normal(size=total).astype(dtype), rng.uniform(0.0, 2.0, total).astype(dtype)
    results = []
    for fusion in (True, False):
        ps = [p.copy() for p in values]
        ps[-1] = np.asfortranarray(ps[-1])
        m, v = (a.copy() for a in moments)
        scratch, gathered = np.zeros(total, dtype), np.zeros(small, dtype)
        with mg.using_fusion(fusion):
            fused.adam_step_flat(ps, gs, m, v, scratch, gathered, 0.9, 0.999, 1e-2, 1e-3)
        results.append(ps + [m, v])
    tol = TOL if dtype == "float64" else dict(rtol=1e-5, atol=1e-6)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, **tol)


# --------------------------------------------------------------------------------------------------
# The switch: what runs
# --------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def counting_ops():
    """Count every Function that runs forward (by class name) and every backward method called."""
    calls = collections.Counter()
    call, grads = mg.Function.__call__, mg.Function._input_grads

    def counted_call(self, *inputs):
        calls[type(self).__name__] += 1
        return call(self, *inputs)

    def counted_grads(self, gy, arrays=False):
        calls[type(self).__name__ + (".backward_arrays" if arrays else ".backward")] += 1
        return grads(self, gy, arrays)

    mg.Function.__call__, mg.Function._input_grads = counted_call, counted_grads
    try:
        yield calls
    finally:
        mg.Function.__call__, mg.Function._input_grads = call, grads


FUSED = {"DenseFunction", "BCEWithLogits", "GaussianKL", "Reparameterize"}
MODELS = {
    "vae": lambda: mg.VAE(6, hidden=(5,), latent_dim=2),
    "gan": lambda: mg.GAN(6, latent_dim=2, hidden=(5,)),
    "vaegan": lambda: mg.VAEGAN(6, hidden=(5,), latent_dim=2, likelihood="bernoulli"),
}


def train_once(kind, fusion):
    mg.manual_seed(0)
    model = MODELS[kind]()
    optimizers = model.make_optimizers()
    x = mg.Tensor(np.random.default_rng(0).uniform(0.0, 1.0, (8, 6)))
    with mg.using_fusion(fusion), counting_ops() as calls:
        losses = model.train_step(x, optimizers)
    return losses, [p.numpy() for p in model.parameters()], calls


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_with_fusion_off_the_models_train_on_the_primitive_ops(backend, kind):
    on_losses, on_params, on_calls = train_once(kind, True)
    off_losses, off_params, off_calls = train_once(kind, False)
    # fused: no matrix product or activation of functions.py runs; only the fused ops
    assert "MatMul" not in on_calls and "ReLU" not in on_calls
    assert on_calls["DenseFunction"] > 0 and on_calls["DenseFunction.backward_arrays"] > 0
    # off: the primitive ops run forward and backward, and no fused op runs at all
    assert not FUSED & set(off_calls)
    primitives = {"MatMul", "ReLU", "Softplus"} | ({"Exp"} if kind != "gan" else set())
    if kind == "vaegan":
        primitives.add("Sigmoid")             # the Bernoulli decoder's mean, seen by the critic
    for name in primitives:
        assert off_calls[name] > 0, name
    for name in ("MatMul", "ReLU"):                 # stepped through backward (or backward_arrays)
        assert off_calls[name + ".backward"] + off_calls[name + ".backward_arrays"] > 0, name
    # and both paths train to the same numbers
    for name in on_losses:
        assert on_losses[name] == pytest.approx(off_losses[name], rel=1e-9, abs=1e-12)
    for a, b in zip(on_params, off_params):
        np.testing.assert_allclose(a, b, **TOL)


def test_sequential_fuses_a_dense_with_the_activation_module_after_it():
    net = nn.Sequential(nn.Dense(3, 4), nn.ReLU(), nn.Dense(4, 2), nn.LeakyReLU(0.2),
                        nn.Dense(2, 2), nn.Tanh())
    x = mg.randn(5, 3)
    y = net(x)
    assert isinstance(y.creator, fused.DenseFunction) and y.creator.activation == "tanh"
    middle = y.creator.inputs[0]                           # LeakyReLU(0.2): not fusable, applied
    assert type(middle.creator).__name__ == "LeakyReLU"
    with mg.using_fusion(False):
        z = net(x)
    assert type(z.creator).__name__ == "Tanh"
    np.testing.assert_allclose(y.numpy(), z.numpy(), rtol=1e-6, atol=1e-7)


def test_dense_fuses_mg_relu_passed_as_its_activation():
    w, b = mg.randn(3, 2, requires_grad=True), mg.zeros(2, requires_grad=True)
    assert fused.dense(mg.randn(4, 3), w, b, mg.relu).creator.activation == "relu"
    assert nn.Dense(3, 2, activation=nn.ReLU())(mg.randn(4, 3)).creator.activation == "relu"


class Cube(mg.Function):
    def forward(self, x):
        return x * x * x

    def backward(self, gy):
        (x,) = self.inputs
        return 3.0 * x * x * gy

    def backward_arrays(self, gy):
        x = self.inputs[0].data
        return 3.0 * x * x * gy


def test_the_graph_walk_calls_backward_arrays_unless_it_builds_a_graph(backend):
    x = mg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with counting_ops() as calls:
        (g,) = mg.grad(Cube()(x).sum(), [x])
    assert calls["Cube.backward_arrays"] == 1 and calls["Cube.backward"] == 0
    np.testing.assert_allclose(g.numpy(), [3.0, 12.0])
    with counting_ops() as calls:
        (g,) = mg.grad(Cube()(x).sum(), [x], create_graph=True)
        (gg,) = mg.grad(g.sum(), [x])
    assert calls["Cube.backward"] == 1
    np.testing.assert_allclose(gg.numpy(), [6.0, 12.0])


def test_backward_arrays_results_are_summed_to_broadcast_inputs(backend):
    x = mg.Tensor(np.array([[1.0], [2.0]]), requires_grad=True)       # (2, 1)
    b = mg.Tensor(np.zeros((1, 3)), requires_grad=True)               # (1, 3)
    y = fused.Reparameterize()(x, b, mg.ones(2, 3))
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[3.0], [3.0]])
    np.testing.assert_allclose(b.grad.numpy(), [[1.0, 1.0, 1.0]])       # 0.5 * eps * 1, summed


def test_backward_arrays_must_return_one_gradient_per_input():
    class Wrong(Cube):
        def backward_arrays(self, gy):
            return gy, gy

    x = mg.Tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="Wrong.backward_arrays returned 2 gradients for 1"):
        Wrong()(x).sum().backward()


@pytest.mark.parametrize("returned", ["tensor", "list", "tensor-backward"])
def test_a_backward_that_returns_the_wrong_kind_says_which_method_must_return_what(returned):
    # backward_arrays works on arrays, backward on Tensors: mixing them up (copying one's code
    # into the other) is an error naming the op, the method and what it returned
    class Mixed(Cube):
        def backward_arrays(self, gy):
            if returned == "tensor":
                return mg.Tensor(3.0 * self.inputs[0].data ** 2 * gy)
            return ([3.0, 12.0],)                                   # a list of numbers

        def backward(self, gy):
            return 3.0 * self.inputs[0].data ** 2 * gy.data          # an array, not a Tensor

    x = mg.Tensor(np.ones(2), requires_grad=True)
    if returned == "tensor-backward":
        with pytest.raises(TypeError, match=r"Mixed\.backward must return Tensors \(or None\), "
                                            "got ndarray"):
            mg.grad(Mixed()(x).sum(), [x], create_graph=True)
        return
    kind = "Tensor" if returned == "tensor" else "list"
    with pytest.raises(TypeError, match=rf"Mixed\.backward_arrays must return backend arrays "
                                        rf"\(or None\), got {kind} for input 0"):
        Mixed()(x).sum().backward()

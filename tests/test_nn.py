"""minigen.nn: Dense (one fused op), activations, Sequential, Dropout, BatchNorm1d, Module
bookkeeping, state_dict / save / load, and moving a model between devices."""

import pickle
import re

import numpy as np
import pytest
import scipy.special
import scipy.stats
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen import nn
from op_specs import grid


def arrays(shape, low=-2.0, high=2.0, offset=0.0):
    return hnp.arrays(np.float64, shape, elements=grid(low, high, offset=offset))


def leaf(array):
    return mg.Tensor(array, requires_grad=True)


def dtype_of(t):
    return mg.backend.dtype_name(t.dtype)


NUMPY_ACTIVATIONS = {None: lambda y: y, "tanh": np.tanh, "sigmoid": scipy.special.expit,
                     "softplus": lambda y: np.logaddexp(0.0, y),
                     "relu": lambda y: np.maximum(y, 0.0),
                     "leaky_relu": lambda y: np.where(y > 0, y, 0.01 * y)}


# --------------------------------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------------------------------

@given(data=st.data())
def test_dense_forward_and_gradients(backend, data):
    batch = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3),
                      label="batch")
    n_in, n_out = data.draw(st.integers(1, 3), label="in"), data.draw(st.integers(1, 3),
                                                                      label="out")
    activation = data.draw(st.sampled_from([None, "tanh", "sigmoid", "softplus", "relu",
                                            "leaky_relu"]),
                           label="activation")
    x = data.draw(arrays(batch + (n_in,)), label="x")
    w = data.draw(arrays((n_in, n_out)), label="w")
    # x @ w is a multiple of 1/4096: this offset keeps x @ w + b clear of relu's kink at 0
    b = data.draw(arrays((n_out,), offset=1 / 8192), label="b")

    layer = nn.Dense(n_in, n_out, activation=activation)
    layer.load_state_dict({"weight": w, "bias": b})
    expected = NUMPY_ACTIVATIONS[activation](x @ w + b)
    np.testing.assert_allclose(layer(mg.Tensor(x)).numpy(), expected, rtol=1e-12, atol=1e-12)

    assert mg.gradcheck(lambda x, w, b: layer(x), [leaf(x), layer.weight, layer.bias])


@settings(max_examples=8)
@given(data=st.data())
def test_dense_second_order(backend, data):
    batch = data.draw(st.integers(1, 3))
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x, w, b = (leaf(data.draw(arrays(s))) for s in [(batch, n_in), (n_in, n_out), (n_out,)])
    # tanh makes the second derivative with respect to every input non-zero
    assert mg.gradgradcheck(lambda x, w, b: mg.tanh(nn.dense(x, w, b)), [x, w, b])


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid"])
@settings(max_examples=5)
@given(data=st.data())
def test_dense_with_a_fused_activation_has_second_derivatives(backend, activation, data):
    # create_graph takes the in-graph backward; the plain backward (above) the array one
    batch = data.draw(st.integers(1, 3))
    n_in, n_out = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    x, w = (leaf(data.draw(arrays(s))) for s in [(batch, n_in), (n_in, n_out)])
    b = leaf(data.draw(arrays((n_out,), offset=1 / 8192)))
    y = nn.dense(x, w, b, activation=activation)
    assert y.creator.activation == activation
    assert mg.gradgradcheck(lambda x, w, b: nn.dense(x, w, b, activation=activation) ** 2,
                            [x, w, b])


def test_dense_fuses_what_it_can_and_applies_the_rest_after():
    with pytest.raises(ValueError, match="cannot fuse activation 'softplus'"):
        nn.DenseFunction("softplus")
    x, w, b = mg.randn(4, 3), mg.randn(3, 2, requires_grad=True), mg.zeros(2, requires_grad=True)
    assert isinstance(nn.dense(x, w, b, activation="tanh").creator, nn.DenseFunction)
    y = nn.dense(x, w, b, activation="softplus")
    assert not isinstance(y.creator, nn.DenseFunction)
    np.testing.assert_allclose(y.numpy(), np.logaddexp(0.0, x.numpy() @ w.numpy()), rtol=1e-6)
    z = nn.dense(x, w, activation="relu")                          # no bias: matmul, then relu
    np.testing.assert_allclose(z.numpy(), np.maximum(x.numpy() @ w.numpy(), 0), rtol=1e-6)


def test_dense_is_one_fused_op(backend):
    layer = nn.Dense(3, 2)
    x = mg.randn(4, 3, requires_grad=True)
    y = layer(x)
    assert isinstance(y.creator, nn.DenseFunction)
    assert [t is s for t, s in zip(y.creator.inputs, [x, layer.weight, layer.bias])] == [True] * 3
    y.sum().backward()
    np.testing.assert_allclose(layer.bias.grad.numpy(), [4.0, 4.0])
    np.testing.assert_allclose(x.grad.numpy(), np.tile(layer.weight.numpy().sum(axis=1), (4, 1)))


def test_dense_shapes_and_defaults():
    layer = nn.Dense(3, 5)
    assert layer.weight.shape == (3, 5) and layer.bias.shape == (5,)
    assert isinstance(layer.weight, nn.Parameter) and layer.weight.requires_grad
    np.testing.assert_array_equal(layer.bias.numpy(), np.zeros(5))
    assert dtype_of(layer.weight) == mg.get_default_dtype()
    assert nn.Dense(3, 5, bias=False).bias is None
    assert [n for n, _ in nn.Dense(3, 5, bias=False).named_parameters()] == ["weight"]


def test_dense_glorot_uniform_and_he_normal_initialisation():
    mg.manual_seed(0)
    n_in, n_out = 300, 200
    w = nn.Dense(n_in, n_out).weight.numpy().astype(np.float64).ravel()
    limit = np.sqrt(6.0 / (n_in + n_out))
    assert np.all(np.abs(w) <= limit)
    assert scipy.stats.kstest(w, "uniform", args=(-limit, 2 * limit)).pvalue > 1e-3
    # E[w^2] = a^2 / 3, Var[w^2] = 4 a^4 / 45
    assert abs(np.mean(w ** 2) - limit ** 2 / 3) < 4 * np.sqrt(4 * limit ** 4 / 45 / w.size)

    w = nn.Dense(n_in, n_out, init="he").weight.numpy().astype(np.float64).ravel()
    std = np.sqrt(2.0 / n_in)
    assert scipy.stats.kstest(w, "norm", args=(0.0, std)).pvalue > 1e-3
    assert abs(np.mean(w ** 2) - std ** 2) < 4 * np.sqrt(2 * std ** 4 / w.size)


def test_dense_converts_host_input_to_its_own_dtype(backend32):
    layer = nn.Dense(3, 2)
    y = layer(np.ones((4, 3)))                       # float64 NumPy data into a float32 layer
    assert dtype_of(y) == "float32" and y.device == layer.weight.device
    np.testing.assert_allclose(y.numpy(), np.tile(layer.weight.numpy().sum(axis=0), (4, 1)),
                               rtol=1e-6)


def test_dense_initialisation_follows_the_seed():
    mg.manual_seed(5)
    a = nn.Dense(4, 3).weight.numpy()
    mg.manual_seed(5)
    np.testing.assert_array_equal(a, nn.Dense(4, 3).weight.numpy())


def test_dense_errors():
    layer = nn.Dense(3, 2)
    with pytest.raises(ValueError, match=re.escape(
            "dense: expected input with last dimension 3, got shape (2, 4)")):
        layer(mg.zeros(2, 4))
    with pytest.raises(ValueError, match=re.escape("got shape (2, 4)")):
        nn.Dense(3, 2, bias=False)(mg.zeros(2, 4))
    with pytest.raises(ValueError, match="unknown activation 'relu6'.*leaky_relu.*relu.*sigmoid"):
        nn.Dense(3, 2, activation="relu6")
    with pytest.raises(ValueError, match="unknown init 'xavier'.*glorot.*he"):
        nn.Dense(3, 2, init="xavier")


@pytest.mark.parametrize("activation", sorted(nn.ACTIVATIONS))
def test_dense_activation_names(activation):
    layer = nn.Dense(3, 4, activation=activation)
    x = np.linspace(-2, 2, 12).reshape(4, 3).astype(np.float32)
    expected = NUMPY_ACTIVATIONS[activation](x @ layer.weight.numpy() + layer.bias.numpy())
    np.testing.assert_allclose(layer(mg.Tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_dense_callable_activations():
    x = mg.Tensor(np.linspace(-2, 2, 6).reshape(2, 3))
    layer = nn.Dense(3, 4, activation=nn.LeakyReLU(0.2))
    y = x.numpy() @ layer.weight.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(layer(x).numpy(), np.where(y > 0, y, 0.2 * y), rtol=1e-6)
    layer = nn.Dense(3, 4, activation=lambda t: t * 2.0)
    np.testing.assert_allclose(layer(x).numpy(), 2 * (x.numpy() @ layer.weight.numpy()), rtol=1e-6)


# --------------------------------------------------------------------------------------------------
# Activation modules
# --------------------------------------------------------------------------------------------------

ACTIVATION_MODULES = [
    (nn.ReLU(), lambda x: np.maximum(x, 0.0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.Sigmoid(), scipy.special.expit),
    (nn.Tanh(), np.tanh),
    (nn.Softplus(), lambda x: np.logaddexp(0.0, x)),
]


@pytest.mark.parametrize("module, reference", ACTIVATION_MODULES,
                         ids=[type(m).__name__ for m, _ in ACTIVATION_MODULES])
@settings(max_examples=10)
@given(data=st.data())
def test_activation_modules(backend, module, reference, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3))
    x = data.draw(arrays(shape, -3, 3, offset=1 / 128))  # never exactly at a kink
    np.testing.assert_allclose(module(mg.Tensor(x)).numpy(), reference(x), rtol=1e-12, atol=1e-15)
    assert mg.gradcheck(module, [leaf(x)])
    assert module.parameters() == []


# --------------------------------------------------------------------------------------------------
# Module bookkeeping
# --------------------------------------------------------------------------------------------------

class Custom(nn.Module):
    def __init__(self):
        super().__init__()
        self.decoder = nn.Dense(2, 3)
        self.scale = nn.Parameter(mg.ones(3))
        self.encoder = nn.Sequential(nn.Dense(3, 4), nn.Tanh(), nn.Dense(4, 2))
        self.offset = nn.Parameter(mg.zeros(2))
        self.note = "not a parameter"

    def forward(self, x):
        return self.encoder(self.decoder(x) * self.scale) + self.offset


def test_names_follow_assignment_order_as_in_pytorch():
    model = Custom()
    # a module's own parameters first (in assignment order), then each sub-module's
    assert [n for n, _ in model.named_parameters()] == [
        "scale", "offset", "decoder.weight", "decoder.bias",
        "encoder.0.weight", "encoder.0.bias", "encoder.2.weight", "encoder.2.bias"]
    assert len(model.parameters()) == 8
    assert list(model.state_dict()) == [n for n, _ in model.named_parameters()]
    assert [name for name, _ in model.named_modules()] == [
        "", "decoder", "encoder", "encoder.0", "encoder.1", "encoder.2"]


def test_sequential_runs_its_layers_in_order():
    model = nn.Sequential(nn.Dense(2, 3), nn.ReLU(), nn.Dense(3, 1))
    assert len(model) == 3 and isinstance(model[1], nn.ReLU) and list(model)[2] is model[2]
    x = mg.randn(5, 2)
    np.testing.assert_allclose(model(x).numpy(), model[2](model[1](model[0](x))).numpy())
    with pytest.raises(TypeError, match="layer 1 is a function"):
        nn.Sequential(nn.Dense(2, 3), mg.relu)


def test_reassigning_and_deleting_attributes_updates_the_registry():
    model = Custom()
    model.scale = None
    del model.offset
    model.extra = nn.Dense(1, 1)
    assert [n for n, _ in model.named_parameters()][:2] == ["decoder.weight", "decoder.bias"]
    assert [n for n, _ in model.named_parameters()][-2:] == ["extra.weight", "extra.bias"]


def test_shared_parameters_are_listed_once():
    a = nn.Dense(2, 2)
    model = nn.Sequential(a, nn.Tanh(), a)
    assert len(model.parameters()) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_forgetting_super_init_is_explained():
    class Broken(nn.Module):
        def __init__(self):
            self.layer = nn.Dense(1, 1)

    with pytest.raises(AttributeError, match="super\\(\\).__init__\\(\\)"):
        Broken()


def test_train_and_eval_reach_every_submodule():
    model = Custom()
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_sets_gradients_to_none():
    model = Custom()
    model(mg.randn(4, 2)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------------------------------
# state_dict, save, load, to
# --------------------------------------------------------------------------------------------------

def _model():
    return nn.Sequential(nn.Dense(3, 4, activation="tanh"), nn.BatchNorm1d(4), nn.Dense(4, 2))


def test_state_dict_is_an_ordered_dict_of_numpy_copies(backend):
    model = _model()
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked", "2.weight", "2.bias"]
    assert all(type(v) is np.ndarray for v in state.values())
    before = state["0.weight"].copy()
    state["0.weight"][...] = 123.0                  # changing the copy leaves the model alone
    np.testing.assert_array_equal(model[0].weight.numpy(), before)
    model[0].weight.data *= 2.0                     # and the other way round
    assert model.state_dict()["0.weight"][0, 0] == 2 * before[0, 0]


def test_save_load_round_trip_is_bit_identical(backend, tmp_path):
    mg.manual_seed(1)
    model = _model()
    model(mg.randn(8, 3))                           # moves the running statistics
    path = tmp_path / "model.npz"
    model.save(path)
    mg.manual_seed(2)
    other = _model()
    assert not np.array_equal(other[0].weight.numpy(), model[0].weight.numpy())
    assert other.load(path) is other
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    x = mg.randn(5, 3)
    model.eval(), other.eval()
    np.testing.assert_array_equal(model(x).numpy(), other(x).numpy())
    with mg.using_backend("numpy"):                 # a checkpoint loads on another backend too
        host = _model().load(path)
    assert host[0].weight.device == "cpu"
    np.testing.assert_array_equal(host[0].weight.numpy(), model[0].weight.numpy())


def test_saving_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "model.npz"
    path.write_text("an old file")
    _model().save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]   # no temporary file is left
    assert _model().load(path)


def test_a_mismatched_checkpoint_is_refused_with_every_difference_listed(tmp_path):
    path = tmp_path / "small.npz"
    nn.Sequential(nn.Dense(2, 3), nn.Dense(3, 1), nn.Dense(1, 1)).save(path)
    model = nn.Sequential(nn.Dense(2, 4), nn.Dense(4, 1), nn.BatchNorm1d(1, affine=False))
    before = model.state_dict()
    with pytest.raises(ValueError) as err:
        model.load(path)
    message = str(err.value)
    assert "missing: 2.running_mean, 2.running_var" in message
    assert "unexpected: 2.weight, 2.bias" in message
    assert "0.weight: checkpoint (2, 3), model (2, 4)" in message
    assert "0.bias: checkpoint (3,), model (4,)" in message
    assert "1.weight: checkpoint (3, 1), model (4, 1)" in message
    for name, value in model.state_dict().items():   # nothing was loaded
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_strict_false_ignores_missing_and_unexpected_names():
    model = nn.Sequential(nn.Dense(2, 2), nn.Dense(2, 1))
    state = {"0.weight": np.ones((2, 2)), "9.weight": np.ones(3)}
    model.load_state_dict(state, strict=False)
    np.testing.assert_array_equal(model[0].weight.numpy(), np.ones((2, 2)))
    with pytest.raises(ValueError, match="mis-shaped"):
        model.load_state_dict({"0.weight": np.ones((3, 3))}, strict=False)


class _WritesAFile:
    """Unpickling this object creates a file: proof that pickled code would have run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_with_a_pickled_object_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _WritesAFile(marker)
    path = tmp_path / "evil.npz"
    np.savez(path, **{"0.weight": payload})
    with pytest.raises(ValueError, match="not a minigen checkpoint"):
        nn.Sequential(nn.Dense(2, 2)).load(path)
    assert not marker.exists()
    assert pickle.dumps(payload[0])   # (the payload itself was a working pickle)


def test_load_state_dict_converts_to_each_parameters_dtype_and_device(backend):
    model = nn.Dense(2, 3, dtype="float32")
    w = np.arange(6, dtype=np.float64).reshape(2, 3)
    model.load_state_dict({"weight": w, "bias": mg.Tensor(np.ones(3)).data})  # NumPy and backend
    assert dtype_of(model.weight) == "float32" and model.weight.device == mg.Tensor(0.0).device
    np.testing.assert_array_equal(model.weight.numpy(), w)
    w[0, 0] = 100.0                                  # the model holds its own copy
    assert model.weight.numpy()[0, 0] == 0.0
    with mg.using_backend("numpy"):
        host = nn.Dense(2, 3)
    host.load_state_dict(model.state_dict())         # NumPy arrays onto a NumPy model
    host.load_state_dict({k: t.data for k, t in [("weight", model.weight), ("bias", model.bias)]})
    assert host.weight.device == "cpu"
    np.testing.assert_array_equal(host.weight.numpy(), model.weight.numpy())


def test_to_moves_parameters_gradients_and_buffers_in_place():
    with mg.using_backend("numpy"):
        model = _model()
        model(mg.randn(4, 3)).sum().backward()
    params = model.parameters()
    values = [p.numpy().copy() for p in params]
    grads = [p.grad.numpy().copy() for p in params]
    assert model.to("strict") is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]   # the same objects
    for p, v, g in zip(params, values, grads):
        assert p.device == "strict" and p.grad.device == "strict"
        np.testing.assert_array_equal(p.numpy(), v)
        np.testing.assert_array_equal(p.grad.numpy(), g)
    assert all(b.device == "strict" for _, b in model.named_buffers())
    with mg.using_backend("strict"):
        assert model(mg.randn(4, 3)).device == "strict"
    model.to("cpu")
    assert all(p.device == "cpu" for p in model.parameters())
    with pytest.raises(ValueError, match="unknown device"):
        model.to("tpu")


# --------------------------------------------------------------------------------------------------
# BatchNorm1d and Dropout
# --------------------------------------------------------------------------------------------------

def _numpy_batchnorm(x, w, b, mean, var, eps):
    return (x - mean) / np.sqrt(var + eps) * w + b


def test_batchnorm_training_and_evaluation_match_the_formula(backend):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, size=(6, 3))
    w, b = rng.normal(size=3), rng.normal(size=3)
    rm, rv = rng.normal(size=3), rng.uniform(0.5, 2.0, size=3)
    bn = nn.BatchNorm1d(3, eps=1e-3, momentum=0.3)
    bn.load_state_dict({"weight": w, "bias": b, "running_mean": rm, "running_var": rv,
                        "num_batches_tracked": np.array(0)})

    y = bn(mg.Tensor(x))                             # training: batch statistics
    expected = _numpy_batchnorm(x, w, b, x.mean(axis=0), x.var(axis=0), 1e-3)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    rm = 0.7 * rm + 0.3 * x.mean(axis=0)
    rv = 0.7 * rv + 0.3 * x.var(axis=0, ddof=1)      # unbiased, as PyTorch
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), rv, rtol=1e-12)

    # evaluation: running statistics, left unchanged
    bn.eval()
    y = bn(mg.Tensor(x))
    np.testing.assert_allclose(y.numpy(), _numpy_batchnorm(x, w, b, rm, rv, 1e-3), rtol=1e-12)
    np.testing.assert_allclose(bn(mg.Tensor(x[:1])).numpy(), y.numpy()[:1], rtol=1e-12)
    np.testing.assert_allclose(bn.running_mean.numpy(), rm, rtol=1e-12)


@settings(max_examples=15)
@given(data=st.data())
def test_batchnorm_gradients(backend, data):
    n, c = data.draw(st.integers(2, 4)), data.draw(st.integers(1, 3))
    x = data.draw(arrays((n, c)).filter(lambda a: np.all(a.std(axis=0) > 0.1)), label="x")
    bn = nn.BatchNorm1d(c)
    bn.load_state_dict({"weight": data.draw(arrays((c,))), "bias": data.draw(arrays((c,))),
                        "running_mean": np.zeros(c), "running_var": np.ones(c),
                        "num_batches_tracked": np.array(0)})
    assert mg.gradcheck(lambda x, w, b: bn(x), [leaf(x), bn.weight, bn.bias])
    bn.eval()
    assert mg.gradcheck(lambda x, w, b: bn(x), [leaf(x), bn.weight, bn.bias])


def test_batchnorm_errors():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError,
                       match=re.escape("expected input of shape (N, 3), got shape (4, 2)")):
        bn(mg.zeros(4, 2))
    with pytest.raises(ValueError, match="more than one example"):
        bn(mg.zeros(1, 3))
    bn.eval()
    assert bn(mg.zeros(1, 3)).shape == (1, 3)
    assert [n for n, _ in nn.BatchNorm1d(2, affine=False).named_parameters()] == []


def test_dropout_in_training_and_evaluation():
    mg.manual_seed(0)
    p, n = 0.3, 100_000
    drop = nn.Dropout(p)
    x = mg.ones(n, dtype="float64", requires_grad=True)
    y = drop(x)
    values = y.numpy()
    zero = values == 0.0
    assert abs(zero.mean() - p) < 4 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_allclose(values[~zero], 1.0 / (1.0 - p), rtol=1e-12)   # inverted dropout
    y.sum().backward()
    # the gradient goes through the same mask
    np.testing.assert_array_equal(x.grad.numpy(), values)
    drop.eval()
    assert drop(x) is x
    assert nn.Dropout(0.0)(x) is x
    np.testing.assert_array_equal(nn.Dropout(1.0)(x).numpy(), np.zeros(n))
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.5)


def test_dropout_draws_follow_the_seed(backend):
    mg.manual_seed(3)
    a = nn.Dropout(0.5)(mg.ones(50)).numpy()
    mg.manual_seed(3)
    b = nn.Dropout(0.5)(mg.ones(50)).numpy()
    np.testing.assert_array_equal(a, b)
    assert 0 < np.count_nonzero(a) < 50


# --------------------------------------------------------------------------------------------------
# Everything in float32, on the strict no-float64 device too
# --------------------------------------------------------------------------------------------------

def _layers32():
    yield nn.Sequential(nn.Dense(3, 4, activation="relu"), nn.Dense(4, 4, activation="leaky_relu"),
                        nn.Dense(4, 4, activation="sigmoid"), nn.Dense(4, 4, activation="tanh"),
                        nn.Dense(4, 2, activation="softplus", init="he"))
    yield nn.Sequential(nn.Dense(3, 4), nn.BatchNorm1d(4), nn.LeakyReLU(0.2), nn.Dropout(0.5),
                        nn.Dense(4, 4, bias=False), nn.ReLU(), nn.Sigmoid(), nn.Tanh(),
                        nn.Softplus())


def test_every_layer_stays_float32(backend32):
    for model in _layers32():
        for mode in ("train", "eval"):
            getattr(model, mode)()
            x = mg.randn(5, 3, requires_grad=True)
            y = model(x)
            assert dtype_of(y) == "float32"
            (y * y).sum().backward()
            assert dtype_of(x.grad) == "float32"
            for name, t in model._named_tensors():
                if name.endswith("num_batches_tracked"):      # a count, int64 as in PyTorch
                    continue
                assert dtype_of(t) == "float32", name
                if t.requires_grad:
                    assert dtype_of(t.grad) == "float32", name
            model.zero_grad()
        model.load_state_dict(model.state_dict())
        assert all(dtype_of(t) == "float32" for name, t in model._named_tensors()
                   if not name.endswith("num_batches_tracked"))

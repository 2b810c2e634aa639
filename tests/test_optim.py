"""minigen.optim: SGD, Adam and AdamW against their update equations written out by hand (PyTorch's
documented algorithms), clip_grad_norm_, in-place updates, state on the parameter's device, exact
resume from a state_dict, and a network that learns two moons."""

import time

import numpy as np
import pytest

import minigen as mg
from minigen import nn, optim

STEPS = 5


def _problem(seed=0):
    """Two parameters and, for each step, a gradient for each (NumPy float64)."""
    rng = np.random.default_rng(seed)
    values = [rng.normal(size=(3, 2)), rng.normal(size=(4,))]
    grads = [[rng.normal(size=v.shape) for v in values] for _ in range(STEPS)]
    return values, grads


def _run(make_optimizer, values, grads):
    """Run the minigen optimizer, giving it each step's gradients; the parameters after each
    step."""
    # (NumPy arrays are not copied)
    params = [mg.Tensor(v.copy(), requires_grad=True) for v in values]
    opt = make_optimizer(params)
    history = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = mg.Tensor(g)
        opt.step()
        history.append([p.numpy().copy() for p in params])
    return history


# --- the update equations, written out by hand ----------------------------------------------------

def sgd_by_hand(p, grads, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    """torch.optim.SGD's documented algorithm, for one parameter."""
    history, b = [], None
    for t, g in enumerate(grads, start=1):
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            if t > 1:
                b = momentum * b + (1 - dampening) * g
            else:
                b = g
            if nesterov:
                g = g + momentum * b
            else:
                g = b
        p = p - lr * g
        history.append(p)
    return history


def adam_by_hand(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    """torch.optim.Adam's (decoupled=False) and torch.optim.AdamW's documented algorithms."""
    beta1, beta2 = betas
    m, v, history = np.zeros_like(p), np.zeros_like(p), []
    for t, g in enumerate(grads, start=1):
        if weight_decay != 0:
            if decoupled:
                p = p - lr * weight_decay * p
            else:
                g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append(p)
    return history


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.02, momentum=0.5, weight_decay=0.3, nesterov=True),
]

ADAM_CASES = [
    (optim.Adam, dict(lr=0.1)),
    (optim.Adam, dict(lr=0.05, betas=(0.5, 0.9), eps=0.1)),   # a large eps shows where it is added
    (optim.Adam, dict(lr=0.1, weight_decay=0.2)),
    (optim.AdamW, dict(lr=0.1)),                                 # AdamW's default decay, 1e-2
    (optim.AdamW, dict(lr=0.05, betas=(0.8, 0.95), eps=1e-3, weight_decay=0.5)),
]


def _compare(history, by_hand, rtol):
    for step, params in enumerate(history):
        for i, value in enumerate(params):
            np.testing.assert_allclose(value, by_hand[i][step], rtol=rtol, atol=1e-14,
                                       err_msg=f"parameter {i}, step {step + 1}")


@pytest.mark.parametrize("kwargs", SGD_CASES, ids=str)
def test_sgd_matches_its_update_equations(backend, kwargs):
    values, grads = _problem()
    history = _run(lambda ps: optim.SGD(ps, **kwargs), values, grads)
    by_hand = [sgd_by_hand(v, [g[i] for g in grads], **kwargs) for i, v in enumerate(values)]
    _compare(history, by_hand, rtol=1e-12)


@pytest.mark.parametrize("cls, kwargs", ADAM_CASES, ids=lambda c: getattr(c, "__name__", str(c)))
def test_adam_and_adamw_match_their_update_equations(backend, cls, kwargs):
    values, grads = _problem(1)
    history = _run(lambda ps: cls(ps, **kwargs), values, grads)
    full = dict(kwargs, decoupled=cls is optim.AdamW)
    if cls is optim.AdamW:
        full.setdefault("weight_decay", 1e-2)
    by_hand = [adam_by_hand(v, [g[i] for g in grads], **full) for i, v in enumerate(values)]
    _compare(history, by_hand, rtol=1e-10)


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
                                  lambda ps: optim.AdamW(ps, lr=0.1)], ids=["SGD", "Adam", "AdamW"])
def test_updates_are_in_place_and_gradients_are_only_read(backend, make):
    params = [mg.Tensor(np.ones((2, 3)), requires_grad=True)]
    opt = make(params)
    grad = mg.Tensor(np.full((2, 3), 0.5))
    for _ in range(2):
        data = params[0].data
        params[0].grad = grad
        opt.step()
        assert params[0].data is data                # the same array, updated in place
        assert params[0].grad is grad
        np.testing.assert_array_equal(grad.numpy(), 0.5)   # the gradient array was not changed
    assert not np.array_equal(params[0].numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
                                  lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1)],
                                  ids=["SGD", "Adam"])
def test_a_scalar_parameter_is_updated_like_any_other(backend, make):
    # (NumPy turns 0-d results into scalars, which cannot be updated in place: the state must stay
    # arrays)
    values, grads = [np.array(1.5)], [[np.array(g)] for g in (0.3, -0.2, 0.4)]
    history = _run(make, values, grads)
    reference = _run(make, [np.array([1.5])], [[g[0].reshape(1)] for g in grads])
    _compare(history, [[r[0][0] for r in reference]], rtol=1e-15)


def test_parameters_without_a_gradient_are_skipped(backend):
    values, grads = _problem(2)
    a, b = (mg.Tensor(v.copy(), requires_grad=True) for v in values)
    opt = optim.Adam([a, b], lr=0.1)
    for g in grads[:3]:                              # only a has gradients for three steps
        a.grad = mg.Tensor(g[0])
        opt.step()
    np.testing.assert_array_equal(b.numpy(), values[1])
    assert opt.state[1] == {} and opt.state[0]["step"] == 3
    # b's first step is its step 1 (bias correction)
    b.grad = mg.Tensor(grads[3][1])
    a.grad = None
    opt.step()
    np.testing.assert_allclose(b.numpy(), adam_by_hand(values[1], [grads[3][1]], lr=0.1)[0],
                               rtol=1e-12)


def test_adam_updates_small_and_large_parameters_at_different_steps(backend):
    # NumPy updates the small parameters of one step count together and the large ones (over
    # 16384 elements) one by one, their moments back to back in one array: the rule stays
    # PyTorch's, also when some parameters skip a step and their counts part
    rng = np.random.default_rng(4)
    values = [rng.normal(size=s) for s in [(2, 3), (130, 130), (), (7,)]]
    grads = [[rng.normal(size=v.shape) for v in values] for _ in range(4)]
    params = [mg.Tensor(v.copy(), requires_grad=True) for v in values]
    opt = optim.AdamW(params, lr=0.1, weight_decay=0.1)
    given = [[0, 1, 2, 3], [0, 1], [0, 1, 2, 3], [1, 2, 3]]        # who has a gradient, per step
    for step, indices in enumerate(given):
        for i, p in enumerate(params):
            p.grad = mg.Tensor(grads[step][i]) if i in indices else None
        opt.step()
    for i, p in enumerate(params):
        mine = [grads[step][i] for step, indices in enumerate(given) if i in indices]
        expected = adam_by_hand(values[i], mine, lr=0.1, weight_decay=0.1, decoupled=True)[-1]
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-10, atol=1e-14, err_msg=str(i))
        assert opt.state[i]["step"] == len(mine)


def test_adam_resumes_into_an_optimizer_that_has_already_stepped():
    # loading a state_dict replaces the moment arrays that the NumPy update had laid out back to
    # back: the next step must use the loaded values
    rng = np.random.default_rng(5)
    values = [rng.normal(size=s) for s in [(3, 2), (200, 100)]]
    grads = [[rng.normal(size=v.shape) for v in values] for _ in range(4)]

    def run(steps, params, opt):
        for g in steps:
            for p, gi in zip(params, g):
                p.grad = mg.Tensor(gi)
            opt.step()

    a = [mg.Tensor(v.copy(), requires_grad=True) for v in values]
    opt_a = optim.Adam(a, lr=0.1)
    run(grads[:2], a, opt_a)
    saved, at_save = opt_a.state_dict(), [p.numpy().copy() for p in a]
    run(grads[2:], a, opt_a)
    b = [mg.Tensor(v.copy(), requires_grad=True) for v in values]
    opt_b = optim.Adam(b, lr=0.1)
    run(grads[:1], b, opt_b)                          # stepped: its own moments laid out
    for p, value in zip(b, at_save):
        p.data[...] = value
    opt_b.load_state_dict(saved)
    run(grads[2:], b, opt_b)
    for p, q in zip(a, b):
        np.testing.assert_allclose(q.numpy(), p.numpy(), rtol=1e-12)


def test_zero_grad_sets_gradients_to_none():
    p = mg.Tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    opt.zero_grad()
    assert p.grad is None


def test_state_lives_on_the_parameters_device_in_its_dtype(backend32):
    model = nn.Sequential(nn.Dense(3, 4, activation="tanh"), nn.BatchNorm1d(4), nn.Dense(4, 1))
    x = mg.randn(8, 3)
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                          weight_decay=0.1),
                optim.Adam(model.parameters(), weight_decay=0.1), optim.AdamW(model.parameters())):
        for _ in range(2):
            opt.zero_grad()
            (model(x) ** 2).mean().backward()
            optim.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
        for p, state in zip(opt.params, opt.state):
            assert mg.backend.dtype_name(p.dtype) == "float32"
            for name, value in state.items():
                if name != "step":
                    assert mg.backend.dtype_name(value.dtype) == "float32", name
                    assert type(value) is type(p.data) and value.device == p.data.device


def test_state_follows_the_model_to_another_device():
    with mg.using_backend("numpy"):
        model = nn.Dense(2, 1)
        opt = optim.Adam(model.parameters(), lr=0.1)
        model(mg.randn(4, 2)).sum().backward()
        opt.step()
    model.to("strict")
    with mg.using_backend("strict"):
        model(mg.randn(4, 2)).sum().backward()
    opt.step()
    assert all(p.device == "strict" for p in model.parameters())
    assert all(mg.Tensor(v).device == "strict" for s in opt.state for k, v in s.items()
               if k != "step")


# --------------------------------------------------------------------------------------------------
# Resuming from a checkpoint
# --------------------------------------------------------------------------------------------------

def _train(model, opt, x, y, steps):
    for _ in range(steps):
        opt.zero_grad()
        mg.losses.bce_with_logits(model(x), y).backward()
        opt.step()


@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                                  lambda ps: optim.Adam(ps, lr=0.05, weight_decay=0.01),
                                  lambda ps: optim.AdamW(ps, lr=0.05)],
                                  ids=["SGD", "Adam", "AdamW"])
def test_a_run_resumes_exactly_from_state_dicts(backend, make, tmp_path):
    mg.manual_seed(0)
    x, y = mg.randn(16, 2), mg.rand(16, 1)

    def new_model():
        return nn.Sequential(nn.Dense(2, 8, activation="tanh"), nn.Dense(8, 1))

    model = new_model()
    opt = make(model.parameters())
    _train(model, opt, x, y, 3)
    model.save(tmp_path / "model.npz")
    mg.backend.save_arrays(tmp_path / "optim.npz", opt.state_dict())
    _train(model, opt, x, y, 3)

    resumed = new_model().load(tmp_path / "model.npz")
    opt2 = make(resumed.parameters())
    opt2.load_state_dict(mg.backend.load_arrays(tmp_path / "optim.npz"))
    _train(resumed, opt2, x, y, 3)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_optimizer_state_dict_contents_and_errors():
    p = mg.Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = mg.Tensor(np.ones(3))
    opt.step()
    state = opt.state_dict()
    assert list(state) == ["lr", "momentum", "dampening", "weight_decay", "nesterov", "0.step",
                           "0.momentum_buffer"]
    assert all(type(v) is np.ndarray for v in state.values())
    assert state["0.step"] == 1 and state["lr"] == 0.1
    other = optim.SGD([mg.Tensor(np.zeros(3), requires_grad=True)], lr=0.5, momentum=0.1)
    other.load_state_dict(state)
    assert other.lr == 0.1 and other.momentum == 0.9 and other.state[0]["step"] == 1
    state["0.momentum_buffer"][...] = 7.0            # the optimizer holds its own copy
    assert other.state[0]["momentum_buffer"][0] == 1.0
    bad = dict(state, **{"0.momentum_buffer": np.ones(4), "3.momentum_buffer": np.ones(3),
                         "0.exp_avg": np.ones(3)})
    del bad["lr"]
    with pytest.raises(ValueError) as err:
        other.load_state_dict(bad)
    message = str(err.value)
    assert "missing: lr" in message and "unexpected: 3.momentum_buffer, 0.exp_avg" in message
    assert "0.momentum_buffer: checkpoint (4,), parameter (3,)" in message


def test_invalid_arguments_are_refused():
    p = mg.Tensor([1.0], requires_grad=True)
    for make, match in [(lambda: optim.SGD([p], lr=-1.0), "lr must be >= 0"),
                        (lambda: optim.SGD([p], lr=0.1, nesterov=True), "Nesterov"),
                        (lambda: optim.Adam([p], betas=(0.9, 1.0)), "betas"),
                        (lambda: optim.Adam([], lr=0.1), "empty"),
                        (lambda: optim.AdamW([p, p]), "appears twice")]:
        with pytest.raises(ValueError, match=match):
            make()
    frozen = mg.Tensor([1.0])                  # accepted, as in PyTorch: it never gets a gradient
    optim.SGD([frozen], lr=0.1).step()
    assert frozen.tolist() == [1.0]


# --------------------------------------------------------------------------------------------------
# clip_grad_norm_
# --------------------------------------------------------------------------------------------------

def test_clip_grad_norm(backend):
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 2)), rng.normal(size=(4,))]
    params = [mg.Tensor(np.zeros(g.shape), requires_grad=True) for g in grads]
    idle = mg.Tensor(np.zeros(2), requires_grad=True)          # no gradient: ignored
    total = np.sqrt(sum((g ** 2).sum() for g in grads))

    old = []
    for p, g in zip(params, grads):
        p.grad = mg.Tensor(g)
        old.append(p.grad)
    norm = optim.clip_grad_norm_(params + [idle], max_norm=total / 2)
    assert norm.item() == pytest.approx(total, rel=1e-12)
    scale = (total / 2) / (total + 1e-6)
    for p, g, o in zip(params, grads, old):
        np.testing.assert_allclose(p.grad.numpy(), g * scale, rtol=1e-12)
        # the old gradient arrays are unchanged
        np.testing.assert_array_equal(o.numpy(), g)
    assert idle.grad is None
    clipped = np.sqrt(sum((p.grad.numpy() ** 2).sum() for p in params))
    assert clipped == pytest.approx(total / 2, rel=1e-6)

    norm = optim.clip_grad_norm_(params, max_norm=10 * total)   # under the limit: unchanged
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad.numpy(), g * scale, rtol=1e-15)


# --------------------------------------------------------------------------------------------------
# Learning something: two moons
# --------------------------------------------------------------------------------------------------

def two_moons(n, noise, rng):
    """Two interleaving half circles (as sklearn.datasets.make_moons), labels 0 and 1."""
    t = rng.uniform(0.0, np.pi, size=n)
    upper = np.stack([np.cos(t[: n // 2]), np.sin(t[: n // 2])], axis=1)
    lower = np.stack([1.0 - np.cos(t[n // 2:]), 0.5 - np.sin(t[n // 2:])], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(scale=noise, size=(n, 2))
    y = np.concatenate([np.zeros(n // 2), np.ones(n - n // 2)])
    return x.astype(np.float32), y.astype(np.float32)[:, None]


def test_a_dense_network_learns_two_moons():
    start = time.perf_counter()
    with mg.using_backend("numpy"):
        mg.manual_seed(0)
        x, y = two_moons(400, 0.1, np.random.default_rng(0))
        model = nn.Sequential(nn.Dense(2, 32, activation="relu"),
                              nn.Dense(32, 32, activation="relu"),
                              nn.Dense(32, 1))
        opt = optim.Adam(model.parameters(), lr=0.01)
        xt, yt = mg.Tensor(x), mg.Tensor(y)
        for _ in range(400):
            opt.zero_grad()
            loss = mg.losses.bce_with_logits(model(xt), yt)
            loss.backward()
            opt.step()
        accuracy = np.mean((model(xt).numpy() > 0) == (y > 0.5))
    assert accuracy >= 0.99, f"training accuracy {accuracy:.3f}, loss {loss.item():.4f}"
    assert time.perf_counter() - start < 30.0

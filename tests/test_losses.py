"""minigen.losses: values against SciPy/NumPy references, gradients against central differences,
stability at extreme logits, the closed-form Gaussian KL against Monte Carlo and numerical
integration, reductions and error messages."""

import re

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen import losses
from op_specs import grid


def arrays(shape, low, high, offset=0.0):
    return hnp.arrays(np.float64, shape, elements=grid(low, high, offset=offset))


def leaf(array):
    return mg.Tensor(array, requires_grad=True)


def reduce(terms, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a,
            "batchmean": lambda a: np.sum(a) / len(a)}[reduction](terms)


def ref_bce_with_logits(x, t):
    # -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], with SciPy's stable log_expit
    return -(t * scipy.special.log_expit(x) + (1 - t) * scipy.special.log_expit(-x))


def ref_bce(p, t):
    return -(t * np.log(p) + (1 - t) * np.log1p(-p))


def ref_gaussian_nll(mean, target, log_var):
    return -scipy.stats.norm.logpdf(target, loc=mean, scale=np.exp(0.5 * log_var))


def ref_gaussian_kl(mu, log_var):
    return 0.5 * (mu ** 2 + np.exp(log_var) - 1 - log_var)


# name: (minigen loss, reference of the terms, (low, high) of each input)
LOSSES = {
    "bce_with_logits": (losses.bce_with_logits, ref_bce_with_logits, [(-6, 6), (0, 1)]),
    "bce": (losses.bce, ref_bce, [(0.05, 0.95), (0, 1)]),
    "mse": (losses.mse, lambda p, t: (p - t) ** 2, [(-3, 3), (-3, 3)]),
    "gaussian_kl": (losses.gaussian_kl, ref_gaussian_kl, [(-3, 3), (-3, 3)]),
    "gaussian_nll": (lambda m, t, lv, reduction: losses.gaussian_nll(m, t, lv, reduction),
                     ref_gaussian_nll, [(-3, 3), (-3, 3), (-2, 2)]),
}


@pytest.mark.parametrize("name", list(LOSSES))
@given(data=st.data())
def test_loss_values_and_gradients(backend, name, data):
    loss, reference, ranges = LOSSES[name]
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
                      label="shape")
    reduction = data.draw(st.sampled_from(losses.REDUCTIONS), label="reduction")
    if reduction == "batchmean" and shape == ():
        shape = (1,)                                   # (0-d: no batch axis, an error below)
    inputs = [data.draw(arrays(shape, low, high), label=f"input {i}")
              for i, (low, high) in enumerate(ranges)]

    out = loss(*[mg.Tensor(a) for a in inputs], reduction=reduction)
    expected = reduce(reference(*inputs), reduction)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)
    # every input, the target included, gets its gradient checked
    assert mg.gradcheck(lambda *xs: loss(*xs, reduction=reduction), [leaf(a) for a in inputs])


@pytest.mark.parametrize("name", ["bce_with_logits", "gaussian_kl"])
@settings(max_examples=8)
@given(data=st.data())
def test_fused_losses_second_order(backend, name, data):
    loss, _, ranges = LOSSES[name]
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=3))
    inputs = [leaf(data.draw(arrays(shape, low, high))) for low, high in ranges]
    assert mg.gradgradcheck(lambda *xs: loss(*xs, reduction="none"), inputs)


def test_fused_losses_are_one_op(backend):
    x, t = mg.randn(2, 3, requires_grad=True), mg.rand(2, 3)
    assert isinstance(losses.bce_with_logits(x, t, reduction="none").creator, losses.BCEWithLogits)
    assert isinstance(losses.gaussian_kl(x, t, reduction="none").creator, losses.GaussianKL)


def test_bce_with_logits_is_stable_at_extreme_logits(backend):
    x = np.array([-1e3, -200.0, -30.0, -1.0, 0.0, 1.0, 30.0, 200.0, 1e3])
    for t in (np.zeros_like(x), np.ones_like(x), np.full_like(x, 0.3)):
        logits = leaf(x)
        out = losses.bce_with_logits(logits, mg.Tensor(t), reduction="none")
        expected = ref_bce_with_logits(x, t)
        assert np.all(np.isfinite(out.numpy()))
        finite = np.isfinite(expected)
        np.testing.assert_allclose(out.numpy()[finite], expected[finite], rtol=1e-12, atol=1e-300)
        out.sum().backward()
        assert np.all(np.isfinite(logits.grad.numpy()))
        np.testing.assert_allclose(logits.grad.numpy(), scipy.special.expit(x) - t, rtol=1e-12,
                                   atol=1e-300)


def test_bce_with_logits_is_stable_in_float32(backend32):
    x = mg.Tensor(np.array([-1e3, -50.0, 0.0, 50.0, 1e3], dtype=np.float32), requires_grad=True)
    out = losses.bce_with_logits(x, mg.Tensor(np.array([1, 0, 1, 0, 1], dtype=np.float32)), "sum")
    out.backward()
    assert np.isfinite(out.item()) and np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(out.item(), 1e3 + 0 + np.log(2) + 50 + 0, rtol=1e-6)


def test_bce_clamps_probabilities(backend):
    p = leaf(np.array([0.0, 1.0, 0.0, 1.0, 0.5]))
    t = mg.Tensor(np.array([1.0, 0.0, 0.0, 1.0, 1.0]))
    out = losses.bce(p, t, reduction="none")
    eps = 1e-7
    np.testing.assert_allclose(out.numpy(), [-np.log(eps), -np.log(eps), -np.log1p(-eps),
                                              -np.log1p(-eps), np.log(2)], rtol=1e-9)
    out.sum().backward()
    np.testing.assert_array_equal(p.grad.numpy()[:4], 0.0)   # the clamp cuts the gradient
    assert p.grad.numpy()[4] == pytest.approx(-2.0)


def test_a_number_as_target_means_that_number_everywhere(backend):
    x = mg.randn(3, 2)
    for loss in (losses.bce_with_logits, losses.mse):
        np.testing.assert_allclose(loss(x, 1.0).numpy(), loss(x, mg.ones_like(x)).numpy())


def test_gaussian_nll_with_a_number_or_a_broadcast_log_var(backend):
    rng = np.random.default_rng(0)
    mean, target = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    out = losses.gaussian_nll(mg.Tensor(mean), mg.Tensor(target), reduction="sum")
    np.testing.assert_allclose(out.item(), -scipy.stats.norm.logpdf(target, mean).sum(), rtol=1e-12)
    log_var = np.array([0.5, -1.0, 0.0])            # one per feature
    out = losses.gaussian_nll(mg.Tensor(mean), mg.Tensor(target), mg.Tensor(log_var), "none")
    np.testing.assert_allclose(out.numpy(), ref_gaussian_nll(mean, target, log_var), rtol=1e-12)
    with pytest.raises(ValueError, match=re.escape("log_var has shape (2,)")):
        losses.gaussian_nll(mg.Tensor(mean), mg.Tensor(target), mg.zeros(2))


# --------------------------------------------------------------------------------------------------
# The closed-form KL against independent estimates
# --------------------------------------------------------------------------------------------------

def test_gaussian_kl_agrees_with_monte_carlo():
    mu, log_var = np.array([0.0, 0.3, -1.2, 2.0]), np.array([0.0, -0.5, 0.7, -2.0])
    sigma = np.exp(0.5 * log_var)
    n = 200_000
    z = np.random.default_rng(0).normal(mu, sigma, size=(n, mu.size))
    # KL(q || p) = E_q[log q(z) - log p(z)]
    samples = scipy.stats.norm.logpdf(z, mu, sigma) - scipy.stats.norm.logpdf(z)
    estimate, standard_error = samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(n)
    kl = losses.gaussian_kl(mg.Tensor(mu), mg.Tensor(log_var), reduction="none").numpy()
    assert np.all(np.abs(kl - estimate) <= 4 * standard_error + 1e-12), (kl, estimate,
                                                                         standard_error)


@pytest.mark.parametrize("mu, log_var", [(0.0, 0.0), (0.7, -1.0), (-2.0, 1.5), (0.1, -4.0)])
def test_gaussian_kl_agrees_with_numerical_integration(mu, log_var):
    sigma = np.exp(0.5 * log_var)
    q = scipy.stats.norm(mu, sigma)

    def integrand(z):
        return q.pdf(z) * (q.logpdf(z) - scipy.stats.norm.logpdf(z))

    expected, _ = scipy.integrate.quad(integrand, mu - 30 * sigma, mu + 30 * sigma, limit=200)
    kl = losses.gaussian_kl(mg.Tensor(mu, dtype="float64"), mg.Tensor(log_var, dtype="float64"))
    assert kl.item() == pytest.approx(expected, rel=1e-7, abs=1e-10)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

TWO_INPUT_LOSSES = [losses.bce, losses.bce_with_logits, losses.mse, losses.gaussian_kl,
                    losses.gaussian_nll]


@pytest.mark.parametrize("loss", TWO_INPUT_LOSSES, ids=lambda f: f.__name__)
def test_unknown_reduction_is_refused(loss):
    x = mg.rand(2, 3)
    with pytest.raises(ValueError, match=f"{loss.__name__}: reduction must be 'mean', 'sum', "
                                         "'batchmean' or 'none', not 'avg'"):
        loss(x, x, reduction="avg")


@pytest.mark.parametrize("loss", TWO_INPUT_LOSSES, ids=lambda f: f.__name__)
def test_shape_mismatch_names_the_loss_and_both_shapes(loss):
    with pytest.raises(ValueError, match=rf"{loss.__name__}: .*\(2, 3\).*\(3, 2\)"):
        loss(mg.rand(2, 3), mg.rand(3, 2))


def test_dtype_mismatch_is_refused():
    with pytest.raises(TypeError, match="float32 but target is float64"):
        losses.mse(mg.rand(2, dtype="float32"), mg.rand(2, dtype="float64"))
    # a NumPy target is converted to the prediction's dtype instead
    out = losses.mse(mg.rand(2, dtype="float32"), np.zeros(2, dtype=np.float64))
    assert mg.backend.dtype_name(out.dtype) == "float32"


# --------------------------------------------------------------------------------------------------
# float32 all the way, on the strict no-float64 device too
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("reduction", losses.REDUCTIONS)
def test_losses_stay_float32(backend32, name, reduction):
    loss, _, ranges = LOSSES[name]
    inputs = [mg.Tensor(np.linspace(low + 0.1, high - 0.1, 6).reshape(2, 3).astype(np.float32),
                        requires_grad=True) for low, high in ranges]
    out = loss(*inputs, reduction=reduction)
    assert mg.backend.dtype_name(out.dtype) == "float32"
    (out * out).sum().backward()
    assert all(mg.backend.dtype_name(x.grad.dtype) == "float32" for x in inputs)


@pytest.mark.parametrize("loss", TWO_INPUT_LOSSES, ids=lambda f: f.__name__)
def test_batchmean_needs_a_batch_axis_and_divides_by_its_length(backend, loss):
    with pytest.raises(ValueError, match=f"{loss.__name__}: reduction='batchmean' divides by the "
                                         "batch size .* 0-d"):
        loss(mg.Tensor(0.5), mg.Tensor(0.25), reduction="batchmean")
    pred, target = mg.rand(4, 3) * 0.8 + 0.1, mg.rand(4, 3)
    summed = loss(pred, target, reduction="sum").numpy()
    np.testing.assert_allclose(loss(pred, target, reduction="batchmean").numpy(), summed / 4,
                               rtol=1e-6)
    empty = loss(mg.zeros(0, 3), mg.zeros(0, 3), reduction="batchmean")
    assert empty.shape == () and np.isnan(empty.item())

"""minigen.distributions: Normal and Bernoulli against SciPy, the reparameterization trick
(statistics and derivatives), and the closed-form KL against Monte Carlo and numerical
integration."""

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen import losses
from minigen.distributions import Bernoulli, Normal, kl_divergence
from op_specs import grid


def arrays(shape, low, high):
    return hnp.arrays(np.float64, shape, elements=grid(low, high))


def leaf(array):
    return mg.Tensor(array, requires_grad=True)


def shapes(n):
    return hnp.mutually_broadcastable_shapes(num_shapes=n, min_dims=0, max_dims=2, min_side=1,
                                             max_side=3).map(lambda s: s.input_shapes)


# --------------------------------------------------------------------------------------------------
# Normal
# --------------------------------------------------------------------------------------------------

@given(data=st.data())
def test_normal_log_prob_and_entropy(backend, data):
    s_loc, s_scale, s_x = data.draw(shapes(3), label="shapes")
    loc, scale = data.draw(arrays(s_loc, -2, 2)), data.draw(arrays(s_scale, 0.5, 2))
    x = data.draw(arrays(s_x, -3, 3))
    dist = Normal(mg.Tensor(loc), mg.Tensor(scale))
    np.testing.assert_allclose(dist.log_prob(mg.Tensor(x)).numpy(),
                               scipy.stats.norm.logpdf(x, loc, scale), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dist.entropy().numpy(),
                               scipy.stats.norm.entropy(loc, scale), rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(lambda x, m, s: Normal(m, s).log_prob(x), [leaf(x), leaf(loc), leaf(scale)])
    assert mg.gradcheck(lambda m, s: Normal(m, s).entropy(), [leaf(loc), leaf(scale)])


def test_normal_properties_and_python_numbers(backend):
    dist = Normal(0.5, 2.0)
    assert dist.mean.item() == 0.5 and dist.stddev.item() == 2.0 and dist.variance.item() == 4.0
    assert dist.log_prob(1.0).item() == pytest.approx(scipy.stats.norm.logpdf(1.0, 0.5, 2.0))
    loc = mg.Tensor([0.0, 1.0, 2.0], requires_grad=True)
    dist = Normal(loc, 1.5)                          # a number broadcasts against a tensor
    assert dist.batch_shape == (3,) and dist.rsample((4,)).shape == (4, 3)
    np.testing.assert_allclose(dist.stddev.numpy(), [1.5] * 3)


def test_from_log_var_uses_half_the_log_variance(backend):
    log_var = np.array([-2.0, 0.0, 1.0])
    dist = Normal.from_log_var(mg.Tensor(np.zeros(3)), mg.Tensor(log_var))
    np.testing.assert_allclose(dist.stddev.numpy(), np.exp(0.5 * log_var), rtol=1e-12)
    np.testing.assert_allclose(dist.variance.numpy(), np.exp(log_var), rtol=1e-12)


def test_rsample_has_the_right_mean_and_standard_deviation():
    mg.manual_seed(0)
    loc, scale, n = np.array([0.5, -2.0, 3.0]), np.array([1.5, 0.2, 4.0]), 100_000
    z = Normal(mg.Tensor(loc, dtype="float64"), mg.Tensor(scale, dtype="float64")).rsample((n,))
    z = z.numpy()
    assert z.shape == (n, 3)
    assert np.all(np.abs(z.mean(axis=0) - loc) < 4 * scale / np.sqrt(n))
    assert np.all(np.abs(z.std(axis=0) - scale) < 4 * scale / np.sqrt(2 * n))
    # and the founding document's bug would be caught: from_log_var's draws have variance
    # exp(log_var)
    log_var = np.array([-1.0, 1.0])
    z = Normal.from_log_var(mg.Tensor(np.zeros(2), dtype="float64"),
                            mg.Tensor(log_var, dtype="float64")).rsample((n,)).numpy()
    assert np.all(np.abs(z.std(axis=0) - np.exp(0.5 * log_var)) < 4 * np.exp(0.5 * log_var)
                  / np.sqrt(2 * n))


def test_reparameterize_statistics():
    mg.manual_seed(1)
    n = 100_000
    mu, log_var = np.full(n, 1.0), np.full(n, np.log(0.25))       # sigma = 0.5
    z = mg.reparameterize(mg.Tensor(mu, dtype="float64"),
                          mg.Tensor(log_var, dtype="float64")).numpy()
    assert abs(z.mean() - 1.0) < 4 * 0.5 / np.sqrt(n)
    assert abs(z.std() - 0.5) < 4 * 0.5 / np.sqrt(2 * n)


def test_rsample_derivatives(backend):
    mu, log_var = leaf(np.array([0.5, -1.0, 2.0, 0.0])), leaf(np.array([0.3, -2.0, 1.0, 0.0]))
    for draw in (lambda: mg.reparameterize(mu, log_var),
                 lambda: Normal.from_log_var(mu, log_var).rsample()):
        z = draw()
        sigma = np.exp(0.5 * log_var.numpy())
        eps = (z.numpy() - mu.numpy()) / sigma
        dz_dmu, dz_dlog_var = mg.grad(z, [mu, log_var], grad_outputs=mg.ones_like(z))
        np.testing.assert_allclose(dz_dmu.numpy(), 1.0)
        np.testing.assert_allclose(dz_dlog_var.numpy(), 0.5 * eps * sigma, rtol=1e-12, atol=1e-15)
    scale = leaf(np.array([0.5, 2.0]))
    z = Normal(0.0, scale).rsample()
    (dz_dscale,) = mg.grad(z, [scale], grad_outputs=mg.ones_like(z))
    np.testing.assert_allclose(dz_dscale.numpy(), z.numpy() / scale.numpy(), rtol=1e-12)  # = eps


@settings(max_examples=15)
@given(data=st.data())
def test_reparameterize_gradients(backend, data):
    s_mu, s_lv = data.draw(shapes(2))
    mu, log_var = leaf(data.draw(arrays(s_mu, -2, 2))), leaf(data.draw(arrays(s_lv, -2, 2)))

    def draw(mu, log_var):
        mg.manual_seed(7)                            # the same eps on every call
        return mg.reparameterize(mu, log_var)

    assert mg.gradcheck(draw, [mu, log_var])


def test_sample_records_no_graph(backend):
    loc = mg.Tensor([0.0, 1.0], requires_grad=True)
    s = Normal(loc, 1.0).sample((3,))
    assert s.shape == (3, 2) and not s.requires_grad and s.creator is None
    b = Bernoulli(logits=loc).sample()
    assert not b.requires_grad and b.creator is None


def test_draws_follow_the_seed(backend):
    mg.manual_seed(11)
    a = Normal(0.0, 1.0).sample((5,)).numpy()
    mg.manual_seed(11)
    np.testing.assert_array_equal(a, Normal(0.0, 1.0).sample((5,)).numpy())


# --------------------------------------------------------------------------------------------------
# KL divergence between two Normals
# --------------------------------------------------------------------------------------------------

P = (np.array([0.0, 0.5, -1.0, 2.0]), np.array([1.0, 0.4, 2.0, 0.7]))
Q = (np.array([0.0, -0.3, 1.0, 2.5]), np.array([1.0, 1.2, 0.8, 0.5]))


def _kl(p, q):
    return kl_divergence(Normal(*(mg.Tensor(a, dtype="float64") for a in p)),
                         Normal(*(mg.Tensor(a, dtype="float64") for a in q))).numpy()


def test_kl_divergence_agrees_with_monte_carlo():
    n = 200_000
    z = np.random.default_rng(0).normal(P[0], P[1], size=(n, P[0].size))
    samples = scipy.stats.norm.logpdf(z, *P) - scipy.stats.norm.logpdf(z, *Q)
    estimate, standard_error = samples.mean(axis=0), samples.std(axis=0, ddof=1) / np.sqrt(n)
    kl = _kl(P, Q)
    assert np.all(np.abs(kl - estimate) <= 4 * standard_error + 1e-12), (kl, estimate)
    assert kl[0] == 0.0                                # identical distributions


@pytest.mark.parametrize("i", range(4))
def test_kl_divergence_agrees_with_numerical_integration(i):
    p, q = scipy.stats.norm(P[0][i], P[1][i]), scipy.stats.norm(Q[0][i], Q[1][i])
    expected, _ = scipy.integrate.quad(lambda z: p.pdf(z) * (p.logpdf(z) - q.logpdf(z)),
                                       P[0][i] - 30 * P[1][i], P[0][i] + 30 * P[1][i], limit=200)
    assert _kl(P, Q)[i] == pytest.approx(expected, rel=1e-7, abs=1e-10)


def test_kl_to_the_standard_normal_is_gaussian_kl(backend):
    mu, log_var = mg.Tensor([0.3, -1.0, 2.0]), mg.Tensor([0.5, -1.5, 0.0])
    kl = kl_divergence(Normal.from_log_var(mu, log_var), Normal(0.0, 1.0))
    np.testing.assert_allclose(kl.numpy(), losses.gaussian_kl(mu, log_var, "none").numpy(),
                               rtol=1e-12, atol=1e-15)


@given(data=st.data())
def test_kl_divergence_gradients(backend, data):
    shape_list = data.draw(shapes(4))
    tensors = [leaf(data.draw(arrays(s, *bounds)))
               for s, bounds in zip(shape_list, [(-2, 2), (0.5, 2), (-2, 2), (0.5, 2)])]
    assert mg.gradcheck(lambda m1, s1, m2, s2: kl_divergence(Normal(m1, s1), Normal(m2, s2)),
                        tensors)


def test_kl_divergence_of_other_distributions_is_not_implemented():
    with pytest.raises(NotImplementedError, match="Normal || Normal"):
        kl_divergence(Normal(0.0, 1.0), Bernoulli(logits=0.0))


# --------------------------------------------------------------------------------------------------
# Bernoulli
# --------------------------------------------------------------------------------------------------

@given(data=st.data())
def test_bernoulli_log_prob_and_entropy(backend, data):
    s_logits, s_x = data.draw(shapes(2))
    logits = data.draw(arrays(s_logits, -5, 5))
    x = data.draw(hnp.arrays(np.float64, s_x, elements=st.sampled_from([0.0, 1.0])))
    dist = Bernoulli(logits=mg.Tensor(logits))
    p = scipy.special.expit(logits)
    np.testing.assert_allclose(dist.probs.numpy(), p, rtol=1e-12)
    np.testing.assert_allclose(dist.log_prob(mg.Tensor(x)).numpy(),
                               scipy.stats.bernoulli.logpmf(x, p),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dist.entropy().numpy(), scipy.stats.bernoulli.entropy(p), rtol=1e-10,
                               atol=1e-12)
    assert mg.gradcheck(lambda l: Bernoulli(logits=l).log_prob(mg.Tensor(x)), [leaf(logits)])
    assert mg.gradcheck(lambda l: Bernoulli(logits=l).entropy(), [leaf(logits)])


def test_bernoulli_from_probs_and_argument_checks(backend):
    p = np.array([0.1, 0.5, 0.9])
    dist = Bernoulli(probs=mg.Tensor(p))
    np.testing.assert_allclose(dist.probs.numpy(), p, rtol=1e-9)
    np.testing.assert_allclose(dist.mean.numpy(), p, rtol=1e-9)
    np.testing.assert_allclose(dist.variance.numpy(), p * (1 - p), rtol=1e-9)
    for kwargs in ({}, {"logits": 0.0, "probs": 0.5}):
        with pytest.raises(ValueError, match="exactly one of logits= or probs="):
            Bernoulli(**kwargs)


def test_bernoulli_samples_have_the_right_frequency():
    mg.manual_seed(0)
    logits = np.array([-2.0, 0.0, 1.5])
    n = 100_000
    s = Bernoulli(logits=mg.Tensor(logits, dtype="float64")).sample((n,)).numpy()
    assert s.shape == (n, 3) and set(np.unique(s)) <= {0.0, 1.0}
    p = scipy.special.expit(logits)
    assert np.all(np.abs(s.mean(axis=0) - p) < 4 * np.sqrt(p * (1 - p) / n))


# --------------------------------------------------------------------------------------------------
# float32 all the way, on the strict no-float64 device too
# --------------------------------------------------------------------------------------------------

def test_distributions_stay_float32(backend32):
    def f32(t):
        return mg.backend.dtype_name(t.dtype) == "float32"

    loc, log_var = mg.randn(4, 3, requires_grad=True), mg.randn(4, 3, requires_grad=True)
    p = Normal.from_log_var(loc, log_var)
    q = Normal(0.0, 2.0)
    z = p.rsample((2,))
    terms = [z, p.log_prob(z), p.entropy(), kl_divergence(p, q), q.log_prob(z), p.sample(),
             mg.reparameterize(loc, log_var), Normal(loc, 1.0).rsample()]
    b = Bernoulli(logits=loc)
    terms += [b.log_prob(b.sample()), b.entropy(), b.probs, Bernoulli(probs=b.probs).log_prob(1.0)]
    assert all(f32(t) for t in terms)
    total = terms[0].sum()
    for t in terms[1:]:
        total = total + t.sum()
    total.backward()
    assert f32(loc.grad) and f32(log_var.grad)

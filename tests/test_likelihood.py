"""The likelihood metrics: ELBO and the importance-weighted bound L_K (Burda et al. 2015), checked
on a linear-Gaussian VAE whose log p(x) is known in closed form, and on small random VAEs."""

import math

import numpy as np
import pytest

import minigen as mg
from minigen import metrics
from minigen.models import VAE, VAEGAN


def linear_gaussian_vae(w, b, exact=True):
    """x = z w + b + noise with z ~ N(0, 1), noise ~ N(0, I): a VAE with no hidden layers, latent 1.

    Then p(x) = N(b, w^T w + I) and the posterior is N(s2 w.(x - b), s2) with s2 = 1 / (1 + w.w):
    linear in x with a constant variance, so the encoder can be set to it exactly (``exact``), or to
    a deliberately wrong one.
    """
    d = len(w)
    model = VAE(d, hidden=(), latent_dim=1, likelihood="gaussian")
    s2 = 1.0 / (1.0 + w @ w)
    scale = 1.0 if exact else 0.6
    state = {
        "encoder.mu.weight": (scale * s2 * w).reshape(d, 1),
        "encoder.mu.bias": np.array([-scale * s2 * (w @ b) + (0.0 if exact else 0.3)]),
        "encoder.log_var.weight": np.zeros((d, 1)),
        "encoder.log_var.bias": np.array([math.log(s2) + (0.0 if exact else 1.0)]),
        "decoder.0.weight": w.reshape(1, d),
        "decoder.0.bias": b,
    }
    return model.load_state_dict(state)


def log_px_closed_form(x, w, b):
    d = len(w)
    cov = np.outer(w, w) + np.eye(d)
    diff = x - b
    _, logdet = np.linalg.slogdet(cov)
    quad = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    return -0.5 * (d * math.log(2 * math.pi) + logdet + quad)


W = np.array([1.5, -0.5, 0.8])
B = np.array([0.2, 0.0, -1.0])


def _points(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1)) * W + B + rng.standard_normal((n, 3))


def test_exact_posterior_gives_log_px_for_every_k(backend):
    # With q(z|x) = p(z|x) every importance weight equals p(x): L_K = log p(x) exactly, for any K,
    # and the K draws may be split into uneven chunks (7 = 3 + 3 + 1) without changing anything.
    model, x = linear_gaussian_vae(W, B), _points()
    expected = log_px_closed_form(x, W, B)
    for k, rows in ((1, 20000), (7, 3 * 40), (50, 20000)):
        bound = metrics.iwae_bound(model, mg.Tensor(x), k=k, batch_size=40, max_rows=rows)
        assert bound.shape == (40,)
        np.testing.assert_allclose(bound.numpy(), expected, rtol=1e-10, atol=1e-10)
    # the ELBO (analytic KL, one sampled reconstruction) is then log p(x) in expectation
    many = mg.Tensor(np.tile(x[:5], (2000, 1)))
    elbo = metrics.elbo(model, many).numpy().reshape(2000, 5)
    standard_error = elbo.std(axis=0) / math.sqrt(2000)
    assert np.all(np.abs(elbo.mean(axis=0) - expected[:5]) < 4 * standard_error + 1e-9)


def test_a_wrong_posterior_is_corrected_by_importance_weighting(backend):
    model, x = linear_gaussian_vae(W, B, exact=False), _points()
    log_px = log_px_closed_form(x, W, B).mean()
    elbo = metrics.elbo(model, mg.Tensor(np.tile(x, (20, 1)))).numpy().mean()
    iwae = metrics.iwae_bound(model, mg.Tensor(x), k=5000).numpy().mean()
    assert elbo < log_px - 0.3                      # the bound is loose with the wrong q
    assert abs(iwae - log_px) < 0.02 and iwae < log_px + 0.005


def _random_vae(seed=0):
    mg.manual_seed(seed)
    return VAE(5, hidden=(8,), latent_dim=2)


def _binary(n, seed=0):
    return mg.Tensor(np.random.default_rng(seed).random((n, 5)) > 0.5)


def test_k1_bound_is_the_elbo_in_expectation(backend):
    # L_1 = log p(x|z) + log p(z) - log q(z|x) (all sampled) and the ELBO (analytic KL) agree on
    # average
    model = _random_vae()
    x = mg.Tensor(np.tile(_binary(4).numpy(), (3000, 1)), dtype=mg.get_default_dtype())
    l1 = metrics.iwae_bound(model, x, k=1, batch_size=2000).numpy()
    elbo = metrics.elbo(model, x).numpy()
    standard_error = math.sqrt(l1.var() / l1.size + elbo.var() / elbo.size)
    assert abs(l1.mean() - elbo.mean()) < 4 * standard_error
    assert l1.var() > elbo.var()                    # different estimators, the same mean


def test_bound_grows_with_k_and_stays_above_the_elbo(backend):
    model = _random_vae(1)
    x = mg.Tensor(np.tile(_binary(10, seed=1).numpy(), (100, 1)), dtype=mg.get_default_dtype())
    elbo = metrics.elbo(model, x).numpy()
    bounds = [metrics.iwae_bound(model, x, k=k).numpy() for k in (1, 5, 50)]
    # on NumPy about -4.14, -3.53 and -3.43 nats, with standard errors 0.06, 0.02 and 0.008 (the GPU
    # draws other weights and noise): each step up must exceed 3 standard errors of the difference
    for low, high in ((elbo, bounds[1]), (bounds[0], bounds[1]), (bounds[1], bounds[2])):
        standard_error = math.sqrt(low.var() / low.size + high.var() / high.size)
        assert high.mean() - low.mean() > 3 * standard_error


def test_evaluate_vae_reports_nats_per_example(backend):
    model, x = _random_vae(2), _binary(30, seed=2)
    result = metrics.evaluate_vae(model, mg.Tensor(x.numpy(), dtype=mg.get_default_dtype()), k=50)
    assert set(result) == {"test_loss", "test_nll_iwae"}
    assert all(isinstance(v, float) for v in result.values())
    assert 0.0 < result["test_nll_iwae"] < result["test_loss"] < 5 * math.log(2) * 3


def test_likelihood_metrics_in_float32(backend32):
    model = VAEGAN(2, hidden=(8,), likelihood="gaussian")
    x = mg.randn(12, 2)
    bound = metrics.iwae_bound(model, x, k=6, batch_size=5, max_rows=12)
    assert bound.shape == (12,) and mg.backend.dtype_name(bound.dtype) == "float32"
    assert mg.backend.dtype_name(metrics.elbo(model, x, batch_size=5).dtype) == "float32"
    assert np.all(np.isfinite(bound.numpy()))


def test_k_must_be_positive():
    with pytest.raises(ValueError, match="k must be at least 1"):
        metrics.iwae_bound(_random_vae(), _binary(3), k=0)

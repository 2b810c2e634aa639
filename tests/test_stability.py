"""The stable forms: finite values and gradients at extreme inputs (±1e3), exact where it
matters."""

import numpy as np
import pytest
from scipy.special import expit, log_expit, logsumexp

import minigen as mg

EXTREME = [-1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3]


@pytest.mark.parametrize("name, reference, derivative", [
    ("sigmoid", expit, lambda x: expit(x) * expit(-x)),
    ("softplus", lambda x: -log_expit(-x), expit),
])
def test_extreme_inputs_give_finite_exact_values_and_gradients(backend, name, reference,
                                                               derivative):
    x = mg.Tensor(EXTREME, requires_grad=True)
    y = getattr(mg, name)(x)
    y.sum().backward()
    assert np.all(np.isfinite(y.numpy())) and np.all(np.isfinite(x.grad.numpy()))
    xs = np.array(EXTREME)
    np.testing.assert_allclose(y.numpy(), reference(xs), rtol=1e-12, atol=0)
    np.testing.assert_allclose(x.grad.numpy(), derivative(xs), rtol=1e-12, atol=1e-300)


def test_logsumexp_at_extremes(backend):
    xs = np.array([[-1e3, 1e3, 0.0], [1e3, 1e3, -1e3], [-1e3, -1e3, -1e3]])
    x = mg.Tensor(xs, requires_grad=True)
    y = mg.logsumexp(x, axis=1)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), logsumexp(xs, axis=1), rtol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), np.exp(xs - logsumexp(xs, axis=1, keepdims=True)))
    assert np.all(np.isfinite(x.grad.numpy()))


def test_float32_extremes_stay_finite(backend32):
    x = mg.Tensor(EXTREME, requires_grad=True)
    (mg.sigmoid(x).sum() + mg.softplus(x).sum() + mg.logsumexp(x)).backward()
    assert np.all(np.isfinite(x.grad.numpy()))

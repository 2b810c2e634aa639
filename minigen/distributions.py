"""Probability distributions: the diagonal Normal (with the reparameterization trick) and the
Bernoulli.

The reparameterization trick (Kingma & Welling, 2013).  A sample z ~ N(mu, sigma^2) is written as a
differentiable function of the parameters and of noise that does not depend on them:

    eps ~ N(0, 1),      z = mu + sigma * eps

so dz/dmu = 1 and dz/dsigma = eps, and a loss of z can be trained by backpropagation through the
sample. ``rsample()`` draws this way; ``sample()`` draws without recording a graph.

A VAE encoder predicts log_var = log(sigma^2).  Then sigma = exp(0.5 * log_var), NOT exp(log_var):
the founding document (like some well-known code) samples with exp(log_var), which squares the
intended standard deviation.  ``Normal.from_log_var`` and ``reparameterize`` use the correct form.
"""

import math

from . import backend as B
from .autograd import Tensor, as_tensor, no_grad
from .creation import rand, randn
from .functions import broadcast_to, exp, log, sigmoid
from .fused import Reparameterize, bce_with_logits_terms, reparameterize_with

__all__ = ["Normal", "Bernoulli", "kl_divergence", "reparameterize", "Reparameterize"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _broadcast_shape(a, b):
    """The shape that arrays of shapes ``a`` and ``b`` broadcast to (ValueError if none)."""
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + tuple(a), (1,) * (n - len(b)) + tuple(b)
    shape = []
    for x, y in zip(a, b):
        if x != y and 1 not in (x, y):
            raise ValueError(f"cannot broadcast {a} with {b}")
        shape.append(max(x, y) if 1 in (x, y) else x)
    return tuple(shape)


def _tensors(a, b):
    """Two parameters as Tensors of one dtype and device (Python numbers allowed, even for both)."""
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        a = Tensor(a)
    if isinstance(a, Tensor):
        return a, as_tensor(b, a)
    return as_tensor(a, b), b


def _smallest(t):
    return float(B.of(t.data).to_numpy(t.data).min()) if t.size else float("nan")


class Normal:
    """The normal distribution N(loc, scale^2), elementwise ("diagonal") over a batch of any shape.

    ``loc`` and ``scale`` (> 0) are Tensors or Python numbers and broadcast together; gradients
    reach both through ``rsample``, ``log_prob``, ``entropy`` and ``kl_divergence``.

    As PyTorch (``validate_args`` on by default), a scale that is not > 0 everywhere, or a NaN loc,
    is a ValueError: the density would silently be NaN.  The check reads the values, one
    device-to-host copy; ``validate_args=False`` skips it.
    """

    def __init__(self, loc, scale, validate_args=True):
        loc, scale = _tensors(loc, scale)
        shape = _broadcast_shape(loc.shape, scale.shape)
        if validate_args:
            xp = B.namespace(scale.data)
            if not bool(xp.all(scale.data > 0)):
                raise ValueError(f"Normal: scale must be > 0 everywhere; the scale of shape "
                                 f"{scale.shape} has values <= 0 or NaN (min {_smallest(scale)})")
            if bool(xp.any(xp.isnan(loc.data))):
                raise ValueError(f"Normal: loc of shape {loc.shape} has NaN values")
        self.loc, self.scale = broadcast_to(loc, shape), broadcast_to(scale, shape)

    @classmethod
    def from_log_var(cls, loc, log_var, validate_args=True):
        """N(loc, exp(log_var)): the variance is exp(log_var), so scale = exp(0.5 * log_var).

        (The founding document uses exp(log_var) as the scale: a bug that squares the standard
        deviation.)
        """
        loc, log_var = _tensors(loc, log_var)
        return cls(loc, exp(0.5 * log_var), validate_args=validate_args)

    @property
    def batch_shape(self):
        return self.loc.shape

    @property
    def mean(self):
        return self.loc

    @property
    def stddev(self):
        return self.scale

    @property
    def variance(self):
        return self.scale * self.scale

    def rsample(self, sample_shape=()):
        """A differentiable draw loc + scale * eps, eps ~ N(0, 1), of shape sample_shape +
        batch_shape."""
        eps = randn(tuple(sample_shape) + self.batch_shape, like=self.loc)
        return self.loc + self.scale * eps

    def sample(self, sample_shape=()):
        """A draw that records no graph (a constant tensor)."""
        with no_grad():
            return self.rsample(sample_shape).detach()

    def log_prob(self, x):
        """log N(x; loc, scale^2) = -(x - loc)^2 / (2 scale^2) - log(scale) - 0.5 log(2 pi)."""
        x = as_tensor(x, self.loc)
        z = (x - self.loc) / self.scale
        return -0.5 * (z * z) - log(self.scale) - _HALF_LOG_2PI

    def entropy(self):
        """H = 0.5 + 0.5 log(2 pi) + log(scale)  (in nats)."""
        return log(self.scale) + (0.5 + _HALF_LOG_2PI)

    def __repr__(self):
        return f"Normal(batch_shape={self.batch_shape})"


def kl_divergence(p, q):
    """KL(p || q) for two (diagonal) Normals, elementwise, in closed form:

        KL = log(sq / sp) + (sp^2 + (mp - mq)^2) / (2 sq^2) - 1/2
           = 0.5 * (r + d^2 - 1 - log r)    with r = (sp / sq)^2,  d = (mp - mq) / sq

    For q = N(0, 1) and sp^2 = exp(log_var) this is ``losses.gaussian_kl(mp, log_var)``.
    """
    if not (isinstance(p, Normal) and isinstance(q, Normal)):
        raise NotImplementedError(f"kl_divergence: only Normal || Normal is implemented, not "
                                  f"{type(p).__name__} || {type(q).__name__}")
    ratio = p.scale / q.scale
    ratio = ratio * ratio
    d = (p.loc - q.loc) / q.scale
    return 0.5 * (ratio + d * d - 1.0 - log(ratio))


def reparameterize(mu, log_var):
    """z = mu + exp(0.5 * log_var) * eps with eps ~ N(0, I): a draw from N(mu, exp(log_var)) through
    which gradients flow to ``mu`` (dz/dmu = 1) and ``log_var`` (dz/dlog_var = 0.5 * eps * exp(0.5 *
    log_var)).  The standard deviation is exp(0.5 * log_var), not exp(log_var).  One fused op
    (``minigen.fused.Reparameterize``), or its reference with fusion off."""
    mu, log_var = _tensors(mu, log_var)
    shape = mu.shape if mu.shape == log_var.shape else _broadcast_shape(mu.shape, log_var.shape)
    return reparameterize_with(mu, log_var, randn(shape, like=mu))


class Bernoulli:
    """The Bernoulli distribution of 0/1 outcomes with P(1) = sigmoid(logits), elementwise.

    ``Bernoulli(logits=x)``; or ``Bernoulli(probs=p)``, turned into logits log(p) - log(1 - p) after
    clamping p to [1e-7, 1 - 1e-7].  Work with logits where you can: they are exact for any value.
    As PyTorch, probabilities outside [0, 1] (or NaN) are a ValueError unless
    ``validate_args=False``.
    """

    def __init__(self, logits=None, probs=None, validate_args=True):
        if (logits is None) == (probs is None):
            raise ValueError("Bernoulli: give exactly one of logits= or probs=")
        if logits is None:
            probs = probs if isinstance(probs, Tensor) else Tensor(probs)
            if validate_args:
                xp = B.namespace(probs.data)
                inside = xp.logical_and(probs.data >= 0, probs.data <= 1)
                if not bool(xp.all(inside)):
                    raise ValueError(f"Bernoulli: probs must be in [0, 1]; those of shape "
                                     f"{probs.shape} are not (or are NaN)")
            p = probs.clip(1e-7, 1.0 - 1e-7)
            logits = log(p) - log(1.0 - p)
        self.logits = logits if isinstance(logits, Tensor) else Tensor(logits)

    @property
    def probs(self):
        return sigmoid(self.logits)

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        p = self.probs
        return p * (1.0 - p)

    def log_prob(self, x):
        """log P(x) = x log p + (1 - x) log(1 - p) = -bce_with_logits(logits, x), computed
        stably."""
        x = as_tensor(x, self.logits)
        return -bce_with_logits_terms(self.logits, x)

    def entropy(self):
        """H = -[p log p + (1 - p) log(1 - p)] = bce_with_logits(logits, p)."""
        return bce_with_logits_terms(self.logits, self.probs)

    def sample(self, sample_shape=()):
        """0.0/1.0 draws (in the logits' dtype) of shape sample_shape + logits.shape; no graph."""
        data = self.logits.data
        xp = B.namespace(data)
        with no_grad():
            p = sigmoid(self.logits.detach()).data
        u = rand(tuple(sample_shape) + self.logits.shape, like=self.logits).data
        return Tensor._wrap(xp.astype(u < p, data.dtype))

    def __repr__(self):
        return f"Bernoulli(batch_shape={self.logits.shape})"

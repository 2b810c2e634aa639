"""Fused ops, each one beside the composition of primitive ops it replaces.

A fused op computes exactly what a few lines of primitive ops compute (``functions.py``), in fewer
passes over memory and with one graph node instead of several.  Each section below starts with that
composition - the *reference*, what a learner would write - and then the fused :class:`Function`:

* ``forward`` on arrays, through the array kernels of ``minigen/kernels.py``;
* ``backward`` in Tensor ops: the readable derivative, differentiable again (``create_graph``);
* ``backward_arrays`` on arrays: the same derivative in fewer passes, which the graph walk uses when
  no graph is being built for the gradient.

The public function of each section (``dense``, ``bce_with_logits_terms``, ``gaussian_kl_terms``,
``reparameterize_with``) runs the fused op, or the reference when fusion is off
(``mg.set_fusion(False)``, ``with mg.using_fusion(False): ...``): then a model trains on MatMul,
ReLU, Softplus, Exp... and a learner can step through ``MatMul.backward`` in a real training step.
The two paths give the same values and gradients up to float rounding (``tests/test_fused.py``, on
every backend).

Adam's update is here too (``adam_step``): it records no graph, so its reference is array code.
"""

from . import backend as B
from . import functions as F
from . import kernels
from .autograd import Function, Tensor, as_tensor
from .fusion import is_fusion_enabled

__all__ = ["FUSED_ACTIVATIONS", "dense_reference", "DenseFunction", "dense",
           "bce_with_logits_reference", "BCEWithLogits", "bce_with_logits_terms",
           "gaussian_kl_reference", "GaussianKL", "gaussian_kl_terms",
           "reparameterize_reference", "Reparameterize", "reparameterize_with",
           "adam_reference", "adam_step", "adam_step_flat"]

FUSED_ACTIVATIONS = kernels.FUSED_ACTIVATIONS     # relu, leaky_relu (slope 0.01), tanh, sigmoid
_FUSED_NAMES = frozenset(FUSED_ACTIVATIONS)


def _constant(array):
    return Tensor._wrap(B.ensure_array(array))


# --------------------------------------------------------------------------------------------------
# Dense with its activation:  y = activation(x @ W + b)
# --------------------------------------------------------------------------------------------------

def dense_reference(x, weight, bias=None, activation=None):
    """``activation(x @ weight + bias)`` in primitive ops: MatMul, Add, then the activation."""
    y = F.matmul(x, weight) if bias is None else F.matmul(x, weight) + bias
    return y if activation is None else activation(y)


class DenseFunction(Function):
    """y = activation(x @ W + b) as one op: one graph node and one backward instead of a matmul, an
    add and an activation, and no intermediate array kept.

    ``activation`` is None (linear) or one of ``FUSED_ACTIVATIONS``.  With x: (..., in), W: (in,
    out), b: (out,), z = x @ W + b and the upstream gradient g = dL/dy: (..., out):

        dL/dz = g * activation'(z)           written with y alone (relu: y > 0; tanh: 1 - y^2; ...)
        dL/dx = dL/dz @ W^T                  (..., in)
        dL/dW = x^T @ dL/dz                  (in, out)   the leading axes flattened into one
        dL/db = dL/dz summed over the batch  (out,)      batch axis
    """

    name = "dense"

    def __init__(self, activation=None):
        if activation is not None and activation not in _FUSED_NAMES:
            raise ValueError(f"dense: cannot fuse activation {activation!r}; choose one of "
                             f"{', '.join(FUSED_ACTIVATIONS)} or None")
        self.activation = activation

    def forward(self, x, weight, bias):
        _check_features(x.shape, weight.shape)
        self.y = kernels.bias_activation(x @ weight, bias, self.activation)
        return self.y

    def _shape_message(self, tensors, err):
        return str(err)

    def backward(self, gy):
        x, weight, bias = self.inputs
        n_in, n_out = weight.shape
        gz = gy if self.activation is None else gy * self._derivative()
        g2 = F.reshape(gz, (-1, n_out))      # every leading axis is part of the batch
        gx = F.matmul(gz, weight.T) if x.requires_grad else None
        gw = F.matmul(F.reshape(x, (-1, n_in)).T, g2) if weight.requires_grad else None
        gb = F.sum(g2, axis=0) if bias.requires_grad else None
        return gx, gw, gb

    def _derivative(self):
        """activation'(z) as a Tensor from the output y (in the graph for tanh and sigmoid, so that
        the second derivative sees it; relu's 0/1 mask is a constant)."""
        y = self.output
        if self.activation == "tanh":
            return 1.0 - y * y
        if self.activation == "sigmoid":
            return y * (1.0 - y)
        return _constant(kernels.activation_derivative(y.data, self.activation))

    def backward_arrays(self, gy):
        x, weight, bias = self.inputs
        xp = B.namespace(gy)
        n_in, n_out = weight.data.shape
        gz = gy if self.activation is None else kernels.activation_grad(gy, self.y, self.activation)
        flat = gz.ndim == 2                  # the usual (N, features): no reshape needed
        g2 = gz if flat else xp.reshape(gz, (-1, n_out))
        x2 = x.data if flat else xp.reshape(x.data, (-1, n_in))
        gx = xp.matmul(gz, weight.data.T) if x.requires_grad else None
        gw = xp.matmul(x2.T, g2) if weight.requires_grad else None
        gb = kernels.bias_grad(g2) if bias.requires_grad else None
        return gx, gw, gb


ACTIVATIONS = {"relu": F.relu, "leaky_relu": F.leaky_relu, "sigmoid": F.sigmoid, "tanh": F.tanh,
               "softplus": F.softplus}


def _check_features(x_shape, w_shape):
    if len(x_shape) == 0 or x_shape[-1] != w_shape[0]:
        raise ValueError(f"dense: expected input with last dimension {w_shape[0]}, "
                         f"got shape {tuple(x_shape)}")


def dense(x, weight, bias=None, activation=None):
    """``activation(x @ weight + bias)``.

    ``activation`` is None, a name in ``ACTIVATIONS`` ("relu", "leaky_relu", "sigmoid", "tanh",
    "softplus") or a callable.  With fusion on, a bias and an activation in ``FUSED_ACTIVATIONS``
    (or none) make one :class:`DenseFunction`; any other activation is applied after it.  With
    fusion off, :func:`dense_reference`.  An ``x`` that is not a Tensor (a list, a NumPy array) is
    converted to the weight's dtype and device first.
    """
    if bias is not None and (activation is None or (type(activation) is str
                                                     and activation in _FUSED_NAMES)) \
            and isinstance(x, Tensor) and is_fusion_enabled():
        return DenseFunction(activation)(x, weight, bias)    # the usual case, answered first
    x = as_tensor(x, weight)
    _check_features(x.data.shape, weight.data.shape)
    fn = ACTIVATIONS.get(activation, activation) if isinstance(activation, str) else activation
    if isinstance(activation, str) and fn is activation:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{', '.join(sorted(ACTIVATIONS))}, None, or pass a callable")
    if bias is None or not is_fusion_enabled():
        return dense_reference(x, weight, bias, fn)
    # what fuses: the names, and the functions themselves (mg.relu passed as a callable)
    name = activation if activation in FUSED_ACTIVATIONS else \
        next((n for n in FUSED_ACTIVATIONS if fn is ACTIVATIONS[n]), None)
    if activation is not None and name is None:
        return fn(DenseFunction(None)(x, weight, bias))
    return DenseFunction(name)(x, weight, bias)


# --------------------------------------------------------------------------------------------------
# Binary cross-entropy with logits:  l(x, t) = log(1 + exp(x)) - x t = softplus(x) - x t
# --------------------------------------------------------------------------------------------------

def bce_with_logits_reference(x, t):
    """The elementwise BCE of logits in primitive ops: Softplus (stable for any x, and with the
    exact derivative sigmoid(x) everywhere - a logit of exactly 0, common behind a dead ReLU layer,
    included), Mul and Sub."""
    return F.softplus(x) - x * t


class BCEWithLogits(Function):
    """Binary cross-entropy of the logit x (probability sigmoid(x)) against the target t in [0, 1]:

        l(x, t) = -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))]
                = max(x, 0) - x t + log1p(exp(-|x|))        (exp only sees -|x| <= 0: no overflow)

        dl/dx = sigmoid(x) - t,      dl/dt = -x

    The derivative is exact and bounded, so logits of +-1e3 give finite values and gradients.
    ``BCEWithLogits(reduction)``: "none" gives the terms; "sum", "mean" and "batchmean" reduce them
    inside the op (one node instead of two or three; the backward scales the derivative by the 0-d
    upstream gradient, and by 1 / n for the means) - the same as ``.sum()``, ``.mean()`` or
    ``.sum() / len(x)`` of the terms.
    """

    name = "bce_with_logits"

    def __init__(self, reduction="none"):
        self.reduction = check_reduction(reduction, "bce_with_logits")

    def forward(self, x, t):
        loss, self.saved = kernels.bce_with_logits(x, t)
        return _reduced(self, loss)

    def backward(self, gy):
        x, t = self.inputs
        gy = _upstream(self, gy)
        gx = (F.sigmoid(x) - t) * gy if x.requires_grad else None
        gt = -x * gy if t.requires_grad else None
        return gx, gt

    def backward_arrays(self, gy):
        x, t = self.inputs
        gy = _upstream(self, gy)
        gx = kernels.bce_with_logits_grad(x.data, t.data, gy, self.saved) if x.requires_grad \
            else None
        gt = B.ensure_array(-x.data * gy) if t.requires_grad else None
        return gx, gt


REDUCTIONS = ("mean", "sum", "batchmean", "none")     # what every loss accepts (see losses.py)


def check_reduction(reduction, who):
    """``reduction`` if it is one of REDUCTIONS, else a ValueError naming the loss ``who``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"{who}: reduction must be 'mean', 'sum', 'batchmean' or 'none', not "
                         f"{reduction!r}")
    return reduction


def batch_scale(shape, who):
    """1 / (the batch size, ``shape[0]``) for reduction="batchmean" (NaN for an empty batch, as
    ``mean``); a 0-d loss has no batch axis: a ValueError naming ``who``."""
    if len(shape) == 0:
        raise ValueError(f"{who}: reduction='batchmean' divides by the batch size (the first "
                         "axis), but the input is 0-d; use reduction='sum' or 'mean'")
    return 1.0 / shape[0] if shape[0] else float("nan")


def _reduced(fn, terms):
    """The forward's ``terms`` reduced as ``fn.reduction`` says (a loss op's last line); for the
    means, ``fn.scale`` = 1 / n is kept for the backward (n the number of terms, or the batch size
    for "batchmean"; NaN when it is 0, as ``mean``)."""
    if fn.reduction == "none":
        return terms
    terms = B.ensure_array(terms)                  # (NumPy answers 0-d arithmetic with scalars)
    total = kernels.total(terms)
    if fn.reduction == "sum":
        return total
    if fn.reduction == "batchmean":
        fn.scale = batch_scale(terms.shape, fn.name)
    else:
        fn.scale = 1.0 / terms.size if terms.size else float("nan")
    return total * fn.scale


def _upstream(fn, gy):
    """The upstream gradient for each term: ``gy`` itself ("none", "sum": a 0-d gy broadcasts over
    the terms), or ``gy / n`` for the means (a Tensor or an array, like gy)."""
    if fn.reduction == "none" or fn.reduction == "sum":
        return gy
    scaled = gy * fn.scale
    return scaled if isinstance(gy, Tensor) else B.ensure_array(scaled)


def bce_with_logits_terms(x, t, reduction="none"):
    """The BCE of the logits ``x`` against ``t`` (Tensors), elementwise or reduced ("sum", "mean",
    "batchmean"): fused, or the reference."""
    if is_fusion_enabled():
        return BCEWithLogits(reduction)(x, t)
    return reduce_terms(bce_with_logits_reference(x, t), reduction, "bce_with_logits")


def reduce_terms(terms, reduction, who):
    """A loss's ``terms`` (a Tensor) reduced in primitive ops: Sum, Mean, or Sum and Mul for
    "batchmean" - the reference of the fused ops' reductions, and the reduction of the losses that
    have no fused op (``losses.bce``, ``mse``, ``gaussian_nll``)."""
    if check_reduction(reduction, who) == "none":
        return terms
    if reduction == "batchmean":
        return terms.sum() * batch_scale(terms.shape, who)
    return terms.sum() if reduction == "sum" else terms.mean()


# --------------------------------------------------------------------------------------------------
# KL divergence of a diagonal Gaussian from the standard normal, per element
# --------------------------------------------------------------------------------------------------

def gaussian_kl_reference(mu, log_var):
    """KL(N(mu, exp(log_var)) || N(0, 1)) per element in primitive ops (Mul, Exp, Sub)."""
    return 0.5 * (mu * mu + F.exp(log_var) - 1.0 - log_var)


class GaussianKL(Function):
    """KL(N(mu, sigma^2) || N(0, 1)) per element, with sigma^2 = exp(log_var) (Kingma & Welling,
    2013):

        kl = 0.5 * (mu^2 + exp(log_var) - 1 - log_var)

        d kl / d mu      = mu
        d kl / d log_var = 0.5 * (exp(log_var) - 1)

    ``GaussianKL(reduction)``: "none", "sum", "mean" or "batchmean", as :class:`BCEWithLogits`.
    """

    name = "gaussian_kl"

    def __init__(self, reduction="none"):
        self.reduction = check_reduction(reduction, "gaussian_kl")

    def forward(self, mu, log_var):
        return _reduced(self, kernels.gaussian_kl(mu, log_var))

    def backward(self, gy):
        mu, log_var = self.inputs
        gy = _upstream(self, gy)
        gmu = mu * gy if mu.requires_grad else None
        glv = 0.5 * (F.exp(log_var) - 1.0) * gy if log_var.requires_grad else None
        return gmu, glv

    def backward_arrays(self, gy):
        mu, log_var = self.inputs
        gmu, glv = kernels.gaussian_kl_grads(_upstream(self, gy), mu.data, log_var.data)
        return (gmu if mu.requires_grad else None), (glv if log_var.requires_grad else None)


def gaussian_kl_terms(mu, log_var, reduction="none"):
    """The Gaussian KL of ``mu`` and ``log_var`` (Tensors), elementwise or reduced ("sum", "mean",
    "batchmean"): fused, or the reference."""
    if is_fusion_enabled():
        return GaussianKL(reduction)(mu, log_var)
    return reduce_terms(gaussian_kl_reference(mu, log_var), reduction, "gaussian_kl")


# --------------------------------------------------------------------------------------------------
# The reparameterization:  z = mu + exp(0.5 log_var) eps
# --------------------------------------------------------------------------------------------------

def reparameterize_reference(mu, log_var, eps):
    """A draw from N(mu, exp(log_var)) given the noise ``eps`` ~ N(0, 1), in primitive ops."""
    return mu + F.exp(0.5 * log_var) * eps


class Reparameterize(Function):
    """z = mu + exp(0.5 * log_var) * eps as one op, for arrays that broadcast together:

        dz/dmu = 1,    dz/dlog_var = 0.5 * eps * exp(0.5 * log_var),    dz/deps = exp(0.5 * log_var)
    """

    name = "reparameterize"

    def forward(self, mu, log_var, eps):
        return kernels.reparameterize(mu, log_var, eps)

    def backward(self, gy):
        _, log_var, eps = self.inputs
        g_eps = gy * F.exp(0.5 * log_var)
        return gy, 0.5 * eps * g_eps, g_eps

    def backward_arrays(self, gy):
        mu, log_var, eps = self.inputs
        g_lv, g_eps = kernels.reparameterize_grads(gy, log_var.data, eps.data)
        return (gy if mu.requires_grad else None), (g_lv if log_var.requires_grad else None), \
            (g_eps if eps.requires_grad else None)


def reparameterize_with(mu, log_var, eps):
    """``mu + exp(0.5 log_var) * eps`` for Tensors that broadcast together: fused, or the
    reference."""
    if is_fusion_enabled():
        return Reparameterize()(mu, log_var, eps)
    return reparameterize_reference(mu, log_var, eps)


# --------------------------------------------------------------------------------------------------
# Adam's update, in place on the arrays p (parameter), m and v (the moment estimates)
# --------------------------------------------------------------------------------------------------

def adam_reference(p, g, m, v, beta1, beta2, step_size, eps):
    """Adam's step as plain array expressions (the bias corrections folded into step_size and
    eps)."""
    m[...] = beta1 * m + (1.0 - beta1) * g
    v[...] = beta2 * v + (1.0 - beta2) * (g * g)
    p -= step_size * m / (B.namespace(p).sqrt(v) + eps)


def adam_step(p, g, m, v, scratch, beta1, beta2, step_size, eps):
    """Adam's step: ``kernels.adam_update`` (one pass on a GPU; in place through ``scratch`` on
    NumPy), or :func:`adam_reference` when fusion is off."""
    if is_fusion_enabled():
        kernels.adam_update(p, g, m, v, scratch, beta1, beta2, step_size, eps)
    else:
        adam_reference(p, g, m, v, beta1, beta2, step_size, eps)


def adam_step_flat(params, grads, m, v, scratch, gathered, beta1, beta2, step_size, eps):
    """Adam's step for many NumPy parameters whose moments lie back to back in the 1-D ``m`` and
    ``v`` (``kernels.adam_update_flat``: a few calls for all the small parameters together), or
    :func:`adam_reference` on each parameter's views of ``m`` and ``v`` when fusion is off."""
    if is_fusion_enabled():
        kernels.adam_update_flat(params, grads, m, v, scratch, gathered, beta1, beta2, step_size,
                                 eps)
        return
    start = 0
    for p, g in zip(params, grads):
        end = start + p.size
        adam_reference(p, g, m[start:end].reshape(p.shape), v[start:end].reshape(p.shape), beta1,
                       beta2, step_size, eps)
        start = end

"""Loss functions: elementwise terms, then a reduction.

Every loss computes one term per element and reduces them as PyTorch does:

    reduction="mean"       the mean over *all* elements (the default)
    reduction="sum"        the sum over all elements
    reduction="batchmean"  the sum over all elements divided by the batch size (the length of the
                           first axis), as PyTorch's KLDivLoss: a sum over each example's features,
                           averaged over the examples
    reduction="none"       the terms themselves, in the prediction's shape

(A VAE's ELBO sums over the features of one example and averages over the batch: that is
``reduction="batchmean"``, the same as ``reduction="none"`` and then ``.sum(axis=1).mean()`` for a
batch of vectors.)

The prediction and the target must have the same shape (a ValueError names the loss and both
shapes); a Python number as target stands for a constant of that value everywhere
(``bce_with_logits(d, 1.0)``).

``bce_with_logits`` and ``gaussian_kl`` are fused ops with their closed-form derivatives (one graph
node each, numerically stable for any input), written beside their references in
``minigen/fused.py``.
"""

import math

from . import backend as B
from .autograd import Tensor, as_tensor
from .functions import clip, exp, log
from .fused import (REDUCTIONS, BCEWithLogits, GaussianKL, bce_with_logits_terms, check_reduction,
                    gaussian_kl_terms, reduce_terms)

__all__ = ["bce", "bce_with_logits", "mse", "gaussian_nll", "gaussian_kl", "BCEWithLogits",
           "GaussianKL", "REDUCTIONS"]

def _pair(pred, target, who, names=("prediction", "target")):
    """``pred`` and ``target`` as Tensors of one dtype and one shape (or a Python-number target)."""
    if isinstance(pred, Tensor) and isinstance(target, Tensor) and \
            target.data.dtype is pred.data.dtype and target.shape == pred.shape:
        return pred, target                          # the usual case, answered first
    if not isinstance(pred, Tensor):
        pred = Tensor(pred)
    scalar = isinstance(target, (int, float)) and not isinstance(target, bool)
    target = as_tensor(target, pred)
    if not scalar and target.shape != pred.shape:
        raise ValueError(f"{who}: {names[0]} has shape {pred.shape} but {names[1]} has shape "
                         f"{target.shape}; they must be equal")
    if B.dtype_name(target.dtype) != B.dtype_name(pred.dtype):
        raise TypeError(f"{who}: {names[0]} is {B.dtype_name(pred.dtype)} but {names[1]} is "
                        f"{B.dtype_name(target.dtype)}; convert one with .astype(...)")
    return pred, target


# --------------------------------------------------------------------------------------------------
# Binary cross-entropy
# --------------------------------------------------------------------------------------------------

def bce_with_logits(logits, target, reduction="mean"):
    r"""Binary cross-entropy from logits (the stable way: prefer it to ``bce(sigmoid(x), t)``):

    .. math::

        \ell(x, t) = -\left[t \log \sigma(x) + (1 - t) \log\big(1 - \sigma(x)\big)\right]
                   = \max(x, 0) - x t + \log\left(1 + e^{-|x|}\right)

    with :math:`\partial \ell / \partial x = \sigma(x) - t`, exact and bounded, so logits of
    +-1e3 give finite values and gradients.  One fused op (``minigen.fused.BCEWithLogits``), or its
    reference with fusion off.
    """
    check_reduction(reduction, "bce_with_logits")
    logits, target = _pair(logits, target, "bce_with_logits", ("logits", "target"))
    return bce_with_logits_terms(logits, target, reduction)


def bce(probs, target, reduction="mean", eps=1e-7):
    r"""Binary cross-entropy of probabilities: :math:`-[t \log p + (1 - t) \log(1 - p)]`.

    ``probs`` is clamped to [eps, 1 - eps] first (eps = 1e-7, as Keras), so p = 0 or 1 gives a large
    finite loss instead of infinity; where the clamp acts, the gradient is zero.  (PyTorch instead
    clamps each log at -100.)  A sigmoid followed by ``bce`` loses precision for large logits: when
    you have the logits, use :func:`bce_with_logits`.
    """
    check_reduction(reduction, "bce")
    probs, target = _pair(probs, target, "bce", ("probs", "target"))
    p = clip(probs, eps, 1.0 - eps)
    terms = -(target * log(p) + (1.0 - target) * log(1.0 - p))
    return reduce_terms(terms, reduction, "bce")


# --------------------------------------------------------------------------------------------------
# Squared error and the Gaussian negative log-likelihood
# --------------------------------------------------------------------------------------------------

def mse(pred, target, reduction="mean"):
    r"""Squared error :math:`(\mathrm{pred} - \mathrm{target})^2` per element (mean squared error
    with the default reduction)."""
    check_reduction(reduction, "mse")
    pred, target = _pair(pred, target, "mse")
    diff = pred - target
    return reduce_terms(diff * diff, reduction, "mse")


def gaussian_nll(mean, target, log_var=0.0, reduction="mean"):
    r"""The negative log-density of ``target`` under N(mean, exp(log_var)), per element:

    .. math::

        \tfrac12 \left(\log 2\pi + \mathrm{log\_var}
            + (\mathrm{target} - \mathrm{mean})^2 \, e^{-\mathrm{log\_var}}\right)

    This is the complete negative log-likelihood (the constant included), so the sum over a VAE
    decoder's outputs is a true -log p(x | z).  ``log_var`` is a Tensor that broadcasts to
    ``mean``'s shape (per element, or one learned value per feature) or a Python number (0.0: unit
    variance). (PyTorch's ``GaussianNLLLoss`` takes the variance itself and leaves out the constant
    by default.)
    """
    check_reduction(reduction, "gaussian_nll")
    mean, target = _pair(mean, target, "gaussian_nll", ("mean", "target"))
    if isinstance(log_var, Tensor):
        if not _broadcasts_to(log_var.shape, mean.shape):
            raise ValueError(f"gaussian_nll: log_var has shape {log_var.shape}, which does not "
                             f"broadcast to the mean's shape {mean.shape}")
        inv_var = exp(-log_var)
    else:
        log_var = float(log_var)
        inv_var = math.exp(-log_var)
    diff = target - mean
    terms = 0.5 * (math.log(2.0 * math.pi) + log_var + diff * diff * inv_var)
    return reduce_terms(terms, reduction, "gaussian_nll")


def _broadcasts_to(shape, target):
    if len(shape) > len(target):
        return False
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


# --------------------------------------------------------------------------------------------------
# KL divergence of a diagonal Gaussian from the standard normal
# --------------------------------------------------------------------------------------------------

def gaussian_kl(mu, log_var, reduction="mean"):
    r"""KL(N(mu, exp(log_var)) || N(0, I)) per element (the VAE's regulariser, Kingma & Welling
    2013):

    .. math::

        \mathrm{KL}\big(\mathcal{N}(\mu, \sigma^2) \,\|\, \mathcal{N}(0, 1)\big)
            = \tfrac12 \left(\mu^2 + \sigma^2 - 1 - \log \sigma^2\right),
        \qquad \sigma^2 = e^{\mathrm{log\_var}}

    One fused op (``minigen.fused.GaussianKL``), or its reference with fusion off.  Note the
    variance is exp(log_var), so the standard deviation is exp(0.5 * log_var).
    """
    check_reduction(reduction, "gaussian_kl")
    mu, log_var = _pair(mu, log_var, "gaussian_kl", ("mu", "log_var"))
    return gaussian_kl_terms(mu, log_var, reduction)

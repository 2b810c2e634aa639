"""Weight initialisers for a Dense layer's (fan_in, fan_out) weight matrix.

Why the scale matters: with y = x @ W and independent zero-mean weights of variance s^2, each output
has variance fan_in * s^2 * Var(x).  Choosing s^2 about 1 / fan_in keeps activations from growing or
shrinking layer after layer (and the same argument backwards, with fan_out, for the gradients).

* **Glorot (Xavier) uniform** (Glorot & Bengio, 2010) - the compromise s^2 = 2 / (fan_in + fan_out).
  A uniform U(-a, a) has variance a^2 / 3, so a = sqrt(6 / (fan_in + fan_out)).  Keras's ``Dense``
  default, so minigen's ``Dense`` default.
* **He (Kaiming) normal** (He et al., 2015) - ReLU zeroes half of its inputs, halving the variance,
  so s^2 = 2 / fan_in: W ~ N(0, 2 / fan_in).  A good choice for ReLU networks.

Random numbers come from the current backend's seeded generator (``mg.manual_seed``).
"""

import math

from .. import backend as B
from ..autograd import Tensor

__all__ = ["glorot_uniform", "he_normal", "INITIALIZERS"]


def _dtype(owner, dtype):
    return owner.dtype(B.dtype_name(dtype) if dtype is not None else B.get_default_dtype())


def glorot_uniform(fan_in, fan_out, dtype=None):
    """A (fan_in, fan_out) tensor drawn from U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    owner = B.current()
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return Tensor(owner.uniform((fan_in, fan_out), _dtype(owner, dtype), -limit, limit))


def he_normal(fan_in, fan_out, dtype=None):
    """A (fan_in, fan_out) tensor drawn from N(0, 2 / fan_in)."""
    owner = B.current()
    std = math.sqrt(2.0 / fan_in)
    return Tensor(owner.standard_normal((fan_in, fan_out), _dtype(owner, dtype)) * std)


INITIALIZERS = {"glorot": glorot_uniform, "he": he_normal}

r"""Weight initialisers: for a Dense layer's (fan_in, fan_out) weight matrix and for convolutions.

Why the scale matters: with :math:`y = x W` and independent zero-mean weights of variance
:math:`s^2`, each output has variance :math:`\mathrm{fan\_in} \cdot s^2 \cdot \mathrm{Var}(x)`.
Choosing :math:`s^2 \approx 1 / \mathrm{fan\_in}` keeps activations from growing or shrinking layer
after layer (and the same argument backwards, with fan_out, for the gradients).

* **Glorot (Xavier) uniform** (Glorot & Bengio, 2010) - the compromise
  :math:`s^2 = 2 / (\mathrm{fan\_in} + \mathrm{fan\_out})`.  A uniform :math:`U(-a, a)` has variance
  :math:`a^2 / 3`, so :math:`a = \sqrt{6 / (\mathrm{fan\_in} + \mathrm{fan\_out})}`.  Keras's
  ``Dense`` default, so minigen's ``Dense`` default.
* **He (Kaiming) normal** (He et al., 2015) - ReLU zeroes half of its inputs, halving the variance,
  so :math:`s^2 = 2 / \mathrm{fan\_in}`: :math:`W \sim \mathcal{N}(0,\ 2 / \mathrm{fan\_in})`.
  A good choice for ReLU networks.
* **PyTorch's default for convolutions** - ``kaiming_uniform_(w, a=sqrt(5))``, which works out to
  :math:`U(-b, b)` with :math:`b = 1 / \sqrt{\mathrm{fan\_in}}` (variance
  :math:`1 / (3\, \mathrm{fan\_in})`); the bias is drawn from the same :math:`U(-b, b)`.  fan_in is
  the number of inputs of one output: in_channels * kH * kW for a convolution, and, as PyTorch
  computes it from the weight's axis 1, out_channels * kH * kW for a transposed one.

Random numbers come from the current backend's seeded generator (``mg.manual_seed``).
"""

import math

from .. import backend as B
from ..autograd import Tensor

__all__ = ["glorot_uniform", "he_normal", "uniform_fan_in", "INITIALIZERS"]


def _dtype(owner, dtype):
    return owner.dtype(B.dtype_name(dtype) if dtype is not None else B.get_default_dtype())


def glorot_uniform(fan_in, fan_out, dtype=None):
    r"""A (fan_in, fan_out) tensor drawn from :math:`U(-a, a)` with
    :math:`a = \sqrt{6 / (\mathrm{fan\_in} + \mathrm{fan\_out})}`."""
    owner = B.current()
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return Tensor(owner.uniform((fan_in, fan_out), _dtype(owner, dtype), -limit, limit))


def he_normal(fan_in, fan_out, dtype=None):
    r"""A (fan_in, fan_out) tensor drawn from :math:`\mathcal{N}(0,\ 2 / \mathrm{fan\_in})`."""
    owner = B.current()
    std = math.sqrt(2.0 / fan_in)
    return Tensor(owner.standard_normal((fan_in, fan_out), _dtype(owner, dtype)) * std)


def uniform_fan_in(shape, fan_in, dtype=None):
    """A tensor of ``shape`` drawn from U(-b, b), b = 1 / sqrt(fan_in) (PyTorch's convolutions)."""
    owner = B.current()
    bound = 1.0 / math.sqrt(fan_in)
    return Tensor(owner.uniform(tuple(shape), _dtype(owner, dtype), -bound, bound))


INITIALIZERS = {"glorot": glorot_uniform, "he": he_normal}

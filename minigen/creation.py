"""Making tensors: zeros, ones, full, and random tensors from the backend's seeded generator.

All of them create data on the current backend (``mg.set_backend``) with the default floating dtype
unless ``dtype`` is given.  Random numbers come from the backend's own generator, seeded by
``mg.manual_seed`` (never NumPy's global generator).
"""

from . import backend as B
from .autograd import Tensor

__all__ = ["zeros", "ones", "full", "randn", "rand", "zeros_like", "ones_like"]


def _shape(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def _dtype(owner, dtype):
    return owner.dtype(B.dtype_name(dtype) if dtype is not None else B.get_default_dtype())


def full(shape, value, dtype=None, requires_grad=False):
    """A tensor of ``shape`` filled with ``value``."""
    owner = B.current()
    return Tensor(owner.full(tuple(shape), value, _dtype(owner, dtype)), requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False):
    """``mg.zeros(2, 3)`` or ``mg.zeros((2, 3))``."""
    return full(_shape(shape), 0, dtype, requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    return full(_shape(shape), 1, dtype, requires_grad)


def randn(*shape, dtype=None, requires_grad=False):
    """Standard normal numbers, N(0, 1), from the backend's seeded generator."""
    owner = B.current()
    return Tensor(owner.standard_normal(_shape(shape), _dtype(owner, dtype)), requires_grad=requires_grad)


def rand(*shape, dtype=None, requires_grad=False):
    """Uniform numbers in [0, 1) from the backend's seeded generator."""
    owner = B.current()
    return Tensor(owner.uniform(_shape(shape), _dtype(owner, dtype)), requires_grad=requires_grad)


def zeros_like(x, requires_grad=False):
    """Zeros with ``x``'s shape, dtype and device."""
    return Tensor(B.namespace(x.data).zeros_like(x.data), requires_grad=requires_grad)


def ones_like(x, requires_grad=False):
    return Tensor(B.namespace(x.data).ones_like(x.data), requires_grad=requires_grad)

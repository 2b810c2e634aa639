"""Making tensors: zeros, ones, full, and random tensors from the backend's seeded generator.

All of them create data on the current backend (``mg.set_backend``) with the default floating dtype
unless ``dtype`` is given - or, given ``like=`` a Tensor, in that tensor's dtype on its device (so a
float32 model on the GPU stays so, whatever the current backend).  Random numbers come from the
backend's own generator, seeded by ``mg.manual_seed`` (never NumPy's global generator).
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


def _where(dtype, like):
    """(the backend, the dtype) for a new tensor: ``like``'s when given, else the current ones."""
    if like is None:
        owner = B.current()
        return owner, _dtype(owner, dtype)
    owner = B.of(like.data)
    return owner, like.data.dtype if dtype is None else _dtype(owner, dtype)


def _new(array, requires_grad):
    t = Tensor._wrap(array)              # the array is the backend's own: no conversion
    return t.requires_grad_(True) if requires_grad else t


def full(shape, value, dtype=None, requires_grad=False):
    """A tensor of ``shape`` filled with ``value``."""
    owner = B.current()
    return Tensor(owner.full(tuple(shape), value, _dtype(owner, dtype)),
                  requires_grad=requires_grad)


def zeros(*shape, dtype=None, requires_grad=False):
    """``mg.zeros(2, 3)`` or ``mg.zeros((2, 3))``."""
    return full(_shape(shape), 0, dtype, requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    return full(_shape(shape), 1, dtype, requires_grad)


def randn(*shape, dtype=None, requires_grad=False, like=None):
    """Standard normal numbers, N(0, 1), from the backend's seeded generator."""
    owner, dtype = _where(dtype, like)
    return _new(owner.standard_normal(_shape(shape), dtype), requires_grad)


def rand(*shape, dtype=None, requires_grad=False, like=None):
    """Uniform numbers in [0, 1) from the backend's seeded generator."""
    owner, dtype = _where(dtype, like)
    return _new(owner.uniform(_shape(shape), dtype), requires_grad)


def zeros_like(x, requires_grad=False):
    """Zeros with ``x``'s shape, dtype and device."""
    return Tensor(B.namespace(x.data).zeros_like(x.data), requires_grad=requires_grad)


def ones_like(x, requires_grad=False):
    return Tensor(B.namespace(x.data).ones_like(x.data), requires_grad=requires_grad)

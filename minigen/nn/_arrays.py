"""Small array helpers shared by layers, losses, distributions and optimizers.

They make new arrays *like* an existing one: the same dtype, on the same device.  Going through the
existing array's backend (``mg.backend.of(array)``, rather than the current backend) keeps a model that
lives on the GPU on the GPU even while ``mg.get_backend()`` says "numpy".
"""

from .. import backend as B
from ..autograd import Tensor, as_tensor

__all__ = ["fresh_like", "standard_normal_like", "uniform_like", "tensor_like", "host_scalar"]


def fresh_like(data, like):
    """A new array holding ``data``'s values in ``like``'s dtype on ``like``'s device.

    ``data`` may be a NumPy array, an array of any backend (it travels through the host when it lives
    elsewhere) or a Tensor.  The result never shares memory with ``data``.
    """
    if isinstance(data, Tensor):
        data = data.data
    source, owner = B.of(data), B.of(like)
    if source is not None and source is not owner:
        data = source.to_numpy(data)
    return owner.copy(owner.asarray(data, dtype=like.dtype))


def standard_normal_like(shape, like):
    """N(0, 1) numbers of ``shape`` from the backend's seeded generator, in ``like``'s dtype and device."""
    return B.of(like).standard_normal(tuple(shape), like.dtype)


def uniform_like(shape, like):
    """U[0, 1) numbers of ``shape`` from the backend's seeded generator, in ``like``'s dtype and device."""
    return B.of(like).uniform(tuple(shape), like.dtype)


def tensor_like(value, like):
    """``value`` as a Tensor to be used with the Tensor ``like``.

    Tensors are returned as they are; Python numbers become 0-d constants of ``like``'s dtype; anything
    else (lists, NumPy arrays, other backends' arrays) is copied into ``like``'s dtype and device, so a
    float64 NumPy target never silently turns a float32 computation into a float64 one.
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return as_tensor(float(value), like)
    return Tensor._wrap(fresh_like(value, like.data))


def host_scalar(value, dtype="float64"):
    """A 0-d NumPy array holding the Python number ``value`` (for checkpoints of plain arrays)."""
    with B.using_backend("numpy"):
        return Tensor(value, dtype=dtype).numpy()

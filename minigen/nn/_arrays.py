"""Small array helpers shared by layers, losses, distributions and optimizers.

They make new arrays *like* an existing one: the same dtype, on the same device.  Going through the
existing array (rather than through the current backend) keeps a model that lives on the GPU on the GPU
even while ``mg.get_backend()`` says "numpy".

One subtlety: ``mg.backend.of(array)`` answers the same backend object for both array-api-strict devices
(the test suite's stand-ins for a GPU), so an array it makes may land on the other strict device.
:func:`_on_device_of` moves it over; on NumPy and CuPy the devices always agree and nothing happens.
"""

from .. import backend as B
from ..autograd import Tensor, as_tensor

__all__ = ["fresh_like", "standard_normal_like", "uniform_like", "tensor_like", "host_scalar"]


def _on_device_of(array, like):
    """``array`` on ``like``'s device (``to_device`` is the array API standard's way to move)."""
    device = getattr(like, "device", None)
    if getattr(array, "device", None) != device:
        array = array.to_device(device)
    return array


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
    array = owner.copy(owner.asarray(data, dtype=like.dtype))
    return _on_device_of(array, like)


def standard_normal_like(shape, like):
    """N(0, 1) numbers of ``shape`` from the backend's seeded generator, in ``like``'s dtype and device."""
    owner = B.of(like)
    return _on_device_of(owner.standard_normal(tuple(shape), like.dtype), like)


def uniform_like(shape, like):
    """U[0, 1) numbers of ``shape`` from the backend's seeded generator, in ``like``'s dtype and device."""
    owner = B.of(like)
    return _on_device_of(owner.uniform(tuple(shape), like.dtype), like)


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

"""The two *strict* backends of the test suite: array-api-strict on a device other than the CPU.

array-api-strict refuses exactly the mistakes that would only show up on a GPU: a NumPy array or
NumPy scalar mixed into device arrays, an implicit conversion to a host array, a NumPy-only
function or method, booleans in arithmetic.  Its ``no_float64`` device ("strict-float32") also
refuses any float64 array, so a silent float32 -> float64 promotion fails loudly.  So the CPU test
suite keeps minigen's GPU path honest without a GPU.

They are backends like the others (``mg.set_backend("strict")``); ``backend.py`` loads this module
the first time one is asked for.  Like ``backend.py`` it may import array libraries: NumPy holds the
data inside a strict array, and scatter-add (the backward of indexing) runs on it.
"""

import numpy

from .backend import BackendError, _Backend, dtype_name

__all__ = ["STRICT_BACKENDS"]


class _StrictBackend(_Backend):
    """array-api-strict on a device other than the CPU: a stand-in for a GPU in the CPU test
    suite."""

    name = "strict"
    device = "strict"
    device_name = "device1"
    shares_array_type = True  # with strict-float32: the same class on another device

    def __init__(self, seed=None):
        try:
            import array_api_strict
        except ImportError:
            raise BackendError(
                f"the '{self.name}' backend needs array-api-strict: pip install \"minigen[dev]\""
            ) from None
        self.xp = array_api_strict
        self.array_type = array_api_strict._array_object.Array
        self.strict_device = array_api_strict.Device(self.device_name)
        super().__init__(seed)

    def asarray(self, data, dtype=None):
        if isinstance(data, self.array_type):
            if dtype is None or data.dtype == dtype:
                return data
            return self.xp.astype(data, dtype)
        host = numpy.asarray(data, dtype=None if dtype is None else dtype_name(dtype))
        return self.xp.asarray(host, device=self.strict_device)

    def to_numpy(self, array):
        # The one sanctioned way off the "device": strict arrays keep a NumPy array inside.
        return numpy.array(array._array)

    def constant(self, value, like, dtype=None):
        return self.xp.asarray(value, dtype=like.dtype if dtype is None else dtype,
                               device=like.device)

    def zeros(self, shape, like):
        return self.xp.zeros(shape, dtype=like.dtype, device=like.device)

    def full(self, shape, value, dtype):
        return self.xp.full(shape, value, dtype=dtype, device=self.strict_device)

    def arange(self, n):
        return self.xp.arange(n, device=self.strict_device)

    def copy(self, array):
        return self.xp.asarray(array, copy=True)

    def scatter_add(self, target, index, values):
        if isinstance(index, tuple):
            index = tuple(i._array if isinstance(i, self.array_type) else i for i in index)
        elif isinstance(index, self.array_type):
            index = index._array
        numpy.add.at(target._array, index, values._array)


class _StrictFloat32Backend(_StrictBackend):
    """array-api-strict's ``no_float64`` device: any float64 array is an error."""

    name = "strict-float32"
    device_name = "no_float64"


STRICT_BACKENDS = {"strict": _StrictBackend, "strict-float32": _StrictFloat32Backend}

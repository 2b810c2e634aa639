"""The two *strict* backends of the test suite: array-api-strict on a device other than the CPU.

array-api-strict refuses exactly the mistakes that would only show up on a GPU: a NumPy array or
NumPy scalar mixed into device arrays, an implicit conversion to a host array, a NumPy-only function
or method, booleans in arithmetic.  Its ``no_float64`` device ("strict-float32") also refuses any
float64 array, so a silent float32 -> float64 promotion fails loudly.  So the CPU test suite keeps
minigen's GPU path honest without a GPU.

They are backends like the others (``mg.set_backend("strict")``); :mod:`minigen.backend` loads this
module the first time one is asked for.  This module imports no array library itself: it asks
``backend.import_library`` for array-api-strict, and leaves every host-side step (turning host data
into an array, adding repeated indices up) to the NumPy backend, on the NumPy array that each
strict array keeps inside.
"""

from . import backend as B

__all__ = ["StrictBackend", "StrictFloat32Backend", "STRICT_BACKENDS"]


class StrictBackend(B.Backend):
    """array-api-strict on a device other than the CPU: a stand-in for a GPU in the CPU test
    suite."""

    name = "strict"
    device = "strict"
    device_name = "device1"
    shares_array_type = True    # with strict-float32: one array class, told apart by its device
    _by_device = {}             # array-api-strict Device -> the backend made for it

    def __init__(self, seed=None):
        self.xp = B.import_library(
            "array_api_strict",
            f"the '{self.name}' backend needs array-api-strict: pip install \"minigen[dev]\"")
        self.array_type = self.xp._array_object.Array
        self.strict_device = self.xp.Device(self.device_name)
        self.host = B.instance("numpy")
        StrictBackend._by_device[self.strict_device] = self
        super().__init__(seed)

    # --- randomness: drawn on the host in float64 (array-api-strict has no generator), then moved -
    def reseed(self, seed):
        self.rng = B.host_generator(seed)

    def standard_normal(self, shape, dtype):
        return self.asarray(self.rng.standard_normal(shape), dtype=dtype)

    def uniform(self, shape, dtype, low=0.0, high=1.0):
        return self.asarray(self.rng.uniform(low, high, size=shape), dtype=dtype)

    def owner_of(self, array):
        """The strict backend whose device holds ``array``."""
        return self._by_device.get(array.device, self)

    def asarray(self, data, dtype=None):
        if isinstance(data, self.array_type):
            if dtype is None or data.dtype == dtype:
                return data
            return self.xp.astype(data, dtype)
        host = self.host.asarray(data, dtype=None if dtype is None else B.dtype_name(dtype))
        return self.xp.asarray(host, device=self.strict_device)

    def to_numpy(self, array):
        # The one sanctioned way off the "device": strict arrays keep a NumPy array inside.
        return self.host.copy(array._array)

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
        self.host.scatter_add(target._array, index, values._array)

    def windows(self, x, kernel, stride, dilation, out_size):
        # The portable form: kH*kW strided slices stacked (a copy; NumPy and CuPy make a view).
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_size
        rows = [self.xp.stack([x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                                 j * dw:j * dw + sw * (ow - 1) + 1:sw] for j in range(kw)], axis=2)
                for i in range(kh)]
        return self.xp.stack(rows, axis=2)


class StrictFloat32Backend(StrictBackend):
    """array-api-strict's ``no_float64`` device: any float64 array is an error."""

    name = "strict-float32"
    device_name = "no_float64"


STRICT_BACKENDS = {"strict": StrictBackend, "strict-float32": StrictFloat32Backend}

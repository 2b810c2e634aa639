"""The array backend: the one module of minigen that imports NumPy or CuPy.

Every op in minigen is written against an *array namespace* ``xp`` that follows the Python array API
standard (``xp.exp``, ``xp.sum(x, axis=...)``, ``xp.permute_dims``...).  Which namespace that is
depends on where the data lives:

==================== ========================================= ================= ===================
backend name         arrays                                    ``Tensor.device`` use
==================== ========================================= ================= ===================
``"numpy"``          ``numpy.ndarray``                         ``"cpu"``         the default
``"cupy"``           ``cupy.ndarray``                          ``"gpu"``         an NVIDIA GPU
``"strict"``         ``array_api_strict.Array`` on ``device1`` ``"strict"``      tests without a GPU
``"strict-float32"`` the same on its ``no_float64`` device     ``"strict"``      tests without a GPU
==================== ========================================= ================= ===================

The two *strict* backends exist for the test suite: `array-api-strict`
refuses exactly the mistakes that would only show up on a GPU, and its ``no_float64`` device refuses
any float64 array, so a silent float32 -> float64 promotion fails loudly.

The small set of things the array API standard does not have (random numbers, scatter-add for the
backward of indexing, sliding windows for convolutions, moving data between host and device) are
provided here, per backend.
"""

import contextlib
import os
import zipfile
import zlib

import numpy

from .io import BadFileError, atomic_write

__all__ = [
    "BackendError", "set_backend", "get_backend", "using_backend", "set_default_dtype",
    "get_default_dtype", "manual_seed", "available_backends", "synchronize", "set_num_threads",
    "free_cpus",
]

BACKENDS = ("numpy", "cupy", "strict", "strict-float32")
DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
               "float16", "float32", "float64")


class BackendError(RuntimeError):
    """A backend was asked for that cannot be used on this machine."""


# --------------------------------------------------------------------------------------------------
# The backends themselves.  Each knows its array type, its namespace, and the few non-standard
# helpers.
# --------------------------------------------------------------------------------------------------

class _Backend:
    name = "?"
    device = "?"          # what Tensor.device reports for arrays of this backend
    array_type = None     # the class of this backend's arrays
    shares_array_type = False

    def __init__(self, seed=None):
        self.reseed(seed)

    # --- conversion -----------------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """Host data (lists, scalars, NumPy arrays) or own arrays -> an array of this backend."""
        raise NotImplementedError

    def to_numpy(self, array):
        """A NumPy array holding ``array``'s values (a copy when the data is on a device)."""
        raise NotImplementedError

    def dtype(self, name):
        """The dtype object called ``name``; a TypeError naming it when minigen has no such
        dtype."""
        if name not in DTYPE_NAMES:
            raise TypeError(f"unknown dtype {name!r}; minigen's dtypes are "
                            f"{', '.join(DTYPE_NAMES)}")
        return getattr(self.xp, name)

    def constant(self, value, like, dtype=None):
        """A 0-d array holding the Python number ``value``, on ``like``'s device, in ``dtype``
        (``like``'s dtype by default)."""
        return self.xp.asarray(value, dtype=like.dtype if dtype is None else dtype)

    def zeros(self, shape, like):
        """Zeros of ``shape`` with ``like``'s dtype, on ``like``'s device."""
        return self.xp.zeros(shape, dtype=like.dtype)

    def full(self, shape, value, dtype):
        """An array of ``shape`` filled with ``value`` on this backend's device."""
        return self.xp.full(shape, value, dtype=dtype)

    def arange(self, n):
        """The integers 0, 1, ..., n - 1 (int64) on this backend's device."""
        return self.xp.arange(n)

    def copy(self, array):
        return array.copy()

    # --- randomness -------------------------------------------------------------------------------
    def reseed(self, seed):
        self.rng = numpy.random.default_rng(seed)

    def standard_normal(self, shape, dtype):
        return self.asarray(self.rng.standard_normal(shape, dtype=numpy.float64), dtype=dtype)

    def uniform(self, shape, dtype, low=0.0, high=1.0):
        return self.asarray(self.rng.uniform(low, high, size=shape), dtype=dtype)

    def permutation(self, n):
        return self.asarray(self.rng.permutation(n))

    # --- the backward of indexing -----------------------------------------------------------------
    def scatter_add(self, target, index, values):
        """``target[index] += values`` in place, adding repeated indices up (unlike ``+=``)."""
        raise NotImplementedError

    # --- convolutions -----------------------------------------------------------------------------
    def windows(self, x, kernel, stride, dilation, out_size):
        """The sliding (kH, kW) windows of a 4-D array ``x`` (A, B, H, W), as an array of shape
        (A, B, kH, kW, OH, OW) with ``[a, b, i, j, p, q] = x[a, b, p*sh + i*dh, q*sw + j*dw]``
        (``kernel``, ``stride``, ``dilation``, ``out_size`` are pairs; the windows must fit in x).

        This portable form (the strict test backends) stacks kH*kW strided slices: a copy.  NumPy
        and CuPy override it with a read-only view that only changes the strides: no copy at all.
        """
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_size
        rows = [self.xp.stack([x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                                 j * dw:j * dw + sw * (ow - 1) + 1:sw] for j in range(kw)], axis=2)
                for i in range(kh)]
        return self.xp.stack(rows, axis=2)


class _NativeGenerator:
    """Random numbers drawn on the device by the library's own Generator (NumPy's and CuPy's have
    the same methods, and both draw float32 directly, with no float64 intermediate)."""

    def standard_normal(self, shape, dtype):
        return self.rng.standard_normal(shape, dtype=dtype)

    def uniform(self, shape, dtype, low=0.0, high=1.0):
        out = self.rng.random(shape, dtype=dtype)
        if low != 0.0 or high != 1.0:
            out *= high - low
            out += low
        return out

    def permutation(self, n):
        return self.rng.permutation(n)


class _NumpyBackend(_NativeGenerator, _Backend):
    name = "numpy"
    device = "cpu"
    array_type = numpy.ndarray
    xp = numpy

    def asarray(self, data, dtype=None):
        return numpy.asarray(data, dtype=dtype)

    def to_numpy(self, array):
        return array

    def scatter_add(self, target, index, values):
        numpy.add.at(target, index, values)

    def windows(self, x, kernel, stride, dilation, out_size):
        return numpy.lib.stride_tricks.as_strided(
            x, _window_shape(x, kernel, out_size), _window_strides(x, stride, dilation),
            writeable=False)


class _CupyNamespace:
    """CuPy's root module with the few array-API names an older CuPy may lack filled in."""

    def __init__(self, cupy):
        self._cupy = cupy
        fallbacks = {
            "permute_dims": cupy.transpose,
            "concat": cupy.concatenate,
            "pow": cupy.power,
            "astype": lambda x, dtype, copy=True: x.astype(dtype, copy=copy),
            "matrix_transpose": lambda x: cupy.swapaxes(x, -1, -2),
        }
        for name, fallback in fallbacks.items():
            setattr(self, name, getattr(cupy, name, fallback))

    def __getattr__(self, name):
        return getattr(self._cupy, name)


class _CupyBackend(_NativeGenerator, _Backend):
    name = "cupy"
    device = "gpu"

    def __init__(self, seed=None):
        try:
            import cupy
        except ImportError as err:
            raise BackendError(
                "the 'cupy' backend needs CuPy, which is not installed here "
                f"({err}). Install it with: pip install \"minigen[cuda12]\" (CUDA 12) or "
                "pip install \"minigen[cuda13]\" (CUDA 13), then call mg.set_backend(\"cupy\") "
                "again."
            ) from None
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as err:  # CUDA raises its own error types; any of them means "no GPU here"
            raise BackendError(
                f"CuPy is installed but no CUDA device is usable ({type(err).__name__}: {err}). "
                "Check the NVIDIA driver (nvidia-smi) and that the CuPy package matches the CUDA "
                "version: pip install \"minigen[cuda12]\" or \"minigen[cuda13]\"."
            ) from None
        if count == 0:
            raise BackendError(
                "CuPy is installed but found no CUDA device. Run on a machine with an NVIDIA GPU, "
                "or stay on the CPU with mg.set_backend(\"numpy\")."
            )
        self.cupy = cupy
        self.array_type = cupy.ndarray
        self.xp = _CupyNamespace(cupy)
        super().__init__(seed)

    def asarray(self, data, dtype=None):
        return self.cupy.asarray(data, dtype=dtype)

    def to_numpy(self, array):
        return self.cupy.asnumpy(array)

    def reseed(self, seed):
        self.rng = self.cupy.random.default_rng(seed)

    def scatter_add(self, target, index, values):
        # ``cupy.add.at`` (CuPy >= 12) accumulates repeated indices, like NumPy's.
        self.cupy.add.at(target, index, values)

    def windows(self, x, kernel, stride, dilation, out_size):
        return self.cupy.lib.stride_tricks.as_strided(
            x, _window_shape(x, kernel, out_size), _window_strides(x, stride, dilation))


def _window_shape(x, kernel, out_size):
    return tuple(x.shape[:2]) + tuple(kernel) + tuple(out_size)


def _window_strides(x, stride, dilation):
    """Byte strides of the window view: moving one kernel step jumps ``dilation`` rows (columns),
    moving one output position jumps ``stride`` rows (columns)."""
    s0, s1, s2, s3 = x.strides
    return (s0, s1, dilation[0] * s2, dilation[1] * s3, stride[0] * s2, stride[1] * s3)


# The strict backends exist for the test suite: array-api-strict on a non-default device, which
# refuses exactly the mistakes (host arrays, NumPy scalars, float64) that would only break on a GPU.

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


_FACTORIES = {"numpy": _NumpyBackend, "cupy": _CupyBackend, "strict": _StrictBackend,
              "strict-float32": _StrictFloat32Backend}

# --------------------------------------------------------------------------------------------------
# Global state: the current backend, the default dtype, and a registry of the backends in use.
# --------------------------------------------------------------------------------------------------

_seed = None
_instances = {}          # name -> _Backend, created on first use
_by_array_type = {}      # array class -> _Backend (which backend owns an array)
_current = None
_default_dtype = "float32"


def _instance(name):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name not in _instances:
        backend = _FACTORIES[name](_seed)
        _instances[name] = backend
        # Both strict backends share one array class; the plain one answers for it.
        _by_array_type.setdefault(backend.array_type, backend)
    return _instances[name]


def set_backend(name):
    """Make ``name`` ("numpy", "cupy", "strict" or "strict-float32") the backend for new tensors.

    Tensors that exist keep their data where it is; move them with ``Tensor.to`` or ``Module.to``.
    Raises :class:`BackendError` (saying what to install) when the backend cannot be used here.
    """
    global _current
    _current = _instance(name)


def get_backend():
    """The name of the current backend."""
    return _current.name


@contextlib.contextmanager
def using_backend(name):
    """``with using_backend("cupy"): ...`` switches the backend for the block, then switches
    back."""
    global _current
    previous = _current
    set_backend(name)
    try:
        yield
    finally:
        _current = previous


def synchronize():
    """Wait until the current device has finished its queued work (a no-op on the CPU).

    GPU calls return as soon as the work is queued; time GPU code by synchronising before reading
    the clock on both sides."""
    if _current.name == "cupy":
        _current.cupy.cuda.Device().synchronize()


_thread_limit = None


def set_num_threads(n):
    """Limit the CPU's BLAS library (OpenBLAS, MKL) to ``n`` threads, or lift the limit with None.

    More threads make large matrix products faster on idle cores, but BLAS threads that spin while
    waiting for a core another program holds can make them many times slower.  ``free_cpus()``
    is the number the command line and the tests use unless told otherwise (the README's
    Performance section has the measurements).
    """
    global _thread_limit
    # the maintained way to reach every BLAS at run time
    from threadpoolctl import threadpool_limits

    if _thread_limit is not None:
        _thread_limit.restore_original_limits()
        _thread_limit = None
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"set_num_threads: n must be at least 1 (or None), not {n}")
        _thread_limit = threadpool_limits(limits=int(n), user_api="blas")


def free_cpus():
    """The CPUs this process may use that other work does not keep busy now: the CPUs available
    minus the 1-minute load average, at least 1 (all of them on an idle machine, one on a busy
    one)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):         # no load average on this system: trust the cores
        busy = 0.0
    return max(1, min(cpus, int(cpus - busy + 0.5)))


def available_backends():
    """The backends that can be used on this machine (tries each one)."""
    names = []
    for name in BACKENDS:
        try:
            _instance(name)
        except BackendError:
            continue
        names.append(name)
    return names


def set_default_dtype(dtype):
    """Set the floating dtype of new tensors made from Python numbers: "float32" (default) or
    "float64"."""
    global _default_dtype
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.rsplit(".", 1)[-1]
    if name not in ("float32", "float64"):
        raise ValueError(f"default dtype must be 'float32' or 'float64', not {dtype!r}")
    _default_dtype = name


def get_default_dtype():
    """The name of the default floating dtype ("float32" or "float64")."""
    return _default_dtype


def manual_seed(seed):
    """Seed the random generator of every backend (those in use now and those created later)."""
    global _seed
    _seed = int(seed)
    for backend in _instances.values():
        backend.reseed(_seed)


# --------------------------------------------------------------------------------------------------
# Fused GPU kernels (minigen.kernels defines them; CuPy compiles them)
# --------------------------------------------------------------------------------------------------

class ElementwiseKernel:
    """A CUDA elementwise kernel in CuPy's notation, compiled on its first call (so that defining
    one needs no GPU).  ``in_params``/``out_params`` declare the arguments ("T x, T y"; T is bound
    by the arrays' dtype, Python floats are cast to it), ``body`` is the CUDA code run per element;
    outputs passed in are updated in place.  Call it with CuPy arrays only: the CPU has its own code
    path.
    """

    def __init__(self, in_params, out_params, body, name):
        self.in_params, self.out_params, self.body, self.name = in_params, out_params, body, name
        self._kernel = None

    def __call__(self, *args):
        if self._kernel is None:
            import cupy
            self._kernel = cupy.ElementwiseKernel(self.in_params, self.out_params, self.body,
                                                  self.name)
        return self._kernel(*args)


# --------------------------------------------------------------------------------------------------
# Helpers the rest of minigen uses (internal API).
# --------------------------------------------------------------------------------------------------

def current():
    """The current backend object."""
    return _current


def of(array):
    """The backend that owns ``array``, or None when it is not an array of any backend in use."""
    owner = _by_array_type.get(type(array))
    # the two strict backends: tell them by device
    if owner is not None and owner.shares_array_type:
        for name in ("strict", "strict-float32"):
            candidate = _instances.get(name)
            if candidate is not None and candidate.strict_device == array.device:
                return candidate
    return owner


def namespace(array):
    """The array namespace (``xp``) for ``array``."""
    return _by_array_type[type(array)].xp


def is_array(obj):
    return type(obj) in _by_array_type


def ensure_array(obj):
    """NumPy returns NumPy scalars from operations on 0-d arrays; turn those back into 0-d
    arrays."""
    if type(obj) in _by_array_type:
        return obj
    if isinstance(obj, numpy.generic):
        return numpy.asarray(obj)
    raise TypeError(f"expected an array of a backend, got {type(obj).__name__}")


def owns_memory(array):
    """True when ``array`` is no view of another array (so writing into it changes nothing else).
    The strict backends answer False: their arrays hide that, and copying is always safe."""
    # NumPy and CuPy arrays have .base; strict ones not
    return getattr(array, "base", False) is None


def is_host_array(obj):
    """True for NumPy arrays and NumPy scalars: host data that must be converted before use."""
    return isinstance(obj, (numpy.ndarray, numpy.generic))


def as_number(obj):
    """A NumPy scalar (``numpy.int64(3)``, ``numpy.bool_(True)``) as the Python number it holds,
    so that it promotes as a Python number does; anything else as it is."""
    return obj.item() if isinstance(obj, numpy.generic) and obj.dtype.kind in "biuf" else obj


def default_dtype(array_backend=None):
    """The default floating dtype as a dtype object of ``array_backend`` (the current one by
    default)."""
    return (array_backend or _current).dtype(_default_dtype)


_DTYPE_NAMES = {}


def dtype_name(dtype):
    """'float32', 'int64', 'bool'... for a dtype of any backend (remembered: NumPy builds the name
    anew on every ``dtype.name``, a few microseconds that add up over a training step)."""
    # the type first: NumPy's and array-api-strict's dtypes never compare
    key = (type(dtype), dtype)
    name = _DTYPE_NAMES.get(key)
    if name is None:
        name = getattr(dtype, "name", None)
        if name is None and isinstance(dtype, type) and issubclass(dtype, numpy.generic):
            name = numpy.dtype(dtype).name          # numpy.float32, the scalar type
        if name is None:  # array_api_strict dtypes
            name = str(dtype).rsplit(".", 1)[-1]
        _DTYPE_NAMES[key] = name
    return name


def host_dtype_name(data):
    """The dtype a tensor made from host data gets: NumPy arrays keep theirs; Python floats get the
    default dtype, ints int64, bools bool.  Anything that is not numbers raises TypeError."""
    if isinstance(data, (numpy.ndarray, numpy.generic)):
        kind = data.dtype.kind
        name = data.dtype.name
    else:
        if isinstance(data, (str, bytes)) or data is None:
            raise TypeError(f"Tensor: data must be numbers or an array, not {type(data).__name__}")
        try:
            probe = numpy.asarray(data)
        except (ValueError, TypeError) as err:
            raise TypeError(f"Tensor: cannot make a tensor from this {type(data).__name__}: "
                            f"{err}") from None
        kind = probe.dtype.kind
        name = {"b": "bool", "i": "int64", "u": "int64", "f": _default_dtype}.get(kind, "")
    if not kind or kind not in "biuf" or not name:
        raise TypeError(f"Tensor: data must be numbers, got {type(data).__name__} of dtype "
                        f"{numpy.asarray(data).dtype}")
    return name


def is_floating(dtype):
    return dtype_name(dtype) in ("float16", "float32", "float64")


_KIND_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}


def name_category(name):
    """0 for "bool", 1 for integer dtype names, 2 for floating ones: the categories of type
    promotion (bool < integer < floating)."""
    return 2 if name[0] == "f" else 0 if name == "bool" else 1


def category(dtype):
    """``name_category`` of a dtype object.  NumPy's and CuPy's dtypes carry a one-letter ``kind``
    (read first: this runs for many ops)."""
    kind = getattr(dtype, "kind", None)
    if kind is None:                                  # array-api-strict's dtypes
        return name_category(dtype_name(dtype))
    return _KIND_CATEGORY[kind]


def host_generator(seed=None):
    """A NumPy random Generator of its own, for host-side work such as making a data set or
    shuffling (it leaves the backends' generators and NumPy's global one alone)."""
    return numpy.random.default_rng(seed)


def host_uint8(buffer, offset, shape):
    """Bytes ``buffer[offset:]`` as a read-only NumPy uint8 array of ``shape`` (IDX file bodies)."""
    return numpy.frombuffer(buffer, dtype=numpy.uint8, offset=offset).reshape(shape)


def seeded_normal(shape, seed):
    """Standard normal numbers on the host from their own generator (leaves the global one
    alone)."""
    return numpy.random.default_rng(seed).standard_normal(shape)


def to_backend(array, name):
    """Copy ``array`` to the backend called ``name`` (through the host)."""
    target = _instance(name)
    source = of(array)
    if source is target:
        return array
    return target.asarray(source.to_numpy(array) if source is not None else array)


def _backend_from_environment():
    """Start on the backend that ``MINIGEN_BACKEND`` names (NumPy when it is unset or empty).

    A name that cannot be used here must not make ``import minigen`` fail with a traceback: NumPy is
    used instead, with a warning, and the reason is kept in :data:`ENVIRONMENT_ERROR` (the command
    line reports it as an error unless ``--backend`` chooses a backend itself)."""
    global ENVIRONMENT_ERROR
    name = os.environ.get("MINIGEN_BACKEND", "") or "numpy"
    try:
        set_backend(name)
    except (BackendError, ValueError) as err:
        ENVIRONMENT_ERROR = f"MINIGEN_BACKEND={name!r} cannot be used: {err}"
        set_backend("numpy")
        # ``python -m minigen`` (sys.argv[0] is "-m" while Python looks for the module) and the
        # ``minigen`` script report it as their error; anyone else gets a warning now
        import sys
        if sys.argv[:1] != ["-m"] and os.path.basename(sys.argv[0] if sys.argv
                                                       else "") != "minigen":
            import warnings
            warnings.warn(ENVIRONMENT_ERROR + "; using numpy", RuntimeWarning, stacklevel=3)


ENVIRONMENT_ERROR = None   # why MINIGEN_BACKEND could not be used, or None
_backend_from_environment()


# DLPack device types (dlpack.h): where the memory of an exchanged array lives
_DLPACK_CPU = (1, 3)          # kDLCPU, kDLCUDAHost (pinned host memory, readable by the CPU)
_DLPACK_CUDA = (2, 13)        # kDLCUDA, kDLCUDAManaged


def from_dlpack(obj):
    """An array of the backend that owns ``obj``'s memory, sharing it (zero copy): NumPy for memory
    on the CPU, CuPy for memory on an NVIDIA GPU.  ``obj`` is anything with ``__dlpack__`` and
    ``__dlpack_device__`` (a PyTorch, CuPy or JAX array, a NumPy array, a minigen Tensor)."""
    if not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: a {type(obj).__name__} does not support DLPack (it has no "
                        "__dlpack__/__dlpack_device__); convert it to a NumPy array first")
    device_type, _ = obj.__dlpack_device__()
    if device_type in _DLPACK_CPU:
        return _instance("numpy").xp.from_dlpack(obj)
    if device_type in _DLPACK_CUDA:
        return _instance("cupy").cupy.from_dlpack(obj)
    raise ValueError(f"from_dlpack: memory on DLPack device type {int(device_type)} is neither the "
                     "CPU nor a CUDA GPU; minigen's backends cannot hold it (move it to the CPU "
                     "first)")


# --------------------------------------------------------------------------------------------------
# Files: arrays to and from .npz, safely.
# --------------------------------------------------------------------------------------------------

def save_arrays(path, arrays, fsync=True):
    """Write ``{name: array}`` to ``path`` as .npz, atomically (:func:`minigen.io.atomic_write`,
    which says what ``fsync`` does): a crash mid-write never leaves a half-written file where a good
    one was."""
    host = {}
    for name, array in arrays.items():
        owner = of(array)
        host[name] = owner.to_numpy(array) if owner is not None else numpy.asarray(array)
    with atomic_write(path, fsync=fsync) as f:
        numpy.savez(f, **host)


# a zip archive's first bytes (an empty one: the second)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def load_arrays(path):
    """Read a .npz written by :func:`save_arrays` into ``{name: NumPy array}``.

    Pickled objects are refused (``allow_pickle=False``): loading a file from a stranger cannot run
    code. A file that is not an .npz of plain arrays (truncated, random bytes, a pickle, object
    arrays) raises :class:`minigen.io.BadFileError` naming the file; a missing or unreadable one the
    ``OSError``.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head not in _ZIP_MAGIC:
        raise BadFileError(f"{path} is not a minigen checkpoint: not an .npz archive of arrays")
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ValueError as err:
        if "pickle" in str(err):        # object arrays: refused, and no advice to load them anyway
            raise BadFileError(f"{path} is not a minigen checkpoint: it holds Python objects, not "
                               "plain arrays (refused: loading them could run code)") from None
        raise BadFileError(f"{path} is not a minigen checkpoint of plain arrays ({err})") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, KeyError, OSError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise
        raise BadFileError(f"{path} is damaged (truncated or not a complete .npz archive: "
                           f"{err})") from None

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

The GPU backend lives in ``backend_cupy.py`` and the two *strict* backends of the test suite in
``backend_strict.py`` (array-api-strict refuses exactly the mistakes that would only show up on a
GPU); both get their array library through :func:`import_library`, so this module stays the only
one that imports an array library.  ``threads.py`` holds the BLAS thread count, ``io.py`` the
.npz files and ``dtypes.py`` the dtype names and the default dtype (``set_num_threads``,
``get_num_threads``, ``free_cpus``, ``save_arrays``, ``load_arrays``, ``set_default_dtype``,
``get_default_dtype``, ``using_default_dtype`` are re-exported).

The small set of things the array API standard does not have (random numbers, scatter-add for the
backward of indexing, sliding windows for convolutions, moving data between host and device) are
provided here, per backend.
"""

import contextlib
import importlib
import os

import numpy

from .dtypes import (DTYPE_NAMES, KIND_CATEGORY, get_default_dtype,  # noqa: F401 (re-exported)
                     name_category, set_default_dtype, using_default_dtype)
from .io import load_arrays, save_arrays  # noqa: F401 (part of this module's API)
from .threads import free_cpus, get_num_threads, set_num_threads  # noqa: F401

__all__ = [
    "BackendError", "set_backend", "get_backend", "using_backend", "set_default_dtype",
    "get_default_dtype", "using_default_dtype", "manual_seed", "available_backends", "synchronize",
    "set_num_threads", "get_num_threads", "free_cpus",
]

BACKENDS = ("numpy", "cupy", "strict", "strict-float32")


class BackendError(RuntimeError):
    """A backend was asked for that cannot be used on this machine."""


def import_library(name, advice):
    """Import the array library called ``name`` (``"cupy"``, ``"array_api_strict"``): the one place
    where minigen imports an array library other than NumPy, so that the rule "only backend.py
    imports array libraries" also holds for the backends kept in their own module.  When it is
    missing, raises :class:`BackendError` with ``advice`` (``{err}`` in it: the import error)."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise BackendError(advice.format(err=err)) from None


# --------------------------------------------------------------------------------------------------
# The backends.  Each knows its array type and namespace, and supplies what the array API standard
# does not have.  NumPy and CuPy share one API, so this base class is the code of both (the library
# is ``self.xp``); backend_cupy.py and backend_strict.py override what differs for theirs.
# --------------------------------------------------------------------------------------------------

class Backend:
    """One array library behind minigen's ops: its namespace ``xp``, its array type, what
    ``Tensor.device`` says for its arrays, and the helpers below (the code NumPy and CuPy share)."""

    name = "?"
    device = "?"          # what Tensor.device reports for arrays of this backend
    array_type = None     # the class of this backend's arrays
    shares_array_type = False

    def __init__(self, seed=None):
        self.reseed(seed)

    # --- conversion -----------------------------------------------------------------------------
    def asarray(self, data, dtype=None):
        """Host data (lists, scalars, NumPy arrays) or own arrays -> an array of this backend."""
        return self.xp.asarray(data, dtype=dtype)

    def to_numpy(self, array):
        """A NumPy array holding ``array``'s values (a copy when the data is on a device)."""
        return array

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

    # --- randomness: the library's own Generator, drawing on the device (float32 directly) -------
    def reseed(self, seed):
        self.rng = self.xp.random.default_rng(seed)

    def standard_normal(self, shape, dtype):
        return self.rng.standard_normal(shape, dtype=dtype)

    def uniform(self, shape, dtype, low=0.0, high=1.0):
        out = self.rng.random(shape, dtype=dtype)
        if low != 0.0 or high != 1.0:
            out *= high - low
            out += low
        return out

    # --- the backward of indexing -----------------------------------------------------------------
    def scatter_add(self, target, index, values):
        """``target[index] += values`` in place, adding repeated indices up (unlike ``+=``)."""
        self.xp.add.at(target, index, values)          # NumPy's, and CuPy's from version 12

    # --- convolutions -----------------------------------------------------------------------------
    def windows(self, x, kernel, stride, dilation, out_size):
        """The sliding (kH, kW) windows of a 4-D array ``x`` (A, B, H, W), as an array of shape
        (A, B, kH, kW, OH, OW) with ``[a, b, i, j, p, q] = x[a, b, p*sh + i*dh, q*sw + j*dw]``
        (``kernel``, ``stride``, ``dilation``, ``out_size`` are pairs; the windows must fit in x).

        A read-only view that only changes the strides: no copy at all."""
        return numpy.lib.stride_tricks.as_strided(
            x, *window_layout(x, kernel, stride, dilation, out_size), writeable=False)

    # --- timing -----------------------------------------------------------------------------------
    def synchronize(self):
        """Wait for the device's queued work (the CPU has none)."""


def window_layout(x, kernel, stride, dilation, out_size):
    """Shape and byte strides of the window view of ``x``: moving one kernel step jumps
    ``dilation`` rows (columns), moving one output position jumps ``stride`` rows (columns)."""
    s0, s1, s2, s3 = x.strides
    shape = tuple(x.shape[:2]) + tuple(kernel) + tuple(out_size)
    return shape, (s0, s1, dilation[0] * s2, dilation[1] * s3, stride[0] * s2, stride[1] * s3)


class _NumpyBackend(Backend):
    name = "numpy"
    device = "cpu"
    array_type = numpy.ndarray
    xp = numpy


def _factory(name):
    """The class of the backend called ``name``; the GPU and test backends live in modules of their
    own, loaded the first time they are asked for."""
    if name == "numpy":
        return _NumpyBackend
    if name == "cupy":
        return backend_cupy.CupyBackend
    from .backend_strict import STRICT_BACKENDS
    return STRICT_BACKENDS[name]


# --------------------------------------------------------------------------------------------------
# Global state: the current backend and a registry of the backends in use (the default dtype
# is in dtypes.py).
# --------------------------------------------------------------------------------------------------

_seed = None
_instances = {}          # name -> Backend, created on first use
_by_array_type = {}      # array class -> Backend (which backend owns an array)
_current = None


def instance(name):
    """The backend object called ``name``, created (and seeded) on first use."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name not in _instances:
        backend = _factory(name)(_seed)
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
    _current = instance(name)


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
    _current.synchronize()


def available_backends():
    """The backends that can be used on this machine (tries each one)."""
    names = []
    for name in BACKENDS:
        try:
            instance(name)
        except BackendError:
            continue
        names.append(name)
    return names


def manual_seed(seed):
    """Seed the random generator of every backend (those in use now and those created later)."""
    global _seed
    _seed = int(seed)
    for backend in _instances.values():
        backend.reseed(_seed)


# --------------------------------------------------------------------------------------------------
# Helpers the rest of minigen uses (internal API).
# --------------------------------------------------------------------------------------------------

def current():
    """The current backend object."""
    return _current


def of(array):
    """The backend that owns ``array``, or None when it is not an array of any backend in use."""
    owner = _by_array_type.get(type(array))
    if owner is not None and owner.shares_array_type:
        return owner.owner_of(array)    # the strict backends: one array class on two devices
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
        name = {"b": "bool", "i": "int64", "u": "int64", "f": get_default_dtype()}.get(kind, "")
    if not kind or kind not in "biuf" or not name:
        raise TypeError(f"Tensor: data must be numbers, got {type(data).__name__} of dtype "
                        f"{numpy.asarray(data).dtype}")
    return name


def is_floating(dtype):
    return dtype_name(dtype) in ("float16", "float32", "float64")


def category(dtype):
    """The promotion category of a dtype object (``dtypes.name_category``).  NumPy's and CuPy's
    dtypes carry a one-letter ``kind`` (read first: this runs for many ops)."""
    kind = getattr(dtype, "kind", None)
    if kind is None:                                  # array-api-strict's dtypes
        return name_category(dtype_name(dtype))
    return KIND_CATEGORY[kind]


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
    target = instance(name)
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


# --------------------------------------------------------------------------------------------------
# NumPy's .npz format (io.save_arrays and io.load_arrays make the files safe; re-exported here)
# --------------------------------------------------------------------------------------------------

def write_npz(file, arrays):
    """Write ``{name: array}`` (arrays of any backend, copied to the host, or host data) into the
    open binary ``file`` in NumPy's .npz format."""
    host = {}
    for name, array in arrays.items():
        owner = of(array)
        host[name] = owner.to_numpy(array) if owner is not None else numpy.asarray(array)
    numpy.savez(file, **host)


def read_npz(path):
    """``{name: NumPy array}`` from the .npz file at ``path``.  Pickled objects are refused
    (``allow_pickle=False``): loading a file from a stranger cannot run code."""
    with numpy.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


# The GPU backend's module (it needs Backend, defined above); importing it imports no CuPy.
from . import backend_cupy  # noqa: E402
from .backend_cupy import ElementwiseKernel  # noqa: E402, F401 (kernels.py defines CUDA kernels)

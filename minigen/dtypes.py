"""Dtypes by name: minigen's dtypes, the default floating dtype, and the categories of promotion.

The dtype *objects* belong to the backends (``numpy.float32``, array-api-strict's ``float32``...;
``Backend.dtype(name)`` gives one).  What every backend shares is here, in plain Python, by name:

* the names of the dtypes minigen knows;
* the default floating dtype: what a tensor made from Python floats gets (``"float32"`` unless
  :func:`set_default_dtype` or :func:`using_default_dtype` says otherwise, as in PyTorch);
* the three categories of type promotion, bool < integer < floating: an operation between two
  categories gives the higher one, and a Python number only counts by its category (PyTorch's
  rule; the promotion itself is ``autograd.result_dtype``).
"""

import contextlib

DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
               "float16", "float32", "float64")

_default_dtype = "float32"


def set_default_dtype(dtype):
    """Set the floating dtype of new tensors made from Python numbers: "float32" (default) or
    "float64" (a name, or a dtype object of any backend)."""
    global _default_dtype
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.rsplit(".", 1)[-1]
    if name not in ("float32", "float64"):
        raise ValueError(f"default dtype must be 'float32' or 'float64', not {dtype!r}")
    _default_dtype = name


def get_default_dtype():
    """The name of the default floating dtype ("float32" or "float64")."""
    return _default_dtype


@contextlib.contextmanager
def using_default_dtype(dtype):
    """``with using_default_dtype("float64"): ...`` sets the default dtype for the block, then sets
    the previous one back (also when the block raises)."""
    previous = _default_dtype
    set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(previous)


# dtype.kind of NumPy and CuPy dtypes (one letter) -> category
KIND_CATEGORY = {"b": 0, "i": 1, "u": 1, "f": 2}


def name_category(name):
    """0 for "bool", 1 for integer dtype names, 2 for floating ones."""
    return 2 if name[0] == "f" else 0 if name == "bool" else 1

"""Tensors, differentiable functions and reverse-mode automatic differentiation.

A :class:`Tensor` wraps a backend array (``t.data``).  Every operation on tensors is a
:class:`Function`: its ``forward`` computes the result from plain arrays, and when any input
requires a gradient the result remembers the function that made it (``t.creator``), which remembers
its inputs.  That is the graph.

``loss.backward()`` walks the graph from ``loss`` back to the leaves in reverse topological order,
asking each function for the gradients of its inputs given the gradient of its output (the chain
rule):

    dL/dx = backward(dL/dy)      for y = f(x)

Backward rules are written with minigen's own tensor operations, so when ``create_graph=True`` the
gradient computation is itself recorded, and gradients can be differentiated again (double backprop:
gradient penalties, Hessian-vector products).

Every gradient a backward rule returns is checked once, in :meth:`Function._input_grads`: one whose
shape was broadcast is summed down to its input's shape, one whose shape cannot come from the
input's by broadcasting is an error naming the op and both shapes, and one of another dtype is
converted to the input's dtype (so a leaf's ``.grad`` always has the leaf's dtype, as in PyTorch).
"""

import contextlib
import heapq
import itertools
import threading
import weakref

from . import backend as B

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "grad",
           "result_dtype", "mark_modified"]


class _GradMode(threading.local):
    """Whether operations are recorded, one flag per thread (as PyTorch's grad mode): ``no_grad`` in
    a data-loading thread does not stop another thread from training."""

    enabled = True          # the value every new thread starts with


_mode = _GradMode()


def is_grad_enabled():
    """True when operations are being recorded for autograd (in this thread)."""
    return _mode.enabled


@contextlib.contextmanager
def _grad_mode(enabled):
    previous, _mode.enabled = _mode.enabled, enabled
    try:
        yield
    finally:
        _mode.enabled = previous


def no_grad():
    """``with mg.no_grad(): ...`` runs the block without recording a graph (inference, updates).
    It affects the current thread only."""
    return _grad_mode(False)


def enable_grad():
    """``with mg.enable_grad(): ...`` records a graph even inside ``no_grad`` (this thread only)."""
    return _grad_mode(True)


# --------------------------------------------------------------------------------------------------
# In-place changes: a clock that every change moves on
# --------------------------------------------------------------------------------------------------

_changes = 0    # how many in-place changes minigen has made so far, to all tensors together
_sequence = itertools.count()   # numbers the recorded ops in the order they ran


def mark_modified(*tensors):
    """Record that the data of ``tensors`` was changed in place (an optimizer step, load_state_dict,
    Module.to): a later backward through an op that read them before the change raises RuntimeError.

    Each tensor's ``_version`` becomes the clock's new reading, and each recorded op keeps the
    reading at its forward; so an op's inputs changed since iff one's ``_version`` is above the op's
    reading. Recording costs an op one integer, and a backward step one comparison while nothing
    changed.
    """
    global _changes
    _changes += 1
    for t in tensors:
        t._version = _changes


# --------------------------------------------------------------------------------------------------
# Type promotion (PyTorch's rules; see the Tensor docstring)
# --------------------------------------------------------------------------------------------------

_category = B.name_category      # 0 bool, 1 integer, 2 floating: PyTorch's promotion categories


def _promote_names(names):
    """The smallest dtype that holds every dtype in ``names``, all of one category."""
    if len(set(names)) == 1:
        return names[0]
    if _category(names[0]) != 1:                   # floats (the widest) or bools
        return max(names, key=lambda n: int(n[5:]) if n != "bool" else 0)
    signed = [int(n[3:]) for n in names if n[0] == "i"]
    unsigned = [int(n[4:]) for n in names if n[0] == "u"]
    if not signed:
        return f"uint{max(unsigned)}"
    bits = max(signed)
    if unsigned and max(unsigned) >= bits:         # uint8 with int8 needs int16, as in PyTorch
        bits = min(2 * max(unsigned), 64)
    return f"int{bits}"


def _scalar_name(value):
    """The dtype a Python number stands for: bool, int64, or the default floating dtype."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    return B.get_default_dtype()


def result_dtype(*operands):
    """The dtype name of an op's result from Tensors and Python numbers, by PyTorch's rules.

    Operands fall in three groups: dimensioned tensors, 0-d tensors, Python numbers.  The result's
    category (bool < integer < floating) is the highest among all operands; its size comes from the
    first group holding an operand of that category, promoted within it.  So a 0-d tensor or a
    Python number never widens a tensor of its own category, but it does lift a lower category (an
    integer tensor times 0.5 is a float tensor of the default dtype, not float64).
    """
    groups = ([], [], [])
    for x in operands:
        if isinstance(x, Tensor):
            groups[0 if x.data.ndim else 1].append(B.dtype_name(x.data.dtype))
        else:
            groups[2].append(_scalar_name(x))
    top = max(_category(n) for group in groups for n in group)
    for group in groups:
        members = [n for n in group if _category(n) == top]
        if members:
            return _promote_names(members)


# --------------------------------------------------------------------------------------------------
# Tensor
# --------------------------------------------------------------------------------------------------

def _to_array(data, dtype):
    """Turn user data into an array of a backend (see Tensor for the rules)."""
    if isinstance(data, Tensor):
        data = data.data
    owner = B.of(data)
    if owner is not None and owner.device != "cpu":  # device arrays stay where they are
        if dtype is not None and B.dtype_name(data.dtype) != B.dtype_name(dtype):
            data = owner.xp.astype(data, owner.dtype(B.dtype_name(dtype)))
        return data
    # Host data (numbers, lists, NumPy arrays) goes to the current backend; a NumPy array of the
    # right dtype on the NumPy backend is used without a copy.
    owner = B.current()
    name = B.dtype_name(dtype) if dtype is not None else B.host_dtype_name(data)
    return owner.asarray(data, dtype=owner.dtype(name))


class Tensor:
    """An n-dimensional array that can record the operations applied to it.

    ``Tensor(data, requires_grad=False, dtype=None)``

    * ``data`` may be a Python number or (nested) list, a NumPy array, or a device array.  Host data
      (numbers, lists, NumPy arrays) goes to the current backend - without a copy when that is NumPy
      and the dtype is right; a device array (CuPy) stays on its device, also without a copy.
    * Python floats get the default dtype (``mg.set_default_dtype``; float32 unless changed), Python
      ints int64, Python bools bool.  Integer and boolean tensors are constants: they cannot require
      gradients. ``dtype`` is a name ("float32", "int64", "bool"...) or a dtype; anything else is a
      TypeError.
    * ``t.grad`` is None until a backward pass reaches ``t``; gradients then *accumulate* (``+=``)
      over backward passes until you reset them (``t.grad = None``, or ``Module.zero_grad()``).  A
      gradient always has its tensor's shape and dtype.

    **Type promotion** follows PyTorch, not NumPy, wherever an op meets two dtypes (arithmetic,
    ``matmul``, ``maximum``, ``where``'s two branches, ``concatenate``, ``stack``, comparisons):

    * categories are ordered bool < integer < floating; the result takes the highest category
      present;
    * Python numbers are *weak*: they never widen a tensor of their category (``float32_t * 2.5`` is
      float32, ``int32_t + 1`` int32), and a higher category gives the default dtype
      (``int_t * 0.5`` and ``bool_t + 1.5`` are float32 by default, ``bool_t + 1`` is int64);
    * a 0-d tensor does not widen a dimensioned one of its category (``float32 (n,) * float64 ()``
      is float32), but does lift a lower category (``int (n,) * float64 ()`` is float64);
    * true division and the floating functions (``exp``, ``log``, ``sqrt``, ``tanh``...) of integers
      give the default dtype;
    * between tensors of one group, the wider dtype wins (float32 with float64 is float64).

    ``mg.autograd.result_dtype(*operands)`` answers the rule for any operands.  The narrower input
    is converted by a differentiable ``astype``, so its gradient comes back in its own dtype.

    **In-place changes.**  minigen's own in-place changes to ``t.data`` (optimizer steps,
    ``Module.load_state_dict``, ``Module.to``, batch-norm statistics) are recorded by
    ``mg.autograd.mark_modified`` (``t._version`` is 0 until the first).  A backward through an op
    whose inputs changed since its forward raises RuntimeError, as PyTorch does: the gradient would
    silently use the new values.  Writing into ``t.data`` yourself is not recorded (call
    ``mark_modified(t)`` after it to be warned).

    ``np.asarray(t)`` gives the NumPy array of a CPU tensor without a copy; for a tensor on a device
    it is a TypeError (use ``t.numpy()``, which copies explicitly).  NumPy functions do not take
    Tensors (``__array_ufunc__ = None``): ``np.exp(t)`` is a TypeError, and ``ndarray * t`` calls
    Tensor's ``__rmul__``, so the result is a Tensor in the graph.
    """

    __slots__ = ("data", "grad", "requires_grad", "creator", "name", "_version", "__weakref__")
    # NumPy defers to Tensor in `ndarray * Tensor` and refuses np.exp(Tensor)
    __array_ufunc__ = None

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self.creator = None
        self.name = name
        self._version = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, array, requires_grad=False):
        """Fast internal constructor: ``array`` is already an array of a backend."""
        t = object.__new__(cls)
        t.data = array
        t.grad = None
        t.creator = None
        t.name = None
        t._version = 0
        t.requires_grad = requires_grad
        return t

    def requires_grad_(self, flag=True):
        if flag and not B.is_floating(self.data.dtype):
            raise TypeError(
                f"only floating-point tensors can require gradients; this one is "
                f"{B.dtype_name(self.data.dtype)} (integer and boolean tensors are constants)")
        self.requires_grad = bool(flag)
        return self

    # --- properties -------------------------------------------------------------------------------
    @property
    def shape(self):
        return tuple(self.data.shape)

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def size(self):
        n = 1
        for d in self.data.shape:
            n *= d
        return n

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        """"cpu" (NumPy), "gpu" (CuPy) or "strict" (array-api-strict, used by the tests)."""
        return B.of(self.data).device

    @property
    def is_leaf(self):
        return self.creator is None

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        """The sub-tensors along the first axis, ``t[0], t[1], ...``; a 0-d tensor is not iterable
        (indexing it would end the loop at once, silently)."""
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)``: the NumPy array of a CPU tensor (no copy unless asked); a TypeError
        for a tensor on a device, whose data must be copied to the host explicitly with
        ``t.numpy()``."""
        if B.of(self.data).name != "numpy":
            raise TypeError(
                f"cannot convert a tensor on {self.device} to a NumPy array implicitly; "
                "use tensor.numpy(), which copies it to the host")
        array = self.data
        if dtype is not None and array.dtype != dtype:
            return array.astype(dtype)
        return array.copy() if copy else array

    def __repr__(self):
        body = repr(self.numpy()).replace("array(", "tensor(", 1)
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        return body[:-1] + extra + ")" if body.endswith(")") else body

    # --- conversions ------------------------------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array (a copy when the data is on a device)."""
        return B.of(self.data).to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item: the tensor has {self.size} elements, not 1 (shape "
                             f"{self.shape})")
        return self.numpy().reshape(()).item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self):
        """A tensor sharing this one's data, cut from the graph (no gradient flows through it)."""
        return Tensor._wrap(self.data)

    def to(self, device):
        """This tensor on ``device`` ("cpu" or "gpu"); differentiable (the gradient moves back)."""
        target = _device_backend(device)
        if B.of(self.data).name == target:
            return self
        return _F.to_device(self, target)

    def astype(self, dtype):
        """A copy converted to ``dtype`` (a name like "float64" or a dtype); differentiable for
        floats."""
        return _F.astype(self, B.dtype_name(dtype) if not isinstance(dtype, str) else dtype)

    # --- DLPack: zero-copy exchange with PyTorch, CuPy, JAX, NumPy (see minigen.interop) ----------
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """Export the data through DLPack (``torch.from_dlpack(t)`` shares the memory).  As in
        PyTorch, a tensor that requires grad is refused with BufferError (the DLPack standard's
        "cannot export"): the other library could not see the graph; export ``t.detach()``."""
        if self.requires_grad:
            raise BufferError("__dlpack__: cannot export a tensor that requires grad (the gradient "
                               "would not follow it); export t.detach() instead")
        options = {"stream": stream, "max_version": max_version, "dl_device": dl_device,
                   "copy": copy}
        return self.data.__dlpack__(**{k: v for k, v in options.items() if v is not None})

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()

    # --- autograd ---------------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Compute the gradient of this tensor with respect to every leaf that requires one.

        The results are *added* to each leaf's ``.grad``.  ``grad`` is the upstream gradient
        (dL/dself); it may be omitted only when this tensor holds one element.  The graph is freed
        afterwards unless ``retain_graph=True`` (``create_graph=True`` implies it), so that memory
        is returned at once.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad, so there is nothing to "
                "differentiate; create its inputs with requires_grad=True (or use nn.Parameter)")
        grad = _initial_grad(self, grad, "backward")
        _backpropagate([self], [grad], retain_graph or create_graph, create_graph, targets=None)

    def zero_grad(self):
        self.grad = None

    # --- operators (the ops themselves live in functions.py) --------------------------------------
    def __add__(self, other): return _F.add(self, other)
    def __radd__(self, other): return _F.add(other, self)
    def __sub__(self, other): return _F.sub(self, other)
    def __rsub__(self, other): return _F.sub(other, self)
    def __mul__(self, other): return _F.mul(self, other)
    def __rmul__(self, other): return _F.mul(other, self)
    def __truediv__(self, other): return _F.div(self, other)
    def __rtruediv__(self, other): return _F.div(other, self)
    def __pow__(self, other): return _F.pow(self, other)
    def __rpow__(self, other): return _F.pow(other, self)
    def __matmul__(self, other): return _F.matmul(self, other)
    def __rmatmul__(self, other): return _F.matmul(other, self)
    def __neg__(self): return _F.neg(self)
    def __pos__(self): return self
    def __abs__(self): return _F.abs(self)
    def __getitem__(self, index): return _F.getitem(self, index)

    # Comparisons give boolean constant tensors (no gradient).
    def __lt__(self, other): return _F.compare(self, other, "less")
    def __le__(self, other): return _F.compare(self, other, "less_equal")
    def __gt__(self, other): return _F.compare(self, other, "greater")
    def __ge__(self, other): return _F.compare(self, other, "greater_equal")
    def __eq__(self, other):   # ``t == None`` is False, as in PyTorch (not an array of NaN tests)
        return False if other is None else _F.compare(self, other, "equal")

    def __ne__(self, other):
        return True if other is None else _F.compare(self, other, "not_equal")

    __hash__ = object.__hash__

    def __bool__(self):
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.size} elements is ambiguous; use "
                ".any()/.all()")
        return bool(self.item())

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def reshape(self, *shape):
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _F.reshape(self, shape)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _F.transpose(self, axes or None)

    @property
    def T(self):
        return _F.transpose(self, None)

    def flatten(self):
        return _F.reshape(self, (-1,))

    def sum(self, axis=None, keepdims=False): return _F.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return _F.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return _F.max(self, axis, keepdims)
    def exp(self): return _F.exp(self)
    def log(self): return _F.log(self)
    def sqrt(self): return _F.sqrt(self)
    def tanh(self): return _F.tanh(self)
    def sigmoid(self): return _F.sigmoid(self)
    def relu(self): return _F.relu(self)
    def softplus(self): return _F.softplus(self)
    def clip(self, low=None, high=None): return _F.clip(self, low, high)

    def any(self):
        xp = B.namespace(self.data)
        return bool(xp.any(self.data))

    def all(self):
        xp = B.namespace(self.data)
        return bool(xp.all(self.data))


def _device_backend(device):
    if device == "cpu":
        return "numpy"
    if device in ("gpu", "cuda"):
        return "cupy"
    if device in B.BACKENDS:
        return device
    raise ValueError(f"unknown device {device!r}; use 'cpu' or 'gpu'")


def as_tensor(value, like=None):
    """``value`` as a Tensor to be used with the Tensor ``like``: the one rule for turning values
    into tensors like another tensor.

    * a Tensor is returned as it is;
    * a Python number becomes a 0-d constant on ``like``'s device, in ``like``'s dtype unless the
      number is of a higher category (see Tensor: a float with an integer ``like`` gets the default
      floating dtype, an int with a boolean one int64);
    * anything else (a list, a NumPy array, another backend's array) is copied into ``like``'s dtype
      on ``like``'s device, so float64 NumPy data never silently turns a float32 model into float64,
      and the result never shares memory with ``value``;
    * without ``like``: ``Tensor(value)``.
    """
    if isinstance(value, Tensor):
        return value
    if like is None:
        return Tensor(value)
    owner = B.of(like.data)
    value = B.as_number(value)                     # NumPy scalars promote as Python numbers
    if isinstance(value, (bool, int, float)):
        name = _scalar_name(value)
        if _category(name) <= _category(B.dtype_name(like.data.dtype)):
            return Tensor._wrap(owner.constant(value, like.data))
        return Tensor._wrap(owner.constant(value, like.data, owner.dtype(name)))
    source = B.of(value)
    if source is not None and source is not owner:
        value = source.to_numpy(value)
    return Tensor._wrap(owner.copy(owner.asarray(value, dtype=like.data.dtype)))


def promote(*operands, float_result=False):
    """The operands (Tensors or Python numbers) as Tensors of one dtype, ``result_dtype``'s (or the
    default float dtype when ``float_result`` and that is not floating), on the first tensor's
    device. A tensor of another dtype goes through a differentiable ``astype``."""
    operands = [B.as_number(x) for x in operands]  # NumPy scalars promote as Python numbers
    like = next((x for x in operands if isinstance(x, Tensor)), None)
    if like is None:
        like = Tensor(operands[0])
    tensors = [x if isinstance(x, Tensor) or isinstance(x, (bool, int, float))
               else as_tensor(x, like)
               for x in operands]
    name = result_dtype(*tensors)
    if float_result and _category(name) != 2:
        name = B.get_default_dtype()
    owner = B.of(like.data)
    dtype = owner.dtype(name)
    out = []
    for x in tensors:
        if not isinstance(x, Tensor):
            x = Tensor._wrap(owner.constant(x, like.data, dtype))
        elif B.dtype_name(x.data.dtype) != name:
            x = _F.astype(x, name)
        out.append(x)
    return out


# --------------------------------------------------------------------------------------------------
# Function
# --------------------------------------------------------------------------------------------------

class Function:
    """A differentiable operation.  Subclass it and write ``forward`` and ``backward``:

    * ``forward(self, *arrays)`` gets backend arrays and returns one backend array.  It may keep
      what ``backward`` needs on ``self``.  Use ``xp = mg.backend.namespace(x)`` for array
      functions, so the same code runs on NumPy and CuPy.
    * ``backward(self, gy)`` gets the gradient of the output as a Tensor and returns the gradient of
      each input as a Tensor (a tuple when there are several inputs; None for an input with no
      gradient). Write it with tensor operations: then ``create_graph=True`` can differentiate it
      again. ``self.inputs`` holds the input tensors and ``self.output`` the output tensor.
    * optionally ``backward_arrays(self, gy)``: the same derivative on backend arrays (``gy`` an
      array; one array or None per input).  The graph walk calls it instead of ``backward`` when no
      graph is being built for the gradient (``create_graph=False``): it may save passes and
      allocations that recorded ops cannot.  Neither method reads the grad mode; the graph walk
      chooses.

    A gradient may have a broadcast shape; it is summed back to its input's shape for you.  A
    gradient whose shape cannot come from its input's by broadcasting is an error that names the op.

    An instance records one call: make a new one for each call (``Square()(a)``, ``Square()(b)``); a
    second call of an instance that holds a graph is a RuntimeError.  Inputs keep their dtypes
    unless the subclass sets ``promotes = True`` (minigen's arithmetic does): then they are first
    converted to the dtype of the promotion rules (see Tensor), and with ``float_result = True`` to
    a floating one.
    """

    inputs = None
    backward_arrays = None        # a subclass may define backward_arrays(self, gy) on arrays
    _output_ref = None
    _released = False
    promotes = False          # convert the inputs to one dtype by PyTorch's rules before forward
    float_result = False      # ... and to the default floating dtype when those give an integer one

    @property
    def name(self):
        return type(self).__name__.lower()

    def __call__(self, *inputs):
        if self.inputs is not None or self._released:
            raise RuntimeError(
                f"{self.name}: this {type(self).__name__} instance was already called and holds "
                f"its graph; create a new instance for each call ({type(self).__name__}(...)(x))")
        if not inputs:
            raise ValueError(f"{self.name}: needs at least one input")
        tensors = _as_input_tensors(inputs, self.promotes, self.float_result)
        arrays, needs_grad = [], False
        for t in tensors:
            arrays.append(t.data)
            if t.requires_grad:
                needs_grad = True
        array_type = type(arrays[0])
        for a in arrays:
            if type(a) is not array_type:
                self._device_error(tensors)
        try:
            out = self.forward(*arrays)
        except ValueError as err:
            raise ValueError(self._shape_message(tensors, err)) from err
        if type(out) is not array_type:
            out = B.ensure_array(out)  # NumPy gives scalars from 0-d ops: keep arrays
        needs_grad = needs_grad and _mode.enabled
        result = Tensor._wrap(out, needs_grad)
        if needs_grad:
            self.inputs = tensors
            self._seq = next(_sequence)          # creation order: the graph walk's schedule
            self._clock = _changes
            self._output_ref = weakref.ref(result)
            result.creator = self
        return result

    @property
    def output(self):
        return self._output_ref() if self._output_ref is not None else None

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, *arrays)")

    def backward(self, gy):
        raise NotImplementedError(f"{type(self).__name__} must define backward(self, gy)")

    def _input_grads(self, gy, arrays=False):
        """The gradients of the inputs, given the gradient ``gy`` of the output, each checked and
        brought to its input's shape and dtype: Tensors from ``backward`` (``gy`` a Tensor), or with
        ``arrays`` backend arrays (``gy`` an array) from ``backward_arrays`` - or from ``backward``
        on Tensors that wrap the arrays, for an op that has only that.

        The one check of every gradient the graph walk uses, whichever method made it: inputs
        changed in place since the forward are an error; a broadcast shape is summed down to the
        input's (undoing broadcasting), a shape that cannot come from broadcasting is a ValueError
        naming the op and both shapes; another dtype is converted to the input's; another device is
        an error. Inputs that need no gradient get None (their gradient is not even reduced).
        """
        if self._clock != _changes:          # something changed in place since this op's forward
            self._check_inputs_unchanged()
        if not arrays:
            return self._checked(self.backward(gy), "backward", True)
        if self.backward_arrays is not None:
            return self._checked(self.backward_arrays(gy), "backward_arrays", False)
        gxs = self._checked(self.backward(Tensor._wrap(gy)), "backward", True)
        return [None if gx is None else gx.data for gx in gxs]

    def _checked(self, gxs, method, tensors):
        """``_input_grads``' checks of what ``method`` returned (Tensors if ``tensors``, else
        arrays).  The usual gradient - the input's array type, shape and dtype object - passes one
        comparison of each; anything else goes to :meth:`_conformed`."""
        if type(gxs) is not tuple and not isinstance(gxs, (tuple, list)):
            gxs = (gxs,)
        inputs = self.inputs
        if len(gxs) != len(inputs):
            raise RuntimeError(
                f"{type(self).__name__}.{method} returned {len(gxs)} gradients for "
                f"{len(inputs)} inputs")
        result = []
        for i, (x, gx) in enumerate(zip(inputs, gxs)):
            if gx is None or not x.requires_grad:
                result.append(None)
                continue
            data = x.data
            g = gx.data if tensors and isinstance(gx, Tensor) else gx
            if type(g) is type(data) and g.shape == data.shape and g.dtype is data.dtype \
                    and (not tensors or g is not gx):
                result.append(gx)
            else:
                result.append(self._unusual(i, gx, method, tensors))
        return result

    def _unusual(self, i, gx, method, tensors):
        """The checks of :meth:`_checked` for a gradient that is not the input's array type, shape
        and dtype: a wrong type is a TypeError naming the op and the method; the rest goes to
        :meth:`_conformed`."""
        if tensors and not isinstance(gx, Tensor):
            raise TypeError(f"{type(self).__name__}.backward must return Tensors (or None), "
                            f"got {type(gx).__name__}")
        if not tensors and type(gx) is not type(self.inputs[i].data):
            if not B.is_array(gx) and not B.is_host_array(gx):
                raise TypeError(f"{type(self).__name__}.{method} must return backend arrays "
                                f"(or None), got {type(gx).__name__} for input {i}; "
                                "backward returns Tensors, backward_arrays their arrays")
            gx = B.ensure_array(gx)               # NumPy answers 0-d results with NumPy scalars
            data = self.inputs[i].data
            if type(gx) is type(data) and gx.shape == data.shape and gx.dtype is data.dtype:
                return gx
        return self._conformed(i, gx, method, tensors)

    def _conformed(self, i, gx, method, tensors):
        """The gradient ``gx`` of input ``i`` on its input's device, in its shape and dtype."""
        x = self.inputs[i]
        data = x.data
        if not tensors:
            gx = Tensor._wrap(gx)
        if type(gx.data) is not type(data):
            raise ValueError(f"{self.name}: {method} returned a gradient on {gx.device} for "
                             f"input {i} on {x.device}")
        if gx.shape != x.shape:
            if not _F.sums_to(gx.shape, x.shape):
                raise ValueError(
                    f"{self.name}: {method} returned a gradient of shape {gx.shape} for input "
                    f"{i} of shape {x.shape}; a gradient must have its input's shape (or one "
                    "that broadcasting made from it)")
            gx = _F.sum_to(gx, x.shape)
        if gx.data.dtype != data.dtype:
            gx = _F.astype(gx, B.dtype_name(data.dtype))
        return gx if tensors else gx.data

    def _check_inputs_unchanged(self):
        for i, x in enumerate(self.inputs):
            if x._version > self._clock:
                raise RuntimeError(
                    f"{self.name}: input {i} (shape {x.shape}) was modified by an inplace "
                    "operation after the forward pass (an optimizer step, load_state_dict, "
                    "Module.to), so its gradient would use the new values; run the forward again "
                    "after changing it")

    def _release(self):
        """Drop what the graph held (inputs, saved arrays) once its gradient has been used."""
        self.__dict__.clear()
        self._released = True

    def _shape_message(self, tensors, err):
        shapes = " and ".join(str(t.shape) for t in tensors)
        return f"{self.name}: incompatible shapes {shapes} ({err})"

    def _device_error(self, tensors):
        devices = sorted({t.device for t in tensors})
        raise ValueError(
            f"{self.name}: tensors on two devices ({' and '.join(devices)}); "
            "move them to one device first with .to('cpu') or .to('gpu')")


def _as_input_tensors(inputs, promotes, float_result):
    """The inputs of a call as Tensors of the dtype the promotion rules give.

    The common cases are answered first, because every op pays for this: Tensors of one dtype, with
    maybe Python floats and ints that do not lift that dtype's category (``x * 0.5`` with a float
    ``x``) and so become constants of that dtype.  Anything else goes through ``promote``.
    """
    like = None
    numbers = False
    for x in inputs:
        if isinstance(x, Tensor):
            if like is None:
                like = x
            elif promotes:
                d, first = x.data.dtype, like.data.dtype
                if d is not first and (type(d) is not type(first) or d != first):
                    return promote(*inputs)  # (two backends' dtypes never compare: promote says so)
        elif type(x) is float or type(x) is int:
            numbers = True
        else:
            return _converted(inputs, promotes, float_result)
    if like is None:
        return _converted(inputs, promotes, float_result)
    if not (numbers or float_result):
        return inputs
    category = B.category(like.data.dtype)
    if float_result and category != 2:
        return _converted(inputs, promotes, float_result)
    if not numbers:
        return inputs
    tensors = []
    owner = B.of(like.data)
    for x in inputs:
        if not isinstance(x, Tensor):
            if category == 0 or (category == 1 and type(x) is float):
                return _converted(inputs, promotes, float_result)
            x = Tensor._wrap(owner.constant(x, like.data))
        tensors.append(x)
    return tensors


def _converted(inputs, promotes, float_result):
    if promotes:
        return promote(*inputs, float_result=float_result)
    like = next((x for x in inputs if isinstance(x, Tensor)), None)
    return [as_tensor(x, like) for x in inputs]


# --------------------------------------------------------------------------------------------------
# The graph walk
# --------------------------------------------------------------------------------------------------

_FREED = ("the graph behind this tensor was already freed by an earlier backward(); "
          "call the first backward (or mg.grad) with retain_graph=True to go through it twice")


def _topological_order(roots, every_tensor=False):
    """Tensors reachable from ``roots`` that require grad, each one after every tensor that uses it.
    With ``every_tensor=True``: every tensor, constants too, each op's inputs visited in argument
    order (``graph.trace`` draws the graph in that order).

    An iterative depth-first search (no recursion, so a chain of 100,000 ops is fine): a tensor is
    appended once all of its inputs have been; reversing the list puts consumers before producers.
    """
    order, seen = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        tensor, inputs_done = stack.pop()
        if inputs_done:
            order.append(tensor)
            continue
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        stack.append((tensor, True))
        f = tensor.creator
        if f is not None:
            if f._released:
                raise RuntimeError(_FREED)
            for x in reversed(f.inputs) if every_tensor else f.inputs:
                if (every_tensor or x.requires_grad) and id(x) not in seen:
                    stack.append((x, False))
    order.reverse()
    return order


def _initial_grad(output, grad, who):
    if grad is None:
        if output.size != 1:
            raise RuntimeError(
                f"{who}: the output has shape {output.shape}, so its gradient must be given: pass "
                "grad= a tensor of that shape (for example mg.ones_like(out)), or reduce the "
                "output to one number first (out.sum(), out.mean())")
        data = output.data
        owner = B.of(data)
        if owner.name == "numpy" and data.ndim == 0:   # a C call; numpy.ones_like is a Python
            return Tensor._wrap(owner.constant(1, data))   # function (on a device: a fill kernel)
        return Tensor._wrap(owner.xp.ones_like(data))
    grad = as_tensor(grad, output)
    if grad.shape != output.shape:
        raise ValueError(f"{who}: grad has shape {grad.shape} but the output has shape "
                         f"{output.shape}")
    if type(grad.data) is not type(output.data):
        raise ValueError(f"{who}: grad is on {grad.device} but the output is on {output.device}")
    if grad.data.dtype != output.data.dtype:             # as PyTorch: in the output's dtype
        grad = Tensor._wrap(B.namespace(output.data).astype(grad.data, output.data.dtype))
    return grad


def _backpropagate(outputs, grad_outputs, retain_graph, create_graph, targets):
    """Run the chain rule from ``outputs`` back through the graph.

    The walk takes the tensors in reverse creation order: a max-heap keyed by the number of the op
    that made each one (``Function._seq``).  Every op that used a tensor was recorded after it, so
    by the time a tensor comes off the heap all of its gradient has arrived: the heap is a reverse
    topological order, built as the walk goes (a tensor joins it when its first gradient arrives).
    Leaves are finished at the end.

    Without ``create_graph`` the gradients travel as backend arrays (each op's
    ``backward_arrays``; no Tensor is made on the way); with it, as Tensors, which the ops'
    ``backward`` records into a new graph.

    With ``targets=None`` gradients are added to the ``.grad`` of leaves that require grad
    (backward()).  Otherwise the gradients of the tensors in ``targets`` are returned in a dict by
    id (mg.grad) and no ``.grad`` is touched; then only the part of the graph between the outputs
    and the targets is walked (see :func:`_leading_to`).
    """
    arrays = not create_graph
    grads = {}
    private = set()       # ids of leaves whose gradient array is fresh and given to them alone
    heap, leaves = [], []
    wanted = needed = None
    if targets is not None:
        wanted = {id(t) for t in targets}
        needed = _leading_to(outputs, wanted)
    for out, g in zip(outputs, grad_outputs):
        key = id(out)
        g = g.data if arrays else g                   # the caller's array: never a leaf's own
        if key in grads:
            grads[key] = _sum(grads[key], g)
        else:
            grads[key] = g
            _schedule(out, heap, leaves)
    found = {}
    pop, push = heapq.heappop, heapq.heappush
    previous, _mode.enabled = _mode.enabled, create_graph      # (_grad_mode, without its cost)
    try:
        while heap:
            tensor = pop(heap)[1]
            key = id(tensor)
            g = grads.pop(key)
            if wanted is not None and key in wanted:
                found[key] = g
            f = tensor.creator
            if needed is None or create_graph:
                gxs = f._input_grads(g, arrays)
            else:
                gxs = _pruned_input_grads(f, g, arrays, needed)
            for x, gx in zip(f.inputs, gxs):
                if gx is None or (needed is not None and id(x) not in needed):
                    continue
                k = id(x)
                if k in grads:                     # a second path: the sum is a fresh array
                    grads[k] = _sum(grads[k], gx)
                    private.add(k)
                    continue
                grads[k] = gx
                creator = x.creator
                if creator is not None:            # on the heap, by its op's number
                    if creator._released:
                        raise RuntimeError(_FREED)
                    push(heap, (-creator._seq, x))
                    continue
                leaves.append(x)
                # only a leaf's .grad reads it: not the upstream array, not given twice
                if arrays and wanted is None and gx is not g and B.owns_memory(gx) \
                        and _given_once(gx, gxs):
                    private.add(k)
            if not retain_graph:
                f._release()
        for leaf in leaves:
            key = id(leaf)
            if wanted is None:
                leaf.grad = _accumulate(leaf.grad, grads[key], arrays, key in private)
            elif key in wanted:
                found[key] = grads[key]
    finally:
        _mode.enabled = previous
    if arrays:
        found = {key: Tensor._wrap(g) for key, g in found.items()}
    return found


def _sum(a, b):
    """a + b for two gradients (Tensors, or arrays: NumPy's sum of two 0-d arrays is a scalar)."""
    total = a + b
    return total if type(total) is type(a) else B.ensure_array(total)


def _schedule(tensor, heap, leaves):
    """Queue ``tensor`` for the walk: on the heap by its op's number, or with the leaves."""
    f = tensor.creator
    if f is None:
        leaves.append(tensor)
        return
    if f._released:
        raise RuntimeError(_FREED)
    heapq.heappush(heap, (-f._seq, tensor))


def _leading_to(outputs, wanted):
    """The ids of the tensors behind ``outputs`` from which a tensor in ``wanted`` can be reached
    going towards the inputs: the only ones whose gradient ``mg.grad`` needs."""
    needed = set()
    for tensor in reversed(_topological_order(outputs)):    # producers first
        f = tensor.creator
        if id(tensor) in wanted or (f is not None and any(id(x) in needed for x in f.inputs)):
            needed.add(id(tensor))
    return needed


def _pruned_input_grads(f, g, arrays, needed):
    """``f``'s input gradients with the inputs that lead to no requested tensor shown to the
    backward as constants, so that it skips their gradients (a weight's matmul, say).  Only when no
    graph is being built: a recorded gradient must keep depending on every input's value."""
    inputs = f.inputs
    if all(id(x) in needed or not x.requires_grad for x in inputs):
        return f._input_grads(g, arrays=arrays)
    if f._clock != _changes:                       # the in-place check sees the real inputs
        f._check_inputs_unchanged()
    f.inputs = [x if id(x) in needed or not x.requires_grad else x.detach() for x in inputs]
    try:
        return f._input_grads(g, arrays=arrays)
    finally:
        f.inputs = inputs


def _given_once(array, arrays):
    """True when ``array`` is in ``arrays`` (one backward's results) exactly once."""
    count = 0
    for a in arrays:
        if a is array:
            count += 1
    return count == 1


def _accumulate(old, g, arrays, private=False):
    """The new ``.grad`` of a leaf from its gradient ``g`` (an array when ``arrays``, else a Tensor
    in the graph being built, kept as it is).  A gradient array may be shared with another tensor
    (``a + b`` hands the same one to both) or be a view of another array (a reshape, a read-only
    broadcast), so a leaf gets its own copy, which the user and the optimizers may then change in
    place - unless the array is ``private``: owning its memory and handed to this leaf alone (a
    matmul's fresh result, say)."""
    if not arrays:
        return g if old is None else old + g
    if old is not None:
        return old + Tensor._wrap(g)
    return Tensor._wrap(g if private else B.of(g).copy(g))


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """The gradients of ``outputs`` with respect to ``inputs``, as a list of Tensors (one per
    input).

    ``outputs`` and ``inputs`` are a Tensor or a list of Tensors; ``grad_outputs`` the upstream
    gradients (needed for outputs with more than one element).  Unlike ``backward`` this touches no
    ``.grad``.  With ``create_graph=True`` the returned gradients are part of a graph themselves, so
    they can be differentiated again (a gradient penalty is
    ``mg.grad(d(x), x, create_graph=True)``).  An input that the outputs do not depend on gets a
    gradient of zeros; outputs that depend on no input at all (no graph, e.g. a gradient computed
    without ``create_graph``) are an error.  Only the part of the graph between the outputs and
    ``inputs`` is walked.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor) or not x.requires_grad:
            raise ValueError(f"grad: input {i} does not require grad, so it has no gradient")
    roots, gs = [], []
    for out, g in zip(outputs, grad_outputs):
        if out.requires_grad:
            roots.append(out)
            gs.append(_initial_grad(out, g, "grad"))
    if not roots:
        raise RuntimeError(
            "grad: no output depends on a tensor that requires grad, so there is no graph to "
            "differentiate (differentiating a gradient needs create_graph=True when it is "
            "computed)")
    if retain_graph is None:
        retain_graph = create_graph
    found = _backpropagate(roots, gs, retain_graph, create_graph, targets=inputs)
    result = []
    for x in inputs:
        g = found.get(id(x))
        if g is None:
            g = Tensor._wrap(B.namespace(x.data).zeros_like(x.data))
        result.append(g)
    return result


from . import functions as _F  # noqa: E402  (the ops need Tensor and Function, defined above)

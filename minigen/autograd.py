"""Tensors, differentiable functions and reverse-mode automatic differentiation.

A :class:`Tensor` wraps a backend array (``t.data``).  Every operation on tensors is a :class:`Function`:
its ``forward`` computes the result from plain arrays, and when any input requires a gradient the result
remembers the function that made it (``t.creator``), which remembers its inputs.  That is the graph.

``loss.backward()`` walks the graph from ``loss`` back to the leaves in reverse topological order, asking
each function for the gradients of its inputs given the gradient of its output (the chain rule):

    dL/dx = backward(dL/dy)      for y = f(x)

Backward rules are written with minigen's own tensor operations, so when ``create_graph=True`` the
gradient computation is itself recorded, and gradients can be differentiated again (double backprop:
gradient penalties, Hessian-vector products).

Broadcasting is undone once, here in :meth:`Function.__call__`'s partner :meth:`Function._input_grads`:
whatever shape a backward rule returns, the gradient is summed down to the input's shape.
"""

import contextlib
import weakref

from . import backend as B

__all__ = ["Tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "grad"]

_grad_enabled = True


def is_grad_enabled():
    """True when operations are being recorded for autograd."""
    return _grad_enabled


@contextlib.contextmanager
def _grad_mode(enabled):
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, enabled
    try:
        yield
    finally:
        _grad_enabled = previous


def no_grad():
    """``with mg.no_grad(): ...`` runs the block without recording a graph (inference, updates)."""
    return _grad_mode(False)


def enable_grad():
    """``with mg.enable_grad(): ...`` records a graph even inside ``no_grad``."""
    return _grad_mode(True)


# ----------------------------------------------------------------------------------------------------
# Tensor
# ----------------------------------------------------------------------------------------------------

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
      (numbers, lists, NumPy arrays) goes to the current backend - without a copy when that is NumPy and
      the dtype is right; a device array (CuPy) stays on its device, also without a copy.
    * Python floats get the default dtype (``mg.set_default_dtype``; float32 unless changed), Python ints
      int64, Python bools bool.  Integer and boolean tensors are constants: they cannot require gradients.
    * ``t.grad`` is None until a backward pass reaches ``t``; gradients then *accumulate* (``+=``) over
      backward passes until you reset them (``t.grad = None``, or ``Module.zero_grad()``).
    """

    __slots__ = ("data", "grad", "requires_grad", "creator", "name", "__weakref__")
    __array_priority__ = 1000  # NumPy defers to Tensor in `ndarray * Tensor`

    def __init__(self, data, requires_grad=False, dtype=None, name=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self.creator = None
        self.name = name
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
        t.requires_grad = requires_grad
        return t

    def requires_grad_(self, flag=True):
        if flag and not B.is_floating(self.data.dtype):
            raise TypeError(
                f"only floating-point tensors can require gradients; this one is "
                f"{B.dtype_name(self.data.dtype)} (integer and boolean tensors are constants)")
        self.requires_grad = bool(flag)
        return self

    # --- properties ---------------------------------------------------------------------------------
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
        return self.data.shape[0]

    def __repr__(self):
        body = repr(self.numpy()).replace("array(", "tensor(", 1)
        extra = ", requires_grad=True" if self.requires_grad else ""
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        return body[:-1] + extra + ")" if body.endswith(")") else body

    # --- conversions --------------------------------------------------------------------------------
    def numpy(self):
        """The values as a NumPy array (a copy when the data is on a device)."""
        return B.of(self.data).to_numpy(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item: the tensor has {self.size} elements, not 1 (shape {self.shape})")
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
        """A copy converted to ``dtype`` (a name like "float64" or a dtype); differentiable for floats."""
        return _F.astype(self, B.dtype_name(dtype) if not isinstance(dtype, str) else dtype)

    # --- autograd -----------------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph=False, create_graph=False):
        """Compute the gradient of this tensor with respect to every leaf that requires one.

        The results are *added* to each leaf's ``.grad``.  ``grad`` is the upstream gradient (dL/dself);
        it may be omitted only when this tensor holds one element.  The graph is freed afterwards unless
        ``retain_graph=True`` (``create_graph=True`` implies it), so that memory is returned at once.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad, so there is nothing to differentiate; "
                "create its inputs with requires_grad=True (or use nn.Parameter)")
        grad = _initial_grad(self, grad, "backward")
        _backpropagate([self], [grad], retain_graph or create_graph, create_graph, targets=None)

    def zero_grad(self):
        self.grad = None

    # --- operators (the ops themselves live in functions.py) ---------------------------------------
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
    def __eq__(self, other): return _F.compare(self, other, "equal")
    def __ne__(self, other): return _F.compare(self, other, "not_equal")
    __hash__ = object.__hash__

    def __bool__(self):
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor with {self.size} elements is ambiguous; use .any()/.all()")
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
    * a Python number becomes a 0-d constant of ``like``'s dtype on ``like``'s device (a float with
      an integer ``like`` gets the default floating dtype);
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
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not B.is_floating(like.data.dtype):
            return Tensor._wrap(owner.asarray(value, dtype=B.default_dtype(owner)))
        return Tensor._wrap(owner.constant(value, like.data))
    source = B.of(value)
    if source is not None and source is not owner:
        value = source.to_numpy(value)
    return Tensor._wrap(owner.copy(owner.asarray(value, dtype=like.data.dtype)))


# ----------------------------------------------------------------------------------------------------
# Function
# ----------------------------------------------------------------------------------------------------

class Function:
    """A differentiable operation.  Subclass it and write ``forward`` and ``backward``:

    * ``forward(self, *arrays)`` gets backend arrays and returns one backend array.  It may keep what
      ``backward`` needs on ``self``.  Use ``xp = mg.backend.namespace(x)`` for array functions, so the
      same code runs on NumPy and CuPy.
    * ``backward(self, gy)`` gets the gradient of the output as a Tensor and returns the gradient of each
      input as a Tensor (a tuple when there are several inputs; None for an input with no gradient).
      Write it with tensor operations: then ``create_graph=True`` can differentiate it again.
      ``self.inputs`` holds the input tensors and ``self.output`` the output tensor.
    * optionally ``backward_arrays(self, gy)``: the same derivative on backend arrays (``gy`` an array;
      one array or None per input).  The graph walk calls it instead of ``backward`` when no graph is
      being built for the gradient (``create_graph=False``): it may save passes and allocations
      that recorded ops cannot.  Neither method reads the grad mode; the graph walk chooses.

    A gradient may have a broadcast shape; it is summed back to its input's shape for you.
    """

    inputs = None
    backward_arrays = None        # a subclass may define backward_arrays(self, gy) on arrays
    _output_ref = None
    _released = False

    @property
    def name(self):
        return type(self).__name__.lower()

    def __call__(self, *inputs):
        tensors = _as_input_tensors(inputs)
        arrays = [t.data for t in tensors]
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
        needs_grad = _grad_enabled and any(t.requires_grad for t in tensors)
        result = Tensor._wrap(out, needs_grad)
        if needs_grad:
            self.inputs = tensors
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

    def _input_grads(self, gy):
        """Call ``backward`` and sum each gradient down to its input's shape (undo broadcasting)."""
        gxs = self.backward(gy)
        if not isinstance(gxs, (tuple, list)):
            gxs = (gxs,)
        if len(gxs) != len(self.inputs):
            raise RuntimeError(
                f"{type(self).__name__}.backward returned {len(gxs)} gradients for "
                f"{len(self.inputs)} inputs")
        result = []
        for x, gx in zip(self.inputs, gxs):
            if gx is not None and not isinstance(gx, Tensor):
                raise TypeError(
                    f"{type(self).__name__}.backward must return Tensors (or None), "
                    f"got {type(gx).__name__}")
            if gx is not None and gx.shape != x.shape:
                gx = _F.sum_to(gx, x.shape)
            result.append(gx)
        return result

    def _input_grads_arrays(self, gy):
        """Call ``backward_arrays`` on ``gy``'s array and return Tensors summed to the inputs' shapes."""
        gxs = self.backward_arrays(gy.data)
        if not isinstance(gxs, (tuple, list)):
            gxs = (gxs,)
        if len(gxs) != len(self.inputs):
            raise RuntimeError(
                f"{type(self).__name__}.backward_arrays returned {len(gxs)} gradients for "
                f"{len(self.inputs)} inputs")
        result = []
        for x, gx in zip(self.inputs, gxs):
            if gx is not None:
                if type(gx) is not type(x.data):
                    gx = B.ensure_array(gx)       # NumPy answers 0-d results with NumPy scalars
                if gx.shape != x.data.shape:
                    gx = _F.SumTo(x.shape).forward(gx)
                gx = Tensor._wrap(gx)
            result.append(gx)
        return result

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


def _as_input_tensors(inputs):
    like = None
    for x in inputs:
        if isinstance(x, Tensor):
            like = x
            break
    tensors = []
    for x in inputs:
        if isinstance(x, Tensor):
            tensors.append(x)
        elif isinstance(x, (int, float)) and not isinstance(x, bool):
            tensors.append(as_tensor(x, like))     # a number takes its partner's dtype and device
        else:
            tensors.append(Tensor(x))              # other data: an ordinary new tensor
    return tensors


# ----------------------------------------------------------------------------------------------------
# The graph walk
# ----------------------------------------------------------------------------------------------------

_FREED = ("the graph behind this tensor was already freed by an earlier backward(); "
          "call the first backward (or mg.grad) with retain_graph=True to go through it twice")


def _topological_order(roots):
    """Tensors reachable from ``roots`` that require grad, each one after every tensor that uses it.

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
            for x in f.inputs:
                if x.requires_grad and id(x) not in seen:
                    stack.append((x, False))
    order.reverse()
    return order


def _initial_grad(output, grad, who):
    if grad is None:
        if output.size != 1:
            raise RuntimeError(
                f"{who}: the output has shape {output.shape}, so its gradient must be given: pass "
                "grad= a tensor of that shape (for example mg.ones_like(out)), or reduce the output "
                "to one number first (out.sum(), out.mean())")
        return Tensor._wrap(B.namespace(output.data).ones_like(output.data))
    grad = as_tensor(grad, output)
    if grad.shape != output.shape:
        raise ValueError(f"{who}: grad has shape {grad.shape} but the output has shape {output.shape}")
    if type(grad.data) is not type(output.data):
        raise ValueError(f"{who}: grad is on {grad.device} but the output is on {output.device}")
    return grad


def _backpropagate(outputs, grad_outputs, retain_graph, create_graph, targets):
    """Run the chain rule from ``outputs`` back through the graph.

    With ``targets=None`` gradients are added to the ``.grad`` of leaves that require grad (backward()).
    Otherwise the gradients of the tensors in ``targets`` are returned in a dict by id (mg.grad) and no
    ``.grad`` is touched.
    """
    grads, private = {}, {}       # private[id(t)]: t's gradient array is fresh and given to t alone
    for out, g in zip(outputs, grad_outputs):
        grads[id(out)] = grads[id(out)] + g if id(out) in grads else g
        private[id(out)] = False  # the caller's array: never a leaf's own
    order = _topological_order(outputs)
    wanted = None if targets is None else {id(t) for t in targets}
    found = {}
    with _grad_mode(create_graph):
        for tensor in order:
            g = grads.pop(id(tensor), None)
            if g is None:
                continue
            if wanted is not None and id(tensor) in wanted:
                found[id(tensor)] = g
            f = tensor.creator
            if f is None:
                if wanted is None:
                    tensor.grad = _accumulate(tensor.grad, g, create_graph, private[id(tensor)])
                continue
            if create_graph or f.backward_arrays is None:
                gxs = f._input_grads(g)                # Tensor ops: recorded when create_graph
            else:
                gxs = f._input_grads_arrays(g)         # arrays: no graph is being built
            arrays = [None if gx is None else gx.data for gx in gxs]
            for x, gx in zip(f.inputs, gxs):
                if gx is None or not x.requires_grad:
                    continue
                key = id(x)
                if key in grads:                   # a second path: the sum is a fresh array
                    grads[key], private[key] = grads[key] + gx, True
                else:                              # not the upstream array, not given twice
                    grads[key] = gx
                    private[key] = (gx.data is not g.data and B.owns_memory(gx.data)
                                    and _given_once(gx.data, arrays))
            if not retain_graph:
                f._release()
    return found


def _given_once(array, arrays):
    """True when ``array`` is in ``arrays`` (one backward's results) exactly once."""
    count = 0
    for a in arrays:
        if a is array:
            count += 1
    return count == 1


def _accumulate(old, g, create_graph, private=False):
    """The new ``.grad`` of a leaf.  A gradient may be shared with another tensor (``a + b`` hands the
    same one to both) or be a view of another array (a reshape, a read-only broadcast), so a leaf gets
    its own copy, which the user and the optimizers may then change in place - unless the array is
    ``private``: owning its memory and handed to this leaf alone (a matmul's fresh result, say).  With
    ``create_graph`` it stays in the graph instead."""
    if old is not None:
        return old + g
    if create_graph or private:
        return g
    return Tensor._wrap(B.of(g.data).copy(g.data))


def grad(outputs, inputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """The gradients of ``outputs`` with respect to ``inputs``, as a list of Tensors (one per input).

    ``outputs`` and ``inputs`` are a Tensor or a list of Tensors; ``grad_outputs`` the upstream
    gradients (needed for outputs with more than one element).  Unlike ``backward`` this touches no
    ``.grad``.  With ``create_graph=True`` the returned gradients are part of a graph themselves, so they
    can be differentiated again (a gradient penalty is ``mg.grad(d(x), x, create_graph=True)``).  An input
    that the outputs do not depend on gets a gradient of zeros; outputs that depend on no input at all
    (no graph, e.g. a gradient computed without ``create_graph``) are an error.
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
            "differentiate (differentiating a gradient needs create_graph=True when it is computed)")
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

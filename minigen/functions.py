"""The primitive differentiable operations.

Each op is a :class:`~minigen.autograd.Function` with its forward (on backend arrays, through the
array namespace ``xp``) right next to its backward (on Tensors, so that gradients can be
differentiated again). The docstring of each gives the derivative it implements.  Gradients of
broadcast inputs are summed back to the input's shape by ``Function`` itself, so backward rules here
may return broadcast shapes.

The ops a training step runs most (arithmetic, exp, tanh, sigmoid, relu, softplus, sum, reshape,
broadcasting) also have ``backward_arrays``: the same derivative on arrays, which the graph walk
uses when no second derivative is being built (it saves recording an op per term).

The lower-case functions at the end of each section (``add``, ``exp``, ``sum``...) are the public
face: ``mg.exp(x)`` is ``Exp()(x)``.  Ops that meet two dtypes promote them by PyTorch's rules first
(``promotes = True``; the rules are in the Tensor docstring).
"""

import builtins
import operator

from . import backend as B
from . import kernels
from .autograd import Function, Tensor, as_tensor, promote

__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "matmul", "exp", "log", "sqrt", "sin", "cos", "abs",
    "tanh",
    "sigmoid", "relu", "leaky_relu", "softplus", "sum", "mean", "max", "logsumexp", "reshape",
    "transpose", "broadcast_to", "sum_to", "sums_to", "getitem", "maximum", "minimum", "where",
    "concatenate", "stack",
    "clip", "compare", "astype", "to_device",
]


def _xp(array):
    return B.namespace(array)


def _constant(array):
    """A Tensor that the graph treats as a constant (no gradient flows into it)."""
    return Tensor._wrap(B.ensure_array(array))


def _as_float(mask, like):
    """A boolean array as 0.0/1.0 in ``like``'s dtype (array-API arithmetic refuses booleans)."""
    return _xp(like).astype(B.ensure_array(mask), like.dtype)


# --------------------------------------------------------------------------------------------------
# Arithmetic with broadcasting
# --------------------------------------------------------------------------------------------------

class _Broadcasting(Function):
    """An elementwise op of two inputs that broadcast against each other (and promote to one
    dtype)."""

    promotes = True

    def _shape_message(self, tensors, err):
        a, b = (t.shape for t in tensors[-2:])
        return f"{self.name}: cannot broadcast {a} with {b}"


class Add(_Broadcasting):
    """y = a + b;  dy/da = 1,  dy/db = 1."""

    def forward(self, a, b):
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        return (gy if a.requires_grad else None), (gy if b.requires_grad else None)

    def backward_arrays(self, gy):
        a, b = self.inputs
        return (gy if a.requires_grad else None), (gy if b.requires_grad else None)


class Sub(_Broadcasting):
    """y = a - b;  dy/da = 1,  dy/db = -1."""

    def forward(self, a, b):
        return a - b

    def backward(self, gy):
        a, b = self.inputs
        return (gy if a.requires_grad else None), (-gy if b.requires_grad else None)

    def backward_arrays(self, gy):
        a, b = self.inputs
        return (gy if a.requires_grad else None), (-gy if b.requires_grad else None)


class Mul(_Broadcasting):
    """y = a * b;  dy/da = b,  dy/db = a."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        return (gy * b if a.requires_grad else None), (gy * a if b.requires_grad else None)

    def backward_arrays(self, gy):
        a, b = self.inputs
        return (gy * b.data if a.requires_grad else None), \
            (gy * a.data if b.requires_grad else None)


class Div(_Broadcasting):
    """y = a / b;  dy/da = 1 / b,  dy/db = -a / b^2.  True division: integers give a float
    result."""

    float_result = True

    def forward(self, a, b):
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        ga = gy / b
        return (ga if a.requires_grad else None), (-ga * a / b if b.requires_grad else None)


class Neg(Function):
    """y = -x;  dy/dx = -1."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy

    def backward_arrays(self, gy):
        return -gy


class Pow(_Broadcasting):
    """y = a ** b;  dy/da = b a^(b-1),  dy/db = a^b log(a).

    At a = 0 both formulas meet 0 * inf; the values are PyTorch's: dy/da = 0 where b = 0 (y = 1 for
    every a), and dy/db = 0 where b >= 0 (y = 0 or 1 for every b >= 0).  At those points the
    formulas are evaluated at a = 1 instead (``where`` on the input, not on the result), so that
    their own derivatives, for a second order, stay finite too.
    """

    def forward(self, a, b):
        return _xp(a).pow(a, b)

    def backward(self, gy):
        a, b = self.inputs
        xp = _xp(a.data)
        ga = gb = None
        if a.requires_grad:
            constant = _constant(xp.logical_and(a.data == 0, b.data == 0))
            ga = gy * b * where(constant, 1.0, a) ** (b - 1.0)
        if b.requires_grad:
            flat = _constant(xp.logical_and(a.data == 0, b.data >= 0))
            gb = gy * self.output * log(where(flat, 1.0, a))
        return ga, gb


class PowScalar(Function):
    """y = x ** c for a Python number c;  dy/dx = c x^(c-1)  (0 for c = 0, also at x = 0, where the
    formula would give 0 * inf; so the second derivative of x ** 1, through x ** 0, is 0 too)."""

    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        (x,) = self.inputs
        if self.c == 0:
            return gy * 0.0
        if self.c == 2:
            return gy * 2.0 * x
        return gy * self.c * x ** (self.c - 1)


class MatMul(Function):
    """y = a @ b;  dL/da = dL/dy @ b^T,  dL/db = a^T @ dL/dy  (batched: leading axes broadcast).

    A 1-D ``a`` is treated as a row (1, n) and a 1-D ``b`` as a column (n, 1), as in NumPy.
    """

    promotes = True

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul: cannot multiply {tuple(a.shape)} by {tuple(b.shape)}")
        return _xp(a).matmul(a, b)

    def _shape_message(self, tensors, err):
        return str(err) if str(err).startswith("matmul:") else (
            f"matmul: cannot multiply {tensors[0].shape} by {tensors[1].shape} ({err})")

    def backward(self, gy):
        a, b = self.inputs
        a2 = a if a.ndim > 1 else reshape(a, (1, a.shape[0]))
        b2 = b if b.ndim > 1 else reshape(b, (b.shape[0], 1))
        if a.ndim == 1:
            gy = reshape(gy, gy.shape[:-1] + (1,) + gy.shape[-1:])
        if b.ndim == 1:
            gy = reshape(gy, gy.shape + (1,))
        ga = gb = None
        if a.requires_grad:
            ga = matmul(gy, transpose(b2, _swap_last(b2.ndim)))
            ga = sum_to(ga, a2.shape) if ga.shape != a2.shape else ga
            ga = reshape(ga, a.shape) if a.ndim == 1 else ga
        if b.requires_grad:
            gb = matmul(transpose(a2, _swap_last(a2.ndim)), gy)
            gb = sum_to(gb, b2.shape) if gb.shape != b2.shape else gb
            gb = reshape(gb, b.shape) if b.ndim == 1 else gb
        return ga, gb


def _swap_last(ndim):
    axes = list(range(ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return tuple(axes)


def add(a, b): return Add()(a, b)
def sub(a, b): return Sub()(a, b)
def mul(a, b): return Mul()(a, b)
def div(a, b): return Div()(a, b)
def neg(x): return Neg()(x)
def matmul(a, b): return MatMul()(a, b)


def pow(a, b):
    """a ** b; a Python-number exponent is a constant (the common case, ``x ** 2``).  An integer
    tensor to a float power is a float of the default dtype (promotion, as PyTorch)."""
    b = B.as_number(b)
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if isinstance(b, float) and B.category(a.data.dtype) != 2:
            a = astype(a, B.get_default_dtype())
        return PowScalar(b)(a)
    return Pow()(a, b)


# --------------------------------------------------------------------------------------------------
# Elementwise functions
# --------------------------------------------------------------------------------------------------

class _Floating(Function):
    """A function of the real numbers: an integer or boolean input is converted to the default float
    dtype first (as PyTorch: ``exp`` of an int64 tensor is float32 by default, not float64)."""

    promotes = True
    float_result = True


class Exp(_Floating):
    """y = exp(x);  dy/dx = exp(x) = y."""

    def forward(self, x):
        return _xp(x).exp(x)

    def backward(self, gy):
        return gy * self.output

    def backward_arrays(self, gy):
        return gy * self.output.data


class Log(_Floating):
    """y = log(x);  dy/dx = 1 / x."""

    def forward(self, x):
        return _xp(x).log(x)

    def backward(self, gy):
        return gy / self.inputs[0]


class Sqrt(_Floating):
    """y = sqrt(x);  dy/dx = 1 / (2 sqrt(x)) = 1 / (2 y)."""

    def forward(self, x):
        return _xp(x).sqrt(x)

    def backward(self, gy):
        return gy / (2.0 * self.output)


class Sin(_Floating):
    """y = sin(x);  dy/dx = cos(x)."""

    def forward(self, x):
        return _xp(x).sin(x)

    def backward(self, gy):
        return gy * cos(self.inputs[0])


class Cos(_Floating):
    """y = cos(x);  dy/dx = -sin(x)."""

    def forward(self, x):
        return _xp(x).cos(x)

    def backward(self, gy):
        return -gy * sin(self.inputs[0])


class Abs(Function):
    """y = |x|;  dy/dx = sign(x)  (0 at x = 0)."""

    def forward(self, x):
        return _xp(x).abs(x)

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * _constant(_xp(x).sign(x))


class Tanh(_Floating):
    """y = tanh(x);  dy/dx = 1 - y^2."""

    def forward(self, x):
        return _xp(x).tanh(x)

    def backward(self, gy):
        y = self.output
        return gy * (1.0 - y * y)

    def backward_arrays(self, gy):
        y = self.output.data
        return gy * (1.0 - y * y)


class Sigmoid(_Floating):
    """y = 1 / (1 + exp(-x));  dy/dx = y (1 - y) = sigmoid(x) sigmoid(-x).

    Computed without overflow for any x: with e = exp(-|x|) <= 1, y = 1 / (1 + e) for x >= 0 and
    y = e / (1 + e) for x < 0 (the same number, written so that exp never sees a large argument).
    Both cases are one formula, y = exp(min(x, 0)) / (1 + e), which needs no ``where`` (NumPy's
    ``where`` is several times slower than an ``exp``).  And y (1 - y) is the product of the two
    cases, e / (1 + e)^2: the derivative from the forward's e, exact where y rounds to 1
    (``kernels.sigmoid``, ``kernels.sigmoid_grad``).
    """

    def forward(self, x):
        y, self.e = kernels.sigmoid(x)
        return y

    def backward(self, gy):
        # 1 - y written as sigmoid(-x): exact even where y rounds to 1 (x > 37 in float64)
        return gy * self.output * sigmoid(-self.inputs[0])

    def backward_arrays(self, gy):
        return kernels.sigmoid_grad(gy, self.e)


class ReLU(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0."""

    def forward(self, x):
        return kernels.maximum_zero(x)         # max(x, 0), in NumPy's faster loop

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * _constant(_as_float(x > 0, x))

    def backward_arrays(self, gy):
        # gy * [x > 0]: the mask of y = max(x, 0) > 0, read off x
        return kernels.activation_grad(gy, self.inputs[0].data, "relu")


class LeakyReLU(Function):
    """y = x where x > 0, else slope * x;  dy/dx = 1 or slope."""

    def __init__(self, slope=0.01):
        self.slope = float(slope)

    def forward(self, x):
        return _xp(x).where(x > 0, x, self.slope * x)

    def backward(self, gy):
        x = self.inputs[0].data
        slope = _as_float(x > 0, x) * (1.0 - self.slope) + self.slope  # 1 where x > 0, else slope
        return gy * _constant(slope)


class Softplus(_Floating):
    """y = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|));  dy/dx = sigmoid(x).

    The second form never overflows: exp only sees -|x| <= 0.
    """

    def forward(self, x):
        xp = _xp(x)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy):
        return gy * sigmoid(self.inputs[0])

    def backward_arrays(self, gy):
        return gy * Sigmoid().forward(self.inputs[0].data)


class Clip(Function):
    """y = min(max(x, low), high) for Python-number bounds;  dy/dx = 1 where low <= x <= high, else
    0.

    (Tensor bounds are ``minimum(maximum(x, low), high)`` from the broadcasting ops: see ``clip``.)
    """

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        return _xp(x).clip(x, self.low, self.high)

    def backward(self, gy):
        x = self.inputs[0].data
        xp = _xp(x)
        if self.low is None and self.high is None:
            return gy
        low_ok = x >= self.low if self.low is not None else None
        high_ok = x <= self.high if self.high is not None else None
        inside = high_ok if low_ok is None else low_ok if high_ok is None else \
            xp.logical_and(low_ok, high_ok)
        return gy * _constant(_as_float(inside, x))


class Maximum(_Broadcasting):
    """y = max(a, b) elementwise;  the gradient goes to the larger input (to ``a`` on a tie)."""

    def forward(self, a, b):
        return _xp(a).maximum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        a_wins = _as_float(a.data >= b.data, self.output.data)
        return gy * _constant(a_wins), gy * _constant(1.0 - a_wins)


class Where(Function):
    """y = a where cond else b;  dy/da = cond,  dy/db = not cond  (cond is a constant).

    ``where`` promotes ``a`` and ``b`` to one dtype; ``cond`` stays boolean.
    """

    def forward(self, cond, a, b):
        return _xp(a).where(cond, a, b)

    def backward(self, gy):
        cond = self.inputs[0].data
        chosen = _as_float(cond, self.output.data)
        return None, gy * _constant(chosen), gy * _constant(1.0 - chosen)


def exp(x): return Exp()(x)
def log(x): return Log()(x)
def sqrt(x): return Sqrt()(x)
def sin(x): return Sin()(x)
def cos(x): return Cos()(x)
def abs(x): return Abs()(x)
def tanh(x): return Tanh()(x)
def sigmoid(x): return Sigmoid()(x)
def relu(x): return ReLU()(x)
def leaky_relu(x, slope=0.01): return LeakyReLU(slope)(x)
def softplus(x): return Softplus()(x)
def maximum(a, b): return Maximum()(a, b)
def minimum(a, b): return -maximum(-a, -b)   # the gradient goes to ``a`` on a tie, as in maximum


def clip(x, low=None, high=None):
    """Limit x to [low, high] (either may be None); the gradient is zero where x was clipped.

    Bounds are Python numbers (one op, Clip) or Tensors, which broadcast with ``x`` and receive the
    gradient where they are the value taken: then clip is ``minimum(maximum(x, low), high)``, and an
    ``x`` equal to a bound keeps the gradient, as with number bounds (and in PyTorch's clamp).
    """
    if not isinstance(low, Tensor) and not isinstance(high, Tensor):
        for name, bound in (("low", low), ("high", high)):
            if bound is not None and (isinstance(bound, bool)
                                      or not isinstance(bound, (int, float))):
                raise TypeError(f"clip: {name} must be a number, a Tensor or None, "
                                f"not {type(bound).__name__}")
        return Clip(low, high)(x)
    y = x if low is None else maximum(x, low)
    return y if high is None else minimum(y, high)


def where(cond, a, b):
    """a where cond is true, else b (all three broadcast together; a and b are promoted
    together)."""
    a, b = promote(a, b)
    cond = as_tensor(cond, a)
    if B.dtype_name(cond.dtype) != "bool":
        raise TypeError(f"where: cond must be a boolean tensor, not {B.dtype_name(cond.dtype)}")
    return Where()(cond, a, b)


# --------------------------------------------------------------------------------------------------
# Reductions
# --------------------------------------------------------------------------------------------------

def _normalize_axis(axis, ndim):
    """``axis`` (None, an integer or a tuple of them, negatives allowed) as a sorted tuple of
    non-negative ints.  A 0-d tensor takes axis 0 or -1, as in PyTorch, and reduces nothing; a
    repeated axis is an error."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:     # the common case, answered first
        return (axis % ndim,)
    try:
        axes = (operator.index(axis),) if not isinstance(axis, (tuple, list)) else tuple(
            operator.index(a) for a in axis)
    except TypeError:
        raise TypeError("axis must be None, an integer or a tuple of integers, not "
                        f"{axis!r}") from None
    out = []
    for a in axes:
        if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        if ndim:
            out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"axis {tuple(axes)} names an axis twice")
    return tuple(sorted(out))


def _kept_shape(shape, axes):
    """The shape of a reduction over ``axes`` with keepdims=True."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _expand(gy, x_shape, axes, keepdims):
    """Bring the gradient of a reduction back to the input's shape (broadcast along the reduced
    axes)."""
    if not keepdims:
        gy = reshape(gy, _kept_shape(x_shape, axes))
    return broadcast_to(gy, x_shape)


class Sum(Function):
    """y = sum of x over ``axis``;  dy/dx = 1 for every element that was summed."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = _normalize_axis(self.axis, x.ndim)
        return kernels.total(x, self.axes, self.keepdims)

    def backward(self, gy):
        return _expand(gy, self.inputs[0].shape, self.axes, self.keepdims)

    def backward_arrays(self, gy):
        shape = self.inputs[0].shape
        return kernels.expand(gy, _kept_shape(shape, self.axes), shape)


class Mean(Function):
    """y = mean of x over ``axis`` = (sum of x over ``axis``) / n, n the number of elements summed
    (NaN when there are none);  dy/dx = 1 / n for each of them.  For floating x (see ``mean``)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = _normalize_axis(self.axis, x.ndim)
        count = 1
        for a in self.axes:
            count *= x.shape[a]
        self.scale = 1.0 / count if count else float("nan")
        return kernels.total(x, self.axes, self.keepdims) * self.scale

    def backward(self, gy):
        return _expand(gy * self.scale, self.inputs[0].shape, self.axes, self.keepdims)

    def backward_arrays(self, gy):
        shape = self.inputs[0].shape
        return kernels.expand(B.ensure_array(gy * self.scale), _kept_shape(shape, self.axes),
                              shape)


class Max(Function):
    """y = max of x over ``axis``;  the gradient goes to the maximal elements (shared on ties)."""

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = _normalize_axis(self.axis, x.ndim)
        if builtins.any(x.shape[a] == 0 for a in self.axes):
            raise ValueError(f"max: cannot reduce an empty axis (shape {tuple(x.shape)}, axis "
                             f"{self.axis}): the maximum of no numbers is undefined")
        return _xp(x).max(x, axis=self.axes, keepdims=self.keepdims)

    def _shape_message(self, tensors, err):
        return str(err)

    def backward(self, gy):
        x = self.inputs[0]
        xp = _xp(x.data)
        y = xp.reshape(self.output.data, _kept_shape(x.shape, self.axes))
        is_max = _as_float(x.data == y, x.data)
        share = is_max / xp.sum(is_max, axis=self.axes, keepdims=True)
        return _expand(gy, x.shape, self.axes, self.keepdims) * _constant(share)


class LogSumExp(Function):
    """y = log(sum(exp(x))) over ``axis``, computed as m + log(sum(exp(x - m))) with m = max(x).

    Subtracting the maximum keeps exp from overflowing.  dy/dx = exp(x - y) = softmax(x).
    """

    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        xp = _xp(x)
        self.axes = _normalize_axis(self.axis, x.ndim)
        if builtins.any(x.shape[a] == 0 for a in self.axes):   # log of an empty sum: -inf
            y = B.of(x).full(_kept_shape(x.shape, self.axes), -float("inf"), x.dtype)
        else:
            m = xp.max(x, axis=self.axes, keepdims=True)
            m = xp.where(xp.isfinite(m), m, 0.0)  # all -inf (or inf): leave exp to say so
            y = xp.log(xp.sum(xp.exp(x - m), axis=self.axes, keepdims=True)) + m
        return y if self.keepdims else xp.reshape(y, tuple(
            d for i, d in enumerate(x.shape) if i not in self.axes))

    def backward(self, gy):
        x = self.inputs[0]
        y = self.output
        if not self.keepdims:
            y = reshape(y, _kept_shape(x.shape, self.axes))
        return _expand(gy, x.shape, self.axes, self.keepdims) * exp(x - y)


def sum(x, axis=None, keepdims=False): return Sum(axis, keepdims)(x)
def max(x, axis=None, keepdims=False): return Max(axis, keepdims)(x)
def logsumexp(x, axis=None, keepdims=False): return LogSumExp(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    """The mean over ``axis``: the sum divided by the number of elements summed (NaN for none, as in
    PyTorch; integers give the default float dtype)."""
    x = as_tensor(x)
    if B.category(x.data.dtype) == 2:
        return Mean(axis, keepdims)(x)
    axes = _normalize_axis(axis, x.ndim)
    count = 1
    for a in axes:
        count *= x.shape[a]
    return sum(x, axes, keepdims) * (1.0 / count if count else float("nan"))


# --------------------------------------------------------------------------------------------------
# Shapes, indexing, joining
# --------------------------------------------------------------------------------------------------

class Reshape(Function):
    """y = x with a new shape;  the gradient is reshaped back."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return _xp(x).reshape(x, self.shape)

    def _shape_message(self, tensors, err):
        return f"reshape: cannot reshape {tensors[0].shape} to {self.shape}"

    def backward(self, gy):
        return reshape(gy, self.inputs[0].shape)

    def backward_arrays(self, gy):
        return _xp(gy).reshape(gy, self.inputs[0].shape)


class Transpose(Function):
    """y = x with its axes permuted (reversed when ``axes`` is None);  the gradient is permuted
    back."""

    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        axes = tuple(range(x.ndim))[::-1] if self.axes is None else tuple(a % x.ndim
                                                                          for a in self.axes)
        self.perm = axes
        return _xp(x).permute_dims(x, axes)

    def backward(self, gy):
        inverse = [0] * len(self.perm)
        for i, a in enumerate(self.perm):
            inverse[a] = i
        return transpose(gy, tuple(inverse))


class BroadcastTo(Function):
    """y = x repeated along broadcast axes;  the gradient is summed back (see SumTo)."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        return _xp(x).broadcast_to(x, self.shape)

    def _shape_message(self, tensors, err):
        return f"broadcast_to: cannot broadcast {tensors[0].shape} to {self.shape}"

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)

    def backward_arrays(self, gy):
        return SumTo(self.inputs[0].shape).forward(gy)


class SumTo(Function):
    """y = x summed down to ``shape`` (the inverse of broadcasting);  the gradient is broadcast
    back."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(self.shape) if d == 1 and x.shape[lead + i] != 1)
        xp = _xp(x)
        y = xp.sum(x, axis=axes, keepdims=True) if axes else x
        return xp.reshape(y, self.shape) if lead else y

    def backward(self, gy):
        return broadcast_to(gy, self.inputs[0].shape)

    def backward_arrays(self, gy):
        return _xp(gy).broadcast_to(gy, self.inputs[0].shape)


def reshape(x, shape):
    shape = tuple(shape)
    return x if x.shape == shape else Reshape(shape)(x)


def transpose(x, axes=None): return Transpose(axes)(x)


def broadcast_to(x, shape):
    shape = tuple(shape)
    return x if x.shape == shape else BroadcastTo(shape)(x)


def sums_to(shape, target):
    """True when broadcasting can make ``shape`` from ``target`` (so summing undoes it)."""
    lead = len(shape) - len(target)
    return lead >= 0 and builtins.all(t == 1 or t == d for t, d in zip(target, shape[lead:]))


def sum_to(x, shape):
    """x summed down to ``shape``: the inverse of broadcasting ``shape`` to ``x.shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if not sums_to(x.shape, shape):
        raise ValueError(f"sum_to: cannot sum {x.shape} down to {shape} (broadcasting {shape} does "
                         f"not give {x.shape})")
    return SumTo(shape)(x)


def _has_array(index):
    parts = index if isinstance(index, tuple) else (index,)
    return builtins.any(B.is_array(p) for p in parts)


class GetItem(Function):
    """y = x[index];  the gradient is scattered back into zeros of x's shape (see GetItemGrad)."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        index = self.index
        if B.is_array(index) and index.ndim == 1 and B.dtype_name(index.dtype) != "bool":
            return _xp(x).take(x, index, axis=0)  # rows by number: the array API's own form
        return x[index]

    def backward(self, gy):
        return GetItemGrad(self.index, self.inputs[0].shape)(gy)


class GetItemGrad(Function):
    """y = zeros(shape) with g added at ``index`` (repeated indices add up); its gradient is
    g[index]."""

    def __init__(self, index, shape):
        self.index, self.shape = index, shape

    def forward(self, g):
        out = B.of(g).zeros(self.shape, like=g)
        if _has_array(self.index):
            B.of(g).scatter_add(out, self.index, g)
        else:  # slices and integers never select an element twice: plain assignment
            index = tuple(p for p in self.index if p is not None)  # new axes hold no elements of x
            out[index] = _xp(g).reshape(g, out[index].shape)
        return out

    def backward(self, ggx):
        return getitem(ggx, self.index)


def _index_to_backend(index, like):
    """Turn Tensors, lists and NumPy arrays in an index into arrays of ``like``'s backend."""
    owner = B.of(like.data)

    def convert(part):
        if isinstance(part, Tensor):
            return part.data
        if isinstance(part, list) or B.is_host_array(part):
            return owner.asarray(part)
        return part

    return tuple(convert(p) for p in index) if isinstance(index, tuple) else convert(index)


def _complete_index(index):
    """Basic indices get a trailing ``...`` so that they name every axis (the array API asks for
    it)."""
    parts = index if isinstance(index, tuple) else (index,)
    if builtins.any(B.is_array(p) for p in parts):
        return index
    if not builtins.any(p is Ellipsis for p in parts):
        parts = parts + (Ellipsis,)
    return parts


def getitem(x, index):
    return GetItem(_complete_index(_index_to_backend(index, x)))(x)


class Concatenate(Function):
    """y = the inputs joined along ``axis``;  each input's gradient is its slice of the gradient."""

    promotes = True

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        return _xp(xs[0]).concat(xs, axis=self.axis)

    def backward(self, gy):
        axis = self.axis % gy.ndim
        grads, start = [], 0
        for x in self.inputs:
            stop = start + x.shape[axis]
            grads.append(gy[(slice(None),) * axis + (slice(start, stop),)])
            start = stop
        return tuple(grads)


class Stack(Function):
    """y = the inputs stacked along a new ``axis``;  input i gets the gradient's i-th slice."""

    promotes = True

    def __init__(self, axis=0):
        self.axis = axis

    def forward(self, *xs):
        return _xp(xs[0]).stack(xs, axis=self.axis)

    def backward(self, gy):
        axis = self.axis % gy.ndim
        return tuple(gy[(slice(None),) * axis + (i,)] for i in range(len(self.inputs)))


def _sequence(who, tensors):
    """A list of tensors; one Tensor is refused (iterating it would give its rows), as in
    PyTorch."""
    if isinstance(tensors, Tensor):
        raise TypeError(f"{who}: expected a sequence of tensors, not one Tensor (pass [t1, t2])")
    return list(tensors)


def concatenate(tensors, axis=0): return Concatenate(axis)(*_sequence("concatenate", tensors))
def stack(tensors, axis=0): return Stack(axis)(*_sequence("stack", tensors))


# --------------------------------------------------------------------------------------------------
# Devices and dtypes
# --------------------------------------------------------------------------------------------------

class ToDevice(Function):
    """y = x copied to another backend;  the gradient is copied back."""

    def __init__(self, target):
        self.target = target

    def forward(self, x):
        self.source = B.of(x).name
        return B.to_backend(x, self.target)

    def backward(self, gy):
        return to_device(gy, self.source)


class AsType(Function):
    """y = x converted to another dtype;  the gradient is converted back."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        return _xp(x).astype(x, B.of(x).dtype(self.dtype))

    def backward(self, gy):
        return astype(gy, B.dtype_name(self.inputs[0].dtype))


def to_device(x, target): return ToDevice(target)(x)


def astype(x, dtype):
    return x if B.dtype_name(x.dtype) == dtype else AsType(dtype)(x)


# --------------------------------------------------------------------------------------------------
# Comparisons (no gradient)
# --------------------------------------------------------------------------------------------------

def compare(a, b, op):
    """Elementwise comparison (``op`` is "less", "equal"...) giving a boolean constant tensor; the
    operands are promoted first (``bool_mask == 2`` compares integers, as in PyTorch)."""
    a, b = promote(a, b)
    if type(a.data) is not type(b.data):
        raise ValueError(f"{op}: tensors on two devices ({a.device} and {b.device})")
    return _constant(getattr(_xp(a.data), op)(a.data, b.data))

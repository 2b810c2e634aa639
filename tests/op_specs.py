"""One description per differentiable op: how to draw its inputs, and an independent NumPy
reference.

The property tests (test_op_gradients.py, test_float32_strict.py) turn each spec into hypothesis
tests. Values are drawn from grids (multiples of 1/64 plus an offset) so that ties and kinks - where
a derivative does not exist - are never closer than the finite-difference step.

Shapes include 0-d and size-0 arrays.  The binary ops (and ``where``'s two branches) also draw
operands that are not float64 tensors to differentiate: Python numbers, and constant tensors of
other dtypes (float32, int64, int32, bool; dimensioned or 0-d), wrapped in :class:`Const`.  The
dtype the result must have is then PyTorch's, from :func:`torch_result_dtype`, a rule written here
independently of minigen's.
"""

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg

SIDE = 3  # small arrays keep the element-by-element numerical derivative cheap


def grid(low, high, offset=0.0, exclude_zero=False):
    """Floats in [low, high] on a grid of step 1/64 (+ offset), as a hypothesis strategy."""
    ints = st.integers(int(np.ceil(low * 64)), int(np.floor(high * 64)))
    if exclude_zero:
        ints = ints.filter(lambda i: i != 0)
    return ints.map(lambda i: i / 64 + offset)


def unary_shapes(empty=True):
    """Shapes of 0 to 3 dimensions, sometimes with a side of 0 (an empty array) when ``empty``."""
    shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=SIDE)
    if not empty:
        return shapes
    return st.one_of(shapes, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=SIDE))


def broadcast_pair():
    def pairs(min_side):
        return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3,
                                                 min_side=min_side, max_side=SIDE)
    return st.one_of(pairs(1), pairs(0)).map(lambda s: s.input_shapes)


# --------------------------------------------------------------------------------------------------
# Operands that are not float64 tensors to differentiate
# --------------------------------------------------------------------------------------------------

@dataclass
class Const:
    """An operand that is not differentiated: a Python number, or a NumPy array of any dtype that
    the tests turn into a constant Tensor."""
    value: object

    def operand(self, float_dtype=None):
        """The operand as the op receives it; ``float_dtype`` replaces float64 constants (for the
        float32 runs, where a float64 array may not exist)."""
        if isinstance(self.value, np.ndarray):
            value = self.value
            if float_dtype is not None and value.dtype == np.float64:
                value = value.astype(float_dtype)
            return mg.Tensor(value)
        return self.value


def operands(arrays, dtype=np.float64):
    """(what the op receives, the tensors that require grad): each float64 array becomes a tensor
    of ``dtype`` that requires grad, each Const its operand."""
    ops, checked = [], []
    for a in arrays:
        if isinstance(a, Const):
            ops.append(a.operand(None if dtype == np.float64 else dtype))
        else:
            t = mg.Tensor(a.astype(dtype), requires_grad=True)
            ops.append(t)
            checked.append(t)
    return ops, checked


def with_checked(ops, tensors):
    """``ops`` with its tensors that require grad replaced, in order, by ``tensors``."""
    tensors = iter(tensors)
    return [next(tensors) if isinstance(x, mg.Tensor) and x.requires_grad else x for x in ops]


def reference_values(arrays):
    """The values the NumPy reference computes with: float64 arrays (a Python number as is)."""
    out = []
    for a in arrays:
        value = a.value if isinstance(a, Const) else a
        out.append(value if not isinstance(value, np.ndarray) else value.astype(np.float64))
    return out


def torch_result_dtype(arrays, float_dtype="float64", default="float64"):
    """PyTorch's promotion for these operands (float64 arrays stand for tensors of ``float_dtype``):
    the highest category wins (bool < int < float); among the operands of that category, the
    dimensioned tensors decide if any, else the 0-d tensors, else Python numbers (bool, int64, or
    the default float dtype)."""
    category = {"b": 0, "i": 1, "u": 1, "f": 2}
    members = []                        # (priority, category, dtype name or None)
    for a in arrays:
        value = a.value if isinstance(a, Const) else a
        if isinstance(value, np.ndarray):
            name = value.dtype.name if isinstance(a, Const) else float_dtype
            if float_dtype != "float64" and name == "float64":
                name = float_dtype
            members.append((0 if value.ndim else 1, category[np.dtype(name).kind], name))
        else:
            kind = "b" if isinstance(value, bool) else "i" if isinstance(value, int) else "f"
            members.append((2, category[kind], {"b": "bool", "i": "int64", "f": default}[kind]))
    top = max(c for _, c, _ in members)
    for priority in (0, 1, 2):
        names = [n for p, c, n in members if p == priority and c == top]
        if names:
            return np.result_type(*names).name


def _operand(data, shape, low, high, offset=0.0, numbers=True, label="x"):
    """A float64 array to differentiate, or (when ``numbers``) sometimes a Const in [low, high]: a
    Python float or int, or a constant array of another dtype (integers and booleans only where the
    domain holds them)."""
    kinds = ["tensor", "tensor"]
    if numbers:
        kinds += ["python float", "float32"]
        if np.ceil(low) <= np.floor(high):
            kinds += ["python int", "int64", "int32"]
        if low <= 0 and high >= 1 and offset == 0.0:
            kinds += ["bool"]
    kind = data.draw(st.sampled_from(kinds), label=f"{label} kind")
    if kind == "tensor":
        return data.draw(hnp.arrays(np.float64, shape, elements=grid(low, high, offset)),
                         label=label)
    if kind == "python float":
        return Const(data.draw(grid(low, high, offset), label=label))
    if kind == "python int":
        return Const(data.draw(st.integers(int(np.ceil(low)), int(np.floor(high))), label=label))
    if kind == "float32":
        return Const(data.draw(hnp.arrays(np.float32, shape, elements=grid(low, high, offset)),
                               label=label))
    if kind == "bool":
        return Const(data.draw(hnp.arrays(np.bool_, shape), label=label))
    ints = st.integers(int(np.ceil(low)), int(np.floor(high)))
    return Const(data.draw(hnp.arrays(np.dtype(kind), shape, elements=ints), label=label))


def _two_operands(data, shapes, a_domain, b_domain, b_offset=0.0, numbers=True):
    """Two operands, at least one of them a float64 array to differentiate."""
    sa, sb = shapes
    a = _operand(data, sa, *a_domain, numbers=numbers, label="a")
    b = _operand(data, sb, *b_domain, offset=b_offset, numbers=numbers and not isinstance(a, Const),
                 label="b")
    return a, b


def axis_for(shape):
    """None, one axis (maybe negative) or a tuple of distinct axes of ``shape``."""
    ndim = len(shape)
    if ndim == 0:
        return st.just(None)
    return st.one_of(st.just(None), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                              unique=True).map(tuple))


@dataclass
class OpSpec:
    name: str
    fn: Callable            # minigen: (tensors..., **params) -> Tensor
    ref: Callable           # NumPy reference: (arrays..., **params) -> array
    draw: Callable          # data -> (list of float64 arrays, dict of params)
    second_order: bool = False


def _unary(elements, params=None):
    def draw(data):
        shape = data.draw(unary_shapes(), label="shape")
        x = data.draw(hnp.arrays(np.float64, shape, elements=elements), label="x")
        return [x], (params(data, shape) if params else {})
    return draw


def _binary(a_domain, b_domain, b_offset=0.0):
    """Two operands with values in the domains (low, high); see _operand for their kinds."""
    def draw(data):
        shapes = data.draw(broadcast_pair(), label="shapes")
        return list(_two_operands(data, shapes, a_domain, b_domain, b_offset)), {}
    return draw


def _reduction_params(data, shape):
    return {"axis": data.draw(axis_for(shape), label="axis"),
            "keepdims": data.draw(st.booleans(), label="keepdims")}


def _np_logsumexp(x, axis=None, keepdims=False):
    axes = tuple(range(x.ndim)) if axis is None else np.atleast_1d(axis) % max(x.ndim, 1)
    if any(x.shape[a] == 0 for a in axes):        # the log of an empty sum
        y = np.full([1 if i in axes else d for i, d in enumerate(x.shape)], -np.inf)
        return y if keepdims else np.squeeze(y, axis=tuple(axes))
    m = np.max(x, axis=axis, keepdims=True)
    y = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return y if keepdims else np.squeeze(y, axis=axis if axis is not None else tuple(range(x.ndim)))


def _matmul_draw(data):
    kind = data.draw(st.sampled_from(["2d", "batched", "vec-mat", "mat-vec", "vec-vec",
                                      "broadcast"]))
    n, m, b = (data.draw(st.integers(1, SIDE)) for _ in range(3))
    k = data.draw(st.integers(0, SIDE))          # k = 0: an empty sum, zeros
    shapes = {"2d": ((n, k), (k, m)), "batched": ((b, n, k), (b, k, m)), "vec-mat": ((k,), (k, m)),
              "mat-vec": ((n, k), (k,)), "vec-vec": ((k,), (k,)),
              "broadcast": ((b, n, k), (k, m))}[kind]
    el = grid(-2, 2)
    return [data.draw(hnp.arrays(np.float64, s, elements=el)) for s in shapes], {}


def _reshape_draw(data):
    shape = data.draw(unary_shapes())
    x = data.draw(hnp.arrays(np.float64, shape, elements=grid(-2, 2)))
    target = data.draw(st.sampled_from([(-1,), tuple(reversed(shape)), (1,) + shape]))
    return [x], {"shape": target}


def _transpose_draw(data):
    shape = data.draw(unary_shapes())
    axes = data.draw(st.one_of(st.just(None), st.permutations(range(len(shape))).map(tuple)))
    return [data.draw(hnp.arrays(np.float64, shape, elements=grid(-2, 2)))], {"axes": axes}


def _getitem_draw(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=SIDE))
    x = data.draw(hnp.arrays(np.float64, shape, elements=grid(-2, 2)))
    kind = data.draw(st.sampled_from(["basic", "int-array", "int", "mask"]))
    if kind == "basic":
        index = data.draw(hnp.basic_indices(shape, min_dims=0, allow_newaxis=True))
    elif kind == "int-array":  # repeated indices must add up in the backward
        index = np.array(data.draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=5)))
    elif kind == "int":
        index = data.draw(st.integers(-shape[0], shape[0] - 1))
    else:
        index = data.draw(hnp.arrays(np.bool_, shape[:1]))
    return [x], {"index": index}


def _broadcast_to_draw(data):
    shape, target = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=1, min_dims=0,
                                                                max_dims=3,
                                                               max_side=SIDE).map(
        lambda s: (s.input_shapes[0], s.result_shape)))
    return [data.draw(hnp.arrays(np.float64, shape, elements=grid(-2, 2)))], {"shape": target}


def _sum_to_draw(data):
    """x has a broadcast shape; the target is a shape that broadcasts to it."""
    target, x_shape = data.draw(hnp.mutually_broadcastable_shapes(
        num_shapes=1, min_dims=0, max_dims=3, max_side=SIDE).map(
        lambda s: (s.input_shapes[0], s.result_shape)))
    return [data.draw(hnp.arrays(np.float64, x_shape, elements=grid(-2, 2)))], {"shape": target}


def _join_draw(new_axis):
    def draw(data):
        shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=SIDE))
        count = data.draw(st.integers(1, 3))
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
        arrays = []
        for _ in range(count):
            s = list(shape)
            if not new_axis:
                s[axis] = data.draw(st.integers(0, SIDE))    # 0: an empty piece
            arrays.append(data.draw(hnp.arrays(np.float64, tuple(s), elements=grid(-2, 2))))
        return arrays, {"axis": axis}
    return draw


def _where_draw(data):
    sa, sb = data.draw(broadcast_pair())
    cond_shape = data.draw(hnp.broadcastable_shapes(np.broadcast_shapes(sa, sb), min_side=0,
                                                    max_side=SIDE))
    a, b = _two_operands(data, (sa, sb), (-2, 2), (-2, 2))
    return [a, b], {"cond": data.draw(hnp.arrays(np.bool_, cond_shape))}


def _pow_scalar_draw(data):
    shape = data.draw(unary_shapes())
    x = data.draw(hnp.arrays(np.float64, shape, elements=grid(0.5, 2)))
    return [x], {"c": data.draw(st.sampled_from([2, 3, -1, 0.5, -1.5, 2.5]))}


def _leaky_draw(data):
    shape = data.draw(unary_shapes())
    x = data.draw(hnp.arrays(np.float64, shape, elements=grid(-2, 2, offset=1 / 128)))
    return [x], {"slope": data.draw(st.sampled_from([0.01, 0.2, 0.5]))}


def _clip_draw(data):
    shape = data.draw(unary_shapes())
    x = data.draw(hnp.arrays(np.float64, shape, elements=grid(-2, 2, offset=1 / 128)))
    low, high = data.draw(st.sampled_from([(-0.5, 0.5), (None, 1.0), (-1.0, None), (0.0, 0.25)]))
    return [x], {"low": low, "high": high}


def _maximum_draw(data):
    # b is off a's grid by 1/128, so the two never tie (no integer or boolean operands, which could)
    a, b = _two_operands(data, data.draw(broadcast_pair()), (-2, 2), (-2, 2), b_offset=1 / 128)
    return [a, b], {}


def _reparameterize_draw(data):
    three = hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=SIDE)
    shapes = data.draw(three.map(lambda s: s.input_shapes), label="shapes")
    ranges = [(-3, 3), (-3, 2), (-2, 2)]          # mu, log_var, eps
    return [data.draw(hnp.arrays(np.float64, shape, elements=grid(*r)), label=name)
            for shape, r, name in zip(shapes, ranges, ("mu", "log_var", "eps"))], {}


def _max_draw(data):
    shape = data.draw(unary_shapes(empty=False))   # the maximum of no numbers is an error
    size = int(np.prod(shape))
    values = data.draw(st.lists(st.integers(-200, 200), min_size=size, max_size=size, unique=True))
    x = np.array(values, dtype=np.float64).reshape(shape) / 64  # distinct: no ties at the maximum
    return [x], _reduction_params(data, shape)


def _np_mean(x, axis, keepdims):
    with warnings.catch_warnings():           # the mean of nothing: NaN, as minigen's and PyTorch's
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.mean(x, axis=axis, keepdims=keepdims)


def _np_power(a, b):
    return np.power(np.asarray(a, np.float64), b)   # NumPy refuses int ** negative int


SPECS = [
    OpSpec("add", lambda a, b: a + b, np.add, _binary((-3, 3), (-3, 3)), second_order=True),
    OpSpec("sub", lambda a, b: a - b, np.subtract, _binary((-3, 3), (-3, 3))),
    OpSpec("mul", lambda a, b: a * b, np.multiply, _binary((-3, 3), (-3, 3)),
           second_order=True),
    OpSpec("div", lambda a, b: a / b, np.divide, _binary((-3, 3), (0.5, 3)),
           second_order=True),
    OpSpec("pow", lambda a, b: a ** b, _np_power, _binary((0.5, 2), (-2, 2)),
           second_order=True),
    OpSpec("pow_scalar", lambda x, c: x ** c, lambda x, c: x ** c, _pow_scalar_draw,
           second_order=True),
    OpSpec("neg", lambda x: -x, np.negative, _unary(grid(-3, 3))),
    OpSpec("abs", mg.abs, np.abs, _unary(grid(-3, 3, exclude_zero=True))),
    OpSpec("matmul", lambda a, b: a @ b, np.matmul, _matmul_draw, second_order=True),
    OpSpec("exp", mg.exp, np.exp, _unary(grid(-3, 3)), second_order=True),
    OpSpec("log", mg.log, np.log, _unary(grid(0.25, 5)), second_order=True),
    OpSpec("sqrt", mg.sqrt, np.sqrt, _unary(grid(0.25, 5)), second_order=True),
    OpSpec("sin", mg.sin, np.sin, _unary(grid(-4, 4)), second_order=True),
    OpSpec("cos", mg.cos, np.cos, _unary(grid(-4, 4)), second_order=True),
    OpSpec("tanh", mg.tanh, np.tanh, _unary(grid(-3, 3)), second_order=True),
    OpSpec("sigmoid", mg.sigmoid, lambda x: 1 / (1 + np.exp(-x)), _unary(grid(-6, 6)),
           second_order=True),
    OpSpec("relu", mg.relu, lambda x: np.maximum(x, 0), _unary(grid(-3, 3, offset=1 / 128)),
           second_order=True),
    OpSpec("leaky_relu", lambda x, slope: mg.leaky_relu(x, slope),
           lambda x, slope: np.where(x > 0, x, slope * x), _leaky_draw, second_order=True),
    OpSpec("softplus", mg.softplus, lambda x: np.log1p(np.exp(x)), _unary(grid(-6, 6)),
           second_order=True),
    OpSpec("clip", lambda x, low, high: mg.clip(x, low, high),
           lambda x, low, high: np.clip(x, low, high), _clip_draw),
    OpSpec("maximum", mg.maximum, np.maximum, _maximum_draw, second_order=True),
    OpSpec("where", lambda a, b, cond: mg.where(mg.Tensor(cond), a, b),
           lambda a, b, cond: np.where(cond, a, b), _where_draw),
    OpSpec("sum", lambda x, axis, keepdims: x.sum(axis, keepdims),
           lambda x, axis, keepdims: np.sum(x, axis=axis, keepdims=keepdims),
           _unary(grid(-3, 3), _reduction_params), second_order=True),
    OpSpec("mean", lambda x, axis, keepdims: x.mean(axis, keepdims),
           _np_mean,
           _unary(grid(-3, 3), _reduction_params)),
    OpSpec("max", lambda x, axis, keepdims: x.max(axis, keepdims),
           lambda x, axis, keepdims: np.max(x, axis=axis, keepdims=keepdims), _max_draw),
    OpSpec("logsumexp", lambda x, axis, keepdims: mg.logsumexp(x, axis, keepdims), _np_logsumexp,
           _unary(grid(-4, 4), _reduction_params), second_order=True),
    OpSpec("reshape", lambda x, shape: x.reshape(shape), lambda x, shape: np.reshape(x, shape),
           _reshape_draw),
    OpSpec("transpose", lambda x, axes: x.transpose(axes) if axes is not None else x.T,
           lambda x, axes: np.transpose(x, axes), _transpose_draw),
    OpSpec("broadcast_to", lambda x, shape: mg.broadcast_to(x, shape),
           lambda x, shape: np.broadcast_to(x, shape), _broadcast_to_draw),
    OpSpec("sum_to", lambda x, shape: mg.sum_to(x, shape),
           lambda x, shape: np.sum(x, axis=tuple(range(x.ndim - len(shape))) + tuple(
               x.ndim - len(shape) + i for i, d in enumerate(shape) if d == 1),
               keepdims=True).reshape(shape), _sum_to_draw),
    OpSpec("getitem", lambda x, index: x[index], lambda x, index: x[index], _getitem_draw,
           second_order=True),
    OpSpec("concatenate", lambda *xs, axis: mg.concatenate(xs, axis),
           lambda *xs, axis: np.concatenate(xs, axis), _join_draw(new_axis=False)),
    OpSpec("reparameterize", lambda mu, lv, eps: mg.distributions.Reparameterize()(mu, lv, eps),
           lambda mu, lv, eps: mu + np.exp(0.5 * lv) * eps, _reparameterize_draw,
           second_order=True),
    OpSpec("stack", lambda *xs, axis: mg.stack(xs, axis), lambda *xs, axis: np.stack(xs, axis),
           _join_draw(new_axis=True)),
]

SECOND_ORDER = [s for s in SPECS if s.second_order]


def call(spec, tensors, params):
    return spec.fn(*tensors, **params)

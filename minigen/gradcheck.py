"""Numerical gradient checking: is a backward rule right?

For a function ``y = f(x1, ..., xn)``, each entry of the Jacobian dy[j]/dx[i] that backpropagation
computes (one backward pass per output element j, with the upstream gradient e_j) is compared with a
central difference of that output element alone

    dy[j]/dx[i]  ~  (y[j](x + eps e_i) - y[j](x - eps e_i)) / (2 eps)

whose error is O(eps^2) plus the rounding of y[j] itself, divided by eps.  In float64 with eps =
1e-6 the two agree to about 1e-8 of y[j]'s size when the rule is right; a wrong rule is off by far
more. Entry by entry (as PyTorch's gradcheck), so outputs of very different sizes do not mix:
rounding in a large output never hides, or fakes, an error in a small one.  An entry passes when

    |analytic - numerical| <= atol + rtol * |numerical|

and a numerical derivative that is not finite (the function overflows near the point) is an error,
never a pass.  The check also fails a backward that changes its upstream gradient ``gy`` in place,
and one that returns a gradient of the wrong shape.

``gradgradcheck`` applies the same test to the gradient itself (second order): the function checked
is ``x -> dL/dx`` with L = sum(u * f(x)) for a fixed random ``u``, computed with
``create_graph=True``.
"""

import itertools
import math

from . import backend as B
from .autograd import Tensor, grad

__all__ = ["GradcheckError", "gradcheck", "gradgradcheck"]


class GradcheckError(AssertionError):
    """Analytic and numerical gradients disagree (the message names the input and the element)."""


def _random_like(tensor, seed):
    owner = B.of(tensor.data)
    return Tensor._wrap(owner.asarray(B.seeded_normal(tensor.shape, seed), dtype=tensor.dtype))


def _check_inputs(inputs):
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(x).__name__}, not a Tensor")
        if x.requires_grad and B.dtype_name(x.dtype) != "float64":
            raise TypeError(
                f"gradcheck: input {i} is {B.dtype_name(x.dtype)}; numerical derivatives need "
                "float64 (make it with dtype='float64' or mg.set_default_dtype('float64'))")
    if not any(x.requires_grad for x in inputs):
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    return inputs


def _indices(shape):
    return list(itertools.product(*(range(d) for d in shape)))


def _values(fn, inputs):
    """fn's output as a flat list of Python floats."""
    return fn(*inputs).numpy().ravel().tolist()


def _analytic_jacobian(out, xs):
    """jac[k][i][j] = d out[j] / d xs[k][i] by backpropagation: one backward per output element."""
    jac = [[[0.0] * out.size for _ in range(x.size)] for x in xs]
    if not out.requires_grad:                 # the output depends on no input: every entry is 0
        return jac
    owner = B.of(out.data)
    xp = B.namespace(out.data)
    for j, index in enumerate(_indices(out.shape)):
        u = Tensor._wrap(owner.zeros(out.shape, like=out.data))
        u.data[index] = 1.0
        grads = grad(out, xs, grad_outputs=u, retain_graph=True)
        if float(u.data[index]) != 1.0 or float(xp.sum(xp.abs(u.data))) != 1.0:
            raise GradcheckError(
                "gradcheck: a backward changed its upstream gradient gy in place; gy may be "
                "shared with other gradients, so a backward must compute new tensors (gy * 2, not "
                "gy *= 2)")
        for k, (x, g) in enumerate(zip(xs, grads)):
            if g.shape != x.shape:
                raise GradcheckError(
                    f"gradcheck: the gradient of input {k} has shape {g.shape}, "
                    f"but the input has shape {x.shape}")
            for i, value in enumerate(g.numpy().ravel().tolist()):
                jac[k][i][j] = value
    return jac


def _numerical_column(fn, inputs, x, index, eps):
    """d out / d x[index] by central differences, one entry per output element."""
    # A Python float holds a float64 exactly, so writing it back restores the input bit for bit
    # (x.data[index] itself would be a view on CuPy, changed by the writes below).  fn runs with
    # recording on: it may itself differentiate, as in gradgradcheck.
    value = float(x.data[index])
    try:
        x.data[index] = value + eps
        plus = _values(fn, inputs)
        x.data[index] = value - eps
        minus = _values(fn, inputs)
    finally:
        x.data[index] = value
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, verbose=False, seed=0):
    """Check the gradients of ``fn(*inputs)`` against central differences; True or GradcheckError.

    ``inputs``: float64 Tensors; those with ``requires_grad=True`` are checked.  Every Jacobian
    entry d out[j] / d input[i] passes when ``|analytic - numerical| <= atol + rtol * |numerical|``.
    ``verbose=True`` prints every entry that is not 0 on both sides.  The inputs are perturbed in
    place during the check and restored exactly afterwards.  (``seed`` chooses gradgradcheck's
    random upstream gradient; the first-order check uses none.)
    """
    inputs = _check_inputs(inputs)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, not {type(out).__name__}")
    numbers = [n for n, x in enumerate(inputs) if x.requires_grad]
    analytic = _analytic_jacobian(out, [inputs[n] for n in numbers])
    out_indices = _indices(out.shape)

    rows, failures = [], []
    for number, jac in zip(numbers, analytic):
        x = inputs[number]
        for i, index in enumerate(_indices(x.shape)):
            numerical = _numerical_column(fn, inputs, x, index, eps)
            for j, out_index in enumerate(out_indices):
                a, n = jac[i][j], numerical[j]
                if not math.isfinite(n):
                    raise GradcheckError(
                        f"gradcheck: the numerical derivative of output element {out_index} "
                        f"with respect to input {number}, element {index} is {n}: fn is not "
                        f"finite within eps={eps:g} of this point, so its gradient cannot be "
                        "checked here; choose inputs where fn is finite and smooth")
                ok = abs(a - n) <= atol + rtol * abs(n)
                rows.append((number, index, out_index, a, n, ok))
                if not ok:
                    failures.append(rows[-1])

    if verbose:
        _print_table(rows)
    if failures:
        number, index, out_index, a, n, _ = failures[0]
        raise GradcheckError(
            f"gradcheck: input {number}, element {index}, output element {out_index}: analytic "
            f"{a:.8g}, numerical {n:.8g} (difference {abs(a - n):.3g} > atol {atol:g} + rtol "
            f"{rtol:g} * |numerical|); {len(failures)} of {len(rows)} Jacobian entries disagree")
    return True


def _print_table(rows):
    shown = [row for row in rows if row[3] != 0.0 or row[4] != 0.0]
    print(f"{'input':>5}  {'element':<12} {'output':<12} {'analytic':>14} {'numerical':>14} "
          f"{'|difference|':>13}  ok")
    for number, index, out_index, a, n, ok in shown:
        print(f"{number:>5}  {str(index):<12} {str(out_index):<12} {a:>14.8g} {n:>14.8g} "
              f"{abs(a - n):>13.3g}  {'yes' if ok else 'NO'}")
    if len(shown) < len(rows):
        print(f"({len(rows) - len(shown)} entries that are 0 on both sides not shown)")


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, verbose=False, seed=0):
    """Check second derivatives: gradcheck applied to ``x -> grad(sum(u * fn(x)), x)``.

    The first-order gradient is built with ``create_graph=True`` for a fixed random ``u``, flattened
    and joined into one vector, and its own gradient is compared with central differences.
    """
    from .functions import concatenate, reshape

    inputs = _check_inputs(inputs)
    u = _random_like(fn(*inputs), seed + 1)

    def first_order(*xs):
        out = fn(*xs)
        wanted = [x for x in xs if x.requires_grad]
        if not out.requires_grad:
            return concatenate([reshape(x.detach() * 0.0, (-1,)) for x in wanted])
        upstream = Tensor._wrap(B.of(u.data).copy(u.data))   # a backward may not change ours
        gs = grad(out, wanted, grad_outputs=upstream, create_graph=True)
        return concatenate([reshape(g, (-1,)) for g in gs])

    return gradcheck(first_order, inputs, eps=eps, atol=atol, rtol=rtol, verbose=verbose, seed=seed)

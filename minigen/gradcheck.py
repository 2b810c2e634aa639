"""Numerical gradient checking: is a backward rule right?

For a function ``y = f(x1, ..., xn)`` and a random upstream gradient ``u`` (the shape of ``y``), the
scalar ``L = sum(u * f(x))`` has the gradient that backpropagation computes from ``u``.  Each
element of that gradient is compared with a central difference

    dL/dx[i]  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)

whose error is O(eps^2).  In float64 with eps = 1e-6 the two agree to about 1e-8 when the backward
rule is right; a wrong rule is off by far more.  A random ``u`` (rather than all ones) catches rules
that are only right on average, e.g. a transposed gradient of a square matrix.

``gradgradcheck`` applies the same test to the gradient itself (second order): the function checked
is ``x -> dL/dx`` computed with ``create_graph=True``.
"""

import itertools

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


def _weighted_sum(fn, inputs, u):
    """L(x) = sum(u * f(x)) as a Python float."""
    out = fn(*inputs)
    xp = B.namespace(out.data)
    return float(xp.sum(out.data * u.data))


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, verbose=False, seed=0):
    """Check the gradients of ``fn(*inputs)`` against central differences; True or GradcheckError.

    ``inputs``: float64 Tensors; those with ``requires_grad=True`` are checked.  An element passes
    when ``|analytic - numerical| <= atol + rtol * |numerical|``.  ``verbose=True`` prints every
    comparison. The inputs are perturbed in place during the check and restored exactly afterwards.
    """
    inputs = _check_inputs(inputs)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, not {type(out).__name__}")
    checked = [x for x in inputs if x.requires_grad]
    u = _random_like(out, seed)
    if out.requires_grad:
        analytic = grad(out, checked, grad_outputs=u)
    else:  # the output does not depend on any input: every gradient is zero
        analytic = [Tensor._wrap(B.namespace(x.data).zeros_like(x.data)) for x in checked]

    rows, failures = [], []
    for number, (x, g) in enumerate(zip(inputs, _align(inputs, analytic))):
        if g is None:
            continue
        if g.shape != x.shape:
            raise GradcheckError(
                f"gradcheck: the gradient of input {number} has shape {g.shape}, "
                f"but the input has shape {x.shape}")
        g_host = g.numpy()
        for index in itertools.product(*(range(d) for d in x.shape)):
            # A Python float holds a float64 exactly, so writing it back restores the input bit for
            # bit (x.data[index] itself would be a view on CuPy, changed by the writes below).
            value = float(x.data[index])
            # (not under no_grad: fn may itself differentiate, as in gradgradcheck)
            x.data[index] = value + eps
            plus = _weighted_sum(fn, inputs, u)
            x.data[index] = value - eps
            minus = _weighted_sum(fn, inputs, u)
            x.data[index] = value
            numerical = (plus - minus) / (2 * eps)
            analytic_value = float(g_host[index])
            ok = abs(analytic_value - numerical) <= atol + rtol * abs(numerical)
            rows.append((number, index, analytic_value, numerical, ok))
            if not ok:
                failures.append(rows[-1])

    if verbose:
        _print_table(rows)
    if failures:
        number, index, a, n, _ = failures[0]
        raise GradcheckError(
            f"gradcheck: input {number}, element {index}: analytic {a:.8g}, numerical {n:.8g} "
            f"(difference {abs(a - n):.3g} > atol {atol:g} + rtol {rtol:g} * |numerical|); "
            f"{len(failures)} of {len(rows)} elements disagree")
    return True


def _align(inputs, analytic):
    """One entry per input: its analytic gradient, or None for inputs that are not checked."""
    grads = iter(analytic)
    return [next(grads) if x.requires_grad else None for x in inputs]


def _print_table(rows):
    print(f"{'input':>5}  {'element':<14} {'analytic':>14} {'numerical':>14} {'|difference|':>13}  "
          "ok")
    for number, index, a, n, ok in rows:
        print(f"{number:>5}  {str(index):<14} {a:>14.8g} {n:>14.8g} {abs(a - n):>13.3g}  "
              f"{'yes' if ok else 'NO'}")


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
        gs = grad(out, wanted, grad_outputs=u, create_graph=True)
        return concatenate([reshape(g, (-1,)) for g in gs])

    return gradcheck(first_order, inputs, eps=eps, atol=atol, rtol=rtol, verbose=verbose, seed=seed)

# %% [markdown]
# # Solutions: 2. Tensors, broadcasting and the life of a gradient
#
# Worked solutions to the exercises of [tutorial 2](../02_tensors_and_broadcasting.py). Try each
# exercise before reading its solution.

# %%
import os

import numpy as np

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
mg.manual_seed(0)


def unbroadcast(grad, shape):
    """The tutorial's rule: sum the array `grad` down to `shape`, undoing NumPy's broadcasting."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


# %% [markdown]
# ## Exercise 1: the shapes of `a.grad` and `b.grad`
#
# Line the shapes up from the right: $(5, 1, 3)$ and $(\,\cdot\,, 4, 1)$. The last axis is 3 against
# 1, the middle 1 against 4, and `b` has no first axis: the product has shape $(5, 4, 3)$. Each
# gradient has its own tensor's shape, so `a.grad` is $(5, 1, 3)$ (the middle axis summed, kept with
# size 1) and `b.grad` is $(4, 1)$ (the added first axis summed away, the last summed and kept).

# %%
a = mg.randn(5, 1, 3, dtype="float64", requires_grad=True)
b = mg.randn(4, 1, dtype="float64", requires_grad=True)
c = a * b
g = mg.randn(*c.shape, dtype="float64")
c.backward(g)
print("c.shape", c.shape, "| a.grad", a.grad.shape, "| b.grad", b.grad.shape)
print("a.grad matches unbroadcast:", np.allclose(a.grad.numpy(), unbroadcast(g.numpy() * b.numpy(),
                                                                            a.shape)))
print("b.grad matches unbroadcast:", np.allclose(b.grad.numpy(), unbroadcast(g.numpy() * a.numpy(),
                                                                            b.shape)))

# %% [markdown]
# ## Exercise 2: micro-batches of sizes 3 and 5
#
# The whole batch's mean is $\frac18 \sum_{n=1}^{8} \ell_n = \frac38 \cdot \frac13 \sum_{n \le 3}
# \ell_n + \frac58 \cdot \frac15 \sum_{n > 3} \ell_n$: each micro-batch's mean must be weighted by
# its share of the batch, $3/8$ and $5/8$ (with equal halves that was $1/2$ each).

# %%
data = mg.randn(8, 2)
targets = mg.randn(8)
w = mg.zeros(2, requires_grad=True)


def squared_errors(rows):
    return (data[rows] @ w - targets[rows]) ** 2


squared_errors(slice(0, 8)).mean().backward()
whole = w.grad.numpy().copy()
w.grad = None
for rows, share in [(slice(0, 3), 3 / 8), (slice(3, 8), 5 / 8)]:
    (squared_errors(rows).mean() * share).backward()
print("whole batch:", whole, "| 3 + 5 weighted by 3/8 and 5/8:", w.grad.numpy(),
      "| equal:", np.allclose(whole, w.grad.numpy(), atol=1e-6))

# %% [markdown]
# ## Exercise 3: the third derivative of tanh
#
# To differentiate a gradient again, the call that produced it must record its own graph: so both
# the first and the second `mg.grad` need `create_graph=True`, and only the last one does not. The
# formula comes from differentiating $\tanh'' = -2t(1 - t^2)$ with $t = \tanh x$ and $t' = 1 - t^2$:
#
# $$\tanh''' = -2t'(1 - t^2) + (-2t)(-2t\,t') = (1 - t^2)(6t^2 - 2).$$

# %%
x = mg.Tensor(np.linspace(-3, 3, 61 if SMOKE else 301), requires_grad=True, dtype="float64")
(first,) = mg.grad(mg.tanh(x).sum(), x, create_graph=True)
(second,) = mg.grad(first.sum(), x, create_graph=True)
(third,) = mg.grad(second.sum(), x)
t = np.tanh(x.numpy())
print("third derivative matches (1 - t^2)(6 t^2 - 2):",
      np.allclose(third.numpy(), (1 - t**2) * (6 * t**2 - 2)))

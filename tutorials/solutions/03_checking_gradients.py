# %% [markdown]
# # Solutions: 3. Checking gradients
#
# Worked solutions to the exercises of [tutorial 3](../03_checking_gradients.py). Try each exercise
# before reading its solution.

# %%
import os

import hypothesis.extra.numpy as hnp
import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
EXAMPLES = 15 if SMOKE else 100
PHASES = [Phase.generate, Phase.shrink]
mg.manual_seed(0)
mg.set_default_dtype("float64")   # numerical derivatives need double precision

# %% [markdown]
# ## Exercise 1: Swish as an `mg.Function`
#
# $y = x\,\sigma(x)$ has derivative $\sigma(x) + x\,\sigma(x)(1 - \sigma(x)) = \sigma(x)\,(1 +
# x\,(1 - \sigma(x)))$. `forward` works on arrays, with the array functions taken from the backend
# (`xp`), never from `np`; `backward` is written with minigen's own ops (`mg.sigmoid`), so it is
# differentiable itself and `mg.gradgradcheck` can check the second derivative too. The sigmoid is
# computed as $\tfrac12(1 + \tanh(x/2))$, which never overflows.

# %%
class Swish(mg.Function):
    """y = x sigmoid(x);  dy/dx = sigmoid(x) (1 + x (1 - sigmoid(x)))."""

    def forward(self, x):
        xp = mg.backend.namespace(x)
        return x * (0.5 * (1.0 + xp.tanh(0.5 * x)))

    def backward(self, gy):
        (x,) = self.inputs
        s = mg.sigmoid(x)
        return gy * s * (1.0 + x * (1.0 - s))


x = mg.randn(6, requires_grad=True)
print("by hand: gradcheck", mg.gradcheck(lambda t: Swish()(t), [x]),
      "| gradgradcheck", mg.gradgradcheck(lambda t: Swish()(t), [x]))


@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=PHASES)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                  elements=st.floats(-10, 10)))
def swish_gradients_are_right(values):
    x = mg.Tensor(values, requires_grad=True)
    assert mg.gradcheck(lambda t: Swish()(t), [x])
    assert mg.gradgradcheck(lambda t: Swish()(t), [x])


swish_gradients_are_right()
print(f"Swish: first and second order held for {EXAMPLES} random arrays")

# %% [markdown]
# ## Exercise 2: the error curve for $f(x) = x^2$
#
# For a quadratic the central difference is exact in exact arithmetic: $\frac{(x + h)^2 - (x -
# h)^2}{2h} = \frac{4xh}{2h} = 2x$. Its truncation error comes from the third derivative, which is
# zero. What is left is **rounding error** alone: the numerator is a difference of two nearly equal
# numbers, each rounded to about $\epsilon\, f(x)$ with $\epsilon \approx 2.2 \times 10^{-16}$, so
# the error grows like $\epsilon f(x) / h$ as $h$ shrinks and there is no V: the larger the step,
# the better, all the way up. (The forward difference still has its truncation error $h$, since
# $\frac{(x + h)^2 - x^2}{h} = 2x + h$.)

# %%
x0 = 1.0
print(f"{'h':>8} {'forward error':>15} {'central error':>15} {'eps / h':>10}")
for h in [1.0, 1e-2, 1e-4, 1e-6, 1e-8, 1e-10, 1e-12]:
    forward = ((x0 + h) ** 2 - x0**2) / h
    central = ((x0 + h) ** 2 - (x0 - h) ** 2) / (2 * h)
    print(f"{h:8.0e} {abs(forward - 2):15.2e} {abs(central - 2):15.2e} "
          f"{np.finfo(float).eps / h:10.1e}")

# %% [markdown]
# ## Exercise 3: a property test for `logsumexp` that also draws the axis
#
# `st.data()` lets the test draw a value that depends on an earlier draw: first the array, then an
# axis valid for its number of dimensions. For large inputs the gradient check still passes:
# `mg.logsumexp` subtracts the maximum before exponentiating, so $e^{x - \max}$ never overflows, and
# its gradient, the softmax $e^{x - \mathrm{lse}}$, stays in $[0, 1]$. The naive form overflows to
# infinity at $e^{710}$ already, and its gradient is then NaN.

# %%
@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=PHASES)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                  elements=st.floats(-1000, 1000)), st.data())
def logsumexp_gradients_are_right(values, data):
    axis = data.draw(st.integers(0, values.ndim - 1), label="axis")
    x = mg.Tensor(values, requires_grad=True)
    assert mg.gradcheck(lambda t: mg.logsumexp(t, axis=axis), [x])


logsumexp_gradients_are_right()
print(f"logsumexp: the property held for {EXAMPLES} arrays and axes, inputs up to +-1000")

big = mg.Tensor([1000.0, 999.0, -1000.0], requires_grad=True)
with np.errstate(over="ignore", invalid="ignore"):
    naive = mg.log(mg.exp(big).sum())
    naive.backward()
print(f"naive log(sum(exp(x))) at x = [1000, 999, -1000]: {naive.item()}, gradient "
      f"{big.grad.numpy()}")
print(f"mg.logsumexp: {mg.logsumexp(big).item():.6f} (= 1000 + log(1 + e^-1))")

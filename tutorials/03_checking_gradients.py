# %% [markdown]
# # 3. Checking gradients
#
# Every operation in minigen comes with a hand-written backward rule, and so will every operation
# you add yourself. A wrong rule does not crash: the model still trains, just worse, or not at all,
# and nothing tells you why. So we never trust a backward rule until it has been compared with a
# derivative computed a completely different way: by *nudging the input and watching the output*, as
# in tutorial 1. This tutorial makes that comparison precise:
#
# 1. forward and central differences, and how small the step should be (the V-shaped error curve);
# 2. `mg.gradcheck`, which compares every entry of a Jacobian with a central difference;
# 3. writing your own `mg.Function`, and catching a wrong backward with `mg.GradcheckError`;
# 4. why the check uses a *random* upstream gradient;
# 5. property tests with hypothesis, which run the check on many shapes and values.

# %%
import math
import os
import sys

import hypothesis.extra.numpy as hnp
import matplotlib.pyplot as plt
import numpy as np
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"   # tiny runs for the test suite
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


mg.manual_seed(0)
mg.set_default_dtype("float64")   # numerical derivatives need double precision (see below for why)

# %% [markdown]
# ## Forward and central differences
#
# The **forward difference** is the secant slope from tutorial 1. Taylor's theorem says how far it
# is from the true derivative: $f(x + h) = f(x) + h f'(x) + \tfrac{h^2}{2} f''(x) + \tfrac{h^3}{6}
# f'''(x) + \dots$, so
#
# $$\frac{f(x + h) - f(x)}{h} = f'(x) + \frac{h}{2} f''(x) + O(h^2).$$
#
# The **central difference** steps to both sides. Subtracting the expansions of $f(x + h)$ and
# $f(x - h)$ cancels every even power of $h$, the $f''$ term included:
#
# $$\frac{f(x + h) - f(x - h)}{2h} = f'(x) + \frac{h^2}{6} f'''(x) + O(h^4).$$
#
# The *truncation error* (from cutting the Taylor series short) is $O(h)$ for the forward difference
# and $O(h^2)$ for the central one. So make $h$ as small as possible? No: a computer stores numbers
# with a relative precision of about $\varepsilon$ (machine epsilon: $2.2 \times 10^{-16}$ in
# float64, $1.2 \times 10^{-7}$ in float32). Each value $f(\cdot)$ carries a *rounding error* of
# about $\varepsilon |f(x)|$, and dividing the difference by a tiny $h$ magnifies it. Adding both
# kinds gives an error model for each formula:
#
# $$\text{forward: } \frac{h}{2}|f''(x)| + \frac{\varepsilon |f(x)|}{h}, \qquad
#   \text{central: } \frac{h^2}{6}|f'''(x)| + \frac{\varepsilon |f(x)|}{h}.$$
#
# The first term falls with $h$ and the second rises, so the error plotted against $h$ on log-log
# axes has a V shape. Let us measure it for $f(x) = e^{\sin x}$ at $x = 1$, whose derivatives we
# know exactly: $f' = \cos x\, e^{\sin x}$, $f'' = (\cos^2 x - \sin x)\, e^{\sin x}$ and $f''' =
# \cos x\,(\cos^2 x - 3 \sin x - 1)\, e^{\sin x}$.

# %%
def f(x):
    return np.exp(np.sin(x))


x0 = 1.0
exact = math.cos(x0) * math.exp(math.sin(x0))
f2 = abs((math.cos(x0) ** 2 - math.sin(x0)) * math.exp(math.sin(x0)))
f3 = abs(math.cos(x0) * (math.cos(x0) ** 2 - 3 * math.sin(x0) - 1) * math.exp(math.sin(x0)))

steps = np.logspace(-16, 0, 33 if SMOKE else 97)
errors = {"forward, float64": [], "central, float64": [], "central, float32": []}
for h in steps:
    errors["forward, float64"].append(abs((f(x0 + h) - f(x0)) / h - exact))
    errors["central, float64"].append(abs((f(x0 + h) - f(x0 - h)) / (2 * h) - exact))
    x32, h32 = np.float32(x0), np.float32(h)
    central32 = (f(x32 + h32) - f(x32 - h32)) / (2 * h32)      # every number here is float32
    errors["central, float32"].append(abs(float(central32) - exact))

eps64, eps32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps
models = {
    "forward, float64": steps / 2 * f2 + eps64 * f(x0) / steps,
    "central, float64": steps**2 / 6 * f3 + eps64 * f(x0) / steps,
    "central, float32": steps**2 / 6 * f3 + eps32 * f(x0) / steps,
}

fig, ax = plt.subplots()
for (name, errs), color in zip(errors.items(), ["tab:blue", "tab:orange", "tab:green"]):
    ax.loglog(steps, np.maximum(errs, 1e-17), "o", ms=3, color=color, label=name)
    ax.loglog(steps, models[name], "-", lw=1, color=color, alpha=0.6)
    best = int(np.argmin(errs))
    print(f"{name}: smallest error {errs[best]:.1e} at h = {steps[best]:.0e}")
ax.set_ylim(1e-13, 10)
ax.set_xlabel("step h")
ax.set_ylabel("|difference quotient - f'(1)|")
ax.set_title("Error of difference quotients (points: measured, lines: error model)")
ax.legend(fontsize=7)
save(fig, "03_error_vs_step.png")

# %% [markdown]
# Read the figure from the right. At large $h$ the truncation error dominates: the forward points
# fall along a line of slope 1 ($\propto h$), the central points along a line of slope 2 ($\propto
# h^2$). At small $h$ the rounding error dominates and every curve climbs back along slope $-1$
# ($\propto 1/h$); at the far left $x + h$ rounds to $x$ itself, the difference is exactly zero, and
# the error is the whole derivative. The measured points follow the error models (the lines), and
# the bottoms of the Vs sit where the two terms balance:
#
# * forward, float64: $h \approx \sqrt{\varepsilon} \approx 10^{-8}$, best error about $10^{-8}$;
# * central, float64: $h \approx \varepsilon^{1/3} \approx 10^{-5}$, best error about $10^{-10}$ or
#   better;
# * central, float32: the same balance with a much larger $\varepsilon$ puts the bottom between
#   about $10^{-3}$ and $10^{-2}$, where the typical error is still $10^{-5}$ to $10^{-4}$: too
#   coarse to tell a subtly wrong gradient from a right one.
#
# (Single points can dip below their curve: rounding errors are erratic, and now and then they
# happen to cancel. Judge by the trend, not by the luckiest point.)
#
# That is why gradient checks use **central differences in float64 with a step near $10^{-6}$**:
# `mg.gradcheck` uses `eps=1e-6`, just left of the bottom of the central float64 V, where errors are
# around $10^{-9}$ to $10^{-10}$.
#
# ## What a gradient check does
#
# A function of tensors $y = f(x)$ usually has many outputs, but backpropagation always starts from
# a *scalar*. One way to make one: draw a random tensor $u$ with $y$'s shape and check the
# gradient of
#
# $$L(x) = \sum_k u_k\, f(x)_k ,$$
#
# which backpropagation computes by starting the backward pass with $u$ as the upstream gradient
# (`mg.grad(y, x, grad_outputs=u)`). For each element $x_i$ in turn it computes the central
# difference $\bigl(L(x + \epsilon e_i) - L(x - \epsilon e_i)\bigr) / 2\epsilon$, where $e_i$ is 1
# at element $i$ and 0 elsewhere, and asks that the two agree: $|\text{analytic} - \text{numerical}|
# \le \text{atol} + \text{rtol} \cdot |\text{numerical}|$ (by default atol $= 10^{-5}$ and rtol $=
# 10^{-3}$). Here is that procedure written out by hand, before we let minigen do it:

# %%
def numerical_gradient(L, x, eps=1e-6):
    """Central differences of the scalar function L at every element of the float64 tensor x."""
    grad = np.zeros(x.shape)
    for index in np.ndindex(*x.shape):
        saved = x.data[index]
        x.data[index] = saved + eps
        plus = L(x)
        x.data[index] = saved - eps
        minus = L(x)
        x.data[index] = saved                 # restore the input exactly
        grad[index] = (plus - minus) / (2 * eps)
    return grad


def fn(x):
    return mg.tanh(x @ x.T).sum(axis=1)       # shape (3, 2) -> (3,)


x = mg.randn(3, 2, requires_grad=True)
u = mg.randn(3)                               # the random upstream gradient


def L(x):
    with mg.no_grad():
        return (u * fn(x)).sum().item()


(analytic,) = mg.grad(fn(x), x, grad_outputs=u)
numerical = numerical_gradient(L, x)
print("analytic:\n", analytic.numpy())
print("largest difference from the numerical gradient:", np.abs(analytic.numpy() - numerical).max())

# %% [markdown]
# `mg.gradcheck(fn, inputs)` goes one step further, as PyTorch's gradcheck does: instead of one
# random $u$ it takes each output element on its own ($u = e_j$, one backward pass per output
# element) and compares every entry $\partial y_j / \partial x_i$ of the Jacobian with the central
# difference of $y_j$ alone. Outputs of very different sizes then never mix (in one weighted sum,
# the rounding of a large output can swamp the derivative of a small one), and a numerical
# derivative that overflows is an error, not a pass. It does so for every input that requires grad,
# and returns `True` or raises `mg.GradcheckError` naming the first entry that disagrees. With
# `verbose=True` it prints every entry that is not 0 on both sides. Here it checks a small layer,
# $\tanh(a\,b)$, with respect to both matrices:

# %%
a = mg.randn(2, 3, requires_grad=True)
b = mg.randn(3, 2, requires_grad=True)
print(mg.gradcheck(lambda a, b: mg.tanh(a @ b), [a, b], verbose=True))

# %% [markdown]
# ## Your own operation: `mg.Function`
#
# Suppose you want the *softsign* activation, a gentler cousin of tanh:
#
# $$y = \frac{x}{1 + |x|}, \qquad \frac{dy}{dx} = \frac{(1 + |x|) - x \cdot \operatorname{sign}(x)}
#   {(1 + |x|)^2} = \frac{1}{(1 + |x|)^2}.$$
#
# A new operation is a subclass of `mg.Function` with two methods, side by side:
#
# * `forward(self, x)` receives the raw arrays (NumPy here, CuPy on a GPU) and returns an array.
#   Array functions come from `mg.backend.namespace(x)`, so the same line runs on both.
# * `backward(self, gy)` receives the upstream gradient $\partial L / \partial y$ as a Tensor and
#   returns $\partial L / \partial x = \partial L / \partial y \cdot dy/dx$, also as a Tensor. The
#   inputs are in `self.inputs`. Writing it with tensor operations (`mg.abs`, `**`, `/`) means it
#   can be differentiated again (tutorial 2's `create_graph`).
#
# The second class below makes a classic slip, forgetting the square in the denominator:

# %%
class Softsign(mg.Function):
    """y = x / (1 + |x|);  dy/dx = 1 / (1 + |x|)^2."""

    def forward(self, x):
        xp = mg.backend.namespace(x)
        return x / (1 + xp.abs(x))

    def backward(self, gy):
        (x,) = self.inputs
        return gy / (1 + mg.abs(x)) ** 2


class WrongSoftsign(Softsign):
    """The same forward, with the square forgotten in backward."""

    def backward(self, gy):
        (x,) = self.inputs
        return gy / (1 + mg.abs(x))


x = mg.randn(5, requires_grad=True)
print("Softsign:     gradcheck", mg.gradcheck(lambda t: Softsign()(t), [x]),
      "| gradgradcheck", mg.gradgradcheck(lambda t: Softsign()(t), [x]))
try:
    mg.gradcheck(lambda t: WrongSoftsign()(t), [x])
except mg.GradcheckError as err:
    print("WrongSoftsign: caught GradcheckError:\n ", err)

# %% [markdown]
# The correct rule passes, at first and second order (`mg.gradgradcheck` checks the derivative of
# the derivative, built with `create_graph=True`). The wrong one is caught at the first element,
# with both numbers in the message.
#
# ## Why the upstream gradient is random
#
# Why not simply check the gradient of $\sum_k f(x)_k$, that is $u = 1$ everywhere? Because some
# wrong rules are right *on average*. Take an operation that reverses a vector, $y_k = x_{n-1-k}$.
# Its correct backward reverses the upstream gradient too: $\partial L / \partial x_i = g_{n-1-i}$.
# A backward that forgets to reverse and returns $g$ unchanged is wrong, but when $g$ is all ones,
# reversed or not makes no difference, and a check with $u = 1$ passes:

# %%
class Reverse(mg.Function):
    """y[k] = x[n-1-k];  dL/dx[i] = g[n-1-i]: the gradient is reversed too."""

    def forward(self, x):
        return mg.backend.namespace(x).flip(x)

    def backward(self, gy):
        return Reverse()(gy)


class WrongReverse(Reverse):
    def backward(self, gy):
        return gy                             # forgot to reverse


x = mg.randn(6, requires_grad=True)
ones = mg.ones(6)
y = WrongReverse()(x)
(analytic,) = mg.grad(y, x, grad_outputs=ones)
with_ones = numerical_gradient(lambda t: (ones * Reverse()(t)).sum().item(), x)
print("checked with u = 1: largest difference", np.abs(analytic.numpy() - with_ones).max(),
      "(passes!)")
print("mg.gradcheck on Reverse:", mg.gradcheck(lambda t: Reverse()(t), [x]))
try:
    mg.gradcheck(lambda t: WrongReverse()(t), [x])
except mg.GradcheckError as err:
    print("mg.gradcheck on WrongReverse, entry by entry:\n ", err)

# %% [markdown]
# The same blind spot hides a forgotten transpose in the backward of an operation on square matrices
# (an all-ones matrix is its own transpose). A random $u$ weighs each output differently, so such
# mistakes cannot cancel out.
#
# ## Property tests with hypothesis
#
# One passing check is one data point: the shapes you happened to pick, the values you happened to
# draw. Bugs like to hide in the other cases (a scalar, a length-1 axis, a broadcast, a negative
# input). A **property test** states something that must hold for *all* inputs ("gradcheck passes")
# and lets the [hypothesis](https://hypothesis.readthedocs.io) library search for a counterexample:
# it draws many shapes and values, and when it finds a failure it *shrinks* it to the simplest
# failing input it can.
#
# A property is a function decorated with `@given(strategies...)`; calling it runs the whole search.
# Here is one for softsign over arrays of up to three dimensions (a 0-d scalar included), run on the
# correct class and then on the wrong one. (`database=None` stops hypothesis from remembering
# failing examples between runs; in a test suite you would keep that memory, so that a failure is
# retried first next time. Hypothesis still keeps a small cache in a `.hypothesis` folder in the
# working directory, which is safe to delete.)

# %%
EXAMPLES = 15 if SMOKE else 100
PHASES = [Phase.generate, Phase.shrink]   # draw examples, then shrink a failure; nothing more


def softsign_property(op):
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=PHASES)
    @given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                      elements=st.floats(-10, 10)))
    def gradient_matches_central_differences(values):
        x = mg.Tensor(values, requires_grad=True)
        assert mg.gradcheck(lambda t: op()(t), [x])

    return gradient_matches_central_differences


softsign_property(Softsign)()
print(f"Softsign: the property held for {EXAMPLES} random arrays")
try:
    softsign_property(WrongSoftsign)()
except mg.GradcheckError as err:
    print("WrongSoftsign: hypothesis found a counterexample and shrank it:")
    for note in getattr(err, "__notes__", []):
        print("  ", note)
    print("  ", err)

# %% [markdown]
# Hypothesis reports the simplest failing input it found, a single number, 1.0: much easier to debug
# by hand than the first random array that happened to fail.
#
# Properties can draw *related* values, too. This one checks $a \cdot \tanh(b)$ for pairs of shapes
# that broadcast against each other, which tests tutorial 2's rule (sum the gradient over the
# broadcast axes) on shapes nobody thought to write down:

# %%
@settings(max_examples=EXAMPLES, deadline=None, database=None, phases=PHASES)
@given(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3), st.data())
def broadcasting_gradients_are_right(shapes, data):
    a, b = (mg.Tensor(data.draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3))),
                      requires_grad=True)
            for shape in shapes.input_shapes)
    assert mg.gradcheck(lambda a, b: a * mg.tanh(b), [a, b])


broadcasting_gradients_are_right()
print(f"a * tanh(b): the property held for {EXAMPLES} pairs of broadcastable shapes")

# %% [markdown]
# minigen's own test suite does this for every operation: `tests/test_op_gradients.py` draws shapes
# (broadcasting included) and values for each op, compares the forward values with NumPy, runs the
# first- and second-order checks, and also checks that the inputs were not modified. Run it with
# `python -m pytest tests/test_op_gradients.py`.
#
# ## What you learned
#
# * The forward difference has truncation error $O(h)$, the central difference $O(h^2)$; rounding
#   error grows like $\varepsilon / h$. Together they make the V-shaped curve, whose bottom sets the
#   best step: about $10^{-5}$ to $10^{-6}$ for central differences in float64.
# * `mg.gradcheck` compares every entry of the Jacobian (each output element's derivative with
#   respect to each input element) with central differences in float64, and raises
#   `mg.GradcheckError` when they disagree; `mg.gradgradcheck` does the same for second derivatives.
#   By hand, the gradient of $\sum_k u_k f(x)_k$ for a random $u$ is the quick version.
# * A new operation is an `mg.Function` with `forward` on arrays and `backward` on tensors, next to
#   each other. Check it before you use it.
# * A random upstream gradient catches mistakes that an all-ones one hides.
# * Property tests with hypothesis run the check across many shapes and values and shrink any
#   failure to a small example.
#
# ## Exercises
#
# 1. Write `Swish`, $y = x\,\sigma(x)$, as an `mg.Function` (its derivative is
#    $\sigma(x)\,(1 + x\,(1 - \sigma(x)))$; use `mg.sigmoid` in backward) and check it at first and
#    second order, by hand and with the hypothesis property.
# 2. Redo the error-versus-step plot for $f(x) = x^2$ at $x = 1$. Why does the central difference
#    have no truncation error at all, and what is left?
# 3. Write a property test for `mg.logsumexp(x, axis=k)` where hypothesis also draws the axis
#    (`st.integers(0, x.ndim - 1)` with `st.data()`). Try large inputs, up to $\pm 1000$: does the
#    check still pass, and why might a naive $\log \sum e^{x}$ not?

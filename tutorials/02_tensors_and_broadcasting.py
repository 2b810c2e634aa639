# %% [markdown]
# # 2. Tensors, broadcasting and the life of a gradient
#
# Tutorial 1 differentiated one number at a time. Neural networks work on arrays: a batch of 128
# images of 784 pixels is a $128 \times 784$ array, and a layer's weights are a $784 \times 256$
# matrix. This tutorial moves from our toy `Value` to minigen's `Tensor`, which holds a whole array
# and differentiates it with the same reverse-mode algorithm. Along the way we meet the questions
# that arrays raise:
#
# 1. what shape a gradient has (always the shape of its tensor);
# 2. how **broadcasting**, NumPy's habit of stretching arrays to a common shape, is undone in the
#    gradient;
# 3. why gradients **accumulate** until you reset them, and what happens when you forget to;
# 4. how `mg.no_grad()` switches the recording off;
# 5. how `create_graph=True` lets you differentiate a derivative again.

# %%
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

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


mg.manual_seed(0)   # minigen's random numbers (mg.randn, layer weights) are now repeatable

# %% [markdown]
# ## A Tensor is an array that can remember
#
# `mg.Tensor` wraps an array of the current *backend*: NumPy here, CuPy on a GPU (tutorial 10). The
# array itself is `t.data`; minigen adds the bookkeeping for gradients around it. Python floats
# become float32 by default, the usual precision for training; `dtype="float64"` asks for double
# precision.

# %%
t = mg.Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
print(t)
print("shape", t.shape, "| dtype", t.dtype, "| device", t.device,
      "| data is a", type(t.data).__name__)
print("t.T @ t =\n", (t.T @ t).numpy())

# %% [markdown]
# **Where a tensor's dtype comes from.** The rule has two halves, and the second one surprises
# people:
#
# * Python numbers and lists of them become the **default dtype**, float32 (integers become int64).
#   `mg.set_default_dtype("float64")` changes the default; `dtype=` overrides it for one tensor.
# * A **NumPy array keeps its own dtype**, and NumPy's own default is float64: `np.linspace`,
#   `np.arange(1.0, ...)`, `np.random.default_rng().standard_normal(...)` all make float64 arrays,
#   and so `mg.Tensor(np.linspace(0, 1, 5))` is a float64 tensor. (That is what lets minigen wrap a
#   backend array without copying it.)
#
# Mixing the two then follows PyTorch's promotion rules, not NumPy's: a float32 tensor combined with
# a float64 tensor *of the same or more dimensions* gives float64, while Python numbers and 0-d
# tensors do not promote a dimensioned tensor within its kind (float stays float32, whatever the
# number). A float64 array slipped into float32 work therefore silently turns the rest of the
# computation into float64: twice the memory, and much slower on a GPU (tutorial 10). Ask for the
# dtype you mean, `mg.Tensor(array, dtype="float32")`, when the array comes from NumPy.

# %%
from_list = mg.Tensor([1.0, 2.0, 3.0])
from_numpy = mg.Tensor(np.linspace(0.0, 1.0, 3))
for name, tensor in [("from a Python list", from_list),
                     ("from a NumPy array", from_numpy),
                     ("from NumPy, dtype='float32'",
                      mg.Tensor(np.linspace(0, 1, 3), dtype="float32")),
                     ("float32 + float64 tensor", from_list + from_numpy),
                     ("float32 * Python float", from_list * 0.5),
                     ("float32 * 0-d float64 tensor", from_list * mg.Tensor(0.5, dtype="float64"))]:
    print(f"{name:29s} {mg.backend.dtype_name(tensor.dtype)}")

# %% [markdown]
# A tensor created with `requires_grad=True` is a **leaf** of the graph: an input whose gradient we
# want, like a weight. Every operation on it is recorded, as our `Value` recorded its parents.
#
# Let us fit a line to a few points, the smallest learning problem there is. With inputs $X$ of
# shape $(N, 3)$, weights $w$ of shape $(3, 1)$, a bias $b$ of shape $(1,)$ and targets $y$ of shape
# $(N, 1)$, the prediction and the mean squared error are
#
# $$\hat y = X w + b, \qquad L = \frac{1}{N} \sum_{i=1}^{N} (\hat y_i - y_i)^2 .$$
#
# Differentiating by hand (the chain rule through the square, then through the product) gives
#
# $$\frac{\partial L}{\partial w} = \frac{2}{N} X^\top (\hat y - y) \quad (3 \times 1), \qquad
#   \frac{\partial L}{\partial b} = \frac{2}{N} \sum_{i=1}^{N} (\hat y_i - y_i) \quad (1,).$$
#
# minigen should agree, without being told any of this:

# %%
N = 6
X = mg.randn(N, 3)
y = mg.randn(N, 1)
w = mg.randn(3, 1, requires_grad=True)
b = mg.zeros(1, requires_grad=True)

y_hat = X @ w + b
loss = ((y_hat - y) ** 2).mean()
loss.backward()

residual = (y_hat - y).numpy()
grad_w_by_hand = 2 / N * X.numpy().T @ residual
grad_b_by_hand = 2 / N * residual.sum(axis=0)
print("loss", loss.item())
print("w.grad", w.grad.shape, "matches the formula:", np.allclose(w.grad.numpy(), grad_w_by_hand))
print("b.grad", b.grad.shape, "matches the formula:", np.allclose(b.grad.numpy(), grad_b_by_hand))

# %% [markdown]
# `mg.draw_graph(loss)` draws the graph that `backward` walked: one box per tensor, with the op that
# made it, its shape, and here (`show="both"`) its value and the gradient of the loss with respect
# to it (2-norms for tensors of more than three numbers). Leaves that require a gradient are blue,
# tensors that need none (the data $X$ and $y$, the constants of `mean` and `** 2`) grey. Follow the
# shapes: the bias enters an addition whose result is $6 \times 1$, yet its gradient has its own
# shape, $(1,)$.

# %%
y_hat = X @ w + b
loss = ((y_hat - y) ** 2).mean()
fig = mg.draw_graph(loss, show="both", names={"X": X, "y": y, "w": w, "b": b})
save(fig, "02_graph.png")
fig

# %% [markdown]
# Two things to notice. First, **every gradient has the shape of its tensor**: `w.grad` is $3 \times
# 1$ like `w`, because it holds one partial derivative per element of `w`. Second, `b` has shape
# $(1,)$ but was added to a $6 \times 1$ product. That is broadcasting, and its gradient needed a
# sum. Why?
#
# ## Broadcasting, and how the gradient undoes it
#
# NumPy (and minigen) let you combine arrays of different shapes when they are *compatible*: line
# the shapes up from the right; each pair of sizes must be equal, or one of them must be 1 (or
# missing). A size-1 or missing axis is then stretched, as if the array were copied along it. Adding
# a bias of shape $(3,)$ to a batch of shape $(4, 3)$ copies the bias into all four rows:
#
# $$z_{ij} = x_{ij} + b_j \qquad (i = 1..4,\ j = 1..3).$$
#
# Each $b_j$ is used four times, once per row. Tutorial 1 told us what happens to a value used
# several times: its gradient is the **sum** of the shares of every use. With an upstream gradient
# $g_{ij} = \partial L / \partial z_{ij}$,
#
# $$\frac{\partial L}{\partial b_j}
#   = \sum_{i=1}^{4} g_{ij} \cdot \frac{\partial z_{ij}}{\partial b_j}
#   = \sum_{i=1}^{4} g_{ij}.$$
#
# So the rule is: **compute the gradient for the stretched (broadcast) shape, then sum it over every
# axis that broadcasting added or stretched.** The figure shows it for the bias:

# %%
x = mg.randn(4, 3, requires_grad=True)
bias = mg.Tensor([0.5, -1.0, 2.0], requires_grad=True)
z = x + bias                                        # (4, 3) + (3,) -> (4, 3)
g = mg.Tensor(np.arange(1.0, 13.0).reshape(4, 3), dtype="float32")   # a readable upstream dL/dz
z.backward(g)                                       # z has 12 elements, so we must supply dL/dz
print("z.shape", z.shape, "| x.grad.shape", x.grad.shape, "| bias.grad.shape", bias.grad.shape)
print("bias.grad =", bias.grad.numpy(), "= column sums of g:", g.numpy().sum(axis=0))

fig, (ax_top, ax_bottom) = plt.subplots(2, 1, figsize=(3.6, 3.6), height_ratios=[4, 1.3])
panels = [(ax_top, g.numpy(), "upstream gradient dL/dz, shape (4, 3)"),
          (ax_bottom, bias.grad.numpy()[None, :], "bias.grad, shape (3,): column sums")]
for ax, values, title in panels:
    ax.imshow(values, cmap="Blues", vmin=0, vmax=values.max() * 1.3)
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, f"{value:g}", ha="center", va="center")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)
save(fig, "02_broadcast_gradient.png")

# %% [markdown]
# A size-1 axis that is stretched is summed the same way, but *kept* with size 1 so that the
# gradient keeps the tensor's shape. Here is the whole rule as a short NumPy function
# (`unbroadcast`), checked against minigen on a multiplication $c = a \cdot b$ for several pairs of
# shapes. For a product the gradient of $a$ in the broadcast shape is $g \cdot b$ (the local
# derivative of $a \cdot b$ with respect to $a$ is $b$), and only then is it summed down to $a$'s
# shape:

# %%
def unbroadcast(grad, shape):
    """Sum the array `grad` down to `shape`, undoing NumPy's broadcasting."""
    while grad.ndim > len(shape):             # axes that broadcasting added on the left
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):       # axes that were stretched from size 1
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


print(f"{'a.shape':>10} {'b.shape':>10} {'c.shape':>10} {'a.grad':>10} {'b.grad':>10}  "
      "matches unbroadcast")
for shape_a, shape_b in [((4, 3), (3,)), ((4, 3), (4, 1)), ((4, 1), (1, 3)), ((2, 4, 3), (3,)),
                         ((2, 1, 3), (4, 1)), ((), (2, 3))]:
    a = mg.randn(*shape_a, dtype="float64", requires_grad=True)
    b = mg.randn(*shape_b, dtype="float64", requires_grad=True)
    c = a * b
    g = mg.randn(*c.shape, dtype="float64")
    c.backward(g)
    a_ok = np.allclose(a.grad.numpy(), unbroadcast(g.numpy() * b.numpy(), shape_a))
    b_ok = np.allclose(b.grad.numpy(), unbroadcast(g.numpy() * a.numpy(), shape_b))
    print(f"{str(shape_a):>10} {str(shape_b):>10} {str(c.shape):>10} {str(a.grad.shape):>10} "
          f"{str(b.grad.shape):>10}  {a_ok and b_ok}")

# %% [markdown]
# minigen does this in exactly one place, `Function._input_grads` in `minigen/autograd.py`, using
# the op `sum_to`. Every operation's backward rule may therefore return a gradient in the broadcast
# shape and leave the summing to the base class: one careful piece of code instead of a chance of a
# bug in every operation.
#
# ## Gradients accumulate until you reset them
#
# `backward()` **adds** to `.grad`; it never overwrites it. Call it twice and the gradient doubles:

# %%
w = mg.Tensor([1.0, -2.0], requires_grad=True)
for call in range(1, 4):
    loss = (w * w).sum()          # dL/dw = 2w = [2, -4]
    loss.backward()
    print(f"after backward() number {call}: w.grad = {w.grad.numpy()}")
w.grad = None                     # the reset (w.zero_grad(), model.zero_grad(), opt.zero_grad())
print("after the reset:", w.grad)

# %% [markdown]
# This is on purpose: the multivariable chain rule *is* a sum, and accumulating lets you build one
# gradient from several backward passes. A classic use: a batch too large for memory is split into
# micro-batches, each one's loss is backpropagated in turn, and the gradients add up to the gradient
# of the whole batch. With a loss that **sums** over examples this is exact; with a **mean**, each
# micro-batch's mean must be scaled by its share of the batch (here 1/2), or the result is twice too
# large:

# %%
data = mg.randn(8, 2)
targets = mg.randn(8)
w = mg.zeros(2, requires_grad=True)


def squared_errors(rows):
    return ((data[rows] @ w - targets[rows]) ** 2)


squared_errors(slice(0, 8)).sum().backward()
whole_batch = w.grad.numpy().copy()

w.grad = None
for rows in [slice(0, 4), slice(4, 8)]:
    squared_errors(rows).sum().backward()      # two micro-batches, gradients added together
print("sum loss:  whole batch", whole_batch, " two halves", w.grad.numpy())

w.grad = None
squared_errors(slice(0, 8)).mean().backward()
whole_mean = w.grad.numpy().copy()
w.grad = None
for rows in [slice(0, 4), slice(4, 8)]:
    squared_errors(rows).mean().backward()           # unweighted: each half counts as a whole batch
print("mean loss: whole batch", whole_mean, " two unweighted halves", w.grad.numpy())
w.grad = None
for rows in [slice(0, 4), slice(4, 8)]:
    (squared_errors(rows).mean() * 0.5).backward()   # each half's mean weighted by its share
print("mean loss: whole batch", whole_mean, " two halves weighted 1/2", w.grad.numpy())

# %% [markdown]
# The flip side: in an ordinary training loop, where each step should use the gradient of *this*
# step's loss only, you must reset the gradients before every backward pass. Forgetting is one of
# the most common bugs in deep learning code, and it does not crash: it silently trains badly.
# Gradient descent on $f(w) = (w - 3)^2$, whose gradient is $g_t = 2(w_t - 3)$ at step $t$, updates
# $w_{t+1} = w_t - \eta\, g_t$ with the learning rate $\eta = 0.1$. Without the reset, `w.grad`
# holds the *sum* of all gradients so far, and the update becomes $w_{t+1} = w_t - \eta \sum_{s \le
# t} g_s$:

# %%
def descend(reset, steps=40, lr=0.1):
    w = mg.Tensor(0.0, requires_grad=True, dtype="float64")
    path = [w.item()]
    for _ in range(steps):
        if reset:
            w.grad = None
        loss = (w - 3.0) ** 2
        loss.backward()
        w.data -= lr * w.grad.data      # the update works on the arrays: nothing is recorded
        path.append(w.item())
    return path


with_reset, without_reset = descend(reset=True), descend(reset=False)
print(f"after 40 steps: w = {with_reset[-1]:.4f} with the reset, {without_reset[-1]:.4f} without")

fig, ax = plt.subplots()
ax.plot(with_reset, label="grad reset before each step")
ax.plot(without_reset, label="grad never reset (accumulating)")
ax.axhline(3.0, color="gray", ls=":", label="minimum, w = 3")
ax.set_xlabel("step")
ax.set_ylabel("w")
ax.set_ylim(-0.3, 8.3)
ax.set_title("Forgetting zero_grad: the steps keep old gradients")
ax.legend(loc="upper right", fontsize=7)
save(fig, "02_forgetting_zero_grad.png")

# %% [markdown]
# With the reset, $w$ glides to 3. Without it, the accumulated gradient still points the old way
# long after $w$ has passed the minimum, so $w$ overshoots and swings back and forth without
# settling. In real training loops the reset is `opt.zero_grad()` (tutorial 4).
#
# ## Switching the recording off: `mg.no_grad()`
#
# Recording costs time and memory: each result keeps a reference to the operation that made it, and
# the operation keeps its inputs, until a backward pass frees them. When you only want numbers
# (evaluating a model, computing a metric, drawing a figure) run the code inside `with
# mg.no_grad():`. Results made there have no history and do not require grad, so `backward` through
# them is refused:

# %%
w = mg.Tensor([1.0, -2.0], requires_grad=True)
recorded = (w * 3).sum()
with mg.no_grad():
    not_recorded = (w * 3).sum()
print("recorded:     requires_grad", recorded.requires_grad,
      "| made by", type(recorded.creator).__name__)
print("not recorded: requires_grad", not_recorded.requires_grad, "| made by", not_recorded.creator)
try:
    not_recorded.backward()
except RuntimeError as err:
    print("backward refused:", err)

# %% [markdown]
# ## Differentiating a derivative: `create_graph=True`
#
# Normally the backward pass itself is not recorded: gradients are plain numbers. minigen writes
# every backward rule with its own tensor operations, so it *can* record them. `mg.grad(out, x,
# create_graph=True)` returns $\partial\, \mathrm{out} / \partial x$ as a tensor with a history of
# its own, which can be differentiated again. Tutorial 9 uses this for a gradient penalty; here we
# compute the first two derivatives of $\tanh$ over a whole grid of points at once.
#
# The trick: since $y_i = \tanh(x_i)$ depends on $x_i$ alone, the gradient of the sum
# $\sum_j y_j$ with respect to $x_i$ is just $\tanh'(x_i)$, for every $i$ in one backward pass. The
# formulas to compare with are
#
# $$\tanh'(x) = 1 - \tanh^2(x), \qquad \tanh''(x) = -2 \tanh(x)\,\bigl(1 - \tanh^2(x)\bigr).$$

# %%
x = mg.Tensor(np.linspace(-3, 3, 61 if SMOKE else 301), requires_grad=True, dtype="float64")
y = mg.tanh(x)
(first,) = mg.grad(y.sum(), x, create_graph=True)    # first is part of a graph itself...
(second,) = mg.grad(first.sum(), x)                  # ...so it can be differentiated again

t = np.tanh(x.numpy())
print("first derivative matches 1 - tanh^2:        ", np.allclose(first.numpy(), 1 - t**2))
print("second derivative matches -2 tanh (1-tanh^2):",
      np.allclose(second.numpy(), -2 * t * (1 - t**2)))

fig, ax = plt.subplots()
ax.plot(x.numpy(), y.numpy(), label="tanh(x)")
ax.plot(x.numpy(), first.numpy(), label="first derivative (mg.grad)")
ax.plot(x.numpy(), second.numpy(), label="second derivative (mg.grad twice)")
ax.plot(x.numpy()[::10], (-2 * t * (1 - t**2))[::10], "k.", label="formula for the second")
ax.axhline(0, color="gray", lw=0.5)
ax.set_xlabel("x")
ax.set_title("Derivatives of tanh, by differentiating twice")
ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
save(fig, "02_tanh_derivatives.png")

# %% [markdown]
# ## What you learned
#
# * `mg.Tensor` wraps a backend array (`t.data`); `requires_grad=True` makes it a leaf whose
#   operations are recorded, and `backward()` fills in `.grad` with the same shape as the tensor.
# * Broadcasting copies a value along added or size-1 axes, so its gradient is the sum over those
#   axes. minigen applies this rule once, for every operation, in `Function`.
# * `.grad` accumulates (`+=`) across backward passes until you reset it (`t.grad = None`,
#   `model.zero_grad()`, `opt.zero_grad()`). That is useful for micro-batches and harmful when you
#   forget the reset in a training loop.
# * `with mg.no_grad():` computes without recording, for evaluation and metrics.
# * `mg.grad(..., create_graph=True)` returns gradients that can be differentiated again.
#
# ## Exercises
#
# 1. Predict the shapes of `a.grad` and `b.grad` for `a` of shape $(5, 1, 3)$ times `b` of shape
#    $(4, 1)$, then check with minigen and with `unbroadcast`.
# 2. Split the 8-example batch above into micro-batches of sizes 3 and 5 instead. What weights must
#    the two means get so that the accumulated gradient equals the whole batch's mean gradient?
# 3. Compute the third derivative of $\tanh$ with one more `mg.grad` (which calls now need
#    `create_graph=True`?) and compare it with the derivative of the formula for $\tanh''$.

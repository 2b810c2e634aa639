# %% [markdown]
# # 1. Derivatives and the chain rule
#
# Every model in these tutorials, from a two-layer classifier to a VAE-GAN, learns the same way: it
# computes a number that says how wrong it is (the *loss*), asks how that number changes when each
# weight is nudged (the *gradient*), and moves every weight a little downhill. The machinery that
# answers "how does the loss change?" for millions of weights at once is called **automatic
# differentiation**, and by the end of this tutorial you will have written one yourself, in about 40
# lines of plain Python.
#
# The plan:
#
# 1. the derivative as a slope, estimated with a difference quotient;
# 2. the chain rule, which splits a complicated derivative into simple local pieces;
# 3. a tiny scalar autograd, a `Value` class with `+`, `*`, `tanh` and `backward`;
# 4. why it must treat the computation as a *graph* and walk it in *topological order*, shown by
#    letting two simpler ideas fail;
# 5. the same answers from minigen;
# 6. gradient descent with our own engine: a neuron that learns from data.
#
# You need Python and the idea of a derivative from school. Run this file as a script
# (`python tutorials/01_derivatives_and_the_chain_rule.py`; figures are written as PNG files to the
# folder you run it from) or open it as a notebook with jupytext.

# %%
import math
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg

# MINIGEN_TUTORIAL_SMOKE=1 makes every experiment tiny, so that the test suite runs this file fast.
SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


# %% [markdown]
# ## The derivative is a slope
#
# Take $f(x) = x^3 - 2x$. Its derivative $f'(x)$ is the slope of the curve at $x$: how much $f$
# changes per unit change of $x$, for a very small change. Written as a limit,
#
# $$f'(x) = \lim_{h \to 0} \frac{f(x + h) - f(x)}{h}.$$
#
# The fraction is the slope of the straight line (a *secant*) through the points at $x$ and $x + h$.
# School calculus gives the exact answer $f'(x) = 3x^2 - 2$, so at $x_0 = 1.5$ the slope is
# $3 \cdot 2.25 - 2 = 4.75$. Let us watch the secant slopes approach it as $h$ shrinks. Expanding
# $(x + h)^3$ shows exactly how far off each one is:
#
# $$\frac{f(x + h) - f(x)}{h} = 3x^2 - 2 + 3xh + h^2, \qquad
#   \text{so the error is } 3x h + h^2 = 4.5h + h^2 \text{ at } x = 1.5.$$

# %%
def f(x):
    return x**3 - 2 * x


def f_prime(x):
    return 3 * x**2 - 2


x0 = 1.5
print(f"exact slope f'({x0}) = {f_prime(x0)}")
print(f"{'h':>8} {'secant slope':>14} {'error':>12} {'4.5h + h^2':>12}")
for h in [1.0, 0.1, 0.01, 0.001]:
    slope = (f(x0 + h) - f(x0)) / h
    print(f"{h:>8} {slope:>14.6f} {slope - f_prime(x0):>12.6f} {4.5 * h + h**2:>12.6f}")

# %% [markdown]
# The error shrinks in proportion to $h$, just as the formula says. (Tutorial 3 asks what happens
# when $h$ gets *really* small, and why the error then grows again.) Here are those secants next to
# the tangent line, whose slope is the derivative:

# %%
xs = np.linspace(-0.5, 2.7, 200)
fig, ax = plt.subplots()
ax.plot(xs, f(xs), color="black", lw=2, label="$f(x) = x^3 - 2x$")
for h, color in [(1.0, "tab:red"), (0.5, "tab:orange"), (0.1, "tab:green")]:
    slope = (f(x0 + h) - f(x0)) / h
    ax.plot(xs, f(x0) + slope * (xs - x0), color=color, lw=1,
            label=f"secant, h = {h}: slope {slope:.2f}")
    ax.plot([x0 + h], [f(x0 + h)], "o", color=color, ms=4)
ax.plot(xs, f(x0) + f_prime(x0) * (xs - x0), "--", color="tab:blue", lw=1.5,
        label=f"tangent: slope f'(1.5) = {f_prime(x0):.2f}")
ax.plot([x0], [f(x0)], "o", color="black")
ax.set_ylim(-3, 12)
ax.set_xlabel("x")
ax.set_ylabel("f(x)")
ax.set_title("Secant slopes approach the derivative as h shrinks")
ax.legend(fontsize=7, loc="upper left")
save(fig, "01_secants.png")

# %% [markdown]
# ## The chain rule
#
# Real models are built by composing simple functions. A single artificial *neuron* with input $x$,
# weight $w$ and bias $b$ computes
#
# $$y = \tanh(u), \qquad u = w x + b.$$
#
# The **chain rule** says that the derivative of a composition is the product of the derivatives of
# its pieces, each taken at the point where it is used:
#
# $$\frac{\partial y}{\partial w}
#   = \frac{\partial y}{\partial u} \cdot \frac{\partial u}{\partial w}
#   = \bigl(1 - \tanh^2(u)\bigr) \cdot x, \qquad
#   \frac{\partial y}{\partial b} = \bigl(1 - \tanh^2(u)\bigr) \cdot 1, \qquad
#   \frac{\partial y}{\partial x} = \bigl(1 - \tanh^2(u)\bigr) \cdot w.$$
#
# (We write $\partial$ rather than $d$ because $y$ depends on several variables and we vary one at a
# time; $\frac{d}{du}\tanh(u) = 1 - \tanh^2(u)$ is a fact worth remembering.) Notice the structure:
# every factor is *local*. The tanh only needs to know its own input to give
# $\partial y / \partial u$; the product $wx$ only needs $x$ to give $\partial u / \partial w$.
# Let us check these formulas with difference quotients, nudging one variable at a time:

# %%
def neuron(x, w, b):
    return math.tanh(w * x + b)


x, w, b = 0.8, -1.3, 0.4
y = neuron(x, w, b)
dy_du = 1 - y**2            # the tanh's local derivative, 1 - tanh(u)^2
by_chain_rule = {"w": dy_du * x, "b": dy_du * 1.0, "x": dy_du * w}

h = 1e-6
by_nudging = {
    "w": (neuron(x, w + h, b) - y) / h,
    "b": (neuron(x, w, b + h) - y) / h,
    "x": (neuron(x + h, w, b) - y) / h,
}
for name in "wbx":
    print(f"dy/d{name}: chain rule {by_chain_rule[name]:+.6f}   nudging {by_nudging[name]:+.6f}")

# %% [markdown]
# ## From the chain rule to an algorithm: going backwards
#
# A loss $L$ at the end of a long computation depends on each intermediate value $v$ only through
# the operations that *use* $v$. Give every value a slot $\bar v = \partial L / \partial v$ (read "v
# bar", the gradient of the loss with respect to $v$). Then:
#
# * at the end, $\bar L = \partial L / \partial L = 1$;
# * for an operation $z = \mathrm{op}(a, b)$, once $\bar z$ is known, the chain rule hands each
#   input its share: $\bar a \mathrel{+}= \bar z \cdot \partial z / \partial a$ and $\bar b
#   \mathrel{+}= \bar z \cdot \partial z / \partial b$.
#
# Why $\mathrel{+}=$? Because a value used by several operations influences $L$ along several
# routes, and the **multivariable chain rule** adds the routes up:
#
# $$\bar a = \sum_{z \text{ that use } a} \bar z \, \frac{\partial z}{\partial a}.$$
#
# The local derivatives $\partial z / \partial a$ of our three operations are all we need:
#
# | operation | $\partial z / \partial a$ | $\partial z / \partial b$ |
# | --- | --- | --- |
# | $z = a + b$ | $1$ | $1$ |
# | $z = a \cdot b$ | $b$ | $a$ |
# | $z = \tanh(a)$ | $1 - z^2$ | |
#
# Working from the loss back towards the inputs like this is **reverse-mode automatic
# differentiation**, also known as backpropagation. Its beauty: one backward sweep gives the
# derivative of $L$ with respect to *every* value at once, at roughly the cost of computing $L$.

# %% [markdown]
# ## A scalar autograd in about 40 lines
#
# Each `Value` holds a number (`data`), its gradient slot (`grad`, that is $\bar v$, starting at 0)
# and a record of how it was made: its `parents`, each paired with the local derivative of this
# value with respect to that parent. Python's operator methods (`__add__`, `__mul__`) let us write
# ordinary arithmetic, and every operation quietly records itself. The record is a **graph**: values
# are nodes, and each points back at the values it was computed from.
#
# `backward` has two steps. First it lists every value in **topological order**: each value after
# all the values it was computed from. Then it walks that list *backwards*, so every value is
# handled only after everything that uses it has already added its share to its `grad`: the
# $\mathrel{+}=$ rule above, in one line.

# %%
class Value:
    """A number that remembers how it was computed, so that it can be differentiated."""

    def __init__(self, data, parents=(), label=""):
        self.data = data
        self.grad = 0.0          # dL/d(this value), filled in by backward()
        self.parents = parents   # pairs (parent Value, d(this value)/d(parent))
        self.label = label

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, ((self, 1.0), (other, 1.0)))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, ((self, other.data), (other, self.data)))

    __radd__ = __add__       # so that 2 + v and 2 * v work too
    __rmul__ = __mul__

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, ((self, 1.0 - t * t),))

    def topological_order(self):
        """Every Value this one depends on (itself included), each after all of its parents."""
        order, seen = [], set()

        def visit(v):
            if id(v) not in seen:
                seen.add(id(v))
                for parent, _ in v.parents:
                    visit(parent)
                order.append(v)   # only once all of v's parents are in the list

        visit(self)
        return order

    def backward(self):
        """Fill in v.grad = d(self)/dv for every v in the graph (adding to what is there)."""
        self.grad = 1.0
        for v in reversed(self.topological_order()):
            for parent, local in v.parents:
                parent.grad += local * v.grad


# %% [markdown]
# Let us try it on a neuron with two inputs, $y = \tanh(w_1 x_1 + w_2 x_2 + b)$. By the chain rule,
# $\partial y / \partial w_i = (1 - y^2)\, x_i$ and $\partial y / \partial b = 1 - y^2$:

# %%
x1, x2 = Value(0.8, label="x1"), Value(-0.5, label="x2")
w1, w2 = Value(-1.3, label="w1"), Value(0.7, label="w2")
b = Value(0.4, label="b")
y = (w1 * x1 + w2 * x2 + b).tanh()
y.backward()

dy_du = 1 - y.data**2
print(f"y = {y.data:.6f}")
for v, expected in [(w1, dy_du * x1.data), (w2, dy_du * x2.data), (b, dy_du),
                    (x1, dy_du * w1.data), (x2, dy_du * w2.data)]:
    print(f"dy/d{v.label:<3} autograd {v.grad:+.6f}   chain rule by hand {expected:+.6f}")

# %% [markdown]
# Every gradient matches the hand-derived one, and we never wrote a derivative of the whole neuron:
# only the three local rules. The same 40 lines would differentiate a network of any size (slowly:
# one Python object per number; minigen does the same thing with whole arrays at once).
#
# ## Why a graph, and why an order?
#
# It is tempting to skip the topological sort: "give my gradient to my parents, then let each parent
# do the same", a simple recursion. It works for a chain where every value is used once. Things
# change when a value is used **twice**. Take
#
# $$u = \tanh(x), \qquad L = u \cdot u,$$
#
# so $L = \tanh^2(x)$ and, by the chain rule, $\dfrac{dL}{dx} = 2u\,(1 - u^2)$. In the graph, the
# node $u$ has two arrows leading into the multiplication. Here is the tempting recursion:

# %%
def naive_backward(v):
    """Push v's current gradient to its parents, then recurse into each parent right away."""
    for parent, local in v.parents:
        parent.grad += local * v.grad
        naive_backward(parent)


def make_square_of_tanh(x_value):
    x = Value(x_value, label="x")
    u = x.tanh()
    u.label = "u"
    loss = u * u
    loss.label = "L"
    return x, u, loss


x, u, loss = make_square_of_tanh(0.5)
correct = 2 * u.data * (1 - u.data**2)

loss.grad = 1.0
naive_backward(loss)
print(f"naive recursion:   dL/dx = {x.grad:.6f}")

x, u, loss = make_square_of_tanh(0.5)
loss.backward()
print(f"topological order: dL/dx = {x.grad:.6f}")
print(f"by hand, 2u(1-u^2):        {correct:.6f}")
print("topological order:", " -> ".join(v.label for v in loss.topological_order()))

# %% [markdown]
# The recursion is 1.5 times too large. Trace it: the multiplication hands $u$ its first share,
# $\bar u = u$, and the recursion *immediately* forwards that half-finished $\bar u$ to $x$. Then
# the second share arrives, $\bar u = 2u$, and the recursion forwards the *whole* $2u$ again. So $x$
# received $u + 2u = 3u$ (times the tanh's local derivative) where it should have received $2u$: the
# first share was counted twice. The gradient of a node is only ready once **every** consumer has
# contributed, and the topological order guarantees exactly that: reversed, it lists $L$ before $u$
# before $x$, so $u$ is complete before it passes anything on.
#
# One could repair the recursion by forwarding only each *new* contribution instead of the running
# total. That version is correct: it sums the product of local derivatives over every path from $L$
# to $x$, which is what the chain rule says. But paths multiply. Stack $n$ blocks in which a value
# is used twice, $v_{k+1} = \tanh(v_k) + 0.5\, v_k$, and there are $2^n$ paths from the end back to
# the start. Let us count the work both ways:

# %%
def all_paths_backward(v, upstream=1.0):
    """Correct but slow: walk every path separately, forwarding each contribution on its own.
    Returns the number of nodes visited."""
    v.grad += upstream
    visits = 1
    for parent, local in v.parents:
        visits += all_paths_backward(parent, upstream * local)
    return visits


def make_doubling_chain(depth):
    start = Value(0.3)
    v = start
    for _ in range(depth):
        v = v.tanh() + 0.5 * v
    return start, v


depths = list(range(1, 11 if SMOKE else 17))
path_visits, order_visits = [], []
for depth in depths:
    start, end = make_doubling_chain(depth)
    path_visits.append(all_paths_backward(end))
    by_paths = start.grad

    start, end = make_doubling_chain(depth)
    end.backward()
    order_visits.append(len(end.topological_order()))
    assert math.isclose(by_paths, start.grad, rel_tol=1e-9)   # the same gradient, both ways

print(f"depth {depths[-1]}: {path_visits[-1]:,} visits along all paths, "
      f"{order_visits[-1]:,} in topological order; gradient {start.grad:.6f} both ways")

fig, ax = plt.subplots()
ax.semilogy(depths, path_visits, "o-", label="every path separately")
ax.semilogy(depths, order_visits, "s-", label="each node once, in topological order")
ax.set_xlabel("depth n (blocks that use a value twice)")
ax.set_ylabel("nodes visited during backward")
ax.set_title("Paths multiply; nodes do not")
ax.legend()
save(fig, "01_paths_vs_order.png")

# %% [markdown]
# Both give the same gradient, but the path walk doubles its work with every block: at depth 30 it
# would visit billions of nodes, while the topological order visits each node once. A neural network
# is full of values used many times (every weight is used for every example in a batch), so this is
# the difference between an engine that works and one that never finishes.
#
# Our `topological_order` uses recursion, which Python limits to about a thousand nested calls.
# minigen performs the same depth-first search with an explicit stack (see `_topological_order` in
# `minigen/autograd.py`), so a chain of 100,000 operations is no problem.
#
# ## The same answers from minigen
#
# minigen's `Tensor` plays the role of our `Value`, but holds a whole array. Creating it with
# `requires_grad=True` asks minigen to record the operations that use it; `backward()` then walks
# the graph in reverse topological order, exactly as ours does. (We ask for float64, double
# precision, to compare many digits; minigen's default is float32, which is faster and usually
# enough for training.)

# %%
x = mg.Tensor(0.5, requires_grad=True, dtype="float64")
u = mg.tanh(x)
loss = u * u
loss.backward()
print(f"minigen: dL/dx = {x.grad.item():.6f}   (hand: {correct:.6f})")

x = mg.Tensor(0.3, requires_grad=True, dtype="float64")
v = x
for _ in range(depths[-1]):
    v = mg.tanh(v) + 0.5 * v
v.backward()
start, end = make_doubling_chain(depths[-1])
end.backward()
print(f"doubling chain of depth {depths[-1]}: minigen {x.grad.item():.6f}, "
      f"our Value {start.grad:.6f}")

# %% [markdown]
# **Seeing the sweep.** `mg.draw_backward(t)` draws minigen's backward pass through the graph
# behind `t`, one panel per step of the reverse topological order: the node whose gradient is
# complete (orange) passes a share to each of its inputs along the red arrows, nodes already done
# turn green, and a node still waiting (yellow) shows the sum of what has arrived so far, with "k/n"
# when it is used n times. For $L = u \cdot u$, the multiplication sends $u$ one share along each of
# its two arrows; $u$ adds them up (2 of 2 arrived) and only then passes anything on to $x$, which
# is exactly the step the naive recursion got wrong:

# %%
x = mg.Tensor(0.5, requires_grad=True, dtype="float64", name="x")
u = mg.tanh(x)
u.name = "u"
fig = mg.draw_backward(u * u)
save(fig, "01_backward_sweep.png")
fig

# %% [markdown]
# ## Learning with our own engine: gradient descent
#
# Gradients are for *learning*, and our 40 lines can already learn. Here are 20 noisy points made by
# a neuron whose weight and bias we pretend not to know, $y = \tanh(1.5\,x - 0.5)$ plus a little
# noise. Starting from $w = b = 0$, we measure how wrong our neuron is with the mean squared error
#
# $$L(w, b) = \frac{1}{n} \sum_{i=1}^{n} \bigl(\tanh(w x_i + b) - y_i\bigr)^2 ,$$
#
# and repeat one **gradient descent** step: compute $L$ with `Value`s, call `backward()` to get
# $\partial L / \partial w$ and $\partial L / \partial b$, and move each parameter a little
# downhill,
#
# $$w \leftarrow w - \eta\, \frac{\partial L}{\partial w}, \qquad
#   b \leftarrow b - \eta\, \frac{\partial L}{\partial b},$$
#
# with a learning rate $\eta$. The graph is built anew at every step, but $w$ and $b$ live on, and
# `backward` *adds* to their `grad` slots: so each step first sets them back to 0 (exercise 2 asks
# what happens otherwise; tutorial 2 shows the same rule in minigen).

# %%
rng = np.random.default_rng(0)
xs_data = np.linspace(-2.0, 2.0, 20)
ys_data = np.tanh(1.5 * xs_data - 0.5) + 0.05 * rng.standard_normal(20)

w, b = Value(0.0, label="w"), Value(0.0, label="b")
learning_rate, steps = 0.5, (40 if SMOKE else 200)
losses = []
for step in range(steps):
    loss = Value(0.0)
    for x_i, y_i in zip(xs_data, ys_data):
        error = (w * float(x_i) + b).tanh() + (-float(y_i))     # Value has no minus: add -y
        loss = loss + error * error
    loss = loss * (1.0 / len(xs_data))
    w.grad, b.grad = 0.0, 0.0            # forget the previous step's gradients
    loss.backward()                      # dL/dw and dL/db, through every point's little graph
    w.data -= learning_rate * w.grad     # one step downhill
    b.data -= learning_rate * b.grad
    losses.append(loss.data)
    if step % (steps // 5) == 0 or step == steps - 1:
        print(f"step {step:3d}: loss {loss.data:.5f}   w {w.data:+.4f}   b {b.data:+.4f}")
print("the points were made with w = +1.5, b = -0.5 (plus noise)")

fig, (ax_loss, ax_fit) = plt.subplots(1, 2, figsize=(8, 3))
ax_loss.semilogy(losses)
ax_loss.set_xlabel("gradient descent step")
ax_loss.set_ylabel("loss L(w, b)")
ax_loss.set_title("The loss falls step by step")
curve = np.linspace(-2.2, 2.2, 200)
ax_fit.plot(xs_data, ys_data, "o", color="black", ms=4, label="data")
ax_fit.plot(curve, np.tanh(w.data * curve + b.data), color="tab:red",
            label=f"learned: tanh({w.data:.2f} x {b.data:+.2f})")
ax_fit.set_xlabel("x")
ax_fit.set_ylabel("y")
ax_fit.set_title("The trained neuron")
ax_fit.legend(fontsize=7, loc="upper left")
save(fig, "01_gradient_descent.png")

# %% [markdown]
# The loss falls quickly at first and then levels off at the noise in the data, and $w$ and $b$ end
# close to the values that made the points: the engine of this tutorial, plus a three-line update,
# has learned from data. That is the whole recipe of deep learning (a loss, its gradient by reverse
# mode, a small step downhill, repeated); everything that follows makes it faster, more stable and
# bigger. Tutorial 4 turns the update into optimizers (`SGD`, `Adam`).
#
# ## What you learned
#
# * A derivative is a slope; a difference quotient estimates it, with an error that shrinks with the
#   step $h$.
# * The chain rule turns the derivative of a composition into a product of *local* derivatives, each
#   of which needs only its own operation's inputs and output.
# * Reverse-mode automatic differentiation stores the computation as a graph and sends
#   $\bar v = \partial L / \partial v$ backwards, adding up ($\mathrel{+}=$) the shares of every
#   operation that used $v$.
# * The graph must be walked in reverse topological order so that every gradient is complete before
#   it is passed on: forwarding too early double-counts, and walking every path separately is
#   correct but exponentially slow.
# * minigen's `Tensor.backward` is the same algorithm, for arrays and without recursion.
# * Gradient descent, $\theta \leftarrow \theta - \eta\, \partial L / \partial\theta$ with the
#   gradients reset before each backward pass, trains a model with nothing more than this engine.
#
# ## Exercises
#
# 1. Give `Value` an `exp` method ($\frac{d}{da} e^a = e^a$) and a `__pow__` method for constant
#    exponents ($\frac{d}{da} a^c = c\,a^{c-1}$). Build the sigmoid $\sigma(a) = (1 + e^{-a})^{-1}$
#    from them and check $\sigma'(a) = \sigma(a)\,(1 - \sigma(a))$ with a difference quotient.
# 2. Call `y.backward()` a second time on the two-input neuron. `w1.grad` does not simply double:
#    work out why (which gradient slots still hold values from the first call?). Then change
#    `backward` so that every value that has parents starts again from zero, while values without
#    parents (the inputs and weights) keep adding up. That is minigen's behaviour, and tutorial 2
#    shows why adding up is useful.
# 3. Rewrite `topological_order` without recursion, using a list as a stack, and check it on a chain
#    of 5,000 additions, where the recursive version fails with `RecursionError`.

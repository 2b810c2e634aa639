# %% [markdown]
# # Solutions: 1. Derivatives and the chain rule
#
# Worked solutions to the exercises of [tutorial 1](../01_derivatives_and_the_chain_rule.py). Try
# each exercise before reading its solution. Run this file as a script (`python
# tutorials/solutions/01_derivatives_and_the_chain_rule.py`) or open it with jupytext like the
# tutorials.
#
# The tutorial's `Value` class is written again here with the additions the exercises ask for, so
# that this file runs on its own.

# %%
import math
import os

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"


class Value:
    """The tutorial's scalar autograd, with exp, powers and a stack-based topological sort."""

    def __init__(self, data, parents=(), label=""):
        self.data = data
        self.grad = 0.0
        self.parents = parents   # pairs (parent Value, d(this value)/d(parent))
        self.label = label

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, ((self, 1.0), (other, 1.0)))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, ((self, other.data), (other, self.data)))

    __radd__ = __add__
    __rmul__ = __mul__

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, ((self, 1.0 - t * t),))

    # Exercise 1: d/da e^a = e^a, and d/da a^c = c a^(c - 1) for a constant c.
    def exp(self):
        e = math.exp(self.data)
        return Value(e, ((self, e),))

    def __pow__(self, c):
        assert isinstance(c, (int, float)), "only constant exponents"
        return Value(self.data ** c, ((self, c * self.data ** (c - 1)),))

    def __neg__(self):
        return self * -1.0

    # Exercise 3: the same depth-first search, with an explicit stack instead of recursion.
    def topological_order(self):
        """Every Value this one depends on (itself included), each after all of its parents."""
        order, seen = [], set()
        stack = [(self, False)]            # (value, are its parents already in the list?)
        while stack:
            v, parents_done = stack.pop()
            if parents_done:
                order.append(v)            # every parent was appended before this point
            elif id(v) not in seen:
                seen.add(id(v))
                stack.append((v, True))    # come back to v once its parents are done
                for parent, _ in v.parents:
                    if id(parent) not in seen:
                        stack.append((parent, False))
        return order

    # Exercise 2: values computed inside the graph start again from zero; leaves keep adding up.
    def backward(self):
        order = self.topological_order()
        for v in order:
            if v.parents:
                v.grad = 0.0
        self.grad = 1.0
        for v in reversed(order):
            for parent, local in v.parents:
                parent.grad += local * v.grad


# %% [markdown]
# ## Exercise 1: `exp`, `__pow__` and the sigmoid
#
# With $\sigma(a) = (1 + e^{-a})^{-1}$ built from the new operations, autograd gives the chain
# rule's product of local derivatives: $-1 \cdot (1 + e^{-a})^{-2} \cdot e^{-a} \cdot (-1)$, which
# simplifies to $\sigma(a)(1 - \sigma(a))$. Both are compared with a central difference.

# %%
def sigmoid(a):
    return (1 + (-a).exp()) ** -1


for a0 in [-3.0, -0.5, 0.0, 2.0]:
    a = Value(a0)
    s = sigmoid(a)
    s.backward()
    h = 1e-6
    numeric = (sigmoid(Value(a0 + h)).data - sigmoid(Value(a0 - h)).data) / (2 * h)
    formula = s.data * (1 - s.data)
    print(f"a = {a0:5.1f}: autograd {a.grad:.8f}   s(1 - s) {formula:.8f}   "
          f"central difference {numeric:.8f}")

# %% [markdown]
# ## Exercise 2: calling `backward` twice
#
# With the tutorial's `backward`, the second call sets `y.grad = 1` again, but every value *between*
# `y` and the weights still holds its gradient from the first call: the sum $u = w_1 x_1 + w_2 x_2 +
# b$ has $\bar u$ from the first sweep, and the second sweep adds the same amount again, so
# $\bar u$ doubles; the products add *their* doubled share on top of what they had, and so on down
# the graph: each level passes on its old gradient plus everything added above it. `w1` sits four
# operations below `y` (tanh, two sums, a product), and it ends with 5 times its first gradient
# instead of 2. Below, the tutorial's rule
# (nothing reset) against the corrected one (inner values reset, leaves accumulate), which gives
# exactly twice the first gradient, what two separate backward passes should add up to.

# %%
def tutorial_backward(out):
    """The tutorial's rule: nothing is reset except the output's own gradient."""
    out.grad = 1.0
    for v in reversed(out.topological_order()):
        for parent, local in v.parents:
            parent.grad += local * v.grad


def neuron():
    x1, x2, w1, w2, b = Value(0.8), Value(-0.5), Value(-1.3), Value(0.7), Value(0.4)
    return w1, (w1 * x1 + w2 * x2 + b).tanh()


w1, y = neuron()
tutorial_backward(y)
first = w1.grad
tutorial_backward(y)
print(f"tutorial's backward:  first call {first:+.6f}, after the second {w1.grad:+.6f} "
      f"({w1.grad / first:.3f} times)")

w1, y = neuron()
y.backward()
first = w1.grad
y.backward()
print(f"corrected backward:   first call {first:+.6f}, after the second {w1.grad:+.6f} "
      f"({w1.grad / first:.3f} times)")

# %% [markdown]
# ## Exercise 3: a topological sort without recursion
#
# `topological_order` above keeps its own stack of `(value, parents_done)` pairs: a value is pushed
# once to be expanded and once more to be appended after its parents. A chain of 5,000 additions is
# far deeper than Python's default recursion limit of 1,000; the recursive version of the tutorial
# fails on it, the stack version does not.

# %%
def recursive_order(out):
    order, seen = [], set()

    def visit(v):
        if id(v) not in seen:
            seen.add(id(v))
            for parent, _ in v.parents:
                visit(parent)
            order.append(v)

    visit(out)
    return order


start = Value(1.0)
v = start
for _ in range(5_000):
    v = v + 1.0
try:
    recursive_order(v)
    print("recursive version: finished (the recursion limit was raised)")
except RecursionError as err:
    print("recursive version:", type(err).__name__, "-", err)
v.backward()
print(f"stack version: {len(v.topological_order()):,} values in order, d(end)/d(start) = "
      f"{start.grad}")

"""Exercise 4: stochastic gradient descent, with momentum.

``MySGD(params, lr, momentum=0.0)`` keeps the list of parameters and, at each ``step()``, moves
every parameter that has a gradient, in place, with PyTorch's rule:

    v <- momentum * v + grad        (v = grad at the first step; no momentum: v = grad)
    p <- p - lr * v

``zero_grad()`` sets every parameter's ``grad`` to None (gradients accumulate until then).

Update the arrays (``p.data``; ``p.grad.data`` is the gradient's array), or work on tensors inside
``with mg.no_grad():`` - an update must not be recorded in the graph.  Keep one velocity per
parameter (a dict keyed by the parameter's position works).

Run this file to grade your answer:  python tutorials/exercises/04_sgd.py
"""

import minigen as mg


class MySGD:
    def __init__(self, params, lr, momentum=0.0):
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.velocity = {}

    def step(self):
        raise NotImplementedError("update every parameter that has a gradient")

    def zero_grad(self):
        raise NotImplementedError("forget the gradients")


if __name__ == "__main__":
    print(mg.exercises.check("sgd", MySGD))

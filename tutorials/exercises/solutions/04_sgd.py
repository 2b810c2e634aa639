"""Exercise 4, worked solution: SGD with momentum.

The velocity starts as the first gradient itself (PyTorch's convention, not zero), so the first step
with momentum is a plain gradient step.  The arrays are updated in place (``p.data -= ...``): the
Parameter objects stay the same, which matters because the model and the optimizer hold the same
objects.  minigen's ``mg.optim.SGD`` (minigen/optim.py) adds weight decay and checkpoints.
"""

import minigen as mg


class MySGD:
    def __init__(self, params, lr, momentum=0.0):
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.velocity = {}

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.data
            if self.momentum:
                v = self.velocity.get(i)
                v = g.copy() if v is None else self.momentum * v + g
                self.velocity[i] = v
                g = v
            p.data -= self.lr * g

    def zero_grad(self):
        for p in self.params:
            p.grad = None


if __name__ == "__main__":
    print(mg.exercises.check("sgd", MySGD))

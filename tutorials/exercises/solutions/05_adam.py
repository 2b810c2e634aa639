"""Exercise 5, worked solution: Adam.

Each parameter keeps its own step count (a parameter that had no gradient at some step does not
advance), and eps is added to the square root, outside it, as PyTorch does.  minigen's
``mg.optim.Adam`` (minigen/optim.py) computes the same update in one fused kernel, without the
temporary arrays this version makes.
"""

import minigen as mg


class MyAdam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.state = {}

    def step(self):
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad.data
            xp = mg.backend.namespace(g)
            m, v, t = self.state.get(i, (0.0, 0.0, 0))
            t += 1
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            self.state[i] = (m, v, t)
            m_hat = m / (1 - b1 ** t)
            v_hat = v / (1 - b2 ** t)
            p.data -= self.lr * m_hat / (xp.sqrt(v_hat) + self.eps)

    def zero_grad(self):
        for p in self.params:
            p.grad = None


if __name__ == "__main__":
    print(mg.exercises.check("adam", MyAdam))

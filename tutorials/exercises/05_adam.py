"""Exercise 5: Adam (Kingma & Ba, 2015), PyTorch's form.

For each parameter, with its gradient g and the step count t (1 at the first step):

    m <- b1 m + (1 - b1) g                 a moving average of the gradient      (m = 0 at first)
    v <- b2 v + (1 - b2) g^2               a moving average of its square        (v = 0 at first)
    m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)      the bias correction
    p <- p - lr * m_hat / (sqrt(v_hat) + eps)

Without the correction the first steps are far too small: m starts at 0, so after one step it is
(1 - b1) g = 0.1 g.  Dividing by (1 - b1^t) undoes exactly that.

Run this file to grade your answer:  python tutorials/exercises/05_adam.py
"""

import minigen as mg


class MyAdam:
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.state = {}              # per parameter position: its m, v and step count

    def step(self):
        raise NotImplementedError("update every parameter that has a gradient")

    def zero_grad(self):
        for p in self.params:
            p.grad = None


if __name__ == "__main__":
    print(mg.exercises.check("adam", MyAdam))

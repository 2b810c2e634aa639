"""The reference implementations minigen is timed against: the same MNIST VAE written by hand in
NumPy (every gradient derived on paper) and in PyTorch.

The model is the PyTorch example's: 784 -> 400 (ReLU) -> mu, log_var (20 each) -> z -> 400 (ReLU) ->
784 logits, trained with Adam on the negative ELBO, summed over pixels and latent dimensions and
averaged over the batch:

    loss = (1/N) sum_n [ sum_d bce_with_logits(l_nd, x_nd)
                         + 0.5 sum_j (mu^2 + exp(lv) - 1 - lv)_nj ]

The benchmarks only import this file (it needs NumPy, and PyTorch for the second reference).
"""

import math

import numpy as np


class NumpyVAE:
    """The VAE with hand-derived gradients and an in-place Adam: the fastest plain-NumPy version we
    know how to write, and the yardstick of minigen's autograd overhead.

    ``NumpyVAE(sizes=(784, 400, 20), dtype="float32", seed=0, xp=numpy)``; ``xp`` may be CuPy (the
    same code then runs on the GPU).  ``loss_and_gradients(x, eps)`` gives the loss (an array of
    shape ()) and a dict of gradients for the batch ``x`` and the reparameterization noise ``eps``;
    ``step(x, eps)`` also applies one Adam step with them and returns the loss.
    """

    def __init__(self, sizes=(784, 400, 20), dtype="float32", seed=0, xp=np, lr=1e-3,
                 betas=(0.9, 0.999), eps=1e-8):
        d, h, k = sizes
        rng = np.random.default_rng(seed)

        def glorot(n_in, n_out):
            a = math.sqrt(6.0 / (n_in + n_out))
            return xp.asarray(rng.uniform(-a, a, (n_in, n_out)).astype(dtype))

        def zeros(*shape):
            return xp.zeros(shape, dtype=dtype)

        self.xp = xp
        self.params = {"W1": glorot(d, h), "b1": zeros(h), "Wmu": glorot(h, k), "bmu": zeros(k),
                       "Wlv": glorot(h, k), "blv": zeros(k), "W3": glorot(k, h), "b3": zeros(h),
                       "W4": glorot(h, d), "b4": zeros(d)}
        self.m = {name: xp.zeros_like(p) for name, p in self.params.items()}
        self.v = {name: xp.zeros_like(p) for name, p in self.params.items()}
        self.scratch = {name: xp.empty_like(p) for name, p in self.params.items()}
        self.lr, (self.beta1, self.beta2), self.eps, self.t = lr, betas, eps, 0

    def step(self, x, eps):
        loss, grads = self.loss_and_gradients(x, eps)
        self._adam(grads)
        return loss

    def loss_and_gradients(self, x, eps):
        xp, p = self.xp, self.params
        n = x.shape[0]
        # forward
        h1 = x @ p["W1"]
        h1 += p["b1"]
        xp.maximum(h1, 0, out=h1)
        mu = h1 @ p["Wmu"] + p["bmu"]
        lv = h1 @ p["Wlv"] + p["blv"]
        std = xp.exp(0.5 * lv)
        z = mu + std * eps
        h3 = z @ p["W3"]
        h3 += p["b3"]
        xp.maximum(h3, 0, out=h3)
        logits = h3 @ p["W4"]
        logits += p["b4"]
        # loss: bce_with_logits(l, x) = max(l, 0) - l x + log(1 + exp(-|l|))
        rec = xp.sum(xp.maximum(logits, 0) - logits * x + xp.log1p(xp.exp(-xp.abs(logits))))
        var = std * std
        kl = 0.5 * xp.sum(mu * mu + var - 1.0 - lv)
        loss = (rec + kl) / n
        # backward: d loss / d logits = (sigmoid(l) - x) / N
        g = 1.0 / (1.0 + xp.exp(-logits))
        g -= x
        g *= 1.0 / n
        grads = {"W4": h3.T @ g, "b4": g.sum(axis=0)}
        gh3 = g @ p["W4"].T
        gh3 *= h3 > 0
        grads["W3"], grads["b3"] = z.T @ gh3, gh3.sum(axis=0)
        gz = gh3 @ p["W3"].T
        gmu = gz + mu * (1.0 / n)                                  # + d KL / d mu
        glv = gz * eps * (0.5 * std) + (0.5 / n) * (var - 1.0)     # dz/dlv, + d KL / d lv
        grads["Wmu"], grads["bmu"] = h1.T @ gmu, gmu.sum(axis=0)
        grads["Wlv"], grads["blv"] = h1.T @ glv, glv.sum(axis=0)
        gh1 = gmu @ p["Wmu"].T
        gh1 += glv @ p["Wlv"].T
        gh1 *= h1 > 0
        grads["W1"], grads["b1"] = x.T @ gh1, gh1.sum(axis=0)
        return loss, grads

    def _adam(self, grads):
        """Adam as a careful NumPy programmer writes it: in place, through one scratch array per
        parameter (``out=``), nothing allocated; the bias corrections folded into two scalars."""
        self.t += 1
        b1, b2, xp = self.beta1, self.beta2, self.xp
        root = math.sqrt(1.0 - b2 ** self.t)
        step = self.lr * root / (1.0 - b1 ** self.t)
        for name, g in grads.items():
            m, v, s = self.m[name], self.v[name], self.scratch[name]
            xp.multiply(g, 1.0 - b1, out=s)
            m *= b1
            m += s
            xp.multiply(g, g, out=s)
            s *= 1.0 - b2
            v *= b2
            v += s
            xp.sqrt(v, out=s)
            s += self.eps * root
            xp.divide(m, s, out=s)
            s *= step
            self.params[name] -= s


def torch_vae(sizes=(784, 400, 20)):
    """The same VAE as a ``torch.nn.Module`` with a ``loss(x)`` method (PyTorch's own
    initialisation)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    d, h, k = sizes

    class TorchVAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc21, self.fc22 = nn.Linear(d, h), nn.Linear(h, k), nn.Linear(h, k)
            self.fc3, self.fc4 = nn.Linear(k, h), nn.Linear(h, d)

        def loss(self, x):
            hidden = F.relu(self.fc1(x))
            mu, log_var = self.fc21(hidden), self.fc22(hidden)
            z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
            logits = self.fc4(F.relu(self.fc3(z)))
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
            kl = 0.5 * (mu.pow(2) + log_var.exp() - 1 - log_var).sum(1)
            return (rec + kl).mean()

    return TorchVAE()

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


def numpy_adam(params, grads, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
    """Adam as NumpyVAE._adam does it (in place through scratch arrays), for a dict of parameters;
    ``state`` holds t, m, v and the scratch arrays between calls."""
    if not state:
        state.update(t=0, m={k: np.zeros_like(p) for k, p in params.items()},
                     v={k: np.zeros_like(p) for k, p in params.items()},
                     s={k: np.empty_like(p) for k, p in params.items()})
    state["t"] += 1
    (b1, b2), t = betas, state["t"]
    root = math.sqrt(1.0 - b2 ** t)
    step = lr * root / (1.0 - b1 ** t)
    for name, g in grads.items():
        m, v, s = state["m"][name], state["v"][name], state["s"][name]
        np.multiply(g, 1.0 - b1, out=s)
        m *= b1
        m += s
        np.multiply(g, g, out=s)
        s *= 1.0 - b2
        v *= b2
        v += s
        np.sqrt(v, out=s)
        s += eps * root
        np.divide(m, s, out=s)
        s *= step
        params[name] -= s


class NumpyDeepMLP:
    """A deep narrow MLP by hand: ``depth`` Dense layers of ``width`` (tanh after all but the last),
    the mean squared error against a target, hand-derived gradients and the in-place Adam above.

        h_0 = x,  h_i = tanh(h_{i-1} W_i + b_i) (i < depth),  out = h_{depth-1} W_depth + b_depth
        loss = mean((out - y)^2)
    """

    def __init__(self, width=64, depth=8, dtype="float32", seed=0, lr=1e-3):
        rng = np.random.default_rng(seed)
        a = math.sqrt(6.0 / (2 * width))
        self.params = {}
        for i in range(depth):
            self.params[f"W{i}"] = rng.uniform(-a, a, (width, width)).astype(dtype)
            self.params[f"b{i}"] = np.zeros(width, dtype=dtype)
        self.depth, self.lr, self.state = depth, lr, {}

    def step(self, x, y):
        p, hs = self.params, [x]
        for i in range(self.depth):
            h = hs[-1] @ p[f"W{i}"]
            h += p[f"b{i}"]
            if i < self.depth - 1:
                np.tanh(h, out=h)
            hs.append(h)
        diff = hs[-1] - y
        loss = np.mean(diff * diff)
        g = diff * (2.0 / diff.size)
        grads = {}
        for i in reversed(range(self.depth)):
            grads[f"W{i}"], grads[f"b{i}"] = hs[i].T @ g, g.sum(axis=0)
            if i:
                g = g @ p[f"W{i}"].T
                g *= 1.0 - hs[i] * hs[i]                        # tanh' from its output
        numpy_adam(p, grads, self.state, lr=self.lr)
        return loss


def torch_deep_mlp(width=64, depth=8):
    """The deep narrow MLP in PyTorch, with a ``loss(x, y)`` method."""
    from torch import nn

    layers = []
    for i in range(depth):
        layers.append(nn.Linear(width, width))
        if i < depth - 1:
            layers.append(nn.Tanh())

    class TorchDeepMLP(nn.Sequential):
        def loss(self, x, y):
            return ((self(x) - y) ** 2).mean()

    return TorchDeepMLP(*layers)


def _torch_stack(sizes, out=None):
    """Linear layers through ``sizes`` with ReLU between them (and after the last unless ``out``
    is False): minigen's ``mlp`` and Dense bodies."""
    from torch import nn

    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if out is None or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _ema(average, network, decay):
    import torch

    with torch.no_grad():
        for a, p in zip(average.parameters(), network.parameters()):
            a.mul_(decay).add_(p, alpha=1.0 - decay)


class TorchGAN:
    """minigen's GAN (pack 1) in PyTorch with the same updates: the discriminator on the real batch
    and detached fakes, then the generator through the updated discriminator (non-saturating loss),
    one Adam each, and the moving average of the generator's weights after every step."""

    def __init__(self, data_dim, latent_dim, hidden, lr=1e-3, betas=(0.5, 0.999), ema=0.999):
        import copy

        import torch

        self.torch, self.latent_dim, self.ema = torch, latent_dim, ema
        self.generator = _torch_stack((latent_dim,) + tuple(hidden[::-1]) + (data_dim,), out=False)
        self.body = _torch_stack((data_dim,) + tuple(hidden))
        self.head = torch.nn.Linear(hidden[-1], 1)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
        self.opt_d = torch.optim.Adam(list(self.body.parameters()) + list(self.head.parameters()),
                                      lr=lr, betas=betas)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas)

    def step(self, x):
        torch, F = self.torch, self.torch.nn.functional
        fake = self.generator(torch.randn(x.shape[0], self.latent_dim))

        def bce(logits, target):
            return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

        self.opt_d.zero_grad()
        d_loss = bce(self.head(self.body(x)), 1.0) + bce(self.head(self.body(fake.detach())), 0.0)
        d_loss.backward()
        self.opt_d.step()
        self.opt_g.zero_grad()
        g_loss = bce(self.head(self.body(fake)), 1.0)
        g_loss.backward()
        self.opt_g.step()
        self.opt_d.zero_grad()
        if self.ema:
            _ema(self.generator_ema, self.generator, self.ema)
        return d_loss.item(), g_loss.item()


class TorchVAEGAN:
    """minigen's VAEGAN in PyTorch with the same updates: the three losses from one forward pass,
    each network's gradient from its own objective (three ``torch.autograd.grad`` calls), one Adam
    each, and the moving average of the decoder's weights."""

    def __init__(self, data_dim, hidden, latent_dim, gamma=30.0, llike="pixels",
                 likelihood="gaussian", beta=0.01, ema=0.99, lr=2e-3):
        import copy

        import torch

        self.torch, self.latent_dim = torch, latent_dim
        self.gamma, self.llike, self.likelihood, self.beta, self.ema = (
            gamma, llike, likelihood, beta, ema)
        self.body = _torch_stack((data_dim,) + tuple(hidden))
        self.mu, self.log_var = (torch.nn.Linear(hidden[-1], latent_dim) for _ in range(2))
        self.decoder = _torch_stack((latent_dim,) + tuple(hidden[::-1]) + (data_dim,), out=False)
        self.dis_body = _torch_stack((data_dim,) + tuple(hidden))
        self.dis_head = torch.nn.Linear(hidden[-1], 1)
        self.decoder_ema = copy.deepcopy(self.decoder).requires_grad_(False)
        betas = (0.5, 0.999) if likelihood == "bernoulli" else (0.9, 0.999)
        self.groups = {
            "encoder": [p for m in (self.body, self.mu, self.log_var) for p in m.parameters()],
            "decoder": list(self.decoder.parameters()),
            "discriminator": [p for m in (self.dis_body, self.dis_head) for p in m.parameters()]}
        self.opts = {name: torch.optim.Adam(ps, lr=lr, betas=betas)
                     for name, ps in self.groups.items()}

    def step(self, x):
        torch, F = self.torch, self.torch.nn.functional
        n = x.shape[0]
        h = self.body(x)
        mu, log_var = self.mu(h), self.log_var(h)
        decoded = self.decoder(mu + torch.exp(0.5 * log_var) * torch.randn_like(mu))
        prior_out = self.decoder(torch.randn(n, self.latent_dim))
        bernoulli = self.likelihood == "bernoulli"
        x_rec = torch.sigmoid(decoded) if bernoulli else decoded
        x_prior = torch.sigmoid(prior_out) if bernoulli else prior_out
        features = self.dis_body(torch.cat([x, x_rec, x_prior], 0))
        logits = self.dis_head(features)
        real, rec, fake = logits[:n], logits[n:2 * n], logits[2 * n:]

        def bce(logits, target):
            return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

        prior = (0.5 * (mu * mu + log_var.exp() - 1.0 - log_var)).sum(1).mean()
        if self.llike == "features":
            diff = features[n:2 * n] - features[:n]
            llike = 0.5 * (diff * diff).sum(1).mean()
        elif bernoulli:
            llike = F.binary_cross_entropy_with_logits(decoded, x, reduction="none").sum(1).mean()
        else:
            diff = x - decoded
            llike = (0.5 * diff * diff + 0.5 * math.log(2 * math.pi)).sum(1).mean()
        d_loss = bce(real, 1.0) + bce(rec, 0.0) + bce(fake, 0.0)
        g_loss = bce(rec, 1.0) + bce(fake, 1.0)
        objectives = {"encoder": self.beta * prior + llike,
                      "decoder": self.gamma * llike + g_loss, "discriminator": d_loss}
        grads = {name: torch.autograd.grad(objectives[name], self.groups[name],
                                           retain_graph=name != "discriminator")
                 for name in ("encoder", "decoder", "discriminator")}
        for name, opt in self.opts.items():
            for p, g in zip(self.groups[name], grads[name]):
                p.grad = g
            opt.step()
        if self.ema:
            _ema(self.decoder_ema, self.decoder, self.ema)
        return prior.item(), llike.item(), d_loss.item(), g_loss.item()

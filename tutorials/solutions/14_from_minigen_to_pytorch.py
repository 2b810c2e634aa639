# %% [markdown]
# # Solutions: 14. From minigen to PyTorch
#
# Worked solutions to the exercises of [tutorial 14](../14_from_minigen_to_pytorch.py). Try each
# exercise before reading its solution. All three need PyTorch; without it this file says so and
# stops after the set-up.

# %%
import math
import os
import time

import numpy as np

import minigen as mg
from minigen.train import fit

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
try:
    import torch
    HAVE_TORCH = True
    torch.set_num_threads(1)
except ImportError:
    HAVE_TORCH = False
    print("PyTorch is not installed here: these solutions need it (pip install torch)")

mg.manual_seed(0)
x_train, _ = mg.data.ring(512 if SMOKE else 2000, seed=0)
x_test, _ = mg.data.ring(256, seed=1)
vae = mg.VAE(2, hidden=(64, 32), latent_dim=2, likelihood="gaussian")
fit(vae, x_train, epochs=2 if SMOKE else 20, batch_size=128, lr=2e-3, quiet=True)
eps = mg.randn(x_test.shape[0], 2)                 # one noise draw, shared by both frameworks


def minigen_elbo(model, x, eps):
    """The ELBO of each row of x with z = mu + exp(log_var / 2) eps (in the graph)."""
    mu, log_var = model.encode(x)
    z = mu + mg.exp(0.5 * log_var) * eps
    kl = mg.losses.gaussian_kl(mu, log_var, reduction="none").sum(axis=1)
    return model.log_px_given_z(x, model.decode(z)) - kl

# %% [markdown]
# ## Exercise 1: a twin built from `Sequential(Linear, ReLU, ...)`
#
# With the activations as modules, PyTorch numbers them too: the decoder's Linear layers are
# `decoder.0`, `decoder.2`, `decoder.4`, where minigen (whose `Dense` holds its activation) has
# `decoder.0`, `decoder.1`, `decoder.2`. The encoder body shifts the same way. So
# `load_state_dict(to_torch_state_dict(vae))` fails: keys are missing (`decoder.4.weight`...),
# unexpected (`decoder.1.weight`...), or land on the wrong layer (`decoder.2` is minigen's last
# layer but PyTorch's second Linear). The renaming maps minigen's layer i of a sequence to PyTorch's
# index 2 i.

# %%
if HAVE_TORCH:
    def sequential(sizes):
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        return torch.nn.Sequential(*layers)

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Linear(2, 64), torch.nn.ReLU(),
                                            torch.nn.Linear(64, 32), torch.nn.ReLU())
            self.mu, self.log_var = torch.nn.Linear(32, 2), torch.nn.Linear(32, 2)
            self.decoder = sequential((2, 32, 64, 2))

        def forward(self, x, eps):
            h = self.body(x)
            mu, log_var = self.mu(h), self.log_var(h)
            z = mu + torch.exp(0.5 * log_var) * eps
            log_px = (-0.5 * (x - self.decoder(z)) ** 2 - 0.5 * math.log(2 * math.pi)).sum(1)
            return log_px - 0.5 * (mu ** 2 + log_var.exp() - 1 - log_var).sum(1)

    def rename(name):
        """minigen's names -> this twin's: 'encoder.' dropped, sequence index i -> 2 i."""
        parts = name.replace("encoder.", "", 1).split(".")
        if parts[0] in ("body", "decoder"):
            parts[1] = str(2 * int(parts[1]))
        return ".".join(parts)

    twin = Twin()
    try:
        twin.load_state_dict(mg.interop.to_torch_state_dict(vae))
    except RuntimeError as err:
        print("without renaming:", "\n".join(str(err).splitlines()[:3]), "\n  ...")
    twin.load_state_dict({rename(k): v for k, v in mg.interop.to_torch_state_dict(vae).items()})
    with mg.no_grad():
        ours = minigen_elbo(vae, x_test, eps).numpy()
    with torch.no_grad():
        theirs = twin(torch.from_dlpack(x_test), torch.from_dlpack(eps)).numpy()
    print(f"renamed and loaded; largest ELBO difference {np.abs(ours - theirs).max():.2e} nats")

# %% [markdown]
# ## Exercise 2: what does a zero-copy exchange cost?
#
# `torch.from_dlpack(t)` wraps the same memory: it builds a small descriptor, so its cost does not
# depend on the size. `torch.tensor(t.numpy())` allocates a new block and copies every byte, so its
# cost grows in proportion to the size (a few hundred megabytes per second to a few gigabytes per
# second, depending on the machine's memory bandwidth).

# %%
if HAVE_TORCH:
    sizes = [10 ** 3, 10 ** 6] if SMOKE else [10 ** 3, 10 ** 6, 10 ** 8]
    print(f"{'elements':>10} {'from_dlpack (us)':>17} {'copy (us)':>12}")
    for n in sizes:
        t = mg.zeros(n)
        start = time.perf_counter()
        for _ in range(20):
            torch.from_dlpack(t)
        shared = (time.perf_counter() - start) / 20
        start = time.perf_counter()
        copied = torch.tensor(t.numpy())
        copy = time.perf_counter() - start
        assert not np.shares_memory(copied.numpy(), t.data)
        print(f"{n:>10} {shared * 1e6:>17.1f} {copy * 1e6:>12.1f}")
        del t, copied

# %% [markdown]
# ## Exercise 3: the gradient of the first encoder weight in both
#
# minigen's $W$ is PyTorch's $W^\top$, and the function is the same, so the gradient with respect to
# PyTorch's weight is the transpose of the gradient with respect to minigen's:
# $\partial L / \partial W_{\text{torch}} = (\partial L / \partial W_{\text{minigen}})^\top$.

# %%
if HAVE_TORCH:
    weight = vae.encoder.body[0].weight
    (g_minigen,) = mg.grad(minigen_elbo(vae, x_test, eps).mean(), [weight])
    twin.zero_grad()
    twin(torch.from_dlpack(x_test), torch.from_dlpack(eps)).mean().backward()
    g_torch = twin.body[0].weight.grad.numpy()
    print("shapes:", g_minigen.shape, "(minigen)", tuple(g_torch.shape), "(PyTorch)")
    print(f"largest |g_torch - g_minigen^T|: {np.abs(g_torch - g_minigen.numpy().T).max():.2e}")

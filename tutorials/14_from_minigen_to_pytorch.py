# %% [markdown]
# # 14. From minigen to PyTorch
#
# minigen is written to be read: every op fits on a screen, next to its derivative. A day comes when
# you need what it does not have - models too big for one GPU, mixed precision, a compiler, other
# people's code. This tutorial is the road out, and it has two lanes:
#
# 1. **arrays without copies**: a minigen tensor and a PyTorch (or CuPy, JAX, NumPy) array can share
#    one block of memory through the *DLPack* protocol, so data moves between libraries for free;
# 2. **models**: `mg.interop.to_torch_state_dict(model)` writes a minigen model's weights in
#    PyTorch's layout, so a PyTorch module with the same structure loads them and computes the same
#    numbers - here, the same ELBO to the last few bits of float32. And back again.
#
# PyTorch is optional: without it, the cells that need it say so and the rest still runs
# (`pip install torch`; the CPU build is enough).

# %%
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg
from minigen.train import fit

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"   # tiny runs for the test suite
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


try:
    import torch
    HAVE_TORCH = True
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print("PyTorch", torch.__version__)
except ImportError:
    HAVE_TORCH = False
    print("PyTorch is not installed here: the cells that need it are skipped "
          "(pip install torch to run them)")

mg.manual_seed(0)

# %% [markdown]
# ## Arrays without copies: DLPack
#
# An array is a pointer to memory plus a description: shape, strides (how many elements to skip
# along each axis), dtype, and the device the memory is on. DLPack is a small C struct holding
# exactly that, which array libraries agreed on so that any of them can hand its memory to any
# other. A producer offers two methods: `__dlpack_device__()`, which says where the memory is (a
# device type and number: `(1, 0)` is the CPU, `(2, 0)` the first CUDA GPU), and `__dlpack__()`,
# which packs the struct; the consumer's `from_dlpack(x)` unpacks it into its own array type.
# Nothing is copied: both arrays read and write the same bytes.
#
# A minigen Tensor is a producer (it forwards to its backend array, NumPy or CuPy), and
# `mg.from_dlpack(x)` is a consumer:

# %%
t = mg.Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
print("device of t:", t.__dlpack_device__(), "(1 = kDLCPU)")

view = np.from_dlpack(t)          # NumPy consumes minigen's memory
print("same memory:", np.shares_memory(view, t.data))
view[0, 0] = 100.0                # write through NumPy ...
print("t after writing through NumPy:\n", t)   # ... and minigen sees it

back = mg.from_dlpack(view)       # and the other way
print("mg.from_dlpack gives", type(back).__name__, back.dtype, "on", back.device,
      "| same memory:", np.shares_memory(back.data, view))

# %% [markdown]
# With PyTorch it is the same two calls, `torch.from_dlpack(t)` and `mg.from_dlpack(x)`. The dtype
# travels with the memory (float32 stays float32, int64 stays int64):

# %%
if HAVE_TORCH:
    tt = torch.from_dlpack(t)
    tt.mul_(0.5)                                   # an in-place PyTorch op ...
    print("t after tt.mul_(0.5) in PyTorch:\n", t)   # ... changes minigen's tensor
    x = torch.arange(6, dtype=torch.int64).reshape(2, 3)
    m = mg.from_dlpack(x)
    x[1, 2] = -1
    print("minigen sees PyTorch's write:", m.tolist(), m.dtype)
else:
    print("skipped: PyTorch is not installed")

# %% [markdown]
# **Gradients do not cross.** DLPack carries memory, not a graph: the receiving library knows
# nothing of the operations that made the array. PyTorch therefore refuses to export a tensor that
# requires grad, with a `BufferError` (the DLPack standard's "cannot export"), and minigen does the
# same. Detach first, and make a new leaf on the other side if it is to be trained there:

# %%
w = mg.nn.Parameter([0.5, -0.5])
try:
    w.__dlpack__()
except BufferError as err:
    print("BufferError:", err)
print("detached, it goes:", np.from_dlpack(w.detach()))
if HAVE_TORCH:
    w_torch = torch.from_dlpack(w.detach()).clone().requires_grad_()   # a new PyTorch leaf
    print("a PyTorch leaf with minigen's values:", w_torch)

# %% [markdown]
# **On the GPU** nothing changes but the device: a minigen tensor on CuPy has device `(2, 0)`, and
# `torch.from_dlpack(t)` gives a CUDA tensor on the same device memory (as does `cupy.from_dlpack`,
# or `jax.dlpack.from_dlpack` for JAX). `mg.from_dlpack` picks the backend from the device: NumPy
# for host memory, CuPy for CUDA memory. One caution: GPU work is queued, and DLPack's `stream`
# argument is how a consumer asks the producer to make its queued writes visible first;
# `torch.from_dlpack` passes it for you.

# %%
if "cupy" in mg.available_backends():
    g = mg.Tensor([1.0, 2.0, 3.0]).to("gpu")
    print("device of a GPU tensor:", g.__dlpack_device__())
    if HAVE_TORCH and torch.cuda.is_available():
        print("PyTorch sees it on", torch.from_dlpack(g).device)
else:
    print("no GPU backend here: the same code runs unchanged on a machine with CuPy and a GPU")

# %% [markdown]
# ## A model in PyTorch's layout
#
# Weights are just arrays, so moving a model is moving its `state_dict()`, with one catch. A minigen
# `Dense` layer computes $y = xW + b$ with $W$ of shape (in, out): the founding document's Keras
# convention, where a batch of rows multiplies the weight directly. PyTorch's `Linear` computes
# $y = xW^\top + b$ and stores $W$ as (out, in), one row per output unit. The numbers are the same,
# the storage is transposed. `mg.interop.layout_changes(model)` names every weight that needs it;
# everything else (biases, and convolution weights, which minigen lays out as PyTorch does) moves as
# it is.
#
# Let us train a small VAE on the ring of eight Gaussians (tutorial 5's model with a Gaussian
# decoder) and look at its weights:

# %%
x_train, _ = mg.data.ring(512 if SMOKE else 2000, seed=0)
x_test, _ = mg.data.ring(256 if SMOKE else 1000, seed=1)
vae = mg.VAE(2, hidden=(64, 32), latent_dim=2, likelihood="gaussian")
history, _ = fit(vae, x_train, epochs=2 if SMOKE else 40, batch_size=128, lr=2e-3, quiet=True)
print(f"trained {len(history)} epochs, last loss {history[-1]['loss']:.3f} nats")

print(f"\n{'entry':<24} {'minigen':>10} {'PyTorch':>10}")
for name, ours, theirs, why in mg.interop.layout_changes(vae):
    print(f"{name:<24} {str(ours):>10} {str(theirs):>10}")
print("\nwhy:", mg.interop.layout_changes(vae)[0][3])

# %% [markdown]
# ## The PyTorch twin
#
# A PyTorch module loads a state dict by attribute names, so the twin uses minigen's names:
# `encoder.body.0`, `encoder.mu`, `encoder.log_var`, `decoder.0`... The one structural difference is
# that a minigen `Dense` carries its activation inside (`Dense(2, 64, activation="relu")` is one
# fused op), while PyTorch keeps `Linear` and the activation apart: the twin applies `relu` in its
# `forward`, which keeps the layers' indices the same. (With `torch.nn.Sequential(Linear, ReLU,
# Linear)` the second Linear would be `1` in minigen but `2` in PyTorch: rename the keys then.)

# %%
if HAVE_TORCH:
    class TorchEncoder(torch.nn.Module):
        def __init__(self, sizes, latent):
            super().__init__()
            self.body = torch.nn.Sequential(*[torch.nn.Linear(a, b)
                                              for a, b in zip(sizes[:-1], sizes[1:])])
            self.mu = torch.nn.Linear(sizes[-1], latent)
            self.log_var = torch.nn.Linear(sizes[-1], latent)

        def forward(self, x):
            for layer in self.body:
                x = torch.relu(layer(x))
            return self.mu(x), self.log_var(x)

    class TorchVAE(torch.nn.Module):
        """minigen's VAE(2, hidden=(64, 32), latent_dim=2, likelihood="gaussian"), in PyTorch."""

        def __init__(self, data_dim=2, hidden=(64, 32), latent=2):
            super().__init__()
            self.encoder = TorchEncoder((data_dim,) + hidden, latent)
            sizes = (latent,) + hidden[::-1] + (data_dim,)
            self.decoder = torch.nn.Sequential(*[torch.nn.Linear(a, b)
                                                 for a, b in zip(sizes[:-1], sizes[1:])])

        def decode(self, z):
            for layer in self.decoder[:-1]:
                z = torch.relu(layer(z))
            return self.decoder[-1](z)

    twin = TorchVAE()
    state = mg.interop.to_torch_state_dict(vae)
    twin.load_state_dict(state)                   # strict: every name and shape must fit
    shape = tuple(state["encoder.body.0.weight"].shape)
    print(f"loaded {len(state)} tensors into the twin; e.g. encoder.body.0.weight: minigen "
          f"{vae.encoder.body[0].weight.shape} -> PyTorch {shape}")
else:
    print("skipped: PyTorch is not installed")

# %% [markdown]
# ## The same ELBO in both
#
# For a Gaussian decoder with unit variance and the encoder's $q(z \mid x) = \mathcal{N}(\mu,
# \operatorname{diag} e^{\log\sigma^2})$, one draw $z = \mu + e^{\frac12 \log\sigma^2}\varepsilon$
# gives the ELBO estimate
#
# $$\mathrm{ELBO}(x) = \sum_d \Bigl[-\tfrac12 (x_d - m_d(z))^2 - \tfrac12\log 2\pi\Bigr]
#   - \sum_j \tfrac12\bigl(\mu_j^2 + e^{\log\sigma^2_j} - 1 - \log\sigma^2_j\bigr).$$
#
# To compare the two frameworks example by example, both must use the same noise $\varepsilon$. We
# draw it in minigen and hand it to PyTorch through DLPack, then compute the ELBO once with
# minigen's model and once with the twin, written out with PyTorch's ops:

# %%
def minigen_elbo(model, x, eps):
    with mg.no_grad():
        mu, log_var = model.encode(x)
        z = mu + mg.exp(0.5 * log_var) * eps
        kl = mg.losses.gaussian_kl(mu, log_var, reduction="none").sum(axis=1)
        return model.log_px_given_z(x, model.decode(z)) - kl


def torch_elbo(model, x, eps):
    with torch.no_grad():
        mu, log_var = model.encoder(x)
        z = mu + torch.exp(0.5 * log_var) * eps
        kl = 0.5 * (mu ** 2 + log_var.exp() - 1 - log_var).sum(dim=1)
        log_px = (-0.5 * (x - model.decode(z)) ** 2 - 0.5 * np.log(2 * np.pi)).sum(dim=1)
        return log_px - kl


x = x_test                                    # a minigen Tensor (2-D points)
eps = mg.randn(x.shape[0], 2)
ours = minigen_elbo(vae, x, eps)
print(f"minigen  mean ELBO {ours.mean().item():.6f} nats")
if HAVE_TORCH:
    theirs = torch_elbo(twin, torch.from_dlpack(x), torch.from_dlpack(eps))
    gap = np.abs(ours.numpy() - theirs.numpy()).max()
    print(f"PyTorch  mean ELBO {theirs.mean().item():.6f} nats")
    print(f"largest difference over {x.shape[0]} examples: {gap:.2e} nats (float32 rounding)")

# %% [markdown]
# The two agree to float32 rounding: they are the same function with the same weights, computed in
# a different order of floating-point operations (PyTorch multiplies by $W^\top$ with a transposed
# BLAS call where minigen multiplies by $W$).
#
# ## Training on in PyTorch, and coming back
#
# The twin is an ordinary PyTorch module: train it on with PyTorch's Adam, then bring the weights
# home with `mg.interop.load_torch_state_dict(model, state_dict)`, which transposes the `Linear`
# weights back. The ELBO must agree again - this time computed after the round trip.

# %%
if HAVE_TORCH:
    optimizer = torch.optim.Adam(twin.parameters(), lr=1e-3)
    data = torch.from_dlpack(x_train)             # the training set, shared, not copied
    torch_epochs = 2 if SMOKE else 20
    torch_losses = []
    for epoch in range(torch_epochs):
        order, total = torch.randperm(len(data)), 0.0
        for start in range(0, len(data), 128):
            batch = data[order[start:start + 128]]
            mu, log_var = twin.encoder(batch)
            z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
            nll = (0.5 * (batch - twin.decode(z)) ** 2 + 0.5 * np.log(2 * np.pi)).sum(dim=1)
            kl = 0.5 * (mu ** 2 + log_var.exp() - 1 - log_var).sum(dim=1)
            loss = (nll + kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        torch_losses.append(total / len(data))
    print(f"{torch_epochs} more epochs in PyTorch, last loss {torch_losses[-1]:.3f} nats")

    mg.interop.load_torch_state_dict(vae, twin.state_dict())     # home again
    ours = minigen_elbo(vae, x, eps)
    theirs = torch_elbo(twin, torch.from_dlpack(x), torch.from_dlpack(eps))
    print(f"after the round trip: minigen {ours.mean().item():.6f}, PyTorch "
          f"{theirs.mean().item():.6f}, largest difference "
          f"{np.abs(ours.numpy() - theirs.numpy()).max():.2e} nats")
else:
    torch_losses = []
    print("skipped: PyTorch is not installed")

# %% [markdown]
# One training run, two engines: the loss per epoch in minigen and then in PyTorch, and the decoder
# means for the same prior draws $z$, computed by both (each orange dot sits in its blue circle).
# They are spread over the disc rather than on the eight blobs because this decoder's noise has
# variance 1, as large as the ring itself: a sample is the mean plus that noise (tutorial 13 looks
# at such a model's likelihood exactly).

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
minigen_losses = [h["loss"] for h in history]
ax1.plot(range(1, len(minigen_losses) + 1), minigen_losses, label="minigen", color="tab:blue")
if torch_losses:
    after = range(len(minigen_losses) + 1, len(minigen_losses) + len(torch_losses) + 1)
    ax1.plot(after, torch_losses, label="PyTorch (continued)", color="tab:orange")
ax1.set_xlabel("epoch")
ax1.set_ylabel("loss = -ELBO (nats)")
ax1.set_title("training: first minigen, then PyTorch")
ax1.legend(loc="upper right")

z = mg.randn(300, 2)
with mg.no_grad():
    ours = vae.decode(z).numpy()
points = x_test.numpy()
ax2.scatter(ours[:, 0], ours[:, 1], s=22, facecolors="none", edgecolors="tab:blue",
            linewidths=0.8, label="decoded by minigen")
if HAVE_TORCH:
    with torch.no_grad():
        theirs = twin.decode(torch.from_dlpack(z)).numpy()
    ax2.scatter(theirs[:, 0], theirs[:, 1], s=3, color="tab:orange", label="decoded by PyTorch")
ax2.scatter(points[:, 0], points[:, 1], s=2, color="black", label="data (the ring)")
ax2.set_aspect("equal")
ax2.set_title("decoder means for the same z")
ax2.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
save(fig, "14_minigen_and_pytorch.png")

# %% [markdown]
# ## Onward
#
# From here the model is a PyTorch model, and PyTorch's tools apply to it: `torch.compile` to fuse
# its ops, automatic mixed precision, and `torch.nn.parallel.DistributedDataParallel` to train
# copies of it on many GPUs, each on its share of the batches, with the gradients averaged between
# steps. None of that changes what the model computes - which you can check, as above, by bringing
# the weights back to minigen and reading the ELBO there, line by line.
#
# ## What you learned
#
# * DLPack hands an array's memory from one library to another without a copy:
#   `torch.from_dlpack(t)` and `np.from_dlpack(t)` read a minigen tensor, `mg.from_dlpack(x)` reads
#   a PyTorch, CuPy, JAX or NumPy array; writes through one are seen by the other.
#   `__dlpack_device__` says where the memory lives, and `mg.from_dlpack` picks NumPy or CuPy from
#   it.
# * Gradients do not cross: a tensor that requires grad is refused (`BufferError`); detach it and
#   make a new leaf on the other side.
# * minigen's `Dense` stores its weight as (in, out) and computes $xW + b$; PyTorch's `Linear`
#   stores (out, in) and computes $xW^\top + b$. `mg.interop.to_torch_state_dict` transposes those
#   weights (and `layout_changes` lists them), so a PyTorch twin with the same attribute names loads
#   the model and gives the same ELBO to float32 rounding; `load_torch_state_dict` brings a
#   PyTorch-trained twin back.
#
# ## Exercises
#
# 1. Build the twin with `torch.nn.Sequential(Linear, ReLU, Linear, ...)` for the decoder instead of
#    applying `relu` in `forward`. Which keys of `to_torch_state_dict(vae)` no longer match, and
#    what renaming makes `load_state_dict` accept them?
# 2. Time `torch.from_dlpack(t)` for a minigen tensor of $10^3$ and of $10^8$ float32 numbers, and
#    `torch.tensor(t.numpy())` for the same. Which one grows with the size, and why?
# 3. Compute the gradient of the ELBO with respect to the first encoder weight in PyTorch (after
#    `load_state_dict`, with the same $\varepsilon$) and in minigen (`mg.grad`). How must the two
#    results be related, given the transposed layouts? Check it.

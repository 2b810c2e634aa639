# %% [markdown]
# # Solutions: 6. β, the rate–distortion trade-off, and the latent space
#
# Worked solutions to the exercises of [tutorial 6](../06_beta_and_the_latent_space.py). Try each
# exercise before reading its solution. They use MNIST from the folder in `MINIGEN_DATA`; without it
# they run on the 2-D ring with a Gaussian decoder, as the tutorial does, and say so.

# %%
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg
from minigen.data import DataError, load_mnist
from minigen.train import fit

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "savefig.bbox": "tight", "font.size": 9})
mg.backend.set_num_threads(1)


def save(fig, filename):
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


try:
    mnist = load_mnist(download=False)
    IMAGES = True
    train_x, test_x = mnist.train_images, mnist.test_images
    config = dict(data_dim=784, hidden=(256,), latent_dim=20, likelihood="bernoulli")
except DataError:
    IMAGES = False
    print("MNIST is not here (set MINIGEN_DATA to its folder): using the 2-D ring instead")
    train_x, _ = mg.data.ring(10_000, seed=0)
    test_x, _ = mg.data.ring(2_000, seed=1)
    config = dict(data_dim=2, hidden=(64, 32), latent_dim=2, likelihood="gaussian")
if SMOKE:
    train_x, test_x = train_x[:1000], test_x[:300]
EPOCHS = 1 if SMOKE else (6 if IMAGES else 20)


def train(beta):
    mg.manual_seed(0)                       # the same initial weights for every beta
    model = mg.VAE(**config, beta=beta)
    fit(model, train_x, epochs=EPOCHS, batch_size=128, lr=1e-3, seed=0, quiet=True)
    model.eval()
    return model


betas = [0.25, 1.0, 4.0, 8.0, 16.0]
models = {beta: train(beta) for beta in betas}

# %% [markdown]
# ## Exercise 1: larger β, and the dimensions that switch off
#
# A dimension $j$ is *active* when its KL, averaged over the test set, is above 0.01 nats: its
# $q_\phi(z_j \mid x)$ still depends on $x$. As $\beta$ grows every nat costs more and the rate
# falls towards 0. In our run all 20 dimensions were still active at $\beta = 8$, with little rate
# each, and at $\beta = 16$ every one had switched off ($q_\phi(z_j \mid x) = \mathcal{N}(0, 1)$ for
# every $x$). That is where the curve is heading: at rate $R = 0$ the code says nothing about the
# image, $p_\theta(x \mid z)$ cannot depend on $z$, and the best decoder outputs one image for every
# code, the pixel-wise mean of the data, a grey blur of all digits. The last printed line computes
# that image's distortion: the $\beta = 16$ model sits right at it. The samples show the same slide,
# from varied digits to one blur.

# %%
print(f"{'beta':>5} {'rate R':>8} {'distortion D':>13} {'active dims':>12}")
for beta, model in models.items():
    with mg.no_grad():
        parts = model.losses(test_x)
        mu, log_var = model.encode(test_x)
        per_dim = mg.losses.gaussian_kl(mu, log_var, reduction="none").mean(axis=0).numpy()
    print(f"{beta:5.2f} {parts['kl'].item():8.2f} {parts['reconstruction'].item():13.2f} "
          f"{int((per_dim > 0.01).sum()):8d} of {config['latent_dim']}")
mean_image = np.repeat(train_x.numpy().mean(axis=0, keepdims=True), len(test_x), axis=0)
with mg.no_grad():
    loss = mg.losses.bce if IMAGES else mg.losses.gaussian_nll
    floor = loss(mg.Tensor(mean_image), test_x, reduction="none").sum(axis=1).mean()
print(f"distortion of the rate-0 decoder (the mean training image for every code): "
      f"{floor.item():.2f}")

if IMAGES:
    mg.manual_seed(3)
    fig, axes = plt.subplots(len(betas), 1, figsize=(6.5, 0.75 * len(betas)))
    for ax, (beta, model) in zip(axes, models.items()):
        samples = model.sample(10).numpy().reshape(10, 28, 28)
        ax.imshow(np.concatenate(list(samples), axis=1), cmap="gray", vmin=0, vmax=1)
        ax.set_axis_off()
        ax.text(-6, 14, f"β = {beta:g}", ha="right", va="center", fontsize=8)
    save(fig, "06_solution_beta_samples.png")

# %% [markdown]
# ## Exercise 2: spherical interpolation
#
# Draws from a 20-dimensional standard normal have length close to $\sqrt{20} \approx 4.5$, and the
# middle of a straight line between two codes is shorter than either end (by the factor
# $\cos(\Omega/2)$ for codes of equal length at angle $\Omega$; for nearly orthogonal codes, about
# 0.7). Spherical interpolation keeps the length between the two ends' lengths all the way. The
# printed norms show the dip of the straight path. The decoded images differ only a little (the mean
# absolute pixel difference is printed): the decoder varies smoothly, and the shortened middle of
# the straight path still lies where the prior, and so the decoder's training, has plenty of mass.

# %%
model = models[1.0]
with mg.no_grad():
    codes, _ = model.encode(test_x[:2])
mu_a, mu_b = codes.numpy()
omega = np.arccos(np.dot(mu_a, mu_b) / (np.linalg.norm(mu_a) * np.linalg.norm(mu_b)))
ts = np.linspace(0, 1, 9)
straight = np.stack([(1 - t) * mu_a + t * mu_b for t in ts])
spherical = np.stack([(np.sin((1 - t) * omega) * mu_a + np.sin(t * omega) * mu_b) / np.sin(omega)
                      for t in ts])
print(f"angle between the codes: {np.degrees(omega):.0f} degrees")
print("t           ", " ".join(f"{t:5.2f}" for t in ts))
print("|z| straight", " ".join(f"{n:5.2f}" for n in np.linalg.norm(straight, axis=1)))
print("|z| slerp   ", " ".join(f"{n:5.2f}" for n in np.linalg.norm(spherical, axis=1)))
with mg.no_grad():
    decoded = [model.decode(mg.Tensor(path, dtype="float32")) for path in (straight, spherical)]
    if IMAGES:
        decoded = [mg.sigmoid(d) for d in decoded]
difference = np.abs(decoded[0].numpy() - decoded[1].numpy()).mean()
print(f"mean absolute difference between the two decoded paths: {difference:.4f}")

# %% [markdown]
# ## Exercise 3: how loose is the ELBO at other β?
#
# The gap $-\mathrm{ELBO} - (-\mathcal{L}_{50})$ estimates (from below) how far the encoder's
# diagonal Gaussian is from the true posterior of *its own* decoder,
# $\mathrm{KL}(q_\phi(z \mid x)\,\|\,p_\theta(z \mid x))$. For a given decoder the ELBO is
# $\log p_\theta(x)$ minus that KL, so the encoder trained for the ELBO, the $\beta = 1$ one, is the
# one that makes the gap as small as its Gaussian family allows. An encoder trained with $\beta \ne
# 1$ optimises something else, and its gap grows either way: with $\beta < 1$ nats are cheap and
# $q_\phi$ is too narrow; with $\beta > 1$ it is pulled towards the prior and is too wide for a
# posterior that 784 pixels pin down sharply, which costs more. In our run the gap was smallest at
# $\beta = 1$, a little larger at 0.25, and about three times larger at 4. (Each ELBO here is
# measured with $\beta = 1$, the true bound, whatever $\beta$ the model was trained with.)

# %%
n_eval = 100 if SMOKE else 500
for beta in (0.25, 1.0, 4.0):
    mg.manual_seed(5)
    negative_elbo = -mg.metrics.elbo(models[beta], test_x[:n_eval]).numpy()
    negative_iwae = -mg.metrics.iwae_bound(models[beta], test_x[:n_eval], k=50).numpy()
    gap = negative_elbo - negative_iwae
    print(f"beta {beta:4.2f}: -ELBO {negative_elbo.mean():8.2f}, "
          f"-L_50 {negative_iwae.mean():8.2f}, "
          f"gap {gap.mean():5.2f} ± {gap.std() / np.sqrt(n_eval):.2f} nats")

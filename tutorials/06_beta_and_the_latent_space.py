# %% [markdown]
# # 6. β, the rate–distortion trade-off, and the latent space
#
# Tutorial 5 trained a VAE by minimising reconstruction plus KL. Those two terms pull in opposite
# directions: a code that tells the decoder a lot about the image rebuilds it well but sits far from
# the prior, and a code close to the prior says little. This tutorial looks at that tension and at
# what the trained latent space can do:
#
# 1. weighting the KL term by $\beta$ (the β-VAE of Higgins et al., 2017) and reading the results as
#    a **rate–distortion curve** (Alemi et al., 2018);
# 2. **interpolating** between two digits by walking in the latent space, compared with fading one
#    image into the other;
# 3. how loose the ELBO is: the **importance-weighted bound** (Burda et al., 2015), which tightens
#    as it uses more samples.

# %%
import os
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg
from minigen.data import DataError, load_mnist
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


def strip(images, side=28, gap=2):
    """Flat images (n, side*side) side by side as one picture, with a white gap between them."""
    tiles = []
    for image in images:
        tiles += [image.reshape(side, side), np.ones((side, gap))]
    return np.concatenate(tiles[:-1], axis=1)


mg.manual_seed(0)

# %% [markdown]
# ## The data
#
# As in tutorial 5: MNIST from the folder in `MINIGEN_DATA` (with only the 10,000 test digits there,
# the first 8,000 train and the last 2,000 test), or, when it cannot be loaded, the 2-D ring with a
# Gaussian decoder, clearly labelled as such.

# %%
try:
    mnist = load_mnist(download=not SMOKE)         # the quick test runs never download
    IMAGES = True
    train_x, test_x, test_labels = mnist.train_images, mnist.test_images, mnist.test_labels
except DataError as err:
    IMAGES = False
    print(f"MNIST could not be loaded: {err}")
    print("To use MNIST, set MINIGEN_DATA to a folder holding its IDX files and run again, e.g.\n"
          "    MINIGEN_DATA=/path/to/mnist python tutorials/06_beta_and_the_latent_space.py\n"
          "FALLBACK: the rest of this run uses the 2-D ring data, not MNIST.")
    train_x, _ = mg.data.ring(10_000, seed=0)
    test_x, test_labels = mg.data.ring(2_000, seed=1)
if SMOKE:
    train_x, test_x, test_labels = train_x[:1000], test_x[:500], test_labels[:500]
print("training rows", train_x.shape, "| test rows", test_x.shape)

# %% [markdown]
# ## Rate and distortion
#
# Give the two terms of the loss names. Averaged over the data, the reconstruction term is the
# **distortion** $D$ and the KL term is the **rate** $R$:
#
# $$D = \mathbb{E}_{x}\, \mathbb{E}_{q_\phi(z \mid x)}\bigl[-\log p_\theta(x \mid z)\bigr], \qquad
#   R = \mathbb{E}_{x}\, \mathrm{KL}\bigl(q_\phi(z \mid x)\,\|\,p(z)\bigr), \qquad
#   -\mathrm{ELBO} = D + R .$$
#
# Why "rate"? $R$ measures, in nats, how much the code says about the image beyond what the prior
# already says. It splits into the mutual information between $x$ and $z$ plus a non-negative term,
# $R = I_q(x; z) + \mathrm{KL}\bigl(q(z)\,\|\,p(z)\bigr)$, where $q(z)$ is the average of $q_\phi(z
# \mid x)$ over the data (Hoffman and Johnson, 2016). So $R$ bounds the information the code can
# carry, and with fewer nats in the code the decoder must rebuild the image from less: the
# distortion rises.
#
# A **β-VAE** minimises $D + \beta R$ (`mg.VAE(..., beta=β)`, whose `losses` returns `reconstruction
# + beta * kl`). For a given network, the pairs $(R, D)$ that training can reach are bounded below
# by a curve, and minimising $D + \beta R$ picks the point on it where its slope is $dD/dR =
# -\beta$: a small $\beta$ makes nats in the code cheap (high rate, low distortion), a large $\beta$
# makes them expensive. Only $\beta = 1$ minimises $D + R$, the negative ELBO itself.
#
# This can be checked on trained models without knowing the curve. If model $a$ minimises $D +
# \beta_a R$ and model $b$ minimises $D + \beta_b R$ with $\beta_a < \beta_b$, then neither can do
# better on the other's objective: $D_a + \beta_a R_a \le D_b + \beta_a R_b$ and $D_b + \beta_b R_b
# \le D_a + \beta_b R_a$. Since $R_b < R_a$, rearranging gives the slope of the chord between the
# two points:
#
# $$-\beta_b \;\le\; \frac{D_b - D_a}{R_b - R_a} \;\le\; -\beta_a .$$
#
# We train one model per $\beta$, from the same initial weights, then measure $R$ and $D$ on the
# test digits. For MNIST the model is tutorial 5's with a hidden layer of 256 units and a few
# epochs, so that five models train in seconds on two CPU cores. We also look at how the rate is
# spread over the latent dimensions: the KL of each dimension, averaged over the test set, and the
# share of the total carried by the busiest quarter of the dimensions (25% if the rate were spread
# evenly).

# %%
if IMAGES:
    config = dict(data_dim=784, hidden=(256,), latent_dim=20, likelihood="bernoulli")
else:   # the ring fallback: the founding document's network, with a Gaussian decoder
    config = dict(data_dim=2, hidden=(64, 32), latent_dim=2, likelihood="gaussian")
betas = [0.25, 1.0, 4.0] if SMOKE else [0.25, 0.5, 1.0, 2.0, 4.0]
epochs = 1 if SMOKE else (6 if IMAGES else 20)

models, results = {}, {}
start = time.perf_counter()
for beta in betas:
    mg.manual_seed(0)                                    # the same initial weights for every beta
    model = mg.VAE(**config, beta=beta)
    fit(model, train_x, epochs=epochs, batch_size=128, lr=1e-3, seed=0, quiet=True)
    model.eval()
    with mg.no_grad():
        parts = model.losses(test_x)                     # batch means: reconstruction (D), kl (R)
        mu, log_var = model.encode(test_x)
        kl_per_dimension = mg.losses.gaussian_kl(mu, log_var, reduction="none").mean(axis=0).numpy()
    models[beta] = model
    busiest = np.sort(kl_per_dimension)[::-1][:max(1, config["latent_dim"] // 4)]
    results[beta] = dict(rate=parts["kl"].item(), distortion=parts["reconstruction"].item(),
                         busiest=busiest.sum() / kl_per_dimension.sum(),
                         quietest=kl_per_dimension.min())
print(f"{len(betas)} models, {epochs} epochs each, in {time.perf_counter() - start:.0f} s")

print(f"{'beta':>5} {'rate R':>8} {'distortion D':>13} {'D + beta R':>11} {'D + R = -ELBO':>14} "
      f"{'busiest quarter':>16} {'quietest dim':>13}")
for beta, r in results.items():
    objective, negative_elbo = r["distortion"] + beta * r["rate"], r["distortion"] + r["rate"]
    print(f"{beta:5.2f} {r['rate']:8.2f} {r['distortion']:13.2f} {objective:11.2f} "
          f"{negative_elbo:14.2f} {r['busiest']:15.0%} {r['quietest']:13.3f}")

print("slope of the chord between neighbouring models (theory: between -beta_b and -beta_a):")
neighbours = list(results.items())
for (beta_a, a), (beta_b, b) in zip(neighbours[:-1], neighbours[1:]):
    slope = (b["distortion"] - a["distortion"]) / (b["rate"] - a["rate"])
    print(f"  beta {beta_a:g} to {beta_b:g}: {slope:6.2f}")

# %%
rates = np.array([r["rate"] for r in results.values()])
distortions = np.array([r["distortion"] for r in results.values()])
best = int(np.argmin(rates + distortions))
fig, ax = plt.subplots(figsize=(5, 3.4))
ax.plot(rates, distortions, "o-", color="tab:blue")
for beta, rate, distortion in zip(betas, rates, distortions):
    ax.annotate(f"$\\beta$ = {beta:g}", (rate, distortion), textcoords="offset points",
                xytext=(6, 4))
span = np.linspace(rates.min(), rates.max(), 2)
ax.plot(span, rates[best] + distortions[best] - span, ":", color="gray",
        label=f"D + R = {rates[best] + distortions[best]:.1f} (lowest -ELBO, slope -1)")
ax.set_xlabel("rate R = KL term (nats)")
ax.set_ylabel("distortion D = reconstruction (nats)")
ax.set_title("Rate-distortion trade-off of the $\\beta$-VAE (test set)")
ax.legend(fontsize=7)
save(fig, "06_rate_distortion.png")

# %% [markdown]
# The points trace the trade-off: as $\beta$ grows, the rate falls and the distortion rises, and the
# chord slopes fall in (or very near) the ranges the argument above predicts, steeper where $\beta$
# is larger. So the first nats of the code are worth a lot of distortion and later ones less and
# less. The dotted line of slope $-1$ marks the lowest negative ELBO among these models. $\beta =
# 1$, the only model trained for $D + R$, should be the one on it; with short training and a single
# draw of $z$ per test digit, a neighbour can come close or tie. The table also shows the code
# concentrating as nats get expensive: at large $\beta$ the busiest quarter of the dimensions
# carries a larger share of the rate, and the quietest dimensions carry almost nothing. Trained
# longer or with a larger $\beta$, such dimensions can switch off entirely ($q_\phi(z_j \mid x)$
# equals the prior for every $x$; exercise 1).
#
# What do the numbers look like? Below, each row is one model: on the left its reconstructions of
# the same seven test digits, on the right seven samples decoded from the prior.

# %%
mg.manual_seed(4)
if IMAGES:
    originals = test_x[:7]
    # each digit drawn at about 1.5 times its 28 pixels, with crisp (nearest) pixels
    fig, axes = plt.subplots(len(betas) + 1, 2, figsize=(8.6, 0.8 * (len(betas) + 1)))
    axes[0, 0].imshow(strip(originals.numpy()), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
    axes[0, 0].set_title("reconstructions of test digits", fontsize=8)
    axes[0, 1].set_title("samples from the prior", fontsize=8)
    axes[0, 0].text(-4, 14, "original", ha="right", va="center", fontsize=8)
    for row, (beta, model) in enumerate(models.items(), start=1):
        with mg.no_grad():
            rebuilt = model.reconstruct(originals).numpy()
        axes[row, 0].imshow(strip(rebuilt), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[row, 1].imshow(strip(model.sample(7).numpy()), cmap="gray", vmin=0, vmax=1,
                            interpolation="nearest")
        axes[row, 0].text(-4, 14, f"$\\beta$ = {beta:g}", ha="right", va="center", fontsize=8)
    for ax in axes.ravel():
        ax.axis("off")
    fig.subplots_adjust(wspace=0.04, hspace=0.08)
else:
    fig, axes = plt.subplots(1, len(betas), figsize=(2.2 * len(betas), 2.4))
    for ax, (beta, model) in zip(axes, models.items()):
        points = model.sample(1000).numpy()
        ax.scatter(*test_x.numpy().T, s=2, color="tab:blue", alpha=0.3)
        ax.scatter(*points.T, s=2, color="tab:orange", alpha=0.5)
        ax.set_title(f"$\\beta$ = {beta:g}: samples", fontsize=8)
        ax.set_aspect("equal")
save(fig, "06_beta_examples.png")

# %% [markdown]
# With a small $\beta$ the reconstructions are the sharpest, since the code carries the most, but
# the samples are the worst: the encoder spreads its codes freely, they no longer fill the prior
# evenly, and many prior draws land where the decoder has seen no code. With a larger $\beta$ the
# codes hug the prior, so more of the draws decode to digit-like shapes, but reconstructions and
# samples alike become blurry and lose each digit's details: the code is too short to hold them.
# Which $\beta$ is "best" depends on what you want from the model; for the likelihood of the data it
# is $\beta = 1$.
#
# ## Walking in the latent space
#
# The decoder maps every point of the latent space to an image, and the KL term keeps the codes of
# real digits in one connected region around the origin. So we can walk from one digit to another:
# encode both, take the mean codes $\mu_a$ and $\mu_b$, and decode the points on the straight line
# between them,
#
# $$z(t) = (1 - t)\,\mu_a + t\,\mu_b, \qquad t \in [0, 1].$$
#
# For comparison, the same walk in pixel space, $(1 - t)\,x_a + t\,x_b$, simply fades one image out
# while the other fades in. We use the $\beta = 1$ model.

# %%
model = models[1.0]
ts = [float(t) for t in np.linspace(0.0, 1.0, 10)]
if IMAGES:
    labels = test_labels.numpy()
    pairs = [(int(np.flatnonzero(labels == a)[1]), int(np.flatnonzero(labels == b)[1]))
             for a, b in [(2, 7), (1, 0)]]                  # the second 2 and 7, the second 1 and 0
    fig, axes = plt.subplots(2 * len(pairs), 1, figsize=(7.6, 0.85 * 2 * len(pairs)))
    for p, (i, j) in enumerate(pairs):
        x_a, x_b = test_x[i:i + 1], test_x[j:j + 1]
        with mg.no_grad():
            mu_a, _ = model.encode(x_a)
            mu_b, _ = model.encode(x_b)
            path = mg.concatenate([(1 - t) * mu_a + t * mu_b for t in ts], axis=0)   # (10, 20)
            walked = mg.sigmoid(model.decode(path)).numpy()
        faded = np.stack([(1 - t) * x_a.numpy()[0] + t * x_b.numpy()[0] for t in ts])
        rows = [(axes[2 * p], faded, "pixels"), (axes[2 * p + 1], walked, "codes")]
        for ax, images, name in rows:
            ax.imshow(strip(images), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.text(-4, 14, name, ha="right", va="center", fontsize=8)
            ax.axis("off")
    axes[0].set_title("from t = 0 (left) to t = 1 (right): fading pixels vs walking codes",
                      fontsize=8)
else:
    labels = test_labels.numpy()
    i, j = int(np.flatnonzero(labels == 0)[0]), int(np.flatnonzero(labels == 4)[0])
    with mg.no_grad():
        mu_a, _ = model.encode(test_x[i:i + 1])
        mu_b, _ = model.encode(test_x[j:j + 1])
        path = mg.concatenate([(1 - t) * mu_a + t * mu_b for t in ts], axis=0)
        walked = model.decode(path).numpy()
    fig, ax = plt.subplots(figsize=(3.4, 3.4))
    ax.scatter(*test_x.numpy().T, s=2, color="tab:blue", alpha=0.3)
    ax.plot(*walked.T, "o-", color="tab:red", ms=3, label="decoded walk between codes")
    ax.plot(*test_x.numpy()[[i, j]].T, "k--", lw=1, label="straight line in data space")
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08))
fig.subplots_adjust(hspace=0.1)
save(fig, "06_interpolation.png")

# %% [markdown]
# The pixel fade passes through images that are no digit at all, two faint digits on top of each
# other. The latent walk instead changes the shape gradually: the 2 loses its base and its curl and
# becomes a 7, and the 1 bends and widens into a 0. The images are blurrier than the originals, like
# every decoded image of this small model, and midway between two clusters of codes they blur most,
# as in tutorial 5's latent plane. Straight lines are not the only choice: in 20 dimensions, draws
# from the prior have a length of about $\sqrt{20} \approx 4.5$, and the middle of a straight line
# between two codes is shorter than that, so some people walk along an arc instead (exercise 2).
#
# ## How loose is the ELBO? The importance-weighted bound
#
# The ELBO is below $\log p_\theta(x)$ by $\mathrm{KL}(q_\phi(z \mid x)\,\|\,p_\theta(z \mid x))$,
# the mismatch between the encoder's Gaussian and the true posterior. A tighter bound uses several
# draws. The *importance weight* of a code $z \sim q_\phi(z \mid x)$ is
#
# $$w = \frac{p_\theta(x, z)}{q_\phi(z \mid x)}
#     = \frac{p_\theta(x \mid z)\, p(z)}{q_\phi(z \mid x)}, \qquad
#   \mathbb{E}_{q}[w] = \int p_\theta(x, z)\, dz = p_\theta(x).$$
#
# So the average of $K$ weights is an unbiased estimate of $p_\theta(x)$, and by Jensen's inequality
# (the logarithm is concave) the expected logarithm of that average is a lower bound on $\log
# p_\theta(x)$:
#
# $$\mathcal{L}_K(x) = \mathbb{E}_{z_1, \dots, z_K \sim q}\Bigl[\log \frac{1}{K}
#   \sum_{k=1}^{K} w_k\Bigr] \le \log p_\theta(x).$$
#
# For $K = 1$ this is the ELBO. Burda et al. (2015) prove that $\mathcal{L}_K \le
# \mathcal{L}_{K+1}$, and that $\mathcal{L}_K \to \log p_\theta(x)$ as $K \to \infty$ (when the
# weights are bounded): more draws, tighter bound. `mg.metrics.iwae_bound(model, x, k)` computes one
# draw of the quantity inside the expectation for each example. With $z_k = \mu + \sigma
# \varepsilon_k$, the Gaussian densities' constants cancel and
#
# $$\log w_k = \log p_\theta(x \mid z_k) + \sum_{j} \tfrac12\bigl(\varepsilon_{kj}^2 - z_{kj}^2 +
#   \log\sigma_j^2\bigr), \qquad \mathcal{L}_K = \operatorname{logsumexp}_k(\log w_k) - \log K .$$
#
# The log-sum-exp is essential. Log weights of digits are around $-100$ to $-200$ nats, and
# $e^{-100}$ is already near the bottom of what float32 can hold; a few nats further and the weights
# round to 0:

# %%
log_w = mg.Tensor([-130.2, -128.7, -131.5, -129.9])          # float32, like the model's
with np.errstate(divide="ignore"):
    print("log of the mean of exp(log w):", np.log(np.mean(np.exp(log_w.numpy()))))
print("logsumexp(log w) - log K:     ", mg.logsumexp(log_w).item() - np.log(4))

# %% [markdown]
# `logsumexp` subtracts the largest value before exponentiating, as tutorial 4's stable BCE did, so
# nothing underflows. Now the bound for the $\beta = 1$ model on held-out digits, for growing $K$,
# against the ELBO (one draw per digit, `mg.metrics.elbo`). The improvement over the ELBO is a mean
# of per-digit differences; its standard error tells how much of it is noise.

# %%
n_eval = 100 if SMOKE else 500
ks = [1, 5, 50] if SMOKE else [1, 5, 50, 500]
x_eval = test_x[:n_eval]
mg.manual_seed(5)
negative_elbo = -mg.metrics.elbo(model, x_eval).numpy()
print(f"-ELBO on {n_eval} test rows: {negative_elbo.mean():.2f} nats")
print(f"{'K':>5} {'-L_K':>9} {'below -ELBO':>12} {'std. error':>11} {'seconds':>8}")
bounds = []
for k in ks:
    start = time.perf_counter()
    negative_bound = -mg.metrics.iwae_bound(model, x_eval, k=k).numpy()
    gain = negative_elbo - negative_bound
    bounds.append(negative_bound.mean())
    print(f"{k:5d} {negative_bound.mean():9.2f} {gain.mean():12.2f} "
          f"{gain.std() / np.sqrt(n_eval):11.2f} {time.perf_counter() - start:8.1f}")

fig, ax = plt.subplots(figsize=(4.6, 3.0))
ax.semilogx(ks, bounds, "o-", label="$-\\mathcal{L}_K$ (importance weighted)")
ax.axhline(negative_elbo.mean(), color="gray", ls="--", label="$-$ELBO")
ax.set_xlabel("number of samples K")
ax.set_ylabel("nats per test row")
ax.set_title("The bound tightens as K grows (lower is tighter)")
ax.legend(fontsize=7)
save(fig, "06_iwae.png")

# %% [markdown]
# $-\mathcal{L}_1$ matches the negative ELBO up to the noise of a single draw, as it should: it is
# the same quantity. Then the bound drops steadily as $K$ grows, each tenfold increase in $K$ ($5
# \to 50 \to 500$) gaining less than the last. Every number is still an upper bound on the true
# negative log-likelihood, so the ELBO overstates it by *at least* the gap to $-\mathcal{L}_{500}$:
# that many nats per digit, on average, are lost to the mismatch between the encoder's diagonal
# Gaussian and the true posterior. Burda et al. also *train* with $\mathcal{L}_K$ (the IWAE), which
# lets the model rely less on that Gaussian being right.
#
# ## What you learned
#
# * The VAE's loss is distortion plus rate, $D + R = -\mathrm{ELBO}$. The rate $R$, the average KL,
#   bounds the information the code carries about the data.
# * A β-VAE minimises $D + \beta R$ and lands where the rate–distortion curve has slope $-\beta$:
#   small $\beta$ gives sharp reconstructions and poor samples, large $\beta$ blurry images from
#   codes that stay close to the prior, with the rate concentrated in fewer dimensions. $\beta = 1$
#   is the one that optimises the ELBO.
# * Decoding the straight line between two codes changes one digit's shape gradually into another's,
#   unlike a fade in pixel space, which superimposes the two images.
# * The importance-weighted bound $\mathcal{L}_K = \mathbb{E}[\log \frac1K \sum_k w_k]$ equals the
#   ELBO for $K = 1$ and tightens towards $\log p_\theta(x)$ as $K$ grows; it is computed with
#   log-sum-exp.
#
# ## Exercises
#
# 1. Extend the sweep to $\beta = 8$ and $16$. How many latent dimensions keep an average KL above
#    0.01 nats, what do the samples look like, and where is the curve heading as $\beta$ grows? What
#    would a model with rate 0 have to decode?
# 2. Replace the straight line by spherical interpolation, $z(t) = \frac{\sin((1 -
#    t)\Omega)}{\sin\Omega}\mu_a + \frac{\sin(t\Omega)}{\sin\Omega}\mu_b$ with $\cos\Omega = \mu_a
#    \cdot \mu_b / (\lVert\mu_a\rVert \lVert\mu_b\rVert)$. Plot $\lVert z(t)\rVert$ along both
#    paths. Do the decoded images differ?
# 3. Compute $-\mathcal{L}_{50}$ and the negative ELBO for the $\beta = 0.25$ and $\beta = 4$
#    models. Is the gap between the two larger or smaller than for $\beta = 1$? Relate it to how far
#    each encoder's $q_\phi(z \mid x)$ is from the true posterior.

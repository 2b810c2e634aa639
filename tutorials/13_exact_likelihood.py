# %% [markdown]
# # 13. The exact likelihood in two dimensions: how loose are the bounds?
#
# Every VAE in these tutorials was trained and judged by a *bound*: the ELBO (tutorial 5), or the
# importance-weighted bound $\mathcal{L}_K$ (tutorial 6), because the quantity we want,
#
# $$\log p_\theta(x) = \log \int p_\theta(x \mid z)\, p(z)\, dz ,$$
#
# is an integral over every code $z$ that has no closed form. In high dimensions that integral is
# out of reach. But with a **2-D latent space** it is an ordinary 2-D integral, and a grid of a few
# hundred points per axis computes it to many digits. So here, and only here, we can put the bounds
# next to the truth and watch
#
# $$\mathrm{ELBO}(x) = \mathcal{L}_1(x) \le \mathcal{L}_5(x) \le \dots \le \mathcal{L}_K(x)
#   \xrightarrow[K \to \infty]{} \log p_\theta(x)$$
#
# close in, measure how fast, and see *why* the ELBO falls short: the encoder's Gaussian
# $q_\phi(z \mid x)$ is not the true posterior $p_\theta(z \mid x)$, and the gap is exactly the KL
# divergence between the two.

# %%
import math
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"   # tiny runs for the test suite
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


mg.set_default_dtype("float64")     # exact sums of many small numbers: float64 throughout
mg.manual_seed(0)
LOG_2PI = math.log(2 * math.pi)


def logsumexp(a, axis=None):
    """log sum exp of a NumPy array along ``axis``, by minigen's stable mg.logsumexp."""
    return mg.logsumexp(mg.Tensor(a), axis=axis).numpy()


# %% [markdown]
# ## A VAE with a 2-D latent space and a sharp decoder
#
# The data are the two moons (2-D points, noise 0.05). The model is tutorial 5's VAE with one
# change: the decoder's Gaussian has a fixed standard deviation $\sigma = 0.1$ instead of 1, so that
# it can describe data this fine:
#
# $$p_\theta(x \mid z) = \mathcal{N}\bigl(x;\ m_\theta(z),\ \sigma^2 I\bigr), \qquad
#   \log p_\theta(x \mid z) = -\frac{\lVert x - m_\theta(z) \rVert^2}{2\sigma^2}
#   - D \log\bigl(\sigma\sqrt{2\pi}\bigr),$$
#
# with $D = 2$. Encoder and decoder are small tanh networks (smooth, so that the integrand below is
# smooth too). Training minimises the negative ELBO with one reparameterized draw and the KL term in
# closed form, as `mg.VAE` does.

# %%
class VAE2D(mg.nn.Module):
    """x (2-D) -> q(z | x) = N(mu, diag(exp(log_var))), z 2-D -> p(x | z) = N(m(z), sigma^2 I)."""

    def __init__(self, hidden=64, sigma=0.1):
        super().__init__()
        Dense = mg.nn.Dense
        self.encoder = mg.nn.Sequential(Dense(2, hidden, activation="tanh"),
                                        Dense(hidden, hidden, activation="tanh"), Dense(hidden, 4))
        self.decoder = mg.nn.Sequential(Dense(2, hidden, activation="tanh"),
                                        Dense(hidden, hidden, activation="tanh"), Dense(hidden, 2))
        self.sigma = sigma

    def encode(self, x):
        h = self.encoder(x)
        return h[..., :2], h[..., 2:]                       # mu, log_var

    def log_px_given_z(self, x, z):
        r = (x - self.decoder(z)) * (1.0 / self.sigma)
        return (-0.5 * r * r).sum(axis=-1) - 2 * (math.log(self.sigma) + 0.5 * LOG_2PI)

    def loss(self, x):
        """The negative ELBO, averaged over the batch (one draw of z, the KL in closed form)."""
        mu, log_var = self.encode(x)
        z = mg.reparameterize(mu, log_var)
        kl = mg.losses.gaussian_kl(mu, log_var, reduction="batchmean")  # mean over x of sums
        return -self.log_px_given_z(x, z).mean() + kl

    def log_weights(self, x, k):
        """log w = log p(x | z) + log p(z) - log q(z | x) for k draws z ~ q(z | x): shape (k, N)."""
        mu, log_var = self.encode(x)
        eps = mg.randn(k, *mu.shape)
        z = mu + mg.exp(0.5 * log_var) * eps
        log_q = (-0.5 * eps * eps - 0.5 * log_var).sum(axis=-1) - LOG_2PI
        log_prior = (-0.5 * z * z).sum(axis=-1) - LOG_2PI
        return self.log_px_given_z(x, z) + log_prior - log_q


x_train, _ = mg.data.moons(2000, noise=0.05, seed=0)
x_test, _ = mg.data.moons(20 if SMOKE else 200, noise=0.05, seed=1)
model = VAE2D()
optimizer = mg.optim.Adam(model.parameters(), lr=2e-3)
epochs, batch = (3 if SMOKE else 80), 100
rng = np.random.default_rng(0)
losses = []
for epoch in range(epochs):
    order, total = rng.permutation(len(x_train)), 0.0
    for start in range(0, len(x_train), batch):
        optimizer.zero_grad()
        loss = model.loss(x_train[mg.Tensor(order[start:start + batch])])
        loss.backward()
        optimizer.step()
        total += loss.item()
    losses.append(total / (len(x_train) // batch))
print(f"{epochs} epochs; negative ELBO per point: first epoch {losses[0]:.3f}, "
      f"last {losses[-1]:.3f} nats")

# %%
with mg.no_grad():
    z = mg.randn(2000, 2)
    samples = (model.decoder(z) + model.sigma * mg.randn(2000, 2)).numpy()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.5, 3.2))
ax1.plot(range(1, epochs + 1), losses)
ax1.set_xlabel("epoch")
ax1.set_ylabel("-ELBO per point (nats)")
ax1.set_title("training")
data = x_train.numpy()
ax2.scatter(data[:, 0], data[:, 1], s=2, color="black", label="data")
ax2.scatter(samples[:, 0], samples[:, 1], s=2, color="tab:orange", alpha=0.5,
            label="model samples")
ax2.set_aspect("equal")
ax2.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), markerscale=4)
ax2.set_title("the moons and the VAE's samples")
# (the samples spill between the moons: the prior gives mass to codes the encoder rarely uses)
save(fig, "13_model.png")

# %% [markdown]
# ## $\log p_\theta(x)$ by quadrature
#
# On a square grid $z_{ij}$ with spacing $h$ over $[-L, L]^2$, the integral becomes a sum (the
# rectangle rule),
#
# $$p_\theta(x) \approx \sum_{ij} p_\theta(x \mid z_{ij})\, p(z_{ij})\, h^2, \qquad
#   \log p_\theta(x) \approx \operatorname{logsumexp}_{ij}\bigl[\log p_\theta(x \mid z_{ij})
#   + \log p(z_{ij})\bigr] + 2 \log h .$$
#
# The sum is taken in log space with log-sum-exp: with $\sigma = 0.1$, $p_\theta(x \mid z)$ is
# $e^{-500}$ a distance of 1 away from the decoder's mean, far below float64's smallest number. The
# prior puts mass $e^{-L^2/2}$ outside the box (about $4 \cdot 10^{-6}$ for $L = 5$), and the
# integrand is smooth, so the rule converges quickly as $h$ shrinks. We decode the grid once (every
# $z_{ij}$ through the decoder, in one batch) and reuse it for every $x$. Rather than trusting the
# grid, we check it: the answer must not change when the grid is made finer or the box larger.

# %%
def exact_log_px(model, x, points=200, half_width=5.0, chunk=20):
    """log p(x) for each row of x by the rectangle rule on a points x points grid over the box."""
    axis = np.linspace(-half_width, half_width, points)
    h = axis[1] - axis[0]
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    with mg.no_grad():
        means = model.decoder(mg.Tensor(grid)).numpy()           # decoded once: (points^2, 2)
    log_prior = -0.5 * (grid ** 2).sum(axis=1) - LOG_2PI
    const = -2 * (math.log(model.sigma) + 0.5 * LOG_2PI)
    values = []
    for rows in np.array_split(x.numpy(), max(1, len(x) // chunk)):
        r = (rows[:, None, :] - means[None, :, :]) / model.sigma  # (chunk, points^2, 2)
        log_joint = -0.5 * (r * r).sum(axis=2) + const + log_prior
        values.append(logsumexp(log_joint, axis=1) + 2 * math.log(h))
    return np.concatenate(values)


settings = [(100, 5.0), (150, 5.0), (150, 7.0)] if SMOKE else \
    [(100, 5.0), (150, 5.0), (200, 5.0), (250, 7.0)]
results = {s: exact_log_px(model, x_test, *s) for s in settings}
reference = results[settings[-1]]
print(f"{'grid':>10} {'box':>10} {'mean log p(x)':>15} {'largest change vs the last':>28}")
for (points, half), values in results.items():
    print(f"{points:>4} x {points:<4} {f'[-{half:g}, {half:g}]^2':>10} {values.mean():>15.9f} "
          f"{np.abs(values - reference).max():>28.2e}")
log_px = reference

# %% [markdown]
# ## The bounds, estimated
#
# With importance weights $w_k = p_\theta(x, z_k) / q_\phi(z_k \mid x)$ for $z_k \sim q_\phi(z \mid
# x)$ (`log_weights` above), the importance-weighted bound is
#
# $$\mathcal{L}_K(x) = \mathbb{E}\Bigl[\log \frac{1}{K} \sum_{k=1}^{K} w_k\Bigr]
#   \le \log \mathbb{E}\Bigl[\frac1K \sum_k w_k\Bigr] = \log p_\theta(x)$$
#
# (Jensen's inequality, since $\mathbb{E}[w] = p_\theta(x)$), with $\mathcal{L}_1 = \mathrm{ELBO}$.
# Each $\mathcal{L}_K$ is itself an expectation, estimated here by averaging $R$ independent
# $K$-sample estimates per point, with $K R$ fixed, so that every row costs the same. The table
# gives the average over the test points, the gap to the exact value with the Monte Carlo error of
# that average, and how many points' estimates came out *above* $\log p_\theta(x)$. That can happen:
# the bound is the *expectation* of $\log \frac1K \sum_k w_k$, and a single estimate is a random
# number around it. For large $K$ the bound is so close to $\log p_\theta(x)$, and so few repeats
# fit the budget, that some estimates land on the far side.

# %%
ks = [1, 10, 100] if SMOKE else [1, 3, 10, 30, 100, 300, 1000, 3000, 10000]
budget = 2000 if SMOKE else 20000                   # draws of z per point, for every K
bounds, errors = {}, {}
with mg.no_grad():
    for k in ks:
        repeats = max(2, budget // k)
        per_repeat = np.concatenate([                               # (repeats, N), 10 points at
            logsumexp(model.log_weights(rows, k * repeats).numpy().reshape(repeats, k, -1),
                      axis=1) - math.log(k)                         # a time to bound the memory
            for rows in (x_test[i:i + 10] for i in range(0, len(x_test), 10))], axis=1)
        bounds[k] = per_repeat.mean(axis=0)                         # L_K for each point
        spread = per_repeat.std(axis=0) / math.sqrt(repeats)       # per point
        errors[k] = np.sqrt((spread ** 2).mean() / len(x_test))     # of the mean over points

print(f"exact mean log p(x) = {log_px.mean():.4f} nats over {len(x_test)} test points\n")
print(f"{'K':>6} {'mean L_K':>10} {'gap to exact':>13} {'(+- MC error)':>14} "
      f"{'points whose estimate is above log p(x)':>41}")
for k in ks:
    gap = (log_px - bounds[k]).mean()
    print(f"{k:>6} {bounds[k].mean():>10.4f} {gap:>13.4f} {errors[k]:>14.4f} "
          f"{int((bounds[k] > log_px).sum()):>41}")

# %%
gaps = np.array([(log_px - bounds[k]).mean() for k in ks])
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
ax1.axhline(log_px.mean(), color="black", lw=1.2, label="exact log p(x) (quadrature)")
ax1.errorbar(ks, [bounds[k].mean() for k in ks], yerr=[2 * errors[k] for k in ks], fmt="o-",
             color="tab:blue", ms=4, label=r"$\mathcal{L}_K$ (K = 1: the ELBO)")
ax1.set_xscale("log")
ax1.set_xlabel("K (samples per bound)")
ax1.set_ylabel("mean over test points (nats)")
ax1.set_title("the bounds close on the exact value")
ax1.legend(loc="lower right")
ax2.loglog(ks, gaps, "o-", color="tab:blue", ms=4, label=r"gap $\log p(x) - \mathcal{L}_K$")
ax2.loglog(ks, gaps[0] / np.asarray(ks, dtype=float), "--", color="0.5",
           label=r"$\propto 1/K$ from the ELBO's gap")
ax2.set_xlabel("K")
ax2.set_ylabel("gap (nats)")
ax2.set_title("how fast")
ax2.legend(loc="lower left")
save(fig, "13_bounds.png")
slope = math.log(gaps[-1] / gaps[-2]) / math.log(ks[-1] / ks[-2])
print(f"from K = {ks[0]} to {ks[-1]} the gap shrinks {gaps[0] / gaps[-1]:.0f}-fold "
      f"(1/K would make it {ks[-1] / ks[0]:.0f}-fold); slope over the last step: {slope:.2f}")

# %% [markdown]
# Read the right panel with the theory. For large $K$ the average of the weights is close to
# $p_\theta(x)$, and a second-order expansion of the logarithm (the delta method) gives
#
# $$\log p_\theta(x) - \mathcal{L}_K(x) \approx \frac{\operatorname{Var}[w]}{2K\, p_\theta(x)^2},$$
#
# a $1/K$ law (Maddison et al., 2017; Domke and Sheldon, 2018), which holds once $K$ is large enough
# for the average of the weights to be near its mean. The measured gap falls far more slowly than
# that (the slope printed above is far from $-1$): the variance of $w$ is dominated by rare draws
# with very large weights, codes where $q_\phi$ has little mass but the posterior has more, and
# until $K$ is large enough to draw them regularly, adding samples helps little. Heavy-tailed
# weights are why the bound of a poorly matched $q_\phi$ closes slowly, and one reason Burda et al.
# *train* with $\mathcal{L}_K$, which lets the encoder cover the posterior better.
#
# ## Why the ELBO falls short: the posterior is not Gaussian
#
# For every $x$, the gap between the ELBO and the truth is a KL divergence (tutorial 5):
#
# $$\log p_\theta(x) - \mathrm{ELBO}(x) = \mathrm{KL}\bigl(q_\phi(z \mid x)\,\|\,
#   p_\theta(z \mid x)\bigr), \qquad p_\theta(z \mid x) = \frac{p_\theta(x \mid z)\, p(z)}
#   {p_\theta(x)} .$$
#
# In two dimensions we can draw the true posterior (exact, now that $p_\theta(x)$ is known) next to
# the encoder's Gaussian, and check the identity with a KL computed on its own grid, independent of
# the Monte Carlo ELBO: the left side comes from the table, the right side from quadrature.

# %%
def posterior_on_grid(model, x_row, centre, half_width, points=241):
    """log p(z | x) on a grid around ``centre`` (the exact log p(x) from the big grid above)."""
    ax0 = np.linspace(centre[0] - half_width, centre[0] + half_width, points)
    ax1 = np.linspace(centre[1] - half_width, centre[1] + half_width, points)
    grid = np.stack(np.meshgrid(ax0, ax1, indexing="ij"), axis=-1).reshape(-1, 2)
    xs = mg.Tensor(np.repeat(x_row[None, :], len(grid), axis=0))
    with mg.no_grad():
        log_lik = model.log_px_given_z(xs, mg.Tensor(grid)).numpy()
    log_joint = log_lik - 0.5 * (grid ** 2).sum(axis=1) - LOG_2PI
    cell = (ax0[1] - ax0[0]) * (ax1[1] - ax1[0])
    return ax0, ax1, grid, log_joint, cell


worst = np.argsort(log_px - bounds[1])[::-1]
chosen = [worst[0], worst[len(worst) // 2], worst[-1]]     # largest, typical, smallest gap
with mg.no_grad():
    mu_all, log_var_all = (t.numpy() for t in model.encode(x_test))
fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
print(f"{'point':>6} {'log p(x) - ELBO (bounds)':>25} {'KL(q || posterior) (grid)':>26}")
for ax, i in zip(axes, chosen):
    mu, sd = mu_all[i], np.exp(0.5 * log_var_all[i])
    x_row = x_test.numpy()[i]
    # first a wide look to find the posterior, then a grid around it and q, fine enough for both
    _, _, wide, log_joint, _ = posterior_on_grid(model, x_row, np.zeros(2), 5.0, 401)
    post = np.exp(log_joint - log_px[i])
    post /= post.sum()
    centre = post @ wide
    post_sd = np.sqrt(post @ (wide - centre) ** 2)
    half = 3 * max(post_sd.max(), sd.max()) + np.abs(centre - mu).max() / 2
    ax0, ax1, grid, log_joint, cell = posterior_on_grid(model, x_row, (centre + mu) / 2, half)
    log_post = log_joint - log_px[i]
    log_q = (-0.5 * ((grid - mu) / sd) ** 2 - np.log(sd)).sum(axis=1) - LOG_2PI
    q = np.exp(log_q)
    kl = (q * (log_q - log_post)).sum() * cell
    print(f"{i:>6} {log_px[i] - bounds[1][i]:>25.4f} {kl:>26.4f}")
    shape = (len(ax0), len(ax1))
    ax.contourf(ax0, ax1, np.exp(log_post).reshape(shape).T, levels=12, cmap="Greys")
    ax.contour(ax0, ax1, q.reshape(shape).T, levels=4, colors="tab:orange", linewidths=1.0)
    ax.set_title(f"point {i}: gap {log_px[i] - bounds[1][i]:.3f} nats", fontsize=9)
    ax.set_xlabel("$z_1$")
    ax.set_aspect("equal")
axes[0].set_ylabel("$z_2$")
fig.suptitle("true posterior p(z | x) (grey) and the encoder's q(z | x) (orange contours)",
             fontsize=10)
save(fig, "13_posteriors.png")

# %% [markdown]
# The two columns agree closely (to the Monte Carlo error of the ELBO and the grid's resolution):
# the ELBO's shortfall *is* the KL divergence from the encoder's Gaussian to the true posterior. The
# pictures show where it comes from. The posterior is not quite Gaussian (it is skewed or tilted),
# and the encoder's Gaussian is not even the best Gaussian for it: it is off-centre and of the wrong
# width. One network computes $q_\phi(z \mid x)$ for every $x$ at once, and its mistakes for a
# particular point (the *amortization gap*, Cremer et al., 2018) add to what no Gaussian could fit.
# Where $q_\phi$ misses part of the posterior, the rare draws that land there carry large weights:
# the heavy tail that slowed the bounds above.
#
# ## What you learned
#
# * With a 2-D latent space, $\log p_\theta(x) = \log \int p_\theta(x \mid z) p(z)\,dz$ is a 2-D
#   integral: a grid, the rectangle rule and log-sum-exp compute it, and refining the grid and
#   widening the box shows how many digits are right.
# * The ELBO and the importance-weighted bounds $\mathcal{L}_K$ are true lower bounds, increasing in
#   $K$ and closing on the exact value; for large $K$ the gap follows $\operatorname{Var}[w] /
#   (2K p_\theta(x)^2)$, but heavy-tailed weights can delay that $1/K$ regime for a long time.
# * The ELBO's gap is exactly $\mathrm{KL}(q_\phi(z \mid x) \,\|\, p_\theta(z \mid x))$: measured
#   here both ways, it is the price of a Gaussian encoder facing a posterior that is not Gaussian.
#
# ## Exercises
#
# 1. Train the same model with $\sigma = 0.3$ instead of 0.1. How do the exact $\log p_\theta(x)$,
#    the ELBO gap and the shape of the posteriors change? Explain with the width of $p_\theta(x \mid
#    z)$.
# 2. Train with the IWAE objective $-\mathcal{L}_{10}$ instead of the negative ELBO (use
#    `log_weights` and `mg.logsumexp`). Compare the exact $\log p_\theta(x)$ of the two models, and
#    the ELBO gap of each. Which one has the better encoder, and which the better decoder?
# 3. Replace the grid by importance sampling with the encoder as the proposal:
#    $\log \frac1S \sum_s w_s$ for a single very large $S$. How large must $S$ be to match the
#    quadrature to 0.01 nats for the point with the largest gap? Relate your answer to the right
#    panel of the bounds figure.

# %% [markdown]
# # Solutions: 13. The exact likelihood in two dimensions
#
# Worked solutions to the exercises of [tutorial 13](../13_exact_likelihood.py). Try each exercise
# before reading its solution. The model, the quadrature and the bounds are the tutorial's, written
# compactly here so that this file runs on its own.

# %%
import math
import os

import numpy as np

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
EPOCHS = 3 if SMOKE else 80
N_TEST = 20 if SMOKE else 200
mg.set_default_dtype("float64")
mg.manual_seed(0)
LOG_2PI = math.log(2 * math.pi)


def logsumexp(a, axis=None):
    """log sum exp of a NumPy array along ``axis``, by minigen's stable mg.logsumexp."""
    return mg.logsumexp(mg.Tensor(a), axis=axis).numpy()


x_train, _ = mg.data.moons(2000, noise=0.05, seed=0)
x_test, _ = mg.data.moons(N_TEST, noise=0.05, seed=1)


class VAE2D(mg.nn.Module):
    """The tutorial's model: tanh networks, 2-D latent, decoder N(m(z), sigma^2 I)."""

    def __init__(self, sigma=0.1, hidden=64):
        super().__init__()
        Dense = mg.nn.Dense
        self.encoder = mg.nn.Sequential(Dense(2, hidden, activation="tanh"),
                                        Dense(hidden, hidden, activation="tanh"), Dense(hidden, 4))
        self.decoder = mg.nn.Sequential(Dense(2, hidden, activation="tanh"),
                                        Dense(hidden, hidden, activation="tanh"), Dense(hidden, 2))
        self.sigma = sigma

    def encode(self, x):
        h = self.encoder(x)
        return h[..., :2], h[..., 2:]

    def log_px_given_z(self, x, z):
        r = (x - self.decoder(z)) * (1.0 / self.sigma)
        return (-0.5 * r * r).sum(axis=-1) - 2 * (math.log(self.sigma) + 0.5 * LOG_2PI)

    def log_weights(self, x, k):
        mu, log_var = self.encode(x)
        eps = mg.randn(k, *mu.shape)
        z = mu + mg.exp(0.5 * log_var) * eps
        log_q = (-0.5 * eps * eps - 0.5 * log_var).sum(axis=-1) - LOG_2PI
        return self.log_px_given_z(x, z) - 0.5 * (z * z).sum(axis=-1) - LOG_2PI - log_q

    def elbo_loss(self, x):
        mu, log_var = self.encode(x)
        kl = mg.losses.gaussian_kl(mu, log_var, reduction="batchmean")  # mean over x of sums
        return -self.log_px_given_z(x, mg.reparameterize(mu, log_var)).mean() + kl

    def iwae_loss(self, x, k=10):
        """-L_K averaged over the batch: log (1/K) sum_k w_k by log-sum-exp over the K draws."""
        return -(mg.logsumexp(self.log_weights(x, k), axis=0) - math.log(k)).mean()


def train(model, loss, epochs=EPOCHS, seed=0):
    opt = mg.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(x_train), 100):
            opt.zero_grad()
            loss(x_train[mg.Tensor(order[start:start + 100])]).backward()
            opt.step()
    return model


def exact_log_px(model, x, points=150, half_width=5.0):
    axis = np.linspace(-half_width, half_width, points)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    with mg.no_grad():
        means = model.decoder(mg.Tensor(grid)).numpy()
    log_prior = -0.5 * (grid ** 2).sum(axis=1) - LOG_2PI
    const = -2 * (math.log(model.sigma) + 0.5 * LOG_2PI) + 2 * math.log(axis[1] - axis[0])
    out = []
    for rows in np.array_split(x.numpy(), max(1, len(x) // 20)):
        r = (rows[:, None, :] - means[None]) / model.sigma
        out.append(logsumexp(-0.5 * (r * r).sum(axis=2) + log_prior, axis=1) + const)
    return np.concatenate(out)


def bound(model, x, k, draws=2000):
    """L_K for each point, averaged over draws // k independent K-sample estimates."""
    repeats = max(1, draws // k)
    with mg.no_grad():
        lw = model.log_weights(x, k * repeats).numpy().reshape(repeats, k, -1)
    return (logsumexp(lw, axis=1) - math.log(k)).mean(axis=0)


# %% [markdown]
# ## Exercise 1: a wider decoder, $\sigma = 0.3$
#
# With $\sigma = 0.3$ each $p_\theta(x \mid z)$ is three times wider, so the density of a point is
# spread over a region nine times larger: $\log p_\theta(x)$ drops (the moons' noise is only 0.05,
# and a wide decoder cannot concentrate its mass on them). For the posterior, a wider likelihood
# means that more codes explain a point about equally well: $p_\theta(z \mid x)$ is broader and
# smoother, closer to Gaussian, and the encoder's Gaussian matches it better, so the ELBO gap
# shrinks.

# %%
models = {}
for sigma in (0.1, 0.3):
    mg.manual_seed(0)
    model = VAE2D(sigma)
    models[sigma] = train(model, model.elbo_loss)
print(f"{'sigma':>6} {'exact log p(x)':>15} {'ELBO':>9} {'gap':>8}")
for sigma, model in models.items():
    exact, elbo = exact_log_px(model, x_test), bound(model, x_test, 1)
    print(f"{sigma:>6} {exact.mean():>15.4f} {elbo.mean():>9.4f} {(exact - elbo).mean():>8.4f}")

# %% [markdown]
# ## Exercise 2: training with the IWAE bound
#
# `iwae_loss` above is $-\mathcal{L}_{10}$, computed with `mg.logsumexp` over the ten draws, so its
# gradient weights each draw by its normalised importance weight. In the full run the IWAE-trained
# model reaches the higher exact $\log p_\theta(x)$ (a better decoder: it was trained on a tighter
# bound), while its ELBO gap is much *larger*: its encoder is no longer pushed to be a good Gaussian
# fit on its own, only a good proposal for ten draws (Rainforth et al., 2018, show that tighter
# bounds weaken the encoder's gradient signal). Judged by the ELBO alone, the better model would
# look far worse.

# %%
mg.manual_seed(0)
iwae = VAE2D(0.1)
train(iwae, iwae.iwae_loss)
print(f"{'trained on':>11} {'exact log p(x)':>15} {'ELBO':>9} {'ELBO gap':>9} {'L_10 gap':>9}")
for name, model in (("ELBO", models[0.1]), ("IWAE, K=10", iwae)):
    exact = exact_log_px(model, x_test)
    elbo, l10 = bound(model, x_test, 1), bound(model, x_test, 10)
    print(f"{name:>11} {exact.mean():>15.4f} {elbo.mean():>9.4f} {(exact - elbo).mean():>9.4f} "
          f"{(exact - l10).mean():>9.4f}")

# %% [markdown]
# ## Exercise 3: importance sampling instead of the grid
#
# $\log \frac1S \sum_s w_s$ estimates $\log p_\theta(x)$ with a bias of about
# $-\operatorname{Var}[w] / (2 S p^2)$ and a spread of about $\sqrt{\operatorname{Var}[w] / S} / p$.
# For the point with the largest ELBO gap we increase $S$ and watch the error against the
# quadrature. Two things show in the table. A single estimate is a random number: at small $S$ it
# can even land *above* $\log p_\theta(x)$ (it is the *expectation* that is a lower bound). And the
# error falls as $S$ grows, to within 0.01 nats after some ten thousand draws for this point - a
# point with a large ELBO gap need not have the heaviest-tailed weights, which are what slow the
# importance-weighted estimate down. Quadrature reaches six digits with 22,500 decoder calls, shared
# by every point; sampling needs that many per point, and says nothing about its own error unless
# we estimate that too.

# %%
model = models[0.1]
exact = exact_log_px(model, x_test)
worst = int(np.argmax(exact - bound(model, x_test, 1)))
point = x_test[worst:worst + 1]
print(f"worst point {worst}: exact log p(x) = {exact[worst]:.4f}")
sizes = [10 ** 3, 10 ** 4, 10 ** 5] if SMOKE else [10 ** 3, 10 ** 4, 10 ** 5, 10 ** 6, 4 * 10 ** 6]
with mg.no_grad():
    for s in sizes:
        lw = np.concatenate([model.log_weights(point, min(s, 10 ** 5)).numpy().ravel()
                             for _ in range(max(1, s // 10 ** 5))])
        estimate = logsumexp(lw) - math.log(len(lw))
        print(f"S = {len(lw):>8}: estimate {estimate:.4f}, error {estimate - exact[worst]:+.4f}")

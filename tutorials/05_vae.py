# %% [markdown]
# # 5. The variational autoencoder
#
# An autoencoder squeezes each input through a small code and learns to rebuild it from that code. A
# **variational** autoencoder (VAE; Kingma and Welling, 2013) makes the code random, and that one
# change turns it into a generative model: once trained, it can decode codes drawn at random into
# new data.
#
# minigen's founding document sketches a VAE in Keras: an encoder of dense layers (64 then 32 units,
# ReLU) that outputs a mean and a log-variance for a two-dimensional code, a decoder that mirrors
# it, and a loss made of a squared reconstruction error plus a KL term. It also makes a mistake that
# this tutorial corrects: it draws the code with $\exp(\log\sigma^2)$ as the standard deviation,
# where $\exp(\tfrac12 \log\sigma^2)$ belongs.
#
# We build the VAE from its parts, checking each one with numbers:
#
# 1. the model and its objective, the **evidence lower bound** (ELBO);
# 2. the encoder's mean and log-variance, and the right way to sample from them;
# 3. why sampling blocks gradients, and how the **reparameterization trick** fixes it, measured
#    against the score-function estimator on a problem whose answer we know;
# 4. the **KL term** in closed form, checked by Monte Carlo;
# 5. the **reconstruction term**: a Bernoulli likelihood computed from logits;
# 6. one real training step with fusion off, stepping through `MatMul.backward`;
# 7. training on MNIST: reconstructions, new samples, and a two-dimensional latent space.

# %%
import os
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg
from minigen import plots
from minigen.data import DataError, load_mnist
from minigen.train import fit

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"   # tiny runs for the test suite
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if IN_NOTEBOOK and fig.canvas.manager is None:   # drawn by mg.plots, not pyplot: show it here
        from IPython.display import display
        display(fig)
    if not IN_NOTEBOOK:
        plt.close(fig)


mg.manual_seed(0)

# %% [markdown]
# ## The model and its objective
#
# A VAE explains each data point $x$ (here an image of $28 \times 28 = 784$ pixels) as made from a
# hidden code $z$ of a few numbers:
#
# $$z \sim p(z) = \mathcal{N}(0, I), \qquad x \sim p_\theta(x \mid z),$$
#
# where the **decoder**, a network with weights $\theta$, turns $z$ into the parameters of the
# distribution $p_\theta(x \mid z)$. We would like to maximise the log-likelihood of the data, $\log
# p_\theta(x) = \log \int p_\theta(x \mid z)\, p(z)\, dz$, but that integral over every possible
# code has no closed form. So a second network, the **encoder** with weights $\phi$, proposes for
# each $x$ a distribution over the codes that could have produced it, a Gaussian with a diagonal
# covariance:
#
# $$q_\phi(z \mid x) = \mathcal{N}\bigl(\mu_\phi(x),\ \operatorname{diag} \sigma^2_\phi(x)\bigr).$$
#
# **The ELBO, derived.** Write $q$ for $q_\phi(z \mid x)$ and $\mathbb{E}_q$ for the expectation
# over $z \sim q$. Four steps, each an identity:
#
# 1. $\log p_\theta(x)$ does not depend on $z$, and $q$ integrates to 1, so
#    $\log p_\theta(x) = \mathbb{E}_q\bigl[\log p_\theta(x)\bigr]$.
# 2. Bayes' rule, $p_\theta(x) = p_\theta(x, z) / p_\theta(z \mid x)$, holds for every $z$:
#    $\log p_\theta(x) = \mathbb{E}_q\bigl[\log p_\theta(x, z) - \log p_\theta(z \mid x)\bigr]$.
# 3. Add and subtract $\log q(z \mid x)$ inside the expectation and group the terms:
#
#    $$\log p_\theta(x) = \mathbb{E}_q\bigl[\log p_\theta(x, z) - \log q(z \mid x)\bigr]
#      + \mathbb{E}_q\Bigl[\log \frac{q(z \mid x)}{p_\theta(z \mid x)}\Bigr].$$
#
#    The second expectation is by definition $\mathrm{KL}\bigl(q\,\|\,p_\theta(z \mid x)\bigr)$.
# 4. Split the joint, $\log p_\theta(x, z) = \log p_\theta(x \mid z) + \log p(z)$, in the first:
#    $\mathbb{E}_q[\log p_\theta(x \mid z)] + \mathbb{E}_q[\log p(z) - \log q(z \mid x)]$, and the
#    last term is $-\mathrm{KL}(q\,\|\,p(z))$.
#
# Together:
#
# $$\log p_\theta(x) = \underbrace{\mathbb{E}_{q_\phi(z \mid x)}\bigl[\log p_\theta(x \mid z)\bigr]
#   - \mathrm{KL}\bigl(q_\phi(z \mid x)\,\|\,p(z)\bigr)}_{\mathrm{ELBO}(x)}
#   + \mathrm{KL}\bigl(q_\phi(z \mid x)\,\|\,p_\theta(z \mid x)\bigr).$$
#
# A KL divergence is never negative, so the ELBO is a lower bound on the log-likelihood (the
# *evidence*), and it is tight when $q_\phi$ equals the true posterior. A VAE maximises the ELBO
# over $\theta$ and $\phi$ together. minigen minimises its negative, averaged over a batch of $N$
# examples, with one draw $z_n \sim q_\phi(z \mid x_n)$ per example:
#
# $$\text{loss} = \frac{1}{N} \sum_{n=1}^{N} \Bigl[\underbrace{-\log p_\theta(x_n \mid z_n)}_{
#   \text{reconstruction}} + \beta\,
#   \underbrace{\mathrm{KL}\bigl(q_\phi(z \mid x_n)\,\|\,p(z)\bigr)}_{\text{kl}}\Bigr],
#   \qquad \beta = 1 .$$
#
# That is `VAE.losses` (tutorial 6 varies $\beta$). The founding document's loss has the same shape:
# its squared error $\lVert x - G(E(x)) \rVert^2$ is, up to a factor $\tfrac12$ and a constant,
# $-\log p_\theta(x \mid z)$ for a Gaussian decoder with unit variance (minigen's
# `likelihood="gaussian"`). For MNIST we will use a Bernoulli decoder instead. The sections below
# take the pieces one at a time.
#
# **Units: nats and bits per dimension.** Every log in this tutorial is a natural logarithm, so
# log-probabilities and losses come in **nats**; one nat is $1/\ln 2 \approx 1.443$ bits. A loss of
# $L$ nats per image is $L / \ln 2$ bits: how many bits an ideal code built from the model would
# need to store the image. Dividing by the number of dimensions $D$ (784 pixels) gives **bits per
# dimension**, $L / (D \ln 2)$, the unit of most likelihood papers, which compares models on images
# of different sizes. (On the grey levels used here, the number has the caveat given below.)
#
# ## The encoder: a mean and a log-variance
#
# The encoder ends in two linear heads: one outputs $\mu$, the other $\log \sigma^2$, each with one
# number per latent dimension. Why the *logarithm* of the variance? A variance must be positive,
# while a linear layer can output any real number; the exponential of any real number is positive,
# and on the log scale a variance of $10^{-4}$ is a modest $-9.2$ rather than a number squeezed
# against zero. So
#
# $$\sigma^2 = \exp(\log\sigma^2), \qquad
#   \sigma = \sqrt{\sigma^2} = \exp\bigl(\tfrac12 \log\sigma^2\bigr).$$
#
# **The founding document's mistake.** It draws the code as $z = \mu +
# \exp(\log\sigma^2)\,\varepsilon$ with $\varepsilon \sim \mathcal{N}(0, 1)$: it multiplies the
# noise by the *variance* where the *standard deviation* belongs. Its codes then have variance
# $\exp(\log\sigma^2)^2 = \exp(2\log\sigma^2)$, the square of the variance that the encoder meant
# and that the document's own KL term assumes. The correct draw (Kingma and Welling, 2013) is
#
# $$z = \mu + \exp\bigl(\tfrac12 \log\sigma^2\bigr)\, \varepsilon ,$$
#
# which is `mg.reparameterize(mu, log_var)`. Let us draw many codes both ways and measure their
# variance:

# %%
n = 20_000 if SMOKE else 1_000_000
mu = mg.zeros(n, dtype="float64")
print(f"{'log_var':>8} {'intended variance':>18} {'variance of the draws:':>24}")
print(f"{'':>8} {'exp(log_var)':>18} {'correct':>11} {'document':>12}")
for value in [-4.0, -1.0, 0.0, 1.0]:
    log_var = mg.full((n,), value, dtype="float64")
    correct = mg.reparameterize(mu, log_var)                         # mu + exp(0.5 log_var) * eps
    document = mu + mg.exp(log_var) * mg.randn(n, dtype="float64")   # mu + exp(log_var) * eps
    print(f"{value:8.1f} {np.exp(value):18.4f} {correct.numpy().var():11.4f} "
          f"{document.numpy().var():12.4f}")

# %% [markdown]
# The correct draws have the intended variance; the document's have its square. The two agree only
# at $\log\sigma^2 = 0$, which is roughly where a freshly initialised encoder starts. So the bug
# hides at first and grows as training moves $\log\sigma^2$ away from 0, as it must: a trained
# encoder is fairly sure of each digit's code, with $\sigma^2$ well below 1.
#
# ## Sampling blocks gradients
#
# To train the encoder we need the gradient of the loss with respect to $\mu$ and $\sigma$, and the
# loss depends on them only through the random code $z$. A number produced by a random number
# generator is just a number: nothing records how it depends on $\mu$. minigen's `Normal(loc,
# scale).sample()` returns such a constant, so no gradient can flow back through it. `rsample()`
# draws the same distribution in a way that can be differentiated:

# %%
mu = mg.Tensor(2.0, requires_grad=True, dtype="float64")
q = mg.distributions.Normal(mu, 1.0)

z = q.sample()
print("z from sample():  requires_grad =", z.requires_grad,
      "(a constant: backward cannot reach mu)")

z = q.rsample()                      # z = mu + 1.0 * eps, with eps drawn inside
(z * z).backward()
print("z from rsample(): requires_grad =", z.requires_grad, f"| d(z^2)/dmu = {mu.grad.item():.4f}",
      f"= 2 z = {2 * z.item():.4f}")

# %% [markdown]
# The difficulty is deeper than bookkeeping, though. What we want is the gradient of an
# *expectation*, and the distribution it is taken over itself depends on the parameter:
#
# $$\nabla_\mu\, \mathbb{E}_{z \sim \mathcal{N}(\mu, \sigma^2)}\bigl[f(z)\bigr].$$
#
# There are two standard ways to estimate it without bias from random draws.
#
# **The score-function estimator** (also called REINFORCE; Williams, 1992) differentiates the
# density $q(z)$ instead of $z$, using $\nabla q = q\, \nabla \log q$:
#
# $$\nabla_\mu \int f(z)\, q(z)\, dz = \int f(z)\, q(z)\, \nabla_\mu \log q(z)\, dz
#   = \mathbb{E}_q\bigl[f(z)\, \nabla_\mu \log q(z)\bigr], \qquad
#   \nabla_\mu \log q(z) = \frac{z - \mu}{\sigma^2}.$$
#
# It needs only values of $f$, never its derivative, so it works for any $f$. In an autograd engine
# it is computed as the gradient of the *surrogate* $f(z) \log q(z)$ with the draw $z$ held
# constant.
#
# **The reparameterization trick** (Kingma and Welling, 2013) moves the randomness out of the
# parameters: write $z = \mu + \sigma \varepsilon$ with $\varepsilon \sim \mathcal{N}(0, 1)$, a
# distribution that does not depend on $\mu$ or $\sigma$. The expectation is now over $\varepsilon$,
# so the gradient can move inside it:
#
# $$\nabla_\mu\, \mathbb{E}_{\varepsilon}\bigl[f(\mu + \sigma\varepsilon)\bigr]
#   = \mathbb{E}_{\varepsilon}\bigl[f'(\mu + \sigma\varepsilon)\bigr].$$
#
# That is exactly what backpropagation through $z = \mu + \sigma\varepsilon$ computes, with
# $\partial z / \partial \mu = 1$ and $\partial z / \partial \sigma = \varepsilon$.
#
# **An example with a known answer.** Take $f(z) = z^2$. Since
# $\mathbb{E}[z^2] = \mu^2 + \sigma^2$, the true gradient is $2\mu$. One draw gives
#
# $$g_\text{score} = z^2\, \frac{z - \mu}{\sigma^2}, \qquad
#   g_\text{reparam} = 2z = 2(\mu + \sigma\varepsilon).$$
#
# Both average to $2\mu$. Their variances follow from the moments of $\varepsilon$
# ($\mathbb{E}[\varepsilon^2] = 1$, $\mathbb{E}[\varepsilon^4] = 3$, $\mathbb{E}[\varepsilon^6] =
# 15$, odd moments 0): writing $g_\text{score} = \frac{\mu^2}{\sigma}\varepsilon + 2\mu\varepsilon^2
# + \sigma\varepsilon^3$ and expanding its square,
#
# $$\operatorname{Var}[g_\text{reparam}] = 4\sigma^2, \qquad
#   \operatorname{Var}[g_\text{score}] = \frac{\mu^4}{\sigma^2} + 14\mu^2 + 15\sigma^2 .$$
#
# For $\mu = 2$, $\sigma = 1$ that is 4 against 87. Averaging $S$ independent draws divides both by
# $S$. We measure it: each estimate averages $S$ draws, and we repeat it $R$ times to see its
# spread. The repeats run side by side: $\mu$ is a tensor of $R$ equal copies, and since repeat
# $r$'s estimate depends only on copy $r$, one backward pass of the *sum* over repeats fills
# `mu.grad` with all $R$ estimates at once.

# %%
mu_value, sigma = 2.0, 1.0
true_gradient = 2 * mu_value
predicted = {"reparameterization": 4 * sigma**2,
             "score function": mu_value**4 / sigma**2 + 14 * mu_value**2 + 15 * sigma**2}
repeats = 300 if SMOKE else 4000
draws = [1, 10, 100] if SMOKE else [1, 3, 10, 30, 100, 300, 1000]


def estimates(method, S):
    """`repeats` independent estimates of d/dmu E[z^2], each from S draws of z ~ N(mu, sigma^2)."""
    mu = mg.full((repeats,), mu_value, dtype="float64", requires_grad=True)
    q = mg.distributions.Normal(mu, sigma)
    if method == "reparameterization":
        z = q.rsample((S,))                                   # (S, R), differentiable in mu
        objective = (z * z).mean(axis=0)                      # one Monte Carlo average per repeat
    else:
        z = q.sample((S,))                                    # (S, R), constants
        objective = (z * z * q.log_prob(z)).mean(axis=0)      # the surrogate f(z) log q(z)
    objective.sum().backward()
    return mu.grad.numpy()


variances = {method: [] for method in predicted}
print(f"true gradient 2 mu = {true_gradient}")
print(f"{'S':>5} | {'reparameterization':^27} | {'score function':^27}")
print(f"{'':>5} | {'mean':>8} {'variance':>9} {'x S':>8} | {'mean':>8} {'variance':>9} {'x S':>8}")
for S in draws:
    row = f"{S:5d} |"
    for method in predicted:
        g = estimates(method, S)
        variances[method].append(g.var())
        row += f" {g.mean():8.3f} {g.var():9.4f} {g.var() * S:8.2f} |"
    print(row)
print(f"predicted variance x S:      {predicted['reparameterization']:8.2f} "
      f"{'':18} {predicted['score function']:8.2f}")

fig, ax = plt.subplots(figsize=(4.6, 3.0))
for (method, measured), color in zip(variances.items(), ["tab:blue", "tab:red"]):
    ax.loglog(draws, measured, "o", color=color, ms=4, label=f"{method}, measured")
    ax.loglog(draws, predicted[method] / np.array(draws), "-", color=color, lw=1,
              label=f"{method}, predicted {predicted[method]:g} / S")
ax.set_xlabel("draws per estimate S")
ax.set_ylabel("variance of the gradient estimate")
ax.set_title(f"Two unbiased estimates of d/dmu E[z$^2$] = {true_gradient:g} "
             "($\\mu$=2, $\\sigma$=1)")
ax.legend(fontsize=7)
save(fig, "05_gradient_estimators.png")

# %% [markdown]
# Both estimators are unbiased (their means sit at $2\mu = 4$) and both variances fall as $1/S$, on
# the predicted lines. But the score-function estimator needs about 22 times as many draws for the
# same precision, even on this easy one-dimensional problem. It also has a weakness the
# reparameterized one does not: adding a constant $c$ to $f$ leaves the gradient unchanged, but
# multiplies each draw's $\nabla_\mu \log q(z)$ by a larger number, and its variance grows
# quadratically in $c$ (exercise 2). A VAE's reconstruction term is hundreds of nats, a very large
# $c$. Using $f'$, the information that backpropagation provides for free, is what makes VAEs
# practical to train.
#
# ## The KL term in closed form
#
# The second part of the loss compares the encoder's Gaussian with the prior. In one dimension, with
# $q = \mathcal{N}(\mu, \sigma^2)$ and $p = \mathcal{N}(0, 1)$,
#
# $$\log q(z) = -\tfrac12 \log 2\pi - \tfrac12 \log\sigma^2 - \frac{(z - \mu)^2}{2\sigma^2}, \qquad
#   \log p(z) = -\tfrac12 \log 2\pi - \frac{z^2}{2}.$$
#
# The KL divergence is the expectation of their difference under $q$. With
# $\mathbb{E}_q[(z - \mu)^2] = \sigma^2$ and $\mathbb{E}_q[z^2] = \mu^2 + \sigma^2$:
#
# $$\mathrm{KL}(q\,\|\,p) = \mathbb{E}_q\bigl[\log q(z) - \log p(z)\bigr]
#   = -\tfrac12 \log\sigma^2 - \tfrac12 + \tfrac12(\mu^2 + \sigma^2)
#   = \tfrac12\bigl(\mu^2 + \exp(\log\sigma^2) - 1 - \log\sigma^2\bigr).$$
#
# For a diagonal Gaussian in $J$ dimensions both densities are products over the dimensions, so the
# KL is the sum of $J$ such terms. Each term is zero only for $\mu = 0$, $\sigma^2 = 1$ and positive
# otherwise (because $\log u \le u - 1$). The last form, written in $\log\sigma^2$, is
# `mg.losses.gaussian_kl(mu, log_var)`, one term per element; the VAE sums it over the latent
# dimensions.
#
# Now the check: estimate the same expectation by Monte Carlo, as the mean of
# $\log q(z) - \log p(z)$ over many draws from $q$, and compare. The standard error of a mean of $n$
# draws is their standard deviation divided by $\sqrt{n}$.

# %%
n = 20_000 if SMOKE else 1_000_000
prior = mg.distributions.Normal(mg.zeros(1, dtype="float64"), 1.0)
print(f"{'mu':>5} {'log_var':>8} {'closed form':>12} {'Monte Carlo':>12} {'std. error':>11} "
      f"{'difference / s.e.':>18}")
for mu_value, log_var_value in [(0.0, 0.0), (1.0, 0.0), (0.0, -2.0), (-1.5, 1.0), (2.0, -4.0)]:
    mu = mg.Tensor([mu_value], dtype="float64")
    log_var = mg.Tensor([log_var_value], dtype="float64")
    closed_form = mg.losses.gaussian_kl(mu, log_var).item()
    q = mg.distributions.Normal.from_log_var(mu, log_var)     # scale exp(0.5 * log_var)
    z = q.sample((n,))                                        # (n, 1)
    log_ratio = (q.log_prob(z) - prior.log_prob(z)).numpy()
    estimate, error = log_ratio.mean(), log_ratio.std() / np.sqrt(n)
    gap = (estimate - closed_form) / error if error > 0 else 0.0
    print(f"{mu_value:5.1f} {log_var_value:8.1f} {closed_form:12.5f} {estimate:12.5f} "
          f"{error:11.5f} {gap:18.2f}")

# %% [markdown]
# Each estimate differs from the formula by about one or two standard errors, the size expected of
# random noise: the formula and the simulation agree. (For $\mu = 0$,
# $\log\sigma^2 = 0$ the two distributions are the same, every draw gives exactly 0, and there is no
# error at all.)
#
# ## The data: MNIST
#
# `load_mnist()` reads the MNIST digits from the folder named by the `MINIGEN_DATA` environment
# variable (or downloads them into `~/.cache/minigen/mnist`). Images become rows of 784 numbers in
# $[0, 1]$. If the folder holds only the 10,000 test digits, it trains on the first 8,000 and keeps
# the last 2,000 for testing, and says so. If MNIST cannot be found, this tutorial still runs: it
# prints why and trains on the 2-D ring of tutorial 7 instead, with the founding document's own
# small network and a Gaussian decoder. The figures are then pictures of points, not digits.

# %%
try:
    mnist = load_mnist(download=not SMOKE)         # the quick test runs never download
    IMAGES = True
    train_x, test_x, test_labels = mnist.train_images, mnist.test_images, mnist.test_labels
except DataError as err:
    IMAGES = False
    print(f"MNIST could not be loaded: {err}")
    print("To use MNIST, set MINIGEN_DATA to a folder holding its IDX files and run again, e.g.\n"
          "    MINIGEN_DATA=/path/to/mnist python tutorials/05_vae.py\n"
          "FALLBACK: the rest of this run uses the 2-D ring data, not MNIST.")
    train_x, _ = mg.data.ring(10_000, seed=0)
    test_x, test_labels = mg.data.ring(2_000, seed=1)
if SMOKE:
    train_x, test_x, test_labels = train_x[:1000], test_x[:500], test_labels[:500]
print("training rows", train_x.shape, "| test rows", test_x.shape, "| values in",
      f"[{train_x.numpy().min():.2f}, {train_x.numpy().max():.2f}]")

# %% [markdown]
# ## The reconstruction term: a Bernoulli likelihood from logits
#
# Most MNIST pixels are close to 0 (background) or 1 (ink). The decoder treats pixel $d$ as a coin
# that is "on" with probability $p_d = \sigma(l_d)$, where $l_d$ is the decoder's $d$-th output, a
# logit (an unbounded real number; $\sigma$ is the sigmoid). The log-probability of an image is the
# sum over pixels of the log-probability of each coin:
#
# $$\log p_\theta(x \mid z) = \sum_{d=1}^{784} \bigl[x_d \log p_d + (1 - x_d) \log(1 - p_d)\bigr]
#   = -\sum_{d=1}^{784} \mathrm{BCE}(l_d, x_d).$$
#
# So the reconstruction term is the binary cross-entropy summed over the pixels, and it should be
# computed from the logits with tutorial 4's stable form
# $\mathrm{BCE}(l, x) = \max(l, 0) - l x + \log(1 + e^{-|l|})$, `mg.losses.bce_with_logits`. Going
# through probabilities breaks exactly where a trained decoder spends most of its time: on pixels it
# is sure of. In float32 $\sigma(20)$ rounds to exactly 1, so $\log(1 - p)$ would be $-\infty$. To
# stay finite, `mg.losses.bce` (the loss on probabilities) **clamps** $p$ into
# $[\epsilon, 1 - \epsilon]$ with $\epsilon = 10^{-7}$ (as Keras does) before taking logs. That
# caps every term: at most $-\log 10^{-7} = 16.12$ nats when $p$ is clamped up to $\epsilon$, and
# $15.94$ nats when it is clamped down to $1 - \epsilon$, because float32 cannot hold $1 - 10^{-7}$
# and rounds it to $1 - 1.19 \times 10^{-7}$. The clamp bites before float32 runs out:
# $\sigma(-20) = 2.1 \times 10^{-9}$ is an ordinary float32 number, yet below $\epsilon$. And where
# the clamp acts, the loss is flat in $p$, so its **gradient is zero**: a pixel the decoder gets
# confidently wrong sends no gradient back at all. The logit form has neither problem: it gives the
# exact 20 nats, and the gradient $\sigma(l) - x$ of tutorial 4. (PyTorch's `BCELoss` clamps
# differently, each log at $-100$.)

# %%
logits = mg.Tensor([-20.0, -3.0, 0.0, 3.0, 20.0], requires_grad=True)   # float32, like a network's
pixels = mg.Tensor([1.0, 0.0, 1.0, 1.0, 0.0])
print("probabilities sigmoid(l):        ", mg.sigmoid(logits).numpy())
via_probabilities = mg.losses.bce(mg.sigmoid(logits), pixels, reduction="none")   # clamps p first
from_logits = mg.losses.bce_with_logits(logits, pixels, reduction="none")
print("BCE via probabilities (clamped): ", via_probabilities.numpy())
print("BCE from logits:                 ", from_logits.numpy())
(grad_via_probabilities,) = mg.grad(via_probabilities.sum(), logits)
(grad_from_logits,) = mg.grad(from_logits.sum(), logits)
print("d/dl via probabilities:          ", grad_via_probabilities.numpy())
print("d/dl from logits, sigmoid(l) - x:", grad_from_logits.numpy())

# %% [markdown]
# A caution about the numbers. A Bernoulli likelihood is meant for pixels that are exactly 0 or 1,
# and MNIST's are grey levels. Like PyTorch's VAE example, we still use the BCE with the grey levels
# as targets. It trains well, but it is not a normalised density over grey images, so the losses
# below (in nats per digit) can be compared only with models trained and evaluated the same way, not
# with published results on *binarized* MNIST (exercise 3 binarizes).
#
# ## Putting the loss together, and checking it
#
# Every piece is now in place. The MNIST model is the one of PyTorch's VAE example: $784 \to 400 \to
# (\mu, \log\sigma^2)$ with 20 latent dimensions, and a decoder $20 \to 400 \to 784$ logits. Before
# training, we recompute `VAE.losses` by hand from the formulas above, on one batch. Reseeding the
# generator makes `mg.reparameterize` draw the same $\varepsilon$ both times.

# %%
if IMAGES:
    config = dict(data_dim=784, hidden=(400,), latent_dim=20, likelihood="bernoulli")
else:   # the ring fallback: the founding document's network, with a Gaussian decoder
    config = dict(data_dim=2, hidden=(64, 32), latent_dim=2, likelihood="gaussian")
mg.manual_seed(0)
model = mg.VAE(**config)
print(model)

x = train_x[:128]
mg.manual_seed(1)
parts = model.losses(x)

mg.manual_seed(1)
mu, log_var = model.encode(x)
z = mg.reparameterize(mu, log_var)                             # mu + exp(0.5 log_var) * eps
if IMAGES:
    nll = mg.losses.bce_with_logits(model.decode(z), x, reduction="none").sum(axis=1)
else:
    nll = mg.losses.gaussian_nll(model.decode(z), x, reduction="none").sum(axis=1)
reconstruction = nll.mean()
kl = (0.5 * (mu * mu + mg.exp(log_var) - 1.0 - log_var)).sum(axis=1).mean()
print(f"VAE.losses: reconstruction {parts['reconstruction'].item():.3f}, "
      f"kl {parts['kl'].item():.4f}, loss {parts['loss'].item():.3f}")
print(f"by hand:    reconstruction {reconstruction.item():.3f}, kl {kl.item():.4f}, "
      f"loss {(reconstruction + kl).item():.3f}")

# %% [markdown]
# The untrained model's reconstruction term is about $784 \log 2 \approx 543$ nats: with logits near
# 0, every pixel is a fair coin. Its KL term is small, because a fresh encoder outputs $\mu \approx
# 0$ and $\log\sigma^2 \approx 0$, close to the prior.
#
# ## Inside one training step: the primitive ops, with fusion off
#
# For speed, `mg.VAE` runs on a few *fused* ops (a dense layer with its activation, the BCE from
# logits, the Gaussian KL, the reparameterization: `minigen/fused.py`), each of which does the work
# of several primitive ops in one graph node. `with mg.using_fusion(False):` makes the same model
# run on the primitive ops instead: the `MatMul`, `Add`, `ReLU`, `Exp` of `minigen/functions.py`,
# whose backward methods are the derivatives of tutorials 2 to 4. Nothing else changes: the same
# `train_step`, the same optimizer, and (we check it below) the same numbers up to rounding.
#
# So we can watch the chain rule at work inside a real step. The graph walk hands each op the
# gradient of the loss with respect to its output, `gy`, and the op's `backward` returns the
# gradients with respect to its inputs. For $y = a\,b$ (tutorial 4): $\partial L/\partial a =
# g_y\,b^\top$ and $\partial L/\partial b = a^\top g_y$. `MatMul` has only `backward` (exercise 4
# is about ops that also have a `backward_arrays`), so the walk calls it for every product. Below,
# `MatMul.backward` is wrapped for one step so that each call records what it received and
# returned. We record copies: once
# `backward` has returned, the walk may add the next gradient of the same tensor into that array in
# place. Two copies of the untrained model take one step each on the same batch, one fused and one
# on the primitive ops, with the same noise $\varepsilon$ (`mg.manual_seed(2)` before each).

# %%
MatMul = mg.functions.MatMul
calls = []                                   # (inputs a and b, gy, (dL/da, dL/db)) per call
plain_backward = MatMul.backward


def snapshot(t):
    return None if t is None else t.numpy().copy()


def recorded_backward(self, gy):
    grads = plain_backward(self, gy)         # the real code of functions.py
    calls.append(([snapshot(t) for t in self.inputs], snapshot(gy), [snapshot(g) for g in grads]))
    return grads


steps = {}
MatMul.backward = recorded_backward
try:
    for fused in (True, False):
        twin = mg.VAE(**config)
        twin.load_state_dict(model.state_dict())     # the untrained weights, in a fresh copy
        before = len(calls)
        with mg.using_fusion(fused):
            mg.manual_seed(2)
            step_losses = twin.train_step(x, twin.make_optimizers(lr=1e-3))
        steps[fused] = dict(model=twin, losses=step_losses, matmuls=len(calls) - before)
finally:
    MatMul.backward = plain_backward         # put the class back as it was
assert steps[False]["matmuls"] > 0, "the fusion-off step ran no MatMul.backward"
print(f"MatMul.backward calls: {steps[True]['matmuls']} in the fused step, "
      f"{steps[False]['matmuls']} with fusion off (one per dense layer, last layer first)")


def shape(array):
    return "-" if array is None else str(array.shape)


print(f"{'a':>11} {'b (weight)':>11} {'gy':>11} {'dL/da':>11} {'dL/db':>11}")
for (a, b), gy, (ga, gb) in calls:
    print(f"{shape(a):>11} {shape(b):>11} {shape(gy):>11} {shape(ga):>11} {shape(gb):>11}")
(a, b), gy, (ga, gb) = calls[0]
print(f"first call: |dL/da - gy @ b.T| <= {np.abs(ga - gy @ b.T).max():.1e}, "
      f"|dL/db - a.T @ gy| <= {np.abs(gb - a.T @ gy).max():.1e}")

# %% [markdown]
# The walk goes backwards, so the first `MatMul.backward` is the decoder's output layer: `gy` has
# one column per data dimension, and the two gradients come out in the shapes of `a` and of the
# weight, exactly $g_y b^\top$ and $a^\top g_y$. The fused step calls no `MatMul` at all: its dense
# layers are `DenseFunction`s, whose own backward does the same products (and the activation's) in
# one node. The last call, the encoder's first layer, returns no gradient for `a`: its input is the
# data batch, which does not require one, so the product is skipped.
#
# Do the two steps agree? They add the same numbers in a different order, so in float32 they should
# agree to rounding, about $10^{-7}$ relative, and no more:

# %%
print(f"loss: fused {steps[True]['losses']['loss']:.6f}, "
      f"primitive ops {steps[False]['losses']['loss']:.6f}")
print(f"{'parameter':<24} {'shape':>11} {'largest gradient difference':>28}")
worst = 0.0
for (name, p_fused), (_, p_plain) in zip(steps[True]["model"].named_parameters(),
                                         steps[False]["model"].named_parameters()):
    g_fused, g_plain = p_fused.grad.numpy(), p_plain.grad.numpy()
    relative = np.abs(g_fused - g_plain).max() / np.abs(g_plain).max()
    worst = max(worst, relative)
    print(f"{name:<24} {shape(g_plain):>11} {relative:>17.1e} relative")
assert worst < 1e-5, f"fused and primitive gradients differ by {worst:.1e}"

# %% [markdown]
# The losses are the same float32 number. The decoder's gradients and the mean head's are identical
# to the last bit: there the fused ops do the very same products in the same order. The log-variance
# head and the layers below it differ in the last bits, about $10^{-7}$ relative: the fused KL and
# reparameterization compute their derivatives with respect to $\log\sigma^2$ (made of exponentials)
# with the same operations in a different order than the primitive ops do. The fused ops are a
# faster way to compute the same thing, not a different model: `tests/test_fused.py` holds each
# fused op equal to its composition of primitive ops, in value, gradient and second derivative. When
# you want to see what a model does, turn fusion off and every line that runs is one you have read.
#
# ## Training
#
# `minigen.train.fit` runs the loop of tutorial 4 over mini-batches (`zero_grad`, `losses`,
# `backward`, `step`, inside `VAE.train_step`) and returns the mean of each loss per epoch. We use
# the settings of PyTorch's example: Adam with learning rate $10^{-3}$ and batches of 128.

# %%
epochs = 1 if SMOKE else (10 if IMAGES else 20)
start = time.perf_counter()
history, _ = fit(model, train_x, epochs=epochs, batch_size=128, lr=1e-3, seed=0, quiet=True)
print(f"{epochs} epochs in {time.perf_counter() - start:.0f} s")
print(f"{'epoch':>5} {'loss':>9} {'reconstruction':>15} {'kl':>7}")
for record in history:
    print(f"{record['epoch']:5d} {record['loss']:9.2f} {record['reconstruction']:15.2f} "
          f"{record['kl']:7.2f}")

model.eval()
with mg.no_grad():
    test = model.losses(test_x)
print(f"test ({len(test_x)} rows): reconstruction {test['reconstruction'].item():.2f} + "
      f"KL {test['kl'].item():.2f} = {test['loss'].item():.2f} nats (the negative ELBO)")
dims = train_x.shape[1]
print(f"  = {test['loss'].item() / np.log(2):.1f} bits per row, "
      f"{test['loss'].item() / (dims * np.log(2)):.4f} bits per dimension ({dims} dimensions)")

epoch_axis = [record["epoch"] for record in history]
fig, (ax_loss, ax_kl) = plt.subplots(1, 2, figsize=(8, 2.9))
ax_loss.plot(epoch_axis, [r["loss"] for r in history], "o-", ms=3, label="loss = -ELBO (training)")
ax_loss.plot(epoch_axis, [r["reconstruction"] for r in history], "s--", ms=3,
             label="reconstruction (training)")
ax_loss.plot([epoch_axis[-1]], [test["loss"].item()], "k*", ms=9, label="loss on the test rows")
ax_loss.set_ylabel("nats per row")
ax_loss.legend(fontsize=7, loc="upper right")
ax_kl.plot(epoch_axis, [r["kl"] for r in history], "o-", ms=3, color="tab:green")
ax_kl.set_ylabel("KL term (nats per row)")
for ax in (ax_loss, ax_kl):
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
fig.suptitle("Training the VAE: each point is the mean over one epoch's batches", fontsize=9)
fig.tight_layout()
save(fig, "05_loss_curve.png")

# %% [markdown]
# The loss falls fast in the first epochs and then more slowly (left). Notice that from the second
# epoch on the KL term *grows* (right) while the reconstruction term shrinks: to rebuild digits
# well, the encoder must move its codes away from the prior and make them precise, and it pays for
# every nat of information it puts into the code. On the held-out digits the negative ELBO is a few
# nats above the last epoch's training loss: the model fits its training digits a little better than
# new ones, but it has not memorised them. (The repository's benchmark, `benchmarks/quality.py`,
# trains the same model on the same split in PyTorch and lands at a similar test loss.)
#
# ## Reconstructions
#
# `model.reconstruct(x)` encodes each test digit, takes the mean code $\mu(x)$ and decodes it to the
# probabilities $\sigma(l)$: the mean of $p_\theta(x \mid z)$.

# %%
with mg.no_grad():
    rebuilt = model.reconstruct(test_x[:10] if IMAGES else test_x[:300])
if IMAGES:
    fig = plots.reconstructions(test_x[:10], rebuilt, n=10)
    fig.set_size_inches(6.5, 1.8)          # each digit about 50 pixels wide: details visible
else:
    fig = plots.reconstructions_2d(test_x[:300], rebuilt, limit=3)
save(fig, "05_reconstructions.png")

# %% [markdown]
# The reconstructions keep each digit's identity, slant and thickness, but they are smoother than
# the originals: the 20 numbers of the code cannot hold every stray pixel, and the decoder draws the
# average of the images that share a code.
#
# ## New digits from the prior
#
# A VAE is a generative model: draw $z \sim \mathcal{N}(0, I)$ and decode it. `model.sample(n)` does
# that and returns the decoder's mean (the pixel probabilities) rather than random 0/1 pixels, as is
# usual for pictures.

# %%
mg.manual_seed(2)
if IMAGES:
    fig = plots.image_grid(model.sample(30), rows=3, cols=10, title="decoded prior samples")
    fig.set_size_inches(6.5, 2.3)
else:
    fig = plots.samples_2d(model.sample(2000), test_x, title="decoded prior samples", limit=3)
save(fig, "05_samples.png")

# %% [markdown]
# Many samples are recognisable digits; others are blurry blends of two. They are worse than the
# reconstructions because a code drawn from the prior can land between the regions that the encoder
# uses for real digits, where the decoder has only learned something in between. Tutorial 6 shows
# how the weight $\beta$ of the KL term moves this balance.
#
# ## The latent space
#
# To *see* the latent space we need a code of two numbers, like the founding document's. We train a
# second MNIST model with `latent_dim=2` (and a hidden layer of 256 units, to keep it quick) and
# then draw two pictures with `minigen.plots`: the mean codes $\mu(x)$ of the first 600 test digits,
# coloured by their labels, and the decoder's output over a grid of codes covering $[-3, 3]^2$,
# where the prior puts almost all of its mass. (With the ring fallback, the first model already has
# a 2-D code.)

# %%
if IMAGES:
    mg.manual_seed(0)
    latent_model = mg.VAE(784, hidden=(256,), latent_dim=2)
    start = time.perf_counter()
    history_2d, _ = fit(latent_model, train_x, epochs=1 if SMOKE else 10, batch_size=128, lr=1e-3,
                        seed=0, quiet=True)
    with mg.no_grad():
        test_2d = latent_model.losses(test_x)
    print(f"2-D latent model: {len(history_2d)} epochs in {time.perf_counter() - start:.0f} s, "
          f"test loss {test_2d['loss'].item():.2f} nats "
          f"(the 20-D model: {test['loss'].item():.2f})")
else:
    latent_model = model
latent_model.eval()
with mg.no_grad():
    means, _ = latent_model.encode(test_x[:600])
fig = plots.latent_space(means, test_labels[:600], title="mean codes of test rows, by label")
fig.set_size_inches(4.6, 4.0)
fig.axes[0].collections[0].set_sizes([10])     # larger points than plots.latent_space's default
save(fig, "05_latent_means.png")

# %%
steps = 8 if SMOKE else 10
line = np.linspace(-3.0, 3.0, steps)
z1, z2 = np.meshgrid(line, line[::-1])             # rows from z2 = +3 (top) down to -3
codes = mg.Tensor(np.stack([z1.ravel(), z2.ravel()], axis=1))
with mg.no_grad():
    decoded = latent_model.decode(codes)
    if IMAGES:
        decoded = mg.sigmoid(decoded)                # logits -> pixel probabilities
fig = plots.decoded_latent_grid(decoded, steps)
fig.set_size_inches(6, 6)                      # each decoded digit at about 1.5 times its 28 pixels
for image in fig.axes[0].images:
    image.set_interpolation("nearest")         # crisp pixels (and a much smaller PNG)
save(fig, "05_latent_grid.png")

# %% [markdown]
# The digits form clusters in the plane, around the origin and mostly within $[-4, 4]^2$, about the
# area that the KL term asks for. Neighbouring codes decode to similar images, and walking across
# the grid morphs one digit into another: the 0 at the top turns into the 9 on the left, which thins
# into a 1 at the bottom left, which fattens into a 3 at the bottom right. The decoder has arranged
# the digits so that the prior's mass is covered by images, though not all of them are clear:
# between clusters they blur. Digits that look alike (4 and 9; 3, 5 and 8) overlap, and two numbers
# cannot separate everything: the 2-D model's test loss is well above the 20-D model's.
#
# ## What you learned
#
# * A VAE is trained by maximising the ELBO, $\mathbb{E}_q[\log p_\theta(x \mid z)] -
#   \mathrm{KL}(q_\phi(z \mid x)\,\|\,p(z)) \le \log p_\theta(x)$; minigen minimises its negative
#   (reconstruction plus KL), averaged over the batch.
# * The encoder outputs $\mu$ and $\log\sigma^2$. The standard deviation is
#   $\exp(\tfrac12\log\sigma^2)$; the founding document's $\exp(\log\sigma^2)$ squares the variance.
# * A random draw blocks gradients. The reparameterization $z = \mu + \sigma\varepsilon$ lets them
#   through, and its gradient estimates have far lower variance than the score-function estimator's
#   (4 against 87 per draw in our example).
# * $\mathrm{KL}(\mathcal{N}(\mu, \sigma^2)\,\|\,\mathcal{N}(0, 1)) = \tfrac12(\mu^2 + \sigma^2 - 1
#   - \log\sigma^2)$, summed over the latent dimensions, and a Monte Carlo estimate agrees with it.
# * The Bernoulli reconstruction term is the binary cross-entropy summed over pixels, computed from
#   logits with `bce_with_logits`. `bce` on probabilities clamps them to $[10^{-7}, 1 - 10^{-7}]$,
#   which caps each term near 16 nats and gives a zero gradient where the clamp acts.
# * `with mg.using_fusion(False):` trains the same model on the primitive ops of `functions.py`; its
#   loss and gradients equal the fused step's to float rounding, and every `backward` that runs is
#   one you can read (and wrap, as we wrapped `MatMul.backward`).
# * Losses are in nats (natural logarithms); $L$ nats per image are $L / (D \ln 2)$ bits per
#   dimension, the unit that compares likelihoods across image sizes.
# * A trained VAE reconstructs digits, generates new ones from the prior, and arranges them in a
#   smooth latent space.
#
# ## Exercises
#
# 1. Reproduce the founding document's bug: write a subclass of `mg.VAE` whose `losses` draws `z =
#    mu + mg.exp(log_var) * eps` and train it as above. Compare the test loss (measured with the
#    correct `VAE.losses`) and look at the values of $\log\sigma^2$ the encoder learns. What goes
#    wrong?
# 2. In the estimator experiment, use $f(z) = z^2 + c$ for $c = 10$ and $100$. Which estimator's
#    variance changes? Then subtract a *baseline* $b$ in the score-function surrogate, $(f(z) -
#    b)\log q(z)$ with $b = \mu^2 + \sigma^2 + c$. Is it still unbiased, and how much does it help?
# 3. Train with dynamic binarization, `fit(..., binarize=True)`, which turns each pixel into a 0/1
#    draw with its grey level as probability at every step, and evaluate on one binarized copy of
#    the test set (`mg.data.binarize`). How do the reconstruction and KL terms change, and why?
# 4. `Exp` defines `backward_arrays` (arrays in, arrays out) beside `backward`, and the graph walk
#    calls `backward_arrays` when it builds no graph of the gradient. Wrap both methods of
#    `mg.functions.Exp` as we wrapped `MatMul.backward` and take one fusion-off `train_step`: where
#    in the loss does `exp` run (there are two places), and which of the two methods does the walk
#    call? Then take the gradients with `mg.grad(loss, list(model.parameters()),
#    create_graph=True)` instead: which method runs now, and why must it be that one?

# %% [markdown]
# # 7. Generative adversarial networks on the ring
#
# A VAE (tutorials 5 and 6) learns a generator by maximising a bound on the likelihood of the data.
# A **generative adversarial network** (GAN; Goodfellow et al., 2014) learns one without ever
# writing down a likelihood. Two networks play a game:
#
# * the **generator** $G$ turns noise $z \sim \mathcal{N}(0, I)$ into a point $G(z)$ in data space;
# * the **discriminator** $D$ looks at a point and says how likely it is to be real rather than made
#   by $G$.
#
# $D$ is trained to tell real from fake, $G$ to fool $D$. If both play well, the only way for $G$ to
# win is to produce points that look exactly like the data.
#
# We study the game where it is easy to see: the **ring**, eight small Gaussian blobs on a circle.
# This tutorial covers
#
# 1. the two losses, written out and checked against minigen's `GAN`;
# 2. why the generator's loss in the original "minimax" game **saturates** early in training, and
#    the **non-saturating** loss that fixes it;
# 3. training, with snapshots of the samples as they move onto the data;
# 4. **mode collapse**, seen in the snapshots and measured by the protocol of VEEGAN (Srivastava et
#    al., 2017) and PacGAN (Lin et al., 2018): modes covered, high-quality fraction, reverse KL.

# %%
import os
import inspect
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg
import minigen.data  # noqa: F401  (makes mg.data available)
from minigen.losses import bce_with_logits
from minigen.metrics import mode_metrics
from minigen.models import GAN
from minigen.runs import defaults

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"   # tiny runs for the test suite
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})
# One thread for the CPU's matrix library (BLAS), so that a rerun draws this notebook's figures
# exactly: the thread count changes the last bits of matrix products, and adversarial training
# amplifies them.  Networks this small gain only a few percent from a second thread; the command
# line uses every free core (mg.backend.free_cpus()), which pays for larger models.
mg.backend.set_num_threads(1)


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


mg.manual_seed(0)

# %% [markdown]
# ## The data: eight Gaussians on a ring
#
# `mg.data.ring(n, seed)` draws $n$ points from an equal mixture of eight Gaussians with standard
# deviation $0.02$, centred on a circle of radius 2. The blobs are tiny compared with the gaps
# between them: a generator that puts its points between the blobs, or on only some of them, is easy
# to catch. It also returns which blob (which **mode**) each point came from. The same mixture is
# described by `mg.data.toy_modes("ring")`, which the metrics at the end use.

# %%
n_train = 2_000 if SMOKE else 10_000
x_train, modes_of_x = mg.data.ring(n_train, seed=0)
ring = mg.data.toy_modes("ring")
data = x_train.numpy()
print("training points", x_train.shape, "| std", ring.std, "| mode centres:")
print(np.round(np.array(ring.modes), 3))
print("points per mode:", np.bincount(modes_of_x.numpy(), minlength=8))

# %% [markdown]
# ## The two players
#
# minigen's `GAN` holds both networks. The sizes come from `minigen.runs.defaults("gan", "ring")`,
# the settings that `python -m minigen train gan` uses: everything in it except the three training
# settings (epochs, batch size, learning rate) describes the networks.
#
# * The **generator** is a stack of dense layers from the latent space ($z \in \mathbb{R}^2$ here)
#   to the plane, with a linear last layer: its output can be any point.
# * The **discriminator** is a stack of dense layers ending in **one logit** $s(x)$, any real
#   number. Its probability that $x$ is real is $D(x) = \sigma(s(x))$, with $\sigma$ the sigmoid. As
#   in tutorial 4, the losses are computed from the logit, which is stable even when $D$ is very
#   sure.

# %%
settings = defaults("gan", "ring")
training = {key: settings.pop(key) for key in ("epochs", "batch_size", "lr")}
print("network settings:", settings)
print("training settings:", training)

model = GAN(data_dim=2, **settings)
print("generator:    ", model.generator)
print("discriminator:", model.discriminator)
z = mg.randn(4, model.latent_dim)
print("G(z) for 4 draws of z:\n", model(z).numpy())
print("logits s(G(z)):", model.discriminator(model(z)).numpy().ravel())

# %% [markdown]
# ## The game and its two losses
#
# Goodfellow et al. (2014) define the value of the game as the discriminator's expected
# log-probability of being right,
#
# $$V(D, G) = \mathbb{E}_{x \sim p_\text{data}}\bigl[\log D(x)\bigr]
#           + \mathbb{E}_{z \sim \mathcal{N}(0, I)}\bigl[\log\bigl(1 - D(G(z))\bigr)\bigr],
#   \qquad \min_G \max_D V(D, G).$$
#
# For a fixed generator with density $p_g$, the best discriminator is
# $D^*(x) = p_\text{data}(x) / (p_\text{data}(x) + p_g(x))$, and with it the value becomes
# $-\log 4 + 2\,\mathrm{JSD}(p_\text{data} \,\|\, p_g)$: the generator then minimises the
# Jensen-Shannon divergence between the data and its samples, which is zero only when $p_g =
# p_\text{data}$ (Goodfellow et al., 2014, Proposition 1 and Theorem 1).
#
# In practice each player takes gradient steps on a batch. The **discriminator** maximises $V$, that
# is, minimises $-V$. With $s_n = s(x_n)$ the logits of $N$ real points and $\tilde s_n = s(G(z_n))$
# those of $N$ generated ones, $-V$ is a sum of two binary cross-entropies: label 1 for the real
# points, label 0 for the fakes,
#
# $$L_D = \frac1N \sum_n -\log \sigma(s_n)
#       \;+\; \frac1N \sum_n -\log\bigl(1 - \sigma(\tilde s_n)\bigr)
#       = \mathrm{BCE}(s, 1) + \mathrm{BCE}(\tilde s, 0).$$
#
# The **generator** only appears in the second term. Taken literally, the game asks it to *minimise*
# $V$, that is, its **minimax** loss is
#
# $$L_G^\text{minimax} = \frac1N \sum_n \log\bigl(1 - \sigma(\tilde s_n)\bigr)
#   = -\mathrm{BCE}(\tilde s, 0).$$
#
# Goodfellow et al. recommend a different loss instead, which asks the generator to *maximise* the
# log-probability that its points are called real, the **non-saturating** loss
#
# $$L_G^\text{non-sat} = \frac1N \sum_n -\log \sigma(\tilde s_n) = \mathrm{BCE}(\tilde s, 1).$$
#
# Both are smallest when $D$ calls the fakes real, and both have the same fixed point ($p_g =
# p_\text{data}$, $D = \tfrac12$ everywhere). Here are the three losses computed by hand from the
# logits and by `model.discriminator_loss` and `model.generator_loss` (the non-saturating one):

# %%
real = x_train[:256]
fake = model.generate(256)
s_real, s_fake = model.discriminator(real), model.discriminator(fake)
log_sigmoid = lambda s: -mg.softplus(-s)           # log sigma(s) = -log(1 + e^{-s})
log_one_minus_sigmoid = lambda s: -mg.softplus(s)  # log(1 - sigma(s)) = -log(1 + e^{s})

d_by_hand = -log_sigmoid(s_real).mean() - log_one_minus_sigmoid(s_fake).mean()
minimax_by_hand = log_one_minus_sigmoid(s_fake).mean()
non_saturating_by_hand = -log_sigmoid(s_fake).mean()
print(f"L_D             by hand {d_by_hand.item():.6f} | model.discriminator_loss "
      f"{model.discriminator_loss(real, fake).item():.6f}")
print(f"L_G non-sat.    by hand {non_saturating_by_hand.item():.6f} | model.generator_loss     "
      f"{model.generator_loss(fake).item():.6f}")
print(f"L_G minimax     by hand {minimax_by_hand.item():.6f} | -bce_with_logits(s, 0)   "
      f"{-bce_with_logits(s_fake, 0.0).item():.6f}")

# %% [markdown]
# ## Why the minimax loss saturates
#
# Look at the gradient of each generator loss with respect to the logit $\tilde s$ of one fake
# point, using $\sigma'(s) = \sigma(s)(1 - \sigma(s))$:
#
# $$\frac{\partial}{\partial \tilde s} \log\bigl(1 - \sigma(\tilde s)\bigr) = -\sigma(\tilde s),
#   \qquad
#   \frac{\partial}{\partial \tilde s} \bigl[-\log \sigma(\tilde s)\bigr]
#   = -\bigl(1 - \sigma(\tilde s)\bigr).$$
#
# Both are negative (a gradient step raises $\tilde s$: the point is moved to look more real), but
# their sizes are very different where it matters. Early in training the generator's points are
# obviously fake, the discriminator rejects them confidently, $\tilde s \ll 0$ and $\sigma(\tilde s)
# \approx e^{\tilde s} \approx 0$. Then the minimax gradient is about $e^{\tilde s}$, almost
# nothing, while the non-saturating gradient is about $-1$, as large as it gets. By the chain rule,
# the gradient with respect to the generator's weights $\theta$ is $\frac1N \sum_n \frac{\partial
# L}{\partial \tilde s_n} \frac{\partial \tilde s_n}{\partial \theta}$: the minimax loss weighs each
# fake point by $\sigma(\tilde s_n)$, so the worst points, the ones the discriminator is surest
# about, count the least. The non-saturating loss weighs them by $1 - \sigma(\tilde s_n)$: the worst
# points count the most.
#
# minigen's autograd computes both curves (the gradient of a sum of elementwise terms, as in
# tutorial 2):

# %%
logit = mg.Tensor(np.linspace(-10, 10, 401), requires_grad=True)
curves = {
    "minimax  $\\log(1 - \\sigma(s))$": log_one_minus_sigmoid(logit),
    "non-saturating  $-\\log \\sigma(s)$": -log_sigmoid(logit),
}
fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(7.5, 2.8))
for name, loss in curves.items():
    (slope,) = mg.grad(loss.sum(), logit)
    ax_loss.plot(logit.numpy(), loss.numpy(), label=name)
    ax_grad.semilogy(logit.numpy(), np.abs(slope.numpy()), label=name)
for ax in (ax_loss, ax_grad):
    ax.axvspan(-10, -3, color="tab:red", alpha=0.08)
    ax.set_xlabel("discriminator's logit $s$ on a fake point")
ax_loss.set_title("generator loss")
ax_loss.set_ylim(-10, 10)
ax_grad.set_title("$|\\partial\\, \\mathrm{loss} / \\partial s|$, by autograd")
ax_grad.text(-9.6, 2e-4, "D confidently\nrejects the fake", fontsize=7, color="tab:red")
ax_loss.legend(fontsize=7, loc="lower right")
save(fig, "07_saturation.png")

for s in (-10.0, -5.0, 0.0):
    d = 1 / (1 + np.exp(-s))
    print(f"logit {s:5.1f}: D = {d:.1e}, |gradient| minimax {d:.1e}, non-saturating {1 - d:.3f}")

# %% [markdown]
# The ratio of the two gradients is $(1 - \sigma(s)) / \sigma(s) = e^{-s}$. In the shaded region,
# where the discriminator is sure the point is fake, the minimax gradient is 20 times ($s = -3$) to
# 22,000 times ($s = -10$) smaller than the non-saturating one.
#
# Does this happen with real networks? Take our untrained generator, train only the discriminator
# for a while (the generator's points all start near the origin, far from the ring, so they are easy
# to reject), and then compare the gradients that the two generator losses send to the generator's
# weights:

# %%
optimizers = model.make_optimizers(training["lr"])
loader = mg.data.DataLoader(x_train, batch_size=training["batch_size"], shuffle=True, seed=0)
d_steps, step = (200 if SMOKE else 2000), 0
while step < d_steps:
    for real in loader:
        optimizers["discriminator"].zero_grad()
        model.discriminator_loss(real, model.generate(len(real)).detach()).backward()
        optimizers["discriminator"].step()
        step += 1
        if step == d_steps:
            break

fake = model.generate(1000)
s_fake = model.discriminator(fake)
print(f"after {d_steps} discriminator steps: mean D(G(z)) = {mg.sigmoid(s_fake).mean().item():.2e}")
weights = model.generator.parameters()
for name, loss in [("minimax", log_one_minus_sigmoid(s_fake).mean()),
                   ("non-saturating", -log_sigmoid(s_fake).mean())]:
    grads = mg.grad(loss, weights, retain_graph=True)
    norm = np.sqrt(sum(float((g.numpy() ** 2).sum()) for g in grads))
    print(f"{name:15s} generator loss: gradient norm {norm:.2e}")
confident = model.state_dict()      # a confident discriminator and an untrained generator, saved

# %% [markdown]
# The discriminator wins the first round easily, and from then on the minimax loss passes the
# generator only a trickle of gradient, a small fraction of what the non-saturating loss passes.
#
# ## Saturation in training, with plain SGD
#
# A trickle of gradient matters most to the plainest optimizer. With SGD a step is the learning rate
# times the gradient, so a gradient many times smaller means steps as many times shorter. We start
# both losses from that same position (the confident discriminator, the untrained generator) and let
# both players take plain SGD steps with the same learning rate, recording how far the generator's
# points are from the origin (the ring has radius 2) and the discriminator's mean probability
# $\mathbb{E}[D(G(z))]$ that they are real.

# %%
class MinimaxGAN(GAN):
    """The same GAN, with the generator minimising mean log(1 - D(G(z))) = -BCE(s, 0)."""

    def generator_loss(self, fake):
        return -bce_with_logits(self.discriminator(fake), 0.0)


def sgd_race(model_class, steps, lr=0.02, every=25):
    """Both players on plain SGD from the saved position; (step, distance, D(G(z))) as it goes."""
    mg.manual_seed(1)
    gan = model_class(data_dim=2, **settings)
    gan.load_state_dict(confident)
    sgd = {"discriminator": mg.optim.SGD(gan.discriminator.parameters(), lr=lr),
           "generator": mg.optim.SGD(gan.generator.parameters(), lr=lr)}
    loader = mg.data.DataLoader(x_train, batch_size=training["batch_size"], shuffle=True, seed=1)
    trace, step = [], 0
    while step < steps:
        for real in loader:
            if step % every == 0:
                with mg.no_grad():
                    fake = gan.generate(500)
                    trace.append((step, float(np.linalg.norm(fake.numpy(), axis=1).mean()),
                                  mg.sigmoid(gan.discriminator(fake)).mean().item()))
            gan.train_step(real, sgd)
            step += 1
            if step == steps:
                break
    return np.array(trace)


race_steps = 300 if SMOKE else 1500
races = {"non-saturating": sgd_race(GAN, race_steps), "minimax": sgd_race(MinimaxGAN, race_steps)}
fig, (ax_r, ax_d) = plt.subplots(1, 2, figsize=(8, 3))
for name, trace in races.items():
    ax_r.plot(trace[:, 0], trace[:, 1], label=name)
    ax_d.semilogy(trace[:, 0], trace[:, 2], label=name)
    reached = trace[trace[:, 1] > 1.5, 0]
    print(f"{name:15s} the points reach the ring (mean distance > 1.5) after "
          + (f"{int(reached[0])} steps" if len(reached) else f"more than {race_steps} steps"))
ax_r.axhline(2.0, color="gray", ls=":", lw=1)
ax_r.text(race_steps, 2.05, "ring radius", ha="right", va="bottom", fontsize=7, color="gray")
ax_r.set_ylabel("mean distance of G(z) from the origin")
ax_d.set_ylabel("mean D(G(z))")
for ax in (ax_r, ax_d):
    ax.set_xlabel("SGD step (both players, lr 0.02)")
ax_r.legend(fontsize=7, loc="upper right")
fig.suptitle("From a confident discriminator, with plain SGD: the minimax generator stalls",
             fontsize=9)
fig.tight_layout()
save(fig, "07_sgd_saturation.png")

# %% [markdown]
# The non-saturating generator leaves the origin at once and its points reach the ring within a few
# hundred steps. The minimax generator hardly moves for much longer: the discriminator keeps calling
# its points fake with near certainty ($D(G(z))$ around $10^{-4}$), which is exactly where the
# minimax gradient $\sigma(\tilde s)$ is near zero. It escapes only once SGD has made the
# discriminator a little less sure. That is the saturation Goodfellow et al. (2014, Section 3) warn
# of, seen in training. (An optimizer like Adam divides each step by the recent size of the
# gradients, which hides much of this; the end of the tutorial trains both losses with Adam.) From
# now on we use the non-saturating loss, which is what `GAN.generator_loss` computes.
#
# ## One training step
#
# Each player has its own Adam optimizer and learns only from its own loss. A step first updates the
# discriminator on a real batch and a fresh batch of fakes, *detached* so that no gradient reaches
# the generator, and then the generator through the updated discriminator. Here is the step,
# straight from minigen's source:

# %%
print(inspect.getsource(GAN.train_step))
decay = getattr(model, "ema", 0.0)
print("GAN.sample draws from",
      f"a moving average of the generator's weights, decay {decay}" if decay
      else "the generator itself")

# %% [markdown]
# The generator's loss is computed through the discriminator, so a plain `backward()` would also
# fill the discriminator's `.grad` fields, with a gradient that is not the discriminator's own
# (tutorial 2: gradients accumulate). The step asks `mg.grad` for the generator's gradient alone
# instead: the walk skips the discriminator's weights, and the step hands the result to the
# generator's optimizer. When the model keeps one (the last line above says so), the step ends by
# updating a copy of the generator whose weights are an exponential moving average of the
# generator's, $\bar\theta \leftarrow d\,\bar\theta + (1 - d)\,\theta$ with decay $d$, and
# `GAN.sample` draws from that copy: the game makes the weights jitter from step to step, and their
# average gives sharper samples (Yazici et al., 2019). It changes no gradient. The optimizers use
# Adam with $\beta_1 = 0.5$, the usual choice for GANs since Radford et al. (2015): a shorter memory
# of past gradients damps the oscillations of the game.
#
# The average has two catches, which matter as soon as you look at samples *during* training. It
# **lags**: with decay $d$ it averages over roughly the last $1/(1 - d)$ steps, a thousand for
# $d = 0.999$. And it **starts from the untrained weights**: after $t$ steps they still carry the
# weight $d^t$ in it. The next cell turns those into epochs for our data and batch size:

# %%
steps_per_epoch = len(mg.data.DataLoader(x_train, batch_size=training["batch_size"]))
if decay:
    print(f"{steps_per_epoch} steps per epoch; the average spans about {1 / (1 - decay):.0f} steps "
          f"= {1 / (1 - decay) / steps_per_epoch:.1f} epochs")
    for epoch in (1, 5, 20, 50):
        print(f"  after epoch {epoch:3d}: the untrained weights' share of the average is "
              f"{decay ** (epoch * steps_per_epoch):.1%}")

# %% [markdown]
# So for the first dozen epochs `GAN.sample` shows mostly the untrained generator, whatever the live
# one has learned. We therefore watch both: the **live generator** (`gan.generate(n)` inside
# `mg.no_grad()`: the weights the game is training now) and, labelled as such, the **moving
# average** that `GAN.sample` uses.
#
# ## Training, with snapshots
#
# We train a fresh GAN with the default settings, and after each epoch (one pass over the data) we
# draw 2,500 samples from each, keep a few as snapshots and measure them (the measures are explained
# in the next section).

# %%
def train_gan(seed, epochs, snapshots=(), model_class=GAN):
    """Train a GAN from seed ``seed``; returns the model, per-epoch metrics of the live generator
    (``history["live"]``) and of the moving average (``history["average"]``), and the snapshots."""
    mg.manual_seed(seed)
    gan = model_class(data_dim=2, **settings)
    optimizers = gan.make_optimizers(training["lr"])
    loader = mg.data.DataLoader(x_train, batch_size=training["batch_size"], shuffle=True, seed=seed)
    history, pictures = {"live": [], "average": []}, {}
    for epoch in range(1, epochs + 1):
        for batch in loader:
            losses = gan.train_step(batch, optimizers)
        with mg.no_grad():
            samples = {"live": gan.generate(2500), "average": gan.sample(2500)}
        for which, points in samples.items():
            history[which].append({"epoch": epoch, **losses, **mode_metrics(points, "ring")})
        if epoch in snapshots:
            pictures[epoch] = {which: points.numpy() for which, points in samples.items()}
    return gan, history, pictures


epochs = 4 if SMOKE else training["epochs"]
shown = sorted({1, min(5, epochs), max(2, epochs // 4), max(3, epochs // 2), epochs})
start = time.perf_counter()
model, history, pictures = train_gan(seed=0, epochs=epochs, snapshots=shown)
print(f"{epochs} epochs in {time.perf_counter() - start:.1f} s")
for live, average in zip(history["live"], history["average"]):
    if live["epoch"] in shown:
        print(f"epoch {live['epoch']:3d}: d_loss {live['d_loss']:.3f}  "
              f"g_loss {live['g_loss']:.3f} | "
              f"live generator: modes {live['modes_covered']}/8, high quality "
              f"{live['high_quality_fraction']:6.1%} | moving average: modes "
              f"{average['modes_covered']}/8, high quality {average['high_quality_fraction']:6.1%}")

fig, axes = plt.subplots(2, len(shown), figsize=(1.9 * len(shown), 4.1), sharex=True, sharey=True)
for column, epoch in enumerate(shown):
    for row, (which, label) in enumerate([("live", "live generator"),
                                          ("average", f"moving average ({decay})")]):
        ax = axes[row, column]
        ax.scatter(data[:1000, 0], data[:1000, 1], s=10, color="0.7", linewidths=0)
        points = pictures[epoch][which][:1000]                   # 1,000 of the 2,500, to stay light
        ax.scatter(points[:, 0], points[:, 1], s=2, color="tab:red", alpha=0.6, linewidths=0)
        ax.set_aspect("equal")
        ax.set_xlim(-2.8, 2.8)
        ax.set_ylim(-2.8, 2.8)
        ax.tick_params(labelsize=6)
        if row == 0:
            ax.set_title(f"epoch {epoch}", fontsize=8)
        if column == 0:
            ax.set_ylabel(label, fontsize=8)
fig.suptitle("GAN samples (red) over the data (grey): the live generator (top) and the moving "
             "average that GAN.sample uses (bottom)", fontsize=8)
fig.subplots_adjust(wspace=0.08, hspace=0.12)
save(fig, "07_snapshots.png")

# %% [markdown]
# Read the top row first, the generator being trained. The untrained generator puts all its points
# in a small cloud near the origin (the bottom row still shows it after the first epoch). Within one
# epoch the discriminator has pushed the live generator's points out of it, all over the plane; they
# settle on the ring, gather on the blobs, and the points between the blobs thin out slowly. The
# bottom row, the moving average, follows the same path about a dozen epochs late: after five epochs
# it is still a cloud at the origin, and only later, once the jitter matters more than the lag, is
# it the sharper of the two. Look at the last snapshots for grey blobs with no red on them: modes
# the generator does not produce. Whether it ends up on every blob, and how sharply, is what the
# next section measures.
#
# ## Measuring mode collapse
#
# A generator can fool a discriminator while producing only part of the data: a few blobs, drawn
# well. This failure, **mode collapse**, is the GAN's best-known weakness. A likelihood would catch
# it, but a GAN has none to compute. VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018)
# measure it on mixtures with known centres $\mu_1, \dots, \mu_K$ and standard deviation $\sigma$:
# draw 2,500 samples, and for each sample $x$ find its nearest centre $k(x)$.
#
# * A sample is **high quality** if it lies within three standard deviations of that centre, $\lVert
#   x - \mu_{k(x)} \rVert \le 3\sigma$ ($0.06$ on the ring). The **high-quality fraction** is the
#   share of such samples: it measures sharpness. (For a 2-D Gaussian, $\lVert x - \mu\rVert^2 /
#   \sigma^2$ follows a $\chi^2$ distribution with 2 degrees of freedom, so even true data is high
#   quality with probability $1 - e^{-9/2} \approx 98.9\%$.)
# * A mode is **covered** if it is the nearest centre of at least one high-quality sample. **Modes
#   covered** counts them: it measures diversity.
# * The **reverse KL** compares the histogram $q_k$ of the high-quality samples over the modes with
#   the uniform histogram $u_k = 1/K$ of the data: $\mathrm{KL}(q \,\|\, u) = \sum_k q_k \log(q_k /
#   u_k) = \sum_k q_k \log(K q_k)$ (terms with $q_k = 0$ count 0). It is 0 when every mode gets the
#   same share and $\log K$ when all the samples sit on one mode. It is "reverse" because the
#   model's distribution comes first, as in the KL that a VAE's posterior minimises.
#
# `mode_metrics(samples, "ring")` computes all three. Before trusting it with a GAN, we calibrate it
# on sample sets whose answer we know: the data itself, data from only two of the eight modes (a
# collapsed generator), and data blurred to ten times the standard deviation (a diverse but blurry
# generator).

# %%
truth, labels = mg.data.ring(2500, seed=1)
two_modes = truth.numpy()[np.isin(labels.numpy(), [0, 3])]
centres = np.array(ring.modes)[labels.numpy()]
blurred = centres + 0.2 * np.random.default_rng(2).standard_normal((2500, 2))
print(f"{'sample set':24s} {'modes':>6s} {'high quality':>13s} {'reverse KL':>11s}")
for name, samples in [("the data", truth), ("only modes 0 and 3", two_modes),
                      ("blurred (std 0.2)", blurred)]:
    m = mode_metrics(samples, "ring")
    print(f"{name:24s} {m['modes_covered']:4d}/8 {m['high_quality_fraction']:13.1%} "
          f"{m['reverse_kl']:11.3f}")
print(f"expected: data {1 - np.exp(-4.5):.1%} high quality; "
      f"two modes KL = log 4 = {np.log(4):.3f}; "
      f"blurred {1 - np.exp(-0.06 ** 2 / (2 * 0.2 ** 2)):.1%} high quality")

# %% [markdown]
# Each number sees a different failure: the collapsed set keeps perfect quality but covers two modes
# with a reverse KL of $\log 4$; the blurred set covers every mode evenly but almost none of its
# samples are sharp. Now the GAN we trained, epoch by epoch, both the live generator and the
# moving average:

# %%
epoch_axis = [h["epoch"] for h in history["live"]]
fig, (ax_modes, ax_quality) = plt.subplots(1, 2, figsize=(8, 2.8))
for which, style in [("live", "-"), ("average", "--")]:
    label = "live generator" if which == "live" else f"moving average ({decay}), GAN.sample"
    ax_modes.plot(epoch_axis, [h["modes_covered"] for h in history[which]], style, label=label)
    ax_quality.plot(epoch_axis, [100 * h["high_quality_fraction"] for h in history[which]], style,
                    label=label)
ax_modes.set_ylim(-0.3, 8.6)
ax_modes.set_ylabel("modes covered (of 8)")
ax_quality.set_ylim(-3, 103)
ax_quality.set_ylabel("high-quality samples (%)")
for ax in (ax_modes, ax_quality):
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
ax_quality.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
fig.suptitle("The GAN's samples, measured after every epoch (2,500 samples each)", fontsize=9)
save(fig, "07_metrics.png")
for which in ("live", "average"):
    final = history[which][-1]
    print(f"after {epochs} epochs, {which:7s}: modes covered {final['modes_covered']}/8, "
          f"high-quality fraction {final['high_quality_fraction']:.1%}, "
          f"reverse KL {final['reverse_kl']:.3f}")

# %% [markdown]
# The two measures move at different times: the samples reach the blobs (modes covered) well before
# they become sharp (high quality). The live generator's numbers jump from epoch to epoch: that is
# the jitter of the game. The dashed curves of the moving average are smooth, trail the live ones by
# about a dozen epochs, as computed above, and then run at or above them: averaging the jitter away
# makes sharper samples, once the lag no longer matters. And the count of modes need not only grow:
# the generator can move its samples from one blob to another, and nothing in its loss asks it to
# keep every blob, only to fool the current discriminator. A mode lost late in training is mode
# collapse caught in the act.
#
# A single run says little about a method: GAN training is famously sensitive to the random seed. So
# we repeat it from a few seeds, and also train the same networks with the minimax generator loss
# (`MinimaxGAN` from the SGD experiment: only `generator_loss` is replaced), this time with the
# default Adam optimizers. The table reports the moving average's samples after the last epoch (what
# `GAN.sample` returns; after 150 epochs its lag no longer matters).

# %%
seeds = [1] if SMOKE else [1, 2, 3]
print(f"{'generator loss':15s} {'seed':>4s} {'modes':>6s} {'high quality':>13s} "
      f"{'reverse KL':>11s}")
for name, model_class in [("non-saturating", GAN), ("minimax", MinimaxGAN)]:
    for seed in seeds:
        _, seed_history, _ = train_gan(seed, epochs, model_class=model_class)
        m = seed_history["average"][-1]
        print(f"{name:15s} {seed:4d} {m['modes_covered']:4d}/8 {m['high_quality_fraction']:13.1%} "
              f"{m['reverse_kl']:11.3f}")

# %% [markdown]
# Read the table with the calibration in mind: a run that drops modes shows fewer than 8 covered and
# a reverse KL well above 0; blurry samples show a low high-quality fraction. The seeds differ more
# than one might hope: that is normal for GANs. With Adam, even the minimax loss trains on this easy
# problem, because Adam divides each step by the recent size of the gradients, so a uniformly small
# gradient still moves the weights, unlike the plain SGD of the race above. The saturation has not
# gone away; Adam compensates for it. The non-saturating loss remains the safer default, and it is
# the one `GAN` uses. For comparison, PacGAN reports an average of 6.3 of 8 modes and 98.2%
# high-quality samples for the plain GAN in its ring experiment. Tutorial 8 sets the GAN beside a
# VAE and the VAE-GAN on the same data, and tutorial 9 changes the game itself.
#
# ## What you learned
#
# * A GAN is a game: the discriminator minimises the cross-entropy
#   $L_D = \mathrm{BCE}(s(x), 1) + \mathrm{BCE}(s(G(z)), 0)$ of telling real from fake, and the
#   generator tries to make its points called real.
# * The minimax generator loss $\log(1 - D(G(z)))$ has gradient $-\sigma(s)$ with respect to the
#   discriminator's logit: it vanishes exactly when the discriminator confidently rejects the fakes,
#   early in training. The non-saturating loss $-\log D(G(z))$ has gradient $-(1 - \sigma(s))$,
#   large exactly then, with the same fixed point. With plain SGD from a confident discriminator,
#   the minimax generator stalls near its start; Adam's rescaling hides most of that.
# * A moving average of the generator's weights (`GAN.sample`) makes sharper samples late in
#   training, but it lags by about $1/(1 - d)$ steps and starts from the untrained weights: to watch
#   training, look at the live generator.
# * Each player has its own optimizer and learns only from its own loss; fakes are detached for the
#   discriminator's step.
# * Mode collapse is measured on mixtures with known centres: modes covered (diversity), the
#   high-quality fraction within $3\sigma$ (sharpness) and the reverse KL of the mode histogram
#   (balance), on 2,500 samples, as in VEEGAN and PacGAN.
#
# ## Exercises
#
# 1. Train on the 25-mode grid (`mg.data.grid`, with `mode_metrics(samples, "grid")`). How many
#    modes does the GAN cover, and how does that change with the number of epochs?
# 2. Give the discriminator two steps for every generator step (write your own loop from
#    `GAN.train_step`'s source). Does the minimax loss suffer more or less? Watch
#    $\mathbb{E}[D(G(z))]$ during training.
# 3. Make the networks narrower (`hidden=(16, 8)`) or the latent space one-dimensional
#    (`latent_dim=1`). Which metric reacts first, and why can a generator with a one-dimensional
#    input not cover eight separate blobs without putting some samples between them?

# %% [markdown]
# # 9. Gradients of gradients: a WGAN-GP critic on the ring
#
# Until now a gradient was the end of the line: we computed it, handed it to an optimizer, and threw
# it away. Some losses, though, are made *of* gradients. The best known is the **gradient penalty**
# of WGAN-GP (Gulrajani et al., 2017), which asks a critic network to keep the slope of its output
# with respect to its *input* close to 1. To train such a critic we need the derivative of that
# slope with respect to the critic's *weights*: a gradient of a gradient, computed by running
# backpropagation through a backward pass. This is called **double backpropagation**. This tutorial
# covers:
#
# 1. why a gradient can only be differentiated again when the backward pass was recorded as a graph
#    (`create_graph=True`), with small examples checked by hand and by `mg.gradgradcheck`;
# 2. the silent bug you get when you forget `create_graph`;
# 3. the Wasserstein GAN's critic and generator losses, with their signs spelled out;
# 4. a WGAN-GP trained on the 2-D ring of eight Gaussians, its training curves, its samples, and its
#    mode coverage measured with `mg.metrics.mode_metrics`.

# %%
import os
import sys
import time

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


mg.manual_seed(0)

# %% [markdown]
# ## A gradient is a number, unless the backward pass is recorded
#
# Take $y = x^3$ at $x = 2$. By hand, $dy/dx = 3x^2 = 12$ and $d^2y/dx^2 = 6x = 12$.
#
# A normal backward pass computes $dy/dx$ from *arrays*: it multiplies numbers together and returns
# a result with no history. That is all an optimizer needs, and it is cheap. But a number with no
# history cannot be differentiated: as far as autograd can tell, $12$ does not depend on $x$ at all.
# Asked for its derivative, `mg.grad` refuses rather than answer zero:

# %%
x = mg.Tensor(2.0, requires_grad=True, dtype="float64")
(dy,) = mg.grad(x**3, x)
print("dy/dx =", dy.item(), "| requires_grad:", dy.requires_grad, "| creator:", dy.creator)
try:
    mg.grad(dy, x)
except RuntimeError as error:
    print("differentiating it again:", error)

# %% [markdown]
# Every backward rule in minigen is written with minigen's own tensor operations (tutorial 3). For
# $y = x^c$ the rule is `gy * c * x ** (c - 1)`: two multiplications and a power, each an ordinary
# op. With `create_graph=True` the backward pass runs with recording switched on, so these ops add
# nodes to the graph exactly as a forward pass would. The gradient comes back as a tensor that
# *remembers how it was computed from $x$*, and backpropagating through it gives the second
# derivative. Repeating gives the third, $d^3y/dx^3 = 6$:

# %%
(dy,) = mg.grad(x**3, x, create_graph=True)
print("dy/dx =", dy.item(), "| requires_grad:", dy.requires_grad,
      "| creator:", type(dy.creator).__name__)
(d2y,) = mg.grad(dy, x, create_graph=True)
(d3y,) = mg.grad(d2y, x)
print(f"d2y/dx2 = {d2y.item()} (by hand 6x = 12), d3y/dx3 = {d3y.item()} (by hand 6)")

# %% [markdown]
# The same works elementwise on a whole tensor. For $f = \tanh$ the derivatives are
#
# $$f' = 1 - t^2, \qquad f'' = -2t\,(1 - t^2), \qquad f''' = (6t^2 - 2)(1 - t^2), \qquad
#   t = \tanh x .$$
#
# Because $f(x)_i$ depends on $x_i$ alone, the gradient of $\sum_i f(x)_i$ is the vector of
# $f'(x_i)$ (the trick from tutorial 4's activation plot), and the gradient of $\sum_i f'(x_i)$ is
# the vector of $f''(x_i)$, and so on:

# %%
xs = mg.Tensor(np.linspace(-3, 3, 121), requires_grad=True)
(d1,) = mg.grad(mg.tanh(xs).sum(), xs, create_graph=True)
(d2,) = mg.grad(d1.sum(), xs, create_graph=True)
(d3,) = mg.grad(d2.sum(), xs)
t = np.tanh(xs.numpy())
exact = {"f'": 1 - t**2, "f''": -2 * t * (1 - t**2), "f'''": (6 * t**2 - 2) * (1 - t**2)}
for (name, formula), found in zip(exact.items(), (d1, d2, d3)):
    print(f"{name:4s} at 121 points in [-3, 3]: largest difference from the formula "
          f"{np.abs(found.numpy() - formula).max():.1e}")

# %% [markdown]
# (The grid comes from a float64 NumPy array, so the tensor is float64 and the differences are at
# float64's precision.)
#
# ## A penalty on a gradient, by hand
#
# The gradient penalty differentiates with respect to two different things: the *input* $x$ first,
# then the *weights*. Take the simplest possible critic, one dense layer with no activation,
# $D(x) = x \cdot w + b$ with $x, w \in \mathbb{R}^2$. Its gradient with respect to the input is
# $\nabla_x D = w$, whatever $x$ is, so the penalty is
#
# $$P(w) = \bigl(\lVert \nabla_x D \rVert_2 - 1\bigr)^2 = \bigl(\lVert w \rVert_2 - 1\bigr)^2,
#   \qquad \frac{\partial P}{\partial w} = 2\,\bigl(\lVert w \rVert_2 - 1\bigr)\,
#   \frac{w}{\lVert w \rVert_2}, \qquad \frac{\partial P}{\partial b} = 0 .$$
#
# With $w = (3, 4)$, $\lVert w \rVert = 5$ and $\partial P / \partial w = 2 \cdot 4 \cdot (0.6, 0.8)
# = (4.8, 6.4)$. The code mirrors the two steps: `mg.grad(..., create_graph=True)` for
# $\nabla_x D$, then an ordinary `backward()` of the penalty, which reaches $w$ *through* the
# recorded backward pass of the dense layer ($\nabla_x D = g\, W^\top$ in its backward rule):

# %%
linear = mg.nn.Dense(2, 1, dtype="float64")
linear.weight.data[:] = [[3.0], [4.0]]                          # w = (3, 4), shape (in, out)
points = mg.Tensor([[0.5, -1.0], [2.0, 0.3]], dtype="float64", requires_grad=True)

(grad_x,) = mg.grad(linear(points).sum(), points, create_graph=True)   # one row per point: w
norm = mg.sqrt((grad_x * grad_x).sum(axis=1))
penalty = ((norm - 1) ** 2).mean()
penalty.backward()
print("grad_x D at each point:", grad_x.numpy().tolist())
print("penalty:", penalty.item(), "(by hand (5 - 1)^2 = 16)")
print("dP/dw:", linear.weight.grad.numpy().ravel(), "(by hand [4.8, 6.4])")
print("dP/db:", linear.bias.grad,
      "(by hand 0: the penalty never reaches b, so no gradient is stored)")

# %% [markdown]
# **Seeing it.** `mg.draw_graph(t)` draws the graph behind a tensor, one box per tensor: the op
# that made it, its shape and, with `show="grad"`, the gradient of `t` with respect to it (computed
# by stepping through the backward sweep, without touching any `.grad`). The penalty's graph holds
# no forward pass of the critic at all: the `matmul` is the dense layer's backward rule,
# $\nabla_x D = g\, W^\top$, recorded because of `create_graph=True`, with the constant $g$ (the
# ones that `sum`'s backward hands down) and the transposed weight as inputs. The gradient that
# reaches $w$ through it is the $(4.8, 6.4)$ found by hand:

# %%
(grad_x,) = mg.grad(linear(points).sum(), points, create_graph=True)
norm = mg.sqrt((grad_x * grad_x).sum(axis=1))
penalty = ((norm - 1) ** 2).mean()
fig = mg.draw_graph(penalty, show="grad", names={"w": linear.weight})
save(fig, "09_penalty_graph.png")
fig

# %% [markdown]
# Forget `create_graph=True` and `grad_x` is a plain constant again: the penalty built from it does
# not depend on $w$ (`requires_grad` is False). On its own, `penalty.backward()` would at least
# raise an error; but in a real loss the penalty is *added* to terms that do depend on the weights,
# the sum backpropagates without complaint, and the penalty contributes nothing. The critic then
# trains without its constraint, and nothing says so:

# %%
(grad_x_constant,) = mg.grad(linear(points).sum(), points)            # no create_graph
norm = mg.sqrt((grad_x_constant * grad_x_constant).sum(axis=1))
penalty_without_graph = ((norm - 1) ** 2).mean()
print("penalty:", penalty_without_graph.item(), "| requires_grad:",
      penalty_without_graph.requires_grad, "(it cannot train anything)")

# %% [markdown]
# ## Checking second derivatives numerically
#
# Hand checks do not scale, but tutorial 3's numerical checks do. `mg.gradgradcheck(fn, inputs)`
# computes the first derivative of `fn` with `create_graph=True` and compares *its* derivative with
# central differences, in float64. Here it checks the second derivatives of a small smooth critic
# (softplus units, since a ReLU network's second derivative with respect to its input is zero almost
# everywhere and would make a weak test):

# %%
def make_critic(hidden=64, activation="relu", dtype=None):
    """The critic: 2-D point -> one real-valued score (no sigmoid: it is not a probability)."""
    return mg.nn.Sequential(
        mg.nn.Dense(2, hidden, activation=activation, dtype=dtype),
        mg.nn.Dense(hidden, hidden, activation=activation, dtype=dtype),
        mg.nn.Dense(hidden, 1, dtype=dtype),
    )


smooth_critic = make_critic(hidden=6, activation="softplus", dtype="float64")
x_check = mg.Tensor(np.random.default_rng(1).normal(size=(4, 2)), requires_grad=True)
print("gradgradcheck, second derivatives in x:", mg.gradgradcheck(smooth_critic, [x_check]))

# %% [markdown]
# What WGAN-GP actually backpropagates is the penalty as a function of the *weights*. That is a
# first-order check (`mg.gradcheck`) of a function whose forward pass itself contains a backward
# pass. We write the penalty once, as the training below will use it, and check it on a small ReLU
# critic of the real architecture. Note that its second derivative in $x$ is zero almost everywhere
# (the input gradient of a ReLU network is $W_1\,\mathrm{diag}(\mathbb{1}_{h_1 > 0})\,W_2 \cdots$,
# constant between kinks), yet the derivative with respect to the weights is not: the input gradient
# is a product of the weight matrices.
#
# Two details in the code: the points are detached and made a fresh leaf, so that the gradient is
# taken with respect to them and nothing else; and $\lVert g \rVert_2$ is computed as
# $\sqrt{\sum_j g_j^2 + \delta}$ with $\delta = 10^{-12}$, because the derivative of $\sqrt{u}$ is
# infinite at $u = 0$ (a point where every ReLU is off has $g = 0$).

# %%
def gradient_penalty(critic, x_hat):
    """P = mean over the batch of (||grad_x D(x_hat)||_2 - 1)^2, differentiable in the weights."""
    x_hat = x_hat.detach().requires_grad_()               # a fresh leaf: only x_hat is varied
    (g,) = mg.grad(critic(x_hat).sum(), x_hat, create_graph=True)   # (N, 2): one gradient per point
    norm = mg.sqrt((g * g).sum(axis=1) + 1e-12)           # (N,)
    return ((norm - 1.0) ** 2).mean()


small_critic = make_critic(hidden=8, dtype="float64")
x_fixed = mg.Tensor(np.random.default_rng(2).normal(size=(16, 2)))
print("gradcheck, penalty in the weights:",
      mg.gradcheck(lambda *weights: gradient_penalty(small_critic, x_fixed),
                   small_critic.parameters()))

# %% [markdown]
# (`mg.gradcheck` nudges each weight in place, so the function may ignore its arguments and simply
# use the critic that holds them.)
#
# ## The Wasserstein GAN and its gradient penalty
#
# A GAN trains a generator $G$ that turns noise $z \sim \mathcal{N}(0, I)$ into samples, against a
# second network that tells real samples from generated ones (tutorial 7). The Wasserstein GAN
# (Arjovsky et al., 2017) replaces the classifier by a **critic** $D$ that outputs an unbounded real
# *score*, and measures the gap between the data distribution $P_r$ and the generator's $P_g$ with
# the Wasserstein-1 distance in its dual form (Kantorovich and Rubinstein):
#
# $$W(P_r, P_g) = \sup_{\lVert D \rVert_L \le 1}\; \mathbb{E}_{x \sim P_r}[D(x)]
#   - \mathbb{E}_{\tilde x \sim P_g}[D(\tilde x)],$$
#
# the best score gap achievable by a *1-Lipschitz* critic, one whose output never changes faster
# than its input: $|D(x) - D(y)| \le \lVert x - y \rVert$. Without that constraint the supremum is
# infinite: multiply $D$ by 100 and the gap grows a hundredfold.
#
# **WGAN-GP** (Gulrajani et al., 2017, "Improved Training of Wasserstein GANs") enforces the
# constraint softly. A differentiable $D$ is 1-Lipschitz exactly when $\lVert \nabla_x D \rVert_2
# \le 1$ everywhere, and the paper shows that the optimal critic has gradient norm exactly 1 on the
# straight lines joining the real and generated points that an optimal transport plan pairs up (its
# Proposition 1). Those pairs are unknown, so it penalises the gradient norm's distance from 1 at
# random points $\hat x$ on lines between *random* pairs of real and generated points:
#
# $$\hat x = \epsilon\, x + (1 - \epsilon)\, \tilde x, \qquad x \sim P_r,\; \tilde x \sim P_g,\;
#   \epsilon \sim U[0, 1] \text{ (one per pair)},$$
#
# $$L_D = \underbrace{\mathbb{E}[D(\tilde x)] - \mathbb{E}[D(x)]}_{-\text{(score gap)}}
#   + \lambda\, \mathbb{E}_{\hat x}\bigl[(\lVert \nabla_{\hat x} D(\hat x) \rVert_2 - 1)^2\bigr],
#   \qquad L_G = -\mathbb{E}_z[D(G(z))], \qquad \lambda = 10 .$$
#
# **The signs, precisely.** The critic gives *high scores to real data*. It *minimises* $L_D$, which
# is the same as maximising the score gap $\mathbb{E}[D(x)] - \mathbb{E}[D(\tilde x)]$ (its estimate
# of $W$) while paying $\lambda$ times the penalty. The generator *minimises* $L_G =
# -\mathbb{E}[D(G(z))]$: it moves its samples towards higher scores, which shrinks the gap, and only
# this term depends on $G$ (the real-data term is a constant for it). Both are the paper's Algorithm
# 1. There is no sigmoid and no logarithm anywhere: unlike the GAN of tutorial 7, the critic is not
# a classifier. Some code flips every sign (the critic scores *fakes* high); that is the same game
# with $D$ replaced by $-D$. What must never happen is mixing the two conventions between the
# critic's loss and the generator's.
#
# Two more consequences, both visible in the curves below. Adding a constant to $D$ changes neither
# loss's gradient, so the *value* of $L_G$ drifts and means nothing on its own; the score gap is the
# meaningful number. And the critic must be trained close to its optimum for the gap to estimate
# $W$, so it gets $n_\text{critic} = 5$ steps for every generator step. The critic uses no batch
# normalisation (the penalty is defined per sample, and batch norm makes each output depend on the
# whole batch; the paper drops it for this reason).
#
# The optimizer is Adam with $\beta_2 = 0.9$, as in the paper. The paper's defaults are a learning
# rate of $10^{-4}$ and $\beta_1 = 0$; on this small 2-D problem we use $3 \times 10^{-4}$ and
# $\beta_1 = 0.5$, which reach a good generator in a few thousand steps (exercise 1 tries $\beta_1 =
# 0$).
#
# ## Data and networks
#
# The data is `mg.data.ring`: eight Gaussians with standard deviation 0.02 whose centres sit on a
# circle of radius 2. The generator maps a 2-D standard normal $z$ to a 2-D point through two hidden
# ReLU layers of 64 units; the critic (`make_critic` above) maps a point to a score through the same
# shape of network.

# %%
def make_generator(latent=2, hidden=64):
    """The generator: z ~ N(0, I) in R^latent -> a 2-D point."""
    return mg.nn.Sequential(
        mg.nn.Dense(latent, hidden, activation="relu"),
        mg.nn.Dense(hidden, hidden, activation="relu"),
        mg.nn.Dense(hidden, 2),
    )


LATENT = 2
BATCH = 64 if SMOKE else 256      # examples per mini-batch (fewer in the quick test runs)
data, _ = mg.data.ring(10_000, seed=0)
loader = mg.data.DataLoader(data, batch_size=BATCH, shuffle=True, drop_last=True, seed=0)


def real_batches(loader):
    """An endless stream of real mini-batches: one epoch after another, reshuffled each time."""
    while True:
        yield from loader


mg.manual_seed(0)
generator, critic = make_generator(LATENT), make_critic()
print(generator)
print(critic)

# %% [markdown]
# ## Training
#
# Each iteration of the training loop makes $n_\text{critic}$ critic steps, then one generator step
# (so we count iterations in generator steps):
#
# * **critic step**: a real batch $x$ and a fake batch $\tilde x = G(z)$ (made under `no_grad`: the
#   critic's loss must not train $G$, and no graph through $G$ is needed), the interpolates $\hat
#   x$, and one Adam step on $L_D$. Its `backward()` goes through the score terms and, thanks to
#   `create_graph`, through the penalty's recorded backward pass;
# * **generator step**: fresh $z$, one Adam step on $L_G = -\text{mean}\, D(G(z))$. This backward
#   pass also fills the critic's `.grad`, which the critic's `zero_grad()` clears before its next
#   step.
#
# We record the score gap, the penalty and $L_G$ at every step, and every few hundred steps measure
# the mode coverage of 2,500 samples drawn from a fixed set of $z$ (the same $z$ each time, so that
# snapshots are comparable).

# %%
def critic_step(critic, generator, critic_opt, real, lam):
    n = real.shape[0]
    with mg.no_grad():
        fake = generator(mg.randn(n, LATENT))
    eps = mg.rand(n, 1)                                    # one epsilon per pair (both coordinates)
    x_hat = eps * real + (1.0 - eps) * fake
    score_gap = critic(real).mean() - critic(fake).mean()  # E[D(x)] - E[D(G(z))]: estimates W
    penalty = gradient_penalty(critic, x_hat)
    loss = -score_gap + lam * penalty                      # L_D = E[D(fake)] - E[D(real)] + lam P
    critic_opt.zero_grad()
    loss.backward()
    critic_opt.step()
    return score_gap.item(), penalty.item()


def generator_step(critic, generator, generator_opt, n):
    loss = -critic(generator(mg.randn(n, LATENT))).mean()  # L_G = -E[D(G(z))]
    generator_opt.zero_grad()
    loss.backward()
    generator_opt.step()
    return loss.item()


def train_wgan(steps, lam=10.0, n_critic=5, lr=3e-4, betas=(0.5, 0.9), seed=0, eval_every=None,
               z_eval=None):
    mg.manual_seed(seed)
    generator, critic = make_generator(LATENT), make_critic()
    generator_opt = mg.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    critic_opt = mg.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    batches = real_batches(loader)
    history = {"score_gap": [], "penalty": [], "generator_loss": [], "eval_step": [], "modes": [],
               "high_quality": [], "snapshots": {}}
    for step in range(1, steps + 1):
        for _ in range(n_critic):
            gap, penalty = critic_step(critic, generator, critic_opt, next(batches), lam)
        history["score_gap"].append(gap)
        history["penalty"].append(penalty)
        history["generator_loss"].append(generator_step(critic, generator, generator_opt, BATCH))
        if eval_every and (step % eval_every == 0 or step == 1):
            with mg.no_grad():
                samples = generator(z_eval)
            metrics = mg.metrics.mode_metrics(samples, "ring")
            history["eval_step"].append(step)
            history["modes"].append(metrics["modes_covered"])
            history["high_quality"].append(metrics["high_quality_fraction"])
            history["snapshots"][step] = samples.numpy()
    return generator, critic, history


STEPS = 60 if SMOKE else 5000           # generator steps (each with 5 critic steps)
EVAL_EVERY = 20 if SMOKE else 250
z_eval = mg.randn(2500, LATENT)         # fixed noise for comparable snapshots
start = time.perf_counter()
generator, critic, history = train_wgan(STEPS, eval_every=EVAL_EVERY, z_eval=z_eval)
print(f"{STEPS} generator steps ({5 * STEPS} critic steps) in {time.perf_counter() - start:.0f} s")
print(f"last step: score gap {history['score_gap'][-1]:.3f}, penalty {history['penalty'][-1]:.4f}, "
      f"L_G {history['generator_loss'][-1]:.3f}")

# %% [markdown]
# ## Training curves
#
# The raw values jump from step to step, because each comes from one random batch, so each curve
# shows the median of each block of 50 consecutive steps.

# %%
def block_medians(values, block):
    """The median of each block of `block` consecutive values, and the last step of each block."""
    values = np.asarray(values, dtype=float)
    count = len(values) // block
    blocks = values[:count * block].reshape(count, block)
    return np.median(blocks, axis=1), block * np.arange(1, count + 1)


block = 5 if SMOKE else 50
fig, axes = plt.subplots(2, 2, figsize=(7, 4.2))
panels = [("score_gap", "score gap  E[D(x)] - E[D(G(z))]  (estimates W)"),
          ("penalty", "gradient penalty  E[(||grad D|| - 1)^2]"),
          ("generator_loss", "generator loss  L_G = -E[D(G(z))]")]
for ax, (key, title) in zip(axes.flat, panels):
    medians, at = block_medians(history[key], block)
    ax.plot(at, medians, color="C0", lw=1.2)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("generator step")
axes[0, 1].set_yscale("log")
ax = axes[1, 1]
ax.plot(history["eval_step"], history["modes"], "o-", ms=3, color="C2",
        label="modes covered (of 8)")
ax.set_ylim(-0.3, 8.5)
ax.set_xlabel("generator step")
ax2 = ax.twinx()
ax2.plot(history["eval_step"], history["high_quality"], "s-", ms=3, color="C3",
         label="high-quality fraction")
ax2.set_ylim(0, 1)
ax.set_title("mode coverage of 2,500 samples", fontsize=8)
lines = ax.get_lines() + ax2.get_lines()
ax.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=7)
fig.tight_layout()
save(fig, "09_training_curves.png")

# %% [markdown]
# How to read them:
#
# * The **score gap**, the critic's estimate of $W(P_r, P_g)$, first rises: the critic learns to
#   tell the generator's blob near the origin from the ring, about 2 away. After some oscillation it
#   then falls steadily towards zero as the generator's samples settle onto the ring. Unlike the
#   losses of the GAN in tutorial 7, this number tracks sample quality: lower is better.
# * The **penalty** drops quickly and stays small: the critic's slopes stay close to 1 between the
#   real and fake points, which is what the Lipschitz constraint asks for.
# * The **generator loss** drifts: its level depends on an arbitrary offset of $D$, as explained
#   above. Do not read progress from it.
# * The **mode coverage** (defined in the next section) reaches all eight modes early; the fraction
#   of sharp, high-quality samples keeps growing long after, as the generator learns how narrow each
#   mode is.
#
# ## Samples over the data
#
# Snapshots of the same 2,500 noise vectors pushed through the generator at four moments of
# training. The crosses mark the eight mode centres; the real data sits on them (a standard
# deviation of 0.02 is smaller than the crosses).

# %%
modes = np.array(mg.data.toy_modes("ring").modes)
evaluated = history["eval_step"]
shown = [evaluated[round(f * (len(evaluated) - 1))] for f in (0.0, 0.15, 0.3, 1.0)]
fig, axes = plt.subplots(1, 4, figsize=(8.6, 2.5), sharex=True, sharey=True)
for ax, step in zip(axes, shown):
    samples = history["snapshots"][step]
    ax.scatter(samples[:, 0], samples[:, 1], s=1, color="C0")
    ax.scatter(modes[:, 0], modes[:, 1], marker="x", s=20, color="black", lw=0.8)
    ax.set_title(f"step {step}", fontsize=8)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
save(fig, "09_samples.png")

# %% [markdown]
# At first the samples are a small blob near the origin. The generator then spreads them into a wide
# cloud over the ring, and for a while they trace the octagon *between* the modes: the generator is
# a continuous map of a connected cloud of $z$ values, so to reach all eight modes it must pass
# through the gaps. Later the mass gathers at the modes and only thin trails remain between them.
#
# ## Mode coverage, measured
#
# `mg.metrics.mode_metrics(samples, "ring")` follows the protocol of VEEGAN and PacGAN (Srivastava
# et al., 2017; Lin et al., 2018): a sample is of **high quality** when it lies within three
# standard deviations ($3 \times 0.02 = 0.06$) of its nearest mode centre, and a mode is **covered**
# when at least one high-quality sample has it as its nearest mode. The **reverse KL** compares how
# the high-quality samples spread over the modes with the uniform spread: 0 is perfectly even, $\log
# 8 \approx 2.08$ is everything on one mode. As a reference we score real data too: even real points
# fall outside three standard deviations now and then (in two dimensions, a fraction $e^{-9/2}
# \approx 1.1\%$ of them).

# %%
with mg.no_grad():
    final_samples = generator(z_eval)
reference, _ = mg.data.ring(2500, seed=1)
for name, points in [("real data (reference)", reference), ("WGAN-GP generator", final_samples)]:
    m = mg.metrics.mode_metrics(points, "ring")
    print(f"{name:22s} modes covered {m['modes_covered']}/{m['modes_total']}, "
          f"high-quality fraction {m['high_quality_fraction']:.1%}, "
          f"reverse KL {m['reverse_kl']:.3f}")

# %% [markdown]
# The generator covers every mode, with its high-quality samples spread evenly across them (a
# reverse KL near 0). Its high-quality fraction is lower than real data's: the modes are very narrow
# (a standard deviation of 1% of the ring's radius), and some samples still sit between modes or a
# little off-centre, which the metric counts as misses. The smooth map from a 2-D Gaussian to eight
# separate dots must stretch a little mass across the gaps; longer training and a wider generator
# shrink it.
#
# ## What the critic learned
#
# Here is the trained critic over the plane: its score $D(x)$ (left) and the norm of its input
# gradient $\lVert \nabla_x D(x) \rVert_2$ (right), computed for a whole grid of points with one
# call of `mg.grad`. The penalty only constrains the slope *where the interpolates fall*, between
# the generator's samples and the data.

# %%
side = 60 if SMOKE else 80
gx, gy = np.meshgrid(np.linspace(-3, 3, side), np.linspace(-3, 3, side))
grid_points = mg.Tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype="float32",
                        requires_grad=True)
scores = critic(grid_points)
(slopes,) = mg.grad(scores.sum(), grid_points)
slope_norm = np.sqrt((slopes.numpy() ** 2).sum(axis=1)).reshape(side, side)
scores = scores.numpy().reshape(side, side)

fig, (ax_d, ax_g) = plt.subplots(1, 2, figsize=(8.6, 3.5))
filled = ax_d.contourf(gx, gy, scores, levels=12, cmap="viridis")
fig.colorbar(filled, ax=ax_d, label="D(x)")
ax_d.set_title("critic score D(x) (higher = judged real)", fontsize=8)
image = ax_g.imshow(slope_norm, extent=(-3, 3, -3, 3), origin="lower", cmap="magma",
                    vmin=0, vmax=2, interpolation="nearest")
fig.colorbar(image, ax=ax_g, label="||grad_x D(x)||")
ax_g.set_title("slope of the critic ||grad_x D(x)||_2", fontsize=8)
for ax in (ax_d, ax_g):
    ax.scatter(final_samples.numpy()[:300, 0], final_samples.numpy()[:300, 1], s=6, color="white",
               edgecolors="black", linewidths=0.4)        # visible on light and dark backgrounds
    ax.scatter(modes[:, 0], modes[:, 1], marker="x", s=20, color="red", lw=0.8)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
save(fig, "09_critic.png")
print(f"slope on the grid: median {np.median(slope_norm):.2f}, "
      f"10th-90th percentile {np.percentile(slope_norm, 10):.2f}-"
      f"{np.percentile(slope_norm, 90):.2f}")

# %% [markdown]
# The critic ranks the plane sensibly: its score peaks at the eight modes and is lowest in the
# centre and in the gaps between neighbouring modes, where the generator still puts a few samples.
# Those are the directions in which it pushes the generator. Its slope is close to 1 almost
# everywhere in the window (the printed percentiles): the surface is made of ridges and slopes of
# steepness about one, as the theory's optimal critic would be along the lines between fake and real
# points. Far from the data nothing is penalised, and the slope there is simply where the network's
# linear pieces happen to extend.
#
# ## Without the penalty
#
# What does the penalty buy? The same training with $\lambda = 0$ leaves the critic unconstrained:
# its scores and slopes are free to grow, and the score gap no longer estimates anything. We run
# both for a few hundred steps and watch the score gap and the mean slope at the interpolates
# (measured with a plain `mg.grad`, since nothing is trained through it).

# %%
def mean_slope(critic, generator, real):
    n = real.shape[0]
    with mg.no_grad():
        fake = generator(mg.randn(n, LATENT))
    eps = mg.rand(n, 1)
    x_hat = (eps * real + (1.0 - eps) * fake).detach().requires_grad_()
    (g,) = mg.grad(critic(x_hat).sum(), x_hat)
    return float(np.sqrt((g.numpy() ** 2).sum(axis=1)).mean())


SHORT = 30 if SMOKE else 400
comparison = {}
for lam in (10.0, 0.0):
    mg.manual_seed(1)
    gen, crit = make_generator(LATENT), make_critic()
    gen_opt = mg.optim.Adam(gen.parameters(), lr=3e-4, betas=(0.5, 0.9))
    crit_opt = mg.optim.Adam(crit.parameters(), lr=3e-4, betas=(0.5, 0.9))
    batches = real_batches(loader)
    gaps, slopes_seen = [], []
    for step in range(SHORT):
        for _ in range(5):
            if lam > 0:
                gap, _ = critic_step(crit, gen, crit_opt, next(batches), lam)
            else:   # the same step without the penalty term (and no double backprop)
                real = next(batches)
                with mg.no_grad():
                    fake = gen(mg.randn(BATCH, LATENT))
                score_gap = crit(real).mean() - crit(fake).mean()
                crit_opt.zero_grad()
                (-score_gap).backward()
                crit_opt.step()
                gap = score_gap.item()
        generator_step(crit, gen, gen_opt, BATCH)
        gaps.append(gap)
        slopes_seen.append(mean_slope(crit, gen, next(batches)))
    comparison[lam] = (gaps, slopes_seen)
    print(f"lambda = {lam:4.1f}: after {SHORT} steps, score gap {gaps[-1]:7.3f}, "
          f"largest mean slope seen {max(slopes_seen):6.2f}")

fig, (ax_w, ax_s) = plt.subplots(1, 2, figsize=(7, 2.4))
for lam, color in [(10.0, "C0"), (0.0, "C3")]:
    gaps, slopes_seen = comparison[lam]
    label = f"lambda = {lam:g}" + (" (no penalty)" if lam == 0 else "")
    ax_w.plot(np.arange(1, SHORT + 1), gaps, color=color, lw=1, label=label)
    ax_s.plot(np.arange(1, SHORT + 1), slopes_seen, color=color, lw=1, label=label)
ax_w.set_title("score gap E[D(x)] - E[D(G(z))]", fontsize=8)
ax_s.set_title("mean slope ||grad D|| at the interpolates", fontsize=8)
ax_s.axhline(1, color="gray", lw=0.5, ls="--")
for ax in (ax_w, ax_s):
    ax.set_xlabel("generator step")
ax_w.legend(fontsize=7, loc="upper left")      # one legend, where no curve runs
save(fig, "09_no_penalty.png")

# %% [markdown]
# With the penalty, the slope stays near 1 and the score gap stays of the order of the distance
# between the two distributions (a few units at most on this ring of radius 2). Without it nothing
# stops the critic from scaling itself up: its slopes grow to many times 1, and the score gap climbs
# far beyond any distance on this plane, dips, and climbs again. It then measures how steep the
# critic has become, not how far apart the distributions are, and the gradients it hands the
# generator grow and shrink with it.
#
# (The original WGAN enforced the constraint by clipping every weight to a small interval instead;
# Gulrajani et al. show that clipping biases the critic towards overly simple functions and makes
# training sensitive to the clipping range, which is what the penalty fixes.)
#
# ## What you learned
#
# * A gradient computed by a plain backward pass is a constant. With `create_graph=True`, minigen
#   records the backward pass itself (its rules are ordinary tensor operations), so the gradient can
#   be differentiated again: second, third, any order.
# * Forgetting `create_graph` does not raise an error inside a larger loss: the term built from the
#   gradient silently contributes nothing. Check `requires_grad` on such a term, and check it with
#   `mg.gradcheck` / `mg.gradgradcheck` in float64.
# * The Wasserstein critic scores real data high and minimises
#   $L_D = \mathbb{E}[D(\tilde x)] - \mathbb{E}[D(x)] + \lambda\,\mathbb{E}[(\lVert \nabla D(\hat x)
#   \rVert_2 - 1)^2]$ on random interpolates $\hat x$; the generator minimises
#   $L_G = -\mathbb{E}[D(G(z))]$. The score gap estimates the Wasserstein distance and tracks sample
#   quality; the level of the generator loss means nothing.
# * With $\lambda = 10$, five critic steps per generator step and Adam with $\beta_2 = 0.9$, a small
#   WGAN-GP covers all eight modes of the ring, as `mg.metrics.mode_metrics` measures.
#
# ## Exercises
#
# 1. Train with the paper's exact optimizer settings (learning rate $10^{-4}$, betas $(0, 0.9)$) and
#    with $n_\text{critic} = 1$. How do the score gap and the mode coverage change after the same
#    number of generator steps?
# 2. Replace the two-sided penalty by a one-sided one, $\max(0, \lVert g \rVert - 1)^2$ (use
#    `mg.relu`), which only punishes slopes above 1. Does the critic's slope map change? Does the
#    generator still cover all modes?
# 3. Run the same code on `mg.data.grid` (25 modes, `mode_metrics(samples, "grid")`). How many modes
#    does the generator cover, and does a wider generator (128 hidden units) help?

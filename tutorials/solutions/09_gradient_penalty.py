# %% [markdown]
# # Solutions: 9. Gradients of gradients: a WGAN-GP critic on the ring
#
# Worked solutions to the exercises of [tutorial 9](../09_gradient_penalty.py). Try each exercise
# before reading its solution. The runs are shorter than the tutorial's (1,500 generator steps
# instead of 5,000) to keep this file quick; the comparisons are made at equal numbers of generator
# steps, and GAN runs are noisy, so read the numbers as tendencies.

# %%
import os

import numpy as np

import minigen as mg
import minigen.data  # noqa: F401  (makes mg.data available)

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
mg.backend.set_num_threads(1)
STEPS = 40 if SMOKE else 1500
BATCH = 64 if SMOKE else 256


def mlp(sizes):
    layers = [mg.nn.Dense(a, b, activation="relu") for a, b in zip(sizes[:-2], sizes[1:-1])]
    return mg.nn.Sequential(*layers, mg.nn.Dense(sizes[-2], sizes[-1]))


def penalty(critic, x_hat, one_sided=False):
    """The tutorial's gradient penalty; one-sided: only slopes above 1 are punished."""
    x_hat = x_hat.detach().requires_grad_()
    (g,) = mg.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norm = mg.sqrt((g * g).sum(axis=1) + 1e-12)
    excess = mg.relu(norm - 1.0) if one_sided else norm - 1.0
    return (excess ** 2).mean()


def train(toy="ring", steps=STEPS, n_critic=5, lr=3e-4, betas=(0.5, 0.9), one_sided=False,
          hidden=64, lam=10.0, seed=0):
    """WGAN-GP as in the tutorial; returns the generator, the critic and the last score gaps."""
    mg.manual_seed(seed)
    data, _ = (mg.data.ring if toy == "ring" else mg.data.grid)(10_000, seed=0)
    loader = mg.data.DataLoader(data, batch_size=BATCH, shuffle=True, drop_last=True, seed=seed)
    generator, critic = mlp([2, hidden, hidden, 2]), mlp([2, 64, 64, 1])
    g_opt = mg.optim.Adam(generator.parameters(), lr=lr, betas=betas)
    c_opt = mg.optim.Adam(critic.parameters(), lr=lr, betas=betas)
    batches = (batch for _ in iter(int, 1) for batch in loader)       # endless epochs
    gaps = []
    for _ in range(steps):
        for _ in range(n_critic):
            real = next(batches)
            with mg.no_grad():
                fake = generator(mg.randn(len(real), 2))
            eps = mg.rand(len(real), 1)
            gap = critic(real).mean() - critic(fake).mean()
            loss = -gap + lam * penalty(critic, eps * real + (1.0 - eps) * fake, one_sided)
            c_opt.zero_grad()
            loss.backward()
            c_opt.step()
        gaps.append(gap.item())
        g_opt.zero_grad()
        (-critic(generator(mg.randn(BATCH, 2))).mean()).backward()
        g_opt.step()
    return generator, critic, gaps


def report(name, generator, critic, gaps, toy="ring"):
    mg.manual_seed(123)
    with mg.no_grad():
        samples = generator(mg.randn(2500, 2))
    m = mg.metrics.mode_metrics(samples, toy)
    total = len(mg.data.toy_modes(toy).modes)
    x = samples.detach().requires_grad_()
    (g,) = mg.grad(critic(x).sum(), x)
    slopes = np.linalg.norm(g.numpy(), axis=1)
    print(f"{name:34s} score gap {np.median(gaps[-100:]):6.3f} | modes {m['modes_covered']:2d}/"
          f"{total} | high quality {m['high_quality_fraction']:6.1%} | "
          "critic slope at the samples: "
          f"median {np.median(slopes):.2f}, 90% {np.quantile(slopes, 0.9):.2f}")


# %% [markdown]
# ## Exercise 1: the paper's optimizer settings, and $n_\text{critic} = 1$
#
# Gulrajani et al. use a learning rate of $10^{-4}$ and $\beta = (0, 0.9)$. A smaller rate moves
# both networks more slowly, so after the same number of generator steps the samples are less far
# along (fewer modes covered or fewer sharp samples), although the run is steadier. With
# $n_\text{critic} = 1$ the critic is no longer trained close to its optimum before each generator
# step: the score gap is then a poor estimate of the Wasserstein distance (it is the gap of an
# under-trained critic, usually smaller), and the generator follows a less informative gradient,
# which shows in the metrics.

# %%
report("tutorial: lr 3e-4, betas (0.5, 0.9)", *train())
report("paper: lr 1e-4, betas (0, 0.9)", *train(lr=1e-4, betas=(0.0, 0.9)))
report("n_critic = 1", *train(n_critic=1))

# %% [markdown]
# ## Exercise 2: a one-sided penalty
#
# $\max(0, \lVert g \rVert - 1)^2$ leaves slopes below 1 unpunished, which is all the Lipschitz
# constraint asks for (Gulrajani et al. discuss this variant; Petzka et al., 2018, argue for it).
# The optimal critic has slope 1 along the lines between real and fake points anyway, so where it
# matters the two penalties agree; away from them the one-sided critic is free to be flatter. At the
# generator's samples the slopes hardly change: in our run the median was 1.02 against 1.04, because
# where real and fake points meet the critic's slope is pinned near 1 either way. The generator
# still covered all eight modes (with more sharp samples after the same number of steps, in that
# run).

# %%
report("two-sided penalty", *train())
report("one-sided penalty", *train(one_sided=True))

# %% [markdown]
# ## Exercise 3: the 25-mode grid
#
# The grid is harder: 25 blobs spread over a square, so the generator must fold the plane of $z$
# into 25 pieces. In this short run it covers only part of them. A wider generator (128 hidden
# units) has more pieces to fold with and usually covers more, at the cost of a slower step.

# %%
report("grid, generator 64 wide", *train(toy="grid"), toy="grid")
report("grid, generator 128 wide", *train(toy="grid", hidden=128), toy="grid")

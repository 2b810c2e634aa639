# %% [markdown]
# # Solutions: 5. The variational autoencoder
#
# Worked solutions to the exercises of [tutorial 5](../05_vae.py). Try each exercise before reading
# its solution. Exercises 1 and 3 use MNIST from the folder in `MINIGEN_DATA`; without it they run
# on the 2-D ring with a Gaussian decoder, as the tutorial does, and say so.

# %%
import os

import numpy as np

import minigen as mg
from minigen.data import DataError, load_mnist
from minigen.train import fit

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
mg.manual_seed(0)
mg.backend.set_num_threads(1)

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
    train_x, test_x = train_x[:1000], test_x[:500]
EPOCHS = 1 if SMOKE else (5 if IMAGES else 20)


def reconstruction_nll(model, x, z):
    """-log p(x | z) per row, summed over dimensions: BCE from logits or the Gaussian NLL."""
    out = model.decode(z)
    if model.likelihood == "bernoulli":
        return mg.losses.bce_with_logits(out, x, reduction="none").sum(axis=1)
    return mg.losses.gaussian_nll(out, x, reduction="none").sum(axis=1)


# %% [markdown]
# ## Exercise 1: the founding document's sampling bug, trained
#
# The subclass changes one line of the loss: the noise is scaled by $\exp(\log\sigma^2)$, the
# variance, instead of $\exp(\tfrac12\log\sigma^2)$. Both models are then measured with the correct
# `VAE.losses`, which draws codes with the intended standard deviation.

# %%
class DocumentVAE(mg.VAE):
    """A VAE trained with z = mu + exp(log_var) * eps, the founding document's draw."""

    def losses(self, x):
        mu, log_var = self.encode(x)
        z = mu + mg.exp(log_var) * mg.randn(*mu.shape, dtype=mu.dtype)
        reconstruction = reconstruction_nll(self, x, z).mean()
        kl = mg.losses.gaussian_kl(mu, log_var, reduction="none").sum(axis=1).mean()
        return {"loss": reconstruction + self.beta * kl, "reconstruction": reconstruction, "kl": kl}


for name, cls in [("correct", mg.VAE), ("document's draw", DocumentVAE)]:
    mg.manual_seed(0)
    model = cls(**config)
    fit(model, train_x, epochs=EPOCHS, batch_size=128, lr=1e-3, seed=0, quiet=True)
    model.eval()
    with mg.no_grad():
        test = mg.VAE.losses(model, test_x)                  # the correct draw, for both models
        _, log_var = model.encode(test_x)
    log_var = log_var.numpy()
    print(f"{name:16s}: test loss {test['loss'].item():8.2f} nats (reconstruction "
          f"{test['reconstruction'].item():.2f}, KL {test['kl'].item():.2f}); encoder's log_var: "
          f"median {np.median(log_var):.2f}, 10% quantile {np.quantile(log_var, 0.1):.2f}")

# %% [markdown]
# The buggy model trains, which is why the bug is easy to miss, but its test loss, measured
# honestly, is several nats worse. Look at the variances. For $\sigma^2 < 1$ its training codes have
# standard deviation $\sigma^2$, smaller than the $\sigma$ the KL term is computed for, so the
# encoder can report a larger $\log\sigma^2$ (a cheaper KL: the buggy model's KL is the smaller one)
# while the decoder sees less noise than claimed; its log-variances are indeed the larger ones. When
# the same encoder is then sampled correctly, with standard deviation $\sigma$, the codes are
# noisier than the decoder was trained on, and the reconstruction term pays for it.
#
# ## Exercise 2: adding a constant to $f$, and a baseline
#
# $f(z) = z^2 + c$ has the same gradient $\nabla_\mu \mathbb{E}[f] = 2\mu$ for every $c$. The
# reparameterization estimator $2z$ does not see $c$ at all. The score-function estimator becomes
# $(z^2 + c)\,(z - \mu)/\sigma^2$: the extra term $c\,\varepsilon/\sigma$ has mean 0 but variance
# $c^2/\sigma^2$, which grows quadratically in $c$. Subtracting a baseline $b$ that does not depend
# on $z$ keeps the estimator unbiased, because $\mathbb{E}_q[\nabla_\mu \log q(z)] = 0$. With $b =
# \mathbb{E}[f] = \mu^2 + \sigma^2 + c$ the constant cancels exactly, whatever $c$ is, and the
# variance drops below even the $c = 0$ value: writing $z = \mu + \sigma\varepsilon$, one draw is
# $2\mu\varepsilon^2 + \sigma(\varepsilon^3 - \varepsilon)$, whose variance is $8\mu^2 +
# 10\sigma^2$, 42 against 87 for $\mu = 2$, $\sigma = 1$. It is still ten times the
# reparameterization's 4.

# %%
mu_value, sigma, S = 2.0, 1.0, 10
repeats = 500 if SMOKE else 4000


def estimates(method, c, baseline=0.0):
    mu = mg.full((repeats,), mu_value, dtype="float64", requires_grad=True)
    q = mg.distributions.Normal(mu, sigma)
    if method == "reparameterization":
        z = q.rsample((S,))
        objective = (z * z + c).mean(axis=0)
    else:
        z = q.sample((S,))
        objective = ((z * z + c - baseline) * q.log_prob(z)).mean(axis=0)
    objective.sum().backward()
    return mu.grad.numpy()


print(f"{'c':>5} {'estimator':>34} {'mean':>8} {'variance x S':>13}")
for c in [0.0, 10.0, 100.0]:
    rows = [("reparameterization", "reparameterization", 0.0),
            ("score function", "score", 0.0),
            ("score function, baseline mu^2+s^2+c", "score", mu_value**2 + sigma**2 + c)]
    for label, method, baseline in rows:
        g = estimates(method, c, baseline)
        print(f"{c:5.0f} {label:>34} {g.mean():8.3f} {g.var() * S:13.2f}")

# %% [markdown]
# ## Exercise 3: dynamic binarization
#
# `fit(..., binarize=True)` draws a fresh 0/1 image at every step, with each pixel on with
# probability equal to its grey level; the test set is binarized once. One might expect the numbers
# to move a lot; they hardly move, and the reason is worth seeing. The BCE is *linear* in its
# target, so for a pixel $b \sim \mathrm{Bernoulli}(t)$ the expected loss is the loss on the grey
# level itself: $\mathbb{E}_b[\mathrm{BCE}(l, b)] = \mathrm{BCE}(l, t)$. A grey-level target already
# "costs" what its random 0/1 versions cost on average, floor included (at best the entropy of the
# pixel). What does change: the binarized model is trained on noisy inputs, so its encoder must
# recognise each digit from a random 0/1 version, and its reconstruction term ends a little higher;
# its KL stays about the same. And the meaning changes: on 0/1 pixels the loss is the negative ELBO
# of a normalised model of binary images, a true bound on a negative log-likelihood, comparable in
# kind with published results on dynamically binarized MNIST, which the grey-level number is not.

# %%
if IMAGES:
    mg.manual_seed(7)
    binary_test = mg.data.binarize(test_x)
    for binarize in (False, True):
        mg.manual_seed(0)
        model = mg.VAE(**config)
        fit(model, train_x, epochs=EPOCHS, batch_size=128, lr=1e-3, seed=0, quiet=True,
            binarize=binarize)
        model.eval()
        with mg.no_grad():
            test = model.losses(binary_test if binarize else test_x)
        print(f"binarize={binarize!s:5}: test reconstruction {test['reconstruction'].item():7.2f}, "
              f"KL {test['kl'].item():6.2f}, loss {test['loss'].item():7.2f} nats")
else:
    print("Exercise 3 is about MNIST's grey pixels: set MINIGEN_DATA to run it")

# %% [markdown]
# ## Exercise 4: which backward of `Exp` runs, and where
#
# With fusion off, the loss calls `exp` twice: the reparameterization draws
# $z = \mu + \exp(\tfrac12\log\sigma^2)\,\varepsilon$, and the KL term contains
# $\exp(\log\sigma^2) = \sigma^2$. We tell the two apart by the input each `Exp` received,
# compared with the encoder's $\log\sigma^2$ on the same batch (the forward is deterministic, so
# recomputing it under `no_grad` gives the same numbers).

# %%
Exp = mg.functions.Exp
x = train_x[:128]
mg.manual_seed(0)
model = mg.VAE(**config)
seen = []                                     # (method, where) per call
log_var_now = None


def where(exp_input):
    if np.array_equal(exp_input, log_var_now):
        return "the KL term, exp(log_var)"
    if np.allclose(exp_input, 0.5 * log_var_now):
        return "the reparameterization, exp(0.5 * log_var)"
    return f"elsewhere (an input of shape {exp_input.shape})"


def encoder_log_var():
    with mg.no_grad():
        return model.encode(x)[1].numpy()


def recorded(method, original):
    def wrapper(self, gy):
        seen.append((method, where(self.inputs[0].numpy())))
        return original(self, gy)
    return wrapper


originals = Exp.backward, Exp.backward_arrays
Exp.backward = recorded("backward", originals[0])
Exp.backward_arrays = recorded("backward_arrays", originals[1])
try:
    with mg.using_fusion(False):
        log_var_now = encoder_log_var()
        model.train_step(x, model.make_optimizers(lr=1e-3))      # loss.backward() inside
        print("train_step:")
        for method, place in seen:
            print(f"  {method:16s} for {place}")
        seen.clear()
        log_var_now = encoder_log_var()                          # the weights moved: recompute
        loss = model.losses(x)["loss"]
        grads = mg.grad(loss, list(model.parameters()), create_graph=True)
        print("mg.grad(..., create_graph=True):")
        for method, place in seen:
            print(f"  {method:16s} for {place}")
finally:
    Exp.backward, Exp.backward_arrays = originals
print("the gradients are in the graph now:", all(g.creator is not None for g in grads[:2]))

# %% [markdown]
# In `train_step` the walk calls `backward_arrays`: `loss.backward()` builds no graph of the
# gradient, so plain arrays are enough, and skipping the Tensor wrappers saves time. With
# `create_graph=True` it must call `backward`, which is written with minigen's own ops
# (`gy * self.output`): only then is the gradient itself a result of recorded ops, with a graph that
# a second `backward` can walk (tutorial 9's gradient penalty needs exactly that). Both methods
# compute the same $\partial L/\partial x = g_y\,e^x$; `tests/test_op_gradients.py` checks both
# against finite differences (`mg.gradcheck` goes through `backward_arrays`, `mg.gradgradcheck`
# differentiates what `backward` builds).


"""The variational autoencoder (Kingma & Welling, 2013), and the building blocks the other models share.

A VAE is a latent-variable model  p(x, z) = p(z) p(x | z)  with the prior p(z) = N(0, I) and a decoder
network giving p(x | z).  An encoder network gives an approximate posterior

    q(z | x) = N(mu(x), diag(exp(log_var(x))))

and both are trained together by maximising the evidence lower bound (ELBO) of each example:

    log p(x) >= ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))

The expectation is estimated with one draw z = mu + exp(0.5 * log_var) * eps, eps ~ N(0, I) (the
reparameterization trick, ``mg.reparameterize``), so the gradient flows into mu and log_var.  Note the
standard deviation is exp(0.5 * log_var): the founding document's exp(log_var) squares it.

The loss minimised is the negative ELBO per example (summed over the data dimensions and the latent
dimensions, averaged over the batch), with beta weighting the KL term (beta = 1 is the true bound;
Higgins et al. 2017 use beta > 1):

    loss = mean_n [ -log p(x_n | z_n) + beta * KL(q(z | x_n) || N(0, I)) ]

Two likelihoods p(x | z):

* ``"bernoulli"`` for data in [0, 1] (MNIST): the decoder outputs logits l and
  log p(x | z) = -sum_d bce_with_logits(l_d, x_d).
* ``"gaussian"`` for real-valued data (the 2-D sets): the decoder outputs the mean m, with unit variance,
  log p(x | z) = -sum_d [0.5 (x_d - m_d)^2 + 0.5 log(2 pi)] - the founding document's squared error
  ||x - G(E(x))||^2, halved, plus the constant that makes it a true log-density.
"""

import math

from .. import backend as B
from .. import nn
from ..autograd import Tensor, no_grad
from ..distributions import reparameterize
from ..functions import sigmoid
from ..losses import bce_with_logits, gaussian_kl
from ..nn._arrays import fresh_like, standard_normal_like, tensor_like
from ..optim import Adam

__all__ = ["VAE", "Encoder", "mlp", "averaged_copy", "update_average", "LIKELIHOODS"]

LIKELIHOODS = ("bernoulli", "gaussian")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------------
# Building blocks (also used by the GAN and the VAE-GAN)
# ----------------------------------------------------------------------------------------------------

def mlp(sizes, activation="relu"):
    """A stack of Dense layers through ``sizes`` (in, h1, ..., out) with ``activation`` after every
    layer but the last, which is linear.  ``mlp((2, 64, 32, 1))`` is 2 -> 64 -> 32 -> 1."""
    layers = [nn.Dense(a, b, activation=activation if i < len(sizes) - 2 else None)
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return nn.Sequential(*layers)


def averaged_copy(network):
    """A copy of ``network`` whose weights are buffers (saved and moved with the model, never given to
    an optimizer): the home of an exponential moving average of ``network``'s weights."""
    copy = mlp([network[0].in_features] + [layer.out_features for layer in network],
               network[0].activation_name or network[0].activation)
    for source, layer in zip(network, copy):
        for name, p in source._parameters.items():
            layer.register_buffer(name, Tensor(fresh_like(p.data, p.data)))
    return copy


def update_average(average, network, decay):
    """Polyak averaging:  w_avg <- decay * w_avg + (1 - decay) * w,  for every weight of ``network``.

    Averaging a GAN generator's weights over the last ~1 / (1 - decay) steps cancels much of the
    jitter of the adversarial game (Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN
    Training"; Karras et al. 2018 sample from such an average).
    """
    with no_grad():
        for (_, avg), p in zip(average.named_buffers(), network.parameters()):
            avg.data = avg.data * decay + p.data * (1.0 - decay)


class Encoder(nn.Module):
    """x -> (mu, log_var) of the diagonal Gaussian q(z | x).

    A hidden stack ``body`` (Dense layers with ``activation``), then two linear heads: ``mu`` and
    ``log_var``.  With ``hidden=()`` there is no body and both heads read x directly.
    """

    def __init__(self, data_dim, hidden, latent_dim, activation="relu"):
        super().__init__()
        sizes = (data_dim,) + tuple(hidden)
        self.body = nn.Sequential(*[nn.Dense(a, b, activation=activation)
                                    for a, b in zip(sizes[:-1], sizes[1:])])
        self.mu = nn.Dense(sizes[-1], latent_dim)
        self.log_var = nn.Dense(sizes[-1], latent_dim)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.log_var(h)


def check_sizes(who, data_dim, hidden, latent_dim):
    """Positive integer sizes, ``hidden`` as a tuple (ValueError naming the model otherwise)."""
    hidden = tuple(int(h) for h in hidden)
    if int(data_dim) < 1 or int(latent_dim) < 1 or any(h < 1 for h in hidden):
        raise ValueError(f"{who}: sizes must be positive, got data_dim={data_dim}, hidden={hidden}, "
                         f"latent_dim={latent_dim}")
    return int(data_dim), hidden, int(latent_dim)


def check_decay(who, ema):
    """A moving-average decay in [0, 1) (0: no average)."""
    ema = float(ema or 0.0)
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"{who}: ema must be in [0, 1) (0 turns averaging off), got {ema}")
    return ema


def check_likelihood(who, likelihood):
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"{who}: likelihood must be one of {', '.join(LIKELIHOODS)}, "
                         f"not {likelihood!r}")
    return likelihood


def log_likelihood(likelihood, x, decoded):
    """log p(x | z) per example (N,), summed over the data dimensions, in nats.

    ``decoded`` is the decoder's output: logits for "bernoulli", the mean for "gaussian" (unit variance).
    """
    if likelihood == "bernoulli":
        return -bce_with_logits(decoded, x, reduction="none").sum(axis=1)
    diff = x - decoded
    return (-0.5 * (diff * diff) - _HALF_LOG_2PI).sum(axis=1)


def negative_log_likelihood(likelihood, x, decoded):
    """-log p(x | z) summed over the examples and the data dimensions (a 0-d Tensor, nats): the same
    as ``-log_likelihood(...).sum()``, in fewer ops."""
    if likelihood == "bernoulli":
        return bce_with_logits(decoded, x, reduction="sum")
    diff = x - decoded
    return (diff * diff).sum() * 0.5 + _HALF_LOG_2PI * diff.size


def to_data_space(likelihood, decoded):
    """The mean of p(x | z): sigmoid(logits) for "bernoulli", the decoder's output for "gaussian"."""
    return sigmoid(decoded) if likelihood == "bernoulli" else decoded


def prior_noise(n, latent_dim, like):
    """z ~ N(0, I) of shape (n, latent_dim) from the backend's seeded generator, in the dtype and on the
    device of the Tensor ``like`` (a parameter of the model), so a float32 or GPU model stays so."""
    return Tensor(standard_normal_like((int(n), latent_dim), like.data))


def as_floats(values):
    """``{name: 0-d Tensor}`` -> ``{name: Python float}`` with one device-to-host copy for all of them
    (on a GPU each copy waits for the device: one wait per training step, not one per number)."""
    names = list(values)
    arrays = [values[name].data for name in names]
    xp = B.namespace(arrays[0])
    host = B.of(arrays[0]).to_numpy(xp.stack([xp.reshape(a, ()) for a in arrays]))
    return dict(zip(names, host.tolist()))


def as_input(x, like):
    """``x`` as a Tensor for the model whose parameter is ``like`` (lists and NumPy arrays are copied
    into the parameter's dtype and device; Tensors are used as they are)."""
    return tensor_like(x, like)


# ----------------------------------------------------------------------------------------------------
# The VAE
# ----------------------------------------------------------------------------------------------------

class EncoderDecoder(nn.Module):
    """What the VAE and the VAE-GAN share: an ``encoder`` to q(z | x), a ``decoder`` to p(x | z) with
    the given ``likelihood``, and the methods built from them."""

    def _like(self):
        return self.encoder.mu.weight

    def encode(self, x):
        """(mu, log_var) of q(z | x), each (N, latent_dim)."""
        return self.encoder(as_input(x, self._like()))

    def decode(self, z):
        """The decoder's output for z (N, latent_dim): logits ("bernoulli") or the mean ("gaussian")."""
        return self.decoder(as_input(z, self._like()))

    def forward(self, x):
        """The same as :meth:`reconstruct`."""
        return self.reconstruct(x)

    def reconstruct(self, x):
        """The mean of p(x | z = mu(x)) in data space: probabilities, or the Gaussian mean."""
        mu, _ = self.encode(x)
        return to_data_space(self.likelihood, self.decode(mu))

    def log_px_given_z(self, x, decoded):
        """log p(x | z) per example (N,), summed over the data dimensions, in nats (Bernoulli through
        ``bce_with_logits``; Gaussian with unit variance, the constant -0.5 log(2 pi) per dimension
        included).  ``decoded`` is :meth:`decode`'s output."""
        return log_likelihood(self.likelihood, as_input(x, self._like()), decoded)


class VAE(EncoderDecoder):
    """A variational autoencoder with Dense encoder and decoder.

    ``VAE(data_dim, hidden=(64, 32), latent_dim=2, likelihood="bernoulli", beta=1.0, activation="relu")``

    * encoder: data_dim -> hidden[0] -> hidden[1] ... -> (mu, log_var), each of size latent_dim;
    * decoder: the mirror image, latent_dim -> hidden[-1] -> ... -> hidden[0] -> data_dim (linear output:
      logits for "bernoulli", the mean for "gaussian").

    The defaults are the founding document's network for 2-D data (use ``likelihood="gaussian"`` there);
    for MNIST the PyTorch example is ``VAE(784, hidden=(400,), latent_dim=20)``.
    """

    kind = "vae"

    def __init__(self, data_dim, hidden=(64, 32), latent_dim=2, likelihood="bernoulli", beta=1.0,
                 activation="relu"):
        super().__init__()
        self.data_dim, self.hidden, self.latent_dim = check_sizes("VAE", data_dim, hidden, latent_dim)
        self.likelihood = check_likelihood("VAE", likelihood)
        self.beta = float(beta)
        self.activation = activation
        self.encoder = Encoder(self.data_dim, self.hidden, self.latent_dim, activation)
        self.decoder = mlp((self.latent_dim,) + self.hidden[::-1] + (self.data_dim,), activation)

    def config(self):
        """The constructor's arguments as a JSON-able dict: ``build_model("vae", **m.config())``."""
        return {"data_dim": self.data_dim, "hidden": list(self.hidden), "latent_dim": self.latent_dim,
                "likelihood": self.likelihood, "beta": self.beta, "activation": self.activation}

    # --- the model: encode, decode, forward, reconstruct come from EncoderDecoder -------------------
    def sample(self, n):
        """``n`` draws z ~ N(0, I) decoded to the mean of p(x | z), as an (n, data_dim) constant."""
        with no_grad():
            z = prior_noise(n, self.latent_dim, self._like())
            return to_data_space(self.likelihood, self.decode(z))

    # --- the objective --------------------------------------------------------------------------------
    def losses(self, x):
        """The training loss and its two parts, as Tensors in the graph (batch means, nats):

            reconstruction = mean_n -log p(x_n | z_n),      z_n = mu + exp(0.5 log_var) * eps
            kl             = mean_n sum_j KL(N(mu_j, exp(log_var_j)) || N(0, 1))
            loss           = reconstruction + beta * kl
        """
        x = as_input(x, self._like())
        mu, log_var = self.encode(x)
        z = reparameterize(mu, log_var)
        n = x.shape[0]
        # mean over examples of a sum over dimensions = the sum over everything / n (fewer ops)
        reconstruction = negative_log_likelihood(self.likelihood, x, self.decode(z)) * (1.0 / n)
        kl = gaussian_kl(mu, log_var, reduction="sum") * (1.0 / n)
        return {"loss": reconstruction + self.beta * kl, "reconstruction": reconstruction, "kl": kl}

    def elbo(self, x):
        """The ELBO of each example (N,) in nats: log p(x | z) - KL(q(z | x) || p(z)) with one draw of
        z and beta = 1 (whatever the training beta), without recording a graph."""
        with no_grad():
            x = as_input(x, self._like())
            mu, log_var = self.encode(x)
            z = reparameterize(mu, log_var)
            kl = gaussian_kl(mu, log_var, reduction="none").sum(axis=1)
            return self.log_px_given_z(x, self.decode(z)) - kl

    # --- training -------------------------------------------------------------------------------------
    def make_optimizers(self, lr=1e-3):
        """``{"vae": Adam}`` over every parameter (encoder and decoder learn from the same loss)."""
        return {"vae": Adam(self.parameters(), lr=lr)}

    def train_step(self, x, optimizers):
        """One gradient step on the batch ``x``; returns the losses as Python floats."""
        opt = optimizers["vae"]
        opt.zero_grad()                       # gradients accumulate: start from none
        out = self.losses(x)
        out["loss"].backward()
        opt.step()
        return as_floats(out)

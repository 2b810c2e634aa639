"""The parts the models share: networks (``mlp``, ``Encoder``, ``Discriminator``), the moving
average of a network's weights, prior noise, likelihoods, argument checks, and ``EncoderDecoder``
(what the VAE and the VAE-GAN have in common).
"""

import math

from .. import backend as B
from .. import kernels, nn
from ..autograd import as_tensor, mark_modified, no_grad
from ..creation import randn
from ..functions import sigmoid
from ..fused import batch_scale
from ..losses import bce_with_logits

__all__ = ["mlp", "Encoder", "Discriminator", "averaged_copy", "update_average", "prior_noise",
           "as_floats", "check_sizes", "check_decay", "check_likelihood", "log_likelihood",
           "negative_log_likelihood", "to_data_space", "EncoderDecoder", "LIKELIHOODS"]

LIKELIHOODS = ("bernoulli", "gaussian")
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------

def mlp(sizes, activation="relu"):
    """A stack of Dense layers through ``sizes`` (in, h1, ..., out) with ``activation`` after every
    layer but the last, which is linear.  ``mlp((2, 64, 32, 1))`` is 2 -> 64 -> 32 -> 1."""
    layers = [nn.Dense(a, b, activation=activation if i < len(sizes) - 2 else None)
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return nn.Sequential(*layers)


def averaged_copy(network):
    """A copy of ``network`` whose weights are buffers (saved and moved with the model, never given
    to an optimizer): the home of an exponential moving average of ``network``'s weights."""
    copy = mlp([network[0].in_features] + [layer.out_features for layer in network],
               network[0].activation_name or network[0].activation)
    for source, layer in zip(network, copy):
        for name, p in source._parameters.items():
            layer.register_buffer(name, as_tensor(p.data, p))
    return copy


def update_average(average, network, decay):
    """Polyak averaging:  w_avg <- decay * w_avg + (1 - decay) * w,  for every weight of
    ``network``.

    Averaging a GAN generator's weights over the last ~1 / (1 - decay) steps cancels much of the
    jitter of the adversarial game (Yazici et al. 2019, "The Unusual Effectiveness of Averaging in
    GAN Training"; Karras et al. 2018 sample from such an average).
    """
    with no_grad():
        for (_, avg), p in zip(average.named_buffers(), network.parameters()):
            avg.data = kernels.moving_average(avg.data, p.data, decay)
            mark_modified(avg)


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


class Discriminator(nn.Module):
    """x -> logit.  A hidden stack ``body`` (whose output :meth:`features` returns: the VAE-GAN
    measures its reconstruction error there) and a linear ``head`` giving one logit per example,
    shape (N, 1)."""

    def __init__(self, data_dim, hidden, activation="relu"):
        super().__init__()
        sizes = (data_dim,) + tuple(hidden)
        self.body = nn.Sequential(*[nn.Dense(a, b, activation=activation)
                                    for a, b in zip(sizes[:-1], sizes[1:])])
        self.head = nn.Dense(sizes[-1], 1)

    def features(self, x):
        """The last hidden layer's activations (N, hidden[-1])."""
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def check_sizes(who, data_dim, hidden, latent_dim):
    """Positive integer sizes and ``hidden`` a sequence of them, as a tuple: a TypeError for a
    string or a single number (``hidden="64"`` would otherwise be the sizes 6 and 4), a ValueError
    for a size below 1; both name the model."""
    if isinstance(hidden, (str, bytes)) or not hasattr(hidden, "__iter__"):
        raise TypeError(f"{who}: hidden must be a sequence of layer sizes such as (64, 32), (64,) "
                        f"or (), not {type(hidden).__name__} {hidden!r}")
    hidden = tuple(nn.check_size(who, "each hidden size", h) for h in hidden)
    return (nn.check_size(who, "data_dim", data_dim), hidden,
            nn.check_size(who, "latent_dim", latent_dim))


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

    ``decoded`` is the decoder's output: logits for "bernoulli", the mean for "gaussian" (unit
    variance).
    """
    if likelihood == "bernoulli":
        return -bce_with_logits(decoded, x, reduction="none").sum(axis=1)
    diff = x - decoded
    return (-0.5 * (diff * diff) - _HALF_LOG_2PI).sum(axis=1)


def negative_log_likelihood(likelihood, x, decoded, reduction="sum"):
    """-log p(x | z) summed over the data dimensions and, with ``reduction="sum"``, over the
    examples, or with ``"batchmean"`` averaged over them (a 0-d Tensor, nats): the same as
    ``-log_likelihood(...).sum()`` or ``.mean()``, in fewer ops."""
    if reduction not in ("sum", "batchmean"):
        raise ValueError(f"negative_log_likelihood: reduction must be 'sum' or 'batchmean', not "
                         f"{reduction!r}")
    if likelihood == "bernoulli":
        return bce_with_logits(decoded, x, reduction=reduction)
    diff = x - decoded
    total = (diff * diff).sum() * 0.5 + _HALF_LOG_2PI * diff.size
    if reduction == "sum":
        return total
    return total * batch_scale(x.shape, "negative_log_likelihood")


def to_data_space(likelihood, decoded):
    """The mean of p(x | z): sigmoid(logits) for "bernoulli", the decoder's output for
    "gaussian"."""
    return sigmoid(decoded) if likelihood == "bernoulli" else decoded


def prior_noise(n, latent_dim, like):
    """z ~ N(0, I) of shape (n, latent_dim) from the backend's seeded generator, in the dtype and on
    the device of the Tensor ``like`` (a parameter of the model), so a float32 or GPU model stays
    so."""
    return randn(int(n), latent_dim, like=like)


def as_floats(values):
    """``{name: 0-d Tensor}`` -> ``{name: Python float}``.  On a device, one device-to-host copy for
    all of them (each copy waits for the device: one wait per training step, not one per number);
    on NumPy, ``float`` of each."""
    names = list(values)
    arrays = [values[name].data for name in names]
    owner = B.of(arrays[0])
    if owner.name == "numpy":
        return {name: float(a) for name, a in zip(names, arrays)}
    xp = owner.xp
    host = owner.to_numpy(xp.stack([xp.reshape(a, ()) for a in arrays]))
    return dict(zip(names, host.tolist()))


# --------------------------------------------------------------------------------------------------
# What the VAE and the VAE-GAN share
# --------------------------------------------------------------------------------------------------

class EncoderDecoder(nn.Module):
    """What the VAE and the VAE-GAN share: an ``encoder`` to q(z | x), a ``decoder`` to p(x | z)
    with the given ``likelihood``, and the methods built from them."""

    def _like(self):
        return self.encoder.mu.weight

    def encode(self, x):
        """(mu, log_var) of q(z | x), each (N, latent_dim)."""
        return self.encoder(as_tensor(x, self._like()))

    def decode(self, z):
        """The decoder's output for z (N, latent_dim): logits ("bernoulli") or the mean
        ("gaussian")."""
        return self.decoder(as_tensor(z, self._like()))

    def forward(self, x):
        """The same as :meth:`reconstruct`."""
        return self.reconstruct(x)

    def reconstruct(self, x):
        """The mean of p(x | z = mu(x)) in data space: probabilities, or the Gaussian mean."""
        mu, _ = self.encode(x)
        return to_data_space(self.likelihood, self.decode(mu))

    def log_px_given_z(self, x, decoded):
        """log p(x | z) per example (N,), summed over the data dimensions, in nats (Bernoulli
        through ``bce_with_logits``; Gaussian with unit variance, the constant -0.5 log(2 pi) per
        dimension included).  ``decoded`` is :meth:`decode`'s output."""
        return log_likelihood(self.likelihood, as_tensor(x, self._like()), decoded)

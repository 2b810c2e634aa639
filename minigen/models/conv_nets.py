"""Convolutional networks for 28 x 28 grey images (MNIST, Fashion-MNIST), in the style of DCGAN
(Radford, Metz and Chintala 2015), for the VAE, the GAN and the VAE-GAN (``arch="conv"``).

The models keep images flat, (N, 784), as the Dense networks do; these networks reshape to
(N, 1, 28, 28) on the way in and flatten on the way out, so the likelihoods, the metrics and the
figures serve both architectures unchanged.  With ``channels = (c1, c2)`` (default (32, 64)):

    encoder / discriminator                         decoder / generator
    (N, 1, 28, 28)                                  z (N, latent_dim)
    Conv2d(1, c1, 4, stride 2, pad 1), LeakyReLU    Dense(latent_dim, c2 * 7 * 7) -> (N, c2, 7, 7)
        -> (N, c1, 14, 14)                              BatchNorm2d, ReLU
    Conv2d(c1, c2, 4, stride 2, pad 1)              ConvTranspose2d(c2, c1, 4, stride 2, pad 1)
        BatchNorm2d, LeakyReLU -> (N, c2, 7, 7)         BatchNorm2d, ReLU -> (N, c1, 14, 14)
    flatten -> (N, c2 * 49): the *features*         ConvTranspose2d(c1, 1, 4, stride 2, pad 1)
    Dense heads: (mu, log_var) or one logit             -> (N, 1, 28, 28) logits, flattened

DCGAN's rules, which made convolutional GANs train reliably: strided convolutions instead of pooling
(the network learns its own down- and up-sampling), batch normalisation in every layer but the
discriminator's first and the generator's last, LeakyReLU with slope 0.2 in the discriminator and
ReLU in the generator, and every weight drawn from N(0, 0.02) (batch-norm scales from N(1, 0.02),
biases zero) - :func:`dcgan_init`.  A kernel of 4 with stride 2 and padding 1 halves the side
exactly (out = (in + 2 - 4) / 2 + 1), and the transposed convolution doubles it back.

The decoder ends in logits (the Bernoulli likelihood's parameters, as the Dense decoder); the GAN's
generator puts a sigmoid after them, so that its samples are images in [0, 1] like the data.  The
discriminator's ``features`` (the flattened second convolution, after its activation) are the layer
in which the VAE-GAN measures reconstructions (Larsen et al. 2016).
"""

import math

from .. import backend as B
from .. import nn
from ..autograd import no_grad

__all__ = ["IMAGE_SHAPE", "IMAGE_DIM", "ARCHS", "ConvEncoder", "ConvDecoder", "ConvGenerator",
           "ConvDiscriminator", "dcgan_init", "check_arch", "check_conv", "resolve_ema"]

IMAGE_SHAPE = (1, 28, 28)
IMAGE_DIM = math.prod(IMAGE_SHAPE)
ARCHS = ("mlp", "conv")
_SLOPE = 0.2


def check_arch(who, arch):
    """"mlp" or "conv" (ValueError naming the model otherwise)."""
    if arch not in ARCHS:
        raise ValueError(f"{who}: arch must be one of {', '.join(ARCHS)}, not {arch!r}")
    return arch


def resolve_ema(who, arch, ema, default):
    """The weight-average decay: ``default`` for Dense networks when ``ema`` is None; none (0) for
    convolutional ones, whose batch-norm statistics belong to the live weights (an average of the
    weights would be normalised with statistics it never produced)."""
    if arch == "conv":
        if ema:
            raise ValueError(f"{who}: ema (a moving average of the weights) is for arch='mlp'; the "
                             "conv networks' batch norms keep running statistics of the live "
                             "weights instead: leave ema out or set it to 0")
        return 0.0
    return default if ema is None else ema


def check_conv(who, data_dim, channels):
    """The two channel counts of a conv network for 28 x 28 images (ValueError naming the model and
    the fix otherwise)."""
    if int(data_dim) != IMAGE_DIM:
        raise ValueError(f"{who}: arch='conv' is for 28 x 28 grey images (data_dim {IMAGE_DIM}), "
                         f"not data_dim {data_dim}; use arch='mlp' for other data")
    channels = tuple(int(c) for c in channels)
    if len(channels) != 2 or min(channels) < 1:
        raise ValueError(f"{who}: arch='conv' takes two channel counts (hidden=(c1, c2), e.g. "
                         f"(32, 64): 28 -> 14 -> 7 pixels), not hidden={channels}")
    return channels


def _downsampling_body(channels, batch_norm=True):
    """(N, 784) -> (N, c2 * 7 * 7): the encoder's and the discriminator's convolutions."""
    c1, c2 = channels
    second = ([nn.Conv2d(c1, c2, 4, stride=2, padding=1, bias=False),  # the batch norm shifts
               nn.BatchNorm2d(c2)] if batch_norm else
              [nn.Conv2d(c1, c2, 4, stride=2, padding=1)])
    return nn.Sequential(
        nn.Unflatten(1, IMAGE_SHAPE),
        nn.Conv2d(1, c1, 4, stride=2, padding=1),
        nn.LeakyReLU(_SLOPE),
        *second,
        nn.LeakyReLU(_SLOPE),
        nn.Flatten(),
    )


class ConvEncoder(nn.Module):
    """x (N, 784) -> (mu, log_var) of q(z | x), each (N, latent_dim): the strided convolutions, then
    two Dense heads (the same interface as :class:`minigen.models.Encoder`)."""

    def __init__(self, latent_dim, channels=(32, 64)):
        super().__init__()
        self.channels = tuple(channels)
        self.body = _downsampling_body(self.channels)
        width = self.channels[1] * 7 * 7
        self.mu = nn.Dense(width, latent_dim)
        self.log_var = nn.Dense(width, latent_dim)
        dcgan_init(self)

    def forward(self, x):
        h = self.body(x)
        return self.mu(h), self.log_var(h)


def _upsampling_layers(latent_dim, channels):
    """z (N, latent_dim) -> logits (N, 784): the decoder's and the generator's layers."""
    c1, c2 = channels
    return [
        nn.Dense(latent_dim, c2 * 7 * 7, bias=False),
        nn.Unflatten(1, (c2, 7, 7)),
        nn.BatchNorm2d(c2),
        nn.ReLU(),
        nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),
        nn.Flatten(),
    ]


class ConvDecoder(nn.Sequential):
    """z (N, latent_dim) -> logits (N, 784): project to (c2, 7, 7), then two transposed convolutions
    up to 28 x 28.  ``channels`` are the encoder's (c1, c2), so the decoder mirrors it."""

    def __init__(self, latent_dim, channels=(32, 64)):
        super().__init__(*_upsampling_layers(latent_dim, channels))
        dcgan_init(self)


class ConvGenerator(nn.Sequential):
    """z (N, latent_dim) -> images (N, 784) in [0, 1]: the decoder's layers and a sigmoid, so that
    the discriminator compares images with images."""

    def __init__(self, latent_dim, channels=(32, 64)):
        super().__init__(*_upsampling_layers(latent_dim, channels), nn.Sigmoid())
        dcgan_init(self)


class ConvDiscriminator(nn.Module):
    """x (N, 784) -> one logit (N, 1): the strided convolutions (``body``, whose output
    :meth:`features` returns) and a Dense ``head`` - the interface of
    :class:`minigen.models.Discriminator`.  ``batch_norm=False`` leaves out the batch norm (the
    VAE-GAN's: see :class:`minigen.models.VAEGAN`)."""

    def __init__(self, channels=(32, 64), batch_norm=True):
        super().__init__()
        self.channels = tuple(channels)
        self.body = _downsampling_body(self.channels, batch_norm)
        self.head = nn.Dense(self.channels[1] * 7 * 7, 1)
        dcgan_init(self)

    def features(self, x):
        """The last convolution's activations, flattened: (N, c2 * 49)."""
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def dcgan_init(module, std=0.02):
    """DCGAN's initialisation, in place: every convolution's, transposed convolution's and Dense
    layer's weight from N(0, std^2), batch-norm scales from N(1, std^2), all biases and shifts 0.

    Radford et al. 2015: "All weights were initialized from a zero-centered Normal distribution with
    standard deviation 0.02."  Random numbers come from the backend's seeded generator.
    """
    with no_grad():
        for _, layer in module.named_modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Dense, nn.BatchNorm2d)):
                weight = layer.weight
                if weight is None:
                    continue
                owner = B.of(weight.data)
                noise = owner.standard_normal(tuple(weight.shape), weight.dtype) * std
                weight.data = noise + 1.0 if isinstance(layer, nn.BatchNorm2d) else noise
                if getattr(layer, "bias", None) is not None:
                    layer.bias.data = owner.zeros(tuple(layer.bias.shape), layer.bias.data)
    return module


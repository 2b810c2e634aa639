"""The generative adversarial network (Goodfellow et al., 2014), with the non-saturating generator
loss.

A generator G maps noise z ~ N(0, I) to data space; a discriminator D maps a point to a logit, the
log-odds that the point is real (D's probability is sigmoid(logit)).  They play a game:

* the discriminator minimises the binary cross-entropy of telling real from generated points,

      L_D = bce_with_logits(D(x), 1) + bce_with_logits(D(G(z)), 0)
          = -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))        (batch means; PyTorch's errD_real
          +
                                                                   errD_fake)

* the generator *maximises* log sigmoid(D(G(z))), the non-saturating form of Goodfellow et al.:

      L_G = bce_with_logits(D(G(z)), 1) = -log sigmoid(D(G(z)))

  The minimax form - the generator minimising log(1 - sigmoid(D(G(z)))) - has almost no gradient
  early in training, when the discriminator easily rejects the samples; the non-saturating form has
  the same fixed point and a strong gradient exactly then.

Each player has its own optimizer and learns only from its own loss: a step updates D on real points
and a detached batch of fakes, then G through the updated D.

Samples come from an exponential moving average of the generator's weights (``ema``, the decay;
0 turns it off): the game makes the generator's weights jitter from step to step, and the average is
much sharper (Yazici et al. 2019).  It changes no gradient: it is only what ``sample`` uses.

Packing (PacGAN, Lin et al. 2018, "PacGAN: The power of two samples in generative adversarial
networks"): with ``pack = m`` the discriminator judges m points at once.  A batch of N points
x_1 ... x_N (N a multiple of m) becomes N / m packs, each the concatenation of m consecutive points,

      pack_k = [x_{(k-1)m+1}, ..., x_{km}]        (N, data_dim) -> (N / m, m * data_dim)

all real or all generated, and the losses above are taken over packs instead of points.  A generator
that drops modes makes packs whose m points are too often alike, a difference between the product
distributions P^m and Q^m that grows with m; so the discriminator can see - and penalise - mode
collapse that one point at a time hides.  m = 1 is the plain GAN.
"""

from .. import nn
from ..autograd import as_tensor, grad, no_grad
from ..losses import bce_with_logits
from ..optim import Adam
from .conv_nets import ConvDiscriminator, ConvGenerator, check_arch, check_conv, resolve_ema
from .blocks import (Discriminator, as_floats, averaged_copy, check_decay, check_sizes, mlp,
                     prior_noise, update_average)

__all__ = ["GAN"]


class GAN(nn.Module):
    """A GAN with Dense (or convolutional: a DCGAN) generator and discriminator.

    ``GAN(data_dim, latent_dim=2, hidden=(64, 32), activation="relu", disc_hidden=None, ema=None,
    pack=1, arch="mlp")``

    * generator: latent_dim -> hidden[-1] -> ... -> hidden[0] -> data_dim (linear output);
    * discriminator: pack * data_dim -> disc_hidden[0] -> ... -> 1 logit, one logit per pack of
      ``pack`` points (see :meth:`packed`); ``disc_hidden`` defaults to ``hidden``;
    * ``generator_ema``: the moving average of the generator's weights (buffers) that ``sample``
      uses, updated after every ``train_step`` with decay ``ema`` (0: none; ``sample`` uses the
      generator; None: 0.999 for Dense networks, 0 for convolutional ones);
    * ``arch="conv"`` (28 x 28 images): the DCGAN of :mod:`minigen.models.conv_nets` - transposed
      convolutions to logits and a sigmoid in the generator, strided convolutions in the
      discriminator, ``hidden`` (and ``disc_hidden``) their two channel counts, e.g. (32, 64).
    """

    kind = "gan"

    def __init__(self, data_dim, latent_dim=2, hidden=(64, 32), activation="relu", disc_hidden=None,
                 ema=None, pack=1, arch="mlp"):
        super().__init__()
        self.data_dim, self.hidden, self.latent_dim = check_sizes("GAN", data_dim, hidden,
                                                                  latent_dim)
        _, self.disc_hidden, _ = check_sizes("GAN", data_dim, hidden if disc_hidden is None
                                             else disc_hidden, latent_dim)
        self.activation = activation
        self.pack = int(pack)
        if self.pack < 1:
            raise ValueError(f"GAN: pack must be a positive integer, got {pack}")
        self.arch = check_arch("GAN", arch)
        if self.arch == "conv":
            if self.pack != 1:
                raise ValueError(f"GAN: pack={self.pack} is for arch='mlp' (packed points side by "
                                 "side); the conv discriminator judges one image at a time")
            self.generator = ConvGenerator(self.latent_dim,
                                           check_conv("GAN", data_dim, self.hidden))
            self.discriminator = ConvDiscriminator(check_conv("GAN", data_dim, self.disc_hidden))
        else:
            self.generator = mlp((self.latent_dim,) + self.hidden[::-1] + (self.data_dim,),
                                 activation)
            self.discriminator = Discriminator(self.pack * self.data_dim, self.disc_hidden,
                                               activation)
        self.ema = check_decay("GAN", resolve_ema("GAN", self.arch, ema, 0.999))
        if self.ema:
            self.generator_ema = averaged_copy(self.generator)

    def config(self):
        """The constructor's arguments as a JSON-able dict: ``build_model("gan", **m.config())``."""
        return {"data_dim": self.data_dim, "latent_dim": self.latent_dim,
                "hidden": list(self.hidden),
                "activation": self.activation, "disc_hidden": list(self.disc_hidden),
                "ema": self.ema, "pack": self.pack, "arch": self.arch}

    def _like(self):
        return self.discriminator.head.weight

    def forward(self, z):
        """G(z): the generator applied to noise z (N, latent_dim)."""
        return self.generator(as_tensor(z, self._like()))

    def generate(self, n):
        """``n`` generated points G(z), z ~ N(0, I), in the graph (gradients reach the
        generator)."""
        return self.generator(prior_noise(n, self.latent_dim, self._like()))

    def sample(self, n):
        """``n`` generated points as an (n, data_dim) constant (no graph), from the averaged
        generator when there is one."""
        with no_grad():
            network = self.generator_ema if self.ema else self.generator
            return network(prior_noise(n, self.latent_dim, self._like()))

    # --- the two losses ---------------------------------------------------------------------------
    def packed(self, x):
        """The discriminator's input: the points ``x`` (N, data_dim) grouped ``pack`` at a time,
        (N // pack, pack * data_dim); row k is x[k*pack], ..., x[k*pack + pack - 1] side by side.
        The last N mod pack points are left out (a ValueError when N < pack)."""
        x = as_tensor(x, self._like())
        n = (x.shape[0] // self.pack) * self.pack
        if n == 0:
            raise ValueError(f"GAN: a batch of {x.shape[0]} points cannot fill a pack of "
                             f"{self.pack}")
        if self.pack == 1:
            return x
        if n < x.shape[0]:
            x = x[:n]
        return x.reshape(n // self.pack, self.pack * self.data_dim)

    def discriminator_loss(self, real, fake):
        """L_D = bce_with_logits(D(real), 1) + bce_with_logits(D(fake), 0) (each a mean over packs).

        Pass ``fake.detach()`` when only the discriminator should learn from it (as ``train_step``
        does).
        """
        return (bce_with_logits(self.discriminator(self.packed(real)), 1.0)
                + bce_with_logits(self.discriminator(self.packed(fake)), 0.0))

    def generator_loss(self, fake):
        """The non-saturating L_G = bce_with_logits(D(fake), 1) = mean -log sigmoid(D(fake))."""
        return bce_with_logits(self.discriminator(self.packed(fake)), 1.0)

    # --- training ---------------------------------------------------------------------------------
    def make_optimizers(self, lr=1e-3, betas=(0.5, 0.999)):
        """One Adam per player; beta1 = 0.5 (Radford et al. 2015) damps the oscillations of the
        game."""
        return {"discriminator": Adam(self.discriminator.parameters(), lr=lr, betas=betas),
                "generator": Adam(self.generator.parameters(), lr=lr, betas=betas)}

    def train_step(self, x, optimizers):
        """Update the discriminator on ``x`` and a fresh fake batch, then the generator against the
        updated discriminator; returns ``{"d_loss": ..., "g_loss": ...}`` as Python floats."""
        x = as_tensor(x, self._like())
        fake = self.generate(x.shape[0])

        # 1. Discriminator: the fakes are detached, so no gradient reaches the generator.
        optimizers["discriminator"].zero_grad()
        d_loss = self.discriminator_loss(x, fake.detach())
        d_loss.backward()
        optimizers["discriminator"].step()

        # 2. Generator: through the updated discriminator.  mg.grad asks for the generator's
        #    gradient alone, so the walk skips the discriminator's weights (and leaves their .grad).
        optimizers["generator"].zero_grad()
        g_loss = self.generator_loss(fake)
        params = list(self.generator.parameters())
        for p, g in zip(params, grad(g_loss, params)):
            p.grad = g
        optimizers["generator"].step()
        if self.ema:
            update_average(self.generator_ema, self.generator, self.ema)
        return as_floats({"d_loss": d_loss, "g_loss": g_loss})

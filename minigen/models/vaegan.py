"""The VAE/GAN of Larsen et al. (2016): a VAE whose decoder is also a GAN's generator.

Three networks: an encoder Enc (x -> q(z | x)), a decoder Dec (z -> x, the generator) and a
discriminator Dis (x -> logit, with a hidden layer Dis_l(x) used as a feature map).  For a batch x:

    z   = Enc(x) sampled by reparameterization,   x~  = Dec(z)       (reconstructions)
    z_p ~ N(0, I),                                x_p = Dec(z_p)     (prior samples)

and three losses (batch means, nats):

    L_prior = KL(q(z | x) || N(0, I))                      summed over the latent dimensions
    L_llike = -log p(Dis_l(x) | z) = 0.5 ||Dis_l(x) - Dis_l(x~)||^2 + const
              a Gaussian with unit variance on the discriminator's features ("features", the paper's
              choice), or -log p(x | z) in data space ("pixels": the VAE's reconstruction term)
    L_GAN   = log D(x) + log(1 - D(x~)) + log(1 - D(x_p))  with D = sigmoid(Dis(.))

Each network follows its own objective (Larsen et al., Algorithm 1):

    encoder        minimises  beta * L_prior + L_llike
    decoder        minimises  gamma * L_llike + L_G,   L_G = -log D(x~) - log D(x_p)
                                                   (non-saturating)
    discriminator  minimises  L_D = -L_GAN = bce(Dis(x), 1) + bce(Dis(x~), 0) + bce(Dis(x_p), 0)

So no GAN gradient reaches the encoder; L_llike, although measured through the discriminator's
hidden layer, does not train the discriminator (it is only a feature extractor there); and gamma
weighs only the decoder's reconstruction term against its GAN term.  ``gradients`` computes each
network's gradient from its own objective with a separate ``mg.grad`` call, so this routing is
exact.

Samples come from an exponential moving average of the decoder's weights (``ema``, the decay; 0:
off), as in the GAN (Yazici et al. 2019).  Keep its horizon short (0.99: about 100 steps): the KL
term and the prior are unchanged by a rotation of the latent space, so encoder and decoder drift
together, and an average over a long window would mix decoders that disagree.

The founding document's "VAGAN" loss.  It writes one loss, L = L_G + lambda * L_D, minimised by all
the networks together: L_G the generator's (autoencoder's) loss, L_D the adversarial term weighted
by lambda. That cannot describe a game: whatever sign L_D carries, one player ends up working for
its opponent.

* If L_D is the discriminator's cross-entropy (-log D(x) - log(1 - D(G(z)))), the generator
  minimising it makes its samples *easier* to reject - it helps the discriminator.
* If L_D is the GAN value (log D(x) + log(1 - D(G(z)))), the discriminator minimising it calls real
  points fake and fakes real - the discriminator helps the generator.

The correct version (above) gives each network its own objective: the discriminator minimises
-L_GAN, while the generator *maximises* log D(G(z)) - it minimises -log D(G(z)), the non-saturating
form (Goodfellow et al. 2014), not log(1 - D(G(z))), whose gradient vanishes while the discriminator
wins. The document's L_G is this model's encoder/decoder term L_prior + L_llike (with gamma on the
decoder's copy) and its lambda is 1 / gamma: lambda weighs the adversarial term against the
reconstruction.
"""

from ..autograd import as_tensor, grad, no_grad
from ..distributions import reparameterize
from ..functions import concatenate
from ..losses import bce_with_logits, gaussian_kl
from ..optim import Adam
from .blocks import (Discriminator, Encoder, EncoderDecoder, as_floats, averaged_copy, check_decay,
                     check_likelihood, check_sizes, log_likelihood, mlp, prior_noise,
                     to_data_space, update_average)
from .conv_nets import (ConvDecoder, ConvDiscriminator, ConvEncoder, check_arch, check_conv,
                        resolve_ema)

__all__ = ["VAEGAN", "LLIKES"]

LLIKES = ("features", "pixels")


class VAEGAN(EncoderDecoder):
    """The VAE/GAN of Larsen et al. (2016) with Dense (or convolutional) networks.

    ``VAEGAN(data_dim, hidden=(64, 32), latent_dim=2, gamma=30.0, llike="pixels",
    likelihood="gaussian", beta=0.01, activation="relu", disc_hidden=None, ema=None, arch="mlp")``

    * encoder: data_dim -> hidden -> (mu, log_var); decoder: latent_dim -> reversed hidden ->
      data_dim; discriminator: data_dim -> disc_hidden (default: hidden) -> 1 logit; its last hidden
      layer gives the features of L_llike.
    * ``gamma`` weighs the decoder's reconstruction term against its GAN term; ``beta`` the
      encoder's prior term.
    * ``llike``: "pixels" (the data-space likelihood) or "features" (the discriminator's last hidden
      layer: the paper's choice for images).
    * ``likelihood``: the data-space p(x | z), "gaussian" (unit variance: the 2-D sets) or
      "bernoulli" (MNIST); the decoder's output is its mean (or logits), and it is what ``elbo`` and
      the importance-weighted metrics measure.
    * ``ema``: the decay of ``decoder_ema``, the moving average of the decoder's weights (buffers)
      that ``sample`` uses; 0 turns it off; None: 0.99 for Dense networks, 0 for convolutional ones.
    * ``arch="conv"`` (28 x 28 images): the DCGAN-style networks of :mod:`minigen.models.conv_nets`,
      ``hidden`` (and ``disc_hidden``) their two channel counts, e.g. (32, 64); L_llike is then
      measured on the discriminator's last convolution (c2 x 7 x 7 features), as Larsen et al. do.

    The defaults are tuned for the 2-D sets (the ring: 8/8 modes and about 88% high-quality samples
    after 100 epochs of 10,000 points in batches of 256, ``make_optimizers()``'s Adam at 2e-3):

    * beta = 0.01: for the encoder, beta * KL + 0.5 ||x - x~||^2 is the objective of a Gaussian p(x
      | z) with variance beta (std 0.1) instead of 1.  With unit variance the ring's 8 modes (std
      0.02, radius 2) are not worth the KL of telling them apart, and the posterior collapses.
    * llike = "pixels": a discriminator only needs to tell real from fake, so on 2-D data its
      features barely say *which* mode a point belongs to, and feature-space reconstructions land on
      wrong modes. On images, where the discriminator's features are rich, use "features" (and
      ``beta=1``, ``likelihood="bernoulli"`` for MNIST).
    * gamma = 30: strong enough to keep reconstructions on their modes, weak enough to let the GAN
      term shape the decoder between the encoder's clusters, where prior samples also fall.

    On 28 x 28 images the command line's defaults (``--data fashion-mnist`` or ``mnist`` with
    ``--arch conv``: :func:`minigen.runs.defaults`) are ``llike="features"``,
    ``likelihood="bernoulli"``, ``beta=1``, ``gamma=1``, channels (32, 64), a 32-dimensional code
    and Adam at 2e-4 with beta1 = 0.5 in batches of 64.  They were chosen with runs of 1,500 steps
    (96,000 Fashion-MNIST images; Frechet distance / precision / recall of 2,000 samples against
    2,000 test images, :mod:`minigen.metrics`), against the conv VAE's 11.3 / 0.29 / 0.08 with the
    same steps:

    * ``beta=1`` (the default): 5.3 / 0.55 / 0.02 - sharper and more realistic than the VAE by
      both measures, but narrow: the features of a freshly initialised discriminator are tiny
      (L_llike starts near 0.05 nats while the KL term is 16), so the encoder's cheapest move is to
      forget most of the image - the KL falls to 2-3 nats, reconstructions keep only the kind of
      garment, and the samples cover little of the data (recall 0.02);
    * ``beta=0.1``: 4.6 / 0.38 / 0.21 - the KL stays at 10-20 nats, the encoder keeps the image and
      the samples cover ten times more of the data, at a lower precision: with 2 epochs on all of
      Fashion-MNIST and 10,000 reference images, 3.9 / 0.27 / 0.16 against the VAE's 11.3 / 0.33 /
      0.05, below the VAE's precision, so not the default;
    * ``llike="pixels"`` (the VAE's reconstruction term, the GAN weighted by 1 / gamma): 10.9 /
      0.27 / 0.14, barely different from the VAE: the Bernoulli term (about 250 nats) drowns the
      GAN's (about 1);
    * batch norm in the discriminator: images of inverted intensity (see ``__init__``).
    """

    kind = "vaegan"

    def __init__(self, data_dim, hidden=(64, 32), latent_dim=2, gamma=30.0, llike="pixels",
                 likelihood="gaussian", beta=0.01, activation="relu", disc_hidden=None, ema=None,
                 arch="mlp"):
        super().__init__()
        self.data_dim, self.hidden, self.latent_dim = check_sizes("VAEGAN", data_dim, hidden,
                                                                  latent_dim)
        _, self.disc_hidden, _ = check_sizes("VAEGAN", data_dim, hidden if disc_hidden is None
                                             else disc_hidden, latent_dim)
        if llike not in LLIKES:
            raise ValueError(f"VAEGAN: llike must be one of {', '.join(LLIKES)}, not {llike!r}")
        if not self.disc_hidden and llike == "features":
            raise ValueError("VAEGAN: llike='features' needs a discriminator with a hidden layer")
        self.likelihood = check_likelihood("VAEGAN", likelihood)
        self.llike, self.gamma, self.beta = llike, float(gamma), float(beta)
        self.activation = activation
        self.arch = check_arch("VAEGAN", arch)
        if self.arch == "conv":
            channels = check_conv("VAEGAN", self.data_dim, self.hidden)
            self.encoder = ConvEncoder(self.latent_dim, channels)
            self.decoder = ConvDecoder(self.latent_dim, channels)
            # no batch norm in this discriminator: its features are the decoder's reconstruction
            # metric, and statistics of a batch that mixes real images, reconstructions and
            # samples let the decoder match them with images of inverted intensity (seen in a
            # Fashion-MNIST run with it: white backgrounds, dark clothes)
            self.discriminator = ConvDiscriminator(check_conv("VAEGAN", data_dim, self.disc_hidden),
                                                   batch_norm=False)
        else:
            self.encoder = Encoder(self.data_dim, self.hidden, self.latent_dim, activation)
            self.decoder = mlp((self.latent_dim,) + self.hidden[::-1] + (self.data_dim,),
                               activation)
            self.discriminator = Discriminator(self.data_dim, self.disc_hidden, activation)
        self.ema = check_decay("VAEGAN", resolve_ema("VAEGAN", self.arch, ema, 0.99))
        if self.ema:
            self.decoder_ema = averaged_copy(self.decoder)

    def config(self):
        """The constructor's arguments as a JSON-able dict (``build_model("vaegan", **config)``)."""
        return {"data_dim": self.data_dim, "hidden": list(self.hidden),
                "latent_dim": self.latent_dim,
                "gamma": self.gamma, "llike": self.llike, "likelihood": self.likelihood,
                "beta": self.beta, "activation": self.activation,
                "disc_hidden": list(self.disc_hidden), "ema": self.ema, "arch": self.arch}

    # --- the model (as a VAE): encode, decode, reconstruct, log_px_given_z from EncoderDecoder ----
    def sample(self, n):
        """``n`` prior draws decoded to data space, as an (n, data_dim) constant (no graph), by the
        averaged decoder when there is one."""
        with no_grad():
            z = prior_noise(n, self.latent_dim, self._like())
            network = self.decoder_ema if self.ema else self.decoder
            return to_data_space(self.likelihood, network(z))

    def elbo(self, x):
        """The data-space ELBO per example (N,) in nats, one draw of z, no graph."""
        with no_grad():
            x = as_tensor(x, self._like())
            mu, log_var = self.encode(x)
            decoded = self.decode(reparameterize(mu, log_var))
            kl = gaussian_kl(mu, log_var, reduction="none").sum(axis=1)
            return self.log_px_given_z(x, decoded) - kl

    # --- the three losses -------------------------------------------------------------------------
    def losses(self, x):
        """Every term as a Tensor in one graph (batch means):

        ``prior`` (L_prior), ``llike`` (L_llike), ``d_loss`` (the discriminator's -L_GAN),
        ``g_loss`` (the decoder's non-saturating GAN loss), and each network's objective:
        ``encoder_loss`` = beta * prior + llike, ``decoder_loss`` = gamma * llike + g_loss (the
        discriminator's is d_loss). The discriminator sees the real batch, the reconstructions and
        the prior samples in one pass.
        """
        x = as_tensor(x, self._like())
        n = x.shape[0]
        mu, log_var = self.encoder(x)
        decoded = self.decoder(reparameterize(mu, log_var))
        x_rec = to_data_space(self.likelihood, decoded)
        x_prior = to_data_space(self.likelihood,
                                self.decoder(prior_noise(n, self.latent_dim, self._like())))

        features = self.discriminator.features(concatenate([x, x_rec, x_prior], axis=0))
        logits = self.discriminator.head(features)
        real, rec, fake = logits[:n], logits[n:2 * n], logits[2 * n:]

        prior = gaussian_kl(mu, log_var, reduction="batchmean")
        if self.llike == "features":
            diff = features[n:2 * n] - features[:n]
            llike = 0.5 * (diff * diff).sum(axis=1).mean()
        else:
            llike = -log_likelihood(self.likelihood, x, decoded).mean()
        d_loss = (bce_with_logits(real, 1.0) + bce_with_logits(rec, 0.0)
                  + bce_with_logits(fake, 0.0))
        g_loss = bce_with_logits(rec, 1.0) + bce_with_logits(fake, 1.0)
        return {"prior": prior, "llike": llike, "d_loss": d_loss, "g_loss": g_loss,
                "encoder_loss": self.beta * prior + llike,
                "decoder_loss": self.gamma * llike + g_loss}

    def gradients(self, x):
        """The losses of :meth:`losses` and each network's gradient from its own objective only:
        ``(losses, {"encoder": [...], "decoder": [...], "discriminator": [...]})``, one gradient per
        parameter in ``parameters()`` order.  No ``.grad`` is touched."""
        out = self.losses(x)
        grads = {
            "encoder": grad(out["encoder_loss"], self.encoder.parameters(), retain_graph=True),
            "decoder": grad(out["decoder_loss"], self.decoder.parameters(), retain_graph=True),
            "discriminator": grad(out["d_loss"], self.discriminator.parameters()),
        }
        return out, grads

    # --- training ---------------------------------------------------------------------------------
    def make_optimizers(self, lr=2e-3, betas=None):
        """One Adam per network.  ``betas`` by default: (0.9, 0.999) for a Gaussian likelihood (on
        the ring beta1 = 0.9 did better than the GAN's 0.5: the reconstruction term steadies the
        game); (0.5, 0.999) for a Bernoulli one, i.e. images (on MNIST: test ELBO -170 nats against
        -193 with 0.9, measured for tutorial 8)."""
        if betas is None:
            betas = (0.5, 0.999) if self.likelihood == "bernoulli" else (0.9, 0.999)
        return {name: Adam(getattr(self, name).parameters(), lr=lr, betas=betas)
                for name in ("encoder", "decoder", "discriminator")}

    def train_step(self, x, optimizers):
        """One step for all three networks, each from its own gradient; returns the losses as
        floats."""
        out, grads = self.gradients(x)
        for name, opt in optimizers.items():
            opt.zero_grad()
            for p, g in zip(getattr(self, name).parameters(), grads[name]):
                p.grad = g
            opt.step()
        if self.ema:
            update_average(self.decoder_ema, self.decoder, self.ema)
        return as_floats(out)

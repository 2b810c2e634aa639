"""The variational autoencoder (Kingma & Welling, 2013).

A VAE is a latent-variable model  p(x, z) = p(z) p(x | z)  with the prior p(z) = N(0, I) and a
decoder network giving p(x | z).  An encoder network gives an approximate posterior

    q(z | x) = N(mu(x), diag(exp(log_var(x))))

and both are trained together by maximising the evidence lower bound (ELBO) of each example:

    log p(x) >= ELBO(x) = E_q[log p(x | z)] - KL(q(z | x) || p(z))

The expectation is estimated with one draw z = mu + exp(0.5 * log_var) * eps, eps ~ N(0, I) (the
reparameterization trick, ``mg.reparameterize``), so the gradient flows into mu and log_var.  Note
the standard deviation is exp(0.5 * log_var): the founding document's exp(log_var) squares it.

The loss minimised is the negative ELBO per example (summed over the data dimensions and the latent
dimensions, averaged over the batch), with beta weighting the KL term (beta = 1 is the true bound;
Higgins et al. 2017 use beta > 1):

    loss = mean_n [ -log p(x_n | z_n) + beta * KL(q(z | x_n) || N(0, I)) ]

Two likelihoods p(x | z):

* ``"bernoulli"`` for data in [0, 1] (MNIST): the decoder outputs logits l and
  log p(x | z) = -sum_d bce_with_logits(l_d, x_d).
* ``"gaussian"`` for real-valued data (the 2-D sets): the decoder outputs the mean m, with unit
  variance, log p(x | z) = -sum_d [0.5 (x_d - m_d)^2 + 0.5 log(2 pi)] - the founding document's
  squared error
  ||x - G(E(x))||^2, halved, plus the constant that makes it a true log-density.
"""

from ..autograd import as_tensor, no_grad
from ..distributions import reparameterize
from ..losses import gaussian_kl
from ..optim import Adam
from .blocks import (Encoder, EncoderDecoder, as_floats, check_likelihood, check_sizes, mlp,
                     negative_log_likelihood, prior_noise, to_data_space)
from .conv_nets import ConvDecoder, ConvEncoder, check_arch, check_conv

__all__ = ["VAE"]


# --------------------------------------------------------------------------------------------------
# The VAE
# --------------------------------------------------------------------------------------------------

class VAE(EncoderDecoder):
    """A variational autoencoder with Dense (or convolutional) encoder and decoder.

    ``VAE(data_dim, hidden=(64, 32), latent_dim=2, likelihood="bernoulli", beta=1.0,
    activation="relu", arch="mlp")``

    * encoder: data_dim -> hidden[0] -> hidden[1] ... -> (mu, log_var), each of size latent_dim;
    * decoder: the mirror image, latent_dim -> hidden[-1] -> ... -> hidden[0] -> data_dim (linear
      output: logits for "bernoulli", the mean for "gaussian").
    * ``arch="conv"`` (28 x 28 images): DCGAN-style strided convolutions instead, ``hidden`` their
      two channel counts, e.g. (32, 64) (:mod:`minigen.models.conv_nets`).

    The defaults are the founding document's network for 2-D data (use ``likelihood="gaussian"``
    there); for MNIST the PyTorch example is ``VAE(784, hidden=(400,), latent_dim=20)``.
    """

    kind = "vae"

    def __init__(self, data_dim, hidden=(64, 32), latent_dim=2, likelihood="bernoulli", beta=1.0,
                 activation="relu", arch="mlp"):
        super().__init__()
        self.data_dim, self.hidden, self.latent_dim = check_sizes("VAE", data_dim, hidden,
                                                                  latent_dim)
        self.likelihood = check_likelihood("VAE", likelihood)
        self.beta = float(beta)
        self.activation = activation
        self.arch = check_arch("VAE", arch)
        if self.arch == "conv":
            channels = check_conv("VAE", self.data_dim, self.hidden)
            self.encoder = ConvEncoder(self.latent_dim, channels)
            self.decoder = ConvDecoder(self.latent_dim, channels)
        else:
            self.encoder = Encoder(self.data_dim, self.hidden, self.latent_dim, activation)
            self.decoder = mlp((self.latent_dim,) + self.hidden[::-1] + (self.data_dim,),
                               activation)

    def config(self):
        """The constructor's arguments as a JSON-able dict: ``build_model("vae", **m.config())``."""
        return {"data_dim": self.data_dim, "hidden": list(self.hidden),
                "latent_dim": self.latent_dim,
                "likelihood": self.likelihood, "beta": self.beta, "activation": self.activation,
                "arch": self.arch}

    # --- the model: encode, decode, forward, reconstruct come from EncoderDecoder -----------------
    def sample(self, n):
        """``n`` draws z ~ N(0, I) decoded to the mean of p(x | z), as an (n, data_dim) constant."""
        with no_grad():
            z = prior_noise(n, self.latent_dim, self._like())
            return to_data_space(self.likelihood, self.decode(z))

    # --- the objective ----------------------------------------------------------------------------
    def losses(self, x):
        """The training loss and its two parts, as Tensors in the graph (batch means, nats):

            reconstruction = mean_n -log p(x_n | z_n),      z_n = mu + exp(0.5 log_var) * eps
            kl             = mean_n sum_j KL(N(mu_j, exp(log_var_j)) || N(0, 1))
            loss           = reconstruction + beta * kl
        """
        x = as_tensor(x, self._like())
        mu, log_var = self.encode(x)
        z = reparameterize(mu, log_var)
        # a mean over the examples of a sum over the dimensions: reduction="batchmean" (one op each)
        reconstruction = negative_log_likelihood(self.likelihood, x, self.decode(z), "batchmean")
        kl = gaussian_kl(mu, log_var, reduction="batchmean")
        loss = reconstruction + (kl if self.beta == 1.0 else self.beta * kl)
        return {"loss": loss, "reconstruction": reconstruction, "kl": kl}

    def elbo(self, x):
        """The ELBO of each example (N,) in nats: log p(x | z) - KL(q(z | x) || p(z)) with one draw
        of z and beta = 1 (whatever the training beta), without recording a graph."""
        with no_grad():
            x = as_tensor(x, self._like())
            mu, log_var = self.encode(x)
            z = reparameterize(mu, log_var)
            kl = gaussian_kl(mu, log_var, reduction="none").sum(axis=1)
            return self.log_px_given_z(x, self.decode(z)) - kl

    # --- training ---------------------------------------------------------------------------------
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

"""minigen.models: the generative models of the founding document.

    from minigen.models import VAE, GAN, VAEGAN, build_model
    model = build_model("vaegan", data_dim=2)
    optimizers = model.make_optimizers()
    for x in loader:
        model.train_step(x, optimizers)
    same = build_model(model.kind, **model.config())     # the same architecture

* :class:`VAE` - variational autoencoder (Kingma & Welling 2013), Bernoulli or Gaussian likelihood;
* :class:`GAN` - generative adversarial network (Goodfellow et al. 2014), non-saturating loss;
* :class:`VAEGAN` - the VAE/GAN hybrid (Larsen et al. 2016).

Every model has ``kind``, ``config()``, ``sample(n)``, ``make_optimizers(lr=...)`` (a dict of
optimizers) and ``train_step(x, optimizers)`` (a dict of Python floats), so one training loop serves
all three.
"""

from .blocks import Discriminator, Encoder, mlp
from .gan import GAN
from .vae import VAE
from .vaegan import VAEGAN

__all__ = ["VAE", "GAN", "VAEGAN", "MODELS", "build_model", "Encoder", "Discriminator", "mlp"]

MODELS = {"vae": VAE, "gan": GAN, "vaegan": VAEGAN}


def build_model(kind, **config):
    """A new model of ``kind`` ("vae", "gan" or "vaegan") built from keyword arguments, e.g. a saved
    ``model.config()``."""
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    return MODELS[kind](**config)

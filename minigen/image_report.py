"""What a run on images (MNIST, Fashion-MNIST) measures and draws, beside what every run does.

``metrics.json`` gets

* ``frechet_distance``, ``precision``, ``recall`` (k = 3), ``class_coverage``, ``class_entropy``:
  :func:`minigen.metrics.image_quality` of ``quality_samples`` samples against
  ``reference_images`` real images (:func:`reference_images`: 10,000, Fashion-MNIST's test set,
  or MNIST's 2,000 held-out digits and its 8,000 training digits), on the features of the data
  set's shipped classifier (lower Frechet distance is better; it is not comparable with
  Inception-based FID);
* for models with an encoder (VAE, VAE-GAN): ``test_loss`` (the mean negative ELBO, nats per
  image), ``test_nll_iwae`` (the importance-weighted estimate of -log p(x) with ``iwae_k`` samples
  on the first ``iwae_examples`` test images) and ``bits_per_dim``, that estimate divided by
  784 log 2.  The likelihood is the decoder's Bernoulli one on the grey levels in [0, 1], so these
  are cross-entropies of the pixel intensities, the usual measure for a Bernoulli decoder on
  non-binary images - lower is better, comparable between minigen's models, not with papers that
  measure on binarized or dequantized pixels.

Figures: ``samples.png`` (10 x 10 samples, 3 screen pixels per image pixel), ``reconstructions.png``
(test images in the top row, their reconstructions under them), ``interpolations.png`` (decodings
along straight lines between the codes of two test images, or of two prior draws for the GAN).
"""

import math
import os

from . import plots
from .autograd import Tensor, no_grad
from .creation import randn
from .functions import concatenate, sigmoid
from .metrics import elbo, image_quality, iwae_bound

__all__ = ["image_metrics", "image_figures", "reference_images", "N_QUALITY", "N_REFERENCE",
           "N_IWAE_IMAGES", "IWAE_K", "interpolation_codes"]

N_QUALITY = 5_000        # samples for the Frechet distance and precision/recall
N_REFERENCE = 10_000     # real images they are compared with (reference_images)
N_IWAE_IMAGES = 2_000    # test images for the likelihood: all of MNIST's held-out 2,000
IWAE_K = 100
_CHUNK = 1_000


def _samples(model, n):
    """``n`` samples drawn ``_CHUNK`` at a time (bounded memory for the convolutions)."""
    with no_grad():
        return concatenate([model.sample(min(_CHUNK, n - start)) for start in range(0, n, _CHUNK)],
                           axis=0)


def reference_images(split, n=None):
    """The real images that samples are measured against: the first ``n`` (default
    ``N_REFERENCE``, 10,000) of the test images followed by the training images - Fashion-MNIST's
    10,000 test images; MNIST's 2,000 held-out digits, then its 8,000 training digits.

    Why so many: precision and recall estimate each manifold as a union of k-NN balls, and with few
    reference images the balls of the few unusual ones are large.  Against Fashion-MNIST's first
    2,000 test images one shirt (test image 622, whose third neighbour is twice as far as the
    median) swallowed 13% of uniform-noise samples (precision 0.13); against 5,000 or 10,000,
    noise scores 0.000.  Kynkaenniemi et al. (2019) use 50,000 images of each set.
    """
    n = n or N_REFERENCE
    test = split.test_images[:min(n, len(split.test_images))]
    if test.shape[0] >= n:
        return test
    extra = split.train_images[:min(n - test.shape[0], len(split.train_images))]
    return concatenate([test, extra], axis=0)


def image_metrics(model, dataset, iwae_k=None, n_quality=None, n_iwae=None):
    """The image measures of ``model`` (in eval mode) on ``dataset`` (a
    :class:`minigen.runs.Dataset` of images), as a dict of Python numbers; see the module
    docstring.  The sizes default to ``IWAE_K``, ``N_QUALITY`` and ``N_IWAE_IMAGES``; the real
    images are ``dataset.reference`` (:func:`reference_images`), or its test images when it has
    none, at most ``N_REFERENCE`` of them."""
    iwae_k = iwae_k or IWAE_K
    n_iwae = n_iwae or N_IWAE_IMAGES
    real = dataset.test if getattr(dataset, "reference", None) is None else dataset.reference
    real = real[:min(N_REFERENCE, len(real))]
    n = n_quality or N_QUALITY
    with no_grad():
        quality = image_quality(_samples(model, n), real, dataset.name)
        metrics = {key: quality[key] for key in ("frechet_distance", "precision", "recall",
                                                 "class_coverage", "class_entropy")}
        metrics.update(quality_samples=n, reference_images=real.shape[0])
        if hasattr(model, "encode"):
            # at most 1,000 decoder rows at a time: a transposed convolution's column buffer for
            # 20,000 rows (iwae_bound's default) would take gigabytes
            m = min(n_iwae, len(dataset.test))
            x = dataset.test[:m]
            nll = -iwae_bound(model, x, k=iwae_k, batch_size=10, max_rows=_CHUNK).mean().item()
            metrics.update(test_loss=-elbo(model, x).mean().item(), test_nll_iwae=nll,
                           iwae_k=iwae_k, iwae_examples=m,
                           bits_per_dim=nll / (dataset.data_dim * math.log(2)))
    return metrics


def interpolation_codes(start, end, steps):
    """``steps`` codes on the straight line from each row of ``start`` to the same row of ``end``
    (both (R, L)): (R * steps, L), row r's line in rows r * steps ... r * steps + steps - 1."""
    rows, latent = start.shape
    t = Tensor([i / (steps - 1) for i in range(steps)], dtype=start.dtype).to(start.device)
    t = t.reshape(1, steps, 1)
    line = start.reshape(rows, 1, latent) * (1.0 - t) + end.reshape(rows, 1, latent) * t
    return line.reshape(rows * steps, latent)


def _decoded(model, z):
    """Images (in [0, 1]) for codes ``z``: the decoder's mean, or the GAN's generator."""
    if hasattr(model, "decode"):
        return sigmoid(model.decode(z))
    return model(z)


def image_figures(model, dataset, out, rows=8, steps=10):
    """``samples.png``, ``reconstructions.png`` and ``interpolations.png`` of ``model`` (in eval
    mode) into the folder ``out``; returns their paths."""
    paths = []
    with no_grad():
        figure = plots.image_mosaic(_samples(model, 100), rows=10, cols=10,
                                    title=f"{model.kind} samples ({dataset.name})")
        paths.append(plots.save(figure, os.path.join(out, "samples.png")))
        x = dataset.test[:2 * rows]
        if hasattr(model, "encode"):
            originals = x[:10]
            both = concatenate([originals, model.reconstruct(originals)], axis=0)
            figure = plots.image_mosaic(both, rows=2, cols=10,
                                        row_labels=["test image", "reconstruction"])
            paths.append(plots.save(figure, os.path.join(out, "reconstructions.png")))
            mu, _ = model.encode(x)
            start, end = mu[:rows], mu[rows:2 * rows]
        else:
            like = model.discriminator.head.weight
            start = randn(rows, model.latent_dim, like=like)
            end = randn(rows, model.latent_dim, like=like)
        images = _decoded(model, interpolation_codes(start, end, steps))
        figure = plots.interpolations(images, steps, title="interpolations: straight lines between "
                                      + ("the codes of two test images" if hasattr(model, "encode")
                                         else "two prior draws"))
        paths.append(plots.save(figure, os.path.join(out, "interpolations.png")))
    return paths

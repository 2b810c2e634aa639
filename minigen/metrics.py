"""Metrics: mode coverage on the 2-D sets, and the ELBO and importance-weighted likelihood of a VAE.

Mode coverage (the VEEGAN / PacGAN protocol, Srivastava et al. 2017; Lin et al. 2018)

Draw 2,500 samples.  A sample is *high quality* when it lies within 3 standard deviations of its nearest
mode centre.  A mode is *covered* when it is the nearest mode of at least one high-quality sample.  The
*reverse KL* compares the histogram q of high-quality samples over the modes with the uniform histogram
u of the true mixture:

    KL(q || u) = sum_k q_k log(q_k / u_k) = sum_k q_k log(K q_k)      (terms with q_k = 0 are 0)

0 means every mode gets the same share; log K means all high-quality samples sit on one mode.

Likelihoods of a VAE (all in nats per example)

* ELBO:  log p(x) >= E_q[log p(x|z)] - KL(q(z|x) || p(z)).
* Importance weighted bound with K samples z_k ~ q(z|x) (Burda et al. 2015):

      L_K = log (1/K) sum_k p(x, z_k) / q(z_k|x)  <= log p(x),

  computed with logsumexp.  E[L_1] is the ELBO and E[L_K] grows with K towards log p(x), so
  -L_K is an estimate of the negative log-likelihood that tightens as K grows.
"""

import math

from . import backend as B
from .autograd import Tensor, no_grad
from .data import toy_modes

__all__ = ["mode_metrics", "nearest_modes"]


def nearest_modes(samples, centres):
    """For each sample (N, 2), the index of the nearest centre (K, 2) and the distance to it."""
    with no_grad():
        diff = samples.reshape(samples.shape[0], 1, -1) - centres.reshape(1, *centres.shape)
        dist2 = (diff * diff).sum(axis=2)                       # (N, K)
        xp = B.namespace(dist2.data)
        index = xp.argmin(dist2.data, axis=1)
        nearest = xp.min(dist2.data, axis=1)
    return index, xp.sqrt(nearest)


def mode_metrics(samples, data="ring", threshold=3.0):
    """Modes covered, high-quality fraction and reverse KL of ``samples`` (N, 2) for "ring" or "grid".

    Returns a dict of Python numbers: ``modes_covered``, ``modes_total``, ``high_quality_fraction``,
    ``reverse_kl`` (nats; ``inf`` when no sample is of high quality).
    """
    spec = toy_modes(data) if isinstance(data, str) else data
    samples = samples if isinstance(samples, Tensor) else Tensor(samples)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"mode_metrics: samples must have shape (N, 2), not {samples.shape}")
    centres = Tensor(spec.modes, dtype=B.dtype_name(samples.dtype)).to(samples.device)
    index, distance = nearest_modes(samples, centres)
    owner = B.of(index)
    index, distance = owner.to_numpy(index), owner.to_numpy(distance)  # a few thousand numbers: host
    good = distance <= threshold * spec.std
    k = len(spec.modes)
    counts = [int((index[good] == m).sum()) for m in range(k)]
    n_good = sum(counts)
    if n_good:
        reverse_kl = sum(c / n_good * math.log(k * c / n_good) for c in counts if c)
    else:
        reverse_kl = math.inf
    return {
        "modes_covered": sum(1 for c in counts if c),
        "modes_total": k,
        "high_quality_fraction": n_good / len(index),
        "reverse_kl": reverse_kl,
    }

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
from .functions import broadcast_to, concatenate, exp, logsumexp
from .nn._arrays import standard_normal_like

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


# ----------------------------------------------------------------------------------------------------
# Likelihoods of a VAE (any model with encode, decode and log_px_given_z: VAE, VAEGAN)
# ----------------------------------------------------------------------------------------------------

__all__ += ["elbo", "iwae_bound", "evaluate_vae"]


def _batches(x, batch_size):
    """Slices of at most ``batch_size`` rows (stops kept in range: the array API leaves slices past the
    end unspecified)."""
    n = x.shape[0]
    for start in range(0, n, batch_size):
        yield x[start:min(start + batch_size, n)]


def elbo(model, x, batch_size=500):
    """The ELBO of each example of ``x`` (N,) in nats, one draw of z per example, in batches."""
    with no_grad():
        return concatenate([model.elbo(batch) for batch in _batches(x, batch_size)], axis=0)


def _log_weights(model, x, k):
    """log w_k = log p(x, z_k) - log q(z_k | x) for k draws z_k ~ q(z | x): a (k, N) tensor.

    With z = mu + sigma * eps (sigma = exp(0.5 log_var)) the Gaussian densities are

        log p(z)     = sum_j [-0.5 z_j^2 - 0.5 log(2 pi)]
        log q(z | x) = sum_j [-0.5 eps_j^2 - 0.5 log_var_j - 0.5 log(2 pi)]

    so log p(z) - log q(z | x) = sum_j [0.5 (eps_j^2 - z_j^2 + log_var_j)] (the constants cancel).
    """
    n = x.shape[0]
    mu, log_var = model.encode(x)                                        # (N, L)
    latent = mu.shape[1]
    eps = Tensor(standard_normal_like((k, n, latent), mu.data))          # (k, N, L)
    z = mu.reshape(1, n, latent) + exp(0.5 * log_var).reshape(1, n, latent) * eps
    log_prior_ratio = (0.5 * (eps * eps - z * z + log_var.reshape(1, n, latent))).sum(axis=2)
    decoded = model.decode(z.reshape(k * n, latent))                     # (k N, D)
    x_rep = broadcast_to(x.reshape(1, n, -1), (k,) + tuple(x.shape)).reshape(k * n, -1)
    log_px = model.log_px_given_z(x_rep, decoded).reshape(k, n)
    return log_px + log_prior_ratio


def iwae_bound(model, x, k=50, batch_size=100, max_rows=20000):
    """The importance-weighted bound L_K of each example (N,) in nats (Burda et al. 2015):

        L_K(x) = log (1/K) sum_k p(x, z_k) / q(z_k | x),     z_1..z_K ~ q(z | x)
               = logsumexp_k(log w_k) - log K

    E[L_1] is the ELBO, E[L_K] <= E[L_{K+1}] <= log p(x), so -L_K estimates the negative log-likelihood
    from above, more tightly as K grows.  The examples go ``batch_size`` at a time; the K draws in
    chunks of at most ``max_rows`` decoder rows, combined with logsumexp (log-sum-exp of per-chunk
    log-sum-exps is the log-sum-exp of all), so memory stays bounded for K = 5000.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"iwae_bound: k must be at least 1, not {k}")
    results = []
    with no_grad():
        for batch in _batches(x, batch_size):
            chunk = max(1, min(k, max_rows // batch.shape[0]))
            parts = [logsumexp(_log_weights(model, batch, min(chunk, k - start)), axis=0, keepdims=True)
                     for start in range(0, k, chunk)]
            total = parts[0] if len(parts) == 1 else logsumexp(concatenate(parts, axis=0), axis=0,
                                                               keepdims=True)
            results.append(total.reshape(-1) - math.log(k))
    return concatenate(results, axis=0)


def evaluate_vae(model, x, k=500, batch_size=100):
    """Test metrics of a VAE on ``x``, in nats per example, as Python floats:

    ``test_loss``: the mean negative ELBO (one draw of z per example, the loss a VAE trains on with
    beta = 1); ``test_nll_iwae``: the mean of -L_K, the importance-weighted estimate of -log p(x).
    """
    with no_grad():
        test_loss = -elbo(model, x).mean().item()
        nll = -iwae_bound(model, x, k=k, batch_size=batch_size).mean().item()
    return {"test_loss": test_loss, "test_nll_iwae": nll}

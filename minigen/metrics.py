"""Metrics: mode coverage on the 2-D sets, and the ELBO and importance-weighted likelihood of a VAE.

Mode coverage (the VEEGAN / PacGAN protocol, Srivastava et al. 2017; Lin et al. 2018)

Draw 2,500 samples.  A sample is *high quality* when it lies within 3 standard deviations of its
nearest mode centre.  A mode is *covered* when it is the nearest mode of at least one high-quality
sample.  The *reverse KL* compares the histogram q of high-quality samples over the modes with the
uniform histogram u of the true mixture:

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
from .creation import randn
from .data import toy_modes
from .functions import broadcast_to, concatenate, exp, logsumexp
from .models.classifier import load_classifier
from .models.conv_nets import IMAGE_DIM

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
    """Modes covered, high-quality fraction and reverse KL of ``samples`` (N, 2) for "ring" or
    "grid".

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
    # a few thousand numbers: host
    index, distance = owner.to_numpy(index), owner.to_numpy(distance)
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


# --------------------------------------------------------------------------------------------------
# Likelihoods of a VAE (any model with encode, decode and log_px_given_z: VAE, VAEGAN)
# --------------------------------------------------------------------------------------------------

__all__ += ["elbo", "iwae_bound", "evaluate_vae"]


def _batches(x, batch_size):
    """Slices of at most ``batch_size`` rows (stops kept in range: the array API leaves slices past
    the end unspecified)."""
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
    eps = randn(k, n, latent, like=mu)                                   # (k, N, L)
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

    E[L_1] is the ELBO, E[L_K] <= E[L_{K+1}] <= log p(x), so -L_K estimates the negative
    log-likelihood from above, more tightly as K grows.  The examples go ``batch_size`` at a time;
    the K draws in chunks of at most ``max_rows`` decoder rows, combined with logsumexp (log-sum-exp
    of per-chunk log-sum-exps is the log-sum-exp of all), so memory stays bounded for K = 5000.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"iwae_bound: k must be at least 1, not {k}")
    results = []
    with no_grad():
        for batch in _batches(x, batch_size):
            chunk = max(1, min(k, max_rows // batch.shape[0]))
            parts = [logsumexp(_log_weights(model, batch, min(chunk, k - start)), axis=0,
                               keepdims=True)
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


# --------------------------------------------------------------------------------------------------
# Sample quality of images, on features: Frechet distance, precision and recall, class coverage
# --------------------------------------------------------------------------------------------------

__all__ += ["frechet_distance", "precision_recall", "class_coverage"]


def _feature_matrix(x, what, op):
    """``x`` (a Tensor or array-like of shape (N, D)) as a float64 backend array, ``x``'s backend.

    The statistics below are sums over thousands of rows and square roots of D x D matrices whose
    small eigenvalues matter, so they run in float64 (D is at most a few hundred: cheap)."""
    data = x.data if isinstance(x, Tensor) else Tensor(x).data
    if data.ndim != 2:
        raise ValueError(f"{op}: {what} must be a matrix (N examples, D features), not shape "
                         f"{tuple(data.shape)}")
    owner = B.of(data)
    return owner.asarray(data, dtype=owner.dtype("float64"))


def _check_pair(a, b, op, names=("features_a", "features_b"), least=2):
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{op}: {names[0]} {tuple(a.shape)} and {names[1]} {tuple(b.shape)} have "
                         "different numbers of features; compute both with the same feature map")
    for name, x in zip(names, (a, b)):
        if x.shape[0] < least:
            raise ValueError(f"{op}: {name} has {x.shape[0]} rows; at least {least} are needed")
    if B.of(a) is not B.of(b):
        raise ValueError(f"{op}: {names[0]} is on {B.of(a).name} and {names[1]} on "
                         f"{B.of(b).name}; move both to one backend")


def _mean_and_covariance(x):
    """The mean (D,), the unbiased covariance (D, D) of the rows of ``x`` (N, D) and its trace."""
    xp = B.namespace(x)
    mean = xp.mean(x, axis=0)
    centred = x - mean
    n = x.shape[0] - 1
    return mean, (xp.matrix_transpose(centred) @ centred) / n, xp.sum(centred * centred) / n


def _trace_sqrt_product(a, b):
    """tr((A B)^(1/2)) for symmetric positive semi-definite A and B, by two symmetric eigenproblems.

    A^(1/2) = V diag(sqrt(w)) V^T from A = V diag(w) V^T; then A B = A^(1/2) (A^(1/2) B A^(1/2))
    A^(-1/2) is similar to M = A^(1/2) B A^(1/2), which is symmetric positive semi-definite, so
    tr((A B)^(1/2)) = sum_i sqrt(lambda_i(M)).  Unlike a general matrix square root of A B (which is
    not symmetric, and whose rounding errors make complex numbers appear) every step stays real and
    symmetric; eigenvalues a rounding error below 0 are clipped to 0.
    """
    xp = B.namespace(a)
    w, v = xp.linalg.eigh(a)
    root = (v * xp.sqrt(xp.maximum(w, 0.0))) @ xp.matrix_transpose(v)
    m = root @ b @ root
    m = 0.5 * (m + xp.matrix_transpose(m))
    return xp.sum(xp.sqrt(xp.maximum(xp.linalg.eigvalsh(m), 0.0)))


def frechet_distance(features_a, features_b):
    """The Frechet distance between Gaussians fitted to two sets of features (N_a, D) and (N_b, D):

        d^2 = ||mu_a - mu_b||^2 + tr(C_a) + tr(C_b) - 2 tr((C_a C_b)^(1/2))

    with mu and C each set's mean and unbiased covariance.  This is the formula of the Frechet
    Inception Distance (FID, Heusel et al. 2017), here on the features of minigen's own small
    classifier (``image_features``), so its values are **not comparable with Inception-based
    FID** numbers in papers: compare runs measured with the same features and number of samples
    (the estimate is biased upwards for small sets).  0 for identical statistics; it grows as the
    means move apart and as the spreads differ.  Computed in float64 on the features' backend
    (:func:`_trace_sqrt_product` says how the square root is taken); returns a Python float.
    """
    a = _feature_matrix(features_a, "features_a", "frechet_distance")
    b = _feature_matrix(features_b, "features_b", "frechet_distance")
    _check_pair(a, b, "frechet_distance")
    xp = B.namespace(a)
    with no_grad():
        mu_a, cov_a, trace_a = _mean_and_covariance(a)
        mu_b, cov_b, trace_b = _mean_and_covariance(b)
        diff = mu_a - mu_b
        value = xp.sum(diff * diff) + trace_a + trace_b - 2.0 * _trace_sqrt_product(cov_a, cov_b)
    return max(float(value), 0.0)       # a rounding error below 0 for two identical sets


def _squared_distances(a, b):
    """||a_i - b_j||^2 for rows a (n, D) and b (m, D): (n, m), by ||a||^2 + ||b||^2 - 2 a b^T."""
    xp = B.namespace(a)
    d = (xp.sum(a * a, axis=1)[:, None] + xp.sum(b * b, axis=1)[None, :]
         - 2.0 * (a @ xp.matrix_transpose(b)))
    return xp.maximum(d, 0.0)


def _row_blocks(n, m, budget=1 << 22):
    """Row ranges of at most ``budget`` / m rows: distance blocks of a bounded size."""
    step = max(1, budget // max(m, 1))
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _knn_radii(x, k):
    """The squared distance from each row of ``x`` to its k-th nearest other row (N,)."""
    xp = B.namespace(x)
    radii = []
    for start, stop in _row_blocks(x.shape[0], x.shape[0]):
        d = xp.sort(_squared_distances(x[start:stop, :], x), axis=1)
        radii.append(d[:, k])            # column 0 is the row itself, at distance 0
    return xp.concat(radii)


def _fraction_inside(points, centres, radii):
    """The fraction of ``points`` inside at least one ball (centre_i, radius_i) (squared radii)."""
    xp = B.namespace(points)
    inside = 0
    for start, stop in _row_blocks(points.shape[0], centres.shape[0]):
        d = _squared_distances(points[start:stop, :], centres)
        inside += int(xp.sum(xp.astype(xp.any(d <= radii[None, :], axis=1), xp.int64)))
    return inside / points.shape[0]


def precision_recall(real_features, fake_features, k=3):
    """Improved precision and recall (Kynkaanniemi et al. 2019) of generated samples, on features.

    Each set stands for its distribution's *manifold*: the union of balls around its points, each
    ball reaching the point's k-th nearest neighbour within its own set,

        manifold(Phi) = union over phi in Phi of {x : ||x - phi|| <= ||phi - NN_k(phi, Phi)||}

    * precision = the fraction of generated points inside manifold(real): how many samples look
      real (quality);
    * recall = the fraction of real points inside manifold(generated): how much of the real data
      the samples reach (diversity).

    Both lie in [0, 1].  Two samples of one distribution score high on both; noise scores a
    precision near 0; a model that makes few good kinds of image has high precision, low recall.
    Distances are computed in blocks of rows (memory stays bounded); the k-th neighbour is read from
    each sorted row.  Returns ``{"precision": p, "recall": r}`` as Python floats.
    """
    k = int(k)
    real = _feature_matrix(real_features, "real_features", "precision_recall")
    fake = _feature_matrix(fake_features, "fake_features", "precision_recall")
    if k < 1:
        raise ValueError(f"precision_recall: k must be at least 1, not {k}")
    _check_pair(real, fake, "precision_recall", ("real_features", "fake_features"), least=k + 1)
    with no_grad():
        precision = _fraction_inside(fake, real, _knn_radii(real, k))
        recall = _fraction_inside(real, fake, _knn_radii(fake, k))
    return {"precision": precision, "recall": recall}


def class_coverage(labels, num_classes=10, min_share=0.1):
    """How evenly predicted class labels (N,) spread over ``num_classes`` classes.

    * ``class_coverage``: the number of classes *hit*, i.e. given to at least ``min_share`` of the
      share a uniform spread would give (N / num_classes); with the default 0.1 and 10 classes, 1%
      of the samples, so a few stray predictions do not make a class covered;
    * ``class_entropy``: H = -sum_c p_c log p_c of the label frequencies p_c, in nats: log(10) =
      2.303 for an even spread over 10 classes, 0 when every sample gets one class;
    * ``class_fractions``: p_c for each class.

    A GAN that collapses onto a few modes covers few classes with a low entropy.  The labels are a
    few thousand integers: they are counted on the host.
    """
    data = labels.data if isinstance(labels, Tensor) else Tensor(labels).data
    if data.ndim != 1 or data.shape[0] == 0:
        raise ValueError(f"class_coverage: labels must be a non-empty vector, not shape "
                         f"{tuple(data.shape)}")
    values = B.of(data).to_numpy(data).tolist()
    counts = [0] * num_classes
    for value in values:
        if not 0 <= value < num_classes:
            raise ValueError(f"class_coverage: label {value} is outside 0..{num_classes - 1}")
        counts[int(value)] += 1
    n = len(values)
    fractions = [c / n for c in counts]
    return {
        "class_coverage": sum(1 for c in counts if c >= min_share * n / num_classes),
        "class_entropy": sum(-p * math.log(p) for p in fractions if p > 0),      # 0.0, not -0.0
        "class_fractions": fractions,
    }


# --------------------------------------------------------------------------------------------------
# Features and classes of images from the shipped classifier, and everything together
# --------------------------------------------------------------------------------------------------

__all__ += ["image_features", "image_classes", "image_quality"]


def _classifier_outputs(images, dataset, batch_size=500):
    """(features (N, 576), logits (N, 10)) of images (N, 784) in [0, 1], in batches, no graph."""
    images = images if isinstance(images, Tensor) else Tensor(images)
    if images.ndim != 2 or images.shape[1] != IMAGE_DIM:
        raise ValueError(f"image metrics: images must be (N, {IMAGE_DIM}) rows of 28 x 28 pixels "
                         f"in [0, 1], not shape {images.shape}")
    owner = B.of(images.data)
    model = load_classifier(dataset, owner.name, B.dtype_name(images.dtype))
    features, logits = [], []
    with no_grad():
        for batch in _batches(images, batch_size):
            h, out = model.features_and_logits(batch)
            features.append(h)
            logits.append(out)
    return concatenate(features, axis=0), concatenate(logits, axis=0)


def image_features(images, dataset):
    """The 576 features of each image (N, 784) -> (N, 576) from ``dataset``'s shipped classifier
    (:mod:`minigen.models.classifier`): the space in which :func:`frechet_distance` and
    :func:`precision_recall` compare images.  ``dataset``: "mnist" or "fashion-mnist".  The first
    call for a backend and dtype loads the weights (building the network first draws its random
    initial weights from the backend's generator, then replaces them)."""
    return _classifier_outputs(images, dataset)[0]


def image_classes(images, dataset):
    """The class the shipped classifier of ``dataset`` predicts for each image: (N,) int64."""
    logits = _classifier_outputs(images, dataset)[1]
    xp = B.namespace(logits.data)
    return Tensor(xp.astype(xp.argmax(logits.data, axis=1), xp.int64))


def image_quality(samples, real, dataset, k=3):
    """Every image measure of ``samples`` (N, 784) against ``real`` images (M, 784) of ``dataset``,
    as a dict of Python numbers:

    * ``frechet_distance``: between the Gaussians fitted to the classifier features of both sets
      (lower is better; minigen's own features, **not comparable with Inception FID**);
    * ``precision``, ``recall``: Kynkaanniemi et al. 2019 with ``k`` neighbours, on the same
      features;
    * ``class_coverage``, ``class_entropy``, ``class_fractions``: how the samples spread over the
      classes the classifier sees in them (:func:`class_coverage`);
    * ``samples``, ``real``: the sizes (the Frechet distance of small sets is biased upwards:
      compare numbers measured with the same sizes).
    """
    fake_features, fake_logits = _classifier_outputs(samples, dataset)
    real_features, _ = _classifier_outputs(real, dataset)
    xp = B.namespace(fake_logits.data)
    classes = Tensor(xp.astype(xp.argmax(fake_logits.data, axis=1), xp.int64))
    out = {"frechet_distance": frechet_distance(real_features, fake_features)}
    out.update(precision_recall(real_features, fake_features, k=k))
    out.update(class_coverage(classes, num_classes=fake_logits.shape[1]))
    out.update(samples=fake_features.shape[0], real=real_features.shape[0])
    return out

"""Image-quality measures: the Frechet distance against a SciPy reference, precision and recall
against a brute-force reference, class coverage by hand, and that they behave like measures on real
images (more blur or more noise: farther; real against real: high precision and recall)."""

import math
import os

import numpy as np
import pytest
import scipy.linalg
import scipy.ndimage
from hypothesis import given, settings, strategies as st

import minigen as mg
from minigen import metrics


def _reference_frechet(a, b):
    """The FID formula as usually written: a general matrix square root of C_a C_b (SciPy)."""
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b)
                 - 2 * np.trace(root))


@settings(max_examples=15)
@given(d=st.integers(1, 12), extra=st.integers(2, 40), seed=st.integers(0, 2 ** 16),
       shift=st.floats(-3, 3), scale=st.floats(0.2, 3))
def test_frechet_distance_matches_the_scipy_formula(d, extra, seed, shift, scale):
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((d, d))
    a = rng.standard_normal((d + extra, d)) @ mix
    b = scale * rng.standard_normal((d + extra + 3, d)) @ mix + shift
    expected = _reference_frechet(a, b)
    assert metrics.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6, abs=1e-8)
    assert metrics.frechet_distance(b, a) == pytest.approx(expected, rel=1e-6, abs=1e-8)


def test_frechet_distance_on_each_backend(backend):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((60, 5)), 0.5 * rng.standard_normal((80, 5)) + 1.0
    got = metrics.frechet_distance(mg.Tensor(a), mg.Tensor(b))
    assert isinstance(got, float) and got == pytest.approx(_reference_frechet(a, b), rel=1e-6)


def test_frechet_distance_identities():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 16))
    shift = rng.standard_normal(16)
    assert metrics.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # the same spread moved by c: exactly ||c||^2
    assert metrics.frechet_distance(x, x + shift) == pytest.approx((shift ** 2).sum(), rel=1e-9)
    # N(0, s^2 I) against N(0, I) in D dimensions: D (s - 1)^2 in the limit of many samples
    big = rng.standard_normal((40000, 4))
    assert metrics.frechet_distance(big, 3.0 * rng.standard_normal((40000, 4))) == \
        pytest.approx(4 * (3 - 1) ** 2, rel=0.03)


def test_frechet_distance_is_stable_when_covariances_are_singular():
    # fewer rows than features: both covariances are singular, where a general sqrtm of C_a C_b
    # loses accuracy; the symmetric route stays real, finite and non-negative
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((20, 64)), rng.standard_normal((30, 64))
    value = metrics.frechet_distance(a, b)
    assert math.isfinite(value) and value > 0
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-7)
    low_rank = rng.standard_normal((500, 3)) @ rng.standard_normal((3, 40))     # rank 3 in 40-D
    assert metrics.frechet_distance(low_rank, low_rank) == pytest.approx(0.0, abs=1e-7)


def test_frechet_distance_refuses_bad_shapes():
    with pytest.raises(ValueError, match=r"frechet_distance: features_a \(5, 3\) and features_b "
                                         r"\(5, 4\) have different numbers of features"):
        metrics.frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="features_b has 1 rows; at least 2"):
        metrics.frechet_distance(np.zeros((5, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="must be a matrix"):
        metrics.frechet_distance(np.zeros(5), np.zeros((5, 1)))


def _reference_precision_recall(real, fake, k):
    """Kynkaanniemi et al. 2019 with explicit loops over points."""
    def radii(x):
        d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
        return np.array([np.sort(row)[k] for row in d])        # row[0] is the point itself

    def inside(points, centres, r):
        return np.mean([any(np.linalg.norm(p - c) <= rc for c, rc in zip(centres, r))
                        for p in points])

    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_recall_matches_a_brute_force_reference(backend, k):
    rng = np.random.default_rng(k)
    real = rng.standard_normal((70, 3))
    fake = np.concatenate([rng.standard_normal((30, 3)) * 0.5, rng.standard_normal((25, 3)) + 4])
    got = metrics.precision_recall(mg.Tensor(real), mg.Tensor(fake), k=k)
    precision, recall = _reference_precision_recall(real, fake, k)
    assert got == {"precision": pytest.approx(precision), "recall": pytest.approx(recall)}


def test_precision_recall_in_blocks_equals_all_at_once(monkeypatch):
    rng = np.random.default_rng(4)
    real, fake = rng.standard_normal((90, 4)), rng.standard_normal((50, 4)) + 0.7
    whole = metrics.precision_recall(real, fake)
    monkeypatch.setattr(metrics, "_row_blocks",
                        lambda n, m, budget=None: [(s, min(s + 7, n)) for s in range(0, n, 7)])
    assert metrics.precision_recall(real, fake) == whole


def test_precision_recall_behave_like_measures():
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((10, 8)) * 6

    def mixture(n, modes):
        return centres[rng.choice(modes, n)] + rng.standard_normal((n, 8))
    real = mixture(3000, range(10))
    same = metrics.precision_recall(real, mixture(3000, range(10)))
    assert same["precision"] > 0.8 and same["recall"] > 0.8             # 0.87 and 0.86 in 8-D
    half = metrics.precision_recall(real, mixture(3000, range(5)))      # mode dropping
    assert half["precision"] > 0.8 and 0.35 < half["recall"] < 0.55     # about half of 0.86
    noise = metrics.precision_recall(real, rng.uniform(-30, 30, (3000, 8)))
    assert noise["precision"] < 0.05
    with pytest.raises(ValueError, match="fake_features has 3 rows; at least 4"):
        metrics.precision_recall(real, real[:3], k=3)


def test_class_coverage_by_hand():
    labels = [0] * 50 + [1] * 30 + [2] * 19 + [3]              # 100 labels
    out = metrics.class_coverage(mg.Tensor(labels, dtype="int64"), num_classes=10)
    p = np.array([0.5, 0.3, 0.19, 0.01])
    assert out["class_coverage"] == 4                           # 1 of 100 is exactly 10% of 10%
    assert out["class_entropy"] == pytest.approx(-(p * np.log(p)).sum())
    assert out["class_fractions"][:4] == pytest.approx(p.tolist())
    assert out["class_fractions"][9] == 0
    assert metrics.class_coverage([0, 1] * 50, num_classes=10, min_share=0.3)["class_coverage"] == 2
    even = metrics.class_coverage(list(range(10)) * 7)
    assert even["class_coverage"] == 10 and even["class_entropy"] == pytest.approx(math.log(10))
    with pytest.raises(ValueError, match="label 10 is outside 0..9"):
        metrics.class_coverage([1, 10])
    with pytest.raises(ValueError, match="non-empty vector"):
        metrics.class_coverage(mg.Tensor(np.zeros((2, 2), dtype=np.int64)))


# --------------------------------------------------------------------------------------------------
# On real images (needs MINIGEN_DATA)
# --------------------------------------------------------------------------------------------------

def _real_images():
    root = os.environ.get("MINIGEN_DATA")
    if not root:
        pytest.skip("MINIGEN_DATA is not set")
    if os.path.isdir(os.path.join(root, "fashion-mnist")):
        split = mg.data.load_fashion_mnist(log=lambda m: None)
    else:
        split = mg.data.load_mnist(log=lambda m: None)
    return split.train_images.numpy()[:1500], split.test_images.numpy()[:1500]


def _blur(images, sigma):
    grid = images.reshape(-1, 28, 28)
    return scipy.ndimage.gaussian_filter(grid, sigma=(0, sigma, sigma)).reshape(-1, 784)


def test_pixel_frechet_distance_grows_with_blur_and_noise():
    # On raw pixels a blur below one pixel can even lower the distance (it smooths MNIST's strokes
    # towards the mean image), so the steps here start at a sigma of one pixel.
    real, other = _real_images()
    blurred = [metrics.frechet_distance(real, _blur(other, s)) for s in (0.0, 1.0, 2.0, 3.0)]
    assert blurred == sorted(blurred) and blurred[0] < 0.5 * blurred[-1]
    rng = np.random.default_rng(0)
    noisy = []
    for fraction in (0.0, 0.25, 0.5, 1.0):
        mixed = other.copy()
        chosen = rng.random(len(mixed)) < fraction
        mixed[chosen] = rng.random((chosen.sum(), 784))
        noisy.append(metrics.frechet_distance(real, mixed))
    assert noisy == sorted(noisy) and noisy[0] < 0.2 * noisy[-1]


# --------------------------------------------------------------------------------------------------
# The shipped feature classifiers, and the measures on their features
# --------------------------------------------------------------------------------------------------

from minigen import backend as B  # noqa: E402
from minigen.models import classifier  # noqa: E402


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_shipped_weights_are_small_plain_arrays_that_fit_the_network(dataset):
    path = classifier.weights_path(dataset)
    assert os.path.getsize(path) <= 1_000_000
    arrays = B.load_arrays(path)                        # allow_pickle=False inside
    expected = classifier.ImageClassifier().state_dict()
    assert {k: v.shape for k, v in arrays.items()} == {k: v.shape for k, v in expected.items()}
    info = classifier.classifier_info(dataset)
    assert info["test_accuracy"] >= info["target"]      # the accuracy the training script measured


def test_an_unknown_data_set_has_no_classifier():
    with pytest.raises(ValueError, match="no feature classifier for data set 'cifar'"):
        metrics.image_features(np.zeros((2, 784)), "cifar")
    with pytest.raises(ValueError, match=r"images must be \(N, 784\)"):
        metrics.image_features(np.zeros((2, 28, 28)), "mnist")


def _labelled(dataset):
    root = os.environ.get("MINIGEN_DATA")
    if not root:
        pytest.skip("MINIGEN_DATA is not set")
    if dataset == "fashion-mnist":
        if not os.path.isdir(os.path.join(root, "fashion-mnist")):
            pytest.skip("MINIGEN_DATA has no fashion-mnist/ subfolder")
        return mg.data.load_fashion_mnist(log=lambda m: None)
    return mg.data.load_mnist(log=lambda m: None)


@pytest.mark.parametrize("dataset, least", [("fashion-mnist", 0.88), ("mnist", 0.96)])
def test_the_classifier_recognises_held_out_images(dataset, least):
    split = _labelled(dataset)
    images, labels = split.test_images[:1000], split.test_labels[:1000].numpy()
    predicted = metrics.image_classes(images, dataset).numpy()
    assert predicted.dtype == np.int64 and (predicted == labels).mean() >= least
    features = metrics.image_features(images[:10], dataset)
    assert features.shape == (10, classifier.FEATURE_DIM)


def test_features_agree_on_the_strict_backend():
    rng = np.random.default_rng(0)
    x = rng.random((6, 784)).astype(np.float32)
    host = metrics.image_features(mg.Tensor(x), "mnist").numpy()
    with mg.using_backend("strict"):
        strict = metrics.image_features(mg.Tensor(x), "mnist").numpy()
    np.testing.assert_allclose(strict, host, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_feature_measures_behave_like_measures(dataset):
    split = _labelled(dataset)
    # MNIST's test digits 0-4,999 and 5,000-9,999 come from different writers (SD-3 and SD-1);
    # its held-out 2,000 are from the second half, so the real images come from that half too
    start = 5000 if dataset == "mnist" and len(split.train_images) == 8000 else 0
    real = split.train_images.numpy()[start:start + 1500]
    other = split.test_images.numpy()[:1500]
    rng = np.random.default_rng(0)
    real_features = metrics.image_features(mg.Tensor(real), dataset)

    def features(images):
        return metrics.image_features(mg.Tensor(images.astype(np.float32)), dataset)

    blurred = [metrics.frechet_distance(real_features, features(_blur(other, s)))
               for s in (0.0, 0.5, 1.0, 1.5, 2.5)]
    assert blurred == sorted(blurred) and blurred[0] < 0.25 * blurred[-1]
    noisy = []
    for fraction in (0.0, 0.1, 0.3, 0.6, 1.0):
        mixed = other.copy()
        chosen = rng.random(len(mixed)) < fraction
        mixed[chosen] = rng.random((chosen.sum(), 784))
        noisy.append(features(mixed))
    distances = [metrics.frechet_distance(real_features, f) for f in noisy]
    assert distances == sorted(distances)
    same = metrics.precision_recall(real_features, noisy[0])
    assert same["precision"] > 0.7 and same["recall"] > 0.7
    assert metrics.precision_recall(real_features, noisy[-1])["precision"] < 0.05
    quality = metrics.image_quality(mg.Tensor(other), mg.Tensor(real), dataset)
    assert quality["precision"] == same["precision"] and quality["samples"] == 1500
    assert quality["class_coverage"] == 10 and quality["class_entropy"] > 0.97 * math.log(10)
    one_class = other[split.test_labels.numpy()[:1500] == 1]
    assert metrics.class_coverage(metrics.image_classes(mg.Tensor(one_class), dataset))[
        "class_coverage"] <= 2


def test_noise_precision_needs_many_reference_images():
    # the k-NN manifold of few real images is only as good as their least typical one: against
    # Fashion-MNIST's first 2,000 test images one shirt's large ball takes in 13% of noise samples;
    # the runs' reference (image_report.reference_images: 10,000 images) leaves none of them in
    split = _labelled("fashion-mnist")
    from minigen.image_report import reference_images
    reference = reference_images(split, 5000)
    assert reference.shape == (5000, 784)
    features = metrics.image_features(reference, "fashion-mnist")
    rng = np.random.default_rng(0)
    noise = metrics.image_features(mg.Tensor(rng.random((1000, 784), dtype=np.float32)),
                                   "fashion-mnist")
    real = metrics.image_features(split.train_images[:1000], "fashion-mnist")
    assert metrics.precision_recall(features, noise)["precision"] < 0.01      # 0.000 measured
    assert metrics.precision_recall(features, real)["precision"] > 0.8        # 0.85
    mnist = _labelled("mnist")
    both = reference_images(mnist, 10_000)           # 2,000 held-out digits, then training digits
    assert both.shape[0] == len(mnist.test_images) + min(len(mnist.train_images),
                                                         10_000 - len(mnist.test_images))
    assert np.array_equal(both[:len(mnist.test_images)].numpy(), mnist.test_images.numpy())

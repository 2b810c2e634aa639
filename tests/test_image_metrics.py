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

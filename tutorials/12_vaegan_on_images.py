# %% [markdown]
# # 12. The VAE-GAN on images: measuring "sharper and more realistic"
#
# minigen's founding document ends its section on the future of its "VAGAN" (the VAE/GAN of
# Larsen et al. 2016, tutorial 8) with a claim:
#
# > VAGAN结合了VAE和GAN的优点，可以用于生成更高质量的数据。
#
# "VAGAN combines the strengths of the VAE and the GAN and can be used to generate data of higher
# quality." Tutorial 8 looked at it on 2-D points and on MNIST with Dense networks, by eye. Here we
# test it the way image models are tested:
#
# 1. three measures of sample quality, computed from scratch with minigen: the **Fréchet distance**
#    (the formula of FID), **precision and recall** (Kynkäänniemi et al. 2019) and **class
#    coverage**,
#    all on the features of a small convolutional classifier that ships with minigen;
# 2. checks that they behave like measures: more blur or more noise must score worse;
# 3. the convolutional networks of DCGAN (Radford et al. 2015) for the VAE, the GAN and the VAE-GAN;
# 4. the three models trained on Fashion-MNIST and compared, numbers and pictures;
# 5. what the numbers say about the claim, here and in the longer runs of `benchmarks/quality.py`.

# %%
import json
import os
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import scipy.ndimage

import minigen as mg
from minigen.data import DataError, load_fashion_mnist
from minigen.metrics import (class_coverage, frechet_distance, image_classes, image_features,
                             image_quality, precision_recall)
from minigen.models import GAN, VAE, VAEGAN
from minigen.models.classifier import classifier_info
from minigen.runs import defaults
from minigen.train import fit

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"   # tiny runs for the test suite
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})
# One BLAS thread, so that a rerun reproduces this notebook's numbers and figures exactly (the
# thread count changes the last bits of matrix products, and adversarial training amplifies them);
# the command line uses every free core instead (mg.backend.free_cpus()).
mg.backend.set_num_threads(1)


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


def mosaic(images, rows, cols, title=None):
    """rows x cols flat 28 x 28 images in one figure, big enough to see their details."""
    x = np.asarray(images)[: rows * cols].reshape(rows, cols, 28, 28)
    tiles = np.ones((rows, cols, 30, 30))
    tiles[:, :, 1:29, 1:29] = x
    fig, ax = plt.subplots(figsize=(cols * 0.42, rows * 0.42 + (0.3 if title else 0)))
    ax.imshow(tiles.transpose(0, 2, 1, 3).reshape(rows * 30, cols * 30), cmap="gray", vmin=0,
              vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize="medium")
    return fig


# %% [markdown]
# ## The data: Fashion-MNIST
#
# Fashion-MNIST (Xiao, Rasul and Vollgraf 2017) has the format of MNIST - 28 x 28 grey images,
# 60,000 for training and 10,000 for testing, 10 classes - but shows clothing: T-shirts, trousers,
# pullovers, dresses, coats, sandals, shirts, sneakers, bags and ankle boots. It is harder than the
# digits (shirts, pullovers and coats look alike) and its textures show blur at once.
# `load_fashion_mnist()` reads it from the `fashion-mnist/` folder inside the folder named by
# `MINIGEN_DATA` (or downloads it into `~/.cache/minigen/fashion-mnist`). Without it the tutorial
# still runs, on MNIST when `MINIGEN_DATA` has it, else on a small set of **synthetic shapes** drawn
# below (squares, discs, bars, crosses...), measured with the MNIST classifier's features (its
# weights ship with minigen): the models train and the measures work the same way, but the numbers
# and the pictures are not Fashion-MNIST's, and the text below describes Fashion-MNIST's.

# %%
SHAPES = ["square", "frame", "disc", "ring", "horizontal bar", "vertical bar", "plus", "cross",
          "triangle", "two dots"]


def synthetic_shapes(n, seed):
    """n 28 x 28 grey images (n, 784) in [0, 1] of the 10 SHAPES at random places, sizes and
    brightness, softened by a blur of half a pixel, and their labels (n,)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:28, 0:28]
    labels = rng.integers(0, 10, n)
    images = np.zeros((n, 28, 28))
    for i, label in enumerate(labels):
        r, c = rng.uniform(9, 19, 2)                  # centre
        s = rng.uniform(4, 8)                         # half size
        dr, dc = rows - r, cols - c
        box, radius = np.maximum(abs(dr), abs(dc)), np.hypot(dr, dc)
        shape = [box <= s, (box <= s) & (box > s - 2), radius <= s,
                 (radius <= s) & (radius > s - 2),
                 (abs(dr) <= 1.5) & (abs(dc) <= s), (abs(dc) <= 1.5) & (abs(dr) <= s),
                 ((abs(dr) <= 1.5) | (abs(dc) <= 1.5)) & (box <= s),
                 ((abs(dr - dc) <= 1.5) | (abs(dr + dc) <= 1.5)) & (box <= s),
                 (dr <= s) & (dr >= -s) & (abs(dc) <= (dr + s) / 2),
                 (np.hypot(dr, dc - s / 1.5) <= 2.5) | (np.hypot(dr, dc + s / 1.5) <= 2.5)][label]
        images[i] = shape * rng.uniform(0.6, 1.0)
    images = scipy.ndimage.gaussian_filter(images, sigma=(0, 0.5, 0.5))
    return images.reshape(n, 784).astype(np.float32), labels


try:
    split = load_fashion_mnist(download=not SMOKE)      # the quick test runs never download
    DATA, NAME, CLASSES = "fashion-mnist", "Fashion-MNIST", mg.data.FASHION_MNIST.classes
except DataError as err:
    print(f"Fashion-MNIST could not be loaded: {err}")
    print("Set MINIGEN_DATA to a folder with a fashion-mnist/ subfolder, e.g.\n"
          "    MINIGEN_DATA=/path/to/data python tutorials/12_vaegan_on_images.py")
    try:
        split = mg.data.load_mnist(download=False)
        DATA, NAME, CLASSES = "mnist", "MNIST", [str(d) for d in range(10)]
        print("-> this run uses MNIST instead")
    except DataError:
        split = None
        DATA, NAME, CLASSES = "shapes", "synthetic shapes", SHAPES
        print("-> this run uses synthetic shapes instead, with the MNIST classifier's features")
FEATURES = "mnist" if DATA == "shapes" else DATA     # whose shipped classifier measures
if split is None:
    n_train, n_test = (1_000, 500) if SMOKE else (6_000, 2_000)
    images, labels = synthetic_shapes(n_train + n_test, seed=0)
    train_x, test_x = mg.Tensor(images[:n_train]), mg.Tensor(images[n_train:])
    train_y, test_y = labels[:n_train], labels[n_train:]
else:
    train_x, test_x = split.train_images, split.test_images
    train_y, test_y = split.train_labels.numpy(), split.test_labels.numpy()
N_EVAL = 500 if SMOKE else 2000       # images compared by the measures
real = test_x[:N_EVAL]
save(mosaic(test_x[:20].numpy(), 2, 10, f"{NAME} test images"), "fashion_real.png")

# %% [markdown]
# ## Measuring sample quality
#
# A generative model is good when its samples look like the data *and* cover all of it. Pixels are
# a poor place to compare images: tutorial 8 showed that a blurred digit is closer in squared pixel
# error than the same digit moved by two pixels. The measures used in papers compare images in the
# **feature space of a classifier**: its hidden layers summarise what it has learned to see
# (edges, seams, textures, shapes of clothing), so two images with close features look alike to it.
#
# Papers take Inception-v3 trained on ImageNet. For 28 x 28 grey images minigen ships its own
# small convolutional classifier, trained with minigen on the data set's training images
# (`benchmarks/train_classifier.py`; its weights are 750 kB in `minigen/weights/`). The features
# are its second convolution block's 64 channels averaged over a 3 x 3 grid of cells: 576 numbers
# saying which learned patterns appear where. (Its last hidden layer, the analogue of what FID takes
# from Inception, was tried first: it calls a uniform grey square a bag, and noise looked real to
# it a quarter of the time - see `minigen/models/classifier.py`.)

# %%
info = classifier_info(FEATURES)
print(f"the {FEATURES} classifier: {100 * info['test_accuracy']:.2f}% on the "
      f"{info['test_images']:,} test images after {info['epochs']} epochs")
features = image_features(real, FEATURES)
predicted = image_classes(real, FEATURES).numpy()
print("features:", features.shape, "| accuracy on these images:",
      f"{100 * (predicted == test_y[:N_EVAL]).mean():.1f}%" if DATA != "shapes" else
      "(none: shapes are not digits)")

# %% [markdown]
# ### The Fréchet distance
#
# Fit a Gaussian to each set of features - the real images' mean $\mu_r$ and covariance $C_r$,
# the samples' $\mu_g$ and $C_g$ - and take the Fréchet (2-Wasserstein) distance between the two
# Gaussians (Dowson and Landau 1982; as "FID", Heusel et al. 2017):
#
# $$d^2 = \lVert \mu_r - \mu_g \rVert^2 + \operatorname{tr}(C_r + C_g - 2\,(C_r C_g)^{1/2})$$
#
# The first term sees samples that are off on average, the second samples whose spread differs
# from the data's - too uniform (mode collapse) or too varied. It is 0 only when the two Gaussians
# agree. `frechet_distance` takes the square root through two symmetric eigenproblems
# ($(C_r C_g)^{1/2}$ has the eigenvalues of $C_r^{1/2} C_g C_r^{1/2}$), which stays real even when a
# covariance is singular. Numbers measured on minigen's features are **not comparable with the
# Inception FIDs of papers**, and the estimate depends on the number of samples (it is biased
# upwards for small sets): compare models only with the same features and sample sizes.
#
# Does it behave like a measure? Compare 2,000 test images with 2,000 training images, blurred more
# and more, then mixed with more and more uniform noise:

# %%
other = train_x[:N_EVAL].numpy()


def blur(images, sigma):
    grid = images.reshape(-1, 28, 28)
    return scipy.ndimage.gaussian_filter(grid, sigma=(0, sigma, sigma)).reshape(-1, 784)


def with_noise(images, fraction, seed=0):
    rng = np.random.default_rng(seed)
    mixed = images.copy()
    chosen = rng.random(len(mixed)) < fraction
    mixed[chosen] = rng.random((int(chosen.sum()), 784))
    return mixed


def feats(images):
    return image_features(mg.Tensor(images.astype(np.float32)), FEATURES)


sigmas, fractions = [0.0, 0.5, 1.0, 1.5, 2.5], [0.0, 0.1, 0.3, 0.6, 1.0]
by_blur = [frechet_distance(features, feats(blur(other, s))) for s in sigmas]
by_noise = [frechet_distance(features, feats(with_noise(other, f))) for f in fractions]
for s, d in zip(sigmas, by_blur):
    print(f"blur sigma {s:3.1f} px: Fréchet distance {d:8.2f}")
for f, d in zip(fractions, by_noise):
    print(f"noise {100 * f:3.0f}%     : Fréchet distance {d:8.2f}")
print("grows with blur:", by_blur == sorted(by_blur), "| grows with noise:",
      by_noise == sorted(by_noise))

fig, axes = plt.subplots(1, 2, figsize=(7, 2.6))
axes[0].plot(sigmas, by_blur, marker="o")
axes[0].set_xlabel("blur (Gaussian sigma, pixels)")
axes[1].plot([100 * f for f in fractions], by_noise, marker="o", color="tab:red")
axes[1].set_xlabel("images replaced by noise (%)")
for ax in axes:
    ax.set_ylabel("Fréchet distance")
    ax.grid(alpha=0.3)
save(fig, "frechet_blur_noise.png")

# %% [markdown]
# Real against real is not 0: two finite samples of one distribution differ a little. That floor
# is the scale to read a model's number against.
#
# ### Precision and recall
#
# One number cannot say *why* samples are bad: blurry (each sample unlike any real image) or
# repetitive (good samples, but only of a few kinds)? Kynkäänniemi et al. (2019) split it in two.
# Around each real feature vector draw a ball reaching its $k$-th nearest real neighbour ($k = 3$);
# the union of the balls estimates the *manifold* of real images. Likewise for the samples. Then
#
# * **precision** = the fraction of samples inside the real manifold: how many look real;
# * **recall** = the fraction of real images inside the samples' manifold: how much of the data the
#   model reaches.
#
# Both lie in $[0, 1]$. A blurry model loses precision; a model that drops classes loses recall.

# %%
for name, images in [("real (training) images", other), ("blurred, sigma 1.5", blur(other, 1.5)),
                     ("uniform noise", with_noise(other, 1.0)),
                     (f"only {CLASSES[1]}", other[train_y[:N_EVAL] == 1])]:
    pr = precision_recall(features, feats(images))
    print(f"{name:24s} precision {pr['precision']:.3f}   recall {pr['recall']:.3f}")

# %% [markdown]
# Trousers alone have a high precision (each one is a real-looking image) and a low recall (one
# class of ten). Blur and noise lose almost all recall, but keep some precision - here because of
# **one** test image: an unusual shirt (test image 622) whose third-nearest neighbour is twice as
# far as the median, so its ball is large and swallows 14% of the noise samples. The k-NN manifold
# is only as good as its least typical point, and the fewer the real images, the larger the balls
# of the unusual ones: against 5,000 or 10,000 test images noise scores 0.000. That is why a
# training run measures its samples against 10,000 real images
# (`minigen.image_report.reference_images`; `tests/test_image_metrics.py` checks it), as
# Kynkäänniemi et al. use many (50,000). Naeem et al. (2020) proposed "density and coverage" to be
# robust to such outliers; minigen implements the original measure.
#
# ### Class coverage
#
# The classifier can also say which class each sample looks like. A model that covers the data
# spreads its samples over the ten classes about evenly: `class_coverage` counts the classes that
# get at least a tenth of their fair share and the entropy of the predicted classes (log 10 = 2.30
# nats for an even spread).

# %%
print("test images:", {k: round(v, 3) if isinstance(v, float) else v
                       for k, v in class_coverage(predicted).items() if k != "class_fractions"})

# %% [markdown]
# ## Convolutional networks for images
#
# The Dense networks of tutorial 8 see an image as 784 unrelated numbers. Convolutions (tutorial
# 11) share each filter across positions, so a stroke or a seam is recognised wherever it is. DCGAN
# (Radford, Metz and Chintala 2015) found the recipe that made convolutional GANs train reliably,
# and `arch="conv"` builds it for all three models (`minigen/models/conv_nets.py`):
#
# * encoder and discriminator: two convolutions with kernel 4 and stride 2 (28 → 14 → 7 pixels, no
#   pooling), batch normalisation after the second, LeakyReLU with slope 0.2;
# * decoder and generator: a Dense layer to 64 x 7 x 7, then two transposed convolutions (7 → 14 →
#   28) with batch normalisation and ReLU, ending in logits (the generator adds a sigmoid);
# * every weight drawn from $N(0, 0.02^2)$.
#
# The VAE-GAN measures reconstructions in the discriminator's last convolution (64 x 7 x 7
# features), the learned similarity of Larsen et al.

# %%
model = VAEGAN(784, hidden=(32, 64), latent_dim=32, arch="conv", likelihood="bernoulli",
               llike="features", beta=1.0)
print(model.encoder)
print(model.decoder)
print({name: sum(p.size for p in getattr(model, name).parameters())
       for name in ("encoder", "decoder", "discriminator")}, "parameters")

# %% [markdown]
# ## Training the three models
#
# Each model with the command line's defaults for `--arch conv` (`minigen.runs.defaults(kind,
# "fashion-mnist", "conv")`: 32 and 64 channels, a 32-dimensional code, 8 epochs; Adam at 1e-3 in
# batches of 128 for the VAE, at 2e-4 with $\beta_1 = 0.5$ in batches of 64 for the two adversarial
# models; the VAE-GAN's $\beta = 1$ and $\gamma = 1$, chosen on Fashion-MNIST - its docstring
# says how), here on only the first 2,000 training images so that the notebook builds in minutes
# on a laptop CPU (the VAE then makes 128 updates, the DCGAN and the VAE-GAN 256: far too few for
# good samples). The equivalent command line is `python -m minigen train vaegan --data
# fashion-mnist --arch conv --limit 2000`.

# %%
N_TRAIN = 256 if SMOKE else 2_000
TRAINING = ("epochs", "batch_size", "lr")


def train(kind, model_class):
    settings = defaults(kind, "fashion-mnist", "conv")
    networks = {k: v for k, v in settings.items() if k not in TRAINING}
    if SMOKE:
        networks.update(hidden=[4, 8], latent_dim=4)
    if kind != "gan":
        networks["likelihood"] = "bernoulli"
    if kind == "vaegan":
        networks["llike"] = "features"
    networks.pop("pack", None)
    mg.manual_seed(0)
    model = model_class(784, arch="conv", **networks)
    epochs = 1 if SMOKE else settings["epochs"]
    start = time.perf_counter()
    fit(model, train_x[:N_TRAIN], epochs=epochs, batch_size=settings["batch_size"],
        lr=settings["lr"], seed=0, quiet=True)
    model.eval()                                  # batch norms: running statistics from now on
    print(f"{kind}: {epochs} epochs on {N_TRAIN:,} images in {time.perf_counter() - start:.0f} s")
    return model


models = {"VAE": train("vae", VAE), "DCGAN": train("gan", GAN), "VAE-GAN": train("vaegan", VAEGAN)}

# %% [markdown]
# ## The comparison
#
# 2,000 samples of each model against 2,000 test images (500 in the quick test runs):

# %%
mg.manual_seed(1)
results = {}
with mg.no_grad():
    samples = {name: m.sample(N_EVAL) for name, m in models.items()}
    for name in models:
        results[name] = image_quality(samples[name], real, FEATURES)
print(f"{'model':8s} {'Fréchet':>8s} {'precision':>9s} {'recall':>7s} {'classes':>7s}")
print(f"{'real':8s} {by_blur[0]:8.2f} {'':>9s} {'':>7s} {'':>7s}   (training vs test images)")
for name, r in results.items():
    print(f"{name:8s} {r['frechet_distance']:8.2f} {r['precision']:9.3f} {r['recall']:7.3f} "
          f"{r['class_coverage']:7d}")

# %%
for name, s in samples.items():
    save(mosaic(s.numpy(), 3, 10, f"{name} samples"), f"samples_{name.lower()}.png")

# %% [markdown]
# And what the encoders do with test images: originals in the top row, the VAE's reconstructions
# below them, the VAE-GAN's at the bottom.

# %%
with mg.no_grad():
    originals = test_x[:10]
    rows = [originals] + [models[n].reconstruct(originals) for n in ("VAE", "VAE-GAN")]
save(mosaic(np.concatenate([r.numpy() for r in rows]), 3, 10,
            "test images / VAE / VAE-GAN reconstructions"), "reconstructions.png")

# %% [markdown]
# ## The claim, tested
#
# The founding document says the VAE-GAN generates data "of higher quality" than the VAE. With the
# measures above the claim becomes two checkable statements (the ones Larsen et al. made with
# their own measures): the VAE-GAN's Fréchet distance is **below** the VAE's, and its precision
# **above** it.

# %%
vae, vaegan = results["VAE"], results["VAE-GAN"]
lower = vaegan["frechet_distance"] < vae["frechet_distance"]
sharper = vaegan["precision"] > vae["precision"]
print(f"Fréchet distance: VAE {vae['frechet_distance']:.2f}, VAE-GAN "
      f"{vaegan['frechet_distance']:.2f} -> lower for the VAE-GAN: {lower}")
print(f"precision:        VAE {vae['precision']:.3f}, VAE-GAN {vaegan['precision']:.3f}"
      f" -> higher for the VAE-GAN: {sharper}")

# %% [markdown]
# These runs are tiny (a thirtieth of the training set), one seed each: read them as an
# illustration of the measures, not as a verdict. `python benchmarks/quality.py --only images`
# trains the three models with the same defaults on the whole data set over three seeds; the
# README reports what ran in this project (how many seeds and epochs is said there), which the
# next cell prints from the results file when it is there.

# %%
path = os.path.join(os.path.dirname(os.path.dirname(mg.__file__)), "benchmarks", "results",
                    "quality.json")
images = {}
if os.path.exists(path):
    with open(path) as f:
        images = json.load(f).get("images", {})
for data, kinds in images.items():
    for kind, runs in kinds.items():
        fd, pr = [r["frechet_distance"] for r in runs], [r["precision"] for r in runs]
        print(f"{data:14s} {kind:7s} {len(runs)} seed(s): Fréchet {np.mean(fd):7.2f}, "
              f"precision {np.mean(pr):.3f}, trained on {runs[0]['limit'] or 'all'} images, "
              f"{runs[0]['epochs']} epochs")
if not images:
    print(f"no image results in {path} (run benchmarks/quality.py --only images)")

# %% [markdown]
# ## What you learned
#
# * Sample quality is measured in a classifier's feature space, not in pixels: the Fréchet distance
#   compares the Gaussians of two feature sets, precision and recall separate "looks real" from
#   "covers the data", and a classifier's predictions show which classes a model reaches.
# * A measure must be checked before it is trusted: here the Fréchet distance grows with every
#   step of blur and of noise, real images score a high precision and recall, noise a precision
#   near 0.
# * The numbers are only comparable with the same features and the same number of samples; minigen's
#   are not Inception FIDs.
# * DCGAN's recipe (strided convolutions, batch norm, LeakyReLU, $N(0, 0.02^2)$) gives the VAE, the
#   GAN and the VAE-GAN networks that see shapes, and the VAE-GAN its learned similarity.
#
# ## Exercises
#
# 1. Compute the Fréchet distance between the test images and *pixel* features (the images
#    themselves, 784 numbers) for the blur and noise series. Does it still grow monotonically?
#    (Hint: look at sigma 0.5 on MNIST.)
# 2. Train the VAE-GAN with `gamma` 0.1 and 10 (`VAEGAN(..., gamma=...)`): how do its precision and
#    recall move? Which term of the decoder's loss does `gamma` weigh?
# 3. `precision_recall` with `k = 1, 3, 10` on two halves of the test set: why do both numbers grow
#    with `k`?

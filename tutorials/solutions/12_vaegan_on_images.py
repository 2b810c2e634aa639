# %% [markdown]
# # Solutions: 12. The VAE-GAN on images
#
# Worked solutions to the exercises of [tutorial 12](../12_vaegan_on_images.py). Try each exercise
# before reading its solution. They need MNIST and Fashion-MNIST in the folder named by
# `MINIGEN_DATA` (subfolders `mnist/` and `fashion-mnist/`); without them they say so and stop.

# %%
import os

import scipy.ndimage

import minigen as mg
from minigen.data import DataError, load_fashion_mnist, load_mnist
from minigen.metrics import frechet_distance, image_quality, precision_recall
from minigen.models import VAEGAN
from minigen.runs import defaults
from minigen.train import fit

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
mg.backend.set_num_threads(1)
N = 300 if SMOKE else 1500
try:
    fashion = load_fashion_mnist(download=False)
    mnist = load_mnist(download=False)
except DataError as err:
    print(f"the data could not be loaded, so the solutions stop here: {err}")
    raise SystemExit(0) from None


def blur(images, sigma):
    return scipy.ndimage.gaussian_filter(images.reshape(-1, 28, 28),
                                         sigma=(0, sigma, sigma)).reshape(-1, 784)


# %% [markdown]
# ## Exercise 1
#
# The Fréchet distance on the pixels themselves (784 numbers per image) for the blur series. On
# MNIST the real images come from the held-out writers (test digits 5,000 and up, as the tests of
# `tests/test_image_metrics.py` explain), compared with the held-out 2,000.

# %%
for name, split, start in (("Fashion-MNIST", fashion, 0), ("MNIST", mnist, 5000)):
    real = split.train_images.numpy()[start:start + N]
    other = split.test_images.numpy()[:N]
    distances = [frechet_distance(real, blur(other, s)) for s in (0.0, 0.5, 1.0, 2.0)]
    print(name, "pixel Fréchet distance at sigma 0, 0.5, 1, 2:",
          ", ".join(f"{d:.2f}" for d in distances),
          "| monotonic:", distances == sorted(distances))

# %% [markdown]
# On raw pixels a slight blur (sigma 0.5) can *lower* the distance: it averages each stroke with
# its neighbours, and averages of digits are closer to the mean image in squared error (tutorial 8's
# point about pixel errors). A classifier's features are not fooled by that: they see the lost
# edges. That is why the measures of the tutorial work on features.
#
# ## Exercise 2
#
# `gamma` weighs the decoder's reconstruction term (in the discriminator's features) against its
# GAN term: small `gamma` lets the adversarial term shape the decoder (sharper, riskier samples),
# large `gamma` makes it an autoencoder in feature space. Two short runs on 2,000 images:

# %%
settings = defaults("vaegan", "fashion-mnist", "conv")
train_x, test_x = fashion.train_images[:256 if SMOKE else 2000], fashion.test_images[:N]
for gamma in (0.1, 10.0):
    mg.manual_seed(0)
    model = VAEGAN(784, hidden=[4, 8] if SMOKE else settings["hidden"],
                   latent_dim=4 if SMOKE else settings["latent_dim"], arch="conv",
                   likelihood="bernoulli", llike="features", beta=1.0, gamma=gamma)
    fit(model, train_x, epochs=1 if SMOKE else settings["epochs"],
        batch_size=settings["batch_size"], lr=settings["lr"], seed=0, quiet=True)
    model.eval()
    mg.manual_seed(1)
    q = image_quality(model.sample(N), test_x, "fashion-mnist")
    print(f"gamma {gamma:4}: Fréchet {q['frechet_distance']:.2f}, precision {q['precision']:.3f}, "
          f"recall {q['recall']:.3f}, classes {q['class_coverage']}")

# %% [markdown]
# ## Exercise 3
#
# Precision and recall of one half of the test set against the other, as k grows:

# %%
features = mg.metrics.image_features(fashion.test_images[:2 * N], "fashion-mnist")
first, second = features[:N], features[N:]
for k in (1, 3, 10):
    pr = precision_recall(first, second, k=k)
    print(f"k = {k:2d}: precision {pr['precision']:.3f}, recall {pr['recall']:.3f}")

# %% [markdown]
# Both grow with k because every ball reaches its k-th neighbour: a larger k means larger balls,
# so the estimated manifolds swell and more points of the other set fall inside. k = 1 is too
# strict (a new sample must land closer than the nearest pair of real images), a large k too
# lenient (outliers get balls that cover empty space); Kynkäänniemi et al. chose k = 3.

"""The small convolutional classifier whose features the image metrics use (one per data set).

An Inception network trained on ImageNet is what FID and precision/recall usually measure in; on
28 x 28 grey images a small network trained on the data set itself sees what matters there (strokes,
shapes of clothing) and runs in seconds on a CPU.  minigen ships one trained network per data set
(``minigen/weights/<data set>-classifier.npz``, plain arrays, loaded with ``allow_pickle=False``),
made by ``benchmarks/train_classifier.py``; ``minigen/weights/classifiers.json`` records how each
was trained and its test accuracy.

    body: (N, 784) -> (N, 1, 28, 28)
          Conv2d(1, 32, 3, pad 1), ReLU, MaxPool2d(2)       -> (N, 32, 14, 14)
          Conv2d(32, 64, 3, pad 1), ReLU, MaxPool2d(2)      -> (N, 64, 7, 7)
    top:  Conv2d(64, 64, 3, stride 2, pad 1), ReLU, flatten -> (N, 1024)
          Dense(1024, 128), ReLU                             -> (N, 128)
    head: Dense(128, 10)                                     -> (N, 10): class logits

The *features* are the body's output averaged over 2 x 2 cells: (N, 64, 3, 3) -> 576 numbers that
say which of 64 learned patterns (edges, seams, textures) appear in which ninth of the image.  The
penultimate layer (128 numbers, what FID would take by analogy with Inception's last pooling
layer) was tried first and rejected: it maps featureless images close to real ones - measured on
2,000 Fashion-MNIST training images, uniform noise had a precision of 0.04 to 0.27 depending on the
sample size, and a uniform grey square a precision of 1.0 (the network calls it a bag) - while
these mid-level features, which keep where the strokes are, give both 0.0, with 0.83 for held-out
real images.  188,000 weights (750 kB as float32).
"""

import json
import os

from .. import backend as B
from .. import nn
from ..autograd import no_grad
from ..conv import avg_pool2d
from .conv_nets import IMAGE_SHAPE

__all__ = ["ImageClassifier", "WEIGHTS_DIR", "weights_path", "load_classifier", "classifier_info",
           "FEATURE_DIM"]

WEIGHTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights")
FEATURE_DIM = 64 * 3 * 3
_loaded = {}          # (data set, backend, dtype) -> ImageClassifier, in eval mode


class ImageClassifier(nn.Module):
    """A 3-convolution classifier of 28 x 28 grey images into ``num_classes`` classes."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Unflatten(1, IMAGE_SHAPE),
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.top = nn.Sequential(
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            nn.Dense(64 * 4 * 4, 128, activation="relu"),
        )
        self.head = nn.Dense(128, num_classes)

    def features(self, x):
        """(N, 784) images in [0, 1] -> (N, 576) features: the body's (N, 64, 7, 7) output
        averaged over 2 x 2 cells (the last row and column are left out) and flattened."""
        h = avg_pool2d(self.body(x), 2)
        return h.reshape(h.shape[0], FEATURE_DIM)

    def forward(self, x):
        """Class logits (N, num_classes)."""
        return self.head(self.top(self.body(x)))

    def features_and_logits(self, x):
        """Both at once, the body computed once."""
        h = self.body(x)
        pooled = avg_pool2d(h, 2)
        return pooled.reshape(h.shape[0], FEATURE_DIM), self.head(self.top(h))


def weights_path(dataset):
    """Where the shipped weights for ``dataset`` ("mnist", "fashion-mnist") are."""
    return os.path.join(WEIGHTS_DIR, f"{dataset}-classifier.npz")


def classifier_info(dataset=None):
    """What ``benchmarks/train_classifier.py`` recorded (settings, test accuracy) for ``dataset``,
    or for all data sets when None."""
    path = os.path.join(WEIGHTS_DIR, "classifiers.json")
    with open(path) as f:
        info = json.load(f)
    return info if dataset is None else info[dataset]


def load_classifier(dataset, backend=None, dtype=None):
    """The shipped classifier of ``dataset`` in eval mode, its weights on ``backend`` (default: the
    current one) in ``dtype`` (default: the default dtype); loaded once per combination, then
    reused."""
    backend = backend or B.get_backend()
    dtype = dtype or B.get_default_dtype()
    key = (dataset, backend, dtype)
    if key not in _loaded:
        path = weights_path(dataset)
        if not os.path.exists(path):
            known = sorted(name[:-len("-classifier.npz")] for name in os.listdir(WEIGHTS_DIR)
                           if name.endswith("-classifier.npz"))
            raise ValueError(f"no feature classifier for data set {dataset!r} ({path} is missing); "
                             f"minigen has one for {', '.join(known) or 'none'}; train one with "
                             "benchmarks/train_classifier.py")
        with B.using_backend(backend), no_grad():
            with B.using_default_dtype(dtype):
                model = ImageClassifier()
            model.load(path)
        model.eval()
        _loaded[key] = model
    return _loaded[key]

"""Data: generated 2-D sets, MNIST and Fashion-MNIST from IDX files, a loader batching on the
device.

2-D sets (the command line's default: they need nothing and train in seconds)

* ``ring``: 8 Gaussians with std 0.02 whose centres sit evenly on a circle of radius 2;
* ``grid``: 25 Gaussians with std 0.05 centred on {-4, -2, 0, 2, 4}^2;
* ``moons``: two interleaved half circles with Gaussian noise (labelled 0 and 1).

``ring`` and ``grid`` are the benchmarks of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al.
2018) for mode collapse: a generator that covers all modes with sharp samples is doing well.

MNIST and Fashion-MNIST come as four IDX files each (``train-images-idx3-ubyte``, ... optionally
gzipped) in a folder given by argument, else ``$MINIGEN_DATA`` (a folder with ``mnist/`` and
``fashion-mnist/`` subfolders, or MNIST's own folder), else ``~/.cache/minigen/<name>`` (downloaded
there when missing and the network is reachable; each file's SHA-256 is checked before use).
"""

import gzip
import hashlib
import math
import os
import struct
import urllib.error
import urllib.request
from dataclasses import dataclass

from . import backend as B
from .autograd import Tensor, no_grad
from .functions import cos, sin, stack, where
from .io import atomic_write

__all__ = ["ToySet", "TOY_SETS", "toy_modes", "make_toy", "ring", "grid", "moons", "read_idx",
           "IdxSet", "MNIST", "FASHION_MNIST", "IMAGE_SETS", "data_folder", "load_mnist",
           "load_fashion_mnist", "load_images", "load_idx_set", "ImageSplit", "MnistSplit",
           "DataLoader", "binarize", "DataError"]


class DataError(RuntimeError):
    """A data set is missing, truncated or corrupt (the message says which file and what to do)."""


# --------------------------------------------------------------------------------------------------
# 2-D toy sets
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToySet:
    """A mixture of equally likely isotropic Gaussians: its centres (K, 2) and their common std."""
    name: str
    modes: tuple
    std: float


def _ring_modes(count=8, radius=2.0):
    return tuple((radius * math.cos(2 * math.pi * k / count),
                  radius * math.sin(2 * math.pi * k / count))
                 for k in range(count))


def _grid_modes(side=5, spacing=2.0):
    offset = (side - 1) / 2 * spacing
    return tuple((i * spacing - offset, j * spacing - offset) for i in range(side)
                 for j in range(side))


TOY_SETS = {
    "ring": ToySet("ring", _ring_modes(), 0.02),
    "grid": ToySet("grid", _grid_modes(), 0.05),
}


def toy_modes(name):
    """The :class:`ToySet` (centres and std) of "ring" or "grid"."""
    if name not in TOY_SETS:
        raise ValueError(f"unknown toy set {name!r}; choose one of {', '.join(sorted(TOY_SETS))}")
    return TOY_SETS[name]


def make_toy(name, n, seed=0):
    """``n`` points of the mixture ``name`` ("ring" or "grid") as an (n, 2) tensor on the current
    backend (default dtype), and the index of the mode each point came from (int64 tensor).

    Drawn from a generator of its own seeded by ``seed``: the same seed gives the same set anywhere.
    """
    spec = toy_modes(name)
    rng = B.host_generator(seed)
    labels = Tensor(rng.integers(0, len(spec.modes), size=n), dtype="int64")
    noise = Tensor(rng.standard_normal((n, 2)), dtype=B.get_default_dtype())
    centres = Tensor(spec.modes, dtype=B.get_default_dtype())
    with no_grad():
        return centres[labels] + noise * spec.std, labels


def ring(n=2000, seed=0):
    """8 Gaussians (std 0.02) on a circle of radius 2: points (n, 2) and mode labels (n,)."""
    return make_toy("ring", n, seed)


def grid(n=2000, seed=0):
    """25 Gaussians (std 0.05) on a 5 x 5 grid with spacing 2: points (n, 2) and mode labels
    (n,)."""
    return make_toy("grid", n, seed)


def moons(n=2000, noise=0.1, seed=0):
    """Two interleaved half circles with Gaussian noise: points (n, 2) and labels 0/1 (int64).

    Label 0: (cos a, sin a); label 1: (1 - cos a, 1/2 - sin a); a uniform in [0, pi].
    """
    rng = B.host_generator(seed)
    dtype = B.get_default_dtype()
    labels = Tensor(rng.integers(0, 2, size=n), dtype="int64")
    angle = Tensor(rng.uniform(0.0, math.pi, size=n), dtype=dtype)
    jitter = Tensor(rng.standard_normal((n, 2)), dtype=dtype)
    with no_grad():
        upper = labels == 0
        x = where(upper, cos(angle), 1.0 - cos(angle))
        y = where(upper, sin(angle), 0.5 - sin(angle))
        return stack([x, y], axis=1) + jitter * noise, labels


# --------------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST from IDX files
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IdxSet:
    """How to find, fetch and check one image data set stored as four IDX files.

    ``files`` maps each file's name (without ``.gz``) to (number of items, SHA-256); the digest is
    of the gzipped file as the mirror serves it when ``checks`` is ``"gz"``, and of the decompressed
    IDX bytes when it is ``"content"`` (which holds whatever gzip settings a mirror recompressed
    with).
    """
    name: str          # the subfolder of MINIGEN_DATA and of the cache: "mnist", "fashion-mnist"
    title: str
    files: dict
    mirror: str
    checks: str
    classes: tuple


MNIST = IdxSet(
    "mnist", "MNIST",
    {
        "train-images-idx3-ubyte":
            (60000, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte":
            (60000, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte":
            (10000, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte":
            (10000, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    "https://storage.googleapis.com/cvdf-datasets/mnist/", "gz",
    tuple(str(d) for d in range(10)))

# Fashion-MNIST (Xiao, Rasul and Vollgraf 2017; MIT license): digests of the decompressed files.
FASHION_MNIST = IdxSet(
    "fashion-mnist", "Fashion-MNIST",
    {
        "train-images-idx3-ubyte":
            (60000, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        "train-labels-idx1-ubyte":
            (60000, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        "t10k-images-idx3-ubyte":
            (10000, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        "t10k-labels-idx1-ubyte":
            (10000, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
    },
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", "content",
    ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
     "Ankle boot"))

IMAGE_SETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}
MNIST_FILES = MNIST.files          # kept for callers of the first version
MNIST_MIRROR = MNIST.mirror
_IDX_UBYTE = 0x08


def read_idx(path):
    """Read an IDX file (``.gz`` or raw) of unsigned bytes into a read-only host uint8 array.

    The format: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions n, then
    n big-endian 32-bit sizes, then the data.  A wrong magic number, a type other than unsigned
    bytes, or a body shorter or longer than the sizes say raises :class:`DataError` naming the file.
    """
    path = os.fspath(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    if raw[2] != _IDX_UBYTE:
        raise DataError(f"{path}: IDX type code 0x{raw[2]:02x} is not 0x08 (unsigned bytes)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = math.prod(shape)
    if len(raw) - header != expected:
        raise DataError(f"{path}: the header promises {expected} bytes of data {shape} but the "
                        f"file holds {len(raw) - header}: it is truncated or corrupt; fetch it "
                        "again")
    return B.host_uint8(raw, header, shape)


def _read_bytes(path):
    """The bytes of ``path``, decompressed when it ends in ``.gz``."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            return f.read()
    except (OSError, EOFError) as err:  # gzip raises these for a damaged archive
        raise DataError(f"{path}: cannot read ({err}); the file is damaged: delete it and fetch it "
                        "again")


def _find(folder, name):
    for candidate in (name + ".gz", name):
        path = os.path.join(folder, candidate)
        if os.path.exists(path):
            return path
    return None


def _default_folder(spec=MNIST):
    return os.path.join(os.path.expanduser("~"), ".cache", "minigen", spec.name)


def _download(folder, name, spec=MNIST, timeout=30):
    """Fetch ``name``.gz from ``spec``'s mirror into ``folder``: the SHA-256 check (of the download
    or of its decompressed bytes, as ``spec.checks`` says) in memory (the largest file is 26 MB),
    then one atomic write (:func:`minigen.io.atomic_write`)."""
    url = spec.mirror + name + ".gz"
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = b"".join(iter(lambda: response.read(1 << 16), b""))
    checked = body
    if spec.checks == "content":
        try:
            checked = gzip.decompress(body)
        except (OSError, EOFError) as err:
            raise DataError(f"{url}: not a gzip file ({err}); the download was refused") from None
    digest, expected = hashlib.sha256(checked).hexdigest(), spec.files[name][1]
    if digest != expected:
        raise DataError(f"{url}: SHA-256 {digest} is not the expected {expected}; "
                        "the download was refused")
    final = os.path.join(folder, name + ".gz")
    with atomic_write(final) as out:
        out.write(body)
    return final


def _missing_message(spec, folder, names, reason):
    pair = "; the t10k pair alone also works" if spec is MNIST else ""
    return (f"{spec.title} files missing in {folder}: {', '.join(n + '[.gz]' for n in names)} "
            f"({reason}). Put the IDX files there, or point the MINIGEN_DATA environment variable "
            f"at a folder that holds them or a {spec.name}/ subfolder with them (all four: "
            f"{', '.join(spec.files)}{pair}).")


def data_folder(spec, folder=None):
    """The folder to read ``spec``'s files from, and whether the user chose it (then it is only
    read, never written to).

    ``folder`` (an argument) or else ``$MINIGEN_DATA`` may name either a folder with one subfolder
    per data set (``mnist/``, ``fashion-mnist/``: the layout of ``../shared/data``) or the data
    set's own folder.  Under ``MINIGEN_DATA`` only MNIST may sit directly in the named folder (the
    first layout minigen had); other sets need their subfolder, so MNIST is never read as another
    set. Neither given: ``~/.cache/minigen/<name>``.
    """
    if folder is not None:
        folder = os.fspath(folder)
        inner = os.path.join(folder, spec.name)
        return (inner if os.path.isdir(inner) else folder), True
    chosen = os.environ.get("MINIGEN_DATA")
    if not chosen:
        return _default_folder(spec), False
    inner = os.path.join(chosen, spec.name)
    if os.path.isdir(inner) or spec is MNIST:
        return (inner if os.path.isdir(inner) else chosen), True
    raise DataError(f"MINIGEN_DATA={chosen} has no {spec.name}/ subfolder. Point MINIGEN_DATA at a "
                    f"folder that holds one subfolder per data set (mnist/, {spec.name}/), as "
                    "../shared/data does, or unset it to download into "
                    f"{_default_folder(spec)}.")


@dataclass
class ImageSplit:
    """An image set as tensors: images (N, 784) scaled to [0, 1] and int64 labels (N,), for training
    and test; ``name`` ("mnist", "fashion-mnist") and ``note`` (where they came from, which
    split)."""
    train_images: Tensor
    train_labels: Tensor
    test_images: Tensor
    test_labels: Tensor
    note: str
    name: str = "mnist"


MnistSplit = ImageSplit     # its first name


def load_mnist(folder=None, download=True, log=print):
    """Load MNIST from IDX files as tensors on the current backend (default dtype).

    The folder: see :func:`data_folder` (``folder``, else ``$MINIGEN_DATA`` or its ``mnist/``, else
    ``~/.cache/minigen/mnist``); missing files are downloaded into that cache folder (only there)
    when ``download`` and the network allow.  When only the test pair (t10k) is present - as in a
    checkout with just the 10,000 test digits - the first 8,000 digits are used for training and the
    last 2,000 for evaluation, and ``log`` says so (``note`` keeps it).
    """
    return load_idx_set(MNIST, folder, download, log)


def load_fashion_mnist(folder=None, download=True, log=print):
    """Load Fashion-MNIST (60,000 training and 10,000 test images of 10 kinds of clothing, 28 x 28)
    as tensors on the current backend, like :func:`load_mnist`: from ``folder``, else
    ``$MINIGEN_DATA/fashion-mnist``, else ``~/.cache/minigen/fashion-mnist`` (downloaded there, each
    file's SHA-256 checked).  The standard protocol: all four files are needed, models train on the
    60,000 and are evaluated on the 10,000 test images.  ``FASHION_MNIST.classes`` names the labels.
    """
    return load_idx_set(FASHION_MNIST, folder, download, log)


def load_images(name, download=True, log=print):
    """:func:`load_mnist` or :func:`load_fashion_mnist` by name ("mnist", "fashion-mnist")."""
    if name not in IMAGE_SETS:
        raise ValueError(f"unknown image set {name!r}; choose one of {', '.join(IMAGE_SETS)}")
    return load_idx_set(IMAGE_SETS[name], None, download, log)


def load_idx_set(spec, folder=None, download=True, log=print):
    """Read (and when allowed, fetch) the four IDX files of ``spec`` into an :class:`ImageSplit`."""
    folder, chosen = data_folder(spec, folder)
    found = {name: _find(folder, name) for name in spec.files}
    test_only = (spec is MNIST and found["t10k-images-idx3-ubyte"] is not None
                 and found["t10k-labels-idx1-ubyte"] is not None)
    missing = [name for name, path in found.items() if path is None]
    if missing and not test_only:
        if chosen:  # a folder the user named is only read, never written to
            raise DataError(_missing_message(spec, folder, missing, "downloads go only to "
                                             f"{_default_folder(spec)}, when neither a folder nor "
                                             "MINIGEN_DATA is given"))
        if not download:
            raise DataError(_missing_message(spec, folder, missing, "downloading is switched off"))
        log(f"downloading {spec.title} into {folder} ...")
        for name in missing:
            try:
                found[name] = _download(folder, name, spec)
            except (urllib.error.URLError, OSError) as err:
                raise DataError(_missing_message(spec, folder, missing,
                                                 f"no network: {err}")) from None

    def images(name):
        array = read_idx(found[name])
        if array.ndim != 3 or array.shape[1:] != (28, 28):
            raise DataError(f"{found[name]}: expected images of 28 x 28, found shape {array.shape}")
        return Tensor(array.reshape(array.shape[0], 784),
                      dtype=B.get_default_dtype()) * (1.0 / 255.0)

    def labels(name):
        array = read_idx(found[name])
        if array.ndim != 1:
            raise DataError(f"{found[name]}: expected a 1-D label file, found shape {array.shape}")
        return Tensor(array, dtype="int64")

    test_x, test_y = images("t10k-images-idx3-ubyte"), labels("t10k-labels-idx1-ubyte")
    if len(test_x) != len(test_y):
        raise DataError(f"{folder}: {len(test_x)} test images but {len(test_y)} test labels")
    if found["train-images-idx3-ubyte"] and found["train-labels-idx1-ubyte"]:
        train_x, train_y = images("train-images-idx3-ubyte"), labels("train-labels-idx1-ubyte")
        if len(train_x) != len(train_y):
            raise DataError(f"{folder}: {len(train_x)} training images but {len(train_y)} labels")
        note = (f"{spec.title} from {folder}: {len(train_x)} training and {len(test_x)} test "
                "images")
    else:
        cut = len(test_x) * 4 // 5
        train_x, train_y = test_x[:cut], test_y[:cut]
        test_x, test_y = test_x[cut:], test_y[cut:]
        note = (f"only the MNIST test split was found in {folder}: training on its first {cut:,} "
                f"digits and evaluating on the last {len(test_x):,}")
    log(note)
    return ImageSplit(train_x, train_y, test_x, test_y, note, spec.name)


# --------------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------------

def binarize(images, generator=None):
    """Dynamic binarization: each pixel becomes 1 with probability equal to its intensity.

    Uses the backend's seeded generator; a fresh binarization each time gives a little
    regularisation (Salakhutdinov & Murray 2008 style), and the data then match a Bernoulli
    likelihood exactly.
    """
    owner = B.of(images.data)
    u = Tensor._wrap(owner.uniform(images.shape, images.dtype))
    return (u < images).astype(B.dtype_name(images.dtype))


class DataLoader:
    """Mini-batches of one or more tensors that share their first axis.

        loader = DataLoader(images, labels, batch_size=128, shuffle=True, seed=0)
        for x, y in loader: ...

    The tensors stay where they are (on the GPU for a GPU run): batches are slices or row gathers
    made on that device, never copies through the host.  With ``shuffle``, epoch ``e`` uses the
    permutation drawn from ``seed`` and ``e``, so a resumed run sees the same batches as an
    uninterrupted one (``set_epoch`` chooses the epoch; iterating advances it).
    """

    def __init__(self, *tensors, batch_size=128, shuffle=False, drop_last=False, seed=0):
        if not tensors:
            raise ValueError("DataLoader needs at least one tensor")
        n = len(tensors[0])
        for t in tensors[1:]:
            if len(t) != n:
                raise ValueError(f"DataLoader: tensors of lengths {n} and {len(t)} cannot be "
                                 "batched together")
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be at least 1, not {batch_size}")
        self.tensors = tensors
        self.batch_size, self.shuffle = batch_size, shuffle
        self.drop_last, self.seed = drop_last, seed
        self.epoch = 0

    def __len__(self):
        n = len(self.tensors[0])
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        n = len(self.tensors[0])
        order = None
        if self.shuffle:
            permutation = B.host_generator((self.seed, self.epoch)).permutation(n)
            order = Tensor(permutation, dtype="int64").to(self.tensors[0].device)
        self.epoch += 1
        for batch in range(len(self)):
            start = batch * self.batch_size
            stop = min(start + self.batch_size, n)
            if order is None:
                parts = tuple(t[start:stop] for t in self.tensors)
            else:
                rows = order[start:stop]
                parts = tuple(t[rows] for t in self.tensors)
            yield parts if len(parts) > 1 else parts[0]

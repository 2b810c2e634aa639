"""Toy sets, the IDX reader (on files the test writes, and on the real MNIST when MINIGEN_DATA is
set), MNIST loading rules, and the DataLoader."""

import gzip
import hashlib
import os
import struct

import numpy as np
import pytest

import minigen as mg
from minigen import data


def _write_idx(path, array, type_code=0x08, magic=b"\x00\x00"):
    body = magic + bytes([type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body += array.astype(np.uint8).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(body)
    return path


def _fake_mnist(folder, n_test=50, n_train=None, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    pairs = [("t10k", n_test)] + ([("train", n_train)] if n_train else [])
    for prefix, n in pairs:
        _write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}",
                   rng.integers(0, 256, (n, 28, 28)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n))
    return folder


@pytest.mark.parametrize("name, k, std", [("ring", 8, 0.02), ("grid", 25, 0.05)])
def test_toy_mixtures_have_their_modes_and_spread(backend, name, k, std):
    points, labels = data.make_toy(name, 20000, seed=3)
    spec = data.toy_modes(name)
    x, y = points.numpy(), labels.numpy()
    assert x.shape == (20000, 2) and len(spec.modes) == k and spec.std == std
    assert set(np.unique(y)) == set(range(k))
    residual = x - np.array(spec.modes)[y]
    assert abs(residual.std() - std) < 0.05 * std
    np.testing.assert_array_equal(data.make_toy(name, 20000, seed=3)[0].numpy(), x)   # seeded
    assert not np.array_equal(data.make_toy(name, 20000, seed=4)[0].numpy(), x)


def test_ring_geometry():
    centres = np.array(data.toy_modes("ring").modes)
    np.testing.assert_allclose(np.hypot(centres[:, 0], centres[:, 1]), 2.0)
    assert sorted({round(c, 6) for c in np.array(data.toy_modes("grid").modes).ravel()}) == \
        [-4.0, -2.0, 0.0, 2.0, 4.0]


def test_moons_are_two_labelled_half_circles(backend):
    points, labels = data.moons(4000, noise=0.0, seed=1)
    x, y = points.numpy(), labels.numpy()
    upper, lower = x[y == 0], x[y == 1]
    np.testing.assert_allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0, atol=1e-5)
    assert (upper[:, 1] >= -1e-6).all() and (lower[:, 1] <= 0.5 + 1e-6).all()


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_read_idx_round_trip(tmp_path, suffix):
    array = np.arange(24).reshape(2, 3, 4)
    read = data.read_idx(_write_idx(tmp_path / f"x-idx3-ubyte{suffix}", array))
    np.testing.assert_array_equal(read, array)


def test_read_idx_refuses_bad_files(tmp_path):
    array = np.arange(24).reshape(2, 3, 4)
    with pytest.raises(data.DataError, match="bad magic"):
        data.read_idx(_write_idx(tmp_path / "a", array, magic=b"\x01\x00"))
    with pytest.raises(data.DataError, match="type code 0x0d"):
        data.read_idx(_write_idx(tmp_path / "b", array, type_code=0x0D))
    good = _write_idx(tmp_path / "c", array)
    truncated = tmp_path / "d"
    truncated.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(data.DataError, match="truncated or corrupt"):
        data.read_idx(truncated)
    broken_gz = tmp_path / "e.gz"
    broken_gz.write_bytes(gzip.compress(good.read_bytes())[:-10])
    with pytest.raises(data.DataError, match="damaged"):
        data.read_idx(broken_gz)


def test_test_split_only_gives_8000_2000_and_says_so(tmp_path):
    folder = _fake_mnist(tmp_path, n_test=100)
    messages = []
    split = data.load_mnist(folder, download=False, log=messages.append)
    assert split.train_images.shape == (80, 784) and split.test_images.shape == (20, 784)
    assert "first 80 digits" in messages[0] and "last 20" in messages[0]
    x = split.train_images.numpy()
    assert x.min() >= 0 and x.max() <= 1 and x.dtype == np.float32


def test_full_split_is_used_when_present(tmp_path):
    split = data.load_mnist(_fake_mnist(tmp_path, n_test=20, n_train=30, gz=False), download=False,
                            log=lambda m: None)
    assert len(split.train_images) == 30 and len(split.test_labels) == 20


def test_missing_files_name_the_files_and_the_variable(tmp_path, monkeypatch):
    named = tmp_path / "not-there"
    monkeypatch.setenv("MINIGEN_DATA", str(named))
    with pytest.raises(data.DataError) as info:
        data.load_mnist(log=lambda m: None)
    message = str(info.value)
    for name in data.MNIST_FILES:
        assert name in message
    assert "MINIGEN_DATA" in message
    assert not named.exists()                # a folder the user named is never written to


class _Response:
    """What urllib.request.urlopen returns, serving ``payload`` in one chunk."""

    def __init__(self, payload):
        self.chunks = [payload, b""]

    def read(self, n):
        return self.chunks.pop(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_downloads_are_checked_and_never_left_half_written(tmp_path, monkeypatch):
    monkeypatch.setattr(data.urllib.request, "urlopen",
                        lambda url, timeout: _Response(b"not the real file"))
    with pytest.raises(data.DataError, match="SHA-256"):
        data._download(str(tmp_path), "t10k-labels-idx1-ubyte")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.environ.get("MINIGEN_DATA"), reason="MINIGEN_DATA is not set")
def test_real_mnist_files():
    split = data.load_mnist(log=lambda m: None)
    assert split.train_images.shape[1] == 784
    assert len(split.train_images) + len(split.test_images) in (10000, 70000)
    labels = np.concatenate([split.train_labels.numpy(), split.test_labels.numpy()])
    assert set(np.unique(labels)) == set(range(10))
    assert 0.1 < split.test_images.numpy().mean() < 0.15          # MNIST's mean intensity is ~0.13


def test_dataloader_batches_cover_every_row_once(backend):
    x = mg.Tensor(np.arange(10.0).reshape(10, 1))
    y = mg.Tensor(np.arange(10))
    loader = data.DataLoader(x, y, batch_size=4, shuffle=True, seed=5)
    assert len(loader) == 3
    batches = list(loader)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = np.concatenate([b[0].numpy()[:, 0] for b in batches])
    assert sorted(seen) == list(range(10))
    for bx, by in batches:
        np.testing.assert_array_equal(bx.numpy()[:, 0], by.numpy())     # rows stay paired
        assert bx.device == x.device
    second = np.concatenate([b[0].numpy()[:, 0] for b in loader])
    assert not np.array_equal(seen, second)                              # a new order each epoch
    loader.set_epoch(0)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy()[:, 0] for b in loader]), seen)
    assert len(data.DataLoader(x, batch_size=4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="lengths 10 and 3"):
        data.DataLoader(x, mg.Tensor([1, 2, 3]))


def test_binarize_keeps_the_mean(backend):
    mg.manual_seed(0)
    p = mg.full((200, 50), 0.3)
    b = data.binarize(p).numpy()
    assert set(np.unique(b)) <= {0.0, 1.0}
    assert abs(b.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / b.size)


# --------------------------------------------------------------------------------------------------
# Fashion-MNIST and the MINIGEN_DATA layouts
# --------------------------------------------------------------------------------------------------

def _quiet(message):
    pass


def test_fashion_mnist_loads_its_full_split(tmp_path):
    _fake_mnist(tmp_path, n_test=20, n_train=30)
    split = data.load_fashion_mnist(tmp_path, download=False, log=_quiet)
    assert split.name == "fashion-mnist"
    assert split.train_images.shape == (30, 784) and split.test_images.shape == (20, 784)
    assert len(data.FASHION_MNIST.classes) == 10 and data.FASHION_MNIST.classes[9] == "Ankle boot"


def test_fashion_mnist_needs_all_four_files(tmp_path):
    _fake_mnist(tmp_path, n_test=20)            # the t10k pair only: enough for MNIST, not for this
    with pytest.raises(data.DataError) as info:
        data.load_fashion_mnist(tmp_path, download=False, log=_quiet)
    assert "Fashion-MNIST files missing" in str(info.value)
    assert "train-images-idx3-ubyte[.gz]" in str(info.value)


def test_minigen_data_may_hold_one_subfolder_per_set(tmp_path, monkeypatch):
    (tmp_path / "mnist").mkdir()
    _fake_mnist(tmp_path / "mnist", n_test=40)
    (tmp_path / "fashion-mnist").mkdir()
    _fake_mnist(tmp_path / "fashion-mnist", n_test=10, n_train=15)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path))
    mnist = data.load_mnist(log=_quiet)
    fashion = data.load_fashion_mnist(log=_quiet)
    assert (len(mnist.train_images), len(mnist.test_images)) == (32, 8)
    assert (len(fashion.train_images), len(fashion.test_images)) == (15, 10)
    assert data.load_images("fashion-mnist", log=_quiet).name == "fashion-mnist"
    with pytest.raises(ValueError, match="unknown image set 'cifar'"):
        data.load_images("cifar")


def test_minigen_data_naming_mnist_itself_keeps_working_and_is_not_fashion(tmp_path, monkeypatch):
    _fake_mnist(tmp_path, n_test=50)
    monkeypatch.setenv("MINIGEN_DATA", str(tmp_path))
    assert len(data.load_mnist(log=_quiet).test_images) == 10
    # MNIST's files are never read as Fashion-MNIST
    with pytest.raises(data.DataError) as info:
        data.load_fashion_mnist(log=_quiet)
    assert "no fashion-mnist/ subfolder" in str(info.value) and "MINIGEN_DATA" in str(info.value)


def test_fashion_downloads_are_checked_on_their_decompressed_bytes(tmp_path, monkeypatch):
    body = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x02\x07\x03")     # an IDX file of 2 labels
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: _Response(body))
    with pytest.raises(data.DataError, match="SHA-256"):
        data._download(str(tmp_path), "t10k-labels-idx1-ubyte", data.FASHION_MNIST)
    assert list(tmp_path.iterdir()) == []
    digest = hashlib.sha256(gzip.decompress(body)).hexdigest()
    spec = data.IdxSet("toy", "Toy", {"t10k-labels-idx1-ubyte": (2, digest)}, "http://x/",
                       "content", ("a", "b"))
    path = data._download(str(tmp_path), "t10k-labels-idx1-ubyte", spec)
    np.testing.assert_array_equal(data.read_idx(path), [7, 3])


def _shared_fashion():
    root = os.environ.get("MINIGEN_DATA", "")
    return os.path.isdir(os.path.join(root, "fashion-mnist"))


@pytest.mark.skipif(not _shared_fashion(), reason="MINIGEN_DATA has no fashion-mnist/ subfolder")
def test_real_fashion_mnist_files():
    split = data.load_fashion_mnist(log=_quiet)
    assert split.train_images.shape == (60000, 784) and split.test_images.shape == (10000, 784)
    for labels in (split.train_labels.numpy(), split.test_labels.numpy()):
        np.testing.assert_array_equal(np.bincount(labels), [len(labels) // 10] * 10)   # balanced
    assert 0.27 < split.test_images.numpy().mean() < 0.30        # Fashion-MNIST's mean is ~0.286

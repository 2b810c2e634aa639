"""minigen.io: the one atomic writer (umask, cleanup on every failure, the name of the file in
errors), strict JSON, and the checks that refuse damaged .npz files."""

import errno
import json
import os
import pathlib
import pickle
import re
import stat

import numpy as np
import pytest

import minigen as mg
from minigen import io as mio


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_respect_the_umask(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        with mio.atomic_write(tmp_path / "a.bin") as f:
            f.write(b"x")
        mio.write_json(tmp_path / "a.json", {"a": 1})
        mg.backend.save_arrays(tmp_path / "a.npz", {"x": np.zeros(2)})
    finally:
        os.umask(old)
    for name in ("a.bin", "a.json", "a.npz"):
        assert _mode(tmp_path / name) == expected, name


def test_a_failure_in_the_block_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)):
            with mio.atomic_write(path, "w") as f:
                f.write("half of the new")
                raise error
        assert path.read_text() == "old"
        assert os.listdir(tmp_path) == ["f.txt"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_os_errors_name_the_target_and_clean_up(tmp_path, monkeypatch, code):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"previous")

    def fail(*args):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError) as info:
        with mio.atomic_write(path) as f:
            f.write(b"new")
    assert info.value.errno == code and info.value.filename == str(path)
    assert path.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_an_unwritable_folder_names_the_file(tmp_path, monkeypatch):
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if os.path.basename(path).startswith(mio.TMP_PREFIX):
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(PermissionError) as info:
        mio.write_json(tmp_path / "m.json", {})
    assert info.value.filename == str(tmp_path / "m.json")
    assert os.listdir(tmp_path) == []


def test_remove_stale_temporaries_touches_only_its_own_names(tmp_path):
    for name in (".tmp-checkpoint.npz-1234abcd", ".tmp-x", "keep.txt", ".hidden", "tmp-no-dot"):
        (tmp_path / name).write_text("x")
    (tmp_path / ".tmp-folder").mkdir()
    removed = mio.remove_stale_temporaries(tmp_path)
    assert removed == [".tmp-checkpoint.npz-1234abcd", ".tmp-x"]
    assert sorted(os.listdir(tmp_path)) == [".hidden", ".tmp-folder", "keep.txt", "tmp-no-dot"]
    assert mio.remove_stale_temporaries(tmp_path / "missing") == []


def test_json_is_strict_both_ways(tmp_path):
    path = tmp_path / "m.json"
    mio.write_json(path, {"kl": float("inf"), "loss": float("nan"), "ok": [1.5, -float("inf")],
                          "n": 3, "t": (1, 2)})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"kl": None, "loss": None, "ok": [1.5, None], "n": 3, "t": [1, 2]}
    path.write_text('{"kl": Infinity}')
    with pytest.raises(mio.BadFileError, match=re.escape(str(path))):
        mio.read_json(path)
    path.write_text('{"kl": ')
    with pytest.raises(mio.BadFileError, match="not valid JSON"):
        mio.read_json(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(mio.BadFileError, match=re.escape(str(path))):
        mio.read_json(path)


def _damaged(tmp_path):
    good = tmp_path / "good.npz"
    mg.backend.save_arrays(good, {"w": np.arange(6.0).reshape(2, 3)})
    data = good.read_bytes()
    cases = {
        "truncated": data[: len(data) // 2],
        "random": np.random.default_rng(0).bytes(500),
        "empty": b"",
        "pickle": pickle.dumps({"w": [1, 2]}),
    }
    np.savez(tmp_path / "objects.npz", w=np.array([{"a": 1}, None], dtype=object))
    cases["object arrays"] = (tmp_path / "objects.npz").read_bytes()
    np.save(tmp_path / "plain.npy", np.zeros(3))
    cases["a .npy file"] = (tmp_path / "plain.npy").read_bytes()
    return cases


def test_damaged_npz_files_are_refused_with_the_file_name(tmp_path):
    for what, data in _damaged(tmp_path).items():
        path = tmp_path / f"{what.replace(' ', '_')}.npz"
        path.write_bytes(data)
        with pytest.raises(mio.BadFileError) as info:
            mg.backend.load_arrays(path)
        message = str(info.value)
        assert str(path) in message, what
        assert "allow_pickle" not in message, what     # never advice to load a pickle
    with pytest.raises(FileNotFoundError):
        mg.backend.load_arrays(tmp_path / "missing.npz")


def test_every_writer_of_the_package_goes_through_atomic_write():
    """The one atomic writer: no other module makes temporary files or renames them into place."""
    package = pathlib.Path(mg.__file__).parent
    pattern = re.compile(r"mkstemp|NamedTemporaryFile|os\.replace|os\.rename|\.savefig\(\s*[^f]"
                         r"|open\([^)]*['\"][wa]b?['\"]")
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "io.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line) and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(package)}:{number}: {line.strip()}")
    assert offenders == []

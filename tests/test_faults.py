"""Fault injection: runs that are killed, that run out of disk or permission, and run folders that
are damaged.  What must hold: a resumed run ends with exactly the parameters (and history) of an
uninterrupted one; the previous checkpoint survives a failed save; no command shows a traceback,
each exits with 2 for bad input or 1 for a fault during work, names the file, and changes nothing.
"""

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import minigen
from minigen import io as mio
from runfolders import cli, snapshot

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(minigen.__file__)))
ENV = dict(os.environ, PYTHONPATH=PACKAGE_ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
           MPLBACKEND="Agg")
ENV.pop("MINIGEN_BACKEND", None)

# A training process as small as can be: a VAE on 512 ring points, 8 steps an epoch, through the
# same fit() the command line uses.  "hook" announces each os.replace (the last step of every atomic
# write, once the temporary file is complete) and waits, so that the parent can kill it right there.
CHILD = r"""
import os, sys, time
import minigen as mg
from minigen import backend as B
from minigen.data import make_toy
from minigen.io import remove_stale_temporaries
from minigen.models import build_model
from minigen.train import CHECKPOINT, fit

out, epochs, hook = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "hook"
B.set_num_threads(1)
if hook:
    real_replace = os.replace
    def announced(src, dst):
        print("W", os.path.basename(dst), flush=True)
        time.sleep(0.5)
        real_replace(src, dst)
    os.replace = announced
remove_stale_temporaries(out)          # what train_run does on start
print("READY", flush=True)
x, _ = make_toy("ring", 512, seed=0)
mg.manual_seed(0)
model = build_model("vae", data_dim=2, hidden=[16], latent_dim=2, likelihood="gaussian")
fit(model, x, epochs=epochs, batch_size=64, seed=3, lr=1e-2, out_dir=out, quiet=True,
    resume=os.path.exists(os.path.join(out, CHECKPOINT)))
print("DONE", flush=True)
"""
EPOCHS = 400      # many short epochs: kills at random moments land in different epochs
KILLS = 6


def _child(out, hook=False):
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(EPOCHS),
                             "hook" if hook else "plain"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _checkpoint(folder):
    with np.load(os.path.join(folder, "checkpoint.npz")) as f:
        arrays = {k: f[k] for k in f.files}
    history = json.loads(bytes(arrays.pop("history")).decode())
    return arrays, [{k: v for k, v in h.items() if k != "seconds"} for h in history]


def _assert_same_run(a, b):
    (arrays_a, history_a), (arrays_b, history_b) = _checkpoint(a), _checkpoint(b)
    assert arrays_a.keys() == arrays_b.keys()
    for name in arrays_a:
        np.testing.assert_array_equal(arrays_a[name], arrays_b[name], err_msg=name)
    assert history_a == history_b and len(history_b) == EPOCHS
    written = json.loads((b / "history.json").read_text())    # the copy for people and plots
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in written] == history_b


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_run(tmp_path):
    """KILLS kills at random moments of training (mid-epoch, mid-write), and as many exactly inside
    an atomic write of the checkpoint or of history.json; each next process resumes from what the
    last one left.  The end: the uninterrupted run's parameters, optimizer state and history."""
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = _child(straight)                      # runs alongside the kills
    rng = random.Random(int(os.environ.get("MINIGEN_FAULT_SEED", "20261201")))   # more: vary it
    kills = {"random": 0, "in a write": 0}
    for attempt in range(2 * KILLS):
        in_write = attempt % 2 == 1
        process = _child(killed, hook=in_write)
        assert process.stdout.readline() == "READY\n", process.communicate()[1]
        if in_write:                     # kill at the n-th announced replace
            target, seen = rng.randint(1, 4), 0
            for line in process.stdout:
                seen += line.startswith("W")
                if seen == target:
                    break
        else:
            time.sleep(rng.uniform(0.0, 0.25))
        process.kill()
        process.communicate()
        if process.returncode == 0:      # finished before the kill: the rest cannot be tested
            break
        assert process.returncode == -9, process.stderr
        kills["in a write" if in_write else "random"] += 1
    finish = _child(killed)
    _, err = finish.communicate()
    assert finish.returncode == 0, err
    _, err = reference.communicate()
    assert reference.returncode == 0, err
    assert kills == {"random": KILLS, "in a write": KILLS}, kills
    _assert_same_run(straight, killed)
    assert not [n for n in os.listdir(killed) if n.startswith(mio.TMP_PREFIX)]


def test_sigkill_of_the_command_line_then_resume_or_overwrite(tmp_path):
    """The real command: killed before its first checkpoint (config.json alone stays: a new train
    needs --overwrite), and after some epochs (--resume); the model is the uninterrupted run's."""
    args = ["train", "vae", "--epochs", "6", "--limit", "1024", "--batch-size", "64",
            "--hidden", "16", "--quiet"]

    def start(out, *extra):
        return subprocess.Popen([sys.executable, "-m", "minigen", *args, "--out", str(out), *extra],
                                env=ENV, cwd=tmp_path, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    reference = start(tmp_path / "straight")
    out = tmp_path / "killed"
    first = start(out)
    while not (out / "config.json").exists() and first.poll() is None:
        time.sleep(0.01)
    first.kill()
    first.communicate()
    if not (out / "checkpoint.npz").exists():
        code, _, err = cli(*args, "--out", out)
        assert code == 2 and "never finished an epoch" in err and "--overwrite" in err
        second = start(out, "--overwrite")
    else:                                                   # a very fast machine
        second = start(out, "--resume")
    while not (out / "history.json").exists() and second.poll() is None:
        time.sleep(0.01)
    time.sleep(0.1)
    second.kill()
    second.communicate()
    flag = "--resume" if (out / "checkpoint.npz").exists() else "--overwrite"
    finish = start(out, flag)
    _, err = finish.communicate()
    assert finish.returncode == 0, err
    _, err = reference.communicate()
    assert reference.returncode == 0, err
    with np.load(tmp_path / "straight" / "model.npz") as a, np.load(out / "model.npz") as b:
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# --- a full disk, a lost permission ------------------------------------------------------------

RUN = ["train", "gan", "--epochs", "3", "--limit", "512", "--quiet"]


class _FailingFile:
    """A file whose first write puts half of its bytes down, then fails with ``error``."""

    def __init__(self, f, error):
        self._f, self._error = f, error

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        raise self._error

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _fail_nth_write(monkeypatch, name, n, error):
    """Make the n-th write of a file called ``name`` fail with ``error`` (a full disk, a lost
    permission) after part of its temporary file is written, whichever module writes it."""
    real_open, real_fdopen = os.open, os.fdopen
    opened, count = {}, {"n": 0}

    def open_(path, *args, **kwargs):
        fd = real_open(path, *args, **kwargs)
        opened[fd] = os.path.basename(os.fspath(path))
        return fd

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        if opened.pop(fd, "").startswith(f"{mio.TMP_PREFIX}{name}-"):
            count["n"] += 1
            if count["n"] == n:
                return _FailingFile(f, error)
        return f

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "fdopen", fdopen)


@pytest.mark.parametrize("error, words", [
    (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    (PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
])
def test_a_failed_checkpoint_save_keeps_the_previous_one(tmp_path, monkeypatch, error, words):
    straight, out = tmp_path / "straight", tmp_path / "run"
    assert cli(*RUN, "--out", straight)[0] == 0
    _fail_nth_write(monkeypatch, "checkpoint.npz", 2, error)
    code, _, err = cli(*RUN, "--out", out)
    assert code == 1
    assert f"{out / 'checkpoint.npz'}: {words}" in err
    assert "the checkpoint after epoch 1 is kept" in err and "--resume" in err
    assert len(err.strip().splitlines()) == 1, err
    assert not [n for n in os.listdir(out) if n.startswith(mio.TMP_PREFIX)]
    monkeypatch.undo()
    assert cli(*RUN, "--out", out, "--resume")[0] == 0
    with np.load(straight / "model.npz") as a, np.load(out / "model.npz") as b:
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_a_full_disk_when_the_model_is_written_keeps_the_finished_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _fail_nth_write(monkeypatch, "model.npz", 1, OSError(errno.ENOSPC, "No space left on device"))
    code, _, err = cli(*RUN, "--out", out)
    assert code == 1 and "model.npz: No space left on device" in err
    assert "the checkpoint after epoch 3 is kept" in err
    assert not (out / "model.npz").exists()
    monkeypatch.undo()
    code, stdout, err = cli(*RUN, "--out", out, "--resume")
    assert code == 0 and (out / "model.npz").exists()


# --- damaged run folders against every command of the README -----------------------------------

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    assert cli("train", "gan", "--epochs", "2", "--limit", "512", "--out", out, "--quiet")[0] == 0
    return out


def _npz_bytes(tmp_path, **arrays):
    path = tmp_path / "made.npz"
    np.savez(path, **arrays)
    data = path.read_bytes()
    path.unlink()
    return data


def _damage(kind, folder, tmp_path):
    """Damage ``folder`` in the way ``kind`` names; returns the damaged file's name."""
    name, how = kind.split(":")
    path = folder / name
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    elif how == "random bytes":
        path.write_bytes(np.random.default_rng(1).bytes(len(data)))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "pickled objects":
        path.write_bytes(_npz_bytes(tmp_path, **{"epoch": np.array(1),
                                                 "x": np.array([{"a": 1}], dtype=object)}))
    elif how == "wrong shapes":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays = {k: (np.zeros(v.shape[:-1] + (v.shape[-1] + 1,), v.dtype)
                      if v.ndim and k != "history" else v) for k, v in arrays.items()}
        path.write_bytes(_npz_bytes(tmp_path, **arrays))
    elif how == "no epoch":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files if k != "epoch"}
        path.write_bytes(_npz_bytes(tmp_path, **arrays))
    elif how == "{}":
        path.write_text("{}")
    elif how == "not JSON":
        path.write_text('{"kind": "gan", ')
    elif how == "NaN":
        path.write_text(path.read_text().replace('"seed": 0', '"seed": NaN'))
    elif how == "hidden as text":
        config = json.loads(data)
        config["model"]["hidden"] = "64"
        path.write_text(json.dumps(config))
    elif how == "missing":
        path.unlink()
    else:
        raise AssertionError(kind)
    return name


# (damage, {command: expected exit code}); 0 = the damaged file is not one the command reads
DAMAGES = [(f"model.npz:{how}", {"evaluate": 2, "sample": 2}) for how in (
    "truncated", "random bytes", "empty", "pickled objects", "wrong shapes", "missing")]
DAMAGES += [(f"checkpoint.npz:{how}", {"resume": 2, "evaluate": 0, "sample": 0}) for how in (
    "truncated", "random bytes", "empty", "pickled objects", "wrong shapes", "no epoch")]
DAMAGES += [(f"config.json:{how}", {"resume": 2, "evaluate": 2, "sample": 2, "train": 2})
            for how in ("{}", "not JSON", "NaN", "hidden as text")]
DAMAGES += [("checkpoint.npz:missing", {"resume": 2, "train": 2}),
            ("config.json:missing", {"resume": 2, "evaluate": 2, "sample": 2})]


def _command(which, folder, image):
    return {"evaluate": ["evaluate", folder],
            "sample": ["sample", folder, "-n", "16", "--out", image],
            "resume": ["train", "gan", "--out", folder, "--resume", "--quiet"],
            "train": ["train", "gan", "--epochs", "1", "--out", folder, "--quiet"]}[which]


@pytest.mark.parametrize("damage, expected", DAMAGES, ids=[d for d, _ in DAMAGES])
def test_every_command_on_a_damaged_run_folder(finished_run, tmp_path, damage, expected):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    name = _damage(damage, folder, tmp_path)
    before = snapshot(folder)
    for which, code_expected in expected.items():
        image = tmp_path / f"{which}.png"
        code, _, err = cli(*_command(which, folder, image))
        assert code == code_expected, (which, err)
        assert "Traceback" not in err
        if code_expected == 2:
            assert (name in err) if which != "train" else ("already holds" in err), err
            assert "allow_pickle" not in err
            assert len(err.strip().splitlines()) == 1, err        # one line
            assert not image.exists()
        assert snapshot(folder) == before, which                  # nothing in the folder changed


def test_a_damaged_history_does_not_stop_a_resume(finished_run, tmp_path):
    """history.json is a copy for people and plots: the checkpoint holds its own."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    (folder / "history.json").write_text("[{")
    assert cli("train", "gan", "--epochs", "3", "--out", folder, "--resume", "--quiet")[0] == 0
    assert [h["epoch"] for h in json.loads((folder / "history.json").read_text())] == [1, 2, 3]


def test_damage_reported_end_to_end_without_a_traceback(finished_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    (folder / "model.npz").write_bytes(np.random.default_rng(2).bytes(300))
    result = subprocess.run([sys.executable, "-m", "minigen", "evaluate", str(folder)],
                            capture_output=True, text=True, env=ENV, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "model.npz is not a minigen checkpoint" in result.stderr


# --- one training at a time in a run folder ----------------------------------------------------

# Holds the run folder's lock, as a training does, until its stdin closes (or it is killed).
HOLDER = r"""
import sys
from minigen.io import folder_lock
with folder_lock(sys.argv[1]):
    print("LOCKED", flush=True)
    sys.stdin.read()
"""


def _hold_lock(folder):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], env=ENV,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "LOCKED"
    return holder


def test_folder_lock_refuses_a_second_holder_and_goes_away(tmp_path):
    with mio.folder_lock(tmp_path):
        assert f"process {os.getpid()} " in (tmp_path / mio.LOCK_NAME).read_text()
        with pytest.raises(mio.FolderInUse, match=f"in use by process {os.getpid()} on host"):
            with mio.folder_lock(tmp_path):
                pass
    assert not (tmp_path / mio.LOCK_NAME).exists()
    (tmp_path / mio.LOCK_NAME).write_text("process 999999999 on host gone\n")   # left by a kill
    with mio.folder_lock(tmp_path):
        assert f"process {os.getpid()} " in (tmp_path / mio.LOCK_NAME).read_text()
    assert not (tmp_path / mio.LOCK_NAME).exists()


class _WindowsLocking:
    """msvcrt's locking as Windows does it, for the lock's Windows path on any machine: a byte range
    of a file, held by one open descriptor until that one gives it back (LK_UNLCK)."""
    LK_UNLCK, LK_NBLCK = 0, 2

    def __init__(self):
        self.held, self.calls = {}, []

    def locking(self, fd, mode, nbytes):
        status = os.fstat(fd)
        key = (status.st_dev, status.st_ino, os.lseek(fd, 0, os.SEEK_CUR), nbytes)
        self.calls.append((mode, key[2], nbytes))
        if mode == self.LK_NBLCK:
            if key in self.held:
                raise OSError(errno.EACCES, "Permission denied")
            self.held[key] = fd
        elif self.held.get(key) == fd:
            del self.held[key]
        else:
            raise OSError(errno.EACCES, "Permission denied")


def test_folder_lock_on_windows_gives_the_byte_back_and_the_next_holder_takes_it(tmp_path,
                                                                                  monkeypatch):
    windows = _WindowsLocking()
    monkeypatch.setattr(mio, "fcntl", None)
    monkeypatch.setattr(mio, "msvcrt", windows)
    remove = os.remove

    def remove_unless_open(path):           # Windows cannot remove the open .lock
        if os.path.basename(path) == mio.LOCK_NAME:
            raise PermissionError(errno.EACCES, "The process cannot access the file", path)
        remove(path)

    monkeypatch.setattr(mio.os, "remove", remove_unless_open)
    with mio.folder_lock(tmp_path):
        with pytest.raises(mio.FolderInUse, match=f"in use by process {os.getpid()} on host"):
            with mio.folder_lock(tmp_path):
                pass
    assert windows.held == {}                       # given back, not left to the close
    assert (tmp_path / mio.LOCK_NAME).exists()      # stays, unlocked
    with mio.folder_lock(tmp_path):                 # so the next training goes on at once
        assert (tmp_path / mio.LOCK_NAME).read_text().startswith(f"process {os.getpid()} ")
    assert windows.held == {}
    # always the same one byte, far past the holder's name (which the refused process read)
    assert {(offset, n) for _, offset, n in windows.calls} == {(mio._LOCKED_BYTE, 1)}
    assert [mode for mode, _, _ in windows.calls].count(windows.LK_UNLCK) == 2


def test_folder_lock_on_a_filesystem_without_locks_warns_and_goes_on(tmp_path, monkeypatch):
    def no_locks(fd):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(mio, "_try_lock", no_locks)
    ran = []
    with pytest.warns(RuntimeWarning, match=f"cannot lock {tmp_path} \\(No locks available\\)"):
        with mio.folder_lock(tmp_path):
            ran.append(True)
    assert ran and os.listdir(tmp_path) == []


def test_evaluate_under_a_training_prints_the_metrics_and_writes_nothing(finished_run, tmp_path):
    """evaluate reads a finished run while another process holds its folder (a --resume adding
    epochs), but leaves metrics.json to that process: printed only, folder unchanged."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    (folder / "metrics.json").unlink()                   # so that evaluate wants to write it
    holder = _hold_lock(folder)
    try:
        before = snapshot(folder)
        code, out, err = cli("evaluate", folder)
        assert code == 0 and "modes_covered" in out, err
        assert f"metrics.json not written: process {holder.pid} on host" in err, err
        assert snapshot(folder) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_folder_in_use_is_refused_naming_the_other_process_until_it_dies(finished_run,
                                                                          tmp_path):
    """While another process holds the run folder, --resume and --overwrite stop at once with one
    line naming the folder and the process, and change nothing; once that process is SIGKILLed,
    the lock it left behind blocks nothing."""
    folder = tmp_path / "run"
    shutil.copytree(finished_run, folder)
    holder = _hold_lock(folder)
    try:
        before = snapshot(folder)
        for extra in (["--resume", "--epochs", "3"], ["--overwrite"]):
            code, _, err = cli("train", "gan", "--limit", "512", "--out", folder, "--quiet", *extra)
            assert code == 2, err
            assert len(err.strip().splitlines()) == 1, err
            assert f"{folder} is in use: process {holder.pid} on host" in err, err
            assert snapshot(folder) == before, extra
    finally:
        holder.kill()
        holder.wait()
    assert (folder / mio.LOCK_NAME).exists()                   # a SIGKILL cleans nothing up
    code, _, err = cli("train", "gan", "--epochs", "3", "--out", folder, "--resume", "--quiet")
    assert code == 0, err
    assert not (folder / mio.LOCK_NAME).exists()


def test_a_second_training_while_one_runs_is_refused(tmp_path):
    """Two real trainings: the second, even with --overwrite, does not touch the first's folder."""
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "minigen", "train", "vae", "--epochs", "500",
                              "--limit", "512", "--batch-size", "64", "--hidden", "16",
                              "--quiet", "--out", str(out)], env=ENV, cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not (out / "checkpoint.npz").exists() and first.poll() is None:
            time.sleep(0.01)
        assert first.poll() is None, first.communicate()
        config = (out / "config.json").read_bytes()
        code, _, err = cli("train", "vae", "--out", out, "--overwrite", "--quiet")
        assert code == 2 and f"in use: process {first.pid} on host" in err, err
        assert first.poll() is None and (out / "config.json").read_bytes() == config
    finally:
        first.kill()
        first.communicate()


def test_a_run_started_into_the_folder_meanwhile_is_not_overwritten(tmp_path, monkeypatch):
    """The folder is checked again once the lock is held: a run that another process started
    between the first check and the lock is refused, not removed."""
    from minigen import runs

    out = tmp_path / "run"
    load = runs.load_dataset

    def other_run_starts(*args, **kwargs):
        out.mkdir()
        (out / "config.json").write_text("{}")
        return load(*args, **kwargs)

    monkeypatch.setattr(runs, "load_dataset", other_run_starts)
    code, _, err = cli("train", "gan", "--epochs", "1", "--limit", "256", "--out", out, "--quiet")
    assert code == 2 and "changed while this run was starting" in err and "config.json" in err
    assert (out / "config.json").read_text() == "{}" and os.listdir(out) == ["config.json"]

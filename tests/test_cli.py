"""The command line end to end, with tiny settings, in temporary folders."""

import errno
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import minigen as mg
from minigen.cli import main
from runfolders import cli, snapshot


def _run(*args):
    return main([str(a) for a in args])


@pytest.fixture(autouse=True)
def _blas_threads_restored():
    """The command line sets the BLAS thread count for the whole process: give the next test (on
    this xdist worker) the count it had before."""
    before = mg.get_num_threads()
    yield
    mg.set_num_threads(before)


@pytest.mark.parametrize("model", ["vae", "gan", "vaegan"])
def test_train_writes_a_complete_run_folder(tmp_path, model):
    out = tmp_path / model
    assert _run("train", model, "--epochs", 1, "--out", out, "--quiet") == 0
    files = set(os.listdir(out))
    expected = {"config.json", "checkpoint.npz", "model.npz", "history.json", "metrics.json",
                "loss.png", "samples.png"}
    if model == "vae":
        expected |= {"reconstructions.png", "latent.png", "latent_grid.png"}
    assert expected <= files
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["modes_total"] == 8 and 0 <= metrics["modes_covered"] <= 8
    assert 0.0 <= metrics["high_quality_fraction"] <= 1.0
    if model == "vae":
        assert metrics["test_nll_iwae"] <= metrics["test_loss"] + 0.05
    assert len(json.loads((out / "history.json").read_text())) == 1


def test_evaluate_and_sample(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run("train", "gan", "--data", "grid", "--epochs", 1, "--out", out, "--quiet") == 0
    first = json.loads((out / "metrics.json").read_text())
    capsys.readouterr()
    assert _run("evaluate", out) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == first and printed["modes_total"] == 25   # same seed: the same numbers
    png = tmp_path / "s.png"
    assert _run("sample", out, "-n", 100, "--out", png) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_pack_reaches_the_gan(tmp_path):
    out = tmp_path / "packed"
    assert _run("train", "gan", "--epochs", 1, "--pack", 4, "--out", out, "--quiet") == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["pack"] == 4


def test_resume_continues_exactly(tmp_path):
    # one BLAS thread count for both runs (another count rounds the sums differently); the resume
    # itself gives none and takes the run's recorded count
    straight, resumed = tmp_path / "a", tmp_path / "b"
    assert _run("train", "vae", "--epochs", 2, "--out", straight, "--quiet", "--seed", 3,
                "--threads", 1) == 0
    assert _run("train", "vae", "--epochs", 1, "--out", resumed, "--quiet", "--seed", 3,
                "--threads", 1) == 0
    mg.set_num_threads(2)                 # what the load average could have chosen meanwhile
    assert _run("train", "vae", "--epochs", 2, "--out", resumed, "--quiet", "--resume") == 0
    assert mg.backend.get_num_threads() == 1
    config = json.loads((resumed / "config.json").read_text())
    assert config["threads"] == 1
    assert config["resumed"] == [{"after_epoch": 1, "changed": {"epochs": [1, 2]}}]
    a = np.load(straight / "model.npz")
    b = np.load(resumed / "model.npz")
    assert a.files == b.files
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs for a second count")
def test_resume_with_other_threads_records_the_change(tmp_path):
    out = tmp_path / "run"
    assert _run("train", "vae", "--epochs", 1, "--out", out, "--quiet", "--threads", 1) == 0
    assert _run("train", "vae", "--epochs", 2, "--out", out, "--quiet", "--resume",
                "--threads", 2) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["threads"] == 2
    assert config["resumed"] == [{"after_epoch": 1,
                                  "changed": {"epochs": [1, 2], "threads": [1, 2]}}]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_diverging_run_stops_with_a_message_and_keeps_its_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    code = _run("train", "gan", "--epochs", 3, "--lr", "1e30", "--out", out, "--quiet")
    err = capsys.readouterr().err
    assert code == 1
    assert "non-finite" in err and "epoch" in err and "lower learning rate" in err
    assert "Traceback" not in err
    assert not (out / "model.npz").exists()


@pytest.mark.parametrize("args, message", [
    (["train", "flow"], "invalid choice"),
    (["train", "vae", "--data", "cifar"], "invalid choice"),
    (["train", "vae", "--epochs", "0"], "positive integer"),
    (["train", "vae", "--lr", "-1"], "positive number"),
    (["sample", "nowhere", "--out", "x.png"], "not a finished run"),
    (["evaluate", "nowhere"], "not a finished run"),
    (["train", "vae", "--resume"], "--resume needs --out"),
    (["train", "vae", "--pack", "2"], "--pack applies to the GAN only"),
])
def test_bad_input_gives_a_short_message_and_exit_code_2(tmp_path, args, message):
    result = subprocess.run([sys.executable, "-m", "minigen", *args], capture_output=True,
                            text=True,
                            cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_mnist_offline_names_the_files_and_the_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MINIGEN_DATA"}
    env["HOME"] = str(tmp_path)                       # the download cache: ~/.cache/minigen/mnist
    result = subprocess.run([sys.executable, "-c", (
        "import minigen.data as d, urllib.request as u\n"
        "def offline(*a, **k): raise OSError('network unreachable')\n"
        "u.urlopen = offline\n"
        "from minigen.cli import main\n"
        "raise SystemExit(main(['train', 'vae', '--data', 'mnist', '--quiet']))")],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "t10k-images-idx3-ubyte" in result.stderr and "MINIGEN_DATA" in result.stderr
    assert "no network" in result.stderr
    assert "Traceback" not in result.stderr


# --- run folders are never overwritten by accident ----------------------------------------------

def test_a_folder_that_holds_a_run_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    assert cli("train", "vae", "--epochs", 1, "--out", out, "--quiet")[0] == 0
    before = snapshot(out)
    code, _, err = cli("train", "gan", "--epochs", 1, "--out", out, "--quiet")
    assert code == 2 and "already holds a run" in err
    assert "--resume" in err and "new --out" in err and "--overwrite" in err
    assert snapshot(out) == before
    code, _, _ = cli("train", "gan", "--epochs", 1, "--out", out, "--quiet", "--overwrite")
    assert code == 0
    files = set(os.listdir(out))
    assert "latent.png" not in files and "reconstructions.png" not in files   # the VAE's are gone
    assert json.loads((out / "config.json").read_text())["kind"] == "gan"


@pytest.mark.parametrize("out", ["", "   "])
def test_an_empty_out_is_refused(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("train", "vae", "--epochs", 1, "--out", out)
    assert code == 2 and "--out is empty" in err
    assert os.listdir(tmp_path) == []


def test_a_file_as_out_or_above_it_is_refused(tmp_path):
    (tmp_path / "file").write_text("mine")
    for out in (tmp_path / "file", tmp_path / "file" / "run"):
        code, _, err = cli("train", "vae", "--epochs", 1, "--out", out)
        assert code == 2 and "is a file" in err and str(tmp_path / "file") in err
    assert os.listdir(tmp_path) == ["file"] and (tmp_path / "file").read_text() == "mine"


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_run_that_fails_before_its_first_checkpoint_leaves_the_folder_as_found(tmp_path):
    new = tmp_path / "new" / "run"
    code, _, err = cli("train", "gan", "--epochs", 2, "--lr", "1e30", "--out", new, "--quiet")
    assert code == 1 and "no checkpoint had been written yet" in err
    assert "Start again with a lower learning rate" in err and "--resume" not in err
    assert os.listdir(tmp_path) == []             # not even the folders it would have made
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    before = snapshot(mine)
    assert cli("train", "gan", "--epochs", 2, "--lr", "1e30", "--out", mine, "--quiet")[0] == 1
    assert snapshot(mine) == before


def test_config_is_written_only_once_the_run_starts(tmp_path, monkeypatch):
    env_data = tmp_path / "no-mnist"
    env_data.mkdir()
    monkeypatch.setenv("MINIGEN_DATA", str(env_data))
    code, _, err = cli("train", "vae", "--data", "mnist", "--out", tmp_path / "run", "--quiet")
    assert code == 2 and "MNIST files missing" in err
    assert not (tmp_path / "run").exists()


def test_ctrl_c_in_the_first_epoch_says_no_checkpoint_exists(tmp_path, monkeypatch):
    from minigen.models import vae

    calls = []

    def interrupt_in_epoch(epoch):
        def step(self, x, optimizers):
            calls.append(1)
            if len(calls) > epoch * 40 + 2:      # ring, batch 256: 40 steps an epoch
                raise KeyboardInterrupt
            return original(self, x, optimizers)
        return step

    original = vae.VAE.train_step
    monkeypatch.setattr(vae.VAE, "train_step", interrupt_in_epoch(0))
    out = tmp_path / "run"
    code, _, err = cli("train", "vae", "--epochs", 3, "--out", out, "--quiet")
    assert code == 130 and "no checkpoint exists yet" in err and "left as it was found" in err
    assert not out.exists()
    calls.clear()
    monkeypatch.setattr(vae.VAE, "train_step", interrupt_in_epoch(1))
    code, _, err = cli("train", "vae", "--epochs", 3, "--out", out, "--quiet")
    assert code == 130 and "checkpoint after epoch 1 is kept" in err
    assert f"python -m minigen train vae --out {out} --resume" in err
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "config.json", "history.json"]


# --- resuming with new settings -------------------------------------------------------------------

TINY = ["--limit", "1024", "--quiet"]       # 4 steps an epoch for the ring VAE (batch 256)


def _npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def test_resume_with_a_new_lr_and_epochs_applies_and_records_them(tmp_path):
    out = tmp_path / "run"
    assert cli("train", "vae", "--epochs", 2, "--out", out, *TINY)[0] == 0
    code, stdout, _ = cli("train", "vae", "--epochs", 3, "--lr", "1e-4", "--out", out, "--resume",
                          *TINY)
    assert code == 0
    assert "resuming" in stdout and "epochs 2 -> 3" in stdout and "lr 0.001 -> 0.0001" in stdout
    config = json.loads((out / "config.json").read_text())
    assert config["train"]["lr"] == 1e-4 and config["train"]["epochs"] == 3
    assert config["resumed"] == [{"after_epoch": 2, "changed": {"epochs": [2, 3],
                                                                "lr": [0.001, 0.0001]}}]
    assert [h["lr"] for h in json.loads((out / "history.json").read_text())] == [1e-3, 1e-3, 1e-4]
    checkpoint = _npz(out / "checkpoint.npz")
    assert checkpoint["optim.vae.lr"] == 1e-4
    assert checkpoint["optim.vae.0.step"] == 3 * 4            # Adam's state went on, not reset


@pytest.mark.parametrize("flags, named", [
    (["--hidden", "8"], "--hidden (64 32, given 8)"),
    (["--seed", "5"], "--seed (0, given 5)"),
    (["--latent-dim", "3", "--beta", "2"], "--latent-dim (2, given 3); --beta (1, given 2)"),
    (["--data", "grid"], "--data (ring, given grid)"),
    (["--limit", "10"], "--limit (1024, given 10)"),
])
def test_resume_refuses_settings_that_cannot_change(tmp_path, flags, named):
    out = tmp_path / "run"
    assert cli("train", "vae", "--epochs", 1, "--out", out, *TINY)[0] == 0
    before = snapshot(out)
    code, _, err = cli("train", "vae", "--out", out, "--resume", "--quiet", *flags)
    assert code == 2 and named in err and "fixed for a run" in err
    assert snapshot(out) == before


def test_resume_refuses_another_model_and_fewer_epochs(tmp_path):
    out = tmp_path / "run"
    assert cli("train", "vae", "--epochs", 2, "--out", out, *TINY)[0] == 0
    before = snapshot(out)
    code, _, err = cli("train", "gan", "--out", out, "--resume")
    assert code == 2 and "the model (vae, given gan)" in err
    code, _, err = cli("train", "vae", "--out", out, "--resume", "--epochs", 1)
    assert code == 2 and "holds 2 finished epochs" in err and "--epochs 2 or more" in err
    assert snapshot(out) == before


def test_divergence_advice_can_be_followed(tmp_path, monkeypatch):
    """A loss that turns NaN in epoch 2 stops with '--resume --lr ...'; doing that finishes."""
    from minigen.models import vae

    original, calls = vae.VAE.train_step, []

    def poisoned(self, x, optimizers):
        calls.append(1)
        values = original(self, x, optimizers)
        return {**values, "loss": float("nan")} if len(calls) == 6 else values

    monkeypatch.setattr(vae.VAE, "train_step", poisoned)
    out = tmp_path / "run"
    code, _, err = cli("train", "vae", "--epochs", 3, "--out", out, *TINY)
    assert code == 1 and "epoch 2, step 2" in err and "after epoch 1" in err
    assert "--resume --lr 0.0001" in err
    monkeypatch.undo()
    code, stdout, _ = cli("train", "vae", "--epochs", 3, "--out", out, "--resume", "--lr", "0.0001",
                          *TINY)
    assert code == 0 and "lr 0.001 -> 0.0001" in stdout


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400", "0"])
def test_lr_must_be_a_positive_finite_number(value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "vae", f"--lr={value}"])
    assert info.value.code == 2 and "positive number (finite)" in capsys.readouterr().err


# --- evaluate, sample, output ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gan") / "run"
    assert cli("train", "gan", "--epochs", 1, "--out", out, *TINY)[0] == 0
    return out


def _copy(run, tmp_path):
    import shutil
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run"


def test_evaluate_writes_nothing_when_nothing_changed(gan_run, tmp_path):
    run = _copy(gan_run, tmp_path)
    before = snapshot(run)
    code, stdout, _ = cli("evaluate", run)
    assert code == 0 and json.loads(stdout) == json.loads((run / "metrics.json").read_text())
    assert snapshot(run) == before


def test_evaluate_on_a_read_only_run_prints_the_metrics_and_writes_nothing(gan_run, tmp_path,
                                                                              monkeypatch):
    run = _copy(gan_run, tmp_path)
    expected = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()                  # so that evaluate wants to write it
    before = snapshot(run)
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    code, stdout, err = cli("evaluate", run)
    assert code == 0 and json.loads(stdout) == expected
    assert "metrics.json not written (Read-only file system)" in err
    assert snapshot(run) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root writes to read-only folders (the monkeypatched test covers it)")
def test_evaluate_on_a_folder_without_write_permission(gan_run, tmp_path):
    run = _copy(gan_run, tmp_path)
    (run / "metrics.json").unlink()
    os.chmod(run, 0o555)
    try:
        code, stdout, err = cli("evaluate", run)
        assert code == 0 and "modes_covered" in stdout and "not written" in err
        assert not (run / "metrics.json").exists()
    finally:
        os.chmod(run, 0o755)


def test_non_finite_weights_warn_and_give_null_metrics(gan_run, tmp_path):
    run = _copy(gan_run, tmp_path)
    weights = _npz(run / "model.npz")
    name = next(k for k in weights if k.startswith("generator"))
    weights[name] = np.full_like(weights[name], np.nan)
    np.savez(run / "model.npz", **weights)
    code, stdout, err = cli("evaluate", run)
    assert code == 0
    assert "minigen: warning:" in err and "non-finite weights" in err and name in err
    assert "NaN" not in stdout and "Infinity" not in stdout
    assert json.loads(stdout)["reverse_kl"] is None             # no sample near a mode
    assert "NaN" not in (run / "metrics.json").read_text()


def test_sample_with_a_seed_draws_the_same_figure(gan_run, tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path, seed in zip(paths, (3, 3, 4)):
        code, stdout, _ = cli("sample", gan_run, "-n", 50, "--seed", seed, "--out", path)
        assert code == 0 and str(path) in stdout
    assert paths[0].read_bytes() == paths[1].read_bytes() != paths[2].read_bytes()


def test_sample_out_must_be_a_file(gan_run, tmp_path):
    code, _, err = cli("sample", gan_run, "--out", tmp_path)
    assert code == 2 and "is a folder" in err and "samples.png" in err
    (tmp_path / "f").write_text("x")
    code, _, err = cli("sample", gan_run, "--out", tmp_path / "f" / "s.png")
    assert code == 2 and "is a file" in err
    code, _, err = cli("sample", gan_run, "--out", tmp_path / "s.xyz")
    assert code == 2 and f"--out {tmp_path / 's.xyz'}: Format 'xyz' is not supported" in err
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_sample_into_a_folder_without_write_permission_is_bad_input(gan_run, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)     # as for another user's folder
    code, _, err = cli("sample", gan_run, "--out", tmp_path / "s.png")
    assert code == 2 and f"no permission to write in {tmp_path}" in err, err
    assert len(err.strip().splitlines()) == 1 and os.listdir(tmp_path) == []


def test_quiet_hides_only_the_progress(tmp_path):
    out = tmp_path / "run"
    code, stdout, err = cli("train", "gan", "--epochs", 2, "--out", out, *TINY)
    # the issue: "--quiet hides the progress bar only": the line after each epoch stays
    assert code == 0 and "batch/s" not in err and "%|" not in err
    lines = stdout.strip().splitlines()
    assert lines[0] == f"training gan on ring for 2 epochs -> {out}"
    assert lines[1].startswith("epoch 1/2  ") and lines[2].startswith("epoch 2/2  ")
    assert "modes covered" in lines[-3]
    assert lines[-2] == f"run folder: {out}"
    assert lines[-1] == f"figures: {out / 'loss.png'}, {out / 'samples.png'}"


def test_threads_beyond_the_cpus_are_clamped_with_a_note():
    code, _, err = cli("demo", "--steps", 1, "--threads", 100_000)
    assert code == 0 and "--threads 100000 is more than the" in err and "CPUs available" in err


def test_train_help_shows_help_and_defaults_for_every_flag():
    from minigen.cli import build_parser
    from minigen.runs import SETTINGS

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    for action in train._actions:
        assert action.help, action.dest
    text = train.format_help()
    for setting in SETTINGS:
        assert setting.flag in text
    flat = " ".join(text.split())
    assert "vae 50 (mnist/fashion-mnist 10, --arch conv 8), gan 150 (grid 250" in flat
    assert "--gamma GAMMA VAE-GAN: weight of the reconstruction term against the GAN's " \
           "(default: 30 (--arch conv 1))" in flat
    assert "GAN: the discriminator judges" in " ".join(text.split())


def _python(*args, env=None):
    env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          check=False)


def test_an_invalid_minigen_backend_is_a_message_and_backend_overrides_it():
    bad = {"MINIGEN_BACKEND": "tpu"}
    result = _python("-m", "minigen", "demo", "--steps", "1", env=bad)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "minigen: error: MINIGEN_BACKEND='tpu' cannot be used: unknown backend 'tpu'; choose one "
        "of numpy, cupy, strict, strict-float32. Set MINIGEN_BACKEND to numpy or cupy, or choose "
        "with --backend"]
    result = _python("-m", "minigen", "demo", "--steps", "1", "--backend", "numpy", env=bad)
    assert result.returncode == 0 and result.stderr == ""
    result = _python("-c", "import minigen; print(minigen.get_backend())", env=bad)
    assert result.returncode == 0 and result.stdout == "numpy\n"
    assert "MINIGEN_BACKEND='tpu' cannot be used" in result.stderr     # a warning for library use


def test_an_out_without_write_permission_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)     # as for another user's folder
    code, _, err = cli("train", "vae", "--out", tmp_path / "run")
    assert code == 2 and f"no permission to write in {tmp_path}" in err
    assert os.listdir(tmp_path) == []


def test_train_removes_the_temporaries_a_killed_run_left(tmp_path):
    out = tmp_path / "run"
    assert cli("train", "vae", "--epochs", 1, "--out", out, *TINY)[0] == 0
    stale = out / ".tmp-checkpoint.npz-0badf00d"
    stale.write_bytes(b"half a checkpoint")
    (out / "notes.txt").write_text("mine")
    assert cli("train", "vae", "--epochs", 2, "--out", out, "--resume", *TINY)[0] == 0
    assert not stale.exists() and (out / "notes.txt").read_text() == "mine"


def test_a_setting_with_choices_is_checked_from_python_too(tmp_path, monkeypatch):
    """A Setting with choices (as --arch will be) is enforced by train_run, not only argparse."""
    from minigen import runs

    extra = runs.Setting("activation", "the hidden layers' nonlinearity", str,
                         section="model", choices=("relu", "tanh"))
    monkeypatch.setattr(runs, "SETTINGS", runs.SETTINGS + (extra,))
    monkeypatch.setattr(runs, "_BY_NAME", {s.name: s for s in runs.SETTINGS})
    monkeypatch.setattr(runs, "_COMMON", dict(runs._COMMON, activation="relu"))
    with pytest.raises(ValueError, match="--activation must be one of relu, tanh, not 'gelu'"):
        runs.train_run("vae", out=tmp_path / "a", activation="gelu", log=lambda *a: None)
    runs.train_run("vae", out=tmp_path / "b", activation="tanh", epochs=1, limit=256, quiet=True,
                   log=lambda *a: None)
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["model"]["activation"] == "tanh"


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    """``kill PID`` (a batch system's time limit): exit 143 and the message saying what is kept."""
    import signal
    import time

    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "minigen", "train", "vae", "--epochs", "500",
                                "--out", str(out), "--quiet"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    while not (out / "history.json").exists() and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate()
    assert process.returncode == 143, err
    assert "interrupted; the checkpoint after epoch" in err and "--resume" in err
    assert "Traceback" not in err


def test_an_interrupted_resume_with_new_settings_says_how_to_repeat_it(tmp_path, monkeypatch):
    from minigen.models import vae

    out = tmp_path / "run"
    assert cli("train", "vae", "--epochs", 1, "--out", out, *TINY)[0] == 0
    before = (out / "config.json").read_bytes()

    def interrupt(self, x, optimizers):
        raise KeyboardInterrupt

    monkeypatch.setattr(vae.VAE, "train_step", interrupt)
    code, _, err = cli("train", "vae", "--epochs", 4, "--lr", "1e-4", "--out", out, "--resume",
                       *TINY)
    assert code == 130 and "the checkpoint after epoch 1 is kept" in err
    assert f"--out {out} --resume --epochs 4 --lr 0.0001" in err
    assert (out / "config.json").read_bytes() == before     # no epoch ran with the new settings

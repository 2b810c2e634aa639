"""The command line end to end, with tiny settings, in temporary folders."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minigen.cli import main
from runfolders import cli, snapshot


def _run(*args):
    return main([str(a) for a in args])


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
    straight, resumed = tmp_path / "a", tmp_path / "b"
    assert _run("train", "vae", "--epochs", 2, "--out", straight, "--quiet", "--seed", 3) == 0
    assert _run("train", "vae", "--epochs", 1, "--out", resumed, "--quiet", "--seed", 3) == 0
    assert _run("train", "vae", "--epochs", 2, "--out", resumed, "--quiet", "--resume") == 0
    a = np.load(straight / "model.npz")
    b = np.load(resumed / "model.npz")
    assert a.files == b.files
    for name in a.files:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


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

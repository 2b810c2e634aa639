"""Image runs from the command line: --data fashion-mnist, --limit (needs MINIGEN_DATA with a
fashion-mnist/ subfolder; the offline error needs nothing)."""

import json
import os
import subprocess
import sys

import pytest

from minigen.cli import main


def _fashion_available():
    root = os.environ.get("MINIGEN_DATA", "")
    return os.path.isdir(os.path.join(root, "fashion-mnist"))


needs_fashion = pytest.mark.skipif(not _fashion_available(),
                                   reason="MINIGEN_DATA has no fashion-mnist/ subfolder")


@pytest.fixture(autouse=True)
def small_reports(monkeypatch):
    """Small sample sets for the image metrics: these tests check the plumbing, not the numbers."""
    from minigen import image_report
    monkeypatch.setattr(image_report, "N_QUALITY", 300)
    monkeypatch.setattr(image_report, "N_REFERENCE", 400)
    monkeypatch.setattr(image_report, "N_IWAE_IMAGES", 20)
    monkeypatch.setattr(image_report, "IWAE_K", 5)


@needs_fashion
def test_gan_on_the_first_64_fashion_images(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "gan", "--data", "fashion-mnist", "--limit", "64", "--epochs", "1",
                 "--batch-size", "32", "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"] == "fashion-mnist" and config["train"]["limit"] == 64
    assert config["model"]["data_dim"] == 784
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 1 and {"d_loss", "g_loss"} <= set(history[0])
    assert (out / "samples.png").exists()


def test_missing_fashion_mnist_offline_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MINIGEN_DATA"}
    # the download cache: ~/.cache/minigen/fashion-mnist
    env["HOME"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", (
        "import urllib.request as u\n"
        "def offline(*a, **k): raise OSError('network unreachable')\n"
        "u.urlopen = offline\n"
        "from minigen.cli import main\n"
        "raise SystemExit(main(['train', 'gan', '--data', 'fashion-mnist', '--quiet']))")],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "Fashion-MNIST files missing" in result.stderr and "MINIGEN_DATA" in result.stderr
    assert "fashion-mnist/" in result.stderr and "no network" in result.stderr
    assert "Traceback" not in result.stderr


def test_limit_must_be_positive(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "vae", "--limit", "0"])
    assert info.value.code == 2 and "must be a positive integer" in capsys.readouterr().err


@needs_fashion
@pytest.mark.parametrize("model", ["vae", "gan", "vaegan"])
def test_conv_runs_write_image_metrics_and_figures(tmp_path, model):
    out = tmp_path / model
    assert main(["train", model, "--data", "fashion-mnist", "--arch", "conv", "--limit", "64",
                 "--epochs", "1", "--batch-size", "32", "--hidden", "4", "8", "--latent-dim", "4",
                 "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["arch"] == "conv" and config["model"]["hidden"] == [4, 8]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["quality_samples"] == 300 and metrics["frechet_distance"] > 0
    assert metrics["reference_images"] == 400          # the first 400 test images
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    assert 1 <= metrics["class_coverage"] <= 10
    figures = {"samples.png", "interpolations.png", "loss.png"}
    if model != "gan":
        figures.add("reconstructions.png")
        assert metrics["iwae_k"] == 5 and metrics["iwae_examples"] == 20
        assert metrics["bits_per_dim"] == pytest.approx(metrics["test_nll_iwae"] / (784 * 0.693147),
                                                        rel=1e-5)
    assert figures <= set(os.listdir(out))


def test_conv_arch_needs_images(capsys):
    assert main(["train", "vae", "--arch", "conv", "--quiet"]) == 2
    assert "--arch conv is for the image sets" in capsys.readouterr().err


@needs_fashion
def test_the_benchmark_table_and_its_large_iwae_column(tmp_path):
    # benchmarks/image_quality.py on a finished tiny run: its record, the IWAE with a large K on a
    # few test images (what the README reports with K = 5,000), and the Markdown table
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks"))
    import image_quality
    out = tmp_path / "vae"
    assert main(["train", "vae", "--data", "fashion-mnist", "--arch", "conv", "--limit", "64",
                 "--epochs", "1", "--hidden", "4", "8", "--latent-dim", "4", "--out", str(out),
                 "--quiet"]) == 0
    records = image_quality.collect([str(out)])
    assert [(r["data"], r["kind"], r["seed"]) for r in records] == [("fashion-mnist", "vae", 0)]
    lines = []
    image_quality.large_iwae(records, k=20, n=3, log=lines.append)
    metrics = records[0]["metrics"]
    assert metrics["iwae_large_k"] == 20 and metrics["iwae_large_examples"] == 3
    assert 0 < metrics["test_nll_iwae_large"] < 784 * 10 and "K=20, first 3 test images" in lines[0]
    text = image_quality.table(records)
    assert "IWAE NLL K=20, 3 images, 1 seed" in text and "| fashion-mnist | conv VAE | 1 |" in text

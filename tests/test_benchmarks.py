"""The benchmarks compare like with like: the hand-written NumPy VAE computes the same loss,
gradients and Adam step as minigen's VAE; the GPU check says plainly when there is no GPU."""

import os
import subprocess
import sys

import numpy as np
import pytest

import minigen as mg
from minigen.distributions import Reparameterize
from minigen.losses import bce_with_logits, gaussian_kl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from references import NumpyVAE  # noqa: E402

SIZES = (12, 7, 3)
# minigen's VAE parameters, in the reference's names
NAMES = {"encoder.body.0.weight": "W1", "encoder.body.0.bias": "b1", "encoder.mu.weight": "Wmu",
         "encoder.mu.bias": "bmu", "encoder.log_var.weight": "Wlv", "encoder.log_var.bias": "blv",
         "decoder.0.weight": "W3", "decoder.0.bias": "b3", "decoder.1.weight": "W4",
         "decoder.1.bias": "b4"}


def twins(seed=0):
    """The reference VAE (float64) and a minigen VAE holding the same weights, with a batch and
    noise."""
    reference = NumpyVAE(sizes=SIZES, dtype="float64", seed=seed)
    model = mg.models.VAE(SIZES[0], hidden=(SIZES[1],), latent_dim=SIZES[2])
    model.load_state_dict({name: reference.params[short] for name, short in NAMES.items()})
    rng = np.random.default_rng(seed)
    x = (rng.random((5, SIZES[0])) < 0.4).astype(np.float64)
    eps = rng.standard_normal((5, SIZES[2]))
    return reference, model, x, eps


def minigen_loss(model, x, eps):
    x = mg.Tensor(x)
    mu, log_var = model.encode(x)
    z = Reparameterize()(mu, log_var, mg.Tensor(eps))
    n = x.shape[0]
    return (bce_with_logits(model.decode(z), x, reduction="sum") * (1.0 / n)
            + gaussian_kl(mu, log_var, reduction="sum") * (1.0 / n))


@pytest.fixture
def float64_numpy():
    with mg.using_backend("numpy"), mg.using_default_dtype("float64"):
        yield


def test_the_hand_written_vae_has_minigens_loss_and_gradients(float64_numpy):
    reference, model, x, eps = twins()
    loss, grads = reference.loss_and_gradients(x, eps)
    ours = minigen_loss(model, x, eps)
    ours.backward()
    np.testing.assert_allclose(ours.item(), loss, rtol=1e-12)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), grads[NAMES[name]], rtol=1e-10, atol=1e-12,
                                   err_msg=name)


def test_the_hand_written_adam_steps_like_minigens(float64_numpy):
    reference, model, x, eps = twins(seed=1)
    optimizer = mg.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        reference.step(x, eps)
        optimizer.zero_grad()
        minigen_loss(model, x, eps).backward()
        optimizer.step()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.numpy(), reference.params[NAMES[name]], rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_the_gpu_check_stops_with_the_reason_when_there_is_no_gpu_and_keeps_the_results(tmp_path):
    try:
        mg.backend.instance("cupy")
        pytest.skip("a GPU is usable here: gpu_check.sh would run in full")
    except mg.backend.BackendError:
        pass
    recorded = tmp_path / "gpu"                    # results a GPU machine wrote earlier
    recorded.mkdir()
    (recorded / "gpu.txt").write_text("GPU: NVIDIA H100\n")
    fresh = tmp_path / "fresh"
    for results in (recorded, fresh):
        result = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "gpu_check.sh"),
                                 str(results)],
                                cwd=ROOT, capture_output=True, text=True, timeout=120,
                                env=dict(os.environ, PYTHON=sys.executable))
        assert result.returncode == 3
        assert "no usable GPU here" in result.stdout
    assert (recorded / "gpu.txt").read_text() == "GPU: NVIDIA H100\n"
    assert not fresh.exists()


def test_run_py_tables_give_ratios_to_hand_written_and_pytorch():
    import run
    rows = [{"implementation": "minigen VAE (numpy)", "seconds": 1.2},
            {"implementation": "hand-written (NumPy)", "seconds": 1.0},
            {"implementation": "PyTorch 2.13.0 (cpu)", "seconds": 2.0}]
    text = run.table(rows)
    assert "| minigen VAE (numpy) | 1.200 | 1.20 | 0.60 |" in text
    assert rows[0]["vs hand-written"] == pytest.approx(1.2)
    assert rows[0]["vs PyTorch"] == pytest.approx(0.6)


def test_run_py_reruns_itself_without_its_output_and_blas_flags():
    import run
    argv = ["--suite", "vae", "--out", "x.json", "--blas=both", "--clock", "cpu", "--out=y.json"]
    assert run._without_out(argv) == ["--suite", "vae", "--clock", "cpu"]

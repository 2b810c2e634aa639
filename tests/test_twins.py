"""The PyTorch twins of ``benchmarks/`` do the same work as minigen's models: the same weights, the
same batch and the same noise give the same losses and the same parameters after every step.

``benchmarks/run.py`` times minigen's VAE, user-written VAE, GAN, VAE-GAN and deep MLP against
PyTorch versions written in ``benchmarks/references.py`` (``torch_vae``, ``TorchGAN``,
``TorchVAEGAN``, ``torch_deep_mlp``).  A ratio of times means something only if both sides compute
the same thing; these tests hold them to it.  minigen's initial weights are copied into the twin
(a ``Dense`` weight is (in, out), a ``Linear`` weight (out, in): transposed), the noise minigen
draws at each step is recorded and handed to the twin in place of ``torch.randn``, and a few steps
later every loss and every parameter (the moving averages included) must agree to rounding.

PyTorch is not a test dependency: without it these tests are skipped.
"""

import os
import sys

import numpy as np
import pytest

import minigen as mg
from minigen import backend as B

torch = pytest.importorskip("torch", reason="PyTorch is not installed: the benchmarks' PyTorch "
                            "twins cannot be compared with minigen (pip install torch to run)")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from references import TorchGAN, TorchVAEGAN, torch_deep_mlp, torch_vae  # noqa: E402
from run import DeepMLP, UserVAE  # noqa: E402

STEPS = 3
# Both sides run in float64.  In float32 the losses agree to rounding, but Adam divides each
# gradient by its own running scale, so a gradient that is zero up to rounding (a unit that is
# almost dead) moves its weight by +-lr on one side and by a different amount on the other: after
# three steps of the 784-dim VAE, 1 weight in 313,600 differed by 2e-5.  float64 rounding is far
# below anything a different update would change.
RTOL, ATOL = 1e-9, 1e-12


@pytest.fixture
def noise(monkeypatch):
    """Every standard normal array minigen draws, in order, and the same arrays handed to PyTorch:
    ``torch.randn`` and ``torch.randn_like`` return the next recorded draw (its shape checked)."""
    drawn = []
    numpy_backend = B.instance("numpy")
    draw = numpy_backend.standard_normal

    def recording(shape, dtype):
        out = draw(shape, dtype)
        drawn.append(out.copy())
        return out

    def replay(*shape):
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        assert drawn, f"the twin drew noise of shape {shape} that minigen did not draw"
        out = drawn.pop(0)
        assert out.shape == tuple(shape), f"the twin drew {tuple(shape)}, minigen {out.shape}"
        return torch.from_numpy(out)

    monkeypatch.setattr(numpy_backend, "standard_normal", recording)
    monkeypatch.setattr(torch, "randn", lambda *shape, **kw: replay(*shape))
    monkeypatch.setattr(torch, "randn_like", lambda t, **kw: replay(*t.shape))
    yield drawn
    assert not drawn, f"minigen drew {len(drawn)} noise arrays that the twin did not use"


@pytest.fixture(autouse=True)
def float64_on_numpy():
    torch.manual_seed(0)
    torch_default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with mg.using_default_dtype("float64"), mg.using_backend("numpy"):
            yield
    finally:
        torch.set_default_dtype(torch_default)


def copy_weights(minigen_params, torch_params):
    """Copy minigen's weights into the twin's parameters, in order (Dense weights transposed)."""
    minigen_params, torch_params = list(minigen_params), list(torch_params)
    assert len(minigen_params) == len(torch_params)
    with torch.no_grad():
        for p, q in zip(minigen_params, torch_params):
            value = p.numpy().T if p.ndim == 2 else p.numpy()
            assert tuple(q.shape) == value.shape
            q.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def assert_same(minigen_params, torch_params, what):
    for i, (p, q) in enumerate(zip(list(minigen_params), list(torch_params))):
        value = p.numpy().T if p.ndim == 2 else p.numpy()
        np.testing.assert_allclose(q.detach().numpy(), value, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{what}: parameter {i} {value.shape}")


def assert_losses(ours, theirs, step):
    np.testing.assert_allclose(theirs, ours, rtol=RTOL, atol=ATOL, err_msg=f"losses at step {step}")


def batches(data_dim, n=64, binary=False, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(STEPS):
        if binary:
            yield (rng.random((n, data_dim)) < 0.3).astype(np.float64)
        else:
            yield rng.standard_normal((n, data_dim)).astype(np.float64)


@pytest.mark.parametrize("data_dim, hidden, latent", [(2, (64, 32), 2), (784, (400,), 20)])
def test_gan_twin_makes_the_same_updates(noise, data_dim, hidden, latent):
    mg.manual_seed(0)
    model = mg.models.GAN(data_dim, latent_dim=latent, hidden=hidden)
    optimizers = model.make_optimizers(lr=1e-3)
    twin = TorchGAN(data_dim, latent, hidden)
    copy_weights(model.generator.parameters(), twin.generator.parameters())
    copy_weights(model.discriminator.parameters(),
                 list(twin.body.parameters()) + list(twin.head.parameters()))
    copy_weights(model.generator.parameters(), twin.generator_ema.parameters())
    for step, x in enumerate(batches(data_dim)):
        ours = model.train_step(mg.Tensor(x), optimizers)
        theirs = twin.step(torch.from_numpy(x))
        assert_losses([ours["d_loss"], ours["g_loss"]], theirs, step)
    assert_same(model.generator.parameters(), twin.generator.parameters(), "generator")
    assert_same(model.discriminator.parameters(),
                list(twin.body.parameters()) + list(twin.head.parameters()), "discriminator")
    assert_same([b for _, b in model.generator_ema.named_buffers()],
                twin.generator_ema.parameters(), "generator's moving average")


VAEGAN_CONFIGS = {
    "ring": dict(data_dim=2, config=dict(hidden=(64, 32), latent_dim=2)),
    "images": dict(data_dim=784, config=dict(hidden=(400,), latent_dim=20, llike="features",
                                             likelihood="bernoulli", beta=1.0)),
}


@pytest.mark.parametrize("setting", sorted(VAEGAN_CONFIGS))
def test_vaegan_twin_makes_the_same_updates(noise, setting):
    data_dim, config = VAEGAN_CONFIGS[setting]["data_dim"], VAEGAN_CONFIGS[setting]["config"]
    mg.manual_seed(0)
    model = mg.models.VAEGAN(data_dim, **config)
    optimizers = model.make_optimizers()                    # as the benchmark: the defaults
    twin = TorchVAEGAN(data_dim, **config)
    networks = {"encoder": twin.groups["encoder"], "decoder": twin.groups["decoder"],
                "discriminator": twin.groups["discriminator"]}
    for name, params in networks.items():
        copy_weights(getattr(model, name).parameters(), params)
    copy_weights(model.decoder.parameters(), twin.decoder_ema.parameters())
    binary = config.get("likelihood") == "bernoulli"
    for step, x in enumerate(batches(data_dim, binary=binary)):
        ours = model.train_step(mg.Tensor(x), optimizers)
        theirs = twin.step(torch.from_numpy(x))
        assert_losses([ours[k] for k in ("prior", "llike", "d_loss", "g_loss")], theirs, step)
    for name, params in networks.items():
        assert_same(getattr(model, name).parameters(), params, name)
    assert_same([b for _, b in model.decoder_ema.named_buffers()],
                twin.decoder_ema.parameters(), "decoder's moving average")


def adam_steps(model, twin, arrays, loss_of_twin):
    """``STEPS`` steps of minigen's ``train_step`` and of the twin under ``torch.optim.Adam``
    (lr 1e-3, as ``benchmarks/run.py``'s TorchRun), on the same batches; returns both losses."""
    optimizers = model.make_optimizers(lr=1e-3)
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    ours, theirs = [], []
    for batch in arrays:
        tensors = [mg.Tensor(a) for a in batch]
        out = model.train_step(tensors[0] if len(tensors) == 1 else tensors, optimizers)
        ours.append(out["loss"] if isinstance(out, dict) else out)
        loss = loss_of_twin(*(torch.from_numpy(a) for a in batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        theirs.append(loss.item())
    return ours, theirs


@pytest.mark.parametrize("build", [lambda: mg.models.VAE(784, hidden=(400,), latent_dim=20),
                                   UserVAE], ids=["VAE", "user-written VAE"])
def test_torch_vae_makes_the_same_updates(noise, build):
    mg.manual_seed(0)
    model = build()
    twin = torch_vae()
    copy_weights(model.parameters(), twin.parameters())
    ours, theirs = adam_steps(model, twin, [(x,) for x in batches(784, binary=True)], twin.loss)
    np.testing.assert_allclose(theirs, ours, rtol=RTOL, atol=ATOL)
    assert_same(model.parameters(), twin.parameters(), "VAE")


def test_torch_deep_mlp_makes_the_same_updates():
    mg.manual_seed(0)
    model = DeepMLP()
    twin = torch_deep_mlp()
    copy_weights(model.parameters(), twin.parameters())
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((32, 64)).astype(np.float64),
             rng.standard_normal((32, 64)).astype(np.float64)) for _ in range(STEPS)]
    ours, theirs = adam_steps(model, twin, data, twin.loss)
    np.testing.assert_allclose(theirs, ours, rtol=RTOL, atol=ATOL)
    assert_same(model.parameters(), twin.parameters(), "deep MLP")

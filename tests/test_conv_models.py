"""The convolutional networks of arch="conv" (DCGAN style) and the VAE, GAN and VAE-GAN built on
them: shapes, DCGAN's initialisation, argument checks, a training step, saving and loading."""

import numpy as np
import pytest

import minigen as mg
from minigen.models import build_model
from minigen.models.conv_nets import (ConvDecoder, ConvDiscriminator, ConvEncoder, check_conv,
                                      dcgan_init)


def test_shapes_through_the_networks():
    mg.manual_seed(0)
    x = mg.rand(5, 784)
    mu, log_var = ConvEncoder(8, (4, 6))(x)
    assert mu.shape == (5, 8) and log_var.shape == (5, 8)
    assert ConvDecoder(8, (4, 6))(mu).shape == (5, 784)
    d = ConvDiscriminator((4, 6))
    assert d.features(x).shape == (5, 6 * 7 * 7) and d(x).shape == (5, 1)


def test_dcgan_initialisation():
    mg.manual_seed(1)
    net = ConvDecoder(16, (32, 64))
    for name, p in net.named_parameters():
        values = p.numpy()
        if name.endswith("bias"):
            assert np.all(values == 0), name
        elif values.ndim == 1:                                   # batch-norm scales
            assert abs(values.mean() - 1) < 0.01 and 0.01 < values.std() < 0.03, name
        else:
            assert abs(values.mean()) < 0.002 and abs(values.std() - 0.02) < 0.002, name
    dcgan_init(net, std=0.5)
    assert abs(net[0].weight.numpy().std() - 0.5) < 0.02


def test_conv_arch_refuses_what_it_cannot_build():
    with pytest.raises(ValueError, match="arch='conv' is for 28 x 28 grey images"):
        check_conv("VAE", 2, (32, 64))
    with pytest.raises(ValueError, match=r"two channel counts .* not hidden=\(400,\)"):
        check_conv("VAE", 784, (400,))
    with pytest.raises(ValueError, match="arch must be one of mlp, conv"):
        build_model("vae", data_dim=784, arch="resnet")


@pytest.mark.parametrize("kind", ["vae", "gan", "vaegan"])
def test_conv_models_train_save_and_load(tmp_path, kind):
    mg.manual_seed(2)
    model = build_model(kind, data_dim=784, hidden=(4, 8), latent_dim=6, arch="conv")
    config = model.config()
    assert config["arch"] == "conv" and config["hidden"] == [4, 8]
    optimizers = model.make_optimizers()
    x = mg.rand(16, 784)
    first = model.train_step(x, optimizers)
    for _ in range(3):
        last = model.train_step(x, optimizers)
    assert all(np.isfinite(v) for v in last.values())
    if kind == "vae":
        assert last["loss"] < first["loss"]
    model.eval()
    samples = model.sample(10)
    assert samples.shape == (10, 784)
    s = samples.numpy()
    assert s.min() >= 0 and s.max() <= 1
    model.save(tmp_path / "m.npz")
    again = build_model(kind, **config)
    again.load(tmp_path / "m.npz")
    again.eval()
    mg.manual_seed(3)
    a = model.sample(4).numpy()
    mg.manual_seed(3)
    np.testing.assert_allclose(again.sample(4).numpy(), a, rtol=1e-6)


def test_conv_models_have_no_weight_average():
    with pytest.raises(ValueError, match="ema"):
        build_model("gan", data_dim=784, hidden=(4, 8), arch="conv", ema=0.99)
    assert build_model("gan", data_dim=784, hidden=(4, 8), arch="conv").config()["ema"] == 0.0

"""minigen.models: shapes, config round trips, float32 training, losses against hand formulas, and
the VAE-GAN's gradient routing (Larsen et al. 2016): each network learns only from its own
objective."""

import json

import numpy as np
import pytest
import scipy.special

import minigen as mg
from minigen import optim
from minigen.models import GAN, VAE, VAEGAN, build_model

SMALL = {
    "vae": dict(data_dim=3, hidden=(5, 4), latent_dim=2),
    "gan": dict(data_dim=3, hidden=(5, 4), latent_dim=2),
    "vaegan": dict(data_dim=3, hidden=(5, 4), latent_dim=2),
}


def numpy_of(t):
    return t.numpy().astype(np.float64)


def dtype_of(t):
    return mg.backend.dtype_name(t.dtype)


def relu(a):
    return np.maximum(a, 0.0)


def softplus(a):
    return np.logaddexp(0.0, a)


def mlp_numpy(state, prefix, x, count):
    """Dense layers "prefix.0" ... "prefix.{count-1}" of a state_dict, ReLU between them."""
    for i in range(count):
        x = x @ state[f"{prefix}.{i}.weight"] + state[f"{prefix}.{i}.bias"]
        if i < count - 1:
            x = relu(x)
    return x


# --------------------------------------------------------------------------------------------------
# Shapes and checkpoints
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["vae", "gan", "vaegan"])
def test_shapes_and_config_round_trip(backend, kind):
    model = build_model(kind, **SMALL[kind])
    assert model.kind == kind
    x = mg.randn(6, 3)
    assert model.sample(7).shape == (7, 3)
    assert not model.sample(2).requires_grad
    if kind != "gan":
        mu, log_var = model.encode(x)
        assert mu.shape == log_var.shape == (6, 2)
        assert model.decode(mu).shape == model.reconstruct(x).shape == (6, 3)
        assert model.elbo(x).shape == (6,) and not model.elbo(x).requires_grad

    config = json.loads(json.dumps(model.config()))       # JSON-able, and enough to rebuild
    twin = build_model(kind, **config)
    assert twin.config() == model.config()
    twin.load_state_dict(model.state_dict())
    for (name, p), (twin_name, q) in zip(model.named_parameters(), twin.named_parameters()):
        assert name == twin_name
        np.testing.assert_array_equal(p.numpy(), q.numpy())
    if kind == "gan":
        z = mg.randn(4, 2)
        np.testing.assert_array_equal(twin(z).numpy(), model(z).numpy())
    else:
        np.testing.assert_array_equal(twin.reconstruct(x).numpy(), model.reconstruct(x).numpy())

    other = build_model(kind, **dict(config, hidden=[6, 4]))
    with pytest.raises(ValueError, match="mis-shaped"):
        other.load_state_dict(model.state_dict())


def test_defaults_follow_the_founding_document():
    vae = VAE(2)
    assert vae.config()["hidden"] == [64, 32] and vae.config()["latent_dim"] == 2
    assert [layer.out_features for layer in vae.encoder.body] == [64, 32]
    assert [layer.out_features for layer in vae.decoder] == [32, 64, 2]
    assert vae.encoder.body[0].activation_name == "relu"
    gan = GAN(2)
    assert [layer.out_features for layer in gan.generator] == [32, 64, 2]
    assert [layer.out_features for layer in gan.discriminator.body] == [64, 32]
    mnist = VAE(784, hidden=(400,), latent_dim=20)
    assert sum(p.size for p in mnist.parameters()) == 652824     # the PyTorch example's count


def test_bad_names_and_sizes():
    with pytest.raises(ValueError, match="unknown model 'vaegun'"):
        build_model("vaegun", data_dim=2)
    with pytest.raises(ValueError, match="likelihood"):
        VAE(2, likelihood="poisson")
    with pytest.raises(ValueError, match="llike"):
        VAEGAN(2, llike="voxels")
    with pytest.raises(ValueError, match="positive"):
        GAN(2, latent_dim=0)


# --------------------------------------------------------------------------------------------------
# Training in float32 (strict-float32 refuses any float64 array)
# --------------------------------------------------------------------------------------------------

def _blobs(n=64):
    """Two tight 2-D blobs far from the origin: (2, -1) and (3, 0)."""
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, -1.0], [3.0, 0.0]])[rng.integers(0, 2, n)]
    return mg.Tensor(centres + 0.05 * rng.standard_normal((n, 2)), dtype="float32")


def _check_float32(model, out):
    assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())
    assert all(dtype_of(p) == "float32" for p in model.parameters())


def test_vae_trains_in_float32(backend32):
    x = mg.Tensor(np.random.default_rng(0).random((32, 6)) > 0.5, dtype="float32")   # binary data
    model = VAE(6, hidden=(16,), latent_dim=2)
    opt = model.make_optimizers(lr=1e-2)
    first = model.train_step(x, opt)
    for _ in range(60):
        last = model.train_step(x, opt)
    _check_float32(model, last)
    assert set(last) == {"loss", "reconstruction", "kl"}
    assert last["loss"] < first["loss"] - 0.5
    assert dtype_of(model.sample(3)) == dtype_of(model.elbo(x)) == "float32"


def _distance_of_mean(samples, x):
    return float(np.linalg.norm(samples.numpy().mean(axis=0) - x.numpy().mean(axis=0)))


def test_gan_trains_in_float32(backend32):
    rng = np.random.default_rng(0)
    x = mg.Tensor(np.array([2.0, -1.0]) + 0.05 * rng.standard_normal((64, 2)), dtype="float32")
    model = GAN(2, hidden=(16, 16), ema=0.9)
    opt = model.make_optimizers(lr=5e-3)
    before = _distance_of_mean(model.sample(256), x)
    for _ in range(100):
        out = model.train_step(x, opt)
    _check_float32(model, out)
    assert set(out) == {"d_loss", "g_loss"}
    assert all(dtype_of(b) == "float32" for _, b in model.named_buffers())
    # the samples moved onto the data, from about 2.2 away (to under 0.1 for seeds 0-7)
    assert _distance_of_mean(model.sample(256), x) < 0.2 * before


@pytest.mark.parametrize("llike", ["features", "pixels"])
def test_vaegan_trains_in_float32(backend32, llike):
    x = _blobs()
    model = VAEGAN(2, hidden=(16, 16), llike=llike, gamma=1.0)
    opt = model.make_optimizers(lr=1e-2)
    with mg.no_grad():
        before = _distance_of_mean(model.reconstruct(x), x)
    first = model.train_step(x, opt)
    for _ in range(60):
        last = model.train_step(x, opt)
    _check_float32(model, last)
    assert {"prior", "llike", "d_loss", "g_loss", "encoder_loss", "decoder_loss"} <= set(last)
    assert last["encoder_loss"] < first["encoder_loss"]
    with mg.no_grad():
        reconstructed = model.reconstruct(x)
    assert _distance_of_mean(reconstructed, x) < 0.5 * before     # from about 2.5 away


# --------------------------------------------------------------------------------------------------
# Losses against formulas written out in NumPy
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_vae_loss_matches_numpy(backend, likelihood):
    model = VAE(4, hidden=(5, 3), latent_dim=2, likelihood=likelihood, beta=0.7)
    rng = np.random.default_rng(1)
    x = rng.random((6, 4)) if likelihood == "bernoulli" else rng.standard_normal((6, 4))
    mg.manual_seed(7)
    out = model.losses(mg.Tensor(x))
    mg.manual_seed(7)
    eps = mg.randn(6, 2).numpy()                 # the noise reparameterize drew

    s = model.state_dict()
    h = relu(relu(x @ s["encoder.body.0.weight"] + s["encoder.body.0.bias"])
             @ s["encoder.body.1.weight"] + s["encoder.body.1.bias"])
    mu = h @ s["encoder.mu.weight"] + s["encoder.mu.bias"]
    log_var = h @ s["encoder.log_var.weight"] + s["encoder.log_var.bias"]
    z = mu + np.exp(0.5 * log_var) * eps         # the standard deviation is exp(0.5 * log_var)
    out_layer = mlp_numpy(s, "decoder", z, 3)
    if likelihood == "bernoulli":
        log_px = (x * np.log(scipy.special.expit(out_layer))
                  + (1 - x) * np.log(scipy.special.expit(-out_layer))).sum(axis=1)
    else:
        log_px = (-0.5 * (x - out_layer) ** 2 - 0.5 * np.log(2 * np.pi)).sum(axis=1)
    kl = 0.5 * (mu ** 2 + np.exp(log_var) - 1 - log_var).sum(axis=1)

    np.testing.assert_allclose(out["reconstruction"].item(), -log_px.mean(), rtol=1e-10)
    np.testing.assert_allclose(out["kl"].item(), kl.mean(), rtol=1e-10)
    np.testing.assert_allclose(out["loss"].item(), -log_px.mean() + 0.7 * kl.mean(), rtol=1e-10)
    mg.manual_seed(7)
    # beta = 1
    np.testing.assert_allclose(model.elbo(mg.Tensor(x)).numpy(), log_px - kl, rtol=1e-10)
    expected_mean = scipy.special.expit(mlp_numpy(s, "decoder", mu, 3)) \
        if likelihood == "bernoulli" else mlp_numpy(s, "decoder", mu, 3)
    np.testing.assert_allclose(model.reconstruct(mg.Tensor(x)).numpy(), expected_mean, rtol=1e-10)


@pytest.mark.parametrize("pack", [1, 3])
def test_gan_losses_match_formulas(backend, pack):
    model = GAN(2, hidden=(4, 3), pack=pack)
    rng = np.random.default_rng(2)
    real, fake = rng.standard_normal((5, 2)), rng.standard_normal((7, 2)) + 1.0
    s = model.state_dict()

    def logits(a):
        n = len(a) // pack * pack           # packs of consecutive points; the rest is left out
        a = a[:n].reshape(n // pack, pack * 2)
        h = relu(relu(a @ s["discriminator.body.0.weight"] + s["discriminator.body.0.bias"])
                 @ s["discriminator.body.1.weight"] + s["discriminator.body.1.bias"])
        return h @ s["discriminator.head.weight"] + s["discriminator.head.bias"]

    # -log sigmoid(l) = softplus(-l);  -log(1 - sigmoid(l)) = softplus(l)
    d_expected = softplus(-logits(real)).mean() + softplus(logits(fake)).mean()
    g_expected = softplus(-logits(fake)).mean()     # non-saturating: -log D(G(z)), not log(1 - D)
    d_loss = model.discriminator_loss(mg.Tensor(real), mg.Tensor(fake))
    g_loss = model.generator_loss(mg.Tensor(fake))
    np.testing.assert_allclose(d_loss.item(), d_expected, rtol=1e-12)
    np.testing.assert_allclose(g_loss.item(), g_expected, rtol=1e-12)


def test_gan_packs_consecutive_points(backend):
    """PacGAN: the discriminator sees ``pack`` points side by side, one logit per pack."""
    mg.manual_seed(0)
    model = GAN(3, hidden=(5, 4), pack=2)
    assert model.discriminator.body[0].weight.shape == (6, 5)         # 2 points of 3 coordinates
    # the generator is as before
    assert [layer.out_features for layer in model.generator] == [4, 5, 3]
    x = np.arange(21.0).reshape(7, 3)
    packed = model.packed(mg.Tensor(x)).numpy()
    np.testing.assert_array_equal(packed, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11],
                                           [12, 13, 14, 15, 16, 17]])   # row 6 is left out
    assert model.discriminator(model.packed(mg.Tensor(x))).shape == (3, 1)
    np.testing.assert_array_equal(GAN(3, hidden=(5, 4)).packed(mg.Tensor(x)).numpy(), x)  # pack = 1
    with pytest.raises(ValueError, match="pack of 2"):
        model.packed(mg.randn(1, 3))
    with pytest.raises(ValueError, match="pack must be a positive integer"):
        GAN(3, pack=0)

    config = json.loads(json.dumps(model.config()))
    assert config["pack"] == 2
    twin = build_model("gan", **config).load_state_dict(model.state_dict())
    assert twin.config() == model.config()
    mg.manual_seed(1)
    first = twin.discriminator_loss(mg.Tensor(x), model.sample(7)).item()
    mg.manual_seed(1)
    assert model.discriminator_loss(mg.Tensor(x), model.sample(7)).item() == first
    # a pack-1 discriminator differs
    with pytest.raises(ValueError, match="mis-shaped"):
        build_model("gan", **dict(config, pack=1)).load_state_dict(model.state_dict())

    # 4 packs of the 9 points
    out = model.train_step(mg.randn(9, 3), model.make_optimizers(lr=0.01))
    assert set(out) == {"d_loss", "g_loss"} and all(np.isfinite(v) for v in out.values())
    assert model.sample(5).shape == (5, 3)


@pytest.mark.parametrize("llike", ["features", "pixels"])
def test_vaegan_losses_match_formulas(backend, llike):
    model = VAEGAN(2, hidden=(4, 3), gamma=2.5, beta=0.5, llike=llike)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 2))
    mg.manual_seed(11)
    out = model.losses(mg.Tensor(x))
    mg.manual_seed(11)
    eps, z_p = mg.randn(5, 2).numpy(), mg.randn(5, 2).numpy()     # drawn in this order

    s = model.state_dict()
    h = relu(relu(x @ s["encoder.body.0.weight"] + s["encoder.body.0.bias"])
             @ s["encoder.body.1.weight"] + s["encoder.body.1.bias"])
    mu = h @ s["encoder.mu.weight"] + s["encoder.mu.bias"]
    log_var = h @ s["encoder.log_var.weight"] + s["encoder.log_var.bias"]
    x_rec = mlp_numpy(s, "decoder", mu + np.exp(0.5 * log_var) * eps, 3)
    x_p = mlp_numpy(s, "decoder", z_p, 3)

    def features(a):
        return relu(relu(a @ s["discriminator.body.0.weight"] + s["discriminator.body.0.bias"])
                    @ s["discriminator.body.1.weight"] + s["discriminator.body.1.bias"])

    def logit(a):
        return features(a) @ s["discriminator.head.weight"] + s["discriminator.head.bias"]

    prior = 0.5 * (mu ** 2 + np.exp(log_var) - 1 - log_var).sum(axis=1).mean()
    if llike == "features":
        llike = 0.5 * ((features(x) - features(x_rec)) ** 2).sum(axis=1).mean()
    else:                            # -log N(x; x~, I), the constant included
        llike = (0.5 * (x - x_rec) ** 2 + 0.5 * np.log(2 * np.pi)).sum(axis=1).mean()
    d_loss = (softplus(-logit(x)).mean() + softplus(logit(x_rec)).mean()
              + softplus(logit(x_p)).mean())
    g_loss = softplus(-logit(x_rec)).mean() + softplus(-logit(x_p)).mean()
    expected = {"prior": prior, "llike": llike, "d_loss": d_loss, "g_loss": g_loss,
                "encoder_loss": 0.5 * prior + llike, "decoder_loss": 2.5 * llike + g_loss}
    for name, value in expected.items():
        np.testing.assert_allclose(out[name].item(), value, rtol=1e-10, err_msg=name)


# --------------------------------------------------------------------------------------------------
# VAE-GAN gradient routing
# --------------------------------------------------------------------------------------------------

def _routed(model, x, seed=5):
    mg.manual_seed(seed)
    out, grads = model.gradients(x)
    return out, {name: [g.numpy() for g in gs] for name, gs in grads.items()}


def _direct(model, x, objective, network, seed=5):
    """mg.grad of a combination of the loss terms with respect to one network's parameters."""
    mg.manual_seed(seed)
    out = model.losses(x)
    return [g.numpy() for g in mg.grad(objective(out), getattr(model, network).parameters())]


def _assert_same(a, b):
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-13)


def _differ(a, b):
    return any(not np.allclose(u, v, rtol=1e-6, atol=1e-9) for u, v in zip(a, b))


def _vaegan(llike, gamma=1.0):
    mg.manual_seed(0)
    return VAEGAN(2, hidden=(6, 5), llike=llike, gamma=gamma, beta=0.5)


@pytest.mark.parametrize("llike", ["features", "pixels"])
def test_no_gan_gradient_reaches_the_encoder(backend, llike):
    model, x = _vaegan(llike), mg.randn(8, 2)
    _, grads = _routed(model, x)
    own = _direct(model, x, lambda o: 0.5 * o["prior"] + o["llike"], "encoder")
    with_gan = _direct(model, x, lambda o: 0.5 * o["prior"] + o["llike"] + o["g_loss"], "encoder")
    _assert_same(grads["encoder"], own)
    assert _differ(grads["encoder"], with_gan)      # the GAN term would have reached it

    # The discriminator's head only acts through the GAN terms: changing it leaves the encoder's
    # gradient alone and changes the decoder's.
    with mg.no_grad():
        model.discriminator.head.weight.data = model.discriminator.head.weight.data * 3.0 + 0.5
    _, moved = _routed(model, x)
    _assert_same(moved["encoder"], grads["encoder"])
    assert _differ(moved["decoder"], grads["decoder"])


@pytest.mark.parametrize("llike", ["features", "pixels"])
def test_no_llike_gradient_reaches_the_discriminator(backend, llike):
    model, x = _vaegan(llike), mg.randn(8, 2)
    _, grads = _routed(model, x)
    _assert_same(grads["discriminator"], _direct(model, x, lambda o: o["d_loss"], "discriminator"))
    if llike == "features":          # L_llike is measured on the discriminator's hidden layer
        with_llike = _direct(model, x, lambda o: o["d_loss"] + o["llike"], "discriminator")
        assert _differ(grads["discriminator"], with_llike)


@pytest.mark.parametrize("llike", ["features", "pixels"])
def test_gamma_scales_only_the_decoders_reconstruction_term(backend, llike):
    x = mg.randn(8, 2)
    model, doubled = _vaegan(llike, gamma=1.5), _vaegan(llike, gamma=3.0)
    doubled.load_state_dict(model.state_dict())
    _, g1 = _routed(model, x)
    _, g2 = _routed(doubled, x)
    _assert_same(g2["encoder"], g1["encoder"])
    _assert_same(g2["discriminator"], g1["discriminator"])
    llike_part = _direct(model, x, lambda o: o["llike"], "decoder")
    gan_part = _direct(model, x, lambda o: o["g_loss"], "decoder")
    for a, b, part, gan in zip(g1["decoder"], g2["decoder"], llike_part, gan_part):
        np.testing.assert_allclose(b - a, 1.5 * part, rtol=1e-8, atol=1e-12)   # the doubled part
        np.testing.assert_allclose(a, 1.5 * part + gan, rtol=1e-8, atol=1e-12)
    assert any(np.abs(p).max() > 1e-6 for p in llike_part)


def _sgd(modules, lr=0.1):
    return {name: optim.SGD(module.parameters(), lr=lr) for name, module in modules.items()}


def _fill_with_junk(model):
    for p in model.parameters():
        p.grad = mg.Tensor(np.full(p.shape, 1e3))


def test_vaegan_train_step_applies_the_routed_gradients(backend):
    model, x = _vaegan("features"), mg.randn(8, 2)
    before = [p.numpy().copy() for p in model.parameters()]
    _, grads = _routed(model, x, seed=9)
    opt = _sgd({"encoder": model.encoder, "decoder": model.decoder,
                "discriminator": model.discriminator})
    _fill_with_junk(model)                      # stale gradients must not leak into the step
    mg.manual_seed(9)
    model.train_step(x, opt)
    expected = grads["encoder"] + grads["decoder"] + grads["discriminator"]
    for p, old, g in zip(model.parameters(), before, expected):
        np.testing.assert_allclose(p.numpy(), old - 0.1 * g, rtol=1e-10, atol=1e-13)


def test_vae_train_step_starts_from_zero_gradients(backend):
    model, x = VAE(3, hidden=(4,), latent_dim=2), mg.rand(5, 3)
    before = [p.numpy().copy() for p in model.parameters()]
    mg.manual_seed(4)
    expected = [g.numpy() for g in mg.grad(model.losses(x)["loss"], model.parameters())]
    _fill_with_junk(model)
    mg.manual_seed(4)
    model.train_step(x, {"vae": optim.SGD(model.parameters(), lr=0.1)})
    for p, old, g in zip(model.parameters(), before, expected):
        np.testing.assert_allclose(p.numpy(), old - 0.1 * g, rtol=1e-10, atol=1e-13)


def test_gan_train_step_updates_discriminator_then_generator(backend):
    mg.manual_seed(0)
    model, x = GAN(2, hidden=(5, 4)), mg.randn(6, 2)
    twin = GAN(2, hidden=(5, 4)).load_state_dict(model.state_dict())

    # By hand on the twin: D descends L_D on detached fakes, then G descends L_G through the new D.
    mg.manual_seed(3)
    fake = twin.generate(6)
    d_grads = mg.grad(twin.discriminator_loss(x, fake.detach()), twin.discriminator.parameters())
    with mg.no_grad():
        for p, g in zip(twin.discriminator.parameters(), d_grads):
            p.data = p.data - 0.1 * g.data
    g_grads = mg.grad(twin.generator_loss(fake), twin.generator.parameters())
    with mg.no_grad():
        for p, g in zip(twin.generator.parameters(), g_grads):
            p.data = p.data - 0.1 * g.data

    _fill_with_junk(model)
    mg.manual_seed(3)
    model.train_step(x, _sgd({"discriminator": model.discriminator, "generator": model.generator}))
    for (name, p), q in zip(model.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-10, atol=1e-13, err_msg=name)
    # the discriminator's .grad is its own loss's gradient: the generator's step never touched it
    for p, g in zip(model.discriminator.parameters(), d_grads):
        np.testing.assert_allclose(p.grad.numpy(), g.numpy(), rtol=1e-12, atol=1e-14)


# --------------------------------------------------------------------------------------------------
# Sampling from the moving average of the generator's weights
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["gan", "vaegan"])
def test_samples_come_from_the_moving_average(backend, kind):
    mg.manual_seed(0)
    model = build_model(kind, data_dim=2, hidden=(5, 4), ema=0.75)
    live, average = ((model.generator, model.generator_ema) if kind == "gan"
                     else (model.decoder, model.decoder_ema))
    assert average.parameters() == []                      # buffers: no optimizer ever sees them
    saved = [name for name in model.state_dict() if "_ema." in name]
    assert len(saved) == 6 and all(name.startswith(("generator_ema.", "decoder_ema."))
                                   for name in saved)
    x = mg.randn(6, 2)
    old = [b.numpy().copy() for _, b in average.named_buffers()]
    model.train_step(x, model.make_optimizers(lr=0.05))
    for (_, b), p, o in zip(average.named_buffers(), live.parameters(), old):
        np.testing.assert_allclose(b.numpy(), 0.75 * o + 0.25 * p.numpy(), rtol=1e-12)
        assert dtype_of(b) == dtype_of(p)
    assert _differ([b.numpy() for _, b in average.named_buffers()],
                   [p.numpy() for p in live.parameters()])

    mg.manual_seed(1)
    samples = model.sample(5)
    mg.manual_seed(1)
    z = mg.randn(5, 2)
    np.testing.assert_allclose(samples.numpy(), average(z).numpy(), rtol=1e-12)
    assert _differ([samples.numpy()], [live(z).numpy()])

    plain = build_model(kind, **dict(model.config(), ema=0))
    assert not any("_ema." in name for name in plain.state_dict())
    mg.manual_seed(1)
    np.testing.assert_allclose(plain.sample(5).numpy(),
                               (plain.generator if kind == "gan" else plain.decoder)(z).numpy())


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_negative_log_likelihood_sums_or_averages_over_the_batch(backend, likelihood):
    from minigen.models import blocks
    x, decoded = mg.rand(4, 3), mg.randn(4, 3)
    per_example = blocks.log_likelihood(likelihood, x, decoded).numpy()
    summed = blocks.negative_log_likelihood(likelihood, x, decoded, "sum").numpy()
    averaged = blocks.negative_log_likelihood(likelihood, x, decoded, "batchmean").numpy()
    np.testing.assert_allclose(summed, -per_example.sum(), rtol=1e-5)
    np.testing.assert_allclose(averaged, -per_example.mean(), rtol=1e-5)
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'batchmean', not 'mean'"):
        blocks.negative_log_likelihood(likelihood, x, decoded, "mean")

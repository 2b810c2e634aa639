"""The graph walk does only the work asked for: ``mg.grad`` backpropagates only between the outputs
and the requested inputs, with exactly the gradients a full walk gives."""

import collections
import contextlib

import numpy as np
import pytest

import minigen as mg


@contextlib.contextmanager
def counting_backwards():
    """Count the backward calls of each op class, and which inputs each one was asked about."""
    calls = collections.Counter()
    original = mg.Function._input_grads

    def counted(self, gy, arrays=False):
        calls[type(self).__name__] += 1
        calls["inputs needing grad"] += sum(x.requires_grad for x in self.inputs)
        return original(self, gy, arrays=arrays)

    mg.Function._input_grads = counted
    try:
        yield calls
    finally:
        mg.Function._input_grads = original


def vaegan_batch(llike):
    mg.manual_seed(0)
    model = mg.VAEGAN(6, hidden=(5, 4), latent_dim=2, llike=llike, ema=0.0)
    x = mg.Tensor(np.random.default_rng(0).normal(size=(8, 6)))
    return model, x


@pytest.mark.parametrize("llike", ["features", "pixels"])
def test_grad_gives_what_a_full_backward_gives(backend, llike):
    model, x = vaegan_batch(llike)
    for network, loss in (("encoder", "encoder_loss"), ("decoder", "decoder_loss"),
                          ("discriminator", "d_loss")):
        mg.manual_seed(1)
        out = model.losses(x)
        params = list(getattr(model, network).parameters())
        pruned = mg.grad(out[loss], params)
        mg.manual_seed(1)
        model.zero_grad()
        model.losses(x)[loss].backward()                  # every leaf: the whole graph
        for g, p in zip(pruned, params):
            np.testing.assert_array_equal(g.numpy(), p.grad.numpy())
    model.zero_grad()


def test_grad_walks_only_towards_the_requested_inputs(backend):
    model, x = vaegan_batch("features")
    out = model.losses(x)
    with counting_backwards() as disc:
        mg.grad(out["d_loss"], model.discriminator.parameters(), retain_graph=True)
    # the discriminator's loss reaches the decoder and the encoder through x_rec and x_prior, but
    # its gradient is wanted for the discriminator's weights only: nothing behind them is walked
    assert disc["Reparameterize"] == 0 and disc["GaussianKL"] == 0
    with counting_backwards() as dec:
        mg.grad(out["decoder_loss"], model.decoder.parameters(), retain_graph=True)
    assert dec["Reparameterize"] == 0 and dec["GaussianKL"] == 0   # the encoder: not asked for
    with counting_backwards() as enc:
        mg.grad(out["encoder_loss"], model.encoder.parameters())
    assert enc["Reparameterize"] == 1
    # the rules were asked for fewer input gradients than in a full backward (the weights of the
    # decoder and the discriminator, which the encoder's loss passes through)
    mg.manual_seed(0)
    full_out = model.losses(x)
    with counting_backwards() as full:
        full_out["encoder_loss"].backward()
    model.zero_grad()
    assert enc["inputs needing grad"] < full["inputs needing grad"]


def test_pruned_inputs_are_skipped_by_the_backward_rule(backend):
    """A weight whose gradient nobody asked for costs no matmul: the rule sees it as a constant."""
    x = mg.Tensor(np.ones((3, 2)), requires_grad=True)
    w = mg.Tensor(np.full((2, 4), 0.5), requires_grad=True)
    seen = []

    class Probe(mg.Function):
        def forward(self, a, b):
            return a @ b

        def backward(self, gy):
            a, b = self.inputs
            seen.append((a.requires_grad, b.requires_grad))
            return (gy @ b.T if a.requires_grad else None), (a.T @ gy if b.requires_grad else None)

    y = Probe()(x, w)
    (gx,) = mg.grad(y.sum(), [x], retain_graph=True)
    assert seen == [(True, False)]
    np.testing.assert_allclose(gx.numpy(), np.full((3, 2), 2.0))
    assert w.requires_grad and y.creator.inputs[1] is w         # put back as it was


def test_second_derivatives_still_see_every_input(backend):
    """With create_graph the gradient must stay a function of inputs that were not requested: a
    gradient penalty differentiates d(x)'s gradient in x with respect to the weights."""
    x = mg.Tensor(np.array([[0.5, -1.0]]), requires_grad=True)
    w = mg.Tensor(np.array([[2.0], [3.0]]), requires_grad=True)
    (gx,) = mg.grad(mg.tanh(x @ w).sum(), [x], create_graph=True)
    (gw,) = mg.grad((gx * gx).sum(), [w])
    # d/dw of |w|^2 tanh'(x w)^2, by hand: tanh' = 1 - t^2, t = tanh(x w)
    t = np.tanh(x.numpy() @ w.numpy())[0, 0]
    d1 = 1 - t * t
    wn, xn = w.numpy()[:, 0], x.numpy()[0]
    expected = 2 * wn * d1 ** 2 + (wn @ wn) * 2 * d1 * (-2 * t * d1) * xn
    np.testing.assert_allclose(gw.numpy()[:, 0], expected, rtol=1e-12)

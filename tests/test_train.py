"""The training loop: checkpoints and history each epoch, exact resuming, and the non-finite guard.

A tiny regression model stands in for the generative models (they have their own tests): what is
tested here is the loop, which only needs make_optimizers and train_step.
"""

import json
import os

import numpy as np
import pytest

import minigen as mg
from minigen.train import NonFiniteLoss, fit, load_checkpoint, save_checkpoint


class Line(mg.nn.Module):
    """y = x @ w + b fitted to a fixed target line; noise from the backend generator in each step,
    so that resuming must also restore the random stream to match."""

    kind = "line"

    def __init__(self, poison_at=None):
        super().__init__()
        self.layer = mg.nn.Dense(2, 1)
        self.poison_at, self.steps = poison_at, 0

    def make_optimizers(self, lr=0.05):
        return {"adam": mg.optim.Adam(self.parameters(), lr=lr)}

    def train_step(self, x, optimizers):
        self.steps += 1
        target = x.sum(axis=1, keepdims=True) * 2.0 + mg.randn(len(x), 1) * 0.01
        loss = mg.losses.mse(self.layer(x), target)
        if self.poison_at is not None and self.steps >= self.poison_at:
            loss = loss * float("nan")
        optimizers["adam"].zero_grad()
        loss.backward()
        optimizers["adam"].step()
        return {"loss": loss.item()}


def _data():
    return mg.Tensor(np.random.default_rng(0).standard_normal((64, 2)), dtype="float32")


def test_history_and_checkpoint_each_epoch(tmp_path):
    mg.manual_seed(0)
    model = Line()
    history, _ = fit(model, _data(), epochs=3, batch_size=16, out_dir=tmp_path, quiet=True)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    assert json.loads((tmp_path / "history.json").read_text()) == history
    fresh = Line()
    assert load_checkpoint(tmp_path / "checkpoint.npz", fresh, fresh.make_optimizers()) == 3
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.npz", "history.json"]  # no temporary files


def test_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path):
    mg.manual_seed(0)
    straight = Line()
    fit(straight, _data(), epochs=4, batch_size=16, seed=7, out_dir=tmp_path / "a", quiet=True)

    mg.manual_seed(0)
    first_half = Line()
    fit(first_half, _data(), epochs=2, batch_size=16, seed=7, out_dir=tmp_path / "b", quiet=True)
    mg.manual_seed(123)                     # whatever happened in between must not matter
    resumed = Line()
    history, _ = fit(resumed, _data(), epochs=4, batch_size=16, seed=7, out_dir=tmp_path / "b",
                     resume=True, quiet=True)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    mg.manual_seed(0)
    model = Line(poison_at=4 * 2 + 3)       # batch_size 16 on 64 rows: 4 steps an epoch; epoch 3
    with pytest.raises(NonFiniteLoss) as info:
        fit(model, _data(), epochs=5, batch_size=16, lr=0.05, out_dir=tmp_path, quiet=True)
    message = str(info.value)
    assert "NaN" in message and "epoch 3, step 3" in message
    assert "lower learning rate" in message and "--lr 0.005" in message
    assert "after epoch 2" in message
    check = Line()
    assert load_checkpoint(tmp_path / "checkpoint.npz", check, check.make_optimizers()) == 2
    assert len(json.loads((tmp_path / "history.json").read_text())) == 2


def test_resume_without_a_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        fit(Line(), _data(), epochs=1, out_dir=tmp_path, resume=True, quiet=True)


def test_checkpoint_round_trip_includes_optimizer_state(tmp_path):
    mg.manual_seed(0)
    model = Line()
    optimizers = model.make_optimizers()
    model.train_step(_data(), optimizers)
    save_checkpoint(tmp_path / "c.npz", model, optimizers, epoch=1)
    other = Line()
    other_opt = other.make_optimizers()
    load_checkpoint(tmp_path / "c.npz", other, other_opt)
    a, b = optimizers["adam"].state_dict(), other_opt["adam"].state_dict()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_per_epoch_files_are_synced_to_disk_only_now_and_then(tmp_path, monkeypatch):
    """fsync costs about an epoch of a small model: the loop syncs at the end (and every
    DURABLE_EVERY seconds), while every epoch's files are still replaced atomically."""
    import minigen.train as train

    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd) or real(fd))
    mg.manual_seed(0)
    fit(Line(), _data(), epochs=4, batch_size=16, out_dir=tmp_path, quiet=True)
    assert len(calls) == 4            # the last epoch: checkpoint and history, file and folder each
    calls.clear()
    monkeypatch.setattr(train, "DURABLE_EVERY", 0.0)
    fit(Line(), _data(), epochs=4, batch_size=16, out_dir=tmp_path / "b", quiet=True)
    assert len(calls) == 4 * 4

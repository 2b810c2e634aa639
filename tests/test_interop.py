"""DLPack exchange and PyTorch checkpoints (minigen.interop).

The DLPack tests need only NumPy.  The PyTorch tests run where PyTorch is installed and are skipped
with the reason elsewhere (it is not a test dependency); their expected values come from minigen
itself (the same model before and after the trip) and from the layout PyTorch documents for
``torch.nn.Linear`` (weight (out_features, in_features), y = x W^T + b).
"""

import sys

import numpy as np
import pytest

import minigen as mg


# --------------------------------------------------------------------------------------------------
# DLPack with NumPy
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_numpy_reads_a_tensor_without_a_copy(dtype):
    t = mg.Tensor(np.arange(6).reshape(2, 3).astype(dtype))
    view = np.from_dlpack(t)
    assert view.dtype == np.dtype(dtype) and view.shape == (2, 3)
    assert np.shares_memory(view, t.data)
    assert t.__dlpack_device__()[0] == 1                   # kDLCPU


def test_from_dlpack_shares_memory_both_ways():
    host = np.linspace(0, 1, 12).reshape(3, 4)
    t = mg.from_dlpack(host)
    assert isinstance(t, mg.Tensor) and t.dtype == np.float64 and t.device == "cpu"
    assert not t.requires_grad and np.shares_memory(t.data, host)
    host[0, 0] = 7.0
    assert t.numpy()[0, 0] == 7.0
    assert mg.from_dlpack(t).data is t.data                # a Tensor: the same data, detached


def test_a_tensor_that_requires_grad_is_not_exported():
    p = mg.nn.Parameter([1.0, 2.0])
    with pytest.raises(BufferError, match=r"t\.detach\(\)"):
        p.__dlpack__()
    assert np.from_dlpack(p.detach()).tolist() == [1.0, 2.0]


def test_from_dlpack_explains_an_object_without_dlpack():
    with pytest.raises(TypeError, match="does not support DLPack"):
        mg.from_dlpack([1.0, 2.0])


def test_layout_changes_name_every_dense_weight():
    model = mg.nn.Sequential(mg.nn.Dense(3, 5, activation="relu"), mg.nn.Dense(5, 2))
    changes = mg.interop.layout_changes(model)
    assert [(n, a, b) for n, a, b, _ in changes] == [("0.weight", (3, 5), (5, 3)),
                                                      ("1.weight", (5, 2), (2, 5))]
    assert all("(out, in)" in why for *_, why in changes)
    vae = mg.VAE(2, hidden=(8,), latent_dim=2, likelihood="gaussian")
    names = {n for n, *_ in mg.interop.layout_changes(vae)}
    assert names == {"encoder.body.0.weight", "encoder.mu.weight", "encoder.log_var.weight",
                     "decoder.0.weight", "decoder.1.weight"}


def test_without_pytorch_the_checkpoint_functions_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)        # makes `import torch` fail
    model = mg.nn.Dense(2, 3)
    with pytest.raises(ImportError, match="pip install torch"):
        mg.interop.to_torch_state_dict(model)
    with pytest.raises(ImportError, match="pip install torch"):
        mg.interop.load_torch_state_dict(model, {})


# --------------------------------------------------------------------------------------------------
# With PyTorch
# --------------------------------------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch", reason="PyTorch is not installed (it is optional)")


def test_torch_and_minigen_share_memory():
    torch = _torch()
    t = mg.Tensor([[1.0, 2.0], [3.0, 4.0]])
    tt = torch.from_dlpack(t)
    assert tt.dtype == torch.float32
    tt[1, 0] = -5.0                                       # PyTorch writes, minigen sees it
    assert t.numpy()[1, 0] == -5.0
    x = torch.arange(6, dtype=torch.int64).reshape(3, 2)
    m = mg.from_dlpack(x)
    assert m.dtype == np.int64 and m.shape == (3, 2)
    x[0, 1] = 40
    assert m.numpy()[0, 1] == 40
    y = torch.ones(3, requires_grad=True)
    with pytest.raises(BufferError):                      # PyTorch's own refusal
        mg.from_dlpack(y)
    assert mg.from_dlpack(y.detach()).tolist() == [1.0, 1.0, 1.0]


def _twin(torch):
    class Twin(torch.nn.Module):
        """PyTorch's copy of Sequential(Dense(3, 5, "tanh"), Dense(5, 2)), same attribute names."""

        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.Linear(3, 5), torch.nn.Linear(5, 2)])

        def forward(self, x):
            return self.layers[1](torch.tanh(self.layers[0](x)))

    return Twin()


class Net(mg.nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = mg.nn.Sequential(mg.nn.Dense(3, 5, activation="tanh"), mg.nn.Dense(5, 2))

    def forward(self, x):
        return self.layers(x)


def test_a_minigen_model_loads_into_its_pytorch_twin_and_back():
    torch = _torch()
    mg.manual_seed(3)
    model = Net()
    for p in model.parameters():                         # non-zero biases too
        p.data = p.data + 0.1 * mg.randn(*p.shape).data
    state = mg.interop.to_torch_state_dict(model)
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    assert tuple(state["layers.0.weight"].shape) == (5, 3)   # PyTorch's (out, in)
    np.testing.assert_array_equal(state["layers.0.weight"].numpy(),
                                  model.layers[0].weight.numpy().T)
    twin = _twin(torch)
    twin.load_state_dict(state)                           # strict: every name and shape fits
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(mg.Tensor(x)).numpy(), theirs, rtol=1e-5, atol=1e-6)

    fresh = Net()
    mg.interop.load_torch_state_dict(fresh, twin.state_dict())
    np.testing.assert_array_equal(fresh.layers[0].weight.numpy(), model.layers[0].weight.numpy())
    np.testing.assert_allclose(fresh(mg.Tensor(x)).numpy(), theirs, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="mis-shaped"):
        mg.interop.load_torch_state_dict(mg.nn.Sequential(mg.nn.Dense(3, 4)),
                                         {"0.weight": torch.zeros(5, 3), "0.bias": torch.zeros(5)})


def test_batch_norm_statistics_travel_under_pytorchs_names():
    torch = _torch()
    mg.manual_seed(4)
    model = mg.nn.Sequential(mg.nn.Dense(3, 4), mg.nn.BatchNorm1d(4))
    model(mg.randn(8, 3))                                 # training mode: statistics move
    twin = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    twin.load_state_dict(mg.interop.to_torch_state_dict(model))
    assert int(twin[1].num_batches_tracked) == 1
    np.testing.assert_allclose(twin[1].running_var.numpy(), model[1].running_var.numpy())
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    model.eval()
    twin.eval()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(mg.Tensor(x)).numpy(), theirs, rtol=1e-5, atol=1e-5)
    back = mg.nn.Sequential(mg.nn.Dense(3, 4), mg.nn.BatchNorm1d(4))
    mg.interop.load_torch_state_dict(back, twin.state_dict())
    assert back[1].num_batches_tracked.item() == 1


class _Claims:
    """An object that says its memory is on ``device_type`` (DLPack's numbering)."""

    def __init__(self, device_type):
        self.device_type = device_type

    def __dlpack_device__(self):
        return (self.device_type, 0)

    def __dlpack__(self, **kwargs):
        raise AssertionError("from_dlpack must decide from the device before asking for data")


def test_from_dlpack_takes_the_backend_from_the_device():
    with pytest.raises(ValueError, match="device type 4"):      # kDLOpenCL: neither CPU nor CUDA
        mg.from_dlpack(_Claims(4))
    if "cupy" not in mg.available_backends():
        with pytest.raises(mg.BackendError, match="CuPy"):     # CUDA memory needs the cupy backend
            mg.from_dlpack(_Claims(2))


def test_a_convolutional_model_moves_with_only_its_dense_weights_transposed():
    torch = _torch()
    mg.manual_seed(5)
    model = mg.nn.Sequential(mg.nn.Conv2d(1, 3, 3, padding=1), mg.nn.BatchNorm2d(3), mg.nn.ReLU(),
                             mg.nn.ConvTranspose2d(3, 2, 2, stride=2), mg.nn.Flatten(),
                             mg.nn.Dense(2 * 8 * 8, 4))
    model(mg.randn(5, 1, 4, 4))                           # batch-norm statistics move
    model.eval()
    assert [n for n, *_ in mg.interop.layout_changes(model)] == ["5.weight"]
    twin = torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.BatchNorm2d(3),
                               torch.nn.ReLU(), torch.nn.ConvTranspose2d(3, 2, 2, stride=2),
                               torch.nn.Flatten(), torch.nn.Linear(2 * 8 * 8, 4))
    twin.load_state_dict(mg.interop.to_torch_state_dict(model))
    twin.eval()
    x = np.random.default_rng(2).standard_normal((3, 1, 4, 4)).astype(np.float32)
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(mg.Tensor(x)).numpy(), theirs, rtol=1e-4, atol=1e-5)

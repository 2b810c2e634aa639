"""Leaving minigen: zero-copy arrays through DLPack, and checkpoints in PyTorch's layout.

**Arrays.**  DLPack is the common format in which array libraries hand each other memory without a
copy.  A minigen Tensor speaks it (``Tensor.__dlpack__``, ``Tensor.__dlpack_device__``), so

    torch.from_dlpack(t.detach())     # a PyTorch tensor on the same memory (CPU or GPU)
    cupy.from_dlpack(t), jax.dlpack.from_dlpack(t), numpy.from_dlpack(t)

and :func:`from_dlpack` goes the other way: ``mg.from_dlpack(x)`` for a PyTorch, CuPy or JAX array
(or a NumPy one) is a Tensor sharing ``x``'s memory - on the CPU with NumPy, on the GPU with CuPy.
Writing into one changes the other.  Gradients do not cross: the result is a constant (make a
Parameter of it to train it), and PyTorch refuses to export a tensor that requires grad
(BufferError; so does minigen): detach first.

**Models.**  :func:`to_torch_state_dict` turns a minigen model's ``state_dict()`` into PyTorch
tensors named the same way, so ``torch_twin.load_state_dict(mg.interop.to_torch_state_dict(model))``
loads it into a PyTorch module built with the same attribute names.  One layout differs: a minigen
``Dense`` computes ``x @ W + b`` with W of shape (in, out) (the founding document's Keras
convention), while PyTorch's ``Linear`` computes ``x @ W.T + b`` with W of shape (out, in).  Those
weights are transposed, and :func:`layout_changes` lists each one.  Convolutions already share
PyTorch's layout ((out, in, kH, kW); transposed convolutions (in, out, kH, kW)) and move unchanged,
as do biases and batch-norm statistics.  :func:`load_torch_state_dict` is the way back.

PyTorch is optional: only these two functions need it, and they say so when it is missing.
"""

from collections import OrderedDict

from . import backend as B
from .autograd import Tensor
from .nn import Dense

__all__ = ["from_dlpack", "to_torch_state_dict", "load_torch_state_dict", "layout_changes"]


# DLPack device types (dlpack.h): where the memory of an exchanged array lives
_DLPACK_CPU = (1, 3)          # kDLCPU, kDLCUDAHost (pinned host memory, readable by the CPU)
_DLPACK_CUDA = (2, 13)        # kDLCUDA, kDLCUDAManaged


def from_dlpack(x):
    """A Tensor sharing the memory of ``x`` (anything with ``__dlpack__``: a PyTorch, CuPy or JAX
    array, a NumPy array): on the CPU its data is a NumPy array, on a CUDA GPU a CuPy one.  The
    dtype is kept; the result does not require grad."""
    if isinstance(x, Tensor):
        return x.detach()
    if not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: a {type(x).__name__} does not support DLPack (it has no "
                        "__dlpack__/__dlpack_device__); convert it to a NumPy array first")
    device_type, _ = x.__dlpack_device__()
    if device_type in _DLPACK_CPU:
        owner = B.instance("numpy")
    elif device_type in _DLPACK_CUDA:
        owner = B.instance("cupy")
    else:
        raise ValueError(f"from_dlpack: memory on DLPack device type {int(device_type)} is neither "
                         "the CPU nor a CUDA GPU; minigen's backends cannot hold it (move it to "
                         "the CPU first)")
    return Tensor._wrap(owner.xp.from_dlpack(x))     # the array API's from_dlpack: zero copy


def _transposed(model):
    """{state_dict name: why} for the entries whose PyTorch layout is the transpose of minigen's."""
    names = {}
    for prefix, module in model.named_modules():
        if isinstance(module, Dense):
            name = f"{prefix}.weight" if prefix else "weight"
            names[name] = "Dense weight is (in, out); torch.nn.Linear's is (out, in)"
    return names


def layout_changes(model):
    """The entries of ``model.state_dict()`` that PyTorch lays out differently, as
    (name, minigen shape, PyTorch shape, why) tuples: the weight of every ``Dense``."""
    state = model.state_dict()
    return [(name, tuple(state[name].shape), tuple(state[name].shape[::-1]), why)
            for name, why in _transposed(model).items() if name in state]


def _torch(who):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{who} needs PyTorch, which is not installed here: pip install torch "
                          "(the CPU build is enough)") from None
    return torch


def to_torch_state_dict(model):
    """``model``'s parameters and buffers as ``{name: torch.Tensor}`` (on the CPU, same dtypes) in
    PyTorch's layout: Dense weights transposed to (out, in), everything else as it is.  Load it with
    ``torch_model.load_state_dict(...)`` into a PyTorch module with the same attribute names."""
    torch = _torch("to_torch_state_dict")
    flip = _transposed(model)
    out = OrderedDict()
    for name, array in model.state_dict().items():   # NumPy copies, on the host
        out[name] = torch.from_numpy(array.T.copy() if name in flip else array)
    return out


def load_torch_state_dict(model, state_dict):
    """Load a PyTorch ``state_dict`` (of a module with the same attribute names) into ``model``:
    Linear weights are transposed back to minigen's (in, out), everything else is copied as it is
    (batch-norm statistics and ``num_batches_tracked`` have PyTorch's names in minigen too).
    Returns ``model``; a state that does not fit raises the ValueError of
    ``Module.load_state_dict``, listing what differs."""
    _torch("load_torch_state_dict")
    flip = _transposed(model)
    state = OrderedDict()
    for name, value in state_dict.items():
        array = value.detach().cpu().numpy()
        state[name] = array.T if name in flip else array
    return model.load_state_dict(state)

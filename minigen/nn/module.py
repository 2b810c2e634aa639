"""Module and Parameter: the containers that layers and models are built from.

A :class:`Module` owns *parameters* (learnable tensors), *buffers* (tensors that are part of its
state but not learned, like batch norm's running averages) and *sub-modules*.  Assigning one as an
attribute
registers it, in assignment order::

    class Encoder(mg.nn.Module):
        def __init__(self):
            super().__init__()                       # first: it creates the registries
            self.hidden = mg.nn.Dense(784, 256, activation="relu")
            self.mu = mg.nn.Dense(256, 2)

        def forward(self, x):
            return self.mu(self.hidden(x))

    Encoder().named_parameters()   # hidden.weight, hidden.bias, mu.weight, mu.bias

Names are dotted paths, ordered as PyTorch orders them (a module's own parameters, then its buffers,
then each sub-module's), so checkpoints read the same way in both.  ``state_dict()`` copies every
parameter and buffer to a NumPy array: a model trained on the GPU loads on the CPU, and a saved file
never depends on where it was made.
"""

import operator
from collections import OrderedDict
from collections.abc import Mapping

from .. import backend as B
from ..autograd import Tensor, as_tensor, mark_modified, no_grad

__all__ = ["Parameter", "Module", "check_size", "check_state_dict"]


def check_state_dict(who, state, numbers=False):
    """A TypeError unless ``state`` is a mapping of names to arrays (NumPy or backend arrays, or
    Tensors; Python numbers too when ``numbers``), as ``state_dict()`` returns."""
    if not isinstance(state, Mapping):
        raise TypeError(f"{who}: expected a mapping of names to arrays (what state_dict() "
                        f"returns), not a {type(state).__name__}")
    kinds = (Tensor, int, float) if numbers else Tensor
    for name, value in state.items():
        if not (isinstance(value, kinds) or B.is_array(value) or B.is_host_array(value)):
            raise TypeError(f"{who}: entry {name!r} is a {type(value).__name__}; expected an array "
                            "or a Tensor")


def check_size(who, name, value):
    """``value`` as a positive int: a TypeError for anything that is not an integer (a string, a
    float, a bool), a ValueError for one below 1; both name the layer and the argument."""
    if isinstance(value, bool):
        raise TypeError(f"{who}: {name} must be a positive integer, not {value!r}")
    try:
        size = operator.index(value)
    except TypeError:
        raise TypeError(f"{who}: {name} must be a positive integer, not {type(value).__name__} "
                        f"{value!r}") from None
    if size < 1:
        raise ValueError(f"{who}: {name} must be a positive integer, got {size}")
    return size


class Parameter(Tensor):
    """A Tensor that is a learnable weight: it always requires grad, and a Module registers it when
    it is assigned as an attribute.  ``Parameter(data, dtype=None)`` takes what ``Tensor`` takes."""

    __slots__ = ()

    def __init__(self, data, dtype=None, name=None):
        super().__init__(data, requires_grad=True, dtype=dtype, name=name)

    def __repr__(self):
        return "Parameter(" + super().__repr__() + ")"


class Module:
    """The base class of layers and models.  Subclasses call ``super().__init__()`` first, assign
    their parameters and sub-modules as attributes, and define ``forward``; ``module(x)`` calls
    ``forward(x)``.

    ``training`` is True after construction; ``eval()`` sets it to False in this module and every
    sub-module (Dropout and BatchNorm1d behave differently then), ``train()`` back to True.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # --- registration -----------------------------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: call super().__init__() at the start of __init__, "
                f"before assigning self.{name}")
        was_buffer = name in self._buffers
        if value is not None:              # a registered name keeps its kind, as in PyTorch
            for registry, kind, label in ((self._parameters, Parameter, "parameter"),
                                          (self._buffers, Tensor, "buffer"),
                                          (self._modules, Module, "sub-module")):
                if name in registry and not isinstance(value, kind):
                    raise TypeError(
                        f"{type(self).__name__}: cannot assign a {type(value).__name__} as {label} "
                        f"{name!r} ({kind.__name__} or None expected)"
                        + ("; wrap it: mg.nn.Parameter(tensor.data)" if kind is Parameter else ""))
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif was_buffer and isinstance(value, Tensor):
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, tensor):
        """Register ``tensor`` (no gradient) as state: saved by state_dict, moved by to()."""
        if not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: {name!r} must be a Tensor, not "
                            f"{type(tensor).__name__}")
        object.__setattr__(self, name, tensor)
        for registry in (self._parameters, self._modules):
            registry.pop(name, None)
        self._buffers[name] = tensor

    # --- calling ----------------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- walking the tree -------------------------------------------------------------------------
    def named_modules(self):
        """(dotted name, module) for this module ("") and every sub-module, parents first."""
        for prefix, module in self._prefixed_modules():
            yield prefix[:-1], module

    def _prefixed_modules(self, prefix=""):
        """(prefix, module) pairs, the prefix ready to put in front of a name: "",
        "encoder.0."..."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child._prefixed_modules(prefix + name + ".")

    def modules(self):
        return [m for _, m in self.named_modules()]

    def _named_tensors(self):
        """(dotted name, tensor) for every parameter and buffer, in state_dict order."""
        for prefix, module in self._prefixed_modules():
            for name, p in module._parameters.items():
                yield prefix + name, p
            for name, b in module._buffers.items():
                yield prefix + name, b

    def named_parameters(self):
        """(dotted name, Parameter) pairs: a module's own parameters in assignment order (weight
        before bias), then each sub-module's; ``Sequential`` children are named "0", "1"...  A
        parameter shared by two modules is listed once."""
        seen = set()
        for prefix, module in self._prefixed_modules():
            for name, p in module._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield prefix + name, p

    def parameters(self):
        """The parameters as a list (pass it to an optimizer)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for prefix, module in self._prefixed_modules():
            for name, b in module._buffers.items():
                yield prefix + name, b

    # --- training state ---------------------------------------------------------------------------
    def zero_grad(self):
        """Forget the gradients (set every ``p.grad`` to None).  Gradients *accumulate* over
        backward passes until this is called, so a training step calls it once before
        ``loss.backward()``."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        """Training mode (the default): Dropout drops, BatchNorm1d uses batch statistics."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: Dropout passes through, BatchNorm1d uses its running statistics."""
        return self.train(False)

    def to(self, device):
        """Move every parameter, gradient and buffer to ``device`` ("cpu", "gpu", or a backend name
        such as "strict"), in place: the Parameter objects stay the same (an optimizer that holds
        them keeps working, and moves its own state along at its next step).  Returns the module."""
        with no_grad():
            for _, t in self._named_tensors():
                t.data = t.to(device).data
                mark_modified(t)
                if t.grad is not None:
                    t.grad = t.grad.to(device).detach()
        return self

    # --- checkpoints ------------------------------------------------------------------------------
    def state_dict(self):
        """An ordered ``{name: NumPy array}`` of every parameter and buffer: copies, so training on
        afterwards does not change them."""
        return OrderedDict((name, t.numpy().copy()) for name, t in self._named_tensors())

    def load_state_dict(self, state, strict=True):
        """Copy the arrays of ``state`` (NumPy arrays, arrays of any backend, or Tensors) into this
        module's parameters and buffers, converted to each one's current device and dtype.

        Names and shapes are checked first, and nothing is changed unless all fit: a ValueError then
        lists every missing, unexpected and mis-shaped entry.  ``strict=False`` ignores missing and
        unexpected names (shapes are always checked).  Returns the module.
        """
        check_state_dict(f"{type(self).__name__}.load_state_dict", state)
        own = OrderedDict(self._named_tensors())
        missing = [name for name in own if name not in state]
        unexpected = [name for name in state if name not in own]
        misshaped = [f"{name}: checkpoint {tuple(state[name].shape)}, model {own[name].shape}"
                     for name in own if name in state
                     and tuple(state[name].shape) != own[name].shape]
        problems = []
        if strict and missing:
            problems.append("missing: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected: " + ", ".join(unexpected))
        if misshaped:
            problems.append("mis-shaped: " + "; ".join(misshaped))
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the checkpoint does not fit "
                             "the model (" + " | ".join(problems) + ")")
        for name, t in own.items():
            if name in state:
                value = state[name]
                t.data = as_tensor(value.data if isinstance(value, Tensor) else value, t).data
                mark_modified(t)
        return self

    def save(self, path):
        """Write ``state_dict()`` to ``path`` as .npz, atomically (a temporary file, then a
        rename)."""
        B.save_arrays(path, self.state_dict())

    def load(self, path):
        """Read a file written by :meth:`save` (pickled objects are refused) into this module."""
        return self.load_state_dict(B.load_arrays(path))

    # --- printing ---------------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, child in self._modules.items():
            lines.append(f"  ({name}): " + repr(child).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"

"""Layers: Dense, activation modules, Sequential, Dropout and BatchNorm1d.

Shapes follow the founding document's Keras convention: a batch is (N, features) and a Dense weight
is (in_features, out_features), so a layer computes ``x @ W + b`` with no transpose.
"""

from .. import backend as B
from .. import functions as F
from ..autograd import Tensor, mark_modified, no_grad
from ..creation import ones, rand, zeros
from ..fused import ACTIVATIONS, DenseFunction, dense
from ..fusion import is_fusion_enabled
from . import init as _init
from .module import Module, Parameter, check_size

__all__ = ["DenseFunction", "dense", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softplus",
           "Sequential", "Dropout", "BatchNorm1d", "ACTIVATIONS"]


def _activation(activation):
    """None, a callable, or a name from ACTIVATIONS -> None or a callable."""
    if activation is None or callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{', '.join(sorted(ACTIVATIONS))}, None, or pass a callable")
    return ACTIVATIONS[activation]


# --------------------------------------------------------------------------------------------------
# Dense: y = activation(x @ W + b)  (the op itself, fused or not, is minigen.fused.dense)
# --------------------------------------------------------------------------------------------------

class Dense(Module):
    """A fully connected layer: ``y = activation(x @ weight + bias)``.

    * ``weight``: (in_features, out_features); ``bias``: (out_features,), zeros (``bias=False``:
      none).
    * ``init="glorot"`` (default, as Keras): W ~ U(-a, a), a = sqrt(6 / (in + out)).
      ``init="he"``: W ~ N(0, 2 / in), better for deep ReLU stacks.  See ``minigen.nn.init``.
    * ``activation``: None (linear), a name ("relu", "leaky_relu" with slope 0.01, "sigmoid",
      "tanh", "softplus") or any callable, e.g. ``LeakyReLU(0.2)``.
    * The input is (..., in_features); any leading axes are batch axes.
    """

    def __init__(self, in_features, out_features, activation=None, init="glorot", bias=True,
                 dtype=None):
        super().__init__()
        if init not in _init.INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; choose one of "
                             f"{', '.join(_init.INITIALIZERS)}")
        self.in_features = check_size("Dense", "in_features", in_features)
        self.out_features = check_size("Dense", "out_features", out_features)
        # a name, or the name of the fused op an activation module computes (ReLU() -> "relu")
        named = isinstance(activation, str)
        self.activation_name = activation if named else _fused_name(activation)
        self.activation = _activation(activation)
        self.weight = Parameter(_init.INITIALIZERS[init](self.in_features, self.out_features,
                                                         dtype))
        self.bias = Parameter(zeros(self.out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        return dense(x, self.weight, self.bias, self.activation_name or self.activation)

    def fused_with(self, activation):
        """The name of the fused activation with which this layer and the activation module
        ``activation`` after it run as one op (what Sequential does with ``Dense(a, b), ReLU()``:
        ``dense(x, weight, bias, name)``), or None when they cannot be fused."""
        if self.bias is None or self.activation is not None:
            return None
        return _fused_name(activation)

    def extra_repr(self):
        act = self.activation_name or getattr(self.activation, "__name__", None)
        return f"{self.in_features}, {self.out_features}" + (f", activation={act!r}" if act else "")


# --------------------------------------------------------------------------------------------------
# Activations as modules (the functions themselves, with their derivatives, are in
# minigen.functions)
# --------------------------------------------------------------------------------------------------

def _fused_name(module):
    """The name of the fused activation that the activation module ``module`` computes, or None."""
    kind = type(module)
    if kind is LeakyReLU:
        return "leaky_relu" if module.slope == 0.01 else None
    return _FUSED_MODULES.get(kind)


class ReLU(Module):
    """y = max(x, 0)."""

    def forward(self, x):
        return F.relu(x)


class LeakyReLU(Module):
    """y = x where x > 0, else slope * x (slope 0.01 by default, as PyTorch; GANs often use 0.2)."""

    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = float(slope)

    def forward(self, x):
        return F.leaky_relu(x, self.slope)

    def extra_repr(self):
        return f"{self.slope}"


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x))."""

    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """y = tanh(x)."""

    def forward(self, x):
        return F.tanh(x)


class Softplus(Module):
    """y = log(1 + exp(x))."""

    def forward(self, x):
        return F.softplus(x)


_FUSED_MODULES = {ReLU: "relu", Tanh: "tanh", Sigmoid: "sigmoid"}


# --------------------------------------------------------------------------------------------------
# Sequential
# --------------------------------------------------------------------------------------------------

class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    The children are named "0", "1", "2"... as in PyTorch, so the parameters are "0.weight",
    "0.bias"...
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} is a {type(layer).__name__}, not a Module "
                                "(wrap a function in a Module, or use Dense(..., activation=fn))")
            setattr(self, str(i), layer)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def forward(self, x):
        layers = list(self._modules.values())
        last = len(layers) - 1
        fuse = is_fusion_enabled()
        i = 0
        while i <= last:
            layer = layers[i]
            # a Dense followed by its activation module: one fused op (its output goes nowhere else)
            name = layer.fused_with(layers[i + 1]) if fuse and i < last \
                and isinstance(layer, Dense) else None
            if name is not None:
                x = dense(x, layer.weight, layer.bias, name)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x


# --------------------------------------------------------------------------------------------------
# Dropout and batch normalisation: different in training and in evaluation
# --------------------------------------------------------------------------------------------------

class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the survivors by 1 / (1 - p)
    ("inverted dropout"), so that the expected output equals the input; in evaluation, the identity.

    The gradient flows through the same mask: dy/dx = mask / (1 - p).
    """

    def __init__(self, p=0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        xp = B.namespace(x.data)
        keep = rand(x.shape, like=x).data >= self.p
        mask = xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.p))
        return x * Tensor._wrap(mask)

    def extra_repr(self):
        return f"p={self.p}"


class _BatchNorm(Module):
    """Batch normalisation of each channel (axis 1) over the batch and every axis after the channels
    (Ioffe & Szegedy, 2015): BatchNorm1d on (N, C), BatchNorm2d on (N, C, H, W).

    Training: with the mean m and the biased variance v (divided by the count n of values per
    channel: N, or N*H*W) of each channel in the batch,

        y = (x - m) / sqrt(v + eps) * weight + bias

    and the running statistics move towards the batch's (as PyTorch, the running variance uses the
    unbiased variance, v * n / (n - 1)):

        running_mean <- (1 - momentum) * running_mean + momentum * m
        running_var  <- (1 - momentum) * running_var  + momentum * v * n / (n - 1)

    ``momentum=None`` gives PyTorch's cumulative average instead: momentum = 1 / t at the t-th
    training batch, so the running statistics are the plain mean of every batch's
    (``num_batches_tracked``, a buffer, counts them in both cases).

    Evaluation: the same formula with running_mean and running_var in place of m and v, so the
    output for one example no longer depends on the rest of its batch.  ``weight`` starts at ones
    and ``bias`` at zeros (``affine=False``: neither); running_mean, running_var and
    num_batches_tracked are buffers, saved by state_dict under PyTorch's names.
    """

    op = "batchnorm"
    layout = "(N, C)"       # the input shape it takes, C standing for num_features
    input_ndim = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=None):
        super().__init__()
        who = type(self).__name__
        self.num_features = check_size(who, "num_features", num_features)
        self.eps = float(eps)
        if not self.eps > 0.0:
            raise ValueError(f"{who}: eps must be > 0, got {eps}")
        if momentum is not None and not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"{who}: momentum must be in [0, 1] or None (cumulative average), "
                             f"got {momentum}")
        self.momentum = None if momentum is None else float(momentum)
        self.weight = Parameter(ones(self.num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(zeros(self.num_features, dtype=dtype)) if affine else None
        self.register_buffer("running_mean", zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_var", ones(self.num_features, dtype=dtype))
        self.register_buffer("num_batches_tracked", zeros((), dtype="int64"))

    def forward(self, x):
        if x.ndim != self.input_ndim or x.shape[1] != self.num_features:
            layout = self.layout.replace("C", str(self.num_features))
            raise ValueError(f"{self.op}: expected input of shape {layout}, got shape {x.shape}")
        if not self.training:
            return self._normalize_with_running_stats(x)
        n = x.size // self.num_features
        if n < 2:
            raise ValueError(f"{self.op}: training needs more than one example per batch "
                             f"(more than one value per channel; got shape {x.shape}); use "
                             "eval() for single examples")
        axes = (0,) + tuple(range(2, x.ndim))            # every axis but the channels
        mean = x.mean(axis=axes, keepdims=True)
        centred = x - mean
        var = (centred * centred).mean(axis=axes, keepdims=True)
        self._update_running_stats(mean.data, var.data, n)
        y = centred / F.sqrt(var + self.eps)
        if self.weight is not None:
            shape = (1, self.num_features) + (1,) * (x.ndim - 2)
            y = y * F.reshape(self.weight, shape) + F.reshape(self.bias, shape)
        return y

    def _normalize_with_running_stats(self, x):
        """Evaluation, computed with the channels last so that the (C,) running statistics broadcast
        as they are and are inputs of the graph themselves: changing them in place before a backward
        through this output is then caught (see ``mg.autograd.mark_modified``)."""
        last = (0,) + tuple(range(2, x.ndim)) + (1,)
        if x.ndim > 2:
            x = F.transpose(x, last)
        y = (x - self.running_mean) / F.sqrt(self.running_var + self.eps)
        if self.weight is not None:
            y = y * self.weight + self.bias
        if x.ndim > 2:
            y = F.transpose(y, (0, x.ndim - 1) + tuple(range(1, x.ndim - 1)))
        return y

    def _update_running_stats(self, mean, var, n):
        """The running averages, updated in place (no gradient: they are statistics, not
        weights)."""
        with no_grad():
            self.num_batches_tracked.data += 1
            if self.momentum is None:                  # the cumulative average: 1/1, 1/2, 1/3...
                m = 1.0 / self.num_batches_tracked.item()
            else:
                m = self.momentum
            xp = B.namespace(mean)
            mean = xp.reshape(mean, (self.num_features,))     # (1, C, 1, 1) -> (C,)
            var = xp.reshape(var, (self.num_features,))
            running_mean, running_var = self.running_mean.data, self.running_var.data
            running_mean *= 1.0 - m
            running_mean += m * mean
            running_var *= 1.0 - m
            running_var += (m * n / (n - 1)) * var
            mark_modified(self.running_mean, self.running_var, self.num_batches_tracked)

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, num_features) inputs over the batch axis (see ``_BatchNorm``)."""

    op = "batchnorm1d"
    layout = "(N, C)"
    input_ndim = 2

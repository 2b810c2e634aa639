"""Layers: Dense, activation modules, Sequential, Dropout and BatchNorm1d.

Shapes follow the founding document's Keras convention: a batch is (N, features) and a Dense weight is
(in_features, out_features), so a layer computes ``x @ W + b`` with no transpose.
"""

from .. import backend as B
from .. import functions as F
from .. import kernels
from ..autograd import Function, Tensor, is_grad_enabled, no_grad
from ..creation import ones, zeros
from . import init as _init
from ._arrays import tensor_like, uniform_like
from .module import Module, Parameter

__all__ = ["DenseFunction", "dense", "Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softplus",
           "Sequential", "Dropout", "BatchNorm1d", "ACTIVATIONS"]


# ----------------------------------------------------------------------------------------------------
# Dense: y = activation(x @ W + b)
# ----------------------------------------------------------------------------------------------------

class DenseFunction(Function):
    """y = activation(x @ W + b) as one op: one graph node and one backward instead of a matmul, an add
    and an activation, and no intermediate arrays kept.

    ``activation`` is None (linear) or one of ``kernels.FUSED_ACTIVATIONS`` ("relu", "leaky_relu" with
    slope 0.01, "tanh", "sigmoid").  With x: (..., in), W: (in, out), b: (out,), z = x @ W + b and the
    upstream gradient g = dL/dy: (..., out):

        dL/dz = g * activation'(z)           written with y alone (relu: y > 0; tanh: 1 - y^2; ...)
        dL/dx = dL/dz @ W^T                  (..., in)
        dL/dW = x^T @ dL/dz                  (in, out)   the leading axes flattened into one batch axis
        dL/db = dL/dz summed over the batch  (out,)

    The backward works on arrays directly; only when a second derivative is wanted (``create_graph``)
    does it build the same formulas from recorded ops.
    """

    name = "dense"

    def __init__(self, activation=None):
        if activation is not None and activation not in kernels.FUSED_ACTIVATIONS:
            raise ValueError(f"dense: cannot fuse activation {activation!r}; choose one of "
                             f"{', '.join(kernels.FUSED_ACTIVATIONS)} or None")
        self.activation = activation

    def forward(self, x, weight, bias):
        if x.ndim == 0 or x.shape[-1] != weight.shape[0]:
            raise ValueError(f"dense: expected input with last dimension {weight.shape[0]}, "
                             f"got shape {tuple(x.shape)}")
        self.y = kernels.bias_activation(B.namespace(x).matmul(x, weight), bias, self.activation)
        return self.y

    def _shape_message(self, tensors, err):
        return str(err)

    def backward(self, gy):
        if is_grad_enabled():                # create_graph: the gradient must be differentiable
            return self._backward_in_graph(gy)
        x, weight, bias = self.inputs
        xp = B.namespace(gy.data)
        n_in, n_out = weight.shape
        gz = gy.data if self.activation is None else kernels.activation_grad(gy.data, self.y,
                                                                             self.activation)
        g2 = xp.reshape(gz, (-1, n_out))     # every leading axis is part of the batch
        gx = xp.matmul(gz, weight.data.T) if x.requires_grad else None
        gw = xp.matmul(xp.reshape(x.data, (-1, n_in)).T, g2) if weight.requires_grad else None
        gb = xp.sum(g2, axis=0) if bias.requires_grad else None
        return tuple(None if g is None else Tensor._wrap(B.ensure_array(g)) for g in (gx, gw, gb))

    def _backward_in_graph(self, gy):
        x, weight, bias = self.inputs
        n_in, n_out = weight.shape
        gz = gy if self.activation is None else gy * kernels.activation_derivative(self.output,
                                                                                   self.activation)
        g2 = F.reshape(gz, (-1, n_out))
        gx = F.matmul(gz, weight.T) if x.requires_grad else None
        gw = F.matmul(F.reshape(x, (-1, n_in)).T, g2) if weight.requires_grad else None
        gb = F.sum(g2, axis=0) if bias.requires_grad else None
        return gx, gw, gb


def dense(x, weight, bias=None, activation=None):
    """``activation(x @ weight + bias)``: one fused op when ``activation`` is None or a name in
    ``kernels.FUSED_ACTIVATIONS``; another activation (a name in ACTIVATIONS or a callable) is applied
    after it; without a bias, a plain matmul.  An ``x`` that is not a Tensor (a list, a NumPy array) is
    converted to the weight's dtype and device first."""
    x = tensor_like(x, weight)
    fused = activation is None or (isinstance(activation, str)
                                   and activation in kernels.FUSED_ACTIVATIONS)
    if bias is None:
        if x.ndim == 0 or x.shape[-1] != weight.shape[0]:
            raise ValueError(f"dense: expected input with last dimension {weight.shape[0]}, "
                             f"got shape {x.shape}")
        y = F.matmul(x, weight)
    else:
        y = DenseFunction(activation if fused else None)(x, weight, bias)
    if activation is None or (fused and bias is not None):
        return y
    return _activation(activation)(y)


ACTIVATIONS = {"relu": F.relu, "leaky_relu": F.leaky_relu, "sigmoid": F.sigmoid, "tanh": F.tanh,
               "softplus": F.softplus}


def _activation(activation):
    """None, a callable, or a name from ACTIVATIONS -> None or a callable."""
    if activation is None or callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of "
                         f"{', '.join(sorted(ACTIVATIONS))}, None, or pass a callable")
    return ACTIVATIONS[activation]


class Dense(Module):
    """A fully connected layer: ``y = activation(x @ weight + bias)``.

    * ``weight``: (in_features, out_features); ``bias``: (out_features,), zeros (``bias=False``: none).
    * ``init="glorot"`` (default, as Keras): W ~ U(-a, a), a = sqrt(6 / (in + out)).
      ``init="he"``: W ~ N(0, 2 / in), better for deep ReLU stacks.  See ``minigen.nn.init``.
    * ``activation``: None (linear), a name ("relu", "leaky_relu" with slope 0.01, "sigmoid", "tanh",
      "softplus") or any callable, e.g. ``LeakyReLU(0.2)``.
    * The input is (..., in_features); any leading axes are batch axes.
    """

    def __init__(self, in_features, out_features, activation=None, init="glorot", bias=True, dtype=None):
        super().__init__()
        if init not in _init.INITIALIZERS:
            raise ValueError(f"unknown init {init!r}; choose one of {', '.join(_init.INITIALIZERS)}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.activation_name = activation if isinstance(activation, str) else None
        self.activation = _activation(activation)
        self.weight = Parameter(_init.INITIALIZERS[init](self.in_features, self.out_features, dtype))
        self.bias = Parameter(zeros(self.out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        return dense(x, self.weight, self.bias, self.activation_name or self.activation)

    def extra_repr(self):
        act = self.activation_name or getattr(self.activation, "__name__", None)
        return f"{self.in_features}, {self.out_features}" + (f", activation={act!r}" if act else "")


# ----------------------------------------------------------------------------------------------------
# Activations as modules (the functions themselves, with their derivatives, are in minigen.functions)
# ----------------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------------
# Sequential
# ----------------------------------------------------------------------------------------------------

class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)(x) == c(b(a(x)))``.

    The children are named "0", "1", "2"... as in PyTorch, so the parameters are "0.weight", "0.bias"...
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
        for layer in self._modules.values():
            x = layer(x)
        return x


# ----------------------------------------------------------------------------------------------------
# Dropout and batch normalisation: different in training and in evaluation
# ----------------------------------------------------------------------------------------------------

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
        keep = uniform_like(x.shape, x.data) >= self.p
        mask = xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.p))
        return x * Tensor._wrap(mask)

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm1d(Module):
    """Batch normalisation over the batch axis of (N, num_features) inputs (Ioffe & Szegedy, 2015).

    Training: with the batch mean m and the biased batch variance v (divided by N) of each feature,

        y = (x - m) / sqrt(v + eps) * weight + bias

    and the running statistics move towards the batch's (as PyTorch, the running variance uses the
    unbiased variance, v * N / (N - 1)):

        running_mean <- (1 - momentum) * running_mean + momentum * m
        running_var  <- (1 - momentum) * running_var  + momentum * v * N / (N - 1)

    Evaluation: the same formula with running_mean and running_var in place of m and v, so the output
    for one example no longer depends on the rest of its batch.  ``weight`` starts at ones and ``bias``
    at zeros (``affine=False``: neither); running_mean and running_var are buffers, saved by state_dict.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=None):
        super().__init__()
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.weight = Parameter(ones(self.num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(zeros(self.num_features, dtype=dtype)) if affine else None
        self.register_buffer("running_mean", zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_var", ones(self.num_features, dtype=dtype))

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"batchnorm1d: expected input of shape (N, {self.num_features}), "
                             f"got shape {x.shape}")
        if self.training:
            n = x.shape[0]
            if n < 2:
                raise ValueError("batchnorm1d: training needs more than one example per batch "
                                 f"(got shape {x.shape}); use eval() for single examples")
            mean = x.mean(axis=0)
            centred = x - mean
            var = (centred * centred).mean(axis=0)
            self._update_running_stats(mean.data, var.data, n)
        else:
            mean, var = self.running_mean, self.running_var
            centred = x - mean
        y = centred / F.sqrt(var + self.eps)
        if self.weight is not None:
            y = y * self.weight + self.bias
        return y

    def _update_running_stats(self, mean, var, n):
        """The running averages, updated in place (no gradient: they are statistics, not weights)."""
        with no_grad():
            m = self.momentum
            running_mean, running_var = self.running_mean.data, self.running_var.data
            running_mean *= 1.0 - m
            running_mean += m * mean
            running_var *= 1.0 - m
            running_var += (m * n / (n - 1)) * var

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"

"""Image layers: Conv2d, ConvTranspose2d, BatchNorm2d, MaxPool2d, AvgPool2d, Flatten, Unflatten.

Images are (N, C, H, W), as in PyTorch, and so are the weights' layouts, the argument names and
defaults, the default initialisation and the ``state_dict`` names ("weight", "bias", "running_mean",
"running_var", "num_batches_tracked"), so a DCGAN written for PyTorch reads the same here:

    critic = mg.nn.Sequential(
        mg.nn.Conv2d(1, 64, 4, stride=2, padding=1), mg.nn.LeakyReLU(0.2),      # 28 -> 14
        mg.nn.Conv2d(64, 128, 4, stride=2, padding=1), mg.nn.LeakyReLU(0.2),    # 14 -> 7
        mg.nn.Flatten(), mg.nn.Dense(128 * 7 * 7, 1))

The ops themselves, with their derivatives, are in ``minigen.conv``.
"""

from .. import conv as C
from .. import functions as F
from . import init as _init
from .layers import _BatchNorm
from .module import Module, Parameter, check_size

__all__ = ["Conv2d", "ConvTranspose2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "Flatten",
           "Unflatten"]


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: the arguments, the weight and bias, the repr."""

    layer = "?"

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                 dtype, weight_shape):
        super().__init__()
        self.in_channels = check_size(self.layer, "in_channels", in_channels)
        self.out_channels = check_size(self.layer, "out_channels", out_channels)
        self.kernel_size = C._pair(kernel_size, "kernel_size", self.layer, 1)
        self.stride = C._pair(stride, "stride", self.layer, 1)
        self.padding = padding if isinstance(padding, str) and self.layer == "Conv2d" else \
            C._pair(padding, "padding", self.layer)          # Conv2d: "valid" or "same" too
        self.dilation = C._pair(dilation, "dilation", self.layer, 1)
        if isinstance(self.padding, str):     # refused when built, as PyTorch, not at first use
            if self.padding not in ("valid", "same"):
                raise ValueError(f"{self.layer}: padding must be an int, a pair, 'valid' or "
                                 f"'same', not {padding!r}")
            if self.padding == "same" and self.stride != (1, 1):
                raise ValueError(f"{self.layer}: padding='same' needs stride 1 (got stride "
                                 f"{self.stride}); give the padding as numbers")
        shape = weight_shape(self.in_channels, self.out_channels) + self.kernel_size
        fan_in = shape[1] * self.kernel_size[0] * self.kernel_size[1]   # PyTorch's: weight axis 1
        self.weight = Parameter(_init.uniform_fan_in(shape, fan_in, dtype))
        self.bias = Parameter(_init.uniform_fan_in((self.out_channels,), fan_in, dtype)) \
            if bias else None

    def extra_repr(self):
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}"
        for name, default in (("padding", (0, 0)), ("output_padding", (0, 0)),
                              ("dilation", (1, 1))):
            value = getattr(self, name, default)
            if value != default:
                text += f", {name}={value!r}"
        return text + ("" if self.bias is not None else ", bias=False")


class Conv2d(_ConvNd):
    """A 2-D convolution layer: ``conv2d(x, weight, bias, stride, padding, dilation)``.

    * ``weight``: (out_channels, in_channels, kH, kW); ``bias``: (out_channels,) (``bias=False``:
      none); both drawn from U(-b, b), b = 1 / sqrt(in_channels * kH * kW), PyTorch's default.
    * Input (N, in_channels, H, W) (or one (C, H, W) image), output (N, out_channels, OH, OW) with
      OH = floor((H + 2 padding - dilation (kH - 1) - 1) / stride) + 1; ``padding`` may be
      "valid" or "same" (stride 1), as PyTorch's.
    """

    layer = "Conv2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 bias=True, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         dtype, weight_shape=lambda i, o: (o, i))

    def forward(self, x):
        return C.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class ConvTranspose2d(_ConvNd):
    """A 2-D transposed convolution layer (upsampling in a DCGAN generator):
    ``conv_transpose2d(x, weight, bias, stride, padding, output_padding, dilation)``.

    * ``weight``: (in_channels, out_channels, kH, kW); ``bias``: (out_channels,); both drawn from
      U(-b, b), b = 1 / sqrt(out_channels * kH * kW), PyTorch's default (its fan-in is the weight's
      axis 1).
    * Output size OH = (H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1: with
      kernel 4, stride 2, padding 1 each layer doubles the image (7 -> 14 -> 28).
    """

    layer = "ConvTranspose2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, bias=True, dilation=1, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, bias,
                         dtype, weight_shape=lambda i, o: (i, o))
        self.output_padding = C._pair(output_padding, "output_padding", self.layer)
        if any(e >= s and e >= d for e, s, d in zip(self.output_padding, self.stride,
                                                     self.dilation)):
            raise ValueError(f"{self.layer}: output_padding {self.output_padding} must be smaller "
                             f"than the stride {self.stride} or the dilation {self.dilation}")

    def forward(self, x):
        return C.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.dilation)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) images: one mean and variance per channel, over the
    batch and all pixels (n = N*H*W values per channel); running statistics, momentum, the unbiased
    running variance and evaluation mode exactly as BatchNorm1d and PyTorch (see ``_BatchNorm``).
    """

    op = "batchnorm2d"
    layout = "(N, C, H, W)"
    input_ndim = 4


class MaxPool2d(Module):
    """The maximum of each window: ``max_pool2d(x, kernel_size, stride, padding, dilation)``;
    ``stride`` defaults to the kernel size, as PyTorch."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1):
        super().__init__()
        self.kernel_size = C._pair(kernel_size, "kernel_size", "MaxPool2d", 1)
        self.stride = self.kernel_size if stride is None else C._pair(stride, "stride",
                                                                      "MaxPool2d", 1)
        self.padding = C._pair(padding, "padding", "MaxPool2d")
        self.dilation = C._pair(dilation, "dilation", "MaxPool2d", 1)

    def forward(self, x):
        return C.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """The mean of each window (zero padding counted): ``avg_pool2d(x, kernel_size, stride,
    padding)``; ``stride`` defaults to the kernel size, as PyTorch."""

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = C._pair(kernel_size, "kernel_size", "AvgPool2d", 1)
        self.stride = self.kernel_size if stride is None else C._pair(stride, "stride",
                                                                      "AvgPool2d", 1)
        self.padding = C._pair(padding, "padding", "AvgPool2d")

    def forward(self, x):
        return C.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _axis(dim, ndim, layer):
    if not -ndim <= dim < ndim:
        raise ValueError(f"{layer}: dimension {dim} is out of range for an input with {ndim} axes")
    return dim % ndim


class Flatten(Module):
    """Axes ``start_dim`` to ``end_dim`` (inclusive) joined into one: (N, C, H, W) -> (N, C*H*W) by
    default, as PyTorch's ``nn.Flatten`` (which keeps the batch axis)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        start = _axis(self.start_dim, x.ndim, "Flatten")
        end = _axis(self.end_dim, x.ndim, "Flatten")
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim "
                             f"{self.end_dim} for an input of shape {x.shape}")
        size = 1
        for d in x.shape[start:end + 1]:
            size *= d
        return F.reshape(x, x.shape[:start] + (size,) + x.shape[end + 1:])

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Axis ``dim`` split into ``unflattened_size``: ``Unflatten(1, (128, 7, 7))`` turns
    (N, 6272) into (N, 128, 7, 7), as PyTorch's ``nn.Unflatten``; one size may be -1 (inferred)."""

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim = int(dim)
        self.unflattened_size = tuple(int(s) for s in unflattened_size)
        if sum(s == -1 for s in self.unflattened_size) > 1:
            raise ValueError(f"Unflatten: at most one size may be -1, got {self.unflattened_size}")

    def forward(self, x):
        dim = _axis(self.dim, x.ndim, "Unflatten")
        sizes = list(self.unflattened_size)
        known = 1
        for s in sizes:
            known *= s if s != -1 else 1
        if -1 in sizes and known and x.shape[dim] % known == 0:
            sizes[sizes.index(-1)] = x.shape[dim] // known
        total = 1
        for s in sizes:
            total *= s
        if -1 in sizes or total != x.shape[dim]:
            raise ValueError(f"Unflatten: cannot split axis {self.dim} of size {x.shape[dim]} "
                             f"(input {x.shape}) into {self.unflattened_size}")
        return F.reshape(x, x.shape[:dim] + tuple(sizes) + x.shape[dim + 1:])

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"

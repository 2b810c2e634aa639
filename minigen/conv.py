"""Convolutions, transposed convolutions, pooling and padding on (N, C, H, W) images.

Layouts, argument names and defaults are PyTorch's: ``x`` is (N, C, H, W) (or one unbatched
image (C, H, W)), a convolution's weight is (out_channels, in_channels, kH, kW), a transposed
convolution's weight is (in_channels, out_channels, kH, kW); ``stride``, ``padding``, ``dilation``
and ``output_padding`` are ints or (height, width) pairs.

**Convolution.**  With x padded by p zeros on each side,

    y[n, o, p, q] = b[o] + sum_{c, i, j} w[o, c, i, j] * x_pad[n, c, p*sh + i*dh, q*sw + j*dw]

and the output size is OH = floor((H + 2 ph - dh (kH - 1) - 1) / sh) + 1 (the same for the width).

*im2col* turns this into one matrix product: gather, for every output pixel, the C*kH*kW inputs
under its window into one column; then y = W (O, C*kH*kW) @ columns (C*kH*kW, N*OH*OW).  Backward:

    dL/dx = conv_transpose2d(dL/dy, w)          the input gradient is a transposed convolution
    dL/dw = dL/dy (O, N*OH*OW) @ columns^T      one more matrix product
    dL/db = dL/dy summed over n, p, q

**Transposed convolution** is exactly the input gradient of a convolution, used forward: every input
pixel scatters a kernel-sized, weighted patch into the output, with output size
OH = (H - 1) sh - 2 ph + dh (kH - 1) + output_padding + 1 (``output_padding`` picks one of the
sizes a strided convolution maps to H).  Computed as columns = W^T @ x followed by *col2im*,
which adds each column back into the image where its window lies (a scatter-add: windows overlap).

Each op comes in two forms, held equal by the tests:

* the **reference** (``conv2d_reference``...): ``im2col`` written with minigen's own slicing,
  ``stack`` and ``reshape``, then ``matmul``.  Every step is a primitive op, so it is differentiable
  to any order with nothing new to trust.  ``mg.set_fusion(False)`` makes ``mg.conv2d`` and the
  others run it.
* the **fused op** (``Conv2dFunction``...): the windows as a strided view of the padded input (no
  Python loop over positions, no copy until the one im2col buffer), one GEMM forward, and a backward
  written with these same fused ops, so a second derivative (a WGAN-GP gradient penalty on a
  convolutional critic) is again convolutions.  ``backward_arrays`` computes the same on arrays.
"""

import builtins
import math

from . import backend as B
from .autograd import Function, as_tensor
from . import functions as F
from .functions import GetItemGrad, matmul, reshape, stack, transpose
from .fusion import is_fusion_enabled

__all__ = ["conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "pad", "im2col",
           "conv2d_reference", "conv_transpose2d_reference", "max_pool2d_reference",
           "avg_pool2d_reference", "Conv2dFunction", "ConvTranspose2dFunction", "Conv2dWeightGrad",
           "MaxPool2dFunction", "AvgPool2dFunction", "Pad"]


# --------------------------------------------------------------------------------------------------
# Arguments: ints or pairs, sizes, and the errors that name what is wrong
# --------------------------------------------------------------------------------------------------

def _pair(value, name, op, minimum=0):
    """An int or a pair of ints as a (height, width) tuple of ints >= ``minimum``."""
    pair = (value, value) if isinstance(value, int) else value
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not builtins.all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if builtins.min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}, got {value!r}")
    return tuple(pair)


def _conv_out(size, kernel, stride, padding, dilation):
    """A convolution's output size along each axis: floor((H + 2p - d (k - 1) - 1) / s) + 1."""
    return tuple((h + 2 * p - d * (k - 1) - 1) // s + 1
                 for h, k, s, p, d in zip(size, kernel, stride, padding, dilation))


def _transpose_out(size, kernel, stride, padding, output_padding, dilation):
    """A transposed convolution's output size: (H - 1) s - 2p + d (k - 1) + output_padding + 1."""
    return tuple((h - 1) * s - 2 * p + d * (k - 1) + op + 1
                 for h, k, s, p, op, d in zip(size, kernel, stride, padding, output_padding,
                                              dilation))


def _batched(op, x):
    """x as (N, C, H, W); an unbatched (C, H, W) image gets a batch axis (removed again after)."""
    if x.ndim == 3:
        return reshape(x, (1,) + x.shape), True
    if x.ndim != 4:
        raise ValueError(f"{op}: expected an input of shape (N, C, H, W) or (C, H, W), "
                         f"got shape {x.shape}")
    return x, False


def _unbatched(y, was_unbatched):
    return reshape(y, y.shape[1:]) if was_unbatched else y


def _check_window(op, x, kernel, padding, dilation, out_size, what="kernel"):
    """The (dilated) kernel must fit inside the padded input: otherwise there is no output pixel."""
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    padded = tuple(h + 2 * p for h, p in zip(x.shape[2:], padding))
    if builtins.any(s > h for s, h in zip(span, padded)) or builtins.min(out_size) < 1:
        raise ValueError(
            f"{op}: {what} {kernel} with dilation {dilation} spans {span}, larger than the padded "
            f"input {padded} (input {x.shape}, padding {padding}): the output size would be "
            f"{out_size}; use a smaller {what}, more padding or a larger input")


def _conv_inputs(op, x, weight, bias, in_axis):
    """Tensors for (x, weight, bias), x batched, and the checks that a shape mistake needs."""
    x, weight = as_tensor(x), as_tensor(weight)
    if weight.ndim != 4:
        layout = ("(out_channels, in_channels, kH, kW)" if in_axis == 1
                  else "(in_channels, out_channels, kH, kW)")
        raise ValueError(f"{op}: weight must be {layout}, got shape {weight.shape}")
    x, unbatched = _batched(op, x)
    if x.shape[1] != weight.shape[in_axis]:
        raise ValueError(
            f"{op}: input {x.shape} has {x.shape[1]} channels, but weight {weight.shape} expects "
            f"{weight.shape[in_axis]} (axis {in_axis} of the weight is the input channels)")
    out_channels = weight.shape[1 - in_axis]
    if bias is not None:
        bias = as_tensor(bias, weight)
        if bias.shape != (out_channels,):
            raise ValueError(f"{op}: bias must have shape ({out_channels},) for weight "
                             f"{weight.shape}, got {bias.shape}")
    return x, weight, bias, unbatched


# --------------------------------------------------------------------------------------------------
# Padding
# --------------------------------------------------------------------------------------------------

class Pad(Function):
    """y = x surrounded by a constant: ``widths`` holds (before, after) >= 0 for every axis.

    y is x on an inner block and the constant elsewhere, so dy/dx is 1 on that block: the gradient
    is the block's slice of the upstream gradient.
    """

    name = "pad"

    def __init__(self, widths, value=0.0):
        self.widths, self.value = tuple(widths), value

    def _inner(self, shape):
        return tuple(slice(before, before + d) for (before, _), d in zip(self.widths, shape))

    def forward(self, x):
        shape = tuple(d + before + after for d, (before, after) in zip(x.shape, self.widths))
        out = B.of(x).full(shape, self.value, x.dtype)
        out[self._inner(x.shape)] = x
        return out

    def backward(self, gy):
        return gy[self._inner(self.inputs[0].shape)]

    def backward_arrays(self, gy):
        return gy[self._inner(self.inputs[0].shape)]


def pad(x, pad, mode="constant", value=0.0):
    """``x`` padded with ``value``, as PyTorch's ``F.pad(x, pad, mode="constant", value)``.

    ``pad`` lists (before, after) widths from the last axis backwards: ``(left, right)`` pads the
    last axis, ``(left, right, top, bottom)`` the last two, and so on.  A negative width removes
    elements instead.  Only ``mode="constant"`` is implemented.
    """
    x = as_tensor(x)
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is implemented, not {mode!r}")
    pad = tuple(pad)
    if (len(pad) % 2 or len(pad) > 2 * x.ndim
            or not builtins.all(isinstance(p, int) and not isinstance(p, bool) for p in pad)):
        raise ValueError(f"pad: pad must be an even number (at most {2 * x.ndim}) of ints for an "
                         f"input of shape {x.shape}, got {pad!r}")
    widths = [(0, 0)] * x.ndim
    for k in range(len(pad) // 2):
        widths[x.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    new_shape = tuple(d + a + b for d, (a, b) in zip(x.shape, widths))
    if builtins.min(new_shape, default=0) < 0:
        raise ValueError(f"pad: padding {pad!r} would give input {x.shape} the shape {new_shape}")
    if builtins.any(a < 0 or b < 0 for a, b in widths):      # negative widths crop
        x = x[tuple(slice(builtins.max(-a, 0), d - builtins.max(-b, 0))
                    for d, (a, b) in zip(x.shape, widths))]
    grow = tuple((builtins.max(a, 0), builtins.max(b, 0)) for a, b in widths)
    if builtins.any(a or b for a, b in grow):
        x = Pad(grow, 0.0 if value is None else value)(x)
    return x


# --------------------------------------------------------------------------------------------------
# The references: im2col in minigen's own ops, then a matmul
# --------------------------------------------------------------------------------------------------

def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """The windows of ``x`` (N, C, H, W) as columns: a (N, C*kH*kW, OH*OW) tensor.

    Column ``p*OW + q`` of image n holds the window under output pixel (p, q), channel by channel:
    its entry ``c*kH*kW + i*kW + j`` is ``x_pad[n, c, p*sh + i*dh, q*sw + j*dw]``.  Written with
    slicing, ``stack`` and ``reshape`` only (one strided slice per kernel position), so it is
    differentiable to any order; the fused ops build the same buffer from a strided view.
    """
    kh, kw = _pair(kernel_size, "kernel_size", "im2col", 1)
    sh, sw = _pair(stride, "stride", "im2col", 1)
    ph, pw = _pair(padding, "padding", "im2col")
    dh, dw = _pair(dilation, "dilation", "im2col", 1)
    n, c = x.shape[:2]
    oh, ow = _conv_out(x.shape[2:], (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    x = pad(x, (pw, pw, ph, ph))
    patches = []
    for i in range(kh):
        for j in range(kw):
            top, left = i * dh, j * dw     # this kernel position's offset in every window
            patches.append(x[:, :, top:top + sh * (oh - 1) + 1:sh,
                             left:left + sw * (ow - 1) + 1:sw])
    cols = stack(patches, axis=2)          # (N, C, kH*kW, OH, OW)
    return reshape(cols, (n, c * kh * kw, oh * ow))


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """conv2d as im2col and one matmul, in primitive ops (the readable form; N, C, H, W input)."""
    o, c, kh, kw = weight.shape
    n = x.shape[0]
    out_size = _conv_out(x.shape[2:], (kh, kw), _pair(stride, "stride", "conv2d"),
                         _pair(padding, "padding", "conv2d"), _pair(dilation, "dilation", "conv2d"))
    cols = im2col(x, (kh, kw), stride, padding, dilation)       # (N, C*kH*kW, OH*OW)
    y = matmul(reshape(weight, (o, c * kh * kw)), cols)          # (N, O, OH*OW)
    y = reshape(y, (n, o) + out_size)
    return y if bias is None else y + reshape(bias, (1, o, 1, 1))


def _spread(x, stride):
    """x (N, C, H, W) with s - 1 zeros between neighbours: (N, C, (H-1) sh + 1, (W-1) sw + 1).

    That is zeros with x written at every s-th row and column - the backward of the strided slice
    ``y[:, :, ::sh, ::sw]``, which is the primitive op used here (its own backward is that slice).
    """
    sh, sw = stride
    if (sh, sw) == (1, 1):
        return x
    n, c, h, w = x.shape
    index = (slice(None), slice(None), slice(None, None, sh), slice(None, None, sw))
    return GetItemGrad(index, (n, c, (h - 1) * sh + 1, (w - 1) * sw + 1))(x)


def conv_transpose2d_reference(x, weight, bias=None, stride=1, padding=0, output_padding=0,
                               dilation=1):
    """conv_transpose2d as an ordinary convolution (the readable form; N, C, H, W input).

    Spreading the input out by the stride and padding it by d (k - 1) - p on each side (plus
    ``output_padding`` at the bottom and right; a negative width crops), a stride-1 convolution with
    the kernel flipped and its two channel axes swapped gives the transposed convolution.
    """
    _, _, kh, kw = weight.shape
    sh, sw = _pair(stride, "stride", "conv_transpose2d")
    ph, pw = _pair(padding, "padding", "conv_transpose2d")
    oph, opw = _pair(output_padding, "output_padding", "conv_transpose2d")
    dh, dw = _pair(dilation, "dilation", "conv_transpose2d")
    spread = _spread(x, (sh, sw))
    eh, ew = dh * (kh - 1) - ph, dw * (kw - 1) - pw
    spread = pad(spread, (ew, ew + opw, eh, eh + oph))
    flipped = transpose(weight[:, :, ::-1, ::-1], (1, 0, 2, 3))   # (C_out, C_in, kH, kW)
    return conv2d_reference(spread, flipped, bias, stride=1, padding=0, dilation=(dh, dw))


def max_pool2d_reference(x, kernel_size, stride=None, padding=0, dilation=1):
    """max_pool2d as the maximum over im2col's windows of x padded with -inf, in primitive ops.

    (On a tie, ``max`` shares the gradient among the tied elements; the fused op gives it all to
    the first, as PyTorch does.)
    """
    kh, kw = _pair(kernel_size, "kernel_size", "max_pool2d", 1)
    ph, pw = _pair(padding, "padding", "max_pool2d")
    n, c = x.shape[:2]
    stride = (kh, kw) if stride is None else stride
    cols = im2col(pad(x, (pw, pw, ph, ph), value=-math.inf), (kh, kw), stride, 0, dilation)
    return reshape(cols, (n, c, kh * kw) + _pool_out(x, (kh, kw), stride, (ph, pw), dilation)).max(
        axis=2)


def avg_pool2d_reference(x, kernel_size, stride=None, padding=0):
    """avg_pool2d as the mean over im2col's windows of x padded with zeros, in primitive ops."""
    kh, kw = _pair(kernel_size, "kernel_size", "avg_pool2d", 1)
    n, c = x.shape[:2]
    stride = (kh, kw) if stride is None else stride
    cols = im2col(x, (kh, kw), stride, padding, 1)
    return reshape(cols, (n, c, kh * kw) + _pool_out(x, (kh, kw), stride, padding, 1)).mean(axis=2)


def _pool_out(x, kernel, stride, padding, dilation):
    return _conv_out(x.shape[2:], kernel, _pair(stride, "stride", "pool"),
                     _pair(padding, "padding", "pool"), _pair(dilation, "dilation", "pool"))


# --------------------------------------------------------------------------------------------------
# Array kernels of the fused ops: windows as a view, the im2col buffer, col2im
# --------------------------------------------------------------------------------------------------

class _Geometry:
    """How windows move over an image: kernel size, stride, padding, dilation (all pairs)."""

    __slots__ = ("kernel", "stride", "padding", "dilation")

    def __init__(self, kernel, stride, padding, dilation):
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)


def _pad_array(x, padding, value=0.0, batch_last=False):
    """A (A, B, H, W) array with ``padding`` rows and columns of ``value`` added on each side;
    ``batch_last``: laid out in memory as (B, H, W, A), A varying fastest (a copy if need be)."""
    ph, pw = padding
    if ph == 0 and pw == 0 and (not batch_last or _is_batch_last(x)):
        return x
    a, b, h, w = x.shape
    shape = (a, b, h + 2 * ph, w + 2 * pw)
    if batch_last:
        out = B.namespace(x).permute_dims(B.of(x).full(shape[1:] + shape[:1], value, x.dtype),
                                          (3, 0, 1, 2))
    else:
        out = B.of(x).full(shape, value, x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def _is_batch_last(x):
    """True when x's first axis varies fastest in memory (NumPy and CuPy tell by the strides)."""
    strides = getattr(x, "strides", None)
    return strides is not None and strides[0] == min(strides)


def _reshape_array(array, shape):
    return B.namespace(array).reshape(array, shape)


def _unfold(x, geom, out_size, value=0.0, batch_last=False):
    """The windows of x (A, B, H, W) padded with ``value``: (A, B, kH, kW, OH, OW), a strided view
    of the padded array (on NumPy and CuPy; see ``backend.windows``).  ``batch_last`` as in
    ``_pad_array``."""
    return B.of(x).windows(_pad_array(x, geom.padding, value, batch_last), geom.kernel,
                           geom.stride, geom.dilation, out_size)


def _fold(cols, geom, size):
    """col2im, the adjoint of ``_unfold`` (whose windows it takes with the B axis moved last):
    columns (A, kH, kW, OH, OW, B) -> an (A, H, W, B) image
    where every window's values are added back where the window lies, overlaps summed, padding
    dropped.  A scatter-add done as one strided ``+=`` per kernel position: within one position the
    windows never touch the same pixel twice, so the plain ``+=`` is exact (and much faster than a
    general scatter-add such as ``numpy.add.at``).  The layout, B last, is the memory order: the
    convolutions keep the batch there (rows of N contiguous values per add), the pools pass B = 1.
    """
    a, kh, kw, oh, ow, b = cols.shape
    (h, w), (ph, pw), (sh, sw), (dh, dw) = size, geom.padding, geom.stride, geom.dilation
    out = B.of(cols).zeros((a, h + 2 * ph, w + 2 * pw, b), like=cols)
    for i in range(kh):
        for j in range(kw):
            out[:, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                j * dw:j * dw + sw * (ow - 1) + 1:sw, :] += cols[:, i, j, ...]
    return out[:, ph:ph + h, pw:pw + w, :]


def _fold_images(cols, geom, size):
    """_fold for the pools' windows (N, C, kH, kW, OH, OW) -> (N, C, H, W)."""
    n, c, kh, kw, oh, ow = cols.shape
    image = _fold(_reshape_array(cols, (n * c, kh, kw, oh, ow, 1)), geom, size)
    return _reshape_array(image, (n, c) + tuple(size))


# The fused ops keep the batch axis last in memory: columns are ordered (OH, OW, N), and outputs
# are (N, C, H, W) views of (C, H, W, N) arrays.  Every copy (the im2col buffer, col2im's adds, the
# output gradient's reshape) then moves rows of N contiguous values; with N first they would move
# rows of OW values (7 for a 7 x 7 image) a stride apart.  The adds of col2im index the arrays in
# that memory order too, rather than through transposed views (the README's Performance section
# has the measurements).

def _batch_last(x):
    """(N, C, H, W) -> (C, H*W*N): a view when x is one of these ops' outputs, else one copy."""
    xp = B.namespace(x)
    n, c, h, w = x.shape           # sizes spelled out: a -1 cannot be inferred when C is 0
    return xp.reshape(xp.permute_dims(x, (1, 2, 3, 0)), (c, h * w * n))


def _batch_first(y, shape):
    """(C, H*W*N) -> a (N, C, H, W) view, for ``shape`` (N, C, H, W)."""
    xp = B.namespace(y)
    n, c, h, w = shape
    return xp.permute_dims(xp.reshape(y, (c, h, w, n)), (3, 0, 1, 2))


def _im2col_arrays(x, geom, out_size):
    """The im2col buffer of x (N, C, H, W): (C*kH*kW, OH*OW*N), one column per output pixel of the
    whole batch.  The windows are a view; this reshape is the one copy."""
    xp = B.namespace(x)
    n, c = x.shape[:2]
    kh, kw = geom.kernel
    # (C, kH, kW, OH, OW, N): still a view, of x (or of a padded copy) laid out batch last
    windows = xp.permute_dims(_unfold(x, geom, out_size, batch_last=True), (1, 2, 3, 4, 5, 0))
    return xp.reshape(windows, (c * kh * kw, out_size[0] * out_size[1] * n))


def _conv_arrays(x, weight, bias, geom, out_size, cols=None):
    """y = conv2d(x, weight) + bias on arrays as one GEMM; returns (y, the im2col buffer)."""
    xp = B.namespace(x)
    o = weight.shape[0]
    if cols is None:
        cols = _im2col_arrays(x, geom, out_size)
    y = xp.matmul(xp.reshape(weight, (o, cols.shape[0])), cols)        # (O, OH*OW*N)
    if bias is not None:
        y += xp.reshape(bias, (o, 1))
    return _batch_first(y, (x.shape[0], o) + tuple(out_size)), cols


def _weight_grad_arrays(x, gy, geom, cols=None):
    """dL/dweight of conv2d given gy = dL/dy: gy (O, OH*OW*N) @ im2col(x)^T, one GEMM."""
    xp = B.namespace(gy)
    o, c = gy.shape[1], x.shape[1]
    if cols is None:
        cols = _im2col_arrays(x, geom, gy.shape[2:])
    gw = xp.matmul(_batch_last(gy), xp.permute_dims(cols, (1, 0)))
    return xp.reshape(gw, (o, c) + geom.kernel)


def _transpose_arrays(x, weight, bias, geom, size):
    """y = conv_transpose2d(x, weight) + bias on arrays, of spatial ``size``: one GEMM making the
    columns (C_out*kH*kW, H*W*N) = weight^T @ x, then col2im."""
    xp = B.namespace(x)
    n, cin, h, w = x.shape
    cout = weight.shape[1]
    kh, kw = geom.kernel
    cols = xp.matmul(xp.permute_dims(xp.reshape(weight, (cin, cout * kh * kw)), (1, 0)),
                     _batch_last(x))
    y = _fold(xp.reshape(cols, (cout, kh, kw, h, w, n)), geom, size)   # (C_out, H_out, W_out, N)
    if bias is not None:
        y = y + xp.reshape(bias, (cout, 1, 1, 1))
    return xp.permute_dims(y, (3, 0, 1, 2))


# --------------------------------------------------------------------------------------------------
# The fused ops.  Three Functions that are each other's derivatives.
# --------------------------------------------------------------------------------------------------

class Conv2dFunction(Function):
    """y = conv2d(x, weight) (+ bias) by a strided view and one GEMM (see the module docstring).

    Backward, in the fused ops themselves (so that it can be differentiated again):
        dL/dx      = conv_transpose2d(gy, weight)       of x's size
        dL/dweight = Conv2dWeightGrad(x, gy)            gy @ im2col(x)^T (reusing the forward's)
        dL/dbias   = gy summed over the batch and the pixels
    ``out_size`` may be smaller than the full output (only the first rows and columns are made).
    """

    name = "conv2d"

    def __init__(self, geom, out_size):
        self.geom, self.out_size = geom, tuple(out_size)

    def forward(self, x, weight, bias=None):
        y, self.cols = _conv_arrays(x, weight, bias, self.geom, self.out_size)
        return y

    def backward(self, gy):
        x, weight = self.inputs[:2]
        geom = self.geom
        gx = gw = None
        if x.requires_grad:
            gx = ConvTranspose2dFunction(geom, x.shape[2:])(gy, weight)
        if weight.requires_grad:
            gw = Conv2dWeightGrad(geom, self.cols)(x, gy)
        return (gx, gw) + _bias_grad(self.inputs, gy)

    def backward_arrays(self, gy):
        x, weight = self.inputs[:2]
        geom = self.geom
        gx = (_transpose_arrays(gy, weight.data, None, geom, x.shape[2:])
              if x.requires_grad else None)
        gw = _weight_grad_arrays(x.data, gy, geom, self.cols) if weight.requires_grad else None
        return (gx, gw) + _bias_grad_array(self.inputs, gy)


class ConvTranspose2dFunction(Function):
    """y = conv_transpose2d(x, weight) (+ bias) of spatial size ``size``: one GEMM and col2im.

    It is the input gradient of a convolution, so its backward is:
        dL/dx      = conv2d(gy, weight)                 (the convolution it transposes)
        dL/dweight = Conv2dWeightGrad(gy, x)            (gy plays the image, x the output gradient)
        dL/dbias   = gy summed over the batch and the pixels
    """

    name = "conv_transpose2d"

    def __init__(self, geom, size):
        self.geom, self.size = geom, tuple(size)

    def forward(self, x, weight, bias=None):
        return _transpose_arrays(x, weight, bias, self.geom, self.size)

    def backward(self, gy):
        x, weight = self.inputs[:2]
        geom = self.geom
        gx = Conv2dFunction(geom, x.shape[2:])(gy, weight) if x.requires_grad else None
        gw = Conv2dWeightGrad(geom)(gy, x) if weight.requires_grad else None
        return (gx, gw) + _bias_grad(self.inputs, gy)

    def backward_arrays(self, gy):
        x, weight = self.inputs[:2]
        geom = self.geom
        gx = _conv_arrays(gy, weight.data, None, geom, x.shape[2:])[0] if x.requires_grad else None
        gw = _weight_grad_arrays(gy, x.data, geom) if weight.requires_grad else None
        return (gx, gw) + _bias_grad_array(self.inputs, gy)


class Conv2dWeightGrad(Function):
    """gw = dL/dweight of y = conv2d(x, weight), given gy = dL/dy:

        gw[o, c, i, j] = sum_{n, p, q} gy[n, o, p, q] * x_pad[n, c, p*sh + i*dh, q*sw + j*dw]

    one GEMM, gy (O, N*OH*OW) @ im2col(x)^T.  It is linear in x and in gy, so for an upstream
    gradient G of the weight's shape its own gradients are convolutions again:

        dL/dx = conv_transpose2d(gy, G)      dL/dgy = conv2d(x, G)
    """

    name = "conv2d_weight_grad"

    def __init__(self, geom, cols=None):
        self.geom, self.cols = geom, cols

    def forward(self, x, gy):
        cols, self.cols = self.cols, None      # the forward's buffer: used once, not kept
        return _weight_grad_arrays(x, gy, self.geom, cols)

    def backward(self, g):
        x, gy = self.inputs
        gx = ConvTranspose2dFunction(self.geom, x.shape[2:])(gy, g) if x.requires_grad else None
        ggy = Conv2dFunction(self.geom, gy.shape[2:])(x, g) if gy.requires_grad else None
        return gx, ggy

    def backward_arrays(self, g):
        x, gy = self.inputs
        gx = (_transpose_arrays(gy.data, g, None, self.geom, x.shape[2:])
              if x.requires_grad else None)
        ggy = (_conv_arrays(x.data, g, None, self.geom, gy.shape[2:])[0]
               if gy.requires_grad else None)
        return gx, ggy


def _bias_grad(inputs, gy):
    if len(inputs) < 3:
        return ()
    return (F.sum(gy, axis=(0, 2, 3)) if inputs[2].requires_grad else None,)


def _bias_grad_array(inputs, gy):
    if len(inputs) < 3:
        return ()
    return (B.namespace(gy).sum(gy, axis=(0, 2, 3)) if inputs[2].requires_grad else None,)


# --------------------------------------------------------------------------------------------------
# conv2d and conv_transpose2d: check, then the fused op or the reference
# --------------------------------------------------------------------------------------------------

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """A 2-D convolution (cross-correlation, as in PyTorch): x (N, C, H, W) or (C, H, W), weight
    (O, C, kH, kW), bias (O,) or None; returns (N, O, OH, OW) with
    OH = floor((H + 2 padding - dilation (kH - 1) - 1) / stride) + 1 (likewise OW).

    ``padding`` may also be "valid" (none) or "same" (as PyTorch: stride 1 only, the output has the
    input's size; d (k - 1) zeros in all, the odd one at the bottom or right).
    With fusion on (the default) one fused op; with ``mg.set_fusion(False)`` ``conv2d_reference``.
    """
    op = "conv2d"
    stride = _pair(stride, "stride", op, 1)
    dilation = _pair(dilation, "dilation", op, 1)
    x, weight, bias, unbatched = _conv_inputs(op, x, weight, bias, in_axis=1)
    kernel = weight.shape[2:]
    if isinstance(padding, str):
        x, padding = _string_padding(op, x, padding, kernel, stride, dilation)
    padding = _pair(padding, "padding", op)
    out_size = _conv_out(x.shape[2:], kernel, stride, padding, dilation)
    _check_window(op, x, kernel, padding, dilation, out_size)
    if is_fusion_enabled():
        inputs = (x, weight) if bias is None else (x, weight, bias)
        y = Conv2dFunction(_Geometry(kernel, stride, padding, dilation), out_size)(*inputs)
    else:
        y = conv2d_reference(x, weight, bias, stride, padding, dilation)
    return _unbatched(y, unbatched)


def _string_padding(op, x, padding, kernel, stride, dilation):
    """PyTorch's padding="valid" (0) and "same": the total d (k - 1) split in two, the odd one added
    at the end (bottom, right) by padding x itself.  Returns (x, the symmetric padding left)."""
    if padding == "valid":
        return x, 0
    if padding != "same":
        raise ValueError(f"{op}: padding must be an int, a pair, 'valid' or 'same', "
                         f"not {padding!r}")
    if stride != (1, 1):
        raise ValueError(f"{op}: padding='same' needs stride 1 (got stride {stride}): a strided "
                         "convolution cannot keep the input's size; give the padding as numbers")
    total = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
    if total[0] % 2 or total[1] % 2:
        x = pad(x, (0, total[1] % 2, 0, total[0] % 2))
    return x, (total[0] // 2, total[1] // 2)


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, dilation=1):
    """A 2-D transposed convolution (the input gradient of conv2d, used forward): x (N, C_in, H, W)
    or (C_in, H, W), weight (C_in, C_out, kH, kW), bias (C_out,) or None; returns (N, C_out, OH, OW)
    with OH = (H - 1) stride - 2 padding + dilation (kH - 1) + output_padding + 1 (likewise OW).

    ``output_padding`` (smaller than the stride or the dilation) adds rows and columns at the bottom
    and right: a strided convolution maps several input sizes to one output size; this picks one.
    With fusion on one fused op; with ``mg.set_fusion(False)`` ``conv_transpose2d_reference``.
    """
    op = "conv_transpose2d"
    stride = _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op)
    output_padding = _pair(output_padding, "output_padding", op)
    dilation = _pair(dilation, "dilation", op, 1)
    x, weight, bias, unbatched = _conv_inputs(op, x, weight, bias, in_axis=0)
    kernel = weight.shape[2:]
    size = _transpose_out(x.shape[2:], kernel, stride, padding, output_padding, dilation)
    if builtins.any(e >= s and e >= d for e, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"{op}: output_padding {output_padding} must be smaller than the stride {stride} or "
            f"the dilation {dilation} (input {x.shape}, weight {weight.shape}: the output size "
            f"would be {size}, which no convolution with that stride maps back to the input's)")
    if builtins.min(size) < 1:
        raise ValueError(
            f"{op}: input {x.shape} with weight {weight.shape}, stride {stride}, padding "
            f"{padding}, output_padding {output_padding} and dilation {dilation} gives the output "
            f"size {size}, below 1; use less padding")
    if is_fusion_enabled():
        inputs = (x, weight) if bias is None else (x, weight, bias)
        y = ConvTranspose2dFunction(_Geometry(kernel, stride, padding, dilation), size)(*inputs)
    else:
        y = conv_transpose2d_reference(x, weight, bias, stride, padding, output_padding, dilation)
    return _unbatched(y, unbatched)


# --------------------------------------------------------------------------------------------------
# Pooling
# --------------------------------------------------------------------------------------------------

class MaxPool2dFunction(Function):
    """y = the maximum of each window (x padded with -inf).  dy/dx is 1 at the window's maximum and
    0 elsewhere: the gradient of each output pixel goes to the element that won (the first one on a
    tie, as PyTorch), remembered in ``choice``.  Scattering it back (``_MaxPoolScatter``) and
    picking the winners (``_MaxPoolGather``) are linear and each other's adjoints, so the backward
    can be differentiated again.
    """

    name = "max_pool2d"

    def __init__(self, geom, out_size):
        self.geom, self.out_size = geom, tuple(out_size)

    def forward(self, x):
        xp = B.namespace(x)
        n, c = x.shape[:2]
        kh, kw = self.geom.kernel
        windows = _unfold(x, self.geom, self.out_size, value=-math.inf)
        flat = xp.reshape(windows, (n, c, kh * kw) + self.out_size)   # one axis for argmax: a copy
        self.choice = xp.argmax(flat, axis=2)                         # (N, C, OH, OW)
        return xp.max(flat, axis=2)

    def _winners(self, like):
        """1.0 at each window's winning position, else 0.0: (N, C, kH*kW, OH, OW)."""
        kk = self.geom.kernel[0] * self.geom.kernel[1]
        positions = _reshape_array(B.of(like).arange(kk), (kk, 1, 1))
        return B.namespace(like).astype(self.choice[:, :, None, ...] == positions, like.dtype)

    def backward(self, gy):
        x = self.inputs[0]
        return _MaxPoolScatter(self.geom, self._winners(x.data), x.shape[2:])(gy)

    def backward_arrays(self, gy):
        x = self.inputs[0]
        return _scatter_winners(gy, self._winners(x.data), self.geom, x.shape[2:])


def _scatter_winners(g, winners, geom, size):
    """g (N, C, OH, OW) placed at each window's winner, windows folded back: (N, C, H, W)."""
    n, c, oh, ow = g.shape
    cols = winners * g[:, :, None, ...]                               # (N, C, kH*kW, OH, OW)
    return _fold_images(_reshape_array(cols, (n, c) + geom.kernel + (oh, ow)), geom, size)


def _gather_winners(g, winners, geom):
    """Each window's winner of g (N, C, H, W): (N, C, OH, OW)."""
    n, c, kk, oh, ow = winners.shape
    windows = _reshape_array(_unfold(g, geom, (oh, ow)), (n, c, kk, oh, ow))
    return B.namespace(g).sum(windows * winners, axis=2)


class _MaxPoolScatter(Function):
    """The gradient of max pooling: g at each window's winner, zero elsewhere (linear in g); its own
    gradient picks the winners' values (``_MaxPoolGather``)."""

    name = "max_pool2d_backward"

    def __init__(self, geom, winners, size):
        self.geom, self.winners, self.size = geom, winners, size

    def forward(self, g):
        return _scatter_winners(g, self.winners, self.geom, self.size)

    def backward(self, gg):
        return _MaxPoolGather(self.geom, self.winners, self.size)(gg)

    def backward_arrays(self, gg):
        return _gather_winners(gg, self.winners, self.geom)


class _MaxPoolGather(Function):
    """Each window's winning value (linear); its gradient scatters back (``_MaxPoolScatter``)."""

    name = "max_pool2d_gather"

    def __init__(self, geom, winners, size):
        self.geom, self.winners, self.size = geom, winners, size

    def forward(self, g):
        return _gather_winners(g, self.winners, self.geom)

    def backward(self, gy):
        return _MaxPoolScatter(self.geom, self.winners, self.size)(gy)

    def backward_arrays(self, gy):
        return _scatter_winners(gy, self.winners, self.geom, self.size)


class AvgPool2dFunction(Function):
    """y = the mean of each window of x padded with zeros (the padding counts in the mean, as
    PyTorch's default ``count_include_pad=True``).  dy/dx = 1 / (kH kW) for every element of the
    window: the backward spreads g / (kH kW) over each window and folds (``_AvgPoolSpread``); the
    two are each other's adjoints."""

    name = "avg_pool2d"

    def __init__(self, geom, out_size):
        self.geom, self.out_size = geom, tuple(out_size)

    def forward(self, x):
        return B.namespace(x).mean(_unfold(x, self.geom, self.out_size), axis=(2, 3))

    def backward(self, gy):
        return _AvgPoolSpread(self.geom, self.inputs[0].shape[2:])(gy)

    def backward_arrays(self, gy):
        return _spread_average(gy, self.geom, self.inputs[0].shape[2:])


def _spread_average(g, geom, size):
    xp = B.namespace(g)
    kh, kw = geom.kernel
    n, c, oh, ow = g.shape
    cols = xp.broadcast_to(xp.reshape(g * (1.0 / (kh * kw)), (n, c, 1, 1, oh, ow)),
                           (n, c, kh, kw, oh, ow))
    return _fold_images(cols, geom, size)


class _AvgPoolSpread(Function):
    """The gradient of average pooling: g / (kH kW) added over each window (linear in g); its own
    gradient is average pooling again."""

    name = "avg_pool2d_backward"

    def __init__(self, geom, size):
        self.geom, self.size = geom, tuple(size)

    def forward(self, g):
        return _spread_average(g, self.geom, self.size)

    def backward(self, gg):
        return AvgPool2dFunction(self.geom, self.inputs[0].shape[2:])(gg)

    def backward_arrays(self, gg):
        return B.namespace(gg).mean(_unfold(gg, self.geom, self.inputs[0].shape[2:]), axis=(2, 3))


def _pool_args(op, x, kernel_size, stride, padding, dilation):
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op)
    dilation = _pair(dilation, "dilation", op, 1)
    x, unbatched = _batched(op, as_tensor(x))
    if builtins.any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    out_size = _conv_out(x.shape[2:], kernel, stride, padding, dilation)
    _check_window(op, x, kernel, padding, dilation, out_size, what="kernel_size")
    return x, unbatched, _Geometry(kernel, stride, padding, dilation), out_size


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1):
    """The maximum over each (kH, kW) window: x (N, C, H, W) or (C, H, W) -> (N, C, OH, OW).

    As PyTorch: ``stride`` defaults to the kernel size, the padding (at most half the kernel) is
    -inf so it never wins, and OH = floor((H + 2 padding - dilation (kH - 1) - 1) / stride) + 1.
    """
    x, unbatched, geom, out_size = _pool_args("max_pool2d", x, kernel_size, stride, padding,
                                              dilation)
    if is_fusion_enabled():
        y = MaxPool2dFunction(geom, out_size)(x)
    else:
        y = max_pool2d_reference(x, geom.kernel, geom.stride, geom.padding, geom.dilation)
    return _unbatched(y, unbatched)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """The mean over each (kH, kW) window: x (N, C, H, W) or (C, H, W) -> (N, C, OH, OW).

    As PyTorch: ``stride`` defaults to the kernel size, and the zero padding (at most half the
    kernel) counts in the mean (``count_include_pad=True``).
    """
    x, unbatched, geom, out_size = _pool_args("avg_pool2d", x, kernel_size, stride, padding, 1)
    if is_fusion_enabled():
        y = AvgPool2dFunction(geom, out_size)(x)
    else:
        y = avg_pool2d_reference(x, geom.kernel, geom.stride, geom.padding)
    return _unbatched(y, unbatched)

"""Convolutions, transposed convolutions, pooling, padding (minigen.conv, minigen.nn conv layers).

Every op is checked against a direct nested-loop definition written here in NumPy (the formula of
the docstring, one output pixel and one kernel position at a time), over hypothesis-drawn batch,
channels, image sizes, kernel, stride, padding, dilation and output padding; its gradients against
central differences (float64, first and second order); the fused op against the im2col reference;
on NumPy, on the strict array-API backends (float32 included) and on CuPy when there is a GPU.
"""


import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minigen as mg
from minigen import conv as C

# --------------------------------------------------------------------------------------------------
# Direct definitions (loops over output pixels and kernel positions; the channel sums as products)
# --------------------------------------------------------------------------------------------------


def direct_conv2d(x, w, b, stride, padding, dilation):
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, o, oh, ow))
    for p in range(oh):
        for q in range(ow):
            for i in range(kh):
                for j in range(kw):
                    y[:, :, p, q] += xp[:, :, p * sh + i * dh, q * sw + j * dw] @ w[:, :, i, j].T
    return y if b is None else y + b[None, :, None, None]


def direct_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation):
    """Each input pixel adds its weighted kernel into the output (then the padding is cut off)."""
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    n, _, h, wd = x.shape
    _, cout, kh, kw = w.shape
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    canvas = np.zeros((n, cout, oh + 2 * ph, ow + 2 * pw))
    for r in range(h):
        for s in range(wd):
            for i in range(kh):
                for j in range(kw):
                    canvas[:, :, r * sh + i * dh, s * sw + j * dw] += x[:, :, r, s] @ w[:, :, i, j]
    y = canvas[:, :, ph:ph + oh, pw:pw + ow]
    return y if b is None else y + b[None, :, None, None]


def direct_pool(x, kernel, stride, padding, dilation, reduce, fill):
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    n, c, h, wd = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c, oh, ow))
    for p in range(oh):
        for q in range(ow):
            window = xp[:, :, p * sh:p * sh + dh * (kh - 1) + 1:dh,
                        q * sw:q * sw + dw * (kw - 1) + 1:dw]
            y[:, :, p, q] = reduce(window.reshape(n, c, -1), axis=2)
    return y


# --------------------------------------------------------------------------------------------------
# Drawing cases
# --------------------------------------------------------------------------------------------------

def values(data, shape, label):
    """Float64 values on a 1/64 grid in [-2, 2]."""
    ints = data.draw(st.lists(st.integers(-128, 128), min_size=int(np.prod(shape)),
                              max_size=int(np.prod(shape))), label=label)
    return np.array(ints, dtype=np.float64).reshape(shape) / 64


def distinct_values(data, shape, label):
    """Distinct values (no ties at a maximum, where max pooling has no derivative)."""
    size = int(np.prod(shape))
    ints = data.draw(st.lists(st.integers(-400, 400), min_size=size, max_size=size, unique=True),
                     label=label)
    return np.array(ints, dtype=np.float64).reshape(shape) / 64


def pairs(data, low, high, label):
    return tuple(data.draw(st.integers(low, high), label=f"{label}[{k}]") for k in "hw")


def _layer_sizes(data, max_batch, max_channels):
    """Batch, input and output channels, kernel, stride and dilation (pairs) of a layer."""
    n = data.draw(st.integers(1, max_batch), label="batch")
    c = data.draw(st.integers(1, max_channels), label="in_channels")
    o = data.draw(st.integers(1, max_channels), label="out_channels")
    return (n, c, o, pairs(data, 1, 3, "kernel"), pairs(data, 1, 2, "stride"),
            pairs(data, 1, 2, "dilation"))


def conv_case(data, extra=2, max_batch=2, max_channels=2):
    """x, weight, bias and the conv2d arguments (ints or pairs) for a valid convolution."""
    n, c, o, kernel, stride, dilation = _layer_sizes(data, max_batch, max_channels)
    padding = pairs(data, 0, 2, "padding")
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + data.draw(st.integers(0, extra), label="extra")
                 for k, d, p in zip(kernel, dilation, padding))
    x = values(data, (n, c) + size, "x")
    w = values(data, (o, c) + kernel, "weight")
    b = values(data, (o,), "bias") if data.draw(st.booleans(), label="has_bias") else None
    args = dict(stride=_maybe_int(data, stride), padding=_maybe_int(data, padding),
                dilation=_maybe_int(data, dilation))
    return x, w, b, args, (stride, padding, dilation)


def transpose_case(data, max_side=3, max_batch=2, max_channels=2):
    """x, weight, bias and the conv_transpose2d arguments for a valid transposed convolution."""
    n, cin, cout, kernel, stride, dilation = _layer_sizes(data, max_batch, max_channels)
    size = pairs(data, 1, max_side, "size")
    output_padding = tuple(data.draw(st.integers(0, max(s, d) - 1), label="output_padding")
                           for s, d in zip(stride, dilation))
    padding = tuple(
        data.draw(st.integers(0, min(2, ((h - 1) * s + d * (k - 1) + e) // 2)), label="padding")
        for h, s, d, k, e in zip(size, stride, dilation, kernel, output_padding))
    x = values(data, (n, cin) + size, "x")
    w = values(data, (cin, cout) + kernel, "weight")
    b = values(data, (cout,), "bias") if data.draw(st.booleans(), label="has_bias") else None
    args = dict(stride=_maybe_int(data, stride), padding=_maybe_int(data, padding),
                output_padding=_maybe_int(data, output_padding),
                dilation=_maybe_int(data, dilation))
    return x, w, b, args, (stride, padding, output_padding, dilation)


def _maybe_int(data, pair):
    """A pair, or the int it repeats (both spellings must work)."""
    if pair[0] == pair[1] and data.draw(st.booleans(), label="as_int"):
        return pair[0]
    return pair


def tensors(*arrays):
    return [mg.Tensor(a, requires_grad=True) for a in arrays if a is not None]


def conv_fn(has_bias, args, fused=True):
    def fn(x, w, *b):
        with mg.using_fusion(fused):
            return mg.conv2d(x, w, b[0] if has_bias else None, **args)
    return fn


def transpose_fn(has_bias, args, fused=True):
    def fn(x, w, *b):
        with mg.using_fusion(fused):
            return mg.conv_transpose2d(x, w, b[0] if has_bias else None, **args)
    return fn


def assert_same_gradients(fn_a, fn_b, inputs, seed=0):
    """Both functions give the same values and the same gradients for one random upstream."""
    ya, yb = fn_a(*inputs), fn_b(*inputs)
    np.testing.assert_allclose(ya.numpy(), yb.numpy(), rtol=1e-10, atol=1e-10)
    u = mg.Tensor(np.random.default_rng(seed).standard_normal(ya.shape))
    for ga, gb in zip(mg.grad(ya, inputs, grad_outputs=u), mg.grad(yb, inputs, grad_outputs=u)):
        np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# conv2d
# --------------------------------------------------------------------------------------------------

@given(data=st.data())
def test_conv2d_matches_direct_definition_and_central_differences(backend, data):
    x, w, b, args, pair_args = conv_case(data)
    inputs = tensors(x, w, b)
    fused, reference = conv_fn(b is not None, args), conv_fn(b is not None, args, fused=False)
    expected = direct_conv2d(x, w, b, *pair_args)
    y = fused(*inputs)
    assert y.shape == expected.shape and y.device == inputs[0].device
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(fused, inputs)
    assert_same_gradients(fused, reference, inputs)
    for t, original in zip(inputs, (x, w, b)):
        np.testing.assert_array_equal(t.numpy(), original)   # nothing was written into an input


@settings(max_examples=8)
@given(data=st.data())
def test_conv2d_reference_gradients(data):
    x, w, b, args, _ = conv_case(data, extra=1, max_batch=1)
    assert mg.gradcheck(conv_fn(b is not None, args, fused=False), tensors(x, w, b))


@settings(max_examples=8)
@given(data=st.data())
def test_conv2d_second_derivatives(backend, data):
    x, w, b, args, _ = conv_case(data, extra=1, max_batch=1)
    assert mg.gradgradcheck(conv_fn(b is not None, args), tensors(x, w, b))


# --------------------------------------------------------------------------------------------------
# conv_transpose2d
# --------------------------------------------------------------------------------------------------

@given(data=st.data())
def test_conv_transpose2d_matches_direct_definition_and_central_differences(backend, data):
    x, w, b, args, pair_args = transpose_case(data)
    inputs = tensors(x, w, b)
    fused = transpose_fn(b is not None, args)
    reference = transpose_fn(b is not None, args, fused=False)
    expected = direct_conv_transpose2d(x, w, b, *pair_args)
    y = fused(*inputs)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(fused, inputs)
    assert_same_gradients(fused, reference, inputs)


@settings(max_examples=8)
@given(data=st.data())
def test_conv_transpose2d_reference_gradients(data):
    x, w, b, args, _ = transpose_case(data)
    assert mg.gradcheck(transpose_fn(b is not None, args, fused=False), tensors(x, w, b))


@settings(max_examples=8)
@given(data=st.data())
def test_conv_transpose2d_second_derivatives(backend, data):
    x, w, b, args, _ = transpose_case(data)
    assert mg.gradgradcheck(transpose_fn(b is not None, args), tensors(x, w, b))


@settings(max_examples=5)
@given(data=st.data())
def test_reference_forms_have_second_derivatives(data):
    x, w, b, args, _ = conv_case(data, extra=1, max_batch=1, max_channels=1)
    assert mg.gradgradcheck(conv_fn(b is not None, args, fused=False), tensors(x, w, b))
    x, w, b, args, _ = transpose_case(data, max_side=2, max_batch=1, max_channels=1)
    assert mg.gradgradcheck(transpose_fn(b is not None, args, fused=False), tensors(x, w, b))


# --------------------------------------------------------------------------------------------------
# The array backward (used by the engine when no second derivative is built) equals the Tensor one
# --------------------------------------------------------------------------------------------------

def _arrays_equal_tensor_backward(y, seed=0):
    f = y.creator
    gy = mg.Tensor(np.random.default_rng(seed).standard_normal(y.shape))
    from_tensors = f.backward(gy)
    from_arrays = f.backward_arrays(gy.data)
    from_tensors = from_tensors if isinstance(from_tensors, tuple) else (from_tensors,)
    from_arrays = from_arrays if isinstance(from_arrays, tuple) else (from_arrays,)
    assert len(from_tensors) == len(from_arrays) == len(f.inputs)
    for gt, ga in zip(from_tensors, from_arrays):
        assert (gt is None) == (ga is None)
        if gt is not None:
            np.testing.assert_allclose(mg.Tensor(ga).numpy(), gt.numpy(), rtol=1e-12, atol=1e-12)
    return f


@settings(max_examples=10)
@given(data=st.data())
def test_backward_arrays_equal_backward(backend, data):
    x, w, b, args, _ = conv_case(data)
    inputs = tensors(x, w, b)
    y = conv_fn(b is not None, args)(*inputs)
    f = _arrays_equal_tensor_backward(y)
    gw = C.Conv2dWeightGrad(f.geom)(inputs[0], mg.Tensor(np.ones(y.shape), requires_grad=True))
    _arrays_equal_tensor_backward(gw)
    x, w, b, args, _ = transpose_case(data)
    _arrays_equal_tensor_backward(transpose_fn(b is not None, args)(*tensors(x, w, b)))
    for pool in (mg.max_pool2d, mg.avg_pool2d):   # the pools, and their backward's backward
        x, args, _ = pool_case(data, dilated=pool is mg.max_pool2d)
        (t,) = tensors(x)
        y = pool(t, **args)
        _arrays_equal_tensor_backward(y)
        (g,) = mg.grad(y, t, grad_outputs=mg.Tensor(np.ones(y.shape), requires_grad=True),
                       create_graph=True)
        _arrays_equal_tensor_backward(g)
    _arrays_equal_tensor_backward(mg.pad(t, (1, 2, 0, 1)))


# --------------------------------------------------------------------------------------------------
# float32 on the strict no-float64 device: nothing is promoted
# --------------------------------------------------------------------------------------------------

@settings(max_examples=10)
@given(data=st.data())
def test_float32_stays_float32(backend32, data):
    x, w, b, args, pair_args = conv_case(data)
    inputs = [mg.Tensor(a.astype(np.float32), requires_grad=True)
              for a in (x, w, b) if a is not None]
    for fused in (True, False):
        y = conv_fn(b is not None, args, fused)(*inputs)
        assert mg.backend.dtype_name(y.dtype) == "float32"
        np.testing.assert_allclose(y.numpy(), direct_conv2d(x, w, b, *pair_args), rtol=1e-5,
                                   atol=1e-5)
        stride, padding, dilation = pair_args
        # the output padding that brings the transposed convolution back to x's size (without
        # it, a stride larger than the image would give an empty output, which is an error)
        extra = [(n + 2 * p - d * (k - 1) - 1) % s for n, p, d, k, s in
                 zip(x.shape[2:], padding, dilation, w.shape[2:], stride)]
        z = mg.conv_transpose2d(y, inputs[1], None, stride=stride, padding=padding,
                                output_padding=extra, dilation=dilation)
        assert z.shape[2:] == x.shape[2:]
        grads = mg.grad((z * z).sum(), inputs, create_graph=True)
        penalty = sum(((g * g).sum() for g in grads), start=mg.zeros((), dtype="float32"))
        for g, t in zip(mg.grad(penalty, inputs), inputs):
            assert mg.backend.dtype_name(g.dtype) == "float32" and g.shape == t.shape


# --------------------------------------------------------------------------------------------------
# Spellings, unbatched images, empty batches
# --------------------------------------------------------------------------------------------------

@settings(max_examples=10)
@given(data=st.data())
def test_same_and_valid_padding_as_pytorch(backend, data):
    x, w, b, args, (_, _, dilation) = conv_case(data)
    total = [d * (k - 1) for k, d in zip(w.shape[2:], dilation)]
    padded = np.pad(x, ((0, 0), (0, 0), (total[0] // 2, total[0] - total[0] // 2),
                        (total[1] // 2, total[1] - total[1] // 2)))   # the odd one at the end
    inputs = tensors(x, w, b)
    for fused in (True, False):
        fn = conv_fn(b is not None, dict(padding="same", dilation=args["dilation"]), fused)
        y = fn(*inputs)
        assert y.shape[2:] == x.shape[2:]
        np.testing.assert_allclose(y.numpy(), direct_conv2d(padded, w, b, (1, 1), (0, 0), dilation),
                                   rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(fn, inputs)
    if all(h >= d * (k - 1) + 1 for h, k, d in zip(x.shape[2:], w.shape[2:], dilation)):
        valid = mg.conv2d(inputs[0], inputs[1], padding="valid", dilation=args["dilation"])
        np.testing.assert_allclose(valid.numpy(), direct_conv2d(x, w, None, (1, 1), (0, 0),
                                                                dilation), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="conv2d: padding='same' needs stride 1"):
        mg.conv2d(inputs[0], inputs[1], padding="same", stride=2)
    with pytest.raises(ValueError, match="conv2d: padding must be an int, a pair, 'valid' or"):
        mg.conv2d(inputs[0], inputs[1], padding="full")


def test_unbatched_image_and_empty_batch(backend):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 5, 4)), rng.standard_normal((3, 2, 2, 2))
    y = mg.conv2d(mg.Tensor(x), mg.Tensor(w), padding=1)
    assert y.shape == (3, 6, 5)
    np.testing.assert_allclose(y.numpy(), direct_conv2d(x[None], w, None, (1, 1), (1, 1),
                                                          (1, 1))[0], rtol=1e-12)
    z = mg.conv_transpose2d(mg.Tensor(y.numpy()), mg.Tensor(w), stride=2)
    assert z.shape == (2, 12, 10)
    empty = mg.Tensor(np.zeros((0, 2, 5, 4)), requires_grad=True)
    out = mg.conv2d(empty, mg.Tensor(w, requires_grad=True), stride=(2, 1))
    assert out.shape == (0, 3, 2, 3)
    out.sum().backward()
    assert empty.grad.shape == empty.shape


@pytest.mark.parametrize("op, x_shape, w_shape, out_shape", [
    (mg.conv2d, (2, 0, 5, 4), (3, 0, 2, 2), (2, 3, 4, 3)),
    (mg.conv2d, (2, 2, 5, 4), (0, 2, 2, 2), (2, 0, 4, 3)),
    (mg.conv_transpose2d, (2, 0, 5, 4), (0, 3, 2, 2), (2, 3, 6, 5)),
    (mg.conv_transpose2d, (2, 2, 5, 4), (2, 0, 2, 2), (2, 0, 6, 5)),
], ids=["conv-no-inputs", "conv-no-outputs", "transposed-no-inputs", "transposed-no-outputs"])
def test_zero_channels_fused_as_reference(op, x_shape, w_shape, out_shape):
    # no channel at all: the output is empty or zeros (a sum over nothing) in both forms, and the
    # gradients have their inputs' shapes (the fused op's reshapes once inferred a size from 0)
    rng = np.random.default_rng(2)
    results = []
    for fused in (True, False):
        x = mg.Tensor(rng.standard_normal(x_shape), requires_grad=True)
        w = mg.Tensor(rng.standard_normal(w_shape), requires_grad=True)
        with mg.using_fusion(fused):
            y = op(x, w)
            (y * y).sum().backward()
        assert y.shape == out_shape and x.grad.shape == x_shape and w.grad.shape == w_shape
        results.append(y.numpy())
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], np.zeros(out_shape))


def test_bias_and_lists_are_accepted():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y = mg.conv2d(x, [[[[1.0, 0.0], [0.0, -1.0]]]], [0.5], stride=[2, 2])
    np.testing.assert_allclose(y.numpy(), direct_conv2d(x, np.array([[[[1.0, 0.0], [0.0, -1.0]]]]),
                                                        np.array([0.5]), (2, 2), (0, 0), (1, 1)))


# --------------------------------------------------------------------------------------------------
# Errors name the op, the shapes and the output size
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: mg.conv2d(np.zeros((2, 3)), np.zeros((1, 3, 1, 1))),
     r"conv2d: expected an input of shape \(N, C, H, W\) or \(C, H, W\), got shape \(2, 3\)"),
    (lambda: mg.conv2d(np.zeros((1, 3, 4, 4)), np.zeros((2, 2, 3, 3))),
     r"conv2d: input \(1, 3, 4, 4\) has 3 channels, but weight \(2, 2, 3, 3\) expects 2"),
    (lambda: mg.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 5, 5)), padding=1),
     r"conv2d: kernel \(5, 5\) .* larger than the padded input \(4, 4\).*output size would be "
     r"\(0, 0\)"),
    (lambda: mg.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3))),
     r"conv2d: weight must be \(out_channels, in_channels, kH, kW\), got shape \(1, 1, 3\)"),
    (lambda: mg.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((2, 1, 3, 3)), np.zeros(3)),
     r"conv2d: bias must have shape \(2,\)"),
    (lambda: mg.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), stride=0),
     r"conv2d: stride must be at least 1"),
    (lambda: mg.conv2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), padding=(1, 2, 3)),
     r"conv2d: padding must be an int or a pair of ints"),
    (lambda: mg.conv_transpose2d(np.zeros((1, 2, 4, 4)), np.zeros((3, 1, 3, 3))),
     r"conv_transpose2d: input \(1, 2, 4, 4\) has 2 channels, but weight \(3, 1, 3, 3\) expects 3"),
    (lambda: mg.conv_transpose2d(np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3)), stride=2,
                                 output_padding=2),
     r"conv_transpose2d: output_padding \(2, 2\) must be smaller than the stride \(2, 2\) or the "
     r"dilation \(1, 1\) \(input \(1, 1, 4, 4\), weight \(1, 1, 3, 3\): the output size would "
     r"be \(11, 11\)"),
    (lambda: mg.conv_transpose2d(np.zeros((1, 1, 1, 1)), np.zeros((1, 1, 1, 1)), padding=1),
     r"conv_transpose2d: input \(1, 1, 1, 1\) .* gives the output size \(-1, -1\), below 1"),
])
def test_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------------
# Pooling and padding
# --------------------------------------------------------------------------------------------------

def pool_case(data, dilated):
    n = data.draw(st.integers(1, 2), label="batch")
    c = data.draw(st.integers(1, 2), label="channels")
    kernel = pairs(data, 1, 3, "kernel")
    stride = pairs(data, 1, 3, "stride") if data.draw(st.booleans(), label="stride?") else None
    dilation = pairs(data, 1, 2, "dilation") if dilated else (1, 1)
    # (with a dilation, a padded window could miss the image altogether: its maximum is -inf)
    padding = tuple(data.draw(st.integers(0, k // 2 if d == 1 else 0), label="padding")
                    for k, d in zip(kernel, dilation))
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p) + data.draw(st.integers(0, 3), label="extra")
                 for k, d, p in zip(kernel, dilation, padding))
    x = distinct_values(data, (n, c) + size, "x")
    args = dict(kernel_size=_maybe_int(data, kernel), stride=stride,
                padding=_maybe_int(data, padding))
    if dilated:
        args["dilation"] = _maybe_int(data, dilation)
    return x, args, (kernel, stride or kernel, padding, dilation)


def pool_fn(pool, args, fused=True, square=False):
    def fn(x):
        with mg.using_fusion(fused):
            y = pool(x, **args)
        return y * y if square else y
    return fn


@pytest.mark.parametrize("pool, reduce, fill", [(mg.max_pool2d, np.max, -np.inf),
                                                (mg.avg_pool2d, np.mean, 0.0)],
                         ids=["max", "avg"])
@given(data=st.data())
def test_pooling_matches_direct_definition_and_central_differences(backend, pool, reduce, fill,
                                                                  data):
    x, args, geometry = pool_case(data, dilated=pool is mg.max_pool2d)
    (inputs,) = tensors(x)
    y = pool(inputs, **args)
    np.testing.assert_allclose(y.numpy(), direct_pool(x, *geometry, reduce, fill), rtol=1e-12,
                               atol=1e-12)
    assert mg.gradcheck(pool_fn(pool, args), [inputs])
    assert_same_gradients(pool_fn(pool, args), pool_fn(pool, args, fused=False), [inputs])


@pytest.mark.parametrize("pool", [mg.max_pool2d, mg.avg_pool2d], ids=["max", "avg"])
@settings(max_examples=8)
@given(data=st.data())
def test_pooling_second_derivatives(backend, pool, data):
    x, args, _ = pool_case(data, dilated=pool is mg.max_pool2d)
    assert mg.gradgradcheck(pool_fn(pool, args, square=True), tensors(x))
    assert mg.gradgradcheck(pool_fn(pool, args, fused=False, square=True), tensors(x))


def test_max_pool_gives_a_tie_to_the_first_maximum_as_pytorch():
    x = mg.Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True)
    mg.max_pool2d(x, 2).sum().backward()
    expected = np.zeros((4, 4))
    expected[::2, ::2] = 1.0          # the top-left element of each window, none of the others
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


def test_avg_pool_counts_the_padding():
    y = mg.avg_pool2d(mg.Tensor(np.ones((1, 1, 2, 2))), 2, stride=1, padding=1)
    np.testing.assert_allclose(y.numpy()[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5],
                                                 [0.25, 0.5, 0.25]])


@given(data=st.data())
def test_pad_matches_numpy_and_central_differences(backend, data):
    ndim = data.draw(st.integers(1, 3), label="ndim")
    shape = tuple(data.draw(st.integers(1, 3), label="side") for _ in range(ndim))
    count = data.draw(st.integers(1, ndim), label="padded axes")
    widths = []
    for axis in range(count):     # from the last axis backwards, as PyTorch's pad tuple
        side = shape[ndim - 1 - axis]
        widths += [data.draw(st.integers(-(side - 1) // 2, 2), label="before"),
                   data.draw(st.integers(-(side - 1) // 2, 2), label="after")]
    value = data.draw(st.sampled_from([0.0, -1.5]), label="value")
    x = values(data, shape, "x")
    grown = [(0, 0)] * ndim
    for k in range(count):
        grown[ndim - 1 - k] = (widths[2 * k], widths[2 * k + 1])
    cropped = x[tuple(slice(max(-a, 0), d - max(-b, 0)) for d, (a, b) in zip(shape, grown))]
    expected = np.pad(cropped, [(max(a, 0), max(b, 0)) for a, b in grown], constant_values=value)
    (t,) = tensors(x)
    np.testing.assert_array_equal(mg.pad(t, tuple(widths), value=value).numpy(), expected)
    assert mg.gradcheck(lambda x: mg.pad(x, tuple(widths), value=value), [t])
    assert mg.gradgradcheck(lambda x: mg.pad(x, tuple(widths), value=value) ** 2, [t])


@pytest.mark.parametrize("call, message", [
    (lambda: mg.max_pool2d(np.zeros((1, 1, 4, 4)), 2, padding=2),
     r"max_pool2d: padding \(2, 2\) must be at most half the kernel size \(2, 2\)"),
    (lambda: mg.avg_pool2d(np.zeros((1, 1, 2, 2)), 3),
     r"avg_pool2d: kernel_size \(3, 3\) .* larger than the padded input \(2, 2\).* output size "
     r"would be \(0, 0\)"),
    (lambda: mg.max_pool2d(np.zeros((4, 4)), 2),
     r"max_pool2d: expected an input of shape \(N, C, H, W\) or \(C, H, W\), got shape \(4, 4\)"),
    (lambda: mg.pad(np.zeros((2, 2)), (1, 1, 1)), r"pad: pad must be an even number"),
    (lambda: mg.pad(np.zeros((2, 2)), (-2, -1)), r"pad: padding \(-2, -1\) would give input"),
    (lambda: mg.pad(np.zeros((2, 2)), (1, 1), mode="reflect"), r"pad: only mode='constant'"),
])
def test_pool_and_pad_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------------

def test_conv_layers_follow_pytorch():
    mg.manual_seed(0)
    conv = mg.nn.Conv2d(16, 32, (4, 3), stride=2, padding=1)
    assert conv.weight.shape == (32, 16, 4, 3) and conv.bias.shape == (32,)
    assert list(conv.state_dict()) == ["weight", "bias"]
    bound = 1 / math.sqrt(16 * 4 * 3)       # U(-b, b) with b = 1 / sqrt(fan_in): PyTorch's default
    w = conv.weight.numpy()
    assert np.abs(w).max() <= bound and np.abs(conv.bias.numpy()).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound
    assert repr(conv) == "Conv2d(16, 32, kernel_size=(4, 3), stride=(2, 2), padding=(1, 1))"
    x = mg.randn(2, 16, 9, 9)
    np.testing.assert_array_equal(conv(x).numpy(),
                                  mg.conv2d(x, conv.weight, conv.bias, 2, 1).numpy())

    up = mg.nn.ConvTranspose2d(64, 8, 4, stride=2, padding=1, bias=False)
    assert up.weight.shape == (64, 8, 4, 4) and up.bias is None
    assert np.abs(up.weight.numpy()).max() <= 1 / math.sqrt(8 * 16)   # fan-in: weight axis 1
    assert up(mg.randn(3, 64, 7, 7)).shape == (3, 8, 14, 14)
    assert repr(up) == ("ConvTranspose2d(64, 8, kernel_size=(4, 4), stride=(2, 2), "
                        "padding=(1, 1), bias=False)")
    with pytest.raises(ValueError, match="ConvTranspose2d: output_padding"):
        mg.nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2)
    assert repr(mg.nn.Conv2d(3, 4, 3, padding="same")) == ("Conv2d(3, 4, kernel_size=(3, 3), "
                                                           "stride=(1, 1), padding='same')")
    assert mg.nn.Conv2d(3, 4, 3, padding="same")(mg.randn(1, 3, 5, 6)).shape == (1, 4, 5, 6)
    with pytest.raises(ValueError, match="Conv2d: in_channels must be a positive integer"):
        mg.nn.Conv2d(0, 1, 3)
    with pytest.raises(ValueError, match="Conv2d: padding must be an int, a pair, 'valid' or "
                                         "'same', not 'full'"):
        mg.nn.Conv2d(3, 4, 3, padding="full")
    with pytest.raises(ValueError, match=r"Conv2d: padding='same' needs stride 1 \(got stride "
                                         r"\(2, 1\)\)"):
        mg.nn.Conv2d(3, 4, 3, stride=(2, 1), padding="same")


def test_batchnorm2d_statistics_as_pytorch():
    rng = np.random.default_rng(3)
    bn = mg.nn.BatchNorm2d(3, momentum=0.25, dtype="float64")
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    running_mean, running_var = np.zeros(3), np.ones(3)
    for _ in range(2):
        x = rng.standard_normal((4, 3, 2, 5)) * 3 + 1
        y = bn(mg.Tensor(x)).numpy()
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
        np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
        count = 4 * 2 * 5                    # values per channel: the unbiased running variance
        running_mean = 0.75 * running_mean + 0.25 * mean
        running_var = 0.75 * running_var + 0.25 * var * count / (count - 1)
    np.testing.assert_allclose(bn.running_mean.numpy(), running_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.numpy(), running_var, rtol=1e-12)
    bn.eval()
    x = rng.standard_normal((1, 3, 2, 2))
    expected = (x - running_mean[:, None, None]) / np.sqrt(running_var[:, None, None] + 1e-5)
    np.testing.assert_allclose(bn(mg.Tensor(x)).numpy(), expected, rtol=1e-10)
    with pytest.raises(ValueError, match=r"batchnorm2d: expected input of shape \(N, 3, H, W\), "
                                         r"got shape \(2, 3\)"):
        bn(mg.zeros(2, 3))
    w = mg.nn.Parameter(np.ones((1, 3, 1, 1)))
    out = bn(w * 1.0).sum()                  # evaluation reads the running statistics ...
    bn.train()
    bn(mg.Tensor(rng.standard_normal((2, 3, 2, 2))))  # ... which training then changes in place
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.backward()


def test_batchnorm2d_gradients(backend):
    bn = mg.nn.BatchNorm2d(2)
    x = mg.Tensor(np.random.default_rng(4).standard_normal((3, 2, 2, 2)), requires_grad=True)
    params = [x, bn.weight, bn.bias]
    assert mg.gradcheck(lambda x, w, b: bn(x), params)
    assert mg.gradgradcheck(lambda x, w, b: bn(x), params)


def test_flatten_unflatten_and_pool_layers():
    x = mg.randn(2, 3, 4, 5)
    assert mg.nn.Flatten()(x).shape == (2, 60)
    assert mg.nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert mg.nn.Flatten(-2)(x).shape == (2, 3, 20)
    assert mg.nn.Unflatten(1, (3, 4, 5))(mg.nn.Flatten()(x)).shape == (2, 3, 4, 5)
    assert mg.nn.Unflatten(-1, (-1, 5))(mg.randn(2, 20)).shape == (2, 4, 5)
    with pytest.raises(ValueError, match=r"Unflatten: cannot split axis 1 of size 60"):
        mg.nn.Unflatten(1, (7, -1))(mg.nn.Flatten()(x))
    with pytest.raises(ValueError, match="Flatten: start_dim 2 comes after end_dim 1"):
        mg.nn.Flatten(2, 1)(x)
    np.testing.assert_array_equal(mg.nn.MaxPool2d(2, padding=1)(x).numpy(),
                                  mg.max_pool2d(x, 2, 2, 1).numpy())
    np.testing.assert_array_equal(mg.nn.AvgPool2d(3, stride=1)(x).numpy(),
                                  mg.avg_pool2d(x, 3, 1).numpy())
    assert repr(mg.nn.MaxPool2d(2)) == ("MaxPool2d(kernel_size=(2, 2), stride=(2, 2), "
                                        "padding=(0, 0))")


# --------------------------------------------------------------------------------------------------
# Second derivatives at work: a WGAN-GP critic made of convolutions
# --------------------------------------------------------------------------------------------------

def _critic(dtype="float32"):
    nn = mg.nn
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1, dtype=dtype), nn.LeakyReLU(0.2),
                         nn.Conv2d(4, 8, 3, stride=2, padding=1, dtype=dtype), nn.LeakyReLU(0.2),
                         nn.AvgPool2d(2), nn.Flatten(), nn.Dense(8, 1, dtype=dtype))


def _gradient_penalty(critic, real, fake, eps):
    """WGAN-GP (Gulrajani et al., 2017): (|grad_x D(x_hat)| - 1)^2 at points between real and fake;
    training on it needs the derivative of a gradient, so every conv op's backward is
    differentiated again."""
    x_hat = (eps * real + (1.0 - eps) * fake).detach().requires_grad_(True)   # real, fake: data
    (g,) = mg.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norm = mg.sqrt((g * g).sum(axis=(1, 2, 3)) + 1e-12)
    return ((norm - 1.0) ** 2).mean()


def _images(rng, n, bright):
    x = rng.uniform(0.0, 0.3, (n, 1, 8, 8))
    if bright:
        x[:, :, 2:6, 2:6] += 0.7       # "real" images: a bright square in the middle
    return x


def test_a_wgan_gp_critic_of_convolutions_trains():
    mg.manual_seed(0)
    rng = np.random.default_rng(0)
    critic = _critic()
    opt = mg.optim.Adam(critic.parameters(), lr=1e-2, betas=(0.5, 0.9))
    real, fake = (mg.Tensor(_images(rng, 32, b).astype(np.float32)) for b in (True, False))

    def distance():
        with mg.no_grad():
            return float(critic(real).mean() - critic(fake).mean())

    start = distance()
    for _ in range(60):
        penalty = _gradient_penalty(critic, real, fake, mg.rand(32, 1, 1, 1))
        loss = critic(fake).mean() - critic(real).mean() + 10.0 * penalty
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and np.isfinite(p.grad.numpy()).all()
                   for p in critic.parameters())
        opt.step()
    assert distance() > start + 1.0          # the critic tells real from fake ...
    # ... while staying about 1-Lipschitz
    assert float(_gradient_penalty(critic, real, fake, mg.rand(32, 1, 1, 1))) < 0.1


def test_the_gradient_penalty_has_the_right_derivative(backend):
    """d(penalty)/d(weights) - a second derivative through conv2d, its backward (a transposed
    convolution and the weight-gradient GEMM) and avg pooling - against central differences, and
    equal with fusion on and off."""
    mg.manual_seed(1)
    rng = np.random.default_rng(1)
    critic = _critic("float64")
    real, fake = (mg.Tensor(_images(rng, 2, b)) for b in (True, False))
    eps = mg.Tensor(rng.uniform(size=(2, 1, 1, 1)))
    conv = critic[0]

    def penalty(w, b, fused=True):
        conv.weight, conv.bias = w, b
        with mg.using_fusion(fused):
            return _gradient_penalty(critic, real, fake, eps)

    w, b = conv.weight, conv.bias
    assert mg.gradcheck(penalty, [w, b])
    fused = mg.grad(penalty(w, b), [w, b])
    reference = mg.grad(penalty(w, b, fused=False), [w, b])
    for gf, gr in zip(fused, reference):
        np.testing.assert_allclose(gf.numpy(), gr.numpy(), rtol=1e-10, atol=1e-12)

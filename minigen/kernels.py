"""Fused elementwise kernels: several elementwise steps done in one pass over the data.

Written as separate array operations, ``p -= lr * m / (sqrt(v) + eps)`` makes four passes over
memory and allocates three temporaries the size of ``p``.  On a GPU each pass is a kernel launch
(for small arrays the launches are all the time there is: see the README's Performance section);
on a CPU each pass streams the whole array through memory and each temporary is an allocation.  A
*fused kernel* does the whole formula per element in one pass.

Every kernel here has up to three implementations of the same formula, chosen by the arrays'
backend:

* CuPy: one CUDA ``ElementwiseKernel`` (compiled on first use, cached by CuPy on disk);
* NumPy: the same steps as ufuncs writing in place or into a preallocated ``scratch`` array
  (``out=``), so that nothing is allocated (NumPy cannot fuse the passes themselves);
* any other array-API namespace (the strict test backends): the plain expressions - the reference
  the other two are tested against (tests/test_kernels.py, on every backend).

This module works on arrays only: every function takes backend arrays and returns backend arrays.
The differentiable ops that call these kernels - each beside the composition of primitive ops it
replaces - are in ``minigen/fused.py``: their ``forward`` and ``backward_arrays`` call the pairs
here (``bce_with_logits`` / ``bce_with_logits_grad``...), their ``backward`` is written in Tensor
ops.
"""

from . import backend as B

__all__ = ["adam_update", "adam_update_flat", "bias_activation", "activation_derivative",
           "activation_grad", "bias_grad", "total", "expand", "sigmoid", "sigmoid_grad",
           "moving_average", "maximum_zero",
           "FUSED_ACTIVATIONS", "LEAKY_SLOPE", "bce_with_logits", "bce_with_logits_grad",
           "reparameterize", "reparameterize_grads", "gaussian_kl", "gaussian_kl_grads"]


# --------------------------------------------------------------------------------------------------
# Adam
# --------------------------------------------------------------------------------------------------

_ADAM_CUDA = B.ElementwiseKernel(
    "T g, T beta1, T beta2, T step_size, T eps",
    "T p, T m, T v",
    """
    m = beta1 * m + (1 - beta1) * g;
    v = beta2 * v + (1 - beta2) * g * g;
    p -= step_size * m / (sqrt(v) + eps);
    """,
    "minigen_adam")


def adam_update(p, g, m, v, scratch, beta1, beta2, step_size, eps):
    """One Adam step in place on the arrays ``p`` (parameter), ``m`` and ``v`` (moment estimates):

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        p <- p - step_size * m / (sqrt(v) + eps)

    ``scratch`` is an array like ``p`` whose values do not matter (NumPy uses it; others ignore it).
    The bias corrections of Adam are folded into ``step_size`` and ``eps`` by the caller.
    """
    owner = B.of(p)
    if owner.name == "cupy":
        _ADAM_CUDA(g, beta1, beta2, step_size, eps, p, m, v)
    elif owner.name == "numpy":
        xp = owner.xp
        xp.multiply(g, 1.0 - beta1, out=scratch)
        m *= beta1
        m += scratch
        xp.multiply(g, g, out=scratch)
        scratch *= 1.0 - beta2
        v *= beta2
        v += scratch
        xp.sqrt(v, out=scratch)
        scratch += eps
        xp.divide(m, scratch, out=scratch)
        scratch *= step_size
        p -= scratch
    else:
        xp = owner.xp
        m *= beta1
        m += (1.0 - beta1) * g
        v *= beta2
        v += (1.0 - beta2) * (g * g)
        p -= step_size * m / (xp.sqrt(v) + eps)


def adam_update_flat(params, grads, m, v, scratch, gathered, beta1, beta2, step_size, eps):
    """:func:`adam_update` for many NumPy parameters at once, in fewer calls and passes.

    ``m``, ``v`` and ``scratch`` are 1-D arrays holding every parameter's values back to back, in
    the order of ``params`` (parameter i at ``[o_i, o_i + size_i)``; the optimizer's per-parameter
    moment arrays are views of them).  The leading parameters whose sizes add up to
    ``gathered.size`` are *small*: their gradients are copied into ``gathered``, and each line of
    the formula is one call for all of them together (eight Dense layers of 64: 9 calls for the
    moments of all 16 parameters instead of 128, where each call costs more than its arithmetic).
    Each larger parameter is updated on its own.  Either way the lines are :func:`adam_update`'s
    NumPy lines, on 1-D slices, through ``scratch`` (no temporary arrays):

        s = (1 - beta1) g;   m <- beta1 m + s
        s = (1 - beta2) g^2;   v <- beta2 v + s
        s = step_size m / (sqrt(v) + eps);   p <- p - s
    """
    xp = B.of(m).xp
    small = 0                                    # how many leading parameters are gathered
    if gathered.size:
        total = 0
        while total < gathered.size:
            total += params[small].size
            small += 1
        xp.concatenate([g.reshape(-1) for g in grads[:small]], out=gathered)
        _adam_moments(gathered, m[:total], v[:total], scratch[:total], beta1, beta2, eps, xp)
        scratch[:total] *= step_size
    start = 0
    for i, (p, g) in enumerate(zip(params, grads)):
        end = start + p.size
        s = scratch[start:end]
        if i >= small:
            _adam_moments(g.reshape(-1), m[start:end], v[start:end], s, beta1, beta2, eps, xp)
            s *= step_size
        p -= s.reshape(p.shape)
        start = end


def _adam_moments(g, m, v, s, beta1, beta2, eps, xp):
    """The moment updates of :func:`adam_update_flat` on 1-D arrays, leaving m / (sqrt(v) + eps)
    in ``s``."""
    xp.multiply(g, 1.0 - beta1, out=s)
    m *= beta1
    m += s
    xp.multiply(g, g, out=s)
    s *= 1.0 - beta2
    v *= beta2
    v += s
    xp.sqrt(v, out=s)
    s += eps
    xp.divide(m, s, out=s)


# --------------------------------------------------------------------------------------------------
# Bias + activation (the end of a Dense layer's forward) and the activation's derivative (the start
# of its backward).  Each activation's derivative is written in terms of its *output* y, so the
# backward needs nothing but y:
#
#     relu        y = max(z, 0)             dy/dz = 1 if y > 0 else 0
#     leaky_relu  y = max(z, 0.01 z)        dy/dz = 1 if y > 0 else 0.01
#     tanh        y = tanh(z)               dy/dz = 1 - y^2
#     sigmoid     y = 1 / (1 + exp(-z))     dy/dz = y (1 - y)
# --------------------------------------------------------------------------------------------------

LEAKY_SLOPE = 0.01
_ACTIVATION_CUDA = {  # name: (y from z, dy/dz from y)
    "relu": ("z > 0 ? z : (T)0", "y > 0 ? (T)1 : (T)0"),
    "leaky_relu": (f"z > 0 ? z : (T){LEAKY_SLOPE} * z", f"y > 0 ? (T)1 : (T){LEAKY_SLOPE}"),
    "tanh": ("tanh(z)", "1 - y * y"),
    "sigmoid": ("1 / (1 + exp(-z))", "y * (1 - y)"),
}
FUSED_ACTIVATIONS = tuple(_ACTIVATION_CUDA)

_BIAS_ACTIVATION_CUDA = {
    name: B.ElementwiseKernel("T b", "T y", f"T z = y + b; y = {forward};", f"minigen_bias_{name}")
    for name, (forward, _) in _ACTIVATION_CUDA.items()}
_ACTIVATION_GRAD_CUDA = {
    name: B.ElementwiseKernel("T gy, T y", "T g", f"g = gy * ({derivative});",
                              f"minigen_grad_{name}")
    for name, (_, derivative) in _ACTIVATION_CUDA.items()}


_ZERO_ROWS = {}     # (dtype, length) -> a read-only row of zeros (NumPy)


def maximum_zero(x, out=None):
    """max(x, 0) elementwise, into ``out`` if given (it may be ``x``; NumPy and CuPy only: the
    array API has no ``out=``).  NumPy compares a floating x with a row of zeros as long as its
    last axis: its ``maximum`` of two arrays takes a loop several times faster than that of an
    array and the number 0 (NumPy 2.4, float32)."""
    owner = B.of(x)
    xp = owner.xp
    if owner.name != "numpy" or x.ndim == 0 or x.dtype.kind != "f":   # (bool: max(x, 0) is int)
        return B.ensure_array(xp.maximum(x, 0) if out is None else xp.maximum(x, 0, out=out))
    row = _zero_row(x)
    return xp.maximum(x, row) if out is None else xp.maximum(x, row, out=out)


def _zero_row(x):
    """The cached read-only row of zeros as long as the last axis of the floating NumPy array x."""
    key = (x.dtype, x.shape[-1])
    row = _ZERO_ROWS.get(key)
    if row is None:
        row = _ZERO_ROWS[key] = B.of(x).zeros((x.shape[-1],), like=x)
        row.flags.writeable = False
    return row


def bias_activation(z, bias, activation):
    """``activation(z + bias)`` for a freshly computed ``z`` (N, out), which it may overwrite; the
    bias (out,) broadcasts over the rows.  ``activation`` is None or a name in FUSED_ACTIVATIONS."""
    owner = B.of(z)
    if owner.name == "cupy" and activation is not None:
        _BIAS_ACTIVATION_CUDA[activation](bias, z)
        return z
    xp = owner.xp
    # z is new: adding in place is safe and saves an array
    z += bias
    if activation is None:
        return z
    if activation == "sigmoid":                # functions.Sigmoid's overflow-free formula
        return sigmoid(z)[0]
    if owner.name == "numpy":                  # (CuPy answered above) ufuncs that write in place
        if activation == "relu":
            return xp.maximum(z, _zero_row(z), out=z)     # maximum_zero's loop
        if activation == "leaky_relu":
            return xp.maximum(z, LEAKY_SLOPE * z, out=z)
        return xp.tanh(z, out=z)
    if activation == "relu":
        return xp.maximum(z, 0)
    if activation == "leaky_relu":
        return xp.maximum(z, LEAKY_SLOPE * z)
    return xp.tanh(z)


def activation_derivative(y, activation):
    """d activation / dz as an array, from the output array ``y`` (relu and leaky_relu: the 1 /
    slope mask, which is also what the in-graph backward multiplies by, as a constant)."""
    if activation == "tanh":
        return 1.0 - y * y
    if activation == "sigmoid":
        return y * (1.0 - y)
    xp = B.namespace(y)
    # 1 where y > 0 (array-API arithmetic refuses booleans)
    mask = xp.astype(y > 0, y.dtype)
    if activation == "leaky_relu":
        mask = mask * (1.0 - LEAKY_SLOPE) + LEAKY_SLOPE
    return mask


def activation_grad(gy, y, activation):
    """``gy * d activation / dz`` from the output ``y`` (arrays; a new array)."""
    owner = B.of(y)
    if owner.name == "cupy":
        return _ACTIVATION_GRAD_CUDA[activation](gy, y)
    if owner.name == "numpy":
        if activation == "relu":
            return gy * (y > 0)                # NumPy multiplies by a boolean mask directly
        if activation == "tanh":               # (1 - y^2) gy in one new array
            g = y * y
            owner.xp.subtract(1.0, g, out=g)
            g *= gy
            return g
    return gy * activation_derivative(y, activation)


# --------------------------------------------------------------------------------------------------
# Sigmoid:  y = 1 / (1 + exp(-x)) = (1 if x >= 0 else e) / (1 + e),     e = exp(-|x|) <= 1
#           dy/dx = y (1 - y) = e / (1 + e)^2
# (y and 1 - y are the two cases of the first formula, so their product is e / (1 + e)^2 for every
# x: exact, with no 1 - y that rounds to 0 where y rounds to 1, and no second exp.)
# --------------------------------------------------------------------------------------------------

def sigmoid(x):
    """(sigmoid(x), e = exp(-|x|)) for a floating array ``x``: e is what :func:`sigmoid_grad`
    needs.  One exp; on NumPy (1 if x >= 0 else e) is max(e, x >= 0), since e <= 1."""
    owner = B.of(x)
    xp = owner.xp
    if owner.name != "numpy" or x.ndim == 0:
        e = xp.exp(-xp.abs(x))
        return B.ensure_array(xp.exp(xp.minimum(x, 0)) / (1.0 + e)), B.ensure_array(e)
    e = _exp_minus_abs(x, xp)
    return _sigmoid_from(x, e, xp), e


def _exp_minus_abs(x, xp):
    """exp(-|x|) of a NumPy array in one new array (the sigmoid's and the BCE's e)."""
    e = xp.abs(x)
    xp.negative(e, out=e)
    xp.exp(e, out=e)
    return e


def _sigmoid_from(x, e, xp):
    """sigmoid(x) = (1 if x >= 0 else e) / (1 + e) from e = exp(-|x|), NumPy, as a new array: the
    first factor is max(e, x >= 0), since e <= 1."""
    y = xp.maximum(e, x >= 0)
    y /= e + 1.0
    return y


def sigmoid_grad(gy, e):
    """``gy * dsigmoid/dx`` = gy * e / (1 + e)^2, with ``e`` from :func:`sigmoid` (arrays; on
    NumPy in one new array when gy has e's shape)."""
    owner = B.of(e)
    d = e + 1.0
    if owner.name != "numpy" or e.ndim == 0 or gy.shape != e.shape:
        return B.ensure_array(gy * (e / (d * d)))
    d *= d
    owner.xp.divide(e, d, out=d)
    d *= gy
    return d


def moving_average(avg, w, decay):
    """avg <- decay * avg + (1 - decay) * w (a moving average of the weights ``w``), written as
    w + decay * (avg - w): in place on NumPy and CuPy (three passes, no temporary array; the
    average of a 784 x 400 layer is 1.25 MB, which a new array each step would allocate three
    times), a new array on the strict backends."""
    name = B.of(avg).name
    if avg.shape != w.shape or not (name == "cupy" or name == "numpy" and avg.flags.writeable):
        return B.ensure_array(avg * decay + w * (1.0 - decay))
    avg -= w
    avg *= decay
    avg += w
    return avg


def total(a, axis=None, keepdims=False):
    """The sum of ``a`` over ``axis`` (None: every element; a NumPy scalar then on NumPy), as
    ``xp.sum``.  On NumPy ``add.reduce``, the sum that ``numpy.sum`` and ``ndarray.sum`` make
    through Python functions of their own (the same pairwise summation, without them)."""
    owner = B.of(a)
    if owner.name == "numpy":
        return owner.xp.add.reduce(a, axis=axis, keepdims=keepdims)
    return owner.xp.sum(a, axis=axis, keepdims=keepdims)


def expand(g, kept, shape):
    """The backward of a sum over some axes: ``g`` (the reduced shape) reshaped to ``kept`` (the
    same with the summed axes as 1) and broadcast to ``shape``, a read-only view.  On NumPy a
    contiguous ``g`` gets the view's strides directly (0 along the broadcast axes): what
    ``numpy.broadcast_to`` builds through an iterator and several Python functions."""
    owner = B.of(g)
    xp = owner.xp
    if owner.name != "numpy" or not g.flags.c_contiguous:
        return xp.broadcast_to(xp.reshape(g, kept), shape)
    g = g.reshape(kept)
    strides = tuple(s if k == n else 0 for k, n, s in zip(kept, shape, g.strides))
    view = xp.ndarray(shape, g.dtype, g, 0, strides)
    view.flags.writeable = False
    return view


def bias_grad(g):
    """The gradient of a bias added to every row of ``g`` (N, out): its column sums, (out,)."""
    return total(g, axis=0)


# --------------------------------------------------------------------------------------------------
# Binary cross-entropy with logits:  l = max(x, 0) - x t + log1p(e),    e = exp(-|x|) <= 1,
#                                    dl/dx = sigmoid(x) - t,
#                                    sigmoid(x) = (1 if x >= 0 else e) / (1 + e)
# --------------------------------------------------------------------------------------------------

_BCE_CUDA = B.ElementwiseKernel(
    "T x, T t", "T l", "l = max(x, (T)0) - x * t + log1p(exp(-fabs(x)));", "minigen_bce_logits")
_BCE_GRAD_CUDA = B.ElementwiseKernel(
    "T x, T t, T gy", "T g",
    "T e = exp(-fabs(x)); g = ((x >= 0 ? (T)1 : e) / (1 + e) - t) * gy;", "minigen_bce_logits_grad")


def bce_with_logits(x, t):
    """(the elementwise loss, what ``bce_with_logits_grad`` needs from the forward pass)."""
    owner = B.of(x)
    if owner.name == "cupy":
        # the GPU recomputes exp(-|x|): cheaper than storing it
        return _BCE_CUDA(x, t), None
    xp = owner.xp
    if owner.name != "numpy" or x.ndim == 0 or x.shape != t.shape:
        e = xp.exp(-xp.abs(x))
        return xp.maximum(x, 0) - x * t + xp.log1p(e), e
    e = _exp_minus_abs(x, xp)                  # NumPy: three new arrays instead of seven
    loss = maximum_zero(x)
    work = x * t
    loss -= work
    loss += xp.log1p(e, out=work)
    return loss, e


def bce_with_logits_grad(x, t, gy, saved):
    """(sigmoid(x) - t) * gy, with ``saved`` = exp(-|x|) from :func:`bce_with_logits` (arrays; gy
    in x's shape, or 0-d for a reduced loss)."""
    if B.of(x).name == "cupy":
        return _BCE_GRAD_CUDA(x, t, gy)
    owner = B.of(x)
    xp = owner.xp
    # sigmoid(x) = exp(min(x, 0)) / (1 + e): both cases of the formula above, without a slow where
    if owner.name != "numpy" or x.ndim == 0 or x.shape != t.shape or \
            (gy.ndim and gy.shape != x.shape):
        return B.ensure_array((xp.exp(xp.minimum(x, 0)) / (1.0 + saved) - t) * gy)
    g = _sigmoid_from(x, saved, xp)            # NumPy: no exp, the forward's e reused
    g -= t
    g *= gy
    return g


# --------------------------------------------------------------------------------------------------
# The VAE's two small formulas (on a GPU, launches are all their cost; one kernel each way):
#   reparameterization  z = mu + exp(0.5 lv) eps
#                       dz/dmu = 1,   dz/dlv = 0.5 eps exp(0.5 lv),   dz/deps = exp(0.5 lv)
#   Gaussian KL         kl = 0.5 (mu^2 + exp(lv) - 1 - lv)
#                       dkl/dmu = mu,   dkl/dlv = 0.5 (exp(lv) - 1)
# --------------------------------------------------------------------------------------------------

_REPARAMETERIZE_CUDA = B.ElementwiseKernel(
    "T mu, T lv, T eps", "T z", "z = mu + exp((T)0.5 * lv) * eps;", "minigen_reparameterize")
_REPARAMETERIZE_GRAD_CUDA = B.ElementwiseKernel(
    "T gy, T lv, T eps", "T g_lv, T g_eps",
    "T std = exp((T)0.5 * lv); g_eps = gy * std; g_lv = (T)0.5 * eps * g_eps;",
    "minigen_reparameterize_grad")
_KL_CUDA = B.ElementwiseKernel(
    "T mu, T lv", "T kl", "kl = (T)0.5 * (mu * mu + exp(lv) - 1 - lv);", "minigen_gaussian_kl")
_KL_GRAD_CUDA = B.ElementwiseKernel(
    "T gy, T mu, T lv", "T g_mu, T g_lv",
    "g_mu = mu * gy; g_lv = (T)0.5 * (exp(lv) - 1) * gy;", "minigen_gaussian_kl_grad")


def reparameterize(mu, log_var, eps):
    """z = mu + exp(0.5 log_var) eps (arrays that broadcast together)."""
    if B.of(mu).name == "cupy":
        return _REPARAMETERIZE_CUDA(mu, log_var, eps)
    return mu + B.namespace(mu).exp(0.5 * log_var) * eps


def reparameterize_grads(gy, log_var, eps):
    """(dL/dlog_var, dL/deps) in the broadcast shape (dL/dmu is gy itself)."""
    if B.of(gy).name == "cupy":
        return _REPARAMETERIZE_GRAD_CUDA(gy, log_var, eps)
    g_eps = gy * B.namespace(gy).exp(0.5 * log_var)
    return B.ensure_array(0.5 * eps * g_eps), B.ensure_array(g_eps)


def gaussian_kl(mu, log_var):
    """0.5 (mu^2 + exp(log_var) - 1 - log_var), elementwise."""
    if B.of(mu).name == "cupy":
        return _KL_CUDA(mu, log_var)
    return 0.5 * (mu * mu + B.namespace(mu).exp(log_var) - 1.0 - log_var)


def gaussian_kl_grads(gy, mu, log_var):
    """(dL/dmu, dL/dlog_var) = (mu gy, 0.5 (exp(log_var) - 1) gy)."""
    if B.of(mu).name == "cupy":
        return _KL_GRAD_CUDA(gy, mu, log_var)
    return B.ensure_array(mu * gy), B.ensure_array(0.5 * (B.namespace(mu).exp(log_var) - 1.0) * gy)

# %% [markdown]
# # 11. Convolutions from scratch
#
# The networks so far were dense: every output unit looks at every input number. An image has
# structure that such a layer ignores - nearby pixels belong together, and an edge is an edge
# wherever it appears. A **convolution** builds both facts in: each output pixel looks only at a
# small window of the input (locality), and every window is weighed by the same small kernel (weight
# sharing). This tutorial builds one from the definition up:
#
# 1. the definition as loops, which is the specification everything else is checked against;
# 2. **im2col as indexing**: one fancy-indexing step gathers every window into a matrix, and the
#    convolution becomes one matrix product - differentiable for free, because indexing is;
# 3. the backward: the gradient with respect to the input is a **transposed convolution**, checked
#    numerically with `mg.gradcheck`, and why transposed convolutions make checkerboards;
# 4. minigen's fused convolution against its plain reference, switched with `mg.set_fusion`.

# %%
import os
import sys
import time

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"   # tiny runs for the test suite
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.figsize": (5.5, 3.4), "figure.dpi": 80, "savefig.dpi": 80,
                     "savefig.bbox": "tight", "font.size": 9})


def save(fig, filename):
    """Write the figure to the working folder; in a notebook it is also shown below the cell."""
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


mg.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## The definition
#
# Images come as (N, C, H, W): N images of C channels (1 for grey, 3 for colour, or the feature maps
# of a previous layer), H rows and W columns - PyTorch's layout, which minigen follows. A
# convolution with O output channels has a weight of shape (O, C, kH, kW), one kH x kW kernel per
# pair of output and input channel, and a bias of O numbers. With stride $s$ (how far the window
# moves) and padding
# $p$ (zeros added around the image),
#
# $$y[n, o, i, j] = b[o] + \sum_{c=1}^{C} \sum_{a=1}^{k_H} \sum_{b'=1}^{k_W}
#   w[o, c, a, b']\; x_{\text{pad}}[n, c,\; i s + a,\; j s + b'],$$
#
# and the output has $\lfloor (H + 2p - k_H) / s \rfloor + 1$ rows (the same formula for the
# columns). Deep-learning libraries call this a convolution although, strictly, it is a
# cross-correlation: the kernel is not flipped. Learned kernels do not care. Here it is as loops -
# slow, but impossible to misread:

# %%
def conv2d_loops(x, w, b, stride=1, padding=0):
    """The definition, one output number at a time (NumPy arrays in and out)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.einsum("ncab,ocab->no", window, w) + b
    return y


x = rng.standard_normal((2, 3, 7, 7))
w = rng.standard_normal((4, 3, 3, 3))
b = rng.standard_normal(4)
for stride, padding in [(1, 0), (2, 1)]:
    ours = conv2d_loops(x, w, b, stride, padding)
    theirs = mg.conv2d(mg.Tensor(x), mg.Tensor(w), mg.Tensor(b), stride=stride, padding=padding)
    print(f"stride {stride}, padding {padding}: output {ours.shape}, largest difference from "
          f"mg.conv2d {np.abs(ours - theirs.numpy()).max():.1e}")

# %% [markdown]
# ## im2col: every window at once, by indexing
#
# The loops repeat one operation - take a window, take its dot product with each kernel - for every
# output position. Gather all the windows first, one row per output position, and the dot products
# become a single matrix product (im2col, "image to columns"; here the windows are rows). The
# gathering is pure indexing. For output row $i$ and kernel row $a$ the input row is $i s + a$, so
# the table `rows[i, a] = i * s + a` (and the same for columns) names every pixel of every window,
# and
#
#     patches = x_pad[:, :, rows[:, None, :, None], cols[None, :, None, :]]
#
# is an array of shape (N, C, OH, OW, kH, kW): for each image, channel and output position, its
# window. Moving the channel and kernel axes together and flattening gives the matrix of windows,
# (N OH OW, C kH kW), and the convolution is
#
# $$Y = \text{windows} \cdot W_{\text{flat}}^\top + b, \qquad W_{\text{flat}}: (O,\ C k_H k_W),$$
#
# reshaped back to (N, O, OH, OW). Written with minigen's own ops (indexing, `transpose`, `reshape`,
# `@`), this is already differentiable:

# %%
def conv2d_im2col(x, w, b, stride=1, padding=0):
    """The same convolution as one matrix product over the gathered windows (minigen ops)."""
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    x = mg.pad(x, (padding, padding, padding, padding))
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    rows = (np.arange(oh) * stride)[:, None] + np.arange(kh)[None, :]     # (OH, kH)
    cols = (np.arange(ow) * stride)[:, None] + np.arange(kw)[None, :]     # (OW, kW)
    patches = x[:, :, mg.Tensor(rows[:, None, :, None]), mg.Tensor(cols[None, :, None, :])]
    windows = patches.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    y = windows @ w.reshape(o, c * kh * kw).T + b                         # (N OH OW, O)
    return y.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)


for stride, padding in [(1, 0), (2, 1)]:
    ours = conv2d_im2col(mg.Tensor(x), mg.Tensor(w), mg.Tensor(b), stride, padding).numpy()
    print(f"stride {stride}, padding {padding}: largest difference from the loops "
          f"{np.abs(ours - conv2d_loops(x, w, b, stride, padding)).max():.1e}")
print("windows matrix for a 28 x 28 image, 3 x 3 kernel, 8 channels:",
      (26 * 26, 8 * 3 * 3), "- each pixel copied up to 9 times")

# %% [markdown]
# The price is memory: a pixel that lies in nine windows is copied nine times. The gain is that the
# work is one large matrix product, the operation BLAS libraries and GPUs do fastest.
#
# ## The backward
#
# Because `conv2d_im2col` is made of differentiable ops, `backward` works without a line of new
# code, and `mg.gradcheck` confirms it against central differences, in float64:

# %%
mg.set_default_dtype("float64")
xs = mg.Tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
ws = mg.Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
bs = mg.Tensor(rng.standard_normal(3), requires_grad=True)
print("gradcheck of conv2d_im2col (stride 2, padding 1):",
      mg.gradcheck(lambda x, w, b: conv2d_im2col(x, w, b, 2, 1), [xs, ws, bs]))
print("gradcheck of mg.conv2d:",
      mg.gradcheck(lambda x, w, b: mg.conv2d(x, w, b, stride=2, padding=1), [xs, ws, bs]))
print("second derivatives of mg.conv2d (gradgradcheck):",
      mg.gradgradcheck(lambda x, w: mg.conv2d(x, w, stride=2, padding=1), [xs, ws]))

# %% [markdown]
# What did backward compute? Each op's rule, composed. The matrix product's rule (tutorial 4) gives
# $\partial L/\partial W_{\text{flat}} = G^\top \cdot \text{windows}$ and
# $\partial L/\partial\,\text{windows} = G \cdot W_{\text{flat}}$, where $G$ is the upstream
# gradient as an (N OH OW, O) matrix. The rule of indexing is the interesting one: the forward
# *copied* each pixel into every window that holds it, so the backward *adds* the gradients of all
# those copies back into the pixel (a scatter-add; col2im). Put together, every input pixel
# receives, from every output position whose window covers it, that output's gradient times the
# kernel weight that joined them:
#
# $$\frac{\partial L}{\partial x[n, c, u, v]} = \sum_{o} \sum_{(i, a):\ i s + a = u}\
#   \sum_{(j, b'):\ j s + b' = v} g[n, o, i, j]\; w[o, c, a, b'] .$$
#
# Read from the gradient's side, each $g[n, o, i, j]$ is *scattered* into the input as a copy of the
# kernel, placed where its window was. That operation is the **transposed convolution**
# (`mg.conv_transpose2d`, with the same weight, whose layout it reads as (in, out, kH, kW)). So the
# input gradient of a convolution is a transposed convolution of the output gradient. In linear
# algebra terms: a convolution is a linear map $x \mapsto Kx$ with a large sparse matrix $K$, and
# the transposed convolution is $u \mapsto K^\top u$, which is exactly what a vector-Jacobian
# product is. Both statements can be checked:

# %%
for stride, padding in [(1, 0), (2, 1)]:
    x1 = mg.Tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    w1 = mg.Tensor(rng.standard_normal((4, 3, 3, 3)))
    y = mg.conv2d(x1, w1, stride=stride, padding=padding)
    g = mg.Tensor(rng.standard_normal(y.shape))
    (gx,) = mg.grad(y, [x1], grad_outputs=g)
    # a strided convolution maps several input sizes to one output size; output_padding picks ours
    extra = x1.shape[2] - ((y.shape[2] - 1) * stride - 2 * padding + 3)
    gx_t = mg.conv_transpose2d(g, w1, stride=stride, padding=padding, output_padding=extra)
    adjoint = (y * g).sum().item() - (x1 * gx_t).sum().item()     # <Kx, g> - <x, K^T g>
    print(f"stride {stride}, padding {padding}: |dL/dx - conv_transpose2d(g, w)| = "
          f"{np.abs(gx.numpy() - gx_t.numpy()).max():.1e}; <Kx, g> - <x, K^T g> = {adjoint:.1e}")

# %% [markdown]
# The transposed convolution is also a layer in its own right: a decoder or a GAN generator uses it
# to go from a small feature map to a larger image (tutorial 12). Its scatter explains a known
# artefact. With stride 2 and a 3 x 3 kernel, the kernel copies overlap on every second row and
# column and not in between, so even a constant input and a constant kernel give a checkerboard
# (Odena et al., 2016, "Deconvolution and checkerboard artifacts"); a 4 x 4 kernel, a multiple of
# the stride, overlaps evenly and gives a flat result away from the border:

# %%
ones = mg.ones(1, 1, 6, 6)
fig, axes = plt.subplots(1, 4, figsize=(12, 2.9))
pixel = np.zeros((1, 1, 3, 3))
pixel[..., 1, 1] = 1.0                                   # one lit pixel
kernel = mg.Tensor(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
images = [(mg.conv_transpose2d(mg.Tensor(pixel), kernel, stride=2),
           "one pixel in: a copy of\nthe kernel (1..9) comes out"),
          (mg.conv_transpose2d(ones, mg.ones(1, 1, 3, 3), stride=2),
           "constant in, 3 x 3 kernel,\nstride 2: a checkerboard"),
          (mg.conv_transpose2d(ones, mg.ones(1, 1, 4, 4), stride=2, padding=1),
           "constant in, 4 x 4 kernel,\nstride 2: even overlap")]
for ax, (image, title) in zip(axes, images):
    shown = ax.imshow(image.numpy()[0, 0], cmap="viridis")
    fig.colorbar(shown, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=8.5)
    ax.set_xticks([])
    ax.set_yticks([])
edge = mg.Tensor(np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])[None, None])
square = np.zeros((1, 1, 16, 16))
square[..., 4:12, 4:12] = 1.0
axes[3].imshow(mg.conv2d(mg.Tensor(square), edge, padding=1).numpy()[0, 0], cmap="coolwarm")
axes[3].set_title("a convolution: a Sobel kernel\nfinds a square's vertical edges", fontsize=8.5)
axes[3].set_xticks([])
axes[3].set_yticks([])
save(fig, "11_transposed.png")

# %% [markdown]
# ## The fused convolution and its reference
#
# `conv2d_im2col` is minigen's **reference** form (`mg.conv.conv2d_reference` is written the same
# way, with slicing and `stack`): every step is a primitive op, so there is nothing new to trust,
# and second derivatives come for free. It is also slow: the gather, the transposes and the reshapes
# each make an array, and the graph holds every one of them for the backward.
#
# The **fused** form (`Conv2dFunction` in `minigen/conv.py`) computes the same numbers in one op:
# the windows are a strided *view* of the padded input (no copy until the one im2col buffer the
# matrix product needs), the forward is one GEMM, and the backward is written with the same fused
# ops (a transposed convolution for the input, one more GEMM for the weight), so it too can be
# differentiated again. `mg.set_fusion(False)` (or `with mg.using_fusion(False):`) makes `mg.conv2d`
# run the reference instead. The two must agree; we also time a forward and backward pass of each
# (the best of five runs, alternated):

# %%
mg.set_default_dtype("float32")
batch = 8 if SMOKE else 64
xf = mg.randn(batch, 8, 28, 28, requires_grad=True)
wf = mg.randn(16, 8, 3, 3, requires_grad=True)
bf = mg.randn(16, requires_grad=True)
u = mg.randn(batch, 16, 28, 28)


def forward_backward():
    y = mg.conv2d(xf, wf, bf, padding=1)
    return [y] + mg.grad((y * u).sum(), [xf, wf, bf])


results, timings = {}, {True: [], False: []}
for fused in (True, False):
    with mg.using_fusion(fused):
        results[fused] = [t.numpy() for t in forward_backward()]
for _ in range(5):                      # alternate the two, so that both see the same machine load
    for fused in (True, False):
        with mg.using_fusion(fused):
            start = time.perf_counter()
            forward_backward()
            timings[fused].append(time.perf_counter() - start)
timings = {fused: min(times) for fused, times in timings.items()}
with mg.no_grad():                      # the forward alone, fused
    forward_only = []
    for _ in range(5):
        start = time.perf_counter()
        mg.conv2d(xf, wf, bf, padding=1)
        forward_only.append(time.perf_counter() - start)
for name, a, b in zip(("output", "dL/dx", "dL/dw", "dL/db"), results[True], results[False]):
    print(f"{name:>7}: largest relative difference fused vs reference "
          f"{np.abs(a - b).max() / np.abs(b).max():.1e}")
print(f"forward + backward on {batch} x 8 x 28 x 28, 16 kernels 3 x 3: fused "
      f"{timings[True] * 1e3:.1f} ms, reference {timings[False] * 1e3:.1f} ms "
      f"(reference / fused = {timings[False] / timings[True]:.2f}); the fused forward alone "
      f"{min(forward_only) * 1e3:.1f} ms")

# %% [markdown]
# The two agree to float32 rounding: they add the same products in a different order. The timing is
# this run's, on whatever else the machine was doing; `benchmarks/` measures such ratios properly,
# against a reference in the same run. Most of a step's time is the backward (the transposed
# convolution for the input and the weight's matrix product), not the forward, as the last number
# shows. That is the pattern
# of every fused op in minigen: the readable composition is the definition and the test oracle, and
# the fused op, held equal to it by the tests, is what models run.
#
# ## What you learned
#
# * A convolution slides one small kernel over the image: each output pixel is a dot product of the
#   kernel with the window under it, output size $\lfloor (H + 2p - k)/s \rfloor + 1$.
# * im2col gathers every window into a matrix by integer indexing (`rows[i, a] = i s + a`), turning
#   the convolution into one matrix product; the backward of that indexing adds the copies back
#   (col2im), so the composition is differentiable with no new rule.
# * The input gradient of a convolution is a transposed convolution of the output gradient: the
#   adjoint $K^\top$ of the linear map $K$, checked above through
#   $\langle Kx, g\rangle = \langle x, K^\top g\rangle$. Its scatter, with a kernel size that is not
#   a multiple of the stride, overlaps unevenly and draws checkerboards.
# * minigen's fused convolution equals its primitive-op reference (to float32 rounding);
#   `mg.set_fusion` switches between them.
#
# ## Exercises
#
# 1. Add dilation to `conv2d_im2col`: with dilation $d$ the kernel's taps are $d$ pixels apart, so
#    `rows[i, a] = i s + a d`. Check it against `mg.conv2d(..., dilation=2)` and with
#    `mg.gradcheck`.
# 2. Write max pooling as indexing: gather 2 x 2 windows with stride 2 as above and take `.max` over
#    the window axes. Compare with `mg.max_pool2d(x, 2)`, values and gradients. Where does the
#    gradient of a window go when two of its entries tie for the maximum, in your version and in
#    minigen's?
# 3. Build the matrix $K$ of a convolution explicitly for a 1-channel 5 x 5 input and a 3 x 3 kernel
#    with stride 2, padding 1 (column $m$ of $K$ is the convolution of the $m$-th unit image). Check
#    that $K^\top g$ equals `mg.conv_transpose2d(g, w, stride=2, padding=1)` for a random $g$, and
#    count how many nonzeros each row of $K^\top$ has: relate that to the checkerboard.

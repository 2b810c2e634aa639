# %% [markdown]
# # Solutions: 11. Convolutions from scratch
#
# Worked solutions to the exercises of [tutorial 11](../11_convolutions.py). Try each exercise
# before reading its solution.

# %%
import os

import numpy as np

import minigen as mg

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
mg.set_default_dtype("float64")        # gradient checks need double precision
rng = np.random.default_rng(0)

# %% [markdown]
# ## Exercise 1: dilation
#
# With dilation $d$ the kernel's taps are $d$ pixels apart: the window of output row $i$ covers the
# input rows $i s + a d$ for $a = 0 \dots k_H - 1$, so it spans $d (k_H - 1) + 1$ rows, and the
# output has $\lfloor (H + 2p - d(k_H - 1) - 1)/s \rfloor + 1$ rows. Only the index tables change.

# %%
def conv2d_im2col(x, w, b, stride=1, padding=0, dilation=1):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    x = mg.pad(x, (padding, padding, padding, padding))
    oh = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    ow = (wd + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    rows = (np.arange(oh) * stride)[:, None] + dilation * np.arange(kh)[None, :]
    cols = (np.arange(ow) * stride)[:, None] + dilation * np.arange(kw)[None, :]
    patches = x[:, :, mg.Tensor(rows[:, None, :, None]), mg.Tensor(cols[None, :, None, :])]
    windows = patches.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
    y = windows @ w.reshape(o, c * kh * kw).T + b
    return y.reshape(n, oh, ow, o).transpose(0, 3, 1, 2)


x = mg.Tensor(rng.standard_normal((2, 2, 9, 9)), requires_grad=True)
w = mg.Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
b = mg.Tensor(rng.standard_normal(3), requires_grad=True)
ours = conv2d_im2col(x, w, b, stride=2, padding=1, dilation=2)
theirs = mg.conv2d(x, w, b, stride=2, padding=1, dilation=2)
print("output", ours.shape, "largest difference from mg.conv2d",
      f"{np.abs(ours.numpy() - theirs.numpy()).max():.1e}")
small = mg.Tensor(rng.standard_normal((1, 1, 7, 7)), requires_grad=True)
print("gradcheck:", mg.gradcheck(lambda x, w, b: conv2d_im2col(x, w, b, 1, 1, 2),
                                 [small, mg.Tensor(rng.standard_normal((2, 1, 3, 3)),
                                                   requires_grad=True), b[:2].detach()]))

# %% [markdown]
# ## Exercise 2: max pooling as indexing
#
# Gather the 2 x 2 windows with stride 2 (no overlap), then take the maximum over the two window
# axes. Its gradient flows to the entry that was the maximum. When entries of a window tie, a rule
# must choose: minigen's reduction `max` splits the gradient equally between the tied entries,
# while `mg.max_pool2d`, like PyTorch's, sends all of it to one of them (the first in the window).
# Both are valid subgradients of the maximum; the last lines below show each.

# %%
def max_pool_indexing(x, k=2):
    n, c, h, wd = x.shape
    oh, ow = h // k, wd // k
    rows = (np.arange(oh) * k)[:, None] + np.arange(k)[None, :]
    cols = (np.arange(ow) * k)[:, None] + np.arange(k)[None, :]
    patches = x[:, :, mg.Tensor(rows[:, None, :, None]), mg.Tensor(cols[None, :, None, :])]
    return patches.max(axis=(4, 5))


x = mg.Tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
ours, theirs = max_pool_indexing(x), mg.max_pool2d(x, 2)
g_ours = mg.grad(ours.sum(), [x])[0].numpy()
g_theirs = mg.grad(theirs.sum(), [x])[0].numpy()
print("values equal:", np.allclose(ours.numpy(), theirs.numpy()),
      "| gradients equal (no ties):", np.allclose(g_ours, g_theirs))

tie = mg.Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)       # all four entries tie
print("gradient with a four-way tie, indexing + max:\n", mg.grad(max_pool_indexing(tie).sum(),
                                                                  [tie])[0].numpy()[0, 0])
print("mg.max_pool2d:\n", mg.grad(mg.max_pool2d(tie, 2).sum(), [tie])[0].numpy()[0, 0])

# %% [markdown]
# ## Exercise 3: the matrix of a convolution
#
# A convolution without bias is linear in $x$, so it is a matrix: column $m$ of $K$ is the
# convolution of the $m$-th unit image (a single 1 at pixel $m$). $K^\top g$ must then be the
# transposed convolution of $g$. For a 5 x 5 input, a 3 x 3 kernel, stride 2 and padding 1, the
# output is 3 x 3, so $K$ is 9 x 25. A row of $K^\top$ belongs to one input pixel, and its nonzeros
# are the output positions whose windows cover that pixel. The windows start at rows -1, 1 and 3
# (the padding), so rows 1 and 3 (counting from 0) lie in two windows and the others in one: a pixel
# with both coordinates odd gets 4 terms, one odd coordinate 2, none 1. That uneven count is the
# checkerboard of the tutorial's figure.

# %%
w = mg.Tensor(rng.standard_normal((1, 1, 3, 3)))
columns = []
for m in range(25):
    unit = np.zeros((1, 1, 5, 5))
    unit.flat[m] = 1.0
    columns.append(mg.conv2d(mg.Tensor(unit), w, stride=2, padding=1).numpy().ravel())
K = np.stack(columns, axis=1)                                     # (9, 25)
g = rng.standard_normal((1, 1, 3, 3))
kt_g = (K.T @ g.ravel()).reshape(5, 5)
transposed = mg.conv_transpose2d(mg.Tensor(g), w, stride=2, padding=1).numpy()[0, 0]
print("K is", K.shape, "| largest |K^T g - conv_transpose2d(g, w)|:",
      f"{np.abs(kt_g - transposed).max():.1e}")
print("nonzeros in each row of K^T, laid out as the 5 x 5 input:\n",
      (np.abs(K.T) > 0).sum(axis=1).reshape(5, 5))

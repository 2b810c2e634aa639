# %% [markdown]
# # 4. Dense networks: layers, activations, initialisation, optimizers
#
# With tensors and gradients in hand (tutorials 1 to 3) we can build and train a real neural
# network. This tutorial assembles one from minigen's parts and looks at each decision along the
# way:
#
# 1. the **dense layer**, $y = \mathrm{activation}(x W + b)$, and why the activation is essential;
# 2. **activation functions** and their derivatives;
# 3. **initialisation**: why the scale of the random starting weights decides whether signals
#    survive a deep network (Glorot versus He);
# 4. the **binary cross-entropy** loss, computed stably from logits;
# 5. **SGD, momentum and Adam** on the same problem;
# 6. a classifier for the two-moons data set, and its decision boundary.
#
# The pieces used here (`mg.nn`, `mg.losses`, `mg.optim`, `mg.data`) are the same ones that the VAE
# and GAN tutorials build on.

# %%
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg
import minigen.data  # noqa: F401  (makes mg.data available)

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

# %% [markdown]
# ## The dense layer
#
# A dense (fully connected) layer connects every input feature to every output feature. For a batch
# of $N$ examples with $n_\text{in}$ features each, stored as the rows of $x$ ($N \times
# n_\text{in}$), it computes
#
# $$y = \phi(x W + b), \qquad W: n_\text{in} \times n_\text{out}, \quad b: n_\text{out},$$
#
# where $\phi$ is an elementwise *activation function* and the bias $b$ is broadcast over the rows
# (tutorial 2). `mg.nn.Dense(n_in, n_out, activation=...)` holds $W$ and $b$ as `Parameter`s,
# tensors that always require grad and that the layer lists in `parameters()`. Let us check the
# formula against the layer:

# %%
layer = mg.nn.Dense(2, 4, activation="relu")
x = mg.randn(5, 2)
print(layer, "| weight", layer.weight.shape, "| bias", layer.bias.shape)
by_hand = mg.relu(x @ layer.weight + layer.bias)
print("layer(x) equals relu(x @ W + b):", np.allclose(layer(x).numpy(), by_hand.numpy()))
print("parameters:", [name for name, _ in layer.named_parameters()])

# %% [markdown]
# ## The backward of a matrix product, derived
#
# Training needs the gradient of the loss $L$ with respect to $W$ (and $b$ and $x$), and the layer's
# core is a matrix product $Y = X W$ with $X$ of shape $N \times n$ and $W$ of shape $n \times m$.
# Suppose the layers above have already delivered $G = \partial L / \partial Y$, one number per
# element of $Y$ ($N \times m$, tutorial 2: a gradient has its tensor's shape). Write the product
# out element by element, $Y_{ij} = \sum_{k} X_{ik} W_{kj}$. The weight $W_{kj}$ appears only in
# column $j$ of $Y$, once per row $i$, with the factor $X_{ik}$, so the chain rule, summed over
# every element it touches, gives
#
# $$\frac{\partial L}{\partial W_{kj}}
#   = \sum_{i, j'} G_{ij'} \frac{\partial Y_{ij'}}{\partial W_{kj}}
#   = \sum_{i} G_{ij} X_{ik} = (X^\top G)_{kj}, \qquad\text{so}\qquad
#   \frac{\partial L}{\partial W} = X^\top G \quad (n \times m).$$
#
# In the same way $X_{ik}$ appears in every column of row $i$, with the factor $W_{kj}$:
#
# $$\frac{\partial L}{\partial X_{ik}} = \sum_{j} G_{ij} W_{kj} = (G W^\top)_{ik},
#   \qquad\text{so}\qquad \frac{\partial L}{\partial X} = G\, W^\top \quad (N \times n).$$
#
# The shapes are a useful check: $X^\top G$ is $(n \times N)(N \times m)$, the shape of $W$, and
# $G W^\top$ is $(N \times m)(m \times n)$, the shape of $X$. The bias, broadcast over the $N$ rows,
# gets the column sums of $G$ (tutorial 2). These two lines are `MatMul.backward` in
# `minigen/functions.py`.
#
# **The vector–Jacobian product.** The full derivative of $Y$ with respect to $W$ is a Jacobian
# matrix with one row per element of $Y$ and one column per element of $W$: $Nm \times nm$ numbers.
# For an MNIST layer ($N = 128$, $n = 784$, $m = 400$) that is $51{,}200 \times 313{,}600$, sixteen
# billion numbers, almost all of them zero. Backpropagation never builds it. It only ever needs the
# gradient vector $g = \operatorname{vec}(G)$ times the Jacobian, $g^\top J$, and the formula above
# computes that product directly, with one small matrix product. That operation, "given
# $\partial L / \partial(\text{output})$, return $\partial L / \partial(\text{input})$", is called a
# **vector–Jacobian product** (VJP), and it is what every `backward` method in minigen computes.
# Here is the check, on a size small enough to build $J$ explicitly:

# %%
N, n, m = 3, 4, 2
X = mg.randn(N, n, dtype="float64")
W = mg.randn(n, m, dtype="float64", requires_grad=True)
G = mg.randn(N, m, dtype="float64")                  # an upstream gradient dL/dY
(X @ W).backward(G)

J = np.zeros((N * m, n * m))                         # J[(i, j), (k, j')] = dY_ij / dW_kj'
for i in range(N):
    for j in range(m):
        for k in range(n):
            J[i * m + j, k * m + j] = X.numpy()[i, k]     # zero unless j' = j
vjp = (G.numpy().reshape(-1) @ J).reshape(n, m)      # the vector-Jacobian product g^T J
print(f"Jacobian {J.shape}, of which {np.count_nonzero(J)} of {J.size} entries are nonzero")
print("g^T J equals X^T G:      ", np.allclose(vjp, X.numpy().T @ G.numpy()))
print("and equals minigen's W.grad:", np.allclose(vjp, W.grad.numpy()))

# %% [markdown]
# Why not leave the activation out? Because two linear layers in a row are just one linear layer in
# disguise:
#
# $$(x W_1 + b_1) W_2 + b_2 = x\,(W_1 W_2) + (b_1 W_2 + b_2).$$
#
# However many of them you stack, the network can only draw straight lines through the data. The
# nonlinearity between layers is what lets a network bend its decision boundary:

# %%
first, second = mg.nn.Dense(2, 8), mg.nn.Dense(8, 3)
W = first.weight @ second.weight
b = first.bias @ second.weight + second.bias
print("two linear layers equal one:", np.allclose(second(first(x)).numpy(), (x @ W + b).numpy(),
                                                 atol=1e-6))

# %% [markdown]
# ## Activation functions
#
# The common choices, each with its derivative (which backpropagation multiplies into every gradient
# that passes through it):
#
# | name | $\phi(z)$ | $\phi'(z)$ |
# | --- | --- | --- |
# | ReLU | $\max(z, 0)$ | $1$ if $z > 0$, else $0$ |
# | leaky ReLU | $z$ if $z > 0$, else $\alpha z$ | $1$ if $z > 0$, else $\alpha$ |
# | tanh | $\tanh z$ | $1 - \tanh^2 z$ |
# | sigmoid | $\sigma(z) = 1 / (1 + e^{-z})$ | $\sigma(z)\,(1 - \sigma(z))$ |
# | softplus | $\log(1 + e^z)$ | $\sigma(z)$ |
#
# The derivative panel below is computed by minigen's autograd, with the trick from tutorial 2 (the
# gradient of a sum of elementwise outputs). Notice that tanh and sigmoid are *flat* for large
# $|z|$: their derivative is nearly zero there, so a unit stuck in that region passes back almost no
# gradient ("saturation"). ReLU's derivative is exactly 1 for every positive input, one reason it
# trains deep networks well; leaky ReLU (shown with $\alpha = 0.1$ to make the slope visible;
# minigen's default is 0.01) keeps a little gradient for negative inputs too.

# %%
z = mg.Tensor(np.linspace(-4, 4, 401), requires_grad=True)
activations = {
    "ReLU": mg.relu,
    "leaky ReLU (0.1)": lambda t: mg.leaky_relu(t, 0.1),
    "tanh": mg.tanh,
    "sigmoid": mg.sigmoid,
    "softplus": mg.softplus,
}
fig, (ax_f, ax_d) = plt.subplots(1, 2, figsize=(7, 2.6))
for name, phi in activations.items():
    out = phi(z)
    (slope,) = mg.grad(out.sum(), z)
    ax_f.plot(z.numpy(), out.numpy(), label=name)
    ax_d.plot(z.numpy(), slope.numpy(), label=name)
ax_f.set_ylim(-1.5, 4)
ax_f.set_title("activation $\\phi(z)$")
ax_d.set_title("derivative $\\phi'(z)$, by autograd")
for ax in (ax_f, ax_d):
    ax.set_xlabel("z")
    ax.axhline(0, color="gray", lw=0.5)
ax_f.legend(fontsize=7, loc="upper left")
save(fig, "04_activations.png")

# %% [markdown]
# ## Initialisation: keeping signals alive through depth
#
# Training starts from random weights, and their *scale* matters more than you might expect. Take
# one pre-activation of a layer with $n$ inputs, $z_j = \sum_{i=1}^{n} h_i W_{ij}$, with weights
# drawn independently with mean 0 and variance $s^2$. Its variance is
#
# $$\operatorname{Var}(z_j) = n\, s^2\, \mathbb{E}[h_i^2].$$
#
# A ReLU then zeroes the negative half of a symmetric $z$, which halves its mean square:
# $\mathbb{E}[\mathrm{relu}(z)^2] = \tfrac12 \operatorname{Var}(z)$. So from one ReLU layer to the
# next, with the biases starting at zero,
#
# $$\mathbb{E}[h^2_{\text{next}}] = \tfrac12\, n\, s^2\; \mathbb{E}[h^2].$$
#
# The factor $\tfrac12 n s^2$ is applied once per layer, so after $\ell$ layers the signal has been
# multiplied by $(\tfrac12 n s^2)^{\ell}$: if the factor is not 1, signals vanish or explode
# exponentially with depth (and so do the gradients, which travel back through the same weights).
#
# * **Glorot** (Xavier) initialisation (Glorot and Bengio, 2010) picks $s^2 = 2 / (n_\text{in} +
#   n_\text{out})$, balancing the forward and backward passes for activations that are roughly
#   linear near zero, like tanh. minigen's `Dense` uses its uniform form, $W \sim U(-a, a)$ with $a
#   = \sqrt{6 / (n_\text{in} + n_\text{out})}$ (a uniform variable has variance $a^2 / 3$), as Keras
#   does. For a square layer, $s^2 = 1/n$, and with ReLU the factor is $\tfrac12$: the mean square
#   halves at every layer, and the root mean square (RMS) shrinks by $1/\sqrt2$.
# * **He** (Kaiming) initialisation (He et al., 2015) picks $s^2 = 2 / n_\text{in}$ (`init="he"`, a
#   normal distribution) to cancel the ReLU's $\tfrac12$ exactly: the factor is 1.
#
# Let us push a batch of standard normal inputs ($\mathbb{E}[x^2] = 1$) through a deep stack of
# square layers and measure the RMS after each, against the predictions $2^{-\ell/2}$ (ReLU, Glorot)
# and 1 (ReLU, He):

# %%
width, depth, batch = (128, 10, 256) if SMOKE else (256, 30, 1000)
inputs = mg.randn(batch, width)
layers_axis = np.arange(1, depth + 1)

fig, ax = plt.subplots()
for label, activation, init in [("ReLU, Glorot", "relu", "glorot"), ("ReLU, He", "relu", "he"),
                                ("tanh, Glorot", "tanh", "glorot")]:
    mg.manual_seed(1)
    stack = [mg.nn.Dense(width, width, activation=activation, init=init) for _ in range(depth)]
    h, rms = inputs, []
    with mg.no_grad():                                   # only measuring: no graph needed
        for layer in stack:
            h = layer(h)
            rms.append(float(np.sqrt(np.mean(h.numpy() ** 2))))
    ax.semilogy(layers_axis, rms, "o-", ms=3, label=label)
    print(f"{label:13s} RMS after layer 1: {rms[0]:.3f}, after layer {depth}: {rms[-1]:.2e}")
ax.semilogy(layers_axis, 2.0 ** (-layers_axis / 2), "k--", lw=1, label="prediction $2^{-\\ell/2}$")
ax.semilogy(layers_axis, np.ones(depth), "k:", lw=1, label="prediction 1")
ax.set_xlabel("layer $\\ell$")
ax.set_ylabel("RMS of the layer's output")
ax.set_title(f"Signal through {depth} layers of width {width}")
ax.legend(fontsize=7)
save(fig, "04_init_depth.png")

# %% [markdown]
# The measurements follow the predictions: with Glorot weights a ReLU stack loses a factor $\sqrt2$
# per layer, while He weights hold the signal steady. tanh with Glorot weights loses some signal in
# the first layer, where tanh squashes the larger inputs, and then fades only slowly, because tanh
# is close to the identity for the small values that remain. For the shallow networks in this
# tutorial either choice trains; for deep ReLU networks, use `init="he"`.
#
# ## The data: two moons
#
# `mg.data.moons(n, noise, seed)` draws points from two interleaved half circles, labelled 0 and 1,
# with Gaussian noise. No straight line separates them, so the network must learn a curved boundary.
# We draw a training set and, with another seed, a test set to measure how well the classifier does
# on points it has never seen.

# %%
n_train = 300 if SMOKE else 1000
x_train, labels_train = mg.data.moons(n_train, noise=0.15, seed=0)
x_test, labels_test = mg.data.moons(1000, noise=0.15, seed=1)
t_train = labels_train.astype("float32").reshape(-1, 1)   # targets as floats, one column
t_test = labels_test.astype("float32").reshape(-1, 1)
print("x_train", x_train.shape, x_train.dtype, "| t_train", t_train.shape, t_train.dtype)

# %% [markdown]
# ## The loss: binary cross-entropy from logits
#
# The network ends in a dense layer with one output and no activation: a **logit** $s$, any real
# number. The predicted probability of class 1 is $p = \sigma(s)$. For a target $t \in \{0, 1\}$ the
# binary cross-entropy is the negative log-probability of the right answer,
#
# $$\ell(s, t) = -\bigl[t \log \sigma(s) + (1 - t) \log(1 - \sigma(s))\bigr].$$
#
# Computed literally it breaks for confident predictions: in float32, $\sigma(100)$ rounds to
# exactly 1, and $\log(1 - 1) = -\infty$. Using $\log \sigma(s) = -\log(1 + e^{-s})$ and $\log(1 -
# \sigma(s)) = -s - \log(1 + e^{-s})$ and splitting on the sign of $s$ gives a form that never
# overflows, because the exponential only ever sees $-|s| \le 0$:
#
# $$\ell(s, t) = \max(s, 0) - s\,t + \log\bigl(1 + e^{-|s|}\bigr), \qquad
#   \frac{\partial \ell}{\partial s} = \sigma(s) - t .$$
#
# That is `mg.losses.bce_with_logits`. The comparison below shows the literal form failing where the
# stable one does not:

# %%
s = mg.Tensor([-100.0, -2.0, 0.0, 3.0, 100.0])
t = mg.Tensor([1.0, 0.0, 1.0, 1.0, 0.0])
stable = mg.losses.bce_with_logits(s, t, reduction="none")
sv, tv = s.numpy(), t.numpy()
with np.errstate(divide="ignore", over="ignore"):
    p = 1 / (1 + np.exp(-sv))
    literal = -(tv * np.log(p) + (1 - tv) * np.log(1 - p))
formula = np.maximum(sv, 0) - sv * tv + np.log1p(np.exp(-np.abs(sv)))
print("literal formula:  ", literal)
print("stable formula:   ", formula)
print("bce_with_logits:  ", stable.numpy())

# %% [markdown]
# ## Three optimizers on the same problem
#
# An optimizer turns gradients into weight updates. With $g$ the gradient of the loss for the
# current mini-batch, a learning rate $\eta$ and $t$ counting steps, minigen's optimizers follow
# PyTorch's rules:
#
# * **SGD** (stochastic gradient descent): $\theta \leftarrow \theta - \eta\, g$.
# * **SGD with momentum** $\mu$: a velocity $v$ remembers past gradients, $v \leftarrow \mu v + g$
#   (starting from $v = g$), and $\theta \leftarrow \theta - \eta\, v$. Steps build up along
#   directions where the gradient is consistent and cancel where it oscillates.
# * **Adam** (Kingma and Ba, 2014) keeps running averages of the gradient and of its square,
#   $m \leftarrow \beta_1 m + (1 - \beta_1)\, g$ and $v \leftarrow \beta_2 v + (1 - \beta_2)\, g^2$
#   (both starting at zero, so they are divided by $1 - \beta^t$ to correct the bias:
#   $\hat m = m / (1 - \beta_1^t)$, $\hat v = v / (1 - \beta_2^t)$), and steps
#   $\theta \leftarrow \theta - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$. Dividing by
#   $\sqrt{\hat v}$ gives every weight a step of about $\eta$ whatever the scale of its gradient.
#
# Every training loop in minigen has the same four lines per mini-batch: reset the gradients
# (tutorial 2: they accumulate otherwise), compute the loss, backpropagate, update. We train the
# same network, from the same initial weights (same seed), on the same batches, with each optimizer,
# and record the loss on the whole training set after every epoch (a pass over the data).

# %%
def make_model():
    return mg.nn.Sequential(
        mg.nn.Dense(2, 32, activation="relu", init="he"),
        mg.nn.Dense(32, 32, activation="relu", init="he"),
        mg.nn.Dense(32, 1),                     # one logit per example
    )


def train(make_optimizer, epochs, seed=0):
    mg.manual_seed(seed)                        # the same initial weights for every optimizer
    model = make_model()
    optimizer = make_optimizer(model.parameters())
    loader = mg.data.DataLoader(x_train, t_train, batch_size=64, shuffle=True, seed=seed)
    history = []
    for epoch in range(epochs):
        for xb, tb in loader:
            optimizer.zero_grad()                            # 1. forget the last step's gradients
            loss = mg.losses.bce_with_logits(model(xb), tb)  # 2. forward: the mean BCE of the batch
            loss.backward()                                  # 3. backward: fill every p.grad
            optimizer.step()                                 # 4. update every parameter
        with mg.no_grad():
            history.append(mg.losses.bce_with_logits(model(x_train), t_train).item())
    return model, history


epochs = 15 if SMOKE else 60
optimizers = {
    "SGD, lr 0.1": lambda params: mg.optim.SGD(params, lr=0.1),
    "SGD + momentum 0.9, lr 0.1": lambda params: mg.optim.SGD(params, lr=0.1, momentum=0.9),
    "Adam, lr 0.01": lambda params: mg.optim.Adam(params, lr=0.01),
}
results = {name: train(make, epochs) for name, make in optimizers.items()}

fig, ax = plt.subplots()
for name, (_, history) in results.items():
    ax.semilogy(np.arange(1, epochs + 1), history, label=name)
    print(f"{name:27s} training loss after {epochs} epochs: {history[-1]:.4f}")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (BCE)")
ax.set_title("One network, one data set, three optimizers")
ax.legend(fontsize=7)
save(fig, "04_optimizers.png")

# %% [markdown]
# Plain SGD makes steady but slow progress: after all the epochs it is still above the loss that the
# other two reach within about ten. Momentum lets consistent gradients add up into long steps, and
# Adam's per-weight step sizes do about as well here. Both fast runs are also noisier from epoch to
# epoch: larger effective steps overshoot now and then. The details depend on the learning rates
# (try the exercises); Adam's strength is that it works well over a wide range of them with little
# tuning, which is why the VAE and GAN tutorials use it.
#
# ## The classifier and its decision boundary
#
# A model predicts class 1 when $p = \sigma(s) > 0.5$, that is when its logit $s > 0$. We measure
# the accuracy on the test set, inside `mg.no_grad()` (only numbers needed) and in evaluation mode
# (`model.eval()`, which matters for layers like dropout; here it changes nothing, but it is a good
# habit). Then we colour the plane by the predicted probability: the **decision boundary** is the
# curve where it crosses 0.5.

# %%
model, _ = results["Adam, lr 0.01"]
model.eval()
with mg.no_grad():
    predicted = (model(x_test).numpy()[:, 0] > 0).astype(np.int64)
accuracy = np.mean(predicted == labels_test.numpy())
print(f"test accuracy: {accuracy:.1%}")

side = 60 if SMOKE else 200
gx, gy = np.meshgrid(np.linspace(-1.5, 2.5, side), np.linspace(-1.0, 1.5, side))
grid = mg.Tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype="float32")
with mg.no_grad():
    probability = mg.sigmoid(model(grid)).numpy().reshape(side, side)

fig, ax = plt.subplots(figsize=(6, 3.8))
filled = ax.contourf(gx, gy, probability, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55)
ax.contour(gx, gy, probability, levels=[0.5], colors="black", linewidths=1.5)
points, classes = x_test.numpy()[:250], labels_test.numpy()[:250]   # a sample, to keep it readable
for label, marker, face in [(0, "o", "white"), (1, "^", "black")]:  # shapes, not colours, tell them
    keep = classes == label
    ax.scatter(points[keep, 0], points[keep, 1], marker=marker, s=16, facecolors=face,
               edgecolors="black", linewidths=0.6, label=f"test points of class {label}")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=2, frameon=False)
fig.colorbar(filled, ax=ax, label="predicted probability of class 1")
ax.set_title(f"Decision boundary (black, p = 0.5); test accuracy {accuracy:.1%}")
save(fig, "04_decision_boundary.png")

# %% [markdown]
# The boundary winds between the two moons, something no straight line could do. The few
# misclassified test points sit where the noise pushes one moon's points into the other's territory.
#
# ## What you learned
#
# * A dense layer computes $\phi(x W + b)$; without the nonlinearity $\phi$, a stack of layers
#   collapses into a single linear map.
# * Activations differ in their derivatives: tanh and sigmoid saturate, ReLU passes gradients
#   through unchanged for positive inputs.
# * The scale of the initial weights multiplies the signal by a fixed factor per layer; Glorot keeps
#   that factor near 1 for tanh-like units, He for ReLU units.
# * Binary cross-entropy should be computed from logits with the stable form
#   $\max(s, 0) - s t + \log(1 + e^{-|s|})$, whose gradient is simply $\sigma(s) - t$.
# * A training step is `zero_grad`, forward, `backward`, `step`. SGD, momentum and Adam differ only
#   in how they turn gradients into steps, and that difference can be large.
#
# ## Exercises
#
# 1. Train `make_model()` with every `activation="relu"` replaced by `None`. What does the decision
#    boundary look like now, and what is the test accuracy? Explain with the "two linear layers are
#    one" identity.
# 2. Sweep Adam's learning rate over $10^{-4}, 10^{-3}, 10^{-2}, 10^{-1}$ and plot the four loss
#    curves. Which is too timid, which too bold? Do the same for SGD.
# 3. Build a 20-layer ReLU network (`Dense(2, 64)`, then 18 times `Dense(64, 64)`, then `Dense(64,
#    1)`) and train it on the moons with `init="glorot"` and with `init="he"`. Relate what you see
#    to the signal-through-depth figure.

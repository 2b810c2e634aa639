# %% [markdown]
# # Solutions: 4. Dense networks
#
# Worked solutions to the exercises of [tutorial 4](../04_dense_networks.py). Try each exercise
# before reading its solution. Figures are written as PNG files to the folder you run it from.

# %%
import os
import sys

import matplotlib.pyplot as plt
import numpy as np

import minigen as mg
import minigen.data  # noqa: F401  (makes mg.data available)

SMOKE = os.environ.get("MINIGEN_TUTORIAL_SMOKE") == "1"
IN_NOTEBOOK = "ipykernel" in sys.modules
plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "savefig.bbox": "tight", "font.size": 9})
mg.backend.set_num_threads(1)     # small networks: one BLAS thread is fastest


def save(fig, filename):
    fig.savefig(filename)
    if not IN_NOTEBOOK:
        plt.close(fig)


x_train, labels_train = mg.data.moons(300 if SMOKE else 1000, noise=0.15, seed=0)
x_test, labels_test = mg.data.moons(1000, noise=0.15, seed=1)
t_train = labels_train.astype("float32").reshape(-1, 1)


def train(model, optimizer, epochs, seed=0):
    """The tutorial's loop; returns the training loss after every epoch."""
    loader = mg.data.DataLoader(x_train, t_train, batch_size=64, shuffle=True, seed=seed)
    history = []
    for _ in range(epochs):
        for xb, tb in loader:
            optimizer.zero_grad()
            loss = mg.losses.bce_with_logits(model(xb), tb)
            loss.backward()
            optimizer.step()
        with mg.no_grad():
            history.append(mg.losses.bce_with_logits(model(x_train), t_train).item())
    return history


def accuracy(model):
    with mg.no_grad():
        predicted = (model(x_test).numpy()[:, 0] > 0).astype(np.int64)
    return np.mean(predicted == labels_test.numpy())


EPOCHS = 10 if SMOKE else 60

# %% [markdown]
# ## Exercise 1: no activations
#
# Without the ReLUs the three layers compose to one affine map, $s = x W + b$ with $W = W_1 W_2 W_3$
# (tutorial 4's identity, applied twice). The logit is linear in $x$, so the boundary $s = 0$ is a
# straight line, and the best a line can do on the two moons is about 85-90% accuracy: it cuts off
# the tips of both moons.

# %%
def make_model(activation):
    return mg.nn.Sequential(mg.nn.Dense(2, 32, activation=activation, init="he"),
                            mg.nn.Dense(32, 32, activation=activation, init="he"),
                            mg.nn.Dense(32, 1))


models = {}
for activation in ["relu", None]:
    mg.manual_seed(0)
    model = make_model(activation)
    train(model, mg.optim.Adam(model.parameters(), lr=0.01), EPOCHS)
    models[activation] = model
    print(f"activation {str(activation):5s}: test accuracy {accuracy(models[activation]):.1%}")

side = 150
gx, gy = np.meshgrid(np.linspace(-1.5, 2.5, side), np.linspace(-1.0, 1.5, side))
grid = mg.Tensor(np.stack([gx.ravel(), gy.ravel()], axis=1), dtype="float32")
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8), sharey=True)
points, classes = x_test.numpy()[:300], labels_test.numpy()[:300]
for ax, (activation, model) in zip(axes, models.items()):
    with mg.no_grad():
        logit = model(grid).numpy().reshape(side, side)
    ax.contourf(gx, gy, logit > 0, levels=[-0.5, 0.5, 1.5], colors=["#c6dbef", "#fcbba1"])
    ax.contour(gx, gy, logit, levels=[0], colors="black")
    for label, marker in [(0, "o"), (1, "^")]:
        keep = classes == label
        ax.scatter(*points[keep].T, s=12, marker=marker, edgecolor="black", linewidths=0.5,
                   facecolor="white" if label == 0 else "black")
    ax.set_title(f"activation {activation}: {accuracy(model):.1%}", fontsize=9)
save(fig, "04_solution_linear_boundary.png")

# %% [markdown]
# ## Exercise 2: learning-rate sweeps
#
# Too small a rate is *timid*: the loss falls, but slowly. Too large is *bold*: the steps overshoot
# and the loss stalls, jumps or diverges. For Adam the step of every weight is about the learning
# rate itself, so $10^{-4}$ is still far from the others after 60 epochs, and $10^{-1}$ falls fast
# but ends above $10^{-2}$, with a jagged curve: it overshoots. SGD's step is the rate times the
# gradient, so its useful range sits higher (here $10^{-1}$ is the best of the four) and $10^{-4}$
# hardly trains.

# %%
rates = [1e-4, 1e-3, 1e-2, 1e-1]
fig, axes = plt.subplots(1, 2, figsize=(8, 2.8), sharey=True)
for ax, (name, make) in zip(axes, [("Adam", mg.optim.Adam), ("SGD", mg.optim.SGD)]):
    for lr in rates:
        mg.manual_seed(0)
        model = make_model("relu")
        history = train(model, make(model.parameters(), lr=lr), EPOCHS)
        ax.semilogy(np.arange(1, EPOCHS + 1), history, label=f"lr {lr:g}")
        print(f"{name:4s} lr {lr:6g}: final training loss {history[-1]:.4f}")
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("epoch")
axes[0].set_ylabel("training loss (BCE)")
axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
save(fig, "04_solution_learning_rates.png")

# %% [markdown]
# ## Exercise 3: 20 layers, Glorot against He
#
# The signal-through-depth figure predicts it: with Glorot weights a ReLU stack loses a factor
# $\sqrt 2$ of RMS per layer, so after 19 hidden layers the signal (and, backwards, the gradient) is
# about $2^{-19/2} \approx 1/700$ of its size. The Glorot network starts with almost no gradient in
# its first layers and trains far more slowly, or stalls at the loss of a constant guess, $\log 2
# \approx 0.693$; He weights keep the signal at its size and the deep network trains like the
# shallow one.

# %%
def deep_model(init):
    layers = [mg.nn.Dense(2, 64, activation="relu", init=init)]
    layers += [mg.nn.Dense(64, 64, activation="relu", init=init) for _ in range(18)]
    return mg.nn.Sequential(*layers, mg.nn.Dense(64, 1, init=init))


for init in ["glorot", "he"]:
    mg.manual_seed(0)
    model = deep_model(init)
    history = train(model, mg.optim.SGD(model.parameters(), lr=0.05), 5 if SMOKE else 30)
    print(f"20 layers, {init:6s}: training loss after epoch 1 {history[0]:.3f}, after the last "
          f"{history[-1]:.3f}; test accuracy {accuracy(model):.1%}")

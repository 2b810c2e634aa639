"""minigen.nn: layers and the Module container.

    model = mg.nn.Sequential(
        mg.nn.Dense(2, 64, activation="relu"),
        mg.nn.Dense(64, 1),
    )
    logits = model(x)
    model.save("model.npz"); model.load("model.npz")
"""

from . import init
from .layers import (ACTIVATIONS, BatchNorm1d, Dense, DenseFunction, Dropout, LeakyReLU, ReLU,
                     Sequential, Sigmoid, Softplus, Tanh, dense)
from .module import Module, Parameter, check_size
from .conv import (AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Flatten, MaxPool2d,
                   Unflatten)

__all__ = ["Module", "Parameter", "Dense", "DenseFunction", "dense", "Sequential", "ReLU",
           "LeakyReLU", "Sigmoid", "Tanh", "Softplus", "Dropout", "BatchNorm1d", "ACTIVATIONS",
           "init", "check_size", "Conv2d", "ConvTranspose2d", "BatchNorm2d", "MaxPool2d",
           "AvgPool2d", "Flatten", "Unflatten"]

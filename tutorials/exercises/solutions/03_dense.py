"""Exercise 3, worked solution: a dense layer.

U(-a, a) has variance a^2 / 3, so a = sqrt(6 / (in + out)) gives Var W = 2 / (in + out): Glorot's
compromise between keeping the forward signal's variance (in Var W = 1) and the backward gradient's
(out Var W = 1).  ``2 * mg.rand(...) - 1`` is U(-1, 1).  minigen's ``mg.nn.Dense`` computes the same
thing as one fused op (``DenseFunction``, minigen/nn/layers.py), with the activation folded in.
"""

import math

import minigen as mg


class MyDense(mg.nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        limit = math.sqrt(6.0 / (in_features + out_features))
        self.weight = mg.nn.Parameter((2 * mg.rand(in_features, out_features) - 1) * limit)
        self.bias = mg.nn.Parameter(mg.zeros(out_features))

    def forward(self, x):
        return x @ self.weight + self.bias


if __name__ == "__main__":
    print(mg.exercises.check("dense", MyDense))

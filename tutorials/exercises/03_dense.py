"""Exercise 3: a dense layer, y = x @ weight + bias.

With x: (batch, in_features), weight: (in_features, out_features) - the founding document's Keras
convention, so there is no transpose - and bias: (out_features,), broadcast over the batch.

* Subclass ``mg.nn.Module`` (or your own ``MyModule`` from exercise 2) and call
  ``super().__init__()`` first.
* Make ``weight`` and ``bias`` ``mg.nn.Parameter``s.  Start the weight from random numbers: if all
  weights are equal, every output unit computes the same thing and gets the same gradient, forever.
  Glorot's uniform start, U(-a, a) with a = sqrt(6 / (in + out)), keeps the variance of the signal
  about the same from layer to layer (tutorial 4).  ``mg.rand(*shape)`` draws U(0, 1).  A zero bias
  is fine.
* Build the forward from minigen's ops: then its backward comes for free.

Run this file to grade your answer:  python tutorials/exercises/03_dense.py
"""

import minigen as mg


class MyDense(mg.nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        raise NotImplementedError("create self.weight (in, out) and self.bias (out,) Parameters")

    def forward(self, x):
        raise NotImplementedError("return x @ weight + bias")


if __name__ == "__main__":
    print(mg.exercises.check("dense", MyDense))

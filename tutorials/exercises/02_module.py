"""Exercise 2: a Module that finds its own parameters.

``model.parameters()`` is what you hand to an optimizer, so every layer and model must be able to
list its learnable tensors - including those of the layers inside it, and those of the layers inside
those.  minigen (like PyTorch) does it by registration: assigning an ``mg.nn.Parameter`` or another
module to an attribute records it, in assignment order.

Write ``MyModule`` so that, for

    class Net(MyModule):
        def __init__(self):
            super().__init__()
            self.gain = mg.nn.Parameter([1.0])
            self.encoder = Encoder()           # a MyModule with parameters w and b

``Net().named_parameters()`` yields ("gain", ...), ("encoder.w", ...), ("encoder.b", ...): a
module's own parameters first, then each sub-module's under its attribute name and a dot.  A
parameter that two modules share is listed once.  Plain tensors, numbers and strings are not
parameters.  Assigning an attribute again replaces what it held.

Run this file to grade your answer:  python tutorials/exercises/02_module.py
"""

import minigen as mg


class MyModule:
    def __init__(self):
        # Assigning self.x = ... here would call __setattr__ below before the registries exist:
        # create them with object.__setattr__(self, name, value).
        raise NotImplementedError("create the registries of parameters and sub-modules")

    def __setattr__(self, name, value):
        raise NotImplementedError("record Parameters and MyModules, then set the attribute")

    def named_parameters(self):
        raise NotImplementedError("yield (dotted name, Parameter), each parameter once")

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def __call__(self, *args):
        return self.forward(*args)      # so that layer(x) runs the subclass's forward

    def zero_grad(self):
        raise NotImplementedError("set every parameter's grad to None")


if __name__ == "__main__":
    print(mg.exercises.check("module", MyModule))

"""Exercise 2, worked solution: a Module that finds its own parameters.

Two dictionaries keep what was assigned, in order (Python's dicts keep insertion order).  Removing a
name from both before recording it again makes reassignment replace, and a set of ids makes a
shared parameter appear once.  minigen's own ``mg.nn.Module`` (minigen/nn/module.py) adds buffers,
train/eval, moving to a device and checkpoints on the same idea.
"""

import minigen as mg


class MyModule:
    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})

    def __setattr__(self, name, value):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, mg.nn.Parameter):
            self._parameters[name] = value
        elif isinstance(value, MyModule):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def named_parameters(self, prefix="", seen=None):
        seen = set() if seen is None else seen
        for name, p in self._parameters.items():
            if id(p) not in seen:
                seen.add(id(p))
                yield prefix + name, p
        for name, module in self._modules.items():
            yield from module.named_parameters(prefix + name + ".", seen)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def __call__(self, *args):
        return self.forward(*args)      # so that layer(x) runs the subclass's forward

    def zero_grad(self):
        for p in self.parameters():
            p.grad = None


if __name__ == "__main__":
    print(mg.exercises.check("module", MyModule))

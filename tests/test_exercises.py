"""mg.exercises.check: the worked solutions pass, the blank exercises and typical mistakes fail, and
the feedback names what is wrong."""

import runpy
from pathlib import Path

import pytest

import minigen as mg

EXERCISES = Path(__file__).resolve().parent.parent / "tutorials" / "exercises"
FILES = {"matmul": ("01_matmul_backward.py", "MyMatMul"), "module": ("02_module.py", "MyModule"),
         "dense": ("03_dense.py", "MyDense"), "sgd": ("04_sgd.py", "MySGD"),
         "adam": ("05_adam.py", "MyAdam")}


def answer(exercise, solution):
    name, cls = FILES[exercise]
    path = EXERCISES / ("solutions" if solution else "") / name
    return runpy.run_path(str(path))[cls]


def test_every_exercise_has_a_file_and_a_solution():
    assert set(FILES) == set(mg.exercises.EXERCISES)
    for name, _ in FILES.values():
        assert (EXERCISES / name).exists() and (EXERCISES / "solutions" / name).exists()
    readme = (EXERCISES / "README.md").read_text(encoding="utf-8")
    assert all(name in readme for name, _ in FILES.values())


@pytest.mark.parametrize("exercise", sorted(FILES))
def test_the_worked_solution_passes_every_check(exercise):
    previous = mg.get_default_dtype()
    report = mg.exercises.check(exercise, answer(exercise, solution=True))
    assert report, str(report)
    assert len(report.checks) >= 3 and not report.stopped
    assert "all pass" in str(report)
    assert mg.get_default_dtype() == previous


@pytest.mark.parametrize("exercise", sorted(FILES))
def test_the_blank_exercise_fails_and_says_it_is_not_written(exercise):
    report = mg.exercises.check(exercise, answer(exercise, solution=False))
    assert not report
    assert any("not written yet" in detail for _, detail in report.failures)
    assert "FAIL" in str(report) and "not yet" in str(report)


# --------------------------------------------------------------------------------------------------
# Typical mistakes, each caught by the check meant for it
# --------------------------------------------------------------------------------------------------

def failed(report):
    return {what: detail for what, detail in report.failures}


def one_failure(report, words):
    """The report fails, and a failing check's description contains ``words``."""
    assert not report, str(report)
    hits = [what for what in failed(report) if words in what]
    assert hits, f"expected a failure about {words!r}:\n{report}"
    return failed(report)[hits[0]]


class ArrayBackward(mg.Function):
    """Right first derivatives, but computed on arrays: cannot be differentiated again."""

    def forward(self, a, b):
        return mg.backend.namespace(a).matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        return mg.Tensor(gy.data @ b.data.T), mg.Tensor(a.data.T @ gy.data)


class NoTranspose(mg.Function):
    def forward(self, a, b):
        return mg.backend.namespace(a).matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        return gy @ b, a.T @ gy           # b should be transposed


def test_matmul_mistakes():
    report = mg.exercises.check("matmul", ArrayBackward)
    assert [what for what, _ in report.failures] == [
        "backward is differentiable (mg.gradgradcheck): written in tensor ops"]
    detail = one_failure(mg.exercises.check("matmul", NoTranspose), "central differences")
    assert "your code raised ValueError" in detail and "test_exercises.py" in detail
    assert "gy @ b.T" in detail                       # the hint
    report = mg.exercises.check("matmul", int)
    assert report.stopped and "subclasses mg.Function" in str(report)


def test_module_mistakes():
    Solution = answer("module", solution=True)

    class NoSubmodules(Solution):
        def named_parameters(self, prefix="", seen=None):
            return iter(self._parameters.items())

    class SharedTwice(Solution):
        def named_parameters(self, prefix="", seen=None):
            for name, p in self._parameters.items():
                yield prefix + name, p
            for name, m in self._modules.items():
                yield from m.named_parameters(prefix + name + ".")

    detail = one_failure(mg.exercises.check("module", NoSubmodules), "named_parameters")
    assert "pair.first.w" in detail                   # the expected names are shown
    detail = one_failure(mg.exercises.check("module", SharedTwice), "shared one once")
    assert detail.count("pair.second.w") == 1 and "pair.first.w" in detail


def test_dense_mistakes():
    class Transposed(mg.nn.Module):                   # PyTorch's (out, in) layout
        def __init__(self, n_in, n_out):
            super().__init__()
            self.weight = mg.nn.Parameter(mg.randn(n_out, n_in) * 0.5)
            self.bias = mg.nn.Parameter(mg.zeros(n_out))

        def forward(self, x):
            return x @ self.weight.T + self.bias

    class Zeros(mg.nn.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.weight = mg.nn.Parameter(mg.zeros(n_in, n_out))
            self.bias = mg.nn.Parameter(mg.zeros(n_out))

        def forward(self, x):
            return x @ self.weight + self.bias

    class MinusBias(Zeros):                           # wrong sign: hidden by a zero bias
        def __init__(self, n_in, n_out):
            super().__init__(n_in, n_out)
            self.weight = mg.nn.Parameter(mg.randn(n_in, n_out) * 0.6)

        def forward(self, x):
            return x @ self.weight - self.bias

    detail = one_failure(mg.exercises.check("dense", Transposed), "has weight")
    assert "(4, 3)" in detail and "(in, out)" in detail
    detail = one_failure(mg.exercises.check("dense", Zeros), "start random")
    assert "same value" in detail
    assert one_failure(mg.exercises.check("dense", MinusBias), "forward equals")


def test_optimizer_mistakes():
    SGD = answer("sgd", solution=True)

    class Averaging(SGD):                             # momentum as a moving average: not PyTorch's
        def step(self):
            for i, p in enumerate(self.params):
                v = self.velocity.get(i, 0.0)
                v = self.momentum * v + (1 - self.momentum) * p.grad.data
                self.velocity[i] = v
                p.data -= self.lr * v

    class Rebinding(SGD):                             # p = p - lr * g changes a local name only
        def step(self):
            for p in self.params:
                p = p - self.lr * p.grad              # noqa: PLW2901

    detail = one_failure(mg.exercises.check("sgd", Averaging), "momentum=0.9")
    assert "differs from minigen's" in detail and "v = grad at the first step" in detail
    detail = one_failure(mg.exercises.check("sgd", Rebinding), "lr=0.1")
    assert "parameter 0" in detail

    Adam = answer("adam", solution=True)

    class NoCorrection(Adam):
        def step(self):
            b1, b2 = self.betas
            for i, p in enumerate(self.params):
                g = p.grad.data
                m, v = self.state.get(i, (0.0, 0.0))
                m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
                self.state[i] = (m, v)
                p.data -= self.lr * m / (v ** 0.5 + self.eps)

    class EpsInside(Adam):
        def step(self):
            b1, b2 = self.betas
            for i, p in enumerate(self.params):
                g = p.grad.data
                m, v, t = self.state.get(i, (0.0, 0.0, 0))
                t += 1
                m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
                self.state[i] = (m, v, t)
                v_hat = v / (1 - b2 ** t)
                p.data -= self.lr * (m / (1 - b1 ** t)) / (v_hat + self.eps) ** 0.5

    detail = one_failure(mg.exercises.check("adam", NoCorrection), "lr=0.01")
    assert "m_hat = m / (1 - b1^t)" in detail
    report = mg.exercises.check("adam", EpsInside)
    assert not report and report.stopped


def test_unknown_exercise_names_the_choices():
    with pytest.raises(ValueError, match="matmul, module, dense, sgd, adam"):
        mg.exercises.check("conv", object)


def test_a_dense_layer_on_the_learners_own_module_passes():
    """Exercise 3 on exercise 2's MyModule (the track builds on itself)."""
    MyModule = answer("module", solution=True)

    class MyDense(MyModule):
        def __init__(self, n_in, n_out):
            super().__init__()
            limit = (6.0 / (n_in + n_out)) ** 0.5
            self.weight = mg.nn.Parameter((2 * mg.rand(n_in, n_out) - 1) * limit)
            self.bias = mg.nn.Parameter(mg.zeros(n_out))

        def forward(self, x):
            return x @ self.weight + self.bias

    report = mg.exercises.check("dense", MyDense)
    assert report, str(report)

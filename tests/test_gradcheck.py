"""mg.gradcheck and mg.gradgradcheck catch wrong derivatives and say where."""

import pytest

import minigen as mg


class WrongSquare(mg.Function):
    """y = x^2 with a backward that forgets the factor 2."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        return gy * self.inputs[0]


class FrozenSquare(mg.Function):
    """y = x^2 with a right first derivative built from a constant: its second derivative is
    lost."""

    def forward(self, x):
        self.twice = 2.0 * x
        return x * x

    def backward(self, gy):
        return gy * mg.Tensor(self.twice)


def test_a_wrong_backward_is_caught_with_input_element_and_values(backend):
    x = mg.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda x: WrongSquare()(x), [x])
    message = str(info.value)
    assert "input 0" in message and "element (0, 0)" in message
    assert "analytic" in message and "numerical" in message
    assert "4 of 4 elements disagree" in message


def test_a_correct_backward_passes_and_verbose_prints_the_table(backend, capsys):
    x = mg.Tensor([1.0, -2.0], requires_grad=True)
    assert mg.gradcheck(lambda x: x * x, [x], verbose=True)
    table = capsys.readouterr().out
    assert "analytic" in table and "numerical" in table and table.count("yes") == 2


def test_gradgradcheck_catches_a_backward_that_is_not_differentiable(backend):
    x = mg.Tensor([1.0, -2.0], requires_grad=True)
    assert mg.gradcheck(lambda x: FrozenSquare()(x), [x])        # first order is right
    with pytest.raises(mg.GradcheckError):
        mg.gradgradcheck(lambda x: FrozenSquare()(x), [x])       # second order is not


def test_inputs_are_restored_exactly(backend):
    x = mg.Tensor([0.1, 0.2, 0.3], requires_grad=True)
    before = x.numpy().copy()
    mg.gradcheck(lambda x: mg.exp(x), [x])
    assert (x.numpy() == before).all()


def test_float32_inputs_are_refused_with_advice():
    x = mg.Tensor([1.0], requires_grad=True, dtype="float32")
    with pytest.raises(TypeError, match="float64"):
        mg.gradcheck(lambda x: x * x, [x])


def test_only_inputs_that_require_grad_are_checked(backend):
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    c = mg.Tensor([3.0, 4.0])
    assert mg.gradcheck(lambda x, c: x * c, [x, c])
    with pytest.raises(ValueError, match="nothing to check"):
        mg.gradcheck(lambda c: c * c, [c])

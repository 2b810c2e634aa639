"""mg.gradcheck and mg.gradgradcheck catch wrong derivatives and say where."""

import pytest

import minigen as mg
from minigen import backend as B


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
    assert "output element (0, 0)" in message
    assert "analytic" in message and "numerical" in message
    assert "4 of 16 Jacobian entries disagree" in message     # the 12 zeros agree


def test_a_correct_backward_passes_and_verbose_prints_the_table(backend, capsys):
    x = mg.Tensor([1.0, -2.0], requires_grad=True)
    assert mg.gradcheck(lambda x: x * x, [x], verbose=True)
    table = capsys.readouterr().out
    assert "analytic" in table and "numerical" in table and table.count("yes") == 2
    assert "2 entries that are 0 on both sides not shown" in table


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


# --------------------------------------------------------------------------------------------------
# The checker must not lie (issue 10, items 6-8)
# --------------------------------------------------------------------------------------------------

def test_6_outputs_of_very_different_sizes_are_checked_apart(backend):
    # exp at [0, 20]: outputs 1 and 4.9e8; one weighted sum of both let the rounding of the large
    # one (about 6e-8 absolute) swamp the derivative of the small one.  PyTorch's gradcheck passes
    # it.
    x = mg.Tensor([0.0, 20.0], requires_grad=True)
    assert mg.gradcheck(mg.exp, [x])
    y = mg.Tensor([0.0, 20.0, -3.0], requires_grad=True)
    assert mg.gradcheck(lambda t: mg.exp(t) * t, [y])


class _SmallOutputWrong(mg.Function):
    """y = (exp(a), b) with the derivative of the small output off by a factor 2."""

    def forward(self, a, b):
        return B.namespace(a).stack([B.namespace(a).exp(a), b])

    def backward(self, gy):
        a, b = self.inputs
        return gy[0] * mg.exp(a), gy[1] * 2.0


def test_6_a_wrong_small_output_is_not_hidden_by_a_large_one(backend):
    a = mg.Tensor(20.0, requires_grad=True)
    b = mg.Tensor(1.0, requires_grad=True)
    with pytest.raises(mg.GradcheckError, match="input 1, element \\(\\), output element \\(1,\\)"):
        mg.gradcheck(lambda a, b: _SmallOutputWrong()(a, b), [a, b])


class _ScalesGyInPlace(mg.Function):
    """y = 2x whose backward doubles gy in place and returns it (right value, but the caller's gy is
    changed: a gradient shared with another input would be wrong)."""

    def forward(self, x):
        return 2.0 * x

    def backward(self, gy):
        gy.data *= 2.0
        return gy


def test_7_a_backward_that_changes_gy_in_place_fails(backend):
    x = mg.Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(mg.GradcheckError, match="changed its upstream gradient gy in place"):
        mg.gradcheck(lambda t: _ScalesGyInPlace()(t), [x])


class _WrongWhereItOverflows(mg.Function):
    """y = exp(x) with the derivative 1 (wrong): at x = 710 exp overflows to inf."""

    def forward(self, x):
        return B.namespace(x).exp(x)

    def backward(self, gy):
        return gy * 1.0


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")   # the point of the test
def test_8_a_non_finite_numerical_derivative_is_an_error_not_a_pass(backend):
    x = mg.Tensor([709.7827128], requires_grad=True)    # exp(x + 1e-6) overflows, exp(x - 1e-6) not
    with pytest.raises(mg.GradcheckError, match="numerical derivative .* is (inf|nan).*not finite"):
        mg.gradcheck(lambda t: _WrongWhereItOverflows()(t), [x])
    with pytest.raises(mg.GradcheckError, match="not finite"):
        mg.gradcheck(mg.exp, [x])                        # even with the right rule: cannot tell


def test_9_a_gradient_of_the_wrong_shape_is_refused(backend):
    class Transposed(mg.Function):
        def forward(self, x):
            return x * 1.0

        def backward(self, gy):
            return gy.T

    x = mg.Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    with pytest.raises(ValueError, match=r"transposed: backward returned a gradient of shape "
                                         r"\(3, 2\) for input 0 of shape \(2, 3\)"):
        mg.gradcheck(lambda t: Transposed()(t), [x])
    assert (x.numpy() == [[1, 2, 3], [4, 5, 6]]).all()   # restored even though the check raised

"""Every op runs forward and backward in float32 without creating a float64 array.

On the "strict-float32" backend (array-api-strict's no_float64 device) any float64 array is an
error, so a silent float32 -> float64 promotion (a NumPy float64 scalar, a Python-side constant made
in float64, a mask cast to the wrong dtype) fails here even though NumPy would quietly accept it.
The same run on the "numpy" backend checks the dtypes that come out.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

import minigen as mg
from op_specs import SPECS, SECOND_ORDER, call, operands, reference_values, torch_result_dtype


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
@given(data=st.data())
def test_forward_and_backward_stay_float32(backend32, spec, data):
    arrays, params = spec.draw(data)
    ops, tensors = operands(arrays, np.float32)
    out = call(spec, ops, params)
    # int, bool and float32 constants and Python numbers never lift float32 tensors to float64
    assert torch_result_dtype(arrays, "float32", default="float32") == "float32"
    assert mg.backend.dtype_name(out.dtype) == "float32"
    np.testing.assert_allclose(out.numpy(), spec.ref(*reference_values(arrays), **params),
                               rtol=1e-5, atol=1e-5)
    (out * out).sum().backward()
    for t in tensors:
        assert t.grad is not None
        assert mg.backend.dtype_name(t.grad.dtype) == "float32"
        assert t.grad.shape == t.shape
        assert t.grad.device == t.device


@pytest.mark.parametrize("spec", SECOND_ORDER, ids=[s.name for s in SECOND_ORDER])
@given(data=st.data())
def test_double_backward_stays_float32(backend32, spec, data):
    arrays, params = spec.draw(data)
    ops, tensors = operands(arrays, np.float32)
    out = call(spec, ops, params)
    grads = mg.grad((out * out).sum(), tensors, create_graph=True)
    penalty = sum(((g * g).sum() for g in grads), start=mg.zeros((), dtype="float32"))
    for g in mg.grad(penalty, tensors):
        assert mg.backend.dtype_name(g.dtype) == "float32"

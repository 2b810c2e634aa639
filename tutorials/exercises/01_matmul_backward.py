"""Exercise 1: the backward of a matrix product.

Tutorial 4 derives it; here you write it.  For y = a @ b with a: (n, k), b: (k, m) and the upstream
gradient g = dL/dy: (n, m), the vector-Jacobian products are

    dL/da = g @ b^T      (n, k), the shape of a
    dL/db = a^T @ g      (k, m), the shape of b

Write them with tensor operations (``@``, ``.T``) on ``gy`` and ``self.inputs``, not on arrays: then
the backward is itself recorded when ``create_graph=True``, and the grader's second-order check
(``mg.gradgradcheck``) passes.

Run this file to grade your answer:  python tutorials/exercises/01_matmul_backward.py
(a worked solution is in solutions/01_matmul_backward.py: try first).
"""

import minigen as mg


class MyMatMul(mg.Function):
    """y = a @ b for 2-D a and b."""

    def forward(self, a, b):
        # a and b are backend arrays (NumPy or CuPy): xp = mg.backend.namespace(a) is their module
        raise NotImplementedError("return the product of a and b (xp.matmul)")

    def backward(self, gy):
        a, b = self.inputs           # the input Tensors
        raise NotImplementedError("return (dL/da, dL/db) as Tensors")


if __name__ == "__main__":
    print(mg.exercises.check("matmul", MyMatMul))

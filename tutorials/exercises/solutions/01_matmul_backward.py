"""Exercise 1, worked solution: the backward of a matrix product.

Each gradient has the shape of its input, which fixes where the transposes go: g is (n, m), so
dL/da (n, k) can only be g @ b^T, and dL/db (k, m) only a^T @ g.  Element by element,
y[i, j] = sum_p a[i, p] b[p, j], so dL/da[i, p] = sum_j g[i, j] b[p, j] = (g @ b^T)[i, p].
"""

import minigen as mg


class MyMatMul(mg.Function):
    """y = a @ b for 2-D a and b;  dL/da = g @ b^T,  dL/db = a^T @ g."""

    def forward(self, a, b):
        xp = mg.backend.namespace(a)
        return xp.matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        return gy @ b.T, a.T @ gy


if __name__ == "__main__":
    print(mg.exercises.check("matmul", MyMatMul))

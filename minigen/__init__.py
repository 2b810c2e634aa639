"""minigen: a small, readable deep-learning engine on NumPy (CPU) or CuPy (GPU).

    import minigen as mg
    x = mg.Tensor([[1.0, 2.0]], requires_grad=True)
    y = (x ** 2).sum()
    y.backward()
    x.grad            # tensor([[2., 4.]])

See the tutorials/ folder for a path from derivatives to a VAE-GAN.
"""

from .backend import (BackendError, get_backend, get_default_dtype, manual_seed, set_backend,
                      set_default_dtype, using_backend, available_backends)
from .autograd import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad
from .functions import (abs, astype, broadcast_to, clip, concatenate, exp, leaky_relu, log, logsumexp,
                        matmul, max, maximum, mean, relu, reshape, sigmoid, softplus, sqrt, stack, sum,
                        sum_to, tanh, transpose, where)
from .creation import full, ones, ones_like, rand, randn, zeros, zeros_like
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from . import backend

__version__ = "0.1.0"

__all__ = [
    "BackendError", "Function", "GradcheckError", "Tensor", "abs", "astype", "available_backends",
    "backend", "broadcast_to", "clip", "concatenate", "enable_grad", "exp", "get_backend",
    "full", "get_default_dtype", "ones", "rand", "randn", "zeros", "grad", "gradcheck", "gradgradcheck", "is_grad_enabled", "leaky_relu", "log",
    "logsumexp", "manual_seed", "matmul", "max", "maximum", "mean", "no_grad", "ones_like", "relu",
    "reshape", "set_backend", "set_default_dtype", "sigmoid", "softplus", "sqrt", "stack", "sum",
    "sum_to", "tanh", "transpose", "using_backend", "where", "zeros_like",
]

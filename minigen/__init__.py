"""minigen: a small, readable deep-learning engine on NumPy (CPU) or CuPy (GPU).

    import minigen as mg
    x = mg.Tensor([[1.0, 2.0]], requires_grad=True)
    y = (x ** 2).sum()
    y.backward()
    x.grad            # tensor([[2., 4.]])

See the tutorials/ folder for a path from derivatives to a VAE-GAN.
"""

from . import backend
from .backend import (BackendError, available_backends, get_backend, get_num_threads,
                      manual_seed, set_backend, set_num_threads, synchronize, using_backend)
from .dtypes import get_default_dtype, set_default_dtype, using_default_dtype
from .autograd import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad
from .functions import (abs, astype, broadcast_to, clip, concatenate, cos, exp, leaky_relu, log,
                        logsumexp, matmul, max, maximum, mean, relu, reshape, sigmoid, sin,
                        softplus,
                        sqrt, stack, sum, sum_to, tanh, transpose, where)
from .creation import full, ones, ones_like, rand, randn, zeros, zeros_like
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .fusion import is_fusion_enabled, set_fusion, using_fusion
from . import conv
from .conv import avg_pool2d, conv2d, conv_transpose2d, max_pool2d, pad
from . import nn, losses, distributions, optim, data, metrics
from .distributions import reparameterize
from . import models
from . import graph, exercises, interop
from .interop import from_dlpack
from .graph import draw_backward, draw_graph, to_dot
from .models import GAN, VAE, VAEGAN

__version__ = "0.1.0"

__all__ = [
    # backend, dtype, randomness
    "backend", "BackendError", "available_backends", "get_backend", "get_default_dtype",
    "get_num_threads", "manual_seed",
    "set_backend", "set_default_dtype", "set_num_threads", "synchronize", "using_backend",
    "using_default_dtype",
    # tensors and autograd
    "Function", "Tensor", "enable_grad", "grad", "is_grad_enabled", "no_grad",
    # ops
    "abs", "astype", "broadcast_to", "clip", "concatenate", "cos", "exp", "leaky_relu", "log",
    "logsumexp", "matmul", "max", "maximum", "mean", "relu", "reshape", "sigmoid", "sin",
    "softplus",
    "sqrt", "stack", "sum", "sum_to", "tanh", "transpose", "where",
    # convolutions, pooling, padding (NCHW)
    "conv", "conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "pad",
    # making tensors
    "full", "ones", "ones_like", "rand", "randn", "zeros", "zeros_like",
    # gradient checking
    "GradcheckError", "gradcheck", "gradgradcheck",
    # fused fast ops or the readable references
    "is_fusion_enabled", "set_fusion", "using_fusion",
    # layers, losses, distributions, optimizers, data, metrics
    "nn", "losses", "distributions", "optim", "reparameterize", "data", "metrics",
    # models
    "models", "VAE", "GAN", "VAEGAN",
    # seeing the graph
    "graph", "draw_graph", "draw_backward", "to_dot",
    # build it yourself
    "exercises",
    # leaving minigen: DLPack, PyTorch checkpoints
    "interop", "from_dlpack",
]

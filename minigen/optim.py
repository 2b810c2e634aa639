"""Optimizers with PyTorch's exact update rules, so a run can be compared with PyTorch step by step.

    opt = mg.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()                  # gradients accumulate until reset
        loss = mg.losses.bce_with_logits(model(x), y)
        loss.backward()
        opt.step()

Updates work on the arrays directly (no graph), in place: ``p.data`` keeps its identity and no copy
of a parameter is made.  The state (momentum, Adam's moments) is allocated on each parameter's
device in its dtype, and follows the parameter when ``Module.to`` moves it.  Gradients are only
read: a gradient array may be shared with another tensor, so it is never changed in place.
Parameters whose ``grad`` is None are skipped (their state does not advance either).

``state_dict()`` gives a flat ``{name: NumPy array}`` (hyperparameters, step counts and buffers)
that ``mg.backend.save_arrays`` can write; ``load_state_dict`` puts it back, so a run resumes
exactly.
"""

import math
from collections import OrderedDict

from . import backend as B
from .autograd import Tensor, as_tensor, mark_modified
from .fused import adam_step

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm_"]


def _check(condition, message):
    if not condition:
        raise ValueError(message)


class Optimizer:
    """The shared part: the parameter list, per-parameter state, zero_grad, step and checkpoints.

    A subclass lists its hyperparameters (floats or bools kept as attributes) in
    ``hyperparameters``, its state arrays in ``buffers``, and defines ``_update(p, grad, state)``.
    """

    hyperparameters = ()
    buffers = ()

    def __init__(self, params):
        self.params = list(params)
        _check(len(self.params) > 0, f"{type(self).__name__}: got an empty parameter list")
        seen = set()
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{type(self).__name__}: parameter {i} is not a tensor that "
                                "requires grad (pass model.parameters())")
            _check(id(p) not in seen, f"{type(self).__name__}: parameter {i} appears twice")
            seen.add(id(p))
        self.state = [{} for _ in self.params]   # per parameter: "step" (an int) and buffer arrays

    def zero_grad(self):
        """Set every parameter's gradient to None (gradients accumulate until then)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient, in place."""
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            self._follow(p, state)
            state["step"] = state.get("step", 0) + 1
            self._update(p, p.grad.data, state)
            mark_modified(p)         # a graph built before this step may not backpropagate now

    def _update(self, p, grad, state):
        raise NotImplementedError

    @staticmethod
    def _follow(p, state):
        """Move state arrays to the parameter's device if ``Module.to`` has moved the parameter."""
        device = getattr(p.data, "device", None)
        for name, value in state.items():
            if name != "step" and (type(value) is not type(p.data)
                                   or getattr(value, "device", None) != device):
                state[name] = as_tensor(value, p).data

    # --- checkpoints ------------------------------------------------------------------------------
    def state_dict(self):
        """``{name: NumPy array}``: each hyperparameter ("lr"...), and per parameter i "i.step" and
        its buffers ("i.exp_avg"...).  Copies: stepping on does not change them."""
        out = OrderedDict((name, host_scalar(getattr(self, name), "bool" if isinstance(
            getattr(self, name), bool) else "float64")) for name in self.hyperparameters)
        for i, state in enumerate(self.state):
            for name, value in state.items():
                if name == "step":
                    out[f"{i}.step"] = host_scalar(value, "int64")
                else:
                    out[f"{i}.{name}"] = B.of(value).to_numpy(value).copy()
        return out

    def load_state_dict(self, state):
        """Restore a ``state_dict()`` (NumPy or backend arrays), onto each parameter's device and
        dtype. Everything is checked first: a ValueError lists missing, unexpected and mis-shaped
        entries."""
        missing = [name for name in self.hyperparameters if name not in state]
        unexpected, misshaped, per_param = [], [], [{} for _ in self.params]
        for key, value in state.items():
            if key in self.hyperparameters:
                continue
            index, _, name = key.partition(".")
            if not index.isdigit() or int(index) >= len(self.params) or \
                    name not in ("step",) + self.buffers:
                unexpected.append(key)
                continue
            p = self.params[int(index)]
            if name != "step" and tuple(value.shape) != p.shape:
                misshaped.append(f"{key}: checkpoint {tuple(value.shape)}, parameter {p.shape}")
            per_param[int(index)][name] = value
        problems = [f"{label}: {', '.join(items)}" for label, items in (
            ("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if items]
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state does not fit "
                             "(" + " | ".join(problems) + ")")
        for name in self.hyperparameters:
            kind = type(getattr(self, name))
            setattr(self, name, kind(_number(state[name])))
        for i, (p, saved) in enumerate(zip(self.params, per_param)):
            self.state[i] = {name: int(_number(value)) if name == "step"
                             else as_tensor(value, p).data
                             for name, value in saved.items()}
        return self


def host_scalar(value, dtype):
    """A 0-d NumPy array holding the Python number ``value`` (checkpoints hold plain arrays)."""
    with B.using_backend("numpy"):
        return Tensor(value, dtype=dtype).numpy()


def _number(value):
    """A Python number from a 0-d array of any backend (or a Tensor, or a number)."""
    if isinstance(value, Tensor):
        return value.item()
    owner = B.of(value)
    if owner is not None:
        value = owner.to_numpy(value)
    return value.item() if hasattr(value, "item") else value


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum, Nesterov momentum and L2 weight decay (PyTorch's
    rule).

    ``SGD(params, lr, momentum=0.0, weight_decay=0.0, *, dampening=0.0, nesterov=False)``: the
    positional order is minigen's documented one (PyTorch puts dampening before weight_decay), so
    the rarer two are keyword-only.

    For each parameter p with gradient g, at step t:

        g <- g + weight_decay * p                              (if weight_decay != 0)
        if momentum != 0:
            b <- g                                     at t = 1
            b <- momentum * b + (1 - dampening) * g    after
            g <- g + momentum * b   if nesterov  else  g <- b
        p <- p - lr * g
    """

    hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    buffers = ("momentum_buffer",)

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, *, dampening=0.0,
                 nesterov=False):
        super().__init__(params)
        self.lr, self.momentum, self.dampening = float(lr), float(momentum), float(dampening)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)
        _check(self.lr >= 0.0, f"SGD: lr must be >= 0, got {lr}")
        _check(self.momentum >= 0.0, f"SGD: momentum must be >= 0, got {momentum}")
        _check(self.weight_decay >= 0.0, f"SGD: weight_decay must be >= 0, got {weight_decay}")
        _check(not self.nesterov or (self.momentum > 0.0 and self.dampening == 0.0),
               "SGD: Nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, p, grad, state):
        g = grad
        if self.weight_decay != 0.0:
            g = g + self.weight_decay * p.data
        if self.momentum != 0.0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = B.ensure_array(B.of(p.data).copy(g))
            else:
                buf *= self.momentum
                buf += (1.0 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014) with bias correction, as PyTorch computes it.

    For each parameter p with gradient g, at step t (m and v start at zero):

        g <- g + weight_decay * p                     (L2 penalty, if weight_decay != 0; see AdamW)
        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        p <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    eps is added after the square root of the bias-corrected v, as in PyTorch.
    """

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay")
    buffers = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr, self.eps, self.weight_decay = float(lr), float(eps), float(weight_decay)
        self.beta1, self.beta2 = (float(b) for b in betas)
        name = type(self).__name__
        _check(self.lr >= 0.0, f"{name}: lr must be >= 0, got {lr}")
        _check(self.eps >= 0.0, f"{name}: eps must be >= 0, got {eps}")
        _check(0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0,
               f"{name}: betas must be in [0, 1), got {betas}")
        _check(self.weight_decay >= 0.0, f"{name}: weight_decay must be >= 0, got {weight_decay}")
        self._scratch_arrays = {}

    @property
    def betas(self):
        return (self.beta1, self.beta2)

    def _update(self, p, grad, state):
        t, g = state["step"], grad
        if self.weight_decay != 0.0:
            if self.decoupled:
                p.data *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * p.data
        if "exp_avg" not in state:
            owner = B.of(p.data)
            state["exp_avg"] = owner.zeros(p.shape, like=p.data)
            state["exp_avg_sq"] = owner.zeros(p.shape, like=p.data)
        # The bias corrections, folded into two scalars (the same update, one pass fewer):
        #   (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps) = step_size * m / (sqrt(v) + eps * sqrt(c2))
        root_c2 = math.sqrt(1.0 - self.beta2 ** t)
        step_size = self.lr * root_c2 / (1.0 - self.beta1 ** t)
        adam_step(p.data, g, state["exp_avg"], state["exp_avg_sq"], self._scratch(p),
                    self.beta1, self.beta2, step_size, self.eps * root_c2)

    def _scratch(self, p):
        """A work array like ``p`` for the NumPy kernel; kept apart from ``state`` (never saved)."""
        scratch = self._scratch_arrays.get(id(p))
        if scratch is None or type(scratch) is not type(p.data) or scratch.shape != p.shape \
                or scratch.dtype != p.data.dtype:
            scratch = self._scratch_arrays[id(p)] = B.of(p.data).zeros(p.shape, like=p.data)
        return scratch


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as PyTorch's AdamW:

        p <- p * (1 - lr * weight_decay)              before the Adam step, which then uses g
        unchanged

    The decay shrinks every weight by the same factor, whatever the size of its gradient (with
    Adam's L2 penalty, the adaptive scaling weakens the decay of weights with large gradients).
    """

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


def clip_grad_norm_(params, max_norm, eps=1e-6):
    """Scale the gradients so that their global L2 norm is at most ``max_norm`` (as PyTorch):

        total = sqrt(sum over all parameters of sum(g^2))
        g <- g * min(1, max_norm / (total + eps))

    Each ``p.grad`` is replaced by a new tensor (the old arrays are not changed).  Parameters
    without a gradient are ignored.  Returns the total norm before clipping, as a 0-d Tensor.
    """
    grads = [p for p in params if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    xp = B.namespace(grads[0].grad.data)
    total = 0.0
    for p in grads:
        g = p.grad.data
        total = total + xp.sum(g * g)
    norm = B.ensure_array(xp.sqrt(total))          # (NumPy answers 0-d results as scalars)
    scale = B.ensure_array(xp.minimum(float(max_norm) / (norm + eps), 1.0))
    for p in grads:
        p.grad = Tensor._wrap(p.grad.data * scale)
    return Tensor._wrap(norm)

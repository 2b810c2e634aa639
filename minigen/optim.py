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
from .fused import adam_step, adam_step_flat
from .fusion import is_fusion_enabled
from .nn.module import check_state_dict

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
        self.params = _parameter_list(type(self).__name__, params)
        self.state = [{} for _ in self.params]   # per parameter: "step" (an int) and buffer arrays

    def zero_grad(self):
        """Set every parameter's gradient to None (gradients accumulate until then)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """Update every parameter that has a gradient, in place."""
        active = []                               # (parameter, gradient array, state)
        for p, state in zip(self.params, self.state):
            if p.grad is None:
                continue
            g, data = p.grad.data, p.data
            if type(g) is not type(data) or g.shape != data.shape or (
                    g.dtype is not data.dtype and g.dtype != data.dtype):
                raise ValueError(
                    f"{type(self).__name__}.step: a gradient of shape {p.grad.shape} "
                    f"({B.dtype_name(g.dtype)}, {p.grad.device}) for a parameter of shape "
                    f"{p.shape} ({B.dtype_name(data.dtype)}, {p.device}); backward gives "
                    "each parameter its own shape, dtype and device: check a .grad set by "
                    "hand")
            active.append((p, g, state))
        if not active:
            return
        try:
            for _, _, state in active:
                state["step"] = state.get("step", 0) + 1
            self._update_all(active)
        finally:
            # a graph built before this step may not backpropagate now (one clock tick for all)
            mark_modified(*(p for p, _, _ in active))

    def _update_all(self, active):
        """Update the ``(parameter, gradient array, state)`` triples (steps already counted)."""
        for p, g, state in active:
            self._follow(p, state)
            self._update(p, g, state)

    def _update(self, p, grad, state):
        raise NotImplementedError

    @staticmethod
    def _follow(p, state):
        """Move state arrays to the parameter's device if ``Module.to`` has moved the parameter."""
        data = p.data
        kind, device = type(data), getattr(data, "device", None)
        for name, value in state.items():
            if (type(value) is not kind or getattr(value, "device", None) != device) \
                    and name != "step":
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
        dtype.  Everything is checked first: a TypeError for a state that is not a mapping of
        arrays, a ValueError listing missing, unexpected and mis-shaped entries."""
        check_state_dict(f"{type(self).__name__}.load_state_dict", state, numbers=True)
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


def _parameter_list(who, params):
    """``params`` (an iterable of tensors, or of ``(name, tensor)`` pairs as ``named_parameters()``
    gives) as a list, checked as PyTorch checks it: a single tensor or a set is a TypeError
    (iterating a tensor would give its rows), so is anything but a tensor in it; a tensor made by an
    op (not a leaf) is a ValueError, since an update would not reach the leaf it came from.  Tensors
    that do not require grad are accepted and never updated (they get no gradient), as in
    PyTorch."""
    if isinstance(params, Tensor):
        raise TypeError(f"{who}: params should be an iterable of Tensors, but got a single Tensor "
                        "(pass [tensor], or model.parameters())")
    if isinstance(params, (set, frozenset)):
        raise TypeError(f"{who}: params must be an ordered collection (a list), not a set: a set's "
                        "order changes between runs, and with it the meaning of a checkpoint")
    out = []
    for i, p in enumerate(params):
        if isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str):
            p = p[1]                                # (name, parameter) from named_parameters()
        if isinstance(p, dict):
            raise TypeError(f"{who}: parameter groups (dicts) are not supported; pass one iterable "
                            "of tensors (one optimizer per group)")
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: can only optimize Tensors, but parameter {i} is a "
                            f"{type(p).__name__}")
        if not p.is_leaf:
            raise ValueError(f"{who}: can't optimize a non-leaf Tensor (parameter {i}, shape "
                             f"{p.shape}, was made by {p.creator.name}); optimize the leaf it was "
                             "computed from, or .detach() it and set requires_grad")
        out.append(p)
    _check(len(out) > 0, f"{who}: got an empty parameter list")
    seen = set()
    for i, p in enumerate(out):
        _check(id(p) not in seen, f"{who}: parameter {i} appears twice")
        seen.add(id(p))
    return out


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

    On NumPy, with fusion on, the parameters that are at the same step (and of one dtype) are
    updated together: their m and v lie back to back in one array each (``state[i]["exp_avg"]``
    is a view of it), so a few array calls update every small parameter at once
    (``fused.adam_step_flat``).  Elsewhere, and for Adam's L2 penalty, each parameter is updated
    on its own (``fused.adam_step``).  The rule is the same either way.
    """

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay")
    buffers = ("exp_avg", "exp_avg_sq")
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params)
        self.lr, self.eps, self.weight_decay = float(lr), float(eps), float(weight_decay)
        try:
            self.beta1, self.beta2 = (float(b) for b in betas)
        except (TypeError, ValueError):
            raise TypeError(f"{type(self).__name__}: betas must be a pair of numbers such as "
                            f"(0.9, 0.999), not {betas!r}") from None
        name = type(self).__name__
        _check(self.lr >= 0.0, f"{name}: lr must be >= 0, got {lr}")
        _check(self.eps >= 0.0, f"{name}: eps must be >= 0, got {eps}")
        _check(0.0 <= self.beta1 < 1.0 and 0.0 <= self.beta2 < 1.0,
               f"{name}: betas must be in [0, 1), got {betas}")
        _check(self.weight_decay >= 0.0, f"{name}: weight_decay must be >= 0, got {weight_decay}")
        self._scratch_arrays = {}
        self._flat = {}          # ids of a group of parameters -> its _FlatMoments

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
        step_size, eps = self._corrected(t)
        adam_step(p.data, g, state["exp_avg"], state["exp_avg_sq"], self._scratch(p),
                  self.beta1, self.beta2, step_size, eps)

    def _corrected(self, t):
        """(step_size, eps) at step t: the bias corrections folded into two scalars (the same
        update, one pass fewer):

            (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps) = step_size * m / (sqrt(v) + eps sqrt(c2))
        """
        root_c2 = math.sqrt(1.0 - self.beta2 ** t)
        return self.lr * root_c2 / (1.0 - self.beta1 ** t), self.eps * root_c2

    def _update_all(self, active):
        """With fusion on, NumPy parameters at the same step t, of one dtype, are updated together
        by ``adam_step_flat`` (their moments live back to back in one array: see
        :class:`_FlatMoments`); the rest (CuPy, the strict backends, Adam's L2 penalty, fusion
        off) one by one."""
        if (self.weight_decay != 0.0 and not self.decoupled) or not is_fusion_enabled():
            return super()._update_all(active)
        groups = {}
        for item in active:
            data = item[0].data
            if B.of(data).name != "numpy":
                self._follow(item[0], item[2])
                self._update(*item)
            else:
                groups.setdefault((item[2]["step"], data.dtype), []).append(item)
        for (t, _), items in groups.items():
            flat = self._flat_moments(items)
            params = [items[i][0] for i in flat.order]
            if self.weight_decay != 0.0:                   # AdamW's decay, before the step
                for p in params:
                    p.data *= 1.0 - self.lr * self.weight_decay
            step_size, eps = self._corrected(t)
            adam_step_flat([p.data for p in params], [items[i][1] for i in flat.order], flat.m,
                           flat.v, flat.scratch, flat.gathered, self.beta1, self.beta2, step_size,
                           eps)

    def _flat_moments(self, items):
        """The :class:`_FlatMoments` of these ``(parameter, gradient, state)`` items: the one made
        at an earlier step while the states still hold its views (NumPy arrays on the parameters'
        device; a ``load_state_dict`` or a move to another device replaces them), else a new
        one."""
        key = (items[0][0].data.dtype,) + tuple(id(p) for p, _, _ in items)
        flat = self._flat.get(key)
        if flat is None or not flat.holds(items):
            ids = set(key[1:])                     # layouts of these parameters are stale now
            self._flat = {k: f for k, f in self._flat.items() if ids.isdisjoint(k[1:])}
            for p, _, state in items:              # moments from another device come home first
                self._follow(p, state)
            flat = self._flat[key] = _FlatMoments(items)
        return flat

    def _scratch(self, p):
        """A work array like ``p`` for the NumPy kernel; kept apart from ``state`` (never saved)."""
        scratch, data = self._scratch_arrays.get(id(p)), p.data
        if scratch is None or type(scratch) is not type(data) or scratch.shape != data.shape \
                or scratch.dtype != data.dtype:
            scratch = self._scratch_arrays[id(p)] = B.of(p.data).zeros(p.shape, like=p.data)
        return scratch


class _FlatMoments:
    """Adam's moments m and v of several parameters of one dtype, back to back in one 1-D array
    each, with a scratch array like them and a gathering array for the small parameters' gradients
    (see ``kernels.adam_update_flat``): ``state["exp_avg"]`` and ``state["exp_avg_sq"]`` of each
    parameter become views of ``m`` and ``v``, so checkpoints see the usual per-parameter arrays.

    ``order`` lists the items small parameters first (at most ``SMALL`` elements: those whose
    update costs less than the calls that make it).
    """

    SMALL = 16384

    def __init__(self, items):
        sizes = [p.data.size for p, _, _ in items]
        self.order = sorted(range(len(items)), key=lambda i: sizes[i] > self.SMALL)
        like = items[0][0].data
        owner = B.of(like)
        total = sum(sizes)
        self.m, self.v, self.scratch = (owner.zeros((total,), like=like) for _ in range(3))
        self.gathered = owner.zeros((sum(n for n in sizes if n <= self.SMALL),), like=like)
        self.views = []
        start = 0
        for i in self.order:
            p, _, state = items[i]
            end = start + sizes[i]
            views = [flat[start:end].reshape(p.data.shape) for flat in (self.m, self.v)]
            for name, view in zip(("exp_avg", "exp_avg_sq"), views):
                if name in state:                  # the moments so far (zeros at the first step)
                    view[...] = state[name]
                state[name] = view
            self.views.append(views)
            start = end

    def holds(self, items):
        """True while each item's state holds this layout's views, in the parameter's shape."""
        for i, (m, v) in zip(self.order, self.views):
            p, _, state = items[i]
            if state.get("exp_avg") is not m or state.get("exp_avg_sq") is not v \
                    or m.shape != p.data.shape:
                return False
        return True


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


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients so that their total norm is at most ``max_norm``; PyTorch's function:

        norm_i = ||g_i||_p for each gradient,   total = ||(norm_1, ..., norm_n)||_p
        g <- g * min(1, max_norm / (total + 1e-6))

    ``parameters``: a Tensor or an iterable of them; those without a gradient are ignored.
    ``norm_type`` p: any float, ``float("inf")`` for the largest |g| (then -inf the smallest, 0 the
    count of non-zero norms, as PyTorch's vector_norm).  With ``error_if_nonfinite=True`` a total
    that is NaN or infinite is a RuntimeError (checking costs a device-to-host copy); otherwise the
    gradients are scaled by it anyway, as in PyTorch.  Each ``p.grad`` is replaced by a new tensor
    of its dtype (the old arrays, which may be shared, are not changed).  Returns the total norm
    before clipping, as a 0-d Tensor.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    max_norm, p = float(max_norm), float(norm_type)
    with_grads = [t for t in parameters if t.grad is not None]
    if not with_grads:
        return Tensor(0.0)
    first = with_grads[0].grad.data
    for t in with_grads:
        if type(t.grad.data) is not type(first):
            raise ValueError(f"clip_grad_norm_: gradients on two devices ({with_grads[0].device} "
                             f"and {t.device}); move the model to one device first")
    xp = B.namespace(first)
    norms = [xp.reshape(_vector_norm(xp, t.grad.data, p), ()) for t in with_grads]
    total = B.ensure_array(_vector_norm(xp, xp.stack(norms), p))
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite "
            f"({float(total)}), so it cannot be clipped; to scale the gradients by it anyway, set "
            "error_if_nonfinite=False")
    scale = B.ensure_array(xp.minimum(max_norm / (total + 1e-6), 1.0))
    for t in with_grads:
        g = t.grad.data
        t.grad = Tensor._wrap(g * xp.astype(scale, g.dtype))
    return Tensor._wrap(total)


def _vector_norm(xp, a, p):
    """||a||_p over all elements, as PyTorch's ``vector_norm`` (an empty array has norm 0)."""
    if a.size == 0:
        return B.of(a).full((), 0.0, a.dtype)
    if p == math.inf:
        return xp.max(xp.abs(a))
    if p == -math.inf:
        return xp.min(xp.abs(a))
    if p == 0.0:
        return xp.sum(xp.astype(a != 0, a.dtype))
    if p == 1.0:
        return xp.sum(xp.abs(a))
    if p == 2.0:
        return xp.sqrt(xp.sum(a * a))
    return xp.sum(xp.abs(a) ** p) ** (1.0 / p)

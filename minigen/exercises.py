"""Build it yourself: a grader for the pieces of minigen that you write from primitives.

    import minigen as mg
    report = mg.exercises.check("dense", MyDense)
    print(report)                 # one line per check, with what differs and a hint when one fails
    assert report                 # a Report is true when every check passes (graded tests)

The exercises (``tutorials/exercises/``, worked solutions in ``tutorials/exercises/solutions/``):

=============  ==============================================================================
``"matmul"``   ``MyMatMul(mg.Function)``: forward ``a @ b`` and its backward (the vector-Jacobian
               product ``dL/da = g @ b^T``, ``dL/db = a^T @ g``), written in tensor ops
``"module"``   ``MyModule``: a base class that registers the ``mg.nn.Parameter`` and sub-module
               attributes assigned to it; ``named_parameters()``, ``parameters()``, ``zero_grad()``
``"dense"``    ``MyDense(in_features, out_features)``: ``x @ weight + bias``, weight (in, out)
``"sgd"``      ``MySGD(params, lr, momentum=0.0)``: ``step()`` and ``zero_grad()``, PyTorch's rule
``"adam"``     ``MyAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)``: with bias correction
=============  ==============================================================================

Each check runs your code in float64 on random inputs from a fixed seed, compares it with
minigen's own (``mg.matmul``, ``mg.nn.Module``, ``mg.nn.Dense``, ``mg.optim.SGD``,
``mg.optim.Adam``) and, where a gradient is involved, checks it against central differences with
``mg.gradcheck``.  An exception
raised by your code is reported as a failed check (with the line it came from), never as a crash of
the grader; checks that need an earlier one to pass are skipped.
"""

import inspect
import traceback
from dataclasses import dataclass, field

from . import backend as B
from .autograd import Function, Tensor, grad, no_grad
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .nn import Dense, Module, Parameter
from .optim import SGD, Adam

__all__ = ["check", "Report", "EXERCISES"]


@dataclass
class Report:
    """The outcome of one exercise: ``checks`` is a list of (description, passed, detail) triples.
    True (``bool(report)``) when every check passed; ``print(report)`` shows them all."""

    exercise: str
    checks: list = field(default_factory=list)
    stopped: bool = False     # a check that later ones need failed, so they were not run

    @property
    def passed(self):
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def __bool__(self):
        return self.passed

    @property
    def failures(self):
        return [(what, detail) for what, ok, detail in self.checks if not ok]

    def __str__(self):
        good = sum(1 for _, ok, _ in self.checks if ok)
        verdict = "all pass: well done" if self.passed else "not yet"
        lines = [f"exercise {self.exercise!r}: {good} of {len(self.checks)} checks pass "
                 f"({verdict})"]
        for what, ok, detail in self.checks:
            lines.append(f"  {'ok  ' if ok else 'FAIL'}  {what}")
            if detail and not ok:
                lines.extend("        " + line for line in detail.splitlines())
        if self.stopped:
            lines.append("  ...   the other checks need this one to pass first")
        return "\n".join(lines)

    __repr__ = __str__


class _Stop(Exception):
    """Raised inside a check to end the exercise early (later checks need this one)."""


class _Grader:
    """Runs the checks of one exercise and collects their results."""

    def __init__(self, exercise):
        self.report = Report(exercise)

    def run(self, what, test, hint=None, required=False):
        """Run ``test()``: it returns None (pass) or a string saying what differs (fail).  An
        exception from the learner's code fails the check too.  ``required``: stop here if it
        fails."""
        try:
            problem = test()
        except _Stop:
            raise
        except NotImplementedError as err:
            problem = f"not written yet: {err}" if str(err) else "not written yet"
        except Exception as err:                    # the learner's code raised: say where
            problem = f"your code raised {type(err).__name__}: {err}{_where(err)}"
        if problem and hint:
            problem += f"\nhint: {hint}"
        self.report.checks.append((what, not problem, problem or ""))
        if problem and required:
            raise _Stop


def _where(err):
    """Where ``err`` came from: the file, line and code of its deepest traceback frame outside
    minigen (the learner's code), as a line to append to the report ("" when there is none)."""
    for frame in reversed(traceback.extract_tb(err.__traceback__)):
        if "/minigen/" not in frame.filename.replace("\\", "/"):
            return f"\n  at {frame.filename}, line {frame.lineno}: {frame.line}"
    return ""


# --------------------------------------------------------------------------------------------------
# Helpers: random float64 inputs from a fixed seed, comparisons that say what differs
# --------------------------------------------------------------------------------------------------

def _random(rng, *shape, requires_grad=False):
    return Tensor(rng.standard_normal(shape), dtype="float64", requires_grad=requires_grad)


def _differs(got, want, what, rtol=1e-7, atol=1e-9):
    """None when ``got`` matches ``want`` (Tensors), else a sentence saying how it differs."""
    if not isinstance(got, Tensor):
        return f"{what}: expected a Tensor, got {type(got).__name__}"
    if got.shape != want.shape:
        return f"{what}: shape {got.shape}, expected {want.shape}"
    a, b = got.numpy().astype("float64"), want.numpy().astype("float64")
    error = abs(a - b)
    bound = atol + rtol * abs(b)
    if (error <= bound).all():
        return None
    worst = tuple(int(i) for i in _unravel(error.argmax(), a.shape))
    return (f"{what}: differs from minigen's at element {worst}: yours {a[worst]:.6g}, minigen's "
            f"{b[worst]:.6g} (largest difference {error.max():.3g})")


def _unravel(flat, shape):
    """The index tuple of flat position ``flat`` in an array of ``shape`` (row-major)."""
    index = []
    for d in reversed(shape):
        flat, i = divmod(int(flat), d)
        index.append(i)
    return tuple(reversed(index))


def _gradcheck(fn, inputs, what, second=False):
    try:
        (gradgradcheck if second else gradcheck)(fn, inputs)
    except GradcheckError as err:
        return f"{what}: {err}"
    return None


# --------------------------------------------------------------------------------------------------
# matmul: a Function with its backward
# --------------------------------------------------------------------------------------------------

_MATMUL_SHAPES = [((3, 4), (4, 2)), ((2, 2), (2, 2)), ((1, 5), (5, 3))]


def _check_matmul(g, MyMatMul):
    rng = B.host_generator(0)

    def is_function():
        if not (inspect.isclass(MyMatMul) and issubclass(MyMatMul, Function)):
            return "MyMatMul must be a class that subclasses mg.Function"
    g.run("MyMatMul is a subclass of mg.Function", is_function, required=True)

    pairs = [(_random(rng, *sa, requires_grad=True), _random(rng, *sb, requires_grad=True))
             for sa, sb in _MATMUL_SHAPES]

    def forward():
        for a, b in pairs:
            problem = _differs(MyMatMul()(a, b), a.detach() @ b.detach(),
                               f"MyMatMul()(a, b) with a {a.shape}, b {b.shape}")
            if problem:
                return problem
    g.run("forward: MyMatMul()(a, b) equals a @ b", forward, required=True,
          hint="forward gets backend arrays: return xp.matmul(a, b) with "
               "xp = mg.backend.namespace(a)")

    def against_numerical():
        for a, b in pairs:
            problem = _gradcheck(lambda x, y: MyMatMul()(x, y), [a, b],
                                 f"a {a.shape} @ b {b.shape}")
            if problem:
                return problem
    g.run("backward agrees with central differences (mg.gradcheck)", against_numerical,
          hint="dL/da = gy @ b.T (shape of a), dL/db = a.T @ gy (shape of b); "
               "a and b are self.inputs")

    def against_minigen():
        for a, b in pairs:
            u = _random(rng, a.shape[0], b.shape[1])
            mine = grad((MyMatMul()(a, b) * u).sum(), [a, b])
            ref = grad(((a @ b) * u).sum(), [a, b])
            for name, x, y in zip("ab", mine, ref):
                problem = _differs(x, y, f"dL/d{name} for a {a.shape}, b {b.shape}")
                if problem:
                    return problem
    g.run("backward equals mg.matmul's gradients", against_minigen)

    def second_order():
        a, b = pairs[0]
        return _gradcheck(lambda x, y: MyMatMul()(x, y), [a, b], "second derivatives",
                          second=True)
    g.run("backward is differentiable (mg.gradgradcheck): written in tensor ops", second_order,
          hint="use Tensor operations on gy and self.inputs (gy @ b.T), not gy.data: then "
               "create_graph=True can record the backward and differentiate it again")


# --------------------------------------------------------------------------------------------------
# module: registering parameters and sub-modules
# --------------------------------------------------------------------------------------------------

def _tree(Base, rng):
    """The same small model on any base class: own parameters, a tensor that is not a parameter,
    two sub-modules, one of them nested, and a parameter shared by two modules."""

    class Leaf(Base):
        def __init__(self):
            super().__init__()
            self.w = Parameter(rng.standard_normal((2, 3)), dtype="float64")
            self.note = Tensor([1.0, 2.0])                   # a plain tensor: not a parameter
            self.b = Parameter(rng.standard_normal(3), dtype="float64")

    class Pair(Base):
        def __init__(self):
            super().__init__()
            self.first = Leaf()
            self.scale = Parameter(rng.standard_normal(()), dtype="float64")
            self.second = Leaf()
            self.second.w = self.first.w                     # shared: listed once

    class Net(Base):
        def __init__(self):
            super().__init__()
            self.gain = Parameter(rng.standard_normal(1), dtype="float64")
            self.pair = Pair()
            self.label = "a string attribute"
            self.head = Leaf()

    return Net()


def _check_module(g, MyModule):
    def builds():
        if not inspect.isclass(MyModule):
            return "MyModule must be a class (the base class of your layers)"
        _tree(MyModule, B.host_generator(0))
    g.run("a model built on MyModule (nested sub-modules) can be created", builds, required=True,
          hint="__init__ must create the registries before any attribute is assigned; subclasses "
               "call super().__init__() first")
    mine, ref = _tree(MyModule, B.host_generator(1)), _tree(Module, B.host_generator(1))

    def names():
        if not hasattr(mine, "named_parameters"):
            return "MyModule has no named_parameters() method"
        got = [name for name, _ in mine.named_parameters()]
        want = [name for name, _ in ref.named_parameters()]
        if got != want:
            return f"named_parameters() gives names\n  {got}\nexpected\n  {want}"
    g.run("named_parameters(): dotted names, own parameters first, a shared one once", names,
          hint="walk the module's own parameters (in assignment order), then each sub-module's "
               "with its attribute name and a dot in front; skip a parameter already seen")

    def same_objects():
        got = list(mine.parameters())
        by_name = dict(mine.named_parameters()) if hasattr(mine, "named_parameters") else {}
        want = [by_name.get(name) for name, _ in ref.named_parameters()]
        if len(got) != len(want) or any(p is not q for p, q in zip(got, want)):
            return "parameters() must return the Parameter objects themselves, in the order of " \
                   "named_parameters()"
        if not all(isinstance(p, Parameter) for p in got):
            return "parameters() lists something that is not an mg.nn.Parameter"
    g.run("parameters(): the Parameter objects, in the same order", same_objects)

    def reassign():
        mine.gain = Parameter([5.0], dtype="float64")
        fresh = type(mine.pair.first)()
        mine.head = fresh
        names = [n for n, _ in mine.named_parameters()]
        if names.count("gain") != 1 or names.count("head.w") != 1:
            return f"after reassigning gain and head, named_parameters() gives {names}"
        if dict(mine.named_parameters())["gain"] is not mine.gain or \
                dict(mine.named_parameters())["head.w"] is not fresh.w:
            return "after reassigning an attribute, the old parameter is still listed"
    g.run("assigning an attribute again replaces what was registered", reassign)

    def zero_grad():
        for p in mine.parameters():
            p.grad = Tensor(p.data * 0 + 1)
        mine.zero_grad()
        left = [n for n, p in mine.named_parameters()
                if p.grad is not None and bool((p.grad.numpy() != 0).any())]
        if left:
            return f"zero_grad() left gradients on {left}"
    g.run("zero_grad() clears every parameter's gradient", zero_grad)


# --------------------------------------------------------------------------------------------------
# dense: a layer
# --------------------------------------------------------------------------------------------------

def _check_dense(g, MyDense):
    rng = B.host_generator(0)
    n_in, n_out = 3, 4
    box = {}

    def builds():
        box["layer"] = layer = MyDense(n_in, n_out)
        for name, shape in (("weight", (n_in, n_out)), ("bias", (n_out,))):
            p = getattr(layer, name, None)
            if not isinstance(p, Parameter):
                return f"MyDense({n_in}, {n_out}).{name} should be an mg.nn.Parameter, " \
                       f"got {type(p).__name__}"
            if p.shape != shape:
                return f"{name} has shape {p.shape}, expected {shape} (weight is (in, out))"
    g.run(f"MyDense({n_in}, {n_out}) has weight ({n_in}, {n_out}) and bias ({n_out},) Parameters",
          builds, required=True)
    layer = box["layer"]

    def registered():
        if not hasattr(layer, "parameters"):
            return "MyDense has no parameters() method: subclass mg.nn.Module"
        got = {id(p) for p in layer.parameters()}
        if got != {id(layer.weight), id(layer.bias)}:
            return "parameters() should list exactly weight and bias"
    g.run("parameters() lists weight and bias", registered,
          hint="subclass mg.nn.Module, call super().__init__() first, assign Parameters")

    def initialised():
        w = layer.weight.numpy()
        if w.std() == 0:
            return "every weight has the same value: start from random numbers (all units would " \
                   "stay identical)"
        scale = (2.0 / (n_in + n_out)) ** 0.5          # Glorot's standard deviation
        if not 0.2 * scale <= w.std() <= 5 * scale:
            return f"weights have standard deviation {w.std():.3g}; a good start is about " \
                   f"{scale:.3g} (Glorot: uniform on +-sqrt(6 / (in + out)))"
    g.run("weights start random, at a sensible scale", initialised)

    # A random bias (a zero one would hide x @ W - b), the same in minigen's Dense
    with no_grad():
        layer.bias.data = Tensor(rng.standard_normal(n_out), dtype=layer.bias.dtype).data
        ref = Dense(n_in, n_out, dtype="float64")
        ref.weight.data = layer.weight.detach().astype("float64").data
        ref.bias.data = layer.bias.detach().astype("float64").data

    def forward():
        for rows in (5, 1):
            x = _random(rng, rows, n_in)
            problem = _differs(layer(x), ref(x), f"output for x of shape {x.shape}")
            if problem:
                return problem
    g.run("forward equals mg.nn.Dense with the same weights", forward, required=True,
          hint="y = x @ weight + bias (bias broadcasts over the rows)")

    def against_numerical():
        x = _random(rng, 2, n_in, requires_grad=True)
        return _gradcheck(lambda x_, w_, b_: layer(x_), [x, layer.weight, layer.bias],
                          "gradients of MyDense")
    g.run("gradients agree with central differences (mg.gradcheck)", against_numerical,
          hint="build the forward from minigen ops (@, +) so that backward works by itself")

    def against_minigen():
        x = _random(rng, 6, n_in, requires_grad=True)
        u = _random(rng, 6, n_out)
        mine = grad((layer(x) * u).sum(), [x, layer.weight, layer.bias])
        theirs = grad((ref(x) * u).sum(), [x, ref.weight, ref.bias])
        for name, a, b in zip(("x", "weight", "bias"), mine, theirs):
            problem = _differs(a, b, f"dL/d{name}")
            if problem:
                return problem
    g.run("gradients equal mg.nn.Dense's", against_minigen)


# --------------------------------------------------------------------------------------------------
# optimizers: compared step by step with minigen's (PyTorch's rules)
# --------------------------------------------------------------------------------------------------

def _optimizer_run(make, rng_seed, steps):
    """Run the optimizer ``make(params)`` for ``steps`` steps on fixed parameters and gradients;
    returns (the parameters, the optimizer)."""
    rng = B.host_generator(rng_seed)
    params = [Parameter(rng.standard_normal(shape), dtype="float64") for shape in ((3, 2), (2,))]
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(steps)]
    opt = make(params)
    for step_grads in grads:
        for p, gr in zip(params, step_grads):
            p.grad = Tensor(gr, dtype="float64")
        opt.step()
    return params, opt


def _compare_optimizer(g, mine, theirs, config, steps, hint):
    """Check that ``mine`` (params -> optimizer) moves parameters as ``theirs`` does; returns what
    the later checks need ({"opt", "params"})."""
    box = {}

    def steps_match():
        got, box["opt"] = _optimizer_run(mine, 0, steps)
        box["params"] = got
        want, _ = _optimizer_run(theirs, 0, steps)
        for i, (p, q) in enumerate(zip(got, want)):
            if p.creator is not None:
                return "step() recorded a graph on a parameter: update p.data (arrays), or " \
                       "work inside mg.no_grad()"
            problem = _differs(Tensor(p.data), Tensor(q.data), f"parameter {i} after {steps} steps")
            if problem:
                return problem
    g.run(f"{steps} steps with {config} match minigen's", steps_match, hint=hint, required=True)
    return box


def _check_optimizer_basics(g, box):
    opt, params = box["opt"], box["params"]

    def zero_grad():
        opt.zero_grad()
        left = [i for i, p in enumerate(params)
                if p.grad is not None and bool((p.grad.numpy() != 0).any())]
        if left:
            return f"zero_grad() left gradients on parameters {left}"
    g.run("zero_grad() clears the gradients", zero_grad)


def _check_sgd(g, MySGD):
    _compare_optimizer(g, lambda ps: MySGD(ps, lr=0.1), lambda ps: SGD(ps, lr=0.1),
                       "lr=0.1", 3, "p <- p - lr * grad, for every parameter, in place")
    box = _compare_optimizer(
        g, lambda ps: MySGD(ps, lr=0.05, momentum=0.9), lambda ps: SGD(ps, lr=0.05, momentum=0.9),
        "lr=0.05, momentum=0.9", 5,
        "PyTorch's momentum: v <- momentum * v + grad (v = grad at the first step), "
        "p <- p - lr * v; keep one v per parameter")
    _check_optimizer_basics(g, box)


def _check_adam(g, MyAdam):
    box = _compare_optimizer(
        g, lambda ps: MyAdam(ps, lr=0.01), lambda ps: Adam(ps, lr=0.01), "lr=0.01", 5,
        "m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  m_hat = m / (1 - b1^t), "
        "v_hat = v / (1 - b2^t) with t the step count from 1;  p <- p - lr m_hat / "
        "(sqrt(v_hat) + eps)")
    _compare_optimizer(
        g, lambda ps: MyAdam(ps, lr=0.1, betas=(0.5, 0.9), eps=1e-3),
        lambda ps: Adam(ps, lr=0.1, betas=(0.5, 0.9), eps=1e-3), "betas=(0.5, 0.9), eps=1e-3",
        4, "use the betas and eps you are given (eps is added to sqrt(v_hat), outside the root)")
    _check_optimizer_basics(g, box)


EXERCISES = {"matmul": _check_matmul, "module": _check_module, "dense": _check_dense,
             "sgd": _check_sgd, "adam": _check_adam}


def check(exercise, answer, verbose=False):
    """Grade ``answer`` (your class) for ``exercise`` ("matmul", "module", "dense", "sgd", "adam").

    Returns a :class:`Report` (true when every check passes; ``print`` it for the feedback);
    ``verbose=True`` prints it too.  The checks run in float64 with a fixed seed and leave the
    default dtype as they found it.
    """
    if exercise not in EXERCISES:
        raise ValueError(f"exercises.check: unknown exercise {exercise!r}; choose one of "
                         f"{', '.join(EXERCISES)}")
    grader = _Grader(exercise)
    with B.using_default_dtype("float64"):          # gradient checks need float64
        try:
            EXERCISES[exercise](grader, answer)
        except _Stop:
            grader.report.stopped = True
    if verbose:
        print(grader.report)
    return grader.report

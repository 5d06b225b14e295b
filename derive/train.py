"""Stage — train: training runs on the engine (epochs, mini-batches, optimizers, sweeps, predictions).

Takes a `Spec` (its [dataset], [train] and [predict] tables); gives a `Training`: the loss before the
first update and after every epoch, the final parameters, the final loss, the predictions, and where
the run diverged — every number correctly rounded to N digits and certified by the engine's ball
arithmetic (or, with precision "float", computed in float64 and marked uncertified).

The loop (one `engine.forward_backward` per sample, the sample's values swapped into its data names):

    for epoch 1..E:  for each batch of the epoch's order:
        g = mean over the batch of dL/dp          (one sample in mode "sgd", all in "batch")
        sgd:       p ← p − η·g
        momentum:  v ← β·v + g;  p ← p − η·v                                   (v₀ = 0)
        adam:      t ← t + 1;  m ← β₁·m + (1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g∘g;
                   m̂ = m / (1 − β₁ᵗ);  v̂ = v / (1 − β₂ᵗ);  p ← p − η·m̂ / (√v̂ + ε)  (m₀ = v₀ = 0)

The epoch's order is the dataset's, or with `shuffle_seed` a permutation per epoch drawn by
`numpy.random.default_rng(shuffle_seed).permutation(n)` (one generator for the whole run).  The
loss of the history is the mean loss over every sample at the parameters of that moment.

Divergence is a result: when the loss exceeds the float64 range (≈ 1.8·10³⁰⁸) or stops being finite,
or a step fails after an update (exp/sigmoid beyond ±EXP_LIMIT refused, log of 0, division by 0), the
run stops; `diverged` is the epoch (1-based) and the history holds the losses before it.

Sweep verdict (`sweep`): a run is `converging` when it did not diverge, its final loss is below its
initial loss, and the loss did not rise over the last quarter of the steps; otherwise `diverging`.

Certification: the run is made in `BallArrays` at a precision chosen from the digits and the number
of updates; every shown number must decide its digits (`engine.decide`), else the whole run is
repeated at twice the precision (as `engine.certified` does for one step).  A faster `forward_backward`
(a compiled tape) slots in without any change here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np
from flint import arb

from . import engine
from . import expr as ex
from .dataset import Dataset, drawn_parameters
from .engine import Arr, BallArrays, ExactArrays, Imprecise
from .errors import DeriveError, LimitError
from .rounding import Number, show_fraction
from .spec import Spec
from .summary import fraction_text

OVERFLOW = Fraction(2) ** 1024          # a loss above the float64 range is a divergence
_OVERFLOW_BALL = arb(2) ** 1024         # exact: a power of two
MAX_UPDATES = 50_000_000                # epochs × batches
MAX_BITS = engine.MAX_PRECISION_BITS
FLOAT = "float"


# ---------------------------------------------------------------- float64 arithmetic (uncertified)
class FloatArrays:
    """float64 values: a scalar is a numpy float64, a matrix an (r, c) array.  Overflow gives ±inf
    and invalid operations NaN (IEEE 754), which the loop reads as divergence."""
    name = "float"

    def from_fractions(self, shape, entries) -> Arr:
        xs = [_float(q) for q in entries]
        if shape == ():
            return Arr((), np.float64(xs[0]))
        return Arr(shape, np.array(xs, dtype=np.float64).reshape(shape))

    def const(self, q) -> Arr:
        return Arr((), np.float64(_float(q)))

    def full(self, shape, scalar: Arr) -> Arr:
        return scalar if shape == () else Arr(shape, np.full(shape, scalar.data))

    def entries(self, a: Arr) -> list:
        return [a.data] if a.shape == () else list(a.data.ravel())

    def map(self, f, a: Arr) -> Arr:
        return Arr(a.shape, f(a.data))

    def add(self, a, b, shape):
        return Arr(shape, a.data + b.data)

    def sub(self, a, b, shape):
        return Arr(shape, a.data - b.data)

    def mul(self, a, b, shape):
        return Arr(shape, a.data * b.data)

    def div(self, a, b, shape):
        return Arr(shape, np.divide(a.data, b.data))

    def neg(self, a):
        return Arr(a.shape, -a.data)

    def pow(self, a, e, shape):
        return Arr(shape, np.power(a.data, e.data))

    def matmul(self, a, b):
        return Arr((a.shape[0], b.shape[1]), a.data @ b.data)

    def transpose(self, a):
        return Arr((a.shape[1], a.shape[0]), a.data.T.copy())

    def total(self, a):
        return a if a.shape == () else Arr((), np.float64(a.data.sum()))

    def func(self, name, a):
        return Arr(a.shape, _FLOAT_FUNCTIONS[name](a.data))

    def sigmoid_prime(self, a, out):
        return Arr(a.shape, out.data * _FLOAT_FUNCTIONS["sigmoid"](-a.data))

    def log(self, a):
        return self.func("log", a)

    def sqrt(self, a):
        return self.func("sqrt", a)

    def norm2(self, a):
        return Arr((), np.float64(np.linalg.norm(a.data, 2)))

    def entry(self, a, i: int) -> Arr:
        return Arr((), a.data if a.shape == () else np.float64(a.data.ravel()[i]))

    def scatter(self, shape, i: int, g) -> Arr:
        out = np.zeros(shape)
        out.flat[i] = g.data
        return Arr(shape, out)

    def maximum(self, a, b, shape):
        return Arr(shape, np.maximum(a.data, b.data))

    def at_least(self, a, b, shape):
        # ∂max(a, b)/∂a = 1[a ≥ b] (a tie goes to a), as in the engine
        return Arr(shape, (np.asarray(a.data) >= np.asarray(b.data)) * 1.0 + np.zeros(shape or ()))

    def softmax(self, z):
        x = z.data if z.shape[0] != 1 else z.data.T
        e = np.exp(x - x.max(axis=0, keepdims=True))
        p = e / e.sum(axis=0, keepdims=True)
        return Arr(z.shape, p if z.shape[0] != 1 else p.T)

    def softmax_backward(self, p, g):
        P, G = (p.data, g.data) if p.shape[0] != 1 else (p.data.T, g.data.T)
        out = P * (G - (P * G).sum(axis=0, keepdims=True))
        return Arr(p.shape, out if p.shape[0] != 1 else out.T)


def _float(q) -> float:
    try:
        return float(q)
    except OverflowError:
        return math.inf if q > 0 else -math.inf


_FLOAT_FUNCTIONS = {
    "sigmoid": lambda x: 0.5 * (1 + np.tanh(0.5 * x)),     # σ without overflow
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0), "step": lambda x: (np.asarray(x) > 0) * 1.0,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "abs": np.abs, "sign": np.sign,
}


# ---------------------------------------------------------------- the plan of a run
@dataclass(frozen=True)
class Plan:
    """What a run needs, all exact: samples, initial parameters, options."""
    spec: Spec
    program: engine.Program
    epochs: int
    learning_rate: Fraction
    samples: tuple              # per sample: {data name: entries}
    start: dict                 # parameter -> entries at the start of training
    output: str                 # what a prediction reports
    predictions: tuple          # (label, {data name: entries})
    batches: int                # updates per epoch

    @property
    def options(self):
        return self.spec.training

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def updates(self) -> int:
        return self.epochs * self.batches

    @property
    def full_batch(self) -> bool:
        return self.batches == 1


def default_epochs(spec: Spec) -> int:
    return spec.training.epochs if spec.training.epochs is not None else spec.steps


def prepare(spec: Spec, *, epochs: int | None = None, learning_rate: Fraction | None = None,
            predict: tuple = ()) -> Plan:
    """The plan of a training run of `spec` (bad input: DeriveError naming the file and key)."""
    if spec.is_symbolic:
        raise DeriveError("a symbolic spec has no numbers to train", file=spec.path)
    program = engine.compile_spec(spec)
    check_targets(program)
    ds = spec.dataset
    samples = _samples(program, ds) if ds is not None else \
        ({n: v.entries for n, v in spec.data.items()},)
    opts = spec.training
    epochs = default_epochs(spec) if epochs is None else epochs
    if epochs < 0:
        raise DeriveError(f"epochs must be ≥ 0, got {epochs}", file=spec.path, key="train.epochs")
    n = len(samples)
    if opts.mode == "minibatch" and opts.batch_size > n:
        raise DeriveError(f"batch_size {opts.batch_size} is more than the {n} samples", file=spec.path,
                          key="train.batch_size")
    batches = n if opts.mode == "sgd" else 1 if opts.mode == "batch" else -(-n // opts.batch_size)
    if epochs * batches > MAX_UPDATES:
        raise LimitError(f"{epochs} epochs × {batches} updates is over the limit of {MAX_UPDATES} updates",
                         file=spec.path, key="train.epochs")
    start = {p: v.entries for p, v in spec.parameters.items()}
    if opts.init is not None:
        start.update(drawn_parameters(opts.init, program.shapes))
    lr = spec.learning_rate if learning_rate is None else learning_rate
    return Plan(spec, program, epochs, lr, samples, start, output_name(program),
                (*spec.predictions, *predict), batches)


def output_name(program: engine.Program) -> str:
    """What a prediction reports: train.output, else the forward name compared with a data name
    (`y_pred` in `(y_true - y_pred)^2`), else the last definition before the loss."""
    spec = program.spec
    if spec.training.output:
        return spec.training.output
    forward = [d.name for d in spec.forward]
    for d in spec.forward:
        for node in _nodes(d.tree):
            if isinstance(node, ex.Bin) and node.op == "-":
                sides = [node.left, node.right]
                names = [s.id for s in sides if isinstance(s, ex.Name)]
                if len(names) == 2:
                    outs = [m for m in names if m in forward]
                    datas = [m for m in names if m in spec.data]
                    if outs and datas:
                        return outs[0]
    before = [f for f in forward if f != spec.loss]
    return before[-1] if before else spec.loss


def _nodes(tree):
    stack = [tree]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(ex.children(n))


def check_targets(program: engine.Program) -> None:
    """A target (a data name) compared by '−' with a network output of another shape is an error
    naming both shapes (PyTorch's MSELoss would broadcast it silently)."""
    spec = program.spec
    forward = {d.name for d in spec.forward}
    for d in spec.forward:
        for node in _nodes(d.tree):
            if not (isinstance(node, ex.Bin) and node.op == "-"):
                continue
            a, b = node.left, node.right
            if not (isinstance(a, ex.Name) and isinstance(b, ex.Name)):
                continue
            for target, out in ((a.id, b.id), (b.id, a.id)):
                if target in spec.data and out in forward and \
                        program.shapes[target] != program.shapes[out]:
                    raise DeriveError(
                        f"the target {target} is {ex.shape_text(program.shapes[target])} but the output {out} "
                        f"is {ex.shape_text(program.shapes[out])}; a target must have the output's shape "
                        "(no silent broadcast)", file=spec.path, key=f"forward.{d.name}")


def _samples(program: engine.Program, ds: Dataset) -> tuple:
    spec = program.spec
    base = {n: v.entries for n, v in spec.data.items()}
    out = []
    derived = _derived_targets(program, ds)
    for i in range(ds.n):
        s = dict(base)
        for name, col in ds.columns.items():
            s[name] = col[i]
        for name, col in derived.items():
            s[name] = col[i]
        out.append(s)
    return tuple(out)


def _derived_targets(program: engine.Program, ds: Dataset) -> dict:
    """name -> entries per sample of every target drawn as an expression over the inputs: exact where
    rational, else the midpoint of a 256-bit ball (an exact binary number)."""
    spec = program.spec
    out = {}
    if not ds.derived:
        return out
    shapes = {n: spec.data[n].shape for n in ds.columns}
    exact = ExactArrays()
    for name, (texts, trees, listed) in ds.derived.items():
        want = spec.data[name].shape
        key = f"dataset.generate.{name}"
        compiled = []
        for i, tree in enumerate(trees):
            k = f"{key}[{i}]" if listed else key
            try:
                shape, _ = engine._shape_of(tree, shapes)
            except DeriveError as e:
                raise e.located(file=spec.path, key=k) from None
            if listed and shape != ():
                raise DeriveError(f"an entry must be a scalar, got {ex.shape_text(shape)}", file=spec.path, key=k)
            if not listed and shape != want:
                raise DeriveError(f"the expression is {ex.shape_text(shape)} but data.{name} is "
                                  f"{ex.shape_text(want)} (a target must have its data name's shape)",
                                  file=spec.path, key=k)
            compiled.append(engine._ops(tree))
        col = []
        for j in range(ds.n):
            env = {n: exact.from_fractions(shapes[n], ds.columns[n][j]) for n in ds.columns}
            entries = []
            for i, ops in enumerate(compiled):
                try:
                    v = engine._forward_definition(exact, ops, env)[-1]
                    vals = list(v.data)
                    if any(q is None for q in vals):
                        with engine.precision(256) as balls:
                            benv = {n: balls.from_fractions(shapes[n], ds.columns[n][j]) for n in ds.columns}
                            bv = engine._forward_definition(balls, ops, benv)[-1]
                            vals = [engine._ball_exact(x.mid()) for x in balls.entries(bv)]
                except (DeriveError, Imprecise) as e:
                    what = e.what if isinstance(e, DeriveError) else e.message
                    raise DeriveError(f"sample {j + 1}: {what}", file=spec.path,
                                      key=f"{key}[{i}]" if listed else key) from None
                entries.extend(vals)
            col.append(tuple(entries))
        out[name] = tuple(col)
    return out


# ---------------------------------------------------------------- one run in one context
@dataclass
class Raw:
    """A run's values in its context (balls or floats)."""
    ctx: object
    history: list                   # loss Arr at epoch 0, 1, … (before divergence)
    final: dict                     # parameter -> Arr (at the end, or before the failing epoch)
    diverged: int | None = None
    reason: str = ""
    predictions: list = field(default_factory=list)    # Arr per plan prediction (None: failed)
    first: dict = field(default_factory=dict)          # the first update, per parameter: name -> Arr


class _Stop(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _orders(plan: Plan):
    n = plan.n
    seed = plan.options.shuffle_seed
    rng = np.random.default_rng(seed) if seed is not None and n > 1 else None
    for _ in range(plan.epochs):
        yield rng.permutation(n).tolist() if rng is not None else range(n)


def _batches(plan: Plan, order) -> list:
    order = list(order)
    mode = plan.options.mode
    if mode == "sgd":
        return [[i] for i in order]
    if mode == "batch":
        return [order]
    b = plan.options.batch_size
    return [order[i:i + b] for i in range(0, len(order), b)]


def _ball_sqrt(x):
    # √ of a quantity known to be ≥ 0 (v̂ of Adam): the nonnegative part of its ball
    return x.sqrt() if x > 0 else x.nonnegative_part().sqrt()


def _too_big(ctx, loss: Arr) -> str | None:
    x = loss.data
    if isinstance(ctx, ExactArrays):
        return None
    if isinstance(ctx, FloatArrays):
        if not np.isfinite(x):
            return "the loss is not finite (float64 overflow or NaN)"
        return None
    if not x.is_finite():
        raise Imprecise("the loss lost its precision")
    if abs(x.mid()) > _OVERFLOW_BALL:
        return "the loss overflowed (beyond the float64 range, about 1.8e308)"
    return None


def execute(plan: Plan, ctx, progress=None) -> Raw:
    """The whole run in `ctx` (`progress(epoch)` is called after every epoch when given)."""
    spec, program = plan.spec, plan.program
    shapes = program.shapes
    samples = [{n: ctx.from_fractions(shapes[n], e) for n, e in s.items()} for s in plan.samples]
    params = {p: ctx.from_fractions(shapes[p], e) for p, e in plan.start.items()}
    update = [p for p in spec.update]
    opts = plan.options
    lr = ctx.const(plan.learning_rate)
    hyper = {k: ctx.const(v) for k, v in opts.hyper.items()}
    one = ctx.const(Fraction(1))
    state = {p: {} for p in update}
    raw = Raw(ctx, [], dict(params))
    t = 0
    inv_n = ctx.const(Fraction(1, plan.n))
    loss_name = spec.loss

    def mean_loss(values_list):
        s = None
        for v in values_list:
            s = v if s is None else ctx.add(s, v, ())
        return s if len(values_list) == 1 else ctx.mul(s, ctx.const(Fraction(1, len(values_list))), ())

    def evaluate_loss() -> Arr:
        losses = [engine.forward_value(program, ctx, {**s, **params}, loss_name) for s in samples]
        return mean_loss(losses)

    def record(loss: Arr, epoch: int):
        why = _too_big(ctx, loss)
        if why:
            raise _Stop(why)
        raw.history.append(loss)
        raw.final = dict(params)

    def step(p, g):
        nonlocal params
        st = state[p]
        x = params[p]
        if opts.optimizer == "sgd":
            new = ctx.sub(x, ctx.mul(lr, g, g.shape), g.shape)
        elif opts.optimizer == "momentum":
            v = g if "v" not in st else ctx.add(ctx.mul(hyper["beta"], st["v"], g.shape), g, g.shape)
            st["v"] = v
            new = ctx.sub(x, ctx.mul(lr, v, g.shape), g.shape)
        else:
            b1, b2, eps = hyper["beta1"], hyper["beta2"], hyper["eps"]
            m0 = st.get("m")
            v0 = st.get("v")
            gm = ctx.mul(ctx.sub(one, b1, ()), g, g.shape)
            gv = ctx.mul(ctx.sub(one, b2, ()), ctx.mul(g, g, g.shape), g.shape)
            m = gm if m0 is None else ctx.add(ctx.mul(b1, m0, g.shape), gm, g.shape)
            v = gv if v0 is None else ctx.add(ctx.mul(b2, v0, g.shape), gv, g.shape)
            st["m"], st["v"] = m, v
            c1 = ctx.sub(one, ctx.const(opts.hyper["beta1"] ** t), ())
            c2 = ctx.sub(one, ctx.const(opts.hyper["beta2"] ** t), ())
            mhat = ctx.div(m, c1, g.shape)
            vhat = ctx.div(v, c2, g.shape)
            root = ctx.map(_ball_sqrt if isinstance(ctx, BallArrays) else np.sqrt, vhat)
            new = ctx.sub(x, ctx.mul(lr, ctx.div(mhat, ctx.add(root, eps, g.shape), g.shape), g.shape), g.shape)
            st["mhat"], st["vhat"] = mhat, vhat
        if t == 1:
            raw.first[p] = {"g": g, **{k: v for k, v in st.items()}, "new": new}
        params[p] = new

    epoch = 0
    try:
        if not plan.full_batch:
            record(evaluate_loss(), 0)
        for epoch, order in enumerate(_orders(plan), start=1):
            for batch in _batches(plan, order):
                grads, losses = {}, []
                for i in batch:
                    try:
                        st = engine.forward_backward(program, ctx, {**samples[i], **params}, t)
                    except DeriveError as e:
                        if t == 0 and epoch == 1:
                            raise
                        raise _Stop(e.what) from None
                    losses.append(st.values[loss_name])
                    for p in update:
                        g = st.adjoints.get(p)
                        if g is None:
                            continue
                        grads[p] = g if p not in grads else ctx.add(grads[p], g, g.shape)
                if plan.full_batch:
                    record(mean_loss(losses), epoch - 1)
                if len(batch) > 1:
                    k = ctx.const(Fraction(1, len(batch)))
                    grads = {p: ctx.mul(k, g, g.shape) for p, g in grads.items()}
                t += 1
                for p, g in grads.items():
                    step(p, g)
            if not plan.full_batch:
                try:
                    record(evaluate_loss(), epoch)
                except DeriveError as e:
                    raise _Stop(e.what) from None
            if progress is not None:
                progress(epoch)
        if plan.full_batch:
            try:
                record(evaluate_loss(), plan.epochs)
            except DeriveError as e:
                if plan.epochs == 0:
                    raise
                raise _Stop(e.what) from None
    except _Stop as stop:
        raw.diverged = max(epoch, 1)
        raw.reason = stop.reason
        if plan.full_batch:   # the loss at the parameters of the failing epoch's start was recorded
            raw.diverged = len(raw.history)
        return raw
    except LimitError as e:   # exp/sigmoid beyond ±EXP_LIMIT after updates: a divergence
        if t == 0:
            raise
        raw.diverged = max(epoch, 1)
        raw.reason = e.what
        return raw
    raw.final = dict(params)
    for label, inputs in plan.predictions:
        values = {**{n: ctx.from_fractions(shapes[n], v.entries) for n, v in spec.data.items()}, **params}
        values.update({n: ctx.from_fractions(shapes[n], e) for n, e in inputs.items()})
        try:
            raw.predictions.append(engine.forward_value(program, ctx, values, plan.output))
        except DeriveError as e:
            raise DeriveError(f"prediction {label}: {e.what}", file=spec.path, key=e.key) from None
    return raw


# ---------------------------------------------------------------- certified results
@dataclass(frozen=True)
class Training:
    """A run's numbers as shown (`Number`s, row-major tuples for matrices)."""
    plan: Plan
    digits: int
    precision: str                  # "float" or "N bits"
    certified: bool
    history: tuple                  # Number per epoch 0..
    final: dict                     # parameter -> tuple of Number
    final_loss: Number | None
    diverged: int | None
    reason: str
    predictions: tuple              # (label, inputs, tuple of Number) per prediction
    first: dict                     # parameter -> {"g": …, "v"/"m"/…, "new": …} (tuples of Number)
    history_floats: tuple           # for plots


def _number_of_float(x, digits: int) -> Number:
    x = float(x)
    if not math.isfinite(x):
        return Number(str(x), None, x)
    return show_fraction(Fraction(x), digits)


def _shown(ctx, a: Arr, digits: int, final: bool) -> tuple:
    """(tuple of Number, every entry certified) for an Arr; None for the tuple when a ball does not
    decide its digits and `final` is not set (at `final`, the midpoint's rounding, uncertified)."""
    out, sure = [], True
    for x in ctx.entries(a):
        if isinstance(ctx, FloatArrays):
            out.append(_number_of_float(x, digits))
            sure = False
            continue
        n = engine.shown_ball(x, digits)
        if n is None:
            if not final:
                return None, False
            n = engine.shown_ball(x, digits, final=True)
            sure = False
        out.append(n)
    return tuple(out), sure


def starting_bits(digits: int, updates: int) -> int:
    return int(digits * 3.33) + 64 + updates // 50


def train(plan: Plan, digits: int = 10, precision: int | str | None = None, progress=None) -> Training:
    """The run's numbers at `digits`: certified at an automatic precision (precision None), at a
    fixed one (bits; a number its ball does not decide is the midpoint's rounding, and the result
    says it is not certified), or in float64 ("float")."""
    if precision == FLOAT:
        with np.errstate(all="ignore"):
            raw = execute(plan, FloatArrays(), progress)
            return _result(plan, raw, digits, "float", True)
    bits = start = starting_bits(digits, plan.updates) if precision is None else int(precision)
    fixed = precision is not None
    exact: dict = {}
    while True:
        try:
            with engine.precision(bits) as ctx:
                raw = execute(plan, ctx, progress)
                got = _result(plan, raw, digits, f"{bits} bits", fixed or bits * 2 > MAX_BITS, exact)
                if got is None and not exact and bits >= 4 * start:
                    exact = _exact_losses(plan, raw, digits)
                    got = _result(plan, raw, digits, f"{bits} bits", fixed or bits * 2 > MAX_BITS, exact)
        except Imprecise as trouble:
            if fixed or bits * 2 > engine.RESCUE_PRECISION_BITS:
                raise DeriveError(f"{trouble.message} (still at {int(bits / 3.33)} working digits)",
                                  file=plan.spec.path) from None
            bits *= 2
            continue
        if got is not None:
            return got
        bits *= 2


EXACT_UPDATES = 4        # a loss at an exact rounding tie is recomputed exactly up to this many updates


def _exact_losses(plan: Plan, raw: Raw, digits: int) -> dict:
    """{epoch: Number} for the losses of the first epochs that no ball decides — a rational value
    exactly at a rounding tie, such as 34.242783985 at 10 digits (decimal data, one step) — from an
    exact run (Fractions) of those epochs, when that is only a few updates of plain SGD or momentum."""
    ctx = raw.ctx
    undecided = [e for e, a in enumerate(raw.history) if engine.shown_ball(a.data, digits) is None]
    if not undecided or plan.options.optimizer == "adam" or \
            max(undecided) * plan.batches > EXACT_UPDATES or ctx is None:
        return {}
    try:
        run = execute(replace(plan, epochs=max(undecided), predictions=()), ExactArrays())
    except DeriveError:
        return {}
    out = {}
    for e in undecided:
        if e < len(run.history) and run.history[e].data[0] is not None:
            out[e] = show_fraction(run.history[e].data[0], digits)
    return out


def _result(plan: Plan, raw: Raw, digits: int, precision: str, final: bool, exact: dict | None = None):
    ctx = raw.ctx
    sure = True
    exact = exact or {}

    def shown(a):
        nonlocal sure
        s, ok = _shown(ctx, a, digits, final)
        if s is None:
            raise _Undecided
        sure = sure and ok
        return s

    try:
        hist = tuple(exact[e] if e in exact else shown(a)[0] for e, a in enumerate(raw.history))
        finals = {p: shown(a) if p in plan.spec.update else
                  tuple(show_fraction(q, digits) for q in plan.start[p]) for p, a in raw.final.items()}
        preds = [shown(a) for a in raw.predictions]
        first = {p: {k: shown(v) for k, v in d.items()} for p, d in raw.first.items()}
    except _Undecided:
        return None
    return Training(
        plan, digits, precision, sure, hist, finals,
        hist[-1] if hist else None, raw.diverged, raw.reason,
        tuple((label, inputs, p) for (label, inputs), p in zip(plan.predictions, preds)),
        first, tuple(h.approx for h in hist))


class _Undecided(Exception):
    pass


# ---------------------------------------------------------------- sweeps
@dataclass(frozen=True)
class SweepRun:
    learning_rate: Fraction
    training: Training
    verdict: str


def verdict(history: tuple, diverged: int | None) -> str:
    """converging: no divergence, the final loss below the initial one, and no rise over the last
    quarter of the steps; else diverging."""
    if diverged is not None or len(history) < 2:
        return "diverging" if diverged is not None else "converging"
    xs = [h.approx for h in history]
    if not all(math.isfinite(x) for x in xs):
        return "diverging"
    q = max(1, (len(xs) - 1) // 4)
    return "converging" if xs[-1] < xs[0] and xs[-1] <= xs[-1 - q] else "diverging"


def sweep(spec: Spec, rates: tuple, steps: int, digits: int = 10, precision=None, progress=None) -> list:
    out = []
    for lr in rates:
        plan = prepare(spec, epochs=steps, learning_rate=lr)
        tr = train(plan, digits, precision, progress)
        out.append(SweepRun(lr, tr, verdict(tr.history, tr.diverged)))
    return out


def sweep_of(spec: Spec, digits: int = 10) -> list:
    """The spec's own train.sweep (for handouts), or []."""
    sw = spec.training.sweep
    return [] if sw is None else sweep(spec, sw.learning_rates, sw.steps, digits)


# ---------------------------------------------------------------- shown values
def thinned_epochs(epochs: int, first: int = 5) -> list:
    """Epochs of a loss table: all up to 20; else 0..first, every 10^(⌊log10 E⌋−1)-th, and the last."""
    if epochs <= 20:
        return list(range(epochs + 1))
    every = 10 ** (len(str(epochs)) - 2)
    if epochs // every > 20:
        every *= 5 if epochs // every <= 100 else 10
    keep = set(range(first + 1)) | set(range(0, epochs + 1, every)) | {epochs}
    return sorted(keep)


def nested(shape: tuple, texts: list, flat: bool = True):
    if shape == ():
        return texts[0]
    r, c = shape
    if c == 1 and flat:
        return list(texts)
    return [list(texts[i * c:(i + 1) * c]) for i in range(r)]


def written_flat(spec: Spec, name: str) -> bool:
    for table in (spec.data, spec.parameters):
        if name in table:
            return table[name].flat_list
    return True


def value_text(spec: Spec, shape: tuple, name: str, numbers) -> str | list:
    return nested(shape, [n.text for n in numbers], written_flat(spec, name))


def class_of(spec: Spec, numbers, lang: str = "en") -> str | None:
    names = spec.training.classes_zh if lang == "zh" and spec.training.classes_zh else spec.training.classes
    if not names or numbers is None or len(numbers) != 1:
        return None
    x = numbers[0].approx
    if not math.isfinite(x):
        return None
    return names[min(len(names) - 1, max(0, int(math.floor(x + 0.5))))]


def to_json(tr: Training) -> dict:
    plan = tr.plan
    spec, shapes = plan.spec, plan.program.shapes
    preds = {}
    for label, inputs, numbers in tr.predictions:
        entry = {"inputs": {n: nested(shapes[n], [_plain(q) for q in e], written_flat(spec, n))
                            for n, e in inputs.items()},
                 "output": plan.output,
                 "value": value_text(spec, shapes[plan.output], plan.output, numbers) if numbers else None}
        cls = class_of(spec, numbers)
        if cls is not None:
            entry["class"] = cls
        preds[label] = entry
    return {
        "title": spec.title,
        "epochs": plan.epochs,
        "samples": plan.n,
        "mode": plan.options.mode,
        "optimizer": plan.options.optimizer,
        "learning_rate": _plain(plan.learning_rate),
        "digits": tr.digits,
        "precision": tr.precision,
        "certified": tr.certified,
        "history": [h.text for h in tr.history],
        "final": {p: value_text(spec, shapes[p], p, v) for p, v in tr.final.items()},
        "final_loss": tr.final_loss.text if tr.final_loss else None,
        "diverged": tr.diverged if tr.diverged is not None else False,
        **({"diverged_because": tr.reason} if tr.diverged is not None else {}),
        "predictions": preds,
    }


def _plain(q: Fraction) -> str:
    return fraction_text(q)


def parse_predict(text: str, spec: Spec) -> tuple:
    """--predict NAME=V,NAME=V: (label, {name: entries}) with exact decimals; scalars only."""
    vals = {}
    for part in text.split(","):
        name, eq, value = part.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name:
            raise DeriveError(f"--predict: expected NAME=VALUE,…, got {part.strip()!r}")
        if name not in spec.data:
            raise DeriveError(f"--predict: {name!r} is not a name in [data]")
        if spec.data[name].shape != ():
            raise DeriveError(f"--predict: data.{name} is {ex.shape_text(spec.data[name].shape)}; "
                              "--predict gives scalars (use [predict] in the spec for a matrix)")
        try:
            if len(value) > 400:
                raise ValueError
            q = Fraction(ex.ascii_numerals(value))
        except (ValueError, ZeroDivisionError):
            raise DeriveError(f"--predict: {name}: {value!r} is not a number") from None
        vals[name] = (q,)
    return (text.replace(" ", ""), vals)


def with_learning_rate(spec: Spec, lr: Fraction) -> Spec:
    return replace(spec, learning_rate=lr)

"""Stage 4 — numeric: exact and high-precision values, correct rounding, gradient steps.

Takes a `Graph`; gives `Run`s: the values of every entry, every local derivative and every
adjoint dL/d(entry) at each gradient-descent step, computed in one arithmetic *context*:
`ExactContext` (Fractions; None where a value is not rational) or `MpContext(digits)` (mpmath
at that working precision).  Every SymPy expression is evaluated by `evaluate` with a context,
so there is one evaluator for forward values, local derivatives and quantity formulas.

Correct rounding: a value is shown exactly when it is rational and short; otherwise it is
evaluated at working precision p and at about 2p, and accepted when both round to the same
N-digit decimal (the precision doubles until they do).  Rounding is half away from zero.
"""
from __future__ import annotations

import decimal
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy as sp

from .errors import DeriveError, LimitError
from . import engine
from .exact import MAX_EXACT_BITS, ExactContext  # noqa: F401
from .rounding import (MAX_DIGITS, Number, _decimal_of, _digits_decimal, exact_decimal, format_decimal,  # noqa: F401,E501
                       is_short_exact, round_fraction, show_fraction, to_float)
from .limits import EXP_LIMIT
from .functions import Norm2, relu, sigmoid, softplus, step
from .graph import Entry, Graph, parameters_feeding

MAX_WORKING_DIGITS = 40_000  # precision escalation stops here
MAX_RESCUE_DIGITS = 2_000    # escalation for a value that looks ≤ 0 (log, sqrt) or 0 (division) stops here


class NumericalTrouble(DeriveError):
    """log/sqrt of a value ≤ 0 or a division by 0 at a working precision: perhaps only rounding
    (1 − σ(1000) is 0 at 40 digits but e^-1000 in truth); retried at a higher precision."""


# ---------------------------------------------------------------- arithmetic contexts
class MpContext:
    """mpmath arithmetic at a working precision of `digits` decimal digits."""

    def __init__(self, digits: int):
        self.digits = digits
        self.ctx = mpmath.MPContext()
        self.ctx.dps = digits
        self.name = f"mp{digits}"

    def const(self, q: Fraction):
        return self.ctx.mpf(q.numerator) / q.denominator

    def add(self, xs):
        return self.ctx.fsum(xs)

    def mul(self, xs):
        out = self.ctx.mpf(1)
        for x in xs:
            out *= x
        return out

    def pow(self, b, e):
        c = self.ctx
        if b == 0 and e < 0:
            raise NumericalTrouble("division by zero")
        if e == c.mpf(1) / 2:
            if b < 0:
                raise NumericalTrouble("sqrt of a negative value")
            return c.sqrt(b)
        if c.isint(e):
            return b ** int(e)
        if b < 0:
            raise NumericalTrouble("a negative value raised to a fractional power")
        return c.power(b, e)

    def func(self, name, x):
        c = self.ctx
        if name == "sigmoid":
            # σ(x) = 1/(1 + e^(−x)), computed on the side where e^(…) does not overflow
            if abs(x) > EXP_LIMIT:
                raise LimitError(f"sigmoid of a value beyond ±{EXP_LIMIT} is refused")
            return 1 / (1 + c.exp(-x)) if x >= 0 else c.exp(x) / (1 + c.exp(x))
        if name == "exp":
            if abs(x) > EXP_LIMIT:
                raise LimitError(f"exp of a value beyond ±{EXP_LIMIT} is refused")
            return c.exp(x)
        if name == "log":
            if x <= 0:
                raise NumericalTrouble("log of a value ≤ 0 (for example log(0) in a cross-entropy)")
            return c.log(x)
        if name == "tanh":
            return c.tanh(x)
        if name == "relu":
            return x if x > 0 else c.mpf(0)
        if name == "step":
            return c.mpf(1) if x > 0 else c.mpf(0)
        if name == "softplus":
            if abs(x) > EXP_LIMIT:
                raise LimitError(f"softplus of a value beyond ±{EXP_LIMIT} is refused")
            return c.log1p(c.exp(x)) if x < 0 else x + c.log1p(c.exp(-x))
        if name == "abs":
            return abs(x)
        raise AssertionError(name)

    def norm2(self, rows, cols, xs):
        c = self.ctx
        m = c.matrix(rows, cols)
        for k, x in enumerate(xs):
            m[k // cols, k % cols] = x
        return max(c.svd_r(m, compute_uv=False))

    def constant(self, value: sp.Expr):
        return self.ctx.mpf(sp.N(value, self.digits + 10))


class BallContext:
    """The engine's ball arithmetic (python-flint arb at flint's working precision) for
    `evaluate`: a local-derivative formula evaluated on the engine's balls is a ball too."""
    name = "ball"

    def const(self, q: Fraction):
        return engine._arb_of(q)

    def add(self, xs):
        total = engine.arb(0)
        for x in xs:
            total += x
        return total

    def mul(self, xs):
        out = engine.arb(1)
        for x in xs:
            out *= x
        return out

    def pow(self, b, e):
        return engine._power(b, e)

    def func(self, name, x):
        return engine._BALL_FUNCTIONS[name](x)

    def norm2(self, rows, cols, xs):
        return engine.BallArrays(0).norm2(engine.Arr((rows, cols), engine.arb_mat(rows, cols, xs))).data

    def constant(self, value: sp.Expr):
        return engine.arb(str(sp.N(value, 60)))


_FUNCTIONS = {sigmoid: "sigmoid", relu: "relu", step: "step", softplus: "softplus",
              sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.Abs: "abs"}


def evaluate(expr: sp.Expr, env: dict, ctx):
    """The value of a SymPy expression in a context; `env` maps Entry symbols to values."""
    cache: dict = {}

    def ev(e):
        if e in cache:
            return cache[e]
        if isinstance(e, sp.Symbol):
            try:
                v = env[e]
            except KeyError:
                raise DeriveError(f"{e.name} has no value (a symbolic name)") from None
        elif e.is_Rational:
            v = ctx.const(Fraction(int(e.p), int(e.q)))
        elif isinstance(e, sp.Add):
            v = ctx.add([ev(a) for a in e.args])
        elif isinstance(e, sp.Mul):
            v = ctx.mul([ev(a) for a in e.args])
        elif isinstance(e, sp.Pow):
            v = ctx.pow(ev(e.base), ev(e.exp))
        elif isinstance(e, Norm2):
            rows, cols = int(e.args[0]), int(e.args[1])
            xs = [ev(a) for a in e.args[2:]]
            v = None if any(x is None for x in xs) else ctx.norm2(rows, cols, xs)
        elif type(e) in _FUNCTIONS or e.func in _FUNCTIONS:
            v = ctx.func(_FUNCTIONS[e.func], ev(e.args[0]))
        elif e.is_number:
            v = ctx.constant(e)
        else:
            raise DeriveError(f"cannot evaluate {e}")
        cache[e] = v
        return v

    return ev(expr)


# ---------------------------------------------------------------- runs of the network
@dataclass
class State:
    """Everything at one step: entry values, local-derivative values, adjoints dL/d(entry)."""
    values: dict              # Entry -> value
    local: dict               # (of, wrt) -> value of ∂of/∂wrt
    adjoint: dict             # Entry -> dL/d(entry)


@dataclass
class Run:
    ctx: object
    states: list              # State at step 0..steps
    learning_rate: object

    def loss_history(self, graph: Graph):
        return [s.values[graph.loss_entry] for s in self.states]


def initial_values(graph: Graph, ctx) -> dict:
    spec = graph.spec
    values = {}
    for table in (spec.data, spec.parameters):
        for name, value in table.items():
            for entry, q in zip(graph.quantities[name].entries, value.entries):
                values[entry] = ctx.const(q)
    return values


def forward(graph: Graph, inputs: dict, ctx) -> dict:
    """Values of every entry, from the input entries' values, in evaluation order."""
    values = dict(inputs)
    for q in graph.quantities.values():
        if q.kind != "forward":
            continue
        try:
            for entry, local in zip(q.entries, q.local):
                values[entry] = evaluate(local, values, ctx)
        except DeriveError as e:
            raise e.located(file=graph.spec.path, key=f"forward.{q.name}") from None
    return values


def local_values(graph: Graph, values: dict, ctx) -> dict:
    out = {}
    for (of, wrt), ld in graph.local_derivatives.items():
        try:
            out[(of, wrt)] = evaluate(ld.formula, values, ctx)
        except DeriveError as e:
            key = f"forward.{of.quantity} (d{of.quantity}/d{wrt.quantity})"
            raise e.located(file=graph.spec.path, key=key) from None
    return out


def backward(graph: Graph, local: dict, ctx, seed: Entry) -> dict:
    """Reverse accumulation from `seed`: d(seed)/d(entry) for every entry.

    dL/dn = Σ over consumers c of n: dL/dc · ∂c/∂n  (visited in reverse evaluation order)
    """
    zero = ctx.const(Fraction(0))
    one = ctx.const(Fraction(1))
    adj = {e: zero for e in graph.order}
    adj[seed] = one
    for entry in reversed(graph.order):
        a = adj[entry]
        if a == 0 or entry not in graph.uses:
            continue
        for dep in graph.uses[entry]:
            adj[dep] = ctx.add([adj[dep], ctx.mul([a, local[(entry, dep)]])])
    return adj


def make_state(graph: Graph, inputs: dict, ctx) -> State:
    values = forward(graph, inputs, ctx)
    local = local_values(graph, values, ctx)
    return State(values, local, backward(graph, local, ctx, graph.loss_entry))


def run(graph: Graph, ctx, steps: int | None = None) -> Run:
    """The forward pass, the backward pass, and `steps` gradient-descent updates."""
    spec = graph.spec
    steps = spec.steps if steps is None else steps
    lr = ctx.const(spec.learning_rate)
    inputs = initial_values(graph, ctx)
    states = [make_state(graph, inputs, ctx)]
    for k in range(1, steps + 1):
        prev = states[-1]
        inputs = dict(inputs)
        for name in spec.update:
            for e in graph.quantities[name].entries:
                # p@k+1 = p@k − η · dL/dp@k
                inputs[e] = ctx.add([prev.values[e], ctx.mul([ctx.const(Fraction(-1)), lr, prev.adjoint[e]])])
        try:
            states.append(make_state(graph, inputs, ctx))
        except DeriveError as e:   # say at which step, and with which values of the parameters
            raise after_step(e, graph, k, inputs) from None
    return Run(ctx, states, lr)


def after_step(error: DeriveError, graph: Graph, k: int, inputs: dict) -> DeriveError:
    """The error with "(after step k, w = -0.3742)" added to its key: the updated parameters that
    the failing definition uses, directly or through others (at most four are named)."""
    key = error.key or ""
    name = key.removeprefix("forward.").split(" ")[0] if key.startswith("forward.") else None
    shown = []
    for e in parameters_feeding(graph, name):
        v = inputs.get(e)
        text = "?" if v is None else show(v, 4, exact=v if isinstance(v, Fraction) else None).text
        shown.append(f"{e.shown} = {text}")
    more = ", …" if len(shown) > 4 else ""
    where = f"after step {k}" + (f", {', '.join(shown[:4])}{more}" if shown else "")
    return type(error)(error.what, file=error.file, key=f"{key} ({where})" if key else f"({where})",
                       column=error.column)


# ---------------------------------------------------------------- correct rounding
def mpf_to_fraction(x) -> Fraction:
    """The exact binary value of an mpf as a Fraction."""
    sign, man, exp, _ = x._mpf_
    if man == 0:
        if exp != 0:  # mpmath's encodings of inf and nan
            raise DeriveError("a value is infinite or not a number")
        return Fraction(0)
    q = Fraction(man) * Fraction(2) ** exp
    return -q if sign else q


def show(value, digits: int, exact: Fraction | None = None) -> Number:
    """The correctly rounded text of a value (a Fraction, or an mpf accurate enough)."""
    if exact is not None:
        return show_fraction(exact, digits)
    return Number(rounded_text(value, digits), None, to_float(value))


def round_mpf(x, digits: int) -> decimal.Decimal:
    """An mpf rounded to `digits` significant digits, half away from zero.

    Works on the binary value directly (no Fraction), so values such as 10^(10^10) cost nothing.
    The result is only as good as x; `Evaluator.answer` compares two working precisions.
    """
    sign, man, exp, bc = x._mpf_
    if man == 0:
        if exp != 0:
            raise DeriveError("a value is infinite or not a number")
        return decimal.Decimal(0)
    with mpmath.workprec(max(bc, int(digits * 3.33)) + 64):
        a = mpmath.mpf((0, man, exp, bc))
        e = int(mpmath.floor(mpmath.log10(a)))
        scaled = a * mpmath.mpf(10) ** (digits - 1 - e)
        if scaled < mpmath.mpf(10) ** (digits - 1):   # log10 was a hair too high
            e -= 1
            scaled *= 10
        elif scaled >= mpmath.mpf(10) ** digits:
            e += 1
            scaled /= 10
        n = int(mpmath.floor(scaled + mpmath.mpf(1) / 2))
    if n == 10 ** digits:
        n //= 10
        e += 1
    return decimal.Decimal((sign, tuple(int(ch) for ch in str(n)), e - digits + 1))


def rounded_decimal(value, digits: int) -> decimal.Decimal:
    if isinstance(value, Fraction):
        return round_fraction(value, digits)
    return round_mpf(value, digits)


def rounded_text(value, digits: int) -> str:
    return format_decimal(rounded_decimal(value, digits), digits)


class Evaluator:
    """Runs of one graph at increasing precision, and correctly rounded answers to queries.

    A query is a function Run -> list of values (entries, row-major).  `answer` evaluates it in
    exact arithmetic and at two working precisions, doubling the precision until the two
    agree on every entry to `digits` significant digits.
    """

    def __init__(self, graph: Graph, steps: int | None = None):
        self.graph = graph
        self.steps = graph.spec.steps if steps is None else steps
        self._runs: dict = {}

    def run_in(self, key):
        if key not in self._runs:
            ctx = ExactContext() if key == "exact" else MpContext(key)
            self._runs[key] = run(self.graph, ctx, self.steps)
        return self._runs[key]

    def answer(self, query, digits: int) -> list[Number]:
        if digits < 1 or digits > MAX_DIGITS:
            raise LimitError(f"digits must be between 1 and {MAX_DIGITS}")
        exact = query(self.run_in("exact"))
        if all(x is not None for x in exact):
            return [show(x, digits, exact=x) for x in exact]
        p = digits + 30
        while True:
            try:
                lo, hi = query(self.run_in(p)), query(self.run_in(2 * p + 10))
            except NumericalTrouble as trouble:
                # perhaps only rounding (1 − σ(1000) is 0 at 40 digits): more precision, up to a cap
                if 2 * p + 10 > MAX_RESCUE_DIGITS:
                    raise DeriveError(f"{trouble.line()} (still at {2 * p + 10} working digits)") from None
                p = 2 * p + 10
                continue
            agree = all(
                (e is not None) or rounded_text(a, digits) == rounded_text(b, digits)
                for a, b, e in zip(lo, hi, exact))
            if agree or 2 * p + 10 > MAX_WORKING_DIGITS:
                return [show(b, digits, exact=e) for b, e in zip(hi, exact)]
            p = 2 * p + 10


# ---------------------------------------------------------------- every entry's numbers, from the engine
def entry_numbers(graph: Graph, program, keys: list, digits: int, steps: int, runs: dict | None = None) -> dict:
    """Correctly rounded Numbers for keys ('value', entry, k), ('adjoint', entry, k) and
    ('local', of, wrt, k): values and adjoints from the engine's runs (exact where rational,
    else certified balls), local derivatives by `evaluate` of their formulas on those runs, all
    certified by `engine.certified`."""
    def values_of(traj, pending):
        ctx = ExactContext() if traj.ctx.name == "exact" else BallContext()
        return {key: [v] for key, v in _entry_table(graph, traj, pending, ctx).items()}
    return {key: shown[0] for key, shown in engine.certified(program, digits, steps, keys, values_of, runs).items()}


def _entry_table(graph: Graph, traj, keys: list, ctx) -> dict:
    """key -> the value in traj's context (Fraction | None, or arb) for each key."""
    env_by_step: dict = {}
    adj_by_step: dict = {}
    shapes = {name: q.shape for name, q in graph.quantities.items()}

    def entry_value(table, e):
        a = table.get(e.quantity)
        if a is None:
            return ctx.const(Fraction(0))
        vals = traj.ctx.entries(a)
        return vals[0] if shapes[e.quantity] == () else vals[e.index[0] * shapes[e.quantity][1] + e.index[1]]

    def env(k):
        if k not in env_by_step:
            env_by_step[k] = {e: entry_value(traj.steps[k].values, e) for e in graph.order}
        return env_by_step[k]

    out = {}
    for key in keys:
        kind, k = key[0], key[-1]
        if kind == "value":
            out[key] = env(k)[key[1]]
        elif kind == "adjoint":
            if k not in adj_by_step:
                adj_by_step[k] = {}
            cache = adj_by_step[k]
            if key[1] not in cache:
                cache[key[1]] = entry_value(traj.steps[k].adjoints, key[1])
            out[key] = cache[key[1]]
        else:
            ld = graph.local_derivatives[(key[1], key[2])]
            try:
                out[key] = evaluate(ld.formula, env(k), ctx)
            except DeriveError as e:
                where = f"forward.{key[1].quantity} (d{key[1].quantity}/d{key[2].quantity})"
                raise e.located(file=graph.spec.path, key=where) from None
    return out

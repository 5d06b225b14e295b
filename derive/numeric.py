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
from fractions import Fraction

import mpmath
import sympy as sp

from .errors import DeriveError, LimitError
from . import engine
from .exact import MAX_EXACT_BITS, ExactContext  # noqa: F401
from .rounding import (MAX_DIGITS, Number, _decimal_of, _digits_decimal, exact_decimal, format_decimal,  # noqa: F401,E501
                       is_short_exact, round_fraction, show_fraction, to_float)
from .limits import EXP_LIMIT
from .functions import Norm2, at_least, maximum, relu, sigmoid, softmax, softplus, step
from .graph import Graph



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
        if name == "at_least":
            return c.mpf(1) if x >= 0 else c.mpf(0)
        if name == "softplus":
            if abs(x) > EXP_LIMIT:
                raise LimitError(f"softplus of a value beyond ±{EXP_LIMIT} is refused")
            return c.log1p(c.exp(x)) if x < 0 else x + c.log1p(c.exp(-x))
        if name == "abs":
            return abs(x)
        if name == "sign":
            return c.mpf((x > 0) - (x < 0))
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
        if name == "at_least":
            return engine._at_least(x, engine.arb(0))
        return engine._BALL_FUNCTIONS[name](x)

    def norm2(self, rows, cols, xs):
        return engine.BallArrays(0).norm2(engine.Arr((rows, cols), engine.arb_mat(rows, cols, xs))).data

    def constant(self, value: sp.Expr):
        return engine.arb(str(sp.N(value, 60)))


_FUNCTIONS = {sigmoid: "sigmoid", relu: "relu", step: "step", softplus: "softplus",
              sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.Abs: "abs", sp.sign: "sign"}


def _difference(ctx, a, b):
    return ctx.add([a, ctx.mul([ctx.const(Fraction(-1)), b])])


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
        elif isinstance(e, softmax):
            # p_k = 1 / Σ_j e^(z_j − z_k): no overflow where z_k is the largest
            zs = [ev(a) for a in e.vector]
            zk = zs[e.position - 1]
            v = ctx.pow(ctx.add([ctx.func("exp", _difference(ctx, z, zk)) for z in zs]), ctx.const(Fraction(-1)))
        elif isinstance(e, (maximum, at_least)):
            a, b = ev(e.args[0]), ev(e.args[1])
            ge = ctx.func("at_least", _difference(ctx, a, b))
            v = ge if isinstance(e, at_least) else ctx.add([ctx.mul([ge, a]), ctx.mul([_difference(
                ctx, ctx.const(Fraction(1)), ge), b])])
        elif type(e) in _FUNCTIONS or e.func in _FUNCTIONS:
            v = ctx.func(_FUNCTIONS[e.func], ev(e.args[0]))
        elif e.is_number:
            v = ctx.constant(e)
        else:
            raise DeriveError(f"cannot evaluate {e}")
        cache[e] = v
        return v

    return ev(expr)


# ---------------------------------------------------------------- correct rounding
def mpf_to_fraction(x) -> Fraction:
    """The exact binary value of an mpf as a Fraction."""
    sign, man, exp, _ = x._mpf_
    if man == 0:
        if exp != 0:  # mpmath's encodings of inf and nan
            raise DeriveError("a value is infinite or not a number")
        return Fraction(0)
    man = -int(man) if sign else int(man)
    return Fraction(man << exp) if exp >= 0 else Fraction(man, 1 << -exp)


def show(value, digits: int, exact: Fraction | None = None) -> Number:
    """The correctly rounded text of a value (a Fraction, or an mpf accurate enough)."""
    if exact is not None:
        return show_fraction(exact, digits)
    return Number(rounded_text(value, digits), None, to_float(value))


def round_mpf(x, digits: int) -> decimal.Decimal:
    """An mpf rounded to `digits` significant digits, half away from zero.

    Works on the binary value directly (no Fraction), so values such as 10^(10^10) cost nothing.
    The result is only as good as x.
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


def query_numbers(graph: Graph, program, query, digits: int, runs: dict | None = None) -> tuple:
    """A `quantity.Query` (SymPy entries over placeholders for values and derivatives), each
    entry correctly rounded: the placeholders from the engine's runs (exact where rational, else
    certified balls; dA_i/dB_j by a backward pass seeded at the entry A_i), the entries by
    `evaluate`, certified by `engine.certified`."""
    def values_of(traj, pending):
        ctx = ExactContext() if traj.ctx.name == "exact" else BallContext()
        return {key: query_values(program, traj, query, ctx) for key in pending}
    return engine.certified(program, digits, query.max_step, ["query"], values_of, runs)["query"]


def query_values(program, traj, query, ctx) -> list:
    """The entries of a query on one engine run, in `ctx` (the run's own kind of numbers)."""
    env = {}
    for sym, b in query.placeholders:
        if b[0] == "value":
            _, e, k = b
            env[sym] = _entry_of(traj, traj.steps[k].values.get(e.quantity), e)
            continue
        _, a, w, k, _graph = b
        step = traj.steps[k]
        seed = a.quantity if not a.index else (a.quantity, _flat(a))
        if seed not in step.seeded:
            step.seeded[seed] = engine.adjoints_from(program, traj.ctx, step, seed, k)
        env[sym] = _entry_of(traj, step.seeded[seed].get(w.quantity), w)
    return [evaluate(e, env, ctx) for e in query.entries]


def _flat(e) -> int:
    return 0 if not e.index else e.index[0] * e.qshape[1] + e.index[1]


def _entry_of(traj, a, e):
    if a is None:   # a derivative through no path: 0
        return Fraction(0) if traj.ctx.name == "exact" else engine.arb(0)
    return traj.ctx.entries(a)[_flat(e)]


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

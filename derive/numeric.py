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
import sys
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import sympy as sp

from .errors import DeriveError, LimitError
from .functions import Norm2, relu, sigmoid, softplus, step
from .graph import Entry, Graph

MAX_DIGITS = 10_000          # --digits limit

if 0 < sys.get_int_max_str_digits() < 100_000:  # 10 000-digit values are printed as decimals
    sys.set_int_max_str_digits(100_000)
MAX_WORKING_DIGITS = 40_000  # precision escalation stops here
MAX_RESCUE_DIGITS = 2_000    # escalation for a value that looks ≤ 0 (log, sqrt) or 0 (division) stops here


class NumericalTrouble(DeriveError):
    """log/sqrt of a value ≤ 0 or a division by 0 at a working precision: perhaps only rounding
    (1 − σ(1000) is 0 at 40 digits but e^-1000 in truth); retried at a higher precision."""
EXP_LIMIT = 100_000          # exp(x) with |x| beyond this is refused


# ---------------------------------------------------------------- arithmetic contexts
MAX_EXACT_BITS = 60_000     # a Fraction larger than this is not carried exactly (mpmath takes over)


def _bits(q: Fraction) -> int:
    return q.numerator.bit_length() + q.denominator.bit_length()


class ExactContext:
    """Rational arithmetic; a value that is not rational is None (and so is all that uses it).

    Exact arithmetic that would explode (repeated squaring of 11/10 …) is not attempted: a result
    over MAX_EXACT_BITS is None, and that value is then shown from the high-precision runs.
    """
    name = "exact"

    def const(self, q: Fraction):
        return q

    def add(self, xs):
        if any(x is None for x in xs) or sum(_bits(x) for x in xs) > MAX_EXACT_BITS:
            return None
        return sum(xs, Fraction(0))

    def mul(self, xs):
        if any(x == 0 for x in xs if x is not None):
            return Fraction(0)
        if any(x is None for x in xs) or sum(_bits(x) for x in xs) > MAX_EXACT_BITS:
            return None
        out = Fraction(1)
        for x in xs:
            out *= x
        return out

    def pow(self, b, e):
        if b is None or e is None or e.denominator != 1:
            if b is not None and e is not None and b >= 0:
                return _exact_root(b, e)
            return None
        if b == 0 and e < 0:
            raise DeriveError("division by zero")
        if abs(e) > 10_000 or _bits(b) * abs(int(e)) > MAX_EXACT_BITS:
            return None
        return b ** int(e)

    def func(self, name, x):
        if x is None:
            return None
        if name == "relu":
            return max(x, Fraction(0))
        if name == "step":
            return Fraction(1 if x > 0 else 0)
        if name == "sigmoid" and x == 0:
            return Fraction(1, 2)
        if name == "exp" and x == 0:
            return Fraction(1)
        if name == "log" and x == 1:
            return Fraction(0)
        if name == "log" and x <= 0:
            raise DeriveError("log of a value ≤ 0 (for example log(0) in a cross-entropy)")
        if name == "tanh" and x == 0:
            return Fraction(0)
        if name == "abs":
            return abs(x)
        return None

    def norm2(self, rows, cols, xs):
        return None

    def constant(self, c):
        return None


def _exact_root(b: Fraction, e: Fraction):
    """b**e for a rational e = p/q when the q-th root of b is rational; else None."""
    from sympy import integer_nthroot
    q = e.denominator
    num, ok1 = integer_nthroot(b.numerator, q)
    den, ok2 = integer_nthroot(b.denominator, q)
    if not (ok1 and ok2):
        return None
    root = Fraction(int(num), int(den))
    if root == 0 and e < 0:
        raise DeriveError("division by zero")
    return root ** e.numerator


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
    from .graph import parameters_feeding
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
def round_fraction(q: Fraction, digits: int) -> decimal.Decimal:
    """q correctly rounded to `digits` significant digits, half away from zero."""
    if q == 0:
        return decimal.Decimal(0)
    with decimal.localcontext() as dc:
        dc.prec = max(digits + 50, 60)
        num = abs(q.numerator)
        den = q.denominator
        e = _decimal_exponent(num, den)
        shift = digits - 1 - e
        scaled_num = num * 10 ** max(0, shift)
        scaled_den = den * 10 ** max(0, -shift)
        n, r = divmod(scaled_num, scaled_den)
        if 2 * r >= scaled_den:
            n += 1
        if n == 10 ** digits:  # rounding carried into a new leading digit: 9.99… → 10.0…
            n //= 10
            shift -= 1
        return _digits_decimal(-n if q < 0 else n, -shift)


def _decimal_exponent(num: int, den: int) -> int:
    """e with 10^e ≤ num/den < 10^(e+1), for positive integers (no string conversion)."""
    e = int((num.bit_length() - den.bit_length()) * 0.30102999566398120)

    def below(k):  # num/den < 10^k
        return num * 10 ** max(0, -k) < den * 10 ** max(0, k)

    while below(e):
        e -= 1
    while not below(e + 1):
        e += 1
    return e


def mpf_to_fraction(x) -> Fraction:
    """The exact binary value of an mpf as a Fraction."""
    sign, man, exp, _ = x._mpf_
    if man == 0:
        if exp != 0:  # mpmath's encodings of inf and nan
            raise DeriveError("a value is infinite or not a number")
        return Fraction(0)
    q = Fraction(man) * Fraction(2) ** exp
    return -q if sign else q


def is_short_exact(q: Fraction, digits: int) -> bool:
    """A rational with a terminating decimal of at most `digits` significant digits."""
    if q == 0:
        return True
    den = q.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return False
    return round_fraction(q, digits) == _decimal_of(q)


def _decimal_of(q: Fraction) -> decimal.Decimal:
    d = exact_decimal(q)
    if d is None:
        raise ValueError(f"{q} has no terminating decimal")
    return d


def _digits_decimal(n: int, exp: int) -> decimal.Decimal:
    """n·10^exp as a Decimal, built from its digits: exact whatever the decimal context's
    precision (the default of 28 digits rounds, and quantize beyond it raises InvalidOperation)."""
    return decimal.Decimal((1 if n < 0 else 0, tuple(int(ch) for ch in str(abs(n))), exp))


def exact_decimal(q: Fraction) -> decimal.Decimal | None:
    """The exact Decimal of a rational with a terminating decimal (0.35000000000000000000000000001
    keeps all 29 places), or None when it has none (1/3).  No decimal context is involved."""
    den = q.denominator
    twos = (den & -den).bit_length() - 1
    den >>= twos
    fives = 0
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return None
    k = max(twos, fives)
    return _digits_decimal(q.numerator * 10 ** k // q.denominator, -k)


def format_decimal(d: decimal.Decimal, digits: int, exact: bool = False) -> str:
    """Plain notation for 1e-4 ≤ |d| < 10^digits, else scientific (mantissa e exponent).

    A correctly rounded value keeps its trailing zeros (0.5000000000); an exact one does not.
    """
    if d == 0:
        return "0"
    if exact:
        with decimal.localcontext() as dc:
            dc.prec = max(len(d.as_tuple().digits), 1)   # normalize must not round
            d = d.normalize()
    sign, digs, exp = d.as_tuple()
    n = len(digs)
    lead = n - 1 + exp  # exponent of the leading digit
    s = "".join(map(str, digs))
    if -4 <= lead < max(digits, n):
        if exp >= 0:
            body = s + "0" * exp
        elif lead >= 0:
            body = s[: lead + 1] + "." + s[lead + 1:]
        else:
            body = "0." + "0" * (-lead - 1) + s
    else:
        mant = s[0] + ("." + s[1:] if len(s) > 1 else "")
        body = f"{mant}e{lead}"
    return ("-" if sign else "") + body


@dataclass(frozen=True)
class Number:
    """A value as shown: its text at N significant digits, exact Fraction if known, the float."""
    text: str
    exact: Fraction | None
    approx: float
    shown_exactly: bool = False   # the text is the exact value, not a rounding of it

    @property
    def is_exact(self) -> bool:
        return self.exact is not None

    def exact_text(self) -> str | None:
        if self.exact is None:
            return None
        q = self.exact
        return str(q.numerator) if q.denominator == 1 else f"{q.numerator}/{q.denominator}"


def show(value, digits: int, exact: Fraction | None = None) -> Number:
    """The correctly rounded text of a value (a Fraction, or an mpf accurate enough)."""
    if exact is not None:
        if is_short_exact(exact, digits):
            return Number(format_decimal(_decimal_of(exact), digits, exact=True), exact, _to_float(exact), True)
        return Number(format_decimal(round_fraction(exact, digits), digits), exact, _to_float(exact))
    return Number(rounded_text(value, digits), None, _to_float(value))


def _to_float(x) -> float:
    """A float for rough uses (sorting, plots); ±inf beyond the float range."""
    try:
        return float(x)
    except OverflowError:
        return float("inf") if x > 0 else float("-inf")


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

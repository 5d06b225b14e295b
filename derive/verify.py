"""Verification: every gradient computed independently, and the largest disagreement.

For every parameter entry p, dL/dp is computed
  1. by reverse accumulation of local derivatives (what the handouts print),
  2. as the sum over the chain-rule paths of the products of their factors (the decomposition shown),
  3. by `sympy.diff` of the fully composed loss (networks small enough to compose),
  4. by a central finite difference (L(p + h) − L(p − h)) / 2h in mpmath at high precision,
all in mpmath at `digits` working digits, and
  5. by the engine (`engine`: whole-array rules in certified ball arithmetic), what `derive solve`
     prints.
1–3 and 5 must agree to about that precision, 4 to 1e-12.  Matrix-form rules (dE/dW = Hᵀ·δ …),
where the spec has them, are checked entry by entry.

A network with more than `LARGE_PARAMETERS` parameter entries is not expanded into scalars: the
engine's gradient of `SAMPLES` entries, drawn by `random.Random(0)` (so every run checks the
same ones), is compared with a central finite difference of the engine's forward pass alone,
at twice the working precision.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

import mpmath

from . import calculus as calc
from . import engine
from . import expr as ex
from . import numeric as nm
from .errors import DeriveError
from .graph import Entry, Graph
from .matrixform import matrix_rules
# ---------------------------------------------------------------- method 1: the per-scalar reference
# An independent backpropagation, on purpose: the per-scalar graph's local-derivative formulas
# (SymPy, what the handouts print) evaluated in mpmath and accumulated entry by entry.  derive's
# numbers come from the engine; this is what they are checked against.
@dataclass
class State:
    """Everything at one step: entry values, local-derivative values, adjoints dL/d(entry)."""
    values: dict              # Entry -> value
    local: dict               # (of, wrt) -> value of ∂of/∂wrt
    adjoint: dict             # Entry -> dL/d(entry)


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
                values[entry] = nm.evaluate(local, values, ctx)
        except DeriveError as e:
            raise e.located(file=graph.spec.path, key=f"forward.{q.name}") from None
    return values


def local_values(graph: Graph, values: dict, ctx) -> dict:
    out = {}
    for (of, wrt), ld in graph.local_derivatives.items():
        try:
            out[(of, wrt)] = nm.evaluate(ld.formula, values, ctx)
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


LARGE_PARAMETERS = 2_000     # more parameter entries: sampled finite differences only
SAMPLES = 20                 # entries checked in a large network

EXACT_TOLERANCE = mpmath.mpf(10) ** -20     # methods 1–3 (and matrix forms) against each other, at 60 digits
FD_TOLERANCE = mpmath.mpf(10) ** -12        # the finite difference against method 1, at 60 digits


def tolerances(digits: int) -> tuple:
    """(exact, finite difference) relative tolerances at `digits` working digits: 10^-(digits/3)
    and 10^-(digits/5), which are EXACT_TOLERANCE and FD_TOLERANCE at the default 60."""
    return mpmath.mpf(10) ** -(digits // 3), mpmath.mpf(10) ** -(digits // 5)


@dataclass(frozen=True)
class Check:
    parameter: str        # entry label
    method: str           # "paths", "sympy.diff", "finite difference", "matrix form"
    reference: object     # mpf: reverse accumulation
    other: object         # mpf
    disagreement: object  # relative
    tolerance: object = EXACT_TOLERANCE

    @property
    def ok(self) -> bool:
        return self.disagreement <= self.tolerance


@dataclass(frozen=True)
class Verification:
    checks: tuple
    skipped: tuple        # reasons a method was not applied
    sampled: str = ""     # for a large network: which entries were checked, and how chosen

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def worst(self, method: str | None = None):
        cs = [c for c in self.checks if method is None or c.method == method]
        return max(cs, key=lambda c: c.disagreement, default=None)


def _relative(a, b, scale):
    return abs(a - b) / max(abs(a), abs(b), scale)


def _mpf_of(ball) -> mpmath.mpf:
    """A ball's midpoint as an mpf, exactly (the mantissa's bits are all kept)."""
    m, e = ball.mid().man_exp()
    m = int(m)
    with mpmath.workprec(max(64, m.bit_length() + 8)):
        return mpmath.ldexp(mpmath.mpf(m), int(e))


def engine_gradients(program, digits: int) -> dict:
    """(parameter, entry index) -> the engine's dL/dp at the start, as an mpf (ball midpoint)."""
    with engine.precision(int(digits * 3.33) + 64) as ctx:
        step = engine.run(program, ctx, 0).steps[0]
        out = {}
        for p in program.parameters:
            g = step.adjoints.get(p)
            n = engine._size(program.shapes[p])
            balls = ctx.entries(g) if g is not None else [None] * n
            for i, b in enumerate(balls):
                out[(p, i)] = mpmath.mpf(0) if b is None else _mpf_of(b)
        return out


def verify(problem, digits: int = 60) -> Verification:
    program = problem.program
    if sum(engine._size(program.shapes[p]) for p in program.parameters) > LARGE_PARAMETERS:
        return verify_sampled(program, digits)
    graph = problem.graph
    ctx = nm.MpContext(digits)
    c = ctx.ctx
    state = make_state(graph, initial_values(graph, ctx), ctx)
    loss_value = state.values[graph.loss_entry]
    # a gradient this small relative to the loss counts as zero in relative comparisons
    floor = c.mpf(10) ** (-digits + 5) * (1 + abs(loss_value))
    checks, skipped = [], []
    exact_tol, fd_tol = tolerances(digits)
    calculus = problem.calculus
    fast = engine_gradients(program, digits)
    for name in graph.parameters:
        for i, entry in enumerate(graph.quantities[name].entries):
            ref = state.adjoint[entry]
            label = entry.shown   # 1-based, as in the documents: W1[1,1]
            other = fast[(name, i)]
            checks.append(Check(label, "engine", ref, other, _relative(ref, other, floor)))

            paths = calculus.paths(entry)
            if paths is None:
                skipped.append(f"{label}: more than {calc.MAX_PATHS} paths; path sum not formed")
            else:
                total = c.fsum(ctx.mul([state.local[(f.of, f.wrt)] for f in p.factors]) for p in paths)
                checks.append(Check(label, "paths", ref, total, _relative(ref, total, floor), exact_tol))

            d = calc.diff_composed(graph, entry)
            if d is None:
                skipped.append(f"{label}: network too large or too deep to compose for sympy.diff")
            else:
                v = nm.evaluate(d, state.values, ctx)
                checks.append(Check(label, "sympy.diff", ref, v, _relative(ref, v, floor), exact_tol))

            fd = _central_difference(graph, entry, ctx, loss_value, ref)
            checks.append(Check(label, "finite difference", ref, fd, _relative(ref, fd, floor), fd_tol))
    for check in matrix_form_checks(problem, state, ctx, floor, exact_tol):
        checks.append(check)
    return Verification(tuple(checks), tuple(skipped))


def _central_difference(graph, entry, ctx, loss_value, gradient):
    """Central difference at a precision that covers the loss's size over the gradient's."""
    span = max(0, int(mpmath.log10(1 + abs(loss_value))) - int(mpmath.log10(abs(gradient) + mpmath.mpf(10) ** -ctx.digits)))
    ctx = nm.MpContext(2 * ctx.digits + span)
    inputs = initial_values(graph, ctx)
    p = inputs[entry]
    h = ctx.ctx.mpf(10) ** (-(ctx.digits // 4)) * max(1, abs(p))

    def loss_at(x):
        shifted = dict(inputs)
        shifted[entry] = x
        return forward(graph, shifted, ctx)[graph.loss_entry]

    # dL/dp ≈ (L(p + h) − L(p − h)) / 2h, error O(h²)
    return (loss_at(p + h) - loss_at(p - h)) / (2 * h)


def matrix_form_checks(problem, state, ctx, floor, tolerance=EXACT_TOLERANCE):
    out = []
    for rule in matrix_rules(problem.graph):
        values = rule.evaluate(state, ctx)
        q = problem.graph.quantities[rule.wrt]
        for entry, v in zip(q.entries, values):
            ref = state.adjoint[entry]
            out.append(Check(entry.shown, "matrix form", ref, v, _relative(ref, v, floor), tolerance))
    return out


def verify_sampled(program, digits: int) -> Verification:
    """A large network: SAMPLES entries, chosen by random.Random(0), engine gradient against a
    central finite difference (L(p + h) − L(p − h)) / 2h of the engine's forward pass."""
    entries = [(p, i) for p in program.parameters for i in range(engine._size(program.shapes[p]))]
    chosen = sorted(random.Random(0).sample(range(len(entries)), min(SAMPLES, len(entries))))
    fast = engine_gradients(program, digits)
    checks = []
    fd_bits = int(2 * digits * 3.33) + 64
    h = Fraction(1, 10 ** (digits // 4))
    with engine.precision(fd_bits) as ctx:
        base = engine.input_values(program, ctx)
        loss = _mpf_of(engine.forward_loss(program, ctx, base).data)
        floor = mpmath.mpf(10) ** (-digits + 5) * (1 + abs(loss))
        for k in chosen:
            name, i = entries[k]
            value = program.spec.parameters[name].entries[i]
            step = h * max(1, abs(value))

            def loss_at(x):
                shifted = dict(base)
                shifted[name] = ctx.with_entry(base[name], i, x)
                return _mpf_of(engine.forward_loss(program, ctx, shifted).data)

            # dL/dp ≈ (L(p + h) − L(p − h)) / 2h, error O(h²)
            with mpmath.workdps(2 * digits):
                fd = (loss_at(value + step) - loss_at(value - step)) / (2 * mpmath.mpf(step.numerator) / step.denominator)
            ref = fast[(name, i)]
            label = ex.entry_text(name, program.shapes[name], i)
            checks.append(Check(label, "finite difference", ref, fd, _relative(ref, fd, floor)))
    note = (f"{len(chosen)} of {len(entries)} parameter entries, drawn by random.Random(0); "
            f"the network is larger than {LARGE_PARAMETERS} entries, so the scalar methods are skipped")
    return Verification(tuple(checks), (), note)

"""Verification: every gradient computed independently, and the largest disagreement.

For every parameter entry p, dL/dp is computed
  1. by reverse accumulation of local derivatives (what the handouts print),
  2. as the sum over the chain-rule paths of the products of their factors (the decomposition shown),
  3. by `sympy.diff` of the fully composed loss (networks small enough to compose),
  4. by a central finite difference (L(p + h) − L(p − h)) / 2h in mpmath at high precision,
all in mpmath at `digits` working digits.  1–3 must agree to about that precision, 4 to 1e-12.
Matrix-form rules (dE/dW = Hᵀ·δ …), where the spec has them, are checked entry by entry.
"""
from __future__ import annotations

from dataclasses import dataclass

import mpmath

from . import calculus as calc
from . import numeric as nm

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

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def worst(self, method: str | None = None):
        cs = [c for c in self.checks if method is None or c.method == method]
        return max(cs, key=lambda c: c.disagreement, default=None)


def _relative(a, b, scale):
    return abs(a - b) / max(abs(a), abs(b), scale)


def verify(problem, digits: int = 60) -> Verification:
    graph = problem.graph
    ctx = nm.MpContext(digits)
    c = ctx.ctx
    state = nm.make_state(graph, nm.initial_values(graph, ctx), ctx)
    loss_value = state.values[graph.loss_entry]
    # a gradient this small relative to the loss counts as zero in relative comparisons
    floor = c.mpf(10) ** (-digits + 5) * (1 + abs(loss_value))
    checks, skipped = [], []
    exact_tol, fd_tol = tolerances(digits)
    calculus = problem.calculus
    for name in graph.parameters:
        for entry in graph.quantities[name].entries:
            ref = state.adjoint[entry]
            label = entry.shown   # 1-based, as in the documents: W1[1,1]

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
    inputs = nm.initial_values(graph, ctx)
    p = inputs[entry]
    h = ctx.ctx.mpf(10) ** (-(ctx.digits // 4)) * max(1, abs(p))

    def loss_at(x):
        shifted = dict(inputs)
        shifted[entry] = x
        return nm.forward(graph, shifted, ctx)[graph.loss_entry]

    # dL/dp ≈ (L(p + h) − L(p − h)) / 2h, error O(h²)
    return (loss_at(p + h) - loss_at(p - h)) / (2 * h)


def matrix_form_checks(problem, state, ctx, floor, tolerance=EXACT_TOLERANCE):
    from .matrixform import matrix_rules
    out = []
    for rule in matrix_rules(problem.graph):
        values = rule.evaluate(state, ctx)
        q = problem.graph.quantities[rule.wrt]
        for entry, v in zip(q.entries, values):
            ref = state.adjoint[entry]
            out.append(Check(entry.shown, "matrix form", ref, v, _relative(ref, v, floor), tolerance))
    return out

"""Judging a claimed formula: equal to the claimed quantity at the given values and at random
points (inputs it does not refer to held at their values), SymPy then asked to confirm; else
the hypothesis whose recomputation it equals."""
from __future__ import annotations

from fractions import Fraction

import sympy as sp

from . import expr as ex
from .calculus import Calculus
from .errors import DeriveError
from .claims import Claim, max_step, nest
from .formulas import symbolically_equal, correct_formula
from .messages import Messages, shape_words
from .verdicts import Result, close_to, as_fraction
from .worlds import RANDOM_POINTS, Recomputations, WORK_DIGITS


class FormulaJudge:
    """Judges formula claims of one file."""

    def __init__(self, rc: Recomputations, say: Messages):
        self.rc, self.say = rc, say

    def correct_formula(self, claim: Claim) -> tuple[str, object]:
        """(text, sympy-or-None) of the true formula of the claimed quantity."""
        return correct_formula(self.rc.problem, claim.of_tree)

    def referenced_inputs(self, tree) -> frozenset:
        """Input entries a formula depends on, directly or through the definitions it names."""
        g = self.rc.graph
        out: set = set()
        names = ex.names_in(tree)
        steps = max_step(tree)
        for n in names:
            q = g.quantities.get(n)
            if q is None:
                continue
            for e in q.entries:
                out |= {x for x in Calculus(g, e).reaches if g.quantities[x.quantity].kind != "forward"}
        if steps:
            out |= {x for x in Calculus(g).reaches if g.quantities[x.quantity].kind != "forward"}
        return frozenset(out)

    def _formula_values(self, claim: Claim, point):
        """(claimed formula entries, true quantity entries) as Fractions at a point."""
        return self.rc.memo(("values", claim.where, claim.reading, point), lambda: self._values_at(claim, point))

    def _values_at(self, claim: Claim, point):
        w = self.rc.true_world(point)
        f = [as_fraction(x) for x in w.eval(claim.formula_query)]
        t = [as_fraction(x) for x in w.eval(claim.query)]
        if len(f) == 1 and len(t) > 1:
            f = f * len(t)
        return f, t

    def _points(self, claim: Claim) -> list:
        refs = self.referenced_inputs(claim.tree)
        return [(refs, k) for k in range(1, RANDOM_POINTS + 1)]

    def judge_formula(self, claim: Claim) -> Result:
        tf, _ = self.correct_formula(claim)
        numbers = None
        if not self.rc.problem.is_symbolic:
            try:
                numbers = self.rc.truth(claim.query)[1]
            except DeriveError:
                numbers = None
        td = nest([n.text for n in numbers], claim.query.shape) if numbers else None
        if claim.formula_error is not None:
            return Result(claim, "wrong", None, self.say.msg("formula_error", err=claim.formula_error),
                          claim.claimed_display(), tf, td)
        fshape, qshape = claim.formula_query.shape, claim.query.shape
        if fshape != qshape and fshape != ():
            msg = self.say.msg("shape_mismatch", fs=shape_words(fshape, self.say.lang), of=claim.of,
                           qs=shape_words(qshape, self.say.lang))
            if qshape == () and self._sum_equals(claim):
                msg += self.say.msg("sum_note", of=claim.of)
            return Result(claim, "wrong", None, msg, claim.claimed_display(), tf, td)
        points = self._points(claim)
        given_ok = None
        if not self.rc.problem.is_symbolic:
            f, t = self._formula_values(claim, None)
            given_ok = all(close_to(a, b) for a, b in zip(f, t))
        random_ok = True
        for p in points:
            try:
                f, t = self._formula_values(claim, p)
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            if not all(close_to(a, b) for a, b in zip(f, t)):
                random_ok = False
                break
        if random_ok and given_ok is not False:
            proved = self.rc.memo(("sympy", claim.where, claim.reading), lambda: symbolically_equal(
                self.rc.problem, claim.tree, claim.of_tree, self._fixed(claim)))
            how = self.say.msg("how_sympy") if proved else self.say.msg("how_numeric", k=len(points), d=WORK_DIGITS)
            return Result(claim, "correct", None, self.say.msg("correct_formula", how=how), claim.claimed_display(), tf, td,
                          method="sympy" if proved else "numeric")
        message = self.say.msg("wrong_formula", tf=tf)
        if given_ok:
            message += self.say.msg("given_only", names=", ".join(self._sensitive(claim)) or "?")
        diagnosis, also, what = self.diagnose_formula(claim, points)
        if diagnosis is not None:
            message += self.say.diagnosis_text(diagnosis, (), also, what)
        return Result(claim, "wrong", diagnosis, message, claim.claimed_display(), tf, td, also=also, hypothesis=what)

    def _fixed(self, claim: Claim) -> dict:
        """Inputs held at their given values when comparing a formula (those it does not refer to)."""
        if self.rc.problem.is_symbolic:
            return {}
        refs = self.referenced_inputs(claim.tree)
        out = {}
        for table in (self.rc.spec.data, self.rc.spec.parameters):
            for name, value in table.items():
                for e, v in zip(self.rc.graph.quantities[name].entries, value.entries):
                    if e not in refs:
                        out[e] = sp.Rational(v.numerator, v.denominator)
        return out

    def _sum_equals(self, claim: Claim) -> bool:
        try:
            f, t = self._formula_values(claim, (self.referenced_inputs(claim.tree), 1))
        except (DeriveError, ZeroDivisionError, ValueError):
            return False
        return close_to(sum(f, Fraction(0)), t[0])

    def _sensitive(self, claim: Claim) -> list:
        """Inputs whose value alone (others at the given values) breaks the formula's equality."""
        out = []
        for e in sorted(self.referenced_inputs(claim.tree), key=lambda x: x.name):
            try:
                f, t = self._formula_values(claim, (frozenset([e]), 1))
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            if not all(close_to(a, b) for a, b in zip(f, t)):
                out.append(e.name)
            if len(out) >= 3:
                break
        return out

    def diagnose_formula(self, claim: Claim, points: list):
        found = []
        for hyp in self.rc.hypotheses:
            if hyp.kind in {h[0] for h in found}:
                continue
            ok = True
            for p in points:
                try:
                    f, t = self._formula_values(claim, p)
                except (DeriveError, ZeroDivisionError, ValueError):
                    ok = False
                    break
                alt = self.rc.hyp_alt(hyp, claim.query, p, truth=t)
                if alt is None or len(alt) != len(f) or not all(close_to(a, b) for a, b in zip(alt, f)):
                    ok = False
                    break
                if all(close_to(a, b) for a, b in zip(alt, t)):
                    ok = False      # the hypothesis changes nothing here
                    break
            if ok:
                found.append((hyp.kind, hyp))
        if not found:
            return None, (), None
        return found[0][0], tuple(k for k, _ in found[1:]), found[0][1]

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

MAX_ONE_HOT_CHOICES = 64     # one-hot values tried one by one in a symbolic check (3 classes: 3)


def one_hot_assignments(graph, refs, names=None) -> list:
    """Every admissible value of the one-hot data that `refs` (input entries) touch, each as
    {entry: 0 or 1}; [] when none is touched or there would be more than MAX_ONE_HOT_CHOICES.
    `names`: these data names taken as one-hot (default: the spec's one_hot)."""
    groups = []
    for name in (graph.spec.one_hot if names is None else names):
        q = graph.quantities[name]
        if not set(q.entries) & set(refs):
            continue
        r, c = q.shape
        cols = [list(q.entries)] if r == 1 else [[q.entries[i * c + j] for i in range(r)] for j in range(c)]
        groups += cols
    out = [{}]
    for col in groups:
        out = [{**a, **{e: sp.Integer(int(e is hot)) for e in col}} for a in out for hot in col]
        if len(out) > MAX_ONE_HOT_CHOICES:
            return []
    return out if groups else []


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
            proved = self.rc.memo(("sympy", claim.where, claim.reading), lambda: self._proved(claim))
            how = self.say.msg("how_sympy") if proved else self.say.msg("how_numeric", k=len(points), d=WORK_DIGITS)
            return Result(claim, "correct", None, self.say.msg("correct_formula", how=how), claim.claimed_display(), tf, td,
                          method="sympy" if proved else "numeric")
        message = self.say.msg("wrong_formula", tf=tf)
        if given_ok:
            sensitive = self._sensitive(claim)
            message += self.say.msg("given_only", names=", ".join(ex.entry_text(e.quantity, e.qshape, e.flat) for e in sensitive) or "?")
            hot = self._would_hold_one_hot(claim, sensitive)
            if hot:
                message += self.say.msg("one_hot_hint", name=hot)
        diagnosis, also, what = self.diagnose_formula(claim, points)
        if diagnosis is not None:
            message += self.say.diagnosis_text(diagnosis, (), also, what)
        return Result(claim, "wrong", diagnosis, message, claim.claimed_display(), tf, td, also=also, hypothesis=what)

    def _proved(self, claim: Claim) -> bool:
        """SymPy's identity test; where the formula refers to one-hot data (the spec's one_hot),
        the identity is asked for each admissible one-hot value in turn (t = e_1, …, e_n): what
        holds for every one of them holds for t one-hot (p − t for softmax + cross-entropy)."""
        fixed = self._fixed(claim)
        choices = one_hot_assignments(self.rc.graph, self.referenced_inputs(claim.tree) | set(
            self.referenced_inputs(claim.of_tree)))
        if not choices:
            return symbolically_equal(self.rc.problem, claim.tree, claim.of_tree, fixed)
        return all(symbolically_equal(self.rc.problem, claim.tree, claim.of_tree, {**fixed, **c})
                   for c in choices)

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

    def _would_hold_one_hot(self, claim: Claim, sensitive: list) -> str | None:
        """The data name whose entries the formula is sensitive to, when its given value is one-hot
        but the spec does not say so and the formula holds for every one-hot value of it."""
        g = self.rc.graph
        names = {e.quantity for e in sensitive}
        if len(names) != 1:
            return None
        name = names.pop()
        v = self.rc.spec.data.get(name)
        if v is None or v.is_scalar or name in self.rc.spec.one_hot or any(q not in (0, 1) for q in v.entries):
            return None
        r, c = v.shape
        cols = [list(v.entries)] if r == 1 else [[v.entries[i * c + j] for i in range(r)] for j in range(c)]
        if any(sum(col) != 1 for col in cols):
            return None
        q = g.quantities[name]
        choices = one_hot_assignments(g, q.entries, names=(name,))
        fixed = self._fixed(claim)
        try:
            ok = bool(choices) and all(symbolically_equal(self.rc.problem, claim.tree, claim.of_tree, {**fixed, **ch})
                                       for ch in choices)
        except DeriveError:
            return None
        return name if ok else None

    def _sensitive(self, claim: Claim) -> list:
        """Inputs whose value alone (others at the given values) breaks the formula's equality."""
        out = []
        for e in sorted(self.referenced_inputs(claim.tree), key=lambda x: x.name):
            try:
                f, t = self._formula_values(claim, (frozenset([e]), 1))
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            if not all(close_to(a, b) for a, b in zip(f, t)):
                out.append(e)
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

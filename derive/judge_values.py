"""Judging a claimed value: a verdict per entry (correct, rounding, truncated, wrong) and the
diagnosis of a wrong one — the first hypothesis whose recomputation reproduces it, or the
author's own earlier numbers carried forward."""
from __future__ import annotations

from fractions import Fraction

from . import engine
from . import numeric as nm
from .errors import DeriveError
from . import expr as ex
from .claims import Claim, claim_keys, nest, nodes
from .formulas import correct_formula
from .messages import ROUNDED_ORDER, Messages, shape_words
from .verdicts import Result, RoundingChain, Stated, SEVERITY, close_to, as_fraction, is_correct, is_last_unit, is_truncated, reproduces, text_at
from .worlds import Recomputations, ROUNDING_SUBSETS, rounded_chain


class ValueJudge:
    """Judges value claims (and constant formulas) of one file, in order."""

    def __init__(self, rc: Recomputations, say: Messages, results: list):
        self.rc, self.say, self.results = rc, say, results

    def stated_of(self, claim: Claim) -> list:
        """Stated numbers; for a constant formula, its exact value as a Stated of its literal digits."""
        if claim.kind == "value":
            return list(claim.stated)
        vals = self.rc.truth(claim.formula_query)[0]
        sig = claim.const_sig
        return [Stated(claim.reading, v, 0, sig or 0) for v in vals]

    def judge_value(self, claim: Claim) -> Result:
        q = claim.query
        if claim.constant and claim.formula_error is not None:
            return Result(claim, "wrong", None, self.say.msg("formula_error", err=claim.formula_error),
                          claim.claimed_display(), "—", None)
        T, numbers = self.rc.truth(q)
        stated = self.stated_of(claim)
        if claim.constant and len(stated) != len(T):
            if len(stated) == 1:
                stated = stated * len(T)
            else:
                return self._shape_result(claim, numbers)
        per = [self._entry_verdict(claim, s, t) for s, t in zip(stated, T)]
        verdict = max((p[0] for p in per), key=SEVERITY.get)
        td = nest([n.text for n in numbers], q.shape, claim.flat)
        if claim.constant:
            true_claim = td
        else:
            true_claim = nest([text_at(s, t) for s, t in zip(stated, T)], q.shape, claim.flat)
        claimed = claim.claimed_display()
        diagnosis, carries, also, what = None, (), (), None
        if verdict == "wrong":
            wrong_idx = [i for i, p in enumerate(per) if p[0] == "wrong"]
            diagnosis, carries, also, what = self.diagnose_value(claim, stated, T, wrong_idx)
        rounding = self._rounding_chain(claim, per) if verdict == "rounding" else None
        message = self.say.value_message(claim, per, stated, T, numbers, verdict, diagnosis, carries, also, what,
                                         rounding)
        return Result(claim, verdict, diagnosis, message, claimed, true_claim, td, carries, also,
                      entries=tuple(p[0] for p in per), hypothesis=what, rounding=rounding)

    def _rounding_chain(self, claim: Claim, per: list) -> RoundingChain | None:
        """The rounded chain of a rounding verdict (its first entry that is rounding)."""
        detail = next(d for v, d in per if v == "rounding")
        kind, n, alt, subset = detail
        if subset is None:
            return RoundingChain(kind, n)
        rounded = tuple(k for k in ROUNDED_ORDER if k in subset)
        try:
            chain = tuple(rounded_chain(self.rc, claim.query, n, subset)) if len(per) == 1 else ()
        except (DeriveError, ZeroDivisionError, ValueError, KeyError):
            chain = ()
        if claim.constant and chain:
            # the intermediate values that are the expression's numbers
            literals = {abs(x.value) for x in nodes(claim.tree) if isinstance(x, ex.Num)} - {0, 1}
            matched = tuple(x for x in chain if abs(x[4]) in literals)
            chain = matched or chain
        return RoundingChain(kind, n, rounded, alt, chain)

    def _entry_verdict(self, claim: Claim, s: Stated, t: Fraction):
        """(verdict, detail) of one stated number against its true value."""
        if claim.constant:
            if close_to(s.value, t):
                return ("correct", None)
            n = s.sig
            if n and n >= 2:
                alt, subset = self._rounding_alt(claim, n, lambda a: nm.round_fraction(a, n) == nm.round_fraction(s.value, n)
                                                 if s.value != 0 else False, fewest=False)
                if alt is not None:
                    return ("rounding", ("const", n, alt, subset))
                if nm.round_fraction(s.value, n) == nm.round_fraction(t, n) if t != 0 else False:
                    return ("rounding", ("const", n, None, None))
            return ("wrong", None)
        if is_correct(s, t):
            return ("correct", None)
        if s.sig >= 2:
            alt, subset = self._rounding_alt(claim, s.sig, lambda a: is_correct(s, a), s=s)
            if alt is not None:
                return ("rounding", ("world", s.sig, alt, subset))
        if is_last_unit(s, t):
            return ("rounding", ("unit", s.sig, None, None))
        if is_truncated(s, t):
            return ("truncated", None)
        return ("wrong", None)

    def _rounding_alt(self, claim: Claim, n: int, ok, s: Stated | None = None, fewest: bool = True):
        """(value, rounded subset) of the claimed quantity from a hand calculation at n digits that
        satisfies ok, or (None, None)."""
        q = claim.query
        idx = None
        if s is not None and claim.stated is not None and len(claim.stated) > 1:
            idx = [i for i, x in enumerate(claim.stated) if x is s]
        # the fewest kinds of rounding first (a constant expression: every kind, so that the chain
        # shows the rounded derivatives its numbers are)
        for subset in sorted(ROUNDING_SUBSETS, key=len, reverse=not fewest):
            try:
                w = self.rc.world(("round", n, subset), None, engine.WhatIf(round_digits=n, rounding=subset))
                vals = [as_fraction(x) for x in w.eval(q)]
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            cand = vals if idx is None else [vals[i] for i in idx]
            if len(cand) == 1 and ok(cand[0]):
                return cand[0], subset
            if len(cand) > 1 and all(ok(x) for x in cand):
                return cand[0], subset
        return None, None

    def diagnose_value(self, claim: Claim, stated: list, T: list, wrong_idx: list):
        q = claim.query

        def explains(alt):
            if alt is None or len(alt) != len(stated):
                return False
            for i in wrong_idx:
                s = stated[i]
                if claim.constant:
                    if not (close_to(alt[i], s.value) or (s.sig and s.sig >= 2 and
                            nm.round_fraction(alt[i], s.sig) == nm.round_fraction(s.value, s.sig))):
                        return False
                elif not reproduces(s, alt[i]):
                    return False
            return True

        found = []
        for hyp in self.rc.hypotheses:
            if hyp.kind in {h[0] for h in found}:
                continue
            alt = self.rc.hyp_alt(hyp, q, None, truth=T)
            if explains(alt):
                found.append((hyp.kind, hyp))
        carried = self.carried_forward(claim, explains, stated, T, wrong_idx)
        if carried is not None:
            found.append(("carried-forward", carried))
        if not found:
            return "arithmetic", (), (), None
        kind, info = found[0]
        also = tuple(k for k, _ in found[1:])
        # the claims whose error is carried, also when carrying is only consistent (in `also`)
        carries = tuple(carried["carries"]) if carried is not None else ()
        return kind, carries, also, info

    def carried_forward(self, claim: Claim, explains, stated=(), T=(), wrong_idx=()):
        """The claim recomputed from the author's earlier claimed values (and own formula)."""
        earlier = [r for r in self.results]
        # a restatement of an earlier claim that was not correct
        for r in reversed(earlier):
            if r.claim.of == claim.of and r.claim.is_value and r.verdict != "correct" \
                    and r.claimed == (claim.claimed_display()):
                return {"carries": (r.claim.index,), "restated": True, "formula": None}
        restated = self.restated_entries(stated, T, wrong_idx)
        if restated is not None:
            return restated
        own_keys = set(claim_keys(claim, self.rc.graph))
        overrides: dict = {}
        for r in earlier:
            c = r.claim
            if not c.is_value or c.query is None or c.of_error is not None:
                continue
            keys = claim_keys(c, self.rc.graph)
            if not keys or own_keys & set(keys):
                continue
            try:
                vals = [x.value for x in self.stated_of(c)] if c.kind == "value" else \
                    [as_fraction(x) for x in self.rc.true_world().eval(c.formula_query)]
            except DeriveError:
                continue
            if len(vals) != len(keys):
                continue
            for key, v in zip(keys, vals):
                overrides[key] = (c.index, v, r.verdict)
        formulas = [None] + [r.claim for r in earlier
                             if r.claim.of == claim.of and not r.claim.is_value and r.claim.formula_query is not None]
        # the author's values: all of them; else only those that were not correct; else only wrong ones
        tried = set()
        for keep in (("correct", "rounding", "truncated", "wrong"), ("rounding", "truncated", "wrong"),
                     ("wrong",)):
            subset = {k: v for k, v in overrides.items() if v[2] in keep}
            key = tuple(sorted(str(k) for k in subset))
            if not subset or key in tried:
                continue
            tried.add(key)
            found = self._carried_with(claim, subset, formulas, explains)
            if found is not None:
                return found
        return None

    def restated_entries(self, stated, T, wrong_idx):
        """A vector or matrix claim whose every wrong entry restates an earlier claim of one number
        that was not correct, about the same value (sigmoid-2-4-2: a_hidden's third entry 0.9933 is
        claim 8's σ(5.2) = 0.9933): {carries, restated, entries}, else None."""
        if len(stated) < 2 or not wrong_idx:
            return None
        carries = {}
        for i in wrong_idx:
            for r in reversed(self.results):
                c = r.claim
                if r.verdict == "correct" or c.kind != "value" or c.query is None or c.of_error is not None \
                        or len(c.stated) != 1 or c.stated[0].value != stated[i].value:
                    continue
                try:
                    t = self.rc.truth(c.query)[0]
                except DeriveError:
                    continue
                if len(t) == 1 and close_to(t[0], T[i]):
                    carries[i] = c.index
                    break
            else:
                return None
        return {"carries": tuple(sorted(set(carries.values()))), "restated": True, "formula": None,
                "entries": tuple(sorted(carries))}

    def _carried_with(self, claim: Claim, overrides: dict, formulas: list, explains):
        try:
            world = self.rc.override_world(overrides)
        except (DeriveError, ZeroDivisionError, ValueError):
            return None
        for f in formulas:
            query = claim.query if f is None else f.formula_query
            try:
                alt = [as_fraction(x) for x in world.eval(query)]
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            if not explains(alt):
                continue
            carriers = []
            for idx in sorted({v[0] for v in overrides.values() if v[2] != "correct"}):
                reduced = {k: v for k, v in overrides.items() if v[0] != idx}
                try:
                    w2 = self.rc.override_world(reduced)
                    alt2 = [as_fraction(x) for x in w2.eval(query)]
                except (DeriveError, ZeroDivisionError, ValueError):
                    continue
                if any(not close_to(a, b) for a, b in zip(alt, alt2)):
                    carriers.append(idx)
            if f is not None and self.results[f.index - 1].verdict != "correct":
                carriers.append(f.index)
            if carriers:
                return {"carries": tuple(sorted(set(carriers))), "restated": False,
                        "formula": f.index if f is not None else None}
        return None


    def _shape_result(self, claim, numbers):
        fs = shape_words(claim.formula_query.shape, self.say.lang)
        qs = shape_words(claim.query.shape, self.say.lang)
        return Result(claim, "wrong", None, self.say.msg("shape_mismatch", fs=fs, of=claim.of, qs=qs),
                      claim.claimed_display(), correct_formula(self.rc.problem, claim.of_tree)[0],
                      nest([n.text for n in numbers], claim.query.shape) if numbers else None)

    # -- formulas

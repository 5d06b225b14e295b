"""Checking hand derivations: claims files, rounding-aware verdicts, mistake diagnosis.

Takes a claims file (TOML: `spec = "…"` and `[[claim]]` tables with `of` and one of `value`,
`expr`, `latex`, optionally `note`); gives one `Result` per claim, in file order:

- `correct`   — a value equal to the true value rounded to the digits it states (0.7514 for
  0.75136507); a formula equivalent to the true one; a constant formula (`0.2*120 + 0.5*1`)
  exactly equal to the true value;
- `rounding`  — not that, but explained by rounding: one unit off in the last of six or more
  stated significant digits, or reproduced by recomputing the quantity from intermediate values
  rounded to the claim's significant digits (a "hand calculation at n digits", see below);
- `truncated` — the true value cut off (not rounded) at the stated digits (0.9998 for 0.99989897);
- `wrong`     — none of these, with a diagnosis: the first of `used-preactivation`,
  `missing-activation-derivative`, `sign-flip`, `factor-2`, `update-sign`, `update-missing-weight`,
  `dropped-path`, `used-updated-weights`, `carried-forward` whose recomputation reproduces the
  claim, else `arithmetic` (for a formula with no matching mistake the diagnosis is empty).

How values are judged.  The true value comes from the engine (exact where rational, else at
60 working digits; `--digits` text certified by the engine, `numeric.query_numbers`).  A stated number's precision
is its last written digit: `0.0214` → 10⁻⁴ (3 significant digits), `1.0000` → 10⁻⁴, `120` → 1,
`89999810000` → 10⁴ (trailing zeros of an integer are placeholders).  `correct` means
|claimed − true| ≤ ½ unit of that digit (so an exact tie may round either way).

How mistakes are tested.  Every hypothesis is a recomputation of the claimed quantity in a
`World`: one run of the engine (`engine.trajectory`, balls at 264 bits, read at 60 digits) with
one change given as an `engine.WhatIf` — the engine's one backward pass, entry by entry over each
definition's Jacobian so that the change has a place — local derivatives of an activation evaluated at the pre-activation
(σ'(z) as z(1 − z)) or at the output (σ(σ(z))…), or dropped (f' = 1); some consumers' contributions
to a branch's adjoint left out (dropped paths); local derivatives evaluated with the parameters
already updated; the update rule p + ηg, ηg or −ηg — so a mistake made in a gradient shows in
the updated parameters and in the next forward pass too.  `sign-flip` and `factor-2` transform the
true value (−T, 2T, T/2; for a sum, one term with the wrong sign).  `carried-forward` reruns the
network with the author's own earlier claimed values (of names, `NAME@k` and `dA/dB`) put in
place of the true ones — and also the author's own earlier formula for the same quantity — and
names the earlier claims that were not correct and change the result.  A recomputation
reproduces a claimed value when the claim is its correctly rounded or truncated value, or (six or
more digits) one unit off; all hypotheses that reproduce it are listed in the message, the first
in the order above is the diagnosis.

Rounding ("hand calculation at n digits").  Seven worlds per n: every forward value, every local
derivative value, every adjoint — each subset of these three — rounded to n significant digits
as soon as it is computed (inputs of the spec are never rounded).  Used only for n ≥ 2.  The
subsets are tried with the fewest kinds first (a constant expression: all three first), and the
verdict carries the one that reproduced the claim as `Result.rounding` (`verdicts.RoundingChain`:
the digits, the kinds rounded, the intermediate values of that calculation the claim is computed
from, `worlds.rounded_chain`), which the message, JSON (`rounding`) and the errata show.

How formulas are judged.  The formula (`expr` in the spec language, or `latex` read by
`derive.latexparse`) and the claimed quantity are evaluated at the given values and at four random
points.  Inputs the formula does not refer to (directly or through the definitions of the names
it uses) are held at their given values, because a worked example may substitute known values
(`(1 − y_pred)^2` for `(y_true − y_pred)^2` with y_true = 1, or σ(w1·x1 + w4·x2) when the biases
are 0); inputs it refers to get random values in ±[0.15, 0.85].  Equal everywhere (relative 10⁻³⁰)
means equivalent; SymPy is then asked to confirm symbolically (the message says which method
decided).  A constant formula (no names) is an exact claim: `correct` only when exactly equal;
`rounding` when it agrees to the significant digits of its decimal literals with a hand
calculation at that many digits (e.g. `(-0.952)*0.249*(-0.0904)` for ∂L/∂w1).  A formula whose
shape does not fit (a 2×4 matrix times a 2×4 matrix, a vector claimed for a scalar) is `wrong`
with the reason, as is a claim about a quantity that is not defined (a full Jacobian).

Decisions (beyond the issue's text):
- Claims are numbered from 1 in file order (`claim[3]` is the third `[[claim]]`).
- `spec` is a file relative to the claims file when one exists there, else a built-in id.
- `carried-forward` tries the author's earlier values in three sets — all of them, then only
  those not `correct`, then only the `wrong` ones — because an author who rounds every number
  and also slips once is still carrying the slip.  A restatement of an earlier value that was not
  correct carries that claim, and so does a vector or matrix claim whose every wrong entry restates
  an earlier one-number claim about the same value that was not correct (sigmoid-2-4-2's a_hidden:
  its third entry is claim 8's σ(5.2) = 0.9933).  A claimed dA/dB replaces, in the recomputation, the part of dL/dB
  that flows through A (dL/dB itself when A is the loss).
- A layer written `c*(… @ …)` with a constant c ≠ 1 (seed 002's f(x) = 2x) counts as an activation
  with f' = c, so leaving the 2 out of ∂E/∂W_hidden is `missing-activation-derivative` (and
  `factor-2` is listed as also consistent).
- A claim about a quantity that has no value here (a full Jacobian such as dy_m/dW_output) or a
  formula that is undefined (a 2×4 matrix times a 2×4 matrix) is `wrong` with the reason, not bad
  input: it is the author's mathematics, not the file, that is at fault.
- A matrix claim's verdict is its worst entry's (wrong > truncated > rounding > correct); a
  diagnosis must reproduce every wrong entry.
- `claimed` is the text as written (the LaTeX for a latex claim); JSON adds `reading`, the formula
  in the expression language as it was understood, and `also`, further consistent diagnoses.
- The message shows the true value with enough digits to see how it differs (0.999999999977,
  not 1.000000000); the `true_digits` field is the engine's text at --digits.

Bad input — unreadable TOML, unknown keys or names, a claim with none or several of
value/expr/latex, unparseable formulas or numbers, a value of the wrong shape, a value claimed in a
symbolic spec — raises `DeriveError` naming the file and the claim
(`claims.toml: claim[3] (of = "dE/dw9"): unknown name 'w9'`); claims are numbered from 1.

Everything is deterministic: random points come from seeds made of the point number and the
input's name.
"""
from __future__ import annotations


from .errors import DeriveError
from .solve import Problem
from .claims import ClaimsFile, load_claims
from .judge_formulas import FormulaJudge
from .judge_values import ValueJudge
from .messages import Messages
from .verdicts import Result
from .worlds import Recomputations


# ---------------------------------------------------------------- the checker
class Checker:
    """Judges the claims of one claims file against one problem, in file order."""

    def __init__(self, problem: Problem, digits: int = 10, lang: str = "en"):
        self.problem = problem
        self.digits = digits
        self.lang = lang
        self.rc = Recomputations(problem, digits)
        self.results: list[Result] = []

    def speaking(self, lang: str) -> "Checker":
        """The same checker in another language: it shares every recomputation made so far, so
        checking again costs only the messages."""
        other = Checker.__new__(Checker)
        other.__dict__.update(self.__dict__)
        other.lang = lang
        other.results = []
        return other

    def check(self, claims: list) -> list[Result]:
        say = Messages(self.lang, self.digits, self.results)
        values = ValueJudge(self.rc, say, self.results)
        formulas = FormulaJudge(self.rc, say)
        spec = self.problem.spec
        steps = max([spec.steps, 1 if spec.update else 0]
                    + [c.query.max_step for c in claims if c.query is not None]
                    + [c.formula_query.max_step for c in claims if c.formula_query is not None])
        for claim in claims:
            try:
                if not self.problem.is_symbolic:
                    # the spec's steps run as the spec says: an error after a step is the spec's
                    self.rc.true_world().state(steps)
                if claim.of_error is not None:
                    r = Result(claim, "wrong", None, say.msg("of_error", err=claim.of_error),
                               claim.claimed_display(), "—", None)
                elif claim.is_value and not self.problem.is_symbolic:
                    r = values.judge_value(claim)
                else:
                    r = formulas.judge_formula(claim)
            except (DeriveError, ZeroDivisionError) as e:
                # the spec's own location (file, definition, "after step k, w = …") is kept
                what = e.line() if isinstance(e, DeriveError) else "division by zero"
                raise DeriveError(f"cannot evaluate: {what}", key=claim.where) from None
            self.results.append(r)
        return self.results


def check_file(path, digits: int = 10, lang: str = "en") -> tuple[ClaimsFile, list]:
    cf = load_claims(path)
    checker = Checker(cf.problem, digits, lang)
    try:
        results = checker.check(cf.claims)
    except DeriveError as e:
        raise e.located(file=cf.path) from None
    return cf, results

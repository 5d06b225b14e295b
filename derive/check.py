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
as soon as it is computed (inputs of the spec are never rounded).  Used only for n ≥ 2.

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
  correct carries that claim.  A claimed dA/dB replaces, in the recomputation, the part of dL/dB
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

import json
import random
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from itertools import combinations
from pathlib import Path

import sympy as sp

from . import engine
from . import expr as ex
from . import matrixform as mf
from . import numeric as nm
from . import texcheck
from .calculus import Calculus
from .errors import DeriveError, LimitError
from .files import STDIO, is_file, lexists, read_input
from .functions import relu, sigmoid, softplus
from .graph import shape_of, to_sympy
from .latexparse import parse_latex, unparse
from .printer import text as formula_text, tidy
from .rounding import fraction_text as _fraction_text
from .quantity import derivative_pairs, make_query
from .solve import Problem, load
from .spec import builtin_ids, problems_dir

VERDICTS = ("correct", "rounding", "truncated", "wrong")
DIAGNOSES = ("used-preactivation", "missing-activation-derivative", "sign-flip", "factor-2",
             "update-sign", "update-missing-weight", "dropped-path", "used-updated-weights",
             "carried-forward", "arithmetic")
WORK_DIGITS = 60                 # working precision of every recomputation
WORK_BITS = int(WORK_DIGITS * 3.33) + 64   # the what-if runs' ball precision
RANDOM_POINTS = 4                # random points for formula equivalence
EQUAL_TOLERANCE = Fraction(1, 10 ** 30)   # relative, for "equal" at 60 working digits
MAX_CLAIMS = 2000
MAX_CLAIMS_BYTES = 1_000_000
MAX_SUBSETS_CONSUMERS = 4        # branch entries with more consumers: only "one consumer kept"
CLAIM_KEYS = {"of", "value", "expr", "latex", "note"}
ACTIVATIONS = {"sigmoid": sigmoid, "tanh": sp.tanh, "relu": relu, "softplus": softplus}
_SEVERITY = {"correct": 0, "rounding": 1, "truncated": 2, "wrong": 3}


# ---------------------------------------------------------------- stated numbers
@dataclass(frozen=True)
class Stated:
    """A number as the claim writes it: exact value, and the place of its last stated digit."""
    text: str
    value: Fraction
    exp: int            # the last stated digit is worth 10**exp
    sig: int            # significant digits stated

    @property
    def quantum(self) -> Fraction:
        return Fraction(10) ** self.exp


_NUMBER = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?", re.ASCII)


def parse_stated(raw) -> Stated:
    """A claimed number: a string (digits kept as written), an int, or a float (its repr)."""
    if isinstance(raw, bool):
        raise DeriveError(f"expected a number, got the boolean {str(raw).lower()}")
    if isinstance(raw, int):
        text = str(raw)
    elif isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise DeriveError(f"{raw} is not a finite number")
        text = repr(raw)
    elif isinstance(raw, str):
        text = ex.ascii_numerals(raw.strip()).replace("\u2009", "").replace(" ", "")
        if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?", text):   # thousands separators: 300,000
            text = text.replace(",", "")
    else:
        raise DeriveError(f"expected a number (a string such as \"0.7514\"), got {type(raw).__name__}")
    m = _NUMBER.fullmatch(text)
    if not m or not (m.group(2) or m.group(3)) or len(text) > 400:
        raise DeriveError(f"{str(raw)[:60]!r} is not a number")
    sign, ip, fp, e = m.groups()
    e10 = int(e) if e else 0
    if abs(e10) > 1000:
        raise LimitError(f"exponent of {text} is outside ±1000")
    try:
        value = Fraction(Decimal(text))
    except (InvalidOperation, ValueError):
        raise DeriveError(f"{text!r} is not a number") from None
    digits = (ip or "") + (fp or "")
    stripped = digits.lstrip("0")
    if fp is not None:
        exp = -len(fp) + e10
        sig = max(1, len(stripped))
    else:
        core = ip.lstrip("0")
        zeros = len(core) - len(core.rstrip("0")) if core else 0
        exp = zeros + e10
        sig = max(1, len(core.rstrip("0")))
    return Stated(text, value, exp, sig)


def _round_to(x: Fraction, q: Fraction) -> Fraction:
    """x rounded to a multiple of q, half away from zero."""
    n = abs(x) / q
    k = int(n)
    if n - k >= Fraction(1, 2):
        k += 1
    return (k if x >= 0 else -k) * q


def _trunc_to(x: Fraction, q: Fraction) -> Fraction:
    k = int(abs(x) / q)
    return (k if x >= 0 else -k) * q


def is_correct(s: Stated, t: Fraction) -> bool:
    return abs(s.value - t) <= s.quantum / 2


def is_last_unit(s: Stated, t: Fraction) -> bool:
    return s.sig >= 6 and abs(s.value - t) <= 3 * s.quantum / 2


def is_truncated(s: Stated, t: Fraction) -> bool:
    return s.value == _trunc_to(t, s.quantum)


def reproduces(s: Stated, alt: Fraction) -> bool:
    """Does a recomputed value explain the stated number (rounded, cut off, or last unit)?"""
    return is_correct(s, alt) or is_truncated(s, alt) or is_last_unit(s, alt)


def text_at(s: Stated, t: Fraction) -> str:
    """t written to the stated number's last digit (or to its significant digits if that is 0)."""
    if t == 0:
        return "0"
    r = _round_to(t, s.quantum)
    if r == 0 or (s.exp > 0 and abs(t) < s.quantum):
        return nm.format_decimal(nm.round_fraction(t, s.sig), s.sig)
    if s.exp < 0:
        # r is a whole multiple of 10^exp: its digits at exactly that exponent, built exactly
        # (a Decimal division or quantize would round to the context's 28 digits, or fail)
        return _plain(nm._digits_decimal(int(r * 10 ** -s.exp), s.exp))
    return str(int(r))


def _plain(d: Decimal) -> str:
    text = format(d, "f")
    return "0" if text in ("-0", "-0.0") else text


def sig_text(x: Fraction, n: int) -> str:
    return nm.format_decimal(nm.round_fraction(x, n), n)


def shown_true(t: Fraction, num, digits: int) -> str:
    """The true value for a message: the engine's text, with more digits where rounding to
    `digits` would hide how it differs (0.99999999997710 is not shown as 1.000000000)."""
    if num is not None and num.is_exact:
        return num.text
    if t == 0:
        return "0"
    if nm.is_short_exact(t, digits):
        return nm.show(t, digits, exact=t).text
    for n in range(digits, 41):
        if nm.round_fraction(t, n) == _trunc_sig(t, n):
            return sig_text(t, n)
    return sig_text(t, 40)


def _trunc_sig(t: Fraction, n: int) -> Decimal:
    d = nm.round_fraction(t, n + 30)
    with_ctx = Decimal(d)
    sign, digs, exp = with_ctx.as_tuple()
    keep = digs[:n]
    return Decimal((sign, keep, exp + len(digs) - len(keep))) if len(digs) > n else with_ctx


def _frac(x) -> Fraction | None:
    if x is None:
        return None
    if isinstance(x, Fraction):
        return x
    return nm.mpf_to_fraction(x)


def _close(a: Fraction, b: Fraction, scale: Fraction = Fraction(0)) -> bool:
    return abs(a - b) <= EQUAL_TOLERANCE * max(abs(a), abs(b), scale, Fraction(1, 10 ** 40))


# ---------------------------------------------------------------- claims
@dataclass
class Claim:
    index: int                  # 1-based, file order
    of: str
    kind: str                   # value | expr | latex
    raw: object                 # as written
    note: str
    where: str                  # 'claim[3] (of = "dE/dw5")'
    of_tree: object = None
    query: object = None        # Query of `of`, or None with of_error
    of_error: str | None = None
    shape: tuple = ()
    stated: tuple | None = None  # Stated per entry, row-major (value claims)
    tree: object = None         # formula claims
    reading: str | None = None  # the formula in the expression language
    formula_query: object = None
    formula_error: str | None = None
    constant: bool = False
    const_sig: int | None = None

    @property
    def is_value(self) -> bool:
        return self.kind == "value" or self.constant

    def claimed_display(self):
        if self.kind == "value":
            return _nest([s.text for s in self.stated], self.shape, self.flat)
        return str(self.raw)

    @property
    def flat(self) -> bool:
        return isinstance(self.raw, list) and not any(isinstance(r, list) for r in self.raw)


@dataclass
class ClaimsFile:
    path: str
    problem: Problem
    claims: list


def _nest(items: list, shape: tuple, flat: bool = True):
    if shape == ():
        return items[0]
    r, c = shape
    if c == 1 and flat:
        return list(items)
    return [list(items[i * c:(i + 1) * c]) for i in range(r)]


def _resolve_spec(spec_ref, claims_path: Path, display: str) -> Problem:
    if not isinstance(spec_ref, str) or not spec_ref.strip():
        raise DeriveError("required: spec = \"a spec path or a built-in id\"", file=display, key="spec")
    if spec_ref.strip() == "-":
        raise DeriveError("spec cannot be standard input (-): give a spec path or a built-in id",
                          file=display, key="spec")
    candidate = claims_path.parent / spec_ref
    try:
        if is_file(candidate):
            return load(str(candidate))
        if spec_ref in builtin_ids():
            return load(spec_ref)
    except DeriveError as e:
        raise e.located(file=display, key="spec") from None
    raise DeriveError(f"no such spec file {str(candidate)!r} and no built-in problem {spec_ref!r}",
                      file=display, key="spec")


def _unknown_names(tree, graph) -> list[str]:
    """Unknown names of a quantity tree; `dE/dw9` (read as a division) reports w9."""
    out: list[str] = []

    def known(n):
        return n in graph.quantities

    stack = [tree]   # preorder, left to right, without recursion (a sum may have 1 000 terms)
    while stack:
        node = stack.pop()
        if isinstance(node, ex.Bin) and node.op == "/" and isinstance(node.left, ex.Name) \
                and isinstance(node.right, ex.Name) and node.left.id.startswith("d") \
                and node.right.id.startswith("d") and not (known(node.left.id) and known(node.right.id)):
            for n in (node.left.id[1:], node.right.id[1:]):
                if not known(n) and n not in out:
                    out.append(n)
            if out:
                continue
        if isinstance(node, ex.Name):
            if not known(node.id) and node.id not in out:
                out.append(node.id)
        elif isinstance(node, ex.AtStep):
            if not known(node.name) and node.name not in out:
                out.append(node.name)
        elif isinstance(node, ex.Deriv):
            for n in (node.of, node.wrt):
                if not known(n) and n not in out:
                    out.append(n)
        else:
            stack.extend(reversed(ex.children(node)))
    return out


def _nodes(tree):
    """Every node of a tree, without recursion."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(ex.children(node))


def _max_step(tree) -> int:
    return max((n.step for n in _nodes(tree) if isinstance(n, (ex.AtStep, ex.Deriv))), default=0)


def _literal_sig(tree) -> int | None:
    """Most significant digits among the non-integer decimal literals of a tree (None if none)."""
    return max((parse_stated(n.text).sig for n in _nodes(tree)
                if isinstance(n, ex.Num) and n.value.denominator != 1 and "." in n.text), default=None)


def load_claims(path) -> ClaimsFile:
    """Read and validate a claims file (`-`: standard input); DeriveError (file, claim) for anything
    wrong."""
    p = Path(path)
    display = str(path)
    builtin = problems_dir() / f"{path}.claims.toml"
    if str(path) == STDIO:
        p, display = Path("."), "<stdin>"       # a spec path in it is relative to the working directory
        display, text = read_input(STDIO, limit=MAX_CLAIMS_BYTES, display=display, stdin=True)
    else:
        if "/" not in str(path) and not lexists(p) and is_file(builtin):
            # a built-in problem id: its transcribed claims (derive check house-price)
            p, display = Path(str(builtin)), f"{path} (built-in claims)"
        display, text = read_input(p, limit=MAX_CLAIMS_BYTES, display=display)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DeriveError(f"not valid TOML: {e}", file=display) from None
    for k in doc:
        if k not in ("spec", "claim"):
            raise DeriveError("unknown key (allowed: spec, claim)", file=display, key=k)
    problem = _resolve_spec(doc.get("spec"), p, display)
    raw_claims = doc.get("claim", [])
    if not isinstance(raw_claims, list) or not all(isinstance(c, dict) for c in raw_claims):
        raise DeriveError("expected [[claim]] tables", file=display, key="claim")
    if not raw_claims:
        raise DeriveError("no [[claim]] in the file", file=display)
    if len(raw_claims) > MAX_CLAIMS:
        raise LimitError(f"more than {MAX_CLAIMS} claims", file=display)
    claims = [_make_claim(i, c, problem, display) for i, c in enumerate(raw_claims, 1)]
    return ClaimsFile(display, problem, claims)


def _make_claim(index: int, c: dict, problem: Problem, display: str) -> Claim:
    graph = problem.graph
    of = c.get("of")
    shown = of if not isinstance(of, str) or len(of) <= 60 else of[:59] + "…"   # a message stays readable
    where = f'claim[{index}]' + (f' (of = "{shown}")' if isinstance(of, str) else "")

    def fail(what):
        return DeriveError(what, file=display, key=where)

    for k in c:
        if k not in CLAIM_KEYS:
            raise fail(f"unknown key {k!r} (allowed: {', '.join(sorted(CLAIM_KEYS))})")
    if not isinstance(of, str) or not of.strip():
        raise fail("required: of = \"the quantity claimed\" (NAME, dA/dB, NAME@k or an expression)")
    given = [k for k in ("value", "expr", "latex") if k in c]
    if len(given) != 1:
        raise fail("a claim needs exactly one of value, expr, latex"
                   + (f" (it has {', '.join(given)})" if given else ""))
    kind = given[0]
    note = c.get("note", "")
    if not isinstance(note, str):
        raise fail("note must be a string")
    try:
        texcheck.check_text(note)
    except DeriveError as e:
        raise fail(f"note: {e.what}") from None
    claim = Claim(index, of.strip(), kind, c[kind], note, where)

    # the quantity
    try:
        claim.of_tree = ex.parse_quantity(claim.of, lambda n: n in graph.quantities)
    except DeriveError as e:
        raise fail(f"cannot read of: {e.what}" + (f" (column {e.column})" if e.column else "")) from None
    unknown = _unknown_names(claim.of_tree, graph)
    if unknown:
        raise fail(f"unknown name {unknown[0]!r}")
    try:
        claim.query = make_query(claim.of, graph)
        claim.shape = claim.query.shape
    except LimitError as e:
        raise fail(e.what) from None
    except DeriveError as e:
        claim.of_error = e.what

    if kind == "value":
        if problem.is_symbolic:
            raise fail("this spec is symbolic (it has no numbers): only expr and latex claims can be checked")
        claim.stated = _stated_entries(claim, fail)
    else:
        text = c[kind]
        if not isinstance(text, str) or not text.strip():
            raise fail(f"{kind} must be a non-empty string")
        try:
            if kind == "expr":
                claim.tree = ex.parse_quantity(text, lambda n: n in graph.quantities)
            else:
                claim.tree = parse_latex(text, problem.spec, graph)
        except LimitError as e:
            raise fail(f"{kind}: {e.what}") from None
        except DeriveError as e:
            col = f" (column {e.column})" if e.column else ""
            raise fail(f"cannot read {kind}: {e.what}{col}") from None
        unknown = _unknown_names(claim.tree, graph)
        if unknown:
            raise fail(f"unknown name {unknown[0]!r} in {kind}")
        claim.reading = text.strip() if kind == "expr" else unparse(claim.tree)
        claim.constant = not ex.names_in(claim.tree)
        if claim.constant:
            claim.const_sig = _literal_sig(claim.tree)
        try:
            claim.formula_query = make_query(claim.reading, graph)
        except LimitError as e:
            raise fail(f"{kind}: {e.what}") from None
        except DeriveError as e:
            claim.formula_error = e.what
    return claim


def _stated_entries(claim: Claim, fail) -> tuple:
    raw = claim.raw
    if claim.of_error is not None:
        items = raw if isinstance(raw, list) else [raw]
        flat = [x for r in items for x in (r if isinstance(r, list) else [r])]
        try:
            return tuple(parse_stated(x) for x in flat)
        except DeriveError as e:
            raise fail(f"value: {e.what}") from None
    shape = claim.shape
    try:
        if not isinstance(raw, list):
            if shape != ():
                raise fail(f"value: {claim.of} is a {shape[0]}×{shape[1]} matrix; give a list of rows")
            return (parse_stated(raw),)
        if shape == ():
            raise fail("value: a list was given but the quantity is a scalar")
        r, c = shape
        if raw and all(isinstance(x, list) for x in raw):
            if len(raw) != r or any(len(row) != c for row in raw):
                got = f"{len(raw)}×{len(raw[0]) if raw and raw[0] else 0}"
                raise fail(f"value: {got} given, but {claim.of} is {r}×{c}")
            return tuple(parse_stated(x) for row in raw for x in row)
        if any(isinstance(x, list) for x in raw):
            raise fail("value: mixes numbers and lists; a matrix is a list of rows")
        if (c == 1 and len(raw) == r) or (r == 1 and len(raw) == c):
            return tuple(parse_stated(x) for x in raw)
        raise fail(f"value: {len(raw)} numbers given, but {claim.of} is {r}×{c}")
    except DeriveError as e:
        if e.key:
            raise
        raise fail(f"value: {e.what}") from None


# ---------------------------------------------------------------- worlds: the network recomputed
def _round_sig(c, x, n: int):
    """x rounded to n significant digits, half away from zero (mpmath context c)."""
    if x == 0:
        return x
    ax = abs(x)
    e = int(c.floor(c.log10(ax)))
    q = c.mpf(10) ** (e - n + 1)
    m = c.floor(ax / q + c.mpf(1) / 2)
    if m >= c.mpf(10) ** n:
        m = c.floor(m / 10 + c.mpf(1) / 2)
        q *= 10
    return m * q if x > 0 else -m * q


class World:
    """One what-if run of the engine (`engine.trajectory` with an `engine.WhatIf`: rounding, an
    author's values or derivatives, a catalogued mistake), read entry by entry — values and
    derivatives ∂a/∂w at each step — as mpmath numbers at WORK_DIGITS.  Steps are computed as they
    are asked for, so a run that fails at step 2 still answers for steps 0 and 1."""

    def __init__(self, graph, program, inputs: dict, lr: Fraction | None, what_if: engine.WhatIf):
        self.graph, self.program = graph, program
        self.mp = nm.MpContext(WORK_DIGITS)
        with engine.precision(WORK_BITS) as ctx:
            self.ctx = ctx
            arrays = {name: ctx.from_fractions(program.shapes[name], qs) for name, qs in inputs.items()}
        self._steps = engine.trajectory(program, ctx, what_if, arrays, lr)
        self.states: list = []
        self._failed = None
        self._values: dict = {}

    def state(self, k: int):
        if k < len(self.states):
            return self.states[k]
        if self._failed is not None:
            raise self._failed
        try:
            with engine.precision(WORK_BITS):
                while len(self.states) <= k:
                    self.states.append(next(self._steps))
        except (DeriveError, ZeroDivisionError, ValueError, OverflowError) as e:
            self._failed = e if isinstance(e, DeriveError) else DeriveError(str(e) or type(e).__name__)
            raise self._failed from None
        return self.states[k]

    def _mpf(self, x):
        if isinstance(x, int):
            return self.mp.ctx.mpf(x)
        m, e = x.mid().man_exp()
        return self.mp.ctx.mpf((int(m), int(e)))

    def values(self, k: int) -> dict:
        """Entry -> value at step k, for every entry of the graph."""
        if k not in self._values:
            st = self.state(k)
            out = {}
            for q in self.graph.quantities.values():
                a = st.values.get(q.name)
                if a is not None:
                    for e, x in zip(q.entries, self.ctx.entries(a)):
                        out[e] = self._mpf(x)
            self._values[k] = out
        return self._values[k]

    def deriv(self, k: int, a, w):
        """∂a/∂w at step k (a, w entries)."""
        st = self.state(k)
        try:
            with engine.precision(WORK_BITS):
                adj = engine.entry_adjoints(self.program, self.ctx, st, _key(a), k)
        except (DeriveError, ZeroDivisionError, ValueError, OverflowError) as e:
            raise e if isinstance(e, DeriveError) else DeriveError(str(e) or type(e).__name__) from None
        return self._mpf(adj.get(_key(w), 0))

    def eval(self, query) -> list:
        env = {}
        for sym, b in query.placeholders:
            if b[0] == "value":
                env[sym] = self.values(b[2])[b[1]]
            else:
                _, a, w, k, _g = b
                env[sym] = self.deriv(k, a, w)
        return [nm.evaluate(e, env, self.mp) for e in query.entries]


def _key(e) -> tuple:
    """An entry of the per-scalar graph as the engine names it: (quantity, row-major index)."""
    return (e.quantity, 0 if not e.index else e.index[0] * e.qshape[1] + e.index[1])


# ---------------------------------------------------------------- hypotheses
@dataclass(frozen=True)
class Hypothesis:
    kind: str                   # a diagnosis
    key: str                    # unique id
    text: tuple                 # (English, Chinese) description
    world: object = None        # the engine.WhatIf of its recomputation
    transform: object = None    # T entries -> alt entries (sign-flip, factor-2)
    term_of: str | None = None  # sign-flip of one term of this quantity's definition
    term: int = -1


def _activations(graph) -> list:
    """[(quantity, fn, [(entry, argument)], constant)]: σ/tanh/relu/softplus layers, and linear
    activations c·(… @ …) (constant c, as in h = 2*(W @ x))."""
    out = []
    for q in graph.quantities.values():
        if q.kind != "forward":
            continue
        t = q.tree
        if isinstance(t, ex.Call) and t.fn in ACTIVATIONS:
            items = [(e, loc.args[0]) for e, loc in zip(q.entries, q.local)
                     if isinstance(loc, ACTIVATIONS[t.fn]) or getattr(loc, "func", None) is ACTIVATIONS[t.fn]]
            if items:
                out.append((q.name, t.fn, items, None))
        elif isinstance(t, ex.Bin) and t.op == "*" and q.name != graph.loss:
            for const, inner in ((t.left, t.right), (t.right, t.left)):
                cv = mf._constant(const)
                if cv is not None and cv not in (0, 1) and _has_matmul(inner):
                    out.append((q.name, "linear", [(e, None) for e in q.entries], cv))
                    break
    return out


def _has_matmul(t) -> bool:
    return any(isinstance(n, ex.Bin) and n.op == "@" for n in _nodes(t))


def _with_derivatives(graph, items) -> bool:
    return any(graph.uses.get(e) for e, _arg in items)


def _preact_hook(graph, groups, mode: str):
    """Local derivatives of σ or tanh layers with the output replaced: 'pre' → the
    pre-activation (σ(z)(1 − σ(z)) → z(1 − z)), 'out' → f of the output (σ(y)(1 − σ(y)))."""
    names = tuple((name, mode) for name, fn, items, _c in groups
                  if fn in ("sigmoid", "tanh") and _with_derivatives(graph, items))
    return engine.WhatIf(activation=names) if names else None


def _drop_hook(graph, groups):
    """The factor f'(·) of the activations dropped: ∂y/∂u becomes ∂(pre-activation)/∂u."""
    names = tuple((name, "drop") for name, _fn, items, _c in groups if _with_derivatives(graph, items))
    return engine.WhatIf(activation=names) if names else None


def _zero_hook(pairs):
    """The local derivatives ∂c/∂e of the (consumer c, entry e) pairs taken as 0."""
    return engine.WhatIf(dropped=frozenset((_key(c), _key(e)) for c, e in pairs))


def _hypotheses(problem: Problem) -> list:
    graph = problem.graph
    spec = problem.spec
    hyps: list[Hypothesis] = []
    acts = _activations(graph)

    def act_label(groups):
        names = ", ".join(g[0] for g in groups)
        return names

    groups = [[a] for a in acts] + ([acts] if len(acts) > 1 else [])
    for g in groups:
        label = act_label(g)
        for mode in ("pre", "out"):
            hook = _preact_hook(graph, g, mode)
            if hook is None:
                continue
            if mode == "pre":
                text = (f"f'(u) of {label} evaluated at the pre-activation u (u(1 − u) for σ(u)(1 − σ(u)))",
                        f"{label} 的激活函数导数在预激活值 u 处计算(把 σ(u)(1 − σ(u)) 写成 u(1 − u))")
            else:
                text = (f"f' of {label} evaluated at the output y instead of the pre-activation (σ(y)(1 − σ(y)))",
                        f"{label} 的激活函数导数在输出 y 处计算(σ(y)(1 − σ(y)))")
            hyps.append(Hypothesis("used-preactivation", f"pre-{mode}-{label}", text,
                                   hook))
    for g in groups:
        hook = _drop_hook(graph, g)
        if hook is None:
            continue
        label = act_label(g)
        hyps.append(Hypothesis("missing-activation-derivative", f"drop-{label}",
                               (f"the factor f'(·) of {label} left out of the chain",
                                f"链式法则中漏掉了 {label} 的激活函数导数 f'(·)"),
                               hook))
    hyps.append(Hypothesis("sign-flip", "neg", ("the negative of the true value (e.g. t − o for o − t)",
                                                 "符号相反(例如把 o − t 写成 t − o)"),
                           transform=lambda t: [-x for x in t]))
    for q in graph.quantities.values():
        if q.kind == "forward" and q.is_scalar and isinstance(q.local[0], sp.Add):
            for i, term in enumerate(q.local[0].args):
                hyps.append(Hypothesis("sign-flip", f"term-{q.name}-{i}",
                                       (f"the term {term} of {q.name} with the wrong sign",
                                        f"{q.name} 中的项 {term} 符号写反"),
                                       term_of=q.name, term=i))
    hyps.append(Hypothesis("factor-2", "double", ("twice the true value (e.g. the ½ of ½(t − o)² dropped, or "
                                                  "counted twice)", "真值的 2 倍(例如漏掉 ½(t − o)² 的 ½)"),
                           transform=lambda t: [2 * x for x in t]))
    hyps.append(Hypothesis("factor-2", "half", ("half the true value (e.g. ½ applied twice, or a factor 2 "
                                                "missing)", "真值的一半(例如 ½ 用了两次,或漏掉因子 2)"),
                           transform=lambda t: [x / 2 for x in t]))
    if spec.update:
        hyps.append(Hypothesis("update-sign", "plus", ("the update p + η·∂L/∂p instead of p − η·∂L/∂p",
                                                      "更新写成 p + η·∂L/∂p(应为 p − η·∂L/∂p)"),
                               engine.WhatIf(update="ascent")))
        hyps.append(Hypothesis("update-missing-weight", "step-only",
                               ("η·∂L/∂p (the step alone) given as the new parameter; the 'p −' is missing",
                                "把 η·∂L/∂p 当成了新参数,漏掉了 “p −”"),
                               engine.WhatIf(update="step")))
        hyps.append(Hypothesis("update-missing-weight", "minus-step-only",
                               ("−η·∂L/∂p given as the new parameter; the p is missing",
                                "把 −η·∂L/∂p 当成了新参数,漏掉了 p"),
                               engine.WhatIf(update="minus-step")))
    # dropped paths: a branch's adjoint from only some of its consumers
    calc = problem.calculus
    by_quantity: dict = {}
    for e in graph.order:
        q = graph.quantities[e.quantity]
        if q.kind == "data" or e == graph.loss_entry:
            continue
        cons = calc.consumers(e)
        if len(cons) < 2:
            continue
        subsets = []
        if len(cons) <= MAX_SUBSETS_CONSUMERS:
            for r in range(1, len(cons)):
                subsets += list(combinations(cons, r))
        else:
            subsets = [(c,) for c in cons]
        for kept in subsets:
            dropped = [c for c in cons if c not in kept]
            pairs = tuple((c, e) for c in dropped)
            hyps.append(Hypothesis(
                "dropped-path", f"drop-{e.name}-{'+'.join(c.name for c in kept)}",
                (f"∂L/∂{e.name} summed over the path(s) through {', '.join(c.name for c in kept)} only "
                 f"(through {', '.join(c.name for c in dropped)} left out)",
                 f"∂L/∂{e.name} 只对经过 {', '.join(c.name for c in kept)} 的路径求和"
                 f"(漏掉了经过 {', '.join(c.name for c in dropped)} 的路径)"),
                _zero_hook(pairs)))
        for c in cons:
            by_quantity.setdefault((e.quantity, c.quantity), []).append((c, e))
    for (x, y), pairs in by_quantity.items():
        entries = graph.quantities[x].entries
        if len(entries) > 1 or any(len(calc.consumers(e)) > 1 for e in entries):
            others = {c.quantity for e in entries for c in calc.consumers(e)} - {y}
            if not others:
                continue
            hyps.append(Hypothesis(
                "dropped-path", f"dropq-{x}-{y}",
                (f"∂L/∂{x} without the path(s) through {y}", f"∂L/∂{x} 漏掉了经过 {y} 的路径"),
                _zero_hook(tuple(pairs))))
    if spec.update and graph.parameters:
        hyps.append(Hypothesis("used-updated-weights", "updated",
                               ("backpropagated through parameters already updated in this step "
                                "(hidden deltas from the new weights)",
                                "反向传播时用了本步已经更新过的参数(用新权重计算隐藏层的误差项)"),
                               engine.WhatIf(updated_weights=True)))
    return hyps


# ---------------------------------------------------------------- results
@dataclass
class Result:
    claim: Claim
    verdict: str
    diagnosis: str | None
    message: str
    claimed: object              # as written (string, nested list, or formula)
    true: object                 # value claims: true value to the claim's digits; formulas: the correct formula
    true_digits: object          # the true value to --digits (None in symbolic specs)
    carries: tuple = ()          # claim indices whose error this one carries
    also: tuple = ()             # further diagnoses that reproduce the claim
    method: str | None = None    # for formulas: "sympy" | "numeric"
    entries: tuple = ()          # per-entry verdicts (matrix value claims)
    hypothesis: str | None = None  # description of the diagnosis

    def to_json(self) -> dict:
        c = self.claim
        return {
            "index": c.index, "of": c.of, "kind": c.kind, "claimed": self.claimed, "true": self.true,
            "true_digits": self.true_digits, "verdict": self.verdict, "diagnosis": self.diagnosis,
            "message": self.message, "carries": list(self.carries), "note": c.note,
            "reading": c.reading, "also": list(self.also),
        }


MESSAGES = {
    "en": {
        "correct_value": "equals the true value {td} rounded to the stated digits",
        "correct_exact": "exactly the true value {td}",
        "correct_formula": "equivalent to the true formula{how}",
        "how_sympy": " (SymPy confirms it symbolically)",
        "how_numeric": " (equal at the given values and at {k} random points, {d} digits)",
        "rounding_unit": "one unit off in the last of {n} stated digits: the true value {td} rounds to {tr}",
        "rounding_world": "the true value {td} rounds to {tr}, but working with intermediate values rounded "
                          "to {n} significant digits gives {alt}: a rounding effect",
        "rounding_const": "the true value is {td}; the numbers in this expression are the intermediate values "
                          "rounded to {n} significant digits",
        "truncated": "the true value {td} cut off at the stated digits; rounded it is {tr}",
        "wrong_value": "the true value is {tr} ({td})",
        "wrong_exact": "the true value is {td}",
        "const_value": "the expression equals {val}; ",
        "entries_wrong": "{n} of {m} entries wrong ({which})",
        "entries_all_wrong": "all {m} entries wrong",
        "entries_all_truncated": "all {m} entries cut off (not rounded) at the stated digits",
        "entries_all_rounding": "all {m} entries off by rounding",
        "entries_truncated": "{which} cut off (not rounded) at the stated digits",
        "entries_rounding": "{which} off by rounding",
        "true_matrix": "the true value is {tr}",
        "wrong_formula": "not equivalent to the true formula {tf}",
        "given_only": "; equal at this problem's values but not in general (it depends differently on {names})",
        "of_error": "the claimed quantity is not defined: {err}",
        "formula_error": "the formula is undefined: {err}",
        "shape_mismatch": "the formula is {fs}, but {of} is {qs}",
        "sum_note": " (the sum of its entries equals {of})",
        "because": "; explained by {diag}: {what}",
        "carried": "computed correctly from the earlier claim(s) {claims}",
        "restated": "restates the earlier claim {claims}",
        "own_formula": " with the author's formula of claim {claim}",
        "also": " (also consistent with: {others})",
        "entries": "; entries {which}",
        "arithmetic": "; no single mistake tested reproduces it (arithmetic)",
        "scalar": "a scalar", "matrix": "a {r}×{c} matrix",
    },
    "zh": {
        "correct_value": "等于真值 {td} 按所写位数舍入的结果",
        "correct_exact": "恰好等于真值 {td}",
        "correct_formula": "与正确公式等价{how}",
        "how_sympy": "(SymPy 符号化验证)",
        "how_numeric": "(在题目给定值和 {k} 个随机点上以 {d} 位精度相等)",
        "rounding_unit": "所写 {n} 位有效数字的最后一位差一:真值 {td} 舍入为 {tr}",
        "rounding_world": "真值 {td} 舍入为 {tr},但用舍入到 {n} 位有效数字的中间值计算得到 {alt}:舍入误差",
        "rounding_const": "真值为 {td};式中的数是舍入到 {n} 位有效数字的中间值",
        "truncated": "真值 {td} 在所写位数处被截断而非舍入;舍入应为 {tr}",
        "wrong_value": "真值为 {tr}({td})",
        "wrong_exact": "真值为 {td}",
        "const_value": "该式等于 {val};",
        "entries_wrong": "{m} 个分量中 {n} 个错误({which})",
        "entries_all_wrong": "全部 {m} 个分量都错误",
        "entries_all_truncated": "全部 {m} 个分量都在所写位数处被截断而非舍入",
        "entries_all_rounding": "全部 {m} 个分量都为舍入误差",
        "entries_truncated": "{which} 在所写位数处被截断而非舍入",
        "entries_rounding": "{which} 为舍入误差",
        "true_matrix": "真值为 {tr}",
        "wrong_formula": "与正确公式 {tf} 不等价",
        "given_only": ";在本题的数值下相等,但一般不成立(与 {names} 的关系不同)",
        "of_error": "所声称的量没有定义:{err}",
        "formula_error": "公式无意义:{err}",
        "shape_mismatch": "公式是{fs},而 {of} 是{qs}",
        "sum_note": "(其各分量之和等于 {of})",
        "because": ";原因是 {diag}:{what}",
        "carried": "用前面的声明 {claims} 的值计算是正确的",
        "restated": "重复了前面的声明 {claims}",
        "own_formula": ",并用了声明 {claim} 中作者自己的公式",
        "also": "(也符合:{others})",
        "entries": ";分量 {which}",
        "arithmetic": ";所检验的单一错误都不能重现它(计算错误)",
        "scalar": "标量", "matrix": "{r}×{c} 矩阵",
    },
}


def _shape_words(shape, lang) -> str:
    m = MESSAGES[lang]
    return m["scalar"] if shape == () else m["matrix"].format(r=shape[0], c=shape[1])


# ---------------------------------------------------------------- the checker
class Checker:
    """Judges the claims of one claims file against one problem, in file order."""

    def __init__(self, problem: Problem, digits: int = 10, lang: str = "en"):
        self.problem = problem
        self.graph = problem.graph
        self.spec = problem.spec
        self.digits = digits
        self.lang = lang
        self.steps = problem.spec.steps
        self._program = None
        self._worlds: dict = {}
        self._hyps = None
        self.results: list[Result] = []
        self._formula_cache: dict = {}

    def speaking(self, lang: str) -> "Checker":
        """The same checker in another language: it shares every recomputation (worlds,
        hypotheses, formula verdicts) made so far, so checking again costs only the messages."""
        other = Checker.__new__(Checker)
        other.__dict__.update(self.__dict__)
        other.lang = lang
        other.results = []
        return other

    # -- infrastructure
    def msg(self, key: str, **kw) -> str:
        return MESSAGES[self.lang][key].format(**kw)

    @property
    def hypotheses(self) -> list:
        if self._hyps is None:
            self._hyps = _hypotheses(self.problem)
        return self._hyps

    @property
    def program(self) -> engine.Program:
        """The spec compiled for the engine (a symbolic spec too: its runs are given values)."""
        if self._program is None:
            self._program = self.problem.program if not self.problem.is_symbolic else \
                engine.compile_spec(self.spec, symbolic=True)
        return self._program

    def inputs_at(self, point) -> dict:
        """Input values (name -> Fractions, row-major): the spec's, with the entries of `point`
        (a frozenset of entries, k) random."""
        spec = self.spec
        values = {n: list(v.entries) for table in (spec.data, spec.parameters) for n, v in table.items()}
        randomized, k = point if point is not None else (frozenset(), 0)
        for q in self.graph.quantities.values():
            if q.kind == "forward":
                continue
            vals = values.setdefault(q.name, [None] * len(q.entries))
            for i, e in enumerate(q.entries):
                if e in randomized or vals[i] is None:
                    vals[i] = _random_value(k, e.name)
        return values

    def world(self, key, point=None, what_if: engine.WhatIf | None = None):
        """A cached World at the spec's values (point None) or at a random point."""
        full = (key, point)
        if full not in self._worlds:
            lr = self.spec.learning_rate
            if lr is None:
                lr = abs(_random_value(point[1] if point else 0, "learning rate"))
            self._worlds[full] = World(self.graph, self.program, self.inputs_at(point), lr,
                                       what_if or engine.WhatIf())
        return self._worlds[full]

    def hyp_world(self, hyp: Hypothesis, point=None):
        return self.world(("hyp", hyp.key), point, hyp.world)

    def true_world(self, point=None):
        return self.world(("true",), point)

    def truth(self, query) -> tuple[list, list]:
        """(true values as Fractions, Numbers at --digits) of a query at the spec's values: the
        engine's exact values where rational, else the true world's at WORK_DIGITS; the Numbers
        certified by the engine."""
        numbers = nm.query_numbers(self.graph, self.program, query, self.digits, self.problem.runs)
        approx = self.true_world().eval(query) if any(n.exact is None for n in numbers) else ()
        values = [n.exact if n.exact is not None else _frac(a)
                  for n, a in zip(numbers, approx or [None] * len(numbers))]
        return values, numbers

    def hyp_alt(self, hyp: Hypothesis, query, point=None, truth=None) -> list | None:
        """The claimed quantity recomputed under a hypothesis (Fractions), or None if it fails."""
        try:
            if hyp.transform is not None:
                t = truth if truth is not None else [_frac(x) for x in self.true_world(point).eval(query)]
                return hyp.transform(t)
            if hyp.term_of is not None:
                if not (isinstance(query.tree, ex.Name) and query.tree.id == hyp.term_of):
                    return None
                q = self.graph.quantities[hyp.term_of]
                w = self.true_world(point)
                term = nm.evaluate(q.local[0].args[hyp.term], w.values(0), w.mp)
                t = truth if truth is not None else [_frac(x) for x in w.eval(query)]
                return [t[0] - 2 * _frac(term)]
            return [_frac(x) for x in self.hyp_world(hyp, point).eval(query)]
        except (DeriveError, ZeroDivisionError, ValueError, OverflowError, KeyError):
            return None

    # -- main loop
    def check(self, claims: list) -> list[Result]:
        if claims:
            self.steps = max([self.steps, 1 if self.spec.update else 0]
                             + [c.query.max_step for c in claims if c.query is not None]
                             + [c.formula_query.max_step for c in claims if c.formula_query is not None])
        for claim in claims:
            try:
                if claim.of_error is not None:
                    r = self._undefined(claim)
                elif claim.is_value and not self.problem.is_symbolic:
                    r = self.judge_value(claim)
                else:
                    r = self.judge_formula(claim)
            except (DeriveError, ZeroDivisionError) as e:
                # the spec's own location (file, definition, "after step k, w = …") is kept
                what = e.line() if isinstance(e, DeriveError) else "division by zero"
                raise DeriveError(f"cannot evaluate: {what}", key=claim.where) from None
            self.results.append(r)
        return self.results

    def _undefined(self, claim: Claim) -> Result:
        return Result(claim, "wrong", None, self.msg("of_error", err=claim.of_error),
                      claim.claimed_display(), "—", None)

    # -- values
    def stated_of(self, claim: Claim) -> list:
        """Stated numbers; for a constant formula, its exact value as a Stated of its literal digits."""
        if claim.kind == "value":
            return list(claim.stated)
        vals = self.truth(claim.formula_query)[0]
        sig = claim.const_sig
        return [Stated(claim.reading, v, 0, sig or 0) for v in vals]

    def judge_value(self, claim: Claim) -> Result:
        q = claim.query
        if claim.constant and claim.formula_error is not None:
            return Result(claim, "wrong", None, self.msg("formula_error", err=claim.formula_error),
                          claim.claimed_display(), "—", None)
        T, numbers = self.truth(q)
        stated = self.stated_of(claim)
        if claim.constant and len(stated) != len(T):
            if len(stated) == 1:
                stated = stated * len(T)
            else:
                return self._shape_result(claim, numbers)
        per = [self._entry_verdict(claim, s, t) for s, t in zip(stated, T)]
        verdict = max((p[0] for p in per), key=_SEVERITY.get)
        td = _nest([n.text for n in numbers], q.shape, claim.flat)
        if claim.constant:
            true_claim = td
        else:
            true_claim = _nest([text_at(s, t) for s, t in zip(stated, T)], q.shape, claim.flat)
        claimed = claim.claimed_display()
        diagnosis, carries, also, what = None, (), (), None
        if verdict == "wrong":
            wrong_idx = [i for i, p in enumerate(per) if p[0] == "wrong"]
            diagnosis, carries, also, what = self.diagnose_value(claim, stated, T, wrong_idx)
        message = self._value_message(claim, per, stated, T, numbers, verdict, diagnosis, carries, also, what)
        return Result(claim, verdict, diagnosis, message, claimed, true_claim, td, carries, also,
                      entries=tuple(p[0] for p in per), hypothesis=what)

    def _entry_verdict(self, claim: Claim, s: Stated, t: Fraction):
        """(verdict, detail) of one stated number against its true value."""
        if claim.constant:
            if _close(s.value, t):
                return ("correct", None)
            n = s.sig
            if n and n >= 2:
                if nm.round_fraction(s.value, n) == nm.round_fraction(t, n) if t != 0 else False:
                    return ("rounding", ("const", n, None))
                alt = self._rounding_alt(claim, n, lambda a: nm.round_fraction(a, n) == nm.round_fraction(s.value, n)
                                         if s.value != 0 else False)
                if alt is not None:
                    return ("rounding", ("const", n, alt))
            return ("wrong", None)
        if is_correct(s, t):
            return ("correct", None)
        if is_last_unit(s, t):
            return ("rounding", ("unit", s.sig, None))
        if s.sig >= 2:
            alt = self._rounding_alt(claim, s.sig, lambda a: is_correct(s, a), s=s)
            if alt is not None:
                return ("rounding", ("world", s.sig, alt))
        if is_truncated(s, t):
            return ("truncated", None)
        return ("wrong", None)

    def _rounding_alt(self, claim: Claim, n: int, ok, s: Stated | None = None):
        """A value of the claimed quantity from a hand calculation at n digits that satisfies ok."""
        q = claim.query
        idx = None
        if s is not None and claim.stated is not None and len(claim.stated) > 1:
            idx = [i for i, x in enumerate(claim.stated) if x is s]
        for subset in _ROUNDING_SUBSETS:
            try:
                w = self.world(("round", n, subset), None, engine.WhatIf(round_digits=n, rounding=subset))
                vals = [_frac(x) for x in w.eval(q)]
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            cand = vals if idx is None else [vals[i] for i in idx]
            if len(cand) == 1 and ok(cand[0]):
                return cand[0]
            if len(cand) > 1 and all(ok(x) for x in cand):
                return cand[0]
        return None

    def diagnose_value(self, claim: Claim, stated: list, T: list, wrong_idx: list):
        q = claim.query

        def explains(alt):
            if alt is None or len(alt) != len(stated):
                return False
            for i in wrong_idx:
                s = stated[i]
                if claim.constant:
                    if not (_close(alt[i], s.value) or (s.sig and s.sig >= 2 and
                            nm.round_fraction(alt[i], s.sig) == nm.round_fraction(s.value, s.sig))):
                        return False
                elif not reproduces(s, alt[i]):
                    return False
            return True

        found = []
        for hyp in self.hypotheses:
            if hyp.kind in {h[0] for h in found}:
                continue
            alt = self.hyp_alt(hyp, q, None, truth=T)
            if explains(alt):
                found.append((hyp.kind, hyp))
        carried = self.carried_forward(claim, explains)
        if carried is not None:
            found.append(("carried-forward", carried))
        if not found:
            return "arithmetic", (), (), None
        kind, info = found[0]
        also = tuple(k for k, _ in found[1:])
        if kind == "carried-forward":
            return kind, tuple(info["carries"]), also, info
        return kind, (), also, info

    def carried_forward(self, claim: Claim, explains):
        """The claim recomputed from the author's earlier claimed values (and own formula)."""
        earlier = [r for r in self.results]
        # a restatement of an earlier claim that was not correct
        for r in reversed(earlier):
            if r.claim.of == claim.of and r.claim.is_value and r.verdict != "correct" \
                    and r.claimed == (claim.claimed_display()):
                return {"carries": (r.claim.index,), "restated": True, "formula": None}
        own_keys = set(_claim_keys(claim, self.graph))
        overrides: dict = {}
        for r in earlier:
            c = r.claim
            if not c.is_value or c.query is None or c.of_error is not None:
                continue
            keys = _claim_keys(c, self.graph)
            if not keys or own_keys & set(keys):
                continue
            try:
                vals = [x.value for x in self.stated_of(c)] if c.kind == "value" else \
                    [_frac(x) for x in self.true_world().eval(c.formula_query)]
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

    def _carried_with(self, claim: Claim, overrides: dict, formulas: list, explains):
        try:
            world = self._override_world(overrides)
        except (DeriveError, ZeroDivisionError, ValueError):
            return None
        for f in formulas:
            query = claim.query if f is None else f.formula_query
            try:
                alt = [_frac(x) for x in world.eval(query)]
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            if not explains(alt):
                continue
            carriers = []
            for idx in sorted({v[0] for v in overrides.values() if v[2] != "correct"}):
                reduced = {k: v for k, v in overrides.items() if v[0] != idx}
                try:
                    w2 = self._override_world(reduced)
                    alt2 = [_frac(x) for x in w2.eval(query)]
                except (DeriveError, ZeroDivisionError, ValueError):
                    continue
                if any(not _close(a, b) for a, b in zip(alt, alt2)):
                    carriers.append(idx)
            if f is not None and self.results[f.index - 1].verdict != "correct":
                carriers.append(f.index)
            if carriers:
                return {"carries": tuple(sorted(set(carriers))), "restated": False,
                        "formula": f.index if f is not None else None}
        return None

    def _override_world(self, overrides: dict):
        values, segments = [], []
        for key, (_idx, v, _verdict) in overrides.items():
            if key[0] == "value":
                _, e, k = key
                values.append(((*_key(e), k), v))
            else:
                _, a, b, k = key
                segments.append(((_key(a), _key(b), k), v))
        sig = tuple(sorted((str(k), str(v[1])) for k, v in overrides.items()))
        return self.world(("override", sig), None, engine.WhatIf(values=tuple(values), segments=tuple(segments)))

    def _value_message(self, claim, per, stated, T, numbers, verdict, diagnosis, carries, also, what) -> str:
        def td_of(s, t, num):
            return shown_true(t, num, max(self.digits, (s.sig or 0) + 3))

        if len(per) == 1:
            (v, detail), s, t, num = per[0], stated[0], T[0], numbers[0]
            td = td_of(s, t, num)
            tr = text_at(s, t) if not claim.constant else td
            if v == "correct":
                text = self.msg("correct_exact" if claim.constant else "correct_value", td=td)
            elif v == "rounding":
                kind, n, alt = detail
                if kind == "unit":
                    text = self.msg("rounding_unit", n=n, td=td, tr=tr)
                elif kind == "const":
                    text = self.msg("rounding_const", n=n, td=td)
                else:
                    text = self.msg("rounding_world", n=n, td=td, tr=tr, alt=text_at(s, alt))
            elif v == "truncated":
                text = self.msg("truncated", td=td, tr=tr)
            else:
                text = self.msg("wrong_value", td=td, tr=tr) if tr != td else self.msg("wrong_exact", td=td)
            if claim.constant and v != "correct":
                text = self.msg("const_value", val=shown_true(s.value, None, max(self.digits, 6))) + text
        else:
            groups: dict = {}
            for i, (v, _d) in enumerate(per):
                groups.setdefault(v, []).append(f"[{_entry_label(i, claim.shape)}]")
            tr = _nest([text_at(s, t) for s, t in zip(stated, T)], claim.shape, claim.flat)
            parts = []
            for v in ("wrong", "truncated", "rounding"):
                if v in groups and len(groups[v]) == len(per):
                    parts.append(self.msg(f"entries_all_{v}", m=len(per)))
                elif v in groups:
                    parts.append(self.msg(f"entries_{v}", which=", ".join(groups[v]), n=len(groups[v]),
                                          m=len(per)))
            if not parts:
                parts.append(self.msg("correct_value", td=_cell(_nest([n.text for n in numbers], claim.shape,
                                                                      claim.flat), 200)))
            else:
                parts.append(self.msg("true_matrix", tr=_cell(tr, 200)))
            text = "; ".join(parts)
        if verdict == "wrong":
            text += self._diagnosis_text(diagnosis, carries, also, what)
        return text

    def _diagnosis_text(self, diagnosis, carries, also, what) -> str:
        if diagnosis is None:
            return ""
        if diagnosis == "arithmetic":
            return self.msg("arithmetic")
        if diagnosis == "carried-forward":
            claims = ", ".join(self._claim_ref(i) for i in carries)
            if what.get("restated"):
                body = self.msg("restated", claims=claims)
            else:
                body = self.msg("carried", claims=claims)
                if what.get("formula"):
                    body += self.msg("own_formula", claim=f"[{what['formula']}]")
            text = self.msg("because", diag=diagnosis, what=body)
        else:
            text = self.msg("because", diag=diagnosis, what=what.text[0 if self.lang == "en" else 1])
        if also:
            text += self.msg("also", others=", ".join(also))
        return text

    def _claim_ref(self, index: int) -> str:
        r = self.results[index - 1]
        c = r.claim
        shown = c.claimed_display() if c.kind == "value" else c.reading
        if isinstance(shown, list):
            shown = "[…]"
        return f"[{index}] {c.of} = {shown} ({r.verdict})"

    def _shape_result(self, claim, numbers):
        fs = _shape_words(claim.formula_query.shape, self.lang)
        qs = _shape_words(claim.query.shape, self.lang)
        return Result(claim, "wrong", None, self.msg("shape_mismatch", fs=fs, of=claim.of, qs=qs),
                      claim.claimed_display(), self.correct_formula(claim)[0],
                      _nest([n.text for n in numbers], claim.query.shape) if numbers else None)

    # -- formulas
    def correct_formula(self, claim: Claim) -> tuple[str, object]:
        """(text, sympy-or-None) of the true formula of the claimed quantity."""
        return correct_formula(self.problem, claim.of_tree)

    def referenced_inputs(self, tree) -> frozenset:
        """Input entries a formula depends on, directly or through the definitions it names."""
        g = self.graph
        out: set = set()
        names = ex.names_in(tree)
        steps = _max_step(tree)
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
        w = self.true_world(point)
        f = [_frac(x) for x in w.eval(claim.formula_query)]
        t = [_frac(x) for x in w.eval(claim.query)]
        if len(f) == 1 and len(t) > 1:
            f = f * len(t)
        return f, t

    def _points(self, claim: Claim) -> list:
        refs = self.referenced_inputs(claim.tree)
        return [(refs, k) for k in range(1, RANDOM_POINTS + 1)]

    def judge_formula(self, claim: Claim) -> Result:
        tf, _ = self.correct_formula(claim)
        numbers = None
        if not self.problem.is_symbolic:
            try:
                numbers = self.truth(claim.query)[1]
            except DeriveError:
                numbers = None
        td = _nest([n.text for n in numbers], claim.query.shape) if numbers else None
        if claim.formula_error is not None:
            return Result(claim, "wrong", None, self.msg("formula_error", err=claim.formula_error),
                          claim.claimed_display(), tf, td)
        fshape, qshape = claim.formula_query.shape, claim.query.shape
        if fshape != qshape and fshape != ():
            msg = self.msg("shape_mismatch", fs=_shape_words(fshape, self.lang), of=claim.of,
                           qs=_shape_words(qshape, self.lang))
            if qshape == () and self._sum_equals(claim):
                msg += self.msg("sum_note", of=claim.of)
            return Result(claim, "wrong", None, msg, claim.claimed_display(), tf, td)
        points = self._points(claim)
        given_ok = None
        if not self.problem.is_symbolic:
            f, t = self._formula_values(claim, None)
            given_ok = all(_close(a, b) for a, b in zip(f, t))
        random_ok = True
        for p in points:
            try:
                f, t = self._formula_values(claim, p)
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            if not all(_close(a, b) for a, b in zip(f, t)):
                random_ok = False
                break
        if random_ok and given_ok is not False:
            proved = _symbolic_equal(self.problem, claim.tree, claim.of_tree, self._fixed(claim))
            how = self.msg("how_sympy") if proved else self.msg("how_numeric", k=len(points), d=WORK_DIGITS)
            return Result(claim, "correct", None, self.msg("correct_formula", how=how), claim.claimed_display(), tf, td,
                          method="sympy" if proved else "numeric")
        message = self.msg("wrong_formula", tf=tf)
        if given_ok:
            message += self.msg("given_only", names=", ".join(self._sensitive(claim)) or "?")
        diagnosis, also, what = self.diagnose_formula(claim, points)
        if diagnosis is not None:
            message += self._diagnosis_text(diagnosis, (), also, what)
        return Result(claim, "wrong", diagnosis, message, claim.claimed_display(), tf, td, also=also, hypothesis=what)

    def _fixed(self, claim: Claim) -> dict:
        """Inputs held at their given values when comparing a formula (those it does not refer to)."""
        if self.problem.is_symbolic:
            return {}
        refs = self.referenced_inputs(claim.tree)
        out = {}
        for table in (self.spec.data, self.spec.parameters):
            for name, value in table.items():
                for e, v in zip(self.graph.quantities[name].entries, value.entries):
                    if e not in refs:
                        out[e] = sp.Rational(v.numerator, v.denominator)
        return out

    def _sum_equals(self, claim: Claim) -> bool:
        try:
            f, t = self._formula_values(claim, (self.referenced_inputs(claim.tree), 1))
        except (DeriveError, ZeroDivisionError, ValueError):
            return False
        return _close(sum(f, Fraction(0)), t[0])

    def _sensitive(self, claim: Claim) -> list:
        """Inputs whose value alone (others at the given values) breaks the formula's equality."""
        out = []
        for e in sorted(self.referenced_inputs(claim.tree), key=lambda x: x.name):
            try:
                f, t = self._formula_values(claim, (frozenset([e]), 1))
            except (DeriveError, ZeroDivisionError, ValueError):
                continue
            if not all(_close(a, b) for a, b in zip(f, t)):
                out.append(e.name)
            if len(out) >= 3:
                break
        return out

    def diagnose_formula(self, claim: Claim, points: list):
        found = []
        for hyp in self.hypotheses:
            if hyp.kind in {h[0] for h in found}:
                continue
            ok = True
            for p in points:
                try:
                    f, t = self._formula_values(claim, p)
                except (DeriveError, ZeroDivisionError, ValueError):
                    ok = False
                    break
                alt = self.hyp_alt(hyp, claim.query, p, truth=t)
                if alt is None or len(alt) != len(f) or not all(_close(a, b) for a, b in zip(alt, f)):
                    ok = False
                    break
                if all(_close(a, b) for a, b in zip(alt, t)):
                    ok = False      # the hypothesis changes nothing here
                    break
            if ok:
                found.append((hyp.kind, hyp))
        if not found:
            return None, (), None
        return found[0][0], tuple(k for k, _ in found[1:]), found[0][1]


_ROUNDING_SUBSETS = tuple(frozenset(s) for s in (
    ("forward", "local", "adjoint"), ("forward", "local"), ("forward",), ("forward", "adjoint"),
    ("local", "adjoint"), ("local",), ("adjoint",)))


def _random_value(k: int, name: str) -> Fraction:
    rng = random.Random(f"derive-check|{k}|{name}")
    v = Fraction(rng.randint(150, 850), 1000)
    return v if rng.random() < 0.7 else -v


def _entry_label(i: int, shape: tuple) -> str:
    if shape == ():
        return ""
    r, c = shape
    if c == 1:
        return str(i + 1)
    return f"{i // c + 1},{i % c + 1}"


def _claim_keys(claim: Claim, graph) -> list:
    """What a claimed value overrides in a recomputation: ('value', entry, k) / ('deriv', a, b, k)."""
    t = claim.of_tree
    if isinstance(t, ex.Name):
        return [("value", e, 0) for e in graph.quantities[t.id].entries]
    if isinstance(t, ex.AtStep):
        return [("value", e, t.step) for e in graph.quantities[t.name].entries]
    if isinstance(t, ex.Deriv):
        try:
            pairs = derivative_pairs(graph, graph.quantities[t.of], graph.quantities[t.wrt], "")
        except DeriveError:
            return []
        return [("deriv", a, b, t.step) for a, b in pairs]
    return []


# ---------------------------------------------------------------- formulas: the truth, symbolically
def _text(expr) -> str:
    return formula_text(expr, order="none", textbook=False)


# A derivative formula in chain-rule order: ("prod", [items]) / ("sum", [items]) / SymPy factor.
MAX_CHAIN_TERMS = 24


def chain_formula(graph, a, b, budget=None):
    """∂a/∂b as the textbook product ∂a/∂head · ∂…/∂… · ∂c/∂b of local-derivative formulas (a
    branch head contributes the sum over its consumers); None when it would be too large."""
    budget = budget if budget is not None else [MAX_CHAIN_TERMS]
    calc = Calculus(graph, a)
    if b not in calc.reaches:
        return sp.Integer(0)
    ch = calc.chain(b)
    items = [_tidy(f.formula) for f in ch.factors]
    if ch.head != a:
        terms = []
        for c in calc.consumers(ch.head):
            budget[0] -= 1
            if budget[0] < 0:
                return None
            sub = chain_formula(graph, a, c, budget)
            if sub is None:
                return None
            terms.append(("prod", [sub, _tidy(graph.local_derivatives[(c, ch.head)].formula)]))
        items.insert(0, ("sum", terms))
    return ("prod", items)


def _tidy(f):
    try:
        return tidy(f)
    except Exception:   # noqa: BLE001 - the printer is optional here
        return f


def chain_text(node) -> str:
    if isinstance(node, tuple) and node[0] == "prod":
        items = [it for it in _flatten_prod(node) if not (not isinstance(it, tuple) and it == 1)]
        if len(items) == 1:
            return chain_text(items[0])
        parts = []
        for it in items:
            t = chain_text(it)
            if (isinstance(it, tuple) and it[0] == "sum" and len(it[1]) > 1) or \
                    (not isinstance(it, tuple) and (isinstance(it, sp.Add) or t.startswith("-"))):
                t = f"({t})"
            parts.append(t)
        return "*".join(parts) if parts else "1"
    if isinstance(node, tuple) and node[0] == "sum":
        return " + ".join(chain_text(t) for t in node[1]) or "0"
    return expr_text(node)


def _flatten_prod(node) -> list:
    out = []
    for it in node[1]:
        if isinstance(it, tuple) and it[0] == "prod":
            out += _flatten_prod(it)
        elif isinstance(it, tuple) and it[0] == "sum" and len(it[1]) == 1:
            inner = it[1][0]
            out += _flatten_prod(inner) if isinstance(inner, tuple) and inner[0] == "prod" else [inner]
        else:
            out.append(it)
    return out


def chain_sympy(node):
    """The chain formula as one SymPy expression (for values and cross-checks)."""
    if isinstance(node, tuple) and node[0] == "prod":
        return sp.Mul(*[chain_sympy(x) for x in node[1]])
    if isinstance(node, tuple) and node[0] == "sum":
        return sp.Add(*[chain_sympy(x) for x in node[1]])
    return node


def expr_text(e) -> str:
    """A SymPy expression in the expression language, in textbook order: y*(1 - y)*w7, a - b."""
    return formula_text(e)


def correct_formula(problem: Problem, tree) -> tuple[str, object]:
    """The true formula of a claimed quantity as text (expression language) and SymPy (or None)."""
    g = problem.graph
    loss = g.loss
    if isinstance(tree, ex.Name):
        q = g.quantities[tree.id]
        if q.kind == "forward":
            return q.text, None
        return ("(given)" if problem.is_symbolic else _value_text(problem, q)), None
    if isinstance(tree, ex.Deriv) and tree.step == 0:
        A, B = g.quantities[tree.of], g.quantities[tree.wrt]
        if A.is_scalar and B.is_scalar:
            ch = chain_formula(g, A.entries[0], B.entries[0])
            if ch is not None:
                return chain_text(ch), ch
            f = _tidy(Calculus(g, A.entries[0]).formula(B.entries[0]))
            return _text(f), f
        if A.is_scalar and A.name == loss:
            rule = _matrix_rule(g, B.name)
            if rule is not None:
                return rule, None
        return "(entrywise)", None
    if isinstance(tree, ex.AtStep) and tree.name in problem.spec.update:
        lr = problem.spec.learning_rate
        eta = "eta" if lr is None else _fraction_text(lr)
        prev = tree.name if tree.step == 1 else f"{tree.name}@{tree.step - 1}"
        grad = f"d{loss}/d{tree.name}" + (f"@{tree.step - 1}" if tree.step > 1 else "")
        return f"{prev} - {eta}*{grad}", None
    if isinstance(tree, ex.AtStep):
        q = g.quantities[tree.name]
        if q.kind == "forward":
            return f"{q.text}  (with the values after {tree.step} step(s))", None
        return tree.name, None
    return unparse(tree), None


def _value_text(problem: Problem, q) -> str:
    table = problem.spec.data if q.name in problem.spec.data else problem.spec.parameters
    v = table[q.name]
    texts = [_fraction_text(x) for x in v.entries]
    return str(_nest(texts, v.shape, v.flat_list)) if v.shape != () else texts[0]


def _matrix_rule(graph, name: str) -> str | None:
    for rule in mf.matrix_rules(graph):
        if rule.wrt == name:
            return " + ".join(mexpr_text(t.expr, graph.loss) for t in rule.terms)
    return None


def mexpr_text(m, loss: str) -> str:
    return formula_text(m, loss=loss)


MAX_SYMBOLIC_OPS = 400


def _symbolic_equal(problem: Problem, claim_tree, of_tree, fixed: dict) -> bool:
    """SymPy's verdict that two quantity trees are identical once every definition is expanded
    (inputs in `fixed` substituted); False when it cannot tell (or the expressions are large)."""
    g = problem.graph
    full: dict = {}
    try:
        for q in g.quantities.values():
            if q.kind != "forward":
                continue
            for e, local in zip(q.entries, q.local):
                expr = local.xreplace(full).xreplace(fixed)
                if sp.count_ops(expr) > MAX_SYMBOLIC_OPS:
                    return False
                full[e] = expr

        def value(name):
            q = g.quantities[name]
            vals = [full.get(e, fixed.get(e, e)) for e in q.entries]
            return vals[0] if q.is_scalar else sp.ImmutableMatrix(q.shape[0], q.shape[1], vals)

        def env(node):
            if isinstance(node, ex.Name):
                return value(node.id)
            if isinstance(node, ex.Deriv) and node.step == 0:
                A, B = g.quantities[node.of], g.quantities[node.wrt]
                pairs = derivative_pairs(g, A, B, "")
                vals = []
                for a, b in pairs:
                    f = Calculus(g, a).formula(b)
                    vals.append(f.xreplace(full).xreplace(fixed))
                shape = B.shape if A.is_scalar else A.shape
                return vals[0] if shape == () else sp.ImmutableMatrix(shape[0], shape[1], vals)
            raise _NotSymbolic()

        lhs, rhs = to_sympy(claim_tree, env), to_sympy(of_tree, env)
        ls = list(lhs) if shape_of(lhs) else [lhs]
        rs = list(rhs) if shape_of(rhs) else [rhs]
        if len(ls) == 1 and len(rs) > 1:
            ls = ls * len(rs)
        if len(ls) != len(rs):
            return False
        for a, b in zip(ls, rs):
            d = a - b
            if d == 0:
                continue
            if sp.count_ops(d) > MAX_SYMBOLIC_OPS:
                return False
            d = d.rewrite(sp.exp)
            if sp.expand(d) == 0:
                continue
            if sp.simplify(sp.cancel(sp.together(d))) != 0:
                return False
        return True
    except (_NotSymbolic, DeriveError, TypeError, ValueError, RecursionError, AttributeError):
        return False


class _NotSymbolic(Exception):
    pass


# ---------------------------------------------------------------- running a file
def check_file(path, digits: int = 10, lang: str = "en") -> tuple[ClaimsFile, list]:
    cf = load_claims(path)
    checker = Checker(cf.problem, digits, lang)
    try:
        results = checker.check(cf.claims)
    except DeriveError as e:
        raise e.located(file=cf.path) from None
    return cf, results


def summary(results: list) -> dict:
    counts = {v: 0 for v in VERDICTS}
    for r in results:
        counts[r.verdict] += 1
    return counts


def summary_line(results: list, lang: str = "en") -> str:
    s = summary(results)
    if lang == "zh":
        return (f"共 {len(results)} 条声明:{s['correct']} 正确(correct),{s['rounding']} 舍入(rounding),"
                f"{s['truncated']} 截断(truncated),{s['wrong']} 错误(wrong)")
    return (f"{len(results)} claims: {s['correct']} correct, {s['rounding']} rounding, "
            f"{s['truncated']} truncated, {s['wrong']} wrong")


def to_json(cf: ClaimsFile, results: list, digits: int) -> dict:
    return {
        "file": cf.path, "spec": cf.problem.spec.id, "digits": digits,
        "claims": [r.to_json() for r in results],
        "summary": summary(results),
    }


def _cell(x, width: int = 34) -> str:
    if x is None:
        return "—"
    if isinstance(x, list):
        x = json.dumps(x, ensure_ascii=False).replace('"', "")
    text = " ".join(str(x).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def text_report(cf: ClaimsFile, results: list, digits: int, lang: str = "en") -> str:
    spec = cf.problem.spec
    heads = {"en": ("#", "claim", "claimed", "true", f"true ({digits} digits)", "verdict", "diagnosis"),
             "zh": ("#", "声明", "所写", "真值", f"真值({digits} 位)", "判定", "诊断")}[lang]
    rows = [[str(r.claim.index), _cell(r.claim.of, 22), _cell(r.claimed), _cell(r.true),
             _cell(r.true_digits, 24), r.verdict, r.diagnosis or ""] for r in results]
    widths = [max(_w(h), *(_w(row[i]) for row in rows)) for i, h in enumerate(heads)]
    lines = [f"{cf.path} — {spec.title} ({spec.id})", ""]
    lines.append("  ".join(_pad(h, w) for h, w in zip(heads, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(_pad(c, w) for c, w in zip(row, widths)).rstrip())
    notes = [r for r in results if r.verdict != "correct"]
    if notes:
        lines.append("")
        for r in notes:
            lines.append(f"[{r.claim.index}] {r.claim.of} ({r.verdict}"
                         + (f", {r.diagnosis}" if r.diagnosis else "") + f"): {r.message}")
    lines.append("")
    lines.append(summary_line(results, lang))
    return "\n".join(lines) + "\n"


def _w(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _w(s))

"""Stated numbers and value verdicts: a number as written (its last written digit is its
precision) against the true value — correct when it is the true value rounded, one unit off in
the last of six or more digits, truncated; `Result`, the verdict on one claim."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from . import expr as ex
from . import numeric as nm
from .errors import DeriveError, LimitError
VERDICTS = ("correct", "rounding", "truncated", "wrong")
SEVERITY = {"correct": 0, "rounding": 1, "truncated": 2, "wrong": 3}
EQUAL_TOLERANCE = Fraction(1, 10 ** 30)   # relative, for "equal" at 60 working digits


# The names of the diagnoses (the tags of `hypotheses.DIAGNOSES`) for readers.  JSON keeps the tag.
DIAGNOSIS_NAMES = {
    "en": {
        "used-preactivation": "activation derivative at the wrong argument",
        "missing-activation-derivative": "activation derivative left out",
        "sign-flip": "sign error",
        "factor-2": "factor of 2",
        "update-sign": "update in the wrong direction",
        "update-missing-weight": "old parameter left out of the update",
        "dropped-path": "a path left out",
        "used-updated-weights": "updated weights used too early",
        "carried-forward": "earlier error carried forward",
        "arithmetic": "arithmetic slip",
    },
    "zh": {
        "used-preactivation": "激活函数导数的自变量用错",
        "missing-activation-derivative": "漏乘激活函数的导数",
        "sign-flip": "符号错误",
        "factor-2": "相差因子 2",
        "update-sign": "更新方向反了",
        "update-missing-weight": "更新式漏掉了原参数",
        "dropped-path": "漏掉了一条路径",
        "used-updated-weights": "过早使用了更新后的参数",
        "carried-forward": "沿用了前面的错误",
        "arithmetic": "计算错误",
    },
}
VERDICT_NAMES = {
    "en": {"correct": "correct", "rounding": "rounding", "truncated": "truncated", "wrong": "wrong"},
    "zh": {"correct": "正确", "rounding": "舍入", "truncated": "截断", "wrong": "错误"},
}


def diagnosis_name(tag: str | None, lang: str) -> str:
    """The reader's name of a diagnosis tag ("" for none)."""
    if not tag:
        return ""
    return DIAGNOSIS_NAMES[lang].get(tag, tag)


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


def as_fraction(x) -> Fraction | None:
    if x is None:
        return None
    if isinstance(x, Fraction):
        return x
    return nm.mpf_to_fraction(x)


_TOLERANCE_D = EQUAL_TOLERANCE.denominator // EQUAL_TOLERANCE.numerator    # 10^30
_TINY_D = 10 ** 40


def close_to(a: Fraction, b: Fraction, scale: Fraction = Fraction(0)) -> bool:
    """|a − b| ≤ EQUAL_TOLERANCE · max(|a|, |b|, scale, 10⁻⁴⁰), exactly, in integers: with
    a = p/q and b = r/s, |ps − rq| · 10³⁰ ≤ max(…) · qs holds when it holds for one of the four
    (a check made millions of times on 60-digit binary fractions, whose sum and product with
    Fraction's own arithmetic reduce by large gcds)."""
    p, q, r, s = a.numerator, a.denominator, b.numerator, b.denominator
    lhs = abs(p * s - r * q) * _TOLERANCE_D
    return (lhs <= abs(p) * s or lhs <= abs(r) * q or lhs * _TINY_D <= q * s
            or (scale > 0 and lhs * scale.denominator <= scale.numerator * q * s))


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class RoundingChain:
    """Why a `rounding` verdict is only rounding: the hand calculation at `digits` significant
    digits that rounds `rounded` ("forward" values, "local" derivatives, "adjoint"s) as soon as
    they are computed and gives `value` (the claim, rounded); `chain` the intermediate values of
    that calculation the claim is computed from (`worlds.rounded_chain`: (kind, entry, wrt, step,
    value)).  `kind` "world" (a recomputation), "const" (the claim's own numbers are such values),
    "unit" (one unit off in the last digit, no calculation found: empty chain)."""
    kind: str
    digits: int
    rounded: tuple = ()
    value: Fraction | None = None
    chain: tuple = ()

    def to_json(self) -> dict:
        n = self.digits
        return {
            "kind": self.kind, "digits": n, "rounded": list(self.rounded),
            "value": None if self.value is None else sig_text(self.value, n),
            "chain": [{"kind": kind, "of": e.name, "wrt": None if wrt is None else wrt.name, "step": k,
                       "value": sig_text(v, n) if v else "0"}
                      for kind, e, wrt, k, v in self.chain],
        }


@dataclass
class Result:
    claim: object                # the Claim (claims.Claim)
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
    hypothesis: object = None    # the diagnosis: a hypotheses.Hypothesis, or a dict (carried-forward)
    rounding: RoundingChain | None = None   # rounding verdicts: the rounded chain that reproduces the claim

    def to_json(self) -> dict:
        c = self.claim
        return {
            "index": c.index, "of": c.of, "kind": c.kind, "claimed": self.claimed, "true": self.true,
            "true_digits": self.true_digits, "verdict": self.verdict, "diagnosis": self.diagnosis,
            "message": self.message, "carries": list(self.carries), "note": c.note,
            "reading": c.reading, "also": list(self.also),
            "rounding": None if self.rounding is None else self.rounding.to_json(),
        }

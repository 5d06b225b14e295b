"""Decimal rounding and printing of exact values: no SymPy, no mpmath.

Takes Fractions (and decimals); gives correctly rounded decimals at N significant digits (half
away from zero), the plain-or-scientific text derive prints, and `Number`, a value as shown.
Used by every stage that prints a number (the fast engine, the SymPy evaluator, the checker).
"""
from __future__ import annotations

import decimal
import sys
from dataclasses import dataclass
from fractions import Fraction

MAX_DIGITS = 10_000          # --digits limit
DISPLAY_DIGITS = 6           # a handout's numbers: chosen for reading (derive render/build; --digits sets it)

if 0 < sys.get_int_max_str_digits() < 100_000:  # 10 000-digit values are printed as decimals
    sys.set_int_max_str_digits(100_000)


def round_fraction(q: Fraction, digits: int) -> decimal.Decimal:
    """q correctly rounded to `digits` significant digits, half away from zero."""
    if q == 0:
        return decimal.Decimal(0)
    n, exp = rounded_parts(q, digits)
    return _digits_decimal(n, exp)


def rounded_parts(q: Fraction, digits: int) -> tuple[int, int]:
    """(n, e) with n·10^e = q correctly rounded to `digits` significant digits, half away from
    zero (n has `digits` digits; q ≠ 0): `round_fraction` without building a Decimal."""
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
    return (-n if q < 0 else n), -shift


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
    precision (the default of 28 digits rounds, and quantize beyond it raises InvalidOperation).
    From the text 'nEexp': Decimal's string constructor keeps every digit and the exponent as
    written (no context is involved), the same Decimal as from the digit tuple, in a tenth of
    the time."""
    return decimal.Decimal(f"{n}E{exp}")


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
    return format_digits(bool(sign), "".join(map(str, digs)), exp, digits)


def format_digits(negative: bool, s: str, exp: int, digits: int) -> str:
    """The text of ±(digit string s)·10^exp, by `format_decimal`'s rules (s has no leading 0)."""
    n = len(s)
    lead = n - 1 + exp  # exponent of the leading digit
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
    return ("-" if negative else "") + body


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


def fraction_text(q: Fraction, digits: int = 30, plain: bool = False) -> str:
    """An exact constant as text, the one way derive writes one: a decimal of at most `digits`
    significant digits in derive's number format ('0.002', '1e-5'), else p/q ('1/3').  With
    `plain`, any terminating decimal is written out in positional notation, however long
    ('0.00001'; the expression text of a parsed formula)."""
    if plain:
        if q.denominator == 1:
            return str(q.numerator)
        d = exact_decimal(q)
        return format(d, "f") if d is not None else f"{q.numerator}/{q.denominator}"
    if is_short_exact(q, digits):
        return format_decimal(round_fraction(q, digits), digits, exact=True)
    return f"{q.numerator}/{q.denominator}"


def show_fraction(q: Fraction, digits: int) -> Number:
    """An exact rational as shown: exactly when it is a short decimal, else correctly rounded."""
    if is_short_exact(q, digits):
        return Number(format_decimal(_decimal_of(q), digits, exact=True), q, to_float(q), True)
    return Number(format_decimal(round_fraction(q, digits), digits), q, to_float(q))


def to_float(x) -> float:
    """A float for rough uses (sorting, plots); ±inf beyond the float range."""
    try:
        return float(x)
    except OverflowError:
        return float("inf") if x > 0 else float("-inf")

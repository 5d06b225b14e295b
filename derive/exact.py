"""Exact rational arithmetic for the evaluators: Fractions, with None where a value is not rational.

No SymPy here: the fast engine (`engine`) and the SymPy evaluator (`numeric`) share this context,
so "exact" means the same in both.
"""
from __future__ import annotations

from fractions import Fraction

from .errors import DeriveError


def integer_nthroot(n: int, k: int) -> tuple[int, bool]:
    """(⌊n^(1/k)⌋, whether it is exact) for n ≥ 0, k ≥ 1, in integers (Newton's method)."""
    if n < 2 or k == 1:
        return n, True
    x = 1 << -(-n.bit_length() // k)          # an upper bound: 2^⌈bits/k⌉ ≥ n^(1/k)
    while True:
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            break
        x = y
    return x, x ** k == n


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
        if name == "sign":
            return Fraction((x > 0) - (x < 0))
        if name == "at_least":      # 1[x ≥ 0]: ∂max(a, b)/∂a at x = a − b
            return Fraction(int(x >= 0))
        return None

    def norm2(self, rows, cols, xs):
        return None

    def constant(self, c):
        return None


def _exact_root(b: Fraction, e: Fraction):
    """b**e for a rational e = p/q when the q-th root of b is rational; else None."""
    q = e.denominator
    num, ok1 = integer_nthroot(b.numerator, q)
    den, ok2 = integer_nthroot(b.denominator, q)
    if not (ok1 and ok2):
        return None
    root = Fraction(int(num), int(den))
    if root == 0 and e < 0:
        raise DeriveError("division by zero")
    return root ** e.numerator

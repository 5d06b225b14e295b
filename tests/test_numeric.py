"""Stage 4 (numeric): correct rounding, exact values, precision escalation."""
from decimal import Decimal
from fractions import Fraction as F

import mpmath
import pytest
from hypothesis import given, settings, strategies as st

import derive
from derive import numeric as nm
from derive import rounding
from reference import agrees


@pytest.mark.parametrize("q, digits, text", [
    (F(1, 8), 2, "0.13"),               # exactly halfway: half away from zero
    (F(-1, 8), 2, "-0.13"),
    (F(5, 2), 1, "3"),
    (F(99999999998, 10 ** 11), 10, "1.000000000"),   # carries into a new digit: still 10 digits
    (F(99999999998, 10 ** 11), 11, "0.99999999998"),
    (F(1, 3), 10, "0.3333333333"),
    (F(2, 3), 3, "0.667"),
    (F(-188587483, 5 * 10 ** 12), 10, "-3.771749660e-5"),
    (F(123456789012), 5, "1.2346e11"),
])
def test_round_fraction(q, digits, text):
    assert nm.format_decimal(nm.round_fraction(q, digits), digits) == text


def test_exact_short_values_are_shown_exactly():
    assert nm.show(F(83, 200), 10, exact=F(83, 200)).text == "0.415"
    assert nm.show(F(300000), 10, exact=F(300000)).text == "300000"
    assert nm.show(F(1, 3), 4, exact=F(1, 3)).text == "0.3333"


@settings(max_examples=300, deadline=None)
@given(st.integers(-10 ** 30, 10 ** 30), st.integers(1, 10 ** 20), st.integers(1, 25))
def test_round_fraction_is_within_half_a_unit(n, d, digits):
    q = F(n, d)
    text = nm.format_decimal(nm.round_fraction(q, digits), digits)
    with mpmath.workdps(80):
        exact = mpmath.mpf(n) / d
        assert agrees(text, exact, digits)
    # significant digits: exactly `digits` of them
    mant = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    assert q == 0 or len(mant) == digits or (mant == "" and q == 0)


def test_mpf_to_fraction_keeps_sign():
    assert nm.mpf_to_fraction(mpmath.mpf(-0.5)) == F(-1, 2)


def test_value_near_one_is_not_rounded_away(write_spec):
    # 1 − 10⁻¹¹ at 12 digits must not print 1
    p = derive.Problem(derive.spec.load(str(write_spec('''
title = "near one"
[data]
x = 25.3284360229345
[parameters]
w = 1
[forward]
y = "sigmoid(w*x)"
E = "y"
'''))))
    y = p.graph.quantities["y"].entries[0]
    sol = p.solve(digits=12)
    with mpmath.workdps(50):
        ref = 1 / (1 + mpmath.exp(-mpmath.mpf("25.3284360229345")))
    assert agrees(sol.value(y).text, ref, 12)
    assert sol.value(y).text.startswith("0.99999999999")


def test_many_digits_are_consistent():
    # the 50-digit value, rounded to 10 digits, is the 10-digit value
    p = derive.load("two-two-two")
    a = p.eval("dE_total/dw6", digits=50)[0].value.values[0].text
    b = p.eval("dE_total/dw6", digits=10)[0].value.values[0].text
    assert nm.format_decimal(nm.round_fraction(F(Decimal(a)), 10), 10) == b
    assert len(a.replace("0.", "", 1).lstrip("0")) == 50


def test_exact_rational_network_stays_exact():
    sol = derive.load("matrix-linear").solve(digits=10)
    assert all(v.is_exact for v in sol.gradients["w1"].values)
    assert sol.loss.text == "9"


def test_digits_limit_is_enforced():
    with pytest.raises(derive.DeriveError, match="digits"):
        derive.load("alice").solve(digits=nm.MAX_DIGITS + 1)


@pytest.mark.parametrize("q, text", [
    (F("0.35000000000000000000000000001"), "0.35000000000000000000000000001"),
    (F(3, 10 ** 29), "3E-29"),
    (F(-1, 2 ** 100), None),
    (F(1, 3), None),
])
def test_exact_decimal_keeps_every_place_whatever_the_context(q, text):
    import decimal
    d = nm.exact_decimal(q)
    if text is None:
        assert d is None if q.denominator % 3 == 0 else F(d) == q
    else:
        assert str(d) == text and F(d) == q
    with decimal.localcontext() as c:   # a tiny context changes nothing
        c.prec = 3
        assert nm.exact_decimal(F("123456.789")) == Decimal("123456.789")
        assert nm.format_decimal(nm.round_fraction(F(2, 3), 40), 40) == "0." + "6" * 39 + "7"


def test_claim_text_at_many_places():
    from derive.verdicts import parse_stated, text_at
    s = parse_stated("0.35000000000000000000000000001")
    assert text_at(s, F(7, 20)) == "0.35000000000000000000000000000"
    assert text_at(parse_stated("3e-29"), F(7, 20)) == "0.35000000000000000000000000000"


@given(st.integers(min_value=-10 ** 80, max_value=10 ** 80), st.integers(min_value=-400, max_value=400))
@settings(max_examples=300, deadline=None)
def test_digits_decimal_is_the_digit_tuple_decimal(n, exp):
    """rounding._digits_decimal (built from the text nEexp) is the Decimal of n's digits and exp,
    digit for digit, exponent for exponent, whatever the decimal context's precision."""
    want = Decimal((1 if n < 0 else 0, tuple(int(ch) for ch in str(abs(n))), exp))
    got = rounding._digits_decimal(n, exp)
    assert got.as_tuple() == want.as_tuple() and str(got) == str(want)

"""One printer for each job (issue 8 item 7): formulas as text (`printer.TextPrinter`), trees and
matrix rules as LaTeX (`printer.PiecePrinter`), one GREEK table, one fraction text, one LANGS."""
import decimal
from fractions import Fraction

import pytest
from sympy.printing.printer import Printer

import derive
from derive import errata, escape, expr as ex, latexparse, matrixform as mf, printer as pr, render, spec
from derive.rounding import fraction_text


@pytest.mark.parametrize("q", [Fraction(1, 10 ** 5), Fraction(3, 2), Fraction(300000), Fraction(-1, 8),
                               Fraction(1, 3), Fraction(-22, 7), Fraction(12345678901234567890123456789012345, 10 ** 35),
                               Fraction(1, 2 ** 40), Fraction(0)])
def test_fraction_text_is_exact_in_both_styles(q):
    for text in (fraction_text(q), fraction_text(q, plain=True)):
        num, _, den = text.partition("/")
        value = Fraction(decimal.Decimal(num)) / (Fraction(int(den)) if den else 1)
        assert value == q, text
    d = q.denominator
    while d % 2 == 0 or d % 5 == 0:
        d //= 2 if d % 2 == 0 else 5
    plain = fraction_text(q, plain=True)
    assert "e" not in plain and ("/" in plain) == (d != 1)      # positional whenever it terminates
    assert pr.fraction(q) == (pr.number(fraction_text(q)) if "/" not in fraction_text(q)
                              else f"{'-' if q < 0 else ''}\\frac{{{abs(q.numerator)}}}{{{q.denominator}}}")


def test_one_greek_table_and_one_langs():
    assert latexparse.GREEK is escape.GREEK and pr.GREEK is escape.GREEK
    assert pr.default_display("varphi") == "\\varphi" and pr.default_display("sigma2") == "\\sigma_{2}"
    assert render.LANGS is spec.LANGS and errata.ERRATA_LANGS is spec.LANGS


def test_the_printers_dispatch_on_the_class():
    assert issubclass(pr.TextPrinter, Printer) and issubclass(pr.PiecePrinter, Printer)
    tree = ex.parse("w1*x1 + (b - 2)^2/sigmoid(n)")
    assert pr.text(tree) == latexparse.unparse(tree) == "w1*x1 + (b - 2)^2/sigmoid(n)"
    assert ex.parse(pr.text(tree)) == tree
    m = mf.MMul(mf.MSym("P", adjoint=True), mf.MT(mf.MSym("H")))
    assert pr.text(m, loss="E") == "(dE/dP) @ transpose(H)"
    assert pr.MatrixPrinter({"P": "P", "H": "H"}, "E").tex(m) == \
        "\\frac{\\partial E}{\\partial P} \\cdot {H}^{\\top}"
    with pytest.raises(TypeError):
        pr.TreePrinter({}, lambda n: ()).tex(object())


def test_a_claim_tree_as_written():
    p = derive.load("two-two-two")
    names = pr.display_names(p.spec, p.graph)
    tree = ex.parse_quantity("dE_total/dw6 - 0.5*(w6@1)", lambda n: n in names)
    tex = pr.ClaimPrinter({"names": names}).doprint(tree)
    assert tex == "\\frac{\\partial E_{\\mathrm{total}}}{\\partial w_{6}} - 0.5 \\cdot {w_{6}}^{(1)}"

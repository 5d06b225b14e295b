"""One printer for each job (issue 8 item 7): formulas as text (`printer.TextPrinter`), trees and
matrix rules as LaTeX (`printer.PiecePrinter`), one GREEK table, one fraction text, one LANGS."""
import decimal
import re
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


# ---------------------------------------------------------------- the width estimate
# The estimate as it was written first (character by character, each command matched on a copy of
# the rest of the text); `printer.width` now weighs plain characters inline and matches commands in
# place.  The line breaks of every handout depend on it, so the two must agree to the last bit.
def _reference_width(tex: str) -> float:
    return _ReferenceWidth(tex).run()


class _ReferenceWidth:
    def __init__(self, tex: str):
        self.t = tex
        self.i = 0

    def run(self, scale: float = 1.0) -> float:
        return self.seq(scale, stop=None)

    def group(self, scale: float) -> float:
        """A braced group or a single token."""
        self.skip_ws()
        if self.i < len(self.t) and self.t[self.i] == "{":
            self.i += 1
            w = self.seq(scale, stop="}")
            self.i += 1
            return w
        return self.token(scale)

    def skip_ws(self):
        while self.i < len(self.t) and self.t[self.i] == " ":
            self.i += 1

    def seq(self, scale: float, stop) -> float:
        total = 0.0
        while self.i < len(self.t):
            ch = self.t[self.i]
            if stop and ch == stop:
                break
            total += self.token(scale)
        return total

    def token(self, scale: float) -> float:
        t = self.t
        if self.i >= len(t):
            return 0.0
        ch = t[self.i]
        if ch == "{":
            return self.group(scale)
        if ch in "_^":
            self.i += 1
            return self.group(scale * 0.7)
        if ch == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", t[self.i:])
            cmd = m.group(1)
            self.i += len(m.group(0))
            if cmd == "frac":
                a = self.group(scale)
                b = self.group(scale)
                return max(a, b) + 0.4 * scale
            if cmd == "begin":
                env = self._braced_text()
                if env.endswith("matrix"):
                    return self._matrix(scale)
                return 0.0
            if cmd == "end":
                self._braced_text()
                return 0.0
            if cmd in ("mathrm", "operatorname", "text", "mathit", "mathbf"):
                return self.group(scale) * 1.15
            if cmd == "sqrt":
                return self.group(scale) + 1.0 * scale
            if cmd == "\\":
                return 0.0
            return pr._CMD_WIDTH.get(cmd, 1.1) * scale
        self.i += 1
        if ch == " ":
            return 0.0
        if ch in "=<>":
            return 2.4 * scale
        if ch in "+-":
            return 2.2 * scale
        if ch in "&":
            return 0.0
        if ch in "()[]|":
            return 0.5 * scale
        if ch in ".,":
            return 0.4 * scale
        if ch.isupper():
            return 1.3 * scale
        return 1.0 * scale

    def _braced_text(self) -> str:
        m = re.match(r"\{([^{}]*)\}", self.t[self.i:])
        if not m:
            return ""
        self.i += len(m.group(0))
        return m.group(1)

    def _matrix(self, scale: float) -> float:
        end = self.t.find("\\end{", self.i)
        body = self.t[self.i:end]
        self.i = end
        rows = [r.split("&") for r in body.split("\\\\")]
        ncols = max(len(r) for r in rows)
        cols = [0.0] * ncols
        for r in rows:
            for j, cell in enumerate(r):
                cols[j] = max(cols[j], _reference_width(cell.strip()) * scale)
        return sum(cols) + 2.3 * scale * (ncols - 1) + 2.8 * scale



def test_width_is_the_reference_estimate_to_the_bit(monkeypatch):
    """Every text the worked solutions of a few problems measure (two-two-two, a matrix network,
    softmax, in both languages), and some odd ones, get exactly the reference's width."""
    seen = []
    inner = pr.width

    def recording(tex):
        seen.append(tex)
        return inner(tex)
    monkeypatch.setattr(pr, "width", recording)
    for pid in ("two-two-two", "matrix-linear", "softmax-3"):
        p = derive.load(pid)
        for lang in ("en", "zh"):
            render.render_text(p, fmt="md", lang=lang)
    odd = ["", " ", "&", "}", "{", "x_", "a^{b_{c}}", "\\frac{1}{1 + e^{-0.131}}", "\\text{Ab} = \\mathrm{X}",
           "\\begin{pmatrix} 1 & -2.5 \\\\ 0.25 & \\sqrt{3} \\end{pmatrix}", "\\begin{aligned}x\\end{aligned}",
           "\\left(\\partial E / \\partial w_{5}\\right) \\approx 0.00238", "ΣÅé中 +-=<>()[]|.,", "\\, \\; \\! \\ \\\\"]
    assert len(set(seen)) > 200
    for tex in dict.fromkeys(seen + odd):
        assert inner.__wrapped__(tex) == _reference_width(tex), tex


def test_default_display_memo_is_the_function():
    """printer.default_display is kept per name (lru_cache): for every quantity of the built-in
    problems and some awkward names, the kept answer is the uncached function's, asked twice."""
    import derive
    from derive import printer as pr
    from derive.spec import builtin_ids
    names = ["_x", "__a_1", "w1_21", "sigma2", "net_h1", "out_o2", "E_total", "x_hat", "a_", "W_bar"]
    for pid in builtin_ids():
        spec = derive.load(pid).spec
        names += [*spec.data, *spec.parameters, *(d.name for d in spec.forward)]
    for _round in range(2):
        for n in names:
            assert pr.default_display(n) == pr.default_display.__wrapped__(n), n

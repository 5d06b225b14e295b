"""Printing formulas in the handouts' notation: one printer for SymPy, definition trees and matrix rules.

Takes display names (the spec's [latex] table, else a default built from the name: `w1` → `w_{1}`,
`net_h1` → `net_{h_{1}}`, `E_total` → `E_{\\mathrm{total}}`, `y_hat` → `\\hat{y}`) and gives LaTeX for
- SymPy expressions over graph entries (local derivatives, gradient formulas): `DerivePrinter`, a
  subclass of SymPy's `LatexPrinter` that prints entries by their display names (matrix entries
  `W[i,j]` as `W_{ij}`, 1-based), `sigmoid` as σ, and, given values, the same formula with numbers
  substituted (every product then written with a centred dot);
- a definition's parsed tree in the user's own order (`net_{h_1} = w_{1} i_{1} + w_{2} i_{2} + b_{1}`),
  symbolically or with numbers (matrices as `pmatrix`), and matrix-form chain-rule trees
  (`derive.matrixform` MExpr): `PiecePrinter` (`TreePrinter`, `MatrixPrinter` are its constructors);
- a claim's tree as its author wrote it (explicit products, NAME@k, dA/dB): `ClaimPrinter`;
- derivative symbols, numbers (`3.6e-5` → `3.6 \\times 10^{-5}`) and a rough width estimate used to
  break long lines and shrink wide matrices.
and text in the expression language for all three kinds of formula: `TextPrinter` (`text()`).
Every printer is a SymPy `Printer` (`_print_<Class>` dispatch, `_default_settings`).  Markdown
embeds the same LaTeX (only macros that KaTeX and MathJax know are used); Greek letters are
`escape.GREEK`, exact constants `rounding.fraction_text`.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.printer import Printer

from . import expr as ex
from . import matrixform as mf
from .graph import Entry
from .escape import GREEK
from .rounding import fraction_text

ACCENTS = {"hat": "\\hat", "bar": "\\bar", "tilde": "\\tilde", "dot": "\\dot", "vec": "\\vec"}

# precedence of printed pieces: a piece is wrapped in parentheses where a tighter one is needed
ADD, NEG, MUL, POW, ATOM = 10, 15, 20, 30, 40


# ---------------------------------------------------------------- names
def _word(text: str) -> str:
    """One part of a name: a Greek letter, a single letter, or a word set upright when in a subscript."""
    if text in GREEK:
        return "\\" + text
    if text.isalpha() and len(text) > 1:
        return f"\\mathrm{{{text}}}"
    return text


def _sub_word(text: str) -> str:
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", text)
    if m and len(m.group(1)) == 1:                  # h1 -> h_{1}
        return f"{_word(m.group(1))}_{{{m.group(2)}}}"
    if m and m.group(1) in GREEK:
        return f"\\{m.group(1)}_{{{m.group(2)}}}"
    if text.isalpha() and len(text) > 1 and text not in GREEK:
        return f"\\mathrm{{{text}}}"               # total -> \mathrm{total}
    return _word(text)


@functools.lru_cache(maxsize=4096)
def default_display(name: str) -> str:
    """A display name for an identifier without a [latex] entry (a pure function of the name, kept
    per name: every sheet and solution of a bank names the same quantities)."""
    if not name:
        return ""
    lead = len(name) - len(name.lstrip("_"))
    if lead:  # names may start with an underscore
        return "\\mathit{" + "\\_" * lead + "}" + (default_display(name[lead:]) if name[lead:] else "")
    if "_" in name.rstrip("_"):
        base, _, sub = name.rstrip("_").rpartition("_")
        if sub in ACCENTS and base and "_" not in base:
            return f"{ACCENTS[sub]}{{{default_display(base)}}}"
        inner = default_display(base)
        m = re.fullmatch(r"([^_{}]+)_\{([^{}]*)\}", inner)
        if m:                                           # w1_21 -> w_{1,21}
            return f"{m.group(1)}_{{{m.group(2)},{_sub_word(sub)}}}"
        if "_" in inner or "^" in inner:
            inner = "{" + inner + "}"
        return f"{inner}_{{{_sub_word(sub)}}}"
    m = re.fullmatch(r"([A-Za-z]+?)(\d+)", name)
    if m:                                               # w1 -> w_{1}, sigma2 -> \sigma_{2}
        return f"{_word(m.group(1))}_{{{m.group(2)}}}"
    if name in GREEK:
        return "\\" + name
    if name.isalpha() and len(name) > 1:                # a word is set upright: net -> \mathrm{net}
        return f"\\mathrm{{{name}}}"
    return name.rstrip("_") or name


def display_names(spec, graph) -> dict:
    """name -> display LaTeX for every quantity: the spec's [latex] table, else the default.
    `graph` is a `Graph`, or a mapping of the quantities' names (such as `graph.outline`)."""
    out = {n: default_display(n) for n in getattr(graph, "quantities", graph)}
    out.update(spec.latex)
    return out


def brace(d: str) -> str:
    """Wrap a display name so that a sub- or superscript can follow it safely."""
    return d if re.fullmatch(r"\\?[A-Za-z]+", d) else "{" + d + "}"


def with_step(d: str, step: int) -> str:
    return d if not step else f"{brace(d)}^{{({step})}}"


def with_index(d: str, index: tuple, shape: tuple) -> str:
    """Display of entry (i, j) (0-based) of a matrix quantity, 1-based: W_{12}, x_{3}, W_{1,12}."""
    if not index:
        return d
    i, j = index
    r, c = shape
    return indexed(d, (i + 1,) if c == 1 else (j + 1,) if r == 1 else (i + 1, j + 1))


def indexed(d: str, index: tuple) -> str:
    """Display of d[i] / d[i, j] (1-based, as written): z_{2}, W_{12}, W_{1,12}."""
    text = ("," if len(index) > 1 and any(n >= 10 for n in index) else "").join(str(n) for n in index)
    m = _SUBSCRIPTED.fullmatch(d)
    if m:       # a name with a subscript of its own: W_{\mathrm{hidden},11}, W_{1,12} (never W_{hidden}_{11})
        return f"{m.group(1)}_{{{m.group(2)},{text}}}"
    return f"{brace(d)}_{{{text}}}"


# a display name with one subscript at its end (W_{1}, W_{\mathrm{hidden}}), its base without one
_SUBSCRIPTED = re.compile(r"((?:[^_{}]|\{[^_{}]*\})+)_\{((?:[^{}]|\{[^{}]*\})*)\}")


def deriv(of: str, wrt: str, inline: bool = False) -> str:
    """∂of/∂wrt as a fraction (display) or with a slash (inline, headings)."""
    if inline:
        return f"\\partial {of}/\\partial {wrt}"
    return f"\\frac{{\\partial {of}}}{{\\partial {wrt}}}"


_TALL = ("\\frac", "\\begin", "\\sum", "\\sqrt", "\\left", "\\bigl")


def call(name: str, arg: str) -> str:
    """f(x) with no gap between f and its parenthesis (`\\sigma\\left(` leaves one): plain
    parentheses around a flat argument, \\mathopen{}\\left( … \\right)\\mathclose{} around a tall one."""
    if any(t in arg for t in _TALL):
        return f"{name}\\mathopen{{}}\\left({arg}\\right)\\mathclose{{}}"
    return f"{name}({arg})"


def function_name(fn: str) -> str:
    """The LaTeX of the name of a function of the spec's [functions]: f, \\phi, \\operatorname{act}."""
    if fn in GREEK:
        return "\\" + fn
    if len(fn) == 1:
        return fn
    escaped = fn.replace("_", "\\_")
    return f"\\operatorname{{{escaped}}}"


def function_prime(fn: str) -> str:
    """f′'s name: f', \\operatorname{act}'."""
    return function_name(fn) + "'"


def indicator(arg: str) -> str:
    """The derivative of ReLU, the indicator 1[x > 0] (0 at x = 0, derive's stated convention)."""
    if "\\begin{pmatrix}" in arg:    # brackets as tall as the matrices inside them
        return f"\\mathbf{{1}}\\left[{arg} > 0\\right]"
    return f"\\mathbf{{1}}[{arg} > 0]"


# ---------------------------------------------------------------- numbers
def number(text: str, paren: bool = False) -> str:
    """A number as the engine printed it (`-3.6e-5`) in LaTeX; negative ones in parentheses if asked."""
    neg = text.startswith("-")
    body = text[1:] if neg else text
    if "e" in body.lower():
        mant, _, exp = body.lower().partition("e")
        exp = str(int(exp))
        body = f"{mant} \\times 10^{{{exp}}}" if mant != "1" else f"10^{{{exp}}}"
    out = ("-" if neg else "") + body
    return f"({out})" if neg and paren else out


_ROUNDS_TO_ONE = re.compile(r"(?<![\d.])-?1\.0+(?![\d])")


def rounds_to_one(tex: str) -> bool:
    """Does a printed value (or a line of them) contain ±1.000… — a value that is not 1 but
    rounds to it (an exact 1 prints as 1)?  A saturated σ or tanh: 1.00000·(1 − 1.00000) would
    read as 1·0 next to its true value 2.3×10⁻¹¹, so such a line of numbers is not shown."""
    return bool(_ROUNDS_TO_ONE.search(tex))


def fraction(q: Fraction, digits: int = 30) -> str:
    """An exact constant: a short decimal (0.002) or a fraction (\\frac{1}{3}) — the LaTeX of
    `rounding.fraction_text`."""
    text = fraction_text(q, digits)
    if "/" not in text:
        return number(text)
    sign = "-" if q < 0 else ""
    return f"{sign}\\frac{{{abs(q.numerator)}}}{{{q.denominator}}}"


def pmatrix(rows) -> str:
    """rows of LaTeX cells -> a pmatrix."""
    return "\\begin{pmatrix} " + " \\\\ ".join(" & ".join(r) for r in rows) + " \\end{pmatrix}"


def shaped_latex(shaped, transpose: bool = False) -> str:
    """A `solve.Shaped` (scalar or matrix of Numbers) as LaTeX."""
    if shaped.shape == ():
        return number(shaped.values[0].text)
    r, c = shaped.shape
    texts = [v.text for v in shaped.values]
    if any("e" in t for t in texts):   # one style per matrix: no −0.000162118 beside −6.16643×10⁻⁵
        texts = [_scientific(t) if "e" not in t and _below_thousandth(t) else t for t in texts]
    cells = [[number(texts[i * c + j]) for j in range(c)] for i in range(r)]
    if transpose:
        cells = [list(col) for col in zip(*cells)]
    return pmatrix(cells)


def _below_thousandth(text: str) -> bool:
    """A plain decimal of size below 10⁻³ (0.000162118), not 0."""
    t = text.lstrip("-")
    return t.startswith("0.000") and t.strip("0.") != ""


def _scientific(text: str) -> str:
    """A plain decimal in scientific notation with the same significant digits:
    −0.000162118 → −1.62118e-4 (trailing zeros kept: they are significant)."""
    d = Decimal(text)
    sign, digits, exp = d.as_tuple()
    ds = "".join(map(str, digits)).lstrip("0")
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return f"{'-' if sign else ''}{mant}e{d.adjusted()}"


# ---------------------------------------------------------------- SymPy expressions
class DerivePrinter(LatexPrinter):
    """SymPy's LaTeX printer with our names; with `values`, entries print as numbers instead.

    `values(entry) -> str` gives the engine's text of an entry's value (e.g. '0.7485983112').
    """

    def __init__(self, names: dict, values=None, step: int = 0):
        super().__init__({"mul_symbol": "dot"})   # one multiplication convention: a centred dot
        self.names = names
        self.values = values
        self.step = step

    def _as_ordered_terms(self, expr, order=None):
        """Sums with their positive terms first: ŷ − y rather than −y + ŷ (the order is otherwise SymPy's)."""
        terms = list(super()._as_ordered_terms(expr, order=order))
        if isinstance(expr, sp.Add):
            terms.sort(key=lambda t: t.could_extract_minus_sign())
        return terms

    def entry(self, e: Entry) -> str:
        d = with_index(self.names[e.quantity], e.index, e.qshape)
        return with_step(d, e.step or self.step)

    def _print_Symbol(self, expr, style="plain"):
        if isinstance(expr, Entry):
            if self.values is not None:
                return number(self.values(expr), paren=True)
            return self.entry(expr)
        if expr.name == "eta":
            return "\\eta"
        return super()._print_Symbol(expr, style)

    def _fn(self, name: str, expr, exp=None):
        tex = call(name, self._print(expr.args[0]))
        return f"{{{tex}}}^{{{exp}}}" if exp else tex

    def _print_sigmoid(self, expr, exp=None):
        return self._fn("\\sigma", expr, exp)

    def _print_relu(self, expr, exp=None):
        return self._fn("\\operatorname{ReLU}", expr, exp)

    def _print_step(self, expr, exp=None):
        tex = indicator(self._print(expr.args[0]))
        return f"{{{tex}}}^{{{exp}}}" if exp else tex

    def _print_softplus(self, expr, exp=None):
        return self._fn("\\operatorname{softplus}", expr, exp)

    def _print_softmax(self, expr, exp=None):
        # the k-th entry written out: e^{z_k} / (e^{z_1} + … + e^{z_n})
        zs = [self._print(z) for z in expr.vector]
        exps = [f"e^{{{z}}}" for z in zs]
        tex = f"\\frac{{{exps[expr.position - 1]}}}{{{' + '.join(exps)}}}"
        return f"\\left({tex}\\right)^{{{exp}}}" if exp else tex

    def _print_maximum(self, expr, exp=None):
        tex = call("\\max", f"{self._print(expr.args[0])}, {self._print(expr.args[1])}")
        return f"{tex}^{{{exp}}}" if exp else tex

    def _print_at_least(self, expr, exp=None):
        tex = f"\\mathbf{{1}}[{self._print(expr.args[0])} \\geq {self._print(expr.args[1])}]"
        return f"{tex}^{{{exp}}}" if exp else tex

    def _print_Norm2(self, expr, exp=None):
        r, c = int(expr.args[0]), int(expr.args[1])
        cells = [[self._print(expr.args[2 + i * c + j]) for j in range(c)] for i in range(r)]
        tex = f"\\left\\lVert {pmatrix(cells)} \\right\\rVert_{{2}}"
        return f"{tex}^{{{exp}}}" if exp else tex


TIDY_MAX_OPS = 300


def tidy(formula: sp.Expr) -> sp.Expr:
    """A textbook shape for a local-derivative formula: 2*y - 2*t → 2(y − t).  A formula of
    more than TIDY_MAX_OPS operations is left as it is (factoring and checking a degree-100
    polynomial's derivative took half a minute)."""
    if isinstance(formula, sp.Add) and sp.count_ops(formula) <= TIDY_MAX_OPS:
        f = sp.factor_terms(formula)
        if f != formula and sp.expand(f - formula) == 0:
            return f
    return formula


def latex(formula: sp.Expr, names: dict, values=None, step: int = 0) -> str:
    return DerivePrinter(names, values, step).doprint(formula)


def product(parts: list[str]) -> str:
    """Factors (already LaTeX) in the given order, joined by centred dots."""
    return " \\cdot ".join(parts) if parts else "1"


def needs_parens_in_product(formula: sp.Expr) -> bool:
    return isinstance(formula, sp.Add) or (formula.could_extract_minus_sign() and formula != -1)


# ---------------------------------------------------------------- definition trees, in the user's order
@dataclass(frozen=True)
class Piece:
    tex: str
    prec: int
    chunks: tuple = ()     # top-level (operator, tex) pieces where a line may be broken


class PiecePrinter(Printer):
    """LaTeX of definition trees (derive.expr) and matrix-form rules (derive.matrixform MExpr), on
    SymPy's `Printer` protocol (`_print_<Class>` dispatch, settings declared once below), as
    `Piece`s: the text, its precedence and the places a long line may break.

    Trees are printed in the user's own order, symbolically or with numbers substituted:
    `shapes(name)` gives a quantity's shape (to tell a matrix product from an elementwise one);
    `subst(name) -> tex` (or None) gives its value as LaTeX (a number or a pmatrix); `step` marks
    names with ^{(k)} (only those in `stepped`).  Matrix rules are printed symbolically
    (H^T · ∂E/∂P, `loss` the loss's display name) or, given `value(name)` / `adjoint(name)` (a
    `Shaped` each), with the engine's matrices substituted.
    """
    _default_settings = {"names": {}, "shapes": None, "subst": None, "step": 0, "stepped": frozenset(),
                         "loss": "L", "value": None, "adjoint": None, "local": None}

    def __init__(self, settings=None):
        super().__init__(settings)
        s = self._settings
        self.names, self.shapes, self.subst = s["names"], s["shapes"], s["subst"]
        self.step, self.stepped = s["step"], s["stepped"]
        self.loss, self.value, self.adjoint = s["loss"], s["value"], s["adjoint"]

    def emptyPrinter(self, expr):
        raise TypeError(expr)

    def piece(self, node) -> Piece:
        return self._print(node)

    def tex(self, node) -> str:
        return self.piece(node).tex

    def chunks(self, node) -> list:
        """[(operator, tex)] at the top level (a sum or a product), for breaking long lines."""
        p = self.piece(node)
        return list(p.chunks) if p.chunks else [("", p.tex)]

    # shapes, to tell a matrix product from an elementwise one
    def shape(self, node):
        return ex.tree_shape(node, self.shapes)

    @staticmethod
    def wrap(p: Piece, need: int) -> str:
        return p.tex if p.prec >= need else f"\\left({p.tex}\\right)"

    # ---------------------------------------------------------------- definition trees
    def _print_Num(self, node) -> Piece:
        return Piece(number(_num_text(node)), ATOM)

    def _print_Name(self, node) -> Piece:
        if self.subst is not None:
            v = self.subst(node.id)
            if v is not None:
                return Piece(v, NEG if v.startswith("-") else ATOM)
        d = self.names[node.id]
        if node.id in self.stepped:
            d = with_step(d, self.step)
        return Piece(d, ATOM)

    def _print_Neg(self, node) -> Piece:
        inner = self.piece(node.operand)
        return Piece("-" + self.wrap(inner, MUL), NEG)

    def _print_Index(self, node) -> Piece:
        b = node.base
        if isinstance(b, ex.Name) and self.subst is None:
            d = self.names[b.id]
            if b.id in self.stepped:
                d = with_step(d, self.step)
            return Piece(indexed(d, node.index), ATOM)
        inner = self.piece(b)
        return Piece(f"{{{self.wrap(inner, ATOM)}}}_{{{','.join(str(i) for i in node.index)}}}", ATOM)

    def _print_Bin(self, node) -> Piece:
        if ex.is_chain(node):   # along the chain (it can be 1 000 terms long), not down it
            first, rest = ex.spine(node)
            acc, shape = self.piece(first), self.shape(first)
            for op, operand in rest:
                right_shape = self.shape(operand)
                acc = self._join(op, acc, self.piece(operand), shape, right_shape)
                shape = ex.combine_shape(op, shape, right_shape)
            return acc
        return self._join(node.op, self.piece(node.left), self.piece(node.right),
                          self.shape(node.left), self.shape(node.right))

    def _join(self, op: str, left: Piece, right: Piece, left_shape, right_shape) -> Piece:
        """left op right, from the pieces of the two operands."""
        if op in "+-":
            lt = left.tex if left.prec >= ADD else f"\\left({left.tex}\\right)"
            need = ADD + 1 if op == "-" else ADD
            rt = right.tex if right.prec >= need and right.prec != NEG else f"\\left({right.tex}\\right)"
            sym = "+" if op == "+" else "-"
            chunks = (list(left.chunks) if left.chunks and left.prec == ADD else [("", lt)]) + [(sym, rt)]
            return Piece(f"{lt} {sym} {rt}", ADD, tuple(chunks))
        if op == "/":
            return Piece(f"\\frac{{{left.tex}}}{{{right.tex}}}", ATOM)
        if op == "^":
            bt = left.tex if left.prec >= ATOM else f"\\left({left.tex}\\right)"
            return Piece(f"{bt}^{{{right.tex}}}", POW)
        # * and @
        # a negative number is a factor in parentheses: 0.4·(−0.3) + (−0.5)·0.8, not + −0.5·0.8
        bare_negative = left.prec == NEG and self.subst is None
        lt = left.tex if left.prec >= MUL or bare_negative else f"\\left({left.tex}\\right)"
        rt = right.tex if right.prec >= MUL and right.prec != NEG else f"\\left({right.tex}\\right)"
        both_matrices = bool(left_shape) and bool(right_shape)
        # one multiplication convention: a centred dot (⊙ for an elementwise product of matrices)
        sym = "\\odot" if op == "*" and both_matrices else "\\cdot"
        chunks = (list(left.chunks) if left.chunks and left.prec == MUL else [("", lt)]) + [(sym, rt)]
        return Piece(f"{lt} {sym} {rt}", MUL, tuple(chunks))

    def _print_Call(self, node) -> Piece:
        fn, arg = node.fn, node.args[0]
        a = self.piece(arg)
        if fn == "max":
            return Piece(f"\\max\\left({a.tex}, {self.piece(node.args[1]).tex}\\right)", ATOM)
        if fn == "abs":
            return Piece(f"\\left|{a.tex}\\right|", ATOM)
        if fn == "exp":
            return Piece(f"e^{{{a.tex}}}", POW)
        if fn == "transpose":
            at = a.tex if a.prec >= ATOM else f"\\left({a.tex}\\right)"
            return Piece(f"{{{at}}}^{{\\top}}", POW)
        if fn == "sqrt":
            return Piece(f"\\sqrt{{{a.tex}}}", ATOM)
        if fn == "frobenius":
            return Piece(f"\\left\\lVert {a.tex} \\right\\rVert_{{F}}", ATOM)
        if fn == "norm2":
            return Piece(f"\\left\\lVert {a.tex} \\right\\rVert_{{2}}", ATOM)
        if fn == "sum":
            at = a.tex if a.prec >= POW else f"\\left({a.tex}\\right)"
            return Piece(f"\\sum {at}", MUL)
        name = {"sigmoid": "\\sigma", "tanh": "\\tanh", "log": "\\log", "relu": "\\operatorname{ReLU}",
                "softplus": "\\operatorname{softplus}", "mean": "\\operatorname{mean}",
                "softmax": "\\operatorname{softmax}"}.get(fn) or function_name(fn)   # else one of [functions]
        if _is_pmatrix(a.tex):  # σ of a written-out matrix: its own parentheses suffice
            return Piece(f"{name} {a.tex}", ATOM)
        chunks = ()
        if a.chunks and a.prec in (ADD, MUL) and width(a.tex) > BREAKABLE_ARGUMENT:
            # σ(w1 x1 + … + w500 x500) is wider than any page: the line may break inside it, so
            # its parentheses are \bigl( … \bigr), which (unlike \left … \right) may span lines
            (op0, t0), *rest = a.chunks
            chunks = ((op0, f"{name}\\bigl({t0}"), *rest[:-1], (rest[-1][0], f"{rest[-1][1]}\\bigr)")) \
                if rest else ()
        return Piece(call(name, a.tex), ATOM, chunks)

    # ---------------------------------------------------------------- matrix-form rules
    @property
    def numeric(self) -> bool:
        return self.value is not None

    def _print_MSym(self, m) -> Piece:
        if self.numeric:
            s = (self.adjoint if m.adjoint else self.value)(m.name)
            tex = shaped_latex(s)
            return Piece(tex, NEG if tex.startswith("-") else ATOM)
        d = self.names[m.name]
        return Piece(deriv(self.loss, d) if m.adjoint else d, ATOM)

    def _print_MNum(self, m) -> Piece:
        tex = fraction(m.value)
        return Piece(tex, NEG if tex.startswith("-") else ATOM)

    def _print_MT(self, m) -> Piece:
        if self.numeric and isinstance(m.x, mf.MSym):
            s = (self.adjoint if m.x.adjoint else self.value)(m.x.name)
            return Piece(shaped_latex(s, transpose=True), ATOM)
        x = self.piece(m.x)
        xt = x.tex if x.prec >= ATOM and not x.tex.startswith("\\frac") else f"\\left({x.tex}\\right)"
        return Piece(f"{{{xt}}}^{{\\top}}", POW)

    def _print_MMul(self, m) -> Piece:
        """A matrix product (·) or an elementwise one (⊙, MHad), or a number times a matrix."""
        if isinstance(m, mf.MHad) and isinstance(m.a, mf.MNum):
            c = m.a.value
            b = self.piece(m.b)
            bt = b.tex if b.prec >= MUL and b.prec != NEG else f"\\left({b.tex}\\right)"
            if c == -1:
                return Piece("-" + bt, NEG)
            return Piece(f"{fraction(c)} {bt}" if not self.numeric else f"{fraction(c)} \\cdot {bt}", MUL,
                         (("", fraction(c)), ("\\cdot", bt)) if self.numeric else ())
        # a reduction (Σt) is a number: p · Σⱼ tⱼ, not an elementwise product
        scalar = any(isinstance(x, mf.MFun) and x.fn == "sum" for x in (m.a, m.b))
        sym = "\\cdot" if isinstance(m, mf.MMul) or scalar else "\\odot"
        a, b = self.piece(m.a), self.piece(m.b)
        # a matrix product inside an elementwise one (or the other way round) keeps its
        # parentheses: (Wᵀ · δ) ⊙ a, not Wᵀ · δ ⊙ a
        mixed_a = isinstance(m.a, (mf.MMul, mf.MHad)) and type(m.a) is not type(m) \
            and not (isinstance(m.a, mf.MHad) and isinstance(m.a.a, mf.MNum))
        at = a.tex if a.prec >= MUL and a.prec != NEG and not mixed_a else f"\\left({a.tex}\\right)"
        bt = b.tex if b.prec > MUL else f"\\left({b.tex}\\right)"
        if b.prec == MUL and type(m.b) is type(m) and not isinstance(getattr(m.b, "a", None), mf.MNum):
            bt = b.tex  # associative: A ⊙ (B ⊙ C) = A ⊙ B ⊙ C
            bchunks = list(b.chunks) if b.chunks else [("", bt)]
            bchunks[0] = (sym, bchunks[0][1])
        else:
            bchunks = [(sym, bt)]
        achunks = list(a.chunks) if a.chunks and a.prec == MUL and not mixed_a else [("", at)]
        return Piece(f"{at} {sym} {bt}", MUL, tuple(achunks + bchunks))

    _print_MHad = _print_MMul

    def _print_MAdd(self, m) -> Piece:
        a, b = self.piece(m.a), self.piece(m.b)
        sym = "+" if m.sign > 0 else "-"
        bt = b.tex if b.prec > ADD and b.prec != NEG else f"\\left({b.tex}\\right)"
        achunks = list(a.chunks) if a.chunks and a.prec == ADD else [("", a.tex)]
        return Piece(f"{a.tex} {sym} {bt}", ADD, tuple(achunks + [(sym, bt)]))

    def _print_MPow(self, m) -> Piece:
        x = self.piece(m.x)
        xt = x.tex if x.prec >= ATOM else f"\\left({x.tex}\\right)"
        return Piece(f"{xt}^{{{fraction(m.n)}}}", POW)

    def _print_MFun(self, m) -> Piece:
        if m.fn == "ones":
            return Piece("1", ATOM)
        if m.fn == "step" and self.numeric and self._settings["local"] is not None:
            shaped = self._settings["local"](m)     # ReLU′'s 0s and 1s, not 1[(W)·(x) > 0] unevaluated
            if shaped is not None:
                return Piece(shaped_latex(shaped), ATOM)
        x = self.piece(m.x)
        if m.fn == "step":
            return Piece(indicator(x.tex), ATOM)
        if m.fn == "sum" and isinstance(m.x, mf.MSym) and not self.numeric:
            return Piece(f"\\sum_{{j}} {brace(x.tex)}_{{j}}", ATOM)
        name = {"sigmoid": "\\sigma", "tanh": "\\tanh", "exp": "\\exp", "log": "\\log",
                "relu": "\\operatorname{ReLU}",
                "sum": "\\operatorname{sum}"}.get(m.fn, f"\\operatorname{{{m.fn}}}")
        if m.fn not in ex.FUNCTIONS and m.fn not in ("ones", "step"):
            name = function_name(m.fn)    # one of the spec's [functions]
        return Piece(call(name, x.tex), ATOM)

    def _print_MDer(self, m) -> Piece:
        """f′(A) of a function of [functions]; with numbers, its value (`local(m)`, a Shaped)."""
        if self.numeric and self._settings["local"] is not None:
            shaped = self._settings["local"](m)
            if shaped is not None:
                tex = shaped_latex(shaped)
                return Piece(tex, NEG if tex.startswith("-") else ATOM)
        x = self.piece(m.x)
        return Piece(call(function_prime(m.fn), x.tex), ATOM)


class TreePrinter(PiecePrinter):
    """A `PiecePrinter` for definition trees (see there for the arguments)."""

    def __init__(self, names: dict, shapes, subst=None, step: int = 0, stepped=frozenset()):
        super().__init__({"names": names, "shapes": shapes, "subst": subst, "step": step, "stepped": stepped})


BREAKABLE_ARGUMENT = 75.0   # a function's argument wider than a display line (render.LINE_WIDTH) may break


def _num_text(node: ex.Num) -> str:
    return node.text if not node.text.startswith(".") else "0" + node.text


def _is_pmatrix(tex: str) -> bool:
    return tex.startswith("\\begin{pmatrix}") and tex.endswith("\\end{pmatrix}") \
        and tex.count("\\begin{pmatrix}") == 1


# ---------------------------------------------------------------- matrix-form rules
class MatrixPrinter(PiecePrinter):
    """A `PiecePrinter` for matrix-form rules (see there for the arguments)."""

    def __init__(self, names: dict, loss: str, value=None, adjoint=None, local=None):
        super().__init__({"names": names, "loss": loss, "value": value, "adjoint": adjoint, "local": local})


# ---------------------------------------------------------------- claims as written
class ClaimPrinter(Printer):
    """LaTeX of a claim's tree (derive.expr, with NAME@k and dA/dB leaves) as a reader wrote it:
    every product (matrix products too) with an explicit centred dot, `prec` the binding the
    context needs (parentheses where the tree binds more loosely).  `names` gives display names;
    `inline` writes derivatives with a slash, ∂L/∂w (headings, sentences), not as fractions."""
    _default_settings = {"names": {}, "inline": False}

    def emptyPrinter(self, expr):
        raise TypeError(expr)

    def _name(self, n: str, step: int = 0) -> str:
        d = self._settings["names"].get(n, n)
        return with_step(d, step) if step else d

    def _print_Num(self, node, prec=0):
        return number(node.text if node.text and not node.text.startswith(".") else str(node.value))

    def _print_Name(self, node, prec=0):
        return self._name(node.id)

    def _print_AtStep(self, node, prec=0):
        return self._name(node.name, node.step)

    def _print_Deriv(self, node, prec=0):
        return deriv(self._name(node.of), self._name(node.wrt, node.step), self._settings["inline"])

    def _print_Index(self, node, prec=0):
        b = node.base
        if isinstance(b, ex.Deriv):    # dL/dW[1, 2]: ∂L/∂W₁₂
            return deriv(self._name(b.of), with_step(indexed(self._name(b.wrt), node.index), b.step)
                         if b.step else indexed(self._name(b.wrt), node.index), self._settings["inline"])
        if isinstance(b, ex.Name):
            return indexed(self._name(b.id), node.index)
        if isinstance(b, ex.AtStep):
            return with_step(indexed(self._name(b.name), node.index), b.step)
        return f"{{{self._print(b, prec=5)}}}_{{{','.join(str(i) for i in node.index)}}}"

    def _print_Neg(self, node, prec=0):
        return _paren_if("-" + self._print(node.operand, prec=3), prec > 2)

    def _print_Bin(self, node, prec=0):
        p = self._print
        if ex.is_chain(node):   # along the chain, not down it (a sum can have 1 000 terms)
            first, rest = ex.spine(node)
            if rest[0][0] in "+-":
                text = p(first, prec=1)
                for op, t in rest:
                    text = f"{text} {op} {p(t, prec=2 if op == '-' else 1)}"
                return _paren_if(text, prec > 1)
            text = p(first, prec=0 if rest[0][0] == "/" else 2)
            for op, t in rest:
                if op == "/":
                    text = f"\\frac{{{text}}}{{{p(t)}}}"
                else:
                    text = f"{text} \\cdot {p(t, prec=3)}"
            return _paren_if(text, prec > 2 and rest[-1][0] != "/")
        op = node.op
        if op in "+-":
            left, right = p(node.left, prec=1), p(node.right, prec=2 if op == "-" else 1)
            return _paren_if(f"{left} {op} {right}", prec > 1)
        if op == "/":
            return f"\\frac{{{p(node.left)}}}{{{p(node.right)}}}"
        if op == "^":
            return f"{{{p(node.left, prec=5)}}}^{{{p(node.right)}}}"
        left, right = p(node.left, prec=2), p(node.right, prec=3)
        return _paren_if(f"{left} \\cdot {right}", prec > 2)

    def _print_Call(self, node, prec=0):
        arg = self._print(node.args[0])
        fn = node.fn
        if fn == "max":
            return f"\\max\\left({arg}, {self._print(node.args[1])}\\right)"
        if fn == "abs":
            return f"\\left|{arg}\\right|"
        if fn == "exp":
            return f"e^{{{arg}}}"
        if fn == "transpose":
            return f"{{{self._print(node.args[0], prec=5)}}}^{{\\top}}"
        if fn == "sqrt":
            return f"\\sqrt{{{arg}}}"
        if fn == "norm2":
            return f"\\left\\lVert {arg} \\right\\rVert_{{2}}"
        if fn == "frobenius":
            return f"\\left\\lVert {arg} \\right\\rVert_{{F}}"
        name = {"sigmoid": "\\sigma", "tanh": "\\tanh", "log": "\\log", "relu": "\\operatorname{ReLU}",
                "softplus": "\\operatorname{softplus}", "sum": "\\sum", "mean": "\\operatorname{mean}",
                "softmax": "\\operatorname{softmax}"}[fn]
        return call(name, arg)


def _paren_if(t: str, yes: bool) -> str:
    return f"\\left({t}\\right)" if yes else t


# ---------------------------------------------------------------- formulas as text
_TEXT_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "^": 4}


class TextPrinter(Printer):
    """Formulas as text in the expression language, on SymPy's `Printer` protocol (`_print_<Class>`
    dispatch): SymPy expressions in textbook order (`y*(1 - y)*w7`, `a - b`; with `textbook` off,
    SymPy's own order-free `sstr`), definition trees of `derive.expr` (the text parses back to the
    same tree) and matrix-form rules of `derive.matrixform` (`dE/dP @ transpose(H)`, with `loss`
    the loss's name).  Numbers are written by `rounding.fraction_text`."""
    _default_settings = {"order": None, "textbook": True, "loss": "L"}

    def emptyPrinter(self, expr):
        if isinstance(expr, sp.Basic):
            return sp.sstr(expr, order=self._settings["order"]).replace("**", "^")
        return str(expr)

    # SymPy expressions
    def _print_Mul(self, e):
        if not self._settings["textbook"]:
            return self.emptyPrinter(e)
        coeff, rest = e.as_coeff_mul()
        factors = sorted(rest, key=lambda f: (2 if isinstance(f, sp.Add) else 1 if not f.is_Symbol else 0))
        parts = []
        for f in factors:
            t = self._print(f)
            if isinstance(f, sp.Add) or (isinstance(f, sp.Pow) and f.exp.is_negative):
                t = f"({t})"
            parts.append(t)
        body = "*".join(parts)
        if coeff == 1:
            return body
        if coeff == -1:
            return "-" + body
        return f"{sp.sstr(coeff)}*{body}"

    def _print_Add(self, e):
        if not self._settings["textbook"]:
            return self.emptyPrinter(e)
        pos = [a for a in e.args if not a.could_extract_minus_sign()]
        neg = [a for a in e.args if a.could_extract_minus_sign()]
        if not pos:
            return "-(" + " + ".join(self._print(-a) for a in neg) + ")"
        text = " + ".join(self._print(a) for a in pos)
        for a in neg:
            t = self._print(-a)
            text += f" - ({t})" if isinstance(-a, sp.Add) else f" - {t}"
        return text

    def _print_Pow(self, e):
        if not self._settings["textbook"] or e.exp.is_negative:
            return self.emptyPrinter(e)
        b = self._print(e.base)
        if not (e.base.is_Symbol or e.base.is_Function):
            b = f"({b})"
        return f"{b}^{sp.sstr(e.exp)}"

    # definition trees (derive.expr)
    @staticmethod
    def _prec(node) -> int:
        if isinstance(node, ex.Bin):
            return _TEXT_PREC[node.op]
        if isinstance(node, ex.Neg):
            return 3
        return 5

    def _child(self, node) -> str:
        text = self._print(node)
        stepped = isinstance(node, ex.AtStep) or (isinstance(node, ex.Deriv) and node.step)
        return f"({text})" if stepped else text

    def _print_Num(self, node):
        if re.fullmatch(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", node.text or ""):
            return node.text
        return fraction_text(node.value, plain=True)

    def _print_Name(self, node):
        return node.id

    def _print_AtStep(self, node):
        return f"{node.name}@{node.step}"

    def _print_Deriv(self, node):
        return f"d{node.of}/d{node.wrt}" + (f"@{node.step}" if node.step else "")

    def _print_Index(self, node):
        b = node.base
        inner = self._print(b)
        if isinstance(b, ex.Deriv) and b.step:    # dL/dW[1, 2]@1
            return f"d{b.of}/d{b.wrt}[{', '.join(map(str, node.index))}]@{b.step}"
        if isinstance(b, ex.AtStep):
            return f"{b.name}[{', '.join(map(str, node.index))}]@{b.step}"
        if not isinstance(b, (ex.Name, ex.Deriv)):
            inner = f"({inner})"
        return f"{inner}[{', '.join(map(str, node.index))}]"

    def _print_softmax(self, e):
        zs = e.vector
        terms = [f"exp({self._print(z)})" for z in zs]
        return f"{terms[e.position - 1]}/({' + '.join(terms)})"

    def _print_maximum(self, e):
        return f"max({self._print(e.args[0])}, {self._print(e.args[1])})"

    def _print_Abs(self, e):
        return f"abs({self._print(e.args[0])})"

    def _print_Neg(self, node):
        inner = self._print(node.operand)
        if self._prec(node.operand) < 4 or isinstance(node.operand, (ex.Deriv, ex.AtStep)):
            inner = f"({inner})"
        return "-" + inner

    def _print_Call(self, node):
        return f"{node.fn}(" + ", ".join(self._print(a) for a in node.args) + ")"

    def _print_Bin(self, node):
        prec = self._prec
        if ex.is_chain(node) and node.op != "*.":   # along the chain, not down it
            first, rest = ex.spine(node)
            p = _TEXT_PREC[node.op]
            text = self._child(first)
            if prec(first) < p:
                text = f"({text})"
            sep = " " if p == 1 else ""
            for op, operand in rest:
                right = self._child(operand)
                if prec(operand) <= p or (isinstance(operand, ex.Deriv) and op in "/"):
                    right = f"({right})"
                text = f"{text}{sep}{op}{sep}{right}"
            return text
        p = _TEXT_PREC[node.op]
        left, right = self._child(node.left), self._child(node.right)
        lp, rp = prec(node.left), prec(node.right)
        if node.op == "^":
            if lp <= p or isinstance(node.left, (ex.Deriv, ex.Neg)):
                left = f"({left})"
            if rp < 3:
                right = f"({right})"
            return f"{left}^{right}"
        if lp < p:
            left = f"({left})"
        if rp <= p or (isinstance(node.right, ex.Deriv) and node.op in "/"):
            right = f"({right})"
        sep = " " if p == 1 else ""
        return f"{left}{sep}{node.op}{sep}{right}"

    # matrix-form rules (derive.matrixform)
    def _wrapped(self, m) -> str:
        text = self._print(m)
        if isinstance(m, mf.MAdd) or (isinstance(m, mf.MSym) and m.adjoint):
            return f"({text})"
        return text

    def _print_MSym(self, m):
        return f"d{self._settings['loss']}/d{m.name}" if m.adjoint else m.name

    def _print_MNum(self, m):
        return fraction_text(m.value)

    def _print_MT(self, m):
        return f"transpose({self._print(m.x)})"

    def _print_MMul(self, m):
        return f"{self._wrapped(m.a)} @ {self._wrapped(m.b)}"

    def _print_MHad(self, m):
        if isinstance(m.a, mf.MNum) and m.a.value == -1:
            return f"-{self._wrapped(m.b)}"
        return f"{self._wrapped(m.a)}*{self._wrapped(m.b)}"

    def _print_MAdd(self, m):
        return f"{self._print(m.a)} {'+' if m.sign > 0 else '-'} {self._wrapped(m.b)}"

    def _print_MPow(self, m):
        return f"{self._wrapped(m.x)}^{fraction_text(m.n)}"

    def _print_MFun(self, m):
        if m.fn == "ones":
            return "1"
        return f"{m.fn}({self._print(m.x)})"

    def _print_MDer(self, m):
        return f"{m.fn}'({self._print(m.x)})"


def text(formula, **settings) -> str:
    """A SymPy expression, definition tree or matrix-form rule as text (see `TextPrinter`)."""
    return TextPrinter(settings).doprint(formula)


# ---------------------------------------------------------------- chain-rule formulas
class ChainPrinter(Printer):
    """A chain-rule formula of `formulas.chain_formula` — ("prod", [items]), ("sum", [terms]) or a
    SymPy factor — in textbook order, on SymPy's `Printer` protocol: one printer for its text
    (`chain_text`: `2*(y_hat - y)*y_hat*(1 - y_hat)*w7`) and its LaTeX (`chain_latex`).  Settings:
    `leaf(expr) -> str` prints a factor, `paren(expr, printed)` says whether a factor needs
    parentheses in a product; `times`, `open`/`close` the product sign and parentheses; `flatten`
    merges nested products (and one-term sums) into one; `bare_single` prints a one-factor product
    without parentheses; `zero` is an empty sum."""
    _default_settings = {"leaf": str, "paren": None, "times": "*", "open": "(", "close": ")",
                         "flatten": False, "bare_single": False, "zero": "0"}

    def emptyPrinter(self, expr):
        return self._settings["leaf"](expr)

    def _print_tuple(self, node):
        s = self._settings
        kind, items = node
        if kind == "sum":
            return " + ".join(self._print(t) for t in items) or s["zero"]
        items = _flat_product(node) if s["flatten"] else list(items)
        items = [it for it in items if not (not isinstance(it, tuple) and it == 1)]
        if len(items) == 1 and s["bare_single"]:
            return self._print(items[0])
        parts = []
        for it in items:
            t = self._print(it)
            if (isinstance(it, tuple) and it[0] == "sum" and len(it[1]) > 1) or \
                    (not isinstance(it, tuple) and s["paren"] is not None and s["paren"](it, t)):
                t = f"{s['open']}{t}{s['close']}"
            parts.append(t)
        return s["times"].join(parts) if parts else "1"


def _flat_product(node) -> list:
    out = []
    for it in node[1]:
        if isinstance(it, tuple) and it[0] == "prod":
            out += _flat_product(it)
        elif isinstance(it, tuple) and it[0] == "sum" and len(it[1]) == 1:
            inner = it[1][0]
            out += _flat_product(inner) if isinstance(inner, tuple) and inner[0] == "prod" else [inner]
        else:
            out.append(it)
    return out


def chain_text(node) -> str:
    """A chain-rule formula as text in the expression language (`ChainPrinter`)."""
    return ChainPrinter({"leaf": text, "flatten": True, "bare_single": True,
                         "paren": lambda e, t: isinstance(e, sp.Add) or t.startswith("-")}).doprint(node)


def chain_latex(node, names: dict, values=None) -> str:
    """A chain-rule formula as LaTeX, factors by `latex` (tidied when no values are given)."""
    leaf = (lambda e: latex(tidy(e), names)) if values is None else (lambda e: latex(e, names, values))
    return ChainPrinter({"leaf": leaf, "times": " \\cdot ", "open": "\\left(", "close": "\\right)",
                         "zero": "", "paren": lambda e, t: needs_parens_in_product(e)}).doprint(node)


# ---------------------------------------------------------------- width estimate
_CMD_WIDTH = {
    "cdot": 1.6, "odot": 2.2, "approx": 2.4, "times": 2.2, "partial": 1.1, "quad": 2.0, "qquad": 4.0,
    "sigma": 1.1, "eta": 1.0, "top": 1.0, "left": 0.3, "right": 0.3, "lVert": 0.8, "rVert": 0.8,
    "sum": 2.0, "log": 2.4, "tanh": 3.4, "exp": 2.6, ",": 0.3, ";": 0.5, "!": -0.2, " ": 0.6,
    "hat": 0.0, "bar": 0.0, "tilde": 0.0, "vec": 0.0, "dot": 0.0, "mathrm": 0.0, "mathit": 0.0,
    "mathbf": 0.0, "operatorname": 0.0, "text": 0.0, "boldsymbol": 0.0, "mathsf": 0.0, "mathcal": 0.0,
    "_": 0.9, "ddot": 0.0, "widehat": 0.0, "overline": 0.0, "leftarrow": 2.4, "to": 2.2,
}


def _plain_width(ch: str) -> float:
    """The weight of a character that is not {, _, ^ or \\ (scaled by its level)."""
    if ch == " " or ch == "&":
        return 0.0
    if ch in "=<>":
        return 2.4
    if ch in "+-":
        return 2.2
    if ch in "()[]|":
        return 0.5
    if ch in ".,":
        return 0.4
    return 1.3 if ch.isupper() else 1.0


class _CharWidths(dict):
    """char -> `_plain_width`, filled on first use; None for the characters `_Width.token` parses."""

    def __missing__(self, ch):
        w = self[ch] = None if ch in "{_^\\" else _plain_width(ch)
        return w


_CHAR_WIDTH = _CharWidths()
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")     # matched at a position, not on a copy of the rest
_BRACED = re.compile(r"\{([^{}]*)\}")


@functools.lru_cache(maxsize=1 << 16)
def width(tex: str) -> float:
    """A rough width of math LaTeX in 'characters' (a digit ≈ 1), enough to choose line breaks.
    A pure function of the text, kept per text (line breaking measures the same pieces often)."""
    return _Width(tex).run()


class _Width:
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
        t = self.t
        n = len(t)
        while self.i < n:
            ch = t[self.i]
            if stop and ch == stop:
                break
            w = _CHAR_WIDTH[ch]
            if w is None:
                total += self.token(scale)
            else:                         # a plain character: token's own weight, inline
                self.i += 1
                total += w * scale
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
            m = _COMMAND.match(t, self.i)
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
            return _CMD_WIDTH.get(cmd, 1.1) * scale
        self.i += 1
        return _plain_width(ch) * scale

    def _braced_text(self) -> str:
        m = _BRACED.match(self.t, self.i)
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
                cols[j] = max(cols[j], width(cell.strip()) * scale)
        return sum(cols) + 2.3 * scale * (ncols - 1) + 2.8 * scale

"""A safe reader of the LaTeX that hand derivations write, into the tree of `derive.expr`.

Takes one formula as documents write it (`\\sigma(z_1)(1-\\sigma(z_1)) \\cdot x_1`) and the spec
whose names it uses; gives the same immutable tree as `derive.expr` (Num, Name, Neg, Bin, Call,
Deriv, AtStep), which the engine turns into SymPy (`derive.graph.to_sympy`, `derive.quantity`).
Nothing is evaluated: a hand-written tokenizer and recursive-descent parser accept only the
subset below, and any other command (`\\input`, `\\def`, `\\write18`, …) is an error with a column.

Understood:
- numbers `0.5`, `120`; `+ - ^`, unary minus; `\\cdot`, `\\times`, `*`, `/`, `\\div`, `\\odot`,
  `\\circ` (elementwise) and implicit multiplication (`2(y-\\hat{y})`, `w_7 h_1`);
- grouping `( )`, `[ ]`, `{ }`, `\\left( … \\right)` (also `\\left[`, `\\bigl(` …);
- `\\frac{a}{b}` (`\\dfrac`, `\\tfrac`), `\\sqrt{x}`, `e^{x}` and `\\exp(x)` → exp, `\\ln`/`\\log`,
  `\\tanh`, `\\sigma(x)` → sigmoid, `\\sigma'(x)` → σ(x)(1 − σ(x)); spelled-out function names
  (`sigmoid(x)`, `\\mathrm{relu}(x)`);
- derivatives: `\\frac{dL}{d\\hat{y}}`, `\\frac{\\partial E}{\\partial w_5}`, `\\partial E/\\partial w_5`,
  `dE/dw5` → Deriv; a superscript `^{new}` (`^{(1)}`) on a name is its value after one step
  (AtStep), `^{old}` is the value before;
- superscript `T`, `\\top`, `\\intercal` → transpose;
- names: `w_{1}`, `w_1` and `w1` are one name; multi-letter names (`net_{h_1}`, `out_{o1}`),
  accents and fonts (`\\hat{y}`, `\\mathrm{sum}_{h_1}`, `\\mathbf{W}_{\\text{hidden}}`) are matched to
  the spec's names and to its [latex] display names by a canonical key (letters and digits with
  the braces, underscores and font commands removed; accents and Greek letters by name);
  `\\eta` and `\\alpha` (when not names of the spec) are the spec's learning rate;
- Unicode as documents paste it: σ η α ∂ · × − ′ ŷ.

Decisions:
- A product of two matrices (by shape, when a graph is given) is the matrix product `@`
  when the inner dimensions agree — what `\\mathbf{W}\\cdot\\mathbf{x}` means in the seeds — and
  elementwise otherwise; `\\odot`/`\\circ` always mean elementwise.
- A run of letters that is not one name is split into names (`xy` → x·y) only when every piece
  is a name; otherwise it is an "unknown name" error naming the run.
- The letter `e` followed by `^` is Euler's number unless the spec has a name `e`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from . import expr as ex
from .errors import DeriveError, LimitError
from .escape import GREEK
from .printer import text as formula_text
from .rounding import fraction_text

MAX_LATEX_CHARS = 20_000
MAX_NESTING = 100

ACCENTS = {"hat", "widehat", "bar", "overline", "tilde", "widetilde", "vec", "dot", "ddot"}
FONTS = {"mathrm", "text", "textrm", "mathbf", "mathit", "mathsf", "mathcal", "boldsymbol",
         "operatorname", "bm", "textbf", "textit", "mathnormal"}
SPACING = {",", ";", ":", "!", " ", "quad", "qquad", "thinspace", "medspace", "thickspace",
           "displaystyle", "textstyle", "limits", "nolimits"}
SIZES = {"left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr",
         "biggl", "biggr", "Biggl", "Biggr", "middle"}
MUL_COMMANDS = {"cdot": "*", "times": "*", "ast": "*", "div": "/", "odot": "*.", "circ": "*.",
                "bullet": "*"}
FUNCTION_COMMANDS = {"exp": "exp", "ln": "log", "log": "log", "tanh": "tanh", "sqrt": "sqrt"}
TEXT_FUNCTION_ALIASES = {"ReLU": "relu", "Relu": "relu", "ln": "log", "T": "transpose"}
LEARNING_RATE_SYMBOLS = ("eta", "alpha")

UNICODE = {
    "σ": "\\sigma ", "η": "\\eta ", "α": "\\alpha ", "∂": "\\partial ", "·": "\\cdot ", "⋅": "\\cdot ",
    "×": "\\times ", "−": "-", "–": "-", "′": "'", "ŷ": "\\hat{y}", "δ": "\\delta ", "Δ": "\\Delta ",
    "⊙": "\\odot ", "∘": "\\circ ", "ᵀ": "^{T}", "²": "^{2}", "（": "(", "）": ")", "\u00a0": " ",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<command>\\(?:[A-Za-z]+|.))
  | (?P<number>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)
  | (?P<letter>[A-Za-z])
  | (?P<op>[-+*/^_()\[\]{}',=|])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Tok:
    kind: str       # command | number | letter | op | end
    text: str       # for commands: the name without the backslash
    column: int     # 1-based, in the text after Unicode replacement
    space_before: bool


def tokenize(text: str) -> list[Tok]:
    if not isinstance(text, str):
        raise DeriveError("a LaTeX formula must be a string")
    if len(text) > MAX_LATEX_CHARS:
        raise LimitError(f"LaTeX formula is {len(text)} characters long; the limit is {MAX_LATEX_CHARS}")
    text = ex.ascii_numerals(text)   # ０.５, U+2212 −: as everywhere (see expr.ascii_numerals)
    for ch, repl in UNICODE.items():
        text = text.replace(ch, repl)
    toks: list[Tok] = []
    pos, space = 0, False
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise DeriveError(f"unexpected character {text[pos]!r} in LaTeX", column=pos + 1)
        kind, val = m.lastgroup, m.group()
        if kind == "ws":
            space = True
        else:
            if kind == "command":
                name = val[1:]
                if name in SPACING:
                    space = True
                    pos = m.end()
                    continue
                val = name
            toks.append(Tok(kind, val, pos + 1, space))
            space = False
        pos = m.end()
    toks.append(Tok("end", "", len(text) + 1, space))
    return toks


# ---------------------------------------------------------------- names
def canonical(text: str) -> str:
    """The key a name is matched by: `w_{1}`, `w_1`, `w1` → 'w1'; `\\hat{y}` → 'haty'."""
    out = []
    for t in tokenize(text)[:-1]:
        if t.kind == "command":
            if t.text in FONTS or t.text in SIZES:
                continue
            out.append(t.text)
        elif t.kind in ("letter", "number"):
            out.append(t.text.replace(".", ""))
        elif t.kind == "op" and t.text in "{}_":
            continue
        else:
            out.append(t.text)
    return "".join(out)


class Names:
    """The spec's names, found by canonical key (spec name, [latex] display name, `X_hat` ↔ \\hat{X})."""

    def __init__(self, spec, graph=None):
        self.spec = spec
        self.graph = graph
        self.by_key: dict[str, set] = {}
        self.exact = set(spec.all_names())
        for name in spec.all_names():
            self._add(name.replace("_", ""), name)
            if name.endswith("_hat"):
                self._add("hat" + name[:-4].replace("_", ""), name)
        for name, disp in spec.latex.items():
            try:
                self._add(canonical(disp), name)
            except DeriveError:
                pass

    def _add(self, key: str, name: str):
        self.by_key.setdefault(key, set()).add(name)

    def find(self, key: str):
        """The spec name for a canonical key, or None (ambiguous keys prefer an exact spec name)."""
        if key in self.exact:
            return key
        found = self.by_key.get(key)
        if not found:
            return None
        if len(found) == 1:
            return next(iter(found))
        raise DeriveError(f"{key!r} could mean any of {', '.join(sorted(found))}")

    def shape(self, name: str) -> tuple:
        if self.graph is None or name not in self.graph.quantities:
            return ()
        return self.graph.quantities[name].shape

    @property
    def learning_rate(self):
        return self.spec.learning_rate


# ---------------------------------------------------------------- parser
ATOM_COMMANDS = {"frac", "dfrac", "tfrac", "sigma", "partial", "sqrt", "mathrm", "text", "mathbf",
                 "mathit", "boldsymbol", "operatorname", "bm", "textrm", "mathsf", "mathcal",
                 "left", "bigl", "Bigl", "biggl", "Biggl", "big", "Big", "bigg", "Bigg",
                 "mathnormal", "textbf", "textit", "nabla"} | ACCENTS | set(FUNCTION_COMMANDS) | set(GREEK)

_E = ex.Call("exp", (ex.Num(Fraction(1), "1"),))   # Euler's number, until it is raised to a power


class _Parser:
    def __init__(self, text: str, names: Names):
        self.text = text
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0
        self.names = names

    # ---- token helpers
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Tok:
        t = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return t

    def at(self, kind: str, text: str | None = None, tok: Tok | None = None) -> bool:
        t = tok or self.tok
        return t.kind == kind and (text is None or t.text == text)

    def error(self, what: str, tok: Tok | None = None) -> DeriveError:
        return DeriveError(what, column=(tok or self.tok).column)

    def expect_op(self, op: str):
        if not self.at("op", op):
            found = self.tok.text if self.tok.kind != "end" else "end of formula"
            if self.tok.kind == "command":
                found = "\\" + found
            raise self.error(f"expected {op!r} but found {found!r}")
        return self.take()

    def nest(self):
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise LimitError(f"LaTeX nested more than {MAX_NESTING} levels deep", column=self.tok.column)

    def unnest(self):
        self.depth -= 1

    # ---- grammar
    def parse(self):
        if self.at("end"):
            raise self.error("empty formula")
        node = self.expr()
        if not self.at("end"):
            t = self.tok
            shown = ("\\" + t.text) if t.kind == "command" else t.text
            raise self.error(f"unexpected {shown!r}")
        return node

    def expr(self):
        self.nest()
        node = self.term()
        while self.at("op", "+") or self.at("op", "-"):
            op = self.take().text
            node = ex.Bin(op, node, self.term())
        self.unnest()
        return node

    def starts_atom(self) -> bool:
        t = self.tok
        if t.kind in ("number", "letter"):
            return True
        if t.kind == "op" and t.text in "([{":
            return True
        return t.kind == "command" and t.text in ATOM_COMMANDS

    def term(self):
        node = self.unary()
        while True:
            t = self.tok
            if t.kind == "op" and t.text in "*/":
                self.take()
                node = ex.Bin(t.text, node, self.unary())
            elif t.kind == "command" and t.text in MUL_COMMANDS:
                self.take()
                node = ex.Bin(MUL_COMMANDS[t.text], node, self.unary())
            elif self.starts_atom():
                node = ex.Bin("*", node, self.power())     # implicit multiplication
            else:
                return node

    def unary(self):
        if self.at("op", "-") or self.at("op", "+"):
            op = self.take().text
            self.nest()
            operand = self.unary()
            self.unnest()
            return ex.Neg(operand) if op == "-" else operand
        return self.power()

    def power(self):
        base = self.atom()
        while self.at("op", "^"):
            self.take()
            base = self.superscript(base)
        return base

    def superscript(self, base):
        t = self.tok
        # transpose
        if (t.kind == "letter" and t.text == "T") or (t.kind == "command" and t.text in ("top", "intercal")):
            self.take()
            return ex.Call("transpose", (base,))
        if self.at("op", "{"):
            inner = self.group_tokens()
            key = "".join(x.text for x in inner)
            if key in ("T", "top", "intercal", "\\top"):
                return ex.Call("transpose", (base,))
            if key in ("new", "(1)", "(new)", "+"):
                return self.at_step(base, 1, t)
            if key in ("old", "(0)", "(old)"):
                return self.at_step(base, 0, t)
            exponent = self.sub_parse(inner, t)
        elif t.kind == "number":
            # ^23 in LaTeX is (^2)3: one digit only
            self.take()
            digit, rest = t.text[0], t.text[1:]
            if rest:
                self.toks.insert(self.i, Tok("number", rest, t.column + 1, False))
            exponent = ex.Num(Fraction(digit), digit)
        elif t.kind == "op" and t.text == "-":
            self.take()
            exponent = ex.Neg(self.atom())
        else:
            exponent = self.atom()
        if base == _E:
            return ex.Call("exp", (exponent,))
        return ex.Bin("^", base, exponent)

    def at_step(self, base, k, tok):
        if isinstance(base, ex.Name):
            return ex.AtStep(base.id, k) if k else base
        if isinstance(base, ex.Deriv):
            return ex.Deriv(base.of, base.wrt, k)
        raise self.error("^{new}/^{old} (a value after a step) follows a name", tok)

    def group_tokens(self) -> list[Tok]:
        """The tokens inside a braced group `{…}` (consumed), braces balanced."""
        open_tok = self.expect_op("{")
        depth, out = 1, []
        while True:
            t = self.take()
            if t.kind == "end":
                raise self.error("unbalanced braces: '{' is never closed", open_tok)
            if t.kind == "op" and t.text == "{":
                depth += 1
            elif t.kind == "op" and t.text == "}":
                depth -= 1
                if depth == 0:
                    return out
            out.append(t)

    def sub_parse(self, toks: list[Tok], where: Tok):
        """Parse a token list (a group's content) as a whole formula."""
        if not toks:
            raise self.error("empty group {}", where)
        sub = _Parser.__new__(_Parser)
        sub.text = self.text
        sub.toks = list(toks) + [Tok("end", "", toks[-1].column + len(toks[-1].text) + 1, False)]
        sub.i = 0
        sub.depth = self.depth
        sub.names = self.names
        node = sub.parse()
        return node

    def braced_or_atom(self):
        if self.at("op", "{"):
            t = self.tok
            return self.sub_parse(self.group_tokens(), t)
        return self.atom()

    def atom(self):
        t = self.tok
        if t.kind == "number":
            self.take()
            return ex.Num(Fraction(t.text), t.text)
        if t.kind == "op" and t.text in "([":
            return self.paren()
        if t.kind == "op" and t.text == "{":
            return self.sub_parse(self.group_tokens(), t)
        if t.kind == "letter":
            return self.letters()
        if t.kind == "command":
            return self.command()
        found = t.text if t.kind != "end" else "end of formula"
        raise self.error(f"expected a number, a name or '(' but found {found!r}")

    def paren(self):
        open_tok = self.take()
        close = ")" if open_tok.text == "(" else "]"
        self.nest()
        node = self.expr()
        self.unnest()
        self.skip_size()
        if not (self.at("op", close) or self.at("op", ")") or self.at("op", "]")):
            raise self.error(f"expected {close!r} to close the {open_tok.text!r} at column {open_tok.column}")
        self.take()
        return node

    def skip_size(self):
        while self.at("command") and self.tok.text in SIZES:
            self.take()

    def command(self):
        t = self.tok
        c = t.text
        if c in SIZES:
            self.take()
            if not (self.at("op", "(") or self.at("op", "[")):
                raise self.error(f"\\{c} must be followed by '(' or '['")
            return self.paren()
        if c in ("frac", "dfrac", "tfrac"):
            return self.fraction()
        if c == "sigma":
            return self.sigma()
        if c in FUNCTION_COMMANDS:
            self.take()
            fn = FUNCTION_COMMANDS[c]
            if fn == "sqrt":
                if self.at("op", "["):
                    raise self.error("\\sqrt[n]{…} roots are not supported")
                return ex.Call("sqrt", (self.braced_or_atom(),))
            return ex.Call(fn, (self.call_argument(t),))
        if c == "partial":
            return self.inline_partial()
        if c in ACCENTS or c in FONTS or c in GREEK:
            return self.name_chunk()
        if c == "nabla":
            raise self.error("\\nabla is not understood; write the derivative as \\frac{\\partial L}{\\partial W}")
        raise self.error(f"unsupported LaTeX command \\{c}")

    def call_argument(self, fn_tok: Tok):
        self.skip_size_before_paren()
        if self.at("op", "(") or self.at("op", "["):
            return self.paren()
        if self.at("op", "{"):
            t = self.tok
            return self.sub_parse(self.group_tokens(), t)
        if self.at("end"):
            raise self.error(f"\\{fn_tok.text} needs an argument", fn_tok)
        return self.power()

    def skip_size_before_paren(self):
        if self.at("command") and self.tok.text in SIZES and (
                self.peek().kind == "op" and self.peek().text in "(["):
            self.take()

    def sigma(self):
        t = self.take()
        prime = False
        if self.at("op", "'"):
            self.take()
            prime = True
        elif self.at("op", "^") and self.peek().kind == "op" and self.peek().text == "{" and \
                self.peek(2).kind == "command" and self.peek(2).text == "prime":
            self.take(); self.take(); self.take()
            self.expect_op("}")
            prime = True
        elif self.at("op", "^") and self.peek().kind == "command" and self.peek().text == "prime":
            self.take(); self.take()
            prime = True
        if not prime and not (self.at("op", "(") or self.at("op", "[") or self.at("op", "{")
                              or (self.at("command") and self.tok.text in SIZES)):
            # a bare \sigma: a name if the spec has one, else sigmoid of what follows
            name = self.names.find("sigma")
            if name is not None:
                return ex.Name(name)
        arg = self.call_argument(t)
        s = ex.Call("sigmoid", (arg,))
        if prime:
            # σ'(x) = σ(x)(1 − σ(x))
            return ex.Bin("*", s, ex.Bin("-", ex.Num(Fraction(1), "1"), s))
        return s

    # ---- derivatives
    def fraction(self):
        self.take()
        num_t = self.tok
        num = self.group_tokens() if self.at("op", "{") else [self.take()]
        den_t = self.tok
        den = self.group_tokens() if self.at("op", "{") else [self.take()]
        deriv = self.as_derivative(num, den)
        if deriv is not None:
            return deriv
        return ex.Bin("/", self.sub_parse(num, num_t), self.sub_parse(den, den_t))

    def as_derivative(self, num: list[Tok], den: list[Tok]):
        """`dA`/`\\partial A` over `dB`/`\\partial B` with A, B names → Deriv(A, B); else None."""
        a = self.d_name(num)
        b = self.d_name(den)
        if a is None or b is None:
            return None
        (of, _), (wrt, step) = a, b
        return ex.Deriv(of, wrt, step)

    def d_name(self, toks: list[Tok]):
        """(name, step) for tokens `d NAME` / `\\partial NAME` / `\\mathrm{d} NAME`; else None."""
        if not toks:
            return None
        rest = None
        first = toks[0]
        if first.kind == "command" and first.text == "partial":
            rest = toks[1:]
        elif first.kind == "letter" and first.text == "d":
            rest = toks[1:]
        elif (first.kind == "command" and first.text in ("mathrm", "text", "operatorname")
              and len(toks) >= 4 and toks[1].text == "{" and toks[2].text == "d" and toks[3].text == "}"):
            rest = toks[4:]
        if not rest:
            return None
        sub = _Parser.__new__(_Parser)
        sub.text = self.text
        sub.toks = list(rest) + [Tok("end", "", rest[-1].column + 1, False)]
        sub.i = 0
        sub.depth = self.depth
        sub.names = self.names
        try:
            node = sub.power()
        except DeriveError:
            return None
        if not sub.at("end"):
            return None
        if isinstance(node, ex.Name):
            return node.id, 0
        if isinstance(node, ex.AtStep):
            return node.name, node.step
        return None

    def inline_partial(self):
        """`\\partial A / \\partial B` outside \\frac."""
        start = self.toks[self.i]
        self.take()
        a = self.atom()
        if not isinstance(a, ex.Name) or not self.at("op", "/"):
            raise self.error("expected '∂A/∂B'", start)
        self.take()
        if not self.at("command", "partial"):
            raise self.error("expected '\\partial' after '/' in a derivative")
        self.take()
        b = self.power()
        if isinstance(b, ex.AtStep):
            return ex.Deriv(a.id, b.name, b.step)
        if not isinstance(b, ex.Name):
            raise self.error("expected a name after '\\partial'")
        return ex.Deriv(a.id, b.id)

    # ---- names
    def name_chunk(self):
        """One name written with an accent, a font or a Greek letter, with its subscript."""
        t = self.take()
        c = t.text
        if c in ACCENTS or c in FONTS:
            if not self.at("op", "{"):
                inner = [self.take()]
            else:
                inner = self.group_tokens()
            inner_text = "".join(("\\" + x.text + " ") if x.kind == "command" else x.text for x in inner)
            key = (c if c in ACCENTS else "") + canonical(inner_text)
            # a function spelled in a font: \mathrm{relu}(x), \operatorname{sigmoid}(x)
            fn = TEXT_FUNCTION_ALIASES.get(key, key)
            if c in FONTS and (fn in ex.ELEMENTWISE_FUNCTIONS or fn == "softmax") and \
                    (self.at("op", "(") or self.at("op", "[")):
                return ex.Call(fn, (self.paren(),))
            if c in FONTS and key == "e" and self.at("op", "^") and self.names.find("e") is None:
                return _E
            if c in FONTS and key == "d":
                raise self.error("a derivative \\mathrm{d}A/\\mathrm{d}B must be written as \\frac{dA}{dB}", t)
        elif c in GREEK:
            key = c
            if c in LEARNING_RATE_SYMBOLS and self.names.find(c) is None and not self.at("op", "_"):
                lr = self.names.learning_rate
                if lr is None:
                    raise self.error(f"\\{c} (the learning rate) has no value in this spec", t)
                return ex.Num(lr, fraction_text(lr, plain=True))
        else:
            raise self.error(f"unsupported LaTeX command \\{c}", t)
        sub = self.subscript()
        return self.resolve(key, sub, t, shown=("\\" + c + ("{…}" if c in ACCENTS or c in FONTS else "")))

    def subscript(self) -> str:
        if not self.at("op", "_"):
            return ""
        self.take()
        if self.at("op", "{"):
            inner = self.group_tokens()
            text = "".join(("\\" + x.text + " ") if x.kind == "command" else x.text for x in inner)
            return canonical(text)
        t = self.take()
        if t.kind == "number":
            # x_12 in LaTeX is x_1 2; keep the first digit only
            if len(t.text) > 1:
                self.toks.insert(self.i, Tok("number", t.text[1:], t.column + 1, False))
            return t.text[0]
        if t.kind in ("letter",):
            return t.text
        if t.kind == "command":
            return t.text
        raise self.error("expected a subscript after '_'", t)

    def resolve(self, key: str, sub: str, tok: Tok, shown: str):
        name = self.names.find(key + sub)
        if name is None:
            label = key + (f"_{sub}" if sub else "")
            raise self.error(f"unknown name {label!r}", tok)
        return ex.Name(name)

    def letters(self):
        """A run of adjacent letters (and a digit suffix or a subscript): names, e, d…/d…, functions."""
        start = self.i
        run = [self.take()]
        while self.at("letter") and not self.tok.space_before:
            run.append(self.take())
        word = "".join(t.text for t in run)
        tok0 = run[0]
        # a function spelled out: sigmoid(x), relu(x), exp(x)
        fn = TEXT_FUNCTION_ALIASES.get(word, word)
        if (fn in ex.ELEMENTWISE_FUNCTIONS or fn == "softmax") and (self.at("op", "(") or self.at("op", "[")
                                               or (self.at("command") and self.tok.text in SIZES)) \
                and self.names.find(word) is None:
            return ex.Call(fn, (self.call_argument(tok0),))
        # inline derivative dA/dB (plain d, adjacent letters)
        deriv = self.try_inline_d(start)
        if deriv is not None:
            return deriv
        # a suffix: digits written without '_' (w1, x2) or a subscript (w_1, net_{h_1})
        digits = ""
        if self.at("number") and not self.tok.space_before and re.fullmatch(r"\d+", self.tok.text):
            digits = self.tok.text
        single = self.at("op", "_") and self.peek().kind in ("letter", "number")
        sub = self.subscript() if not digits and self.at("op", "_") else ""
        if single and sub:
            sub = self.extend_subscript(word, sub)
        suffixes = [digits, ""] if digits else [sub]
        for suffix in suffixes:
            whole = self.names.find(word + suffix)
            if whole is not None:
                return self.finish_letters([], whole, suffix == digits and bool(digits))
            # split: leading letters are names, the last piece takes the suffix
            for i in range(1, len(word)):
                head, tail = word[:i], word[i:]
                last = self.names.find(tail + suffix)
                if last is None and tail == "e" and not suffix and self.at("op", "^"):
                    last = "__e__"
                if last is None:
                    continue
                pieces = self.segment(head)
                if pieces is not None:
                    return self.finish_letters(pieces, last, suffix == digits and bool(digits))
        if word == "e" and not sub and self.at("op", "^"):
            return _E
        label = word + (f"_{sub}" if sub else "") + digits
        raise self.error(f"unknown name {label!r}", tok0)

    def extend_subscript(self, word: str, sub: str) -> str:
        """`target_o1`: LaTeX reads target_{o}1, but a spec name target_o1 takes the adjacent
        letters and digits too (only when that makes a known name)."""
        if self.names.find(word + sub) is not None:
            return sub
        j, extra = self.i, ""
        while j < len(self.toks) and self.toks[j].kind in ("letter", "number") \
                and not self.toks[j].space_before and "." not in self.toks[j].text:
            extra += self.toks[j].text
            j += 1
            if self.names.find(word + sub + extra) is not None:
                self.i = j
                return sub + extra
        return sub

    def finish_letters(self, pieces, last, consume_digits: bool):
        if consume_digits:
            self.take()
        return self.apply_prefix_split(pieces, last)

    def apply_prefix_split(self, pieces: list[str], last: str):
        node = None
        for p in pieces:
            n = ex.Name(p)
            node = n if node is None else ex.Bin("*", node, n)
        tail = _E if last == "__e__" else ex.Name(last)
        return tail if node is None else ex.Bin("*", node, tail)

    def segment(self, word: str):
        """Split a letter run into names, longest first; None when impossible."""
        if not word:
            return []
        for j in range(len(word), 0, -1):
            n = self.names.find(word[:j])
            if n is not None:
                rest = self.segment(word[j:])
                if rest is not None:
                    return [n] + rest
        return None

    def try_inline_d(self, start: int):
        """`dA/dB` written inline with plain d's: the run at `start` begins with 'd'."""
        first = self.toks[start]
        if first.text != "d":
            return None
        save = self.i
        self.i = start
        try:
            a = self._d_side()
            if a is None or not self.at("op", "/"):
                raise DeriveError("no")
            self.take()
            b = self._d_side()
            if b is None:
                raise DeriveError("no")
            return ex.Deriv(a[0], b[0], b[1])
        except DeriveError:
            self.i = save
            return None

    def _d_side(self):
        if not (self.at("letter", "d")):
            return None
        self.take()
        toks = []
        # collect one name chunk: letters (adjacent), digits, a subscript group
        while self.at("letter") and not (toks and self.tok.space_before):
            toks.append(self.take())
        if not toks:
            if self.at("command") and (self.tok.text in ACCENTS or self.tok.text in FONTS or self.tok.text in GREEK):
                node = self.name_chunk()
                return (node.id, 0) if isinstance(node, ex.Name) else None
            return None
        word = "".join(t.text for t in toks)
        if self.at("number") and not self.tok.space_before and "." not in self.tok.text:
            n = self.names.find(word + self.tok.text)
            if n is not None:
                self.take()
                return n, 0
        sub = self.subscript() if self.at("op", "_") else ""
        n = self.names.find(word + sub)
        return (n, 0) if n is not None else None


# ---------------------------------------------------------------- matrix products by shape
def _shape(node, names: Names):
    return ex.tree_shape(node, names.shape)


def resolve_products(node, names: Names):
    """`*` between two matrices whose inner dimensions agree becomes `@`; `*.` becomes `*`."""
    if isinstance(node, ex.Neg):
        return ex.Neg(resolve_products(node.operand, names))
    if isinstance(node, ex.Call):
        return ex.Call(node.fn, tuple(resolve_products(a, names) for a in node.args))
    if isinstance(node, ex.Bin):
        if ex.is_chain(node):   # along the chain (implicit products, long sums), not down it
            first, rest = ex.spine(node)
        else:
            first, rest = node.left, [(node.op, node.right)]
        left = resolve_products(first, names)
        a = _shape(left, names)
        for op, operand in rest:
            right = resolve_products(operand, names)
            b = _shape(right, names)
            if op == "*.":
                op = "*"
            elif op == "*" and a and b and a[1] == b[0] and not (a == b and a[1] == 1):
                op = "@"
            left, a = ex.Bin(op, left, right), ex.combine_shape(op, a, b)
        return left
    return node


def parse_latex(text: str, spec, graph=None):
    """The tree of a LaTeX formula over the names of `spec` (shapes from `graph`, if given)."""
    names = Names(spec, graph)
    try:
        tree = _Parser(text, names).parse()
    except RecursionError:
        raise LimitError(f"LaTeX formula nested too deeply (the limit is {MAX_NESTING} levels)") from None
    return resolve_products(tree, names)


# ---------------------------------------------------------------- tree → expression text
def unparse(node) -> str:
    """The expression-language text of a tree (parses back to the same tree with `expr`)."""
    return formula_text(node)

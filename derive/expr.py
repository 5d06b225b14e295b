"""The expression language: text → a small AST.  Never evaluates the text as Python.

Takes the string of one [forward] definition (or a quantity / claim formula) and gives
an immutable tree of `Num`, `Name`, `Neg`, `Bin`, `Call`, `Deriv` and `AtStep` nodes.
Grammar (lowest binding first):

    expr    := term (('+' | '-') term)*
    term    := unary (('*' | '/' | '@') unary)*
    unary   := '-' unary | '+' unary | power
    power   := postfix (('^' | '**') unary)?       # right-associative: 2^3^2 = 2^9
    postfix := atom ('[' INTEGER (',' INTEGER)? ']')?   # 1-based entry: z[2], W[1, 2], dL/dW[1, 2]
    atom    := NUMBER | NAME | NAME '(' expr (',' expr)* ')' | '(' expr ')'
             | 'd'NAME '/' 'd'NAME                  # quantities only: a derivative
             | NAME '@' INTEGER                     # quantities only: value after k steps

A hand-written tokenizer and recursive-descent parser: only these tokens exist, so text
such as `__import__('os')`, `a.b`, `x[0]`, `f(x=1)` or `'s'` is a syntax error with a column.
Functions: the elementwise ones, `max(a, b)` (elementwise, two arguments), `softmax(z)` (of a
vector, or of each column of a matrix) and the matrix ones; `ln` is read as `log`.  An index is
1-based, as the documents write entries: `z[i]` of a vector (n×1 or 1×n), `W[i, j]` of a matrix.
`dL/dW[1, 2]` is the entry (1, 2) of dL/dW, that is ∂L/∂W₁₂.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction

from .errors import DeriveError, LimitError
from .limits import MAX_STEPS

MAX_EXPRESSION_CHARS = 20_000   # longer text is refused, not parsed
MAX_NESTING = 100               # parentheses / unary minus / power nesting
MAX_NUMBER_CHARS = 400          # digits in one numeric literal (100-digit integers are fine)

ELEMENTWISE_FUNCTIONS = ("sigmoid", "relu", "tanh", "exp", "log", "sqrt", "softplus", "abs")
MATRIX_FUNCTIONS = ("transpose", "sum", "mean", "norm2", "frobenius", "softmax")
BINARY_FUNCTIONS = ("max",)          # elementwise, two arguments (scalars broadcast)
SYNONYMS = {"ln": "log"}             # read as the function they name
FUNCTIONS = ELEMENTWISE_FUNCTIONS + MATRIX_FUNCTIONS + BINARY_FUNCTIONS + tuple(SYNONYMS)


# ---------------------------------------------------------------- the tree
@dataclass(frozen=True)
class Num:
    value: Fraction
    text: str


@dataclass(frozen=True)
class Name:
    id: str


@dataclass(frozen=True)
class Neg:
    operand: object


@dataclass(frozen=True)
class Bin:
    op: str          # one of + - * / ^ @
    left: object
    right: object


@dataclass(frozen=True)
class Call:
    fn: str
    args: tuple


@dataclass(frozen=True)
class Index:
    """base[i] or base[i, j]: one entry of a vector or matrix, 1-based as written (`index` holds
    the numbers as written: (2,) for z[2], (1, 2) for W[1, 2])."""
    base: object
    index: tuple


@dataclass(frozen=True)
class Deriv:
    """dA/dB: derivative of quantity `of` with respect to quantity `wrt` (quantities only)."""
    of: str
    wrt: str
    step: int = 0


@dataclass(frozen=True)
class AtStep:
    """NAME@k: the value of NAME after k update steps (quantities only)."""
    name: str
    step: int


def children(node) -> tuple:
    if isinstance(node, Neg):
        return (node.operand,)
    if isinstance(node, Bin):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Index):
        return (node.base,)
    return ()


def index_entry(index: tuple, shape: tuple, what: str = "") -> tuple:
    """The 0-based (row, column) of a 1-based index into a value of `shape`; DeriveError for an
    index of a scalar, one number for a matrix that is not a vector, or an entry outside it."""
    label = f"{what}[{', '.join(str(i) for i in index)}]"
    if shape == ():
        raise DeriveError(f"{label}: {what or 'the value'} is a scalar and has no entries to index")
    r, c = shape
    if len(index) == 1:
        if r != 1 and c != 1:
            raise DeriveError(f"{label}: {what or 'the value'} is {shape_text(shape)}; give row and column, "
                              f"{what}[i, j]")
        n = r * c
        if not 1 <= index[0] <= n:
            raise DeriveError(f"{label}: index outside 1..{n} ({what or 'the value'} has {n} entries; "
                              "indices start at 1)")
        return (index[0] - 1, 0) if c == 1 else (0, index[0] - 1)
    i, j = index
    if not (1 <= i <= r and 1 <= j <= c):
        raise DeriveError(f"{label}: index outside {what or 'the value'}, {shape_text(shape)} "
                          "(indices start at 1)")
    return (i - 1, j - 1)


def index_text(shape: tuple, flat: int = 0) -> str:
    """The 1-based index, as written inside brackets, of entry `flat` (row-major) of a value of
    `shape`: "" for a scalar, "3" for a vector, "1,2" for a matrix (the inverse of index_entry)."""
    if shape == ():
        return ""
    r, c = shape
    row, col = divmod(flat, c)
    return str(row + 1) if c == 1 else str(col + 1) if r == 1 else f"{row + 1},{col + 1}"


def entry_text(name: str, shape: tuple, flat: int = 0, step: int = 0) -> str:
    """An entry as the expression language writes it, 1-based: w1, w1@1, b[3], W[1,2], W@1[2,1]."""
    at = f"{name}@{step}" if step else name
    return f"{at}[{index_text(shape, flat)}]" if shape else at


def ordered_names(node) -> list[str]:
    """Every name a tree refers to, once each, in order of first appearance (left to right)."""
    out: list[str] = []
    stack = [node]
    while stack:
        n = stack.pop()
        own = ([n.id] if isinstance(n, Name) else [n.name] if isinstance(n, AtStep)
               else [n.of, n.wrt] if isinstance(n, Deriv) else [])
        out += [x for x in own if x not in out]
        stack.extend(reversed(children(n)))
    return out


def names_in(node) -> set[str]:
    """Every name a tree refers to (for dependency checks)."""
    return set(ordered_names(node))


# A chain a op b op c … of one precedence level is a left-deep tree of `Bin`s (the parser reads
# it from left to right), so its depth follows the length of the text: a flat sum of 1 000 terms
# is 1 000 levels deep.  Nothing may recurse along it: walkers take the chain as a whole with
# `spine` and recurse only into its operands, whose depth is bounded by MAX_NESTING.
CHAIN_LEVEL = {"+": "+-", "-": "+-", "*": "*/@", "/": "*/@", "@": "*/@", "*.": "*/@*."}


def is_chain(node) -> bool:
    return isinstance(node, Bin) and node.op in CHAIN_LEVEL


def spine(node) -> tuple:
    """(first, [(op, operand), …]) of the chain `node` (a Bin of + −, or of * / @), read left to
    right without recursion: a − b + c is (a, [('-', b), ('+', c)])."""
    level = CHAIN_LEVEL[node.op]
    rest = []
    while isinstance(node, Bin) and node.op in level:
        rest.append((node.op, node.right))
        node = node.left
    rest.reverse()
    return node, rest


def depth(node) -> int:
    """The depth of a tree (a lone name is 1), without recursion."""
    best, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        best = max(best, d)
        stack.extend((c, d + 1) for c in children(n))
    return best


def combine_shape(op: str, a: tuple, b: tuple) -> tuple:
    """The shape of `A op B` from the shapes of A and B (unchecked; see tree_shape)."""
    if op == "@":
        return (a[0], b[1]) if a and b else ()
    return a if op == "^" else (a or b)


def shape_text(shape: tuple) -> str:
    return "a scalar" if shape == () else f"a {shape[0]}×{shape[1]} matrix"


def checked_shape(op: str, a: tuple, b: tuple) -> tuple:
    """The shape of `A op B`, checked: DeriveError for '@' of a scalar or of mismatched matrices,
    a matrix exponent, or an elementwise op on two matrices of different shapes.  The one check
    both evaluators use (the engine's compile step and the per-scalar graph)."""
    if op == "@":
        if a == () or b == ():
            raise DeriveError(f"'@' needs two matrices, got {shape_text(a)} and {shape_text(b)}; "
                              "use '*' to scale")
        if a[1] != b[0]:
            raise DeriveError(f"shape mismatch in '@': {shape_text(a)} @ {shape_text(b)} "
                              f"({a[1]} columns against {b[0]} rows)")
        return (a[0], b[1])
    if op == "^" and b != ():
        raise DeriveError("an exponent must be a scalar")
    if a != () and b != () and a != b:
        raise DeriveError(f"shape mismatch in '{op}': {shape_text(a)} and {shape_text(b)}")
    return a or b


def tree_shape(node, name_shape) -> tuple:
    """The shape of a tree from the shapes of its names (() a scalar, (rows, cols) a matrix),
    without checking: used to tell a matrix product from an elementwise one when formulas are
    printed or read.  (`graph.to_sympy` is where shapes are checked.)"""
    if isinstance(node, Name):
        return name_shape(node.id)
    if isinstance(node, AtStep):
        return name_shape(node.name)
    if isinstance(node, Deriv):
        a, b = name_shape(node.of), name_shape(node.wrt)
        return b if a == () else a
    if isinstance(node, Neg):
        return tree_shape(node.operand, name_shape)
    if is_chain(node):
        first, rest = spine(node)
        shape = tree_shape(first, name_shape)
        for op, operand in rest:
            shape = combine_shape(op, shape, tree_shape(operand, name_shape))
        return shape
    if isinstance(node, Bin):
        return combine_shape(node.op, tree_shape(node.left, name_shape), tree_shape(node.right, name_shape))
    if isinstance(node, Call):
        a = tree_shape(node.args[0], name_shape)
        if node.fn == "transpose":
            return (a[1], a[0]) if a else ()
        if node.fn == "max":
            return a or tree_shape(node.args[1], name_shape)
        return () if node.fn in ("sum", "mean", "norm2", "frobenius") else a
    if isinstance(node, Index):
        return ()
    return ()


# ---------------------------------------------------------------- numerals
# Decision (issue 12): numbers may be written with any Unicode decimal digits (full-width ０.５,
# Arabic-Indic ٠٫٥ with its decimal separator U+066B) and with U+2212 − as minus,
# everywhere a number is read: [forward] expressions, quantities on the command line, claims'
# `of`, `value`, `expr` and `latex`.  They are read as their ASCII counterparts, one character for
# one (so columns in messages stay right).  TOML's own numbers ([data], [parameters]) are ASCII
# by TOML's grammar.
_NUMERAL_SIGNS = {"\u2212": "-", "\uff0d": "-", "\ufe63": "-", "\uff0b": "+", "\ufe62": "+",
                  "\uff0e": ".", "\u066b": "."}
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _ascii_numeral(m) -> str:
    ch = m.group()
    if ch in _NUMERAL_SIGNS:
        return _NUMERAL_SIGNS[ch]
    d = unicodedata.decimal(ch, None)
    return ch if d is None else str(d)


def ascii_numerals(text: str) -> str:
    """Unicode decimal digits → 0-9, minus signs (U+2212, full-width) → '-', full-width + and . too."""
    return _NON_ASCII.sub(_ascii_numeral, text) if not text.isascii() else text


# ---------------------------------------------------------------- tokens
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|[-+*/^@(),\[\]])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str   # number | name | op | end
    text: str
    column: int  # 1-based


def tokenize(text: str) -> list[Token]:
    if len(text) > MAX_EXPRESSION_CHARS:
        raise LimitError(f"expression is {len(text)} characters long; the limit is {MAX_EXPRESSION_CHARS}")
    text = ascii_numerals(text)
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            ch = text[pos]
            hint = _hint_for(ch)
            raise DeriveError(f"unexpected character {ch!r}{hint}", column=pos + 1)
        kind = m.lastgroup
        if kind != "ws":
            tokens.append(Token(kind, m.group(), pos + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


def _hint_for(ch: str) -> str:
    if ch in "'\"":
        return " (strings are not part of the expression language)"
    if ch == ".":
        return " (attribute access is not part of the expression language)"
    if ch == "=":
        return " (keyword arguments and assignments are not part of the expression language)"
    return ""


# ---------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str, quantities: bool, known=None, functions=()):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.quantities = quantities
        self.known = known  # callable name -> bool, for telling dE/dw5 from a division
        self.functions = frozenset(functions)   # the spec's own [functions], one argument each

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def take(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def error(self, what: str, tok: Token | None = None) -> DeriveError:
        tok = tok or self.tok
        return DeriveError(what, column=tok.column)

    def expect(self, op: str) -> Token:
        if self.tok.kind == "op" and self.tok.text == op:
            return self.take()
        found = self.tok.text or "end of expression"
        return_error = self.error(f"expected {op!r} but found {found!r}")
        raise return_error

    def nest(self):
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise LimitError(f"expression nested more than {MAX_NESTING} levels deep", column=self.tok.column)

    # grammar
    def parse(self):
        if self.tok.kind == "end":
            raise self.error("empty expression")
        node = self.expr()
        if self.tok.kind != "end":
            raise self.error(f"unexpected {self.tok.text!r}")
        return node

    def expr(self):
        node = self.term()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.take().text
            node = Bin(op, node, self.term())
        return node

    def term(self):
        node = self.unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/", "@"):
            op = self.take()
            if op.text == "@" and self.quantities and (
                    self.tok.kind == "number" or (self.tok.text in ("-", "+") and self.peek().kind == "number")):
                node = self._at_step(node, op)
                continue
            node = Bin(op.text, node, self.unary())
        return node

    def unary(self):
        if self.tok.kind == "op" and self.tok.text in "+-":
            op = self.take().text
            self.nest()
            operand = self.unary()
            self.depth -= 1
            return Neg(operand) if op == "-" else operand
        return self.power()

    def power(self):
        base = self.postfix(self.atom())
        if self.tok.kind == "op" and self.tok.text in ("^", "**"):
            self.take()
            self.nest()
            exponent = self.unary()
            self.depth -= 1
            return Bin("^", base, exponent)
        return base

    def atom(self):
        tok = self.tok
        if tok.kind == "number":
            self.take()
            return _number(tok)
        if tok.kind == "name":
            return self.name_or_call()
        if tok.kind == "op" and tok.text == "(":
            self.take()
            self.nest()
            node = self.expr()
            self.depth -= 1
            self.expect(")")
            return node
        found = tok.text or "end of expression"
        raise self.error(f"expected a number, a name or '(' but found {found!r}")

    def postfix(self, node):
        """node[i] or node[i, j] (1-based whole numbers), when a '[' follows."""
        if not (self.tok.kind == "op" and self.tok.text == "["):
            return node
        bracket = self.take()
        index = [self._index_number()]
        if self.tok.kind == "op" and self.tok.text == ",":
            self.take()
            index.append(self._index_number())
        self.expect("]")
        if self.tok.kind == "op" and self.tok.text == "[":
            raise self.error("one index per entry: write W[i, j], not W[i][j]")
        if isinstance(node, Num):
            raise self.error("a number has no entries to index", bracket)
        return Index(node, tuple(index))

    def _index_number(self) -> int:
        tok = self.tok
        if tok.kind == "op" and tok.text in "+-" and self.peek().kind == "number":
            raise self.error(f"an index is a whole number from 1, not {tok.text + self.peek().text!r}")
        if tok.kind != "number" or not re.fullmatch(r"\d{1,9}", tok.text):
            found = tok.text or "end of expression"
            raise self.error(f"an index is a whole number from 1 (entries are counted from 1), not {found!r}")
        self.take()
        if int(tok.text) == 0:
            raise self.error("indices start at 1 (the first entry is [1]), not 0", tok)
        return int(tok.text)

    def name_or_call(self):
        tok = self.take()
        if self.tok.kind == "op" and self.tok.text == "(":
            if tok.text not in FUNCTIONS and tok.text not in self.functions:
                own = f"; the spec's [functions]: {', '.join(sorted(self.functions))}" if self.functions else ""
                raise self.error(
                    f"unknown function {tok.text!r} (known: {', '.join(FUNCTIONS)}{own})", tok)
            self.take()
            self.nest()
            args = [self.expr()]
            while self.tok.kind == "op" and self.tok.text == ",":
                self.take()
                args.append(self.expr())
            self.depth -= 1
            self.expect(")")
            want = 2 if tok.text in BINARY_FUNCTIONS else 1
            if len(args) != want:
                count = "one argument" if want == 1 else "two arguments"
                raise self.error(f"{tok.text}() takes {count}, not {len(args)}", tok)
            return Call(SYNONYMS.get(tok.text, tok.text), tuple(args))
        if tok.text in FUNCTIONS or tok.text in self.functions:
            raise self.error(f"function {tok.text!r} used without an argument", tok)
        if self.quantities:
            deriv = self.maybe_derivative(tok)
            if deriv is not None:
                return deriv
            known = self.known or (lambda n: False)
            if tok.text.startswith("d") and self.tok.text == "[" and known(tok.text[1:]) and not known(tok.text):
                raise self.error(f"the derivative of one entry, {tok.text}[…]/d…, is not supported: ask for "
                                 f"d{tok.text[1:]}/dX of the whole quantity (elementwise or of a scalar) and "
                                 "index that, e.g. dL/dz[2]", tok)
        return Name(tok.text)

    def maybe_derivative(self, tok: Token):
        """`dA/dB` where A and B are known names and `dA` itself is not: a derivative."""
        nxt, second = self.tok, self.peek()
        if not (tok.text.startswith("d") and nxt.kind == "op" and nxt.text == "/"
                and second.kind == "name" and second.text.startswith("d")):
            return None
        of, wrt = tok.text[1:], second.text[1:]
        known = self.known or (lambda n: False)
        if known(tok.text) or not (known(of) and known(wrt)):
            return None
        self.take()
        self.take()
        return Deriv(of, wrt)

    def _at_step(self, node, at: Token):
        k = self._step_number(self.take())
        if isinstance(node, Index) and isinstance(node.base, (Name, Deriv)):   # W[1, 2]@1
            return Index(self._stepped(node.base, k, at), node.index)
        return self.postfix(self._stepped(node, k, at))

    def _stepped(self, node, k: int, at: Token):
        if isinstance(node, Name):
            return AtStep(node.id, k)
        if isinstance(node, Deriv) and node.step == 0:
            return Deriv(node.of, node.wrt, k)
        raise self.error("'@k' (value after k steps) follows a name or a derivative dA/dB", at)

    def _step_number(self, tok: Token) -> int:
        """k of NAME@k: a whole number 0..MAX_STEPS (spec.MAX_STEPS, the limit of `steps`),
        checked here, before any work: `E@10000` would otherwise run 10 000 steps."""
        sign = ""
        if tok.text in ("-", "+"):
            sign, tok = tok.text, self.take()
        if sign or not re.fullmatch(r"\d+", tok.text):
            raise self.error(f"step after '@' must be a whole number from 0 to {MAX_STEPS}, "
                             f"not {sign + tok.text!r}", tok)
        k = int(tok.text)
        if k > MAX_STEPS:
            raise LimitError(f"{tok.text} steps after '@': the limit is {MAX_STEPS} steps "
                             "(as for train.steps)", column=tok.column)
        return k


def _number(tok: Token) -> Num:
    if len(tok.text) > MAX_NUMBER_CHARS:
        raise LimitError(f"number literal longer than {MAX_NUMBER_CHARS} characters", column=tok.column)
    mantissa, _, exponent = tok.text.lower().partition("e")
    if exponent and abs(int(exponent)) > 1000:
        raise LimitError(f"exponent of {tok.text} is outside ±1000", column=tok.column)
    return Num(Fraction(mantissa) * Fraction(10) ** int(exponent or 0), tok.text)


def parse(text: str, functions=()) -> object:
    """Parse a [forward] definition (names, numbers, operators, functions); `functions` are the
    names of the spec's own [functions] (each called with one argument)."""
    return _Parser(text, quantities=False, functions=functions).parse()


# ---------------------------------------------------------------- the spec's own functions
def rebuild(root, replace):
    """The tree with each node n for which replace(n, kids) gives a node swapped for it
    (bottom-up, without recursion); replace returns None to keep n (with rebuilt children)."""
    built: dict = {}
    order, stack = [], [root]
    while stack:   # preorder; reversed it lists every node after its children
        n = stack.pop()
        order.append(n)
        stack.extend(children(n))
    for n in reversed(order):
        kids = tuple(built[id(k)] for k in children(n))
        new = replace(n, kids)
        if new is None:
            if isinstance(n, Bin):
                new = n if kids[0] is n.left and kids[1] is n.right else Bin(n.op, *kids)
            elif isinstance(n, Neg):
                new = n if kids[0] is n.operand else Neg(kids[0])
            elif isinstance(n, Call):
                new = n if all(k is a for k, a in zip(kids, n.args)) else Call(n.fn, kids)
            elif isinstance(n, Index):
                new = n if kids[0] is n.base else Index(kids[0], n.index)
            else:
                new = n
        built[id(n)] = new
    return built[id(root)]


def substitute(tree, name: str, value):
    """The tree with every Name(name) replaced by the tree `value`."""
    return rebuild(tree, lambda n, kids: value if isinstance(n, Name) and n.id == name else None)


def inline(tree, functions: dict):
    """The tree with every call of a spec's own function (`functions`: name -> an object with
    `param` and `tree`, its body with its own calls already inlined) replaced by its body, the
    argument put in for the parameter: with f(x) = 2*x, f(W @ x) becomes 2*(W @ x)."""
    if not functions:
        return tree

    def replace(n, kids):
        if isinstance(n, Call) and n.fn in functions:
            fn = functions[n.fn]
            return substitute(fn.tree, fn.param, kids[0])
        return None

    return rebuild(tree, replace)


def calls(tree, functions) -> list:
    """The names of `functions` that a tree calls, in order of first appearance."""
    out: list = []
    stack = [tree]
    while stack:
        n = stack.pop()
        if isinstance(n, Call) and n.fn in functions and n.fn not in out:
            out.append(n.fn)
        stack.extend(reversed(children(n)))
    return out


def parse_quantity(text: str, known) -> object:
    """Parse a quantity: an expression that may also use dA/dB and NAME@k.

    `known(name) -> bool` tells which names exist, so that `dE/dw5` is read as a derivative
    only when E and w5 are names and `dE` is not.
    """
    return _Parser(text, quantities=True, known=known).parse()

"""Stage 5 — render: worked solutions as Markdown, LaTeX and PDF, in English and Chinese.

Takes a `Problem` and its `Solution`; builds ONE context of frozen dataclasses and strings (every
number in it is the engine's, correctly rounded; every formula comes from `derive.printer`) and
renders it with the Jinja2 templates of `templates/` (Markdown: `solution.md.j2`; LaTeX:
`solution.tex.j2`, with `\\BLOCK{…}`/`\\VAR{…}`/`\\#{…}` delimiters).  Prose lives in the template
directory (`strings.en.toml`, `strings.zh.toml`), never here.  `--template-dir` puts a directory
in front of the built-in one, so any template can be replaced by file name.

The worked solution: the network (TikZ / Mermaid), the given numbers, the forward pass (formula →
numbers → value), the loss, the backward pass for every parameter (the chain rule in ∂-notation,
each factor's formula, numbers and value, factors derived earlier referenced instead of repeated;
a neuron feeding several others sums over them; matrix specs use the matrix-form rules), the
update p − η·∂L/∂p, and the forward pass again with the new loss.  Symbolic specs get formulas only;
`--mode exercise` leaves every result out (the context then holds no solution numbers at all).

The CLI (`cli.cmd_render`) writes what `render_text` gives; `derive build` is `derive.build`.  Templates are
sandboxed (`derive.templating`), prose is escaped (`derive.escape`), PDFs come from `derive.tex`, and
files are written by `derive.files.write_output`.
"""
from __future__ import annotations

import decimal
import re
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from . import expr as ex
from . import printer as pr
from . import templating as tpl
from .errors import DeriveError
from .escape import CJK, md_text, mermaid_text, tex_text
from .matrixform import matrix_rules
from .training_context import training_context

FORMATS = ("md", "tex")
LANGS = ("en", "zh")
LINE_WIDTH = 75.0          # a display line at normal size, in printer.width units
SIZES = (("", 1.0), ("small", 0.9), ("footnotesize", 0.8), ("scriptsize", 0.7))
MAX_FULL_PATHS = 6         # the full sum-over-paths formula is shown up to this many paths
FULL_FORMULA_WIDTH = 400.0


# ---------------------------------------------------------------- the context
@dataclass(frozen=True)
class Eq:
    """One displayed equation: `flat` (one line) or aligned `lines` ('lhs &= …', '&= …')."""
    lines: tuple
    flat: str | None = None
    size: str = ""               # LaTeX font size around the display ('' = normal)


@dataclass(frozen=True)
class Row:
    name: str                    # the spec's name
    sym: str                     # display LaTeX
    value: str                   # LaTeX (number or pmatrix), '' in symbolic specs
    shape: str = ""              # '2×3' for matrices
    matrix: bool = False


@dataclass(frozen=True)
class Step:
    """A forward quantity: its equation (formula, numbers, value)."""
    name: str
    sym: str
    eq: Eq
    value: str = ""


@dataclass(frozen=True)
class Factor:
    sym: str                     # ∂a/∂b or ∂L/∂c (LaTeX)
    eq: Eq | None                # formula = numbers ≈ value (None when referenced)
    value: str = ""              # LaTeX number
    ref: str = ""                # '' (derived here), 'above', or the display of the section it came from
    adjoint: bool = False        # a ∂L/∂c factor (derived in its own block)
    rel: str = "="               # '=' or '\\approx' before `value`
    formula: str = ""            # the local derivative's formula (shown with a reference in symbolic specs)


@dataclass(frozen=True)
class Block:
    """dL/dX: its rule (chain or sum over consumers), factors, and the product with numbers."""
    target: str                  # ∂L/∂X (LaTeX)
    target_inline: str
    of: str                      # display of X
    kind: str                    # 'chain' | 'branch' | 'matrix' | 'zero' | 'single'
    rule: Eq | None
    factors: tuple = ()
    product: Eq | None = None
    consumers: tuple = ()        # displays of X's consumers (branch blocks)


@dataclass(frozen=True)
class Section:
    name: str                    # the parameter (or entry) name
    sym: str
    title: str                   # ∂L/∂p inline LaTeX
    main: Block
    prereqs: tuple = ()          # blocks derived first, in order
    full: Eq | None = None       # the whole formula in named quantities (sum over paths)
    paths: int = 1
    matrix_rule: Eq | None = None


@dataclass(frozen=True)
class Update:
    name: str
    sym: str
    eq: Eq


@dataclass(frozen=True)
class Node:
    id: str
    name: str                    # label for Mermaid (the spec's names)
    tex: str                     # label for TikZ
    kind: str                    # data | neuron | op | loss | param
    x: float
    y: float
    note: str = ""               # '2×3' for matrices
    bias: str = ""               # '+ b_{1}': biases added in this neuron (TikZ writes them below it)


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    label: str = ""              # Mermaid (spec name)
    tex: str = ""                # TikZ
    kind: str = "plain"          # weight | bias | plain


@dataclass(frozen=True)
class Diagram:
    nodes: tuple
    edges: tuple
    xscale: float
    yscale: float
    font: str                    # TikZ font size macro name
    labels: bool                 # edge labels drawn
    neurons: tuple               # (pre-activation, activation) display pairs, for the caption
    label_pos: float = 0.28      # where on an arrow its weight label sits (0 = source end)
    has_bias: bool = False       # some neuron adds a bias
    has_param: bool = False      # some parameter enters otherwise than as a weight or a bias


@dataclass(frozen=True)
class Task:
    kind: str                    # forward | loss | gradient | update | after
    items: tuple                 # LaTeX symbols


@dataclass(frozen=True)
class After:
    steps: tuple                 # Steps at k = 1
    loss: Step
    before: str
    after: str
    change: str                  # |L0 − L1| (LaTeX number)
    percent: str
    fell: bool
    same: bool


# ---------------------------------------------------------------- numbers as text
def _num(n) -> str:
    return pr.number(n.text)


def _exact(n) -> bool:
    """True when the shown text is the exact value (so '=' rather than '≈')."""
    if n.exact is None:
        return False
    try:
        return Fraction(decimal.Decimal(n.text)) == n.exact
    except (decimal.InvalidOperation, ValueError):
        return False


def _rel(numbers) -> str:
    return "=" if all(_exact(n) for n in numbers) else "\\approx"


def _paren(tex: str) -> str:
    return f"\\left({tex}\\right)" if tex.startswith("-") else tex


# ---------------------------------------------------------------- equation layout
def layout(lhs: str, parts: list) -> Eq:
    """lhs rel₁ part₁ rel₂ part₂ …, on one line if it fits, else aligned and broken at operators.

    `parts` is [(relation, chunks)] with chunks [(operator, tex)] where a line may break.
    """
    parts = _dedupe(parts)
    flat = lhs + "".join(f" {rel} {_join(chunks)}" for rel, chunks in parts)
    if pr.width(flat) <= LINE_WIDTH:
        return Eq((flat,), flat, "")
    lw = pr.width(lhs) + 3
    widest = max(pr.width(t) + (2 if op else 0) for _, chunks in parts for op, t in chunks)
    size, factor = SIZES[-1]
    for s, f in SIZES:
        if lw + widest <= LINE_WIDTH / f:
            size, factor = s, f
            break
    limit = LINE_WIDTH / factor
    lines = []
    cur, curw = f"{lhs} ", lw - 3
    for i, (rel, chunks) in enumerate(parts):
        whole = f"{rel} {_join(chunks)}"
        w = pr.width(whole)
        if i > 0 and curw + w > limit:          # the next part goes on a new line
            lines.append(cur.rstrip())
            cur, curw = "", lw
        if curw + w <= limit:                    # it fits whole
            cur += f"&{whole} " if i == 0 or not cur else f"{whole} "
            curw += w
            continue
        cur += f"&{rel} "                        # too long for any line: break it at its operators
        curw += pr.width(rel) + 1
        first = True
        for op, t in chunks:
            piece = f"{op} {t}" if op else t
            pw = pr.width(piece)
            if not first and curw + pw > limit:
                lines.append(cur.rstrip())
                cur, curw = f"&\\quad {piece} ", lw + 2 + pw
            else:
                cur += f"{piece} "
                curw += pw
            first = False
    lines.append(cur.rstrip())
    return Eq(tuple(lines), None, size)


def pack(items: list) -> Eq | None:
    """Several displayed items (`W = (…)`) side by side, as many to a line as fit (for gather*)."""
    if not items:
        return None
    widest = max(pr.width(t) for t in items)
    size, factor = SIZES[-1]
    for sz, f in SIZES:
        if widest <= LINE_WIDTH / f:
            size, factor = sz, f
            break
    limit = LINE_WIDTH / factor
    lines, cur, curw = [], [], 0.0
    for t in items:
        w = pr.width(t) + 4
        if cur and curw + w > limit:
            lines.append(" \\qquad ".join(cur))
            cur, curw = [], 0.0
        cur.append(t)
        curw += w
    lines.append(" \\qquad ".join(cur))
    return Eq(tuple(lines), lines[0] if len(lines) == 1 else None, size)


def _join(chunks) -> str:
    out = ""
    for op, t in chunks:
        out += (f" {op} {t}" if op else (f" {t}" if out else t))
    return out.strip()


def _dedupe(parts):
    """Drop a part that repeats the one before it (e.g. a formula that is just a number)."""
    out = []
    for rel, chunks in parts:
        if not chunks:
            continue
        if out and _join(out[-1][1]) == _join(chunks):
            if rel != "=":
                out[-1] = (rel, out[-1][1])
            continue
        out.append((rel, chunks))
    return out


def _one(tex: str) -> list:
    return [("", tex)]


# ---------------------------------------------------------------- building the context
class Builder:
    def __init__(self, problem, solution, *, lang: str, only: list | None, mode: str):
        self.p = problem
        self.g = problem.graph
        self.spec = problem.spec
        self.sol = solution
        self.calc = problem.calculus
        self.lang = lang
        self.mode = mode
        self.digits = solution.digits
        self.names = pr.display_names(self.spec, self.g)
        self.symbolic = problem.is_symbolic
        self.exercise = mode == "exercise"
        self.numeric = not self.symbolic and not self.exercise
        self.loss = self.g.loss
        self.L = self.names[self.loss]
        self.selected = self._order(only)
        has_matrix = any(not q.is_scalar for q in self.g.quantities.values())
        self.rules = {r.wrt: r for r in matrix_rules(self.g)} if has_matrix else {}
        self.matrix_mode = bool(self.rules)
        self.changes = self._changing()
        self._evals: dict = {}

    # ---------------------------------------------------------------- helpers
    def _order(self, only) -> list:
        """Parameters to derive, the ones nearest the loss first (as textbooks do)."""
        params = list(self.g.parameters)
        if only:
            unknown = [n for n in only if n not in params]
            if unknown:
                raise DeriveError(f"--only: {', '.join(repr(u) for u in unknown)} "
                                  f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
                                  f"of {self.spec.id} (parameters: {', '.join(params)})")
            params = [n for n in params if n in only]
        distance = self._distances()

        def depth(name):
            ds = [distance[e] for e in self.g.quantities[name].entries if e in distance]
            return min(ds) if ds else 10 ** 9

        return sorted(params, key=lambda n: (depth(n), list(self.g.parameters).index(n)))

    def _distances(self) -> dict:
        """Entry -> number of steps on the shortest way to the loss."""
        dist = {self.g.loss_entry: 0}
        for e in reversed(self.g.order):
            cs = [dist[c] for c in self.calc.consumers(e) if c in dist]
            if cs and e not in dist:
                dist[e] = 1 + min(cs)
        return dist

    def _changing(self) -> set:
        """Names whose value changes with an update step (updated parameters and what uses them)."""
        out = set(self.spec.update)
        for q in self.g.quantities.values():
            if q.kind == "forward" and any(u in out for u in q.uses):
                out.add(q.name)
        return out

    def shape(self, name: str) -> tuple:
        return self.g.quantities[name].shape

    def disp(self, name: str, k: int = 0) -> str:
        d = self.names[name]
        return pr.with_step(d, k) if k and name in self.changes else d

    def edisp(self, entry) -> str:
        q = self.g.quantities[entry.quantity]
        return pr.with_index(self.names[entry.quantity], entry.index, q.shape)

    def value_tex(self, name: str, k: int = 0, kind: str = "value") -> str:
        return pr.shaped_latex(self.sol.shaped(name, kind, k))

    def shape_text(self, name: str) -> str:
        s = self.shape(name)
        return f"{s[0]}\\times {s[1]}" if s else ""

    def eval(self, node, k: int):
        """The engine's value of a sub-expression of a definition at step k (a Shaped): from the
        tree itself, not from text parsed again (which could nest deeper than the user wrote)."""
        text = _unparse(node, k)   # names the value in the cache only
        if (text, self.digits) not in self._evals:
            self._evals[(text, self.digits)] = self.p.value_of(_at_step(node, k), self.digits, text)
        return self._evals[(text, self.digits)]

    def eval_text(self, text: str, digits: int | None = None):
        """The engine's value of an expression in the spec language (every partial result shown)."""
        digits = digits or self.digits
        if (text, digits) not in self._evals:
            self._evals[(text, digits)] = self.p.eval(text, digits=digits)[0].value
        return self._evals[(text, digits)]

    # ---------------------------------------------------------------- given
    def given(self) -> dict:
        data, params = [], []
        for name, q in self.g.quantities.items():
            if q.kind == "forward":
                continue
            value = "" if self.symbolic else self.value_tex(name)
            row = Row(name, self.names[name], value, self.shape_text(name), not q.is_scalar)
            (params if q.kind == "parameter" else data).append(row)
        lr = self.spec.learning_rate
        return {
            "data": tuple(data),
            "parameters": tuple(params),
            "data_matrices": pack([f"{r.sym} = {r.value}" for r in data if r.matrix]),
            "parameter_matrices": pack([f"{r.sym} = {r.value}" for r in params if r.matrix]),
            "learning_rate": "\\eta" if lr is None else pr.fraction(lr),
            "updated": tuple(self.names[n] for n in self.spec.update),
            "fixed": tuple(self.names[n] for n in self.g.parameters if n not in self.spec.update),
            "all_updated": set(self.spec.update) == set(self.g.parameters),
            "steps": self.spec.steps,
        }

    # ---------------------------------------------------------------- forward pass
    def step(self, name: str, k: int = 0, formula: bool = True) -> Step:
        q = self.g.quantities[name]
        tree = q.tree
        lhs = self.disp(name, k)
        parts = []
        sym = pr.TreePrinter(self.names, self.shape, step=k, stepped=self.changes)
        if formula or not self.numeric or isinstance(tree, ex.Name):
            parts.append(("=", sym.chunks(tree)))
        if not self.numeric:
            return Step(name, lhs, layout(lhs, parts))
        subst = pr.TreePrinter(self.names, self.shape, subst=lambda n: self._subst(n, k))
        if not isinstance(tree, (ex.Name, ex.Num)):
            parts.append(("=", subst.chunks(tree)))
            parts += self.intermediate(tree, k)
        shaped = self.sol.shaped(name, "value", k)
        value = pr.shaped_latex(shaped)
        parts.append((_rel(shaped.values), _one(value)))
        return Step(name, lhs, layout(lhs, parts), value)

    def _subst(self, name: str, k: int) -> str:
        return self.value_tex(name, k)

    def intermediate(self, tree, k: int) -> list:
        """Partial results the documents show: term values of a sum, 1/(1+e^-x) for σ, c·value."""
        terms = _terms(tree)
        if len(terms) >= 2 and any(not isinstance(t, (ex.Name, ex.Num)) for _, t in terms):
            chunks = []
            for i, (sign, t) in enumerate(terms):
                v = self.eval(t, k)
                tex = pr.shaped_latex(v)
                if i == 0:
                    chunks.append(("", tex if sign == "+" else "-" + _paren(tex)))
                else:
                    chunks.append((sign, _paren(tex)))
            return [("=", chunks)]
        if isinstance(tree, ex.Call) and tree.fn == "sigmoid" and not self._shape_of(tree.args[0]):
            x = self.eval(tree.args[0], k).values[0]
            e = self.eval(ex.Call("exp", (ex.Neg(tree.args[0]),)), k).values[0]
            minus_x = x.text[1:] if x.text.startswith("-") else "-" + x.text
            return [("=", _one(f"\\frac{{1}}{{1 + e^{{{pr.number(minus_x)}}}}}")),
                    ("\\approx" if not _exact(e) else "=", _one(f"\\frac{{1}}{{1 + {pr.number(e.text)}}}"))]
        if isinstance(tree, ex.Bin) and tree.op == "*" and _constant(tree.left) \
                and not isinstance(tree.right, (ex.Name, ex.Num)):
            v = self.eval(tree.right, k)
            const = pr.TreePrinter(self.names, self.shape).tex(tree.left)
            return [("=", [("", const), ("\\cdot", _paren(pr.shaped_latex(v)))])]
        return []

    def _shape_of(self, node) -> tuple:
        return pr.TreePrinter(self.names, self.shape).shape(node)

    def forward(self, k: int = 0) -> tuple:
        return tuple(self.step(d.name, k) for d in self.spec.forward if d.name != self.loss)

    # ---------------------------------------------------------------- backward pass (scalar)
    def sections(self) -> tuple:
        self.reg_local: dict = {}
        self.reg_adj: dict = {}
        out = []
        for name in self.selected:
            if self.matrix_mode:
                out.append(self.matrix_section(name))
                continue
            for entry in self.g.quantities[name].entries:
                out.append(self.scalar_section(name, entry))
        return tuple(out)

    def scalar_section(self, name: str, entry) -> Section:
        self.where = self.edisp(entry)
        prereqs: list = []
        main = self.adjoint_block(entry, prereqs)
        paths = self.calc.paths(entry, limit=64)
        n_paths = len(paths) if paths is not None else 65
        full = None
        if (self.symbolic and n_paths <= 64) or 1 < n_paths <= MAX_FULL_PATHS:
            tex = self.full_formula(entry)
            if tex and pr.width(tex) <= FULL_FORMULA_WIDTH:
                full = layout(pr.deriv(self.L, self.edisp(entry)), [("=", self._full_chunks(entry))])
        return Section(name, self.edisp(entry), pr.deriv(self.L, self.edisp(entry), inline=True),
                       main, tuple(prereqs), full, n_paths)

    def _segments(self, factors) -> list:
        """Chain factors with the identity ones (∂E_total/∂E_o1 = 1) merged into the next one down."""
        segs, pending = [], []
        for i, f in enumerate(factors):
            if f.formula == 1 and i + 1 < len(factors):
                pending.append(f)
                continue
            segs.append((pending[0].of if pending else f.of, f.wrt, f))
            pending = []
        return segs

    def local_factor(self, of, wrt, ld) -> Factor:
        sym = pr.deriv(self.edisp(of), self.edisp(wrt))
        key = (of, wrt)
        value = "" if not self.numeric else _num(self.sol.local(ld))
        rel = "" if not self.numeric else _rel([self.sol.local(ld)])
        formula = pr.tidy(ld.formula)
        ftex = pr.latex(formula, self.names)
        if key in self.reg_local:
            where = self.reg_local[key]
            return Factor(sym, None, value, "above" if where == self.where else where, rel=rel, formula=ftex)
        self.reg_local[key] = self.where
        parts = [("=", _one(ftex))]
        if self.numeric:
            n = self.sol.local(ld)
            if formula.free_symbols and not isinstance(formula, sp.Symbol):
                subst = pr.latex(formula, self.names, values=lambda e: self.sol.value(e, 0).text)
                parts.append(("=", _one(subst)))
            parts.append((_rel([n]), _one(value)))
        return Factor(sym, layout(sym, parts), value, rel=rel, formula=ftex)

    def adjoint_factor(self, entry) -> Factor:
        sym = pr.deriv(self.L, self.edisp(entry))
        where = self.reg_adj.get(entry, self.where)
        value = "" if not self.numeric else _num(self.sol.adjoint(entry))
        rel = "" if not self.numeric else _rel([self.sol.adjoint(entry)])
        return Factor(sym, None, value, "above" if where == self.where else where, adjoint=True, rel=rel)

    def ensure_adjoint(self, entry, prereqs: list):
        if entry == self.g.loss_entry or entry in self.reg_adj:
            return
        block = self.adjoint_block(entry, prereqs)
        prereqs.append(block)

    def adjoint_block(self, entry, prereqs: list) -> Block:
        X = self.edisp(entry)
        target = pr.deriv(self.L, X)
        inline = pr.deriv(self.L, X, inline=True)
        cons = self.calc.consumers(entry)
        if not cons:
            self.reg_adj[entry] = self.where
            return Block(target, inline, X, "zero", layout(target, [("=", _one("0"))]))
        if len(cons) > 1:
            for c in cons:
                self.ensure_adjoint(c, prereqs)
            terms = []
            for c in cons:
                ld = self.calc.local(c, entry)
                terms.append((self.adjoint_factor(c), self.local_factor(c, entry, ld)))
            rule_chunks = [("" if i == 0 else "+", f"{a.sym} \\cdot {b.sym}") for i, (a, b) in enumerate(terms)]
            factors = [f for pair in terms for f in pair]
            product = None
            if self.numeric:
                num_chunks = [("" if i == 0 else "+", f"{_paren(a.value)} \\cdot {_paren(b.value)}")
                              for i, (a, b) in enumerate(terms)]
                n = self.sol.adjoint(entry)
                product = layout(target, [("=", num_chunks), (_rel([n]), _one(_num(n)))])
            self.reg_adj[entry] = self.where
            return Block(target, inline, X, "branch", layout(target, [("=", rule_chunks)]), tuple(factors),
                         product, tuple(self.edisp(c) for c in cons))
        chain = self.calc.chain(entry)
        factors = []
        if chain.head != self.g.loss_entry:
            self.ensure_adjoint(chain.head, prereqs)
            factors.append(self.adjoint_factor(chain.head))
        segs = self._segments(chain.factors)
        for of, wrt, ld in segs:
            factors.append(self.local_factor(of, wrt, ld))
        if segs and segs[0][0] == self.g.loss_entry and chain.head == self.g.loss_entry:
            self.reg_adj.setdefault(segs[0][1], self.where)
        self.reg_adj[entry] = self.where
        if len(factors) == 1 and chain.head == self.g.loss_entry:
            return Block(target, inline, X, "single", None, tuple(factors))
        rule = layout(target, [("=", [("" if i == 0 else "\\cdot", f.sym) for i, f in enumerate(factors)])])
        product = None
        if self.numeric:
            n = self.sol.adjoint(entry)
            chunks = [("" if i == 0 else "\\cdot", _paren(f.value)) for i, f in enumerate(factors)]
            product = layout(target, [("=", chunks), (_rel([n]), _one(_num(n)))])
        return Block(target, inline, X, "chain", rule, tuple(factors), product)

    def full_formula(self, entry) -> str:
        return _join(self._full_chunks(entry))

    def _full_chunks(self, entry) -> list:
        """dL/d(entry) written out in named quantities, loss side first, summed over consumers."""
        memo: dict = {}

        def F(n) -> list:   # a list of product terms, each a list of factor texts
            if n == self.g.loss_entry:
                return [[]]
            if n in memo:
                return memo[n]
            terms = []
            for c in self.calc.consumers(n):
                f = pr.tidy(self.calc.local(c, n).formula)
                if f == 0:
                    continue
                tex = pr.latex(f, self.names)
                if pr.needs_parens_in_product(f):
                    tex = f"\\left({tex}\\right)"
                for t in F(c):
                    terms.append(t + ([tex] if f != 1 else []))
            memo[n] = terms
            return terms

        terms = F(entry)
        if not terms:
            return _one("0")
        return [("" if i == 0 else "+", pr.product(t)) for i, t in enumerate(terms)]

    # ---------------------------------------------------------------- backward pass (matrix form)
    def matrix_section(self, name: str) -> Section:
        self.where = self.names[name]
        prereqs: list = []
        main = self.matrix_block(name, prereqs)
        return Section(name, self.names[name], pr.deriv(self.L, self.names[name], inline=True), main,
                       tuple(prereqs))

    def ensure_madj(self, name: str, prereqs: list):
        if name == self.loss or name in self.reg_adj:
            return
        prereqs.append(self.matrix_block(name, prereqs))

    def matrix_block(self, name: str, prereqs: list) -> Block:
        X = self.names[name]
        target = pr.deriv(self.L, X)
        inline = pr.deriv(self.L, X, inline=True)
        rule = self.rules.get(name)
        if rule is None:
            self.reg_adj[name] = self.where
            zero = "0"
            return Block(target, inline, X, "zero", layout(target, [("=", _one(zero))]))
        for t in rule.terms:
            self.ensure_madj(t.consumer, prereqs)
        sym = pr.MatrixPrinter(self.names, self.L)
        parts = [("=", _sum_chunks([sym.chunks(t.expr) for t in rule.terms]))]
        if self.numeric:
            num = pr.MatrixPrinter(self.names, self.L,
                                   value=lambda n: self.sol.shaped(n, "value", 0),
                                   adjoint=lambda n: self.sol.shaped(n, "adjoint", 0))
            parts.append(("=", _sum_chunks([num.chunks(t.expr) for t in rule.terms])))
            shaped = self.sol.shaped(name, "adjoint", 0)
            parts.append((_rel(shaped.values), _one(pr.shaped_latex(shaped))))
        self.reg_adj[name] = self.where
        return Block(target, inline, X, "matrix", layout(target, parts[:1]), (), layout(target, parts),
                     tuple(self.names[t.consumer] for t in rule.terms))

    # ---------------------------------------------------------------- update and after
    def updates(self) -> tuple:
        out = []
        eta = "\\eta" if self.spec.learning_rate is None else pr.fraction(self.spec.learning_rate)
        order = [n for n in self.g.parameters if n in self.spec.update and n in self.selected]
        for name in order:
            d = self.names[name]
            lhs = pr.with_step(d, 1)
            parts = [("=", [("", d), ("-", f"\\eta \\, {pr.deriv(self.L, d)}")])]
            if self.numeric:
                grad = self.sol.shaped(name, "adjoint", 0)
                new = self.sol.shaped(name, "value", 1)
                parts.append(("=", [("", self.value_tex(name)), ("-", eta),
                                    ("\\cdot", _paren(pr.shaped_latex(grad)))]))
                parts.append((_rel(new.values), _one(pr.shaped_latex(new))))
            out.append(Update(name, d, layout(lhs, parts)))
        return tuple(out)

    def after(self) -> After | None:
        if not self.numeric or self.sol.steps < 1:
            return None
        steps = tuple(self.step(d.name, 1, formula=False) for d in self.spec.forward if d.name != self.loss)
        loss = self.step(self.loss, 1, formula=False)
        before, after = self.sol.value(self.g.loss_entry, 0), self.sol.value(self.g.loss_entry, 1)
        change = self.eval_text(f"{self.loss} - ({self.loss}@1)").values[0]
        fell = not change.text.startswith("-") and change.text != "0"
        same = change.text == "0"
        percent = ""
        if before.text != "0":
            pct = self.eval_text(f"100*({self.loss} - ({self.loss}@1))/{self.loss}",
                                 digits=min(self.digits, 4)).values[0]
            percent = pr.number(pct.text.lstrip("-"))
        return After(steps, loss, _num(before), _num(after), pr.number(change.text.lstrip("-")), percent,
                     fell, same)

    def history(self) -> tuple:
        if not self.numeric or self.sol.steps < 2:
            return ()
        return tuple((k, _num(v)) for k, v in enumerate(self.sol.history))

    # ---------------------------------------------------------------- exercise
    def tasks(self) -> tuple:
        fwd = tuple(self.names[d.name] for d in self.spec.forward if d.name != self.loss)
        out = [Task("forward", fwd), Task("loss", (self.L,))]
        grads = []
        for name in self.selected:
            for e in self.g.quantities[name].entries if not self.matrix_mode else [None]:
                grads.append(pr.deriv(self.L, self.edisp(e) if e is not None else self.names[name], inline=True))
        out.append(Task("gradient", tuple(grads)))
        upd = tuple(pr.with_step(self.names[n], 1) for n in self.g.parameters
                    if n in self.spec.update and n in self.selected)
        if upd and self.spec.steps >= 1:
            out.append(Task("update", upd))
            if not self.symbolic:
                out.append(Task("after", (pr.with_step(self.L, 1),)))
        return tuple(out)

    # ---------------------------------------------------------------- the network diagram
    def diagram(self) -> Diagram:
        return build_diagram(self)

    # ---------------------------------------------------------------- everything
    def context(self) -> dict:
        spec = self.spec
        ctx = {
            "id": spec.id,
            "title": spec.title,
            "source": spec.source,
            "lang": self.lang,
            "mode": self.mode,
            "exercise": self.exercise,
            "symbolic": self.symbolic,
            "matrix": self.matrix_mode,
            "digits": self.digits,
            "loss": self.L,
            "loss_name": self.loss,
            "only": tuple(self.names[n] for n in self.selected) if len(self.selected) < len(self.g.parameters)
            else (),
            "diagram": self.diagram(),
            "given": self.given(),
            "eta": "\\eta" if spec.learning_rate is None else pr.fraction(spec.learning_rate),
            "has_cjk": _has_cjk(spec.title) or _has_cjk(spec.source),
        }
        if self.exercise:
            ctx.update(tasks=self.tasks(), forward=(), loss_step=None, sections=(), updates=(), after=None,
                       history=())
            return ctx
        ctx.update(
            tasks=(),
            forward=self.forward(0),
            loss_step=self.step(self.loss, 0),
            sections=self.sections(),
            updates=self.updates() if spec.steps >= 1 else (),
            after=self.after(),
            history=self.history(),
        )
        return ctx


def _sum_chunks(lists) -> list:
    out = []
    for i, chunks in enumerate(lists):
        if i == 0:
            out += chunks
        else:
            (op, t), rest = chunks[0], chunks[1:]
            out.append(("+", t if not t.startswith("-") else f"\\left({t}\\right)"))
            out += rest
    return out


def _terms(tree) -> list:
    """[(sign, term)] of a top-level sum."""
    if isinstance(tree, ex.Bin) and tree.op in "+-":
        first, rest = ex.spine(tree)
        return [("+", first)] + rest
    return [("+", tree)]


def _constant(tree) -> bool:
    return not ex.names_in(tree)


def _at_step(node, k: int):
    """The tree with every name at step k (NAME@k), chains rebuilt along, not down."""
    if k == 0:
        return node
    if isinstance(node, ex.Name):
        return ex.AtStep(node.id, k)
    if isinstance(node, ex.Neg):
        return ex.Neg(_at_step(node.operand, k))
    if isinstance(node, ex.Call):
        return ex.Call(node.fn, tuple(_at_step(a, k) for a in node.args))
    if ex.is_chain(node):
        first, rest = ex.spine(node)
        out = _at_step(first, k)
        for op, t in rest:
            out = ex.Bin(op, out, _at_step(t, k))
        return out
    if isinstance(node, ex.Bin):
        return ex.Bin(node.op, _at_step(node.left, k), _at_step(node.right, k))
    return node


def _unparse(node, k: int) -> str:
    """A sub-tree back in the spec language, names at step k (for the engine's evaluator)."""
    if isinstance(node, ex.Num):
        return f"({node.text})"
    if isinstance(node, ex.Name):
        return f"({node.id}@{k})" if k else node.id
    if isinstance(node, ex.Neg):
        return f"(-{_unparse(node.operand, k)})"
    if ex.is_chain(node):   # one pair of parentheses for the chain: the parser reads it left to right
        first, rest = ex.spine(node)
        return "(" + " ".join([_unparse(first, k)] + [f"{op} {_unparse(t, k)}" for op, t in rest]) + ")"
    if isinstance(node, ex.Bin):
        return f"({_unparse(node.left, k)} {node.op} {_unparse(node.right, k)})"
    if isinstance(node, ex.Call):
        return f"{node.fn}({_unparse(node.args[0], k)})"
    raise TypeError(node)


def _has_cjk(text: str) -> bool:
    return bool(CJK.search(text or ""))


# ---------------------------------------------------------------- the diagram
def _linear(tree, params: set):
    """[(source, weight)] of a definition Σ w·x + b (weight or source may be None), or None."""
    out = []

    def term(node):
        while True:   # a loop, not recursion, along long chains (c1*c2*…*x, a + b + …)
            if isinstance(node, ex.Neg):
                node = node.operand
                continue
            if isinstance(node, ex.Num):
                return True
            if isinstance(node, ex.Name):
                out.append((None, node.id) if node.id in params else (node.id, None))
                return True
            if isinstance(node, ex.Bin) and node.op in "*@":
                a, b = node.left, node.right
                if _constant(a):
                    node = b
                    continue
                if _constant(b):
                    node = a
                    continue
                if isinstance(a, ex.Name) and isinstance(b, ex.Name):
                    pa, pb = a.id in params, b.id in params
                    if pa != pb:
                        out.append((b.id, a.id) if pa else (a.id, b.id))
                        return True
                return False
            if isinstance(node, ex.Bin) and node.op in "+-":
                first, rest = ex.spine(node)
                return all(term(t) for t in [first] + [t for _, t in rest])
            return False

    return out if term(tree) else None


def build_diagram(b: Builder) -> Diagram:
    g = b.g
    params = set(g.parameters)
    forward = [q for q in g.quantities.values() if q.kind == "forward"]
    users: dict = {}
    for q in forward:
        for u in q.uses:
            users.setdefault(u, []).append(q.name)
    absorbed = {}           # pre-activation -> activation
    for q in forward:
        t = q.tree
        if isinstance(t, ex.Call) and t.fn in ex.ELEMENTWISE_FUNCTIONS and isinstance(t.args[0], ex.Name):
            pre = t.args[0].id
            pq = g.quantities[pre]
            if pq.kind == "forward" and users.get(pre) == [q.name] and _linear(pq.tree, params) is not None:
                absorbed[pre] = q.name
    neurons = {v: k for k, v in absorbed.items()}
    nodes: dict = {}        # name -> kind
    edges: list = []        # (src, dst, weight or None, kind)
    for q in forward:
        if q.name in absorbed:
            continue
        kind = "loss" if q.name == g.loss else "neuron" if q.name in neurons else "op"
        nodes[q.name] = kind
        tree = g.quantities[neurons[q.name]].tree if q.name in neurons else q.tree
        lin = _linear(tree, params)
        if lin is not None:
            for src, w in lin:
                if src is not None:
                    edges.append((src, q.name, w, "weight" if w else "plain"))
                elif w is not None:
                    edges.append((w, q.name, None, "bias"))
        else:
            for u in q.uses:
                edges.append((u, q.name, None, "param" if u in params else "plain"))
    seen = set()
    edges = [e for e in edges if not (e[:2] in seen or seen.add(e[:2]))]
    for src, _, _, kind in edges:
        if src not in nodes:
            nodes[src] = "param" if src in params else "data"
    # a parameter that is only ever added (a bias) is written next to its neurons in TikZ: "+ b1"
    for n, kind in list(nodes.items()):
        if kind == "param" and all(k == "bias" for s_, _, _, k in edges if s_ == n):
            nodes[n] = "bias"
    biases: dict = {}
    for s_, d, _, k in edges:
        if k == "bias" and nodes[s_] == "bias":
            biases.setdefault(d, []).append(s_)
    # layers: forward nodes by longest path; sources one column before their first consumer
    layer: dict = {}
    for q in forward:
        if q.name not in nodes:
            continue
        srcs = [s_ for s_, d, _, _ in edges if d == q.name and g.quantities[s_].kind == "forward"]
        layer[q.name] = 1 + max((layer[s_] for s_ in srcs), default=0)
    for name in nodes:
        if name not in layer:
            cons = [layer[d] for s_, d, _, _ in edges if s_ == name and d in layer]
            layer[name] = max(0, min(cons) - 1) if cons else 0
    ncols = max(layer.values()) + 1
    # a column: its forward nodes and the data they weigh (inputs) spread out; targets and other
    # parameters below them (bias nodes are not drawn in TikZ: they get no place of their own)
    weighted_src = {s_ for s_, _, w, _ in edges if w}
    extra = {n for n, kind in nodes.items() if kind == "param" or (kind == "data" and n not in weighted_src)}
    order = list(g.quantities)
    columns = [sorted([n for n in nodes if layer[n] == c and nodes[n] != "bias"],
                      key=lambda n: (n in extra, order.index(n))) for c in range(ncols)]
    mains = [[n for n in col if n not in extra] or col for col in columns]
    tallest = max(len(m) for m in mains)
    ys: dict = {}
    for col, main in zip(columns, mains):
        rest = [n for n in col if n not in main]
        step = min(2.0, (tallest - 1) / (len(main) - 1)) if len(main) > 1 else 0.0
        for r, n in enumerate(main):
            ys[n] = (len(main) - 1) * step / 2 - r * step
        low = min((ys[n] for n in main), default=0)
        for r, n in enumerate(rest):
            ys[n] = low - 1 - r
    for n in nodes:          # bias nodes (drawn by Mermaid only): below their column
        if n not in ys:
            ys[n] = min(ys.values()) - 1
    top = max(v for n, v in ys.items() if nodes[n] != "bias")
    bottom = min(v for n, v in ys.items() if nodes[n] != "bias")

    # column spacing: room for the widest node of two neighbouring columns and a weight label
    def node_cm(n):
        q = g.quantities[n]
        return 0.19 * pr.width(b.names[n]) + (0.75 if q.shape else 0) + 0.5

    def label_cm(c):
        ws = [0.16 * pr.width(b.names[w]) for s_, d, w, _ in edges if w and layer[s_] == c]
        return max(ws, default=0) + 0.4

    need = max((max((node_cm(n) for n in columns[c]), default=1) / 2
                + max((node_cm(n) for n in columns[c + 1]), default=1) / 2
                + label_cm(c) for c in range(ncols - 1)), default=2.4)
    crowded = tallest > 1
    xscale = min(max(3.3 if crowded else 2.6, need), 15.0 / max(1, ncols - 1))
    yscale = min(1.5, 13.0 / max(1.0, top - bottom))
    font = "small" if yscale >= 0.9 else "scriptsize"
    ids = {n: f"n{i}" for i, n in enumerate(sorted(nodes, key=order.index))}
    out_nodes = []
    for n, kind in nodes.items():
        q = g.quantities[n]
        note = f"{q.shape[0]}×{q.shape[1]}" if q.shape else ""
        bias = " ".join(f"+ {b.names[x]}" for x in biases.get(n, ()))
        out_nodes.append(Node(ids[n], n, b.names[n], kind, float(layer[n]), round(ys[n], 3), note, bias))
    weighted = sum(1 for e in edges if e[2])
    labels = weighted <= 24
    out_edges = tuple(Edge(ids[s], ids[d], w or "", b.names[w] if w else "", kind) for s, d, w, kind in edges)
    pairs = tuple((b.names[p], b.names[a]) for p, a in absorbed.items())
    return Diagram(tuple(sorted(out_nodes, key=lambda x: int(x.id[1:]))), out_edges, round(xscale, 2),
                   round(yscale, 2), font, labels, pairs, 0.28 if crowded else 0.5,
                   bool(biases), any(k == "param" for *_, k in edges))


# ---------------------------------------------------------------- templates
def environment(fmt: str, template_dir: str | None = None):
    """The sandboxed environment of the handout templates (templates/, `template_dir` first)."""
    filters = {"tex": tex_text} if fmt == "tex" else {"md": md_text}
    filters["mermaid"] = mermaid_text
    return tpl.environment(fmt, tpl.template_paths(template_dir), filters)


def strings(env, fmt: str, lang: str):
    """s(key, **values) for the handout prose of `lang` (strings.<lang>.toml) in format `fmt`."""
    return tpl.string_function(tpl.load_strings(env, f"strings.{lang}.toml"), fmt, lang)


def build_context(problem, solution, *, lang: str, only=None, mode: str = "solution") -> dict:
    return Builder(problem, solution, lang=lang, only=only, mode=mode).context()


def render_text(problem, *, fmt: str, lang: str | None = None, digits: int = 10, only=None,
                mode: str = "solution", template_dir: str | None = None, solution=None,
                errata: dict | None = None) -> str:
    """The worked solution of a problem as Markdown or LaTeX text.

    `errata` (from `derive build`): {"md": path, "tex": path, "steps": [ErrataStep]} — the source
    document's steps that are not correct, listed at the end with links to their corrections."""
    lang = lang or problem.spec.lang
    solution = solution or problem.solve(digits=digits)
    env = environment(fmt, template_dir)
    ctx = build_context(problem, solution, lang=lang, only=only, mode=mode)
    ctx["errata"] = errata if mode == "solution" else None
    ctx["training"] = training_context(problem.spec, lang, solution.digits) if mode == "solution" else None
    ctx["s"] = strings(env, fmt, lang)
    text = tpl.render(env, f"solution.{fmt}.j2", ctx)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


# ---------------------------------------------------------------- derive render
def _only(text: str | None) -> list | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise DeriveError("--only: expected comma-separated parameter names")
    return names

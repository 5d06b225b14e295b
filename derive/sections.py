"""The backward pass of a worked solution: one section per parameter (or per entry of a scalar
spec's parameter), each the chain rule in ∂-notation, each factor's formula, numbers and value,
and the product; a quantity feeding several others gets the sum over them (an adjoint block);
factors and adjoints derived once are referenced afterwards.  Matrix specs get the matrix-form
rules of `derive.matrixform` instead, written out with the matrices.

`Backward(setting).sections()` gives the `Section`s; it remembers, while it runs, where each
local derivative and adjoint was first derived.
"""
from __future__ import annotations

import sympy as sp

from . import printer as pr
from .handout import Block, Factor, Section, Setting
from .layout import join, layout, one, paren, relation, shown, sum_chunks

MAX_FULL_PATHS = 6         # the full sum-over-paths formula is shown up to this many paths
FULL_FORMULA_WIDTH = 400.0


class Backward:
    def __init__(self, setting: Setting):
        self.s = setting
        self.reg_local: dict = {}    # (of, wrt) -> where the local derivative was derived
        self.reg_adj: dict = {}      # entry (or matrix name) -> where its adjoint was derived
        self.where = ""              # the display of the section being written

    # ---------------------------------------------------------------- backward pass (scalar)
    def sections(self) -> tuple:
        out = []
        for name in self.s.selected:
            if self.s.matrix_mode:
                out.append(self.matrix_section(name))
                continue
            for entry in self.s.g.quantities[name].entries:
                out.append(self.scalar_section(name, entry))
        return tuple(out)

    def scalar_section(self, name: str, entry) -> Section:
        self.where = self.s.edisp(entry)
        prereqs: list = []
        main = self.adjoint_block(entry, prereqs)
        paths = self.s.calc.paths(entry, limit=64)
        n_paths = len(paths) if paths is not None else 65
        full = None
        if (self.s.symbolic and n_paths <= 64) or 1 < n_paths <= MAX_FULL_PATHS:
            tex = self.full_formula(entry)
            if tex and pr.width(tex) <= FULL_FORMULA_WIDTH:
                full = layout(pr.deriv(self.s.L, self.s.edisp(entry)), [("=", self._full_chunks(entry))])
        return Section(name, self.s.edisp(entry), pr.deriv(self.s.L, self.s.edisp(entry), inline=True),
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
        sym = pr.deriv(self.s.edisp(of), self.s.edisp(wrt))
        key = (of, wrt)
        value = "" if not self.s.numeric else shown(self.s.sol.local(ld))
        rel = "" if not self.s.numeric else relation([self.s.sol.local(ld)])
        formula = pr.tidy(ld.formula)
        ftex = pr.latex(formula, self.s.names)
        if key in self.reg_local:
            where = self.reg_local[key]
            return Factor(sym, None, value, "above" if where == self.where else where, rel=rel, formula=ftex)
        self.reg_local[key] = self.where
        parts = [("=", one(ftex))]
        if self.s.numeric:
            n = self.s.sol.local(ld)
            if formula.free_symbols and not isinstance(formula, sp.Symbol):
                subst = pr.latex(formula, self.s.names, values=lambda e: self.s.sol.value(e, 0).text)
                parts.append(("=", one(subst)))
            parts.append((relation([n]), one(value)))
        return Factor(sym, layout(sym, parts), value, rel=rel, formula=ftex)

    def adjoint_factor(self, entry) -> Factor:
        sym = pr.deriv(self.s.L, self.s.edisp(entry))
        where = self.reg_adj.get(entry, self.where)
        value = "" if not self.s.numeric else shown(self.s.sol.adjoint(entry))
        rel = "" if not self.s.numeric else relation([self.s.sol.adjoint(entry)])
        return Factor(sym, None, value, "above" if where == self.where else where, adjoint=True, rel=rel)

    def ensure_adjoint(self, entry, prereqs: list):
        if entry == self.s.g.loss_entry or entry in self.reg_adj:
            return
        block = self.adjoint_block(entry, prereqs)
        prereqs.append(block)

    def adjoint_block(self, entry, prereqs: list) -> Block:
        X = self.s.edisp(entry)
        target = pr.deriv(self.s.L, X)
        inline = pr.deriv(self.s.L, X, inline=True)
        cons = self.s.calc.consumers(entry)
        if not cons:
            self.reg_adj[entry] = self.where
            return Block(target, inline, X, "zero", layout(target, [("=", one("0"))]))
        if len(cons) > 1:
            for c in cons:
                self.ensure_adjoint(c, prereqs)
            terms = []
            for c in cons:
                ld = self.s.calc.local(c, entry)
                terms.append((self.adjoint_factor(c), self.local_factor(c, entry, ld)))
            rule_chunks = [("" if i == 0 else "+", f"{a.sym} \\cdot {b.sym}") for i, (a, b) in enumerate(terms)]
            factors = [f for pair in terms for f in pair]
            product = None
            if self.s.numeric:
                num_chunks = [("" if i == 0 else "+", f"{paren(a.value)} \\cdot {paren(b.value)}")
                              for i, (a, b) in enumerate(terms)]
                n = self.s.sol.adjoint(entry)
                product = layout(target, [("=", num_chunks), (relation([n]), one(shown(n)))])
            self.reg_adj[entry] = self.where
            return Block(target, inline, X, "branch", layout(target, [("=", rule_chunks)] + self._closed(entry)),
                         tuple(factors),
                         product, tuple(self.s.edisp(c) for c in cons))
        chain = self.s.calc.chain(entry)
        factors = []
        if chain.head != self.s.g.loss_entry:
            self.ensure_adjoint(chain.head, prereqs)
            factors.append(self.adjoint_factor(chain.head))
        segs = self._segments(chain.factors)
        for of, wrt, ld in segs:
            factors.append(self.local_factor(of, wrt, ld))
        if segs and segs[0][0] == self.s.g.loss_entry and chain.head == self.s.g.loss_entry:
            self.reg_adj.setdefault(segs[0][1], self.where)
        self.reg_adj[entry] = self.where
        if len(factors) == 1 and chain.head == self.s.g.loss_entry:
            return Block(target, inline, X, "single", None, tuple(factors))
        rule = layout(target, [("=", [("" if i == 0 else "\\cdot", f.sym) for i, f in enumerate(factors)])]
                      + self._closed(entry))
        product = None
        if self.s.numeric:
            n = self.s.sol.adjoint(entry)
            chunks = [("" if i == 0 else "\\cdot", paren(f.value)) for i, f in enumerate(factors)]
            product = layout(target, [("=", chunks), (relation([n]), one(shown(n)))])
        return Block(target, inline, X, "chain", rule, tuple(factors), product)

    def _closed(self, entry) -> list:
        """["= closed form"] where the chain simplifies (softmax or σ with the cross-entropy:
        p − t, ŷ − y; see Calculus.closed_form), else []."""
        closed = self.s.calc.closed_form(entry)
        return [] if closed is None else [("=", one(pr.latex(closed, self.s.names)))]

    def full_formula(self, entry) -> str:
        return join(self._full_chunks(entry))

    def _full_chunks(self, entry) -> list:
        """dL/d(entry) written out in named quantities, loss side first, summed over consumers."""
        memo: dict = {}

        def F(n) -> list:   # a list of product terms, each a list of factor texts
            if n == self.s.g.loss_entry:
                return [[]]
            if n in memo:
                return memo[n]
            terms = []
            for c in self.s.calc.consumers(n):
                f = pr.tidy(self.s.calc.local(c, n).formula)
                if f == 0:
                    continue
                tex = pr.latex(f, self.s.names)
                if pr.needs_parens_in_product(f):
                    tex = f"\\left({tex}\\right)"
                for t in F(c):
                    terms.append(t + ([tex] if f != 1 else []))
            memo[n] = terms
            return terms

        terms = F(entry)
        if not terms:
            return one("0")
        return [("" if i == 0 else "+", pr.product(t)) for i, t in enumerate(terms)]

    # ---------------------------------------------------------------- backward pass (matrix form)
    def matrix_section(self, name: str) -> Section:
        self.where = self.s.names[name]
        prereqs: list = []
        main = self.matrix_block(name, prereqs)
        return Section(name, self.s.names[name], pr.deriv(self.s.L, self.s.names[name], inline=True), main,
                       tuple(prereqs))

    def ensure_madj(self, name: str, prereqs: list):
        if name == self.s.loss or name in self.reg_adj:
            return
        prereqs.append(self.matrix_block(name, prereqs))

    def matrix_block(self, name: str, prereqs: list) -> Block:
        X = self.s.names[name]
        target = pr.deriv(self.s.L, X)
        inline = pr.deriv(self.s.L, X, inline=True)
        rule = self.s.rules.get(name)
        if rule is None:
            self.reg_adj[name] = self.where
            zero = "0"
            return Block(target, inline, X, "zero", layout(target, [("=", one(zero))]))
        for t in rule.terms:
            self.ensure_madj(t.consumer, prereqs)
        sym = pr.MatrixPrinter(self.s.names, self.s.L)
        parts = [("=", sum_chunks([sym.chunks(t.expr) for t in rule.terms]))]
        if len(rule.terms) == 1 and rule.terms[0].general is not None:
            # softmax + cross-entropy: p·Σt − t, which is p − t because t is one-hot (Σt = 1)
            t_name = self.s.names[rule.terms[0].expr.b.name]
            parts = [("=", sym.chunks(rule.terms[0].general)),
                     (f"\\overset{{\\operatorname{{sum}}({t_name}) = 1}}{{=}}", parts[0][1])]
        if self.s.numeric:
            num = pr.MatrixPrinter(self.s.names, self.s.L,
                                   value=lambda n: self.s.sol.shaped(n, "value", 0),
                                   adjoint=lambda n: self.s.sol.shaped(n, "adjoint", 0))
            parts.append(("=", sum_chunks([num.chunks(t.expr) for t in rule.terms])))
            shaped = self.s.sol.shaped(name, "adjoint", 0)
            parts.append((relation(shaped.values), one(pr.shaped_latex(shaped))))
        self.reg_adj[name] = self.where
        shown_rule = parts[:2] if len(rule.terms) == 1 and rule.terms[0].general is not None else parts[:1]
        return Block(target, inline, X, "matrix", layout(target, shown_rule), (), layout(target, parts),
                     tuple(self.s.names[t.consumer] for t in rule.terms))


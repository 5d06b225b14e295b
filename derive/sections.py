"""The backward pass of a worked solution.

Scalar specs, as textbooks write it (`Backward(setting).layers()`): for each layer (the quantities
the derived parameters enter directly, grouped by their distance from the loss, nearest first) the
error signal δ_X = ∂L/∂X of each such quantity X, derived once — the chain rule in ∂-notation (a
quantity feeding several others summed over them, the δs of the layer after it reused), the local
derivatives' formulas, the numbers and the value; then every parameter of the layer in one line,
∂L/∂p = δ_X · ∂X/∂p, with its formula, numbers and value.  Parameters the problem keeps fixed are
not derived.  Symbolic specs add the whole formula in named quantities (`_full_chunks`).

Matrix specs the same way in matrix form (`matrix_layers`): for each layer the error signal
δ_Z = ∂L/∂Z as a matrix, derived once — the matrix-form rule of `derive.matrixform` in the ∂L/∂Y
of Z's consumers, then in named quantities and the δs of the layer after it ((Wᵀ·δ) ⊙ f′), then
the numbers and the value — and each parameter's gradient in one line, ∂L/∂W = δ_Z · Aᵀ with its
numbers and value.  A large network (`derive.large`) keeps one section per parameter matrix
(`matrix_section`: the rule, the prerequisites' rules, the numbers).
"""
from __future__ import annotations

import re
from dataclasses import fields, replace
from fractions import Fraction

import sympy as sp

from . import expr as ex
from . import matrixform as mf
from . import printer as pr
from .handout import Block, Delta, Grad, Layer, Section, Setting, distances
from .rounding import Number
from .layout import dedupe, group, join, layout, one, paren, relation, shown, sum_chunks

DELTA = "\x00δ:"            # marks a matrix rule's name that stands for an error signal (see _mdelta)
FULL_FORMULA_WIDTH = 400.0


class Backward:
    def __init__(self, setting: Setting):
        self.s = setting
        self.reg_adj: dict = {}      # entry (or matrix name) -> where its adjoint was derived
        self.where = ""              # the display of the section being written
        self.seen: list = []         # the Numbers a line of numbers shows (for its "=" or "≈")

    # ---------------------------------------------------------------- backward pass (layers of δ)
    def layers(self) -> tuple:
        if self.s.matrix_mode:
            return self.matrix_layers()
        s, g, calc = self.s, self.s.g, self.s.calc
        params = [(n, e) for n in s.derived for e in g.quantities[n].entries]
        deltas: dict = {}
        for _, e in params:
            for c in calc.consumers(e):
                if c != g.loss_entry and tidy_formula(calc.local(c, e).formula) != 0:
                    deltas.setdefault(c, None)
        dist = distances(g, calc)
        order = {e: i for i, e in enumerate(g.order)}
        self.delta_sym = delta_symbols({e: s.edisp(e) for e in deltas})
        self.deltas = set(deltas)

        def layer_of(e) -> int:
            ds = [dist.get(c, 10 ** 9) if c != g.loss_entry else 0 for c in calc.consumers(e)]
            return min(ds) if ds else 10 ** 9

        keys = sorted({dist.get(d, 10 ** 9) for d in deltas} | {layer_of(e) for _, e in params})
        # a layer is named by its place among all the network's layers, as in matrix_layers: with
        # --only skipping the output layer's parameters, the hidden layer is still the hidden one
        every = sorted({layer_of(e) for n in g.parameters for e in g.quantities[n].entries} | set(keys))
        out = []
        for key in keys:
            k = every.index(key)
            ds = sorted((d for d in deltas if dist.get(d, 10 ** 9) == key), key=lambda d: order.get(d, 0))
            dlist = tuple(self.delta(d) for d in ds)
            glist = tuple(self.grad(n, e) for n, e in params if layer_of(e) == key)
            out.append(Layer(k, len(every), dlist, glist, tuple(group(d.eq for d in dlist)),
                             tuple(group(x.eq for x in glist))))
        return tuple(out)

    def _terms(self, X) -> list:
        """∂L/∂X as a sum of products of factors, the loss side first: ('d', c) a δ, ('l', of, wrt,
        formula) a local derivative, ('g', terms) a parenthesised sum."""
        g, calc = self.s.g, self.s.calc
        terms = []
        for c in calc.consumers(X):
            f = tidy_formula(calc.local(c, X).formula)
            if f == 0:
                continue
            if c == g.loss_entry:
                head = []
            elif c in self.deltas:
                head = [("d", c)]
            else:
                sub = self._terms(c)
                if not sub:
                    continue
                head = list(sub[0]) if len(sub) == 1 else [("g", sub, c)]
            terms.append(_merge_identities(head + [("l", c, X, f, calc.local(c, X))]))
        return terms

    def _shown(self, n) -> str:
        self.seen.append(n)
        return shown(n)

    def _rel(self, prev: str = "=") -> str:
        """'=' when the line before is exact (`prev`) and every number the line shows is, else '≈'
        (the worked solution's convention: '=' marks an exact value)."""
        rel = relation(self.seen) if prev == "=" else "\\approx"
        self.seen = []
        return rel

    @staticmethod
    def _last(rel: str, values) -> str:
        """The relation before a line's final value: that of the value itself (`relation`) after
        an exact line, '≈' once a line before it was rounded."""
        return relation(values) if rel == "=" else "\\approx"

    def _own_prime(self, of, wrt):
        """The name of the function of [functions] when entry `of` is that function of the entry
        `wrt` alone (out = f(net), or h = f(z) entry by entry), else None."""
        q = self.s.g.quantities[of.quantity]
        t = q.written
        if isinstance(t, ex.Call) and t.fn in self.s.spec.functions and isinstance(t.args[0], ex.Name) \
                and t.args[0].id == wrt.quantity and (q.is_scalar or wrt.index == of.index):
            return t.fn
        return None

    def _tex(self, terms, mode: str, label: bool = False) -> list:
        """Chunks of a sum of products: mode 'sym' (∂-notation), 'formula', 'num' (the formulas with
        the numbers substituted) or 'val' (every factor by its value; with `label`, a local
        derivative that is a product or sum is labelled by its formula, so that a line following
        the formula directly still shows where each number comes from: 2.28973e-11 under h₁(1 − h₁)).
        The numbers shown are recorded in `seen`."""
        s = self.s
        chunks = []
        for i, prod in enumerate(terms):
            parts = []
            several = len(prod if mode == "sym" else [f for f in prod if not (f[0] == "l" and f[3] == 1)]) > 1
            for f in prod:
                if f[0] == "d":
                    v = self._shown(s.sol.adjoint(f[1])) if mode in ("num", "val") else self.delta_sym[f[1]]
                    parts.append(paren(v) if several else v)
                elif f[0] == "g" and mode == "val":
                    parts.append(paren(self._shown(s.sol.adjoint(f[2]))))
                elif f[0] == "g":
                    parts.append(f"\\left({join(self._tex(f[1], mode))}\\right)")
                elif mode == "sym":
                    parts.append(pr.deriv(s.edisp(f[1]) if f[1] != s.g.loss_entry else s.L, s.edisp(f[2])))
                else:
                    formula = f[3]
                    if formula == 1:
                        continue
                    own = self._own_prime(f[1], f[2])
                    if own is not None and mode in ("formula", "num"):
                        # out = f(net) with f of [functions]: the factor is f′(net), f′(0.15)
                        arg = s.edisp(f[2]) if mode == "formula" else pr.number(self._shown(s.sol.value(f[2], 0)))
                        parts.append(pr.call(pr.function_prime(own), arg))
                        continue
                    if mode == "val":
                        tex = self._shown(s.sol.local(f[4]))
                        if label and isinstance(formula, (sp.Mul, sp.Add)):
                            tex = f"\\underbrace{{{tex}}}_{{{pr.latex(formula, s.names)}}}"
                        tex = paren(tex) if several else tex
                    elif mode == "formula":
                        tex = pr.latex(formula, s.names)
                    else:
                        tex = pr.latex(formula, s.names, values=lambda e: self._shown(s.sol.value(e, 0)))
                    if mode != "val" and several and pr.needs_parens_in_product(formula):
                        tex = f"\\left({tex}\\right)"
                    parts.append(tex)
            tex = pr.product(parts)
            if i == 0:
                chunks.append(("", tex))
            elif tex.startswith("-"):
                chunks.append(("-", tex[1:]))
            else:
                chunks.append(("+", tex))
        return chunks or one("0")

    def delta(self, X) -> Delta:
        s = self.s
        sym = self.delta_sym[X]
        terms = self._terms(X)
        parts = [("=", one(pr.deriv(s.L, s.edisp(X)))), ("=", self._tex(terms, "sym")),
                 ("=", self._tex(terms, "formula"))] + self._closed(X)
        value = ""
        breaks = (2,)
        if s.numeric:
            n = s.sol.adjoint(X)
            value = shown(n)
            breaks = (2, len(parts))
            self.seen = []
            num = self._tex(terms, "num")
            rel = self._rel()
            skipped = pr.rounds_to_one(join(num))   # no 1.00000·(1 − 1.00000) for a saturated unit
            if not skipped:
                parts.append((rel, num))
            val = self._tex(terms, "val", label=skipped)
            rel = self._rel("=" if skipped else rel)
            parts += [(rel, val), (self._last(rel, [n]), one(value))]
        return Delta(X.quantity, sym, s.edisp(X), layout(sym, parts, breaks), value)

    def grad(self, name: str, entry) -> Grad:
        s = self.s
        terms = self._terms(entry)
        lhs = pr.deriv(s.L, s.edisp(entry))
        parts = [("=", self._tex(terms, "sym")), ("=", self._tex(terms, "formula"))]
        if _has_closed_delta(self, terms):      # σ + cross-entropy: δ = ŷ − y, so ∂L/∂w = x(ŷ − y)
            parts += self._closed(entry)
        breaks: tuple = ()
        if s.symbolic and any(f[0] == "d" and _has_delta(self._terms(f[1])) for t in terms for f in t):
            full = self._full_chunks(entry)
            if pr.width(join(full)) <= FULL_FORMULA_WIDTH:
                parts.append(("=", full))
                breaks = (2,)
        value = ""
        if s.numeric:
            n = s.sol.adjoint(entry)
            value = shown(n)
            self.seen = []
            num = self._tex(terms, "num")
            rel = self._rel()
            parts += [(rel, num), (self._last(rel, [n]), one(value))]
            breaks = (2,)
        return Grad(name, s.edisp(entry), layout(lhs, parts, breaks), value)

    # ---------------------------------------------------------------- backward pass (matrix form)
    def matrix_layers(self) -> tuple:
        """The layers of a matrix spec, as `layers` gives them for scalar ones: the error signal of
        each quantity a derived parameter enters directly, δ_Z = ∂L/∂Z as a matrix, derived once
        (the matrix-form rule in the ∂L/∂Y of Z's consumers, the same in named quantities and the
        δs of the layer after it, the numbers, the value); then each parameter's gradient in one
        line, ∂L/∂W = δ_Z · Aᵀ with its numbers and value."""
        s, rules = self.s, self.s.rules
        deltas: list = []
        for name in s.derived:
            for t in rules[name].terms if name in rules else ():
                if t.consumer != s.loss and t.consumer not in deltas:
                    deltas.append(t.consumer)
        dist = {s.loss: 0}
        for d in reversed(s.spec.forward):
            cs = [dist[t.consumer] for t in rules[d.name].terms if t.consumer in dist] if d.name in rules else []
            if cs and d.name not in dist:
                dist[d.name] = 1 + min(cs)
        self.delta_sym = delta_symbols({d: s.names[d] for d in deltas})
        self.mdeltas = tuple(deltas)

        def layer_of(name) -> int:
            ds = [dist.get(t.consumer, 10 ** 9) for t in rules[name].terms] if name in rules else []
            return min(ds) if ds else 10 ** 9

        keys = sorted({dist.get(d, 10 ** 9) for d in deltas} | {layer_of(n) for n in s.derived})
        # a layer is named by its place among all the network's layers (--only may skip some)
        every = sorted({layer_of(n) for n in s.g.parameters} | set(keys))
        order = [d.name for d in s.spec.forward]
        out = []
        for key in keys:
            k = every.index(key)
            ds = sorted((d for d in deltas if dist.get(d, 10 ** 9) == key), key=order.index)
            dlist = tuple(self.matrix_delta(d) for d in ds)
            glist = tuple(self.matrix_grad(n) for n in s.derived if layer_of(n) == key)
            out.append(Layer(k, len(every), dlist, glist, tuple(group(d.eq for d in dlist)),
                             tuple(group(x.eq for x in glist))))
        return tuple(out)

    def _mrule(self, name: str):
        """∂L/∂name as one matrix expression: the sum of its rule's terms."""
        terms = [t.expr for t in self.s.rules[name].terms]
        out = terms[0]
        for t in terms[1:]:
            out = mf.MAdd(out, t)
        return out

    def _mdelta(self, m, inline: bool):
        """The expression with the adjoints of δ quantities named by their δ (DELTA + name) and,
        when `inline`, every other adjoint replaced by its own rule (in δs and named quantities)."""
        if isinstance(m, mf.MSym):
            if not m.adjoint:
                return m
            if m.name in self.mdeltas:
                return mf.MSym(DELTA + m.name)
            return self._mdelta(self._mrule(m.name), True) if inline else m
        if isinstance(m, mf.MNum):
            return m
        kids = {f.name: self._mdelta(getattr(m, f.name), inline) for f in fields(m)
                if not isinstance(getattr(m, f.name), (int, str, Fraction))}
        out = replace(m, **kids)
        # −(a − b) is written b − a: the textbook's (ŷ − y), not −(y − ŷ)
        if isinstance(out, mf.MHad) and isinstance(out.a, mf.MNum) and out.a.value == -1 \
                and isinstance(out.b, mf.MAdd) and out.b.sign == -1:
            return mf.MAdd(out.b.b, out.b.a, -1)
        return out

    def _mprinters(self):
        s = self.s
        names = dict(s.names, **{DELTA + d: self.delta_sym[d] for d in self.mdeltas})
        sym = pr.MatrixPrinter(names, s.L)
        if not s.numeric:
            return sym, None

        def seen(shaped):
            if shaped is not None:
                self.seen.extend(shaped.values)
            return shaped

        def value(n):
            return seen(s.sol.shaped(n[len(DELTA):], "adjoint", 0) if n.startswith(DELTA) else s.sol.shaped(n, "value", 0))

        return sym, pr.MatrixPrinter(names, s.L, value=value, adjoint=lambda n: seen(s.sol.shaped(n, "adjoint", 0)),
                                     local=lambda m: seen(local_value(s, m)))

    def matrix_delta(self, name: str) -> Delta:
        s = self.s
        sym, num = self._mprinters()
        d = self.delta_sym[name]
        rule, full = self._mdelta(self._mrule(name), False), self._mdelta(self._mrule(name), True)
        parts = [("=", one(pr.deriv(s.L, s.names[name]))), ("=", sym.chunks(rule)), ("=", sym.chunks(full))]
        q = s.g.quantities.get(full.name) if isinstance(full, mf.MSym) and not full.adjoint else None
        if q is not None and q.kind == "forward" and isinstance(q.tree, ex.Bin) and q.tree.op in "+-":
            # the loss is defined on a difference D = P − T (E = ½‖D‖²): ∂E/∂P = ∂E/∂D = D, and D
            # written out, so that the line ends in the textbook's P − T and not in a bare name
            tree = pr.TreePrinter(s.names, lambda n: s.g.quantities[n].shape)
            parts.append(("=", tree.chunks(q.tree)))
        terms = s.rules[name].terms
        if len(terms) == 1 and terms[0].general is not None:
            # softmax + cross-entropy: p·Σt − t, which is p − t because t is one-hot (Σt = 1)
            t_name = s.names[terms[0].expr.b.name]
            parts[1:2] = [("=", sym.chunks(terms[0].general)), ("=", sym.chunks(rule))]
        one_hot = t_name if len(terms) == 1 and terms[0].general is not None else ""
        value = ""
        if num is not None:
            parts = dedupe(parts)
            first_num = len(parts)
            shaped = s.sol.shaped(name, "adjoint", 0)
            value = pr.shaped_latex(shaped)
            self.seen = []
            full_num = num.chunks(full)
            rel_full = self._rel()
            rule_num = num.chunks(rule)
            rel_rule = self._rel(rel_full)
            parts += [(rel_full, full_num), (rel_rule, rule_num),
                      (self._last(rel_rule, shaped.values), one(value))]
        else:
            first_num = len(dedupe(parts))
        return Delta(name, d, s.names[name], layout(d, dedupe(parts), (2, first_num)), value, one_hot)

    def matrix_grad(self, name: str) -> Grad:
        s = self.s
        sym, num = self._mprinters()
        lhs = pr.deriv(s.L, s.names[name])
        expr = self._mdelta(self._mrule(name), True)
        parts = [("=", sym.chunks(expr))]
        value = ""
        if num is not None:
            shaped = s.sol.shaped(name, "adjoint", 0)
            value = pr.shaped_latex(shaped)
            self.seen = []
            expr_num = num.chunks(expr)
            rel = self._rel()
            parts += [(rel, expr_num), (self._last(rel, shaped.values), one(value))]
        return Grad(name, s.names[name], layout(lhs, dedupe(parts), (1,)), value)

    def _closed(self, entry) -> list:
        """["= closed form"] where the chain simplifies (softmax or σ with the cross-entropy:
        p − t, ŷ − y; see Calculus.closed_form), else []."""
        closed = self.s.calc.closed_form(entry)
        return [] if closed is None else [("=", one(pr.latex(closed, self.s.names)))]

    def full_formula(self, entry) -> str:
        """dL/d(entry) of a symbolic spec in named quantities, as the worked solution writes it
        (`_full_chunks`: loss side first, the factors in the order of the step formulas) — the
        answer key's formula."""
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
        t_name = ""
        if len(rule.terms) == 1 and rule.terms[0].general is not None:
            # softmax + cross-entropy: p·Σt − t, which is p − t because t is one-hot (Σt = 1)
            t_name = self.s.names[rule.terms[0].expr.b.name]
            parts = [("=", sym.chunks(rule.terms[0].general)), ("=", parts[0][1])]
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
                     tuple(self.s.names[t.consumer] for t in rule.terms), t_name)



def local_value(s: Setting, m):
    """The engine's value of f′(A) (a `matrixform.MDer`, f of the spec's [functions]) at the
    start, in A's shape (a constant f′ too: f(x) = 2x gives a matrix of 2s), or of relu′(A) =
    1[A > 0] (`MFun("step")`), or None when A is not an expression of the language."""
    arg = _tree_of_m(m.x)
    if isinstance(m, mf.MFun) and m.fn == "step":     # relu′(A) = 1[A > 0], with relu′(0) = 0
        if arg is None:
            return None
        at = s.eval(arg, 0)
        one, zero = Number("1", Fraction(1), 1.0, True), Number("0", Fraction(0), 0.0, True)
        return replace(at, values=tuple(one if (v.exact > 0 if v.exact is not None else v.approx > 0) else zero
                                        for v in at.values))
    d = mf.derivative_tree(s.spec.functions[m.fn])
    if arg is None or d is None:
        return None
    at = s.eval(arg, 0)
    v = s.eval(ex.substitute(d, s.spec.functions[m.fn].param, arg), 0)
    if v.shape == () and at.shape != ():
        v = replace(at, values=v.values * len(at.values))
    return v


def _tree_of_m(m):
    """A matrix expression of quantities (no adjoints) as a tree of the expression language."""
    if isinstance(m, mf.MSym):
        return None if m.adjoint or m.name.startswith(DELTA) else ex.Name(m.name)
    if isinstance(m, mf.MNum):
        q = m.value
        n = ex.Num(Fraction(abs(q.numerator)), str(abs(q.numerator)))
        t = n if q.denominator == 1 else ex.Bin("/", n, ex.Num(Fraction(q.denominator), str(q.denominator)))
        return ex.Neg(t) if q < 0 else t
    if isinstance(m, mf.MT):
        x = _tree_of_m(m.x)
        return None if x is None else ex.Call("transpose", (x,))
    if isinstance(m, (mf.MMul, mf.MHad, mf.MAdd)):
        a, b = _tree_of_m(m.a), _tree_of_m(m.b)
        op = "@" if isinstance(m, mf.MMul) else "*" if isinstance(m, mf.MHad) else "+" if m.sign > 0 else "-"
        return None if a is None or b is None else ex.Bin(op, a, b)
    if isinstance(m, mf.MPow):
        x = _tree_of_m(m.x)
        return None if x is None else ex.Bin("^", x, _tree_of_m(mf.MNum(m.n)))
    if isinstance(m, mf.MFun) and m.fn not in ("ones", "step"):
        x = _tree_of_m(m.x)
        return None if x is None else ex.Call(m.fn, (x,))
    return None


def _has_closed_delta(back, terms) -> bool:
    return any(f[0] == "d" and back.s.calc.closed_form(f[1]) is not None for t in terms for f in t)


def _has_delta(terms) -> bool:
    return any(f[0] == "d" or (f[0] == "g" and _has_delta(f[1])) for t in terms for f in t)


def tidy_formula(formula):
    return pr.tidy(formula)


def _merge_identities(prod: list) -> list:
    """A local derivative equal to 1 followed by another merges into it (∂E/∂E_o1 · ∂E_o1/∂out_o1
    is written ∂E/∂out_o1 with the formula of the second)."""
    out = []
    for f in prod:
        if out and out[-1][0] == "l" and f[0] == "l" and out[-1][3] == 1:
            prev = out.pop()
            f = ("l", prev[1], f[2], f[3], f[4])
        out.append(f)
    return out


SUBSCRIPT = re.compile(r"(?:\\mathrm\{)?[A-Za-z]+\}?_\{(.+)\}")


def delta_symbols(displays: dict) -> dict:
    """entry -> δ's LaTeX: the subscript of the quantity's display (net_{o_1} → δ_{o_1}), or the whole
    display where that would name two quantities alike (or there is no subscript)."""
    subs = {}
    for e, d in displays.items():
        m = SUBSCRIPT.fullmatch(d)
        subs[e] = m.group(1) if m else d
    counts: dict = {}
    for v in subs.values():
        counts[v] = counts.get(v, 0) + 1
    return {e: f"\\delta_{{{subs[e] if counts[subs[e]] == 1 else displays[e]}}}" for e in displays}

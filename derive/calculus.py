"""Stage 3 — calculus: the chain rule as data.

Takes a `Graph`; gives, for the loss L and every entry n on the way to it:
- `Adjoint(n)`: dL/dn = Σ over consumers c of n: dL/dc · ∂c/∂n (one `Factor` per consumer);
- `Chain(n)`: the textbook form dL/dn = dL/dk · ∂k/∂… · … · ∂c₁/∂n, following n's single consumer
  upward until k is the loss or an entry with several consumers (whose dL/dk is its Adjoint);
- `paths(p)`: every path from p to L, each a product of local derivatives (summed, they are dL/dp);
- `Gradient(p)`: the chain, the paths and the formula of dL/dp in named quantities.
Values are not computed here (see `numeric`); every formula is a product of `LocalDerivative`s.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from .errors import DeriveError
from .graph import Entry, Graph, LocalDerivative

MAX_PATHS = 64   # a gradient with more paths than this is shown through its chain only
MAX_CLOSED_FORM_OPS = 120   # a sum over paths longer than this is not simplified


@dataclass(frozen=True)
class Chain:
    entry: Entry
    head: Entry                 # the loss, or a branch entry
    factors: tuple              # LocalDerivatives, from head down to entry

    @property
    def formula(self) -> sp.Expr:
        return sp.Mul(*[f.formula for f in self.factors])


@dataclass(frozen=True)
class Adjoint:
    entry: Entry
    terms: tuple                # LocalDerivatives ∂c/∂entry, one per consumer c reaching the loss


@dataclass(frozen=True)
class Path:
    factors: tuple              # LocalDerivatives, from the loss side down to the parameter

    @property
    def formula(self) -> sp.Expr:
        return sp.Mul(*[f.formula for f in self.factors])


@dataclass(frozen=True)
class Gradient:
    entry: Entry
    chain: Chain
    paths: tuple | None         # None when there are more than MAX_PATHS
    formula: sp.Expr            # dL/dp in named quantities (sum over paths, factored)


class Calculus:
    """The chain-rule structure of one graph with respect to one target (by default the loss).

    One object per graph and target: `Calculus(graph, target)` gives the same object every time
    (kept in the graph), so what it has worked out (`reaches`, the formulas, closed forms) is
    worked out once however many stages ask."""

    def __new__(cls, graph: Graph, target: Entry | None = None):
        target = target if target is not None else graph.loss_entry
        made = graph.__dict__.setdefault("_calculus", {})     # a frozen Graph: its own cache
        obj = made.get(target)
        if obj is None:
            obj = made[target] = super().__new__(cls)
            obj.graph, obj.target = graph, target
        return obj

    def __init__(self, graph: Graph, target: Entry | None = None):
        pass                        # set once, by __new__

    @cached_property
    def reaches(self) -> frozenset:
        """Entries the target depends on (including the target itself)."""
        seen = {self.target}
        stack = [self.target]
        while stack:
            e = stack.pop()
            for dep in self.graph.uses.get(e, ()):
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        return frozenset(seen)

    def consumers(self, entry: Entry) -> tuple:
        """Consumers of `entry` through which it affects the target."""
        return tuple(c for c in self.graph.consumers.get(entry, ()) if c in self.reaches)

    def local(self, of: Entry, wrt: Entry) -> LocalDerivative:
        return self.graph.local_derivatives[(of, wrt)]

    def adjoint(self, entry: Entry) -> Adjoint:
        # dL/dn = Σ_c dL/dc · ∂c/∂n
        return Adjoint(entry, tuple(self.local(c, entry) for c in self.consumers(entry)))

    def chain(self, entry: Entry) -> Chain:
        factors = []
        n = entry
        while n != self.target:
            cs = self.consumers(n)
            if len(cs) != 1:
                break
            factors.append(self.local(cs[0], n))
            n = cs[0]
        return Chain(entry, n, tuple(reversed(factors)))

    def is_branch(self, entry: Entry) -> bool:
        return entry != self.target and len(self.consumers(entry)) > 1

    def paths(self, entry: Entry, limit: int = MAX_PATHS) -> tuple | None:
        """Every path entry → target as factors from the target side down; None past `limit`."""
        found: list = []

        def walk(n, below):
            if len(found) > limit:
                return
            if n == self.target:
                found.append(Path(tuple(reversed(below))))
                return
            for c in self.consumers(n):
                walk(c, below + [self.local(c, n)])

        walk(entry, [])
        return None if len(found) > limit else tuple(found)

    @cached_property
    def _formulas(self) -> dict:
        """dTarget/dn in named quantities for every entry reaching the target (factored sums)."""
        out = {self.target: sp.Integer(1)}
        for n in reversed(self.graph.order):
            if n == self.target or n not in self.reaches:
                continue
            out[n] = sp.Add(*[out[c] * self.local(c, n).formula for c in self.consumers(n)])
        return out

    def formula(self, entry: Entry) -> sp.Expr:
        return self._formulas.get(entry, sp.Integer(0))

    def closed_form(self, entry: Entry) -> sp.Expr | None:
        """dL/d(entry) in named quantities when its product (or sum) over the paths simplifies to
        a formula of at most half its operations — σ with the binary cross-entropy gives ŷ − y
        (times ∂z/∂w below z), softmax with the cross-entropy p_j − t_j when t is one-hot (the
        spec's one_hot: t_i² = t_i, t_i·t_k = 0, Σt = 1) —, else None."""
        cache = self.__dict__.setdefault("_closed", {})
        if entry not in cache:
            cache[entry] = self._closed_form(entry)
        return cache[entry]

    def _closed_form(self, entry: Entry) -> sp.Expr | None:
        f = self.formula(entry)
        # only a quotient can cancel (−y/ŷ · ŷ(1 − ŷ), −t_k/p_k · p_k(δ − p_j)): a chain of
        # products without one (σ with a squared error) is left as it is, at no cost
        # (or a sum over one-hot entries, Σ t_k(δ_kj − p_j) = t_j − p_j)
        groups = [gr for gr in one_hot_groups(self.graph) if any(f.has(t) for t in gr)]
        if not groups and not any(isinstance(a, sp.Pow) and a.exp.is_negative for a in sp.preorder_traversal(f)):
            return None
        ops = sp.count_ops(f)
        if ops < 4 or ops > MAX_CLOSED_FORM_OPS:
            return None
        g = sp.factor(sp.cancel(f))
        if groups:
            g = sp.factor(one_hot_reduce(g, groups))
        return _minus_inside(g) if 2 * sp.count_ops(g) <= ops else None

    def gradient(self, entry: Entry) -> Gradient:
        return Gradient(entry, self.chain(entry), self.paths(entry), self.formula(entry))

    def gradients(self) -> dict:
        """Entry -> Gradient for every entry of every parameter."""
        return {e: self.gradient(e)
                for name in self.graph.parameters for e in self.graph.quantities[name].entries}


def _minus_inside(g: sp.Expr) -> sp.Expr:
    """−x(y − ŷ) as x(ŷ − y): a leading minus taken into the one sum among the factors."""
    if isinstance(g, sp.Mul) and g.could_extract_minus_sign():
        sums = [a for a in g.args if isinstance(a, sp.Add)]
        if len(sums) == 1:
            rest = [a for a in g.args if a is not sums[0]]
            return sp.Mul(-sp.Mul(*rest), -sums[0])
    return g


def one_hot_groups(graph: Graph) -> list:
    """The entries of each one-hot column of the spec's one_hot data (a row vector is one)."""
    out = []
    for name in graph.spec.one_hot:
        q = graph.quantities[name]
        r, c = q.shape
        out += [list(q.entries)] if r == 1 else [[q.entries[i * c + j] for i in range(r)] for j in range(c)]
    return out


def one_hot_reduce(expr: sp.Expr, groups: list) -> sp.Expr:
    """expr with each group (the entries t_1 … t_n of one one-hot column) taken one-hot: written
    as c₀ + Σ c_i t_i (t_i² = t_i, t_i t_k = 0 for i ≠ k), then with Σ t_i = 1 as
    (c₀ + λ) + Σ (c_i − λ) t_i for the λ that most c_i equal, which makes their terms vanish:
    −t_j + p_j(t_1 + t_2 + t_3) becomes p_j − t_j.  A group in a denominator is left as it is."""
    for group in groups:
        if not any(expr.has(t) for t in group):
            continue
        num, den = sp.fraction(sp.cancel(sp.together(expr)))
        if any(den.has(t) for t in group):
            continue
        poly = sp.Poly(sp.expand(num), *group)
        c0, cs = sp.Integer(0), [sp.Integer(0)] * len(group)
        for monom, coeff in poly.terms():
            hot = [i for i, d in enumerate(monom) if d]
            if not hot:
                c0 += coeff
            elif len(hot) == 1:
                cs[hot[0]] += coeff
        cs = [sp.expand(x) for x in cs]
        unique = sorted(set(cs), key=sp.default_sort_key)
        lam = max(unique, key=lambda x: (cs.count(x), -sp.count_ops(x)))
        expr = (sp.expand(c0 + lam) + sp.Add(*[(x - lam) * t for x, t in zip(cs, group)])) / den
    return expr


# ---------------------------------------------------------------- the independent cross-check
MAX_COMPOSED_OPS = 4000   # composing the loss is skipped for larger networks


MAX_COMPOSED_DEPTH = 120   # SymPy's diff recurses along the composition (80 tanh layers exceed Python's limit)


def _depth(expr) -> int:
    """The depth of a SymPy expression, without recursion."""
    best, stack = 0, [(expr, 1)]
    while stack:
        e, d = stack.pop()
        best = max(best, d)
        stack.extend((a, d + 1) for a in e.args)
    return best


def composed(graph: Graph, entry: Entry) -> sp.Expr | None:
    """The entry written in input entries only (every definition substituted); None if large."""
    full: dict = {}
    for q in graph.quantities.values():
        if q.kind != "forward":
            continue
        for e, local in zip(q.entries, q.local):
            expr = local.xreplace(full)
            if sp.count_ops(expr) > MAX_COMPOSED_OPS or _depth(expr) > MAX_COMPOSED_DEPTH:
                return None
            full[e] = expr
    return full.get(entry, entry)


def diff_composed(graph: Graph, wrt: Entry, of: Entry | None = None) -> sp.Expr | None:
    """sympy.diff of the fully composed quantity (the loss by default); None when too large."""
    expr = composed(graph, graph.loss_entry if of is None else of)
    if expr is None:
        return None
    try:
        return sp.diff(expr, wrt)
    except (DeriveError, RecursionError):   # RecursionError: SymPy's own recursion, a cross-check only
        return None

"""Formulas, the truth symbolically: chain-rule formulas in textbook order, the correct formula
of a claimed quantity as text, and SymPy's verdict on whether two formulas are identical."""
from __future__ import annotations


import sympy as sp

from . import expr as ex
from . import matrixform as mf
from .calculus import Calculus
from .errors import DeriveError
from .graph import shape_of, to_sympy
from .latexparse import unparse
from .printer import chain_text, text as formula_text, tidy  # noqa: F401 - chain_text: one printer (printer.ChainPrinter)
from .rounding import fraction_text as _fraction_text
from .quantity import derivative_pairs
from .solve import Problem
from .claims import nest


# ---------------------------------------------------------------- formulas: the truth, symbolically
def _text(expr) -> str:
    return formula_text(expr, order="none", textbook=False)


# A derivative formula in chain-rule order: ("prod", [items]) / ("sum", [items]) / SymPy factor.
MAX_CHAIN_TERMS = 24


def chain_formula(graph, a, b, budget=None):
    """∂a/∂b as the textbook product ∂a/∂head · ∂…/∂… · ∂c/∂b of local-derivative formulas (a
    branch head contributes the sum over its consumers); None when it would be too large."""
    budget = budget if budget is not None else [MAX_CHAIN_TERMS]
    calc = Calculus(graph, a)
    if b not in calc.reaches:
        return sp.Integer(0)
    ch = calc.chain(b)
    items = [_tidy(f.formula) for f in ch.factors]
    if ch.head != a:
        terms = []
        for c in calc.consumers(ch.head):
            budget[0] -= 1
            if budget[0] < 0:
                return None
            sub = chain_formula(graph, a, c, budget)
            if sub is None:
                return None
            terms.append(("prod", [sub, _tidy(graph.local_derivatives[(c, ch.head)].formula)]))
        items.insert(0, ("sum", terms))
    return ("prod", items)


def _tidy(f):
    try:
        return tidy(f)
    except Exception:   # noqa: BLE001 - the printer is optional here
        return f


def chain_sympy(node):
    """The chain formula as one SymPy expression (for values and cross-checks)."""
    if isinstance(node, tuple) and node[0] == "prod":
        return sp.Mul(*[chain_sympy(x) for x in node[1]])
    if isinstance(node, tuple) and node[0] == "sum":
        return sp.Add(*[chain_sympy(x) for x in node[1]])
    return node


def expr_text(e) -> str:
    """A SymPy expression in the expression language, in textbook order: y*(1 - y)*w7, a - b."""
    return formula_text(e)


def correct_formula(problem: Problem, tree) -> tuple[str, object]:
    """The true formula of a claimed quantity as text (expression language) and SymPy (or None)."""
    g = problem.graph
    loss = g.loss
    if isinstance(tree, ex.Name):
        q = g.quantities[tree.id]
        if q.kind == "forward":
            return q.text, None
        return ("(given)" if problem.is_symbolic else _value_text(problem, q)), None
    if isinstance(tree, ex.Deriv) and tree.step == 0:
        A, B = g.quantities[tree.of], g.quantities[tree.wrt]
        if A.is_scalar and B.is_scalar:
            ch = chain_formula(g, A.entries[0], B.entries[0])
            if ch is not None:
                return chain_text(ch), ch
            f = _tidy(Calculus(g, A.entries[0]).formula(B.entries[0]))
            return _text(f), f
        if A.is_scalar and A.name == loss:
            rule = _matrix_rule(g, B.name)
            if rule is not None:
                return rule, None
        return "(entrywise)", None
    if isinstance(tree, ex.AtStep) and tree.name in problem.spec.update:
        lr = problem.spec.learning_rate
        eta = "eta" if lr is None else _fraction_text(lr)
        prev = tree.name if tree.step == 1 else f"{tree.name}@{tree.step - 1}"
        grad = f"d{loss}/d{tree.name}" + (f"@{tree.step - 1}" if tree.step > 1 else "")
        return f"{prev} - {eta}*{grad}", None
    if isinstance(tree, ex.AtStep):
        q = g.quantities[tree.name]
        if q.kind == "forward":
            return f"{q.text}  (with the values after {tree.step} step(s))", None
        return tree.name, None
    return unparse(tree), None


def _value_text(problem: Problem, q) -> str:
    table = problem.spec.data if q.name in problem.spec.data else problem.spec.parameters
    v = table[q.name]
    texts = [_fraction_text(x) for x in v.entries]
    return str(nest(texts, v.shape, v.flat_list)) if v.shape != () else texts[0]


def _matrix_rule(graph, name: str) -> str | None:
    for rule in mf.matrix_rules(graph):
        if rule.wrt == name:
            return " + ".join(mexpr_text(t.expr, graph.loss) for t in rule.terms)
    return None


def mexpr_text(m, loss: str) -> str:
    return formula_text(m, loss=loss)


MAX_SYMBOLIC_OPS = 400


def symbolically_equal(problem: Problem, claim_tree, of_tree, fixed: dict) -> bool:
    """SymPy's verdict that two quantity trees are identical once every definition is expanded
    (inputs in `fixed` substituted); False when it cannot tell (or the expressions are large)."""
    g = problem.graph
    try:
        full = _expanded(g, fixed)
        if full is None:
            return False

        def value(name):
            q = g.quantities[name]
            vals = [full.get(e, fixed.get(e, e)) for e in q.entries]
            return vals[0] if q.is_scalar else sp.ImmutableMatrix(q.shape[0], q.shape[1], vals)

        def env(node):
            if isinstance(node, ex.Name):
                return value(node.id)
            if isinstance(node, ex.Deriv) and node.step == 0:
                A, B = g.quantities[node.of], g.quantities[node.wrt]
                pairs = derivative_pairs(g, A, B, "")
                vals = []
                for a, b in pairs:
                    f = Calculus(g, a).formula(b)
                    vals.append(f.xreplace(full).xreplace(fixed))
                shape = B.shape if A.is_scalar else A.shape
                return vals[0] if shape == () else sp.ImmutableMatrix(shape[0], shape[1], vals)
            raise _NotSymbolic()

        lhs, rhs = to_sympy(claim_tree, env), to_sympy(of_tree, env)
        ls = list(lhs) if shape_of(lhs) else [lhs]
        rs = list(rhs) if shape_of(rhs) else [rhs]
        if len(ls) == 1 and len(rs) > 1:
            ls = ls * len(rs)
        if len(ls) != len(rs):
            return False
        for a, b in zip(ls, rs):
            d = a - b
            if d == 0:
                continue
            if sp.count_ops(d) > MAX_SYMBOLIC_OPS:
                return False
            d = d.rewrite(sp.exp)
            if sp.expand(d) == 0:
                continue
            if sp.simplify(sp.cancel(sp.together(d))) != 0:
                return False
        return True
    except (_NotSymbolic, DeriveError, TypeError, ValueError, RecursionError, AttributeError):
        return False


def _expanded(g, fixed: dict) -> dict | None:
    """{forward entry: its definition with every definition below it expanded and `fixed`
    substituted}, None when one has over MAX_SYMBOLIC_OPS operations; worked out once per graph
    and `fixed` (kept in the graph: the claims of a file share their fixed inputs)."""
    made = g.__dict__.setdefault("_expanded", {})
    key = frozenset(fixed.items())
    if key in made:
        return made[key]
    full: dict = {}
    for q in g.quantities.values():
        if q.kind != "forward":
            continue
        for e, local in zip(q.entries, q.local):
            expr = local.xreplace(full).xreplace(fixed)
            if sp.count_ops(expr) > MAX_SYMBOLIC_OPS:
                made[key] = None
                return None
            full[e] = expr
    made[key] = full
    return full


class _NotSymbolic(Exception):
    pass

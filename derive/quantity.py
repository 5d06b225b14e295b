"""Quantities: `NAME`, `dA/dB`, `NAME@k`, `dA/dB@k`, and expressions over them.

Takes the text of a quantity and a `Graph`; gives a `Query`: its shape and the SymPy expression of
each entry over placeholder symbols, bound to values and derivatives of entries (numbers from the
engine: `numeric.query_values`, the checker's `World.eval`).  dA/dB is the derivative through the
computation graph (every path from B to A, everything else held fixed): the engine's backward pass
seeded at the entry of A.
Its shape: B's shape when A is a scalar, A's shape when B is a scalar, and A's shape when both
have one shape and A's entries each depend only on the same entry of B (elementwise).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import expr as ex
from .calculus import Calculus
from .errors import DeriveError
from .graph import Entry, Graph, shape_of, to_sympy


@dataclass(frozen=True)
class Query:
    text: str
    tree: object
    shape: tuple
    entries: tuple          # SymPy expression per entry over placeholder symbols
    placeholders: tuple     # (symbol, kind, data) for binding: ('value', entry, k) / ('deriv', of, wrt, k, i, j)
    max_step: int
    flat: bool


def parse_quantity(text: str, graph: Graph):
    known = lambda n: n in graph.quantities  # noqa: E731
    return ex.parse_quantity(text, known)


def make_query(text: str, graph: Graph, where: str = "", tree=None) -> Query:
    """Compile a quantity's text (or its already parsed `tree`, which `text` then only names);
    DeriveError (with `where` as key) for anything wrong."""
    if tree is None:
        try:
            tree = parse_quantity(text, graph)
        except DeriveError as e:
            raise e.located(key=where) from None
    placeholders: list = []
    max_step = [0]

    def value_of(name: str, k: int):
        if name not in graph.quantities:
            raise DeriveError(f"unknown name {name!r}", key=where)
        q = graph.quantities[name]
        max_step[0] = max(max_step[0], k)
        syms = []
        for e in q.entries:
            s = e if k == 0 else Entry(e.quantity, e.index, e.qshape, k)
            placeholders.append((s, ("value", e, k)))
            syms.append(s)
        return syms[0] if q.is_scalar else sp.ImmutableMatrix(q.shape[0], q.shape[1], syms)

    def deriv(of: str, wrt: str, k: int):
        for n in (of, wrt):
            if n not in graph.quantities:
                raise DeriveError(f"unknown name {n!r}", key=where)
        max_step[0] = max(max_step[0], k)
        A, B = graph.quantities[of], graph.quantities[wrt]
        label = f"d{of}/d{wrt}" + (f"@{k}" if k else "")
        pairs = derivative_pairs(graph, A, B, where)
        syms = []
        for idx, (a, b) in enumerate(pairs):
            s = sp.Symbol(f"{label}#{idx}", real=True)
            placeholders.append((s, ("deriv", a, b, k, graph)))
            syms.append(s)
        shape = B.shape if A.is_scalar else A.shape
        return syms[0] if shape == () else sp.ImmutableMatrix(shape[0], shape[1], syms)

    def env(node):
        if isinstance(node, ex.Name):
            return value_of(node.id, 0)
        if isinstance(node, ex.AtStep):
            return value_of(node.name, node.step)
        if isinstance(node, ex.Deriv):
            return deriv(node.of, node.wrt, node.step)
        raise AssertionError(node)

    try:
        value = to_sympy(tree, env)
    except DeriveError as e:
        raise e.located(key=where) from None
    shape = shape_of(value)
    entries = (value,) if shape == () else tuple(value)
    flat = shape != () and shape[1] == 1
    # de-duplicate placeholders, keeping order
    seen, unique = set(), []
    for s, b in placeholders:
        if s not in seen:
            seen.add(s)
            unique.append((s, b))
    return Query(text, tree, shape, entries, tuple(unique), max_step[0], flat)


def derivative_pairs(graph: Graph, A, B, where: str) -> list:
    """(a, b) entry pairs whose derivative ∂a/∂b fills dA/dB, row-major in the result's shape."""
    if A.is_scalar:
        return [(A.entries[0], b) for b in B.entries]
    if B.is_scalar:
        return [(a, B.entries[0]) for a in A.entries]
    if A.shape != B.shape:
        raise DeriveError(f"d{A.name}/d{B.name} would be a Jacobian of a {A.shape[0]}×{A.shape[1]} by a "
                          f"{B.shape[0]}×{B.shape[1]} matrix; one of them must be a scalar, or both "
                          "of one shape and elementwise", key=where)
    if not _elementwise_dependence(graph, A, B):
        raise DeriveError(f"d{A.name}/d{B.name} is a full Jacobian (each entry of {A.name} depends on "
                          f"several entries of {B.name}); ask for a scalar, e.g. d{A.name}/d{B.name} of "
                          "one entry via sum()", key=where)
    return list(zip(A.entries, B.entries))


def _elementwise_dependence(graph: Graph, A, B) -> bool:
    bset = set(B.entries)
    for a, b in zip(A.entries, B.entries):
        reached = Calculus(graph, a).reaches & bset
        if reached - {b}:
            return False
    return True

"""Matrix-form chain rule: dE/dW2 = Hᵀ · dE/dP, dE/dZ = dE/dY ⊙ Y ⊙ (1 − Y), …

Takes a `Graph` whose spec has matrix quantities; gives one `MatrixRule` per quantity X on the
way to the loss: dL/dX = Σ over quantities Y whose definition uses X of a matrix expression in
dL/dY and named quantities, derived from Y's definition by the vector-Jacobian rules
    Y = A @ B:      dL/dA += dL/dY · Bᵀ,        dL/dB += Aᵀ · dL/dY
    Y = A ± B:      dL/dA += dL/dY,            dL/dB += ±dL/dY       (summed where broadcast)
    Y = A * B:      dL/dA += dL/dY ⊙ B  (elementwise)
    Y = f(A):       dL/dA += dL/dY ⊙ f'(A)     (σ' = Y ⊙ (1 − Y), tanh' = 1 − Y ⊙ Y, exp' = Y)
    Y = ‖A‖²_F:     dL/dA += 2 · dL/dY · A;   Y = sum(A): dL/dA += dL/dY · 1;   Y = mean(A): dL/dA += dL/dY · 1/n
Each rule is data (`MExpr` trees) that the handouts print and `verify` evaluates entry by entry
against the scalar derivation.  A definition outside these rules gives no matrix form.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from . import expr as ex
from .calculus import Calculus
from .engine import depends_on
from .graph import Graph, derivative_tree, outline, shape_of, to_sympy


class Unsupported(Exception):
    pass


# ---------------------------------------------------------------- matrix expressions
@dataclass(frozen=True)
class MSym:
    name: str            # a quantity name
    adjoint: bool = False  # True: dL/d(name)


@dataclass(frozen=True)
class MNum:
    value: Fraction


@dataclass(frozen=True)
class MT:
    x: object


@dataclass(frozen=True)
class MMul:               # matrix product
    a: object
    b: object


@dataclass(frozen=True)
class MHad:              # elementwise product (or scalar times matrix)
    a: object
    b: object


@dataclass(frozen=True)
class MAdd:
    a: object
    b: object
    sign: int = 1


@dataclass(frozen=True)
class MPow:              # elementwise power by a number
    x: object
    n: Fraction


@dataclass(frozen=True)
class MFun:              # elementwise function or reduction: sigmoid, step, sum, ones, …
    fn: str
    x: object


@dataclass(frozen=True)
class MDer:              # f′(x) elementwise, f a function of the spec's [functions]
    fn: str
    x: object


def scale(c: Fraction, x):
    if c == 1:
        return x
    if isinstance(x, MNum):
        return MNum(c * x.value)
    if isinstance(x, MHad) and isinstance(x.a, MNum):
        return scale(c * x.a.value, x.b)
    return MHad(MNum(c), x)


def had(a, b):
    if isinstance(a, MNum):
        return scale(a.value, b)
    if isinstance(b, MNum):
        return scale(b.value, a)
    return MHad(a, b)


# ---------------------------------------------------------------- the rules
@dataclass(frozen=True)
class MatrixTerm:
    consumer: str        # Y
    expr: object         # the contribution to dL/dX, in dL/dY and named quantities
    general: object = None   # the same before a one-hot simplification (p·Σt − t before p − t)


@dataclass(frozen=True)
class MatrixRule:
    wrt: str             # X
    terms: tuple         # MatrixTerms

    def evaluate(self, state, ctx):
        """dL/dX entries (row-major) from the true adjoints of the consumers, for checking."""
        total = None
        for t in self.terms:
            v = evaluate(t.expr, state, ctx, self._graph)
            total = v if total is None else _zip(total, v, lambda a, b: a + b)
        n = len(self._graph.quantities[self.wrt].entries)
        return _flatten(total) if isinstance(total, list) else [total] * n


MAX_RULE_DEPTH = 60   # definitions deeper than this (a 500-term sum of matrices) get no matrix-form rule


def _rules_cache(graph):
    return graph.__dict__.setdefault("_matrix_rules", {})


def matrix_rules(graph: Graph) -> tuple:
    """The matrix-form rules of a graph, or () when it has no matrix quantity or a rule is unsupported."""
    cache = _rules_cache(graph)
    if "rules" in cache:
        return cache["rules"]
    rules = ()
    deep = [q.name for q in graph.quantities.values()
            if q.kind == "forward" and ex.depth(q.tree) > MAX_RULE_DEPTH]
    if deep:   # the rules are built by recursion over the definitions: keep that recursion short
        cache["unsupported"] = f"{deep[0]} is too long a formula for a matrix-form rule"
    elif any(not q.is_scalar for q in graph.quantities.values()):
        try:
            rules = _derive_rules(graph)
        except Unsupported as e:
            cache["unsupported"] = str(e)
            rules = ()
    cache["rules"] = rules
    return rules


def _derive_rules(graph: Graph) -> tuple:
    reaches = Calculus(graph).reaches
    on_path = {e.quantity for e in reaches}
    rules = _rules_of(graph.quantities.values(), graph.loss, on_path, lambda t: _shape(t, graph),
                      graph.spec.one_hot, graph.spec.functions)
    for rule in rules:
        object.__setattr__(rule, "_graph", graph)
    return rules


def softmax_cross_entropy(quantities, loss: str, one_hot=()) -> tuple | None:
    """(p, p, z, t) when the loss is the cross-entropy −sum(t * log(p)) (either order, ln too)
    of p = softmax(z) of a name z, p used by nothing else and t a name: the textbook's fused
    rule dL/dz = p − t applies (with t one-hot).  None otherwise."""
    by_name = {q.name: q for q in quantities}
    q = by_name.get(loss)
    tree = q.tree if q is not None else None
    if not (isinstance(tree, ex.Neg) and isinstance(tree.operand, ex.Call) and tree.operand.fn == "sum"):
        return None
    prod = tree.operand.args[0]
    if not (isinstance(prod, ex.Bin) and prod.op == "*"):
        return None
    for t, lg in ((prod.left, prod.right), (prod.right, prod.left)):
        if isinstance(t, ex.Name) and isinstance(lg, ex.Call) and lg.fn == "log" and isinstance(lg.args[0], ex.Name):
            p = lg.args[0].id
            pq = by_name.get(p)
            if pq is None or pq.kind != "forward":
                continue
            sm = pq.tree
            if not (isinstance(sm, ex.Call) and sm.fn == "softmax" and isinstance(sm.args[0], ex.Name)):
                continue
            users = [u for u in quantities if u.kind == "forward" and p in ex.names_in(u.tree) and u.name != p]
            if [u.name for u in users] != [loss] or t.id == p:
                continue
            return (p, p, sm.args[0].id, t.id)
    return None


def _rules_of(quantities, loss: str, on_path: set, shape, one_hot=(), functions=None) -> tuple:
    """The rules of quantities (objects with name, kind, tree, shown) given the names on the way
    to the loss and `shape(tree)`; Unsupported when a definition is outside the rules (or calls a
    function of [functions] whose derivative the expression language cannot write)."""
    quantities = list(quantities)
    for q in quantities:
        for fn in ex.calls(q.shown, functions or {}) if q.kind == "forward" else ():
            if derivative_tree(functions[fn]) is None:
                raise Unsupported(f"the derivative of {fn}")
    contributions: dict[str, list] = {}
    fused = softmax_cross_entropy(quantities, loss, one_hot)
    for q in reversed(quantities):
        if q.kind != "forward" or q.name not in on_path:
            continue
        if fused is not None and q.name == fused[1]:
            continue        # p = softmax(z) with the cross-entropy: dL/dz = p − t, given at the loss
        if fused is not None and q.name == loss:
            p, _z, z, t = fused
            # L = −Σ t ∘ log p, p = softmax(z): dL/dz = p − t when t is one-hot (Σt = 1), else p·Σt − t
            general = MAdd(had(MSym(p), MFun("sum", MSym(t))), MSym(t), -1)
            hot = bool(one_hot) and t in one_hot
            contributions.setdefault(z, []).append(MatrixTerm(q.name, MAdd(MSym(p), MSym(t), -1) if hot else general,
                                                              general if hot else None))
            continue
        G = MNum(Fraction(1)) if q.name == loss else MSym(q.name, adjoint=True)
        for name, contrib in _vjp(q.shown, G, shape, whole=q.name):
            if name in on_path:
                contributions.setdefault(name, []).append(MatrixTerm(q.name, contrib))
    return tuple(MatrixRule(q.name, tuple(contributions[q.name])) for q in quantities
                 if q.name in contributions and q.name != loss)


def spec_rules(spec, shapes: dict) -> tuple:
    """The matrix-form rules of a numeric spec from its definitions and the shapes of its names
    (`engine.Program.shapes`), without the per-scalar graph (for printing: a rule made here has
    no `evaluate`); () when a definition is outside the rules or too long."""
    if any(ex.depth(d.tree) > MAX_RULE_DEPTH for d in spec.forward):
        return ()
    on_path = depends_on(spec, spec.loss)
    try:
        return _rules_of(outline(spec, shapes).values(), spec.loss, on_path,
                         lambda t: ex.tree_shape(t, shapes.__getitem__), spec.one_hot, spec.functions)
    except Unsupported:
        return ()


def _shape(tree, graph):
    return shape_of(to_sympy(ex.inline(tree, graph.spec.functions), lambda n: graph.quantities[n.id].as_value()))


def _value(tree):
    """The matrix expression of a sub-tree of a definition."""
    if isinstance(tree, ex.Name):
        return MSym(tree.id)
    if isinstance(tree, ex.Num):
        return MNum(tree.value)
    if isinstance(tree, ex.Neg):
        return scale(Fraction(-1), _value(tree.operand))
    if isinstance(tree, ex.Bin):
        a, b = _value(tree.left), _value(tree.right)
        if tree.op == "@":
            return MMul(a, b)
        if tree.op in "+-":
            return MAdd(a, b, 1 if tree.op == "+" else -1)
        if tree.op == "*":
            return had(a, b)
        if tree.op == "^" and _constant(tree.right) is not None:
            return MPow(a, _constant(tree.right))
        raise Unsupported(tree.op)
    if isinstance(tree, ex.Call):
        if tree.fn == "transpose":
            return MT(_value(tree.args[0]))
        return MFun(tree.fn, _value(tree.args[0]))
    raise Unsupported(tree)


def _constant(tree) -> Fraction | None:
    """The value of a tree made of numbers only (like 1/2), else None."""
    if ex.is_chain(tree) and tree.op in "+-*/":   # along the chain, not down it
        first, rest = ex.spine(tree)
        value = _constant(first)
        for op, t in rest:
            b = _constant(t)
            if value is None or b is None or op == "@" or (op == "/" and b == 0):
                return None
            value = {"+": value + b, "-": value - b, "*": value * b, "/": value / b}[op]
        return value
    if isinstance(tree, ex.Num):
        return tree.value
    if isinstance(tree, ex.Neg):
        c = _constant(tree.operand)
        return None if c is None else -c
    if isinstance(tree, ex.Bin) and tree.op in "+-*/":
        a, b = _constant(tree.left), _constant(tree.right)
        if a is None or b is None or (tree.op == "/" and b == 0):
            return None
        return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else None}[tree.op]
    return None


def _unbroadcast(G, operand_tree, result_tree, shape):
    if shape(operand_tree) == () and shape(result_tree) != ():
        return MFun("sum", G)
    return G


DERIVATIVE_OF = {
    # f'(A) in terms of Y = f(A) (when Y is the whole definition) or of A
    "sigmoid": lambda Y, A: had(Y, MAdd(MFun("ones", Y), Y, -1)),
    "tanh": lambda Y, A: MAdd(MFun("ones", Y), had(Y, Y), -1),
    "exp": lambda Y, A: Y,
    "relu": lambda Y, A: MFun("step", A),
    "log": lambda Y, A: MPow(A, Fraction(-1)),
}


def _vjp(tree, G, shape, whole: str | None = None):
    """[(name, contribution to dL/dname)] for a definition tree receiving adjoint G."""
    if isinstance(tree, ex.Name):
        return [(tree.id, G)]
    if isinstance(tree, ex.Num):
        return []
    if isinstance(tree, ex.Neg):
        return _vjp(tree.operand, scale(Fraction(-1), G), shape)
    if isinstance(tree, ex.Bin):
        l, r = tree.left, tree.right
        if tree.op == "@":
            # Y = A B: dL/dA = dL/dY Bᵀ, dL/dB = Aᵀ dL/dY
            return _vjp(l, MMul(G, MT(_value(r))), shape) + _vjp(r, MMul(MT(_value(l)), G), shape)
        if tree.op in "+-":
            sign = Fraction(1 if tree.op == "+" else -1)
            return (_vjp(l, _unbroadcast(G, l, tree, shape), shape)
                    + _vjp(r, _unbroadcast(scale(sign, G), r, tree, shape), shape))
        if tree.op == "*":
            cl, cr = _constant(l), _constant(r)
            if cl is not None:
                return _vjp(r, scale(cl, G), shape)
            if cr is not None:
                return _vjp(l, scale(cr, G), shape)
            return (_vjp(l, _unbroadcast(had(G, _value(r)), l, tree, shape), shape)
                    + _vjp(r, _unbroadcast(had(_value(l), G), r, tree, shape), shape))
        if tree.op == "/" and _constant(r):
            return _vjp(l, scale(1 / _constant(r), G), shape)
        if tree.op == "^" and isinstance(r, ex.Num) and r.value == 2:
            if isinstance(l, ex.Call) and l.fn == "frobenius":
                # d‖A‖²_F/dA = 2A
                return _vjp(l.args[0], scale(Fraction(2), had(G, _value(l.args[0]))), shape)
            # d(A²)/dA = 2A (elementwise)
            return _vjp(l, scale(Fraction(2), had(G, _value(l))), shape)
        raise Unsupported(tree.op)
    if isinstance(tree, ex.Call):
        arg = tree.args[0]
        if tree.fn == "transpose":
            return _vjp(arg, MT(G), shape)
        if tree.fn == "sum":
            # d sum(A)/dA = 1 (a matrix of ones; a number broadcasts by itself)
            ones = G if isinstance(G, MNum) else had(G, MFun("ones", _value(arg)))
            return _vjp(arg, ones, shape)
        if tree.fn == "mean":
            # d mean(A)/dA = 1/n (n the number of entries of A)
            n = 1
            for d in shape(arg) or ():
                n *= d
            ones = G if isinstance(G, MNum) else had(G, MFun("ones", _value(arg)))
            return _vjp(arg, scale(Fraction(1, n), ones), shape)
        if tree.fn in DERIVATIVE_OF:
            Y = MSym(whole) if whole else _value(tree)
            return _vjp(arg, had(G, DERIVATIVE_OF[tree.fn](Y, _value(arg))), shape)
        if tree.fn not in ex.FUNCTIONS:
            # f of the spec's [functions]: dL/dA = dL/dY ⊙ f′(A), f′ by sympy.diff of its body
            return _vjp(arg, had(G, MDer(tree.fn, _value(arg))), shape)
        raise Unsupported(tree.fn)
    raise Unsupported(tree)


# ---------------------------------------------------------------- numbers (for checking)
def _zip(a, b, f):
    if not isinstance(a, list) and not isinstance(b, list):
        return f(a, b)
    if not isinstance(a, list):
        return [[f(a, y) for y in row] for row in b]
    if not isinstance(b, list):
        return [[f(x, b) for x in row] for row in a]
    return [[f(x, y) for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]


def _flatten(v):
    return [v] if not isinstance(v, list) else [x for row in v for x in row]


def _as_matrix(name, values_or_adj, graph):
    q = graph.quantities[name]
    vals = [values_or_adj[e] for e in q.entries]
    if q.is_scalar:
        return vals[0]
    r, c = q.shape
    return [vals[i * c:(i + 1) * c] for i in range(r)]


def scalar_value(tree, param: str, x, ctx):
    """The value of a function body (a tree in `param`, numbers and built-in functions) at the
    number x, in the arithmetic of `ctx` (for checking f and f′ of [functions])."""
    if isinstance(tree, ex.Name):
        return x
    if isinstance(tree, ex.Num):
        return ctx.const(tree.value)
    if isinstance(tree, ex.Neg):
        return -scalar_value(tree.operand, param, x, ctx)
    if isinstance(tree, ex.Bin):
        first, rest = ex.spine(tree) if ex.is_chain(tree) else (tree.left, [(tree.op, tree.right)])
        value = scalar_value(first, param, x, ctx)
        for op, t in rest:
            b = scalar_value(t, param, x, ctx)
            value = {"+": lambda: value + b, "-": lambda: value - b, "*": lambda: value * b,
                     "/": lambda: value / b, "^": lambda: ctx.pow(value, b)}[op]()
        return value
    if isinstance(tree, ex.Call):
        a = scalar_value(tree.args[0], param, x, ctx)
        if tree.fn == "max":
            b = scalar_value(tree.args[1], param, x, ctx)
            return a if bool(a >= b) else b
        return ctx.func(tree.fn, a)
    raise AssertionError(tree)


def evaluate(m, state, ctx, graph):
    if isinstance(m, MSym):
        return _as_matrix(m.name, state.adjoint if m.adjoint else state.values, graph)
    if isinstance(m, MNum):
        return ctx.const(m.value)
    if isinstance(m, MT):
        v = evaluate(m.x, state, ctx, graph)
        return v if not isinstance(v, list) else [list(col) for col in zip(*v)]
    if isinstance(m, MMul):
        a, b = evaluate(m.a, state, ctx, graph), evaluate(m.b, state, ctx, graph)
        return [[ctx.add([x * y for x, y in zip(row, col)]) for col in zip(*b)] for row in a]
    if isinstance(m, MHad):
        return _zip(evaluate(m.a, state, ctx, graph), evaluate(m.b, state, ctx, graph), lambda x, y: x * y)
    if isinstance(m, MAdd):
        return _zip(evaluate(m.a, state, ctx, graph), evaluate(m.b, state, ctx, graph),
                    lambda x, y: x + m.sign * y)
    if isinstance(m, MPow):
        v = evaluate(m.x, state, ctx, graph)
        n = ctx.const(m.n)
        return _zip(v, v, lambda x, y: ctx.pow(x, n))
    if isinstance(m, MDer):
        fn = graph.spec.functions[m.fn]
        d = derivative_tree(fn)
        v = evaluate(m.x, state, ctx, graph)
        return _zip(v, v, lambda x, y: scalar_value(d, fn.param, x, ctx))
    if isinstance(m, MFun) and m.fn in graph.spec.functions:
        fn = graph.spec.functions[m.fn]
        v = evaluate(m.x, state, ctx, graph)
        return _zip(v, v, lambda x, y: scalar_value(fn.tree, fn.param, x, ctx))
    if isinstance(m, MFun):
        v = evaluate(m.x, state, ctx, graph)
        if m.fn == "ones":
            return _zip(v, v, lambda x, y: ctx.const(Fraction(1)))
        if m.fn == "sum":
            return ctx.add(_flatten(v))
        return _zip(v, v, lambda x, y: ctx.func(m.fn, x))
    raise AssertionError(m)

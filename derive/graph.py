"""Stage 2 — graph: named quantities, their entries, and their local derivatives.

Takes a `Spec`; gives a `Graph`.  Every data value, parameter and [forward] definition is a
`Quantity` made of scalar *entries* (a scalar has one; an r×c matrix has r·c, row-major), each
an `Entry` symbol.  A forward entry has a *local* SymPy expression over the entries of the
quantities its definition uses directly (`net_h1 = w1*i1 + w2*i2 + b1`), and for every entry it
uses, a `LocalDerivative` ∂entry/∂used computed by `sympy.diff` of that small expression and
written back in named quantities (dσ(net)/dnet = σ(net)(1 − σ(net)) becomes out(1 − out)).
Backpropagation (stage `calculus`) only ever multiplies and adds these local derivatives.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from . import expr as ex
from .errors import DeriveError, LimitError
from .functions import maximum, norm2_of, relu, sigmoid, softmax, softmax_entries, softplus
from .limits import EXP_LIMIT, MAX_POWER_DIGITS
from .spec import Spec, Value

# SymPy recurses several frames per level of a formula (diff, free_symbols): the 100 levels of
# parentheses the parser allows take about 2 500 frames (measured: 99 nested `(… * w + x)`), more
# than Python's default limit of 1 000.  Deeper input is refused by the parser (expr.MAX_NESTING).
RECURSION_LIMIT = 10_000
if sys.getrecursionlimit() < RECURSION_LIMIT:
    sys.setrecursionlimit(RECURSION_LIMIT)
MAX_QUANTITY_ENTRIES = 20_000  # entries in one matrix quantity (a 10⁶-unit layer is refused)
MAX_GRAPH_ENTRIES = 50_000     # entries in all quantities together


class Entry(sp.Symbol):
    """A scalar entry of a named quantity: `w1`, or `W1[1,2]` (0-based inside, 1-based shown)."""

    def __new__(cls, quantity: str, index: tuple = (), shape: tuple = (), step: int = 0):
        label = quantity if not index else f"{quantity}[{index[0]},{index[1]}]"
        if step:
            label = f"{label}@{step}"
        obj = super().__new__(cls, label, real=True)
        obj.quantity = quantity
        obj.index = index
        obj.qshape = shape
        obj.step = step
        return obj

    @property
    def shown(self) -> str:
        """The label as the documents write it, 1-based: W1[1,1] for the entry W1[0,0]."""
        label = self.quantity if not self.index else f"{self.quantity}[{self.index[0] + 1},{self.index[1] + 1}]"
        return f"{label}@{self.step}" if self.step else label

    @property
    def flat(self) -> int:
        """The entry's row-major position in its quantity (0 for a scalar)."""
        return self.index[0] * self.qshape[1] + self.index[1] if self.index else 0

    def __getnewargs_ex__(self):
        return ((self.quantity, self.index, self.qshape, self.step), {})

    def _hashable_content(self):
        return (self.name, self.quantity, self.index, self.qshape, self.step) + tuple(
            sorted(self.assumptions0.items()))


@dataclass(frozen=True)
class Quantity:
    name: str
    kind: str                  # "data" | "parameter" | "forward"
    shape: tuple               # () for a scalar, (rows, cols) for a matrix
    entries: tuple             # Entry symbols, row-major
    local: tuple = ()          # forward only: a SymPy expression per entry
    uses: tuple = ()           # forward only: names used directly, in order of first use
    text: str = ""             # forward only: the definition as written
    tree: object = None        # forward only: the parsed definition ([functions] calls inlined)
    written: object = None     # forward only: the tree as written, when it calls [functions]

    @property
    def shown(self):
        """The definition's tree as written (f(W @ x)), for the documents."""
        return self.written if self.written is not None else self.tree

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()

    def as_value(self):
        """The entries as a SymPy scalar or an ImmutableMatrix."""
        if self.is_scalar:
            return self.entries[0]
        return sp.ImmutableMatrix(self.shape[0], self.shape[1], list(self.entries))


@dataclass(frozen=True)
class LocalDerivative:
    """∂of/∂wrt for an entry `of` whose local expression uses entry `wrt` directly."""
    of: Entry
    wrt: Entry
    formula: sp.Expr


@dataclass(frozen=True)
class Graph:
    spec: Spec
    quantities: dict                    # name -> Quantity, in definition order
    local_derivatives: dict             # (of, wrt) -> LocalDerivative
    uses: dict                          # entry -> entries its local expression uses (ordered)
    consumers: dict                     # entry -> entries whose local expression uses it
    order: tuple                        # all entries, inputs first, in evaluation order
    parameters: tuple                   # names of trainable quantities
    loss: str

    def quantity_of(self, entry: Entry) -> Quantity:
        return self.quantities[entry.quantity]

    @property
    def loss_entry(self) -> Entry:
        return self.quantities[self.loss].entries[0]


# ---------------------------------------------------------------- AST -> SymPy, with shapes
def shape_of(v) -> tuple:
    return tuple(v.shape) if isinstance(v, sp.MatrixBase) else ()


_shape_text = ex.shape_text


def _elementwise(op, a, b, opname: str):
    sa, sb = shape_of(a), shape_of(b)
    if sa == () and sb == ():
        return op(a, b)
    if sa == ():
        return b.applyfunc(lambda y: op(a, y))
    if sb == ():
        return a.applyfunc(lambda x: op(x, b))
    ex.checked_shape(opname, sa, sb)
    return sp.ImmutableMatrix(sa[0], sa[1], [op(x, y) for x, y in zip(a, b)])


def _matmul(a, b):
    sa, sb = shape_of(a), shape_of(b)
    ex.checked_shape("@", sa, sb)
    if sa[0] * sb[1] > MAX_QUANTITY_ENTRIES or sa[0] * sb[1] * sa[1] > 20 * MAX_QUANTITY_ENTRIES:
        raise LimitError(f"'@' would make a {sa[0]}×{sb[1]} matrix from {sa[1]}-term sums; the limit is "
                         f"{MAX_QUANTITY_ENTRIES} entries")
    return sp.ImmutableMatrix(a * b)


def _safe_pow(base, exponent):
    if shape_of(exponent) != ():
        raise DeriveError("an exponent must be a scalar")
    if base.is_number and exponent.is_number and exponent.is_Rational and base.is_Rational:
        if base != 0 and abs(float(exponent)) * max(len(str(abs(base.p))), len(str(abs(base.q)))) > MAX_POWER_DIGITS:
            raise LimitError(f"the exact value of a power would have more than {MAX_POWER_DIGITS} digits")
        if base == 0 and exponent < 0:
            raise DeriveError("division by zero: 0 to a negative power")
    return base ** exponent


def _divide(a, b):
    if b.is_number and b.is_zero:
        raise DeriveError("division by zero")
    return a / b


def _log(x):
    if x.is_number and x.is_zero:
        raise DeriveError("log(0) is undefined")
    if x.is_number and x.is_negative:
        raise DeriveError(f"log of a negative number ({x})")
    return sp.log(x)


def _sqrt(x):
    if x.is_number and x.is_negative:
        raise DeriveError(f"sqrt of a negative number ({x})")
    return sp.sqrt(x)


def _exp(x):
    if x.is_number and x.is_real and abs(x) > EXP_LIMIT:
        raise LimitError(f"exp of a number larger than {EXP_LIMIT} in size is refused")
    return sp.exp(x)


SCALAR_FUNCTIONS = {
    "sigmoid": sigmoid, "relu": relu, "tanh": sp.tanh, "exp": _exp,
    "log": _log, "sqrt": _sqrt, "softplus": softplus, "abs": sp.Abs,
}


def _softmax(v):
    """softmax of a vector (n×1 or 1×n) or of each column of a matrix."""
    shape = shape_of(v)
    if shape == ():
        raise DeriveError("softmax needs a vector (or a matrix: each column); it got a scalar")
    r, c = shape
    if r == 1 or c == 1:
        return sp.ImmutableMatrix(r, c, softmax_entries(list(v)))
    cols = [softmax_entries([v[i, j] for i in range(r)]) for j in range(c)]
    return sp.ImmutableMatrix(r, c, [cols[j][i] for i in range(r) for j in range(c)])


def _indexed(v, node):
    b = node.base
    what = b.id if isinstance(b, ex.Name) else b.name if isinstance(b, ex.AtStep) else \
        f"d{b.of}/d{b.wrt}" if isinstance(b, ex.Deriv) else ""
    i, j = ex.index_entry(node.index, shape_of(v), what)
    return v[i, j]


def _matrix_function(fn: str, v):
    shape = shape_of(v)
    entries = [v] if shape == () else list(v)
    if fn == "transpose":
        return v if shape == () else sp.ImmutableMatrix(v.T)
    if fn == "sum":
        return sp.Add(*entries)
    if fn == "mean":
        return sp.Add(*entries) / len(entries)
    if fn == "frobenius":
        return sp.sqrt(sp.Add(*[e ** 2 for e in entries]))
    if fn == "norm2":
        return sp.Abs(v) if shape == () else norm2_of(shape[0], shape[1], entries)
    raise AssertionError(fn)


def _binary(opname: str, a, b):
    if opname == "@":
        return _matmul(a, b)
    op = {
        "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
        "/": _divide, "^": _safe_pow,
    }[opname]
    if opname == "^" and shape_of(b) != ():
        raise DeriveError("an exponent must be a scalar")
    return _elementwise(op, a, b, opname)


def to_sympy(tree, env) -> object:
    """Build the SymPy value (scalar or ImmutableMatrix) of a parsed expression.

    `env(node) -> value` resolves Name, AtStep and Deriv nodes.  Shape errors raise DeriveError.
    """
    if isinstance(tree, ex.Num):
        return sp.Rational(tree.value.numerator, tree.value.denominator)
    if isinstance(tree, (ex.Name, ex.AtStep, ex.Deriv)):
        return env(tree)
    if isinstance(tree, ex.Neg):
        v = to_sympy(tree.operand, env)
        return -v if shape_of(v) == () else v.applyfunc(lambda x: -x)
    if ex.is_chain(tree):   # a + b − c …, a * b / c @ d …: along the chain, not down it
        first, rest = ex.spine(tree)
        value = to_sympy(first, env)
        operands = [(op, to_sympy(t, env)) for op, t in rest]
        if all(shape_of(v) == () for _, v in operands) and shape_of(value) == ():
            if all(op in "+-" for op, _ in operands):   # one Add, not n growing ones
                return sp.Add(value, *[v if op == "+" else -v for op, v in operands])
            if all(op == "*" for op, _ in operands):
                return sp.Mul(value, *[v for _, v in operands])
        for op, v in operands:
            value = _binary(op, value, v)
        return value
    if isinstance(tree, ex.Bin):
        return _binary(tree.op, to_sympy(tree.left, env), to_sympy(tree.right, env))
    if isinstance(tree, ex.Index):
        return _indexed(to_sympy(tree.base, env), tree)
    if isinstance(tree, ex.Call):
        v = to_sympy(tree.args[0], env)
        if tree.fn == "max":
            return _elementwise(maximum, v, to_sympy(tree.args[1], env), "max")
        if tree.fn == "softmax":
            return _softmax(v)
        if tree.fn in SCALAR_FUNCTIONS:
            f = SCALAR_FUNCTIONS[tree.fn]
            return f(v) if shape_of(v) == () else v.applyfunc(f)
        return _matrix_function(tree.fn, v)
    raise AssertionError(f"unknown node {tree!r}")


# ---------------------------------------------------------------- building the graph
def _input_quantity(name: str, kind: str, value: Value | None) -> Quantity:
    shape = value.shape if value is not None else ()
    if shape == ():
        entries = (Entry(name),)
    else:
        r, c = shape
        entries = tuple(Entry(name, (i, j), shape) for i in range(r) for j in range(c))
    return Quantity(name, kind, shape, entries)


def outline(spec: Spec, shapes: dict) -> dict:
    """name -> `Quantity` without entries or local expressions (no SymPy): the quantities of a
    numeric spec as a diagram or a matrix-form rule needs them, from the shapes of its names
    (`engine.Program.shapes`), in the graph's order (data, parameters, definitions)."""
    out = {n: Quantity(n, "data", shapes[n], ()) for n in spec.data}
    out.update({n: Quantity(n, "parameter", shapes[n], ()) for n in spec.parameters})
    for d in spec.forward:
        out[d.name] = Quantity(d.name, "forward", shapes[d.name], (), (), tuple(ex.ordered_names(d.tree)),
                               d.text, d.tree, d.written)
    return out


def _named_back(formula: sp.Expr, local: sp.Expr, entry: Entry) -> sp.Expr:
    """Write a local derivative in named quantities: σ(net)(1 − σ(net)) → out(1 − out)."""
    if isinstance(local, sp.Symbol) or local.is_number:
        return formula
    return formula.xreplace({local: entry})


def _too_deep(file: str, key: str) -> LimitError:
    return LimitError(f"formula too deeply nested for SymPy (over Python's recursion limit of "
                      f"{sys.getrecursionlimit()} frames; the parser allows {ex.MAX_NESTING} levels)",
                      file=file, key=key)


def build(spec: Spec) -> Graph:
    quantities: dict[str, Quantity] = {}
    symbolic_params = [n for n in spec.symbolic if n in spec.update]
    for name, value in spec.data.items():
        quantities[name] = _input_quantity(name, "data", value)
    for name, value in spec.parameters.items():
        quantities[name] = _input_quantity(name, "parameter", value)
    for name in spec.symbolic:
        kind = "parameter" if name in symbolic_params else "data"
        quantities[name] = _input_quantity(name, kind, None)

    uses: dict[Entry, tuple] = {}
    consumers: dict[Entry, list] = {e: [] for q in quantities.values() for e in q.entries}
    local_derivatives: dict[tuple, LocalDerivative] = {}
    order = [e for q in quantities.values() for e in q.entries]

    for d in spec.forward:
        key = f"forward.{d.name}"

        def env(node):
            if isinstance(node, ex.Name):
                return quantities[node.id].as_value()
            raise DeriveError("'@' steps and derivatives belong in quantities, not in [forward]")

        try:
            value = to_sympy(d.tree, env)
        except DeriveError as e:
            raise e.located(file=spec.path, key=key) from None
        except RecursionError:
            raise _too_deep(spec.path, key) from None
        shape = shape_of(value)
        if len(order) + (1 if shape == () else shape[0] * shape[1]) > MAX_GRAPH_ENTRIES:
            raise LimitError(f"the network would have more than {MAX_GRAPH_ENTRIES} scalar quantities",
                             file=spec.path, key=key)
        if shape == ():
            entries = (Entry(d.name),)
            locals_ = (value,)
        else:
            entries = tuple(Entry(d.name, (i, j), shape) for i in range(shape[0]) for j in range(shape[1]))
            locals_ = tuple(value)
        used_names = ex.ordered_names(d.tree)
        q = Quantity(d.name, "forward", shape, entries, locals_, tuple(used_names), d.text, d.tree, d.written)
        quantities[d.name] = q
        # a softmax's derivatives p_k(δ_kj − p_j) are written in the softmax's own entries
        own = {local: entry for local, entry in zip(locals_, entries) if isinstance(local, softmax)}
        for entry, local in zip(entries, locals_):
            deps = [s for s in _ordered_symbols(local)]
            uses[entry] = tuple(deps)
            consumers[entry] = []
            inner, outer = _long_argument(local)
            terms = _terms_by_symbol(inner, deps)
            for dep in deps:
                consumers[dep].append(entry)
                try:
                    if terms is None:
                        formula = sp.diff(local, dep)
                    elif outer is None:
                        formula = _long_diff(inner, terms[dep], dep)
                    else:   # f(u) of a long sum u: f′(u)·∂u/∂dep, as sympy.diff writes it
                        formula = outer * _long_diff(inner, terms[dep], dep)
                except DeriveError as e:
                    raise e.located(file=spec.path, key=key) from None
                except RecursionError:
                    raise _too_deep(spec.path, key) from None
                formula = _named_back(formula, local, entry)
                if own:
                    formula = formula.xreplace(own)
                local_derivatives[(entry, dep)] = LocalDerivative(entry, dep, formula)
            order.append(entry)

    loss_q = quantities[spec.loss]
    if not loss_q.is_scalar:
        raise DeriveError(f"the loss must be a scalar, but {spec.loss} is {_shape_text(loss_q.shape)}",
                          file=spec.path, key="train.loss")
    params = tuple(n for n, q in quantities.items() if q.kind == "parameter")
    return Graph(
        spec=spec, quantities=quantities, local_derivatives=local_derivatives,
        uses=uses, consumers={k: tuple(v) for k, v in consumers.items()},
        order=tuple(order), parameters=params, loss=spec.loss,
    )


def _long_diff(local, containing: list, dep):
    """∂local/∂dep for a long sum or product, from the arguments that contain dep: the sum of
    their derivatives, or (a product in which one factor contains dep) the other factors times
    that factor's derivative — what sympy.diff gives, without differentiating every argument."""
    if isinstance(local, sp.Add):
        return sp.Add(*[t.diff(dep) for t in containing])
    if len(containing) != 1:
        return sp.diff(local, dep)
    f = containing[0]
    return sp.Mul(*[a for a in local.args if a is not f], f.diff(dep))


def _long_argument(local) -> tuple:
    """(u, f′(u)) for a function of one argument applied to a long sum or product u (an
    activation of a unit with many inputs), else (local, None)."""
    if isinstance(local, sp.Function) and len(local.args) == 1 and \
            isinstance(local.args[0], (sp.Add, sp.Mul)) and len(local.args[0].args) >= 16:
        return local.args[0], local.fdiff(1)
    return local, None


def _terms_by_symbol(local, deps) -> dict | None:
    """For a long sum (x1 + … + x1000) or product: the arguments that contain each symbol, so
    that its derivative costs one argument's derivative, not all of them (linear rather than
    quadratic time; see _long_diff).  None for anything else."""
    if not isinstance(local, (sp.Add, sp.Mul)) or len(local.args) < 16:
        return None
    out: dict = {d: [] for d in deps}
    for t in local.args:
        for sym in t.free_symbols:
            if sym in out:
                out[sym].append(t)
    return out


def _ordered_symbols(expr: sp.Expr) -> list:
    """Entry symbols of an expression in a stable order (by first appearance in preorder)."""
    seen: list = []
    known: set = set()
    for node in sp.preorder_traversal(expr):
        if isinstance(node, Entry) and node not in known:
            known.add(node)
            seen.append(node)
    return sorted(seen, key=lambda s: (s.quantity, s.index)) if len(seen) > 1 else seen


def parameters_feeding(graph: Graph, name: str | None) -> list:
    """The entries of the updated parameters that quantity `name` uses, directly or through other
    definitions (every updated parameter when `name` is None), in definition order."""
    update = set(graph.spec.update)
    if name is None or name not in graph.quantities:
        used = update
    else:
        used, stack = set(), [name]
        while stack:
            n = stack.pop()
            if n in used:
                continue
            used.add(n)
            stack.extend(graph.quantities[n].uses)
    return [e for n, q in graph.quantities.items() if n in update and n in used for e in q.entries]


# ---------------------------------------------------------------- the spec's own functions
def function_sympy(fn) -> tuple:
    """(body, derivative) of a function of [functions] (`spec.UserFunction`) as SymPy
    expressions in the symbol of its argument; the derivative by `sympy.diff`."""
    x = sp.Symbol(fn.param, real=True)
    body = to_sympy(fn.tree, lambda n: x)
    return body, sp.diff(body, x)


@functools.lru_cache(maxsize=256)
def derivative_tree(fn):
    """f′ of a function of [functions] as a tree of the expression language in its argument
    (`sympy.diff` of the body, written back), or None when the derivative needs a function the
    language does not have (the step function of relu′, the sign of abs′)."""
    _body, d = function_sympy(fn)
    try:
        return _tree_of(d, fn.param)
    except _NotWritable:
        return None


class _NotWritable(Exception):
    pass


_TREE_FUNCTIONS = {sigmoid: "sigmoid", relu: "relu", sp.tanh: "tanh", sp.exp: "exp", sp.log: "log",
                   softplus: "softplus", sp.Abs: "abs"}


def _tree_of(e, param: str):
    """A SymPy expression (numbers, the argument, + · powers and the language's functions) as a tree."""
    if e.is_Integer:
        v = int(e)
        return ex.Neg(ex.Num(Fraction(-v), str(-v))) if v < 0 else ex.Num(Fraction(v), str(v))
    if e.is_Rational:
        num = _tree_of(sp.Integer(abs(e.p)), param)
        out = ex.Bin("/", num, ex.Num(Fraction(e.q), str(e.q)))
        return ex.Neg(out) if e.p < 0 else out
    if isinstance(e, sp.Symbol):
        if e.name != param:
            raise _NotWritable(e)
        return ex.Name(param)
    if isinstance(e, sp.Add):
        terms = [_tree_of(t, param) for t in e.as_ordered_terms()]
        out = terms[0]
        for t in terms[1:]:
            out = ex.Bin("-", out, t.operand) if isinstance(t, ex.Neg) else ex.Bin("+", out, t)
        return out
    if isinstance(e, sp.Mul):
        coeff, rest = e.as_coeff_Mul()
        if coeff < 0:
            return ex.Neg(_tree_of(-e, param))
        num, den = sp.fraction(e)
        if den != 1:
            return ex.Bin("/", _tree_of(num, param), _tree_of(den, param))
        # σ(x)·(1 − σ(x)) as textbooks write it: sums after the other factors
        factors = [_tree_of(f, param) for f in sorted(e.as_ordered_factors(), key=lambda f: isinstance(f, sp.Add))]
        out = factors[0]
        for f in factors[1:]:
            out = ex.Bin("*", out, f)
        return out
    if isinstance(e, sp.Pow):
        b, n = e.args
        if n == sp.Rational(1, 2):
            return ex.Call("sqrt", (_tree_of(b, param),))
        if n.is_number and n < 0:
            return ex.Bin("/", ex.Num(Fraction(1), "1"), _tree_of(b ** -n, param))
        return ex.Bin("^", _tree_of(b, param), _tree_of(n, param))
    if e.func in _TREE_FUNCTIONS:
        return ex.Call(_TREE_FUNCTIONS[e.func], (_tree_of(e.args[0], param),))
    raise _NotWritable(e)

"""Stage 4 — engine: the numbers of a numeric spec, whole definitions at a time.

Takes a `Spec`; gives a `Trajectory`: at every step k = 0..K the value of every named quantity
and its adjoint dL/d(quantity), as `Arr` tensors (a scalar, or an r×c matrix), computed in one
arithmetic context:

- `ExactArrays`: a Fraction per entry, None where a value is not rational (the same rules as
  `exact.ExactContext`, entry by entry: 0 · anything = 0);
- `BallArrays(prec)`: python-flint `arb_mat` at `prec` bits.  Every entry is a ball that is
  guaranteed to contain the true value, so a value's correctly rounded N-digit decimal is
  *certified* once both ends of its ball round to the same decimal (`decide`).

No SymPy and no per-scalar graph: every [forward] definition is evaluated as a tree of whole-array
operations, and backpropagation uses each operation's structural rule (G is dL/dC):

    C = A + B, A − B      dL/dA = G,          dL/dB = ±G
    C = A ∘ B             dL/dA = G ∘ B,      dL/dB = G ∘ A
    C = A / B             dL/dA = G / B,      dL/dB = −G ∘ C / B
    C = A^e               dL/dA = G ∘ e·A^(e−1),  dL/de = Σ G ∘ C ∘ ln A
    C = A @ B             dL/dA = G·Bᵀ,       dL/dB = Aᵀ·G
    C = f(A)              dL/dA = G ∘ f′(A)   (σ′ = σ(A)·σ(−A), tanh′ = 1 − C², relu′ = 1[A > 0],
                                               |A|′ = sign(A) with sign(0) = 0)
    C = max(A, B)         dL/dA = G ∘ 1[A ≥ B], dL/dB = G ∘ 1[A < B]   (a tie goes to A)
    P = softmax(Z)        dL/dZ = P ∘ (G − 1·(1ᵀ(P ∘ G)))   per column: ∂p_i/∂z_j = p_i(δ_ij − p_j)
    c = Z[i, j]           dL/dZ = c̄ at (i, j), 0 elsewhere
    c = sum(A), mean(A)   dL/dA = c̄·1 (÷ n),  c = ‖A‖_F: dL/dA = c̄·A / c

with a scalar broadcast against a matrix reduced by summing (dL/ds = Σ G ∘ …).  A step is
p ← p − η·dL/dp for every parameter in [train] update.

`solve_numbers` asks for the values a solution prints and returns them correctly rounded: from
the exact run where it is rational (small specs), else from ball runs at a precision doubled
until every ball decides its digits.  The per-scalar SymPy graph (`graph`, `calculus`) stays the
source of every printed *formula*; this module is the source of bulk numbers.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction

import flint
from flint import arb, arb_mat, fmpq

from . import expr as ex
from . import tape
from .errors import DeriveError, LimitError
from .exact import ExactContext
from .limits import EXP_LIMIT, MAX_POWER_DIGITS
from .rounding import MAX_DIGITS, Number, format_digits, round_fraction, rounded_parts, show_fraction
from .spec import Spec

EXACT_LIMIT = 200_000            # multiply-adds per pass above which the exact pass is skipped
MAX_PRECISION_BITS = 140_000     # ≈ 42 000 digits: ball precision stops doubling here
RESCUE_PRECISION_BITS = 7_000    # a value that is not decided to be > 0 (log) or ≠ 0 (÷) stops here
MAX_MEMORY_GB = 4.0              # estimated need above which a spec is refused (DERIVE_MAX_MEMORY_GB)
SLOW_WORK = 1_000_000            # multiply-adds in all above which a run is said to take a while


class Imprecise(Exception):
    """A ball is too wide to decide a branch (log of a ball containing 0, relu at a ball
    containing 0, ÷ by a ball containing 0): retried at a higher precision."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------- values
class Arr:
    """A value: `shape` () for a scalar or (rows, cols); `data` a tuple of Fraction | None
    (ExactArrays, row-major) or an arb / arb_mat (BallArrays).  Not to be mutated."""
    __slots__ = ("shape", "data")

    def __init__(self, shape: tuple, data):
        self.shape = shape
        self.data = data

    @property
    def size(self) -> int:
        return 1 if self.shape == () else self.shape[0] * self.shape[1]


_shape_text = ex.shape_text


# ---------------------------------------------------------------- exact context (per entry)
class ExactArrays:
    """Arrays of Fractions (None: not rational), each entry by `exact.ExactContext`'s rules."""
    name = "exact"

    def __init__(self):
        self.s = ExactContext()

    def from_fractions(self, shape, entries) -> Arr:
        return Arr(shape, tuple(entries))

    def const(self, q: Fraction) -> Arr:
        return Arr((), (q,))

    def full(self, shape, scalar: Arr) -> Arr:
        return Arr(shape, scalar.data * _size(shape))

    def entries(self, a: Arr) -> list:
        return list(a.data)

    def zip(self, f, a: Arr, b: Arr, shape) -> Arr:
        xs, ys = a.data, b.data
        n = len(xs) if len(xs) > 1 else len(ys)
        if len(xs) == 1:
            xs = xs * n
        if len(ys) == 1:
            ys = ys * n
        return Arr(shape, tuple(f(x, y) for x, y in zip(xs, ys)))

    def map(self, f, a: Arr) -> Arr:
        return Arr(a.shape, tuple(f(x) for x in a.data))

    def add(self, a, b, shape):
        return self.zip(lambda x, y: self.s.add([x, y]), a, b, shape)

    def sub(self, a, b, shape):
        return self.zip(lambda x, y: self.s.add([x, None if y is None else -y]), a, b, shape)

    def mul(self, a, b, shape):
        return self.zip(lambda x, y: self.s.mul([x, y]), a, b, shape)

    def div(self, a, b, shape):
        def q(x, y):
            if y == 0:
                raise DeriveError("division by zero")
            return self.s.mul([x, None if y is None else 1 / y])
        return self.zip(q, a, b, shape)

    def neg(self, a):
        return self.map(lambda x: None if x is None else -x, a)

    def pow(self, a, e, shape):
        return self.zip(self.s.pow, a, e, shape)

    def matmul(self, a, b):
        (r, k), (_, c) = a.shape, b.shape
        A, B, s = a.data, b.data, self.s
        out = []
        for i in range(r):
            row = A[i * k:(i + 1) * k]
            for j in range(c):
                out.append(s.add([s.mul([row[t], B[t * c + j]]) for t in range(k)]))
        return Arr((r, c), tuple(out))

    def transpose(self, a):
        r, c = a.shape
        return Arr((c, r), tuple(a.data[i * c + j] for j in range(c) for i in range(r)))

    def total(self, a):
        return Arr((), (self.s.add(list(a.data)),))

    def func(self, name, a):
        if name == "sqrt":
            return self.pow(a, self.const(Fraction(1, 2)), a.shape)
        if name == "sign":
            return self.map(lambda x: None if x is None else Fraction((x > 0) - (x < 0)), a)
        return self.map(lambda x: self.s.func(name, x), a)

    def entry(self, a, i: int) -> Arr:
        """The scalar entry i (row-major) of a."""
        return Arr((), (a.data[i],))

    def scatter(self, shape, i: int, g) -> Arr:
        """A matrix of `shape` that is 0 but for the scalar g at entry i (row-major)."""
        xs = [Fraction(0)] * _size(shape)
        xs[i] = g.data[0]
        return Arr(shape, tuple(xs))

    def maximum(self, a, b, shape):
        return self.zip(lambda x, y: None if x is None or y is None else max(x, y), a, b, shape)

    def at_least(self, a, b, shape):
        """1[a ≥ b] entry by entry (the derivative of max(a, b) by a; a tie goes to a)."""
        return self.zip(lambda x, y: None if x is None or y is None else Fraction(int(x >= y)), a, b, shape)

    def softmax(self, z):
        """Each column's softmax: exactly 1/n where a column's entries are all equal (e^0 = 1),
        else not rational (None)."""
        def column(xs):
            if any(x is None for x in xs) or len(set(xs)) > 1:
                return [None] * len(xs)
            return [Fraction(1, len(xs))] * len(xs)
        return _by_columns(self, z, column)

    def softmax_backward(self, p, g):
        s = self.s

        def column(ps, gs):
            dot = s.add([s.mul([x, y]) for x, y in zip(ps, gs)])
            return [s.mul([x, s.add([y, None if dot is None else -dot])]) for x, y in zip(ps, gs)]
        return _by_columns(self, p, column, g)

    def sigmoid_prime(self, a, out):
        # σ′(a) = σ(a)·(1 − σ(a))
        return self.map(lambda y: self.s.mul([y, self.s.add([Fraction(1), None if y is None else -y])]), out)

    def log(self, a):
        return self.func("log", a)

    def sqrt(self, a):
        return self.func("sqrt", a)

    def norm2(self, a):
        return Arr((), (None,))



# ---------------------------------------------------------------- ball context (whole arrays)
def _arb_of(q: Fraction) -> arb:
    n, d = q.numerator, q.denominator
    if d & (d - 1) == 0 and -(1 << 53) < n < (1 << 53):     # a binary float: exact
        return arb(math.ldexp(n, 1 - d.bit_length()))
    return arb(fmpq(n, d))


class BallArrays:
    """Balls at `prec` bits: a scalar is an `arb`, a matrix an `arb_mat`.  Set as flint's working
    precision by `precision`; every operation returns balls that contain the true values."""

    def __init__(self, prec: int):
        self.prec = prec
        self.name = f"ball{prec}"

    # construction
    def from_fractions(self, shape, entries) -> Arr:
        if shape == ():
            return Arr((), _arb_of(entries[0]))
        r, c = shape
        return Arr(shape, arb_mat(r, c, [_arb_of(q) for q in entries]))

    def const(self, q: Fraction) -> Arr:
        return Arr((), _arb_of(q))

    def full(self, shape, scalar: Arr) -> Arr:
        if shape == ():
            return scalar
        r, c = shape
        return Arr(shape, arb_mat(r, c, [scalar.data] * (r * c)))

    def entries(self, a: Arr) -> list:
        return [a.data] if a.shape == () else a.data.entries()

    def with_entry(self, a: Arr, i: int, q: Fraction) -> Arr:
        """a with its entry i (row-major) set to q."""
        if a.shape == ():
            return Arr((), _arb_of(q))
        m = a.data.entries()
        m[i] = _arb_of(q)
        return Arr(a.shape, arb_mat(a.shape[0], a.shape[1], m))

    def map(self, f, a: Arr) -> Arr:
        if a.shape == ():
            return Arr((), f(a.data))
        r, c = a.shape
        return Arr(a.shape, arb_mat(r, c, [f(x) for x in a.data.entries()]))

    def zip(self, f, a: Arr, b: Arr, shape) -> Arr:
        if shape == ():
            return Arr((), f(a.data, b.data))
        r, c = shape
        xs, ys = self.entries(a), self.entries(b)
        if len(xs) == 1:
            xs = xs * (r * c)
        if len(ys) == 1:
            ys = ys * (r * c)
        return Arr(shape, arb_mat(r, c, [f(x, y) for x, y in zip(xs, ys)]))

    # arithmetic
    def add(self, a, b, shape):
        if a.shape == b.shape:
            return Arr(shape, a.data + b.data)
        return self.zip(lambda x, y: x + y, a, b, shape)

    def sub(self, a, b, shape):
        if a.shape == b.shape:
            return Arr(shape, a.data - b.data)
        return self.zip(lambda x, y: x - y, a, b, shape)

    def mul(self, a, b, shape):
        if a.shape == () or b.shape == ():
            return Arr(shape, a.data * b.data if a.shape == () else b.data * a.data)
        return self.zip(lambda x, y: x * y, a, b, shape)

    def div(self, a, b, shape):
        return self.zip(_divide, a, b, shape)

    def neg(self, a):
        return Arr(a.shape, -a.data)

    def pow(self, a, e, shape):
        return self.zip(_power, a, e, shape)

    def matmul(self, a, b):
        return Arr((a.shape[0], b.shape[1]), a.data * b.data)

    def transpose(self, a):
        r, c = a.shape
        return Arr((c, r), a.data.transpose())

    def total(self, a):
        if a.shape == ():
            return a
        s = arb(0)
        for x in a.data.entries():
            s += x
        return Arr((), s)

    def func(self, name, a):
        return self.map(_BALL_FUNCTIONS[name], a)

    def entry(self, a, i: int) -> Arr:
        """The scalar entry i (row-major) of a."""
        return Arr((), a.data if a.shape == () else a.data.entries()[i])

    def scatter(self, shape, i: int, g) -> Arr:
        """A matrix of `shape` that is 0 but for the scalar g at entry i (row-major)."""
        xs = [arb(0)] * _size(shape)
        xs[i] = g.data
        return Arr(shape, arb_mat(shape[0], shape[1], xs))

    def maximum(self, a, b, shape):
        return self.zip(_max, a, b, shape)

    def at_least(self, a, b, shape):
        """1[a ≥ b] entry by entry (the derivative of max(a, b) by a; a tie goes to a)."""
        return self.zip(_at_least, a, b, shape)

    def softmax(self, z):
        """Each column's softmax, shifted by the column's largest entry (by midpoint): e^(z_j − m)
        never overflows, so softmax([1000, 1001]) keeps its digits."""
        return _by_columns(self, z, _softmax_column)

    def softmax_backward(self, p, g):
        def column(ps, gs):
            dot = arb(0)
            for x, y in zip(ps, gs):
                dot += x * y
            return [x * (y - dot) for x, y in zip(ps, gs)]
        return _by_columns(self, p, column, g)

    def sigmoid_prime(self, a, out):
        # σ′(a) = σ(a)·σ(−a), which keeps its digits when σ(a) is within 10⁻²⁰ of 1
        return self.zip(lambda x, y: y * _sigmoid(-x), a, out, a.shape)

    def log(self, a):
        return self.func("log", a)

    def sqrt(self, a):
        return self.func("sqrt", a)

    def norm2(self, a):
        """The spectral norm √λmax(AᵀA), from arb's certified eigenvalues."""
        r, c = a.shape
        m = a.data
        g = m.transpose() * m if r >= c else m * m.transpose()
        try:
            eig = g.eig()
        except (ValueError, ArithmeticError):
            raise Imprecise("the spectral norm's eigenvalues are not separated") from None
        lam = max((z.real for z in eig), key=lambda x: x.mid())
        if not lam > 0 and not (lam.is_exact() and lam.is_zero()):
            lam = lam.nonnegative_part()
        return Arr((), lam.sqrt())


def _by_columns(ctx, a: Arr, f, b: Arr | None = None) -> Arr:
    """f applied to each column's entries (of a and, when given, of b of the same shape); a row
    vector (1×n) is one vector, as a column vector is."""
    r, c = a.shape
    xs = ctx.entries(a)
    ys = ctx.entries(b) if b is not None else None
    if r == 1:
        return _array(ctx, a.shape, f(xs, ys) if b is not None else f(xs))
    out = [None] * (r * c)
    for j in range(c):
        col = [xs[i * c + j] for i in range(r)]
        got = f(col, [ys[i * c + j] for i in range(r)]) if b is not None else f(col)
        for i in range(r):
            out[i * c + j] = got[i]
    return _array(ctx, a.shape, out)


def _softmax_column(xs: list) -> list:
    for x in xs:
        if not x.is_finite():
            raise Imprecise("softmax of a value that lost its precision")
    m = max(xs, key=lambda x: x.mid())
    es = [(x - m).exp() for x in xs]
    total = arb(0)
    for e in es:
        total += e
    return [e / total for e in es]


def _max(x: arb, y: arb) -> arb:
    if x >= y:
        return x
    if x < y:
        return y
    return x.max(y)     # overlapping balls: a ball that contains the larger value


def _at_least(x: arb, y: arb) -> arb:
    # ∂max(x, y)/∂x = 1[x ≥ y]: a tie goes to the first argument
    if x >= y or (x.is_exact() and y.is_exact() and x == y):
        return arb(1)
    if x < y:
        return arb(0)
    raise Imprecise("max at arguments not known to be ≥ or < each other")


def _sign(x: arb) -> arb:
    # |x|′ = sign(x), with sign(0) = 0 (as relu′(0) is 0)
    if x > 0:
        return arb(1)
    if x < 0:
        return arb(-1)
    if x.is_exact() and x.is_zero():
        return arb(0)
    raise Imprecise("abs′ at a value not known to be > 0, < 0 or 0")


def _divide(x: arb, y: arb) -> arb:
    if 0 in y:
        if y.is_exact() and y.is_zero():
            raise DeriveError("division by zero")
        raise Imprecise("division by zero")
    return x / y


def _power(x: arb, y: arb) -> arb:
    if y.is_exact() and y.is_integer():
        n = int(y.unique_fmpz())
        if n < 0 and 0 in x:
            if x.is_exact() and x.is_zero():
                raise DeriveError("division by zero")
            raise Imprecise("division by zero")
        if n >= 1 and x.mid().is_zero() and not x.is_exact():
            return _power_by_squaring(x, n)
        return x ** n
    if x > 0:
        return x ** y
    if x < 0:
        raise DeriveError("a negative value raised to a fractional power")
    if x.is_exact() and x.is_zero():
        if y > 0:
            return arb(0)
        raise DeriveError("division by zero")
    raise Imprecise("a value near 0 raised to a fractional power")


def _power_by_squaring(x: arb, n: int) -> arb:
    """x^n (n ≥ 1) by products: python-flint 0.9 gives nan for x ** n when x is a ball centred on
    0 with a radius > 0 (a difference that is 0 up to rounding, (p − y)^2 at a fitted sample),
    for n = 1 too (the derivative of (t − out)^2 is 2·(t − out)^1 at a sample fitted exactly)."""
    result = None
    while n:
        if n & 1:
            result = x if result is None else result * x
        n >>= 1
        if n:
            x = x * x
    return result


def _check_range(x: arb, what: str):
    if not x.is_finite():
        raise Imprecise(f"{what} of a value that lost its precision")
    if not abs(x.mid()) <= EXP_LIMIT:
        raise LimitError(f"{what} of a value beyond ±{EXP_LIMIT} is refused")


def _sigmoid(x: arb) -> arb:
    # σ(x) = 1/(1 + e^(−x)), computed on the side where e^(…) does not overflow
    _check_range(x, "sigmoid")
    if x >= 0:
        return 1 / (1 + (-x).exp())
    t = x.exp()
    return t / (1 + t)


def _exp(x: arb) -> arb:
    _check_range(x, "exp")
    return x.exp()


def _log(x: arb) -> arb:
    if x > 0:
        return x.log()
    if x <= 0:
        raise DeriveError("log of a value ≤ 0 (for example log(0) in a cross-entropy)")
    raise Imprecise("log of a value ≤ 0 (for example log(0) in a cross-entropy)")


def _sqrt(x: arb) -> arb:
    if x >= 0:
        return x.sqrt() if not x.is_zero() else arb(0)
    if x < 0:
        raise DeriveError("sqrt of a negative value")
    raise Imprecise("sqrt of a negative value")


def _relu(x: arb) -> arb:
    if x > 0:
        return x
    if x <= 0:
        return arb(0)
    raise Imprecise("relu at a value not known to be > 0 or ≤ 0")


def _step(x: arb) -> arb:
    # relu′(x) = 1[x > 0]; relu′(0) is taken as 0
    if x > 0:
        return arb(1)
    if x <= 0:
        return arb(0)
    raise Imprecise("relu′ at a value not known to be > 0 or ≤ 0")


def _softplus(x: arb) -> arb:
    _check_range(x, "softplus")
    return (x.exp()).log1p() if x < 0 else x + ((-x).exp()).log1p()


_BALL_FUNCTIONS = {
    "sigmoid": _sigmoid, "exp": _exp, "log": _log, "sqrt": _sqrt, "tanh": lambda x: x.tanh(),
    "relu": _relu, "step": _step, "softplus": _softplus, "abs": lambda x: abs(x), "sign": _sign,
}


# ---------------------------------------------------------------- shapes (checked before any work)
def _shape_of(node, shapes: dict) -> tuple:
    """(shape, work) of a definition's tree: its shape, checked, and the multiply-adds of its
    forward and backward pass; DeriveError for a shape that does not fit."""
    memo: dict = {}
    work = 0
    for n in _postorder(node):
        kids = [memo[id(k)] for k in ex.children(n)]
        shape = memo[id(n)] = _node_shape(n, kids, shapes)
        if isinstance(n, ex.Bin) and n.op == "@":
            work += 3 * kids[0][0] * kids[0][1] * kids[1][1]
        else:
            work += 3 * max([_size(shape)] + [_size(k) for k in kids])
    return memo[id(node)], work


def _node_shape(n, kids, shapes) -> tuple:
    if isinstance(n, ex.Num):
        return ()
    if isinstance(n, ex.Name):
        return shapes[n.id]
    if isinstance(n, (ex.AtStep, ex.Deriv)):
        raise DeriveError("'@' steps and derivatives belong in quantities, not in [forward]")
    if isinstance(n, ex.Neg):
        return kids[0]
    if isinstance(n, ex.Bin):
        return ex.checked_shape(n.op, kids[0], kids[1])
    if isinstance(n, ex.Call):
        a = kids[0]
        if n.fn == "transpose":
            return (a[1], a[0]) if a else ()
        if n.fn == "max":
            return ex.checked_shape("max", a, kids[1])
        if n.fn == "softmax" and a == ():
            raise DeriveError("softmax needs a vector (or a matrix: each column); it got a scalar")
        return () if n.fn in ("sum", "mean", "norm2", "frobenius") else a
    if isinstance(n, ex.Index):
        ex.index_entry(n.index, kids[0], _indexed_name(n))
        return ()
    raise AssertionError(f"unknown node {n!r}")


def _indexed_name(n) -> str:
    """What an error message calls an indexed value: its name, or 'the value'."""
    b = n.base
    return b.id if isinstance(b, ex.Name) else b.name if isinstance(b, ex.AtStep) else ""


def _postorder(root) -> list:
    """Nodes of a tree, children before parents (iterative: depth follows user input)."""
    out, stack = [], [(root, False)]
    while stack:
        node, expanded = stack.pop()
        kids = ex.children(node)
        if expanded or not kids:
            out.append(node)
            continue
        stack.append((node, True))
        stack.extend((k, False) for k in reversed(kids))
    return out


# ---------------------------------------------------------------- the program
@dataclass(frozen=True)
class Program:
    """A numeric spec as evaluation order: input shapes, definitions with their shapes."""
    spec: Spec
    shapes: dict            # name -> shape, every data, parameter and forward name
    definitions: tuple      # (name, tree, ops): ops in evaluation order, the last is the result
    loss: str
    work: int               # multiply-adds of one forward + backward pass (an estimate)

    @property
    def parameters(self) -> tuple:
        return tuple(self.spec.parameters)


def compile_spec(spec: Spec, symbolic: bool = False) -> Program:
    """Shapes of every definition (checked), the loss checked to be a scalar, the cost estimated.
    A symbolic spec compiles only with `symbolic` (its names are scalars whose values a run is
    given: the checker's random points)."""
    if spec.is_symbolic and not symbolic:
        raise DeriveError("a symbolic spec has no numbers", file=spec.path)
    shapes = {n: v.shape for n, v in (*spec.data.items(), *spec.parameters.items())}
    shapes.update({n: () for n in spec.symbolic})
    definitions = []
    work = sum(_size(s) for s in shapes.values())
    for d in spec.forward:
        try:
            shapes[d.name], cost = _shape_of(d.tree, shapes)
            _check_constants(d.tree)
        except DeriveError as e:
            raise e.located(file=spec.path, key=f"forward.{d.name}") from None
        work += cost
        tree = _squared_norms(d.tree)
        definitions.append((d.name, tree, _ops(tree)))
    if shapes[spec.loss] != ():
        raise DeriveError(f"the loss must be a scalar, but {spec.loss} is {_shape_text(shapes[spec.loss])}",
                          file=spec.path, key="train.loss")
    program = Program(spec, shapes, tuple(definitions), spec.loss, work)
    need, limit = estimated_bytes(program), memory_limit_gb()
    if need > limit * 1e9:
        largest = max(shapes, key=lambda n: _size(shapes[n]))
        table = "data" if largest in spec.data else "parameters" if largest in spec.parameters else "forward"
        raise LimitError(f"the network would need about {need / 1e9:.1f} GB of memory ({largest} alone is "
                         f"{_shape_text(shapes[largest])}); the limit is {limit:g} GB "
                         "(set DERIVE_MAX_MEMORY_GB to change it)", file=spec.path, key=f"{table}.{largest}")
    return program


def _rebuild(root, replace):
    """The tree with each node n for which replace(n, kids) gives a node swapped for it
    (bottom-up, iterative); replace returns None to keep n (with rebuilt children)."""
    built: dict = {}
    for n in _postorder(root):
        kids = tuple(built[id(k)] for k in ex.children(n))
        new = replace(n, kids)
        if new is None:
            if isinstance(n, ex.Bin):
                new = n if kids[0] is n.left and kids[1] is n.right else ex.Bin(n.op, *kids)
            elif isinstance(n, ex.Neg):
                new = n if kids[0] is n.operand else ex.Neg(kids[0])
            elif isinstance(n, ex.Call):
                new = n if all(k is a for k, a in zip(kids, n.args)) else ex.Call(n.fn, kids)
            elif isinstance(n, ex.Index):
                new = n if kids[0] is n.base else ex.Index(kids[0], n.index)
            else:
                new = n
        built[id(n)] = new
    return built[id(root)]


def _check_constants(root) -> None:
    """The parts of a definition without names, checked as they are folded: 10^10^10 (too many
    digits), exp(exp(exp(100))) (beyond EXP_LIMIT), 1/0, log(0), sqrt(−1) are refused before any
    work.  Exact where rational, else a 64-bit ball."""
    s = ExactContext()
    vals: dict = {}
    with precision(64):
        for n in _postorder(root):
            kids = [vals.get(id(k)) for k in ex.children(n)]
            if isinstance(n, ex.Bin) and n.op == "/" and kids[1] is not None and kids[1][0] == 0:
                raise DeriveError("division by zero")
            if isinstance(n, ex.Name) or any(k is None for k in kids):
                continue
            if isinstance(n, ex.Num):
                vals[id(n)] = (n.value, _arb_of(n.value))
            elif isinstance(n, ex.Neg):
                q, b = kids[0]
                vals[id(n)] = (None if q is None else -q, -b)
            elif isinstance(n, ex.Bin):
                vals[id(n)] = _fold_binary(s, n.op, kids[0], kids[1])
            elif isinstance(n, ex.Call) and len(kids) == 1:
                vals[id(n)] = _fold_call(s, n.fn, kids[0])


def _fold_binary(s: ExactContext, op: str, a: tuple, b: tuple) -> tuple:
    (qa, ba), (qb, bb) = a, b
    if op in "+-":
        sign = 1 if op == "+" else -1
        return (s.add([qa, None if qb is None else sign * qb]), ba + sign * bb)
    if op == "*":
        return (s.mul([qa, qb]), ba * bb)
    if op == "/":
        if qb == 0:
            raise DeriveError("division by zero")
        return (s.mul([qa, None if qb is None else 1 / qb]), ba / bb)
    if op == "^":
        if qa is not None and qb is not None:
            if qa == 0 and qb < 0:
                raise DeriveError("division by zero: 0 to a negative power")
            size = max(len(str(abs(qa.numerator))), len(str(qa.denominator)))
            if qa != 0 and abs(qb) * size > MAX_POWER_DIGITS:
                raise LimitError(f"the exact value of a power would have more than {MAX_POWER_DIGITS} digits")
            return (s.pow(qa, qb), _power(ba, bb) if qb.denominator == 1 or qa > 0 else arb("nan"))
        try:
            return (None, _power(ba, bb))
        except Imprecise:
            return (None, arb("nan"))
    return (None, arb("nan"))   # '@' has no constant operands


def _fold_call(s: ExactContext, fn: str, a: tuple) -> tuple:
    q, b = a
    if fn == "log":
        if q == 0:
            raise DeriveError("log(0) is undefined")
        if (q is not None and q < 0) or b < 0:
            raise DeriveError(f"log of a negative number ({q if q is not None else b.str(5)})")
    if fn == "sqrt" and ((q is not None and q < 0) or b < 0):
        raise DeriveError(f"sqrt of a negative number ({q if q is not None else b.str(5)})")
    if fn == "exp" and b.is_finite() and abs(b) > EXP_LIMIT:
        raise LimitError(f"exp of a number larger than {EXP_LIMIT} in size is refused")
    if fn in ("transpose", "sum", "mean", "norm2"):
        return (q, b) if fn != "norm2" else (None if q is None else abs(q), abs(b))
    try:
        ball = _BALL_FUNCTIONS[fn](b) if fn in _BALL_FUNCTIONS else arb("nan")
    except (Imprecise, DeriveError, LimitError):
        ball = arb("nan")
    exact = None if q is None else (s.func(fn, q) if fn != "sqrt" else s.pow(q, Fraction(1, 2)))
    return (exact, ball)


def _squared_norms(root):
    """frobenius(A)^2 → sum(A*A): the same number, and exact where A is (as SymPy's √x² = x is)."""
    def replace(n, kids):
        if isinstance(n, ex.Bin) and n.op == "^":
            left, right = kids
            if (isinstance(left, ex.Call) and left.fn == "frobenius" and isinstance(right, ex.Num)
                    and right.value == 2):
                a = left.args[0]
                return ex.Call("sum", (ex.Bin("*", a, a),))
        return None
    return _rebuild(root, replace)


def _size(shape) -> int:
    return 1 if shape == () else shape[0] * shape[1]


def memory_limit_gb() -> float:
    try:
        return float(os.environ.get("DERIVE_MAX_MEMORY_GB", MAX_MEMORY_GB))
    except ValueError:
        return MAX_MEMORY_GB


def estimated_bytes(program: Program) -> int:
    """Memory for the values and adjoints of every quantity at two steps, at ~200 bits a ball,
    plus the printed numbers (≈ 400 bytes each)."""
    entries = sum(_size(s) for s in program.shapes.values())
    return entries * (2 * 2 * 80) + 400 * 3 * sum(_size(program.shapes[p]) for p in program.parameters)


# ---------------------------------------------------------------- one run: forward, backward, steps
@dataclass
class Step:
    values: dict            # name -> Arr
    adjoints: dict          # name -> Arr (dL/dname; absent: 0)
    op_values: dict         # definition name -> the value of each of its ops (for backward passes)
    seeded: dict            # A -> {name: dA/dname}, for quantities dA/dB (filled on demand)
    what_if: "WhatIf | None" = None
    replaced: frozenset = frozenset()   # definitions whose value a what-if changed (rounded, set)
    jacobians: dict | None = None       # what-if runs: definition -> {i: {(dep, j): ∂def_i/∂dep_j}}
    entry_adjoints: dict = field(default_factory=dict)   # what-if runs: (seed, plain) -> {(name, j): ∂seed/∂}
    new_parameters: dict | None = None  # what-if runs with updated weights: name -> p − η·dL/dp


@dataclass
class Trajectory:
    ctx: object
    steps: list             # Step per k = 0..K


@dataclass(frozen=True)
class Op:
    """One node of a definition, compiled: what it does and where its operands are."""
    kind: str               # "num" "name" "neg" "+" "-" "*" "/" "^" "@" or a function name
    kids: tuple             # indices of the operands in the definition's op list
    value: object = None    # "num": the Fraction; "name": the name
    constant: tuple = ()    # per operand: True when it has no names (no gradient flows there)


def _ops(tree) -> tuple:
    nodes = _postorder(tree)
    index = {}
    ops = []
    for n in nodes:
        kids = ex.children(n)
        ids = tuple(index[id(k)] for k in kids)
        const = tuple(not _has_name(ops, i) for i in ids)
        if isinstance(n, ex.Num):
            op = Op("num", (), n.value)
        elif isinstance(n, ex.Name):
            op = Op("name", (), n.id)
        elif isinstance(n, ex.Neg):
            op = Op("neg", ids, None, const)
        elif isinstance(n, ex.Bin):
            op = Op(n.op, ids, None, const)
        elif isinstance(n, ex.Call):
            op = Op(n.fn, ids, None, const)
        elif isinstance(n, ex.Index):
            op = Op("index", ids, n.index, const)
        else:
            raise AssertionError(f"unknown node {n!r}")
        index[id(n)] = len(ops)
        ops.append(op)
    return tuple(ops)


def _has_name(ops, i) -> bool:
    stack = [i]
    while stack:
        op = ops[stack.pop()]
        if op.kind == "name":
            return True
        stack.extend(op.kids)
    return False


ELEMENTWISE = ("sigmoid", "relu", "tanh", "exp", "log", "sqrt", "softplus", "abs")


def _forward_definition(ctx, ops, values: dict) -> list:
    """The value of every op of one definition, in order (the last is the definition's)."""
    vals: list = [None] * len(ops)
    for i, op in enumerate(ops):
        kind = op.kind
        if kind == "name":
            vals[i] = values[op.value]
        elif kind == "num":
            vals[i] = ctx.const(op.value)
        elif kind == "index":
            vals[i] = _index(ctx, vals[op.kids[0]], op.value)
        elif len(op.kids) == 2:
            vals[i] = _BINARY[kind](ctx, vals[op.kids[0]], vals[op.kids[1]])
        else:
            vals[i] = _UNARY[kind](ctx, vals[op.kids[0]])
    return vals


def _flat_index(index: tuple, shape: tuple) -> int:
    i, j = ex.index_entry(index, shape)
    return i * shape[1] + j


def _index(ctx, a: Arr, index: tuple) -> Arr:
    return ctx.entry(a, _flat_index(index, a.shape))


def _mean(ctx, a: Arr) -> Arr:
    return ctx.mul(ctx.total(a), ctx.const(Fraction(1, a.size)), ())


def _norm2(ctx, a: Arr) -> Arr:
    return ctx.func("sqrt", ctx.mul(a, a, ())) if a.shape == () else ctx.norm2(a)


_BINARY = {
    "*": lambda ctx, a, b: ctx.mul(a, b, a.shape or b.shape),
    "+": lambda ctx, a, b: ctx.add(a, b, a.shape or b.shape),
    "-": lambda ctx, a, b: ctx.sub(a, b, a.shape or b.shape),
    "/": lambda ctx, a, b: ctx.div(a, b, a.shape or b.shape),
    "^": lambda ctx, a, b: ctx.pow(a, b, a.shape or b.shape),
    "@": lambda ctx, a, b: ctx.matmul(a, b),
    "max": lambda ctx, a, b: ctx.maximum(a, b, a.shape or b.shape),
}
_UNARY = {
    "neg": lambda ctx, a: ctx.neg(a),
    "transpose": lambda ctx, a: a if a.shape == () else ctx.transpose(a),
    "sum": lambda ctx, a: ctx.total(a),
    "mean": _mean,
    "frobenius": lambda ctx, a: ctx.sqrt(ctx.total(ctx.mul(a, a, a.shape))),
    "norm2": _norm2,
    "softmax": lambda ctx, a: ctx.softmax(a),
    **{f: (lambda name: lambda ctx, a: ctx.func(name, a))(f) for f in ELEMENTWISE},
}


def _reduce_to(ctx, g: Arr, shape: tuple) -> Arr:
    """A gradient of a broadcast result back onto a scalar operand: the sum of its entries."""
    if shape == () and g.shape != ():
        return ctx.total(g)
    return g


def _backward_definition(ctx, ops, vals: list, g_root: Arr, adjoints: dict, root_rule=None):
    """Push dL/d(definition) = g_root down one definition's ops into `adjoints` (by name).
    `root_rule` (what-if runs) replaces `_local_rule` at the definition's root op."""
    grads: list = [None] * len(ops)
    grads[-1] = g_root
    last = len(ops) - 1
    for i in range(len(ops) - 1, -1, -1):
        g = grads[i]
        if g is None:
            continue
        op = ops[i]
        kind = op.kind
        if kind == "name":
            prev = adjoints.get(op.value)
            adjoints[op.value] = g if prev is None else ctx.add(prev, g, g.shape)
            continue
        if kind == "num":
            continue
        rule = root_rule if (root_rule is not None and i == last) else _local_rule
        rules = rule(ctx, op, [vals[k] for k in op.kids], vals[i], g)
        for k, const, gk in zip(op.kids, op.constant, rules):
            if gk is None or const:
                continue
            prev = grads[k]
            grads[k] = gk if prev is None else ctx.add(prev, gk, gk.shape)


def _local_rule(ctx, op: Op, kids: list, out: Arr, g: Arr) -> list:
    """dL/d(operand) for each operand of op, from G = dL/d(op) (the table in the module docstring)."""
    kind = op.kind
    if len(kids) == 2:
        a, b = kids
        if kind == "*":
            return [_reduce_to(ctx, ctx.mul(g, b, g.shape), a.shape) if not op.constant[0] else None,
                    _reduce_to(ctx, ctx.mul(g, a, g.shape), b.shape) if not op.constant[1] else None]
        if kind == "+":
            return [_reduce_to(ctx, g, a.shape), _reduce_to(ctx, g, b.shape)]
        if kind == "-":
            return [_reduce_to(ctx, g, a.shape), _reduce_to(ctx, ctx.neg(g), b.shape)]
        if kind == "@":
            return [ctx.matmul(g, ctx.transpose(b)) if not op.constant[0] else None,
                    ctx.matmul(ctx.transpose(a), g) if not op.constant[1] else None]
        if kind == "/":
            ga = _reduce_to(ctx, ctx.div(g, b, g.shape), a.shape) if not op.constant[0] else None
            gb = None if op.constant[1] else \
                _reduce_to(ctx, ctx.neg(ctx.div(ctx.mul(g, out, g.shape), b, g.shape)), b.shape)
            return [ga, gb]
        if kind == "max":
            ge = ctx.at_least(a, b, g.shape)
            lt = ctx.sub(ctx.const(Fraction(1)), ge, ge.shape)
            return [_reduce_to(ctx, ctx.mul(g, ge, g.shape), a.shape) if not op.constant[0] else None,
                    _reduce_to(ctx, ctx.mul(g, lt, g.shape), b.shape) if not op.constant[1] else None]
        if kind == "^":
            ga = gb = None
            if not op.constant[0]:
                e1 = ctx.sub(b, ctx.const(Fraction(1)), ())
                ga = ctx.mul(g, ctx.mul(b, ctx.pow(a, e1, a.shape), a.shape), g.shape)
            if not op.constant[1]:
                gb = _reduce_to(ctx, ctx.mul(ctx.mul(g, out, g.shape), ctx.log(a), g.shape), ())
            return [ga, gb]
    a = kids[0]
    if kind == "neg":
        return [ctx.neg(g)]
    if kind == "sigmoid":
        return [ctx.mul(g, ctx.sigmoid_prime(a, out), g.shape)]
    if kind == "tanh":
        # tanh′ = 1 − tanh²
        one = ctx.const(Fraction(1))
        return [ctx.mul(g, ctx.sub(one, ctx.mul(out, out, out.shape), out.shape), g.shape)]
    if kind == "exp":
        return [ctx.mul(g, out, g.shape)]
    if kind == "log":
        return [ctx.div(g, a, g.shape)]
    if kind == "sqrt":
        two = ctx.const(Fraction(2))
        return [ctx.div(g, ctx.mul(two, out, out.shape), g.shape)]
    if kind == "relu":
        return [ctx.mul(g, ctx.func("step", a), g.shape)]
    if kind == "softplus":
        return [ctx.mul(g, ctx.func("sigmoid", a), g.shape)]
    if kind == "abs":
        return [ctx.mul(g, ctx.func("sign", a), g.shape)]
    if kind == "softmax":
        return [ctx.softmax_backward(out, g)]
    if kind == "index":
        return [ctx.scatter(a.shape, _flat_index(op.value, a.shape), g)]
    if kind == "transpose":
        return [g if g.shape == () else ctx.transpose(g)]
    if kind == "sum":
        return [ctx.full(a.shape, g) if a.shape != () else g]
    if kind == "mean":
        gm = ctx.mul(g, ctx.const(Fraction(1, a.size)), ())
        return [ctx.full(a.shape, gm) if a.shape != () else gm]
    if kind == "frobenius":
        # d‖A‖_F/dA = A / ‖A‖_F
        return [ctx.mul(ctx.div(g, out, ()), a, a.shape)]
    if kind == "norm2":
        raise DeriveError("norm2 cannot be differentiated here (use frobenius in a loss)")
    raise AssertionError(f"unknown operation {kind!r}")


def input_values(program: Program, ctx) -> dict:
    """Every data and parameter value in a context, as the spec gives it."""
    spec = program.spec
    return {n: ctx.from_fractions(v.shape, v.entries) for n, v in (*spec.data.items(),
                                                                   *spec.parameters.items())}


def forward_loss(program: Program, ctx, values: dict) -> Arr:
    """The loss from input values by the forward pass alone (no derivative rule is used)."""
    return _forward_only(program, ctx, values, program.loss)


def run(program: Program, ctx, steps: int, what_if: "WhatIf | None" = None) -> Trajectory:
    """Forward pass, backward pass and `steps` gradient-descent updates in one context (with the
    changes of `what_if`, the checker's hypotheses)."""
    out = []
    for step in trajectory(program, ctx, what_if):
        out.append(step)
        if len(out) == steps + 1:
            break
    return Trajectory(ctx, out)


def trajectory(program: Program, ctx, what_if: "WhatIf | None" = None, inputs: dict | None = None,
               learning_rate: Fraction | None = None):
    """The steps k = 0, 1, … of a run, one at a time (a generator: a what-if run that fails at
    step 2 still answers for steps 0 and 1).  `inputs` (name -> Arr) and `learning_rate` replace
    the spec's (the checker's random points; a symbolic spec's names)."""
    spec = program.spec
    values = dict(inputs) if inputs is not None else input_values(program, ctx)
    eta = spec.learning_rate if learning_rate is None else learning_rate
    lr = ctx.const(eta) if eta is not None else None
    k = 0
    while True:
        if what_if is not None:
            values = _set_inputs(ctx, program, what_if, values, k)
        step = _one_step(program, ctx, values, k, what_if, lr)
        yield step
        values = {n: v for n, v in values.items() if n not in step.op_values}
        for name in spec.update:
            g = step.adjoints.get(name)
            if g is not None:
                values[name] = _updated(ctx, what_if, values[name], lr, g)
        k += 1


def _updated(ctx, what_if, p: Arr, lr: Arr, g: Arr) -> Arr:
    # p@k+1 = p@k − η · dL/dp@k  (or a what-if's mistaken rule)
    step = ctx.mul(lr, g, g.shape)
    rule = "descent" if what_if is None else what_if.update
    if rule == "descent":
        return ctx.sub(p, step, g.shape)
    if rule == "ascent":
        return ctx.add(p, step, g.shape)
    if rule == "step":
        return step
    if rule == "minus-step":
        return ctx.neg(step)
    raise AssertionError(rule)


def _one_step(program: Program, ctx, inputs: dict, k: int, what_if=None, lr=None) -> Step:
    spec = program.spec
    values = dict(inputs)
    op_values = {}
    replaced = set()
    for name, _tree, ops in program.definitions:
        try:
            vals = _forward_definition(ctx, ops, values)
        except DeriveError as e:
            raise e.located(file=spec.path, key=_where(name, k, program, ctx, inputs)) from None
        if what_if is not None:
            changed = _changed_value(ctx, what_if, name, k, vals[-1])
            if changed is not vals[-1]:
                vals[-1] = changed
                replaced.add(name)
        op_values[name] = vals
        values[name] = vals[-1]
    step = Step(values, {}, op_values, {}, what_if, frozenset(replaced))
    by_entries = what_if is not None and _by_entries(what_if)
    if by_entries:
        step.jacobians = _jacobians(program, ctx, step)
        step.adjoints = _arrays_of(program, ctx, entry_adjoints(program, ctx, step, (program.loss, 0), k))
    else:
        step.adjoints = adjoints_from(program, ctx, step, program.loss, k)
    if what_if is not None and what_if.updated_weights:
        # backpropagate again, the local derivatives now taken with p − η·dL/dp
        step.new_parameters = {p: _updated(ctx, None, values[p], lr, step.adjoints[p])
                               for p in spec.update if p in step.adjoints}
        step.entry_adjoints.clear()
        if by_entries:
            step.jacobians = _jacobians(program, ctx, step)
            step.adjoints = _arrays_of(program, ctx, entry_adjoints(program, ctx, step, (program.loss, 0), k))
        else:
            step.adjoints = adjoints_from(program, ctx, step, program.loss, k)
    return step


def forward_backward(program: Program, ctx, values: dict, k: int = 0) -> Step:
    """One forward and backward pass from the given input values (every data and parameter name
    -> Arr): what a training loop calls once per sample with that sample's values swapped in.
    `k` is the number of updates made before, for messages.  A program of scalars in a ball
    context replays its tape (the same balls as `_one_step`, without the per-operation dispatch);
    where the replay fails, `_one_step` gives the error with its location."""
    step = _replayed_step(program, ctx, values)
    return step if step is not None else _one_step(program, ctx, values, k)


def _replayed_step(program: Program, ctx, values: dict) -> Step | None:
    """One pass from `values` by the program's tape, or None (no tape, or the replay failed: the
    engine's own pass then gives the result or the located error)."""
    recorded = _tape_of(program, ctx)
    if recorded is None:
        return None
    spec = program.spec
    try:
        return tape.one_step(recorded, [values[n].data for n in (*spec.data, *spec.parameters)])
    except (DeriveError, Imprecise, ArithmeticError, ValueError):
        return None


_TAPES: dict = {}       # id(program) -> (program, {precision: Tape or None})
MAX_TAPES = 16


def _tape_of(program: Program, ctx):
    """The program's tape at ctx's precision (recorded once), or None where it does not apply."""
    if not isinstance(ctx, BallArrays) or not tape.applies(program):
        return None
    entry = _TAPES.get(id(program))
    if entry is None or entry[0] is not program:
        if len(_TAPES) >= MAX_TAPES:
            _TAPES.clear()
        entry = _TAPES[id(program)] = (program, {})
    tapes = entry[1]
    if ctx.prec not in tapes:
        old = flint.ctx.prec
        flint.ctx.prec = ctx.prec
        try:
            tapes[ctx.prec] = tape.record(program, ctx, _TAPE_PARTS)
        except tape.NotRecordable:
            tapes[ctx.prec] = None
        finally:
            flint.ctx.prec = old
    return tapes[ctx.prec]


def forward_value(program: Program, ctx, values: dict, name: str) -> Arr:
    """`name`'s value by the forward pass alone (no derivative), from input values; a program of
    scalars replays the instructions of its tape that `name` depends on (the same ball as a whole
    step gives); where that fails, the engine's own forward pass gives the value or the error."""
    recorded = _tape_of(program, ctx)
    if recorded is not None and name in recorded.values:
        spec = program.spec
        try:
            ball = recorded.value([values[n].data for n in (*spec.data, *spec.parameters)], recorded.values[name])
            return recorded.parts.arr((), ball)
        except (DeriveError, Imprecise, ArithmeticError, ValueError):
            pass
    return _forward_only(program, ctx, values, name)


def _forward_only(program: Program, ctx, values: dict, name: str) -> Arr:
    values = dict(values)
    for d, _tree, ops in program.definitions:
        try:
            values[d] = _forward_definition(ctx, ops, values)[-1]
        except DeriveError as e:
            raise e.located(file=program.spec.path, key=f"forward.{d}") from None
        if d == name:
            break
    return values[name]


def adjoints_from(program: Program, ctx, step: Step, seed, k: int = 0) -> dict:
    """d(seed)/d(name) for every name the `seed` depends on, by one backward pass:
    dS/dn = Σ over the definitions c that use n of dS/dc · ∂c/∂n (the rules of `_local_rule`).
    `seed` is a scalar's name, or (name, i) for the entry i (row-major) of a matrix."""
    name0, i0 = (seed, None) if isinstance(seed, str) else seed
    adjoints = {name0: ctx.const(Fraction(1)) if i0 is None else _one_hot(ctx, program.shapes[name0], i0)}
    w = step.what_if
    reached = False
    for name, _tree, ops in reversed(program.definitions):
        if name == name0:
            reached = True
        g = adjoints.get(name)
        if not reached or g is None:
            continue
        vals, rule = step.op_values[name], None
        if w is not None:   # a what-if run whose changes need no entry-by-entry accumulation
            vals = _with_parameters(ops, vals, step.new_parameters)
            rule = _root_rule(w, name, ops[-1], name in step.replaced)
        try:
            _backward_definition(ctx, ops, vals, g, adjoints, rule)
        except DeriveError as e:
            raise e.located(file=program.spec.path, key=_where(name, k)) from None
    return adjoints


_ONE_HOTS: dict = {}     # (shape, i) -> the ball one-hot of a small shape (exact: any precision)
SMALL_ONE_HOT = 64


def _one_hot(ctx, shape: tuple, i: int) -> Arr:
    if isinstance(ctx, BallArrays) and _size(shape) <= SMALL_ONE_HOT:
        # a Jacobian seeds one backward pass per entry of each definition, run after run
        got = _ONE_HOTS.get((shape, i))
        if got is None:
            got = _ONE_HOTS[(shape, i)] = _make_one_hot(ctx, shape, i)
        return got
    return _make_one_hot(ctx, shape, i)


def _make_one_hot(ctx, shape: tuple, i: int) -> Arr:
    if shape == ():
        return ctx.const(Fraction(1))
    return ctx.from_fractions(shape, [Fraction(int(j == i)) for j in range(_size(shape))])


# ---------------------------------------------------------------- what-if runs (the checker's)
@dataclass(frozen=True)
class WhatIf:
    """A change to a run: a mistake a hand calculation makes, as data (hashable, so a run with it
    can be cached).  Entries are (name, i), i row-major.

    round_digits, rounding: values ("forward"), local derivatives ∂c_i/∂d_j ("local") and adjoints
        ("adjoint") rounded to round_digits significant digits, half away from zero;
    values: (((name, i, k), q), …): the entry's value at step k set to q (an author's number);
    segments: ((((a, i), (n, j), k), q), …): ∂a_i/∂n_j at step k taken as q (an author's number):
        dS/dn_j gains dS/da_i · (q − ∂a_i/∂n_j), and is q when a_i is the seed S itself;
    activation: ((definition, mode), …): the derivative of the definition's root activation f
        taken "pre" — f′ written in its output y, evaluated at the pre-activation u: u(1 − u) for
        σ, 1 − u² for tanh; "out" — f′ evaluated at the output: σ(y)(1 − σ(y)), 1 − tanh(y)²;
        "drop" — left out: ∂y/∂u = 1 (for y = c·(…), the c left out);
    dropped: (((c, i), (d, j)), …): ∂c_i/∂d_j taken as 0 (the path through c_i left out);
    update: "descent" p − η·g, "ascent" p + η·g, "step" η·g, "minus-step" −η·g;
    updated_weights: the local derivatives of a step taken with its parameters already updated.

    A what-if run accumulates adjoints entry by entry over each definition's Jacobian (its rows
    from `_backward_definition`, one seeded pass per entry), so that every one of these changes
    has a place; the Jacobian's σ′ is y(1 − y) of the definition's value y when a what-if changed
    y, as a hand calculation does."""
    round_digits: int | None = None
    rounding: frozenset = frozenset()
    values: tuple = ()
    segments: tuple = ()
    activation: tuple = ()
    dropped: frozenset = frozenset()
    update: str = "descent"
    updated_weights: bool = False


_ROUNDED: dict = {}      # (mantissa, exponent, n, precision) -> the ball of the rounded value
MAX_ROUNDED = 200_000


def _rounded(ctx, x, n: int):
    """A ball (or Fraction) rounded to n significant digits, as an exact value.  A ball's result
    is a function of its midpoint, n and the working precision alone, and the checker's what-if
    runs round the same values again and again (every rounding world at the same digits, the
    Jacobians of every world whose forward values are the true ones): memoised on those."""
    if isinstance(x, arb) and isinstance(ctx, BallArrays):
        m, e = x.mid().man_exp()
        if m == 0:
            return x
        key = (int(m), int(e), n, flint.ctx.prec)
        got = _ROUNDED.get(key)
        if got is None:
            if len(_ROUNDED) >= MAX_ROUNDED:
                _ROUNDED.clear()
            got = _ROUNDED[key] = _rounded_exact(ctx, _ball_exact(x.mid()), n)
        return got
    q = x if not isinstance(x, arb) else _ball_exact(x.mid())
    if q is None or q == 0:
        return x
    return _rounded_exact(ctx, q, n)


def _rounded_exact(ctx, q: Fraction, n: int):
    """The nonzero exact value q rounded to n significant digits, as an entry of ctx."""
    m, e = rounded_parts(q, n)
    return _exact_entry(ctx, Fraction(m * 10 ** e) if e >= 0 else Fraction(m, 10 ** -e))


def _exact_entry(ctx, q: Fraction):
    return ctx.const(q).data if isinstance(ctx, BallArrays) else q


def _entries_changed(ctx, a: Arr, change: dict) -> Arr:
    """a with entry i replaced by change[i] (entries in the context's own type)."""
    xs = ctx.entries(a)
    for i, x in change.items():
        xs[i] = x
    return _array(ctx, a.shape, xs)


def _array(ctx, shape: tuple, xs: list) -> Arr:
    if isinstance(ctx, BallArrays):
        return Arr((), xs[0]) if shape == () else Arr(shape, arb_mat(shape[0], shape[1], xs))
    return Arr(shape, tuple(xs))


def _set_inputs(ctx, program: Program, w: WhatIf, values: dict, k: int) -> dict:
    """Inputs (data, parameters) at step k with the what-if's set values."""
    by_name: dict = {}
    for (name, i, kk), q in w.values:
        if kk == k and name in values:     # values: the inputs only
            by_name.setdefault(name, {})[i] = _exact_entry(ctx, q)
    out = dict(values)
    for name, change in by_name.items():
        out[name] = _entries_changed(ctx, out[name], change)
    return out


def _changed_value(ctx, w: WhatIf, name: str, k: int, value: Arr) -> Arr:
    """A definition's value with the what-if's rounding and set values (the same object when
    nothing changes)."""
    change: dict = {}
    if "forward" in w.rounding and w.round_digits:
        for i, x in enumerate(ctx.entries(value)):
            r = _rounded(ctx, x, w.round_digits)
            if r is not x:
                change[i] = r
    for (n, i, kk), q in w.values:
        if n == name and kk == k:
            change[i] = _exact_entry(ctx, q)
    return _entries_changed(ctx, value, change) if change else value


def _root_rule(w: WhatIf, name: str, op: Op, replaced: bool):
    """The what-if's rule at a definition's root op, or None for `_local_rule`'s."""
    mode = dict(w.activation).get(name)
    kind = op.kind
    if mode == "drop":
        if kind in ("sigmoid", "tanh", "relu", "softplus"):
            return lambda ctx, op, kids, out, g: [g]
        if kind == "*":
            return lambda ctx, op, kids, out, g: [None if op.constant[0] else g, None if op.constant[1] else g]
    one = Fraction(1)
    if mode in ("pre", "out") and kind in ("sigmoid", "tanh"):
        def rule(ctx, op, kids, out, g):
            # "pre": f′ written in its output y, with the pre-activation u in y's place;
            # "out": f′(y), the output taken for the pre-activation
            y = kids[0] if mode == "pre" else ctx.func(kind, out)
            c1 = ctx.const(one)
            d = ctx.mul(y, ctx.sub(c1, y, y.shape), y.shape) if kind == "sigmoid" else \
                ctx.sub(c1, ctx.mul(y, y, y.shape), y.shape)
            return [ctx.mul(g, d, g.shape)]
        return rule
    if replaced and kind == "sigmoid":
        # σ′ = y(1 − y) of the definition's (changed) value y
        return lambda ctx, op, kids, out, g: [ctx.mul(g, ctx.mul(out, ctx.sub(ctx.const(one), out, out.shape),
                                                                 out.shape), g.shape)]
    return None


def _by_entries(w: WhatIf) -> bool:
    """Whether a what-if's adjoints need accumulating entry by entry (over Jacobians): dropped
    pairs, author's segments, rounded local derivatives or adjoints.  The other changes (values,
    activation rules, update rules, updated weights) are whole-array backward passes."""
    return bool(w.dropped or w.segments or (w.round_digits and {"local", "adjoint"} & w.rounding))


def _with_parameters(ops, vals: list, new_parameters: dict | None) -> list:
    """A definition's op values with the parameters' ops taken from `new_parameters`."""
    if not new_parameters:
        return vals
    return [new_parameters.get(op.value, v) if op.kind == "name" else v for op, v in zip(ops, vals)]


def _jacobians(program: Program, ctx, step: Step) -> dict:
    """definition -> {i: {(dep, j): ∂def_i/∂dep_j}} (entries that are exactly 0 left out), with
    the what-if's activation rules, dropped pairs and rounding of local derivatives (and the
    step's updated parameters, with updated weights)."""
    w = step.what_if
    out = {}
    n = w.round_digits if "local" in w.rounding else None
    for name, _tree, ops in program.definitions:
        vals = _with_parameters(ops, step.op_values[name], step.new_parameters)
        rule = _root_rule(w, name, ops[-1], name in step.replaced)
        rows = {}
        for i in range(_size(program.shapes[name])):
            grads: dict = {}
            try:
                _backward_definition(ctx, ops, vals, _one_hot(ctx, program.shapes[name], i), grads, rule)
            except DeriveError as e:
                raise e.located(file=program.spec.path, key=_where(name, 0)) from None
            row = {}
            for dep, g in grads.items():
                for j, x in enumerate(ctx.entries(g)):
                    if ((name, i), (dep, j)) in w.dropped or _is_zero(x):
                        continue
                    row[(dep, j)] = _rounded(ctx, x, n) if n else x
            rows[i] = row
        out[name] = rows
    return out


def _is_zero(x) -> bool:
    """x is exactly 0: a Fraction or int equal to 0, a ball of radius 0 at 0 (never a tape's
    stand-in for a computed ball, `tape` records the entry: its exact 0, where it is one, changes
    no ball it is added to or multiplies)."""
    if x is None or isinstance(x, (int, Fraction)):
        return x == 0
    return x.is_exact() and x.is_zero()


def entry_adjoints(program: Program, ctx, step: Step, seed: tuple, k: int = 0, plain: bool = False) -> dict:
    """{(name, j): ∂seed/∂name_j} in a what-if run, `seed` an entry (name, i): accumulated entry
    by entry, dS/dd_j = Σ_c dS/dc_i · ∂c_i/∂d_j over the Jacobians, with the what-if's rounded
    adjoints and author's segments (`plain`: neither)."""
    key = (seed, plain)
    if key in step.entry_adjoints:
        return step.entry_adjoints[key]
    if step.jacobians is None:      # changes a whole-array backward pass makes
        name = seed[0]
        arrays = adjoints_from(program, ctx, step, name if program.shapes[name] == () else seed, k)
        adj = {(n, j): x for n, a in arrays.items() for j, x in enumerate(ctx.entries(a))}
        step.entry_adjoints[key] = adj
        return adj
    w = step.what_if
    one = ctx.const(Fraction(1)).data if isinstance(ctx, BallArrays) else Fraction(1)
    n = None if plain or "adjoint" not in w.rounding else w.round_digits
    segments: dict = {}
    if not plain:
        for ((a, target, kk), q) in w.segments:
            if kk == k:
                segments.setdefault(target, []).append((a, _exact_entry(ctx, q)))
    adj = {seed: one}

    def visit(e, rows):
        for a, q in segments.get(e, ()):
            if a == seed:
                adj[e] = q
            elif not _is_zero(adj.get(a, 0)):
                base = entry_adjoints(program, ctx, step, a, k, plain=True).get(e, 0)
                adj[e] = adj.get(e, 0) + adj[a] * (q - base)
        v = adj.get(e)
        if v is None or _is_zero(v):
            return
        if n and e != seed:
            v = adj[e] = _rounded(ctx, v, n)
        for dep, x in (rows or {}).items():
            adj[dep] = adj.get(dep, 0) + v * x

    reached = False
    for name, _tree, _ops in reversed(program.definitions):
        reached = reached or name == seed[0]
        if reached:
            for i, rows in step.jacobians[name].items():
                visit((name, i), rows)
    for name in (*program.spec.data, *program.spec.parameters, *program.spec.symbolic):
        for j in range(_size(program.shapes[name])):
            visit((name, j), None)
    step.entry_adjoints[key] = adj
    return adj


def _arrays_of(program: Program, ctx, adj: dict) -> dict:
    """Entry adjoints as arrays per name (names no entry reaches left out)."""
    zero = _exact_entry(ctx, Fraction(0))
    by_name: dict = {}
    for (name, j), v in adj.items():
        by_name.setdefault(name, {})[j] = v
    return {name: _array(ctx, program.shapes[name], [got.get(j, zero) for j in range(_size(program.shapes[name]))])
            for name, got in by_name.items()}


def _where(name: str, k: int, program: Program | None = None, ctx=None, inputs: dict | None = None) -> str:
    """forward.NAME, and after a step the updated parameters it uses, directly or through other
    definitions (at most four values, 4 digits): forward.y (after step 1, w = -0.3743)."""
    if k == 0:
        return f"forward.{name}"
    shown = []
    if program is not None:
        for p in _parameters_feeding(program, name):
            if p not in program.spec.update:
                continue
            for i, v in enumerate(ctx.entries(inputs[p])):
                label = p if program.shapes[p] == () else \
                    f"{p}[{i // program.shapes[p][1] + 1},{i % program.shapes[p][1] + 1}]"
                shown.append(f"{label} = {_short(v)}")
    more = ", …" if len(shown) > 4 else ""
    return f"forward.{name} (after step {k}" + (f", {', '.join(shown[:4])}{more}" if shown else "") + ")"


def _short(v) -> str:
    """A value in 4 significant digits for a message."""
    if v is None:
        return "?"
    if isinstance(v, Fraction):
        return show_fraction(v, 4).text
    shown = shown_ball(v, 4, final=True)
    return "?" if shown is None else shown.text


def _parameters_feeding(program: Program, name: str) -> list:
    """Parameters a definition depends on, directly or through other definitions, in spec order."""
    seen = depends_on(program.spec, name)
    return [p for p in program.spec.parameters if p in seen]


def depends_on(spec: Spec, name: str) -> set:
    """Every name that `name` depends on through the [forward] definitions (and itself)."""
    uses = {d.name: ex.ordered_names(d.tree) for d in spec.forward}
    seen, stack = {name}, [name]
    while stack:
        for used in uses.get(stack.pop(), ()):
            if used not in seen:
                seen.add(used)
                stack.append(used)
    return seen


# ---------------------------------------------------------------- certified rounding
def _round_magnitude(n: int, e: int, digits: int) -> tuple:
    """n·10^e (n > 0) rounded to `digits` significant digits, half away from zero: (m, e′)."""
    shift = len(str(n)) - digits
    if shift <= 0:
        return n * 10 ** (-shift), e + shift
    unit = 10 ** shift
    q, r = divmod(n, unit)
    if 2 * r >= unit:
        q += 1
    if q == 10 ** digits:
        q //= 10
        shift += 1
    return q, e + shift


def decide(x: arb, digits: int) -> tuple | None:
    """(negative, digit string, exponent) of the correctly rounded `digits`-digit decimal of
    every number in the ball x, or None when the ball straddles a rounding boundary (more
    precision is needed).  Exact zero is (False, "0", 0)."""
    if not x.is_finite():
        return None
    if x.is_exact() and x.is_zero():
        return (False, "0", 0)
    d = _decide_at(x, digits, digits + 4)
    if d is None:   # perhaps only the decimal conversion was too coarse: use all the ball's digits
        d = _decide_at(x, digits, max(digits + 4, int(x.rel_accuracy_bits() * 0.30103) + 4))
    return d


def _decide_at(x: arb, digits: int, n: int) -> tuple | None:
    mid, rad, e = x.mid_rad_10exp(n)   # x ⊆ [mid − rad, mid + rad]·10^e
    mid, rad, e = int(mid), int(rad), int(e)
    lo, hi = mid - rad, mid + rad
    if lo <= 0 <= hi:
        return None
    negative = lo < 0
    a, b = (-hi, -lo) if negative else (lo, hi)
    ra = _round_magnitude(a, e, digits)
    if ra != _round_magnitude(b, e, digits):
        return None
    return (negative, str(ra[0]), ra[1])


def decided_text(d: tuple, digits: int) -> str:
    negative, s, exp = d
    return "0" if s == "0" else format_digits(negative, s, exp, digits)


def _ball_exact(x: arb) -> Fraction | None:
    """The value of a ball of radius 0 (a binary number), else None."""
    if not x.is_exact():
        return None
    m, e = x.man_exp()
    m, e = int(m), int(e)
    return Fraction(m * 2 ** e) if e >= 0 else Fraction(m, 2 ** -e)


@dataclass(frozen=True)
class Request:
    kind: str      # "value" | "adjoint"
    name: str
    step: int


class Unsupported(Exception):
    """A quantity the engine does not evaluate (dA/dB with A not a scalar definition): the
    per-scalar SymPy path (`quantity`) does."""


@dataclass(frozen=True)
class Expression:
    """A compiled quantity (NAME, NAME@k, dA/dB, dA/dB@k, expressions over them)."""
    text: str
    ops: tuple              # the expression's ops; leaves are names "#0", "#1", …
    leaves: tuple           # per leaf: ("value", name, k) or ("deriv", A, B, k)
    shape: tuple
    max_step: int


def compile_quantity(program: Program, text: str, where: str = "", tree=None) -> Expression:
    """A quantity compiled against a program, from its text (or its parsed `tree`, which then
    wins); DeriveError for bad text, `Unsupported` for a derivative the engine leaves to the
    per-scalar path."""
    shapes = program.shapes
    if tree is None:
        try:
            tree = ex.parse_quantity(text, lambda n: n in shapes)
        except DeriveError as e:
            raise e.located(key=where) from None
    leaves: list = []
    leaf_shapes: dict = {}

    def leaf(binding, shape):
        name = f"#{len(leaves)}"
        leaves.append(binding)
        leaf_shapes[name] = shape
        return ex.Name(name)

    def known(n):
        if n not in shapes:
            raise DeriveError(f"unknown name {n!r}", key=where)

    def replace(n, kids):
        if isinstance(n, ex.Name):
            known(n.id)
            return leaf(("value", n.id, 0), shapes[n.id])
        if isinstance(n, ex.AtStep):
            known(n.name)
            return leaf(("value", n.name, n.step), shapes[n.name])
        if isinstance(n, ex.Deriv):
            known(n.of)
            known(n.wrt)
            if shapes[n.of] != () or n.of not in dict((d, 0) for d, _t, _o in program.definitions):
                raise Unsupported(text)
            return leaf(("deriv", n.of, n.wrt, n.step), shapes[n.wrt])
        if isinstance(n, ex.Index) and isinstance(kids[0], ex.Name) and kids[0].id in leaf_shapes:
            b = n.base
            what = b.id if isinstance(b, ex.Name) else b.name if isinstance(b, ex.AtStep) else \
                f"d{b.of}/d{b.wrt}" if isinstance(b, ex.Deriv) else ""
            try:
                ex.index_entry(n.index, leaf_shapes[kids[0].id], what)
            except DeriveError as e:
                raise e.located(key=where) from None
            return ex.Index(kids[0], n.index)
        return None

    rewritten = _squared_norms(_rebuild(tree, replace))
    try:
        shape, _work = _shape_of(rewritten, leaf_shapes)
    except DeriveError as e:
        raise e.located(key=where) from None
    max_step = max([b[-1] for b in leaves] + [0])
    return Expression(text, _ops(rewritten), tuple(leaves), shape, max_step)


def _expression_value(traj: Trajectory, expr: Expression, program: Program) -> Arr:
    ctx = traj.ctx
    env = {}
    for i, b in enumerate(expr.leaves):
        if b[0] == "value":
            env[f"#{i}"] = traj.steps[b[2]].values[b[1]]
            continue
        _, of, wrt, k = b
        step = traj.steps[k]
        if of not in step.seeded:
            step.seeded[of] = adjoints_from(program, ctx, step, of, k)
        g = step.seeded[of].get(wrt)
        env[f"#{i}"] = g if g is not None else ctx.full(program.shapes[wrt], ctx.const(Fraction(0)))
    return _forward_definition(ctx, expr.ops, env)[-1]


def _arr_of(traj: Trajectory, req, program: Program):
    if isinstance(req, Expression):
        return _expression_value(traj, req, program)
    st = traj.steps[req.step]
    table = st.values if req.kind == "value" else st.adjoints
    a = table.get(req.name)
    if a is None:   # an adjoint of a name the loss does not depend on
        return traj.ctx.full(program.shapes[req.name], traj.ctx.const(Fraction(0)))
    return a


def cached_run(runs: dict | None, program: Program, key, steps: int) -> Trajectory:
    """A run in context `key` ("exact", or a precision in bits) of at least `steps` steps,
    from `runs` when one is there (a longer run serves a shorter request), else made and kept."""
    if runs is not None:
        for (k, n), traj in runs.items():
            if k == key and n >= steps:
                return traj
    if key == "exact":
        traj = run(program, ExactArrays(), steps)
    else:
        traj = _ball_run(program, key, steps)
    if runs is not None:
        runs[(key, steps)] = traj
    return traj


def solve_numbers(program: Program, digits: int, steps: int, requests: list, runs: dict | None = None) -> dict:
    """Request (or Expression) -> tuple of `Number` (row-major), every one exact or certified to
    `digits`.  `runs` (a dict) keeps the runs made, for the next call on the same program."""
    def values_of(traj, keys):
        return {r: traj.ctx.entries(_arr_of(traj, r, program)) for r in keys}
    return certified(program, digits, steps, requests, values_of, runs)


def certified(program: Program, digits: int, steps: int, keys: list, values_of, runs: dict | None = None) -> dict:
    """key -> tuple of `Number`, every one exact or certified to `digits` significant digits.

    `values_of(traj, keys)` gives {key: [value per entry]} in the run's context (Fractions or None
    in the exact run, balls in a ball run).  Small specs run exactly first; what is not rational
    comes from ball runs at a precision doubled until every ball decides its digits (a ball that
    cannot decide a branch, `Imprecise`, also doubles it, up to RESCUE_PRECISION_BITS)."""
    if not 1 <= digits <= MAX_DIGITS:
        raise LimitError(f"digits must be between 1 and {MAX_DIGITS}")
    shown: dict = {}
    exact: dict = {}
    use_exact = program.work * max(1, steps + 1) <= EXACT_LIMIT
    if use_exact:
        exact = values_of(cached_run(runs, program, "exact", steps), keys)
        shown = {k: tuple(show_fraction(q, digits) for q in qs) for k, qs in exact.items()
                 if all(q is not None for q in qs)}
    pending = [k for k in keys if k not in shown]
    prec = first_precision(digits, steps)
    while pending:
        try:
            traj = cached_run(runs, program, prec, steps)
            with precision(prec):
                balls_of = values_of(traj, pending)
        except Imprecise as trouble:
            if prec * 2 > RESCUE_PRECISION_BITS:
                raise DeriveError(f"{trouble.message} (still at {int(prec / 3.33)} working digits)",
                                  file=program.spec.path) from None
            prec *= 2
            continue
        final = prec * 2 > MAX_PRECISION_BITS
        still = []
        for k in pending:
            balls = balls_of[k]
            out = []
            for ball, q in zip(balls, exact.get(k) or (None,) * len(balls)):
                if q is None and not use_exact:     # a binary value of a large spec: exact
                    q = _ball_exact(ball)
                if q is not None:
                    out.append(show_fraction(q, digits))
                    continue
                d = decide(ball, digits)
                if d is None and final:
                    d = _midpoint_rounded(ball, digits)
                if d is None:
                    break
                out.append(Number(decided_text(d, digits), None, float(ball.mid())))
            else:
                shown[k] = tuple(out)
                continue
            still.append(k)
        pending = still
        prec *= 2
    return {k: shown[k] for k in keys}


def first_precision(digits: int, steps: int) -> int:
    """The ball precision `certified` starts from (guard bits: long runs widen the balls)."""
    return int(digits * 3.33) + 64 + steps // 50


def shown_ball(ball: arb, digits: int, final: bool = False) -> Number | None:
    """A ball as shown (for messages): exact when its radius is 0, else its certified rounding;
    None when undecided (at `final`, the precision cap, the midpoint's rounding)."""
    q = _ball_exact(ball)
    if q is not None:
        return show_fraction(q, digits)
    d = decide(ball, digits)
    if d is None and final:
        d = _midpoint_rounded(ball, digits)
    return None if d is None else Number(decided_text(d, digits), None, float(ball.mid()))


def _midpoint_rounded(ball: arb, digits: int) -> tuple:
    """At the precision cap (a value at an exact rounding tie): the midpoint's rounding."""
    d = round_fraction(_ball_exact(ball.mid()), digits)
    sign, digs, exp = d.as_tuple()
    return (bool(sign), "".join(map(str, digs)), exp)


class precision:
    """`with precision(bits) as ctx:` flint's working precision set, and a `BallArrays` for it."""

    def __init__(self, bits: int):
        self.bits = bits

    def __enter__(self) -> BallArrays:
        self.old = flint.ctx.prec
        flint.ctx.prec = self.bits
        return BallArrays(self.bits)

    def __exit__(self, *exc):
        flint.ctx.prec = self.old
        return False


def _ball_run(program: Program, prec: int, steps: int) -> Trajectory:
    """`run` at `prec` bits; a program of scalars is replayed from its tape (`tape`: the same
    balls, without the per-operation dispatch), unless the tape does not apply."""
    with precision(prec) as ctx:
        replayed = tape.run(program, ctx, steps, _TAPE_PARTS)
        return replayed if replayed is not None else run(program, ctx, steps)


_TAPE_PARTS = tape.Parts(run=run, arr=Arr, step=Step, trajectory=Trajectory, imprecise=Imprecise)


# ---------------------------------------------------------------- what a solution prints
@dataclass(frozen=True)
class Numbers:
    """The numbers `derive solve` prints, correctly rounded: (name -> tuple of Number)."""
    digits: int
    steps: int
    forward: dict           # forward name -> values at the start
    gradients: dict         # parameter -> dL/dp at the start
    updated: dict           # parameter -> value after the last step (the start when steps = 0)
    history: tuple          # the loss at steps 0..K (Numbers)


def solution_numbers(program: Program, digits: int, steps: int, runs: dict | None = None) -> Numbers:
    spec = program.spec
    req = [Request("value", d.name, 0) for d in spec.forward]
    req += [Request("adjoint", p, 0) for p in spec.parameters]
    req += [Request("value", p, steps) for p in spec.parameters]
    req += [Request("value", spec.loss, k) for k in range(steps + 1)]
    got = solve_numbers(program, digits, steps, req, runs)
    return Numbers(
        digits, steps,
        forward={d.name: got[Request("value", d.name, 0)] for d in spec.forward},
        gradients={p: got[Request("adjoint", p, 0)] for p in spec.parameters},
        updated={p: got[Request("value", p, steps)] for p in spec.parameters},
        history=tuple(got[Request("value", spec.loss, k)][0] for k in range(steps + 1)),
    )


def unreached_parameters(spec: Spec) -> tuple:
    """Parameters in [train] update that the loss does not depend on (its gradient is 0)."""
    seen = depends_on(spec, spec.loss)
    return tuple(p for p in spec.update if p not in seen)


def slow_note(program: Program, steps: int) -> str | None:
    """One line saying up front that a run will take a while (measured here: 784-128-10, about
    6·10⁵ multiply-adds in two passes, takes 2.5 s with the rounding of every printed value)."""
    values = sum(_size(program.shapes[n]) for n in (*program.spec.data, *program.spec.parameters))
    if program.work * (steps + 1) <= SLOW_WORK:
        return None
    return f"{program.spec.path}: {values} values; a network this large takes a while"

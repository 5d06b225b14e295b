"""SymPy function classes for the network's activations, with textbook derivatives.

`sigmoid'(x)` is written σ(x)(1 − σ(x)) (not exp(-x)/(1+exp(-x))²), `relu'(x)` is the step
function with step(0) = 0 (our stated convention for relu at exactly 0), `softplus'` is σ.
`Norm2` (spectral norm) takes the matrix shape and entries as arguments; it has values but
no derivative in this tool.

`softmax(k, z_1, …, z_n)` is the k-th entry (1-based) of the softmax of the vector z (one column
of a matrix): e^(z_k) / Σ_j e^(z_j); its derivative is structural, ∂p_k/∂z_j = p_k(δ_kj − p_j).
`maximum(a, b)` is max(a, b), with ∂/∂a = `at_least(a, b)` = 1[a ≥ b] and ∂/∂b = 1 − 1[a ≥ b]:
our stated convention at a tie a = b is that the derivative goes to the first argument.  `abs` is
SymPy's `Abs`, whose derivative is sign(x); we take sign(0) = 0 (as relu′(0) = 0).
"""
from __future__ import annotations

import sympy as sp

from .errors import DeriveError


class sigmoid(sp.Function):
    """σ(x) = 1/(1 + e^(−x))."""

    @classmethod
    def eval(cls, x):
        if x.is_zero:
            return sp.Rational(1, 2)
        return None

    def fdiff(self, argindex=1):
        # dσ/dx = σ(x)(1 − σ(x))
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))


class step(sp.Function):
    """The derivative of relu: 1 for x > 0, 0 for x ≤ 0 (relu'(0) is taken as 0)."""

    @classmethod
    def eval(cls, x):
        if x.is_positive:
            return sp.Integer(1)
        if x.is_nonpositive:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)


class relu(sp.Function):
    """relu(x) = max(0, x)."""

    @classmethod
    def eval(cls, x):
        if x.is_nonnegative:
            return x
        if x.is_nonpositive:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        # d relu/dx = step(x), with step(0) = 0
        return step(self.args[0])


class softplus(sp.Function):
    """softplus(x) = log(1 + e^x)."""

    def fdiff(self, argindex=1):
        # d softplus/dx = σ(x)
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))


class Norm2(sp.Function):
    """Spectral norm ‖M‖₂ of an r×c matrix; args are (r, c, m11, m12, …) row-major."""

    def fdiff(self, argindex=1):
        raise DeriveError("norm2 (the spectral norm) cannot be differentiated here; "
                          "use frobenius() in a loss")


def norm2_of(rows: int, cols: int, entries) -> sp.Expr:
    if rows == 1 or cols == 1:
        # for a vector the spectral norm is the Euclidean norm
        return sp.sqrt(sp.Add(*[e ** 2 for e in entries]))
    return Norm2(sp.Integer(rows), sp.Integer(cols), *entries)


class softmax(sp.Function):
    """softmax(k, z_1, …, z_n) = e^(z_k) / Σ_j e^(z_j), k 1-based."""

    @classmethod
    def eval(cls, k, *zs):
        if not zs:
            raise DeriveError("softmax needs a vector")
        if len(set(zs)) == 1:
            return sp.Rational(1, len(zs))
        return None

    @property
    def position(self) -> int:
        return int(self.args[0])

    @property
    def vector(self) -> tuple:
        return self.args[1:]

    def entry(self, j: int):
        """The j-th entry (1-based) of the same softmax."""
        return softmax(sp.Integer(j), *self.vector)

    def fdiff(self, argindex=1):
        if argindex == 1:
            raise DeriveError("softmax's position is not a variable")
        j = argindex - 1
        # ∂p_k/∂z_j = p_k(δ_kj − p_j)
        return self * ((1 if j == self.position else 0) - self.entry(j))

    def _eval_rewrite_as_exp(self, k, *zs, **kwargs):
        return sp.exp(zs[int(k) - 1]) / sp.Add(*[sp.exp(z) for z in zs])


def softmax_entries(column: list) -> list:
    """The softmax of a vector's entries, entry by entry."""
    return [softmax(sp.Integer(k), *column) for k in range(1, len(column) + 1)]


class at_least(sp.Function):
    """1[a ≥ b]: the derivative of max(a, b) by a (a tie goes to a)."""

    @classmethod
    def eval(cls, a, b):
        if a.is_number and b.is_number and a.is_real and b.is_real:
            return sp.Integer(1 if bool(a >= b) else 0)
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)


class maximum(sp.Function):
    """max(a, b); ∂/∂a = 1[a ≥ b], ∂/∂b = 1 − 1[a ≥ b] (a tie goes to the first argument)."""

    @classmethod
    def eval(cls, a, b):
        if a.is_number and b.is_number and a.is_real and b.is_real:
            return a if bool(a >= b) else b
        return None

    def fdiff(self, argindex=1):
        a, b = self.args
        return at_least(a, b) if argindex == 1 else 1 - at_least(a, b)

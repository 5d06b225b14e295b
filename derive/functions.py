"""SymPy function classes for the network's activations, with textbook derivatives.

`sigmoid'(x)` is written σ(x)(1 − σ(x)) (not exp(-x)/(1+exp(-x))²), `relu'(x)` is the step
function with step(0) = 0 (our stated convention for relu at exactly 0), `softplus'` is σ.
`Norm2` (spectral norm) takes the matrix shape and entries as arguments; it has values but
no derivative in this tool.
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

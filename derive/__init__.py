"""derive: exact, textbook-quality worked solutions of backpropagation, and a checker for
hand derivations.  Pipeline: spec → graph → calculus → numeric → render (and check).

`derive.load`, `derive.Problem` and `derive.Solution` (the API, in `derive.solve`) and
`derive.check_claims` are loaded on first use, so that the command line starts without importing
SymPy; with them `derive.notebook`, which gives a Solution and a check its Jupyter display.
"""
from .errors import DeriveError

__all__ = ["DeriveError", "Problem", "Solution", "check_claims", "load"]
__version__ = "0.1.0"
_API = ("Problem", "Solution", "load", "check_claims")


def __getattr__(name: str):
    if name in _API:
        from . import notebook, solve
        return getattr(notebook if name == "check_claims" else solve, name)
    raise AttributeError(f"module 'derive' has no attribute {name!r}")

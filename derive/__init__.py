"""derive: exact, textbook-quality worked solutions of backpropagation, and a checker for
hand derivations.  Pipeline: spec → graph → calculus → numeric → render (and check).

`derive.load`, `derive.check_claims`, `derive.Problem` and `derive.Solution` (the API, in `derive.api`:
the engine's objects of `derive.solve`, displayed in Jupyter notebooks) are loaded on first use, so
that the command line starts without importing SymPy.
"""
from .errors import DeriveError

__all__ = ["DeriveError", "Problem", "Solution", "check_claims", "load"]
__version__ = "0.1.0"
_API = ("Problem", "Solution", "check_claims", "load")


def __getattr__(name: str):
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'derive' has no attribute {name!r}")

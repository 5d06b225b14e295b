"""derive: exact, textbook-quality worked solutions of backpropagation, and a checker for
hand derivations.  Pipeline: spec → graph → calculus → numeric → render (and check)."""
from .errors import DeriveError
from .solve import Problem, Solution, load

__all__ = ["DeriveError", "Problem", "Solution", "load"]
__version__ = "0.1.0"

"""The Python API as a user imports it (`derive.load`, `derive.check_claims`), whose objects display
themselves in a Jupyter notebook.

Takes what the stages give — `solve.Problem`/`solve.Solution` (numbers), `render.render_text`
(the worked solution), `check.check_file` (a claims file judged) — and adds only their displays:

    >>> import derive
    >>> sol = derive.load("two-two-two").solve(digits=6)
    >>> sol                                  # in a notebook: the worked solution (Markdown, $…$ math)
    >>> sol.sections[3]                      # one section of it
    >>> sol.formula("dE_total/dw6")          # one formula (LaTeX): ∂E/∂w₆ = … ≈ 0.0…
    >>> derive.check_claims("my.claims.toml") # a check report (derive check), as a table

The displays are `derive.display`'s, imported on first display (so that `derive.load` and the
engine's numbers do not wait for the renderers).  `Solution._repr_markdown_` is the handout's Markdown with Jupyter's math delimiters (`$…$`,
`$$…$$`; escape.JUPYTER_MATH_FILTERS), `_repr_html_` the interactive page's body (htmlpage, math
for Jupyter's MathJax, ids unique in the notebook), `Solution.sections` the Markdown cut at its `##`
headings, `Formula._repr_latex_` a single formula — the handout's own derivation of a step, else the
quantity's formula and value —, and `Report` the check report as a table (Markdown and HTML).  The
numbers are the solution's own (its `digits`); nothing is computed here that a stage does not give.
"""
from __future__ import annotations

from functools import cached_property

from . import solve
from .errors import DeriveError
from .spec import LANGS

__all__ = ["Problem", "Solution", "check_claims", "load"]


def _display():
    """derive.display, imported on first use (the one deferred import of this module)."""
    from . import display
    return display


class Solution(solve.Solution):
    """A `solve.Solution` that displays as its worked solution, in `lang` (default: the spec's)."""

    def __init__(self, problem, digits: int, steps: int, lang: str | None = None):
        super().__init__(problem, digits, steps)
        self.lang = lang or problem.spec.lang

    @cached_property
    def markdown(self) -> str:
        """The worked solution in Jupyter's Markdown, in `lang`, at these digits."""
        return _display().markdown(self)

    def _repr_markdown_(self) -> str:
        return self.markdown

    def _repr_html_(self) -> str:
        """The interactive page's body (answer boxes, steps to open; math for Jupyter's MathJax)."""
        return _display().html(self)

    @property
    def sections(self) -> tuple:
        """The worked solution's sections (`display.Section`), cut at its `## ` headings (the
        title block first)."""
        return _display().sections(self.markdown)

    def formula(self, quantity: str):
        """One quantity as a formula (`display.Formula`, shown by `_repr_latex_`).  A step of the
        worked solution (a definition, the loss, an error signal dL/dnet, a gradient, an updated
        parameter w@1) is its derivation as the handout writes it; any other quantity is its
        name, for dA/dB of scalars its formula in named quantities, and its value at these digits
        (= when exact, ≈ when rounded)."""
        return _display().formula(self, quantity, self._derivations)

    @cached_property
    def _derivations(self) -> dict:
        return _display().derivations(self)


class Problem(solve.Problem):
    """A `solve.Problem` whose solutions display themselves."""

    def solve(self, digits: int = 10, steps: int | None = None, lang: str | None = None) -> Solution:
        """The solution (see solve.Problem.solve); `lang` ("en" or "zh") is the language it
        displays in, by default the spec's."""
        if lang is not None and lang not in LANGS:
            raise DeriveError(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
        base = super().solve(digits, steps)          # validates steps
        return Solution(self, base.digits, base.steps, lang)


def load(path_or_id: str) -> Problem:
    """A `Problem` from a spec file path or a built-in id (see `derive list`)."""
    return solve.load(path_or_id, cls=Problem)


def check_claims(path: str, digits: int = 10, lang: str = "en"):
    """Judge a claims file (as `derive check` does) and return its report (`display.Report`,
    shown as a table)."""
    return _display().check_claims(path, digits, lang)

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

`Solution._repr_markdown_` is the handout's Markdown with Jupyter's math delimiters (`$…$`,
`$$…$$`; escape.JUPYTER_MATH_FILTERS), `_repr_html_` the interactive page's body (htmlpage, math
for Jupyter's MathJax, ids unique in the notebook), `Solution.sections` the Markdown cut at its `##`
headings, `Formula._repr_latex_` a single formula — the handout's own derivation of a step, else the
quantity's formula and value —, and `Report` the check report as a table (Markdown and HTML).  The
numbers are the solution's own (its `digits`); nothing is computed here that a stage does not give.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

from . import expr as ex
from . import htmlpage as hp
from . import printer as pr
from . import solve
from .check import check_file
from .errors import DeriveError
from .escape import JUPYTER_MATH_FILTERS, html_text, md_code, md_text
from .layout import relation
from .render import build_context, render_text
from .report import summary_line, text_report, to_json
from .spec import LANGS
from .verdicts import VERDICT_NAMES, diagnosis_name

__all__ = ["Formula", "Problem", "Report", "Section", "Solution", "check_claims", "load"]

_DISPLAYS = itertools.count(1)      # each HTML display's ids are prefixed nbN- (unique in a notebook)


@dataclass(frozen=True)
class Section:
    """One `##` section of a worked solution: its heading and its Markdown (heading included)."""
    title: str
    markdown: str

    def _repr_markdown_(self) -> str:
        return self.markdown


@dataclass(frozen=True)
class Formula:
    """A single formula as LaTeX math (without delimiters)."""
    latex: str

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex}$"

    def __str__(self) -> str:
        return self.latex


class Solution(solve.Solution):
    """A `solve.Solution` that displays as its worked solution, in `lang` (default: the spec's)."""

    def __init__(self, problem, digits: int, steps: int, lang: str | None = None):
        super().__init__(problem, digits, steps)
        self.lang = lang or problem.spec.lang

    @cached_property
    def markdown(self) -> str:
        """The worked solution in Jupyter's Markdown, in `lang`, at these digits."""
        return render_text(self.problem, fmt="md", lang=self.lang, digits=self.digits,
                           solution=self, math_filters=JUPYTER_MATH_FILTERS)

    def _repr_markdown_(self) -> str:
        return self.markdown

    def _repr_html_(self) -> str:
        """The interactive page's body with its stylesheet and script; math as \\( \\) and \\[ \\]
        for Jupyter's MathJax (no KaTeX in a notebook)."""
        env = hp.environment("mathjax")
        css, js = (env.loader.get_source(env, name)[0] for name in ("page.css", "page.js"))
        body = hp.solution_body(self.problem, lang=self.lang, digits=self.digits, math="mathjax", heading=2,
                                prefix=f"nb{next(_DISPLAYS)}-", solution=self)
        return f"<style>{css}</style>\n{body}<script>{js}</script>\n"

    @property
    def sections(self) -> tuple:
        """The worked solution's sections, cut at its `## ` headings (the title block first)."""
        parts, current = [], []
        for line in self.markdown.split("\n"):
            if line.startswith("## ") and current:
                parts.append(current)
                current = []
            current.append(line)
        parts.append(current)
        return tuple(Section(_heading(p), "\n".join(p).strip("\n") + "\n") for p in parts)

    def formula(self, quantity: str) -> Formula:
        """One quantity as a formula.  A step of the worked solution (a definition, the loss, an
        error signal dL/dnet, a gradient, an updated parameter w@1) is its derivation as the
        handout writes it; any other quantity is its name, for dA/dB of scalars its formula in
        named quantities, and its value at these digits (= when exact, ≈ when rounded)."""
        step = self._derivations.get(quantity)
        if step is not None:
            return Formula(step.flat or "\\begin{aligned}" + " \\\\ ".join(step.lines) + "\\end{aligned}")
        answer, = self.problem.eval(quantity, digits=self.digits)
        graph = self.problem.graph
        names = pr.display_names(self.spec, graph)
        tree = ex.parse_quantity(quantity, lambda n: n in graph.quantities)
        tex = pr.ClaimPrinter({"names": names}).doprint(tree)
        if answer.formula is not None:
            tex += " = " + pr.latex(answer.formula, names)
        if answer.value is not None:
            tex += f" {relation(answer.values)} {pr.shaped_latex(answer.value)}"
        return Formula(tex)

    @cached_property
    def _derivations(self) -> dict:
        """quantity -> the handout's equation (layout.Eq) deriving it, from the render context."""
        if self.problem.is_symbolic:
            return {}
        ctx = build_context(self.problem, self, lang=self.lang)
        loss = self.spec.loss
        eqs = {st.name: st.eq for st in ctx["forward"]}
        eqs[loss] = ctx["loss_step"].eq
        for layer in ctx["layers"]:
            eqs.update({f"d{loss}/d{d.name}": d.eq for d in layer.deltas})
            eqs.update({f"d{loss}/d{g.name}": g.eq for g in layer.grads})
        eqs.update({f"{u.name}@1": u.eq for u in ctx["updates"]})
        if ctx["after"]:
            eqs.update({f"{st.name}@1": st.eq for st in ctx["after"].steps})
            eqs[f"{loss}@1"] = ctx["after"].loss.eq
        return eqs

def _heading(lines: list) -> str:
    first = next((ln for ln in lines if ln.startswith("#")), "")
    return first.lstrip("#").strip()


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


@dataclass(frozen=True)
class Report:
    """A claims file judged by `derive check`: each claim's verdict, the true value and why."""
    claims_file: object
    results: tuple
    digits: int
    lang: str = "en"

    @property
    def summary(self) -> str:
        return summary_line(list(self.results), self.lang)

    def to_json(self) -> dict:
        return to_json(self.claims_file, list(self.results), self.digits)

    def __str__(self) -> str:
        return text_report(self.claims_file, list(self.results), self.digits, self.lang)

    def _repr_markdown_(self) -> str:
        heads = {"en": ("#", "claim", "claimed", f"true ({self.digits} digits)", "verdict", "diagnosis"),
                 "zh": ("#", "原文断言", "原文", f"真值（{self.digits} 位）", "判定", "诊断")}[self.lang]
        names = VERDICT_NAMES[self.lang]
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for r in self.results:
            cells = [str(r.claim.index), md_code(r.claim.of), md_code(_plain(r.claimed)),
                     md_code(_plain(r.true_digits)), names[r.verdict],
                     md_text(diagnosis_name(r.diagnosis, self.lang)) if r.diagnosis else ""]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\n" + md_text(self.summary) + "\n"

    def _repr_html_(self) -> str:
        heads = {"en": ("#", "claim", "claimed", f"true ({self.digits} digits)", "verdict", "diagnosis", "why"),
                 "zh": ("#", "原文断言", "原文", f"真值（{self.digits} 位）", "判定", "诊断", "说明")}[self.lang]
        names = VERDICT_NAMES[self.lang]
        rows = [(str(r.claim.index), r.claim.of, _plain(r.claimed), _plain(r.true_digits), names[r.verdict],
                 diagnosis_name(r.diagnosis, self.lang), r.message) for r in self.results]
        head = "".join(f"<th>{html_text(c)}</th>" for c in heads)
        body = "".join("<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in row) + "</tr>" for row in rows)
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>{html_text(self.summary)}</p>")


def _plain(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, list):
        return "[" + ", ".join(_plain(v) for v in x) + "]"
    return str(x)


def check_claims(path: str, digits: int = 10, lang: str = "en") -> Report:
    """Judge a claims file (as `derive check` does) and return its report."""
    cf, results = check_file(path, digits, lang)
    return Report(cf, tuple(results), digits, lang)

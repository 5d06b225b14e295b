"""What the API's objects show in a Jupyter notebook (derive.api calls it on first display, so
that `derive.load` does not import the renderers): a solution's worked solution as Jupyter Markdown
(the handout's, with `$…$`/`$$…$$` math: escape.JUPYTER_MATH_FILTERS) or as the interactive page's
body (htmlpage, math for Jupyter's MathJax, ids unique in the notebook), its sections, one formula
— the handout's own derivation of a step, else the quantity's formula and value —, and a check
report as a table (Markdown and HTML).  Nothing is computed here that a stage does not give.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

from . import expr as ex
from . import htmlpage as hp
from . import printer as pr
from .check import check_file
from .escape import JUPYTER_MATH_FILTERS, html_text, md_code, md_text
from .layout import relation
from .render import build_context, render_text
from .report import plain, summary_line, text_report, to_json
from .verdicts import VERDICT_NAMES, diagnosis_name

__all__ = ["Formula", "Report", "Section", "check_claims", "derivations", "formula", "html", "markdown",
           "sections"]

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


def markdown(sol) -> str:
    """The worked solution in Jupyter's Markdown, in the solution's language and digits."""
    return render_text(sol.problem, fmt="md", lang=sol.lang, digits=sol.digits, solution=sol,
                       math_filters=JUPYTER_MATH_FILTERS)


def html(sol) -> str:
    """The interactive page's body with its stylesheet and script; math as \\( \\) and \\[ \\]
    for Jupyter's MathJax (no KaTeX in a notebook)."""
    env = hp.environment("mathjax")
    css, js = (env.loader.get_source(env, name)[0] for name in ("page.css", "page.js"))
    body = hp.solution_body(sol.problem, lang=sol.lang, digits=sol.digits, math="mathjax", heading=2,
                            prefix=f"nb{next(_DISPLAYS)}-", solution=sol)
    return f"<style>{css}</style>\n{body}<script>{js}</script>\n"


def sections(text: str) -> tuple:
    """Markdown cut at its `## ` headings (the title block first), as Sections."""
    parts, current = [], []
    for line in text.split("\n"):
        if line.startswith("## ") and current:
            parts.append(current)
            current = []
        current.append(line)
    parts.append(current)
    return tuple(Section(_heading(p), "\n".join(p).strip("\n") + "\n") for p in parts)


def _heading(lines: list) -> str:
    first = next((ln for ln in lines if ln.startswith("#")), "")
    return first.lstrip("#").strip()


def formula(sol, quantity: str, derived: dict) -> Formula:
    """One quantity as a formula: its derivation in `derived` (a step of the worked solution),
    else its name, for dA/dB of scalars its formula in named quantities, and its value at the
    solution's digits (= when exact, ≈ when rounded)."""
    step = derived.get(quantity)
    if step is not None:
        return Formula(step.flat or "\\begin{aligned}" + " \\\\ ".join(step.lines) + "\\end{aligned}")
    answer, = sol.problem.eval(quantity, digits=sol.digits)
    graph = sol.problem.graph
    names = pr.display_names(sol.spec, graph)
    tree = ex.parse_quantity(quantity, lambda n: n in graph.quantities)
    tex = pr.ClaimPrinter({"names": names}).doprint(tree)
    if answer.formula is not None:
        tex += " = " + pr.latex(answer.formula, names)
    if answer.value is not None:
        tex += f" {relation(answer.values)} {pr.shaped_latex(answer.value)}"
    return Formula(tex)


def derivations(sol) -> dict:
    """quantity -> the handout's equation (layout.Eq) deriving it, from the render context."""
    if sol.problem.is_symbolic:
        return {}
    ctx = build_context(sol.problem, sol, lang=sol.lang)
    loss = sol.spec.loss
    steps = [("forward", st.name, st.eq) for st in ctx["forward"]] + [("loss", loss, ctx["loss_step"].eq)]
    for layer in ctx["layers"]:
        steps += [("delta", d.name, d.eq) for d in layer.deltas] + [("gradient", g.name, g.eq) for g in layer.grads]
    steps += [("update", u.name, u.eq) for u in ctx["updates"]]
    if ctx["after"]:
        steps += [("after", st.name, st.eq) for st in ctx["after"].steps] + [("after", loss, ctx["after"].loss.eq)]
    return {hp.step_quantity(kind, name, loss): eq for kind, name, eq in steps}


@dataclass(frozen=True)
class Report:
    """A claims file judged by `derive check`: each claim's verdict, the true value and why."""
    claims_file: object
    results: tuple
    digits: int
    lang: str = "en"

    @property
    def summary(self) -> str:
        return summary_line(list(self.results), self.lang, self.claims_file.demonstration)

    def to_json(self) -> dict:
        return to_json(self.claims_file, list(self.results), self.digits)

    def __str__(self) -> str:
        return text_report(self.claims_file, list(self.results), self.digits, self.lang)

    def _heads(self) -> tuple:
        """The table's column heads; the last (the reason) only in the HTML table."""
        return {"en": ("#", "claim", "claimed", f"true ({self.digits} digits)", "verdict", "diagnosis", "why"),
                "zh": ("#", "原文断言", "原文", f"真值（{self.digits} 位）", "判定", "诊断", "说明")}[self.lang]

    def _repr_markdown_(self) -> str:
        heads = self._heads()[:-1]
        names = VERDICT_NAMES[self.lang]
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for r in self.results:
            cells = [str(r.claim.index), md_code(r.claim.of), md_code(plain(r.claimed)),
                     md_code(plain(r.true_digits)), names[r.verdict],
                     md_text(diagnosis_name(r.diagnosis, self.lang)) if r.diagnosis else ""]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n\n" + md_text(self.summary) + "\n"

    def _repr_html_(self) -> str:
        heads = self._heads()
        names = VERDICT_NAMES[self.lang]
        rows = [(str(r.claim.index), r.claim.of, plain(r.claimed), plain(r.true_digits), names[r.verdict],
                 diagnosis_name(r.diagnosis, self.lang), r.message) for r in self.results]
        head = "".join(f"<th>{html_text(c)}</th>" for c in heads)
        body = "".join("<tr>" + "".join(f"<td>{html_text(c)}</td>" for c in row) + "</tr>" for row in rows)
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>{html_text(self.summary)}</p>")


def check_claims(path: str, digits: int = 10, lang: str = "en") -> Report:
    """Judge a claims file (as `derive check` does) and return its report."""
    cf, results = check_file(path, digits, lang)
    return Report(cf, tuple(results), digits, lang)

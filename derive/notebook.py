"""Jupyter display of derive's objects: a `Solution` (`derive.load(...).solve()`) shows its worked
solution — `_repr_markdown_` in Markdown with $…$ and $$…$$ math, `_repr_html_` as the body of the
interactive page (answer boxes judged in the notebook, math for Jupyter's MathJax) —, its
`sections` one by one, and `formula(quantity)` one derivation (`_repr_latex_`); a check
(`derive.check_claims(path)`) shows its table.

The views are registered in `solve.VIEWS` when this module is imported (derive/__init__.py does so
with the API), because the renderers they use import `derive.solve` themselves.  The language is
the spec's, or `solution.lang` when set (`sol.lang = "en"`).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from . import htmlpage as hp
from . import render as rd
from . import solve
from .check import check_file
from .errors import DeriveError
from .escape import md_text
from .report import summary_line, text_report
from .verdicts import VERDICT_NAMES, diagnosis_name

_IDS = itertools.count(1)


def jupyter_markdown(md: str) -> str:
    """GitHub's math forms as Jupyter reads them: $`x`$ → $x$, a ```math block → $$ … $$."""
    text = re.sub(r"```math\n(.*?)\n```", lambda m: "$$\n" + m.group(1) + "\n$$", md, flags=re.S)
    return re.sub(r"\$`([^`\n]*)`\$", lambda m: "$" + m.group(1) + "$", text)


def _lang(sol) -> str:
    return getattr(sol, "lang", None) or sol.spec.lang


def markdown(sol) -> str:
    return jupyter_markdown(rd.render_text(sol.problem, fmt="md", lang=_lang(sol), digits=sol.digits, solution=sol))


def html(sol) -> str:
    """The interactive page's body with its stylesheet and script (no KaTeX: Jupyter typesets
    \\( \\) and \\[ \\] itself); ids unique in the notebook."""
    env = hp.environment("mathjax")
    css = env.loader.get_source(env, "page.css")[0]
    js = env.loader.get_source(env, "page.js")[0]
    body = hp.solution_body(sol.problem, lang=_lang(sol), digits=sol.digits, math="mathjax", heading=2,
                            prefix=f"nb{next(_IDS)}-", solution=sol)
    return f"<style>{css}</style>\n{body}<script>{js}</script>\n"


@dataclass(frozen=True)
class Part:
    """One section of a worked solution, shown as Markdown."""
    title: str
    text: str

    def _repr_markdown_(self) -> str:
        return self.text


def sections(sol) -> tuple:
    parts = re.split(r"(?m)^(?=## )", markdown(sol))
    out = []
    for p in parts[1:]:
        title = p.splitlines()[0][3:].strip()
        out.append(Part(title, p.strip() + "\n"))
    return tuple(out)


@dataclass(frozen=True)
class Formula:
    """One derivation (a displayed formula) of a worked solution."""
    quantity: str
    tex: str

    def _repr_latex_(self) -> str:
        return f"$$ {self.tex} $$"

    def __str__(self) -> str:
        return self.tex


def formula(sol, quantity: str) -> Formula:
    ctx = rd.build_context(sol.problem, sol, lang=_lang(sol))
    loss = sol.spec.loss
    eqs = {st.name: st.eq for st in ctx["forward"]}
    eqs[loss] = ctx["loss_step"].eq
    for layer in ctx["layers"]:
        eqs.update({f"d{loss}/d{d.name}": d.eq for d in layer.deltas})
        eqs.update({f"d{loss}/d{g.name}": g.eq for g in layer.grads})
    for sec in ctx["sections"]:
        eqs.setdefault(f"d{loss}/d{sec.name}", sec.main.product or sec.main.rule)
    eqs.update({f"{u.name}@1": u.eq for u in ctx["updates"]})
    if ctx["after"]:
        eqs.update({f"{st.name}@1": st.eq for st in ctx["after"].steps})
        eqs[f"{loss}@1"] = ctx["after"].loss.eq
    eq = eqs.get(quantity)
    if eq is None:
        raise DeriveError(f"{quantity!r} is not a step of this worked solution (steps: {', '.join(eqs)})")
    tex = eq.flat or "\\begin{aligned}" + " \\\\ ".join(eq.lines) + "\\end{aligned}"
    return Formula(quantity, tex)


solve.VIEWS.update(markdown=markdown, html=html, sections=sections, formula=formula)


# ---------------------------------------------------------------- a check
class Report:
    """The verdicts of a claims file (`check_claims`): Jupyter shows a table."""

    def __init__(self, cf, results: list, digits: int, lang: str):
        self.file, self.results, self.digits, self.lang = cf, results, digits, lang

    def rows(self) -> list:
        names = VERDICT_NAMES[self.lang]
        return [(str(r.claim.index), r.claim.of, _cell(r.claimed), _cell(r.true), names[r.verdict],
                 diagnosis_name(r.diagnosis, self.lang), r.message) for r in self.results]

    def heads(self) -> tuple:
        return {"en": ("#", "claim", "claimed", "true", "verdict", "diagnosis", "message"),
                "zh": ("#", "原文断言", "原文", "真值", "判定", "诊断", "说明")}[self.lang]

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.heads()) + " |", "|" + "---|" * len(self.heads())]
        for row in self.rows():
            lines.append("| " + " | ".join(md_text(c).replace("|", "\\|") for c in row) + " |")
        return "\n".join(lines) + "\n\n" + md_text(summary_line(self.results, self.lang)) + "\n"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{hp.h(c)}</th>" for c in self.heads())
        body = "".join("<tr>" + "".join(f"<td>{hp.h(c)}</td>" for c in row) + "</tr>" for row in self.rows())
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>{hp.h(summary_line(self.results, self.lang))}</p>")

    def __repr__(self) -> str:
        return text_report(self.file, self.results, self.digits, self.lang)


def _cell(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, list):
        return "[" + ", ".join(_cell(v) for v in x) + "]"
    return str(x)


def check_claims(path, digits: int = 10, lang: str = "en") -> Report:
    """`derive check` of a claims file (a path or a built-in id) as a Report."""
    cf, results = check_file(path, digits, lang)
    return Report(cf, results, digits, lang)


__all__ = ["Formula", "Part", "Report", "check_claims", "formula", "html", "jupyter_markdown", "markdown",
           "sections"]

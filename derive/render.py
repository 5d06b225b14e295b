"""Stage 5 — render: worked solutions as Markdown, LaTeX and PDF, in English and Chinese.

Takes a `Problem` and its `Solution`; builds ONE context of frozen dataclasses and strings (every
number in it is the engine's, correctly rounded; every formula comes from `derive.printer`) and
renders it with the Jinja2 templates of `templates/` (Markdown: `solution.md.j2`; LaTeX:
`solution.tex.j2`, with `\\BLOCK{…}`/`\\VAR{…}`/`\\#{…}` delimiters).  Prose lives in the template
directory (`strings.en.toml`, `strings.zh.toml`), never here.  `--template-dir` puts a directory
in front of the built-in one, so any template can be replaced by file name.

The worked solution: the network (TikZ / Mermaid), the given numbers (with η and the functions
used, defined), the forward pass (formula → numbers → value, one aligned display), the loss, the
backward pass layer by layer (each weighted sum's error signal δ = ∂L/∂net once — ∂-chain, formulas,
numbers, value — then each updated parameter in one line ∂L/∂p = δ·∂net/∂p; matrix specs the same
in matrix form, δ = ∂L/∂Z as a matrix and ∂L/∂W = δ·Aᵀ), the update rule once and each parameter's numbers, the forward pass again with
the new loss, and teaching remarks where the numbers call for them (`derive.remarks`).  Parameters
the problem keeps fixed get one sentence, not a derivation.  Symbolic specs get formulas only;
`--mode exercise` and `--mode key` are `derive.exercise_context`'s (sheets and keys of their own).

This module is the driver: the template environment and strings, `build_context` and
`render_text`.  The parts are modules named for what they do, passing frozen dataclasses
(`derive.handout`: the context types and the `Setting` of a problem): `render_context` (given
numbers, forward pass, update, the pass after it, tasks), `sections` (the backward pass:
chain rules, factors, adjoint blocks, matrix-form rules), `diagram` (the network) and `layout`
(equations broken into lines).

The CLI (`cli.cmd_render`) writes what `render_text` gives; `derive build` is `derive.build`.  Templates are
sandboxed (`derive.templating`), prose is escaped (`derive.escape`), PDFs come from `derive.tex`, and
files are written by `derive.files.write_output`.
"""
from __future__ import annotations

import re

from . import expr as ex
from . import printer as pr
from . import templating as tpl
from .diagram import build_diagram
from .errors import DeriveError
from .escape import CJK
from .exercise_context import render_exercise
from .handout import setting
from .large import LargeBuilder, is_large
from .layout import group
from .render_context import after, forward, free_symbol, given, history, step, update_rule, updates
from .remarks import remarks
from .rounding import DISPLAY_DIGITS
from .sections import Backward
from .spec import LANGS
from .titles import document_title, typeset_parts
from .training_context import training_context

FORMATS = ("md", "tex")
__all__ = ["FORMATS", "LANGS", "Builder", "build_context", "environment", "render_text", "strings"]


# ---------------------------------------------------------------- building the context
class Builder:
    """The context of one worked solution: `Builder(...).context()` (`evals` holds what the engine
    was asked besides the Solution's numbers)."""

    def __init__(self, problem, solution, *, lang: str, only: list | None, mode: str):
        self.setting = setting(problem, solution, lang=lang, only=only, mode=mode)

    @property
    def _evals(self) -> dict:
        return self.setting.evals

    def context(self) -> dict:
        s = self.setting
        spec = s.spec
        g = s.g
        title = document_title(spec, s.lang) or generic_title(spec, s.lang)
        ctx = {
            "id": spec.id,
            "title": title,
            "source": spec.source_in(s.lang),
            "title_parts": typeset_parts(title, spec, s.names),
            "source_parts": typeset_parts(spec.source_in(s.lang), spec, s.names),
            "lang": s.lang,
            "mode": s.mode,
            "exercise": s.exercise,
            "symbolic": s.symbolic,
            "matrix": s.matrix_mode,
            "digits": s.digits,
            "loss": s.L,
            "loss_name": s.loss,
            "only": tuple(s.names[n] for n in s.selected) if len(s.selected) < len(g.parameters)
            else (),
            "large": None,
            "diagram": build_diagram(g.quantities, g.parameters, g.loss, s.names),
            "given": given(s),
            "eta": "\\eta" if spec.learning_rate is None else pr.fraction(spec.learning_rate),
            "has_cjk": _has_cjk(title) or _has_cjk(spec.source_in(s.lang)),
            "remarks": remarks(s),
        }
        ctx.update(
            forward=forward(s, 0),
            loss_step=step(s, s.loss, 0),
            sections=(),
            layers=Backward(s).layers(),
            fixed=tuple(s.names[n] for n in g.parameters if n in s.selected and n not in s.derived),
            updates=updates(s) if spec.steps >= 1 else (),
            update_rule=update_rule(s),
            update_symbol=free_symbol(s.names),
            after=after(s),
            history=history(s),
        )
        # the backward pass's intro explains ⊙ only where a rule of the page uses it (matrix-linear has none)
        ctx["odot_used"] = "\\odot" in repr(ctx["layers"])
        return ctx


def claimed_formula(problem, text: str) -> str:
    """What an erratum is about, typeset with the problem's names ('w6*out_h2' → w_6 · out_h2),
    or '' when it is not an expression of the problem's quantities."""
    g = getattr(problem, "graph", None)
    if g is None:
        return ""
    try:
        tree = ex.parse_quantity(text, lambda n: n in g.quantities)
        names = pr.display_names(problem.spec, g)
        if isinstance(tree, (ex.Index, ex.Deriv, ex.AtStep)):   # ∂L/∂z_2, W_11^(1), p_2, ∂E/∂w_5
            return pr.ClaimPrinter({"names": names, "inline": True}).doprint(tree)
        return pr.TreePrinter(names, lambda n: g.quantities[n].shape).tex(tree)
    except (DeriveError, KeyError, ValueError, TypeError):
        return ""


def _with_stated(of_tex: str, stated: str) -> str:
    if not of_tex or not stated:
        return of_tex
    return f"{of_tex} = {pr.number(stated)}"


def remark_args(remark, math, sep: str = ", ") -> dict:
    """A remark's arguments as inline math, through the template's own math macro; a tuple (a
    merged remark's one entry per quantity) as a list of inline maths joined by `sep`."""
    return {key: sep.join(str(math(v)) for v in value) if isinstance(value, tuple) else str(math(value))
            for key, value in remark.args}


def _has_cjk(text: str) -> bool:
    return bool(CJK.search(text or ""))


# ---------------------------------------------------------------- templates
environment = tpl.handout_environment


def strings(env, fmt: str, lang: str):
    """s(key, **values) for the handout prose of `lang` (strings.<lang>.toml) in format `fmt`."""
    return tpl.string_function(tpl.load_strings(env, f"strings.{lang}.toml"), fmt, lang)


def generic_title(spec, lang: str) -> str:
    """The title of a worked solution whose spec has no title in `lang` (strings: title_generic)."""
    return strings(environment("md"), "md", lang)("title_generic", id=spec.id)


def build_context(problem, solution, *, lang: str, only=None, mode: str = "solution") -> dict:
    """The context of the templates; a large network (`large.is_large`) gets the matrix form and a
    selection of entries (`large.LargeBuilder`), without the per-scalar graph."""
    builder = LargeBuilder if is_large(problem) else Builder
    ctx = builder(problem, solution, lang=lang, only=only, mode=mode).context()
    ctx.setdefault("layers", ())
    if "title_parts" not in ctx:     # a large network: names from the spec's [latex] only
        names = dict(getattr(problem.spec, "latex", None) or {})
        ctx["title"] = document_title(problem.spec, lang) or generic_title(problem.spec, lang)
        ctx["title_parts"] = typeset_parts(ctx["title"], problem.spec, names)
        ctx["source_parts"] = typeset_parts(problem.spec.source_in(lang), problem.spec, names)
    if isinstance(ctx.get("given"), dict):
        ctx["given"].setdefault("functions", ())
        ctx["given"].setdefault("function_eq", None)
    ctx.setdefault("fixed", ())
    ctx.setdefault("update_rule", "")
    ctx.setdefault("update_symbol", free_symbol(ctx.get("names") or {}))
    # a derivation in one aligned display; a large network's matrices stay in displays of their own
    together = (lambda eqs: tuple(eqs)) if builder is LargeBuilder else (lambda eqs: tuple(group(eqs)))
    ctx["forward_eqs"] = together(st.eq for st in ctx["forward"])
    ctx["update_eqs"] = together(u.eq for u in ctx["updates"])
    after = ctx["after"]
    ctx["after_eqs"] = together([st.eq for st in after.steps] + [after.loss.eq]) if after else ()
    return ctx


def render_text(problem, *, fmt: str, lang: str | None = None, digits: int = DISPLAY_DIGITS, only=None,
                mode: str = "solution", template_dir: str | None = None, solution=None,
                errata: dict | None = None, math_filters: dict | None = None,
                contexts: dict | None = None) -> str:
    """The worked solution of a problem as Markdown or LaTeX text.

    `math_filters`: Markdown's math delimiters other than GitHub's (escape.JUPYTER_MATH_FILTERS).
    `errata` (from `derive build`): {"md": path, "tex": path, "steps": [ErrataStep]} — the source
    document's steps that are not correct, listed at the end with links to their corrections.
    `contexts` (from `derive build`): a dict kept by the caller for one problem and solution, in
    which the context of each language is built once and shared by its formats (the context
    does not depend on the format; the strings and the template do)."""
    lang = lang or problem.spec.lang
    if mode in ("exercise", "key"):    # an exercise sheet or its key: their own templates and context
        return render_exercise(problem, fmt=fmt, lang=lang, mode=mode, only=only, template_dir=template_dir)
    solution = solution or problem.solve(digits=digits)
    env = environment(fmt, template_dir, math_filters)
    key = (lang, mode, tuple(only or ()), id(solution))
    if contexts is not None and key in contexts:
        ctx = dict(contexts[key])
    else:
        ctx = build_context(problem, solution, lang=lang, only=only, mode=mode)
        if contexts is not None:
            contexts[key] = dict(ctx)
    ctx["errata"] = errata if mode == "solution" else None
    # a value claim with its stated number: claim 54 (∂ŷ/∂h₁) and claim 55 (∂ŷ/∂h₁ = 0.024), not the
    # same label twice (review 3: a teacher took the pairs for a duplication bug)
    listed = [(st, _with_stated(claimed_formula(problem, st.of), getattr(st, "stated", "")))
              for st in (errata or {}).get("steps", ())]
    ctx["errata_wrong"] = tuple(x for x in listed if x[0].verdict != "rounding")
    ctx["errata_rounding"] = tuple(x for x in listed if x[0].verdict == "rounding")
    ctx["training"] = training_context(problem.spec, lang, solution.digits) if mode == "solution" else None
    ctx["s"] = strings(env, fmt, lang)
    ctx.setdefault("remarks", ())
    ctx["remark_args"] = remark_args
    text = tpl.render(env, f"solution.{fmt}.j2", ctx)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


# ---------------------------------------------------------------- derive render
def _only(text: str | None) -> list | None:
    """--only's comma-separated names; a comma inside brackets belongs to an entry (W1[2,3])."""
    if text is None:
        return None
    names = [n.strip() for n in re.split(r",(?![^\[]*\])", text) if n.strip()]
    if not names:
        raise DeriveError("--only: expected comma-separated parameter names")
    return names

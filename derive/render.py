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
from .render_context import after, forward, given, history, step, update_rule, updates
from .remarks import remarks
from .rounding import DISPLAY_DIGITS
from .sections import Backward
from .spec import LANGS
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
        ctx = {
            "id": spec.id,
            "title": spec.title_in(s.lang),
            "source": spec.source_in(s.lang),
            "title_parts": typeset_parts(spec.title_in(s.lang), spec, s.names),
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
            "has_cjk": _has_cjk(spec.title_in(s.lang)) or _has_cjk(spec.source_in(s.lang)),
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
            after=after(s),
            history=history(s),
        )
        return ctx


TITLE_TOKEN = re.compile(r"->|(?<![A-Za-z0-9_])[A-Za-z][A-Za-z0-9_]*(?:\s*[·*]\s*[A-Za-z][A-Za-z0-9_]*)*")


def typeset_parts(text: str, spec, names: dict) -> tuple:
    """A title or source as (is_math, text) pieces: '->' becomes an arrow, and a run of the
    problem's names joined by '·' (X·W1·W2) is set as a formula with their display names.  Only
    names with a digit, an underscore or a capital letter are taken (so an English word is never
    mistaken for a quantity)."""
    if not text:
        return ()

    disp = {}
    for n, d in names.items():
        for key in (n, re.sub(r"\\mathrm|[_{}\\ ]", "", d)):
            if any(ch.isdigit() or ch == "_" or ch.isupper() for ch in key):
                disp.setdefault(key, d)

    def formal(n: str) -> bool:
        return n in disp

    out, pos = [], 0
    for m in TITLE_TOKEN.finditer(text):
        tok = m.group(0)
        if tok == "->":
            math = "\\rightarrow"
        else:
            words = re.split(r"\s*[·*]\s*", tok)
            if not all(formal(w) for w in words):
                if len(words) > 1 or not formal(words[0]):
                    continue
            math = " \\cdot ".join(disp[w] for w in words)
        if m.start() > pos:
            out.append((False, text[pos:m.start()]))
        out.append((True, math))
        pos = m.end()
    if pos < len(text):
        out.append((False, text[pos:]))
    return tuple(out)


def claimed_formula(problem, text: str) -> str:
    """What an erratum is about, typeset with the problem's names ('w6*out_h2' → w_6 · out_h2),
    or '' when it is not an expression of the problem's quantities."""
    g = getattr(problem, "graph", None)
    if g is None:
        return ""
    try:
        tree = ex.parse_quantity(text, lambda n: n in g.quantities)
        names = pr.display_names(problem.spec, g)
        if isinstance(tree, ex.Index):      # one entry: ∂L/∂z_2, W_11^(1), p_2
            base, index = tree.base, tree.index
            if isinstance(base, ex.Deriv):
                return pr.deriv(names[base.of], pr.indexed(names[base.wrt], index), inline=True)
            if isinstance(base, ex.AtStep):
                return pr.with_step(pr.indexed(names[base.name], index), base.step)
            if isinstance(base, ex.Name):
                return pr.indexed(names[base.id], index)
            return ""
        if isinstance(tree, ex.Deriv):
            return pr.deriv(names[tree.of], names[tree.wrt], inline=True)
        if isinstance(tree, ex.AtStep):
            return pr.with_step(names[tree.name], tree.step)
        return pr.TreePrinter(names, lambda n: g.quantities[n].shape).tex(tree)
    except (DeriveError, KeyError, ValueError, TypeError):
        return ""


def remark_args(remark, math) -> dict:
    """A remark's arguments as inline math, through the template's own math macro."""
    return {key: str(math(value)) for key, value in remark.args}


def _has_cjk(text: str) -> bool:
    return bool(CJK.search(text or ""))


# ---------------------------------------------------------------- templates
environment = tpl.handout_environment


def strings(env, fmt: str, lang: str):
    """s(key, **values) for the handout prose of `lang` (strings.<lang>.toml) in format `fmt`."""
    return tpl.string_function(tpl.load_strings(env, f"strings.{lang}.toml"), fmt, lang)


def build_context(problem, solution, *, lang: str, only=None, mode: str = "solution") -> dict:
    """The context of the templates; a large network (`large.is_large`) gets the matrix form and a
    selection of entries (`large.LargeBuilder`), without the per-scalar graph."""
    builder = LargeBuilder if is_large(problem) else Builder
    ctx = builder(problem, solution, lang=lang, only=only, mode=mode).context()
    ctx.setdefault("layers", ())
    if "title_parts" not in ctx:     # a large network: names from the spec's [latex] only
        names = dict(getattr(problem.spec, "latex", None) or {})
        for field in ("title", "source"):
            ctx[f"{field}_parts"] = typeset_parts(getattr(problem.spec, f"{field}_in")(lang), problem.spec, names)
    if isinstance(ctx.get("given"), dict):
        ctx["given"].setdefault("functions", ())
        ctx["given"].setdefault("function_eq", None)
    ctx.setdefault("fixed", ())
    ctx.setdefault("update_rule", "")
    # a derivation in one aligned display; a large network's matrices stay in displays of their own
    together = (lambda eqs: tuple(eqs)) if builder is LargeBuilder else (lambda eqs: tuple(group(eqs)))
    ctx["forward_eqs"] = together(st.eq for st in ctx["forward"])
    ctx["update_eqs"] = together(u.eq for u in ctx["updates"])
    after = ctx["after"]
    ctx["after_eqs"] = together([st.eq for st in after.steps] + [after.loss.eq]) if after else ()
    return ctx


def render_text(problem, *, fmt: str, lang: str | None = None, digits: int = DISPLAY_DIGITS, only=None,
                mode: str = "solution", template_dir: str | None = None, solution=None,
                errata: dict | None = None) -> str:
    """The worked solution of a problem as Markdown or LaTeX text.

    `errata` (from `derive build`): {"md": path, "tex": path, "steps": [ErrataStep]} — the source
    document's steps that are not correct, listed at the end with links to their corrections."""
    lang = lang or problem.spec.lang
    if mode in ("exercise", "key"):    # an exercise sheet or its key: their own templates and context
        return render_exercise(problem, fmt=fmt, lang=lang, mode=mode, only=only, template_dir=template_dir)
    solution = solution or problem.solve(digits=digits)
    env = environment(fmt, template_dir)
    ctx = build_context(problem, solution, lang=lang, only=only, mode=mode)
    ctx["errata"] = errata if mode == "solution" else None
    listed = [(st, claimed_formula(problem, st.of)) for st in (errata or {}).get("steps", ())]
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

"""The interactive worked solution: one self-contained HTML page (`derive render --format html`,
`derive exercise … --format html`), and the static HTML of a worked solution for Moodle's general
feedback (`solution_fragment`).

The page shows the worked solution of `derive render` — the same context (`render.build_context`:
every number the engine's, every formula the printer's) and the same order as the Markdown and
LaTeX handouts (templates/solution.html.j2 follows solution.md.j2) — with each step behind a
`<details>` and, before it, an answer box per value the step computes:
`<input data-quantity="NAME">`, NAME as `derive check` and `derive eval` read it (`net_h1`,
`dE_total/dnet_o1`, `dE_total/dw6`, `w6@1`, `E_total@1`, an entry `dE/dW2[1,2]`).  Enter (or the
Check button) judges the number in the page (templates/page.js) and sets `data-verdict` (correct,
rounding, truncated, wrong; `invalid` for text that is not a number) and, for a catalogued mistake,
`data-diagnosis` (its tag, as `derive check` writes it) on the box's `<div class="answer">`.

What the page judges with is embedded as JSON (`quantity_data`), from the checker's own
recomputations (`worlds.Recomputations`, the runs `moodle.blanks` reads for Moodle's wrong
answers): the true value; the value of every catalogued mistake, in the checker's order (the
engine run with the hypothesis' WhatIf, or its transform of the truth); and the values of the
hand calculations at 2 to 6 digits that round their intermediate values (the rounding worlds of
`judge_values.ValueJudge`).  Every value is exact (`value_text`).  page.js ports the rule of `verdicts.is_correct`, `is_last_unit`, `is_truncated` and
`reproduces` and the order of `ValueJudge._entry_verdict` exactly (tests/test_html.py compares it
with `derive check` on many numbers).  Not in the page: "carried forward" (it needs the student's
earlier numbers as a what-if run) and rounding at 7 or more digits (a number given to 7 or more
digits is still judged correct, one unit off, truncated or wrong as derive check would).

Math is KaTeX, vendored in derive/assets/katex (MIT; its script and stylesheet inline, the fonts
as data: URIs), typeset when the page opens; the fragment for Moodle writes \\( \\) and \\[ \\]
for its MathJax filter instead.  The network is `svgdiagram.network_svg`.  A symbolic spec gets
no answer boxes (formulas only), nor does a large network (over 30 parameter entries).
"""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from . import engine
from . import expr as ex
from . import printer as pr
from . import templating as tpl
from .errors import DeriveError
from .escape import html_text as h
from .large import is_large
from .messages import full_width
from .quantity import make_query
from .render import build_context, remark_args, typeset_parts
from .rounding import DISPLAY_DIGITS, exact_decimal
from .svgdiagram import network_svg
from .training_context import training_context, training_files
from .verdicts import DIAGNOSIS_NAMES, as_fraction, close_to
from .worlds import ROUNDING_SUBSETS, Recomputations

ROUND_DIGITS = tuple(range(2, 7))     # the digits of the embedded rounded hand calculations
EXACT_PLACES = 60                     # a decimal with at most this many digits is embedded exactly
ASSETS = Path(__file__).resolve().parent / "assets" / "katex"
MATH = ("katex", "mathjax")


@dataclass(frozen=True)
class Answer:
    id: str                           # the input's id in the page
    text: str                         # the quantity, as derive check reads it
    sym: str                          # its LaTeX, for the label


# ---------------------------------------------------------------- escaping and math
def _math_filters(math: str) -> dict:
    if math == "katex":
        return {"imath": lambda tex: f'<span class="tex">{h(tex)}</span>',
                "dmath": lambda tex: f'<div class="d"><div class="tex">{h(tex)}</div></div>'}
    return {"imath": lambda tex: f"\\({h(tex)}\\)",
            "dmath": lambda tex: f'<div class="d">\\[{h(tex)}\\]</div>'}


def environment(math: str = "katex", template_dir: str | None = None):
    """The sandboxed environment of the HTML templates (templates/*.html.j2), with the filters `h`
    (HTML escaping) and `imath`/`dmath` (math for KaTeX or for MathJax)."""
    return tpl.environment("html", tpl.template_paths(template_dir), {"h": h, **_math_filters(math)})


def strings(env, name: str, lang: str):
    """s(key, **values) of strings.<lang>.toml or page.<lang>.toml with the prose HTML-escaped and
    the values (math, escaped names) inserted as they are."""
    table = tpl.load_strings(env, f"{name}.{lang}.toml")
    escaped = {k: h(v) if isinstance(v, str) else v for k, v in table.items()}
    return tpl.string_function(escaped, "html", f"{name}.{lang}")


# ---------------------------------------------------------------- the values a page judges with
def value_text(x: Fraction) -> str:
    """A value for the page, exactly: a decimal when it has at most EXACT_PLACES digits (0.415),
    else a binary fraction as 0xMANTISSApEXPONENT (the 60-digit runs' numbers, m·2^e), else n/d.
    Exactly, because a verdict may turn on a tie (0.048 against a hand calculation's 0.0475 that
    is a hair below it at the checker's working precision)."""
    if x == 0:
        return "0"
    den = x.denominator
    short = (den & -den).bit_length() - 1 <= EXACT_PLACES      # else its decimal has more places
    d = exact_decimal(x) if short else None
    if d is not None and len(d.as_tuple().digits) <= EXACT_PLACES:
        text = format(d, "f") if -30 < d.adjusted() < 30 else str(d)
        mantissa, e, exp = text.partition("E")
        if "." in mantissa:             # the same value without its trailing zeros
            mantissa = mantissa.rstrip("0").rstrip(".")
        return mantissa + e + exp
    n = x.numerator
    sign = "-" if n < 0 else ""
    if den & (den - 1) == 0:
        return f"{sign}0x{abs(n):x}p-{den.bit_length() - 1}"
    return f"{n}/{den}"


def _same(a: Fraction, t: Fraction) -> bool:
    """verdicts.close_to (equal at the working precision), with floats ruling out most pairs first."""
    fa, ft = float(a), float(t)
    if abs(fa - ft) > 1e-9 * max(abs(fa), abs(ft)):
        return False
    return close_to(a, t)


def rounded_alternatives(rc: Recomputations, query, n: int) -> list:
    """The query's value in each hand calculation at n digits that rounds some of its intermediate
    values (the rounding worlds `judge_values.ValueJudge._rounding_alt` tries), those that run."""
    out = []
    for subset in ROUNDING_SUBSETS:
        try:
            w = rc.world(("round", n, subset), None, engine.WhatIf(round_digits=n, rounding=subset))
            out.append([as_fraction(x) for x in w.eval(query)])
        except (DeriveError, ZeroDivisionError, ValueError):
            continue
    return out


def quantity_data(rc: Recomputations, text: str, lang: str) -> list:
    """[{"t": truth, "r": {digits: [rounded hand calculations]}, "m": [[tag, value, description]]}]
    per entry of a quantity (one for a scalar or an entry), in row-major order, every value as
    `value_text`; a mistake or a rounded calculation that gives the truth is left out (it can never
    decide a verdict).  A matrix is asked once for all its entries (as a claim of the whole matrix
    is): each entry's values are those of the entry's own query."""
    q = make_query(text, rc.graph)
    truth, _numbers = rc.truth(q)
    n_entries = len(truth)
    mistakes: list = [[] for _ in truth]
    seen: list = [set() for _ in truth]
    for hyp in rc.hypotheses:
        alt = rc.hyp_alt(hyp, q, truth=truth)
        if alt is None or len(alt) != n_entries:
            continue
        for i, (a, t) in enumerate(zip(alt, truth)):
            if a is None or _same(a, t):
                continue
            v = value_text(a)
            if (hyp.kind, v) not in seen[i]:
                seen[i].add((hyp.kind, v))
                mistakes[i].append([hyp.kind, v, hyp.text[0] if lang == "en" else full_width(hyp.text[1])])
    rounded: list = [{} for _ in truth]
    for n in ROUND_DIGITS:
        for alt in rounded_alternatives(rc, q, n):
            if len(alt) != n_entries:
                continue
            for i, (a, t) in enumerate(zip(alt, truth)):
                if a is not None and not _same(a, t):
                    vals = rounded[i].setdefault(str(n), [])
                    v = value_text(a)
                    if v not in vals:
                        vals.append(v)
    return [{"t": value_text(t), "r": r, "m": m} for t, r, m in zip(truth, rounded, mistakes)]


def step_quantity(kind: str, name: str, loss: str) -> str:
    """The quantity a step of the worked solution derives, as derive check reads it: the value of
    a forward quantity or the loss, dL/dname of an error signal or a gradient, name@1 after the
    update (an updated parameter, or a quantity of the forward pass again)."""
    return {"forward": name, "loss": name, "delta": f"d{loss}/d{name}", "gradient": f"d{loss}/d{name}",
            "update": f"{name}@1", "after": f"{name}@1"}[kind]


def entry_text(text: str, index: tuple, shape: tuple) -> str:
    """An entry of a quantity as derive check reads it (1-based, expr.index_text): x[2], W[1,2],
    dE/dW[1,2], W[1,2]@1."""
    if not index:
        return text
    base, at, step = text.partition("@")
    return f"{base}[{ex.index_text(shape, index[0] * shape[1] + index[1])}]{at}{step}"


class Asker:
    """The answer boxes of a page: ask(kind, name, of) gives the Answers of one step (each value
    once in a page), and collects the JSON the page judges them with."""

    def __init__(self, problem, digits: int, lang: str, prefix: str, enabled: bool):
        self.p = problem
        self.lang = lang
        self.prefix = prefix
        self.enabled = enabled and not problem.is_symbolic and not is_large(problem)
        self.rc = Recomputations(problem, digits) if self.enabled else None
        self.names = pr.display_names(problem.spec, problem.graph) if self.enabled else {}
        self.asked: dict = {}

    def __call__(self, kind: str, name: str, of: str = "") -> tuple:
        if not self.enabled:
            return ()
        g = self.p.graph
        loss = self.p.spec.loss
        L = self.names[loss]
        text = step_quantity(kind, name, loss)
        q = g.quantities[name]
        entries = [e.index for e in q.entries] if q.shape else [None]
        shown = [ix for ix in entries if ix is not None and pr.with_index(self.names[name], ix, q.shape) == of]
        out = []
        data = None
        for ix in shown or entries:
            et = entry_text(text, ix, q.shape)
            if et in self.asked:
                continue
            if data is None:
                data = quantity_data(self.rc, text, self.lang)       # the whole quantity, once
            flat = 0 if ix is None else ix[0] * q.shape[1] + ix[1]
            disp = pr.with_index(self.names[name], ix, q.shape) if ix else self.names[name]
            sym = {"forward": disp, "loss": L, "delta": pr.deriv(L, disp, inline=True),
                   "gradient": pr.deriv(L, disp, inline=True), "update": pr.with_step(disp, 1),
                   "after": pr.with_step(disp, 1)}[kind]
            self.asked[et] = data[flat]
            out.append(Answer(f"{self.prefix}a{len(self.asked)}", et, sym))
        return tuple(out)

    def json(self, msg: dict) -> str:
        """The page's data: messages and every asked quantity, as JSON safe inside <script>."""
        if not self.asked:
            return ""
        texts: list = []                # each mistake's description once: "m" holds its index
        quantities = {}
        for key, data in self.asked.items():
            ms = []
            for tag, v, desc in data["m"]:
                if desc not in texts:
                    texts.append(desc)
                ms.append([tag, v, texts.index(desc)])
            quantities[key] = dict(data, m=ms)
        text = json.dumps({"lang": self.lang, "msg": msg, "names": DIAGNOSIS_NAMES[self.lang], "texts": texts,
                           "q": quantities}, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---------------------------------------------------------------- one worked solution
MESSAGES = ("empty", "invalid", "correct", "rounding", "rounding_unit", "truncated", "wrong_mistake",
            "wrong_unknown", "show_all", "hide_all")


def solution_body(problem, *, lang: str | None = None, digits: int = DISPLAY_DIGITS, only=None,
                  interactive: bool = True, math: str = "katex", prefix: str = "", heading: int = 1,
                  title: str | None = None, diagram: bool = True, template_dir: str | None = None,
                  solution=None, contexts: dict | None = None) -> str:
    """One worked solution as an HTML <section class="derive-solution">: interactive (answer boxes,
    steps in <details>, its data as JSON) or static (everything shown); math for KaTeX or MathJax.
    `title` (HTML) replaces the spec's title; `heading` is the level of the title's heading.
    `contexts`: as render.render_text's (derive build: the context the handouts of the language
    were rendered from, not built again)."""
    lang = lang or problem.spec.lang
    if math not in MATH:
        raise DeriveError(f"math must be one of {', '.join(MATH)}, got {math!r}")
    solution = solution or problem.solve(digits=digits)
    key = (lang, "solution", tuple(only or ()), id(solution))
    if contexts is not None and key in contexts:
        ctx = dict(contexts[key])
    else:
        ctx = build_context(problem, solution, lang=lang, only=only, mode="solution")
        if contexts is not None:
            contexts[key] = dict(ctx)
    env = environment(math, template_dir)
    s = strings(env, "strings", lang)
    p = strings(env, "page", lang)
    ask = Asker(problem, solution.digits, lang, prefix, interactive)
    ctx.update(s=s, p=p, ask=ask, interactive=interactive, heading=heading, title_html=title,
               remark_args=remark_args, svg=network_svg(ctx, lang, ids=f"{prefix}derive") if diagram else "", data="",
               training=training_context(problem.spec, lang, solution.digits),
               plots={name: _inline_svg(svg) for name, svg in training_files(problem.spec, solution.digits).items()})
    ctx.setdefault("remarks", ())
    # the data are collected while the template asks; the JSON goes in at its place afterwards
    marker = f"<!--derive-data-{prefix}-->"
    ctx["data"] = marker
    text = tpl.render(env, "solution.html.j2", ctx)
    keep = {k: "{" + k + "}" for k in ("t", "name", "text")}      # filled in by page.js
    data = ask.json({k: _plain(p(k, **keep)) for k in MESSAGES})
    if data:
        text = text.replace(marker, data)
    else:
        text = re.sub(r'<script type="application/json" class="derive-data">' + re.escape(marker) + r"</script>\n?",
                      "", text)
    return re.sub(r"\n{2,}", "\n", text)


def _inline_svg(data: bytes) -> str:
    """A plot's SVG file (derive.plot) as an element for the page: its <svg> without the XML
    declaration and DOCTYPE, sized by the page (width 100%)."""
    text = data.decode("utf-8")
    text = text[text.index("<svg"):]
    return re.sub(r'<svg([^>]*?) width="([^"]*)" height="[^"]*"', r'<svg\1 style="width:100%;height:auto;max-width:\2"',
                  text, count=1)


def _plain(html_text: str) -> str:
    """A page string for the script (which sets textContent): the HTML escaping undone."""
    return html.unescape(html_text)


def solution_fragment(problem, lang: str | None = None, digits: int = DISPLAY_DIGITS, *, diagram: bool = True,
                      heading: int = 3, template_dir: str | None = None, solution=None) -> str:
    """The static HTML of a worked solution for Moodle's general feedback: every step shown, no
    answer boxes, no script; math as \\( … \\) and \\[ … \\] (Moodle's MathJax filter); the
    network as inline SVG (`diagram=False` leaves it out); headings from <h`heading`>."""
    return solution_body(problem, lang=lang, digits=digits, interactive=False, math="mathjax",
                         heading=heading, diagram=diagram, template_dir=template_dir, solution=solution)


# ---------------------------------------------------------------- the page
_ASSETS: dict = {}


def katex_assets() -> tuple[str, str]:
    """(script, stylesheet) of the vendored KaTeX, the fonts in the stylesheet as data: URIs
    (woff2; a font not vendored loses its @font-face rule, and KaTeX falls back on the next)."""
    if not _ASSETS:
        js = (ASSETS / "katex.min.js").read_text(encoding="utf-8")
        css = (ASSETS / "katex.min.css").read_text(encoding="utf-8")

        def face(m):
            rule = m.group(0)
            font = re.search(r"url\(fonts/(KaTeX_[A-Za-z0-9-]+)\.woff2\)", rule)
            path = ASSETS / "fonts" / f"{font.group(1)}.woff2" if font else None
            if path is None or not path.is_file():
                return ""
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            return re.sub(r"src:[^;}]*", f'src:url(data:font/woff2;base64,{data}) format("woff2")', rule)

        css = re.sub(r"@font-face\{[^}]*\}", face, css)
        if "</script" in js.lower() or "</style" in css.lower():
            raise DeriveError("the vendored KaTeX cannot be inlined (it contains a closing tag)")
        _ASSETS["katex"] = (js, css)
    return _ASSETS["katex"]


def _page(env, *, lang: str, title: str, body: str, footer: str, intro: str = "") -> str:
    js, css = katex_assets()
    page_js = env.loader.get_source(env, "page.js")[0]
    page_css = env.loader.get_source(env, "page.css")[0]
    if "</script" in page_js.lower() or "</style" in page_css.lower():
        raise DeriveError("page.js or page.css contains a closing tag")
    return tpl.render(env, "page.html.j2", dict(lang=lang, title=title, body=body, footer=footer, intro=intro,
                                                katex_js=js, katex_css=css, page_js=page_js, page_css=page_css))


def page(problem, *, lang: str | None = None, digits: int = DISPLAY_DIGITS, only=None,
         template_dir: str | None = None, solution=None, contexts: dict | None = None) -> str:
    """The interactive worked solution of a problem as one self-contained HTML document."""
    lang = lang or problem.spec.lang
    env = environment("katex", template_dir)
    s = strings(env, "strings", lang)
    body = solution_body(problem, lang=lang, digits=digits, only=only, template_dir=template_dir,
                         solution=solution, contexts=contexts)
    title = "".join(t for _m, t in typeset_parts(problem.spec.title_in(lang), problem.spec, {})) or problem.spec.id
    return _page(env, lang=lang, title=title, body=body, footer=s("generated_file", id=h(problem.spec.id)))


def exercise_page(bank, *, lang: str, digits: int = DISPLAY_DIGITS, template_dir: str | None = None) -> str:
    """Every variant of a bank (`variants.Bank`) as an interactive worked solution, in one page."""
    env = environment("katex", template_dir)
    s = strings(env, "strings", lang)
    p = strings(env, "page", lang)
    base = bank.base.spec
    bodies = []
    for n, vp in enumerate(bank.variants, 1):
        name = p("variant", n=n)
        bodies.append('<div class="variant" id="variant-%d">\n' % n + solution_body(
            vp, lang=lang, digits=digits, prefix=f"v{n}-", heading=2, title=name, template_dir=template_dir)
            + "</div>\n")
    title = base.title_in(lang) or base.id
    return _page(env, lang=lang, title=title, body="".join(bodies), intro=p("variants_intro", n=len(bank.variants)),
                 footer=s("generated_file", id=h(base.id)))


__all__ = ["Answer", "MATH", "ROUND_DIGITS", "entry_text", "exercise_page", "katex_assets", "page",
           "quantity_data", "solution_body", "solution_fragment", "value_text"]

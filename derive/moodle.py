"""Moodle XML of an exercise bank (`derive exercise --format moodle`): one <quiz>, a category per
exercise, and per variant one cloze (multianswer) question with a blank per asked quantity, or
(`numerical`) one numerical question per quantity.

Each blank or question: the correct answer first (fraction 100), the true value rounded to d
significant digits with the tolerance tol = ½·10^(⌊log₁₀|x|⌋−d+1) of the true value x (Moodle's
tolerance is absolute and closed: "right to the digits asked for"); then one fraction-0 answer per
catalogued mistake whose value, rounded to d digits, differs from the rounded truth, with feedback
naming the mistake in the quiz's language (`verdicts.DIAGNOSIS_NAMES` and the hypothesis' own
description).  Mistakes that give the same rounded value are merged into one answer; a mistake
that reproduces the truth, or whose value cannot be computed, is left out.  The mistake values are
the checker's catalogued mistakes (`hypotheses`): the engine's run with the hypothesis' WhatIf, or
its transform of the truth — nothing is re-derived here — read per variant from `bankruns` (the
exact run, the true and what-if runs, tapes replayed for a large bank), every value certified;
`blanks_recomputed` gets the same from the checker's own recomputations (`worlds.Recomputations`).

The XML is built with xml.etree.ElementTree; the question text is HTML (built with ElementTree too)
with math as \\( … \\) and \\[ … \\], which Moodle's MathJax filter reads, and the network diagram
(`svgdiagram.network_svg`) as the question's embedded file network.svg (`<file encoding="base64">`,
shown by `<img src="@@PLUGINFILE@@/network.svg">`).  The general feedback is the answers at the digits
asked, then the variant's worked solution (`htmlpage.solution_fragment`, static HTML).

A bank of PARALLEL or more variants is worked out by worker processes (`prepare`): one task per
variant does its whole share — its sheet and key, spec file and claims template, blanks, worked
solution and its questions serialized as the quiz writes them (`variant_questions`) — and the
parent keeps the results in the bank's frame, where `variants.bank_files` and `quiz` read them, so
what is written is what those functions compute in one process, byte for byte, for every number of
workers.  `derive exercise` (Markdown, HTML, Moodle) calls `draw_prepared`, where the workers also
judge the draws (speculatively: the draws a bank with no rejection would accept; at the first
rejection the rest is drawn as `variants.draw` does), so that only the imports, the first variant
(and the work every variant shares with it) and the writing of the files are the parent's alone.
"""
from __future__ import annotations

import base64
import contextlib
import decimal
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from fractions import Fraction

from . import bankruns as br
from . import exercise_context as xc
from .engine import RESCUE_PRECISION_BITS
from .errors import DeriveError
from .htmlpage import solution_fragment
from .quantity import make_query
from .rounding import round_fraction
from .svgdiagram import network_svg
from . import variants as vr
from .variants import asked, variant_context
from .verdicts import DIAGNOSIS_NAMES, EQUAL_TOLERANCE
from .worlds import Recomputations

STYLES = ("cloze", "numerical")
PENALTY = "0.3333333"
DIAGRAM = "network.svg"          # the embedded diagram's file name (every question has its own files)
PARALLEL = 10                    # variants from which each variant's work is done by worker processes
EQUAL_BALL = br.engine.arb(EQUAL_TOLERANCE.numerator) / EQUAL_TOLERANCE.denominator   # 10⁻³⁰ as a ball


@dataclass(frozen=True)
class Choice:
    value: str                   # the rounded value, plain decimal
    tolerance: str
    fraction: int                # 100 or 0
    feedback: str


@dataclass(frozen=True)
class Blank:
    quantity: str                # as derive check reads it (dE_total/dw6, w6@1)
    flat: int
    sym: str                     # LaTeX
    truth: Fraction              # the true value (exact or at 60 working digits)
    choices: tuple               # Choices, the correct one first


# ---------------------------------------------------------------- numbers
exponent = br.exponent_of


def plain(d: decimal.Decimal) -> str:
    text = format(d, "f")
    return text


def tolerance(x: Fraction, digits: int) -> decimal.Decimal:
    """½·10^(⌊log₁₀|x|⌋ − digits + 1); 0 for x = 0."""
    if x == 0:
        return decimal.Decimal(0)
    return _tolerance_at(exponent(x), digits)


def _tolerance_at(e: int | None, digits: int) -> decimal.Decimal:
    return decimal.Decimal(0) if e is None else decimal.Decimal(5).scaleb(e - digits)


def rounded(x: Fraction, digits: int) -> decimal.Decimal:
    return decimal.Decimal(0) if x == 0 else round_fraction(x, digits)


# ---------------------------------------------------------------- the blanks of one variant
def _choices(strings, names, li: int, digits: int, right, e_right, alts) -> tuple:
    """The correct choice, then one per distinct rounded mistake (merged, in hypothesis order);
    `alts` [(hypothesis, rounded value, exponent)] of the mistakes that are not the truth."""
    choices = [Choice(plain(right), plain(_tolerance_at(e_right, digits)), 100, strings("moodle_correct"))]
    merged: dict = {}
    for h, r, e in alts:
        if r == right:
            continue
        merged.setdefault(r, (e, []))[1].append(h)
    for r, (e, hyps) in merged.items():
        kinds = list(dict.fromkeys(h.kind for h in hyps))
        # the first (simplest) hypothesis describes the value; all merged ones are named
        feedback = "; ".join(names.get(k, k) for k in kinds) + f": {hyps[0].text[li]}"
        choices.append(Choice(plain(r), plain(_tolerance_at(e, digits)), 0, feedback))
    return tuple(choices)


def blanks_recomputed(problem, digits: int, lang: str, strings) -> list:
    """`blanks` by the checker's own recomputations (`worlds.Recomputations`: the truth of each
    quantity and its value under each hypothesis at 60 working digits), query by query."""
    rc = Recomputations(problem, digits)
    names = DIAGNOSIS_NAMES[lang]
    li = 1 if lang == "zh" else 0
    out = []
    queries: dict = {}
    for text, flat, row in asked(problem, digits):
        if text not in queries:
            q = make_query(text, problem.graph)
            truth, _numbers = rc.truth(q)
            queries[text] = (truth, [(h, rc.hyp_alt(h, q, truth=truth)) for h in rc.hypotheses])
        truth, alts = queries[text]
        x = truth[flat]
        vals = [(h, Fraction(a[flat])) for h, a in alts if a is not None and flat < len(a)]
        choices = _choices(strings, names, li, digits, rounded(x, digits), exponent(x) if x else None,
                           [(h, rounded(m, digits), exponent(m) if m else None) for h, m in vals
                            if abs(m - x) > EQUAL_TOLERANCE * abs(x)])   # not the truth (at 60 digits)
        out.append(Blank(text, flat, row.sym, x, choices))
    return out


def _certified(get, digits: int, first=None):
    """(value, rounded, exponent) of get(prec) — a Fraction, or a ball at prec bits — certified
    (the precision doubled until the ball decides, `bankruns`): the value as got, its rounding
    and its exponent; None when get fails.  `first`:
    get(WORK_BITS), when known."""
    prec = br.WORK_BITS
    while True:
        x = get(prec) if first is None or prec != br.WORK_BITS else first
        if x is None:
            return None
        final = prec * 2 > RESCUE_PRECISION_BITS
        if br.is_zero(x):
            return Fraction(0), decimal.Decimal(0), None
        r = br.rounded(x, digits, final)
        e = None if r is None else br.exponent(x, r, digits, final)
        if e is not None:
            return x, r, e
        prec *= 2


def blanks(problem, digits: int, lang: str, strings, frame: br.Frame | None = None) -> list:
    """One Blank per row of the variant's sheet (see the module's docstring): the truth and every
    mistake's value from the variant's runs (`bankruns.Runs`: the exact run, the true and what-if
    runs replayed from `frame`'s tapes), each certified; a what-if run that fails: the checker's
    recomputation (`blanks_recomputed`'s).  The numbers are kept in `frame` for other languages."""
    frame = frame or br.Frame(problem)
    names = DIAGNOSIS_NAMES[lang]
    li = 1 if lang == "zh" else 0
    rows = frame.remember(("blanks", problem.spec.id, digits), lambda: _blank_numbers(problem, digits, frame))
    return [Blank(text, flat, sym, x, _choices(strings, names, li, digits, right, e_right, alts))
            for text, flat, sym, x, right, e_right, alts in rows]


def _blank_numbers(problem, digits: int, frame: br.Frame) -> list:
    """[(quantity, flat, sym, truth, rounded truth, its exponent, [(hypothesis, rounded, exponent)])]."""
    runs = br.Runs(frame, problem)
    loss = problem.spec.loss
    ex = runs.exact()
    worlds = {h.key: runs.at(h.world) for h in frame.hypotheses if h.world is not None}
    rc = None
    out = []
    for text, flat, row in frame.remember(("asked", digits), lambda: asked(problem, digits)):
        query = row.query
        exact = br.value(ex, query, loss) if ex is not None else None

        def truth(prec, query=query, exact=exact):
            if exact is not None:
                return exact
            traj = runs.at(None, prec)
            return None if traj is None else br.value(traj, query, loss)

        got = _certified(truth, digits)
        if got is None:
            raise DeriveError(f"{problem.spec.path}: {text} cannot be computed")
        x, right, e_right = got
        x = br.midpoint(x)
        with br.engine.precision(br.WORK_BITS):
            ax = br.engine._arb_of(x)
            near = EQUAL_BALL * abs(ax)

        def value_of(get, first=None):
            """A mistake's certified (rounded value, exponent), or None: none, or the truth at the
            working digits (first: its value at WORK_BITS, when known)."""
            m = get(br.WORK_BITS) if first is None else first
            if m is None:
                return None
            if isinstance(m, br.engine.arb):
                if abs(m - ax) <= near:
                    return None
            elif abs(m - x) <= EQUAL_TOLERANCE * abs(x):
                return None
            got = _certified(get, digits, m)
            return None if got is None else got[1:]

        alts = []
        for h in frame.hypotheses:
            if h.transform is not None:
                m = value_of(lambda prec, h=h: h.transform([truth(prec)])[0])
            elif h.term_of is not None:
                if query[0] not in ("forward", "loss") or query[1] != h.term_of:
                    continue
                m = value_of(lambda prec, h=h: _minus_twice(truth(prec), br.term_value(frame, runs, h, prec), prec))
            elif worlds[h.key] is not None:
                m = value_of(lambda prec, h=h: br.value(runs.at(h.world, prec), query, loss),
                             br.value(worlds[h.key], query, loss))
            else:
                rc = rc or Recomputations(problem, digits)
                alt = rc.hyp_alt(h, make_query(text, problem.graph))
                m = None if alt is None or flat >= len(alt) else Fraction(alt[flat])
                m = None if m is None or abs(m - x) <= EQUAL_TOLERANCE * abs(x) else \
                    (rounded(m, digits), exponent(m) if m else None)
            if m is not None:
                alts.append((h, *m))
        out.append((text, flat, row.sym, x, right, e_right, alts))
    return out


def _minus_twice(t, term, prec: int):
    """t − 2·term (a sign-flipped term), exact for Fractions, else a ball at prec bits."""
    if t is None or term is None:
        return None
    if not isinstance(t, br.engine.arb) and not isinstance(term, br.engine.arb):
        return t - 2 * term
    with br.engine.precision(prec):
        a = t if isinstance(t, br.engine.arb) else br.engine._arb_of(t)
        b = term if isinstance(term, br.engine.arb) else br.engine._arb_of(term)
        return a - 2 * b


# ---------------------------------------------------------------- cloze
def cloze_escape(text: str) -> str:
    """Feedback text inside a cloze blank: \\, }, #, ~ escaped with a backslash."""
    for ch in ("\\", "}", "#", "~"):
        text = text.replace(ch, "\\" + ch)
    return text


def cloze_blank(blank: Blank) -> str:
    parts = []
    for i, c in enumerate(blank.choices):
        head = "=" if c.fraction == 100 else f"%{c.fraction}%"
        parts.append(f"{head}{c.value}:{c.tolerance}#{cloze_escape(c.feedback)}")
    return "{1:NUMERICAL:" + "~".join(parts) + "}"


# ---------------------------------------------------------------- question text (HTML)
def _display(e) -> str:
    if getattr(e, "flat", None):
        return "\\[" + e.flat + "\\]"
    return "\\[\\begin{aligned}" + " \\\\ ".join(e.lines) + "\\end{aligned}\\]"


def _m(tex: str) -> str:
    return "\\(" + tex + "\\)"


def _p(parent, text: str, tag: str = "p"):
    el = ET.SubElement(parent, tag)
    el.text = text
    return el


def model_html(ctx: dict, x, s) -> ET.Element:
    """The model and the given numbers of a variant's sheet context, as an HTML <div>: the
    network diagram first (the question's embedded file DIAGRAM)."""
    div = ET.Element("div")
    _p(div, x("network_caption"))
    ET.SubElement(ET.SubElement(div, "p"), "img", src=f"@@PLUGINFILE@@/{DIAGRAM}", alt=x("moodle_diagram_alt"))
    _p(div, x("model_intro"))
    for e in ctx["definitions"]:
        _p(div, _display(e))
    if ctx["functions"]:
        _p(div, x("functions_intro" if any(d for _f, d in ctx["functions"]) else "functions_intro_plain"))
        ul = ET.SubElement(div, "ul")
        for f, d in ctx["functions"]:
            _p(ul, _m(f) + ((s("list_sep") + _m(d)) if d else ""), "li")
    if ctx["indicator"]:
        _p(div, x("indicator_note", one=_m(ctx["indicator"]), cond=_m("x > 0")))
    for key, args in ctx["notes"]:          # the notation the model uses (⊙, δᵢⱼ, log, …)
        _p(div, x(key, **{name: _m(tex) for name, tex in args.items()}))
    given = ctx["given"]
    sym = ctx["update_symbol"]              # θ: not a name of the model (softmax-3's output is p)
    rule = f"{sym}^{{(1)}} = {sym} - \\eta \\, \\partial " + ctx["loss"] + f"/\\partial {sym}"
    sp = s("sentence_sep")
    upd = x("updated_all") if given["all_updated"] else x(
        "updated_some", names=s("list_sep").join(_m(n) for n in given["updated"]),
        fixed=s("list_sep").join(_m(n) for n in given["fixed"]))
    _p(div, x("loss_note", L=_m(ctx["loss"])) + sp + x("learning_rate", eta=_m(given["eta"]), p=_m(sym),
                                                     rule=_m(rule)) + sp + upd)
    _p(div, s("h_given"), "h4")
    table = ET.SubElement(div, "table")
    for r in (*given["data"], *given["parameters"]):
        tr = ET.SubElement(table, "tr")
        _p(tr, _m(r["sym"]), "td")
        _p(tr, _m(r["value"]), "td")
    for mats in (given["data_matrices"], given["parameter_matrices"]):
        for e in (mats if isinstance(mats, (list, tuple)) else [mats]):
            if e:
                _p(div, _display(e))
    return div


# ---------------------------------------------------------------- the quiz
def _text(parent, tag: str, text: str, fmt: str | None = None):
    el = ET.SubElement(parent, tag)
    if fmt:
        el.set("format", fmt)
    ET.SubElement(el, "text").text = text
    return el


def _html(el: ET.Element) -> str:
    return ET.tostring(el, encoding="unicode", method="html")


def _with_file(q, tag: str, html: str, svg: str) -> None:
    """<TAG format="html"> (questiontext, generalfeedback) with the diagram (`svg`: its base64) as its file."""
    el = _text(q, tag, html, "html")
    f = ET.SubElement(el, "file", name=DIAGRAM, path="/", encoding="base64")
    f.text = svg


def _img(alt: str) -> str:
    return _html(ET.Element("img", src=f"@@PLUGINFILE@@/{DIAGRAM}", alt=alt))


def _solution_with_diagram(fragment: str, alt: str) -> str:
    """The worked solution's network figure (rendered without its inline SVG) showing the file."""
    return fragment.replace("<figure>\n<figcaption>", f"<figure>\n{_img(alt)}\n<figcaption>", 1)


def _key(kind: str, lang: str, template_dir, i: int) -> tuple:
    return ("moodle", kind, lang, template_dir, i)


def _remember(bank, key, compute):
    return bank.frame.remember(key, compute) if bank.frame is not None else compute()


def variant_fragment(bank, i: int, lang: str, template_dir: str | None = None) -> str:
    """Variant i's (0-based) worked solution for the general feedback, kept in the bank's frame."""
    return _remember(bank, _key("fragment", lang, template_dir, i), lambda: solution_fragment(
        bank.variants[i], lang=lang, diagram=False, heading=4, template_dir=template_dir))


def variant_blanks(bank, i: int, lang: str, template_dir: str | None = None) -> list:
    """Variant i's (0-based) Blanks in `lang` (`blanks`), kept in the bank's frame."""
    def make():
        x = vr.document_strings(bank, "md", lang, template_dir)[3]
        return blanks(bank.variants[i], bank.digits, lang, x, bank.frame)
    return _remember(bank, _key("blanks", lang, template_dir, i), make)


class _variant_task:
    """One variant's whole share of a bank's files (see `prepare`) as a function of (bank, i):
    {frame key: value} of what it worked out."""

    def __init__(self, lang: str, fmt: str, command: str, moodle: bool, template_dir: str | None,
                 style: str = "cloze"):
        self.lang, self.fmt, self.command, self.moodle, self.template_dir = lang, fmt, command, moodle, template_dir
        self.style = style

    def __call__(self, bank, i: int) -> dict:
        memo = bank.frame.memo
        before = set(memo)
        for mode in ("exercise", "key"):
            vr.variant_part(bank, i, fmt=self.fmt, lang=self.lang, mode=mode, template_dir=self.template_dir)
        vr.variant_files(bank, i, self.command)
        if self.moodle:
            variant_blanks(bank, i, self.lang, self.template_dir)
            variant_fragment(bank, i, self.lang, self.template_dir)
            variant_questions(bank, i, self.lang, self.style, self.template_dir)
        # what the parent reads: the texts, the given numbers, the questions (not the blanks and the
        # worked solution in them, nor the runs behind them: unpickling a variant's Blanks cost the
        # parent about 1.5 ms)
        return {k: memo[k] for k in memo.keys() - before
                if k[0] in ("part", "files", "given") or k[:2] == ("moodle", ("questions", self.style))}


def prepare(bank, *, lang: str, fmt: str = "md", command: str = "", moodle: bool = True,
            style: str = "cloze", template_dir: str | None = None, jobs: int | None = None) -> None:
    """Work out each variant's share of the bank's files — its sheet and key in `fmt` (Markdown
    for the quiz), its spec file and claims template, and for the quiz (`moodle`) its blanks and
    its worked solution — one variant per task, in worker processes for a bank of PARALLEL or
    more variants (`jobs`: how many; 1 in this process), kept in the bank's frame, where
    `variants.bank_files` and `quiz` read them.  Each is what those would compute themselves, by
    the same functions, so the bytes are the same for every number of workers."""
    if bank.frame is None:
        return
    n = len(bank.variants)
    jobs = br.jobs_for(n, PARALLEL) if jobs is None else jobs
    if jobs < 2:
        return
    # the first variant here: what every variant shares and is made on first use (the catalogued
    # mistakes, their what-if tapes, the sheet's context, the compiled templates and quantities)
    # is then made once, and the workers inherit it
    task = _variant_task(lang, fmt, command, moodle, template_dir, style)
    task(bank, 0)
    for got in br.parallel_map(task, bank, n, jobs, start=1):
        for k, v in got.items():
            bank.frame.memo.setdefault(k, v)


def draw_prepared(problem, n: int, seed: int, *, vary: str | None = None, digits: int = xc.DEFAULT_ANSWER_DIGITS,
                  lang: str, fmt: str = "md", command: str = "", moodle: bool = True, style: str = "cloze",
                  template_dir: str | None = None, jobs: int | None = None):
    """`variants.draw` and `prepare` at once, the draws judged by the worker processes too: the
    same Bank (same variants, draws and rejections) with each variant's share in its frame.

    The first variant is drawn, and its share worked out (what every variant shares with it), here;
    then each worker judges the draw the next variants would be if no draw were rejected (the draws
    are known ahead: `variants.Drawing.ahead`), and works out its share when it is not degenerate.
    This process takes their verdicts in order (`Drawing.accept`, which also rejects answers the
    same as an earlier variant's); at the first draw rejected (or whose share failed), the rest
    is drawn here as `variants.draw` does, and the variants from there are worked out as `prepare`
    does."""
    d = vr.Drawing(problem, n, seed, vary=vary, digits=digits)
    jobs = br.jobs_for(n, PARALLEL) if jobs is None else jobs
    task = _variant_task(lang, fmt, command, moodle, template_dir, style)
    while not d.variants:
        d.step()
    if jobs < 2 or d.done:
        while not d.done:
            d.step()
        bank = d.bank()
        prepare(bank, lang=lang, fmt=fmt, command=command, moodle=moodle, style=style,
                template_dir=template_dir, jobs=jobs)
        return bank
    first = d.bank()
    task(first, 0)
    memo = d.frame.memo
    shared = 1                       # variants whose share is in the frame
    state = (first, d, d.ahead(n - 1))
    with contextlib.closing(br.ordered(_judged_task(task), state, range(1, n), jobs)) as results:
        for j, (why, texts, got) in zip(range(1, n), results):
            if why is None and got is None:
                break                # its share failed: judged again and worked out below
            vspec = vr.numbered(problem.spec, d.next_values(), j + 1)
            if not d.accept(d.frame.problem(vspec) if why is None else None, why, texts):
                break                # the later variants' numbers are not those speculated
            for k, v in got.items():
                memo.setdefault(k, v)
            shared += 1
    while not d.done:
        d.step()
    bank = d.bank()
    for got in br.parallel_map(task, bank, n, jobs if n - shared >= 2 else 1, start=shared):
        for k, v in got.items():
            memo.setdefault(k, v)
    return bank


class _judged_task:
    """For `draw_prepared`: the draw of variant j + 1 (0-based j) if none were rejected before it,
    judged, and its share worked out when it is not degenerate, as a function of (state, j):
    (why it is degenerate or None, its answer texts, the share's {frame key: value} or None when
    working it out failed)."""

    def __init__(self, task):
        self.task = task

    def __call__(self, state, j: int) -> tuple:
        first, drawing, values = state
        vp, why, texts = drawing.judge(vr.numbered(first.base.spec, values[j - 1], j + 1))
        if why is not None:
            return why, None, None
        bank = replace(first, variants=(*first.variants, *([None] * (j - 1)), vp))    # variant j at j
        try:
            return None, texts, self.task(bank, j)
        except Exception:            # noqa: BLE001 - the plain path works it out again and reports it
            return None, texts, None


def quiz(bank, *, lang: str, style: str = "cloze", template_dir: str | None = None) -> bytes:
    """The Moodle XML (UTF-8 bytes) of a bank (`variants.Bank`): the category, then each variant's
    questions (`variant_questions`, worked out by worker processes for a large bank unless
    `prepare` has), as one ElementTree indented with `ET.indent` would write them."""
    x = vr.document_strings(bank, "md", lang, template_dir)[3]
    root = ET.Element("quiz")
    cat = ET.SubElement(root, "question", type="category")
    _text(cat, "category", "$course$/top/" + x("moodle_category", id=bank.base.spec.id))
    n = len(bank.variants)
    if bank.frame is not None and all(_key(("questions", style), lang, template_dir, i) in bank.frame.memo
                                      for i in range(n)):
        questions = [variant_questions(bank, i, lang, style, template_dir) for i in range(n)]
    else:
        questions = br.parallel_map(_questions_task(lang, style, template_dir), bank, n, br.jobs_for(n, PARALLEL))
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n<quiz>' + _SEP + _serialized(cat)
            + b"".join(_SEP + q for qs in questions for q in qs) + b"\n</quiz>\n")


_SEP = b"\n  "                  # before each question of the quiz (ET.indent's, at level 1)


def _serialized(q: ET.Element) -> bytes:
    """A question as it is written inside the indented <quiz> (`ET.indent` at level 1, no tail)."""
    ET.indent(q, level=1)
    return ET.tostring(q, encoding="utf-8", xml_declaration=False)


def _diagram_base64(bank, lang: str) -> str:
    """Every variant's network (`svgdiagram.network_svg` of the base problem) as base64, made once."""
    return _remember(bank, ("moodle", "svg", lang), lambda: base64.b64encode(
        network_svg(bank.base, lang).encode("utf-8")).decode("ascii"))


def variant_questions(bank, i: int, lang: str, style: str = "cloze", template_dir: str | None = None) -> tuple:
    """Variant i's (0-based) questions as bytes, each as `quiz` writes it (one cloze question, or
    one numerical question per blank), kept in the bank's frame."""
    return _remember(bank, _key(("questions", style), lang, template_dir, i),
                     lambda: tuple(_serialized(q) for q in _questions(bank, i, lang, style, template_dir)))


def _questions(bank, i: int, lang: str, style: str, template_dir: str | None) -> list:
    _env, s, _x, x = vr.document_strings(bank, "md", lang, template_dir)
    base = bank.base.spec
    digits = bank.digits
    svg = _diagram_base64(bank, lang)
    n, vp = i + 1, bank.variants[i]
    ctx = variant_context(bank, vp, lang=lang, strings=x, key=("md", template_dir))
    intro = model_html(ctx, x, s)
    bl = variant_blanks(bank, i, lang, template_dir)
    answers_div = ET.Element("div")
    _p(answers_div, x("moodle_answers", digits=digits))
    ul = ET.SubElement(answers_div, "ul")
    for b in bl:
        _p(ul, _m(b.sym + " = " + b.choices[0].value), "li")
    _p(answers_div, x("moodle_solution"))
    general = _html(answers_div) + _solution_with_diagram(variant_fragment(bank, i, lang, template_dir),
                                                          x("moodle_diagram_alt"))
    if style == "cloze":
        body = ET.Element("div")
        body.append(intro)
        _p(body, x("h_tasks"), "h4")
        _p(body, x("precision", digits=digits))
        table = ET.SubElement(body, "table")
        for k, b in enumerate(bl, 1):
            tr = ET.SubElement(table, "tr")
            _p(tr, str(k), "td")
            _p(tr, _m(b.sym), "td")
            _p(tr, cloze_blank(b), "td")
        q = ET.Element("question", type="cloze")
        _text(q, "name", x("moodle_name", id=base.id, n=n))
        _with_file(q, "questiontext", _html(body), svg)
        _with_file(q, "generalfeedback", general, svg)
        ET.SubElement(q, "penalty").text = PENALTY
        ET.SubElement(q, "hidden").text = "0"
        ET.SubElement(q, "idnumber").text = f"{vp.spec.id}"
        return [q]
    out = []
    for k, b in enumerate(bl, 1):
        body = ET.Element("div")
        body.append(intro)
        _p(body, x("moodle_task", quantity=_m(b.sym), digits=digits))
        q = ET.Element("question", type="numerical")
        _text(q, "name", x("moodle_name_quantity", id=base.id, n=n, quantity=b.quantity))
        _with_file(q, "questiontext", _html(body), svg)
        _with_file(q, "generalfeedback", general, svg)
        ET.SubElement(q, "defaultgrade").text = "1"
        ET.SubElement(q, "penalty").text = PENALTY
        ET.SubElement(q, "hidden").text = "0"
        ET.SubElement(q, "idnumber").text = f"{vp.spec.id}-{k}"
        for c in b.choices:
            a = ET.SubElement(q, "answer", fraction=str(c.fraction), format="moodle_auto_format")
            ET.SubElement(a, "text").text = c.value
            ET.SubElement(a, "tolerance").text = c.tolerance
            _text(a, "feedback", c.feedback, "html")
        ET.SubElement(q, "unitgradingtype").text = "0"
        ET.SubElement(q, "unitpenalty").text = "0.1000000"
        ET.SubElement(q, "showunits").text = "3"
        ET.SubElement(q, "unitsleft").text = "0"
        out.append(q)
    return out


class _questions_task:
    """variant_questions(bank, i, lang, style, template_dir) as a picklable function of (bank, i)."""

    def __init__(self, lang: str, style: str, template_dir: str | None):
        self.lang, self.style, self.template_dir = lang, style, template_dir

    def __call__(self, bank, i: int) -> tuple:
        return variant_questions(bank, i, self.lang, self.style, self.template_dir)


__all__ = ["Blank", "Choice", "STYLES", "blanks", "draw_prepared", "prepare", "variant_blanks", "variant_fragment", "cloze_blank", "cloze_escape", "exponent", "quiz",
           "tolerance"]

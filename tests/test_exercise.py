"""Exercise sheets and answer keys (`derive render --mode exercise|key`, derive/exercise_context.py).

A sheet defines the model (functions, loss, learning rate, what is updated), gives the numbers,
asks for the forward values, the loss, the gradients of the parameters in `update` only, the
updated parameters and the new loss, states the precision and leaves room for the answers; it is
built without a single engine number and never points to the source document.  A key is the same
layout with the answers: every number it prints is checked here against the hand-written mpmath
networks of tests/reference.py, correctly rounded by this file's own rounding (decimal, half away
from zero).
"""
from __future__ import annotations

import dataclasses
import decimal
import re
import shutil
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import mpmath
import pytest

import derive
from derive import engine
from derive import exercise_context as xc
from derive import printer as pr
from derive import titles
from derive.escape import CJK
from derive.spec import builtin_ids

from conftest import ROOT, run_cli
import reference

sys.path.insert(0, str(ROOT / "bench"))
from mlp import mlp_arrays, write_mlp  # noqa: E402

IDS = builtin_ids()
LANGS = ("en", "zh")
REFERENCE = [p for p in IDS if p in reference.LOSSES]
HAVE_XELATEX = shutil.which("xelatex") is not None and shutil.which("latexmk") is not None
HAVE_PDFLATEX = shutil.which("pdflatex") is not None and shutil.which("latexmk") is not None


@lru_cache(maxsize=None)
def problem(pid):
    return derive.load(pid)


@lru_cache(maxsize=None)
def docs(pid, lang, digits=xc.DEFAULT_ANSWER_DIGITS):
    """{(mode, fmt): text} of the sheet and the key."""
    return xc.render_exercises(problem(pid), lang=lang, digits=digits)


@lru_cache(maxsize=None)
def key(pid, digits=xc.DEFAULT_ANSWER_DIGITS):
    return xc.key_context(problem(pid), lang="en", digits=digits)


def rows(ctx) -> list:
    return [a for g in ctx["groups"] for a in g.rows]


# ---------------------------------------------------------------- rounding, independently
def rounded(ref, digits: int) -> decimal.Decimal:
    """`ref` (an mpf at 60 digits) correctly rounded to `digits` significant digits, half away from zero."""
    # 45 of the 60 digits: the binary approximation of an exact decimal (0.415) is read as that decimal
    d = decimal.Decimal(mpmath.nstr(ref, 45, min_fixed=-100, max_fixed=100))
    if d == 0:
        return d
    exp = d.adjusted() - digits + 1
    with decimal.localcontext() as c:
        c.prec = 200
        return d.quantize(decimal.Decimal(1).scaleb(exp), rounding=decimal.ROUND_HALF_UP)


def significant(text: str) -> int:
    mant = text.lstrip("-").lower().split("e")[0].replace(".", "").lstrip("0")
    return len(mant) or 1


def assert_rounded(text: str, ref, digits: int, what: str):
    shown = decimal.Decimal(text)
    assert shown == rounded(ref, digits), f"{what}: key says {text}, true value {mpmath.nstr(ref, 15)}"
    if significant(text) != digits:       # fewer digits: only for a value that is exactly that
        with mpmath.workdps(60):
            exact = abs(mpmath.mpf(text) - ref) <= mpmath.mpf(10) ** -30 * max(1, abs(ref))
        assert significant(text) < digits and exact, \
            f"{what}: {text} has {significant(text)} significant digits, not {digits}"


def _index(pid, name, flat):
    """tests/reference.py's index of entry `flat` of a parameter: (), (i,) or (i, j)."""
    slots = [idx for n, idx in reference.parameter_slots(pid) if n == name]
    return slots[flat]


def reference_value(pid, query):
    kind, name, flat = query
    if kind == "loss":
        return reference.loss_value(pid)
    if kind == "forward":
        v = reference.forward_values(pid)[name]
        return v[flat] if isinstance(v, list) else v
    spec = problem(pid).spec
    grads = reference.gradients(pid)
    if kind == "gradient":
        return grads[(name, _index(pid, name, flat))]
    if kind == "update":
        with mpmath.workdps(60):
            v = reference.numbers(pid)
            idx = _index(pid, name, flat)
            return reference._get(v, name, idx) - v["_lr"] * grads[(name, idx)]
    if kind == "after":
        return reference.loss_after_one_step(pid, list(spec.update))
    raise KeyError(kind)


# ---------------------------------------------------------------- the key's numbers
@pytest.mark.parametrize("pid", REFERENCE)
def test_every_key_number_is_the_independent_value_correctly_rounded(pid):
    ctx = key(pid)
    answers = rows(ctx)
    assert answers
    for a in answers:
        assert_rounded(a.text, reference_value(pid, a.query), xc.DEFAULT_ANSWER_DIGITS, f"{pid} {a.query}")
        # shown as printed, or with the same digits as m × 10ⁿ (one notation per table: one_notation)
        assert a.value in (pr.number(a.text), xc.scientific(a.text))


@pytest.mark.parametrize("digits", (2, 6))
def test_answer_digits_set_the_precision_of_the_key(digits):
    ctx = key("two-two-two", digits)
    for a in rows(ctx):
        assert_rounded(a.text, reference_value("two-two-two", a.query), digits, f"{a.query} at {digits}")
    sheet = xc.render_exercise(problem("two-two-two"), fmt="md", lang="en", digits=digits)
    assert f"Give every answer to {digits} significant digits" in sheet


def md_answers(md: str) -> dict:
    """{row number: (quantity, answer)} of the answer tables of a Markdown sheet or key."""
    out = {}
    for m in re.finditer(r"^\| (\d+) \| \$`?(.*?)`?\$ \| (?:\$`?(.*?)`?\$)?(?: \S[^|]*)? *\|$", md, flags=re.M):
        out[int(m.group(1))] = (m.group(2), m.group(3) or "")
    return out


def tex_answers(tex: str) -> dict:
    out = {}
    for m in re.finditer(r"(\d+) & (.+?) = & \\answerstrut(?:\$(.*?)\$)?(?: \{\\small[^{}]*\})?(?= &| \\\\)", tex):
        out[int(m.group(1))] = (m.group(2), m.group(3) or "")
    return out


@pytest.mark.parametrize("pid", [p for p in IDS if not derive.load(p).is_symbolic])
@pytest.mark.parametrize("lang", LANGS)
def test_the_key_prints_exactly_the_checked_answers_and_the_sheet_leaves_them_empty(pid, lang):
    ctx = xc.key_context(problem(pid), lang=lang)
    want = {a.n: (a.sym, a.value) for a in rows(ctx)}
    d = docs(pid, lang)
    assert md_answers(d[("key", "md")]) == want
    assert tex_answers(d[("key", "tex")]) == want
    empty = {n: (sym, "") for n, (sym, _) in want.items()}
    assert md_answers(d[("exercise", "md")]) == empty
    assert tex_answers(d[("exercise", "tex")]) == empty


def latex_number(tex: str) -> decimal.Decimal:
    """'-3.772 \\times 10^{-8}' or '0.4' as a Decimal."""
    m = re.fullmatch(r"(-?[\d.]+)(?: \\times 10\^\{(-?\d+)\})?", tex.strip())
    assert m, tex
    return decimal.Decimal(m.group(1)).scaleb(int(m.group(2) or 0))


UNCHANGED_ITEM = {"en": r"^- row (\d+): \$`(.+?)`\$ changes by \$`-\\eta \\, \\partial .+? = (.+?)`\$$",
                  "zh": r"^- 第 (\d+) 行：\$`(.+?)`\$ 改变了 \$`-\\eta \\, \\partial .+? = (.+?)`\$$"}


@pytest.mark.parametrize("pid", REFERENCE)
@pytest.mark.parametrize("lang", LANGS)
def test_the_key_shows_the_change_of_a_parameter_that_looks_unchanged(pid, lang):
    """An updated parameter whose new value, at the key's digits, reads as its old one (house-price's
    w₁ = 0.2000 → 0.2000) gets a note below the table with the step's change Δ = −η·∂L/∂p in ×10ⁿ
    form, correctly rounded at the key's digits (checked against tests/reference.py); every other
    row gets none."""
    digits = xc.DEFAULT_ANSWER_DIGITS
    ctx = key(pid)
    spec = problem(pid).spec
    looks_same = set()
    for a in rows(ctx):
        kind, name, flat = a.query
        if kind == "update":
            old = spec.parameters[name].entries[flat]
            if decimal.Decimal(a.text) == rounded(mpmath.mpf(old.numerator) / old.denominator, digits):
                looks_same.add(a.n)
    for fmt in ("md", "tex"):
        text = docs(pid, lang)[("key", fmt)]
        if fmt == "md":
            notes = {int(m.group(1)): m.group(3) for m in re.finditer(UNCHANGED_ITEM[lang], text, flags=re.M)}
        else:
            notes = {int(m.group(1)): m.group(2) for m in re.finditer(
                r"^\\item (?:row |第 )(\d+)(?: 行：|: )(?!the loss|更新后的损失).*?= (-?[\d.]+(?: \\times 10\^\{-?\d+\})?)\$$", text, flags=re.M)}
        assert set(notes) == looks_same, (pid, lang, fmt)
        for a in rows(ctx):
            if a.n in notes:
                kind, name, flat = a.query
                with mpmath.workdps(60):
                    v = reference.numbers(pid)
                    idx = _index(pid, name, flat)
                    delta = -v["_lr"] * reference.gradients(pid)[(name, idx)]
                assert latex_number(notes[a.n]) == rounded(delta, digits), (pid, a.n, notes[a.n])
                assert re.fullmatch(r"-?\d(\.\d+)?( \\times 10\^\{-?\d+\})?", notes[a.n]), notes[a.n]
    # the sheet has none, and the key table itself is unchanged (the rows' regex still reads it)
    assert "key_unchanged" not in docs(pid, lang)[("exercise", "md")]
    assert not re.search(UNCHANGED_ITEM[lang], docs(pid, lang)[("exercise", "md")], flags=re.M)


def test_house_price_key_notes_the_hidden_weights():
    md = docs("house-price", "en")[("key", "md")]
    assert "Some updated values look unchanged at 4 significant digits" in md
    assert "- row 25: $`w_{1}`$ changes by $`-\\eta \\, \\partial L/\\partial w_{1} = 3.772 \\times 10^{-8}`$" in md


@pytest.mark.parametrize("pid", sorted(set(IDS) - set(REFERENCE) - {"one-two-one"}))
def test_key_numbers_of_problems_without_a_hand_written_reference(pid):
    """A built-in problem not coded in tests/reference.py: each answer against the engine's own
    50-digit value of that quantity, rounded here (weaker than the hand-written networks)."""
    p = problem(pid)
    loss = p.spec.loss
    for a in rows(key(pid)):
        kind, name, flat = a.query
        text = {"forward": name, "loss": loss, "gradient": f"d{loss}/d{name}", "update": f"{name}@1",
                "after": f"{loss}@1"}[kind]
        value = p.eval(text, digits=50)[0].values[flat if kind in ("forward", "gradient", "update") else 0]
        assert_rounded(a.text, mpmath.mpf(value.text), xc.DEFAULT_ANSWER_DIGITS, f"{pid} {a.query}")


def test_symbolic_key_gives_the_gradient_formulas():
    """one-two-one: each formula of the key, evaluated at random numbers (the named quantities
    computed by hand), is mpmath's numerical derivative of the hand-written loss."""
    p = problem("one-two-one")
    ctx = xc.key_context(p, lang="en")
    assert [g.kind for g in ctx["groups"]] == ["formula"]
    names = pr.display_names(p.spec, p.graph)
    vals = {"x": 0.7, "y": 0.2, "w1": 0.3, "b1": -0.4, "w2": -0.9, "b2": 0.25, "v1": 1.1, "v2": -0.6, "c": 0.05}
    with mpmath.workdps(40):
        v = {k: mpmath.mpf(x) for k, x in vals.items()}

        def loss(w):
            a1 = reference.sig(w["w1"] * w["x"] + w["b1"])
            a2 = reference.sig(w["w2"] * w["x"] + w["b2"])
            a_out = reference.sig(w["v1"] * a1 + w["v2"] * a2 + w["c"])
            return (a_out - w["y"]) ** 2 / 2, {"a1": a1, "a2": a2, "a_out": a_out}

        _, named = loss(v)
        values = {names[k]: x for k, x in {**v, **named}.items() if k in names}
        for a in ctx["groups"][0].rows:
            wrt = a.query[1]
            got = eval_product_tex(a.value, values)      # the formula the key prints
            want = mpmath.diff(lambda t: loss({**v, wrt: t})[0], v[wrt])
            assert abs(got - want) < 1e-12, (wrt, got, want)


def eval_product_tex(tex: str, values: dict):
    """The value of a key's formula (sums, differences and \\cdot products of named quantities,
    numbers and parentheses), read by this test's own small parser."""
    text = tex.replace("\\left(", "(").replace("\\right)", ")").replace("\\cdot", "*")
    names = sorted(values, key=len, reverse=True)
    toks = re.findall("|".join([re.escape(n) for n in names] + [r"\d+(?:\.\d+)?", r"[-+*()]"]), text)
    assert "".join(toks) == text.replace(" ", ""), (tex, toks)
    pos = 0

    def atom():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t == "(":
            v = summ()
            pos += 1
            return v
        if t == "-":
            return -atom()
        return values[t] if t in values else mpmath.mpf(t)

    def prod():
        nonlocal pos
        v = atom()
        while pos < len(toks) and toks[pos] == "*":
            pos += 1
            v *= atom()
        return v

    def summ():
        nonlocal pos
        v = prod()
        while pos < len(toks) and toks[pos] in "+-":
            op = toks[pos]
            pos += 1
            v = v + prod() if op == "+" else v - prod()
        return v
    out = summ()
    assert pos == len(toks), tex
    return out


def test_symbolic_key_writes_its_factors_in_the_worked_solutions_order():
    """one-two-one's key wrote SymPy's order (a₁·a_out·v₁·x·(1 − a₁)·…); it now writes each
    formula as the handout does: the full formula where the handout shows one, else the handout's
    δ·rest with δ replaced by the δ's own formula there (δ_out · a₁ = (a_out − y)·a_out·(1 − a_out)·a₁)."""
    p = problem("one-two-one")
    ctx = xc.key_context(p, lang="en")
    handout = (ROOT / "output" / "one-two-one.en.tex").read_text(encoding="utf-8")
    lines = [ln.strip().removeprefix("\\[").removesuffix("\\]").strip().rstrip("\\").strip()
             for ln in handout.splitlines()]
    deltas = {}                                   # δ's LaTeX -> its formula (the last '= …' of its line)
    for ln in lines:
        m = re.match(r"&?\s*(\\delta_\{[^=]*?\}) &?= ", ln)
        if m and "\\frac{\\partial" in ln:
            deltas[m.group(1)] = re.split(r" &?= ", ln)[-1]
    assert deltas
    for a in ctx["groups"][0].rows:
        lhs = a.sym
        (line,) = [ln for ln in lines if ln.startswith(lhs + " &= ") or ln.startswith(lhs + " = ")]
        parts = re.split(r" &?= ", line)
        if a.value in parts:
            continue                               # the handout's full formula
        last = parts[-1]
        d = next(d for d in deltas if last == d or last.startswith(d + " \\cdot "))
        assert a.value == deltas[d] + last[len(d):], (lhs, a.value, last)


# ---------------------------------------------------------------- the sheet
@pytest.mark.parametrize("pid", IDS)
def test_a_sheet_is_built_without_any_engine_number(pid, monkeypatch):
    """The sheet's context is built from the spec alone: every way to a computed number fails."""
    fresh = derive.load(pid)

    def refuse(*_a, **_k):
        raise AssertionError("a sheet asked the engine for a number")

    for name in ("numbers", "solve", "eval", "value_of"):
        monkeypatch.setattr(derive.solve.Problem, name, refuse)
    for name in ("certified", "solve_numbers", "solution_numbers", "cached_run"):
        monkeypatch.setattr(engine, name, refuse)
    for lang in LANGS:
        ctx = xc.sheet_context(fresh, lang=lang)
        assert all(a.value == "" and a.text == "" for a in rows(ctx))
        for fmt in ("md", "tex"):
            xc.render_exercise(fresh, fmt=fmt, lang=lang)


def _given_texts(p) -> set:
    out = set()
    for v in (*p.spec.data.values(), *p.spec.parameters.values()):
        out |= {pr.fraction(q) for q in v.entries}
    return out


@pytest.mark.parametrize("pid", [p for p in IDS if not derive.load(p).is_symbolic])
def test_no_answer_appears_on_the_sheet(pid):
    p = problem(pid)
    given = _given_texts(p)
    answers = {a.value for a in rows(key(pid))} - given
    answers = {a for a in answers if "." in a or len(re.sub(r"\D", "", a.split("\\times")[0])) >= 3}
    for lang in LANGS:
        for fmt in ("md", "tex"):
            sheet = docs(pid, lang)[("exercise", fmt)].split("\\begin{document}")[-1]
            sheet = re.sub(r"^\| \d+ \||(?<![\d.])\d+ & ", "", sheet, flags=re.M)    # the rows' numbers
            sheet = re.sub(r"\\begin\{tikzpicture\}.*?\\end\{tikzpicture\}", "", sheet, flags=re.S)  # coordinates
            leaked = {a for a in answers if re.search(r"(?<![\d.])" + re.escape(a) + r"(?![\d.])", sheet)}
            assert not leaked, f"{pid} {lang} {fmt}: the sheet shows {sorted(leaked)[:5]}"
            assert "\\approx" not in sheet


def test_two_two_two_sheet_defines_the_model_and_asks_for_the_updated_parameters_only():
    md = docs("two-two-two", "en")[("exercise", "md")]
    p = problem("two-two-two")
    assert "\\sigma(x) = \\frac{1}{1 + e^{-x}}" in md                      # the activation defined
    assert "\\sigma'(x) = \\sigma(x)" in md
    assert "E_{\\mathrm{total}} &= E_{o_1} + E_{o_2}" in md                 # the loss defined
    assert "learning rate $\\eta = 0.1$" in md.replace("$`", "$").replace("`$", "$")   # η defined
    assert "Kept fixed (not updated, so no gradient is asked for)" in md
    assert "Give every answer to 4 significant digits" in md
    asked = [a.sym for a in rows(xc.sheet_context(p, lang="en"))]
    for w in ("w_{1}", "w_{8}"):
        assert pr.deriv("E_{\\mathrm{total}}", w) in asked and pr.with_step(w, 1) in asked
    for b in ("b_{1}", "b_{2}"):
        assert not any(b in s for s in asked), f"{b} is fixed: nothing about it is asked"
    assert asked[-1] == pr.with_step("E_{\\mathrm{total}}", 1)
    assert "## 3. What to compute" in md


# notation a sheet may print beyond the spec's names: (its LaTeX, the span that stands alone in the
# sentence defining it, a word of that sentence in each language)
NOTATION = [
    ("\\odot", "A \\odot B", {"en": "entrywise product", "zh": "逐元素乘积"}),
    ("\\delta_{ij}", "\\delta_{ij}", {"en": "1 when", "zh": "时为 1"}),
    ("\\log", "\\log", {"en": "natural logarithm", "zh": "自然对数"}),
    ("^{\\top}", "M^{\\top}", {"en": "transpose", "zh": "转置"}),
    ("v_{n}", "n", {"en": "their number", "zh": "元素的个数"}),
    ("\\eta", "\\eta", {"en": "learning rate", "zh": "学习率"}),
]


def model_part(md: str) -> str:
    return md.split("## 1.", 1)[1].split("## 2.", 1)[0]


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_every_symbol_of_the_model_is_defined_on_the_sheet(pid, lang):
    """softmax-3's sheet printed ⊙ and δᵢⱼ, relu-2-4-2's mean(v) = (1/n) Σ vᵢ, and every sheet the
    update rule's η, without saying what they are; softmax-3's rule used p, its own output."""
    md = model_part(docs(pid, lang)[("exercise", "md")])
    spans = re.findall(r"\$`(.*?)`\$", md) + re.findall(r"```math\n(.*?)```", md, re.S)
    math = " ".join(spans)
    for sym, alone, words in NOTATION:
        if sym == "\\eta" and problem(pid).is_symbolic:
            alone = "\\eta"
        elif sym == "\\eta":
            alone = "\\eta = " + pr.fraction(problem(pid).spec.learning_rate)
        if sym in math:
            i = md.find(f"$`{alone}`$")
            assert i >= 0, (pid, lang, sym)
            ends = [0] + [m.end() for m in re.finditer(r"\.\s|。|\n\n", md)]
            start = max(e for e in ends if e <= i)
            sentence = md[start:min([e for e in ends if e > i] + [len(md)])]
            assert words[lang] in sentence, (pid, lang, sym, sentence)
    assert "\\sum v = \\textstyle\\sum_{i}" not in md
    # the update rule, when new values are asked for (one-two-one's symbolic sheet asks for none)
    stepped = any(g.kind == "update" for g in xc.sheet_context(problem(pid), lang=lang)["groups"])
    found = [t for t in spans if "^{(1)} =" in t]
    assert len(found) == stepped, (pid, found)
    if not found:
        return
    letter = found[0].split("^{(1)}")[0]
    names = set(pr.display_names(problem(pid).spec, xc.SheetBuilder(problem(pid), lang=lang, digits=4,
                                                                    only=None).quantities).values())
    assert letter not in names, (pid, letter)


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_no_pointer_to_the_source_document(pid, lang):
    p = problem(pid)
    for (mode, fmt), text in docs(pid, lang).items():
        assert p.spec.source.split(",")[0] not in text, f"{pid} {mode} {fmt} cites the source"
        assert "Source" not in text and "出处" not in text


def test_given_numbers_are_written_as_given():
    from fractions import Fraction as F
    assert [xc.given_number(q) for q in (F(3, 20), F(300000), F(-1, 10), F(1, 3))] == \
        ["0.15", "300000", "-0.1", "\\frac{1}{3}"]
    assert xc.given_number(F(0.1)) == "0.1"                  # the binary float 0.1 of a data file
    assert xc.given_number(F(1.5e-07)) == "1.5 \\times 10^{-7}"


def test_title_lookup():
    """The title in the document's language (one lookup, `titles.document_title`, for the sheet, the
    key, the worked solution and the errata): the spec's title for that language — its zh title
    (the table of titles a spec gives is title/title_zh) — else a generic one in that language."""
    x = lambda key, **kw: {"title_generic": "Backpropagation exercise ({id})"}[key].format(**kw)  # noqa: E731
    base = problem("two-two-two").spec

    def spec(**titles):
        return dataclasses.replace(base, id="a", **{"title_zh": "", **titles})
    assert xc.title(spec(title="A net", title_zh="一个网络"), "zh", x) == "一个网络"
    assert xc.title(spec(title="A net", title_zh="一个网络"), "en", x) == "A net"
    assert xc.title(spec(title="A net"), "en", x) == "A net"
    assert xc.title(spec(title="一个网络"), "zh", x) == "一个网络"
    # no title in the document's language: a generic one in that language, never the other's
    assert xc.title(spec(title="一个网络"), "en", x) == "Backpropagation exercise (a)"
    assert xc.title(spec(title="A net"), "zh", x) == "Backpropagation exercise (a)"
    assert titles.document_title(spec(title="A net"), "zh") == ""


def _md_title(text: str) -> str:
    return text.split("\n", 1)[0].removeprefix("# ")


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_one_title_for_the_solution_the_errata_the_sheet_and_the_key(pid, lang):
    """Every document of a problem carries the same typeset title (titles.title_parts): the
    sheet, the key, the worked solution and the errata, in Markdown and in LaTeX."""
    from derive import render
    from derive.errata import builtin_claims, errata_documents
    p = problem(pid)
    names = pr.display_names(p.spec, p.graph)
    parts = titles.typeset_parts(titles.document_title(p.spec, lang), p.spec, names)
    md = "".join(f"$`{t}`$" if m else t for m, t in parts)
    maths = [f"${t}$" for m, t in parts if m]
    sheet = docs(pid, lang)
    solution = {fmt: render.render_text(p, fmt=fmt, lang=lang) for fmt in ("md", "tex")}
    heads = [re.search(r"\\LARGE\\bfseries (.*?)\\par", t).group(1)
             for t in (sheet[("exercise", "tex")], sheet[("key", "tex")], solution["tex"])]
    assert _md_title(sheet[("exercise", "md")]) == md
    assert _md_title(sheet[("key", "md")]) == md
    assert _md_title(solution["md"]) == md
    claims = dict(builtin_claims())
    if pid in claims:
        errata, _ = errata_documents(pid, claims[pid], lang)
        assert _md_title(errata["md"]).split(": " if lang == "en" else "：", 1)[1] == md
        heads.append(re.search(r"\\Large\\bfseries (.*?)\\par", errata["tex"]).group(1))
    for head in heads:          # the LaTeX: the same formulas, no name left as plain text
        assert all(x in head for x in maths), (head, maths)
        assert not re.search(r"->|·|\b[A-Za-z]+\d\b", re.sub(r"\$[^$]*\$", "", head)), head


def test_titles_typeset_their_formulas():
    """linear-2x's activation and matrix-linear's product are formulas in every document."""
    for pid, formula in (("linear-2x", "f(x) = 2x"), ("matrix-linear", "X \\cdot W_{1} \\cdot W_{2}")):
        for lang in LANGS:
            for text in docs(pid, lang).values():
                m = re.search(r"\\LARGE\\bfseries (.*?)\\par", text)
                first = m.group(1) if m else text.split("\n", 1)[0]
                assert f"${formula}$" in first or f"$`{formula}`$" in first, (pid, lang, first[-200:])
    p = problem("linear-2x")
    assert titles.typeset_parts("with g(t) = 3t − 1, and x->y", p.spec, {}) == (
        (False, "with "), (True, "g(t) = 3t - 1"), (False, ", and x"), (True, "\\rightarrow"), (False, "y"))
    assert titles.typeset_parts("a function(x) = 2x of f(xy) = 1", p.spec, {}) == ((False, "a function(x) = 2x of f(xy) = 1"),)


@pytest.mark.parametrize("pid", IDS)
def test_the_title_is_in_the_language_of_the_document(pid):
    for lang in LANGS:
        for (mode, fmt), text in docs(pid, lang).items():
            head = text.split("\n", 1)[0] if fmt == "md" else re.search(r"\\LARGE\\bfseries (.*?)\\par", text).group(1)
            assert bool(CJK.search(head)) == (lang == "zh"), f"{pid} {lang} {mode} {fmt}: title {head!r}"


def test_training_problems_ask_for_the_single_worked_step():
    for pid in ("alice", "relu-2-4-2"):
        ctx = xc.sheet_context(problem(pid), lang="en")
        assert ctx["training"]
        kinds = {a.query[0] for a in rows(ctx)}
        assert kinds == {"forward", "loss", "gradient", "update", "after"}
        assert "this sheet covers only the single gradient step" in docs(pid, "en")[("exercise", "md")]


# ---------------------------------------------------------------- large networks
SIZES = [6, 5, 2]          # 47 parameter entries: a "large" network (more than 30)


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    return write_mlp(SIZES, tmp_path_factory.mktemp("mlp"))


def _mlp_reference(arrays) -> dict:
    """Forward values, gradients, new parameters and new loss of the 6-5-2 network by hand."""
    with mpmath.workdps(60):
        f = lambda a: [mpmath.mpf(float(t)) for t in a]  # noqa: E731   (float64 → mpf is exact)
        x, y = f(arrays["x"]), f(arrays["y"])
        P = {"W1": [f(r) for r in arrays["W1"]], "b1": f(arrays["b1"]),
             "W2": [f(r) for r in arrays["W2"]], "b2": f(arrays["b2"])}

        def forward(P):
            z1 = [mpmath.fsum(w * t for w, t in zip(r, x)) + b for r, b in zip(P["W1"], P["b1"])]
            a1 = [reference.sig(z) for z in z1]
            z2 = [mpmath.fsum(w * t for w, t in zip(r, a1)) + b for r, b in zip(P["W2"], P["b2"])]
            a2 = [reference.sig(z) for z in z2]
            E = mpmath.fsum((o - t) ** 2 for o, t in zip(a2, y)) / 2
            return {"z1": z1, "a1": a1, "z2": z2, "a2": a2, "E": E}

        F = forward(P)
        d2 = [(o - t) * o * (1 - o) for o, t in zip(F["a2"], y)]
        d1 = [mpmath.fsum(P["W2"][k][i] * d2[k] for k in range(len(d2))) * a * (1 - a) for i, a in enumerate(F["a1"])]
        G = {"W1": [[d * t for t in x] for d in d1], "b1": d1, "W2": [[d * a for a in F["a1"]] for d in d2], "b2": d2}
        flat = lambda m: [t for r in m for t in r] if isinstance(m[0], list) else list(m)  # noqa: E731
        new = {k: [p - mpmath.mpf("0.1") * g for p, g in zip(flat(P[k]), flat(G[k]))] for k in P}
        shaped = {"W1": [new["W1"][i * 6:(i + 1) * 6] for i in range(5)], "b1": new["b1"],
                  "W2": [new["W2"][i * 5:(i + 1) * 5] for i in range(2)], "b2": new["b2"]}
        return {"forward": F, "gradient": {k: flat(G[k]) for k in G}, "update": new, "after": forward(shaped)["E"]}


def test_a_large_network_asks_for_a_stated_selection(mlp):
    p = derive.load(str(mlp))
    ref = _mlp_reference(mlp_arrays(SIZES))
    sheet = xc.sheet_context(p, lang="en")
    assert sheet["large"] and sheet["large"]["entries"] == 47
    md = xc.render_exercise(p, fmt="md", lang="en")
    assert "This network has 47 parameter entries" in md
    assert repr(float(mlp_arrays(SIZES)["x"][0])) in md          # a float of the .npz as the shortest decimal
    assert "W_{1}\\colon\\ 5\\times 6" in md and "W_{2}\\colon\\ 2\\times 5" in md   # too large / too wide: shapes
    ctx = xc.key_context(p, lang="en")
    got = rows(ctx)
    grads = [a for a in got if a.query[0] == "gradient"]
    assert [a.query[1:] for a in grads] == [("W1", 0), ("b1", 0), ("W2", 0), ("b2", 0)]
    assert len(got) < 40
    for a in got:
        kind, name, i = a.query
        want = {"forward": lambda: ref["forward"][name][i], "loss": lambda: ref["forward"]["E"],
                "gradient": lambda: ref["gradient"][name][i], "update": lambda: ref["update"][name][i],
                "after": lambda: ref["after"]}[kind]()
        assert_rounded(a.text, want, 4, str(a.query))
    assert "graph" not in p.__dict__ and "calculus" not in p.__dict__   # no per-scalar SymPy graph
    picked = xc.sheet_context(p, lang="en", only=["W1[2,3]"])
    assert [a.sym for a in rows(picked) if a.query[0] == "gradient"] == [pr.deriv("E", "W_{1,23}")]


# ---------------------------------------------------------------- the command line
def test_render_key_and_sheet_end_to_end(tmp_path):
    r = run_cli("render", "two-two-two", "--mode", "key", "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert r.stdout == docs("two-two-two", "en")[("key", "md")]
    out = tmp_path / "sheet.tex"
    r = run_cli("render", "house-price", "--mode", "exercise", "--format", "tex", "--lang", "en",
                "--answer-digits", "3", "-o", out)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == f"derive: wrote {out}\n"
    assert out.read_text(encoding="utf-8") == xc.render_exercise(problem("house-price"), fmt="tex", lang="en",
                                                                 digits=3)
    assert "Give every answer to 3 significant digits" in out.read_text(encoding="utf-8")


def test_the_default_language_is_the_specs_and_so_is_the_title():
    r = run_cli("render", "two-two-two", "--mode", "exercise")     # the spec says lang = "zh"
    assert r.returncode == 0, r.stderr
    assert r.stdout == docs("two-two-two", "zh")[("exercise", "md")]
    title = r.stdout.split("\n", 1)[0]
    assert CJK.search(title), title
    assert "每个答案保留 4 位有效数字" in r.stdout
    r = run_cli("render", "two-two-two", "--mode", "exercise", "--lang", "en")
    assert not CJK.search(r.stdout), "an English sheet has Chinese in it"


@pytest.mark.parametrize("args, message", [
    (["--mode", "key", "--only", "w9"], "--only: 'w9' is not a parameter of two-two-two"),
    (["--answer-digits", "3"], "--answer-digits belongs to --mode exercise and --mode key"),
])
def test_bad_input_is_one_line_exit_2(args, message):
    r = run_cli("render", "two-two-two", *args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith(f"derive: {message}") and r.stderr.count("\n") == 1, r.stderr


def test_answer_digits_out_of_range_is_refused():
    r = run_cli("render", "two-two-two", "--mode", "key", "--answer-digits", "0")
    assert r.returncode == 2 and "answer digits must be between 1 and 30" in r.stderr and r.stdout == ""


def test_a_symbolic_key_from_the_command_line():
    r = run_cli("render", "one-two-one", "--mode", "key", "--lang", "en", "--format", "tex")
    assert r.returncode == 0, r.stderr
    # ∂L/∂w₁ as the worked solution writes it in full (the key's order is the handout's)
    handout = (ROOT / "output" / "one-two-one.en.tex").read_text(encoding="utf-8")
    full = [ln for ln in handout.splitlines() if ln.startswith("\\frac{\\partial L}{\\partial w_{1}} &= ")]
    assert full and full[0].rstrip(" \\").split(" = ")[-1] in r.stdout
    assert r.stdout == docs("one-two-one", "en")[("key", "tex")]


# ---------------------------------------------------------------- build
def test_build_writes_a_sheet_and_a_key_for_every_problem(built):
    out = Path(built)
    manifest = (out / "derive-manifest.txt").read_text(encoding="utf-8")
    readme = (out / "README.md").read_text(encoding="utf-8")
    for pid in IDS:
        for lang in LANGS:
            for mode in xc.MODES:
                for fmt in ("md", "tex"):
                    name = f"exercises/{xc.file_name(pid, lang, mode, fmt)}"
                    text = (out / name).read_text(encoding="utf-8")
                    assert text == docs(pid, lang)[(mode, fmt)], name
                    assert f"  {name}\n" in manifest
                    assert f"({name})" in readme


# ---------------------------------------------------------------- LaTeX
# (compiled by the session's `latexmk` fixture, tests/conftest.py: a sheet or key here is the text
# of output/exercises/, so tests/test_render.py's blank-page check reads the same compilation)
def pdf_pages(pdf: Path) -> int:
    if not pdf.exists():
        return 0
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return int(re.search(r"Pages:\s+(\d+)", info).group(1)) if "Pages" in info else 0


def compiled_job(latexmk, job) -> tuple[str, int, str, list]:
    """(the log, the number of pages, the text of the last page, the text of every page) of a
    sheet or key of JOBS, from the session's compilation."""
    log, pdf, _ = latexmk(docs(job[0], job[1])[(job[2], "tex")], job[3])
    pages = pdf_pages(pdf)
    every = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                           text=True).stdout.split("\f")[:pages] if pages else []
    return log, pages, (every[-1] if every else ""), every


JOBS = [(pid, lang, mode, "xelatex") for pid in IDS for lang in LANGS for mode in xc.MODES] + \
       [(pid, "en", mode, "pdflatex") for pid in IDS for mode in xc.MODES]


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
@pytest.mark.parametrize("job", JOBS, ids=lambda j: "-".join(j))
def test_sheets_and_keys_compile_without_overfull_boxes(latexmk, job):
    if not (HAVE_XELATEX if job[3] == "xelatex" else HAVE_PDFLATEX):
        pytest.skip(f"{job[3]} not installed")
    log, pdf, _ = latexmk(docs(job[0], job[1])[(job[2], "tex")], job[3])
    pages = pdf_pages(pdf)
    assert log and re.search(r"Output written on h\.(pdf|xdv)", log), f"{job}: no output"
    assert not [ln for ln in log.splitlines() if ln.startswith("!")], job
    assert "Missing character" not in log, f"{job}: a glyph is missing"
    over = [float(v) for v in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert not [v for v in over if v > 1.0], f"{job}: overfull lines {over}"
    assert 1 <= pages <= 5, f"{job}: {pages} pages"


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
@pytest.mark.parametrize("job", JOBS, ids=lambda j: "-".join(j))
def test_no_answer_row_alone_on_the_last_page(latexmk, job):
    """house-price.zh's sheet once ended with one table row alone on its last page.  The last
    page holds no answer row, or at least two, or a whole table (its header with it)."""
    if not (HAVE_XELATEX if job[3] == "xelatex" else HAVE_PDFLATEX):
        pytest.skip(f"{job[3]} not installed")
    _log, pdf, _ = latexmk(docs(job[0], job[1])[(job[2], "tex")], job[3])
    pages = pdf_pages(pdf)
    last = subprocess.run(["pdftotext", "-layout", "-f", str(pages), "-l", str(pages), str(pdf), "-"],
                          capture_output=True, text=True).stdout if pages else ""
    lines = last.splitlines()
    rows = [ln for ln in lines if re.match(r"\s*\d+\s+\S", ln)]    # a row starts with its number
    header = any(x in last for x in ("No.", "序号"))
    assert len(rows) != 1 or header, (job, pages, rows)


# ---------------------------------------------------------------- how full a page is
MOSTLY_EMPTY = 0.25     # a page before the last may leave at most this share of its text block empty


def page_empty_shares(pdf: Path, margin_pt: float) -> list:
    """For each page of a PDF, the share of its text block (the page less `margin_pt` on each side)
    below the lowest ink in it: the page drawn by pdftoppm at 72 dpi (one pixel a point, grey), the
    lowest pixel row above the text block's bottom with a dark pixel.  Ink, not text: an answer
    line and a table's bottom rule count, and the page number in the bottom margin does not."""
    shares = []
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["pdftoppm", "-gray", "-r", "72", str(pdf), f"{d}/p"], check=True, timeout=120)
        for f in sorted(Path(d).iterdir(), key=lambda f: int(re.search(r"(\d+)\.pgm$", f.name).group(1))):
            magic, size, _maxval, pix = f.read_bytes().split(b"\n", 3)
            assert magic == b"P5", f
            w, h = (int(v) for v in size.split())
            scale = h / 841.89                      # pixels per point (A4 is 841.89 pt tall)
            top, bottom = margin_pt * scale, h - margin_pt * scale
            inked = [y for y in range(int(bottom)) if min(pix[y * w:(y + 1) * w]) < 128]
            low = inked[-1] + 1 if inked else top
            shares.append(max(0.0, (bottom - low) / (bottom - top)))
    return shares


def text_margin_pt(tex: str) -> float:
    """The page margin of a sheet or key, in points, from its geometry package options."""
    cm = float(re.search(r"\\usepackage\[margin=([\d.]+)cm\]\{geometry\}", tex).group(1))
    return cm / 2.54 * 72                               # PostScript points (bp), pdftoppm's at 72 dpi


@pytest.mark.tex
def test_the_page_fill_measure(tmp_path):
    """The measure itself, on PDFs made here: a page half full reads about half empty, a full one
    nearly 0, a blank one 1 (pages drawn with pdfLaTeX's own primitives, no packages)."""
    if not (shutil.which("pdftex") and shutil.which("pdftoppm")):
        pytest.skip("pdftex or pdftoppm not installed")
    tex = (r"\pdfpagewidth=595.28bp \pdfpageheight=841.89bp \pdfhorigin=0pt "
           r"\pdfvorigin=0pt \hsize=595.28bp \vsize=841.89bp \parindent=0pt \topskip=0pt \nopagenumbers "
           r"\vbox to 841.89bp{\vskip 62.36bp\hrule height 360bp width 100bp\vss}\vfill\eject "
           r"\vbox to 841.89bp{\vskip 62.36bp\hrule height 717bp width 100bp\vss}\vfill\eject "
           r"\null\vfill\eject\end")
    (tmp_path / "m.tex").write_text(tex)
    subprocess.run(["pdftex", "-interaction=nonstopmode", "m.tex"], cwd=tmp_path, capture_output=True, timeout=120)
    half, full, blank = page_empty_shares(tmp_path / "m.pdf", 62.36)
    assert abs(half - (717 - 360) / 717) < 0.01 and full < 0.01 and blank == 1.0, (half, full, blank)
    assert abs(text_margin_pt(r"\usepackage[margin=2.2cm]{geometry}") - 62.36) < 0.01


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX or not shutil.which("pdftoppm"),
                    reason="xelatex/latexmk or pdftoppm not installed (CI installs TeX Live; see .ci/run)")
@pytest.mark.parametrize("job", JOBS, ids=lambda j: "-".join(j))
def test_no_page_but_the_last_is_mostly_empty(latexmk, job):
    """sigmoid-2-4-2's sheet and matrix-linear's Chinese key left a quarter or more of page 2 empty:
    the next table, kept whole or kept with its first three rows, went to page 3.  No page of a
    sheet or key but the last leaves more than MOSTLY_EMPTY of its text block empty (the ink of
    the page, the answer lines and rules with it)."""
    if not (HAVE_XELATEX if job[3] == "xelatex" else HAVE_PDFLATEX):
        pytest.skip(f"{job[3]} not installed")
    tex = docs(job[0], job[1])[(job[2], "tex")]
    _log, pdf, _ = latexmk(tex, job[3])
    shares = page_empty_shares(pdf, text_margin_pt(tex))
    assert shares, job
    assert all(s <= MOSTLY_EMPTY for s in shares[:-1]), (job, [round(100 * s) for s in shares])


def test_a_key_writes_its_small_values_in_one_notation():
    """When a key's table has a value in m × 10ⁿ form, its other values below 10⁻³ are written so
    too, with the same digits (sigmoid-2-4-2 had −0.0001117 beside −5.499 × 10⁻⁸)."""
    row = lambda text: SimpleNamespace(text=text, value=pr.number(text))  # noqa: E731
    md = (Path(__file__).resolve().parent.parent / "output" / "exercises" / "sigmoid-2-4-2.key.en.md").read_text()
    cells = re.findall(r"\| \$`(-?[0-9.]+(?: \\times 10\^\{-?\d+\})?)`\$ \|", md)
    assert any("\\times" in c for c in cells)
    plain_small = [c for c in cells if "\\times" not in c and 0 < abs(decimal.Decimal(c)) < decimal.Decimal("0.001")]
    assert not plain_small, plain_small
    assert "-1.117 \\times 10^{-4}" in md and "-5.499 \\times 10^{-8}" in md
    # a table without any m × 10ⁿ value keeps its decimals (0.0004568 stays in such a table)
    plain = [row("0.0004568"), row("0.5")]
    assert xc.one_notation(plain) == plain


# ---------------------------------------------------------------- the review of the sheets' pages
def _matrix_entries_asked(pid) -> list:
    """The asked quantities that are entries of a matrix (two dimensions above 1), from the spec's
    shapes: (name, flat index)."""
    p = problem(pid)
    if p.is_symbolic:
        return []
    shapes = p.program.shapes
    return [(a.query[1], a.query[2]) for g in xc.sheet_context(p, lang="en")["groups"] for a in g.rows
            if len(shapes.get(a.query[1], ())) == 2 and min(shapes[a.query[1]]) > 1]


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_a_sheet_that_asks_for_a_matrix_entry_says_how_one_is_written(pid, lang):
    """linear-2x asked for H₁₁ and W_{hidden,42} and never said what the indices mean: a sheet that
    asks for an entry of a matrix says A_ij is row i, column j (and, when a matrix's name has a
    subscript of its own, how its entries read: W_{1,ij}); one that asks for none says nothing."""
    md = docs(pid, lang)[("exercise", "md")]
    row_col = {"en": "is the entry in row", "zh": "行、第"}[lang]
    asked = _matrix_entries_asked(pid)
    assert (row_col in md) == bool(asked), pid
    names = pr.display_names(problem(pid).spec, xc.SheetBuilder(problem(pid), lang=lang, digits=4,
                                                                 only=None).quantities)
    subscripted = [names[n] for n, _ in asked if re.fullmatch(r".+_\{[^{}]*(\{[^{}]*\})?[^{}]*\}", names[n])]
    if subscripted:
        first = subscripted[0]
        assert re.sub(r"\}$", ",ij}", first) in md, (pid, first)
    for tex in (docs(pid, lang)[("exercise", "tex")], docs(pid, lang)[("key", "tex")]):
        assert (row_col in tex) == bool(asked)


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_a_power_of_a_vector_is_said_to_be_taken_entry_by_entry(pid, lang):
    """linear-2x's loss ½ Σ (y_t − y_m)² squares a vector, and its sheet never said how (a square
    of a matrix may be read as a matrix product): a sheet whose model raises a vector or matrix to
    a power says, beside the other notation, that the power is taken entry by entry, and defines
    the entries it names.  matrix-linear's ½ ‖D‖²_F squares a number (the norm), the networks of
    scalars square numbers: their sheets say nothing of it."""
    vector_powers = {"linear-2x", "relu-2-4-2", "sigmoid-2-4-2"}
    phrase = {"en": "A power of a vector or matrix is taken entry by entry", "zh": "向量或矩阵的幂按元素逐个计算"}[lang]
    entries = {"en": "are its entries", "zh": "是它的各个元素"}[lang]
    for mode in xc.MODES:
        for fmt in ("md", "tex"):
            text = docs(pid, lang)[(mode, fmt)]
            assert (phrase in text) == (pid in vector_powers), (pid, mode, fmt)
            if pid in vector_powers:
                after = text.split(phrase, 1)[1]
                assert re.match(r"[:：] ?\$`?\(v\^\{2\}\)_\{i\} = v_\{i\}\^\{2\}`?\$", after), (pid, after[:60])
                assert text.index(entries) < text.index(phrase)
    if pid in vector_powers:            # the model does square a vector: its definitions print (…)²
        md = docs(pid, lang)[("exercise", "md")]
        assert re.search(r"\\right\)\^\{2\}", md.split("```math", 1)[1].split("```", 1)[0])


def test_the_loss_that_looks_unchanged_is_noted_with_its_change():
    """house-price's key printed L = 9.000 × 10¹⁰ and L⁽¹⁾ = 9.000 × 10¹⁰ with no word: the note
    below the table now gives ΔL = L⁽¹⁾ − L, checked against tests/reference.py."""
    digits = xc.DEFAULT_ANSWER_DIGITS
    for pid in REFERENCE:
        ctx = key(pid)
        by_kind = {a.query[0]: a for a in rows(ctx)}
        if "after" not in by_kind:
            continue
        spec = problem(pid).spec
        with mpmath.workdps(60):
            before = reference.loss_value(pid)
            after = reference.loss_after_one_step(pid, list(spec.update))
        same = rounded(before, digits) == rounded(after, digits)
        for lang in LANGS:
            for fmt in ("md", "tex"):
                text = docs(pid, lang)[("key", fmt)]
                n = by_kind["after"].n
                phrase = {"en": f"row {n}: the loss", "zh": f"第 {n} 行：更新后的损失"}[lang]
                assert (phrase in text) == same, (pid, lang, fmt)
                if same:
                    m = re.search(re.escape(phrase) + r".*?= (-?[\d.]+(?: \\times 10\^\{-?\d+\})?)`?\$", text)
                    assert latex_number(m.group(1)) == rounded(after - before, digits), (pid, m.group(1))
    assert "the loss $L^{(1)}$" in docs("house-price", "en")[("key", "tex")]


def test_a_short_exact_value_is_also_given_exactly():
    """linear-2x's E is exactly 2792.5; its key showed only 2793, contradicting a student who gives
    the exact value (which the sheet allows): now '2793 (exactly 2792.5)'.  Every exact value given
    is the independent value, and only short ones are given (a long decimal is not)."""
    with mpmath.workdps(60):
        assert reference.loss_value("linear-2x") == mpmath.mpf("2792.5")
    tex = docs("linear-2x", "en")[("key", "tex")]
    assert "E = & \\answerstrut$2793$ {\\small(exactly $2792.5$)}" in tex
    assert "（精确值为 $`2792.5`$）" in docs("linear-2x", "zh")[("key", "md")]
    seen = 0
    for pid in REFERENCE:
        for a in rows(key(pid)):
            if a.exact:
                seen += 1
                exact = decimal.Decimal(a.exact.replace("{,}", ""))
                assert len(exact.normalize().as_tuple().digits) <= xc.DEFAULT_ANSWER_DIGITS + xc.SHORT_EXACT
                assert exact != decimal.Decimal(a.text)
                assert_rounded(a.text, mpmath.mpf(str(exact)), xc.DEFAULT_ANSWER_DIGITS, (pid, a.query))
                if a.query[0] == "loss":
                    with mpmath.workdps(60):
                        assert mpmath.mpf(str(exact)) == reference.loss_value(pid)
    assert seen
    assert "(exactly" not in docs("linear-2x", "en")[("exercise", "tex")]


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_the_update_rule_is_stated_only_when_updates_are_asked_and_every_row_has_its_equals(pid, lang):
    """one-two-one's sheet defined η and the update rule, and asked for no update; its table had no
    '=' after each quantity, unlike every other."""
    ctx = xc.sheet_context(problem(pid), lang=lang)
    stepped = any(g.kind == "update" for g in ctx["groups"])
    for fmt in ("md", "tex"):
        text = docs(pid, lang)[("exercise", fmt)].split("\\begin{document}")[-1]
        assert ("\\eta" in text) == stepped, (pid, fmt)
    tex = docs(pid, lang)[("exercise", "tex")]
    n = len(rows(ctx))
    found = re.findall(r"(?m)(?:^|\\nopagebreak|\\hline|& )(\d+) & (.+?) (=?) & ", tex)
    got = {int(k): eq for k, _sym, eq in found if 1 <= int(k) <= n}
    assert sorted(got) == list(range(1, n + 1)), pid
    assert set(got.values()) == {"="}, pid


@pytest.mark.parametrize("pid", IDS)
def test_the_parameters_heading_has_space_above_it(pid):
    """'Parameters (initial values)' sat right under the Data table's bottom rule."""
    tex = docs(pid, "en")[("exercise", "tex")]
    if "\\textbf{Data}" in tex and "\\textbf{Parameters (initial values)}" in tex:
        between = tex.split("\\textbf{Data}")[1].split("\\textbf{Parameters (initial values)}")[0]
        assert between.rstrip().endswith("\\bigskip"), pid


@pytest.mark.parametrize("pid", IDS)
def test_bias_labels_are_drawn_after_the_arrows(pid):
    """house-price's w₄ arrow ran over the '+b₁ + b₄' label written under h₁: the arrows were drawn
    after the nodes and their labels.  In every diagram (sheets and worked solutions) the bias
    labels come after the last arrow, so they are painted on top."""
    texts = [docs(pid, "en")[("exercise", "tex")],
             (ROOT / "output" / f"{pid}.en.tex").read_text(encoding="utf-8")
             if (ROOT / "output" / f"{pid}.en.tex").exists() else ""]
    for tex in texts:
        if "\\begin{tikzpicture}" not in tex:
            continue
        pic = tex.split("\\begin{tikzpicture}")[1].split("\\end{tikzpicture}")[0]
        assert "label={[biaslabel]" not in pic
        biases = [m.start() for m in re.finditer(r"\\node\[biaslabel", pic)]
        draws = [m.start() for m in re.finditer(r"\\draw\[", pic)]
        if biases and draws:
            assert min(biases) > max(draws), pid
    if pid == "house-price":          # over h₁ since the w₄ arrow ran into it under h₁ (tests/test_diagram.py)
        assert re.search(r"\\node\[biaslabel, anchor=(north|south)\] at \((\[[^\]]*\])?n\d+\.(south|north)\) "
                         r"\{\$\+ b_\{1\} \+ b_\{4\}\$\}", texts[0])


ROW_LINE = re.compile(r"\s*\d+\s+\S")       # a line of an answer table starts with its row's number


def _tables(job, every) -> tuple:
    """(heading page of each table, the pages of its rows; the page of the heading 'What to
    compute') from the text of every page of a compiled sheet or key."""
    x = xc.exercise_strings(xc.environment("md"), "md", job[1])[2]
    headings = {x("group_" + k) for k in ("forward", "gradient", "update", "formula")}
    tables, tasks = [], None
    for p, text in enumerate(every):
        for line in text.splitlines():
            if line.strip() in headings:
                tables.append((p, []))
            elif line.strip().endswith(x("h_tasks")) and tasks is None:
                tasks = p
            elif tables and ROW_LINE.match(line):
                tables[-1][1].append(p)
    return tables, tasks


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
@pytest.mark.parametrize("job", JOBS, ids=lambda j: "-".join(j))
def test_tables_start_with_their_heading_and_split_with_three_rows_before_the_break_two_after(latexmk, job):
    """alice's and softmax-3's 'After the step' table had 2 rows at the bottom of a page and 3 on
    the next; linear-2x's '3 What to compute' and its paragraph ended a page without the table.  A
    table that breaks has at least three rows at the foot of its first page and two at the top of
    its last (so a table of SHORT_ROWS = 4 rows or fewer is on one page; until this round any of
    six rows or fewer was kept whole, and one of five moving whole left a quarter of a page empty:
    matrix-linear's Chinese key, see test_no_page_but_the_last_is_mostly_empty); a table's heading
    and 'What to compute' are on the page of its first row."""
    if not (HAVE_XELATEX if job[3] == "xelatex" else HAVE_PDFLATEX):
        pytest.skip(f"{job[3]} not installed")
    assert (xc.FIRST_ROWS, xc.LAST_ROWS, xc.SHORT_ROWS) == (3, 2, 4)
    _log, _pages, _last, every = compiled_job(latexmk, job)
    tables, tasks = _tables(job, every)
    assert tables and all(t[1] for t in tables), job
    for head, pages in tables:
        assert head == pages[0], (job, head, pages)
        counts = [pages.count(p) for p in sorted(set(pages))]
        if len(pages) <= 4:
            assert len(counts) == 1, (job, counts)
        elif len(counts) > 1:
            assert counts[0] >= 3 and counts[-1] >= 2, (job, counts)
    assert tasks == tables[0][0], (job, tasks, tables[0][0])


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
@pytest.mark.parametrize("job", [j for j in JOBS if j[2] == "key"], ids=lambda j: "-".join(j))
def test_the_unchanged_note_starts_on_the_page_of_its_list(latexmk, job):
    """sigmoid-2-4-2's key had 'Some updated values look unchanged …' alone at the bottom of a page,
    its list on the next."""
    if not (HAVE_XELATEX if job[3] == "xelatex" else HAVE_PDFLATEX):
        pytest.skip(f"{job[3]} not installed")
    lead = {"en": "look unchanged", "zh": "看起来没有变化"}[job[1]]
    item = {"en": r"•\s+row \d+", "zh": r"•\s+第 \d+ 行"}[job[1]]
    for text in compiled_job(latexmk, job)[3]:
        if lead in text:
            assert re.search(item, text.split(lead, 1)[1]), job


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
@pytest.mark.parametrize("job", JOBS, ids=lambda j: "-".join(j))
def test_the_generated_by_line_is_above_the_page_number(latexmk, job):
    """The 'Generated by derive …' line sat below the page number of the last page (in the bottom
    margin): it is the last line of the text body, the page number below it."""
    if not (HAVE_XELATEX if job[3] == "xelatex" else HAVE_PDFLATEX):
        pytest.skip(f"{job[3]} not installed")
    _log, pages, last, _every = compiled_job(latexmk, job)
    lines = [ln.strip() for ln in last.splitlines() if ln.strip()]
    assert lines[-1] == str(pages), (job, lines[-3:])
    assert "derive" in lines[-2], (job, lines[-3:])

"""Moodle XML of an exercise bank (derive/moodle.py): parsed with xml.etree — the quiz's structure,
fractions from Moodle's allowed list, the correct answer ± tolerance containing the true value
(computed independently, in mpmath, from the variant's spec file) and excluding every listed
mistake, mistakes named in the quiz's language, cloze escaping."""
from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from decimal import Decimal

import mpmath
import pytest

import derive
from derive import moodle, variants as vr
from derive.htmlpage import solution_fragment
from derive.solve import Problem
from derive.verdicts import DIAGNOSIS_NAMES
from conftest import run_cli
from test_variants import reference_answers

ALLOWED = {"100", "90", "83.33333", "80", "75", "70", "66.66667", "60", "50", "40", "33.33333", "30", "25",
           "20", "16.66667", "14.28571", "12.5", "11.11111", "10", "5", "0"}
DIGITS = 4
N = 3


@pytest.fixture(scope="module")
def bank():
    return vr.draw(derive.load("two-two-two"), N, 21)


@pytest.fixture(scope="module")
def refs(bank, tmp_path_factory):
    d = tmp_path_factory.mktemp("bank")
    for name, data in vr.bank_files(bank, lang="en").items():
        (d / name).write_bytes(data)
    return [reference_answers(d / f"{vp.spec.id}.toml") for vp in bank.variants]


def split_unescaped(text: str, sep: str) -> list:
    out, cur, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur += text[i:i + 2]
            i += 2
            continue
        if ch == sep:
            out.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    return out + [cur]


def unescape(text: str) -> str:
    out, i = "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out += text[i + 1]
            i += 2
        else:
            out += text[i]
            i += 1
    return out


def parse_blanks(question_html: str) -> list:
    """[[(fraction, value, tolerance, feedback)]] of every {1:NUMERICAL:…} blank, in order."""
    text = html.unescape(question_html)
    blanks, start = [], 0
    while True:
        i = text.find("{1:NUMERICAL:", start)
        if i < 0:
            return blanks
        j = i + len("{1:NUMERICAL:")
        k = j
        while text[k] != "}":
            k += 2 if text[k] == "\\" else 1
        choices = []
        for part in split_unescaped(text[j:k], "~"):
            if part.startswith("="):
                frac, rest = "100", part[1:]
            else:
                assert part.startswith("%")
                frac, rest = part[1:].split("%", 1)
            head, feedback = split_unescaped(rest, "#")
            value, tol = head.split(":")
            choices.append((frac, Decimal(value), Decimal(tol), unescape(feedback)))
        blanks.append(choices)
        start = k + 1


def _tol(x, d=DIGITS) -> Decimal:
    e = int(mpmath.floor(mpmath.log10(abs(x))))
    return Decimal(5).scaleb(e - d)


def _check_answers(choices, truth, where):
    assert choices[0][0] == "100", where
    c, tol = choices[0][1], choices[0][2]
    assert tol == _tol(truth), where                         # ½·10^(⌊log₁₀|x|⌋−d+1)
    t = Decimal(mpmath.nstr(truth, 40, strip_zeros=False, min_fixed=-100, max_fixed=100))
    assert c - tol <= t <= c + tol, where                    # the truth is right
    wrong = [v for f, v, _t, _fb in choices[1:]]
    assert all(f in ALLOWED for f, *_ in choices), where
    assert all(f == "0" for f, *_ in choices[1:]), where
    assert len(set(wrong)) == len(wrong), where              # coinciding mistakes are merged
    for v in wrong:
        assert not (c - tol <= v <= c + tol), (where, v)     # no mistake is accepted as right


def test_cloze_quiz(bank, refs):
    root = ET.fromstring(moodle.quiz(bank, lang="en"))
    assert root.tag == "quiz"
    qs = root.findall("question")
    assert qs[0].get("type") == "category"
    assert qs[0].findtext("category/text") == "$course$/top/derive/two-two-two"
    cloze = qs[1:]
    assert len(cloze) == N and all(q.get("type") == "cloze" for q in cloze)
    factor2 = DIAGNOSIS_NAMES["en"]["factor-2"]
    sign = DIAGNOSIS_NAMES["en"]["sign-flip"]
    ascents = 0
    for n, (q, vp, ref) in enumerate(zip(cloze, bank.variants, refs), 1):
        assert q.findtext("name/text") == f"two-two-two, variant {n}"
        assert q.find("questiontext").get("format") == "html"
        text = q.findtext("questiontext/text")
        assert "\\(" in text and "\\[" in text and "$" not in text
        assert q.find("answer") is None                       # cloze: the answers are in the text
        blanks = parse_blanks(text)
        asked = vr.asked(vp, DIGITS)
        assert len(blanks) == len(asked) == 28
        for (quantity, _flat, _row), choices in zip(asked, blanks):
            truth = ref[quantity]
            _check_answers(choices, truth, (vp.spec.id, quantity))
            by_value = {v: fb for _f, v, _t, fb in choices[1:]}
            double = Decimal(mpmath.nstr(2 * truth, DIGITS, strip_zeros=False, min_fixed=-100, max_fixed=100))
            assert factor2 in by_value[double], (quantity, by_value)
            minus = -choices[0][1]
            assert sign in by_value[minus], (quantity, by_value)
        # a gradient's wrong answers include a catalogued backprop mistake, not only transforms
        dw1 = blanks[[a[0] for a in asked].index("dE_total/dw1")]
        assert any(DIAGNOSIS_NAMES["en"]["missing-activation-derivative"] in fb for *_x, fb in dw1[1:])
        assert any(DIAGNOSIS_NAMES["en"]["used-preactivation"] in fb for *_x, fb in dw1[1:])
        for (quantity, _flat, _row), choices in zip(asked, blanks):   # p + η·∂L/∂p, where it shows
            if quantity.endswith("@1") and not quantity.startswith("E"):
                p = quantity[:-2]
                ascent = ref[quantity] + 2 * mpmath.mpf("0.1") * ref[f"dE_total/d{p}"]
                shown = Decimal(mpmath.nstr(ascent, DIGITS, strip_zeros=False, min_fixed=-100, max_fixed=100))
                if shown != choices[0][1]:
                    ascents += 1
                    fb = {v: fb for _f, v, _t, fb in choices[1:]}[shown]
                    assert DIAGNOSIS_NAMES["en"]["update-sign"] in fb, (quantity, fb)
        general = q.findtext("generalfeedback/text")
        assert blanks[0][0][1].to_eng_string() in general
    assert ascents > 0


def test_numerical_quiz_and_chinese(bank, refs):
    root = ET.fromstring(moodle.quiz(bank, lang="zh", style="numerical"))
    qs = root.findall("question")[1:]
    assert len(qs) == N * 28 and all(q.get("type") == "numerical" for q in qs)
    names = DIAGNOSIS_NAMES["zh"]
    seen_zh = False
    for i, q in enumerate(qs):
        vp, ref = bank.variants[i // 28], refs[i // 28]
        quantity = vr.asked(vp, DIGITS)[i % 28][0]
        assert q.findtext("name/text").endswith(quantity)
        answers = q.findall("answer")
        choices = [(a.get("fraction"), Decimal(a.findtext("text")), Decimal(a.findtext("tolerance")),
                    a.findtext("feedback/text")) for a in answers]
        _check_answers(choices, ref[quantity], (vp.spec.id, quantity))
        assert choices[0][3] == "正确。"
        seen_zh |= any(any(v in fb for v in names.values()) for *_x, fb in choices[1:])
        for tag in ("defaultgrade", "penalty", "hidden", "questiontext/text"):
            assert q.find(tag) is not None
    assert seen_zh


def test_cloze_escaping():
    assert moodle.cloze_escape("a}b#c~d\\e{") == "a\\}b\\#c\\~d\\\\e{"
    b = moodle.Blank("x", 0, "x", 1, (moodle.Choice("1.000", "0.0005", 100, "right # now"),
                                      moodle.Choice("2.000", "0.0005", 0, "2·x ~ {twice} \\ #2")))
    text = moodle.cloze_blank(b)
    assert text.startswith("{1:NUMERICAL:=1.000:0.0005#") and text.endswith("}")
    (parsed,) = parse_blanks(text)
    assert [(f, str(v), str(t), fb) for f, v, t, fb in parsed] == [
        ("100", "1.000", "0.0005", "right # now"), ("0", "2.000", "0.0005", "2·x ~ {twice} \\ #2")]


def test_tolerance_rule():
    from fractions import Fraction
    assert moodle.tolerance(Fraction("0.0281337"), 6) == Decimal("5E-8")
    assert moodle.tolerance(Fraction(120), 2) == Decimal("5")
    assert moodle.tolerance(Fraction("-0.999"), 3) == Decimal("0.0005")
    assert moodle.exponent(Fraction(1, 10)) == -1 and moodle.exponent(Fraction(99, 100)) == -1


def test_cli_moodle(tmp_path):
    r = run_cli("exercise", "two-two-two", "--variants", "2", "--seed", "4", "--format", "moodle",
                "--moodle", "numerical", "--answer-digits", "3", "--lang", "en", "-o", str(tmp_path / "q"))
    assert r.returncode == 0, r.stderr
    root = ET.parse(tmp_path / "q" / "two-two-two.moodle.en.xml").getroot()
    qs = root.findall("question")
    assert [q.get("type") for q in qs].count("numerical") == 2 * 28
    tol = Decimal(qs[1].find("answer/tolerance").text)
    value = Decimal(qs[1].find("answer/text").text)
    assert len(value.normalize().as_tuple().digits) <= 3 and tol == Decimal(5).scaleb(value.adjusted() - 3)
    assert (tmp_path / "q" / "two-two-two.variants.key.en.md").exists()


def test_readme_excerpt_is_what_derive_writes():
    """Every piece of the README's XML excerpt (split at …) is in output/'s quiz, which is what
    `derive exercise two-two-two --variants 5 --seed 7 --format moodle --lang en` writes."""
    from conftest import ROOT
    import re
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    excerpt = re.search(r"An excerpt of `output/exercises/two-two-two\.variants/two-two-two\.moodle\.en\.xml`"
                        r".*?```xml\n(.*?)```", readme, re.S).group(1)
    xml = (ROOT / "output/exercises/two-two-two.variants/two-two-two.moodle.en.xml").read_text(encoding="utf-8")
    assert xml.encode() == moodle.quiz(vr.draw(derive.load("two-two-two"), 5, 7), lang="en")
    pieces = [p.strip() for line in excerpt.splitlines() for p in line.split("…") if p.strip()]
    assert len(pieces) > 15 and any("{1:NUMERICAL:=0.002380:" in p for p in pieces)
    for p in pieces:
        assert p in xml, p


# ---------------------------------------------------------------- the fast path against the checker's
def test_tape_replays_are_the_engines_what_if_runs():
    from derive import bankruns as br, engine
    base = derive.load("two-two-two")
    frame = br.Frame(base, br.TAPE_VARIANTS)
    vp = vr.draw(base, 2, 8).variants[1]
    runs = br.Runs(frame, vp)
    worlds = [None] + [h.world for h in frame.hypotheses if h.world is not None]
    assert len(worlds) > 30
    for w in worlds:
        assert frame.tape(w, br.WORK_BITS) is not None, w
        replayed = runs.at(w)
        with engine.precision(br.WORK_BITS) as ctx:
            own = engine.run(vp.program, ctx, 1, w)
        for k in (0, 1):
            for table in ("values", "adjoints"):
                a, b = getattr(replayed.steps[k], table), getattr(own.steps[k], table)
                assert set(a) == set(b), (w, k, table)
                for n in b:
                    x, y = a[n].data, b[n].data
                    assert x.mid() == y.mid() and x.rad() == y.rad(), (w, k, table, n)


def _term_value(vp, feedback: str):
    """The exact value of a sign-flipped term's mistake, from the spec's numbers (SymPy, exactly)."""
    import re
    import sympy
    m = re.search(r"the term (.+) of (\w+) with the wrong sign", feedback)
    values = {n: sympy.Rational(str(v.entries[0])) for n, v in {**vp.spec.data, **vp.spec.parameters}.items()}
    defs = {d.name: d.text for d in vp.spec.forward}
    total = sympy.sympify(defs[m.group(2)]).subs(values)
    return total - 2 * sympy.sympify(m.group(1)).subs(values)


@pytest.mark.parametrize("n", [3, 12])       # the engine's own runs, and tapes
def test_fast_blanks_are_the_checkers_recomputations(n):
    from derive import exercise_context as xc
    bank = vr.draw(derive.load("two-two-two"), n, 21)
    assert (bank.frame.scalar is True) == (n >= 10)
    x = xc.exercise_strings(xc.environment("md"), "md", "en")[2]
    ties = 0
    for vp in bank.variants[:3] if n < 10 else bank.variants:
        fast = moodle.blanks(vp, DIGITS, "en", x, bank.frame)
        slow = moodle.blanks_recomputed(vp, DIGITS, "en", x)
        assert [b.quantity for b in fast] == [b.quantity for b in slow]
        for f, s in zip(fast, slow):
            assert abs(f.truth - s.truth) <= abs(s.truth) / 10 ** 50
            if f.choices == s.choices:
                continue
            # only a sign-flipped term at an exact tie differs: now rounded exactly, half away from 0
            assert [c.feedback for c in f.choices] == [c.feedback for c in s.choices]
            for cf, cs in zip(f.choices, s.choices):
                if cf != cs:
                    exact = _term_value(vp, cf.feedback)
                    assert Decimal(cf.value) == (Decimal(int(exact.p)) / Decimal(int(exact.q))).quantize(
                        Decimal(cf.value), rounding="ROUND_HALF_UP")
                    assert abs(Decimal(cs.value) - Decimal(cf.value)) == Decimal(cf.tolerance) * 2
                    ties += 1
    assert ties > 0 or n < 10


def test_same_seed_same_quiz_bytes_with_or_without_tapes():
    base = derive.load("two-two-two")
    small, large = vr.draw(base, 3, 5), vr.draw(base, 12, 5)
    assert small.frame.scalar is False and large.frame.scalar is True
    a = ET.fromstring(moodle.quiz(small, lang="en")).findall("question")
    b = ET.fromstring(moodle.quiz(large, lang="en")).findall("question")
    assert [ET.tostring(q).strip() for q in a] == [ET.tostring(q).strip() for q in b[:4]]
    assert moodle.quiz(small, lang="en") == moodle.quiz(vr.draw(base, 3, 5), lang="en")


def test_diagram_embedded_and_worked_solution_as_feedback(bank):
    import base64
    for style in ("cloze", "numerical"):
        root = ET.fromstring(moodle.quiz(bank, lang="en", style=style))
        qs = root.findall("question")[1:]
        assert qs
        for q in qs:
            for part in (q.find("questiontext"), q.find("generalfeedback")):
                assert f'src="@@PLUGINFILE@@/{moodle.DIAGRAM}"' in part.findtext("text")
                files = part.findall("file")
                assert [(f.get("name"), f.get("encoding"), f.get("path")) for f in files] == [
                    (moodle.DIAGRAM, "base64", "/")]
                svg = ET.fromstring(base64.b64decode(files[0].text, validate=True))
                assert svg.tag == "{http://www.w3.org/2000/svg}svg"
                assert any(el.tag.endswith("text") and (el.text or "").strip() for el in svg.iter())   # labelled
            general = q.find("generalfeedback")
            assert general.get("format") == "html"
            text = general.findtext("text")
            assert 'class="derive-solution"' in text                   # the variant's worked solution
            assert "$" not in text and "\\(" in text and "\\[" in text
            assert text.count("\\(") == text.count("\\)") and text.count("\\[") == text.count("\\]")
            assert "<svg" not in text                                  # the diagram is the feedback's file
            assert text.count(f"@@PLUGINFILE@@/{moodle.DIAGRAM}") == 1 and "<figure>\n<img " in text
    # each variant's own worked solution: its own numbers (net_h1 at the handout's 6 digits)
    root = ET.fromstring(moodle.quiz(bank, lang="en"))
    for q, vp in zip(root.findall("question")[1:], bank.variants):
        net = vp.eval("net_h1", digits=6)[0].values[0].text
        assert net in q.findtext("generalfeedback/text"), (vp.spec.id, net)


def test_feedback_by_workers_is_the_same():
    """The quiz of a bank of PARALLEL variants is worked out by worker processes (each variant's
    questions, its worked solution in their general feedback): that worked solution is the one
    the variant's own solution_fragment gives in this process."""
    bank = vr.draw(derive.load("two-two-two"), moodle.PARALLEL, 3)
    other = vr.draw(derive.load("two-two-two"), moodle.PARALLEL, 3)      # drawn again: no shared caches
    serial = [solution_fragment(vp, lang="zh", diagram=False, heading=4) for vp in other.variants]
    alt = vr.document_strings(other, "md", "zh", None)[3]("moodle_diagram_alt")
    questions = ET.fromstring(moodle.quiz(bank, lang="zh")).findall("question")[1:]
    assert len(questions) == len(serial)
    for q, fragment in zip(questions, serial):
        assert q.findtext("generalfeedback/text").endswith(moodle._solution_with_diagram(fragment, alt))


def _bank_bytes(bank, lang: str, style: str = "cloze") -> dict:
    return dict(vr.bank_files(bank, fmt="moodle", lang=lang, command="derive exercise t"),
                quiz=moodle.quiz(bank, lang=lang, style=style))


@pytest.mark.parametrize("n, seed, lang, style", [(moodle.PARALLEL, 1, "en", "cloze"), (4, 11, "zh", "numerical")])
def test_prepared_bank_is_byte_identical_to_the_plain_path(n, seed, lang, style):
    """Each variant's whole share worked out in worker processes (`moodle.prepare`, 2 and 3 of them)
    gives the bytes of the plain path (every file computed in this process, variant by variant, on
    a bank drawn on its own); and the prepared path is the one the files are read from."""
    plain = _bank_bytes(vr.draw(derive.load("two-two-two"), n, seed), lang, style)
    for jobs in (2, 3):
        bank = vr.draw(derive.load("two-two-two"), n, seed)
        moodle.prepare(bank, lang=lang, command="derive exercise t", style=style, jobs=jobs)
        memo = bank.frame.memo
        question = ("moodle", ("questions", style), lang, None)
        for i in range(n):
            # the quiz's questions (their blanks and worked solution inside) come from the workers
            questions = 1 if style == "cloze" else len(vr.asked(bank.variants[i], bank.digits))
            assert (*question, i) in memo and len(memo[(*question, i)]) == questions
            assert ("part", "md", lang, "key", None, i) in memo and ("files", "derive exercise t", i) in memo
        # what the files read is what prepare's workers sent: a changed text shows up in the bytes
        memo[("part", "md", lang, "key", None, 0)] += "CHANGED\n"
        last = memo[(*question, n - 1)]
        memo[(*question, n - 1)] = (*last[:-1], last[-1].replace(b"</question>", b"<!--CHANGED--></question>"))
        got = _bank_bytes(bank, lang, style)
        key = f"two-two-two.variants.key.{lang}.md"
        assert b"CHANGED" in got[key] and got["quiz"].count(b"<!--CHANGED--></question>\n</quiz>") == 1
        got[key] = got[key].replace(b"CHANGED\n", b"")
        got["quiz"] = got["quiz"].replace(b"<!--CHANGED-->", b"")
        assert got == plain


def test_prepared_feedback_is_each_variants_own_worked_solution():
    """The feedback worked out for a tape-replayed bank is that of each variant loaded as a problem of
    its own (its own graph and engine runs, no frame)."""
    bank = vr.draw(derive.load("two-two-two"), moodle.PARALLEL, 5)
    moodle.prepare(bank, lang="en", jobs=2)
    for i in (0, 4, moodle.PARALLEL - 1):
        own = Problem(bank.variants[i].spec)
        assert moodle.variant_fragment(bank, i, "en") == solution_fragment(own, lang="en", diagram=False, heading=4)


def test_a_large_bank_stops_its_workers_quietly(tmp_path):
    """The worker processes of a bank of PARALLEL variants end without a traceback (the pool's
    SIGTERM once stopped them through derive's own signal handler, each printing one)."""
    r = run_cli("exercise", "two-two-two", "--variants", moodle.PARALLEL, "--seed", 2, "--format", "moodle",
                "-o", tmp_path / "bank")
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [f"derive: {moodle.PARALLEL} variants drawn from seed 2, none rejected",
                                     f"derive: wrote {2 * moodle.PARALLEL + 4} files to {tmp_path / 'bank'}"]


SATURATING = """title = "r"
[data]
x = 12
y = 0.5
[parameters]
w = 0.5
b = 0.1
[forward]
h = "sigmoid(w*x + b)"
E = "1/2*(h - y)^2"
[train]
loss = "E"
learning_rate = 0.5
update = ["w", "b"]
"""


def _same_bank(got, plain) -> None:
    assert [vp.spec for vp in got.variants] == [vp.spec for vp in plain.variants]
    assert (got.draws, got.rejected, got.varied) == (plain.draws, plain.rejected, plain.varied)


@pytest.mark.parametrize("case", ["none rejected", "rejected", "same answers"])
def test_drawn_by_workers_is_the_plain_draw(case, tmp_path):
    """`moodle.draw_prepared` (draws judged and worked out by 2 worker processes, speculatively)
    gives the bank of `variants.draw` — the same variants, draws and rejections — and the bytes of
    the plain path; with draws rejected as saturated (19 of 34 for this seed) or as the same
    answers as an earlier variant, where the rest is drawn and worked out again."""
    path = tmp_path / "r.toml"
    path.write_text(SATURATING, encoding="utf-8")
    spec, n, seed, vary, reason = {
        "none rejected": ("two-two-two", moodle.PARALLEL, 4, None, None),
        "rejected": (str(path), 15, 2, "w,b,y", "saturated unit"),
        "same answers": (str(path.with_name("r8.toml")), 12, 1, "w,b", "same answers as an earlier variant"),
    }[case]
    path.with_name("r8.toml").write_text(SATURATING.replace("x = 12", "x = 8"), encoding="utf-8")
    plain = vr.draw(derive.load(spec), n, seed, vary=vary)
    assert [r for r, _c in plain.rejected] == ([reason] if reason else [])
    got = moodle.draw_prepared(derive.load(spec), n, seed, vary=vary, lang="en", command="derive exercise t", jobs=2)
    _same_bank(got, plain)
    memo = got.frame.memo
    assert all(("moodle", ("questions", "cloze"), "en", None, i) in memo for i in range(n))
    assert _bank_bytes(got, "en") == _bank_bytes(plain, "en")


def test_drawn_by_workers_when_a_share_fails(monkeypatch):
    """A variant whose share fails in the speculating workers is judged and worked out again by the
    plain path (which would report the error): the same bank and bytes."""
    real = moodle._variant_task.__call__

    def flaky(self, bank, i):
        if i == 3 and None in bank.variants:         # the speculating workers' bank only
            raise ValueError("only while speculating")
        return real(self, bank, i)

    monkeypatch.setattr(moodle._variant_task, "__call__", flaky)
    plain = vr.draw(derive.load("two-two-two"), moodle.PARALLEL, 6)
    got = moodle.draw_prepared(derive.load("two-two-two"), moodle.PARALLEL, 6, lang="zh", style="numerical",
                               command="derive exercise t", jobs=2)
    _same_bank(got, plain)
    assert _bank_bytes(got, "zh", "numerical") == _bank_bytes(plain, "zh", "numerical")

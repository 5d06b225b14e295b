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
    from conftest import ROOT
    import re
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blank = re.search(r"\{1:NUMERICAL:=0\.002380:[^\n]*?\}(?=&lt;/td&gt;)", readme).group(0)
    bank = vr.draw(derive.load("two-two-two"), 5, 7)
    xml = moodle.quiz(bank, lang="en").decode()
    assert blank in xml

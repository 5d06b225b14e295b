"""Worked solutions after a page-by-page review: what each handout states must be in it, from data.

The training samples of a small dataset are listed; every function a definition uses is defined in
Given (softmax, log, sum, the norms, ⊙); softmax-3's error signal states the one-hot step in words;
remarks of one kind are merged; percentages have three significant digits; rounded values take ≈.
"""
from __future__ import annotations

import re
import tomllib
from fractions import Fraction
from functools import lru_cache

import pytest

import derive
from derive import printer as pr
from derive import render
from derive.spec import builtin_ids

from conftest import ROOT


@lru_cache(maxsize=None)
def text(pid, fmt="md", lang="en"):
    p = derive.load(pid)
    return render.render_text(p, fmt=fmt, lang=lang, digits=10, solution=p.solve(digits=10))


def spec_toml(pid):
    return tomllib.loads((ROOT / "derive" / "problems" / f"{pid}.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("fmt,lang", [("md", "en"), ("md", "zh"), ("tex", "en"), ("tex", "zh")])
def test_small_dataset_is_listed_in_the_training_section(fmt, lang):
    data = spec_toml("alice")["dataset"]
    out = text("alice", fmt, lang)
    training = out.split("## 8." if fmt == "md" else "\\section{" + ("Training" if lang == "en" else "训练"), 1)[-1]
    cols = list(data)
    for i in range(len(data[cols[0]])):
        cells = [pr.fraction(Fraction(str(data[c][i]))) for c in cols]
        if fmt == "md":
            row = f"| {i + 1} |" + "".join(f" $`{v}`$ |" for v in cells)
        else:
            row = f"{i + 1}" + "".join(f" & ${v}$" for v in cells) + " \\\\"
        assert row in training, row
    assert "those listed in the problem." not in out


FUNCTION_WORDS = {"softmax": "\\operatorname{softmax}(z)_{i} = \\frac{e^{z_{i}}}{\\sum_{j} e^{z_{j}}}",
                  "log": "\\log z = \\ln z", "sum": "\\sum v = v_{1} + v_{2} + \\dots + v_{n}",
                  "frobenius": "\\right\\rVert_{F} = \\sqrt{", "mean": "\\operatorname{mean}(v) =",
                  "odot": "(a \\odot b)_{i} = a_{i} b_{i}"}


def _given(out):
    return out.split("\\section{", 3)[2] if "\\begin{document}" in out else out.split("\n## 2.", 1)[1].split("\n## 3.", 1)[0]


@pytest.mark.parametrize("pid", [p for p in builtin_ids() if not derive.load(p).is_symbolic])
def test_every_function_of_a_definition_is_defined_in_given(pid):
    forward = " ".join(spec_toml(pid)["forward"].values())
    used = {f for f in ("softmax", "sum", "mean", "frobenius") if re.search(rf"\b{f}\(", forward)}
    if re.search(r"\b(ln|log)\(", forward):
        used.add("log")
    for fmt in ("md", "tex"):
        given = _given(text(pid, fmt, "en"))
        for f in used:
            assert FUNCTION_WORDS[f] in given, (pid, f)


def test_softmax_error_signal_states_the_one_hot_step_in_words():
    for fmt, lang in (("md", "en"), ("tex", "en"), ("tex", "zh"), ("md", "zh")):
        out = text("softmax-3", fmt, lang)
        assert "overset" not in out and "\\operatorname{sum}" not in out
        assert "p \\cdot \\sum_{j} t_{j} - t = p - t" in out
        assert "\\sum_{j} t_{j} = 1" in out
        given = _given(out)
        assert FUNCTION_WORDS["odot"] in given     # ⊙ defined before the loss uses it


def test_a_target_outside_the_range_is_named_whole():
    y_t = spec_toml("sigmoid-2-4-2")["data"]["y_t"]
    assert all(v > 1 for v in y_t)          # every entry is outside (0, 1): the remark shows the vector
    vec = " \\\\ ".join(pr.fraction(Fraction(str(v))) for v in y_t)
    for lang in ("en", "zh"):
        out = text("sigmoid-2-4-2", "md", lang)
        assert f"y_{{t}} = \\begin{{pmatrix}} {vec} \\end{{pmatrix}}" in out


def test_no_ascii_punctuation_after_a_chinese_string():
    for fmt in ("md", "tex"):
        out = text("one-two-one", fmt, "zh")
        line = next(line for line in out.splitlines() if line.startswith("符号"))
        assert "）：" in line and line.endswith("。") and "): " not in line


def test_remarks_of_one_kind_are_one_remark_naming_every_quantity():
    from derive.handout import setting
    from derive.remarks import remarks
    p = derive.load("linear-2x")
    rs = remarks(setting(p, p.solve(digits=10), lang="en", only=None, mode="solution"))
    steps = [r for r in rs if r.kind.startswith("large_step")]
    assert len(steps) == 1
    # every entry whose change exceeds 10·max(|p|, 0.1), from the engine's exact values
    sol = p.solve(digits=10)
    expected = []
    for name in p.spec.update:
        q = p.graph.quantities[name]
        for e, b, a in zip(q.entries, sol.shaped(name, "value", 0).values, sol.shaped(name, "value", 1).values):
            if abs(a.approx - b.approx) > 10 * max(abs(b.approx), 0.1):
                expected.append(e)
    assert len(steps[0]["param"]) == len(expected) > 3
    for fmt in ("md", "tex"):
        assert text("house-price", fmt, "en").count("is saturated") == 0
        assert text("house-price", fmt, "en").count("are saturated") == 1


SIG = re.compile(r"(?:that is|即) \$`?([-\d.]+(?: \\times 10\^\{-?\d+\})?)`?\$ ?(?:percent|\\?%)")


@pytest.mark.parametrize("pid", ["house-price", "linear-2x", "alice", "sigmoid-2-4-2", "two-two-two"])
def test_percentages_have_three_significant_digits(pid):
    for fmt, lang in (("md", "en"), ("tex", "zh")):
        found = SIG.findall(text(pid, fmt, lang))
        assert found, pid
        for pct in found:
            mant = pct.split(" ")[0].lstrip("-").replace(".", "").lstrip("0")
            assert len(mant) <= 3, pct


def _rounded_after_equals(out: str) -> list:
    """'= value' in the forward passes and the update where the value shown has the handout's 6
    significant digits and the engine's exact value differs (so it should read ≈)."""
    bad = []
    for m in re.finditer(r"(?<![\\a-z])= ((?:\\begin\{pmatrix\}.*?\\end\{pmatrix\})|-?\d[\d.]*)", out):
        nums = re.findall(r"-?\d+\.\d+", m.group(1))
        if any(len(n.lstrip("-").replace(".", "").lstrip("0")) >= 6 and not n.endswith("0") for n in nums):
            bad.append(m.group(0)[:60])
    return bad


@pytest.mark.parametrize("pid", ["sigmoid-2-4-2", "alice", "house-price"])
def test_rounded_values_in_the_forward_passes_take_approx(pid):
    for lang in ("en", "zh"):
        out = text(pid, "tex", lang)
        body = out.split("\\begin{document}", 1)[1]
        sections = re.split(r"\\section\{", body)
        forward, after = sections[3], sections[7]       # forward pass; forward pass after the update
        update = sections[6]
        assert _rounded_after_equals(forward + update + after) == [], pid


# ---------------------------------------------------------------- the errata section does not leave a page blank
ERRATA_HEADINGS = {"en": "Errata", "zh": "原文勘误"}
LINE = 14.0                    # pt: one line of the body text, about


def _words(pdf):
    import subprocess
    xml = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, timeout=60).stdout
    pages = []
    for page in re.findall(r"<page width=\"([\d.]+)\" height=\"([\d.]+)\">(.*?)</page>", xml, flags=re.S):
        h = float(page[1])
        words = [(float(a), float(b), w) for a, b, w in
                 re.findall(r"<word xMin=\"[\d.]+\" yMin=\"([\d.]+)\" xMax=\"[\d.]+\" yMax=\"([\d.]+)\">(.*?)</word>",
                            page[2])]
        # the page number (digits alone at the bottom) and the footer are not body text
        words = [w for w in words if not (w[0] > 0.88 * h and (w[2].isdigit() or w[0] > 0.9 * h))
                 and "derive" not in w[2]]
        pages.append((h, words))
    return pages


@pytest.mark.tex
@pytest.mark.parametrize("pid,lang", [("alice", "zh"), ("linear-2x", "zh"), ("matrix-linear", "en"),
                                      ("sigmoid-2-4-2", "zh"), ("linear-2x", "en"), ("house-price", "en")])
def test_errata_section_does_not_move_whole_to_a_new_page(pid, lang, latexmk):
    """A heading block keeps only its first lines with it: when the errata section starts a page, the
    page before it had no room for its heading, intro and first three lines (~9 lines).  (The PDF
    of output/PID.LANG.tex is the session's compilation, by the `latexmk` fixture of
    tests/conftest.py, which tests/test_render.py's checks of the same handout read too.)"""
    import shutil
    if not (shutil.which("latexmk") and shutil.which("xelatex") and shutil.which("pdftotext")):
        pytest.skip("latexmk/xelatex/pdftotext not installed")
    pdf = latexmk((ROOT / "output" / f"{pid}.{lang}.tex").read_text(encoding="utf-8"), "xelatex").pdf
    assert pdf.is_file(), f"{pid}.{lang}: no PDF"
    pages = _words(pdf)
    bottom = max(max(w[1] for w in ws) for _, ws in pages if ws)
    heading = ERRATA_HEADINGS[lang]
    for i, (_h, ws) in enumerate(pages):
        hit = [w for w in ws if w[2] == heading or w[2].startswith(heading)]
        if hit and i > 0 and hit[0][0] <= min(w[0] for w in ws) + 1:        # the page starts with it
            prev_bottom = max(w[1] for w in pages[i - 1][1])
            assert bottom - prev_bottom < 8 * LINE, \
                f"{pid}.{lang}: errata moved to page {i + 1}, {bottom - prev_bottom:.0f} pt free on page {i}"


def test_errata_heading_keeps_only_its_first_lines_with_it():
    """\\needspace before the errata: the heading, its intro (≈ 5 lines) and at most 3 lines of the
    list — a list of more than 3 items in two columns — not the whole list (alice.zh's 6 items asked
    for 14 lines and moved the section whole)."""
    for pid in ("alice", "linear-2x", "sigmoid-2-4-2", "house-price", "two-two-two"):
        for lang in ("en", "zh"):
            tex = (ROOT / "output" / f"{pid}.{lang}.tex").read_text(encoding="utf-8")
            if "\\section{" + ("Errata" if lang == "en" else "原文勘误") not in tex:
                continue
            errata = tex.split("\\section{" + ("Errata" if lang == "en" else "原文勘误"), 1)[1].split("\\par\\nopagebreak", 1)[0]
            items = errata.count("\\item ")
            need = int(re.findall(r"\\needspace\{(\d+)\\baselineskip\}", tex.split("\\section{" + (
                "Errata" if lang == "en" else "原文勘误"), 1)[0])[-1])
            rows = -(-items // 2) if items > 3 else items
            assert ("\\begin{multicols}{2}" in errata) == (items > 3), (pid, lang)
            assert need <= 5 + (rows if rows < 6 else 3), (pid, lang, need, items)

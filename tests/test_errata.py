"""Errata to hand out and the checker's words: wrong claims first with the mistake in plain words,
rounding differences apart with the rounded chain that reproduces them, the claim table last and
within the page, Chinese names of the diagnoses, no English prose in any Chinese document."""
import json
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest

from conftest import ROOT, run_cli
from derive import spec as specmod
from derive.solve import load as load_problem
from derive.check import check_file
from derive.errata import Tex, message_pieces, note_pieces, safe_math
from derive.errors import DeriveError
from derive.hypotheses import DIAGNOSES
from derive.messages import readable_error
from derive.verdicts import DIAGNOSIS_NAMES, VERDICT_NAMES

OUTPUT = ROOT / "output"
PROBLEMS = ROOT / "derive" / "problems"
HAVE_XELATEX = shutil.which("xelatex") is not None and shutil.which("latexmk") is not None
CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")
TAGS = [t for t in DIAGNOSES if "-" in t]      # "arithmetic" is also an English word


# ---------------------------------------------------------------- names
def test_every_diagnosis_and_verdict_has_a_name_in_both_languages():
    for lang in ("en", "zh"):
        assert set(DIAGNOSIS_NAMES[lang]) == set(DIAGNOSES)
        assert set(VERDICT_NAMES[lang]) == {"correct", "rounding", "truncated", "wrong"}
    for name in list(DIAGNOSIS_NAMES["zh"].values()) + list(VERDICT_NAMES["zh"].values()):
        assert CJK.search(name) and not re.search(r"[A-Za-z]", name), name
    # every name is its own: no two tags read the same
    assert len(set(DIAGNOSIS_NAMES["zh"].values())) == len(DIAGNOSES)


def test_derive_check_speaks_chinese_without_tags_or_ascii_colons():
    _cf, results = check_file(str(PROBLEMS / "house-price.claims.toml"), lang="zh")
    for r in results:
        assert not any(tag in r.message for tag in DIAGNOSES), r.message      # not even "arithmetic"
        assert "声明" not in r.message
        assert not re.search(r"[\u4e00-\u9fff][:;,()]", r.message), r.message
    r = next(r for r in results if r.diagnosis == "used-preactivation")
    assert "可由这个错误重现" in r.message
    # English: the tag is not echoed ("wrong (used-preactivation): … explained by used-preactivation")
    _cf, en = check_file(str(PROBLEMS / "house-price.claims.toml"))
    assert not any(tag in r.message for r in en for tag in TAGS)


def test_matrix_product_errors_name_the_matrix_product_not_python():
    err = "shape mismatch in '@': a 2×4 matrix @ a 2×4 matrix (4 columns against 2 rows)"
    en, zh = readable_error(err, "en"), readable_error(err, "zh")
    assert "@" not in en and "@" not in zh
    assert en == "the matrix product of a 2×4 matrix and a 2×4 matrix is undefined (4 columns against 2 rows)"
    assert zh == "2×4 矩阵与 2×4 矩阵的矩阵乘积无定义（4 列对 2 行）"


# ---------------------------------------------------------------- the rounded chain
def _sig(x, n):
    """x rounded to n significant digits, half away from zero (an independent rounding)."""
    x = mpmath.mpf(x)
    if x == 0:
        return mpmath.mpf(0)
    e = int(mpmath.floor(mpmath.log10(abs(x)))) - n + 1
    q = mpmath.mpf(10) ** e
    k = mpmath.floor(abs(x) / q + mpmath.mpf(1) / 2)
    return mpmath.sign(x) * k * q


def test_rounding_verdict_shows_the_rounded_chain_that_reproduces_the_claim():
    """alice's ∂L/∂y_pred = −0.952: the true value rounds to −0.953; a hand calculation that rounds
    every value to 3 digits gives −0.952.  The chain is recomputed here by hand (mpmath)."""
    mpmath.mp.dps = 40
    sig = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731
    x1, x2, y = -2, -1, 1
    s1 = _sig(1 * x1 + 1 * x2 + 0, 3)
    h1 = _sig(sig(s1), 3)
    s2 = _sig(1 * x1 + 1 * x2 + 0, 3)
    h2 = _sig(sig(s2), 3)
    so = _sig(h1 + h2, 3)
    o1 = _sig(sig(so), 3)
    expect = {"sum_h1": s1, "h1": h1, "sum_h2": s2, "h2": h2, "sum_o1": so, "o1": o1, "y_pred": o1}
    close = lambda a, b: abs(mpmath.mpf(a) - mpmath.mpf(b)) < mpmath.mpf(10) ** -30  # noqa: E731
    assert close(_sig(-2 * (y - o1), 3), "-0.952")
    assert close(_sig(-2 * (y - sig(2 * sig(-3))), 3), "-0.953")   # the true value
    r = subprocess.run([sys.executable, "-m", "derive", "check", str(PROBLEMS / "alice.claims.toml"), "--json"],
                       capture_output=True, text=True, cwd=ROOT)
    data = json.loads(r.stdout)
    claim = next(c for c in data["claims"] if c["of"] == "dL/dy_pred" and c["claimed"] == "-0.952")
    rc = claim["rounding"]
    assert claim["verdict"] == "rounding" and rc["kind"] == "world" and rc["digits"] == 3
    assert rc["rounded"] == ["forward"] and rc["value"] == "-0.952"
    got = {c["of"]: c["value"] for c in rc["chain"]}
    assert list(got) == list(expect)
    for name, v in expect.items():
        assert close(got[name], v), name
    assert "(sum_h1 = -3.00, h1 = 0.0474" in claim["message"]
    # a correct claim has no chain
    assert all(c["rounding"] is None for c in data["claims"] if c["verdict"] == "correct")


def test_rounding_of_a_constant_expression_names_the_rounded_values_it_uses():
    """alice's (−0.952)·0.249·(−0.0904): its numbers −0.952 and 0.249 are the rounded ∂L/∂y_pred and
    ∂o1/∂sum_o1 of the hand calculation at 3 digits."""
    _cf, results = check_file(str(PROBLEMS / "alice.claims.toml"))
    r = next(r for r in results if r.claim.of == "dL/dw1" and r.claim.constant)
    assert r.verdict == "rounding" and r.rounding.kind == "const" and r.rounding.digits == 3
    chain = {(kind, e.name, w.name if w is not None else None): v for kind, e, w, _k, v in r.rounding.chain}
    assert chain[("local", "o1", "sum_o1")] == Fraction("0.249")
    assert chain[("local", "L", "y_pred")] == Fraction("-0.952")
    for v in chain.values():     # each is one of the expression's numbers
        assert abs(v) in {Fraction("0.952"), Fraction("0.249"), Fraction("0.0904")}


# ---------------------------------------------------------------- the errata documents
def _read(name):
    return (OUTPUT / "errata" / name).read_text(encoding="utf-8")


def _prose_md(text):
    """Markdown with math, code and anchors removed."""
    text = re.sub(r"```.*?```", " ", text, flags=re.S)
    text = re.sub(r"\$\$.*?\$\$", " ", text, flags=re.S)
    text = re.sub(r"\$`.*?`\$", " ", text)
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\$[^$]*\$", " ", text)
    text = re.sub(r"<a id=\"[^\"]*\"></a>", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text)


def test_house_price_errata_put_the_wrong_claims_first_and_the_table_last():
    _cf, results = check_file(str(PROBLEMS / "house-price.claims.toml"))
    wrong = [r for r in results if r.verdict == "wrong"]
    for name, heads in (("house-price.md", ("## Wrong claims", "## Only rounding or truncation", "## All claims")),
                        ("house-price.zh.md", ("## 错误的原文断言", "## 只差舍入或截断", "## 全部原文断言"))):
        md = _read(name)
        at = [md.index(h) for h in heads]
        assert at == sorted(at), name
        details = md[at[0]:at[1]]
        assert [int(i) for i in re.findall(r"^### \S+ (\d+)", details, flags=re.M)] == [r.claim.index for r in wrong]
        table = md[at[2]:]
        rows = re.findall(r"^\| \[?\*?\*?(\d+)", table, flags=re.M)
        assert [int(i) for i in rows] == [r.claim.index for r in results]
        # every claim that is not correct linked; only the wrong ones bold, as the table's intro says
        # (the truncated h1, h3 were bold too, under "Wrong claims in bold")
        for r in results:
            bold = f"| [**{r.claim.index}**](#claim-{r.claim.index}) |" in table
            linked = bold or f"| [{r.claim.index}](#claim-{r.claim.index}) |" in table
            assert bold == (r.verdict == "wrong"), r.claim.index
            assert linked == (r.verdict != "correct"), r.claim.index
        # the truncated claims are in the lighter list, not among the errors
        for r in results:
            if r.verdict in ("rounding", "truncated"):
                assert f'<a id="claim-{r.claim.index}"></a>' in md[at[1]:at[2]]


def test_errata_have_no_tag_echo_raw_latex_ascii_formulas_or_e_notation():
    for p in sorted((OUTPUT / "errata").glob("*.md")):
        md = p.read_text(encoding="utf-8")
        prose = _prose_md(md)
        for tag in TAGS:
            assert tag not in prose, (p.name, tag)
        assert not re.search(r"(?<![\w.])\d+(\.\d+)?[eE][+-]?\d+\b", prose), p.name   # 8.999961261e10
        assert not re.search(r"\\[A-Za-z]+", prose.replace("\\_", "").replace("\\*", "")
                             .replace("\\[", "").replace("\\]", "").replace("\\|", "")), p.name
        assert "y\\_hat\\*" not in md and "y_hat*(1" not in md, p.name        # ASCII formulas
        assert "@" not in prose, p.name                                       # Python's matrix product
        assert not re.search(r"(?<![\w\-])-\d", prose), p.name                # a hyphen for a minus
        if ".zh." in p.name:
            assert "声明" not in md and "原因是" not in md, p.name
    for p in sorted((OUTPUT / "errata").glob("*.tex")):
        tex = p.read_text(encoding="utf-8")
        assert not re.search(r"(?<![\w.])\d+(\.\d+)?[eE][+-]?\d+\b", re.sub(r"\\texttt\{[^}]*\}", "", tex)), p.name
        assert "\\textbackslash" not in tex, p.name     # source LaTeX printed as text
    # the source's LaTeX quoted in linear-2x's notes is typeset
    assert "$\\nabla_{\\mathbf{W}_{\\text{hidden}}} f = " in _read("linear-2x.tex")


def test_notes_typeset_only_whitelisted_latex():
    assert safe_math(r"\nabla_{\mathbf{W}_{\text{hidden}}} f = \frac{\partial f}{\partial x}")
    for bad in (r"\input{/etc/passwd}", r"^^5cinput", r"\text{\input x}", r"\frac{1}{2", r"a_1_2", r"x \\ y",
                r"\def\x{1}", "x % comment", r"\catcode"):
        assert not safe_math(bad), bad
    pieces = note_pieces(r"§1 see: \input{/etc/passwd} here")
    assert all(p[0] == "t" for p in pieces)


def test_zh_spec_fields_are_validated_and_used(write_spec):
    base = 'title = "T"\nsource = "S"\n[data]\nx = 1\n[parameters]\nw = 2\n[forward]\ny = "w*x"\n' \
           'L = "(y - 1)^2"\n[train]\nloss = "L"\nlearning_rate = 0.1\nupdate = ["w"]\n'
    s = specmod.load(str(write_spec(base.replace('source = "S"', 'source = "S"\ntitle_zh = "标题"'))))
    assert s.title_in("zh") == "标题" and s.title_in("en") == "T" and s.source_in("zh") == "S"
    for bad in ('title_zh = ""', "title_zh = 3", 'source_zh = "a\\u0007b"'):
        with pytest.raises(DeriveError) as e:
            specmod.load(str(write_spec(base.replace('source = "S"', f'source = "S"\n{bad}'))))
        assert "_zh" in e.value.line()
    for pid in specmod.builtin_ids():
        s = specmod.load(pid)
        assert CJK.search(s.title_zh) and s.source_zh, pid


# ---------------------------------------------------------------- no English prose in Chinese documents
# Names, tools and terms that stay as they are in a Chinese text.
KNOWN = ["Victor Zhou", "derive check", "derive build", "derive solve", "derive train", "Mazur", "SymPy",
         "PyTorch", "PaddlePaddle", "NumPy", "SimpleNN", "MSELoss", "SGD", "MSE", "epoch", "sigmoid",
         "ReLU", "softmax", "tanh", "LaTeX", "Markdown", "KaTeX", "Mermaid", "TikZ", "Alice", "Moodle",
         "python-flint", "derive"]
ENGLISH_RUN = re.compile(r"[A-Za-z][a-z']+(?:[ \t]*[,;:.()\-]?[ \t]+[A-Za-z][a-z']+)+")


def _prose_tex(text):
    text = text.split("\\begin{document}", 1)[-1]
    text = re.sub(r"(?<!\\)%.*", " ", text)
    for env in ("align\\*", "aligned", "equation\\*", "tikzpicture", "verbatim", "gather\\*"):
        text = re.sub(rf"\\begin\{{{env}\}}.*?\\end\{{{env}\}}", " ", text, flags=re.S)
    text = re.sub(r"\\\[.*?\\\]", " ", text, flags=re.S)
    text = re.sub(r"\\\(.*?\\\)", " ", text, flags=re.S)
    text = re.sub(r"(?<!\\)\$[^$]*\$", " ", text)
    text = re.sub(r"\\(texttt|label|hypertarget|ref|url|href|includegraphics|begin|end|newcommand|"
                  r"usetikzlibrary|setlength|documentclass|usepackage)\*?(\[[^\]]*\])?\{[^{}]*\}", " ", text)
    text = re.sub(r"\\hyperlink\{[^{}]*\}", " ", text)
    return re.sub(r"\\[A-Za-z]+\*?", " ", text)


def english_prose(text: str, fmt: str) -> list:
    """Runs of two or more English words outside formulas, code, names and file names."""
    text = _prose_md(text) if fmt == "md" else _prose_tex(text)
    for name in KNOWN:
        text = text.replace(name, " ")
    # identifiers and file names: anything with _ . / digits or backslash-escapes inside a word
    text = re.sub(r"\S*[_/\\\d]\S*", " ", text)
    return [m.group() for m in ENGLISH_RUN.finditer(text)]


def test_the_english_prose_detector_finds_english_and_spares_formulas():
    assert english_prose("原文断言：the true value is 3", "md") == ["the true value is"]
    assert english_prose("真值为 $0.5$，见 `y_hat*(1 - y_hat)`，Victor Zhou 的 sigmoid 网络", "md") == []
    assert english_prose("\\section*{勘误}\\textbf{Claim} 12 $\\mathrm{out put}$ and more words", "tex") == \
        ["and more words"]


def _zh_documents():
    return sorted(p for p in OUTPUT.rglob("*") if p.suffix in (".md", ".tex") and ".zh." in p.name)


@pytest.mark.parametrize("path", _zh_documents(), ids=lambda p: str(p.relative_to(OUTPUT)))
def test_no_chinese_document_has_english_prose(path):
    """Every Chinese document in output/ (handouts, errata, exercise sheets): no run of two or more
    English words outside formulas, code, names and file names."""
    text = path.read_text(encoding="utf-8")
    from derive.escape import tex_prose
    for title in _source_titles():         # a cited title is the source's own words, not prose
        text = text.replace(title, " ").replace(tex_prose(title), " ")
    runs = english_prose(text, path.suffix[1:])
    assert not runs, f"{path.name}: {runs[:8]}"


def _source_titles() -> list:
    """The titles the claims files' [source] tables give (the errata cite them as written)."""
    from derive.claims import load_claims
    return [t for t in (load_claims(str(p)).source_title for p in sorted(PROBLEMS.glob("*.claims.toml"))) if t]


# ---------------------------------------------------------------- the errata fit the page
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_diagnosis_example_uses_the_problems_own_symbols(lang):
    """softmax-3's errata explained a sign error with "t − o written for o − t" although its
    output is p; the example is now written in the problem's own output and target (and the ½
    example only where a definition has a ½, written as that definition)."""
    from derive import printer as pr
    seen = 0
    for md in sorted((OUTPUT / "errata").glob("*.zh.md" if lang == "zh" else "*[!h].md")):
        pid = md.name.split(".")[0]
        if lang == "en" and md.name.endswith(".zh.md"):
            continue
        p = load_problem(pid)
        names = set(pr.display_names(p.spec, p.graph).values())
        text = md.read_text(encoding="utf-8")
        pat = (r"for example \$`(.+?) - (.+?)`\$ written for \$`(.+?) - (.+?)`\$" if lang == "en"
               else r"例如把 \$`(.+?) - (.+?)`\$ 写成了 \$`(.+?) - (.+?)`\$")
        for m in re.finditer(pat, text):
            a, b, c, d = m.groups()
            assert {a, b} <= names and (a, b) == (d, c), (md.name, m.group(0))
            seen += 1
        assert "(t - o)" not in text and "t - o" not in text, md.name
        for m in re.finditer(r"\\tfrac\{1\}\{2\}`\$ of \$`(.+?) = " if lang == "en" else r"漏掉了 \$`(.+?) = ", text):
            assert m.group(1) in names, (md.name, m.group(0))
    assert seen, "no sign-error example in any errata"


def test_errata_use_one_document_class_per_language():
    """English errata are `article` (as the English handouts), with xeCJK when their text has
    Chinese; Chinese ones `ctexart`.  softmax-3's English errata were article and the others
    ctexart, because the class followed whether the text quoted Chinese (the seeds' sources)."""
    texs = sorted((OUTPUT / "errata").glob("*.tex"))
    assert len(texs) >= 14
    for tex in texs:
        text = tex.read_text(encoding="utf-8")
        cls = re.search(r"\\documentclass(?:\[[^\]]*\])?\{(\w+)\}", text).group(1)
        if tex.name.endswith(".zh.tex"):
            assert cls == "ctexart", tex.name
        else:
            assert cls == "article", tex.name
            body = text.split("\\begin{document}", 1)[1]
            if CJK.search(body):
                assert "\\usepackage{xeCJK}" in text, tex.name


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
def test_every_errata_pdf_fits_the_page(latexmk):
    """Every errata .tex in output/ compiles without an overfull box over 1 pt (or a character
    missing from its fonts).  (Each compiled once a session by the `latexmk` fixture, which
    tests/test_build.py and tests/test_render.py's blank-page check read too.)"""
    texs = sorted((OUTPUT / "errata").glob("*.tex"))
    assert len(texs) >= 14
    compiled = latexmk.many((tex.read_text(encoding="utf-8"), "xelatex") for tex in texs)
    bad = []
    for tex, (log, pdf, _) in zip(texs, compiled):
        assert pdf.is_file(), tex.name
        for m in re.finditer(r"Overfull \\[hv]box \(([\d.]+)pt too (wide|high)\)", log):
            if float(m.group(1)) > 1:
                bad.append((tex.name, m.group(0)))
        bad += [(tex.name, line) for line in log.splitlines() if line.startswith("Missing character")]
    assert not bad, bad


def test_one_chain_printer_gives_the_text_and_the_latex():
    from derive import printer as pr, solve
    from derive.errata import Tex
    from derive.formulas import chain_formula
    p = solve.load("house-price")
    g = p.graph
    f = chain_formula(g, g.loss_entry, g.quantities["w1"].entries[0])
    assert pr.chain_text(f) == "2*(y_hat - y)*y_hat*(1 - y_hat)*w7*h1*(1 - h1)*x1"
    tex = Tex(p).chain(f)
    assert tex == pr.chain_latex(f, Tex(p).names)
    assert tex.startswith("2 \\cdot \\left(\\hat{y} - y\\right)") and tex.endswith("x_{1}")
    # a branch: the sum over the three hidden units
    f = chain_formula(g, g.loss_entry, g.quantities["x1"].entries[0])
    assert pr.chain_text(f).count(" + ") == 2 and pr.chain_latex(f, Tex(p).names).count(" + ") == 2


# ---------------------------------------------------------------- notes: typeset, complete in Chinese
def _shown_notes():
    """(pid, index, lang, pieces) of every note an errata document of output/ shows (wrong claims)."""
    from derive.claims import load_claims
    from derive.errata import builtin_claims
    out = []
    for pid, path in builtin_claims():
        cf = load_claims(path)
        _cf, results = check_file(path)
        for c, r in zip(cf.claims, results):
            if r.verdict == "wrong" and c.note:
                out += [(pid, c.index, lang, note_pieces(c.note, lang, c.note_zh)) for lang in ("en", "zh")]
    return out


def test_shown_notes_write_formulas_as_formulas_not_ascii():
    """Where a wrong claim stands in its source ("§(二)7: ≈ (300,000 − 0.6452)^2", "u(1-u)",
    "grad_h x^T", "dy_m/dW_output") reads as typeset math and plain words: no ^, _, * or a marker
    ($, `) is left in the prose of any note the errata show."""
    notes = _shown_notes()
    assert len(notes) > 40
    for pid, index, lang, pieces in notes:
        for kind, text in pieces:
            if kind == "t":
                assert not re.search(r"[\^_*$`]|\w\(1-|x\^T", text), (pid, index, lang, text)
            if kind == "m":
                assert safe_math(text), (pid, index, text)
    text = _read("house-price.md")
    assert "(300,000 − 0.6452)^2" not in text and "u(1-u)" not in text
    # the source's numbers as the errata write every number: ungrouped (one rule; the note grouped them)
    assert "$`L \\approx (300000 - 0.6452)^2 \\approx 89999810000`$" in text
    for name in ("linear-2x.md", "matrix-linear.md", "sigmoid-2-4-2.md"):
        assert not re.search(r"grad\\?_h x|dy_m/dW|grad\\?_pred|a\\?_hidden", _read(name)), name


def test_marked_notes_are_taken_as_marked():
    assert note_pieces("§2: $u(1 - u)$ at `u_pre` and $\\input{x}$") == (
        ("t", "§2: "), ("m", "u(1 - u)"), ("t", " at "), ("c", "u_pre"), ("t", " and "), ("c", "\\input{x}"))
    # Chinese: the claim's own note_zh, in full and with full-width punctuation; without one the locator
    assert note_pieces("§2, the sum $a + b$ (not c)", "zh", "§2，求和: $a + b$，不是 c") == (
        ("t", "§2，求和："), ("m", "a + b"), ("t", "，不是 c"))
    assert note_pieces("§2, the sum $a + b$", "zh") == (("t", "§2"),)


def test_chinese_notes_are_complete():
    """A Chinese errata document gives a claim's whole note (note_zh), never one cut off in the
    middle of a formula (house-price claim 61 stopped at "i.e", two-two-two claim 36 at "E")."""
    hp, tt = _read("house-price.zh.md"), _read("two-two-two.zh.md")
    assert "出处：§(二)8(3)：$`\\frac{dh_{1}}{dw_{1}} = -69090`$，即 $`24.5 \\times (1 - 24.5) \\times 120`$：这里原文用的是正确的激活前值 24.5，" \
           "而不是前面写的 24.2" in hp
    assert "出处：§2.2：$`E_{\\mathrm{total}} = 0.01545028 + 0.009833246 = 0.025283526`$" in tt
    for pid, index, lang, pieces in _shown_notes():
        if lang == "zh" and pieces and pieces[-1][0] == "m":
            assert not pieces[-1][1].rstrip().endswith(("(", "=", "\\times", "i.e")), (pid, index, pieces)


def test_note_zh_and_demonstration_are_validated(tmp_path):
    base = 'spec = "softmax-3"\n{top}[[claim]]\nof = "L"\nvalue = "1.7337"\n{extra}'
    for top, extra, what in (("", "note_zh = 3\n", "note_zh must be a string"),
                             ('demonstration = "yes"\n', "", "demonstration")):
        f = tmp_path / "c.toml"
        f.write_text(base.format(top=top, extra=extra), encoding="utf-8")
        r = run_cli("check", str(f))
        assert r.returncode == 2 and what in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_claims_written_for_an_example_are_not_called_errata_of_a_source():
    """softmax-3 has no source document: its claims file says so (demonstration = true), its
    document is 'Checked claims' of claims written for the example, and the handout does not list
    them as errors of a source."""
    for name, lang in (("softmax-3.md", "en"), ("softmax-3.tex", "en"), ("softmax-3.zh.md", "zh"),
                       ("softmax-3.zh.tex", "zh")):
        text = _read(name)
        assert ("Checked claims" if lang == "en" else "核对的论断") in text, name
        assert not re.search(r"[Tt]he source says|[Ee]rrata|原文|勘误", text), name
        assert ("This example has no source document" if lang == "en" else "这个例子没有原始文档") in text
    for lang in ("en", "zh"):
        for fmt in ("md", "tex"):
            handout = (OUTPUT / f"softmax-3.{lang}.{fmt}").read_text(encoding="utf-8")
            assert "errata/softmax-3" not in handout and "Errata of the source" not in handout
    assert "derive's own example" not in (OUTPUT / "softmax-3.en.md").read_text(encoding="utf-8")
    # a source's claims keep their framing
    assert "The source says" in _read("two-two-two.md") and "原文写的是" in _read("two-two-two.zh.md")
    # and so does derive check's summary line: 论断 for the example's claims, 原文断言 for a source's
    demo, source = run_cli("check", "softmax-3", "--lang", "zh"), run_cli("check", "two-two-two", "--lang", "zh")
    assert "条论断：" in demo.stdout.splitlines()[-1] and "原文断言" not in demo.stdout.splitlines()[-1]
    assert "条原文断言：" in source.stdout.splitlines()[-1]


def test_no_internal_wording_reaches_a_reader():
    """No document in output/ speaks of the machinery: bits of precision, which library decides,
    or a .tex file to read instead of the errata handout."""
    for p in OUTPUT.rglob("*"):
        if p.suffix in (".md", ".tex"):
            text = p.read_text(encoding="utf-8")
            assert not re.search(r"\d+ bits|SymPy|see errata/|texttt\{errata/|ball arithmetic|球算术", text), p.name


def test_a_checkers_message_has_its_quantities_typeset():
    """A message quoted in the errata writes dA/dB and the problem's names as math, never ASCII
    (dy_m/dW_output was printed as text); English words stay words even when a quantity has that
    name in lower case."""
    tex = Tex(load_problem("linear-2x"))
    pieces = message_pieces(tex, "dy_m/dW_output would be a Jacobian; E is a scalar, y_t a vector.")
    assert ("m", "\\partial y_{m}/\\partial W_{\\mathrm{output}}") in pieces
    assert ("m", "E") in pieces and ("m", "y_{t}") in pieces
    assert "".join(t for k, t in pieces if k == "t") == " would be a Jacobian;  is a scalar,  a vector."
    for name in ("md", "zh.md"):
        assert "dy\\_m/dW\\_output" not in (OUTPUT / "errata" / f"linear-2x.{name}").read_text(encoding="utf-8")


# ---------------------------------------------------------------- the reviewer's pages
def _blocks(tex: str) -> list:
    """The LaTeX of each wrong claim's block (from the \\Needspace before its heading to the next)."""
    body = tex.split("\\section*{")[1]        # the first section: the wrong claims
    body = re.sub(r"\\Needspace\{\d+\\baselineskip\}\s*$", "", body)     # the next section's
    return [b for b in re.split(r"(?=\\Needspace\{\d+\\baselineskip\}\n\\subsection\*)", body) if "\\subsection*" in b]


def test_a_wrong_claims_block_is_kept_together_by_one_needspace():
    """A claim's heading and description had a \\Needspace of their own and the corrected derivation
    another, so the derivation moved to the next page alone and left a quarter page blank: now one
    \\Needspace per block, of the whole block when it is short (at most 12 lines, a quarter page), of
    its heading and first items (7 lines) when it is longer."""
    seen = 0
    for p in sorted((OUTPUT / "errata").glob("*.tex")):
        for block in _blocks(p.read_text(encoding="utf-8")):
            sizes = [int(x) for x in re.findall(r"\\Needspace\{(\d+)\\baselineskip\}", block)]
            assert len(sizes) == 1, (p.name, block[:200])
            derivation = re.search(r"\\begin\{align\*\}(.*?)\\end\{align\*\}", block, flags=re.S)
            # a derivation of one line is an item of the block; one shown before is named ("as for claim 13")
            inline = re.search(r"\\item\[(Corrected derivation|改正后的推导)\] ", block)
            if derivation or inline:
                seen += 1
                lines = derivation.group(1).count("\\\\") + 1 if derivation else 0
                # the whole block (heading, at least two items, the derivation) when short; else the
                # heading with its first items, 7 lines
                assert sizes[0] >= min(3 + 2 + 2 + 2 * lines, 7), (p.name, sizes, lines)
    assert seen >= 20


def _page_bottoms(pdf: Path) -> list:
    """For each page, the share of the text block left blank below its last line of text (the
    page number excluded), from pdftotext's word boxes."""
    import html
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, timeout=120).stdout
    pages = []
    for m in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', out, flags=re.S):
        height = float(m.group(2))
        words = [(float(y), html.unescape(w)) for y, w in
                 re.findall(r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="[\d.]+" yMax="([\d.]+)">([^<]*)</word>', m.group(3))]
        top, bottom = 2 / 2.54 * 72, height - 2 / 2.54 * 72      # the 2 cm margins
        text = [y for y, w in words if not (re.fullmatch(r"\d+", w) and y > bottom)]
        pages.append((bottom - max(text, default=top)) / (bottom - top))
    return pages


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX or shutil.which("pdftotext") is None,
                    reason="xelatex/latexmk/pdftotext not installed")
@pytest.mark.parametrize("name", ["house-price.tex", "house-price.zh.tex", "sigmoid-2-4-2.tex"])
def test_no_page_of_the_errata_ends_with_a_big_gap(latexmk, name):
    """No page before the last is left blank over more than a fifth of its text block (a claim's
    derivation moved alone to the next page left a quarter page blank)."""
    _log, pdf, _ = latexmk((OUTPUT / "errata" / name).read_text(encoding="utf-8"), "xelatex")
    assert pdf.is_file()
    gaps = _page_bottoms(pdf)
    assert len(gaps) >= 2
    assert [i for i, g in enumerate(gaps[:-1], 1) if g > 0.2] == [], [round(g, 2) for g in gaps]


def test_the_claim_table_gives_its_rows_room_for_fractions():
    """Stacked fractions (∂ŷ/∂h₁) in the Quantity column touched the rows above and below: the
    claim table stretches its rows (\\arraystretch of at least 1.4, set in the table's group)."""
    for p in sorted((OUTPUT / "errata").glob("*.tex")):
        tex = p.read_text(encoding="utf-8")
        before = tex[:tex.index("\\begin{longtable}")]
        group = before[before.rindex("{\\small"):]
        m = re.search(r"\\renewcommand\{\\arraystretch\}\{([\d.]+)\}", group)
        assert m and float(m.group(1)) >= 1.4, p.name


def test_the_minor_list_is_named_and_counted_as_the_summary_counts():
    """The summary said "0 rounding" above a section headed "Only rounding" that listed the two
    truncated claims: the heading names rounding and truncation, and the list holds exactly the
    summary's rounding and truncated claims."""
    for pid in ("house-price", "sigmoid-2-4-2", "alice", "two-two-two"):
        _cf, results = check_file(str(PROBLEMS / f"{pid}.claims.toml"))
        minor = [r.claim.index for r in results if r.verdict in ("rounding", "truncated")]
        for lang, head, word in (("en", "## Only rounding or truncation", "truncated"), ("zh", "## 只差舍入或截断", "被截断")):
            md = _read(f"{pid}.md" if lang == "en" else f"{pid}.{lang}.md")
            summary = re.search(r"^\*\*(.*)\*\*$", md, flags=re.M).group(1)
            n_round, n_trunc = (int(x) for x in re.findall(r"(\d+) (?:条)?(?:rounding|truncated|只差舍入|被截断)", summary))
            assert n_round + n_trunc == len(minor) and word in summary, (pid, lang, summary)
            if minor:
                part = md[md.index(head):md.index("\n## ", md.index(head) + 1)]
                assert [int(x) for x in re.findall(r'<a id="claim-(\d+)"></a>', part)] == minor, (pid, lang)


def test_further_diagnoses_and_the_update_rule_read_as_sentences_in_the_problems_symbols():
    """"Also consistent with: earlier error carried forward." is a sentence now, and the missing
    old parameter is named by the claim's own parameter and the problem's learning rate (house-price:
    w₁ and 0.001, not an undefined η and p; softmax-3's p is its output)."""
    for p in sorted((OUTPUT / "errata").glob("*.md")):
        md = p.read_text(encoding="utf-8")
        assert "Also consistent with" not in md and "也符合：" not in md, p.name
        for line in md.splitlines():
            if line.startswith(("- **The mistake**", "- **错在哪里**")):
                assert "\\partial p" not in line and "p\\,-" not in line, (p.name, line)
    en, zh = _read("house-price.md"), _read("house-price.zh.md")
    assert "The value is also what the error of claim 15 carried forward would give." in en
    assert "这个值也可以由“沿用断言 15 的错误”得出。" in zh
    claim64 = lambda md: next(ln for ln in md.split('<a id="claim-64"></a>')[1].splitlines()  # noqa: E731
                              if ln.startswith(("- **The mistake**", "- **错在哪里**")))
    lr = specmod.load("house-price").learning_rate
    assert lr == Fraction(1, 1000)
    for md in (en, zh):
        line = claim64(md)
        assert "0.001 \\cdot \\partial L/\\partial w_{1}" in line and "w_{1}\\,-" in line and "\\eta" not in line, line
    for name in ("softmax-3.md", "softmax-3.zh.md"):
        md = _read(name)
        assert "W_{11} + 0.1 \\cdot \\partial L/\\partial W_{11}" in md, name


def _sig_digits(number: str) -> int:
    digits = number.replace(".", "").lstrip("-").lstrip("0")
    return len(digits)


def test_true_values_in_the_bullets_have_the_stated_significant_digits():
    """The intro promises 10 significant digits: the bullets printed 11-21 (h₃ = 0.999999999999999999999).
    A true value that rounds to 1 at 10 digits is written 1 − ε (ε to 10 digits), checked here
    against mpmath."""
    mpmath.mp.dps = 60
    for p in sorted((OUTPUT / "errata").glob("*.md")):
        md = p.read_text(encoding="utf-8")
        for line in md.splitlines():
            if line.startswith(("- **True value**", "- **真值**", "- Claim ", "- 断言 ", "- 论断 ")):
                for math in re.findall(r"\$`(.*?)`\$", line):
                    for number in re.findall(r"-?\d+\.\d+", math):
                        assert _sig_digits(number) <= 10, (p.name, number, line)
    md = _read("house-price.md")
    h2, h3 = 1 - 1 / (1 + mpmath.exp(-mpmath.mpf("36.6"))), 1 - 1 / (1 + mpmath.exp(-mpmath.mpf("48.7")))
    for eps in (h2, h3):
        mant, exp = mpmath.nstr(eps, 10, min_fixed=1, max_fixed=0, strip_zeros=False).split("e")
        assert f"1 - {mant} \\times 10^{{{int(exp)}}}" in md, (mant, exp)
    assert "0.999999999999999999999" not in md and "0.999999999977" not in md


def test_the_errata_cite_the_source_by_its_sections_with_one_footer_line():
    """The source was cited by a hashed file name (001_61855a2c38fabbc9.txt, with seeds/ in some
    errata, not in others), and "Claims: X.claims.toml" and "Generated by derive check from …" told
    the reader about the machinery: the source line is the spec's, without the file name; one
    short footer."""
    for p in sorted((OUTPUT / "errata").glob("*.*")):
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"\d{3}\\?_[0-9a-f]{16}\.txt", text), p.name
        assert "derive check" not in text and "Claims:" not in text and "原文断言文件" not in text, p.name
        assert len(re.findall(r"Generated by derive|由 derive ", text)) == 1, p.name
    alice = specmod.load("alice")
    assert alice.source.split(", ", 1)[1] in _read("alice.md")
    assert specmod.load("house-price").source_zh.split("，", 1)[1] in _read("house-price.zh.md")


# ---------------------------------------------------------------- the third page review
def _errata(pid: str, lang: str = "en", fmt: str = "md") -> str:
    """The errata of a built-in problem rendered here (not read from output/)."""
    from derive.errata import errata_documents
    return errata_documents(pid, str(PROBLEMS / f"{pid}.claims.toml"), lang)[0][fmt]


def _minor_line(md: str, index: int) -> str:
    return md.split(f'<a id="claim-{index}"></a>\n', 1)[1].split("\n", 1)[0]


def _table_true(md: str, index: int) -> str:
    row = next(ln for ln in md.splitlines() if ln.startswith((f"| [{index}](#claim-{index}) |",
                                                             f"| [**{index}**](#claim-{index}) |")))
    return re.findall(r"\$`(.*?)`\$", row.split(" | ")[3])[0]


def test_a_constant_expressions_bullet_says_its_value_is_the_rounded_expressions():
    """alice's claims 23 and 29: the bullet gave the value of the source's expression with its
    rounded numbers (0.2494391503) and the table the true value (0.2494385387), with no word why.
    The bullet names both: what the expression gives, and the true value — the table's."""
    mpmath.mp.dps = 40
    sig = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731
    expression = {23: sig(mpmath.mpf("0.0948")) * (1 - sig(mpmath.mpf("0.0948"))),
                  29: mpmath.mpf("-0.952") * mpmath.mpf("0.249") * mpmath.mpf("-0.0904")}
    for lang, gives, true in (("en", "The source's expression, with its rounded inputs, gives ", "; the true value is "),
                              ("zh", "原文的式子代入它四舍五入后的数，得 ", "；真值为 ")):
        md = _errata("alice", lang)
        for index, value in expression.items():
            line = _minor_line(md, index)
            m = re.search(re.escape(gives) + r"\$`([^`]*)`\$" + re.escape(true) + r"\$`([^`]*)`\$", line)
            assert m, (lang, line)
            assert mpmath.mpf(m.group(1)) == mpmath.mpf(mpmath.nstr(value, 10)), (lang, m.group(1))
            assert m.group(2) == _table_true(md, index), (lang, line)
            assert m.group(1) != m.group(2)


def test_one_unit_off_shows_the_true_value_so_that_its_rounding_is_evident():
    """two-two-two claim 20 read "0.3358298905 rounds to 0.335829890" (a double rounding: the
    10-digit value reads as rounding to …891), claim 18 "1.091150526 rounds to 1.091150526". The
    true value is shown cut off one digit after the stated ones (0.3358298904…), which rounds
    half up to the stated rounding; a claim of 10 digits gets the rounding alone."""
    mpmath.mp.dps = 40
    v = {k: mpmath.mpf(x) for k, x in dict(i1="0.02", i2="0.04", w1="0.25", w2="0.25", w3="0.15", w4="0.20",
                                           w5="0.30", w6="0.35", b1="0.4", b2="0.7").items()}
    sig = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731
    h1 = sig(v["w1"] * v["i1"] + v["w2"] * v["i2"] + v["b1"])
    h2 = sig(v["w3"] * v["i1"] + v["w4"] * v["i2"] + v["b1"])
    net_o1 = v["w5"] * h1 + v["w6"] * h2 + v["b2"]
    for lang in ("en", "zh"):
        md = _errata("two-two-two", lang)
        line = _minor_line(md, 20)
        shown, rounded = re.findall(r"\$`([^`]*)`\$", line)[-2:]
        assert shown.endswith("\\ldots") and rounded == "0.335829890", line
        digits = shown[:-len("\\ldots")]
        exact = mpmath.nstr(mpmath.exp(-net_o1), 20, strip_zeros=False)
        assert exact.startswith(digits) and len(digits.replace("0.", "", 1).lstrip("0")) == 10, (digits, exact)
        # a reader rounding the shown digits half up gets the stated rounding
        assert mpmath.floor(mpmath.mpf(digits) * 10 ** 9 + mpmath.mpf("0.5")) == 335829890
        line18 = _minor_line(md, 18)
        numbers = re.findall(r"\$`([^`]*)`\$", line18)
        assert numbers[-1] == mpmath.nstr(net_o1, 10, strip_zeros=False) == "1.091150526"
        assert len(set(numbers[1:])) == len(numbers[1:]), line18      # no "X rounds to X"


def test_the_learning_rate_table_says_what_happens_as_the_worked_solution_does():
    """matrix-linear's errata said "overflows in step 6" beside the finite loss 9.36×10¹³⁹ and
    printed "correct" in bold: the run's verdict is the worked solution's (diverging, not
    converging (it oscillates), converging), a stopped run names the step whose loss passed the
    float64 range, the loss shown is named by its step, and only a wrong verdict is bold."""
    from derive import train
    from derive.training_context import shown_verdict
    from derive.errata import OVERFLOW_TEX
    assert train.OVERFLOW == 2 ** 1024 and mpmath.nstr(mpmath.mpf(2) ** 1024, 2) == "1.8e+308"
    spec = specmod.load("matrix-linear")
    runs = [r for r, c in zip(train.sweep_of(spec, 10), spec.training.sweep.claimed) if c]     # the claimed ones
    for lang in ("en", "zh"):
        md, tex = _errata("matrix-linear", lang), _errata("matrix-linear", lang, "tex")
        rows = [ln for ln in md.splitlines() if re.match(r"\| 0\.\d+ \|", ln)]
        assert len(rows) == len(runs) == 3
        assert "overflow" not in md and "溢出" not in md
        words = {"en": {"converging": "converging", "diverging": "diverging", "oscillating": "not converging (it oscillates)"},
                 "zh": {"converging": "收敛", "diverging": "发散", "oscillating": "不收敛（振荡）"}}[lang]
        for row, r in zip(rows, runs):
            cells = [c.strip() for c in row.strip("|").split("|")]
            shown = shown_verdict(r.verdict, r.training.history_floats, r.training.diverged)
            assert cells[2].startswith(words[shown]), (lang, row)
            steps = len(r.training.history) - 1
            assert (f"after step {steps})" if lang == "en" else f"第 {steps} 步后）") in cells[3], row
            if r.training.diverged is not None:
                assert r.training.diverged == steps + 1 == 6
                assert OVERFLOW_TEX in cells[2] and ("in step 6" if lang == "en" else "第 6 步") in cells[2], row
            assert "**" not in cells[4], row          # every verdict of the source is right here
        assert "\\textbf{correct}" not in tex and "\\textbf{正确}" not in tex


def test_an_entry_repeating_an_earlier_wrong_claim_is_carried_forward_from_it():
    """sigmoid-2-4-2's a_hidden = (0.9997, 0.9999, 0.9933, 0.9998) was called an arithmetic slip:
    its third entry is claim 8's σ(5.2) = 0.9933 carried forward (true 0.9945) and the second and
    fourth are cut off (claims 7 and 9).  The heading names the claim carried."""
    mpmath.mp.dps = 30
    sig = lambda z: 1 / (1 + mpmath.exp(-mpmath.mpf(z)))  # noqa: E731
    assert mpmath.nstr(sig("5.2"), 4) == "0.9945" and mpmath.nstr(sig("5"), 4) == "0.9933"
    _cf, results = check_file(str(PROBLEMS / "sigmoid-2-4-2.claims.toml"))
    r = results[9]
    assert r.claim.of == "a_hidden" and r.verdict == "wrong"
    assert r.diagnosis == "carried-forward" and r.carries == (8,), (r.diagnosis, r.carries)
    assert r.entries == ("correct", "truncated", "wrong", "truncated")
    for lang, head, said in (("en", "### Claim 10: $`a_{\\mathrm{hidden}}`$ — carried forward from claim 8",
                              ["Its entry $`(3)`$ repeats an earlier value", "[Claim 8](#claim-8)",
                               "Entries $`(2)`$, $`(4)`$ are cut off instead of rounded."]),
                             ("zh", "### 断言 10：$`a_{\\mathrm{hidden}}`$ — 沿用了断言 8 的错误",
                              ["它的分量 $`(3)`$ 重复了前面一个不正确的值", "[断言 8](#claim-8)",
                               "分量 $`(2)`$、$`(4)`$ 被截断而不是四舍五入"])):
        md = _errata("sigmoid-2-4-2", lang)
        assert head in md, lang
        line = next(ln for ln in md.split(head, 1)[1].splitlines() if ln.startswith(("- **The mistake**", "- **错在哪里**")))
        for x in said:
            assert x in line, (lang, line)
        assert "arithmetic" not in line and "计算错误" not in line


def test_a_carried_error_names_the_claims_it_carries():
    """"earlier error carried forward" did not say which: the heading and the "also" sentence name
    the claims (house-price's ŷ = 0.6452 from claims 42, 43, 44; claim 61 also the error of 15)."""
    _cf, results = check_file(str(PROBLEMS / "house-price.claims.toml"))
    by = {r.claim.index: r for r in results}
    assert by[49].diagnosis == "carried-forward" and by[49].carries == (42, 43, 44)
    assert "carried-forward" in by[61].also and by[61].carries == (15,)
    for r in results:          # the carried claims are earlier ones that are not correct
        for i in r.carries:
            assert i < r.claim.index and by[i].verdict != "correct", r.claim.index
    en, zh = _errata("house-price"), _errata("house-price", "zh")
    assert "### Claim 49: $`\\hat{y}`$ — carried forward from claims 42, 43 and 44" in en
    assert "### 断言 49：$`\\hat{y}`$ — 沿用了断言 42、43、44 的错误" in zh
    assert "The value is also what the error of claim 15 carried forward would give." in en
    assert "这个值也可以由“沿用断言 15 的错误”得出。" in zh
    for md in (en, zh):
        assert "earlier error carried forward" not in md and "沿用了前面的错误" not in md


def test_every_wrong_claims_heading_names_what_is_wrong():
    """linear-2x's claims 1, 10 and 15 (a matrix for a scalar, an undefined product, an undefined
    Jacobian) had headings without a diagnosis."""
    for lang, words in (("en", ("shape mismatch", "undefined formula", "undefined quantity")),
                        ("zh", ("形状不符", "公式无意义", "所断言的量没有定义"))):
        md = _errata("linear-2x", lang)
        heads = dict(re.findall(r"^### \S+ (\d+)(.*)$", md, flags=re.M))
        for index, word in zip(("1", "10", "15"), words):
            assert heads[index].endswith(" — " + word), (lang, heads[index])
    for p in sorted((OUTPUT / "errata").glob("*.md")):
        for head in re.findall(r"^### .*$", p.read_text(encoding="utf-8"), flags=re.M):
            assert " — " in head, (p.name, head)


def test_notes_quote_whole_formulas_and_numbers_are_not_grouped():
    """house-price quoted a bare "= σ(24.2)" (the left side cut off), and grouped some numbers with
    thin spaces (300\\,000) but not others (89999610000): a note's formula starts with its left
    side, and no errata groups digits."""
    for p in sorted(PROBLEMS.glob("*.claims.toml")):
        for c in load_claims_file(p):
            for note in (c.note, c.note_zh):
                for kind, text in note_pieces(note, "en"):
                    if kind == "m":
                        assert not text.lstrip().startswith(("=", "\\approx")), (p.name, note)
    for p in sorted((OUTPUT / "errata").glob("*.*")):
        text = p.read_text(encoding="utf-8")
        assert not re.search(r"\d\\,\d|\d \d{3}\b(?![.,]\d)", text.split("\n", 1)[1]), p.name


def load_claims_file(path):
    from derive.claims import load_claims
    return load_claims(str(path)).claims


def test_the_errata_state_the_problems_data():
    """softmax-3's errata used η, p, t and x without giving them: every errata states the data,
    the parameters, the definitions and the learning rate before the claims."""
    spec = specmod.load("softmax-3")
    for lang, word, lr in (("en", "Given: ", "learning rate "), ("zh", "已知：", "学习率 ")):
        md = _errata("softmax-3", lang)
        line = next(ln for ln in md.splitlines() if ln.startswith(word))
        assert "$`x = \\begin{pmatrix} 1 & -2 \\end{pmatrix}^{\\top}`$" in line      # a column as a row
        assert "$`t = \\begin{pmatrix} 0 & 1 & 0 \\end{pmatrix}^{\\top}`$" in line
        assert "0.5 & -0.25 \\\\ 0.1 & 0.3 \\\\ -0.4 & 0.2" in line
        assert "$`p = \\operatorname{softmax}(z)`$" in line and "$`z = W \\cdot x + b`$" in line
        assert spec.learning_rate == Fraction(1, 10) and f"{lr}$`\\eta = 0.1`$" in line
    for p in sorted((OUTPUT / "errata").glob("*.md")):
        assert re.search(r"^(Given: |已知：)", p.read_text(encoding="utf-8"), flags=re.M), p.name


def test_the_errata_cite_the_source_documents_title():
    """Most sources had no title or author: a claims file's [source] gives them and the errata cite
    them in front of the sections; a bad [source] is one line naming the key."""
    from derive.claims import load_claims
    for p in sorted(PROBLEMS.glob("*.claims.toml")):
        cf = load_claims(str(p))
        if cf.demonstration:
            assert not cf.source_title, p.name
            continue
        assert cf.source_title, p.name
        pid = p.name.split(".")[0]
        en, zh = _read(f"{pid}.md"), _read(f"{pid}.zh.md")
        by = f" by {cf.source_author}" if cf.source_author else ""
        assert f"\nSource: “{cf.source_title}”{by}, " in en, pid
        assert f"\n来源：《{cf.source_title}》" in zh, pid
    assert load_claims(str(PROBLEMS / "house-price.claims.toml")).source_author == "林采采学编程"


@pytest.mark.parametrize("source, key", [('[source]\ntitle = 3\n', "source.title"),
                                         ('[source]\ntitel = "x"\n', "source.titel"),
                                         ('source = "x"\n', "source")])
def test_a_bad_source_table_is_one_line_naming_the_key(tmp_path, source, key):
    top, table = (source, "") if not source.startswith("[") else ("", source)
    p = tmp_path / "bad.claims.toml"
    p.write_text(f'spec = "two-two-two"\n{top}{table}\n[[claim]]\nof = "w6"\nvalue = "0.35"\n', encoding="utf-8")
    r = run_cli("check", str(p))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and key in r.stderr, r.stderr


def test_every_section_after_the_first_keeps_its_heading_off_a_page_bottom():
    """matrix-linear.zh's learning-rate heading stood alone at a page bottom: every \\section*
    after the first is preceded by a \\Needspace."""
    for p in sorted((OUTPUT / "errata").glob("*.tex")):
        tex = p.read_text(encoding="utf-8")
        parts = tex.split("\\section*{")[1:]
        before = tex.split("\\section*{")[:-1]
        for i, b in enumerate(before[1:], 1):
            assert re.search(r"\\Needspace\{\d+\\baselineskip\}\s*$", b), (p.name, parts[i][:40])


def _pages(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=60).stdout
    return int(re.search(r"^Pages:\s+(\d+)", out, flags=re.M).group(1))


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX or shutil.which("pdfinfo") is None, reason="xelatex/latexmk/pdfinfo not installed")
def test_house_prices_errata_are_at_most_seven_pages(latexmk):
    """They were 9 pages (English) and 11 (Chinese): a derivation packed onto few lines, one said
    once (later: "as for claim 13"), a mistake explained once, a value's truth on the line of the
    claim, the table's wrong formulas linked instead of printed again."""
    for name in ("house-price.tex", "house-price.zh.tex"):
        _log, pdf, _ = latexmk((OUTPUT / "errata" / name).read_text(encoding="utf-8"), "xelatex")
        assert _pages(pdf) <= 7, name
    md = _read("house-price.md")
    assert md.count("as for [Claim 13](#claim-13).") >= 2 and md.count("The same mistake as in [Claim 13](#claim-13).") >= 2

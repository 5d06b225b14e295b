"""Errata to hand out and the checker's words: wrong claims first with the mistake in plain words,
rounding differences apart with the rounded chain that reproduces them, the claim table last and
within the page, Chinese names of the diagnoses, no English prose in any Chinese document."""
import concurrent.futures
import json
import re
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest

from conftest import ROOT
from derive import spec as specmod
from derive.check import check_file
from derive.errata import note_pieces, safe_math
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
    for name, heads in (("house-price.md", ("## Wrong claims", "## Only rounding", "## All claims")),
                        ("house-price.zh.md", ("## 错误的原文断言", "## 只差舍入", "## 全部原文断言"))):
        md = _read(name)
        at = [md.index(h) for h in heads]
        assert at == sorted(at), name
        details = md[at[0]:at[1]]
        assert [int(i) for i in re.findall(r"^### \S+ (\d+)", details, flags=re.M)] == [r.claim.index for r in wrong]
        table = md[at[2]:]
        rows = re.findall(r"^\| \[?\*?\*?(\d+)", table, flags=re.M)
        assert [int(i) for i in rows] == [r.claim.index for r in results]
        # wrong rows emphasised and linked; correct rows plain
        for r in results:
            bold = f"| [**{r.claim.index}**](#claim-{r.claim.index}) |" in table
            assert bold == (r.verdict != "correct"), r.claim.index
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
    runs = english_prose(path.read_text(encoding="utf-8"), path.suffix[1:])
    assert not runs, f"{path.name}: {runs[:8]}"


# ---------------------------------------------------------------- the errata fit the page
def _compile(tex: Path) -> str:
    subprocess.run(["latexmk", "-xelatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                    tex.name], cwd=tex.parent, capture_output=True, text=True, timeout=600,
                   env={**__import__("os").environ, "openout_any": "p"}, start_new_session=True)
    log = tex.with_suffix(".log")
    return log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""


@pytest.mark.tex
@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
def test_every_errata_pdf_fits_the_page(tmp_path):
    """Every errata .tex in output/ compiles without an overfull box over 1 pt (or a character
    missing from its fonts)."""
    texs = sorted((OUTPUT / "errata").glob("*.tex"))
    assert len(texs) >= 14
    for tex in texs:
        (tmp_path / tex.stem).mkdir()
        shutil.copy(tex, tmp_path / tex.stem / tex.name)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        logs = list(pool.map(lambda t: _compile(tmp_path / t.stem / t.name), texs))
    bad = []
    for tex, log in zip(texs, logs):
        assert (tmp_path / tex.stem / tex.name).with_suffix(".pdf").is_file(), tex.name
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

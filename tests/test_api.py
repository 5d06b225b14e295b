"""The Python API's notebook displays (derive.api): a solution as Jupyter Markdown, its sections,
a single formula as LaTeX, a check report as a table.  No notebook server: the repr methods are
called directly, and every number in them is compared with the hand-written reference."""
import re

import pytest

import derive
from derive import api, display, solve
from derive.render import render_text

import reference as ref


@pytest.fixture(scope="module")
def sol():
    return derive.load("two-two-two").solve(digits=6, lang="en")


def test_load_gives_the_displaying_objects():
    p = derive.load("two-two-two")
    assert isinstance(p, api.Problem) and isinstance(p, solve.Problem)
    s = p.solve()
    assert isinstance(s, api.Solution) and s.digits == 10 and s.lang == p.spec.lang


def test_markdown_is_the_handout_with_jupyters_math_delimiters(sol):
    md = sol._repr_markdown_()
    github = render_text(sol.problem, fmt="md", lang="en", digits=6)
    # the same text once GitHub's delimiters (```math blocks, $`…`$) are written as Jupyter's
    as_jupyter = re.sub(r"```math\n(.*?)\n```", lambda m: "$$\n" + m.group(1) + "\n$$", github, flags=re.S)
    as_jupyter = re.sub(r"\$`(.*?)`\$", lambda m: "$" + m.group(1) + "$", as_jupyter)
    assert md == as_jupyter
    assert "```math" not in md and "$`" not in md and "$$\n" in md


def test_markdown_numbers_are_the_reference_gradients(sol):
    md = sol._repr_markdown_()
    grads = ref.gradients("two-two-two")
    # ∂E/∂w₆ ≈ 0.0281337: the value the handout shows agrees with mpmath.diff of the loss
    w6 = grads[("w6", ())]
    shown = sol.gradients["w6"].values[0].text
    assert ref.agrees(shown, w6, 6) and shown in md


def test_sections_cut_the_markdown_at_its_headings(sol):
    sections = sol.sections
    headings = [ln[3:] for ln in sol.markdown.split("\n") if ln.startswith("## ")]
    assert [s.title for s in sections[1:]] == headings and len(headings) >= 5
    assert sections[0].title == sol.spec.title_in("en")
    joined = "\n".join(s._repr_markdown_().strip("\n") for s in sections)
    assert " ".join(joined.split()) == " ".join(sol.markdown.split())
    assert all(s.markdown.startswith("## ") for s in sections[1:])


def test_formula_is_one_latex_formula_with_the_reference_value(sol):
    f = sol.formula("dE_total/dw6")
    tex = f._repr_latex_()
    assert tex.startswith("$\\displaystyle ") and tex.endswith("$") and tex.count("$") == 2
    assert tex.startswith("$\\displaystyle \\frac{\\partial E_{\\mathrm{total}}}{\\partial w_{6}} = ")
    value = re.search(r"\\approx (\S+)\$$", tex).group(1)
    assert ref.agrees(value, ref.gradients("two-two-two")[("w6", ())], 6)
    # an updated parameter: the handout's update line, w₆ − η·∂E/∂w₆ ≈ w₆⁽¹⁾, against the reference
    after = sol.formula("w6@1")._repr_latex_()
    # the update substitutes the rounded gradient: ≈ from the first sign on ("=" marks exact values)
    assert after.startswith("$\\displaystyle {w_{6}}^{(1)} \\approx ")
    v = ref.numbers("two-two-two")
    expected = v["w6"] - v["_lr"] * ref.gradients("two-two-two")[("w6", ())]
    assert ref.agrees(re.search(r"\\approx (\S+)\$$", after).group(1), expected, 6)


def test_solve_refuses_an_unknown_language():
    with pytest.raises(derive.DeriveError, match="lang must be one of en, zh"):
        derive.load("two-two-two").solve(lang="fr")


def test_chinese_display():
    s = derive.load("two-two-two").solve(digits=6, lang="zh")
    assert s.sections[1].title.startswith("1.") and re.search(r"[\u4e00-\u9fff]", s.sections[1].title)


def test_check_report_displays_as_a_table():
    report = derive.check_claims(str(ref.PROBLEMS / "two-two-two.claims.toml"), digits=6)
    data = report.to_json()
    table = report._repr_markdown_()
    rows = [ln for ln in table.split("\n") if ln.startswith("| ") and not ln.startswith("| #")]
    assert len(rows) == len(data["claims"]) == len(report.results) > 10
    for row, claim in zip(rows, data["claims"]):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert cells[0] == str(claim["index"])
        assert cells[4] == display.VERDICT_NAMES["en"][claim["verdict"]]
    assert table.rstrip().endswith(report.summary)
    counts = data["summary"]
    assert report.summary.startswith(f"{len(rows)} claims: {counts['correct']} correct")
    assert str(report).startswith(report.claims_file.path)


def test_formula_of_a_step_is_the_handouts_derivation(sol):
    tex = sol.formula("dE_total/dw6").latex
    assert "\\delta_{o_1}" in tex                      # through the layer's error signal, as the handout
    # a quantity that is no step of the handout: its name, formula and value
    other = sol.formula("dE_total/dout_o1").latex
    assert other.startswith("\\frac{\\partial E_{\\mathrm{total}}}{\\partial \\mathrm{out}_{o_1}} = ")
    value = other.split("\\approx ")[-1]
    # ∂E/∂out_o1 = out_o1 − target_o1 (E = ½Σ(t − out)²), from the reference's forward values
    forward = ref.forward_values("two-two-two")
    numbers = ref.numbers("two-two-two")
    assert ref.agrees(value, forward["out_o1"] - numbers["target_o1"], 6)


def test_html_is_the_interactive_body(sol):
    a, b = sol._repr_html_(), sol._repr_html_()
    assert a.startswith("<style>") and '<section class="derive-solution"' in a and "<script>" in a
    assert 'data-quantity="dE_total/dw6"' in a and "\\(" in a and 'class="tex"' not in a
    assert "katex.min" not in a and len(a) < 400_000
    ids_a = set(re.findall(r'<input id="([^"]+)"', a))
    ids_b = set(re.findall(r'<input id="([^"]+)"', b))
    assert ids_a and not ids_a & ids_b            # two displays in one notebook do not share ids
    # the page's element styles are scoped: they cannot restyle the notebook
    css = a[len("<style>"):a.index("</style>")]
    assert not re.search(r"(^|\})\s*(body|html|main|h1|h2|h3|table|td|p|figure|footer|\*)\s*[{,:]", css)


def test_check_report_as_html_table():
    r = derive.check_claims("two-two-two")
    html = r._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == len(r.results) + 1
    assert f"<p>{r.summary}</p>" in html
    # user text is escaped: a claim's formula with < or & cannot become markup
    assert all("<script" not in c for c in html.split("<td>")[1:])

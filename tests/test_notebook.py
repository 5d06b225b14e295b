"""Jupyter display (derive/notebook.py, the repr methods of solve.Solution), tested through the repr
methods themselves: no notebook server."""
import json
import re

import mpmath
import pytest

import derive
import reference as ref
from conftest import run_cli
from derive.errors import DeriveError


@pytest.fixture(scope="module")
def sol():
    s = derive.load("two-two-two").solve(digits=6)
    s.lang = "en"
    return s


def test_markdown_has_jupyter_math(sol):
    md = sol._repr_markdown_()
    assert md.startswith("# 2-2-2 sigmoid network")
    assert "$`" not in md and "```math" not in md
    assert "$$\n\\begin{aligned}" in md and "$\\approx$" in md
    assert "0.0281337" in md                     # dE_total/dw6 as the handout shows it


def test_sections_in_order(sol):
    parts = sol.sections
    assert [p.title for p in parts] == ["1. The network", "2. Given", "3. Forward pass", "4. Loss",
                                        "5. Backward pass", "6. Update", "7. Forward pass with the new parameters"]
    assert all(p._repr_markdown_().startswith("## ") for p in parts)
    assert "E_{\\mathrm{total}}" in parts[3]._repr_markdown_()


def test_one_formula_as_latex(sol):
    f = sol.formula("dE_total/dw6")
    tex = f._repr_latex_()
    assert tex.startswith("$$ ") and tex.endswith(" $$") and "\\delta_{o_1}" in tex
    value = tex.split("\\approx")[-1].strip(" $")
    with mpmath.workdps(40):
        g = ref.gradients("two-two-two")[("w6", ())]
        assert ref.agrees(value, g, 6)
    assert "w_{6}^{(1)}" in sol.formula("w6@1").tex or "{w_{6}}^{(1)}" in sol.formula("w6@1").tex
    with pytest.raises(DeriveError, match="not a step"):
        sol.formula("dE_total/dw99")


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


def test_a_check_displays_as_a_table():
    r = derive.check_claims("two-two-two")
    cli = run_cli("check", "two-two-two", "--json")
    claims = json.loads(cli.stdout)["claims"]
    rows = r.rows()
    assert len(rows) == len(claims)
    names = {"correct": "correct", "rounding": "rounding", "truncated": "truncated", "wrong": "wrong"}
    assert [row[4] for row in rows] == [names[c["verdict"]] for c in claims]
    md = r._repr_markdown_()
    assert md.startswith("| # | claim | claimed | true | verdict | diagnosis | message |")
    assert md.count("\n| ") == len(claims)
    assert f"{len(claims)} claims:" in md
    html = r._repr_html_()
    assert html.startswith("<table>") and html.count("<tr>") == len(claims) + 1
    assert repr(r).splitlines()[0].endswith("(two-two-two)")

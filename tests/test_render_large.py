"""Worked solutions of large networks (issue 8 item 6): over LARGE_ENTRIES parameter entries,
`derive render` shows the matrix form and a stated selection of entries, says so in both
languages, prints the numbers `derive solve --json` gives, and never builds the per-scalar graph."""
import json
import re
import sys
from pathlib import Path

import mpmath
import pytest

import derive
from derive import exercise_context, large, render
from derive import printer as pr
from conftest import ROOT, run_cli

sys.path.insert(0, str(ROOT / "bench"))
from mlp import mlp_arrays, write_mlp  # noqa: E402

SIZES = [784, 12, 10]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return write_mlp(SIZES, tmp_path_factory.mktemp("big"))


@pytest.fixture(scope="module")
def solved(big):
    r = run_cli("solve", big, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def md(big):
    r = run_cli("render", big, "--lang", "en", "--digits", "10")
    assert r.returncode == 0, r.stderr
    return r.stdout


def _final(text: str, lhs: str) -> str:
    """The last number of the displayed equation that starts with `lhs` (after '\\approx' or '=')."""
    for block in re.findall(r"```math\n(.*?)\n```", text, re.S):
        body = block.replace("\\begin{aligned}", "").replace("\\end{aligned}", "").strip()
        eqs: list = []          # an aligned display holds several equations, each from a row without '&' first
        for row in body.split(" \\\\\n"):
            if row.strip().startswith("&") and eqs:
                eqs[-1] += " " + row.strip()
            else:
                eqs.append(row.strip())
        for eq in eqs:
            if eq.startswith(lhs):
                return re.split(r"\\approx|=", eq)[-1].strip()
    raise AssertionError(f"no equation for {lhs}")


def test_large_render_states_the_selection_in_both_languages(big, md):
    assert "9550 parameter entries (more than 30)" in md
    assert "selection: $`W_{1,11}`$, $`b_{1,1}`$, $`W_{2,11}`$, $`b_{2,1}`$" in md
    assert "\\frac{\\partial E}{\\partial W_{1}} = \\frac{\\partial E}{\\partial z_{1}} \\cdot {x}^{\\top}" in md
    assert "W_{1}: 12\\times 784" in md                      # a large matrix by its shape
    assert md.count("\\begin{pmatrix}") < 40                  # not thousands of entries
    zh = run_cli("render", big, "--lang", "zh", "--format", "tex")
    assert zh.returncode == 0, zh.stderr
    assert "9550 个参数分量" in zh.stdout and "$W_{1,11}$、$b_{1,1}$" in zh.stdout


def test_large_render_prints_the_numbers_of_derive_solve(md, solved):
    g, u = solved["gradients"], solved["updated"]
    want = {
        "\\frac{\\partial E}{\\partial W_{1,11}}": g["W1"][0][0],
        "\\frac{\\partial E}{\\partial b_{1,1}}": g["b1"][0],
        "\\frac{\\partial E}{\\partial W_{2,11}}": g["W2"][0][0],
        "\\frac{\\partial E}{\\partial b_{2,1}}": g["b2"][0],
        "{W_{1,11}}^{(1)}": u["W1"][0][0],
        "{b_{2,1}}^{(1)}": u["b2"][0],
        "E =": solved["loss"],
        "E^{(1)}": solved["loss_after"],
    }
    for lhs, value in want.items():
        assert _final(md, lhs) == pr.number(value), lhs
    # a small matrix is written out: dE/db2 whole, each entry as derive solve gives it
    b2 = re.search(r"\\frac\{\\partial E\}\{\\partial b_\{2\}\} \\approx \\begin\{pmatrix\} (.*?) \\end\{pmatrix\}", md)
    assert b2.group(1).split(" \\\\ ") == [pr.number(v) for v in g["b2"]]
    assert f"a_{{2}} = \\sigma(z_{{2}}) \\approx \\begin{{pmatrix}} {pr.number(solved['forward']['a2'][0])}" in md


def _reference(arrays, i: int, j: int) -> mpmath.mpf:
    """dE/dW1[i,j] by a hand-written mpmath backprop (50 digits) of the 784-12-10 network."""
    with mpmath.workdps(50):
        f = lambda v: mpmath.mpf(float(v))  # noqa: E731   (float64 → mpf is exact)
        s = lambda z: 1 / (1 + mpmath.exp(-z))  # noqa: E731
        x, y = [f(v) for v in arrays["x"]], [f(v) for v in arrays["y"]]
        a1 = [s(mpmath.fsum(f(w) * xx for w, xx in zip(row, x)) + f(b)) for row, b in zip(arrays["W1"], arrays["b1"])]
        a2 = [s(mpmath.fsum(f(w) * h for w, h in zip(row, a1)) + f(b)) for row, b in zip(arrays["W2"], arrays["b2"])]
        d2 = [(o - t) * o * (1 - o) for o, t in zip(a2, y)]
        d1 = mpmath.fsum(f(arrays["W2"][k][i]) * d2[k] for k in range(len(d2))) * a1[i] * (1 - a1[i])
        return d1 * x[j]


def test_only_picks_entries_and_their_numbers_are_right(big, solved):
    r = run_cli("render", big, "--only", "W1[2,3],b2[4]", "--digits", "10")
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "selection: $`W_{1,23}`$, $`b_{2,4}`$" in text
    assert "Only the gradients of $`b_{2}`$, $`W_{1}`$ are derived here." in text
    shown = _final(text, "\\frac{\\partial E}{\\partial W_{1,23}}")
    assert shown == pr.number(solved["gradients"]["W1"][1][2])
    assert _final(text, "\\frac{\\partial E}{\\partial b_{2,4}}") == pr.number(solved["gradients"]["b2"][3])
    ref = _reference(mlp_arrays(SIZES), 1, 2)
    assert abs(mpmath.mpf(solved["gradients"]["W1"][1][2]) / ref - 1) < mpmath.mpf(10) ** -9
    # the entry of the rule written out: dE/dz1_2 · x_3 with the engine's numbers
    # (the numbers may begin the next row of the aligned display, together with the value)
    m = re.search(r"\\frac\{\\partial E\}\{\\partial z_\{1,2\}\} \\cdot x_\{3\}(?: \\\\\n&| )= (\S+) \\cdot \\left\((\S+)\\right\)", text)
    x3 = mlp_arrays(SIZES)["x"][2]
    assert m and abs(float(m.group(2)) / x3 - 1) < 1e-9


def test_a_large_render_does_not_build_the_per_scalar_graph(big):
    problem = derive.load(str(big))
    assert large.is_large(problem)
    text = render.render_text(problem, fmt="md", lang="en")
    tex = exercise_context.render_exercise(problem, fmt="tex", lang="zh", mode="key")
    assert "graph" not in problem.__dict__ and "calculus" not in problem.__dict__   # cached properties
    assert "W_{1,11}" in text and "\\section" in tex


@pytest.mark.parametrize("only, message", [
    ("W1[13,1]", "'W1[13,1]' is outside W1, a 12×784 matrix (entries are counted from 1)"),
    ("W1[2]", "'W1[2]': W1 is a 12×784 matrix: write W1[i,j]"),
    ("W3", "'W3' is not a parameter of mlp (parameters: W1, b1, W2, b2)"),
])
def test_bad_selection_is_one_line_exit_2(big, only, message):
    r = run_cli("render", big, "--only", only)
    assert r.returncode == 2 and r.stderr == f"derive: --only: {message}\n"


def test_small_networks_keep_the_full_derivation():
    p = derive.load("sigmoid-2-4-2")     # 22 parameter entries
    assert not large.is_large(p)
    text = render.render_text(p, fmt="md", lang="en")
    assert "parameter entries" not in text and "W_{\\mathrm{hidden}}" in text
    mid = write_mlp([4, 5, 3], Path(__import__("tempfile").mkdtemp()) / "mid")   # 43 entries: large
    q = derive.load(str(mid))
    assert large.is_large(q)
    sol = q.solve()
    text = render.render_text(q, fmt="md", lang="en", solution=sol)
    assert "43 parameter entries" in text
    # every entry shown agrees with the per-scalar path's numbers (built here on purpose)
    assert _final(text, "\\frac{\\partial E}{\\partial W_{1,11}}") == pr.number(sol.gradients["W1"].values[0].text)
    entry = q.graph.quantities["W1"].entries[0]
    assert _final(text, "\\frac{\\partial E}{\\partial W_{1,11}}") == pr.number(sol.adjoint(entry).text)

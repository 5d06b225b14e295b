"""Worked solutions: Markdown and LaTeX handouts, PDF, `derive render` and `derive build`.

The numbers in a handout must be the engine's (checked against the Solution object and against the
independent computations of tests/reference.py); every parameter gets its backward-pass section;
Markdown math is balanced; exercise sheets carry no results; user text cannot inject LaTeX; every
generated .tex compiles with the real TeX engines; output/ is what `derive build` writes.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import mpmath
import pytest

import derive
from derive import printer as pr
from derive import exercise_context, render
from derive import templating
from derive.matrixform import matrix_rules
from derive.spec import builtin_ids

from conftest import ROOT, run_cli
import reference

IDS = builtin_ids()
NUMERIC = [p for p in IDS if not derive.load(p).is_symbolic]
LANGS = ("en", "zh")
HAVE_XELATEX = shutil.which("xelatex") is not None and shutil.which("latexmk") is not None
HAVE_PDFLATEX = shutil.which("pdflatex") is not None and shutil.which("latexmk") is not None
needs_xelatex = pytest.mark.skipif(
    not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
needs_pdflatex = pytest.mark.skipif(
    not HAVE_PDFLATEX, reason="pdflatex/latexmk not installed (CI installs TeX Live; see .ci/run)")

HOSTILE_TITLE = r"\input{/etc/passwd} 100% #1 a_b & $x$ {y} ~z^ \end{document} \def\x{1}"
def _hostile_spec() -> str:
    title = HOSTILE_TITLE.replace("\\", "\\\\")
    # the zh title too (a zh document shows the spec's title only when it is written in Chinese;
    # titles.document_title): both languages typeset the hostile text
    return (f'title = "{title}"\ntitle_zh = "反向传播 {title}"\n'
            'source = "\\\\write18{rm -rf /} 50% of #2 \\\\immediate\\\\openout"\n'
            'lang = "en"\n[data]\nx = 2\nt = 1\n[parameters]\nw = 0.5\nb = -0.25\n'
            '[forward]\ny = "w*x + b"\nE = "(t - y)^2"\n[train]\nlearning_rate = 0.1\n')


# ---------------------------------------------------------------- helpers
@lru_cache(maxsize=None)
def problem(pid):
    return derive.load(pid)


@lru_cache(maxsize=None)
def solution(pid, digits=10):
    return problem(pid).solve(digits=digits)


@lru_cache(maxsize=None)
def text(pid, fmt="md", lang="en", mode="solution", only=None, digits=10):
    if mode in exercise_context.MODES:      # sheets and keys: derive/exercise_context.py (tests/test_exercise.py)
        return exercise_context.render_exercise(problem(pid), fmt=fmt, lang=lang, mode=mode,
                                                only=list(only) if only else None)
    return render.render_text(problem(pid), fmt=fmt, lang=lang, mode=mode, digits=digits,
                              only=list(only) if only else None, solution=solution(pid, digits))


def backward_part(out: str) -> str:
    if "\n## 5." in out:
        return out.split("\n## 5.", 1)[1].split("\n## 6.", 1)[0]
    return out.split("\\section{", 5)[-1].split("\\section{", 1)[0] if "\\begin{document}" in out else out


LHS = r"(?:\\frac\{\\partial (?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}\{\\partial (.+?)\})"
DELTA = r"(?:\\delta_\{(.+?)\})"


def _equations(out: str, lhs: str) -> dict:
    """Equations of the backward pass whose left side matches `lhs`: its symbol -> the equation's
    lines (an aligned display's row and the continuation rows after it, or a one-line display)."""
    found: dict = {}
    cur = None
    for line in _backward(out).splitlines():
        line = line.strip()
        body = line[3:] if line.startswith("\\[ ") else line
        m = re.match(lhs + r" &?=", body)
        if m:
            cur = m.group(1)
            found[cur] = body
        elif cur and line.startswith("&"):
            found[cur] += "\n" + line
        else:
            cur = None
    return found


def _backward(out: str) -> str:
    if "\\begin{document}" in out:
        return re.split(r"\\section\{", out.split("\\begin{document}", 1)[1])[5]
    return out.split("\n## 5.", 1)[1].split("\n## 6.", 1)[0]


def md_sections(md: str) -> dict:
    """The gradients of the backward pass: the parameter's symbol (LaTeX) -> its equation (scalar
    specs: one equation per parameter entry; matrix specs: the section of the matrix)."""
    backward = _backward(md)
    parts = re.split(r"^### 5\.\d+ [^$\n]*\$`(.+?)`\$.*$", backward, flags=re.M)
    if len(parts) > 1:
        return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}
    return _equations(md, LHS)


def tex_sections(tex: str) -> dict:
    parts = re.split(r"^\\subsection\{[^$\n]*\$(.+?)\$.*\}\s*$", tex, flags=re.M)
    if len(parts) > 1:
        return {parts[i]: parts[i + 1].split("\\section{", 1)[0] for i in range(1, len(parts), 2)}
    return _equations(tex, LHS)


def deltas(out: str) -> dict:
    """The error signals of the backward pass: δ's subscript -> its equation."""
    return _equations(out, DELTA)


def expected_sections(pid) -> dict:
    """Display symbol -> list of (entry) for every parameter the problem updates (matrix specs: one
    per matrix); the parameters it keeps fixed get no gradient of their own."""
    p = problem(pid)
    names = pr.display_names(p.spec, p.graph)
    matrix = bool(matrix_rules(p.graph)) if any(not q.is_scalar for q in p.graph.quantities.values()) else False
    out = {}
    for name in p.graph.parameters:
        if name not in p.spec.update:
            continue
        q = p.graph.quantities[name]
        if matrix:
            out[names[name]] = list(q.entries)
        else:
            for e in q.entries:
                out[pr.with_index(names[name], e.index, q.shape)] = [e]
    return out


def numbers_in(tex: str) -> set:
    """Every decimal number printed (as the engine writes it: 1.2, -3.4e-5 → '-3.4 \\times 10^{-5}')."""
    found = set(re.findall(r"-?\d+(?:\.\d+)?(?: \\times 10\^\{-?\d+\})?", tex))
    return found


def math_balanced(md: str):
    """The GitHub-robust math forms only: display math in ```math blocks without blank lines, inline
    math as $`…`$ spans; no $$ and no other (unescaped) dollar sign anywhere."""
    in_code = in_math = False
    for n, line in enumerate(md.splitlines(), 1):
        if line.startswith("```"):
            if not in_code and line.strip() == "```math":
                in_math = True
            in_code = not in_code
            if not in_code:
                in_math = False
            continue
        if in_math:
            assert line.strip(), f"blank line inside a math block at line {n}"
            assert "`" not in line and "$" not in line.replace("\\$", ""), f"$ or ` in a math block at line {n}"
            continue
        if in_code:
            continue
        bare = re.sub(r"\$`[^`]+`\$", "", line.replace("\\$", ""))
        assert "$" not in bare, f"a dollar sign outside $`…`$ at line {n}: {line}"
    assert not in_code, "unclosed code block"


def latex_balanced(tex: str):
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0
    assert depth == 0
    assert tex.count("\\begin{") == tex.count("\\end{")


# ---------------------------------------------------------------- the numbers are the engine's
def test_two_two_two_w6_numbers():
    """Seed 003's example: ∂E/∂w6 and the new w6, against the engine and an independent computation."""
    sol = solution("two-two-two")
    g = problem("two-two-two").graph
    w6 = g.quantities["w6"].entries[0]
    grad, new = sol.adjoint(w6).text, sol.value(w6, 1).text
    ref_grad = reference.gradients("two-two-two")[("w6", ())]
    with mpmath.workdps(60):
        v = reference.numbers("two-two-two")
        ref_new = v["w6"] - v["_lr"] * ref_grad
    assert reference.agrees(grad, ref_grad, 10) and reference.agrees(new, ref_new, 10)
    assert (grad, new) == ("0.02813366886", "0.3471866331")
    for fmt, sections in (("md", md_sections), ("tex", tex_sections)):
        for lang in LANGS:
            out = text("two-two-two", fmt, lang)
            body = sections(out)["w_{6}"]
            assert f"\\approx {grad}" in body
            # the error signal of o1 times the local derivative, the symbols before the numbers
            assert ("\\frac{\\partial E_{\\mathrm{total}}}{\\partial w_{6}} &= \\delta_{o_1} \\cdot "
                    "\\frac{\\partial \\mathrm{net}_{o_1}}{\\partial w_{6}} = \\delta_{o_1} \\cdot \\mathrm{out}_{h_2} \\approx "
                    "0.04678592365 \\cdot 0.6013276358 \\approx 0.02813366886") in body   # rounded numbers: ≈
            # δ_o1: the chain of factors in textbook order, their formulas, numbers and values
            delta = deltas(out)["o_1"]
            assert ("\\delta_{o_1} &= \\frac{\\partial E_{\\mathrm{total}}}{\\partial \\mathrm{net}_{o_1}} = "
                    "\\frac{\\partial E_{\\mathrm{total}}}{\\partial \\mathrm{out}_{o_1}} \\cdot "
                    "\\frac{\\partial \\mathrm{out}_{o_1}}{\\partial \\mathrm{net}_{o_1}}") in delta
            assert ("\\left(\\mathrm{out}_{o_1} - \\mathrm{target}_{o_1}\\right) \\cdot \\mathrm{out}_{o_1} \\cdot "
                    "\\left(1 - \\mathrm{out}_{o_1}\\right)") in delta
            assert "0.2485983112 \\cdot 0.1881988797 \\approx 0.04678592365" in delta
            assert f"0.35 - 0.1 \\cdot {grad} \\approx {new}" in out


@pytest.mark.parametrize("pid", sorted(reference.WEIGHTED_SUMS))
def test_error_signals_printed_are_engine_and_reference(pid):
    """Every δ shown is the engine's dL/d(weighted sum), and agrees with an independent
    finite-difference derivative of a hand-coded loss (tests/reference.py)."""
    p, sol = problem(pid), solution(pid)
    ref = reference.deltas(pid)
    names = pr.display_names(p.spec, p.graph)
    for fmt in ("md", "tex"):
        shown = deltas(text(pid, fmt, "en"))
        assert len(shown) == len(ref)
        for name, value in ref.items():
            entry = p.graph.quantities[name].entries[0]
            n = sol.adjoint(entry).text
            assert reference.agrees(n, value, 10), (pid, name, n)
            body = next(b for b in shown.values() if f"\\partial {names[name]}}}" in b.split("=")[1])
            assert body.rstrip(" \\").endswith(f"\\approx {pr.number(n)}"), (pid, name, body)


@pytest.mark.parametrize("pid", NUMERIC)
def test_gradients_printed_are_engine_and_reference(pid):
    """Every gradient shown is the engine's value, and agrees with the independent reference."""
    sol = solution(pid)
    ref = reference.gradients(pid)
    md = text(pid, "md", "en")
    secs = md_sections(md)
    for sym, entries in expected_sections(pid).items():
        body = secs[sym]
        for e in entries:
            shown = sol.adjoint(e).text
            # in a matrix with an entry in scientific notation, one below 10⁻³ is written so too
            # (same digits: −0.0001117085486 as −1.117085486×10⁻⁴)
            assert pr.number(shown) in body or pr.number(pr._scientific(shown)) in body, \
                f"{pid}: {sym} does not show {shown}"
            idx = e.index if len(e.index) != 2 or e.qshape[1] != 1 or not _flat(pid, e.quantity) \
                else (e.index[0],)
            assert reference.agrees(shown, ref[(e.quantity, idx)], 10), (pid, sym, shown)


def _flat(pid, name):
    import tomllib
    doc = tomllib.loads((ROOT / "derive" / "problems" / f"{pid}.toml").read_text())
    v = doc["parameters"][name]
    return isinstance(v, list) and not isinstance(v[0], list)


@pytest.mark.parametrize("pid", NUMERIC)
def test_loss_before_and_after_printed(pid):
    sol = solution(pid)
    md = text(pid, "md", "en")
    loss = sol.loss.text
    after = sol.loss_after.text
    assert reference.agrees(loss, reference.loss_value(pid), 10)
    upd = list(problem(pid).spec.update)
    assert reference.agrees(after, reference.loss_after_one_step(pid, upd), 10)
    loss_section = md.split("\n## 4.", 1)[1].split("\n## 5.", 1)[0]
    assert pr.number(loss) in loss_section
    last = md.split("\n## 7.", 1)[1]
    assert f"$`{pr.number(loss)}`$" in last and f"$`{pr.number(after)}`$" in last
    for name in upd:
        shaped = sol.shaped(name, "value", 1)
        assert pr.shaped_latex(shaped) in md.split("\n## 6.", 1)[1].split("\n## 7.", 1)[0]


def test_forward_pass_shows_formula_numbers_and_value():
    md = text("two-two-two", "md", "en")
    # one aligned display for the whole forward pass; one multiplication convention (a centred
    # dot), words upright, σ( without a gap
    assert ("\\mathrm{net}_{h_1} &= w_{1} \\cdot i_{1} + w_{2} \\cdot i_{2} + b_{1} = 0.25 \\cdot 0.02 "
            "+ 0.25 \\cdot 0.04 + 0.4 = 0.005 + 0.01 + 0.4 = 0.415") in md
    assert "\\sigma(0.415) = \\frac{1}{1 + e^{-0.415}}" in md


def test_every_number_in_a_handout_comes_from_the_engine():
    """Every long decimal printed is a value of the Solution or a partial result the renderer asked
    the engine for (term values of a sum, e^-x): templates and renderer never do arithmetic."""
    p, sol = problem("two-two-two"), solution("two-two-two")
    b = render.Builder(p, sol, lang="en", only=None, mode="solution")
    b.context()
    allowed = {pr.number(n.text).lstrip("-") for n in sol.numbers.values()}
    allowed |= {pr.number(v.text).lstrip("-") for s in b._evals.values() for v in s.values}
    body = text("two-two-two", "md", "en").split("\n## 3.", 1)[1]
    for num in numbers_in(body):
        if len(re.sub(r"\D", "", num.split(" \\times")[0])) >= 6:
            assert num.lstrip("-") in allowed, num


# ---------------------------------------------------------------- structure
@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_every_updated_parameter_has_its_gradient(pid, lang):
    want = set(expected_sections(pid))
    assert set(md_sections(text(pid, "md", lang))) == want
    assert set(tex_sections(text(pid, "tex", lang))) == want


def test_fixed_parameters_get_one_line_not_a_gradient():
    """two-two-two keeps its biases fixed: no gradient of theirs, one sentence saying so."""
    for lang, words in (("en", "The problem keeps $`b_{1}`$, $`b_{2}`$ fixed"), ("zh", "题目中 $`b_{1}`$、$`b_{2}`$ 保持不变")):
        md = text("two-two-two", "md", lang)
        assert words in _backward(md)
        assert "\\partial b_{1}}" not in md and "\\partial b_{2}}" not in md


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_markdown_math_is_balanced(pid, lang):
    for mode in ("solution", "exercise"):
        math_balanced(text(pid, "md", lang, mode))
    assert re.search(r"```mermaid\n(---\n.*?\n---\n)?flowchart LR\n", text(pid, "md", lang), re.S)


@pytest.mark.parametrize("pid", IDS)
def test_latex_is_balanced(pid):
    for lang in LANGS:
        for mode in ("solution", "exercise"):
            latex_balanced(text(pid, "tex", lang, mode))


def test_error_signals_derived_once_then_used():
    md = text("two-two-two", "md", "en")
    secs, ds = md_sections(md), deltas(md)
    # ∂out_o1/∂net_o1 and its formula appear in δ_o1 only; every weight into o1 uses δ_o1
    assert _backward(md).count("\\frac{\\partial \\mathrm{out}_{o_1}}{\\partial \\mathrm{net}_{o_1}}") == 1
    assert _backward(md).count("\\mathrm{out}_{o_1} \\cdot \\left(1 - \\mathrm{out}_{o_1}\\right)") == 1
    for w in ("w_{5}", "w_{6}"):
        assert "\\delta_{o_1} \\cdot" in secs[w] and "\\mathrm{out}_{o_1}" not in secs[w]
    # the hidden layer's δ uses the output layer's, by name
    assert "\\delta_{o_1} \\cdot w_{5}" in ds["h_1"]
    # the error signals come before the gradients that use them, the output layer first
    b = _backward(md)
    assert b.index("\\delta_{o_1} &=") < b.index("\\partial w_{5}} &=") < b.index("\\delta_{h_1} &=") \
        < b.index("\\partial w_{1}} &=")
    assert "### 5.1 Output layer" in b and "### 5.2 Hidden layer" in b


def test_hidden_neuron_sums_over_its_consumers():
    """out_h1 feeds o1 and o2: δ_h1 sums over them once, written with their δs."""
    h1 = deltas(text("two-two-two", "md", "en"))["h_1"]
    assert ("\\left(\\delta_{o_1} \\cdot \\frac{\\partial \\mathrm{net}_{o_1}}{\\partial \\mathrm{out}_{h_1}} + "
            "\\delta_{o_2} \\cdot \\frac{\\partial \\mathrm{net}_{o_2}}{\\partial \\mathrm{out}_{h_1}}\\right) \\cdot "
            "\\frac{\\partial \\mathrm{out}_{h_1}}{\\partial \\mathrm{net}_{h_1}}") in h1
    assert "\\left(\\delta_{o_1} \\cdot w_{5} + \\delta_{o_2} \\cdot w_{7}\\right) \\cdot \\mathrm{out}_{h_1}" in h1


def test_matrix_specs_show_the_matrix_form_rule():
    md = text("matrix-linear", "md", "en")
    # the gradient through the layer's error signal δ_P = ∂E/∂P (derived once, before it)
    assert "\\frac{\\partial E}{\\partial W_{2}} = {H}^{\\top} \\cdot \\delta_{P}" in md
    # the loss is on the difference D = P − T (the spec's grad_pred), written out (it was named δ)
    assert "\\delta_{P} = \\frac{\\partial E}{\\partial P} = \\frac{\\partial E}{\\partial D} = D = P - T" in md
    # the product written out with the transposed matrix, as the document does
    assert ("\\begin{pmatrix} 7 & 0 \\\\ 15 & 1 \\end{pmatrix} \\cdot \\begin{pmatrix} 2 & 3 \\\\ 2 & 1 "
            "\\end{pmatrix} = \\begin{pmatrix} 14 & 21 \\\\ 32 & 46 \\end{pmatrix}") in md
    md2 = text("sigmoid-2-4-2", "md", "en")
    assert "\\odot y \\odot \\left(1 - y\\right)" in md2


def test_matrix_linear_gradients_exact():
    """Independent exact computation: ∇W2 = Hᵀ(P − T), ∇W1 = Xᵀ(P − T)W2ᵀ."""
    from fractions import Fraction as F

    def mm(A, B):
        return [[sum(a * b for a, b in zip(r, c)) for c in zip(*B)] for r in A]

    def T(A):
        return [list(c) for c in zip(*A)]

    X = [[2, 0, 3], [0, 1, 0]]
    W1 = [[2, 3], [0, 1], [1, 3]]
    W2 = [[1, 2], [3, 4]]
    Y = [[50, 71], [1, 3]]
    H = mm(X, W1)
    D = [[p - t for p, t in zip(rp, rt)] for rp, rt in zip(mm(H, W2), Y)]
    g2 = mm(T(H), D)
    g1 = mm(T(X), mm(D, T(W2)))
    md = text("matrix-linear", "md", "en")
    for g in (g1, g2):
        assert pr.pmatrix([[str(F(x)) for x in r] for r in g]) in md


def test_symbolic_spec_has_formulas_only():
    md = text("one-two-one", "md", "en")
    body = md.split("\n## 3.", 1)[1]
    for block in re.findall(r"```math\n(.*?)\n```", body, flags=re.S):
        assert not re.search(r"\d\.\d", block), f"a decimal number in a symbolic handout: {block}"
    assert "\\approx" not in body
    # ∂L/∂w1 through δ_1, then all together in named quantities
    assert ("\\frac{\\partial L}{\\partial w_{1}} &= \\delta_{1} \\cdot \\frac{\\partial z_{1}}{\\partial w_{1}} = "
            "\\delta_{1} \\cdot x = \\left(a_{\\mathrm{out}} - y\\right) \\cdot "
            "a_{\\mathrm{out}} \\cdot \\left(1 - a_{\\mathrm{out}}\\right) \\cdot v_{1} \\cdot "
            "a_{1} \\cdot \\left(1 - a_{1}\\right) \\cdot x") in md
    assert "\\delta_{1} &= \\frac{\\partial L}{\\partial z_{1}} = \\delta_{\\mathrm{out}} \\cdot" in md
    assert "{w_{1}}^{(1)} &= w_{1} - \\eta \\, \\frac{\\partial L}{\\partial w_{1}}" in md
    assert "## 7." not in md


@pytest.mark.parametrize("pid", NUMERIC)
def test_exercise_mode_has_no_solution_numbers(pid):
    sol = solution(pid)
    p = problem(pid)
    given = set()
    for name, q in p.graph.quantities.items():
        if q.kind != "forward":
            given |= {v.text for v in sol.shaped(name).values}
    results = {n.text for n in sol.numbers.values()} - given
    results = {r for r in results if len(re.sub(r"\D", "", r)) >= 3}
    for lang in LANGS:
        for fmt in ("md", "tex"):
            out = text(pid, fmt, lang, "exercise")
            shown = numbers_in(out)
            leaked = {r for r in results if pr.number(r) in shown}
            assert not leaked, f"{pid} {fmt} {lang}: exercise shows {sorted(leaked)[:5]}"
            assert "\\approx" not in out.split("\\begin{document}")[-1]


def test_exercise_mode_lists_the_tasks():
    md = text("two-two-two", "md", "en", "exercise")
    assert "## 3. What to compute" in md
    assert "\\frac{\\partial E_{\\mathrm{total}}}{\\partial w_{6}}" in md     # a row of the answer table
    assert "## 5." not in md


def test_only_restricts_the_backward_pass():
    md = text("two-two-two", "md", "en", only=("w1", "w6"))
    assert set(md_sections(md)) == {"w_{1}", "w_{6}"}
    upd = md.split("\n## 6.", 1)[1].split("\n## 7.", 1)[0]
    assert "{w_{1}}^{(1)}" in upd and "{w_{6}}^{(1)}" in upd and "{w_{5}}^{(1)}" not in upd
    # w1 alone: only its own δ, which then sums over the paths through the output layer in place
    md1 = text("two-two-two", "md", "en", only=("w1",))
    only = md_sections(md1)["w_{1}"]
    assert set(deltas(md1)) == {"h_1"}
    assert "\\frac{\\partial \\mathrm{out}_{o_1}}{\\partial \\mathrm{net}_{o_1}}" in deltas(md1)["h_1"]
    assert "\\approx 1.819119121 \\times 10^{-5}" in only



@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("pid, only, heads", [
    ("two-two-two", ("w1",), ["hidden"]),                 # the output layer's weights skipped
    ("two-two-two", ("w5",), ["output"]),
    ("house-price", ("w1", "w7"), ["output", "hidden"]),
    ("house-price", ("w4",), ["hidden"]),
])
def test_layers_are_named_by_their_role_whatever_only_selects(pid, only, heads, lang):
    """`--only w1` on two-two-two headed the hidden layer "Output layer": layers were counted among
    the selected parameters' layers only.  A layer's role is its distance from the loss among all
    the network's layers (the one nearest the loss is the output layer)."""
    md = text(pid, "md", lang, only=only)
    table = tomllib.loads((ROOT / "templates" / f"strings.{lang}.toml").read_text(encoding="utf-8"))
    names = {"output": table["h_layer_output"], "hidden": table["h_layer_hidden"]}
    got = re.findall(r"^### 5\.\d+ (.+)$", md, re.M)
    assert got == [names[h] for h in heads], (pid, only, got)

def test_digits_option():
    md = text("two-two-two", "md", "en", digits=4)
    assert "\\approx 0.02813`$" not in md
    assert "\\approx 0.02813\n" in md or "\\approx 0.02813" in md
    assert "0.02813366886" not in md


def test_deterministic():
    a = render.render_text(problem("house-price"), fmt="tex", lang="zh")
    b = render.render_text(derive.load("house-price"), fmt="tex", lang="zh")
    assert a == b


# ---------------------------------------------------------------- printer
def test_entries_of_a_named_matrix_carry_two_indices_in_one_subscript():
    """An entry of W_{\\mathrm{hidden}} is W_{\\mathrm{hidden},11}, never W_hidden with 11 set after
    it (which reads W_{hidden11}); other names as before."""
    cases = {("W_{\\mathrm{hidden}}", (0, 0), (2, 4)): "W_{\\mathrm{hidden},11}",
             ("W_{\\mathrm{output}}", (1, 3), (2, 4)): "W_{\\mathrm{output},24}",
             ("b_{\\mathrm{hidden}}", (2, 0), (4, 1)): "b_{\\mathrm{hidden},3}",
             ("W_{1}", (0, 1), (3, 2)): "W_{1,12}", ("W", (9, 0), (12, 2)): "W_{10,1}",
             ("\\mathrm{net}_{o_1}", (0, 1), (1, 2)): "\\mathrm{net}_{o_1,2}", ("\\hat{y}", (1, 0), (2, 1)): "{\\hat{y}}_{2}",
             ("{W_{1}}^{(1)}", (0, 0), (2, 2)): "{{W_{1}}^{(1)}}_{11}"}
    for (d, index, shape), want in cases.items():
        assert pr.with_index(d, index, shape) == want
    assert pr.indexed("W_{\\mathrm{hidden}}", (2, 1)) == "W_{\\mathrm{hidden},21}"
    for p in (ROOT / "output").rglob("*"):
        if p.suffix in (".md", ".tex"):
            assert not re.search(r"\\mathrm\{[a-z]+\}\}\}_\{\d", p.read_text(encoding="utf-8")), p.name


def test_default_display_names():
    d = pr.default_display
    assert d("w1") == "w_{1}"
    assert d("net_h1") == "\\mathrm{net}_{h_{1}}"      # a word is upright
    assert d("y_true") == "y_{\\mathrm{true}}"
    assert d("E_total") == "E_{\\mathrm{total}}"
    assert d("y_hat") == "\\hat{y}"
    assert d("w1_21") == "w_{1,21}"
    assert d("eta") == "\\eta"
    assert pr.with_index("W", (0, 1), (2, 3)) == "W_{12}"
    assert pr.with_index("W_{1}", (1, 0), (3, 2)) == "W_{1,21}"
    assert pr.with_index("x", (2, 0), (3, 1)) == "x_{3}"
    assert pr.number("-3.771749664e-5") == "-3.771749664 \\times 10^{-5}"
    assert pr.number("-0.5", paren=True) == "(-0.5)"


def test_tree_printer_keeps_the_users_order():
    p = problem("two-two-two")
    names = pr.display_names(p.spec, p.graph)
    tp = pr.TreePrinter(names, lambda n: p.graph.quantities[n].shape)
    tree = p.graph.quantities["net_o1"].tree
    assert tp.tex(tree) == "w_{5} \\cdot \\mathrm{out}_{h_1} + w_{6} \\cdot \\mathrm{out}_{h_2} + b_{2}"
    assert tp.tex(p.graph.quantities["E_o1"].tree) == \
        "\\frac{1}{2} \\cdot \\left(\\mathrm{target}_{o_1} - \\mathrm{out}_{o_1}\\right)^{2}"


def test_sympy_printer_notation():
    p = problem("two-two-two")
    names = pr.display_names(p.spec, p.graph)
    ld = p.graph.local_derivatives
    out_o1 = p.graph.quantities["out_o1"].entries[0]
    net_o1 = p.graph.quantities["net_o1"].entries[0]
    assert pr.latex(ld[(out_o1, net_o1)].formula, names) == \
        "\\mathrm{out}_{o_1} \\cdot \\left(1 - \\mathrm{out}_{o_1}\\right)"
    from derive.functions import sigmoid, step
    assert pr.latex(sigmoid(net_o1), names) == "\\sigma(\\mathrm{net}_{o_1})"
    assert pr.latex(step(net_o1), names) == "\\mathbf{1}[\\mathrm{net}_{o_1} > 0]"   # relu′, defined
    L = problem("alice").graph
    y = L.quantities["y_pred"].entries[0]
    f = pr.tidy(L.local_derivatives[(L.loss_entry, y)].formula)
    assert pr.latex(f, pr.display_names(L.spec, L)) == \
        "2 \\cdot \\left(y_{\\mathrm{pred}} - y_{\\mathrm{true}}\\right)"


# ---------------------------------------------------------------- LaTeX safety
def test_hostile_title_is_escaped(tmp_path):
    spec = tmp_path / "hostile.toml"
    spec.write_text(_hostile_spec(), encoding="utf-8")
    tex = render.render_text(derive.load(str(spec)), fmt="tex", lang="en")
    assert "\\input{/etc/passwd}" not in tex
    assert "\\textbackslash{}input\\{/etc/passwd\\} 100\\% \\#1 a\\_b \\& \\$x\\$ \\{y\\}" in tex
    assert "\\textbackslash{}write18\\{rm -rf /\\} 50\\% of \\#2" in tex
    assert "\\def\\x" not in tex
    latex_balanced(tex)
    md = render.render_text(derive.load(str(spec)), fmt="md", lang="en")
    math_balanced(md)
    assert "\\$x\\$" in md


@needs_xelatex
def test_hostile_title_compiles_to_its_literal_text(tmp_path, latexmk):
    spec = tmp_path / "hostile.toml"
    spec.write_text(_hostile_spec(), encoding="utf-8")
    for lang in LANGS:
        tex = render.render_text(derive.load(str(spec)), fmt="tex", lang=lang)
        log, pdf, _ = latexmk(tex, "xelatex")
        assert_clean(log, f"hostile {lang}")
        if shutil.which("pdftotext"):
            words = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
            assert "\\input{/etc/passwd} 100% #1 a_b & $x$ {y}" in " ".join(words.split())


# ---------------------------------------------------------------- compiling every handout
# (each document is compiled by the session's `latexmk` fixture, tests/conftest.py: once per
# session, whichever tests and workers need it)
def assert_clean(log: str, what: str):
    assert log, f"{what}: no log"
    errors = [ln for ln in log.splitlines() if ln.startswith("!")]
    assert not errors, f"{what}: {errors[:3]}"
    assert "Undefined control sequence" not in log, what
    assert "Missing character" not in log, f"{what}: a glyph is missing from the font"
    over = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert not [x for x in over if x > 2.0], f"{what}: overfull lines {over}"
    assert re.search(r"Output written on h\.(pdf|xdv)", log), f"{what}: no output"


@needs_xelatex
@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("mode", ("solution", "exercise"))
def test_handout_compiles_with_xelatex(latexmk, pid, lang, mode):
    """Every handout and exercise handout, both languages (English also with pdfLaTeX, below)."""
    assert_clean(latexmk(text(pid, "tex", lang, mode), "xelatex").log, f"{pid}.{lang} {mode} xelatex")


@needs_pdflatex
@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("mode", ("solution", "exercise"))
def test_english_handout_compiles_with_pdflatex(latexmk, pid, mode):
    assert_clean(latexmk(text(pid, "tex", "en", mode), "pdflatex").log, f"{pid}.en {mode} pdflatex")


@needs_xelatex
def test_render_pdf_writes_only_the_pdf(tmp_path):
    out = tmp_path / "sheet.pdf"
    r = run_cli("render", "two-two-two", "--format", "pdf", "--lang", "zh", "--mode", "exercise",
                "-o", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sheet.pdf"]


def test_pdf_without_tex_is_one_clear_line(tmp_path):
    r = run_cli("render", "two-two-two", "--format", "pdf", "-o", tmp_path / "x.pdf",
                env={"PATH": str(tmp_path)})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "apt-get install" in lines[0] and "texlive-xetex" in lines[0]
    assert not (tmp_path / "x.pdf").exists()


# ---------------------------------------------------------------- CLI
def test_render_cli_markdown_to_stdout_and_file(tmp_path):
    r = run_cli("render", "two-two-two", "--format", "md", "--lang", "en")
    assert r.returncode == 0, r.stderr
    assert r.stdout == text("two-two-two", "md", "en", digits=6)     # the handouts' default: 6 digits
    out = tmp_path / "x.tex"
    r = run_cli("render", "matrix-linear", "--format", "tex", "--lang", "zh", "-o", out, "--digits", "10")
    assert r.returncode == 0 and r.stdout == ""
    assert out.read_text(encoding="utf-8") == text("matrix-linear", "tex", "zh")
    assert [p.name for p in tmp_path.iterdir()] == ["x.tex"]


def test_render_default_language_is_the_specs(tmp_path):
    r = run_cli("render", "two-two-two")      # the spec says lang = "zh"
    assert "详细解答" in r.stdout


@pytest.mark.parametrize("args, words", [
    (["render", "two-two-two", "--only", "w1,nope"], "nope"),
    (["render", "two-two-two", "--only", "net_h1"], "not a parameter"),
    (["render", "two-two-two", "--template-dir", "/no/such/dir"], "--template-dir"),
    (["render", "two-two-two", "-o", "/no/such/dir/x.md"], "cannot write"),
    (["render", "two-two-two", "-o", "/etc/passwd/x.md"], "cannot write"),
    (["build", "--out", "/etc/passwd/out"], "cannot"),
])
def test_error_paths_exit_2_with_one_line(args, words):
    r = run_cli(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def test_template_dir_overrides_by_file_name(tmp_path):
    strings = (ROOT / "templates" / "strings.en.toml").read_text(encoding="utf-8")
    (tmp_path / "strings.en.toml").write_text(
        strings.replace('h_forward = "Forward pass"', 'h_forward = "Going forward"'), encoding="utf-8")
    r = run_cli("render", "two-two-two", "--lang", "en", "--template-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    assert "## 3. Going forward" in r.stdout and "## 5. Backward pass" in r.stdout
    (tmp_path / "solution.md.j2").write_text("Only {{ title }}: {{ layers | length }} layers\n")
    r = run_cli("render", "two-two-two", "--lang", "en", "--template-dir", tmp_path)
    assert r.stdout == "Only 2-2-2 sigmoid network with shared biases (Mazur-style example, other numbers): " \
                       "2 layers\n"
    # a LaTeX template too, and user text stays escaped through the filter
    (tmp_path / "solution.tex.j2").write_text("\\VAR{title | tex} \\BLOCK{for s in layers}x\\BLOCK{endfor}\n")
    r = run_cli("render", "matrix-linear", "--format", "tex", "--template-dir", tmp_path)
    assert r.stdout.endswith("xx\n") and "X·W1·W2" in r.stdout   # matrix-linear is lang = "zh": its title_zh


def test_compiled_templates_are_kept_only_for_the_same_text(tmp_path):
    """Templates compiled once per process are used again only while their text is the same: a
    template rewritten between two renders in one process gives the new text, and the same file
    name in another directory (or with the other delimiters) is compiled for itself."""
    problem = derive.load("two-two-two")
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "solution.md.j2").write_text("one {{ title }}\n")
    (other / "solution.md.j2").write_text("other {{ layers | length }}\n")
    first = render.render_text(problem, fmt="md", lang="en", template_dir=str(tmp_path))
    assert first.startswith("one 2-2-2 sigmoid")
    (tmp_path / "solution.md.j2").write_text("two {{ title | md }}\n")
    assert render.render_text(problem, fmt="md", lang="en", template_dir=str(tmp_path)).startswith("two 2-2-2")
    assert render.render_text(problem, fmt="md", lang="en", template_dir=str(other)) == "other 2\n"
    (tmp_path / "solution.tex.j2").write_text("{{ title }} \\VAR{title | tex}\n")
    tex = render.render_text(problem, fmt="tex", lang="en", template_dir=str(tmp_path))
    assert tex.startswith("{{ title }} 2-2-2 sigmoid")
    assert render.render_text(problem, fmt="md", lang="en") == render.render_text(problem, fmt="md", lang="en")


def test_broken_override_template_is_one_line(tmp_path):
    (tmp_path / "solution.md.j2").write_text("{% if %}\n")
    r = run_cli("render", "two-two-two", "--template-dir", tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- derive build and output/
def _tree(d: Path) -> dict:
    """Every file below d (errata/ included) by relative path, PDFs aside."""
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.suffix != ".pdf"}




def test_build_writes_every_handout_and_an_index(built):
    names = set(_tree(built))
    for pid in IDS:
        for lang in LANGS:
            for fmt in ("md", "tex"):
                assert f"{pid}.{lang}.{fmt}" in names
    index = (built / "README.md").read_text(encoding="utf-8")
    for pid in IDS:
        assert f"({pid}.en.md)" in index and f"({pid}.zh.tex)" in index
    assert not [p for p in built.rglob(".*")], "temporary files left behind"


@pytest.mark.slow     # a second build (about 10 s); the fast tier's test_output_directory_is_up_to_date
def test_build_is_deterministic(built, built_one_process):   # compares `built` with output/, another process's build
    """A second build, in another process (the session's `derive build --jobs 1`, which
    tests/test_build.py also compares with `built`: one build for both), writes the same bytes."""
    assert _tree(built_one_process) == _tree(built)


def test_output_directory_is_up_to_date(built):
    """output/ in the repository holds exactly what `derive build` writes (PDFs aside)."""
    repo = ROOT / "output"
    assert repo.is_dir(), "output/ is missing: run python3 -m derive build --out output"
    have, want = _tree(repo), _tree(built)
    stale = sorted(n for n in set(have) | set(want) if have.get(n) != want.get(n))
    assert not stale, f"output/ is stale ({', '.join(stale[:5])}): run python3 -m derive build --out output"


def test_installed_package_finds_its_templates():
    d = templating.default_template_dir()
    assert (d / "solution.md.j2").is_file() and (d / "strings.zh.toml").is_file()


# ---------------------------------------------------------------- the handouts in output/: length and width
PAGE_TARGETS = {"two-two-two": 6, "house-price": 7}     # pages at most, in each language (issue 9)
OUTPUT_SOLUTIONS = [(pid, lang) for pid in IDS for lang in LANGS]


def compiled_output(latexmk, name: str):
    """output/NAME (as `derive build` wrote it: a worked solution at the default digits, an
    errata, a sheet or a key) compiled with XeLaTeX (once a session): Compiled(log, pdf, stdout)."""
    return latexmk((ROOT / "output" / name).read_text(encoding="utf-8"), "xelatex")


def _pages(log: str) -> int:
    m = re.search(r"Output written on h\.(?:pdf|xdv) \((\d+) pages?", log)
    assert m, "no output"
    return int(m.group(1))


@needs_xelatex
@pytest.mark.tex
@pytest.mark.parametrize("pid", sorted(PAGE_TARGETS))
@pytest.mark.parametrize("lang", LANGS)
def test_handout_page_targets(latexmk, pid, lang):
    """A handout a teacher can hand out: the classic 2-2-2 example in at most 6 pages, house-price
    (15 parameters, remarks on its saturated units) in at most 7."""
    log = compiled_output(latexmk, f"{pid}.{lang}.tex").log
    assert _pages(log) <= PAGE_TARGETS[pid], f"{pid}.{lang}: {_pages(log)} pages"


@needs_xelatex
@pytest.mark.tex
@pytest.mark.parametrize("pid,lang", OUTPUT_SOLUTIONS)
def test_output_solutions_have_no_overfull_box(latexmk, pid, lang):
    """No line of a generated worked solution sticks out of the text block by more than 1 pt."""
    log = compiled_output(latexmk, f"{pid}.{lang}.tex").log
    assert_clean(log, f"output/{pid}.{lang}.tex")
    over = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert not [x for x in over if x > 1.0], f"{pid}.{lang}: overfull lines {over}"


# ---------------------------------------------------------------- no nearly blank page in any generated PDF
HAVE_POPPLER = shutil.which("pdftotext") is not None and shutil.which("pdfinfo") is not None
needs_poppler = pytest.mark.skipif(not HAVE_POPPLER, reason="pdftotext/pdfinfo not installed (poppler-utils)")
NEARLY_BLANK = 0.15         # a page with less text than this share of the document's fullest page
FOOTER = re.compile(r"^(Generated by derive\b|由 derive )")
OUTPUT_TEX = sorted(str(p.relative_to(ROOT / "output")) for p in (ROOT / "output").rglob("*.tex"))


def page_texts(pdf: Path) -> list:
    """The text of each page of a PDF (pdftotext, one call per page)."""
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, timeout=60).stdout
    n = int(re.search(r"^Pages:\s+(\d+)", info, flags=re.M).group(1))
    return [subprocess.run(["pdftotext", "-layout", "-f", str(i), "-l", str(i), str(pdf), "-"],
                           capture_output=True, text=True, timeout=60).stdout for i in range(1, n + 1)]


def nearly_blank_pages(texts: list) -> list:
    """(page, why) of the pages a reader would call nearly blank: a page before the last with less
    than NEARLY_BLANK of the fullest page's text; a last page holding nothing but the footer, the
    page number and at most one line (a lone heading)."""
    def size(t):
        return len(re.sub(r"\s", "", t))
    full = max(map(size, texts), default=0)
    bad = []
    for i, t in enumerate(texts, 1):
        if i < len(texts) and size(t) < NEARLY_BLANK * full:
            bad.append((i, f"{size(t)} characters, {100 * size(t) // full} % of the fullest page"))
        content = [ln.strip() for ln in t.splitlines()
                   if ln.strip() and not re.fullmatch(r"\d+", ln.strip()) and not FOOTER.match(ln.strip())]
        if i == len(texts) and len(texts) > 1 and len(content) <= 1:
            bad.append((i, "the last page holds only the footer" + (f" and {content[0]!r}" if content else "")))
    return bad


def test_the_blank_page_detector():
    line = "x" * 60 + "\n"
    assert nearly_blank_pages([line * 40, line * 40, line * 20]) == []        # a short last page is fine
    assert [p for p, _ in nearly_blank_pages([line * 40, line * 3, line * 40])] == [2]
    assert [p for p, _ in nearly_blank_pages([line * 40, "5 Update\n\n   Generated by derive from x.\n  2\n"])] == [2]
    assert [p for p, _ in nearly_blank_pages([line * 40, "由 derive 根据题目 x 生成。\n 2\n"])] == [2]
    assert nearly_blank_pages([line]) == []                                   # one page: nothing to compare


@needs_xelatex
@needs_poppler
@pytest.mark.tex
@pytest.mark.parametrize("name", OUTPUT_TEX)
def test_no_generated_pdf_has_a_nearly_blank_page(latexmk, name):
    """Every PDF of output/ (worked solution, errata, exercise sheet, answer key): no page but the
    last with less than 15 % of a full page's text, and no last page with only a footer or a lone
    heading (the tail of a table, a display or a section keeps company)."""
    pdf = compiled_output(latexmk, name).pdf
    texts = page_texts(pdf) if pdf.is_file() else None
    assert texts is not None, f"{name}: no PDF"
    assert not nearly_blank_pages(texts), f"{name}: {nearly_blank_pages(texts)}"


@pytest.mark.parametrize("lang", LANGS)
def test_a_diverged_sweep_run_says_the_same_number_of_steps_as_its_column(lang):
    """matrix-linear's sweep said "diverged in step 6" beside a Steps column of 5 (the steps whose
    loss is shown); the note now names the last step run, the column's number, and the plot's
    axis is labelled "Step" (the column's header no longer serves as the axis label)."""
    md = (ROOT / "output" / f"matrix-linear.{lang}.md").read_text(encoding="utf-8")
    rows = [r for r in md.splitlines() if r.startswith("| $`0.05`$")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    n = int(cells[4])
    from derive import train
    (run,) = [r for r in train.sweep_of(problem("matrix-linear").spec, 6) if r.learning_rate == Fraction(1, 20)]
    assert n == len(run.training.history) - 1 and run.training.diverged == n + 1     # the engine's run
    said = re.findall(r"(?:after step|第) (\d+)", cells[1])
    assert said == [str(n)], cells[1]
    tex = (ROOT / "output" / f"matrix-linear.{lang}.tex").read_text(encoding="utf-8")
    labels = re.findall(r"xlabel=\{([^}]*)\}", tex)
    assert labels and all(lab in ("Step", "步", "Epoch", "轮次") for lab in labels), labels


@pytest.mark.parametrize("pid", IDS)
def test_no_error_signal_line_differentiates_by_a_quantity_named_delta(pid):
    """matrix-linear named its difference P − T δ, the error signals' letter, and its δ line read
    δ_P = ∂E/∂P = ∂E/∂δ = δ.  No handout differentiates by a bare δ, and a loss defined on a
    difference D = P − T gets the difference written out: δ_P = ∂E/∂P = ∂E/∂D = D = P − T = …"""
    md = text(pid, "md", "en")
    assert not re.search(r"\\frac\{\\partial [^{}]*\}\{\\partial \\delta\}", md), pid
    if pid == "matrix-linear":
        (line,) = [ln for ln in md.splitlines() if ln.startswith("\\delta_{P} = ")]
        parts = line.split(" = ")
        assert parts[1:5] == ["\\frac{\\partial E}{\\partial P}", "\\frac{\\partial E}{\\partial D}", "D", "P - T"], parts
        p = problem(pid)
        want = [[x - y for x, y in zip(r1, r2)] for r1, r2 in zip(reference_rows(p, "pred"), reference_rows(p, "output"))]
        assert parts[5] == pr.pmatrix([[pr.number(str(v)) for v in row] for row in want])


def reference_rows(p, name):
    """The rows of a data matrix, or of pred = X·W1·W2 computed here by hand (exact fractions)."""
    spec = p.spec
    if name in spec.data:
        return spec.data[name].rows()
    X, W1, W2 = spec.data["input_param"].rows(), spec.parameters["w1"].rows(), spec.parameters["w2"].rows()

    def mul(a, b):
        return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]
    return mul(mul(X, W1), W2)


@pytest.mark.parametrize("pid", IDS)
@pytest.mark.parametrize("lang", LANGS)
def test_the_update_rule_names_no_quantity_of_the_problem(pid, lang):
    """softmax-3's handout stated the rule as p⁽¹⁾ = p − η ∂L/∂p, p being its softmax output."""
    md = text(pid, "md", lang)
    rules = re.findall(r"\$`([^`]*?)\^\{\(1\)\} = \1 - \\eta", md)
    p = problem(pid)
    names = set(pr.display_names(p.spec, p.graph).values())
    if p.spec.steps >= 1 and p.spec.update and not p.is_symbolic:
        assert rules, pid
    assert not [r for r in rules if r in names], (pid, rules)


# ---------------------------------------------------------------- review 3 (session 19) fixes
@pytest.mark.parametrize("pid", NUMERIC)
def test_remark_label_is_closed_emphasis_in_markdown(pid):
    """*提示*：… — the colon outside the emphasis: CommonMark (GitHub) leaves '*提示：*' before a CJK
    letter unclosed and shows the asterisks (house-price.zh.md, sigmoid-2-4-2.zh.md)."""
    for lang, label in (("en", "*Remark*:"), ("zh", "*提示*：")):
        md = text(pid, lang=lang, digits=6)
        assert not re.search(r"^\*[^*\n]*[:：]\*", md, re.M), pid
        if "\n*" in md and pid in ("house-price", "sigmoid-2-4-2"):
            assert label in md


def _relation_lines(md: str) -> list:
    return [ln for ln in backward_part(md).splitlines() if ln.startswith("&") or "&=" in ln or "&\\approx" in ln]


def test_equals_only_before_exact_numbers_in_the_backward_pass():
    """'=' marks an exact value (the solution's own convention): a line substituting rounded
    numbers follows '≈', from the first substituted line on (review 3: every δ and gradient line
    of two-two-two had '= (0.748598 − 0.5)·…')."""
    md = text("two-two-two", digits=6)
    back = backward_part(md)
    assert "&\\approx \\left(0.748598 - 0.5\\right) \\cdot 0.748598 \\cdot \\left(1 - 0.748598\\right) " \
           "\\approx 0.248598 \\cdot 0.188199 \\approx 0.0467859" in back
    assert "\\delta_{o_1} \\cdot \\mathrm{out}_{h_1} \\approx 0.0467859 \\cdot 0.602286 \\approx 0.0281785" in back
    for ln in back.splitlines():     # no '=' followed by a rounded 6-digit number of the run
        assert not re.search(r"(?<![<>\\])= \\left\(0\.748598|= 0\.0467859 \\cdot", ln), ln
    # a run whose every number is exact keeps '=' (matrix-linear: integers and short decimals)
    lin = backward_part(text("matrix-linear", digits=6))
    assert "\\approx" not in lin and " = " in lin
    # matrix form: the substituted vectors of sigmoid-2-4-2 are rounded
    sig = backward_part(text("sigmoid-2-4-2", digits=6))
    assert "&= \\left(\\begin{pmatrix} 0.985140" not in sig
    assert "&\\approx \\left(\\begin{pmatrix} 0.985140" in sig


def test_saturated_delta_names_the_merged_local_factor():
    """house-price's δ_h1 skips the line 1.00000·(1 − 1.00000) of a saturated unit; the line of
    values then labels σ′'s value by its formula h₁·(1 − h₁), so no factor goes missing between
    the formula (four factors) and the numbers (three).  The value against mpmath's σ′(z_h1)."""
    md = text("house-price", digits=6)
    m = re.search(r"\\underbrace\{([^{}]*\{-?\d+\}[^{}]*)\}_\{h_\{1\} \\cdot \\left\(1 - h_\{1\}\\right\)\}", md)
    assert m, backward_part(md)[:2000]
    q = Fraction(solution("house-price", 30).forward["z_h1"].text)
    with mpmath.workdps(40):
        z = mpmath.mpf(q.numerator) / q.denominator
        s = 1 / (1 + mpmath.exp(-z))
        want = mpmath.nstr(s * (1 - s), 6, min_fixed=0, max_fixed=0)
    mant, exp = want.split("e")
    assert m.group(1) == f"{mant} \\times 10^{{{int(exp)}}}"


@needs_xelatex
@needs_poppler
@pytest.mark.tex
@pytest.mark.parametrize("pid,lang", OUTPUT_SOLUTIONS)
def test_the_generated_by_line_is_on_the_last_page_under_its_number(latexmk, pid, lang):
    """The 'generated by' line is in the foot of the real last page, below its page number (review
    3: house-price.zh lost it, the style landing on a page never shipped after a full last page;
    alice.en's grew upwards into the last line of text)."""
    pdf = compiled_output(latexmk, f"{pid}.{lang}.tex").pdf
    texts = page_texts(pdf)
    for i, t in enumerate(texts, 1):
        lines = [ln.strip() for ln in t.splitlines() if ln.strip()]
        has = any(FOOTER.match(ln) for ln in lines)
        assert has == (i == len(texts)), f"{pid}.{lang} p.{i}: footer {'on' if has else 'missing from'} it"
        if i == len(texts):
            assert FOOTER.match(lines[-1]) and lines[-2] == str(i), lines[-3:]


def _errata_section(pid: str, lang: str) -> str:
    md = (ROOT / "output" / f"{pid}.{lang}.md").read_text(encoding="utf-8")
    return md.split("\n## 8. ", 1)[1]


@pytest.mark.parametrize("lang", LANGS)
def test_errata_list_tells_a_value_claim_from_a_formula_claim(lang):
    """house-price's claims 54 and 55 are a formula and a value of ∂ŷ/∂h₁: the handout's list gave
    both the same label; a scalar value claim now shows its stated number (from the claims file)."""
    claims = tomllib.loads((ROOT / "derive/problems/house-price.claims.toml").read_text(encoding="utf-8"))["claim"]
    sec = _errata_section("house-price", lang)
    labels = dict(re.findall(r"#claim-(\d+)\)\s*[（(]\$`(.+?)`\$[）)]", sec))
    for n in (54, 55, 60, 61, 64, 65):
        c = claims[n - 1]
        stated = c.get("value")
        assert labels[str(n)].endswith(f" = {stated}") == isinstance(stated, str), (n, labels[str(n)])
    assert labels["54"] != labels["55"] and labels["60"] != labels["61"] and labels["64"] != labels["65"]


@pytest.mark.parametrize("lang", LANGS)
def test_errata_with_rounding_differences_only_announces_no_list(lang):
    """alice's 6 claims differ by rounding only: one sentence names them (no "…in the errata
    handout:" followed by no list, and no "not correct" for a rounding), and zh no longer says
    舍入造成 twice."""
    sec = _errata_section("alice", lang).split("\n---", 1)[0].strip()
    assert "\n- " not in sec and sec.count("#claim-") == 6
    assert ("only by rounding" in sec) if lang == "en" else ("仅来自（中间值的）舍入" in sec)
    assert "not correct" not in sec and "并不正确" not in sec
    zh = _errata_section("two-two-two", "zh")
    assert zh.count("舍入造成") == 0 and "仅因中间值舍入而不同的" in zh


def test_hidden_update_remark_lists_every_unchanged_looking_parameter_in_order():
    """house-price: the remark on updates too small to show said "w1, w2, w4, …", leaving out w3
    (a change of 3.5e-18, below a float's resolution) — the list is now the parameters, in order,
    whose update η·∂L/∂p does not change their 6-digit value (computed here from the gradients)."""
    sol = solution("house-price", 30)
    eta = problem("house-price").spec.learning_rate
    hidden = []
    for name in problem("house-price").spec.update:
        p = Fraction(problem("house-price").spec.parameters[name].entries[0])
        new = p - eta * Fraction(sol.gradients[name].text)
        if p != new and f"{float(p):.5e}" == f"{float(new):.5e}" and p != 0:
            hidden.append(name)
    md = text("house-price", digits=6)
    m = re.search(r"The update of \$`(.+?)`\$ does not show", md)
    assert m, "no remark"
    shown = [x.strip() for x in m.group(1).split(",")]
    want = [pr.default_display(n) for n in hidden[:3]] + (["\\ldots"] if len(hidden) > 3 else [])
    assert shown == want, (shown, hidden)


def test_relu_indicator_is_evaluated_in_the_numbers(write_spec):
    """relu-2-4-2 wrote 1[(matrix)·(vector) > 0] in its line of numbers, never evaluated: the line
    now shows relu′'s 0s and 1s, each the sign of W_hidden·x computed here (one unit made dead)."""
    src = (ROOT / "derive/problems/relu-2-4-2.toml").read_text(encoding="utf-8")
    src = src.replace("W_hidden = [[1, 2], [2, 3], [1, 1], [3, 1]]", "W_hidden = [[1, 2], [-2, -3], [1, 1], [3, 1]]")
    assert "[-2, -3]" in src
    p = derive.load(str(write_spec(src, "relu.toml")))
    spec = p.spec
    W, x = spec.parameters["W_hidden"].rows(), [r[0] for r in spec.data["x"].rows()]
    z = [sum(w * xi for w, xi in zip(row, x)) for row in W]
    want = " \\\\ ".join("1" if zi > 0 else "0" for zi in z)
    assert "0" in want
    md = render.render_text(p, fmt="md", lang="en")
    line = next(ln for ln in md.splitlines() if ln.startswith("\\frac{\\partial E}{\\partial W_{\\mathrm{hidden}}}"))
    assert "\\mathbf{1}[W_{\\mathrm{hidden}} \\cdot x > 0]" in line             # the formula
    assert f"\\odot \\begin{{pmatrix}} {want} \\end{{pmatrix}}\\right)" in line   # its value


@pytest.mark.parametrize("pid", NUMERIC)
def test_no_remark_typesets_a_display_matrix_in_its_line(pid):
    """sigmoid-2-4-2's remark 'The target y_t = (2 3)ᵀ lies outside…' set a display-size pmatrix in a
    line of text; a vector target is written (2, 3)ᵀ, its entries those of the spec."""
    for lang in LANGS:
        md = text(pid, lang=lang, digits=6)
        for ln in md.splitlines():
            if ln.startswith(("*Remark*", "*提示*")):
                assert "pmatrix" not in ln, ln
    if pid == "sigmoid-2-4-2":
        y = problem(pid).spec.data["y_t"].entries
        row = ", ".join(str(v) for v in y)
        assert f"y_{{t}} = \\left({row}\\right)^{{\\top}}" in text(pid, digits=6)


def test_one_number_style_per_matrix():
    """sigmoid-2-4-2's ∂E/∂W_hidden showed −0.000162118 beside −6.16643×10⁻⁵: in a matrix with an
    entry in scientific notation, every entry below 10⁻³ is in scientific notation too, with the
    same digits (the engine's text, read back as the same decimal)."""
    from decimal import Decimal
    md = text("sigmoid-2-4-2", digits=6)
    sol = solution("sigmoid-2-4-2", 6)
    grad = sol.shaped("W_hidden", "adjoint", 0)
    tex = pr.shaped_latex(grad)
    cells = re.findall(r"-?[\d.]+(?: \\times 10\^\{-?\d+\})?", tex.split("\\begin{pmatrix}")[1])
    assert len(cells) == 8 and all("\\times" in c for c in cells), cells
    for c, v in zip(cells, grad.values):
        m = re.fullmatch(r"(-?[\d.]+) \\times 10\^\{(-?\d+)\}", c)
        assert Decimal(m.group(1)).scaleb(int(m.group(2))) == Decimal(v.text)
    assert tex in md
    assert "0.000162118" not in md


@pytest.mark.parametrize("lang", LANGS)
def test_training_rule_says_what_p_and_g_are(lang):
    """alice's training section wrote p ← p − η g with p never introduced (the worked step uses θ)."""
    md = text("alice", lang=lang, digits=6)
    assert "p \\leftarrow p - \\eta\\, g" in md
    said = "every parameter p" if lang == "en" else "每个参数 p"
    assert said in md.split("p \\leftarrow p - \\eta\\, g")[0].rsplit("\n\n", 2)[-2]


@pytest.mark.parametrize("pid", NUMERIC)
def test_every_function_in_given_has_its_derivative(pid):
    """'The functions used, with their derivatives:' listed Σ, mean, ‖A‖_F and softmax without one
    (review 3); each now has its derivative (⊙, an operation, has none).  The formulas checked
    against sympy.diff."""
    import sympy as sp_
    md = text(pid, digits=6)
    given = md.split("\n## 2.", 1)[1].split("\n## 3.", 1)[0]
    if "```math" not in given.split("The functions used", 1)[-1]:
        return
    block = given.split("The functions used", 1)[1].split("```math", 1)[1].split("```", 1)[0]
    items = [ln.strip().lstrip("&").rstrip("\\").strip() for ln in block.splitlines()
             if ln.strip() and not ln.strip().startswith("\\begin") and not ln.strip().startswith("\\end")]
    for it in items:
        assert "\\qquad" in it or it.startswith("(a \\odot b)"), (pid, it)
    a, b = sp_.symbols("a b", real=True)
    assert sp_.simplify(sp_.diff(sp_.sqrt(a ** 2 + b ** 2), a) - a / sp_.sqrt(a ** 2 + b ** 2)) == 0
    z = sp_.symbols("z1:4")
    p = [sp_.exp(zi) / sum(sp_.exp(zj) for zj in z) for zi in z]
    assert all(sp_.simplify(sp_.diff(p[i], z[j]) - p[i] * ((1 if i == j else 0) - p[j])) == 0
               for i in range(3) for j in range(3))


@pytest.mark.parametrize("lang", LANGS)
def test_odot_is_explained_only_where_the_page_uses_it(lang):
    """matrix-linear's backward pass announced '⊙ is the elementwise product' and never used it."""
    for pid in ("matrix-linear", "sigmoid-2-4-2", "linear-2x"):
        back = backward_part(text(pid, lang=lang, digits=6))
        intro, rest = back.split("\n\n### ", 1) if "\n\n### " in back else (back, "")
        uses = "\\odot" in rest
        assert ("$`\\odot`$" in intro) == uses, (pid, uses)
    assert "\\odot" not in backward_part(text("matrix-linear", lang=lang, digits=6)).split("\n\n### ", 1)[1]


@pytest.mark.parametrize("lang", LANGS)
def test_training_says_what_the_samples_are_drawn_from_and_where_it_starts(lang):
    """relu-2-4-2's training: the distribution of the drawn inputs and its parameters, as the spec's
    [dataset.generate] gives them (read here from the TOML), and the rule of the label — not only
    'drawn at random (n = 100, seed = 0)' in ASCII; that it starts from the worked step's parameters
    (alice draws its own and says so instead).  (The update rule's p and g are defined in the
    text: test_training_rule_says_what_p_and_g_are.)"""
    gen = tomllib.loads((ROOT / "derive" / "problems" / "relu-2-4-2.toml").read_text())["dataset"]["generate"]
    for fmt in ("md", "tex"):
        out = text("relu-2-4-2", fmt, lang)
        train = out.split("## Training" if lang == "en" else "## 训练", 1)[-1] if fmt == "md" else \
            out.split("\\section{Training}" if lang == "en" else "\\section{训练}", 1)[1]
        train = train.split("The loss during training" if lang == "en" else "训练过程中的损失", 1)[0]
        assert "n = 100" not in train
        assert str(gen["n"]) in train and f"{gen['x']['distribution']}" in train or lang == "zh"
        mean, std = gen["x"]["mean"], gen["x"]["std"]
        if lang == "en":
            assert re.search(rf"normal distribution \(mean \$`?{mean}`?\$, standard deviation \$`?{std}`?\$\)", train), train
            assert f"seed {gen['seed']}" in train and "starts from the parameters of the worked step" in train
        else:
            assert re.search(rf"正态分布（均值 \$`?{mean}`?\$，标准差 \$`?{std}`?\$）", train), train
            assert f"种子为 {gen['seed']}" in train and "训练从上面那一步所用的参数值" in train
        assert gen["y_t"] == ["sum(x)", "sum(x)"]
        assert "y_{t} = \\left(\\sum x, \\sum x\\right)^{\\top}" in train
        alice = text("alice", fmt, lang)
        assert ("starts from the parameters of the worked step" not in alice
                and "训练从上面那一步所用的参数值" not in alice)

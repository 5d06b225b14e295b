"""The spec's [functions] table (issue 9): `f = "2*x"` defines f(x) = 2x, called in [forward] as
f(W @ x) and applied entry by entry.  Its numbers are checked against the same network written
with the body inlined and against sympy.diff of the composed loss; the worked solution states f
and f′ where it states σ, prints the definitions as written and the local factor f′(…) with its
value; every bad table is one line naming the file and the key, exit 2."""
from __future__ import annotations

import re
from fractions import Fraction

import pytest
import sympy as sp

import derive
from derive import render
from derive import spec as sp_
from derive.errors import DeriveError
from derive.variants import spec_toml

MATRIX = '''
title = "t"
[data]
x = [2, 3]
y_t = [2, 3]
[parameters]
W_hidden = [[1, 2], [2, 3], [1, 1], [3, 1]]
W_output = [[1, 1, 1, 1], [1, 0, 0, 1]]
{functions}
[forward]
h = "{h}"
y_m = "W_output @ h"
E = "1/2*sum((y_t - y_m)^2)"
[train]
learning_rate = 0.01
'''


def _matrix(write_spec, h: str, functions: str = "", name: str = "spec.toml"):
    return derive.load(str(write_spec(MATRIX.format(h=h, functions=functions), name)))


def _numbers(problem, steps: int = 1):
    sol = problem.solve(digits=30, steps=steps)
    return ({n: v.text for n, v in sol.forward.items()}, {n: v.text for n, v in sol.gradients.items()},
            {n: v.text for n, v in sol.updated.items()}, [v.text for v in sol.history])


def test_linear_2x_uses_the_table():
    spec = sp_.load("linear-2x")
    assert list(spec.functions) == ["f"] and spec.functions["f"].text == "2*x"
    h = next(d for d in spec.forward if d.name == "h")
    assert h.text == "f(W_hidden @ x)"
    # what is computed is f's body with the argument put in: 2*(W_hidden @ x), the same tree
    assert h.tree == derive.expr.parse("2*(W_hidden @ x)")
    assert h.shown == derive.expr.parse("f(W_hidden @ x)", {"f"})


def test_numbers_equal_the_inlined_network(write_spec):
    """linear-2x with f against the same network written with 2*(W_hidden @ x): every value."""
    inlined = _matrix(write_spec, "2*(W_hidden @ x)", name="inlined.toml")
    assert _numbers(derive.load("linear-2x"), 2) == _numbers(inlined, 2)


def test_nonlinear_function_against_sympy_diff(write_spec):
    """A nonlinear f (x³/3 + tanh x) on a scalar network: every gradient against sympy.diff of the
    composed loss, and the same network with the body written out."""
    text = '''
title = "s"
[data]
i = 0.5
t = 0.2
[parameters]
w1 = 0.3
w2 = -0.4
[functions]
g = "x^3/3 + tanh(x)"
[forward]
net = "w1*i"
out = "{out}"
o = "w2*out"
E = "1/2*(o - t)^2"
'''
    with_f = derive.load(str(write_spec(text.format(out="g(net)"), "f.toml")))
    inlined = derive.load(str(write_spec(text.format(out="net^3/3 + tanh(net)"), "i.toml")))
    assert _numbers(with_f) == _numbers(inlined)
    w1, w2 = sp.symbols("w1 w2")
    net = w1 * sp.Rational(1, 2)
    E = (w2 * (net ** 3 / 3 + sp.tanh(net)) - sp.Rational(1, 5)) ** 2 / 2
    at = {w1: sp.Rational(3, 10), w2: sp.Rational(-2, 5)}
    grads = with_f.solve(digits=20).gradients
    for name, sym in (("w1", w1), ("w2", w2)):
        true = sp.N(sp.diff(E, sym).subs(at), 40)
        assert abs(sp.Float(grads[name].text, 40) - true) <= abs(true) * sp.Float("1e-19")


def test_verify_checks_the_matrix_form_with_f_prime(write_spec):
    """The matrix-form rule with f′ (f(x) = x² + σ(x)) is checked entry by entry against the scalar
    derivation by `derive verify`, as every other rule."""
    problem = _matrix(write_spec, "act(W_hidden @ x)", '[functions]\nact = "x^2 + sigmoid(x)"')
    rule = next(r for r in derive.matrixform.matrix_rules(problem.graph) if r.wrt == "W_hidden")
    assert "act'(W_hidden @ x" in derive.printer.text(rule.terms[0].expr)
    report = problem.verify(digits=40)
    checks = [c for c in report.checks if c.method == "matrix form"]
    assert any(c.parameter.startswith("W_hidden") for c in checks)
    assert checks and all(c.ok for c in checks) and report.ok


def _md(problem, lang="en"):
    return render.render_text(problem, fmt="md", lang=lang)


def test_worked_solution_states_f_and_its_derivative():
    md = _md(derive.load("linear-2x"))
    given = md.split("## 2.")[1].split("## 3.")[0]
    assert "f(x) = 2 \\cdot x, \\qquad f'(x) = 2" in given
    forward = md.split("## 3.")[1].split("## 4.")[0]
    assert "h &= f(W_{\\mathrm{hidden}} \\cdot x) = f\\mathopen{}\\left(" in forward
    # f applied to the argument's value, then the value
    assert "= f \\begin{pmatrix} 8 \\\\ 13 \\\\ 5 \\\\ 9 \\end{pmatrix} = \\begin{pmatrix} 16 \\\\ 26 \\\\ 10 \\\\ 18" \
        in forward
    zh = _md(derive.load("linear-2x"), "zh")
    assert "f(x) = 2 \\cdot x, \\qquad f'(x) = 2" in zh


def test_chain_rule_shows_f_prime_and_its_value(write_spec):
    """∂E/∂W_hidden = (δ_h ⊙ f′(W_hidden·x))·xᵀ, with f′'s value: 2s for f(x) = 2x, and for
    f(x) = x²/2 + x the entries of W_hidden·x + 1 — each against its own computation."""
    md = _md(derive.load("linear-2x"))
    line = next(ln for ln in md.splitlines() if ln.startswith("\\frac{\\partial E}{\\partial W_{\\mathrm{hidden}}}"))
    assert "\\left(\\delta_{h} \\odot f'(W_{\\mathrm{hidden}} \\cdot x)\\right) \\cdot {x}^{\\top}" in line
    assert "\\odot \\begin{pmatrix} 2 \\\\ 2 \\\\ 2 \\\\ 2 \\end{pmatrix}" in line
    problem = _matrix(write_spec, "q(W_hidden @ x)", '[functions]\nq = "x^2/2 + x"')
    md = _md(problem)
    assert "q(x) = \\frac{x^{2}}{2} + x, \\qquad q'(x) = x + 1" in md
    line = next(ln for ln in md.splitlines() if "q'(W_{\\mathrm{hidden}} \\cdot x)\\right)" in ln)
    z = [8, 13, 5, 9]                                  # W_hidden @ x
    want = " \\\\ ".join(str(v + 1) for v in z)       # q'(z) = z + 1
    assert f"\\odot \\begin{{pmatrix}} {want} \\end{{pmatrix}}" in md.split(line)[1].split("```")[0] + line
    # and the gradient printed is the true one: (δ ⊙ (z + 1)) xᵀ with δ = W_outputᵀ (y_m − y_t)
    W_out = sp.Matrix([[1, 1, 1, 1], [1, 0, 0, 1]])
    h = sp.Matrix([zi ** 2 / sp.Integer(2) + zi for zi in z])
    delta = W_out.T * (W_out * h - sp.Matrix([2, 3]))
    grad = sp.Matrix([delta[i] * (z[i] + 1) for i in range(4)]) * sp.Matrix([[2, 3]])
    got = problem.solve(digits=10).gradients["W_hidden"]
    assert [[Fraction(str(v)) for v in row] for row in _rows(got)] == \
        [[Fraction(int(grad[i, j])) for j in range(2)] for i in range(4)]


def _rows(v):
    text = v.text
    return [re.findall(r"-?[\d.e+-]+", row) for row in re.findall(r"\[([^\[\]]+)\]", text)]


def test_variant_spec_keeps_the_table():
    spec = sp_.load("linear-2x")
    again = sp_.spec_from_dict(sp_.parse_toml(spec_toml(spec, "variant"), "v.toml"), sid="v", path="v.toml")
    assert again.functions["f"].text == "2*x" and again.forward == spec.forward


BAD = [
    ('[functions]\nf = "2*y"', "h = \"f(W_hidden @ x)\"", "functions.f", "'y'"),
    ('[functions]\nf = "2*W_hidden"', "h = \"f(W_hidden @ x)\"", "functions.f", "only its argument x"),
    ('[functions]\nf = "3"', "h = \"f(W_hidden @ x)\"", "functions.f", "does not use the argument x"),
    ('[functions]\nf = "  "', "h = \"f(W_hidden @ x)\"", "functions.f", "empty body"),
    ('[functions]\nf = 2', "h = \"f(W_hidden @ x)\"", "functions.f", "as a string"),
    ('[functions]\nsigmoid = "2*x"', "h = \"sigmoid(W_hidden @ x)\"", "functions.sigmoid", "built-in"),
    ('[functions]\nW_output = "2*x"', "h = \"W_output(W_hidden @ x)\"", "functions.W_output", "parameters.W_output"),
    ('[functions]\ny_t = "2*x"', "h = \"W_hidden @ x\"", "functions.y_t", "data.y_t"),
    ('[functions]\nx = "2*x"', "h = \"W_hidden @ x\"", "functions.x", "data.x"),
    ('[functions]\nf = "2*f(x)"', "h = \"f(W_hidden @ x)\"", "functions.f", "calls itself"),
    ('[functions]\nf = "g(x)"\ng = "f(x)"', "h = \"f(W_hidden @ x)\"", "functions.f", "defined after it"),
    ('[functions]\nf = "sum(x)"', "h = \"f(W_hidden @ x)\"", "functions.f", "sum()"),
    ('[functions]\nf = "x @ x"', "h = \"f(W_hidden @ x)\"", "functions.f", "'@'"),
    ('[functions]\nf = "2*x"', "h = \"f(W_hidden @ x, x)\"", "forward.h", "takes one argument, not 2"),
    ('[functions]\nf = "2*x"', "h = \"f\"", "forward.h", "without an argument"),
    ('[functions]\nf = "2*x"', "h = \"g(W_hidden @ x)\"", "forward.h", "unknown function 'g'"),
    ('[functions]\nh = "2*x"', "h = \"W_hidden @ x\"", "forward.h", "already a function"),
    ('[functions]\nf = "__import__(x)"', "h = \"f(W_hidden @ x)\"", "functions.f", "unknown function '__import__'"),
    ('[functions]\nf = "2*x"\n[functions.g]\nx = 1', "h = \"f(W_hidden @ x)\"", "functions.g", "as a string"),
]


@pytest.mark.parametrize("table,h,key,why", BAD)
def test_bad_tables_are_one_line_errors(write_spec, table, h, key, why):
    text = MATRIX.format(h="H", functions=table).replace('h = "H"', h)
    path = write_spec(text)
    with pytest.raises(DeriveError) as e:
        sp_.load(str(path))
    msg = str(e.value)
    assert "\n" not in msg and key in msg and str(path) in msg and why in msg, msg


def test_a_function_named_like_the_argument(write_spec):
    path = write_spec('title = "t"\n[parameters]\nw = 1\n[functions]\nx = "2*x"\n[forward]\nE = "x(w)^2"\n')
    with pytest.raises(DeriveError, match=r"functions\.x: 'x' is the name of every function's argument"):
        sp_.load(str(path))


def test_bad_table_on_the_command_line(write_spec, cli):
    path = write_spec(MATRIX.format(h="f(W_hidden @ x)", functions='[functions]\nf = "2*W_output"'))
    r = cli("solve", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith(f"derive: {path}: functions.f: ") and "W_output" in r.stderr


def test_scalar_chain_rule_names_f_prime_with_its_value(write_spec):
    """A scalar spec: ∂out/∂net of out = act(net) is written act′(net), then act′(0.15), then its
    value — act′ = 2x + σ(x)(1 − σ(x)) by sympy.diff, evaluated here at 0.15."""
    text = '''
title = "s"
[data]
i1 = 0.5
t = 0.2
[parameters]
w1 = 0.3
w2 = 0.4
[functions]
act = "x^2 + sigmoid(x)"
[forward]
net = "w1*i1"
out = "act(net)"
o2 = "w2*out"
E = "1/2*(o2 - t)^2"
'''
    md = _md(derive.load(str(write_spec(text))))
    assert "\\operatorname{act}(x) = x^{2} + \\sigma(x), \\qquad \\operatorname{act}'(x) = 2 \\cdot x + " \
           "\\sigma(x) \\cdot \\left(1 - \\sigma(x)\\right)" in md
    assert "&= \\delta_{2} \\cdot w_{2} \\cdot \\operatorname{act}'(\\mathrm{net})" in md
    x = sp.Rational(3, 20)
    want = sp.N(sp.diff(sp.Symbol("x") ** 2 + 1 / (1 + sp.exp(-sp.Symbol("x"))), "x").subs("x", x), 6)
    assert f"\\operatorname{{act}}'(0.15) \\approx 0.0239719 \\cdot 0.4 \\cdot {want}" in md

"""derive.latexparse: the LaTeX the seeds write, name matching, and hostile input.

Each case states the tree it expects by writing the same formula in the expression language
(parsed by derive.expr), so a test fails on a different structure, not on spacing."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from derive import expr as ex
from derive.errors import DeriveError
from derive.graph import build
from derive.latexparse import canonical, parse_latex, unparse
from derive.spec import load, problems_dir


def q(text, graph):
    return ex.parse_quantity(text, lambda n: n in graph.quantities)


@pytest.fixture(scope="module")
def house():
    spec = load("house-price")
    return spec, build(spec)


@pytest.fixture(scope="module")
def mazur():
    spec = load("two-two-two")
    return spec, build(spec)


@pytest.fixture(scope="module")
def matrix():
    spec = load("matrix-linear")
    return spec, build(spec)


SEED_CASES = [
    # 000_…txt, as written
    (r"(y - \hat{y})^2", "(y - y_hat)^2"),
    (r"-2(y-\hat{y})", "-2*(y - y_hat)"),
    (r"\sigma(w_7 h_1 + w_8 h_2 + w_9 h_3)", "sigmoid(w7*h1 + w8*h2 + w9*h3)"),
    (r"\sigma(w_{1}x_1 + b_1+ w_{4}x_2 + b_4)", "sigmoid(w1*x1 + b1 + w4*x2 + b4)"),
    (r"\frac{dL}{d\hat{y}} \cdot \frac{d\hat{y}}{dh_{1}} \cdot \frac{dh_{1}}{dw_{1}}",
     "dL/dy_hat*dy_hat/dh1*dh1/dw1"),
    (r"\sigma(z)\cdot(1 - \sigma(z))\cdot\frac{dz}{dh_{1}}", "sigmoid(z)*(1 - sigmoid(z))*dz/dh1"),
    (r"(w_7 h_1 + w_8 h_2 + w_9 h_3)\cdot(1 - (w_7 h_1 + w_8 h_2 + w_9 h_3))\cdot w_7",
     "(w7*h1 + w8*h2 + w9*h3)*(1 - (w7*h1 + w8*h2 + w9*h3))*w7"),
    (r"\sigma(w_1 \cdot x_1 + w_4 \cdot x_2)", "sigmoid(w1*x1 + w4*x2)"),
    (r"\sigma(0.2 \times 120 + 0.5 \times 1)", "sigmoid(0.2*120 + 0.5*1)"),
    (r"(300000 - \hat{y})^2", "(300000 - y_hat)^2"),
    (r"\alpha \cdot \frac{\partial L}{\partial w_{1}^{old}}", "0.001*dL/dw1"),
    (r"w_{1} ^{new}", "w1@1"),
    (r"\sigma(z) = \frac{1}{1 + e^{-z}}".split("=")[1], "1/(1 + exp(-z))"),
    (r"\sigma'(z)", "sigmoid(z)*(1 - sigmoid(z))"),
    (r"\sigma^{\prime}(z)", "sigmoid(z)*(1 - sigmoid(z))"),
    # spellings: w_{1}, w_1 and w1 are one name; implicit products; \left( \right); Unicode
    (r"w_{1}x_{1} + w1x1 + w_1 x_1", "w1*x1 + w1*x1 + w1*x1"),
    (r"\left( y - \hat{y} \right)^{2}", "(y - y_hat)^2"),
    ("σ(z)(1−σ(z))", "sigmoid(z)*(1 - sigmoid(z))"),
    ("ŷ·(1 − ŷ)", "y_hat*(1 - y_hat)"),
    (r"\exp(-z) + \mathrm{e}^{z}", "exp(-z) + exp(z)"),
    (r"\partial L/\partial w_1", "dL/dw1"),
    ("dL/dw1 * 2", "dL/dw1*2"),
    (r"\frac{\partial L}{\partial w_{1}}^{2}", "(dL/dw1)^2"),
    (r"2^{3^{2}}", "2^3^2"),
    (r"x_1^2", "x1^2"),
    (r"\dfrac{1}{2} [y - \hat{y}]^2", "1/2*(y - y_hat)^2"),
    (r"\sqrt{z} + \ln(z) + \tanh(z)", "sqrt(z) + log(z) + tanh(z)"),
    (r"\mathrm{sigmoid}(z) + sigmoid(z)", "sigmoid(z) + sigmoid(z)"),
]


@pytest.mark.parametrize("latex,expected", SEED_CASES)
def test_seed_latex(house, latex, expected):
    spec, graph = house
    assert parse_latex(latex, spec, graph) == q(expected, graph)


def test_multi_letter_display_names(mazur):
    spec, graph = mazur
    cases = [
        (r"net_{h_1}", "net_h1"), (r"out_{o1}", "out_o1"), (r"out_{o_1}", "out_o1"),
        (r"\mathrm{target}_{o_1} - out_{o_1}", "target_o1 - out_o1"),
        (r"E_{\mathrm{total}}", "E_total"), (r"E_{total}", "E_total"),
        (r"\frac{\partial E_{total}}{\partial w_5}", "dE_total/dw5"),
        (r"\frac{\partial E_{total}}{\partial out_{o1}} \cdot \frac{\partial out_{o1}}{\partial net_{o1}}",
         "dE_total/dout_o1*dout_o1/dnet_o1"),
        (r"\sigma(net_{o1})(1-\sigma(net_{o1}))", "sigmoid(net_o1)*(1 - sigmoid(net_o1))"),
        (r"-(target_{o1} - out_{o1})", "-(target_o1 - out_o1)"),
        (r"w_5 - \eta \frac{\partial E_{total}}{\partial w_5}", "w5 - 0.1*dE_total/dw5"),
    ]
    for latex, expected in cases:
        assert parse_latex(latex, spec, graph) == q(expected, graph), latex


def test_matrix_products_by_shape(matrix):
    spec, graph = matrix
    # \cdot between matrices is the matrix product when the inner sizes agree; ^T is transpose
    assert parse_latex(r"H^T \cdot D", spec, graph) == q("transpose(hidden) @ grad_pred", graph)
    assert parse_latex(r"X W_1 W_2", spec, graph) == q("input_param @ w1 @ w2", graph)
    assert parse_latex(r"D \odot D", spec, graph) == q("grad_pred * grad_pred", graph)
    assert parse_latex(r"\frac{1}{2}D", spec, graph) == q("1/2*grad_pred", graph)
    assert parse_latex(r"P - T", spec, graph) == q("pred - output", graph)


def test_symbolic_spec_names():
    spec = load("one-two-one")
    graph = build(spec)
    assert parse_latex(r"v_1 a_1 + v_2 a_2 + c", spec, graph) == q("v1*a1 + v2*a2 + c", graph)
    assert parse_latex(r"\sigma(z_{\text{out}})", spec, graph) == q("sigmoid(z_out)", graph)
    with pytest.raises(DeriveError, match="learning rate"):
        parse_latex(r"\eta", spec, graph)


def test_every_latex_claim_of_the_builtin_files_parses_and_round_trips():
    for path in sorted(Path(str(problems_dir())).glob("*.claims.toml")):
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
        spec = load(doc["spec"])
        graph = build(spec)
        for claim in doc["claim"]:
            if "latex" in claim:
                tree = parse_latex(claim["latex"], spec, graph)
                # the text form parses back to the same tree
                assert q(unparse(tree), graph) == tree, claim["latex"]


def test_canonical_keys():
    assert canonical("w_{1}") == canonical("w_1") == canonical("w1") == "w1"
    assert canonical(r"\hat{y}") == "haty"
    assert canonical(r"\mathrm{sum}_{h_{1}}") == "sumh1"
    assert canonical(r"\mathbf{W}_{\text{hidden}}") == "Whidden"


@pytest.mark.parametrize("latex,message", [
    (r"\input{/etc/passwd}", r"unsupported LaTeX command \\input"),
    (r"\def\x{1} x", r"unsupported LaTeX command \\def"),
    (r"\write18{rm -rf /}", r"unsupported LaTeX command \\write"),
    (r"__import__('os').system('true')", "unexpected character|unknown name"),
    ("eval(1)", "unknown name"),
    (r"\sigma(z", "expected"),
    (r"{z", "unbalanced"),
    ("w_{10}", "unknown name 'w_10'"),
    ("q1", "unknown name"),
    ("", "empty"),
    ("1 +", "expected"),
    ("$z$", "unexpected character"),
    ("z % comment", "unexpected character"),
    (r"\sqrt[3]{z}", "not supported"),
])
def test_hostile_and_bad_input_is_an_error_not_code(house, latex, message):
    spec, graph = house
    with pytest.raises(DeriveError, match=message):
        parse_latex(latex, spec, graph)


def test_nesting_and_length_limits(house):
    spec, graph = house
    with pytest.raises(DeriveError):
        parse_latex("(" * 5000 + "z" + ")" * 5000, spec, graph)
    with pytest.raises(DeriveError):
        parse_latex("{" * 5000 + "z" + "}" * 5000, spec, graph)
    with pytest.raises(DeriveError):
        parse_latex("z+" * 20000 + "z", spec, graph)


def test_no_code_runs(house, tmp_path, monkeypatch):
    """Text that would run code under eval/sympify is only ever an error."""
    spec, graph = house
    marker = tmp_path / "ran"
    hostile = [f"__import__('pathlib').Path('{marker}').touch()",
               f"exec(\"open('{marker}','w')\")", "lambda: 1", "[].__class__"]
    for text in hostile:
        with pytest.raises(DeriveError):
            parse_latex(text, spec, graph)
    assert not marker.exists()


def test_unparse_round_trips_stepped_and_negated_nodes(house):
    spec, graph = house
    for text in ["3*(w1@1)", "-(w1@1)", "x1*(dL/dw1)", "(dL/dw1)^2", "-(dL/dw1)", "a - -b".replace("a", "z").replace("b", "y"),
                 "z/(y*x1)", "2^3^2", "(2^3)^2", "-z^2", "(-z)^2"]:
        tree = q(text, graph)
        assert q(unparse(tree), graph) == tree, text

"""softmax, ln, abs, max, 1-based indexing and one-hot data (issue 9): every number against an
independent computation (mpmath finite differences of the composed loss written out here, or
sympy.diff), the checker with and without one_hot, the parser, and the error paths."""
import json
import re
from fractions import Fraction

import mpmath
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

import derive
from derive import expr as ex
from derive.errors import DeriveError
from derive.printer import TextPrinter
from derive.spec import spec_from_dict
from derive.solve import Problem
from conftest import run_cli

mp = mpmath.mp


def _ce_loss(W, b, x, t):
    """−Σ t ln softmax(W x + b), in mpmath (the composed loss, independent of derive)."""
    z = [mp.fsum(W[i][k] * x[k] for k in range(len(x))) + b[i] for i in range(len(b))]
    m = max(z)
    es = [mp.exp(v - m) for v in z]
    s = mp.fsum(es)
    return -mp.fsum(t[i] * mp.log(es[i] / s) for i in range(len(b)))


def _fd(f, args, where, h):
    """Central finite difference of f in the entry `where` (a path into nested lists)."""
    def shifted(d):
        a = json.loads(json.dumps(args, default=str))
        a = [[[mp.mpf(v) for v in row] if isinstance(row, list) else mp.mpf(row) for row in arg]
             if isinstance(arg[0], list) else [mp.mpf(v) for v in arg] for arg in a]
        ref = a[where[0]]
        if len(where) == 3:
            ref[where[1]][where[2]] += d
        else:
            ref[where[1]] += d
        return f(*a)
    return (shifted(h) - shifted(-h)) / (2 * h)


def _spec(W, b, x, t, one_hot=True, lr="0.1"):
    doc = {"title": "t", "data": {"x": x, "t": t}, "parameters": {"W": W, "b": b},
           "forward": {"z": "W @ x + b", "p": "softmax(z)", "L": "-sum(t * ln(p))"},
           "train": {"learning_rate": float(lr)}}
    if one_hot:
        doc["one_hot"] = ["t"]
    return Problem(spec_from_dict(doc, sid="t", path="t.toml"))


def _close(text: str, true, digits: int) -> bool:
    """The printed decimal equals the true value to its printed significant digits (half an
    ulp of the last printed digit, plus a hair for the finite difference)."""
    v = mp.mpf(text)
    if true == 0:
        return v == 0
    e = mp.floor(mp.log10(abs(true)))
    return abs(v - true) <= mp.mpf(10) ** (e - digits + 1) * mp.mpf("0.5000001")


def test_softmax3_gradients_against_mpmath_finite_differences():
    mp.dps = 60
    p = derive.load("softmax-3")
    sol = p.solve(digits=15)
    W = [[0.5, -0.25], [0.1, 0.3], [-0.4, 0.2]]
    b, x, t = [0.0, 0.1, -0.1], [1.0, -2.0], [0, 1, 0]
    args = [[[mp.mpf(str(v)) for v in r] for r in W], [mp.mpf(str(v)) for v in b],
            [mp.mpf(str(v)) for v in x], [mp.mpf(v) for v in t]]
    assert _close(p.eval("L", digits=15)[0].value.text, _ce_loss(*args), 15)
    assert sol.history[0].text == p.eval("L", digits=15)[0].value.text
    h = mp.mpf("1e-25")
    for i in range(3):
        for j in range(2):
            got = p.eval(f"dL/dW[{i + 1}, {j + 1}]", digits=15)[0].value.text
            assert _close(got, _fd(_ce_loss, args, (0, i, j), h), 15), (i, j, got)
        got = p.eval(f"dL/db[{i + 1}]", digits=15)[0].value.text
        assert _close(got, _fd(_ce_loss, args, (1, i), h), 15)
    # the textbook p − t, computed here from the softmax directly
    z = [mp.fsum(args[0][i][k] * args[2][k] for k in range(2)) + args[1][i] for i in range(3)]
    s = mp.fsum(mp.exp(v) for v in z)
    for i in range(3):
        assert _close(p.eval(f"dL/dz[{i + 1}]", digits=15)[0].value.text, mp.exp(z[i]) / s - t[i], 15)
    # one step: W@1 = W − η·dL/dW
    for i in range(3):
        for j in range(2):
            g = _fd(_ce_loss, args, (0, i, j), h)
            assert _close(p.eval(f"W@1[{i + 1}, {j + 1}]", digits=15)[0].value.text,
                          args[0][i][j] - mp.mpf("0.1") * g, 15)


small = st.integers(-30, 30).map(lambda n: Fraction(n, 10))


@settings(max_examples=12, deadline=None)
@given(W=st.lists(st.lists(small, min_size=2, max_size=2), min_size=3, max_size=3),
       b=st.lists(small, min_size=3, max_size=3), x=st.lists(small, min_size=2, max_size=2),
       cls=st.integers(0, 2))
def test_random_softmax_networks_agree_with_finite_differences(W, b, x, cls):
    mp.dps = 50
    t = [int(i == cls) for i in range(3)]
    f = lambda q: float(q)  # noqa: E731  (TOML-like floats: the spec reads their repr exactly)
    p = _spec([[f(v) for v in r] for r in W], [f(v) for v in b], [f(v) for v in x], t)
    data = p.solve(digits=10)
    args = [[[mp.mpf(repr(f(v))) for v in r] for r in W], [mp.mpf(repr(f(v))) for v in b],
            [mp.mpf(repr(f(v))) for v in x], [mp.mpf(v) for v in t]]
    assert set(data.gradients) == {"W", "b"}
    h = mp.mpf("1e-20")
    for i in range(3):
        for j in range(2):
            got = p.eval(f"dL/dW[{i + 1},{j + 1}]")[0].value.text
            assert _close(got, _fd(_ce_loss, args, (0, i, j), h), 10)
        assert _close(p.eval(f"dL/db[{i + 1}]")[0].value.text, _fd(_ce_loss, args, (1, i), h), 10)


def test_softmax_is_stable_for_large_inputs():
    mp.dps = 60
    doc = {"title": "t", "data": {"t": [0, 0, 1]}, "parameters": {"z": [1000.0, 1001.0, -5000.0]},
           "forward": {"p": "softmax(z)", "L": "-sum(t * log(p))"}, "one_hot": ["t"]}
    p = Problem(spec_from_dict(doc, sid="t", path="t.toml"))
    zs = [mp.mpf(1000), mp.mpf(1001), mp.mpf(-5000)]
    s = mp.fsum(mp.exp(v - 1001) for v in zs)
    for k in range(3):
        want = mp.exp(zs[k] - 1001) / s
        assert _close(p.eval(f"p[{k + 1}]", digits=12)[0].value.text, want, 12)
        assert _close(p.eval(f"dL/dz[{k + 1}]", digits=12)[0].value.text, want - (k == 2), 12)


def test_softmax_of_a_matrix_is_columnwise():
    doc = {"title": "t", "data": {"T": [[1, 0], [0, 1]]}, "parameters": {"Z": [[0.5, 2.0], [-1.0, 0.25]]},
           "forward": {"P": "softmax(Z)", "L": "-sum(T * ln(P))"}, "one_hot": ["T"]}
    p = Problem(spec_from_dict(doc, sid="t", path="t.toml"))
    mp.dps = 40
    Z = [[mp.mpf("0.5"), mp.mpf(2)], [mp.mpf(-1), mp.mpf("0.25")]]
    for j in range(2):
        s = mp.exp(Z[0][j]) + mp.exp(Z[1][j])
        for i in range(2):
            pij = mp.exp(Z[i][j]) / s
            assert _close(p.eval(f"P[{i + 1}, {j + 1}]", digits=12)[0].value.text, pij, 12)
            assert _close(p.eval(f"dL/dZ[{i + 1}, {j + 1}]", digits=12)[0].value.text,
                          pij - (1 if i == j else 0), 12)


def _sympy_grad(text: str, values: dict, wrt: str):
    syms = {n: sp.Symbol(n, real=True) for n in values}
    loc = {"abs": sp.Abs, "max": sp.Max, "ln": sp.log, **syms}
    f = sp.sympify(text, locals=loc)    # test's own trusted text, not user input
    return sp.diff(f, syms[wrt]).subs({syms[n]: sp.Rational(v) for n, v in values.items()})


@pytest.mark.parametrize("w, x", [("0.7", "1.5"), ("-0.4", "2"), ("1.25", "0.3")])
def test_ln_abs_max_against_sympy_diff(w, x):
    text = "abs(w*x - 1) + max(w, x)**2 + ln(x)*w + max(0, w)"
    doc = {"title": "t", "data": {"x": float(x)}, "parameters": {"w": float(w)},
           "forward": {"L": text.replace("**", "^")}}
    p = Problem(spec_from_dict(doc, sid="t", path="t.toml"))
    want = _sympy_grad(text, {"w": w, "x": x}, "w")
    got = p.eval("dL/dw", digits=12)[0].value.text
    assert _close(got, mp.mpf(str(sp.N(want, 40))), 12)
    assert p.verify().ok


def test_conventions_abs_at_zero_and_max_tie():
    # abs′(0) = 0 (as relu′(0)); at a tie max(a, b) passes the derivative to its first argument
    doc = {"title": "t", "data": {"x": 2.0}, "parameters": {"w": 0.5},
           "forward": {"L": "abs(2*w - 1) + 3*max(w, 0.5) + 5*max(0.5, w)"}}
    p = Problem(spec_from_dict(doc, sid="t", path="t.toml"))
    assert p.eval("dL/dw")[0].value.text == "3"


def test_ln_is_log():
    assert ex.parse("ln(x)") == ex.parse("log(x)")


# ∂L/∂z = p ⊙ sum(t) − t, as the printer writes it (aligned or not, with or without \left)
SUM_T = r"\\frac\{\\partial L\}\{\\partial z\} &?= p \\cdot \\sum_\{j\} t_\{j\} - t"   # p·Σⱼtⱼ − t


def test_cli_solve_render_and_entry_eval():
    r = run_cli("eval", "softmax-3", "dL/dW[1, 2]", "dL/dz[2]", "p[2]")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    sol = json.loads(run_cli("solve", "softmax-3", "--json").stdout)
    assert lines[0].endswith(sol["gradients"]["W"][0][1])
    assert lines[1].endswith(sol["gradients"]["b"][1])      # dL/db = dL/dz
    md = run_cli("render", "softmax-3", "--lang", "en").stdout
    assert "\\operatorname{softmax}" in md
    assert re.search(SUM_T + r" = p - t", md), md          # the one-hot step: a sentence after it
    assert "uses that $`t`$ is one-hot" in md
    # the gradient through the layer's error signal δ_z = ∂L/∂z = p − t, derived once before it
    assert "\\delta_{z} = \\frac{\\partial L}{\\partial z} = " in md
    assert "\\frac{\\partial L}{\\partial W} &= \\delta_{z} \\cdot {x}^{\\top}" in md


# ---------------------------------------------------------------- the checker and one-hot
CLAIMS = 'spec = "{spec}"\n[[claim]]\nof = "dL/dz"\nexpr = "p - t"\n' \
         '[[claim]]\nof = "dL/dW"\nexpr = "(p - t) @ transpose(x)"\n' \
         '[[claim]]\nof = "dL/dW[1, 2]"\nexpr = "(p[1] - t[1])*x[2]"\n'


def test_checker_accepts_p_minus_t_with_one_hot(tmp_path):
    (tmp_path / "c.toml").write_text(CLAIMS.format(spec="softmax-3"))
    r = run_cli("check", str(tmp_path / "c.toml"), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    data = json.loads(r.stdout)
    rows = data["results"] if "results" in data else data["claims"]
    assert [row["verdict"] for row in rows] == ["correct"] * 3


def test_checker_rejects_p_minus_t_without_one_hot(tmp_path):
    from derive.spec import problems_dir
    text = (problems_dir() / "softmax-3.toml").read_text().replace('one_hot = ["t"]\n', "")
    (tmp_path / "s.toml").write_text(text)
    (tmp_path / "c.toml").write_text(CLAIMS.format(spec="s.toml"))
    r = run_cli("check", str(tmp_path / "c.toml"))
    assert r.returncode == 1
    assert "equal at this problem's values but not in general" in r.stdout
    assert "t[1], t[2], t[3]" in r.stdout
    assert 'declare one_hot = ["t"]' in r.stdout
    assert "3 claims: 0 correct, 0 rounding, 0 truncated, 3 wrong" in r.stdout


def test_builtin_claims_show_the_mistakes():
    r = run_cli("check", "softmax-3")
    assert r.returncode == 1
    assert "sign-flip" in r.stdout and "update-sign" in r.stdout
    assert "8 claims: 6 correct, 0 rounding, 0 truncated, 2 wrong" in r.stdout


def test_bce_with_sigmoid_gives_yhat_minus_y(tmp_path):
    # σ + binary cross-entropy: dL/dz = ŷ − y, without any one-hot declaration
    (tmp_path / "s.toml").write_text(
        'title = "t"\n[data]\nx = 0.5\ny = 1\n[parameters]\nw = 0.3\n[forward]\nz = "w*x"\n'
        'y_hat = "sigmoid(z)"\nL = "-(y*ln(y_hat) + (1 - y)*ln(1 - y_hat))"\n')
    (tmp_path / "c.toml").write_text('spec = "s.toml"\n[[claim]]\nof = "dL/dz"\nexpr = "y_hat - y"\n'
                                     '[[claim]]\nof = "dL/dw"\nexpr = "(y_hat - y)*x"\n')
    r = run_cli("check", str(tmp_path / "c.toml"))
    assert r.returncode == 0, r.stdout
    assert "2 claims: 2 correct" in r.stdout


def test_bce_handout_rule_ends_in_x_times_yhat_minus_y(tmp_path):
    (tmp_path / "s.toml").write_text(
        'title = "t"\n[data]\nx = 0.5\ny = 1\n[parameters]\nw = 0.3\n[forward]\nz = "w*x"\n'
        'y_hat = "sigmoid(z)"\nL = "-(y*ln(y_hat) + (1 - y)*ln(1 - y_hat))"\n')
    md = run_cli("render", str(tmp_path / "s.toml"), "--lang", "en").stdout
    # the error signal ends in the simplified form δ_z = ŷ − y, and the gradient in x(ŷ − y) (the
    # product's dot is the printer's convention; the handout derives δ per layer, issue 9)
    assert re.search(r"\\left\(1 - \\hat\{y\}\\right\) = \\hat\{y\} - y", md), md
    assert re.search(r"\\delta_\{z\} \\cdot x = x (\\cdot )?\\left\(\\hat\{y\} - y\\right\)", md), md


def test_rejection_without_one_hot_names_the_general_formula(tmp_path):
    from derive.spec import problems_dir
    text = (problems_dir() / "softmax-3.toml").read_text().replace('one_hot = ["t"]\n', "")
    (tmp_path / "s.toml").write_text(text)
    md = run_cli("render", str(tmp_path / "s.toml"), "--lang", "en").stdout
    # "≈" when the numbers after it are rounded (the worked solutions' "= only for exact values")
    assert re.search(SUM_T + r" (=|\\approx)", md), md
    assert "overset" not in md


t_syms = sp.symbols("t1:4", real=True)
others = sp.symbols("a b c", real=True)
coeffs = st.sampled_from([sp.Integer(0), sp.Integer(1), sp.Integer(-2), others[0], others[1] - others[2],
                          others[0] * others[1]])


@settings(max_examples=40, deadline=None)
@given(c0=coeffs, c=st.lists(coeffs, min_size=3, max_size=3), q=st.lists(coeffs, min_size=3, max_size=3))
def test_one_hot_reduce_keeps_every_one_hot_value(c0, c, q):
    from derive.calculus import one_hot_reduce
    # c0 + Σ c_i t_i + Σ q_i t_i² + t1 t2 (a t_i t_k term vanishes for a one-hot t)
    expr = c0 + sum(ci * ti for ci, ti in zip(c, t_syms)) + sum(qi * ti ** 2 for qi, ti in zip(q, t_syms)) \
        + others[2] * t_syms[0] * t_syms[1]
    reduced = one_hot_reduce(expr, [list(t_syms)])
    for hot in range(3):
        at = {t: int(i == hot) for i, t in enumerate(t_syms)}
        assert sp.simplify(reduced.subs(at) - expr.subs(at)) == 0
    assert sp.Poly(sp.expand(reduced), *t_syms).total_degree() <= 1


def test_one_hot_reduce_gives_p_minus_t():
    from derive.calculus import one_hot_reduce
    p = sp.Symbol("p2", real=True)
    t1, t2, t3 = t_syms
    assert sp.expand(one_hot_reduce(-t2 + p * (t1 + t2 + t3), [[t1, t2, t3]]) - (p - t2)) == 0


# ---------------------------------------------------------------- parsing
names = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in ex.FUNCTIONS and not n.startswith("d"))


@settings(max_examples=60, deadline=None)
@given(name=names, i=st.integers(1, 10**6), j=st.one_of(st.none(), st.integers(1, 10**6)),
       spaces=st.sampled_from(["", " ", "  "]))
def test_index_parses_and_prints_back(name, i, j, spaces):
    idx = (i,) if j is None else (i, j)
    text = f"{name}[{spaces}{i}" + ("" if j is None else f",{spaces}{j}") + f"{spaces}]"
    tree = ex.parse(text)
    assert tree == ex.Index(ex.Name(name), idx)
    assert ex.parse(TextPrinter().doprint(tree)) == tree
    q = ex.parse_quantity(f"dL/d{name}{text[len(name):]}@2", lambda n: n in {"L", name})
    assert q == ex.Index(ex.Deriv("L", name, 2), idx)


@pytest.mark.parametrize("text, fragment", [
    ("x[0]", "indices start at 1"), ("x[-1]", "whole number from 1"), ("x[1.5]", "whole number"),
    ("x[1][2]", "one index per entry"), ("x[1, 2, 3]", "expected ']'"), ("x[]", "whole number"),
    ("x[a]", "whole number"), ("2[1]", "a number has no entries"), ("max(x)", "two arguments"),
    ("softmax(x, y)", "one argument"),
])
def test_bad_index_text(text, fragment):
    with pytest.raises(DeriveError) as e:
        ex.parse(text)
    assert fragment in str(e.value) and e.value.column is not None


# ---------------------------------------------------------------- error paths (CLI, exit 2)
BASE = 'title = "t"\n[data]\nt = {t}\nx = [1, 2]\n[parameters]\nW = [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]]\n' \
       '[forward]\nz = "W @ x"\np = "softmax(z)"\nL = "{loss}"\n'


@pytest.mark.parametrize("t, extra, loss, key, fragment", [
    ("[0, 1, 0]", 'one_hot = ["t"]\n', "-log(p[4])", "forward.L", "index outside 1..3"),
    ("[0, 1, 0]", 'one_hot = ["t"]\n', "-log(W[1])", "forward.L", "give row and column"),
    ("[0, 2, 0]", 'one_hot = ["t"]\n', "-sum(t*log(p))", "one_hot", "has the entry 2"),
    ("[0, 1, 1]", 'one_hot = ["t"]\n', "-sum(t*log(p))", "one_hot", "sums to 2"),
    ("[0, 1, 0]", 'one_hot = ["W"]\n', "-sum(t*log(p))", "one_hot", "is not a name in [data]"),
    ("[0, 1, 0]", 'one_hot = "t"\n', "-sum(t*log(p))", "one_hot", "expected a list"),
    ("[0, 1, 0]", "", "-log(sum(softmax(x[1])))", "forward.L", "softmax needs a vector"),
])
def test_bad_specs_exit_2(tmp_path, t, extra, loss, key, fragment):
    (tmp_path / "s.toml").write_text(extra + BASE.format(t=t, loss=loss))
    r = run_cli("solve", str(tmp_path / "s.toml"))
    assert r.returncode == 2
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert key in r.stderr and fragment in r.stderr and "s.toml" in r.stderr


@pytest.mark.parametrize("quantity, fragment", [
    ("dL/dW[4, 1]", "index outside dL/dW, a 3×2 matrix"), ("p[0]", "indices start at 1"),
    ("L[1]", "is a scalar"), ("dp[1]/dz[1]", "the derivative of one entry, dp[…]/d…, is not supported"),
])
def test_bad_quantity_index_exit_2(quantity, fragment):
    r = run_cli("eval", "softmax-3", quantity)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and fragment in r.stderr, r.stderr


def test_training_float64_agrees_with_certified():
    cert = json.loads(run_cli("train", "softmax-3", "--epochs", "20", "--json").stdout)
    flo = json.loads(run_cli("train", "softmax-3", "--epochs", "20", "--json", "--precision", "float").stdout)
    assert cert["certified"] and not flo["certified"]
    for a, b in zip(cert["history"], flo["history"]):
        assert abs(float(a) - float(b)) <= 1e-12 * max(1.0, abs(float(a)))
    # the certified run's first loss is the composed loss, in mpmath
    mp.dps = 40
    W = [[mp.mpf(v) for v in r] for r in (["0.5", "-0.25"], ["0.1", "0.3"], ["-0.4", "0.2"])]
    assert _close(cert["history"][0], _ce_loss(W, [mp.mpf(v) for v in ("0", "0.1", "-0.1")],
                                               [mp.mpf(1), mp.mpf(-2)], [0, 1, 0]), 10)


def test_abs_max_index_in_float_training(tmp_path):
    (tmp_path / "s.toml").write_text(
        'title = "t"\n[data]\nx = [0.5, -1.5]\n[parameters]\nw = [0.25, 0.75]\n[forward]\n'
        'L = "abs(w[1]*x[1] - 1) + max(w[2], x[1])^2"\n[train]\nlearning_rate = 0.1\nepochs = 5\n')
    cert = json.loads(run_cli("train", str(tmp_path / "s.toml"), "--json").stdout)
    flo = json.loads(run_cli("train", str(tmp_path / "s.toml"), "--json", "--precision", "float").stdout)
    for a, b in zip(cert["history"], flo["history"]):
        assert abs(float(a) - float(b)) <= 1e-12
    # by hand: L = |w1 x1 − 1| + max(w2, x1)²; dL/dw1 = sign(w1 x1 − 1)·x1, dL/dw2 = 2·w2 (w2 > x1)
    w1, w2 = Fraction(1, 4), Fraction(3, 4)
    for _ in range(5):
        g1 = (1 if w1 * Fraction(1, 2) - 1 > 0 else -1) * Fraction(1, 2)
        g2 = 2 * w2 if w2 >= Fraction(1, 2) else 0
        w1, w2 = w1 - Fraction(1, 10) * g1, w2 - Fraction(1, 10) * g2
    assert [Fraction(v) for v in cert["final"]["w"]] == [w1, w2]


def test_latex_softmax_claim(tmp_path):
    (tmp_path / "c.toml").write_text('spec = "softmax-3"\n[[claim]]\nof = "p"\n'
                                     "latex = '\\operatorname{softmax}(W x + b)'\n")
    r = run_cli("check", str(tmp_path / "c.toml"))
    assert r.returncode == 0 and "1 claims: 1 correct" in r.stdout, r.stdout + r.stderr


def test_errata_list_of_a_handout_typesets_single_entries():
    from derive.render import claimed_formula
    p = derive.load("softmax-3")
    assert claimed_formula(p, "dL/dz[2]") == "\\partial L/\\partial z_{2}"
    assert claimed_formula(p, "W@1[1, 1]") == "{W_{11}}^{(1)}"
    assert claimed_formula(p, "p[3]") == "p_{3}"
    # a derivative after a step keeps its step (it was dropped before the claim printer did this)
    q = derive.load("two-two-two")
    assert claimed_formula(q, "dE_total/dw6@1") == "\\partial E_{\\mathrm{total}}/\\partial {w_{6}}^{(1)}"
    assert claimed_formula(q, "dE_total/dw6") == "\\partial E_{\\mathrm{total}}/\\partial w_{6}"

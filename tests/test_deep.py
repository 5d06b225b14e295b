"""Issue 12, class 13: long but flat input (a sum of 1 000 terms, an 80-definition chain, a unit
with 500 inputs) works; only truly nested input (parentheses, calls, powers) meets the limit.
Measured here (2 cores): solve of the 1 000-term sum 2 s, verify of the 80-chain 7 s, render of
the 500-input unit (Markdown) 23 s of CPU (the per-scalar graph: sympy.diff of the 500-term sum
for each of its 1 000 symbols), render of the 100-level polynomial 30 s (printer.tidy's
factor_terms of its derivative).  Those two are `slow` (not in the fast tier); the fast tier
renders a 100-input unit and a 100-level parenthesized expression whose derivative is short."""
import json

import pytest

import derive
from conftest import run_cli


def flat_sum_spec(n: int = 1000) -> str:
    lines = ['title = "flat sum"', "[data]"] + [f"x{i} = {i}" for i in range(1, n + 1)]
    lines += ["[parameters]", "w = 0.5", "[forward]"]
    lines.append('s = "' + " + ".join(f"x{i}" for i in range(1, n + 1)) + '"')
    lines.append('E = "(w*s - 1)^2"')
    return "\n".join(lines) + "\n"


def chain_spec(n: int = 80) -> str:
    lines = ['title = "chain"', "[data]", "x = 0.5", "[parameters]"] + [f"w{i} = 0.{i % 9 + 1}" for i in range(1, n + 1)]
    lines += ["[forward]", 'y1 = "tanh(w1*x)"'] + [f'y{i} = "tanh(w{i}*y{i - 1} + 0.1)"' for i in range(2, n + 1)]
    lines.append(f'E = "(y{n} - 0.5)^2"')
    return "\n".join(lines) + "\n"


def wide_unit_spec(n: int = 500) -> str:
    lines = ['title = "one unit, 500 inputs"', "[data]"] + [f"x{i} = 0.{i % 9 + 1}" for i in range(1, n + 1)]
    lines += ["t = 0.2", "[parameters]"] + [f"w{i} = 0.0{(i * 7) % 9 + 1}" for i in range(1, n + 1)]
    lines += ["[forward]", 'y = "sigmoid(' + " + ".join(f"w{i}*x{i}" for i in range(1, n + 1)) + ')"',
              'E = "(y - t)^2"']
    return "\n".join(lines) + "\n"


def test_flat_sum_of_1000_terms_solves(write_spec):
    p = write_spec(flat_sum_spec())
    assert len(p.read_text().splitlines()[-2]) > 2000
    r = run_cli("solve", p, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["forward"]["s"] == "500500"
    assert data["gradients"]["w"] == "2.50499249e11"   # 2·(250250 − 1)·500500 exactly


def test_long_quantities_and_claims(write_spec, tmp_path):
    p = write_spec(flat_sum_spec())
    long_sum = " + ".join(f"x{i}" for i in range(1, 1001))
    r = run_cli("eval", p, f"w*({long_sum})")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("= 250250")
    claims = tmp_path / "c.toml"
    latex = " + ".join(f"x_{{{i}}}" for i in range(1, 1001))
    claims.write_text(f'spec = "{p.name}"\n[[claim]]\nof = "s"\nexpr = "{long_sum}"\n'
                      f'[[claim]]\nof = "s"\nlatex = \'{latex}\'\n[[claim]]\nof = "{long_sum}"\nvalue = "500500"\n')
    r = run_cli("check", claims)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 claims: 3 correct" in r.stdout
    r = run_cli("check", claims, "--format", "tex")
    assert r.returncode == 0 and "\\documentclass" in r.stdout


def test_80_definition_chain_verifies(write_spec):
    p = write_spec(chain_spec())
    r = run_cli("verify", p)
    assert r.returncode == 0, r.stderr
    assert "verified: every gradient agrees" in r.stdout
    assert "too deep to compose for sympy.diff" in r.stdout   # the cross-check SymPy cannot do


@pytest.mark.parametrize("n", [100, pytest.param(500, marks=pytest.mark.slow)])
def test_unit_with_500_inputs_renders(write_spec, tmp_path, n):
    p = write_spec(wide_unit_spec(n))
    out = tmp_path / "wide.md"
    r = run_cli("render", p, "-o", out)
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert f"w_{{{n}}}" in text and "Traceback" not in r.stderr


def hundred_levels(step) -> str:
    """A spec whose E is `w` wrapped 99 times by `step`: 99 levels of parentheses (the limit is 100)."""
    e = "w"
    for _ in range(99):
        e = step(e)
    return f'title = "t"\n[data]\nx = 0.5\n[parameters]\nw = 0.5\n[forward]\nE = "{e}"\n'


def test_hundred_levels_of_parentheses_work(write_spec):
    p = write_spec(hundred_levels(lambda e: f"({e}*w + x)"))     # a polynomial of degree 100 in w
    assert run_cli("solve", p).returncode == 0
    short = write_spec(hundred_levels(lambda e: f"({e} + x*w)"), "short.toml")   # dE/dw = 1 + 99 x
    r = run_cli("render", short)
    assert r.returncode == 0, r.stderr
    s = write_spec('title = "t"\n[parameters]\nw = 0.5\n[forward]\nE = "' + "sigmoid(" * 99 + "w" + ")" * 99 + '"\n',
                   "s.toml")
    r = run_cli("render", s)     # its intermediate e^(-…) is deeper than the text: evaluated as a tree
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_hundred_levels_of_parentheses_render(write_spec):
    p = write_spec(hundred_levels(lambda e: f"({e}*w + x)"))
    r = run_cli("render", p)
    assert r.returncode == 0, r.stderr


def test_spine_reads_a_chain_without_recursion():
    from derive import expr as ex
    tree = ex.parse(" - ".join(f"x{i}" for i in range(2500)))
    first, rest = ex.spine(tree)
    assert first == ex.Name("x0") and len(rest) == 2499 and rest[0] == ("-", ex.Name("x1"))
    assert ex.depth(tree) == 2500 and ex.tree_shape(tree, lambda n: ()) == ()


def test_after_step_errors_name_the_step_and_values(write_spec):
    p = write_spec('title = "t"\n[parameters]\nW = [[0.1, 0.2]]\n[forward]\nE = "sum(W^1.5)"\n'
                   '[train]\nlearning_rate = 1\n')
    r = run_cli("solve", p)
    assert r.returncode == 2
    assert f"{p}: forward.E (after step 1, W[1,1] = -0.3743, W[1,2] = -0.4708): " \
           "a negative value raised to a fractional power" in r.stderr
    with pytest.raises(derive.DeriveError, match=r"after step 1"):
        derive.load(str(p)).eval("E@1")
    claims = p.parent / "c.toml"
    claims.write_text(f'spec = "{p.name}"\n[[claim]]\nof = "E"\nvalue = "0.12"\n')
    r = run_cli("check", claims)
    assert r.returncode == 2 and "cannot evaluate" in r.stderr and "forward.E (after step 1, W[1,1] = -0.3743" in r.stderr


@pytest.mark.skipif(__import__("shutil").which("xelatex") is None, reason="xelatex not installed")
def test_function_of_a_long_sum_breaks_across_lines_and_compiles(write_spec):
    from derive.render import render_text
    from derive.tex import compile_pdf
    p = write_spec(wide_unit_spec(60))
    tex = render_text(derive.load(str(p)), fmt="tex", lang="en", only=["w1"])
    assert "\\sigma\\bigl(" in tex and "\\bigr)" in tex     # \left( … \right) cannot span lines
    assert compile_pdf(tex).startswith(b"%PDF")


def test_long_sums_and_products_differentiate_as_sympy_does(write_spec):
    import sympy as sp
    terms = " + ".join(f"w*x{i}^2" for i in range(20)) + " - w^3"
    factors = "*".join(f"(x{i} + w)" if i % 5 == 0 else f"x{i}" for i in range(20))
    p = write_spec('title = "t"\n[data]\n' + "".join(f"x{i} = {i + 1}\n" for i in range(20))
                   + f'[parameters]\nw = 0.5\n[forward]\na = "{terms}"\nb = "{factors}"\nE = "a*b"\n')
    g = derive.load(str(p)).graph
    checked = 0
    for (of, wrt), ld in g.local_derivatives.items():
        local = g.quantities[of.quantity].local[0]
        assert sp.simplify(ld.formula - sp.diff(local, wrt)) == 0 or of.quantity == "E"
        checked += 1
    assert checked > 40


def test_long_product_and_division_chains(write_spec):
    p = write_spec('title = "t"\n[data]\n' + "".join(f"x{i} = 1\n" for i in range(1, 1001))
                   + '[parameters]\nw = 0.5\n[forward]\n'
                   + 'p = "' + "*".join(f"x{i}" for i in range(1, 1001)) + '"\n'
                   + 'q = "w' + "/2" * 1000 + '*2^1000"\n'
                   + 'r = "w' + " - x1" * 1000 + '"\n'
                   + 'E = "(w*p - 1)^2 + q + r"\n')
    r = run_cli("solve", p, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["forward"]["q"] == "0.5" and data["forward"]["r"] == "-999.5"

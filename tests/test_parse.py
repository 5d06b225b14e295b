"""The expression language parser: what it accepts, and that it never runs code."""
from fractions import Fraction

import pytest

from derive import expr as ex
from derive.errors import DeriveError, LimitError


def test_precedence_and_associativity():
    assert ex.parse("-2^2") == ex.Neg(ex.Bin("^", ex.Num(Fraction(2), "2"), ex.Num(Fraction(2), "2")))
    t = ex.parse("2^3^2")
    assert t.op == "^" and t.right.op == "^"          # right-associative
    t = ex.parse("a - b - c")
    assert t.left.op == "-"                           # left-associative
    assert ex.parse("a**2") == ex.parse("a^2")


def test_decimals_are_exact():
    assert ex.parse("0.15").value == Fraction(3, 20)
    assert ex.parse("1e-3").value == Fraction(1, 1000)


def test_functions_and_matrix_product():
    t = ex.parse("sigmoid(W @ x + b)")
    assert isinstance(t, ex.Call) and t.fn == "sigmoid" and t.args[0].left.op == "@"


def test_quantities_derivatives_and_steps():
    known = {"E", "w5", "P", "T"}.__contains__
    t = ex.parse_quantity("dE/dw5", known)
    assert t == ex.Deriv("E", "w5")
    assert ex.parse_quantity("E@1", known) == ex.AtStep("E", 1)
    assert ex.parse_quantity("dE/dw5@2", known) == ex.Deriv("E", "w5", 2)
    # unknown names: an ordinary division
    assert isinstance(ex.parse_quantity("dx/dy", known), ex.Bin)


@pytest.mark.parametrize("text", [
    "__import__('os').system('touch /tmp/derive_pwned')",
    "().__class__.__bases__",
    "lambda: 0",
    "x.real",
    "x[0]",
    "sigmoid(x=1)",
    "'abc'",
    "open('/etc/passwd')",
    "eval('1')",
    "x if y else z",
    "a; b",
    "`a`",
    "a = 1",
])
def test_code_is_rejected_not_run(text, tmp_path):
    with pytest.raises(DeriveError) as e:
        ex.parse(text)
    assert e.value.column is not None
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, what", [
    ("1 +", "expected a number"),
    ("(a", r"expected '\)'"),
    ("foo(x)", "unknown function"),
    ("sigmoid", "without an argument"),
    ("sigmoid(a, b)", "one argument"),
    ("", "empty"),
])
def test_syntax_errors_say_what(text, what):
    with pytest.raises(DeriveError, match=what):
        ex.parse(text)


def test_limits():
    with pytest.raises(LimitError):
        ex.parse("(" * 5000 + "x" + ")" * 5000)
    with pytest.raises(LimitError):
        ex.parse("x+" * 20000 + "x")
    with pytest.raises(LimitError):
        ex.parse("1e999999")


def test_entry_text_is_read_back_as_the_same_entry():
    # every entry of every small shape: the written form parses to an Index (or a name) whose
    # 0-based position, through index_entry, is the entry's row-major position again
    for shape in [(), (1, 1), (3, 1), (1, 4), (2, 3), (4, 2)]:
        n = 1 if shape == () else shape[0] * shape[1]
        for flat in range(n):
            for step in (0, 2):
                text = ex.entry_text("W1", shape, flat, step)
                tree = ex.parse_quantity(text, lambda name: name == "W1")
                if shape == ():
                    assert tree == (ex.AtStep("W1", step) if step else ex.Name("W1"))
                    continue
                assert isinstance(tree, ex.Index)
                assert tree.base == (ex.AtStep("W1", step) if step else ex.Name("W1"))
                row, col = ex.index_entry(tree.index, shape, "W1")
                assert row * shape[1] + col == flat
                assert len(tree.index) == (1 if 1 in shape else 2)

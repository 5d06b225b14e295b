"""Stage 1 (spec): the accepted format and every error path (one line, file and key, exit 2)."""
from fractions import Fraction

import pytest

import derive
from derive import spec as sp_
from derive.errors import DeriveError

GOOD = '''
title = "A 2-2-2 logistic network"
source = "where the numbers come from"
lang = "en"

[data]
i1 = 0.05
t1 = 0.01

[parameters]
w1 = 0.15
b1 = 0.35

[forward]
net_h1 = "w1*i1 + b1"
out_h1 = "sigmoid(net_h1)"
E = "1/2*(t1 - out_h1)^2"

[train]
loss = "E"
learning_rate = 0.5
update = ["w1"]
steps = 1

[latex]
net_h1 = "net_{h_1}"
'''


def test_the_issue_example_is_accepted(write_spec):
    s = sp_.load(str(write_spec(GOOD)))
    assert s.parameters["w1"].entries == (Fraction(3, 20),)     # the decimal, not the binary float
    assert s.data["i1"].entries == (Fraction(1, 20),)
    assert [d.name for d in s.forward] == ["net_h1", "out_h1", "E"]
    assert s.update == ("w1",) and s.learning_rate == Fraction(1, 2) and s.loss == "E"
    assert s.latex == {"net_h1": "net_{h_1}"}


def test_defaults(write_spec):
    s = sp_.load(str(write_spec('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w^2"\n')))
    assert s.loss == "E" and s.update == ("w",) and s.steps == 1 and s.lang == "en"


def test_matrix_and_flat_vector_values(write_spec):
    s = sp_.load(str(write_spec('title = "t"\n[data]\nx = [1, 2]\nX = [[1, 2], [3, 4]]\n'
                                '[parameters]\nW = [[0.5, 1], [1, 2]]\n[forward]\nE = "sum(W @ x)"\n')))
    assert s.data["x"].shape == (2, 1) and s.data["x"].flat_list
    assert s.data["X"].shape == (2, 2)


def test_symbolic_names(write_spec):
    s = sp_.load(str(write_spec('title = "t"\nsymbolic = ["x", "w", "y"]\n[forward]\n'
                                'E = "(sigmoid(w*x) - y)^2"\n[train]\nupdate = ["w"]\n')))
    p = derive.Problem(s)
    assert p.graph.parameters == ("w",) and p.is_symbolic and s.learning_rate is None


BAD = [
    ('title = "t"\n[forward]\nE = "w"\n', "forward.E", "'w' is not defined"),
    ('title = "t"\n[parameters]\nw=1\n[forward]\nE = "a + w"\na = "w"\n', "forward.E",
     "used before its definition"),
    ('title = "t"\n[parameters]\nw=1\n[forward]\na = "b + w"\nb = "a"\n', "forward.a", "cycle: a -> b -> a"),
    ('title = "t"\n[parameters]\nw=1\n[forward]\na = "a + w"\n', "forward.a", "in terms of itself"),
    ('title = "t"\n[data]\nx = [1, 2]\n[parameters]\nW = [[1, 2, 3]]\n[forward]\nE = "sum(W @ x)"\n',
     "forward.E", "shape mismatch in '@'"),
    ('title = "t"\n[data]\nx = [1, 2]\ny = [1, 2, 3]\n[forward]\nE = "sum(x + y)"\n', "forward.E",
     "shape mismatch in '+'"),
    ('title = "t"\n[parameters]\nw = "0.5"\n[forward]\nE = "w"\n', "parameters.w", "expected a number"),
    ('title = "t"\n[parameters]\nw = true\n[forward]\nE = "w"\n', "parameters.w", "expected a number"),
    ('title = "t"\n[parameters]\nw = nan\n[forward]\nE = "w"\n', "parameters.w", "not a finite number"),
    ('title = "t"\n[parameters]\nw = inf\n[forward]\nE = "w"\n', "parameters.w", "not a finite number"),
    ('title = "t"\n[parameters]\nw = [[1, 2], [3]]\n[forward]\nE = "sum(w)"\n', "parameters.w", "equal length"),
    ('[parameters]\nw = 1\n[forward]\nE = "w"\n', "title", "required"),
    ('title = "t"\n[parameters]\nw = 1\n', "forward", "at least one definition"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w"\n[train]\nloss = "F"\n', "train.loss", "not a name"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w"\n[train]\nupdate = ["v"]\n', "train.update",
     "not a parameter"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w"\n[train]\nsteps = -1\n', "train.steps", "whole number"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w"\n[train]\nrate = 1\n', "train.rate", "unknown key"),
    ('title = "t"\ncolour = 1\n[parameters]\nw = 1\n[forward]\nE = "w"\n', "colour", "unknown key"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w @ w"\n', "forward.E", "'@' needs two matrices"),
    ('title = "t"\n[parameters]\nw = 1\nw2 = 2\n[data]\nw = 3\n[forward]\nE = "w"\n', "parameters.w",
     "already defined by data.w"),
    ('title = "t"\n[parameters]\nsigmoid = 1\n[forward]\nE = "sigmoid"\n', "parameters.sigmoid",
     "function name"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w"\n[latex]\nw = "\\\\input{/etc/passwd}"\n',
     "latex.w", "not in the safe subset"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w"\n[latex]\nv = "v"\n', "latex.v", "not a name"),
    ('title = "t"\nlang = "fr"\n[parameters]\nw = 1\n[forward]\nE = "w"\n', "lang", "expected one of"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "log(0)*w"\n', "forward.E", "log(0)"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w/0"\n', "forward.E", "division by zero"),
    ('title = "t"\n[data]\nx = [1, 2]\n[forward]\nE = "x"\n', "train.loss", "must be a scalar"),
    ('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "w + 10^10^10"\n', "forward.E", "digits"),
    ("this is not toml", "", "not valid TOML"),
]


@pytest.mark.parametrize("text, key, what", BAD)
def test_bad_spec_gives_one_line_with_file_and_key(write_spec, text, key, what):
    path = write_spec(text)
    with pytest.raises(DeriveError) as e:
        derive.Problem(sp_.load(str(path)))
    msg = str(e.value)
    assert what in msg and str(path) in msg and key in msg, msg
    assert "\n" not in msg


def test_missing_file_and_unknown_id():
    with pytest.raises(DeriveError, match="cannot read file"):
        sp_.load("/nonexistent/spec.toml")
    with pytest.raises(DeriveError, match="no such file or built-in problem"):
        sp_.load("no-such-problem")


def test_builtin_ids():
    assert set(sp_.builtin_ids()) == {"alice", "house-price", "linear-2x", "matrix-linear", "one-two-one",
                                      "relu-2-4-2", "sigmoid-2-4-2", "softmax-3", "two-two-two"}

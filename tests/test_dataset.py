"""[dataset] and the training keys of [train]: samples read exactly, drawn reproducibly, and every bad
input refused with one line naming the file and the key (exit 2 from the CLI)."""
from fractions import Fraction

import numpy as np
import pytest

from derive import spec as sp_
from derive import train
from derive.errors import DeriveError

BASE = """title = "t"
[data]
x = 1
y = 0
[parameters]
w = 0.5
b = 0
[forward]
p = "w*x + b"
E = "(p - y)^2"
[train]
learning_rate = 0.1
"""

VECTOR = """title = "v"
[data]
x = [1, 2]
y = 0
[parameters]
w = [[0.5, -0.25]]
[forward]
p = "sum(w @ x)"
E = "(p - y)^2"
"""


def load(write_spec, text, name="spec.toml"):
    return sp_.load(str(write_spec(text, name)))


def test_inline_lists_are_exact(write_spec):
    s = load(write_spec, BASE + "[dataset]\nx = [1, 0.1, -3]\ny = [2, 0.3, 1e-3]\n")
    assert s.dataset.n == 3
    assert s.dataset.columns["x"] == ((Fraction(1),), (Fraction(1, 10),), (Fraction(-3),))
    assert s.dataset.columns["y"][2] == (Fraction(1, 1000),)


def test_vector_entries(write_spec):
    s = load(write_spec, VECTOR + "[dataset]\nx = [[1, 2], [3, 4]]\ny = [1, 2]\n")
    assert s.dataset.columns["x"] == ((1, 2), (3, 4))
    with pytest.raises(DeriveError, match=r"dataset.x\[1\]: expected a vector of 2 \(data.x's shape\)"):
        load(write_spec, VECTOR + "[dataset]\nx = [[1, 2], [3, 4, 5]]\ny = [1, 2]\n")
    with pytest.raises(DeriveError, match=r"dataset.y\[0\]: expected a number \(data.y is a scalar\)"):
        load(write_spec, VECTOR + "[dataset]\nx = [[1, 2]]\ny = [[1]]\n")


@pytest.mark.parametrize("table, message", [
    ("x = [1, 2, 3]\ny = [1, 2]", "lists of unequal length: x has 3 samples, y has 2"),
    ("z = [1]", "'z' is not a name in [data]"),
    ("x = []", "expected a non-empty list"),
    ("x = 3", "expected a non-empty list"),
    ("x = [1, \"a\"]", "dataset.x[1]: expected a number"),
    ("file = \"s.txt\"", "expected a .csv or .npz file"),
    ("file = \"s.csv\"\nx = [1]", "cannot be mixed"),
])
def test_bad_inline(write_spec, table, message):
    with pytest.raises(DeriveError) as e:
        load(write_spec, BASE + "[dataset]\n" + table + "\n")
    assert message in str(e.value) and "spec.toml" in str(e.value)


def test_csv(write_spec, tmp_path):
    (tmp_path / "s.csv").write_text("x[1],x[2],y\n1,2,0.1\n3,4.5,-2e-2\n", encoding="utf-8")
    s = load(write_spec, VECTOR + '[dataset]\nfile = "s.csv"\n')
    assert s.dataset.columns["x"] == ((1, 2), (3, Fraction(9, 2)))
    assert s.dataset.columns["y"] == ((Fraction(1, 10),), (Fraction(-1, 50),))
    (tmp_path / "s.csv").write_text("x[1],x[2],y\n1,2,abc\n", encoding="utf-8")
    with pytest.raises(DeriveError, match="s.csv: line 2, column y: 'abc' is not a number"):
        load(write_spec, VECTOR + '[dataset]\nfile = "s.csv"\n')
    (tmp_path / "s.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    with pytest.raises(DeriveError, match="name its entries x"):
        load(write_spec, VECTOR + '[dataset]\nfile = "s.csv"\n')


def test_npz(write_spec, tmp_path):
    xs = np.array([[0.1, 2.0], [3.0, -1.5]])
    np.savez(tmp_path / "s.npz", x=xs, y=np.array([1.0, 0.25]))
    s = load(write_spec, VECTOR + '[dataset]\nfile = "s.npz"\n')
    assert s.dataset.columns["x"][0] == (Fraction(*0.1.as_integer_ratio()), Fraction(2))
    assert s.dataset.columns["y"] == ((Fraction(1),), (Fraction(1, 4),))
    np.savez(tmp_path / "s.npz", x=np.zeros((2, 3)), y=np.zeros(2))
    with pytest.raises(DeriveError, match=r"s.npz\[x\]: shape \(2, 3\)"):
        load(write_spec, VECTOR + '[dataset]\nfile = "s.npz"\n')


@pytest.mark.parametrize("x, expect", [
    (np.array([[0.1, np.nan], [3.0, -1.5]]), r"s.npz\[x\]: contains NaN or infinity"),
    (np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.longdouble), r"s.npz\[x\]: float128 is not supported"),
    (np.array([["a", "b"], ["c", "d"]]), r"s.npz\[x\]: expected numbers"),
    (np.array([[None, 1], [2, 3]], dtype=object), r"cannot read s.npz\[x\]: it holds Python objects"),
])
def test_npz_dataset_refuses_what_parameter_files_refuse(write_spec, tmp_path, x, expect):
    """The dataset's .npz goes through the same reader as array values (allow_pickle=False)."""
    np.savez(tmp_path / "s.npz", x=x, y=np.array([1.0, 0.25]))
    with pytest.raises(DeriveError, match=expect):
        load(write_spec, VECTOR + '[dataset]\nfile = "s.npz"\n')


def test_generate_is_numpy_default_rng(write_spec):
    s = load(write_spec, VECTOR + '[dataset.generate]\nn = 5\nseed = 7\n'
             'x = { distribution = "normal", mean = 1, std = 2 }\ny = "sum(x)"\n')
    want = np.random.default_rng(7).normal(1.0, 2.0, size=10).tolist()
    got = [float(q) for e in s.dataset.columns["x"] for q in e]
    assert got == want
    plan = train.prepare(s)
    for i, sample in enumerate(plan.samples):   # the target: the exact sum of the drawn floats
        assert sample["y"] == (Fraction(want[2 * i]) + Fraction(want[2 * i + 1]),)
        assert sample["x"] == (Fraction(want[2 * i]), Fraction(want[2 * i + 1]))


def test_generate_list_targets_and_shape(write_spec):
    text = VECTOR.replace("y = 0", "y = [0, 0]").replace('p = "sum(w @ x)"', 'p = "transpose(w) * sum(x)"') \
        .replace('E = "(p - y)^2"', 'E = "sum((p - y)^2)"')
    s = load(write_spec, text + '[dataset.generate]\nn = 2\nx = { distribution = "uniform", low = -1, high = 1 }\n'
             'y = ["sum(x)", "2*sum(x)"]\n')
    plan = train.prepare(s)
    x0 = plan.samples[0]["x"]
    assert plan.samples[0]["y"] == (x0[0] + x0[1], 2 * (x0[0] + x0[1]))
    bad = text + '[dataset.generate]\nn = 2\nx = { distribution = "normal" }\ny = "sum(x)"\n'
    with pytest.raises(DeriveError, match="dataset.generate.y: the expression is a scalar but data.y is a 2×1"):
        train.prepare(load(write_spec, bad))


@pytest.mark.parametrize("table, message", [
    ('n = 0\nx = { distribution = "normal" }', "dataset.generate.n: expected a whole number ≥ 1"),
    ('n = 3\nx = { distribution = "cauchy" }', "dataset.generate.x.distribution: unknown distribution 'cauchy'"),
    ('n = 3\nx = { distribution = "normal", scale = 1 }', "dataset.generate.x.scale: unknown key"),
    ('n = 3\nx = { distribution = "normal", std = -1 }', "std must be ≥ 0"),
    ('n = 3\ny = "sum(x)"', "'x' is not an input drawn above it"),
    ('x = { distribution = "normal" }', "required: n"),
])
def test_bad_generate(write_spec, table, message):
    with pytest.raises(DeriveError) as e:
        load(write_spec, VECTOR + "[dataset.generate]\n" + table + "\n")
    assert message in str(e.value)


@pytest.mark.parametrize("keys, message", [
    ("epochs = -1", "train.epochs: expected a whole number ≥ 0, got -1"),
    ("epochs = 1.5", "train.epochs: expected a whole number ≥ 0"),
    ('mode = "online"', "train.mode: unknown mode 'online'"),
    ('mode = "minibatch"', "train.batch_size: mode = \"minibatch\" needs batch_size"),
    ("batch_size = 2", "train.batch_size: batch_size belongs to mode = \"minibatch\""),
    ('optimizer = "rmsprop"', "train.optimizer: unknown optimizer 'rmsprop' (known: sgd, momentum, adam)"),
    ('optimizer = "momentum"\nbeta = 1', "train.beta: beta must be in [0, 1)"),
    ("beta1 = 0.8", "train.beta1: beta1 belongs to optimizer = \"adam\""),
    ('optimizer = "adam"\neps = 0', "train.eps: eps must be > 0"),
    ("shuffle_seed = -3", "train.shuffle_seed: expected a whole number ≥ 0"),
    ('init = { distribution = "normal", parameters = ["q"] }', "train.init.parameters: 'q' is not a parameter"),
    ('output = "nope"', "train.output: 'nope' is not a name"),
    ("sweep = { learning_rates = [] }", "train.sweep.learning_rates: expected a non-empty list"),
    ("classes = [\"a\"]", "train.classes: expected a list of at least two"),
])
def test_bad_train_keys(write_spec, keys, message):
    with pytest.raises(DeriveError) as e:
        load(write_spec, BASE + keys + "\n")
    assert message in str(e.value) and str(e.value).startswith(str(write_spec("", "x.toml").parent))


def test_random_parameters_are_drawn_in_spec_order(write_spec):
    s = load(write_spec, BASE.replace("w = 0.5\nb = 0", 'w = "random"\nb = { random = [2] }')
             .replace('p = "w*x + b"', 'p = "w*x + sum(b)"')
             + 'init = { distribution = "normal", mean = 0, std = 3, seed = 11 }\n')
    want = np.random.default_rng(11).normal(0.0, 3.0, size=3).tolist()
    assert [float(q) for q in s.parameters["w"].entries] == want[:1]
    assert [float(q) for q in s.parameters["b"].entries] == want[1:]
    assert s.parameters["b"].shape == (2, 1)


def test_target_shape_mismatch_names_both_shapes(write_spec):
    text = VECTOR.replace('p = "sum(w @ x)"', 'p = "transpose(w)"').replace('E = "(p - y)^2"', 'E = "mean((p - y)^2)"')
    s = load(write_spec, text)
    with pytest.raises(DeriveError) as e:
        train.prepare(s)
    assert "forward.E: the target y is a scalar but the output p is a 2×1 matrix" in str(e.value)

"""End-to-end: the CLI as a subprocess, as a user runs it."""
import json

import pytest

from reference import agrees, gradients, loss_value
from conftest import run_cli, run_python


def test_list_names_every_builtin():
    r = run_cli("list")
    assert r.returncode == 0
    ids = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert ids == sorted(["alice", "house-price", "linear-2x", "matrix-linear", "one-two-one",
                          "relu-2-4-2", "sigmoid-2-4-2", "softmax-3", "two-two-two"])


def test_solve_json_shape_and_values():
    r = run_cli("solve", "house-price", "--json", "--digits", "10")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert set(data) == {"title", "digits", "forward", "loss", "gradients", "updated", "loss_after", "history"}
    g = gradients("house-price")
    assert agrees(data["gradients"]["w1"], g[("w1", ())], 10)
    assert data["gradients"]["w1"].startswith("-3.7717")   # float64 gets -3.7717317e-5 here
    assert agrees(data["loss"], loss_value("house-price"), 10)
    assert len(data["history"]) == 2 and data["history"][0] == data["loss"]


def test_solve_json_keeps_matrix_shapes():
    data = json.loads(run_cli("solve", "sigmoid-2-4-2", "--json").stdout)
    assert len(data["gradients"]["W_hidden"]) == 4 and len(data["gradients"]["W_hidden"][0]) == 2
    assert isinstance(data["forward"]["y"], list) and isinstance(data["forward"]["y"][0], str)  # flat stays flat


def test_solve_steps_option():
    data = json.loads(run_cli("solve", "alice", "--json", "--steps", "3").stdout)
    assert len(data["history"]) == 4


def test_eval_prints_one_line_per_quantity():
    r = run_cli("eval", "two-two-two", "dE_total/dw6", "w6@1", "net_h1", "--digits", "10")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0] == "dE_total/dw6 ≈ 0.02813366886"
    assert lines[1] == "w6@1 ≈ 0.3471866331"
    assert lines[2] == "net_h1 = 0.415"


def test_verify_passes_and_reports_largest_disagreement():
    r = run_cli("verify", "two-two-two")
    assert r.returncode == 0
    assert "finite difference" in r.stdout and "largest relative disagreement" in r.stdout
    assert "verified" in r.stdout


def test_verify_fails_when_a_local_derivative_is_wrong():
    # break sigmoid's derivative inside a subprocess: verify must notice (exit 1)
    r = run_python(
        "import sys, sympy\n"
        "import derive.functions as f\n"
        "f.sigmoid.fdiff = lambda self, argindex=1: f.sigmoid(self.args[0])\n"
        "from derive.cli import main\n"
        "sys.exit(main(['verify', 'alice']))\n")
    assert r.returncode == 1 and "DISAGREE" in r.stdout


@pytest.mark.parametrize("args, what", [
    (["solve", "no-such"], "no such file or built-in problem"),
    (["solve", "/nonexistent.toml"], "cannot read file"),
    (["eval", "alice", "nope"], "unknown name"),
    (["solve", "alice", "--digits", "0"], "digits must be between"),
    (["solve", "alice", "--digits", "x"], "whole number"),
    (["eval", "two-two-two", "E_total@10000"], "10000 steps after '@': the limit is 50 steps"),
    (["eval", "two-two-two", "w6@-1"], "whole number from 0 to 50, not '-1'"),
    (["eval", "two-two-two", "dE_total/dw6@99999"], "the limit is 50 steps"),
])
def test_errors_are_one_line_exit_2(args, what):
    r = run_cli(*args)
    assert r.returncode == 2
    assert what in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_bad_spec_file_via_cli(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('title = "t"\n[parameters]\nw = 1\n[forward]\nE = "__import__(\'os\').system(\'touch X\')"\n')
    r = run_cli("solve", p, cwd=tmp_path)
    assert r.returncode == 2 and "forward.E" in r.stderr and str(p) in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "X").exists()


def test_eval_shows_short_closed_form():
    r = run_cli("eval", "two-two-two", "out_h1")
    assert r.stdout.strip() == "out_h1 = sigmoid(83/200) ≈ 0.6022861769"


@pytest.mark.xdist_group("hash-seeds")   # one worker starts the CLI servers of the seeds (--dist loadgroup)
@pytest.mark.parametrize("pid", ["two-two-two", "matrix-linear", "one-two-one"])
def test_output_is_identical_across_hash_seeds(pid):
    outs = {run_cli("solve", pid, "--json", env={"PYTHONHASHSEED": seed}).stdout for seed in ("0", "1", "12345")}
    assert len(outs) == 1 and outs.pop().startswith("{")


def test_warnings_for_negative_learning_rate_and_ignored_parameter(tmp_path):
    p = tmp_path / "w.toml"
    p.write_text('title = "t"\n[data]\nx = 1\n[parameters]\nw = 1\nv = 2\n[forward]\nE = "(w*x)^2"\n'
                 '[train]\nlearning_rate = -0.1\nupdate = ["w", "v"]\n')
    r = run_cli("solve", p, "--json")
    assert r.returncode == 0
    assert "learning_rate: negative" in r.stderr and "E does not depend on v" in r.stderr
    import json
    data = json.loads(r.stdout)
    assert data["gradients"]["v"] == "0" and data["updated"]["v"] == "2"
    assert data["updated"]["w"] == "1.2"   # w − (−0.1)·2w = 1.2: uphill, as warned


def test_hundred_digit_integers_are_exact(tmp_path):
    big = "9" * 100
    p = tmp_path / "big.toml"
    p.write_text(f'title = "t"\n[data]\nx = {big}\n[parameters]\nw = 3\n[forward]\nE = "w*x"\n')
    data = json.loads(run_cli("solve", p, "--json", "--digits", "120").stdout)
    assert data["loss"] == str(3 * int(big))
    assert data["gradients"]["w"] == big


def test_large_network_says_so_up_front(tmp_path):
    """A run over engine.SLOW_WORK multiply-adds says so before it starts; a small one does not.
    (Changed with the engine: the note now depends on the work, not on the count of values.)"""
    import sys
    sys.path.insert(0, str(__import__("conftest").ROOT / "bench"))
    from mlp import write_mlp
    p = write_mlp([100, 100, 1], tmp_path / "large")    # 31 000 multiply-adds a pass, 41 passes
    r = run_cli("solve", p, "--json", "--steps", "40")
    assert r.returncode == 0, r.stderr
    assert r.stderr.startswith("derive: note:") and "takes a while" in r.stderr
    small = write_mlp([5, 5, 1], tmp_path / "small")
    r = run_cli("solve", small, "--json")
    assert r.returncode == 0 and r.stderr == ""

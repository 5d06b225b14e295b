"""Issue 12, "a CLI that behaves the same everywhere": --version, - for standard input, -o for
every writing command (-o - is standard output) and one `derive: wrote PATH` line on stderr, PDFs
only to a pipe or a file, help lines with defaults, verify --digits/--json with 1-based entries,
solve --steps K showing the values after step K.  The CLI as a subprocess."""
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from importlib.metadata import version

import pytest

from conftest import ROOT, run_cli, source_env

needs_xelatex = pytest.mark.skipif(shutil.which("latexmk") is None or shutil.which("xelatex") is None,
                                   reason="latexmk/xelatex not installed")
TWO = (ROOT / "derive" / "problems" / "two-two-two.toml").read_text(encoding="utf-8")


def test_version_is_the_package_metadata():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"derive {version('derive')}"


@pytest.mark.parametrize("args, expect", [
    (["solve", "-"], "loss: 0.04073380569 -> 0.04052794410"),
    (["eval", "-", "w6@1"], "w6@1 ≈ 0.3471866331"),
    (["verify", "-"], "verified: every gradient agrees"),
    (["render", "-", "--only", "w6", "--lang", "en"], "\\frac{\\partial E_{\\mathrm{total}}}{\\partial w_{6}} = \\delta_{o_1}"),
])
def test_dash_reads_the_spec_from_standard_input(args, expect):
    r = run_cli(*args, input=TWO)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout


def test_bad_spec_on_standard_input_is_named_stdin():
    r = run_cli("solve", "-", input='title = "t"\n[forward]\nE = "w*"\n')
    assert r.returncode == 2 and r.stderr.startswith("derive: <stdin>: forward.E"), r.stderr


def test_claims_from_standard_input(tmp_path):
    (tmp_path / "net.toml").write_text(TWO, encoding="utf-8")
    claims = '[[claim]]\nof = "w6"\nvalue = "0.35"\n'
    for spec in ("two-two-two", "net.toml", str(tmp_path / "net.toml")):   # built-in, CWD-relative, absolute
        r = run_cli("check", "-", input=f'spec = "{spec}"\n' + claims, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("<stdin> — ") and "1 claims: 1 correct" in r.stdout
    r = run_cli("check", "-", input='spec = "-"\n' + claims, cwd=tmp_path)
    assert r.returncode == 2 and "<stdin>: spec: spec cannot be standard input" in r.stderr


@pytest.mark.parametrize("args", [
    ["list"], ["solve", "two-two-two"], ["solve", "two-two-two", "--json"], ["eval", "two-two-two", "w6"],
    ["verify", "two-two-two", "--json"], ["render", "two-two-two", "--format", "tex"],
    ["check", "two-two-two"], ["check", "two-two-two", "--format", "md"],
])
def test_every_command_writes_with_o_and_says_so(args, tmp_path):
    to_stdout = run_cli(*args)
    dash = run_cli(*args, "-o", "-")
    assert dash.stdout == to_stdout.stdout and dash.returncode == to_stdout.returncode
    out = tmp_path / "out.txt"
    r = run_cli(*args, "-o", out, cwd=tmp_path)
    assert r.returncode == to_stdout.returncode, r.stderr
    assert r.stdout == "" and out.read_text(encoding="utf-8") == to_stdout.stdout
    assert r.stderr.splitlines()[0] == f"derive: wrote {out}"


def test_o_refuses_an_unwritable_path_before_any_work(tmp_path):
    for args in (["solve", "two-two-two"], ["check", "two-two-two"], ["verify", "two-two-two"]):
        r = run_cli(*args, "-o", tmp_path / "no" / "such" / "x")
        assert r.returncode == 2 and "cannot write" in r.stderr and r.stdout == ""


def test_build_o_and_out_are_one_option():
    p = __import__("derive.cli", fromlist=["parser"]).parser()
    assert p.parse_args(["build", "-o", "x"]).out == "x" == p.parse_args(["build", "--out", "x"]).out
    assert p.parse_args(["build"]).out == "output"


@needs_xelatex
def test_pdf_goes_to_a_pipe(tmp_path):
    r = subprocess.run([sys.executable, "-m", "derive", "render", "two-two-two", "--format", "pdf",
                        "--mode", "exercise"], capture_output=True, cwd=tmp_path, env=source_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"%PDF") and not any(tmp_path.iterdir())


def test_pdf_to_a_terminal_is_refused_with_a_hint(tmp_path):
    main, child = pty.openpty()
    try:
        r = subprocess.run([sys.executable, "-m", "derive", "render", "two-two-two", "--format", "pdf"],
                           stdout=child, stderr=subprocess.PIPE, cwd=tmp_path, env=source_env(), timeout=120)
    finally:
        os.close(child)
        os.close(main)
    assert r.returncode == 2
    lines = r.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "-o FILE.pdf" in lines[0] and not any(tmp_path.iterdir())


def test_missing_tex_names_every_package_ci_installs(tmp_path):
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    packages = re.search(r"DEB_PACKAGES=\(([^)]*)\)", ci).group(1).split()
    r = run_cli("render", "two-two-two", "--format", "pdf", "-o", tmp_path / "x.pdf", env={"PATH": str(tmp_path)})
    assert r.returncode == 2
    assert all(p in r.stderr for p in packages), (packages, r.stderr)


def test_every_option_says_what_it_does_and_its_default():
    import argparse
    from derive.cli import parser
    p = parser()
    subs = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    for name, sp in subs.choices.items():
        for action in sp._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            assert action.help and "default" in action.help, (name, action.option_strings)
        assert "default: None" not in sp.format_help(), name


def test_solve_steps_lists_the_values_after_the_last_step():
    r = run_cli("solve", "two-two-two", "--steps", "3")
    assert "after 3 step(s)" in r.stdout
    assert re.search(r"^  w1@3 +0\.249994", r.stdout, re.M) and "w1@1" not in r.stdout
    data = json.loads(run_cli("solve", "two-two-two", "--steps", "3", "--json").stdout)
    w1_3 = run_cli("eval", "two-two-two", "w1@3").stdout.split()[-1]
    assert data["updated"]["w1"] == w1_3 and data["loss_after"] == data["history"][-1]
    one = json.loads(run_cli("solve", "two-two-two", "--json").stdout)   # the spec's 1 step
    assert one["updated"]["w6"] == "0.3471866331"


def test_verify_digits_json_and_one_based_entries():
    r = run_cli("verify", "sigmoid-2-4-2", "--json", "--digits", "30")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] and data["digits"] == 30 and "finite difference" in data["methods"]
    labels = {c["parameter"] for c in data["checks"]}
    assert "W_hidden[1,1]" in labels and not any("[0," in x or ",0]" in x for x in labels)
    text = run_cli("verify", "sigmoid-2-4-2").stdout
    assert "[0," not in text and ",0]" not in text
    assert run_cli("verify", "two-two-two", "--digits", "5").returncode == 2   # below 15: refused


def test_unicode_numerals_in_quantities():
    r = run_cli("eval", "two-two-two", "w6 − ０.３５", "w6 + ٠٫٥")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["w6 − ０.３５ = 0", "w6 + ٠٫٥ = 0.85"]


def test_build_pdfs_are_ignored_by_git():
    ignore = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "output/*.pdf" in ignore and "output/errata/*.pdf" in ignore


def test_recursion_fallback_names_the_file(monkeypatch, capsys):
    from derive import cli

    def deep(_):
        raise RecursionError

    monkeypatch.setattr(cli, "load_spec", deep)     # solve reads the spec first (the engine path)
    assert cli.main(["solve", "some.toml"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("derive: some.toml: input nested too deeply") and "recursion limit" in err


def test_unicode_numerals_in_spec_expressions(tmp_path):
    p = tmp_path / "u.toml"
    p.write_text('title = "t"\n[parameters]\nw = 2\n[forward]\nE = "(０.５*w − 1)^２ + w*٠٫٥"\n', encoding="utf-8")
    r = run_cli("eval", p, "E", "dE/dw")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["E = 1", "dE/dw = 0.5"]

"""The corpus of bad specs (tests/corpus/specs): each gives exit code 2 and the one line it names,
through the CLI as a subprocess, and nothing is executed."""
from pathlib import Path

import pytest

from conftest import run_cli

CORPUS = sorted((Path(__file__).parent / "corpus" / "specs").glob("*.toml"))


def _expectation(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    expect = lines[0].removeprefix("# expect: ")
    key = lines[1].removeprefix("# key: ")
    return expect, key


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_spec(path, tmp_path):
    expect, key = _expectation(path)
    r = run_cli("solve", path, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("derive: "), r.stderr
    assert expect in lines[0] and key in lines[0] and str(path) in lines[0], lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert not any(tmp_path.iterdir()), "a bad spec must not leave files behind"
    assert not (Path.cwd() / "PWNED").exists()

"""The corpus of claims files (tests/corpus/claims): each starts with `# exit: N`, `# expect: TEXT`
and `# key: KEY`.  Run through the CLI as a subprocess: exit 2 means bad input, one line on stderr
naming the file, the key and TEXT; exit 0/1 means the claims were judged and TEXT is in the report.
Never a traceback."""
from pathlib import Path

import pytest

from conftest import run_cli

CORPUS = sorted((Path(__file__).parent / "corpus" / "claims").glob("*.toml"))


def _header(path: Path):
    lines = path.read_text(encoding="utf-8").splitlines()
    return (int(lines[0].removeprefix("# exit: ")), lines[1].removeprefix("# expect: "),
            lines[2].removeprefix("# key: "))


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_claims_file(path, tmp_path):
    code, expect, key = _header(path)
    r = run_cli("check", path, cwd=tmp_path)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == code, (r.returncode, r.stdout[-2000:], r.stderr)
    if code == 2:
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("derive: "), r.stderr
        assert expect in lines[0] and key in lines[0] and str(path) in lines[0], lines[0]
        assert r.stdout == ""
    else:
        assert expect in r.stdout, r.stdout

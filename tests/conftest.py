import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def source_env(extra=None) -> dict:
    """The environment with this checkout's package first on the path (from any directory)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


def run_cli(*args, cwd=None, input=None, env=None, timeout=300):
    """Run `python -m derive ARGS` as a user would; returns CompletedProcess (text)."""
    env = source_env(env)
    return subprocess.run(
        [sys.executable, "-m", "derive", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or ROOT, input=input, env=env, timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def write_spec(tmp_path):
    def write(text: str, name: str = "spec.toml") -> Path:
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return p
    return write


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """`derive build` into a temporary output/, once per test session."""
    out = tmp_path_factory.mktemp("build") / "output"
    r = run_cli("build", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def pytest_collection_modifyitems(config, items):
    """Tests that run TeX are marked `tex` (the fast tier is `pytest -m "not tex"`): every test
    skipped when xelatex/pdflatex is missing, and every test of compiled handouts."""
    for item in items:
        reasons = " ".join(str(m.kwargs.get("reason", "")) for m in item.iter_markers("skipif"))
        if "latex" in reasons or "compiled" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.tex)

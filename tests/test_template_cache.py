"""Compiled templates kept on disk between runs (templating.cache_directory): the next process
loads them instead of compiling, renders the same text, compiles again when the source changed,
and uses no directory that others may write."""
import os
import stat
import subprocess
import sys

import jinja2
import pytest

from derive import templating as tpl
from conftest import source_env


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """A process state without compiled templates, the cache in tmp_path/cache."""
    monkeypatch.setattr(tpl, "_COMPILED", {})
    monkeypatch.setenv(tpl.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _templates(tmp_path, text):
    d = tmp_path / "t"
    d.mkdir(exist_ok=True)
    (d / "x.md.j2").write_text(text)
    return d


def _compiles(monkeypatch):
    count = []
    real = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile", lambda self, *a, **k: count.append(1) or real(self, *a, **k))
    return count


def test_a_second_process_loads_what_the_first_compiled(fresh, tmp_path, monkeypatch):
    d = _templates(tmp_path, "{% for i in xs %}{{ i * 2 }} {% endfor %}")
    count = _compiles(monkeypatch)
    env = tpl.environment("md", [d])
    assert tpl.render(env, "x.md.j2", {"xs": [1, 2, 3]}) == "2 4 6 "
    assert len(count) == 1
    files = [p for p in fresh.rglob("*.cache")]
    assert len(files) == 1
    assert stat.S_IMODE(files[0].parent.stat().st_mode) == 0o700
    # a new process (no compiled template in memory): loaded from the file, not compiled
    monkeypatch.setattr(tpl, "_COMPILED", {})
    env = tpl.environment("md", [d])
    assert tpl.render(env, "x.md.j2", {"xs": [4]}) == "8 "
    assert len(count) == 1
    # the source changed: compiled again (Jinja2's checksum of the source), the new text rendered
    _templates(tmp_path, "{% for i in xs %}{{ i * 3 }};{% endfor %}")
    monkeypatch.setattr(tpl, "_COMPILED", {})
    env = tpl.environment("md", [d])
    assert tpl.render(env, "x.md.j2", {"xs": [4]}) == "12;"
    assert len(count) == 2


def test_the_delimiters_have_caches_of_their_own(fresh, tmp_path, monkeypatch):
    """One file name compiled with the Markdown and with the LaTeX delimiters: two entries."""
    d = _templates(tmp_path, "\\VAR{a}{{ a }}")
    md = tpl.environment("md", [d])
    tex = tpl.environment("tex", [d])
    assert tpl.render(md, "x.md.j2", {"a": 1}) == "\\VAR{a}1"
    assert tpl.render(tex, "x.md.j2", {"a": 1}) == "1{{ a }}"
    monkeypatch.setattr(tpl, "_COMPILED", {})
    assert tpl.render(tpl.environment("tex", [d]), "x.md.j2", {"a": 2}) == "2{{ a }}"
    assert tpl.render(tpl.environment("md", [d]), "x.md.j2", {"a": 2}) == "\\VAR{a}2"
    assert len(list(fresh.rglob("*.cache"))) == 2


def test_the_sandbox_applies_to_a_loaded_template(fresh, tmp_path, monkeypatch):
    d = _templates(tmp_path, "{{ ''.__class__.__mro__ }}")
    for _ in range(2):      # compiled, then loaded from the cache
        monkeypatch.setattr(tpl, "_COMPILED", {})
        with pytest.raises(tpl.DeriveError, match="template"):
            tpl.render(tpl.environment("md", [d]), "x.md.j2", {})


def test_a_directory_others_may_write_is_not_used(fresh, tmp_path, monkeypatch):
    fresh.mkdir()
    fresh.chmod(0o777)
    d = _templates(tmp_path, "{{ 1 + 1 }}")
    assert tpl.render(tpl.environment("md", [d]), "x.md.j2", {}) == "2"
    assert not list(fresh.rglob("*.cache")) and not [p for p in fresh.iterdir()]


def test_a_damaged_file_is_compiled_again(fresh, tmp_path, monkeypatch):
    d = _templates(tmp_path, "{{ 2 + 2 }}")
    assert tpl.render(tpl.environment("md", [d]), "x.md.j2", {}) == "4"
    (f,) = fresh.rglob("*.cache")
    f.write_bytes(b"j2 not really")
    monkeypatch.setattr(tpl, "_COMPILED", {})
    count = _compiles(monkeypatch)
    assert tpl.render(tpl.environment("md", [d]), "x.md.j2", {}) == "4"
    assert len(count) == 1


def test_off_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setattr(tpl, "_COMPILED", {})
    monkeypatch.setenv(tpl.CACHE_ENV, "off")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert tpl.cache_directory() is None
    d = _templates(tmp_path, "{{ 3 }}")
    assert tpl.render(tpl.environment("md", [d]), "x.md.j2", {}) == "3"
    assert not (tmp_path / "home").exists()
    monkeypatch.delenv(tpl.CACHE_ENV)
    assert tpl.cache_directory() == tmp_path / "home" / ".cache" / "derive" / "templates"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tpl.cache_directory() == tmp_path / "xdg" / "derive" / "templates"


def test_cold_and_warm_renders_are_the_same_bytes(tmp_path):
    """Two processes, the first with an empty cache: the same handout."""
    env = source_env({tpl.CACHE_ENV: str(tmp_path / "cache")})
    outs = []
    for _ in range(2):
        r = subprocess.run([sys.executable, "-m", "derive", "render", "two-two-two", "--lang", "en"],
                           capture_output=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout)
    assert outs[0] == outs[1] and len(outs[0]) > 1000
    assert list((tmp_path / "cache").rglob("*.cache"))
    assert os.environ.get(tpl.CACHE_ENV) != str(tmp_path / "cache")

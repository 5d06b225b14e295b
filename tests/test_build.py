"""End-to-end: `derive build` with errata linked from the handouts, errata that compile, and the
package installed for real (not editable) finding its templates and problems."""
import gc
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli, run_python
from derive import build as build_mod
from derive.errata import builtin_claims, errata_documents

HAVE_XELATEX = shutil.which("xelatex") is not None and shutil.which("latexmk") is not None




def test_every_claims_file_has_errata_in_both_languages(built):
    for pid, _path in builtin_claims():
        for name in (f"{pid}.md", f"{pid}.tex", f"{pid}.zh.md", f"{pid}.zh.tex"):
            assert (built / "errata" / name).is_file(), name


def test_handouts_link_each_wrong_step_to_its_correction(built):
    for pid, path in builtin_claims():
        _docs, steps = errata_documents(pid, path, "en")
        handout = (built / f"{pid}.en.md").read_text(encoding="utf-8")
        errata = (built / "errata" / f"{pid}.md").read_text(encoding="utf-8")
        links = re.findall(rf"\]\(errata/{re.escape(pid)}\.md#(claim-\d+)\)", handout)
        # the wrong claims first, then the ones that differ by rounding only (issue 9)
        assert links == [st.anchor for st in steps if st.verdict != "rounding"] + \
            [st.anchor for st in steps if st.verdict == "rounding"]
        for anchor in links:
            assert f'<a id="{anchor}"></a>' in errata
        if not steps:
            assert "errata/" not in handout


def test_zh_handout_links_the_chinese_errata(built):
    handout = (built / "house-price.zh.md").read_text(encoding="utf-8")
    assert "](errata/house-price.zh.md#claim-" in handout and "原文勘误" in handout


@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed (CI installs TeX Live; see .ci/run)")
def test_errata_compile_with_xelatex(built, latexmk):
    """The errata of the session's build compile (each once a session, by the `latexmk` fixture:
    output/ holding the same bytes, tests/test_errata.py reads the same compilations)."""
    texs = sorted((built / "errata").glob("*.tex"))
    compiled = latexmk.many((tex.read_text(encoding="utf-8"), "xelatex") for tex in texs)
    assert len(texs) >= 4
    for tex, (log, pdf, stdout) in zip(texs, compiled):
        log = log or stdout
        errors = [ln for ln in log.splitlines() if ln.startswith("!")]
        assert not errors and "Undefined control sequence" not in log, (tex.name, errors[:3])
        assert pdf.is_file(), tex.name


def _files(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()}


def test_one_process_renders_the_bytes_of_the_workers(built, monkeypatch):
    """The fast tier's check of the slow test below: three problems (training runs and their
    curves, a sweep, errata, a matrix spec; a softmax; a small one) rendered here in one process
    (jobs=1) give, byte for byte, the files the session's build made with its worker processes."""
    ids = ["matrix-linear", "one-two-one", "softmax-3"]
    monkeypatch.setattr(build_mod, "builtin_ids", lambda: list(ids))
    one = build_mod.render_all(jobs=1)
    theirs = _files(built)
    names = sorted(n for n in one if n != "README.md")
    assert {"matrix-linear.sweep.svg", "errata/softmax-3.zh.tex", "errata/matrix-linear.md",
            "exercises/one-two-one.key.en.md"} <= set(names)
    assert {n: one[n] for n in names} == {n: theirs.get(n) for n in names}
    assert sorted(n for n in theirs if n.split("/")[-1].split(".")[0] in ids) == names


def test_skip_leaves_out_the_pages_and_the_bank_and_nothing_else(built, monkeypatch):
    """--skip html,bank: every other file is the full build's, byte for byte (two problems, one of
    them the bank's, rendered here); the index links no page; an unknown part is refused."""
    ids = ["one-two-one", build_mod.BANK[0]]
    monkeypatch.setattr(build_mod, "builtin_ids", lambda: list(ids))
    theirs = _files(built)
    quick = build_mod.render_all(jobs=1, skip=("html", "bank"))
    bank = {n for n in theirs if n.startswith(f"exercises/{build_mod.BANK[0]}.variants/")}
    pages = {f"{pid}.en.html" for pid in ids}
    ours = {n for n in theirs if n.split("/")[-1].split(".")[0] in ids} | {"README.md"}
    assert len(bank) > 10 and pages <= ours
    assert set(quick) == ours - bank - pages
    assert all(quick[n] == theirs[n] for n in quick if n != "README.md")
    assert ".en.html" in theirs["README.md"].decode() and ".en.html" not in quick["README.md"].decode()
    with pytest.raises(build_mod.DeriveError, match="no such part: pdf"):
        build_mod.render_all(skip=("pdf",))
    r = run_cli("build", "--skip", "html,pdf", "--out", "never-written")
    assert r.returncode == 2 and "--skip" in r.stderr and "Traceback" not in r.stderr
    assert not (ROOT / "never-written").exists()


@pytest.mark.slow     # a second whole build (about 8 s); the fast tier has the three-problem check above
def test_build_with_one_worker_gives_the_same_bytes(built, built_one_process):
    """`derive build` renders problems in worker processes (one per CPU): --jobs 1 (all in one
    process) writes the same files, byte for byte.  (The session's `derive build --jobs 1`,
    conftest's `built_one_process`: tests/test_render.py's determinism check reads it too.)"""
    out = built_one_process
    files = lambda d: {p.relative_to(d).as_posix(): p.read_bytes() for p in d.rglob("*") if p.is_file()}  # noqa: E731
    assert files(out) == files(built)


@pytest.mark.parametrize("jobs", [1, 2])
def test_build_failure_names_the_problem_and_writes_nothing(tmp_path, jobs):
    # a template that fails for every problem: nothing may be written, the message names the problem
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "solution.md.j2").write_text("{{ no_such_variable }}\n")
    out = tmp_path / "out"
    script = ("import sys; from derive.build import build; from derive.errors import DeriveError\n"
              f"try:\n    build(sys.argv[1], template_dir=sys.argv[2], jobs={jobs})\n"
              "except DeriveError as e:\n    print(e.line()); sys.exit(2)\n")
    r = run_python(script, out, tdir)
    assert r.returncode == 2 and "building alice failed, nothing was written" in r.stdout
    assert not out.exists() or not any(out.rglob("*"))


def test_package_data_ships_every_template_and_problem():
    """The fast tier's check of what the slow test below installs for real: pyproject's packages
    and package data cover every template and every built-in problem and claims file."""
    import tomllib
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    dirs = {pkg: ROOT / cfg.get("package-dir", {}).get(pkg, pkg.replace(".", "/")) for pkg in cfg["packages"]}
    shipped = {p for pkg, patterns in cfg["package-data"].items() for pat in patterns
               for p in dirs[pkg].glob(pat) if p.is_file()}
    need = {p for p in (ROOT / "templates").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    need |= set((ROOT / "derive" / "problems").glob("*.toml"))
    assert (ROOT / "templates" / "errata") in {p.parent for p in need} and len(need) > 20
    assert not need - shipped, sorted(str(p.relative_to(ROOT)) for p in need - shipped)
    assert dirs["derive.templates"] == ROOT / "templates" and dirs["derive"] == ROOT / "derive"


@pytest.mark.slow
def test_installed_package_renders_from_anywhere(tmp_path):
    """`pip install .` (not editable): problems and templates ship in the wheel (slow: pip builds
    the wheel; the fast tier checks pyproject's package data above)."""
    target = tmp_path / "site"
    source = tmp_path / "source"   # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "output", "build", "*.egg-info",
                                                                "__pycache__", ".pytest_cache", ".hypothesis"))
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                        str(source)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    env = {**__import__("os").environ, "PYTHONPATH": str(target)}
    work = tmp_path / "elsewhere"
    work.mkdir()
    for args in (["render", "two-two-two", "--format", "md", "--lang", "zh"], ["check", "alice"],
                 ["check", "house-price", "--format", "md", "--lang", "zh"],
                 ["render", "matrix-linear", "--format", "tex"]):
        r = subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=work,
                           env=env, timeout=300)
        assert r.returncode in (0, 1), (args, r.stderr)
        assert str(target) in subprocess.run(
            [sys.executable, "-c", "import derive; print(derive.__file__)"], capture_output=True, text=True,
            cwd=work, env=env).stdout
    r = subprocess.run([sys.executable, "-m", "derive", "render", "two-two-two"], capture_output=True, text=True,
                       cwd=work, env=env)
    assert "0.0281337" in r.stdout      # dE/dw6 = 0.02813366886… at the handouts' 6 digits


def test_the_collector_is_paused_while_rendering_and_restored(monkeypatch):
    """render_all runs with the cyclic garbage collector off (build.collector_paused) and gives it
    back as it was, also when rendering fails."""
    seen = []
    monkeypatch.setattr(build_mod, "_render_all", lambda *a: seen.append(gc.isenabled()) or {"x": b""})
    assert gc.isenabled()
    assert build_mod.render_all() == {"x": b""}
    assert seen == [False] and gc.isenabled()

    def fails(*a):
        raise build_mod.DeriveError("no")
    monkeypatch.setattr(build_mod, "_render_all", fails)
    with pytest.raises(build_mod.DeriveError):
        build_mod.render_all()
    assert gc.isenabled()
    gc.disable()
    try:
        monkeypatch.setattr(build_mod, "_render_all", lambda *a: {})
        build_mod.render_all()
        assert not gc.isenabled()           # off before: still off
    finally:
        gc.enable()


def test_pdf_build_compiles_every_tex_it_writes_the_errata_too(monkeypatch):
    """`derive build --pdf` compiled the handouts and the sheets but not the errata: every .tex of a
    problem's share (alice: handouts, errata, sheets and keys, both languages) now has its PDF,
    compiled from that .tex's own text (a recording stand-in for the compiler; the real
    compilations of the same texts are the tex tests')."""
    compiled = []

    def fake_compile(tex, engine="xelatex"):
        compiled.append(tex)
        return b"%PDF-" + str(len(compiled)).encode()
    monkeypatch.setattr(build_mod, "compile_pdf", fake_compile)
    files: dict = {}
    build_mod._build_problem("alice", files, dict(builtin_claims())["alice"], True, None, html=False)
    texs = sorted(n for n in files if n.endswith(".tex"))
    assert any(n.startswith("errata/") for n in texs)
    for name in texs:
        pdf = name[:-4] + ".pdf"
        assert pdf in files, name
        assert compiled[int(files[pdf][5:]) - 1] == files[name].decode("utf-8"), name
    assert len(compiled) == len(texs)

"""Hardening (issue 12): TeX confined and killed with its whole process group, signals, special
files as inputs and outputs, permissions and links, sandboxed templates, Markdown escaping, and
`derive build` that writes only into its own directory, all or nothing.

Processes are checked with fake `latexmk`/`xelatex` scripts on PATH; devices inside a private
mount namespace (`unshare -m`, a tmpfs, `mknod`) — never the real /dev/null; the ordinary-user case
with `setpriv --reuid=nobody`.
"""
from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from fractions import Fraction
from pathlib import Path

import jinja2.sandbox
import pytest

from conftest import ROOT, run_cli, run_python, source_env
from derive import build as build_mod
from derive import errata, render
from derive.escape import _ESCAPES, escape_text
from derive.errors import DeriveError
from derive.escape import check_display_name, md_code, md_text
from derive.tex import compile_pdf

IS_ROOT = os.geteuid() == 0
HAVE_XELATEX = shutil.which("xelatex") is not None and shutil.which("latexmk") is not None
SPEC = 'title = "t"\n[data]\nx = 2\n[parameters]\nw = 0.5\n[forward]\nE = "(w*x - 1)^2"\n'


def one_line(r, *words):
    """Exit 2, one line on stderr naming every word, no traceback."""
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("derive: "), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert str(w) in lines[0], (w, lines[0])
    return lines[0]


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


# ---------------------------------------------------------------- fake TeX
FAKE_LATEXMK = r"""#!/bin/sh
# a fake latexmk: records its arguments and environment, starts a TeX that will not stop, waits
echo "$@" > "$FAKE_DIR/args"
env > "$FAKE_DIR/env"
echo $$ > "$FAKE_DIR/latexmk.pid"
case "$FAKE_MODE" in
  pdf) printf '%%PDF-1.5 fake\n' > handout.pdf; exit 0 ;;
  fail) exit 12 ;;
esac
sh -c 'trap "" TERM HUP INT; echo $$ > "$FAKE_DIR/tex.pid"; exec sleep 1000' &
sleep 1000 &
echo $! > "$FAKE_DIR/sleep.pid"
wait
"""


@pytest.fixture
def fake_tex(tmp_path):
    """A PATH with fake latexmk and xelatex, a private TMPDIR; returns (env, fake dir, tmpdir)."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "latexmk").write_text(FAKE_LATEXMK)
    (bin_ / "xelatex").write_text("#!/bin/sh\nexit 1\n")
    for f in bin_.iterdir():
        f.chmod(0o755)
    fake = tmp_path / "fake"
    fake.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"PATH": f"{bin_}:/usr/bin:/bin", "FAKE_DIR": str(fake), "TMPDIR": str(tmp)}
    yield env, fake, tmp
    for name in ("latexmk.pid", "tex.pid", "sleep.pid"):   # never leave one behind, even on failure
        p = fake / name
        if p.exists():
            try:
                os.kill(int(p.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass


def _survivors(pids, seconds: float = 5.0) -> list[int]:
    """The processes of `pids` still alive after up to `seconds`: a killed process is gone within
    moments, but on a loaded machine (xdist workers, other jobs) not always within 0.2 s; the fake
    TeX never stops by itself, so one that was not killed is still there."""
    end = time.time() + seconds
    while True:
        left = [p for p in pids if alive(p)]
        if not left or time.time() >= end:
            return left
        time.sleep(0.05)


def _pids(fake: Path) -> list[int]:
    return [int((fake / n).read_text()) for n in ("latexmk.pid", "tex.pid", "sleep.pid") if (fake / n).exists()]


def _wait_for_handler(pid: int, sig: int, seconds: float = 60.0):
    """Wait until process `pid` catches `sig` (SigCgt in /proc/PID/status): derive's main has begun
    (before that, while Python imports, a signal just ends the process, which writes nothing)."""
    end = time.time() + seconds
    while time.time() < end:
        with open(f"/proc/{pid}/status") as f:
            caught = int(next(ln for ln in f if ln.startswith("SigCgt:")).split()[1], 16)
        if caught >> (int(sig) - 1) & 1:
            return
        time.sleep(0.05)
    raise AssertionError("derive never installed its signal handlers")


def _wait_for(path: Path, seconds: float = 120.0):     # 30 s were too few at a load average of 20
    end = time.time() + seconds
    while time.time() < end:
        if path.exists() and path.read_text().strip():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear")


def test_tex_runs_confined_and_reads_no_rc_file(fake_tex, tmp_path):
    env, fake, tmp = fake_tex
    out = tmp_path / "x.pdf"
    r = run_cli("render", "two-two-two", "--format", "pdf", "-o", out, env={**env, "FAKE_MODE": "fail"})
    one_line(r, "LaTeX failed", "no PDF")
    seen = dict(line.split("=", 1) for line in (fake / "env").read_text().splitlines() if "=" in line)
    assert seen["openin_any"] == "p" and seen["openout_any"] == "p" and seen["shell_escape"] == "f"
    args = (fake / "args").read_text().split()
    assert "-norc" in args and "-no-shell-escape" in args and args[-1] == "handout.tex"
    assert not out.exists() and not list(tmp.iterdir()), "temporary files left behind"


def test_pdf_from_fake_tex_is_written_and_temp_removed(fake_tex, tmp_path):
    env, fake, tmp = fake_tex
    out = tmp_path / "x.pdf"
    r = run_cli("render", "two-two-two", "--format", "pdf", "-o", out, env={**env, "FAKE_MODE": "pdf"})
    assert r.returncode == 0, r.stderr
    assert out.read_bytes().startswith(b"%PDF") and not list(tmp.iterdir())


def test_runaway_tex_is_killed_with_its_process_group(fake_tex, tmp_path):
    env, fake, tmp = fake_tex
    out = tmp_path / "x.pdf"
    start = time.time()
    r = run_cli("render", "two-two-two", "--format", "pdf", "-o", out,
                env={**env, "DERIVE_TEX_TIMEOUT": "1.5"}, timeout=120)
    one_line(r, "took longer than 1.5 s", "DERIVE_TEX_TIMEOUT")
    assert time.time() - start < 60
    pids = _pids(fake)
    assert len(pids) == 3, "the fake TeX did not start"
    assert not _survivors(pids), "a TeX process outlived derive"
    assert not out.exists() and not list(tmp.iterdir()), "temporary directory left behind"


@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "1e99"])
def test_bad_tex_timeout_is_one_line(fake_tex, tmp_path, value):
    env, fake, tmp = fake_tex
    r = run_cli("render", "two-two-two", "--format", "pdf", "-o", tmp_path / "x.pdf",
                env={**env, "DERIVE_TEX_TIMEOUT": value})
    one_line(r, "DERIVE_TEX_TIMEOUT")
    assert not (fake / "args").exists(), "TeX was started anyway"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_during_tex_stops_everything(fake_tex, tmp_path, sig):
    env, fake, tmp = fake_tex
    out = tmp_path / "x.pdf"
    proc = subprocess.Popen([sys.executable, "-m", "derive", "render", "two-two-two", "--format", "pdf",
                             "-o", str(out)], cwd=tmp_path, env=source_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(fake / "sleep.pid")
        _wait_for(fake / "tex.pid")
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"interrupted by {sig.name}" in lines[0] and "Traceback" not in stderr
    assert not _survivors(_pids(fake)), "a TeX process outlived derive"
    assert not out.exists() and not list(tmp.iterdir()), "a derive-tex-* directory was left behind"


@pytest.mark.skipif(not HAVE_XELATEX, reason="xelatex/latexmk not installed")
def test_real_tex_may_not_read_or_write_outside_its_directory(tmp_path):
    secret = tmp_path / "secret.tex"
    secret.write_text("SECRET")
    doc = "\\documentclass{article}\\begin{document}\\input{" + str(secret) + "}\\end{document}\n"
    with pytest.raises(DeriveError, match="LaTeX failed"):
        compile_pdf(doc)
    target = tmp_path / "written.tex"
    doc = ("\\documentclass{article}\\begin{document}\\newwrite\\f\\immediate\\openout\\f=" + str(target)
           + "\\immediate\\write\\f{x}\\immediate\\closeout\\f x\\end{document}\n")
    try:
        compile_pdf(doc)
    except DeriveError:
        pass
    assert not target.exists()
    # and an ordinary document compiles under the same confinement
    assert compile_pdf("\\documentclass{article}\\begin{document}x\\end{document}\n").startswith(b"%PDF")


# ---------------------------------------------------------------- special files as input
def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("make, words", [
    (lambda d: Path("/dev/zero"), ["character device"]),
    (lambda d: _fifo(d / "spec.toml"), ["FIFO"]),
    (lambda d: (d / "dir.toml").mkdir() or d / "dir.toml", ["a directory"]),
    (lambda d: (d / "z.toml").symlink_to("/dev/zero") or d / "z.toml", ["character device"]),
    (lambda d: d / ("a" * 300 + ".toml"), ["File name too long"]),
    (lambda d: d / "missing.toml", ["No such file"]),
])
def test_special_files_as_spec(tmp_path, make, words):
    path = make(tmp_path)
    start = time.time()
    r = run_cli("solve", path, cwd=tmp_path, timeout=60)
    one_line(r, "cannot read file", *words)
    assert time.time() - start < 30


def test_spec_over_the_limit_reads_no_more(tmp_path):
    p = tmp_path / "big.toml"
    p.write_text(SPEC + "#" * 1_000_001)
    one_line(run_cli("solve", p), "larger than 1000000 bytes", p)


def test_spec_not_utf8(tmp_path):
    p = tmp_path / "latin1.toml"
    p.write_bytes(SPEC.replace('"t"', '"caf\xe9"').encode("latin-1"))
    one_line(run_cli("solve", p), "not UTF-8", p)


def test_spec_from_standard_input(tmp_path):
    p = tmp_path / "spec.toml"
    p.write_text(SPEC)
    r = run_cli("solve", "-", "--json", input=SPEC)
    assert r.returncode == 0, r.stderr
    assert r.stdout == run_cli("solve", p, "--json").stdout
    one_line(run_cli("solve", "-", input=SPEC + "#" * 1_000_001), "<stdin>", "larger than")
    one_line(run_cli("solve", "-", input='title = "t"\n[forward]\n'), "<stdin>")


CLAIMS = 'spec = "two-two-two"\n[[claim]]\nof = "E_o1"\nvalue = "0.03090056"\n'


@pytest.mark.parametrize("make, words", [
    (lambda d: Path("/dev/zero"), ["character device"]),
    (lambda d: _fifo(d / "claims.toml"), ["FIFO"]),
    (lambda d: d / ("c" * 300 + ".toml"), ["File name too long"]),
    (lambda d: d / "missing-claims.toml", ["No such file"]),
])
def test_special_files_as_claims(tmp_path, make, words):
    r = run_cli("check", make(tmp_path), cwd=tmp_path, timeout=60)
    one_line(r, *words)


def test_claims_from_standard_input_and_odd_spec_references(tmp_path):
    r = run_cli("check", "-", input=CLAIMS, cwd=tmp_path)
    assert r.returncode == 0 and "1 claims: 1 correct" in r.stdout, r.stderr
    for ref in ("/dev/zero", "a" * 300, "/proc/self/fd/0"):
        one_line(run_cli("check", "-", input=CLAIMS.replace("two-two-two", ref), cwd=tmp_path),
                 "<stdin>", "spec")


@pytest.mark.parametrize("make, words", [
    (lambda d: _fifo(d / "solution.md.j2"), ["FIFO"]),
    (lambda d: (d / "solution.md.j2").symlink_to("/dev/zero"), ["character device"]),
    (lambda d: (d / "solution.md.j2").write_text("x" * 1_000_001), ["larger than"]),
    (lambda d: (d / "strings.zh.toml").mkdir(), ["a directory"]),
])
def test_special_files_as_templates(tmp_path, make, words):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    make(tdir)
    r = run_cli("render", "two-two-two", "--template-dir", tdir, timeout=60)
    one_line(r, *words)


@pytest.mark.parametrize("args", [
    ["render", "two-two-two", "--template-dir", "t" * 300],
    ["render", "two-two-two", "-o", "o" * 300 + ".md"],
    ["check", "alice", "-o", "o" * 300 + ".md"],
    ["check", "d" * 300],
    ["eval", "e" * 300 + ".toml", "x"],
    ["build", "--out", "b" * 300],
])
def test_long_names_are_one_line(tmp_path, args):
    one_line(run_cli(*args, cwd=tmp_path), "too long")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- output targets
def test_output_to_stdout_with_dash(tmp_path):
    r = run_cli("render", "two-two-two", "--lang", "en", "-o", "-", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == run_cli("render", "two-two-two", "--lang", "en").stdout
    r = run_cli("check", "alice", "--format", "md", "-o", "-", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("# Errata")
    assert not list(tmp_path.iterdir())


def test_output_to_a_fifo_is_streamed(tmp_path):
    fifo = _fifo(tmp_path / "pipe")
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    r = run_cli("render", "two-two-two", "--lang", "en", "-o", fifo)
    reader.join(60)
    assert r.returncode == 0, r.stderr
    assert got and got[0].decode() == run_cli("render", "two-two-two", "--lang", "en").stdout
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced"


def test_output_onto_a_directory_or_socket_is_refused(tmp_path):
    one_line(run_cli("render", "two-two-two", "-o", tmp_path), "is a directory")
    sock_path = Path(tempfile.mkdtemp(prefix="dsock")) / "s"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(sock_path))
        one_line(run_cli("render", "two-two-two", "-o", sock_path), "is a socket")
        assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    finally:
        s.close()
        shutil.rmtree(sock_path.parent)


def _unshare_ok() -> bool:
    if not IS_ROOT or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs root and unshare -m (a private mount namespace)")
def test_output_onto_devices_in_a_private_mount_namespace(tmp_path):
    scratch = tmp_path / "dev"
    scratch.mkdir()
    py = sys.executable
    script = textwrap.dedent(f"""\
        set -u
        mount -t tmpfs tmpfs {scratch}
        mknod {scratch}/null c 1 3
        mknod {scratch}/blk b 7 0
        {py} -m derive render two-two-two -o {scratch}/null; echo "null rc=$?"
        stat -c 'null %F' {scratch}/null
        {py} -m derive check alice -o {scratch}/null; echo "check rc=$?"
        stat -c 'null %F' {scratch}/null
        {py} -m derive render two-two-two -o {scratch}/blk; echo "blk rc=$?"
        stat -c 'blk %F' {scratch}/blk
        ls -a {scratch} | tr '\\n' ' '; echo
        """)
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=source_env(),
                       cwd=tmp_path, timeout=300)
    out = r.stdout
    assert "null rc=0" in out and "check rc=0" in out and out.count("null character special file") == 2, out
    assert "blk rc=2" in out and "blk block special file" in out, out
    assert "is a block device" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert out.strip().splitlines()[-1].split() == [".", "..", "blk", "null"], "temporary files left"


def test_output_keeps_mode_and_hard_links(tmp_path):
    f = tmp_path / "private.md"
    f.write_text("old")
    f.chmod(0o600)
    assert run_cli("render", "two-two-two", "-o", f).returncode == 0
    assert stat.S_IMODE(f.stat().st_mode) == 0o600 and f.read_text().startswith("# ")
    a, b = tmp_path / "a.md", tmp_path / "b.md"
    a.write_text("old")
    os.link(a, b)
    ino = a.stat().st_ino
    assert run_cli("render", "two-two-two", "-o", a).returncode == 0
    assert a.stat().st_ino == ino and b.read_text() == a.read_text() and a.read_text().startswith("# ")
    assert a.stat().st_nlink == 2


def test_output_through_a_symlink_replaces_what_it_points_to(tmp_path):
    target = tmp_path / "real.md"
    target.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(target.name)
    assert run_cli("render", "two-two-two", "-o", link).returncode == 0
    assert link.is_symlink() and target.read_text().startswith("# ")


@pytest.mark.skipif(not IS_ROOT, reason="root's case (root may write a 0444 file)")
def test_root_writes_a_read_only_file_and_keeps_its_mode(tmp_path):
    f = tmp_path / "ro.md"
    f.write_text("old")
    f.chmod(0o444)
    assert run_cli("render", "two-two-two", "-o", f).returncode == 0
    assert stat.S_IMODE(f.stat().st_mode) == 0o444 and f.read_text().startswith("# ")


def test_output_that_is_an_input_is_refused(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    link, hard = tmp_path / "link.toml", tmp_path / "hard.toml"
    link.symlink_to(spec.name)
    os.link(spec, hard)
    for target in (spec, link, hard):
        one_line(run_cli("render", spec, "-o", target), "input of this command")
        assert spec.read_text() == SPEC
    claims = tmp_path / "claims.toml"
    claims.write_text(CLAIMS)
    one_line(run_cli("check", claims, "-o", claims), "input of this command")
    assert claims.read_text() == CLAIMS
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "solution.md.j2").write_text("{{ title }}\n")
    one_line(run_cli("render", "two-two-two", "--template-dir", tdir, "-o", tdir / "solution.md.j2"),
             "input of this command")
    assert (tdir / "solution.md.j2").read_text() == "{{ title }}\n"
    builtin = ROOT / "derive" / "problems" / "alice.toml"
    before = builtin.read_bytes()
    one_line(run_cli("render", "alice", "-o", builtin), "input of this command")
    assert builtin.read_bytes() == before


def test_pdf_without_o_goes_to_a_pipe_and_writes_no_file(fake_tex, tmp_path):
    """Without -o a PDF goes to standard output (a pipe here), and no file appears beside it:
    derive writes only what the user names (a file that happens to exist there is left alone)."""
    env, fake, tmp = fake_tex
    work = tmp_path / "work"
    work.mkdir()
    mine = work / "two-two-two.zh.pdf"
    mine.write_text("my own file")
    r = subprocess.run([sys.executable, "-m", "derive", "render", "two-two-two", "--format", "pdf"],
                       capture_output=True, cwd=work, env=source_env({**env, "FAKE_MODE": "pdf"}), timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"%PDF")
    assert mine.read_text() == "my own file" and sorted(p.name for p in work.iterdir()) == ["two-two-two.zh.pdf"]


# ---- the ordinary user's case (as root: setpriv to nobody)
def _as_nobody(*args, cwd):
    cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-m", "derive",
           *map(str, args)]
    env = source_env({"HOME": str(cwd), "PYTHONDONTWRITEBYTECODE": "1"})
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def _nobody_ok() -> bool:
    """Root with setpriv, and nobody can run this Python and import this checkout and SymPy
    (derive.cli alone no longer imports SymPy: render needs it)."""
    if not IS_ROOT or shutil.which("setpriv") is None:
        return False
    probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                            "-c", "import derive.cli, derive.solve"], capture_output=True, cwd="/", env=source_env(),
                           timeout=120)
    return probe.returncode == 0


@pytest.fixture
def nobody_dir():
    d = Path(tempfile.mkdtemp(prefix="derive-nobody-"))
    d.chmod(0o777)
    yield d
    shutil.rmtree(d)


def test_ordinary_user_cannot_overwrite_a_read_only_file(nobody_dir):
    # the probe (a Python importing SymPy as nobody, about 1 s) runs in the test process that runs
    # this test, not at every test process's collection (a skipif mark)
    if not _nobody_ok():
        pytest.skip("needs root, setpriv, and a Python whose packages the user nobody can read")
    f = nobody_dir / "ro.md"
    f.write_text("old")
    os.chown(f, 65534, 65534)
    f.chmod(0o444)
    one_line(_as_nobody("render", "two-two-two", "-o", f, cwd=nobody_dir), "permission denied", f)
    assert f.read_text() == "old" and stat.S_IMODE(f.stat().st_mode) == 0o444
    # a file the user may write, in a directory the user may not: written in place
    locked = nobody_dir / "locked"
    locked.mkdir()
    g = locked / "mine.md"
    g.write_text("old")
    os.chown(g, 65534, 65534)
    locked.chmod(0o755)
    ino = g.stat().st_ino
    r = _as_nobody("render", "two-two-two", "-o", g, cwd=nobody_dir)
    assert r.returncode == 0, r.stderr
    assert g.stat().st_ino == ino and g.read_text().startswith("# ") and g.stat().st_uid == 65534
    # a new file in a directory the user may not write
    one_line(_as_nobody("render", "two-two-two", "-o", locked / "new.md", cwd=nobody_dir), "permission denied")
    assert not (locked / "new.md").exists()


# ---------------------------------------------------------------- templates are sandboxed
HOSTILE_TEMPLATES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].system('touch PWNED') }}",
    "{{ s.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{% set x = [] %}{{ x.append(1) }}",
    "{{ diagram.__class__.__init__.__globals__ }}",
    "{{ 1/0 }}",
    "{% include '../../../../etc/passwd' %}",
    "{{ range(10**9) | list | length }}",
]


@pytest.mark.parametrize("template", HOSTILE_TEMPLATES)
def test_hostile_templates_run_nothing(tmp_path, template):
    tdir = tmp_path / "tpl"
    tdir.mkdir()
    (tdir / "solution.md.j2").write_text(template + "\n")
    r = run_cli("render", "two-two-two", "--template-dir", tdir, cwd=tmp_path, timeout=120)
    one_line(r)
    assert not (tmp_path / "PWNED").exists() and not (ROOT / "PWNED").exists()


def test_hostile_latex_template(tmp_path):
    (tmp_path / "solution.tex.j2").write_text("\\VAR{cycler.__init__.__globals__.os.popen('touch PWNED')}\n")
    one_line(run_cli("render", "two-two-two", "--format", "tex", "--template-dir", tmp_path, cwd=tmp_path),
             "solution.tex.j2")
    assert not (tmp_path / "PWNED").exists()


def test_every_template_environment_is_sandboxed():
    envs = [render.environment("md"), render.environment("tex"), errata.environment("md"),
            errata.environment("tex")]
    assert all(isinstance(e, jinja2.sandbox.ImmutableSandboxedEnvironment) for e in envs)


def test_sandbox_attribute_verdicts_are_jinjas_own():
    """templating.Sandbox memoises is_safe_attribute per (type, class, name): every verdict, asked
    first and again from the memo, is the one jinja2's uncached ImmutableSandboxedEnvironment gives."""
    from derive import templating as tpl

    class Plain:
        x = 1

        def method(self):
            return 1

    def fn():
        return 1

    def gen():
        yield 1
    objects = ["", [], {}, set(), (), 1, 1.5, Plain(), Plain, fn, Plain().method, gen(), fn.__code__, str,
               Fraction(1, 2), render.environment("md")]
    attrs = ["upper", "append", "pop", "clear", "keys", "items", "update", "add", "mro", "x", "method",
             "__class__", "__globals__", "_private", "gi_frame", "gi_code", "co_code", "func_globals",
             "__init__", "numerator", "index", "count", "format", "real", "f_locals"]
    ours = tpl.Sandbox()
    theirs = jinja2.sandbox.ImmutableSandboxedEnvironment()
    for _round in range(2):
        for obj in objects:
            for attr in attrs:
                value = getattr(obj, attr, None)
                assert ours.is_safe_attribute(obj, attr, value) == theirs.is_safe_attribute(obj, attr, value), \
                    (obj, attr)
    assert any(not ours.is_safe_attribute([], "append", None) for _ in range(2))
    assert ours._safe and len(ours._safe) <= tpl.Sandbox.SAFE_MEMO


# ---------------------------------------------------------------- Markdown escaping
HTML = "<script>alert(1)</script> & <img src=x onerror=alert(2)> &amp; `x` [a](javascript:y)"


def test_user_prose_reaching_markdown_is_escaped(tmp_path):
    spec = tmp_path / "spec.toml"
    title = HTML.replace("\\", "\\\\")
    spec.write_text(SPEC.replace('title = "t"', f'title = "{title}"\nsource = "{title}"'))
    md = run_cli("render", spec, "--lang", "en").stdout
    assert "<script" not in md and "<img" not in md and "&amp;amp;" in md and "&lt;script&gt;" in md
    assert "\\`x\\`" in md and "\\[a\\]" in md
    claims = tmp_path / "c`<b>.toml"
    claims.write_text(f'spec = "spec.toml"\n[[claim]]\nof = "E"\nvalue = "7"\nnote = "{title}"\n')
    r = run_cli("check", claims, "--format", "md", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    # the claims file's name is in the footer only, escaped (the errata no longer quote it as code)
    assert "<script" not in r.stdout and "<img" not in r.stdout and "<b>" not in r.stdout
    assert "c\\`&lt;b&gt;.toml" in r.stdout


def test_escaping_functions():
    assert md_text("a<b>&c") == "a&lt;b&gt;&amp;c"
    assert md_text("x_1 *y* `z` | $") == "x\\_1 \\*y\\* \\`z\\` \\| \\$"
    assert md_text("two\nlines") == "two lines"
    assert md_code("plain.toml") == "`plain.toml`"
    assert md_code("a`b") == "``a`b``" and md_code("`x") == "`` `x ``"
    for bad in ("^^5c", "a<b", "a>b", "a&b", 'a"', "a'", "a`", "a|b", "\x07", "σ", "a\u202e"):
        with pytest.raises(DeriveError):
            check_display_name(bad)
    for good in ("w_{1}", "\\hat{y}", "W^{[1]}", "x^{2}", "net_{h_1}", "\\mathrm{out}_{o1}", "w^{\\prime}"):
        check_display_name(good)


# ---------------------------------------------------------------- derive build: whose directory
FILES = {"a.md": b"A\n", "errata/b.md": b"B\n"}


@pytest.fixture
def small_build(monkeypatch):
    """build.build with a tiny render (the real one is exercised by test_build/test_render)."""
    files = dict(FILES)
    monkeypatch.setattr(build_mod, "render_all", lambda **kw: dict(files))
    return files


def _snapshot(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_build_into_a_new_or_empty_directory(tmp_path, small_build):
    out = tmp_path / "new" / "out"
    assert build_mod.build(out) == sorted([*FILES, "derive-manifest.txt"])
    snap = _snapshot(out)
    assert snap["a.md"] == b"A\n" and snap["errata/b.md"] == b"B\n"
    manifest = snap["derive-manifest.txt"].decode()
    assert f"{hashlib.sha256(b'A' + bytes([10])).hexdigest()}  a.md" in manifest
    empty = tmp_path / "empty"
    empty.mkdir()
    build_mod.build(empty)
    assert _snapshot(empty) == snap
    assert not [p for p in out.rglob(".*")]


def test_build_refuses_a_directory_that_is_not_its_own(tmp_path, small_build):
    user = tmp_path / "docs"
    user.mkdir()
    (user / "thesis.tex").write_text("mine")
    (user / "a.md").write_text("my a")
    with pytest.raises(DeriveError, match="not empty and not derive's"):
        build_mod.build(user)
    assert _snapshot(user) == {"thesis.tex": b"mine", "a.md": b"my a"}
    with pytest.raises(DeriveError, match="a.md was not written by derive; move them away first"):
        build_mod.build(user, force=True)               # --force never overwrites someone's file
    assert _snapshot(user) == {"thesis.tex": b"mine", "a.md": b"my a"}
    (user / "a.md").unlink()
    (user / "errata").mkdir()
    (user / "errata" / "b.md").write_bytes(FILES["errata/b.md"])   # already what derive writes: kept
    build_mod.build(user, force=True)                   # --force: builds next to the user's files
    snap = _snapshot(user)
    assert snap["thesis.tex"] == b"mine" and snap["a.md"] == b"A\n" and "derive-manifest.txt" in snap
    assert "errata/b.md" in snap["derive-manifest.txt"].decode()


def test_rebuild_keeps_files_derive_did_not_write_and_removes_stale_ones(tmp_path, small_build):
    out = tmp_path / "out"
    small_build["old.md"] = b"old\n"
    build_mod.build(out)
    (out / "mine.txt").write_text("keep me")
    del small_build["old.md"]
    build_mod.build(out)
    snap = _snapshot(out)
    assert "old.md" not in snap and snap["mine.txt"] == b"keep me"
    assert "old.md" not in snap["derive-manifest.txt"].decode()


def test_rebuild_refuses_files_changed_since_derive_wrote_them(tmp_path, small_build):
    out = tmp_path / "out"
    small_build["old.md"] = b"old\n"
    build_mod.build(out)
    (out / "a.md").write_text("edited by hand")
    (out / "errata" / "b.md").write_text("edited too")
    for force in (False, True):
        with pytest.raises(DeriveError, match="a.md was changed since derive wrote it .and 1 more"):
            build_mod.build(out, force=force)
        assert (out / "a.md").read_text() == "edited by hand"
    (out / "a.md").unlink()
    (out / "errata" / "b.md").unlink()
    (out / "old.md").write_text("edited, and no longer built")
    del small_build["old.md"]
    warnings = []
    build_mod.build(out, warn=warnings.append)
    assert (out / "a.md").read_bytes() == b"A\n"
    assert (out / "old.md").read_text() == "edited, and no longer built", "derive deleted a file it did not write"
    assert len(warnings) == 1 and "kept" in warnings[0] and "old.md" in warnings[0]
    assert "old.md" not in (out / "derive-manifest.txt").read_text()


def test_a_forged_manifest_cannot_direct_writes_or_deletions(tmp_path, small_build):
    out = tmp_path / "out"
    build_mod.build(out)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    sha = hashlib.sha256(b"precious").hexdigest()
    for entry in ("../victim.txt", "/etc/passwd", "errata/../../victim.txt", ".hidden"):
        (out / "derive-manifest.txt").write_text(f"{sha}  {entry}\n")
        with pytest.raises(DeriveError, match="not a manifest line"):
            build_mod.build(out)
    assert victim.read_text() == "precious"
    build_mod.build(out, force=True)
    assert victim.read_text() == "precious"


def test_build_refuses_odd_targets(tmp_path, small_build):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(DeriveError, match="not a directory"):
        build_mod.build(f)
    out = tmp_path / "out"
    build_mod.build(out)
    (out / "a.md").unlink()
    (out / "a.md").mkdir()
    with pytest.raises(DeriveError, match="is a directory"):
        build_mod.build(out, force=True)


def test_build_cli_refuses_a_user_directory_in_one_line(tmp_path):
    user = tmp_path / "docs"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    one_line(run_cli("build", "--out", user), "not empty", "--force")
    assert [p.name for p in user.iterdir()] == ["notes.txt"]


# ---------------------------------------------------------------- derive build: all or nothing
def _build_script(out: Path, patch: str) -> subprocess.CompletedProcess:
    """cli.main(['build', '--out', out]) in a new process, with a tiny render and `patch` applied."""
    script = textwrap.dedent("""\
        import os, signal, sys
        from pathlib import Path
        import derive.build as b
        from derive.cli import main
        NEW = {"a.md": b"A2\\n", "errata/b.md": b"B2\\n", "c.md": b"C2\\n"}
        b.render_all = lambda **kw: dict(NEW)
        calls = [0]
        """) + textwrap.dedent(patch) + "\nsys.exit(main(['build', '--out', sys.argv[1]]))\n"
    return run_python(script, out, timeout=120)


@pytest.fixture
def old_tree(tmp_path, small_build):
    out = tmp_path / "out"
    build_mod.build(out)
    (out / "mine.txt").write_text("keep")
    return out, _snapshot(out)


def _assert_new(out: Path):
    snap = _snapshot(out)
    assert snap["a.md"] == b"A2\n" and snap["errata/b.md"] == b"B2\n" and snap["c.md"] == b"C2\n"
    assert snap["mine.txt"] == b"keep"
    assert not [p for p in out.rglob(".*")], "staging left behind"


def test_sigterm_while_staging_leaves_the_old_tree(old_tree):
    out, before = old_tree
    r = _build_script(out, """
        real = Path.write_bytes
        def write_bytes(self, data):
            calls[0] += 1
            if calls[0] == 2:
                os.kill(os.getpid(), signal.SIGTERM)
            return real(self, data)
        Path.write_bytes = write_bytes
        """)
    assert r.returncode == 143, r.stderr
    assert "interrupted by SIGTERM" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _snapshot(out) == before and not [p for p in out.rglob(".*")]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_while_swapping_is_held_until_the_tree_is_complete(old_tree, sig):
    out, before = old_tree
    r = _build_script(out, f"""
        real = os.replace
        def replace(a, b):
            calls[0] += 1
            if calls[0] == 2:
                os.kill(os.getpid(), {int(sig)})
            return real(a, b)
        os.replace = replace
        """)
    assert r.returncode == 128 + sig, r.stderr
    assert f"interrupted by {sig.name}" in r.stderr
    _assert_new(out)


def test_error_while_swapping_puts_every_file_back(old_tree):
    out, before = old_tree
    r = _build_script(out, """
        real = os.replace
        def replace(a, b):
            calls[0] += 1
            if calls[0] == 3:
                raise OSError(28, "No space left on device")
            return real(a, b)
        os.replace = replace
        """)
    assert r.returncode == 2 and "every file was put back" in r.stderr, r.stderr
    assert _snapshot(out) == before and not [p for p in out.rglob(".*")]


def test_sigterm_during_a_real_build_changes_nothing(tmp_path, small_build):
    out = tmp_path / "out"
    build_mod.build(out)                     # a derive directory with other contents
    before = _snapshot(out)
    proc = subprocess.Popen([sys.executable, "-m", "derive", "build", "--out", str(out)], env=source_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_handler(proc.pid, signal.SIGTERM)   # derive's handler is in place: it is running the build
    time.sleep(0.3)                          # rendering (a few seconds, fewer on an idle machine)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines() == ["derive: interrupted by SIGTERM; nothing was left half-written"]
    assert _snapshot(out) == before and not [p for p in out.rglob(".*")]


def _processes_naming(text: str) -> list:
    """Pids of processes whose command line contains `text`."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    out.append(int(d.name))
            except OSError:
                continue
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_a_parallel_build_leaves_no_worker(tmp_path, sig):
    """derive build --jobs 2: the parent, told to stop, ends its workers; nothing is written."""
    out = tmp_path / "parallel-out"
    proc = subprocess.Popen([sys.executable, "-m", "derive", "build", "--jobs", "2", "--out", str(out)],
                            env=source_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_handler(proc.pid, signal.SIGTERM)
    end = time.time() + 180           # the workers start after derive's imports: minutes at a load of 20
    while len(_processes_naming(str(out))) < 3 and time.time() < end:   # the parent and two workers
        time.sleep(0.05)
    assert len(_processes_naming(str(out))) >= 3, "the workers never started"
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, stderr
    name = signal.Signals(sig).name
    assert stderr.strip().splitlines() == [f"derive: interrupted by {name}; nothing was left half-written"]
    time.sleep(0.2)
    assert _processes_naming(str(out)) == [] and not out.exists()


@pytest.mark.parametrize("seed", range(4))
def test_latex_escaping_maps_each_character_by_itself(seed):
    """escape.escape_text (a translation table) gives, for every text, each character's escape
    from _ESCAPES in turn and a space for a newline: the character-by-character mapping."""
    rng = random.Random(seed)
    alphabet = list(_ESCAPES) + ["a", "Z", "0", " ", "\n", "汉", "é", "\\\\", "{}"]
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert escape_text(text) == "".join(_ESCAPES.get(ch, ch) for ch in text).replace("\n", " ")
    assert escape_text(12) == "12" and escape_text("a_b\n#") == "a\\_b \\#"

import atexit
import concurrent.futures
import fcntl
import hashlib
import json
import locale
import os
import selectors
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import typing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

# Set to 1 to run every CLI subprocess of the tests as a real `python -m derive` (slower by about
# 1 s a command on the 2-core machine: interpreter start-up and imports); see tests/cli_server.py.
REAL_EXEC = os.environ.get("DERIVE_TESTS_REAL_EXEC", "") not in ("", "0")


def source_env(extra=None) -> dict:
    """The environment with this checkout's package first on the path (from any directory)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.update(extra or {})
    return env


def run_exec(*args, cwd=None, input=None, env=None, timeout=300):
    """Run a real `python -m derive ARGS` (a new interpreter); returns CompletedProcess (text)."""
    env = source_env(env)
    return subprocess.run(
        [sys.executable, "-m", "derive", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or ROOT, input=input, env=env, timeout=timeout,
    )


def run_cli(*args, cwd=None, input=None, env=None, timeout=300):
    """Run `python -m derive ARGS` as a user would, in a new process; returns CompletedProcess (text).

    The process is forked from a CLI server of the tests (tests/cli_server.py), which has imported
    derive once: the server started with the same start-up environment (what Python decides at
    start-up: PYTHON* variables such as PYTHONHASHSEED, the locale), started for it if there is
    none yet; a new interpreter (run_exec) if no server can serve it."""
    full_env = source_env(env)
    server = None if REAL_EXEC else _server(full_env)
    if server is None:
        return run_exec(*args, cwd=cwd, input=input, env=env, timeout=timeout)
    return server.run([str(a) for a in args], str(cwd or ROOT), input, full_env, timeout)


def run_python(source: str, *args, cwd=None, env=None, timeout=300):
    """`python -c SOURCE ARGS` with this checkout's package on the path, in a new process (forked
    from the CLI server like run_cli, or a new interpreter); returns CompletedProcess (text)."""
    full_env = source_env(env)
    server = None if REAL_EXEC else _server(full_env)
    if server is None:
        return subprocess.run([sys.executable, "-c", source, *map(str, args)], capture_output=True, text=True,
                              cwd=cwd or ROOT, env=full_env, timeout=timeout)
    return server.run([str(a) for a in args], str(cwd or ROOT), None, full_env, timeout, source=source)


def _startup_keys(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith(("PYTHON", "LC_")) or k in ("LANG", "LANGUAGE")}


def _text(data: bytes) -> str:
    """What subprocess.run(text=True) makes of the bytes (locale encoding, universal newlines)."""
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


class CliServer:
    """The client of tests/cli_server.py (a server process for each start-up environment a test
    process asks for, usually one: see _server)."""

    def __init__(self, env: dict):
        self.dir = tempfile.mkdtemp(prefix="derive-tests-cli-")
        self.path = os.path.join(self.dir, "sock")
        self.env = env
        self.cpu = 0.0             # CPU seconds of every child so far (they are not this process's children)
        self.proc = subprocess.Popen([sys.executable, str(TESTS / "cli_server.py"), self.path],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT, env=self.env)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.close()
            raise RuntimeError("the tests' CLI server did not start (see its error above)")

    def serves(self, env: dict) -> bool:
        return self.proc.poll() is None and _startup_keys(env) == _startup_keys(self.env)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    def run(self, args, cwd, input, env, timeout, source=None):
        cmd = [sys.executable, *(["-m", "derive"] if source is None else ["-c", source]), *args]
        payload = json.dumps({"argv": args, "cwd": cwd, "env": env, "source": source}).encode()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        in_r, in_w = os.pipe() if input is not None else (None, None)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.path)
            socket.send_fds(conn, [struct.pack("!Q", len(payload))],
                            [in_r if in_r is not None else 0, out_w, err_w])
            conn.sendall(payload)
        finally:
            for fd in (in_r, out_w, err_w):
                if fd is not None:
                    os.close(fd)
        reply = conn.makefile("rb")
        try:
            pid = int(reply.readline().split()[1])
            deadline = time.monotonic() + timeout if timeout else None
            try:
                stdout, stderr = _communicate(out_r, err_r, in_w,
                                              input.encode(locale.getpreferredencoding(False))
                                              if input is not None else b"", deadline)
            except subprocess.TimeoutExpired:
                os.kill(pid, 9)
                reply.readline()
                raise subprocess.TimeoutExpired(cmd, timeout) from None
            line = reply.readline()
            if not line.startswith(b"status "):
                raise RuntimeError("the tests' CLI server lost a child")
            status, cpu = int(line.split()[1]), float(line.split()[2])
            self.cpu += cpu
        finally:
            reply.close()
            conn.close()
        return subprocess.CompletedProcess(cmd, os.waitstatus_to_exitcode(status), _text(stdout), _text(stderr))


def _communicate(out_r, err_r, in_w, data: bytes, deadline):
    """Write `data` to in_w (then close it) while reading out_r and err_r to their end."""
    chunks = {out_r: [], err_r: []}
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ)
    sel.register(err_r, selectors.EVENT_READ)
    view = memoryview(data)
    if in_w is not None:
        os.set_blocking(in_w, False)
        sel.register(in_w, selectors.EVENT_WRITE)
    try:
        while sel.get_map():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired("derive", 0)
            for key, _ in sel.select(left):
                fd = key.fd
                if fd == in_w:
                    try:
                        n = os.write(fd, view[:65536]) if view else 0
                    except BrokenPipeError:
                        n, view = 0, view[:0]
                    view = view[n:]
                    if not view:
                        sel.unregister(fd)
                        os.close(fd)
                        in_w = None
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    chunks[fd].append(chunk)
                else:
                    sel.unregister(fd)
    finally:
        sel.close()
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
    return b"".join(chunks[out_r]), b"".join(chunks[err_r])


_SERVERS = {}          # start-up environment (sorted items) -> CliServer, or None if it cannot start
MAX_SERVERS = 6        # the usual one, and one per hash seed of tests/test_cli.py and tests/test_train.py


def _server(env: dict):
    """The CLI server of this process for `env`'s start-up environment, started on first use:
    a server started with PYTHONHASHSEED=1 forks children with that interpreter's hash seed, as a
    new `PYTHONHASHSEED=1 python -m derive` has.  None (then real processes) if it cannot start or
    MAX_SERVERS run already."""
    key = tuple(sorted(_startup_keys(env).items()))
    if key not in _SERVERS:
        if len(_SERVERS) >= MAX_SERVERS:
            return None
        try:
            _SERVERS[key] = CliServer({**source_env(), **dict(key)})
            atexit.register(_SERVERS[key].close)
        except (OSError, RuntimeError) as e:
            print(f"tests: CLI server unavailable ({e}); running real processes", file=sys.stderr)
            _SERVERS[key] = None
    server = _SERVERS[key]
    return server if server is not None and server.serves(env) else None


# ---------------------------------------------------------------- the fast tier
_FAST_TIER = []


def pytest_configure(config):
    expr = config.getoption("markexpr", "") or ""
    _FAST_TIER[:] = [bool(expr) and "slow" not in expr]


def fast_tier() -> bool:
    """True when the run leaves out the slow tests (an -m expression not naming `slow`, as the
    fast tier's `-m "not tex"`); the full suite (no -m) and `-m slow` are not the fast tier."""
    return bool(_FAST_TIER and _FAST_TIER[0])


def examples(full: int, fast: int) -> int:
    """Hypothesis's max_examples: `full` in the full suite (as .ci/run runs it), `fast` in the fast tier."""
    return fast if fast_tier() else full


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
    """`derive build` into a temporary output/, once per test session (a real `python -m derive`).
    Under pytest-xdist the workers of one session share it: the first to ask builds (holding a
    lock on a file in the session's temporary root), the others wait and read the same directory
    (the tests only read it)."""
    return _shared_build(tmp_path_factory, "shared-build", lambda out: run_exec("build", "--out", out))


@pytest.fixture(scope="session")
def built_one_process(tmp_path_factory):
    """A second `derive build` of the session, with `--jobs 1` (every problem in one process, no
    workers), in another process than `built` (a `python -m derive` forked from the CLI server):
    tests/test_build.py compares it with `built` byte for byte (one process renders what the
    workers render) and tests/test_render.py (a second build writes the same bytes).  Shared by
    the workers of a pytest-xdist session like `built`."""
    return _shared_build(tmp_path_factory, "shared-build-jobs-1",
                         lambda out: run_cli("build", "--jobs", "1", "--out", out))


def _shared_build(tmp_path_factory, name: str, run) -> Path:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        out = tmp_path_factory.mktemp(name) / "output"
        _build_into(out, run)
        return out
    root = tmp_path_factory.getbasetemp().parent          # the session's root, shared by its workers
    out, done = root / name / "output", root / name / "done"
    out.parent.mkdir(exist_ok=True)
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)                   # released when the file is closed
        if not done.exists():
            if out.exists():                               # a worker's build that failed half-way
                shutil.rmtree(out)
            _build_into(out, run)
            done.write_text("ok\n")
    return out


def _build_into(out: Path, run) -> None:
    r = run(out)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------- TeX, once per document
class Compiled(typing.NamedTuple):
    log: str            # h.log ("" when latexmk wrote none)
    pdf: Path           # h.pdf (may not exist: then the log says why)
    stdout: str         # what latexmk printed


class Latexmk:
    """`latexmk -xelatex` (or `-pdf` for pdfLaTeX) of a LaTeX text, as the tests compile it: the
    text as h.tex in a directory of its own, no shell escape, `openout_any=p`.  The same text with
    the same engine is compiled once per test session: the result (log, PDF, latexmk's output) is
    kept in a directory named by the SHA-256 of engine and text, under the session's temporary
    root, which pytest-xdist's workers share (the first to need a document compiles it, holding a
    lock on a file named like it; the others wait and read the same files).  So a handout that one
    test checks for overfull lines and another for nearly blank pages is compiled once, whichever
    workers run the two tests, and the tests need not stay together on one worker."""

    def __init__(self, root: Path):
        self.root = root

    def __call__(self, tex: str, engine: str = "xelatex") -> Compiled:
        return self._compile(tex, engine, wait=True)

    def many(self, jobs, threads: int = 2) -> list:
        """[Compiled] of [(tex, engine)], in that order: `threads` latexmk at a time; a document
        another worker is compiling is waited for after the others are done."""
        jobs = list(jobs)
        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
            first = list(pool.map(lambda j: self._compile(*j, wait=False), jobs))
            return list(pool.map(lambda jr: jr[1] or self._compile(*jr[0], wait=True), zip(jobs, first)))

    def _compile(self, tex: str, engine: str, wait: bool):
        key = hashlib.sha256(f"{engine}\0{tex}".encode("utf-8")).hexdigest()[:32]
        d = self.root / key
        with open(self.root / f"{key}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                return None                                # another worker compiles it now
            if not (d / "done").exists():
                if d.exists():                             # a compilation that failed half-way
                    shutil.rmtree(d)
                d.mkdir()
                (d / "h.tex").write_text(tex, encoding="utf-8")
                r = subprocess.run(["latexmk", {"xelatex": "-xelatex", "pdflatex": "-pdf"}[engine],
                                    "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", "h.tex"],
                                   cwd=d, capture_output=True, env=dict(os.environ, openout_any="p"), timeout=600)
                (d / "stdout").write_bytes(r.stdout)
                (d / "done").write_text("ok\n")
        log = (d / "h.log").read_text(encoding="utf-8", errors="replace") if (d / "h.log").exists() else ""
        return Compiled(log, d / "h.pdf", (d / "stdout").read_text(encoding="utf-8", errors="replace"))


@pytest.fixture(scope="session")
def latexmk(tmp_path_factory):
    """The session's Latexmk (shared by the workers of a pytest-xdist session, like `built`)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent / "latexmk"
        root.mkdir(exist_ok=True)
    else:
        root = tmp_path_factory.mktemp("latexmk")
    return Latexmk(root)


@pytest.hookimpl(tryfirst=True)     # before -m selects by the marks added here
def pytest_collection_modifyitems(config, items):
    """Tests that run TeX are marked `tex` (the fast tier is `pytest -m "not tex"`): every test
    skipped when xelatex/pdflatex is missing, and every test that uses the `latexmk` fixture.

    Tests marked `slow` run in the full suite (`pytest` without -m, as .ci/run runs it) and when
    the -m expression names `slow` (`pytest -m slow`); any other -m expression, the fast tier's
    `not tex` among them, leaves them out (they are reported as deselected).  Each slow test has a
    quicker check of the same behaviour in the fast tier.  Tests marked `browser` (headless
    chromium) are treated the same way: the full suite and `-m browser` run them."""
    for item in items:
        reasons = " ".join(str(m.kwargs.get("reason", "")) for m in item.iter_markers("skipif"))
        if "latex" in reasons or "latexmk" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.tex)
    expr = config.getoption("markexpr", "") or ""
    for marker in ("slow", "browser"):
        if expr and marker not in expr:
            left_out = [item for item in items if item.get_closest_marker(marker)]
            if left_out:
                config.hook.pytest_deselected(items=left_out)
                items[:] = [item for item in items if not item.get_closest_marker(marker)]

"""A fork server for the tests' CLI subprocesses (started by conftest.run_cli, one per test process
and start-up environment).

Most of the time of `python -m derive …` in a test is spent starting Python and importing derive,
SymPy and Jinja2 (about 1 s on the 2-core test machine), not in derive's work.  This server starts
once, imports every module of derive (and so SymPy …), and then, for each request, forks a fresh
child process that runs `python -m derive ARGS` exactly as the interpreter would after start-up:
`runpy` runs derive/__main__.py as `__main__` with `sys.argv` set, in the requested working
directory and environment, with standard input, output and error on the file descriptors the test
passed (pipes, as `subprocess.run(capture_output=True)` gives), then the exit code of `sys.exit`, a
traceback and exit 1 for an uncaught exception, atexit handlers and the flush of the standard
streams as at interpreter exit.  The child is a real process: it has its own signal handlers, its
own process and file descriptors, and it may be killed; its exit status reaches the test as
`subprocess.run` reports it (a negative number for a signal).  The same for `python -c CODE ARGS`
(conftest.run_python), for the tests that patch derive inside the process before running it.

What the child does not repeat is what happens before derive's `main` starts: the interpreter's
start-up and the imports.  So a child serves only requests with the server's start-up environment
(the PYTHON* variables such as PYTHONHASHSEED or PYTHONPATH, and the locale, all decided at
start-up): conftest.run_cli starts one server for each start-up environment the tests ask for (the
hash-seed tests of tests/test_cli.py and tests/test_train.py: one server per seed, whose children
have that interpreter's hash seed), up to a few, and runs a real `python -m derive` beyond them.
These run real processes too: the session's `derive build` (conftest.built), test_garbage_through_a_real_subprocess,
the start-up import test of tests/test_layers.py, the signal tests (Popen), the devices and
ordinary-user tests, and the installed package.  DERIVE_TESTS_REAL_EXEC=1 makes every one real.

Protocol (a Unix socket; one request per connection): the client sends an 8-byte length with three
file descriptors (stdin, stdout, stderr) attached, then that many bytes of JSON {argv, cwd, env,
source} (source: the code of `python -c`, or null for `python -m derive`);
the server answers "pid N\\n" once the child runs and "status S T\\n" when it has ended (S: the
wait status, T: the child's CPU seconds, which conftest adds up for measuring the suite).  The
server ends when its standard input (a pipe from the test process) is closed.
"""
from __future__ import annotations

import atexit
import importlib
import json
import os
import pkgutil
import runpy
import select
import signal
import socket
import struct
import sys
import tempfile
import traceback
import types

HEADER = struct.Struct("!Q")


# imported on first use by SymPy's printers and by importlib.metadata (derive's version for --help
# and --version): about 0.13 s of each child that renders, if not imported here
LAZY = ["importlib.metadata", "csv", "encodings.unicode_escape", "sympy.combinatorics", "sympy.tensor.tensor",
        "sympy.sets.setexpr", "sympy.assumptions.wrapper"]


def preload() -> None:
    """Import every module of derive (the CLI imports its stages inside its command functions), and
    the modules they import on first use.  Nothing is run: a child starts with no derive state."""
    import derive
    for mod in pkgutil.walk_packages(derive.__path__, "derive."):
        if mod.name != "derive.__main__":
            importlib.import_module(mod.name)
    for name in LAZY:
        importlib.import_module(name)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError("client went away")
        data += chunk
    return data


def _exit_code(e: SystemExit) -> int:
    """What the interpreter makes of sys.exit(code)."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def child(argv: list[str], cwd: str, env: dict, source: str | None) -> None:
    """In the forked child: become `python -m derive ARGV` (or `python -c SOURCE ARGV`) and never
    return."""
    code = 1
    try:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        tempfile.tempdir = None                   # tempfile caches TMPDIR: read it again
        try:
            if source is None:
                sys.path[0] = os.getcwd()         # as `python -m` sets it
                sys.argv = ["-m", *argv]          # runpy puts derive/__main__.py in argv[0]
                runpy.run_module("derive", run_name="__main__", alter_sys=True)
            else:
                sys.path[0] = ""                  # as `python -c` sets it
                sys.argv = ["-c", *argv]
                main_module = types.ModuleType("__main__")
                sys.modules["__main__"] = main_module
                exec(compile(source, "<string>", "exec"), main_module.__dict__)
            code = 0
        except SystemExit as e:
            code = _exit_code(e)
        except KeyboardInterrupt:
            traceback.print_exc()
            code = -signal.SIGINT
        except BaseException:                     # noqa: BLE001 - the interpreter's last resort
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
        try:
            sys.stdout.flush()
        except Exception:                         # noqa: BLE001 - as at interpreter exit
            print("Exception ignored on flushing sys.stdout", file=sys.stderr)
            code = code or 120
        try:
            sys.stderr.flush()
        except Exception:                         # noqa: BLE001
            pass
        if code == -signal.SIGINT:                # as Python does for an uncaught KeyboardInterrupt
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
    finally:
        os._exit(code)


def serve_one(listener: socket.socket, conn: socket.socket) -> None:
    msg, fds, _flags, _addr = socket.recv_fds(conn, HEADER.size, 3)
    try:
        if len(msg) != HEADER.size or len(fds) != 3:
            raise EOFError("bad request")
        request = json.loads(_recv_exact(conn, HEADER.unpack(msg)[0]))
        pid = os.fork()
        if pid == 0:
            try:
                listener.close()
                conn.close()
                for target, fd in enumerate(fds):
                    os.dup2(fd, target)           # dup2 makes 0, 1, 2 inheritable, as at start-up
                for fd in fds:
                    if fd > 2:
                        os.close(fd)
                signal.signal(signal.SIGINT, signal.default_int_handler)
            except BaseException:                 # noqa: BLE001
                os._exit(70)
            child(request["argv"], request["cwd"], request["env"], request.get("source"))
    finally:
        for fd in fds:
            os.close(fd)
    conn.sendall(f"pid {pid}\n".encode())
    _, status, usage = os.wait4(pid, 0)
    conn.sendall(f"status {status} {usage.ru_utime + usage.ru_stime:.6f}\n".encode())


def main(path: str) -> None:
    preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    print("ready", flush=True)
    while True:
        ready, _, _ = select.select([listener, sys.stdin], [], [])
        if sys.stdin in ready and not os.read(sys.stdin.fileno(), 1):
            return                                # the test process closed the pipe: done
        if listener in ready:
            conn, _ = listener.accept()
            with conn:
                try:
                    serve_one(listener, conn)
                except (EOFError, OSError, ValueError):
                    pass


if __name__ == "__main__":
    main(sys.argv[1])

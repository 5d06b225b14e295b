"""Running TeX: a LaTeX document in, the PDF's bytes out.

`compile_pdf(tex)` runs `latexmk -xelatex` (or pdfLaTeX) in a new temporary directory
`derive-tex-*` and returns the PDF.  What TeX may do there:

- read: the document (`handout.tex` in the temporary directory) and TeX Live's own files found
  by kpathsea (packages, fonts; system fonts through fontconfig for XeLaTeX) — `openin_any=p`
  refuses absolute paths, `..` and dot files, so `\\input{/etc/passwd}` fails;
- write: only below the temporary directory (`openout_any=p`);
- run: nothing (`-no-shell-escape`, `shell_escape=f`); latexmk reads no rc file (`-norc`).

TeX runs in a session and process group of its own (`start_new_session=True`).  When it does not
finish within the timeout (`DERIVE_TEX_TIMEOUT` seconds, default 60), when derive is interrupted
(SIGINT, SIGTERM, SIGHUP, turned into exceptions by the CLI) and even after a normal end, the whole
group is killed (`os.killpg`), so neither latexmk nor the xelatex it started can outlive derive;
the temporary directory is removed in every case.
"""
from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .errors import DeriveError

TEX_PACKAGES = ("texlive-latex-base texlive-latex-recommended texlive-latex-extra texlive-pictures "
                "texlive-xetex texlive-lang-chinese latexmk fonts-noto-cjk poppler-utils")   # as .ci/run installs
TIMEOUT_VARIABLE = "DERIVE_TEX_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 24 * 3600.0


def available(engine: str = "xelatex") -> bool:
    need = "xelatex" if engine == "xelatex" else "pdflatex"
    return shutil.which("latexmk") is not None and shutil.which(need) is not None


def require(engine: str = "xelatex", what: str = "a PDF") -> None:
    need = "xelatex" if engine == "xelatex" else "pdflatex"
    if not available(engine):
        raise DeriveError(f"cannot make {what}: latexmk and {need} are not installed "
                          f"(on Debian/Ubuntu: apt-get install {TEX_PACKAGES})")


def timeout() -> float:
    """Seconds one TeX run may take: DERIVE_TEX_TIMEOUT, default 60."""
    text = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (0 < value <= MAX_TIMEOUT):
        raise DeriveError(f"{TIMEOUT_VARIABLE}={text!r}: expected a number of seconds between 0 and "
                          f"{int(MAX_TIMEOUT)}")
    return value


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the process group of `proc` (its session: latexmk and every TeX it started) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:   # pragma: no cover - SIGKILL is not refused
        pass


def _run(cmd: list, cwd: str, env: dict, limit: float) -> None:
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError as e:
        raise DeriveError(f"cannot run latexmk: {e.strerror or e}") from None
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        raise DeriveError(f"LaTeX took longer than {limit:g} s and was stopped "
                          f"(set {TIMEOUT_VARIABLE} to allow more)") from None
    finally:
        _kill_group(proc)               # on timeout, interruption, error — and after a normal end


def compile_pdf(tex: str, engine: str = "xelatex") -> bytes:
    """Compile a LaTeX document with latexmk in a temporary directory; the PDF's bytes."""
    require(engine)
    limit = timeout()
    env = dict(os.environ, openout_any="p", openin_any="p", shell_escape="f",
               SOURCE_DATE_EPOCH="0", FORCE_SOURCE_DATE="1")
    with tempfile.TemporaryDirectory(prefix="derive-tex-") as d:
        (Path(d) / "handout.tex").write_text(tex, encoding="utf-8")
        cmd = ["latexmk", "-norc", f"-{'xelatex' if engine == 'xelatex' else 'pdf'}", "-no-shell-escape",
               "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "handout.tex"]
        _run(cmd, d, env, limit)
        pdf = Path(d) / "handout.pdf"
        log = Path(d) / "handout.log"
        errors = []
        if log.is_file():
            errors = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines()
                      if ln.startswith("!") or ": LaTeX Error" in ln or "Undefined control" in ln]
        if not pdf.is_file() or errors:
            raise DeriveError(f"LaTeX failed: {errors[0] if errors else 'no PDF was produced'}")
        return pdf.read_bytes()

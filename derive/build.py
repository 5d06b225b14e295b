"""`derive build`: every built-in problem's handouts (Markdown and LaTeX, English and Chinese, PDFs
with --pdf; the interactive HTML page in English), the errata of its source document (with --pdf
its PDFs too), an exercise sheet and its answer key
(exercises/ID.LANG.md|tex and exercises/ID.key.LANG.md|tex), a bank of 5 two-two-two variants with
its Moodle quiz (exercises/two-two-two.variants/, as `derive exercise` writes it), and an index,
into one directory (output/).

Rendering: everything is rendered in memory first; a failure anywhere writes nothing and names the
problem.  Output is byte-for-byte deterministic.

Whose directory: derive builds into a directory only when it is new, empty, or derive's own — it
holds `derive-manifest.txt`, written by the previous build, listing every file that build wrote
with its SHA-256.  Anything else is refused with one line; `--force` builds into it anyway.
Whatever the directory and with or without `--force`, a file derive did not write — not in the
manifest, or changed since — is never overwritten and never deleted: a build that would have to
replace one is refused with one line naming it (move it away first; a file that already holds
exactly what the build gives is simply kept), and a changed file that is no longer built stays
where it is, with a warning.  Files of the previous build that are no longer produced are removed
(when unchanged).  The manifest's name is derive's.

All or nothing: the new files are written to a staging directory inside the target
(`.derive-build-*`), then swapped in by renames with SIGINT, SIGTERM and SIGHUP held back; an
error during the swap puts every old file back.  An interruption before the swap leaves the
directory as it was (the staging directory is removed); one during the swap is acted on after it.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import multiprocessing
import os
import re
import shutil
import signal
import stat
import tempfile
from pathlib import Path

from .errata import ERRATA_LANGS, builtin_claims, errata_by_language, errata_name
from .errors import DeriveError
from .exercise_context import DEFAULT_ANSWER_DIGITS, exercise_strings, file_name as exercise_file, render_exercises
from .files import is_input, kind_of, new_file_mode, read_input
from .htmlpage import page
from .moodle import quiz as moodle_quiz
from .render import FORMATS, LANGS, environment, render_text, strings
from .rounding import DISPLAY_DIGITS
from .solve import load
from .spec import builtin_ids
from .templating import render
from . import plot
from .training_context import shows_training, training_files
from .tex import compile_pdf, require
from .variants import bank_files as exercise_bank_files, draw as draw_variants, moodle_name

MANIFEST = "derive-manifest.txt"
MANIFEST_HEAD = ("# derive build: the files derive wrote in this directory, with their SHA-256.\n"
                 "# derive build replaces or removes only these; see README (derive build).\n")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*(/[A-Za-z0-9_][A-Za-z0-9._-]*)*")
_LINE = re.compile(r"([0-9a-f]{64})  (.+)")
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# ---------------------------------------------------------------- rendering
SKIPPABLE = ("html", "bank")     # the parts `derive build --skip` may leave out


@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for the block (and in the workers forked inside it),
    then as it was.  A build allocates millions of short-lived objects (balls, Fractions, SymPy
    expressions, template frames) over a heap of about a million long-lived ones (SymPy, the
    problems, the compiled templates): the collector's passes over that heap were about a tenth of
    the build's CPU time, for about 20 MB of cyclic garbage that reference counting does not free
    (measured on the full build: 211 MB peak with the collector off, 189 MB with it on)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def render_all(pdf: bool = False, template_dir: str | None = None, progress=None, jobs: int = 1,
               skip=()) -> dict:
    """{relative name: bytes} of every file of a build (the manifest aside); `progress(done, total)`
    is told after each problem.  `jobs` > 1: the problems are rendered by that many worker
    processes (forked, so nothing is imported again); the files are the same, byte for byte.
    `skip`: parts left out (SKIPPABLE: "html", the interactive pages; "bank", the exercise bank).
    The cyclic garbage collector is paused meanwhile (`collector_paused`)."""
    with collector_paused():
        return _render_all(pdf, template_dir, progress, jobs, skip)


def _render_all(pdf: bool, template_dir: str | None, progress, jobs: int, skip) -> dict:
    skip = frozenset(skip)
    if skip - set(SKIPPABLE):
        raise DeriveError(f"--skip: no such part: {', '.join(sorted(skip - set(SKIPPABLE)))} "
                          f"(the parts: {', '.join(SKIPPABLE)})")
    if pdf:
        require("xelatex", "PDFs")
    claims = dict(builtin_claims())
    files: dict[str, bytes] = {}
    entries = []
    ids = builtin_ids()
    problems = {pid: load(pid) for pid in ids}      # loaded once: the workers inherit them
    tasks = [(pid, claims.get(pid), pdf, template_dir, "html" in skip) for pid in ids]
    if BANK[0] in ids and "bank" not in skip:
        tasks.append((BANK_TASK, None, pdf, template_dir, False))
    done = 0
    for (pid, *_rest), (failure, part, entry) in zip(tasks, _rendered(tasks, jobs, problems)):
        if failure is not None:
            raise DeriveError(f"building {BANK[0] if pid == BANK_TASK else pid} failed, nothing was written: {failure}")
        files.update(part)
        if pid == BANK_TASK:
            continue
        entries.append(entry)
        done += 1
        if progress is not None:
            progress(done, len(ids))
    env = environment("md", template_dir)
    index = render(env, "readme.md.j2", dict(problems=entries, pdf=pdf, s_en=strings(env, "md", "en"),
                                             s_zh=strings(env, "md", "zh"),
                                             x_en=exercise_strings(env, "md", "en")[1],
                                             x_zh=exercise_strings(env, "md", "zh")[1],
                                             answer_digits=DEFAULT_ANSWER_DIGITS))
    files["README.md"] = (re.sub(r"\n{3,}", "\n\n", index).strip("\n") + "\n").encode("utf-8")
    return files


def default_jobs() -> int:
    """Worker processes for `derive build`: one per CPU, at most 4 (nine problems and the bank;
    the largest takes about a fifth of the work)."""
    return max(1, min(4, os.cpu_count() or 1))


BANK_TASK = "(bank)"      # the task of the exercise bank (BANK), a work item of its own
_PROBLEMS: dict = {}      # id -> Problem of the build being rendered (a forked worker inherits it)


def _rendered(tasks: list, jobs: int, problems: dict):
    """(failure line or None, {name: bytes}, index entry) per task, in order."""
    _PROBLEMS.clear()
    _PROBLEMS.update(problems)
    try:
        yield from _rendered_by(tasks, jobs)
    finally:
        _PROBLEMS.clear()


def _rendered_by(tasks: list, jobs: int):
    if jobs <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from map(_problem_job, tasks)
        return
    # the longest tasks first (a worker that is free takes the next one): the build ends when its
    # last task does, so a long one must not start last
    order = sorted(range(len(tasks)), key=lambda i: -_weight(tasks[i]))
    # The lightest task is rendered here, before the workers are forked: what every task does
    # once per process (compiling the templates, SymPy's and the printers' first calls) is then
    # done once, and each worker inherits it instead of doing it again.
    first = order.pop()
    done = {first: _problem_job(tasks[first])}
    _warm_templates(tasks)
    if any(shows_training(_PROBLEMS[task[0]].spec) for task in tasks if task[0] in _PROBLEMS):
        plot.preload()      # imported once here, not once in every worker that draws a curve
    # A signal is acted on only between waits, never inside the pool's own locks and threads
    # (an exception raised in there can leave the pool unable to end): every pool call runs
    # with the signals held, and a signal that came meanwhile is delivered when the call ends.
    with signals_held():
        pool = multiprocessing.get_context("fork").Pool(min(jobs, len(order)), initializer=_quiet_worker)
    try:
        with signals_held():
            started = {i: pool.apply_async(_problem_job, (tasks[i],)) for i in order}
        for i in range(len(tasks)):
            if i in done:
                yield done[i]
                continue
            result = started[i]
            while True:
                with signals_held():
                    try:
                        value = result.get(timeout=0.2)
                    except multiprocessing.TimeoutError:
                        continue
                break
            yield value
    finally:
        with signals_held():
            pool.terminate()        # an error or an interruption: no worker is left running
            pool.join()


def _warm_templates(tasks: list) -> None:
    """Compile, before the workers are forked, the handout templates that the lightest task did
    not need (a training run's section), so that each worker does not compile them again."""
    template_dir = tasks[0][3]
    if any(shows_training(_PROBLEMS[task[0]].spec) for task in tasks if task[0] in _PROBLEMS):
        for fmt in FORMATS:
            with contextlib.suppress(Exception):     # a template's error is reported by its task
                environment(fmt, template_dir).get_template(f"training.{fmt}.j2")


def _weight(task: tuple) -> float:
    """A rough cost of a task, for the order the workers take them, in units of about 0.01 s of one
    CPU here (fitted to the nine built-in problems): a base, the problem's claims (each checked
    against every hypothesis), its training updates (the runs and their curves) and its parameter
    entries (the handouts' steps, the page's answer boxes and their what-if runs).  The bank:
    measured."""
    pid, claims_path = task[0], task[1]
    if pid == BANK_TASK:
        return 85
    claims = 0
    if claims_path is not None:
        with open(claims_path, encoding="utf-8") as f:
            claims = sum(1 for line in f if line.strip() == "[[claim]]")
    spec = _problem(pid).spec
    t = spec.training
    updates = 0
    if not spec.is_symbolic and t.epochs is not None:
        updates += t.epochs * (spec.dataset.n if spec.dataset is not None else 1)
    if not spec.is_symbolic and t.sweep is not None:
        updates += len(t.sweep.learning_rates) * t.sweep.steps
    entries = sum(len(v.entries) for v in spec.parameters.values())
    return 16 + claims + updates / 30 + 2.5 * entries


def _problem(pid: str):
    """The build's Problem of `pid` (one object for its handouts, errata, sheets, page and bank)."""
    problem = _PROBLEMS.get(pid)
    if problem is None:
        problem = _PROBLEMS[pid] = load(pid)
    return problem


def _quiet_worker():
    # a worker leaves signals to the parent: Ctrl-C reaches the whole process group, and the
    # parent, which cleans up, ends the workers (SIGTERM, its default action)
    for s in (signal.SIGINT, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)   # forked while the parent held them


def _problem_job(task: tuple) -> tuple:
    pid, claims_path, pdf, template_dir, no_html = task
    files: dict[str, bytes] = {}
    try:
        if pid == BANK_TASK:
            files.update(bank_files(_problem(BANK[0]), template_dir))
            return None, files, None
        entry = _build_problem(pid, files, claims_path, pdf, template_dir, html=not no_html)
    except DeriveError as e:
        return e.line(), {}, None
    return None, files, entry


def _build_problem(pid: str, files: dict, claims_path: str | None, pdf: bool, template_dir,
                   html: bool = True) -> dict:
    """Render one built-in problem into `files` (name → bytes); its entry for the index (`html`:
    with its interactive page)."""
    problem = _problem(pid)
    solution = problem.solve(digits=DISPLAY_DIGITS)
    names = {}
    contexts: dict = {}          # each language's worked-solution context, shared by md and tex
    files.update(training_files(problem.spec, DISPLAY_DIGITS))   # the handouts' run, computed once
    reports = {} if claims_path is None else errata_by_language(pid, claims_path, ERRATA_LANGS, problem=problem)
    for lang in LANGS:
        errata = None
        if lang in reports:
            docs, steps = reports[lang]
            for efmt, etext in docs.items():
                files[f"errata/{errata_name(pid, lang, efmt)}"] = etext.encode("utf-8")
                if efmt == "tex" and pdf:       # --pdf compiles every .tex the build writes
                    files[f"errata/{errata_name(pid, lang, efmt)[:-4]}.pdf"] = compile_pdf(etext)
            errata = {"md": f"errata/{errata_name(pid, lang, 'md')}",
                      "tex": f"errata/{errata_name(pid, lang, 'tex')}", "steps": steps}
            names[f"{lang}_errata"] = errata["md"]
            if not steps:
                errata = None  # nothing to correct: the handout does not mention errata
        for fmt in FORMATS:
            text = render_text(problem, fmt=fmt, lang=lang, solution=solution, template_dir=template_dir,
                               errata=errata, contexts=contexts)
            name = f"{pid}.{lang}.{fmt}"
            files[name] = text.encode("utf-8")
            names[f"{lang}_{fmt}"] = name
            if fmt == "tex" and pdf:
                files[f"{pid}.{lang}.pdf"] = compile_pdf(text)
                names[f"{lang}_pdf"] = f"{pid}.{lang}.pdf"
        # the exercise sheet and its answer key (exercises/ID.LANG.FMT, exercises/ID.key.LANG.FMT)
        for (mode, fmt), text in render_exercises(problem, lang=lang, template_dir=template_dir).items():
            name = f"exercises/{exercise_file(pid, lang, mode, fmt)}"
            files[name] = text.encode("utf-8")
            names[f"{lang}_{mode}_{fmt}"] = name
            if fmt == "tex" and pdf:
                files[name[:-4] + ".pdf"] = compile_pdf(text)
                names[f"{lang}_{mode}_pdf"] = name[:-4] + ".pdf"
    # the interactive worked solution, in English only: each page carries KaTeX and its fonts
    # (about 0.6 MB), so both languages would double that in the repository (derive render
    # --format html --lang zh writes the Chinese one)
    if html:
        files[f"{pid}.en.html"] = page(problem, lang="en", solution=solution, template_dir=template_dir,
                                       contexts=contexts).encode("utf-8")
        names["en_html"] = f"{pid}.en.html"
    return {"id": pid, "title": problem.spec.title, "title_zh": problem.spec.title_in("zh"), "source": problem.spec.source,
            "symbolic": problem.is_symbolic, "files": names}


# ---------------------------------------------------------------- the exercise bank
BANK = ("two-two-two", 5, 7)     # the bank a build writes: the problem, its variants, the seed


def bank_files(problem, template_dir=None) -> dict:
    """exercises/ID.variants/: what `derive exercise ID --variants 5 --seed 7 --format moodle`
    writes, in English and Chinese (the sheet and key of all variants, ID.moodle.LANG.xml, each
    variant's spec file and claims template)."""
    pid, n, seed = BANK
    bank = draw_variants(problem, n, seed)
    out = {}
    for lang in LANGS:
        files = exercise_bank_files(bank, fmt="moodle", lang=lang, template_dir=template_dir,
                                    command=f"derive exercise {pid} --variants {n} --seed {seed}")
        files[moodle_name(bank, lang)] = moodle_quiz(bank, lang=lang, template_dir=template_dir)
        out.update({f"exercises/{pid}.variants/{name}": data for name, data in files.items()})
    return out


# ---------------------------------------------------------------- the manifest
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_text(files: dict, head: str = MANIFEST_HEAD) -> str:
    return head + "".join(f"{_sha(files[n])}  {n}\n" for n in sorted(files) if n != MANIFEST)


def read_manifest(out: Path) -> dict | None:
    """{name: sha256} of the previous build in `out`, or None when there is no manifest."""
    path = out / MANIFEST
    try:
        path.lstat()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DeriveError(f"cannot read {path}: {e.strerror or e}") from None
    display, text = read_input(path, limit=1_000_000, what="manifest")
    entries = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.fullmatch(line)
        if not m or not _safe_name(m.group(2)):
            raise DeriveError(f"line {i}: not a manifest line (sha256, two spaces, a relative file name); "
                              "remove the file or use --force", file=display)
        entries[m.group(2)] = m.group(1)
    return entries


def _safe_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name)) and ".." not in name.split("/") and name != MANIFEST


# ---------------------------------------------------------------- whose directory
def _hash_file(path: Path) -> str | None:
    """SHA-256 of a regular file (not a link), else None."""
    try:
        st = path.lstat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    try:
        with open(path, "rb") as f:
            return _sha(f.read())
    except OSError:
        return None


def inspect(out: Path, force: bool) -> dict | None:
    """Check that `out` may be built into (before any rendering); the previous manifest or None."""
    try:
        st = out.stat()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise DeriveError(f"cannot build into {out}: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise DeriveError(f"cannot build into {out}: it is {kind_of(st.st_mode)}, not a directory")
    if not os.access(out, os.W_OK | os.X_OK):
        raise DeriveError(f"cannot build into {out}: permission denied")
    try:
        manifest = read_manifest(out)
    except DeriveError:
        if not force:
            raise
        manifest = None                                    # --force: an unreadable manifest is ignored
    if manifest is None and not force:
        try:
            empty = not any(os.scandir(out))
        except OSError as e:
            raise DeriveError(f"cannot build into {out}: {e.strerror or e}") from None
        if not empty:
            raise DeriveError(f"cannot build into {out}: it is not empty and not derive's (no {MANIFEST}); "
                              "name an empty or new directory, or use --force")
    return manifest


def _plan(out: Path, files: dict, manifest: dict | None):
    """(names to write, names to delete, names kept); DeriveError for a file derive did not write."""
    manifest = manifest or {}
    problems, write, delete, kept = [], [], [], []
    for name in sorted(files):
        target = out / name
        try:
            st = target.lstat()
        except FileNotFoundError:
            st = None
        except OSError as e:
            raise DeriveError(f"cannot write {target}: {e.strerror or e}") from None
        if st is not None:
            if not stat.S_ISREG(st.st_mode):
                raise DeriveError(f"cannot write {target}: it is {kind_of(st.st_mode)}")
            if name != MANIFEST and is_input(st):
                raise DeriveError(f"cannot write {target}: it is an input of this build")
            current = _hash_file(target)
            if current == _sha(files[name]):
                continue                                   # already what the build gives
            if name != MANIFEST and manifest.get(name) != current:
                problems.append(f"{target} {'was changed since derive wrote it' if name in manifest else 'was not written by derive'}")
        write.append(name)
    for name in sorted(set(manifest) - set(files)):
        target = out / name
        current = _hash_file(target)
        if current is None:
            continue                                       # gone already (or not a file: left alone)
        if current == manifest[name]:
            delete.append(name)
        else:
            kept.append(name)                              # changed by someone: not derive's to delete
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DeriveError(f"refusing to overwrite files derive did not write: {problems[0]}{more}; "
                          "move them away first")
    return write, delete, kept


# ---------------------------------------------------------------- writing: stage, then swap
@contextlib.contextmanager
def signals_held():
    """SIGINT, SIGTERM and SIGHUP held back (delivered when the block ends).  The thread's mask
    alone is not enough once another thread exists (NumPy's BLAS pool, imported for training
    runs): the kernel may hand the signal to that thread, and Python then runs its handler in the
    main thread at once.  So the Python handlers also only record a signal until the block ends."""
    got: list = []
    handlers = {}
    try:
        for sig in SIGNALS:
            handlers[sig] = signal.signal(sig, lambda signum, frame: got.append(signum))
    except ValueError:          # not the main thread: the mask alone
        handlers = {}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        for sig, handler in handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        if got:
            signal.raise_signal(got[0])


def _mkdirs(path: Path, created: list) -> None:
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        created.append(d)


def build(out_dir, *, pdf: bool = False, template_dir: str | None = None, force: bool = False,
          warn=None, progress=None, jobs: int = 1, skip=()) -> list:
    """Build into `out_dir`; the relative names of the files of the build (the manifest included).
    `warn(line)` is told about changed files of an earlier build that were kept; `progress(done,
    total)` after each problem rendered; `jobs` worker processes render the problems; `skip`:
    parts left out (render_all)."""
    out = Path(out_dir)
    manifest = inspect(out, force)
    files = render_all(pdf=pdf, template_dir=template_dir, progress=progress, jobs=jobs, skip=skip)
    return _write_tree(out, files, manifest, MANIFEST_HEAD, warn)


EXERCISE_HEAD = ("# derive exercise: the files derive wrote in this directory, with their SHA-256.\n"
                 "# derive exercise replaces or removes only these; see README (derive exercise).\n")


def write_exercise_files(out_dir, files: dict, warn=None) -> list:
    """`derive exercise -o DIR`: write `files` ({relative name: bytes}) into a directory that is
    new, empty or derive exercise's own, by the same rules as a build (a file derive did not write
    is never overwritten; files of its previous run no longer produced are removed; all or
    nothing).  A directory of `derive build` is refused (its files would be removed)."""
    out = Path(out_dir)
    manifest = inspect(out, False)
    if manifest is not None:
        _display, text = read_input(out / MANIFEST, limit=1_000_000, what="manifest")
        if not text.startswith(EXERCISE_HEAD.splitlines()[0]):
            raise DeriveError(f"cannot write into {out}: it is derive build's directory; name another one")
    return _write_tree(out, dict(files), manifest, EXERCISE_HEAD, warn)


def _write_tree(out: Path, files: dict, manifest, head: str, warn) -> list:
    files[MANIFEST] = manifest_text(files, head).encode("utf-8")
    write, delete, kept = _plan(out, files, manifest)
    created: list = []
    try:
        _mkdirs(out, created)
    except OSError as e:
        raise DeriveError(f"cannot create {out}: {e.strerror or e}") from None
    try:
        _install(out, files, write, delete)
    except BaseException:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    for name in kept:
        if warn is not None:
            warn(f"kept {out / name}: no longer built, but changed since derive wrote it")
    return sorted(files)


def _install(out: Path, files: dict, write: list, delete: list) -> None:
    try:
        stage = Path(tempfile.mkdtemp(prefix=".derive-build-", dir=out))
    except OSError as e:
        raise DeriveError(f"cannot write into {out}: {e.strerror or e}") from None
    try:
        new, old = stage / "new", stage / "old"
        try:
            for name in write:                             # stage: every new file, complete
                path = new / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(files[name])
                try:
                    mode = stat.S_IMODE((out / name).stat().st_mode) & 0o1777
                except FileNotFoundError:
                    mode = new_file_mode()
                os.chmod(path, mode)
        except OSError as e:
            raise DeriveError(f"cannot write into {out}: {e.strerror or e}; nothing was changed") from None
        with signals_held():
            _swap(out, new, old, write, delete)
            shutil.rmtree(stage, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _swap(out: Path, new: Path, old: Path, write: list, delete: list) -> None:
    """Rename the staged files into place (the manifest last); on any error undo every step."""
    undo: list = []
    created: list = []
    order = [n for n in write if n != MANIFEST] + [n for n in write if n == MANIFEST]
    try:
        for name in order:
            target = out / name
            _mkdirs(target.parent, created)
            if target.exists():
                backup = old / name
                backup.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(target, backup)
                except OSError:
                    shutil.copy2(target, backup)
                undo.append(("restore", name))
            else:
                undo.append(("remove", name))
            os.replace(new / name, target)
        for name in delete:
            backup = old / name
            backup.parent.mkdir(parents=True, exist_ok=True)
            os.rename(out / name, backup)
            undo.append(("restore", name))
    except OSError as e:
        for action, name in reversed(undo):
            with contextlib.suppress(OSError):
                if action == "restore":
                    os.replace(old / name, out / name)
                else:
                    os.unlink(out / name)
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise DeriveError(f"cannot write into {out}: {e.strerror or e}; every file was put back") from None

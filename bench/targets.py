"""The engine issue's other targets, whole process, medians of several runs, in one run:

  derive --help                                   (start-up: no SymPy is imported)
  derive build                                    (every built-in problem, md + tex, en + zh, errata,
                                                   sheets and keys, HTML pages, the exercise bank)
  derive build --skip html,bank                   (the engine issue's scope: md + tex, en + zh, errata;
                                                   with the sheets and keys, without the pages and bank)
  10 000 gradient steps of two-two-two, 30 digits (through the API: Problem.numbers)
  derive solve two-two-two --json                 (the everyday command)
  the 10 000 steps without the tape               (the engine's own run: what the tape saves)
  derive build --jobs 1                           (the build in one process: what the workers save)
  derive train alice                              (the training issue: 1 000 epochs × 4 samples)
  derive sweep matrix-linear                      (4 learning rates × 50 steps)

each next to `python3 -c pass` (the interpreter's own start-up), measured in the same run, so the
ratio says how much derive adds to starting Python.  Appends its table to bench/RESULTS.md.

    python3 bench/targets.py [--runs 5]
    python3 bench/targets.py --build-only --baseline ../other-checkout [--runs 5]

Every run starts cold: with no compiled template (derive's bytecode cache, DERIVE_TEMPLATE_CACHE, a
new empty directory each run); `--build-only` adds a row of full builds that find the templates an
earlier run compiled (warm), for comparison only — the target is the cold build.

`--build-only`: the build rows alone (full, --skip html,bank, --jobs 1), each run next to the same
command of the checkout `--baseline` names (another clone of the repository at the revision to
compare with: its `python -m derive`, run from its root, in the same Python), the two alternating
run by run so that both see the same load; the table goes to its own section of RESULTS.md ("derive
build against a baseline") with the ratios of the medians, wall and CPU.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEPS_SCRIPT = ("import derive; n = derive.load('two-two-two').numbers(digits=30, steps=10000); "
                "print(n.history[-1].text)")
# the same without the tape (derive/tape.py): the engine's own run, operation by operation
NO_TAPE_SCRIPT = "from derive import tape; tape.run = lambda *args: None; " + STEPS_SCRIPT


def wall(cmd: list[str], runs: int, tmp: str | None = None) -> tuple:
    """(median wall-clock s, median CPU s of the child: user + system, fastest wall-clock s) over
    `runs` runs.  On a machine shared with other work the wall time grows with the load; the CPU
    time much less; the fastest run is the one the others disturbed least."""
    times, cpu = [], []
    for i in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        # every run with no compiled template (derive's bytecode cache, a new empty directory)
        env = {**os.environ, CACHE_ENV: str(Path(tmp) / f"cache-{time.monotonic_ns()}-{i}")} if tmp else None
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpu), min(times)


BUILDS = [("derive build (no PDF)", []),
          ("derive build --skip html,bank", ["--skip", "html,bank"]),
          ("derive build --jobs 1", ["--jobs", "1"]),
          ("derive build, templates compiled by an earlier run", [])]
BASELINE_HEAD = "\n## derive build against a baseline\n"
WARM = "earlier run"           # the row whose runs find the templates compiled (the bytecode cache)
CACHE_ENV = "DERIVE_TEMPLATE_CACHE"


def one_run(cmd: list[str], cwd: str, cache: str | None = None) -> tuple:
    """(wall s, CPU s of the child: user + system) of one run of `cmd` in `cwd`; `cache`: the
    directory of compiled templates (derive's bytecode cache; a new, empty one for a cold run)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": cwd}
    if cache is not None:
        env[CACHE_ENV] = cache
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return took, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def builds_against(baseline: str, runs: int, results: str) -> int:
    """The build rows here and in the checkout `baseline`, alternating; a section of RESULTS.md."""
    py = sys.executable
    here, there = str(HERE.parent), str(Path(baseline).resolve())
    if not (Path(there) / "derive" / "__main__.py").is_file():
        print(f"targets.py: --baseline {baseline}: not a checkout of derive", file=sys.stderr)
        return 2
    rev = subprocess.run(["git", "-C", there, "log", "-1", "--format=%h %s"], capture_output=True,
                         text=True).stdout.strip()[:70]
    ours = subprocess.run(["git", "-C", here, "log", "-1", "--format=%h %s"], capture_output=True,
                          text=True).stdout.strip()[:70]
    load = os.getloadavg()[0]
    got: dict = {}
    skip_ok = "--skip" in (Path(there) / "derive" / "cli.py").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        warm = str(Path(tmp) / "cache-warm")
        one_run([py, "-m", "derive", "build", "-o", str(Path(tmp) / "prime")], here, warm)
        for r in range(runs):
            for label, extra in BUILDS:
                for who, cwd in (("baseline", there), ("this", here)):
                    if who == "baseline" and ("--skip" in extra and not skip_ok or WARM in label):
                        continue        # a baseline before --skip has no such option
                    out = str(Path(tmp) / f"{who}{r}{len(got)}")
                    # cold: every run of a build here starts with no compiled template
                    cache = warm if WARM in label else str(Path(tmp) / f"cache{r}{len(got)}")
                    got.setdefault((label, who), []).append(
                        one_run([py, "-m", "derive", "build", *extra, "-o", out], cwd, cache))
                    print(label, who, *(f"{x:.2f}" for x in got[(label, who)][-1]), flush=True)
    med = {k: (statistics.median(w for w, _ in v), min(w for w, _ in v), statistics.median(c for _, c in v))
           for k, v in got.items()}
    body = []
    for label, _extra in BUILDS:
        t, fastest, cpu = med[(label, "this")]
        base = med.get((label, "baseline"))
        ratio = f"{base[0] / t:.2f} | {base[2] / cpu:.2f}" if base else "— | —"
        shown = f"{base[0]:.2f} | {base[2]:.2f}" if base else "— | —"
        body.append(f"| {label} | {shown} | {t:.2f} | {fastest:.2f} | {cpu:.2f} | {ratio} |")
    lines = [BASELINE_HEAD.strip("\n"), "",
             f"Measured by `python3 bench/targets.py --build-only --baseline …` on {time.strftime('%Y-%m-%d')}: "
             f"median of {runs} whole-process runs of each, this checkout ({ours}) and the baseline "
             f"({rev}) alternating; wall s, CPU s (the child's user + system), the baseline's median over "
             f"this one's. Every run starts with no compiled template (an empty {CACHE_ENV}) but those "
             f"of the last row, which find the templates an earlier run compiled. Load average at the start and the end: {load:.1f}, {os.getloadavg()[0]:.1f} "
             f"(on {os.cpu_count()} cores).", "",
             "| command | baseline wall s | baseline CPU s | wall s | fastest s | CPU s | baseline / this, wall | "
             "baseline / this, CPU |", "|---|---:|---:|---:|---:|---:|---:|---:|", *body]
    path = Path(results)
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    head, sep, rest = old.partition(BASELINE_HEAD)
    if sep:                                  # the section of an earlier run goes
        tail = rest.partition("\n## ")[2]
        old = head.rstrip("\n") + "\n" + (f"\n## {tail}" if tail else "")
    section = "\n".join(lines) + "\n"
    at = old.find("\n## Other targets\n")   # before that section (a run of all targets keeps it)
    text = old.rstrip("\n") + "\n\n" + section if at < 0 else \
        old[:at].rstrip("\n") + "\n\n" + section + old[at:]
    path.write_text(text, encoding="utf-8")
    print("\n".join(body))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each command (5); the median is shown")
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--build-only", action="store_true", help="the build rows only, against --baseline")
    ap.add_argument("--baseline", metavar="DIR", help="with --build-only: a checkout to compare with")
    args = ap.parse_args()
    if args.build_only:
        if not args.baseline:
            print("targets.py: --build-only needs --baseline DIR", file=sys.stderr)
            return 2
        return builds_against(args.baseline, args.runs, args.results)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            ("python3 -c pass (baseline)", [py, "-c", "pass"], None),
            ("derive --help", [py, "-m", "derive", "--help"], 0.3),
            ("derive solve two-two-two --json", [py, "-m", "derive", "solve", "two-two-two", "--json"], None),
            ("derive build (no PDF)", [py, "-m", "derive", "build", "--out", str(Path(tmp) / "out")], 3.0),
            ("derive build --skip html,bank (md + tex, errata, sheets)",
             [py, "-m", "derive", "build", "--skip", "html,bank", "--out", str(Path(tmp) / "out")], 3.0),
            ("10 000 steps of two-two-two at 30 digits (API)", [py, "-c", STEPS_SCRIPT], 2.0),
            ("the same without the tape (engine.run)", [py, "-c", NO_TAPE_SCRIPT], None),
            ("derive build --jobs 1 (one process)", [py, "-m", "derive", "build", "--jobs", "1", "--out",
                                                    str(Path(tmp) / "out")], None),
            ("derive train alice (1 000 epochs × 4 samples)", [py, "-m", "derive", "train", "alice", "--json"], 2.0),
            ("derive sweep matrix-linear (4 rates × 50 steps)",
             [py, "-m", "derive", "sweep", "matrix-linear", "--learning-rates", "0.05,0.005,0.003,0.002",
              "--steps", "50", "--json"], 1.0),
        ]
        base = None
        load = os.getloadavg()[0]
        body = []
        for label, cmd, target in rows:
            slow = "10 000" in label or "build" in label or "tape" in label
            if "build" in label:   # a new directory each run
                cmd = cmd[:-1] + [str(Path(tmp) / f"out{len(body)}")]
            t, cpu, fastest = wall(cmd, min(3, args.runs) if slow else args.runs, tmp)
            base = base or t
            body.append(f"| {label} | {t:.2f} | {fastest:.2f} | {cpu:.2f} | {t / base:.1f} | "
                        f"{'' if target is None else f'≤ {target:g}'} |")
            print(body[-1], flush=True)
        lines = ["", "## Other targets", "",
                 f"Measured by `python3 bench/targets.py` on {time.strftime('%Y-%m-%d')}: median of "
                 f"{args.runs} whole-process runs ({min(3, args.runs)} for the build and the 10 000 steps) "
                 "and the fastest of them; the ratio (medians) is against `python3 -c pass` in the same run; "
                 "CPU is the child's user + system "
                 f"time. Load average at the start and the end: {load:.1f}, {os.getloadavg()[0]:.1f} "
                 f"(on {os.cpu_count()} cores).",
                 "", "| command | median s | fastest s | CPU s | / python3 -c pass | target s |",
                 "|---|---:|---:|---:|---:|---:|",
                 *body]
    text = "\n".join(lines) + "\n"
    path = Path(args.results)
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    old = old.split("\n## Other targets\n")[0].rstrip("\n") + "\n"
    path.write_text(old + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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


def wall(cmd: list[str], runs: int) -> tuple:
    """(median wall-clock s, median CPU s of the child: user + system, fastest wall-clock s) over
    `runs` runs.  On a machine shared with other work the wall time grows with the load; the CPU
    time much less; the fastest run is the one the others disturbed least."""
    times, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpu), min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="runs of each command (5); the median is shown")
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args()
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
            t, cpu, fastest = wall(cmd, min(3, args.runs) if slow else args.runs)
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

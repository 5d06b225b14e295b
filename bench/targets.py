"""The engine issue's other targets, whole process, medians of several runs, in one run:

  derive --help                                   (start-up: no SymPy is imported)
  derive build                                    (every built-in problem, md + tex, en + zh, errata)
  10 000 gradient steps of two-two-two, 30 digits (through the API: Problem.numbers)
  derive solve two-two-two --json                 (the everyday command)

each next to `python3 -c pass` (the interpreter's own start-up), measured in the same run, so the
ratio says how much derive adds to starting Python.  Appends its table to bench/RESULTS.md.

    python3 bench/targets.py [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

STEPS_SCRIPT = ("import derive; n = derive.load('two-two-two').numbers(digits=30, steps=10000); "
                "print(n.history[-1].text)")


def wall(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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
            ("10 000 steps of two-two-two at 30 digits (API)", [py, "-c", STEPS_SCRIPT], 2.0),
        ]
        base = None
        lines = ["", "## Other targets", "",
                 f"Measured by `python3 bench/targets.py` on {time.strftime('%Y-%m-%d')}: median of "
                 f"{args.runs} whole-process runs; the ratio is against `python3 -c pass` in the same run.",
                 "", "| command | median s | / python3 -c pass | target s |", "|---|---:|---:|---:|"]
        for label, cmd, target in rows:
            slow = "10 000" in label or "build" in label
            if "build" in label:   # a new directory each run
                cmd = cmd[:-1] + [str(Path(tmp) / f"out{len(lines)}")]
            t = wall(cmd, min(3, args.runs) if slow else args.runs)
            base = base or t
            lines.append(f"| {label} | {t:.2f} | {t / base:.1f} | {'' if target is None else f'≤ {target:g}'} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    path = Path(args.results)
    old = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    old = old.split("\n## Other targets\n")[0].rstrip("\n") + "\n"
    path.write_text(old + text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

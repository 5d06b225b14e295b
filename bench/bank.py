"""The exercise-bank target: 200 variants of two-two-two (sheet + key + each variant's spec and
claims template + Moodle XML, no PDF), whole process, ≤ 10 s.

    derive exercise two-two-two --variants 200 --seed 1 --format moodle -o DIR

timed over several runs (min and median wall-clock, median CPU of the child), next to a baseline
measured in the same run: the per-variant full pipeline — each variant loaded as its own problem
(its own SymPy graph), its sheet and key rendered on their own, its spec file and claims template,
its Moodle blanks by the checker's recomputations (`moodle.blanks_recomputed`, query by query),
its diagram and its worked solution for the feedback — on a few variants, in one process,
extrapolated to 200 (plus the process's start-up, measured).  The
ratio says what building the structure once and replaying the engine's runs saves.  With
`--against DIR` (another checkout, e.g. main's), the same command is run from DIR too, its runs
interleaved with this checkout's (so both see the same load), and the table gets its row and the
ratio of the two.  Each run's CPU is also split into the parent process's own and its worker
processes' (the command runs through a wrapper that reads both from `resource` as it ends): on 2
idle cores the wall time is about the parent's part (what it does alone, before and after the
workers, and beside them) plus the workers' / 2, so under load, where the wall time says little,
the two CPU parts say what the wall time would be.  The load average is sampled around every run.
Appends its table to bench/RESULTS.md.

    python3 bench/bank.py [--runs 5] [--sample 8] [--against DIR]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS, SEED, TARGET = 200, 1, 10.0

# the per-variant pipeline on the first K variants of the same seed: prints seconds per variant
BASELINE = """
import sys, time
import derive
from derive import exercise_context as xc, htmlpage, moodle, svgdiagram, variants as vr
from derive.solve import Problem
k = int(sys.argv[1])
base = derive.load("two-two-two")
specs = [vp.spec for vp in vr.draw(base, k, %d).variants]
x = xc.exercise_strings(xc.environment("md"), "md", base.spec.lang)[2]
t = time.perf_counter()
for spec in specs:
    p = Problem(spec)
    xc.render_exercises(p, lang=base.spec.lang, formats=("md",))
    vr.spec_toml(p.spec, "bench")
    vr.claims_template(p, spec.id + ".toml", 4)
    xc.sheet_context(p, lang=base.spec.lang, strings=x)
    moodle.blanks_recomputed(p, 4, base.spec.lang, x)
    svgdiagram.network_svg(p, base.spec.lang)
    htmlpage.solution_fragment(p, lang=base.spec.lang, diagram=False)
print((time.perf_counter() - t) / k)
""" % SEED


ROOT = HERE.parent

# `python -m derive ARGS` in this process, then (parent CPU s, workers' CPU s) into the file argv[1]
WRAPPER = """
import resource, runpy, sys
out = sys.argv.pop(1)
sys.argv[0] = "derive"
try:
    runpy.run_module("derive", run_name="__main__", alter_sys=True)
except SystemExit as e:
    code = e.code
else:
    code = 0
own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
with open(out, "w") as f:
    f.write(f"{own.ru_utime + own.ru_stime} {kids.ru_utime + kids.ru_stime}")
sys.exit(code)
"""


HANG = 600                       # s: a run still going then is stopped (with its worker processes)


def one_run(cmd: list, cwd: Path, split: Path | None = None) -> tuple:
    """(wall s, CPU s of the child: user + system, load average before, after[, parent CPU s,
    workers' CPU s: read from `split`, where the WRAPPER writes them]) of one run; a run that hangs
    (older checkouts: a worker stopped by the pool could leave the others waiting on a lock) is
    stopped with its process group after HANG s and fails."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        code = proc.wait(timeout=HANG)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise SystemExit(f"bench/bank.py: {' '.join(map(str, cmd))} (in {cwd}) still running after {HANG} s; stopped")
    if code != 0:
        raise SystemExit(f"bench/bank.py: {' '.join(map(str, cmd))} (in {cwd}) failed with {code}")
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    got = (wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, load, os.getloadavg()[0])
    if split is None:
        return got
    own, kids = map(float, split.read_text().split())
    return got + (own, kids)


def timed(cmd: list, runs: int, cwd: Path = ROOT) -> tuple:
    """([wall s per run], median CPU s of the child: user + system)."""
    got = [one_run(cmd, cwd) for _ in range(runs)]
    return [g[0] for g in got], statistics.median(g[1] for g in got)


def summary(got: list) -> tuple:
    """(min wall, median wall, median CPU, median parent CPU, median workers' CPU) of one_run results."""
    return (min(g[0] for g in got), statistics.median(g[0] for g in got), statistics.median(g[1] for g in got),
            statistics.median(g[4] for g in got), statistics.median(g[5] for g in got))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sample", type=int, default=8, help="variants of the baseline (default: 8)")
    ap.add_argument("--against", type=Path, help="another checkout whose command runs beside this one's")
    args = ap.parse_args()
    py = sys.executable
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        split = Path(tmp) / "cpu"
        cmd = [py, "-c", WRAPPER, str(split), "exercise", "two-two-two", "--variants", str(VARIANTS), "--seed",
               str(SEED), "--format", "moodle", "-o", str(Path(tmp) / "bank")]
        ours, theirs = [], []
        for _ in range(args.runs):
            ours.append(one_run(cmd, ROOT, split))
            if args.against:
                theirs.append(one_run(cmd, args.against, split))
        loads += [x for g in ours + theirs for x in g[2:4]]
        start, _ = timed([py, "-c", "import derive.variants, derive.moodle"], args.runs)
        per = [float(subprocess.run([py, "-c", BASELINE, str(args.sample)], check=True, capture_output=True,
                                    text=True, cwd=ROOT).stdout) for _ in range(max(1, args.runs // 2))]
    loads.append(os.getloadavg()[0])
    baseline = statistics.median(start) + VARIANTS * min(per)
    best, med, cpu, own, kids = summary(ours)
    command = f"derive exercise two-two-two --variants {VARIANTS} --seed {SEED} --format moodle"
    rows = [
        "| command | runs | min s | median s | CPU s (median) | parent CPU s | workers' CPU s | parent + workers / 2 s "
        "| baseline s | baseline / min | target s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {command} | {args.runs} | {best:.2f} | {med:.2f} | {cpu:.2f} | {own:.2f} | {kids:.2f} | "
        f"{own + kids / 2:.2f} | {baseline:.1f} | {baseline / best:.1f} | ≤ {TARGET:g} |",
    ]
    if theirs:
        tbest, tmed, tcpu, town, tkids = summary(theirs)
        rows.append(f"| the same from {args.against} (runs interleaved) | {args.runs} | {tbest:.2f} | {tmed:.2f} | "
                    f"{tcpu:.2f} | {town:.2f} | {tkids:.2f} | {town + tkids / 2:.2f} | | | |")
        rows += ["", f"This checkout against {args.against}: wall {tmed / med:.2f}× faster (medians), "
                 f"CPU {tcpu / cpu:.2f}× less, the parent's CPU {town / own:.2f}× less, parent + workers / 2 "
                 f"{(town + tkids / 2) / (own + kids / 2):.2f}× less (medians)."]
    text = "\n".join([
        "", "## Exercise bank", "",
        f"Measured by `python3 bench/bank.py` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; whole process, {args.runs} runs. "
        f"Baseline, in the same run: the per-variant pipeline (own graph, own sheet and key, the checker's "
        f"recomputations for the Moodle blanks, the diagram and the worked solution) on {args.sample} variants, {min(per) * 1000:.0f} ms each, "
        f"× {VARIANTS} + the import ({statistics.median(start):.2f} s). Load average (1 min) around the runs: "
        f"{min(loads):.1f} to {max(loads):.1f}, median {statistics.median(loads):.1f} (on {os.cpu_count()} cores, "
        f"shared).", "", *rows, ""])
    print(text)
    with open(HERE / "RESULTS.md", "a", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: symbolic backpropagation (derive's engine) against the naive baseline, measured in
the same run — `sympy.diff` of the fully composed loss once per parameter, then evaluated.

Both produce every gradient at 30 significant digits for random layered sigmoid networks; the
table reports each time and the ratio baseline / engine (higher is better for the engine).
The baseline is abandoned past --baseline-budget seconds ("> budget"), and not attempted where the
composed loss exceeds derive.calculus.MAX_COMPOSED_OPS operations ("uncomposable").

    python3 bench/bench_gradients.py [--sizes 2-2-2,4-4-1,8-8-8-1] [--baseline-budget 60]
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mpmath  # noqa: E402
import sympy as sp  # noqa: E402

import derive  # noqa: E402
from derive import calculus, numeric, verify  # noqa: E402
from derive import spec as spec_mod  # noqa: E402


def network_spec(sizes: list[int], seed: int = 1) -> str:
    rng = random.Random(seed)
    val = lambda: f"{rng.randint(-1000, 1000) / 1000:.3f}"  # noqa: E731
    data = [f"x{i} = {val()}" for i in range(sizes[0])]
    params, forward = [], []
    prev = [f"x{i}" for i in range(sizes[0])]
    for layer, size in enumerate(sizes[1:], 1):
        outs = []
        for j in range(size):
            terms = []
            for k, p in enumerate(prev):
                params.append(f"w{layer}_{j}_{k} = {val()}")
                terms.append(f"w{layer}_{j}_{k}*{p}")
            params.append(f"b{layer}_{j} = {val()}")
            forward.append(f'n{layer}_{j} = "{" + ".join(terms)} + b{layer}_{j}"')
            forward.append(f'o{layer}_{j} = "sigmoid(n{layer}_{j})"')
            outs.append(f"o{layer}_{j}")
        prev = outs
    targets = [f"t{j} = {val()}" for j in range(len(prev))]
    forward.append('E = "' + " + ".join(f"1/2*(t{j} - {o})^2" for j, o in enumerate(prev)) + '"')
    return "\n".join(['title = "bench"', "[data]", *data, *targets, "[parameters]", *params,
                      "[forward]", *forward]) + "\n"


def engine(problem, digits: int):
    """Every gradient, correctly rounded, by derive's engine (graph already built)."""
    sol = problem.solve(digits=digits)
    return {p: sol.gradients[p].text for p in problem.graph.parameters}


def baseline(problem, digits: int, budget: float):
    """sympy.diff of the composed loss for each parameter, evaluated at the start values."""
    g = problem.graph
    start = time.perf_counter()
    loss = calculus.composed(g, g.loss_entry)
    if loss is None:
        return "too large"
    subs = {}
    ctx = numeric.MpContext(digits + 20)
    values = verify.initial_values(g, ctx)
    out = {}
    for name in g.parameters:
        e = g.quantities[name].entries[0]
        d = sp.diff(loss, e)
        out[name] = numeric.rounded_text(numeric.evaluate(d, values, ctx), digits)
        if time.perf_counter() - start > budget:
            return None
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2-2-2,2-3-1,4-4-1,4-4-4-1,8-8-8-1,8-8-8-8-8-1")
    ap.add_argument("--digits", type=int, default=30)
    ap.add_argument("--baseline-budget", type=float, default=60.0)
    args = ap.parse_args(argv)
    print(f"{'network':<12}{'params':>7}{'engine s':>11}{'baseline s':>12}{'ratio':>9}  agree")
    with tempfile.TemporaryDirectory() as tmp:
        for sizes_text in args.sizes.split(","):
            sizes = [int(s) for s in sizes_text.split("-")]
            path = Path(tmp) / f"{sizes_text}.toml"
            path.write_text(network_spec(sizes))
            t0 = time.perf_counter()
            problem = derive.Problem(spec_mod.load(str(path)))
            ours = engine(problem, args.digits)
            t_engine = time.perf_counter() - t0
            t1 = time.perf_counter()
            problem2 = derive.Problem(spec_mod.load(str(path)))
            theirs = baseline(problem2, args.digits, args.baseline_budget)
            t_base = time.perf_counter() - t1
            if theirs is None or theirs == "too large":
                note = "> budget" if theirs is None else "uncomposable"
                print(f"{sizes_text:<12}{len(ours):>7}{t_engine:>11.3f}{note:>12}{'—':>9}  —")
                continue
            agree = all(theirs[p] == ours[p] for p in ours)
            print(f"{sizes_text:<12}{len(ours):>7}{t_engine:>11.3f}{t_base:>12.3f}{t_base / t_engine:>9.1f}  "
                  f"{'yes' if agree else 'NO'}")


if __name__ == "__main__":
    main()

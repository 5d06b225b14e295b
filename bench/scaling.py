"""How derive's engine scales: `derive solve --json --digits 30` on sigmoid networks of growing size.

Every figure is a whole process (Python start-up, imports, reading the spec and its .npz,
every gradient at 30 correctly rounded digits, the JSON written), timed in this run next to:

  naive   one `sympy.diff` of the fully composed loss per parameter, then substitution and
          evaluation at 30 digits (what a SymPy user would write first); capped at --cap s;
  mpmath  a plain scalar forward and backward pass in mpmath at 40 digits (what a careful
          user would write by hand): loops over neurons, no matrices;
  torch   PyTorch float64 autograd, when torch is installed (optional), with its largest
          relative error against derive's digits.

The naive and mpmath baselines are this script run with --baseline in a child process.  Peak
memory is the child's maximum resident set (os.wait4).  The table goes to stdout and to
bench/RESULTS.md (with the machine it ran on); the exponent k of time ∝ P^k is fitted by least
squares on log time against log P over every size with P ≥ 100.

    python3 bench/scaling.py                 # every size (about 2 minutes here)
    python3 bench/scaling.py --quick         # the small sizes only
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from mlp import mlp_arrays, parameter_count, write_mlp  # noqa: E402

SIZES = [[8, 8, 8, 1], [16, 16, 16, 1], [32, 32, 32, 1], [64, 48, 32, 1], [784, 12, 10],
         [784, 128, 10], [784, 1000, 10]]
QUICK = SIZES[:4]
NAIVE_MAX_PARAMETERS = 600        # beyond this the naive baseline is not even started
MPMATH_MAX_PARAMETERS = 1_000_000


def timed(cmd: list[str], cap: float, env=None) -> tuple[float | None, int, bytes]:
    """(wall seconds or None past the cap, peak RSS in bytes, stdout) of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env)
        deadline = start + cap
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                return None, 0, b""
            time.sleep(0.01)
        wall = time.perf_counter() - start
        out.seek(0)
        data = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_maxrss * 1024, data


# ---------------------------------------------------------------- baselines (run as children)
def naive_sympy(spec_dir: Path) -> dict:
    """One sympy.diff of the composed loss per parameter, substituted and evaluated at 30 digits."""
    import numpy as np
    import sympy as sp
    arrays = dict(np.load(spec_dir / "mlp.npz"))
    layers = sum(1 for k in arrays if k.startswith("W"))
    symbols, values = {}, {}

    def sym(name, value):
        s = sp.Symbol(name)
        symbols[name] = s
        values[s] = sp.Float(float(value), 40)
        return s

    a = [sym(f"x{i}", v) for i, v in enumerate(arrays["x"])]
    for l in range(1, layers + 1):
        W, b = arrays[f"W{l}"], arrays[f"b{l}"]
        a = [1 / (1 + sp.exp(-(sum(sym(f"W{l}_{i}_{j}", W[i, j]) * a[j] for j in range(W.shape[1]))
                                  + sym(f"b{l}_{i}", b[i])))) for i in range(W.shape[0])]
    loss = sp.Rational(1, 2) * sum((ai - float(yi)) ** 2 for ai, yi in zip(a, arrays["y"]))
    params = [s for n, s in symbols.items() if not n.startswith("x")]
    return {str(p): str(sp.diff(loss, p).evalf(30, subs=values)) for p in params}


def mpmath_scalar(spec_dir: Path) -> dict:
    """A hand-written scalar backprop in mpmath at 40 digits (loops, no matrices)."""
    import mpmath
    import numpy as np
    mpmath.mp.dps = 40
    arrays = dict(np.load(spec_dir / "mlp.npz"))
    layers = sum(1 for k in arrays if k.startswith("W"))
    W = [[[mpmath.mpf(float(v)) for v in row] for row in arrays[f"W{l}"]] for l in range(1, layers + 1)]
    b = [[mpmath.mpf(float(v)) for v in arrays[f"b{l}"]] for l in range(1, layers + 1)]
    acts = [[mpmath.mpf(float(v)) for v in arrays["x"]]]
    for l in range(layers):
        acts.append([1 / (1 + mpmath.exp(-(mpmath.fsum(w * x for w, x in zip(row, acts[-1])) + bi)))
                     for row, bi in zip(W[l], b[l])])
    # δ_L = (a − y)·a(1 − a); δ_l = (W_{l+1}ᵀ δ_{l+1})·a(1 − a)
    delta = [(ai - float(yi)) * ai * (1 - ai) for ai, yi in zip(acts[-1], arrays["y"])]
    grads = {}
    for l in range(layers - 1, -1, -1):
        for i, d in enumerate(delta):
            grads[f"b{l + 1}_{i}"] = d
            for j, x in enumerate(acts[l]):
                grads[f"W{l + 1}_{i}_{j}"] = d * x
        if l:
            delta = [mpmath.fsum(W[l][i][j] * delta[i] for i in range(len(delta))) * a * (1 - a)
                     for j, a in enumerate(acts[l])]
    return {k: mpmath.nstr(v, 30) for k, v in grads.items()}


def torch_float64(spec_dir: Path) -> dict:
    import numpy as np
    import torch
    arrays = {k: torch.tensor(v, dtype=torch.float64) for k, v in np.load(spec_dir / "mlp.npz").items()}
    layers = sum(1 for k in arrays if k.startswith("W"))
    params = {k: v.requires_grad_() for k, v in arrays.items() if k[0] in "Wb"}
    a = arrays["x"]
    for l in range(1, layers + 1):
        a = torch.sigmoid(params[f"W{l}"] @ a + params[f"b{l}"])
    loss = 0.5 * ((a - arrays["y"]) ** 2).sum()
    loss.backward()
    return {k: v.grad.numpy().ravel().tolist() for k, v in params.items()}


# ---------------------------------------------------------------- the table
def torch_available() -> bool:
    """Without importing it here: a child's peak memory (ru_maxrss) starts from its parent's."""
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def derive_gradients(stdout: bytes) -> dict:
    return json.loads(stdout)["gradients"]


def flat(v) -> list:
    if isinstance(v, list):
        return [x for item in v for x in flat(item)]
    return [v]


def torch_error(derive_json: dict, torch_grads: dict) -> float:
    """The largest relative error of torch's gradients against derive's 30 digits."""
    worst = 0.0
    for name, values in derive_json.items():
        exact = [float(x) for x in flat(values)]
        for d, t in zip(exact, torch_grads[name]):
            scale = max(abs(d), 1e-300)
            worst = max(worst, abs(t - d) / scale)
    return worst


def fit_exponent(points: list[tuple[int, float]]) -> float:
    xs = [math.log(p) for p, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def fmt(t: float | None, cap: float) -> str:
    return f">{cap:g}" if t is None else f"{t:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--cap", type=float, default=60.0, help="seconds before a baseline is stopped (60)")
    ap.add_argument("--baseline", choices=("naive", "mpmath", "torch"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--results", default=str(HERE / "RESULTS.md"), help="where the table goes")
    args = ap.parse_args()
    if args.baseline:
        fn = {"naive": naive_sympy, "mpmath": mpmath_scalar, "torch": torch_float64}[args.baseline]
        print(json.dumps(fn(Path(args.dir))))
        return 0

    sizes = QUICK if args.quick else SIZES
    have_torch = torch_available()
    rows, points = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for sizes_ in sizes:
            P = parameter_count(sizes_)
            d = Path(tmp) / "-".join(map(str, sizes_))
            spec = write_mlp(sizes_, d)
            t_derive, mem, out = timed([sys.executable, "-m", "derive", "solve", str(spec), "--json",
                                        "--digits", "30"], cap=600)
            points.append((P, t_derive))
            t_naive = t_mp = None
            naive_note = mp_note = ""
            if P <= NAIVE_MAX_PARAMETERS:
                t_naive, _, _ = timed([sys.executable, __file__, "--baseline", "naive", "--dir", str(d)], args.cap)
            else:
                naive_note = "not run"
            if P <= MPMATH_MAX_PARAMETERS:
                t_mp, _, _ = timed([sys.executable, __file__, "--baseline", "mpmath", "--dir", str(d)], args.cap)
            else:
                mp_note = "not run"
            t_torch = err = None
            if have_torch:
                t_torch, _, tout = timed([sys.executable, __file__, "--baseline", "torch", "--dir", str(d)], args.cap)
                if tout:
                    err = torch_error(derive_gradients(out), json.loads(tout))
            rows.append(dict(net="-".join(map(str, sizes_)), P=P, derive=t_derive, mem=mem,
                             naive=t_naive, naive_note=naive_note, mp=t_mp, mp_note=mp_note,
                             torch=t_torch, err=err))
            r = rows[-1]
            print(f"{r['net']:>14} P={P:>7}  derive {t_derive:7.2f} s  {mem / 2**20:7.0f} MiB  "
                  f"naive {naive_note or fmt(t_naive, args.cap)}  mpmath {mp_note or fmt(t_mp, args.cap)}",
                  flush=True)

    k = fit_exponent([(p, t) for p, t in points if p >= 100])
    lines = [
        "# Benchmark results",
        "",
        f"Measured by `python3 bench/scaling.py{' --quick' if args.quick else ''}` on "
        f"{time.strftime('%Y-%m-%d')}: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}.",
        "",
        "Whole process, every gradient of a sigmoid MLP (random float64 weights from an .npz) at 30 "
        "correctly rounded digits. Ratios are baseline time / derive time from this one run "
        f"(`>{args.cap:g}` = stopped at the cap; `not run` = far past the cap at smaller sizes).",
        "",
        "| network | P | derive s | peak MiB | naive SymPy s | naive / derive | mpmath scalar s | "
        "mpmath / derive | torch f64 s | torch max rel. error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        def ratio(t, note):
            if note:
                return "—"
            return f">{args.cap / r['derive']:.0f}" if t is None else f"{t / r['derive']:.1f}"
        torch_s = "not installed" if not have_torch else fmt(r["torch"], args.cap)
        err = "—" if r["err"] is None else f"{r['err']:.1e}"
        lines.append(f"| {r['net']} | {r['P']} | {r['derive']:.2f} | {r['mem'] / 2**20:.0f} | "
                     f"{r['naive_note'] or fmt(r['naive'], args.cap)} | {ratio(r['naive'], r['naive_note'])} | "
                     f"{r['mp_note'] or fmt(r['mp'], args.cap)} | {ratio(r['mp'], r['mp_note'])} | {torch_s} | {err} |")
    lines += ["", f"Fitted exponent: derive's time grows as P^{k:.2f} over the sizes with P ≥ 100.", ""]
    text = "\n".join(lines)
    print(text)
    Path(args.results).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

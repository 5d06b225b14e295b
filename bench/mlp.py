"""Random fully connected sigmoid networks as derive specs, for the benchmarks and tests.

`write_mlp(sizes, directory)` writes `mlp.toml` and its weights `mlp.npz` (float64 from
`numpy.random.default_rng(seed)`, so every run makes the same network): layer l computes
a_l = σ(W_l·a_{l−1} + b_l), the loss is E = ½·Σ(a_L − y)².
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def mlp_arrays(sizes: list[int], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.uniform(-1, 1, sizes[0]), "y": rng.uniform(0, 1, sizes[-1])}
    for l, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        arrays[f"W{l}"] = rng.normal(0, 1 / np.sqrt(n_in), (n_out, n_in))
        arrays[f"b{l}"] = rng.normal(0, 0.1, n_out)
    return arrays


def mlp_spec_text(sizes: list[int], npz: str = "mlp.npz") -> str:
    layers = len(sizes) - 1
    lines = [f'title = "{"-".join(map(str, sizes))} sigmoid network (random weights)"', "", "[data]"]
    lines += [f'x = {{ file = "{npz}", key = "x" }}', f'y = {{ file = "{npz}", key = "y" }}', "", "[parameters]"]
    for l in range(1, layers + 1):
        lines += [f'W{l} = {{ file = "{npz}", key = "W{l}" }}', f'b{l} = {{ file = "{npz}", key = "b{l}" }}']
    lines += ["", "[forward]"]
    prev = "x"
    for l in range(1, layers + 1):
        lines += [f'z{l} = "W{l} @ {prev} + b{l}"', f'a{l} = "sigmoid(z{l})"']
        prev = f"a{l}"
    lines += [f'E = "1/2 * sum(({prev} - y)^2)"', "", "[train]", "learning_rate = 0.1", ""]
    return "\n".join(lines)


def write_mlp(sizes: list[int], directory: Path, seed: int = 0) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    np.savez(directory / "mlp.npz", **mlp_arrays(sizes, seed))
    spec = directory / "mlp.toml"
    spec.write_text(mlp_spec_text(sizes), encoding="utf-8")
    return spec


def parameter_count(sizes: list[int]) -> int:
    return sum(n_in * n_out + n_out for n_in, n_out in zip(sizes, sizes[1:]))

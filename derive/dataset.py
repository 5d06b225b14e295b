"""Samples for training: the spec's [dataset] table, random draws, and the [train] options of a run.

Takes the parsed TOML tables and the spec's [data] values; gives a `Dataset` (one exact `Value` per
data name per sample), `TrainOptions` (epochs, mode, optimizer, …) and the parameter values drawn by
`init`.  Three ways to give samples:

    [dataset]                      # inline: one list per data name, one entry per sample
    x1 = [-2, 25, 17, -15]         # each entry of the shape the name has in [data]
    [dataset] file = "samples.csv" # a CSV file beside the spec (header: data names; a vector's
                                   # entries are columns x[1], x[2], a matrix's W[1,2]) or an .npz
                                   # (one array per data name, the first axis the sample)
    [dataset.generate]             # drawn: n samples from numpy.random.default_rng(seed)
    n = 100
    seed = 0
    x = { distribution = "normal", mean = 0, std = 1 }
    y = "sum(x)"                   # a target: an expression over the drawn inputs (or a list, one
                                   # expression per entry of a vector)

The generator: `rng = numpy.random.default_rng(seed)`; every drawn input, in the order written, is
`rng.normal(mean, std, size=(n, entries))` (or `rng.uniform(low, high, …)`), row i the sample i in
row-major order.  Drawn float64 values are the exact binary numbers they are.  Target expressions
are evaluated later by the training stage (`train`), which has the evaluator.  `init` draws the
parameters it names the same way, one generator for all, in spec order.

NumPy is imported only when a spec draws numbers or reads an .npz, so `derive --help` stays fast.
Bad input raises `DeriveError` naming the file and the key.
"""
from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from . import expr as ex
from .arrays import check_file, exact_entries, file_beside_spec, member, open_numpy
from .errors import DeriveError, LimitError
from .files import read_input

MAX_SAMPLES = 1_000_000
MAX_EPOCHS = 10_000_000
MAX_SAMPLE_VALUES = 10_000_000      # scalar values in all samples
MODES = ("sgd", "batch", "minibatch")
OPTIMIZERS = {"sgd": {}, "momentum": {"beta": Fraction(9, 10)},
              "adam": {"beta1": Fraction(9, 10), "beta2": Fraction(999, 1000), "eps": Fraction(1, 10 ** 8)}}
DISTRIBUTIONS = {"normal": {"mean": Fraction(0), "std": Fraction(1)},
                 "uniform": {"low": Fraction(0), "high": Fraction(1)}}
TRAINING_KEYS = {"epochs", "mode", "batch_size", "shuffle_seed", "optimizer", "beta", "beta1", "beta2",
                 "eps", "init", "output", "classes", "classes_zh", "sweep"}


@dataclass(frozen=True)
class Dataset:
    """Samples: `columns[name]` is a tuple of (shape, entries) per sample; `derived` maps a target
    name to its expression(s) over the drawn inputs (evaluated by `train`)."""
    n: int
    columns: dict                   # name -> tuple of entry tuples (row-major Fractions), one per sample
    derived: dict = field(default_factory=dict)   # name -> (text or list of texts, trees)
    origin: str = "inline"          # "inline", the file name, or "generated (n = 100, seed = 0)"
    drawn: dict = field(default_factory=dict)     # a generated input's name -> (distribution, its args)

    @property
    def names(self) -> tuple:
        return (*self.columns, *self.derived)


@dataclass(frozen=True)
class Init:
    distribution: str
    args: dict                      # mean/std or low/high (Fractions)
    seed: int
    names: tuple                    # the parameters drawn


@dataclass(frozen=True)
class Sweep:
    learning_rates: tuple           # Fractions
    steps: int
    claimed: tuple = ()             # the source document's verdict per rate ("" where it says none)


@dataclass(frozen=True)
class TrainOptions:
    """The [train] keys of a training run (`derive train`)."""
    epochs: int | None = None       # None: the spec's train.steps
    mode: str = "sgd"
    batch_size: int | None = None
    shuffle_seed: int | None = None
    optimizer: str = "sgd"
    hyper: dict = field(default_factory=dict)   # beta | beta1, beta2, eps (Fractions)
    init: Init | None = None
    output: str | None = None       # what a prediction reports (default: found by `train`)
    classes: tuple = ()             # names of the classes 0, 1, … a scalar output is rounded to
    classes_zh: tuple = ()
    sweep: Sweep | None = None


# ---------------------------------------------------------------- small readers
def to_fraction(x, path: str, key: str) -> Fraction:
    """An exact Fraction for a TOML number; a float means the decimal the user wrote."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise DeriveError(f"expected a number, got {_describe(x)}", file=path, key=key)
    if isinstance(x, float):
        if not math.isfinite(x):
            raise DeriveError(f"{x} is not a finite number", file=path, key=key)
        return Fraction(repr(x))  # repr is the shortest round-trip decimal: 0.15 -> 3/20
    if abs(x) > 10 ** 100:
        raise LimitError("integer has more than 100 digits", file=path, key=key)
    return Fraction(x)


_fraction = to_fraction


def whole(x, path: str, key: str, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise DeriveError(f"expected a whole number ≥ {lo}, got {_describe(x)}", file=path, key=key)
    if x < lo:
        raise DeriveError(f"expected a whole number ≥ {lo}, got {x}", file=path, key=key)
    if hi is not None and x > hi:
        raise LimitError(f"{x} is over the limit of {hi}", file=path, key=key)
    return x


def _describe(x) -> str:
    if isinstance(x, str):
        return f"the string {x!r}"[:80]
    if isinstance(x, bool):
        return f"the boolean {str(x).lower()}"
    if isinstance(x, float):
        return f"the number {x}"
    if isinstance(x, dict):
        return "a table"
    if isinstance(x, list):
        return f"a list of {len(x)}"
    return type(x).__name__


def _shape_words(shape: tuple) -> str:
    return "a scalar" if shape == () else f"a {shape[0]}×{shape[1]} matrix" if shape[1] != 1 \
        else f"a vector of {shape[0]}"


def _entries(x, shape: tuple, path: str, key: str, what: str) -> tuple:
    """The row-major Fractions of one sample entry `x` of a data name of `shape`."""
    if shape == ():
        if isinstance(x, list):
            raise DeriveError(f"expected a number ({what} is a scalar), got {_describe(x)}", file=path, key=key)
        return (_fraction(x, path, key),)
    r, c = shape
    if not isinstance(x, list):
        raise DeriveError(f"expected {_shape_words(shape)} ({what}'s shape), got {_describe(x)}",
                          file=path, key=key)
    if c == 1 and all(not isinstance(v, list) for v in x):
        rows = [[v] for v in x]
    else:
        rows = x
    if len(rows) != r or any(not isinstance(row, list) or len(row) != c for row in rows):
        got = _describe(x) if not all(isinstance(row, list) for row in x) else \
            f"{len(x)} rows of {', '.join(sorted({str(len(row)) for row in x}))}"
        raise DeriveError(f"expected {_shape_words(shape)} ({what}'s shape), got {got}", file=path, key=key)
    return tuple(_fraction(v, path, f"{key}[{i}]") for i, row in enumerate(rows) for v in row)


# ---------------------------------------------------------------- [dataset]
def read_dataset(table, data: dict, path: str, base_dir: Path | None) -> Dataset | None:
    """The samples of a spec's [dataset] table; `data` is name -> spec.Value (the shapes)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise DeriveError(f"expected a table [dataset], got {_describe(table)}", file=path, key="dataset")
    if not table:
        raise DeriveError("empty: give one list per data name, file = \"…\", or [dataset.generate]",
                          file=path, key="dataset")
    if "generate" in table:
        if len(table) > 1:
            other = next(k for k in table if k != "generate")
            raise DeriveError("[dataset.generate] draws every sample; it cannot be mixed with other keys",
                              file=path, key=f"dataset.{other}")
        return _generated(table["generate"], data, path)
    if "file" in table:
        if len(table) > 1:
            other = next(k for k in table if k != "file")
            raise DeriveError("a dataset file gives every sample; it cannot be mixed with other keys",
                              file=path, key=f"dataset.{other}")
        return _from_file(table["file"], data, path, base_dir)
    columns = {}
    for name, samples in table.items():
        key = f"dataset.{name}"
        shape = _data_shape(name, data, path, key)
        if not isinstance(samples, list) or not samples:
            raise DeriveError(f"expected a non-empty list with one entry per sample, got {_describe(samples)}",
                              file=path, key=key)
        columns[name] = tuple(_entries(x, shape, path, f"{key}[{i}]", f"data.{name}")
                              for i, x in enumerate(samples))
    _equal_lengths(columns, path)
    return _checked(Dataset(len(next(iter(columns.values()))), columns), path)


def _data_shape(name: str, data: dict, path: str, key: str) -> tuple:
    if name not in data:
        raise DeriveError(f"{name!r} is not a name in [data] (each dataset name is a data name, whose value "
                          "there is the sample of the worked step and gives the shape)", file=path, key=key)
    return data[name].shape


def _equal_lengths(columns: dict, path: str):
    lengths = {n: len(c) for n, c in columns.items()}
    if len(set(lengths.values())) > 1:
        first = next(iter(lengths))
        odd = next(n for n in lengths if lengths[n] != lengths[first])
        raise DeriveError(f"lists of unequal length: {first} has {lengths[first]} samples, "
                          f"{odd} has {lengths[odd]}", file=path, key=f"dataset.{odd}")


def _checked(ds: Dataset, path: str) -> Dataset:
    if ds.n > MAX_SAMPLES:
        raise LimitError(f"{ds.n} samples; the limit is {MAX_SAMPLES}", file=path, key="dataset")
    values = sum(len(c[0]) * ds.n for c in ds.columns.values())
    if values > MAX_SAMPLE_VALUES:
        raise LimitError(f"{values} values in the samples; the limit is {MAX_SAMPLE_VALUES}", file=path,
                         key="dataset")
    return ds


_CSV_COLUMN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)(?:,\s*(\d+))?\])?")


def _from_file(name, data: dict, path: str, base_dir: Path | None) -> Dataset:
    key = "dataset.file"
    target = file_beside_spec(name, base_dir, (".csv", ".npz"), path, key,
                              expected='a file name: file = "samples.csv" or "samples.npz"',
                              what="a dataset file")
    if target.suffix == ".npz":
        return _from_npz(target, name, data, path)
    try:
        _display, text = read_input(target, limit=200_000_000)
    except DeriveError as e:
        raise DeriveError(e.what, file=path, key=key) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise DeriveError(f"{name} is empty (its first line names the data)", file=path, key=key)
    header = [h.strip() for h in rows[0]]
    places = []         # per column: (name, index into the entries)
    for col in header:
        m = _CSV_COLUMN.fullmatch(col)
        if not m:
            raise DeriveError(f"{name}: column {col!r} is not a data name (x, or x[1] for a vector entry, "
                              "W[1,2] for a matrix entry)", file=path, key=key)
        dname, i, j = m.group(1), m.group(2), m.group(3)
        if dname not in data:
            raise DeriveError(f"{name}: column {col!r}: {dname!r} is not a name in [data]", file=path, key=key)
        shape = data[dname].shape
        if shape == ():
            if i is not None:
                raise DeriveError(f"{name}: column {col!r}: data.{dname} is a scalar", file=path, key=key)
            idx = 0
        else:
            r, c = shape
            if i is None or (j is None and c != 1):
                raise DeriveError(f"{name}: column {col!r}: data.{dname} is {_shape_words(shape)}; name its "
                                  f"entries {dname}[1]{'' if c == 1 else ',1'} …", file=path, key=key)
            ii, jj = int(i), int(j or 1)
            if not (1 <= ii <= r and 1 <= jj <= c):
                raise DeriveError(f"{name}: column {col!r} is outside data.{dname} ({_shape_words(shape)})",
                                  file=path, key=key)
            idx = (ii - 1) * c + (jj - 1)
        places.append((dname, idx))
    if len(set(places)) != len(places):
        raise DeriveError(f"{name}: a column is named twice", file=path, key=key)
    sizes = {n: len(data[n].entries) for n, _ in places}
    for n, size in sizes.items():
        have = sum(1 for m, _ in places if m == n)
        if have != size:
            raise DeriveError(f"{name}: data.{n} has {size} entries but {have} columns", file=path, key=key)
    columns: dict = {n: [] for n in sizes}
    for line_no, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DeriveError(f"{name}: line {line_no} has {len(row)} values, the header {len(header)}",
                              file=path, key=key)
        got = {n: [None] * sizes[n] for n in sizes}
        for (dname, idx), cell, col in zip(places, row, header):
            got[dname][idx] = _decimal_cell(cell, name, line_no, col, path, key)
        for n in sizes:
            columns[n].append(tuple(got[n]))
    if not columns[next(iter(columns))]:
        raise DeriveError(f"{name} has a header but no samples", file=path, key=key)
    return _checked(Dataset(len(columns[next(iter(columns))]), {n: tuple(c) for n, c in columns.items()},
                            origin=name), path)


_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,4})?")


def _decimal_cell(cell: str, name: str, line_no: int, col: str, path: str, key: str) -> Fraction:
    text = cell.strip()
    if not _DECIMAL.fullmatch(text) or len(text) > 400:
        raise DeriveError(f"{name}: line {line_no}, column {col}: {text[:40]!r} is not a number",
                          file=path, key=key)
    return Fraction(text)    # the decimal as written, exactly


def _from_npz(target: Path, name: str, data: dict, path: str) -> Dataset:
    import numpy as np
    key = "dataset.file"
    check_file(target, name, path, key)
    loaded = open_numpy(target, name, path, key)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DeriveError(f"{name}: expected an .npz archive (one array per data name)", file=path, key=key)
    columns = {}
    with loaded:
        for which in loaded.files:
            if which not in data:
                raise DeriveError(f"{name}: array {which!r} is not a name in [data]", file=path, key=key)
            arr = member(loaded, name, which, path, key)
            label = f"{name}[{which}]"
            if arr.dtype.kind not in "biuf":
                raise DeriveError(f"{label}: expected numbers, got arrays of dtype {arr.dtype}", file=path, key=key)
            shape = data[which].shape
            want = (shape[0],) if shape != () and shape[1] == 1 and arr.ndim == 2 else \
                () if shape == () else shape
            if arr.ndim == 0 or (tuple(arr.shape[1:]) != want and
                                 not (shape != () and tuple(arr.shape[1:]) == tuple(shape))):
                raise DeriveError(f"{label}: shape {tuple(arr.shape)} is not (samples, …) of "
                                  f"data.{which}'s shape ({_shape_words(shape)})", file=path, key=key)
            flat = exact_entries(arr, label, path, key)
            width = len(flat) // arr.shape[0] if arr.shape[0] else 0
            columns[which] = tuple(tuple(flat[i * width:(i + 1) * width]) for i in range(arr.shape[0]))
    if not columns:
        raise DeriveError(f"{name} holds no arrays", file=path, key=key)
    _equal_lengths(columns, path)
    return _checked(Dataset(len(next(iter(columns.values()))), columns, origin=name), path)


# ---------------------------------------------------------------- [dataset.generate]
def _distribution(table, path: str, key: str) -> tuple[str, dict]:
    if not isinstance(table, dict):
        raise DeriveError(f"expected a table such as {{ distribution = \"normal\", mean = 0, std = 1 }}, "
                          f"got {_describe(table)}", file=path, key=key)
    dist = table.get("distribution", "normal")
    if dist not in DISTRIBUTIONS:
        raise DeriveError(f"unknown distribution {dist!r} (known: {', '.join(DISTRIBUTIONS)})",
                          file=path, key=f"{key}.distribution")
    args = dict(DISTRIBUTIONS[dist])
    for k, v in table.items():
        if k in ("distribution", "seed", "parameters"):
            continue
        if k not in args:
            raise DeriveError(f"unknown key for a {dist} distribution (allowed: {', '.join(args)})",
                              file=path, key=f"{key}.{k}")
        args[k] = _fraction(v, path, f"{key}.{k}")
    if dist == "normal" and args["std"] < 0:
        raise DeriveError("std must be ≥ 0", file=path, key=f"{key}.std")
    if dist == "uniform" and args["high"] < args["low"]:
        raise DeriveError("high must be ≥ low", file=path, key=f"{key}.high")
    return dist, args


def draw(rng, dist: str, args: dict, count: int) -> list:
    """`count` exact Fractions (the float64 numbers numpy draws)."""
    if dist == "normal":
        xs = rng.normal(float(args["mean"]), float(args["std"]), size=count)
    else:
        xs = rng.uniform(float(args["low"]), float(args["high"]), size=count)
    return [Fraction(*x.as_integer_ratio()) for x in xs.tolist()]


def _generated(table, data: dict, path: str) -> Dataset:
    import numpy as np
    base = "dataset.generate"
    if not isinstance(table, dict):
        raise DeriveError(f"expected a table [dataset.generate], got {_describe(table)}", file=path, key=base)
    if "n" not in table:
        raise DeriveError("required: n, the number of samples", file=path, key=f"{base}.n")
    n = whole(table["n"], path, f"{base}.n", 1, MAX_SAMPLES)
    seed = whole(table.get("seed", 0), path, f"{base}.seed", 0)
    rng = np.random.default_rng(seed)
    columns, derived, drawn = {}, {}, {}
    for name, spec in table.items():
        if name in ("n", "seed"):
            continue
        key = f"{base}.{name}"
        shape = _data_shape(name, data, path, key)
        size = 1 if shape == () else shape[0] * shape[1]
        if isinstance(spec, dict):
            if n * size > MAX_SAMPLE_VALUES:
                raise LimitError(f"{n * size} values; the limit is {MAX_SAMPLE_VALUES}", file=path, key=key)
            dist, args = _distribution(spec, path, key)
            drawn[name] = (dist, args)
            flat = draw(rng, dist, args, n * size)
            columns[name] = tuple(tuple(flat[i * size:(i + 1) * size]) for i in range(n))
        elif isinstance(spec, (str, list)):
            texts = spec if isinstance(spec, list) else [spec]
            if not texts or not all(isinstance(t, str) for t in texts):
                raise DeriveError("expected an expression, or a list of expressions (one per entry)",
                                  file=path, key=key)
            trees = []
            for i, t in enumerate(texts):
                k = key if isinstance(spec, str) else f"{key}[{i}]"
                try:
                    tree = ex.parse(t)
                except DeriveError as e:
                    raise e.located(file=path, key=k) from None
                for used in sorted(ex.names_in(tree)):
                    if used not in columns:
                        raise DeriveError(f"{used!r} is not an input drawn above it", file=path, key=k)
                trees.append(tree)
            if isinstance(spec, list) and len(texts) != size:
                raise DeriveError(f"data.{name} is {_shape_words(shape)}: expected {size} expressions, "
                                  f"got {len(texts)}", file=path, key=key)
            derived[name] = (tuple(texts), tuple(trees), isinstance(spec, list))
        else:
            raise DeriveError("expected a distribution table (an input) or an expression (a target)",
                              file=path, key=key)
    if not columns:
        raise DeriveError("no input is drawn (give e.g. x = { distribution = \"normal\" })", file=path, key=base)
    return _checked(Dataset(n, columns, derived, origin=f"generated (n = {n}, seed = {seed})", drawn=drawn), path)


# ---------------------------------------------------------------- [train]: the run's options
def read_options(train: dict, parameters: dict, names: set, path: str, steps: int) -> TrainOptions:
    """The training keys of [train] (`parameters`: name -> Value, `names`: every name)."""
    got: dict = {}
    if "epochs" in train:
        got["epochs"] = whole(train["epochs"], path, "train.epochs", 0, MAX_EPOCHS)
    mode = train.get("mode", "sgd")
    if mode not in MODES:
        raise DeriveError(f"unknown mode {mode!r} (known: {', '.join(MODES)})", file=path, key="train.mode")
    got["mode"] = mode
    if "batch_size" in train:
        if mode != "minibatch":
            raise DeriveError('batch_size belongs to mode = "minibatch"', file=path, key="train.batch_size")
        got["batch_size"] = whole(train["batch_size"], path, "train.batch_size", 1, MAX_SAMPLES)
    elif mode == "minibatch":
        raise DeriveError('mode = "minibatch" needs batch_size', file=path, key="train.batch_size")
    if "shuffle_seed" in train:
        got["shuffle_seed"] = whole(train["shuffle_seed"], path, "train.shuffle_seed", 0)
    opt = train.get("optimizer", "sgd")
    if opt not in OPTIMIZERS:
        raise DeriveError(f"unknown optimizer {opt!r} (known: {', '.join(OPTIMIZERS)})", file=path,
                          key="train.optimizer")
    got["optimizer"] = opt
    hyper = dict(OPTIMIZERS[opt])
    for k in ("beta", "beta1", "beta2", "eps"):
        if k not in train:
            continue
        if k not in hyper:
            owner = "momentum" if k == "beta" else "adam"
            raise DeriveError(f'{k} belongs to optimizer = "{owner}"', file=path, key=f"train.{k}")
        v = _fraction(train[k], path, f"train.{k}")
        if k == "eps" and not v > 0:
            raise DeriveError("eps must be > 0", file=path, key="train.eps")
        if k != "eps" and not 0 <= v < 1:
            raise DeriveError(f"{k} must be in [0, 1)", file=path, key=f"train.{k}")
        hyper[k] = v
    got["hyper"] = hyper
    if "init" in train:
        got["init"] = _init(train["init"], parameters, path)
    if "output" in train:
        out = train["output"]
        if not isinstance(out, str) or out not in names:
            raise DeriveError(f"{out!r} is not a name of this spec", file=path, key="train.output")
        got["output"] = out
    for k in ("classes", "classes_zh"):
        if k in train:
            v = train[k]
            if not isinstance(v, list) or len(v) < 2 or not all(isinstance(s, str) and s.strip() and len(s) <= 40
                                                               for s in v):
                raise DeriveError("expected a list of at least two class names (for outputs 0, 1, …)",
                                  file=path, key=f"train.{k}")
            got[k] = tuple(s.strip() for s in v)
    if "sweep" in train:
        got["sweep"] = _sweep(train["sweep"], path)
    return TrainOptions(**got)


def _init(table, parameters: dict, path: str) -> Init:
    key = "train.init"
    dist, args = _distribution(table, path, key)
    seed = whole(table.get("seed", 0), path, f"{key}.seed", 0)
    which = table.get("parameters")
    if which is None:
        names = tuple(n for n, v in parameters.items() if v is None)
    elif which == "all":
        names = tuple(parameters)
    elif isinstance(which, list) and all(isinstance(n, str) for n in which):
        for n in which:
            if n not in parameters:
                raise DeriveError(f"{n!r} is not a parameter", file=path, key=f"{key}.parameters")
        names = tuple(n for n in parameters if n in which)
    else:
        raise DeriveError('expected "all" or a list of parameter names', file=path, key=f"{key}.parameters")
    return Init(dist, args, seed, names)


def _sweep(table, path: str) -> Sweep:
    key = "train.sweep"
    if not isinstance(table, dict):
        raise DeriveError("expected { learning_rates = [0.05, 0.005], steps = 50 }", file=path, key=key)
    for k in table:
        if k not in ("learning_rates", "steps", "claimed"):
            raise DeriveError("unknown key (allowed: learning_rates, steps, claimed)", file=path, key=f"{key}.{k}")
    rates = table.get("learning_rates")
    if not isinstance(rates, list) or not rates:
        raise DeriveError("expected a non-empty list of learning rates", file=path, key=f"{key}.learning_rates")
    lrs = tuple(_fraction(r, path, f"{key}.learning_rates[{i}]") for i, r in enumerate(rates))
    steps = whole(table.get("steps", 50), path, f"{key}.steps", 1, MAX_EPOCHS)
    claimed = table.get("claimed", [])
    if not isinstance(claimed, list) or len(claimed) not in (0, len(lrs)) or \
            not all(c in ("", "converging", "diverging") for c in claimed):
        raise DeriveError('expected one of "converging", "diverging" or "" per learning rate',
                          file=path, key=f"{key}.claimed")
    return Sweep(lrs, steps, tuple(claimed))


def drawn_parameters(init: Init, shapes: dict) -> dict:
    """name -> entries (Fractions) drawn by `init` for the parameters it names, in spec order."""
    import numpy as np
    rng = np.random.default_rng(init.seed)
    out = {}
    for name in init.names:
        shape = shapes[name]
        out[name] = tuple(draw(rng, init.distribution, init.args, 1 if shape == () else shape[0] * shape[1]))
    return out


def unvalued_shape(x, path: str, key: str) -> tuple | None:
    """The shape of a parameter given without values: "random" (a scalar) or { random = [r, c] }
    ({ random = [n] } a vector); None when `x` is a value."""
    if x == "random":
        return ()
    if isinstance(x, dict) and "random" in x:
        if set(x) != {"random"}:
            raise DeriveError("expected { random = [rows, cols] }", file=path, key=key)
        dims = x["random"]
        if not isinstance(dims, list) or not 1 <= len(dims) <= 2 or \
                not all(isinstance(d, int) and not isinstance(d, bool) and 1 <= d <= 100_000 for d in dims):
            raise DeriveError("expected { random = [rows, cols] } or { random = [n] } (whole numbers ≥ 1)",
                              file=path, key=key)
        return (dims[0], 1) if len(dims) == 1 else (dims[0], dims[1])
    return None


def read_predictions(table, data: dict, path: str) -> tuple:
    """[predict]: label -> { data name = value, … }; gives ((label, {name: entries}), …)."""
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise DeriveError("expected a table: [predict] Emily = { x1 = -7, x2 = -3 }", file=path, key="predict")
    out = []
    for label, inputs in table.items():
        key = f"predict.{label}"
        if not isinstance(inputs, dict) or not inputs:
            raise DeriveError("expected a table of data values, e.g. { x1 = -7, x2 = -3 }", file=path, key=key)
        if len(label) > 40:
            raise DeriveError("a label is at most 40 characters", file=path, key=key)
        vals = {}
        for name, v in inputs.items():
            shape = _data_shape(name, data, path, f"{key}.{name}")
            vals[name] = _entries(v, shape, path, f"{key}.{name}", f"data.{name}")
        out.append((label, vals))
    return tuple(out)

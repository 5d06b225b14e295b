"""Stage 1 — spec: load and validate a problem spec (TOML) into a frozen `Spec`.

Takes a path to a .toml file or the id of a built-in problem (derive/problems/<id>.toml);
gives a `Spec` whose numbers are exact `Fraction`s (a decimal in the file means exactly that
decimal: 0.15 is 3/20) and whose [forward] definitions are parsed trees (see `expr`).
Bad input raises `DeriveError` naming the file and the key.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path

from . import dataset as ds
from . import expr as ex
from . import texcheck
from .arrays import read_array
from .dataset import to_fraction
from .errors import DeriveError, LimitError
from .limits import MAX_STEPS  # noqa: F401  (spec.MAX_STEPS, as before)
from .escape import LATEX_NAME_CHARS, check_display_name
from .files import STDIO, is_file, lexists, read_input

MAX_SPEC_BYTES = 1_000_000
MAX_ENTRIES = 10_000_000    # scalar values (data + parameters) in one spec (the engine's memory
                            # estimate refuses a network that would not fit first)
MAX_FORWARD = 500           # [forward] definitions

TOP_KEYS = {"title", "source", "title_zh", "source_zh", "lang", "symbolic", "data", "parameters", "forward", "train", "latex",
            "dataset", "predict", "one_hot", "functions"}
MAX_FUNCTIONS = 50          # [functions] definitions
FUNCTION_PARAM = "x"        # the one argument of a function of [functions]
# what a function's body may not use: it is a function of one number, applied entry by entry
NOT_IN_BODY = {"@": "'@' (a matrix product)", "sum": "sum()", "mean": "mean()", "transpose": "transpose()",
               "softmax": "softmax()", "norm2": "norm2()", "frobenius": "frobenius()"}
TRAIN_KEYS = {"loss", "learning_rate", "update", "steps", *ds.TRAINING_KEYS}
LANGS = ("en", "zh")


@dataclass(frozen=True)
class Value:
    """An exact value: a scalar (`shape == ()`) or a matrix given as rows of Fractions."""
    shape: tuple
    entries: tuple          # scalar: (Fraction,); matrix: row-major Fractions
    flat_list: bool = False  # written as a flat list in the spec (a column vector)

    @property
    def is_scalar(self) -> bool:
        return self.shape == ()

    def rows(self) -> list[list[Fraction]]:
        r, c = self.shape
        return [list(self.entries[i * c:(i + 1) * c]) for i in range(r)]


@dataclass(frozen=True)
class Definition:
    name: str
    text: str
    tree: object            # what is computed: the calls of [functions] replaced by their bodies
    written: object = None  # the tree as written (f(W @ x)) when it calls a function of [functions]

    @property
    def shown(self):
        """The tree as written, for the documents."""
        return self.written if self.written is not None else self.tree


@dataclass(frozen=True)
class UserFunction:
    """A function of the spec's [functions] table: `f = "2*x"` is f(x) = 2x, applied entry by entry."""
    name: str
    param: str              # its argument, always FUNCTION_PARAM
    text: str               # the body as written
    body: object            # the body's tree as written (may call functions defined before it)
    tree: object            # the body with those calls inlined (only param, numbers, built-ins)


@dataclass(frozen=True)
class Spec:
    id: str                       # built-in id or file stem
    path: str                     # what error messages call the file
    title: str
    source: str
    lang: str
    data: dict                    # name -> Value
    parameters: dict              # name -> Value
    symbolic: tuple               # names without a value
    forward: tuple                # Definitions, in order
    loss: str
    learning_rate: Fraction | None  # None: the symbol eta (symbolic specs)
    update: tuple                 # parameter names updated by a step
    steps: int
    latex: dict = field(default_factory=dict)
    warnings: tuple = ()          # things worth saying that are not errors
    dataset: ds.Dataset | None = None             # [dataset]: the samples of a training run
    training: ds.TrainOptions = field(default_factory=ds.TrainOptions)   # [train]'s run options
    predictions: tuple = ()       # [predict]: (label, {data name: entries}) after training
    one_hot: tuple = ()           # data names declared one-hot: entries 0 or 1, each column sums to 1
    title_zh: str = ""            # the title and source in Chinese (optional; zh documents use them)
    source_zh: str = ""
    functions: dict = field(default_factory=dict)   # name -> UserFunction ([functions]), in order

    @property
    def is_symbolic(self) -> bool:
        return bool(self.symbolic)

    def title_in(self, lang: str) -> str:
        """The title for a document in `lang`: title_zh in Chinese documents when given."""
        return self.title_zh if lang == "zh" and self.title_zh else self.title

    def source_in(self, lang: str) -> str:
        return self.source_zh if lang == "zh" and self.source_zh else self.source

    def all_names(self) -> list[str]:
        return [*self.data, *self.parameters, *self.symbolic, *(d.name for d in self.forward)]


# ---------------------------------------------------------------- built-in problems
def problems_dir():
    return resources.files("derive") / "problems"


def builtin_ids() -> list[str]:
    return sorted(p.name[:-5] for p in problems_dir().iterdir()
                  if p.name.endswith(".toml") and not p.name.endswith(".claims.toml"))


def read_source(path_or_id: str) -> tuple[str, str, str]:
    """(id, display path, text) for a file path, a built-in id, or `-` (standard input)."""
    if path_or_id == STDIO:
        display, text = read_input(STDIO, limit=MAX_SPEC_BYTES, stdin=True)
        return "stdin", display, text
    p = Path(path_or_id)
    looks_like_path = p.suffix == ".toml" or is_file(p) or "/" in path_or_id or "\\" in path_or_id
    if not looks_like_path and path_or_id in builtin_ids():
        _display, text = read_input(Path(str(problems_dir() / f"{path_or_id}.toml")), limit=MAX_SPEC_BYTES)
        return path_or_id, f"{path_or_id} (built-in)", text
    if looks_like_path or lexists(p):
        display, text = read_input(p, limit=MAX_SPEC_BYTES)
        return p.stem, display, text
    raise DeriveError(f"no such file or built-in problem {path_or_id!r} "
                      f"(built-in: {', '.join(builtin_ids())})")


def parse_toml(text: str, path: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DeriveError(f"not valid TOML: {e}", file=path) from None


def load(path_or_id: str) -> Spec:
    sid, path, text = read_source(path_or_id)
    base = problems_dir() if path.endswith(" (built-in)") else Path(path_or_id).parent
    return spec_from_dict(parse_toml(text, path), sid=sid, path=path, base_dir=Path(str(base)))


# ---------------------------------------------------------------- values
def _describe(x) -> str:
    if isinstance(x, str):
        return f"the string {x!r}"[:80]
    if isinstance(x, bool):
        return f"the boolean {str(x).lower()}"
    if isinstance(x, dict):
        return "a table"
    if isinstance(x, list):
        return "a list"
    return type(x).__name__


def to_value(x, path: str, key: str, base_dir: Path | None = None) -> Value:
    if isinstance(x, dict):
        shape, entries, flat = read_array(x, base_dir, path, key)
        return Value(shape, entries, flat_list=flat)
    if isinstance(x, list):
        if not x:
            raise DeriveError("empty list", file=path, key=key)
        if all(isinstance(r, list) for r in x):
            ncols = len(x[0])
            if ncols == 0 or any(len(r) != ncols for r in x):
                raise DeriveError("matrix rows must be non-empty and of equal length", file=path, key=key)
            entries = tuple(to_fraction(v, path, f"{key}[{i}][{j}]")
                            for i, r in enumerate(x) for j, v in enumerate(r))
            return Value((len(x), ncols), entries)
        if any(isinstance(r, list) for r in x):
            raise DeriveError("mixes numbers and lists; a matrix is a list of rows", file=path, key=key)
        entries = tuple(to_fraction(v, path, f"{key}[{i}]") for i, v in enumerate(x))
        return Value((len(x), 1), entries, flat_list=True)
    return Value((), (to_fraction(x, path, key),))


# ---------------------------------------------------------------- validation
def _check_keys(table: dict, allowed: set, path: str, where: str):
    for k in table:
        if k not in allowed:
            prefix = f"{where}." if where else ""
            raise DeriveError(f"unknown key (allowed: {', '.join(sorted(allowed))})",
                              file=path, key=f"{prefix}{k}")


def _table(doc: dict, key: str, path: str) -> dict:
    t = doc.get(key, {})
    if not isinstance(t, dict):
        raise DeriveError(f"expected a table [{key}], got {_describe(t)}", file=path, key=key)
    return t


def _name_ok(name: str, path: str, key: str):
    if not ex._TOKEN.fullmatch(name) or not name[0].isalpha() and name[0] != "_" or not name.isascii() \
            or not name.replace("_", "a").isalnum():
        raise DeriveError(f"{name!r} is not a valid name (letters, digits and _, not starting with a digit)",
                          file=path, key=key)
    if name in ex.FUNCTIONS:
        raise DeriveError(f"{name!r} is a function name and cannot be a quantity", file=path, key=key)


def _cycle_through(start: str, used: str, forward_raw: dict, functions=()) -> list[str] | None:
    """A chain start -> used -> … -> start through the [forward] texts, if there is one."""
    def uses(n):
        text = forward_raw.get(n)
        if not isinstance(text, str):
            return set()
        try:
            return ex.names_in(ex.parse(text, functions))
        except DeriveError:
            return set()

    stack, seen = [(used, [start, used])], {used}
    while stack:
        n, trail = stack.pop()
        for m in sorted(uses(n)):
            if m == start:
                return trail + [start]
            if m in forward_raw and m not in seen:
                seen.add(m)
                stack.append((m, trail + [m]))
    return None


def spec_from_dict(doc: dict, *, sid: str, path: str, base_dir: Path | None = None) -> Spec:
    """A validated `Spec`; `base_dir` is where array files ({ file = … }) are looked up."""
    _check_keys(doc, TOP_KEYS, path, "")
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        raise DeriveError("required: a non-empty string title", file=path, key="title")
    source = doc.get("source", "")
    if not isinstance(source, str):
        raise DeriveError("expected a string", file=path, key="source")
    zh = {}
    for key in ("title_zh", "source_zh"):
        v = doc.get(key, "")
        if not isinstance(v, str) or (key in doc and not v.strip()):
            raise DeriveError("expected a non-empty string", file=path, key=key)
        zh[key] = v.strip()
    for key, text in (("title", title), ("source", source), ("title_zh", zh["title_zh"]),
                      ("source_zh", zh["source_zh"])):
        try:   # refused now, not after a TeX run: control characters, line breaks, 200 000 characters
            texcheck.check_text(text.strip(), one_line=True)
        except DeriveError as e:
            raise e.located(file=path, key=key) from None
    lang = doc.get("lang", "en")
    if lang not in LANGS:
        raise DeriveError(f"expected one of {', '.join(LANGS)}, got {lang!r}", file=path, key="lang")

    defined: dict[str, str] = {}  # name -> the key that defined it

    def define(name: str, key: str):
        _name_ok(name, path, key)
        if name in defined:
            raise DeriveError(f"{name!r} is already defined by {defined[name]}", file=path, key=key)
        defined[name] = key

    data = {}
    for name, v in _table(doc, "data", path).items():
        define(name, f"data.{name}")
        data[name] = to_value(v, path, f"data.{name}", base_dir)
    parameters = {}
    unvalued = {}       # parameters given without values: "random" or { random = [r, c] }
    for name, v in _table(doc, "parameters", path).items():
        define(name, f"parameters.{name}")
        shape = ds.unvalued_shape(v, path, f"parameters.{name}")
        if shape is None:
            parameters[name] = to_value(v, path, f"parameters.{name}", base_dir)
        else:
            unvalued[name] = shape
            parameters[name] = None
    train = _table(doc, "train", path)
    if unvalued:   # drawn now by train.init (default: normal, mean 0, std 1, seed 0)
        init = ds.read_options({"init": train.get("init", {})}, parameters, set(), path, 1).init
        missing = [n for n in unvalued if n not in init.names]
        if missing:
            raise DeriveError(f"{missing[0]!r} has no value and train.init.parameters does not draw it",
                              file=path, key=f"parameters.{missing[0]}")
        shapes = {n: unvalued[n] if n in unvalued else parameters[n].shape for n in init.names}
        drawn = ds.drawn_parameters(init, shapes)
        for n, shape in unvalued.items():
            parameters[n] = Value(shape, drawn[n], flat_list=shape != () and len(
                _table(doc, "parameters", path)[n]["random"]) == 1)
    n_entries = sum(len(v.entries) for v in (*data.values(), *parameters.values()))
    if n_entries > MAX_ENTRIES:
        raise LimitError(f"{n_entries} values in [data] and [parameters]; the limit is {MAX_ENTRIES}", file=path)

    symbolic_raw = doc.get("symbolic", [])
    if not isinstance(symbolic_raw, list) or not all(isinstance(s, str) for s in symbolic_raw):
        raise DeriveError("expected a list of names", file=path, key="symbolic")
    for name in symbolic_raw:
        define(name, "symbolic")

    functions = _functions(_table(doc, "functions", path), defined, path)

    forward_raw = _table(doc, "forward", path)
    if not forward_raw:
        raise DeriveError("required: at least one definition in [forward]", file=path, key="forward")
    if len(forward_raw) > MAX_FORWARD:
        raise LimitError(f"more than {MAX_FORWARD} definitions", file=path, key="forward")
    forward = []
    for name, text in forward_raw.items():
        key = f"forward.{name}"
        _name_ok(name, path, key)
        if name in functions:
            raise DeriveError(f"{name!r} is already a function of [functions]", file=path, key=key)
        if not isinstance(text, str):
            raise DeriveError(f"expected an expression as a string, got {_describe(text)}", file=path, key=key)
        try:
            written = ex.parse(text, functions)
        except DeriveError as e:
            raise e.located(file=path, key=key) from None
        tree = ex.inline(written, functions)
        for used in sorted(ex.names_in(tree)):
            if used == name:
                raise DeriveError(f"{name!r} is defined in terms of itself (a cycle)", file=path, key=key)
            if used not in defined:
                if used in forward_raw:
                    cycle = _cycle_through(name, used, forward_raw, functions)
                    why = (f"is part of a cycle: {' -> '.join(cycle)}" if cycle
                           else "is used before its definition (definitions are read in order)")
                else:
                    why = "is not defined"
                raise DeriveError(f"{used!r} {why}", file=path, key=key)
        define(name, key)
        forward.append(Definition(name, text, tree, written if tree is not written else None))

    _check_keys(train, TRAIN_KEYS, path, "train")
    loss = train.get("loss", forward[-1].name)
    if not isinstance(loss, str) or loss not in {d.name for d in forward}:
        raise DeriveError(f"{loss!r} is not a name defined in [forward]", file=path, key="train.loss")
    update_raw = train.get("update")
    if update_raw is None:
        update = tuple(parameters)
    else:
        if not isinstance(update_raw, list) or not all(isinstance(u, str) for u in update_raw):
            raise DeriveError("expected a list of parameter names", file=path, key="train.update")
        for u in update_raw:
            if u not in parameters and u not in symbolic_raw:
                raise DeriveError(f"{u!r} is not a parameter", file=path, key="train.update")
        if len(set(update_raw)) != len(update_raw):
            raise DeriveError("lists a parameter twice", file=path, key="train.update")
        update = tuple(update_raw)

    lr_raw = train.get("learning_rate")
    if lr_raw is None:
        learning_rate = None if symbolic_raw else Fraction(1, 2)
    else:
        learning_rate = to_fraction(lr_raw, path, "train.learning_rate")
    steps = train.get("steps", 1)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise DeriveError("expected a whole number ≥ 0", file=path, key="train.steps")
    if steps > MAX_STEPS:
        raise LimitError(f"steps is limited to {MAX_STEPS}", file=path, key="train.steps")

    names = set(defined)
    training = ds.read_options(train, parameters, names, path, steps)
    dataset = ds.read_dataset(doc.get("dataset"), data, path, base_dir)
    predictions = ds.read_predictions(doc.get("predict"), data, path)

    warnings = []
    if learning_rate is not None and learning_rate < 0:
        warnings.append(f"{path}: train.learning_rate: negative ({learning_rate}); "
                        "each step moves uphill, not downhill")

    latex = {}
    for name, disp in _table(doc, "latex", path).items():
        key = f"latex.{name}"
        if name not in defined:
            raise DeriveError(f"{name!r} is not a name of this spec", file=path, key=key)
        if not isinstance(disp, str) or not disp.strip():
            raise DeriveError("expected a non-empty string", file=path, key=key)
        try:
            check_display_name(disp)
            texcheck.check_text(disp, one_line=True, limit=LATEX_NAME_CHARS)
            texcheck.check_display_math(disp)
        except DeriveError as e:
            raise e.located(file=path, key=key) from None
        latex[name] = disp

    one_hot = _one_hot(doc.get("one_hot", []), data, path)

    return Spec(
        id=sid, path=path, title=title.strip(), source=source, lang=lang,
        data=data, parameters=parameters,
        symbolic=tuple(symbolic_raw), forward=tuple(forward), loss=loss,
        learning_rate=learning_rate, update=update, steps=steps, latex=latex,
        warnings=tuple(warnings), dataset=dataset, training=training, predictions=predictions,
        one_hot=one_hot, title_zh=zh["title_zh"], source_zh=zh["source_zh"], functions=functions,
    )


def _functions(table: dict, defined: dict, path: str) -> dict:
    """[functions]: name -> UserFunction.  `f = "2*x"` defines f(x) = 2x: a body in the expression
    language of one argument, always named x, which may use numbers, the elementwise built-in
    functions and the functions defined before it in the table (so no recursion)."""
    if len(table) > MAX_FUNCTIONS:
        raise LimitError(f"more than {MAX_FUNCTIONS} functions", file=path, key="functions")
    out: dict = {}
    for name, text in table.items():
        key = f"functions.{name}"
        if not ex._TOKEN.fullmatch(name) or not (name[0].isalpha() or name[0] == "_") or not name.isascii() \
                or not name.replace("_", "a").isalnum():
            raise DeriveError(f"{name!r} is not a valid function name (letters, digits and _, not starting "
                              "with a digit)", file=path, key=key)
        if name in ex.FUNCTIONS:
            raise DeriveError(f"{name!r} is a built-in function; give yours another name", file=path, key=key)
        if name in defined:
            raise DeriveError(f"{name!r} is already defined by {defined[name]}; a function needs a name "
                              "of its own", file=path, key=key)
        if name == FUNCTION_PARAM:
            raise DeriveError(f"{name!r} is the name of every function's argument; give the function "
                              "another name", file=path, key=key)
        if not isinstance(text, str):
            raise DeriveError(f"expected the function's body as a string in its argument {FUNCTION_PARAM}, "
                              f"such as \"2*{FUNCTION_PARAM}\"; got {_describe(text)}", file=path, key=key)
        if not text.strip():
            raise DeriveError(f"empty body; write the function of {FUNCTION_PARAM}, such as \"2*{FUNCTION_PARAM}\"",
                              file=path, key=key)
        later = [n for n in table if n not in out]
        try:
            body = ex.parse(text, (*out, *later))
        except DeriveError as e:
            raise e.located(file=path, key=key) from None
        for called in ex.calls(body, later):
            why = "calls itself (a function may not be recursive)" if called == name else \
                f"calls {called!r}, which is defined after it: a function may call only the functions " \
                "above it in [functions] (no recursion)"
            raise DeriveError(why, file=path, key=key)
        names = ex.ordered_names(body)
        others = [n for n in names if n != FUNCTION_PARAM]
        if others:
            what = "a function of [functions]" if others[0] in table else \
                f"defined by {defined[others[0]]}" if others[0] in defined else "not defined"
            raise DeriveError(f"the body uses {others[0]!r} ({what}); a function's body may use only its "
                              f"argument {FUNCTION_PARAM}, numbers and functions", file=path, key=key)
        if FUNCTION_PARAM not in names:
            raise DeriveError(f"the body does not use the argument {FUNCTION_PARAM}: a function of [functions] "
                              f"is a function of {FUNCTION_PARAM}, such as \"2*{FUNCTION_PARAM}\"", file=path, key=key)
        stack = [body]
        while stack:
            n = stack.pop()
            op = n.op if isinstance(n, ex.Bin) else n.fn if isinstance(n, ex.Call) else None
            if op in NOT_IN_BODY or isinstance(n, ex.Index):
                what = NOT_IN_BODY[op] if op in NOT_IN_BODY else "an index [i]"
                raise DeriveError(f"the body uses {what}; a function of [functions] takes one number and is "
                                  "applied to a vector or matrix entry by entry", file=path, key=key)
            stack.extend(ex.children(n))
        out[name] = UserFunction(name, FUNCTION_PARAM, text, body, ex.inline(body, out))
    return out


def _one_hot(raw, data: dict, path: str) -> tuple:
    """one_hot = ["t", …]: data vectors (or matrices, one one-hot column per sample) whose entries
    are 0 or 1 with exactly one 1 in each column; the checker may then use Σt = 1 and t_i² = t_i."""
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise DeriveError("expected a list of data names", file=path, key="one_hot")
    for n in raw:
        if n not in data:
            raise DeriveError(f"{n!r} is not a name in [data] (only data can be declared one-hot)",
                              file=path, key="one_hot")
        v = data[n]
        if v.is_scalar or raw.count(n) > 1:
            why = "is a scalar; a one-hot value is a vector" if v.is_scalar else "is listed twice"
            raise DeriveError(f"{n!r} {why}", file=path, key="one_hot")
        bad = [q for q in v.entries if q not in (0, 1)]
        if bad:
            raise DeriveError(f"{n!r} has the entry {bad[0]}; a one-hot value has entries 0 or 1",
                              file=path, key="one_hot")
        r, c = v.shape
        cols = [[v.entries[i * c + j] for i in range(r)] for j in range(c)] if r > 1 else [list(v.entries)]
        for j, col in enumerate(cols, 1):
            if sum(col) != 1:
                where = f" column {j}" if len(cols) > 1 else ""
                raise DeriveError(f"{n!r}{where} sums to {sum(col)}; a one-hot value has exactly one 1",
                                  file=path, key="one_hot")
    return tuple(raw)

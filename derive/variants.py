"""Exercise banks: N variants of one spec, drawn reproducibly from a seed (`derive exercise`).

A variant is the spec with new numbers (`dataclasses.replace` on its data and parameters): every
varied entry is drawn, with `random.Random(seed)`, from a grid of short decimals of the same sign
and order of magnitude as the original.  For x ≠ 0 with e = ⌊log₁₀|x|⌋ the grid is
k·5·10^(e−1), k = 1 … 19, with x's sign: 0.25 → one of 0.05, 0.10, …, 0.95; 0.02 → 0.005 … 0.095;
120 → 50, 100, …, 950.  (Decision: one grid rule for every magnitude, 19 values, so a drawn value
has at most two significant digits.)  A 0 stays 0 unless `--vary` names it; then it is drawn from
0.05 … 0.95.  By default every data value and parameter is varied, except one-hot data (whose
entries are 0 and 1 by definition); the learning rate is kept.

A draw is rejected, and drawn again, when it is degenerate: a saturated σ or tanh unit (σ′ < 10⁻³,
1 − tanh² < 10⁻³), a dead ReLU (an output entry 0), a vanishing gradient (|∂L/∂p| < 10⁻⁸ for an
entry of an updated parameter), a loss already near 0 (< 10⁻⁶), or the same answers as an earlier
variant at the answer digits.  `Bank.rejected` counts the rejections by reason.  Same seed, same
variants, same bytes.

The variants share what does not depend on their numbers (`bankruns.Frame`, `Bank.frame`): the base
problem's engine program and per-scalar graph, its catalogued mistakes, the sheet's rows and its context
(`variant_context`: only the id and the given numbers are the variant's); each variant's numbers are
the engine's (its certified runs, replayed from the frame's tapes for a large bank).

Variants are written as spec files (`spec_toml`, read back by `derive.spec` into the same Spec) and
claims templates (`claims_template`: every asked quantity with an empty value, for `derive check`
once a student fills it in); `render_bank` renders the sheet or key of all variants in one document
with exercise_context's contexts and templates.  Each variant's part of those (`variant_part`,
`variant_files`) is kept in the frame, so that worker processes can work them out
(`moodle.prepare`) and the files read them.  `Drawing` is `draw` step by step, its draws known
ahead, so that worker processes can judge them too (`moodle.draw_prepared`).
"""
from __future__ import annotations

import functools
import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from fractions import Fraction

from . import engine
from . import exercise_context as xc
from .bankruns import Frame
from . import templating as tpl
from .errors import DeriveError
from .rounding import exact_decimal
from .solve import Problem
from .spec import Spec, Value

MAX_VARIANTS = 500
MAX_SEED = 2 ** 63 - 1
MAX_VALUES = 200                 # numbers of a spec that can be varied (a bank is for small networks)
MIN_SLOPE = 1e-3                 # σ′ or tanh′ below this: a saturated unit
MIN_GRADIENT = 1e-8
MIN_LOSS = 1e-6
CHECK_DIGITS = 10                # digits of the engine run that judges a draw
GRID = tuple(range(1, 20))       # k of k·5·10^(e−1)
SATURATING = ("sigmoid", "tanh")


@dataclass(frozen=True)
class Bank:
    base: Problem
    seed: int
    digits: int
    varied: tuple                # the names varied
    variants: tuple              # Problems, in order
    draws: int                   # draws made in all
    rejected: tuple              # ((reason, count), …), sorted by reason
    frame: Frame | None = field(default=None, compare=False, repr=False)   # what the variants share

    @property
    def n_rejected(self) -> int:
        return sum(c for _r, c in self.rejected)


# ---------------------------------------------------------------- the grid
@functools.lru_cache(maxsize=1024)
def grid(x: Fraction) -> tuple:
    """The values a drawn entry can take in place of x (see the module's docstring)."""
    if x == 0:
        x = Fraction(1, 2)
    sign = 1 if x > 0 else -1
    a = abs(x)
    e = len(str(a.numerator // a.denominator)) - 1 if a >= 1 else -_leading_zeros(a) - 1
    unit = Fraction(5) * Fraction(10) ** (e - 1)
    return tuple(sign * k * unit for k in GRID)


def _leading_zeros(a: Fraction) -> int:
    """For 0 < a < 1: the number of zeros after the decimal point before the first digit."""
    n = 0
    while a * 10 < 1:
        a *= 10
        n += 1
    return n


def default_names(spec: Spec) -> tuple:
    return tuple(n for n in (*spec.data, *spec.parameters) if n not in spec.one_hot)


def _check_spec(spec: Spec) -> None:
    if spec.is_symbolic:
        raise DeriveError("a symbolic spec has no numbers to vary", file=spec.path)
    if spec.dataset is not None or spec.predictions:
        raise DeriveError("variants of a spec with a [dataset] or [predict] are not supported", file=spec.path)
    n = sum(len(v.entries) for v in (*spec.data.values(), *spec.parameters.values()))
    if n > MAX_VALUES:
        raise DeriveError(f"{n} numbers in [data] and [parameters]; variants are drawn for at most {MAX_VALUES}",
                          file=spec.path)
    if spec.learning_rate is not None and _toml_number(spec.learning_rate) is None:
        raise DeriveError("the learning rate is not a decimal, so a variant's spec file cannot state it",
                          file=spec.path, key="train.learning_rate")


def resolve_names(spec: Spec, vary: str | None) -> tuple:
    """The names to vary: all of `default_names`, or the comma-separated `vary` (each a data or
    parameter name; DeriveError naming the first unknown one)."""
    if vary is None:
        return default_names(spec)
    names = [v.strip() for v in vary.split(",") if v.strip()]
    if not names:
        raise DeriveError("--vary: give at least one name")
    for n in names:
        if n not in spec.data and n not in spec.parameters:
            raise DeriveError(f"--vary: {n!r} is not a data value or parameter of {spec.id} "
                              f"(these are: {', '.join((*spec.data, *spec.parameters))})")
        if n in spec.one_hot:
            raise DeriveError(f"--vary: {n!r} is one-hot data (entries 0 and 1); it cannot be varied")
    return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------- drawing
def _draw_value(rng: random.Random, v: Value, explicit: bool) -> Value:
    out = []
    for q in v.entries:
        if q == 0 and not explicit:
            out.append(q)
        else:
            out.append(rng.choice(grid(q)))
    return Value(v.shape, tuple(out), v.flat_list)


def _drawn_values(spec: Spec, rng: random.Random, names: tuple, explicit: bool) -> tuple:
    """(data, parameters) of one draw: one `rng` choice per varied entry (a kept 0: none), so every
    draw takes as many from `rng` whatever was accepted before it."""
    data = {k: (_draw_value(rng, v, explicit) if k in names else v) for k, v in spec.data.items()}
    params = {k: (_draw_value(rng, v, explicit) if k in names else v) for k, v in spec.parameters.items()}
    return data, params


def numbered(spec: Spec, values: tuple, n: int) -> Spec:
    """The spec of variant n (1-based) with the drawn (data, parameters) `values`."""
    vid = variant_id(spec.id, n)
    return replace(spec, id=vid, path=f"{vid}.toml", data=values[0], parameters=values[1], warnings=())


def variant_id(base_id: str, n: int) -> str:
    return f"{base_id}-v{n:02d}" if n < 100 else f"{base_id}-v{n}"


def answer_texts(problem: Problem, digits: int, groups: tuple | None = None) -> tuple:
    """Every number a key gives, as texts at `digits` (what 'the same answers' compares); `groups`:
    the sheet's rows, when known (every variant's are the base's)."""
    if groups is None:
        groups = xc.SheetBuilder(problem, lang="en", digits=digits, only=None).groups()
    return tuple(a.text for g in xc.answers(problem, groups, digits) for a in g.rows)


def degenerate(problem: Problem, *, full: bool = False) -> str | None:
    """Why a variant is degenerate (a reason tag), or None.  The numbers judged are certified at
    CHECK_DIGITS: only those the checks read (the activations' outputs, the updated parameters'
    gradients, the loss at the start), or (`full`) all of `Problem.numbers`, as first written."""
    spec = problem.spec
    steps = 1 if spec.update else 0
    units = [(d.name, fn) for d in spec.forward if (fn := getattr(d.tree, "fn", None)) in ("sigmoid", "tanh", "relu")]
    if full:
        nums = problem.numbers(CHECK_DIGITS, steps)
        forward, gradients, loss = nums.forward, nums.gradients, nums.history[0]
    else:
        req = [engine.Request("value", n, 0) for n, _fn in units]
        req += [engine.Request("adjoint", p, 0) for p in spec.update]
        req.append(engine.Request("value", spec.loss, 0))
        got = engine.solve_numbers(problem.program, CHECK_DIGITS, steps, req, problem.runs)
        forward = {n: got[engine.Request("value", n, 0)] for n, _fn in units}
        gradients = {p: got[engine.Request("adjoint", p, 0)] for p in spec.update}
        loss = got[engine.Request("value", spec.loss, 0)][0]
    for name, fn in units:
        for y in forward[name]:
            v = y.approx
            if fn == "sigmoid" and v * (1 - v) < MIN_SLOPE:
                return "saturated unit"
            if fn == "tanh" and 1 - v * v < MIN_SLOPE:
                return "saturated unit"
            if fn == "relu" and (y.exact == 0 if y.exact is not None else v == 0):
                return "dead ReLU"
    for p in spec.update:
        if any(abs(g.approx) < MIN_GRADIENT for g in gradients[p]):
            return "vanishing gradient"
    if abs(loss.approx) < MIN_LOSS:
        return "loss near 0"
    return None


def draw(problem: Problem, n: int, seed: int, *, vary: str | None = None,
         digits: int = xc.DEFAULT_ANSWER_DIGITS) -> Bank:
    """N non-degenerate variants of `problem`, reproducibly from `seed`."""
    d = Drawing(problem, n, seed, vary=vary, digits=digits)
    while not d.done:
        d.step()
    return d.bank()


class Drawing:
    """Drawing a bank (`draw`): the draws in order — each from the same `random.Random(seed)`, as
    many choices per draw whatever was accepted, so a draw's numbers can be known ahead (`ahead`)
    and judged elsewhere (`judge`: a worker process, `moodle.draw_prepared`) —, the variants
    accepted in order (`accept`), the rejections by reason."""

    def __init__(self, problem: Problem, n: int, seed: int, *, vary: str | None = None,
                 digits: int = xc.DEFAULT_ANSWER_DIGITS):
        spec = problem.spec
        if not 1 <= n <= MAX_VARIANTS:
            raise DeriveError(f"--variants must be between 1 and {MAX_VARIANTS}, got {n}")
        if not 0 <= seed <= MAX_SEED:
            raise DeriveError(f"--seed must be a whole number from 0 to {MAX_SEED}, got {seed}")
        _check_spec(spec)
        self.problem, self.n, self.seed, self.digits, self.vary = problem, n, seed, digits, vary
        self.names = resolve_names(spec, vary)
        self.rng = random.Random(seed)
        self.frame = Frame(problem, n)
        self.rows = xc.SheetBuilder(problem, lang="en", digits=digits, only=None).groups()
        self.variants: list = []
        self.seen: set = set()
        self.reasons: Counter = Counter()
        self.draws, self.limit = 0, 20 * n + 100
        self._ahead: list = []           # the values of the next draws, made ahead

    @property
    def done(self) -> bool:
        return len(self.variants) >= self.n

    def ahead(self, k: int) -> list:
        """The (data, parameters) of the next k draws (not yet made): the draws `step` makes next."""
        spec = self.problem.spec
        while len(self._ahead) < k:
            self._ahead.append(_drawn_values(spec, self.rng, self.names, self.vary is not None))
        return self._ahead[:k]

    def next_values(self) -> tuple:
        """The (data, parameters) of the next draw, counted (the limit: DeriveError)."""
        if self.draws >= self.limit:
            own = degenerate(self.problem)
            note = f"; the spec's own numbers give a {own} too" if own else ""
            raise DeriveError(f"only {len(self.variants)} of {self.n} variants are not degenerate after "
                              f"{self.draws} draws ({_reason_text(self.reasons)}{note}); vary other names or "
                              f"ask for fewer")
        self.draws += 1
        self.ahead(1)
        return self._ahead.pop(0)

    def judge(self, vspec: Spec) -> tuple:
        """(variant, why it is degenerate or None, its answer texts or None) of a drawn spec."""
        try:
            vp = self.frame.problem(vspec, (CHECK_DIGITS, self.digits))
            why = degenerate(vp)
            texts = answer_texts(vp, self.digits, self.rows) if why is None else None
        except (DeriveError, ZeroDivisionError, OverflowError, ValueError):
            vp, why, texts = None, "not computable", None
        return vp, why, texts

    def accept(self, vp, why: str | None, texts) -> bool:
        """Take a judged draw as the next variant (True), or count why it is rejected."""
        if why is None and texts in self.seen:
            why = "same answers as an earlier variant"
        if why is not None:
            self.reasons[why] += 1
            return False
        self.seen.add(texts)
        self.variants.append(vp)
        return True

    def step(self) -> bool:
        """Make the next draw and judge it here."""
        values = self.next_values()
        return self.accept(*self.judge(numbered(self.problem.spec, values, len(self.variants) + 1)))

    def bank(self) -> Bank:
        return Bank(self.problem, self.seed, self.digits, self.names, tuple(self.variants), self.draws,
                    tuple(sorted(self.reasons.items())), self.frame)


def _reason_text(reasons: Counter) -> str:
    return ", ".join(f"{r}: {c}" for r, c in sorted(reasons.items())) or "none rejected"


def rejection_line(bank: Bank) -> str:
    """One line for the user: how many draws were rejected, and why."""
    n = len(bank.variants)
    if not bank.n_rejected:
        return f"{n} variants drawn from seed {bank.seed}, none rejected"
    return (f"{n} variants drawn from seed {bank.seed}; {bank.n_rejected} draws rejected as degenerate "
            f"({_reason_text(Counter(dict(bank.rejected)))})")


# ---------------------------------------------------------------- files
def _toml_number(q: Fraction) -> str | None:
    """q as a TOML number that `derive.spec` reads back as exactly q, or None."""
    if q.denominator == 1:
        return str(q.numerator)
    if exact_decimal(q) is None:
        return None
    text = repr(float(q))
    return text if Fraction(text) == q else None


def _toml_value(v: Value, where: str) -> str:
    def num(q):
        t = _toml_number(q)
        if t is None:
            raise DeriveError(f"{q} cannot be written as a TOML number", key=where)
        return t
    if v.shape == ():
        return num(v.entries[0])
    if v.flat_list:
        return "[" + ", ".join(num(q) for q in v.entries) + "]"
    return "[" + ", ".join("[" + ", ".join(num(q) for q in row) + "]" for row in v.rows()) + "]"


def _s(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)      # a JSON string is a TOML basic string


def spec_toml(spec: Spec, source: str) -> str:
    """A variant's spec file: the spec's model with its numbers (read back into the same Spec)."""
    out = [f"# {source}", f"title = {_s(spec.title)}"]
    if spec.title_zh:
        out.append(f"title_zh = {_s(spec.title_zh)}")
    out += [f"source = {_s(source)}", f"lang = {_s(spec.lang)}"]
    if spec.one_hot:
        out.append("one_hot = [" + ", ".join(_s(n) for n in spec.one_hot) + "]")
    for table, values in (("data", spec.data), ("parameters", spec.parameters)):
        if values:
            out += ["", f"[{table}]"] + [f"{k} = {_toml_value(v, f'{table}.{k}')}" for k, v in values.items()]
    if spec.functions:
        out += ["", "[functions]"] + [f"{f.name} = {_s(f.text)}" for f in spec.functions.values()]
    out += ["", "[forward]"] + [f"{d.name} = {_s(d.text)}" for d in spec.forward]
    out += ["", "[train]", f"loss = {_s(spec.loss)}"]
    if spec.learning_rate is not None:
        out.append(f"learning_rate = {_toml_number(spec.learning_rate)}")
    out += ["update = [" + ", ".join(_s(u) for u in spec.update) + "]", f"steps = {spec.steps}"]
    if spec.latex:
        out += ["", "[latex]"] + [f"{k} = {_s(v)}" for k, v in spec.latex.items()]
    return "\n".join(out) + "\n"


def quantity_text(problem: Problem, query: tuple) -> tuple:
    """(the quantity as derive check and derive eval read it, flat index) of an answer row."""
    kind, name, flat = query
    loss = problem.spec.loss
    text = {"forward": name, "loss": loss, "gradient": f"d{loss}/d{name}", "update": f"{name}@1",
            "after": f"{loss}@1"}[kind]
    return text, flat


def asked(problem: Problem, digits: int) -> list:
    """[(quantity text, shape, flat index, Answer)] of every row of the sheet, in order."""
    groups = xc.SheetBuilder(problem, lang="en", digits=digits, only=None).groups()
    return [(*quantity_text(problem, a.query), a) for g in groups for a in g.rows]


def claims_template(problem: Problem, spec_file: str, digits: int) -> str:
    """A claims file for `derive check`: every quantity the sheet asks for, with an empty value
    (a matrix: a list of empty strings per entry) to fill in."""
    shapes = problem.program.shapes
    out = [f"# Fill in each value (to {digits} significant digits), then: derive check THIS_FILE",
           f"spec = {_s(spec_file)}"]
    done = set()
    for text, _flat, _a in asked(problem, digits):
        if text in done:
            continue
        done.add(text)
        shape = shapes[text.split("@")[0]] if not text.startswith("d") or "/" not in text else \
            shapes[text.split("/d", 1)[1]]
        if shape == ():
            value = '""'
        elif shape[1] == 1:
            value = "[" + ", ".join('""' for _ in range(shape[0])) + "]"
        else:
            value = "[" + ", ".join("[" + ", ".join('""' for _ in range(shape[1])) + "]"
                                    for _ in range(shape[0])) + "]"
        out += ["", "[[claim]]", f"of = {_s(text)}", f"value = {value}"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- the sheet and key of a bank
def variant_context(bank: Bank, vp: Problem, *, lang: str, strings, key: tuple = ()) -> dict:
    """`exercise_context.sheet_context` of a variant: the base problem's (its model, diagram and
    rows are every variant's; built once per bank and `key`, the strings' language and source)
    with the variant's id and given numbers."""
    frame = _frame(bank)
    base = frame.remember(("sheet", lang, bank.digits, *key),
                          lambda: xc.sheet_context(bank.base, lang=lang, digits=bank.digits, strings=strings))
    given = frame.remember(("given", vp.spec.id, lang),
                           lambda: xc.SheetBuilder(vp, lang=lang, digits=bank.digits, only=None).given())
    return dict(base, id=vp.spec.id, given=given)


def _frame(bank: Bank) -> Frame:
    return bank.frame or Frame(bank.base)


def document_strings(bank: Bank, fmt: str, lang: str, template_dir: str | None = None) -> tuple:
    """(env, s, x, plain) of exercise_context's templates of `fmt` in `lang`, made once per bank."""
    def make():
        env = xc.environment(fmt, template_dir)
        return (env, *xc.exercise_strings(env, fmt, lang))
    return _frame(bank).remember(("strings", fmt, lang, template_dir), make)


def variant_part(bank: Bank, i: int, *, fmt: str, lang: str, mode: str, template_dir: str | None = None) -> str:
    """Variant i's (0-based) sheet (`mode` 'exercise') or key ('key') in `render_bank`'s document,
    kept in the bank's frame (worked out in a worker process for a large bank: `moodle.prepare`)."""
    def make():
        env, s, x, plain = document_strings(bank, fmt, lang, template_dir)
        vp = bank.variants[i]
        ctx = variant_context(bank, vp, lang=lang, strings=plain, key=(fmt, template_dir))
        if mode == "key":
            ctx = dict(ctx, key=True, groups=xc.answers(vp, ctx["groups"], bank.digits))
        ctx["title"] = plain("variant_title", title=xc.title(bank.base.spec, lang, plain), n=i + 1)
        ctx["id"] = vp.spec.id
        text = tpl.render(env, f"exercise.{fmt}.j2",
                          dict(ctx, s=s, x=x, note_texts=xc.note_texts(ctx["notes"], x, env, fmt)))
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
    return _frame(bank).remember(("part", fmt, lang, mode, template_dir, i), make)


def render_bank(bank: Bank, *, fmt: str, lang: str, mode: str, template_dir: str | None = None) -> str:
    """One document with every variant's sheet (`mode` 'exercise') or key ('key'), numbered, in
    exercise_context's template of `fmt`."""
    parts = [variant_part(bank, i, fmt=fmt, lang=lang, mode=mode, template_dir=template_dir)
             for i in range(len(bank.variants))]
    if fmt == "md":
        return "\n---\n\n".join(parts)
    head, _, _ = parts[0].partition("\\begin{document}\n")
    bodies = [p.partition("\\begin{document}\n")[2].rpartition("\\end{document}")[0] for p in parts]
    return (head + "\\begin{document}\n" + "\\clearpage\n\\setcounter{section}{0}\n".join(bodies)
            + "\\end{document}\n")


def variant_files(bank: Bank, i: int, command: str = "") -> tuple:
    """(spec file, claims template) of variant i (0-based), as UTF-8 bytes, kept in the bank's frame."""
    def make():
        vp = bank.variants[i]
        vid = vp.spec.id
        source = f"variant {i + 1} of {command or bank.base.spec.id} (derive exercise)"
        return (spec_toml(vp.spec, source).encode("utf-8"),
                claims_template(vp, f"{vid}.toml", bank.digits).encode("utf-8"))
    return _frame(bank).remember(("files", command, i), make)


__all__ = ["Bank", "Drawing", "bank_files", "moodle_name", "MAX_VARIANTS", "answer_texts", "numbered", "asked", "claims_template", "default_names", "degenerate",
           "document_strings", "draw", "grid", "quantity_text", "rejection_line", "render_bank", "resolve_names", "spec_toml",
           "variant_files", "variant_id", "variant_part"]


def bank_files(bank: Bank, *, fmt: str = "md", lang: str, command: str = "",
               template_dir: str | None = None) -> dict:
    """{relative name: bytes} of a bank: ID.variants.LANG.FMT (the sheet), ID.variants.key.LANG.FMT
    (the key), VARIANT.toml and VARIANT.claims.toml per variant (fmt 'moodle': the sheet and key in
    Markdown; the quiz itself is `moodle.quiz`, named by `moodle_name`)."""
    pid = bank.base.spec.id
    doc = "md" if fmt == "moodle" else fmt
    files = {}
    for mode, name in (("exercise", f"{pid}.variants.{lang}.{doc}"), ("key", f"{pid}.variants.key.{lang}.{doc}")):
        files[name] = render_bank(bank, fmt=doc, lang=lang, mode=mode, template_dir=template_dir).encode("utf-8")
    for i, vp in enumerate(bank.variants):
        vid = vp.spec.id
        files[f"{vid}.toml"], files[f"{vid}.claims.toml"] = variant_files(bank, i, command)
    return files


def moodle_name(bank: Bank, lang: str) -> str:
    return f"{bank.base.spec.id}.moodle.{lang}.xml"

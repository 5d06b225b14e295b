"""The training section of a handout: its context (strings and numbers, no prose) and its plots.

Takes a `Spec`; gives a `TrainingSection` — the run (`train.train`: samples, epochs, mode, optimizer,
the loss table thinned to the first epochs and every 10^k-th, the curve as coordinates for pgfplots,
the final parameters and loss, the predictions and their classes, the first update of momentum or
Adam written out with numbers) and the sweep (`train.sweep_of`: one row and one curve per learning
rate, with its verdict) — or None for a spec that trains one step only.  A spec gets the section when
it has a [dataset], train.epochs, more than one step, or a train.sweep.  The Markdown handouts embed
the curves as SVG files written beside them (`training_files`, by `derive build`); the LaTeX handouts
draw them with pgfplots.  Prose comes from strings.<lang>.toml in the templates
(training.md.j2, training.tex.j2).  Runs are shared by the languages and formats of one build.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from . import dataset as ds
from . import plot
from . import printer as pr
from . import train
from .spec import Spec

MAX_POINTS = 300          # coordinates of a pgfplots curve (thinned evenly, the last kept)


@dataclass(frozen=True)
class Row:
    epoch: int
    loss: str               # LaTeX


@dataclass(frozen=True)
class Prediction:
    label: str              # user text (escaped by the template)
    inputs: str             # LaTeX: x_{1} = -7,\ x_{2} = -3
    value: str              # LaTeX
    cls: str | None         # the class name in the handout's language (user text)


@dataclass(frozen=True)
class Curve:
    label: str              # LaTeX (a learning rate) or ""
    coords: str             # pgfplots: (0,0.309) (1,0.292) …


@dataclass(frozen=True)
class SweepRow:
    eta: str
    verdict: str            # converging | diverging
    initial: str
    final: str
    steps: int              # epochs run (fewer when it diverged)
    diverged: int | None
    claimed: str            # the source document's verdict ("" when it says none)
    shown: str = ""         # the handout's word: converging | diverging | oscillating (shown_verdict)


@dataclass(frozen=True)
class TrainingSection:
    run: bool               # a training run is shown (else only the sweep)
    samples: int
    origin: str             # "inline", a file name, "generated (n = 100, seed = 0)"
    origin_args: tuple       # a generated dataset's (n, seed), for the prose of each language ()
    epochs: int
    mode: str
    batch_size: int | None
    shuffled: int | None
    optimizer: str
    hyper: tuple            # LaTeX: \beta = 0.9, …
    eta: str
    init: tuple | None      # (distribution, its two parameters (LaTeX), seed, number of parameters drawn)
    rows: tuple             # Row
    every: int              # the table's spacing after the first epochs
    curve: Curve | None
    log: bool
    svg: str                # the loss curve's file name (Markdown)
    final: tuple            # (LaTeX name, LaTeX value)
    final_loss: str
    first_loss: str
    diverged: int | None
    reason: str
    output: str             # LaTeX name of the predicted quantity
    predictions: tuple      # Prediction
    first_step: tuple       # LaTeX equations of the first update of one parameter (momentum, Adam)
    first_param: str
    certified: bool
    precision: str
    loss: str               # LaTeX name of the loss
    sweep: tuple            # SweepRow
    sweep_steps: int
    sweep_curves: tuple     # Curve
    sweep_log: bool
    sweep_svg: str
    sweep_ymax: str = ""            # the axis' top when a curve runs away (pgfplots number)
    sweep_claims: bool = False      # the source document states verdicts
    sweep_agrees: bool = True       # … and every one is what the runs show
    table_names: tuple = ()         # LaTeX names of the dataset's columns (a small dataset is listed)
    table_rows: tuple = ()          # one tuple of LaTeX values per sample
    drawn: tuple = ()               # a generated dataset's inputs: (LaTeX name, distribution, (a, b) LaTeX)
    drawn_rules: tuple = ()         # … and its labels computed from them: LaTeX "y_t = (Σx, Σx)ᵀ"
    line_styles: tuple = plot.PGF_LINE_STYLES   # one per curve of a plot of several (pgfplots)


TABLE_ROWS = 10           # a dataset of at most this many samples is listed in the handout


_CACHE: dict = {}


def shows_training(spec: Spec) -> bool:
    t = spec.training
    return not spec.is_symbolic and (spec.dataset is not None or t.epochs is not None or spec.steps > 1
                                     or t.sweep is not None)


def _runs(spec: Spec, digits: int):
    """(training or None, sweep runs), computed once per spec object and digits."""
    key = (id(spec), digits)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    t = spec.training
    tr = None
    if spec.dataset is not None or t.epochs is not None or spec.steps > 1:
        tr = train.train(train.prepare(spec), digits)
    runs = train.sweep_of(spec, digits)
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[key] = (spec, (tr, runs))
    return tr, runs


def _coords(history: tuple) -> str:
    n = len(history)
    idx = list(range(n)) if n <= MAX_POINTS else \
        sorted({round(i * (n - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)})
    return " ".join(f"({i},{_g(history[i])})" for i in idx if math.isfinite(history[i]))


def _g(x: float) -> str:
    return f"{x:.6g}"


def _names(spec: Spec) -> dict:
    out = {n: pr.default_display(n) for n in spec.all_names()}
    out.update(spec.latex)
    return out


def _value(shape: tuple, numbers) -> str:
    if shape == ():
        return pr.number(numbers[0].text)
    r, c = shape
    return pr.pmatrix([[pr.number(numbers[i * c + j].text) for j in range(c)] for i in range(r)])


def _exact_value(shape: tuple, entries) -> str:
    if shape == ():
        return pr.fraction(entries[0])
    r, c = shape
    return pr.pmatrix([[pr.fraction(entries[i * c + j]) for j in range(c)] for i in range(r)])


def training_context(spec: Spec, lang: str, digits: int = 10) -> TrainingSection | None:
    """The training section of `spec`'s handout, or None when it has none."""
    if not shows_training(spec):
        return None
    tr, runs = _runs(spec, digits)
    names = _names(spec)
    opts = spec.training
    section = dict(run=tr is not None, sweep=(), sweep_steps=0, sweep_curves=(), sweep_log=False,
                   sweep_svg=f"{spec.id}.sweep.svg", loss=names[spec.loss])
    if tr is not None:
        plan = tr.plan
        shapes = plan.program.shapes
        shown = train.thinned_epochs(len(tr.history) - 1)
        every = shown[-1] - shown[-2] if len(shown) > 2 else 1
        preds = []
        for label, inputs, numbers in tr.predictions:
            ins = ",\\ ".join(f"{names[n]} = {_exact_value(shapes[n], e)}" for n, e in inputs.items())
            preds.append(Prediction(label, ins, _value(shapes[plan.output], numbers),
                                    train.class_of(spec, numbers, lang)))
        first_param, first = _first_step(tr, names)
        init = None
        if opts.init is not None:
            # the distribution's two parameters in DISTRIBUTIONS' order (mean, std or low, high),
            # named by the document's language (strings dist_args_<distribution>)
            args = tuple(pr.fraction(opts.init.args[k]) for k in ds.DISTRIBUTIONS[opts.init.distribution])
            init = (opts.init.distribution, args, opts.init.seed, len(opts.init.names))
        section.update(
            samples=plan.n, origin=spec.dataset.origin if spec.dataset else "", epochs=plan.epochs,
            origin_args=_generated(spec.dataset.origin if spec.dataset else ""),
            mode=opts.mode, batch_size=opts.batch_size, shuffled=opts.shuffle_seed, optimizer=opts.optimizer,
            hyper=tuple(f"{_HYPER[k]} = {pr.fraction(v)}" for k, v in opts.hyper.items()),
            eta=pr.fraction(plan.learning_rate), init=init,
            rows=tuple(Row(e, pr.number(tr.history[e].text)) for e in shown), every=every,
            curve=Curve("", _coords(tr.history_floats)), log=plot.log_scale([(None, tr.history_floats)]),
            svg=f"{spec.id}.loss.svg",
            final=tuple((names[p], _value(shapes[p], v)) for p, v in tr.final.items()),
            final_loss=pr.number(tr.final_loss.text) if tr.final_loss else "",
            first_loss=pr.number(tr.history[0].text),
            diverged=tr.diverged, reason=tr.reason, output=names[plan.output], predictions=tuple(preds),
            first_step=first, first_param=first_param, certified=tr.certified, precision=tr.precision)
        section.update(_table(spec, shapes, names))
        section.update(_drawn_description(spec, shapes, names))
    else:
        section.update(samples=1, origin="", origin_args=(), epochs=0, mode="sgd", batch_size=None, shuffled=None,
                       optimizer=opts.optimizer, hyper=(), eta=pr.fraction(spec.learning_rate), init=None,
                       rows=(), every=1, curve=None, log=False, svg="", final=(), final_loss="", first_loss="",
                       diverged=None, reason="", output="", predictions=(), first_step=(), first_param="",
                       certified=all(r.training.certified for r in runs), precision="")
    if runs:
        section.update(
            sweep=tuple(SweepRow(pr.fraction(r.learning_rate), r.verdict, pr.number(r.training.history[0].text),
                                 pr.number(r.training.history[-1].text), len(r.training.history) - 1,
                                 r.training.diverged, c,
                                 shown_verdict(r.verdict, r.training.history_floats, r.training.diverged))
                        for r, c in zip(runs, opts.sweep.claimed or ("",) * len(runs))),
            sweep_claims=bool(opts.sweep.claimed),
            sweep_agrees=all(c in ("", r.verdict) for r, c in zip(runs, opts.sweep.claimed)),
            sweep_steps=opts.sweep.steps,
            sweep_curves=tuple(Curve(f"\\eta = {pr.fraction(r.learning_rate)}", _coords(r.training.history_floats))
                               for r in runs),
            sweep_log=plot.log_scale([(None, r.training.history_floats) for r in runs]),
            sweep_ymax=_g(top) if (top := plot.clip_top([(None, r.training.history_floats) for r in runs]))
            else "")
    return TrainingSection(**section)


def _drawn_description(spec: Spec, shapes: dict, names: dict) -> dict:
    """What a generated dataset is drawn from, for the prose: each input's distribution and its
    two parameters, and the rule of each label (relu-2-4-2: x from the normal distribution with
    mean 0 and standard deviation 1, y_t = (Σx, Σx)ᵀ) — the page said only "drawn at random"."""
    d = spec.dataset
    if d is None or not getattr(d, "drawn", None):
        return {}
    drawn = tuple((names[n], dist, tuple(pr.fraction(args[k]) for k in ds.DISTRIBUTIONS[dist]))
                  for n, (dist, args) in d.drawn.items())
    printer = pr.TreePrinter(names, lambda n: shapes.get(n, ()))
    rules = []
    for n, (texts, trees, is_list) in d.derived.items():
        texs = [printer.tex(tr) for tr in trees]
        rules.append(f"{names[n]} = " + (f"\\left({', '.join(texs)}\\right)^{{\\top}}" if is_list and len(texs) > 1
                                          else texs[0]))
    return {"drawn": drawn, "drawn_rules": tuple(rules)}


def _table(spec: Spec, shapes: dict, names: dict) -> dict:
    """The samples as a table (column names, rows) when the dataset is small and listed (not drawn
    at random: a generated one is described by its size and distribution)."""
    d = spec.dataset
    if d is None or d.derived or d.n > TABLE_ROWS or not d.columns:
        return {}
    cols = list(d.columns)
    rows = tuple(tuple(_exact_value(shapes.get(c, ()), d.columns[c][i]) for c in cols) for i in range(d.n))
    return {"table_names": tuple(names[c] for c in cols), "table_rows": rows}


OSCILLATES = 3            # a run whose loss changes direction this often neither converges nor diverges


def shown_verdict(verdict: str, history: tuple, diverged) -> str:
    """The handout's word for a run, from its losses: `converging` as train.verdict has it (final
    loss below the initial one, no rise over the last quarter); `diverging` when the loss overflows
    (the run stops) or keeps growing (it changes direction fewer than OSCILLATES times); else
    `oscillating` — it goes up and down without converging (matrix-linear at 0.005: 10² to 10⁴).
    The source document's two-valued claims are compared with train.verdict, whose "diverging"
    means "not converging"."""
    if verdict == "converging":
        return "converging"
    xs = [x for x in history if math.isfinite(x)]
    if diverged is not None or len(xs) < len(history):
        return "diverging"
    d = [b - a for a, b in zip(xs, xs[1:]) if b != a]
    turns = sum(1 for a, b in zip(d, d[1:]) if (a > 0) != (b > 0))
    return "oscillating" if turns >= OSCILLATES else "diverging"


_HYPER = {"beta": "\\beta", "beta1": "\\beta_{1}", "beta2": "\\beta_{2}", "eps": "\\varepsilon"}


def _first_step(tr, names) -> tuple[str, tuple]:
    """The first update of the first updated parameter's first entry, with numbers (momentum, Adam)."""
    opt = tr.plan.options.optimizer
    if opt == "sgd" or not tr.first:
        return "", ()
    p = next(iter(tr.first))
    d = tr.first[p]
    shape = tr.plan.program.shapes[p]
    sym = names[p] if shape == () else pr.with_index(names[p], (0, 0), shape)
    start = tr.plan.start[p][0]
    n = {k: pr.number(v[0].text) for k, v in d.items()}
    eta = pr.fraction(tr.plan.learning_rate)
    h = {k: pr.fraction(v) for k, v in tr.plan.options.hyper.items()}
    g = f"g = \\frac{{\\partial {names[tr.plan.spec.loss]}}}{{\\partial {sym}}} \\approx {n['g']}"
    if opt == "momentum":
        return sym, (g,
                     f"v \\leftarrow \\beta v + g = {h['beta']} \\cdot 0 + {_p(n['g'])} \\approx {n['v']}",
                     f"{sym} \\leftarrow {sym} - \\eta v = {pr.fraction(start)} - {eta} \\cdot {_p(n['v'])} "
                     f"\\approx {n['new']}")
    return sym, (g,
                 f"m \\leftarrow \\beta_{{1}} m + (1 - \\beta_{{1}})\\, g = (1 - {h['beta1']}) \\cdot {_p(n['g'])} "
                 f"\\approx {n['m']}",
                 f"v \\leftarrow \\beta_{{2}} v + (1 - \\beta_{{2}})\\, g^{{2}} = (1 - {h['beta2']}) \\cdot "
                 f"{_p(n['g'])}^{{2}} \\approx {n['v']}",
                 f"\\hat m = \\frac{{m}}{{1 - \\beta_{{1}}^{{1}}}} \\approx {n['mhat']}, \\quad "
                 f"\\hat v = \\frac{{v}}{{1 - \\beta_{{2}}^{{1}}}} \\approx {n['vhat']}",
                 f"{sym} \\leftarrow {sym} - \\eta \\frac{{\\hat m}}{{\\sqrt{{\\hat v}} + \\varepsilon}} = "
                 f"{pr.fraction(start)} - {eta} \\cdot \\frac{{{n['mhat']}}}{{\\sqrt{{{n['vhat']}}} + {h['eps']}}} "
                 f"\\approx {n['new']}")


def _p(tex: str) -> str:
    return f"({tex})" if tex.startswith("-") else tex


_FILES: dict = {}


def training_files(spec: Spec, digits: int = 10) -> dict:
    """{file name: SVG bytes} of the curves the Markdown handouts embed (and the HTML page
    inlines): drawn once per spec object and digits."""
    if not shows_training(spec):
        return {}
    key = (id(spec), digits)
    hit = _FILES.get(key)
    if hit is None or hit[0] is not spec:
        if len(_FILES) > 8:
            _FILES.clear()
        hit = _FILES[key] = (spec, _drawn(spec, digits))
    return dict(hit[1])


def _drawn(spec: Spec, digits: int) -> dict:
    tr, runs = _runs(spec, digits)
    out = {}
    if tr is not None:
        out[f"{spec.id}.loss.svg"] = plot.loss_plot([(None, list(tr.history_floats))], "svg")
    if runs:
        out[f"{spec.id}.sweep.svg"] = plot.loss_plot(
            [(f"η = {train.fraction_text(r.learning_rate)} "
              f"({shown_verdict(r.verdict, r.training.history_floats, r.training.diverged)})",
              list(r.training.history_floats))
             for r in runs], "svg", xlabel="step",
            ymax=plot.clip_top([(None, r.training.history_floats) for r in runs]))
    return out


def _generated(origin: str) -> tuple:
    """(n, seed) of a generated dataset's origin text ('generated (n = 100, seed = 0)'), else ()."""
    m = re.fullmatch(r"generated \(n = (\d+), seed = (\d+)\)", origin or "")
    return (int(m.group(1)), int(m.group(2))) if m else ()

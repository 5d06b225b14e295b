"""The command line: wires the stages together and turns bad input into exit code 2.

    derive [--version] list | solve | eval | verify | render | build | exercise | check | train | sweep

Every DeriveError is printed as one line on stderr with exit code 2; nothing else escapes.
SIGINT, SIGTERM and SIGHUP become an `Interrupted` exception, so that every stage cleans up on the
way out (TeX's process group is killed, temporary files and directories are removed, a build in
progress is rolled back); derive then says so in one line and exits with 128 + the signal's number
(130, 143, 129).  Stages are imported inside the command that needs them, so that `derive --help`
and `derive solve` (the engine, without SymPy) start fast.
"""
from __future__ import annotations

import argparse
import functools
import gc
import json
import signal
import sys

from . import files
from .errors import DeriveError, LimitError
from .rounding import DISPLAY_DIGITS, MAX_DIGITS
from .spec import MAX_STEPS, builtin_ids, load as load_spec


def _whole_number(what: str, lo: int, hi: int):
    """An argparse type: a whole number in [lo, hi], with a one-line error otherwise."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"{what} must be between {lo} and {hi}")
        return n
    return parse


_digits = _whole_number("digits", 1, MAX_DIGITS)
_verify_digits = _whole_number("digits", 15, 1000)
_steps = _whole_number("steps", 0, MAX_STEPS)
_jobs = _whole_number("jobs", 1, 64)
_answer_digits = _whole_number("answer digits", 1, 30)


def _parts(text: str) -> tuple:
    """--skip: comma-separated parts of derive build (html, bank), one-line error otherwise."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in ("html", "bank")]
    if unknown or not parts:
        raise argparse.ArgumentTypeError(f"expected html and/or bank, comma-separated, got {text!r}")
    return parts


# ---------------------------------------------------------------- output
def _writes_stdout(args) -> bool:
    return getattr(args, "output", None) in (None, "-")


def _check_output(args) -> None:
    """Refuse an -o PATH that cannot be written before any work (see files.check_output: a
    directory, no such directory, no permission, an input of this command, a socket …)."""
    if not _writes_stdout(args):
        files.check_output(args.output)


def _emit(args, data: str | bytes) -> None:
    """The command's output: to standard output (no -o, or -o -), else to the file (files.write_output:
    atomically for a regular file, streamed to a FIFO or device), and then one line on stderr saying
    so (`derive: wrote PATH`), as every writing command does."""
    files.write_output(files.STDIO if _writes_stdout(args) else args.output, data)
    if not _writes_stdout(args):
        wrote(args.output)


def wrote(what) -> None:
    print(f"derive: wrote {what}", file=sys.stderr)


def _named(command):
    """A command whose RecursionError (which the parser's limits should make unreachable) still
    becomes one line naming the file and the limit."""
    @functools.wraps(command)
    def run(args):
        try:
            return command(args)
        except RecursionError:
            from .expr import MAX_NESTING
            where = getattr(args, "spec", None) or getattr(args, "claims", None) or ""
            where = "<stdin>" if where == "-" else where
            raise LimitError(f"input nested too deeply: over Python's recursion limit of "
                             f"{sys.getrecursionlimit()} frames (expressions may nest {MAX_NESTING} levels)",
                             file=where) from None
    return run


# ---------------------------------------------------------------- commands
def cmd_list(args) -> int:
    lines = []
    for pid in builtin_ids():
        spec = load_spec(pid)
        lines.append(f"{pid}\t{spec.title}\t{spec.source}\n")
    _emit(args, "".join(lines))
    return 0


def _warn(lines) -> None:
    for w in lines:
        print(f"derive: warning: {w}", file=sys.stderr)


def _note(line: str) -> None:
    print(f"derive: note: {line}", file=sys.stderr, flush=True)


def _load_and_warn(spec: str):
    from . import solve as api
    api.notify = _note
    problem = api.load(spec)
    _warn(problem.warnings)
    return problem


def _numeric_solve(spec, args) -> tuple[dict, int]:
    """`derive solve` of a numeric spec: the engine alone (no SymPy graph)."""
    from . import engine, summary
    program = engine.compile_spec(spec)
    steps = spec.steps if args.steps is None else args.steps
    _warn([*spec.warnings, *(f"{spec.path}: train.update: {spec.loss} does not depend on {p}; "
                             f"d{spec.loss}/d{p} = 0 and {p} does not change"
                             for p in engine.unreached_parameters(spec))])
    note = engine.slow_note(program, steps)
    if note:
        _note(note)
    numbers = engine.solution_numbers(program, args.digits, steps)
    return summary.numeric_json(spec, program.shapes, numbers), steps


def cmd_solve(args) -> int:
    from .summary import fraction_text
    _check_output(args)
    spec = load_spec(args.spec)
    if spec.is_symbolic:
        solution = _load_and_warn(args.spec).solve(digits=args.digits, steps=args.steps)
        data, k = solution.to_json(), solution.steps
    else:
        data, k = _numeric_solve(spec, args)
    if args.json:
        _emit(args, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0
    out = [data["title"]]
    if data.get("symbolic"):
        out.append("symbolic spec: formulas only")
        out += [f"  {name} = {f}" for name, f in data["forward"].items()]
        out += [f"  d{data['loss']}/d{name} = {f}" for name, f in data["gradients"].items()]
        _emit(args, "\n".join(out) + "\n")
        return 0
    width = max(len(n) for n in [*data["forward"], *data["gradients"]]) + 8
    out.append("forward pass:")
    out += [f"  {name:<{width}} {v}" for name, v in data["forward"].items()]
    out.append("gradients:")
    out += [f"  {'d' + spec.loss + '/d' + name:<{width}} {v}" for name, v in data["gradients"].items()]
    out.append(f"after {k} step(s) (learning rate {fraction_text(spec.learning_rate)}):")
    out += [f"  {name + '@' + str(k):<{width}} {v}" for name, v in data["updated"].items()]
    out.append(f"loss: {' -> '.join(data['history'])}")
    _emit(args, "\n".join(out) + "\n")
    return 0


def cmd_eval(args) -> int:
    _check_output(args)
    problem = _load_and_warn(args.spec)
    answers = problem.eval(*args.quantity, digits=args.digits)
    out = []
    for a in answers:
        parts = [a.quantity]
        if a.formula is not None and problem.is_symbolic:
            parts.append(f"= {a.formula}")
        if a.exact:
            parts.append(f"= {a.exact}")
        if a.value is not None:
            parts.append(("= " if a.value.shown_exactly else "≈ ") + a.value.text)
        out.append(" ".join(parts) + "\n")
    _emit(args, "".join(out))
    return 0


VERIFY_METHODS = ("engine", "paths", "sympy.diff", "finite difference", "matrix form")


def cmd_verify(args) -> int:
    from mpmath import nstr
    _check_output(args)
    problem = _load_and_warn(args.spec)
    if problem.is_symbolic:
        if args.json:
            _emit(args, json.dumps({"spec": problem.spec.id, "symbolic": True, "ok": True, "digits": args.digits,
                                    "methods": {}, "checks": [], "skipped": []}, indent=2) + "\n")
        else:
            _emit(args, f"{problem.spec.id}: symbolic spec; nothing numeric to verify\n")
        return 0
    v = problem.verify(digits=args.digits)
    if args.json:
        methods = {}
        for method in VERIFY_METHODS:
            cs = [c for c in v.checks if c.method == method]
            if cs:
                w = v.worst(method)
                methods[method] = {"checks": len(cs), "ok": all(c.ok for c in cs),
                                   "largest_disagreement": nstr(w.disagreement, 3), "at": w.parameter}
        data = {"spec": problem.spec.id, "digits": args.digits, "ok": v.ok, "methods": methods,
                "checks": [{"parameter": c.parameter, "method": c.method, "value": nstr(c.reference, 15),
                            "other": nstr(c.other, 15), "disagreement": nstr(c.disagreement, 3), "ok": c.ok}
                           for c in v.checks],
                "skipped": list(v.skipped), "sampled": v.sampled}
        _emit(args, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0 if v.ok else 1
    out = [f"sampled: {v.sampled}"] if v.sampled else []
    for method in VERIFY_METHODS:
        w = v.worst(method)
        if w is None:
            continue
        n = sum(1 for c in v.checks if c.method == method)
        status = "ok" if all(c.ok for c in v.checks if c.method == method) else "DISAGREE"
        out.append(f"{method:<18} {n:>4} checks, largest relative disagreement {nstr(w.disagreement, 3)} "
                   f"({w.parameter}) {status}")
    out += [f"skipped: {reason}" for reason in v.skipped]
    out.append("verified: every gradient agrees" if v.ok else "FAILED: some gradients disagree")
    _emit(args, "\n".join(out) + "\n")
    return 0 if v.ok else 1


def cmd_render(args) -> int:
    from . import render as rd
    from . import tex
    if args.format == "pdf" and args.output is None and sys.stdout.isatty():
        raise DeriveError("a PDF is not for the terminal: give -o FILE.pdf, or -o - (or a pipe) "
                          "for standard output")
    if args.format == "pdf":
        tex.require()
        tex.timeout()
    _check_output(args)
    if args.answer_digits is not None and args.mode == "solution":
        raise DeriveError("--answer-digits belongs to --mode exercise and --mode key "
                          "(a worked solution's digits: --digits)")
    if args.format == "html" and args.mode != "solution":
        raise DeriveError(f"--format html is the interactive worked solution; --mode {args.mode} is "
                          "written as md, tex or pdf")
    problem = _load_and_warn(args.spec)
    lang = args.lang or problem.spec.lang
    fmt = "tex" if args.format == "pdf" else args.format
    if args.format == "html":
        from . import htmlpage
        text = htmlpage.page(problem, lang=lang, digits=args.digits, only=rd._only(args.only),
                             template_dir=args.template_dir)
    elif args.mode in ("exercise", "key"):
        from . import exercise_context as xc
        text = xc.render_exercise(problem, fmt=fmt, lang=lang, mode=args.mode, only=rd._only(args.only),
                                  digits=args.answer_digits or xc.DEFAULT_ANSWER_DIGITS,
                                  template_dir=args.template_dir)
    else:
        text = rd.render_text(problem, fmt=fmt, lang=lang, digits=args.digits, only=rd._only(args.only),
                              mode=args.mode, template_dir=args.template_dir)
    _emit(args, tex.compile_pdf(text) if args.format == "pdf" else text)
    return 0


def cmd_build(args) -> int:
    # a batch of known size: no cyclic garbage collection while importing and rendering (about a
    # tenth of the build's CPU time; see build.collector_paused)
    gc.disable()
    from .build import build, default_jobs
    progress, close = _progress(len(builtin_ids()), "build", unit="problem")
    try:
        written = build(args.out, pdf=args.pdf, force=args.force, jobs=args.jobs or default_jobs(),
                        skip=args.skip,
                        warn=lambda line: print(f"derive: warning: {line}", file=sys.stderr),
                        progress=(lambda done, _total: progress(done)) if progress else None)
    finally:
        close()
    wrote(f"{len(written)} files to {args.out}")
    return 0


def cmd_exercise(args) -> int:
    from . import moodle, variants  # noqa: F401 - imported first, then frozen for the collector, which
    from . import build             # noqa: F401   skips it (it took 10 % of the first variant's time)
    gc.freeze()
    try:
        return _exercise(args)
    finally:
        gc.unfreeze()


def _exercise(args) -> int:
    from . import variants as vr
    from .build import write_exercise_files
    n = _count("--variants", args.variants, 1, vr.MAX_VARIANTS)
    if n is None:
        raise DeriveError("--variants N is required (1 to 500 variants)")
    seed = _count("--seed", args.seed, 0, vr.MAX_SEED)
    problem = _load_and_warn(args.spec)
    lang = args.lang or problem.spec.lang
    digits = args.answer_digits or vr.xc.DEFAULT_ANSWER_DIGITS
    out = args.output or f"{problem.spec.id}.variants"
    command = f"derive exercise {problem.spec.id} --variants {n} --seed {seed}"
    fmt = "md" if args.format == "html" else args.format
    if fmt in ("md", "moodle"):      # drawn, and each variant's share, in worker processes (a large bank)
        from .moodle import draw_prepared
        bank = draw_prepared(problem, n, seed, vary=args.vary, digits=digits, lang=lang, fmt="md", command=command,
                             moodle=fmt == "moodle", style=args.moodle)
    else:
        bank = vr.draw(problem, n, seed, vary=args.vary, digits=digits)
    files = vr.bank_files(bank, fmt=fmt, lang=lang, command=command)
    if args.format == "html":
        from .htmlpage import exercise_page
        files[f"{problem.spec.id}.variants.{lang}.html"] = exercise_page(bank, lang=lang).encode("utf-8")
    if args.format == "moodle":
        from .moodle import quiz
        files[vr.moodle_name(bank, lang)] = quiz(bank, lang=lang, style=args.moodle)
    written = write_exercise_files(out, files, warn=lambda line: print(f"derive: warning: {line}", file=sys.stderr))
    print(f"derive: {vr.rejection_line(bank)}", file=sys.stderr)
    wrote(f"{len(written)} files to {out}")
    return 0


def cmd_check(args) -> int:
    from .check import check_file
    from .report import summary_line, text_report, to_json
    _check_output(args)
    cf, results = check_file(args.claims, args.digits, args.lang)
    if args.json:
        out = json.dumps(to_json(cf, results, args.digits), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "text":
        out = text_report(cf, results, args.digits, args.lang)
    else:
        from .errata import render_report
        out = render_report(cf, results, args.format, args.lang, args.digits)
    _emit(args, out)
    if not _writes_stdout(args):
        print(f"derive: {summary_line(results, args.lang, cf.demonstration)}", file=sys.stderr)
    return 1 if any(r.verdict == "wrong" for r in results) else 0


def _progress(total: int, what: str, unit: str = "epoch"):
    """(callback, close) of a progress bar on stderr: only on a terminal, and only for a run over
    about a second (tqdm's `delay`); a repeated run (a higher precision) starts it again.  The
    callback is None when no bar is drawn."""
    if not sys.stderr.isatty() or total <= 0:
        return None, lambda: None
    from tqdm import tqdm
    bar = tqdm(total=total, desc=what, unit=unit, file=sys.stderr, delay=1.0, leave=False,
               dynamic_ncols=True)

    def progress(epoch: int):
        if epoch < bar.n:
            bar.reset()
        bar.update(epoch - bar.n)
    return progress, bar.close


def _learning_rate(text: str):
    from fractions import Fraction
    from .expr import ascii_numerals
    try:
        if len(text) > 400:
            raise ValueError
        q = Fraction(ascii_numerals(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise DeriveError(f"--learning-rates: {text.strip()!r} is not a number") from None
    return q


def _write_plot(path: str, curves, title: str | None, xlabel: str = "epoch") -> None:
    from . import plot
    fmt = plot.format_of(path)
    files.write_output(path, plot.loss_plot(curves, fmt, title=title, xlabel=xlabel, ymax=plot.clip_top(curves)))
    wrote(path)


def _check_plot(args) -> None:
    if args.plot:
        from . import plot
        if not plot.format_of(args.plot):
            raise DeriveError(f"--plot {args.plot}: expected a file name ending in .svg or .png")
        files.check_output(args.plot)


def _training_spec(args, count: str, minimum: int):
    """derive train's and sweep's common start, in this order: the output path, --epochs or
    --steps (`count`, at least `minimum`), --precision, --plot, then the spec and its warnings."""
    _check_output(args)
    setattr(args, count, _count(f"--{count}", getattr(args, count), minimum))
    args.precision = _precision(args.precision)
    _check_plot(args)
    spec = load_spec(args.spec)
    _warn(spec.warnings)
    return spec


def cmd_train(args) -> int:
    from . import train
    from .summary import fraction_text
    spec = _training_spec(args, "epochs", 0)
    predict = tuple(train.parse_predict(p, spec) for p in args.predict or ())
    plan = train.prepare(spec, epochs=args.epochs, predict=predict)
    progress, close = _progress(plan.epochs, "train")
    try:
        tr = train.train(plan, args.digits, args.precision, progress)
    finally:
        close()
    data = train.to_json(tr)
    if args.plot:
        _write_plot(args.plot, [(None, list(tr.history_floats))], spec.title)
    if args.json:
        _emit(args, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0
    mode = {"sgd": "SGD, one update per sample", "batch": "full batch, one update per epoch",
            "minibatch": f"mini-batches of {plan.options.batch_size}"}[plan.options.mode]
    order = f", shuffled (seed {plan.options.shuffle_seed})" if plan.options.shuffle_seed is not None \
        else ", in dataset order" if plan.n > 1 and plan.options.mode != "batch" else ""
    opt = plan.options.optimizer + "".join(f", {k} {fraction_text(v)}" for k, v in plan.options.hyper.items())
    out = [data["title"],
           f"training: {plan.n} sample(s), {plan.epochs} epoch(s), {mode}{order}; optimizer {opt}; "
           f"learning rate {fraction_text(plan.learning_rate)}",
           f"numbers: {tr.digits} digits, " + ("certified (ball arithmetic at " + tr.precision + ")"
                                              if tr.certified else f"NOT certified ({tr.precision})"),
           "epoch  loss"]
    shown = train.thinned_epochs(len(tr.history) - 1)
    width = len(str(shown[-1])) if shown else 1
    out += [f"{e:>{max(5, width)}}  {tr.history[e].text}" for e in shown]
    if tr.diverged is not None:
        out.append(f"diverged in epoch {tr.diverged}: {tr.reason}")
    label = "final parameters:" if tr.diverged is None else f"parameters after epoch {len(tr.history) - 1}:"
    out.append(label)
    w = max(len(p) for p in data["final"]) + 2
    out += [f"  {p:<{w}} {_flat_text(v)}" for p, v in data["final"].items()]
    if data["final_loss"] is not None:
        out.append(f"final loss: {data['final_loss']}")
    if data["predictions"]:
        out.append(f"predictions ({plan.output}):")
        for label, entry in data["predictions"].items():
            ins = ", ".join(f"{n} = {_flat_text(v)}" for n, v in entry["inputs"].items())
            cls = f"  ({entry['class']})" if "class" in entry else ""
            head = "" if label == ",".join(f"{n}={_flat_text(v)}" for n, v in entry["inputs"].items()) \
                else f"{label}: "
            out.append(f"  {head}{ins} -> {_flat_text(entry['value'])}{cls}")
    _emit(args, "\n".join(out) + "\n")
    return 0


def _flat_text(v) -> str:
    if isinstance(v, str):
        return v
    if v and isinstance(v[0], list):
        return "[" + ", ".join("[" + ", ".join(r) + "]" for r in v) + "]"
    return "[" + ", ".join(v) + "]"


def cmd_sweep(args) -> int:
    from . import train
    from .summary import fraction_text
    spec = _training_spec(args, "steps", 1)
    rates = tuple(_learning_rate(t) for t in args.learning_rates.split(",") if t.strip())
    if not rates:
        raise DeriveError("--learning-rates: give at least one learning rate")
    plan = train.prepare(spec, epochs=args.steps)
    progress, close = _progress(plan.epochs * len(rates), "sweep")
    runs = []
    try:
        for i, lr in enumerate(rates):
            step = (lambda e, i=i: progress(i * plan.epochs + e)) if progress else None
            tr = train.train(train.prepare(spec, epochs=args.steps, learning_rate=lr), args.digits,
                             args.precision, step)
            runs.append(train.SweepRun(lr, tr, train.verdict(tr.history, tr.diverged)))
    finally:
        close()
    data = [{"learning_rate": fraction_text(r.learning_rate), "history": [h.text for h in r.training.history],
             "verdict": r.verdict,
             "diverged": r.training.diverged if r.training.diverged is not None else False}
            for r in runs]
    if args.plot:
        _write_plot(args.plot, [(f"η = {d['learning_rate']} ({d['verdict']})", list(r.training.history_floats))
                                for d, r in zip(data, runs)], spec.title, "step")
    if args.json:
        _emit(args, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0
    out = [spec.title, f"{args.steps} step(s) per learning rate ({plan.n} sample(s), {plan.options.mode}); "
           "converging: no divergence, final loss below the initial one, no rise over the last quarter",
           f"{'learning rate':<14} {'verdict':<10} {'loss at 0':<16} {'loss at end':<16} epochs"]
    for d, r in zip(data, runs):
        end = d["history"][-1] if d["history"] else "-"
        extra = f"  (diverged in epoch {d['diverged']})" if d["diverged"] is not False else ""
        out.append(f"{d['learning_rate']:<14} {d['verdict']:<10} {d['history'][0]:<16} {end:<16} "
                   f"{len(d['history']) - 1}{extra}")
    _emit(args, "\n".join(out) + "\n")
    return 0


def _precision(text: str | None):
    """--precision: None (certified), 'float', or bits (checked here: one line, exit 2)."""
    if text is None or text == "float":
        return text
    try:
        n = int(text)
    except ValueError:
        raise DeriveError(f"--precision: expected a number of bits or 'float', got {text!r}") from None
    if not 16 <= n <= 140_000:
        raise DeriveError("--precision: expected between 16 and 140000 bits, or 'float'")
    return n


def _count(option: str, text: str | None, lo: int, hi: int = 10_000_000):
    """A whole-number option checked here (one line naming it, exit 2), None when not given."""
    if text is None:
        return None
    try:
        n = int(text)
    except ValueError:
        raise DeriveError(f"{option}: expected a whole number, got {text!r}") from None
    if not lo <= n <= hi:
        raise DeriveError(f"{option}: expected a whole number from {lo} to {hi}, got {n}")
    return n


# ---------------------------------------------------------------- parser
SPEC_HELP = "a spec file (.toml), a built-in id (see `derive list`), or - for standard input"
OUTPUT_HELP = "write to PATH (atomically) instead of standard output; - is standard output (default: -)"


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("derive")
    except PackageNotFoundError:   # run from a source tree that was never installed
        return "unknown (not installed)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="derive", description="Exact worked solutions of backpropagation.")
    p.add_argument("--version", action="version", version=f"derive {_package_version()}",
                   help="print derive's version (from the installed package) and exit")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name, run, help, spec=True):
        sp = sub.add_parser(name, help=help, description=help)
        if spec:
            sp.add_argument("spec", metavar="SPEC_OR_ID", help=SPEC_HELP)
        sp.set_defaults(run=_named(run))
        return sp

    def digits(sp, what="significant digits of every number shown", default=10):
        sp.add_argument("--digits", type=_digits, default=default, metavar="N",
                        help=f"{what}, 1 to {MAX_DIGITS} (default: %(default)s)")

    def output(sp):
        sp.add_argument("-o", "--output", default=None, metavar="PATH", help=OUTPUT_HELP)

    ls = add("list", cmd_list, "built-in problems: id, title, source", spec=False)
    output(ls)

    s = add("solve", cmd_solve, "forward pass, gradients, the updates and the loss after each step")
    digits(s)
    s.add_argument("--steps", type=_steps, default=None, metavar="K",
                   help=f"gradient-descent steps, 0 to {MAX_STEPS} (default: the spec's train.steps)")
    s.add_argument("--json", action="store_true", help="one JSON object instead of text (default: text)")
    output(s)

    e = add("eval", cmd_eval, "values of quantities: NAME, dA/dB, NAME@k, expressions over them")
    e.add_argument("quantity", nargs="+", metavar="QUANTITY",
                   help=f"a quantity, e.g. dE/dw6, 'w6@1' (k from 0 to {MAX_STEPS}), 'E - E@1'")
    digits(e)
    output(e)

    v = add("verify", cmd_verify, "check every gradient several independent ways; exit 1 on a disagreement")
    v.add_argument("--digits", type=_verify_digits, default=60, metavar="N",
                   help="working precision of every method, in decimal digits, 15 to 1000; the tolerances "
                        "follow it (default: %(default)s)")
    v.add_argument("--json", action="store_true", help="one JSON object instead of text (default: text)")
    output(v)

    r = add("render", cmd_render, "a worked solution, an exercise sheet or its answer key as Markdown, LaTeX or PDF")
    r.add_argument("--format", choices=("md", "tex", "pdf", "html"), default="md",
                   help="md, tex, pdf (XeLaTeX via latexmk; to a pipe or -o), or html (one self-contained "
                        "interactive page: an answer box before each step) (default: %(default)s)")
    r.add_argument("--lang", choices=("en", "zh"), default=None,
                   help="language of the prose (default: the spec's lang, else en)")
    digits(r, default=DISPLAY_DIGITS)
    r.add_argument("--only", default=None, metavar="NAMES",
                   help="comma-separated parameters whose gradients are shown (default: all); a network of "
                        "over 30 parameter entries also takes entries such as W1[2,3] (default: the "
                        "first entry of each parameter)")
    r.add_argument("--mode", choices=("solution", "exercise", "key"), default="solution",
                   help="the worked solution; an exercise sheet (the problem, what to compute, an answer "
                        "table to fill in); or its answer key (the same, answers filled in) "
                        "(default: %(default)s)")
    r.add_argument("--answer-digits", type=_answer_digits, default=None, metavar="N",
                   help="significant digits of the answers a sheet asks for and its key gives, 1 to 30 "
                        "(--mode exercise and key; default: 4)")
    output(r)
    r.add_argument("--template-dir", default=None, metavar="DIR",
                   help="templates that override the built-in ones by file name (default: none)")

    t = add("train", cmd_train, "train: the loss per epoch, the final parameters and loss, predictions")
    t.add_argument("--epochs", default=None, metavar="N",
                   help="epochs (default: the spec's train.epochs, else train.steps)")
    digits(t)
    t.add_argument("--precision", default=None, metavar="P|float",
                   help="working precision in bits (numbers its balls do not decide are marked uncertified), "
                        "or float (float64, fast, uncertified) (default: enough for every printed digit to be "
                        "certified)")
    t.add_argument("--json", action="store_true", help="one JSON object instead of text (default: text)")
    t.add_argument("--plot", default=None, metavar="PATH", help="also write the loss curve (.svg or .png) (default: no plot)")
    t.add_argument("--predict", action="append", default=None, metavar="NAME=V,...",
                   help="predict the output after training from these data values; repeatable (default: the "
                        "spec's [predict] only)")
    output(t)

    w = add("sweep", cmd_sweep, "train at several learning rates: the loss per step, converging or diverging")
    w.add_argument("--learning-rates", required=True, metavar="R,R,...",
                   help="comma-separated learning rates, e.g. 0.05,0.005,0.003 (required; no default)")
    w.add_argument("--steps", default="50", metavar="N",
                   help="epochs per learning rate (default: %(default)s)")
    digits(w)
    w.add_argument("--precision", default=None, metavar="P|float",
                   help="as for train (default: certified)")
    w.add_argument("--json", action="store_true", help="a JSON list instead of text (default: text)")
    w.add_argument("--plot", default=None, metavar="PATH", help="also write the curves (.svg or .png) (default: no plot)")
    output(w)

    b = add("build", cmd_build, "render every built-in problem, its errata and an index into a directory",
            spec=False)
    b.add_argument("-o", "--out", "--output", dest="out", default="output", metavar="DIR",
                   help="the directory to write (--out is the same option) (default: %(default)s)")
    b.add_argument("--pdf", action="store_true",
                   help="also compile every .tex it writes (handouts, errata, sheets and keys) to PDF with XeLaTeX (default: no PDFs)")
    b.add_argument("--force", action="store_true",
                   help="build into a directory that is not derive's own; a file derive did not write is "
                        "still never overwritten or deleted (default: refuse)")
    b.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="worker processes rendering the problems; the files are the same for every N "
                        "(default: one per CPU, at most 4)")
    b.add_argument("--skip", type=_parts, default=(), metavar="PARTS",
                   help="leave out parts, comma-separated: html (the interactive pages), bank (the "
                        "exercise bank); a quick build of the handouts, errata, sheets and keys is "
                        "--skip html,bank (their files of an earlier build in DIR are removed, as "
                        "any build removes what it no longer makes) (default: build everything)")

    x = add("exercise", cmd_exercise, "an exercise bank: N variants of a spec with new numbers, drawn from a "
            "seed: one sheet, one key, each variant's spec and claims template, a Moodle quiz")
    x.add_argument("--variants", default=None, metavar="N", help="how many variants, 1 to 500 (required; no default)")
    x.add_argument("--seed", default="0", metavar="S",
                   help="the seed the numbers are drawn from; the same seed gives the same files (default: %(default)s)")
    x.add_argument("--vary", default=None, metavar="NAMES",
                   help="comma-separated data values and parameters to vary (default: every one; a 0 stays 0 "
                        "unless named here)")
    x.add_argument("--format", choices=("md", "tex", "moodle", "html"), default="md",
                   help="the sheet and key as Markdown or LaTeX; moodle: Markdown and a Moodle XML quiz; html: "
                        "Markdown and one interactive page of every variant's worked solution (default: %(default)s)")
    x.add_argument("--lang", choices=("en", "zh"), default=None,
                   help="language of the prose (default: the spec's lang, else en)")
    x.add_argument("--answer-digits", type=_answer_digits, default=None, metavar="D",
                   help="significant digits of the answers, 1 to 30 (default: 4)")
    x.add_argument("--moodle", choices=("cloze", "numerical"), default="cloze",
                   help="one cloze question per variant with a blank per quantity, or one numerical question "
                        "per quantity (default: %(default)s)")
    x.add_argument("-o", "--output", default=None, metavar="DIR",
                   help="the directory to write: new, empty, or one derive exercise wrote; a file derive did not "
                        "write is never overwritten (default: ID.variants)")

    c = add("check", cmd_check, "check a hand derivation (a claims file): exit 0 if nothing is wrong, 1 if "
            "something is", spec=False)
    c.add_argument("claims", metavar="CLAIMS",
                   help="a claims file, a built-in id (its seed's claims), or - for standard input (then "
                        "its spec is a built-in id or a path from the current directory)")
    c.add_argument("--json", action="store_true", help="one JSON object instead of a report (default: text)")
    c.add_argument("--format", choices=("text", "md", "tex"), default="text",
                   help="the report: a text table, or a Markdown/LaTeX errata document (default: %(default)s)")
    output(c)
    c.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the report (default: %(default)s)")
    digits(c, "significant digits of the true values shown")
    return p


class Interrupted(BaseException):
    """A signal (SIGINT, SIGTERM, SIGHUP) asked derive to stop; raised where the program was."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_signal(signum, frame):
    # the first signal interrupts; more while cleaning up are ignored, so the clean-up completes
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


def _install_signal_handlers() -> dict:
    old = {}
    for s in SIGNALS:
        try:
            old[s] = signal.signal(s, _on_signal)
        except (ValueError, OSError):   # not the main thread: leave them alone
            pass
    return old


def main(argv=None) -> int:
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # argparse prints its own one-line usage error, exit 2
        return int(e.code or 0)
    old = _install_signal_handlers()
    try:
        return args.run(args)
    except DeriveError as e:
        print(f"derive: {e.line()}", file=sys.stderr)
        return 2
    except RecursionError:
        print("derive: input nested too deeply", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        print(f"derive: interrupted by {signal.Signals(signum).name}; nothing was left half-written",
              file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # e.g. `derive solve … | head`
        sys.stderr.close()
        return 0
    except OSError as e:     # a safety net: every file is opened through derive.files, which says more
        where = f"{e.filename}: " if e.filename else ""
        print(f"derive: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


def entry() -> None:
    sys.exit(main())

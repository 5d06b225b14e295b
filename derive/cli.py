"""The command line: wires the stages together and turns bad input into exit code 2.

    derive [--version] list | solve | eval | verify | render | build | check

Every DeriveError is printed as one line on stderr with exit code 2; nothing else escapes.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from . import solve as api
from .errors import DeriveError, LimitError
from .files import write_atomic
from .spec import builtin_ids, load as load_spec
from .numeric import MAX_DIGITS
from .spec import MAX_STEPS


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


# ---------------------------------------------------------------- output
def _writes_stdout(args) -> bool:
    return getattr(args, "output", None) in (None, "-")


def _check_output(args) -> None:
    """Refuse an unwritable -o PATH before any work (a directory, no such directory, no permission)."""
    if not _writes_stdout(args):
        from .render import _check_writable
        _check_writable(Path(args.output))


def _emit(args, data: str | bytes) -> None:
    """The command's output: to standard output (no -o, or -o -), else atomically to the file, and
    then one line on stderr saying so (`derive: wrote PATH`), as every writing command does."""
    if _writes_stdout(args):
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(data)
        return
    write_atomic(args.output, data)
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


def _load_and_warn(spec: str):
    problem = api.load(spec)
    for w in problem.warnings:
        print(f"derive: warning: {w}", file=sys.stderr)
    return problem


def cmd_solve(args) -> int:
    _check_output(args)
    problem = _load_and_warn(args.spec)
    solution = problem.solve(digits=args.digits, steps=args.steps)
    data = solution.to_json()
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
    k = solution.steps
    width = max(len(n) for n in [*data["forward"], *data["gradients"]]) + 8
    out.append("forward pass:")
    out += [f"  {name:<{width}} {v}" for name, v in data["forward"].items()]
    loss = problem.spec.loss
    out.append("gradients:")
    out += [f"  {'d' + loss + '/d' + name:<{width}} {v}" for name, v in data["gradients"].items()]
    out.append(f"after {k} step(s) (learning rate {_fraction_text(problem.spec.learning_rate)}):")
    out += [f"  {name + '@' + str(k):<{width}} {v}" for name, v in data["updated"].items()]
    out.append(f"loss: {' -> '.join(data['history'])}")
    _emit(args, "\n".join(out) + "\n")
    return 0


def _fraction_text(q) -> str:
    from .numeric import format_decimal, round_fraction, is_short_exact
    if q is None:
        return "eta"
    if is_short_exact(q, 30):
        return format_decimal(round_fraction(q, 30), 30, exact=True)
    return f"{q.numerator}/{q.denominator}"


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


VERIFY_METHODS = ("paths", "sympy.diff", "finite difference", "matrix form")


def cmd_verify(args) -> int:
    from mpmath import nstr
    _check_output(args)
    problem = api.load(args.spec)
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
                "skipped": list(v.skipped)}
        _emit(args, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        return 0 if v.ok else 1
    out = []
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
    if args.format == "pdf" and args.output is None and sys.stdout.isatty():
        raise DeriveError("a PDF is not for the terminal: give -o FILE.pdf, or -o - (or a pipe) "
                          "for standard output")
    if args.format == "pdf" and not rd.tex_available():
        raise DeriveError(f"cannot make a PDF: latexmk and xelatex are not installed "
                          f"(on Debian/Ubuntu: apt-get install {rd.TEX_PACKAGES})")
    _check_output(args)
    problem = api.load(args.spec)
    lang = args.lang or problem.spec.lang
    fmt = "tex" if args.format == "pdf" else args.format
    text = rd.render_text(problem, fmt=fmt, lang=lang, digits=args.digits, only=rd._only(args.only),
                          mode=args.mode, template_dir=args.template_dir)
    _emit(args, rd.compile_pdf(text) if args.format == "pdf" else text)
    return 0


def cmd_build(args) -> int:
    from .render import build_outputs
    written = build_outputs(Path(args.out), pdf=args.pdf)
    wrote(f"{len(written)} files to {args.out}")
    return 0


def cmd_check(args) -> int:
    from .check import check_file, summary_line, text_report, to_json
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
        print(f"derive: {summary_line(results, args.lang)}", file=sys.stderr)
    return 1 if any(r.verdict == "wrong" for r in results) else 0


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

    def digits(sp, what="significant digits of every number shown"):
        sp.add_argument("--digits", type=_digits, default=10, metavar="N",
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

    r = add("render", cmd_render, "a worked solution (or an exercise sheet) as Markdown, LaTeX or PDF")
    r.add_argument("--format", choices=("md", "tex", "pdf"), default="md",
                   help="md, tex, or pdf (XeLaTeX via latexmk; to a pipe or -o) (default: %(default)s)")
    r.add_argument("--lang", choices=("en", "zh"), default=None,
                   help="language of the prose (default: the spec's lang, else en)")
    digits(r)
    r.add_argument("--only", default=None, metavar="NAMES",
                   help="comma-separated parameters whose gradients are shown (default: all)")
    r.add_argument("--mode", choices=("solution", "exercise"), default="solution",
                   help="the worked solution, or the problem without it (default: %(default)s)")
    output(r)
    r.add_argument("--template-dir", default=None, metavar="DIR",
                   help="templates that override the built-in ones by file name (default: none)")

    b = add("build", cmd_build, "render every built-in problem, its errata and an index into a directory",
            spec=False)
    b.add_argument("-o", "--out", "--output", dest="out", default="output", metavar="DIR",
                   help="the directory to write (--out is the same option) (default: %(default)s)")
    b.add_argument("--pdf", action="store_true",
                   help="also compile every handout to PDF with XeLaTeX (default: no PDFs)")

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


def main(argv=None) -> int:
    p = parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as e:  # argparse prints its own one-line usage error, exit 2
        return int(e.code or 0)
    api.notify = lambda line: print(f"derive: note: {line}", file=sys.stderr, flush=True)
    try:
        return args.run(args)
    except DeriveError as e:
        print(f"derive: {e.line()}", file=sys.stderr)
        return 2
    except RecursionError:
        print("derive: input nested too deeply", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `derive solve … | head`
        sys.stderr.close()
        return 0


def entry() -> None:
    sys.exit(main())

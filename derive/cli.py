"""The command line: wires the stages together and turns bad input into exit code 2.

    derive list | solve | eval | verify | render | build | check

Every DeriveError is printed as one line on stderr with exit code 2; nothing else escapes.
SIGINT, SIGTERM and SIGHUP become an `Interrupted` exception, so that every stage cleans up on the
way out (TeX's process group is killed, temporary files and directories are removed, a build in
progress is rolled back); derive then says so in one line and exits with 128 + the signal's number
(130, 143, 129).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys

from .errors import DeriveError
from .rounding import MAX_DIGITS
from .spec import MAX_STEPS, builtin_ids, load as load_spec

# Stages are imported inside the command that needs them, so that `derive --help` and
# `derive solve` (the engine, without SymPy) start fast.


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
_steps = _whole_number("steps", 0, MAX_STEPS)


# ---------------------------------------------------------------- commands
def cmd_list(args) -> int:
    for pid in builtin_ids():
        spec = load_spec(pid)
        print(f"{pid}\t{spec.title}\t{spec.source}")
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
    spec = load_spec(args.spec)
    if spec.is_symbolic:
        problem = _load_and_warn(args.spec)
        solution = problem.solve(digits=args.digits, steps=args.steps)
        data, steps = solution.to_json(), solution.steps
    else:
        data, steps = _numeric_solve(spec, args)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return 0
    print(data["title"])
    if data.get("symbolic"):
        print("symbolic spec: formulas only")
        for name, f in data["forward"].items():
            print(f"  {name} = {f}")
        for name, f in data["gradients"].items():
            print(f"  d{data['loss']}/d{name} = {f}")
        return 0
    width = max(len(n) for n in [*data["forward"], *data["gradients"]]) + 8
    print("forward pass:")
    for name, v in data["forward"].items():
        print(f"  {name:<{width}} {v}")
    loss = spec.loss
    print("gradients:")
    for name, v in data["gradients"].items():
        print(f"  {'d' + loss + '/d' + name:<{width}} {v}")
    print(f"after {steps} step(s) (learning rate {fraction_text(spec.learning_rate)}):")
    for name, v in data["updated"].items():
        print(f"  {name + '@1':<{width}} {v}")
    print(f"loss: {' -> '.join(data['history'])}")
    return 0


def cmd_eval(args) -> int:
    problem = _load_and_warn(args.spec)
    answers = problem.eval(*args.quantity, digits=args.digits)
    for a in answers:
        parts = [a.quantity]
        if a.formula is not None and problem.is_symbolic:
            parts.append(f"= {a.formula}")
        if a.exact:
            parts.append(f"= {a.exact}")
        if a.value is not None:
            parts.append(("= " if a.value.shown_exactly else "≈ ") + a.value.text)
        print(" ".join(parts))
    return 0


def cmd_verify(args) -> int:
    from mpmath import nstr
    problem = _load_and_warn(args.spec)
    if problem.is_symbolic:
        print(f"{problem.spec.id}: symbolic spec; nothing numeric to verify")
        return 0
    v = problem.verify()
    if v.sampled:
        print(f"sampled: {v.sampled}")
    for method in ("engine", "paths", "sympy.diff", "finite difference", "matrix form"):
        w = v.worst(method)
        if w is None:
            continue
        n = sum(1 for c in v.checks if c.method == method)
        status = "ok" if all(c.ok for c in v.checks if c.method == method) else "DISAGREE"
        print(f"{method:<18} {n:>4} checks, largest relative disagreement {nstr(w.disagreement, 3)} "
              f"({w.parameter}) {status}")
    for reason in v.skipped:
        print(f"skipped: {reason}")
    print("verified: every gradient agrees" if v.ok else "FAILED: some gradients disagree")
    return 0 if v.ok else 1


def cmd_render(args) -> int:
    from .render import command_render
    return command_render(args)


def cmd_build(args) -> int:
    from .build import build
    written = build(args.out, pdf=args.pdf, force=args.force,
                    warn=lambda line: print(f"derive: warning: {line}", file=sys.stderr))
    print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
    return 0


def cmd_check(args) -> int:
    """exit 0 when nothing is wrong, 1 when something is, 2 on bad input (raised as DeriveError)."""
    from .check import check_file, summary_line, text_report, to_json
    from .files import STDIO, check_output, write_output
    if args.output is not None:
        check_output(args.output)
    cf, results = check_file(args.claims, args.digits, args.lang)
    if args.json:
        out = json.dumps(to_json(cf, results, args.digits), ensure_ascii=False, indent=2) + "\n"
    elif args.format == "text":
        out = text_report(cf, results, args.digits, args.lang)
    else:
        from .errata import render_report
        out = render_report(cf, results, args.format, args.lang, args.digits)
    if args.output is not None and args.output != STDIO:
        write_output(args.output, out)
        print(summary_line(results, args.lang))
    else:
        print(out, end="")
    return 1 if any(r.verdict == "wrong" for r in results) else 0


# ---------------------------------------------------------------- parser
def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="derive", description="Exact worked solutions of backpropagation.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="built-in problems").set_defaults(run=cmd_list)

    s = sub.add_parser("solve", help="forward pass, gradients, one step")
    s.add_argument("spec", metavar="SPEC_OR_ID")
    s.add_argument("--digits", type=_digits, default=10)
    s.add_argument("--steps", type=_steps, default=None)
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_solve)

    e = sub.add_parser("eval", help="values of quantities: NAME, dA/dB, NAME@k, expressions")
    e.add_argument("spec", metavar="SPEC_OR_ID")
    e.add_argument("quantity", nargs="+", metavar="QUANTITY")
    e.add_argument("--digits", type=_digits, default=10)
    e.set_defaults(run=cmd_eval)

    v = sub.add_parser("verify", help="check every gradient three independent ways")
    v.add_argument("spec", metavar="SPEC_OR_ID")
    v.set_defaults(run=cmd_verify)

    r = sub.add_parser("render", help="a worked solution as Markdown, LaTeX or PDF")
    r.add_argument("spec", metavar="SPEC_OR_ID")
    r.add_argument("--format", choices=("md", "tex", "pdf"), default="md")
    r.add_argument("--lang", choices=("en", "zh"), default=None)
    r.add_argument("--digits", type=_digits, default=10)
    r.add_argument("--only", default=None, metavar="NAMES", help="comma-separated parameters")
    r.add_argument("--mode", choices=("solution", "exercise"), default="solution")
    r.add_argument("-o", "--output", default=None, metavar="PATH")
    r.add_argument("--template-dir", default=None, metavar="DIR")
    r.set_defaults(run=cmd_render)

    b = sub.add_parser("build", help="render every built-in problem into output/")
    b.add_argument("--out", default="output", metavar="DIR")
    b.add_argument("--pdf", action="store_true")
    b.add_argument("--force", action="store_true",
                   help="build into a directory that is not derive's own (a file derive did not write is "
                        "still never overwritten or deleted)")
    b.set_defaults(run=cmd_build)

    c = sub.add_parser("check", help="check a hand derivation (a claims file)")
    c.add_argument("claims", metavar="CLAIMS")
    c.add_argument("--json", action="store_true")
    c.add_argument("--format", choices=("text", "md", "tex"), default="text")
    c.add_argument("-o", "--output", default=None, metavar="PATH")
    c.add_argument("--lang", choices=("en", "zh"), default="en")
    c.add_argument("--digits", type=_digits, default=10)
    c.set_defaults(run=cmd_check)
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

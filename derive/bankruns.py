"""The numbers of an exercise bank's variants: the structure built once, each variant's numbers
from the engine.

The variants of a bank are the base problem with other numbers (`variants.draw`): the per-scalar
SymPy graph, the catalogued mistakes (`hypotheses.hypotheses_of`, whose what-if runs and formulas
are structural) and the rows a sheet asks for are the same for every variant, so `Frame` makes
them once.  A variant's numbers (`Runs`) come from the engine: the exact run where a value is
rational (as `engine.certified` takes it), and otherwise balls at WORK_BITS from the true run and
from each mistake's what-if run.  For a program of scalars those runs are tapes (`tape.record`,
with the what-if), recorded once on the base program and replayed with each variant's inputs —
the same operations on the same operands as the engine's own run of the variant, so the same
balls; any other program, or a replay that fails, gets the engine's own run.

A variant is a `Variant`: the base problem's engine program and per-scalar graph with the
variant's spec, its compiled quantities shared by the frame.  `parallel_map` runs a function of
(state, i) over variants in forked worker processes, results in order (`ordered`: as they come).

Every value is used through `rounded` and `exponent`: the correctly rounded decimal and ⌊log₁₀|x|⌋
of a value, exact for a Fraction, certified for a ball (both ends of the ball agree), else None —
the caller then asks for the value at twice the precision (`Runs.at`), up to the engine's cap,
where (an exact tie) the midpoint's rounding is taken, as `engine.certified` does.
"""
from __future__ import annotations

import decimal
import gc
import multiprocessing
import os
import signal
from dataclasses import replace
from fractions import Fraction
from functools import cached_property

from . import engine
from . import numeric as nm
from . import tape
from .errors import DeriveError
from .exact import ExactContext
from .hypotheses import hypotheses_of
from .rounding import _digits_decimal, round_fraction
from .solve import Problem
from .summary import Shaped

MAX_JOBS = 4                     # worker processes of `parallel_map`, at most
WORK_BITS = int(60 * 3.33) + 64      # the checker's what-if precision (worlds.WORK_BITS)
TAPE_VARIANTS = 10               # fewer variants: the engine's own runs (recording ≈ 5 of its runs)
CHUNK = 2                        # tasks a worker takes at a time: a short tail where one worker waits
FAILURES = (DeriveError, ArithmeticError, ValueError, engine.Imprecise)


class Frame:
    """What the variants of one base problem share (see the module's docstring); tapes for a
    bank of at least TAPE_VARIANTS `variants`."""

    def __init__(self, base: Problem, variants: int = TAPE_VARIANTS):
        self.base = base
        self.scalar = variants >= TAPE_VARIANTS and tape.applies(base.program)
        self.exact = base.program.work * 2 <= engine.EXACT_LIMIT     # engine.certified's rule, 1 step
        self._tapes: dict = {}
        self.memo: dict = {}             # what `remember` has computed, by key
        self.compiled: dict = {}         # (text, tree) -> engine.Expression, None, False (`Variant`)

    @property
    def graph(self):
        return self.base.graph

    @cached_property
    def hypotheses(self) -> list:
        return hypotheses_of(self.base)

    def remember(self, key, compute):
        """compute() once per key (what every variant shares: a sheet's rows, its context)."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    def problem(self, spec, digits: tuple = ()) -> Problem:
        """A variant's Problem: its graph is the base's (the same structure) with the variant's
        spec; with tapes, its runs for certified numbers at `digits` (one step) replayed."""
        p = Variant(spec, self)
        for d in digits if self.scalar else ():
            prec = engine.first_precision(d, 1)
            traj = Runs(self, p).at(None, prec)
            if traj is not None:
                p.runs[(prec, 1)] = traj
        return p

    def tape(self, what_if, prec: int):
        """The tape of the (what-if) run at `prec` bits, recorded once; None where none applies."""
        key = (what_if, prec)
        if key not in self._tapes:
            self._tapes[key] = None
            if self.scalar:
                with engine.precision(prec) as ctx:
                    try:
                        self._tapes[key] = tape.record(self.base.program, ctx, engine._TAPE_PARTS, what_if)
                    except tape.NotRecordable:
                        pass
        return self._tapes[key]


class Runs:
    """One variant's runs (see the module's docstring): values by (kind, name, flat index), the
    kinds of a sheet's rows (forward, loss, gradient, update, after)."""

    def __init__(self, frame: Frame, problem: Problem):
        self.frame = frame
        self.problem = problem
        self.program = problem.program
        self._runs: dict = {}

    def exact(self):
        """The exact run of one step (shared with the variant's certified numbers), or None."""
        if not self.frame.exact:
            return None
        return engine.cached_run(self.problem.runs, self.program, "exact", 1)

    def at(self, what_if, prec: int = WORK_BITS):
        """The (what-if) run of one step at `prec` bits, or None when it fails."""
        key = (what_if, prec)
        if key not in self._runs:
            self._runs[key] = None
            tp = self.frame.tape(what_if, prec)
            spec = self.problem.spec
            try:
                with engine.precision(prec) as ctx:
                    if tp is not None:
                        inputs = [engine._arb_of(v.entries[0]) for v in (*spec.data.values(),
                                                                          *spec.parameters.values())]
                        self._runs[key] = tp.trajectory(ctx, 1, inputs)
                    else:
                        self._runs[key] = engine.run(self.program, ctx, 1, what_if)
            except FAILURES:
                pass
        return self._runs[key]

    def entries(self, prec: int | None) -> dict | None:
        """Entry -> value at step 0: of the exact run (prec None), or of the true run at prec bits."""
        key = ("entries", prec)
        if key not in self._runs:
            traj = self.exact() if prec is None else self.at(None, prec)
            self._runs[key] = None if traj is None else _entries_at(self.frame.graph, traj)
        return self._runs[key]


def _entries_at(graph, traj) -> dict:
    """Every entry of the graph -> its value at step 0 of a run."""
    return {e: v for n, q in graph.quantities.items() for e, v in zip(q.entries, traj.ctx.entries(traj.steps[0].values[n]))}


def value(traj, query: tuple, loss: str):
    """A row's value in a run (a Fraction or None in the exact run, a ball in a ball run)."""
    kind, name, flat = query
    step = traj.steps[1 if kind in ("update", "after") else 0]
    if kind == "gradient":
        a = step.adjoints.get(name)
        if a is None:
            return Fraction(0) if traj.ctx.name == "exact" else engine.arb(0)
    else:
        a = step.values[loss if kind in ("loss", "after") else name]
    return traj.ctx.entries(a)[flat]


def term_value(frame: Frame, runs: Runs, hyp, prec: int):
    """The value of the term a sign-flip hypothesis flips (`hyp.term_of`'s definition, term
    `hyp.term`), at step 0: exact where rational, else a ball at `prec`; None when it fails."""
    term = frame.graph.quantities[hyp.term_of].local[0].args[hyp.term]
    env = runs.entries(None)
    if env is not None:
        try:
            got = nm.evaluate(term, env, ExactContext())
        except FAILURES:
            got = None
        if got is not None:
            return got
    env = runs.entries(prec)
    if env is None:
        return None
    try:
        with engine.precision(prec):
            return nm.evaluate(term, env, nm.BallContext())
    except FAILURES:
        return None


class Variant(Problem):
    """A Problem whose structure is its frame's base problem's, built once for the bank: the
    engine's program (`engine.compile_spec` reads only the shapes of the data and parameters and
    the definitions, which every variant has the same) and the per-scalar graph, each with the
    variant's spec; the engine's compiled quantities (`engine.compile_quantity`, of the shapes and
    definitions alone) are compiled once per frame."""

    def __init__(self, spec, frame: Frame):
        base = frame.base.program
        shapes = {n: v.shape for n, v in (*spec.data.items(), *spec.parameters.items())}
        if spec.forward != frame.base.spec.forward or shapes != {n: base.shapes[n] for n in shapes} \
                or spec.loss != base.loss:
            raise DeriveError("a variant has the structure of its base spec", file=spec.path)
        self.spec = spec
        self.program = replace(base, spec=spec)
        self.frame = frame

    @cached_property
    def graph(self):
        g = replace(self.frame.graph, spec=self.spec)
        # the chain-rule structure (`calculus.Calculus`, kept in a graph: its formulas, closed forms)
        # is of the structure alone, which is the base graph's: worked out once for the bank
        g.__dict__["_calculus"] = self.frame.graph.__dict__.setdefault("_calculus", {})
        return g

    def value_of(self, tree, digits: int, text: str):
        compiled = self.frame.compiled
        key = (text, tree)
        if key not in compiled:
            try:
                compiled[key] = engine.compile_quantity(self.program, text, where=text, tree=tree)
            except engine.Unsupported:
                compiled[key] = None
            except DeriveError:
                compiled[key] = False
        expr = compiled[key]
        if not expr:             # the per-scalar path, or the error: as Problem's own
            return super().value_of(tree, digits, text)
        numbers = engine.solve_numbers(self.program, digits, expr.max_step, [expr], self.runs)[expr]
        return Shaped(expr.shape, tuple(numbers), expr.shape != () and expr.shape[1] == 1)


def _bounds(x) -> tuple:
    mid, rad = engine._ball_exact(x.mid()), engine._ball_exact(x.rad())
    return mid - rad, mid + rad


def rounded(x, digits: int, final: bool = False) -> decimal.Decimal | None:
    """x (a Fraction or a ball) correctly rounded to `digits` significant digits, None when the
    ball does not decide them (`final`: the midpoint's rounding then)."""
    if not isinstance(x, engine.arb):
        return decimal.Decimal(0) if x == 0 else round_fraction(x, digits)
    d = engine.decide(x, digits)
    if d is None:
        if not final or not x.is_finite():
            return None
        return round_fraction(engine._ball_exact(x.mid()), digits)
    negative, s, e = d
    return decimal.Decimal(0) if s == "0" else _digits_decimal(-int(s) if negative else int(s), e)


def exponent(x, r: decimal.Decimal, digits: int, final: bool = False) -> int | None:
    """⌊log₁₀|x|⌋ of a Fraction or ball x ≠ 0 whose rounding to `digits` digits is r: r's own,
    unless r is a power of ten, which x may be just below (None when the ball's ends disagree;
    `final`: the midpoint's)."""
    if not isinstance(x, engine.arb):
        return exponent_of(x)
    e = r.adjusted()
    if r.as_tuple().digits != (1,) + (0,) * (digits - 1):
        return e
    p = Fraction(10) ** e
    lo, hi = _bounds(abs(x))
    if lo >= p:
        return e
    if hi < p:
        return e - 1
    return exponent_of(engine._ball_exact(x.mid())) if final else None


def exponent_of(q: Fraction) -> int:
    """⌊log₁₀|q|⌋ exactly (q ≠ 0)."""
    a = abs(q)
    e = len(str(a.numerator)) - len(str(a.denominator))
    return e - 1 if Fraction(10) ** e > a else e


is_zero = engine._is_zero          # exactly 0: a Fraction, or a ball of radius 0


def midpoint(x) -> Fraction:
    """A Fraction for x: itself, or a ball's midpoint."""
    return engine._ball_exact(x.mid()) if isinstance(x, engine.arb) else x


# ---------------------------------------------------------------- worker processes
def jobs_for(n: int, least: int) -> int:
    """How many worker processes `parallel_map` uses for n tasks: 1 (in this process) below `least`
    tasks, on one core, or where processes cannot be forked; else min(cores, MAX_JOBS)."""
    jobs = min(os.cpu_count() or 1, MAX_JOBS)
    if n < least or jobs < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return jobs


_FORKED: list = []          # what a forked worker works on (inherited, not pickled)


def _worker_start() -> None:
    # a worker leaves signals to its parent: Ctrl-C reaches the parent, which stops the pool;
    # the pool's own SIGTERM at the end stops a worker without a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_DFL)


def _pool(jobs: int):
    """`jobs` forked worker processes.  What this process holds is frozen for the cyclic garbage
    collector as they fork (`gc.freeze`): a worker's collections then skip the inherited objects
    (the modules, the frame: half of the 7 % of a variant's time its collections took); unfrozen
    here afterwards unless the caller had frozen it (`derive exercise`)."""
    frozen = gc.get_freeze_count()
    gc.freeze()
    try:
        return multiprocessing.get_context("fork").Pool(jobs, initializer=_worker_start)
    finally:
        if not frozen:
            gc.unfreeze()


def _call(task):
    fn, i = task
    return fn(_FORKED[0], i)


def parallel_map(fn, state, n: int, jobs: int, start: int = 0) -> list:
    """[fn(state, i) for i in range(start, n)], by `jobs` forked worker processes (each inherits
    `state`; only i and fn(state, i) are pickled), in order: the same list for every number of jobs."""
    if jobs < 2:
        return [fn(state, i) for i in range(start, n)]
    _FORKED[:] = [state]
    try:
        pool = _pool(jobs)
        try:
            out = pool.map(_call, [(fn, i) for i in range(start, n)], chunksize=CHUNK)
            pool.close()
        finally:
            pool.terminate()
            pool.join()
        return out
    finally:
        _FORKED.clear()


def ordered(fn, state, indices, jobs: int):
    """fn(state, i) for i in `indices`, in order, as they come from `jobs` forked worker processes
    (as `parallel_map`'s); closing the generator before its end stops the workers."""
    _FORKED[:] = [state]
    try:
        pool = _pool(jobs)
    finally:
        _FORKED.clear()              # the workers have it; the parent need not keep it
    try:
        yield from pool.imap(_call, [(fn, i) for i in indices], chunksize=CHUNK)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


__all__ = ["Frame", "Runs", "jobs_for", "ordered", "parallel_map", "Variant", "WORK_BITS", "exponent", "exponent_of", "is_zero", "midpoint", "rounded", "term_value", "value"]

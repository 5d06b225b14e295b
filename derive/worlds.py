"""Recomputations for the checker: what-if runs of the engine read entry by entry (`World`),
made once per problem and cached (`Recomputations`): the truth of a quantity, and its value
under each hypothesis, with rounding, or with the author's own numbers."""
from __future__ import annotations

import random
from fractions import Fraction

from . import engine
from . import expr as ex
from . import numeric as nm
from .errors import DeriveError
from .calculus import Calculus
from .solve import Problem
from .hypotheses import Hypothesis, hypotheses_of, entry_key
from .verdicts import as_fraction
WORK_DIGITS = 60                 # working precision of every recomputation
WORK_BITS = int(WORK_DIGITS * 3.33) + 64   # the what-if runs' ball precision
RANDOM_POINTS = 4                # random points for formula equivalence


_MP: list = []


def _mp_context() -> nm.MpContext:
    """The one mpmath context of every World (making one costs 2 ms; they are all alike)."""
    if not _MP:
        _MP.append(nm.MpContext(WORK_DIGITS))
    return _MP[0]


class World:
    """One what-if run of the engine (`engine.trajectory` with an `engine.WhatIf`: rounding, an
    author's values or derivatives, a catalogued mistake), read entry by entry — values and
    derivatives ∂a/∂w at each step — as mpmath numbers at WORK_DIGITS.  Steps are computed as they
    are asked for, so a run that fails at step 2 still answers for steps 0 and 1."""

    def __init__(self, graph, program, inputs: dict, lr: Fraction | None, what_if: engine.WhatIf):
        self.graph, self.program = graph, program
        self.mp = _mp_context()
        with engine.precision(WORK_BITS) as ctx:
            self.ctx = ctx
            arrays = {name: ctx.from_fractions(program.shapes[name], qs) for name, qs in inputs.items()}
        self._steps = engine.trajectory(program, ctx, what_if, arrays, lr)
        self.states: list = []
        self._failed = None
        self._values: dict = {}
        self._derivs: dict = {}
        self._evals: dict = {}

    def state(self, k: int):
        if k < len(self.states):
            return self.states[k]
        if self._failed is not None:
            raise self._failed
        try:
            with engine.precision(WORK_BITS):
                while len(self.states) <= k:
                    self.states.append(next(self._steps))
        except (DeriveError, ZeroDivisionError, ValueError, OverflowError) as e:
            self._failed = e if isinstance(e, DeriveError) else DeriveError(str(e) or type(e).__name__)
            raise self._failed from None
        return self.states[k]

    def _mpf(self, x):
        if isinstance(x, int):
            return self.mp.ctx.mpf(x)
        m, e = x.mid().man_exp()
        return self.mp.ctx.mpf((int(m), int(e)))

    def values(self, k: int) -> dict:
        """Entry -> value at step k, for every entry of the graph (each converted when first
        read: a query reads a few of them)."""
        if k not in self._values:
            self._values[k] = _StepValues(self, self.state(k))
        return self._values[k]

    def deriv(self, k: int, a, w):
        """∂a/∂w at step k (a, w entries)."""
        key = (k, a, w)
        got = self._derivs.get(key)
        if got is None:
            got = self._derivs[key] = self._deriv(k, a, w)
        return got

    def _deriv(self, k: int, a, w):
        st = self.state(k)
        try:
            with engine.precision(WORK_BITS):
                adj = engine.entry_adjoints(self.program, self.ctx, st, entry_key(a), k)
        except (DeriveError, ZeroDivisionError, ValueError, OverflowError) as e:
            raise e if isinstance(e, DeriveError) else DeriveError(str(e) or type(e).__name__) from None
        return self._mpf(adj.get(entry_key(w), 0))

    def eval(self, query) -> list:
        """The query's entries in this world (a new list each time; each query object is
        evaluated once: the checking of every language asks again)."""
        kept = self._evals.get(id(query))
        if kept is not None and kept[0] is query:
            return list(kept[1])
        out = self._eval(query)
        self._evals[id(query)] = (query, out)
        return list(out)

    def _eval(self, query) -> list:
        env = {}
        for sym, b in query.placeholders:
            if b[0] == "value":
                env[sym] = self.values(b[2])[b[1]]
            else:
                _, a, w, k, _g = b
                env[sym] = self.deriv(k, a, w)
        # an entry that is one placeholder (a value or a derivative asked for as it is: most
        # queries) is its value; nm.evaluate gives the same, and the error of a symbol unbound
        return [env[e] if e.is_Symbol and e in env else nm.evaluate(e, env, self.mp) for e in query.entries]


class _StepValues(dict):
    """A World's values at one step, entry -> mpf: a dict whose entries are converted from the
    run's balls when first read (`[]` only: `in`, `get` and iteration see those read so far)."""

    def __init__(self, world: World, step):
        super().__init__()
        self._world, self._step = world, step
        self._entries: dict = {}

    def __missing__(self, e):
        w = self._world
        q = w.graph.quantities.get(getattr(e, "quantity", None))
        a = None if q is None else self._step.values.get(q.name)
        i = e.flat if a is not None else None
        if i is None or i >= len(q.entries) or (q.entries[i] is not e and q.entries[i] != e):
            raise KeyError(e)
        xs = self._entries.get(q.name)
        if xs is None:
            xs = self._entries[q.name] = w.ctx.entries(a)
        v = self[e] = w._mpf(xs[i])
        return v


def _random_value(k: int, name: str) -> Fraction:
    rng = random.Random(f"derive-check|{k}|{name}")
    v = Fraction(rng.randint(150, 850), 1000)
    return v if rng.random() < 0.7 else -v


def _random_one_hot(k: int, name: str, shape: tuple) -> list:
    """A random admissible value of a one-hot data name (one 1 per column; a row vector is one
    vector), row-major: the random points of a formula check respect the spec's one_hot."""
    rng = random.Random(f"derive-check|{k}|{name}|one-hot")
    r, c = shape
    out = [Fraction(0)] * (r * c)
    if r == 1:
        out[rng.randrange(c)] = Fraction(1)
        return out
    for j in range(c):
        out[rng.randrange(r) * c + j] = Fraction(1)
    return out


ROUNDING_SUBSETS = tuple(frozenset(s) for s in (
    ("forward", "local", "adjoint"), ("forward", "local"), ("forward",), ("forward", "adjoint"),
    ("local", "adjoint"), ("local",), ("adjoint",)))


# ---------------------------------------------------------------- the recomputations of one problem
class Recomputations:
    """Every run the checking of one problem needs, made once: shared by its languages, and by
    every Recomputations of the same Problem object (the checker of a claims file, the answer
    boxes of its interactive page, the blanks of a Moodle quiz), whatever their `digits` — the
    worlds, hypotheses and memoised values do not depend on them; only `truth`'s Numbers do."""

    def __init__(self, problem: Problem, digits: int):
        self.problem = problem
        self.graph = problem.graph
        self.spec = problem.spec
        self.digits = digits
        self._program = None
        shared = problem.__dict__.setdefault("_recomputations", {"worlds": {}, "memo": {}, "hyps": None})
        self._shared = shared
        self._worlds: dict = shared["worlds"]
        self._memo: dict = shared["memo"]

    def memo(self, key, compute):
        """compute() once per key: language-neutral results (a formula's values at a point,
        SymPy's verdict) shared by the checking of every language."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def hypotheses(self) -> list:
        if self._shared["hyps"] is None:
            self._shared["hyps"] = hypotheses_of(self.problem)
        return self._shared["hyps"]

    @property
    def program(self) -> engine.Program:
        """The spec compiled for the engine (a symbolic spec too: its runs are given values)."""
        if self._program is None:
            self._program = self.problem.program if not self.problem.is_symbolic else \
                engine.compile_spec(self.spec, symbolic=True)
        return self._program

    def inputs_at(self, point) -> dict:
        """Input values (name -> Fractions, row-major): the spec's, with the entries of `point`
        (a frozenset of entries, k) random."""
        spec = self.spec
        values = {n: list(v.entries) for table in (spec.data, spec.parameters) for n, v in table.items()}
        randomized, k = point if point is not None else (frozenset(), 0)
        for q in self.graph.quantities.values():
            if q.kind == "forward":
                continue
            vals = values.setdefault(q.name, [None] * len(q.entries))
            for i, e in enumerate(q.entries):
                if e in randomized or vals[i] is None:
                    vals[i] = _random_value(k, e.name)
            if q.name in spec.one_hot and any(e in randomized for e in q.entries):
                values[q.name] = _random_one_hot(k, q.name, q.shape)
        return values

    def world(self, key, point=None, what_if: engine.WhatIf | None = None):
        """A cached World at the spec's values (point None) or at a random point."""
        full = (key, point)
        if full not in self._worlds:
            lr = self.spec.learning_rate
            if lr is None:
                lr = abs(_random_value(point[1] if point else 0, "learning rate"))
            self._worlds[full] = World(self.graph, self.program, self.inputs_at(point), lr,
                                       what_if or engine.WhatIf())
        return self._worlds[full]

    def hyp_world(self, hyp: Hypothesis, point=None):
        return self.world(("hyp", hyp.key), point, hyp.world)

    def true_world(self, point=None):
        return self.world(("true",), point)

    def truth(self, query) -> tuple[list, list]:
        """(true values as Fractions, Numbers at --digits) of a query at the spec's values: the
        engine's exact values where rational, else the true world's at WORK_DIGITS; the Numbers
        certified by the engine."""
        numbers = nm.query_numbers(self.graph, self.program, query, self.digits, self.problem.runs)
        approx = self.true_world().eval(query) if any(n.exact is None for n in numbers) else ()
        values = [n.exact if n.exact is not None else as_fraction(a)
                  for n, a in zip(numbers, approx or [None] * len(numbers))]
        return values, numbers

    def hyp_alt(self, hyp: Hypothesis, query, point=None, truth=None) -> list | None:
        """The claimed quantity recomputed under a hypothesis (Fractions), or None if it fails."""
        try:
            if hyp.transform is not None:
                t = truth if truth is not None else [as_fraction(x) for x in self.true_world(point).eval(query)]
                return hyp.transform(t)
            if hyp.term_of is not None:
                if not (isinstance(query.tree, ex.Name) and query.tree.id == hyp.term_of):
                    return None
                q = self.graph.quantities[hyp.term_of]
                w = self.true_world(point)
                term = nm.evaluate(q.local[0].args[hyp.term], w.values(0), w.mp)
                t = truth if truth is not None else [as_fraction(x) for x in w.eval(query)]
                return [t[0] - 2 * as_fraction(term)]
            return [as_fraction(x) for x in self.hyp_world(hyp, point).eval(query)]
        except (DeriveError, ZeroDivisionError, ValueError, OverflowError, KeyError):
            return None


    def override_world(self, overrides: dict):
        values, segments = [], []
        for key, (_idx, v, _verdict) in overrides.items():
            if key[0] == "value":
                _, e, k = key
                values.append(((*entry_key(e), k), v))
            else:
                _, a, b, k = key
                segments.append(((entry_key(a), entry_key(b), k), v))
        sig = tuple(sorted((str(k), str(v[1])) for k, v in overrides.items()))
        return self.world(("override", sig), None, engine.WhatIf(values=tuple(values), segments=tuple(segments)))



# ---------------------------------------------------------------- the rounded chain of a rounding verdict
MAX_CHAIN = 16                   # intermediate values shown at most (the nearest to the claim)


def rounding_world_key(n: int, subset) -> tuple:
    """The cache key of the hand calculation at n digits that rounds `subset` (ROUNDING_SUBSETS)."""
    return ("round", n, frozenset(subset))


def rounded_chain(rc: Recomputations, query, n: int, subset) -> list:
    """The intermediate values of the hand calculation at n significant digits that rounds
    `subset` ("forward" values, "local" derivatives, "adjoint"s) and reproduces a claim: one
    (kind, entry, wrt, step, value) per intermediate value the claimed quantity is computed from,
    in the order of the calculation (`wrt` None for a forward value; for a local derivative ∂c/∂e
    and an adjoint ∂a/∂e, `entry` is c or a and `wrt` e).  Values as Fractions, already rounded
    to n digits (as the run rounds them; a local derivative: its formula at the run's values)."""
    g = rc.graph
    w = rc.world(rounding_world_key(n, subset), None,
                 engine.WhatIf(round_digits=n, rounding=frozenset(subset)))
    order = {e: i for i, e in enumerate(g.order)}
    values, derivs = [], []
    for _sym, b in query.placeholders:
        if b[0] == "value":
            values.append((b[1], b[2]))
        else:
            _, a, wrt, k, _g = b
            derivs.append((a, wrt, k))
    out: list = []
    seen: set = set()

    def forward(e, k, include_self: bool):
        calc = Calculus(g, e)
        for x in sorted(calc.reaches, key=lambda x: order.get(x, 0)):
            if (x == e and not include_self) or g.quantities[x.quantity].kind != "forward":
                continue
            if ("forward", x, None, k) not in seen:
                seen.add(("forward", x, None, k))
                out.append(("forward", x, None, k, as_fraction(w.values(k)[x])))

    if "forward" in subset:
        for e, k in values:
            forward(e, k, include_self=False)
        for a, _wrt, k in derivs:
            forward(a, k, include_self=False)
    for a, wrt, k in derivs:
        calc = Calculus(g, a)
        above = _between(g, calc, wrt)
        if "local" in subset:
            vals = w.values(k)
            for e in sorted(above, key=lambda x: order.get(x, 0)):
                for c in calc.consumers(e):
                    if c in above or c == a:
                        ld = g.local_derivatives[(c, e)]
                        if ("d", c, e, k) in seen:
                            continue
                        seen.add(("d", c, e, k))
                        out.append(("local", c, e, k, as_fraction(nm.evaluate(ld.formula, vals, w.mp))))
        if "adjoint" in subset:
            for e in sorted(above, key=lambda x: -order.get(x, 0)):
                if e != a and ("d", a, e, k) not in seen:
                    seen.add(("d", a, e, k))
                    out.append(("adjoint", a, e, k, as_fraction(w.deriv(k, a, e))))
    # the run's numbers are balls around the rounded decimals: read back as those decimals
    return [tuple(x[:4]) + (Fraction(nm.round_fraction(Fraction(x[4]), n)) if x[4] else Fraction(0),)
            for x in out[-MAX_CHAIN:]]


def _between(g, calc, wrt) -> set:
    """The entries on the paths from `wrt` up to the calculation's target (both included)."""
    if wrt not in calc.reaches:
        return set()
    up = {wrt}
    stack = [wrt]
    while stack:
        e = stack.pop()
        for c in calc.consumers(e):
            if c not in up:
                up.add(c)
                stack.append(c)
    return up

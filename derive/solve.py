"""The Python API: load a problem, solve it, evaluate quantities, verify gradients.

    >>> import derive
    >>> problem = derive.load("two-two-two")          # a built-in id or a spec path
    >>> sol = problem.solve(digits=10)
    >>> sol.gradients["w6"].text
    '0.02813366886'
    >>> problem.eval("dE_total/dout_o1", digits=6)[0].values[0].text
    '0.248598'

`Solution` holds every number the handouts print, correctly rounded, keyed by what it is:
('value', entry, k), ('local', of, wrt, k), ('adjoint', entry, k); plus the calculus objects.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import calculus as calc
from . import graph as gr
from . import numeric as nm
from .quantity import make_query
from .spec import Spec, load as load_spec


@dataclass(frozen=True)
class Shaped:
    """Numbers in a quantity's shape: a scalar, a flat list (column vector) or rows."""
    shape: tuple
    values: tuple           # Number per entry, row-major
    flat: bool = False

    @property
    def text(self) -> str:
        """Plain text: a number, [a, b] for a flat list, [[a, b], [c, d]] for rows."""
        nested = self.nested()
        if isinstance(nested, str):
            return nested
        if not isinstance(nested[0], list):
            return "[" + ", ".join(nested) + "]"
        return "[" + ", ".join("[" + ", ".join(r) + "]" for r in nested) + "]"

    @property
    def shown_exactly(self) -> bool:
        return all(v.shown_exactly for v in self.values)

    def nested(self):
        texts = [v.text for v in self.values]
        if self.shape == ():
            return texts[0]
        r, c = self.shape
        if self.flat and c == 1:
            return texts
        return [texts[i * c:(i + 1) * c] for i in range(r)]


@dataclass(frozen=True)
class Answer:
    quantity: str
    value: Shaped | None     # None in a symbolic spec
    exact: str | None        # the exact form, where short
    formula: sp.Expr | None  # for derivatives: the formula in named quantities

    @property
    def values(self):
        return self.value.values


class Problem:
    def __init__(self, spec: Spec):
        self.spec = spec
        self.graph = gr.build(spec)
        self.calculus = calc.Calculus(self.graph)

    @property
    def is_symbolic(self) -> bool:
        return self.spec.is_symbolic

    @property
    def warnings(self) -> tuple:
        """The spec's warnings, plus: a parameter in `update` that the loss does not depend on."""
        out = list(self.spec.warnings)
        for name in self.spec.update:
            if not any(e in self.calculus.reaches for e in self.graph.quantities[name].entries):
                out.append(f"{self.spec.path}: train.update: {self.spec.loss} does not depend on {name}; "
                           f"d{self.spec.loss}/d{name} = 0 and {name} does not change")
        return tuple(out)

    def evaluator(self, steps: int | None = None) -> nm.Evaluator:
        steps = self.spec.steps if steps is None else steps
        cache = self.__dict__.setdefault("_evaluators", {})
        if steps not in cache:
            cache[steps] = nm.Evaluator(self.graph, steps)
        return cache[steps]

    def solve(self, digits: int = 10, steps: int | None = None) -> "Solution":
        from .errors import LimitError
        from .spec import MAX_STEPS
        steps = self.spec.steps if steps is None else steps
        if not 0 <= steps <= MAX_STEPS:
            raise LimitError(f"steps must be between 0 and {MAX_STEPS}, not {steps}", file=self.spec.path)
        return Solution(self, digits, steps)

    def eval(self, *quantities: str, digits: int = 10) -> list[Answer]:
        answers = []
        for text in quantities:
            q = make_query(text, self.graph, where=text if len(text) <= 60 else text[:59] + "…")
            if self.is_symbolic:
                answers.append(Answer(text, None, None, _symbolic_formula(self, q)))
                continue
            ev = self.evaluator(max(self.spec.steps, q.max_step))
            numbers = ev.answer(q, digits)
            exact = _exact_text(numbers, q) or self._closed_form(q)
            answers.append(Answer(text, Shaped(q.shape, tuple(numbers), q.flat), exact,
                                  _symbolic_formula(self, q)))
        return answers

    def _closed_form(self, q) -> str | None:
        """For NAME at the start: its definition with exact (rational) inputs, where short,
        e.g. out_h1 = sigmoid(83/200)."""
        from . import expr as ex
        if not isinstance(q.tree, ex.Name):
            return None
        quantity = self.graph.quantities[q.tree.id]
        if quantity.kind != "forward" or not quantity.is_scalar:
            return None
        exact_run = self.evaluator().run_in("exact")
        values = exact_run.states[0].values
        local = quantity.local[0]
        subs = {}
        for s in local.free_symbols:
            v = values.get(s)
            if v is None:
                return None
            subs[s] = sp.Rational(v.numerator, v.denominator)
        closed = local.xreplace(subs)
        if closed.is_Rational:
            return None  # the value itself is exact and already shown
        text = str(closed)
        return text if len(text) <= 60 else None

    def verify(self, digits: int = 60):
        from .verify import verify
        return verify(self, digits)


def _exact_text(numbers, q) -> str | None:
    if not all(n.is_exact for n in numbers):
        return None
    texts = [n.exact_text() for n in numbers]
    if all(nm.is_short_exact(n.exact, len(n.text)) and "e" not in n.text for n in numbers):
        return None  # the decimals shown already are exact
    if sum(len(t) for t in texts) > 60:
        return None
    return texts[0] if q.shape == () else str(texts)


def _symbolic_formula(problem: Problem, q) -> sp.Expr | None:
    """For a lone derivative dA/dB of scalars: its formula in named quantities."""
    from . import expr as ex
    t = q.tree
    if isinstance(t, ex.Deriv) and t.step == 0:
        A, B = problem.graph.quantities[t.of], problem.graph.quantities[t.wrt]
        if A.is_scalar and B.is_scalar:
            return calc.Calculus(problem.graph, A.entries[0]).formula(B.entries[0])
    return None


LARGE_SPEC_VALUES = 5_000   # measured here: 3 321 parameters solve in about 9 s; 20 000 take minutes
notify = None               # set by the CLI: a function that prints one line on stderr


def load(path_or_id: str) -> Problem:
    """A `Problem` from a spec file path or a built-in id (see `derive list`)."""
    spec = load_spec(path_or_id)
    n = sum(len(v.entries) for v in (*spec.data.values(), *spec.parameters.values()))
    if n > LARGE_SPEC_VALUES and notify is not None:
        notify(f"{spec.path}: {n} values; a network this large can take a minute or more")
    return Problem(spec)


class Solution:
    """Every number of a worked solution, correctly rounded to `digits` significant digits."""

    def __init__(self, problem: Problem, digits: int, steps: int):
        self.problem = problem
        self.spec = problem.spec
        self.graph = problem.graph
        self.calculus = problem.calculus
        self.digits = digits
        self.steps = steps
        self.numbers: dict = {} if problem.is_symbolic else self._all_numbers()

    # ---------------------------------------------------------------- all numbers in one query
    def _keys(self):
        g = self.graph
        keys = []
        for k in range(self.steps + 1):
            keys += [("value", e, k) for e in g.order]
            keys += [("local", of, wrt, k) for (of, wrt) in g.local_derivatives]
            keys += [("adjoint", e, k) for e in g.order]
        return keys

    def _all_numbers(self) -> dict:
        keys = self._keys()

        def query(run):
            out = []
            for key in keys:
                kind, k = key[0], key[-1]
                st = run.states[k]
                if kind == "value":
                    out.append(st.values[key[1]])
                elif kind == "local":
                    out.append(st.local[(key[1], key[2])])
                else:
                    out.append(st.adjoint[key[1]])
            return out

        numbers = self.problem.evaluator(self.steps).answer(query, self.digits)
        return dict(zip(keys, numbers))

    # ---------------------------------------------------------------- lookups
    def value(self, entry, k: int = 0) -> nm.Number:
        return self.numbers[("value", entry, k)]

    def local(self, ld, k: int = 0) -> nm.Number:
        return self.numbers[("local", ld.of, ld.wrt, k)]

    def adjoint(self, entry, k: int = 0) -> nm.Number:
        return self.numbers[("adjoint", entry, k)]

    def shaped(self, name: str, kind: str = "value", k: int = 0) -> Shaped:
        q = self.graph.quantities[name]
        vals = tuple(self.numbers[(kind, e, k)] for e in q.entries)
        flat = q.shape != () and q.shape[1] == 1 and _written_flat(self.spec, name)
        return Shaped(q.shape, vals, flat)

    # ---------------------------------------------------------------- the summary
    @property
    def forward(self) -> dict:
        return {d.name: self.shaped(d.name) for d in self.spec.forward}

    @property
    def loss(self) -> nm.Number:
        return self.value(self.graph.loss_entry, 0)

    @property
    def gradients(self) -> dict:
        return {p: self.shaped(p, "adjoint", 0) for p in self.graph.parameters}

    @property
    def updated(self) -> dict:
        """Every parameter after the last step (after `steps` steps; at the start when steps = 0)."""
        return {p: self.shaped(p, "value", self.steps) for p in self.graph.parameters}

    @property
    def loss_after(self) -> nm.Number:
        """The loss after the last step."""
        return self.value(self.graph.loss_entry, self.steps)

    @property
    def history(self) -> list:
        return [self.value(self.graph.loss_entry, k) for k in range(self.steps + 1)]

    def to_json(self) -> dict:
        def j(s):
            return s.nested() if isinstance(s, Shaped) else s.text
        if self.problem.is_symbolic:
            return {
                "title": self.spec.title, "digits": self.digits, "symbolic": True,
                "forward": {d.name: str(self.graph.quantities[d.name].local[0]) if
                            self.graph.quantities[d.name].is_scalar else
                            [str(x) for x in self.graph.quantities[d.name].local]
                            for d in self.spec.forward},
                "loss": self.spec.loss,
                "gradients": {str(e): str(gd.formula) for e, gd in self.calculus.gradients().items()},
            }
        return {
            "title": self.spec.title,
            "digits": self.digits,
            "forward": {n: j(v) for n, v in self.forward.items()},
            "loss": j(self.loss),
            "gradients": {n: j(v) for n, v in self.gradients.items()},
            "updated": {n: j(v) for n, v in self.updated.items()},
            "loss_after": j(self.loss_after),
            "history": [j(v) for v in self.history],
        }


def _written_flat(spec: Spec, name: str) -> bool:
    """n×1 values are flat lists, except inputs the spec itself wrote as rows of one."""
    for table in (spec.data, spec.parameters):
        if name in table:
            return table[name].flat_list
    return True

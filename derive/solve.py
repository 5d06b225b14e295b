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
from functools import cached_property

import sympy as sp

from . import calculus as calc
from . import engine
from . import expr as ex
from . import graph as gr
from . import numeric as nm
from .quantity import make_query
from .errors import DeriveError, LimitError
from .spec import MAX_STEPS, Spec, load as load_spec
from .summary import Shaped, numeric_json, shaped, written_flat
from .verify import verify as _verify


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
    """A loaded spec.  Its numbers come from `engine` (whole definitions, certified balls); the
    per-scalar SymPy graph and its calculus, the source of printed formulas and of the
    per-factor numbers of a worked solution, are built on first use."""

    def __init__(self, spec: Spec):
        self.spec = spec
        if spec.is_symbolic:
            self.graph  # noqa: B018  (a symbolic spec is all formulas: check it now)
        else:
            self.program = engine.compile_spec(spec)

    @cached_property
    def runs(self) -> dict:
        """The engine's runs made so far (exact, and per precision), shared by every query."""
        return {}

    @cached_property
    def graph(self) -> gr.Graph:
        return gr.build(self.spec)

    @cached_property
    def calculus(self) -> calc.Calculus:
        return calc.Calculus(self.graph)

    def numbers(self, digits: int, steps: int) -> engine.Numbers:
        """What `derive solve` prints — `forward`, `gradients`, `updated` (after the last step)
        and the loss `history` — every number exact or certified to `digits` digits, after
        `steps` gradient steps.  Not limited to MAX_STEPS (the limit of `solve`, `--steps` and
        NAME@k): for long runs (a network of scalars replays the engine's tape)."""
        cache = self.__dict__.setdefault("_numbers", {})
        if (digits, steps) not in cache:
            cache[(digits, steps)] = engine.solution_numbers(self.program, digits, steps, self.runs)
        return cache[(digits, steps)]

    @property
    def is_symbolic(self) -> bool:
        return self.spec.is_symbolic

    @property
    def warnings(self) -> tuple:
        """The spec's warnings, plus: a parameter in `update` that the loss does not depend on."""
        out = list(self.spec.warnings)
        for name in engine.unreached_parameters(self.spec):
            out.append(f"{self.spec.path}: train.update: {self.spec.loss} does not depend on {name}; "
                           f"d{self.spec.loss}/d{name} = 0 and {name} does not change")
        return tuple(out)

    def solve(self, digits: int = 10, steps: int | None = None) -> "Solution":
        steps = self.spec.steps if steps is None else steps
        if not 0 <= steps <= MAX_STEPS:
            raise LimitError(f"steps must be between 0 and {MAX_STEPS}, not {steps}", file=self.spec.path)
        return Solution(self, digits, steps)

    def eval(self, *quantities: str, digits: int = 10) -> list[Answer]:
        """Each quantity's value, correctly rounded (see `value_of`), its exact form where short,
        and for dA/dB of scalars its formula; a symbolic spec gets the formulas only."""
        answers = []
        for text in quantities:
            where = text if len(text) <= 60 else text[:59] + "…"   # messages name it by this
            if self.is_symbolic:
                q = make_query(text, self.graph, where=where)
                answers.append(Answer(text, None, None, _symbolic_formula(self, q.tree)))
                continue
            try:
                tree = ex.parse_quantity(text, lambda n: n in self.program.shapes)
            except DeriveError as e:
                raise e.located(key=where) from None
            value = self.value_of(tree, digits, where)
            small = self.program.work <= engine.EXACT_LIMIT   # the SymPy graph is cheap
            exact = _exact_text(value.values, value.shape) or (self._closed_form(tree) if small else None)
            answers.append(Answer(text, value, exact, _symbolic_formula(self, tree) if small else None))
        return answers

    def value_of(self, tree, digits: int, text: str) -> Shaped:
        """The value of a parsed quantity (a tree with AtStep and Deriv leaves; `text` names it in
        messages), correctly rounded: by the engine for every NAME, NAME@k and dA/dB of a scalar
        definition A and expressions over them, else per scalar (a Jacobian-like dA/dB)."""
        try:
            expr = engine.compile_quantity(self.program, text, where=text, tree=tree)
        except engine.Unsupported:
            q = make_query(text, self.graph, where=text, tree=tree)
            numbers = nm.query_numbers(self.graph, self.program, q, digits, self.runs)
            return Shaped(q.shape, tuple(numbers), q.flat)
        numbers = engine.solve_numbers(self.program, digits, expr.max_step, [expr], self.runs)[expr]
        return Shaped(expr.shape, tuple(numbers), expr.shape != () and expr.shape[1] == 1)

    def _closed_form(self, tree) -> str | None:
        """For NAME at the start: its definition with exact (rational) inputs, where short,
        e.g. out_h1 = sigmoid(83/200)."""
        if not isinstance(tree, ex.Name):
            return None
        quantity = self.graph.quantities[tree.id]
        if quantity.kind != "forward" or not quantity.is_scalar:
            return None
        start = engine.cached_run(self.runs, self.program, "exact", 0).steps[0]
        local = quantity.local[0]
        subs = {}
        for s in local.free_symbols:
            a = start.values.get(s.quantity)
            v = None if a is None else a.data[0 if not s.index else s.index[0] * s.qshape[1] + s.index[1]]
            if v is None:
                return None
            subs[s] = sp.Rational(v.numerator, v.denominator)
        closed = local.xreplace(subs)
        if closed.is_Rational:
            return None  # the value itself is exact and already shown
        text = str(closed)
        return text if len(text) <= 60 else None

    def verify(self, digits: int = 60):
        return _verify(self, digits)


def _exact_text(numbers, shape: tuple) -> str | None:
    if not all(n.is_exact for n in numbers):
        return None
    texts = [n.exact_text() for n in numbers]
    if all(nm.is_short_exact(n.exact, len(n.text)) and "e" not in n.text for n in numbers):
        return None  # the decimals shown already are exact
    if sum(len(t) for t in texts) > 60:
        return None
    return texts[0] if shape == () else str(texts)


def _symbolic_formula(problem: Problem, t) -> sp.Expr | None:
    """For a lone derivative dA/dB of scalars: its formula in named quantities."""
    if isinstance(t, ex.Deriv) and t.step == 0:
        A, B = problem.graph.quantities[t.of], problem.graph.quantities[t.wrt]
        if A.is_scalar and B.is_scalar:
            return calc.Calculus(problem.graph, A.entries[0]).formula(B.entries[0])
    return None


notify = None               # set by the CLI: a function that prints one line on stderr


def load(path_or_id: str) -> Problem:
    """A `Problem` from a spec file path or a built-in id (see `derive list`)."""
    problem = Problem(load_spec(path_or_id))
    note = None if problem.is_symbolic else engine.slow_note(problem.program, problem.spec.steps)
    if note is not None and notify is not None:
        notify(note)
    return problem


# Jupyter's display of a Solution: the views are derive.notebook's (it needs the renderers, which
# import this module), registered when the API is first used (derive/__init__.py loads it).
VIEWS: dict = {}


class Solution:
    """Every number of a worked solution, correctly rounded to `digits` significant digits.

    The summary (forward values, loss, gradients, updated parameters, loss history) comes from
    the engine; `numbers` — every entry, local derivative and adjoint at every step, keyed
    ('value', entry, k), ('local', of, wrt, k), ('adjoint', entry, k) — is computed on first use
    (a worked solution needs it; `derive solve` does not)."""

    def __init__(self, problem: Problem, digits: int, steps: int):
        self.problem = problem
        self.spec = problem.spec
        self.digits = digits
        self.steps = steps
        self.summary = None if problem.is_symbolic else problem.numbers(digits, steps)

    @property
    def graph(self):
        return self.problem.graph

    @property
    def calculus(self):
        return self.problem.calculus

    # ---------------------------------------------------------------- all numbers in one query
    def _keys(self):
        g = self.graph
        keys = []
        for k in range(self.steps + 1):
            keys += [("value", e, k) for e in g.order]
            keys += [("local", of, wrt, k) for (of, wrt) in g.local_derivatives]
            keys += [("adjoint", e, k) for e in g.order]
        return keys

    @cached_property
    def numbers(self) -> dict:
        if self.problem.is_symbolic:
            return {}
        return nm.entry_numbers(self.graph, self.problem.program, self._keys(), self.digits, self.steps,
                                self.problem.runs)

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
        flat = q.shape != () and q.shape[1] == 1 and written_flat(self.spec, name)
        return Shaped(q.shape, vals, flat)

    # ---------------------------------------------------------------- the summary (engine)
    def _summary_shaped(self, name: str, values: tuple) -> Shaped:
        return shaped(self.spec, self.problem.program.shapes[name], name, values)

    @property
    def forward(self) -> dict:
        return {n: self._summary_shaped(n, v) for n, v in self.summary.forward.items()}

    @property
    def loss(self) -> nm.Number:
        return self.summary.history[0]

    @property
    def gradients(self) -> dict:
        return {p: self._summary_shaped(p, v) for p, v in self.summary.gradients.items()}

    @property
    def updated(self) -> dict:
        """Every parameter after the last step (after `steps` steps; at the start when steps = 0)."""
        return {p: self._summary_shaped(p, v) for p, v in self.summary.updated.items()}

    @property
    def loss_after(self) -> nm.Number:
        """The loss after the last step."""
        return self.summary.history[self.steps]

    @property
    def history(self) -> list:
        return list(self.summary.history)

    # ---------------------------------------------------------------- Jupyter
    def _view(self, name: str, *args):
        view = VIEWS.get(name)
        return None if view is None else view(self, *args)

    def _repr_markdown_(self):
        """The worked solution as Markdown with $…$ and $$…$$ math (Jupyter renders it)."""
        return self._view("markdown")

    def _repr_html_(self):
        """The body of the interactive page: answer boxes, steps to open, math for Jupyter's MathJax."""
        return self._view("html")

    @property
    def sections(self) -> tuple:
        """The worked solution's sections (the network, given, forward pass, loss, …), each shown by
        Jupyter as Markdown (`notebook.Part`)."""
        return self._view("sections") or ()

    def formula(self, quantity: str):
        """The derivation of one quantity as a displayed formula (`notebook.Formula`, whose
        `_repr_latex_` Jupyter shows): `sol.formula("dE_total/dw6")`, `"net_h1"`, `"w6@1"`."""
        return self._view("formula", quantity)

    def to_json(self) -> dict:
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
        return numeric_json(self.spec, self.problem.program.shapes, self.summary)

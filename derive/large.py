"""Worked solutions of large networks: the matrix form and a stated selection of entries.

A numeric spec with matrix quantities and more than LARGE_ENTRIES parameter entries (a 784-12-10
MLP has 9 550) is rendered without the per-scalar SymPy graph, which would take minutes to build
and thousands of pages to print.  The handout then shows

- the network, the given numbers and the forward pass with the definitions in matrix form, the
  values of a matrix written out only when it has at most SHOWN_ENTRIES entries (else its shape);
- for every parameter (or those named by `--only`), the matrix-form chain rule of
  `matrixform.spec_rules` (dE/dW2 = dE/dZ2 · A1ᵀ, …), its numbers when the gradient is small;
- for a stated selection of scalar entries — by default the first entry of each parameter
  (W1[1,1], b1[1], …), or those named by `--only` (`W1[2,3]`, `b2[4]`; a bare parameter name
  picks its first entry) — the entry of that rule written out with the engine's numbers
  (∂E/∂W1₂₃ = ∂E/∂z1₂ · x₃ = … ≈ …), and its update;
- the loss after the update, and the loss history.

Every number comes from the engine (`engine.certified`: exact or certified to the printed
digits); `Problem.graph` is never touched, so nothing per scalar is built.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from . import engine
from . import expr as ex
from . import matrixform as mf
from . import printer as pr
from .diagram import build_diagram
from .errors import DeriveError
from .escape import CJK
from .graph import outline
from .handout import After, Row, Section, Setting, Step, Update, changing, selected_parameters
from .layout import layout, one, pack, paren, relation, shown
from .rounding import Number
from .sections import Backward
from .summary import shaped

LARGE_ENTRIES = 30      # parameter entries above which a worked solution shows the matrix form and a selection
SHOWN_ENTRIES = 12      # a matrix's values are written out when it has at most this many entries
ENTRY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[\s*(\d+)\s*(?:,\s*(\d+)\s*)?\]")


@dataclass(frozen=True)
class Pick:
    """A selected scalar entry of a parameter: `index` 0-based (i, j), () for a scalar."""
    parameter: str
    index: tuple

    def label(self) -> str:
        """As `--only` and `derive verify` write it, 1-based: W1[2,3]."""
        if not self.index:
            return self.parameter
        return f"{self.parameter}[{self.index[0] + 1},{self.index[1] + 1}]"


def parameter_entries(problem) -> int:
    shapes = problem.program.shapes
    return sum(_size(shapes[p]) for p in problem.spec.parameters)


def is_large(problem) -> bool:
    """A numeric spec with matrices and more than LARGE_ENTRIES parameter entries."""
    if problem.is_symbolic:
        return False
    return any(s != () for s in problem.program.shapes.values()) and parameter_entries(problem) > LARGE_ENTRIES


def _size(shape) -> int:
    return 1 if shape == () else shape[0] * shape[1]


def picks(spec, shapes: dict, only) -> tuple:
    """(parameters selected, Picks): every parameter and its first entry by default; with
    `only`, the parameters named (NAME or NAME[i,j] / NAME[i], 1-based) and those entries."""
    params = list(spec.parameters)
    if not only:
        return params, tuple(Pick(p, (0, 0) if shapes[p] else ()) for p in params)
    matches = [(item, ENTRY.fullmatch(item)) for item in only]
    names = [m.group(1) if m else item for item, m in matches]
    selected = selected_parameters(spec, params, names)
    out: list = []
    for (item, m), name in zip(matches, names):
        shape = shapes[name]
        if m is None:
            pick = Pick(name, (0, 0) if shape else ())
        else:
            pick = Pick(name, _index(item, m, shape))
        if pick not in out:
            out.append(pick)
    return selected, tuple(out)


def _index(item: str, m, shape: tuple) -> tuple:
    i, j = int(m.group(2)), m.group(3)
    if shape == ():
        raise DeriveError(f"--only: {item!r}: {m.group(1)} is a scalar (write {m.group(1)})")
    r, c = shape
    if j is None:
        if r != 1 and c != 1:
            raise DeriveError(f"--only: {item!r}: {m.group(1)} is a {r}×{c} matrix: write "
                              f"{m.group(1)}[i,j]")
        i, j = (i, 1) if c == 1 else (1, i)
    else:
        j = int(j)
    if not (1 <= i <= r and 1 <= j <= c):
        raise DeriveError(f"--only: {item!r} is outside {m.group(1)}, a {r}×{c} matrix "
                          f"(entries are counted from 1)")
    return (i - 1, j - 1)


def _distances(spec) -> dict:
    """Name -> steps on the shortest way to the loss, through the definitions."""
    dist = {spec.loss: 0}
    for d in reversed(spec.forward):
        if d.name in dist:
            for u in ex.ordered_names(d.tree):
                dist[u] = min(dist.get(u, 10 ** 9), dist[d.name] + 1)
    return dist


# ---------------------------------------------------------------- numbers
class _Numbers:
    """The engine's numbers, asked for by (kind, name, k, flat index or None for all entries)."""

    def __init__(self, problem, digits: int, steps: int):
        self.problem = problem
        self.program = problem.program
        self.digits = digits
        self.steps = steps
        self.keys: set = set()
        self.got: dict = {}

    def want(self, kind: str, name: str, k: int = 0, index: int | None = None):
        key = (kind, name, k, index)
        if key not in self.got:
            self.keys.add(key)
        return key

    def resolve(self):
        pending = sorted(self.keys - set(self.got), key=repr)
        if not pending:
            return
        program = self.program

        def values_of(traj, keys):
            out = {}
            for kind, name, k, index in keys:
                st = traj.steps[k]
                arr = (st.values if kind == "value" else st.adjoints).get(name)
                if arr is None:   # an adjoint of a name the loss does not depend on
                    zero = traj.ctx.const(Fraction(0))
                    arr = traj.ctx.full(program.shapes[name], zero) if program.shapes[name] else zero
                entries = traj.ctx.entries(arr)
                out[(kind, name, k, index)] = entries if index is None else [entries[index]]
            return out

        self.got.update(engine.certified(program, self.digits, self.steps, pending, values_of,
                                         self.problem.runs))
        self.keys.clear()

    def __getitem__(self, key) -> tuple:
        self.resolve()
        return self.got[key]


# ---------------------------------------------------------------- the context
class LargeBuilder:
    """The context of a large network's worked solution (the same keys as `render.Builder`'s,
    plus `large`)."""

    def __init__(self, problem, solution, *, lang: str, only: list | None, mode: str):
        self.p = problem
        self.spec = problem.spec
        self.sol = solution
        self.shapes = problem.program.shapes
        self.quantities = outline(self.spec, self.shapes)
        self.names = pr.display_names(self.spec, self.quantities)
        self.exercise = mode == "exercise"
        self.loss = self.spec.loss
        self.L = self.names[self.loss]
        selected, self.picks = picks(self.spec, self.shapes, only)
        dist = _distances(self.spec)
        order = list(self.spec.parameters)
        self.selected = sorted(selected, key=lambda n: (dist.get(n, 10 ** 9), order.index(n)))
        self.rules = {r.wrt: r for r in mf.spec_rules(self.spec, self.shapes)}
        self.changes = frozenset(changing(self.spec))
        self.setting = Setting(problem, solution, lang, mode, solution.digits, self.names, False, self.exercise,
                               False, self.loss, self.L, tuple(self.selected), self.rules, bool(self.rules),
                               self.changes, {})
        self.lang = lang
        self.mode = mode
        self.digits = solution.digits
        self.num = _Numbers(problem, solution.digits, solution.steps)

    # ---------------------------------------------------------------- helpers
    def small(self, name: str) -> bool:
        return _size(self.shapes[name]) <= SHOWN_ENTRIES

    def shaped(self, kind: str, name: str, k: int = 0):
        return shaped(self.spec, self.shapes[name], name, self.num[(kind, name, k, None)])

    def entry(self, kind: str, name: str, index: tuple, k: int = 0) -> Number:
        return self.num[(kind, name, k, self._flat(name, index))][0]

    def edisp(self, name: str, index: tuple) -> str:
        return pr.with_index(self.names[name], index, self.shapes[name])

    def shape_text(self, name: str) -> str:
        s = self.shapes[name]
        return f"{s[0]}\\times {s[1]}" if s else ""

    def value_or_shape(self, name: str) -> str:
        """The value written out when it is small, else '' (the handout gives its shape)."""
        return pr.shaped_latex(self.shaped("value", name)) if self.small(name) else ""

    def want_all(self):
        """Ask the engine, in one go, for every number the handout prints."""
        w = self.num.want
        for name in self.shapes:
            if self.small(name) or name == self.loss:
                w("value", name, 0)
        if self.exercise:
            return
        for name in self.selected:
            if self.small(name):
                w("adjoint", name, 0)
                if self.sol.steps >= 1:
                    w("value", name, 1)
        for pick in self.picks:
            flat = self._flat(pick.parameter, pick.index)
            w("adjoint", pick.parameter, 0, flat)
            w("value", pick.parameter, 0, flat)
            if self.sol.steps >= 1:
                w("value", pick.parameter, 1, flat)
            for kind, name, index in self._factor_entries(pick):
                w(kind, name, 0, self._flat(name, index))
        if self.sol.steps >= 1:
            w("value", self.loss, 1)

    def _flat(self, name: str, index: tuple) -> int:
        shape = self.shapes[name]
        return 0 if not index or not shape else index[0] * shape[1] + index[1]

    # ---------------------------------------------------------------- given
    def given(self) -> dict:
        data, params = [], []
        for name, q in self.quantities.items():
            if q.kind == "forward":
                continue
            value = self.value_or_shape(name)
            row = Row(name, self.names[name], value, self.shape_text(name), q.shape != ())
            (params if q.kind == "parameter" else data).append(row)

        def items(rows):
            return pack([f"{r.sym} = {r.value}" if r.value else f"{r.sym}: {r.shape}" for r in rows if r.matrix])

        lr = self.spec.learning_rate
        return {
            "data": tuple(data),
            "parameters": tuple(params),
            "data_matrices": items(data),
            "parameter_matrices": items(params),
            "learning_rate": "\\eta" if lr is None else pr.fraction(lr),
            "updated": tuple(self.names[n] for n in self.spec.update),
            "fixed": tuple(self.names[n] for n in self.spec.parameters if n not in self.spec.update),
            "all_updated": set(self.spec.update) == set(self.spec.parameters),
            "steps": self.spec.steps,
        }

    # ---------------------------------------------------------------- forward pass
    def step(self, name: str, k: int = 0, formula: bool = True) -> Step:
        tree = self.quantities[name].tree
        lhs = pr.with_step(self.names[name], k) if k and name in self.changes else self.names[name]
        parts = []
        if formula:
            sym = pr.TreePrinter(self.names, self.shapes.__getitem__, step=k, stepped=self.changes)
            parts.append(("=", sym.chunks(tree)))
        value = ""
        if not self.exercise and (self.small(name) or name == self.loss):
            s = self.shaped("value", name, k)
            value = pr.shaped_latex(s)
            parts.append((relation(s.values), one(value)))
        return Step(name, lhs, layout(lhs, parts), value)

    def forward(self) -> tuple:
        return tuple(self.step(d.name) for d in self.spec.forward if d.name != self.loss)

    # ---------------------------------------------------------------- backward pass
    def _products(self, pick: Pick):
        """The entry of the parameter's matrix-form rule, one product per term of the rule (each
        a list of Fractions and (kind, name, index) factors) — or None where an entry of a term
        is not a short product (a sum over an inner dimension, a function)."""
        rule = self.rules.get(pick.parameter)
        if rule is None:
            return None
        i, j = pick.index or (0, 0)
        products = [_entry_factors(t.expr, i, j, self.shapes) for t in rule.terms]
        return None if any(p is None for p in products) else products

    def _factor_entries(self, pick: Pick) -> list:
        return [f for p in self._products(pick) or () for f in p if not isinstance(f, Fraction)]

    def entry_eq(self, pick: Pick):
        name, index = pick.parameter, pick.index
        X = self.edisp(name, index)
        lhs = pr.deriv(self.L, X)
        n = self.entry("adjoint", name, index)
        parts = []
        rule = self.rules.get(name)
        products = self._products(pick)
        if rule is not None and self.shapes[name]:
            sym = pr.MatrixPrinter(self.names, self.L)
            inner = " + ".join(sym.tex(t.expr) for t in rule.terms)
            parts.append(("=", one(pr.with_index(f"\\left({inner}\\right)", index, self.shapes[name]))))
        if products is not None:
            sym_terms, num_terms = [], []
            for i, factors in enumerate(products):
                syms, nums = [], []
                for f in factors:
                    if isinstance(f, Fraction):
                        syms.append(pr.fraction(f))
                        nums.append(pr.fraction(f))
                        continue
                    kind, fname, findex = f
                    d = pr.with_index(self.names[fname], findex, self.shapes[fname])
                    syms.append(pr.deriv(self.L, d) if kind == "adjoint" else d)
                    nums.append(paren(shown(self.entry(kind, fname, findex))))
                op = "" if i == 0 else "+"
                sym_terms.append((op, pr.product(syms)))
                num_terms.append((op, pr.product(nums)))
            parts.append(("=", sym_terms))
            if any(len(factors) > 1 for factors in products) or len(products) > 1:
                parts.append(("=", num_terms))
        parts.append((relation([n]), one(shown(n))))
        return layout(lhs, parts)

    def sections(self) -> tuple:
        back = Backward(self.setting)
        out = []
        picked: dict = {}
        for pick in self.picks:
            picked.setdefault(pick.parameter, []).append(pick)
        for name in self.selected:
            sec = back.matrix_section(name)
            value = None
            if self.small(name) and self.shapes[name]:
                s = self.shaped("adjoint", name)
                value = layout(pr.deriv(self.L, self.names[name]), [(relation(s.values), one(pr.shaped_latex(s)))])
            entries = tuple(self.entry_eq(p) for p in picked.get(name, ()))
            out.append(Section(sec.name, sec.sym, sec.title, sec.main, sec.prereqs, value=value, entries=entries))
        return out

    # ---------------------------------------------------------------- update and after
    def updates(self) -> tuple:
        out = []
        eta = "\\eta" if self.spec.learning_rate is None else pr.fraction(self.spec.learning_rate)
        for name in [n for n in self.spec.parameters if n in self.spec.update and n in self.selected]:
            d = self.names[name]
            parts = [("=", [("", d), ("-", f"\\eta \\, {pr.deriv(self.L, d)}")])]
            if self.small(name):
                grad, new = self.shaped("adjoint", name), self.shaped("value", name, 1)
                parts.append(("=", [("", pr.shaped_latex(self.shaped("value", name))), ("-", eta),
                                    ("\\cdot", paren(pr.shaped_latex(grad)))]))
                parts.append((relation(new.values), one(pr.shaped_latex(new))))
            out.append(Update(name, d, layout(pr.with_step(d, 1), parts)))
            for pick in (p for p in self.picks if p.parameter == name and self.shapes[name]):
                e = self.edisp(name, pick.index)
                old, grad = self.entry("value", name, pick.index), self.entry("adjoint", name, pick.index)
                new = self.entry("value", name, pick.index, 1)
                parts = [("=", [("", e), ("-", f"\\eta \\, {pr.deriv(self.L, e)}")]),
                         ("=", [("", shown(old)), ("-", eta), ("\\cdot", paren(shown(grad)))]),
                         (relation([new]), one(shown(new)))]
                out.append(Update(pick.label(), e, layout(pr.with_step(e, 1), parts)))
        return tuple(out)

    def after(self) -> After | None:
        if self.sol.steps < 1:
            return None
        loss = self.step(self.loss, 1, formula=False)
        before, after = self.sol.history[0], self.sol.history[1]
        change = self.p.eval(f"{self.loss} - ({self.loss}@1)", digits=self.digits)[0].values[0]
        fell = not change.text.startswith("-") and change.text != "0"
        same = change.text == "0"
        percent = ""
        if before.text != "0":
            pct = self.p.eval(f"100*({self.loss} - ({self.loss}@1))/{self.loss}",
                              digits=min(self.digits, 4))[0].values[0]
            percent = pr.number(pct.text.lstrip("-"))
        return After((), loss, shown(before), shown(after), pr.number(change.text.lstrip("-")), percent,
                     fell, same)

    def history(self) -> tuple:
        if self.sol.steps < 2:
            return ()
        return tuple((k, shown(v)) for k, v in enumerate(self.sol.history))

    # ---------------------------------------------------------------- everything
    def context(self) -> dict:
        spec = self.spec
        self.want_all()
        params = list(spec.parameters)
        ctx = {
            "id": spec.id,
            "title": spec.title_in(self.lang),
            "source": spec.source_in(self.lang),
            "lang": self.lang,
            "mode": self.mode,
            "exercise": self.exercise,
            "symbolic": False,
            "matrix": bool(self.rules),
            "digits": self.digits,
            "loss": self.L,
            "loss_name": self.loss,
            "only": () if len(self.selected) == len(params) else tuple(self.names[n] for n in self.selected),
            "remarks": (),            # a large network's unit-by-unit remarks would be thousands long
            "large": {
                "entries": parameter_entries(self.p),
                "limit": LARGE_ENTRIES,
                "shown": SHOWN_ENTRIES,
                "parameters": tuple(self.names[n] for n in self.selected),
                "all": len(self.selected) == len(params),
                "picks": tuple(self.edisp(p.parameter, p.index) for p in self.picks),
                "labels": tuple(p.label() for p in self.picks),
                "matrix_form": bool(self.rules),
            },
            "diagram": build_diagram(self.quantities, params, self.loss, self.names),
            "given": self.given(),
            "eta": "\\eta" if spec.learning_rate is None else pr.fraction(spec.learning_rate),
            "has_cjk": bool(CJK.search(spec.title_in(self.lang) or "")) or bool(CJK.search(spec.source_in(self.lang) or "")),
        }
        ctx.update(
            forward=self.forward(),
            loss_step=self.step(self.loss, 0),
            sections=tuple(self.sections()),
            updates=self.updates() if spec.steps >= 1 else (),
            after=self.after(),
            history=self.history(),
        )
        return ctx


# ---------------------------------------------------------------- an entry of a matrix-form rule
def _mshape(m, shapes: dict) -> tuple:
    if isinstance(m, mf.MSym):
        return shapes[m.name]
    if isinstance(m, mf.MNum):
        return ()
    if isinstance(m, mf.MT):
        s = _mshape(m.x, shapes)
        return (s[1], s[0]) if s else ()
    if isinstance(m, mf.MMul):
        a, b = _mshape(m.a, shapes), _mshape(m.b, shapes)
        return (a[0], b[1]) if a and b else (a or b)
    if isinstance(m, (mf.MHad, mf.MAdd)):
        return _mshape(m.a, shapes) or _mshape(m.b, shapes)
    if isinstance(m, mf.MFun) and m.fn == "sum":
        return ()
    if isinstance(m, (mf.MFun, mf.MPow, mf.MDer)):
        return _mshape(m.x, shapes)
    raise TypeError(m)


def _entry_factors(m, i: int, j: int, shapes: dict):
    """Entry (i, j) of a matrix expression as one product: [Fraction | (kind, name, index)], or
    None when it is not one (a sum of products, a function)."""
    if isinstance(m, mf.MSym):
        shape = shapes[m.name]
        return [("adjoint" if m.adjoint else "value", m.name, (i, j) if shape else ())]
    if isinstance(m, mf.MNum):
        return [m.value]
    if isinstance(m, mf.MT):
        return _entry_factors(m.x, j, i, shapes)
    if isinstance(m, mf.MMul):
        a = _mshape(m.a, shapes)
        if not a or a[1] != 1:
            return None
        left, right = _entry_factors(m.a, i, 0, shapes), _entry_factors(m.b, 0, j, shapes)
        return None if left is None or right is None else left + right
    if isinstance(m, mf.MHad):
        a, b = _entry_factors(m.a, i, j, shapes), _entry_factors(m.b, i, j, shapes)
        return None if a is None or b is None else a + b
    return None

"""Exercise sheets and answer keys: `derive render SPEC --mode exercise` and `--mode key`.

A sheet is what a student is handed: the network (diagram), the model written out (every
definition, the activation functions with their formulas, the loss, the learning rate, which
parameters one gradient step updates and which stay fixed), the given numbers, what to compute
(the forward values, the loss, the gradients of the parameters in `update` only, the updated
parameters and the loss after the step), the precision required ("give 4 significant digits",
`--answer-digits`), and an answer table with room to write.  It never points to the source
document (whose text holds the full worked solution).  The key is the same layout with the
answers filled in.

Computed once, here, never in the templates: `sheet_context` builds the sheet from the spec alone
— the engine is not asked for a single number, so a sheet cannot leak a result — and
`key_context` fills the same rows from ONE engine run at the answer precision
(`Problem.numbers(digits, 1)`: every value exact or certified and correctly rounded, half away
from zero, by `derive.rounding`; never a rounding of an already rounded number).  A key also
gives a short exact value beside its rounding (`exact_value`: 2793 (exactly 2792.5)) and notes
the updated values and the loss after the step that read as unchanged at the answer digits, with
their change (`unchanged`).  A symbolic spec
asks for, and its key gives, the gradients' formulas in the named quantities.

Large networks (`large.is_large`, more than 30 parameter entries) get a stated selection: the
first entry of each parameter (or the entries named by `--only`, e.g. `W1[2,3]`) and the forward
quantities of at most `large.SHOWN_ENTRIES` entries.  A spec with a training run ([dataset])
gets the single worked step on the sample the spec gives, not the run.

Titles come from `derive.titles`, as for the worked solution and the errata: the spec's title in
the document's language when it has one, else a generic title in that language; typeset pieces
(`title_parts`).  Prose: the `[exercise]` table of
templates/strings.LANG.toml; templates: templates/exercise.md.j2 and exercise.tex.j2.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext
from fractions import Fraction

from . import expr as ex
from . import printer as pr
from . import templating as tpl
from .diagram import build_diagram
from .errors import DeriveError
from .escape import CJK
from .graph import outline
from .handout import selected_parameters, setting
from .large import LARGE_ENTRIES, SHOWN_ENTRIES, is_large, parameter_entries, picks
from .layout import LINE_WIDTH, SIZES, Eq, layout, pack
from .render_context import free_symbol
from .rounding import round_fraction
from .sections import Backward
from .titles import document_title, typeset_parts

MODES = ("exercise", "key")
DEFAULT_ANSWER_DIGITS = 4
MAX_ANSWER_DIGITS = 30

# the activation (and other) functions a model may use, defined as a sheet states them: (definition,
# derivative); ReLU's derivative is the indicator 1[x > 0] (0 at x = 0, as the engine takes it)
FUNCTION_DEFINITIONS = {
    "sigmoid": ("\\sigma(x) = \\frac{1}{1 + e^{-x}}", "\\sigma'(x) = \\sigma(x)\\,\\bigl(1 - \\sigma(x)\\bigr)"),
    "relu": ("\\operatorname{ReLU}(x) = \\max(0, x)",
             "\\operatorname{ReLU}'(x) = " + pr.indicator("x")),
    "tanh": ("\\tanh(x) = \\frac{e^{x} - e^{-x}}{e^{x} + e^{-x}}", "\\tanh'(x) = 1 - \\tanh^{2}(x)"),
    "softplus": ("\\operatorname{softplus}(x) = \\log\\left(1 + e^{x}\\right)",
                 "\\operatorname{softplus}'(x) = \\sigma(x) = \\frac{1}{1 + e^{-x}}"),
    "softmax": ("\\operatorname{softmax}(z)_{i} = \\frac{e^{z_{i}}}{\\sum_{j} e^{z_{j}}}",
                "\\frac{\\partial \\operatorname{softmax}(z)_{i}}{\\partial z_{j}} = "
                "\\operatorname{softmax}(z)_{i} \\bigl(\\delta_{ij} - \\operatorname{softmax}(z)_{j}\\bigr)"),
    "sum": ("\\textstyle\\sum v = v_{1} + v_{2} + \\dots + v_{n}", ""),
    "mean": ("\\operatorname{mean}(v) = \\frac{v_{1} + v_{2} + \\dots + v_{n}}{n}", ""),
    "frobenius": ("\\left\\lVert v \\right\\rVert_{F} = \\sqrt{v_{1}^{2} + v_{2}^{2} + \\dots + v_{n}^{2}}", ""),
    "norm2": ("\\left\\lVert v \\right\\rVert_{2} = \\sqrt{v_{1}^{2} + v_{2}^{2} + \\dots + v_{n}^{2}}", ""),
}
ENTRYWISE = ("sum", "mean", "frobenius", "norm2")     # defined on the entries v₁ … vₙ of a vector or matrix

# notation the printed model may use beyond the spec's own names, each with the note (a key of the
# [exercise] strings and its LaTeX arguments) that defines it; a note is given when the model's
# LaTeX (its definitions and the functions' formulas) contains the symbol
NOTATION = (
    ("\\odot", "note_odot", {"ab": "A \\odot B", "rule": "(A \\odot B)_{ij} = A_{ij} \\, B_{ij}"}),
    ("^{\\top}", "note_transpose", {"mt": "M^{\\top}", "m": "M", "rule": "(M^{\\top})_{ij} = M_{ji}"}),
    ("\\delta_{ij}", "note_kronecker", {"d": "\\delta_{ij}", "cond": "i = j"}),
    ("\\log", "note_log", {"log": "\\log", "e": "e"}),
)


# ---------------------------------------------------------------- the context
@dataclass(frozen=True)
class Answer:
    """One row of the answer table: what to give (LaTeX), and in a key its answer (LaTeX)."""
    n: int                       # the row's number on the sheet (from 1)
    sym: str                     # LaTeX of the quantity asked for
    query: tuple                 # (kind, name, flat index): what the key looks up
    value: str = ""              # '' on a sheet; the answer (a number or a formula) in a key
    text: str = ""               # the answer as the engine printed it ('0.6023', '-3.772e-5'), key only
    exact: str = ""              # key only: the exact value (LaTeX) when it is short and the rounding is not it


@dataclass(frozen=True)
class Unchanged:
    """A key's updated parameter that looks unchanged at the answer digits, with the step's change."""
    n: int                       # the row
    sym: str                     # LaTeX of the parameter (before the step)
    gradient: str                # LaTeX of its gradient, ∂L/∂p
    delta: str                   # LaTeX of Δ = −η·∂L/∂p, certified and correctly rounded at the key's digits
    loss: bool = False           # the loss after the step (sym L⁽¹⁾, no gradient; delta = L⁽¹⁾ − L)


@dataclass(frozen=True)
class Group:
    kind: str                    # forward (and the loss) | gradient | update (and the new loss) | formula
    rows: tuple                  # Answers
    unchanged: tuple = ()        # Unchanged: the key's rows whose new value rounds to the old one


def title(spec, lang: str, strings) -> str:
    """The document's title in `lang` (`titles.document_title`): the spec's title for that language,
    else a generic title in `lang` naming the problem (never the other language's title)."""
    return document_title(spec, lang) or strings("title_generic", id=spec.id)


def given_number(q) -> str:
    """A given number as the spec gave it: a short decimal or a fraction exactly (0.25, 1/3); a
    binary float read from a data file (an .npz entry, exact but of 50 digits) as the shortest
    decimal that is that float (Python's repr)."""
    text = pr.fraction(q)
    if "\\frac" in text and (q.denominator & (q.denominator - 1)) == 0:
        f = float(q)
        if Fraction(f) == q:
            return pr.number(repr(f).replace("e-0", "e-").replace("e+", "e"))
    return text


def _shapes(problem) -> dict:
    if problem.is_symbolic:
        return {n: () for n in problem.spec.all_names()}
    return problem.program.shapes


def _size(shape) -> int:
    return 1 if shape == () else shape[0] * shape[1]


def _entries(shape) -> list:
    """(flat index, 0-based (i, j) or ()) of every entry, row-major."""
    if shape == ():
        return [(0, ())]
    r, c = shape
    return [(i * c + j, (i, j)) for i in range(r) for j in range(c)]


def _functions(spec) -> list:
    """The functions the definitions use, in order of first use."""
    out: list = []

    def walk(node):
        fn = getattr(node, "fn", None)
        if fn is not None and fn not in out:
            out.append(fn)
        for child in _children(node):
            walk(child)

    for d in spec.forward:
        walk(d.tree)
    return out


def _nodes(tree):
    """Every node of an expression tree (iteratively: long sums are deep)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(_children(node))


def _children(node):
    for attr in ("args", "operand", "left", "right"):
        v = getattr(node, attr, None)
        if v is None:
            continue
        yield from (v if isinstance(v, tuple) else (v,))


class SheetBuilder:
    """The rows and the text of a sheet, from the spec alone (no engine number)."""

    def __init__(self, problem, *, lang: str, digits: int, only: list | None):
        self.p = problem
        self.spec = problem.spec
        self.lang = lang
        self.digits = digits
        self.shapes = _shapes(problem)
        # a symbolic spec's graph is built when it is loaded (it is all formulas); a numeric one's
        # outline needs no SymPy
        self.quantities = problem.graph.quantities if problem.is_symbolic else outline(self.spec, self.shapes)
        self.names = pr.display_names(self.spec, self.quantities)
        self.loss = self.spec.loss
        self.L = self.names[self.loss]
        self.large = is_large(problem)
        params = list(self.spec.parameters) + [n for n in self.spec.symbolic if n in self.spec.update]
        self.params = params
        if self.large:
            selected, self.picks = picks(self.spec, self.shapes, only)
        else:
            selected = selected_parameters(self.spec, params, only)
            self.picks = ()
        self.selected = [n for n in params if n in selected]
        self.updated = [n for n in self.selected if n in self.spec.update]

    # ---------------------------------------------------------------- displays
    def edisp(self, name: str, index: tuple) -> str:
        return pr.with_index(self.names[name], index, self.shapes[name])

    def _param_entries(self, name: str) -> list:
        if not self.large:
            return _entries(self.shapes[name])
        shape = self.shapes[name]
        out = []
        for pk in self.picks:
            if pk.parameter == name:
                flat = 0 if not pk.index else pk.index[0] * shape[1] + pk.index[1]
                out.append((flat, pk.index if shape else ()))
        return out

    # ---------------------------------------------------------------- what to compute
    def groups(self) -> tuple:
        rows: list = []
        n = 0

        def add(kind, items):
            nonlocal n
            out = []
            for sym, query in items:
                n += 1
                out.append(Answer(n, sym, query))
            if out:
                rows.append(Group(kind, tuple(out)))

        if self.p.is_symbolic:
            add("formula", [(pr.deriv(self.L, self.names[p]), ("formula", p, 0)) for p in self.updated])
            return tuple(rows)
        fwd = []
        for d in self.spec.forward:
            if d.name == self.loss:
                continue
            shape = self.shapes[d.name]
            if self.large and _size(shape) > SHOWN_ENTRIES:
                continue
            fwd += [(self.edisp(d.name, idx), ("forward", d.name, flat)) for flat, idx in _entries(shape)]
        add("forward", fwd + [(self.L, ("loss", self.loss, 0))])
        grads, news = [], []
        for p in self.updated:
            for flat, idx in self._param_entries(p):
                d = self.edisp(p, idx)
                grads.append((pr.deriv(self.L, d), ("gradient", p, flat)))
                news.append((pr.with_step(d, 1), ("update", p, flat)))
        add("gradient", grads)
        if self.stepped:
            add("update", news + [(pr.with_step(self.L, 1), ("after", self.loss, 0))])
        return tuple(rows)

    @property
    def stepped(self) -> bool:
        """One gradient step is asked for (the spec takes at least one and updates something)."""
        return self.spec.steps >= 1 and bool(self.updated)

    # ---------------------------------------------------------------- the model
    def definitions(self) -> tuple:
        """The definitions as displays: consecutive one-line ones aligned together on '='."""
        out, run = [], []
        sym = pr.TreePrinter(self.names, self.shapes.__getitem__)
        for d in self.spec.forward:
            lhs = self.names[d.name]
            eq = layout(lhs, [("=", sym.chunks(d.tree))])
            if eq.flat is not None and pr.width(eq.flat) <= 60:
                run.append(f"{lhs} &= {sym.tex(d.tree)}")
                continue
            if run:
                out.append(Eq(tuple(run)))
                run = []
            out.append(eq)
        if run:
            out.append(Eq(tuple(run)))
        return tuple(out)

    def functions(self) -> tuple:
        return tuple(FUNCTION_DEFINITIONS[f] for f in _functions(self.spec) if f in FUNCTION_DEFINITIONS)

    def notes(self, definitions: tuple, functions: tuple) -> tuple:
        """(key, {name: LaTeX}) of the notes that define the notation the model part prints beyond
        the spec's own names (⊙, ᵀ, δᵢⱼ, log; vᵢ and n of Σ, mean and the norms; the matrix
        product), found in the printed LaTeX itself, so that every symbol the sheet uses is defined
        on it.  ReLU's indicator is `indicator` (a note of its own)."""
        tex = " ".join([*(line for e in definitions for line in (e.flat or "", *e.lines)),
                        *(t for pair in functions for t in pair)])
        out = [(key, args) for sym, key, args in NOTATION if sym in tex]
        powers = self.entrywise_powers()
        if powers or any(f in ENTRYWISE for f in _functions(self.spec)):
            out.append(("note_entries", {"v": "v", "vi": "v_{1}, \\dots, v_{n}", "n": "n"}))
        if powers:
            k = powers[0] if len(set(powers)) == 1 else "k"
            out.append(("note_power", {"rule": f"(v^{{{k}}})_{{i}} = v_{{i}}^{{{k}}}"}))
        if any(getattr(node, "op", None) == "@" for d in self.spec.forward for node in _nodes(d.tree)):
            out.append(("note_matmul", {"dot": "\\cdot"}))
        out.extend(self.entry_notes())
        return tuple(out)

    def entrywise_powers(self) -> list:
        """The exponents (LaTeX) of the powers the definitions take of a vector or matrix, such as
        the (y_t − y_m)² of linear-2x's loss: taken entry by entry, which the sheet must say (a
        square of a matrix could be read as a matrix product).  A power of a norm or a sum is a
        power of a number and is not one of them."""
        out = []
        for d in self.spec.forward:
            for node in _nodes(d.tree):
                if (isinstance(node, ex.Bin) and node.op == "^"
                        and ex.tree_shape(node.left, lambda n: self.shapes.get(n, ())) != ()):
                    out.append(node.right.text if isinstance(node.right, ex.Num) else "k")
        return out

    def entry_notes(self) -> list:
        """The notes that say how an entry of a matrix is written, when the sheet asks for one (H₁₁,
        W_{1,31}): A_{ij} is row i, column j of A; with a comma when an index has two digits; a name
        with a subscript of its own (W_{1}) puts the entry's indices after it, W_{1,ij}."""
        asked = [q for g in self.groups() for a in g.rows for q in [a.query] if q[0] != "formula"]
        matrices = [name for _, name, _ in asked
                    if len(self.shapes.get(name, ())) == 2 and min(self.shapes[name]) > 1]
        if not matrices:
            return []
        out = [("note_matrix_entry", {"aij": "A_{ij}", "i": "i", "j": "j", "a": "A",
                                      "comma": "A_{i,j}"})]
        sub = next((self.names[n] for n in dict.fromkeys(matrices) if ",11}" in pr.indexed(self.names[n], (1, 1))),
                   None)
        if sub is not None:
            out.append(("note_matrix_entry_sub", {"w": sub, "wij": pr.indexed(sub, (1, 1))[:-3] + "ij}",
                                                  "i": "i", "j": "j"}))
        return out

    def update_symbol(self) -> str:
        """The placeholder of the update rule θ⁽¹⁾ = θ − η ∂L/∂θ: a letter no name of the spec is
        displayed as (softmax-3's output is p)."""
        return free_symbol(self.names)

    def given(self) -> dict:
        data, params = [], []
        for name in (*self.spec.data, *self.spec.parameters):
            value = (self.spec.data.get(name) or self.spec.parameters.get(name))
            shape = value.shape
            sym = self.names[name]
            if shape == ():
                tex = given_number(value.entries[0])
            elif _size(shape) <= SHOWN_ENTRIES or not self.large:
                tex = pr.pmatrix([[given_number(x) for x in row] for row in value.rows()])
            else:
                tex = ""
            row = {"sym": sym, "value": tex, "matrix": shape != (),
                   "shape": f"{shape[0]}\\times {shape[1]}" if shape else ""}
            (params if name in self.spec.parameters else data).append(row)

        widest = LINE_WIDTH / SIZES[-1][1]         # what fits a line at the smallest size
        for r in data + params:                     # a matrix too wide for the page: by its shape
            if r["matrix"] and r["value"] and pr.width(f"{r['sym']} = {r['value']}") > widest:
                r["value"] = ""

        def matrices(rows):
            return pack([f"{r['sym']} = {r['value']}" if r["value"] else f"{r['sym']}\\colon\\ {r['shape']}"
                         for r in rows if r["matrix"]])

        fixed = [n for n in self.params if n not in self.spec.update]
        lr = self.spec.learning_rate
        return {
            "data": tuple(r for r in data if not r["matrix"]),
            "parameters": tuple(r for r in params if not r["matrix"]),
            "data_matrices": matrices(data),
            "parameter_matrices": matrices(params),
            "symbols": tuple(self.names[n] for n in self.spec.symbolic),
            "eta": "\\eta" if lr is None else f"\\eta = {pr.fraction(lr)}",
            "updated": tuple(self.names[n] for n in self.params if n in self.spec.update),
            "fixed": tuple(self.names[n] for n in fixed),
            "all_updated": not fixed,
            "hidden": any(r["matrix"] and not r["value"] for r in data + params),
        }

    def context(self, strings) -> dict:
        spec = self.spec
        t = title(spec, self.lang, strings)
        definitions, functions = self.definitions(), self.functions()
        ctx = {
            "id": spec.id,
            "lang": self.lang,
            "key": False,
            "title": t,
            "title_parts": typeset_parts(t, spec, self.names),
            "parts_title": t,           # the title the pieces are of (a bank variant sets its own title)
            "has_cjk": bool(CJK.search(t)),
            "symbolic": self.p.is_symbolic,
            "matrix": any(s != () for s in self.shapes.values()),
            "digits": self.digits,
            "loss": self.L,
            "diagram": build_diagram(self.quantities, self.params, self.loss, self.names),
            "definitions": definitions,
            "functions": functions,
            "notes": self.notes(definitions, functions),
            "update_symbol": self.update_symbol(),
            "indicator": pr.indicator("x") if "relu" in _functions(spec) else "",   # ReLU' = 1[x > 0]
            "given": self.given(),
            "stepped": self.stepped and not self.p.is_symbolic,     # new values are asked for (a symbolic sheet asks for formulas only)
            "training": spec.dataset is not None,
            "only": tuple(self.names[n] for n in self.selected) if len(self.selected) < len(self.params) else (),
            "large": None,
            "groups": self.groups(),
            "short_rows": SHORT_ROWS,
            "first_rows": FIRST_ROWS,
            "last_rows": LAST_ROWS,
        }
        if self.large:
            ctx["large"] = {
                "entries": parameter_entries(self.p),
                "limit": LARGE_ENTRIES,
                "shown": SHOWN_ENTRIES,
                "picks": tuple(self.edisp(pk.parameter, pk.index) for pk in self.picks
                               if pk.parameter in self.updated),
            }
        return ctx


# ---------------------------------------------------------------- the key
def answers(problem, groups: tuple, digits: int) -> tuple:
    """The groups with every answer filled in: numbers from one engine run at `digits` significant
    digits (after one step), formulas (symbolic specs) from the calculus."""
    if problem.is_symbolic:
        # the formulas as the worked solution writes them (its factors in the order of its step
        # formulas: δ_out · a₁ with δ_out = (a_out − y)·a_out·(1 − a_out)), not in SymPy's order
        back = Backward(setting(problem, problem.solve(), lang=problem.spec.lang, only=None, mode="solution"))
        graph = problem.graph

        def formula(query):
            return back.full_formula(graph.quantities[query[1]].entries[0]), ""
        look = formula
    else:
        numbers = problem.numbers(digits, 1 if any(g.kind == "update" for g in groups) else 0)
        table = {"forward": numbers.forward, "gradient": numbers.gradients, "update": numbers.updated}

        def look(query):
            kind, name, flat = query
            if kind == "loss":
                n = numbers.history[0]
            elif kind == "after":
                n = numbers.history[1]
            else:
                n = table[kind][name][flat]
            return pr.number(n.text), n.text, exact_value(n, digits)
    out = []
    for g in groups:
        rows = []
        for a in g.rows:
            value, text, *exact = look(a.query)
            rows.append(replace(a, value=value, text=text, exact=(exact or [""])[0]))
        rows = one_notation(rows)
        out.append(Group(g.kind, tuple(rows), () if problem.is_symbolic else
                         unchanged(problem, rows, digits, numbers.history[0].text)))
    return tuple(out)


SHORT_EXACT = 3         # an exact value with at most this many digits more than asked is also given


def exact_value(n, digits: int) -> str:
    """The exact value of an answer (LaTeX) when its rounding is not it and it is short: a
    terminating decimal of at most `digits` + SHORT_EXACT significant digits (linear-2x's
    E = 2792.5, shown 2793 at 4 digits), so that a student who gives it is not contradicted; else ''."""
    q = n.exact
    if q is None or q == 0 or Decimal(n.text) == Decimal(q.numerator) / Decimal(q.denominator):
        return ""
    d = q.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return ""
    with localcontext() as ctx:
        ctx.prec = 60
        exact = (Decimal(q.numerator) / Decimal(q.denominator)).normalize()
    if len(exact.as_tuple().digits) > digits + SHORT_EXACT:
        return ""
    return pr.number(format(exact, "f") if -6 < exact.adjusted() < 15 else str(exact))


# Where a TeX answer table may break across pages: after its first FIRST_ROWS rows (a table starts
# with its heading and three rows) and before its last LAST_ROWS (two rows under the repeated head
# at the least), so a table of SHORT_ROWS rows or fewer is never split.  Kept whole, a table of five
# or six rows once left a quarter of a page empty above it (matrix-linear's key, sigmoid-2-4-2).
FIRST_ROWS = 3
LAST_ROWS = 2
SHORT_ROWS = FIRST_ROWS + LAST_ROWS - 1

SMALL = Decimal("0.001")      # below this, a value in a table of m × 10ⁿ values is written so too


def one_notation(rows: list) -> list:
    """One notation for the small values of a table: when one of its values is written as
    m × 10ⁿ (the engine's form below 10⁻⁵), every value below 10⁻³ in magnitude is written so too
    (−1.117 × 10⁻⁴ beside −5.499 × 10⁻⁸, not −0.0001117); the digits are the same."""
    if not any("e" in a.text.lower() for a in rows if a.text):
        return rows
    return [replace(a, value=scientific(a.text)) if a.text and "e" not in a.text.lower()
            and Decimal(a.text) != 0 and abs(Decimal(a.text)) < SMALL else a for a in rows]


def unchanged(problem, rows: list, digits: int, loss_text: str = "") -> tuple:
    """The updated parameters among `rows` whose new value, at `digits` significant digits, is the
    old one rounded: each with the change of the step, Δ = p⁽¹⁾ − p = −η·∂L/∂p, computed by the
    engine (certified, correctly rounded at `digits`), so the key shows that the step did move it.
    So too the loss after the step when it reads as the loss before it (`loss_text`, house-price's
    9.000 × 10¹⁰ twice), with ΔL = L⁽¹⁾ − L."""
    spec = problem.spec
    names = None             # the quantities' display names (`outline`'s names), when one is unchanged
    deltas: dict = {}
    out = []
    for a in rows:
        kind, name, flat = a.query
        if kind == "after" and loss_text and Decimal(a.text) == Decimal(loss_text):
            change = problem.eval(f"{name}@1 - {name}", digits=digits)[0].value.values[0]
            out.append(Unchanged(a.n, a.sym, "", scientific(change.text), loss=True))
            continue
        if kind != "update":
            continue
        old = spec.parameters[name].entries[flat]
        if Decimal(a.text) != round_fraction(old, digits):
            continue
        if name not in deltas:
            deltas[name] = problem.eval(f"{name}@1 - {name}", digits=digits)[0].value.values
        if names is None:
            names = pr.display_names(spec, (*spec.data, *spec.parameters, *(d.name for d in spec.forward)))
        shape = problem.program.shapes[name]
        sym = pr.with_index(names[name], divmod(flat, shape[1]) if shape else (), shape)
        out.append(Unchanged(a.n, sym, pr.deriv(names[spec.loss], sym, inline=True),
                             scientific(deltas[name][flat].text)))
    return tuple(out)


def scientific(text: str) -> str:
    """A number as the engine printed it ('0.0001485', '-3.772e-8'), in LaTeX as m × 10ⁿ with
    1 ≤ |m| < 10 and its digits as printed (trailing zeros kept): 1.485 \\times 10^{-4}."""
    d = Decimal(text)
    if d == 0:
        return "0"
    e = d.adjusted()
    m = d.scaleb(-e)
    return pr.number(str(m)) + ("" if e == 0 else f" \\times 10^{{{e}}}")


# ---------------------------------------------------------------- rendering
environment = tpl.handout_environment


_TABLES: dict = {}


def _strings_table(env, name: str) -> dict:
    """`templating.load_strings`, parsed once per text in a process (`derive build` asks for each
    table 32 times; parsing it was a third of the time of the sheets)."""
    try:
        source, filename, _ = env.loader.get_source(env, name)
    except Exception:                   # not found, unreadable: load_strings says so in one line
        return tpl.load_strings(env, name)
    if (filename, source) not in _TABLES:
        _TABLES[(filename, source)] = tpl.load_strings(env, name)
    return _TABLES[(filename, source)]


def exercise_strings(env, fmt: str, lang: str):
    """(s, x, plain x): the handout strings of `lang`, their [exercise] table, and that table
    unescaped (for text that the templates escape themselves, such as a title)."""
    table = _strings_table(env, f"strings.{lang}.toml")
    own = table.get("exercise")
    if not isinstance(own, dict):
        raise DeriveError(f"no [exercise] table in strings.{lang}.toml")
    return (tpl.string_function(table, fmt, lang), tpl.string_function(own, fmt, lang),
            tpl.string_function(own, "md", lang))


def sheet_context(problem, *, lang: str, digits: int = DEFAULT_ANSWER_DIGITS, only=None,
                  strings=None) -> dict:
    """The context of an exercise sheet: built from the spec alone (no engine numbers)."""
    if strings is None:
        strings = exercise_strings(environment("md"), "md", lang)[2]
    return SheetBuilder(problem, lang=lang, digits=digits, only=only).context(strings)


def key_context(problem, *, lang: str, digits: int = DEFAULT_ANSWER_DIGITS, only=None, strings=None) -> dict:
    """The context of an answer key: the sheet's, with every answer filled in."""
    ctx = sheet_context(problem, lang=lang, digits=digits, only=only, strings=strings)
    ctx["key"] = True
    ctx["groups"] = answers(problem, ctx["groups"], digits)
    return ctx


def render_exercise(problem, *, fmt: str, lang: str | None = None, mode: str = "exercise",
                    digits: int = DEFAULT_ANSWER_DIGITS, only=None, template_dir: str | None = None) -> str:
    """An exercise sheet (`mode` 'exercise') or its answer key ('key') as Markdown or LaTeX."""
    return render_exercises(problem, lang=lang, modes=(mode,), formats=(fmt,), digits=digits, only=only,
                            template_dir=template_dir)[(mode, fmt)]


def render_exercises(problem, *, lang: str | None = None, modes=MODES, formats=("md", "tex"),
                     digits: int = DEFAULT_ANSWER_DIGITS, only=None, template_dir: str | None = None) -> dict:
    """{(mode, fmt): text} for the sheet and/or the key in each format; the sheet's context is
    built once, the key's answers are filled into it, and each is rendered in every format."""
    for mode in modes:
        if mode not in MODES:
            raise DeriveError(f"--mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if not 1 <= digits <= MAX_ANSWER_DIGITS:
        raise DeriveError(f"--answer-digits must be between 1 and {MAX_ANSWER_DIGITS}")
    lang = lang or problem.spec.lang
    envs = {fmt: environment(fmt, template_dir) for fmt in formats}
    strings = {fmt: exercise_strings(envs[fmt], fmt, lang) for fmt in formats}
    sheet = sheet_context(problem, lang=lang, digits=digits, only=only, strings=strings[formats[0]][2])
    out = {}
    for mode in modes:
        ctx = sheet if mode == "exercise" else dict(sheet, key=True,
                                                    groups=answers(problem, sheet["groups"], digits))
        for fmt in formats:
            s, x, _ = strings[fmt]
            text = tpl.render(envs[fmt], f"exercise.{fmt}.j2",
                              dict(ctx, s=s, x=x, note_texts=note_texts(ctx["notes"], x, envs[fmt], fmt)))
            out[(mode, fmt)] = re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
    return out


def note_texts(notes: tuple, x, env, fmt: str) -> tuple:
    """The sentences of a sheet's notation notes (`SheetBuilder.notes`), their LaTeX as inline math
    of `fmt` (Markdown's `imath`, the templates' k.m)."""
    math = (lambda t: f"${t}$") if fmt == "tex" else env.filters["imath"]
    return tuple(x(key, **{name: math(tex) for name, tex in args.items()}) for key, args in notes)


def file_name(pid: str, lang: str, mode: str, fmt: str) -> str:
    """A sheet's or key's file in `derive build`'s output, below exercises/: ID.LANG.FMT for the
    sheet, ID.key.LANG.FMT for its answer key."""
    return f"{pid}.key.{lang}.{fmt}" if mode == "key" else f"{pid}.{lang}.{fmt}"


__all__ = ["Answer", "DEFAULT_ANSWER_DIGITS", "Group", "MODES", "answers", "file_name", "key_context",
           "render_exercise", "render_exercises", "sheet_context", "title"]

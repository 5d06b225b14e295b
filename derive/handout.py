"""The worked solution's context: the frozen dataclasses that the handout templates are given,
and `Setting`, what every part of a worked solution needs to know about the problem being
rendered (display names, the parameters selected, the matrix-form rules, the engine's values).

Built by `setting()`; read by `render_context` (given numbers, forward pass, update, the pass
after it, exercise tasks), `sections` (the backward pass) and `diagram` (the network), and put
together by `render.build_context`.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import expr as ex
from . import printer as pr
from .errors import DeriveError
from .layout import Eq
from .matrixform import matrix_rules


# ---------------------------------------------------------------- the context
@dataclass(frozen=True)
class Row:
    name: str                    # the spec's name
    sym: str                     # display LaTeX
    value: str                   # LaTeX (number or pmatrix), '' in symbolic specs
    shape: str = ""              # '2×3' for matrices
    matrix: bool = False


PERCENT_DIGITS = 3        # a percentage of the loss is printed to this many significant digits

@dataclass(frozen=True)
class Step:
    """A forward quantity: its equation (formula, numbers, value)."""
    name: str
    sym: str
    eq: Eq
    value: str = ""


@dataclass(frozen=True)
class Factor:
    sym: str                     # ∂a/∂b or ∂L/∂c (LaTeX)
    eq: Eq | None                # formula = numbers ≈ value (None when referenced)
    value: str = ""              # LaTeX number
    ref: str = ""                # '' (derived here), 'above', or the display of the section it came from
    adjoint: bool = False        # a ∂L/∂c factor (derived in its own block)
    rel: str = "="               # '=' or '\\approx' before `value`
    formula: str = ""            # the local derivative's formula (shown with a reference in symbolic specs)


@dataclass(frozen=True)
class Block:
    """dL/dX: its rule (chain or sum over consumers), factors, and the product with numbers."""
    target: str                  # ∂L/∂X (LaTeX)
    target_inline: str
    of: str                      # display of X
    kind: str                    # 'chain' | 'branch' | 'matrix' | 'zero' | 'single'
    rule: Eq | None
    factors: tuple = ()
    product: Eq | None = None
    consumers: tuple = ()        # displays of X's consumers (branch blocks)
    one_hot: str = ""            # a one-hot target whose Σⱼ tⱼ = 1 simplifies the rule (its LaTeX)


@dataclass(frozen=True)
class Section:
    name: str                    # the parameter (or entry) name
    sym: str
    title: str                   # ∂L/∂p inline LaTeX
    main: Block
    prereqs: tuple = ()          # blocks derived first, in order
    full: Eq | None = None       # the whole formula in named quantities (sum over paths)
    paths: int = 1
    matrix_rule: Eq | None = None
    value: Eq | None = None      # a large network's section: the gradient's numbers (a small matrix)
    entries: tuple = ()          # a large network's section: the selected entries (Eqs, with numbers)


@dataclass(frozen=True)
class Delta:
    """The error signal of a quantity a derived parameter enters directly: δ = ∂L/∂X, derived once
    (∂-chain, formulas, numbers, value) and used by every parameter that enters X."""
    name: str                    # the quantity's name (net_o1)
    sym: str                     # δ_{o_1}
    of: str                      # display of the quantity (net_{o_1})
    eq: Eq
    value: str = ""              # LaTeX number ('' in symbolic specs)
    one_hot: str = ""            # a one-hot target whose Σⱼ tⱼ = 1 simplifies the signal (its LaTeX)


@dataclass(frozen=True)
class Grad:
    """∂L/∂p of one parameter entry: δ times the local derivative, then the numbers."""
    name: str                    # the parameter's name
    sym: str                     # display of the entry
    eq: Eq
    value: str = ""


@dataclass(frozen=True)
class Layer:
    """The units at one distance from the loss: their δ, then the gradients of their parameters."""
    index: int                   # 0: nearest the loss
    count: int                   # how many layers there are
    deltas: tuple                # Delta
    grads: tuple                 # Grad
    eqs: tuple = ()              # the δs and the gradients as aligned displays (Eq)
    grad_eqs: tuple = ()


@dataclass(frozen=True)
class Update:
    name: str
    sym: str
    eq: Eq


@dataclass(frozen=True)
class Node:
    id: str
    name: str                    # label for Mermaid (the display name in Unicode/<sub>, with note and bias)
    tex: str                     # label for TikZ
    kind: str                    # data | neuron | op | loss | param
    x: float
    y: float
    note: str = ""               # '2×3' for matrices
    bias: str = ""               # '+ b_{1}': biases added in this neuron (TikZ writes them below it)
    bias_shift: tuple = ()       # (dx, dy) cm: TikZ moves the bias label so from its place (diagram.bias_positions)
    bias_above: bool = False     # TikZ writes the biases over the node, not under it


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    label: str = ""              # Mermaid (spec name)
    tex: str = ""                # TikZ
    kind: str = "plain"          # weight | bias | plain
    pos: float = 0.5             # where on the arrow TikZ puts its label (near 1 = the target end)


@dataclass(frozen=True)
class Diagram:
    nodes: tuple
    edges: tuple
    xscale: float
    yscale: float
    font: str                    # TikZ font size macro name
    labels: bool                 # edge labels drawn
    neurons: tuple               # (pre-activation, activation) display pairs, for the caption
    label_pos: float = 0.28      # where on an arrow its weight label sits (0 = source end)
    has_bias: bool = False       # some neuron adds a bias
    has_param: bool = False      # some parameter enters otherwise than as a weight or a bias


@dataclass(frozen=True)
class Task:
    kind: str                    # forward | loss | gradient | update | after
    items: tuple                 # LaTeX symbols


@dataclass(frozen=True)
class After:
    steps: tuple                 # Steps at k = 1
    loss: Step
    before: str
    after: str
    change: str                  # |L0 − L1| (LaTeX number)
    percent: str
    fell: bool
    same: bool


# ---------------------------------------------------------------- what every part needs
@dataclass(frozen=True)
class Setting:
    """The problem being rendered and the choices made for it (built by `setting`)."""
    problem: object
    solution: object
    lang: str
    mode: str
    digits: int
    names: dict                  # name -> display LaTeX
    symbolic: bool
    exercise: bool
    numeric: bool                # neither symbolic nor an exercise: numbers are shown
    loss: str
    L: str                       # the loss's display
    selected: tuple              # parameters derived, the ones nearest the loss first
    rules: dict                  # name -> matrixform.MatrixRule ({} without matrix quantities)
    matrix_mode: bool
    changes: frozenset           # names whose value changes with an update step
    evals: dict                  # (text, digits) -> Shaped: sub-expressions the engine evaluated
    derived: tuple = ()          # parameters whose gradients are derived (updated ones, or --only's)

    @property
    def g(self):
        return self.problem.graph

    @property
    def spec(self):
        return self.problem.spec

    @property
    def sol(self):
        return self.solution

    @property
    def calc(self):
        return self.problem.calculus

    def shape(self, name: str) -> tuple:
        return self.g.quantities[name].shape

    def disp(self, name: str, k: int = 0) -> str:
        d = self.names[name]
        return pr.with_step(d, k) if k and name in self.changes else d

    def edisp(self, entry) -> str:
        q = self.g.quantities[entry.quantity]
        return pr.with_index(self.names[entry.quantity], entry.index, q.shape)

    def value_tex(self, name: str, k: int = 0, kind: str = "value") -> str:
        return pr.shaped_latex(self.sol.shaped(name, kind, k))

    def shape_text(self, name: str) -> str:
        s = self.shape(name)
        return f"{s[0]}\\times {s[1]}" if s else ""

    def eval(self, node, k: int):
        """The engine's value of a sub-expression of a definition at step k (a Shaped): from the
        tree itself, not from text parsed again (which could nest deeper than the user wrote)."""
        node = ex.inline(node, self.spec.functions)   # f(W x) of [functions]: its body, computed
        text = pr.text(at_step(node, k))   # names the value in the cache (and in messages)
        if (text, self.digits) not in self.evals:
            self.evals[(text, self.digits)] = self.problem.value_of(at_step(node, k), self.digits, text)
        return self.evals[(text, self.digits)]

    def loss_fall_percent(self, k: int = 1):
        """100·(L − L@k)/L as the engine rounds it (a Number): one computation for the sentence
        after the step and the remark on a loss that hardly falls (the evals cache serves both)), to
        PERCENT_DIGITS significant digits: 2.54 percent, not 2.54319."""
        return self.eval_text(f"100*({self.loss} - ({self.loss}@{k}))/{self.loss}",
                              min(PERCENT_DIGITS, self.digits)).values[0]

    def eval_text(self, text: str, digits: int | None = None):
        """The engine's value of an expression in the spec language (every partial result shown)."""
        digits = digits or self.digits
        if (text, digits) not in self.evals:
            self.evals[(text, digits)] = self.problem.eval(text, digits=digits)[0].value
        return self.evals[(text, digits)]


def setting(problem, solution, *, lang: str, only: list | None, mode: str) -> Setting:
    g = problem.graph
    spec = problem.spec
    names = pr.display_names(spec, g)
    symbolic = problem.is_symbolic
    exercise = mode == "exercise"
    selected = _order(problem, only)
    has_matrix = any(not q.is_scalar for q in g.quantities.values())
    rules = {r.wrt: r for r in matrix_rules(g)} if has_matrix else {}
    derived = selected if only else [n for n in selected if n in spec.update] or selected
    return Setting(problem, solution, lang, mode, solution.digits, names, symbolic, exercise,
                   not symbolic and not exercise, g.loss, names[g.loss], tuple(selected), rules, bool(rules),
                   frozenset(changing(spec)), {}, tuple(derived))


def selected_parameters(spec, params: list, only) -> list:
    """`params` restricted to those named by --only (an unknown name is an error)."""
    if not only:
        return params
    unknown = [n for n in only if n not in params]
    if unknown:
        raise DeriveError(f"--only: {', '.join(repr(u) for u in unknown)} "
                          f"{'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
                          f"of {spec.id} (parameters: {', '.join(params)})")
    return [n for n in params if n in only]


def _order(problem, only) -> list:
    """Parameters to derive, the ones nearest the loss first (as textbooks do)."""
    g = problem.graph
    params = selected_parameters(problem.spec, list(g.parameters), only)
    distance = distances(g, problem.calculus)

    def depth(name):
        ds = [distance[e] for e in g.quantities[name].entries if e in distance]
        return min(ds) if ds else 10 ** 9

    return sorted(params, key=lambda n: (depth(n), list(g.parameters).index(n)))


def distances(g, calc) -> dict:
    """Entry -> number of steps on the shortest way to the loss."""
    dist = {g.loss_entry: 0}
    for e in reversed(g.order):
        cs = [dist[c] for c in calc.consumers(e) if c in dist]
        if cs and e not in dist:
            dist[e] = 1 + min(cs)
    return dist


def changing(spec) -> set:
    """Names whose value changes with an update step (updated parameters and what uses them)."""
    out = set(spec.update)
    for d in spec.forward:
        if any(u in out for u in ex.ordered_names(d.tree)):
            out.add(d.name)
    return out


# ---------------------------------------------------------------- sub-trees for the engine
def at_step(node, k: int):
    """The tree with every name at step k (NAME@k), chains rebuilt along, not down."""
    if k == 0:
        return node
    if isinstance(node, ex.Name):
        return ex.AtStep(node.id, k)
    if isinstance(node, ex.Neg):
        return ex.Neg(at_step(node.operand, k))
    if isinstance(node, ex.Call):
        return ex.Call(node.fn, tuple(at_step(a, k) for a in node.args))
    if ex.is_chain(node):
        first, rest = ex.spine(node)
        out = at_step(first, k)
        for op, t in rest:
            out = ex.Bin(op, out, at_step(t, k))
        return out
    if isinstance(node, ex.Bin):
        return ex.Bin(node.op, at_step(node.left, k), at_step(node.right, k))
    return node

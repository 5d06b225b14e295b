"""Teaching remarks: short notes where the numbers call for them, found from data, never per problem.

Takes a handout's `Setting` (the graph, the spec, the engine's certified numbers) and gives
`Remark`s — a kind, the section it belongs to, and its LaTeX arguments — that the templates turn
into a sentence of the document's language (`remark_<kind>` in strings.<lang>.toml).  The kinds:

- `saturated`: a sigmoid or tanh unit whose local derivative σ′ = out(1 − out) (tanh′ = 1 − out²)
  is below SATURATED; its value is shown honestly as 1 − ε (or ε, −1 + ε) with ε certified, and
  the remark says that the gradients flowing through it nearly vanish;
- `dead_relu`: a ReLU unit whose pre-activation is ≤ 0: its output is 0 and its derivative 0
  (derive's convention at 0), so no gradient flows back through it;
- `target_outside`: a target compared with a bounded output (σ ∈ (0, 1), tanh ∈ (−1, 1), ReLU ≥ 0)
  that lies outside that range: the loss cannot reach 0, whatever the weights;
- `large_step`: an update that changes a parameter by more than LARGE_STEP times its own size
  (taken as at least STEP_FLOOR): the learning rate is large for this gradient;
- `hidden_step`: updated parameters whose new value looks like the old one at the handout's digits
  (house-price's w₁ changes by 3.8×10⁻⁸): named, with the first one's change;
- `loss_hardly_falls`: after the steps the loss fell by less than HARDLY_FALLS of itself (a loss
  that rises needs no remark: the pass after the step says so, and that the rate is too large);
  after one step `loss_hardly_falls_one`, without the percentage the sentence above it states.

Remarks of one kind among `saturated`, `dead_relu` and `large_step` are merged into one
`<kind>_many` remark whose arguments are tuples (one entry per quantity), joined by the template's
list separator: "h₁, h₂, h₃ are saturated", not three near-identical sentences.

Decisions use the engine's floats (only to decide); every number a remark prints is the engine's
certified text at the handout's digits.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from . import expr as ex
from . import printer as pr

SATURATED = 1e-4        # σ′ (or tanh′) below this: the unit is saturated
LARGE_STEP = 10.0       # |Δp| > LARGE_STEP · max(|p|, STEP_FLOOR): a large step
STEP_FLOOR = 0.1
HARDLY_FALLS = 1e-4     # the loss fell by less than this fraction of itself
BOUNDS = {"sigmoid": (0, 1, "(0, 1)"), "tanh": (-1, 1, "(-1, 1)"), "relu": (0, None, "[0, \\infty)")}
MAX_REMARKS_PER_KIND = 3   # hidden steps: the first few named, then "…"
MAX_NAMED = 8              # a merged remark names at most this many quantities, then "…"
MERGED = ("saturated", "dead_relu", "large_step")   # one remark per kind, naming every quantity


@dataclass(frozen=True)
class Remark:
    kind: str                 # 'saturated', 'dead_relu', 'target_outside', 'large_step', ...
    where: str                # the section it belongs to: 'forward', 'update' or 'after'
    args: tuple = ()          # (placeholder, LaTeX) pairs for remark_<kind>

    def __getitem__(self, key: str) -> str:
        return dict(self.args)[key]

    @property
    def values(self) -> dict:
        return dict(self.args)

    def inline(self, open_: str, close: str) -> dict:
        """The arguments as inline math of a format (the template passes its delimiters)."""
        return {k: f"{open_}{v}{close}" for k, v in self.args}


def remarks(s) -> tuple:
    """Every remark the numbers of this handout call for (none for symbolic specs or sheets)."""
    if not s.numeric:
        return ()
    found = _units(s) + _targets(s)
    if s.spec.steps >= 1:
        found += _steps(s) + _loss(s)
    return tuple(_merged(found))


def _merged(found: list) -> list:
    """Remarks of one kind (MERGED) as one remark `<kind>_many` whose arguments are tuples, one
    entry per quantity (at most MAX_NAMED, then "…" among the names), in the place of the first:
    house-price's h₁, h₂ and h₃ are saturated in one sentence, none picked arbitrarily."""
    out, groups = [], {}
    for r in found:
        if r.kind in MERGED:
            groups.setdefault(r.kind, []).append(r)
    done = set()
    for r in found:
        group = groups.get(r.kind)
        if group is None or len(group) == 1:
            out.append(r)
            continue
        if r.kind in done:
            continue
        done.add(r.kind)
        shown = group[:MAX_NAMED]
        args = []
        for key, _ in r.args:
            vals = tuple(g[key] for g in shown)
            if key in ("unit", "param") and len(group) > len(shown):
                vals += ("\\ldots",)
            args.append((key, vals))
        out.append(Remark(r.kind + "_many", r.where, tuple(args)))
    return out


def for_section(found: tuple, where: str) -> tuple:
    return tuple(r for r in found if r.where == where)


# ---------------------------------------------------------------- units
def _activation(d) -> tuple:
    """(function, argument tree) when a definition is an activation of something, else (None, None)."""
    t = d.tree
    if isinstance(t, ex.Call) and t.fn in BOUNDS and len(t.args) == 1:
        return t.fn, t.args[0]
    return None, None


def _units(s) -> list:
    out: list = []
    counts: dict = {}
    for d in s.spec.forward:
        fn, arg = _activation(d)
        if fn is None:
            continue
        q = s.g.quantities[d.name]
        vals = s.sol.shaped(d.name).values
        for i, (entry, v) in enumerate(zip(q.entries, vals)):
            r = _unit_remark(s, d.name, fn, arg, q, i, entry, v)
            if r is None:
                continue
            counts[r.kind] = counts.get(r.kind, 0) + 1
            if counts[r.kind] <= MAX_NAMED + 1:      # enough for the merged remark to show "…"
                out.append(r)
    return out


def _unit_remark(s, name, fn, arg, q, i, entry, v):
    unit = s.edisp(entry)
    x = v.approx
    if fn == "relu":
        if x == 0 and not _arg_positive(s, arg, q, i):
            return Remark("dead_relu", "forward", (("unit", unit),))
        return None
    local = x * (1 - x) if fn == "sigmoid" else 1 - x * x
    if abs(local) >= SATURATED or v.exact is not None:
        return None
    # the value as 1 − ε (or ε, −1 + ε), ε certified by the engine
    if fn == "sigmoid":
        near, eps_text = ("1", f"1 - {name}") if x > 0.5 else ("0", name)
        slope_text = f"{name}*(1 - {name})"
    else:
        near, eps_text = ("1", f"1 - {name}") if x > 0 else ("-1", f"1 + {name}")
        slope_text = f"1 - {name}^2"
    eps = _entry_text(s, eps_text, i)
    shown = eps if near == "0" else f"{near} - {eps}" if near == "1" else f"-1 + {eps}"
    formula = f"{unit} \\cdot (1 - {unit})" if fn == "sigmoid" else f"1 - {pr.brace(unit)}^{{2}}"
    slope = f"{formula} \\approx {_entry_text(s, slope_text, i)}"     # ε and the slope are rounded
    return Remark("saturated", "forward", (("unit", unit), ("value", f"{unit} \\approx {shown}"), ("slope", slope)))


def _arg_positive(s, arg, q, i) -> bool:
    if isinstance(arg, ex.Name) and arg.id in s.g.quantities:
        return s.sol.shaped(arg.id).values[i].approx > 0
    return False


def _entry_text(s, text: str, i: int) -> str:
    """Entry i of an expression over the spec's names, as the engine rounds it (LaTeX)."""
    return pr.number(s.eval_text(text).values[i].text)


# ---------------------------------------------------------------- targets
def _bounded(s, name: str, seen=()) -> str | None:
    """The activation whose range bounds `name` (following aliases such as y_pred = o1), or None."""
    d = next((d for d in s.spec.forward if d.name == name), None)
    if d is None or name in seen:
        return None
    fn, _ = _activation(d)
    if fn is not None:
        return fn
    if isinstance(d.tree, ex.Name):
        return _bounded(s, d.tree.id, seen + (name,))
    return None


def _differences(node):
    """Every (a, b) of a subtraction a − b of two names in a tree."""
    if isinstance(node, ex.Bin):
        if node.op == "-" and isinstance(node.left, ex.Name) and isinstance(node.right, ex.Name):
            yield node.left.id, node.right.id
        yield from _differences(node.left)
        yield from _differences(node.right)
    elif isinstance(node, (ex.Neg, ex.Call)):
        for c in ex.children(node):
            yield from _differences(c)


def _targets(s) -> list:
    out = []
    for d in s.spec.forward:
        for a, b in _differences(d.tree):
            for target, output in ((a, b), (b, a)):
                r = _target_remark(s, target, output)
                if r is not None and r not in out:
                    out.append(r)
    return out


def _target_remark(s, target: str, output: str):
    if target not in s.spec.data:
        return None
    fn = _bounded(s, output)
    if fn is None:
        return None
    lo, hi, interval = BOUNDS[fn]
    value = s.spec.data[target]
    outside = [i for i, t in enumerate(value.entries) if t < lo or (hi is not None and t > hi)]
    if not outside:
        return None
    if len(value.entries) == 1:
        shown = f"{s.names[target]} = {pr.fraction(value.entries[0])}"
    elif len(outside) == len(value.entries):      # every entry: the target itself, on the line:
        # a vector as (2, 3)ᵀ (a display-size pmatrix pushed the line of text apart)
        r, c = value.shape
        row = ", ".join(pr.fraction(q) for q in value.entries)
        shown = f"{s.names[target]} = " + (f"\\left({row}\\right)^{{\\top}}" if c == 1 else
                                           f"\\left({row}\\right)" if r == 1 else s.value_tex(target))
    else:                                         # the entries outside, each named
        entries = s.g.quantities[target].entries
        shown = ", ".join(f"{s.edisp(entries[i])} = {pr.fraction(value.entries[i])}" for i in outside)
    return Remark("target_outside", "forward", (
        ("target", s.names[target]), ("value", shown),
        ("output", s.names[output]),
        ("range", interval)))


# ---------------------------------------------------------------- the update and the loss after it
def _hidden_steps(s) -> list:
    """Parameters whose update does not show at the handout's digits (0.200000 → 0.200000): one
    remark naming them, with the first one's change, certified by the engine."""
    k = s.spec.steps
    hidden = []
    for name in s.spec.update:
        q = s.g.quantities[name]
        before, after = s.sol.shaped(name, "value", 0), s.sol.shaped(name, "value", k)
        for entry, b, a in zip(q.entries, before.values, after.values):
            # 0.2 → 0.200000 though it changed: by its exact values (house-price's w3 moves by 3.5e-18,
            # below a float's resolution, and was left out of "w1, w2, w4, …")
            changed = a.exact != b.exact if a.exact is not None and b.exact is not None else \
                a.exact is not None or b.exact is not None or a.approx != b.approx
            if Decimal(b.text) == Decimal(a.text) and changed:
                hidden.append((name, entry))
    if not hidden:
        return []
    name, entry = hidden[0]
    shape = s.g.quantities[name].shape
    ref = ex.entry_text(name, shape, entry.flat)
    change = pr.number(s.eval_text(f"{ex.entry_text(name, shape, entry.flat, k)} - {ref}").values[0].text)
    shown = [s.edisp(e) for _, e in hidden[:MAX_REMARKS_PER_KIND]]
    return [Remark("hidden_step", "update", (
        ("params", ", ".join(shown) + (r", \ldots" if len(hidden) > len(shown) else "")),
        ("first", s.edisp(entry)), ("change", change), ("digits", str(s.digits)), ("n", str(len(hidden)))))]


def _steps(s) -> list:
    out = _hidden_steps(s)
    k = s.spec.steps
    for name in s.spec.update:
        before, after = s.sol.shaped(name, "value", 0), s.sol.shaped(name, "value", k)
        q = s.g.quantities[name]
        for entry, b, a in zip(q.entries, before.values, after.values):
            if abs(a.approx - b.approx) > LARGE_STEP * max(abs(b.approx), STEP_FLOOR):
                out.append(Remark("large_step", "update", (
                    ("param", s.edisp(entry)), ("before", pr.number(b.text)), ("after", pr.number(a.text)))))
                if sum(r.kind == "large_step" for r in out) > MAX_NAMED:
                    return out
    return out


def _loss(s) -> list:
    h = s.sol.history
    first, last = h[0], h[s.spec.steps]
    if first.approx == 0:
        return []
    if last.approx >= first.approx:   # a rise: the pass after the step says so, with its numbers
        return []
    drop = (first.approx - last.approx) / first.approx
    if drop < HARDLY_FALLS:
        if s.spec.steps == 1:   # the sentence after the step states the percentage already
            return [Remark("loss_hardly_falls_one", "after")]
        percent = pr.number(s.loss_fall_percent(s.spec.steps).text)   # 100·(L − L@k)/L, certified
        return [Remark("loss_hardly_falls", "after", (("percent", percent),))]
    return []

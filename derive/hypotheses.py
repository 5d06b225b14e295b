"""The catalogued mistakes: each `Hypothesis` is the `engine.WhatIf` of the recomputation that
makes the mistake (an activation derivative at the wrong place or left out, a dropped path, a
mistaken update, updated weights), or a transform of the true value (sign, factor 2, one term
of a sum with the wrong sign)."""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations

import sympy as sp

from . import engine
from . import expr as ex
from . import matrixform as mf
from .functions import relu, sigmoid, softplus
from .solve import Problem
from .claims import nodes
DIAGNOSES = ("used-preactivation", "missing-activation-derivative", "sign-flip", "factor-2",
             "update-sign", "update-missing-weight", "dropped-path", "used-updated-weights",
             "carried-forward", "arithmetic")
ACTIVATIONS = {"sigmoid": sigmoid, "tanh": sp.tanh, "relu": relu, "softplus": softplus}
MAX_SUBSETS_CONSUMERS = 4        # branch entries with more consumers: only "one consumer kept"


def entry_key(e) -> tuple:
    """An entry of the per-scalar graph as the engine names it: (quantity, row-major index)."""
    return (e.quantity, 0 if not e.index else e.index[0] * e.qshape[1] + e.index[1])


# ---------------------------------------------------------------- hypotheses
@dataclass(frozen=True)
class Hypothesis:
    kind: str                   # a diagnosis
    key: str                    # unique id
    text: tuple                 # (English, Chinese) description
    world: object = None        # the engine.WhatIf of its recomputation
    transform: object = None    # T entries -> alt entries (sign-flip, factor-2)
    term_of: str | None = None  # sign-flip of one term of this quantity's definition
    term: int = -1


def _activations(graph) -> list:
    """[(quantity, fn, [(entry, argument)], constant)]: σ/tanh/relu/softplus layers, and linear
    activations c·(… @ …) (constant c, as in h = 2*(W @ x))."""
    out = []
    for q in graph.quantities.values():
        if q.kind != "forward":
            continue
        t = q.tree
        if isinstance(t, ex.Call) and t.fn in ACTIVATIONS:
            items = [(e, loc.args[0]) for e, loc in zip(q.entries, q.local)
                     if isinstance(loc, ACTIVATIONS[t.fn]) or getattr(loc, "func", None) is ACTIVATIONS[t.fn]]
            if items:
                out.append((q.name, t.fn, items, None))
        elif isinstance(t, ex.Bin) and t.op == "*" and q.name != graph.loss:
            for const, inner in ((t.left, t.right), (t.right, t.left)):
                cv = mf._constant(const)
                if cv is not None and cv not in (0, 1) and _has_matmul(inner):
                    out.append((q.name, "linear", [(e, None) for e in q.entries], cv))
                    break
    return out


def compared(graph) -> tuple | None:
    """(output, target): the first pair of a forward quantity and a target that one definition
    compares (a target is data that enters no definition with a parameter: not a network input),
    e.g. softmax-3's (p, t), house-price's (y_hat, y); None when the loss compares nothing so."""
    qs = graph.quantities
    params = set(graph.parameters)
    inputs = {u for q in qs.values() if q.kind == "forward" and any(u in params for u in q.uses)
              for u in q.uses if qs[u].kind == "data"}
    for q in qs.values():
        if q.kind != "forward":
            continue
        targets = [u for u in q.uses if qs[u].kind == "data" and u not in inputs]
        outputs = [u for u in q.uses if qs[u].kind == "forward"]
        if targets and outputs:
            return outputs[0], targets[0]
    return None


def halved(graph) -> str | None:
    """The first forward quantity whose definition has a factor ½ (½(t − o)², ½‖δ‖²), or None."""
    for q in graph.quantities.values():
        if q.kind == "forward" and q.tree is not None and any(
                (isinstance(n, ex.Num) and n.value == Fraction(1, 2))
                or (isinstance(n, ex.Bin) and n.op == "/" and isinstance(n.right, ex.Num) and n.right.value == 2)
                for n in nodes(q.tree)):
            return q.name
    return None


def _has_matmul(t) -> bool:
    return any(isinstance(n, ex.Bin) and n.op == "@" for n in nodes(t))


def _with_derivatives(graph, items) -> bool:
    return any(graph.uses.get(e) for e, _arg in items)


def _preact_hook(graph, groups, mode: str):
    """Local derivatives of σ or tanh layers with the output replaced: 'pre' → the
    pre-activation (σ(z)(1 − σ(z)) → z(1 − z)), 'out' → f of the output (σ(y)(1 − σ(y)))."""
    names = tuple((name, mode) for name, fn, items, _c in groups
                  if fn in ("sigmoid", "tanh") and _with_derivatives(graph, items))
    return engine.WhatIf(activation=names) if names else None


def _drop_hook(graph, groups):
    """The factor f'(·) of the activations dropped: ∂y/∂u becomes ∂(pre-activation)/∂u."""
    names = tuple((name, "drop") for name, _fn, items, _c in groups if _with_derivatives(graph, items))
    return engine.WhatIf(activation=names) if names else None


def _zero_hook(pairs):
    """The local derivatives ∂c/∂e of the (consumer c, entry e) pairs taken as 0."""
    return engine.WhatIf(dropped=frozenset((entry_key(c), entry_key(e)) for c, e in pairs))


def hypotheses_of(problem: Problem) -> list:
    graph = problem.graph
    spec = problem.spec
    hyps: list[Hypothesis] = []
    acts = _activations(graph)

    def act_label(groups):
        names = ", ".join(g[0] for g in groups)
        return names

    groups = [[a] for a in acts] + ([acts] if len(acts) > 1 else [])
    for g in groups:
        label = act_label(g)
        for mode in ("pre", "out"):
            hook = _preact_hook(graph, g, mode)
            if hook is None:
                continue
            if mode == "pre":
                text = (f"f'(u) of {label} evaluated at the pre-activation u (u(1 − u) for σ(u)(1 − σ(u)))",
                        f"{label} 的激活函数导数在预激活值 u 处计算(把 σ(u)(1 − σ(u)) 写成 u(1 − u))")
            else:
                text = (f"f' of {label} evaluated at the output y instead of the pre-activation (σ(y)(1 − σ(y)))",
                        f"{label} 的激活函数导数在输出 y 处计算(σ(y)(1 − σ(y)))")
            hyps.append(Hypothesis("used-preactivation", f"pre-{mode}-{label}", text,
                                   hook))
    for g in groups:
        hook = _drop_hook(graph, g)
        if hook is None:
            continue
        label = act_label(g)
        hyps.append(Hypothesis("missing-activation-derivative", f"drop-{label}",
                               (f"the factor f'(·) of {label} left out of the chain",
                                f"链式法则中漏掉了 {label} 的激活函数导数 f'(·)"),
                               hook))
    pair = compared(graph)
    o, t = pair if pair else ("o", "t")           # the problem's own output and target
    hyps.append(Hypothesis("sign-flip", "neg", (f"the negative of the true value (e.g. {t} − {o} for {o} − {t})",
                                                 f"符号相反（例如把 {o} − {t} 写成 {t} − {o}）"),
                           transform=lambda t: [-x for x in t]))
    for q in graph.quantities.values():
        if q.kind == "forward" and q.is_scalar and isinstance(q.local[0], sp.Add):
            for i, term in enumerate(q.local[0].args):
                hyps.append(Hypothesis("sign-flip", f"term-{q.name}-{i}",
                                       (f"the term {term} of {q.name} with the wrong sign",
                                        f"{q.name} 中的项 {term} 符号写反"),
                                       term_of=q.name, term=i))
    half = halved(graph)
    hyps.append(Hypothesis("factor-2", "double",
                           (f"twice the true value (e.g. the ½ in the definition of {half} dropped, or a term "
                            "counted twice)", f"真值的 2 倍（例如漏掉了 {half} 定义中的 ½，或把一项算了两次）")
                           if half else ("twice the true value (e.g. a term counted twice)",
                                         "真值的 2 倍（例如把一项算了两次）"),
                           transform=lambda t: [2 * x for x in t]))
    hyps.append(Hypothesis("factor-2", "half", ("half the true value (e.g. ½ applied twice, or a factor 2 "
                                                "missing)", "真值的一半(例如 ½ 用了两次,或漏掉因子 2)"),
                           transform=lambda t: [x / 2 for x in t]))
    if spec.update:
        hyps.append(Hypothesis("update-sign", "plus", ("the update p + η·∂L/∂p instead of p − η·∂L/∂p",
                                                      "更新写成 p + η·∂L/∂p(应为 p − η·∂L/∂p)"),
                               engine.WhatIf(update="ascent")))
        hyps.append(Hypothesis("update-missing-weight", "step-only",
                               ("η·∂L/∂p (the step alone) given as the new parameter; the 'p −' is missing",
                                "把 η·∂L/∂p 当成了新参数,漏掉了 “p −”"),
                               engine.WhatIf(update="step")))
        hyps.append(Hypothesis("update-missing-weight", "minus-step-only",
                               ("−η·∂L/∂p given as the new parameter; the p is missing",
                                "把 −η·∂L/∂p 当成了新参数,漏掉了 p"),
                               engine.WhatIf(update="minus-step")))
    # dropped paths: a branch's adjoint from only some of its consumers
    calc = problem.calculus
    by_quantity: dict = {}
    for e in graph.order:
        q = graph.quantities[e.quantity]
        if q.kind == "data" or e == graph.loss_entry:
            continue
        cons = calc.consumers(e)
        if len(cons) < 2:
            continue
        subsets = []
        if len(cons) <= MAX_SUBSETS_CONSUMERS:
            for r in range(1, len(cons)):
                subsets += list(combinations(cons, r))
        else:
            subsets = [(c,) for c in cons]
        for kept in subsets:
            dropped = [c for c in cons if c not in kept]
            pairs = tuple((c, e) for c in dropped)
            hyps.append(Hypothesis(
                "dropped-path", f"drop-{e.name}-{'+'.join(c.name for c in kept)}",
                (f"∂L/∂{e.name} summed over the path(s) through {', '.join(c.name for c in kept)} only "
                 f"(through {', '.join(c.name for c in dropped)} left out)",
                 f"∂L/∂{e.name} 只对经过 {', '.join(c.name for c in kept)} 的路径求和"
                 f"(漏掉了经过 {', '.join(c.name for c in dropped)} 的路径)"),
                _zero_hook(pairs)))
        for c in cons:
            by_quantity.setdefault((e.quantity, c.quantity), []).append((c, e))
    for (x, y), pairs in by_quantity.items():
        entries = graph.quantities[x].entries
        if len(entries) > 1 or any(len(calc.consumers(e)) > 1 for e in entries):
            others = {c.quantity for e in entries for c in calc.consumers(e)} - {y}
            if not others:
                continue
            hyps.append(Hypothesis(
                "dropped-path", f"dropq-{x}-{y}",
                (f"∂L/∂{x} without the path(s) through {y}", f"∂L/∂{x} 漏掉了经过 {y} 的路径"),
                _zero_hook(tuple(pairs))))
    if spec.update and graph.parameters:
        hyps.append(Hypothesis("used-updated-weights", "updated",
                               ("backpropagated through parameters already updated in this step "
                                "(hidden deltas from the new weights)",
                                "反向传播时用了本步已经更新过的参数(用新权重计算隐藏层的误差项)"),
                               engine.WhatIf(updated_weights=True)))
    return hyps

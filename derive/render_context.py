"""The parts of a worked solution around the backward pass: the given numbers, the forward pass
(formula → numbers substituted → partial results → value), the update p − η·∂L/∂p, the forward
pass again with the new loss and the loss history.

Functions of a `handout.Setting`; every number comes from the engine (through the `Solution` or
`Setting.eval`), every formula from `derive.printer`.
"""
from __future__ import annotations

from . import expr as ex
from . import printer as pr
from .graph import derivative_tree, function_sympy
from .handout import After, Row, Setting, Step, Update
from .layout import Eq, layout, one, pack, paren, relation, shown, shown_exact


# ---------------------------------------------------------------- given
def given(s: Setting) -> dict:
    data, params = [], []
    for name, q in s.g.quantities.items():
        if q.kind == "forward":
            continue
        value = "" if s.symbolic else s.value_tex(name)
        row = Row(name, s.names[name], value, s.shape_text(name), not q.is_scalar)
        (params if q.kind == "parameter" else data).append(row)
    lr = s.spec.learning_rate
    return {
        "functions": functions_used(s),
        "function_eq": function_eq(functions_used(s)),
        "data": tuple(data),
        "parameters": tuple(params),
        "data_matrices": pack([f"{r.sym} = {r.value}" for r in data if r.matrix]),
        "parameter_matrices": pack([f"{r.sym} = {r.value}" for r in params if r.matrix]),
        "learning_rate": "\\eta" if lr is None else pr.fraction(lr),
        "updated": tuple(s.names[n] for n in s.spec.update),
        "fixed": tuple(s.names[n] for n in s.g.parameters if n not in s.spec.update),
        "all_updated": set(s.spec.update) == set(s.g.parameters),
        "steps": s.spec.steps,
    }


FUNCTION_DEFINITIONS = {   # the functions a definition may use that need a word of introduction
    "sigmoid": ("\\sigma(z) = \\frac{1}{1 + e^{-z}}", "\\sigma'(z) = \\sigma(z)\\left(1 - \\sigma(z)\\right)"),
    "tanh": ("\\tanh(z) = \\frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}", "\\tanh'(z) = 1 - \\tanh^{2}(z)"),
    "relu": ("\\operatorname{ReLU}(z) = \\max(0, z)",
             f"\\operatorname{{ReLU}}'(z) = {pr.indicator('z')} = \\begin{{cases}} 1 & z > 0 \\\\ 0 & z \\le 0 \\end{{cases}}"),
    "softplus": ("\\operatorname{softplus}(z) = \\ln\\left(1 + e^{z}\\right)",
                 "\\operatorname{softplus}'(z) = \\sigma(z)"),
    "mean": ("\\operatorname{mean}(v) = \\frac{1}{n} \\sum_{i=1}^{n} v_{i}",
             "\\frac{\\partial \\operatorname{mean}(v)}{\\partial v_{i}} = \\frac{1}{n}"),
    "softmax": ("\\operatorname{softmax}(z)_{i} = \\frac{e^{z_{i}}}{\\sum_{j} e^{z_{j}}}",
                "\\frac{\\partial \\operatorname{softmax}(z)_{i}}{\\partial z_{j}} = "
                "\\operatorname{softmax}(z)_{i} \\left(\\mathbf{1}[i = j] - \\operatorname{softmax}(z)_{j}\\right)"),
    "log": ("\\log z = \\ln z", "\\log'(z) = \\frac{1}{z}"),
    "sum": ("\\sum v = v_{1} + v_{2} + \\dots + v_{n}", "\\frac{\\partial \\sum v}{\\partial v_{i}} = 1"),
    "frobenius": ("\\left\\lVert A \\right\\rVert_{F} = \\sqrt{\\textstyle\\sum_{i,j} a_{ij}^{2}} "
                  "\\ \\left(A = (a_{ij})\\right)",
                  "\\frac{\\partial \\left\\lVert A \\right\\rVert_{F}}{\\partial a_{ij}} = "
                  "\\frac{a_{ij}}{\\left\\lVert A \\right\\rVert_{F}}"),
    "norm2": ("\\left\\lVert A \\right\\rVert_{2} = \\sqrt{\\lambda_{\\max}\\left(A^{\\top} A\\right)}", ""),
    "odot": ("(a \\odot b)_{i} = a_{i} b_{i}", ""),
}


def functions_used(s: Setting) -> tuple:
    """(definition, derivative) LaTeX of the functions the definitions use, in order of first use:
    the spec's own [functions] too (f(x) = 2·x, f′(x) = 2), and the functions their bodies use."""
    seen: list = []
    own = s.spec.functions

    def walk(tree, in_body: bool):
        stack = [tree]
        while stack:
            n = stack.pop()
            if isinstance(n, ex.Call) and n.fn in own and n.fn not in seen:
                seen.append(n.fn)
                walk(own[n.fn].body, True)
            if isinstance(n, ex.Call) and n.fn in FUNCTION_DEFINITIONS and n.fn not in seen:
                seen.append(n.fn)
            if not in_body and isinstance(n, ex.Bin) and n.op == "*" and "odot" not in seen \
                    and shape_of(s, n.left) and shape_of(s, n.right):    # printed a ⊙ b
                seen.append("odot")
            stack.extend(reversed(ex.children(n)))

    for d in s.spec.forward:
        walk(d.shown, False)
    return tuple(own_function(own[f]) if f in own else FUNCTION_DEFINITIONS[f] for f in seen)


def own_function(fn) -> tuple:
    """(f(x) = body, f′(x) = its derivative) of a function of [functions], the derivative by
    sympy.diff (`graph.function_sympy`), written in the expression language where it can be."""
    x = fn.param
    tree = pr.TreePrinter({x: x}, lambda n: ())
    name = pr.function_name(fn.name)
    d = derivative_tree(fn)
    d_tex = tree.tex(d) if d is not None else pr.latex(function_sympy(fn)[1], {})
    return (f"{pr.call(name, x)} = {tree.tex(fn.body)}", f"{pr.call(pr.function_prime(fn.name), x)} = {d_tex}")


def function_eq(defs) -> Eq | None:
    """The definitions (and derivatives) as one display, each function on a line of its own."""
    if not defs:
        return None
    items = [f"{d}, \\qquad {dd}" if dd else d for d, dd in defs]
    return Eq(tuple("&" + t for t in items), items[0] if len(items) == 1 else None, "")


# ---------------------------------------------------------------- forward pass
def step(s: Setting, name: str, k: int = 0, formula: bool = True) -> Step:
    q = s.g.quantities[name]
    tree = q.shown      # as written: h = f(W x), not f's body
    lhs = s.disp(name, k)
    parts = []
    sym = pr.TreePrinter(s.names, s.shape, step=k, stepped=s.changes)
    if formula or not s.numeric or isinstance(tree, ex.Name):
        parts.append(("=", sym.chunks(tree)))
    if not s.numeric:
        return Step(name, lhs, layout(lhs, parts))
    subst = pr.TreePrinter(s.names, s.shape, subst=lambda n: s.value_tex(n, k))
    if not isinstance(tree, (ex.Name, ex.Num)):
        # "=" marks an exact value: numbers substituted rounded (h₁ ≈ 0.0474259) make the line "≈"
        exact = all(relation(s.sol.shaped(n, "value", k).values) == "="
                    for n in sorted(ex.names_in(tree)) if n in s.g.quantities)
        parts.append(("=" if exact else "\\approx", subst.chunks(tree)))
        parts += intermediate(s, tree, k, exact)
    shaped = s.sol.shaped(name, "value", k)
    value = pr.shaped_latex(shaped)
    parts.append((relation(shaped.values), one(saturated(s, name, k, value) or value)))
    return Step(name, lhs, layout(lhs, parts), value)


def saturated(s: Setting, name: str, k: int, value: str) -> str | None:
    """A scalar that rounds to ±1 without being it (a saturated σ or tanh), honestly: 1 − ε with
    ε = 1 − value (or −1 + ε) as the engine rounds it, e.g. 1 − 2.28973×10⁻¹¹; else None."""
    if s.g.quantities[name].shape or not pr.rounds_to_one(value):
        return None
    ref = name if k == 0 or name not in s.changes else f"{name}@{k}"
    if value.startswith("-"):
        return f"-1 + {pr.number(s.eval_text(f'1 + {ref}').values[0].text)}"
    return f"1 - {pr.number(s.eval_text(f'1 - {ref}').values[0].text)}"


def intermediate(s: Setting, tree, k: int, exact: bool = True) -> list:
    """Partial results the documents show: term values of a sum, 1/(1+e^-x) for σ, c·value; their
    relation is "=" only when the line before is exact and every value shown is."""
    terms = sum_terms(tree)
    if len(terms) >= 2 and any(not isinstance(t, (ex.Name, ex.Num)) for _, t in terms):
        chunks = []
        for i, (sign, t) in enumerate(terms):
            v = s.eval(t, k)
            exact = exact and relation(v.values) == "="
            tex = pr.shaped_latex(v)
            if i == 0:
                chunks.append(("", tex if sign == "+" else "-" + paren(tex)))
            else:
                chunks.append((sign, paren(tex)))
        return [("=" if exact else "\\approx", chunks)]
    if isinstance(tree, ex.Call) and tree.fn == "sigmoid" and not shape_of(s, tree.args[0]):
        x = s.eval(tree.args[0], k).values[0]
        e = s.eval(ex.Call("exp", (ex.Neg(tree.args[0]),)), k).values[0]
        minus_x = x.text[1:] if x.text.startswith("-") else "-" + x.text
        return [("=" if exact else "\\approx", one(f"\\frac{{1}}{{1 + e^{{{pr.number(minus_x)}}}}}")),
                ("\\approx" if not (exact and shown_exact(e)) else "=", one(f"\\frac{{1}}{{1 + {pr.number(e.text)}}}"))]
    if isinstance(tree, ex.Bin) and tree.op == "*" and constant(tree.left) \
            and not isinstance(tree.right, (ex.Name, ex.Num)):
        v = s.eval(tree.right, k)
        const = pr.TreePrinter(s.names, s.shape).tex(tree.left)
        rel = "=" if exact and relation(v.values) == "=" else "\\approx"
        return [(rel, [("", const), ("\\cdot", paren(pr.shaped_latex(v)))])]
    if isinstance(tree, ex.Call) and tree.fn in s.spec.functions and not isinstance(tree.args[0], (ex.Name, ex.Num)):
        # f(W x) = f(its value), then the value: the argument's numbers before f is applied
        v = s.eval(tree.args[0], k)
        rel = "=" if exact and relation(v.values) == "=" else "\\approx"
        arg, name = pr.shaped_latex(v), pr.function_name(tree.fn)
        return [(rel, one(f"{name} {arg}" if v.shape else pr.call(name, arg)))]
    return []


def shape_of(s: Setting, node) -> tuple:
    return pr.TreePrinter(s.names, s.shape).shape(node)


def forward(s: Setting, k: int = 0) -> tuple:
    return tuple(step(s, d.name, k) for d in s.spec.forward if d.name != s.loss)


# ---------------------------------------------------------------- update and after
def updates(s: Setting) -> tuple:
    out = []
    eta = "\\eta" if s.spec.learning_rate is None else pr.fraction(s.spec.learning_rate)
    order = [n for n in s.g.parameters if n in s.spec.update and n in s.selected]
    for name in order:
        d = s.names[name]
        lhs = pr.with_step(d, 1)
        parts = [] if s.numeric else [("=", [("", d), ("-", f"\\eta \\, {pr.deriv(s.L, d)}")])]
        if s.numeric:       # the rule is stated once (update_rule), each parameter gets its numbers
            grad = s.sol.shaped(name, "adjoint", 0)
            new = s.sol.shaped(name, "value", 1)
            # η and the gradient stay on one line: no "− 0.01" dangling before a matrix
            parts.append((relation(grad.values), [("", s.value_tex(name)),
                                                   ("-", f"{eta} \\cdot {paren(pr.shaped_latex(grad))}")]))
            parts.append((relation(new.values), one(pr.shaped_latex(new))))
        out.append(Update(name, d, layout(lhs, parts)))
    return tuple(out)


def free_symbol(names: dict) -> str:
    """The placeholder of the update rule θ⁽¹⁾ = θ − η ∂L/∂θ: a letter no name of the problem is
    displayed as (softmax-3's output is p, so the rule's parameter cannot be called p)."""
    taken = set(names.values())
    return next(c for c in ("\\theta", "\\vartheta", "q", "u") if c not in taken)


def update_rule(s: Setting) -> str:
    """θ⁽¹⁾ = θ − η ∂L/∂θ for a parameter θ (inline LaTeX), stated once before the numbers."""
    p = free_symbol(s.names)
    return f"{pr.with_step(p, 1)} = {p} - \\eta \\, {pr.deriv(s.L, p, inline=True)}"


def after(s: Setting) -> After | None:
    if not s.numeric or s.sol.steps < 1:
        return None
    steps = tuple(step(s, d.name, 1, formula=False) for d in s.spec.forward if d.name != s.loss)
    loss = step(s, s.loss, 1, formula=False)
    before, after = s.sol.value(s.g.loss_entry, 0), s.sol.value(s.g.loss_entry, 1)
    change = s.eval_text(f"{s.loss} - ({s.loss}@1)").values[0]
    fell = not change.text.startswith("-") and change.text != "0"
    same = change.text == "0"
    percent = ""
    if before.text != "0":
        pct = s.loss_fall_percent(1)   # the sentence's precision
        percent = pr.number(pct.text.lstrip("-"))
    return After(steps, loss, shown(before), shown(after), pr.number(change.text.lstrip("-")), percent,
                 fell, same)


def history(s: Setting) -> tuple:
    if not s.numeric or s.sol.steps < 2:
        return ()
    return tuple((k, shown(v)) for k, v in enumerate(s.sol.history))


def sum_terms(tree) -> list:
    """[(sign, term)] of a top-level sum."""
    if isinstance(tree, ex.Bin) and tree.op in "+-":
        first, rest = ex.spine(tree)
        return [("+", first)] + rest
    return [("+", tree)]


def constant(tree) -> bool:
    return not ex.names_in(tree)

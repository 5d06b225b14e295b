"""The matrix specs' backward pass, layer by layer: each error signal δ = ∂L/∂Z once as a matrix
(formula first, then the numbers), each gradient in one line ∂L/∂W = δ · Aᵀ.

Every number printed in the backward pass is checked against an independent computation: the
networks are coded by hand below (mpmath, from the spec files read with tomllib through
tests/reference.py, not with derive), their error signals and gradients by the textbook's matrix
backpropagation written out in loops.
"""
from __future__ import annotations

import re

import mpmath
import pytest

import derive
import reference
from derive import render
from test_render import deltas, md_sections, numbers_in, tex_sections

MATRIX = ("matrix-linear", "linear-2x", "sigmoid-2-4-2", "relu-2-4-2", "softmax-3")
LANGS = ("en", "zh")


# ---------------------------------------------------------------- the textbook's backpropagation
def _col(v):
    return [[x] for x in v]


def _mm(A, B):
    return [[mpmath.fsum(a * b for a, b in zip(row, col)) for col in zip(*B)] for row in A]


def _t(A):
    return [list(c) for c in zip(*A)]


def _ew(f, *Ms):
    return [[f(*xs) for xs in zip(*rows)] for rows in zip(*Ms)]


def backprop(pid: str) -> tuple:
    """({quantity: δ or another ∂L/∂quantity}, {parameter: ∂L/∂parameter}, {name: value}) as
    matrices (lists of rows; a vector a column), by hand."""
    with mpmath.workdps(60):
        v = reference.numbers(pid)
        sig = reference.sig
        if pid == "matrix-linear":
            X, W1, W2, T = v["input_param"], v["w1"], v["w2"], v["output"]
            H = _mm(X, W1)
            P = _mm(H, W2)
            D = _ew(lambda p, t: p - t, P, T)
            dH = _mm(D, _t(W2))
            return ({"pred": D, "grad_pred": D, "hidden": dH},
                    {"w2": _mm(_t(H), D), "w1": _mm(_t(X), dH)},
                    {"hidden": H, "pred": P, "grad_pred": D, **v})
        x, yt = _col(v["x"]), _col(v.get("y_t", v.get("t")))
        if pid == "linear-2x":
            Wh, Wo = v["W_hidden"], v["W_output"]
            h = _ew(lambda z: 2 * z, _mm(Wh, x))
            y = _mm(Wo, h)
            d2 = _ew(lambda a, b: a - b, y, yt)               # ½‖y_t − y‖²: δ = y − y_t
            d1 = _mm(_t(Wo), d2)
            return ({"y_m": d2, "h": d1}, {"W_output": _mm(d2, _t(h)), "W_hidden": _mm(_ew(lambda d: 2 * d, d1), _t(x))},
                    {"h": h, "y_m": y, **v})
        if pid == "relu-2-4-2":
            Wh, Wo = v["W_hidden"], v["W_output"]
            z = _mm(Wh, x)
            h = _ew(lambda a: max(a, 0), z)
            y = _mm(Wo, h)
            n = len(y)
            d2 = _ew(lambda a, b: 2 * (a - b) / n, y, yt)     # mean((y − y_t)²): δ = 2/n·(y − y_t)
            d1 = _mm(_t(Wo), d2)
            gate = _ew(lambda d, a: d * (1 if a > 0 else 0), d1, z)
            return ({"y_m": d2, "h": d1}, {"W_output": _mm(d2, _t(h)), "W_hidden": _mm(gate, _t(x))},
                    {"h": h, "y_m": y, "z": z, **v})
        if pid == "sigmoid-2-4-2":
            Wh, bh, Wo, bo = v["W_hidden"], _col(v["b_hidden"]), v["W_output"], _col(v["b_output"])
            a = _ew(sig, _ew(lambda p, q: p + q, _mm(Wh, x), bh))
            y = _ew(sig, _ew(lambda p, q: p + q, _mm(Wo, a), bo))
            dy = _ew(lambda o, t: o - t, y, yt)
            d2 = _ew(lambda g, o: g * o * (1 - o), dy, y)      # (y − y_t) ⊙ σ′(z₂)
            da = _mm(_t(Wo), d2)
            d1 = _ew(lambda g, o: g * o * (1 - o), da, a)      # (W₂ᵀ δ₂) ⊙ σ′(z₁)
            return ({"y": dy, "z_output": d2, "a_hidden": da, "z_hidden": d1},
                    {"W_output": _mm(d2, _t(a)), "b_output": d2, "W_hidden": _mm(d1, _t(x)), "b_hidden": d1},
                    {"a_hidden": a, "y": y, **v})
        if pid == "softmax-3":
            W, b = v["W"], _col(v["b"])
            z = _ew(lambda p, q: p + q, _mm(W, x), b)
            total = mpmath.fsum(mpmath.exp(r[0]) for r in z)
            p = _ew(lambda s: mpmath.exp(s) / total, z)
            d = _ew(lambda q, t: q - t, p, yt)                 # softmax + cross-entropy, t one-hot: p − t
            return ({"z": d}, {"W": _mm(d, _t(x)), "b": d}, {"p": p, "z": z, **v})
    raise KeyError(pid)


# ---------------------------------------------------------------- reading the handout
def _num(text: str):
    text = text.strip().replace("\\left(", "").replace("\\right)", "")
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)(?: \\times 10\^\{(-?\d+)\})?", text)
    assert m, text
    return m.group(1) + (f"e{m.group(2)}" if m.group(2) else "")


def _digits(text: str) -> int:
    mant = text.split("e")[0].lstrip("-").replace(".", "").lstrip("0")
    return max(len(mant), 1)


def last_matrix(eq: str) -> list:
    """The entries (texts, row-major) of the last matrix of an equation (its value)."""
    body = re.findall(r"\\begin\{pmatrix\}(.*?)\\end\{pmatrix\}", eq, flags=re.S)[-1]
    return [_num(e) for row in body.split("\\\\") for e in row.split("&")]


def _flat(M) -> list:
    return [x for row in M for x in (row if isinstance(row, list) else [row])]


def _matches(texts: list, ref, exact: bool) -> bool:
    ref = _flat(ref)
    if len(texts) != len(ref):
        return False
    if exact:
        return all(mpmath.mpf(t) == r for t, r in zip(texts, ref))
    return all(reference.agrees(t, r, _digits(t)) for t, r in zip(texts, ref))


def _relation_of_value(eq: str) -> str:
    tail = eq.rsplit("\\begin{pmatrix}", 1)[0].rstrip()
    return "\\approx" if tail.endswith("\\approx") else "="


@pytest.fixture(scope="module", params=MATRIX)
def spec(request):
    pid = request.param
    p = derive.load(pid)
    ctx = render.build_context(p, p.solve(), lang="en")
    texts = {(fmt, lang): render.render_text(p, fmt=fmt, lang=lang) for fmt in ("md", "tex") for lang in LANGS}
    return pid, p, ctx, texts


def _delta_subscripts(ctx) -> dict:
    """quantity name -> the δ's subscript as printed (δ_{…})."""
    return {d.name: d.sym[len("\\delta_{"):-1] for layer in ctx["layers"] for d in layer.deltas}


def test_every_updated_matrix_has_one_gradient_line_after_its_error_signal(spec):
    pid, p, ctx, texts = spec
    layers = ctx["layers"]
    assert layers and not ctx["sections"]
    grads = [g.name for layer in layers for g in layer.grads]
    assert sorted(grads) == sorted(p.spec.update or p.graph.parameters)
    for (fmt, lang), out in texts.items():
        ds = deltas(out)
        assert set(ds) == set(_delta_subscripts(ctx).values()), (pid, fmt, lang)
        body = out.split("\n## 5.", 1)[1].split("\n## 6.", 1)[0] if fmt == "md" else out
        assert "We need" not in body and "need_first" not in body
        # the gradients use their layer's δ by name, right after the gradient's symbol, and each
        # comes after that δ
        for layer in layers:
            syms = [d.sym for d in layer.deltas]
            for g in layer.grads:
                line = (md_sections if fmt == "md" else tex_sections)(out)[g.sym]
                first = re.split(r" &?(?:=|\\approx) ", line)[1]
                assert any(d in first for d in syms), (pid, fmt, lang, g.name, line)
                assert out.index(syms[0] + " &=" if syms[0] + " &=" in out else syms[0] + " =") < out.index(line)


def test_error_signals_and_gradients_printed_are_the_reference(spec):
    pid, p, ctx, texts = spec
    adj, grads, values = backprop(pid)
    subs = _delta_subscripts(ctx)
    names = {g.name: g.sym for layer in ctx["layers"] for g in layer.grads}
    for (fmt, lang), out in texts.items():
        ds = deltas(out)
        secs = (md_sections if fmt == "md" else tex_sections)(out)
        for name, sub in subs.items():
            eq = ds[sub]
            assert _matches(last_matrix(eq), adj[name], _relation_of_value(eq) == "="), (pid, fmt, lang, name, eq)
        for name, sym in names.items():
            eq = secs[sym]
            assert _matches(last_matrix(eq), grads[name], _relation_of_value(eq) == "="), (pid, fmt, lang, name, eq)


def test_every_number_in_the_backward_pass_is_a_reference_value(spec):
    """The numbers substituted (forward values, data, parameters, the δs of the layer after, the
    other ∂L/∂Y on the way) and the values: each is one of the reference's, correctly rounded."""
    pid, p, ctx, texts = spec
    adj, grads, values = backprop(pid)
    pool = [mpmath.mpf(x) for x in (0, 1, 2)]
    for group in (adj, grads, values):
        for k, m in group.items():
            if k.startswith("_"):
                continue
            pool += _flat(m) if isinstance(m, list) else [m]
    for (fmt, lang), out in texts.items():
        body = out.split("\n## 5.", 1)[1].split("\n## 6.", 1)[0] if fmt == "md" \
            else re.split(r"\\section\{", out.split("\\begin{document}", 1)[1])[5]
        maths = re.findall(r"```math\n(.*?)\n```", body, flags=re.S) if fmt == "md" else \
            re.findall(r"\\begin\{align\*\}(.*?)\\end\{align\*\}|\\\[(.*?)\\\]", body, flags=re.S)
        math = "\n".join(m if isinstance(m, str) else "".join(m) for m in maths)
        assert math.count("pmatrix") >= 4, (pid, fmt, lang)
        math = re.sub(r"_\{(?:[^{}]|\{[^{}]*\})*\}|\^\{\\top\}", "", math)   # subscripts and ᵀ are no numbers
        for tex in numbers_in(math):
            t = _num(tex)
            assert any(reference.agrees(t, r, _digits(t)) for r in pool), (pid, fmt, lang, tex)


def test_error_signal_formula_before_numbers():
    """sigmoid-2-4-2: δ₂ = (y − y_t) ⊙ y ⊙ (1 − y), δ₁ = (W₂ᵀ · δ₂) ⊙ a ⊙ (1 − a), the rule in the
    ∂L/∂Y of the consumers first, then named quantities, then the numbers; ∂L/∂W = δ · aᵀ."""
    out = render.render_text(derive.load("sigmoid-2-4-2"), fmt="md", lang="en")
    ds = deltas(out)
    d2, d1 = ds["\\mathrm{output}"], ds["\\mathrm{hidden}"]
    assert ("\\delta_{\\mathrm{output}} &= \\frac{\\partial E}{\\partial z_{\\mathrm{output}}} = "
            "\\frac{\\partial E}{\\partial y} \\odot y \\odot \\left(1 - y\\right)") in d2
    assert "&= \\left(y - y_{t}\\right) \\odot y \\odot \\left(1 - y\\right)" in d2
    assert ("&= \\left({W_{\\mathrm{output}}}^{\\top} \\cdot \\delta_{\\mathrm{output}}\\right) \\odot "
            "a_{\\mathrm{hidden}} \\odot \\left(1 - a_{\\mathrm{hidden}}\\right)") in d1
    assert d1.index("\\delta_{\\mathrm{output}}") < d1.index("\\begin{pmatrix}")
    secs = md_sections(out)
    assert secs["W_{\\mathrm{output}}"].startswith(
        "\\frac{\\partial E}{\\partial W_{\\mathrm{output}}} &= \\delta_{\\mathrm{output}} \\cdot {a_{\\mathrm{hidden}}}^{\\top}")
    assert "\\frac{\\partial E}{\\partial b_{\\mathrm{hidden}}} &= \\delta_{\\mathrm{hidden}} \\approx" in out
    assert out.index("### 5.1 Output layer") < out.index("\\delta_{\\mathrm{output}} &=") \
        < out.index("### 5.2 Hidden layer") < out.index("\\delta_{\\mathrm{hidden}} &=")


def test_relu_gradient_gates_by_the_indicator():
    """relu-2-4-2 (mean squared error, now in matrix form): δ_m = y_m − y_t (2/n with n = 2), and
    the hidden weights' gradient (δ_h ⊙ 1[W x > 0]) · xᵀ, the product kept in parentheses."""
    out = render.render_text(derive.load("relu-2-4-2"), fmt="md", lang="en")
    assert "\\delta_{m} = \\frac{\\partial E}{\\partial y_{m}} = y_{m} - y_{t}" in out
    # one line or aligned ('&='): relu′'s values are now a 0/1 vector, so the display may fit one line
    assert re.search(r"\\frac\{\\partial E\}\{\\partial W_\{\\mathrm\{hidden\}\}\} &?= "
                     + re.escape("\\left(\\delta_{h} \\odot \\mathbf{1}[W_{\\mathrm{hidden}} \\cdot x > 0]\\right) "
                                 "\\cdot {x}^{\\top}"), out)


def test_only_keeps_the_layer_names_and_inlines_the_skipped_error_signal():
    """--only W_hidden: the hidden layer is still called so, and its δ is written through the
    output layer's rule (no δ_output is derived); the numbers are the reference's."""
    out = render.render_text(derive.load("sigmoid-2-4-2"), fmt="md", lang="en", only=["W_hidden"])
    assert "### 5.1 Hidden layer" in out and "Output layer" not in out
    assert "\\delta_{\\mathrm{output}}" not in out
    adj, grads, _ = backprop("sigmoid-2-4-2")
    eq = deltas(out)["\\mathrm{hidden}"]
    assert "\\left(y - y_{t}\\right) \\odot y \\odot \\left(1 - y\\right)" in eq
    assert _matches(last_matrix(eq), adj["z_hidden"], False)
    assert _matches(last_matrix(md_sections(out)["W_{\\mathrm{hidden}}"]), grads["W_hidden"], False)

"""Independent reference computations for the built-in problems.

Each network is coded by hand here, in plain mpmath, from the numbers in its spec file (read with
tomllib, not with derive), and its gradients come from mpmath.diff (high-precision numerical
differentiation) — nothing here uses derive's parser, graph, calculus or numeric stages.
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import mpmath

PROBLEMS = Path(__file__).resolve().parent.parent / "derive" / "problems"
mp = mpmath.mp


def numbers(pid: str) -> dict:
    """Data and parameters of a built-in spec as mpf (decimals exact, as the user wrote them)."""
    doc = tomllib.loads((PROBLEMS / f"{pid}.toml").read_text())

    def conv(v):
        if isinstance(v, list):
            return [conv(x) for x in v]
        return mpmath.mpf(repr(v)) if isinstance(v, float) else mpmath.mpf(v)

    out = {k: conv(v) for k, v in {**doc.get("data", {}), **doc.get("parameters", {})}.items()}
    out["_lr"] = conv(doc["train"]["learning_rate"])
    return out


def sig(x):
    return 1 / (1 + mpmath.exp(-x))


# ---------------------------------------------------------------- losses written by hand
def loss_two_two_two(v, d=None):
    d = d or {}    # an offset added to a weighted sum (for its error signal δ = dL/d(offset))
    h1 = sig(v["w1"] * v["i1"] + v["w2"] * v["i2"] + v["b1"] + d.get("net_h1", 0))
    h2 = sig(v["w3"] * v["i1"] + v["w4"] * v["i2"] + v["b1"] + d.get("net_h2", 0))
    o1 = sig(v["w5"] * h1 + v["w6"] * h2 + v["b2"] + d.get("net_o1", 0))
    o2 = sig(v["w7"] * h1 + v["w8"] * h2 + v["b2"] + d.get("net_o2", 0))
    return (v["target_o1"] - o1) ** 2 / 2 + (v["target_o2"] - o2) ** 2 / 2


def loss_house_price(v, d=None):
    d = d or {}
    h1 = sig(v["w1"] * v["x1"] + v["b1"] + v["w4"] * v["x2"] + v["b4"] + d.get("z_h1", 0))
    h2 = sig(v["w2"] * v["x1"] + v["b2"] + v["w5"] * v["x2"] + v["b5"] + d.get("z_h2", 0))
    h3 = sig(v["w3"] * v["x1"] + v["b3"] + v["w6"] * v["x2"] + v["b6"] + d.get("z_h3", 0))
    yhat = sig(v["w7"] * h1 + v["w8"] * h2 + v["w9"] * h3 + d.get("z", 0))
    return (v["y"] - yhat) ** 2


def loss_alice(v, d=None):
    d = d or {}
    h1 = sig(v["w1"] * v["x1"] + v["w2"] * v["x2"] + v["b1"] + d.get("sum_h1", 0))
    h2 = sig(v["w3"] * v["x1"] + v["w4"] * v["x2"] + v["b2"] + d.get("sum_h2", 0))
    o1 = sig(v["w5"] * h1 + v["w6"] * h2 + v["b3"] + d.get("sum_o1", 0))
    return (v["y_true"] - o1) ** 2


def _matvec(W, x):
    return [mpmath.fsum(w * xi for w, xi in zip(row, x)) for row in W]


def loss_sigmoid_2_4_2(v):
    a = [sig(z + b) for z, b in zip(_matvec(v["W_hidden"], v["x"]), v["b_hidden"])]
    y = [sig(z + b) for z, b in zip(_matvec(v["W_output"], a), v["b_output"])]
    return mpmath.fsum((t - o) ** 2 for t, o in zip(v["y_t"], y)) / 2


def loss_linear_2x(v):
    h = [2 * z for z in _matvec(v["W_hidden"], v["x"])]
    y = _matvec(v["W_output"], h)
    return mpmath.fsum((t - o) ** 2 for t, o in zip(v["y_t"], y)) / 2


def loss_relu_2_4_2(v):
    h = [max(z, 0) for z in _matvec(v["W_hidden"], v["x"])]
    y = _matvec(v["W_output"], h)
    return mpmath.fsum((o - t) ** 2 for t, o in zip(v["y_t"], y)) / len(y)


def _matmul(A, B):
    return [[mpmath.fsum(a * b for a, b in zip(row, col)) for col in zip(*B)] for row in A]


def loss_matrix_linear(v):
    P = _matmul(_matmul(v["input_param"], v["w1"]), v["w2"])
    return mpmath.fsum((p - t) ** 2 for rp, rt in zip(P, v["output"]) for p, t in zip(rp, rt)) / 2


def loss_softmax_3(v):
    z = [a + b for a, b in zip(_matvec(v["W"], v["x"]), v["b"])]
    s = mpmath.fsum(mpmath.exp(x) for x in z)
    return -mpmath.fsum(t * mpmath.log(mpmath.exp(x) / s) for t, x in zip(v["t"], z))


LOSSES = {
    "two-two-two": loss_two_two_two,
    "house-price": loss_house_price,
    "alice": loss_alice,
    "sigmoid-2-4-2": loss_sigmoid_2_4_2,
    "linear-2x": loss_linear_2x,
    "matrix-linear": loss_matrix_linear,
    "relu-2-4-2": loss_relu_2_4_2,
    "softmax-3": loss_softmax_3,
}


def parameter_slots(pid: str) -> list[tuple[str, tuple]]:
    """(name, index) for every scalar parameter entry, row-major ((), (i,) or (i, j))."""
    doc = tomllib.loads((PROBLEMS / f"{pid}.toml").read_text())
    slots = []
    for name, val in doc["parameters"].items():
        if not isinstance(val, list):
            slots.append((name, ()))
        elif isinstance(val[0], list):
            slots += [(name, (i, j)) for i in range(len(val)) for j in range(len(val[0]))]
        else:
            slots += [(name, (i,)) for i in range(len(val))]
    return slots


def _with(v, name, index, x):
    w = dict(v)
    if index == ():
        w[name] = x
    elif len(index) == 1:
        w[name] = list(v[name])
        w[name][index[0]] = x
    else:
        w[name] = [list(r) for r in v[name]]
        w[name][index[0]][index[1]] = x
    return w


def _get(v, name, index):
    x = v[name]
    for i in index:
        x = x[i]
    return x


def gradients(pid: str, dps: int = 60) -> dict:
    """{(name, index): dL/dparam} by mpmath.diff, at `dps` digits."""
    with mpmath.workdps(dps):
        v = numbers(pid)
        loss = LOSSES[pid]
        out = {}
        for name, index in parameter_slots(pid):
            x0 = _get(v, name, index)
            out[(name, index)] = mpmath.diff(lambda x: loss(_with(v, name, index, x)), x0)
        return out


# the weighted sums of the scalar networks, whose error signals δ the handouts print
WEIGHTED_SUMS = {"two-two-two": ("net_h1", "net_h2", "net_o1", "net_o2"),
                 "house-price": ("z_h1", "z_h2", "z_h3", "z"),
                 "alice": ("sum_h1", "sum_h2", "sum_o1")}


def deltas(pid: str, dps: int = 60) -> dict:
    """{name: dL/d(name)} for the weighted sums of WEIGHTED_SUMS[pid]: the derivative of the loss
    with respect to an offset added to that sum, by mpmath.diff."""
    with mpmath.workdps(dps):
        v = numbers(pid)
        loss = LOSSES[pid]
        return {n: mpmath.diff(lambda x: loss(v, {n: x}), 0) for n in WEIGHTED_SUMS[pid]}


def loss_value(pid: str, dps: int = 60):
    with mpmath.workdps(dps):
        return LOSSES[pid](numbers(pid))


def loss_after_one_step(pid: str, update: list[str], dps: int = 60):
    """The loss after p ← p − η·dL/dp for the parameters in `update`."""
    with mpmath.workdps(dps):
        v = numbers(pid)
        grads = gradients(pid, dps)
        w = v
        for (name, index), g in grads.items():
            if name in update:
                w = _with(w, name, index, _get(v, name, index) - v["_lr"] * g)
        return LOSSES[pid](w)


def agrees(text: str, reference, digits: int) -> bool:
    """Is `text` the reference rounded to `digits` significant digits (within half a unit)?"""
    shown = mpmath.mpf(text)
    if reference == 0:
        return shown == 0
    e = int(mpmath.floor(mpmath.log10(abs(reference))))
    half_unit = mpmath.mpf(10) ** (e - digits + 1) / 2
    return abs(shown - reference) <= half_unit * (1 + mpmath.mpf(10) ** -6)


# ---------------------------------------------------------------- forward values written by hand
def _relu(z):
    return z if z > 0 else mpmath.mpf(0)


def forward_values(pid: str, dps: int = 60) -> dict:
    """{forward name: value} at the start, coded by hand like the losses above; a vector or matrix
    is a flat list in row-major order (a column vector: its entries from the top)."""
    with mpmath.workdps(dps):
        v = numbers(pid)
        if pid == "two-two-two":
            net_h1 = v["w1"] * v["i1"] + v["w2"] * v["i2"] + v["b1"]
            net_h2 = v["w3"] * v["i1"] + v["w4"] * v["i2"] + v["b1"]
            h1, h2 = sig(net_h1), sig(net_h2)
            net_o1 = v["w5"] * h1 + v["w6"] * h2 + v["b2"]
            net_o2 = v["w7"] * h1 + v["w8"] * h2 + v["b2"]
            o1, o2 = sig(net_o1), sig(net_o2)
            e1, e2 = (v["target_o1"] - o1) ** 2 / 2, (v["target_o2"] - o2) ** 2 / 2
            return {"net_h1": net_h1, "out_h1": h1, "net_h2": net_h2, "out_h2": h2, "net_o1": net_o1,
                    "out_o1": o1, "net_o2": net_o2, "out_o2": o2, "E_o1": e1, "E_o2": e2, "E_total": e1 + e2}
        if pid == "house-price":
            out = {}
            for k, (w_a, b_a, w_b, b_b) in enumerate((("w1", "b1", "w4", "b4"), ("w2", "b2", "w5", "b5"),
                                                      ("w3", "b3", "w6", "b6")), start=1):
                out[f"z_h{k}"] = v[w_a] * v["x1"] + v[b_a] + v[w_b] * v["x2"] + v[b_b]
                out[f"h{k}"] = sig(out[f"z_h{k}"])
            out["z"] = v["w7"] * out["h1"] + v["w8"] * out["h2"] + v["w9"] * out["h3"]
            out["y_hat"] = sig(out["z"])
            out["L"] = (v["y"] - out["y_hat"]) ** 2
            return out
        if pid == "alice":
            s1 = v["w1"] * v["x1"] + v["w2"] * v["x2"] + v["b1"]
            s2 = v["w3"] * v["x1"] + v["w4"] * v["x2"] + v["b2"]
            h1, h2 = sig(s1), sig(s2)
            so = v["w5"] * h1 + v["w6"] * h2 + v["b3"]
            o1 = sig(so)
            return {"sum_h1": s1, "h1": h1, "sum_h2": s2, "h2": h2, "sum_o1": so, "o1": o1, "y_pred": o1,
                    "L": (v["y_true"] - o1) ** 2}
        if pid == "sigmoid-2-4-2":
            zh = [z + b for z, b in zip(_matvec(v["W_hidden"], v["x"]), v["b_hidden"])]
            ah = [sig(z) for z in zh]
            zo = [z + b for z, b in zip(_matvec(v["W_output"], ah), v["b_output"])]
            y = [sig(z) for z in zo]
            return {"z_hidden": zh, "a_hidden": ah, "z_output": zo, "y": y,
                    "E": mpmath.fsum((t - o) ** 2 for t, o in zip(v["y_t"], y)) / 2}
        if pid == "linear-2x":
            h = [2 * z for z in _matvec(v["W_hidden"], v["x"])]
            y = _matvec(v["W_output"], h)
            return {"h": h, "y_m": y, "E": mpmath.fsum((t - o) ** 2 for t, o in zip(v["y_t"], y)) / 2}
        if pid == "relu-2-4-2":
            h = [_relu(z) for z in _matvec(v["W_hidden"], v["x"])]
            y = _matvec(v["W_output"], h)
            return {"h": h, "y_m": y, "E": mpmath.fsum((o - t) ** 2 for t, o in zip(v["y_t"], y)) / len(y)}
        if pid == "matrix-linear":
            H = _matmul(v["input_param"], v["w1"])
            P = _matmul(H, v["w2"])
            D = [[p - t for p, t in zip(rp, rt)] for rp, rt in zip(P, v["output"])]
            flat = lambda M: [x for row in M for x in row]  # noqa: E731
            return {"hidden": flat(H), "pred": flat(P), "grad_pred": flat(D),
                    "E": mpmath.fsum(d ** 2 for d in flat(D)) / 2}
        if pid == "softmax-3":
            z = [a + b for a, b in zip(_matvec(v["W"], v["x"]), v["b"])]
            total = mpmath.fsum(mpmath.exp(x) for x in z)
            p = [mpmath.exp(x) / total for x in z]
            return {"z": z, "p": p, "L": -mpmath.fsum(t * mpmath.log(q) for t, q in zip(v["t"], p))}
        raise KeyError(pid)

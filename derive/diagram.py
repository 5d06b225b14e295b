"""The network diagram of a worked solution (TikZ in LaTeX, Mermaid in Markdown), as data.

`build_diagram(quantities, parameters, loss, names)` lays out the quantities of a spec (name ->
an object with `name`, `kind`, `shape`, `uses`, `tree`, like `graph.Quantity`): a pre-activation
used only by its activation becomes one neuron with it, a definition Σ w·x + b gives weighted
arrows (biases written next to the neuron), columns by longest path from the data.  A quantity
that only renames another (`y_pred = o1`) is no node of its own: the node it renames is labelled
with both names.  A target (data that only enters one later node, not as a weighed input) sits
half a column before that node, beside the output it is compared with, so that its arrow crosses
none.  A TikZ weight label sits where it covers no other arrow, node or label, as
near its arrow's midpoint as that allows (`label_positions`, from the picture's geometry in cm:
house-price's arrows converging on h₂ once had w₄ over w₂); a bias label sits under its neuron,
moved aside or over it where an arrow would pass it too close (`bias_positions`: house-price's w₄
ran into the '+ b₁ + b₄' under h₁).  An activation of an unnamed weighted sum (relu(W @ x)) gets
the weighted arrows of a named one.  Mermaid's layout (dagre, which the Markdown asks for) makes
room for every arrow's label, so there too every weighted arrow carries its weight.

Mermaid labels (`Node.name`, `Edge.label`) are the display names written with Unicode sub- and
superscripts where they are digits and at most one letter (`w₁`, `outₕ₁`, `ŷ`, `δ`), else with
`<sub>`/`<sup>` (`E<sub>total</sub>`, which reads better than a row of small letters and exists for
every letter); matrix shapes and biases on a small second line; their text passes
`escape.mermaid_text`.
"""
from __future__ import annotations

import re
import unicodedata

from . import expr as ex
from . import printer as pr
from .escape import mermaid_text
from .handout import Diagram, Edge, Node

_GREEK = {g: unicodedata.lookup(f"GREEK SMALL LETTER {g.upper().replace('LAMBDA', 'LAMDA')}") for g in (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho sigma tau upsilon phi "
    "chi psi omega").split()}
_GREEK.update({g.capitalize(): unicodedata.lookup(f"GREEK CAPITAL LETTER {g.upper().replace('LAMBDA', 'LAMDA')}") for g in (
    "gamma delta theta lambda xi pi sigma upsilon phi psi omega").split()})
_GREEK.update(varepsilon="ε", varphi="φ", vartheta="ϑ", ell="ℓ", top="ᵀ", times="×", cdot="·", prime="′",
              partial="∂", nabla="∇", infty="∞")
_ACCENTS = {"hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "overline": "\u0304", "tilde": "\u0303",
            "vec": "\u20d7", "dot": "\u0307", "ddot": "\u0308"}
_FONTS = {"mathrm", "text", "textrm", "mathbf", "boldsymbol", "mathit", "mathsf", "operatorname", "mathnormal"}
_SUB = dict(zip("0123456789+-=()aehijklmnoprstuvxβγρφχ", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓᵦᵧᵨᵩᵪ"))
_SUP = dict(zip("0123456789+-=()inTᵀ", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁱⁿᵀᵀ"))
_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|[{}_^]|[^\\{}_^]")


def mermaid_label(tex: str) -> str:
    """A display name (LaTeX) as a Mermaid label: `w_{1}` -> w₁, `\\mathrm{out}_{h_1}` -> outₕ₁,
    `\\hat{y}` -> ŷ, `y_{\\mathrm{pred}}` -> y<sub>pred</sub>."""
    tokens = _TOKEN.findall(str(tex))
    pos = 0

    def atom() -> str:
        nonlocal pos
        if pos >= len(tokens):
            return ""
        t = tokens[pos]
        pos += 1
        if t == "{":
            return group()
        if t in "}_^":
            return ""
        if t.startswith("\\"):
            name = t[1:]
            if name in _FONTS:
                return atom()
            if name in _ACCENTS:
                return unicodedata.normalize("NFC", atom() + _ACCENTS[name])
            if name in _GREEK:
                return _GREEK[name]
            return " " if name in (",", ";", " ", "quad", "!") else mermaid_text(name)
        return mermaid_text(t)

    def script(body: str, table: dict, tag: str) -> str:
        letters = sum(ch.isalpha() and ch not in table.values() for ch in body)
        if body and "<" not in body and letters <= 1 and all(ch in table or ch in table.values() for ch in body):
            return "".join(table.get(ch, ch) for ch in body)
        return f"<{tag}>{body}</{tag}>"

    def group() -> str:
        nonlocal pos
        out = ""
        while pos < len(tokens) and tokens[pos] != "}":
            t = tokens[pos]
            if t in "_^":
                pos += 1
                out += script(atom(), _SUB, "sub") if t == "_" else script(atom(), _SUP, "sup")
            else:
                out += atom()
        pos += 1
        return out

    return " ".join(group().split())


def _constant(tree) -> bool:
    return not ex.names_in(tree)


def _linear(tree, params: set):
    """[(source, weight)] of a definition Σ w·x + b (weight or source may be None), or None."""
    out = []

    def term(node):
        while True:   # a loop, not recursion, along long chains (c1*c2*…*x, a + b + …)
            if isinstance(node, ex.Neg):
                node = node.operand
                continue
            if isinstance(node, ex.Num):
                return True
            if isinstance(node, ex.Name):
                out.append((None, node.id) if node.id in params else (node.id, None))
                return True
            if isinstance(node, ex.Bin) and node.op in "*@":
                a, b = node.left, node.right
                if _constant(a):
                    node = b
                    continue
                if _constant(b):
                    node = a
                    continue
                if isinstance(a, ex.Name) and isinstance(b, ex.Name):
                    pa, pb = a.id in params, b.id in params
                    if pa != pb:
                        out.append((b.id, a.id) if pa else (a.id, b.id))
                        return True
                return False
            if isinstance(node, ex.Bin) and node.op in "+-":
                first, rest = ex.spine(node)
                return all(term(t) for t in [first] + [t for _, t in rest])
            return False

    return out if term(tree) else None


def _clip(box, dx: float, dy: float) -> float:
    """How far from a node's centre, along the direction (dx, dy) of unit length, its border is."""
    shape, a, b = box
    if shape == "circle":
        return a
    return min(a / abs(dx) if dx else float("inf"), b / abs(dy) if dy else float("inf"))


def _overlap(p: list, q: list) -> bool:
    """Two convex polygons (a segment is one with two corners) overlap: no separating axis."""
    if (max(x for x, _ in p) <= min(x for x, _ in q) or max(x for x, _ in q) <= min(x for x, _ in p)
            or max(y for _, y in p) <= min(y for _, y in q) or max(y for _, y in q) <= min(y for _, y in p)):
        return False
    for poly in (p, q):
        for i in range(len(poly)):
            (x1, y1), (x2, y2) = poly[i], poly[(i + 1) % len(poly)]
            nx, ny = y1 - y2, x2 - x1
            if not nx and not ny:
                continue
            a = [nx * x + ny * y for x, y in p]
            b = [nx * x + ny * y for x, y in q]
            if max(a) <= min(b) or max(b) <= min(a):
                return False
    return True


def _rect(cx: float, cy: float, ux: float, uy: float, hw: float, hh: float) -> list:
    return [(cx + sx * ux * hw - sy * uy * hh, cy + sx * uy * hw + sy * ux * hh)
            for sx, sy in ((1, 1), (-1, 1), (-1, -1), (1, -1))]


def _segments(drawn, centre: dict, boxes: dict) -> dict:
    """{arrow: (start, end, ux, uy)}: each arrow from its source's border to its target's, in cm,
    with its direction of unit length."""
    segs = {}
    for e in drawn:
        (x1, y1), (x2, y2) = centre[e[0]], centre[e[1]]
        length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5 or 1.0
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        a, b = _clip(boxes[e[0]], ux, uy), _clip(boxes[e[1]], ux, uy)
        segs[e] = ((x1 + ux * a, y1 + uy * a), (x2 - ux * b, y2 - uy * b), ux, uy)
    return segs


def _point_segment(p, a, b) -> float:
    (px, py), (ax, ay), (bx, by) = p, a, b
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / ((dx * dx + dy * dy) or 1.0)))
    return ((px - ax - t * dx) ** 2 + (py - ay - t * dy) ** 2) ** 0.5


def _segment_box(a, b, box) -> float:
    """The distance between the segment ab and the rectangle box (x0, y0, x1, y1): 0 when they meet."""
    x0, y0, x1, y1 = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if _overlap([a, b], corners) or any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in (a, b)):
        return 0.0
    sides = [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    return min([_point_segment(c, a, b) for c in corners] + [_point_segment(p, *side) for p in (a, b) for side in sides])


BIAS_CLEAR = 0.2       # cm an arrow keeps from a bias label (the estimate of its box is rough)
BIAS_HEIGHT = 0.32     # cm: a \\scriptsize bias label with its inner sep
# (above, dx, dy) of a bias label, in the order tried: under its node, at most 3 mm sideways and
# 0.5 mm lower, the least shift first; then over it, the same way
_BIAS_PLACES = [(above, dx / 20, (dy if above else -dy) / 20)
                for above in (False, True)
                for dx, dy in sorted(((dx, dy) for dx in range(-6, 7) for dy in (0, 1)),
                                     key=lambda s: (abs(s[0]) + abs(s[1]), -s[0]))]


def bias_positions(biased: dict, drawn, centre: dict, boxes: dict) -> tuple:
    """`_bias_positions`, kept per picture (a pure function of its arguments: every variant of a
    bank, every language and mode of a handout draws the same picture)."""
    key = (tuple(biased.items()), tuple(drawn), tuple(sorted(centre.items())), tuple(sorted(boxes.items())))
    if key not in _BIASES:
        _BIASES[key] = _bias_positions(biased, drawn, centre, boxes)
    places, placed = _BIASES[key]
    return dict(places), dict(placed)


_BIASES: dict = {}


def _bias_positions(biased: dict, drawn, centre: dict, boxes: dict) -> tuple:
    """Where each bias label goes, from the picture in cm: ({node: (above, dx, dy)}, {node: box}),
    the label under its node (`south`; over it, `north`, when `above`) shifted by (dx, dy), and its
    box (x0, y0, x1, y1); `biased[node]` is the label's estimated half-width.  A label is written
    under its neuron, touching it; where an arrow would pass within BIAS_CLEAR of it (house-price's
    w₄ ran into the '+ b₁ + b₄' under h₁: it reaches h₁ from below on the left, and w₇ leaves it
    below on the right) it moves sideways, at most 3 mm, or goes over the neuron; it covers no
    node and no other bias label.  Where no place keeps clear, the one farthest from the arrows."""
    segs = _segments(drawn, centre, boxes)
    placed: dict = {}
    places: dict = {}
    for n, hw in biased.items():
        cx, cy = centre[n]
        shape, a, b = boxes[n]
        half = a if shape == "circle" else b

        def box(place):
            above, dx, dy = place
            edge = cy + half + dy if above else cy - half + dy
            return (cx + dx - hw, edge if above else edge - BIAS_HEIGHT, cx + dx + hw,
                    edge + BIAS_HEIGHT if above else edge)

        def fits(bx) -> bool:
            for m, (mx, my) in centre.items():
                shape_m, am, bm = boxes[m]
                hh = am if shape_m == "circle" else bm
                if m != n and bx[0] < mx + am and mx - am < bx[2] and bx[1] < my + hh and my - hh < bx[3]:
                    return False
            return not any(bx[0] < o[2] and o[0] < bx[2] and bx[1] < o[3] and o[1] < bx[3] for o in placed.values())

        def clearance(bx) -> float:
            return min((_segment_box(p, q, bx) for p, q, _, _ in segs.values()), default=float("inf"))
        free = [pl for pl in _BIAS_PLACES if fits(box(pl))] or [_BIAS_PLACES[0]]
        good = [pl for pl in free if clearance(box(pl)) >= BIAS_CLEAR]
        places[n] = good[0] if good else max(free, key=lambda pl: clearance(box(pl)))
        placed[n] = box(places[n])
    return places, placed


def label_positions(labelled, drawn, centre: dict, boxes: dict, widths: dict, extras=()) -> dict:
    """`_label_positions`, kept per picture (a pure function of its arguments)."""
    key = (tuple(labelled), tuple(drawn), tuple(sorted(centre.items())), tuple(sorted(boxes.items())),
           tuple(sorted(widths.items())), tuple(extras))
    if key not in _PLACED:
        _PLACED[key] = _label_positions(labelled, drawn, centre, boxes, widths, extras)
    return dict(_PLACED[key])


_PLACED: dict = {}     # the same picture is drawn in every language and mode of a handout


def _label_positions(labelled, drawn, centre, boxes, widths, extras) -> dict:
    """Where along each labelled arrow (src, dst, weight, kind) its label sits, as TikZ's `pos`
    (0 = the source node's border, 1 = the target's), computed from the picture in cm: a label is a
    small box sloped along its arrow (`widths[weight]` long), and it must cover no other arrow, no
    node (nor the space of the arrow tip), no other label and no `extras` ((centre, (half-width,
    half-height)) of a bias label, placed by `bias_positions`).  Labels of arrows with the fewest free places are
    placed first; among free places the one nearest the arrow's middle is taken, and where none is
    free the one with the fewest (lightest) collisions."""
    segs = _segments(drawn, centre, boxes)
    solids = []
    for n, (cx, cy) in centre.items():
        shape, a, b = boxes[n]
        r = a + 0.12
        solids.append(_rect(cx, cy, 1, 0, r, r if shape == "circle" else b + 0.12))
    solids += [_rect(cx, cy, 1, 0, hw, hh) for (cx, cy), (hw, hh) in extras]
    ts = [i / 50 for i in range(5, 46)]

    def place(e, t):
        (x1, y1), (x2, y2), ux, uy = segs[e]
        return _rect(x1 + (x2 - x1) * t, y1 + (y2 - y1) * t, ux, uy, widths[e[2]] / 2 + 0.04, 0.17)

    def fixed_cost(e, t):
        r = place(e, t)
        return (sum(3 for s in solids if _overlap(r, s))
                + sum(2 for f in drawn if f != e and _overlap(r, [segs[f][0], segs[f][1]])))

    fixed = {e: [fixed_cost(e, t) for t in ts] for e in labelled}
    out: dict = {}
    rects: list = []
    for e in sorted(labelled, key=lambda e: (sum(c == 0 for c in fixed[e]), labelled.index(e))):
        best = min(range(len(ts)), key=lambda i: (fixed[e][i] + sum(4 for r in rects if _overlap(place(e, ts[i]), r)),
                                                  abs(ts[i] - 0.5)))
        out[e] = ts[best]
        rects.append(place(e, ts[best]))
    return out


def build_diagram(quantities: dict, parameters, loss: str, names: dict) -> Diagram:
    params = set(parameters)
    forward = [q for q in quantities.values() if q.kind == "forward"]
    users: dict = {}
    for q in forward:
        for u in q.uses:
            users.setdefault(u, []).append(q.name)
    absorbed = {}           # pre-activation -> activation
    for q in forward:
        t = q.tree
        if isinstance(t, ex.Call) and t.fn in ex.ELEMENTWISE_FUNCTIONS and isinstance(t.args[0], ex.Name):
            pre = t.args[0].id
            pq = quantities[pre]
            if pq.kind == "forward" and users.get(pre) == [q.name] and _linear(pq.tree, params) is not None:
                absorbed[pre] = q.name
    neurons = {v: k for k, v in absorbed.items()}
    alias: dict = {}        # a quantity that only renames another forward quantity -> that one
    for q in forward:
        t = q.tree
        if q.name != loss and isinstance(t, ex.Name) and t.id in quantities and quantities[t.id].kind == "forward":
            alias[q.name] = alias.get(t.id, t.id)

    def real(n):
        return alias.get(n, n)
    nodes: dict = {}        # name -> kind
    edges: list = []        # (src, dst, weight or None, kind)
    for q in forward:
        if q.name in absorbed or q.name in alias:
            continue
        kind = "loss" if q.name == loss else "neuron" if q.name in neurons else "op"
        nodes[q.name] = kind
        tree = quantities[neurons[q.name]].tree if q.name in neurons else q.tree
        lin = _linear(tree, params)
        if (lin is None and isinstance(tree, ex.Call) and tree.fn in ex.ELEMENTWISE_FUNCTIONS
                and len(tree.args) == 1):
            # an activation of an unnamed weighted sum (relu-2-4-2's h = relu(W_hidden @ x)) is drawn
            # as a named one is (linear-2x's h = 2 (W_hidden @ x)): arrows from its inputs, weighted
            lin = _linear(tree.args[0], params)
        if lin is not None:
            for src, w in lin:
                if src is not None:
                    edges.append((real(src), q.name, w, "weight" if w else "plain"))
                elif w is not None:
                    edges.append((w, q.name, None, "bias"))
        else:
            for u in q.uses:
                edges.append((real(u), q.name, None, "param" if u in params else "plain"))
    seen = set()
    edges = [e for e in edges if not (e[:2] in seen or seen.add(e[:2]))]
    for src, _, _, kind in edges:
        if src not in nodes:
            nodes[src] = "param" if src in params else "data"
    # a parameter that is only ever added (a bias) is written next to its neurons in TikZ: "+ b1"
    for n, kind in list(nodes.items()):
        if kind == "param" and all(k == "bias" for s_, _, _, k in edges if s_ == n):
            nodes[n] = "bias"
    biases: dict = {}
    for s_, d, _, k in edges:
        if k == "bias" and nodes[s_] == "bias":
            biases.setdefault(d, []).append(s_)
    # layers: forward nodes by longest path; sources one column before their first consumer
    layer: dict = {}
    for q in forward:
        if q.name not in nodes:
            continue
        srcs = [s_ for s_, d, _, _ in edges if d == q.name and quantities[s_].kind == "forward"]
        layer[q.name] = 1 + max((layer[s_] for s_ in srcs), default=0)
    for name in nodes:
        if name not in layer:
            cons = [layer[d] for s_, d, _, _ in edges if s_ == name and d in layer]
            layer[name] = max(0, min(cons) - 1) if cons else 0
    ncols = max(layer.values()) + 1
    # a column: its forward nodes and the data they weigh (inputs) spread out; targets and other
    # parameters below them (bias nodes are not drawn in TikZ: they get no place of their own)
    weighted_src = {s_ for s_, _, w, _ in edges if w}
    extra = {n for n, kind in nodes.items() if kind == "param" or (kind == "data" and n not in weighted_src)}
    order = list(quantities)
    columns = [sorted([n for n in nodes if layer[n] == c and nodes[n] != "bias"],
                      key=lambda n: (n in extra, order.index(n))) for c in range(ncols)]
    mains = [[n for n in col if n not in extra] or col for col in columns]
    tallest = max(len(m) for m in mains)
    ys: dict = {}
    for col, main in zip(columns, mains):
        rest = [n for n in col if n not in main]
        step = min(2.0, (tallest - 1) / (len(main) - 1)) if len(main) > 1 else 0.0
        for r, n in enumerate(main):
            ys[n] = (len(main) - 1) * step / 2 - r * step
        low = min((ys[n] for n in main), default=0)
        for r, n in enumerate(rest):
            ys[n] = low - 1 - r
    # a target (data entering one later node, not weighed): half a column before that node, above it
    # in the upper half of the picture and below it otherwise; its arrow then crosses no other
    xs = {n: float(layer[n]) for n in nodes}
    for n in nodes:
        cons = [d for s_, d, _, _ in edges if s_ == n]
        if (nodes[n] == "data" and n not in weighted_src and len(cons) == 1 and cons[0] in ys
                and layer[cons[0]] > 0 and any(d == cons[0] and s_ != n for s_, d, _, _ in edges)):
            d = cons[0]
            xs[n] = layer[d] - 0.5
            ys[n] = ys[d] + (0.75 if ys[d] > 0 else -0.75)
    for n in nodes:          # bias nodes: no place of their own (written at their neuron)
        if n not in ys:
            ys[n] = min(ys.values()) - 1
    top = max(v for n, v in ys.items() if nodes[n] != "bias")
    bottom = min(v for n, v in ys.items() if nodes[n] != "bias")

    # column spacing: room for the widest node of two neighbouring columns and a weight label
    renamed: dict = {}
    for a_, n in alias.items():
        renamed.setdefault(n, []).append(a_)
    texts = {n: " = ".join([names[n], *(names[a_] for a_ in renamed.get(n, ()))]) for n in nodes}

    def node_cm(n):
        q = quantities[n]
        return 0.19 * pr.width(texts[n]) + (0.75 if q.shape else 0) + 0.5

    def label_cm(c):
        ws = [0.16 * pr.width(names[w]) for s_, d, w, _ in edges if w and layer[s_] == c]
        return max(ws, default=0) + 0.4

    need = max((max((node_cm(n) for n in columns[c]), default=1) / 2
                + max((node_cm(n) for n in columns[c + 1]), default=1) / 2
                + label_cm(c) for c in range(ncols - 1)), default=2.4)
    crowded = tallest > 1
    xscale = min(max(3.3 if crowded else 2.6, need), 15.0 / max(1, ncols - 1))
    yscale = min(1.5, 13.0 / max(1.0, top - bottom))
    font = "small" if yscale >= 0.9 else "scriptsize"
    weighted = sum(1 for e in edges if e[2])
    labels = weighted <= 24

    drawn = [e for e in edges if e[3] != "bias"]
    font_cm = 1.0 if font == "small" else 0.8      # TikZ's \\small against \\scriptsize node text
    boxes = {}
    for n in nodes:
        if nodes[n] == "bias":
            continue
        w = node_cm(n) - 0.5
        if nodes[n] == "neuron" and not quantities[n].shape:
            boxes[n] = ("circle", max(0.45, w * font_cm / 2 + 0.05), 0.0)
        else:
            boxes[n] = ("box", w * font_cm / 2 + 0.1, 0.42 if quantities[n].shape else 0.3)
    centre_cm = {n: (xs[n] * xscale, ys[n] * yscale) for n in boxes}
    shifts, bias_boxes = bias_positions({d: 0.08 * pr.width(" ".join(f"+ {names[b]}" for b in bs)) + 0.03
                                         for d, bs in biases.items() if d in boxes}, drawn, centre_cm, boxes)
    extras = [(((x0 + x1) / 2, (y0 + y1) / 2), ((x1 - x0) / 2 + 0.04, (y1 - y0) / 2))
              for x0, y0, x1, y1 in bias_boxes.values()]
    pos = (label_positions([e for e in drawn if e[2]], drawn, centre_cm,
                           boxes, {w: 0.15 * pr.width(names[w]) + 0.12 for *_, w, _ in edges if w}, extras)
           if labels else {})
    # Mermaid (laid out by dagre, see templates/macros.md.j2) gives each arrow's label a place of its
    # own, so every weighted arrow carries its weight as in TikZ; a neuron's small second line has
    # its shape (a matrix layer) and its biases, each on a line of its own
    ids = {n: f"n{i}" for i, n in enumerate(sorted(nodes, key=order.index))}
    out_nodes = []
    for n, kind in nodes.items():
        q = quantities[n]
        note = f"{q.shape[0]}×{q.shape[1]}" if q.shape else ""
        bias = " ".join(f"+ {names[x]}" for x in biases.get(n, ()))
        tex = texts[n]
        added = " ".join(mermaid_label(f"+ {names[x]}") for x in biases.get(n, ()))
        small = "<br>".join(filter(None, [note, added]))
        label = mermaid_label(tex) + (f"<br><small>{small}</small>" if small else "")
        above, *shift = shifts.get(n, (False, 0.0, 0.0))
        shift = tuple(round(v, 2) + 0.0 for v in shift)
        out_nodes.append(Node(ids[n], label, tex, kind, xs[n], round(ys[n], 3), note, bias,
                              shift if any(shift) else (), above))
    out_edges = tuple(Edge(ids[s], ids[d], mermaid_label(names[w]) if w else "",
                           names[w] if w else "", kind, pos.get(e, 0.5))
                      for e in edges for s, d, w, kind in [e])
    pairs = tuple((names[p], names[a]) for p, a in absorbed.items())
    return Diagram(tuple(sorted(out_nodes, key=lambda x: int(x.id[1:]))), out_edges, round(xscale, 2),
                   round(yscale, 2), font, labels, pairs, 0.28 if crowded else 0.5,
                   bool(biases), any(k == "param" for *_, k in edges))


"""The network diagram as SVG: the layout of `derive.diagram` (the same columns, rows, shapes and
labels as the TikZ and Mermaid diagrams), drawn for HTML pages and Moodle questions.

`network_svg(source, lang)` takes a `handout.Diagram`, a handout context holding one (`"diagram"`),
or a Problem (its diagram is laid out from the spec alone, as an exercise sheet's is: no engine
number), and returns one `<svg>` element as text: nodes (data as grey boxes, neurons as circles,
operations as orange boxes, the loss as a red box, other parameters dashed), arrows with weight
labels, biases written below their neuron, a matrix's shape on a small second line.  Labels are
the display names (LaTeX) set as text with `<tspan>` sub- and superscripts (`w_{1}` → w₁,
`\\mathrm{out}_{h_1}` → out with a subscript h₁, Greek letters and accents as Unicode).

The element is built with xml.etree.ElementTree (every text escaped) and is deterministic: the
same diagram gives the same bytes (coordinates rounded to 0.1 px, attributes in a fixed order).
It has a viewBox and `width="100%"` with a `max-width` of its natural size, so it shrinks on a
narrow screen; `role="img"` and a `<title>` in `lang` name it for screen readers.
"""
from __future__ import annotations

import math
import re
import unicodedata
import xml.etree.ElementTree as ET

from .diagram import _ACCENTS, _FONTS, _GREEK, _TOKEN, build_diagram
from .exercise_context import SheetBuilder
from .handout import Diagram

CM = 38.0                    # px per TikZ cm
FONT = 15.0                  # px, node labels
SMALL = 11.0                 # px, weight labels, biases, shapes
SCRIPT = 0.72                # sub/superscript size, relative
CHAR = 0.56                  # average glyph width, em
PAD = 12.0                   # px around the picture
TITLES = {"en": "Network diagram", "zh": "网络结构图"}
STYLE = {   # fill, stroke, dashed
    "data": ("#efefef", "#444", False),
    "neuron": ("#eef2fd", "#2b4a9b", False),
    "op": ("#fdf1e4", "#9a5b17", False),
    "loss": ("#fde8e8", "#9b2b2b", False),
    "param": ("#ffffff", "#666", True),
}


# ---------------------------------------------------------------- labels: LaTeX → runs of text
def label_runs(tex: str) -> list:
    """A display name as [(text, level)]: level 0 on the baseline, -1 a subscript, 1 a
    superscript (-2, 2 one deeper).  Fonts are dropped, Greek letters and accents are Unicode."""
    tokens = _TOKEN.findall(str(tex))
    pos = 0
    out: list = []

    def emit(text: str, level: int):
        if not text:
            return
        if out and out[-1][1] == level:
            out[-1] = (out[-1][0] + text, level)
        else:
            out.append((text, level))

    def atom(level: int) -> None:
        nonlocal pos
        if pos >= len(tokens):
            return
        t = tokens[pos]
        pos += 1
        if t == "{":
            group(level)
            return
        if t in "}_^":
            return
        if t.startswith("\\"):
            name = t[1:]
            if name in _FONTS:
                atom(level)
                return
            if name in _ACCENTS:
                start = len(out)
                atom(level)
                if len(out) > start or out:
                    text, lv = out[-1]
                    out[-1] = (unicodedata.normalize("NFC", text + _ACCENTS[name]), lv)
                return
            if name in _GREEK:
                emit(_GREEK[name], level)
                return
            emit(" " if name in (",", ";", " ", "quad", "!") else name, level)
            return
        emit(t, level)

    def script(level: int, up: bool) -> int:
        if up:
            return 2 if level >= 1 else 1 if level == 0 else level + 1
        return -2 if level <= -1 else -1 if level == 0 else level - 1

    def group(level: int) -> None:
        nonlocal pos
        while pos < len(tokens) and tokens[pos] != "}":
            t = tokens[pos]
            if t in "_^":
                pos += 1
                atom(script(level, t == "^"))
            else:
                atom(level)
        pos += 1

    group(0)
    cleaned = []
    for i, (text, level) in enumerate(out):
        if level == 0:       # spaces between the runs kept (w + b), collapsed, none at the ends
            text = re.sub(r"\s+", " ", text)
            text = text.lstrip() if i == 0 else text
            text = text.rstrip() if i == len(out) - 1 else text
        else:
            text = text.strip()
        if text:
            cleaned.append((text, level))
    return cleaned


def runs_width(runs: list, size: float) -> float:
    w = 0.0
    for text, level in runs:
        scale = 1.0 if level == 0 else SCRIPT if abs(level) == 1 else SCRIPT * SCRIPT
        w += sum(_glyph(ch) for ch in text) * size * scale
    return w


def _glyph(ch: str) -> float:
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 1.0
    if ch in "il.,:;|!'":
        return 0.3
    if ch in "mwMW":
        return 0.85
    return CHAR


def _text(parent, runs: list, x: float, y: float, size: float, cls: str, anchor: str = "middle"):
    """<text> at (x, y) (the baseline) with a <tspan> per sub- or superscript."""
    el = ET.SubElement(parent, "text", {"x": _n(x), "y": _n(y), "class": cls, "font-size": _n(size),
                                        "text-anchor": anchor})
    shift = 0.0                   # the current baseline offset (positive: down)
    for i, (text, level) in enumerate(runs):
        target = {0: 0.0, -1: 0.3, -2: 0.5, 1: -0.4, 2: -0.65}[max(-2, min(2, level))] * size
        scale = 1.0 if level == 0 else SCRIPT if abs(level) == 1 else SCRIPT * SCRIPT
        if i == 0 and level == 0:
            el.text = text
            continue
        attrs = {}
        if target != shift:
            attrs["dy"] = _n(target - shift)
            shift = target
        if scale != 1.0:
            attrs["font-size"] = _n(size * scale)
        span = ET.SubElement(el, "tspan", attrs)
        span.text = text
    return el


def _n(v: float) -> str:
    """A coordinate: rounded to 0.1, without a trailing .0 (deterministic text)."""
    r = round(v + 0.0, 1)
    if r == 0:
        r = 0.0
    text = f"{r:.1f}"
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------- the picture
def _diagram_of(source) -> Diagram:
    if isinstance(source, Diagram):
        return source
    if isinstance(source, dict):
        return source["diagram"]
    sb = SheetBuilder(source, lang="en", digits=4, only=None)
    return build_diagram(sb.quantities, sb.params, sb.loss, sb.names)


def network_svg(source, lang: str = "en") -> str:
    """The network diagram of `source` (a Diagram, a context with "diagram", or a Problem) as one
    <svg> element (text, no XML declaration): see the module's docstring."""
    d = _diagram_of(source)
    drawn = [n for n in d.nodes if n.kind != "bias"]
    sx, sy = d.xscale * CM, d.yscale * CM
    boxes = {}
    for n in drawn:
        runs = label_runs(n.tex)
        w = runs_width(runs, FONT)
        note = [(n.note, 0)] if n.note else []
        if n.bias:                   # a bias on a small second line, as in the Mermaid diagram
            note = (note + [(" ", 0)] if note else []) + label_runs(n.bias)
        if note:
            w = max(w, runs_width(note, SMALL))
        h = FONT * 1.6 + (SMALL * 1.2 if note else 0)
        if n.kind == "neuron":      # a circle, or an ellipse for a long label or a crowded column
            rx, ry = max(17.0, w / 2 + 7), max(17.0, h / 2 + 3)
            gap = min((abs(n.y - m.y) * sy for m in drawn if m is not n and m.x == n.x), default=math.inf)
            ry = min(ry, max(h / 2 + 1, 0.46 * gap))
            if rx < 1.25 * ry and max(rx, ry) <= 0.46 * gap:
                rx = ry = max(rx, ry)
            boxes[n.id] = ("ellipse", rx, ry, runs, note)
        else:
            boxes[n.id] = ("box", w / 2 + 8, h / 2, runs, note)
    xs = {n.id: n.x * sx for n in drawn}
    ys = {n.id: -n.y * sy for n in drawn}
    left = min(xs[i] - boxes[i][1] for i in xs) - PAD
    right = max(xs[i] + boxes[i][1] for i in xs) + PAD
    top = min(ys[i] - boxes[i][2] for i in ys) - PAD
    bottom = max(ys[i] + boxes[i][2] for i in ys) + PAD
    width, height = right - left, bottom - top
    title = TITLES.get(lang, TITLES["en"])
    svg = ET.Element("svg", {
        "xmlns": "http://www.w3.org/2000/svg", "class": "derive-network", "role": "img",
        "viewBox": f"{_n(left)} {_n(top)} {_n(width)} {_n(height)}", "width": "100%",
        "style": f"max-width:{_n(width)}px;height:auto", "font-family": "'Latin Modern Roman','CMU Serif',"
        "'Times New Roman',serif"})
    ET.SubElement(svg, "title").text = title
    defs = ET.SubElement(svg, "defs")
    marker = ET.SubElement(defs, "marker", {"id": "derive-arrow", "viewBox": "0 0 10 10", "refX": "10", "refY": "5",
                                            "markerWidth": "7", "markerHeight": "7", "orient": "auto-start-reverse"})
    ET.SubElement(marker, "path", {"d": "M0,0 L10,5 L0,10 z", "fill": "#333"})
    ET.SubElement(svg, "style").text = (
        ".derive-network text{fill:#111}.derive-network .w{fill:#222}.derive-network .b{fill:#555}")
    edges_g = ET.SubElement(svg, "g", {"class": "edges"})
    labels_g = ET.SubElement(svg, "g", {"class": "labels"})
    nodes_g = ET.SubElement(svg, "g", {"class": "nodes"})
    for e in d.edges:
        if e.kind == "bias" or e.src not in xs or e.dst not in xs:
            continue
        (x1, y1), (x2, y2) = (xs[e.src], ys[e.src]), (xs[e.dst], ys[e.dst])
        a = _clip(boxes[e.src], x2 - x1, y2 - y1)
        b = _clip(boxes[e.dst], x1 - x2, y1 - y2)
        p1, p2 = (x1 + a[0], y1 + a[1]), (x2 + b[0], y2 + b[1])
        attrs = {"x1": _n(p1[0]), "y1": _n(p1[1]), "x2": _n(p2[0]), "y2": _n(p2[1]),
                 "stroke": "#888" if e.kind == "param" else "#333", "stroke-width": "1.2",
                 "marker-end": "url(#derive-arrow)"}
        if e.kind == "param":
            attrs["stroke-dasharray"] = "5 3"
        ET.SubElement(edges_g, "line", attrs)
        if e.tex and d.labels:
            t = e.pos
            lx, ly = p1[0] + (p2[0] - p1[0]) * t, p1[1] + (p2[1] - p1[1]) * t
            runs = label_runs(e.tex)
            w = runs_width(runs, SMALL)
            ET.SubElement(labels_g, "rect", {"x": _n(lx - w / 2 - 2), "y": _n(ly - SMALL * 0.75),
                                             "width": _n(w + 4), "height": _n(SMALL * 1.5), "fill": "#fff",
                                             "fill-opacity": "0.9"})
            _text(labels_g, runs, lx, ly + SMALL * 0.35, SMALL, "w")
    for n in drawn:
        shape, hw, hh, runs, note = boxes[n.id]
        fill, stroke, dashed = STYLE.get(n.kind, STYLE["data"])
        x, y = xs[n.id], ys[n.id]
        g = ET.SubElement(nodes_g, "g", {"class": f"node {n.kind}"})
        common = {"fill": fill, "stroke": stroke, "stroke-width": "2" if n.kind == "loss" else "1.2"}
        if dashed:
            common["stroke-dasharray"] = "4 3"
        if shape == "ellipse" and hw == hh:
            ET.SubElement(g, "circle", {"cx": _n(x), "cy": _n(y), "r": _n(hw), **common})
        elif shape == "ellipse":
            ET.SubElement(g, "ellipse", {"cx": _n(x), "cy": _n(y), "rx": _n(hw), "ry": _n(hh), **common})
        else:
            rx = "1" if n.kind == "loss" else "4"
            ET.SubElement(g, "rect", {"x": _n(x - hw), "y": _n(y - hh), "width": _n(2 * hw),
                                      "height": _n(2 * hh), "rx": rx, **common})
        base = y + FONT * 0.35 - (SMALL * 0.6 if note else 0)
        _text(g, runs, x, base, FONT, "n")
        if note:
            _text(g, note, x, base + SMALL * 1.25, SMALL, "b")
    inside = {id(c) for t in svg.iter("text") for c in t.iter() if c is not t}
    for el in svg.iter():
        if id(el) not in inside and el is not svg:
            el.tail = "\n"          # one element a line (never inside a <text>: it would be a space)
    svg.text = "\n"
    return ET.tostring(svg, encoding="unicode")


def _clip(box, dx: float, dy: float) -> tuple:
    """The offset from a node's centre to its border towards (dx, dy)."""
    shape, hw, hh = box[0], box[1], box[2]
    dist = math.hypot(dx, dy)
    if dist == 0:
        return (0.0, 0.0)
    if shape == "ellipse":
        t = 1 / math.hypot(dx / hw, dy / hh)
        return (dx * t, dy * t)
    t = min(hw / abs(dx) if dx else math.inf, hh / abs(dy) if dy else math.inf)
    return (dx * t, dy * t)


__all__ = ["label_runs", "network_svg"]

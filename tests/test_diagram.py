"""The network diagrams of output/: Mermaid with the text's symbols, TikZ without ambiguous labels.

The TikZ pictures are read back from the generated .tex (node centres, arrows and label positions)
and checked geometrically here: a target's arrow crosses no other arrow, and no two weight labels
sit on top of each other.
"""
import itertools
import re
import shutil
from pathlib import Path

import pytest

from derive.diagram import mermaid_label
from derive.spec import builtin_ids

OUTPUT = Path(__file__).resolve().parent.parent / "output"


def mermaid(pid, lang="en") -> str:
    text = (OUTPUT / f"{pid}.{lang}.md").read_text(encoding="utf-8")
    return re.search(r"```mermaid\n(.*?)\n```", text, re.S).group(1)


def tikz(pid, lang="en"):
    """({id: (x_cm, y_cm, text)}, [(src, dst, pos, label)]) of the first picture of a handout."""
    tex = (OUTPUT / f"{pid}.{lang}.tex").read_text(encoding="utf-8")
    pic = tex.split("\\begin{tikzpicture}", 1)[1].split("\\end{tikzpicture}", 1)[0]
    sx, sy = (float(v) for v in re.search(r"x=([\d.]+)cm, y=([\d.]+)cm", pic).groups())
    nodes = {m.group(1): (float(m.group(2)) * sx, float(m.group(3)) * sy, m.group(4))
             for m in re.finditer(r"\\node\[[^\n]*?\] \((n\d+)\) at \(([-\d.]+), ([-\d.]+)\) \{(.*)\};", pic)}
    edges = []
    for m in re.finditer(r"\\draw\[[^\]]*\] \((n\d+)\) -- (?:node\[wlabel(?:, pos=([\d.]+))?\] \{\$(.*?)\$\} )?\((n\d+)\);", pic):
        edges.append((m.group(1), m.group(4), float(m.group(2) or 0.5), m.group(3)))
    return nodes, edges


def _cross(p1, p2, q1, q2) -> bool:
    """Segments p1p2 and q1q2 cross at an inner point of both."""
    def orient(a, b, c):
        return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    d1, d2 = orient(q1, q2, p1), orient(q1, q2, p2)
    d3, d4 = orient(p1, p2, q1), orient(p1, p2, q2)
    return d1 * d2 < 0 and d3 * d4 < 0


@pytest.mark.parametrize("tex, label", [
    ("w_{1}", "w₁"), ("\\mathrm{out}_{h_1}", "outₕ₁"), ("out_{o_{2}}", "outₒ₂"), ("\\hat{y}", "ŷ"),
    ("y_{\\mathrm{pred}}", "y<sub>pred</sub>"), ("E_{\\mathrm{total}}", "E<sub>total</sub>"), ("y_{t}", "yₜ"), ("\\delta", "δ"),
    ("{w_{1}}^{(1)}", "w₁⁽¹⁾"), ("x^{\\top}", "xᵀ"), ("W_{\\mathrm{hidden}}", "W<sub>hidden</sub>"),
    ("a\"<b>", "ab"),
])
def test_mermaid_labels_are_the_display_names(tex, label):
    assert mermaid_label(tex) == label


def test_matrix_linear_mermaid_uses_the_texts_symbols():
    block = mermaid("matrix-linear")
    for code in ("input_param", "hidden", "grad_pred", "output", "pred"):
        assert code not in block
    labels = re.findall(r'n\d+[\[(]+"([^"]+)"', block)
    assert {lab.split("<br>")[0] for lab in labels} == {"X", "H", "P", "T", "D", "E"}
    assert '|"W₁"|' in block and '|"W₂"|' in block
    # the target T gets a column of its own just before D, beside the (one column longer) arrow P -> D
    ids = {lab.split("<br>")[0]: n for n, lab in re.findall(r'(n\d+)[\[(/]+"([^"]+)"', block)}
    assert f"{ids['T']} --> {ids['D']}" in block and f"{ids['P']} ---> {ids['D']}" in block


def test_house_price_mermaid_has_no_bias_boxes_and_y_beside_the_output():
    block = mermaid("house-price")
    assert "b₁" in block and not re.search(r'n\d+\[/"b', block)            # biases only as small text
    assert len(re.findall(r"<small>[^<]*(?:<br>)?\+ b", block)) == 3     # in each hidden neuron's small text
    ids = {lab.split("<br>")[0]: n for n, lab in re.findall(r'(n\d+)[\[(/]+"([^"]+)"', block)}
    assert f"{ids['y']} --> {ids['L']}" in block and f"{ids['ŷ']} ---> {ids['L']}" in block   # y beside ŷ's arrow


@pytest.mark.parametrize("pid", ["house-price", "two-two-two", "alice"])
def test_mermaid_arrows_carry_their_weights_as_in_tikz(pid):
    """Mermaid's dagre layout gives every arrow's label a place of its own (the block asks for
    dagre), so every weighted arrow carries its weight in Mermaid as in TikZ, crossing arrows too
    (house-price's w₁…w₆ into h₁…h₃); no neuron writes out a weighted sum instead."""
    block = mermaid(pid)
    assert block.startswith("---\nconfig:\n  layout: dagre\n")
    labels = dict(re.findall(r'(n\d+)[\[(]+"([^"]+)"', block))
    arrows = re.findall(r'(n\d+) -+>(?:\|"([^"]+)"\|)? (n\d+)', block)
    assert not [lab for lab in labels.values() if "·" in lab], pid
    nodes, edges = tikz(pid)
    tikz_weights = sorted(label for *_, label in edges if label)
    assert all(label for *_, label in edges if label is not None) and tikz_weights
    assert sorted(mermaid_label(w) for w in tikz_weights) == sorted(lab for _, lab, _ in arrows if lab)
    for src, lab, dst in arrows:
        if re.search(rf"^  {dst}\(\(", block, re.M):         # an arrow into a neuron (a circle)
            assert lab, (pid, labels[src], labels[dst])
    if pid == "house-price":
        assert {lab for _, lab, _ in arrows if lab} == {f"w{c}" for c in "₁₂₃₄₅₆₇₈₉"}
        assert "h₁<br><small>+ b₁ + b₄</small>" in block


def test_alice_draws_no_node_for_the_renamed_output():
    nodes, edges = tikz("alice")
    texts = [t for *_, t in nodes.values()]
    assert not any(t.startswith("$y_{pred}") or t.startswith("$y_{\\mathrm{pred}}") for t in texts)
    (o1,) = [n for n, (*_, t) in nodes.items() if t.startswith("$o_{1} = y_")]
    assert any(s == o1 and nodes[d][2] == "$L$" for s, d, *_ in edges)
    assert "y_pred" not in mermaid("alice")


@pytest.mark.parametrize("pid", ["two-two-two", "alice", "house-price", "matrix-linear", "relu-2-4-2",
                                 "sigmoid-2-4-2"])
def test_tikz_targets_beside_the_outputs_and_labels_apart(pid):
    nodes, edges = tikz(pid)
    pts = {n: (x, y) for n, (x, y, _) in nodes.items()}
    targets = [n for n, (*_, t) in nodes.items()
               if re.match(r"\$(y|T|\\mathrm\{target\}_|y_\{(t|true|m)\})", t)]
    assert targets, pid
    for t in targets:
        mine = [e for e in edges if e[0] == t]
        assert len(mine) == 1
        for e in edges:
            if e is not mine[0] and e[0] in pts and e[1] in pts:
                assert not _cross(pts[t], pts[mine[0][1]], pts[e[0]], pts[e[1]]), (pid, nodes[t][2], e)
    # a weight label's point: at pos along its arrow; any two at least 0.45 cm apart
    marks = [(lab, (pts[s][0] + p * (pts[d][0] - pts[s][0]), pts[s][1] + p * (pts[d][1] - pts[s][1])))
             for s, d, p, lab in edges if lab]
    for (a, pa), (b, pb) in itertools.combinations(marks, 2):
        assert ((pa[0] - pb[0]) ** 2 + (pa[1] - pb[1]) ** 2) ** 0.5 > 0.45, (pid, a, b)


def _kinds(pid, lang="en") -> dict:
    tex = (OUTPUT / f"{pid}.{lang}.tex").read_text(encoding="utf-8")
    pic = tex.split("\\begin{tikzpicture}", 1)[1].split("\\end{tikzpicture}", 1)[0]
    return {m.group(2): m.group(1) for m in re.finditer(r"\\node\[(\w+)[^\n]*?\] \((n\d+)\)", pic)}


def _dist(p, seg) -> float:
    (ax, ay), (bx, by) = seg
    t = max(0.0, min(1.0, ((p[0] - ax) * (bx - ax) + (p[1] - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)))
    return ((p[0] - ax - t * (bx - ax)) ** 2 + (p[1] - ay - t * (by - ay)) ** 2) ** 0.5


@pytest.mark.parametrize("pid", ["two-two-two", "alice", "house-price", "one-two-one", "linear-2x", "relu-2-4-2",
                                 "sigmoid-2-4-2", "matrix-linear", "softmax-3"])
def test_tikz_weight_labels_sit_on_their_own_arrows_apart(pid):
    """Where TikZ draws a label: `pos` along the arrow between the nodes' borders (a neuron is a
    circle of at least 9 mm, another node a box about 6 mm high).  Any two labels at least 4 mm
    apart, and no label on another arrow (its centre 2 mm or more from it) — house-price had w₄
    over w₂ and w₅ over w₃ where arrows converge on h₂ (both at pos 0.8)."""
    nodes, edges = tikz(pid)
    kinds = _kinds(pid)

    def border(n, ux, uy):
        if kinds[n] == "neuron":
            return 0.45
        return min(0.3 / abs(ux) if ux else 9.0, 0.3 / abs(uy) if uy else 9.0)
    segs = {}
    for s, d, _, _ in edges:
        (x1, y1, _), (x2, y2, _) = nodes[s], nodes[d]
        length = ((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        a, b = border(s, ux, uy), border(d, ux, uy)
        segs[s, d] = ((x1 + ux * a, y1 + uy * a), (x2 - ux * b, y2 - uy * b))
    marks = []
    for s, d, p, lab in edges:
        if lab:
            (ax, ay), (bx, by) = segs[s, d]
            marks.append((lab, (s, d), (ax + p * (bx - ax), ay + p * (by - ay))))
    assert marks, pid
    for (a, _, pa), (b, _, pb) in itertools.combinations(marks, 2):
        assert ((pa[0] - pb[0]) ** 2 + (pa[1] - pb[1]) ** 2) ** 0.5 >= 0.4, (pid, a, b)
    for lab, mine, p in marks:
        for other, seg in segs.items():
            if other != mine:
                assert _dist(p, seg) >= 0.2, (pid, lab, nodes[other[0]][2], nodes[other[1]][2])

# ---------------------------------------------------------------- bias labels, measured by TikZ itself
BIAS_CLEARANCE_PT = 4.0     # the least distance from a bias label's box to any arrow (about 1.4 mm)


def _pictures(pid) -> list:
    """[(preamble, picture)] of the TikZ pictures with bias labels in the English worked solution
    and exercise sheet of a problem (one of each distinct picture)."""
    out = []
    for path in (OUTPUT / f"{pid}.en.tex", OUTPUT / "exercises" / f"{pid}.en.tex"):
        if not path.exists():
            continue
        tex = path.read_text(encoding="utf-8")
        pre = tex.split("\\begin{document}", 1)[0]
        for pic in re.findall(r"\\begin\{tikzpicture\}.*?\\end\{tikzpicture\}", tex, re.S):
            if "biaslabel, anchor" in pic and pic not in [p for _, p in out]:
                out.append((pre, pic))
    return out


def _measured(latexmk, pre: str, pic: str):
    """TikZ's own geometry of a picture, in pt: {bias label: (x0, y0, x1, y1)} of each bias label's
    box (its white fill), and [(src, dst, (x1, y1), (x2, y2))] of each arrow from border to border
    (where TikZ starts and ends it), read from the log of a document of the picture alone."""
    labels = []

    def name(m):
        labels.append(m.group(2))
        return f"\\node[{m.group(1)}] (bl{len(labels) - 1}) at"
    pic = re.sub(r"\\node\[(biaslabel[^\]]*)\] at(?= \(\[?[^)]*?(n\d+)\.south)", name, pic)
    arrows = re.findall(r"\\draw\[[^\]]*\] \((n\d+)\) -- (?:node\[[^\]]*\] \{.*?\} )?\((n\d+)\);", pic)
    show = ["\\makeatletter"]
    for i in range(len(labels)):
        for corner in ("south west", "north east"):
            show.append(f"\\pgfpointanchor{{bl{i}}}{{{corner}}}\\typeout{{BOX {i} {corner} \\the\\pgf@x\\space\\the\\pgf@y}}")
    for a, b in arrows:
        show.append(f"\\pgfpointshapeborder{{{a}}}{{\\pgfpointanchor{{{b}}}{{center}}}}"
                    f"\\typeout{{ARROW {a} {b} start \\the\\pgf@x\\space\\the\\pgf@y}}")
        show.append(f"\\pgfpointshapeborder{{{b}}}{{\\pgfpointanchor{{{a}}}{{center}}}}"
                    f"\\typeout{{ARROW {a} {b} end \\the\\pgf@x\\space\\the\\pgf@y}}")
    show.append("\\makeatother")
    pic = pic.replace("\\end{tikzpicture}", "\n".join(show) + "\n\\end{tikzpicture}")
    log = latexmk(f"{pre}\\begin{{document}}\n{pic}\n\\end{{document}}\n", "xelatex").log
    boxes = {}
    for i, corner, x, y in re.findall(r"^BOX (\d+) (south west|north east) ([-\d.]+)pt ([-\d.]+)pt", log, re.M):
        boxes.setdefault(int(i), {})[corner] = (float(x), float(y))
    ends = {}
    for a, b, which, x, y in re.findall(r"^ARROW (n\d+) (n\d+) (start|end) ([-\d.]+)pt ([-\d.]+)pt", log, re.M):
        ends.setdefault((a, b), {})[which] = (float(x), float(y))
    assert len(boxes) == len(labels) and len(ends) == len(set(arrows)), log[-2000:]
    return ({(i, labels[i]): (*c["south west"], *c["north east"]) for i, c in boxes.items()},
            [(a, b, e["start"], e["end"]) for (a, b), e in ends.items()])


def _segment_box_distance(p, q, box) -> float:
    """The least distance between the segment pq and the rectangle box (x0, y0, x1, y1); 0 when
    they meet."""
    x0, y0, x1, y1 = box
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in (p, q)):
        return 0.0
    if any(_cross(p, q, corners[i], corners[(i + 1) % 4]) for i in range(4)):
        return 0.0
    return min([_dist(c, (p, q)) for c in corners]
               + [_dist(e, (corners[i], corners[(i + 1) % 4])) for e in (p, q) for i in range(4)])


@pytest.mark.tex
@pytest.mark.parametrize("pid", builtin_ids())
def test_tikz_bias_labels_keep_clear_of_every_arrow(latexmk, pid):
    """house-price's w₄ arrow into h₁ grazed the '+ b₁ + b₄' written under h₁ (it passed the label's
    left end within a fraction of a millimetre, and the label's white fill cut its tip).  Measured
    by TikZ itself (each bias label's box and each arrow from border to border, from the log of the
    picture compiled alone): every arrow keeps BIAS_CLEARANCE_PT or more from every bias label."""
    if not shutil.which("latexmk") or not shutil.which("xelatex"):
        pytest.skip("xelatex/latexmk not installed")
    pictures = _pictures(pid)
    if pid == "house-price":
        assert len(pictures) == 1, pid            # the worked solution's picture is the sheet's
    for pre, pic in pictures:
        boxes, arrows = _measured(latexmk, pre, pic)
        for (i, node), box in boxes.items():
            for a, b, p, q in arrows:
                d = _segment_box_distance(p, q, box)
                assert d >= BIAS_CLEARANCE_PT, (pid, f"bias label under {node}", f"arrow {a} -> {b}", round(d, 2))


def _drawing(path: Path) -> tuple:
    """What a TikZ picture shows, independent of node ids and of the order it is written in: the
    scale, the nodes (kind, text, place) and the arrows (from, to, label, style)."""
    tex = path.read_text(encoding="utf-8")
    pic = tex.split("\\begin{tikzpicture}", 1)[1].split("\\end{tikzpicture}", 1)[0]
    nodes = {m.group(2): (m.group(1), m.group(5), float(m.group(3)), float(m.group(4)))
             for m in re.finditer(r"\\node\[([\w, ]+)\] \((n\d+)\) at \(([-\d.]+), ([-\d.]+)\) \{(.*)\};", pic)}
    arrows = {(nodes[a][1], nodes[b][1], lab, style)
              for style, a, lab, b in re.findall(r"\\draw\[([^\]]*)\] \((n\d+)\) -- (?:node\[[^\]]*\] \{(.*?)\} )?\((n\d+)\);", pic)}
    return pic.split("]", 1)[0], sorted(nodes.values()), sorted(arrows)


@pytest.mark.parametrize("where", ["", "exercises/"])
def test_relu_and_linear_2x_draw_their_2_4_2_network_alike(where):
    """relu-2-4-2 (h = relu(W_hidden x)) drew W_hidden as a dashed parameter box beside the arrow
    x → h, linear-2x (h = 2 W_hidden x, the same 2-4-2 matrices) as the label of that arrow: an
    activation of an unnamed weighted sum is drawn as linear-2x's is, so the two pictures (worked
    solution and sheet) are the same."""
    relu, linear = (_drawing(OUTPUT / f"{where}{pid}.en.tex") for pid in ("relu-2-4-2", "linear-2x"))
    assert relu == linear
    assert ("$x$\\\\[-2pt]{\\scriptsize $2\\times 1$}", "$h$\\\\[-2pt]{\\scriptsize $4\\times 1$}",
            "$W_{\\mathrm{hidden}}$", "->") in relu[2]
    assert not [n for n in relu[1] if n[0].startswith("param")]


def test_bias_places_are_computed_once_per_picture():
    """Every variant of a bank draws the same picture: the bias labels' places are kept per picture
    (they were computed again for each variant's sheet, key and worked solution, 60 ms of CPU a
    variant), and a caller changing its copy does not change the kept one."""
    from derive import diagram as dg
    centre = {"x": (0.0, 0.0), "h": (2.0, 0.0), "y": (4.0, 0.5)}
    boxes = {"x": ("circle", 0.45, 0.0), "h": ("circle", 0.45, 0.0), "y": ("circle", 0.45, 0.0)}
    drawn = [("x", "h", "w1", "weight"), ("h", "y", "w2", "weight")]
    args = ({"h": 0.4, "y": 0.4}, drawn, centre, boxes)
    first = dg.bias_positions(*args)
    assert first == dg._bias_positions(*args)             # the kept answer is the computed one
    first[0]["h"] = "changed"
    assert dg.bias_positions(*args) == dg._bias_positions(*args)

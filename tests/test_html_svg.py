"""The network diagram as SVG (derive/svgdiagram.py): the layout of derive.diagram, labels with
<tspan> sub- and superscripts, deterministic bytes."""
import math
import xml.etree.ElementTree as ET

import pytest

import derive
from derive import render as rd
from derive.spec import builtin_ids
from derive.svgdiagram import label_runs, network_svg

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def text_of(el) -> str:
    return "".join(el.itertext())


@pytest.fixture(scope="module")
def two():
    p = derive.load("two-two-two")
    return p, rd.build_context(p, p.solve(digits=6), lang="en")


def test_label_runs_sub_and_superscripts():
    assert label_runs("w_{1}") == [("w", 0), ("1", -1)]
    assert label_runs("\\mathrm{out}_{h_1}") == [("out", 0), ("h", -1), ("1", -2)]
    assert label_runs("E_{\\mathrm{total}}") == [("E", 0), ("total", -1)]
    assert label_runs("W^{(2)}_{11}") == [("W", 0), ("(2)", 1), ("11", -1)]
    assert label_runs("\\hat{y}") == [("ŷ", 0)]
    assert label_runs("\\delta_{o_1}") == [("δ", 0), ("o", -1), ("1", -2)]
    assert label_runs("+ b_{1} + b_{4}") == [("+ b", 0), ("1", -1), (" + b", 0), ("4", -1)]


def test_two_two_two_nodes_edges_and_labels(two):
    p, ctx = two
    d = ctx["diagram"]
    root = parse(network_svg(ctx, "en"))
    assert root.tag == NS + "svg" and root.get("role") == "img"
    assert root.find(NS + "title").text == "Network diagram"
    nodes = root.findall(f".//{NS}g[@class]")
    drawn = [n for n in d.nodes if n.kind != "bias"]
    node_groups = [g for g in nodes if g.get("class").startswith("node ")]
    assert len(node_groups) == len(drawn)
    # every node's label reads as its display name, in the diagram's order
    labels = [text_of(g.find(NS + "text")) for g in node_groups]
    expected = ["".join(t for t, _ in label_runs(n.tex)) for n in drawn]
    assert labels == expected and "outh1" in labels and "Etotal" in labels
    # the subscripts are tspans, shifted down and smaller
    out_h1 = node_groups[labels.index("outh1")].find(NS + "text")
    spans = out_h1.findall(NS + "tspan")
    assert [s.text for s in spans] == ["h", "1"]
    assert float(spans[0].get("dy")) > 0 and float(spans[0].get("font-size")) < float(out_h1.get("font-size"))
    # biases on a small second line of their neuron
    assert text_of(node_groups[labels.index("outh1")].findall(NS + "text")[1]) == "+ b1"
    # one arrow per drawn edge, one label per weight
    lines = root.findall(f".//{NS}g[@class='edges']/{NS}line")
    assert len(lines) == sum(1 for e in d.edges if e.kind != "bias")
    wl = [text_of(t) for t in root.findall(f".//{NS}g[@class='labels']/{NS}text")]
    assert sorted(wl) == sorted(f"w{i}" for i in range(1, 9))


def test_layout_follows_the_diagram(two):
    """Columns left to right and rows top to bottom as derive.diagram placed them; each arrow
    starts and ends on the border of its nodes."""
    _p, ctx = two
    d = ctx["diagram"]
    root = parse(network_svg(ctx))
    drawn = [n for n in d.nodes if n.kind != "bias"]
    centres = []
    for g in [g for g in root.iter(NS + "g") if (g.get("class") or "").startswith("node ")]:
        shape = g[0]
        if shape.tag in (NS + "circle", NS + "ellipse"):
            centres.append((float(shape.get("cx")), float(shape.get("cy"))))
        else:
            centres.append((float(shape.get("x")) + float(shape.get("width")) / 2,
                            float(shape.get("y")) + float(shape.get("height")) / 2))
    for (a, ca), (b, cb) in [((a, ca), (b, cb)) for a, ca in zip(drawn, centres) for b, cb in zip(drawn, centres)]:
        if a.x < b.x:
            assert ca[0] < cb[0]
        if a.y > b.y:
            assert ca[1] < cb[1]
    by_id = dict(zip((n.id for n in drawn), centres))
    circles = {n.id: float(g[0].get("r")) for n, g in zip(drawn, [g for g in root.iter(NS + "g")
               if (g.get("class") or "").startswith("node ")]) if g[0].tag == NS + "circle"}
    lines = root.findall(f".//{NS}g[@class='edges']/{NS}line")
    for e, line in zip([e for e in d.edges if e.kind != "bias"], lines):
        x1, y1 = float(line.get("x1")), float(line.get("y1"))
        if e.src in circles:
            cx, cy = by_id[e.src]
            assert math.hypot(x1 - cx, y1 - cy) == pytest.approx(circles[e.src], abs=0.15)


def test_deterministic_and_the_same_from_a_problem(two):
    p, ctx = two
    a = network_svg(ctx, "en")
    assert a == network_svg(ctx, "en") == network_svg(p, "en")
    zh = network_svg(p, "zh")
    assert parse(zh).find(NS + "title").text == "网络结构图"
    assert "\n<text" not in a.split("<text", 1)[1].split("</text>", 1)[0]   # no whitespace inside a label


@pytest.mark.parametrize("pid", builtin_ids())
def test_every_builtin_problem_draws(pid):
    root = parse(network_svg(derive.load(pid), "en"))
    vb = [float(v) for v in root.get("viewBox").split()]
    assert vb[2] > 50 and vb[3] > 30
    assert root.get("style").startswith(f"max-width:{root.get('viewBox').split()[2]}px")
    assert root.findall(f".//{NS}g[@class='edges']/{NS}line")

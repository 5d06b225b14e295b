"""The Mermaid diagrams of the Markdown handouts and sheets against the sentences under them.

Every ```mermaid block of output/ (worked solutions, exercise sheets, answer keys, the bank's
sheets) is read back here: its nodes (shape, label), its arrows (kind, label) and its config; and
the caption paragraph after it.  Each claim the caption makes must hold for the block, and each
thing the block draws that a sentence exists for must be said: arrows labelled with weights,
biases in small type under a name, dotted arrows for other parameters, circles as neurons (or as
layers, with their shapes).  Claims of the TikZ caption that the Mermaid diagram does not draw
(a bias *under* its neuron, blue boxes, weighted sums written into a neuron) must not appear.  The
layout: dagre with curved arrows (named in the block, so that every Mermaid version lays it out
alike), a loss box with a heavy frame instead of Mermaid's doubled "subroutine" frame, and a
target in a column of its own, beside the output's arrow drawn one column longer.
The browser test (tests/test_markdown_browser.py) renders the same blocks; this one needs none.
"""
from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "output"
NODE = re.compile(r'^  (n\d+)(\(\(|\[/|\(|\[)"(.*?)"(?:\)\)|/\]|\)|\])$', re.M)
ARROW = re.compile(r'^  (n\d+) (-\.->|-->|--->)(?:\|"([^"|]*)"\|)? (n\d+)$', re.M)
SHAPE = {"((": "circle", "[/": "parallelogram", "(": "rounded", "[": "box"}
# what the Markdown once said under its diagrams and the diagram did not draw
FALSE = {"en": ["A bias is written under the neuron", "Each blue box", "Dotted arrows bring in the biases",
                "the neuron they enter shows its weighted sum"],
         "zh": ["偏置写在它所加入的神经元下方", "蓝色方框", "点线箭头表示偏置", "在它们进入的神经元里写出加权和"]}


@functools.cache
def strings(lang: str) -> dict:
    return tomllib.loads((ROOT / "templates" / f"strings.{lang}.toml").read_text(encoding="utf-8"))


def head(sentence: str) -> str:
    """The fixed part of a sentence before its first placeholder."""
    return sentence.split("{", 1)[0]


def diagrams() -> list:
    """(file, language, sheet?, block, caption) of every Mermaid block of output/."""
    out = []
    for p in sorted(OUTPUT.rglob("*.md")):
        text = p.read_text(encoding="utf-8")
        for m in re.finditer(r"```mermaid\n(.*?)\n```\n\n([^\n]*)\n", text, re.S):
            out.append((str(p.relative_to(OUTPUT)), "zh" if ".zh." in p.name else "en",
                        p.parent.name != "output", m.group(1), m.group(2)))
    return out


DIAGRAMS = diagrams()


def parse(block: str):
    nodes = {n: (SHAPE[shape], label) for n, shape, label in NODE.findall(block)}
    arrows = ARROW.findall(block)
    body = [ln for ln in block.split("flowchart LR\n", 1)[1].splitlines()
            if ln.strip() and not ln.startswith("  classDef") and not ln.startswith("  class ")]
    assert len(body) == len(nodes) + len(arrows), [ln for ln in body if not NODE.match(ln) and not ARROW.match(ln)]
    return nodes, arrows


def test_every_handout_and_sheet_has_its_diagram():
    names = {f for f, *_ in DIAGRAMS}
    assert len(names) >= 50 and len(DIAGRAMS) >= 54
    assert {"two-two-two.en.md", "house-price.zh.md", "exercises/house-price.key.zh.md"} <= names


@pytest.mark.parametrize("name, lang, sheet, block, caption", DIAGRAMS, ids=[f"{d[0]}#{i}" for i, d in enumerate(DIAGRAMS)])
def test_the_caption_says_what_the_diagram_draws(name, lang, sheet, block, caption):
    s = strings(lang)
    nodes, arrows = parse(block)
    labelled = [a for a in arrows if a[2]]
    biased = [n for n, (_, label) in nodes.items() if re.search(r"<small>(?:[^<]|<br>|<sub>|</sub>)*\+ ", label)]
    circles = [n for n, (shape, _) in nodes.items() if shape == "circle"]
    layers = [n for n in circles if "×" in nodes[n][1]]

    def says(key: str) -> bool:
        return head(s[key]) in caption

    assert says("network_weights_md") == bool(labelled), name
    assert says("network_bias_in_md") == bool(biased), name
    assert says("network_param_md") == any(kind == "-.->" for _, kind, _, _ in arrows), name
    assert says("network_caption_md") == (not sheet), name
    assert says("network_neurons") == (not sheet and bool(circles) and not layers), name
    assert says("network_layers_md") == (not sheet and bool(layers)), name
    assert not says("network_no_labels") and labelled, name
    for wrong in FALSE[lang]:
        assert wrong not in caption, (name, wrong)
    # what the sentences promise, in the block: every arrow into a neuron carries its weight, and a
    # neuron's label is its name with, in small type, its shape and biases (no weighted sum)
    for src, kind, label, dst in arrows:
        if dst in circles:
            assert label, (name, nodes[src][1], nodes[dst][1])
    for n, (_, label) in nodes.items():
        assert "·" not in label, (name, label)
        small = re.search(r"<small>(.*)</small>", label)
        if small:
            assert all(re.fullmatch(r"\d+×\d+|(\+ \S+ ?)+", part.strip())
                       for part in re.sub(r"<su[bp]>.*?</su[bp]>", "", small.group(1)).split("<br>")), (name, label)


@pytest.mark.parametrize("name, lang, sheet, block, caption", DIAGRAMS, ids=[f"{d[0]}#{i}" for i, d in enumerate(DIAGRAMS)])
def test_the_layout_is_dagre_and_a_target_stands_beside_its_output(name, lang, sheet, block, caption):
    assert block.startswith("---\nconfig:\n  layout: dagre\n  flowchart:\n    curve: basis\n"), name
    assert "[[" not in block and "subgraph" not in block, name
    nodes, arrows = parse(block)
    into = {n: [a for a in arrows if a[3] == n] for n in nodes}
    out_of = {n: [a for a in arrows if a[0] == n] for n in nodes}
    (loss,) = [n for n in nodes if not out_of[n]]
    assert re.findall(r"^  class (\S+) loss$", block, re.M) == [loss], name
    assert "classDef loss stroke-width:" in block
    # a target: data (no arrow in) whose one plain arrow enters a node that a computed quantity
    # enters too; that quantity's arrow is drawn one column longer, and no other arrow is
    targets = {t: out_of[t][0][3] for t in nodes if not into[t] and len(out_of[t]) == 1 and out_of[t][0][1] == "-->"
               and not out_of[t][0][2] and any(into[a[0]] for a in into[out_of[t][0][3]])}
    long = [a for a in arrows if a[1] == "--->"]
    assert sorted((a[0], a[3]) for a in long) == sorted(
        (a[0], d) for d in set(targets.values()) for a in into[d] if a[0] not in targets), name
    if name.startswith(("two-two-two", "house-price", "alice", "one-two-one", "matrix-linear")):
        assert targets, name

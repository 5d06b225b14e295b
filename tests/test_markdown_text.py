"""The generated Markdown as a CommonMark parser reads it (markdown-it-py, the Python port of the
markdown-it that tests/test_markdown_browser.py runs in chromium; GitHub's parser follows the same
CommonMark rules for emphasis): no emphasis marker is left over as a literal character."""
from __future__ import annotations

from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_MD = sorted(str(p.relative_to(ROOT / "output")) for p in (ROOT / "output").rglob("*.md"))


def literal_markers(markdown: str) -> list:
    """The text (outside code spans, where the `$`…`$` math is) that still holds a `*` after
    CommonMark's emphasis rules have paired the markers: an emphasis that was never opened or
    closed, printed with its asterisks."""
    left = []
    for token in MarkdownIt("commonmark").parse(markdown):
        for child in token.children or ():
            if child.type == "text" and "*" in child.content:
                left.append(child.content)
    return left


def test_the_detector_sees_an_unclosed_emphasis():
    # "：" is punctuation: a closing "*" after it and before a letter is not right-flanking
    assert literal_markers("*提示：*目标值") == ["*提示：*目标值"]
    assert literal_markers("*提示*：目标值") == []
    assert literal_markers("*Remark*: the target") == []


@pytest.mark.parametrize("name", OUTPUT_MD)
def test_no_generated_markdown_prints_an_emphasis_marker(name):
    """The Chinese remarks were written "*提示：*…": the asterisks were printed (the label's colon
    now stands outside the emphasis)."""
    assert literal_markers((ROOT / "output" / name).read_text(encoding="utf-8")) == [], name

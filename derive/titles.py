"""Titles and sources of the documents, in one place: the worked solution (`render`), the errata
(`errata`), the exercise sheet and its answer key (`exercise_context`), in both formats and languages.

`document_title(spec, lang, generic)` is the title in the document's language: the spec's title for
that language (`title_zh` in Chinese, `title`) when it is written in that language, else `generic`
(a title of the document's kind naming the problem, from the caller's strings) — never a title in
the other language.  `typeset_parts(text, spec, names)` splits a title or a source into prose and
formula pieces: '->' becomes an arrow, a run of the problem's names joined by '·' (X·W1·W2) is set
with their display names, and a function written out in the text (f(x) = 2x) is set as a formula.
`title_parts` is the two together.  The templates print the pieces (macros `parts`), escaping the
prose; the formulas are built here from the problem's names, never copied from the spec as LaTeX.
"""
from __future__ import annotations

import re

from .escape import CJK

# a run of names joined by '·' or '*' (X·W1·W2), an arrow, or a one-letter function of one letter
# written out: f(x) = 2x, g(t) = 3t + 1 (digits, the argument, + − and spaces)
TITLE_TOKEN = re.compile(
    r"(?P<fn>(?<![A-Za-z0-9_])[A-Za-z]\((?P<arg>[a-z])\)\s*=\s*[0-9.]*(?P=arg)?(?:\s*[+\-−]\s*[0-9.]*(?P=arg)?)*"
    r"(?<=[0-9a-z]))"
    r"|->|(?<![A-Za-z0-9_])[A-Za-z][A-Za-z0-9_]*(?:\s*[·*]\s*[A-Za-z][A-Za-z0-9_]*)*")


def document_title(spec, lang: str, generic: str = "") -> str:
    """The title of a document in `lang`: the spec's title for that language when the spec has one
    written in that language, else `generic` ('' by default: the caller then names the problem)."""
    own = spec.title_in(lang)
    if own and bool(CJK.search(own)) == (lang == "zh"):
        return own
    return generic


def title_parts(spec, lang: str, names: dict, generic: str) -> tuple:
    """`document_title` as (is_math, text) pieces (`typeset_parts`)."""
    return typeset_parts(document_title(spec, lang, generic), spec, names)


def _function(text: str) -> str:
    """f(x) = 2x − 1 as LaTeX: the minus sign a minus, one space around = and the operators."""
    lhs, rhs = text.split("=", 1)
    rhs = re.sub(r"\s*([+\-−])\s*", r" \1 ", rhs.strip()).replace("−", "-")
    return f"{lhs.strip()} = {rhs}"


def typeset_parts(text: str, spec, names: dict) -> tuple:
    """A title or source as (is_math, text) pieces: '->' becomes an arrow, a run of the problem's
    names joined by '·' (X·W1·W2) is set as a formula with their display names, and a function
    written out (f(x) = 2x) as a formula.  Only names with a digit, an underscore or a capital
    letter are taken (so an English word is never mistaken for a quantity)."""
    if not text:
        return ()

    disp = {}
    for n, d in names.items():
        for key in (n, re.sub(r"\\mathrm|[_{}\\ ]", "", d)):
            if any(ch.isdigit() or ch == "_" or ch.isupper() for ch in key):
                disp.setdefault(key, d)

    def formal(n: str) -> bool:
        return n in disp

    out, pos = [], 0
    for m in TITLE_TOKEN.finditer(text):
        tok = m.group(0)
        if m.group("fn"):
            math = _function(tok)
        elif tok == "->":
            math = "\\rightarrow"
        else:
            words = re.split(r"\s*[·*]\s*", tok)
            if not all(formal(w) for w in words):
                if len(words) > 1 or not formal(words[0]):
                    continue
            math = " \\cdot ".join(disp[w] for w in words)
        if m.start() > pos:
            out.append((False, text[pos:m.start()]))
        out.append((True, math))
        pos = m.end()
    if pos < len(text):
        out.append((False, text[pos:]))
    return tuple(out)


__all__ = ["TITLE_TOKEN", "document_title", "title_parts", "typeset_parts"]

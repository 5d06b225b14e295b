"""Text that TeX cannot typeset, refused when a spec or a claims file is read (not after a TeX run).

- `check_text`: prose (title, source, claim notes): at most MAX_TEXT_CHARS characters, no control
  characters (U+0000–U+001F except tab, U+007F, the C1 controls U+0080–U+009F, a lone carriage
  return), no line or paragraph separators, no surrogates or noncharacters; a title or source is
  one line.
- `check_display_math`: a [latex] display name (already in the safe subset of `latexsafe`) that
  TeX would still refuse: a double superscript or subscript (`w^2^3`, `w_1_2`, `w^2'`), `^`/`_`
  without an argument (`w^`), or an argument-taking macro without one (a bare `\\mathrm`).

Each raises DeriveError with what is wrong; the caller adds the file and the key.
"""
from __future__ import annotations

import re
import unicodedata

from .errors import DeriveError, LimitError

MAX_TEXT_CHARS = 500   # title, source, a claim's note

ARGUMENT_MACROS = {"hat", "bar", "tilde", "vec", "dot", "ddot", "widehat", "overline", "mathrm", "mathit",
                   "mathbf", "mathsf", "mathcal", "boldsymbol", "operatorname"}


def _bad_character(text: str, one_line: bool) -> tuple[int, str] | None:
    for i, ch in enumerate(text):
        if ch == "\t" or (ch == "\n" and not one_line):
            continue
        if ch == "\r" and not one_line and text[i + 1:i + 2] == "\n":
            continue
        cat = unicodedata.category(ch)
        code = ord(ch)
        if ch in "\n\r":
            return i, "a line break (it must be one line)" if one_line else "a lone carriage return"
        if cat in ("Cc", "Cs", "Zl", "Zp") or (0xFDD0 <= code <= 0xFDEF) or (code & 0xFFFE) == 0xFFFE:
            name = unicodedata.name(ch, "a control character" if cat == "Cc" else "a noncharacter")
            return i, f"U+{code:04X} ({name.lower()})"
    return None


def check_text(text: str, *, one_line: bool = False, limit: int = MAX_TEXT_CHARS) -> None:
    """Raise DeriveError for prose TeX cannot typeset (see the module's docstring)."""
    if len(text) > limit:
        raise LimitError(f"{len(text)} characters long; the limit is {limit}")
    bad = _bad_character(text, one_line)
    if bad is not None:
        i, what = bad
        raise DeriveError(f"contains {what} at character {i + 1}, which cannot be typeset")


_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\s+|.", re.S)


def check_display_math(text: str) -> None:
    """Raise DeriveError for display-name LaTeX that TeX refuses (see the module's docstring)."""
    toks = [t for t in _TOKEN.findall(text) if not t.isspace()]
    i = _sequence(toks, 0, text)
    if i < len(toks):   # a '}' with no '{' (latexsafe reports unbalanced braces first)
        raise DeriveError("display name has unbalanced braces")


def _sequence(toks: list, i: int, text: str) -> int:
    """Atoms and their scripts up to a closing '}' (not consumed) or the end; the next index."""
    scripts: set = set()     # scripts of the current atom: '^', '_', "'" (primes)
    while i < len(toks) and toks[i] != "}":
        t = toks[i]
        if t in ("^", "_"):
            if t in scripts:
                kind = "superscript" if t == "^" else "subscript"
                raise DeriveError(f"display name {text!r} has a double {kind}; TeX refuses it "
                                  f"(write {'w^{23}' if t == '^' else 'w_{12}'} or use braces: {'{w^2}^3' if t == '^' else '{w_1}_2'})")
            scripts.add(t)
            i = _argument(toks, i + 1, t, text)
        elif t == "'":
            if "^" in scripts:
                raise DeriveError(f"display name {text!r} has a prime after a superscript (a double "
                                  "superscript in TeX); write the prime first: w'^2")
            scripts.add("'")
            i += 1
        elif t == "{":
            i = _sequence(toks, i + 1, text)
            if i >= len(toks):
                raise DeriveError("display name has unbalanced braces")
            i += 1
            scripts = set()
        elif t.startswith("\\") and t[1:] in ARGUMENT_MACROS:
            i = _argument(toks, i + 1, t, text)
            scripts = set()
        else:
            i += 1
            scripts = set()
    return i


def _argument(toks: list, i: int, what: str, text: str) -> int:
    """The argument of ^, _ or an argument-taking macro at toks[i]; the index after it."""
    if i >= len(toks) or toks[i] in ("}", "^", "_", "'"):
        raise DeriveError(f"display name {text!r}: {what} without an argument (write {what}{{…}})")
    t = toks[i]
    if t == "{":
        i = _sequence(toks, i + 1, text)
        if i >= len(toks):
            raise DeriveError("display name has unbalanced braces")
        return i + 1
    if t.startswith("\\") and t[1:] in ARGUMENT_MACROS:
        raise DeriveError(f"display name {text!r}: {t} as the argument of {what} needs braces "
                          f"({what}{{{t}{{…}}}})")
    return i + 1

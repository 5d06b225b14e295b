"""Equation layout for the handouts: one displayed equation (`Eq`), on one line when it fits,
else aligned and broken at its operators, in a smaller size where a part is wide (`layout`);
several matrices side by side (`pack`); and the relation (= or ≈) a number is shown with.

Widths are `printer.width` estimates of the typeset LaTeX; a display line is LINE_WIDTH units.
"""
from __future__ import annotations

import decimal
from dataclasses import dataclass
from fractions import Fraction

from . import printer as pr

LINE_WIDTH = 75.0          # a display line at normal size, in printer.width units
SIZES = (("", 1.0), ("small", 0.9), ("footnotesize", 0.8), ("scriptsize", 0.7))


@dataclass(frozen=True)
class Eq:
    """One displayed equation: `flat` (one line) or aligned `lines` ('lhs &= …', '&= …')."""
    lines: tuple
    flat: str | None = None
    size: str = ""               # LaTeX font size around the display ('' = normal)



# ---------------------------------------------------------------- numbers as text
def shown(n) -> str:
    return pr.number(n.text)


def shown_exact(n) -> bool:
    """True when the shown text is the exact value (so '=' rather than '≈')."""
    if n.exact is None:
        return False
    try:
        return Fraction(decimal.Decimal(n.text)) == n.exact
    except (decimal.InvalidOperation, ValueError):
        return False


def relation(numbers) -> str:
    return "=" if all(shown_exact(n) for n in numbers) else "\\approx"


def paren(tex: str) -> str:
    return f"\\left({tex}\\right)" if tex.startswith("-") else tex


# ---------------------------------------------------------------- equation layout
def layout(lhs: str, parts: list) -> Eq:
    """lhs rel₁ part₁ rel₂ part₂ …, on one line if it fits, else aligned and broken at operators.

    `parts` is [(relation, chunks)] with chunks [(operator, tex)] where a line may break.
    """
    parts = dedupe(parts)
    flat = lhs + "".join(f" {rel} {join(chunks)}" for rel, chunks in parts)
    if pr.width(flat) <= LINE_WIDTH:
        return Eq((flat,), flat, "")
    lw = pr.width(lhs) + 3
    widest = max(pr.width(t) + (2 if op else 0) for _, chunks in parts for op, t in chunks)
    size, factor = SIZES[-1]
    for s, f in SIZES:
        if lw + widest <= LINE_WIDTH / f:
            size, factor = s, f
            break
    limit = LINE_WIDTH / factor
    lines = []
    cur, curw = f"{lhs} ", lw - 3
    for i, (rel, chunks) in enumerate(parts):
        whole = f"{rel} {join(chunks)}"
        w = pr.width(whole)
        if i > 0 and curw + w > limit:          # the next part goes on a new line
            lines.append(cur.rstrip())
            cur, curw = "", lw
        if curw + w <= limit:                    # it fits whole
            cur += f"&{whole} " if i == 0 or not cur else f"{whole} "
            curw += w
            continue
        cur += f"&{rel} "                        # too long for any line: break it at its operators
        curw += pr.width(rel) + 1
        first = True
        for op, t in chunks:
            piece = f"{op} {t}" if op else t
            pw = pr.width(piece)
            if not first and curw + pw > limit:
                lines.append(cur.rstrip())
                cur, curw = f"&\\quad {piece} ", lw + 2 + pw
            else:
                cur += f"{piece} "
                curw += pw
            first = False
    lines.append(cur.rstrip())
    return Eq(tuple(lines), None, size)


def pack(items: list) -> Eq | None:
    """Several displayed items (`W = (…)`) side by side, as many to a line as fit (for gather*)."""
    if not items:
        return None
    widest = max(pr.width(t) for t in items)
    size, factor = SIZES[-1]
    for sz, f in SIZES:
        if widest <= LINE_WIDTH / f:
            size, factor = sz, f
            break
    limit = LINE_WIDTH / factor
    lines, cur, curw = [], [], 0.0
    for t in items:
        w = pr.width(t) + 4
        if cur and curw + w > limit:
            lines.append(" \\qquad ".join(cur))
            cur, curw = [], 0.0
        cur.append(t)
        curw += w
    lines.append(" \\qquad ".join(cur))
    return Eq(tuple(lines), lines[0] if len(lines) == 1 else None, size)


def join(chunks) -> str:
    out = ""
    for op, t in chunks:
        out += (f" {op} {t}" if op else (f" {t}" if out else t))
    return out.strip()


def dedupe(parts):
    """Drop a part that repeats the one before it (e.g. a formula that is just a number)."""
    out = []
    for rel, chunks in parts:
        if not chunks:
            continue
        if out and join(out[-1][1]) == join(chunks):
            if rel != "=":
                out[-1] = (rel, out[-1][1])
            continue
        out.append((rel, chunks))
    return out


def one(tex: str) -> list:
    return [("", tex)]


def sum_chunks(lists) -> list:
    out = []
    for i, chunks in enumerate(lists):
        if i == 0:
            out += chunks
        else:
            (op, t), rest = chunks[0], chunks[1:]
            out.append(("+", t if not t.startswith("-") else f"\\left({t}\\right)"))
            out += rest
    return out



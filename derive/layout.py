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
def layout(lhs: str, parts: list, breaks: tuple = ()) -> Eq:
    """lhs rel₁ part₁ rel₂ part₂ …, on one line if it fits, else aligned on the relations and broken
    at operators.

    `parts` is [(relation, chunks)] with chunks [(operator, tex)] where a line may break.  When the
    equation does not fit on one line, a part whose index is in `breaks` starts a new line (the
    symbolic formula, then the numbers); a last part that would stand alone on its line (the value)
    takes the part before it along when both fit.  `lines` are always aligned (`lhs &= …`), so that
    several equations can be set in one aligned display (`group`).
    """
    parts = dedupe(parts)
    if not parts:
        return Eq((lhs,), lhs, "")
    flat = lhs + "".join(f" {rel} {join(chunks)}" for rel, chunks in parts)
    if pr.width(flat) <= LINE_WIDTH:
        rel0, chunks0 = parts[0]
        aligned = f"{lhs} &{rel0} {join(chunks0)}" + "".join(f" {rel} {join(chunks)}" for rel, chunks in parts[1:])
        return Eq((aligned,), flat, "")
    breaks = {i for i in breaks if 0 < i < len(parts)}
    lw = pr.width(lhs) + 3
    widest = max(pr.width(t) + (2 if op else 0) for _, chunks in parts for op, t in chunks)
    size, factor = SIZES[-1]
    for s, f in SIZES:
        if lw + widest <= LINE_WIDTH / f:
            size, factor = s, f
            break
    limit = LINE_WIDTH / factor
    rows = _rows(parts, breaks, lw, limit)
    if len(rows) > 1 and len(rows[-1]) == 1 and len(rows[-2]) > 1 and not rows[-1][0][2]:
        last, prev = rows[-1][0], rows[-2][-1]
        if not prev[2] and _part_width(prev) + _part_width(last) + lw <= limit:
            rows[-2] = rows[-2][:-1]
            rows[-1] = [prev, last]
    lines = []
    for r, row in enumerate(rows):
        head = f"{lhs} " if r == 0 else ""
        cur, curw = head, (lw - 3 if r == 0 else lw)
        for k, (rel, chunks, broken) in enumerate(row):
            if not broken:
                cur += (f"&{rel} " if k == 0 else f"{rel} ") + join(chunks) + " "
                curw += _part_width((rel, chunks, broken))
                continue
            cur += (f"&{rel} " if k == 0 else f"{rel} ")      # too long for any line: break it at its operators
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


def _part_width(part) -> float:
    rel, chunks = part[0], part[1]
    return pr.width(f"{rel} {join(chunks)}")


def _rows(parts, breaks, lw, limit) -> list:
    """The parts of an equation grouped into lines: [[(rel, chunks, broken)]], `broken` when a part
    is wider than a line (it is then broken at its operators)."""
    rows, cur, curw = [], [], lw - 3
    for i, (rel, chunks) in enumerate(parts):
        w = _part_width((rel, chunks))
        if cur and (i in breaks or curw + w > limit):
            rows.append(cur)
            cur, curw = [], lw
        broken = curw + w > limit
        cur.append((rel, chunks, broken))
        curw += w
        if broken:                 # a broken part ends its line
            rows.append(cur)
            cur, curw = [], lw
    if cur:
        rows.append(cur)
    return rows


def group(eqs) -> list:
    """Consecutive equations in aligned displays (one `Eq` per run of equations of the same size):
    a derivation is aligned on its relations instead of being centred line by line."""
    out, run = [], []
    for e in eqs:
        if e is None:
            continue
        if run and run[-1].size != e.size:
            out.append(_joined(run))
            run = []
        run.append(e)
    if run:
        out.append(_joined(run))
    return out


def _joined(run) -> Eq:
    if len(run) == 1:
        return run[0]
    return Eq(tuple(line for e in run for line in e.lines), None, run[0].size)


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
            (_op, t), rest = chunks[0], chunks[1:]
            out.append(("+", t if not t.startswith("-") else f"\\left({t}\\right)"))
            out += rest
    return out



"""Reports of a check: counts per verdict, the one-line summary, JSON, the text table."""
from __future__ import annotations

import json
import unicodedata


from .claims import ClaimsFile
from .verdicts import VERDICT_NAMES, VERDICTS, diagnosis_name


# ---------------------------------------------------------------- running a file
def summary(results: list) -> dict:
    counts = {v: 0 for v in VERDICTS}
    for r in results:
        counts[r.verdict] += 1
    return counts


def summary_line(results: list, lang: str = "en", demonstration: bool = False) -> str:
    """'8 claims: 6 correct, …' (共 8 条原文断言：…; 论断 for claims written for the example, not a source's)."""
    s = summary(results)
    if lang == "zh":
        return (f"共 {len(results)} 条{'论断' if demonstration else '原文断言'}：{s['correct']} 条正确，{s['rounding']} 条只差舍入，"
                f"{s['truncated']} 条被截断，{s['wrong']} 条错误")
    return (f"{len(results)} claims: {s['correct']} correct, {s['rounding']} rounding, "
            f"{s['truncated']} truncated, {s['wrong']} wrong")


def to_json(cf: ClaimsFile, results: list, digits: int) -> dict:
    return {
        "file": cf.path, "spec": cf.problem.spec.id, "digits": digits,
        "claims": [r.to_json() for r in results],
        "summary": summary(results),
    }


def plain(x) -> str:
    """A claimed or true value as plain text: a number, [a, b] or [[a, b], [c, d]]; — for none."""
    if x is None:
        return "—"
    if isinstance(x, list):
        return "[" + ", ".join(plain(v) for v in x) + "]"
    return str(x)


def cell(x, width: int = 34) -> str:
    if x is None:
        return "—"
    if isinstance(x, list):
        x = json.dumps(x, ensure_ascii=False).replace('"', "")
    text = " ".join(str(x).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def text_report(cf: ClaimsFile, results: list, digits: int, lang: str = "en") -> str:
    spec = cf.problem.spec
    heads = {"en": ("#", "claim", "claimed", "true", f"true ({digits} digits)", "verdict", "diagnosis"),
             "zh": ("#", "原文断言", "原文", "真值", f"真值（{digits} 位）", "判定", "诊断")}[lang]
    verdicts = VERDICT_NAMES[lang]
    rows = [[str(r.claim.index), cell(r.claim.of, 22), cell(r.claimed), cell(r.true),
             cell(r.true_digits, 24), verdicts[r.verdict], _diagnosis(r.diagnosis, lang)] for r in results]
    widths = [max(_w(h), *(_w(row[i]) for row in rows)) for i, h in enumerate(heads)]
    lines = [f"{cf.path} — {spec.title} ({spec.id})", ""]
    lines.append("  ".join(_pad(h, w) for h, w in zip(heads, widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(_pad(c, w) for c, w in zip(row, widths)).rstrip())
    notes = [r for r in results if r.verdict != "correct"]
    if notes:
        lines.append("")
        for r in notes:
            head = verdicts[r.verdict] + (("，" if lang == "zh" else ", ") + _diagnosis(r.diagnosis, lang)
                                          if r.diagnosis else "")
            lines.append(f"[{r.claim.index}] {r.claim.of}（{head}）：{r.message}" if lang == "zh" else
                         f"[{r.claim.index}] {r.claim.of} ({head}): {r.message}")
    lines.append("")
    lines.append(summary_line(results, lang, cf.demonstration))
    return "\n".join(lines) + "\n"


def _diagnosis(tag, lang: str) -> str:
    """The diagnosis column: the tag in English (as JSON gives it), its Chinese name in Chinese."""
    return (tag or "") if lang == "en" else diagnosis_name(tag, lang)


def _w(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def _pad(s: str, w: int) -> str:
    return s + " " * (w - _w(s))

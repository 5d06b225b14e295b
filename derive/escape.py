"""Text safety, in one place: escaping user text for LaTeX and Markdown, and the safe subset allowed
in [latex] display names.

User prose (titles, sources, notes, claimed numbers, file names) is *escaped* before it reaches a
document: `escape_text`/`tex_text`/`tex_prose` for LaTeX, `md_text` for Markdown (Markdown markup
backslash-escaped, and `<`, `>`, `&` written as HTML entities so that no raw HTML gets through),
`md_code` for a Markdown code span, `html_text` for HTML (the interactive page, notebook tables),
`mermaid_text` for a Mermaid label.

Math in Markdown is delimited here and nowhere else: `md_math` for inline math (`` $`…`$ ``) and
`md_display` for display math (a fenced ```` ```math ```` block), the forms GitHub renders whatever
surrounds them (a plain `$…$` does not open after a letter, digit, `(`, `[` or `-`, and inside
`$$…$$` the Markdown pass eats `\\\\`, `\\{`, `\\,`).  The templates reach them as the filters
`imath` and `dmath` (`derive.templating` registers them in every Markdown environment).  A notebook's
Markdown (`derive.api`) is Jupyter's, which reads `$…$` and `$$…$$`: `jupyter_math`/`jupyter_display`
take the filters' place there.

Display names in a spec's [latex] table are LaTeX math by design, so they are *checked* instead
(`check_display_name`): at most `LATEX_NAME_CHARS` characters of printable ASCII from a small set —
letters, digits, spaces and ``\\ { } _ ^ + - * / = ( ) [ ] , . : ;`` and ``!`` —, only the macros
in `SAFE_MACROS`, balanced braces, and never ``^^``.  Everything else is refused because TeX or
Markdown could give it a meaning beyond a name:

- ``^^`` is TeX's notation for another character (``^^5c`` is ``\\``, ``^^M`` a line end) and is
  applied before tokenising, so it would smuggle in any character;
- ``% # $ & ~`` and control characters are special or active in TeX (``~`` is active, ``^^L`` is
  ``\\par``); non-ASCII characters are active under pdfLaTeX's inputenc;
- ``< > & " ' ` |`` and ``](`` would reach the Markdown handouts inside ``$…$`` (raw HTML, code
  spans, table cells, links) — a prime is written ``^{\\prime}``.

This module imports nothing of derive but `errors`.
"""
from __future__ import annotations

import re

import markupsafe

from .errors import DeriveError

LATEX_NAME_CHARS = 120       # the longest display name accepted

GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta", "vartheta",
    "iota", "kappa", "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "upsilon", "phi",
    "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma",
    "Upsilon", "Phi", "Psi", "Omega",
}
SAFE_MACROS = GREEK | {
    "hat", "bar", "tilde", "vec", "dot", "ddot", "widehat", "overline", "mathrm", "mathit", "mathbf",
    "mathsf", "mathcal", "boldsymbol", "operatorname", "prime", "ell", "partial", "nabla",
    "top", "intercal", "cdot", "star", "ast",
}
_MACRO = re.compile(r"\\([A-Za-z]+|.)", re.S)
# characters refused by name, with the reason given in the message
_FORBIDDEN_CHARS = set("%#$&~<>\"'`|")
# every character a display name may use
_ALLOWED_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \\{}_^+-*/=()[],.:;!")


def _show(ch: str) -> str:
    return repr(ch) if ch.isprintable() and ord(ch) < 128 else f"U+{ord(ch):04X}"


def check_display_name(text: str) -> None:
    """Raise DeriveError unless `text` is in the safe LaTeX subset for display names."""
    if len(text) > LATEX_NAME_CHARS:
        raise DeriveError(f"display name longer than {LATEX_NAME_CHARS} characters")
    if "^^" in text:
        raise DeriveError("display name may not contain '^^' (TeX reads ^^5c as a backslash)")
    if "](" in text:
        raise DeriveError("display name may not contain '](' (Markdown would read a link)")
    bad = sorted(set(text) & _FORBIDDEN_CHARS)
    if bad:
        raise DeriveError(f"display name may not contain {' '.join(repr(c) for c in bad)}")
    other = sorted(set(text) - _ALLOWED_CHARS)
    if other:
        raise DeriveError(f"display name may not contain {' '.join(_show(c) for c in other)} (allowed: "
                          "ASCII letters, digits, spaces and \\ { } _ ^ + - * / = ( ) [ ] , . : ; !)")
    for m in _MACRO.finditer(text):
        macro = m.group(1)
        if macro not in SAFE_MACROS:
            raise DeriveError(f"display name uses \\{macro}, which is not in the safe subset "
                              f"(Greek letters, \\hat, \\bar, \\mathrm, \\mathbf, ...)")
    depth = 0
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            break
    if depth != 0:
        raise DeriveError("display name has unbalanced braces")


# ---------------------------------------------------------------- LaTeX
_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def escape_text(text: str) -> str:
    """Escape user prose for LaTeX: every special character becomes a harmless literal."""
    return str(text).translate(_ESCAPE_TABLE).replace("\n", " ")


_ESCAPE_TABLE = str.maketrans(_ESCAPES)     # each character by itself, as _ESCAPES maps it


CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]+")


def tex_text(text) -> str:
    """User prose for a LaTeX handout: escaped, CJK runs wrapped in \\cjk{…} for pdfLaTeX."""
    return CJK.sub(lambda m: "\\cjk{" + m.group(0) + "}", escape_text(str(text)))


# symbols in messages that LaTeX text mode cannot take from every font
_TEX_SYMBOLS = {
    "σ": "$\\sigma$", "η": "$\\eta$", "α": "$\\alpha$", "δ": "$\\delta$", "∑": "$\\sum$",
    "≠": "$\\neq$", "≤": "$\\le$", "≥": "$\\ge$", "∈": "$\\in$", "′": "$'$", "∂": "$\\partial$",
    "·": "$\\cdot$", "−": "$-$", "½": "$\\frac{1}{2}$", "≈": "$\\approx$", "—": "---", "…": "\\dots{}",
    "→": "$\\to$", "×": "$\\times$", "²": "$^2$", "ŷ": "$\\hat{y}$", "⊙": "$\\odot$", "ᵀ": "$^{\\top}$",
}


def tex_prose(text) -> str:
    """User or message prose for the LaTeX errata: escaped, math symbols made safe for any font."""
    out = escape_text(str(text))
    for k, v in _TEX_SYMBOLS.items():
        out = out.replace(k, v)
    return out


# ---------------------------------------------------------------- Markdown
_MD_ESCAPES = {ch: "\\" + ch for ch in "\\`*_[]|$~#{}"}
_MD_ESCAPES.update({"<": "&lt;", ">": "&gt;", "&": "&amp;"})


def md_text(text) -> str:
    """User prose for Markdown, on one line: characters that would start markup or math are
    backslash-escaped, and `<`, `>`, `&` become HTML entities (no raw HTML, no entity tricks)."""
    return "".join(_MD_ESCAPES.get(ch, ch) for ch in " ".join(str(text).split()))


def md_code(text) -> str:
    """User text as a Markdown code span (shown literally; a backtick in it cannot end the span)."""
    text = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _math_body(tex) -> str:
    """LaTeX math for a Markdown math span or block: a `|` (which would split a table cell, even
    inside a code span) written as the same symbol `\\vert`; a backtick, which would end the span,
    cannot come from the printer or a checked display name and is refused."""
    tex = str(tex).strip()
    if "`" in tex:
        raise DeriveError(f"a backtick in Markdown math: {tex[:60]}")
    return tex.replace("|", "\\vert{}")


def _inline(tex) -> str:
    """Math for one line: its body with every run of whitespace one space."""
    return " ".join(_math_body(tex).split())


def _display_lines(tex) -> str:
    """Math for a display block: its body's lines, without blank ones."""
    lines = [ln.rstrip() for ln in _math_body(tex).split("\n")]
    return "\n".join(ln for ln in lines if ln.strip())


def md_math(tex) -> str:
    """Inline math for GitHub Markdown: `` $`…`$ `` (math in a code span between dollars), on one line."""
    body = _inline(tex)
    return f"$`{body}`$" if body else ""


def md_display(tex) -> str:
    """Display math for GitHub Markdown: a fenced ```` ```math ```` block, without blank lines."""
    return "```math\n" + _display_lines(tex) + "\n```"


MD_MATH_FILTERS = {"imath": md_math, "dmath": md_display}


def jupyter_math(tex) -> str:
    """Inline math for Jupyter's Markdown (MathJax reads `$…$`; the notebook takes math out
    before the Markdown pass, so nothing inside is eaten), on one line."""
    body = _inline(tex)
    return f"${body}$" if body else ""


def jupyter_display(tex) -> str:
    """Display math for Jupyter's Markdown: `$$…$$` on lines of its own, without blank lines."""
    return "$$\n" + _display_lines(tex) + "\n$$"


JUPYTER_MATH_FILTERS = {"imath": jupyter_math, "dmath": jupyter_display}


def html_text(text) -> str:
    """User text for HTML (text or a quoted attribute): `& < > " '` as entities; None as ""."""
    return str(markupsafe.escape("" if text is None else text))


def mermaid_text(text) -> str:
    """A Mermaid label (written inside double quotes): characters Mermaid or HTML would read dropped."""
    return re.sub(r'["<>{}\[\]|#&`]', "", str(text))

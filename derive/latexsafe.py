"""LaTeX safety: escaping user text, and the safe subset allowed in [latex] display names.

Prose and names from users (titles, sources, notes) are escaped with `escape_text` before they
reach a .tex file.  Display names in a spec's [latex] table are LaTeX by design, so they are
checked instead: only the macros in `SAFE_MACROS`, balanced braces, and none of `% # $ & ~`.
"""
from __future__ import annotations

import re

from .errors import DeriveError

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
_MACRO = re.compile(r"\\([A-Za-z]+|.)")
_FORBIDDEN_CHARS = set("%#$&~\n\r")


def check_display_name(text: str) -> None:
    """Raise DeriveError unless `text` is in the safe LaTeX subset for display names."""
    from .spec import LATEX_NAME_CHARS
    if len(text) > LATEX_NAME_CHARS:
        raise DeriveError(f"display name longer than {LATEX_NAME_CHARS} characters")
    bad = sorted(set(text) & _FORBIDDEN_CHARS)
    if bad:
        raise DeriveError(f"display name may not contain {' '.join(repr(c) for c in bad)}")
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


_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def escape_text(text: str) -> str:
    """Escape user prose for LaTeX: every special character becomes a harmless literal."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text)).replace("\n", " ")

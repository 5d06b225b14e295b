"""Loss curves as SVG or PNG through matplotlib, byte for byte the same on every run.

Takes curves (a label and the loss per epoch); gives the file's bytes.  A log scale is used where
the losses span more than two decades (and are all > 0).  Deterministic: the Agg backend, fixed
metadata (no date; `Creator`/`Software` = derive), `svg.hashsalt` fixed (matplotlib's SVG ids are
otherwise random), text kept as text in SVG (`svg.fonttype = none`), and no dependence on the
environment's matplotlibrc (rcParams are set here for every figure).  matplotlib is imported only
when a plot is made.
"""
from __future__ import annotations

import io
import math
import textwrap

STYLE = {
    "svg.hashsalt": "derive",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "path.simplify": False,
}
FORMATS = ("svg", "png")
LINE_STYLES = ("-", "--", ":", "-.", (0, (5, 1)), (0, (1, 3)))     # matplotlib's, one per curve
PGF_LINE_STYLES = ("solid", "dashed", "dotted", "dashdotted", "densely dashed", "loosely dotted")   # the same in pgfplots


def preload() -> None:
    """Import matplotlib now (a process about to fork workers that draw curves imports it once)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot  # noqa: F401


def log_scale(curves) -> bool:
    ys = [y for _label, history in curves for y in history if math.isfinite(y)]
    return bool(ys) and min(ys) > 0 and max(ys) / min(ys) > 100


def loss_plot(curves, fmt: str = "svg", *, xlabel: str = "epoch", ylabel: str = "loss",
              title: str | None = None, ymax: float | None = None) -> bytes:
    """`curves`: [(label or None, [loss per epoch 0..])]; the figure as SVG or PNG bytes.  `ymax`
    clips the axis (a diverging curve then leaves the top instead of flattening the others)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt
    from matplotlib import rc_context
    from matplotlib.ticker import FuncFormatter
    if fmt not in FORMATS:
        raise ValueError(fmt)
    with rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=100)
        try:
            for i, (label, history) in enumerate(curves):
                xs = list(range(len(history)))
                ys = [y if math.isfinite(y) else float("nan") for y in history]
                # several curves differ in their line style too, not only in colour (matrix-linear's
                # η = 0.003 and 0.002 looked alike where they overlap)
                ax.plot(xs, ys, label=label, linewidth=1.4,
                        linestyle=LINE_STYLES[i % len(LINE_STYLES)] if len(curves) > 1 else "-")
            if log_scale(curves):
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(FuncFormatter(_power_of_ten))
                ax.yaxis.set_minor_formatter(FuncFormatter(lambda _y, _pos: ""))
            if ymax is not None:
                low = min(y for _l, h in curves for y in h if math.isfinite(y))
                ax.set_ylim(bottom=low / 2 if log_scale(curves) and low > 0 else None, top=ymax)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if title:
                ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=9)
            if any(label for label, _ in curves):
                ax.legend()
            fig.tight_layout()
            buf = io.BytesIO()
            meta = {"Date": None, "Creator": "derive"} if fmt == "svg" else {"Software": "derive"}
            fig.savefig(buf, format=fmt, metadata=meta)
            return buf.getvalue()
        finally:
            plt.close(fig)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(y: float, _pos) -> str:
    """A log axis's tick label 10ⁿ in plain text (matplotlib's own is mathtext, which costs
    half a second to set up in every process)."""
    if not (y > 0 and math.isfinite(y)):     # a log axis of losses near the float range ticks at inf
        return ""
    n = math.log10(y)
    if abs(n - round(n)) > 1e-9:
        return ""
    return "1" if round(n) == 0 else "10" + str(round(n)).translate(_SUPERSCRIPT)


def clip_top(curves) -> float | None:
    """An upper limit for the axis of several curves when some run away: 100 times the largest
    value of the curves that stay within 10^6 of their start, or None when none runs away."""
    tame, wild = [], False
    for _label, h in curves:
        finite = [y for y in h if math.isfinite(y)]
        if not finite:
            continue
        if len(finite) < len(h) or max(finite) > 1e6 * max(abs(finite[0]), 1e-300):
            wild = True
        else:
            tame.append(max(finite))
    return 100 * max(tame) if wild and tame else None


def format_of(path: str) -> str:
    p = path.lower()
    for fmt in FORMATS:
        if p.endswith("." + fmt):
            return fmt
    return ""

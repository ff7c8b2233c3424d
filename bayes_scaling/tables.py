"""Numbers in tables, one way for the command line, the reports and the family index: :func:`fmt_number` (significant
digits by kind, a dash where a number is missing), :func:`fmt_times` (an extrapolation factor, flagged when far) and
:func:`format_columns` (right-aligned plain-text columns).

>>> fmt_number(0.123456), fmt_number(2.345678, "loss"), fmt_number(None), fmt_number(float("nan"))
('0.1235', '2.3457', '–', '–')
>>> fmt_human(7.2e9), fmt_human(1.4e12), fmt_human(155556, "$"), fmt_human(0.5)
('7.2B', '1.4T', '$156k', '0.5')
>>> fmt_times(772.4)
'772x (far: see In short)'
"""

from __future__ import annotations

from .defaults import FAR_EXTRAPOLATION

__all__ = ["DIGITS", "MISSING", "fmt_number", "fmt_human", "fmt_times", "format_columns"]

DIGITS = 4  # significant digits of every number in a table
MISSING = "–"  # what stands where a number is missing (None or NaN)


def fmt_number(v, kind: str = "g") -> str:
    """A number as tables show it: ``kind`` "g" (:data:`DIGITS` significant digits), "loss" (4 decimals), "ratio"
    (1 decimal); :data:`MISSING` for None or NaN; anything not a number as its text."""
    if v is None:
        return MISSING
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if v != v:
        return MISSING
    return {"loss": f"{v:.4f}", "ratio": f"{v:.1f}"}.get(kind, f"{v:.{DIGITS}g}")


def fmt_human(v, prefix: str = "") -> str:
    """A count as a manager reads it: 3 significant digits with k, M, B (1e9) or T (1e12) after ``prefix`` (e.g.
    "$"), scientific from 1e15 on; :data:`MISSING` for None or NaN, "inf" for infinity."""
    if v is None or v != v:
        return MISSING
    v = float(f"{float(v):.3g}")
    if abs(v) == float("inf"):
        return "inf"
    if abs(v) >= 1e15:
        return f"{prefix}{v:.3g}"
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{prefix}{v / scale:.3g}{unit}"
    return f"{prefix}{v:.3g}"


def fmt_times(f) -> str:
    """An extrapolation factor in words-and-numbers: ``44x``, ``772x (far: see In short)``; :data:`MISSING` when unknown."""
    if f is None:
        return MISSING
    text = f"{f:.3g}x" if f < 10 else f"{f:,.0f}x"
    return text + (" (far: see In short)" if f >= FAR_EXTRAPOLATION else "")


def format_columns(head, rows) -> str:
    """Right-aligned columns under ``head``."""
    width = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, width))
    return "\n".join([line(head)] + [line(r) for r in rows])

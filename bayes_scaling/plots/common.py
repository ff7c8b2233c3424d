"""What the figures share: turning what was fitted into (law, draws), bands over draws, axes and labels that keep
clear of points, the colours and line widths. See :mod:`bayes_scaling.plots`."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .. import derived
from ..defaults import compute_of
from ..laws import get_law

#: nested interval masses of a fan chart, widest last
DEFAULT_FAN = (0.5, 0.8, 0.95)
#: at most this many draws go into a band (evenly thinned): quantiles of 1000 draws are stable to ~1%
MAX_DRAWS = 1000
BAND_COLOR = "C0"
PRED_COLOR = "C1"
RUN_COLOR = "0.35"


# ---- what was fitted -> (law, draws) -------------------------------------------------------------
def thin_index(n: int, max_draws: int | None = MAX_DRAWS) -> np.ndarray:
    """Indices of at most ``max_draws`` of ``n`` draws, evenly spaced (chains in order); ``None``: all."""
    if max_draws is None:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, min(n, max_draws)).round().astype(int))


def law_and_draws(source, max_draws: int | None = MAX_DRAWS):
    """``(law, draws, posterior_or_None)``: draws is a dict of 1-D jax arrays (one entry per draw)."""
    from ..fitting import PointFit
    from ..posterior import Posterior

    if isinstance(source, Posterior):
        flat = source.flat()
        idx = thin_index(len(next(iter(flat.values()))), max_draws)
        return source.law, {k: jnp.asarray(v[idx]) for k, v in flat.items()}, source
    if isinstance(source, PointFit):
        return source.law, {k: jnp.asarray([float(v)]) for k, v in source.params.items()}, None
    if isinstance(source, tuple) and len(source) == 2:
        law, draws = source
        law = get_law(law)
        flat = {k: np.asarray(v, float).reshape(-1) for k, v in draws.items()}
        idx = thin_index(len(next(iter(flat.values()))), max_draws)
        return law, {k: jnp.asarray(v[idx]) for k, v in flat.items()}, None
    raise TypeError(f"expected a Posterior, a PointFit or a (law, draws) pair, not {type(source).__name__}")


def draws_of(fn, draws, grid):
    """``fn(params, x)`` for every draw and every grid value: NumPy ``(num_draws, len(grid))``."""
    g = jnp.asarray(np.asarray(grid, float))
    out = jax.jit(jax.vmap(lambda p: jax.vmap(lambda x: fn(p, x))(g)))(draws)
    return np.asarray(out, float)


def band_quantiles(values, probs):
    """Median and one ``(lo, hi)`` per mass in ``probs`` over axis 0 (draws)."""
    med = np.nanmedian(values, axis=0)
    return med, [tuple(np.nanquantile(values, [(1 - q) / 2, (1 + q) / 2], axis=0)) for q in probs]


def new_ax(ax, figsize=(6.4, 4.4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def pct_text(q: float) -> str:
    return f"{100 * q:g}%"


def sci_text(v: float, digits: int = 2) -> str:
    """1.6e10 rather than 1.6e+10 (``digits`` significant)."""
    text = f"{v:.{digits}g}"
    if "e" not in text:
        return text
    m, e = text.split("e")
    return f"{m}e{int(e)}"


def flops_label() -> str:
    return f"training compute C (FLOPs, C = {derived.FLOPS_PER_PARAM_TOKEN:g} N D)"


def observed_runs(source, runs):
    """Observed inputs and losses as NumPy arrays, from ``runs`` or the posterior's stored data."""
    if runs is not None:
        out = {"loss": np.asarray(runs.loss, float)}
        for k in ("N", "D", "C", "U", "batch_size", "steps"):
            v = getattr(runs, k, None)
            if v is not None:
                out[k] = np.asarray(v, float)
        return out
    obs = getattr(source, "observed", None) or {}
    return {k: np.asarray(v, float) for k, v in obs.items()}


def compute_of_runs(obs) -> np.ndarray | None:
    if "C" in obs:
        return obs["C"]
    if "N" in obs and "D" in obs:
        return compute_of(obs["N"], obs["D"])
    return None


def compute_grid(obs, budgets, num_points):
    C = compute_of_runs(obs)
    lo = [float(np.min(C)) / 2] if C is not None and len(C) else []
    hi = [float(np.max(C)) * 2] if C is not None and len(C) else []
    if budgets is not None and len(budgets):
        lo.append(float(np.min(budgets)) / 3)
        hi.append(float(np.max(budgets)) * 3)
    if not lo:
        raise ValueError("no compute range to draw: pass budgets= or runs with a compute (C, or N and D)")
    return np.logspace(np.log10(min(lo)), np.log10(max(hi)), num_points)


def plain_log_ticks(axis) -> None:
    """On a log axis spanning less than a decade or so, label plain numbers (2.2, 2.6, 3.0) instead of 2x10^0."""
    from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, StrMethodFormatter

    lo, hi = axis.get_view_interval()
    if not (0 < lo < hi) or hi / lo > 30:
        return
    ticks = [t for t in MaxNLocator(6).tick_values(lo, hi) if lo <= t <= hi]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(StrMethodFormatter("{x:g}"))
    axis.set_minor_locator(NullLocator())


def budget_array(budgets):
    if budgets is None:
        return np.zeros(0)
    b = np.asarray(budgets, float).reshape(-1)
    if not np.all(np.isfinite(b)) or np.any(b <= 0):
        raise ValueError(f"budgets must be positive finite FLOP counts; got {b.tolist()}")
    return b


# ---- bands, the end of the data, labels that keep clear of points ------------------------------------------
#: a band's outline and the median drawn over it (points): the median is thinner than the band wherever the band is
#: wider than about a pixel, and the outline shows the band's edges where its fill is too faint or too thin to see
_EDGE_LW = 0.8
_MEDIAN_LW = 0.9


def _darker(color, f: float = 0.6):
    """``color`` darkened (the median line over a band of that colour)."""
    import matplotlib.colors as mc

    r, g, b, a = mc.to_rgba(color)
    return (r * f, g * f, b * f, a)


def draw_band(ax, x, lo, hi, color, *, alpha: float = 0.3, outline: bool = True, label=None, **kwargs):
    """Fill between ``lo`` and ``hi``; ``outline`` also draws its edges (strong colour), so that a band narrower
    than the median line drawn over it still shows on both sides of that line."""
    import matplotlib.colors as mc

    edge = (dict(edgecolor=mc.to_rgba(color, 0.9), linewidth=_EDGE_LW) if outline
            else dict(edgecolor="none", linewidth=0))
    return ax.fill_between(x, lo, hi, facecolor=mc.to_rgba(color, alpha), label=label, **edge, **kwargs)


def median_line(ax, x, y, color, *, label=None, **kwargs):
    """The median over a band: thin and darker than the band, on top of it."""
    kwargs.setdefault("zorder", 2.5)
    return ax.plot(x, y, color=_darker(color), lw=_MEDIAN_LW, label=label, **kwargs)


def mark_largest_run(ax, C) -> None:
    """A dotted vertical line at the largest run's compute: data to its left, extrapolation to its right."""
    if C is None or not len(C) or not np.isfinite(np.max(C)):
        return
    ax.axvline(float(np.max(C)), color="0.35", ls=":", lw=1.2, zorder=1.5,
               label=f"largest run ({sci_text(float(np.max(C)))} FLOPs)")


_LABEL_CLASS = None


def _label_class():
    """The class of :func:`place_label`'s annotations (made on first use: matplotlib is imported lazily)."""
    global _LABEL_CLASS
    if _LABEL_CLASS is None:
        from matplotlib.text import Annotation

        class ClearLabel(Annotation):
            """An annotation that, each time it is drawn, takes the first of its places ``(xy, offset in points,
            ha, va)`` where its box covers no drawn data point (scatter points, markers), no earlier label, not the
            legend, and stays inside the axes; lines crossing it count less. Failing that, the place that covers
            least."""

            def __init__(self, text, places, **kwargs):
                xy, off, ha, va = places[0]
                super().__init__(text, xy, xytext=off, textcoords="offset points", ha=ha, va=va, **kwargs)
                self._places = list(places)

            def draw(self, renderer):
                if self.get_visible() and self.axes is not None:
                    self._choose(renderer)
                super().draw(renderer)

            def _choose(self, renderer):
                ax = self.axes
                points, lines = _obstacles(ax)
                others = []
                for t in ax.texts:
                    if t is self:
                        break
                    if isinstance(t, ClearLabel) and t.get_visible():
                        others.append(t.get_window_extent(renderer))
                legend = ax.get_legend()
                if legend is not None and legend.get_visible():
                    others.append(legend.get_window_extent(renderer))
                pad = renderer.points_to_pixels(3.5)  # the white box's pad and a marker's radius
                best = None
                for i, (xy, off, ha, va) in enumerate(self._places):
                    self.xy, self.xyann = xy, off
                    self.set_ha(ha)
                    self.set_va(va)
                    bb = self.get_window_extent(renderer)
                    x0, y0, x1, y1 = bb.x0 - pad, bb.y0 - pad, bb.x1 + pad, bb.y1 + pad
                    a = ax.bbox
                    cost = 1000.0 * (bb.x0 < a.x0 or bb.x1 > a.x1 or bb.y0 < a.y0 or bb.y1 > a.y1)
                    cost += 100.0 * sum(not (o.x1 < x0 or o.x0 > x1 or o.y1 < y0 or o.y0 > y1) for o in others)
                    for P, w in ((points, 100.0), (lines, 1.0)):
                        inside = (P[:, 0] >= x0) & (P[:, 0] <= x1) & (P[:, 1] >= y0) & (P[:, 1] <= y1)
                        cost += w * np.count_nonzero(inside)
                    if best is None or cost < best[0]:
                        best = (cost, i)
                    if cost == 0:
                        break
                xy, off, ha, va = self._places[best[1]]
                self.xy, self.xyann = xy, off
                self.set_ha(ha)
                self.set_va(va)

        _LABEL_CLASS = ClearLabel
    return _LABEL_CLASS


def _dense(xy, step: float = 2.0) -> np.ndarray:
    """Points every ``step`` pixels along a polyline given in display coordinates."""
    xy = xy[np.all(np.isfinite(xy), axis=1)]
    if len(xy) < 2:
        return xy
    out = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:]):
        n = int(min(np.ceil(np.hypot(*(b - a)) / step), 2000))
        if n > 0:
            out.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
    return np.concatenate(out)


def _obstacles(ax):
    """Display positions of what a label must not cover: ``(points, lines)``, the data points (scatter offsets
    and line markers, error bar caps included) and samples along the drawn lines and error bars."""
    from matplotlib.collections import LineCollection, PathCollection

    points, lines = [np.zeros((0, 2))], [np.zeros((0, 2))]
    for c in ax.collections:
        if not c.get_visible():
            continue
        if isinstance(c, PathCollection):
            off = np.asarray(c.get_offsets(), float).reshape(-1, 2)
            if len(off):
                points.append(c.get_offset_transform().transform(off))
        elif isinstance(c, LineCollection):
            lines.extend(_dense(c.get_transform().transform(np.asarray(s, float))) for s in c.get_segments() if len(s))
    for ln in ax.get_lines():
        if not ln.get_visible():
            continue
        xy = ln.get_transform().transform(np.asarray(ln.get_xydata(), float).reshape(-1, 2))
        if ln.get_marker() not in (None, "None", "none", "", " "):
            points.append(xy)
        if ln.get_linestyle() not in ("None", "none", "", " "):
            lines.append(_dense(xy))
    points = np.concatenate(points)
    lines = np.concatenate(lines)
    return points[np.all(np.isfinite(points), axis=1)], lines


#: where to put a value's label around its error bar, in order of preference: ``"below"`` first when the curve
#: falls and the data lie above it (the loss frontier), ``"above"`` first when the curve rises (allocations)
_PLACES = {
    "below": [("lo", (-3, -3), "right", "top"), ("lo", (0, -4), "center", "top"), ("lo", (3, -3), "left", "top"),
              ("m", (8, 0), "left", "center"), ("m", (-8, 0), "right", "center"), ("hi", (0, 4), "center", "bottom"),
              ("hi", (-3, 3), "right", "bottom"), ("hi", (3, 3), "left", "bottom"), ("lo", (0, -16), "center", "top")],
    "above": [("hi", (-4, 4), "right", "bottom"), ("lo", (4, -4), "left", "top"), ("m", (-8, 0), "right", "center"),
              ("m", (8, 0), "left", "center"), ("hi", (0, 4), "center", "bottom"), ("lo", (0, -4), "center", "top"),
              ("hi", (4, 4), "left", "bottom"), ("lo", (-4, -4), "right", "top"), ("hi", (-4, 16), "right", "bottom")],
}


def place_label(ax, x, m, lo, hi, texts, *, prefer: str = "above") -> list:
    """Label each error bar (at ``x``: median ``m``, interval ``lo``-``hi``) with its text on a white box, on the
    side ``prefer`` first and elsewhere where that side would cover data points (chosen when drawn)."""
    cls = _label_class()
    out = []
    for x_, m_, lo_, hi_, text in zip(x, m, lo, hi, texts):
        at = {"lo": (float(x_), float(lo_)), "m": (float(x_), float(m_)), "hi": (float(x_), float(hi_))}
        places = [(at[k], off, ha, va) for k, off, ha, va in _PLACES[prefer]]
        ann = cls(text, places, fontsize=8, zorder=4.5,
                  bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.75))
        ann.set_in_layout(False)
        ax.add_artist(ann)
        out.append(ann)
    return out


def mark_budgets(ax, source, fn, budgets, prob, single: bool, texts, *, prefer: str) -> None:
    """The target budgets as black markers with ``prob`` intervals of ``fn`` over every draw (the forecast table's
    numbers), labelled with ``texts(medians)`` where the labels cover no drawn point."""
    _, every, _ = law_and_draws(source, max_draws=None)
    bm, [(blo, bhi)] = band_quantiles(draws_of(fn, every, budgets), [prob])
    ax.errorbar(budgets, bm, yerr=[bm - blo, bhi - bm], fmt="o", color="k", ms=4, capsize=4, zorder=4,
                label="target budgets" if single else f"target budgets, {pct_text(prob)}")
    place_label(ax, budgets, bm, blo, bhi, texts(bm), prefer=prefer)

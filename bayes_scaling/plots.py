"""Figures with credible bands: what a fit or a posterior says, drawn so that people can decide from it.

Every function takes what was fitted (a :class:`~bayes_scaling.posterior.Posterior`, a
:class:`~bayes_scaling.fitting.PointFit`, or a ``(law, draws)`` pair of a law and a dict of parameter draws),
draws on an optional matplotlib ``ax`` and returns it; small multiples return an array of Axes. matplotlib
and arviz are imported inside the functions, so ``import bayes_scaling`` does not load them.

Bands are equal-tailed intervals over the posterior draws of the *same* derived functions the forecast
tables use (:mod:`bayes_scaling.derived`, vmapped over draws): what a figure shows and what a table prints
are one computation. ``prob`` is the band's mass (default 0.9); fan charts draw several nested masses,
``prob`` among them, and every legend names the masses drawn. Bands are outlined and their medians drawn
thin on top, so that a band narrower than a line still shows. A :class:`PointFit` has one "draw": its
figures show the fitted line without a band. Values labelled at target budgets sit where they cover no
drawn point (the place is chosen when the figure is drawn); forecasts against compute mark the largest
run's compute with a dotted line, where the data end and extrapolation begins.

===============================  =================================================================
:func:`plot_fit`                 observed runs against the fitted law, curves with bands per model
                                 size (``by="N"``: loss vs tokens) or per token count (``by="D"``)
:func:`plot_loss_frontier`       loss at the compute-optimum L*(C) with its band (and one new run's
                                 predictive band) out to the target budgets
:func:`plot_allocation`          fan chart of N_opt or D_opt (or D/N) against compute, log-log, with a
                                 fixed tokens-per-parameter line for reference
:func:`plot_prior_posterior`     each parameter's prior and posterior, one panel each
:func:`plot_predictive_check`    observed runs inside their posterior-predictive band
:func:`plot_pairs`, :func:`plot_trace`, :func:`plot_rank`   arviz pair, trace and rank plots
:func:`plot_families`            one small frontier panel per family (batch or hierarchical posteriors)
:func:`plot_isoflop`             IsoFLOP curves: per budget the runs, the fitted parabola in log N with its
                                 band, and the vertex N_opt with its interval
:func:`plot_isoflop_vertices`    N_opt against compute, log-log: the law N_opt = k C^a with its band, the
                                 budgets' vertices with intervals, forecasts at target budgets
:func:`plot_critical_batch`      steps against batch size per group, log-log: observed points, S(B) =
                                 S_min + E_min/B with its band, B_crit and/or Zhang's CBS with intervals
:func:`plot_critical_batch_law`  critical batch size against model size (or D, or the target loss),
                                 log-log: per-group intervals, the power law's band and forecasts
===============================  =================================================================

The IsoFLOP and critical-batch-size figures take the posteriors of :mod:`bayes_scaling.analyses.isoflop` and
:mod:`bayes_scaling.analyses.batch_size`; their bands are quantiles over the same draws those modules' tables use.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import derived
from .defaults import PROB as DEFAULT_PROB
from .defaults import compute_of
from .laws import get_law

__all__ = [
    "plot_fit",
    "plot_loss_frontier",
    "plot_allocation",
    "plot_prior_posterior",
    "plot_predictive_check",
    "plot_pairs",
    "plot_trace",
    "plot_rank",
    "plot_families",
    "plot_isoflop",
    "plot_isoflop_vertices",
    "plot_critical_batch",
    "plot_critical_batch_law",
    "DEFAULT_FAN",
]

#: nested interval masses of a fan chart, widest last
DEFAULT_FAN = (0.5, 0.8, 0.95)
#: at most this many draws go into a band (evenly thinned): quantiles of 1000 draws are stable to ~1%
MAX_DRAWS = 1000
_BAND_COLOR = "C0"
_PRED_COLOR = "C1"
_RUN_COLOR = "0.35"


# ---- what was fitted -> (law, draws) -------------------------------------------------------------
def _thin(n: int, max_draws: int | None = MAX_DRAWS) -> np.ndarray:
    """Indices of at most ``max_draws`` of ``n`` draws, evenly spaced (chains in order); ``None``: all."""
    if max_draws is None:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, min(n, max_draws)).round().astype(int))


def _source(source, max_draws: int | None = MAX_DRAWS):
    """``(law, draws, posterior_or_None)``: draws is a dict of 1-D jax arrays (one entry per draw)."""
    from .fitting import PointFit
    from .posterior import Posterior

    if isinstance(source, Posterior):
        flat = source.flat()
        idx = _thin(len(next(iter(flat.values()))), max_draws)
        return source.law, {k: jnp.asarray(v[idx]) for k, v in flat.items()}, source
    if isinstance(source, PointFit):
        return source.law, {k: jnp.asarray([float(v)]) for k, v in source.params.items()}, None
    if isinstance(source, tuple) and len(source) == 2:
        law, draws = source
        law = get_law(law)
        flat = {k: np.asarray(v, float).reshape(-1) for k, v in draws.items()}
        idx = _thin(len(next(iter(flat.values()))), max_draws)
        return law, {k: jnp.asarray(v[idx]) for k, v in flat.items()}, None
    raise TypeError(f"expected a Posterior, a PointFit or a (law, draws) pair, not {type(source).__name__}")


def _over_draws(fn, draws, grid):
    """``fn(params, x)`` for every draw and every grid value: NumPy ``(num_draws, len(grid))``."""
    g = jnp.asarray(np.asarray(grid, float))
    out = jax.jit(jax.vmap(lambda p: jax.vmap(lambda x: fn(p, x))(g)))(draws)
    return np.asarray(out, float)


def _bands(values, probs):
    """Median and one ``(lo, hi)`` per mass in ``probs`` over axis 0 (draws)."""
    med = np.nanmedian(values, axis=0)
    return med, [tuple(np.nanquantile(values, [(1 - q) / 2, (1 + q) / 2], axis=0)) for q in probs]


def _new_ax(ax, figsize=(6.4, 4.4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _pct(q: float) -> str:
    return f"{100 * q:g}%"


def _sci(v: float, digits: int = 2) -> str:
    """1.6e10 rather than 1.6e+10 (``digits`` significant)."""
    text = f"{v:.{digits}g}"
    if "e" not in text:
        return text
    m, e = text.split("e")
    return f"{m}e{int(e)}"


def _flops_label() -> str:
    return f"training compute C (FLOPs, C = {derived.FLOPS_PER_PARAM_TOKEN:g} N D)"


def _observed(source, runs):
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


def _compute_of(obs) -> np.ndarray | None:
    if "C" in obs:
        return obs["C"]
    if "N" in obs and "D" in obs:
        return compute_of(obs["N"], obs["D"])
    return None


def _compute_grid(obs, budgets, num_points):
    C = _compute_of(obs)
    lo = [float(np.min(C)) / 2] if C is not None and len(C) else []
    hi = [float(np.max(C)) * 2] if C is not None and len(C) else []
    if budgets is not None and len(budgets):
        lo.append(float(np.min(budgets)) / 3)
        hi.append(float(np.max(budgets)) * 3)
    if not lo:
        raise ValueError("no compute range to draw: pass budgets= or runs with a compute (C, or N and D)")
    return np.logspace(np.log10(min(lo)), np.log10(max(hi)), num_points)


def _plain_log_ticks(axis) -> None:
    """On a log axis spanning less than a decade or so, label plain numbers (2.2, 2.6, 3.0) instead of 2x10^0."""
    from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, StrMethodFormatter

    lo, hi = axis.get_view_interval()
    if not (0 < lo < hi) or hi / lo > 30:
        return
    ticks = [t for t in MaxNLocator(6).tick_values(lo, hi) if lo <= t <= hi]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(StrMethodFormatter("{x:g}"))
    axis.set_minor_locator(NullLocator())


def _budgets(budgets):
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


def _band(ax, x, lo, hi, color, *, alpha: float = 0.3, outline: bool = True, label=None, **kwargs):
    """Fill between ``lo`` and ``hi``; ``outline`` also draws its edges (strong colour), so that a band narrower
    than the median line drawn over it still shows on both sides of that line."""
    import matplotlib.colors as mc

    edge = (dict(edgecolor=mc.to_rgba(color, 0.9), linewidth=_EDGE_LW) if outline
            else dict(edgecolor="none", linewidth=0))
    return ax.fill_between(x, lo, hi, facecolor=mc.to_rgba(color, alpha), label=label, **edge, **kwargs)


def _median(ax, x, y, color, *, label=None, **kwargs):
    """The median over a band: thin and darker than the band, on top of it."""
    kwargs.setdefault("zorder", 2.5)
    return ax.plot(x, y, color=_darker(color), lw=_MEDIAN_LW, label=label, **kwargs)


def _largest_run(ax, C) -> None:
    """A dotted vertical line at the largest run's compute: data to its left, extrapolation to its right."""
    if C is None or not len(C) or not np.isfinite(np.max(C)):
        return
    ax.axvline(float(np.max(C)), color="0.35", ls=":", lw=1.2, zorder=1.5,
               label=f"largest run ({_sci(float(np.max(C)))} FLOPs)")


_LABEL_CLASS = None


def _label_class():
    """The class of :func:`_label`'s annotations (made on first use: matplotlib is imported lazily)."""
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


def _label(ax, x, m, lo, hi, texts, *, prefer: str = "above") -> list:
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


# ---- observed runs against the law -----------------------------------------------------------------
def plot_fit(source, runs=None, *, by: str = "N", num_curves: int = 5, prob: float = DEFAULT_PROB,
             inputs: Mapping[str, Any] | None = None, ax=None):
    """Observed runs against the fitted law with ``prob`` credible bands of the mean loss (outlined, the thin
    median on top, so that a band narrower than a line still shows).

    ``by="N"``: loss against tokens D, one curve L(N_k, D) per model size N_k (``num_curves`` sizes spread
    over the runs' range in log N); ``by="D"``: loss against N, one curve per token count. Runs are coloured
    on the same log scale as the curves, so a run lies near the curve of its colour when the law fits. A law
    of one input (e.g. ``power_law``) draws one curve against that input. ``runs`` defaults to the data
    stored in a posterior. Returns the Axes (log-log).
    """
    import matplotlib as mpl

    law, draws, _ = _source(source)
    obs = _observed(source, runs)
    if "loss" not in obs:
        raise ValueError("plot_fit needs the observed runs: pass runs= (a Runs table)")
    ax = _new_ax(ax)
    y = obs["loss"]
    if len(law.inputs) == 1 or not ("N" in law.inputs and "D" in law.inputs):
        if len(law.inputs) != 1:
            raise ValueError(f"plot_fit draws laws of N and D, or of one input; law {law.name!r} has {law.inputs}")
        (name,) = law.inputs
        x = obs[name]
        grid = np.logspace(np.log10(x.min()) - 0.1, np.log10(x.max()) + 0.1, 80)
        vals = _over_draws(lambda p, v: jnp.exp(law.log_loss(p, {name: v})), draws, grid)
        med, [(lo, hi)] = _bands(vals, [prob])
        if vals.shape[0] > 1:
            _band(ax, grid, lo, hi, _BAND_COLOR, label=f"{_pct(prob)} band")
        _median(ax, grid, med, _BAND_COLOR, label=f"{law.name} (median)")
        ax.scatter(x, y, s=12, color=_RUN_COLOR, zorder=3, label=f"runs ({len(y)})")
        ax.set(xscale="log", yscale="log", xlabel=name, ylabel="loss",
               title=f"{law.name}: runs and fitted law" + ("" if vals.shape[0] == 1 else f" ({_pct(prob)} band)"))
        _plain_log_ticks(ax.yaxis)
        ax.legend(fontsize="small")
        return ax
    if by not in ("N", "D"):
        raise ValueError(f"by must be 'N' (curves per model size) or 'D' (curves per token count), not {by!r}")
    other = "D" if by == "N" else "N"
    extra = derived._check_extra(law, inputs, ("N", "D"))
    g, x = obs[by], obs[other]
    logg = np.log10(g)
    levels = np.linspace(logg.min(), logg.max(), num_curves) if num_curves > 1 else np.array([np.median(logg)])
    norm = mpl.colors.Normalize(logg.min(), logg.max() if logg.max() > logg.min() else logg.min() + 1)
    cmap = mpl.colormaps["viridis"]
    sc = ax.scatter(x, y, c=logg, cmap=cmap, norm=norm, s=14, edgecolors="none", zorder=3, alpha=0.85)
    grid = np.logspace(np.log10(x.min()) - 0.15, np.log10(x.max()) + 0.15, 80)
    single = next(iter(draws.values())).shape[0] == 1
    for level in levels:
        val = 10.0 ** level

        def loss(p, v, val=val):
            return jnp.exp(law.log_loss(p, dict(extra, **{by: val, other: v})))

        vals = _over_draws(loss, draws, grid)
        med, [(lo, hi)] = _bands(vals, [prob])
        color = cmap(norm(level))
        if not single:
            _band(ax, grid, lo, hi, color, alpha=0.25)
            _median(ax, grid, med, color, label=f"{by} = {_sci(val)}")
        else:
            ax.plot(grid, med, color=color, lw=1.6, label=f"{by} = {_sci(val)}")
    what = {"D": "tokens D", "N": "parameters N"}[other]
    ax.set(xscale="log", yscale="log", xlabel=what, ylabel="loss (nats/token)",
           title=f"{law.name}: runs and fitted law" + ("" if single else f" ({_pct(prob)} bands)"))
    ax.set_ylim(max(y.min() * 0.9, 1e-12), y.max() * 1.1)
    _plain_log_ticks(ax.yaxis)
    ax.figure.colorbar(sc, ax=ax, label=f"log10 {by} of the run")
    ax.legend(fontsize="small", title="law at", title_fontsize="small", loc="upper right")
    return ax


# ---- compute-optimal forecasts ----------------------------------------------------------------------
def plot_loss_frontier(source, budgets=None, *, runs=None, prob: float = DEFAULT_PROB, predictive: bool = True,
                       inputs: Mapping[str, Any] | None = None, num_points: int = 60, seed: int = 0,
                       show_runs: bool = True, ax=None):
    """Loss at the compute-optimum L*(C) against compute, with its ``prob`` credible band (outlined, the thin
    median on top), reaching out past the target ``budgets`` (each marked with its median and ``prob``
    interval, the same numbers as ``Posterior.forecast``, and labelled where no run is drawn).

    ``predictive`` (posteriors only) adds the wider band of the loss one new run at the optimum would reach
    (the mean law's band plus run-to-run noise, as ``Posterior.forecast``'s ``L_new``). Observed runs are
    drawn in grey: they lie above the frontier, which is the lowest loss each compute can buy; a dotted line
    marks the largest run's compute, where the data end and extrapolation begins. Returns the Axes (log
    compute axis).
    """
    from .posterior import Posterior

    law, draws, post = _source(source)
    obs = _observed(source, runs)
    b = _budgets(budgets)
    C = _compute_grid(obs, b, num_points)
    ax = _new_ax(ax)
    fn = lambda p, c: derived.loss_at_optimum(law, p, c, inputs=inputs)
    vals = _over_draws(fn, draws, C)
    med, [(lo, hi)] = _bands(vals, [prob])
    single = vals.shape[0] == 1
    if predictive and isinstance(post, Posterior) and not single:
        idx = _thin(post.num_chains * post.num_draws)
        sigma = np.stack([post._sigma(c).reshape(-1)[idx] for c in C], axis=1)
        # one unit noise per draw for every C: the band's quantiles are as accurate as with fresh noise at each C,
        # and smooth in C instead of jagged with Monte Carlo error
        eps = np.asarray(post._unit_noise(seed, (sigma.shape[0], 1)), float)
        pred = vals * np.exp(sigma * eps)
        _, [(plo, phi)] = _bands(pred, [prob])
        _band(ax, C, plo, phi, _PRED_COLOR, alpha=0.18, outline=False, label=f"one new run, {_pct(prob)} band")
    if not single:
        _band(ax, C, lo, hi, _BAND_COLOR, alpha=0.35, label=f"L*(C), {_pct(prob)} band (outlined)")
        _median(ax, C, med, _BAND_COLOR, label="L*(C), median")
    else:
        ax.plot(C, med, color=_BAND_COLOR, lw=1.8, label="L*(C), point fit")
    Cr = _compute_of(obs)
    if show_runs and Cr is not None and "loss" in obs:
        ax.scatter(Cr, obs["loss"], s=8, color=_RUN_COLOR, alpha=0.6, edgecolors="none", zorder=2,
                   label=f"runs ({len(Cr)})")
    _largest_run(ax, Cr)
    if len(b):
        _, every, _ = _source(source, max_draws=None)  # every draw at the budgets: the forecast table's numbers
        bv = _over_draws(fn, every, b)
        bm, [(blo, bhi)] = _bands(bv, [prob])
        ax.errorbar(b, bm, yerr=[bm - blo, bhi - bm], fmt="o", color="k", ms=4, capsize=4, zorder=4,
                    label="target budgets" if single else f"target budgets, {_pct(prob)}")
        _label(ax, b, bm, blo, bhi, [f"{m:.3f}" for m in bm], prefer="below")
    ax.set(xscale="log", xlabel=_flops_label(), ylabel="loss at the optimum L* (nats/token)",
           title=f"{law.name}: compute-optimal loss")
    ylo = np.nanmin(lo) * 0.97
    yhi = min(np.nanmax(hi) * 1.03, np.nanmax(obs["loss"]) * 1.05) if "loss" in obs else np.nanmax(hi) * 1.03
    ax.set_ylim(ylo, max(yhi, ylo * 1.1))
    ax.legend(fontsize="small")
    return ax


_ALLOC = {
    "N_opt": ("N_opt(C): compute-optimal parameters", lambda law, p, c, inputs: derived.compute_optimal(law, p, c, inputs=inputs)[0]),
    "D_opt": ("D_opt(C): compute-optimal tokens", lambda law, p, c, inputs: derived.compute_optimal(law, p, c, inputs=inputs)[1]),
    "D/N": ("D_opt / N_opt: tokens per parameter", lambda law, p, c, inputs: derived.tokens_per_param(law, p, c, inputs=inputs)),
}


def plot_allocation(source, budgets=None, *, quantity: str = "N_opt", prob: float = DEFAULT_PROB, probs=DEFAULT_FAN,
                    runs=None, tokens_per_param: float | None = 20.0, inputs: Mapping[str, Any] | None = None,
                    num_points: int = 60, ax=None):
    """Fan chart of the compute-optimal allocation against compute (log-log): ``quantity`` is ``"N_opt"``,
    ``"D_opt"`` or ``"D/N"``; one band per mass in ``probs`` and ``prob`` (nested, widest palest, each named in
    the legend; the ``prob`` band outlined), the median, the target ``budgets`` with their ``prob`` interval
    (the forecast table's), and for reference the allocation that a fixed ``tokens_per_param`` ratio r gives
    (N = sqrt(C / 6r), D = sqrt(r C / 6); ``None`` leaves it out). The range of the observed runs' compute is
    shaded and a dotted line marks the largest run, where extrapolation begins. Returns the Axes.
    """
    if quantity not in _ALLOC:
        raise ValueError(f"quantity must be one of {', '.join(_ALLOC)}, not {quantity!r}")
    law, draws, _ = _source(source)
    if not ("N" in law.inputs and "D" in law.inputs):
        raise ValueError(f"law {law.name!r} has inputs {law.inputs}; an allocation needs a law of N and D")
    obs = _observed(source, runs)
    b = _budgets(budgets)
    C = _compute_grid(obs, b, num_points)
    ax = _new_ax(ax)
    label, f = _ALLOC[quantity]
    fn = lambda p, c: f(law, p, c, inputs)
    vals = _over_draws(fn, draws, C)
    probs = tuple(sorted({float(q) for q in probs} | {float(prob)}))
    med, bands = _bands(vals, probs)
    single = vals.shape[0] == 1
    if not single:
        for q, (lo, hi), alpha in zip(probs[::-1], bands[::-1], np.linspace(0.15, 0.45, len(probs))):
            mine = np.isclose(q, prob)
            _band(ax, C, lo, hi, _BAND_COLOR, alpha=alpha, outline=mine,
                  label=f"{_pct(q)} interval" + (" (outlined)" if mine and len(probs) > 1 else ""))
        _median(ax, C, med, _BAND_COLOR, label="median")
    else:
        ax.plot(C, med, color=_BAND_COLOR, lw=1.8, label="point fit")
    if tokens_per_param:
        r, k = float(tokens_per_param), derived.FLOPS_PER_PARAM_TOKEN
        ref = {"N_opt": np.sqrt(C / (k * r)), "D_opt": np.sqrt(r * C / k), "D/N": np.full_like(C, r)}[quantity]
        ax.plot(C, ref, color="k", ls="--", lw=1, label=f"{r:g} tokens per parameter")
    Cr = _compute_of(obs)
    if Cr is not None and len(Cr):
        ax.axvspan(Cr.min(), Cr.max(), color="0.9", zorder=0, label="compute of the runs")
    _largest_run(ax, Cr)
    if len(b):
        _, every, _ = _source(source, max_draws=None)  # every draw at the budgets: the forecast table's numbers
        bv = _over_draws(fn, every, b)
        bm, [(blo, bhi)] = _bands(bv, [prob])
        ax.errorbar(b, bm, yerr=[bm - blo, bhi - bm], fmt="o", color="k", ms=4, capsize=4, zorder=4,
                    label="target budgets" if single else f"target budgets, {_pct(prob)}")
        _label(ax, b, bm, blo, bhi, [_sci(m, 3) for m in bm], prefer="above")
    ax.set(xscale="log", yscale="log", xlabel=_flops_label(), ylabel=quantity, title=f"{law.name}: {label}")
    ax.legend(fontsize="small", loc="upper left")
    return ax


# ---- the posterior itself ---------------------------------------------------------------------------
def _free_names(post, var_names):
    law = post.law
    names = [n for n in (var_names or law.free_names) if n not in law.fixed_values]
    if not names:
        raise ValueError(f"law {law.name!r} has no free parameters to draw")
    return names


def plot_prior_posterior(post, *, var_names=None, priors: Mapping[str, Any] | None = None,
                         num_prior_draws: int = 20000, seed: int = 0, axes=None):
    """One panel per free parameter: the prior's density (line) and the posterior's (filled), each scaled to
    a peak of 1 so that a narrow posterior and a broad prior are both visible; scale parameters (``log``
    in the law) on a log10 axis. ``priors`` overrides the law's declared priors (pass the same overrides
    given to the sampler). Returns the array of Axes."""
    import matplotlib.pyplot as plt

    names = _free_names(post, var_names)
    priors = dict(priors or {})
    if axes is None:
        ncols = min(len(names), 3)
        nrows = -(-len(names) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 2.6 * nrows), layout="constrained", squeeze=False)
        for a in axes.ravel()[len(names):]:
            a.set_visible(False)
    flat_axes = np.asarray(axes).ravel()
    key = jax.random.PRNGKey(seed)
    flat = post.flat()
    for i, (name, ax) in enumerate(zip(names, flat_axes)):
        p = post.law.param(name)
        prior = priors.get(name, p.prior)
        pd_ = np.asarray(prior.sample(jax.random.fold_in(key, i), (num_prior_draws,)), float)
        po = flat[name]
        tf = (lambda v: np.log10(np.clip(v, 1e-300, None))) if p.log else (lambda v: v)
        a, b = tf(pd_), tf(po)
        a = a[np.isfinite(a)]
        lo = min(np.quantile(a, 0.005), b.min())
        hi = max(np.quantile(a, 0.995), b.max())
        # each on its own bins: the posterior is often far narrower than the prior
        for v, style, label in ((a, "line", "prior"), (b, "fill", "posterior")):
            h, edges = np.histogram(v, bins=40, range=(lo, hi) if style == "line" else None)
            mid = (edges[1:] + edges[:-1]) / 2
            y = h / max(h.max(), 1)
            if style == "line":
                ax.plot(mid, y, color="0.3", lw=1.2, label=label)
            else:
                ax.fill_between(mid, 0, y, color=_BAND_COLOR, alpha=0.6, lw=0, label=label)
        ax.set_xlim(lo, hi)
        ax.set(xlabel=f"log10 {name}" if p.log else name, yticks=[], ylim=(0, 1.08))
        ax.set_title(name, fontsize="medium")
        if i == 0:
            ax.legend(fontsize="x-small")
    flat_axes[0].figure.suptitle("prior (line) and posterior (filled), each scaled to peak 1", fontsize="medium")
    return axes


def plot_predictive_check(post, *, prob: float = DEFAULT_PROB, seed: int = 0, ax=None):
    """Posterior-predictive check: each run's log residual, log(observed loss) - median of the law's log loss,
    against its compute, over the band of ``prob`` of the replicated residuals (noise as fitted). When the
    model fits, about ``prob`` of the runs lie inside; those outside are marked. Returns the Axes."""
    mu = post.log_loss_mean
    if mu is None:
        raise ValueError("this posterior holds no log_loss_mean (the law's prediction per run) to check against")
    obs = post.observed
    y = np.log(np.asarray(obs["loss"], float))
    C = _compute_of({k: np.asarray(v, float) for k, v in obs.items()})
    x, xlabel = (C, _flops_label()) if C is not None else (np.arange(len(y)) + 1.0, "run")
    m = np.median(mu.reshape(-1, len(y)), axis=0)
    rep = np.log(post.posterior_predictive(seed=seed)).reshape(-1, len(y)) - m
    lo, hi = np.quantile(rep, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    r = y - m
    order = np.argsort(x)
    ax = _new_ax(ax)
    ax.fill_between(x[order], lo[order], hi[order], color=_PRED_COLOR, alpha=0.3, lw=0, step="mid",
                    label=f"{_pct(prob)} posterior-predictive band")
    inside = (r >= lo) & (r <= hi)
    ax.axhline(0, color="k", lw=0.8)
    ax.scatter(x[inside], r[inside], s=10, color=_RUN_COLOR, zorder=3, label=f"runs inside ({inside.sum()})")
    ax.scatter(x[~inside], r[~inside], s=18, color="C3", marker="x", zorder=3, label=f"runs outside ({(~inside).sum()})")
    ax.set(xscale="log" if C is not None else "linear", xlabel=xlabel, ylabel="log(observed) - log(law, median)",
           title=f"posterior-predictive check: {100 * inside.mean():.0f}% of runs inside the {_pct(prob)} band")
    ax.legend(fontsize="small")
    return ax


def _idata(post, var_names):
    names = _free_names(post, var_names)
    return post.to_inference_data(), names


@contextlib.contextmanager
def _quiet_arviz_ctx():
    """arviz 0.23 calls a matplotlib helper that newer matplotlib deprecates; that warning is not the user's to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*alias_mapping.*")
        yield


def plot_pairs(post, *, var_names=None, kind: str = "scatter", ax=None, **kwargs):
    """Pairwise scatter of the posterior draws (arviz ``plot_pair``), divergent transitions marked; ridges
    (e.g. A with alpha) show as thin diagonals. Returns arviz's array of Axes."""
    import arviz as az

    idata, names = _idata(post, var_names)
    kwargs.setdefault("marginals", True)
    kwargs.setdefault("scatter_kwargs", {"alpha": 0.4, "s": 4})
    if ax is None:
        kwargs.setdefault("figsize", (2.0 * len(names) + 1, 2.0 * len(names) + 1))
        kwargs.setdefault("textsize", 10)
    with _quiet_arviz_ctx():
        axes = az.plot_pair(idata, var_names=names, kind=kind, divergences=True, ax=ax, **kwargs)
    return _tight(axes, ax)


def _tight(axes, given):
    """Lay out a figure arviz made (not one the caller passed axes of) with the constrained engine."""
    if given is None:
        fig = np.asarray(axes).ravel()[0].figure
        fig.set_layout_engine("constrained")
    return axes


def plot_trace(post, *, var_names=None, axes=None, **kwargs):
    """Trace plot (arviz ``plot_trace``): per parameter, each chain's density and its draws in order.
    Returns the ``(num_vars, 2)`` array of Axes."""
    import arviz as az

    idata, names = _idata(post, var_names)
    if axes is None:
        kwargs.setdefault("figsize", (9, 1.7 * len(names) + 0.6))
    with _quiet_arviz_ctx():
        out = az.plot_trace(idata, var_names=names, axes=axes, **kwargs)
    return _tight(out, axes)


def plot_rank(post, *, var_names=None, axes=None, **kwargs):
    """Rank plot (arviz ``plot_rank``): histograms of each chain's ranks among all draws; flat and alike when
    the chains mixed. Returns the array of Axes (one per parameter)."""
    import arviz as az

    idata, names = _idata(post, var_names)
    if axes is None:
        cols = min(len(names), 3)
        kwargs.setdefault("figsize", (3.4 * cols, 2.6 * -(-len(names) // cols)))
    with _quiet_arviz_ctx():
        out = az.plot_rank(idata, var_names=names, ax=axes, **kwargs)
    return _tight(out, axes)


# ---- many families ----------------------------------------------------------------------------------
def _family_sources(source, runs):
    """``[(name, fitted object, runs or None)]`` from a BatchPosterior, BatchFit, HierarchicalPosterior or
    a dict of fitted objects."""
    from .analyses.hierarchical import HierarchicalPosterior

    if isinstance(source, HierarchicalPosterior):
        items = [(f, (source.law, source.family(f))) for f in source.families]
    elif hasattr(source, "posteriors"):
        items = list(source.posteriors.items())
    elif hasattr(source, "fits"):
        items = list(source.fits.items())
    elif isinstance(source, Mapping):
        items = list(source.items())
    else:
        raise TypeError("plot_families takes a BatchPosterior, BatchFit, HierarchicalPosterior or a dict of fits")
    out = []
    for name, fitted in items:
        sub = None
        if runs is not None:
            if runs.family is None:
                raise ValueError(f"{runs.source}: runs= for plot_families needs a family column")
            sub = runs.select(runs.family == name)
        out.append((str(name), fitted, sub))
    return out


def plot_families(source, budgets=None, *, runs=None, kind: str = "frontier", prob: float = DEFAULT_PROB,
                  ncols: int = 3, max_families: int = 12, sharey: bool = True, axes=None, **kwargs):
    """Small multiples, one panel per family: ``kind="frontier"`` (:func:`plot_loss_frontier`, the default)
    or ``"allocation"`` (:func:`plot_allocation` of N_opt). ``source`` is a ``BatchPosterior``, ``BatchFit``,
    ``HierarchicalPosterior`` or a dict ``{family: Posterior or PointFit}``; ``runs`` (with a family column)
    adds each family's runs where the fitted object holds none. The first ``max_families`` families are
    drawn. Returns the 2-D array of Axes."""
    import matplotlib.pyplot as plt

    if kind not in ("frontier", "allocation"):
        raise ValueError(f"kind must be 'frontier' or 'allocation', not {kind!r}")
    fams = _family_sources(source, runs)[:max_families]
    if not fams:
        raise ValueError("no families to draw")
    if axes is None:
        ncols = max(1, min(ncols, len(fams)))
        nrows = -(-len(fams) // ncols)
        _, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 2.9 * nrows), layout="constrained", squeeze=False,
                               sharey=sharey and kind == "frontier", sharex=True)
    axes = np.atleast_2d(axes)
    flat = axes.ravel()
    for a in flat[len(fams):]:
        a.set_visible(False)
    limits = []
    for ax, (name, fitted, sub) in zip(flat, fams):
        if kind == "frontier":
            plot_loss_frontier(fitted, budgets, runs=sub, prob=prob, ax=ax, **kwargs)
        else:
            plot_allocation(fitted, budgets, runs=sub, prob=prob, probs=(prob,), ax=ax, **kwargs)
        limits.append(ax.get_ylim())  # what this panel asked for; shared axes keep only the last call's
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("C (FLOPs)", fontsize="small")
        ax.set_ylabel("L*" if kind == "frontier" else "N_opt", fontsize="small")
        leg = ax.get_legend()
        if leg is not None and ax is not flat[0]:
            leg.remove()
        elif leg is not None:
            for t in leg.get_texts():
                t.set_fontsize("x-small")
    if flat[0].get_shared_y_axes().joined(flat[0], flat[min(1, len(flat) - 1)]) and len(flat) > 1:
        lo, hi = zip(*limits)
        flat[0].set_ylim(min(lo), max(hi))  # every panel's band and budgets in view
    return axes


# ---- IsoFLOP curves -----------------------------------------------------------------------------------
def _budget_colors(values):
    """One viridis colour per value, on a log scale (budgets, model sizes)."""
    import matplotlib as mpl

    lv = np.log10(np.asarray(values, float))
    span = lv.max() - lv.min()
    t = (lv - lv.min()) / span if span > 0 else np.full(len(lv), 0.5)
    cmap = mpl.colormaps["viridis"]
    return [cmap(0.05 + 0.85 * v) for v in t]


def plot_isoflop(post, *, prob: float = DEFAULT_PROB, num_points: int = 60, ax=None):
    """IsoFLOP curves of an :class:`~bayes_scaling.analyses.isoflop.IsoflopPosterior`, one colour per budget: the runs
    in each budget's parabola window (loss against N, log N axis), the fitted parabola
    L*_k + h_k (log N - v_k)^2 (median) with its ``prob`` credible band, and the vertex N_opt(C_k) with its
    interval (horizontal error bar, at the median L*_k). The vertices lie on the law N_opt = k C^a (or scatter
    about it by tau), so their intervals carry the exponent's uncertainty. Returns the Axes."""
    d = post.data
    K = len(post.vertex[0]) if post.vertex.ndim == 2 else 0
    idx = _thin(post.vertex.shape[0])
    v = post.vertex[idx]
    L = post.sampler.flat("L_star")[:, :K][idx]
    h = np.exp(post.sampler.flat("log_h")[:, :K][idx])
    ax = _new_ax(ax)
    colors = _budget_colors(d.C[:K])
    ys = []
    for k in range(K):
        m = d.mask[k] > 0
        x, y = d.x[k][m], d.y[k][m]
        ys.append(y)
        vq = np.quantile(v[:, k], [(1 - prob) / 2, 0.5, (1 + prob) / 2])
        lo_x, hi_x = min(x.min(), vq[0]) - 0.15, max(x.max(), vq[2]) + 0.15
        grid = np.linspace(lo_x, hi_x, num_points)
        vals = L[:, k, None] + h[:, k, None] * (grid[None, :] - v[:, k, None]) ** 2
        med, [(blo, bhi)] = _bands(vals, [prob])
        N = np.exp(grid)
        c = colors[k]
        _band(ax, N, blo, bhi, c, alpha=0.25)
        _median(ax, N, med, c, label=f"C = {_sci(d.C[k])}")
        ax.scatter(np.exp(x), y, s=16, color=c, edgecolors="k", linewidths=0.4, zorder=3)
        Lm = float(np.median(L[:, k]))
        ax.errorbar([np.exp(vq[1])], [Lm], xerr=[[np.exp(vq[1]) - np.exp(vq[0])], [np.exp(vq[2]) - np.exp(vq[1])]],
                    fmt="D", color=c, mec="k", mew=0.6, ms=5, capsize=3, zorder=4)
    # what the markers mean, once
    ax.scatter([], [], s=16, color="0.6", edgecolors="k", linewidths=0.4, label="runs in the fit window")
    ax.errorbar([], [], xerr=[], fmt="D", color="0.6", mec="k", ms=5, capsize=3, label=f"vertex N_opt, {_pct(prob)}")
    yall = np.concatenate(ys)
    pad = 0.08 * (yall.max() - yall.min())
    ax.set_ylim(yall.min() - pad, yall.max() + pad)
    ax.set(xscale="log", xlabel="parameters N", ylabel="loss (nats/token)",
           title=f"IsoFLOP curves ({_pct(prob)} bands): N_opt ∝ C^a, a = {_interval_text(post.a, prob)}")
    ax.legend(fontsize="x-small", ncols=2 if K > 6 else 1)
    return ax


def _interval_text(x, prob: float = DEFAULT_PROB, digits: int = 3) -> str:
    """``median (lo, hi)`` of draws ``x`` with the equal-tailed ``prob`` interval."""
    x = np.asarray(x, float).ravel()
    lo, med, hi = np.quantile(x, [(1 - prob) / 2, 0.5, (1 + prob) / 2])
    return f"{med:.{digits}g} ({lo:.{digits}g}, {hi:.{digits}g})"


def plot_isoflop_vertices(post, budgets=None, *, prob: float = DEFAULT_PROB, num_points: int = 60, ax=None):
    """N_opt against compute (log-log) from an :class:`~bayes_scaling.analyses.isoflop.IsoflopPosterior`: the fitted
    law N_opt = k C^a (median and ``prob`` band of the mean law), each budget's vertex with its interval, and
    the target ``budgets`` (forecasts with their intervals; the band reaches them). Returns the Axes."""
    d = post.data
    K = post.vertex.shape[1]
    b = _budgets(budgets)
    C = _compute_grid({"C": d.C[:K]}, b, num_points)
    vals = post.n_opt(C)
    med, [(lo, hi)] = _bands(vals, [prob])
    ax = _new_ax(ax)
    _band(ax, C, lo, hi, _BAND_COLOR, label=f"N_opt = k C^a, {_pct(prob)} band")
    _median(ax, C, med, _BAND_COLOR, label="median")
    vm, [(vlo, vhi)] = _bands(np.exp(post.vertex), [prob])
    colors = _budget_colors(d.C[:K])
    for k in range(K):
        ax.errorbar([d.C[k]], [vm[k]], yerr=[[vm[k] - vlo[k]], [vhi[k] - vm[k]]], fmt="D", color=colors[k], mec="k",
                    mew=0.6, ms=5, capsize=3, zorder=4, label="IsoFLOP vertices" if k == 0 else None)
    if len(b):
        bv = post.n_opt(b)
        bm, [(blo, bhi)] = _bands(bv, [prob])
        ax.errorbar(b, bm, yerr=[bm - blo, bhi - bm], fmt="o", color="k", ms=4, capsize=4, zorder=4,
                    label=f"target budgets ({_pct(prob)})")
        _label(ax, b, bm, blo, bhi, [_sci(m_, 3) for m_ in bm], prefer="above")
    ax.set(xscale="log", yscale="log", xlabel=_flops_label(), ylabel="N_opt (parameters)",
           title=f"IsoFLOP vertices and law: a = {_interval_text(post.a, prob)}")
    ax.legend(fontsize="small", loc="upper left")
    return ax


# ---- critical batch size ------------------------------------------------------------------------------
_CBS_DEFS = {"mccandlish": ("B_noise", "o", "B_crit = E_min/S_min"), "zhang": ("cbs", "s", "Zhang CBS")}


def _definitions(definition):
    if definition == "both":
        return ["mccandlish", "zhang"]
    if definition not in _CBS_DEFS:
        raise ValueError(f"definition must be 'mccandlish', 'zhang' or 'both', not {definition!r}")
    return [definition]


def plot_critical_batch(post, *, prob: float = DEFAULT_PROB, definition: str = "both", batch_label: str = "batch size",
                        num_points: int = 60, ax=None):
    """Steps to the target against batch size (log-log) of a
    :class:`~bayes_scaling.analyses.batch_size.CriticalBatchPosterior`, one colour per group (target or model size):
    the observed points, the fitted S(B) = S_min + E_min/B (median) with its ``prob`` band, and the critical
    batch size with its interval (horizontal error bar) on the curve: McCandlish's B_crit = E_min/S_min
    (circle; S(B_crit) = 2 S_min) and/or Zhang et al.'s CBS (square), per ``definition`` ("mccandlish",
    "zhang" or "both"). Returns the Axes."""
    defs = _definitions(definition)
    sw = post.sweep
    G = len(sw.groups)
    idx = _thin(post.S_min.shape[0])
    S_min, B_noise = post.S_min[idx], post.B_noise[idx]
    ax = _new_ax(ax)
    covariate = next((k for k in ("N", "N_params", "N_params_nominal") if k in sw.extra), None)
    colors = _budget_colors(sw.extra[covariate]) if covariate else _budget_colors(np.arange(1, G + 1))
    for g in range(G):
        m = sw.mask[g] > 0
        B, S = sw.batch[g][m], sw.steps[g][m]
        lo_b = min(B.min() / 1.5, float(np.quantile(post.B_noise[:, g], (1 - prob) / 2)))
        hi_b = max(B.max() * 1.5, float(np.quantile(post.cbs[:, g], (1 + prob) / 2)))
        grid = np.logspace(np.log10(lo_b), np.log10(hi_b), num_points)
        vals = S_min[:, g, None] * (1 + B_noise[:, g, None] / grid[None, :])
        med, [(blo, bhi)] = _bands(vals, [prob])
        c = colors[g]
        _band(ax, grid, blo, bhi, c, alpha=0.25)
        _median(ax, grid, med, c, label=str(sw.groups[g]))
        ax.scatter(B, S, s=16, color=c, edgecolors="k", linewidths=0.4, zorder=3)
        for name in defs:
            attr, marker, _ = _CBS_DEFS[name]
            x = getattr(post, attr)[:, g]
            xlo, xm, xhi = np.quantile(x, [(1 - prob) / 2, 0.5, (1 + prob) / 2])
            ym = float(np.median(post.S_min[:, g] * (1 + post.B_noise[:, g] / xm)))
            ax.errorbar([xm], [ym], xerr=[[xm - xlo], [xhi - xm]], fmt=marker, color=c, mec="k", mew=0.6, ms=6,
                        capsize=3, zorder=4)
    ax.scatter([], [], s=16, color="0.6", edgecolors="k", linewidths=0.4, label="observed")
    for name in defs:
        _, marker, text = _CBS_DEFS[name]
        ax.errorbar([], [], xerr=[], fmt=marker, color="0.6", mec="k", ms=6, capsize=3, label=f"{text}, {_pct(prob)}")
    ax.set(xscale="log", yscale="log", xlabel=batch_label, ylabel="steps to the target loss",
           title=f"S(B) = S_min + E_min/B per group ({_pct(prob)} bands)")
    ax.legend(fontsize="x-small", ncols=2 if G > 5 else 1)
    return ax


def plot_critical_batch_law(source, law=None, *, by: str | None = None, definition: str = "zhang", at=None,
                            prob: float = DEFAULT_PROB, xlabel: str | None = None, num_points: int = 60, ax=None):
    """The critical batch size against a per-group covariate (model size N, tokens D or the target loss),
    log-log: each group's median and ``prob`` interval, the power law B = k x^p (median and band of the mean
    law) and forecasts at ``at`` (values of the law's input, with their intervals; the band reaches them).

    ``source``: a :class:`~bayes_scaling.analyses.batch_size.CriticalBatchPosterior` (then ``by`` names the covariate
    column and ``definition`` is "zhang" or "mccandlish"; ``law``, e.g. ``post.scaling_law(by)``, adds the
    band) or the :class:`~bayes_scaling.analyses.hyperparams.PowerLawPosterior` itself (its points are the values it
    was fitted to, intervals from their standard errors). Returns the Axes."""
    from statistics import NormalDist

    from .analyses.hyperparams import PowerLawPosterior

    if isinstance(source, PowerLawPosterior):
        law = source
        (name,) = law.inputs
        x = np.asarray(law.observed[name], float)
        y = np.asarray(law.observed["y"], float)
        z = NormalDist().inv_cdf((1 + prob) / 2)
        sd = np.asarray(law.observed.get("log_y_sd", np.zeros_like(y)), float)
        ylo, yhi = y * np.exp(-z * sd), y * np.exp(z * sd)
        what = "B_crit"
    else:
        if by is None:
            by = law.inputs[0] if law is not None else None
        if by is None or by not in source.sweep.extra:
            raise ValueError(f"by must name a per-group column of the sweep: {', '.join(source.sweep.extra) or '(none)'}")
        (d,) = _definitions(definition)
        attr, _, what = _CBS_DEFS[d]
        name = by
        x = source.sweep.extra[by]
        draws = getattr(source, attr)
        ylo, y, yhi = np.quantile(draws, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
    ax = _new_ax(ax)
    pts = np.asarray(x, float)
    at = np.zeros(0) if at is None else np.atleast_1d(np.asarray(at, float))
    if law is not None:
        if tuple(law.inputs) != (name,):
            raise ValueError(f"the law's input is {law.inputs}, the points' is {name!r}")
        allx = np.concatenate([pts, at])
        grid = np.logspace(np.log10(allx.min() / 1.5), np.log10(allx.max() * 1.5), num_points)
        vals = np.exp(law.log_mean({name: grid}))
        med, [(lo, hi)] = _bands(vals, [prob])
        p = law.exponents[name]
        _band(ax, grid, lo, hi, _BAND_COLOR, label=f"power law, {_pct(prob)} band")
        _median(ax, grid, med, _BAND_COLOR, label=f"median: exponent {_interval_text(p, prob)}")
    ax.errorbar(pts, y, yerr=[y - ylo, yhi - y], fmt="o", color="C3", mec="k", mew=0.6, ms=5, capsize=3, zorder=4,
                label=f"{what} per group, {_pct(prob)}")
    if len(at):
        if law is None:
            raise ValueError("at= forecasts need a law")
        fv = np.exp(law.log_mean({name: at}))
        fm, [(flo, fhi)] = _bands(fv, [prob])
        ax.errorbar(at, fm, yerr=[fm - flo, fhi - fm], fmt="o", color="k", ms=4, capsize=4, zorder=4,
                    label=f"forecast ({_pct(prob)})")
        _label(ax, at, fm, flo, fhi, [f"{m_:.4g}" for m_ in fm], prefer="above")
    ax.set(xscale="log", yscale="log", xlabel=xlabel or name, ylabel=f"critical batch size ({what})",
           title=f"{what} against {xlabel or name}")
    ax.legend(fontsize="small", loc="upper left")
    return ax

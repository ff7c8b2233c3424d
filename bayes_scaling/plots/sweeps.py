"""Figures of the sweep analyses: IsoFLOP curves and vertices, critical batch size per group and as a law."""

from __future__ import annotations

import numpy as np

from ..defaults import PROB as DEFAULT_PROB
from .common import (
    BAND_COLOR,
    band_quantiles,
    budget_array,
    compute_grid,
    draw_band,
    flops_label,
    median_line,
    new_ax,
    pct_text,
    place_label,
    sci_text,
    thin_index,
)


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
    idx = thin_index(post.vertex.shape[0])
    v = post.vertex[idx]
    L = post.sampler.flat("L_star")[:, :K][idx]
    h = np.exp(post.sampler.flat("log_h")[:, :K][idx])
    ax = new_ax(ax)
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
        med, [(blo, bhi)] = band_quantiles(vals, [prob])
        N = np.exp(grid)
        c = colors[k]
        draw_band(ax, N, blo, bhi, c, alpha=0.25)
        median_line(ax, N, med, c, label=f"C = {sci_text(d.C[k])}")
        ax.scatter(np.exp(x), y, s=16, color=c, edgecolors="k", linewidths=0.4, zorder=3)
        Lm = float(np.median(L[:, k]))
        ax.errorbar([np.exp(vq[1])], [Lm], xerr=[[np.exp(vq[1]) - np.exp(vq[0])], [np.exp(vq[2]) - np.exp(vq[1])]],
                    fmt="D", color=c, mec="k", mew=0.6, ms=5, capsize=3, zorder=4)
    # what the markers mean, once
    ax.scatter([], [], s=16, color="0.6", edgecolors="k", linewidths=0.4, label="runs in the fit window")
    ax.errorbar([], [], xerr=[], fmt="D", color="0.6", mec="k", ms=5, capsize=3, label=f"vertex N_opt, {pct_text(prob)}")
    yall = np.concatenate(ys)
    pad = 0.08 * (yall.max() - yall.min())
    ax.set_ylim(yall.min() - pad, yall.max() + pad)
    ax.set(xscale="log", xlabel="parameters N", ylabel="loss (nats/token)",
           title=f"IsoFLOP curves ({pct_text(prob)} bands): N_opt ∝ C^a, a = {_interval_text(post.a, prob)}")
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
    b = budget_array(budgets)
    C = compute_grid({"C": d.C[:K]}, b, num_points)
    vals = post.n_opt(C)
    med, [(lo, hi)] = band_quantiles(vals, [prob])
    ax = new_ax(ax)
    draw_band(ax, C, lo, hi, BAND_COLOR, label=f"N_opt = k C^a, {pct_text(prob)} band")
    median_line(ax, C, med, BAND_COLOR, label="median")
    vm, [(vlo, vhi)] = band_quantiles(np.exp(post.vertex), [prob])
    colors = _budget_colors(d.C[:K])
    for k in range(K):
        ax.errorbar([d.C[k]], [vm[k]], yerr=[[vm[k] - vlo[k]], [vhi[k] - vm[k]]], fmt="D", color=colors[k], mec="k",
                    mew=0.6, ms=5, capsize=3, zorder=4, label="IsoFLOP vertices" if k == 0 else None)
    if len(b):
        bv = post.n_opt(b)
        bm, [(blo, bhi)] = band_quantiles(bv, [prob])
        ax.errorbar(b, bm, yerr=[bm - blo, bhi - bm], fmt="o", color="k", ms=4, capsize=4, zorder=4,
                    label=f"target budgets ({pct_text(prob)})")
        place_label(ax, b, bm, blo, bhi, [sci_text(m_, 3) for m_ in bm], prefer="above")
    ax.set(xscale="log", yscale="log", xlabel=flops_label(), ylabel="N_opt (parameters)",
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
    idx = thin_index(post.S_min.shape[0])
    S_min, B_noise = post.S_min[idx], post.B_noise[idx]
    ax = new_ax(ax)
    covariate = next((k for k in ("N", "N_params", "N_params_nominal") if k in sw.extra), None)
    colors = _budget_colors(sw.extra[covariate]) if covariate else _budget_colors(np.arange(1, G + 1))
    for g in range(G):
        m = sw.mask[g] > 0
        B, S = sw.batch[g][m], sw.steps[g][m]
        lo_b = min(B.min() / 1.5, float(np.quantile(post.B_noise[:, g], (1 - prob) / 2)))
        hi_b = max(B.max() * 1.5, float(np.quantile(post.cbs[:, g], (1 + prob) / 2)))
        grid = np.logspace(np.log10(lo_b), np.log10(hi_b), num_points)
        vals = S_min[:, g, None] * (1 + B_noise[:, g, None] / grid[None, :])
        med, [(blo, bhi)] = band_quantiles(vals, [prob])
        c = colors[g]
        draw_band(ax, grid, blo, bhi, c, alpha=0.25)
        median_line(ax, grid, med, c, label=str(sw.groups[g]))
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
        ax.errorbar([], [], xerr=[], fmt=marker, color="0.6", mec="k", ms=6, capsize=3, label=f"{text}, {pct_text(prob)}")
    ax.set(xscale="log", yscale="log", xlabel=batch_label, ylabel="steps to the target loss",
           title=f"S(B) = S_min + E_min/B per group ({pct_text(prob)} bands)")
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

    from ..analyses.hyperparams import PowerLawPosterior

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
    ax = new_ax(ax)
    pts = np.asarray(x, float)
    at = np.zeros(0) if at is None else np.atleast_1d(np.asarray(at, float))
    if law is not None:
        if tuple(law.inputs) != (name,):
            raise ValueError(f"the law's input is {law.inputs}, the points' is {name!r}")
        allx = np.concatenate([pts, at])
        grid = np.logspace(np.log10(allx.min() / 1.5), np.log10(allx.max() * 1.5), num_points)
        vals = np.exp(law.log_mean({name: grid}))
        med, [(lo, hi)] = band_quantiles(vals, [prob])
        p = law.exponents[name]
        draw_band(ax, grid, lo, hi, BAND_COLOR, label=f"power law, {pct_text(prob)} band")
        median_line(ax, grid, med, BAND_COLOR, label=f"median: exponent {_interval_text(p, prob)}")
    ax.errorbar(pts, y, yerr=[y - ylo, yhi - y], fmt="o", color="C3", mec="k", mew=0.6, ms=5, capsize=3, zorder=4,
                label=f"{what} per group, {pct_text(prob)}")
    if len(at):
        if law is None:
            raise ValueError("at= forecasts need a law")
        fv = np.exp(law.log_mean({name: at}))
        fm, [(flo, fhi)] = band_quantiles(fv, [prob])
        ax.errorbar(at, fm, yerr=[fm - flo, fhi - fm], fmt="o", color="k", ms=4, capsize=4, zorder=4,
                    label=f"forecast ({pct_text(prob)})")
        place_label(ax, at, fm, flo, fhi, [f"{m_:.4g}" for m_ in fm], prefer="above")
    ax.set(xscale="log", yscale="log", xlabel=xlabel or name, ylabel=f"critical batch size ({what})",
           title=f"{what} against {xlabel or name}")
    ax.legend(fontsize="small", loc="upper left")
    return ax

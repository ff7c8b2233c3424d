"""Figures of loss laws: runs against the law, the loss frontier, the compute-optimal allocation, families."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np

from .. import derived
from ..defaults import PROB as DEFAULT_PROB
from .common import (
    BAND_COLOR,
    DEFAULT_FAN,
    PRED_COLOR,
    RUN_COLOR,
    band_quantiles,
    budget_array,
    compute_grid,
    compute_of_runs,
    draw_band,
    draws_of,
    flops_label,
    law_and_draws,
    mark_budgets,
    mark_largest_run,
    median_line,
    new_ax,
    observed_runs,
    pct_text,
    plain_log_ticks,
    sci_text,
    thin_index,
)


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

    law, draws, _ = law_and_draws(source)
    obs = observed_runs(source, runs)
    if "loss" not in obs:
        raise ValueError("plot_fit needs the observed runs: pass runs= (a Runs table)")
    ax = new_ax(ax)
    y = obs["loss"]
    if len(law.inputs) == 1 or not ("N" in law.inputs and "D" in law.inputs):
        if len(law.inputs) != 1:
            raise ValueError(f"plot_fit draws laws of N and D, or of one input; law {law.name!r} has {law.inputs}")
        (name,) = law.inputs
        x = obs[name]
        grid = np.logspace(np.log10(x.min()) - 0.1, np.log10(x.max()) + 0.1, 80)
        vals = draws_of(lambda p, v: jnp.exp(law.log_loss(p, {name: v})), draws, grid)
        med, [(lo, hi)] = band_quantiles(vals, [prob])
        if vals.shape[0] > 1:
            draw_band(ax, grid, lo, hi, BAND_COLOR, label=f"{pct_text(prob)} band")
        median_line(ax, grid, med, BAND_COLOR, label=f"{law.name} (median)")
        ax.scatter(x, y, s=12, color=RUN_COLOR, zorder=3, label=f"runs ({len(y)})")
        ax.set(xscale="log", yscale="log", xlabel=name, ylabel="loss",
               title=f"{law.name}: runs and fitted law" + ("" if vals.shape[0] == 1 else f" ({pct_text(prob)} band)"))
        plain_log_ticks(ax.yaxis)
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

        vals = draws_of(loss, draws, grid)
        med, [(lo, hi)] = band_quantiles(vals, [prob])
        color = cmap(norm(level))
        if not single:
            draw_band(ax, grid, lo, hi, color, alpha=0.25)
            median_line(ax, grid, med, color, label=f"{by} = {sci_text(val)}")
        else:
            ax.plot(grid, med, color=color, lw=1.6, label=f"{by} = {sci_text(val)}")
    what = {"D": "tokens D", "N": "parameters N"}[other]
    ax.set(xscale="log", yscale="log", xlabel=what, ylabel="loss (nats/token)",
           title=f"{law.name}: runs and fitted law" + ("" if single else f" ({pct_text(prob)} bands)"))
    ax.set_ylim(max(y.min() * 0.9, 1e-12), y.max() * 1.1)
    plain_log_ticks(ax.yaxis)
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
    from ..posterior import Posterior

    law, draws, post = law_and_draws(source)
    obs = observed_runs(source, runs)
    b = budget_array(budgets)
    C = compute_grid(obs, b, num_points)
    ax = new_ax(ax)
    fn = lambda p, c: derived.loss_at_optimum(law, p, c, inputs=inputs)
    vals = draws_of(fn, draws, C)
    med, [(lo, hi)] = band_quantiles(vals, [prob])
    single = vals.shape[0] == 1
    if predictive and isinstance(post, Posterior) and not single:
        idx = thin_index(post.num_chains * post.num_draws)
        sigma = np.stack([post.noise_scale(c).reshape(-1)[idx] for c in C], axis=1)
        # one unit noise per draw for every C: the band's quantiles are as accurate as with fresh noise at each C,
        # and smooth in C instead of jagged with Monte Carlo error
        eps = np.asarray(post._unit_noise(seed, (sigma.shape[0], 1)), float)
        pred = vals * np.exp(sigma * eps)
        _, [(plo, phi)] = band_quantiles(pred, [prob])
        draw_band(ax, C, plo, phi, PRED_COLOR, alpha=0.18, outline=False, label=f"one new run, {pct_text(prob)} band")
    if not single:
        draw_band(ax, C, lo, hi, BAND_COLOR, alpha=0.35, label=f"L*(C), {pct_text(prob)} band (outlined)")
        median_line(ax, C, med, BAND_COLOR, label="L*(C), median")
    else:
        ax.plot(C, med, color=BAND_COLOR, lw=1.8, label="L*(C), point fit")
    Cr = compute_of_runs(obs)
    if show_runs and Cr is not None and "loss" in obs:
        ax.scatter(Cr, obs["loss"], s=8, color=RUN_COLOR, alpha=0.6, edgecolors="none", zorder=2,
                   label=f"runs ({len(Cr)})")
    mark_largest_run(ax, Cr)
    if len(b):
        mark_budgets(ax, source, fn, b, prob, single, lambda bm: [f"{m:.3f}" for m in bm], prefer="below")
    ax.set(xscale="log", xlabel=flops_label(), ylabel="loss at the optimum L* (nats/token)",
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
    law, draws, _ = law_and_draws(source)
    if not ("N" in law.inputs and "D" in law.inputs):
        raise ValueError(f"law {law.name!r} has inputs {law.inputs}; an allocation needs a law of N and D")
    obs = observed_runs(source, runs)
    b = budget_array(budgets)
    C = compute_grid(obs, b, num_points)
    ax = new_ax(ax)
    label, f = _ALLOC[quantity]
    fn = lambda p, c: f(law, p, c, inputs)
    vals = draws_of(fn, draws, C)
    probs = tuple(sorted({float(q) for q in probs} | {float(prob)}))
    med, bands = band_quantiles(vals, probs)
    single = vals.shape[0] == 1
    if not single:
        for q, (lo, hi), alpha in zip(probs[::-1], bands[::-1], np.linspace(0.15, 0.45, len(probs))):
            mine = np.isclose(q, prob)
            draw_band(ax, C, lo, hi, BAND_COLOR, alpha=alpha, outline=mine,
                  label=f"{pct_text(q)} interval" + (" (outlined)" if mine and len(probs) > 1 else ""))
        median_line(ax, C, med, BAND_COLOR, label="median")
    else:
        ax.plot(C, med, color=BAND_COLOR, lw=1.8, label="point fit")
    if tokens_per_param:
        r, k = float(tokens_per_param), derived.FLOPS_PER_PARAM_TOKEN
        ref = {"N_opt": np.sqrt(C / (k * r)), "D_opt": np.sqrt(r * C / k), "D/N": np.full_like(C, r)}[quantity]
        ax.plot(C, ref, color="k", ls="--", lw=1, label=f"{r:g} tokens per parameter")
    Cr = compute_of_runs(obs)
    if Cr is not None and len(Cr):
        ax.axvspan(Cr.min(), Cr.max(), color="0.9", zorder=0, label="compute of the runs")
    mark_largest_run(ax, Cr)
    if len(b):
        mark_budgets(ax, source, fn, b, prob, single, lambda bm: [sci_text(m, 3) for m in bm], prefer="above")
    ax.set(xscale="log", yscale="log", xlabel=flops_label(), ylabel=quantity, title=f"{law.name}: {label}")
    ax.legend(fontsize="small", loc="upper left")
    return ax



# ---- many families ----------------------------------------------------------------------------------
def _family_sources(source, runs):
    """``[(name, fitted object, runs or None)]`` from a BatchPosterior, BatchFit, HierarchicalPosterior or
    a dict of fitted objects."""
    from ..analyses.hierarchical import HierarchicalPosterior

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

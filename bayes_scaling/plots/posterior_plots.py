"""Figures of the posterior itself: priors against posteriors, the predictive check, arviz pair, trace and rank plots."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from ..defaults import PROB as DEFAULT_PROB
from .common import BAND_COLOR, PRED_COLOR, RUN_COLOR, compute_of_runs, flops_label, new_ax, pct_text


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
                ax.fill_between(mid, 0, y, color=BAND_COLOR, alpha=0.6, lw=0, label=label)
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
    C = compute_of_runs({k: np.asarray(v, float) for k, v in obs.items()})
    x, xlabel = (C, flops_label()) if C is not None else (np.arange(len(y)) + 1.0, "run")
    m = np.median(mu.reshape(-1, len(y)), axis=0)
    rep = np.log(post.posterior_predictive(seed=seed)).reshape(-1, len(y)) - m
    lo, hi = np.quantile(rep, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    r = y - m
    order = np.argsort(x)
    ax = new_ax(ax)
    ax.fill_between(x[order], lo[order], hi[order], color=PRED_COLOR, alpha=0.3, lw=0, step="mid",
                    label=f"{pct_text(prob)} posterior-predictive band")
    inside = (r >= lo) & (r <= hi)
    ax.axhline(0, color="k", lw=0.8)
    ax.scatter(x[inside], r[inside], s=10, color=RUN_COLOR, zorder=3, label=f"runs inside ({inside.sum()})")
    ax.scatter(x[~inside], r[~inside], s=18, color="C3", marker="x", zorder=3, label=f"runs outside ({(~inside).sum()})")
    ax.set(xscale="log" if C is not None else "linear", xlabel=xlabel, ylabel="log(observed) - log(law, median)",
           title=f"posterior-predictive check: {100 * inside.mean():.0f}% of runs inside the {pct_text(prob)} band")
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

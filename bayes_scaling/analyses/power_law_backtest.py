"""Backtests of power laws through points with their own uncertainty: the hyperparameter laws (optimal batch size or
learning rate against compute) and the approach-2 laws of IsoFLOP vertices (N_opt = k C^a).

For each cut of the first input (fit on the points at or below it, :func:`~bayes_scaling.analyses.hyperparams.fit_power_law`),
every point beyond it is forecast by the law's posterior predictive: log y = log k + sum_i p_i log x_i + tau z, and the
held-out point is itself measured with its standard error s_j (a sweep's grid, a vertex's posterior sd), so the two are
compared as distributions: the held-out log value minus the forecast's, with s_j added as noise to the forecast.
A forecast holds the point at mass p when the observed log y lies in the central p interval of that predictive;
the PIT is the share of predictive draws below it. Scored as :mod:`bayes_scaling.backtests` scores a loss law:
coverage at each mass, error of the median, PIT and the extrapolation factor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..backtests import DEFAULT_PROBS, cut_values
from .hyperparams import fit_power_law, optima_points

__all__ = ["backtest_power_law", "backtest_hyperparam", "pooled_coverage"]


def backtest_power_law(x: Mapping[str, Sequence[float]], y, *, y_sd=None, by: str | None = None, cuts=None, levels=None,
                       probs: Sequence[float] = DEFAULT_PROBS, seed: int = 0, groups=None, **options):
    """Rolling-origin backtest of ``y = k prod x_i^(p_i)`` (module text). ``x``: ``{name: (point,)}``; ``y``: the
    values; ``y_sd``: their standard errors in log (default 0); ``by``: the input that orders the points (default
    the first); ``cuts`` / ``levels`` as :func:`~bayes_scaling.backtests.cut_values` (default: from half the distinct
    values to all but the last); ``groups``: one label per point, each group cut on its own (configurations);
    ``options`` go to :func:`fit_power_law`. Returns a DataFrame, one row per (group, cut, held-out point)."""
    import pandas as pd

    names = tuple(x)
    by = by or names[0]
    if by not in names:
        raise ValueError(f"backtest_power_law: by={by!r} is not one of the inputs {names}")
    y = np.asarray(y, float)
    if y.ndim != 1:
        raise ValueError("backtest_power_law: y must be one value per point (give draws' log-sd as y_sd)")
    X = {n: np.asarray(x[n], float).ravel() for n in names}
    sd = np.zeros_like(y) if y_sd is None else np.broadcast_to(np.asarray(y_sd, float), y.shape)
    groups = np.full(len(y), "all", dtype=object) if groups is None else np.asarray(groups, dtype=object)
    for what, v in [(f"input {n!r}", X[n]) for n in names] + [("groups", groups)]:
        if len(v) != len(y):
            raise ValueError(f"backtest_power_law: {what} has {len(v)} points, y has {len(y)}")
    bad = np.flatnonzero(~(np.isfinite(y) & (y > 0)) | ~np.isfinite(sd) | (sd < 0))
    if bad.size:
        raise ValueError(f"backtest_power_law: point {bad[0] + 1}: y = {y[bad[0]]!r}, y_sd = {sd[bad[0]]!r}; y must be "
                         "positive and y_sd non-negative, both finite")
    need = len(names) + 2  # fit_power_law's least: the law's parameters and a scatter
    rng = np.random.default_rng(seed)
    rows = []
    for g in dict.fromkeys(groups):
        idx = np.flatnonzero(groups == g)
        v = X[by][idx]
        for c in cut_values(v, cuts=cuts, levels=levels, min_train=need):
            train, test = idx[v <= c * (1 + 1e-9)], idx[v > c * (1 + 1e-9)]
            if len(train) < need or not len(test):
                continue
            post = fit_power_law({n: X[n][train] for n in names}, y[train], y_sd=sd[train], seed=seed, **options)
            lm = post.log_mean({n: X[n][test] for n in names})  # (draw, point)
            pred = lm + post.tau[:, None] * rng.standard_normal(lm.shape) + sd[test][None, :] * rng.standard_normal(lm.shape)
            logy = np.log(y[test])
            healthy = bool(post.diagnostics()["ok"])
            for j, r in enumerate(test):
                row = {"group": g, "cut": float(c), "fitted": len(train), "point": int(r), by: float(X[by][r]),
                       "observed": float(y[r]), "forecast": float(np.exp(np.median(pred[:, j]))),
                       "pit": float(np.mean(pred[:, j] < logy[j])), "extrapolation": float(X[by][r] / np.max(X[by][train])),
                       "healthy": healthy}
                for p in probs:
                    lo, hi = np.quantile(pred[:, j], [(1 - p) / 2, (1 + p) / 2])
                    row[f"inside_{100 * p:g}"] = bool(lo <= logy[j] <= hi)
                    row[f"width_{100 * p:g}_%"] = float(100 * (np.exp(hi - lo) - 1))
                row["error_%"] = 100 * (row["forecast"] / row["observed"] - 1)
                rows.append(row)
    if not rows:
        raise ValueError(f"backtest_power_law: no cut leaves {need} points to fit and one to forecast")
    return pd.DataFrame(rows)


def backtest_hyperparam(sweep, *, target: str, by: Sequence[str] = ("C",), loss: str = "loss", select: str = "optimum",
                        tol: float = 0.0025, cuts=None, levels=None, probs: Sequence[float] = DEFAULT_PROBS, seed: int = 0,
                        **options):
    """Backtest of an optimal-hyperparameter law (:func:`~bayes_scaling.analyses.hyperparams.hyperparam_law`) on a
    sweep table: the per-budget optima (with their grid standard errors), cut along the first of ``by``."""
    x, y, y_sd = optima_points(sweep, target=target, by=by, loss=loss, select=select, tol=tol,
                               sep=options.pop("sep", None), name=options.pop("name", None))
    return backtest_power_law(x, y, y_sd=y_sd, by=by[0], cuts=cuts, levels=levels, probs=probs, seed=seed, **options)


def pooled_coverage(points, probs: Sequence[float] = DEFAULT_PROBS) -> dict:
    """Coverage at each mass, median absolute error (%) and mean PIT over a backtest's held-out points."""
    out = {"held_out": len(points), "cuts": int(points.groupby(["group", "cut"]).ngroups)}
    out |= {f"coverage_{100 * p:g}": float(points[f"inside_{100 * p:g}"].mean()) for p in probs}
    out["median_abs_error_%"] = float(np.median(np.abs(points["error_%"])))
    out["mean_pit"] = float(points["pit"].mean())
    return out

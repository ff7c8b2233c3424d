"""Backtests of the IsoFLOP method: fit each configuration on its budgets up to the k-th, forecast N_opt at the
next budget, and compare with the vertex that budget's own runs give.

The held-out vertex is itself an estimate (a parabola through a few runs), so the comparison is between two
distributions: the forecast (the cut fit's law at the next budget, with the vertex scatter tau: where one new
budget's vertex lands, :meth:`IsoflopPosterior.n_opt` with ``predictive``) and the held-out budget's vertex in a fit
of all the configuration's budgets. A forecast holds the held-out vertex at mass p when 0 lies in the central p
interval of their difference (log forecast draw minus log held-out draw, independent draws); the PIT is the share
of differences below 0. Every (configuration, cut) is one family of one :func:`isoflop_batch` call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .isoflop import isoflop_batch, read_source

__all__ = ["backtest_isoflop"]

_CUT = "__cut__"


def backtest_isoflop(source, *, by: Sequence[str], C: str = "C", N: str = "N", loss: str = "loss", D: str | None = "D",
                     levels: Sequence[int] | None = None, probs: Sequence[float] = (0.5, 0.8, 0.9),
                     window: float | None = 0.05, scatter: bool = True, seed: int = 0, num_warmup: int = 500,
                     num_samples: int = 500, num_chains: int = 4, target_accept: float = 0.95, sep: str | None = None):
    """Per (configuration, cut): the forecast of N_opt at the next budget against that budget's vertex (module
    text). ``levels``: the k (budgets fitted) to cut at; default every k from half the budgets to all but the
    last. Returns a DataFrame, one row per (configuration, cut), with the forecast's median and intervals, the
    held-out vertex's median, ``inside_<p>`` and ``pit``."""
    import pandas as pd

    df, name = read_source(source, sep)
    full = isoflop_batch(df, by=by, C=C, N=N, loss=loss, D=D, window=window, scatter=scatter, seed=seed,
                         num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains, target_accept=target_accept)
    labels = df[list(by)].astype(str).agg("/".join, axis=1)
    parts, plan = [], []
    for lab, post in full.items():
        budgets = post.data.C
        ks = levels if levels is not None else range(max(2, (len(budgets) + 1) // 2), len(budgets))
        for k in ks:
            if not 2 <= k < len(budgets):
                continue
            cut = f"{lab} | k={k}"
            sub = df[(labels == lab) & (df[C].astype(float) <= budgets[k - 1] * (1 + 1e-6))].copy()
            sub[_CUT] = cut
            parts.append(sub)
            plan.append((lab, k, cut))
    if not plan:
        raise ValueError(f"{name}: no configuration has enough budgets to cut (at least 3: 2 to fit, 1 to forecast)")
    cuts = isoflop_batch(pd.concat(parts), by=[_CUT], C=C, N=N, loss=loss, D=D, window=window, scatter=scatter, seed=seed + 1,
                         num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains, target_accept=target_accept)
    rng = np.random.default_rng(seed)
    rows = []
    for lab, k, cut in plan:
        post, held = cuts[cut], full[lab]
        C_next = float(held.data.C[k])
        fc = np.log(post.n_opt(C_next, predictive=True, seed=rng.integers(2**31))[:, 0])
        obs = held.vertex[:, k]
        n = min(len(fc), len(obs))
        diff = rng.permutation(fc)[:n] - rng.permutation(obs)[:n]
        row = {"configuration": lab, "fitted_budgets": k, "cut": float(held.data.C[k - 1]), "next_budget": C_next,
               "forecast_N_opt": float(np.exp(np.median(fc))), "held_out_N_opt": float(np.exp(np.median(obs))),
               "pit": float(np.mean(diff < 0)), "healthy": bool(post.diagnostics()["ok"])}
        for p in probs:
            lo, hi = np.quantile(diff, [(1 - p) / 2, (1 + p) / 2])
            row[f"inside_{100 * p:g}"] = bool(lo <= 0 <= hi)
            flo, fhi = np.quantile(fc, [(1 - p) / 2, (1 + p) / 2])
            row[f"forecast_lo_{100 * p:g}"], row[f"forecast_hi_{100 * p:g}"] = float(np.exp(flo)), float(np.exp(fhi))
        row["error_%"] = 100 * (row["forecast_N_opt"] / row["held_out_N_opt"] - 1)
        rows.append(row)
    return pd.DataFrame(rows)

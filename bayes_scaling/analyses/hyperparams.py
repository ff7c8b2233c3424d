"""Power laws through points that carry their own uncertainty, and the hyperparameter laws built on them.

:func:`fit_power_law` samples the posterior of ``y = k * prod_i x_i^(p_i)`` (one input: DeepSeek LLM's
``B_opt = k C^p``; two: Step Law's ``eta_opt = k N^p D^q``) in log space, as a measurement-error model:

    log y_j ~ Normal(log k_c + sum_i p_i (log x_ij - mean_j log x_ij), sqrt(s_j^2 + tau^2))

where ``s_j`` is the known standard error of log y_j (e.g. the posterior sd of a critical batch size or an
IsoFLOP vertex; 0 for a plain observation) and ``tau`` the scatter of the points about the law
(``tau ~ HalfNormal(tau_scale)``). Priors: ``p_i ~ Normal(0, 2)``, ``log k_c ~ Normal(mean log y, 10)``
(k_c = the law's value at the data's centre; k = k_c prod_i x0_i^(-p_i)).

:func:`hyperparam_law` fits such a law to a sweep table (one row per run: budget C or N and D, the
hyperparameter, the final loss), to the per-budget optima or to the near-optimal set (every run within
``tol`` of its budget's best loss, as DeepSeek LLM did).

>>> import jax; jax.config.update("jax_enable_x64", True)
>>> import numpy as np
>>> C = np.logspace(17, 20, 6); y = 0.292 * C ** 0.327
>>> fit = fit_power_law({"C": C}, y, num_warmup=200, num_samples=200, num_chains=2)
>>> round(float(np.median(fit.exponents["C"])), 2)
0.33
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from ..draws import Draws, FromSampler, quantiles, sample_model
from ..posterior import DEFAULT_PROB

__all__ = ["PowerLawPosterior", "fit_power_law", "hyperparam_law", "optima_points", "sweep_optima"]


def power_law_model(X, logy, logy_sd, mask, center):
    """NumPyro model of the module docstring. ``X``: ``(point, input)`` log inputs; ``logy``, ``logy_sd``,
    ``mask``: ``(point,)``; ``center``: ``{"x": (input,), "y": (), "tau_scale": ()}``."""
    d = X.shape[-1]
    p = numpyro.sample("p", dist.Normal(0.0, 2.0).expand([d]).to_event(1))
    logk_c = numpyro.sample("logk_c", dist.Normal(center["y"], 10.0))
    tau = numpyro.sample("tau", dist.HalfNormal(center["tau_scale"]))
    mu = logk_c + (X - center["x"]) @ p
    numpyro.deterministic("logk", logk_c - center["x"] @ p)
    scale = jnp.sqrt(logy_sd ** 2 + tau ** 2)
    ll = dist.Normal(mu, scale).log_prob(logy)
    numpyro.factor("log_likelihood", jnp.sum(ll * mask))


@dataclass(frozen=True, eq=False)
class PowerLawPosterior(FromSampler):
    """Posterior of ``y = k prod_i x_i^(p_i)``: ``k`` and ``exponents[name]`` are flat draws; ``tau`` the
    scatter draws; ``sampler`` the :class:`~bayes_scaling.draws.Draws` with its diagnostics."""

    ANALYSIS = "power law"

    inputs: tuple[str, ...]
    k: np.ndarray
    exponents: dict[str, np.ndarray]
    tau: np.ndarray
    sampler: Draws
    observed: dict[str, np.ndarray]

    def log_mean(self, x: Mapping[str, Any]) -> np.ndarray:
        """log of the law at inputs ``x`` (scalars or equal-length arrays): ``(draw, ...)``."""
        out = np.log(self.k)[:, None]
        for name in self.inputs:
            out = out + self.exponents[name][:, None] * np.log(np.atleast_1d(np.asarray(x[name], float)))[None, :]
        return out

    def predict(self, x: Mapping[str, Any], *, prob: float = DEFAULT_PROB, predictive: bool = False, seed: int = 0):
        """Median and interval of the law at ``x`` (a DataFrame, one row per point). ``predictive`` adds the
        scatter tau of single points about the law (the interval of one new optimum, not of the mean law)."""
        import pandas as pd

        lm = self.log_mean(x)
        if predictive:
            lm = lm + self.tau[:, None] * np.random.default_rng(seed).standard_normal(lm.shape)
        rows = []
        for j in range(lm.shape[1]):
            q = quantiles(np.exp(lm[:, j]), prob)
            rows.append({**{n: float(np.atleast_1d(x[n])[j] if np.ndim(x[n]) else x[n]) for n in self.inputs}, **q})
        return pd.DataFrame(rows)

    def summary(self, prob: float = DEFAULT_PROB):
        import pandas as pd

        rows = {"k": quantiles(self.k, prob)}
        for n in self.inputs:
            rows[f"exponent_{n}"] = quantiles(self.exponents[n], prob)
        rows["tau"] = quantiles(self.tau, prob)
        return pd.DataFrame.from_dict(rows, orient="index")


    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything that makes these numbers less trustworthy, in words (here: sampler health)."""
        return tuple(self.diagnostics()["warnings"])


def fit_power_law(x: Mapping[str, Any], y, *, y_sd=None, tau_scale: float = 0.2, seed: int = 0, num_warmup: int = 500,
                  num_samples: int = 500, num_chains: int = 4, target_accept: float = 0.99) -> PowerLawPosterior:
    """Posterior of ``y = k prod x_i^(p_i)`` (module docstring).

    x:     ``{name: (point,) array}`` of positive inputs.
    y:     ``(point,)`` positive values, or ``(draw, point)`` posterior draws of them (their log mean and
           sd then give log y_j and s_j: a point's uncertainty carries into the exponents).
    y_sd:  known standard errors of log y (overrides the draws' sd); default 0 for plain values.
    target_accept: 0.99 by default: with few points the scatter tau's posterior reaches down to 0, where
           NUTS at 0.9 diverges (16 of 4000 transitions on Zhang's five sizes; 0 at 0.99, at little cost).
    """
    names = tuple(x)
    if not names:
        raise ValueError("fit_power_law: give at least one input")
    X = np.stack([np.asarray(x[n], float).ravel() for n in names], axis=-1)
    y = np.asarray(y, float)
    if y.ndim == 2:
        if np.any(~np.isfinite(y)) or np.any(y <= 0):
            raise ValueError("fit_power_law: the draws of y must be positive and finite")
        logy, sd = np.log(y).mean(axis=0), np.log(y).std(axis=0, ddof=1)
    else:
        logy, sd = np.log(y), np.zeros_like(y)
    if y_sd is not None:
        sd = np.broadcast_to(np.asarray(y_sd, float), logy.shape)
    n = logy.shape[0]
    if X.shape[0] != n:
        raise ValueError(f"fit_power_law: {X.shape[0]} input points but {n} values of y")
    for j, name in enumerate(names):
        bad = np.flatnonzero(~np.isfinite(X[:, j]) | (X[:, j] <= 0))
        if bad.size:
            raise ValueError(f"fit_power_law: input {name!r} point {bad[0] + 1} is {X[bad[0], j]!r}; inputs must be positive")
    if not np.all(np.isfinite(logy)):
        raise ValueError(f"fit_power_law: y point {int(np.flatnonzero(~np.isfinite(logy))[0]) + 1} is not positive and finite")
    if n < len(names) + 2:
        raise ValueError(f"fit_power_law: {n} points for {len(names) + 1} law parameters and a scatter; need at least {len(names) + 2}")
    logX = np.log(X)
    xc = logX.mean(axis=0)
    # least-squares start
    A = np.column_stack([np.ones(n), logX - xc])
    coef, *_ = np.linalg.lstsq(A, logy, rcond=None)
    resid = logy - A @ coef
    tau0 = max(float(np.sqrt(np.mean(resid ** 2))), 1e-3)
    # pad to a bucket of 8, 16, 32, ... points (masked out) so fits of other sizes reuse the compiled sampler
    width = max(8, 1 << (n - 1).bit_length())
    pad = width - n
    logX_p = np.concatenate([logX, np.broadcast_to(xc, (pad, len(names)))])
    mask = np.concatenate([np.ones(n), np.zeros(pad)])
    args = (jnp.asarray(logX_p), jnp.asarray(np.concatenate([logy, np.full(pad, logy.mean())])),
            jnp.asarray(np.concatenate([sd, np.ones(pad)])), jnp.asarray(mask),
            {"x": jnp.asarray(xc), "y": jnp.asarray(logy.mean()), "tau_scale": jnp.asarray(float(tau_scale))})
    values = {"p": coef[1:], "logk_c": float(coef[0]), "tau": tau0}
    s = sample_model(power_law_model, args, values, watch=("p", "logk_c", "tau"), seed=seed, num_warmup=num_warmup,
                     num_samples=num_samples, num_chains=num_chains, target_accept=target_accept)
    p = s.flat("p")
    return PowerLawPosterior(inputs=names, k=np.exp(s.flat("logk")), exponents={nm: p[:, j] for j, nm in enumerate(names)},
                             tau=s.flat("tau"), sampler=s,
                             observed={**{nm: X[:, j] for j, nm in enumerate(names)}, "y": np.exp(logy), "log_y_sd": sd})


def _budget_groups(df, by: Sequence[str]):
    return df.groupby(list(by), sort=True)


def _label(by, key) -> str:
    return ", ".join(f"{b}={float(k):g}" for b, k in zip(by, np.atleast_1d(key)))


def sweep_optima(df, *, by: Sequence[str] = ("C",), loss: str = "loss", select: str = "optimum", tol: float = 0.0025,
                 source: str = "<DataFrame>"):
    """The rows of a sweep table a hyperparameter law is fitted to: per budget (rows sharing ``by``), the
    best-loss row (``select="optimum"``) or every row with loss <= (1 + tol) x the budget's best
    (``"near_optimal"``). Budgets with fewer than 2 runs cannot show an optimum and raise."""
    if select not in ("optimum", "near_optimal"):
        raise ValueError(f"select must be 'optimum' or 'near_optimal', not {select!r}")
    parts = []
    for key, g in _budget_groups(df, by):
        if len(g) < 2:
            raise ValueError(f"{source}: budget {_label(by, key)} has {len(g)} run (row "
                             f"{int(g.index[0]) + 1}); an optimum needs a sweep of at least 2")
        best = g[loss].min()
        if select == "optimum":
            parts.append(g.loc[[g[loss].idxmin()]])
        else:
            parts.append(g[g[loss] <= best * (1 + tol)])
    import pandas as pd

    return pd.concat(parts)


def hyperparam_law(sweep, *, target: str, by: Sequence[str] = ("C",), loss: str = "loss", select: str = "optimum",
                   tol: float = 0.0025, **options) -> PowerLawPosterior:
    """Optimal-hyperparameter law from a sweep table: ``target`` (e.g. ``"batch_size"`` or ``"lr"``) as a
    power law in ``by`` (``("C",)``: DeepSeek LLM form; ``("N", "D")``: Step Law form), fitted to the
    per-budget optima or the near-optimal set (see :func:`sweep_optima`). A best run pins its budget's optimum
    only to within the sweep's grid: with ``select="optimum"`` each point carries a standard error of
    (grid step in log target) / sqrt(12) unless ``y_sd`` is given. ``options`` go to
    :func:`fit_power_law`. ``sweep``: a DataFrame or a CSV/TSV/Parquet path; bad values raise naming column and row."""
    x, y, y_sd = optima_points(sweep, target=target, by=by, loss=loss, select=select, tol=tol,
                               sep=options.pop("sep", None), name=options.pop("name", None))
    if "y_sd" not in options and y_sd is not None:
        options = dict(options, y_sd=y_sd)
    return fit_power_law(x, y, **options)


def optima_points(sweep, *, target: str, by: Sequence[str] = ("C",), loss: str = "loss", select: str = "optimum",
                  tol: float = 0.0025, sep=None, name=None):
    """What :func:`hyperparam_law` fits: ``(x, y, y_sd)``, the inputs ``{by: (point,)}``, the target's values at
    the per-budget optima (or the near-optimal rows) and, for optima, their grid standard errors (else None)."""
    import pandas as pd

    from ..data import missing_column, read_table

    sweep, source, _ = read_table(sweep, sep=sep, name=name)  # CSV/TSV/Parquet
    sweep = sweep.reset_index(drop=True)
    if len(sweep) == 0:
        raise ValueError(f"{source}: the table is empty")
    for col in tuple(by) + (target, loss):
        if col not in sweep.columns:
            raise missing_column(source, col, sweep)
        v = pd.to_numeric(sweep[col], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            raise ValueError(f"{source}: column {col!r}, row {bad[0] + 1}: {sweep[col].iloc[bad[0]]!r} is not a positive number")
    rows = sweep_optima(sweep, by=by, loss=loss, select=select, tol=tol, source=source)
    grid_sd = []
    for key, g in _budget_groups(sweep, by):
        best = g.loc[g[loss].idxmin(), target]
        vals = np.sort(g[target].unique())
        if best in (vals[0], vals[-1]) and len(vals) > 2:
            warnings.warn(f"{source}: budget {_label(by, key)}: the best {target} ({best:g}) is at the "
                          "edge of the sweep; the optimum may lie outside it", stacklevel=3)
        grid_sd.append(_grid_sd(np.log(vals), np.log(best)))
    # a budget's best run locates its optimum only to within the sweep's grid: uniform within half a grid
    # step either side, sd = step / sqrt(12) in log space. Without it, optima laid out exactly on a power law
    # (a sweep grid scaled along the law) make the scatter's posterior collapse to 0 and NUTS fail.
    y_sd = np.asarray(grid_sd) if select == "optimum" else None
    return {b: rows[b].to_numpy(float) for b in by}, rows[target].to_numpy(float), y_sd


def _grid_sd(logv: np.ndarray, logbest: float) -> float:
    """sd of the log optimum's position from the grid step around the best value (the mean of its
    neighbours' distances; one neighbour at an edge)."""
    if len(logv) < 2:
        return 0.0
    i = int(np.argmin(np.abs(logv - logbest)))
    steps = [logv[j] - logv[j - 1] for j in (i, i + 1) if 0 < j < len(logv)]
    return float(np.mean(steps) / np.sqrt(12.0))

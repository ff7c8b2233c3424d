"""Extrapolation discrepancy: how far a fitted law drifts from real runs as the forecast moves beyond the data.

A law fitted on runs up to some compute describes those runs up to noise; beyond them its form may be a little
wrong, and the error grows with the distance. The term added to a forecast's log loss is

    delta(x) ~ Normal(0, s(x)^2),   s(x) = sigma sqrt((tau_0 b(x))^2 + sum_k (tau_k d_k(x))^2),
    d_k(x) = max(0, log(x_k / max of x_k in the data)),   b(x) = 1 beyond the data (some d_k > 0, or a held-out run), else 0

for k in C (compute), N and D: zero inside the data (so it leaves every posterior unchanged), a step tau_0 for any
run the fit has not seen (a new budget's runs share deviations, from its own tuning and schedule, that the fitted runs'
noise does not hold: backtests show the 90% intervals of runs just 1-2x beyond the data already too narrow), and
growing with the log-distance beyond the data, separately along compute, model size and data. The scales are
multiples of the fitted noise sd sigma (``relative``): held-out errors differ tenfold between corpora in absolute
terms (0.7% on Epoch's Chinchilla runs, 4-5% on Porian's and Muennighoff's) but much less relative to each corpus's
own scatter, so a prior set on some corpora transfers to another in these units. ``tau`` is set from backtests (fit on runs
up to a cut, score the runs beyond it; :func:`calibrate`), by maximising the held-out runs' log predictive density;
the package's default comes from the shared corpora (``datasets/discrepancy_prior.json``, written by
``benchmarks/calibrate_discrepancy.py``, which documents how) and a user's own backtest updates it
(:meth:`Discrepancy.updated`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

__all__ = ["Discrepancy", "distances", "default_discrepancy", "resolve_discrepancy", "calibrate", "AXES", "TERMS", "UPDATE_PRIOR_SD"]

AXES = ("C", "N", "D")
#: the least prior sd of log kappa, the common factor on tau, when a user's backtest updates the calibration
UPDATE_PRIOR_SD = 1.0
#: the discrepancy's terms: the step beyond the data, then one per axis
TERMS = ("beyond",) + AXES


def distances(inputs: Mapping[str, np.ndarray], data_max: Mapping[str, float]) -> dict[str, np.ndarray]:
    """Per axis of :data:`AXES` present in both: ``max(0, log(x / largest in the data))`` for each point, and
    ``beyond``: 1 where any axis is beyond the data, else 0."""
    out = {}
    for k in AXES:
        if k in inputs and data_max.get(k):
            out[k] = np.maximum(0.0, np.log(np.asarray(inputs[k], float) / float(data_max[k])))
    if out:
        out["beyond"] = (np.max(np.stack(list(out.values())), axis=0) > 0).astype(float)
    return out


@dataclass(frozen=True)
class Discrepancy:
    """The discrepancy's scales per log-distance (``tau``: ``{"C": .., "N": .., "D": ..}``), with the spread of
    their calibration (``log_sd``: the sd of log tau, one number for all axes) and where they came from."""

    tau: Mapping[str, float]
    log_sd: float = 0.0
    source: str = ""
    notes: tuple[str, ...] = field(default=())
    relative: bool = True

    def scale(self, dist: Mapping[str, np.ndarray]) -> np.ndarray:
        """s(x) at points with ``dist`` from :func:`distances` (0 where no axis is beyond the data), in units of the
        noise sd when ``relative`` (the caller multiplies by sigma)."""
        parts = [(float(self.tau.get(k, 0.0)) * d) ** 2 for k, d in dist.items()]
        return np.sqrt(np.sum(parts, axis=0)) if parts else np.zeros(0)

    def multipliers(self, seed, size: int) -> np.ndarray:
        """Draws of a common factor on tau, LogNormal(0, log_sd): the calibration's own uncertainty, propagated."""
        if self.log_sd <= 0:
            return np.ones(size)
        return np.exp(self.log_sd * np.random.default_rng(seed).standard_normal(size))

    def to_dict(self) -> dict:
        return {"tau": {k: float(v) for k, v in self.tau.items()}, "log_sd": float(self.log_sd), "source": self.source,
                "notes": list(self.notes), "relative": bool(self.relative)}

    @classmethod
    def from_dict(cls, d: Mapping) -> Discrepancy:
        return cls(tau=dict(d["tau"]), log_sd=float(d.get("log_sd", 0.0)), source=str(d.get("source", "")),
                   notes=tuple(d.get("notes", ())), relative=bool(d.get("relative", True)))

    def updated(self, log_score, grid=None, prior_sd: float | None = None) -> Discrepancy:
        """This discrepancy as a prior, updated by a user's backtest: ``log_score(tau)`` is the held-out runs' total
        log predictive density under scales ``tau`` (:meth:`~bayes_scaling.backtests.Backtest.log_score`). The common
        factor kappa on tau gets the grid posterior prior(kappa) x exp(log_score(kappa tau)), log kappa ~ Normal(0,
        ``prior_sd``); the result holds its posterior median and spread. ``prior_sd`` defaults to the larger of
        :attr:`log_sd` and :data:`UPDATE_PRIOR_SD`: the spread between three corpora is a rough estimate of how far a
        new data set's scale may lie from theirs, and a user's own backtest must be able to move it (on data from an
        exactly right law, a prior sd of 0.35 kept the term at 0.67 of its scale and widened 10x forecasts 1.35x; at
        1.0 the factor fell to 0.33 and the widening to 1.16x, benchmarks/sim_discrepancy.py)."""
        grid = np.exp(np.linspace(-4.0, 3.0, 71)) if grid is None else np.asarray(grid, float)
        sd = float(prior_sd) if prior_sd is not None else max(self.log_sd, UPDATE_PRIOR_SD)
        logp = np.array([log_score({k: g * v for k, v in self.tau.items()}) for g in grid]) - 0.5 * (np.log(grid) / sd) ** 2
        w = np.exp(logp - logp.max())
        w /= w.sum()
        cdf = np.cumsum(w)
        med = float(grid[min(np.searchsorted(cdf, 0.5), len(grid) - 1)])
        spread = float(np.sqrt(np.sum(w * (np.log(grid) - np.log(med)) ** 2)))
        return Discrepancy(tau={k: med * v for k, v in self.tau.items()}, log_sd=spread,
                           source=f"{self.source}, updated by a backtest", notes=self.notes, relative=self.relative)


def default_discrepancy() -> Discrepancy:
    """The discrepancy calibrated on the shared corpora (see the module's text), shipped with the package."""
    text = resources.files("bayes_scaling.datasets").joinpath("discrepancy_prior.json").read_text()
    return Discrepancy.from_dict(json.loads(text)["pooled"])


def resolve_discrepancy(d):
    """A discrepancy argument as the library takes it: ``"default"`` is :func:`default_discrepancy`; a
    :class:`Discrepancy` or None (without the term) as given."""
    return default_discrepancy() if isinstance(d, str) and d == "default" else d


def calibrate(backtests: Mapping[str, object], axes=TERMS, source: str = "", relative: bool = True) -> tuple[Discrepancy, dict]:
    """The discrepancy scales that maximise the held-out runs' total log predictive density over ``backtests``
    (``{corpus: backtest}``, each with ``log_score(tau)``; each corpus weighs the same, by its mean log score), and
    its spread: ``log_sd`` is the standard deviation,
    over the corpora, of the log of the common factor on tau that each corpus alone prefers (how much the right
    scale varies between data sets, which is what a new data set faces). Returns the discrepancy and a record:
    per corpus, its preferred factor and log scores."""
    from scipy.optimize import minimize

    axes = tuple(axes)

    def total(log_tau, items):
        # each corpus weighs the same (its mean log score), so that the largest does not set the scale alone
        tau = dict(zip(axes, np.exp(log_tau)))
        return -sum(bt.log_score(tau, relative=relative) / len(bt.points) for bt in items)

    items = list(backtests.values())
    x0 = np.full(len(axes), np.log(0.5 if relative else 0.01))
    res = minimize(total, x0, args=(items,), method="Nelder-Mead",
                   options={"xatol": 1e-3, "fatol": 1e-3, "maxiter": 400})
    log_tau = np.clip(res.x, np.log(1e-5), np.log(10.0))
    tau = dict(zip(axes, np.exp(log_tau)))
    grid = np.exp(np.linspace(-3.0, 3.0, 61))
    record = {"tau": {k: float(v) for k, v in tau.items()}, "corpora": {}}
    logs = []
    for name, bt in backtests.items():
        scores = np.array([bt.log_score({k: g * v for k, v in tau.items()}, relative=relative) for g in grid])
        best = float(grid[int(np.argmax(scores))])
        logs.append(np.log(best))
        record["corpora"][name] = {"preferred_factor": best, "log_score_pooled_tau": float(bt.log_score(tau, relative=relative)),
                                   "log_score_no_discrepancy": float(bt.log_score(None))}
    log_sd = float(np.std(logs, ddof=1)) if len(logs) > 1 else 1.0
    record["log_sd"] = log_sd
    return Discrepancy(tau=tau, log_sd=log_sd, source=source or f"calibrated on {', '.join(backtests)}", relative=relative), record

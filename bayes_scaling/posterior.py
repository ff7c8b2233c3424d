"""The :class:`Posterior` record: draws, summaries, diagnostics in plain words, derived-quantity intervals,
predictive checks, arviz conversion and lossless NetCDF save/load.

Draws are NumPy arrays shaped ``(chain, draw)`` (``log_loss_mean``: ``(chain, draw, run)``), keyed by the
paper's symbols. Intervals: ``prob`` is the mass (default 0.9); ``eti`` equal-tailed, ``hdi`` highest
density. Derived quantities are the functions of :mod:`bayes_scaling.derived`, vmapped over every draw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from . import derived
from .diagnostics import ESS_MIN, RHAT_MAX, ess_bulk, ess_tail, rhat
from .laws import Law, get_law
from .noise import sample_unit

__all__ = ["Posterior", "interval", "hdi"]

DEFAULT_PROB = 0.9


def interval(x, prob: float = DEFAULT_PROB) -> tuple[float, float]:
    """Equal-tailed interval of mass ``prob`` over all draws."""
    x = np.asarray(x, float).ravel()
    lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
    return float(lo), float(hi)


def hdi(x, prob: float = DEFAULT_PROB) -> tuple[float, float]:
    """Highest-density interval of mass ``prob`` (the shortest interval holding that share of draws)."""
    x = np.sort(np.asarray(x, float).ravel())
    n = len(x)
    k = max(int(np.ceil(prob * n)), 1)
    if k >= n:
        return float(x[0]), float(x[-1])
    widths = x[k - 1:] - x[: n - k + 1]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + k - 1])


def _check_prob(prob):
    if not 0 < prob < 1:
        raise ValueError(f"prob must be between 0 and 1 (the interval's mass), got {prob}")


@dataclass(frozen=True, eq=False)
class Posterior:
    law: Law
    draws: dict[str, np.ndarray]
    noise: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    log_loss_mean: np.ndarray | None = field(default=None, repr=False)
    observed: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    settings: dict[str, Any] = field(default_factory=dict)
    point_fit: dict[str, Any] = field(default_factory=dict, repr=False)
    source: str = ""

    # ---- shapes and flat access -------------------------------------------------------------
    @property
    def num_chains(self) -> int:
        return int(next(iter(self.draws.values())).shape[0])

    @property
    def num_draws(self) -> int:
        return int(next(iter(self.draws.values())).shape[1])

    def flat(self) -> dict[str, np.ndarray]:
        """Every law parameter's draws flattened to ``(chain * draw,)``."""
        return {k: v.reshape(-1) for k, v in self.draws.items()}

    def _jax_params(self):
        return {k: jnp.asarray(v.reshape(-1)) for k, v in self.draws.items()}

    # ---- summaries ----------------------------------------------------------------------------
    def summary(self, prob: float = DEFAULT_PROB):
        """A DataFrame, one row per parameter (noise included): mean, sd, median, equal-tailed and HDI
        interval of mass ``prob``, R-hat, bulk and tail ESS."""
        import pandas as pd

        _check_prob(prob)
        rows = {}
        fixed = self.law.fixed_values
        pct = f"{100 * prob:g}%"
        for name, x in list(self.draws.items()) + list(self.noise.items()):
            if name in fixed:
                continue
            lo, hi = interval(x, prob)
            hlo, hhi = hdi(x, prob)
            rows[name] = {
                "mean": float(np.mean(x)), "sd": float(np.std(x, ddof=1)), "median": float(np.median(x)),
                f"eti_{pct}_lo": lo, f"eti_{pct}_hi": hi, f"hdi_{pct}_lo": hlo, f"hdi_{pct}_hi": hhi,
                "r_hat": rhat(x), "ess_bulk": ess_bulk(x), "ess_tail": ess_tail(x),
            }
        return pd.DataFrame.from_dict(rows, orient="index")

    def diagnostics(self, *, budgets=None) -> dict[str, Any]:
        """Sampler health and identifiability, with a plain-words warning and advice for each problem.

        Returns ``{"ok": bool, "divergences": int, "max_r_hat": float, "min_ess_bulk": float,
        "min_ess_tail": float, "warnings": [str, ...]}``. ``budgets`` (FLOPs) adds an extrapolation check.
        """
        warnings_ = []
        div = int(np.sum(self.sample_stats["diverging"]))
        total = self.num_chains * self.num_draws
        if div:
            warnings_.append(
                f"{div} of {total} transitions diverged: the sampler met curvature it could not follow, so the "
                "posterior may be biased. Raise target_accept (e.g. 0.95-0.99), or fix poorly identified parameters."
            )
        table = self.summary()
        bad_r = table[table["r_hat"] > RHAT_MAX]
        if len(bad_r):
            warnings_.append(
                f"R-hat above {RHAT_MAX} for {', '.join(bad_r.index)} (max {table['r_hat'].max():.3f}): the chains "
                "disagree, so they have not mixed. Run longer (num_warmup, num_samples), or check for multiple modes."
            )
        low = table[(table["ess_bulk"] < ESS_MIN) | (table["ess_tail"] < ESS_MIN)]
        if len(low):
            warnings_.append(
                f"effective sample size below {ESS_MIN} for {', '.join(low.index)} (min bulk {table['ess_bulk'].min():.0f}, "
                f"tail {table['ess_tail'].min():.0f}): intervals are noisy. Draw more samples or more chains."
            )
        flat = self.flat()
        free = [n for n in self.law.free_names if np.std(flat[n]) > 0]
        if len(free) >= 2:
            M = np.stack([np.log(flat[n]) if self.law.param(n).log else flat[n] for n in free])
            R = np.corrcoef(M)
            for i in range(len(free)):
                for j in range(i + 1, len(free)):
                    if abs(R[i, j]) > 0.95:
                        warnings_.append(
                            f"{free[i]} and {free[j]} are strongly correlated in the posterior (r = {R[i, j]:+.3f}): "
                            "the data pin down a combination of them, not each one; trust derived quantities "
                            "(forecasts) over the individual values, or fix one of them."
                        )
        obs = self.observed
        if budgets is not None and ("C" in obs or ("N" in obs and "D" in obs)):
            cmax = float(np.max(self.observed["C"])) if "C" in self.observed else float(np.max(6 * self.observed["N"] * self.observed["D"]))
            for C in np.atleast_1d(budgets if budgets is not None else []):
                if C > 1e3 * cmax:
                    warnings_.append(
                        f"budget {C:.3g} FLOPs is {C / cmax:.0f}x the largest run ({cmax:.3g}): an extrapolation this "
                        "far rests on the law's form holding; treat its interval as a lower bound on the uncertainty."
                    )
        return {
            "ok": not warnings_ or (div == 0 and not len(bad_r) and not len(low)),
            "divergences": div,
            "max_r_hat": float(np.nanmax(table["r_hat"])),
            "min_ess_bulk": float(np.nanmin(table["ess_bulk"])),
            "min_ess_tail": float(np.nanmin(table["ess_tail"])),
            "warnings": warnings_,
        }

    # ---- derived quantities over draws --------------------------------------------------------
    def derive(self, fn: Callable[[Mapping[str, Any]], Any]) -> np.ndarray:
        """``fn(params)`` (a jax function of one parameter dict) at every draw, shaped ``(chain, draw, ...)``."""
        out = jax.jit(jax.vmap(fn))(self._jax_params())
        out = np.asarray(out)
        return out.reshape((self.num_chains, self.num_draws) + out.shape[1:])

    def _sigma(self, C=None) -> np.ndarray:
        """Noise scale draws: (chain, draw) for a scalar or no ``C``, (chain, draw, run) for an array of
        computes; scaled by compute when the noise varies with it."""
        lift = (lambda a: a[..., None]) if np.ndim(C) else (lambda a: a)
        sigma = lift(self.noise["sigma"])
        if "gamma" not in self.noise or C is None:
            return sigma
        return sigma * np.exp(lift(self.noise["gamma"]) * (np.log(C) - self.settings["center"]["__logC__"]))

    def _unit_noise(self, key, size) -> np.ndarray:
        return sample_unit(key, self.settings.get("likelihood", "student_t"), self.settings.get("shape", 4.0), size)

    def _new_run_noise(self, key, shape, C=None):
        """Draws of one new run's log-loss noise under the fitted likelihood, one per posterior draw."""
        return self._unit_noise(key, shape).reshape(-1) * self._sigma(C).reshape(-1)

    def forecast(self, budgets, *, prob: float = DEFAULT_PROB, inputs=None, seed: int = 0):
        """Per budget: median and ``prob`` equal-tailed interval of N_opt, D_opt, D/N and L* (the mean law),
        and the posterior-predictive interval of the loss one new run at the optimum would reach."""
        import pandas as pd

        _check_prob(prob)
        law = self.law
        rows = []
        key = jax.random.PRNGKey(seed)
        for i, C in enumerate(np.atleast_1d(np.asarray(budgets, float))):
            row = {"budget": C}
            if "N" in law.inputs and "D" in law.inputs:
                N, D = (np.asarray(a) for a in jax.jit(jax.vmap(lambda p: derived.compute_optimal(law, p, C, inputs=inputs)))(self._jax_params()))
                for name, x in (("N_opt", N), ("D_opt", D), ("D/N", D / N)):
                    row[name] = float(np.median(x))
                    row[f"{name}_lo"], row[f"{name}_hi"] = interval(x, prob)
            L = np.asarray(jax.jit(jax.vmap(lambda p: derived.loss_at_optimum(law, p, C, inputs=inputs)))(self._jax_params()))
            row["L*"] = float(np.median(L))
            row["L*_lo"], row["L*_hi"] = interval(L, prob)
            y = L * np.exp(self._new_run_noise(jax.random.fold_in(key, i), L.shape, C))
            row["L_new_lo"], row["L_new_hi"] = interval(y, prob)
            rows.append(row)
        return pd.DataFrame(rows)

    def exponent_a(self) -> np.ndarray:
        """Draws of a = beta / (alpha + beta), the exponent of N_opt ∝ C^a (Chinchilla-form laws)."""
        return self.draws["beta"] / (self.draws["alpha"] + self.draws["beta"])

    def n_opt(self, C, *, inputs=None) -> np.ndarray:
        return self.derive(lambda p: derived.compute_optimal(self.law, p, C, inputs=inputs)[0])

    def compute_for_loss(self, loss, *, inputs=None) -> np.ndarray:
        """Draws of the compute needed to reach ``loss`` (inf where the draw's floor is above it)."""
        return self.derive(lambda p: derived.compute_for_loss(self.law, p, loss, inputs=inputs))

    def loss_of_plan(self, N, D, *, prob: float = DEFAULT_PROB, inputs=None, seed: int = 0) -> dict[str, float]:
        """Median and intervals of a planned model's loss: of the mean law, and predictive for one run."""
        _check_prob(prob)
        L = self.derive(lambda p: derived.loss_of_plan(self.law, p, N, D, inputs=inputs)).reshape(-1)
        y = L * np.exp(self._new_run_noise(jax.random.PRNGKey(seed), L.shape, 6.0 * N * D))
        lo, hi = interval(L, prob)
        plo, phi = interval(y, prob)
        return {"median": float(np.median(L)), "lo": lo, "hi": hi, "predictive_lo": plo, "predictive_hi": phi}

    @staticmethod
    def probability(draws, threshold, *, greater: bool = True) -> float:
        """P(quantity > threshold) (or < with ``greater=False``) as the share of draws, e.g.
        ``post.probability(post.n_opt(1e24), 7e10)`` = P(N_opt(1e24) > 70B)."""
        x = np.asarray(draws).reshape(-1)
        return float(np.mean(x > threshold) if greater else np.mean(x < threshold))

    # ---- predictive checks -------------------------------------------------------------------
    def posterior_predictive(self, *, seed: int = 0) -> np.ndarray:
        """Replicated losses for the observed runs, ``(chain, draw, run)``."""
        mu = self.log_loss_mean
        obs = self.observed
        C = (obs["C"] if "C" in obs else 6 * obs["N"] * obs["D"]) if "gamma" in self.noise else np.ones(mu.shape[-1])
        return np.exp(mu + self._sigma(C) * self._unit_noise(jax.random.PRNGKey(seed), mu.shape))

    def predictive_check(self, prob: float = DEFAULT_PROB, *, seed: int = 0) -> dict[str, float]:
        """Share of observed runs inside their ``prob`` posterior-predictive interval (near ``prob`` when
        the model fits), and the Bayesian p-value of the residual spread."""
        rep = self.posterior_predictive(seed=seed).reshape(-1, self.log_loss_mean.shape[-1])
        y = self.observed["loss"]
        lo, hi = np.quantile(rep, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        inside = float(np.mean((y >= lo) & (y <= hi)))
        mu = self.log_loss_mean.reshape(-1, y.shape[0])
        obs_sd = np.std(np.log(y)[None, :] - mu, axis=1)
        rep_sd = np.std(np.log(rep) - mu, axis=1)
        return {"coverage": inside, "prob": prob, "p_value_spread": float(np.mean(rep_sd >= obs_sd))}

    # ---- arviz and files ---------------------------------------------------------------------
    def to_inference_data(self):
        """arviz InferenceData: groups posterior, sample_stats, observed_data, constant_data; dims chain, draw, run."""
        import arviz as az

        posterior = {k: v for k, v in self.draws.items()} | dict(self.noise)
        if self.log_loss_mean is not None:
            posterior["log_loss_mean"] = self.log_loss_mean
        obs = {"loss": self.observed["loss"]} if "loss" in self.observed else {}
        const = {k: v for k, v in self.observed.items() if k != "loss"}
        attrs = {
            "law": self.law.name,
            "formula": self.law.formula,
            "fixed": json.dumps(self.law.fixed_values),
            "settings": json.dumps(self.settings, default=float),
            "point_fit": json.dumps(self.point_fit, default=float),
            "source": self.source,
            "inference_library": "numpyro",
            "created_by": "bayes_scaling",
        }
        idata = az.from_dict(
            posterior=posterior,
            sample_stats=dict(self.sample_stats),
            observed_data=obs,
            constant_data=const,
            dims={"log_loss_mean": ["run"], "loss": ["run"], **{k: ["run"] for k in const}},
        )
        idata.posterior.attrs.update(attrs)
        return idata

    def save(self, path, *, overwrite: bool = False) -> None:
        """Write the posterior to NetCDF (lossless: every draw, sample stat, setting)."""
        import os

        path = os.fspath(path)
        if os.path.exists(path) and not overwrite:
            raise ValueError(f"{path} exists; not overwriting it (pass overwrite=True)")
        self.to_inference_data().to_netcdf(path)

    @classmethod
    def load(cls, path, law: Law | None = None) -> "Posterior":
        """Read a posterior written by :meth:`save`. A user-declared law must be registered (or passed)."""
        import arviz as az

        idata = az.from_netcdf(path)
        attrs = dict(idata.posterior.attrs)
        fixed = json.loads(attrs.get("fixed", "{}"))
        if law is None:
            law = get_law(attrs["law"])
            if fixed:
                law = law.fix(**fixed)
        post = idata.posterior
        draws = {k: np.asarray(post[k].values) for k in law.param_names if k in post}
        noise = {k: np.asarray(post[k].values) for k in ("sigma", "gamma", "nu") if k in post}
        stats = {k: np.asarray(idata.sample_stats[k].values) for k in idata.sample_stats.data_vars}
        observed = {}
        if hasattr(idata, "observed_data"):
            observed.update({k: np.asarray(idata.observed_data[k].values) for k in idata.observed_data.data_vars})
        if hasattr(idata, "constant_data"):
            observed.update({k: np.asarray(idata.constant_data[k].values) for k in idata.constant_data.data_vars})
        settings = json.loads(attrs.get("settings", "{}"))
        return cls(
            law=law,
            draws=draws,
            noise=noise,
            sample_stats=stats,
            log_loss_mean=np.asarray(post["log_loss_mean"].values) if "log_loss_mean" in post else None,
            observed=observed,
            settings=settings,
            point_fit=json.loads(attrs.get("point_fit", "{}")),
            source=attrs.get("source", ""),
        )

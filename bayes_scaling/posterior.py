"""The :class:`Posterior` record: draws, summaries, diagnostics in plain words, derived-quantity intervals,
predictive checks, arviz conversion and lossless NetCDF save/load.

Draws are NumPy arrays shaped ``(chain, draw)`` (``log_loss_mean``: ``(chain, draw, run)``), keyed by the
paper's symbols. Intervals: ``prob`` is the mass (default 0.9); ``eti`` equal-tailed, ``hdi`` highest
density. Derived quantities are the functions of :mod:`bayes_scaling.derived`, vmapped over every draw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import derived
from .defaults import PROB as DEFAULT_PROB
from .defaults import compute_of
from .diagnostics import Health, ess_bulk, ess_tail, health, rhat
from .laws import Law, get_law
from .noise import sample_unit, shape_from_settings

__all__ = ["Posterior", "interval", "hdi"]



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


def max_compute(observed: Mapping[str, Any]) -> float | None:
    """The largest training compute among observed runs: C where given, else 6 N D; ``None`` if unknown."""
    if "C" in observed:
        return float(np.max(observed["C"]))
    if "N" in observed and "D" in observed:
        return float(np.max(compute_of(np.asarray(observed["N"]), np.asarray(observed["D"]))))
    return None


def positive_number(x, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {x!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} = {x!r}: must be a positive, finite number")
    return v


def check_prob(prob):
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

        check_prob(prob)
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

    def health(self) -> Health:
        """Sampler health over the free parameters and the noise parameters (:class:`~bayes_scaling.diagnostics.Health`)."""
        values = {**self.draws, **self.noise}
        names = [n for n in self.law.free_names] + list(self.noise)
        return health({n: values[n] for n in names if n not in self.law.fixed_values}, self.sample_stats["diverging"])

    def diagnostics(self, *, budgets=None) -> dict[str, Any]:
        """Sampler health, the data's and the fit's problems, and identifiability, each in plain words with advice.

        Returns ``{"ok", "sampler_ok", "divergences", "max_r_hat", "min_ess_bulk", "min_ess_tail", "problems",
        "warnings"}``: ``sampler_ok`` is the sampler's health (:func:`~bayes_scaling.diagnostics.health`);
        ``problems`` what makes the numbers untrustworthy besides (too few runs, inputs that do not identify the law,
        exponents at a bound, a law that explains little of the losses, non-finite or absurd forecasts, and with
        ``budgets`` forecasts at 100x the largest run or more); ``ok`` is true when neither applies. ``warnings``
        holds every sentence of both; ``notes`` the strong correlations of the coordinates the sampler moves in
        (advice on reading the parameters, not a failure)."""
        from . import checks

        h = self.health()
        problems = list(self.settings.get("data_warnings", []))
        med = {k: float(np.median(v)) for k, v in self.draws.items()}
        explained = None
        if self.log_loss_mean is not None and "loss" in self.observed:
            explained = checks.explained_share(np.log(self.observed["loss"]),
                                               self.log_loss_mean.reshape(-1, self.log_loss_mean.shape[-1]).mean(axis=0))
        table = None
        if budgets is not None and (derived._is_ND(self.law) or derived._is_C(self.law)):
            try:
                table = self.forecast(budgets)
            except ValueError:  # a law needing other inputs for its forecast: the caller's forecast reports it
                table = None
        problems += checks.fit_warnings(self.law, med, explained=explained, forecast=table)
        if budgets is not None:
            problems += checks.extrapolation_warnings(budgets, self.max_compute())
        problems = list(dict.fromkeys(problems))
        return {"ok": h.ok and not problems, "sampler_ok": h.ok, "divergences": h.divergences,
                "max_r_hat": h.max_r_hat, "min_ess_bulk": h.min_ess_bulk, "min_ess_tail": h.min_ess_tail,
                "problems": problems, "warnings": list(h.warnings) + problems, "notes": self._correlation_notes()}

    def sampled_coordinates(self) -> dict[str, np.ndarray]:
        """The free parameters' draws in the coordinates NUTS moved in: log of scale parameters, exponents as they
        are, and each centred scale as log of its term at the data's centre (log A - alpha log N0 for Chinchilla)."""
        from .model import centred_terms

        flat = self.flat()
        center = self.settings.get("center", {})
        out = {}
        centred = {s: (e, i, sg) for s, e, i, sg in centred_terms(self.law)}
        for n in self.law.free_names:
            x = np.log(flat[n]) if self.law.param(n).log else flat[n]
            if n in centred and centred[n][1] in center:
                e, inp, sign = centred[n]
                x = x - sign * flat[e] * center[inp]
                n = f"log_{n}_c"
            out[n] = x
        return out

    def _correlation_notes(self) -> list[str]:
        coords = {k: v for k, v in self.sampled_coordinates().items() if np.std(v) > 0}
        names = list(coords)
        out = []
        if len(names) < 2:
            return out
        R = np.corrcoef(np.stack([coords[n] for n in names]))
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                if abs(R[i, j]) > 0.95:
                    out.append(f"{names[i]} and {names[j]} are correlated (r = {R[i, j]:+.3f}) even in the centred coordinates "
                               "the sampler moves in: the runs fix a combination of the two, not each one. The sampler's dense "
                               "mass matrix follows such a straight ridge (its health is reported above), so this is not a "
                               "sampling failure; read these two parameters one at a time with care, and rely on the forecasts "
                               "(N_opt, D_opt, L*), which depend on the combination")
        return out

    # ---- derived quantities over draws --------------------------------------------------------
    def derive(self, fn: Callable[[Mapping[str, Any]], Any]) -> np.ndarray:
        """``fn(params)`` (a jax function of one parameter dict) at every draw, shaped ``(chain, draw, ...)``."""
        out = jax.jit(jax.vmap(fn))(self._jax_params())
        out = np.asarray(out)
        return out.reshape((self.num_chains, self.num_draws) + out.shape[1:])

    def noise_scale(self, C=None) -> np.ndarray:
        """Noise scale draws: (chain, draw) for a scalar or no ``C``, (chain, draw, run) for an array of
        computes; scaled by compute when the noise varies with it."""
        lift = (lambda a: a[..., None]) if np.ndim(C) else (lambda a: a)
        sigma = lift(self.noise["sigma"])
        if "gamma" not in self.noise or C is None:
            return sigma
        return self.flat_noise_scale(C).reshape(sigma.shape[:2] + np.shape(C))

    def flat_noise_scale(self, C) -> np.ndarray:
        """Noise scale per flat draw, ``(draw, point)``, at computes ``C`` shaped ``(point,)`` (the same for every draw)
        or ``(draw, point)`` (each draw its own, e.g. the compute of each draw's optimum)."""
        C = np.atleast_1d(np.asarray(C, float))
        sigma = self.noise["sigma"].reshape(-1, 1)
        if "gamma" not in self.noise:
            return np.broadcast_to(sigma, np.broadcast_shapes(sigma.shape, C.shape))
        return sigma * np.exp(self.noise["gamma"].reshape(-1, 1) * (np.log(C) - self.settings["center"]["__logC__"]))

    def _unit_noise(self, seed, size) -> np.ndarray:
        return sample_unit(seed, self.settings.get("likelihood", "student_t"), shape_from_settings(self.settings), size)

    def _new_run_noise(self, seed, shape, C=None):
        """Draws of one new run's log-loss noise under the fitted likelihood, one per posterior draw."""
        return self._unit_noise(seed, shape).reshape(-1) * self.noise_scale(C).reshape(-1)

    def max_compute(self) -> float | None:
        """The largest training compute among the runs the posterior was sampled on (C, or 6ND), if known."""
        return max_compute(self.observed)

    def forecast(self, budgets, *, prob: float = DEFAULT_PROB, inputs=None, seed: int = 0):
        """Per budget: median and ``prob`` equal-tailed interval of N_opt, D_opt, D/N and L* (the mean law), the
        posterior-predictive interval of the loss one new run at the optimum would reach, and ``extrapolation``:
        the budget over the largest run's compute (NaN where the runs' compute is unknown)."""
        import pandas as pd

        check_prob(prob)
        budgets = derived.check_budgets(budgets)
        out = derived.over_draws(self.law, "frontier", self.flat(), budgets, inputs=inputs)
        cmax = self.max_compute()
        rows = []
        for i, C in enumerate(budgets):
            row = {"budget": float(C)}
            if "N_opt" in out:
                N, D = out["N_opt"][:, i], out["D_opt"][:, i]
                for name, x in (("N_opt", N), ("D_opt", D), ("D/N", D / N)):
                    row[name] = float(np.median(x))
                    row[f"{name}_lo"], row[f"{name}_hi"] = interval(x, prob)
            L = out["L*"][:, i]
            row["L*"] = float(np.median(L))
            row["L*_lo"], row["L*_hi"] = interval(L, prob)
            y = L * np.exp(self._new_run_noise((seed, i), L.shape, C))
            row["L_new_lo"], row["L_new_hi"] = interval(y, prob)
            row["extrapolation"] = float(C / cmax) if cmax else float("nan")
            rows.append(row)
        return pd.DataFrame(rows)

    def exponent_a(self) -> np.ndarray:
        """Draws of a = beta / (alpha + beta), the exponent of N_opt ∝ C^a (Chinchilla-form laws)."""
        return self.draws["beta"] / (self.draws["alpha"] + self.draws["beta"])

    def _shaped(self, x) -> np.ndarray:
        """``(draw, point)`` -> ``(chain, draw)`` for one point, ``(chain, draw, point)`` for several."""
        x = np.asarray(x)
        return x.reshape((self.num_chains, self.num_draws) + x.shape[1:])

    def n_opt(self, C, *, inputs=None) -> np.ndarray:
        """Draws of N_opt at budget(s) ``C``: ``(chain, draw)`` for one budget, ``(chain, draw, budget)`` for several."""
        b = derived.check_budgets(C)
        n = derived.over_draws(self.law, "frontier", self.flat(), b, inputs=inputs)["N_opt"]
        return self._shaped(n[:, 0] if np.ndim(C) == 0 else n)

    def compute_for_loss(self, loss, *, inputs=None) -> np.ndarray:
        """Draws of the compute needed to reach ``loss`` (inf where the draw's floor is above it)."""
        c = derived.over_draws(self.law, "compute_for_loss", self.flat(), np.atleast_1d(np.asarray(loss, float)), inputs=inputs)
        return self._shaped(c[:, 0] if np.ndim(loss) == 0 else c)

    def loss_of_plan(self, N, D, *, prob: float = DEFAULT_PROB, inputs=None, seed: int = 0) -> dict[str, float]:
        """Median and intervals of a planned model's loss: of the mean law, and predictive for one run."""
        check_prob(prob)
        N, D = positive_number(N, "N"), positive_number(D, "D")
        L = derived.over_draws(self.law, "loss_of_plan", self.flat(), np.array([[N, D]]), inputs=inputs)[:, 0]
        y = L * np.exp(self._new_run_noise(seed, L.shape, compute_of(N, D)))
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
        C = (obs["C"] if "C" in obs else compute_of(obs["N"], obs["D"])) if "gamma" in self.noise else np.ones(mu.shape[-1])
        return np.exp(mu + self.noise_scale(C) * self._unit_noise(seed, mu.shape))

    def log_likelihood(self) -> np.ndarray:
        """log p(loss_i | draw) of each observed run, ``(chain, draw, run)``: the density of the loss (the noise
        density of log loss at the residual, minus log loss), what PSIS-LOO and stacking compare laws by."""
        from .noise import noise_model

        obs, mu = self.observed, self.log_loss_mean
        C = (obs["C"] if "C" in obs else compute_of(obs["N"], obs["D"])) if "gamma" in self.noise else None
        scale = self.noise_scale(C) if C is not None else self.noise["sigma"][..., None]
        shape = self.noise["nu"][..., None] if "nu" in self.noise else shape_from_settings(self.settings)
        logy = np.log(obs["loss"])
        lp = noise_model(self.settings.get("likelihood", "student_t"), legacy=True).logpdf(logy - mu, scale, shape)
        return np.asarray(lp) - logy

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
    def to_arviz(self):
        """arviz InferenceData (the name every result type answers to); see :meth:`to_inference_data`."""
        return self.to_inference_data()

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
    def load(cls, path, law: Law | None = None) -> Posterior:
        """Read a posterior written by :meth:`save`. A user-declared law must be registered (or passed)."""
        import os

        import arviz as az

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"{path}: no such file")
        try:
            idata = az.from_netcdf(path)
            attrs = dict(idata.posterior.attrs)
        except Exception as err:  # a CSV, a truncated or foreign file: say so in one line
            reason = " ".join(str(err).split())[:160] or type(err).__name__
            raise ValueError(f"{path}: not a posterior saved by bayes_scaling (posterior.nc, NetCDF); it cannot be read: "
                             f"{reason}") from None
        if attrs.get("created_by") != "bayes_scaling" or "law" not in attrs:
            raise ValueError(f"{path}: a NetCDF file, but not a posterior saved by bayes_scaling (no law recorded in it)")
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


def assemble(law: Law, samples: Mapping[str, Any], stats: Mapping[str, Any], *, observed, settings, point_fit, source,
             num_runs: int | None = None) -> Posterior:
    """A :class:`Posterior` from a sampler's site arrays ``(chain, draw, ...)``, the one assembly single and batch
    posteriors share: the law's parameters (fixed ones filled in), the noise sites (sigma, and gamma and nu where
    sampled), the sample stats, the runs' mean log loss (its first ``num_runs`` runs: padding dropped)."""
    shape = np.shape(samples["sigma"])[:2]
    draws = {p.name: np.asarray(samples[p.name]) for p in law.params if p.name in samples}
    for name, value in law.fixed_values.items():
        draws[name] = np.full(shape, value)
    for tied, target in law.ties:
        draws[tied] = draws[target]
    noise = {n: np.asarray(samples[n]) for n in ("sigma", "gamma", "nu") if n in samples}
    mean = np.asarray(samples["log_loss_mean"])
    return Posterior(law=law, draws=draws, noise=noise, sample_stats={k: np.asarray(v) for k, v in stats.items()},
                     log_loss_mean=mean if num_runs is None else mean[..., :num_runs], observed=observed,
                     settings=settings, point_fit=point_fit, source=source)

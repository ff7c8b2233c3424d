"""Hierarchical pooling across run families (issue 4).

Families (data mixtures, architectures, ...) often share a law's exponents while the offsets differ (data
quality moves E, A, B, not the slopes). ``sample_hierarchical(law, runs, pool=...)`` fits all families in
one NumPyro model, with a pooling mode per parameter:

* ``"none"``: each family has its own value, from the law's prior (the default for scales and E);
* ``"complete"``: one value shared by every family;
* ``"partial"``: family values drawn from a population, value_f = m * exp(tau z_f) for positive
  parameters (m from the law's prior, tau ~ HalfNormal(0.2), z_f ~ Normal(0, 1), non-centred), or
  m + tau z_f for real-valued ones. The population (m, tau) is reported.

Default: exponents (parameters fitted on the raw scale, e.g. alpha, beta) ``"complete"``, the rest
``"none"``. Scales listed in ``law.centering`` are sampled as their term's value at the data's centre, as in
the single-family model; each family has its own noise scale sigma_f ~ HalfNormal(0.1), and the likelihood
on log loss is Student-t (nu = 4) or Gaussian. The law's one ``log_loss`` is vmapped over families and runs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from .. import checks, derived
from ..batch import make_batch
from ..data import as_runs
from ..diagnostics import ESS_MIN, RHAT_MAX, Health, ess_bulk, health, rhat
from ..fitting import fit_point
from ..keys import seed_record
from ..laws import Law, get_law
from ..model import NOISE_SCALE, centred_terms, log_likelihood, start_sigma
from ..noise import sample_unit, shape_from_settings, shape_of, shape_settings
from ..posterior import interval
from ..priors import positive_support
from ..sampling import check_sampler_size, run_nuts

__all__ = ["make_hierarchical_model", "sample_hierarchical", "HierarchicalPosterior", "POOLING"]

POOLING = ("none", "partial", "complete")
TAU_SCALE = 0.2


def _pooling(law: Law, pool: Mapping[str, str] | None) -> dict[str, str]:
    pool = dict(pool or {})
    unknown = set(pool) - set(law.free_names)
    if unknown:
        raise ValueError(f"pool names {sorted(unknown)}, not free parameters of law {law.name!r} ({', '.join(law.free_names)})")
    bad = {k: v for k, v in pool.items() if v not in POOLING}
    if bad:
        raise ValueError(f"pooling must be one of {POOLING}; got {bad}")
    centred = {t[0] for t in centred_terms(law)}
    out = {}
    for p in law.free_params:
        default = "complete" if not p.log else "none"
        mode = pool.get(p.name, default)
        if p.name in centred and mode == "partial":
            raise ValueError(f"{p.name} is sampled centred; pool it 'none' or 'complete' (pool its exponent instead)")
        out[p.name] = mode
    return out


def make_hierarchical_model(law, *, pool=None, likelihood: str = "student_t", nu: float | None = None,
                            k: float | None = None, noise_scale: float = NOISE_SCALE):
    """The hierarchical NumPyro model: ``model(X, logy, mask, center)`` with ``X[k]``, ``logy``, ``mask``
    shaped ``(family, run)``."""
    law = get_law(law)
    modes = _pooling(law, pool)
    shape = shape_of(likelihood, nu, k)
    if shape == "learn":
        raise ValueError("nu='learn' is for sample_posterior; the hierarchical model takes a number")
    centred = {scale: (exponent, inp, sign) for scale, exponent, inp, sign in centred_terms(law)}
    fixed = law.fixed_values

    def model(X, logy, mask, center):
        F = logy.shape[0]
        vals: dict[str, Any] = {k: jnp.full((F,), v) for k, v in fixed.items()}
        for p in law.free_params:
            if p.name in centred:
                continue
            mode = modes[p.name]
            if mode == "complete":
                vals[p.name] = jnp.broadcast_to(numpyro.sample(p.name, p.prior), (F,))
            elif mode == "none":
                with numpyro.plate("family", F):
                    vals[p.name] = numpyro.sample(p.name, p.prior)
            else:
                m = numpyro.sample(f"{p.name}_pop", p.prior)
                tau = numpyro.sample(f"{p.name}_tau", dist.HalfNormal(TAU_SCALE))
                with numpyro.plate("family", F):
                    z = numpyro.sample(f"{p.name}_z", dist.Normal(0.0, 1.0))
                # partial pooling multiplies a parameter whose prior's support is positive (m exp(tau z)), shifts others
                vals[p.name] = numpyro.deterministic(p.name, m * jnp.exp(tau * z) if positive_support(p.prior) else m + tau * z)
        for p in law.free_params:
            if p.name not in centred:
                continue
            exponent, inp, sign = centred[p.name]
            if modes[p.name] == "complete":
                logT = jnp.broadcast_to(numpyro.sample(f"log_{p.name}_c", dist.ImproperUniform(constraints.real, (), ())), (F,))
            else:
                with numpyro.plate("family", F):
                    logT = numpyro.sample(f"log_{p.name}_c", dist.ImproperUniform(constraints.real, (), ()))
            logS = logT + sign * vals[exponent] * center[inp]
            S = numpyro.deterministic(p.name, jnp.exp(logS))
            term = p.prior.log_prob(S) + logS
            numpyro.factor(f"{p.name}_prior", term[0] if modes[p.name] == "complete" else jnp.sum(term))
            vals[p.name] = S
        with numpyro.plate("family", F):
            sigma = numpyro.sample("sigma", dist.HalfNormal(noise_scale))
        mu = jax.vmap(lambda pv, x: law.log_loss_runs(pv, x))(vals, {k: X[k] for k in law.inputs})
        numpyro.factor("log_likelihood", log_likelihood(likelihood, logy - mu, sigma[:, None], shape, mask))

    model.law, model.modes, model.centred, model.shape, model.likelihood = law, modes, centred, shape, likelihood
    return model


@dataclass(frozen=True, eq=False)
class HierarchicalPosterior:
    """Posterior of a hierarchical fit: ``draws[name]`` shaped ``(chain, draw, family)`` for every law
    parameter (shared ones repeated), ``population`` the (m, tau) of partially pooled ones, ``noise`` sigma per
    family."""

    law: Law
    families: tuple[str, ...]
    modes: dict[str, str]
    draws: dict[str, np.ndarray]
    population: dict[str, np.ndarray]
    noise: dict[str, np.ndarray]
    sample_stats: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def to_arviz(self):
        """arviz InferenceData: the law's parameters and sigma with dims (chain, draw, family), the population
        parameters, the sample stats; family names as the ``family`` coordinate."""
        import json

        import arviz as az

        posterior = {k: np.asarray(v) for k, v in self.draws.items()} | {k: np.asarray(v) for k, v in self.noise.items()}
        posterior |= {k: np.asarray(v) for k, v in self.population.items()}
        dims = {k: ["family"] for k in list(self.draws) + list(self.noise)}
        idata = az.from_dict(posterior=posterior, sample_stats={k: np.asarray(v) for k, v in self.sample_stats.items()},
                             coords={"family": list(self.families)}, dims=dims)
        idata.posterior.attrs.update({"analysis": "hierarchical", "law": self.law.name, "modes": json.dumps(self.modes),
                                      "settings": json.dumps(self.settings, default=str), "created_by": "bayes_scaling"})
        return idata

    def family(self, name: str) -> dict[str, np.ndarray]:
        """One family's draws of every law parameter, ``(chain, draw)``."""
        if name not in self.families:
            raise ValueError(f"no family {name!r}; the families are: {', '.join(map(repr, self.families))}")
        i = self.families.index(name)
        return {k: v[..., i] for k, v in self.draws.items()}

    def health(self) -> Health:
        """Sampler health over every family's parameters and the population ones; a family that has not mixed is
        named in the warnings, not averaged away."""
        return self._health()[0]

    def _health(self):
        named = {}
        for name, x in list(self.draws.items()) + [("sigma", self.noise["sigma"])]:
            if name in self.law.fixed_values:
                continue
            shared = self.modes.get(name) == "complete"
            for i, fam in enumerate(self.families[:1] if shared else self.families):
                named[name if shared else f"{name}[{fam}]"] = x[..., i]
        named.update({k: v for k, v in self.population.items()})
        h = health(named, self.sample_stats["diverging"])
        failing = sorted({fam for fam in self.families for k in named
                          if k.endswith(f"[{fam}]") and (h.r_hat[k] > RHAT_MAX or h.ess_bulk[k] < ESS_MIN
                                                          or h.ess_tail[k] < ESS_MIN)})
        warnings_ = tuple(h.warnings) + tuple(f"family {fam!r} has not mixed; run longer or check its runs" for fam in failing)
        return dataclasses.replace(h, warnings=warnings_), failing

    def diagnostics(self) -> dict[str, Any]:
        """:meth:`health` as a dict, with ``failing_families`` (by name) and the families left out (too few runs)."""
        h, failing = self._health()
        warnings_ = list(h.warnings)
        if self.settings.get("skipped"):
            warnings_.append("left out (too few runs): " + "; ".join(f"{f}: {w}" for f, w in self.settings["skipped"].items()))
        return {**h.to_dict(), "failing_families": failing, "warnings": warnings_}

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self.diagnostics()["warnings"])

    def _new_run_noise(self, seed, fam_index: int, size: int) -> np.ndarray:
        """One new run's log-loss noise per draw, under the fitted likelihood and the family's noise scale."""
        sigma = self.noise["sigma"][..., fam_index].reshape(-1)
        return sample_unit(seed, self.settings.get("likelihood", "student_t"), shape_from_settings(self.settings), (size,)) * sigma

    def forecast(self, budgets, *, prob: float = 0.9, seed: int = 0, inputs=None):
        """Per family and budget: median and ``prob`` interval of N_opt, D_opt, D/N and L* (the mean law), the
        interval of one new run's loss at the optimum (``L_new_lo``, ``L_new_hi``: the family's noise added), and
        ``extrapolation``: the budget over the largest run's compute (of all families)."""
        import pandas as pd

        from ..posterior import max_compute

        budgets = derived.check_budgets(budgets)
        cmax = max_compute(self.observed)
        rows = []
        for f, fam in enumerate(self.families):
            out = derived.over_draws(self.law, "frontier", {k: v.reshape(-1) for k, v in self.family(fam).items()}, budgets,
                                     inputs=inputs)
            for j, C in enumerate(budgets):
                row = {"family": fam, "budget": float(C)}
                cols = [("N_opt", out["N_opt"][:, j]), ("D_opt", out["D_opt"][:, j]),
                        ("D/N", out["D_opt"][:, j] / out["N_opt"][:, j])] if "N_opt" in out else []
                L = out["L*"][:, j]
                for name, x in cols + [("L*", L)]:
                    row[name] = float(np.median(x))
                    row[f"{name}_lo"], row[f"{name}_hi"] = interval(x, prob)
                y = L * np.exp(self._new_run_noise((seed, f, j), f, L.size))
                row["L_new_lo"], row["L_new_hi"] = interval(y, prob)
                row["extrapolation"] = float(C / cmax) if cmax else float("nan")
                rows.append(row)
        return pd.DataFrame(rows)

    def loss_of_plan(self, N, D, *, family: str | None = None, prob: float = 0.9, inputs=None, seed: int = 0):
        """A planned model's loss (``N`` parameters on ``D`` tokens) for each family (or the one named): median and
        ``prob`` interval of the mean law, and the predictive interval of one new run. A DataFrame, one row per family."""
        import pandas as pd

        from ..posterior import positive_number

        N, D = positive_number(N, "N"), positive_number(D, "D")
        if family is not None:
            self.family(family)  # an unknown name is a ValueError listing the families
        fams = self.families if family is None else (family,)
        rows = []
        for fam in fams:
            f = self.families.index(fam)
            L = derived.over_draws(self.law, "loss_of_plan", {k: v.reshape(-1) for k, v in self.family(fam).items()},
                                   np.array([[N, D]]), inputs=inputs)[:, 0]
            y = L * np.exp(self._new_run_noise((seed, f), f, L.size))
            lo, hi = interval(L, prob)
            plo, phi = interval(y, prob)
            rows.append({"family": fam, "N": N, "D": D, "median": float(np.median(L)), "lo": lo, "hi": hi,
                         "predictive_lo": plo, "predictive_hi": phi})
        return pd.DataFrame(rows)

    def summary(self, prob: float = 0.9):
        """One row per (family, parameter) for family-level values and one per population quantity."""
        import pandas as pd

        rows = []
        for name, x in self.draws.items():
            if name in self.law.fixed_values:
                continue
            fams = self.families if self.modes.get(name) != "complete" else ("(shared)",)
            for i, fam in enumerate(fams):
                v = x[..., i]
                lo, hi = interval(v, prob)
                rows.append({"family": fam, "parameter": name, "pooling": self.modes.get(name, "fixed"),
                             "median": float(np.median(v)), "lo": lo, "hi": hi, "r_hat": rhat(v), "ess_bulk": ess_bulk(v)})
        for name, v in self.population.items():
            lo, hi = interval(v, prob)
            rows.append({"family": "(population)", "parameter": name, "pooling": "partial", "median": float(np.median(v)),
                         "lo": lo, "hi": hi, "r_hat": rhat(v), "ess_bulk": ess_bulk(v)})
        return pd.DataFrame(rows)


def _pooled_start(law, model, modes, fit, F, center, noise_scale) -> dict[str, Any]:
    """The hierarchical model's sample sites at the pooled MAP point ``fit``, spread to the ``F`` families: shared
    parameters once, unpooled ones per family, partially pooled ones as population mean, small scale and zero
    offsets; centred scales as the log of their term at the data's centre."""
    shared = {name: float(fit.params[name]) for name in law.free_names}
    values: dict[str, Any] = {}
    for p in law.free_params:
        mode = modes[p.name]
        if p.name in model.centred:
            exponent, inp, sign = model.centred[p.name]
            logT = float(np.log(shared[p.name]) - sign * shared[exponent] * center[inp])
            values[f"log_{p.name}_c"] = logT if mode == "complete" else np.full(F, logT)
        elif mode == "complete":
            values[p.name] = shared[p.name]
        elif mode == "none":
            values[p.name] = np.full(F, shared[p.name])
        else:
            values[f"{p.name}_pop"] = shared[p.name]
            values[f"{p.name}_tau"] = 0.1
            values[f"{p.name}_z"] = np.zeros(F)
    values["sigma"] = np.full(F, start_sigma(fit.noise["sigma"], noise_scale))
    return values


def sample_hierarchical(law, runs, *, pool: Mapping[str, str] | None = None, likelihood: str = "student_t",
                        nu: float | None = None, k: float | None = None, noise_scale: float = NOISE_SCALE,
                        num_warmup: int = 1000,
                        num_samples: int = 1000, num_chains: int = 4, seed: int = 0, target_accept: float = 0.9,
                        chain_method: str = "auto", regularize_mass_matrix: bool = True,
                        progress_bar: bool = False) -> HierarchicalPosterior:
    """Sample the hierarchical posterior of ``law`` over the families of ``runs`` (a table loaded with
    ``family=``). Chains start at Laplace draws around the pooled posterior's mode, found from one MAP fit of
    all the families' runs together: the pooled model is identified even where no family alone is (three
    families of 5 runs), so no family needs enough runs for a fit of its own; families with fewer than 2 runs are
    left out and listed in ``settings["skipped"]``. ``regularize_mass_matrix`` (numpyro's shrinkage of the adapted metric) is on
    here: with many per-family parameters an unshrunk metric estimated from early warm-up can be singular."""
    law = get_law(law)
    runs = as_runs(runs)
    model = make_hierarchical_model(law, pool=pool, likelihood=likelihood, nu=nu, k=k, noise_scale=noise_scale)
    modes = model.modes
    if runs.family is None:
        raise ValueError(f"{runs.source}: no family column; load the table with family='COLUMN'")
    check_sampler_size(num_chains, num_warmup, num_samples, len(law.params) * 2 + len(runs))
    least = checks.min_runs(law, "posterior")
    skipped = {str(f): f"{n} run{'s' if n != 1 else ''}; a family needs at least {least} in a pooled posterior"
               for f, n in runs.family_sizes() if n < least}
    batch = make_batch(runs, min_runs=least)
    F = batch.num_families
    if F < 2:
        raise ValueError(f"{runs.source}: hierarchical pooling needs at least 2 families with {least}+ runs; "
                         f"found {F}" + (f" ({len(skipped)} smaller ones left out)" if skipped else ""))
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    X = {k: jnp.asarray(batch.inputs[k], dtype) for k in law.inputs}
    logy = jnp.asarray(np.log(batch.loss), dtype)
    mask = jnp.asarray(batch.mask, dtype)
    m = np.asarray(batch.mask, bool)
    center = {inp: float(np.mean(np.log(batch.inputs[inp][m]))) for _, _, inp, _ in centred_terms(law)}
    t0 = time.perf_counter()
    # the chains start at the pooled mode: one MAP fit of every family's runs together (identified whenever the
    # pooled model is, however few runs each family has), spread to every family, then polished to the
    # hierarchical posterior's own mode before sampling (sampling._laplace_fn)
    fit = fit_point(law, runs.select(np.isin(runs.family, batch.families)), objective=likelihood, prior=True,
                    noise_scale=noise_scale, num_polish=8, **shape_settings(likelihood, model.shape))
    values = _pooled_start(law, model, modes, fit, F, center, noise_scale)
    samples, stats, laplace_ok, method = run_nuts(
        model, (X, logy, mask, center), values, seed=seed, num_warmup=num_warmup, num_samples=num_samples,
        num_chains=num_chains, chain_method=chain_method, target_accept=target_accept,
        regularize_mass_matrix=regularize_mass_matrix, progress_bar=progress_bar)
    seconds = time.perf_counter() - t0
    C, Dr = num_chains, num_samples
    draws = {}
    for name in law.param_names:
        if name in law.fixed_values:
            draws[name] = np.full((C, Dr, F), law.fixed_values[name])
        else:
            draws[name] = np.broadcast_to(samples[name].reshape(C, Dr, -1), (C, Dr, F)).copy()
    population = {k: samples[k] for k in samples if k.endswith("_pop") or k.endswith("_tau")}
    settings = {"pool": modes, "likelihood": likelihood, **shape_settings(likelihood, model.shape), "num_warmup": num_warmup,
                "num_samples": num_samples, "num_chains": num_chains, "seed": seed_record(seed), "chain_method": method,
                "init": "MAP + Laplace draws" if laplace_ok else "MAP + small jitter", "center": center, "seconds": seconds}
    settings.update(skipped=skipped, noise_scale=noise_scale)
    observed = {"family_index": np.concatenate([np.full(int(c), i) for i, c in enumerate(batch.counts)]),
                "loss": batch.loss[m], **{k: batch.inputs[k][m] for k in batch.inputs}}
    return HierarchicalPosterior(law=law, families=batch.families, modes=modes, draws=draws, population=population,
                                 noise={"sigma": samples["sigma"]}, sample_stats=stats, settings=settings, observed=observed)

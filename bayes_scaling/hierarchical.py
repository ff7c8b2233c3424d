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

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from . import derived
from .batch import fit_point_batch, make_batch
from .data import as_runs
from .diagnostics import ESS_MIN, RHAT_MAX, ess_bulk, rhat
from .laws import Law, get_law
from .model import DEFAULT_SHAPE, NOISE_SCALE, _centred_terms, start_sigma
from .noise import LIKELIHOODS
from .posterior import interval
from .sampling import run_nuts

__all__ = ["make_hierarchical_model", "sample_hierarchical", "HierarchicalPosterior", "POOLING"]

POOLING = ("none", "partial", "complete")
TAU_SCALE = 0.2


def _positive(prior) -> bool:
    """Partial pooling multiplies positive parameters (m * exp(tau z)) and shifts real ones (m + tau z)."""
    return prior.support is constraints.positive or isinstance(prior, dist.LogNormal)


def _pooling(law: Law, pool: Mapping[str, str] | None) -> dict[str, str]:
    pool = dict(pool or {})
    unknown = set(pool) - set(law.free_names)
    if unknown:
        raise ValueError(f"pool names {sorted(unknown)}, not free parameters of law {law.name!r} ({', '.join(law.free_names)})")
    bad = {k: v for k, v in pool.items() if v not in POOLING}
    if bad:
        raise ValueError(f"pooling must be one of {POOLING}; got {bad}")
    centred = {t[0] for t in _centred_terms(law)}
    out = {}
    for p in law.free_params:
        default = "complete" if not p.log else "none"
        mode = pool.get(p.name, default)
        if p.name in centred and mode == "partial":
            raise ValueError(f"{p.name} is sampled centred; pool it 'none' or 'complete' (pool its exponent instead)")
        out[p.name] = mode
    return out


def make_hierarchical_model(law, *, pool=None, likelihood: str = "student_t", shape: float | None = None,
                            noise_scale: float = NOISE_SCALE):
    """The hierarchical NumPyro model: ``model(X, logy, mask, center)`` with ``X[k]``, ``logy``, ``mask``
    shaped ``(family, run)``."""
    law = get_law(law)
    modes = _pooling(law, pool)
    if likelihood not in ("student_t", "gaussian"):
        raise ValueError("hierarchical likelihood must be 'student_t' or 'gaussian'")
    shape = DEFAULT_SHAPE[likelihood] if shape is None else float(shape)
    logpdf = LIKELIHOODS[likelihood]
    centred = {scale: (exponent, inp, sign) for scale, exponent, inp, sign in _centred_terms(law)}
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
                vals[p.name] = numpyro.deterministic(p.name, m * jnp.exp(tau * z) if _positive(p.prior) else m + tau * z)
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
        numpyro.factor("log_likelihood", jnp.sum(mask * logpdf(logy - mu, sigma[:, None], shape)))

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

    def family(self, name: str) -> dict[str, np.ndarray]:
        i = self.families.index(name)
        return {k: v[..., i] for k, v in self.draws.items()}

    def diagnostics(self) -> dict[str, Any]:
        """Sampler health overall and per family; families that fail are listed by name, not averaged away."""
        div = int(np.sum(self.sample_stats["diverging"]))
        failing: dict[str, list[str]] = {}
        worst_r, worst_ess = 1.0, np.inf
        for name, x in list(self.draws.items()) + [("sigma", self.noise["sigma"])]:
            if name in self.law.fixed_values:
                continue
            for i, fam in enumerate(self.families):
                r, e = rhat(x[..., i]), ess_bulk(x[..., i])
                if not np.isfinite(r):
                    continue
                worst_r, worst_ess = max(worst_r, r), min(worst_ess, e)
                if r > RHAT_MAX or e < ESS_MIN:
                    failing.setdefault(fam, []).append(f"{name} (R-hat {r:.3f}, ESS {e:.0f})")
        warnings_ = []
        if div:
            warnings_.append(f"{div} divergent transitions: raise target_accept or pool fewer parameters partially")
        for fam, what in failing.items():
            warnings_.append(f"family {fam!r} has not mixed: {', '.join(what)}; run longer or check its runs")
        return {"divergences": div, "max_r_hat": worst_r, "min_ess_bulk": worst_ess, "failing_families": sorted(failing),
                "warnings": warnings_}

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

    def forecast(self, budgets, *, prob: float = 0.9):
        """Per family and budget: median and ``prob`` interval of N_opt, D_opt, D/N and L*."""
        import pandas as pd

        law = self.law
        rows = []
        for fam in self.families:
            p = {k: jnp.asarray(v.reshape(-1)) for k, v in self.family(fam).items()}
            for C in np.atleast_1d(np.asarray(budgets, float)):
                N, D = (np.asarray(a) for a in jax.vmap(lambda q: derived.compute_optimal(law, q, C))(p))
                L = np.asarray(jax.vmap(lambda q: derived.loss_at_optimum(law, q, C))(p))
                row = {"family": fam, "budget": C}
                for name, x in (("N_opt", N), ("D_opt", D), ("D/N", D / N), ("L*", L)):
                    row[name] = float(np.median(x))
                    row[f"{name}_lo"], row[f"{name}_hi"] = interval(x, prob)
                rows.append(row)
        return pd.DataFrame(rows)


def sample_hierarchical(law, runs, *, pool: Mapping[str, str] | None = None, likelihood: str = "student_t",
                        shape: float | None = None, noise_scale: float = NOISE_SCALE, num_warmup: int = 1000,
                        num_samples: int = 1000, num_chains: int = 4, seed: int = 0, target_accept: float = 0.9,
                        chain_method: str = "auto", regularize_mass_matrix: bool = True,
                        progress_bar: bool = False) -> HierarchicalPosterior:
    """Sample the hierarchical posterior of ``law`` over the families of ``runs`` (a table loaded with
    ``family=``). Chains start at Laplace draws around the per-family MAP fits (shared parameters at their
    median across families). ``regularize_mass_matrix`` (numpyro's shrinkage of the adapted metric) is on
    here: with many per-family parameters an unshrunk metric estimated from early warm-up can be singular."""
    law = get_law(law)
    runs = as_runs(runs)
    model = make_hierarchical_model(law, pool=pool, likelihood=likelihood, shape=shape, noise_scale=noise_scale)
    modes = model.modes
    per_family = sum(m == "none" for m in modes.values()) + 1
    batch = make_batch(runs, min_runs=per_family + 1)
    F = batch.num_families
    if F < 2:
        raise ValueError(f"{runs.source}: hierarchical pooling needs at least 2 families with {per_family + 1}+ runs")
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    X = {k: jnp.asarray(batch.inputs[k], dtype) for k in law.inputs}
    logy = jnp.log(jnp.asarray(batch.loss, dtype))
    mask = jnp.asarray(batch.mask, dtype)
    m = np.asarray(batch.mask, bool)
    center = {inp: float(np.mean(np.log(batch.inputs[inp][m]))) for _, _, inp, _ in _centred_terms(law)}
    t0 = time.perf_counter()
    fits = fit_point_batch(law, runs, objective="gaussian" if likelihood == "gaussian" else "student_t", prior=True,
                           num_polish=8)
    P = {name: np.array([fits.fits[f].params[name] for f in batch.families]) for name in law.param_names}
    sig = np.array([start_sigma(fits.fits[f].noise["sigma"], noise_scale) for f in batch.families])
    values: dict[str, Any] = {}
    shared = {name: float(np.median(P[name])) for name in law.free_names}
    for p in law.free_params:
        mode = modes[p.name]
        if p.name in model.centred:
            continue
        if mode == "complete":
            values[p.name] = shared[p.name]
        elif mode == "none":
            values[p.name] = P[p.name]
        else:
            values[f"{p.name}_pop"] = shared[p.name]
            values[f"{p.name}_tau"] = 0.1
            values[f"{p.name}_z"] = (np.log(P[p.name] / shared[p.name]) if _positive(p.prior) else P[p.name] - shared[p.name]) / 0.1
    for p in law.free_params:
        if p.name not in model.centred:
            continue
        exponent, inp, sign = model.centred[p.name]
        if modes.get(exponent) == "complete":
            e = np.full(F, shared[exponent])  # the chains start with the shared exponent
        else:
            e = P[exponent]
        logT = np.log(P[p.name]) - sign * e * center[inp]
        values[f"log_{p.name}_c"] = float(np.median(logT)) if modes[p.name] == "complete" else logT
    values["sigma"] = sig
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
    settings = {"pool": modes, "likelihood": likelihood, "shape": model.shape, "num_warmup": num_warmup,
                "num_samples": num_samples, "num_chains": num_chains, "seed": seed, "chain_method": method,
                "init": "MAP + Laplace draws" if laplace_ok else "MAP + small jitter", "center": center, "seconds": seconds}
    return HierarchicalPosterior(law=law, families=batch.families, modes=modes, draws=draws, population=population,
                                 noise={"sigma": samples["sigma"]}, sample_stats=stats, settings=settings)

"""Posteriors of many run families in one compiled call: :func:`sample_posterior_batch` runs the single-family
model of :func:`~bayes_scaling.sampling.sample_posterior` (padded runs masked out) for every family, each with its own
warm-up, starts and diagnostics, and :class:`BatchPosterior` holds them (one :class:`~bayes_scaling.posterior.Posterior`
per family; :meth:`BatchPosterior.health` the worst of them, families named).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

from . import checks, progress
from .batch import make_batch, too_small_families
from .checks import check_sampler_size, runs_sha256
from .data import as_runs
from .diagnostics import Health
from .keys import as_key, seed_record
from .laws import get_law
from .model import NOISE_SCALE

__all__ = ["BatchPosterior", "sample_posterior_batch"]


@dataclass(frozen=True)
class BatchPosterior:
    """Posteriors of many families sampled in one call: ``posteriors[family]`` is a
    :class:`~bayes_scaling.posterior.Posterior`; ``skipped`` lists families not sampled, and
    :meth:`failing` those whose sampler is unhealthy (never averaged away)."""

    posteriors: dict[str, Any]
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def health(self) -> Health:
        """The worst sampler health over the families, each family's warnings named by it; skipped families are
        listed as a warning (they have no posterior)."""
        extra = tuple(f"left out (too few runs): {fam}: {why}" for fam, why in self.skipped.items())
        return Health.combine({fam: post.health() for fam, post in self.posteriors.items()}, extra_warnings=extra)

    def to_arviz(self) -> dict[str, Any]:
        """One InferenceData per family: ``{family: Posterior.to_arviz()}``."""
        return {fam: post.to_arviz() for fam, post in self.posteriors.items()}

    def failing(self) -> dict[str, list[str]]:
        """The families that need attention, each with its problems in short: an unhealthy sampler (divergences,
        R-hat, bulk or tail ESS, as :func:`~bayes_scaling.diagnostics.health` judges it) and the data's or the fit's
        problems (``Posterior.diagnostics()["problems"]``)."""
        from .diagnostics import ESS_MIN, RHAT_MAX, fmt_rhat

        out = {}
        for fam, post in self.posteriors.items():
            d = post.diagnostics()
            problems = []
            if d["divergences"]:
                problems.append(f"{d['divergences']} divergences")
            if d["max_r_hat"] > RHAT_MAX:
                problems.append(f"R-hat {fmt_rhat(d['max_r_hat'])}")
            if d["min_ess_bulk"] < ESS_MIN:
                problems.append(f"bulk ESS {d['min_ess_bulk']:.0f}")
            if d["min_ess_tail"] < ESS_MIN:
                problems.append(f"tail ESS {d['min_ess_tail']:.0f}")
            problems += d["problems"]
            if problems:
                out[fam] = problems
        return out

    def forecast(self, budgets, *, prob: float = 0.9, seed: int = 0):
        """Per family and budget: medians and intervals of N_opt, D_opt, D/N, L* (see Posterior.forecast)."""
        import pandas as pd

        tables = []
        for fam, post in self.posteriors.items():
            t = post.forecast(budgets, prob=prob, seed=seed)
            t.insert(0, "family", fam)
            tables.append(t)
        return pd.concat(tables, ignore_index=True)


def sample_posterior_batch(law, runs, *, likelihood: str = "student_t", nu: float | str | None = None, k: float | None = None,
                           priors: Mapping[str, Any] | None = None, noise_scale: float = NOISE_SCALE,
                           noise_varies_with_compute: bool | None = None, noise_prior: str = "auto",
                           num_warmup: int | None = None, num_samples: int | None = None, num_chains: int = 4,
                           chain_method: str = "auto", dense_mass: bool = True,
                           target_accept: float | None = None, max_tree_depth: int = 10, seed: int = 0, init_scale: float = 1.0,
                           regularize_mass_matrix: bool = False, progress_bar: bool = False,
                           family_chunk: int | None = None, devices: int | None = None) -> BatchPosterior:
    """NUTS for every family of ``runs`` in one compiled call (families one after another on CPU, vmapped
    on GPU/TPU), each family with its own warm-up adaptation, starts and diagnostics. The model is the
    single-family one of :func:`~bayes_scaling.sampling.sample_posterior` with padded runs masked out, and every
    option of that call means the same here (``tests/test_batch.py`` enumerates them): the likelihood and its
    ``nu`` or ``k``, ``priors``, ``noise_scale``, the sampler's settings, ``init_scale``, ``progress_bar``.
    ``chain_method``: how one family's chains run, ``"auto"`` (sequential on CPU, vectorized on GPU/TPU),
    ``"sequential"`` or ``"vectorized"``; ``"parallel"`` (a chain per device) does not apply, since the
    families are what is spread over the devices.
    With several devices the families are sharded over them (``devices``: how many, default all; on CPU
    ``jax.config.update("jax_num_cpu_devices", os.cpu_count())`` before JAX first runs puts one on each
    core; the CLI does this). ``family_chunk``: families vmapped together on each device. A small design's settings
    apply under ``noise_prior="auto"`` when every family is one (one model serves the batch); in a mixed batch its
    small families keep the usual settings, flagged."""
    if progress_bar and not progress.active():
        with progress.reporting():
            return sample_posterior_batch(
                law, runs, likelihood=likelihood, nu=nu, k=k, priors=priors, noise_scale=noise_scale,
                noise_varies_with_compute=noise_varies_with_compute, noise_prior=noise_prior, num_warmup=num_warmup,
                num_samples=num_samples, num_chains=num_chains, chain_method=chain_method, dense_mass=dense_mass,
                target_accept=target_accept, max_tree_depth=max_tree_depth, seed=seed, init_scale=init_scale,
                regularize_mass_matrix=regularize_mass_matrix, family_chunk=family_chunk, devices=devices)
    import time

    from .model import make_model, noise_inputs
    from .posterior import assemble
    from .sampling import posterior_settings, resolve_chain_method, sample_families, small_design_settings

    law = get_law(law)
    runs = as_runs(runs)
    runs.inputs(law.inputs)
    if runs.family is None:
        raise ValueError(f"{runs.source}: no family column; load the table with family='COLUMN'")
    try:
        chain_method = resolve_chain_method(chain_method, allowed=("sequential", "vectorized"))
    except ValueError:
        raise ValueError(f"chain_method {chain_method!r}: a family batch runs each family's chains 'sequential' or "
                         "'vectorized' ('auto' picks); 'parallel' (a chain per device) does not apply, the families are "
                         "what is spread over the devices") from None
    key = as_key(seed)  # a seed that is neither an int nor a key is refused before any work
    sizes = [n for _, n in runs.family_sizes() if n >= checks.min_runs(law, "posterior")]
    small = bool(sizes) and all(checks.small_design(n, law) for n in sizes)
    noise_prior, noise_varies_with_compute, num_warmup, num_samples, target_accept = small_design_settings(
        small, noise_prior, noise_varies_with_compute, num_warmup, num_samples, target_accept)
    vary, names = noise_inputs(law, runs, noise_varies_with_compute)
    check_sampler_size(num_chains, num_warmup, num_samples, len(law.params) + 3 + max((n for _, n in runs.family_sizes()), default=0))
    skipped = too_small_families(runs, law, "posterior")
    batch = make_batch(runs, names=names, min_runs=checks.min_runs(law, "posterior"))
    model = make_model(law, likelihood=likelihood, nu=nu, k=k, priors=priors, noise_scale=noise_scale,
                       noise_varies_with_compute=vary, noise_prior=noise_prior)
    t0 = time.perf_counter()
    family_keys = np.stack([np.asarray(jax.random.fold_in(key, i)) for i in range(batch.num_families)])
    fits, samples, stats, centers, laplace = sample_families(
        model, batch, family_keys, num_chains=num_chains, init_scale=init_scale, chain_method=chain_method, devices=devices,
        family_chunk=family_chunk, dense_mass=dense_mass, target_accept=target_accept, max_tree_depth=max_tree_depth,
        num_warmup=num_warmup, num_samples=num_samples, regularize=regularize_mass_matrix)
    seconds = time.perf_counter() - t0
    F = batch.num_families
    posteriors = {}
    for i, fam in enumerate(batch.families):
        k, r = int(batch.counts[i]), batch.runs[i]
        record = posterior_settings(
            law, model, priors=priors, noise_scale=noise_scale, seed=family_keys[i], center=centers[i], seconds=seconds / F,
            init_ok=laplace[i], data_sha256=runs_sha256(r, names),
            data_warnings=checks.check_run_count(len(r), law, "posterior", r.source) + checks.data_warnings(r, law, kind="posterior"),
            sampler=dict(num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains, chain_method=chain_method,
                         dense_mass=bool(dense_mass), target_accept=float(target_accept), max_tree_depth=int(max_tree_depth)),
            family=str(fam), batch_of=F, batch_seed=seed_record(seed))
        observed = {n: np.asarray(batch.inputs[n][i, :k]) for n in batch.inputs} | {"loss": np.asarray(r.loss)}
        posteriors[str(fam)] = assemble(law, {n: v[i] for n, v in samples.items()}, {n: v[i] for n, v in stats.items()},
                                        observed=observed, settings=record, point_fit=fits.fits[str(fam)].to_dict(),
                                        source=r.source, num_runs=k)
    return BatchPosterior(posteriors=posteriors, skipped=skipped, seconds=seconds)

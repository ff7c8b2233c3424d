"""Critical batch size from batch-size sweeps, with posteriors (METHODS §3).

At a fixed target loss the steps S a batch size B needs follow McCandlish et al. (2018)

    S(B) = S_min + E_min / B = S_min (1 + B_noise / B),      B_noise = E_min / S_min  (= B_crit),

fitted per target (one *group*: a target loss or a model size) in log space with a robust likelihood,

    log S_i ~ StudentT(nu=4, log S_min + log1p(B_noise / B_i), sigma_g),

priors log S_min ~ Normal(log min S, 3), log B_noise ~ Normal(mean log B, 3), sigma_g ~ HalfNormal(0.3).
All groups are padded and masked into one model (independent parameters per group, one NUTS run).

Two definitions of the critical batch size come from each draw:

* McCandlish: ``B_crit = E_min / S_min``;
* Zhang et al. (2024): the batch at which steps exceed linear scaling from a reference batch B0 by a
  fraction o (20%): a + b/B = (1 + o)(a + b/B0) B0/B, i.e. ``CBS = o b/a + (1 + o) B0`` (o = 0.2, B0 = 256
  sequences in their paper).

:meth:`CriticalBatchPosterior.scaling_law` fits B_crit = k N^p (or D, or the target loss L: Kaplan's
B* L^(-1/alpha_B)) through the groups' posteriors with :func:`~bayes_scaling.analyses.hyperparams.fit_power_law`
(each group's posterior sd of log B_crit carries into the exponent), and :func:`forecast_critical_batch`
pushes it to a model size, token budget, target loss, or a compute budget through a loss-law posterior.

>>> round(zhang_cbs(1.0, 2190.6, reference_batch=256), 2)  # 85M model of Zhang et al.: 745 sequences
745.32
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from ..draws import Draws, FromSampler, quantiles, sample_model
from ..noise import student_t_logpdf
from ..posterior import DEFAULT_PROB
from .hyperparams import PowerLawPosterior, fit_power_law

__all__ = ["BatchSweep", "load_batch_sweep", "CriticalBatchPosterior", "critical_batch_size", "forecast_critical_batch",
           "log_steps", "zhang_cbs"]


def log_steps(log_S_min, log_B_noise, B):
    """log S(B) = log S_min + log(1 + B_noise / B): the one formula of the sweep model."""
    return log_S_min + jnp.logaddexp(0.0, log_B_noise - jnp.log(B))


def zhang_cbs(S_min, E_min, *, reference_batch: float = 256.0, overhead: float = 0.2):
    """Zhang et al.'s critical batch size: ``overhead * E_min / S_min + (1 + overhead) * reference_batch``."""
    out = overhead * np.asarray(E_min, float) / np.asarray(S_min, float) + (1 + overhead) * reference_batch
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, eq=False)
class BatchSweep:
    """A validated sweep: per group (target or model size), sorted batch sizes and the steps to target,
    padded to ``(group, batch)`` with ``mask``; ``extra[col]`` holds per-group covariates (one value per
    group, e.g. N or the target loss)."""

    groups: tuple[str, ...]
    batch: np.ndarray
    steps: np.ndarray
    mask: np.ndarray
    extra: dict[str, np.ndarray]
    source: str = "<DataFrame>"


def load_batch_sweep(source, *, batch: str = "batch_size", steps: str = "steps", group: str | None = None,
                     min_batches: int = 3, sep: str | None = None, name: str | None = None) -> BatchSweep:
    """Load and validate a sweep table (CSV path or DataFrame). Errors name the source, column and data row
    (1-based): missing steps (a batch size that never reached the target), non-positive values, a batch size
    twice in one group, a group with fewer than ``min_batches`` batch sizes. Batch sizes out of order give a
    warning (they are sorted). Numeric columns constant within every group become ``extra`` covariates."""
    import pandas as pd

    from ..data import missing_column, read_table

    df, name, _ = read_table(source, sep=sep, name=name)  # CSV, TSV or Parquet; one-line errors naming the file
    df = df.reset_index(drop=True)
    for col in (batch, steps) + ((group,) if group else ()):
        if col not in df.columns:
            raise missing_column(name, col, df)
    if len(df) == 0:
        raise ValueError(f"{name}: the table is empty")
    B = pd.to_numeric(df[batch], errors="coerce").to_numpy(float)
    S = pd.to_numeric(df[steps], errors="coerce").to_numpy(float)
    for i in range(len(df)):
        if not np.isfinite(B[i]) or B[i] <= 0:
            raise ValueError(f"{name}: column {batch!r}, row {i + 1}: {df[batch].iloc[i]!r} is not a positive batch size")
        if not np.isfinite(S[i]) or S[i] <= 0:
            raise ValueError(f"{name}: column {steps!r}, row {i + 1}: {df[steps].iloc[i]!r} steps at batch size {B[i]:g} "
                             "- this batch size never reached the target (no positive step count); drop the row or "
                             "give the steps it took")
    labels = df[group].astype(str).to_numpy() if group else np.full(len(df), "all")
    order = list(dict.fromkeys(labels.tolist()))
    width = max(int(np.sum(labels == g)) for g in order)
    Bp, Sp, M = np.ones((len(order), width)), np.ones((len(order), width)), np.zeros((len(order), width))
    for k, g in enumerate(order):
        idx = np.flatnonzero(labels == g)
        b = B[idx]
        seen: dict[float, int] = {}
        for i, v in zip(idx, b):
            if v in seen:
                raise ValueError(f"{name}: column {batch!r}, row {i + 1}: batch size {v:g} appears twice in group {g!r} "
                                 f"(rows {seen[v] + 1} and {i + 1}); keep one (e.g. the fewest steps)")
            seen[v] = i
        if len(idx) < min_batches:
            raise ValueError(f"{name}: group {g!r} (rows {', '.join(str(i + 1) for i in idx)}) has {len(idx)} batch sizes; "
                             f"S(B) = S_min + E_min/B needs at least {min_batches}")
        if np.any(np.diff(b) < 0):
            j = int(np.flatnonzero(np.diff(b) < 0)[0]) + 1
            warnings.warn(f"{name}: column {batch!r}, row {idx[j] + 1}: batch sizes of group {g!r} are not in increasing "
                          "order; sorted them", stacklevel=2)
        o = np.argsort(b, kind="stable")
        Bp[k, : len(idx)], Sp[k, : len(idx)], M[k, : len(idx)] = b[o], S[idx][o], 1.0
    extra = {}
    for col in df.columns:
        if col in (batch, steps, group):
            continue
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
        if not np.all(np.isfinite(v)):
            continue
        per = [np.unique(v[labels == g]) for g in order]
        if all(len(u) == 1 for u in per):
            extra[col] = np.array([u[0] for u in per])
    return BatchSweep(groups=tuple(order), batch=Bp, steps=Sp, mask=M, extra=extra, source=name)


def sweep_model(logB, logS, mask, prior):
    """The padded sweep model (module docstring): arrays ``(group, batch)``; ``prior`` holds per-group
    prior centres ``logS0``, ``logB0``."""
    G = logB.shape[0]
    log_S_min = numpyro.sample("log_S_min", dist.Normal(prior["logS0"], 3.0).to_event(1))
    log_B_noise = numpyro.sample("log_B_noise", dist.Normal(prior["logB0"], 3.0).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.3 * jnp.ones(G)).to_event(1))
    mu = log_steps(log_S_min[:, None], log_B_noise[:, None], jnp.exp(logB))
    ll = student_t_logpdf(logS - mu, sigma[:, None], 4.0)
    numpyro.factor("log_likelihood", jnp.sum(ll * mask))


def _start(logB, logS, mask):
    """Per-group least-squares start for (log S_min, log B_noise) on a small grid, and the residual sd."""
    out_s, out_b, out_sig = [], [], []
    for g in range(logB.shape[0]):
        m = mask[g] > 0
        b, s = np.exp(logB[g][m]), logS[g][m]
        best = None
        for lb in np.linspace(np.log(b.min()) - 2, np.log(b.max()) + 2, 60):
            f = np.log1p(np.exp(lb) / b)
            ls = np.mean(s - f)
            r = np.sum((s - ls - f) ** 2)
            if best is None or r < best[0]:
                best = (r, ls, lb)
        out_s.append(best[1])
        out_b.append(best[2])
        out_sig.append(max(np.sqrt(best[0] / m.sum()), 0.01))
    return np.array(out_s), np.array(out_b), np.array(out_sig)


@dataclass(frozen=True, eq=False)
class CriticalBatchPosterior(FromSampler):
    """Per-group posterior draws ``(draw, group)`` of S_min, E_min, B_noise (McCandlish's B_crit) and
    Zhang's CBS; ``sweep`` the data; ``sampler`` the NUTS :class:`~bayes_scaling.draws.Draws`."""

    ANALYSIS = "critical batch size"

    sweep: BatchSweep
    S_min: np.ndarray
    E_min: np.ndarray
    B_noise: np.ndarray
    cbs: np.ndarray
    sampler: Draws
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self, prob: float = DEFAULT_PROB):
        """One row per group: medians and equal-tailed ``prob`` intervals of B_crit (McCandlish), Zhang's CBS,
        S_min and E_min, plus the group's covariates."""
        import pandas as pd

        rows = []
        for g, name in enumerate(self.sweep.groups):
            row = {"group": name, **{k: v[g] for k, v in self.sweep.extra.items()}}
            for label, x in (("B_crit", self.B_noise), ("cbs_zhang", self.cbs), ("S_min", self.S_min), ("E_min", self.E_min)):
                q = quantiles(x[:, g], prob)
                row.update({label: q["median"], f"{label}_lo": q["lo"], f"{label}_hi": q["hi"]})
            rows.append(row)
        return pd.DataFrame(rows)


    @property
    def warnings(self) -> tuple[str, ...]:
        """Everything that makes these numbers less trustworthy, in words (here: sampler health)."""
        return tuple(self.diagnostics()["warnings"])

    def scaling_law(self, by: str | Mapping[str, Any], *, definition: str = "zhang", **options) -> PowerLawPosterior:
        """B_crit (``definition`` "zhang" or "mccandlish") as a power law of one per-group covariate:
        ``by`` names a column of the sweep constant within each group (e.g. ``"N"``, ``"D"``, the target
        loss), or is ``{name: (group,) values}``. Options go to :func:`~bayes_scaling.analyses.hyperparams.fit_power_law`."""
        if isinstance(by, str):
            if by not in self.sweep.extra:
                raise ValueError(f"{self.sweep.source}: no per-group column {by!r}; per-group columns: "
                                 f"{', '.join(self.sweep.extra) or '(none)'}")
            x = {by: self.sweep.extra[by]}
        else:
            x = {k: np.asarray(v, float) for k, v in by.items()}
        if definition not in ("zhang", "mccandlish"):
            raise ValueError(f"definition must be 'zhang' or 'mccandlish', not {definition!r}")
        return fit_power_law(x, self.cbs if definition == "zhang" else self.B_noise, **options)


def critical_batch_size(sweep, *, batch: str = "batch_size", steps: str = "steps", group: str | None = None,
                        reference_batch: float = 256.0, overhead: float = 0.2, seed: int = 0, num_warmup: int = 500,
                        num_samples: int = 500, num_chains: int = 4, target_accept: float = 0.9) -> CriticalBatchPosterior:
    """Posterior of the critical batch size of every group of a sweep (module docstring).

    sweep:  a :class:`BatchSweep`, a CSV path or a DataFrame (then ``batch``, ``steps``, ``group`` name the
            columns, see :func:`load_batch_sweep`).
    reference_batch, overhead: B0 and o of Zhang's definition, in the units of the batch column.
    """
    if not isinstance(sweep, BatchSweep):
        sweep = load_batch_sweep(sweep, batch=batch, steps=steps, group=group)
    logB, logS, mask = np.log(sweep.batch), np.log(sweep.steps), sweep.mask
    s0, b0, sig0 = _start(logB, logS, mask)
    prior = {"logS0": jnp.asarray([np.min(logS[g][mask[g] > 0]) for g in range(len(s0))]),
             "logB0": jnp.asarray([np.mean(logB[g][mask[g] > 0]) for g in range(len(s0))])}
    args = (jnp.asarray(logB), jnp.asarray(logS), jnp.asarray(mask), prior)
    s = sample_model(sweep_model, args, {"log_S_min": s0, "log_B_noise": b0, "sigma": sig0},
                     watch=("log_S_min", "log_B_noise", "sigma"), seed=seed, num_warmup=num_warmup,
                     num_samples=num_samples, num_chains=num_chains, target_accept=target_accept)
    S_min = np.exp(s.flat("log_S_min"))
    B_noise = np.exp(s.flat("log_B_noise"))
    E_min = S_min * B_noise
    cbs = zhang_cbs(S_min, E_min, reference_batch=reference_batch, overhead=overhead)
    return CriticalBatchPosterior(sweep=sweep, S_min=S_min, E_min=E_min, B_noise=B_noise, cbs=cbs, sampler=s,
                                  settings={"reference_batch": reference_batch, "overhead": overhead, **s.settings})


def forecast_critical_batch(law: PowerLawPosterior, *, at=None, budgets=None, loss_posterior=None, quantity: str | None = None,
                            prob: float = DEFAULT_PROB, seed: int = 0):
    """Forecast B_crit from a size/data/loss law (:meth:`CriticalBatchPosterior.scaling_law`).

    at:       values of the law's input (a model size N, token budget D or target loss L).
    budgets:  compute budgets C (FLOPs) instead; the law's input is then the compute-optimal N, D or loss
              L* at C from ``loss_posterior`` (a :class:`~bayes_scaling.posterior.Posterior` of a joint loss
              law), draw by draw: the loss law's uncertainty chains into B_crit's interval.
    quantity: what the law's input is, for ``budgets``: ``"N"``, ``"D"`` or ``"loss"`` (default: the input's
              name when it is one of N, D, L, loss; e.g. ``quantity="loss"`` for a law in ``target_val_loss``).
    Returns a DataFrame: one row per value, with the input's median/interval when it came from budgets.
    """
    import pandas as pd

    (name,) = law.inputs
    rng = np.random.default_rng(seed)
    rows = []
    if at is not None:
        for v in np.atleast_1d(np.asarray(at, float)):
            rows.append({name: float(v), **quantiles(np.exp(law.log_mean({name: v})[:, 0]), prob)})
        return pd.DataFrame(rows)
    if budgets is None or loss_posterior is None:
        raise ValueError("forecast_critical_batch: give `at` (values of the law's input), or `budgets` with a `loss_posterior`")
    from .. import derived

    kind = quantity or {"N": "N", "D": "D", "L": "loss", "loss": "loss"}.get(name)
    if kind not in ("N", "D", "loss"):
        raise ValueError(f"forecast_critical_batch: say what the law's input {name!r} is: quantity='N', 'D' or 'loss'")
    for C in np.atleast_1d(np.asarray(budgets, float)):
        lw = loss_posterior.law
        if kind in ("N", "D"):
            x = loss_posterior.derive(lambda q: derived.compute_optimal(lw, q, C)[0 if kind == "N" else 1]).ravel()
        else:
            x = loss_posterior.derive(lambda q: derived.loss_at_optimum(lw, q, C)).ravel()
        n = min(len(x), len(law.k))
        xi = rng.permutation(x)[:n]
        j = rng.permutation(len(law.k))[:n]
        y = law.k[j] * xi ** law.exponents[name][j]
        rows.append({"budget": float(C), name: float(np.median(xi)), **quantiles(y, prob)})
    return pd.DataFrame(rows)

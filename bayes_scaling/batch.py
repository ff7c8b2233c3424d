"""Many run families at once: padded, masked batches and batch point fits in one compiled call.

``make_batch(runs)`` splits a table with a ``family`` column into a :class:`RunBatch`: arrays shaped
``(family, run)`` padded to the largest family, with ``mask`` 1 for real runs and 0 for padding. Padding
runs hold harmless inputs (1.0) and contribute exactly zero to every objective, so a family fitted in a
batch gets the same result as fitted alone (tests hold this to 1e-6 relative).

``fit_point_batch(law, runs)`` runs the point fit of :func:`~bayes_scaling.fitting.fit_point` for every
family in one jitted call: the start grid is screened for all families at once (vmapped over families and
starts), then L-BFGS runs from each family's best ``num_polish`` starts, vmapped over families. Families
with fewer runs than a single fit of the same kind accepts (:func:`~bayes_scaling.checks.min_runs`) are reported
in ``skipped`` with the single fit's own message, and not fitted; every fitted family carries the single fit's
``warnings``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import checks, compile_cache, varpro
from .data import Runs, as_runs
from .fitting import (
    STRATEGIES,
    VARPRO_POLISH,
    PointFit,
    best_fit,
    check_objective,
    fit_kind,
    fit_point,
    fit_shape,
    hyper_params,
    multistart_impl,
    on_accelerator,
    screen_impl,
    start_array,
    use_varpro,
    varpro_impl,
    with_checks,
)
from .laws import get_law
from .model import NOISE_SCALE
from .shard import device_count, pad_to_multiple, sharded, trim

__all__ = ["RunBatch", "make_batch", "single_batch", "BatchFit", "fit_point_batch", "bootstrap_point", "too_small_families"]


@dataclass(frozen=True, eq=False)
class RunBatch:
    """Families of runs as padded arrays: ``inputs[name]`` and ``loss`` are ``(family, run)``; ``mask`` is 1
    for a real run and 0 for padding; ``families`` names each row; ``runs`` holds each family's own
    :class:`Runs` (for messages and per-family results)."""

    families: tuple[str, ...]
    inputs: dict[str, np.ndarray]
    loss: np.ndarray
    mask: np.ndarray
    runs: tuple[Runs, ...]
    source: str = ""

    @property
    def num_families(self) -> int:
        return len(self.families)

    @property
    def counts(self) -> np.ndarray:
        return self.mask.sum(axis=1).astype(int)


def too_small_families(runs: Runs, law, kind: str) -> dict[str, str]:
    """The families with fewer runs than a fit of ``kind`` needs (:func:`~bayes_scaling.checks.min_runs`, the
    same count as a single fit), each with the reason it is skipped."""
    need = checks.min_runs(law, kind)
    out = {}
    for fam, n in runs.family_sizes():
        if n < need:
            try:
                checks.check_run_count(n, law, kind, runs.source)
            except ValueError as err:
                out[str(fam)] = str(err)
    return out


def make_batch(runs: Runs | Any, names=("N", "D", "C", "U", "batch_size", "steps"), *, min_runs: int = 1) -> RunBatch:
    """Split ``runs`` by its family column into a padded, masked :class:`RunBatch` (families in order of
    first appearance). Families with fewer than ``min_runs`` runs are left out (see :func:`fit_point_batch`)."""
    runs = as_runs(runs)
    if runs.family is None:
        raise ValueError(f"{runs.source}: no family column; load the table with family='COLUMN' (or several columns)")
    keep = [(f, r) for f, r in runs.families() if len(r) >= min_runs]
    if not keep:
        raise ValueError(f"{runs.source}: no family has at least {min_runs} runs")
    fams, parts = zip(*keep)
    width = max(len(r) for r in parts)
    present = [n for n in names if getattr(runs, n, None) is not None]
    inputs = {n: np.ones((len(parts), width)) for n in present}
    loss = np.ones((len(parts), width))
    mask = np.zeros((len(parts), width))
    for i, r in enumerate(parts):
        k = len(r)
        for n in present:
            inputs[n][i, :k] = getattr(r, n)
        loss[i, :k] = r.loss
        mask[i, :k] = 1.0
    return RunBatch(families=tuple(fams), inputs=inputs, loss=loss, mask=mask, runs=tuple(parts), source=runs.source)


def single_batch(runs: Runs | Any, names=("N", "D", "C", "U", "batch_size", "steps")) -> RunBatch:
    """One table as a batch of one family (named by its source), unpadded: a single fit or posterior is the batch
    computation with one family."""
    runs = as_runs(runs)
    present = [n for n in names if getattr(runs, n, None) is not None]
    return RunBatch(families=(runs.source or "runs",), inputs={n: np.asarray(getattr(runs, n), float)[None] for n in present},
                    loss=np.asarray(runs.loss, float)[None], mask=np.ones((1, len(runs))), runs=(runs,), source=runs.source)


@dataclass(frozen=True)
class BatchFit:
    """Point fits of many families: ``fits[family]`` is a :class:`PointFit`; ``skipped[family]`` says why a
    family was not fitted."""

    fits: dict[str, PointFit]
    skipped: dict[str, str] = field(default_factory=dict)
    check: dict | None = None  # the warm protocol's verification against the full grid (None for the grid protocol)

    def table(self):
        """One row per family: parameters, noise, objective, convergence, status, number of runs."""
        import pandas as pd

        rows = []
        for fam, fit in self.fits.items():
            row = {"family": fam, **fit.params, **fit.noise, "objective": fit.objective, "converged": fit.converged,
                   "status": fit.status, "num_runs": fit.num_runs}
            rows.append(row)
        for fam, why in self.skipped.items():
            rows.append({"family": fam, "converged": False, "status": f"skipped: {why}"})
        return pd.DataFrame(rows)


def _batch_impl(theta0s, X, logy, mask, hyper, *, law, kind, prior, max_steps, chunk, family_chunk, newton_first=0):
    one = lambda a: multistart_impl(a[0], a[1], a[2], a[3], hyper, law=law, kind=kind, prior=prior,
                                     max_steps=max_steps, chunk=chunk, newton_first=newton_first)
    if family_chunk >= theta0s.shape[0]:
        return jax.vmap(lambda th, x, y, m: one((th, x, y, m)))(theta0s, X, logy, mask)
    # on CPU families run one after another inside one compiled loop: a vmapped L-BFGS runs every
    # family as long as the slowest (and its line search as long as the longest)
    return jax.lax.map(one, (theta0s, X, logy, mask), batch_size=family_chunk if family_chunk > 1 else None)


_batch = jax.jit(_batch_impl, static_argnames=("law", "kind", "prior", "max_steps", "chunk", "family_chunk", "newton_first"))


_SHARDED: dict = {}


def _batch_sharded(theta0s, X, logy, mask, hyper, *, devices: int | None = None, **static):
    """``_batch`` with the family axis sharded over ``devices`` (default: all) with ``jax.shard_map``: each
    device runs its own families. Families are padded (by repeating the last one) to a multiple of the
    device count and the padding is dropped from the result. One device: plain ``_batch``."""
    F = theta0s.shape[0]
    n_dev = device_count(F, devices)
    if n_dev <= 1:
        return _batch(theta0s, X, logy, mask, hyper, **static)
    (theta0s, X, logy, mask), _ = pad_to_multiple((theta0s, X, logy, mask), n_dev)
    key = (n_dev, tuple(sorted(static.items())))
    if key not in _SHARDED:
        local = lambda th, x, y, m, h: _batch_impl(th, x, y, m, h, **dict(static, family_chunk=1 if static["family_chunk"] < F else th.shape[0]))
        _SHARDED[key] = sharded(local, n_dev, "family", (True, True, True, True, False))
    return trim(_SHARDED[key](theta0s, X, logy, mask, hyper), F)


def _varpro_batch_impl(nl_grid, X, logy, mask, hyper, *, law, kind, prior, num_polish, max_steps, chunk, family_chunk):
    one = lambda a: varpro_impl(nl_grid, a[0], a[1], a[2], hyper, law=law, kind=kind, prior=prior, num_polish=num_polish,
                                max_steps=max_steps, chunk=chunk)
    if family_chunk >= logy.shape[0]:
        return jax.vmap(lambda x, y, m: one((x, y, m)))(X, logy, mask)
    return jax.lax.map(one, (X, logy, mask), batch_size=family_chunk if family_chunk > 1 else None)


_varpro_batch = jax.jit(_varpro_batch_impl, static_argnames=("law", "kind", "prior", "num_polish", "max_steps", "chunk",
                                                             "family_chunk"))


def _varpro_sharded(nl_grid, X, logy, mask, hyper, *, devices: int | None = None, **static):
    """The variable-projection fit of every family (:func:`~bayes_scaling.fitting.varpro_impl` over the family axis),
    sharded over ``devices`` as :func:`_batch_sharded` does."""
    F = logy.shape[0]
    n_dev = device_count(F, devices)
    if n_dev <= 1:
        return _varpro_batch(nl_grid, X, logy, mask, hyper, **static)
    (X, logy, mask), _ = pad_to_multiple((X, logy, mask), n_dev)
    key = ("varpro", n_dev, tuple(sorted(static.items())))
    if key not in _SHARDED:
        local = lambda g, x, y, m, h: _varpro_batch_impl(g, x, y, m, h, **dict(static, family_chunk=1 if static["family_chunk"] < F else y.shape[0]))
        _SHARDED[key] = sharded(local, n_dev, "family", (False, True, True, True, False))
    return trim(_SHARDED[key](nl_grid, X, logy, mask, hyper), F)


def _default_family_chunk(num: int) -> int:
    return num if on_accelerator() else 1


def _screen_batch_impl(theta0s, X, logy, mask, hyper, *, law, kind, prior, family_chunk):
    # families in chunks: all families x all starts x all runs at once can exceed memory (1000 x 4500 x 200)
    one = lambda a: screen_impl(theta0s, a[0], a[1], a[2], hyper, law=law, kind=kind, prior=prior)
    return jax.lax.map(one, (X, logy, mask), batch_size=family_chunk if family_chunk > 1 else None)


_screen_batch = jax.jit(_screen_batch_impl, static_argnames=("law", "kind", "prior", "family_chunk"))


def fit_point_batch(
    law,
    runs: Runs | RunBatch | Any,
    *,
    objective: str = "huber_loss",
    prior: bool = False,
    delta: float = 1e-3,
    nu: float | None = None, k: float | None = None, noise_scale: float = NOISE_SCALE, priors: Any = None, noise_prior: str = "half_normal",
    starts: Any = None,
    strategy: str = "auto",
    num_polish: int | None = 32,
    max_steps: int = 1000,
    gtol: float | None = None, ftol: float | None = None,
    chunk: int = 1,
    family_chunk: int | None = None,
    devices: int | None = None,
    dtype=None,
    protocol: str = "grid",
    num_pilots: int = 8,
    num_warm: int = 1,
    verify: int = 8,
    seed: int = 0,
) -> BatchFit:
    """:func:`~bayes_scaling.fitting.fit_point` for every family of ``runs``, in one compiled call.

    Options are those of ``fit_point`` (``jit``, a testing switch, aside); ``strategy`` ``"auto"`` or ``"grid"``: the
    start grid (``"varpro"`` is refused with the reason); ``chunk``: how many of a family's starts run at once,
    ``family_chunk`` how many families (default: 1 on CPU, all on GPU/TPU). With several devices the
    families are sharded over them (``devices``: how many, default all; 1 turns sharding off). Families
    with too few runs for the law are skipped and listed in ``BatchFit.skipped``.

    protocol:   ``"grid"`` (default): every family gets the single-fit protocol (screen the start grid,
                polish the best ``num_polish``); results equal ``fit_point`` per family (1e-6 relative).
                ``"warm"``, for many similar families: ``num_pilots`` families spread over the batch get the
                grid protocol; every other family starts L-BFGS from the best ``num_warm`` of the pilots'
                optima (ranked by objective on its own runs); then ``verify`` random other families are
                refitted with the grid protocol and compared (``BatchFit.check``; a warning names any that
                the grid improved, and their grid fits are kept). Tens of times faster on CPU.
    """
    law = get_law(law).with_priors(priors)
    kind = objective
    _check_batch_options(law, kind, prior, strategy, protocol, num_pilots, num_warm, verify, num_polish, starts)
    shape = fit_shape(kind, nu, k)
    num_noise = 0 if kind == "huber_loss" else 1
    fkind = fit_kind(kind, prior)
    batch, skipped = _as_batch(runs, law, fkind)
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    X, logy, mask = _arrays(batch, law, dtype)
    theta0s = start_array(law, starts, num_noise)
    hyper = hyper_params(dtype, delta=delta, shape=shape, noise_scale=noise_scale, gtol=gtol, ftol=ftol, noise_prior=noise_prior)
    F = batch.num_families
    num_starts = len(theta0s)
    static = dict(law=law, kind=kind, prior=prior, max_steps=int(max_steps))
    fc = int(family_chunk or _default_family_chunk(F))

    def grid(idx):
        """The single-fit protocol for families ``idx``: screen every start, L-BFGS from the best num_polish."""
        Xi, yi, mi = ({k: v[idx] for k, v in X.items()}, logy[idx], mask[idx])
        if num_polish is not None and num_starts > num_polish:
            f0 = np.asarray(_screen_batch(jnp.asarray(theta0s, dtype), Xi, yi, mi, hyper, law=law, kind=kind, prior=prior,
                                          family_chunk=int(min(fc, 16))))
            per_family = theta0s[np.argsort(f0, axis=1, kind="stable")[:, : int(num_polish)]]  # (F, K, P)
        else:
            per_family = np.broadcast_to(theta0s, (len(idx),) + theta0s.shape)
        out = _batch_sharded(jnp.asarray(per_family, dtype), Xi, yi, mi, hyper, devices=devices,
                             chunk=int(min(chunk, per_family.shape[1])), family_chunk=fc, **static)
        return [np.asarray(a) for a in out]

    screened = num_polish is not None and num_starts > num_polish
    grid_note = f"screened {num_starts} starts by objective; L-BFGS from the best {num_polish}" if screened else None
    if protocol == "grid" and use_varpro(law, strategy, starts, kind, num_polish, dtype):
        out, notes_for, check, num_starts = _varpro_fits(law, X, logy, mask, hyper, dtype, devices, fc, static)
    elif protocol == "grid" or F <= num_pilots:
        out, notes_for, check = grid(np.arange(F)), (lambda i: grid_note), None
    else:
        out, notes_for, check = _warm(grid, X, logy, mask, hyper, F, dtype, num_pilots, num_warm, verify, seed, devices,
                                      chunk, fc, static, grid_note)
    fits = _family_fits(law, batch, out, notes_for, kind, prior, delta, shape, num_starts, (X, logy, mask))
    return BatchFit(fits=fits, skipped=skipped, check=check)


def _arrays(batch, law, dtype):
    """The batch's inputs, log losses and mask as arrays of ``dtype``, each with a leading family axis."""
    X = {k: jnp.asarray(batch.inputs[k], dtype) for k in law.inputs}
    return X, jnp.asarray(np.log(batch.loss), dtype), jnp.asarray(batch.mask, dtype)


def _varpro_fits(law, X, logy, mask, hyper, dtype, devices, fc, static):
    """Every family by variable projection (as ``fit_point`` does it alone): ``(out, notes_for, check, num_starts)``."""
    nl_grid = varpro.nonlinear_grid(law)
    n_pol = min(VARPRO_POLISH, len(nl_grid))
    out = _varpro_sharded(jnp.asarray(nl_grid, dtype), X, logy, mask, hyper, devices=devices, num_polish=n_pol, chunk=1,
                          family_chunk=fc, **static)
    note = varpro.describe(law, len(nl_grid), n_pol)
    return [np.asarray(a) for a in out], (lambda i: note), None, len(nl_grid)


def _family_fits(law, batch, out, notes_for, kind, prior, delta, shape, num_starts, data) -> dict[str, PointFit]:
    """Each family's best start as its :class:`PointFit`, with its notes and the single fit's warnings."""
    fits, F, fkind = {}, batch.num_families, fit_kind(kind, prior)
    for i, fam in enumerate(batch.families):
        r, note = batch.runs[i], notes_for(i)
        notes = tuple(r.notes) + ((note,) if note else ()) + (f"family {fam!r} of a batch of {F}",)
        fits[str(fam)] = best_fit(law, r, kind, prior, delta, shape, tuple(a[i] for a in out), num_starts, notes)
    explained = _explained_batch(law, fits, batch, *data)
    for i, fam in enumerate(batch.families):
        r = batch.runs[i]
        early = checks.check_run_count(len(r), law, fkind, r.source)
        fits[str(fam)] = with_checks(fits[str(fam)], r, fkind, early, explained[i])
    return fits


def _check_batch_options(law, kind, prior, strategy, protocol, num_pilots, num_warm, verify, num_polish, starts) -> None:
    """Every option of :func:`fit_point_batch` checked before work, each refusal in words."""
    check_objective(kind, prior)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if strategy == "varpro" and protocol == "warm":
        raise ValueError("strategy 'varpro' with protocol 'warm': the warm protocol starts families from pilot fits; "
                         "use protocol 'grid' for variable projection in every family")
    if protocol not in ("grid", "warm"):
        raise ValueError(f"protocol must be 'grid' or 'warm', not {protocol!r}")
    num_starts = len(start_array(law, starts, 0 if kind == "huber_loss" else 1))
    if protocol == "warm" and not (num_pilots >= 1 and 1 <= num_warm <= min(num_polish or num_starts, num_starts) and verify >= 0):
        raise ValueError(f"warm protocol: need num_pilots >= 1, 1 <= num_warm <= num_polish and verify >= 0 "
                         f"(got num_pilots={num_pilots}, num_warm={num_warm}, verify={verify})")


def _as_batch(runs, law, fkind) -> tuple[RunBatch, dict[str, str]]:
    """The families of ``runs`` as a padded batch, and the families too small for a fit of kind ``fkind`` (skipped)."""
    skipped: dict[str, str] = {}
    if isinstance(runs, RunBatch):
        batch = runs
    else:
        runs = as_runs(runs)
        runs.inputs(law.inputs)
        if runs.family is None:
            raise ValueError(f"{runs.source}: no family column; load the table with family='COLUMN'")
        skipped = too_small_families(runs, law, fkind)
        batch = make_batch(runs, min_runs=checks.min_runs(law, fkind))
    missing = [k for k in law.inputs if k not in batch.inputs]
    if missing:
        raise ValueError(f"{batch.source}: this law needs {missing[0]!r} but the table has no column for it")
    return batch, skipped


def _explained_impl(params, X, logy, mask, *, law):
    def one(p, x, y, m):
        r = y - law.log_loss_runs(p, x)
        n = jnp.sum(m)
        var = lambda v: jnp.sum(m * (v - jnp.sum(m * v) / n) ** 2) / n
        return 1.0 - var(r) / var(y)

    return jax.vmap(one)(params, X, logy, mask)


_explained = jax.jit(_explained_impl, static_argnames=("law",))


def _explained_batch(law, fits, batch, X, logy, mask) -> np.ndarray:
    """Each family's share of log-loss variance its fitted law explains (padding masked out), in one call."""
    P = {k: jnp.asarray([fits[str(f)].params[k] for f in batch.families], logy.dtype) for k in law.param_names}
    out = np.asarray(compile_cache.run("explained", "", _explained, P, X, logy, mask, law=law))
    return np.where(np.isfinite(out), out, np.nan)


def _warm(grid, X, logy, mask, hyper, F, dtype, num_pilots, num_warm, verify, seed, devices, chunk, fc, static, grid_note):
    """The warm protocol: fit ``num_pilots`` families spread over the batch with the grid protocol, start
    every other family from the pilots' optima (the ``num_warm`` with the lowest objective on its runs),
    then refit ``verify`` random other families with the grid protocol and compare the minima."""
    law = static["law"]
    pilots = np.unique(np.linspace(0, F - 1, num_pilots).round().astype(int))
    pilot_out = grid(pilots)
    finite = lambda f: np.where(np.isfinite(f), f, np.inf)  # failed starts rank last
    best = [int(np.argmin(finite(f))) for f in pilot_out[1]]
    cands = np.stack([pilot_out[0][j, b] for j, b in enumerate(best)])  # (P, num params)
    f0 = np.asarray(_screen_batch(jnp.asarray(cands, dtype), X, logy, mask, hyper, law=law, kind=static["kind"],
                                  prior=static["prior"], family_chunk=int(min(fc, 16))))
    keep = np.argsort(f0, axis=1, kind="stable")[:, : int(num_warm)]
    out = _batch_sharded(jnp.asarray(cands[keep], dtype), X, logy, mask, hyper, devices=devices,
                         chunk=int(min(chunk, keep.shape[1])), family_chunk=fc, newton_first=8, **static)
    out = [np.array(a) for a in out]  # writable copies
    K = out[0].shape[1]

    def take(i, src, j):
        """Family ``i``'s result becomes family ``j``'s of ``src`` (a grid fit), its best K starts."""
        order = np.argsort(finite(src[1][j]), kind="stable")[:K]
        for a, b in zip(out, src):
            a[i] = b[j][order]

    for j, i in enumerate(pilots):  # pilots keep their grid results
        take(i, pilot_out, j)
    others = np.setdiff1d(np.arange(F), pilots)
    rng = np.random.default_rng(seed)
    checked = np.sort(rng.choice(others, size=min(int(verify), len(others)), replace=False)) if verify else np.array([], int)
    diffs = []
    if len(checked):
        ref = grid(checked)
        for j, i in enumerate(checked):
            fw, fg = finite(out[1][i]).min(), finite(ref[1][j]).min()
            diffs.append(float((fw - fg) / max(abs(fg), 1e-300)))
            if fg < fw:  # the grid found a lower minimum: keep it
                take(i, ref, j)
    worse = [int(i) for i, d in zip(checked, diffs) if d > 1e-9]
    check = {"protocol": "warm", "pilots": pilots.tolist(), "checked": checked.tolist(),
             "relative_objective_excess": diffs, "checked_worse": worse}
    if worse:
        warnings.warn(f"warm protocol: {len(worse)} of {len(checked)} checked families reached a lower minimum from the "
                      f"full start grid (their grid fits are kept); other families may be affected: use protocol='grid'",
                      stacklevel=3)
    pilot_set, checked_set = set(pilots.tolist()), set(checked.tolist())

    def notes_for(i):
        if i in pilot_set:
            return f"warm protocol: pilot family, {grid_note or 'every start polished'}"
        if i in checked_set:
            return "warm protocol: started from the pilots' optima, checked against the full start grid"
        return f"warm protocol: L-BFGS from the best {K} of {len(pilots)} pilot families' optima"

    return out, notes_for, check


def bootstrap_point(law, runs: Runs | Any, *, num_resamples: int = 1000, seed: int = 0, start=None,
                    objective: str = "huber_loss", max_steps: int = 2000, family_chunk: int | None = None,
                    devices: int | None = None, dtype=None) -> dict[str, np.ndarray]:
    """Bootstrap of runs as one batch: ``num_resamples`` resamples (with replacement) of the runs, each
    fitted from ``start`` (default: the full-data optimum, as Epoch did) in one vmapped call.

    Returns ``{"params": {name: (num_resamples,) array}, "objective": ..., "converged": ...}``. With the
    scale-free stopping rule the refits move to their own optimum (METHODS §1.1's pitfall is avoided).
    """
    law = get_law(law)
    runs = as_runs(runs)
    if start is None:
        start = fit_point(law, runs, objective=objective).theta
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(runs), size=(num_resamples, len(runs)))
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    X = {k: jnp.asarray(runs.column(k)[idx], dtype) for k in law.inputs}
    logy = jnp.asarray(np.log(runs.loss[idx]), dtype)
    mask = jnp.asarray(np.ones(logy.shape), dtype)
    hyper = hyper_params(dtype)
    theta0 = jnp.broadcast_to(jnp.asarray(start, dtype), (num_resamples, 1, len(start)))
    theta, f, gnorm, steps, status = (np.asarray(a) for a in _batch_sharded(
        theta0, X, logy, mask, hyper, devices=devices, law=law, kind=objective, prior=False, max_steps=int(max_steps),
        chunk=1, family_chunk=int(family_chunk or _default_family_chunk(num_resamples))))
    k = law.num_free
    params = {name: np.asarray(v) for name, v in law.params_from_theta(jnp.asarray(theta[:, 0, :k])).items()}
    return {"params": params, "objective": f[:, 0], "converged": (status[:, 0] == 0) | (status[:, 0] == 1),
            "num_steps": steps[:, 0]}

"""Backtests: fit on the runs up to a cut, forecast every run beyond it, and score the forecasts.

Rolling origin, leave the future out: the runs are ordered by compute (or N, D, or another column) and, for each
cut, a posterior is sampled on the runs at or below it and each run above it is forecast by its posterior
predictive (parameters and noise, and with a :class:`~bayes_scaling.discrepancy.Discrepancy` the extrapolation
term). Every cut of every family is one family of one :func:`~bayes_scaling.batch_posterior.sample_posterior_batch`
call, so a backtest compiles once. Scores per held-out run: the predictive median and its error, the central
intervals at each probability and whether they hold the run, the probability integral transform (PIT: the share
of predictive draws below the observed loss, uniform when calibrated), the log predictive density, and the
extrapolation factor. Since the discrepancy is zero inside the data it changes no posterior: :meth:`Backtest.rescored`
scores the same fits under another discrepancy without sampling again (what calibration uses).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import checks
from .data import Runs, as_runs
from .defaults import compute_of
from .discrepancy import AXES, Discrepancy, distances
from .laws import get_law
from .loo import loo_pointwise
from .noise import noise_model, shape_from_settings

__all__ = ["backtest", "Backtest", "cut_values", "score", "cut_table", "DEFAULT_PROBS", "DRAW_KEYS"]

DEFAULT_PROBS = (0.5, 0.8, 0.9)
#: the predictive record's arrays with a draw axis, ``(held-out run, draw)``
DRAW_KEYS = ("mu", "scale", "sigma0", "unit", "z", "kappa")
_ROLES = ("C", "N", "D", "U", "steps", "batch_size")


def _by_values(runs: Runs, by: str | np.ndarray) -> np.ndarray:
    if not isinstance(by, str):
        values = np.asarray(by, float)
        if values.shape != (len(runs),) or not np.all(np.isfinite(values) & (values > 0)):
            raise ValueError(f"backtest: the cut values must be {len(runs)} positive numbers, one per run")
        return values
    if by == "C":
        return runs.C if runs.C is not None else compute_of(runs.column("N"), runs.column("D"))
    if by not in _ROLES:
        raise ValueError(f"backtest: cannot cut by {by!r}; use C, N, D, U, steps or batch_size (or pass the values)")
    return runs.column(by)


def _levels(values: np.ndarray) -> np.ndarray:
    """The distinct levels of ``values`` (equal to 1e-6 relative: IsoFLOP budgets written with rounding)."""
    v = np.sort(np.asarray(values, float))
    keep = np.r_[True, np.diff(np.log(v)) > 1e-6]
    return v[keep]


def cut_values(values, *, cuts=None, levels=None, min_train: int = 2) -> list[float]:
    """The cuts of one family: ``cuts`` as given; else ``levels`` (k: fit on the k smallest distinct values); else, when
    the runs come in at most 20 distinct levels (IsoFLOP budgets), every k from half the levels to all but the last,
    and otherwise the 50, 60, 70, 80 and 90% quantiles. Default cuts that leave fewer than ``min_train`` runs to fit
    or none to forecast are left out."""
    values = np.asarray(values, float)
    lv = _levels(values)
    if cuts is not None:
        return [float(c) for c in cuts]
    if levels is not None:
        return [float(lv[k - 1]) for k in levels if 1 <= k < len(lv)]
    if len(lv) <= 20:
        out = [float(lv[k - 1]) for k in range(max(1, (len(lv) + 1) // 2), len(lv))]
    else:
        out = [float(np.quantile(values, q)) for q in (0.5, 0.6, 0.7, 0.8, 0.9)]
    return [c for c in out if np.sum(values <= c * (1 + 1e-9)) >= min_train and np.any(values > c * (1 + 1e-9))]


@dataclass(frozen=True)
class Backtest:
    """A backtest's scores. ``points``: one row per (cut, held-out run); ``cuts``: one row per (family, cut);
    ``predictive``: per held-out run, the draws the scores came from (log-loss means ``mu`` and noise scales
    ``scale``, ``(run, draw)``, with fixed unit noise and discrepancy normals), so that :meth:`rescored` can score
    another discrepancy; ``health``: the worst sampler health over the cuts."""

    law: Any
    by: str
    points: Any
    cuts: Any
    predictive: Mapping[str, np.ndarray] = field(repr=False)
    health: Any
    probs: tuple[float, ...] = DEFAULT_PROBS
    discrepancy: Discrepancy | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    train_lpd: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """What was backtested: the law's name, or the stack's label."""
        return self.settings.get("label") or self.law.name

    def pooled(self, by: str | None = None) -> Any:
        """Coverage at each probability, median absolute error (%), mean 90% width (%), mean log score and mean
        PIT over all held-out runs (``by="family"``: per family; ``by="cut"``: per cut)."""
        import pandas as pd

        groups = [("all", self.points)] if by is None else list(self.points.groupby(by, sort=False))
        rows = []
        for name, g in groups:
            row = {by or "pooled": name, "held_out": len(g), "cuts": g["cut"].nunique() if len(g) else 0}
            for p in self.probs:
                row[f"coverage_{_pct(p)}"] = float(g[f"inside_{_pct(p)}"].mean())
            row["median_abs_error_%"] = float(np.median(np.abs(g["error_%"])))
            row["mean_width_90_%"] = float(g["width_90_%"].mean()) if "width_90_%" in g else float("nan")
            row["mean_log_score"] = float(g["log_score"].mean())
            row["mean_pit"] = float(g["pit"].mean())
            row["max_extrapolation"] = float(g["extrapolation"].max())
            rows.append(row)
        return pd.DataFrame(rows)

    def pit_histogram(self, bins: int = 10) -> np.ndarray:
        """Counts of the held-out runs' PIT values in ``bins`` equal bins of [0, 1] (flat when calibrated)."""
        return np.histogram(self.points["pit"], bins=bins, range=(0.0, 1.0))[0]

    def log_score(self, tau: Mapping[str, float] | None, *, relative: bool = True, rows=None) -> float:
        """The held-out runs' total log predictive density with the discrepancy scales ``tau`` (None: without;
        ``relative``: in units of the noise sd), over ``rows`` (a mask or indices of :attr:`points`; default all)."""
        pred = self.predictive if rows is None else _rows(self.predictive, rows)
        return float(np.sum(_log_density(pred, None if tau is None else Discrepancy(tau=tau, relative=relative))))

    def sequentially_updated(self, prior: Discrepancy) -> Backtest:
        """Scored as a user would live it: at each cut, the discrepancy is ``prior`` updated by the runs that earlier
        cuts of the same family forecast and this cut has since fitted (nothing from the future; the first cut uses
        the prior alone). Honest scores of :meth:`Discrepancy.updated` on the user's own runs."""
        pts = self.points
        scored = {}
        keys = list(zip(pts["family"], pts["cut"]))
        for lab in dict.fromkeys(keys):
            rows = np.flatnonzero([k == lab for k in keys])
            fam, cut = lab
            known = np.flatnonzero((pts["family"] == fam).to_numpy() & (pts["cut"] < cut).to_numpy()
                                   & (pts["by"] <= cut * (1 + 1e-9)).to_numpy())
            disc = prior if not len(known) else prior.updated(lambda tau, k=known: self.log_score(tau, relative=prior.relative, rows=k))
            scored[lab] = (rows, score(_rows(self.predictive, rows), disc, self.probs))
        points = pts.copy()
        for rows, sc in scored.values():
            for k, v in sc.items():
                if k not in points:
                    points[k] = np.nan
                points.loc[points.index[rows], k] = v
        return replace(self, points=points, cuts=cut_table(points, self.probs), discrepancy=prior)

    def rescored(self, discrepancy: Discrepancy | None) -> Backtest:
        """The same fits scored with another discrepancy (None: without)."""
        scores = score(self.predictive, discrepancy, self.probs)
        points = self.points.copy()
        for k, v in scores.items():
            points[k] = v
        return replace(self, points=points, cuts=cut_table(points, self.probs), discrepancy=discrepancy)


def _pct(p: float) -> str:
    return f"{100 * p:g}"


@functools.lru_cache(maxsize=32)
def _log_mean_fn(law):
    """The law's log-loss means over draws, compiled once per law (a law is hashable and compared by value)."""
    return jax.jit(jax.vmap(lambda p, X: law.log_loss_runs(p, X), in_axes=(0, None)))


def _predictive(post, X: Mapping[str, np.ndarray], C: np.ndarray, max_draws: int, seed) -> dict[str, np.ndarray]:
    """Per held-out run: the posterior's log-loss means and noise scales over (up to ``max_draws``) draws."""
    flat = post.flat()
    S = len(next(iter(flat.values())))
    idx = np.linspace(0, S - 1, min(S, max_draws)).round().astype(int)
    P = {k: np.asarray(v)[idx] for k, v in flat.items()}
    mu = np.asarray(_log_mean_fn(post.law)(P, {k: np.asarray(v, float) for k, v in X.items()}))  # (draw, run)
    scale = np.stack([post.noise_scale(c).reshape(-1)[idx] for c in C], axis=1) if "gamma" in post.noise else \
        np.broadcast_to(post.noise["sigma"].reshape(-1)[idx][:, None], mu.shape)
    sigma0 = np.broadcast_to(post.noise["sigma"].reshape(-1)[idx][None, :], (mu.shape[1], len(idx)))
    return {"mu": mu.T, "scale": np.ascontiguousarray(scale.T), "sigma0": np.ascontiguousarray(sigma0)}


def _rows(pred: Mapping[str, Any], rows) -> dict[str, Any]:
    """The predictive record of some held-out runs (per-run arrays cut; the likelihood's name kept)."""
    n = len(pred["logy"])
    return {k: (v[rows] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v) for k, v in pred.items()}


def _spread(pred: Mapping[str, np.ndarray], disc: Discrepancy | None) -> np.ndarray:
    """The discrepancy's sd per held-out run and draw, ``(run, draw)`` (or ``(run, 1)``)."""
    dist = {k: pred[f"dist_{k}"] for k in AXES if f"dist_{k}" in pred}
    dist["beyond"] = np.ones(len(pred["logy"]))  # every held-out run is beyond the runs its cut fitted
    s = disc.scale(dist) if disc is not None else np.zeros(len(pred["logy"]))
    s = s[:, None] * (pred["kappa"] ** disc.log_sd if disc is not None and disc.log_sd > 0 else 1.0)  # kappa^sd ~ LogNormal(0, sd)
    # relative scales are multiples of the noise sd at the data's centre (not of a compute-scaled sd extrapolated)
    return s * pred.get("sigma0", pred["scale"]) if disc is not None and disc.relative else s


def _log_density(pred: Mapping[str, np.ndarray], disc: Discrepancy | None) -> np.ndarray:
    """log p(loss) of each held-out run under its predictive: the mixture over draws of the noise density at the
    residual left after that draw's discrepancy (a Monte Carlo average over the discrepancy normals ``z``)."""
    s = np.broadcast_to(_spread(pred, disc), pred["mu"].shape)
    return np.asarray(_mixture_fn(pred["likelihood"])(pred["logy"], pred["mu"], s, pred["z"], pred["scale"],
                                                      np.broadcast_to(pred["shape"], (len(pred["logy"]), 1))))


_MIXTURE: dict = {}


def _mixture_fn(likelihood: str):
    """One compiled program per likelihood: log mean_s p(log y - mu_s - s_s z_s | scale_s) - log y, per run."""
    if likelihood not in _MIXTURE:
        logpdf = noise_model(likelihood).logpdf

        def f(logy, mu, s, z, scale, shape):
            lp = logpdf(logy[:, None] - mu - s * z, scale, shape)
            return jax.scipy.special.logsumexp(lp, axis=1) - jnp.log(lp.shape[1]) - logy  # density of the loss

        _MIXTURE[likelihood] = jax.jit(f)
    return _MIXTURE[likelihood]


def score(pred: Mapping[str, np.ndarray], disc: Discrepancy | None, probs) -> dict[str, np.ndarray]:
    """Scores of each held-out run from its predictive draws (see :class:`Backtest`)."""
    y = pred["mu"] + pred["scale"] * pred["unit"] + _spread(pred, disc) * pred["z"]
    logy = pred["logy"][:, None]
    out = {"pit": np.mean(y <= logy, axis=1)}
    qs = sorted({0.5} | {q for p in probs for q in ((1 - p) / 2, (1 + p) / 2)})
    Q = dict(zip(qs, np.quantile(y, qs, axis=1)))
    out["median"] = np.exp(Q[0.5])
    for p in probs:
        lo, hi = Q[(1 - p) / 2], Q[(1 + p) / 2]
        out[f"inside_{_pct(p)}"] = (pred["logy"] >= lo) & (pred["logy"] <= hi)
        out[f"width_{_pct(p)}_%"] = 100 * (np.exp(hi - lo) - 1)
    out["error_%"] = 100 * (out["median"] / np.exp(pred["logy"]) - 1)
    out["log_score"] = _log_density(pred, disc)
    return out


def cut_table(points, probs):
    import pandas as pd

    rows = []
    for (fam, cut), g in points.groupby(["family", "cut"], sort=False):
        row = {"family": fam, "cut": cut, "train_runs": int(g["train_runs"].iloc[0]), "held_out": len(g)}
        for p in probs:
            row[f"coverage_{_pct(p)}"] = float(g[f"inside_{_pct(p)}"].mean())
        row["median_abs_error_%"] = float(np.median(np.abs(g["error_%"])))
        row["max_extrapolation"] = float(g["extrapolation"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def _plan(runs: Runs, values, law, *, cuts, levels, min_train):
    """``[(family, cut, train index, test index)]`` and the cuts left out (with why)."""
    groups = ([(f, np.flatnonzero(runs.family == f)) for f, _ in runs.family_sizes()] if runs.family is not None
              else [("all", np.arange(len(runs)))])
    plan, left_out = [], []
    for fam, idx in groups:
        v = values[idx]
        for c in cut_values(v, cuts=cuts, levels=levels, min_train=min_train):
            train, test = idx[v <= c * (1 + 1e-9)], idx[v > c * (1 + 1e-9)]
            where = f"cut at {c:g}" + ("" if fam == "all" else f" of family {fam}")
            if len(train) < min_train:
                if cuts is None and levels is None:
                    continue
                raise ValueError(f"backtest: {where} leaves {len(train)} runs to fit; law {law.name!r} needs at least {min_train}")
            if not len(test):
                left_out.append(f"{where}: no run beyond it to forecast")
                continue
            plan.append((fam, c, train, test))
    if not plan:
        raise ValueError(f"backtest: no cut leaves at least {min_train} runs to fit and one to forecast"
                         + ("".join(f"; {w}" for w in left_out)))
    return plan, left_out


def backtest(law, runs, *, by: str | Sequence[float] = "C", cuts: Sequence[float] | None = None,
             levels: Sequence[int] | None = None, probs: Sequence[float] = DEFAULT_PROBS,
             discrepancy: Discrepancy | None = None, likelihood: str = "student_t", nu=None, k=None, priors=None,
             num_warmup: int = 500, num_samples: int = 500, num_chains: int = 4, target_accept: float = 0.95,
             seed: int = 0, max_draws: int = 1000, noise_varies_with_compute: bool | None = None,
             progress_bar: bool = False, min_train: int | None = None, loo: bool = False) -> Backtest:
    """Rolling-origin backtest of ``law`` on ``runs`` (see the module's text). ``by``: what orders the runs (``"C"``,
    ``"N"``, ``"D"``, another role, or one value per run); ``cuts``: cut values (fit on runs <= cut), or ``levels``:
    numbers k of distinct values to fit on; default :func:`cut_values`. With a family column every family is cut
    on its own. ``discrepancy``: the extrapolation term scored (None: parameters and noise only). Sampler options
    as :func:`~bayes_scaling.sampling.sample_posterior` (shorter chains by default, 4 x (500 + 500), and a higher
    ``target_accept``, 0.95: many posteriors, some on few runs, and one bad chain spoils a cut). ``loo``: also keep
    each cut's PSIS-LOO densities of its fitted runs (``train_lpd``, what stacking weighs laws by)."""
    import pandas as pd

    from .batch_posterior import sample_posterior_batch

    law = get_law(law)
    runs = as_runs(runs)
    runs.inputs(law.inputs)
    probs = tuple(float(p) for p in probs)
    if not all(0 < p < 1 for p in probs):
        raise ValueError(f"backtest: probabilities must lie in (0, 1), not {probs}")
    values = _by_values(runs, by)
    need = max(int(min_train or 0), checks.min_runs(law, "posterior"))
    plan, left_out = _plan(runs, values, law, cuts=cuts, levels=levels, min_train=need)
    labels = [f"{fam} | {by if isinstance(by, str) else 'cut'} <= {c:.4g}" for fam, c, _, _ in plan]
    idx = np.concatenate([tr for _, _, tr, _ in plan])
    fam = np.concatenate([[lab] * len(tr) for lab, (_, _, tr, _) in zip(labels, plan)])
    batch_runs = replace(runs.select(idx), family=fam)
    bp = sample_posterior_batch(law, batch_runs, likelihood=likelihood, nu=nu, k=k, priors=priors,
                                noise_varies_with_compute=noise_varies_with_compute, num_warmup=num_warmup,
                                num_samples=num_samples, num_chains=num_chains, target_accept=target_accept, seed=seed,
                                progress_bar=progress_bar)
    C_all = _by_values(runs, "C") if ("N" in law.inputs and "D" in law.inputs) or runs.C is not None else None
    rng = np.random.default_rng(seed)
    rows, preds, train_lpd = [], [], {}
    for lab, (f, c, train, test) in zip(labels, plan):
        post = bp.posteriors[lab]
        if loo:
            train_lpd[lab] = loo_pointwise(post.log_likelihood())[0]
        X = {n: runs.column(n)[test] for n in law.inputs}
        pred = _predictive(post, X, C_all[test] if C_all is not None else np.ones(len(test)), max_draws, (seed, len(rows)))
        S = pred["mu"].shape[1]
        maxes = {a: float(np.max(_axis(runs, a, C_all)[train])) for a in AXES if _axis(runs, a, C_all) is not None}
        at = {a: _axis(runs, a, C_all)[test] for a in maxes}
        d = distances(at, maxes)
        shape = float(np.median(post.noise["nu"])) if "nu" in post.noise else shape_from_settings(post.settings)
        pred |= {"logy": np.log(runs.loss[test]), "unit": noise_model(post.settings.get("likelihood", likelihood)).unit(
            rng, shape, (len(test), S)), "z": rng.standard_normal((len(test), S)), "kappa": np.exp(rng.standard_normal((len(test), S)))}
        pred |= {f"dist_{a}": v for a, v in d.items()}
        pred["likelihood"], pred["shape"] = post.settings.get("likelihood", likelihood), shape
        preds.append(pred)
        ext = values[test] / np.max(values[train])
        for j, r in enumerate(test):
            rows.append({"family": f, "cut": c, "label": lab, "train_runs": len(train), "run": int(runs.rows[r]) if runs.rows is not None else int(r),
                         "by": float(values[r]), "loss": float(runs.loss[r]), "extrapolation": float(ext[j]),
                         **{f"extrapolation_{a}": float(np.exp(d[a][j])) for a in d}})
    pred = _concat(preds)
    points = pd.DataFrame(rows)
    for key, v in score(pred, discrepancy, probs).items():
        points[key] = v
    return Backtest(law=law, by=by if isinstance(by, str) else "values", points=points, cuts=cut_table(points, probs),
                    predictive=pred, health=bp.health(), probs=probs, discrepancy=discrepancy, train_lpd=train_lpd,
                    settings={"likelihood": likelihood, "num_warmup": num_warmup, "num_samples": num_samples,
                              "num_chains": num_chains, "target_accept": target_accept, "seed": seed, "left_out": left_out, "seconds": bp.seconds,
                              "skipped": dict(bp.skipped)})


def _axis(runs: Runs, a: str, C_all):
    if a == "C":
        return C_all
    return getattr(runs, a, None) if a in ("N", "D") else None


def _concat(preds: list[dict]) -> dict[str, Any]:
    """One predictive record over the cuts: arrays stacked by held-out run (draw counts equal), distances kept only
    where every cut has them; likelihood and shape must agree (one sampler call)."""
    S = min(p["mu"].shape[1] for p in preds)
    out: dict[str, Any] = {}
    for key in DRAW_KEYS:
        out[key] = np.concatenate([p[key][:, :S] for p in preds])
    out["logy"] = np.concatenate([p["logy"] for p in preds])
    for a in AXES:
        if all(f"dist_{a}" in p for p in preds):
            out[f"dist_{a}"] = np.concatenate([p[f"dist_{a}"] for p in preds])
    out["likelihood"] = preds[0]["likelihood"]
    out["shape"] = np.concatenate([np.full(len(p["logy"]), p["shape"]) for p in preds])[:, None]
    return out

"""IsoFLOP (Approach 2) and envelope (Approach 1) methods with posteriors (METHODS §2).

**IsoFLOP.** Runs share a compute budget C_k and differ in size N. Per budget a parabola of loss in
x = log N,

    L_ki = L*_k + h_k (x_ki - v_k)^2 + noise,       noise ~ StudentT(4, 0, sigma_k),

whose vertex v_k = log N_opt(C_k) lies on the budgets' power law, in one joint model,

    v_k = m + a (log C_k - mean log C),

so each vertex's uncertainty (few runs, a flat curve) carries into the exponent a (N_opt ∝ C^a): a budget
whose parabola is poorly pinned down pulls on a less. This is the published Approach 2 (the vertices
regressed on log C, each weighted by its precision; Porian et al. weight by 1/std^2 of their bootstrapped
optima), done in one posterior. ``scatter=True`` lets the vertices scatter about the law,
v_k ~ Normal(line, tau), tau ~ LogNormal(log 0.05, 1) (boundary-avoiding: with a prior allowing tau = 0 the
joint density is unbounded where every vertex sits on the line): wider, more conservative intervals, but a
systematic vertex bias (below) is then absorbed as scatter rather than shown. Priors: a ~ Normal(0.5, 0.5),
m ~ Normal(least-squares intercept, 3), L*_k ~ Normal(best loss_k, 1), log h_k ~ Normal(log 0.2, 2), and the noise scale
sigma_k = sigma x (best loss_k), sigma ~ HalfNormal(0.05):
relative noise shared by the budgets (a free scale per budget has no residual degrees of freedom at a
budget with 3 runs in its window, and NUTS then mixes poorly: R-hat up to 1.12 on Porian's data). D_opt(C_k) = C_k / (r_k N_opt(C_k)) with
r_k = C/(N D) of the budget's runs (6 under C = 6ND), so b (D_opt ∝ C^b) = 1 - a - (least-squares slope
of log r_k against log C_k), draw by draw: b = 1 - a when r is the same at every budget.

Per budget only the runs near the minimum enter (``window``: loss <= (1 + window) x the budget's best,
at least the best run and its two neighbours): a parabola in log N describes a loss curve only near its
minimum. ``window=None`` uses every run (Hoffmann et al.'s practice). The vertex of a parabola fitted to
an *asymmetric* curve sampled off-centre is biased (Czech et al. 2026); a budget whose best run is at the
edge of its sizes (minimum not bracketed), or whose vertex lies in the outer part of its sampled range,
gets a warning.

Many configurations (families) are sampled in one compiled call, padded and masked over budgets and runs
(:func:`isoflop_batch`).

**Envelope.** :func:`envelope` keeps the runs (and checkpoints) on the lower envelope of loss against
compute (no other point reaches a lower loss with no more compute) and fits N_opt = k C^a and
D_opt = k C^b through them (:func:`~bayes_scaling.analyses.hyperparams.fit_power_law`) and L = E + A C^-alpha
(:func:`~bayes_scaling.sampling.sample_posterior` with the ``power_law_floor`` law).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from ..defaults import tokens_of
from ..draws import Draws, FromSampler, quantiles, sample_model, sample_models
from ..noise import student_t_logpdf
from ..posterior import DEFAULT_PROB

__all__ = ["IsoflopData", "prepare_isoflop", "IsoflopPosterior", "isoflop", "isoflop_batch", "isoflop_model",
           "read_source", "numeric_column"]

_OFF_CENTRE = 0.5  # |vertex - mid| / half-range of the budget's sizes above which a budget is called off-centre


@dataclass(frozen=True, eq=False)
class IsoflopData:
    """One configuration's IsoFLOP grid as padded arrays: ``x`` = log N, ``y`` = loss, ``mask`` (1: a run in
    the parabola's window) all ``(budget, run)``; ``C``, ``log_r`` (log C/(N D)) per budget; ``span`` the
    (min, max) log N of all the budget's runs; ``warnings`` the soft problems found."""

    C: np.ndarray
    x: np.ndarray
    y: np.ndarray
    mask: np.ndarray
    log_r: np.ndarray
    span: np.ndarray
    warnings: tuple[str, ...] = ()
    source: str = "<DataFrame>"

    @property
    def num_budgets(self) -> int:
        return int(len(self.C))

    def padded(self, K: int, M: int) -> IsoflopData:
        """The same data padded to K budgets and M runs (padding masked out)."""
        k, m = self.x.shape
        pad = lambda a, v: np.pad(a, ((0, K - k), (0, M - m)), constant_values=v)
        return IsoflopData(C=np.pad(self.C, (0, K - k), constant_values=1.0), x=pad(self.x, 0.0), y=pad(self.y, 1.0),
                           mask=pad(self.mask, 0.0), log_r=np.pad(self.log_r, (0, K - k)),
                           span=np.pad(self.span, ((0, K - k), (0, 0))), warnings=self.warnings, source=self.source)


def read_source(source, sep=None, name=None):
    """The table and its name; a DataFrame keeps its index, whose labels + 1 are the rows named in messages when
    it is a part of a file (``isoflop_batch``); a file or a user's DataFrame is numbered from row 1."""
    from ..data import read_table

    df, name, from_file = read_table(source, sep=sep, name=name)
    return (df.reset_index(drop=True) if from_file or name == "<DataFrame>" else df), name


def numeric_column(df, col, name, *, positive=True):
    import pandas as pd

    from ..data import missing_column

    if col not in df.columns:
        raise missing_column(name, col, df)
    v = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(v) | ((v <= 0) if positive else False))
    if bad.size:
        raw = df[col].iloc[bad[0]]
        text = "empty" if pd.isna(raw) else repr(str(raw))
        raise ValueError(f"{name}: column {col!r}, row {_rows(df)[bad[0]]}: {text} is not a positive number")
    return v


def _rows(df) -> np.ndarray:
    """Each row's number in its file (1-based data rows): index labels + 1."""
    return np.asarray(df.index, dtype=int) + 1


def prepare_isoflop(source, *, C: str = "C", N: str = "N", loss: str = "loss", D: str | None = "D",
                    window: float | None = 0.05, min_runs: int = 3, sep: str | None = None,
                    name: str | None = None) -> IsoflopData:
    """Validate an IsoFLOP table (CSV path or DataFrame; one row per run) and select each budget's window.

    Errors name the column and row (missing, non-positive or non-numeric values; a size twice in a budget).
    Budgets with fewer than ``min_runs`` runs are left out with a warning (a parabola needs 3); fewer than
    2 budgets left is an error. A budget whose best run is its smallest or largest model (the runs do not
    bracket the minimum) gets a warning.
    """
    df, name = read_source(source, sep, name)
    if len(df) == 0:
        raise ValueError(f"{name}: the table is empty")
    Cv, Nv, Lv = numeric_column(df, C, name), numeric_column(df, N, name), numeric_column(df, loss, name)
    Dv = numeric_column(df, D, name) if D is not None and D in df.columns else tokens_of(Cv, Nv)
    row = _rows(df)
    notes = []
    budgets = []
    for c in np.unique(Cv):
        idx = np.flatnonzero(Cv == c)
        idx = idx[np.argsort(Nv[idx], kind="stable")]
        dup = np.flatnonzero(np.diff(Nv[idx]) == 0)
        if dup.size:
            i, j = sorted((idx[dup[0]], idx[dup[0] + 1]))
            raise ValueError(f"{name}: column {N!r}, row {row[j]}: size {Nv[j]:g} appears twice at budget {c:g} "
                             f"(rows {row[i]} and {row[j]}); average or drop one")
        if len(idx) < min_runs:
            msg = (f"{name}: budget {c:g} has {len(idx)} run(s) (rows {', '.join(str(row[i]) for i in idx)}); a parabola "
                   f"needs at least {min_runs}: left out")
            warnings.warn(msg, stacklevel=2)
            notes.append(msg)
            continue
        y = Lv[idx]
        best = int(np.argmin(y))
        if best in (0, len(idx) - 1):
            side = "smallest" if best == 0 else "largest"
            msg = (f"{name}: budget {c:g}: the lowest loss is at the {side} model (row {row[idx[best]]}); the runs do not "
                   "bracket the minimum, so its vertex is an extrapolation (add runs on that side)")
            warnings.warn(msg, stacklevel=2)
            notes.append(msg)
        if window is None:
            keep = np.ones(len(idx), bool)
        else:
            keep = y <= y[best] * (1 + window)
            keep[max(best - 1, 0): best + 2] = True
            if keep.sum() < 3:  # best at an edge: take the three nearest
                keep[:] = False
                lo = min(max(best - 1, 0), len(idx) - 3)
                keep[lo: lo + 3] = True
        budgets.append((c, idx, keep))
    if len(budgets) < 2:
        raise ValueError(f"{name}: {len(budgets)} budget(s) with at least {min_runs} runs; the exponent needs at least 2")
    K = len(budgets)
    M = max(int(k.sum()) for _, _, k in budgets)
    x, y, mask = np.zeros((K, M)), np.ones((K, M)), np.zeros((K, M))
    Cs, log_r, span = np.zeros(K), np.zeros(K), np.zeros((K, 2))
    for k, (c, idx, keep) in enumerate(budgets):
        sel = idx[keep]
        x[k, : len(sel)] = np.log(Nv[sel])
        y[k, : len(sel)] = Lv[sel]
        mask[k, : len(sel)] = 1.0
        Cs[k] = c
        log_r[k] = float(np.median(np.log(c / (Nv[idx] * Dv[idx]))))
        span[k] = np.log(Nv[idx]).min(), np.log(Nv[idx]).max()
    return IsoflopData(C=Cs, x=x, y=y, mask=mask, log_r=log_r, span=span, warnings=tuple(notes), source=name)


def _isoflop_model(x, y, mask, bmask, logC, prior, *, scatter: bool):
    K = x.shape[0]
    a = numpyro.sample("a", dist.Normal(0.5, 0.5))
    m = numpyro.sample("m", dist.Normal(prior["m0"], 3.0))
    line = m + a * (logC - prior["c"])
    if scatter:
        tau = numpyro.sample("tau", dist.LogNormal(jnp.log(0.05), 1.0))
        # centred vertices (the runs pin each one down); padding budgets get an independent Normal(0, 1)
        v = numpyro.sample("vertex", dist.ImproperUniform(dist.constraints.real_vector, (), (K,)))
        numpyro.factor("vertex_prior", jnp.sum(jnp.where(bmask > 0, dist.Normal(line, tau).log_prob(v),
                                                         dist.Normal(0.0, 1.0).log_prob(v))))
    else:
        v = numpyro.deterministic("vertex", line)
    L = numpyro.sample("L_star", dist.Normal(prior["ymin"], 1.0).to_event(1))
    logh = numpyro.sample("log_h", dist.Normal(jnp.full(K, jnp.log(0.2)), 2.0).to_event(1))
    sigma = numpyro.sample("sigma", dist.HalfNormal(0.05))
    mu = L[:, None] + jnp.exp(logh)[:, None] * (x - v[:, None]) ** 2
    ll = student_t_logpdf(y - mu, sigma * prior["ymin"][:, None], 4.0)
    numpyro.factor("log_likelihood", jnp.sum(ll * mask * bmask[:, None]))


def isoflop_model(x, y, mask, bmask, logC, prior):
    """The joint IsoFLOP model of the module docstring, vertices on the law (``scatter=False``):
    ``(budget, run)`` arrays, ``bmask``/``logC`` per budget, ``prior`` holds ``c`` (mean log C), ``m0``,
    ``ymin`` (budget,)."""
    _isoflop_model(x, y, mask, bmask, logC, prior, scatter=False)


def isoflop_scatter_model(x, y, mask, bmask, logC, prior):
    """:func:`isoflop_model` with the vertices scattered about the law by tau (``scatter=True``)."""
    _isoflop_model(x, y, mask, bmask, logC, prior, scatter=True)


def _model(scatter: bool):
    return isoflop_scatter_model if scatter else isoflop_model


def _args_and_start(d: IsoflopData, real: int, scatter: bool):
    """Model args and a least-squares start (per-budget parabolas, then a line through their vertices)."""
    K = d.num_budgets
    bmask = (np.arange(K) < real).astype(float)
    logC = np.log(d.C)
    c = float(np.mean(logC[:real]))
    v0, L0, h0, ymin = np.zeros(K), np.zeros(K), np.full(K, 0.2), np.ones(K)
    for k in range(K):
        m = d.mask[k] > 0
        if k >= real or m.sum() < 3:
            continue
        xs, ys = d.x[k][m], d.y[k][m]
        ymin[k] = ys.min()
        c2, c1, c0 = np.polyfit(xs, ys, 2)
        best = xs[np.argmin(ys)]
        if c2 > 1e-6:
            v0[k] = float(np.clip(-c1 / (2 * c2), xs.min() - 1, xs.max() + 1))
            h0[k] = c2
        else:
            v0[k] = best
        L0[k] = ys.min()
    a0, m0 = np.polyfit(logC[:real] - c, v0[:real], 1)
    resid = v0[:real] - (m0 + a0 * (logC[:real] - c))
    tau0 = max(float(np.std(resid)), 0.02)
    L0[real:] = 1.0
    prior = {"c": jnp.asarray(c), "m0": jnp.asarray(float(m0)), "ymin": jnp.asarray(ymin)}
    args = (jnp.asarray(d.x), jnp.asarray(d.y), jnp.asarray(d.mask), jnp.asarray(bmask), jnp.asarray(logC), prior)
    values = {"a": float(np.clip(a0, -0.9, 1.9)), "m": float(m0), "L_star": L0,
              "log_h": np.log(np.maximum(h0, 1e-3)), "sigma": 0.005}
    if scatter:
        values.update(tau=tau0, vertex=v0)
    return args, values


@dataclass(frozen=True, eq=False)
class IsoflopPosterior(FromSampler):
    """Posterior of one configuration's IsoFLOP analysis: flat draws of ``a``, ``b``, the law's intercept
    ``m`` at log C = ``c``, scatter ``tau``; ``vertex`` ``(draw, budget)`` = log N_opt(C_k); ``data``; the
    NUTS ``sampler``; ``warnings`` (unbracketed or off-centre budgets)."""

    ANALYSIS = "isoflop"

    data: IsoflopData
    a: np.ndarray
    b: np.ndarray
    m: np.ndarray
    c: float
    tau: np.ndarray
    vertex: np.ndarray
    sampler: Draws
    warnings: tuple[str, ...] = ()

    def n_opt(self, C, *, predictive: bool = False, seed: int = 0) -> np.ndarray:
        """Draws of N_opt at budgets ``C``: ``(draw, budget)``; ``predictive`` adds the vertex scatter tau
        (where one new budget's IsoFLOP vertex would land) to the law's own uncertainty."""
        logC = np.log(np.atleast_1d(np.asarray(C, float)))
        lv = self.m[:, None] + self.a[:, None] * (logC[None, :] - self.c)
        if predictive:
            lv = lv + self.tau[:, None] * np.random.default_rng(seed).standard_normal(lv.shape)
        return np.exp(lv)

    def d_opt(self, C, **kw) -> np.ndarray:
        """Draws of D_opt = C / (r N_opt), r = C/(N D) of the data (median over budgets; 6 under C = 6ND)."""
        C = np.atleast_1d(np.asarray(C, float))
        return C[None, :] / (np.exp(np.median(self.data.log_r)) * self.n_opt(C, **kw))

    def vertices(self, prob: float = DEFAULT_PROB):
        """Per budget: N_opt (vertex) median and interval, and the runs used."""
        import pandas as pd

        rows = []
        for k, C in enumerate(self.data.C):
            q = quantiles(np.exp(self.vertex[:, k]), prob)
            rows.append({"C": C, "N_opt": q["median"], "N_opt_lo": q["lo"], "N_opt_hi": q["hi"],
                         "runs": int(self.data.mask[k].sum())})
        return pd.DataFrame(rows)

    def summary(self, prob: float = DEFAULT_PROB):
        import pandas as pd

        rows = {"a": quantiles(self.a, prob), "b": quantiles(self.b, prob), "tau": quantiles(self.tau, prob)}
        return pd.DataFrame.from_dict(rows, orient="index")

    def forecast(self, budgets, *, prob: float = DEFAULT_PROB):
        """N_opt and D_opt at ``budgets`` (FLOPs): medians and intervals of the law (mean vertex)."""
        import pandas as pd

        N, D = self.n_opt(budgets), self.d_opt(budgets)
        rows = []
        for j, C in enumerate(np.atleast_1d(budgets)):
            qn, qd = quantiles(N[:, j], prob), quantiles(D[:, j], prob)
            rows.append({"budget": float(C), "N_opt": qn["median"], "N_opt_lo": qn["lo"], "N_opt_hi": qn["hi"],
                         "D_opt": qd["median"], "D_opt_lo": qd["lo"], "D_opt_hi": qd["hi"]})
        return pd.DataFrame(rows)



def _posterior(d: IsoflopData, s: Draws, real: int, c: float) -> IsoflopPosterior:
    a, m = s.flat("a"), s.flat("m")
    tau = s.flat("tau") if "tau" in s.draws else np.zeros_like(a)
    v = s.flat("vertex")[:, :real]
    logC = np.log(d.C[:real])
    # b: log D_opt = log C - log r - log N_opt, so b = 1 - a - (slope of log r against log C; 0 under C = 6ND)
    lc = logC - logC.mean()
    b = 1.0 - a - float(np.sum(d.log_r[:real] * lc) / np.sum(lc ** 2))
    notes = list(d.warnings)
    vmed = np.median(v, axis=0)
    for k in range(real):
        lo, hi = d.span[k]
        frac = (vmed[k] - 0.5 * (lo + hi)) / max(0.5 * (hi - lo), 1e-12)
        if abs(frac) > _OFF_CENTRE:
            msg = (f"{d.source}: budget {d.C[k]:g}: the vertex (N_opt ~ {np.exp(vmed[k]):.3g}) lies in the outer "
                   f"{'upper' if frac > 0 else 'lower'} part of the sampled sizes ({np.exp(lo):.3g}-{np.exp(hi):.3g}, "
                   f"offset {frac:+.2f} of the half-range): an off-centre grid biases the parabola's vertex when the "
                   "loss curve is asymmetric (Czech et al. 2026); centre the sizes on the optimum")
            notes.append(msg)
    notes += [f"{d.source}: sampler: {w}" for w in s.diagnostics()["warnings"]]
    return IsoflopPosterior(data=d, a=a, b=b, m=m, c=c, tau=tau, vertex=v, sampler=s, warnings=tuple(notes))


_WATCH = ("a", "m", "sigma", "L_star", "log_h")


def isoflop(source, *, C: str = "C", N: str = "N", loss: str = "loss", D: str | None = "D", window: float | None = 0.05,
            scatter: bool = False, seed: int = 0, num_warmup: int = 500, num_samples: int = 500, num_chains: int = 4,
            target_accept: float = 0.95, sep: str | None = None) -> IsoflopPosterior:
    """Posterior of one configuration's IsoFLOP analysis (module docstring). ``source``: an
    :class:`IsoflopData`, a CSV path or a DataFrame with columns ``C``, ``N``, ``loss`` (and ``D``).
    Soft problems (unbracketed minima, off-centre grids) and an unhealthy sampler are warned about and kept in
    ``.warnings``."""
    d = source if isinstance(source, IsoflopData) else prepare_isoflop(source, C=C, N=N, loss=loss, D=D, window=window, sep=sep)
    args, values = _args_and_start(d, d.num_budgets, scatter)
    s = sample_model(_model(scatter), args, values, watch=_WATCH + (("tau",) if scatter else ()), seed=seed, num_warmup=num_warmup,
                     num_samples=num_samples, num_chains=num_chains, target_accept=target_accept)
    post = _posterior(d, s, d.num_budgets, float(args[-1]["c"]))
    for w in post.warnings[len(d.warnings):]:
        warnings.warn(w, stacklevel=2)
    return post


def _trim_draws(s: Draws, real: int) -> Draws:
    """A padded configuration's draws with the per-budget sites cut to its ``real`` budgets."""
    per_budget = ("vertex", "L_star", "log_h")
    draws = {k: (v[:, :, :real] if k in per_budget and v.ndim == 3 else v) for k, v in s.draws.items()}
    return Draws(draws=draws, sample_stats=s.sample_stats, watch=s.watch, settings=s.settings)


def isoflop_batch(source, *, by: Sequence[str], C: str = "C", N: str = "N", loss: str = "loss", D: str | None = "D",
                  window: float | None = 0.05, scatter: bool = False, seed: int = 0, num_warmup: int = 500, num_samples: int = 500,
                  num_chains: int = 4, target_accept: float = 0.95, family_chunk: int | None = None,
                  sep: str | None = None) -> dict[str, IsoflopPosterior]:
    """IsoFLOP posteriors of every configuration (rows sharing the ``by`` columns) in one compiled call: each
    configuration's budgets and runs are padded to the largest and masked, and the same model runs on all
    (vmapped on GPU/TPU, one after another in one compiled loop on CPU). Returns ``{label: posterior}``,
    label = the ``by`` values joined with "/"."""
    from ..data import missing_column

    df, name = read_source(source, sep)
    for col in by:
        if col not in df.columns:
            raise missing_column(name, col, df)
    labels = df[list(by)].astype(str).agg("/".join, axis=1)
    datas = {}
    with warnings.catch_warnings():  # kept in each configuration's .warnings; one summary line per configuration below
        warnings.simplefilter("ignore")
        for lab in dict.fromkeys(labels):
            sub = df[labels == lab]  # keeps the file's row numbers for messages
            datas[lab] = prepare_isoflop(sub, C=C, N=N, loss=loss, D=D, window=window, name=f"{name} [{lab}]")
    K = max(d.num_budgets for d in datas.values())
    M = max(d.x.shape[1] for d in datas.values())
    args_list, values_list, reals = [], [], []
    for d in datas.values():
        a, v = _args_and_start(d.padded(K, M), d.num_budgets, scatter)
        args_list.append(a)
        values_list.append(v)
        reals.append(d.num_budgets)
    draws = sample_models(_model(scatter), args_list, values_list, watch=_WATCH + (("tau",) if scatter else ()), seed=seed, num_warmup=num_warmup,
                          num_samples=num_samples, num_chains=num_chains, target_accept=target_accept,
                          family_chunk=family_chunk)
    out = {}
    for (lab, d), a, s, real in zip(datas.items(), args_list, draws, reals):
        # the configuration's own (unpadded) data: padded budgets and runs reach no statistic
        out[lab] = _posterior(d, _trim_draws(s, real), real, float(a[-1]["c"]))
        off = sum("off-centre" in w for w in out[lab].warnings)
        unb = sum("do not bracket" in w for w in out[lab].warnings)
        dropped = sum("left out" in w for w in out[lab].warnings)
        unhealthy = not out[lab].diagnostics()["ok"]
        if off or unb or dropped or unhealthy:
            warnings.warn(f"{name} [{lab}]: {off} budget(s) off-centre, {unb} not bracketing the minimum, {dropped} left out "
                          f"for too few runs{', sampler NOT HEALTHY' if unhealthy else ''} (details in .warnings)", stacklevel=2)
    return out

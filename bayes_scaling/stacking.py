"""Law-form uncertainty: candidate laws fitted to the same runs, compared by PSIS-LOO and combined by stacking.

No single law form is known to be right, and the forms disagree most where forecasts matter, far beyond the data.
Each candidate law gets its own posterior; their predictive distributions are combined with the weights that
maximise the leave-one-out log score of the mixture (stacking of predictive distributions, Yao, Vehtari, Simpson and
Gelman 2018, eq. 4: ``max_w sum_i log sum_k w_k p(y_i | y_-i, law k)``, w on the simplex), where p(y_i | y_-i) is
estimated by Pareto-smoothed importance sampling (arviz ``loo``; a Pareto k above 0.7 is reported, since the
estimate is then unreliable). A forecast of the stack is the mixture: each law's draws in proportion to its weight,
so that its intervals hold the spread between the laws as well as within each.

Candidates (``"auto"``): Chinchilla; Chinchilla with one exponent (alpha = beta); Kaplan's L(N, D); with a unique-token
column, the data-constrained law; and on a frontier table (one run per compute budget: IsoFLOP vertices, an
envelope) the compute-only power law with a floor, L*(C) = E + A C^-alpha, which there predicts the same losses as
the joint laws' L*(C). Off the frontier a compute-only law cannot describe runs of one budget at different sizes,
so it is a candidate only there (by name it is refused only when the table lacks C or N and D).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backtests import DRAW_KEYS, backtest, cut_table, score
from .data import Runs
from .defaults import PROB as DEFAULT_PROB
from .diagnostics import Health
from .laws import Law, get_law
from .loo import PARETO_K_MAX, loo_pointwise, stacking_weights

__all__ = ["candidate_laws", "draw_counts", "is_frontier", "StackedPosterior", "sample_stacked", "backtest_stacked"]


def draw_counts(weights, total: int) -> np.ndarray:
    """How many of ``total`` mixture draws each weight gives: largest remainders, so the counts sum to ``total``."""
    raw = np.asarray(weights, float) * total
    counts = np.floor(raw).astype(int)
    counts[np.argsort(raw - counts)[::-1][: total - counts.sum()]] += 1
    return counts


#: the least share of steps along compute, within a family, in which a frontier's loss falls (and its N, where
#: given, grows; a learning curve of one model is not a frontier): 1.0 on every Porian configuration's vertices,
#: about 0.5 on Chinchilla's runs
FRONTIER_MONOTONE = 0.8


def is_frontier(runs: Runs) -> bool:
    """Whether ``runs`` form a frontier in each family (e.g. IsoFLOP vertices N_opt, D_opt, L* per budget): one run per
    compute budget, the loss falling and the model size growing along compute in at least
    :data:`FRONTIER_MONOTONE` of the steps. A compute-only law L(C) describes such a table as well as the joint laws."""
    if runs.C is None or len(runs) < 3:
        return False
    fams = runs.family if runs.family is not None else np.zeros(len(runs))
    for f in np.unique(fams):
        sel = np.flatnonzero(fams == f)
        order = sel[np.argsort(runs.C[sel])]
        if len(order) < 3 or np.any(np.diff(np.log(runs.C[order])) < 1e-6):
            return False
        steps = [np.diff(runs.loss[order]) < 0] + ([np.diff(runs.N[order]) > 0] if runs.N is not None else [])
        if any(np.mean(s) < FRONTIER_MONOTONE for s in steps):
            return False
    return True


def candidate_laws(runs: Runs, names: str | Sequence[str | Law] = "auto") -> list[Law]:
    """The laws to stack: ``"auto"`` (module text) or names / laws; a law whose inputs the table lacks is refused
    with a line naming it and the missing column."""
    if isinstance(names, str) and names == "auto":
        has = lambda role: getattr(runs, role, None) is not None or (role == "D" and runs.C is not None and runs.N is not None)
        out = [get_law("chinchilla"), get_law("chinchilla").tie(beta="alpha"), get_law("kaplan")]
        if has("U"):
            out.append(get_law("data_constrained"))
        if is_frontier(runs):
            out.append(get_law("power_law_floor"))
        return out
    if isinstance(names, str):
        names = [n.strip() for n in re.split(r",(?![^\[]*\])", names) if n.strip()]  # commas outside [...]
    laws = []
    for n in names:
        law = n if isinstance(n, Law) else _law_by_spec(n)
        for inp in law.inputs:
            if getattr(runs, inp, None) is None and not (inp == "D" and runs.C is not None and runs.N is not None):
                raise ValueError(f"--laws: law {law.name!r} needs {inp!r}, which {runs.source} does not have")
        laws.append(law)
    if len({law.name for law in laws}) < len(laws):
        raise ValueError("--laws: a law is named twice")
    if len(laws) < 2:
        raise ValueError("--laws: stacking needs at least two laws (or 'auto')")
    return laws


def _law_by_spec(text: str) -> Law:
    from .tying import parse_ties
    from .user_laws import load_law

    name, _, tie = text.partition("[")
    law = load_law(name)
    if tie:  # "chinchilla[beta=alpha]"
        if not tie.endswith("]"):
            raise ValueError(f"--laws {text!r}: expected LAW[NAME=OTHER,...], e.g. chinchilla[beta=alpha]")
        law = law.tie(**parse_ties(tie[:-1].split(","), option=f"--laws {name}[...]"))
    return law


@dataclass(frozen=True)
class StackedPosterior:
    """Posteriors of several laws on the same runs with their stacking weights. ``loo``: per law, elpd_loo, its
    standard error and the worst Pareto k; ``warnings``: unreliable LOO estimates and unhealthy samplers."""

    posteriors: Mapping[str, Any]
    weights: Mapping[str, float]
    loo: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def summary(self):
        """One row per law: weight, elpd_loo (se), max Pareto k, sampler health."""
        import pandas as pd

        rows = [{"law": name, "weight": float(self.weights[name]), **dict(self.loo.get(name, {})),
                 "healthy": bool(post.health().ok)} for name, post in self.posteriors.items()]
        return pd.DataFrame(rows)

    def health(self) -> Health:
        return Health.combine({n: p.health() for n, p in self.posteriors.items()}, extra_warnings=())

    def draw_counts(self, total: int) -> dict[str, int]:
        """How many of ``total`` mixture draws each law gives (:func:`draw_counts`)."""
        names = list(self.posteriors)
        return dict(zip(names, draw_counts([self.weights[n] for n in names], total).tolist()))

    def mixture(self, per_law: Mapping[str, np.ndarray], seed=0) -> np.ndarray:
        """The stacked draws of a quantity from each law's draws ``per_law[name]`` ``(draw, ...)``: each law's
        share drawn (with replacement) from its own."""
        rng = np.random.default_rng(seed)
        total = min(len(v) for v in per_law.values())
        parts = [per_law[n][rng.integers(0, len(per_law[n]), c)] for n, c in self.draw_counts(total).items() if c]
        return np.concatenate(parts)

    def forecast(self, budgets, *, prob: float = DEFAULT_PROB, discrepancy=None, seed: int = 0):
        """Per budget: the stack's medians and ``prob`` intervals of N_opt, D_opt, L* (the mean laws) and one new
        run's loss at the optimum, with the extrapolation term of ``discrepancy`` (a
        :class:`~bayes_scaling.discrepancy.Discrepancy`; None: without) at the optimum's distance beyond the runs;
        and where the new run's uncertainty comes from, as shares of its log-loss variance: ``share_noise`` (the runs'
        scatter), ``share_parameters`` (each law's posterior), ``share_law_form`` (between the laws' means) and
        ``share_extrapolation`` (the discrepancy)."""
        import pandas as pd

        from . import derived
        from .posterior import interval

        budgets = derived.check_budgets(budgets)
        per = {name: _new_run_draws(post, budgets, discrepancy, (seed, j)) for j, (name, post) in enumerate(self.posteriors.items())}
        w = np.array([self.weights[n] for n in per])
        rows = []
        for i, C in enumerate(budgets):
            row = {"budget": float(C)}
            for q in ("N_opt", "D_opt", "L*", "L_new"):
                if all(q in v for v in per.values()):
                    x = self.mixture({n: v[q][:, i] for n, v in per.items()}, seed=(seed, i))
                    row[q] = float(np.median(x))
                    row[f"{q}_lo"], row[f"{q}_hi"] = interval(x, prob)
            means = np.array([np.log(v["L*"][:, i]).mean() for v in per.values()])
            parts = {"noise": w @ [v["var_noise"][i] for v in per.values()],
                     "parameters": w @ [np.log(v["L*"][:, i]).var() for v in per.values()],
                     "law_form": float(w @ (means - w @ means) ** 2),
                     "extrapolation": w @ [v["var_extrap"][i] for v in per.values()]}
            total = max(sum(parts.values()), 1e-300)
            row |= {f"share_{k}": float(v) / total for k, v in parts.items()}
            row["extrapolation"] = float(np.median([v["extrapolation"][i] for v in per.values()]))
            rows.append(row)
        return pd.DataFrame(rows)


def _new_run_draws(post, budgets, discrepancy, seed) -> dict[str, np.ndarray]:
    """One law's draws at ``budgets``: N_opt, D_opt, L* and a new run's loss at the optimum (noise, and the
    discrepancy at the optimum's distance beyond the runs), with the noise's and the discrepancy's log-variance."""
    from . import derived

    out = {k: np.asarray(v) for k, v in derived.over_draws(post.law, "frontier", post.flat(), budgets).items()}
    at = {"C": budgets} | {k: out[f"{k}_opt"] for k in ("N", "D") if f"{k}_opt" in out}
    eps, out["var_noise"], out["var_extrap"] = new_run_deviation(post, at, discrepancy, seed)
    out["L_new"] = out["L*"] * np.exp(eps)
    out["extrapolation"] = budgets / (post.max_compute() or float("nan"))
    return out


def new_run_deviation(post, at: Mapping[str, np.ndarray], discrepancy, seed):
    """Draws ``(draw, point)`` of one new run's log-loss deviation from ``post``'s mean law at points ``at`` (``C``:
    compute, ``(point,)`` or ``(draw, point)``; optional ``N``, ``D`` likewise): the noise at that compute and the
    discrepancy (None: without) at the point's distance beyond the runs; with the mean log-variance of each part per
    point (``var_noise``, ``var_extrap``)."""
    from .discrepancy import distances
    from .noise import noise_model, shape_from_settings

    rng = np.random.default_rng(seed)
    noise = noise_model(post.settings.get("likelihood", "student_t"), legacy=True)
    shape = shape_from_settings(post.settings)
    sig = post.flat_noise_scale(at["C"])
    unit = noise.unit(rng, shape, sig.shape)
    obs = post.observed
    dist_at = {"C": np.broadcast_to(at["C"], sig.shape)}
    data_max = {"C": post.max_compute() or float("nan")}
    for k in ("N", "D"):
        if k in at and k in obs:
            dist_at[k], data_max[k] = np.broadcast_to(at[k], sig.shape), float(np.max(obs[k]))
    s = discrepancy.scale(distances(dist_at, data_max)) if discrepancy is not None else np.zeros(sig.shape)
    if discrepancy is not None:
        s = s * discrepancy.multipliers(rng, s.shape[0])[:, None] * (post.noise["sigma"].reshape(-1)[:, None] if discrepancy.relative else 1.0)
    eps = sig * unit + s * rng.standard_normal(s.shape)
    if noise.name == "student_t":  # closed forms where they exist (a t sample's variance converges slowly)
        unit_var = shape / (shape - 2) if shape > 2 else float("inf")
    elif noise.name == "gaussian":
        unit_var = 1.0
    else:
        unit_var = float(np.var(noise.unit(np.random.default_rng(0), shape, 200_000)))
    return eps, np.mean(sig ** 2, axis=0) * unit_var, np.mean(s ** 2, axis=0)


def sample_stacked(runs, laws: str | Sequence = "auto", **options) -> StackedPosterior:
    """Posteriors of each candidate law (:func:`~bayes_scaling.sampling.sample_posterior` with ``options``) and
    their stacking weights from PSIS-LOO."""
    from .checks import small_design
    from .sampling import sample_posterior

    laws = candidate_laws(runs, laws)
    if options.get("noise_prior", "auto") == "auto" and any(small_design(len(runs), law) for law in laws):
        # one noise model for every candidate, so that their LOO densities compare the laws and not the noise priors
        options = {**options, "noise_prior": "small_design",
                   "noise_varies_with_compute": options.get("noise_varies_with_compute") or False}
    posts, lpd, loo, notes = {}, [], {}, []
    for law in laws:
        post = sample_posterior(law, runs, **options)
        elpd_i, k = loo_pointwise(post.log_likelihood())
        posts[law.name] = post
        lpd.append(elpd_i)
        loo[law.name] = {"elpd_loo": float(elpd_i.sum()), "elpd_se": float(np.sqrt(len(elpd_i)) * elpd_i.std()),
                         "max_pareto_k": float(np.max(k))}
        if np.max(k) > PARETO_K_MAX:
            notes.append(f"{law.name}: {int(np.sum(k > PARETO_K_MAX))} run(s) with Pareto k > {PARETO_K_MAX}: the LOO "
                         "estimate is unreliable there (influential runs); its weight is uncertain")
    w = stacking_weights(np.stack(lpd, axis=1))
    return StackedPosterior(posteriors=posts, weights=dict(zip(posts, w.tolist())), loo=loo, warnings=tuple(notes))


def _mix_predictive(preds: Sequence[Mapping[str, np.ndarray]], weights: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The stacked predictive of held-out runs ``rows``: each law's share of draws (evenly spaced in its own)."""
    S = preds[0]["mu"].shape[1]
    counts = draw_counts(weights, S)
    out = {}
    for key in DRAW_KEYS:
        out[key] = np.concatenate([p[key][rows][:, np.linspace(0, S - 1, c).round().astype(int)]
                                   for p, c in zip(preds, counts) if c], axis=1)
    return out


def backtest_stacked(runs, laws: str | Sequence = "auto", *, weights: str = "loo", backtests: Mapping | None = None,
                     **options):
    """Backtests of each candidate law on the same cuts, and of their stack: at each cut the laws are weighed only
    by what was known at it, ``weights="loo"`` by stacking their PSIS-LOO densities of the cut's fitted runs, or
    ``"lfo"`` (leave future out) by stacking their log scores of the runs that earlier cuts forecast and this cut
    has fitted (the first cut of a family falls back to LOO). ``backtests``: the laws' backtests (with ``loo=True``)
    when already run, e.g. to compare both weightings. Returns ``(stacked, per_law, weights_table)``:
    ``stacked`` a :class:`~bayes_scaling.backtests.Backtest` of the mixture, ``per_law`` ``{name: Backtest}``."""
    import pandas as pd


    if weights not in ("loo", "lfo"):
        raise ValueError(f"weights must be 'loo' or 'lfo', not {weights!r}")
    if backtests is None:
        per = {law.name: backtest(law, runs, loo=True, **options) for law in candidate_laws(runs, laws)}
    else:
        per = dict(backtests)
    names = list(per)
    first = per[names[0]]
    points = first.points.copy()
    for n in names[1:]:
        if len(per[n].points) != len(points) or not np.array_equal(per[n].points["run"], points["run"]):
            raise ValueError("backtest_stacked: the laws' backtests hold different cuts (give the same cuts/levels)")
    keys = [k for k in first.predictive if k not in DRAW_KEYS]
    pred = {k: first.predictive[k] for k in keys}
    parts = {k: [] for k in DRAW_KEYS}
    order, wrows = [], []
    for lab in dict.fromkeys(points["label"]):
        rows = np.flatnonzero(points["label"].to_numpy() == lab)
        fam, cut = points["family"].iloc[rows[0]], points["cut"].iloc[rows[0]]
        earlier = (points["family"] == fam) & (points["cut"] < cut) & (points["by"] <= cut * (1 + 1e-9))
        how = "lfo" if weights == "lfo" and earlier.any() else "loo"
        lpd = (np.stack([per[n].points.loc[earlier, "log_score"].to_numpy() for n in names], axis=1) if how == "lfo"
               else np.stack([per[n].train_lpd[lab] for n in names], axis=1))
        w = stacking_weights(lpd)
        mixed = _mix_predictive([per[n].predictive for n in names], w, rows)
        for k in parts:
            parts[k].append(mixed[k])
        order.append(rows)
        wrows.append({"family": fam, "cut": cut, "weights_from": how, **dict(zip(names, w.round(4).tolist()))})
    idx = np.concatenate(order)
    for k in parts:
        pred[k] = np.concatenate(parts[k])[np.argsort(idx)]
    stacked_points = points.copy()
    for k, v in score(pred, first.discrepancy, first.probs).items():
        stacked_points[k] = v
    from dataclasses import replace

    stacked = replace(first, law=None, points=stacked_points, cuts=cut_table(stacked_points, first.probs), predictive=pred,
                      health=Health.combine({n: b.health for n, b in per.items()}), train_lpd={},
                      settings={**first.settings, "label": "stack of " + ", ".join(names), "weights": weights})
    return stacked, per, pd.DataFrame(wrows)

"""Which run next: candidate small runs ranked by how much each is expected to narrow the posterior of a target the
user names, per FLOP it costs (Bayesian experimental design by preposterior analysis).

For a candidate run x = (N, D) costing C = 6ND and a target T(theta) (log N_opt or log D_opt at a budget, log L* at a
budget, or the log loss of a plan), the utility is the expected reduction of the target's posterior variance:

    V(x) = E_{y ~ p(y | x, runs)} [ Var(T | runs, y) ]      the expected posterior variance after the run
    ranked by (1 / V(x) - 1 / Var(T | runs)) / C(x)        the expected gain in precision per FLOP (default), or
           by (Var(T | runs) - V(x)) / C(x)                the expected reduction of the variance per FLOP

The outer expectation is over the candidate's outcome y, simulated from the posterior predictive: draw theta_s from
the posterior and y_s = log mu(x; theta_s) + sigma_s(C) e_s under the fitted likelihood (its noise at that compute). The
inner posterior variance is estimated without refitting, by reweighting the same posterior draws with the likelihood
of y_s, w_i ∝ p(y_s | theta_i) (importance sampling from the current posterior to the updated one). The expected
posterior variance is the Bayesian A-optimal (for one scalar target) criterion of Chaloner and Verdinelli (1995, Statistical
Science 10(3), Bayesian experimental design: a review, section 2) with the nested Monte Carlo estimator whose inner
posteriors are importance-reweighted draws (Ryan, Drovandi, McGree and Pettitt 2016, International Statistical Review
84(1), A review of modern computational algorithms for Bayesian optimal design, section 4); dividing by the cost
follows cost-aware design (e.g. the "information per unit cost" acquisition of Swersky, Snoek and Adams 2013, NeurIPS,
Multi-task Bayesian optimisation). Every candidate is scored with the same simulated noise (common random numbers), so
the ranking is not noise.

A **batch** of k runs is chosen greedily: each next run maximises the batch's expected reduction per FLOP, with
the outcomes of the runs already chosen simulated jointly from the same theta_s, so two runs that tell the same
thing are not counted twice. The reweighting's effective sample size is reported; where it falls below about 50 (one
run that moves the posterior far) the estimate is noisy and the posterior should be refit after that run, as a
sequential design does (``benchmarks/bench_design.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import derived
from .defaults import compute_of

__all__ = ["Target", "parse_target", "target_draws", "rank_candidates", "propose_batch", "DEFAULT_OUTCOMES",
           "DEFAULT_DRAWS", "UTILITIES"]

#: what a run's value per FLOP counts, both from the expected posterior variance after it: the rise of the target's
#: precision 1/variance (the default: precision adds over independent runs, so its greedy ratio is the knapsack rule
#: for reaching a width at least cost, and it favours one larger, more informative run over several cheap ones), or
#: the drop of the variance itself. On 20 simulated studies (benchmarks/bench_design.py) the precision rule reached the
#: widths an IsoFLOP grid reaches for 1.8-4.5x fewer FLOPs on the median curves, the variance rule for 1.5-3.6x
UTILITIES = ("variance", "precision")

#: simulated outcomes per candidate, and posterior draws used (at most; thinned evenly)
DEFAULT_OUTCOMES = 128
DEFAULT_DRAWS = 2000
_QUANTITIES = {"N_opt": "N_opt", "D_opt": "D_opt", "L*": "L*", "loss": "loss"}


@dataclass(frozen=True)
class Target:
    """What the design narrows: ``quantity`` (N_opt, D_opt or L* at ``budget``; or ``loss`` of the plan ``plan``),
    always on the log scale."""

    quantity: str
    budget: float | None = None
    plan: tuple[float, float] | None = None

    def __str__(self) -> str:
        return f"log {self.quantity}@{self.budget:g}" if self.plan is None else f"log loss@{self.plan[0]:g}x{self.plan[1]:g}"


def parse_target(text: str) -> Target:
    """``"N_opt@1e24"``, ``"D_opt@1e24"``, ``"L*@1e24"`` or ``"loss@70Bx1.4T"`` (a plan, as :func:`~bayes_scaling.planning.parse_plan`)."""
    from .planning import parse_plan

    m = re.fullmatch(r"\s*(N_opt|D_opt|L\*|loss)\s*@\s*(\S+)\s*", str(text))
    if not m:
        raise ValueError(f"target {text!r}: expected N_opt@BUDGET, D_opt@BUDGET, L*@BUDGET or loss@NxD (e.g. N_opt@1e24)")
    q, at = m.group(1), m.group(2)
    if q == "loss":
        _, N, D = parse_plan(at)
        return Target("loss", plan=(N, D))
    try:
        budget = float(at)
    except ValueError:
        raise ValueError(f"target {text!r}: {at!r} is not a budget in FLOPs") from None
    derived.check_budgets([budget])
    return Target(q, budget=budget)


class _Pool:
    """The posterior draws the design reweights: one law's, or a stack's (each law its weight's share), thinned to
    at most ``draws``; per draw its law, parameters and noise."""

    def __init__(self, post, draws: int, seed):
        from .planning import members
        from .stacking import draw_counts

        rng = np.random.default_rng(seed)
        ms = members(post)
        sizes = [len(p.flat()[p.law.param_names[0]]) for _, p, _ in ms]
        total = min(draws, min(sizes) if len(ms) > 1 else sizes[0])
        counts = draw_counts([w for _, _, w in ms], total) if len(ms) > 1 else np.array([total])
        self.parts = []
        for (_, p, _), n, size in zip(ms, counts, sizes):
            if n:
                idx = np.linspace(0, size - 1, int(n)).round().astype(int) if len(ms) == 1 else rng.choice(size, int(n), replace=False)
                self.parts.append((p, idx))
        self.size = sum(len(i) for _, i in self.parts)

    def each(self, fn):
        """``fn(posterior, its flat parameters at the pool's draws, indices)`` for each law, concatenated over draws."""
        out = []
        for p, idx in self.parts:
            flat = {k: np.asarray(v).reshape(-1)[idx] for k, v in p.flat().items()}
            out.append(np.asarray(fn(p, flat, idx)))
        return np.concatenate(out, axis=0)


def target_draws(post, target: Target | str, *, inputs=None) -> np.ndarray:
    """The target's draws (log scale) over all of a posterior's draws (a stack's: each law's share)."""
    target = parse_target(target) if isinstance(target, str) else target
    pool = _Pool(post, 10 ** 9, 0)
    return _target(pool, target, inputs)


def _target(pool, target: Target, inputs) -> np.ndarray:
    def one(p, flat, idx):
        if target.quantity == "loss":
            return np.log(derived.over_draws(p.law, "loss_of_plan", flat, np.array([target.plan]), inputs=inputs)[:, 0])
        out = derived.over_draws(p.law, "frontier", flat, [target.budget], inputs=inputs)
        if target.quantity not in out:
            raise ValueError(f"target {target}: law {p.law.name!r} gives no {target.quantity} (a law of C alone gives L* only)")
        return np.log(out[target.quantity][:, 0])

    return pool.each(one)


def _loglik(pool, candidates: np.ndarray, outcomes: int, seed, inputs):
    """Simulated outcomes (one draw theta_s each, common to every candidate) and their log likelihood under every
    pool draw: ``(outcome, draw, candidate)``; and the outcome draws' indices."""
    from .noise import noise_model, shape_from_settings

    C = compute_of(candidates[:, 0], candidates[:, 1])
    mu = pool.each(lambda p, flat, idx: np.log(derived.over_draws(p.law, "loss_of_plan", flat, candidates, inputs=inputs)))
    sig = pool.each(lambda p, flat, idx: p.flat_noise_scale(C)[idx])
    posts = [p for p, idx in pool.parts for _ in idx]
    shapes = np.array([shape_from_settings(p.settings) for p in posts])
    names = [p.settings.get("likelihood", "student_t") for p in posts]
    rng = np.random.default_rng(seed)
    s = rng.integers(0, pool.size, outcomes)
    unit = np.stack([noise_model(names[j], legacy=True).unit(rng, shapes[j], candidates.shape[0]) for j in s])
    y = mu[s] + sig[s] * unit  # (outcome, candidate)
    ll = np.empty((outcomes, pool.size, candidates.shape[0]))
    for name in sorted(set(names)):  # one likelihood per law in practice; grouped so each is one vectorised call
        rows = np.array([n == name for n in names])
        noise = noise_model(name, legacy=True)
        ll[:, rows, :] = np.asarray(noise.logpdf(y[:, None, :] - mu[None, rows, :], sig[None, rows, :], shapes[rows][None, :, None]))
    return ll, s


def _weighted_var(logw: np.ndarray, T: np.ndarray):
    """Per row of ``logw`` (outcome, draw): the reweighted variance of T and the weights' effective sample size."""
    w = np.exp(logw - logw.max(axis=-1, keepdims=True))
    w /= w.sum(axis=-1, keepdims=True)
    m = w @ T
    return w @ (T ** 2) - m ** 2, 1.0 / np.sum(w ** 2, axis=-1)


def _checked(candidates) -> np.ndarray:
    c = np.asarray(candidates, float)
    if c.ndim != 2 or c.shape[1] != 2 or not len(c):
        raise ValueError("candidates: give a (K, 2) array of (N, D) runs")
    bad = ~(np.isfinite(c) & (c > 0)).all(axis=1)
    if bad.any():
        raise ValueError(f"candidate {int(np.argmax(bad)) + 1}: N and D must be positive, finite numbers, not {c[np.argmax(bad)].tolist()}")
    return c


def _check_utility(utility: str) -> None:
    if utility not in UTILITIES:
        raise ValueError(f"utility {utility!r}: one of {', '.join(UTILITIES)}")


def _gain(utility: str, before, after):
    return before - after if utility == "variance" else 1.0 / np.maximum(after, 1e-300) - 1.0 / before


def rank_candidates(post, candidates, target: Target | str, *, outcomes: int = DEFAULT_OUTCOMES, draws: int = DEFAULT_DRAWS,
                    utility: str = "precision", inputs=None, seed: int = 0):
    """Every candidate run (``candidates``: (K, 2) of N, D) with the target's expected posterior variance after it,
    the expected reduction, the reduction per FLOP (per 1e18 FLOPs in ``reduction_per_exaflop``; the precision gain per
    1e18 FLOPs in ``precision_gain_per_exaflop``), the expected 90% width of the target after it, and the median
    effective sample size of the reweighting; best first by ``utility`` (:data:`UTILITIES`)."""
    import pandas as pd

    _check_utility(utility)
    target = parse_target(target) if isinstance(target, str) else target
    cand = _checked(candidates)
    pool = _Pool(post, draws, seed)
    T = _target(pool, target, inputs)
    ll, _ = _loglik(pool, cand, outcomes, seed, inputs)
    var0 = float(np.var(T))
    after, ess = _weighted_var(np.moveaxis(ll, 2, 0), T)  # (candidate, outcome)
    C = compute_of(cand[:, 0], cand[:, 1])
    exp_var = after.mean(axis=1)
    df = pd.DataFrame({"N": cand[:, 0], "D": cand[:, 1], "C": C, "tokens_per_param": cand[:, 1] / cand[:, 0],
                       "var_before": var0, "expected_var_after": exp_var, "reduction": var0 - exp_var,
                       "reduction_share": (var0 - exp_var) / var0, "reduction_per_exaflop": (var0 - exp_var) / (C / 1e18),
                       "precision_gain_per_exaflop": _gain("precision", var0, exp_var) / (C / 1e18),
                       "expected_width90_after": 2 * 1.6449 * np.sqrt(np.maximum(exp_var, 0)),
                       "median_ess": np.median(ess, axis=1)})
    df.attrs["target"] = str(target)
    df.attrs["utility"] = utility
    df.attrs["width90_before"] = float(np.diff(np.quantile(T, [0.05, 0.95]))[0])
    key = "reduction_per_exaflop" if utility == "variance" else "precision_gain_per_exaflop"
    return df.sort_values(key, ascending=False, kind="stable").reset_index(drop=True)


def propose_batch(post, candidates, target: Target | str, k: int, *, budget: float | None = None,
                  outcomes: int = DEFAULT_OUTCOMES, draws: int = DEFAULT_DRAWS, utility: str = "precision", inputs=None,
                  seed: int = 0):
    """A batch of up to ``k`` runs chosen greedily (see the module's text), within ``budget`` FLOPs in all if given:
    one row per chosen run in order, with the cumulative FLOPs and the batch's expected variance and 90% width of the
    target after it; each next run maximises the gain of ``utility`` (:data:`UTILITIES`) per FLOP."""
    import pandas as pd

    target = parse_target(target) if isinstance(target, str) else target
    cand = _checked(candidates)
    if int(k) != k or k < 1:
        raise ValueError(f"k = {k!r}: the batch size must be a whole number >= 1")
    if budget is not None:
        derived.check_budgets([budget])
    _check_utility(utility)
    pool = _Pool(post, draws, seed)
    T = _target(pool, target, inputs)
    ll, _ = _loglik(pool, cand, outcomes, seed, inputs)
    C = compute_of(cand[:, 0], cand[:, 1])
    var0 = float(np.var(T))
    chosen, rows, acc, spent = [], [], np.zeros(ll.shape[:2]), 0.0
    current = var0
    for _ in range(int(k)):
        free = [j for j in range(len(cand)) if j not in chosen and (budget is None or spent + C[j] <= budget)]
        if not free:
            break
        after, ess = _weighted_var(np.moveaxis(acc[:, :, None] + ll[:, :, free], 2, 0), T)
        exp_var = after.mean(axis=1)
        gain = _gain(utility, current, exp_var) / C[free]
        best = int(np.argmax(gain))
        j = free[best]
        chosen.append(j)
        acc = acc + ll[:, :, j]
        spent += C[j]
        current = float(exp_var[best])
        rows.append({"N": cand[j, 0], "D": cand[j, 1], "C": C[j], "cumulative_C": spent, "expected_var_after": current,
                     "expected_width90_after": 2 * 1.6449 * np.sqrt(max(current, 0.0)), "median_ess": float(np.median(ess[best])),
                     "candidate": j})
    df = pd.DataFrame(rows)
    df.attrs["target"] = str(target)
    df.attrs["var_before"] = var0
    return df

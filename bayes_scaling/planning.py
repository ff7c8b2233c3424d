"""Plans a manager can read, with intervals: any plan's loss, the inference-aware optimum, the best model a budget
buys, and what reaching a loss costs.

Every answer is a function of one parameter draw pushed through all the draws of a posterior (:class:`Posterior`,
or a :class:`~bayes_scaling.stacking.StackedPosterior`, whose laws give their weight's share of the draws), and
then through :mod:`bayes_scaling.cost` for accelerator-hours, days, dollars and energy. "Mean law" intervals hold
the law's uncertainty; "new run" intervals add what one real run adds: the runs' noise at that compute and the
extrapolation term (:mod:`bayes_scaling.discrepancy`) at the plan's distance beyond the runs in compute, N and D.

* :func:`plan_losses`        the loss of given (N, D) plans, P(plan A beats plan B), tokens per parameter against
                             the compute-optimal ratio at the same compute, Kaplan's data guide, and the cost.
* :func:`inference_aware`    the model reaching a loss (or the loss of the compute-optimal model at a budget) at the
                             least training + inference compute, against Chinchilla's; the demand that halves N.
* :func:`best_for_budget`    the best model for FLOPs, dollars or days (with inference demand: for the lifetime).
* :func:`cost_to_reach`      compute, hours, days, dollars and energy to reach a loss.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from . import derived
from .cost import Hardware, costs, flops_for_days, flops_for_dollars
from .defaults import PROB as DEFAULT_PROB
from .defaults import compute_of
from .discrepancy import resolve_discrepancy
from .lifetime import INFERENCE_FLOPS_PER_PARAM_TOKEN

__all__ = ["members", "parse_plan", "plan_losses", "inference_aware", "best_for_budget", "cost_to_reach", "kaplan_min_tokens",
           "KAPLAN_DATA_GUIDE"]

#: Kaplan et al. 2020, eq. 4.4: to keep overfitting small, D >~ 5e3 N^0.74 (N non-embedding parameters)
KAPLAN_DATA_GUIDE = (5e3, 0.74)
_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def kaplan_min_tokens(N):
    """Kaplan et al.'s data guide: the tokens below which a model of ``N`` parameters starts to overfit."""
    k, p = KAPLAN_DATA_GUIDE
    return k * np.asarray(N, float) ** p


def _amount(text: str, what: str) -> float:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtTpP]?)\s*", text)
    if not m:
        raise ValueError(f"{what} {text!r}: not a number (e.g. 70e9, 70B, 1.4T)")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{what} {text!r}: must be a positive, finite number")
    return value


def parse_plan(text: str) -> tuple[str, float, float]:
    """``"NAME=NxD"`` or ``"NxD"`` (``8Bx15T``, ``70e9x1.4e12``; suffixes K, M, B, T) -> (name, N, D)."""
    name, sep, spec = str(text).rpartition("=")
    n_text, x, d_text = spec.lower().partition("x")
    if not x:
        raise ValueError(f"plan {text!r}: expected N x D, e.g. 8Bx15T or llama=8e9x15e12")
    N, D = _amount(n_text, f"plan {text!r}: N"), _amount(d_text, f"plan {text!r}: D")
    return (name.strip() if sep and name.strip() else spec.strip()), N, D


def members(post):
    """``[(law name, posterior, weight)]`` of one posterior (weight 1) or of a stack."""
    if hasattr(post, "posteriors"):
        return [(n, p, float(post.weights[n])) for n, p in post.posteriors.items()]
    return [(post.law.name, post, 1.0)]


def _mix(post, per_law: Mapping[str, object], seed):
    """One law's draws as they are; a stack's as its weighted mixture (joint across the keys of dict draws)."""
    if not hasattr(post, "posteriors"):
        return next(iter(per_law.values()))
    first = next(iter(per_law.values()))
    if isinstance(first, Mapping):
        return {k: post.mixture({n: v[k] for n, v in per_law.items()}, seed=seed) for k in first}
    return post.mixture(per_law, seed=seed)


def _over(post, quantity, points, inputs, seed=0):
    per = {n: derived.over_draws(p.law, quantity, p.flat(), points, inputs=inputs) for n, p, _ in members(post)}
    return _mix(post, per, seed)


def _summary(x, prob) -> dict[str, float]:
    from .posterior import interval

    x = np.asarray(x, float).reshape(-1)
    lo, hi = interval(x, prob)
    return {"median": float(np.median(x)), "lo": lo, "hi": hi}


def _new_run(post, mean, at, discrepancy, seed):
    """A new run's loss draws around the mean-law draws ``mean`` (draw, point), at points ``at``, mixed like them."""
    from .stacking import new_run_deviation

    per = {}
    for j, (n, p, _) in enumerate(members(post)):
        m = mean[n]
        eps = new_run_deviation(p, {k: v[n] if isinstance(v, Mapping) else v for k, v in at.items()}, discrepancy, (seed, j))[0]
        per[n] = {"mean": m, "new": m * np.exp(eps)}
    return _mix(post, per, seed)


def _check_hardware(hardware) -> Hardware:
    if hardware is None:
        return Hardware()
    if not isinstance(hardware, Hardware):
        raise ValueError(f"hardware must be a bayes_scaling.cost.Hardware, not {type(hardware).__name__}")
    return hardware


def _data_max(post) -> float:
    cs = [p.max_compute() for _, p, _ in members(post)]
    return max(cs) if all(cs) else float("nan")


def plan_losses(post, plans: Sequence, *, prob: float = DEFAULT_PROB, hardware: Hardware | None = None,
                discrepancy="default", inputs=None, seed: int = 0) -> dict:
    """Each plan's loss (median, ``prob`` interval of the mean law, and of one new run), its tokens per parameter
    against the compute-optimal ratio at the same compute, Kaplan's data guide and its cost on ``hardware``; and
    the probability that each plan beats each other one (lower loss), for the mean law and for one run of each.

    plans: ``(N, D)`` pairs, ``(name, N, D)`` triples or strings for :func:`parse_plan`.
    Returns ``{"table": DataFrame (one row per plan), "p_better": DataFrame (row beats column, mean law),
    "p_better_new_run": DataFrame (one run of each)}``."""
    import pandas as pd

    from .posterior import check_prob

    check_prob(prob)
    hw = _check_hardware(hardware)
    rows = [_as_plan(p, i) for i, p in enumerate(plans)]
    if not rows:
        raise ValueError("plans: give at least one (N, D)")
    names = [r[0] for r in rows]
    if len(set(names)) != len(names):
        raise ValueError(f"plans: two plans are called {next(n for n in names if names.count(n) > 1)!r}; name them apart")
    ND = np.array([[r[1], r[2]] for r in rows])
    C = compute_of(ND[:, 0], ND[:, 1])
    mean = {n: np.asarray(derived.over_draws(p.law, "loss_of_plan", p.flat(), ND, inputs=inputs)) for n, p, _ in members(post)}
    opt = _over(post, "frontier", C, inputs, seed)
    draws = _new_run(post, mean, {"C": C, "N": ND[:, 0], "D": ND[:, 1]}, resolve_discrepancy(discrepancy), seed)
    L, Y = draws["mean"], draws["new"]
    cmax = _data_max(post)
    out = []
    for i, (name, N, D) in enumerate(rows):
        m, y = _summary(L[:, i], prob), _summary(Y[:, i], prob)
        ratio = (D / N) / (opt["D_opt"][:, i] / opt["N_opt"][:, i]) if "N_opt" in opt else np.full(1, np.nan)
        r = _summary(ratio, prob)
        row = {"plan": name, "N": N, "D": D, "C": float(C[i]), "tokens_per_param": D / N,
               "optimal_tokens_per_param": float(np.median(opt["D_opt"][:, i] / opt["N_opt"][:, i])) if "N_opt" in opt else np.nan,
               "ratio_to_optimal": r["median"], "ratio_to_optimal_lo": r["lo"], "ratio_to_optimal_hi": r["hi"],
               "loss": m["median"], "loss_lo": m["lo"], "loss_hi": m["hi"], "loss_new_lo": y["lo"], "loss_new_hi": y["hi"],
               "extrapolation": float(C[i] / cmax), "kaplan_min_D": float(kaplan_min_tokens(N)),
               "below_kaplan_guide": bool(D < kaplan_min_tokens(N))}
        row |= {k: v for k, v in costs(float(C[i]), hw).items() if k != "flops"}
        out.append(row)
    p_mean = (L[:, :, None] < L[:, None, :]).mean(axis=0)
    p_new = (Y[:, :, None] < Y[:, None, :]).mean(axis=0)
    frame = lambda p: pd.DataFrame(np.where(np.eye(len(names), dtype=bool), np.nan, p), index=names, columns=names)
    return {"table": pd.DataFrame(out), "p_better": frame(p_mean), "p_better_new_run": frame(p_new)}


def _as_plan(p, i) -> tuple[str, float, float]:
    if isinstance(p, str):
        return parse_plan(p)
    p = tuple(p)
    if len(p) == 2:
        name, N, D = f"plan {i + 1}", *p
    elif len(p) == 3:
        name, N, D = p
    else:
        raise ValueError(f"plan {p!r}: give (N, D) or (name, N, D)")
    for what, v in (("N", N), ("D", D)):
        if not (isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v) and v > 0):
            raise ValueError(f"plan {name!r}: {what} = {v!r} must be a positive, finite number")
    return str(name), float(N), float(D)


def inference_aware(post, *, inference_tokens: float, loss: float | None = None, budget: float | None = None,
                    prob: float = DEFAULT_PROB, hardware: Hardware | None = None, inputs=None, seed: int = 0) -> dict:
    """The model that reaches ``loss`` (or, with ``budget``: the loss the compute-optimal model reaches at that
    training compute, draw by draw) at the least lifetime compute 6 N D + 2 N ``inference_tokens``; against the
    compute-optimal (Chinchilla) model at the same loss: its N, D, tokens per parameter, lifetime FLOPs and cost, the
    saving, and the inference demand at which the optimal N is half Chinchilla's. Each a dict of median, lo, hi;
    ``p_unreachable``: the share of draws whose floor lies above the target (their N and D are inf)."""
    from .posterior import check_prob

    check_prob(prob)
    hw = _check_hardware(hardware)
    if (loss is None) == (budget is None):
        raise ValueError("inference_aware: give exactly one of loss= (a target loss) or budget= (training FLOPs)")
    d_inf = float(inference_tokens)
    if not (np.isfinite(d_inf) and d_inf >= 0):
        raise ValueError(f"inference_tokens = {inference_tokens!r}: must be a finite number >= 0")
    target = derived.check_budgets([loss if loss is not None else budget])[0]
    quantity = "inference_optimal" if budget is None else "inference_optimal_at_budget"
    d = {k: v[:, 0] for k, v in _over(post, quantity, np.array([[target, d_inf]]), inputs, seed).items()}
    N, D, Nc, Dc = d["N"], d["D"], d["N_chin"], d["D_chin"]
    life = compute_of(N, D) + INFERENCE_FLOPS_PER_PARAM_TOKEN * N * d_inf
    life_c = compute_of(Nc, Dc) + INFERENCE_FLOPS_PER_PARAM_TOKEN * Nc * d_inf
    ok = np.isfinite(N)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = {"N": N, "D": D, "tokens_per_param": D / N, "training_flops": compute_of(N, D),
             "inference_flops": INFERENCE_FLOPS_PER_PARAM_TOKEN * N * d_inf, "lifetime_flops": life,
             "chinchilla_N": Nc, "chinchilla_D": Dc, "chinchilla_tokens_per_param": Dc / Nc, "chinchilla_lifetime_flops": life_c,
             "saving": np.where(ok, 1 - life / life_c, np.nan), "halving_demand": d["halving_demand"],
             "lifetime_dollars": costs(life, hw)["dollars"], "chinchilla_lifetime_dollars": costs(life_c, hw)["dollars"]}
        if budget is not None:
            q["target_loss"] = d["loss"]
    out = {k: _summary(v[ok] if ok.any() else v, prob) for k, v in q.items()}
    return out | {"p_unreachable": float(1 - ok.mean()), "inference_tokens": d_inf,
                  "target": {"loss": loss, "budget": budget}, "hardware": hw.describe(), "prob": prob}


def best_for_budget(post, *, flops: float | None = None, dollars: float | None = None, days: float | None = None,
                    hardware: Hardware | None = None, inference_tokens: float = 0.0, prob: float = DEFAULT_PROB,
                    discrepancy="default", inputs=None, seed: int = 0) -> dict:
    """The best model (least loss) that ``flops``, ``dollars`` or ``days`` on ``hardware`` buy: the compute-optimal
    model, or with ``inference_tokens`` > 0 the best model whose training plus serving fits the budget (inference
    FLOPs priced like training ones). N, D, tokens per parameter, loss (mean law and one new run) with intervals;
    ``cost``: the whole budget's, ``training_cost``: the training's alone (with intervals where serving shares it)."""
    from .posterior import check_prob

    check_prob(prob)
    hw = _check_hardware(hardware)
    given = [(k, v) for k, v in (("flops", flops), ("dollars", dollars), ("days", days)) if v is not None]
    if len(given) != 1:
        raise ValueError("best_for_budget: give exactly one of flops=, dollars= or days=")
    kind, amount = given[0]
    amount = derived.check_budgets([amount])[0]
    total = {"flops": lambda a: a, "dollars": lambda a: float(flops_for_dollars(a, hw)),
             "days": lambda a: float(flops_for_days(a, hw))}[kind](amount)
    d_inf = float(inference_tokens)
    if not (np.isfinite(d_inf) and d_inf >= 0):
        raise ValueError(f"inference_tokens = {inference_tokens!r}: must be a finite number >= 0")
    if d_inf > 0:
        per = {n: {k: v[:, 0] for k, v in derived.over_draws(p.law, "lifetime_optimal", p.flat(), np.array([[total, d_inf]]),
                                                            inputs=inputs).items()} for n, p, _ in members(post)}
        N = {n: v["N"] for n, v in per.items()}
        D = {n: v["D"] for n, v in per.items()}
        mean = {n: v["loss"][:, None] for n, v in per.items()}
    else:
        per = {n: derived.over_draws(p.law, "frontier", p.flat(), [total], inputs=inputs) for n, p, _ in members(post)}
        N = {n: v["N_opt"][:, 0] for n, v in per.items()}
        D = {n: v["D_opt"][:, 0] for n, v in per.items()}
        mean = {n: v["L*"] for n, v in per.items()}
    C = {n: compute_of(N[n], D[n])[:, None] for n in N}
    draws = _new_run(post, mean, {"C": C, "N": {n: v[:, None] for n, v in N.items()},
                                  "D": {n: v[:, None] for n, v in D.items()}}, resolve_discrepancy(discrepancy), seed)
    nd = _mix(post, {n: {"N": N[n], "D": D[n]} for n in N}, seed)
    y = _summary(draws["new"][:, 0], prob)
    return {"budget": {kind: amount, "flops": total}, "N": _summary(nd["N"], prob), "D": _summary(nd["D"], prob),
            "tokens_per_param": _summary(nd["D"] / nd["N"], prob), "training_flops": _summary(compute_of(nd["N"], nd["D"]), prob),
            "loss": _summary(draws["mean"][:, 0], prob), "loss_new_lo": y["lo"], "loss_new_hi": y["hi"],
            "extrapolation": float(total / _data_max(post)), "inference_tokens": d_inf,
            "cost": costs(total, hw), "training_cost": {k: _summary(v, prob) for k, v in costs(compute_of(nd["N"], nd["D"]), hw).items()},
            "hardware": hw.describe(), "prob": prob}


def cost_to_reach(post, loss: float, *, hardware: Hardware | None = None, prob: float = DEFAULT_PROB, inputs=None,
                  seed: int = 0) -> dict:
    """The training compute at which the compute-optimal model reaches ``loss`` (mean law), and its accelerator-hours,
    days, dollars, PF-days and kWh on ``hardware``, each with median and ``prob`` interval; ``p_unreachable``: the
    share of draws whose floor lies at or above ``loss`` (for them no compute reaches it; the upper ends are inf)."""
    from .posterior import check_prob

    check_prob(prob)
    hw = _check_hardware(hardware)
    target = derived.check_budgets([loss])[0]
    c = _over(post, "compute_for_loss", [target], inputs, seed)[:, 0]
    out = {k: _summary(v, prob) for k, v in costs(c, hw).items()}
    return out | {"loss": target, "p_unreachable": float(np.mean(~np.isfinite(c))),
                  "extrapolation": _summary(c / _data_max(post), prob), "hardware": hw.describe(), "prob": prob}

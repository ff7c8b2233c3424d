"""The report's sections on how sure to be and what it costs: one new run's loss with every source of uncertainty
(noise, parameters, law form, extrapolation) and each one's share, a backtest's coverage of held-out runs, and the
cost of each budget and of the user's plans (:mod:`bayes_scaling.planning`). Each returns JSON-safe data;
:mod:`bayes_scaling.report` turns them into tables and "In short" lines."""

from __future__ import annotations

from typing import Any

from .tables import fmt_human, fmt_number, fmt_times

__all__ = ["uncertainty_data", "backtest_data", "planning_data", "uncertainty_table", "backtest_table", "cost_table",
           "plans_table", "in_short_lines"]

_SHARES = ("noise", "parameters", "law_form", "extrapolation")


def uncertainty_data(post, budgets, prob: float, discrepancy) -> list[dict[str, Any]] | None:
    """Per budget: one new run's loss at the optimum (noise, parameters and the extrapolation term) and the shares of
    its log-variance; None for a law without a compute-optimal frontier."""
    from .stacking import StackedPosterior

    law = post.law
    if not ("N" in law.inputs and "D" in law.inputs):
        return None
    fc = StackedPosterior(posteriors={law.name: post}, weights={law.name: 1.0}).forecast(budgets, prob=prob, discrepancy=discrepancy)
    keep = ["budget", "L_new", "L_new_lo", "L_new_hi", "extrapolation"] + [f"share_{k}" for k in _SHARES]
    out = fc[keep].to_dict(orient="records")
    for r in out:
        r["discrepancy"] = None if discrepancy is None else discrepancy.source
    return out


def backtest_data(bt) -> dict[str, Any]:
    """A backtest's pooled coverage, its cuts and its PIT histogram."""
    return {"by": bt.by, "name": bt.name, "pooled": bt.pooled().to_dict(orient="records")[0],
            "cuts": bt.cuts.to_dict(orient="records"), "pit_histogram": bt.pit_histogram().tolist(),
            "probs": list(bt.probs), "health": str(bt.health),
            "discrepancy": None if bt.discrepancy is None else bt.discrepancy.source}


def planning_data(post, budgets, prob: float, discrepancy, plans=(), hardware=None) -> dict[str, Any] | None:
    """What each budget costs on ``hardware`` (default :class:`~bayes_scaling.cost.Hardware`), and each plan's loss
    and cost (:func:`~bayes_scaling.planning.plan_losses`); None for a law that is not of N and D."""
    from .cost import Hardware, costs
    from .planning import plan_losses

    law = post.law
    if not ("N" in law.inputs and "D" in law.inputs):
        return None
    hw = hardware or Hardware()
    out = {"hardware": hw.describe(), "count": int(hw.count), "budgets": [{"budget": float(c), **costs(float(c), hw)} for c in budgets],
           "plans": [], "p_better": None}
    if plans:
        r = plan_losses(post, plans, prob=prob, hardware=hw, discrepancy=discrepancy)
        out["plans"] = r["table"].to_dict(orient="records")
        out["p_better"] = r["p_better"].to_dict(orient="index")
    return out


def cost_table(pl: dict[str, Any]):
    head = ["budget C (FLOPs)", "GPU-hours", f"days on {pl['count']}", "dollars", "PF-days", "MWh"]
    body = [[f"{r['budget']:.3g}", fmt_human(r["hours"]), f"{r['days']:.3g}", fmt_human(r["dollars"], "$"),
             fmt_human(r["pf_days"]), fmt_human(r["kwh"] / 1000)] for r in pl["budgets"]]
    return ("cost", f"What each budget costs: {pl['hardware']}", head, body)


def plans_table(pl: dict[str, Any], pct: str):
    head = ["plan", "N", "D", "tokens/param (x optimal)", f"loss ({pct})", f"one new run ({pct})", "GPU-hours",
            f"days on {pl['count']}", "dollars", "C / largest run"]
    body = [[r["plan"], fmt_human(r["N"]), fmt_human(r["D"]), f"{fmt_human(r['tokens_per_param'])} ({fmt_human(r['ratio_to_optimal'])}x)",
             f"{fmt_number(r['loss'], 'loss')} ({fmt_number(r['loss_lo'], 'loss')}, {fmt_number(r['loss_hi'], 'loss')})",
             f"({fmt_number(r['loss_new_lo'], 'loss')}, {fmt_number(r['loss_new_hi'], 'loss')})", fmt_human(r["hours"]),
             f"{r['days']:.3g}", fmt_human(r["dollars"], "$"), fmt_times(r["extrapolation"])] for r in pl["plans"]]
    return ("plans", "Plans: each one's loss (mean law and one new run, with the extrapolation term) and cost", head, body)


def uncertainty_table(rows, pct: str):
    head = ["budget C (FLOPs)", f"one new run's loss ({pct})", "C / largest run", "noise", "parameters", "law form", "extrapolation"]
    body = [[f"{r['budget']:.3g}", f"{fmt_number(r['L_new'], 'loss')} ({fmt_number(r['L_new_lo'], 'loss')}, "
             f"{fmt_number(r['L_new_hi'], 'loss')})", fmt_times(r["extrapolation"])]
            + [f"{100 * r[f'share_{k}']:.0f}%" for k in _SHARES] for r in rows]
    src = rows[0].get("discrepancy") or "none"
    return ("uncertainty", f"Where a new run's uncertainty comes from: shares of its log-loss variance at the optimum "
            f"(extrapolation term: {src})", head, body)


def backtest_table(bt: dict[str, Any]):
    probs = bt["probs"]
    head = ["family", "cut", "fitted runs", "held out"] + [f"inside {100 * p:g}%" for p in probs] + ["median |error|", "max extrapolation"]
    body = [[str(c["family"]), f"{c['cut']:.3g}", str(c["train_runs"]), str(c["held_out"])]
            + [f"{100 * c[f'coverage_{100 * p:g}']:.0f}%" for p in probs]
            + [f"{c['median_abs_error_%']:.2f}%", fmt_times(c["max_extrapolation"])] for c in bt["cuts"]]
    p = bt["pooled"]
    body.append(["pooled", "", "", str(p["held_out"])] + [f"{100 * p[f'coverage_{100 * q:g}']:.0f}%" for q in probs]
                + [f"{p['median_abs_error_%']:.2f}%", fmt_times(p["max_extrapolation"])])
    return ("backtest", f"Backtest by {bt['by']}: fitted on the runs up to each cut, each run beyond it forecast; how often "
            "the intervals held it", head, body)


def in_short_lines(data: dict[str, Any]) -> list[str]:
    """The "In short" lines of these sections: the dominant source of uncertainty at the farthest budget, and a
    backtest's coverage (a warning when the 90% intervals held far fewer or more than 90%)."""
    lines = []
    rows = data.get("uncertainty") or []
    if rows:
        r = rows[-1]
        top = max(_SHARES, key=lambda k: r[f"share_{k}"])
        lines.append(f"At C = {r['budget']:.3g} FLOPs one new run's loss: {r['L_new']:.4f} ({r['L_new_lo']:.4f}, "
                     f"{r['L_new_hi']:.4f}) with the extrapolation term; its uncertainty is mostly {top.replace('_', ' ')} "
                     f"({100 * r[f'share_{top}']:.0f}%).")
    pl = data.get("planning") or {}
    for r in pl.get("plans", []):
        flag = "WARNING: " if r["extrapolation"] >= 100 else ""
        lines.append(f"{flag}Plan {r['plan']} ({fmt_human(r['N'])} parameters on {fmt_human(r['D'])} tokens, "
                     f"{fmt_times(r['extrapolation']).split(' ')[0]} the largest run): loss {r['loss']:.4f} ({r['loss_lo']:.4f}, "
                     f"{r['loss_hi']:.4f}); one new run ({r['loss_new_lo']:.4f}, {r['loss_new_hi']:.4f}); "
                     f"{fmt_human(r['hours'])} GPU-hours, {fmt_human(r['dollars'], '$')}.")
    bt = data.get("backtest")
    if bt:
        p = bt["pooled"]
        cov = ", ".join(f"{100 * q:g}%: {100 * p[f'coverage_{100 * q:g}']:.0f}%" for q in bt["probs"])
        hi = max(bt["probs"])
        got = p[f"coverage_{100 * hi:g}"]
        flag = "WARNING: " if abs(got - hi) > 0.1 else ""
        lines.append(f"{flag}Backtest ({len(bt['cuts'])} cuts, {p['held_out']} held-out runs, up to "
                     f"{fmt_times(p['max_extrapolation'])} beyond the fitted runs): intervals held {cov}.")
    return lines

"""``sample --laws``: several laws' posteriors on the same runs, stacked (:mod:`bayes_scaling.stacking`)."""

from __future__ import annotations

from ..tables import fmt_number, format_columns
from .common import UsageError, fmt_interval, posterior_options, write_json


def discrepancy_option(args):
    """``--discrepancy``: the package's calibration (default), none, or a saved one (JSON)."""
    import json

    from ..discrepancy import Discrepancy, default_discrepancy

    choice = getattr(args, "discrepancy", "default")
    if choice == "none":
        return None
    if choice == "default":
        return default_discrepancy()
    try:
        with open(choice) as fh:
            d = json.load(fh)
        return Discrepancy.from_dict(d.get("discrepancy", d.get("pooled", d)))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise UsageError(f"--discrepancy {choice}: not a saved discrepancy ({type(err).__name__}: {err})") from None


def laws_option(args, runs, *, one_table: bool):
    """``--laws``: the candidate laws (:func:`~bayes_scaling.stacking.candidate_laws`), refused with one line when a
    law is unknown or its inputs are missing, or when combined with options that belong to one law (and, where the
    stack is sampled on ``one_table``, with --family and --out)."""
    from ..stacking import candidate_laws

    bad = [opt for opt, on in (("--family", one_table and args.family), ("--out", one_table and args.out),
                               ("--tie", args.tie), ("--fix", args.fix), ("--x", args.x)) if on]
    if bad:
        raise UsageError(f"--laws stacks whole laws: drop {', '.join(bad)} (name a tied law in the list instead, "
                         "e.g. --laws chinchilla,chinchilla[beta=alpha])")
    try:
        return candidate_laws(runs, args.laws)
    except ValueError as err:
        raise UsageError(str(err)) from None


def uncertainty_lines(fc, prob, disc) -> list[str]:
    """One new run's loss at each budget's optimum with every source of uncertainty, and the shares of its
    log-variance: noise, parameters, law form, extrapolation."""
    pct = f"{100 * prob:g}%"
    head = ["budget", f"new run's loss [{pct}]", "C / largest run", "noise", "parameters", "law form", "extrapolation"]
    rows = [[fmt_number(r["budget"]), fmt_interval(r, "L_new"), fmt_number(r["extrapolation"])]
            + [f"{100 * r[f'share_{k}']:.0f}%" for k in ("noise", "parameters", "law_form", "extrapolation")]
            for _, r in fc.iterrows()]
    what = ("with the extrapolation term (" + (disc.source or "calibrated") + ")") if disc is not None else "without an extrapolation term"
    return [f"one new run at the optimum, {what}; where its uncertainty comes from (shares of its log-loss variance):",
            format_columns(head, rows)]


def run_stacked(runs, args) -> int:
    from ..stacking import sample_stacked

    laws = laws_option(args, runs, one_table=True)
    print(runs.describe())
    print(f"stacking {len(laws)} laws: " + "; ".join(f"{law.name}: {law.formula}" for law in laws))
    st = sample_stacked(runs, laws, progress_bar=args.show_progress, **posterior_options(args, single=True))
    table = st.summary()
    rows = [[r["law"], f"{r['weight']:.3f}", f"{r['elpd_loo']:.1f} ({r['elpd_se']:.1f})", f"{r['max_pareto_k']:.2f}",
             "yes" if r["healthy"] else "NO"] for _, r in table.iterrows()]
    print(format_columns(["law", "weight", "elpd_loo (se)", "max Pareto k", "healthy"], rows))
    disc = discrepancy_option(args)
    fc = st.forecast(args.budgets, prob=args.prob, discrepancy=disc, seed=args.seed)
    pct = f"{100 * args.prob:g}%"
    head = ["budget", f"N_opt [{pct}]", f"D_opt [{pct}]", f"L* [{pct}]"]
    print(f"stacked forecast (the weighted mixture of the laws' posteriors; medians with {pct} intervals):")
    print(format_columns(head, [[fmt_number(r["budget"]), fmt_interval(r, "N_opt"), fmt_interval(r, "D_opt"),
                                 fmt_interval(r, "L*")] for _, r in fc.iterrows()]))
    print("\n".join(uncertainty_lines(fc, args.prob, disc)))
    for w in st.warnings:
        print(f"WARNING: {w}")
    health = st.health()
    print(f"sampler: {health}")
    write_json({"laws": table.to_dict(orient="records"), "forecast": fc.to_dict(orient="records"),
                "discrepancy": None if disc is None else disc.to_dict(),
                "warnings": list(st.warnings), "health": health.to_dict()}, args)
    if not health.ok:
        print("FLAGGED: a law's sampler is unhealthy (see above)")
        return 1
    return 0

"""``bayes-scaling next-run``: which small runs to train next (:mod:`bayes_scaling.design`): candidates ranked by the
expected narrowing of a target's posterior per FLOP, and a batch within a budget."""

from __future__ import annotations

import os

import numpy as np

from ..tables import fmt_human, format_columns
from .common import UsageError, check_json_target, check_sampler_args, write_json
from .plan import add_posterior_source_opts, check_posterior_source, posterior_for


def add_next_run_command(sub, add_table_opts, add_sampler_opts) -> None:
    p = sub.add_parser("next-run", help="which small runs to train next: candidates ranked by the expected narrowing of a "
                                        "target's interval per FLOP, and a batch within a budget")
    add_table_opts(p, runs_optional=True)
    add_sampler_opts(p)
    add_posterior_source_opts(p, "design")
    p.add_argument("--target", required=True, metavar="Q@X",
                   help="what to narrow: N_opt@1e24, D_opt@1e24, L*@1e24 (at a budget in FLOPs) or loss@70Bx1.4T (a plan)")
    p.add_argument("--candidates", required=True, metavar="CSV",
                   help="candidate runs, one per row: columns N and D (or N and C = 6ND)")
    p.add_argument("--budget", type=float, default=None, metavar="FLOPS", help="FLOPs the batch may spend in all (6ND summed)")
    p.add_argument("--batch-runs", type=int, default=5, metavar="K", help="runs in the proposed batch (default 5; fewer if the budget ends)")
    p.add_argument("--utility", choices=("precision", "variance"), default="precision",
                   help="a run's value per FLOP, from the target's expected posterior variance after it: the rise of its "
                        "precision 1/variance (default; adds over runs, so it reaches a width at least cost) or the drop of "
                        "the variance itself")
    p.add_argument("--outcomes", type=int, default=128, metavar="M", help="simulated outcomes per candidate (default 128)")
    p.add_argument("--design-draws", type=int, default=2000, metavar="S", help="posterior draws reweighted (default 2000)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout, then nothing else there)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")


def read_candidates(path: str) -> np.ndarray:
    """The candidates file as (K, 2) of N, D; one line naming the file, column and row of a bad value."""
    import pandas as pd

    if not os.path.isfile(path):
        raise UsageError(f"--candidates {path}: no such file")
    try:
        df = pd.read_csv(path)
    except (ValueError, OSError) as err:
        raise UsageError(f"--candidates {path}: not a readable CSV ({err})") from None
    if "N" not in df.columns or not ({"D", "C"} & set(df.columns)):
        raise UsageError(f"--candidates {path}: needs columns N and D (or N and C); its columns: {', '.join(map(str, df.columns))}")
    if not len(df):
        raise UsageError(f"--candidates {path}: no rows")
    for col in ["N"] + [c for c in ("D", "C") if c in df.columns]:
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise UsageError(f"--candidates {path}: column {col}, row {i + 2}: {df[col].iloc[i]!r} is not a positive, finite number")
    N = df["N"].to_numpy(float)
    D = df["D"].to_numpy(float) if "D" in df.columns else df["C"].to_numpy(float) / (6 * N)
    return np.stack([N, D], axis=1)


def _check(args):
    from ..design import parse_target

    check_sampler_args(args)
    check_json_target(args)
    try:
        target = parse_target(args.target)
    except ValueError as err:
        raise UsageError(f"--target: {err}") from None
    if args.budget is not None and not (np.isfinite(args.budget) and args.budget > 0):
        raise UsageError(f"--budget {args.budget:g}: must be a positive, finite number of FLOPs")
    for opt, v, least in (("--batch-runs", args.batch_runs, 1), ("--outcomes", args.outcomes, 8), ("--design-draws", args.design_draws, 100)):
        if v < least:
            raise UsageError(f"{opt} {v}: must be at least {least}")
    check_posterior_source(args, "next-run")
    cand = read_candidates(args.candidates)
    if args.budget is not None and 6 * np.prod(cand, axis=1).min() > args.budget:
        raise UsageError(f"--budget {args.budget:g}: the cheapest candidate costs {6 * np.prod(cand, axis=1).min():.3g} FLOPs")
    return target, cand


def cmd_next_run(args) -> int:
    from ..design import propose_batch, rank_candidates
    target, cand = _check(args)
    post, inputs = posterior_for(args)
    kw = dict(outcomes=args.outcomes, draws=args.design_draws, utility=args.utility, inputs=inputs or None, seed=args.seed)
    try:
        ranked = rank_candidates(post, cand, target, **kw)
        batch = propose_batch(post, cand, target, args.batch_runs, budget=args.budget, **kw)
    except ValueError as err:
        raise UsageError(str(err)) from None
    w0 = ranked.attrs["width90_before"]
    out = [f"target: {target}; its 90% interval is {w0:.3g} wide now (x{np.exp(w0):.3g} from end to end)",
           "each candidate's expected narrowing, simulated from the posterior predictive and reweighting the draws "
           f"({args.outcomes} outcomes x {min(args.design_draws, post_draws(post))} draws), per 1e18 FLOPs (best first):"]
    per = "reduction_per_exaflop" if args.utility == "variance" else "precision_gain_per_exaflop"
    head = ["N", "D", "tokens/param", "C (FLOPs)", "variance cut", f"{args.utility} gain per 1e18 FLOPs", "width after", "ESS"]
    rows = [[fmt_human(r["N"]), fmt_human(r["D"]), fmt_human(r["tokens_per_param"]), f"{r['C']:.3g}", f"{r['reduction_share']:.1%}",
             f"{r[per]:.3g}", f"{r['expected_width90_after']:.3g}", f"{r['median_ess']:.0f}"]
            for _, r in ranked.head(10).iterrows()]
    out.append(format_columns(head, rows))
    if len(ranked) > 10:
        out.append(f"({len(ranked) - 10} more candidates in --json)")
    limit = f" within {args.budget:g} FLOPs" if args.budget is not None else ""
    out += ["", f"proposed batch of {len(batch)} run(s){limit} (chosen greedily, the earlier runs' outcomes simulated jointly):"]
    head = ["#", "N", "D", "C (FLOPs)", "FLOPs so far", "width after", "ESS"]
    rows = [[str(i + 1), fmt_human(r["N"]), fmt_human(r["D"]), f"{r['C']:.3g}", f"{r['cumulative_C']:.3g}",
             f"{r['expected_width90_after']:.3g}", f"{r['median_ess']:.0f}"] for i, (_, r) in enumerate(batch.iterrows())]
    out.append(format_columns(head, rows))
    warnings_ = []
    low = batch["median_ess"].min() if len(batch) else np.inf
    if low < 50:
        warnings_.append(f"the reweighting's effective sample size falls to {low:.0f}: the batch's runs move the posterior far, "
                         "so its expected widths are rough; train the first run, sample again, and ask again")
    health = post.health()
    if not health.ok:
        warnings_ += [f"sampler: {w}" for w in health.warnings]
    out += [f"warning: {w}" for w in warnings_]
    flagged = not health.ok
    if flagged:
        out.append("FLAGGED: the sampler is not healthy (warnings above); exit code 1")
    print("\n".join(out))
    write_json({"target": str(target), "width90_before": w0, "ranked": ranked.to_dict(orient="records"),
                "batch": batch.to_dict(orient="records"), "warnings": warnings_}, args)
    return 1 if flagged else 0


def post_draws(post) -> int:
    from ..planning import members

    return sum(p.num_chains * p.num_draws for _, p, _ in members(post))

"""``bayes-scaling backtest RUNS``: fit on the runs up to each cut, forecast the runs beyond it, and say how often
the intervals held them (:func:`bayes_scaling.backtests.backtest`)."""

from __future__ import annotations

import os
import time

import numpy as np

from ..tables import fmt_number, format_columns
from .common import UsageError, check_json_target, check_sampler_args, check_writable, load_law_and_runs, posterior_options, write_json
from .stacked import discrepancy_option, laws_option

_ROLES = ("C", "N", "D", "U", "steps", "batch_size")


def add_backtest_command(sub, add_table_opts, add_sampler_opts) -> None:
    bt = sub.add_parser("backtest", help="rolling-origin backtest: fit on runs up to each cut, score forecasts of the runs beyond")
    add_table_opts(bt)
    add_sampler_opts(bt)
    bt.set_defaults(warmup=500, draws=500, target_accept=0.95)
    bt.add_argument("--by", default="C", metavar="C|N|D|COLUMN",
                    help="what orders the runs for the cuts: compute C (default; 6ND where C is absent), N, D, or a column")
    bt.add_argument("--cuts", nargs="+", type=float, default=None, metavar="VALUE", help="cut values: fit on runs with BY <= VALUE")
    bt.add_argument("--levels", nargs="+", type=int, default=None, metavar="K",
                    help="fit on the K smallest distinct values of BY (IsoFLOP budgets), e.g. --levels 6 7 8")
    bt.add_argument("--probs", nargs="+", type=float, default=[0.5, 0.8, 0.9], metavar="P", help="interval masses scored (default 0.5 0.8 0.9)")
    bt.add_argument("--update", action="store_true", help="update the discrepancy's scale with this backtest (in-sample then)")
    bt.add_argument("--laws", default=None, metavar="auto|A,B,...",
                    help="backtest several laws and their stack ('auto': Chinchilla, Chinchilla with alpha = beta, Kaplan, "
                         "and the data-constrained law when U is known)")
    bt.add_argument("--weights", choices=("lfo", "loo"), default="lfo",
                    help="with --laws: weigh the laws at each cut by stacking their scores of runs earlier cuts forecast "
                         "(lfo, default; the first cut falls back to loo) or their PSIS-LOO fit (loo)")
    bt.add_argument("--isoflop", action="store_true",
                    help="backtest the IsoFLOP method instead: per configuration (--family COLS), fit the budgets up to the "
                         "k-th, forecast N_opt at the next budget, compare with that budget's own vertex")
    bt.add_argument("--hyperparam", metavar="COLUMN", default=None,
                    help="backtest an optimal-hyperparameter law instead: RUNS is a sweep (one row per run), COLUMN the "
                         "hyperparameter (e.g. lr); per budget (--by, default the C column) its best-loss value, fitted as "
                         "a power law of the budget up to each cut, the larger budgets' optima forecast")
    bt.add_argument("--out", metavar="DIR", default=None, help="write DIR/backtest.md, points.csv, cuts.csv and calibration.png")
    bt.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout)")
    bt.add_argument("--force", action="store_true", help="overwrite existing output files")


def _by_values(args, runs):
    if args.by in _ROLES:
        return args.by
    from ..data import read_table

    df, _, _ = read_table(args.runs, sep=args.sep)
    if args.by not in df.columns:
        raise UsageError(f"--by {args.by}: {args.runs} has no such column (its columns: {', '.join(map(str, df.columns))})")
    col = df[args.by].to_numpy()
    values = np.asarray([col[r - 1] for r in runs.rows], dtype=object)
    for r, v in zip(runs.rows, values):
        try:
            ok = np.isfinite(float(v)) and float(v) > 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise UsageError(f"{args.runs}: column {args.by!r}, row {r}: {v!r} is not a positive number (--by needs one per run)")
    return values.astype(float)


def _check(args):
    check_sampler_args(args)
    if args.cuts is not None and args.levels is not None:
        raise UsageError("give --cuts or --levels, not both")
    if any(not 0 < p < 1 for p in args.probs):
        raise UsageError(f"--probs {' '.join(map(str, args.probs))}: each must be between 0 and 1")
    if args.levels is not None and any(k < 1 for k in args.levels):
        raise UsageError("--levels: each K must be at least 1")
    if args.cuts is not None and any(not (np.isfinite(c) and c > 0) for c in args.cuts):
        raise UsageError("--cuts: each must be a positive number")
    if args.family_out or args.resume:
        raise UsageError("--family-out/--resume do not apply to backtest (use --out DIR)")
    check_json_target(args)
    if args.hyperparam and (args.laws or args.isoflop or args.update or args.tie or args.fix or args.family):
        raise UsageError("--hyperparam backtests one hyperparameter law on a sweep: drop --laws, --isoflop, --update, "
                         "--tie, --fix and --family")
    if args.out:
        check_writable(args.out, "--out", folder=True)
        names = (("hyperparam_backtest.csv",) if args.hyperparam else ("isoflop_backtest.csv",) if args.isoflop
                 else ("backtest.md", "points.csv", "cuts.csv", "calibration.png"))
        for name in names:
            if os.path.exists(os.path.join(args.out, name)) and not args.force:
                raise UsageError(f"--out {args.out}: {name} exists; not overwriting it (pass --force to replace it)")


def cmd_backtest(args) -> int:
    from ..backtests import backtest

    _check(args)
    if args.isoflop:
        return _isoflop(args)
    if args.hyperparam:
        return _hyperparam(args)
    law, runs, _ = load_law_and_runs(args)
    disc = discrepancy_option(args)
    by = _by_values(args, runs)
    opts = posterior_options(args)
    t0 = time.perf_counter()
    kw = dict(by=by, cuts=args.cuts, levels=args.levels, probs=args.probs, discrepancy=disc, progress_bar=args.show_progress, **opts)
    per, weights = {}, None
    if args.laws:
        from ..stacking import backtest_stacked

        laws = laws_option(args, runs, one_table=False)
        bt, per, weights = backtest_stacked(runs, laws, weights=args.weights, **kw)
    else:
        bt = backtest(law, runs, **kw)
    if disc is not None and args.update:
        disc = disc.updated(bt.log_score)
        bt = bt.rescored(disc)
    plain = bt.rescored(None) if disc is not None else bt
    seconds = time.perf_counter() - t0
    out, warn = _text(args, bt.name if per else law.name + ": " + law.formula, runs, bt, plain, disc, seconds)
    if per:
        out += _stack_text(bt, per, weights, disc)
    print("\n".join(out))
    result = {"law": bt.name, "laws": {n: b.pooled().to_dict(orient="records")[0] for n, b in per.items()},
              "weights": None if weights is None else weights.to_dict(orient="records"), "by": args.by, "source": runs.source,
              "seconds": seconds, "pooled": bt.pooled().to_dict(orient="records")[0],
              "pooled_without_discrepancy": plain.pooled().to_dict(orient="records")[0], "cuts": bt.cuts.to_dict(orient="records"),
              "pit_histogram": bt.pit_histogram().tolist(), "discrepancy": None if disc is None else disc.to_dict(),
              "health": bt.health.to_dict(), "warnings": warn, "settings": dict(bt.settings)}
    write_json(result, args)
    if args.out:
        _write_out(args, bt, plain, "\n".join(out))
    if not bt.health.ok:
        print("FLAGGED: the sampler is unhealthy in some cuts (see above); their scores are less reliable")
        return 1
    return 0


def _isoflop(args) -> int:
    import warnings

    from ..analyses.isoflop_backtest import backtest_isoflop
    from ..data import read_table

    if args.laws or args.cuts:
        raise UsageError("--isoflop cuts at budgets: use --levels K (budgets fitted), not --cuts or --laws")
    df, name, _ = read_table(args.runs, sep=args.sep)
    by = list(args.family or [])
    if not by:
        df = df.assign(__all__="all")
        by = ["__all__"]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-budget notes of the IsoFLOP fits; the health column says what matters
        res = backtest_isoflop(df, by=by, C=args.col_C, N=args.col_N, D=args.col_D, loss=args.col_loss, levels=args.levels,
                               probs=args.probs, seed=args.seed, num_warmup=args.warmup, num_samples=args.draws,
                               num_chains=args.chains, target_accept=args.target_accept)
    per = res.groupby("configuration", sort=False)[f"inside_{100 * max(args.probs):g}"].agg(["sum", "size"])
    cov = ", ".join(f"{100 * p:g}%: {100 * res[f'inside_{100 * p:g}'].mean():.0f}%" for p in args.probs)
    out = [f"In short: IsoFLOP backtest of {name}: {len(res)} forecasts of N_opt at the next budget over {len(per)} "
           f"configuration(s) ({time.perf_counter() - t0:.0f} s); held by the intervals: {cov}; configurations whose every "
           f"forecast held at {100 * max(args.probs):g}%: {int((per['sum'] == per['size']).sum())} of {len(per)}"]
    head = ["configuration", "fitted budgets", "next budget", "forecast N_opt", f"{100 * max(args.probs):g}% interval",
            "held-out vertex", "held", "healthy"]
    p = f"{100 * max(args.probs):g}"
    rows = [[str(r["configuration"]), str(r["fitted_budgets"]), fmt_number(r["next_budget"]), fmt_number(r["forecast_N_opt"]),
             f"({fmt_number(r[f'forecast_lo_{p}'])}, {fmt_number(r[f'forecast_hi_{p}'])})", fmt_number(r["held_out_N_opt"]),
             "yes" if r[f"inside_{p}"] else "NO", "yes" if r["healthy"] else "no"] for _, r in res.iterrows()]
    out.append(format_columns(head, rows))
    print("\n".join(out))
    write_json({"isoflop": res.to_dict(orient="records")}, args)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        res.to_csv(os.path.join(args.out, "isoflop_backtest.csv"), index=False)
        print(f"wrote {os.path.join(args.out, 'isoflop_backtest.csv')}")
    if not res["healthy"].all():
        print(f"FLAGGED: the sampler is unhealthy in {int((~res['healthy']).sum())} of {len(res)} cut fits (more --draws helps)")
        return 1
    return 0


def _hyperparam(args) -> int:
    import warnings

    from ..analyses.power_law_backtest import backtest_hyperparam, pooled_coverage

    budget = getattr(args, f"col_{args.by}", None) or args.by  # a role (C, N, D, U, ...) names its column
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # edge-of-sweep notes per budget; the health column says what matters
            pts = backtest_hyperparam(args.runs, target=args.hyperparam, by=(budget,), loss=args.col_loss, cuts=args.cuts,
                                      levels=args.levels, probs=args.probs, seed=args.seed, num_warmup=args.warmup,
                                      num_samples=args.draws, num_chains=args.chains, target_accept=args.target_accept,
                                      sep=args.sep)
    except ValueError as err:
        raise UsageError(str(err)) from None
    cov = pooled_coverage(pts, args.probs)
    held = ", ".join(f"{100 * p:g}%: {100 * cov[f'coverage_{100 * p:g}']:.0f}%" for p in args.probs)
    p = f"{100 * max(args.probs):g}"
    out = [f"In short: backtest of the optimal {args.hyperparam} as a power law of {budget} ({args.runs}): {len(pts)} "
           f"held-out optima over {cov['cuts']} cut(s) ({time.perf_counter() - t0:.0f} s); held by the intervals: {held}; "
           f"median |error| {cov['median_abs_error_%']:.1f}%; farthest forecast {pts['extrapolation'].max():.3g}x the "
           "largest fitted budget"]
    head = ["cut", "fitted", budget, f"optimal {args.hyperparam}", "forecast", f"held at {p}%", "PIT", "healthy"]
    rows = [[fmt_number(r["cut"]), str(r["fitted"]), fmt_number(r[budget]), fmt_number(r["observed"]), fmt_number(r["forecast"]),
             "yes" if r[f"inside_{p}"] else "NO", f"{r['pit']:.2f}", "yes" if r["healthy"] else "no"] for _, r in pts.iterrows()]
    out.append(format_columns(head, rows))
    print("\n".join(out))
    write_json({"hyperparam": args.hyperparam, "pooled": cov, "points": pts.to_dict(orient="records")}, args)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        pts.to_csv(os.path.join(args.out, "hyperparam_backtest.csv"), index=False)
        print(f"wrote {os.path.join(args.out, 'hyperparam_backtest.csv')}")
    if not pts["healthy"].all():
        print("FLAGGED: the sampler is unhealthy in some cut fits (more --draws helps)")
        return 1
    return 0


def _stack_text(bt, per, weights, disc):
    cols = [f"coverage_{100 * p:g}" for p in bt.probs]
    rows = []
    for name, b in list(per.items()) + [(bt.name, bt)]:
        r = (b.rescored(disc) if b is not bt else b).pooled().iloc[0]
        rows.append([name] + [f"{100 * r[c]:.0f}%" for c in cols] + [f"{r['median_abs_error_%']:.2f}%", f"{r['mean_log_score']:.2f}"])
    out = ["per law and stacked (pooled over the cuts):",
           format_columns(["law"] + [f"cov {c.split('_')[1]}%" for c in cols] + ["|error| median", "mean log score"], rows),
           "weights at each cut (known at the cut):",
           format_columns(list(map(str, weights.columns)), [[fmt_number(v) if isinstance(v, float) else str(v) for v in r]
                                                             for r in weights.itertuples(index=False)])]
    return out


def _text(args, what, runs, bt, plain, disc, seconds):
    probs = bt.probs
    pooled, raw = bt.pooled().iloc[0], plain.pooled().iloc[0]
    cov = lambda r: ", ".join(f"{100 * p:g}%: {100 * r[f'coverage_{100 * p:g}']:.0f}%" for p in probs)
    warn = []
    p_hi = max(probs)
    got = pooled[f"coverage_{100 * p_hi:g}"]
    if abs(got - p_hi) > 0.1:
        warn.append(f"{100 * p_hi:g}% intervals held {100 * got:.0f}% of the held-out runs: the forecasts are "
                    f"{'over' if got < p_hi else 'under'}-confident at these distances")
    out = [runs.describe(), f"law: {what}",
           "In short: " + f"{len(bt.points)} forecasts of held-out runs over {len(bt.cuts)} cuts by {args.by}, up to "
                          f"{fmt_number(pooled['max_extrapolation'])}x beyond the fitted runs; intervals held: {cov(pooled)}"
           + ("" if disc is None else f" (without the extrapolation term: {cov(raw)})")
           + f"; median |error| {pooled['median_abs_error_%']:.2f}%. " + (" ".join(f"WARNING: {w}." for w in warn) or ""),
           f"backtest: {seconds:.1f} s; fit on the runs with {args.by} <= cut, forecast each run beyond it "
           f"(posterior predictive: parameters, noise" + ("" if disc is None else ", extrapolation discrepancy") + ")"]
    if disc is not None:
        out.append("discrepancy: sd of log loss = sqrt(sum (tau_k d_k)^2), d_k = log-distance beyond the fitted runs; tau "
                   + ", ".join(f"{k} {v:.3g}" for k, v in disc.tau.items()) + f" (spread x{np.exp(disc.log_sd):.2f}; {disc.source})")
    head = ["family", "cut", "fit on", "held out"] + [f"cov {100 * p:g}%" for p in probs] + ["|error| median", "max extrap."]
    rows = [[str(r["family"]), fmt_number(r["cut"]), str(r["train_runs"]), str(r["held_out"])]
            + [f"{100 * r[f'coverage_{100 * p:g}']:.0f}%" for p in probs]
            + [f"{r['median_abs_error_%']:.2f}%", f"{fmt_number(r['max_extrapolation'])}x"] for _, r in bt.cuts.iterrows()]
    out.append(format_columns(head, rows))
    hist = bt.pit_histogram()
    out.append("PIT (share of predictive draws below each held-out loss; flat when calibrated, U-shaped when too narrow), "
               "10 bins: " + " ".join(str(int(h)) for h in hist))
    out.append(f"sampler: {bt.health}")
    return out, warn


def _write_out(args, bt, plain, text) -> None:
    os.makedirs(args.out, exist_ok=True)
    bt.points.to_csv(os.path.join(args.out, "points.csv"), index=False)
    bt.cuts.to_csv(os.path.join(args.out, "cuts.csv"), index=False)
    with open(os.path.join(args.out, "backtest.md"), "w") as fh:
        fh.write("# Backtest\n\n```\n" + text + "\n```\n")
    from ..plots.calibration import plot_calibration

    plot_calibration(bt, plain, os.path.join(args.out, "calibration.png"))
    print(f"wrote {args.out}/backtest.md, points.csv, cuts.csv, calibration.png")

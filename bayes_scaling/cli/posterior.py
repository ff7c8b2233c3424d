"""``sample``, ``report`` and ``demo``: the posterior of a loss law, its forecast with intervals, the report."""

from __future__ import annotations

import json
import os
import time

import numpy as np

from ..tables import fmt_number, format_columns
from .common import (
    UsageError,
    check_json_target,
    check_sampler_args,
    check_writable,
    fmt_ess,
    fmt_interval,
    forecastable,
    health_words,
    load_law_and_runs,
    posterior_options,
    write_json,
)
from .fit import run_families, run_fit


def cmd_sample(args) -> int:
    check_sampler_args(args)
    check_json_target(args)
    _check_out_dir(args)
    law, runs, inputs = load_law_and_runs(args)
    if args.laws:
        from .stacked import run_stacked

        return run_stacked(runs, args)
    if args.family:
        if args.out:
            raise UsageError("--out writes one posterior; with --family use --family-out DIR (or report --family --out DIR)")
        return run_families(runs, law, args, inputs, kind="sample")
    code, post, summary = _run_posterior(runs, law, args, inputs=inputs)
    if args.out:
        from ..report import json_safe

        os.makedirs(args.out, exist_ok=True)
        post.save(os.path.join(args.out, "posterior.nc"), overwrite=True)
        with open(os.path.join(args.out, "summary.json"), "w") as fh:
            json.dump(json_safe(summary), fh, indent=2, allow_nan=False, default=str)
        print(f"wrote {os.path.join(args.out, 'posterior.nc')} and {os.path.join(args.out, 'summary.json')}")
    write_json(summary, args)
    return code


def cmd_report(args) -> int:
    from .hardware import hardware_option, plans_option

    check_sampler_args(args)
    args.hardware, args.plans = hardware_option(args), plans_option(args)
    if args.family:
        return _family_report(args)
    _check_report_target(args.out, args.force)
    law, runs, inputs = load_law_and_runs(args)
    post = load_posterior(args.posterior, law, runs) if args.posterior else None
    code, post, _ = _run_posterior(runs, post.law if post is not None else law, args, inputs=inputs, post=post)
    _write_report(post, runs, args, inputs=inputs, title=args.title, save_posterior=not args.posterior)
    return code


def cmd_demo(args) -> int:
    from ..datasets import CHINCHILLA_CITATION, chinchilla_path, load_chinchilla
    from ..laws import get_law

    check_sampler_args(args)
    check_json_target(args)
    if args.out:
        if args.point_only:
            raise UsageError("--out writes the posterior's report; drop --point-only")
        _check_report_target(args.out, args.force)
    runs = load_chinchilla()
    title = f"demo: Chinchilla law on the bundled runs ({CHINCHILLA_CITATION})"
    code, fit_result = run_fit(runs, get_law("chinchilla"), args, title=title, write=False)
    if args.point_only:
        write_json(fit_result, args)
        return code
    print()
    post_code, post, summary = _run_posterior(runs, get_law("chinchilla"), args)
    if args.out:
        _write_report(post, runs, args, data_path=chinchilla_path(),
                      title="Chinchilla law on the bundled 240 runs: Bayesian forecast",
                      notes=[f"data: {CHINCHILLA_CITATION}",
                             "standard subset: the 5 highest-loss runs of the 245 dropped (Epoch's default)"])
    write_json({"point_fit": fit_result, "posterior": summary}, args)
    return max(code, post_code)


def sample_one(runs, law, args):
    from ..checks import small_design
    from ..sampling import sample_posterior, small_design_settings

    small = small_design(len(runs), law)
    _, _, warmup, draws, _ = small_design_settings(small, "auto", None, args.warmup, args.draws, args.target_accept)
    total = args.chains * (warmup + draws)
    print(f"sampling the posterior: NUTS, {args.chains} chains x ({warmup} warm-up + {draws} draws), "
          f"{args.likelihood} noise on log loss, seed {args.seed} ({total} iterations)"
          + (", small design: longer chains and the small design's noise prior" if small else "") + "...", flush=True)
    t0 = time.perf_counter()
    post = sample_posterior(law, runs, **posterior_options(args, single=True))
    return post, time.perf_counter() - t0


def _run_posterior(runs, law, args, *, inputs=None, post=None, seconds=None):
    """Sample (unless ``post`` is given), print the summary, forecast and diagnostics; returns (exit code, post,
    summary): exit code 1 when the sampler is unhealthy or the data, the fit or the extrapolation is flagged."""
    from ..diagnostics import fmt_rhat

    if post is None:
        post, seconds = sample_one(runs, law, args)
    else:
        print(f"posterior: {post.source or 'loaded'} ({post.num_chains} chains x {post.num_draws} draws)")
    seconds = float(seconds if seconds is not None else post.settings.get("seconds", float("nan")))
    prob = args.prob
    table = post.summary(prob=prob)
    pct = f"{100 * prob:g}%"
    devs = post.settings.get("devices", 1)
    where = f"; chains over {devs} devices" if isinstance(devs, int) and devs > 1 else ""
    out = [f"posterior ({seconds:.1f} s{where}): median and {pct} equal-tailed interval; R-hat; bulk/tail ESS"]
    for name, r in table.iterrows():
        out.append(f"  {name:<10} {fmt_number(r['median'])}  ({fmt_number(r[f'eti_{pct}_lo'])}, {fmt_number(r[f'eti_{pct}_hi'])})"
                   f"  r_hat {fmt_rhat(r['r_hat'])}  ess {fmt_ess(r['ess_bulk'])}/{fmt_ess(r['ess_tail'])}")
    forecast, extra_forecast = None, None
    if forecastable(law):
        forecast = post.forecast(args.budgets, prob=prob, inputs=inputs or None)
        out.append(f"forecast (C = 6 N D FLOPs; medians with {pct} intervals of the mean law; 'new run': one run's loss; "
                   "'C / largest run': how far beyond the runs):")
        out.append(_fmt_interval_table(forecast, prob))
        if "N_opt" in forecast and getattr(args, "discrepancy", "default") != "none":
            from ..stacking import StackedPosterior
            from .stacked import discrepancy_option, uncertainty_lines

            disc = discrepancy_option(args)
            parts = StackedPosterior(posteriors={law.name: post}, weights={law.name: 1.0}).forecast(
                args.budgets, prob=prob, discrepancy=disc, seed=getattr(args, "seed", 0))
            out.extend(uncertainty_lines(parts, prob, disc))
            extra_forecast = parts.to_dict(orient="records")
    exponent = None
    if "alpha" in post.draws and "beta" in post.draws and law.optimum is not None:
        a = post.exponent_a()
        lo, hi = np.quantile(a, [(1 - prob) / 2, (1 + prob) / 2])
        exponent = {"median": float(np.median(a)), "lo": float(lo), "hi": float(hi)}
        out.append(f"exponent a (N_opt ~ C^a): {fmt_number(exponent['median'])} ({fmt_number(lo)}, {fmt_number(hi)})")
    diag = post.diagnostics(budgets=args.budgets)
    out.append(health_words(diag))
    out.extend(f"warning: {w}" for w in diag["warnings"])
    out.extend(f"note: {w}" for w in diag["notes"])
    if not diag["ok"]:
        why = (["the sampler is not healthy"] if not diag["sampler_ok"] else []) + (
            [f"{len(diag['problems'])} problem(s) with the data, the fit or the extrapolation"] if diag["problems"] else [])
        out.append(f"FLAGGED: {'; '.join(why)} (warnings above); exit code 1")
    print("\n".join(out))
    summary = {
        "law": law.name, "formula": law.formula, "prob": prob, "seconds": seconds, "source": runs.source,
        "parameters": table.to_dict(orient="index"),
        "forecast": None if forecast is None else forecast.to_dict(orient="records"), "exponent_a": exponent,
        "forecast_with_extrapolation_term": extra_forecast,
        "diagnostics": diag, "settings": post.settings, "point_fit": post.point_fit,
    }
    return (0 if diag["ok"] else 1), post, summary


def _fmt_interval_table(df, prob) -> str:
    """The posterior forecast table: medians with intervals, one new run's interval, how far beyond the runs;
    every number with the same significant digits."""
    pct = f"{100 * prob:g}%"
    cols = [c for c in ("N_opt", "D_opt", "D/N", "L*") if c in df.columns]
    head = ["budget"] + [f"{c} [{pct}]" for c in cols] + [f"new run [{pct}]"]
    far = "extrapolation" in df.columns and df["extrapolation"].notna().any()
    head += ["C / largest run"] if far else []
    rows = []
    for _, r in df.iterrows():
        cells = [fmt_number(r["budget"])] + [fmt_interval(r, c) for c in cols] + [f"({fmt_number(r['L_new_lo'])}, {fmt_number(r['L_new_hi'])})"]
        rows.append(cells + ([fmt_number(r["extrapolation"])] if far else []))
    return format_columns(head, rows)


def _check_out_dir(args, names=("posterior.nc", "summary.json")) -> None:
    """Refuse, before any work, an --out folder that cannot be written or holds our files (without --force)."""
    if not args.out:
        return
    check_writable(args.out, "--out", folder=True)
    existing = [t for t in (os.path.join(args.out, f) for f in names) if os.path.exists(t)]
    if existing and not args.force:
        raise UsageError(f"--out: {existing[0]} exists; not overwriting it (pass --force to replace it)")


def _check_report_target(out: str, force: bool, *, family: bool = False) -> None:
    """Refuse, before any sampling, an --out folder that cannot be written, or one that holds a report (or its
    posterior.nc; with ``family`` the index or any family's folder), without --force."""
    from ..family_report import family_report_files
    from ..report import report_files

    check_writable(out, "--out", folder=True)
    if family:
        fam_dir = os.path.join(out, "families")
        existing = [p for p in family_report_files(out) if os.path.exists(p)]
        existing += [fam_dir] if os.path.isdir(fam_dir) and os.listdir(fam_dir) else []
    else:
        existing = [p for p in report_files(out) + [os.path.join(out, "posterior.nc")] if os.path.exists(p)]
    if existing and not force:
        raise UsageError(f"--out: {existing[0]} exists; not overwriting it (pass --force to replace it)")


def _write_report(post, runs, args, *, inputs=None, data_path=None, title=None, notes=(), save_posterior=True) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    from ..report import write_report
    from .stacked import discrepancy_option

    disc = discrepancy_option(args)
    bt = None
    if getattr(args, "backtest", False):
        from ..backtests import backtest

        print("backtest: fitting the runs up to each cut (default cuts), forecasting the runs beyond ...")
        bt = backtest(post.law, runs, discrepancy=disc, seed=args.seed, progress_bar=args.show_progress)
    os.makedirs(args.out, exist_ok=True)
    if save_posterior:
        post.save(os.path.join(args.out, "posterior.nc"), overwrite=True)
    paths = write_report(post, args.out, runs=runs, budgets=args.budgets, prob=args.prob, data_path=data_path,
                         title=title, notes=notes, inputs=inputs or None, force=True, discrepancy=disc, backtest=bt,
                         plans=getattr(args, "plans", ()), hardware=getattr(args, "hardware", None))
    print(f"wrote the report: {paths['html']} (open it in a browser), {paths['markdown']}, {paths['json']}, "
          f"{paths['figures']}/*.png" + (f", {os.path.join(args.out, 'posterior.nc')}" if save_posterior else ""))


def load_posterior(path: str, law, runs):
    """The posterior saved at ``path``, checked to be one of ``law`` sampled on exactly these ``runs``."""
    from ..model import noise_inputs
    from ..posterior import Posterior
    from ..sampling import runs_sha256

    if not os.path.isfile(path):
        raise UsageError(f"--posterior {path}: no such file")
    try:
        post = Posterior.load(path)
    except ValueError as err:
        raise UsageError(f"--posterior {err}") from None
    if post.law.name != law.name:
        raise UsageError(f"--posterior {path} holds a posterior of law {post.law.name!r}, not {law.name!r} (--law)")
    stored = post.settings.get("data_sha256")
    if stored:
        names = noise_inputs(post.law, runs, bool(post.settings.get("noise_varies_with_compute")))[1]
        same = stored == runs_sha256(runs, names)
    else:  # a posterior saved before the hash was stored: compare the data it holds
        obs = post.observed
        same = len(obs.get("loss", ())) == len(runs) and all(
            k in obs and np.array_equal(np.asarray(obs[k], float), np.asarray(runs.column(k), float))
            for k in ("loss",) + tuple(law.inputs))
    if not same:
        raise UsageError(f"--posterior {path} was sampled on other data than {runs.source} (the data's SHA-256 differs); "
                         "sample again, or give the table it was sampled on")
    return post


def _family_report(args) -> int:
    """``report --family``: every family's posterior in one batch, an index page over them and each family's report."""
    import matplotlib

    matplotlib.use("Agg")
    from ..batch_posterior import sample_posterior_batch
    from ..family_report import write_family_report

    if args.posterior:
        raise UsageError("--posterior reuses one saved posterior; with --family every family is sampled (drop one of them)")
    if args.family_out or args.resume:
        raise UsageError("report --family writes everything into --out; --family-out and --resume belong to fit and sample")
    out = args.out
    _check_report_target(out, args.force, family=True)
    law, runs, inputs = load_law_and_runs(args)
    batch = sample_posterior_batch(law, runs, **posterior_options(args))
    if not batch.posteriors:
        raise UsageError(f"{args.runs}: no family has enough runs to sample: " +
                         "; ".join(f"{f}: {why}" for f, why in list(batch.skipped.items())[:5]))
    failing = batch.failing()
    print(f"{len(batch.posteriors)} families sampled in {batch.seconds:.1f} s ({len(batch.skipped)} skipped); "
          f"{len(failing)} need attention")
    for fam, why in failing.items():
        print(f"  NEEDS ATTENTION {fam}: {'; '.join(why)}")
    for fam, why in batch.skipped.items():
        print(f"  skipped {fam}: {why}")
    paths = write_family_report(batch, out, runs=runs, budgets=args.budgets, prob=args.prob, title=args.title,
                                inputs=inputs or None, force=True)
    print(f"wrote the report: {paths['html']} (open it in a browser; it links each family's report under "
          f"{os.path.join(out, 'families')}), {paths['markdown']}, {paths['json']}")
    flagged = list(failing) + list(batch.skipped)
    if flagged:
        print(f"FLAGGED: {len(flagged)} families need attention or were skipped (see above); exit code 1")
    return 1 if flagged else 0

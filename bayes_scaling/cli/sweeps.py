"""The sweep analyses: ``batch-size`` (critical batch size), ``isoflop`` (IsoFLOP and envelope exponents) and
``hyperparams`` (optimal-hyperparameter laws)."""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from ..tables import fmt_number, format_columns
from .common import (
    UsageError,
    check_json_target,
    check_sampler_args,
    fmt_interval,
    health_words,
    positive_float,
    write_json,
)


def cmd_batch_size(args) -> int:
    from ..analyses.batch_size import critical_batch_size, forecast_critical_batch, load_batch_sweep
    from ..draws import quantiles

    _check_small_sampler_args(args)
    if args.forecast and not args.law_by:
        raise UsageError("--forecast needs --law-by COLUMN (the law's input)")
    sweep = load_batch_sweep(args.sweep, batch=args.batch, steps=args.steps, group=args.group, sep=args.sep)
    if args.law_by and args.law_by not in sweep.extra:
        raise UsageError(f"--law-by {args.law_by}: not a column constant within each group; such columns: {', '.join(sweep.extra) or '(none)'}")
    opts = dict(seed=args.seed, num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains, target_accept=args.target_accept)
    t0 = time.perf_counter()
    post = critical_batch_size(sweep, reference_batch=args.reference_batch, overhead=args.overhead, **opts)
    prob, pct = args.prob, f"{100 * args.prob:g}%"
    table = post.table(prob)
    out = [f"critical batch size ({time.perf_counter() - t0:.1f} s; {sweep.source}): medians with {pct} intervals, batch units of {args.batch!r}",
           f"  S(B) = S_min + E_min / B per group; B_crit = E_min / S_min (McCandlish); CBS = {args.overhead:g} B_crit + "
           f"{1 + args.overhead:g} x {args.reference_batch:g} (Zhang et al.)"]
    head = ["group", f"B_crit [{pct}]", f"CBS Zhang [{pct}]", f"S_min [{pct}]"]
    rows = [[str(r["group"]), fmt_interval(r, "B_crit"), fmt_interval(r, "cbs_zhang"), fmt_interval(r, "S_min")] for _, r in table.iterrows()]
    out.append(format_columns(head, rows))
    diag = post.diagnostics()
    out.append(health_words(diag))
    warn = list(post.warnings)
    result = {"source": sweep.source, "prob": prob, "groups": table.to_dict(orient="records"), "diagnostics": diag,
              "settings": {k: v for k, v in post.settings.items() if isinstance(v, (int, float, str))}}
    healthy = diag["ok"]
    if args.law_by:
        law = post.scaling_law(args.law_by, definition=args.definition, **opts)
        p, k = law.exponents[args.law_by], law.k
        out.append(f"law: B_crit ({args.definition}) = k {args.law_by}^p: p = {_iv(quantiles(p, prob))}, "
                   f"k = {_iv(quantiles(k, prob))}, scatter tau = {_iv(quantiles(law.tau, prob))}")
        ld = law.diagnostics()
        out.append("  " + health_words(ld))
        warn += [f"law: {w}" for w in law.warnings]
        healthy = healthy and ld["ok"]
        result["law"] = {"input": args.law_by, "definition": args.definition, "p": quantiles(p, prob), "k": quantiles(k, prob),
                         "tau": quantiles(law.tau, prob), "diagnostics": ld}
        if args.forecast:
            largest = float(np.max(sweep.extra[args.law_by]))
            fc = forecast_critical_batch(law, at=args.forecast, prob=prob)
            fc["extrapolation"] = fc[args.law_by] / largest
            for _, r in fc.iterrows():
                out.append(f"  forecast at {args.law_by} = {fmt_number(r[args.law_by])}: B_crit {fmt_number(r['median'])} ({fmt_number(r['lo'])}, "
                           f"{fmt_number(r['hi'])}); {fmt_number(r['extrapolation'])}x the largest {args.law_by} in the sweep")
            far = _far(args.forecast, largest, args.law_by)
            warn += far
            healthy = healthy and not far
            result["forecast"] = fc.to_dict(orient="records")
    out.extend(f"warning: {w}" for w in warn)
    result["warnings"] = warn
    _flag_line(out, not healthy)
    print("\n".join(out))
    write_json(result, args)
    return 0 if healthy else 1


def cmd_isoflop(args) -> int:
    from ..analyses.envelope import envelope
    from ..analyses.isoflop import isoflop, isoflop_batch
    from ..draws import quantiles

    _check_small_sampler_args(args)
    if args.window in ("all", "none"):
        window = None
    else:
        try:
            window = float(args.window)
        except ValueError:
            raise UsageError(f"--window {args.window!r}: expected a number or 'all'") from None
        if not window > 0:
            raise UsageError(f"--window {args.window}: must be positive")
    cols = dict(C=args.col_C, N=args.col_N, D=args.col_D, loss=args.col_loss)
    opts = dict(seed=args.seed, num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains, target_accept=args.target_accept)
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # every warning is kept on the results and printed below, once
        warnings.simplefilter("ignore")
        if args.by:
            posts = isoflop_batch(args.runs, by=args.by, window=window, scatter=args.scatter, sep=args.sep, **cols, **opts)
        else:
            posts = {"all": isoflop(args.runs, window=window, scatter=args.scatter, sep=args.sep, **cols, **opts)}
    seconds = time.perf_counter() - t0
    prob, pct = args.prob, f"{100 * args.prob:g}%"
    out = [f"IsoFLOP (Approach 2; {seconds:.1f} s, {len(posts)} configuration(s)): medians with {pct} intervals; "
           "'C / largest budget': how far beyond the runs"]
    result = {"source": str(args.runs), "prob": prob, "seconds": seconds, "configurations": {}}
    healthy = True
    for label, post in posts.items():
        diag = post.diagnostics()
        largest = float(np.max(post.data.C))
        far = _far(args.budgets, largest, "C")
        healthy = healthy and diag["ok"] and not far
        qa, qb = quantiles(post.a, prob), quantiles(post.b, prob)
        out.append(f"[{label}] a (N_opt ~ C^a) = {_iv(qa)}   b (D_opt ~ C^b) = {_iv(qb)}   budgets {post.data.num_budgets}")
        fc = post.forecast(args.budgets, prob=prob)
        fc["extrapolation"] = fc["budget"] / largest
        rows = [[fmt_number(r["budget"]), fmt_interval(r, "N_opt"), fmt_interval(r, "D_opt"), fmt_number(r["extrapolation"])]
                for _, r in fc.iterrows()]
        out.append("  " + format_columns(["budget", f"N_opt [{pct}]", f"D_opt [{pct}]", "C / largest budget"], rows).replace("\n", "\n  "))
        out.append("  " + health_words(diag))
        out.extend(f"  warning: {w}" for w in list(post.warnings) + far)
        result["configurations"][label] = {"a": qa, "b": qb, "forecast": fc.to_dict(orient="records"),
                                           "vertices": post.vertices(prob).to_dict(orient="records"),
                                           "diagnostics": diag, "warnings": list(post.warnings) + far}
    if args.envelope:
        env = envelope(args.runs, **cols, loss_law=False, sep=args.sep, **{k: v for k, v in opts.items() if k != "target_accept"})
        qa = quantiles(env.n_law.exponents["C"], prob)
        qb = quantiles(env.d_law.exponents["C"], prob)
        ed = env.diagnostics()
        healthy = healthy and ed["ok"]
        out.append(f"envelope (Approach 1; {len(env.points['C'])} runs on the lower envelope): a = {_iv(qa)}   b = {_iv(qb)}")
        out.append("  " + health_words(ed))
        out.extend(f"  warning: {w}" for w in env.warnings)
        result["envelope"] = {"a": qa, "b": qb, "forecast": env.forecast(args.budgets, prob=prob).to_dict(orient="records"),
                              "diagnostics": ed}
    _flag_line(out, not healthy)
    print("\n".join(out))
    write_json(result, args)
    return 0 if healthy else 1


def cmd_hyperparams(args) -> int:
    from ..analyses.hyperparams import hyperparam_law

    _check_small_sampler_args(args)
    by = list(dict.fromkeys(args.by))
    if args.target in by or args.loss in by or args.target == args.loss:
        raise UsageError(f"--target {args.target}, --loss {args.loss} and --by {' '.join(by)} must be different columns")
    points = _forecast_points(args.at, by)
    opts = dict(seed=args.seed, num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains, target_accept=args.target_accept)
    t0 = time.perf_counter()
    law = hyperparam_law(args.sweep, target=args.target, by=by, loss=args.loss, select=args.select, tol=args.tol, sep=args.sep,
                         **opts)
    prob, pct = args.prob, f"{100 * args.prob:g}%"
    chosen = "each budget's best run" if args.select == "optimum" else f"every run within {args.tol:g} (relative) of its budget's best loss"
    n = len(law.observed["y"])
    formula = f"{args.target}_opt = k " + " ".join(f"{b}^p_{b}" for b in by)
    out = [f"hyperparameter law ({time.perf_counter() - t0:.1f} s; {args.sweep}): {formula}",
           f"  fitted to {n} points, {chosen}; medians with {pct} intervals; tau: scatter of single optima about the law"]
    summary = law.summary(prob)
    rows = [[name, _iv({"median": r["median"], "lo": r["lo"], "hi": r["hi"]})] for name, r in summary.iterrows()]
    width = max(len(r[0]) for r in rows)
    out += [f"  {r[0].ljust(width)}  {r[1]}" for r in rows]
    diag = law.diagnostics()
    out.append(health_words(diag))
    warn = list(law.warnings)
    result = {"source": str(args.sweep), "target": args.target, "by": by, "select": args.select, "tol": args.tol, "prob": prob,
              "points": {k: np.asarray(v).tolist() for k, v in law.observed.items()},
              "parameters": {name: {k: float(v) for k, v in r.items()} for name, r in summary.iterrows()},
              "diagnostics": diag, "forecast": []}
    if points:
        x = {b: np.array([p[b] for p in points]) for b in by}
        mean, one = law.predict(x, prob=prob), law.predict(x, prob=prob, predictive=True, seed=args.seed)
        largest = {b: float(np.max(law.observed[b])) for b in by}
        for j, p in enumerate(points):
            where = ", ".join(f"{b} = {fmt_number(p[b])}" for b in by)
            factor = max(p[b] / largest[b] for b in by)
            out.append(f"  forecast at {where}: law {_iv(mean.iloc[j])}; one new optimum {_iv(one.iloc[j])}; "
                       f"{fmt_number(factor)}x the largest in the sweep")
            for b in by:
                warn += _far(p[b], largest[b], b)
            result["forecast"].append({**p, "law": {k: float(mean.iloc[j][k]) for k in ("median", "lo", "hi")},
                                       "one_new_optimum": {k: float(one.iloc[j][k]) for k in ("median", "lo", "hi")},
                                       "extrapolation": factor})
    out.extend(f"warning: {w}" for w in warn)
    result["warnings"] = warn
    ok = diag["ok"] and not any("x the largest in the data" in w for w in warn)
    _flag_line(out, not ok)
    print("\n".join(out))
    write_json(result, args)
    return 0 if ok else 1


def _forecast_points(items, by) -> list[dict[str, float]]:
    points = []
    for item in items:
        if "=" not in item and len(by) == 1:
            parts = {by[0]: item}
        else:
            parts = dict(p.split("=", 1) if "=" in p else (p, "") for p in item.split(","))
        if set(parts) != set(by):
            raise UsageError(f"--at {item}: give a value for each of {', '.join(by)}, as {','.join(f'{b}=VALUE' for b in by)}")
        point = {}
        for name, text in parts.items():
            try:
                point[name] = positive_float(text.strip())
            except argparse.ArgumentTypeError as err:
                raise UsageError(f"--at {item}: {name}: {err}") from None
        points.append(point)
    return points


def _check_small_sampler_args(args) -> None:
    check_sampler_args(args)
    check_json_target(args)


def _iv(q) -> str:
    return f"{fmt_number(q['median'])} ({fmt_number(q['lo'])}, {fmt_number(q['hi'])})"


def _flag_line(out: list[str], flagged: bool) -> None:
    if flagged:
        out.append("FLAGGED: a sampler is not healthy or a forecast is far beyond the data (warnings above); exit code 1")


def _far(values, largest: float, what: str) -> list[str]:
    """Warnings for forecasts at 100x the data's largest value or more (and the factors, for the tables)."""
    from ..checks import FAR_EXTRAPOLATION

    return [f"forecast at {what} = {v:.4g} is {v / largest:,.0f}x the largest in the data ({largest:.4g}): it rests on the law's "
            "form holding over that range; treat its interval as a lower bound on the uncertainty"
            for v in np.atleast_1d(values) if v / largest >= FAR_EXTRAPOLATION]

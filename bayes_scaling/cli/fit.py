"""``fit`` (one law on a run table, or each family of it with ``--family``; ``sample --family`` runs here too)
and ``laws``."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

from ..tables import fmt_number, format_columns
from .common import (
    UsageError,
    check_json_target,
    check_writable,
    forecastable,
    load_law_and_runs,
    posterior_options,
    write_json,
)


def cmd_fit(args) -> int:
    check_json_target(args)
    if args.map and args.objective == "huber_loss":
        raise UsageError("--map needs a likelihood: add --objective student_t, gaussian or huber_density")
    law, runs, inputs = load_law_and_runs(args)
    if args.strategy == "varpro" and args.family and args.protocol == "warm":
        raise UsageError("--strategy varpro with --protocol warm: the warm protocol starts families from pilot fits; "
                         "use --protocol grid for variable projection in every family")
    if args.strategy == "varpro":
        from ..varpro import supports

        if not supports(law):
            raise UsageError(f"--strategy varpro: law {law.name!r} declares no free coefficients it is linear in; use --strategy grid")
    if args.family:
        return run_families(runs, law, args, inputs, kind="fit")
    return run_fit(runs, law, args, objective=args.objective, prior=args.map, delta=args.delta, inputs=inputs)


def run_fit(runs, law, args, *, objective="huber_loss", prior=False, delta=1e-3, inputs=None, title="", write=True):
    """Point fit, forecast and warnings, printed. Returns the exit code (with ``write=False``: the code and the
    JSON-able result, for the caller to write)."""
    from ..checks import extrapolation_warnings, fit_warnings
    from ..derived import forecast_table
    from ..fitting import fit_point

    t0 = time.perf_counter()
    fit = fit_point(law, runs, objective=objective, prior=prior, delta=delta, max_steps=args.max_steps, strategy=args.strategy)
    seconds = time.perf_counter() - t0
    table = None
    notes = []
    if "N" in law.inputs and "D" in law.inputs or law.inputs == ("C",):
        table = _with_extrapolation(forecast_table(law, fit.params, args.budgets, inputs=inputs or None), runs)
    else:
        notes.append(f"law {law.name!r} has inputs {law.inputs}: no compute forecast (needs N and D, or C)")
    flags = list(fit.warnings)
    if table is not None:
        flags += fit_warnings(law, fit.params, forecast=table) + extrapolation_warnings(args.budgets, _max_compute(runs))
    flags = list(dict.fromkeys(flags))

    out = []
    if title:
        out.append(title)
    out.append(runs.describe())
    out.append(f"law: {law.name}: {law.formula}")
    if fit.start_strategy:
        starts = fit.start_strategy
    elif fit.num_polished < fit.num_starts:
        starts = f"{fit.num_starts} grid starts screened, L-BFGS from the best {fit.num_polished}"
    else:
        starts = f"{fit.num_starts} starts"
    out.append(f"method: {fit.method}; {starts}, {fit.num_converged_starts} converged; {seconds:.1f} s")
    out.append(f"objective: {fit.objective:.8g}   status: {fit.status}   steps: {fit.num_steps}")
    out.append("parameters:")
    fixed = law.fixed_values
    for name, value in fit.params.items():
        out.append(f"  {name:<10} {value:.6g}{'  (fixed)' if name in fixed else ''}")
    for name, value in fit.noise.items():
        out.append(f"  {name:<10} {value:.6g}  (noise)")
    if table is not None:
        conv = "C = 6 N D FLOPs" if "N" in law.inputs else "C in FLOPs"
        extra = "".join(f", {k} = {v:.3g}" for k, v in (inputs or {}).items())
        out.append(f"forecast ({conv}{extra}; 'C / largest run': how far beyond the runs):")
        out.append(_fmt_table(table))
    out.extend(f"note: {n}" for n in notes)
    out.extend(f"WARNING: {w}" for w in flags)
    if not fit.converged:
        out.append(f"WARNING: the fit did not converge ({fit.status}); do not trust these numbers. "
                   "Try --max-steps larger, fewer free parameters (--fix), or check the data.")
    if flags or not fit.converged:
        out.append(f"FLAGGED: {len(flags) + (not fit.converged)} warning(s) above; exit code 1")
    print("\n".join(out))

    result = fit.to_dict()
    result["seconds"] = seconds
    result["inputs"] = dict(inputs or {})
    result["forecast"] = None if table is None else table.to_dict(orient="records")
    result["notes"] = list(result["notes"]) + notes
    result["warnings"] = flags
    code = 0 if fit.converged and not flags else 1
    if not write:
        return code, result
    write_json(result, args)
    return code


def _fmt_table(df) -> str:
    """A point forecast table: every number with the same significant digits."""
    cols = [c for c in df.columns]
    head = [{"extrapolation": "C / largest run"}.get(c, c) for c in cols]
    return format_columns(head, [[fmt_number(r[c]) for c in cols] for _, r in df.iterrows()])


def _with_extrapolation(table, runs):
    """The forecast table with ``extrapolation``: each budget over the largest run's compute (C, or 6 N D)."""
    cmax = _max_compute(runs)
    if table is not None and cmax:
        table = table.assign(extrapolation=table["budget"] / cmax)
    return table


def _max_compute(runs) -> float | None:
    from ..posterior import max_compute

    return max_compute({k: getattr(runs, k) for k in ("C", "N", "D") if getattr(runs, k, None) is not None})


def run_families(runs, law, args, inputs, *, kind: str) -> int:
    import pandas as pd

    from ..jobs import run_in_chunks

    work = (_family_records_fit if kind == "fit" else _family_records_sample)(law, args, inputs)
    if args.chunk_size < 1:
        raise UsageError("--chunk-size must be at least 1")
    if args.resume and not args.family_out:
        raise UsageError("--resume continues a job saved with --family-out DIR; give --family-out")
    if args.family_out:
        check_writable(args.family_out, "--family-out", folder=True)
        targets = [os.path.join(args.family_out, f) for f in ("families.csv", "forecast.csv", "families.json", "job.json")]
        if any(os.path.exists(t) for t in targets) and not (args.resume or args.force):
            raise UsageError(f"--family-out {args.family_out} already holds results; pass --resume to continue that job "
                             "or --force to start it afresh")
        keys = ("objective", "map", "delta", "max_steps") if kind == "fit" else (
            "likelihood", "nu", "k", "chains", "warmup", "draws", "seed", "target_accept", "noise", "prob")
        batch_defaults = {"warmup": 1000, "draws": 1000, "target_accept": 0.9}  # what posterior_options resolves unset ones to
        desc = {"kind": kind, "law": law.name, "fixed": law.fixed_values, "budgets": list(args.budgets),
                "inputs": inputs, **{k: getattr(args, k) if getattr(args, k) is not None else batch_defaults.get(k) for k in keys}}
        records = run_in_chunks(work, runs, args.family_out, chunk_size=args.chunk_size, resume=args.resume, description=desc,
                                progress=args.show_progress, overwrite=args.force and not args.resume)
    else:
        records = work(runs)
    _print_family_table(records, law)
    if args.family_out:
        flat = lambda r: {k: ("; ".join(v) if k == "warnings" else v) for k, v in r.items() if k != "forecast"}
        pd.DataFrame([flat(r) for r in records]).to_csv(os.path.join(args.family_out, "families.csv"), index=False)
        pd.DataFrame([dict(family=r["family"], **row) for r in records for row in r["forecast"]]).to_csv(
            os.path.join(args.family_out, "forecast.csv"), index=False)
        with open(os.path.join(args.family_out, "families.json"), "w") as fh:
            json.dump(records, fh, indent=1, default=float)
        print(f"wrote {args.family_out}/families.csv, forecast.csv, families.json")
    write_json({"law": law.name, "formula": law.formula, "kind": kind, "budgets": list(args.budgets),
                 "inputs": dict(inputs or {}), "families": records}, args)
    bad = [r["family"] for r in records if not r.get("ok")]
    if bad:
        skipped = sum(r["status"] == "skipped" for r in records)
        print(f"FLAGGED: {len(bad)} of {len(records)} families need attention ({skipped} skipped for too few runs; the "
              f"others did not converge, are unhealthy or have warnings): {', '.join(map(str, bad[:20]))}"
              f"{' ...' if len(bad) > 20 else ''}; exit code 1")
    return 0 if not bad else 1


def _family_records_fit(law, args, inputs):
    from ..batch import fit_point_batch
    from ..derived import forecast_table

    def work(sub):
        out = fit_point_batch(law, sub, objective=args.objective, prior=args.map, delta=args.delta, max_steps=args.max_steps,
                              strategy=args.strategy,
                              protocol=args.protocol)
        if out.check and out.check["checked_worse"]:
            print(f"warning: warm protocol: {len(out.check['checked_worse'])} of {len(out.check['checked'])} checked families "
                  "found a lower minimum from the full start grid; rerun with --protocol grid", file=sys.stderr)
        records = []
        for fam, fit in out.fits.items():
            r = sub.select(sub.family == fam)
            table = _with_extrapolation(forecast_table(law, fit.params, args.budgets, inputs=inputs or None), r) if forecastable(law) else None
            flags = _family_flags(law, fit.params, table, r, args.budgets, fit.warnings)
            status = ("ok" if not flags else f"{len(flags)} warning{'s' if len(flags) > 1 else ''}") if fit.converged else "NOT CONVERGED"
            records.append({"family": fam, **{k: v for k, v in fit.params.items()}, **fit.noise, "objective": fit.objective,
                            "converged": fit.converged, "ok": fit.converged and not flags, "status": status,
                            "num_runs": fit.num_runs, "warnings": ([] if fit.converged else [fit.status]) + flags,
                            "forecast": [] if table is None else table.to_dict(orient="records")})
        for fam, why in out.skipped.items():
            records.append({"family": fam, "converged": False, "ok": False, "status": "skipped", "warnings": [why], "forecast": []})
        return records

    return work


def _family_records_sample(law, args, inputs):
    from ..batch_posterior import sample_posterior_batch

    def work(sub):
        out = sample_posterior_batch(law, sub, **posterior_options(args))
        pct = f"{100 * args.prob:g}%"
        records = []
        for fam, post in out.posteriors.items():
            table = post.summary(prob=args.prob)
            diag = post.diagnostics(budgets=args.budgets)
            rec = {"family": fam}
            for name, r in table.iterrows():
                rec[name] = r["median"]
                rec[f"{name}_lo"], rec[f"{name}_hi"] = r[f"eti_{pct}_lo"], r[f"eti_{pct}_hi"]
            problems = diag["warnings"]  # the sampler's and the data's, fit's and extrapolation's, in words
            status = "ok" if diag["ok"] else ("NOT HEALTHY" if not diag["sampler_ok"] else f"{len(problems)} warnings")
            rec.update({"divergences": diag["divergences"], "max_r_hat": diag["max_r_hat"], "min_ess_bulk": diag["min_ess_bulk"],
                        "min_ess_tail": diag["min_ess_tail"], "converged": diag["sampler_ok"], "ok": diag["ok"],
                        "status": status, "warnings": problems,
                        "forecast": post.forecast(args.budgets, prob=args.prob, inputs=inputs or None).to_dict(orient="records")})
            records.append(rec)
        for fam, why in out.skipped.items():
            records.append({"family": fam, "converged": False, "ok": False, "status": "skipped", "warnings": [why], "forecast": []})
        return records

    return work


def _family_flags(law, params, table, runs, budgets, extra=()) -> list[str]:
    """Everything that flags one family's result: its own warnings, the forecast's, far extrapolation."""
    from ..checks import extrapolation_warnings, fit_warnings

    flags = list(extra)
    if table is not None:
        flags += fit_warnings(law, params, forecast=table) + extrapolation_warnings(budgets, _max_compute(runs))
    return list(dict.fromkeys(flags))


def _print_family_table(records, law) -> None:
    """One row per family (status in a word or two), the forecasts, then each family's warnings wrapped."""
    import textwrap

    import jax
    import pandas as pd

    devs = jax.devices()
    print(f"{len(records)} families on {len(devs)} {devs[0].platform} device{'s' if len(devs) > 1 else ''}; law {law.name}: {law.formula}")
    rows = [{k: v for k, v in r.items() if k not in ("forecast", "warnings", "ok")} for r in records]
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print(format_columns(cols, [[fmt_number(r[c]) if isinstance(r.get(c), (int, float, np.floating)) and not isinstance(r.get(c), bool)
                           else str(r.get(c, "")) for c in cols] for r in rows]))
    fc = [dict(family=r["family"], **row) for r in records for row in r["forecast"]]
    if fc:
        print("forecast per family (C = 6 N D FLOPs; 'C / largest run': how far beyond the family's runs):")
        f = pd.DataFrame(fc)
        head = [{"extrapolation": "C / largest run"}.get(c, c) for c in f.columns]
        print(format_columns(head, [[fmt_number(v) if not isinstance(v, str) else v for v in row] for row in f.itertuples(index=False)]))
    flagged = [r for r in records if r["warnings"]]
    if flagged:
        print("warnings per family:")
        for r in flagged:
            for w in r["warnings"]:
                print(textwrap.fill(w, width=110, initial_indent=f"  {r['family']}: ", subsequent_indent="      "))


def cmd_laws(args) -> int:
    from ..laws import list_laws

    print("\n\n".join(law.describe() for law in list_laws()))
    return 0

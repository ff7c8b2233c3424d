"""The ``bayes-scaling`` command.

    bayes-scaling demo [--point-only] [--out DIR]    Chinchilla on the bundled 240 runs: fit, posterior
                                                     (--out: also the HTML/Markdown/JSON report in DIR)
    bayes-scaling fit RUNS --law chinchilla --budgets 1e21 1e23 1e25 [--json out.json]
    bayes-scaling sample RUNS --law chinchilla --budgets 1e21 1e23 --prob 0.9 --out DIR
    bayes-scaling report RUNS --law chinchilla --out DIR [--posterior post.nc]
                                                     posterior, then DIR/report.html, report.md, report.json
    bayes-scaling laws                               list the laws and their formulas
    bayes-scaling batch-size SWEEP.csv --batch B --steps S --group model_size [--law-by N --forecast 3e9]
    bayes-scaling isoflop RUNS --C flops --N n --D t [--by COL ...] [--budgets 1e21 1e23] [--envelope]
    bayes-scaling hyperparams SWEEP.csv --target lr --by C [--select near_optimal] [--at 1e22 1e23]

Exit codes: 0 success; 1 the fit did not converge or the sampler is unhealthy (divergences or R-hat
> 1.01; results are printed, flagged); 2 bad input (a one-line message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings

import numpy as np

from .defaults import BUDGETS as DEFAULT_BUDGETS

__all__ = ["main"]



class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="bayes-scaling",
        description="Fit scaling laws to training runs and forecast compute-optimal models.",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="{fit,sample,report,demo,laws,batch-size,isoflop,hyperparams}")

    def add_forecast_opts(p):
        p.add_argument("--budgets", nargs="+", type=_positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                       help="training compute budgets in FLOPs (default: 1e21 5.76e23 1e25)")
        p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout, then nothing else there)")
        p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
        p.add_argument("--max-steps", type=int, default=1000, help="L-BFGS steps per start (default 1000)")
        p.add_argument("--strategy", choices=("auto", "varpro", "grid"), default="auto",
                       help="where L-BFGS starts: 'varpro' solves the coefficients the law is linear in (E, A, B) in closed form "
                            "on a grid of the exponents; 'grid' screens the law's start grid (Chinchilla: the 4500 starts of "
                            "Hoffmann/Epoch); 'auto' (default): varpro for Huber fits of laws that allow it, else grid")

    def add_sep(p):
        p.add_argument("--sep", default=None, metavar="CHAR",
                       help="the table's delimiter (default: comma; a file whose header holds ';', tabs or '|' is read with that)")

    def add_progress_opts(p):
        p.add_argument("--quiet", action="store_true", help="no progress lines (progress is shown by default on a terminal)")
        p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")

    def add_table_opts(p):
        p.add_argument("runs", metavar="RUNS", help="path to the run table (CSV, TSV or Parquet)")
        p.add_argument("--law", default="chinchilla", help="law name (see `bayes-scaling laws`; default chinchilla)")
        p.add_argument("--x", metavar="COLUMN_ROLE", default=None,
                       help="input of a single-variable law (power_law, power_law_floor): N, D, C, U, batch_size or steps")
        for role, default in (("N", "N"), ("D", "D"), ("C", "C"), ("loss", "loss")):
            p.add_argument(f"--{role}", dest=f"col_{role}", default=default, metavar="COLUMN",
                           help=f"column holding {role} (default {default!r})")
        p.add_argument("--U", dest="col_U", default="U", metavar="COLUMN", help="column of unique tokens (data-constrained law; default 'U')")
        p.add_argument("--batch-size", dest="col_batch_size", default=None, metavar="COLUMN", help="column of batch sizes")
        p.add_argument("--steps", dest="col_steps", default=None, metavar="COLUMN", help="column of training steps")
        p.add_argument("--fix", nargs="+", default=[], metavar="NAME=VALUE",
                       help="hold parameters at values, e.g. --fix alpha=0.34; "
                            "'muennighoff_base' fixes E, A, B, alpha, beta of the data-constrained law")
        p.add_argument("--input", nargs="+", default=[], metavar="NAME=VALUE",
                       help="fixed values of the law's other inputs for the forecast, e.g. --input U=25e9")
        p.add_argument("--family", nargs="+", default=None, metavar="COLUMN",
                       help="fit each family (rows sharing these columns' values) separately, in one batch")
        p.add_argument("--family-out", metavar="DIR", default=None,
                       help="with --family: write DIR/families.csv, DIR/forecast.csv, DIR/families.json and resumable chunks")
        p.add_argument("--resume", action="store_true", help="with --family-out: continue an interrupted job in DIR")
        p.add_argument("--chunk-size", type=int, default=100, help="with --family: families per saved chunk (default 100)")
        add_sep(p)
        add_progress_opts(p)

    def add_sampler_opts(p):
        p.add_argument("--prob", type=float, default=0.9, help="credible interval mass (equal-tailed; default 0.9)")
        p.add_argument("--likelihood", choices=("student_t", "gaussian", "huber"), default="student_t",
                       help="noise on log loss (default student_t, nu=4)")
        p.add_argument("--nu", default=None, metavar="NU",
                       help="Student-t degrees of freedom (default 4), or 'learn' to sample them")
        p.add_argument("--k", type=float, default=None, metavar="K",
                       help="with --likelihood huber: the Huber density's threshold in sigmas (default 1.345)")
        p.add_argument("--chains", type=int, default=4, help="NUTS chains (default 4)")
        p.add_argument("--warmup", type=int, default=1000, help="warm-up iterations per chain (default 1000)")
        p.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
        p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical draws")
        p.add_argument("--target-accept", type=float, default=0.9, help="NUTS target acceptance (default 0.9)")
        p.add_argument("--noise", choices=("auto", "constant", "compute"), default="auto",
                       help="noise scale on log loss: constant, or log-linear in compute; auto (default): compute when C is known")

    fit = sub.add_parser("fit", help="fit a law to a run table and print a forecast (point estimate)")
    add_table_opts(fit)
    fit.add_argument("--objective", choices=("huber", "student_t", "gaussian"), default="huber",
                     help="huber: the Chinchilla/Epoch protocol (default); student_t/gaussian: maximum likelihood")
    fit.add_argument("--map", action="store_true", help="add the law's priors (MAP); needs --objective student_t or gaussian")
    fit.add_argument("--delta", type=_positive_float, default=1e-3, help="Huber delta (default 1e-3)")
    fit.add_argument("--protocol", choices=("grid", "warm"), default="grid",
                     help="with --family: grid (default) fits every family from the full start grid, as alone; warm fits 8 "
                          "pilot families so and starts the others from the pilots' optima (tens of times faster for "
                          "many similar families; 8 random families are checked against the grid)")
    add_forecast_opts(fit)

    sample = sub.add_parser("sample", help="sample the posterior (NUTS) and print forecasts with credible intervals")
    add_table_opts(sample)
    add_sampler_opts(sample)
    sample.add_argument("--budgets", nargs="+", type=_positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                        help="training compute budgets in FLOPs (default: 1e21 5.76e23 1e25)")
    sample.add_argument("--out", metavar="DIR", help="write DIR/posterior.nc (NetCDF) and DIR/summary.json")
    sample.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout, then nothing else there)")
    sample.add_argument("--force", action="store_true", help="overwrite existing files in --out and the --json file")

    report = sub.add_parser("report", help="sample the posterior and write an HTML report with figures, a Markdown summary and JSON")
    add_table_opts(report)
    add_sampler_opts(report)
    report.add_argument("--budgets", nargs="+", type=_positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                        help="training compute budgets in FLOPs (default: 1e21 5.76e23 1e25)")
    report.add_argument("--out", metavar="DIR", required=True,
                        help="write DIR/report.html, report.md, report.json, figures/*.png and posterior.nc; with --family "
                             "DIR/index.html (.md, .json) over the families and DIR/families/NNN-name/ with each one's report")
    report.add_argument("--posterior", metavar="PATH", default=None,
                        help="use a posterior saved by `sample --out` (posterior.nc) instead of sampling again")
    report.add_argument("--title", default=None, help="the report's title")
    report.add_argument("--force", action="store_true", help="overwrite existing files in --out")

    demo = sub.add_parser("demo", help="Chinchilla on the bundled 240 runs: point fit, then posterior with credible intervals")
    add_forecast_opts(demo)
    add_sampler_opts(demo)
    demo.add_argument("--point-only", action="store_true", help="skip the posterior (point fit and forecast only)")
    demo.add_argument("--out", metavar="DIR", default=None,
                      help="also write the report (report.html with figures, report.md, report.json) and posterior.nc to DIR")
    add_progress_opts(demo)

    sub.add_parser("laws", help="list the built-in laws with formulas and parameters")

    def add_small_sampler_opts(p):
        p.add_argument("--prob", type=float, default=0.9, help="credible interval mass (equal-tailed; default 0.9)")
        p.add_argument("--chains", type=int, default=4, help="NUTS chains (default 4)")
        p.add_argument("--warmup", type=int, default=500, help="warm-up iterations per chain (default 500)")
        p.add_argument("--draws", type=int, default=500, help="draws per chain (default 500)")
        p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical draws")
        p.add_argument("--target-accept", type=float, default=0.9, help="NUTS target acceptance (default 0.9)")
        p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout, then nothing else there)")
        p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
        add_sep(p)
        add_progress_opts(p)

    bs = sub.add_parser("batch-size", help="critical batch size per target/model size from a batch-size sweep, with intervals")
    bs.add_argument("sweep", metavar="SWEEP", help="CSV: one row per (target, batch size) with the steps to reach the target")
    bs.add_argument("--batch", default="batch_size", metavar="COLUMN", help="column of batch sizes (default 'batch_size')")
    bs.add_argument("--steps", default="steps", metavar="COLUMN", help="column of steps to the target (default 'steps')")
    bs.add_argument("--group", default=None, metavar="COLUMN", help="column naming the target or model size of each row")
    bs.add_argument("--reference-batch", type=_positive_float, default=256.0, help="B0 of Zhang et al.'s definition (default 256)")
    bs.add_argument("--overhead", type=_positive_float, default=0.2, help="overhead of Zhang et al.'s definition (default 0.2)")
    bs.add_argument("--law-by", default=None, metavar="COLUMN",
                    help="fit B_crit = k X^p across groups, X a column constant within each group (e.g. N, D, the target loss)")
    bs.add_argument("--definition", choices=("zhang", "mccandlish"), default="zhang", help="B_crit used by --law-by (default zhang)")
    bs.add_argument("--forecast", nargs="+", type=_positive_float, default=[], metavar="X", help="with --law-by: forecast B_crit at these X")
    add_small_sampler_opts(bs)

    iso = sub.add_parser("isoflop", help="IsoFLOP (Approach 2) exponents a, b and N_opt/D_opt forecasts with intervals")
    iso.add_argument("runs", metavar="RUNS", help="CSV: one row per run with its budget C, size N, loss (and tokens D)")
    for role, default in (("C", "C"), ("N", "N"), ("D", "D"), ("loss", "loss")):
        iso.add_argument(f"--{role}", dest=f"col_{role}", default=default, metavar="COLUMN", help=f"column holding {role} (default {default!r})")
    iso.add_argument("--by", nargs="+", default=None, metavar="COLUMN",
                     help="one analysis per configuration (rows sharing these columns), all in one batched call")
    iso.add_argument("--window", default="0.05", metavar="W",
                     help="runs within (1+W) x each budget's best loss enter its parabola; 'all' for every run (default 0.05)")
    iso.add_argument("--scatter", action="store_true", help="let the vertices scatter about the law (wider intervals)")
    iso.add_argument("--budgets", nargs="+", type=_positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                     help="budgets to forecast N_opt, D_opt at")
    iso.add_argument("--envelope", action="store_true", help="also the envelope method (Approach 1) on the same runs")
    add_small_sampler_opts(iso)

    hp = sub.add_parser("hyperparams", help="optimal-hyperparameter law (e.g. lr_opt = k C^p) from a sweep table, with intervals")
    hp.add_argument("sweep", metavar="SWEEP", help="CSV, TSV or Parquet: one row per run with its budget, hyperparameter value and loss")
    hp.add_argument("--target", required=True, metavar="COLUMN", help="the hyperparameter whose optimum the law gives (e.g. lr, batch_size)")
    hp.add_argument("--by", nargs="+", default=["C"], metavar="COLUMN",
                    help="the law's inputs, one budget per distinct combination: C (DeepSeek form, default) or N D (Step Law form)")
    hp.add_argument("--loss", default="loss", metavar="COLUMN", help="column of final losses (default 'loss')")
    hp.add_argument("--select", choices=("optimum", "near_optimal"), default="optimum",
                    help="fit to each budget's best run (default) or to every run within --tol of it (DeepSeek LLM)")
    hp.add_argument("--tol", type=_positive_float, default=0.0025, help="with --select near_optimal: relative loss tolerance (default 0.0025)")
    hp.add_argument("--at", nargs="+", default=[], metavar="X",
                    help="forecast the optimum here: a value of the one input (1e23), or NAME=VALUE,NAME=VALUE for several (N=7e10,D=1.4e12)")
    add_small_sampler_opts(hp)
    return ap


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def _pairs(items, what: str) -> dict[str, float]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{what} {item!r}: expected NAME=VALUE")
        try:
            out[name] = float(value)
        except ValueError:
            raise UsageError(f"{what} {item!r}: {value!r} is not a number") from None
    return out


DIGITS = 4  # significant digits of every number in a printed table


def fmt_number(v) -> str:
    """A number with :data:`DIGITS` significant digits (``-`` for a missing one)."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "-" if v != v else f"{v:.{DIGITS}g}"


def _columns(head, rows) -> str:
    """Right-aligned columns under ``head``."""
    width = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, width))
    return "\n".join([line(head)] + [line(r) for r in rows])


def _fmt_table(df) -> str:
    """A point forecast table: every number with the same significant digits."""
    cols = [c for c in df.columns]
    head = [{"extrapolation": "C / largest run"}.get(c, c) for c in cols]
    return _columns(head, [[fmt_number(r[c]) for c in cols] for _, r in df.iterrows()])


def _with_extrapolation(table, runs):
    """The forecast table with ``extrapolation``: each budget over the largest run's compute (C, or 6 N D)."""
    cmax = _max_compute(runs)
    if table is not None and cmax:
        table = table.assign(extrapolation=table["budget"] / cmax)
    return table


def _max_compute(runs) -> float | None:
    from .posterior import max_compute

    return max_compute({k: getattr(runs, k) for k in ("C", "N", "D") if getattr(runs, k, None) is not None})


def _run_fit(runs, law, args, *, objective="huber", prior=False, delta=1e-3, inputs=None, title="", write=True):
    """Point fit, forecast and warnings, printed. Returns the exit code (with ``write=False``: the code and the
    JSON-able result, for the caller to write)."""
    from .checks import extrapolation_warnings, fit_warnings
    from .derived import forecast_table
    from .fitting import fit_point

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
    _write_json(result, args)
    return code


def _write_json(result, args) -> None:
    """The results as JSON (NaN and inf as null) to ``--json PATH``, or to stdout with ``--json -`` (every other
    line of output then goes to stderr, so that stdout is pure JSON)."""
    if not getattr(args, "json", None):
        return
    from .report import json_safe

    text = json.dumps(json_safe(result), indent=2, allow_nan=False, default=str)
    if args.json == "-":
        print(text, file=getattr(args, "json_stream", None) or sys.stdout)
        return
    _check_json_target(args)
    try:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    except OSError as err:
        raise UsageError(f"--json {args.json}: cannot write: {err.strerror or err}") from None
    print(f"wrote {args.json}")


def _check_writable(path: str, option: str, *, folder: bool = False) -> None:
    """Refuse, before any work, an output that cannot be written: one line naming the option. ``folder``: the
    path is a folder to create or write in; else a file. The nearest existing folder above is probed by creating
    (and removing) a temporary file in it, which also catches read-only file systems."""
    import tempfile

    target = os.path.abspath(path)
    if folder and os.path.exists(target) and not os.path.isdir(target):
        raise UsageError(f"{option} {path}: exists and is not a folder")
    if not folder and os.path.isdir(target):
        raise UsageError(f"{option} {path}: is a folder; give a file name")
    above = target if folder else os.path.dirname(target)
    if not folder and not os.path.isdir(above):
        raise UsageError(f"{option} {path}: the folder {above} does not exist" if not os.path.exists(above)
                         else f"{option} {path}: {above} is a file, not a folder")
    while not os.path.exists(above):
        above = os.path.dirname(above)
    if not os.path.isdir(above):
        raise UsageError(f"{option} {path}: {above} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=above, prefix=".bayes-scaling-probe-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise UsageError(f"{option} {path}: cannot write in {above} ({err.strerror or err})") from None


def _check_json_target(args) -> None:
    """Refuse, before spending time on a fit, a --json file that exists (without --force) or cannot be written."""
    path = getattr(args, "json", None)
    if not path or path == "-":
        return
    _check_writable(path, "--json")
    if os.path.exists(path) and not args.force:
        raise UsageError(f"--json {path} exists; not overwriting it (pass --force to replace it)")


def _law_and_runs(args):
    from .data import load_runs
    from .laws import MUENNIGHOFF_BASE, get_law

    law = get_law(args.law, **({"x": args.x} if args.x else {}))
    fix = {}
    for item in args.fix:
        if item == "muennighoff_base":
            fix.update(MUENNIGHOFF_BASE)
        else:
            fix.update(_pairs([item], "--fix"))
    if fix:
        law = law.fix(**fix)
    inputs = _pairs(args.input, "--input")
    for k, v in inputs.items():
        if not (np.isfinite(v) and v > 0):
            raise UsageError(f"--input {k}={v:g}: must be a positive, finite number")
    unknown = [k for k in inputs if k not in law.inputs or k in ("N", "D")]
    if unknown:
        raise UsageError(f"--input {unknown[0]}: law {law.name!r} takes no fixed input of that name (its inputs: {', '.join(law.inputs)})")
    need = tuple(k for k in law.inputs if k not in ("N", "D", "C"))
    missing = [k for k in need if k not in inputs]
    if missing and "N" in law.inputs:
        raise UsageError(f"law {law.name!r}: the forecast needs a value for {missing[0]}; pass --input {missing[0]}=VALUE")
    runs = load_runs(
        args.runs,
        N=args.col_N,
        D=args.col_D,
        C=args.col_C,
        loss=args.col_loss,
        U=args.col_U,
        batch_size=args.col_batch_size,
        steps=args.col_steps,
        family=args.family,
        required=("loss",) + tuple(k for k in law.inputs if k not in ("D", "C")),  # D and C fill each other
        sep=args.sep,
    )
    return law, runs, inputs


def _cmd_fit(args) -> int:
    _check_json_target(args)
    if args.map and args.objective == "huber":
        raise UsageError("--map needs a likelihood: add --objective student_t or --objective gaussian")
    if args.family and args.strategy == "varpro":
        raise UsageError("--strategy varpro: family fits (--family) screen the law's start grid for all families at once; "
                         "drop --strategy or --family")
    law, runs, inputs = _law_and_runs(args)
    if args.strategy == "varpro" and not args.family:
        from .varpro import supports

        if not supports(law):
            raise UsageError(f"--strategy varpro: law {law.name!r} declares no free coefficients it is linear in; use --strategy grid")
    if args.family:
        return _run_families(runs, law, args, inputs, kind="fit")
    return _run_fit(runs, law, args, objective=args.objective, prior=args.map, delta=args.delta, inputs=inputs)


def _family_flags(law, params, table, runs, budgets, extra=()) -> list[str]:
    """Everything that flags one family's result: its own warnings, the forecast's, far extrapolation."""
    from .checks import extrapolation_warnings, fit_warnings

    flags = list(extra)
    if table is not None:
        flags += fit_warnings(law, params, forecast=table) + extrapolation_warnings(budgets, _max_compute(runs))
    return list(dict.fromkeys(flags))


def _family_records_fit(law, args, inputs):
    from .batch import fit_point_batch
    from .derived import forecast_table

    def work(sub):
        out = fit_point_batch(law, sub, objective=args.objective, prior=args.map, delta=args.delta, max_steps=args.max_steps,
                              protocol=args.protocol)
        if out.check and out.check["checked_worse"]:
            print(f"warning: warm protocol: {len(out.check['checked_worse'])} of {len(out.check['checked'])} checked families "
                  "found a lower minimum from the full start grid; rerun with --protocol grid", file=sys.stderr)
        records = []
        for fam, fit in out.fits.items():
            r = sub.select(sub.family == fam)
            table = _with_extrapolation(forecast_table(law, fit.params, args.budgets, inputs=inputs or None), r) if _forecastable(law) else None
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


def _forecastable(law) -> bool:
    return ("N" in law.inputs and "D" in law.inputs) or law.inputs == ("C",)


def _family_records_sample(law, args, inputs):
    from .batch import sample_posterior_batch

    def work(sub):
        out = sample_posterior_batch(law, sub, **_posterior_options(args))
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


def _print_family_table(records, law) -> None:
    """One row per family (status in a word or two), the forecasts, then each family's warnings wrapped."""
    import textwrap

    import jax
    import pandas as pd

    devs = jax.devices()
    print(f"{len(records)} families on {len(devs)} {devs[0].platform} device{'s' if len(devs) > 1 else ''}; law {law.name}: {law.formula}")
    rows = [{k: v for k, v in r.items() if k not in ("forecast", "warnings", "ok")} for r in records]
    cols = list(dict.fromkeys(k for r in rows for k in r))
    print(_columns(cols, [[fmt_number(r[c]) if isinstance(r.get(c), (int, float, np.floating)) and not isinstance(r.get(c), bool)
                           else str(r.get(c, "")) for c in cols] for r in rows]))
    fc = [dict(family=r["family"], **row) for r in records for row in r["forecast"]]
    if fc:
        print("forecast per family (C = 6 N D FLOPs; 'C / largest run': how far beyond the family's runs):")
        f = pd.DataFrame(fc)
        head = [{"extrapolation": "C / largest run"}.get(c, c) for c in f.columns]
        print(_columns(head, [[fmt_number(v) if not isinstance(v, str) else v for v in row] for row in f.itertuples(index=False)]))
    flagged = [r for r in records if r["warnings"]]
    if flagged:
        print("warnings per family:")
        for r in flagged:
            for w in r["warnings"]:
                print(textwrap.fill(w, width=110, initial_indent=f"  {r['family']}: ", subsequent_indent="      "))


def _run_families(runs, law, args, inputs, *, kind: str) -> int:
    import pandas as pd

    from .jobs import run_in_chunks

    work = (_family_records_fit if kind == "fit" else _family_records_sample)(law, args, inputs)
    if args.chunk_size < 1:
        raise UsageError("--chunk-size must be at least 1")
    if args.resume and not args.family_out:
        raise UsageError("--resume continues a job saved with --family-out DIR; give --family-out")
    if args.family_out:
        _check_writable(args.family_out, "--family-out", folder=True)
        targets = [os.path.join(args.family_out, f) for f in ("families.csv", "forecast.csv", "families.json", "job.json")]
        if any(os.path.exists(t) for t in targets) and not (args.resume or args.force):
            raise UsageError(f"--family-out {args.family_out} already holds results; pass --resume to continue that job "
                             "or --force to start it afresh")
        keys = ("objective", "map", "delta", "max_steps") if kind == "fit" else (
            "likelihood", "nu", "k", "chains", "warmup", "draws", "seed", "target_accept", "noise", "prob")
        desc = {"kind": kind, "law": law.name, "fixed": law.fixed_values, "budgets": list(args.budgets),
                "inputs": inputs, **{k: getattr(args, k) for k in keys}}
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
    _write_json({"law": law.name, "formula": law.formula, "kind": kind, "budgets": list(args.budgets),
                 "inputs": dict(inputs or {}), "families": records}, args)
    bad = [r["family"] for r in records if not r.get("ok")]
    if bad:
        skipped = sum(r["status"] == "skipped" for r in records)
        print(f"FLAGGED: {len(bad)} of {len(records)} families need attention ({skipped} skipped for too few runs; the "
              f"others did not converge, are unhealthy or have warnings): {', '.join(map(str, bad[:20]))}"
              f"{' ...' if len(bad) > 20 else ''}; exit code 1")
    return 0 if not bad else 1


def _check_noise_shape(args) -> None:
    from .noise import shape_of

    if args.nu is not None and args.nu != "learn":
        try:
            args.nu = float(args.nu)
        except ValueError:
            raise UsageError(f"--nu {args.nu}: give a positive number or 'learn'") from None
    try:
        shape_of(args.likelihood, args.nu, args.k)
    except ValueError as err:
        raise UsageError(f"--nu/--k with --likelihood {args.likelihood}: {err}") from None


def _check_sampler_args(args) -> None:
    from .sampling import check_sampler_size

    if not 0 < args.prob < 1:
        raise UsageError(f"--prob {args.prob}: must be between 0 and 1")
    for name in ("chains", "warmup", "draws"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")
    if args.draws < 4:
        raise UsageError("--draws must be at least 4 (R-hat and ESS need them)")
    if not 0 < args.target_accept < 1:
        raise UsageError("--target-accept must be between 0 and 1")
    if hasattr(args, "likelihood"):  # loss-law posteriors (sample, report, demo): the likelihood's shape
        _check_noise_shape(args)
    try:  # before any work: draws that cannot fit in memory (the runs are counted again once the table is read)
        check_sampler_size(args.chains, args.warmup, args.draws, 16)
    except ValueError as err:
        raise UsageError(f"--draws {args.draws} / --chains {args.chains}: {err}") from None


def _interval(r, c) -> str:
    return f"{fmt_number(r[c])} ({fmt_number(r[c + '_lo'])}, {fmt_number(r[c + '_hi'])})"


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
        cells = [fmt_number(r["budget"])] + [_interval(r, c) for c in cols] + [f"({fmt_number(r['L_new_lo'])}, {fmt_number(r['L_new_hi'])})"]
        rows.append(cells + ([fmt_number(r["extrapolation"])] if far else []))
    return _columns(head, rows)


def _posterior_options(args) -> dict:
    """The sampler options of ``sample``/``report``/``demo`` as the keywords of sample_posterior(_batch)."""
    return dict(likelihood=args.likelihood, nu=args.nu, k=args.k, num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains,
                seed=args.seed, target_accept=args.target_accept,
                noise_varies_with_compute={"auto": None, "constant": False, "compute": True}[args.noise])


def _sample(runs, law, args):
    from .sampling import sample_posterior

    total = args.chains * (args.warmup + args.draws)
    print(f"sampling the posterior: NUTS, {args.chains} chains x ({args.warmup} warm-up + {args.draws} draws), "
          f"{args.likelihood} noise on log loss, seed {args.seed} ({total} iterations)...", flush=True)
    t0 = time.perf_counter()
    post = sample_posterior(law, runs, **_posterior_options(args))
    return post, time.perf_counter() - t0


def _health_words(diag) -> str:
    from .diagnostics import fmt_rhat

    return (f"sampler: {diag['divergences']} divergences, max R-hat {fmt_rhat(diag['max_r_hat'])}, min ESS bulk "
            f"{_ess(diag['min_ess_bulk'])} / tail {_ess(diag['min_ess_tail'])}"
            + ("" if diag.get("sampler_ok", diag["ok"]) else "  -- NOT HEALTHY, see warnings"))


def _ess(v) -> str:
    return "-" if v is None or v != v else f"{v:.0f}"


def _run_posterior(runs, law, args, *, inputs=None, post=None, seconds=None):
    """Sample (unless ``post`` is given), print the summary, forecast and diagnostics; returns (exit code, post,
    summary): exit code 1 when the sampler is unhealthy or the data, the fit or the extrapolation is flagged."""
    from .diagnostics import fmt_rhat

    if post is None:
        post, seconds = _sample(runs, law, args)
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
                   f"  r_hat {fmt_rhat(r['r_hat'])}  ess {_ess(r['ess_bulk'])}/{_ess(r['ess_tail'])}")
    forecast = None
    if _forecastable(law):
        forecast = post.forecast(args.budgets, prob=prob, inputs=inputs or None)
        out.append(f"forecast (C = 6 N D FLOPs; medians with {pct} intervals of the mean law; 'new run': one run's loss; "
                   "'C / largest run': how far beyond the runs):")
        out.append(_fmt_interval_table(forecast, prob))
    exponent = None
    if "alpha" in post.draws and "beta" in post.draws and law.optimum is not None:
        a = post.exponent_a()
        lo, hi = np.quantile(a, [(1 - prob) / 2, (1 + prob) / 2])
        exponent = {"median": float(np.median(a)), "lo": float(lo), "hi": float(hi)}
        out.append(f"exponent a (N_opt ~ C^a): {fmt_number(exponent['median'])} ({fmt_number(lo)}, {fmt_number(hi)})")
    diag = post.diagnostics(budgets=args.budgets)
    out.append(_health_words(diag))
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
        "diagnostics": diag, "settings": post.settings, "point_fit": post.point_fit,
    }
    return (0 if diag["ok"] else 1), post, summary


def _check_out_dir(args, names=("posterior.nc", "summary.json")) -> None:
    """Refuse, before any work, an --out folder that cannot be written or holds our files (without --force)."""
    if not args.out:
        return
    _check_writable(args.out, "--out", folder=True)
    existing = [t for t in (os.path.join(args.out, f) for f in names) if os.path.exists(t)]
    if existing and not args.force:
        raise UsageError(f"--out: {existing[0]} exists; not overwriting it (pass --force to replace it)")


def _cmd_sample(args) -> int:
    _check_sampler_args(args)
    _check_json_target(args)
    _check_out_dir(args)
    law, runs, inputs = _law_and_runs(args)
    if args.family:
        if args.out:
            raise UsageError("--out writes one posterior; with --family use --family-out DIR (or report --family --out DIR)")
        return _run_families(runs, law, args, inputs, kind="sample")
    code, post, summary = _run_posterior(runs, law, args, inputs=inputs)
    if args.out:
        from .report import json_safe

        os.makedirs(args.out, exist_ok=True)
        post.save(os.path.join(args.out, "posterior.nc"), overwrite=True)
        with open(os.path.join(args.out, "summary.json"), "w") as fh:
            json.dump(json_safe(summary), fh, indent=2, allow_nan=False, default=str)
        print(f"wrote {os.path.join(args.out, 'posterior.nc')} and {os.path.join(args.out, 'summary.json')}")
    _write_json(summary, args)
    return code


def _check_report_target(out: str, force: bool, *, family: bool = False) -> None:
    """Refuse, before any sampling, an --out folder that cannot be written, or one that holds a report (or its
    posterior.nc; with ``family`` the index or any family's folder), without --force."""
    from .family_report import family_report_files
    from .report import report_files

    _check_writable(out, "--out", folder=True)
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
    from .report import write_report

    os.makedirs(args.out, exist_ok=True)
    if save_posterior:
        post.save(os.path.join(args.out, "posterior.nc"), overwrite=True)
    paths = write_report(post, args.out, runs=runs, budgets=args.budgets, prob=args.prob, data_path=data_path,
                         title=title, notes=notes, inputs=inputs or None, force=True)
    print(f"wrote the report: {paths['html']} (open it in a browser), {paths['markdown']}, {paths['json']}, "
          f"{paths['figures']}/*.png" + (f", {os.path.join(args.out, 'posterior.nc')}" if save_posterior else ""))


def _load_posterior(path: str, law, runs):
    """The posterior saved at ``path``, checked to be one of ``law`` sampled on exactly these ``runs``."""
    from .model import noise_inputs
    from .posterior import Posterior
    from .sampling import runs_sha256

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


def _cmd_report(args) -> int:
    _check_sampler_args(args)
    if args.family:
        return _family_report(args)
    _check_report_target(args.out, args.force)
    law, runs, inputs = _law_and_runs(args)
    post = _load_posterior(args.posterior, law, runs) if args.posterior else None
    code, post, _ = _run_posterior(runs, post.law if post is not None else law, args, inputs=inputs, post=post)
    _write_report(post, runs, args, inputs=inputs, title=args.title, save_posterior=not args.posterior)
    return code


def _family_report(args) -> int:
    """``report --family``: every family's posterior in one batch, an index page over them and each family's report."""
    import matplotlib

    matplotlib.use("Agg")
    from .batch import sample_posterior_batch
    from .family_report import write_family_report

    if args.posterior:
        raise UsageError("--posterior reuses one saved posterior; with --family every family is sampled (drop one of them)")
    if args.family_out or args.resume:
        raise UsageError("report --family writes everything into --out; --family-out and --resume belong to fit and sample")
    out = args.out
    _check_report_target(out, args.force, family=True)
    law, runs, inputs = _law_and_runs(args)
    batch = sample_posterior_batch(law, runs, **_posterior_options(args))
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


def _cmd_demo(args) -> int:
    from .datasets import CHINCHILLA_CITATION, chinchilla_path, load_chinchilla
    from .laws import get_law

    _check_sampler_args(args)
    _check_json_target(args)
    if args.out:
        if args.point_only:
            raise UsageError("--out writes the posterior's report; drop --point-only")
        _check_report_target(args.out, args.force)
    runs = load_chinchilla()
    title = f"demo: Chinchilla law on the bundled runs ({CHINCHILLA_CITATION})"
    code, fit_result = _run_fit(runs, get_law("chinchilla"), args, title=title, write=False)
    if args.point_only:
        _write_json(fit_result, args)
        return code
    print()
    post_code, post, summary = _run_posterior(runs, get_law("chinchilla"), args)
    if args.out:
        _write_report(post, runs, args, data_path=chinchilla_path(),
                      title="Chinchilla law on the bundled 240 runs: Bayesian forecast",
                      notes=[f"data: {CHINCHILLA_CITATION}",
                             "standard subset: the 5 highest-loss runs of the 245 dropped (Epoch's default)"])
    _write_json({"point_fit": fit_result, "posterior": summary}, args)
    return max(code, post_code)


def _cmd_laws(args) -> int:
    from .laws import list_laws

    print("\n\n".join(law.describe() for law in list_laws()))
    return 0


def _check_small_sampler_args(args) -> None:
    _check_sampler_args(args)
    _check_json_target(args)


def _iv(q) -> str:
    return f"{fmt_number(q['median'])} ({fmt_number(q['lo'])}, {fmt_number(q['hi'])})"


def _flag_line(out: list[str], flagged: bool) -> None:
    if flagged:
        out.append("FLAGGED: a sampler is not healthy or a forecast is far beyond the data (warnings above); exit code 1")


def _far(values, largest: float, what: str) -> list[str]:
    """Warnings for forecasts at 100x the data's largest value or more (and the factors, for the tables)."""
    from .checks import FAR_EXTRAPOLATION

    return [f"forecast at {what} = {v:.4g} is {v / largest:,.0f}x the largest in the data ({largest:.4g}): it rests on the law's "
            "form holding over that range; treat its interval as a lower bound on the uncertainty"
            for v in np.atleast_1d(values) if v / largest >= FAR_EXTRAPOLATION]


def _cmd_batch_size(args) -> int:
    from .analyses.batch_size import critical_batch_size, forecast_critical_batch, load_batch_sweep
    from .draws import quantiles

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
    rows = [[str(r["group"]), _interval(r, "B_crit"), _interval(r, "cbs_zhang"), _interval(r, "S_min")] for _, r in table.iterrows()]
    out.append(_columns(head, rows))
    diag = post.diagnostics()
    out.append(_health_words(diag))
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
        out.append("  " + _health_words(ld))
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
    _write_json(result, args)
    return 0 if healthy else 1


def _cmd_isoflop(args) -> int:
    from .analyses.isoflop import envelope, isoflop, isoflop_batch
    from .draws import quantiles

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
        rows = [[fmt_number(r["budget"]), _interval(r, "N_opt"), _interval(r, "D_opt"), fmt_number(r["extrapolation"])]
                for _, r in fc.iterrows()]
        out.append("  " + _columns(["budget", f"N_opt [{pct}]", f"D_opt [{pct}]", "C / largest budget"], rows).replace("\n", "\n  "))
        out.append("  " + _health_words(diag))
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
        out.append("  " + _health_words(ed))
        out.extend(f"  warning: {w}" for w in env.warnings)
        result["envelope"] = {"a": qa, "b": qb, "forecast": env.forecast(args.budgets, prob=prob).to_dict(orient="records"),
                              "diagnostics": ed}
    _flag_line(out, not healthy)
    print("\n".join(out))
    _write_json(result, args)
    return 0 if healthy else 1


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
                point[name] = _positive_float(text.strip())
            except argparse.ArgumentTypeError as err:
                raise UsageError(f"--at {item}: {name}: {err}") from None
        points.append(point)
    return points


def _cmd_hyperparams(args) -> int:
    from .analyses.hyperparams import hyperparam_law

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
    out.append(_health_words(diag))
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
    _write_json(result, args)
    return 0 if ok else 1


def _cpu_devices(jax) -> None:
    """One CPU device per core (at most 16), so that batches of families (``--family``, ``batch-size``,
    ``isoflop``) are sharded over every core; single fits still run on one. Only before JAX has run anything,
    and not when ``XLA_FLAGS`` already sets a device count; ``BAYES_SCALING_CPU_DEVICES=n`` chooses n."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    wanted = os.environ.get("BAYES_SCALING_CPU_DEVICES", "").strip()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        n = int(wanted) if wanted else min(cores, 16)
    except ValueError:
        n = 0
    if n < 1:
        raise UsageError(f"BAYES_SCALING_CPU_DEVICES must be a whole number of devices >= 1, not {wanted!r}")
    if n > 1:
        try:
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:  # JAX has already run in this process (main called from a program): keep its devices
            pass


def _one_line(err) -> str:
    return " ".join(str(err).split())


def main(argv=None) -> int:
    args = _parser().parse_args(argv)  # argparse itself exits 2 with a usage line on bad options
    import jax

    jax.config.update("jax_enable_x64", True)
    try:
        _cpu_devices(jax)
    except UsageError as err:
        print(f"bayes-scaling: error: {err}", file=sys.stderr)
        return 2
    from . import progress
    from .compile_cache import enable_compilation_cache

    # progress on a terminal by default (--quiet: never; --progress: also when stderr is not a terminal)
    args.show_progress = not getattr(args, "quiet", False) and (getattr(args, "progress", False) or sys.stderr.isatty())
    command = {"fit": _cmd_fit, "sample": _cmd_sample, "report": _cmd_report, "demo": _cmd_demo, "laws": _cmd_laws,
               "batch-size": _cmd_batch_size, "isoflop": _cmd_isoflop, "hyperparams": _cmd_hyperparams}[args.command]
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("default")
        old_format = warnings.formatwarning
        warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
        stack.callback(setattr, warnings, "formatwarning", old_format)
        if getattr(args, "json", None) == "-":  # stdout carries the JSON alone; everything else goes to stderr
            args.json_stream = sys.stdout
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        if args.show_progress:
            stack.enter_context(progress.reporting())
        enable_compilation_cache()  # compiled programs persist between runs ($BAYES_SCALING_CACHE_DIR; 'off' to disable)
        try:
            return command(args)
        except (UsageError, ValueError, OSError) as err:
            print(f"bayes-scaling: error: {_one_line(err)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("bayes-scaling: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

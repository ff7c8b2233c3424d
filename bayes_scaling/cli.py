"""The ``bayes-scaling`` command.

    bayes-scaling demo                               fit Chinchilla to the bundled 240 runs, forecast
    bayes-scaling fit RUNS --law chinchilla --budgets 1e21 1e23 1e25 [--json out.json]
    bayes-scaling laws                               list the laws and their formulas

Exit codes: 0 success; 1 the fit ran but did not converge (results are printed, flagged); 2 bad input
(a one-line message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

__all__ = ["main"]

DEFAULT_BUDGETS = (1e21, 5.76e23, 1e25)


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="bayes-scaling",
        description="Fit scaling laws to training runs and forecast compute-optimal models.",
    )
    sub = ap.add_subparsers(dest="command", required=True, metavar="{fit,demo,laws}")

    def add_forecast_opts(p):
        p.add_argument("--budgets", nargs="+", type=_positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                       help="training compute budgets in FLOPs (default: 1e21 5.76e23 1e25)")
        p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-' for stdout)")
        p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
        p.add_argument("--max-steps", type=int, default=1000, help="L-BFGS steps per start (default 1000)")

    fit = sub.add_parser("fit", help="fit a law to a run table (CSV, TSV or Parquet) and print a forecast")
    fit.add_argument("runs", metavar="RUNS", help="path to the run table")
    fit.add_argument("--law", default="chinchilla", help="law name (see `bayes-scaling laws`; default chinchilla)")
    fit.add_argument("--x", metavar="COLUMN_ROLE", default=None,
                     help="input of a single-variable law (power_law, power_law_floor): N, D, C, U, batch_size or steps")
    for role, default in (("N", "N"), ("D", "D"), ("C", "C"), ("loss", "loss")):
        fit.add_argument(f"--{role}", dest=f"col_{role}", default=default, metavar="COLUMN",
                         help=f"column holding {role} (default {default!r})")
    fit.add_argument("--U", dest="col_U", default="U", metavar="COLUMN", help="column of unique tokens (data-constrained law; default 'U')")
    fit.add_argument("--batch-size", dest="col_batch_size", default=None, metavar="COLUMN", help="column of batch sizes")
    fit.add_argument("--steps", dest="col_steps", default=None, metavar="COLUMN", help="column of training steps")
    fit.add_argument("--objective", choices=("huber", "student_t", "gaussian"), default="huber",
                     help="huber: the Chinchilla/Epoch protocol (default); student_t/gaussian: maximum likelihood")
    fit.add_argument("--map", action="store_true", help="add the law's priors (MAP); needs --objective student_t or gaussian")
    fit.add_argument("--delta", type=_positive_float, default=1e-3, help="Huber delta (default 1e-3)")
    fit.add_argument("--fix", nargs="+", default=[], metavar="NAME=VALUE",
                     help="hold parameters at values, e.g. --fix alpha=0.34; 'muennighoff_base' fixes E, A, B, alpha, beta of the data-constrained law")
    fit.add_argument("--input", nargs="+", default=[], metavar="NAME=VALUE",
                     help="fixed values of the law's other inputs for the forecast, e.g. --input U=25e9")
    add_forecast_opts(fit)

    demo = sub.add_parser("demo", help="fit Chinchilla to the bundled 240 runs (Epoch AI digitization) and forecast")
    add_forecast_opts(demo)

    sub.add_parser("laws", help="list the built-in laws with formulas and parameters")
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


def _fmt_table(df) -> str:
    def fmt(col, v):
        return f"{v:.4f}" if col == "L*" else (f"{v:.1f}" if col == "D/N" else f"{v:.3e}")

    cols = list(df.columns)
    rows = [[fmt(c, r[c]) for c in cols] for _, r in df.iterrows()]
    width = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(s.rjust(w) for s, w in zip(cells, width))
    return "\n".join([line(cols)] + [line(r) for r in rows])


def _run_fit(runs, law, args, *, objective="huber", prior=False, delta=1e-3, inputs=None, title=""):
    from .derived import forecast_table
    from .fitting import fit_point

    t0 = time.perf_counter()
    fit = fit_point(law, runs, objective=objective, prior=prior, delta=delta, max_steps=args.max_steps)
    seconds = time.perf_counter() - t0
    table = None
    notes = []
    if "N" in law.inputs and "D" in law.inputs or law.inputs == ("C",):
        table = forecast_table(law, fit.params, args.budgets, inputs=inputs or None)
    else:
        notes.append(f"law {law.name!r} has inputs {law.inputs}: no compute forecast (needs N and D, or C)")

    out = []
    if title:
        out.append(title)
    out.append(runs.describe())
    out.append(f"law: {law.name}: {law.formula}")
    if fit.num_polished < fit.num_starts:
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
        out.append(f"forecast ({conv}{extra}):")
        out.append(_fmt_table(table))
    out.extend(f"note: {n}" for n in notes)
    if not fit.converged:
        out.append(f"WARNING: the fit did not converge ({fit.status}); do not trust these numbers. "
                   "Try --max-steps larger, fewer free parameters (--fix), or check the data.")
    print("\n".join(out))

    result = fit.to_dict()
    result["seconds"] = seconds
    result["inputs"] = dict(inputs or {})
    result["forecast"] = None if table is None else table.to_dict(orient="records")
    result["notes"] = list(result["notes"]) + notes
    _write_json(result, args)
    return 0 if fit.converged else 1


def _write_json(result, args) -> None:
    if not args.json:
        return
    text = json.dumps(result, indent=2, allow_nan=True)
    if args.json == "-":
        print(text)
        return
    if os.path.exists(args.json) and not args.force:
        raise UsageError(f"{args.json} exists; not overwriting it (pass --force to replace it)")
    try:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    except OSError as err:
        raise UsageError(f"{args.json}: cannot write: {err.strerror or err}") from None
    print(f"wrote {args.json}")


def _check_json_target(args) -> None:
    # refuse before spending time on a fit
    if getattr(args, "json", None) and args.json != "-" and os.path.exists(args.json) and not args.force:
        raise UsageError(f"{args.json} exists; not overwriting it (pass --force to replace it)")


def _cmd_fit(args) -> int:
    from .data import load_runs
    from .laws import MUENNIGHOFF_BASE, get_law

    _check_json_target(args)
    if args.map and args.objective == "huber":
        raise UsageError("--map needs a likelihood: add --objective student_t or --objective gaussian")
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
        required=("loss",) + tuple(k for k in law.inputs if k not in ("D", "C")),  # D and C fill each other
    )
    return _run_fit(runs, law, args, objective=args.objective, prior=args.map, delta=args.delta, inputs=inputs)


def _cmd_demo(args) -> int:
    from .datasets import CHINCHILLA_CITATION, load_chinchilla
    from .laws import get_law

    _check_json_target(args)
    runs = load_chinchilla()
    title = f"demo: Chinchilla law on the bundled runs ({CHINCHILLA_CITATION})"
    return _run_fit(runs, get_law("chinchilla"), args, title=title)


def _cmd_laws(args) -> int:
    from .laws import list_laws

    print("\n\n".join(law.describe() for law in list_laws()))
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)  # argparse itself exits 2 with a usage line on bad options
    import jax

    jax.config.update("jax_enable_x64", True)
    warnings.simplefilter("default")
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return {"fit": _cmd_fit, "demo": _cmd_demo, "laws": _cmd_laws}[args.command](args)
    except (UsageError, ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        print(f"bayes-scaling: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bayes-scaling: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

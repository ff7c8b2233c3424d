"""The ``bayes-scaling`` command.

    bayes-scaling demo [--point-only] [--out DIR]    Chinchilla on the bundled 240 runs: fit, posterior
                                                     (--out: also the HTML/Markdown/JSON report in DIR)
    bayes-scaling fit RUNS --law chinchilla --budgets 1e21 1e23 1e25 [--json out.json]
    bayes-scaling sample RUNS --law chinchilla --budgets 1e21 1e23 --prob 0.9 --out DIR
    bayes-scaling report RUNS --law chinchilla --out DIR [--posterior post.nc]
                                                     posterior, then DIR/report.html, report.md, report.json
    bayes-scaling laws                               list the laws and their formulas
    bayes-scaling backtest RUNS --law chinchilla [--cuts 1e20 1e21 | --levels 6 7] [--by C] [--out DIR]
                                                     fit on runs up to each cut, score forecasts of the runs beyond
    bayes-scaling batch-size SWEEP.csv --batch B --steps S --group model_size [--law-by N --forecast 3e9]
    bayes-scaling isoflop RUNS --C flops --N n --D t [--by COL ...] [--budgets 1e21 1e23] [--envelope]
    bayes-scaling hyperparams SWEEP.csv --target lr --by C [--select near_optimal] [--at 1e22 1e23]
    bayes-scaling plan RUNS|--posterior post.nc --plan 8Bx15T 70Bx1.4T [--target-loss 2.0] [--dollars 1e7]
                  [--inference-tokens 1e13] [--accelerator H100 --mfu 0.4 --price 2 --count 1024]
                                                     plans with intervals: loss, inference-aware optimum, cost
    bayes-scaling next-run RUNS|--posterior post.nc --target N_opt@1e24 --candidates grid.csv [--budget 1e20] [--batch-runs 5]
                                                     which small runs to train next, per FLOP

Exit codes: 0 success; 1 the fit did not converge or the sampler is unhealthy (divergences or R-hat
> 1.01; results are printed, flagged); 2 bad input (a one-line message on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings

from ..defaults import BUDGETS as DEFAULT_BUDGETS
from ..tables import DIGITS as DIGITS
from ..tables import fmt_number as fmt_number
from .backtest import add_backtest_command, cmd_backtest
from .common import UsageError, positive_float
from .fit import cmd_fit, cmd_laws
from .hardware import add_hardware_opts
from .next_run import add_next_run_command, cmd_next_run
from .plan import add_plan_command, cmd_plan
from .posterior import cmd_demo, cmd_report, cmd_sample
from .sweeps import cmd_batch_size, cmd_hyperparams, cmd_isoflop

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="bayes-scaling",
        description="Fit scaling laws to training runs and forecast compute-optimal models.",
    )
    sub = ap.add_subparsers(dest="command", required=True,
                            metavar="{fit,sample,report,demo,laws,backtest,plan,next-run,batch-size,isoflop,hyperparams}")
    _add_loss_law_commands(sub)
    add_backtest_command(sub, _add_table_opts, _add_sampler_opts)
    add_plan_command(sub, _add_table_opts, _add_sampler_opts)
    add_next_run_command(sub, _add_table_opts, _add_sampler_opts)
    _add_sweep_commands(sub)
    return ap


def _add_loss_law_commands(sub) -> None:
    """fit, sample, report, demo and laws: a loss law on a run table (demo: on the bundled Chinchilla runs)."""
    fit = sub.add_parser("fit", help="fit a law to a run table and print a forecast (point estimate)")
    _add_table_opts(fit)
    fit.add_argument("--objective", choices=("huber_loss", "student_t", "gaussian", "huber_density"), default="huber_loss",
                     help="huber_loss: the Chinchilla/Epoch protocol (default); student_t/gaussian/huber_density: maximum "
                          "likelihood (with --map: the posterior's MAP)")
    fit.add_argument("--map", action="store_true", help="add the law's priors (MAP); needs a likelihood --objective")
    fit.add_argument("--delta", type=positive_float, default=1e-3, help="Huber delta (default 1e-3)")
    fit.add_argument("--protocol", choices=("grid", "warm"), default="grid",
                     help="with --family: grid (default) fits every family from the full start grid, as alone; warm fits 8 "
                          "pilot families so and starts the others from the pilots' optima (tens of times faster for "
                          "many similar families; 8 random families are checked against the grid)")
    _add_forecast_opts(fit)

    sample = sub.add_parser("sample", help="sample the posterior (NUTS) and print forecasts with credible intervals")
    _add_table_opts(sample)
    _add_sampler_opts(sample)
    sample.add_argument("--budgets", nargs="+", type=positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                        help="training compute budgets in FLOPs (default: 1e21 5.76e23 1e25)")
    sample.add_argument("--out", metavar="DIR", help="write DIR/posterior.nc (NetCDF) and DIR/summary.json")
    sample.add_argument("--laws", default=None, metavar="auto|A,B,...",
                        help="stack several laws (PSIS-LOO stacking; 'auto': Chinchilla, Chinchilla with alpha = beta, Kaplan, "
                             "and the data-constrained law when U is known); the forecast is their weighted mixture")
    sample.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout, then nothing else there)")
    sample.add_argument("--force", action="store_true", help="overwrite existing files in --out and the --json file")

    report = sub.add_parser("report", help="sample the posterior and write an HTML report with figures, a Markdown summary and JSON")
    _add_table_opts(report)
    _add_sampler_opts(report)
    report.add_argument("--budgets", nargs="+", type=positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                        help="training compute budgets in FLOPs (default: 1e21 5.76e23 1e25)")
    report.add_argument("--out", metavar="DIR", required=True,
                        help="write DIR/report.html, report.md, report.json, figures/*.png and posterior.nc; with --family "
                             "DIR/index.html (.md, .json) over the families and DIR/families/NNN-name/ with each one's report")
    report.add_argument("--posterior", metavar="PATH", default=None,
                        help="use a posterior saved by `sample --out` (posterior.nc) instead of sampling again")
    report.add_argument("--title", default=None, help="the report's title")
    report.add_argument("--backtest", action="store_true",
                        help="also backtest the law on these runs (default cuts) and add its section and calibration figure")
    report.add_argument("--force", action="store_true", help="overwrite existing files in --out")
    report.add_argument("--plan", nargs="+", action="extend", default=[], metavar="[NAME=]NxD",
                        help="also each plan's loss and cost in the report (e.g. 8Bx15T 70Bx1.4T); see `plan`")
    add_hardware_opts(report)

    demo = sub.add_parser("demo", help="Chinchilla on the bundled 240 runs: point fit, then posterior with credible intervals")
    _add_forecast_opts(demo)
    _add_sampler_opts(demo)
    demo.add_argument("--point-only", action="store_true", help="skip the posterior (point fit and forecast only)")
    demo.add_argument("--out", metavar="DIR", default=None,
                      help="also write the report (report.html with figures, report.md, report.json) and posterior.nc to DIR")
    _add_progress_opts(demo)

    sub.add_parser("laws", help="list the built-in laws with formulas and parameters")


def _add_sweep_commands(sub) -> None:
    """batch-size, isoflop and hyperparams: the analyses of sweep tables."""
    bs = sub.add_parser("batch-size", help="critical batch size per target/model size from a batch-size sweep, with intervals")
    bs.add_argument("sweep", metavar="SWEEP", help="CSV: one row per (target, batch size) with the steps to reach the target")
    bs.add_argument("--batch", default="batch_size", metavar="COLUMN", help="column of batch sizes (default 'batch_size')")
    bs.add_argument("--steps", default="steps", metavar="COLUMN", help="column of steps to the target (default 'steps')")
    bs.add_argument("--group", default=None, metavar="COLUMN", help="column naming the target or model size of each row")
    bs.add_argument("--reference-batch", type=positive_float, default=256.0, help="B0 of Zhang et al.'s definition (default 256)")
    bs.add_argument("--overhead", type=positive_float, default=0.2, help="overhead of Zhang et al.'s definition (default 0.2)")
    bs.add_argument("--law-by", default=None, metavar="COLUMN",
                    help="fit B_crit = k X^p across groups, X a column constant within each group (e.g. N, D, the target loss)")
    bs.add_argument("--definition", choices=("zhang", "mccandlish"), default="zhang", help="B_crit used by --law-by (default zhang)")
    bs.add_argument("--forecast", nargs="+", type=positive_float, default=[], metavar="X", help="with --law-by: forecast B_crit at these X")
    _add_small_sampler_opts(bs)

    iso = sub.add_parser("isoflop", help="IsoFLOP (Approach 2) exponents a, b and N_opt/D_opt forecasts with intervals")
    iso.add_argument("runs", metavar="RUNS", help="CSV: one row per run with its budget C, size N, loss (and tokens D)")
    for role, default in (("C", "C"), ("N", "N"), ("D", "D"), ("loss", "loss")):
        iso.add_argument(f"--{role}", dest=f"col_{role}", default=default, metavar="COLUMN", help=f"column holding {role} (default {default!r})")
    iso.add_argument("--by", nargs="+", default=None, metavar="COLUMN",
                     help="one analysis per configuration (rows sharing these columns), all in one batched call")
    iso.add_argument("--window", default="0.05", metavar="W",
                     help="runs within (1+W) x each budget's best loss enter its parabola; 'all' for every run (default 0.05)")
    iso.add_argument("--scatter", action="store_true", help="let the vertices scatter about the law (wider intervals)")
    iso.add_argument("--budgets", nargs="+", type=positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                     help="budgets to forecast N_opt, D_opt at")
    iso.add_argument("--envelope", action="store_true", help="also the envelope method (Approach 1) on the same runs")
    _add_small_sampler_opts(iso)

    hp = sub.add_parser("hyperparams", help="optimal-hyperparameter law (e.g. lr_opt = k C^p) from a sweep table, with intervals")
    hp.add_argument("sweep", metavar="SWEEP", help="CSV, TSV or Parquet: one row per run with its budget, hyperparameter value and loss")
    hp.add_argument("--target", required=True, metavar="COLUMN", help="the hyperparameter whose optimum the law gives (e.g. lr, batch_size)")
    hp.add_argument("--by", nargs="+", default=["C"], metavar="COLUMN",
                    help="the law's inputs, one budget per distinct combination: C (DeepSeek form, default) or N D (Step Law form)")
    hp.add_argument("--loss", default="loss", metavar="COLUMN", help="column of final losses (default 'loss')")
    hp.add_argument("--select", choices=("optimum", "near_optimal"), default="optimum",
                    help="fit to each budget's best run (default) or to every run within --tol of it (DeepSeek LLM)")
    hp.add_argument("--tol", type=positive_float, default=0.0025, help="with --select near_optimal: relative loss tolerance (default 0.0025)")
    hp.add_argument("--at", nargs="+", default=[], metavar="X",
                    help="forecast the optimum here: a value of the one input (1e23), or NAME=VALUE,NAME=VALUE for several (N=7e10,D=1.4e12)")
    _add_small_sampler_opts(hp)


def _add_forecast_opts(p):
    p.add_argument("--budgets", nargs="+", type=positive_float, default=list(DEFAULT_BUDGETS), metavar="C",
                   help="training compute budgets in FLOPs (default: 1e21 5.76e23 1e25)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout, then nothing else there)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.add_argument("--max-steps", type=int, default=1000, help="L-BFGS steps per start (default 1000)")
    p.add_argument("--strategy", choices=("auto", "varpro", "grid"), default="auto",
                   help="where L-BFGS starts: 'varpro' solves the coefficients the law is linear in (E, A, B) in closed form "
                        "on a grid of the exponents; 'grid' screens the law's start grid (Chinchilla: the 4500 starts of "
                        "Hoffmann/Epoch); 'auto' (default): varpro for Huber fits of laws that allow it, else grid")


def _add_sep(p):
    p.add_argument("--sep", default=None, metavar="CHAR",
                   help="the table's delimiter (default: comma; a file whose header holds ';', tabs or '|' is read with that)")


def _add_progress_opts(p):
    p.add_argument("--quiet", action="store_true", help="no progress lines (progress is shown by default on a terminal)")
    p.add_argument("--progress", action="store_true", help="show progress even when stderr is not a terminal")


def _add_table_opts(p, runs_optional: bool = False):
    p.add_argument("runs", metavar="RUNS", help="path to the run table (CSV, TSV or Parquet)", **({"nargs": "?"} if runs_optional else {}))
    p.add_argument("--law", default="chinchilla",
                   help="law name (see `bayes-scaling laws`; default chinchilla), or a user's law: FILE.py:FACTORY or MODULE:FACTORY")
    p.add_argument("--tie", nargs="+", default=[], metavar="NAME=OTHER",
                   help="set parameters equal to others, e.g. --tie beta=alpha (one exponent for both terms)")
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
    _add_sep(p)
    _add_progress_opts(p)


def _add_sampler_opts(p):
    p.add_argument("--prob", type=float, default=0.9, help="credible interval mass (equal-tailed; default 0.9)")
    p.add_argument("--likelihood", choices=("student_t", "gaussian", "huber_density"), default="student_t",
                   help="noise on log loss (default student_t, nu=4)")
    p.add_argument("--nu", default=None, metavar="NU",
                   help="Student-t degrees of freedom (default 4), or 'learn' to sample them")
    p.add_argument("--k", type=float, default=None, metavar="K",
                   help="with --likelihood huber_density: the Huber density's threshold in sigmas (default 1.345)")
    p.add_argument("--chains", type=int, default=4, help="NUTS chains (default 4)")
    p.add_argument("--warmup", type=int, default=None,
                   help="warm-up iterations per chain (default 1000; 2000 for one posterior of a small design)")
    p.add_argument("--draws", type=int, default=None,
                   help="draws per chain (default 1000; 4000 for one posterior of a small design, runs <= 2 x parameters)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical draws")
    p.add_argument("--target-accept", type=float, default=None,
                   help="NUTS target acceptance (default 0.9; 0.95 for one posterior of a small design)")
    p.add_argument("--discrepancy", default="default", metavar="default|none|FILE.json",
                   help="the extrapolation term added to a new run's forecast: the package's calibration on backtests "
                        "(default), none, or a saved one")
    p.add_argument("--noise", choices=("auto", "constant", "compute"), default="auto",
                   help="noise scale on log loss: constant, or log-linear in compute; auto (default): compute when C is known")


def _add_small_sampler_opts(p):
    p.add_argument("--prob", type=float, default=0.9, help="credible interval mass (equal-tailed; default 0.9)")
    p.add_argument("--chains", type=int, default=4, help="NUTS chains (default 4)")
    p.add_argument("--warmup", type=int, default=500, help="warm-up iterations per chain (default 500)")
    p.add_argument("--draws", type=int, default=500, help="draws per chain (default 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical draws")
    p.add_argument("--target-accept", type=float, default=0.9, help="NUTS target acceptance (default 0.9)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout, then nothing else there)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    _add_sep(p)
    _add_progress_opts(p)


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


# each command's function: it takes the parsed options and returns the exit code
COMMANDS = {"fit": cmd_fit, "sample": cmd_sample, "report": cmd_report, "demo": cmd_demo, "laws": cmd_laws, "backtest": cmd_backtest,
            "plan": cmd_plan, "next-run": cmd_next_run, "batch-size": cmd_batch_size, "isoflop": cmd_isoflop, "hyperparams": cmd_hyperparams}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)  # argparse itself exits 2 with a usage line on bad options
    import jax

    jax.config.update("jax_enable_x64", True)
    try:
        _cpu_devices(jax)
    except UsageError as err:
        print(f"bayes-scaling: error: {err}", file=sys.stderr)
        return 2
    from .. import progress
    from ..compile_cache import enable_compilation_cache

    # progress on a terminal by default (--quiet: never; --progress: also when stderr is not a terminal)
    args.show_progress = not getattr(args, "quiet", False) and (getattr(args, "progress", False) or sys.stderr.isatty())
    command = COMMANDS[args.command]
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

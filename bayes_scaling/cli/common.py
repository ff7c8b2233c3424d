"""What the commands share: the bad-input error, checks of options, paths and ``--json`` targets made before any
work, reading a law and its run table from the options, the sampler's options, and the formatting of numbers,
intervals, tables and the sampler's health in words."""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ..tables import fmt_number


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2."""


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number")
    return value


def name_value_pairs(items, what: str) -> dict[str, float]:
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


def write_json(result, args) -> None:
    """The results as JSON (NaN and inf as null) to ``--json PATH``, or to stdout with ``--json -`` (every other
    line of output then goes to stderr, so that stdout is pure JSON)."""
    if not getattr(args, "json", None):
        return
    from ..report import json_safe

    text = json.dumps(json_safe(result), indent=2, allow_nan=False, default=str)
    if args.json == "-":
        print(text, file=getattr(args, "json_stream", None) or sys.stdout)
        return
    check_json_target(args)
    try:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    except OSError as err:
        raise UsageError(f"--json {args.json}: cannot write: {err.strerror or err}") from None
    print(f"wrote {args.json}")


def check_writable(path: str, option: str, *, folder: bool = False) -> None:
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


def check_json_target(args) -> None:
    """Refuse, before spending time on a fit, a --json file that exists (without --force) or cannot be written."""
    path = getattr(args, "json", None)
    if not path or path == "-":
        return
    check_writable(path, "--json")
    if os.path.exists(path) and not args.force:
        raise UsageError(f"--json {path} exists; not overwriting it (pass --force to replace it)")


def load_law_and_runs(args):
    from ..data import load_runs
    from ..laws import MUENNIGHOFF_BASE, get_law
    from ..tying import parse_ties
    from ..user_laws import is_law_spec, load_law

    try:
        if is_law_spec(args.law):
            if args.x:
                raise ValueError(f"--x {args.x}: a law loaded from {args.law} takes no --x (its factory decides its inputs)")
            law = load_law(args.law)
        else:
            law = get_law(args.law, **({"x": args.x} if args.x else {}))
        ties = parse_ties(getattr(args, "tie", []) or [])
        if ties:
            law = law.tie(**ties)
    except ValueError as err:
        raise UsageError(str(err)) from None
    fix = {}
    for item in args.fix:
        if item == "muennighoff_base":
            fix.update(MUENNIGHOFF_BASE)
        else:
            fix.update(name_value_pairs([item], "--fix"))
    if fix:
        law = law.fix(**fix)
    inputs = name_value_pairs(args.input, "--input")
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


def forecastable(law) -> bool:
    return ("N" in law.inputs and "D" in law.inputs) or law.inputs == ("C",)


def _check_noise_shape(args) -> None:
    from ..noise import shape_of

    if args.nu is not None and args.nu != "learn":
        try:
            args.nu = float(args.nu)
        except ValueError:
            raise UsageError(f"--nu {args.nu}: give a positive number or 'learn'") from None
    try:
        shape_of(args.likelihood, args.nu, args.k)
    except ValueError as err:
        raise UsageError(f"--nu/--k with --likelihood {args.likelihood}: {err}") from None


def check_sampler_args(args) -> None:
    from ..sampling import SMALL_DESIGN_DRAWS, SMALL_DESIGN_WARMUP, check_sampler_size

    if not 0 < args.prob < 1:
        raise UsageError(f"--prob {args.prob}: must be between 0 and 1")
    for name in ("chains", "warmup", "draws"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name} must be at least 1")
    if args.draws is not None and args.draws < 4:
        raise UsageError("--draws must be at least 4 (R-hat and ESS need them)")
    if args.target_accept is not None and not 0 < args.target_accept < 1:
        raise UsageError("--target-accept must be between 0 and 1")
    if hasattr(args, "likelihood"):  # loss-law posteriors (sample, report, demo): the likelihood's shape
        _check_noise_shape(args)
    try:  # before any work: draws that cannot fit in memory (the runs are counted again once the table is read)
        check_sampler_size(args.chains, args.warmup or SMALL_DESIGN_WARMUP, args.draws or SMALL_DESIGN_DRAWS, 16)
    except ValueError as err:
        raise UsageError(f"--draws {args.draws} / --chains {args.chains}: {err}") from None


def posterior_options(args, single: bool = False) -> dict:
    """The sampler options of ``sample``/``report``/``demo`` as the keywords of sample_posterior(_batch). Warm-up,
    draws and target acceptance left unset stay None for ``single`` posteriors (sample_posterior then chooses, longer for a
    small design); for batches warm-up and draws are 1000 and the target 0.9."""
    warmup = args.warmup if args.warmup is not None or single else 1000
    draws = args.draws if args.draws is not None or single else 1000
    target = args.target_accept if args.target_accept is not None or single else 0.9
    return dict(likelihood=args.likelihood, nu=args.nu, k=args.k, num_warmup=warmup, num_samples=draws, num_chains=args.chains,
                seed=args.seed, target_accept=target,
                noise_varies_with_compute={"auto": None, "constant": False, "compute": True}[args.noise])


def fmt_interval(r, c) -> str:
    return f"{fmt_number(r[c])} ({fmt_number(r[c + '_lo'])}, {fmt_number(r[c + '_hi'])})"


def health_words(diag) -> str:
    from ..diagnostics import fmt_rhat

    return (f"sampler: {diag['divergences']} divergences, max R-hat {fmt_rhat(diag['max_r_hat'])}, min ESS bulk "
            f"{fmt_ess(diag['min_ess_bulk'])} / tail {fmt_ess(diag['min_ess_tail'])}"
            + ("" if diag.get("sampler_ok", diag["ok"]) else "  -- NOT HEALTHY, see warnings"))


def fmt_ess(v) -> str:
    return "-" if v is None or v != v else f"{v:.0f}"

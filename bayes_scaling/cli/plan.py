"""``bayes-scaling plan``: plans a manager can read (:mod:`bayes_scaling.planning`, :mod:`bayes_scaling.cost`): the loss
of given plans, the inference-aware optimum, the best model for a budget and the cost of a target loss, with intervals
from a posterior (sampled here, or loaded with ``--posterior``)."""

from __future__ import annotations

import os

import numpy as np

from ..tables import fmt_human, fmt_number, format_columns
from .common import UsageError, check_json_target, check_sampler_args, load_law_and_runs, name_value_pairs, posterior_options, write_json
from .hardware import add_hardware_opts, hardware_option, plans_option


def add_posterior_source_opts(p, verb: str) -> None:
    """--posterior and --laws: what ``plan`` and ``next-run`` work on besides (or instead of) RUNS."""
    p.add_argument("--posterior", metavar="PATH", default=None,
                   help=f"{verb} on a posterior saved by `sample --out` or `demo --out` (posterior.nc) instead of sampling; "
                        "RUNS may then be left out (with RUNS, the posterior is checked to be of those runs)")
    p.add_argument("--laws", default=None, metavar="auto|A,B,...",
                   help=f"{verb} on the stack of several laws (see `sample --laws`)")


def check_posterior_source(args, verb: str) -> None:
    """One line, before any work, for a source :func:`posterior_for` cannot use."""
    if args.runs is None and args.posterior is None:
        raise UsageError("give RUNS (a run table to sample a posterior on) or --posterior posterior.nc (or both)")
    if args.posterior and args.laws:
        raise UsageError("--posterior holds one law's posterior; --laws samples several (drop one of them)")
    if args.family:
        raise UsageError(f"{verb} works on one posterior; --family is not supported here ({verb} each family's runs)")


def add_plan_command(sub, add_table_opts, add_sampler_opts) -> None:
    p = sub.add_parser("plan", help="plans with intervals: any plan's loss, the inference-aware optimum, the best model for "
                                    "a budget, the cost of a target loss (GPU-hours, days, dollars, energy)")
    add_table_opts(p, runs_optional=True)
    add_sampler_opts(p)
    add_posterior_source_opts(p, "plan")
    p.add_argument("--plan", nargs="+", action="extend", default=[], metavar="[NAME=]NxD",
                   help="plans to compare, N parameters x D tokens: 8Bx15T, llama=8e9x15e12, 70Bx1.4T (suffixes K M B T)")
    p.add_argument("--target-loss", type=float, default=None, metavar="L",
                   help="what reaching this loss costs (compute-optimal model); with --inference-tokens: the inference-aware "
                        "model reaching it")
    p.add_argument("--budget", type=float, default=None, metavar="FLOPS", help="the best model for this training compute")
    p.add_argument("--dollars", type=float, default=None, metavar="USD", help="the best model this many dollars buy")
    p.add_argument("--days", type=float, default=None, metavar="DAYS", help="the best model --count accelerators train in DAYS")
    p.add_argument("--inference-tokens", type=float, default=0.0, metavar="T",
                   help="tokens the model will serve in its life (inference costs 2N FLOPs per token): the optimum then "
                        "minimises training plus inference compute (default 0: training only)")
    add_hardware_opts(p)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-': stdout, then nothing else there)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")


def _check(args):
    """Every option checked before any sampling; returns (hardware, plans)."""
    check_sampler_args(args)
    check_json_target(args)
    hw = hardware_option(args)
    plans = plans_option(args)
    for opt in ("target_loss", "budget", "dollars", "days"):
        v = getattr(args, opt)
        if v is not None and not (np.isfinite(v) and v > 0):
            raise UsageError(f"--{opt.replace('_', '-')} {v:g}: must be a positive, finite number")
    if not (np.isfinite(args.inference_tokens) and args.inference_tokens >= 0):
        raise UsageError(f"--inference-tokens {args.inference_tokens:g}: must be a finite number >= 0")
    budgets = [o for o in ("budget", "dollars", "days") if getattr(args, o) is not None]
    if len(budgets) > 1:
        raise UsageError(f"--{budgets[0]} and --{budgets[1]} both set the budget; give one")
    if not (plans or args.target_loss or budgets):
        raise UsageError("nothing to plan: give --plan NxD, --target-loss L, or a budget (--budget, --dollars or --days)")
    check_posterior_source(args, "plan")
    return hw, plans


def posterior_for(args):
    """The posterior to plan on (loaded from --posterior, sampled on RUNS, or with --laws the stack), and the fixed
    inputs of its law; a law not of N and D is refused before any sampling."""
    from ..planning import members
    from ..posterior import Posterior

    if args.posterior and args.runs is None:
        if not os.path.isfile(args.posterior):
            raise UsageError(f"--posterior {args.posterior}: no such file")
        try:
            post = Posterior.load(args.posterior)
        except ValueError as err:
            raise UsageError(f"--posterior {err}") from None
        print(f"posterior: {args.posterior} ({post.law.name}; {post.num_chains} chains x {post.num_draws} draws)")
        for _, member, _ in members(post):
            _need_n_and_d(member.law)
        return post, name_value_pairs(args.input, "--input")
    law, runs, inputs = load_law_and_runs(args)
    if args.laws:
        from ..stacking import sample_stacked
        from .stacked import laws_option

        laws = laws_option(args, runs, one_table=True)
        if args.laws == "auto":  # a law of compute alone joins auto on frontier tables; plans are (N, D) choices
            laws = [w for w in laws if _of_n_and_d(w)]
        for w in laws:
            _need_n_and_d(w)
        print(f"sampling {len(laws)} laws' posteriors and their stacking weights ...", flush=True)
        return sample_stacked(runs, laws, **posterior_options(args, single=True)), inputs
    if args.posterior:
        from .posterior import load_posterior

        _need_n_and_d(law)
        post = load_posterior(args.posterior, law, runs)
        print(f"posterior: {args.posterior} ({post.law.name}; {post.num_chains} chains x {post.num_draws} draws)")
        return post, inputs
    from .posterior import sample_one

    _need_n_and_d(law)
    post, seconds = sample_one(runs, law, args)
    print(f"sampled in {seconds:.1f} s")
    return post, inputs


def _of_n_and_d(law) -> bool:
    return "N" in law.inputs and "D" in law.inputs


def _need_n_and_d(law) -> None:
    if not _of_n_and_d(law):
        raise UsageError(f"law {law.name!r} has inputs {', '.join(law.inputs)}: a plan needs a law of N and D "
                         "(plans, optima and budgets are (N, D) choices)")


def _times(f) -> str:
    """An extrapolation factor: 6.5x, 550x."""
    return fmt_human(f) + "x"


def _iv(d, key=None, human=True, prefix=""):
    f = (lambda v: fmt_human(v, prefix)) if human else fmt_number
    x = d if key is None else d[key]
    return f"{f(x['median'])} ({f(x['lo'])}, {f(x['hi'])})"


def cmd_plan(args) -> int:
    from ..planning import best_for_budget, cost_to_reach, inference_aware, plan_losses
    from .stacked import discrepancy_option

    hw, plans = _check(args)
    disc = discrepancy_option(args)
    post, inputs = posterior_for(args)  # refuses a law not of N and D, whichever way the posterior comes
    pct = f"{100 * args.prob:g}%"
    out = [f"hardware: {hw.describe()}", f"medians with {pct} intervals; 'new run': one real run's loss (noise and the "
           f"extrapolation term{'' if disc is not None else ', here off'})"]
    result = {"hardware": hw.describe(), "prob": args.prob}
    warnings_, far = [], []  # far: (what, its compute over the largest run's), flagged from 100x on
    kw = dict(prob=args.prob, inputs=inputs or None, seed=args.seed)
    try:
        if plans:
            r = plan_losses(post, plans, hardware=hw, discrepancy=disc, **kw)
            out += ["", "plans:", _plan_table(r["table"], pct, hw)] + _beats(r)
            result["plans"] = {k: v.to_dict(orient="records" if k == "table" else "index") for k, v in r.items()}
            warnings_ += [f"plan {row['plan']}: D = {fmt_human(row['D'])} tokens is below Kaplan et al.'s data guide "
                          f"D >~ 5e3 N^0.74 = {fmt_human(row['kaplan_min_D'])} (eq. 4.4): if the data repeat, expect overfitting"
                          for _, row in r["table"].iterrows() if row["below_kaplan_guide"]]
            far += [(row["plan"], row["extrapolation"]) for _, row in r["table"].iterrows()]
        if args.target_loss is not None:
            c = cost_to_reach(post, args.target_loss, hardware=hw, **kw)
            result["cost_to_reach"] = c
            out += ["", f"to reach loss {args.target_loss:g} with the compute-optimal model: C = {_iv(c, 'flops', False)} FLOPs "
                        f"({_iv(c, 'extrapolation')} x the largest run)",
                    f"  {_iv(c, 'hours')} GPU-hours, {_iv(c, 'days')} days on {int(hw.count)}, {_iv(c, 'dollars', prefix='$')}, "
                    f"{_iv(c, 'kwh')} kWh"]
            if c["p_unreachable"] > 0:
                warnings_.append(f"loss {args.target_loss:g}: in {c['p_unreachable']:.0%} of the draws the law's floor lies at "
                                 "or above it (no compute reaches it); the interval's upper ends are inf")
            far += [(f"loss {args.target_loss:g}", c["extrapolation"]["median"])]
        if args.inference_tokens > 0 and (args.target_loss is not None or args.budget is not None):
            ia = inference_aware(post, inference_tokens=args.inference_tokens, hardware=hw,
                                 **({"loss": args.target_loss} if args.target_loss is not None else {"budget": args.budget}), **kw)
            result["inference_aware"] = ia
            out += ["", *_inference_lines(ia, args, pct)]
        budget = next(((o, getattr(args, o)) for o in ("budget", "dollars", "days") if getattr(args, o) is not None), None)
        if budget:
            b = best_for_budget(post, **{"flops" if budget[0] == "budget" else budget[0]: budget[1]}, hardware=hw,
                                inference_tokens=args.inference_tokens, discrepancy=disc, **kw)
            result["best_for_budget"] = b
            out += ["", *_budget_lines(b, budget, hw, pct)]
            far += [("the budget", b["extrapolation"])]
    except ValueError as err:
        raise UsageError(str(err)) from None
    health = post.health()
    flagged = []
    for what, f in far:
        if f >= 100:
            warnings_.append(f"{what} lies {_times(f)} beyond the largest run's compute: a forecast this far rests on the "
                             "law's form holding over that range (the 'new run' interval includes the extrapolation term)")
            flagged.append("far extrapolation")
    if not health.ok:
        flagged.append("the sampler is not healthy")
        warnings_ += [f"sampler: {w}" for w in health.warnings]
    out += [""] + [f"warning: {w}" for w in warnings_]
    if flagged:
        out.append(f"FLAGGED: {'; '.join(sorted(set(flagged)))} (warnings above); exit code 1")
    print("\n".join(out).rstrip())
    result["warnings"] = warnings_
    write_json(result, args)
    return 1 if flagged else 0


def _plan_table(df, pct, hw) -> str:
    head = ["plan", "N", "D", "tokens/param (x optimal)", f"loss [{pct}]", f"new run [{pct}]", "GPU-hours",
            f"days on {int(hw.count)}", "dollars", "C / largest run"]
    rows = [[r["plan"], fmt_human(r["N"]), fmt_human(r["D"]), f"{fmt_human(r['tokens_per_param'])} ({fmt_human(r['ratio_to_optimal'])}x)",
             f"{r['loss']:.3f} ({r['loss_lo']:.3f}, {r['loss_hi']:.3f})", f"({r['loss_new_lo']:.3f}, {r['loss_new_hi']:.3f})",
             fmt_human(r["hours"]), f"{r['days']:.3g}", fmt_human(r["dollars"], "$"), _times(r["extrapolation"])]
            for _, r in df.iterrows()]
    return format_columns(head, rows)


def _beats(r) -> list[str]:
    names = list(r["p_better"].index)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            out.append(f"P({a} beats {b}) = {r['p_better'].loc[a, b]:.2f} for the mean law; "
                       f"{r['p_better_new_run'].loc[a, b]:.2f} for one run of each")
    return out


def _inference_lines(ia, args, pct) -> list[str]:
    target = (f"loss {args.target_loss:g}" if args.target_loss is not None else
              f"the loss of the compute-optimal model at {args.budget:g} FLOPs ({_iv(ia, 'target_loss', False)})")
    head = ["model", "N", "D", "tokens/param", "lifetime FLOPs", "lifetime dollars"]
    rows = [["inference-aware", _iv(ia, "N"), _iv(ia, "D"), _iv(ia, "tokens_per_param"), _iv(ia, "lifetime_flops", False),
             _iv(ia, "lifetime_dollars", prefix="$")],
            ["compute-optimal", _iv(ia, "chinchilla_N"), _iv(ia, "chinchilla_D"), _iv(ia, "chinchilla_tokens_per_param"),
             _iv(ia, "chinchilla_lifetime_flops", False), _iv(ia, "chinchilla_lifetime_dollars", prefix="$")]]
    s = ia["saving"]
    return [f"inference-aware optimum: reach {target} and serve {fmt_human(args.inference_tokens)} tokens "
            f"(training 6ND + inference 2N per token; {pct} intervals):", format_columns(head, rows),
            f"saving against the compute-optimal model: {s['median']:.1%} ({s['lo']:.1%}, {s['hi']:.1%}) of lifetime compute",
            f"at {_iv(ia, 'halving_demand')} inference tokens the optimal model is half the compute-optimal one's size"]


def _budget_lines(b, budget, hw, pct) -> list[str]:
    kind, amount = budget
    what = {"budget": f"{amount:g} FLOPs", "dollars": fmt_human(amount, "$"), "days": f"{amount:g} days on {int(hw.count)}"}[kind]
    life = " (training plus serving {} tokens)".format(fmt_human(b["inference_tokens"])) if b["inference_tokens"] > 0 else ""
    return [f"best model for {what}{life} = {b['budget']['flops']:.3g} FLOPs, {fmt_human(b['cost']['hours'])} GPU-hours, "
            f"{b['cost']['days']:.3g} days on {int(hw.count)}, {fmt_human(b['cost']['dollars'], '$')}:",
            f"  N = {_iv(b, 'N')}, D = {_iv(b, 'D')}, tokens/param {_iv(b, 'tokens_per_param')}",
            f"  loss {_iv(b, 'loss', False)}; one new run ({b['loss_new_lo']:.3f}, {b['loss_new_hi']:.3f}); "
            f"{_times(b['extrapolation'])} the largest run"] + (
        [f"  training alone: {_iv(b['training_cost'], 'hours')} GPU-hours, {_iv(b['training_cost'], 'days')} days on "
         f"{int(hw.count)}, {_iv(b['training_cost'], 'dollars', prefix='$')}; the rest pays for serving"] if life else [])

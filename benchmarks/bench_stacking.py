"""Law-form stacking against the single laws, pooled over corpora (issue 14).

    python benchmarks/bench_stacking.py [--cache PATH] [--out benchmarks/results/stacking.json]

Two corpora, each backtested by rolling origin (fit on runs up to a cut, forecast every run beyond it), every
candidate law on the same cuts, then the stack at each cut weighed only by what was known at it: PSIS-LOO weights of
the cut's fitted runs, or leave-future-out (LFO) weights from the laws' scores of the runs earlier cuts forecast.

- Epoch's Chinchilla runs (240 runs, cuts at 1e20 and 1e21 FLOPs): Chinchilla, Chinchilla with alpha = beta, Kaplan.
- Porian et al.'s IsoFLOP frontier (the 15 configurations' per-budget vertices N_opt, D_opt, L*; each configuration
  fitted on its budgets up to the k-th, k = 8..11; with fewer vertices the five-parameter laws' batched posteriors are
  small designs that run NUTS at its deepest trees): the same three joint laws and the compute-only power law with a
  floor, L*(C) = E + A C^-alpha (a candidate on a frontier table, where it predicts the same losses).

Reported per corpus and pooled: median absolute error of the predictive median and 90% coverage (with the package's
extrapolation term), for each law, the LOO stack and the LFO stack. Target (issue 14): the stack's median absolute
error no worse than the best single law's by more than 10%, and better than the worst's.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench_point_fit import machine  # noqa: E402
from calibrate_discrepancy import DATA, PORIAN_CONFIG  # noqa: E402

from bayes_scaling import default_discrepancy, load_chinchilla, load_runs  # noqa: E402
from bayes_scaling.backtests import backtest  # noqa: E402
from bayes_scaling.stacking import backtest_stacked, candidate_laws  # noqa: E402


def corpora():
    optima = pd.read_csv(DATA / "isoflop_optima.csv").dropna(subset=["n_star"])  # 4 budgets the paper found no vertex for
    frontier = load_runs(optima, N="n_star", D="t_star", C="flops", loss="loss_star", family=PORIAN_CONFIG)
    return {"chinchilla": (load_chinchilla(), {"cuts": [1e20, 1e21]}),
            "porian_frontier": (frontier, {"levels": list(range(8, 12))})}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default="")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "stacking.json"))
    args = ap.parse_args(argv)
    cached = pickle.loads(Path(args.cache).read_bytes()) if args.cache and Path(args.cache).exists() else {}
    disc = default_discrepancy()
    res = {"machine": machine(), "sampler": {"num_warmup": args.warmup, "num_samples": args.draws}, "corpora": {}}
    rows = []
    for name, (runs, kw) in corpora().items():
        laws = candidate_laws(runs, "auto")
        per = cached.get(name, {})
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for law in laws:
                if law.name not in per:
                    per[law.name] = backtest(law, runs, loo=True, discrepancy=disc, num_warmup=args.warmup,
                                             num_samples=args.draws, **kw)
                    print(f"{name}: {law.name} backtested ({time.perf_counter() - t0:.0f} s)", flush=True)
        cached[name] = per
        if args.cache:
            Path(args.cache).write_bytes(pickle.dumps(cached))
        out = {n: b for n, b in per.items()}
        weights = {}
        for how in ("loo", "lfo"):
            st, _, wt = backtest_stacked(runs, laws, weights=how, backtests=per)
            out[f"stack ({how})"] = st
            weights[how] = wt.round(3).to_dict(orient="records")
        for what, b in out.items():
            p = b.pooled().iloc[0]
            rows.append({"corpus": name, "what": what, "held_out": int(p["held_out"]),
                         "median_abs_error_%": float(p["median_abs_error_%"]), "coverage_90": float(p["coverage_90"]),
                         "coverage_50": float(p["coverage_50"]), "abs_errors": np.abs(b.points["error_%"]).tolist(),
                         "healthy": bool(b.health.ok)})
        res["corpora"][name] = {"laws": [law.name for law in laws], "seconds": time.perf_counter() - t0, "weights": weights}
    df = pd.DataFrame(rows)
    # pooled over the corpora: each corpus's held-out runs together, the laws present in both (the joint laws)
    common = set.intersection(*[set(g["what"]) for _, g in df.groupby("corpus")])
    for what in sorted(common):
        errs = np.concatenate([r for r in df.loc[df["what"] == what, "abs_errors"]])
        rows.append({"corpus": "pooled", "what": what, "held_out": len(errs), "median_abs_error_%": float(np.median(errs)),
                     "coverage_90": float("nan"), "coverage_50": float("nan"), "abs_errors": [],
                     "healthy": bool(df.loc[df["what"] == what, "healthy"].all())})
    df = pd.DataFrame(rows).drop(columns="abs_errors")
    for corpus, g in df.groupby("corpus", sort=False):
        single = g[~g["what"].str.startswith("stack")]
        best, worst = single["median_abs_error_%"].min(), single["median_abs_error_%"].max()
        for _, r in g[g["what"].str.startswith("stack")].iterrows():
            res.setdefault("verdict", []).append({"corpus": corpus, "stack": r["what"], "error": r["median_abs_error_%"],
                                                  "best_law": best, "worst_law": worst,
                                                  "ratio_to_best": r["median_abs_error_%"] / best,
                                                  "within_10pct_of_best": bool(r["median_abs_error_%"] <= 1.1 * best),
                                                  "better_than_worst": bool(r["median_abs_error_%"] < worst)})
    print(df.round(4).to_string(index=False))
    for v in res.get("verdict", []):
        print(v)
    res["rows"] = df.round(5).to_dict(orient="records")
    Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

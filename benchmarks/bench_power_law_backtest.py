"""Backtests of the power laws through per-budget optima: hyperparameter laws and approach-2 laws (issue 14).

    python benchmarks/bench_power_law_backtest.py [--out benchmarks/results/power_law_backtest.json]

- Porian et al.'s IsoFLOP vertices: N_opt = k C^a and D_opt = k C^b per configuration (15 configurations, each
  fitted on its budgets up to the k-th, k = 6..11, and every larger budget's vertex forecast), each vertex with the
  paper's fitted log-sd as its standard error.
- Zhang et al.'s critical batch sizes: CBS = k N^p through the five model sizes' posteriors (this package's
  ``critical_batch_size``), fitted on the smallest 3 and 4 sizes, the larger ones forecast.

Reported: coverage of the held-out optima at 50/80/90%, median absolute error, mean PIT, per law and pooled.
"""

from __future__ import annotations

import argparse
import json
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

from bayes_scaling.analyses.batch_size import critical_batch_size  # noqa: E402
from bayes_scaling.analyses.power_law_backtest import backtest_power_law, pooled_coverage  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "power_law_backtest.json"))
    args = ap.parse_args(argv)
    opts = dict(num_warmup=args.warmup, num_samples=args.draws)
    res = {"machine": machine(), "sampler": opts, "laws": {}}
    allpts = []
    d = pd.read_csv(DATA / "isoflop_optima.csv").dropna(subset=["n_star"])
    groups = d[PORIAN_CONFIG].astype(str).agg("/".join, axis=1).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for what, col, sd in (("porian N_opt(C)", "n_star", "n_star_logstd"), ("porian D_opt(C)", "t_star", "t_star_logstd")):
            t = time.perf_counter()
            pts = backtest_power_law({"C": d["flops"]}, d[col], y_sd=d[sd], groups=groups, levels=range(6, 12), **opts)
            res["laws"][what] = {**pooled_coverage(pts), "seconds": time.perf_counter() - t,
                                 "healthy_cuts": int(pts.groupby(["group", "cut"])["healthy"].first().sum())}
            allpts.append(pts.assign(law=what))
            print(what, res["laws"][what], flush=True)
        t = time.perf_counter()
        cbs = critical_batch_size(DATA / "steps_to_target_loss_DERIVED.csv", batch="batch_size_seqs", steps="steps_to_target",
                                  group="model_size", num_warmup=args.warmup, num_samples=args.draws)
        logc = np.log(cbs.cbs)
        N = np.asarray(cbs.sweep.extra["N_params_nominal"], float)
        pts = backtest_power_law({"N": N}, np.exp(logc.mean(axis=0)), y_sd=logc.std(axis=0, ddof=1), levels=[3, 4], **opts)
        res["laws"]["zhang CBS(N)"] = {**pooled_coverage(pts), "seconds": time.perf_counter() - t}
        allpts.append(pts.assign(law="zhang CBS(N)"))
        print("zhang CBS(N)", res["laws"]["zhang CBS(N)"], flush=True)
    both = pd.concat(allpts)
    res["pooled"] = pooled_coverage(both.assign(group=both["law"] + " | " + both["group"].astype(str)))
    print("pooled", res["pooled"])
    res["points"] = both.round(6).to_dict(orient="records")
    Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Backtest benchmark (issue 14): the Chinchilla default backtest against a loop of naive refits.

    python benchmarks/bench_backtest.py [--out benchmarks/results/backtest.json]

In one run, on the bundled 240 Chinchilla runs with the default cuts (the 50-90% quantiles of compute: 5 cuts):
``backtest("chinchilla", runs)`` (every cut one family of one batched posterior call, 4 x (500 + 500) draws,
predictive scores of every held-out run), cold (first call, compiling) and warm; against the loop a user would
write: for each cut, ``sample_posterior`` on the runs up to it (same sampler settings) and the posterior
predictive of each run beyond it. Both in fresh programs of the same process; the ratio is loop / backtest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
from bench_point_fit import machine  # noqa: E402

from bayes_scaling import backtest, load_chinchilla, sample_posterior  # noqa: E402
from bayes_scaling.backtests import cut_values  # noqa: E402

OPTS = dict(num_warmup=500, num_samples=500, num_chains=4, target_accept=0.95)


def naive_loop(runs):
    """Refit per cut and score the runs beyond it by their predictive draws (what a user writes by hand)."""
    covered = []
    for c in cut_values(runs.C):
        post = sample_posterior("chinchilla", runs.select(runs.C <= c), **OPTS)
        test = runs.select(runs.C > c)
        X = {"N": test.N, "D": test.D}
        mu = np.asarray(jax.jit(jax.vmap(lambda p: post.law.log_loss_runs(p, X)))(post.flat()))
        sigma = post.noise_scale(test.C).reshape(-1, len(test)) if "gamma" in post.noise else post.noise["sigma"].reshape(-1, 1)
        y = mu + sigma * np.random.default_rng(0).standard_t(4, mu.shape)
        lo, hi = np.quantile(y, [0.05, 0.95], axis=0)
        covered.append(np.mean((np.log(test.loss) >= lo) & (np.log(test.loss) <= hi)))
    return covered


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "backtest.json"))
    args = ap.parse_args(argv)
    runs = load_chinchilla()
    res = {"machine": machine(), "runs": len(runs), "cuts": len(cut_values(runs.C)), "sampler": OPTS}
    t = time.perf_counter()
    bt = backtest("chinchilla", runs, discrepancy=None, **OPTS)
    res["backtest_cold_s"] = time.perf_counter() - t
    t = time.perf_counter()
    bt = backtest("chinchilla", runs, discrepancy=None, **OPTS)
    res["backtest_warm_s"] = time.perf_counter() - t
    t = time.perf_counter()
    loop_cov = naive_loop(runs)
    res["loop_s"] = time.perf_counter() - t
    res["ratio_loop_over_backtest_cold"] = res["loop_s"] / res["backtest_cold_s"]
    res["backtest_coverage_90_per_cut"] = bt.cuts["coverage_90"].round(3).tolist()
    res["loop_coverage_90_per_cut"] = [round(float(c), 3) for c in loop_cov]
    res["health"] = str(bt.health)
    for k, v in res.items():
        print(f"{k}: {v}")
    Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

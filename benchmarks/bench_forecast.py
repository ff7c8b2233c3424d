"""Forecast calls on a posterior: compiled once per law and shape, against the baseline that recompiled (issue 13).

    python benchmarks/bench_forecast.py [--baseline-commit 94db273] [--out benchmarks/results/forecast.json]

One fresh process per code version (this tree, and a git worktree of the baseline commit, as
bench_startup.py makes it), launched the same way, each doing the same thing: the Chinchilla posterior of the 240
bundled runs (4 chains x 1000 draws = 4000 draws, 500 warm-up, seed 0), then ``Posterior.forecast`` over three
budgets, five times, each time with other budgets (same shape). The first call, and the median and largest of
the four later calls, are reported. Target (issue 13): a later call under 50 ms (the issue measured ~1.5 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_startup import BASELINE_COMMIT, baseline_tree, git  # noqa: E402

CALLS = r"""
import json, os, statistics, time
os.environ["BAYES_SCALING_CACHE_DIR"] = "off"
import jax
jax.config.update("jax_enable_x64", True)
from bayes_scaling import load_chinchilla, sample_posterior
post = sample_posterior("chinchilla", load_chinchilla(), num_chains=4, num_warmup=500, num_samples=1000, seed=0)
sets = [[1e21, 5.76e23, 1e25], [2e21, 1e23, 3e24], [5e21, 2e23, 7e24], [1e22, 4e23, 2e25], [3e22, 8e23, 5e25]]
times = []
for b in sets:
    t = time.perf_counter()
    table = post.forecast(b)
    times.append(time.perf_counter() - t)
draws = sum(v.size for v in post.draws.values()) // len(post.draws)
print(json.dumps({"times": times, "draws": draws, "rows": len(table)}))
"""


def run(tree: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    res = subprocess.run([sys.executable, "-c", CALLS], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-3:]}
    out = json.loads(res.stdout.strip().splitlines()[-1])
    later = sorted(out["times"][1:])
    out.update(first_s=out["times"][0], later_median_s=(later[1] + later[2]) / 2, later_max_s=later[-1])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "forecast.json"))
    args = ap.parse_args()
    result = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
                          "load_average_at_start": list(os.getloadavg())},
              "date": time.strftime("%Y-%m-%d %H:%M:%S"), "new_head": git("rev-parse", "HEAD"),
              "baseline_commit": git("rev-parse", args.baseline_commit), "versions": {}}
    for name, tree in (("new", ROOT), ("baseline", baseline_tree(args.baseline_commit))):
        result["versions"][name] = run(tree)
    print("Posterior.forecast, 3 budgets x 4000 draws (seconds; later = calls 2-5 with other budgets)")
    print(f"  {'version':<10}{'1st call':>10}{'later median':>14}{'later max':>11}")
    for name, r in result["versions"].items():
        if "error" in r:
            print(f"  {name:<10} FAILED {r['error']}")
            continue
        print(f"  {name:<10}{r['first_s']:>10.3f}{r['later_median_s']:>14.4f}{r['later_max_s']:>11.4f}")
    new, base = result["versions"]["new"], result["versions"]["baseline"]
    if "error" not in new and "error" not in base:
        result["baseline_over_new_later"] = base["later_median_s"] / new["later_median_s"]
        result["target_later_under_50ms"] = new["later_max_s"] < 0.05
        print(f"  later calls: baseline / new = {result['baseline_over_new_later']:.0f}x; target (< 50 ms): "
              + ("met" if result["target_later_under_50ms"] else "NOT met"))
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

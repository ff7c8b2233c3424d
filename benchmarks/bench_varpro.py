"""Variable projection against the 4500-start grid on the Chinchilla Huber protocol (issue 13).

    python benchmarks/bench_varpro.py [--repeat 15] [--configs 10] [--out benchmarks/results/varpro.json]

Side by side in one run:

* warm: ``fit_point("chinchilla", runs, strategy=...)`` on the 240 bundled runs, median of ``--repeat`` calls after a
  first (compiling) one, for ``varpro`` (the default for Huber fits) and ``grid`` (screen 4500 starts, L-BFGS from
  the best 32: the default before), with the minimum each reaches;
* fresh process: a new Python process per strategy that imports the package, turns the compile cache on (a new
  temporary folder, filled by one process first) and fits once; the first fit call, the imports and the whole
  process are timed (a cold process with an empty cache is timed too);
* agreement on real runs the method was not tuned on: the Huber minimum of both strategies on ``--configs``
  Porian et al. configurations (tests/data/isoflop_points.csv), Chinchilla and a power law in N with a floor.

Open-Athena's vpnls, the peer the issue measured (0.15-0.16 s warm, 0.18-0.59 s in a fresh process on this box),
is not installable here (not in the package index this machine reaches); its numbers are quoted, not rerun.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

FRESH = r"""
import json, sys, time
t0 = time.perf_counter()
import jax
jax.config.update("jax_enable_x64", True)
from bayes_scaling import fit_point, load_chinchilla
from bayes_scaling.compile_cache import enable_compilation_cache, program_stats
enable_compilation_cache()
runs = load_chinchilla()
t1 = time.perf_counter()
fit = fit_point("chinchilla", runs, strategy=sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"imports_s": t1 - t0, "first_fit_s": t2 - t1, "objective": fit.objective, "stats": program_stats()}))
"""


def machine():
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(), "jax": jax.__version__,
            "backend": jax.default_backend(), "load_average_at_start": list(os.getloadavg())}


def warm(runs, strategy, repeat):
    from bayes_scaling import fit_point

    t = time.perf_counter()
    fit = fit_point("chinchilla", runs, strategy=strategy)
    first = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fit = fit_point("chinchilla", runs, strategy=strategy)
        times.append(time.perf_counter() - t)
    return {"first_call_s": first, "warm_s": statistics.median(times), "warm_min_s": min(times), "objective": fit.objective,
            "params": fit.params, "notes": list(fit.notes)}


def fresh(strategy):
    env = dict(os.environ, PYTHONPATH=str(ROOT), BAYES_SCALING_CACHE_DIR=tempfile.mkdtemp(prefix="bench_varpro-"))
    out = {}
    for label in ("cold", "cached"):
        t = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", FRESH, strategy], capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
        wall = time.perf_counter() - t
        if res.returncode != 0:
            out[label] = {"error": res.stderr.strip().splitlines()[-1:]}
            continue
        out[label] = dict(json.loads(res.stdout.strip().splitlines()[-1]), process_s=wall)
    return out


def agreement(num_configs):
    from bayes_scaling import fit_point, get_law, load_runs

    pts = pd.read_csv(ROOT / "tests" / "data" / "isoflop_points.csv")
    keys = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]
    groups = [(kv, g) for kv, g in pts.groupby(keys) if len(g) >= 8]
    rng = np.random.default_rng(0)
    rows = []
    for i in sorted(rng.choice(len(groups), size=min(num_configs, len(groups)), replace=False)):
        kv, g = groups[i]
        g = g.reset_index(drop=True)
        for law, runs in (("chinchilla", load_runs(g, N="n", D="t", loss="loss")),
                          (get_law("power_law_floor", x="N"), load_runs(g, C="flops", N="n", loss="loss"))):
            a = fit_point(law, runs, strategy="varpro")
            b = fit_point(law, runs, strategy="grid")
            rows.append({"configuration": "/".join(kv), "law": getattr(law, "name", law), "runs": len(g),
                         "varpro": a.objective, "grid": b.objective, "relative_difference": (a.objective - b.objective) / b.objective})
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--configs", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "varpro.json"))
    args = ap.parse_args()
    from bayes_scaling import load_chinchilla

    result = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "repeat": args.repeat}
    runs = load_chinchilla()
    result["warm"] = {s: warm(runs, s, args.repeat) for s in ("varpro", "grid")}
    w = result["warm"]
    print("240 Chinchilla runs, Huber protocol (delta 1e-3), float64; seconds")
    print(f"  {'strategy':<8}{'1st call':>10}{'warm':>9}{'objective':>26}")
    for s, r in w.items():
        print(f"  {s:<8}{r['first_call_s']:>10.3f}{r['warm_s']:>9.4f}{r['objective']:>26.15e}")
    print(f"  warm grid / varpro = {w['grid']['warm_s'] / w['varpro']['warm_s']:.2f}x; "
          f"|objective difference| = {abs(w['grid']['objective'] - w['varpro']['objective']):.2e}")
    result["fresh"] = {s: fresh(s) for s in ("varpro", "grid")}
    print("fresh processes (imports, first fit call, whole process; s):")
    for s, r in result["fresh"].items():
        for label, x in r.items():
            if "error" in x:
                print(f"  {s:<8}{label:<8} FAILED {x['error']}")
            else:
                print(f"  {s:<8}{label:<8} imports {x['imports_s']:.2f}  first fit {x['first_fit_s']:.3f}  "
                      f"process {x['process_s']:.2f}  objective {x['objective']:.12e}")
    if args.configs:
        rows = agreement(args.configs)
        result["agreement"] = rows
        worse = [r for r in rows if r["relative_difference"] > 1e-9]
        print(f"Porian configurations: {len(rows)} fits; varpro above the grid's minimum by more than 1e-9 relative in {len(worse)}; "
              f"largest difference {max(r['relative_difference'] for r in rows):.2e}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Point-fit benchmark (issue 2): our optax Huber-protocol fit against scipy L-BFGS-B on the 4500-start grid.

    python benchmarks/bench_point_fit.py [--quick] [--out benchmarks/results/point_fit.json]

Side by side in one run on the 240 bundled Chinchilla runs:
  * scipy L-BFGS-B with analytic NumPy gradients (tests/scipy_reference.py), tight tolerances, from every
    one of the 4500 grid starts;
  * bayes_scaling.fit_point with its default grid strategy (screen all 4500 starts, L-BFGS from the best 32),
    cold (first call: tracing + XLA compile) and warm (median of repeats);
  * bayes_scaling.fit_point from every one of the 4500 starts (num_polish=None), one run (cold).
Then how fit time grows with the number of runs (240 -> 24,000 synthetic) and starts (1 -> 4500), and the
end-to-end `bayes-scaling demo` in a fresh process. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy_reference import scipy_grid  # noqa: E402

from bayes_scaling import fit_point, get_law, load_chinchilla  # noqa: E402


def timed(fn, repeats=1):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, times


def machine():
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="scipy and the full grid on 450 starts only (a smoke run)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "point_fit.json"))
    args = ap.parse_args(argv)

    runs = load_chinchilla()
    law = get_law("chinchilla")
    grid = law.start_grid()
    full = grid if not args.quick else grid[:: 10]
    logs = (np.log(runs.N), np.log(runs.D), np.log(runs.loss))
    res = {"machine": machine(), "num_runs": len(runs), "grid_starts": len(full)}

    # --- scipy over the grid -----------------------------------------------------------------
    (sp_best, sp_vals), (sp_time,) = timed(lambda: scipy_grid(full, *logs))
    res["scipy"] = {"seconds": sp_time, "objective": float(sp_best.fun), "per_start_ms": 1e3 * sp_time / len(full),
                    "theta": sp_best.x.tolist()}

    # --- ours: default strategy, cold then warm ----------------------------------------------
    ours, (cold,) = timed(lambda: fit_point(law, runs, starts=full))
    _, warm = timed(lambda: fit_point(law, runs, starts=full), repeats=7)
    res["ours_screened"] = {"cold_seconds": cold, "warm_seconds": statistics.median(warm), "warm_all": warm,
                            "objective": ours.objective, "converged": ours.converged, "num_polished": ours.num_polished,
                            "params": ours.params}
    # --- ours: every start -------------------------------------------------------------------
    every, (t_every,) = timed(lambda: fit_point(law, runs, starts=full, num_polish=None))
    res["ours_every_start"] = {"cold_seconds": t_every, "objective": every.objective,
                               "num_converged_starts": every.num_converged_starts}

    # --- scaling with the number of starts ---------------------------------------------------
    rng = np.random.default_rng(0)
    starts_rows = []
    for n in (1, 10, 100, 1000) + ((4500,) if not args.quick else ()):
        sub = grid[rng.choice(len(grid), n, replace=False)] if n < len(grid) else grid
        fit_point(law, runs, starts=sub, num_polish=None)  # compile for this shape
        f_every, t_e = timed(lambda: fit_point(law, runs, starts=sub, num_polish=None), repeats=1 if n >= 1000 else 3)
        fit_point(law, runs, starts=sub)
        f_scr, t_s = timed(lambda: fit_point(law, runs, starts=sub), repeats=3)
        m = min(n, 100)
        _, (t_sp,) = timed(lambda: scipy_grid(sub[:m], *logs))
        starts_rows.append({"starts": n, "ours_every_start_s": min(t_e), "ours_screened_s": min(t_s),
                            "scipy_s": t_sp * n / m, "scipy_extrapolated": m < n,
                            "ours_every_objective": f_every.objective, "ours_screened_objective": f_scr.objective})
    res["scaling_starts"] = starts_rows

    # --- scaling with the number of runs -----------------------------------------------------
    truth = {"E": 1.8172, "A": 477.8, "B": 2143.4, "alpha": 0.3473, "beta": 0.3672}
    runs_rows = []
    for n in (240, 2400, 24000):
        N = np.exp(rng.uniform(np.log(5e7), np.log(2e10), n))
        D = np.exp(rng.uniform(np.log(1e9), np.log(3e11), n))
        y = np.asarray(law.predict(truth, {"N": N, "D": D})) * np.exp(0.01 * rng.standard_normal(n))
        df = pd.DataFrame({"N": N, "D": D, "loss": y})
        f, (t_cold,) = timed(lambda: fit_point(law, df))
        _, t_warm = timed(lambda: fit_point(law, df), repeats=3)
        runs_rows.append({"runs": n, "cold_s": t_cold, "warm_s": min(t_warm), "objective": f.objective,
                          "converged": f.converged})
    res["scaling_runs"] = runs_rows

    # --- the demo, end to end, fresh process -------------------------------------------------
    exe = [sys.executable, "-m", "bayes_scaling.cli", "demo", "--point-only"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    proc = subprocess.run(exe, capture_output=True, text=True, env=env)
    res["demo"] = {"seconds": time.perf_counter() - t, "exit_code": proc.returncode}

    # --- table ---------------------------------------------------------------------------------
    s, o = res["scipy"], res["ours_screened"]
    print(f"machine: {res['machine']['processor']}, {res['machine']['cpu_count']} cores, {res['machine']['backend']}, jax {jax.__version__}")
    print(f"Chinchilla Huber protocol, {len(runs)} runs, {len(full)}-start grid")
    print(f"{'method':<46}{'seconds':>10}{'objective':>22}{'speedup':>10}")
    print(f"{'scipy L-BFGS-B, every start':<46}{s['seconds']:>10.2f}{s['objective']:>22.15e}{1.0:>10.1f}")
    print(f"{'ours, every start (cold)':<46}{t_every:>10.2f}{every.objective:>22.15e}{s['seconds'] / t_every:>10.1f}")
    print(f"{'ours, screened + 32 polished (cold)':<46}{o['cold_seconds']:>10.2f}{o['objective']:>22.15e}{s['seconds'] / o['cold_seconds']:>10.1f}")
    print(f"{'ours, screened + 32 polished (warm, median)':<46}{o['warm_seconds']:>10.3f}{o['objective']:>22.15e}"
          f"{s['seconds'] / o['warm_seconds']:>10.1f}")
    res["objective_gap"] = abs(o["objective"] - s["objective"])
    res["speedup_warm"] = s["seconds"] / o["warm_seconds"]
    res["speedup_cold"] = s["seconds"] / o["cold_seconds"]
    print(f"|objective ours - scipy| = {res['objective_gap']:.2e}; warm speedup {res['speedup_warm']:.0f}x, cold {res['speedup_cold']:.0f}x")
    print(f"demo end to end (fresh process, cold): {res['demo']['seconds']:.1f} s, exit {proc.returncode}")
    print("\nstarts   ours every start (s)   ours screened (s)   scipy (s)")
    for r in starts_rows:
        print(f"{r['starts']:>6}   {r['ours_every_start_s']:>20.3f}   {r['ours_screened_s']:>17.3f}   {r['scipy_s']:>9.2f}"
              f"{' (extrap.)' if r['scipy_extrapolated'] else ''}")
    print("\nruns     cold (s)   warm (s)   objective")
    for r in runs_rows:
        print(f"{r['runs']:>6}   {r['cold_s']:>8.2f}   {r['warm_s']:>8.3f}   {r['objective']:.6g}{'' if r['converged'] else ' (not converged)'}")

    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2, default=float) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()

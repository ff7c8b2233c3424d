"""Posterior benchmark (issue 3): NUTS on the 240 Chinchilla runs against the bootstrap a peer would run.

    python benchmarks/bench_posterior.py [--out benchmarks/results/posterior.json] [--cpu-devices N] [--no-bootstrap]

In one run: time to a posterior (4 chains x 1000 warm-up + 1000 draws; cold = first call incl. compile,
warm = second call), bulk ESS per second for each parameter, and the 80% intervals of N_opt(5.76e23) and
the exponent a = beta/(alpha+beta); against 4000 bootstrap refits of the Huber protocol with scipy
L-BFGS-B (analytic gradients, each started at the full-data optimum) with tight tolerances (converged),
and, to show the pitfall of METHODS §1.1, with scipy's default tolerances. With `--cpu-devices N` (N > 1) the
runs above stay on one device and the same posterior is also timed with its 4 chains spread over the N CPU
devices (what the CLI does, one device per core).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
if "--cpu-devices" in sys.argv:  # before JAX runs anything
    jax.config.update("jax_num_cpu_devices", int(sys.argv[sys.argv.index("--cpu-devices") + 1]))
import numpy as np  # noqa: E402
from bench_point_fit import machine  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy_reference import chinchilla_huber  # noqa: E402

from bayes_scaling import compute_optimal, fit_point, load_chinchilla, sample_posterior  # noqa: E402

C_REF = 5.76e23


def bootstrap(runs, theta0, num, *, tight: bool, seed=0):
    logN, logD, logy = np.log(runs.N), np.log(runs.D), np.log(runs.loss)
    rng = np.random.default_rng(seed)
    opts = {"ftol": 1e-15, "gtol": 1e-12, "maxiter": 15000} if tight else {}
    out = np.empty((num, 5))
    for i in range(num):
        idx = rng.integers(0, len(logy), len(logy))
        r = minimize(chinchilla_huber, theta0, args=(logN[idx], logD[idx], logy[idx], 1e-3), jac=True,
                     method="L-BFGS-B", options=opts)
        out[i] = r.x
    return out


def bands(theta):
    p = {"E": np.exp(theta[:, 0]), "A": np.exp(theta[:, 1]), "B": np.exp(theta[:, 2]), "alpha": theta[:, 3], "beta": theta[:, 4]}
    n = np.asarray(compute_optimal("chinchilla", p, C_REF)[0])
    a = p["beta"] / (p["alpha"] + p["beta"])
    return np.quantile(n, [0.1, 0.5, 0.9]).tolist(), np.quantile(a, [0.1, 0.5, 0.9]).tolist()


def _iv(q, fmt):
    """An 80% interval (q = 10%, 50%, 90% quantiles) as text."""
    return f"({q[0]:{fmt}}, {q[2]:{fmt}})"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--num-boot", type=int, default=4000)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "posterior.json"))
    ap.add_argument("--cpu-devices", type=int, default=1, help="CPU devices (set before JAX starts)")
    ap.add_argument("--no-bootstrap", action="store_true", help="skip the scipy bootstrap baselines")
    args = ap.parse_args(argv)
    runs = load_chinchilla()
    res = {"machine": machine(), "num_runs": len(runs)}

    rows = []
    configs = (("cold", {}), ("warm", {}),
               ("vectorized chains, cold", {"chain_method": "vectorized"}), ("vectorized chains, warm", {"chain_method": "vectorized"}),
               ("4 x (500 + 500), cold", {"num_warmup": 500, "num_samples": 500}),
               ("4 x (500 + 500), warm", {"num_warmup": 500, "num_samples": 500}))
    n_dev = len(jax.devices())
    if n_dev > 1:
        configs += ((f"chains over {n_dev} devices, cold", {"devices": n_dev}), (f"chains over {n_dev} devices, warm", {"devices": n_dev}))
    for label, kw in configs:
        t = time.perf_counter()
        post = sample_posterior("chinchilla", runs, seed=0, **dict({"devices": 1}, **kw))
        sec = time.perf_counter() - t
        table = post.summary(prob=0.8)
        d = post.diagnostics()
        n_band = np.quantile(post.n_opt(C_REF), [0.1, 0.5, 0.9]).tolist()
        a_band = np.quantile(post.exponent_a(), [0.1, 0.5, 0.9]).tolist()
        rows.append({"run": label, "seconds": sec, "divergences": d["divergences"], "max_r_hat": d["max_r_hat"],
                     "min_ess_bulk": d["min_ess_bulk"], "ess_bulk": table["ess_bulk"].to_dict(),
                     "ess_per_second": (table["ess_bulk"] / sec).to_dict(), "n_opt_80": n_band, "a_80": a_band,
                     "mean_leapfrog_steps": float(post.sample_stats["n_steps"].mean())})
    res["nuts"] = rows

    theta0 = fit_point("chinchilla", runs).theta
    boot = {}
    for tight in () if args.no_bootstrap else (True, False):
        t = time.perf_counter()
        th = bootstrap(runs, np.asarray(theta0), args.num_boot, tight=tight)
        sec = time.perf_counter() - t
        n_band, a_band = bands(th)
        boot["tight" if tight else "default"] = {"seconds": sec, "n_opt_80": n_band, "a_80": a_band,
                                                 "moved": float(np.mean(np.any(np.abs(th - theta0) > 1e-6, axis=1)))}
    res["bootstrap"] = boot

    print(f"machine: {res['machine']['processor']}, {res['machine']['cpu_count']} cores, {res['machine']['backend']}, jax {jax.__version__}")
    print(f"{'method':<44}{'seconds':>9}{'min ESS':>9}{'N_opt(5.76e23) 80%':>26}{'a 80%':>18}")
    for r in rows:
        print(f"{'NUTS ' + r['run']:<44}{r['seconds']:>9.1f}{r['min_ess_bulk']:>9.0f}"
              f"{_iv(r['n_opt_80'], '.3g'):>26}{_iv(r['a_80'], '.3f'):>18}")
    for k, b in boot.items():
        print(f"{'bootstrap ' + str(args.num_boot) + ' L-BFGS-B, ' + k + ' tol':<44}{b['seconds']:>9.1f}{'-':>9}"
              f"{_iv(b['n_opt_80'], '.3g'):>26}{_iv(b['a_80'], '.3f'):>18}"
              f"  moved {100 * b['moved']:.0f}%")
    warm = rows[1]["seconds"]
    if boot:
        res["speedup_warm_vs_tight_bootstrap"] = boot["tight"]["seconds"] / warm
        print(f"tight bootstrap / warm NUTS (4 x 1000+1000): {res['speedup_warm_vs_tight_bootstrap']:.2f}x;"
              f" / warm NUTS (4 x 500+500): {boot['tight']['seconds'] / rows[5]['seconds']:.2f}x")
    if n_dev > 1:
        res["speedup_chains_spread_vs_one_device"] = warm / rows[-1]["seconds"]
        print(f"warm NUTS, one device / chains over {n_dev} devices: {res['speedup_chains_spread_vs_one_device']:.2f}x "
              f"(same draws: N_opt 80% {rows[1]['n_opt_80']} vs {rows[-1]['n_opt_80']})")
    print("ESS per second (warm, 4 x 1000+1000): " + ", ".join(f"{k} {v:.0f}" for k, v in rows[1]["ess_per_second"].items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

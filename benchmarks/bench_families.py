"""Families benchmark (issue 4): many families in one call against a Python loop of single fits.

    python benchmarks/bench_families.py [--sizes 10 100 1000 10000] [--post-sizes 10 100] [--grid-up-to 1000]
                                        [--cpu-devices N]

Synthetic families of 200 runs each (Chinchilla law, offsets E varying by family, 1% noise). Point fits:
`fit_point_batch` with the grid protocol (4500-start grid screened, 32 polished, as a single fit), with
num_polish=4, and with the warm protocol (8 pilot families on the grid, the others from the pilots' optima,
8 checked against the grid), against a loop of `fit_point` over the same families (timed on 20 families and
scaled linearly: its per-family cost does not depend on the count). Posteriors: `sample_posterior_batch`
against a loop of `sample_posterior` (timed on 5 families, scaled; beyond 100 families only the batch over
every device runs, once, its compile included), on one device and sharded over all the
CPU devices (`--cpu-devices`, default 1: one per core is what the CLI uses); with several devices the loop
is timed twice: every posterior on one device, and with each posterior's 4 chains spread over the devices
(`sample_posterior`'s default there), the loop's own best use of the cores. `--sizes` with no value skips the point fits.
Timings are warm (a first call on other
data of the same shape compiles it) up to 100 families and for the warm protocol at every size; the grid
protocols beyond 100 families include their ~3 s compile, and are skipped beyond --grid-up-to families
(about 0.2 s a family). Where both ran, the warm fits' objectives are compared with the grid's.
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
if "--cpu-devices" in sys.argv:  # before JAX runs anything
    jax.config.update("jax_num_cpu_devices", int(sys.argv[sys.argv.index("--cpu-devices") + 1]))
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench_point_fit import machine  # noqa: E402

from bayes_scaling import fit_point, get_law, load_runs, sample_posterior  # noqa: E402
from bayes_scaling.batch import fit_point_batch  # noqa: E402
from bayes_scaling.batch_posterior import sample_posterior_batch  # noqa: E402

LAW = get_law("chinchilla")
TRUTH = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.347, "beta": 0.367}


def families(F, n=200, seed=0):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(5e7), np.log(2e10), (F, n)))
    D = np.exp(rng.uniform(np.log(1e9), np.log(3e11), (F, n)))
    E = TRUTH["E"] * np.exp(0.05 * rng.standard_normal((F, 1)))
    y = (E + TRUTH["A"] * N ** -TRUTH["alpha"] + TRUTH["B"] * D ** -TRUTH["beta"]) * np.exp(0.01 * rng.standard_normal((F, n)))
    df = pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": y.ravel(), "fam": np.repeat([f"f{i:05d}" for i in range(F)], n)})
    return load_runs(df, family="fam")


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[10, 100, 1000, 10000])
    ap.add_argument("--cpu-devices", type=int, default=1, help="CPU devices to shard families over (set before JAX starts)")
    ap.add_argument("--post-sizes", type=int, nargs="*", default=[10, 100])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "families.json"))
    ap.add_argument("--grid-up-to", type=int, default=1000, help="run the grid protocols up to this many families")
    args = ap.parse_args(argv)
    res = {"machine": machine(), "runs_per_family": 200, "point": [], "posterior": []}
    big = families(max(args.sizes + args.post_sizes + [20]))
    fams = list(dict.fromkeys(big.family.tolist()))
    if args.sizes:
        single = [big.select(big.family == f) for f in fams[:20]]
        fit_point(LAW, single[0])
        _, t_loop = timed(lambda: [fit_point(LAW, s) for s in single])
        loop_per = t_loop / len(single)
    for F in args.sizes:
        runs = big.select(np.isin(big.family, fams[:F]))
        row = {"families": F, "loop_s (scaled)": loop_per * F}
        fits = {}
        variants = [("batch", {}), ("batch_polish4", {"num_polish": 4}), ("warm", {"protocol": "warm"})]
        if len(jax.devices()) > 1:  # the same warm protocol on one device, for the sharding's gain
            variants.append(("warm_1device", {"protocol": "warm", "devices": 1}))
        for label, kw in variants:
            if not label.startswith("warm") and F > args.grid_up_to:
                continue
            if F <= 100 or label.startswith("warm"):
                # compile this shape first (the grid protocols beyond 100 families include the ~3 s compile)
                _, row[f"{label}_cold_s"] = timed(lambda: fit_point_batch(LAW, families(F, seed=1), **kw))
            out, t = timed(lambda: fit_point_batch(LAW, runs, **kw))
            fits[label] = out
            row[f"{label}_s"] = t
            row[f"{label}_families_per_s"] = F / t
            row[f"{label}_ratio_vs_loop"] = loop_per * F / t
            row[f"{label}_converged"] = float(np.mean([f.converged for f in out.fits.values()]))
        if "batch" in fits:
            g, w = fits["batch"].fits, fits["warm"].fits
            row["warm_vs_grid_max_rel_objective"] = max(abs(w[k].objective - g[k].objective) / g[k].objective for k in g)
            row["warm_worse_than_grid_families"] = sum((w[k].objective - g[k].objective) / g[k].objective > 1e-9 for k in g)
        row["warm_check"] = {k: v for k, v in fits["warm"].check.items() if k != "pilots"} if fits["warm"].check else None
        res["point"].append(row)
        print(row, flush=True)
    n_dev = len(jax.devices())
    if args.post_sizes:
        post_single = [big.select(big.family == f) for f in fams[:5]]
        sample_posterior(LAW, post_single[0], devices=1)
        _, t_ploop = timed(lambda: [sample_posterior(LAW, s, devices=1) for s in post_single])
        ploop_per = t_ploop / len(post_single)
        if n_dev > 1:  # the loop's own best: each posterior's 4 chains spread over the devices
            sample_posterior(LAW, post_single[0])
            _, t_sloop = timed(lambda: [sample_posterior(LAW, s) for s in post_single])
            sloop_per = t_sloop / len(post_single)
    for F in args.post_sizes:
        runs = big.select(np.isin(big.family, fams[:F]))
        row = {"families": F, "loop_s (scaled)": ploop_per * F, "devices": n_dev}
        for label, devs in (("batch", 1), ("batch_sharded", n_dev)):
            if (label == "batch_sharded" and n_dev == 1) or (label == "batch" and n_dev > 1 and F > 100):
                continue  # beyond 100 families only the batch over every device runs (1000 take ~15 min)
            if F <= 100:
                sample_posterior_batch(LAW, families(F, seed=2), devices=devs)  # compile this shape
            else:
                row["cold (includes the compile, ~10 s)"] = True
            out, t = timed(lambda: sample_posterior_batch(LAW, runs, devices=devs))
            row.update({f"{label}_s": t, f"{label}_families_per_s": F / t, f"{label}_ratio_vs_loop": ploop_per * F / t,
                        f"{label}_failing": len(out.failing())})
            if n_dev > 1:
                row["loop_chains_spread_s (scaled)"] = sloop_per * F
                row[f"{label}_ratio_vs_loop_chains_spread"] = sloop_per * F / t
        res["posterior"].append(row)
        print(row, flush=True)
    print(f"\nmachine: {res['machine']['processor']}, {res['machine']['cpu_count']} cores, {res['machine']['backend']}")
    print(f"point fits (warm timings, {n_dev} CPU device(s)):  families  loop(s)  grid(s)  ratio  num_polish=4(s)  ratio  "
          "warm protocol(s)  ratio  warm>grid  warm, 1 device(s)  ratio")
    g = lambda r, k, f: f.format(r[k]) if k in r else "-"
    for r in res["point"]:
        print(f"{r['families']:>34}  {r['loop_s (scaled)']:>7.1f}  {g(r, 'batch_s', '{:.1f}'):>7}  {g(r, 'batch_ratio_vs_loop', '{:.2f}'):>5}"
              f"  {g(r, 'batch_polish4_s', '{:.1f}'):>15}  {g(r, 'batch_polish4_ratio_vs_loop', '{:.2f}'):>5}"
              f"  {r['warm_s']:>16.1f}  {r['warm_ratio_vs_loop']:>5.1f}  {g(r, 'warm_worse_than_grid_families', '{}'):>9}"
              f"  {g(r, 'warm_1device_s', '{:.1f}'):>17}  {g(r, 'warm_1device_ratio_vs_loop', '{:.1f}'):>5}")
    print(f"posteriors (warm, 4 x (1000 + 1000), {n_dev} CPU device(s)):")
    print("families  loop, 1 device(s)  loop, chains spread(s)  batch, 1 device(s)  ratio  batch, sharded(s)  "
          "ratio vs loop 1 device  vs loop chains spread  failing")
    for r in res["posterior"]:
        print(f"{r['families']:>8}  {r['loop_s (scaled)']:>17.1f}  {g(r, 'loop_chains_spread_s (scaled)', '{:.1f}'):>22}"
              f"  {g(r, 'batch_s', '{:.1f}'):>18}  {g(r, 'batch_ratio_vs_loop', '{:.2f}'):>5}"
              f"  {g(r, 'batch_sharded_s', '{:.1f}'):>17}  {g(r, 'batch_sharded_ratio_vs_loop', '{:.2f}'):>22}"
              f"  {g(r, 'batch_sharded_ratio_vs_loop_chains_spread', '{:.2f}'):>20}  {r.get('batch_sharded_failing', r.get('batch_failing')):>7}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

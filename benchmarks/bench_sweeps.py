"""Sweeps benchmark (issue 5): critical-batch-size and IsoFLOP posteriors, one batched call against a loop.

    python benchmarks/bench_sweeps.py [--chains 2 --warmup 500 --draws 500] [--out benchmarks/results/sweeps.json]

1. Critical batch size on Zhang et al.'s 45 runs (5 model sizes): all five sizes in one padded model (one
   NUTS run) against a loop of five single-size posteriors.
2. IsoFLOP posteriors of all 15 Porian et al. configurations: `isoflop_batch` (configurations padded to
   12 budgets x the largest window and masked; one compiled call, `sampling._families_fn`) against a loop
   of `isoflop` per configuration (each configuration has its own shapes, so the loop compiles 15 times).

Each is timed cold (first call: compile + run) and warm (the same call again with another seed; compiled
code reused). Reports the two acceptance configurations' exponent a with 95% intervals and the sampler
health of every configuration.
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

from bayes_scaling.analyses.batch_size import critical_batch_size, load_batch_sweep  # noqa: E402
from bayes_scaling.analyses.isoflop import isoflop, isoflop_batch  # noqa: E402

DATA = ROOT.parents[0] / "shared" / "data"
CONFIG = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]
TUNED = "rw/tuned/short/const/standard/val"
KAPLAN = "rw/base/long/kaplan/kaplan/train"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sweeps.json"))
    args = ap.parse_args(argv)
    kw = dict(num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains)
    warnings.simplefilter("ignore")
    result = {"machine": machine(), "settings": kw}

    # ---- critical batch size --------------------------------------------------------------------
    path = DATA / "zhang2024_critical_batch" / "steps_to_target_loss_DERIVED.csv"
    df = pd.read_csv(path)
    cols = dict(batch="batch_size_seqs", steps="steps_to_target")
    joint = lambda seed: critical_batch_size(load_batch_sweep(df, group="model_size", **cols), seed=seed, **kw)
    sizes = list(dict.fromkeys(df["model_size"]))
    loop = lambda seed: [critical_batch_size(load_batch_sweep(df[df.model_size == s], **cols), seed=seed, **kw) for s in sizes]
    post, j_cold = timed(lambda: joint(0))
    _, j_warm = timed(lambda: joint(1))
    _, l_cold = timed(lambda: loop(0))
    _, l_warm = timed(lambda: loop(1))
    t = post.table(0.9)
    law = post.scaling_law("N_params_nominal", num_warmup=1000, num_samples=1000, num_chains=4)
    p = law.exponents["N_params_nominal"]
    result["critical_batch"] = {
        "joint_cold_s": j_cold, "joint_warm_s": j_warm, "loop_cold_s": l_cold, "loop_warm_s": l_warm,
        "cbs": t[["group", "cbs_zhang", "cbs_zhang_lo", "cbs_zhang_hi", "B_crit", "B_crit_lo", "B_crit_hi"]].to_dict(orient="records"),
        "diagnostics": post.diagnostics(),
        "size_law_exponent": {"median": float(np.median(p)), "eti90": [float(x) for x in np.quantile(p, [0.05, 0.95])],
                              "eti95": [float(x) for x in np.quantile(p, [0.025, 0.975])]},
        "size_law_diagnostics": law.diagnostics(),
    }
    print(f"critical batch size (Zhang, 5 sizes): joint {j_cold:.1f} s cold / {j_warm:.1f} s warm; loop of 5: "
          f"{l_cold:.1f} s cold / {l_warm:.1f} s warm; ratio warm {l_warm / j_warm:.2f}x, cold {l_cold / j_cold:.2f}x")
    print(t[["group", "cbs_zhang", "cbs_zhang_lo", "cbs_zhang_hi"]].round(1).to_string(index=False))
    print(f"size law exponent: {np.median(p):.3f} (90%: {np.quantile(p, 0.05):.3f}, {np.quantile(p, 0.95):.3f})")

    # ---- IsoFLOP, 15 configurations -------------------------------------------------------------
    pts = pd.read_csv(DATA / "porian2024_isoflop" / "isoflop_points.csv")
    iso = dict(C="flops", N="n", D="t")
    batch = lambda seed: isoflop_batch(pts, by=CONFIG, seed=seed, **iso, **kw)
    labels = list(dict.fromkeys(pts[CONFIG].astype(str).agg("/".join, axis=1)))

    def loop_iso(seed):
        out = {}
        for lab in labels:
            sub = pts[pts[CONFIG].astype(str).agg("/".join, axis=1) == lab]
            out[lab] = isoflop(sub, seed=seed, **iso, **kw)
        return out

    posts, b_cold = timed(lambda: batch(0))
    _, b_warm = timed(lambda: batch(1))
    lposts, i_cold = timed(lambda: loop_iso(0))
    _, i_warm = timed(lambda: loop_iso(1))
    summary = json.loads((DATA / "porian2024_isoflop" / "fit_summary.json").read_text())
    theirs = {"/".join(str(s[c]) for c in CONFIG): s for s in summary}
    rows = []
    for lab, post in posts.items():
        d = post.diagnostics()
        lo, hi = np.quantile(post.a, [0.025, 0.975])
        rows.append({"config": lab, "a": float(np.median(post.a)), "a_lo95": float(lo), "a_hi95": float(hi),
                     "a_porian": theirs[lab]["a_N_opt_exponent"], "a_porian_ci95": theirs[lab]["a_CI95"],
                     "a_loop": float(np.median(lposts[lab].a)), "budgets": post.data.num_budgets,
                     "divergences": d["divergences"], "max_r_hat": d["max_r_hat"], "min_ess_bulk": d["min_ess_bulk"],
                     "off_centre_budgets": sum("off-centre" in w for w in post.warnings)})
    result["isoflop"] = {"batch_cold_s": b_cold, "batch_warm_s": b_warm, "loop_cold_s": i_cold, "loop_warm_s": i_warm,
                         "configurations": rows}
    print(f"IsoFLOP, 15 configurations: batch {b_cold:.1f} s cold / {b_warm:.1f} s warm; loop {i_cold:.1f} s cold / "
          f"{i_warm:.1f} s warm; ratio warm {i_warm / b_warm:.2f}x, cold {i_cold / b_cold:.2f}x")
    print(pd.DataFrame(rows)[["config", "a", "a_lo95", "a_hi95", "a_porian", "divergences", "max_r_hat", "min_ess_bulk"]]
          .round(4).to_string(index=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

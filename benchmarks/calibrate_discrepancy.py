"""Backtests over the shared corpora and the extrapolation discrepancy's calibration (issue 14).

    python benchmarks/calibrate_discrepancy.py [--write-prior] [--out benchmarks/results/backtests.json]

How the shipped discrepancy prior is set (``bayes_scaling/datasets/discrepancy_prior.json``):

1. Rolling-origin backtests, leave the future out, on three public corpora (copies in ``tests/data``):
   Porian et al. 2024 (15 IsoFLOP configurations, Chinchilla law on (N, D); each configuration fitted on its budgets
   up to the k-th, k = 6..11, and every run at a larger budget forecast), Epoch's Chinchilla runs (cut at 1e20 and
   1e21 FLOPs) and Muennighoff et al. 2023 (the data-constrained law on (N, D, U), cut by compute at its 50-90%
   quantiles). Each held-out run keeps its posterior-predictive draws (parameters and noise).
2. The discrepancy's scales tau (per unit log-distance beyond the data in C, N and D) are those maximising the
   held-out runs' total log predictive density, pooled over the corpora; the spread of log tau (``log_sd``) is the
   standard deviation over the corpora of the factor each corpus alone prefers.
3. Leave one corpus out: for each corpus, the scales are calibrated on the other two and scored on it. The pooled
   prior's numbers are what the package uses; the leave-one-out rows are the honest test of it.

Coverage is reported per corpus and pooled, without the discrepancy (parameters and noise only, what the posterior
alone claims), with the pooled calibration (in-sample) and with the leave-one-corpus-out calibration.
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
from bench_point_fit import machine  # noqa: E402

from bayes_scaling import load_chinchilla, load_runs  # noqa: E402
from bayes_scaling.backtests import backtest  # noqa: E402
from bayes_scaling.discrepancy import calibrate  # noqa: E402

DATA = ROOT / "tests" / "data"
PORIAN_CONFIG = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]


def corpora(which):
    out = {}
    if "porian" in which:
        runs = load_runs(DATA / "isoflop_points.csv", N="n", D="t", C="flops", loss="loss", family=PORIAN_CONFIG)
        out["porian"] = dict(law="chinchilla", runs=runs, kw={"levels": list(range(6, 12))})
    if "chinchilla" in which:
        out["chinchilla"] = dict(law="chinchilla", runs=load_chinchilla(), kw={"cuts": [1e20, 1e21]})
    if "muennighoff" in which:
        runs = load_runs(DATA / "c4_runs_default_fit_subset_DERIVED.csv", N="N_params", D="D_tokens", U="U_unique_tokens",
                         loss="val_loss")
        out["muennighoff"] = dict(law="data_constrained", runs=runs, kw={})
    return out


def coverage_row(bt, label):
    p = bt.pooled().iloc[0].to_dict()
    return {"what": label, "held_out": int(p["held_out"]), **{k: round(float(v), 4) for k, v in p.items()
                                                             if k.startswith(("coverage", "median_abs", "mean_width", "mean_log", "mean_pit"))}}


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpora", nargs="+", default=["porian", "chinchilla", "muennighoff"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "backtests.json"))
    ap.add_argument("--write-prior", action="store_true", help="write bayes_scaling/datasets/discrepancy_prior.json")
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--absolute", action="store_true", help="discrepancy scales in log-loss units, not multiples of sigma")
    ap.add_argument("--cache", default=None, help="keep the backtests in this pickle and reuse them (calibration only)")
    ap.add_argument("--no-isoflop", action="store_true", help="skip the IsoFLOP (N_opt at the next budget) backtest")
    ap.add_argument("--only-isoflop", action="store_true", help="run only the IsoFLOP backtest (writes OUT_isoflop.json)")
    args = ap.parse_args(argv)
    res = {"machine": machine(), "corpora": {}, "sampler": {"num_warmup": args.warmup, "num_samples": args.draws}}
    bts = {}
    if args.only_isoflop:
        args.corpora = ["porian"]
    import bayes_scaling.backtests

    sys.modules.setdefault("bayes_scaling.backtest", bayes_scaling.backtests)  # caches written before the module's rename
    cached = pickle.loads(Path(args.cache).read_bytes()) if args.cache and Path(args.cache).exists() else {}
    for bt in cached.values():  # fields added since the cache was written
        if "train_lpd" not in bt.__dict__:
            object.__setattr__(bt, "train_lpd", {})
    for name, c in ({} if args.only_isoflop else corpora(args.corpora)).items():
        t = time.perf_counter()
        bt = cached.get(name) or backtest(c["law"], c["runs"], num_warmup=args.warmup, num_samples=args.draws,
                                          target_accept=0.95, **c["kw"])
        bts[name] = bt
        unhealthy = sorted({w.split(":")[0] for w in bt.health.warnings})
        res["corpora"][name] = {"law": c["law"], "seconds": round(time.perf_counter() - t, 1), "cuts": len(bt.cuts),
                                "held_out": len(bt.points), "health": str(bt.health), "unhealthy_cuts": unhealthy}
        print(f"{name}: {len(bt.cuts)} cuts, {len(bt.points)} held-out runs, {res['corpora'][name]['seconds']} s; {bt.health}; "
              f"unhealthy cuts: {len(unhealthy)}", flush=True)
    if args.cache and not args.only_isoflop:
        Path(args.cache).write_bytes(pickle.dumps(bts))
    if "porian" in args.corpora and not args.no_isoflop:
        import pandas as pd

        from bayes_scaling.analyses.isoflop_backtest import backtest_isoflop

        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iso = backtest_isoflop(pd.read_csv(DATA / "isoflop_points.csv"), by=PORIAN_CONFIG, C="flops", N="n", D="t",
                                   num_warmup=args.warmup, num_samples=args.draws)
        per = iso.groupby("configuration").agg(cuts=("inside_90", "size"), inside_90=("inside_90", "mean"),
                                               last_cut_inside_90=("inside_90", "last"))
        iso_res = {"seconds": round(time.perf_counter() - t, 1), "cuts": len(iso),
                          "coverage": {p: float(iso[f"inside_{p}"].mean()) for p in ("50", "80", "90")},
                          "configurations_all_cuts_inside_90": int((per["inside_90"] == 1).sum()),
                          "configurations_last_cut_inside_90": int(per["last_cut_inside_90"].sum()),
                          "configurations": len(per), "healthy_cuts": int(iso["healthy"].sum()),
                          "rows": iso.round(6).to_dict(orient="records")}
        print(f"isoflop N_opt at the next budget: {len(iso)} cuts of {len(per)} configurations, coverage "
              f"{iso_res['coverage']}; configurations with every cut inside 90%: "
              f"{iso_res['configurations_all_cuts_inside_90']}, last cut inside: "
              f"{iso_res['configurations_last_cut_inside_90']}", flush=True)
        iso_path = Path(args.out).with_name(Path(args.out).stem + "_isoflop.json")
        iso_path.write_text(json.dumps({"machine": res["machine"], "sampler": res["sampler"], **iso_res}, indent=2, default=str))
        print(f"wrote {iso_path}")
    if args.only_isoflop:
        return
    rel = not args.absolute
    pooled, record = calibrate(bts, source="pooled backtests over " + ", ".join(bts), relative=rel)
    res["pooled_calibration"] = record
    loco = {}
    for name in bts:
        if len(bts) > 1:
            loco[name], _ = calibrate({k: v for k, v in bts.items() if k != name}, source=f"calibrated without {name}",
                                      relative=rel)
    rows = []
    for name, bt in bts.items():
        rows.append({"corpus": name, **coverage_row(bt, "parameters + noise")})
        rows.append({"corpus": name, **coverage_row(bt.rescored(pooled), "with discrepancy (pooled calibration)")})
        if name in loco:
            rows.append({"corpus": name, **coverage_row(bt.rescored(loco[name]), "with discrepancy (calibrated without it)")})
            rows.append({"corpus": name, **coverage_row(bt.sequentially_updated(loco[name]),
                                                        "calibrated without it, updated by its earlier cuts")})
        if name == "porian":
            per_cfg = bt.rescored(loco.get(name, pooled)).pooled("family")
            res["porian_per_configuration"] = per_cfg.round(4).to_dict(orient="records")
    res["coverage"] = rows
    res["discrepancy"] = {"pooled": pooled.to_dict(), "leave_one_corpus_out": {k: v.to_dict() for k, v in loco.items()}}
    print(f"pooled discrepancy: tau = {pooled.tau}, log_sd = {pooled.log_sd:.3f}")
    for k, v in loco.items():
        print(f"  without {k}: tau = {v.tau}, log_sd = {v.log_sd:.3f}")
    head = ["corpus", "what", "held_out", "coverage_50", "coverage_80", "coverage_90", "median_abs_error_%", "mean_width_90_%"]
    print(" | ".join(head))
    for r in rows:
        print(" | ".join(str(r.get(h, "")) for h in head))
    Path(args.out).write_text(json.dumps(res, indent=2, default=str))
    print(f"wrote {args.out}")
    if args.write_prior:
        path = ROOT / "bayes_scaling" / "datasets" / "discrepancy_prior.json"
        path.write_text(json.dumps({"how": "benchmarks/calibrate_discrepancy.py (see its text)", "pooled": pooled.to_dict(),
                                    "leave_one_corpus_out": {k: v.to_dict() for k, v in loco.items()},
                                    "per_corpus": record["corpora"]}, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

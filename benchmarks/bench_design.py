"""Which run next (issue 15, part 4): does adding the recommended runs narrow log N_opt(1e24) for fewer FLOPs than
adding the runs of a standard IsoFLOP grid?

    python benchmarks/bench_design.py [--studies 20] [--design-steps 8] [--per-step 3] [--chains 4 --warmup 500 --draws 500]
                                      [--out benchmarks/results/design.json]

Simulated studies from a known Chinchilla law (the Epoch fit as truth; Student-t(4) noise of scale 0.005 on log loss,
sd 0.7%, the scatter of Epoch's Chinchilla runs). Each study starts from the same 12 small runs (IsoFLOP budgets 1e17,
3e17 and 1e18, four sizes each) with its own noise, then grows in three arms:

* grid: a standard IsoFLOP grid, budget by budget (3e18, 1e19, 3e19, 1e20, 3e20; five sizes each, N_opt/4 .. 4 N_opt
  about the truth's optimum, so D/N from 1.25 to 320), five runs per step;
* design (and design-precision, ranking by the precision gain per FLOP instead): at each step, ``propose_batch``
  (expected reduction of the variance of log N_opt(1e24) per FLOP, :mod:`bayes_scaling.design`) picks ``--per-step``
  runs on the study's current posterior from 35 candidates: the same budgets at seven sizes, N_opt/8 .. 8 N_opt (the
  grid's five among them; a user's candidate list is free to reach the extreme tokens-per-parameter ratios that pin
  the two exponents apart).

After every step every study's posterior is sampled again (all studies and arms in one batched call), and the
90% interval width of log N_opt(1e24) recorded against the cumulative FLOPs of the added runs. Reported: per study,
the FLOPs each arm needs to reach the width the grid reaches with all 25 runs (and with its first 3 budgets), their
ratio (grid / design; target >= 2, averaged over studies), and the median curves (figure and JSON).
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
jax.config.update("jax_num_cpu_devices", 2)  # both cores: the studies are sharded over them
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from bench_point_fit import machine  # noqa: E402

from bayes_scaling import load_runs, sample_posterior_batch  # noqa: E402
from bayes_scaling.design import propose_batch, target_draws  # noqa: E402

TRUTH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.34781, "beta": 0.36585}
SCALE, NU = 0.005, 4.0
START_BUDGETS, START_RATIOS = (1e17, 3e17, 1e18), (5.0, 14.0, 40.0, 110.0)
GRID_BUDGETS, GRID_FACTORS = (3e18, 1e19, 3e19, 1e20, 3e20), (0.25, 0.5, 1.0, 2.0, 4.0)
#: the design's candidates: the same budgets at more sizes (N_opt/8 .. 8 N_opt, D/N from 0.3 to 1300), the grid's among them
DESIGN_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
TARGET = "N_opt@1e24"
#: the design arms and the utility each ranks by (bayes_scaling.design.UTILITIES)
DESIGN_ARMS = {"design": "variance", "design-precision": "precision"}


def n_opt(C):
    a, b = TRUTH["alpha"], TRUTH["beta"]
    G = (a * TRUTH["A"] / (b * TRUTH["B"])) ** (1 / (a + b))
    return G * (C / 6) ** (b / (a + b))


def start_design():
    return [(np.sqrt(C / 6 / r), C / 6 / np.sqrt(C / 6 / r)) for C in START_BUDGETS for r in START_RATIOS]


def grid(factors=GRID_FACTORS):
    return [(f * n_opt(C), C / 6 / (f * n_opt(C))) for C in GRID_BUDGETS for f in factors]


def observe(points, rng):
    N, D = np.array(points).T
    mu = np.log(TRUTH["E"] + TRUTH["A"] * N ** -TRUTH["alpha"] + TRUTH["B"] * D ** -TRUTH["beta"])
    return np.exp(mu + SCALE * rng.standard_t(NU, len(N)))


def sample(studies: dict, args, step):
    rows = [{"N": n, "D": d, "loss": y, "fam": fam} for fam, (pts, ys) in studies.items() for (n, d), y in zip(pts, ys)]
    runs = load_runs(pd.DataFrame(rows), family="fam")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = sample_posterior_batch("chinchilla", runs, num_chains=args.chains, num_warmup=args.warmup, num_samples=args.draws,
                                       seed=step, target_accept=0.95)
    return batch


def width(post) -> float:
    t = target_draws(post, TARGET)
    return float(np.diff(np.quantile(t, [0.05, 0.95]))[0])


def flops_to_reach(flops, widths, w) -> float:
    """The cumulative FLOPs at which a curve first reaches width ``w`` (log-linear between steps); inf if never."""
    for i in range(len(widths)):
        if widths[i] <= w:
            if i == 0:
                return float(flops[0])
            f0, f1, w0, w1 = flops[i - 1], flops[i], widths[i - 1], widths[i]
            t = (w0 - w) / (w0 - w1) if w0 != w1 else 1.0
            return float(np.exp(np.log(max(f0, 1.0)) + t * (np.log(f1) - np.log(max(f0, 1.0))))) if f0 > 0 else float(f1 * t)
    return float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=20)
    ap.add_argument("--design-steps", type=int, default=8)
    ap.add_argument("--per-step", type=int, default=3)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "design.json"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    grid_runs = np.array(grid())
    C_grid = 6 * grid_runs[:, 0] * grid_runs[:, 1]
    cands = np.array(grid(DESIGN_FACTORS))
    C_cand = 6 * cands[:, 0] * cands[:, 1]
    rngs = {s: np.random.default_rng(1000 + s) for s in range(args.studies)}
    start = {s: (start_design(), list(observe(start_design(), rngs[s]))) for s in range(args.studies)}
    arms = {("grid", s): (list(start[s][0]), list(start[s][1])) for s in range(args.studies)}
    for arm in DESIGN_ARMS:
        arms |= {(arm, s): (list(start[s][0]), list(start[s][1])) for s in range(args.studies)}
    curves = {key: {"flops": [0.0], "width": []} for key in arms}
    chosen = {(arm, s): set() for arm in DESIGN_ARMS for s in range(args.studies)}
    steps = max(args.design_steps, len(GRID_BUDGETS))
    for step in range(steps + 1):
        live = {k: v for k, v in arms.items()
                if (k[0] in DESIGN_ARMS and step <= args.design_steps) or (k[0] == "grid" and step <= len(GRID_BUDGETS))}
        if step == 0:
            live = {k: v for k, v in live.items() if k[0] == "grid"}  # both arms start from the same runs
        batch = sample(({f"{a}-{s:02d}": v for (a, s), v in live.items()}), args, step)
        for (a, s) in live:
            post = batch.posteriors[f"{a}-{s:02d}"]
            w = width(post)
            curves[(a, s)]["width"].append(w)
            for arm in (DESIGN_ARMS if step == 0 else [a] if a in DESIGN_ARMS else []):
                key = (arm, s)
                if step == 0:
                    curves[key]["width"].append(w)
                if step < args.design_steps:
                    free = [j for j in range(len(cands)) if j not in chosen[key]]
                    prop = propose_batch(post, cands[free], TARGET, args.per_step, outcomes=64, draws=800, seed=step,
                                         utility=DESIGN_ARMS[arm])
                    picks = [free[j] for j in prop["candidate"]]
                    chosen[key].update(picks)
                    pts = [tuple(cands[j]) for j in picks]
                    arms[key][0].extend(pts)
                    arms[key][1].extend(observe(pts, rngs[s]))
                    curves[key]["flops"].append(curves[key]["flops"][-1] + float(C_cand[picks].sum()))
            if a == "grid" and step < len(GRID_BUDGETS):
                idx = list(range(5 * step, 5 * step + 5))
                pts = [tuple(grid_runs[j]) for j in idx]
                arms[(a, s)][0].extend(pts)
                arms[(a, s)][1].extend(observe(pts, rngs[s]))
                curves[(a, s)]["flops"].append(curves[(a, s)]["flops"][-1] + float(C_grid[idx].sum()))
        print(f"step {step}: {len(live)} posteriors in {batch.seconds:.0f} s "
              f"({len(batch.failing())} flagged); {time.perf_counter() - t0:.0f} s so far", flush=True)
    for c in curves.values():  # the last proposal was never sampled
        c["flops"] = c["flops"][:len(c["width"])]
    per_study, summary = [], {}
    for arm in DESIGN_ARMS:
        for s in range(args.studies):
            g, d = curves[("grid", s)], curves[(arm, s)]
            row = {"arm": arm, "study": s}
            for name, w in (("all 25 grid runs", g["width"][-1]), ("3 grid budgets", g["width"][3])):
                fg, fd = flops_to_reach(g["flops"], g["width"], w), flops_to_reach(d["flops"], d["width"], w)
                row[f"grid FLOPs ({name})"], row[f"design FLOPs ({name})"] = fg, fd
                row[f"ratio ({name})"] = fg / fd if np.isfinite(fd) and fd > 0 else 0.0
            per_study.append(row)
    df = pd.DataFrame(per_study)
    for arm in DESIGN_ARMS:
        sub = df[df["arm"] == arm]
        summary[arm] = {"per study": {}, "median curves": _median_curve_ratios(curves, arm)}
        for name in ("all 25 grid runs", "3 grid budgets"):
            r = sub[f"ratio ({name})"].to_numpy()
            ok = r > 0
            summary[arm]["per study"][name] = {
                "studies": int(len(r)), "design reached it": int(ok.sum()),
                "geometric mean ratio (reached)": float(np.exp(np.mean(np.log(r[ok])))) if ok.any() else None,
                "median ratio (all; 0 where not reached)": float(np.median(r))}
    print(df.round(3).to_string())
    print(json.dumps(summary, indent=2))
    out = {"machine": machine(), "seconds": time.perf_counter() - t0, "settings": vars(args), "truth": TRUTH,
           "noise": {"student_t_nu": NU, "scale": SCALE}, "summary": summary, "per_study": per_study,
           "curves": {f"{a}-{s:02d}": c for (a, s), c in curves.items()}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=float))
    _figure(curves, args, Path(args.out).with_suffix(".png"))
    print(f"wrote {args.out}")


def _median_curves(curves, arm):
    keys = [k for k in curves if k[0] == arm]
    n = min(len(curves[k]["width"]) for k in keys)
    return (np.median([curves[k]["flops"][:n] for k in keys], axis=0), np.median([curves[k]["width"][:n] for k in keys], axis=0),
            np.array([curves[k]["width"][:n] for k in keys]))


def _median_curve_ratios(curves, arm) -> dict:
    """On the median curves over the studies: the grid's FLOPs over the design's to reach each width the grid
    reaches after each of its budgets."""
    gF, gW, _ = _median_curves(curves, "grid")
    dF, dW, _ = _median_curves(curves, arm)
    out = {}
    for i in range(1, len(gW)):
        fd = flops_to_reach(dF, dW, gW[i])
        out[f"width {gW[i]:.3f} (grid after {i} budgets, {gF[i]:.3g} FLOPs)"] = {
            "design FLOPs": fd, "ratio": float(gF[i] / fd) if np.isfinite(fd) and fd > 0 else None}
    return out


def _figure(curves, args, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for arm, colour in (("grid", "C0"), ("design", "C1"), ("design-precision", "C2")):
        F, W, all_w = _median_curves(curves, arm)
        ax.plot(np.maximum(F, 1e17), W, "o-", c=colour, label=f"{arm} (median of {len(all_w)} studies)")
        ax.fill_between(np.maximum(F, 1e17), *np.quantile(all_w, [0.25, 0.75], axis=0), color=colour, alpha=0.2)
    ax.set(xscale="log", xlabel="FLOPs spent on added runs (start drawn at 1e17)",
           ylabel="90% width of log N_opt(1e24)", title="Which run next: design vs IsoFLOP grid")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()

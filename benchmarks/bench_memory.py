"""Peak memory of `bayes-scaling fit` on large run tables: this tree against a baseline commit, side by side.

The fit screens the law's 4500-start grid at every run before polishing the best starts; evaluated all at once
that holds starts x runs doubles in each intermediate. Under the Huber objective XLA fuses the screen into one
reduction and never holds them; under a likelihood objective (``--objective student_t``, and the MAP fit every
posterior starts from) it does: 6.9 GB at 30,000 runs before the fix, growing as starts x runs (18.5 GB was met
at 100,000). The screen now runs in batches of starts (``defaults.ELEMENTS_AT_ONCE`` starts x runs at a time).

Each measurement is a fresh process (``python -m bayes_scaling.cli fit ...``) whose own peak resident memory is
read from ``os.wait4`` when it exits; the tables are Chinchilla-law losses with 1% noise.

    python benchmarks/bench_memory.py          # 1k, 10k, 30k, 100k runs, Huber and Student-t; baseline up to 30k runs
    python benchmarks/bench_memory.py --baseline-max 100000   # the baseline at 100k too (Student-t: ~23 GB, may fail)

Writes ``benchmarks/results/memory.json``.
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

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "94db273"


def table(n: int, path: Path, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(3e7), np.log(3e10), n))
    D = np.exp(rng.uniform(np.log(5e8), np.log(5e11), n))
    loss = (1.8 + 480 * N ** -0.35 + 2100 * D ** -0.37) * np.exp(0.01 * rng.standard_normal(n))
    pd.DataFrame({"N": N, "D": D, "loss": loss}).to_csv(path, index=False)


def baseline_tree() -> Path:
    tree = Path(tempfile.gettempdir()) / "bs_baseline"
    if not (tree / "bayes_scaling").is_dir():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), BASELINE], check=True,
                       capture_output=True)
    return tree


def measure(tree: Path, csv: Path, out_json: Path, objective: str) -> dict:
    """One fresh process fitting ``csv``: wall seconds, its own peak RSS (MB, from ``os.wait4``), exit code."""
    env = dict(os.environ, PYTHONPATH=str(tree), BAYES_SCALING_CACHE_DIR="off", BAYES_SCALING_CPU_DEVICES="1")
    if objective == "huber_loss" and "huber_loss" not in (tree / "bayes_scaling" / "fitting.py").read_text():
        objective = "huber"  # the baseline's name for the Huber protocol
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "bayes_scaling.cli", "fit", str(csv), "--budgets", "1e21",
                                 "--objective", objective, "--json", str(out_json), "--force"], stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=out_json.parent)
        # cwd: "python -m" puts the working folder first on the import path; from a checkout it would import that
        # checkout's package whatever PYTHONPATH says
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        text = log.read()
    res = {"seconds": round(seconds, 2), "peak_mb": round(usage.ru_maxrss / 1024, 1), "exit": proc.returncode}
    if proc.returncode not in (0, 1):
        res["error"] = text[-400:]
    else:
        res["objective"] = json.loads(out_json.read_text())["objective"]
    return res


def one_size(base: Path, tmp: Path, objective: str, n: int, baseline_max: int) -> dict:
    csv = tmp / f"runs_{n}.csv"
    if not csv.exists():
        table(n, csv)
    row = {"objective": objective, "runs": n, "new": measure(ROOT, csv, tmp / "new.json", objective)}
    row["baseline"] = measure(base, csv, tmp / "base.json", objective) if n <= baseline_max else None
    b, new = row["baseline"], row["new"]
    print(f"{objective:>9} {n:>8} runs: new {new['peak_mb']:>8.0f} MB {new['seconds']:>7.1f} s"
          + (f"   baseline {b['peak_mb']:>8.0f} MB {b['seconds']:>7.1f} s   ratio {b['peak_mb'] / new['peak_mb']:.1f}x"
             if b else "   baseline not run (--baseline-max)"), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", type=int, default=[1_000, 10_000, 30_000, 100_000])
    ap.add_argument("--objectives", nargs="+", default=["huber_loss", "student_t"])
    ap.add_argument("--baseline-max", type=int, default=30_000, help="largest table the baseline is run on")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "memory.json"))
    args = ap.parse_args()
    base = baseline_tree()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for objective in args.objectives:
            for n in sorted(args.runs):
                rows.append(one_size(base, tmp, objective, n, args.baseline_max))
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        import jax

        machine["jax"] = jax.__version__
    except ImportError:
        pass
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine, "baseline_commit": BASELINE, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

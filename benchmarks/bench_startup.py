"""Start-up benchmark: what a user waits for at the command line, with and without the compile cache.

    python benchmarks/bench_startup.py [--commands demo sample hyperparams isoflop] [--versions new baseline]
                                       [--quick] [--repeat N] [--baseline-commit 94db273] [--snapshot]
                                       [--timeout S] [--keep-caches] [--out PATH]

Four CLI commands, each run from a plain clone (no outside data):

* ``demo``: Chinchilla on the bundled 240 runs (point fit, then the NUTS posterior);
* ``sample``: the bundled Chinchilla CSV (``bayes_scaling/datasets/epoch_chinchilla.csv``) with
  ``--N "Model Size" --C "Training FLOP"`` (no D column: D = C / (6 N), as the demo does);
* ``hyperparams``: a 16-point learning-rate sweep (4 budgets C x 4 learning rates around
  lr_opt = 0.3118 C^-0.125), ``--target lr --by C``;
* ``isoflop``: one Porian et al. configuration (rw/tuned/short/const/standard/val of
  ``tests/data/isoflop_points.csv``), ``--C flops --N n --D t``.

Each with the command's default sampler settings (``--quick``: 2 chains x 100 warm-up + 100 draws, a smoke run),
and no option that writes a file. Three timings per command and code version:

* cold: a fresh process, ``python -m bayes_scaling.cli ...``, with an empty cache folder
  (a new temporary ``BAYES_SCALING_CACHE_DIR``); wall clock around the whole process;
* second cold: another fresh process with the cache the first one left;
* warm: one process calls ``bayes_scaling.cli.main(argv)`` 1 + ``--repeat`` times (stdout discarded); the
  median of the calls after the first. That process also times its own imports (``import bayes_scaling.cli``
  and ``jax``) and its first call (a third cold start on the same cache).

Versions, side by side in one run, launched the same way (``PYTHONPATH=<tree> python -m bayes_scaling.cli``,
from a temporary working folder so that neither tree is picked up from the current directory):
``new`` = this working tree, ``baseline`` = a git worktree of ``--baseline-commit`` (the commit before the
compile cache; created with ``git worktree add`` if absent). ``--snapshot`` runs ``new`` from a copy of the package
taken at the start, for a tree that is being edited meanwhile (the cache keys on the package's source: an edit
between the cold and second cold runs would make the second miss). The baseline ignores ``BAYES_SCALING_CACHE_DIR``;
its second cold run is still timed (it gains nothing). Exit codes 0 and 1 (results flagged) both count as a run.

Prints a table per command and writes JSON (``benchmarks/results/startup.json``, ``startup_quick.json`` with
``--quick``): the machine, the settings and every timing. Run one benchmark at a time: the timings are wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "94db273"
BASELINE_DIR = Path(tempfile.gettempdir()) / "bs_baseline"
COMMANDS = ("demo", "sample", "hyperparams", "isoflop")
QUICK_SAMPLER = ["--chains", "2", "--warmup", "100", "--draws", "100"]
PORIAN = dict(dataset="rw", hparams="tuned", warmup="short", decay="const", param_count="standard", loss_split="val")

# The warm protocol, run in a fresh process: times its imports, then main(argv) 1 + repeat times, stdout discarded.
RUNNER = r"""
import contextlib, io, json, os, sys, time
t0 = time.perf_counter()
import bayes_scaling.cli as cli
t_cli = time.perf_counter() - t0
import jax
t_imports = time.perf_counter() - t0
spec = json.loads(sys.argv[1])
times, codes, chars = [], [], []
for _ in range(1 + spec["repeat"]):
    buf = io.StringIO()
    t = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        code = cli.main(spec["argv"])
    times.append(time.perf_counter() - t)
    codes.append(code)
    chars.append(len(buf.getvalue()))
try:
    from bayes_scaling.compile_cache import program_stats
    stats = program_stats()
except ImportError:  # the baseline has no compile cache
    stats = None
import bayes_scaling
print(json.dumps({"file": bayes_scaling.__file__, "import_cli_s": t_cli, "import_s": t_imports, "times_s": times,
                  "codes": codes, "stdout_chars": chars, "program_stats": stats,
                  "jax": jax.__version__, "backend": jax.default_backend(), "devices": [str(d) for d in jax.devices()],
                  "cache_dir_jax": jax.config.jax_compilation_cache_dir}))
"""


def machine() -> dict:
    versions = {}
    for pkg in ("jax", "jaxlib", "numpyro", "optax", "numpy"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        **versions,
    }


def git(*args, cwd=ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def baseline_tree(commit: str) -> Path:
    """A worktree of ``commit`` at /tmp/bs_baseline (created once; an existing one must be at that commit)."""
    if not any((BASELINE_DIR / "bayes_scaling" / name).exists() for name in ("cli.py", "cli")):
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", str(BASELINE_DIR), commit], check=True,
                       capture_output=True, text=True)
    head, want = git("rev-parse", "HEAD", cwd=BASELINE_DIR), git("rev-parse", commit)
    if head != want:
        sys.exit(f"{BASELINE_DIR} is at {head[:10]}, not {commit}: remove it (git worktree remove) or pass --baseline-commit")
    return BASELINE_DIR


def write_inputs(folder: Path) -> dict[str, Path]:
    """The sweep and IsoFLOP tables the hyperparams and isoflop commands read (written once, shared by both versions)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    rows = []
    for C in np.logspace(17, 20, 4):  # 4 budgets x 4 learning rates (factors of sqrt 2 about the optimum)
        l0 = 0.3118 * C ** -0.125
        for f in 2.0 ** np.array([-1.0, -0.5, 0.0, 0.5]):
            rows.append({"C": C, "lr": l0 * f, "loss": 3.0 * (1 + 0.02 * np.log(f) ** 2) * np.exp(1e-3 * rng.standard_normal())})
    sweep = folder / "lr_sweep.csv"
    pd.DataFrame(rows).to_csv(sweep, index=False)

    pts = pd.read_csv(ROOT / "tests" / "data" / "isoflop_points.csv")
    keep = np.ones(len(pts), bool)
    for col, val in PORIAN.items():
        keep &= pts[col].astype(str) == val
    iso = folder / "isoflop_rw_tuned.csv"
    pts[keep].to_csv(iso, index=False)
    return {"sweep": sweep, "isoflop": iso, "isoflop_rows": int(keep.sum()), "sweep_rows": len(rows)}


def command_argv(name: str, inputs: dict, quick: bool) -> list[str]:
    chinchilla = ROOT / "bayes_scaling" / "datasets" / "epoch_chinchilla.csv"
    argv = {
        "demo": ["demo"],
        "sample": ["sample", str(chinchilla), "--N", "Model Size", "--C", "Training FLOP"],
        "hyperparams": ["hyperparams", str(inputs["sweep"]), "--target", "lr", "--by", "C"],
        "isoflop": ["isoflop", str(inputs["isoflop"]), "--C", "flops", "--N", "n", "--D", "t"],
    }[name]
    return argv + (QUICK_SAMPLER if quick else [])


def environment(tree: Path, cache: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree)
    env["BAYES_SCALING_CACHE_DIR"] = str(cache)
    env.pop("PYTHONSTARTUP", None)
    return env


def check_import(tree: Path, workdir: Path) -> str:
    """Which copy of the package a process launched for ``tree`` imports; also compiles every module's bytecode,
    so neither version's first timed run pays for writing __pycache__."""
    code = ("import importlib, pkgutil, bayes_scaling\n"
            "for m in pkgutil.walk_packages(bayes_scaling.__path__, 'bayes_scaling.'):\n"
            "    importlib.import_module(m.name)\n"
            "print(bayes_scaling.__file__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=workdir, env=environment(tree, workdir / "unused-cache"),
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"importing bayes_scaling from {tree} failed:\n{out.stderr[-2000:]}")
    path = out.stdout.strip().splitlines()[-1]
    if not Path(path).resolve().is_relative_to(tree.resolve()):
        sys.exit(f"PYTHONPATH={tree} imports {path}, not the intended tree")
    return path


def source_hash(tree: Path) -> str:
    """A hash of the package's .py files (to notice a tree edited during the run: the cache keys on it too)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((tree / "bayes_scaling").rglob("*.py")):
        h.update(str(f.relative_to(tree)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def snapshot(workdir: Path) -> Path:
    """A copy of this tree's package (the Python files and bundled data), so edits made during the run do not
    change the code under test between the cold and second cold runs."""
    dest = workdir / "new_snapshot"
    shutil.copytree(ROOT / "bayes_scaling", dest / "bayes_scaling", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def tail(text: str, lines: int = 12) -> list[str]:
    return text.strip().splitlines()[-lines:] if text.strip() else []


def cache_size(cache: Path) -> dict:
    files = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    programs = [p for p in files if p.parent.name == "programs"]
    return {"files": len(files), "bytes": sum(p.stat().st_size for p in files), "programs": len(programs)}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def cold_run(argv, tree, cache, workdir, timeout) -> dict:
    load_before, cpu = load(), children_cpu()
    t = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-m", "bayes_scaling.cli", *argv], cwd=workdir,
                             env=environment(tree, cache), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"seconds": time.perf_counter() - t, "code": None, "ok": False, "error": f"timed out after {timeout} s"}
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "cpu_s": children_cpu() - cpu, "load_before": load_before, "code": out.returncode, "ok": out.returncode in (0, 1),
            "stdout_lines": len(out.stdout.splitlines()), "stdout_tail": tail(out.stdout, 6),
            "stderr_lines": len(out.stderr.splitlines()), "stderr_tail": tail(out.stderr),
            "cache_after": cache_size(cache)}


def warm_run(argv, tree, cache, workdir, repeat, timeout) -> dict:
    spec = json.dumps({"argv": argv, "repeat": repeat})
    load_before = load()
    t = time.perf_counter()
    try:
        out = subprocess.run([sys.executable, "-c", RUNNER, spec], cwd=workdir, env=environment(tree, cache),
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"process_s": time.perf_counter() - t, "ok": False, "error": f"timed out after {timeout} s"}
    process_s = time.perf_counter() - t
    if out.returncode != 0:
        return {"process_s": process_s, "ok": False, "code": out.returncode, "stderr_tail": tail(out.stderr)}
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(res["file"]).resolve().is_relative_to(tree.resolve()):
        return {"process_s": process_s, "ok": False, "error": f"imported {res['file']}, not {tree}"}
    later = res["times_s"][1:]
    return {"process_s": process_s, "load_before": load_before, "ok": all(c in (0, 1) for c in res["codes"]), "warm_s": statistics.median(later),
            "first_call_s": res["times_s"][0], **res, "stderr_lines": len(out.stderr.splitlines()),
            "stderr_tail": tail(out.stderr)}


def measure(name, argv, version, tree, workdir, args) -> dict:
    cache = Path(tempfile.mkdtemp(prefix=f"cache-{name}-{version}-", dir=workdir))
    row = {"version": version, "tree": str(tree), "argv": argv, "cache_dir": str(cache), "source_before": source_hash(tree)}
    print(f"  {version}: cold ...", end="", flush=True)
    row["cold"] = cold_run(argv, tree, cache, workdir, args.timeout)
    print(f" {row['cold']['seconds']:.1f} s; second cold ...", end="", flush=True)
    row["second_cold"] = cold_run(argv, tree, cache, workdir, args.timeout)
    print(f" {row['second_cold']['seconds']:.1f} s; warm ...", end="", flush=True)
    row["warm"] = warm_run(argv, tree, cache, workdir, args.repeat, args.timeout)
    w = row["warm"]
    print(f" {w['warm_s']:.2f} s" if w.get("ok") else f" FAILED ({w.get('error') or w.get('code')})", flush=True)
    for key in ("cold", "second_cold"):
        if not row[key]["ok"]:
            print(f"    {key} FAILED (exit {row[key].get('code')}): {row[key].get('error', '')}")
            for line in row[key].get("stderr_tail", []):
                print(f"      {line}")
    row["source_after"] = source_hash(tree)
    if row["source_after"] != row["source_before"]:
        print(f"    WARNING: {tree}/bayes_scaling changed during these runs (the cache keys on the source: the second cold run may have missed)")
    row["ok"] = row["cold"]["ok"] and row["second_cold"]["ok"] and w.get("ok", False)
    if row["ok"]:
        row["second_cold_over_warm"] = row["second_cold"]["seconds"] / w["warm_s"]
        row["cold_over_second_cold"] = row["cold"]["seconds"] / row["second_cold"]["seconds"]
    if not args.keep_caches:
        shutil.rmtree(cache, ignore_errors=True)
    return row


def fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def report(name, rows: dict) -> dict:
    print(f"\n{name}: seconds (wall clock; warm = median of later in-process calls; imports and 1st call: inside the warm"
          f" process; cpu: user + system seconds of the cold processes; load: 1-min load average before the cold run)")
    head = (f"  {'version':<9}{'cold':>8}{'2nd cold':>10}{'warm':>8}{'2nd cold/warm':>15}{'imports':>9}{'1st call':>10}"
            f"{'cpu cold':>10}{'cpu 2nd':>9}{'load':>6}{'exit':>6}")
    print(head)
    for version, r in rows.items():
        w, c1, c2 = r["warm"], r["cold"], r["second_cold"]
        codes = f"{c1.get('code')}/{c2.get('code')}"
        print(f"  {version:<9}{fmt(c1['seconds'], '.1f'):>8}{fmt(c2['seconds'], '.1f'):>10}{fmt(w.get('warm_s')):>8}"
              f"{fmt(r.get('second_cold_over_warm'), '.1f'):>15}{fmt(w.get('import_s')):>9}{fmt(w.get('first_call_s'), '.1f'):>10}"
              f"{fmt(c1.get('cpu_s'), '.1f'):>10}{fmt(c2.get('cpu_s'), '.1f'):>9}{fmt(c1.get('load_before'), '.1f'):>6}{codes:>6}")
    ratios = {}
    new, base = rows.get("new"), rows.get("baseline")
    if new is not None and new.get("ok") and name == "demo":
        ratios["new_second_cold_over_warm_target_le_2"] = new["second_cold_over_warm"] <= 2
    if new and base and new["cold"]["ok"] and base["cold"]["ok"] and new["second_cold"]["ok"]:
        ratios["baseline_cold_over_new_second_cold"] = base["cold"]["seconds"] / new["second_cold"]["seconds"]
        ratios["new_cold_over_baseline_cold"] = new["cold"]["seconds"] / base["cold"]["seconds"]
        if base["cold"].get("cpu_s") and new["second_cold"].get("cpu_s"):
            ratios["baseline_cold_over_new_second_cold_cpu"] = base["cold"]["cpu_s"] / new["second_cold"]["cpu_s"]
        print(f"  baseline cold / new second cold: {ratios['baseline_cold_over_new_second_cold']:.2f}x;"
              f" in CPU seconds {fmt(ratios.get('baseline_cold_over_new_second_cold_cpu'))}x;"
              f" new cold / baseline cold (cost of filling the cache): {ratios['new_cold_over_baseline_cold']:.2f}")
    if new is not None and new.get("ok"):
        c = new["second_cold"].get("cache_after", {})
        print(f"  new: 2nd cold / warm = {new['second_cold_over_warm']:.2f}"
              + (" (target <= 2: " + ("met" if new["second_cold_over_warm"] <= 2 else "NOT met") + ")" if name == "demo" else "")
              + f"; cache {c.get('programs')} programs, {c.get('bytes', 0) / 1e6:.1f} MB in {c.get('files')} files;"
              f" warm process program stats {new['warm'].get('program_stats')}")
    print("  stdout lines (cold/2nd cold; warm: characters per call): " + "; ".join(
        f"{v} {r['cold'].get('stdout_lines')}/{r['second_cold'].get('stdout_lines')}, {r['warm'].get('stdout_chars')}" for v, r in rows.items()))
    for version, r in rows.items():
        noise = sorted({line for k in ("cold", "second_cold", "warm") for line in r[k].get("stderr_tail", [])})
        if noise:
            print(f"  {version} stderr ({r['cold'].get('stderr_lines')} lines cold, {r['second_cold'].get('stderr_lines')} second cold), e.g.:")
            for line in noise[:6]:
                print(f"    {line[:160]}")
    return ratios


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    ap.add_argument("--versions", nargs="+", choices=("new", "baseline"), default=["new", "baseline"])
    ap.add_argument("--quick", action="store_true", help="short chains (2 x 100 warm-up + 100 draws): a smoke run")
    ap.add_argument("--repeat", type=int, default=3, help="in-process calls after the first; warm = their median (default 3)")
    ap.add_argument("--baseline-commit", default=BASELINE_COMMIT, help=f"the baseline (default {BASELINE_COMMIT}, before the compile cache)")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per process before it counts as failed")
    ap.add_argument("--snapshot", action="store_true",
                    help="run 'new' from a copy of this tree's package taken at the start (the tree is being edited)")
    ap.add_argument("--keep-caches", action="store_true", help="keep the temporary cache folders (to inspect them)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/startup[_quick].json)")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    out_path = Path(args.out or ROOT / "benchmarks" / "results" / ("startup_quick.json" if args.quick else "startup.json"))

    workdir = Path(tempfile.mkdtemp(prefix="bench_startup-"))
    trees = {"new": snapshot(workdir) if args.snapshot else ROOT,
             "baseline": baseline_tree(args.baseline_commit) if "baseline" in args.versions else None}
    trees = {v: trees[v] for v in args.versions}
    imported = {v: check_import(t, workdir) for v, t in trees.items()}
    for v, path in imported.items():
        print(f"{v}: PYTHONPATH={trees[v]} imports {path}")
    inputs = write_inputs(workdir)
    result = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "settings": {"quick": args.quick, "sampler": QUICK_SAMPLER if args.quick else "each command's defaults",
                     "repeat": args.repeat, "commands": args.commands, "versions": args.versions,
                     "baseline_commit": git("rev-parse", args.baseline_commit),
                     "new_head": git("rev-parse", "HEAD"), "new_tree_dirty": bool(git("status", "--porcelain", "--", "bayes_scaling")),
                     "new_snapshot": args.snapshot, "new_source_hash": source_hash(trees["new"]) if "new" in trees else None,
                     "launch": "PYTHONPATH=<tree> python -m bayes_scaling.cli ARGV, cwd = a temporary folder",
                     "env": {k: os.environ[k] for k in ("XLA_FLAGS", "BAYES_SCALING_CPU_DEVICES", "JAX_PLATFORMS", "PYTHONDONTWRITEBYTECODE")
                             if k in os.environ},
                     "inputs": {"sweep_rows": inputs["sweep_rows"], "isoflop_rows": inputs["isoflop_rows"],
                                "isoflop_configuration": PORIAN}},
        "imported": imported,
        "commands": {},
    }
    failures = []
    try:
        for name in args.commands:
            argv = command_argv(name, inputs, args.quick)
            print(f"\n{name}: bayes-scaling {' '.join(argv)}", flush=True)
            rows = {}
            for version, tree in trees.items():
                rows[version] = measure(name, argv, version, tree, workdir, args)
                if not rows[version]["ok"]:
                    failures.append(f"{name}/{version}")
            first = next(iter(rows.values()))
            result["commands"][name] = {"argv": argv, "versions": rows}
            if first["warm"].get("devices"):
                result["machine"]["devices"] = first["warm"]["devices"]
                result["machine"]["backend"] = first["warm"]["backend"]
            result["commands"][name]["ratios"] = report(name, rows)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            out_path.write_text(json.dumps(result, indent=2, default=float) + "\n")  # after each command: partial results survive
    finally:
        if args.keep_caches:
            print(f"caches kept under {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["failures"] = failures
    out_path.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\nwrote {out_path}")
    if failures:
        print(f"FAILED: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Compiled programs kept between processes (bayes_scaling.compile_cache), and progress that keeps two-device
chains: each check runs fresh processes, since the cache and the device count are fixed when JAX starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env(cache, **extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT), BAYES_SCALING_CACHE_DIR=str(cache), **extra)
    env.pop("XLA_FLAGS", None)
    return env


def _cli(args, env, **kw):
    return subprocess.Popen([sys.executable, "-m", "bayes_scaling.cli"] + [str(a) for a in args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, **kw)


@pytest.fixture(scope="module")
def small_table(tmp_path_factory):
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(3e7), np.log(3e9), 20))
    D = np.exp(rng.uniform(np.log(5e8), np.log(5e10), 20))
    y = (1.8 + 400 * N ** -0.34 + 1500 * D ** -0.3) * np.exp(0.01 * rng.standard_normal(20))
    path = tmp_path_factory.mktemp("cc") / "runs.csv"
    pd.DataFrame({"N": N, "D": D, "loss": y}).to_csv(path, index=False)
    return path


def test_second_process_reads_the_programs_back_with_the_same_numbers(small_table, tmp_path):
    cache = tmp_path / "cache"
    args = ["sample", small_table, "--chains", "4", "--warmup", "150", "--draws", "150", "--budgets", "1e21", "--progress"]
    # two processes at once on an empty cache: both write the same programs; neither may fail or read a half file
    first = [_cli(args + ["--json", tmp_path / f"first{i}.json"], _env(cache, BAYES_SCALING_CPU_DEVICES="2")) for i in (0, 1)]
    outs = [p.communicate(timeout=900) for p in first]
    for p, (out, err) in zip(first, outs):
        assert p.returncode in (0, 1), err[-2000:]
        # --progress reports each group of chains and keeps them on both devices
        assert "chains over 2 devices" in out and "sampling chains: 4/4" in err
    programs = sorted((cache / "programs").glob("*.jaxexport"))
    assert {p.name.split("-")[0] for p in programs} >= {"screen", "multistart", "laplace", "chains", "over_draws"}
    assert (cache / "xla").is_dir() and any((cache / "xla").iterdir())
    # a program file cut short by a crash is ignored and written again
    victim = next(p for p in programs if p.name.startswith("laplace"))
    victim.write_bytes(victim.read_bytes()[:100])
    second = _cli(args + ["--json", tmp_path / "second.json", "--quiet"], _env(cache, BAYES_SCALING_CPU_DEVICES="2"))
    out, err = second.communicate(timeout=900)
    assert second.returncode in (0, 1), err[-2000:]
    assert "sampling chains" not in err  # --quiet
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("first0.json", "second.json"))
    assert a["parameters"] == b["parameters"] and a["forecast"] == b["forecast"]  # the same draws from stored programs
    assert json.loads((tmp_path / "first1.json").read_text())["parameters"] == a["parameters"]
    assert victim.stat().st_size > 100


def test_cache_off_and_an_unwritable_cache(small_table, tmp_path):
    code = ("import jax, sys; jax.config.update('jax_enable_x64', True)\n"
            "import bayes_scaling as bs\n"
            "root = bs.enable_compilation_cache()\n"
            "fit = bs.fit_point('power_law', bs.load_runs(sys.argv[1], N=None, D=None, loss='loss'), starts=[[0.0, 0.0]])\n"
            "from bayes_scaling import compile_cache\n"
            "print(root, compile_cache.program_stats()['plain'] > 0, jax.config.jax_compilation_cache_dir)\n")
    table = tmp_path / "c.csv"
    pd.DataFrame({"C": [1e18, 1e19, 1e20, 1e21], "loss": [3.0, 2.7, 2.5, 2.3]}).to_csv(table, index=False)
    for cache, words in (("off", "None True None"), ("/proc/no-cache", "None True None")):
        proc = subprocess.run([sys.executable, "-c", code, str(table)], capture_output=True, text=True,
                              env=_env(cache), timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip() == words, (cache, proc.stdout, proc.stderr)
        if cache.startswith("/proc"):
            assert "compilation cache /proc/no-cache cannot be written" in proc.stderr

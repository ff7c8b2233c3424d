"""Resumable family jobs (issue 4): a job killed mid-way and resumed gives the uninterrupted result, with no
family lost or fitted twice."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from bayes_scaling import load_runs
from bayes_scaling.batch import fit_point_batch
from bayes_scaling.cli import main
from bayes_scaling.jobs import run_in_chunks


@pytest.fixture(scope="module")
def many_families():
    rng = np.random.default_rng(0)
    rows = []
    for f in range(7):
        C = np.geomspace(1e18, 1e21, 12)
        y = (1.5 + 0.1 * f + 300 * C ** -0.1) * np.exp(0.002 * rng.standard_normal(12))
        rows.append(pd.DataFrame({"C": C, "loss": y, "fam": f"f{f}"}))
    return pd.concat(rows, ignore_index=True)


def _work(calls):
    def work(sub):
        out = fit_point_batch("power_law_floor", sub)
        for fam in out.fits:
            calls[fam] = calls.get(fam, 0) + 1
        return [{"family": fam, **fit.params, "objective": fit.objective} for fam, fit in out.fits.items()]
    return work


def test_killed_job_resumes_without_loss_or_refits(many_families, tmp_path):
    runs = load_runs(many_families, family="fam")
    calls_full = {}
    full = run_in_chunks(_work(calls_full), runs, str(tmp_path / "full"), chunk_size=3, progress=False)
    assert len(full) == 7 and all(v == 1 for v in calls_full.values())

    calls = {}
    work = _work(calls)
    done = {"chunks": 0}

    def killed(sub):
        if done["chunks"] == 2:
            raise KeyboardInterrupt  # the job is killed while fitting its third chunk
        done["chunks"] += 1
        return work(sub)

    with pytest.raises(KeyboardInterrupt):
        run_in_chunks(killed, runs, str(tmp_path / "job"), chunk_size=3, progress=False)
    assert sorted(os.listdir(tmp_path / "job" / "chunks")) == ["chunk_00000.json", "chunk_00001.json"]
    with pytest.raises(ValueError, match="already holds a job"):
        run_in_chunks(work, runs, str(tmp_path / "job"), chunk_size=3, progress=False)
    with pytest.raises(ValueError, match="different job"):
        run_in_chunks(work, runs, str(tmp_path / "job"), chunk_size=2, resume=True, progress=False)
    resumed = run_in_chunks(work, runs, str(tmp_path / "job"), chunk_size=3, resume=True, progress=False)
    assert [r["family"] for r in resumed] == [r["family"] for r in full]
    assert all(v == 1 for v in calls.values()) and sorted(calls) == sorted(calls_full)  # nothing fitted twice
    for a, b in zip(resumed, full):
        for k in a:
            if k != "family":
                assert a[k] == pytest.approx(b[k], rel=1e-12), (a["family"], k)


def test_cli_family_fit_and_resume(many_families, tmp_path, capsys):
    path = tmp_path / "fam.csv"
    many_families.to_csv(path, index=False)
    out = tmp_path / "out"
    args = ["fit", str(path), "--law", "power_law_floor", "--family", "fam", "--family-out", str(out), "--chunk-size", "2",
            "--budgets", "1e22"]
    assert main(args) == 0
    first = pd.read_csv(out / "families.csv")
    assert len(first) == 7 and first["converged"].all()
    assert len(pd.read_csv(out / "forecast.csv")) == 7
    # refuse to overwrite; after a "kill" (last chunk and results gone) --resume refits only that chunk
    capsys.readouterr()
    assert main(args) == 2 and "already holds results" in capsys.readouterr().err
    os.remove(out / "chunks" / "chunk_00003.json")
    for f in ("families.csv", "forecast.csv", "families.json"):
        os.remove(out / f)
    assert main(args + ["--resume", "--progress"]) == 0  # progress lines: on a terminal by default, here asked for
    err = capsys.readouterr().err
    assert err.count("done earlier") == 3 and err.count("fitted") == 1
    pd.testing.assert_frame_equal(first, pd.read_csv(out / "families.csv"))
    records = json.loads((out / "families.json").read_text())
    assert [r["family"] for r in records] == [f"f{i}" for i in range(7)]


def test_cli_shards_families_over_cpu_cores(many_families, tmp_path, capsys):
    # a fresh process (devices are fixed when JAX starts) with two CPU devices: the same table as one device
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "fam.csv"
    many_families.to_csv(path, index=False)
    args = ["fit", str(path), "--law", "power_law_floor", "--family", "fam", "--budgets", "1e22", "--family-out"]
    assert main(args + [str(tmp_path / "one")]) == 0
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]), BAYES_SCALING_CPU_DEVICES="2")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-m", "bayes_scaling.cli"] + args + [str(tmp_path / "two")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "7 families on 2 cpu devices" in proc.stdout
    one, two = pd.read_csv(tmp_path / "one" / "families.csv"), pd.read_csv(tmp_path / "two" / "families.csv")
    pd.testing.assert_frame_equal(one, two, rtol=1e-10)
    env["BAYES_SCALING_CPU_DEVICES"] = "two"
    proc = subprocess.run([sys.executable, "-m", "bayes_scaling.cli", "laws"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "bayes-scaling: error: BAYES_SCALING_CPU_DEVICES must be a whole number of devices >= 1, not 'two'"]

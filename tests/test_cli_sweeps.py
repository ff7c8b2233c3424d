"""The `batch-size` and `isoflop` commands: tables with intervals, JSON output, one-line errors (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.cli import main

SMALL = ["--chains", "2", "--warmup", "200", "--draws", "200"]


def _sweep(path):
    rng = np.random.default_rng(0)
    rows = []
    for g, (S_min, B_noise, N) in {"s": (1000.0, 500.0, 1e8), "m": (2000.0, 900.0, 3e8), "l": (4000.0, 1600.0, 1e9)}.items():
        for B in 2.0 ** np.arange(5, 13):
            rows.append({"size": g, "N": N, "B": B, "steps": S_min * (1 + B_noise / B) * np.exp(0.02 * rng.standard_normal())})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_batch_size_command(tmp_path, capsys):
    csv = _sweep(tmp_path / "sweep.csv")
    out = tmp_path / "cbs.json"
    code = main(["batch-size", str(csv), "--batch", "B", "--group", "size", "--law-by", "N", "--forecast", "3e9",
                 "--json", str(out)] + SMALL)
    text = capsys.readouterr().out
    assert code in (0, 1)  # 1 only flags an unhealthy sampler; the table is printed either way
    assert "CBS Zhang [90%]" in text and "forecast at N = 3e+09" in text
    res = json.loads(out.read_text())
    groups = {r["group"]: r for r in res["groups"]}
    assert groups["s"]["B_crit_lo"] < 500 < groups["s"]["B_crit_hi"]
    assert set(res["law"]) >= {"p", "k", "tau", "diagnostics"}
    # an existing JSON file is never overwritten without --force (checked before sampling)
    assert main(["batch-size", str(csv), "--batch", "B", "--group", "size", "--json", str(out)] + SMALL) == 2
    assert "exists" in capsys.readouterr().err


def test_errors_are_one_line(tmp_path, capsys):
    csv = _sweep(tmp_path / "sweep.csv")
    df = pd.read_csv(csv)
    df.loc[4, "steps"] = np.nan
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    cases = [
        (["batch-size", str(bad), "--batch", "B", "--group", "size"], "column 'steps', row 5"),
        (["batch-size", str(csv), "--batch", "B", "--group", "size", "--law-by", "steps"], "--law-by steps"),
        (["batch-size", str(csv), "--batch", "B", "--forecast", "3"], "--forecast needs --law-by"),
        (["isoflop", str(csv), "--window", "x"], "--window 'x'"),
        (["isoflop", str(csv)], "column 'C' not found"),
        (["isoflop", str(tmp_path / "missing.csv")], "no such file"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.slow
def test_isoflop_command(tmp_path, capsys):
    from test_isoflop import _grid

    csv = tmp_path / "iso.csv"
    g = _grid(np.zeros(7))
    pd.concat([g.assign(cfg="a"), g.assign(cfg="b", loss=g["loss"] * 1.01)]).to_csv(csv, index=False)
    out = tmp_path / "iso.json"
    code = main(["isoflop", str(csv), "--by", "cfg", "--window", "all", "--budgets", "1e22", "--envelope",
                 "--json", str(out)] + SMALL)
    text = capsys.readouterr().out
    assert code in (0, 1) and "[a] a (N_opt ~ C^a)" in text and "envelope (Approach 1" in text
    res = json.loads(out.read_text())
    for cfg in ("a", "b"):
        a = res["configurations"][cfg]["a"]
        assert a["lo"] < 0.25 < a["hi"]
    assert res["envelope"]["a"]["median"] > 0

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


def _hp_sweep(path):
    """Per budget C a grid of learning rates around DeepSeek LLM's lr_opt = 0.3118 C^-0.125 (factors of sqrt 2),
    loss a bowl in log lr with 0.1% noise."""
    rng = np.random.default_rng(0)
    rows = []
    for C in np.logspace(17, 20, 7):
        l0 = 0.3118 * C ** -0.125
        for f in 2.0 ** np.arange(-2, 2.5, 0.5):
            rows.append({"C": C, "lr": l0 * f, "loss": 3.0 * (1 + 0.02 * np.log(f) ** 2) * np.exp(1e-3 * rng.standard_normal())})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_hyperparams_command(tmp_path, capsys):
    csv = _hp_sweep(tmp_path / "lr.csv")
    out = tmp_path / "lr.json"
    code = main(["hyperparams", str(csv), "--target", "lr", "--by", "C", "--at", "1e23", "--json", str(out)] + SMALL)
    text = capsys.readouterr().out
    assert code in (0, 1)  # 1 only flags an unhealthy sampler
    assert "lr_opt = k C^p_C" in text and "fitted to 7 points" in text and "forecast at C = 1e+23" in text
    res = json.loads(out.read_text())
    p = res["parameters"]["exponent_C"]
    # the per-budget optimum sits on the sqrt-2 grid around the truth: -0.125 inside the interval
    assert p["lo"] < -0.125 < p["hi"] and abs(p["median"] + 0.125) < 0.03
    truth = 0.3118 * 1e23 ** -0.125
    f = res["forecast"][0]
    assert f["C"] == 1e23 and f["law"]["lo"] < truth < f["law"]["hi"]
    # one new optimum scatters about the law by tau: its interval holds the law's median and is not narrower than the
    # law's: both are 5%-95% quantile widths of 2 x 200 draws, each with a Monte-Carlo standard error of about 4.5%
    # (sqrt(.05 * .95 / 400) / phi(1.645) = 0.106 sd on each end of a 3.29 sd width), so 10% slack is about 2 errors
    one, law_ = f["one_new_optimum"], f["law"]
    assert one["lo"] < law_["median"] < one["hi"] and one["hi"] - one["lo"] >= 0.9 * (law_["hi"] - law_["lo"])
    assert res["points"]["C"] == sorted(res["points"]["C"]) and len(res["points"]["y"]) == 7
    # bad input: one line naming the problem, exit 2, nothing written over
    df = pd.read_csv(csv)
    df.loc[3, "lr"] = -1.0
    bad = tmp_path / "bad.csv"
    df.to_csv(bad, index=False)
    cases = [
        (["hyperparams", str(bad), "--target", "lr"], "column 'lr', row 4"),
        (["hyperparams", str(csv), "--target", "eta"], "column 'eta' not found"),
        (["hyperparams", str(csv), "--target", "lr", "--by", "N", "D", "--at", "1e9"], "--at 1e9: give a value for each of N, D"),
        (["hyperparams", str(csv), "--target", "lr", "--at", "C=big"], "--at C=big: C:"),
        (["hyperparams", str(csv), "--target", "lr", "--by", "lr"], "must be different columns"),
        (["hyperparams", str(tmp_path / "missing.csv"), "--target", "lr"], "no such file"),
        (["hyperparams", str(csv), "--target", "lr", "--json", str(out)], "exists"),
    ]
    for argv, message in cases:
        assert main(argv + SMALL) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err

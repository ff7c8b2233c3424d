"""Backtests (rolling origin, leave the future out) and the extrapolation discrepancy.

Independent checks: the scores of a predictive whose draws are standard normal against the normal distribution's
closed forms (PIT = Phi(y), log density = log phi(y) - y for the loss; tolerance 4 Monte Carlo standard errors with
20000 draws); the cut plan and extrapolation factors against NumPy written out; the discrepancy's update against a
log score whose maximum is known.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import data
from scipy.stats import norm

from bayes_scaling import load_chinchilla, load_runs
from bayes_scaling.backtests import backtest, cut_values, score
from bayes_scaling.cli import main
from bayes_scaling.datasets import chinchilla_path
from bayes_scaling.discrepancy import Discrepancy, default_discrepancy, distances


def test_scores_match_the_normal_closed_forms():
    rng = np.random.default_rng(0)
    R, S = 7, 20000
    logy = np.linspace(-1.5, 1.5, R)
    pred = {"mu": np.zeros((R, S)), "scale": np.ones((R, S)), "unit": rng.standard_normal((R, S)),
            "z": rng.standard_normal((R, S)), "kappa": np.ones((R, S)), "logy": logy, "likelihood": "gaussian",
            "shape": np.zeros((R, 1))}
    out = score(pred, None, (0.5, 0.9))
    se = np.sqrt(norm.cdf(logy) * (1 - norm.cdf(logy)) / S)
    assert np.all(np.abs(out["pit"] - norm.cdf(logy)) < 4 * se + 1e-12)
    np.testing.assert_allclose(out["log_score"], norm.logpdf(logy) - logy, atol=1e-12)  # exact: mean of equal densities
    np.testing.assert_array_equal(out["inside_90"], np.abs(logy) <= norm.ppf(0.95) + 0.03)
    # a discrepancy of sd s at distance 1: the predictive is N(0, 1 + s^2)
    s = 0.8
    pred["dist_C"] = np.ones(R)
    out = score(pred, Discrepancy(tau={"C": s}), (0.5, 0.9))
    sd = np.sqrt(1 + s * s)
    se = np.sqrt(norm.cdf(logy / sd) * (1 - norm.cdf(logy / sd)) / S)
    assert np.all(np.abs(out["pit"] - norm.cdf(logy / sd)) < 4 * se + 1e-12)
    np.testing.assert_allclose(out["log_score"], norm.logpdf(logy, scale=sd) - logy, atol=0.02)


def test_cut_plan_and_distances():
    levels = np.repeat([1e16, 2e16, 4e16, 8e16, 1.6e17, 3.2e17], 5)
    assert cut_values(levels) == [4e16, 8e16, 1.6e17]  # half the levels up to all but the last
    assert cut_values(levels, levels=[2, 5]) == [2e16, 1.6e17]
    cont = np.exp(np.linspace(0, 10, 101))
    assert cut_values(cont) == pytest.approx([np.quantile(cont, q) for q in (0.5, 0.6, 0.7, 0.8, 0.9)])
    d = distances({"C": np.array([1.0, 10.0, 100.0]), "N": np.array([2.0, 2.0, 8.0])}, {"C": 10.0, "N": 4.0})
    np.testing.assert_allclose(d["C"], [0.0, 0.0, np.log(10.0)])
    np.testing.assert_allclose(d["N"], [0.0, 0.0, np.log(2.0)])
    np.testing.assert_allclose(Discrepancy(tau={"C": 0.1, "N": 0.2}).scale(d), [0, 0, np.hypot(0.1 * np.log(10), 0.2 * np.log(2))])


def test_update_finds_the_preferred_scale():
    prior = Discrepancy(tau={"C": 0.01}, log_sd=1.0)
    # a log score sharply peaked at tau = 0.03 (e.g. many held-out runs): the update moves to it
    score = lambda tau: -2000.0 * np.log(tau["C"] / 0.03) ** 2
    post = prior.updated(score)
    assert post.tau["C"] == pytest.approx(0.03, rel=0.06) and post.log_sd < 0.1


def test_backtest_on_chinchilla_scores_each_run_beyond_the_cut():
    runs = load_chinchilla()
    bt = backtest("chinchilla", runs, cuts=[1e21], num_warmup=300, num_samples=300, num_chains=2)
    beyond = runs.C > 1e21
    assert len(bt.points) == beyond.sum() and bt.cuts["train_runs"].iloc[0] == (~beyond).sum()
    np.testing.assert_allclose(np.sort(bt.points["extrapolation"]), np.sort(runs.C[beyond] / runs.C[~beyond].max()))
    np.testing.assert_allclose(np.sort(bt.points["loss"]), np.sort(runs.loss[beyond]))
    assert bt.points["pit"].between(0, 1).all() and np.isfinite(bt.points["log_score"]).all()
    # wider predictive with a discrepancy: coverage can only rise, log score changes, the fits are the same
    wide = bt.rescored(Discrepancy(tau={"beyond": 0.01, "C": 0.05}, relative=False))
    for p in ("50", "80", "90"):
        assert wide.pooled()[f"coverage_{p}"].iloc[0] >= bt.pooled()[f"coverage_{p}"].iloc[0]
    assert (wide.points["width_90_%"] > bt.points["width_90_%"]).all()
    with pytest.raises(ValueError, match="leaves 0 runs to fit"):
        backtest("chinchilla", runs, cuts=[1e10])
    with pytest.raises(ValueError, match="cannot cut by 'lr'"):
        backtest("chinchilla", runs, by="lr")


def test_default_discrepancy_is_shipped_with_its_calibration():
    d = default_discrepancy()
    assert set(d.tau) <= {"beyond", "C", "N", "D"} and all(v >= 0 for v in d.tau.values()) and d.log_sd > 0 and d.relative
    assert "pooled backtests" in d.source


def test_cli_backtest_bad_input_is_one_line_exit_2(capsys, tmp_path):
    path = str(chinchilla_path())
    cols = ["--N", "Model Size", "--C", "Training FLOP"]
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("[1, 2]")
    for extra, msg in ((["--cuts", "1e10"], "leaves 0 runs to fit"), (["--by", "nothing"], "has no such column"),
                       (["--cuts", "1e20", "--levels", "3"], "not both"), (["--probs", "1.5"], "between 0 and 1"),
                       (["--discrepancy", str(bad_json)], "not a saved discrepancy"),
                       (["--by", "color"], "column 'color', row 1")):
        assert main(["backtest", path, *cols, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_cli_backtest_on_isoflop_levels(capsys, tmp_path):
    runs_csv = tmp_path / "one_config.csv"
    import pandas as pd

    pts = pd.read_csv(data("isoflop_points.csv"))
    g = pts.query("dataset=='rw' and hparams=='tuned' and decay=='const' and param_count=='standard' and loss_split=='val'")
    g.to_csv(runs_csv, index=False)
    out_json = tmp_path / "bt.json"
    code = main(["backtest", str(runs_csv), "--N", "n", "--D", "t", "--C", "flops", "--levels", "8", "9",
                 "--warmup", "300", "--draws", "300", "--json", str(out_json), "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code in (0, 1)
    assert "In short:" in out and "intervals held" in out and "without the extrapolation term" in out
    res = json.loads(out_json.read_text())
    runs = load_runs(runs_csv, N="n", D="t", C="flops", loss="loss")
    lv = np.unique(runs.C)
    assert res["pooled"]["held_out"] == int(np.sum(runs.C > lv[7]) + np.sum(runs.C > lv[8]))
    assert (tmp_path / "out" / "calibration.png").stat().st_size > 10_000
    assert main(["backtest", str(runs_csv), "--N", "n", "--D", "t", "--C", "flops", "--levels", "8",
                 "--out", str(tmp_path / "out")]) == 2  # never overwrite without --force


def test_report_sections_say_how_sure(tmp_path):
    from bayes_scaling import sample_posterior, write_report

    runs = load_chinchilla()
    post = sample_posterior("chinchilla", runs, num_warmup=300, num_samples=300, num_chains=2)
    bt = backtest("chinchilla", runs, cuts=[1e21], num_warmup=300, num_samples=300, num_chains=2,
                  discrepancy=default_discrepancy())
    paths = write_report(post, tmp_path / "r", runs=runs, budgets=[1e22, 1e24], backtest=bt)
    md = open(paths["markdown"]).read()
    assert "Where a new run's uncertainty comes from" in md and "Backtest by C" in md
    short = md.split("## In short")[1].split("\n## ")[0]
    assert "Backtest (1 cuts" in short and "with the extrapolation term" in short
    res = json.loads(open(paths["json"]).read())
    shares = res["uncertainty"][-1]
    assert sum(shares[f"share_{k}"] for k in ("noise", "parameters", "law_form", "extrapolation")) == pytest.approx(1.0)
    assert shares["share_law_form"] == 0.0 and shares["share_extrapolation"] > shares["share_noise"]  # 1e24 is far out
    assert (tmp_path / "r" / "figures" / "calibration.png").exists()


def test_cli_isoflop_backtest(capsys, tmp_path):
    import pandas as pd

    pts = pd.read_csv(data("isoflop_points.csv"))
    g = pts.query("dataset=='owt2' and hparams=='tuned' and loss_split=='val'")
    path = tmp_path / "iso.csv"
    g.to_csv(path, index=False)
    code = main(["backtest", str(path), "--isoflop", "--C", "flops", "--N", "n", "--D", "t", "--levels", "10", "11",
                 "--warmup", "300", "--draws", "300", "--json", str(tmp_path / "iso.json")])
    out = capsys.readouterr().out
    assert code in (0, 1) and "IsoFLOP backtest" in out and "forecasts of N_opt at the next budget" in out
    rows = json.loads((tmp_path / "iso.json").read_text())["isoflop"]
    budgets = np.unique(g["flops"])
    assert [r["next_budget"] for r in rows] == pytest.approx([budgets[10], budgets[11]])
    assert all(r["forecast_lo_90"] < r["forecast_N_opt"] < r["forecast_hi_90"] for r in rows)
    assert main(["backtest", str(path), "--isoflop", "--C", "flops", "--N", "n", "--cuts", "1e18"]) == 2


def test_power_law_backtest_covers_simulated_optima():
    """Optima drawn from a known power law (y = 0.3 C^0.33, scatter tau = 0.05 in log, each optimum measured with a
    log-sd of 0.03): the held-out optima beyond each cut lie in their 90% predictive intervals about 90% of the time
    (30 held-out points; the binomial sd of the share is 0.055, so [0.75, 1] is a 3-sd band), and the table says
    what was fitted and how far each forecast reached."""
    from bayes_scaling.analyses.power_law_backtest import backtest_hyperparam, backtest_power_law, pooled_coverage

    rng = np.random.default_rng(3)
    C = np.tile(np.logspace(17, 21, 8), 6)
    groups = np.repeat([f"g{i}" for i in range(6)], 8)
    y = 0.3 * C ** 0.33 * np.exp(0.05 * rng.standard_normal(C.size) + 0.03 * rng.standard_normal(C.size))
    pts = backtest_power_law({"C": C}, y, y_sd=0.03, groups=groups, levels=[5, 6], num_warmup=300, num_samples=300, num_chains=2)
    assert len(pts) == 6 * (3 + 2) and set(pts["fitted"]) == {5, 6}
    assert np.allclose(pts["extrapolation"].min(), 10 ** (4 / 7))
    cov = pooled_coverage(pts)
    assert 0.75 <= cov["coverage_90"] <= 1.0 and cov["median_abs_error_%"] < 15, cov
    # from a sweep table: per-budget optima with their grid errors, the same machinery
    rows = [{"C": c, "lr": lr, "loss": 2 + (np.log(lr) - np.log(1e-3 * (c / 1e18) ** -0.1)) ** 2}
            for c in np.logspace(18, 21, 6) for lr in np.logspace(-4.5, -2, 11)]
    sw = backtest_hyperparam(pd.DataFrame(rows), target="lr", levels=[4], num_warmup=300, num_samples=300, num_chains=2)
    assert len(sw) == 2 and (sw["observed"] > 0).all()
    with pytest.raises(ValueError, match="no cut leaves"):
        backtest_power_law({"C": C[:3]}, y[:3], levels=[2])


def test_cli_backtest_hyperparam(capsys, tmp_path):
    rows = [{"C": c, "lr": lr, "loss": 2 + (np.log(lr) - np.log(1e-3 * (c / 1e18) ** -0.1)) ** 2}
            for c in np.logspace(18, 21, 6) for lr in np.logspace(-4.5, -2, 11)]
    path = tmp_path / "sweep.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert main(["backtest", str(path), "--hyperparam", "eta"]) == 2
    err = capsys.readouterr().err
    assert "'eta'" in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "hyperparam_backtest.csv").write_text("x")
    for extra, msg in ((["--family", "C"], "drop --laws"), (["--out", str(tmp_path / "o")], "hyperparam_backtest.csv exists")):
        assert main(["backtest", str(path), "--hyperparam", "lr", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    out_json = tmp_path / "hp.json"
    code = main(["backtest", str(path), "--hyperparam", "lr", "--levels", "4", "--warmup", "200", "--draws", "200",
                 "--chains", "2", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code in (0, 1) and "In short: backtest of the optimal lr as a power law of C" in out
    res = json.loads(out_json.read_text())
    assert res["pooled"]["held_out"] == 2 and len(res["points"]) == 2

"""Law-form uncertainty: candidate laws, PSIS-LOO stacking weights, the stacked forecast, ``sample --laws``.

The weights are checked against arviz's own stacking (``az.compare(method="stacking")``) on the same LOO
densities, to 1e-3 (both solve the same concave problem with different optimisers).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from bayes_scaling import get_law, load_chinchilla
from bayes_scaling.cli import main
from bayes_scaling.datasets import chinchilla_path
from bayes_scaling.loo import loo_pointwise, stacking_weights
from bayes_scaling.stacking import StackedPosterior, candidate_laws, sample_stacked


def test_stacking_weights_match_arviz():
    import arviz as az

    rng = np.random.default_rng(1)
    y = rng.normal(0.1, 1.0, size=60)
    idatas = {}
    for k, (m, s) in enumerate([(0.0, 1.0), (0.5, 1.2), (-0.4, 0.9)]):
        mu = m + 0.1 * rng.standard_normal((2, 200, 1))
        ll = -0.5 * ((y - mu) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
        idatas[f"m{k}"] = az.from_dict(posterior={"mu": mu[..., 0]}, log_likelihood={"y": ll})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = az.compare(idatas, method="stacking")["weight"]
    lpd = np.stack([loo_pointwise(d.log_likelihood["y"].values)[0] for d in idatas.values()], axis=1)
    w = stacking_weights(lpd)
    np.testing.assert_allclose(w, [ref[n] for n in idatas], atol=1e-3)
    # one law that predicts every run better than another takes all the weight
    assert stacking_weights(np.stack([np.zeros(20), np.full(20, -3.0)], axis=1)).tolist() == [1.0, 0.0]


def test_candidate_laws_and_refusals(datablations_182):
    runs = load_chinchilla()
    assert [law.name for law in candidate_laws(runs)] == ["chinchilla", "chinchilla[beta=alpha]", "kaplan"]
    assert candidate_laws(datablations_182)[-1].name == "data_constrained"
    assert [law.name for law in candidate_laws(runs, "chinchilla,chinchilla[beta=alpha]")] == ["chinchilla", "chinchilla[beta=alpha]"]
    with pytest.raises(ValueError, match="needs 'U'"):
        candidate_laws(runs, "chinchilla,data_constrained")
    with pytest.raises(ValueError, match="at least two laws"):
        candidate_laws(runs, "chinchilla")


def test_stacked_posterior_mixes_by_weight():
    runs = load_chinchilla()
    sub = runs.select(np.arange(len(runs)) % 3 == 0)
    st = sample_stacked(sub, "chinchilla,chinchilla[beta=alpha]", num_warmup=300, num_samples=300, num_chains=2)
    assert sum(st.weights.values()) == pytest.approx(1.0)
    assert set(st.summary()["law"]) == {"chinchilla", "chinchilla[beta=alpha]"}
    fc = st.forecast([1e22, 1e24])
    assert (fc["L*_lo"] < fc["L*"]).all() and (fc["L*"] < fc["L*_hi"]).all() and fc["share_law_form"].between(0, 1).all()
    # all the weight on one law: the stack's forecast is that law's own
    one = StackedPosterior(posteriors=st.posteriors, weights={"chinchilla": 1.0, "chinchilla[beta=alpha]": 0.0})
    alone = st.posteriors["chinchilla"].forecast([1e24])
    assert one.forecast([1e24])["N_opt"].iloc[0] == pytest.approx(alone["N_opt"].iloc[0], rel=0.02)
    assert one.draw_counts(1001) == {"chinchilla": 1001, "chinchilla[beta=alpha]": 0}


def test_cli_sample_laws(capsys):
    path = str(chinchilla_path())
    cols = ["--N", "Model Size", "--C", "Training FLOP"]
    assert main(["sample", path, *cols, "--laws", "chinchilla"]) == 2
    assert "at least two laws" in capsys.readouterr().err
    assert main(["sample", path, *cols, "--laws", "chinchilla,data_constrained"]) == 2
    assert "needs 'U'" in capsys.readouterr().err
    code = main(["sample", path, *cols, "--laws", "chinchilla,kaplan", "--warmup", "200", "--draws", "200", "--chains", "2",
                 "--budgets", "1e22"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "stacked forecast" in out and "elpd_loo" in out and "kaplan" in out
    assert get_law("chinchilla").tie(beta="alpha").name == "chinchilla[beta=alpha]"


def test_backtest_stacked_mixes_each_cut_by_what_was_known(tmp_path):
    """The stack's predictive at each cut is the weighted mixture of the laws' own: its PIT (the mixture's CDF at the
    held-out loss) equals the weighted PITs of the laws to Monte Carlo error (draws are subsampled evenly, 1/sqrt(S)
    ~ 0.03 at S = 400 per law); the first cut is weighed by LOO and later ones by what earlier cuts forecast."""
    from bayes_scaling.backtests import backtest
    from bayes_scaling.stacking import backtest_stacked

    runs = load_chinchilla()
    sub = runs.select(np.arange(len(runs)) % 2 == 0)
    opts = dict(cuts=[3e19, 1e20], num_warmup=200, num_samples=200, num_chains=2, loo=True, max_draws=400)
    per = {name: backtest(name, sub, **opts) for name in ("chinchilla", "kaplan")}
    st, per2, wt = backtest_stacked(sub, "chinchilla,kaplan", weights="lfo", backtests=per)
    assert list(per2) == ["chinchilla", "kaplan"] and list(wt["weights_from"]) == ["loo", "lfo"]
    assert np.allclose(wt[["chinchilla", "kaplan"]].sum(axis=1), 1.0)
    assert st.name == "stack of chinchilla, kaplan" and len(st.points) == len(per["kaplan"].points)
    for lab, (_, w) in zip(dict.fromkeys(st.points["label"]), wt.iterrows()):
        rows = (st.points["label"] == lab).to_numpy()
        mixed = w["chinchilla"] * per["chinchilla"].points.loc[rows, "pit"] + w["kaplan"] * per["kaplan"].points.loc[rows, "pit"]
        np.testing.assert_allclose(st.points.loc[rows, "pit"], mixed, atol=0.06)
    with pytest.raises(ValueError, match="different cuts"):
        backtest_stacked(sub, "chinchilla,kaplan", backtests={"a": per["chinchilla"], "b": backtest("kaplan", sub, **{**opts, "cuts": [1e20]})})


def test_cli_backtest_laws(capsys, tmp_path):
    path = str(chinchilla_path())
    cols = ["--N", "Model Size", "--C", "Training FLOP"]
    for extra, msg in ((["--laws", "chinchilla,data_constrained"], "needs 'U'"), (["--laws", "chinchilla[beta]"], "NAME=OTHER"),
                       (["--laws", "chinchilla,kaplan", "--tie", "beta=alpha"], "drop --tie")):
        assert main(["backtest", path, *cols, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert msg in err and len(err.strip().splitlines()) == 1, err
    out_json = tmp_path / "bt.json"
    code = main(["backtest", path, *cols, "--laws", "chinchilla,chinchilla[beta=alpha]", "--cuts", "1e21",
                 "--warmup", "200", "--draws", "200", "--chains", "2", "--json", str(out_json)])
    out = capsys.readouterr().out
    assert code in (0, 1) and "stack of chinchilla, chinchilla[beta=alpha]" in out
    import json

    res = json.loads(out_json.read_text())
    assert set(res["laws"]) == {"chinchilla", "chinchilla[beta=alpha]"} and res["weights"][0]["weights_from"] == "loo"
    assert res["pooled"]["held_out"] == res["laws"]["chinchilla"]["held_out"] > 0


def test_compute_only_law_is_a_candidate_on_a_frontier_table():
    """On a frontier table (one run per budget: IsoFLOP vertices) the compute-only L*(C) = E + A C^-alpha predicts
    the same losses as the joint laws and joins the candidates; on runs of many sizes per budget it does not."""
    import pandas as pd
    from conftest import data

    from bayes_scaling import load_runs
    from bayes_scaling.stacking import is_frontier

    optima = pd.read_csv(data("isoflop_optima.csv")).dropna(subset=["n_star"])
    frontier = load_runs(optima, N="n_star", D="t_star", C="flops", loss="loss_star",
                         family=["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"])
    assert is_frontier(frontier) and not is_frontier(load_chinchilla())
    assert [law.name for law in candidate_laws(frontier)][-1] == "power_law_floor"
    assert "power_law_floor" not in [law.name for law in candidate_laws(load_chinchilla())]
    assert candidate_laws(load_chinchilla(), "chinchilla,power_law_floor")[1].inputs == ("C",)
    # one model's learning curve (N fixed, D and C growing, loss falling) is not a frontier
    D = np.logspace(9, 10, 5)
    curve = load_runs(pd.DataFrame({"N": 1e8, "D": D, "C": 6e8 * D, "loss": [3.0, 2.9, 2.8, 2.7, 2.6]}), C="C")
    assert not is_frontier(curve)
    # a tie list inside --laws keeps its commas
    assert candidate_laws(load_chinchilla(), "kaplan,chinchilla[beta=alpha,A=B]")[1].name == "chinchilla[A=B,beta=alpha]"

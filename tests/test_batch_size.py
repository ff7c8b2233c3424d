"""Critical batch size posteriors: Zhang et al.'s published values, recovery of a known truth, the B_crit size
law and its forecasts (chained through a loss-law posterior), and bad sweeps."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.analyses.batch_size import critical_batch_size, forecast_critical_batch, load_batch_sweep, zhang_cbs

FAST = dict(num_warmup=300, num_samples=300, num_chains=2)
ZHANG = {"85M": 745, "151M": 955, "302M": 1394, "604M": 1889, "1.2B": 2533}  # sequences of 512 tokens


@pytest.fixture(scope="module")
def zhang(zhang_critical_batch):
    return zhang_critical_batch  # conftest: shared with the plot tests


def test_zhang_definition_matches_notebook():
    # the notebook solves b - 5 a CBS + 5 a 1.2 * 256 = 0 for CBS
    a, b = 1293.8, 2834258.0
    cbs = zhang_cbs(a, b)
    assert abs(b - 5 * a * cbs + 5 * a * 1.2 * 256) < 1e-6 * b + 5 * a * 0.01


def test_zhang_published_cbs(zhang):
    # Zhang et al. 2024: 745, 955, 1394, 1889, 2533 sequences from their log-space least-squares fit of
    # S(B) = a + b/B; our posterior medians (Student-t likelihood) must land within 5% (the tolerance),
    # each with an interval around it.
    t = zhang.table(prob=0.9).set_index("group")
    for size, published in ZHANG.items():
        row = t.loc[size]
        assert abs(row["cbs_zhang"] / published - 1) < 0.05, (size, row["cbs_zhang"])
        assert row["cbs_zhang_lo"] < row["cbs_zhang"] < row["cbs_zhang_hi"]
        assert row["B_crit_lo"] < row["B_crit"] < row["B_crit_hi"]
    d = zhang.diagnostics()
    assert d["divergences"] == 0 and d["max_r_hat"] < 1.05


def test_zhang_size_law(zhang, zhang_size_law):
    # Zhang et al.: CBS = 93.2 N_millions^0.468. The exponent is a property of the data: close (0.03) and inside
    # our 90% interval, which carries each size's CBS uncertainty and the sizes' scatter about the law.
    law = zhang_size_law
    p = law.exponents["N_params_nominal"]
    lo, hi = np.quantile(p, [0.05, 0.95])
    assert abs(np.median(p) - 0.468) < 0.03 and lo < 0.468 < hi
    # coefficient in Zhang's units (N in millions): 93.2 within the interval
    k_millions = law.k * 1e6 ** p
    assert np.quantile(k_millions, 0.05) < 93.2 < np.quantile(k_millions, 0.95)
    # Kaplan's form across targets, B_crit = B* L^(-1/alpha_B): B_crit grows as the target loss falls
    by_loss = zhang.scaling_law("target_val_loss", **FAST)
    assert np.quantile(by_loss.exponents["target_val_loss"], 0.95) < 0
    fc = forecast_critical_batch(law, at=[3e9])
    assert fc["lo"][0] < fc["median"][0] < fc["hi"][0] and fc["median"][0] > ZHANG["1.2B"]


def test_recovery_simulated():
    # known S_min and B_noise per group, 4% log-normal noise on steps: each truth inside the 99% interval
    rng = np.random.default_rng(3)
    truth = {"g1": (1000.0, 500.0), "g2": (3000.0, 2000.0), "g3": (8000.0, 6000.0), "g4": (500.0, 300.0), "g5": (2e4, 1e4)}
    rows = []
    for g, (S_min, B_noise) in truth.items():
        for B in 2.0 ** np.arange(6, 15):
            rows.append({"g": g, "batch_size": B, "steps": S_min * (1 + B_noise / B) * np.exp(0.04 * rng.standard_normal())})
    post = critical_batch_size(pd.DataFrame(rows), group="g", **FAST)
    for j, g in enumerate(post.sweep.groups):
        lo, hi = np.quantile(post.B_noise[:, j], [0.005, 0.995])
        assert lo < truth[g][1] < hi, (g, lo, hi)
        lo, hi = np.quantile(post.S_min[:, j], [0.005, 0.995])
        assert lo < truth[g][0] < hi, (g, lo, hi)


def test_forecast_through_loss_posterior():
    # B_crit = k N^p with N the compute-optimal size of a Chinchilla law: with a point-mass loss posterior the
    # forecast equals k N_opt(C)^p (closed form, METHODS §1.2), with the size law's interval
    from bayes_scaling import Posterior, get_law
    from bayes_scaling.analyses.hyperparams import PowerLawPosterior

    law = get_law("chinchilla")
    p = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    post = Posterior(law=law, draws={k: np.full((2, 50), v) for k, v in p.items()}, noise={}, sample_stats={})
    k, e = np.full(100, 2.0), np.full(100, 0.5)
    size_law = PowerLawPosterior(inputs=("N",), k=k, exponents={"N": e}, tau=np.zeros(100), sampler=None, observed={})
    fc = forecast_critical_batch(size_law, budgets=[1e22], loss_posterior=post)
    s = p["alpha"] + p["beta"]
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / s)
    N_opt = G * (1e22 / 6) ** (p["beta"] / s)
    np.testing.assert_allclose(fc["N"][0], N_opt, rtol=1e-6)
    np.testing.assert_allclose(fc["median"][0], 2.0 * N_opt ** 0.5, rtol=1e-6)
    # a Kaplan-style law in the target loss, B_crit = B* L^(-1/alpha_B), driven by L*(C) of the loss law
    from bayes_scaling.derived import loss_at_optimum

    loss_law = PowerLawPosterior(inputs=("target_val_loss",), k=np.full(100, 3e4), exponents={"target_val_loss": np.full(100, -2.0)},
                                 tau=np.zeros(100), sampler=None, observed={})
    fc = forecast_critical_batch(loss_law, budgets=[1e22], loss_posterior=post, quantity="loss")
    L_star = float(loss_at_optimum(law, p, 1e22))
    np.testing.assert_allclose(fc["median"][0], 3e4 * L_star ** -2.0, rtol=1e-6)
    with pytest.raises(ValueError, match="quantity="):
        forecast_critical_batch(loss_law, budgets=[1e22], loss_posterior=post)
    with pytest.raises(ValueError, match="give `at`"):
        forecast_critical_batch(size_law, budgets=[1e22])


def _sweep(changes=None):
    df = pd.DataFrame({"g": ["a"] * 4 + ["b"] * 4, "batch_size": [64, 128, 256, 512] * 2,
                       "steps": [1000.0, 600, 400, 300, 2000, 1200, 800, 600]})
    for (col, row), value in (changes or {}).items():
        df.loc[row, col] = value
    return df


def test_bad_sweeps():
    with pytest.raises(ValueError, match=r"column 'steps', row 3: .*never reached the target"):
        load_batch_sweep(_sweep({("steps", 2): np.nan}), group="g")
    with pytest.raises(ValueError, match=r"column 'batch_size', row 2: .*not a positive batch size"):
        load_batch_sweep(_sweep({("batch_size", 1): -4}), group="g")
    with pytest.raises(ValueError, match=r"row 4: batch size 64 appears twice in group 'a' \(rows 1 and 4\)"):
        load_batch_sweep(_sweep({("batch_size", 3): 64}), group="g")
    with pytest.warns(UserWarning, match="row 3: batch sizes of group 'a' are not in increasing order"):
        s = load_batch_sweep(_sweep({("batch_size", 1): 1024}), group="g")
    assert s.batch[0].tolist() == [64, 256, 512, 1024] and s.steps[0].tolist() == [1000, 400, 300, 600]
    with pytest.raises(ValueError, match="group 'c' .* has 2 batch sizes"):
        load_batch_sweep(pd.concat([_sweep(), pd.DataFrame({"g": ["c", "c"], "batch_size": [64, 128], "steps": [5.0, 3.0]})],
                                   ignore_index=True), group="g")
    with pytest.raises(ValueError, match="column 'tokens' not found"):
        load_batch_sweep(_sweep(), steps="tokens")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = load_batch_sweep(_sweep(), group="g")
    assert s.groups == ("a", "b") and s.mask.sum() == 8

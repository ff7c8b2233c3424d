"""NUTS posteriors: the Chinchilla posterior against Epoch's 4000 bootstrap refits, sampler health,
derived-quantity intervals, predictive checks, NetCDF round trip, seeds, and diagnostics against arviz."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import data

from bayes_scaling import Posterior, get_law, sample_posterior
from bayes_scaling.derived import compute_optimal
from bayes_scaling.diagnostics import ess_bulk, ess_tail, rhat
from bayes_scaling.laws import MUENNIGHOFF_BASE

EPOCH_95 = {"E": (1.769, 1.871), "alpha": (0.317, 0.373), "beta": (0.331, 0.415)}


@pytest.fixture(scope="module")
def chinchilla_posterior(chinchilla_runs):
    return sample_posterior("chinchilla", chinchilla_runs, seed=0)  # defaults: 4 chains x (1000 + 1000)


@pytest.fixture(scope="module")
def bootstrap():
    df = pd.read_csv(data("reference_bootstrap_4000_DERIVED.csv"))
    p = {"E": np.exp(df["e_logE"].to_numpy()), "A": np.exp(df["a_logA"].to_numpy()), "B": np.exp(df["b_logB"].to_numpy()),
         "alpha": df["alpha"].to_numpy(), "beta": df["beta"].to_numpy()}
    return p


def test_chinchilla_posterior_is_healthy(chinchilla_posterior):
    d = chinchilla_posterior.diagnostics()
    assert d["divergences"] == 0
    assert d["max_r_hat"] <= 1.01
    assert d["min_ess_bulk"] >= 400 and d["min_ess_tail"] >= 400
    table = chinchilla_posterior.summary(prob=0.9)
    assert set(table.index) == {"E", "A", "B", "alpha", "beta", "sigma", "gamma"}
    # the data say the noise grows with compute (METHODS §4 option, on by default when C is known)
    assert np.quantile(chinchilla_posterior.noise["gamma"], 0.05) > 0
    assert {"mean", "sd", "median", "eti_90%_lo", "hdi_90%_hi", "r_hat", "ess_bulk", "ess_tail"} <= set(table.columns)
    # what is left of the A-alpha and B-beta ridges in the coordinates NUTS moves in is a note, in plain words, not
    # a failure; the natural-coordinate correlation (r = 0.999), which centring removes most of, is not repeated
    assert any(n.startswith("log_A_c and alpha are correlated") for n in d["notes"])
    assert not any("A and alpha" in w for w in d["warnings"])


def test_chinchilla_posterior_matches_epoch_bootstrap(chinchilla_posterior, bootstrap):
    post = chinchilla_posterior
    for name, (lo, hi) in EPOCH_95.items():
        assert lo <= np.median(post.draws[name]) <= hi, name
    # 80% band of N_opt(5.76e23): the posterior's against the 4000 bootstrap refits'
    n_post = np.quantile(post.n_opt(5.76e23), [0.1, 0.9])
    n_boot = np.quantile(np.asarray(compute_optimal("chinchilla", bootstrap, 5.76e23)[0]), [0.1, 0.9])
    assert n_boot == pytest.approx([5.79e10, 9.69e10], rel=0.02)  # METHODS §1.2 quotes this band
    assert n_post[0] < n_boot[1] and n_post[1] > n_boot[0]  # overlap
    ratio = (n_post[1] - n_post[0]) / (n_boot[1] - n_boot[0])
    assert 0.5 <= ratio <= 2.0, ratio
    # exponent a = beta / (alpha + beta): no Hoffmann-style overconfidence
    a = np.quantile(post.exponent_a(), [0.1, 0.9])
    assert a[1] - a[0] > 0.02
    a_boot = bootstrap["beta"] / (bootstrap["alpha"] + bootstrap["beta"])
    assert a[0] < np.quantile(a_boot, 0.9) and a[1] > np.quantile(a_boot, 0.1)


def test_forecast_intervals_and_probabilities(chinchilla_posterior):
    post = chinchilla_posterior
    table = post.forecast([1e21, 5.76e23, 1e25], prob=0.8)
    for col in ("N_opt", "D_opt", "D/N", "L*"):
        assert np.all(table[f"{col}_lo"] < table[col]) and np.all(table[col] < table[f"{col}_hi"])
    # the interval of one new run is wider than that of the mean law
    assert np.all(table["L_new_lo"] < table["L*_lo"]) and np.all(table["L_new_hi"] > table["L*_hi"])
    n = post.n_opt(5.76e23)
    assert post.probability(n, float(np.median(n))) == pytest.approx(0.5, abs=0.01)
    c = post.compute_for_loss(2.0)
    assert np.all(np.isfinite(c)) and np.median(c) == pytest.approx(2.5e23, rel=0.5)
    plan = post.loss_of_plan(7e10, 1.4e12, prob=0.9)
    assert plan["predictive_lo"] < plan["lo"] < plan["median"] < plan["hi"] < plan["predictive_hi"]


def test_predictive_check(chinchilla_posterior):
    check = chinchilla_posterior.predictive_check(prob=0.9)
    assert 0.8 <= check["coverage"] <= 1.0
    assert 0.0 <= check["p_value_spread"] <= 1.0
    rep = chinchilla_posterior.posterior_predictive()
    assert rep.shape == (4, 1000, 240) and np.all(np.isfinite(rep))


def test_prior_predictive_gives_sensible_losses(chinchilla_runs):
    from bayes_scaling.model import prior_predictive

    X = {"N": chinchilla_runs.N, "D": chinchilla_runs.D}
    losses = prior_predictive("chinchilla", X, num_draws=2000, seed=0)
    assert losses.shape == (2000, 240)
    # weakly informative: a good share of prior laws give losses within [1, 10] nats over the whole design,
    # and the draws are not all alike (the priors are not a disguised point estimate)
    share = np.mean(np.all((losses > 1) & (losses < 10), axis=1))
    assert share > 0.2
    assert np.std(np.log(losses[:, 0])) > 0.3
    again = prior_predictive("chinchilla", X, num_draws=2000, seed=0)
    np.testing.assert_array_equal(losses, again)


def test_netcdf_round_trip_and_seed(chinchilla_runs, tmp_path):
    a = sample_posterior("chinchilla", chinchilla_runs, num_warmup=150, num_samples=100, num_chains=2, seed=3)
    b = sample_posterior("chinchilla", chinchilla_runs, num_warmup=150, num_samples=100, num_chains=2, seed=3)
    for k in a.draws:
        np.testing.assert_array_equal(a.draws[k], b.draws[k])
    # a JAX random key is a seed too: PRNGKey(3) and the typed key(3) are the int 3's key, and give its draws
    import jax

    for key in (jax.random.PRNGKey(3), jax.random.key(3)):
        k_ = sample_posterior("chinchilla", chinchilla_runs, num_warmup=150, num_samples=100, num_chains=2, seed=key)
        np.testing.assert_array_equal(a.draws["alpha"], k_.draws["alpha"])
        assert k_.settings["seed"] == [0, 3]
    with pytest.raises(ValueError, match="seed must be an int or a JAX random key"):
        sample_posterior("chinchilla", chinchilla_runs, num_warmup=150, num_samples=100, num_chains=2, seed="three")
    path = tmp_path / "post.nc"
    a.save(path)
    with pytest.raises(ValueError, match="exists; not overwriting"):
        a.save(path)
    c = Posterior.load(path)
    for k in a.draws:
        np.testing.assert_array_equal(a.draws[k], c.draws[k])
    np.testing.assert_array_equal(a.noise["sigma"], c.noise["sigma"])
    np.testing.assert_array_equal(a.log_loss_mean, c.log_loss_mean)
    for k in a.sample_stats:
        np.testing.assert_array_equal(a.sample_stats[k], c.sample_stats[k])
    assert c.settings["seed"] == 3 and c.law == a.law
    idata = a.to_inference_data()
    assert idata.posterior["alpha"].dims == ("chain", "draw")
    assert idata.posterior["log_loss_mean"].dims == ("chain", "draw", "run")
    assert "diverging" in idata.sample_stats and "acceptance_rate" in idata.sample_stats


def test_diagnostics_agree_with_arviz():
    import arviz as az

    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal((4, 500)), axis=1) * 0.05 + rng.standard_normal((4, 500))
    # R-hat is the same formula; ESS rests on numpyro's autocovariance sum, whose truncation of the
    # autocorrelation series differs slightly from arviz's (Geyer's initial monotone sequence): 5%
    for y in (x, rng.standard_normal((4, 1000))):
        assert rhat(y) == pytest.approx(float(az.rhat(y)), rel=1e-6)
        assert ess_bulk(y) == pytest.approx(float(az.ess(y, method="bulk")), rel=0.05)
        assert ess_tail(y) == pytest.approx(float(az.ess(y, method="tail")), rel=0.05)


def test_data_constrained_flat_direction_is_wide(datablations_182):
    law = get_law("data_constrained").fix(**MUENNIGHOFF_BASE)
    post = sample_posterior(law, datablations_182, num_warmup=500, num_samples=500, num_chains=2, seed=0)
    r = post.draws["R_D_star"]
    lo, hi = np.quantile(r, [0.05, 0.95])
    # METHODS §1.4: the objective is almost flat in R_D* from ~10 to 200: the posterior must say so
    assert hi / lo > 3
    assert post.diagnostics()["divergences"] <= 0.01 * r.size


def test_bad_sampler_inputs(chinchilla_runs):
    with pytest.raises(ValueError, match="unknown likelihood"):
        sample_posterior("chinchilla", chinchilla_runs, likelihood="cauchy")
    with pytest.raises(ValueError, match="not free parameters"):
        sample_posterior("chinchilla", chinchilla_runs, priors={"gamma": None})


def test_predictive_draws_for_every_likelihood():
    # built by hand: only the noise sampling is under test (the Huber branch used to mismatch shapes)
    from bayes_scaling.model import prior_predictive

    rng = np.random.default_rng(0)
    draws = {k: np.full((2, 50), v) for k, v in {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}.items()}
    mu = np.log(np.full((2, 50, 7), 2.5))
    for lik, shape in (("student_t", 4.0), ("gaussian", 0.0), ("huber_density", 1.345)):
        post = Posterior(law=get_law("chinchilla"), draws=draws, noise={"sigma": np.full((2, 50), 0.01)},
                         sample_stats={"diverging": np.zeros((2, 50), bool)}, log_loss_mean=mu,
                         observed={"N": np.ones(7), "D": np.ones(7), "loss": np.full(7, 2.5)},
                         settings={"likelihood": lik, "shape": shape})
        rep = post.posterior_predictive(seed=1)
        assert rep.shape == (2, 50, 7) and np.all(np.isfinite(rep))
        assert 0.002 < np.std(np.log(rep)) < 0.05
        plan = post.loss_of_plan(1e9, 2e10)
        assert plan["predictive_lo"] < plan["lo"] <= plan["hi"] < plan["predictive_hi"]
        pri = prior_predictive("chinchilla", {"N": rng.uniform(1e8, 1e9, 5), "D": rng.uniform(1e9, 1e10, 5)},
                               num_draws=20, likelihood=lik)
        assert pri.shape == (20, 5) and np.all(pri > 0)


def test_likelihood_shapes_are_named_nu_and_k():
    # nu for Student-t, k for the Huber density, neither for Gaussian; a wrong pairing says which one belongs where
    from bayes_scaling.model import make_model
    from bayes_scaling.noise import shape_from_settings, shape_of, shape_settings

    assert make_model("chinchilla", likelihood="huber_density", k=2.0).shape == 2.0
    assert make_model("chinchilla", nu=7).shape == 7.0 and make_model("chinchilla", nu="learn").learn_nu
    assert make_model("chinchilla", likelihood="gaussian").shape == 0.0
    for bad, words in ((dict(likelihood="student_t", k=2.0), "Student-t noise takes nu"),
                       (dict(likelihood="huber_density", nu=3.0), "the Huber density takes k"),
                       (dict(likelihood="gaussian", nu=3.0), "no shape parameter"),
                       (dict(likelihood="student_t", nu=-1.0), "nu must be a positive number")):
        with pytest.raises(ValueError, match=words):
            shape_of(**bad)
    assert shape_settings("huber_density", 2.0) == {"k": 2.0} and shape_settings("gaussian", 0.0) == {}
    # results record nu or k; files written before read back through "shape"
    assert shape_from_settings({"likelihood": "huber", "k": 2.0}) == 2.0
    assert shape_from_settings({"likelihood": "student_t", "shape": 6.0}) == 6.0
    assert shape_from_settings({"likelihood": "huber"}) == 1.345

"""Hierarchical pooling (issue 4): families sharing exponents with different offsets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_scaling import load_runs, sample_posterior
from bayes_scaling.analyses.hierarchical import make_hierarchical_model, sample_hierarchical

ALPHA, BETA = 0.34, 0.30


@pytest.fixture(scope="module")
def families():
    rng = np.random.default_rng(2)
    rows = []
    for f in range(6):
        E = 1.6 + 0.1 * f  # offsets differ by family, exponents are shared
        A = 400 * np.exp(0.3 * rng.standard_normal())
        B = 1500 * np.exp(0.3 * rng.standard_normal())
        N = np.exp(rng.uniform(np.log(3e7), np.log(3e9), 25))
        D = np.exp(rng.uniform(np.log(5e8), np.log(5e10), 25))
        y = (E + A * N ** -ALPHA + B * D ** -BETA) * np.exp(0.01 * rng.standard_normal(25))
        rows.append(pd.DataFrame({"N": N, "D": D, "loss": y, "fam": f"f{f}"}))
    return load_runs(pd.concat(rows, ignore_index=True), family="fam")


@pytest.fixture(scope="module")
def pooled(families):
    return sample_hierarchical("chinchilla", families, seed=0, num_warmup=500, num_samples=500)


def test_shared_exponent_recovered_narrower_than_separate_fits(families, pooled):
    d = pooled.diagnostics()
    assert d["divergences"] == 0 and d["max_r_hat"] <= 1.01 and not d["failing_families"]
    h = pooled.health()
    assert h.ok == d["ok"] and h.max_r_hat == d["max_r_hat"] and str(h).startswith("healthy: 0 divergences")
    idata = pooled.to_arviz()
    assert list(idata.posterior["alpha"].coords["family"].values) == list(pooled.families)
    np.testing.assert_array_equal(idata.posterior["alpha"].values, pooled.draws["alpha"])
    a = pooled.draws["alpha"][..., 0]
    lo, hi = np.quantile(a, [0.05, 0.95])
    assert lo <= ALPHA <= hi
    blo, bhi = np.quantile(pooled.draws["beta"][..., 0], [0.05, 0.95])
    assert blo <= BETA <= bhi
    widths = []
    for fam in pooled.families:
        post = sample_posterior("chinchilla", families.select(families.family == fam), seed=0, num_warmup=500, num_samples=500)
        q = np.quantile(post.draws["alpha"], [0.05, 0.95])
        widths.append(q[1] - q[0])
    assert hi - lo < min(widths), (hi - lo, widths)


def test_per_family_offsets_and_forecasts(pooled):
    # E is not pooled: each family keeps its own offset (truth 1.6 + 0.1 f)
    for i, fam in enumerate(pooled.families):
        e = pooled.family(fam)["E"]
        assert np.quantile(e, 0.01) < 1.6 + 0.1 * i + 0.15
    table = pooled.forecast([1e21, 1e23], prob=0.8)
    assert len(table) == 12 and set(table["family"]) == set(pooled.families)
    assert np.all(table["N_opt_lo"] < table["N_opt"]) and np.all(table["N_opt"] < table["N_opt_hi"])
    s = pooled.summary()
    assert set(s.loc[s["parameter"] == "alpha", "family"]) == {"(shared)"}
    assert set(s.loc[s["parameter"] == "E", "pooling"]) == {"none"}


def test_partial_pooling_runs_and_reports_population(families):
    post = sample_hierarchical("chinchilla", families, pool={"alpha": "partial", "beta": "partial"}, seed=1,
                               num_warmup=300, num_samples=300, num_chains=2)
    assert {"alpha_pop", "alpha_tau", "beta_pop", "beta_tau"} <= set(post.population)
    assert post.draws["alpha"].shape == (2, 300, 6)
    with pytest.raises(ValueError, match="pooling must be one of"):
        make_hierarchical_model("chinchilla", pool={"alpha": "some"})
    with pytest.raises(ValueError, match="sampled centred"):
        make_hierarchical_model("chinchilla", pool={"A": "partial"})


def test_pooled_model_on_porian_configurations():
    from conftest import data

    cols = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]
    runs = load_runs(data("isoflop_points.csv"), N="n", D="t", C="flops", loss="loss", family=cols)
    post = sample_hierarchical("chinchilla", runs, num_warmup=500, num_samples=500, num_chains=2, seed=0)
    assert len(post.families) == 15
    d = post.diagnostics()
    assert d["divergences"] == 0 and d["max_r_hat"] <= 1.02
    table = post.forecast([1e21], prob=0.8)
    assert len(table) == 15 and np.all(table["N_opt_lo"] < table["N_opt_hi"])
    # shared exponents: one value for every configuration
    assert np.ptp(post.draws["alpha"][0, 0]) == 0.0

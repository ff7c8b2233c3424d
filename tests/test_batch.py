"""Batch point fits over families (issue 4, first part): padded, masked families fitted in one call give
the per-family fits; families too small for the law are reported and skipped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import data

from bayes_scaling import compute_optimal, fit_point, load_runs
from bayes_scaling.batch import fit_point_batch, make_batch

CONFIG = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]


@pytest.fixture(scope="module")
def porian():
    return load_runs(data("isoflop_points.csv"), N="n", D="t", C="flops", loss="loss", family=CONFIG)


def test_make_batch_pads_and_masks(porian):
    b = make_batch(porian)
    assert b.num_families == 15
    assert b.mask.shape == b.loss.shape == b.inputs["N"].shape
    assert int(b.mask.sum()) == len(porian)
    for i, fam in enumerate(b.families):
        k = int(b.counts[i])
        np.testing.assert_array_equal(b.inputs["N"][i, :k], porian.N[porian.family == fam])
        assert np.all(b.mask[i, k:] == 0)


def test_batch_equals_per_family_fits(porian):
    batch = fit_point_batch("chinchilla", porian, num_polish=8)
    assert len(batch.fits) == 15 and not batch.skipped
    for fam, fit in batch.fits.items():
        single = fit_point("chinchilla", porian.select(porian.family == fam), num_polish=8)
        assert fit.converged and single.converged
        # the same minimum: padding runs add exact zeros, only the summation order differs
        assert fit.objective == pytest.approx(single.objective, rel=1e-9), fam
        # the same stationary point (the Newton polish removes the stopping tolerance's slack): 1e-6
        # relative on every parameter the runs identify; a parameter that ran to ~0 (E on one OWT2
        # configuration) is arbitrary below ~1e-10 and is compared absolutely, and flagged in the notes
        for name, value in single.params.items():
            if value < 1e-6:
                assert fit.params[name] == pytest.approx(value, abs=1e-6), (fam, name)
                assert any(f"{name} ran to ~0" in n for n in fit.notes), (fam, name)
            else:
                assert fit.params[name] == pytest.approx(value, rel=1e-6), (fam, name)
    table = batch.table()
    assert list(table["family"]) == list(batch.fits) and table["converged"].all()
    # Huber fits in float64 start by variable projection in the batch as alone (the same program per family); the
    # start grid stays available and reaches the same minima
    assert all("variable projection" in " ".join(f.notes) for f in batch.fits.values())
    grid = fit_point_batch("chinchilla", porian, num_polish=8, strategy="grid")
    for fam, fit in batch.fits.items():
        assert fit.objective <= grid.fits[fam].objective * (1 + 1e-9), fam


def test_small_families_are_skipped_not_crashed():
    rng = np.random.default_rng(0)
    N = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 43))
    D = np.exp(rng.uniform(np.log(1e9), np.log(1e12), 43))
    loss = 1.8 + 400 * N ** -0.34 + 2000 * D ** -0.37
    df = pd.DataFrame({"N": N, "D": D, "loss": loss, "fam": ["a"] * 20 + ["b"] * 20 + ["tiny"] * 3})
    out = fit_point_batch("chinchilla", load_runs(df, family="fam"), num_polish=4)
    assert set(out.fits) == {"a", "b"}
    assert "3 runs" in out.skipped["tiny"] and "needs at least 5" in out.skipped["tiny"]
    assert out.fits["a"].params["alpha"] == pytest.approx(0.34, rel=1e-4)
    assert "skipped" in out.table().set_index("family").loc["tiny", "status"]


def test_bootstrap_batch_matches_epoch_reference(chinchilla_runs):
    from bayes_scaling.batch import bootstrap_point

    boot = bootstrap_point("chinchilla", chinchilla_runs, num_resamples=1000, seed=0)
    assert boot["converged"].all()
    ref = pd.read_csv(data("reference_bootstrap_4000_DERIVED.csv"))
    ref_p = {"E": np.exp(ref["e_logE"].to_numpy()), "A": np.exp(ref["a_logA"].to_numpy()), "B": np.exp(ref["b_logB"].to_numpy()),
             "alpha": ref["alpha"].to_numpy(), "beta": ref["beta"].to_numpy()}
    ours = {"alpha": boot["params"]["alpha"], "beta": boot["params"]["beta"],
            "log_N_opt": np.log(np.asarray(compute_optimal("chinchilla", boot["params"], 5.76e23)[0]))}
    theirs = {"alpha": ref_p["alpha"], "beta": ref_p["beta"],
              "log_N_opt": np.log(np.asarray(compute_optimal("chinchilla", ref_p, 5.76e23)[0]))}
    # Monte-Carlo error of a quantile from 1000 draws, estimated by drawing 1000 of the 4000 reference refits
    # 400 times; ours must sit within 3.5 such standard errors of the reference quantile (10%, 50%, 90%)
    rng = np.random.default_rng(1)
    for name in ours:
        q = np.array([0.1, 0.5, 0.9])
        sub = np.array([np.quantile(rng.choice(theirs[name], 1000, replace=False), q) for _ in range(400)])
        se = sub.std(axis=0)
        gap = np.abs(np.quantile(ours[name], q) - np.quantile(theirs[name], q))
        assert np.all(gap <= 3.5 * se), (name, gap / se)


def test_batch_posteriors_match_single_family_posteriors():
    from bayes_scaling import sample_posterior
    from bayes_scaling.batch_posterior import sample_posterior_batch
    from bayes_scaling.diagnostics import ess_bulk

    rng = np.random.default_rng(0)
    rows = []
    for f, n in enumerate((40, 40, 4, 1)):  # f0 and f1 the same size: their single posteriors share one compile
        N = np.exp(rng.uniform(np.log(3e7), np.log(3e9), n))
        D = np.exp(rng.uniform(np.log(5e8), np.log(5e10), n))
        y = (1.7 + 0.05 * f + 400 * N ** -0.34 + 1500 * D ** -0.30) * np.exp(0.01 * rng.standard_normal(n))
        rows.append(pd.DataFrame({"N": N, "D": D, "loss": y, "fam": f"f{f}"}))
    runs = load_runs(pd.concat(rows, ignore_index=True), family="fam")
    batch = sample_posterior_batch("chinchilla", runs, num_warmup=400, num_samples=400, num_chains=2)
    # 4 runs: sampled (the priors regularise) and flagged; 1 run: skipped, as a single posterior refuses it
    assert set(batch.posteriors) == {"f0", "f1", "f2"} and set(batch.skipped) == {"f3"}
    assert "needs at least 2" in batch.skipped["f3"]
    assert any("the priors, not the runs" in p for p in batch.failing()["f2"])
    for fam in ("f0", "f1"):
        post = batch.posteriors[fam]
        assert post.draws["alpha"].shape == (2, 400) and post.log_loss_mean.shape[-1] == len(post.observed["loss"])
        # families are an axis of one computation: a family sampled alone with the key it had in the batch (recorded
        # in its settings) gives the identical draws (f0 and f1 are not padded, so the arithmetic is the same)
        key = np.asarray(post.settings["seed"], np.uint32)
        single = sample_posterior("chinchilla", runs.select(runs.family == fam), num_warmup=400, num_samples=400,
                                  num_chains=2, seed=key)
        for name in ("E", "A", "B", "alpha", "beta"):
            np.testing.assert_array_equal(post.draws[name], single.draws[name], err_msg=f"{fam} {name}")
        np.testing.assert_array_equal(post.noise["sigma"], single.noise["sigma"])
        assert post.settings["batch_seed"] == 0
    # the padded family f2 is the same posterior in distribution (padding changes the order of sums, not the density)
    single = sample_posterior("chinchilla", runs.select(runs.family == "f2"), num_warmup=400, num_samples=400,
                              num_chains=2, seed=5)
    for name in ("E", "alpha", "beta"):
        a, b = batch.posteriors["f2"].draws[name], single.draws[name]
        mcse = np.hypot(np.std(a) / np.sqrt(ess_bulk(a)), np.std(b) / np.sqrt(ess_bulk(b)))
        assert abs(np.median(a) - np.median(b)) < 4 * mcse + 1e-9, name
    table = batch.forecast([1e21, 1e23], prob=0.8)
    assert len(table) == 6 and list(table["family"].unique()) == ["f0", "f1", "f2"]


def test_sharded_equals_unsharded():
    # a fresh process with 4 forced host devices (XLA flags must be set before JAX starts)
    import json
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = dict(__import__("os").environ, PYTHONPATH=str(here.parent))
    proc = subprocess.run([sys.executable, str(here / "sharding_check.py")], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["families"] == [f"f{i}" for i in range(6)]
    assert out["max_rel_param"] <= 1e-10 and out["max_rel_objective"] <= 1e-12 and out["boot_max_rel"] <= 1e-10
    # sharded NUTS runs each family's chains exactly as one device does: the same draws
    assert out["post_families"] == ["f0", "f1", "f2"] and out["post_max_abs"] <= 1e-9, out["post_max_abs"]
    # and one posterior's chains spread over two devices: the same draws as on one
    assert out["chain_devices"] == [2, 1] and out["chains_max_abs"] <= 1e-9, out["chains_max_abs"]


def test_warm_protocol_reaches_the_grid_minima():
    """The warm protocol (pilot families on the full grid, the rest started from the pilots' optima) gives
    the grid protocol's fits on similar families: same parameters to 1e-6 (both end at the stationary point),
    and its own verification says so."""
    rng = np.random.default_rng(7)
    F, n = 24, 60
    N = np.exp(rng.uniform(np.log(5e7), np.log(2e10), (F, n)))
    D = np.exp(rng.uniform(np.log(1e9), np.log(3e11), (F, n)))
    E = 1.8 * np.exp(0.05 * rng.standard_normal((F, 1)))
    alpha = 0.34 + 0.02 * rng.standard_normal((F, 1))
    y = (E + 480 * N ** -alpha + 2100 * D ** -0.37) * np.exp(0.01 * rng.standard_normal((F, n)))
    df = pd.DataFrame({"N": N.ravel(), "D": D.ravel(), "loss": y.ravel(), "fam": np.repeat([f"f{i}" for i in range(F)], n)})
    runs = load_runs(df, family="fam")
    grid = fit_point_batch("chinchilla", runs, num_polish=8)
    warm = fit_point_batch("chinchilla", runs, num_polish=8, protocol="warm", num_pilots=4, verify=3)
    assert warm.check["pilots"] == [0, 8, 15, 23] and len(warm.check["checked"]) == 3
    assert max(warm.check["relative_objective_excess"]) < 1e-9 and not warm.check["checked_worse"]
    for fam, g in grid.fits.items():
        w = warm.fits[fam]
        assert w.converged and w.objective == pytest.approx(g.objective, rel=1e-9), fam
        for name, value in g.params.items():
            assert w.params[name] == pytest.approx(value, rel=1e-6), (fam, name)
    assert any("pilot" in note for note in warm.fits["f1"].notes)
    with pytest.raises(ValueError, match="protocol"):
        fit_point_batch("chinchilla", runs, protocol="fast")
    with pytest.raises(ValueError, match="num_pilots >= 1"):
        fit_point_batch("chinchilla", runs, protocol="warm", num_pilots=0)


def test_batch_posterior_accepts_every_option_of_the_single_call():
    import inspect

    from bayes_scaling import sample_posterior
    from bayes_scaling.batch_posterior import sample_posterior_batch

    single = inspect.signature(sample_posterior).parameters
    batch = inspect.signature(sample_posterior_batch).parameters
    for name, p in single.items():
        if name in ("law", "runs"):
            continue
        assert name in batch, f"sample_posterior_batch lacks {name!r}"
        assert batch[name].default == p.default, name


def test_batch_fit_accepts_every_option_of_the_single_fit(porian):
    import inspect

    single = inspect.signature(fit_point).parameters
    batch = inspect.signature(fit_point_batch).parameters
    for name, p in single.items():
        if name in ("law", "runs", "jit", "chunk"):  # jit: the single fit's testing switch; chunk: per family here
            continue
        assert name in batch, f"fit_point_batch lacks {name!r}"
        assert batch[name].default == p.default, name
    with pytest.raises(ValueError, match="strategy 'varpro' with protocol 'warm'"):
        fit_point_batch("chinchilla", porian, strategy="varpro", protocol="warm")
    loose = fit_point_batch("chinchilla", porian.select(np.isin(porian.family, porian.family[:1])), num_polish=4, gtol=1e-3, ftol=1e-6)
    tight = fit_point_batch("chinchilla", porian.select(np.isin(porian.family, porian.family[:1])), num_polish=4)
    (a,), (b,) = loose.fits.values(), tight.fits.values()
    assert a.num_steps < b.num_steps  # the tolerances reach the stopping rule


def test_batch_options_reach_the_model_and_the_sampler():
    # the options change what is sampled: the priors and noise scale are recorded and used, the tree depth caps
    # the leapfrog steps, a diagonal mass matrix is used; 'parallel' chains are refused in words
    import numpyro.distributions as dist

    from bayes_scaling.batch_posterior import sample_posterior_batch

    rng = np.random.default_rng(1)
    rows = []
    for f in range(2):
        N = np.exp(rng.uniform(np.log(3e7), np.log(3e9), 24))
        D = np.exp(rng.uniform(np.log(5e8), np.log(5e10), 24))
        y = (1.7 + 400 * N ** -0.34 + 1500 * D ** -0.30) * np.exp(0.01 * rng.standard_normal(24))
        rows.append(pd.DataFrame({"N": N, "D": D, "loss": y, "fam": f"f{f}"}))
    runs = load_runs(pd.concat(rows, ignore_index=True), family="fam")
    with pytest.raises(ValueError, match="'parallel'"):
        sample_posterior_batch("chinchilla", runs, chain_method="parallel")
    tight = dist.LogNormal(np.log(0.5), 0.01)  # alpha pinned at 0.5 by the prior, far from the runs' 0.34
    out = sample_posterior_batch("chinchilla", runs, priors={"alpha": tight}, noise_scale=0.05, likelihood="student_t",
                                 nu=6.0, dense_mass=False, max_tree_depth=5, init_scale=0.5, num_warmup=150,
                                 num_samples=150, num_chains=2, progress_bar=True)
    for post in out.posteriors.values():
        s = post.settings
        assert s["noise_scale"] == 0.05 and s["nu"] == 6.0 and s["dense_mass"] is False and s["max_tree_depth"] == 5
        assert s["priors"]["alpha"].startswith("LogNormal(loc=-0.693")
        assert abs(np.median(post.draws["alpha"]) - 0.5) < 0.03
        assert np.max(post.sample_stats["n_steps"]) <= 2 ** 5 - 1
    h = out.health()  # the families' health combined: the worst of them, each family's warnings named
    parts = [p.health() for p in out.posteriors.values()]
    assert h.divergences == sum(p.divergences for p in parts) and h.max_r_hat == max(p.max_r_hat for p in parts)
    assert h.ok == all(p.ok for p in parts) and all(w.split(":")[0] in out.posteriors for w in h.warnings)
    idatas = out.to_arviz()
    assert set(idatas) == set(out.posteriors)
    np.testing.assert_array_equal(idatas["f0"].posterior["alpha"].values, out.posteriors["f0"].draws["alpha"])

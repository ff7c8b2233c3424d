"""Variable projection (bayes_scaling.varpro): the linear coefficients in closed form on a grid of the rest.

Checked against independent things: scipy's NNLS on the same weighted problems, the law's own predictions
(the terms are derived from log_loss, so a law that is not linear in what it declares fails here), the
4500-start Hoffmann/Epoch grid on the same objective (same minimum to 1e-12 relative: both end with Newton
steps at the objective's own stationary point), and recovery of a known truth from simulated runs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import porian
from scipy.optimize import nnls as scipy_nnls

from bayes_scaling import compile_cache, fit_point, get_law, load_runs, varpro
from bayes_scaling.fitting import objective_function

LINEAR_LAWS = {
    "chinchilla": ({"E": 1.8, "A": 400.0, "B": 2000.0, "alpha": 0.34, "beta": 0.37}, ("N", "D")),
    "power_law_floor": ({"E": 1.7, "A": 300.0, "alpha": 0.15}, ("C",)),
    "power_law": ({"k": 0.292, "p": 0.327}, ("C",)),
}


def _inputs(names, n=50, seed=0):
    rng = np.random.default_rng(seed)
    out = {"N": np.exp(rng.uniform(np.log(1e7), np.log(1e10), n)), "D": np.exp(rng.uniform(np.log(1e9), np.log(1e12), n))}
    out["C"] = 6 * out["N"] * out["D"]
    return {k: out[k] for k in names}


@pytest.mark.parametrize("name", sorted(LINEAR_LAWS))
def test_declared_linear_coefficients_reproduce_the_law(name):
    # loss = offset + phi . c must equal the law's own prediction at any coefficients (the claim Law.linear makes)
    law = get_law(name)
    truth, names = LINEAR_LAWS[name]
    X = {k: jnp.asarray(v) for k, v in _inputs(names).items()}
    lin = [n for n in law.free_names if n in law.linear]
    nl = jnp.asarray([law.param(n).to_fit(truth[n]) for n in law.free_names if n not in law.linear], float)
    phi, offset = varpro.terms(law, nl, X)
    c = np.array([truth[n] for n in lin])
    np.testing.assert_allclose(np.asarray(offset + phi @ c), np.asarray(law.predict(truth, X)), rtol=1e-12)
    # with a coefficient held fixed, its term moves into the offset
    if "E" in lin:
        fixed = law.fix(E=truth["E"])
        phi2, offset2 = varpro.terms(fixed, nl, X)
        c2 = np.array([truth[n] for n in lin if n != "E"])
        np.testing.assert_allclose(np.asarray(offset2 + phi2 @ c2), np.asarray(law.predict(truth, X)), rtol=1e-12)


def test_nnls_equals_scipy():
    # scipy.optimize.nnls (Lawson-Hanson active set) on the same weighted problem; tolerance: both are exact solvers,
    # the residual norms agree to 1e-9 relative (conditioning of the column-scaled normal equations)
    rng = np.random.default_rng(1)
    for trial in range(30):
        k = 1 + trial % 4
        phi = np.exp(rng.normal(0, 2, (40, k)))
        z = phi @ rng.normal(0.5, 1.0, k) + rng.normal(0, 0.3, 40)  # some true coefficients negative: active bounds
        w = rng.uniform(0.2, 2.0, 40)
        ours = np.asarray(varpro.nnls(jnp.asarray(phi), jnp.asarray(z), jnp.asarray(w)))
        sw = np.sqrt(w)
        ref, rnorm = scipy_nnls(phi * sw[:, None], z * sw)
        assert np.all(ours >= 0)
        assert np.linalg.norm((z - phi @ ours) * sw) == pytest.approx(rnorm, rel=1e-9, abs=1e-12), trial
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-9)


def test_default_chinchilla_fit_is_the_4500_start_minimum(chinchilla_runs, chinchilla_fit):
    fit = fit_point("chinchilla", chinchilla_runs)
    assert "variable projection" in " ".join(fit.notes)
    assert fit.converged and not fit.warnings
    assert fit.num_starts == varpro.GRID_POINTS and fit.num_polished == 4
    assert fit.objective == pytest.approx(chinchilla_fit.objective, rel=1e-12)  # the grid: 1.018274017800e-3
    for k, v in chinchilla_fit.params.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-6), k


@pytest.mark.parametrize("cfg", [("rw", "base", "long", "kaplan", "standard", "val"),
                                 ("owt2", "base", "short", "kaplan", "standard", "val")])
def test_real_configurations_reach_the_grid_minimum(cfg):
    # runs the law was not tuned on (Porian et al.'s IsoFLOP grids): the projection's start reaches the same
    # Huber minimum as the 4500-start grid
    runs = load_runs(porian(cfg).reset_index(drop=True), N="n", D="t", loss="loss", name="isoflop_points.csv")
    a = fit_point("chinchilla", runs, strategy="varpro")
    b = fit_point("chinchilla", runs, strategy="grid")
    assert a.objective <= b.objective * (1 + 1e-9)
    for k, v in b.params.items():
        assert a.params[k] == pytest.approx(v, rel=1e-5), k


@pytest.mark.parametrize("name", ["power_law_floor", "power_law"])
def test_recovers_a_known_truth_with_one_nonlinear_parameter(name):
    law = get_law(name)
    truth, names = LINEAR_LAWS[name]
    X = _inputs(names, n=200, seed=3)
    rng = np.random.default_rng(4)
    y = np.asarray(law.predict(truth, X)) * np.exp(0.002 * rng.standard_normal(200))
    runs = load_runs(pd.DataFrame({**X, "loss": y}), loss="loss")
    fit = fit_point(law, runs, strategy="varpro")
    grid = fit_point(law, runs, strategy="grid")
    assert fit.objective <= grid.objective * (1 + 1e-9)
    for k, v in truth.items():  # 0.2% noise over 200 runs: parameters within a few percent
        assert fit.params[k] == pytest.approx(v, rel=0.05), k


def test_likelihood_objectives_and_fixed_parameters(chinchilla_runs):
    # varpro on request for Student-t maximum likelihood, and with alpha held (one nonlinear parameter left)
    law = get_law("chinchilla").fix(alpha=0.3473)
    a = fit_point(law, chinchilla_runs, objective="student_t", strategy="varpro")
    b = fit_point(law, chinchilla_runs, objective="student_t", strategy="grid")
    assert a.objective == pytest.approx(b.objective, rel=1e-9, abs=1e-9)
    assert a.params["alpha"] == 0.3473 and a.noise["sigma"] == pytest.approx(b.noise["sigma"], rel=1e-5)


def test_grid_starts_carry_their_exact_objective(chinchilla_runs):
    law = get_law("chinchilla")
    X = {k: jnp.asarray(v) for k, v in chinchilla_runs.inputs(law.inputs).items()}
    logy = jnp.log(jnp.asarray(chinchilla_runs.loss))
    hyper = {"delta": jnp.asarray(1e-3), "shape": jnp.asarray(4.0)}
    fun = objective_function(law, "huber_loss")
    grid = jnp.asarray(varpro.nonlinear_grid(law, 16))
    thetas, f = varpro.grid_starts(law, "huber_loss", X, logy, jnp.ones_like(logy), hyper, grid, objective=fun)
    assert thetas.shape == (16, 5)
    np.testing.assert_allclose(np.asarray(thetas[:, 3:]), np.asarray(grid))  # alpha, beta are the grid's
    for th, fv in zip(np.asarray(thetas)[:4], np.asarray(f)[:4]):
        assert fv == pytest.approx(float(fun(jnp.asarray(th), X, logy, jnp.ones_like(logy), hyper)), rel=1e-12)


def test_strategy_errors_name_the_option(chinchilla_runs):
    with pytest.raises(ValueError, match="strategy 'grid'"):
        fit_point("kaplan", chinchilla_runs, strategy="varpro")
    with pytest.raises(ValueError, match="unknown strategy"):
        fit_point("chinchilla", chinchilla_runs, strategy="fast")
    with pytest.raises(ValueError, match="own starts"):
        fit_point("chinchilla", chinchilla_runs, strategy="varpro", starts=[[0.5, 6, 7, 0.3, 0.3]])


def test_compiled_programs_are_released_near_the_memory_map_limit(chinchilla_runs, monkeypatch):
    # a process near vm.max_map_count drops its compiled programs instead of dying in LLVM; results are unchanged
    before = fit_point("chinchilla", chinchilla_runs)
    monkeypatch.setitem(compile_cache._MAPS, "limit", 10)  # any process has more than 7 mappings
    monkeypatch.setitem(compile_cache._MAPS, "checked", 0.0)
    released = compile_cache.program_stats()["released"]
    after = fit_point("chinchilla", chinchilla_runs)
    assert compile_cache.program_stats()["released"] >= released + 1
    assert after.objective == before.objective and after.params == before.params
    jax.clear_caches()

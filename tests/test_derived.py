"""Derived quantities: published reference points, the METHODS closed forms, numeric vs closed form."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_scaling import (
    compute_for_loss,
    compute_optimal,
    forecast_table,
    get_law,
    loss_at_optimum,
    loss_of_plan,
    tokens_per_param,
)
from bayes_scaling.laws import MUENNIGHOFF_BASE

EPOCH_MLE = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.34781, "beta": 0.36585}
CHIN = get_law("chinchilla")


def test_epoch_reference_points():
    # METHODS §1.2 reference points (Epoch MLE; 3 significant figures as printed)
    N, D = compute_optimal(CHIN, EPOCH_MLE, 5.76e23)
    assert float(N) == pytest.approx(7.24e10, rel=5e-3)
    assert float(D) == pytest.approx(1.33e12, rel=5e-3)
    assert float(D / N) == pytest.approx(18.3, rel=5e-3)
    assert float(loss_at_optimum(CHIN, EPOCH_MLE, 5.76e23)) == pytest.approx(1.974, abs=5e-4)
    assert float(compute_optimal(CHIN, EPOCH_MLE, 1e21)[0]) == pytest.approx(2.78e9, rel=5e-3)
    assert float(compute_optimal(CHIN, EPOCH_MLE, 1e25)[0]) == pytest.approx(3.13e11, rel=5e-3)


def test_rounding_hoffmann_moves_n_opt():
    # METHODS §1.1: unrounded Hoffmann gives ~40B at 5.76e23, the printed rounded values ~32B
    unrounded = {"E": np.exp(0.5267228), "A": np.exp(6.0073404), "B": np.exp(6.0179186), "alpha": 0.33917084, "beta": 0.2849083}
    rounded = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
    assert float(compute_optimal(CHIN, unrounded, 5.76e23)[0]) == pytest.approx(40e9, rel=0.05)
    assert float(compute_optimal(CHIN, rounded, 5.76e23)[0]) == pytest.approx(32e9, rel=0.05)


def test_closed_forms_match_methods_formulas():
    p = EPOCH_MLE
    a, b = p["alpha"], p["beta"]
    G = (a * p["A"] / (b * p["B"])) ** (1 / (a + b))
    for C in (1e19, 5.76e23, 1e27):
        N, D = compute_optimal(CHIN, p, C)
        assert float(N) == pytest.approx(G * (C / 6) ** (b / (a + b)), rel=1e-12)
        assert float(D) == pytest.approx((C / 6) ** (a / (a + b)) / G, rel=1e-12)
        Lstar = p["E"] + (p["A"] * G ** -a + p["B"] * G ** b) * (C / 6) ** (-a * b / (a + b))
        assert float(loss_at_optimum(CHIN, p, C)) == pytest.approx(Lstar, rel=1e-12)
        assert float(compute_for_loss(CHIN, p, Lstar)) == pytest.approx(C, rel=1e-9)
    assert G == pytest.approx(0.1196, rel=1e-3)


@pytest.mark.parametrize("C", [1e18, 1e21, 5.76e23, 1e26, 1e30])
def test_numeric_path_matches_closed_form(C):
    # tolerance: the numeric optimum is a golden-section minimum of a smooth function, whose argmin is
    # determined to ~sqrt(machine eps) in log(D/N): 1e-6 relative is comfortably above that
    for p in (EPOCH_MLE, {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}):
        Nc, Dc = compute_optimal(CHIN, p, C, method="closed")
        Nn, Dn = compute_optimal(CHIN, p, C, method="numeric")
        assert float(Nn) == pytest.approx(float(Nc), rel=1e-6)
        assert float(Dn) == pytest.approx(float(Dc), rel=1e-6)
        assert float(loss_at_optimum(CHIN, p, C, method="numeric")) == pytest.approx(float(loss_at_optimum(CHIN, p, C)), rel=1e-12)
        target = float(loss_at_optimum(CHIN, p, C))
        assert float(compute_for_loss(CHIN, p, target, method="numeric")) == pytest.approx(C, rel=1e-6)


def test_unreachable_target_is_inf():
    for method in ("closed", "numeric"):
        assert np.isinf(float(compute_for_loss(CHIN, EPOCH_MLE, 1.80, method=method)))
        assert np.isinf(float(compute_for_loss(CHIN, EPOCH_MLE, EPOCH_MLE["E"], method=method)))


def test_vmap_over_draws_and_jit():
    rng = np.random.default_rng(1)
    draws = {k: jnp.asarray(v * (1 + 0.01 * rng.standard_normal(64))) for k, v in EPOCH_MLE.items()}
    f = jax.jit(jax.vmap(lambda p: jnp.stack([*compute_optimal(CHIN, p, 5.76e23), loss_at_optimum(CHIN, p, 5.76e23),
                                              compute_for_loss(CHIN, p, 2.0), tokens_per_param(CHIN, p, 1e21)])))
    out = np.asarray(f(draws))
    assert out.shape == (64, 5) and np.all(np.isfinite(out))
    one = {k: float(v[7]) for k, v in draws.items()}
    assert out[7, 0] == pytest.approx(float(compute_optimal(CHIN, one, 5.76e23)[0]), rel=1e-12)
    g = jax.jit(jax.vmap(lambda p: compute_optimal(CHIN, p, 5.76e23, method="numeric")[0]))
    np.testing.assert_allclose(np.asarray(g(draws)), out[:, 0], rtol=1e-6)


def test_data_constrained_numeric_optimum_and_plan():
    p = dict(MUENNIGHOFF_BASE, R_D_star=15.387756, R_N_star=5.309743)
    law = get_law("data_constrained")
    U = 25e9
    C = 1e22
    N, D = compute_optimal(law, p, C, inputs={"U": U})
    # brute force over a fine grid of N on the budget line
    Ns = np.geomspace(1e7, 1e13, 200001)
    L = np.asarray(law.predict(p, {"N": Ns, "D": C / (6 * Ns), "U": np.full_like(Ns, U)}))
    assert float(N) == pytest.approx(Ns[np.argmin(L)], rel=1e-3)
    assert float(loss_at_optimum(law, p, C, inputs={"U": U})) <= L.min() + 1e-12
    assert float(loss_of_plan(law, p, 6.34e9, 242e9, inputs={"U": U})) == pytest.approx(2.2256, abs=1e-3)
    # with plenty of unique data the data-constrained law is the base Chinchilla law
    base = get_law("chinchilla")
    Nb, _ = compute_optimal(base, MUENNIGHOFF_BASE, C)
    Nu, _ = compute_optimal(law, p, C, inputs={"U": 1e20})
    assert float(Nu) == pytest.approx(float(Nb), rel=1e-6)
    with pytest.raises(ValueError, match="needs input\\(s\\) U"):
        compute_optimal(law, p, C)


def test_forecast_table_and_loss_of_plan():
    df = forecast_table(CHIN, EPOCH_MLE, [1e21, 5.76e23, 1e25])
    assert list(df.columns) == ["budget", "N_opt", "D_opt", "D/N", "L*"]
    np.testing.assert_allclose(6 * df["N_opt"] * df["D_opt"], df["budget"], rtol=1e-10)
    N, D = compute_optimal(CHIN, EPOCH_MLE, 5.76e23)
    assert float(loss_of_plan(CHIN, EPOCH_MLE, N, D)) == pytest.approx(df["L*"][1], rel=1e-12)
    # a plan off the optimum at the same compute is worse
    assert float(loss_of_plan(CHIN, EPOCH_MLE, 2 * N, D / 2)) > df["L*"][1]
    single = forecast_table(get_law("power_law_floor"), {"E": 1.7, "A": 300.0, "alpha": 0.05}, [1e21])
    assert list(single.columns) == ["budget", "L*"]
    with pytest.raises(ValueError, match="budgets must be positive"):
        forecast_table(CHIN, EPOCH_MLE, [1e21, -1])
    with pytest.raises(ValueError, match="needs a law of N and D"):
        compute_optimal(get_law("power_law"), {"k": 1.0, "p": 0.3}, 1e21)


def test_forecast_over_4000_draws_and_3_budgets_compiles_once(small_posterior):
    # the posterior's draws tiled to 4 chains x 1000 (4000 draws): the first forecast traces at most one program
    # (none when this shape was compiled before), later calls with other budgets of the same shape trace none
    import dataclasses

    from bayes_scaling import derived

    tile = lambda d: {k: np.tile(v, (2, 10)) for k, v in d.items()}
    post = dataclasses.replace(small_posterior, draws=tile(small_posterior.draws), noise=tile(small_posterior.noise))
    assert post.num_chains * post.num_draws == 4000
    before = derived.trace_count()
    first = post.forecast([1e21, 5.76e23, 1e25])
    assert derived.trace_count() - before <= 1
    after_first = derived.trace_count()
    for budgets in ([2e21, 1e23, 3e24], [5e21, 2e23, 7e24]):
        table = post.forecast(budgets)
    assert derived.trace_count() == after_first
    assert len(first) == len(table) == 3 and np.isfinite(table["N_opt"]).all()

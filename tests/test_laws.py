"""Laws: the stable forms against the plain formulas, the published reference values, fixing, user laws."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

from bayes_scaling import Law, Param, fit_point, get_law, list_laws, register_law
from bayes_scaling.fitting import objective_function
from bayes_scaling.laws import MUENNIGHOFF_BASE

HOFFMANN = {"E": np.exp(0.5267228), "A": np.exp(6.0073404), "B": np.exp(6.0179186), "alpha": 0.33917084, "beta": 0.2849083}


def test_registry_lists_every_builtin():
    names = {law.name for law in list_laws()}
    assert {"chinchilla", "kaplan", "power_law_floor", "power_law", "data_constrained"} <= names
    with pytest.raises(ValueError, match="unknown law 'nope'; known laws:"):
        get_law("nope")
    assert get_law("chinchilla") is get_law("chinchilla")  # cached: jitted code compiles once per law


def test_stable_forms_equal_plain_formulas():
    rng = np.random.default_rng(0)
    N, D = np.exp(rng.uniform(15, 25, 50)), np.exp(rng.uniform(18, 28, 50))
    chin = get_law("chinchilla").predict(HOFFMANN, {"N": N, "D": D})
    p = HOFFMANN
    np.testing.assert_allclose(chin, p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"], rtol=1e-13)
    k = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
    kap = get_law("kaplan").predict(k, {"N": N, "D": D})
    np.testing.assert_allclose(kap, ((k["N_c"] / N) ** (k["alpha_N"] / k["alpha_D"]) + k["D_c"] / D) ** k["alpha_D"], rtol=1e-12)
    C = np.exp(rng.uniform(40, 55, 50))
    f = get_law("power_law_floor").predict({"E": 1.7, "A": 300.0, "alpha": 0.05}, {"C": C})
    np.testing.assert_allclose(f, 1.7 + 300.0 * C ** -0.05, rtol=1e-13)
    pl = get_law("power_law").predict({"k": 0.2920, "p": 0.3271}, {"C": C})
    np.testing.assert_allclose(pl, 0.2920 * C ** 0.3271, rtol=1e-12)


def test_kaplan_published_single_variable_limit():
    # with D -> infinity the joint Kaplan law reduces to (N_c/N)^alpha_N
    k = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}
    got = get_law("kaplan").predict(k, {"N": 1e9, "D": 1e40})
    assert float(got) == pytest.approx((6.4e13 / 1e9) ** 0.076, rel=1e-9)


def _muennighoff_plain(p, N, D, U):
    """METHODS §1.4 written out directly (not in logs), as an independent check."""
    G = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    N_opt_U = G * (U * G) ** (p["beta"] / p["alpha"])  # N_opt for the compute spending U once: D_opt(C) = U
    UN = min(N, N_opt_U)
    UD = min(D, U)
    RN, RD = N / UN - 1, D / UD - 1
    Np = UN + UN * p["R_N_star"] * (1 - np.exp(-RN / p["R_N_star"]))
    Dp = UD + UD * p["R_D_star"] * (1 - np.exp(-RD / p["R_D_star"]))
    return p["E"] + p["A"] / Np ** p["alpha"] + p["B"] / Dp ** p["beta"]


def test_data_constrained_readme_vectors():
    p = dict(MUENNIGHOFF_BASE, R_D_star=15.387756, R_N_star=5.309743)
    law = get_law("data_constrained")
    for (N, D, U), want in [((6.34e9, 242e9, 25e9), 2.2256), ((8.67e9, 178e9, 25e9), 2.2270)]:
        got = float(law.predict(p, {"N": N, "D": D, "U": U}))
        assert got == pytest.approx(want, abs=1e-3)
        assert got == pytest.approx(_muennighoff_plain(p, N, D, U), rel=1e-12)


def test_data_constrained_objective_at_published_decay(datablations_182):
    law = get_law("data_constrained").fix(**MUENNIGHOFF_BASE)
    assert law.free_names == ("R_D_star", "R_N_star")
    assert len(datablations_182) == 182
    f = objective_function(law, "huber_loss")
    X = {k: jnp.asarray(v) for k, v in datablations_182.inputs(law.inputs).items()}
    theta = law.theta_from_params({"R_D_star": 15.387756, "R_N_star": 5.309743})
    value = f(theta, X, jnp.log(datablations_182.loss), jnp.ones(182), {"delta": 1e-3, "shape": 4.0, "noise_scale": 0.1})
    assert float(value) == pytest.approx(0.0158259, abs=1e-6)


def test_fix_validates_and_keeps_values():
    law = get_law("chinchilla").fix(alpha=0.34, E=1.7)
    assert law.free_names == ("A", "B", "beta")
    assert law.start_grid().shape == (6 * 6 * 5, 3)
    p = law.params_from_theta(jnp.array([6.0, 6.0, 0.3]))
    assert float(p["alpha"]) == 0.34 and float(p["E"]) == pytest.approx(1.7)
    with pytest.raises(ValueError, match="no parameter 'gamma'"):
        law.fix(gamma=1.0)
    with pytest.raises(ValueError, match="must be positive"):
        get_law("chinchilla").fix(A=-1.0)
    with pytest.raises(ValueError, match="every parameter is fixed"):
        get_law("power_law").fix(k=1.0, p=0.5)
    assert get_law("chinchilla").fix(alpha=0.34) == get_law("chinchilla").fix(alpha=0.34)  # value-hashable
    assert hash(get_law("chinchilla").fix(alpha=0.34)) == hash(get_law("chinchilla").fix(alpha=0.34))


def test_user_declared_law_in_a_few_lines():
    def log_loss(p, x):
        return jnp.logaddexp(jnp.log(p["E"]), jnp.log(p["A"]) - p["alpha"] * jnp.log(x["N"]))

    law = Law(name="model_size", formula="L(N) = E + A / N^alpha", inputs=("N",),
              params=(Param("E", dist.LogNormal(0.5, 0.5), log=True, starts=(-0.5, 0.0, 0.5)),
                      Param("A", dist.LogNormal(5, 5), log=True, starts=(0.0, 5.0, 10.0)),
                      Param("alpha", dist.LogNormal(-1, 1), log=False, starts=(0.1, 0.3, 0.6))),
              log_loss_fn=log_loss)
    register_law("model_size_test", lambda: law)
    assert get_law("model_size_test") is law
    import pandas as pd

    N = np.geomspace(1e7, 1e10, 12)
    runs = pd.DataFrame({"N": N, "loss": 2.0 + 400.0 * N ** -0.3})
    fit = fit_point("model_size_test", runs)
    assert fit.converged
    assert fit.params["alpha"] == pytest.approx(0.3, rel=1e-4)
    assert fit.params["E"] == pytest.approx(2.0, rel=1e-4)


def test_describe_mentions_formula_and_fixed():
    text = get_law("chinchilla").fix(alpha=0.34).describe()
    assert "E + A / N^alpha" in text and "alpha" in text and "(fixed)" in text


def test_log_loss_is_jittable_scalar():
    law = get_law("chinchilla")
    f = jax.jit(lambda p, x: law.log_loss(p, x))
    out = f(HOFFMANN, {"N": 1e9, "D": 2e10})
    assert out.shape == () and np.isfinite(out)

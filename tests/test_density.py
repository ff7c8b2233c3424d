"""One density: the point fitter's MAP objective is the posterior model's log joint, checked against the same density
written out by hand with scipy; constraints come from the priors' supports; the Huber protocol and the Huber
likelihood have names that cannot be confused."""

from __future__ import annotations

import numpy as np
import numpyro.distributions as dist
import pytest
from scipy import optimize, stats

from bayes_scaling import fit_point, get_law
from bayes_scaling.fitting import objective_function
from bayes_scaling.model import centred_terms


def _by_hand(law, params, sigma, N, D, loss, nu=4.0, noise_scale=0.1):
    """-log p(theta, sigma | runs) in the model's coordinates, from scipy.stats alone: Student-t(nu) noise on log loss,
    LogNormal priors (centred scales A and B at density prior(S) * S), sigma ~ HalfNormal(noise_scale)."""
    mu = np.log(params["E"] + params["A"] * N ** -params["alpha"] + params["B"] * D ** -params["beta"])
    out = np.sum(stats.t.logpdf(np.log(loss) - mu, nu, 0.0, sigma))
    centred = {t[0] for t in centred_terms(law)}
    for p in law.free_params:
        v = params[p.name]
        out += stats.lognorm.logpdf(v, float(p.prior.scale), scale=np.exp(float(p.prior.loc))) + (np.log(v) if p.name in centred else 0)
    out += stats.halfnorm.logpdf(sigma, scale=noise_scale)
    return -out


def test_map_objective_is_the_models_log_joint(chinchilla_runs):
    import jax.numpy as jnp

    law = get_law("chinchilla")
    r = chinchilla_runs
    f = objective_function(law, "student_t", prior=True)
    hyper = {"delta": 1e-3, "shape": 4.0, "noise_scale": 0.1}
    X = {"N": jnp.asarray(r.N), "D": jnp.asarray(r.D)}
    logy = jnp.log(jnp.asarray(r.loss))
    rng = np.random.default_rng(0)
    for _ in range(5):
        params = {"E": rng.uniform(1.5, 2.0), "A": rng.uniform(200, 800), "B": rng.uniform(500, 3000),
                  "alpha": rng.uniform(0.25, 0.45), "beta": rng.uniform(0.25, 0.45)}
        sigma = rng.uniform(0.005, 0.05)
        theta = jnp.append(law.theta_from_params(params), np.log(sigma))
        got = float(f(theta, X, logy, jnp.ones_like(logy), hyper))
        assert got == pytest.approx(_by_hand(law, params, sigma, r.N, r.D, r.loss), rel=1e-10)


def test_map_fit_is_the_densitys_mode(chinchilla_runs):
    # scipy from the fitter's answer finds nothing better on the hand-written density (tolerance: the fitter stops at a
    # relative gradient of 1e-9; the objective is ~ -900)
    law = get_law("chinchilla")
    r = chinchilla_runs
    fit = fit_point(law, r, objective="student_t", prior=True)
    names = law.free_names

    def obj(x):
        params = {n: (np.exp(v) if law.param(n).log else v) for n, v in zip(names, x[:-1])}
        return _by_hand(law, params, np.exp(x[-1]), r.N, r.D, r.loss)

    x0 = np.append(np.asarray(law.theta_from_params(fit.params)), np.log(fit.noise["sigma"]))
    best = optimize.minimize(obj, x0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    assert obj(x0) <= best.fun + 1e-6 * abs(best.fun)
    assert fit.objective == pytest.approx(obj(x0), rel=1e-10)


def test_user_priors_reach_the_fitter_and_supports_are_constraints(chinchilla_runs):
    tight = fit_point("chinchilla", chinchilla_runs, objective="student_t", prior=True,
                      priors={"alpha": dist.LogNormal(np.log(0.5), 0.01)})
    assert tight.params["alpha"] == pytest.approx(0.5, rel=0.05)  # the prior, not the runs, decides alpha
    with pytest.raises(ValueError, match="must be on the positive reals"):
        get_law("chinchilla").with_priors({"E": dist.Normal(1.8, 0.1)})
    assert get_law("chinchilla").with_priors({"alpha": dist.LogNormal(0.0, 1.0)}) is \
        get_law("chinchilla").with_priors({"alpha": dist.LogNormal(0.0, 1.0)})  # one law object: compiled once


def test_huber_names_cannot_be_confused(chinchilla_runs):
    from bayes_scaling import sample_posterior

    with pytest.raises(ValueError, match="'huber_loss' is the Hoffmann/Epoch robust loss"):
        fit_point("chinchilla", chinchilla_runs, objective="huber")
    with pytest.raises(ValueError, match="the Huber density is 'huber_density'"):
        sample_posterior("chinchilla", chinchilla_runs, likelihood="huber")
    fit = fit_point("chinchilla", chinchilla_runs, objective="huber_density", k=1.345)
    assert fit.converged and fit.noise["k"] == 1.345 and "Huber density" in fit.method

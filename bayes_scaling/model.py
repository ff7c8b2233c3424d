"""The one NumPyro model, generated from a law's declaration.

``make_model(law, ...)`` returns ``model(X, logy=None, mask=None, center=None)``:

* every free parameter gets its prior from the law (``Param.prior``, a numpyro distribution over the value
  as the user knows it), unless ``priors={"name": dist}`` overrides it;
* scale parameters listed in ``law.centering`` are *sampled* as the log of their term's value at the data's
  centre, log T = log S - sign * exponent * log x0 (x0 the geometric mean of the input over the runs);
  the map (log T, exponent) -> (log S, exponent) is a shear with unit Jacobian, so the prior on S is applied
  exactly as ``prior.log_prob(S) + log S``. This removes the A-alpha and B-beta ridges NUTS would otherwise
  crawl along. Every natural parameter is recorded as a deterministic site named by its symbol;
* the noise is on log loss: ``sigma ~ HalfNormal(noise_scale)`` (default 0.1: log-loss residuals of real
  runs are ~0.01-0.05), optionally varying with compute, log sigma_i = log sigma + gamma (log C_i - mean
  log C) with ``gamma ~ Normal(0, 0.5)``;
* the likelihood of log L_obs is Student-t (``nu`` = 4 by default), Gaussian, or the normalised Huber
  density (Gaussian core within ``k`` = 1.345 sigma, Laplace tails).

The mean uses the law's one ``log_loss`` (vmapped over runs): no formula is written twice. The density is written
once, :func:`log_joint` (:func:`log_prior` + :func:`log_likelihood`): the model's sample sites carry only their
supports (from which NumPyro takes the unconstrained coordinates NUTS moves in), and the density enters as factors;
the point fitter's MAP is the same :func:`log_joint` maximised over the natural parameters (no Jacobian, as Stan's
optimiser), and its maximum-likelihood fit the same without :func:`log_prior`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints
from numpyro.distributions.transforms import biject_to

from .defaults import compute_of
from .keys import as_key, seed_record
from .laws import Law, get_law
from .noise import noise_model, sample_unit, scale_with_compute, shape_of

__all__ = ["SMALL_DESIGN_NOISE", "NOISE_PRIORS", "check_noise_prior", "noise_log_prior", "noise_prior_text",
           "make_model", "prior_predictive", "centre_of", "sampling_values", "noise_inputs", "start_sigma", "NOISE_SCALE", "log_joint",
           "log_prior", "log_likelihood", "log_compute"]

NOISE_SCALE = 0.1


def centred_terms(law: Law):
    """The centring terms that apply: scale free (sampled), exponent a parameter of the law."""
    fixed = law.fixed_values
    out = []
    for scale, exponent, inp, sign in law.centering:
        if scale not in fixed and inp in law.inputs:
            out.append((scale, exponent, inp, sign))
    return tuple(out)


def centre_of(law: Law, X: Mapping[str, Any], mask=None) -> dict[str, float]:
    """log x0 for each centred input: the mean of log x over the (unmasked) runs."""
    out = {}
    for _, _, inp, _ in centred_terms(law):
        logx = np.log(np.asarray(X[inp], float))
        w = np.ones_like(logx) if mask is None else np.asarray(mask, float)
        out[inp] = float(np.sum(w * logx) / np.sum(w))
    if "C" in X or ("N" in X and "D" in X):
        logC = np.log(np.asarray(X["C"], float)) if "C" in X else np.log(compute_of(np.asarray(X["N"], float), np.asarray(X["D"], float)))
        w = np.ones_like(logC) if mask is None else np.asarray(mask, float)
        out["__logC__"] = float(np.sum(w * logC) / np.sum(w))
    return out


def noise_inputs(law, runs, noise_varies_with_compute: bool | None) -> tuple[bool, tuple[str, ...]]:
    """Whether the noise scale varies with compute (default: when compute is known, as C or as N and D)
    and the run columns the model needs for it: the law's inputs, plus C when only it carries compute."""
    has_C = runs.C is not None or ("N" in law.inputs and "D" in law.inputs)
    vary = has_C if noise_varies_with_compute is None else bool(noise_varies_with_compute)
    if vary and not has_C:
        raise ValueError(f"{runs.source}: noise that varies with compute needs a compute column C (or N and D)")
    names = tuple(law.inputs) + (("C",) if vary and "C" not in law.inputs and "N" not in law.inputs else ())
    return vary, names


def start_sigma(sigma: float, noise_scale: float = NOISE_SCALE) -> float:
    """A point fit's noise scale as a chain start: kept inside (1e-4, 3 x the prior's scale)."""
    return min(max(float(sigma), 1e-4), 3 * noise_scale)


def make_model(law, *, priors: Mapping[str, Any] | None = None, likelihood: str = "student_t", nu=None, k=None,
               **options):
    """The NumPyro model of ``law`` (see the module docstring). Returns ``model(X, logy, mask, center)``.

    ``likelihood`` (a name in :data:`~bayes_scaling.noise.NOISE`: "student_t", "gaussian", "huber_density") with its
    shape: ``nu`` (Student-t degrees of freedom, default 4; "learn" samples it) or ``k`` (the Huber density's
    threshold in sigmas, default 1.345); options: ``noise_scale``, ``noise_varies_with_compute``. The same options
    give the same model object, so compiled samplers are reused.
    """
    law = get_law(law).with_priors(priors)
    return _make_model(law, likelihood=likelihood, shape=shape_of(likelihood, nu, k), **options)


#: the noise prior of a small design (:func:`~bayes_scaling.checks.small_design`): sigma ~ LogNormal(log 0.01, 0.7), 90%
#: in (0.3%, 3.2%) of log loss. The fitted noise of the shared corpora: Epoch's Chinchilla runs 0.4%, Muennighoff's
#: 3.3%, Porian's configurations 1.4-7% (median 3.3%, the Chinchilla law's misfit of IsoFLOP curves included): the
#: noisier ladders sit at its upper end, where even five runs move it. With a handful of runs the data cannot estimate
#: sigma, and the default HalfNormal lets it run toward 0, where the law must pass through every run: a funnel that
#: NUTS does not mix in.
SMALL_DESIGN_NOISE = (0.01, 0.7)
NOISE_PRIORS = ("half_normal", "small_design")


def check_noise_prior(noise_prior: str, *, auto: bool = False) -> str:
    """``noise_prior`` if it is one of :data:`NOISE_PRIORS` (or ``"auto"`` where the caller resolves it), else a
    ``ValueError`` naming them: the one check the model, the fitter and the sampler share."""
    if noise_prior in NOISE_PRIORS or (auto and noise_prior == "auto"):
        return noise_prior
    also = "'auto' or " if auto else ""
    raise ValueError(f"noise_prior must be {also}one of {', '.join(NOISE_PRIORS)}, not {noise_prior!r}")


def noise_log_prior(sigma, noise_scale, small=0.0):
    """log p(sigma): HalfNormal(noise_scale), or where ``small`` is 1 the small design's LogNormal
    (:data:`SMALL_DESIGN_NOISE`); ``small`` may be traced, so one compiled fit serves both."""
    m, s = SMALL_DESIGN_NOISE
    return jnp.where(jnp.asarray(small) > 0.5, dist.LogNormal(math.log(m), s).log_prob(sigma),
                     dist.HalfNormal(noise_scale).log_prob(sigma))


def noise_prior_text(noise_prior: str, noise_scale: float) -> str:
    if noise_prior == "small_design":
        return f"LogNormal(log {SMALL_DESIGN_NOISE[0]:g}, {SMALL_DESIGN_NOISE[1]:g}) (small design)"
    return f"HalfNormal({noise_scale:g})"


def log_prior(law: Law, values: Mapping[str, Any], sigma, *, noise_scale, centred=(), gamma=None, nu=None, inside=(),
              small_noise=0.0):
    """The log prior density of the model's sample sites: each free parameter's prior at its value (a centred scale S
    is sampled as log of its term, a unit-Jacobian shear of log S, so its density there is prior(S) * S), sigma ~
    HalfNormal(noise_scale) (a small design's LogNormal where ``small_noise`` is 1: :func:`noise_log_prior`), gamma ~
    Normal(0, 0.5) when the noise varies with compute, nu ~ Gamma(2, 0.1) when it
    is learned. A value outside its prior's support has density 0 (log -inf): the support is the constraint.
    ``inside`` names parameters whose values lie in their supports by construction (the sampler's, through
    ``biject_to``; the fitter's log-fitted scales): their check is left out of the program (as for real supports)."""
    out = noise_log_prior(sigma, noise_scale, small_noise)
    for p in law.free_params:
        v = values[p.name]
        if p.name in inside or p.prior.support is constraints.real:
            out = out + p.prior.log_prob(v) + (jnp.log(v) if p.name in centred else 0.0)
            continue
        ok = p.prior.support(v)
        safe = jnp.where(ok, v, biject_to(p.prior.support)(jnp.zeros_like(v)))
        lp = p.prior.log_prob(safe) + (jnp.log(safe) if p.name in centred else 0.0)
        out = out + jnp.where(ok, lp, -jnp.inf)
    if gamma is not None:
        out = out + dist.Normal(0.0, 0.5).log_prob(gamma)
    if nu is not None:
        out = out + dist.Gamma(2.0, 0.1).log_prob(nu)
    return out


def log_likelihood(likelihood: str, resid, scale, shape, mask=None):
    """log p(log L_obs | mean, noise) summed over runs (``mask`` weights runs; 0 = padding)."""
    ll = noise_model(likelihood).logpdf(resid, scale, shape)
    return jnp.sum(ll if mask is None else ll * mask)


def log_joint(law: Law, values, sigma, X, logy, mask=None, *, likelihood: str, shape, noise_scale, prior: bool = True,
              centred=(), gamma=None, log_c0=None, inside=(), small_noise=0.0):
    """The model's log joint density at natural ``values`` and noise ``sigma`` (and ``gamma``: noise varying with
    compute about ``log_c0``): :func:`log_likelihood` plus, with ``prior``, :func:`log_prior`. The point fitter's
    MAP and maximum-likelihood objectives are its negative, and the NumPyro model samples it: one density."""
    mu = law.log_loss_runs(values, X)
    scale = sigma if gamma is None else scale_with_compute(sigma, gamma, log_compute(X), log_c0)
    out = log_likelihood(likelihood, logy - mu, scale, shape, mask)
    if prior:
        out = out + log_prior(law, values, sigma, noise_scale=noise_scale, centred=centred, gamma=gamma, inside=inside,
                              small_noise=small_noise)
    return out


def log_compute(X):
    """log C of each run: the C column, else C = 6ND."""
    return jnp.log(X["C"]) if "C" in X else jnp.log(compute_of(X["N"], X["D"]))


@functools.lru_cache(maxsize=64)
def _make_model(
    law,
    *,
    likelihood: str = "student_t",
    shape: float | str | None = None,
    noise_scale: float = NOISE_SCALE,
    noise_varies_with_compute: bool = False,
    noise_prior: str = "half_normal",
):
    check_noise_prior(noise_prior)
    small_noise = 1.0 if noise_prior == "small_design" else 0.0
    noise = noise_model(likelihood)
    learn_nu = shape == "learn"
    shape = noise.default_shape if shape in (None, "learn") else float(shape)
    centred = {scale: (exponent, inp, sign) for scale, exponent, inp, sign in centred_terms(law)}
    fixed = law.fixed_values
    inside = frozenset(p.name for p in law.free_params)  # sites map through biject_to, centred scales through exp

    def model(X, logy=None, mask=None, center=None):
        # sample sites carry only supports (their unconstrained coordinates); the density is the one log_prior and
        # log_likelihood (:func:`log_joint`), added as factors
        center = center or {}
        values: dict[str, Any] = {name: jnp.asarray(v) for name, v in fixed.items()}
        # exponents (and every non-centred parameter) first, so centred scales can be shifted by them
        for p in law.free_params:
            if p.name not in centred:
                values[p.name] = numpyro.sample(p.name, dist.ImproperUniform(p.prior.support, (), ()))
        for p in law.free_params:
            if p.name in centred:
                exponent, inp, sign = centred[p.name]
                logT = numpyro.sample(f"log_{p.name}_c", dist.ImproperUniform(constraints.real, (), ()))
                values[p.name] = numpyro.deterministic(p.name, jnp.exp(logT + sign * values[exponent] * center[inp]))
        sigma = numpyro.sample("sigma", dist.ImproperUniform(constraints.positive, (), ()))
        shp = numpyro.sample("nu", dist.ImproperUniform(constraints.positive, (), ())) if learn_nu else shape
        gamma = numpyro.sample("gamma", dist.ImproperUniform(constraints.real, (), ())) if noise_varies_with_compute else None
        numpyro.factor("log_prior", log_prior(law, values, sigma, noise_scale=noise_scale, centred=centred, gamma=gamma,
                                              nu=shp if learn_nu else None, inside=inside, small_noise=small_noise))
        mu = law.log_loss_runs(values, X)
        numpyro.deterministic("log_loss_mean", mu)
        if logy is not None:
            scale = sigma if gamma is None else scale_with_compute(sigma, gamma, log_compute(X), center["__logC__"])
            numpyro.factor("log_likelihood", log_likelihood(likelihood, logy - mu, scale, shp, mask))

    model.law = law
    model.cache_token = None if law.cache_token is None else repr((
        "loss_model", law.cache_token, likelihood, shape, learn_nu, noise_scale, bool(noise_varies_with_compute))
        + ((noise_prior,) if noise_prior != "half_normal" else ()))
    model.likelihood = likelihood
    model.shape = shape
    model.centred = centred
    model.noise_varies_with_compute = noise_varies_with_compute
    model.learn_nu = learn_nu
    model.noise_scale = noise_scale
    model.noise_prior = noise_prior
    return model


def sampling_values(model, params: Mapping[str, float], sigma: float, center: Mapping[str, float], gamma: float = 0.0):
    """Values of the model's sample sites for natural ``params`` (used to start chains at a point fit)."""
    law = model.law
    out = {}
    for p in law.free_params:
        if p.name in model.centred:
            exponent, inp, sign = model.centred[p.name]
            out[f"log_{p.name}_c"] = math.log(params[p.name]) - sign * params[exponent] * center[inp]
        else:
            out[p.name] = float(params[p.name])
    out["sigma"] = float(sigma)
    if model.noise_varies_with_compute:
        out["gamma"] = float(gamma)
    if model.learn_nu:
        out["nu"] = float(model.shape)
    return out


def prior_predictive(law, X: Mapping[str, Any], *, num_draws: int = 1000, seed: int = 0, priors=None,
                     noise_scale: float = NOISE_SCALE, likelihood: str = "student_t", nu: float | None = None,
                     k: float | None = None):
    """Losses the priors alone predict for runs ``X`` (dict of input arrays): ``(num_draws, run)``.

    Parameters are drawn from the law's declared priors (or ``priors`` overrides) as the user knows them,
    sigma from HalfNormal(noise_scale), and one noise draw per run from the likelihood. A sensible prior
    gives losses of the right order (e.g. within [1, 10] nats for language models) for most draws.
    """
    import jax

    law = get_law(law).with_priors(priors)
    key = as_key(seed)
    params = {}
    for i, p in enumerate(law.params):
        if p.name in law.fixed_values:
            params[p.name] = jnp.full((num_draws,), law.fixed_values[p.name])
        else:
            params[p.name] = p.prior.sample(jax.random.fold_in(key, i), (num_draws,))
    X = {k: jnp.asarray(X[k]) for k in law.inputs}
    mu = jax.vmap(lambda p: law.log_loss_runs(p, X))(params)
    sigma = dist.HalfNormal(noise_scale).sample(jax.random.fold_in(key, 10_000), (num_draws, 1))
    shape = shape_of(likelihood, nu, k)
    if shape == "learn":
        raise ValueError("prior_predictive: give nu a number (the draws need one)")
    return np.asarray(jnp.exp(mu + sigma * sample_unit((*np.atleast_1d(seed_record(seed)), 10_000), likelihood, shape, mu.shape)))

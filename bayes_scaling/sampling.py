"""Posteriors with NumPyro NUTS.

``sample_posterior(law, runs)`` builds the law's model (:mod:`bayes_scaling.model`), finds the MAP point
with the optax fitter, starts each chain at a draw from the Laplace approximation around it (so chains
start dispersed, and R-hat means something), and runs NUTS with a dense mass matrix. The result is a
:class:`~bayes_scaling.posterior.Posterior`.

>>> import jax; jax.config.update("jax_enable_x64", True)
>>> from bayes_scaling import load_chinchilla
>>> post = sample_posterior("chinchilla", load_chinchilla(), num_warmup=200, num_samples=200, num_chains=2, seed=1)
>>> post.draws["alpha"].shape
(2, 200)
"""

from __future__ import annotations

import time
import warnings
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS

from .data import as_runs, check_enough_runs
from .fitting import fit_point, on_accelerator
from .laws import get_law, prior_text
from .model import centre_of, make_model, noise_inputs, sampling_values, start_sigma
from .posterior import Posterior
from .shard import device_count, pad_to_multiple, sharded, trim

__all__ = ["sample_posterior", "run_nuts"]

_EXTRA = ("diverging", "accept_prob", "num_steps", "adapt_state.step_size", "energy")


_CACHE: dict = {}


def _flat_potential(model, unravel):
    """The potential energy of ``model`` as a function of a flat unconstrained vector and the model args."""
    from numpyro.infer.util import potential_energy

    return lambda v, args: potential_energy(model, args, {}, unravel(v))


def _layout(z0) -> tuple:
    """Site names, shapes and dtypes of an unconstrained point: the key under which a compiled function that
    unravels flat vectors is cached (the same model on data of another shape has another layout; keyed by
    names alone, a second shape reused the first one's unravel and failed)."""
    return tuple((k, tuple(np.shape(z0[k])), str(jnp.result_type(z0[k]))) for k in sorted(z0))


def _hessian_fn(model, z0):
    """Jitted Hessian of the potential energy in unconstrained coordinates (cached per model)."""
    flat, unravel = ravel_pytree(z0)
    key = ("hess", model, _layout(z0))
    if key not in _CACHE:
        _CACHE[key] = jax.jit(jax.hessian(_flat_potential(model, unravel)))
    return _CACHE[key], flat, unravel


def _mode_fn(model, z0):
    """Jitted L-BFGS on the potential energy from a flat unconstrained start (cached per model)."""
    from .fitting import _default_tols, _lbfgs_one

    _, unravel = ravel_pytree(z0)
    key = ("mode", model, _layout(z0))
    if key not in _CACHE:
        pot = _flat_potential(model, unravel)

        def solve(v, args):
            gtol, ftol = _default_tols(v.dtype)
            return _lbfgs_one(pot, v, (args,), 2000, jnp.asarray(gtol, v.dtype), jnp.asarray(ftol, v.dtype))[0]

        _CACHE[key] = jax.jit(solve)
    return _CACHE[key]


def _laplace_inits(key, model, args, values, num_chains, scale):
    """Unconstrained chain starts: draws from N(z_map, scale^2 H^-1), falling back to small jitter."""
    from numpyro.infer.util import unconstrain_fn

    z0 = unconstrain_fn(model, args, {}, {k: jnp.asarray(v) for k, v in values.items()})
    hess, flat, unravel = _hessian_fn(model, z0)
    # polish the start to the posterior mode in these coordinates (the given values are a MAP in the
    # fitter's coordinates, or, for hierarchical models, only per-family fits)
    polished = np.asarray(_mode_fn(model, z0)(flat, args))
    if np.all(np.isfinite(polished)):
        flat = jnp.asarray(polished, flat.dtype)
    H = np.asarray(hess(flat, args))
    H = 0.5 * (H + H.T)
    noise = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (num_chains, flat.shape[0]), dtype=flat.dtype))
    try:
        L = np.linalg.cholesky(H)
        ok = bool(np.all(np.isfinite(L)))
    except np.linalg.LinAlgError:
        ok = False
    if ok:
        # x = z0 + scale * L^-T n has covariance scale^2 H^-1
        starts = np.asarray(flat) + scale * np.linalg.solve(L.T, noise.T).T
    else:
        starts = np.asarray(flat) + 1e-3 * noise
    return jax.vmap(unravel)(jnp.asarray(starts, flat.dtype)), ok


def _mcmc(model, **settings):
    """numpyro's MCMC driver (progress bar, one chain per device): per (model, settings), with
    jit_model_args so that a same-shaped dataset reuses the compiled sampler."""
    key = ("mcmc", model, tuple(sorted(settings.items())))
    if key not in _CACHE:
        s = settings
        kernel = NUTS(model, dense_mass=s["dense_mass"], target_accept_prob=s["target_accept"],
                      max_tree_depth=s["max_tree_depth"], regularize_mass_matrix=s["regularize"])
        _CACHE[key] = MCMC(kernel, num_warmup=s["num_warmup"], num_samples=s["num_samples"], num_chains=s["num_chains"],
                           chain_method=s["chain_method"], progress_bar=s["progress_bar"], jit_model_args=True)
    return _CACHE[key]


def _chains_fn(model, **s):
    """One jitted function running every chain (warm-up, then draws) with numpyro's NUTS kernel and
    returning constrained draws and sample stats; compiled once per (model, settings, shapes)."""
    from numpyro.infer.hmc import hmc
    from numpyro.infer.util import constrain_fn, potential_energy

    key = ("chains", model, tuple(sorted(s.items())))
    if key in _CACHE:
        return _CACHE[key]
    init_kernel, sample_kernel = hmc(
        potential_fn_gen=lambda *args: (lambda z: potential_energy(model, args, {}, z)), algo="NUTS"
    )

    def one_chain(rng_key, z0, args):
        state = init_kernel(z0, s["num_warmup"], dense_mass=s["dense_mass"], target_accept_prob=s["target_accept"],
                            max_tree_depth=s["max_tree_depth"], regularize_mass_matrix=s["regularize"],
                            model_args=args, rng_key=rng_key)
        state = jax.lax.fori_loop(0, s["num_warmup"], lambda _, st: sample_kernel(st, model_args=args), state)

        def step(st, _):
            st = sample_kernel(st, model_args=args)
            return st, (st.z, st.diverging, st.accept_prob, st.num_steps, st.adapt_state.step_size, st.energy)

        _, (z, div, acc, nsteps, eps, energy) = jax.lax.scan(step, state, None, length=s["num_samples"])
        values = jax.vmap(lambda zz: constrain_fn(model, args, {}, zz, return_deterministic=True))(z)
        stats = {"diverging": div, "acceptance_rate": acc, "n_steps": nsteps, "step_size": eps, "energy": energy}
        return values, stats

    if s["chain_method"] == "sequential":
        run = lambda keys, z0s, args: jax.lax.map(lambda kz: one_chain(kz[0], kz[1], args), (keys, z0s))
    else:
        run = jax.vmap(one_chain, in_axes=(0, 0, None))
    _CACHE[key] = jax.jit(run)
    _CACHE[("raw",) + key[1:]] = run
    return _CACHE[key]


def _sharded_chains_fn(model, num_devices: int, **s):
    """:func:`_chains_fn` with the chain axis (a multiple of ``num_devices``) sharded over that many devices:
    each device runs its chains one after another; the model arguments are copied to every device."""
    key = ("sharded_chains", model, num_devices, tuple(sorted(s.items())))
    if key not in _CACHE:
        _chains_fn(model, **s)
        _CACHE[key] = sharded(_CACHE[("raw", model, tuple(sorted(s.items())))], num_devices, "chain", (True, True, False))
    return _CACHE[key]


def _chain_devices(chain_method: str, num_chains: int, devices: int | None) -> int:
    """How many devices the chains of one posterior run on: with sequential chains (the CPU default) and
    several devices (``jax.config.update("jax_num_cpu_devices", n)``; the CLI gives one per core), up to one
    per chain; ``devices`` caps it (1: one device)."""
    return device_count(num_chains, devices) if chain_method == "sequential" else 1


def _families_fn(model, family_chunk: int, num_devices: int = 1, **s):
    """The chains of many families in one jitted call: ``run(keys, z0s, args)`` with a leading family axis
    on every argument; each family adapts its own step size and mass matrix. Families are vmapped in
    chunks of ``family_chunk`` (1: one after another, the CPU default). With ``num_devices`` > 1 the family
    axis (a multiple of it) is sharded over that many devices with ``jax.shard_map``: each device runs its
    own families."""
    key = ("families", model, family_chunk, num_devices, tuple(sorted(s.items())))
    if key not in _CACHE:
        _chains_fn(model, **s)
        run = _CACHE[("raw", model, tuple(sorted(s.items())))]
        one = lambda a: run(a[0], a[1], a[2])
        local = lambda keys, z0s, args: jax.lax.map(one, (keys, z0s, args),
                                                    batch_size=family_chunk if family_chunk > 1 else None)
        _CACHE[key] = sharded(local, num_devices, "family", (True,) * 3) if num_devices > 1 else jax.jit(local)
    return _CACHE[key]


def run_families(model, keys, z0s, args, *, family_chunk: int | None = None, devices: int | None = None, **settings):
    """NUTS for many same-shaped datasets (a leading family axis on ``keys``, ``z0s`` and ``args``) in one
    compiled call, sharded over ``devices`` (default: every device of the default backend; on CPU, as many as
    ``jax.config.update("jax_num_cpu_devices", n)`` made, before JAX first ran). Families are padded to a
    multiple of the device count by repeating the last one, and the padding is dropped from the result.
    ``family_chunk``: families vmapped together on each device (default 1 on CPU, all on GPU/TPU)."""
    F = int(jax.tree_util.tree_leaves(keys)[0].shape[0])
    n_dev = device_count(F, devices)
    chunk = int(family_chunk or (-(-F // n_dev) if on_accelerator() else 1))
    (keys, z0s, args), _ = pad_to_multiple((keys, z0s, args), n_dev)
    samples, stats = trim(_families_fn(model, chunk, n_dev, **settings)(keys, z0s, args), F)
    jax.block_until_ready(samples)
    return samples, stats


def run_nuts(model, args, values, *, seed=0, num_warmup=1000, num_samples=1000, num_chains=4, chain_method="auto",
             dense_mass=True, target_accept=0.9, max_tree_depth=10, init_scale=1.0, regularize_mass_matrix=False,
             progress_bar=False, devices: int | None = None):
    """NUTS on ``model(*args)`` with chains started at Laplace draws around ``values`` (sample-site values
    at the MAP point). Returns ``(samples, stats, laplace_ok, chain_method)``: NumPy arrays shaped
    ``(chain, draw, ...)`` for every site (deterministic ones included) and the sample stats. Sequential
    chains are spread over the devices there are (``devices`` caps how many; see :func:`_chain_devices`)."""
    key = jax.random.PRNGKey(seed)
    k_init, k_run = jax.random.split(key)
    init_params, laplace_ok = _laplace_inits(k_init, model, args, values, num_chains, init_scale)
    if chain_method == "auto":
        chain_method = "vectorized" if on_accelerator() else "sequential"
    if chain_method not in ("vectorized", "sequential", "parallel"):
        raise ValueError(f"chain_method must be 'auto', 'vectorized', 'parallel' or 'sequential', not {chain_method!r}")
    settings_ = dict(dense_mass=bool(dense_mass), target_accept=float(target_accept), max_tree_depth=int(max_tree_depth),
                     num_warmup=int(num_warmup), num_samples=int(num_samples), num_chains=int(num_chains),
                     chain_method=chain_method, regularize=bool(regularize_mass_matrix))
    if chain_method == "parallel" or progress_bar:
        if num_chains == 1:
            init_params = jax.tree_util.tree_map(lambda a: a[0], init_params)
        mcmc = _mcmc(model, progress_bar=bool(progress_bar), **settings_)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="There are not enough devices")
            mcmc.run(k_run, *args, extra_fields=_EXTRA, init_params=init_params)
        samples = mcmc.get_samples(group_by_chain=True)
        extra = mcmc.get_extra_fields(group_by_chain=True)
        stats = {"diverging": extra["diverging"], "acceptance_rate": extra["accept_prob"], "n_steps": extra["num_steps"],
                 "step_size": extra["adapt_state.step_size"], "energy": extra["energy"]}
    else:
        keys = jax.random.split(k_run, num_chains)
        n_dev = _chain_devices(chain_method, num_chains, devices)
        if n_dev > 1:
            # chains spread over the devices: each chain's draws are those it gives on one device
            (keys, init_params), _ = pad_to_multiple((keys, init_params), n_dev)
            samples, stats = trim(_sharded_chains_fn(model, n_dev, **settings_)(keys, init_params, args), num_chains)
        else:
            samples, stats = _chains_fn(model, **settings_)(keys, init_params, args)
    jax.block_until_ready(samples)
    samples = {k: np.asarray(v) for k, v in samples.items()}
    stats = {k: np.asarray(v) for k, v in stats.items()}
    return samples, stats, laplace_ok, chain_method


def sample_posterior(
    law,
    runs,
    *,
    likelihood: str = "student_t",
    shape: float | None = None,
    priors: Mapping[str, Any] | None = None,
    noise_scale: float = 0.1,
    noise_varies_with_compute: bool | None = None,
    num_warmup: int = 1000,
    num_samples: int = 1000,
    num_chains: int = 4,
    chain_method: str = "auto",
    dense_mass: bool = True,
    target_accept: float = 0.9,
    max_tree_depth: int = 10,
    seed: int = 0,
    init_scale: float = 1.0,
    regularize_mass_matrix: bool = False,
    progress_bar: bool = False,
    devices: int | None = None,
) -> Posterior:
    """Sample the posterior of ``law``'s parameters given ``runs`` with NUTS.

    likelihood:    ``"student_t"`` (default, nu = 4), ``"gaussian"`` or ``"huber"`` (normalised Huber
                   density); ``shape`` overrides nu (Student-t) or the Huber threshold k (in sigmas).
    priors:        ``{"alpha": numpyro.distributions.LogNormal(...)}`` overrides the law's priors.
    noise_varies_with_compute: log sigma_i = log sigma + gamma (log C_i - mean log C), gamma ~ Normal(0, 0.5).
                   ``None`` (default): on whenever the runs give a compute C (a C column, or N and D). On
                   the Chinchilla runs gamma's 90% interval is (0.04, 0.15): the noise grows with compute,
                   and a constant-noise model gives N_opt intervals half as wide as Epoch's bootstrap.
    chain_method:  ``"auto"`` (default: ``"sequential"`` on CPU, where chains one after another in one
                   compiled loop beat vmapped tree building, ``"vectorized"`` on GPU/TPU), ``"vectorized"``,
                   ``"sequential"``, or ``"parallel"`` (one chain per device, through numpyro's MCMC).
    seed:          the same seed gives identical draws.
    init_scale:    chains start at MAP + init_scale x (Laplace covariance)^(1/2) x N(0, 1) draws.
    devices:       with sequential chains (the CPU default) and several devices, the chains are spread over up to
                   ``devices`` of them (default: all; one chain per device at most), with the same draws as on one.
                   JAX gives a CPU one device unless ``jax.config.update("jax_num_cpu_devices", n)`` runs right
                   after ``import jax``; the CLI makes one per core.
    regularize_mass_matrix: numpyro's shrinkage of the adapted mass matrix toward 1e-3 I. Off by default:
                   posterior scales here are ~1e-2 and smaller, and the shrinkage then swamps the narrowest
                   direction (on Chinchilla: 26 leapfrog steps per draw with it, 8 without).

    Runs in the dtype JAX is set to; float64 (``jax.config.update("jax_enable_x64", True)``) is
    recommended, and float32 gives a warning.
    """
    law = get_law(law)
    runs = as_runs(runs)
    noise_varies_with_compute, names = noise_inputs(law, runs, noise_varies_with_compute)
    extra_noise = 1 + int(noise_varies_with_compute)
    check_enough_runs(runs, law.num_free + extra_noise, law.name)
    if not jax.config.jax_enable_x64:
        warnings.warn("sampling in float32: enable float64 with jax.config.update('jax_enable_x64', True) "
                      "for reliable posteriors", stacklevel=2)
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    model = make_model(law, likelihood=likelihood, shape=shape, priors=priors, noise_scale=noise_scale,
                       noise_varies_with_compute=noise_varies_with_compute)
    X = {k: jnp.asarray(v, dtype) for k, v in runs.inputs(names).items()}
    logy = jnp.log(jnp.asarray(runs.loss, dtype))
    center = centre_of(law, {k: np.asarray(v) for k, v in X.items()})
    t0 = time.perf_counter()
    # the MAP point under a likelihood the optax fitter has (Student-t stands in for the Huber density)
    fit = fit_point(law, runs, objective="gaussian" if likelihood == "gaussian" else "student_t",
                    nu=model.shape if likelihood == "student_t" else 4.0, prior=True)
    values = sampling_values(model, fit.params, start_sigma(fit.noise["sigma"], noise_scale), center)
    args = (X, logy, None, center)
    samples, stats, laplace_ok, chain_method = run_nuts(
        model, args, values, seed=seed, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
        chain_method=chain_method, dense_mass=dense_mass, target_accept=target_accept, max_tree_depth=max_tree_depth,
        init_scale=init_scale, regularize_mass_matrix=regularize_mass_matrix, progress_bar=progress_bar, devices=devices)
    seconds = time.perf_counter() - t0
    draws = {p.name: np.asarray(samples[p.name]) for p in law.params if p.name in samples}
    for name, value in law.fixed_values.items():
        draws[name] = np.full((num_chains, num_samples), value)
    noise = {"sigma": np.asarray(samples["sigma"])}
    for extra_site in ("gamma", "nu"):
        if extra_site in samples:
            noise[extra_site] = np.asarray(samples[extra_site])
    settings = {
        "likelihood": likelihood,
        "shape": model.shape,
        "priors": {p.name: prior_text((priors or {}).get(p.name, p.prior)) for p in law.free_params},
        "noise_scale": noise_scale,
        "noise_varies_with_compute": noise_varies_with_compute,
        "num_warmup": num_warmup,
        "num_samples": num_samples,
        "num_chains": num_chains,
        "chain_method": chain_method,
        "devices": 1 if progress_bar else _chain_devices(chain_method, num_chains, devices),
        "dense_mass": dense_mass,
        "target_accept": target_accept,
        "max_tree_depth": max_tree_depth,
        "seed": seed,
        "init": "MAP + Laplace draws" if laplace_ok else "MAP + small jitter (Hessian not positive definite)",
        "center": center,
        "seconds": seconds,
    }
    return Posterior(
        law=law,
        draws=draws,
        noise=noise,
        sample_stats=stats,
        log_loss_mean=np.asarray(samples["log_loss_mean"]),
        observed={k: np.asarray(v) for k, v in X.items()} | {"loss": np.asarray(runs.loss)},
        settings=settings,
        point_fit=fit.to_dict(),
        source=runs.source,
    )

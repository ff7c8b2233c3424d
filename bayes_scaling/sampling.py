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
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from numpyro.infer import MCMC, NUTS

from . import checks, compile_cache, progress
from .batch import BatchFit, fit_point_batch, single_batch
from .checks import check_sampler_size, runs_sha256
from .data import as_runs
from .fitting import fit_point, on_accelerator
from .keys import as_key, seed_record
from .laws import get_law, prior_text
from .model import centre_of, make_model, noise_inputs, sampling_values, start_sigma
from .noise import noise_model, shape_settings
from .posterior import Posterior, assemble
from .shard import device_count, pad_to_multiple, sharded, trim

__all__ = ["sample_posterior", "run_nuts", "run_chains", "sample_families", "check_sampler_size", "runs_sha256"]

_EXTRA = ("diverging", "accept_prob", "num_steps", "adapt_state.step_size", "energy")


_CACHE: dict = {}


def _token(model, *parts) -> str | None:
    """The cache token of a program built from ``model`` and settings ``parts`` (``None``: not storable)."""
    tok = compile_cache.token_of(model)
    return None if tok is None else repr((tok,) + tuple(sorted(p.items()) if isinstance(p, dict) else p for p in parts))


def _laplace_fn(model, num_chains: int):
    """One jitted program that starts the chains of ``model``: the sample-site values are mapped to unconstrained
    coordinates, polished to the posterior mode there by L-BFGS on the potential energy (the values given are a
    MAP in the fitter's coordinates, or, for hierarchical models, only per-family fits), and ``num_chains``
    starts are drawn from N(mode, scale^2 H^-1), H the potential's Hessian at the mode; where H is not positive
    definite, the mode plus 1e-3 jitter. Returns ``(starts, ok, chain_keys)``: the chains' random keys come from the
    same key (``fold_in(key, 2)``, split per chain), so that one program does all of a sampler's set-up; cached per
    (model, number of chains)."""
    key = ("laplace", model, int(num_chains))
    if key not in _CACHE:
        from numpyro.infer.util import potential_energy, unconstrain_fn

        from .optimize import default_tols, lbfgs_one

        def starts(rng_key, values, args, scale):
            flat, unravel = ravel_pytree(unconstrain_fn(model, args, {}, values))
            pot = lambda v, a: potential_energy(model, a, {}, unravel(v))
            gtol, ftol = default_tols(flat.dtype)
            mode = lbfgs_one(pot, flat, (args,), 2000, jnp.asarray(gtol, flat.dtype), jnp.asarray(ftol, flat.dtype))[0]
            flat = jnp.where(jnp.all(jnp.isfinite(mode)), mode, flat)
            H = jax.hessian(pot)(flat, args)
            L = jnp.linalg.cholesky(0.5 * (H + H.T))
            ok = jnp.all(jnp.isfinite(L))
            noise = jax.random.normal(jax.random.fold_in(rng_key, 1), (int(num_chains), flat.shape[0]), dtype=flat.dtype)
            # x = mode + scale * L^-T n has covariance scale^2 H^-1
            laplace = flat + scale * jax.scipy.linalg.solve_triangular(jnp.where(ok, L, jnp.eye(L.shape[0], dtype=L.dtype)).T,
                                                                       noise.T, lower=False).T
            chain_keys = jax.random.split(jax.random.fold_in(rng_key, 2), int(num_chains))
            return jax.vmap(unravel)(jnp.where(ok, laplace, flat + 1e-3 * noise)), ok, chain_keys

        _CACHE[key] = jax.jit(starts)
    return _CACHE[key]


def laplace_inits(key, model, args, values, num_chains, scale):
    """Unconstrained chain starts and the chains' keys (see :func:`_laplace_fn`): ``(starts, ok, chain_keys)``,
    ``starts`` and ``chain_keys`` with a leading chain axis (NumPy arrays)."""
    dtype = np.float64 if jax.config.jax_enable_x64 else np.float32
    values = {k: np.asarray(v, dtype) for k, v in values.items()}
    z0s, ok, keys = compile_cache.run("laplace", _token(model, int(num_chains)), _laplace_fn(model, num_chains),
                                      np.asarray(key, np.uint32), values, args, np.asarray(scale, dtype))
    return jax.tree_util.tree_map(np.asarray, z0s), bool(ok), np.asarray(keys)


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
    ``family_chunk``: families vmapped together on each device (default 1 on CPU, all on GPU/TPU).
    On CPU the families run in up to 10 equal calls of the same compiled program (the last one padded), and
    progress is reported after each (:mod:`bayes_scaling.progress`)."""
    F = int(jax.tree_util.tree_leaves(keys)[0].shape[0])
    n_dev = device_count(F, devices)
    calls = 1 if on_accelerator() else min(-(-F // n_dev), 10)
    size = n_dev * -(-F // (n_dev * calls))
    chunk = int(family_chunk or (size // n_dev if on_accelerator() else 1))
    fn = _families_fn(model, chunk, n_dev, **settings)
    tok = _token(model, chunk, n_dev, settings)
    tree = jax.tree_util.tree_map(np.asarray, (keys, z0s, args))
    parts = []
    progress.report("sampling families", 0, F)
    for start in range(0, F, size):
        stop = min(start + size, F)
        piece, _ = pad_to_multiple(jax.tree_util.tree_map(lambda a: a[start:stop], tree), size)
        parts.append(trim(compile_cache.run("families", tok, fn, *piece), stop - start))
        progress.report("sampling families", stop, F)
    return tuple(jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=0), *[p[i] for p in parts]) for i in (0, 1))


def run_nuts(model, args, values, *, seed=0, num_warmup=1000, num_samples=1000, num_chains=4, chain_method="auto",
             dense_mass=True, target_accept=0.9, max_tree_depth=10, init_scale=1.0, regularize_mass_matrix=False,
             progress_bar=False, devices: int | None = None):
    """NUTS on ``model(*args)`` with chains started at Laplace draws around ``values`` (sample-site values
    at the MAP point). Returns ``(samples, stats, laplace_ok, chain_method)``: NumPy arrays shaped
    ``(chain, draw, ...)`` for every site (deterministic ones included) and the sample stats. Sequential
    chains are spread over the devices there are (``devices`` caps how many; see :func:`_chain_devices`).
    ``progress_bar``: report chains as they finish on stderr (:mod:`bayes_scaling.progress`)."""
    init_params, laplace_ok, keys = laplace_inits(as_key(seed), model, args, values, num_chains, init_scale)
    chain_method = resolve_chain_method(chain_method)
    settings_ = chain_settings(dense_mass=dense_mass, target_accept=target_accept, max_tree_depth=max_tree_depth,
                               num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                               chain_method=chain_method, regularize=regularize_mass_matrix)
    samples, stats = run_chains(model, args, init_params, keys, devices=devices, progress_bar=progress_bar, **settings_)
    return samples, stats, laplace_ok, chain_method


def resolve_chain_method(chain_method: str, *, allowed=("vectorized", "sequential", "parallel")) -> str:
    """``"auto"`` made concrete (sequential chains on CPU, vectorised on GPU/TPU); anything else checked."""
    if chain_method == "auto":
        return "vectorized" if on_accelerator() else "sequential"
    if chain_method not in allowed:
        raise ValueError(f"chain_method must be 'auto', {', '.join(repr(m) for m in allowed)}, not {chain_method!r}")
    return chain_method


def chain_settings(*, dense_mass, target_accept, max_tree_depth, num_warmup, num_samples, num_chains, chain_method,
                   regularize) -> dict:
    """The NUTS settings a compiled chain program is keyed by (plain values)."""
    return dict(dense_mass=bool(dense_mass), target_accept=float(target_accept), max_tree_depth=int(max_tree_depth),
                num_warmup=int(num_warmup), num_samples=int(num_samples), num_chains=int(num_chains),
                chain_method=chain_method, regularize=bool(regularize))


def run_chains(model, args, init_params, keys, *, devices: int | None = None, progress_bar: bool = False, **settings_):
    """Every chain of one dataset from unconstrained starts ``init_params`` with random ``keys`` (a leading chain
    axis on both): ``(samples, stats)`` as NumPy arrays ``(chain, draw, ...)``. Sequential chains run in groups,
    one chain per device at a time, each group one call of the same compiled program (progress between groups)."""
    if progress_bar and not progress.active():
        with progress.reporting():
            return run_chains(model, args, init_params, keys, devices=devices, **settings_)
    chain_method, num_chains = settings_["chain_method"], settings_["num_chains"]
    if chain_method == "parallel":
        if num_chains == 1:
            init_params = jax.tree_util.tree_map(lambda a: a[0], init_params)
        mcmc = _mcmc(model, progress_bar=False, **settings_)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="There are not enough devices")
            mcmc.run(jnp.asarray(keys[0]), *args, extra_fields=_EXTRA, init_params=init_params)
        samples = mcmc.get_samples(group_by_chain=True)
        extra = mcmc.get_extra_fields(group_by_chain=True)
        stats = {"diverging": extra["diverging"], "acceptance_rate": extra["accept_prob"], "n_steps": extra["num_steps"],
                 "step_size": extra["adapt_state.step_size"], "energy": extra["energy"]}
        progress.report("sampling chains", num_chains, num_chains)
    else:
        n_dev = _chain_devices(chain_method, num_chains, devices)
        group = n_dev if chain_method == "sequential" else num_chains
        program = dict(settings_, num_chains=group)
        if n_dev > 1:
            fn, tok = _sharded_chains_fn(model, n_dev, **program), _token(model, n_dev, program)
        else:
            fn, tok = _chains_fn(model, **program), _token(model, 1, program)
        parts = []
        progress.report("sampling chains", 0, num_chains)
        for start in range(0, num_chains, group):
            sl = slice(start, min(start + group, num_chains))
            (k_g, z_g), _ = pad_to_multiple((keys[sl], jax.tree_util.tree_map(lambda a: a[sl], init_params)), group)
            parts.append(trim(compile_cache.run("chains", tok, fn, k_g, z_g, args), sl.stop - sl.start))
            progress.report("sampling chains", sl.stop, num_chains)
        samples, stats = (jax.tree_util.tree_map(lambda *a: np.concatenate(a, axis=0), *[p[i] for p in parts]) for i in (0, 1))
    jax.block_until_ready(samples)
    return {k: np.asarray(v) for k, v in samples.items()}, {k: np.asarray(v) for k, v in stats.items()}


def sample_families(model, batch, keys, *, num_chains, init_scale, chain_method, devices=None, family_chunk=None,
                    progress_bar=False, **nuts):
    """The posterior of ``model`` on every family of ``batch`` (a :class:`~bayes_scaling.batch.RunBatch`; one family
    for a single posterior): each family's MAP (the model's own density, :func:`~bayes_scaling.fitting.fit_point`
    per family in one call), chains started at Laplace draws about its mode, NUTS with its own adaptation, each
    family with its own key (``keys``: one raw key per family). One family runs its chains over the devices; many
    run families over them. A family sampled alone with the key it had in a batch gives the same draws where the
    batch did not pad it (the same compiled arithmetic). Returns ``(fits, samples, stats, centres,
    laplace_ok)``, samples and stats with a leading family axis."""
    law = model.law
    name = noise_model(model.likelihood).shape_name
    shape = {} if name is None else {name: model.shape}
    options = dict(objective=model.likelihood, prior=True, noise_scale=model.noise_scale, noise_prior=model.noise_prior, **shape)
    if batch.num_families == 1:  # the single fit's programs are kept between processes (compile_cache); equal to 1e-9
        fits = BatchFit(fits={str(batch.families[0]): fit_point(law, batch.runs[0], **options)})
    else:
        fits = fit_point_batch(law, batch, protocol="warm", num_pilots=4, verify=0, **options)
    keys, z0s, args, centers, laplace = family_starts(model, batch, fits, keys, num_chains, init_scale)
    settings_ = chain_settings(num_chains=num_chains, chain_method=chain_method, **nuts)
    if batch.num_families == 1:
        one = jax.tree_util.tree_map(lambda a: np.asarray(a)[0], (z0s, args))
        samples, stats = run_chains(model, one[1], one[0], keys[0], devices=devices, progress_bar=progress_bar, **settings_)
        samples, stats = ({k: v[None] for k, v in d.items()} for d in (samples, stats))
    else:
        samples, stats = run_families(model, keys, z0s, args, family_chunk=family_chunk, devices=devices, **settings_)
    return fits, samples, stats, centers, laplace


def family_starts(model, batch, fits, family_keys, num_chains, init_scale):
    """Each family's chain keys and starts (Laplace draws about its MAP point, from its key in ``family_keys``), and
    the stacked arguments of the model: ``(keys, z0s, args, centres, laplace_ok)`` with a leading family axis. The MAP
    point only starts the polish to the mode; it is rounded to 10 significant digits so that the last bits of a
    differently compiled fit (one family: ``fit_point``; many: ``fit_point_batch``, equal to 1e-9) do not reach
    the chains."""
    law = model.law
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    inits, centers, laplace, keys = [], [], [], []
    for i, fam in enumerate(batch.families):
        X_i = {k: jnp.asarray(v[i], dtype) for k, v in batch.inputs.items()}
        c_i = centre_of(law, {k: np.asarray(v) for k, v in X_i.items()}, batch.mask[i])
        fit = fits.fits[str(fam)]
        values = {n: float(f"{v:.10g}") for n, v in
                  sampling_values(model, fit.params, start_sigma(fit.noise["sigma"], model.noise_scale), c_i).items()}
        args_i = (X_i, jnp.asarray(np.log(batch.loss[i]), dtype), jnp.asarray(batch.mask[i], dtype), c_i)
        z0, ok, chain_keys = laplace_inits(family_keys[i], model, args_i, values, num_chains, init_scale)
        inits.append(z0)
        keys.append(chain_keys)
        centers.append(c_i)
        laplace.append(ok)
    z0s = jax.tree_util.tree_map(lambda *a: np.stack([np.asarray(x) for x in a]), *inits)
    args = ({k: jnp.asarray(v, dtype) for k, v in batch.inputs.items()}, jnp.asarray(np.log(batch.loss), dtype),
            jnp.asarray(batch.mask, dtype), {k: jnp.asarray([c[k] for c in centers], dtype) for k in centers[0]})
    return np.stack(keys), z0s, args, centers, laplace


def sample_posterior(
    law,
    runs,
    *,
    likelihood: str = "student_t",
    nu: float | str | None = None,
    k: float | None = None,
    priors: Mapping[str, Any] | None = None,
    noise_scale: float = 0.1,
    noise_varies_with_compute: bool | None = None,
    noise_prior: str = "auto",
    num_warmup: int | None = None, num_samples: int | None = None, num_chains: int = 4,
    chain_method: str = "auto",
    dense_mass: bool = True,
    target_accept: float | None = None, max_tree_depth: int = 10,
    seed: int = 0,
    init_scale: float = 1.0,
    regularize_mass_matrix: bool = False,
    progress_bar: bool = False,
    devices: int | None = None,
) -> Posterior:
    """Sample the posterior of ``law``'s parameters given ``runs`` with NUTS.

    likelihood:    ``"student_t"`` (default, nu = 4), ``"gaussian"`` or ``"huber_density"`` (normalised Huber
                   density). ``nu``: Student-t's degrees of freedom (default 4; ``"learn"`` samples it); ``k``: the
                   Huber density's threshold in sigmas (default 1.345).
    priors:        ``{"alpha": numpyro.distributions.LogNormal(...)}`` overrides the law's priors.
    noise_varies_with_compute: log sigma_i = log sigma + gamma (log C_i - mean log C), gamma ~ Normal(0, 0.5).
                   ``None`` (default): on whenever the runs give a compute C (a C column, or N and D). On
                   the Chinchilla runs gamma's 90% interval is (0.04, 0.15): the noise grows with compute,
                   and a constant-noise model gives N_opt intervals half as wide as Epoch's bootstrap.
    noise_prior:   ``"half_normal"`` (HalfNormal(noise_scale)), ``"small_design"`` (LogNormal(log 0.01, 0.7)) or ``"auto"``
                   (default: the latter on a small design, runs <= 2 x the law's parameters, :func:`small_design_settings`,
                   which also sets noise constant in compute and, unless given, 4 x (2000 + 4000) draws at target 0.95).
    chain_method:  ``"auto"`` (default: ``"sequential"`` on CPU, where chains one after another in one
                   compiled loop beat vmapped tree building, ``"vectorized"`` on GPU/TPU), ``"vectorized"``,
                   ``"sequential"``, or ``"parallel"`` (one chain per device, through numpyro's MCMC).
    seed:          an int or a JAX random key (jax.random.key(n), PRNGKey(n)); the same seed gives identical draws.
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
    key = as_key(seed)  # a seed that is neither an int nor a key is refused before any work
    chain_method = resolve_chain_method(chain_method)
    small = checks.small_design(len(runs), law)
    noise_prior, noise_varies_with_compute, num_warmup, num_samples, target_accept = small_design_settings(
        small, noise_prior, noise_varies_with_compute, num_warmup, num_samples, target_accept)
    noise_varies_with_compute, names = noise_inputs(law, runs, noise_varies_with_compute)
    check_sampler_size(num_chains, num_warmup, num_samples, len(law.params) + 3 + len(runs))
    data_warnings = posterior_data_warnings(runs, law)
    model = make_model(law, likelihood=likelihood, nu=nu, k=k, priors=priors, noise_scale=noise_scale,
                       noise_varies_with_compute=noise_varies_with_compute, noise_prior=noise_prior)
    t0 = time.perf_counter()
    fits, samples, stats, centers, laplace = sample_families(
        model, single_batch(runs, names), key[None], num_chains=num_chains, init_scale=init_scale, chain_method=chain_method,
        devices=devices, progress_bar=progress_bar, dense_mass=dense_mass, target_accept=target_accept,
        max_tree_depth=max_tree_depth, num_warmup=num_warmup, num_samples=num_samples, regularize=regularize_mass_matrix)
    seconds = time.perf_counter() - t0
    settings = posterior_settings(
        law, model, priors=priors, noise_scale=noise_scale, seed=seed, center=centers[0], seconds=seconds,
        init_ok=laplace[0], data_warnings=data_warnings, data_sha256=runs_sha256(runs, names),
        sampler=dict(num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains, chain_method=chain_method,
                     devices=_chain_devices(chain_method, num_chains, devices), dense_mass=dense_mass,
                     target_accept=target_accept, max_tree_depth=max_tree_depth))
    observed = {n: np.asarray(v) for n, v in runs.inputs(names).items()} | {"loss": np.asarray(runs.loss)}
    fit = next(iter(fits.fits.values()))
    return assemble(law, {n: v[0] for n, v in samples.items()}, {n: v[0] for n, v in stats.items()}, observed=observed,
                    settings=settings, point_fit=fit.to_dict(), source=runs.source)


#: a small design's defaults: warm-up and draws per chain, NUTS target acceptance (its posteriors have long tails in
#: the noise and in the scales the runs cannot separate; on five Chinchilla runs 4 x (1000 + 1000) left R-hat at
#: 1.01-1.02, 4 x (1000 + 4000) met 1.01 in 6 of 9 designs and seeds, and a 2000-step warm-up mended 2 of the 3 misses)
SMALL_DESIGN_WARMUP, SMALL_DESIGN_DRAWS, SMALL_DESIGN_TARGET_ACCEPT = 2000, 4000, 0.95


def small_design_settings(small: bool, noise_prior, noise_varies_with_compute, num_warmup, num_samples, target_accept):
    """The noise prior, noise-with-compute switch, warm-up, draws and target acceptance of a posterior: what the caller
    gave, else a small design's (see :func:`sample_posterior`) or the usual defaults."""
    from .model import check_noise_prior

    if check_noise_prior(noise_prior, auto=True) == "auto":
        noise_prior = "small_design" if small else "half_normal"
    if small and noise_varies_with_compute is None:
        noise_varies_with_compute = False  # a slope of the noise in compute is not identified by a handful of runs
    num_warmup = num_warmup if num_warmup is not None else (SMALL_DESIGN_WARMUP if small else 1000)
    num_samples = num_samples if num_samples is not None else (SMALL_DESIGN_DRAWS if small else 1000)
    target_accept = target_accept if target_accept is not None else (SMALL_DESIGN_TARGET_ACCEPT if small else 0.9)
    return noise_prior, noise_varies_with_compute, num_warmup, num_samples, target_accept


def posterior_data_warnings(runs, law) -> list[str]:
    """What a posterior of ``law`` on ``runs`` records about its data (run count, identifiability, ...); and, once
    per call, a warning when JAX samples in float32."""
    if not jax.config.jax_enable_x64:
        warnings.warn("sampling in float32: enable float64 with jax.config.update('jax_enable_x64', True) "
                      "for reliable posteriors", stacklevel=3)
    return checks.check_run_count(len(runs), law, "posterior", runs.source) + checks.data_warnings(runs, law, kind="posterior")


def posterior_settings(law, model, *, priors, noise_scale, seed, center, seconds, init_ok, data_warnings, data_sha256,
                       sampler, **extra) -> dict:
    """What a loss-law posterior records about how it was made (single and batch posteriors alike): the noise model
    and priors, the sampler's settings, the seed, the start, the data's centre, warnings and SHA-256."""
    return {"likelihood": model.likelihood, **shape_settings(model.likelihood, model.shape),
            "priors": {p.name: prior_text((priors or {}).get(p.name, p.prior)) for p in law.free_params},
            "noise_scale": noise_scale, "noise_prior": getattr(model, "noise_prior", "half_normal"),
            "noise_varies_with_compute": model.noise_varies_with_compute, **sampler,
            "seed": seed_record(seed),
            "init": "MAP + Laplace draws" if init_ok else "MAP + small jitter (Hessian not positive definite)",
            "center": center, "seconds": seconds, "data_warnings": data_warnings, "data_sha256": data_sha256, **extra}

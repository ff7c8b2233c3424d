"""Point fits with optax L-BFGS, jitted, vmapped over starts.

Objectives (all on log-loss residuals r_i = log L_i - log L_hat_i, parameters in fit space):

* ``"huber_loss"`` (the protocol, not a likelihood): sum_i Huber_delta(r_i), delta = 1e-3: the Chinchilla
  protocol as repaired by Epoch AI (Besiroglu et al. 2024). A **sum**, not a mean: the mean makes optimizers stop
  early.
* a likelihood (``"student_t"``, ``"gaussian"``, ``"huber_density"``: :data:`~bayes_scaling.noise.NOISE`): maximum
  likelihood with noise scale sigma (fitted in log space, reported) and the likelihood's shape (``nu``, ``k``).
* ``prior=True`` with a likelihood: MAP, the model's own log joint density (:func:`~bayes_scaling.model.log_joint`:
  the law's priors, or ``priors``, and sigma ~ HalfNormal(noise_scale)) maximised over the natural parameters
  (no Jacobian, as Stan's optimiser); the posterior samples that same density.

Every start runs L-BFGS (zoom line search) until the gradient is small relative to the objective's scale,
the objective stops decreasing, or ``max_steps``. Each start records its objective, gradient norm, steps
and a status code; the best finite start is the result, and a fit that did not converge or is not finite
is reported as such.

>>> from bayes_scaling import load_chinchilla
>>> fit = fit_point("chinchilla", load_chinchilla(), starts=[[0.5, 6.0, 7.5, 0.35, 0.37]])
>>> fit.converged, round(fit.params["alpha"], 3)
(True, 0.347)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import checks, compile_cache, varpro
from .data import Runs, as_runs
from .defaults import ELEMENTS_AT_ONCE
from .laws import Law, get_law
from .model import NOISE_SCALE, centred_terms, check_noise_prior, log_joint
from .noise import NOISE, huber, shape_of, shape_settings
from .optimize import default_tols, solve_starts
from .priors import exp_inside

__all__ = ["PointFit", "fit_point", "objective_function", "check_objective", "OBJECTIVES", "STATUS", "STRATEGIES",
           "VARPRO_POLISH", "trace_count"]

#: status codes of one L-BFGS run
STATUS = {
    0: "converged (gradient below tolerance)",
    1: "converged (objective stopped decreasing)",
    2: "not converged: reached max_steps",
    3: "failed: objective or gradient not finite",
}
_TRACES = {"count": 0}
#: start strategies of :func:`fit_point`
STRATEGIES = ("auto", "varpro", "grid")
#: points of the variable-projection grid polished with L-BFGS
VARPRO_POLISH = 4
#: what a point fit minimises: the Hoffmann/Epoch robust loss, or a likelihood's negative log density
OBJECTIVES = ("huber_loss",) + tuple(NOISE)


def check_objective(kind: str, prior: bool = False) -> None:
    """Refuse an objective that is not one of :data:`OBJECTIVES` (and MAP without a likelihood), in words."""
    if kind == "huber":
        raise ValueError("objective 'huber' is ambiguous: 'huber_loss' is the Hoffmann/Epoch robust loss (the protocol), "
                         "'huber_density' the Huber likelihood")
    if kind not in OBJECTIVES:
        raise ValueError(f"unknown objective {kind!r}; use one of {', '.join(OBJECTIVES)}")
    if kind == "huber_loss" and prior:
        raise ValueError("prior=True (MAP) needs a likelihood: objective 'student_t', 'gaussian' or 'huber_density'")


def trace_count() -> int:
    """How many times the jitted multistart solver has been traced (compiled); for tests."""
    return _TRACES["count"]


@dataclass(frozen=True)
class PointFit:
    """Result of a point fit. ``params`` holds every parameter (fixed ones too) as the user knows them."""

    law: Law
    params: dict[str, float]
    objective: float
    converged: bool
    status: str
    num_steps: int
    grad_norm: float
    method: str
    num_runs: int
    num_starts: int
    num_converged_starts: int
    num_polished: int = 0
    noise: dict[str, float] = field(default_factory=dict)
    start_objectives: np.ndarray | None = field(default=None, repr=False)
    theta: np.ndarray | None = field(default=None, repr=False)
    source: str = ""
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    start_strategy: str = ""

    @property
    def ok(self) -> bool:
        """Converged, and nothing found that makes the numbers untrustworthy (see ``warnings``)."""
        return self.converged and not self.warnings

    def to_dict(self) -> dict[str, Any]:
        return {
            "law": self.law.name,
            "formula": self.law.formula,
            "method": self.method,
            "params": {k: float(v) for k, v in self.params.items()},
            "fixed": sorted(self.law.fixed_values),
            "noise": {k: float(v) for k, v in self.noise.items()},
            "objective": float(self.objective),
            "converged": bool(self.converged),
            "status": self.status,
            "num_steps": int(self.num_steps),
            "grad_norm": float(self.grad_norm),
            "num_runs": int(self.num_runs),
            "num_starts": int(self.num_starts),
            "num_polished": int(self.num_polished),
            "num_converged_starts": int(self.num_converged_starts),
            "source": self.source,
            "start_strategy": self.start_strategy,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
        }


def objective_function(law: Law, kind: str = "huber_loss", *, prior: bool = False):
    """The scalar objective ``f(theta, X, logy, mask, hyper)`` minimised by :func:`fit_point`.

    ``theta`` is the fit-space vector (free law parameters, then log sigma for likelihoods), ``X`` a dict of
    run arrays, ``logy`` the log observed losses, ``mask`` per-run weights (1 = use, 0 = padding),
    ``hyper`` a dict with ``delta`` (the Huber loss), ``shape`` (the likelihood's nu or k) and ``noise_scale``
    (sigma's prior scale). The likelihood objectives are the negative of the model's one
    :func:`~bayes_scaling.model.log_joint` (with ``prior``: priors included). Exposed so that tests and benchmarks
    can hand the identical objective to scipy.
    """
    check_objective(kind, prior)
    k = law.num_free
    centred = tuple(t[0] for t in centred_terms(law))
    # log-fitted scales are exp(theta): inside a (0, inf) support by construction
    inside = frozenset(p.name for p in law.free_params if p.log and exp_inside(p.prior))

    def f(theta, X, logy, mask, hyper):
        params = law.params_from_theta(theta[:k])
        if kind == "huber_loss":
            return jnp.sum(mask * huber(logy - law.log_loss_runs(params, X), hyper["delta"]))
        return -log_joint(law, params, jnp.exp(theta[k]), X, logy, mask, likelihood=kind, shape=hyper["shape"],
                          noise_scale=hyper["noise_scale"], prior=prior, centred=centred, inside=inside,
                          small_noise=hyper.get("small_noise", 0.0))

    return f


def multistart_impl(theta0s, X, logy, mask, hyper, *, law, kind, prior, max_steps, chunk, newton_first=0):
    _TRACES["count"] += 1
    fun = objective_function(law, kind, prior=prior)
    return solve_starts(fun, theta0s, X, logy, mask, hyper, max_steps, chunk, newton_first)


def varpro_impl(nl_grid, X, logy, mask, hyper, *, law, kind, prior, num_polish, max_steps, chunk):
    """The variable-projection strategy in one program: the closed-form grid (:mod:`bayes_scaling.varpro`),
    then L-BFGS from its ``num_polish`` best points on the exact objective."""
    _TRACES["count"] += 1
    fun = objective_function(law, kind, prior=prior)
    thetas, f = varpro.grid_starts(law, kind, X, logy, mask, hyper, nl_grid, objective=fun)
    _, best = jax.lax.top_k(-f, num_polish)
    return solve_starts(fun, thetas[best], X, logy, mask, hyper, max_steps, chunk)


_varpro = jax.jit(varpro_impl, static_argnames=("law", "kind", "prior", "num_polish", "max_steps", "chunk"))


_multistart = jax.jit(multistart_impl, static_argnames=("law", "kind", "prior", "max_steps", "chunk", "newton_first"))


def screen_impl(theta0s, X, logy, mask, hyper, *, law, kind, prior, batch=0):
    _TRACES["count"] += 1
    fun = objective_function(law, kind, prior=prior)
    one = lambda th: fun(th, X, logy, mask, hyper)
    # starts in batches of ``batch`` (vmapped within a batch): all starts x all runs at once takes starts x runs
    # x ~10 doubles (4500 starts x 100,000 runs: ~36 GB); 0 = every start at once
    f = jax.vmap(one)(theta0s) if not batch or batch >= theta0s.shape[0] else jax.lax.map(one, theta0s, batch_size=batch)
    return jnp.where(jnp.isfinite(f), f, jnp.inf)




def screen_batch(num_starts: int, num_runs: int) -> int:
    """How many starts the screen evaluates at once for ``num_runs`` runs (0: all of them)."""
    b = max(1, ELEMENTS_AT_ONCE // max(int(num_runs), 1))
    return 0 if b >= num_starts else b


_screen = jax.jit(screen_impl, static_argnames=("law", "kind", "prior", "batch"))


def on_accelerator() -> bool:
    """True when JAX runs on a GPU or TPU (vmapping many problems pays there; on CPU a compiled loop wins)."""
    return jax.default_backend() in ("gpu", "tpu", "cuda", "rocm")


def _default_chunk(num: int) -> int:
    return num if on_accelerator() else 1


def start_array(law: Law, starts, num_noise: int) -> np.ndarray:
    """Validated start points ``(num_starts, num_free + num_noise)`` in fit space: the law's grid when
    ``starts`` is None; a log-sigma column (log 0.05) is appended for likelihood objectives if missing."""
    theta0s = np.asarray(law.start_grid() if starts is None else starts, dtype=float)
    if theta0s.ndim == 1:
        theta0s = theta0s[None, :]
    want = law.num_free + num_noise
    if theta0s.ndim == 2 and theta0s.shape[1] == law.num_free and num_noise:
        theta0s = np.concatenate([theta0s, np.full((len(theta0s), 1), np.log(0.05))], axis=1)
    if theta0s.ndim != 2 or theta0s.shape[1] != want or len(theta0s) == 0:
        raise ValueError(f"starts must be an array (num_starts, {want}) ({', '.join(law.free_names)}{', log sigma' if num_noise else ''}); "
                         f"got shape {theta0s.shape}")
    if not np.all(np.isfinite(theta0s)):
        raise ValueError("starts must be finite")
    return theta0s


def hyper_params(dtype, *, delta=1e-3, shape=4.0, noise_scale=NOISE_SCALE, gtol=None, ftol=None,
                 noise_prior: str = "half_normal") -> dict:
    """The objective's and stopping rule's constants as arrays of ``dtype`` (defaults per dtype)."""
    check_noise_prior(noise_prior)
    g_def, f_def = default_tols(dtype)
    return {
        "delta": jnp.asarray(delta, dtype),
        "shape": jnp.asarray(shape, dtype),
        "noise_scale": jnp.asarray(noise_scale, dtype),
        "small_noise": jnp.asarray(1.0 if noise_prior == "small_design" else 0.0, dtype),
        "gtol": jnp.asarray(g_def if gtol is None else gtol, dtype),
        "ftol": jnp.asarray(f_def if ftol is None else ftol, dtype),
    }


def fit_point(
    law: str | Law,
    runs: Runs | Any,
    *,
    objective: str = "huber_loss",
    prior: bool = False,
    delta: float = 1e-3,
    nu: float | None = None, k: float | None = None, noise_scale: float = NOISE_SCALE, priors: Any = None, noise_prior: str = "half_normal",
    starts: Any = None,
    strategy: str = "auto",
    num_polish: int | None = 32,
    chunk: int | None = None,
    max_steps: int = 1000,
    gtol: float | None = None, ftol: float | None = None,
    dtype=None,
    jit: bool = True,
) -> PointFit:
    """Fit ``law`` to ``runs`` with multistart L-BFGS and return the best start as a :class:`PointFit`.

    objective:  ``"huber_loss"`` (default: the Hoffmann/Epoch protocol, with ``delta``) or a likelihood
                (``"student_t"`` with ``nu``, ``"gaussian"``, ``"huber_density"`` with ``k``); ``prior=True`` makes a
                likelihood fit the MAP of the posterior's own model (the law's priors, or ``priors``, and
                sigma ~ HalfNormal(``noise_scale``), or the small design's LogNormal with ``noise_prior="small_design"``).

    strategy:   where L-BFGS starts from. ``"varpro"``: variable projection (:mod:`bayes_scaling.varpro`): the
                coefficients the law is linear in (Chinchilla: E, A, B) solved in closed form on a 256-point
                grid of the others, L-BFGS from the best ``VARPRO_POLISH`` = 4 points; ``"grid"``: the law's
                start grid (Chinchilla: the 4500-start grid of Hoffmann/Epoch, for exact reproduction of their
                protocol) or ``starts``; ``"auto"`` (default): varpro for the Huber objective of laws that
                declare linear coefficients when neither ``starts`` nor ``num_polish=None`` (every start) is
                given, in float64, else grid (in float32, L-BFGS stalls on the flat Huber objective from the
                projection's 4 points: 1.1127e-3 on the Chinchilla runs; the grid's 32 starts reach 1.0183e-3). Both reach the same
                minimum on the bundled and Porian runs (tests/test_varpro.py). Likelihood and MAP fits keep
                the grid by default: with priors, the best points of the projection are not always in the
                MAP's basin (seen where the law does not hold the data: a power law in N across budgets).
    starts:     ``None`` for the law's grid, or an
                array ``(num_starts, num_free)`` in fit space (log for scale parameters; for likelihood
                objectives a last column log sigma may be given, else log 0.05 is used).
    num_polish: grid strategy. The objective is evaluated at every start (one vmapped pass), and L-BFGS
                runs to convergence from the ``num_polish`` starts with the lowest objectives (default 32;
                on the 240 Chinchilla runs this reaches the same minimum as running all 4500 starts, see
                tests/test_fitting.py). ``None`` runs L-BFGS from every start.
    chunk:      how many starts L-BFGS runs at once (vmapped); default 1 on CPU (starts run one after
                another, each until it converges) and all of them on GPU/TPU.
    dtype:      float64 if x64 is enabled, else float32, unless given. ``jit=False`` runs un-jitted (for tests).
    gtol:       converged when max|grad| <= gtol * max(|f|, 1e-3) (scale-free); ftol: when the objective's
                change in a step is <= ftol * max(|f|, 1e-3). Defaults depend on dtype (float64: 1e-9,
                1e-12; float32: 1e-4, 1e-6).
    """
    law = get_law(law).with_priors(priors)
    runs = as_runs(runs)
    kind = objective
    shape = fit_shape(kind, nu, k)
    num_noise = 0 if kind == "huber_loss" else 1
    runs.inputs(law.inputs)  # the table must hold every input of the law
    kind_of_fit = fit_kind(kind, prior)
    early = checks.check_run_count(len(runs), law, kind_of_fit, runs.source)
    if dtype is None:
        dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    X = {k: jnp.asarray(v, dtype) for k, v in runs.inputs(law.inputs).items()}
    logy = jnp.asarray(np.log(runs.loss), dtype)
    mask = jnp.asarray(np.ones(logy.shape), dtype)
    hyper = hyper_params(dtype, delta=delta, shape=shape, noise_scale=noise_scale, gtol=gtol, ftol=ftol, noise_prior=noise_prior)
    notes = list(runs.notes)
    if use_varpro(law, strategy, starts, kind, num_polish, dtype):
        grid = varpro.nonlinear_grid(law)
        num_starts, n_pol = len(grid), min(VARPRO_POLISH, len(grid))
        kwargs = dict(law=law, kind=kind, prior=prior, num_polish=n_pol, max_steps=int(max_steps),
                      chunk=int(min(chunk or _default_chunk(n_pol), n_pol)))
        with jax.disable_jit(not jit):
            out = (compile_cache.run("varpro", "", _varpro, jnp.asarray(grid, dtype), X, logy, mask, hyper, **kwargs) if jit
                   else varpro_impl(jnp.asarray(grid, dtype), X, logy, mask, hyper, **kwargs))
        start_strategy = varpro.describe(law, num_starts, n_pol)
        notes.append(start_strategy)
    else:
        start_strategy = ""
        out, num_starts = _grid_fit(law, kind, prior, starts, num_noise, X, logy, mask, hyper, num_polish, chunk,
                                    max_steps, jit, notes)
    fit = dataclasses.replace(best_fit(law, runs, kind, prior, delta, shape, out, num_starts, tuple(notes)), start_strategy=start_strategy)
    return with_checks(fit, runs, kind_of_fit, early, explained_of(law, fit.params, X, logy, jit=jit))


def fit_shape(kind: str, nu=None, k=None) -> float:
    """The objective's shape constant: the likelihood's nu or k (:func:`~bayes_scaling.noise.shape_of`; a point fit
    cannot learn nu), 0 for the Huber loss (which takes ``delta``); refuses unknown objectives in words."""
    check_objective(kind)
    if kind == "huber_loss":
        if nu is not None or k is not None:
            raise ValueError("the Huber loss takes delta; nu and k are likelihood shapes")
        return 0.0
    shape = shape_of(kind, nu, k)
    if shape == "learn":
        raise ValueError("a point fit takes nu as a number; 'learn' samples it (sample_posterior)")
    return shape


def use_varpro(law, strategy: str, starts, kind: str, num_polish, dtype) -> bool:
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if strategy == "varpro":
        if starts is not None:
            raise ValueError("strategy 'varpro' makes its own starts; give starts with strategy 'grid'")
        if not varpro.supports(law):
            raise ValueError(f"law {law.name!r} declares no free coefficients it is linear in (Law.linear); use strategy 'grid'")
        return True
    return (strategy == "auto" and kind == "huber_loss" and starts is None and num_polish is not None
            and jnp.dtype(dtype) == jnp.float64 and varpro.supports(law))


def _grid_fit(law, kind, prior, starts, num_noise, X, logy, mask, hyper, num_polish, chunk, max_steps, jit, notes):
    """The grid strategy: screen the starts by objective, L-BFGS from the best ``num_polish`` (all if None)."""
    dtype = logy.dtype
    theta0s = start_array(law, starts, num_noise)
    num_starts = len(theta0s)
    if num_polish is not None and num_starts > num_polish:
        with jax.disable_jit(not jit):
            f0 = np.asarray(compile_cache.run("screen", "", _screen, jnp.asarray(theta0s, dtype), X, logy, mask, hyper,
                                              law=law, kind=kind, prior=prior, batch=screen_batch(num_starts, len(logy))))
        keep = np.argsort(f0, kind="stable")[: int(num_polish)]
        notes.append(f"screened {num_starts} starts by objective; L-BFGS from the best {len(keep)}")
        theta0s = theta0s[keep]
    theta0s = jnp.asarray(theta0s, dtype)
    n = len(theta0s)
    kwargs = dict(law=law, kind=kind, prior=prior, max_steps=int(max_steps), chunk=int(min(chunk or _default_chunk(n), n)))
    if jit:
        return compile_cache.run("multistart", "", _multistart, theta0s, X, logy, mask, hyper, **kwargs), num_starts
    with jax.disable_jit():
        return multistart_impl(theta0s, X, logy, mask, hyper, **kwargs), num_starts


def fit_kind(objective: str, prior: bool) -> str:
    """The kind of fit (:func:`~bayes_scaling.checks.min_runs`): least squares (Huber), likelihood or MAP."""
    return "least_squares" if objective == "huber_loss" else ("map" if prior else "likelihood")


def _log_pred_impl(params, X, *, law):
    return law.log_loss_runs(params, X)


_log_pred = jax.jit(_log_pred_impl, static_argnames=("law",))


def explained_of(law, params, X, logy, *, jit: bool = True) -> float:
    """The share of the variance of log loss the fitted law accounts for (:func:`~bayes_scaling.checks.explained_share`)."""
    dtype = jnp.result_type(logy)
    p = {k: jnp.asarray(v, dtype) for k, v in params.items()}
    with jax.disable_jit(not jit):
        pred = compile_cache.run("log_pred", "", _log_pred, p, X, law=law)
    return checks.explained_share(np.asarray(logy), np.asarray(pred))


def with_checks(fit: PointFit, runs, kind: str, early=(), explained: float | None = None) -> PointFit:
    """``fit`` with its ``warnings``: run count, data, the fitted parameters (see :mod:`bayes_scaling.checks`);
    ``kind`` as :func:`fit_kind` gives it."""
    w = list(early) + checks.data_warnings(runs, fit.law, kind=kind)
    w += checks.fit_warnings(fit.law, fit.params, explained=explained)
    w += [n for n in fit.notes if "not identified" in n]
    return dataclasses.replace(fit, warnings=tuple(dict.fromkeys(w)))


def best_fit(law, runs, kind, prior, delta, shape, out, num_starts, notes) -> PointFit:
    theta, f, gnorm, steps, status = (np.asarray(a) for a in out)
    ok = np.isfinite(f) & (status != 3)
    conv = (status == 0) | (status == 1)
    if ok.any():
        i = int(np.flatnonzero(ok)[np.argmin(f[ok])])
    else:
        i = 0
    k = law.num_free
    params = {name: float(v) for name, v in law.params_from_theta(np.asarray(theta[i, :k])).items()}
    noise = {}
    if kind != "huber_loss":
        noise["sigma"] = float(np.exp(theta[i, k]))
        noise.update({name: float(v) for name, v in shape_settings(kind, shape).items()})
    method = (f"Huber loss (delta={delta:g}) on log loss, summed" if kind == "huber_loss" else
              f"{'MAP' if prior else 'maximum likelihood'}, {NOISE[kind].describe(shape)} noise on log loss")
    code = int(status[i])
    for p in law.free_params:
        if p.log and params[p.name] < 1e-6 * max(1.0, float(np.max(runs.loss))):
            notes = tuple(notes) + (f"{p.name} ran to ~0 ({params[p.name]:.2g}): not identified by these runs "
                                    f"(its value is arbitrary below this; fix it or add runs that constrain it)",)
    return PointFit(
        law=law,
        params=params,
        objective=float(f[i]),
        converged=bool(ok[i] and conv[i]),
        status=STATUS.get(code, f"unknown status {code}"),
        num_steps=int(steps[i]),
        grad_norm=float(gnorm[i]),
        method=method + "; L-BFGS (optax), multistart",
        num_runs=len(runs),
        num_starts=int(num_starts),
        num_converged_starts=int((ok & conv).sum()),
        num_polished=int(len(f)),
        noise=noise,
        start_objectives=f,
        theta=theta[i],
        source=runs.source,
        notes=notes,
    )

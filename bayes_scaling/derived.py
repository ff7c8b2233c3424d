"""Quantities a user decides with, as scalar functions of one parameter set.

Every function here takes a :class:`~bayes_scaling.laws.Law`, one parameter dict (natural values keyed by
the paper's symbols, as in ``PointFit.params`` or one posterior draw) and scalars, and is jit- and
vmap-safe, so that the same code gives point forecasts and, vmapped over draws, credible intervals.

Conventions (METHODS §1.2, §5): training compute C = 6 N D FLOPs, N total parameters, D training tokens.

* :func:`compute_optimal`   (N_opt, D_opt) minimising L(N, D) subject to 6 N D = C.
* :func:`tokens_per_param`  D_opt / N_opt.
* :func:`loss_at_optimum`   L*(C) = L(N_opt(C), D_opt(C)) (for a law of C alone: L(C)).
* :func:`compute_for_loss`  the smallest C with L*(C) <= target (``inf`` if the target is at or below
  the law's floor).
* :func:`loss_of_plan`      the predicted loss of a planned (N, D).
* :func:`forecast_table`    all of the above over a list of budgets, as a pandas DataFrame.

``method="auto"`` uses the law's closed form where it declares one (Chinchilla) and a numeric solve
otherwise; ``"numeric"`` forces the solve (tests hold it against the closed form). The numeric optimum
scans log(D/N) over [-30, 30] on a grid of 241 points, then refines the best bracket by golden section
(80 steps, bracket shrinks by 0.618^80 ~ 1e-17): it finds the global minimum of any L(N, C/6N) whose
minima are more than 0.25 apart in log(D/N), which covers every built-in law.

>>> from bayes_scaling import get_law
>>> law = get_law("chinchilla")
>>> p = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.34781, "beta": 0.36585}
>>> N, D = compute_optimal(law, p, 5.76e23)
>>> f"{float(N):.3g} {float(D / N):.3g}"
'7.24e+10 18.3'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import lifetime
from .defaults import FLOPS_PER_PARAM_TOKEN
from .laws import Law, get_law
from .optimize import grid_golden_min

__all__ = [
    "compute_optimal",
    "tokens_per_param",
    "loss_at_optimum",
    "compute_for_loss",
    "loss_of_plan",
    "forecast_table",
    "over_draws",
    "check_budgets",
    "check_params",
    "FLOPS_PER_PARAM_TOKEN",
]

_T_MIN, _T_MAX, _T_GRID = -30.0, 30.0, 241
_GOLDEN_STEPS = 80
_LOGC_LO, _LOGC_HI, _BISECT_STEPS = 0.0, math.log(1e60), 200


def _as_law(law) -> Law:
    return get_law(law)


def _params(params) -> Mapping[str, Any]:
    return getattr(params, "params", params)  # accept a PointFit too


def _check_extra(law: Law, extra: Mapping[str, Any] | None, own: tuple[str, ...]) -> dict[str, Any]:
    extra = dict(extra or {})
    missing = [k for k in law.inputs if k not in own and k not in extra]
    if missing:
        raise ValueError(
            f"law {law.name!r} needs input(s) {', '.join(missing)} besides {', '.join(own)}; "
            f"pass them as inputs={{{', '.join(repr(m) + ': ...' for m in missing)}}}"
        )
    return extra


def _is_ND(law: Law) -> bool:
    return "N" in law.inputs and "D" in law.inputs


def _is_C(law: Law) -> bool:
    return law.inputs == ("C",)


def _log_loss_on_budget(law, p, logc6, t, extra):
    # N D = C/6 and log(D/N) = t  =>  log N = (log(C/6) - t)/2, log D = (log(C/6) + t)/2
    x = dict(extra)
    x["N"] = jnp.exp((logc6 - t) / 2)
    x["D"] = jnp.exp((logc6 + t) / 2)
    return law.log_loss(p, x)


def _numeric_optimum(law, p, C, extra):
    logc6 = jnp.log(C) - jnp.log(FLOPS_PER_PARAM_TOKEN)
    lo, hi = jnp.asarray(_T_MIN, logc6.dtype), jnp.asarray(_T_MAX, logc6.dtype)
    t = grid_golden_min(lambda t: _log_loss_on_budget(law, p, logc6, t, extra), lo, hi, grid=_T_GRID, steps=_GOLDEN_STEPS)
    return jnp.exp((logc6 - t) / 2), jnp.exp((logc6 + t) / 2)


def compute_optimal(law, params, C, *, inputs: Mapping[str, Any] | None = None, method: str = "auto"):
    """Compute-optimal ``(N_opt, D_opt)`` at training compute ``C`` (FLOPs, C = 6ND).

    inputs:  values of the law's other inputs, held fixed (e.g. ``{"U": 25e9}`` unique tokens for the
             data-constrained law).
    method:  ``"auto"`` (closed form if the law declares one), ``"closed"`` or ``"numeric"``.
    """
    law = _as_law(law)
    p = _params(params)
    if not _is_ND(law):
        raise ValueError(f"law {law.name!r} has inputs {law.inputs}; a compute-optimal N and D needs a law of N and D")
    extra = _check_extra(law, inputs, ("N", "D"))
    closed = law.optimum is not None and not extra
    if method == "closed" and not closed:
        raise ValueError(f"law {law.name!r} has no closed-form optimum{' with extra inputs' if extra else ''}; use method='numeric'")
    if method not in ("auto", "closed", "numeric"):
        raise ValueError(f"method must be 'auto', 'closed' or 'numeric', not {method!r}")
    C = jnp.asarray(C, dtype=jnp.result_type(float, *jax.tree_util.tree_leaves(dict(p))))
    if closed and method != "numeric":
        return law.optimum(p, C)
    return _numeric_optimum(law, p, C, extra)


def tokens_per_param(law, params, C, *, inputs=None, method: str = "auto"):
    """Compute-optimal tokens per parameter D_opt/N_opt at compute ``C``."""
    N, D = compute_optimal(law, params, C, inputs=inputs, method=method)
    return D / N


def loss_at_optimum(law, params, C, *, inputs=None, method: str = "auto"):
    """L*(C): the predicted loss of the compute-optimal model at ``C`` (a law of C alone: L(C))."""
    law = _as_law(law)
    p = _params(params)
    if _is_C(law):
        return law.predict(p, {"C": C})
    N, D = compute_optimal(law, p, C, inputs=inputs, method=method)
    x = dict(_check_extra(law, inputs, ("N", "D")), N=N, D=D)
    return jnp.exp(law.log_loss(p, x))


def compute_for_loss(law, params, loss, *, inputs=None, method: str = "auto"):
    """The compute C at which the compute-optimal loss L*(C) equals ``loss``.

    ``inf`` when ``loss`` is at or below what any compute reaches (the floor E for Chinchilla). The
    numeric path bisects log C on [0, log 1e60] (200 steps); a target above L*(1 FLOP) returns 1.
    """
    law = _as_law(law)
    p = _params(params)
    if method not in ("auto", "closed", "numeric"):
        raise ValueError(f"method must be 'auto', 'closed' or 'numeric', not {method!r}")
    extra = dict(inputs or {})
    closed = law.compute_for_loss is not None and not extra
    if method == "closed" and not closed:
        raise ValueError(f"law {law.name!r} has no closed-form compute for a target loss; use method='numeric'")
    loss = jnp.asarray(loss, dtype=jnp.result_type(float, *jax.tree_util.tree_leaves(dict(p))))
    if closed and method != "numeric":
        return law.compute_for_loss(p, loss)
    sub = "numeric" if method == "numeric" else "auto"
    Lstar = lambda logc: loss_at_optimum(law, p, jnp.exp(logc), inputs=extra or None, method=sub)
    lo = jnp.asarray(_LOGC_LO, loss.dtype)
    hi = jnp.asarray(_LOGC_HI, loss.dtype)
    reachable = Lstar(hi) < loss

    def body(_, c):
        a, b = c
        m = (a + b) / 2
        above = Lstar(m) > loss  # not yet reached: need more compute
        return jnp.where(above, m, a), jnp.where(above, b, m)

    lo, hi = jax.lax.fori_loop(0, _BISECT_STEPS, body, (lo, hi))
    return jnp.where(reachable, jnp.exp(hi), jnp.inf)


def loss_of_plan(law, params, N, D, *, inputs=None):
    """Predicted loss of a planned model: ``N`` parameters trained on ``D`` tokens (arrays broadcast)."""
    law = _as_law(law)
    if not _is_ND(law):
        raise ValueError(f"law {law.name!r} has inputs {law.inputs}; a plan (N, D) needs a law of N and D")
    extra = _check_extra(law, inputs, ("N", "D"))
    return law.predict(_params(params), dict(extra, N=N, D=D))


def forecast_table(law, params, budgets, *, inputs=None, method: str = "auto"):
    """A pandas DataFrame, one row per budget: ``budget`` (FLOPs), ``N_opt``, ``D_opt``, ``D/N``, ``L*``.

    For a law of C alone, only ``budget`` and ``L*``.
    """
    import pandas as pd

    law = _as_law(law)
    p = check_params(law, _params(params))
    budgets = check_budgets(budgets)
    if method not in ("auto", "closed", "numeric"):
        raise ValueError(f"method must be 'auto', 'closed' or 'numeric', not {method!r}")
    out = over_draws(law, "frontier", {k: [p[k]] for k in law.param_names}, budgets, inputs=inputs, method=method)
    table = {"budget": budgets}
    if "N_opt" in out:
        table.update({"N_opt": out["N_opt"][0], "D_opt": out["D_opt"][0], "D/N": out["D_opt"][0] / out["N_opt"][0]})
    table["L*"] = out["L*"][0]
    return pd.DataFrame(table)


def check_params(law: Law, params) -> dict[str, float]:
    """One parameter set of ``law`` as floats, or a ``ValueError`` naming the parameter that is missing, not a
    number, not finite, or not positive where the law needs it positive."""
    if not isinstance(params, Mapping):
        raise ValueError(f"law {law.name!r}: parameters must be a dict {{name: value}} of {', '.join(law.param_names)}, "
                         f"not {type(params).__name__}")
    missing = [k for k in law.param_names if k not in params]
    if missing:
        raise ValueError(f"law {law.name!r}: parameter(s) {', '.join(missing)} missing; give every one of "
                         f"{', '.join(law.param_names)}")
    out = {}
    for prm in law.params:
        try:
            v = float(np.asarray(params[prm.name]))
        except (TypeError, ValueError):
            raise ValueError(f"law {law.name!r}: parameter {prm.name} = {params[prm.name]!r} is not a number") from None
        if not np.isfinite(v) or (prm.log and v <= 0):
            raise ValueError(f"law {law.name!r}: parameter {prm.name} = {v:g} must be {'positive and ' if prm.log else ''}finite")
        out[prm.name] = v
    return out


def check_budgets(budgets) -> np.ndarray:
    """Budgets as a 1-D float array, or a ``ValueError`` naming the first one that is not a positive, finite
    number of FLOPs."""
    try:
        b = np.asarray(budgets, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"budgets must be positive, finite numbers of FLOPs; got {budgets!r}") from None
    if b.size == 0:
        raise ValueError("budgets must be positive, finite numbers of FLOPs; got none")
    bad = ~(np.isfinite(b) & (b > 0))
    if bad.any():
        raise ValueError(f"budgets must be positive, finite numbers of FLOPs; {b[np.argmax(bad)]:g} is not")
    return b


# ---- the same quantities over many parameter draws and many points, compiled once per law and shape ------------


def _frontier(law, p, C, extra, method):
    if _is_C(law):
        return {"L*": law.predict(p, dict(extra, C=C))}
    N, D = compute_optimal(law, p, C, inputs=extra or None, method=method)
    return {"N_opt": N, "D_opt": D, "L*": jnp.exp(law.log_loss(p, dict(extra, N=N, D=D)))}


def _chinchilla_for_loss(law, p, loss, extra, method):
    C = compute_for_loss(law, p, loss, inputs=extra or None, method=method)
    return compute_optimal(law, p, C, inputs=extra or None, method=method)


def _inference_optimal(law, p, x, extra, method):
    """x = (target loss, inference tokens): the lifetime-optimal model and the compute-optimal one at that loss."""
    N, D = lifetime.inference_optimal(law, p, x[0], x[1], extra)
    Nc, Dc = _chinchilla_for_loss(law, p, x[0], extra, method)
    return {"N": N, "D": D, "N_chin": Nc, "D_chin": Dc, "loss": x[0] + 0 * N,
            "halving_demand": lifetime.halving_demand(law, p, x[0], Nc, extra)}


def _inference_optimal_at_budget(law, p, x, extra, method):
    """x = (training FLOPs, inference tokens): as :func:`_inference_optimal` for the loss the compute-optimal model
    reaches at that compute (each draw its own)."""
    loss = loss_at_optimum(law, p, x[0], inputs=extra or None, method=method)
    return _inference_optimal(law, p, jnp.stack([loss, x[1]]), extra, method)


def _lifetime_optimal(law, p, x, extra, method):
    """x = (lifetime FLOPs, inference tokens): the model of least loss for that lifetime compute."""
    N, D = lifetime.lifetime_optimal(law, p, x[0], x[1], extra)
    return {"N": N, "D": D, "loss": jnp.exp(law.log_loss(p, dict(extra, N=N, D=D)))}


#: quantity name -> f(law, one parameter dict, one point x, extra inputs); a point is a budget C, a target loss,
#: a plan (N, D) as a length-2 vector, or (target loss | lifetime FLOPs, inference tokens) for :mod:`.lifetime`
QUANTITIES = {
    "frontier": _frontier,
    "compute_for_loss": lambda law, p, loss, extra, method: compute_for_loss(law, p, loss, inputs=extra or None, method=method),
    "loss_of_plan": lambda law, p, nd, extra, method: loss_of_plan(law, p, nd[0], nd[1], inputs=extra or None),
    "inference_optimal": _inference_optimal,
    "inference_optimal_at_budget": _inference_optimal_at_budget,
    "lifetime_optimal": _lifetime_optimal,
}


_TRACES = {"count": 0}


def trace_count() -> int:
    """How many times the draws program has been traced (compiled); tests hold forecasts to one per shape."""
    return _TRACES["count"]


def _over_draws_impl(params, points, extra, *, law, quantity, method):
    _TRACES["count"] += 1
    f = QUANTITIES[quantity]
    return jax.vmap(lambda p: jax.vmap(lambda x: f(law, p, x, extra, method))(points))(params)


_over_draws = jax.jit(_over_draws_impl, static_argnames=("law", "quantity", "method"))


def over_draws(law, quantity: str, params: Mapping[str, Any], points, *, inputs: Mapping[str, float] | None = None,
               method: str = "auto"):
    """``quantity`` (a key of :data:`QUANTITIES`) at every parameter draw and every point: NumPy arrays shaped
    ``(draw, point)`` (a dict of them for ``"frontier"``: ``N_opt``, ``D_opt``, ``L*``; ``L*`` alone for a law of
    C). ``params``: ``{name: (draw,) array}`` (every parameter of the law); ``points``: budgets, target losses,
    or plans ``(point, 2)`` of (N, D); ``method`` as in :func:`compute_optimal`. One compiled program per law, quantity and shape:
    draws, points and the
    other inputs are arguments, never closed over, so a new budget or a new posterior compiles nothing."""
    from . import compile_cache

    law = _as_law(law)
    if quantity not in QUANTITIES:
        raise ValueError(f"unknown quantity {quantity!r}; one of {', '.join(QUANTITIES)}")
    if quantity != "compute_for_loss" and not (_is_ND(law) or (quantity == "frontier" and _is_C(law))):
        raise ValueError(f"law {law.name!r} has inputs {law.inputs}; {quantity} needs a law of N and D"
                         + (" (or of C alone)" if quantity == "frontier" else ""))
    extra = _check_extra(law, inputs, ("C",) if _is_C(law) else ("N", "D")) if quantity != "compute_for_loss" else dict(inputs or {})
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    P = {k: jnp.asarray(np.reshape(np.asarray(params[k], float), -1), dtype) for k in law.param_names}
    X = jnp.asarray(np.asarray(points, float), dtype)
    E = {k: jnp.asarray(float(v), dtype) for k, v in extra.items()}
    out = compile_cache.run("over_draws", "", _over_draws, P, X, E, law=law, quantity=quantity, method=method)
    return jax.tree_util.tree_map(np.asarray, out)

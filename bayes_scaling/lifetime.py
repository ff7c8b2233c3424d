"""Training plus inference: the model that reaches a loss at the least lifetime compute (Sardana et al. 2023).

A model of N parameters trained on D tokens and then served for D_inf tokens costs

    lifetime FLOPs = 6 N D + 2 N D_inf          (METHODS §1.2 and §5: training 6ND, inference ~2N per token)

Chinchilla's compute-optimal model minimises the first term alone; once inference demand is large, a smaller model
trained on more tokens reaches the same loss for less in all. Every function here takes one parameter dict (a point
fit or one posterior draw) and scalars and is jit- and vmap-safe, so :func:`~bayes_scaling.derived.over_draws` pushes
it through the posterior's draws for intervals.

* :func:`tokens_for_loss`     the D at which a model of N parameters reaches ``loss`` (inf if it never does).
* :func:`inference_optimal`   min over N of 6 N D(N) + 2 N D_inf with L(N, D(N)) = loss: a 1-D solve in log N
                              (a grid of 121 points over N in [1, 1e16], then golden section in the best bracket).
* :func:`lifetime_optimal`    the least loss for a lifetime budget T = 6 N D + 2 N D_inf: a 1-D solve in log N.
* :func:`halving_demand`      the inference demand at which the optimal N is half Chinchilla's: from the first-order
                              condition of the minimum, D_inf = 3 D (g_N / g_D - 1) with g_X = d log L / d log X at
                              (N_chin / 2, D(N_chin / 2)) (differentiate 6 N D(N) + 2 N D_inf with D'(N) = -L_N / L_D);
                              zero at Chinchilla's optimum, where g_N = g_D.

With D_inf = 0 the inference-aware optimum is the compute-optimal model (tests hold it to
:func:`~bayes_scaling.derived.compute_optimal` and to a brute-force grid over (N, D)).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from .defaults import FLOPS_PER_PARAM_TOKEN
from .optimize import grid_golden_min

__all__ = ["tokens_for_loss", "inference_optimal", "lifetime_optimal", "halving_demand", "INFERENCE_FLOPS_PER_PARAM_TOKEN"]

#: inference compute per parameter per token served (a forward pass: METHODS §5)
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0
_LOGD_HI = math.log(1e40)
_LOGN_LO, _LOGN_HI = 0.0, math.log(1e16)
_GRID, _BISECT, _GOLDEN = 121, 64, 60


def _log_loss(law, p, N, D, extra):
    return law.log_loss(p, dict(extra, N=N, D=D))


def tokens_for_loss(law, p, N, loss, extra=None):
    """The tokens D at which ``N`` parameters reach ``loss`` (L falls with D; bisection on log D in [0, log 1e40]);
    ``inf`` where even 1e40 tokens do not."""
    extra = dict(extra or {})
    target = jnp.log(loss)
    f = lambda t: _log_loss(law, p, N, jnp.exp(t), extra)
    lo = jnp.zeros_like(target)
    hi = jnp.full_like(target, _LOGD_HI)

    def body(_, c):
        a, b = c
        m = (a + b) / 2
        above = f(m) > target
        return jnp.where(above, m, a), jnp.where(above, b, m)

    lo, hi = jax.lax.fori_loop(0, _BISECT, body, (lo, hi))
    return jnp.where(f(jnp.asarray(_LOGD_HI, target.dtype)) <= target, jnp.exp(hi), jnp.inf)


def _minimise(f, lo, hi):
    return grid_golden_min(f, lo, hi, grid=_GRID, steps=_GOLDEN)


def inference_optimal(law, p, loss, inference_tokens, extra=None):
    """``(N, D)`` reaching ``loss`` at the least 6 N D + 2 N ``inference_tokens`` (inf where no N reaches it)."""
    extra = dict(extra or {})
    loss = jnp.asarray(loss)
    d_inf = jnp.asarray(inference_tokens, loss.dtype)

    def log_total(u):
        N = jnp.exp(u)
        D = tokens_for_loss(law, p, N, loss, extra)
        return jnp.log(N) + jnp.log(FLOPS_PER_PARAM_TOKEN * D + INFERENCE_FLOPS_PER_PARAM_TOKEN * d_inf)

    u = _minimise(log_total, jnp.asarray(_LOGN_LO, loss.dtype), jnp.asarray(_LOGN_HI, loss.dtype))
    N = jnp.exp(u)
    D = tokens_for_loss(law, p, N, loss, extra)
    return jnp.where(jnp.isfinite(D), N, jnp.inf), D


def lifetime_optimal(law, p, total, inference_tokens, extra=None):
    """``(N, D)`` with 6 N D + 2 N ``inference_tokens`` = ``total`` and the least loss (N >= 1, D >= 1)."""
    extra = dict(extra or {})
    total = jnp.asarray(total)
    d_inf = jnp.asarray(inference_tokens, total.dtype)
    tokens = lambda N: (total / N - INFERENCE_FLOPS_PER_PARAM_TOKEN * d_inf) / FLOPS_PER_PARAM_TOKEN
    hi = jnp.log(total / (FLOPS_PER_PARAM_TOKEN + INFERENCE_FLOPS_PER_PARAM_TOKEN * d_inf))
    u = _minimise(lambda u: _log_loss(law, p, jnp.exp(u), tokens(jnp.exp(u)), extra), jnp.zeros_like(hi), hi)
    return jnp.exp(u), tokens(jnp.exp(u))


def halving_demand(law, p, loss, N_chin, extra=None):
    """The inference tokens at which the loss-``loss`` optimum has half of ``N_chin`` (the compute-optimal model
    reaching ``loss``) parameters; from the first-order condition (see the module's text)."""
    extra = dict(extra or {})
    N = jnp.asarray(N_chin) / 2
    D = tokens_for_loss(law, p, N, loss, extra)
    g = jax.grad(lambda lnd: _log_loss(law, p, jnp.exp(lnd[0]), jnp.exp(lnd[1]), extra))(jnp.stack([jnp.log(N), jnp.log(D)]))
    return FLOPS_PER_PARAM_TOKEN / INFERENCE_FLOPS_PER_PARAM_TOKEN * D * (g[0] / g[1] - 1)

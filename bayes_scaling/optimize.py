"""The optimiser every point fit and MAP polish uses: L-BFGS (optax, zoom line search) from a start until the gradient
is small relative to the objective, it stops decreasing, or ``max_steps``; then a few safeguarded Newton steps to
the stationary point itself. :func:`lbfgs_one` runs one start, :func:`solve_starts` many (vmapped, or one after
another on CPU where a vmapped ``while_loop`` would run every start as long as the slowest).

Each run returns ``(theta, f, max|grad|, steps, status)``; status 0: gradient below tolerance, 1: objective
stopped decreasing, 2: reached ``max_steps``, 3: objective or gradient not finite.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree_utils as otu

__all__ = ["lbfgs_one", "solve_starts", "default_tols", "grid_golden_min"]

_INV_PHI = 0.6180339887498949  # (sqrt 5 - 1) / 2


def grid_golden_min(f, lo, hi, *, grid: int, steps: int):
    """argmin of a scalar ``f`` over [lo, hi] (jit- and vmap-safe): the best of ``grid`` evenly spaced points (values
    that are not finite count as +inf), then ``steps`` of golden section in that point's bracket (it shrinks by
    0.618 per step). Finds the global minimum of any ``f`` whose minima lie more than two grid steps apart."""
    us = jnp.linspace(0.0, 1.0, grid, dtype=jnp.result_type(lo)) * (hi - lo) + lo
    vals = jax.vmap(f)(us)
    i = jnp.argmin(jnp.where(jnp.isfinite(vals), vals, jnp.inf))
    step = us[1] - us[0]
    a, b = jnp.maximum(us[i] - step, lo), jnp.minimum(us[i] + step, hi)

    def body(_, c):
        a, b = c
        x1 = b - _INV_PHI * (b - a)
        x2 = a + _INV_PHI * (b - a)
        left = f(x1) <= f(x2)
        return jnp.where(left, a, x1), jnp.where(left, x2, b)

    a, b = jax.lax.fori_loop(0, steps, body, (a, b))
    return (a + b) / 2


def default_tols(dtype):
    if jnp.dtype(dtype) == jnp.float64:
        return 1e-9, 1e-12
    return 1e-4, 1e-6


def lbfgs_one(fun, theta0, args, max_steps, gtol, ftol, newton_first: int = 0):
    """Minimise ``fun(theta, *args)`` from ``theta0``; returns (theta, f, gnorm, steps, status).
    ``newton_first`` > 0 takes that many safeguarded Newton steps before L-BFGS (for starts already near the
    minimum, such as a similar family's optimum: a few Newton steps replace hundreds of L-BFGS steps)."""
    fn = lambda th: fun(th, *args)
    if newton_first:
        theta0 = _newton_polish(fn, theta0, fn(theta0), num_steps=newton_first)[0]
    opt = optax.lbfgs(linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=40))
    vg = optax.value_and_grad_from_state(fn)
    f0, g0 = jax.value_and_grad(fn)(theta0)
    dtype = theta0.dtype

    def gscale(f):  # scale-free stopping: gradient relative to the objective's magnitude
        return jnp.maximum(jnp.abs(f), jnp.asarray(1e-3, dtype))

    def cond(c):
        return c[5] < 0

    def body(c):
        theta, state, k, f_prev, _, _ = c
        value, grad = vg(theta, state=state)
        updates, state = opt.update(grad, state, theta, value=value, grad=grad, value_fn=fn)
        theta = optax.apply_updates(theta, updates)
        f, g = otu.tree_get(state, "value"), otu.tree_get(state, "grad")
        gnorm = jnp.max(jnp.abs(g))
        k = k + 1
        finite = jnp.isfinite(f) & jnp.all(jnp.isfinite(g)) & jnp.all(jnp.isfinite(theta))
        small_grad = gnorm <= gtol * gscale(f)
        stalled = jnp.abs(f_prev - f) <= ftol * gscale(f)
        status = jnp.where(
            ~finite, 3, jnp.where(small_grad, 0, jnp.where(stalled, 1, jnp.where(k >= max_steps, 2, -1)))
        )
        return theta, state, k, f, gnorm, status

    state = opt.init(theta0)
    g0n = jnp.max(jnp.abs(g0))
    status0 = jnp.where(jnp.isfinite(f0) & jnp.all(jnp.isfinite(g0)), jnp.where(g0n <= gtol * gscale(f0), 0, -1), 3)
    init = (theta0, state, jnp.asarray(0), f0, g0n, status0)
    theta, state, k, f, gnorm, status = jax.lax.while_loop(cond, body, init)
    # L-BFGS stops anywhere inside the tolerance; a few safeguarded Newton steps then move every converged
    # fit to the stationary point itself, so that fits of the same data agree to ~1e-9 in the parameters
    # whatever the summation order (batch padding) or start, not just in the objective
    polished, f_p, g_p = _newton_polish(fn, theta, f)
    use = (status == 0) | (status == 1)
    theta = jnp.where(use, polished, theta)
    f = jnp.where(use, f_p, f)
    gnorm = jnp.where(use, g_p, gnorm)
    status = jnp.where(use & (gnorm <= gtol * gscale(f)), 0, status)
    return theta, f, gnorm, k, status


def _newton_polish(fn, theta, f, num_steps: int = 4):
    """``num_steps`` Newton steps on ``fn`` from ``theta``, each kept only if it does not raise the objective.
    Directions with curvature below 1e-12 of the largest are left alone (flat ridges stay where L-BFGS left
    them rather than jumping along them). Returns (theta, f, max|grad|)."""
    dtype = theta.dtype
    tiny = jnp.asarray(1e-12 if dtype == jnp.float64 else 1e-5, dtype)

    lengths = jnp.asarray(0.5 ** np.arange(6), dtype)  # the full step, then shorter ones (far from the minimum)

    def step(_, c):
        th, fv = c
        g = jax.grad(fn)(th)
        lam, Q = jnp.linalg.eigh(jax.hessian(fn)(th))
        top = jnp.max(jnp.abs(lam))
        inv = jnp.where(lam > tiny * top, 1.0 / jnp.where(lam > 0, lam, 1.0), 0.0)
        d = Q @ (inv * (Q.T @ g))
        cand = th[None, :] - lengths[:, None] * d[None, :]
        fs = jax.vmap(fn)(cand)
        fs = jnp.where(jnp.isfinite(fs) & jnp.all(jnp.isfinite(cand), axis=1), fs, jnp.inf)
        j = jnp.argmax(fs <= fv)  # the longest step that does not raise the objective
        ok = fs[j] <= fv
        return jnp.where(ok, cand[j], th), jnp.where(ok, fs[j], fv)

    theta, f = jax.lax.fori_loop(0, num_steps, step, (theta, f))
    return theta, f, jnp.max(jnp.abs(jax.grad(fn)(theta)))


def solve_starts(fun, theta0s, X, logy, mask, hyper, max_steps, chunk, newton_first=0):
    """L-BFGS (+ Newton polish) from each row of ``theta0s``; stacked (theta, f, gnorm, steps, status)."""
    gtol, ftol = hyper["gtol"], hyper["ftol"]
    solve = lambda th0: lbfgs_one(fun, th0, (X, logy, mask, hyper), max_steps, gtol, ftol, newton_first)
    if theta0s.shape[0] == 1:  # a vmap of size 1 still batches the while_loops (several times slower)
        return jax.tree_util.tree_map(lambda a: a[None], solve(theta0s[0]))
    if chunk >= theta0s.shape[0]:
        return jax.vmap(solve)(theta0s)
    # vmapped in chunks: a vmapped while_loop runs every start as long as the slowest, so on CPU
    # (chunk 1) starts run one after another and each stops when it converges
    return jax.lax.map(solve, theta0s, batch_size=chunk if chunk > 1 else None)



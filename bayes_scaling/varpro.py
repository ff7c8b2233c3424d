"""Variable projection: the coefficients a law is linear in, solved in closed form on a grid of the rest.

Many laws are a sum of non-negative coefficients times terms that depend on the other (nonlinear)
parameters: Chinchilla's L = E * 1 + A * N^-alpha + B * D^-beta is linear in (E, A, B) once (alpha, beta) are
fixed. A law says so by naming those coefficients (``Law.linear``). For every point of a grid over the
nonlinear parameters this module then

1. computes each run's terms phi_ij = dL_i / dc_j from the law's one ``log_loss`` (by forward-mode
   differentiation at c = 1: no second formula; an offset collects fixed coefficients' terms);
2. solves the non-negative weighted least-squares problem min_c sum_i w_i (L_i - offset_i - phi_i . c)^2,
   c >= 0, exactly, by trying every set of free coefficients (2^k - 1 of them; k <= 4) with column-scaled
   normal equations and keeping the best feasible one; w_i = 1 / L_i^2 makes it the first-order
   approximation of least squares on log loss;
3. reweights (iteratively reweighted least squares) towards the objective actually fitted: Huber on log
   residuals (weight min(1, delta / |r_i|)), Student-t (weight (nu + 1) / (nu + (r_i / s)^2)) or Gaussian;
4. evaluates the exact objective at the resulting point.

:func:`grid_starts` returns those points (in fit space) with their exact objectives; the fitter then polishes
the best few with the full L-BFGS (+ Newton) on the exact objective, so the answer is the objective's own
stationary point, never the approximation's. This is the idea of Open-Athena's vpnls (NNLS per (alpha, beta),
Huber by reweighting, L-BFGS from the best point), done inside one compiled JAX program and vmapped over the grid.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from .defaults import ELEMENTS_AT_ONCE

__all__ = ["supports", "nonlinear_grid", "terms", "nnls", "grid_starts", "describe", "GRID_POINTS", "IRLS_STEPS"]

#: grid points over the nonlinear parameters, in all (per-parameter count: GRID_POINTS^(1/m), at most 256; 16 x 16 for two)
GRID_POINTS = 256
#: reweighting steps after the first (unweighted) solve
IRLS_STEPS = 8
_MAX_LINEAR = 4  # 2^k - 1 active sets are tried


def _free_linear(law) -> tuple[str, ...]:
    free = set(law.free_names)
    return tuple(n for n in law.linear if n in free)


def supports(law) -> bool:
    """Whether ``law`` declares coefficients it is linear in (at least one free) and they are few enough."""
    lin = _free_linear(law)
    return 0 < len(lin) <= _MAX_LINEAR and all(law.param(n).log for n in lin)


def nonlinear_grid(law, points: int = GRID_POINTS) -> np.ndarray:
    """The grid (fit space) over the free parameters that are not linear coefficients: each spans its declared
    start values' range with ``points^(1/m)`` evenly spaced values (at most 256; 16 x 16 for two), Cartesian product."""
    lin = set(_free_linear(law))
    nl = [p for p in law.free_params if p.name not in lin]
    if not nl:
        return np.zeros((1, 0))
    per = max(2, min(256, int(round(points ** (1.0 / len(nl))))))
    axes = []
    for p in nl:
        lo, hi = float(min(p.starts)), float(max(p.starts))
        axes.append(np.linspace(lo, hi, per) if hi > lo else np.array([lo]))
    return np.array(list(itertools.product(*axes)), dtype=float).reshape(-1, len(nl))


def _subsets(k: int) -> np.ndarray:
    """Every non-empty subset of k coefficients as 0/1 rows."""
    return np.array([[(s >> j) & 1 for j in range(k)] for s in range(1, 2 ** k)], dtype=float)


def terms(law, nl_values, X):
    """(phi (runs, k), offset (runs,)) at ``nl_values`` (fit-space values of the free parameters that are not linear
    coefficients, in declaration order): each run's loss is offset + phi . c in the free linear coefficients c."""
    lin = _free_linear(law)
    lin_set = set(lin)
    nl_names = [p.name for p in law.free_params if p.name not in lin_set]
    fixed = law.fixed_values

    def loss_one(c, x):
        p = {n: jnp.asarray(v, c.dtype) for n, v in fixed.items()}
        for i, n in enumerate(nl_names):
            p[n] = law.param(n).from_fit(nl_values[i])
        for j, n in enumerate(lin):
            p[n] = c[j]
        return jnp.exp(law.log_loss_fn(p, x))

    ones = jnp.ones(len(lin), jnp.result_type(nl_values.dtype, float))

    def one_run(x):
        phi = jax.jacfwd(loss_one)(ones, x)
        return phi, loss_one(ones, x) - jnp.sum(phi)

    xs = {k: X[k] for k in law.inputs}
    return jax.vmap(one_run)(xs)


def nnls(phi, z, w, subsets=None):
    """min_c sum_i w_i (z_i - phi_i . c)^2 with c >= 0, exactly, by solving on each active set (``subsets``: 0/1
    rows, default every non-empty one) and keeping the best feasible solution; returns c (k,)."""
    k = phi.shape[1]
    subsets = _subsets(k) if subsets is None else subsets
    sw = jnp.sqrt(w)
    Pw = phi * sw[:, None]
    zw = z * sw
    scale = jnp.sqrt(jnp.sum(Pw * Pw, axis=0))
    scale = jnp.where(scale > 0, scale, 1.0)
    Q = Pw / scale  # unit columns: the normal equations stay well conditioned
    G = Q.T @ Q
    b = Q.T @ zw
    eye = jnp.eye(k, dtype=phi.dtype)
    ridge = jnp.asarray(1e-12 if phi.dtype == jnp.float64 else 1e-6, phi.dtype)

    def solve(m):
        Gs = G * jnp.outer(m, m) + jnp.diag(1.0 - m) + ridge * eye
        u = jnp.linalg.solve(Gs, b * m) * m
        sse = jnp.sum((zw - Q @ u) ** 2)
        feasible = jnp.all(u >= 0) & jnp.all(jnp.isfinite(u))
        return u, jnp.where(feasible & jnp.isfinite(sse), sse, jnp.inf)

    us, sses = jax.vmap(solve)(jnp.asarray(subsets, phi.dtype))
    u = us[jnp.argmin(sses)]
    return jnp.maximum(u, 0.0) / scale


def _weights(kind, r, hyper, mask, logy):
    """IRLS weights on the loss scale for log residuals r (1 / L^2 times the objective's own weight)."""
    base = mask * jnp.exp(-2.0 * logy)
    if kind == "huber_loss":
        a = jnp.abs(r)
        return base * jnp.where(a <= hyper["delta"], 1.0, hyper["delta"] / jnp.maximum(a, 1e-300))
    if kind == "student_t":
        s = 1.25 * jnp.sum(mask * jnp.abs(r)) / jnp.sum(mask)  # a robust scale: 1.25 x mean |r| (Gaussian-consistent)
        s = jnp.maximum(s, 1e-8)
        nu = hyper["shape"]
        return base * (nu + 1.0) / (nu + (r / s) ** 2)
    return base


def grid_starts(law, kind: str, X, logy, mask, hyper, nl_grid, *, objective):
    """For each row of ``nl_grid`` (fit-space values of the nonlinear free parameters, in declaration order),
    the variable-projection point in fit space (the law's free parameters in order, then log sigma for
    likelihood objectives) and ``objective(theta, X, logy, mask, hyper)`` there. Returns ``(thetas, f)``."""
    lin = _free_linear(law)
    lin_set = set(lin)
    y = jnp.exp(logy)
    subsets = _subsets(len(lin))
    num_noise = 0 if kind == "huber_loss" else 1
    tiny = jnp.asarray(1e-30 if logy.dtype == jnp.float64 else 1e-20, logy.dtype)

    def one(nl):
        phi, offset = terms(law, nl, X)
        z = y - offset

        def step(c, _):
            pred = offset + phi @ c
            r = logy - jnp.log(jnp.maximum(pred, tiny))
            return nnls(phi, z, _weights(kind, r, hyper, mask, logy), subsets), None

        c0 = nnls(phi, z, mask * jnp.exp(-2.0 * logy), subsets)
        c, _ = jax.lax.scan(step, c0, None, length=IRLS_STEPS)
        pred = offset + phi @ c
        r = logy - jnp.log(jnp.maximum(pred, tiny))
        # a coefficient solved to zero is a term the data cannot see; as a start it sits far below the others
        ref = jnp.maximum(jnp.max(c), jnp.asarray(1e-8, c.dtype))
        logc = jnp.log(jnp.maximum(c, ref * 1e-12))
        theta, i_nl, i_lin = [], 0, 0
        for p in law.free_params:
            if p.name in lin_set:
                theta.append(logc[i_lin])
                i_lin += 1
            else:
                theta.append(nl[i_nl])
                i_nl += 1
        if num_noise:
            rms = jnp.sqrt(jnp.sum(mask * r * r) / jnp.sum(mask))
            theta.append(jnp.log(jnp.clip(rms, 1e-4, 1.0)))
        theta = jnp.stack(theta)
        f = objective(theta, X, logy, mask, hyper)
        return theta, jnp.where(jnp.isfinite(f), f, jnp.inf)

    batch = max(1, (ELEMENTS_AT_ONCE // 4) // max(int(logy.shape[0]), 1))  # grid points x runs at once (defaults)
    if batch >= nl_grid.shape[0]:
        return jax.vmap(one)(nl_grid)
    return jax.lax.map(one, nl_grid, batch_size=batch)


def describe(law, num_grid: int, num_polish: int) -> str:
    """One line for a fit's notes."""
    lin = _free_linear(law)
    nl = [p.name for p in law.free_params if p.name not in set(lin)]
    per = int(round(num_grid ** (1.0 / len(nl)))) if nl else 1
    grid = " x ".join([str(per)] * len(nl)) if nl else "no"
    return (f"variable projection: {', '.join(lin)} solved in closed form (non-negative, reweighted to the objective) "
            f"on a {grid} grid of {', '.join(nl) or 'nothing'} ({num_grid} points); L-BFGS from the best {num_polish}")


"""An independent NumPy/SciPy implementation of the Chinchilla Huber protocol (METHODS §1.1).

Written without JAX or bayes_scaling's law code: the objective and its analytic gradient in plain NumPy,
minimised with scipy's L-BFGS-B. Tests and benchmarks hold bayes_scaling's optax fits against it.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from scipy.special import huber, logsumexp


def chinchilla_huber(theta, logN, logD, logy, delta=1e-3):
    """Summed Huber_delta of log residuals and its gradient; theta = (e, a, b, alpha, beta), log space."""
    e, a, b, alpha, beta = theta
    t = np.stack([a - alpha * logN, b - beta * logD, np.full_like(logN, e)])
    lse = logsumexp(t, axis=0)
    w = np.exp(t - lse)  # softmax weights: d lse / d (t1, t2, t3)
    r = logy - lse
    value = huber(delta, r).sum()
    dr = np.clip(r, -delta, delta)  # d Huber / d r
    g_lse = -dr
    grad = np.array([
        np.sum(g_lse * w[2]),
        np.sum(g_lse * w[0]),
        np.sum(g_lse * w[1]),
        np.sum(g_lse * w[0] * -logN),
        np.sum(g_lse * w[1] * -logD),
    ])
    return value, grad


def scipy_fit(theta0, logN, logD, logy, *, delta=1e-3, ftol=1e-15, gtol=1e-12, maxiter=15000):
    """L-BFGS-B from one start with tight tolerances (METHODS §1.1 pitfall); returns the OptimizeResult."""
    return minimize(
        chinchilla_huber, np.asarray(theta0, float), args=(logN, logD, logy, delta), jac=True,
        method="L-BFGS-B", options={"ftol": ftol, "gtol": gtol, "maxiter": maxiter, "maxfun": 4 * maxiter},
    )


def scipy_grid(starts, logN, logD, logy, **kw):
    """Every start of a grid; returns (best result, objectives of all starts)."""
    results = [scipy_fit(s, logN, logD, logy, **kw) for s in starts]
    values = np.array([r.fun if np.isfinite(r.fun) else np.inf for r in results])
    return results[int(np.argmin(values))], values

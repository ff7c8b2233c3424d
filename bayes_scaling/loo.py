"""Comparing predictive distributions: PSIS-LOO densities of each run (arviz) and stacking weights (Yao et al. 2018).

Used by :mod:`bayes_scaling.stacking` (laws compared on the same runs) and :mod:`bayes_scaling.backtests` (each cut's
fitted runs, so that a backtest of a stack weighs the laws only by what was known at the cut).
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["loo_pointwise", "stacking_weights", "PARETO_K_MAX"]

#: above this Pareto k the PSIS-LOO estimate of a run is unreliable (Vehtari et al. 2017; arviz's threshold)
PARETO_K_MAX = 0.7


def loo_pointwise(log_lik: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSIS-LOO of each run from ``log_lik`` ``(chain, draw, run)``: ``(elpd_i, pareto_k)`` (arviz)."""
    import arviz as az

    ll = np.asarray(log_lik, float)
    idata = az.from_dict(posterior={"_": np.zeros(ll.shape[:2])}, log_likelihood={"loss": ll})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # high Pareto k is reported by the caller, in words
        res = az.loo(idata, pointwise=True)
    return np.asarray(res["loo_i"]), np.asarray(res["pareto_k"])


def stacking_weights(lpd: np.ndarray) -> np.ndarray:
    """Stacking weights from pointwise log predictive densities ``lpd`` ``(run, law)``: the w on the simplex that
    maximises ``sum_i log sum_k w_k exp(lpd_ik)`` (concave; solved over softmax coordinates with L-BFGS, exact
    gradient)."""
    from scipy.optimize import minimize
    from scipy.special import softmax

    lpd = np.asarray(lpd, float)
    K = lpd.shape[1]
    if K == 1:
        return np.ones(1)
    shift = lpd.max(axis=1, keepdims=True)
    P = np.exp(lpd - shift)

    def f(z):
        w = softmax(np.r_[z, 0.0])
        mix = P @ w
        g_w = -(P / mix[:, None]).sum(axis=0)
        g_z = (w * (g_w - w @ g_w))[:-1]
        return -np.sum(np.log(mix)), g_z

    res = minimize(f, np.zeros(K - 1), jac=True, method="L-BFGS-B")
    w = softmax(np.r_[res.x, 0.0])
    w[w < 1e-6] = 0.0
    return w / w.sum()

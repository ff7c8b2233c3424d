"""Per-run terms on log-loss residuals r = log L_obs - log L_pred.

* ``huber(r, delta)``: the Chinchilla/Epoch robust loss, delta * (|r| - delta/2) beyond ``delta``,
  r^2 / 2 inside (identical to ``scipy.special.huber``).
* ``gaussian_logpdf(r, sigma)`` and ``student_t_logpdf(r, sigma, nu)``: log densities of the residual
  under Gaussian or Student-t noise on log loss (Student-t is the robust default for likelihoods).

>>> float(huber(0.5, 1e-3)) == 1e-3 * (0.5 - 0.5e-3)
True
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy import stats

__all__ = ["huber", "gaussian_logpdf", "student_t_logpdf", "LIKELIHOODS"]


def huber(r, delta):
    a = jnp.abs(r)
    return jnp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def gaussian_logpdf(r, sigma, nu=None):
    return stats.norm.logpdf(r, 0.0, sigma)


def student_t_logpdf(r, sigma, nu):
    return stats.t.logpdf(r, nu, 0.0, sigma)


LIKELIHOODS = {"gaussian": gaussian_logpdf, "student_t": student_t_logpdf}

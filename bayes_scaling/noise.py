"""Per-run terms on log-loss residuals r = log L_obs - log L_pred.

* ``huber(r, delta)``: the Chinchilla/Epoch robust loss, delta * (|r| - delta/2) beyond ``delta``,
  r^2 / 2 inside (identical to ``scipy.special.huber``).
* ``gaussian_logpdf(r, sigma)`` and ``student_t_logpdf(r, sigma, nu)``: log densities of the residual
  under Gaussian or Student-t noise on log loss (Student-t is the robust default for likelihoods).
* ``huber_logpdf(r, sigma, k)``: the normalised Huber density p(r) = exp(-huber(r/sigma, k)) / (sigma Z(k)),
  Gaussian within k sigma and Laplace-tailed beyond, Z(k) = sqrt(2 pi) (2 Phi(k) - 1) + 2 exp(-k^2/2) / k.

>>> float(huber(0.5, 1e-3)) == 1e-3 * (0.5 - 0.5e-3)
True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

__all__ = ["huber", "gaussian_logpdf", "student_t_logpdf", "huber_logpdf", "LIKELIHOODS", "sample_unit"]


def huber(r, delta):
    xp = np if isinstance(r, np.ndarray) else jnp  # NumPy in, NumPy out (noise draws); jax for everything compiled
    a = xp.abs(r)
    return xp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def gaussian_logpdf(r, sigma, nu=None):
    return stats.norm.logpdf(r, 0.0, sigma)


def student_t_logpdf(r, sigma, nu):
    return stats.t.logpdf(r, nu, 0.0, sigma)


def huber_log_normaliser(k):
    """log Z(k) of the unit-scale Huber density exp(-huber(u, k))."""
    return jnp.log(jnp.sqrt(2 * jnp.pi) * jax.scipy.special.erf(k / jnp.sqrt(2.0)) + 2 * jnp.exp(-0.5 * k * k) / k)


def huber_logpdf(r, sigma, k):
    return -huber(r / sigma, k) - jnp.log(sigma) - huber_log_normaliser(k)


#: likelihoods by name; each takes (residual, sigma, shape) where shape is nu (Student-t) or k (Huber)
LIKELIHOODS = {"gaussian": gaussian_logpdf, "student_t": student_t_logpdf, "huber": huber_logpdf}


def sample_unit(seed, likelihood: str, shape_param: float, size) -> np.ndarray:
    """Unit-scale noise draws (sigma = 1) of a likelihood, as a NumPy array of shape ``size``: Student-t with
    ``shape_param`` degrees of freedom, Gaussian, or the normalised Huber density with threshold
    ``shape_param`` (by inversion of its CDF on a fine grid over [-60, 60]). ``seed``: an int, a sequence of
    ints (``(seed, budget)``) or a NumPy ``Generator``; drawn with NumPy (no compiled program for a few thousand
    numbers)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if likelihood == "student_t":
        return rng.standard_t(shape_param, size)
    if likelihood == "gaussian":
        return rng.standard_normal(size)
    if likelihood == "huber":
        u = np.linspace(-60, 60, 24001)
        cdf = np.cumsum(np.exp(-huber(u, shape_param)))  # the unnormalised density; normalised below
        return np.interp(rng.uniform(size=size), cdf / cdf[-1], u)
    raise ValueError(f"unknown likelihood {likelihood!r}; use one of {', '.join(LIKELIHOODS)}")

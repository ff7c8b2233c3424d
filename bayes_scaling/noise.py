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

__all__ = ["huber", "gaussian_logpdf", "student_t_logpdf", "huber_logpdf", "LIKELIHOODS", "sample_unit", "shape_of",
           "shape_settings", "shape_from_settings", "DEFAULT_NU", "DEFAULT_K"]

#: Student-t degrees of freedom and the Huber density's threshold (in sigmas) when not given
DEFAULT_NU = 4.0
DEFAULT_K = 1.345


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


def shape_of(likelihood: str, nu=None, k=None):
    """The likelihood's one shape parameter from the option that names it: ``nu`` for Student-t (degrees of freedom;
    ``"learn"`` samples it, nu ~ Gamma(2, 0.1)), ``k`` for the Huber density (its threshold in sigmas); Gaussian
    noise takes neither. Returns a float (0 for Gaussian) or ``"learn"``; a wrong pairing is a ValueError in words.

    >>> shape_of("student_t"), shape_of("huber", k=2.0), shape_of("gaussian")
    (4.0, 2.0, 0.0)
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; use one of {', '.join(LIKELIHOODS)}")
    if likelihood == "student_t":
        if k is not None:
            raise ValueError("k is the Huber density's threshold (likelihood='huber'); Student-t noise takes nu")
        if isinstance(nu, str):
            if nu != "learn":
                raise ValueError(f"nu must be a positive number or 'learn', not {nu!r}")
            return "learn"
        return DEFAULT_NU if nu is None else _positive("nu", nu)
    if likelihood == "huber":
        if nu is not None:
            raise ValueError("nu is Student-t's degrees of freedom; the Huber density takes k (its threshold in sigmas)")
        return DEFAULT_K if k is None else _positive("k", k)
    if nu is not None or k is not None:
        raise ValueError("Gaussian noise has no shape parameter: drop nu and k")
    return 0.0


def _positive(name, value) -> float:
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return v


def shape_settings(likelihood: str, shape) -> dict:
    """How a result records the shape it was sampled with: ``{"nu": ...}``, ``{"k": ...}`` or nothing (Gaussian)."""
    return {"student_t": {"nu": shape}, "huber": {"k": shape}}.get(likelihood, {})


def shape_from_settings(settings) -> float:
    """The shape a result was sampled with, from its settings (``nu`` or ``k``; ``shape`` in files written before
    they were named)."""
    for key in ("nu", "k", "shape"):
        if settings.get(key) is not None:
            return float(settings[key])
    return {"huber": DEFAULT_K}.get(settings.get("likelihood", "student_t"), DEFAULT_NU)


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

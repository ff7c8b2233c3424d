"""Noise models on log-loss residuals r = log L_obs - log L_pred, each one type in one place.

A :class:`Noise` holds a likelihood's name, its one shape parameter (``nu`` for Student-t, ``k`` for the Huber
density, none for Gaussian), its log density ``logpdf(r, sigma, shape)``, its unit-scale draws and its words for
reports; :data:`NOISE` lists them by name. Adding a likelihood is one :class:`Noise` here (the model, the fitter,
forecasts and reports take it by name). The noise scale may vary with compute (:func:`scale_with_compute`).

* ``gaussian``: N(0, sigma).
* ``student_t`` (the default of likelihoods): Student-t with ``nu`` degrees of freedom (default 4).
* ``huber_density``: the normalised Huber density p(r) = exp(-huber(r/sigma, k)) / (sigma Z(k)), Gaussian within
  ``k`` sigma and Laplace-tailed beyond, Z(k) = sqrt(2 pi) (2 Phi(k) - 1) + 2 exp(-k^2/2) / k.

Not a noise model: ``huber(r, delta)``, the Chinchilla/Epoch robust *loss* (delta * (|r| - delta/2) beyond
``delta``, r^2 / 2 inside, identical to ``scipy.special.huber``), which the point fitter's ``"huber_loss"``
protocol sums; it is named apart so that it cannot be mistaken for the Huber density.

>>> float(huber(0.5, 1e-3)) == 1e-3 * (0.5 - 0.5e-3)
True
>>> NOISE["student_t"].describe(4.0)
'Student-t (nu = 4)'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import stats

__all__ = ["Noise", "NOISE", "noise_model", "huber", "gaussian_logpdf", "student_t_logpdf", "huber_logpdf", "LIKELIHOODS",
           "sample_unit", "shape_of", "shape_settings", "shape_from_settings", "scale_with_compute", "DEFAULT_NU",
           "DEFAULT_K"]

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


def _huber_unit(rng, k, size):
    u = np.linspace(-60, 60, 24001)
    cdf = np.cumsum(np.exp(-huber(u, k)))  # the unnormalised density; normalised below (inversion of the CDF)
    return np.interp(rng.uniform(size=size), cdf / cdf[-1], u)


@dataclass(frozen=True)
class Noise:
    """One noise model on log loss. ``logpdf(r, sigma, shape)`` (jax), ``unit(rng, shape, size)`` unit-scale draws
    (NumPy ``Generator``), ``shape_name`` the option that sets its shape (``"nu"``, ``"k"`` or ``None``)."""

    name: str
    label: str
    logpdf: Callable
    unit: Callable
    shape_name: str | None = None
    default_shape: float = 0.0

    def describe(self, shape=None) -> str:
        if self.shape_name is None:
            return self.label
        return f"{self.label} ({self.shape_name} = {self.default_shape if shape is None else float(shape):g})"


NOISE = {n.name: n for n in (
    Noise("student_t", "Student-t", student_t_logpdf, lambda rng, nu, size: rng.standard_t(nu, size), "nu", DEFAULT_NU),
    Noise("gaussian", "Gaussian", gaussian_logpdf, lambda rng, _, size: rng.standard_normal(size)),
    Noise("huber_density", "Huber density", huber_logpdf, _huber_unit, "k", DEFAULT_K),
)}
#: likelihoods by name; each takes (residual, sigma, shape) where shape is nu (Student-t) or k (Huber density)
LIKELIHOODS = {name: n.logpdf for name, n in NOISE.items()}
#: names of results written before the Huber density was named apart from the Huber loss
_LEGACY = {"huber": "huber_density"}


def noise_model(name: str, *, legacy: bool = False) -> Noise:
    """The :class:`Noise` called ``name``; ``legacy`` reads names of files written by earlier versions."""
    if legacy:
        name = _LEGACY.get(name, name)
    if name not in NOISE:
        hint = (" ('huber' is ambiguous: the Huber density is 'huber_density'; the Hoffmann/Epoch robust loss is the "
                "point fitter's objective 'huber_loss')" if name == "huber" else "")
        raise ValueError(f"unknown likelihood {name!r}; use one of {', '.join(NOISE)}{hint}")
    return NOISE[name]


def scale_with_compute(sigma, gamma, logC, logC0):
    """The compute-scaled noise: log sigma_i = log sigma + gamma (log C_i - log C0), C0 the data's geometric-mean
    compute (so sigma is the noise at the data's centre)."""
    return sigma * jnp.exp(gamma * (logC - logC0))


def shape_of(likelihood: str, nu=None, k=None):
    """The likelihood's one shape parameter from the option that names it: ``nu`` for Student-t (degrees of freedom;
    ``"learn"`` samples it, nu ~ Gamma(2, 0.1)), ``k`` for the Huber density (its threshold in sigmas); Gaussian
    noise takes neither. Returns a float (0 for Gaussian) or ``"learn"``; a wrong pairing is a ValueError in words.

    >>> shape_of("student_t"), shape_of("huber_density", k=2.0), shape_of("gaussian")
    (4.0, 2.0, 0.0)
    """
    noise = noise_model(likelihood)
    given = {"nu": nu, "k": k}
    for name, value in given.items():
        if value is not None and name != noise.shape_name:
            if noise.shape_name is None:
                raise ValueError("Gaussian noise has no shape parameter: drop nu and k")
            raise ValueError({"k": "k is the Huber density's threshold (likelihood='huber_density'); Student-t noise takes nu",
                              "nu": "nu is Student-t's degrees of freedom; the Huber density takes k (its threshold in sigmas)"}[name])
    if noise.shape_name is None:
        return 0.0
    value = given[noise.shape_name]
    if value is None:
        return noise.default_shape
    if isinstance(value, str):
        if noise.shape_name != "nu" or value != "learn":
            raise ValueError(f"{noise.shape_name} must be a positive number{' or learn' if noise.shape_name == 'nu' else ''}, not {value!r}")
        return "learn"
    return _positive(noise.shape_name, value)


def _positive(name, value) -> float:
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive number, not {value!r}")
    return v


def shape_settings(likelihood: str, shape) -> dict:
    """How a result records the shape it was sampled with: ``{"nu": ...}``, ``{"k": ...}`` or nothing (Gaussian)."""
    name = noise_model(likelihood, legacy=True).shape_name
    return {} if name is None else {name: shape}


def shape_from_settings(settings) -> float:
    """The shape a result was sampled with, from its settings (``nu`` or ``k``; ``shape`` in files written before
    they were named)."""
    for key in ("nu", "k", "shape"):
        if settings.get(key) is not None:
            return float(settings[key])
    return noise_model(settings.get("likelihood", "student_t"), legacy=True).default_shape or DEFAULT_NU


def sample_unit(seed, likelihood: str, shape_param: float, size) -> np.ndarray:
    """Unit-scale noise draws (sigma = 1) of a likelihood, as a NumPy array of shape ``size`` (the Huber density by
    inversion of its CDF on a fine grid over [-60, 60]). ``seed``: an int, a sequence of ints (``(seed, budget)``) or
    a NumPy ``Generator``; drawn with NumPy (no compiled program for a few thousand numbers)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return noise_model(likelihood, legacy=True).unit(rng, shape_param, size)

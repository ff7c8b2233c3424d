"""Priors as text: one readable line for reports and settings (:func:`prior_text`), an exact token for cache keys
(:func:`prior_token`), and whether a prior's support is the positive reals (:func:`positive_support`)."""

from __future__ import annotations

import numpy as np
from numpyro.distributions import constraints

__all__ = ["prior_text", "prior_token", "positive_support", "exp_inside"]


def prior_text(prior) -> str:
    """A numpyro distribution as one readable line, e.g. ``LogNormal(loc=0.5, scale=0.5)`` (its repr is an
    object address). Used where priors are recorded: posterior settings, reports, ``describe``.

    >>> import numpyro.distributions as dist
    >>> prior_text(dist.LogNormal(0.5, 0.5))
    'LogNormal(loc=0.5, scale=0.5)'
    """
    args = []
    for name in getattr(prior, "arg_constraints", {}):
        value = getattr(prior, name, None)
        if value is None:
            continue
        a = np.asarray(value)
        args.append(f"{name}={float(a):g}" if a.size == 1 else f"{name}={np.array2string(a, precision=3)}")
    return f"{type(prior).__name__}({', '.join(args)})"


def prior_token(prior) -> str:
    """A prior's type and exact parameter values (for cache keys; :func:`prior_text` rounds for reading)."""
    args = [f"{name}={np.asarray(getattr(prior, name)).tolist()!r}" for name in getattr(prior, "arg_constraints", {})
            if getattr(prior, name, None) is not None]
    return f"{type(prior).__module__}.{type(prior).__name__}({', '.join(args)})"


def positive_support(prior) -> bool:
    """Whether a prior lives on the positive reals (or a part of them): then a scale may be fitted in log space."""
    support = prior.support
    return support is constraints.positive or (isinstance(support, constraints.greater_than) and float(support.lower_bound) >= 0)


def exp_inside(prior) -> bool:
    """Whether exp(theta) lies in the prior's support for every real theta (support (0, inf)): a log-fitted scale
    with such a prior needs no support check."""
    support = prior.support
    return support is constraints.positive or (isinstance(support, constraints.greater_than) and float(support.lower_bound) == 0)

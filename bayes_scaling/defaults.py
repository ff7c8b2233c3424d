"""Every default and convention the package uses, defined once.

* ``FLOPS_PER_PARAM_TOKEN`` = 6: training compute C = 6 N D FLOPs for N parameters and D tokens (Kaplan et al.
  2020; Hoffmann et al. 2022); :func:`compute_of` and :func:`tokens_of` apply it.
* ``PROB`` = 0.9: the mass of every reported interval unless the caller asks for another.
* ``BUDGETS``: the compute budgets forecast when none are given (1e21, Chinchilla's 5.76e23, 1e25 FLOPs).
* ``FAR_EXTRAPOLATION`` = 100: a forecast at a budget this many times the largest run's compute is flagged.
* ``RHAT_MAX`` = 1.01, ``ESS_MIN`` = 400: sampler health (the Stan / arviz recommendations; bulk and tail ESS).
* ``ELEMENTS_AT_ONCE`` = 2^22: how many (start x run) objective terms a screen of starts evaluates at once (~0.3 GB
  of working memory); the variable projection, which holds about 4 times as much per term (the active sets of its
  non-negative solve), takes a quarter of it.

>>> compute_of(1e9, 2e10)
1.2e+20
"""

from __future__ import annotations

__all__ = ["FLOPS_PER_PARAM_TOKEN", "FLOPS_CONVENTION", "compute_of", "tokens_of", "PROB", "BUDGETS",
           "FAR_EXTRAPOLATION", "RHAT_MAX", "ESS_MIN", "HEALTH_TEXT", "ELEMENTS_AT_ONCE"]

FLOPS_PER_PARAM_TOKEN = 6.0
FLOPS_CONVENTION = "C = 6ND"
PROB = 0.9
BUDGETS = (1e21, 5.76e23, 1e25)
FAR_EXTRAPOLATION = 100.0
RHAT_MAX = 1.01
ESS_MIN = 400
ELEMENTS_AT_ONCE = 2 ** 22
#: the health thresholds in words, for messages and reports
HEALTH_TEXT = f"R-hat <= {RHAT_MAX}, bulk and tail ESS >= {ESS_MIN}"


def compute_of(N, D):
    """Training compute C = 6 N D (NumPy or JAX arrays, or numbers)."""
    return FLOPS_PER_PARAM_TOKEN * N * D


def tokens_of(C, N):
    """Training tokens D = C / (6 N) for compute C and N parameters."""
    return C / (FLOPS_PER_PARAM_TOKEN * N)

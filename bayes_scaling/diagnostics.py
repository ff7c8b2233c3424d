"""Sampler health: rank-normalised split R-hat, bulk and tail ESS (Vehtari et al. 2021), in NumPy.

Written on numpyro's autocovariance-based ESS so that health checks need no arviz (the GPU machine has
none); tests hold these against ``arviz.rhat`` / ``arviz.ess``.

Thresholds (the Stan / arviz recommendations): R-hat <= 1.01, bulk and tail ESS >= 400 (100 per chain
for 4 chains), no divergent transitions.
"""

from __future__ import annotations

import numpy as np
from numpyro.diagnostics import effective_sample_size, gelman_rubin
from scipy.special import ndtri
from scipy.stats import rankdata

__all__ = ["rhat", "ess_bulk", "ess_tail", "RHAT_MAX", "ESS_MIN"]

RHAT_MAX = 1.01
ESS_MIN = 400


def _split(x: np.ndarray) -> np.ndarray:
    """(chain, draw) -> (2 chain, draw // 2): each chain's halves as separate chains (odd draw dropped)."""
    x = np.asarray(x, float)
    n = x.shape[1] // 2
    return np.concatenate([x[:, :n], x[:, x.shape[1] - n:]], axis=0)


def _rank_normalise(x: np.ndarray) -> np.ndarray:
    r = rankdata(x.ravel(), method="average").reshape(x.shape)
    return ndtri((r - 0.375) / (x.size + 0.25))


def _constant(x) -> bool:
    return not np.all(np.isfinite(x)) or np.ptp(x) == 0


def rhat(x) -> float:
    """Rank-normalised split R-hat: the max of the bulk and the folded (tail) versions. ``x``: (chain, draw)."""
    x = np.asarray(x, float)
    if _constant(x) or x.shape[1] < 4:
        return float("nan")
    s = _split(x)
    bulk = gelman_rubin(_rank_normalise(s))
    folded = gelman_rubin(_rank_normalise(np.abs(s - np.median(s))))
    return float(max(bulk, folded))


def ess_bulk(x) -> float:
    """Bulk ESS: ESS of the rank-normalised split chains."""
    x = np.asarray(x, float)
    if _constant(x) or x.shape[1] < 4:
        return float("nan")
    return float(effective_sample_size(_rank_normalise(_split(x))))


def ess_tail(x) -> float:
    """Tail ESS: the smaller ESS of the indicators of the 5% and 95% quantiles (split chains)."""
    x = np.asarray(x, float)
    if _constant(x) or x.shape[1] < 4:
        return float("nan")
    s = _split(x)
    out = []
    for q in (0.05, 0.95):
        ind = (s <= np.quantile(s, q)).astype(float)
        out.append(effective_sample_size(_rank_normalise(ind)) if np.ptp(ind) > 0 else float("nan"))
    return float(np.nanmin(out))

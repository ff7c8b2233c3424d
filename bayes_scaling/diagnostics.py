"""Sampler health: rank-normalised split R-hat, bulk and tail ESS (Vehtari et al. 2021), in NumPy.

Written on numpyro's autocovariance-based ESS so that health checks need no arviz (the GPU machine has
none); tests hold these against ``arviz.rhat`` / ``arviz.ess``.

Thresholds (the Stan / arviz recommendations): R-hat <= 1.01, bulk and tail ESS >= 400 (100 per chain
for 4 chains), no divergent transitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpyro.diagnostics import effective_sample_size, gelman_rubin
from scipy.special import ndtri

from .defaults import ESS_MIN, RHAT_MAX

__all__ = ["rhat", "ess_bulk", "ess_tail", "health", "Health", "fmt_rhat", "RHAT_MAX", "ESS_MIN"]


def _split(x: np.ndarray) -> np.ndarray:
    """(chain, draw) -> (2 chain, draw // 2): each chain's halves as separate chains (odd draw dropped)."""
    x = np.asarray(x, float)
    n = x.shape[1] // 2
    return np.concatenate([x[:, :n], x[:, x.shape[1] - n:]], axis=0)


def rankdata(x) -> np.ndarray:
    """Ranks 1..n of ``x`` (flattened), ties sharing their average rank (``scipy.stats.rankdata``'s "average",
    written here because importing scipy.stats costs most of a second at every start)."""
    a = np.asarray(x).ravel()
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    first = np.r_[True, s[1:] != s[:-1]]
    group = np.cumsum(first)
    bounds = np.r_[np.flatnonzero(first), len(a)]
    ranks = np.empty(len(a))
    ranks[order] = 0.5 * (bounds[group] + bounds[group - 1] + 1)
    return ranks


def _rank_normalise(x: np.ndarray) -> np.ndarray:
    r = rankdata(x.ravel()).reshape(x.shape)
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


def fmt_rhat(r: float) -> str:
    """R-hat for reading: three decimals, ``>10`` beyond 10 (chains in different places), ``-`` when undefined."""
    if r is None or not np.isfinite(r):
        return "-"
    return ">10" if r > 10 else f"{r:.3f}"


@dataclass(frozen=True)
class Health:
    """Sampler health of one result: the one record every result type's ``health()`` returns.

    ``ok``: no divergent transition, R-hat <= :data:`RHAT_MAX` and bulk and tail ESS >= :data:`ESS_MIN` for every
    watched quantity; ``warnings``: each failure as a sentence saying what it means and what to do;
    ``r_hat``, ``ess_bulk``, ``ess_tail``: per quantity. ``str(health)`` is the one-line summary the CLI prints.
    """

    ok: bool
    divergences: int
    max_r_hat: float
    min_ess_bulk: float
    min_ess_tail: float
    warnings: tuple[str, ...] = ()
    r_hat: dict[str, float] = field(default_factory=dict, repr=False)
    ess_bulk: dict[str, float] = field(default_factory=dict, repr=False)
    ess_tail: dict[str, float] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        state = "healthy" if self.ok else "NOT HEALTHY"
        return (f"{state}: {self.divergences} divergences, max R-hat {fmt_rhat(self.max_r_hat)}, "
                f"min ESS bulk {_fmt_ess(self.min_ess_bulk)} / tail {_fmt_ess(self.min_ess_tail)}")

    def to_dict(self) -> dict:
        """The summary numbers and warnings (JSON-able)."""
        return {"ok": self.ok, "divergences": self.divergences, "max_r_hat": self.max_r_hat,
                "min_ess_bulk": self.min_ess_bulk, "min_ess_tail": self.min_ess_tail, "warnings": list(self.warnings)}

    @classmethod
    def combine(cls, parts: Mapping[str, Health], extra_warnings=()) -> Health:
        """The worst health over named parts (several fits of one analysis, the families of a batch); each part's
        warnings prefixed with its name, the per-quantity numbers as ``part: quantity``."""
        parts = dict(parts)
        finite = lambda xs: [x for x in xs if np.isfinite(x)]
        pick = lambda attr: {f"{n}: {k}": v for n, h in parts.items() for k, v in getattr(h, attr).items()}
        return cls(ok=all(h.ok for h in parts.values()) and not extra_warnings,
                   divergences=sum(h.divergences for h in parts.values()),
                   max_r_hat=max(finite(h.max_r_hat for h in parts.values()), default=float("nan")),
                   min_ess_bulk=min(finite(h.min_ess_bulk for h in parts.values()), default=float("nan")),
                   min_ess_tail=min(finite(h.min_ess_tail for h in parts.values()), default=float("nan")),
                   warnings=tuple(f"{n}: {w}" for n, h in parts.items() for w in h.warnings) + tuple(extra_warnings),
                   r_hat=pick("r_hat"), ess_bulk=pick("ess_bulk"), ess_tail=pick("ess_tail"))


def _fmt_ess(x) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.0f}"


def health(draws: Mapping[str, np.ndarray], diverging) -> Health:
    """Sampler health of named draws ``(chain, draw)`` as a :class:`Health`. The one definition used by every result
    type: healthy means no divergent transition, R-hat <= :data:`RHAT_MAX` and bulk and tail ESS >= :data:`ESS_MIN`
    for every named quantity (constant ones are skipped); each failure is a sentence saying what it means and what
    to do."""
    div = int(np.sum(diverging))
    total = int(np.size(diverging))
    r = {k: rhat(v) for k, v in draws.items()}
    eb = {k: ess_bulk(v) for k, v in draws.items()}
    et = {k: ess_tail(v) for k, v in draws.items()}
    finite = lambda d: [v for v in d.values() if np.isfinite(v)]
    max_r = max(finite(r), default=float("nan"))
    min_b, min_t = min(finite(eb), default=float("nan")), min(finite(et), default=float("nan"))
    w = []
    if div:
        w.append(f"{div} of {total} transitions diverged: the sampler met curvature it could not follow, so the posterior "
                 "may be biased. Raise target_accept (e.g. 0.95-0.99), or fix poorly identified parameters.")
    bad_r = [k for k, v in r.items() if v > RHAT_MAX]
    if bad_r:
        w.append(f"R-hat above {RHAT_MAX} for {_names(bad_r)} (max {fmt_rhat(max_r)}): the chains disagree, so they have not "
                 "mixed. Run longer (more warm-up and draws), or check for several modes.")
    low = [k for k in draws if eb[k] < ESS_MIN or et[k] < ESS_MIN]
    if low:
        w.append(f"effective sample size below {ESS_MIN} for {_names(low)} (min bulk {min_b:.0f}, tail {min_t:.0f}): "
                 "intervals are noisy. Draw more samples or more chains.")
    return Health(ok=not w, divergences=div, max_r_hat=max_r, min_ess_bulk=min_b, min_ess_tail=min_t, warnings=tuple(w),
                  r_hat=r, ess_bulk=eb, ess_tail=et)


def _names(names, limit: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")

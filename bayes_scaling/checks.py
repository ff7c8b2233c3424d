"""What can make a fit's numbers untrustworthy, found and said in words: too few runs for the law, inputs that
cannot identify it, degenerate losses, exponents run to their bounds, a law that explains little of the losses,
non-finite or absurd forecasts, and extrapolation far beyond the runs.

Each check returns sentences a user can act on; the CLI prints them and exits 1 when any applies (exit 2 is
kept for input it cannot use at all, such as fewer runs than :func:`min_runs`).

Run counts (:func:`min_runs`): a least-squares fit (the Huber protocol) needs at least as many runs as the law
has free parameters (noise is not a parameter of that objective); maximum likelihood also estimates the noise
scale, so one run more; a MAP fit or a posterior is regularised by the priors and runs with as few as 2 runs,
with a warning when runs <= the law's parameters (the priors then decide part of the answer).

>>> from bayes_scaling.laws import get_law
>>> min_runs(get_law("chinchilla"), "least_squares"), min_runs(get_law("chinchilla"), "posterior")
(5, 2)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpyro.distributions import constraints

from .defaults import FAR_EXTRAPOLATION

__all__ = ["check_sampler_size", "runs_sha256", "available_memory", "min_runs", "small_design", "check_run_count",
           "data_warnings", "fit_warnings", "extrapolation_warnings",
           "explained_share", "FAR_EXTRAPOLATION", "PERPLEXITY_LIKE"]

#: losses all above this look like perplexities rather than nats per token
PERPLEXITY_LIKE = 8.0
#: exponents (of positive support) below / above these ran to a bound of what the law can mean
EXPONENT_LOW, EXPONENT_HIGH = 0.01, 3.0
#: a fit whose law explains less than this share of the variance of log loss is flagged
MIN_EXPLAINED = 0.5
#: compute-optimal tokens per parameter outside this range are not believable for language models
TOKENS_PER_PARAM = (0.1, 1e4)

_KINDS = ("least_squares", "likelihood", "map", "posterior")


def _count_text(law) -> str:
    return f"{law.num_free} parameter{'s' if law.num_free != 1 else ''}: {', '.join(law.free_names)}"


def min_runs(law, kind: str) -> int:
    """The fewest runs a fit of ``kind`` accepts: ``least_squares`` the law's free parameters; ``likelihood``
    (maximum likelihood) one more for the noise scale; ``map`` and ``posterior`` 2 (the priors regularise)."""
    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {', '.join(_KINDS)}, not {kind!r}")
    return {"least_squares": law.num_free, "likelihood": law.num_free + 1}.get(kind, 2)


def _what(kind: str) -> str:
    return {"least_squares": "a least-squares fit", "likelihood": "a maximum-likelihood fit", "map": "a MAP fit",
            "posterior": "a posterior"}[kind]


def small_design(num_runs: int, law) -> bool:
    """Whether ``num_runs`` make a small design for ``law``: at most twice its free parameters (five runs for
    Chinchilla's five, or its tied form's four). Its posterior is allowed and flagged; the sampler then uses the small
    design's noise prior and longer chains (:func:`~bayes_scaling.sampling.sample_posterior`)."""
    return num_runs <= 2 * law.num_free


def check_run_count(num_runs: int, law, kind: str, source: str = "") -> list[str]:
    """Raise ``ValueError`` (one line, saying what was counted) when ``num_runs`` is below :func:`min_runs`;
    return the warning for a MAP fit or posterior with runs <= the law's parameters (else ``[]``)."""
    need = min_runs(law, kind)
    where = f"{source}: " if source else ""
    if num_runs < need:
        counted = {"least_squares": f"the law's {_count_text(law)}; noise is not counted",
                   "likelihood": f"the law's {_count_text(law)}, plus the noise scale sigma",
                   }.get(kind, "a noise scale needs a spread of runs")
        alt = (" (a MAP fit or a posterior, regularised by the priors, needs 2: sample, or fit --objective student_t --map)"
               if kind in ("least_squares", "likelihood") and num_runs >= 2 else "")
        raise ValueError(f"{where}{num_runs} run{'s' if num_runs != 1 else ''}; {_what(kind)} of law {law.name!r} needs at "
                         f"least {need} ({counted}){alt}")
    if kind in ("map", "posterior") and num_runs <= law.num_free:
        return [f"{num_runs} runs for law {law.name!r}'s {_count_text(law)} (noise not counted): the priors, not the runs, "
                "decide part of this answer; add runs before trusting it"]
    if kind == "posterior" and small_design(num_runs, law):
        return [f"small design: {num_runs} runs for law {law.name!r}'s {_count_text(law)}, plus the noise: the priors "
                "decide part of this answer (the noise's most of all); backtest it (bayes-scaling backtest) and add runs "
                "before trusting a forecast"]
    return []


def data_warnings(runs, law, *, kind: str = "least_squares") -> list[str]:
    """Problems of the runs themselves for ``law``: zero residual degrees of freedom (least squares with as many
    runs as parameters), an input with one value (its term is not identified), runs all at one tokens-per-parameter
    ratio (the N and D terms cannot be told apart), a loss that does not vary, losses that look like perplexities."""
    out = []
    n = len(runs)
    if kind == "least_squares" and n == law.num_free:
        out.append(f"{n} runs for the law's {_count_text(law)}: zero residual degrees of freedom; the fit passes "
                   "through every run and says nothing about noise or error; add runs")
    elif kind == "likelihood" and n == law.num_free + 1:
        out.append(f"{n} runs for the law's {_count_text(law)} and the noise scale: zero residual degrees of freedom "
                   "for the noise; add runs")
    values = {k: runs.column(k) for k in law.inputs if getattr(runs, k, None) is not None}
    for name, v in values.items():
        if len(np.unique(v)) == 1 and n > 1:
            out.append(f"every run has the same {name} ({float(v[0]):.4g}): the law's {name} term is not identified, and "
                       f"nothing the fit says about {name} (exponent, optimum) can be trusted; add runs at other {name}")
    if "N" in values and "D" in values and len(np.unique(values["N"])) > 1:
        ratio = np.log(values["D"] / values["N"])
        if np.ptp(ratio) < 1e-6:
            out.append(f"every run has the same tokens per parameter (D/N = {float(np.exp(ratio[0])):.4g}): the data "
                       "cannot tell the N term from the D term, so N_opt and D_opt come from the law's form and the priors; "
                       "add runs at other D/N")
    y = np.asarray(runs.loss, float)
    logy = np.log(y)
    if n > 1 and np.ptp(logy) <= 1e-6 * max(1.0, float(np.max(np.abs(logy)))):
        out.append(f"the loss is the same in every run ({float(y[0]):.6g}): there is no trend to fit")
    if np.all(y > PERPLEXITY_LIKE):
        out.append(f"every loss is above {PERPLEXITY_LIKE:g} (smallest {float(y.min()):.4g}): these look like perplexities; "
                   "the laws here describe loss in nats per token, so give ln(perplexity) instead")
    return out


def explained_share(log_observed, log_predicted) -> float:
    """1 - var(residual) / var(log loss): the share of the variation of the log losses the law accounts for."""
    y = np.asarray(log_observed, float)
    r = y - np.asarray(log_predicted, float)
    if not np.all(np.isfinite(r)):
        return float("nan")
    v = float(np.var(y))
    return float("nan") if v == 0 else 1.0 - float(np.var(r)) / v


def fit_warnings(law, params: Mapping[str, Any], *, explained: float | None = None, forecast=None) -> list[str]:
    """Problems of a fitted parameter set: exponents at a bound, a law that explains little of the losses,
    non-finite or absurd compute-optimal forecasts (``forecast``: a table with ``budget`` and ``N_opt``/``D/N``
    or ``L*`` columns, medians for a posterior)."""
    out = []
    for p in law.free_params:
        v = float(np.asarray(params[p.name]))
        positive = not p.log and getattr(p.prior, "support", None) is constraints.positive
        if positive and not (EXPONENT_LOW <= v <= EXPONENT_HIGH):
            where = "0 or below" if v < EXPONENT_LOW else "a value no loss curve has"
            out.append(f"exponent {p.name} = {v:.3g} ran to {where} (outside {EXPONENT_LOW:g}-{EXPONENT_HIGH:g}): its term is "
                       "flat or a step, the law is degenerate on these runs and its forecasts are not meaningful; "
                       "check the data, fix the exponent (--fix), or use a simpler law")
        if not np.isfinite(v):
            out.append(f"{p.name} is {v}: the fit failed")
    if explained is not None and np.isfinite(explained) and explained < MIN_EXPLAINED:
        out.append(f"the law explains only {100 * max(explained, 0):.0f}% of the variation of the log losses: these runs "
                   "do not follow it (mislabelled columns, mixed families, or noise larger than the trend?)")
    if forecast is not None and len(forecast):
        bad = [c for c in ("N_opt", "D_opt", "L*") if c in forecast and not np.all(np.isfinite(np.asarray(forecast[c], float)))]
        if bad:
            out.append(f"forecast {', '.join(bad)} is not finite at some budgets: the fitted law has no usable optimum there")
        if "D/N" in forecast:
            r = np.asarray(forecast["D/N"], float)
            lo, hi = TOKENS_PER_PARAM
            off = np.isfinite(r) & ((r < lo) | (r > hi))
            if off.any():
                i = int(np.argmax(off))
                out.append(f"at {float(np.asarray(forecast['budget'])[i]):.3g} FLOPs the compute-optimal model has {r[i]:.3g} "
                           f"tokens per parameter, outside any believable {lo:g}-{hi:g}: the fitted law is degenerate here")
    return out


def extrapolation_warnings(budgets: Sequence[float], max_compute: float | None) -> list[str]:
    """A warning per budget at or beyond :data:`FAR_EXTRAPOLATION` times the largest run's compute."""
    if not max_compute:
        return []
    out = []
    for C in np.atleast_1d(np.asarray(budgets, float)):
        f = C / max_compute
        if f >= FAR_EXTRAPOLATION:
            out.append(f"budget {C:.3g} FLOPs is {f:,.0f}x the largest run ({max_compute:.3g}): a forecast this far rests on "
                       "the law's form holding over that range; treat its interval as a lower bound on the uncertainty")
    return out


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux: MemAvailable), or ``None`` where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_sampler_size(num_chains, num_warmup, num_samples, values_per_draw: int) -> None:
    """Refuse, before any work, chain counts below 1 and draws that would not fit in memory: each draw keeps
    ``values_per_draw`` numbers (parameters, noise, and the mean log loss of every run) plus 6 sample stats, in
    float64, held about three times over (device, host, the saved record)."""
    for name, v, least in (("num_chains", num_chains, 1), ("num_warmup", num_warmup, 1), ("num_samples", num_samples, 4)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise ValueError(f"{name} must be a whole number >= {least}" + (" (R-hat and ESS need 4 draws)" if least == 4 else "")
                             + f", not {v!r}")
    need = 3 * 8 * int(num_chains) * int(num_samples) * (int(values_per_draw) + 6)
    avail = available_memory()
    if avail is not None and need > 0.5 * avail:
        raise ValueError(f"num_samples={num_samples} x num_chains={num_chains} would hold ~{need / 2**30:.1f} GB of draws "
                         f"({values_per_draw + 6} numbers each), more than half the {avail / 2**30:.1f} GB available; "
                         "draw fewer (a few thousand draws are plenty for 90% intervals)")


def runs_sha256(runs, names) -> str:
    """SHA-256 of the data a posterior is sampled on: the float64 bytes of the loss and of each input column used
    (in ``names`` order). Another table with the same number of rows has another hash."""
    import hashlib

    h = hashlib.sha256()
    for name in ("loss",) + tuple(names):
        h.update(name.encode())
        h.update(np.ascontiguousarray(np.asarray(runs.column(name), np.float64)).tobytes())
    return h.hexdigest()

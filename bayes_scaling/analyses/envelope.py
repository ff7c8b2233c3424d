"""Approach 1 of Hoffmann et al.: the lower envelope of loss against compute (runs and checkpoints), and power laws
through it: N_opt = k C^a and D_opt = k C^b (each with scatter, :func:`~bayes_scaling.analyses.hyperparams.fit_power_law`),
and optionally the loss law L = E + A C^-alpha through the envelope's losses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..defaults import tokens_of
from ..diagnostics import Health
from ..posterior import DEFAULT_PROB
from .hyperparams import PowerLawPosterior, fit_power_law
from .isoflop import numeric_column, read_source

__all__ = ["Envelope", "envelope", "lower_envelope"]

def lower_envelope(C, loss) -> np.ndarray:
    """Indices of the points on the lower envelope of loss against compute: no other point has compute
    <= C and a lower loss (ties in C: the lowest loss). Sorted by C.

    >>> lower_envelope([1, 2, 3, 4], [5.0, 4.0, 4.5, 3.0]).tolist()
    [0, 1, 3]
    """
    C, loss = np.asarray(C, float), np.asarray(loss, float)
    order = np.lexsort((loss, C))
    keep, best = [], np.inf
    for i in order:
        if loss[i] < best:
            keep.append(int(i))
            best = loss[i]
    return np.asarray(keep, int)


@dataclass(frozen=True, eq=False)
class Envelope:
    """Approach 1: the envelope points (``C``, ``N``, ``D``, ``loss``, ``rows`` = 1-based source rows) and
    the power laws through them: ``n_law`` (N_opt = k C^a), ``d_law`` (D_opt = k C^b), and ``loss_law``
    (a :class:`~bayes_scaling.posterior.Posterior` of L = E + A C^-alpha, or None)."""

    points: dict[str, np.ndarray]
    n_law: PowerLawPosterior
    d_law: PowerLawPosterior
    loss_law: Any = None

    def health(self) -> Health:
        """The worst sampler health over the fits (N_opt law, D_opt law, loss law), each one's warnings named."""
        parts = {"N_opt law": self.n_law.health(), "D_opt law": self.d_law.health()}
        if self.loss_law is not None:
            parts["loss law"] = self.loss_law.health()
        return Health.combine(parts)

    def diagnostics(self) -> dict[str, Any]:
        return self.health().to_dict()

    def to_arviz(self) -> dict[str, Any]:
        """The envelope is several fits: ``{"N_opt law": InferenceData, "D_opt law": ..., "loss law": ...}``."""
        parts = {"N_opt law": self.n_law, "D_opt law": self.d_law}
        if self.loss_law is not None:
            parts["loss law"] = self.loss_law
        return {name: part.to_arviz() for name, part in parts.items()}

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(self.diagnostics()["warnings"])

    def forecast(self, budgets, *, prob: float = DEFAULT_PROB):
        import pandas as pd

        n = self.n_law.predict({"C": np.atleast_1d(budgets)}, prob=prob)
        d = self.d_law.predict({"C": np.atleast_1d(budgets)}, prob=prob)
        return pd.DataFrame({"budget": n["C"], "N_opt": n["median"], "N_opt_lo": n["lo"], "N_opt_hi": n["hi"],
                             "D_opt": d["median"], "D_opt_lo": d["lo"], "D_opt_hi": d["hi"]})


def envelope(source, *, C: str = "C", N: str = "N", loss: str = "loss", D: str | None = "D", loss_law: bool = True,
             seed: int = 0, num_warmup: int = 500, num_samples: int = 500, num_chains: int = 4,
             sep: str | None = None) -> Envelope:
    """Approach 1 on a table of runs, with checkpoints as extra rows (each with its own compute C and tokens
    D so far). D defaults to C/(6N). At least 3 envelope points are needed (4 with the loss law)."""
    df, name = read_source(source, sep)
    if len(df) == 0:
        raise ValueError(f"{name}: the table is empty")
    Cv, Nv, Lv = numeric_column(df, C, name), numeric_column(df, N, name), numeric_column(df, loss, name)
    Dv = numeric_column(df, D, name) if D is not None and D in df.columns else tokens_of(Cv, Nv)
    idx = lower_envelope(Cv, Lv)
    if len(idx) < 3:
        raise ValueError(f"{name}: only {len(idx)} run(s) on the lower envelope of loss against compute; a power law "
                         "with scatter needs at least 3 (add runs or checkpoints at more budgets)")
    pts = {"C": Cv[idx], "N": Nv[idx], "D": Dv[idx], "loss": Lv[idx], "rows": idx + 1}
    kw = dict(seed=seed, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains)
    n_law = fit_power_law({"C": pts["C"]}, pts["N"], **kw)
    d_law = fit_power_law({"C": pts["C"]}, pts["D"], **kw)
    ll = None
    if loss_law and len(idx) >= 5:
        from ..data import Runs
        from ..sampling import sample_posterior

        runs = Runs(N=pts["N"], D=pts["D"], C=pts["C"], loss=pts["loss"], source=f"{name} (envelope)")
        ll = sample_posterior("power_law_floor", runs, noise_varies_with_compute=False, **kw)
    return Envelope(points=pts, n_law=n_law, d_law=d_law, loss_law=ll)

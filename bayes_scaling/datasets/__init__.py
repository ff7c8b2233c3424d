"""Bundled real training-run data, with provenance (see ATTRIBUTION.md in this folder).

>>> runs = load_chinchilla()
>>> len(runs), len(load_chinchilla(subset="all"))
(240, 245)
"""

from __future__ import annotations

from importlib import resources

import numpy as np

from ..data import Runs, load_runs

__all__ = ["load_chinchilla", "chinchilla_path", "CHINCHILLA_CITATION"]

CHINCHILLA_CITATION = (
    "Hoffmann et al. 2022 (arXiv:2203.15556), Fig. 4, digitized by Epoch AI for Besiroglu et al. 2024 "
    "(arXiv:2404.10102); github.com/epoch-research/analyzing-chinchilla @ 9225883"
)


def chinchilla_path() -> str:
    """Path of the bundled CSV (245 rows; columns ``Model Size``, ``Training FLOP``, ``loss``)."""
    return str(resources.files(__package__).joinpath("epoch_chinchilla.csv"))


def load_chinchilla(subset: str = "standard") -> Runs:
    """The Chinchilla runs as :class:`~bayes_scaling.Runs` (D = C / 6N).

    subset: ``"standard"`` (240 runs: Epoch's default, dropping the 5 highest losses) or ``"all"`` (245).
    """
    if subset not in ("standard", "all"):
        raise ValueError(f"unknown subset {subset!r}; use 'standard' (240 runs) or 'all' (245)")
    runs = load_runs(chinchilla_path(), N="Model Size", C="Training FLOP", loss="loss", D=None)
    runs = Runs(**{**runs.__dict__, "source": "bundled epoch_chinchilla.csv"})
    if subset == "all":
        return runs
    keep = runs.loss < np.sort(runs.loss)[-5]
    return runs.select(keep)

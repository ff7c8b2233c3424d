"""A backtest's calibration figure: the PIT histogram of the held-out runs and their coverage against the nominal
interval mass, with the extrapolation term and without it (:class:`~bayes_scaling.backtests.Backtest`)."""

from __future__ import annotations

import numpy as np

__all__ = ["plot_calibration"]


def plot_calibration(bt, without=None, path=None, *, bins: int = 10):
    """Two panels: the PIT histogram (flat when calibrated, U-shaped when the intervals are too narrow) and coverage
    against nominal mass at 5%..95% (on the diagonal when calibrated). ``without``: the same backtest scored without
    the discrepancy, drawn for comparison. Saves to ``path`` when given; returns the figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    edges = np.linspace(0, 1, bins + 1)
    pairs = [(bt, "with the extrapolation term" if bt.discrepancy is not None else "parameters + noise", "C0")]
    if without is not None and without is not bt:
        pairs.append((without, "parameters + noise only", "C1"))
    masses = np.linspace(0.05, 0.95, 19)
    for res, label, colour in pairs:
        pit = res.points["pit"].to_numpy()
        a.hist(pit, bins=edges, histtype="step", color=colour, label=label, linewidth=1.5)
        cover = [np.mean(np.abs(pit - 0.5) <= m / 2) for m in masses]
        b.plot(masses, cover, "o-", color=colour, markersize=3, label=label)
    a.axhline(len(bt.points) / bins, color="0.5", linestyle=":", linewidth=1)
    a.set_xlabel("PIT of held-out runs")
    a.set_ylabel("runs")
    a.legend(fontsize=7, loc="upper center")
    b.plot([0, 1], [0, 1], color="0.5", linestyle=":", linewidth=1)
    b.set_xlabel("nominal interval mass")
    b.set_ylabel("share of held-out runs inside")
    b.set_xlim(0, 1)
    b.set_ylim(0, 1)
    fig.suptitle(f"backtest of {bt.name}: {len(bt.points)} held-out runs, {len(bt.cuts)} cuts", fontsize=9)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
        plt.close(fig)
    return fig

"""Figures with credible bands: what a fit or a posterior says, drawn so that people can decide from it.

Every function takes what was fitted (a :class:`~bayes_scaling.posterior.Posterior`, a
:class:`~bayes_scaling.fitting.PointFit`, or a ``(law, draws)`` pair of a law and a dict of parameter draws),
draws on an optional matplotlib ``ax`` and returns it; small multiples return an array of Axes. matplotlib
and arviz are imported inside the functions, so ``import bayes_scaling`` does not load them.

Bands are equal-tailed intervals over the posterior draws of the *same* derived functions the forecast
tables use (:mod:`bayes_scaling.derived`, vmapped over draws): what a figure shows and what a table prints
are one computation. ``prob`` is the band's mass (default 0.9); fan charts draw several nested masses,
``prob`` among them, and every legend names the masses drawn. Bands are outlined and their medians drawn
thin on top, so that a band narrower than a line still shows. A :class:`PointFit` has one "draw": its
figures show the fitted line without a band. Values labelled at target budgets sit where they cover no
drawn point (the place is chosen when the figure is drawn); forecasts against compute mark the largest
run's compute with a dotted line, where the data end and extrapolation begins.

===============================  =================================================================
:func:`plot_fit`                 observed runs against the fitted law, curves with bands per model
                                 size (``by="N"``: loss vs tokens) or per token count (``by="D"``)
:func:`plot_loss_frontier`       loss at the compute-optimum L*(C) with its band (and one new run's
                                 predictive band) out to the target budgets
:func:`plot_allocation`          fan chart of N_opt or D_opt (or D/N) against compute, log-log, with a
                                 fixed tokens-per-parameter line for reference
:func:`plot_prior_posterior`     each parameter's prior and posterior, one panel each
:func:`plot_predictive_check`    observed runs inside their posterior-predictive band
:func:`plot_pairs`, :func:`plot_trace`, :func:`plot_rank`   arviz pair, trace and rank plots
:func:`plot_families`            one small frontier panel per family (batch or hierarchical posteriors)
:func:`plot_isoflop`             IsoFLOP curves: per budget the runs, the fitted parabola in log N with its
                                 band, and the vertex N_opt with its interval
:func:`plot_isoflop_vertices`    N_opt against compute, log-log: the law N_opt = k C^a with its band, the
                                 budgets' vertices with intervals, forecasts at target budgets
:func:`plot_critical_batch`      steps against batch size per group, log-log: observed points, S(B) =
                                 S_min + E_min/B with its band, B_crit and/or Zhang's CBS with intervals
:func:`plot_critical_batch_law`  critical batch size against model size (or D, or the target loss),
                                 log-log: per-group intervals, the power law's band and forecasts
===============================  =================================================================

The IsoFLOP and critical-batch-size figures take the posteriors of :mod:`bayes_scaling.analyses.isoflop` and
:mod:`bayes_scaling.analyses.batch_size`; their bands are quantiles over the same draws those modules' tables use.
"""

from .common import DEFAULT_FAN, MAX_DRAWS
from .loss import plot_allocation, plot_families, plot_fit, plot_loss_frontier
from .posterior_plots import plot_pairs, plot_predictive_check, plot_prior_posterior, plot_rank, plot_trace
from .sweeps import plot_critical_batch, plot_critical_batch_law, plot_isoflop, plot_isoflop_vertices

__all__ = [
    "plot_fit",
    "plot_loss_frontier",
    "plot_allocation",
    "plot_prior_posterior",
    "plot_predictive_check",
    "plot_pairs",
    "plot_trace",
    "plot_rank",
    "plot_families",
    "plot_isoflop",
    "plot_isoflop_vertices",
    "plot_critical_batch",
    "plot_critical_batch_law",
    "DEFAULT_FAN",
    "MAX_DRAWS",
]

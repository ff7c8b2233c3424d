"""bayes_scaling: fit scaling laws to small training runs and forecast large ones, with uncertainty.

Nouns: :class:`Runs` (a validated run table), :class:`Law` (a scaling law declared once),
:class:`PointFit` (an optimizer result). Verbs: :func:`load_runs`, :func:`get_law`, :func:`fit_point`,
and the derived quantities in :mod:`bayes_scaling.derived` (compute-optimal N and D, loss at a budget,
compute for a target loss); :func:`sample_posterior` (NUTS) returns a :class:`Posterior` with credible
intervals on all of them. :func:`write_report` writes an HTML/Markdown/JSON report of a posterior;
:mod:`bayes_scaling.plots` draws fits and forecasts with credible bands (matplotlib loads only then).
Many families of runs: :func:`fit_point_batch` and :func:`sample_posterior_batch` are the same fits and posteriors
over a leading family axis (:class:`BatchFit`, :class:`BatchPosterior`; :func:`write_family_report`). Every result
answers ``health()`` (one :class:`Health`); noise models are :class:`Noise` types (:data:`NOISE`).

Beyond the loss law: :func:`critical_batch_size` (batch-size sweeps -> McCandlish's B_crit and Zhang et
al.'s CBS, and their scaling laws), :func:`hyperparam_law` / :func:`fit_power_law` (optimal batch size and
learning rate as power laws in C or in N and D), :func:`isoflop` / :func:`isoflop_batch` (Approach 2) and
:func:`envelope` (Approach 1), each with posteriors.

Planning: :func:`plan_losses` (any (N, D) plan's loss, P(plan A beats plan B)), :func:`inference_aware` (the model
that reaches a loss at the least training + inference compute), :func:`best_for_budget` and :func:`cost_to_reach`,
costed on a :class:`Hardware` (accelerator, MFU, price, count) in GPU-hours, days, dollars and energy;
:func:`rank_candidates` and :func:`propose_batch`: which small runs to train next, per FLOP.
"""

from .analyses.batch_size import CriticalBatchPosterior, critical_batch_size, forecast_critical_batch, load_batch_sweep
from .analyses.envelope import Envelope, envelope
from .analyses.hierarchical import HierarchicalPosterior, sample_hierarchical
from .analyses.hyperparams import PowerLawPosterior, fit_power_law, hyperparam_law
from .analyses.isoflop import IsoflopPosterior, isoflop, isoflop_batch
from .analyses.isoflop_backtest import backtest_isoflop
from .backtests import Backtest, backtest
from .batch import BatchFit, fit_point_batch
from .batch_posterior import BatchPosterior, sample_posterior_batch
from .compile_cache import enable_compilation_cache
from .cost import ACCELERATORS, Hardware
from .data import Runs, load_runs
from .datasets import load_chinchilla
from .derived import (
    compute_for_loss,
    compute_optimal,
    forecast_table,
    loss_at_optimum,
    loss_of_plan,
    tokens_per_param,
)
from .design import propose_batch, rank_candidates
from .diagnostics import Health
from .discrepancy import Discrepancy, default_discrepancy
from .family_report import write_family_report
from .fitting import PointFit, fit_point
from .laws import Law, Param, get_law, list_laws, register_law
from .model import make_model
from .noise import NOISE, Noise
from .planning import best_for_budget, cost_to_reach, inference_aware, plan_losses
from .posterior import Posterior
from .report import write_report
from .sampling import sample_posterior
from .stacking import StackedPosterior, backtest_stacked, candidate_laws, sample_stacked
from .user_laws import load_law

__version__ = "0.1.0"

__all__ = [
    "plan_losses",
    "rank_candidates",
    "propose_batch",
    "inference_aware",
    "best_for_budget",
    "cost_to_reach",
    "Hardware",
    "ACCELERATORS",
    "backtest",
    "Backtest",
    "backtest_isoflop",
    "backtest_stacked",
    "sample_stacked",
    "StackedPosterior",
    "candidate_laws",
    "Discrepancy",
    "default_discrepancy",
    "load_law",
    "Runs",
    "load_runs",
    "load_chinchilla",
    "Law",
    "Param",
    "get_law",
    "list_laws",
    "register_law",
    "PointFit",
    "fit_point",
    "compute_optimal",
    "tokens_per_param",
    "loss_at_optimum",
    "compute_for_loss",
    "loss_of_plan",
    "forecast_table",
    "make_model",
    "sample_posterior",
    "Posterior",
    "fit_point_batch",
    "BatchFit",
    "sample_posterior_batch",
    "BatchPosterior",
    "write_family_report",
    "sample_hierarchical",
    "HierarchicalPosterior",
    "Health",
    "Noise",
    "NOISE",
    "write_report",
    "enable_compilation_cache",
    "critical_batch_size",
    "load_batch_sweep",
    "forecast_critical_batch",
    "CriticalBatchPosterior",
    "fit_power_law",
    "hyperparam_law",
    "PowerLawPosterior",
    "isoflop",
    "isoflop_batch",
    "IsoflopPosterior",
    "envelope",
    "Envelope",
    "__version__",
]

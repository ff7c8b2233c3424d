"""Calibration of the posterior on simulated data (issue 3): over 100 datasets from a known truth with the
real Chinchilla design and realistic noise, the 90% credible intervals of alpha, beta, E and log N_opt at
an extrapolated budget must cover the truth at a rate consistent with 90%.

Tolerance: the number of covering intervals out of 100 is Binomial(100, 0.9) when calibrated; we accept
the central 99% range of that distribution, [82, 97] (scipy.stats.binom.ppf(0.005 / 0.995, 100, 0.9)),
separately for each of the four quantities.

The 100 posteriors are sampled in one batch call (``sample_posterior_batch``: one compile, each dataset its own
adaptation and chain); ``tests/test_batch.py`` checks that a batch posterior is the single-family posterior.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binom

from bayes_scaling import compute_optimal, get_law, load_runs
from bayes_scaling.batch_posterior import sample_posterior_batch

TRUTH = {"E": 1.8172, "A": 477.8, "B": 2143.4, "alpha": 0.3473, "beta": 0.3672}
SIGMA, NU = 0.005, 4.0  # residual scale of the real runs under the Student-t model (posterior median ~0.0045)
C_EXTRAP = 1e25  # ~800x the largest run
NUM_DATASETS = 100


@pytest.mark.slow
def test_ninety_percent_intervals_cover_ninety_percent(chinchilla_runs):
    law = get_law("chinchilla")
    log_n_true = float(np.log(compute_optimal(law, TRUTH, C_EXTRAP)[0]))
    mean = np.asarray(law.predict(TRUTH, {"N": chinchilla_runs.N, "D": chinchilla_runs.D}))
    rng = np.random.default_rng(2024)
    frames = [pd.DataFrame({"N": chinchilla_runs.N, "D": chinchilla_runs.D, "dataset": f"d{i:03d}",
                            "loss": mean * np.exp(SIGMA * rng.standard_t(NU, size=mean.shape))})
              for i in range(NUM_DATASETS)]
    batch = sample_posterior_batch(law, load_runs(pd.concat(frames, ignore_index=True), family="dataset"),
                                   num_warmup=300, num_samples=400, num_chains=1)
    assert len(batch.posteriors) == NUM_DATASETS and not batch.skipped
    hits = {"alpha": 0, "beta": 0, "E": 0, "log_N_opt": 0}
    for post in batch.posteriors.values():
        for name in ("alpha", "beta", "E"):
            lo, hi = np.quantile(post.draws[name], [0.05, 0.95])
            hits[name] += lo <= TRUTH[name] <= hi
        lo, hi = np.quantile(np.log(post.n_opt(C_EXTRAP)), [0.05, 0.95])
        hits["log_N_opt"] += lo <= log_n_true <= hi
    lo_ok, hi_ok = binom.ppf(0.005, NUM_DATASETS, 0.9), binom.ppf(0.995, NUM_DATASETS, 0.9)
    print("coverage of 90% intervals over", NUM_DATASETS, "datasets:", hits)
    for name, count in hits.items():
        assert lo_ok <= count <= hi_ok, (name, count, hits)

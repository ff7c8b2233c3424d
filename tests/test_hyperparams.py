"""Hyperparameter laws: recovery of DeepSeek- and Step-Law-form truths from simulated sweeps, the optimum and
near-optimal selections, and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.analyses.hyperparams import fit_power_law, hyperparam_law, sweep_optima

FAST = dict(num_warmup=300, num_samples=300, num_chains=2)


def _sweep(seed=0):
    """Per budget C, a grid of batch sizes and learning rates; loss is a bowl in (log B, log lr) around DeepSeek's
    optima B_opt = 0.292 C^0.327, lr_opt = 0.3118 C^-0.125, plus 0.1% noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for C in np.logspace(17, 20, 7):
        b0, l0 = 0.292 * C ** 0.327, 0.3118 * C ** -0.125
        for fb in 2.0 ** np.arange(-2, 2.5, 0.5):
            for fl in 2.0 ** np.arange(-2, 2.5, 0.5):
                loss = 3.0 * (1 + 0.01 * np.log(fb) ** 2 + 0.02 * np.log(fl) ** 2) * np.exp(1e-3 * rng.standard_normal())
                rows.append({"C": C, "batch_size": b0 * fb, "lr": l0 * fl, "loss": loss})
    return pd.DataFrame(rows)


def test_deepseek_form_recovery():
    # the per-budget optimum sits on the sweep's grid (factors of sqrt 2 around the truth, noise 0.1%): the
    # exponent is recovered to within the grid's quantisation, and inside the 99% interval
    fit = hyperparam_law(_sweep(), target="batch_size", by=("C",), **FAST)
    lo, hi = np.quantile(fit.exponents["C"], [0.005, 0.995])
    assert lo < 0.327 < hi and abs(np.median(fit.exponents["C"]) - 0.327) < 0.03


@pytest.mark.slow
def test_deepseek_near_optimal_recovery():
    # DeepSeek fitted to every run within a tolerance of its budget's best loss, not just the best one
    near = hyperparam_law(_sweep(), target="lr", select="near_optimal", tol=0.005, **FAST)
    lo, hi = np.quantile(near.exponents["C"], [0.005, 0.995])
    assert lo < -0.125 < hi and abs(np.median(near.exponents["C"]) + 0.125) < 0.03
    pred = near.predict({"C": [1e23]})
    assert pred["lo"][0] < 0.3118 * 1e23 ** -0.125 < pred["hi"][0]


@pytest.mark.slow
def test_step_law_form_recovery():
    # Step Law: lr_opt = 1.79 N^-0.713 D^0.307, 3% scatter; N and D vary independently
    rng = np.random.default_rng(1)
    N = np.exp(rng.uniform(np.log(1e8), np.log(1e10), 30))
    D = np.exp(rng.uniform(np.log(1e10), np.log(1e12), 30))
    lr = 1.79 * N ** -0.713 * D ** 0.307 * np.exp(0.03 * rng.standard_normal(30))
    fit = fit_power_law({"N": N, "D": D}, lr, **FAST)
    for name, truth in (("N", -0.713), ("D", 0.307)):
        lo, hi = np.quantile(fit.exponents[name], [0.005, 0.995])
        assert lo < truth < hi, (name, lo, hi)
    assert fit.diagnostics()["divergences"] == 0


def test_selection_and_bad_input():
    df = pd.DataFrame({"C": [1, 1, 1, 2, 2, 2], "lr": [1, 2, 3, 1, 2, 3], "loss": [3.0, 2.0, 2.004, 2.5, 2.6, 1.9]})
    assert sweep_optima(df).index.tolist() == [1, 5]
    assert sweep_optima(df, select="near_optimal", tol=0.0025).index.tolist() == [1, 2, 5]
    with pytest.raises(ValueError, match=r"column 'lr', row 2: .* not a positive number"):
        hyperparam_law(df.assign(lr=[1, -2, 3, 1, 2, 3]), target="lr")
    with pytest.raises(ValueError, match="column 'batch' not found"):
        hyperparam_law(df, target="batch")
    with pytest.raises(ValueError, match=r"budget C=3 has 1 run \(row 7\)"):
        sweep_optima(pd.concat([df, pd.DataFrame({"C": [3], "lr": [1], "loss": [2.0]})], ignore_index=True))
    with pytest.raises(ValueError, match="need at least 3"):
        fit_power_law({"C": [1.0, 2.0]}, [1.0, 2.0])

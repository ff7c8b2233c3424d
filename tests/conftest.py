"""Shared fixtures. Tests run in float64 (the CLI and notebooks do too); float32 is tested explicitly."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared(*parts) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path


@pytest.fixture(scope="session")
def chinchilla_runs():
    from bayes_scaling import load_chinchilla

    return load_chinchilla()


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_runs):
    from bayes_scaling import fit_point

    return fit_point("chinchilla", chinchilla_runs)


@pytest.fixture(scope="session")
def datablations_182():
    from bayes_scaling import load_runs

    return load_runs(
        shared("muennighoff2023_datablations", "c4_runs_default_fit_subset_DERIVED.csv"),
        N="N_params", D="D_tokens", U="U_unique_tokens", loss="val_loss",
    )


def loguniform(rng, lo, hi, size):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


@pytest.fixture(scope="session")
def demo_report(tmp_path_factory):
    """`bayes-scaling demo --out DIR` with a short posterior (2 chains x (100 + 100)): the report folder, shared by
    the plot, report and browser tests, so that one sampling run serves them all."""
    import matplotlib

    matplotlib.use("Agg")
    from bayes_scaling.cli import main

    out = tmp_path_factory.mktemp("demo") / "report"
    code = main(["demo", "--out", str(out), "--chains", "2", "--warmup", "100", "--draws", "100", "--seed", "1"])
    assert code in (0, 1), code  # 1: a run this short may be flagged unhealthy (few effective draws); that is reported
    return out


@pytest.fixture(scope="session")
def small_posterior(demo_report):
    from bayes_scaling import Posterior

    return Posterior.load(demo_report / "posterior.nc")

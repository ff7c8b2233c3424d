"""Shared fixtures. Tests run in float64 (the CLI and notebooks do too); float32 is tested explicitly."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)
# the CLI puts one CPU device on each core when it is the first thing to run JAX in a process; in-process CLI
# tests keep one device whatever their order (tests/test_jobs.py checks the several-device CLI in a subprocess)
os.environ.setdefault("BAYES_SCALING_CPU_DEVICES", "1")
# in-process CLI tests compile in the process only (no programs written to the user's cache folder);
# tests/test_compile_cache.py checks the cache in fresh processes of their own
os.environ["BAYES_SCALING_CACHE_DIR"] = "off"

DATA = Path(__file__).resolve().parent / "data"  # real tables the tests read, with attribution (README.md there)


def data(name: str) -> Path:
    """A real run table bundled with the tests (see tests/data/README.md); a missing one is an error, not a skip."""
    path = DATA / name
    assert path.is_file(), f"tests/data/{name} is missing (it ships with the repository)"
    return path


@pytest.fixture(scope="session")
def chinchilla_runs():
    from bayes_scaling import load_chinchilla

    return load_chinchilla()


@pytest.fixture(scope="session")
def chinchilla_fit(chinchilla_runs):
    from bayes_scaling import fit_point

    return fit_point("chinchilla", chinchilla_runs, strategy="grid")  # the 4500-start grid of Hoffmann/Epoch


@pytest.fixture(scope="session")
def datablations_182():
    from bayes_scaling import load_runs

    return load_runs(
        data("c4_runs_default_fit_subset_DERIVED.csv"),
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


# One short posterior each for the published sweeps, shared by their module's tests and the plot tests (sampling
# and compiling them is most of those tests' time): 2 chains x (300 + 300).
SWEEP_FAST = dict(num_warmup=300, num_samples=300, num_chains=2)
POR_CONFIG = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]


def porian(sel):
    import pandas as pd

    pts = pd.read_csv(data("isoflop_points.csv"))
    for k, v in zip(POR_CONFIG, sel):
        pts = pts[pts[k] == v]
    return pts


@pytest.fixture(scope="session")
def zhang_critical_batch():
    """Zhang et al. 2024's sweep (steps to the target per model size and batch size in sequences)."""
    from bayes_scaling.analyses.batch_size import critical_batch_size

    path = data("steps_to_target_loss_DERIVED.csv")
    return critical_batch_size(path, batch="batch_size_seqs", steps="steps_to_target", group="model_size", **SWEEP_FAST)


@pytest.fixture(scope="session")
def zhang_size_law(zhang_critical_batch):
    """Zhang's CBS = k N^p through the five sizes' posteriors."""
    return zhang_critical_batch.scaling_law("N_params_nominal", **SWEEP_FAST)


@pytest.fixture(scope="session")
def porian_tuned():
    """Porian et al. 2024's tuned configuration (rw, tuned, short, const, standard, val)."""
    from bayes_scaling.analyses.isoflop import isoflop

    return isoflop(porian(("rw", "tuned", "short", "const", "standard", "val")), C="flops", N="n", D="t", **SWEEP_FAST)


@pytest.fixture(autouse=True, scope="module")
def _fresh_compilation_caches():
    """Drop compiled programs after each test module. One pytest process compiles hundreds of XLA programs
    over the whole suite; keeping all of them alive made XLA abort while compiling late in the run (seen
    twice at the same test in the full suite, never when that file ran alone)."""
    yield
    from bayes_scaling import batch, sampling

    sampling._CACHE.clear()
    batch._SHARDED.clear()
    jax.clear_caches()

"""IsoFLOP (Approach 2) and envelope (Approach 1) posteriors: Porian et al.'s published exponents, recovery of a
known truth from simulated grids, the off-centre bias of the parabola method, and bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import data

from bayes_scaling.analyses.envelope import envelope, lower_envelope
from bayes_scaling.analyses.isoflop import isoflop, isoflop_batch, prepare_isoflop

FAST = dict(num_warmup=300, num_samples=300, num_chains=2)
CONFIG = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]

# Chinchilla-form truth with alpha != beta (asymmetric IsoFLOP curves); a = beta / (alpha + beta) = 0.25
TRUE = dict(E=1.69, A=406.4, B=410.7, alpha=0.6, beta=0.2)


def _porian(sel):
    pts = pd.read_csv(data("isoflop_points.csv"))
    for k, v in zip(CONFIG, sel):
        pts = pts[pts[k] == v]
    return pts


def _n_opt(C, p=TRUE):
    al, be = p["alpha"], p["beta"]
    G = (al * p["A"] / (be * p["B"])) ** (1 / (al + be))
    return G * (C / 6) ** (be / (al + be))


def _grid(drift, *, half=2.0, n=9, noise=0.002, seed=0):
    """IsoFLOP grid on the true law: per budget, n sizes spanning +-half in log N around N_opt(C) e^drift_k."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, C in enumerate(np.logspace(18, 21, 7)):
        for u in np.linspace(-half, half, n):
            N = _n_opt(C) * np.exp(drift[k] + u)
            D = C / (6 * N)
            L = TRUE["E"] + TRUE["A"] * N ** -TRUE["alpha"] + TRUE["B"] * D ** -TRUE["beta"]
            rows.append({"C": C, "N": N, "D": D, "loss": L * np.exp(noise * rng.standard_normal())})
    return pd.DataFrame(rows)


def test_porian_tuned_exponent(porian_tuned):
    # Porian et al. 2024, (rw, tuned, short, const, standard, val): a = 0.497, 95% CI (0.491, 0.505) from their
    # bootstrap of weighted fits to Akima-interpolated optima. Ours is a posterior over parabola vertices with a
    # scatter term; the issue asks for the median within 0.01 and an interval of comparable width (we allow up
    # to 3x theirs: tau, the vertices' scatter about the law, is part of our interval and not of theirs).
    post = porian_tuned  # conftest: 2 chains x (300 + 300), shared with the plot tests
    a = np.median(post.a)
    lo, hi = np.quantile(post.a, [0.025, 0.975])
    assert abs(a - 0.497) < 0.01
    assert lo < 0.497 < hi and hi - lo < 3 * (0.505 - 0.491)
    # b: D_opt = C / (6 N_opt) under the standard parameter count, so b = 1 - a draw by draw (theirs: 0.503)
    np.testing.assert_allclose(post.b, 1 - post.a, atol=1e-6)
    assert post.diagnostics()["divergences"] == 0
    fc = post.forecast([1e21])
    assert fc["N_opt_lo"][0] < fc["N_opt"][0] < fc["N_opt_hi"][0]


@pytest.mark.slow
def test_porian_kaplan_reproduction():
    # "Reproducing Kaplan et al." (rw, base, long, kaplan, kaplan, train): a = 0.835 (0.824, 0.846). Its grids do
    # not centre on the optimum (the best run is the second-smallest model at most budgets): warnings expected.
    with pytest.warns(UserWarning, match="off-centre"):
        post = isoflop(_porian(("rw", "base", "long", "kaplan", "kaplan", "train")), C="flops", N="n", D="t",
                       num_warmup=500, num_samples=500, num_chains=4)
    assert abs(np.median(post.a) - 0.835) < 0.015
    lo, hi = np.quantile(post.a, [0.025, 0.975])
    assert lo < 0.835 < hi


def test_recovery_centred_and_offcentre_bias():
    truth = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])
    # centred grids (every budget's sizes centred on its true optimum, +-2 in log N, all runs used): the
    # parabola's vertex is offset by the curve's asymmetry by the same log-amount at every budget (the curve's
    # shape in log N / N_opt does not change with C), so a is recovered; no warning. Tolerance 0.01: about 1.5
    # posterior sd (~0.006); the median sits 0.004 from the truth for this seed.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*sampler:")  # short chains may be flagged; the grid may not
        centred = isoflop(_grid(np.zeros(7)), window=None, **FAST)
    lo, hi = np.quantile(centred.a, [0.005, 0.995])
    assert lo < truth < hi and abs(np.median(centred.a) - truth) < 0.01
    # off-centre grids drifting from 1.5 below to 1.5 above the optimum (in log N) across budgets: the vertex
    # offset now changes with C and biases a (to ~0.297 here, +19%; point parabola fits give 0.274). The
    # posterior cannot see it: the truth falls outside its 95% interval. The warning names the cause.
    with pytest.warns(UserWarning, match="off-centre"):
        off = isoflop(_grid(np.linspace(-1.5, 1.5, 7)), window=None, **FAST)
    bias = np.median(off.a) - truth
    assert bias > 0.02 and bias > 4 * abs(np.median(centred.a) - truth)
    assert np.quantile(off.a, 0.025) > truth
    assert sum("off-centre" in w for w in off.warnings) >= 2


@pytest.mark.slow
def test_batch_matches_single():
    # two configurations of different sizes padded into one call: the same numbers as one at a time up to MCMC
    # noise (different random streams), i.e. padding/masking leaves each posterior unchanged
    a = _grid(np.zeros(7)).assign(cfg="a")
    b = _grid(np.zeros(7), n=7, seed=1).query("C < 5e20").assign(cfg="b")
    both = isoflop_batch(pd.concat([a, b]), by=["cfg"], window=None, **FAST)
    single = isoflop(b.drop(columns="cfg"), window=None, **FAST)
    assert set(both) == {"a", "b"}
    assert both["b"].vertex.shape[1] == 6 and both["a"].vertex.shape[1] == 7
    assert abs(np.median(both["b"].a) - np.median(single.a)) < 2 * np.std(single.a)
    assert both["a"].diagnostics()["divergences"] == 0
    # with scatter the vertices may leave the line: tau is sampled (boundary-avoiding prior, so > 0) and the
    # interval of a can only widen
    sc = isoflop(b.drop(columns="cfg"), window=None, scatter=True, **FAST)
    assert np.all(sc.tau > 0) and np.std(sc.a) > 0.9 * np.std(single.a)


def test_bad_input():
    g = _grid(np.zeros(7))
    with pytest.raises(ValueError, match=r"column 'loss', row 3"):
        prepare_isoflop(g.assign(loss=np.where(np.arange(len(g)) == 2, -1.0, g["loss"])))
    dup = pd.concat([g, g.iloc[[4]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"row 64: size .* appears twice"):
        prepare_isoflop(dup)
    few = pd.concat([g, pd.DataFrame({"C": [1e22, 1e22], "N": [1e10, 2e10], "D": [1e11, 5e10], "loss": [2.0, 2.1]})], ignore_index=True)
    with pytest.warns(UserWarning, match="budget 1e\\+22 has 2 run"):
        d = prepare_isoflop(few)
    assert d.num_budgets == 7
    # the best run at the edge of a budget's sizes: not bracketed
    edge = g[~((g["C"] == g["C"].min()) & (g["N"] < _n_opt(g["C"].min()) * 1.01))]
    with pytest.warns(UserWarning, match="do not bracket the minimum"):
        prepare_isoflop(edge)
    with pytest.raises(ValueError, match="at least 2"):
        prepare_isoflop(g[g["C"] == g["C"].min()])
    with pytest.raises(ValueError, match="column 'D', row 2: empty"):
        prepare_isoflop(g.assign(D=np.where(np.arange(len(g)) == 1, np.nan, g["D"])))
    with pytest.raises(ValueError, match="column 'flops' not found"):
        prepare_isoflop(g, C="flops")


def test_lower_envelope():
    # ties in C keep the lower loss; a point beaten by an earlier (cheaper) one is dropped
    assert lower_envelope([1, 1, 2, 3], [3.0, 2.0, 2.5, 1.0]).tolist() == [1, 3]
    assert lower_envelope([3, 2, 1], [1.0, 2.0, 3.0]).tolist() == [2, 1, 0]
    with pytest.raises(ValueError, match="only 1 run"):
        envelope(pd.DataFrame({"C": [1.0, 2.0], "N": [1.0, 1.0], "loss": [1.0, 2.0]}))


@pytest.mark.slow
def test_envelope():
    # runs on the Chinchilla law over a dense design (40 sizes, each with 60 checkpoints), kept to the budgets
    # 1e18-1e21 where every compute-optimal size lies inside the design: the envelope's N_opt and D_opt exponents
    # tend to the compute-optimal a = beta/(alpha+beta) and 1 - a. Tolerance 0.03: the discrete design moves
    # the envelope in steps of the size grid (a factor 1.19).
    p = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)
    rows = []
    for N in np.logspace(7, 10, 40):
        for D in N * np.logspace(0, 4, 60):
            L = p["E"] + p["A"] * N ** -p["alpha"] + p["B"] * D ** -p["beta"]
            rows.append({"N": N, "D": D, "C": 6 * N * D, "loss": L})
    runs = pd.DataFrame(rows).query("1e18 <= C <= 1e21")
    env = envelope(runs, loss_law=False, **FAST)
    truth = p["beta"] / (p["alpha"] + p["beta"])
    assert abs(np.median(env.n_law.exponents["C"]) - truth) < 0.03
    assert abs(np.median(env.d_law.exponents["C"]) - (1 - truth)) < 0.03
    assert set(env.forecast([1e22]).columns) >= {"N_opt", "N_opt_lo", "N_opt_hi", "D_opt"}

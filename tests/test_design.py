"""Which run next (issue 15, part 4): the expected posterior variance after a candidate run, estimated by simulating
its outcome and reweighting the draws, against the closed form of a conjugate Gaussian linear model; the ranking and
the batch; the ``next-run`` command and its one-line errors. The sequential benchmark against an IsoFLOP grid is
``benchmarks/bench_design.py`` (results in benchmarks/RESULTS.md)."""

import json

import numpy as np
import numpyro.distributions as dist
import pytest

from bayes_scaling import Law, Param, Posterior
from bayes_scaling.cli import main
from bayes_scaling.design import parse_target, propose_batch, rank_candidates, target_draws

SIGMA = 0.05
M0 = np.array([1.0, -0.05])
S0 = np.array([[0.04, -0.001], [-0.001, 0.0004]])


def _linear_law():
    # log L = c0 + c1 log(N / 1e9): linear in the parameters, so a Gaussian posterior stays Gaussian after a run
    return Law(name="loglinear_test", formula="log L = c0 + c1 log(N/1e9)", inputs=("N", "D"),
               params=(Param("c0", dist.Normal(0, 10), log=False, starts=(0.0,)),
                       Param("c1", dist.Normal(0, 10), log=False, starts=(0.0,))),
               log_loss_fn=lambda p, x: p["c0"] + p["c1"] * _logn(x["N"]))


def _logn(N):
    import jax.numpy as jnp

    return jnp.log(N / 1e9)


@pytest.fixture(scope="module")
def gaussian_posterior():
    rng = np.random.default_rng(0)
    draws = rng.multivariate_normal(M0, S0, size=(4, 5000))
    law = _linear_law()
    return Posterior(law=law, draws={"c0": draws[..., 0], "c1": draws[..., 1]}, noise={"sigma": np.full((4, 5000), SIGMA)},
                     sample_stats={}, observed={"N": np.array([1e8, 1e9]), "D": np.array([1e10, 1e10]),
                                                "loss": np.array([2.5, 2.3]), "C": np.array([6e18, 6e19])},
                     settings={"likelihood": "gaussian"}, source="synthetic Gaussian posterior")


def _closed_form_var(log_n_candidate, log_n_plan):
    x = np.array([1.0, log_n_candidate])
    h = np.array([1.0, log_n_plan])
    S1 = np.linalg.inv(np.linalg.inv(S0) + np.outer(x, x) / SIGMA ** 2)
    return h @ S1 @ h, h @ S0 @ h


def test_expected_variance_after_a_run_matches_the_conjugate_closed_form(gaussian_posterior):
    plan_N = 7e10
    cands = np.array([[1e8, 1e10], [1e9, 1e10], [1e10, 1e10], [1e11, 1e10]])
    r = rank_candidates(gaussian_posterior, cands, f"loss@{plan_N:g}x1e12", outcomes=256, draws=8000, seed=1)
    r = r.set_index("N")
    for N in cands[:, 0]:
        after, before = _closed_form_var(np.log(N / 1e9), np.log(plan_N / 1e9))
        # Monte Carlo: 8000 reweighted draws x 256 outcomes; the variance of a variance estimate with ESS >~ 1000 is
        # a few percent; 8% holds it with margin and still fails a wrong formula (the reductions differ by 3-40x)
        assert r.loc[N, "var_before"] == pytest.approx(before, rel=0.05)
        assert r.loc[N, "expected_var_after"] == pytest.approx(after, rel=0.08), N
    # the most informative run about a plan at N = 7e10 is the one nearest it in log N
    assert r["reduction"].idxmax() == 1e11


def test_batch_counts_shared_information_once(gaussian_posterior):
    cands = np.array([[1e11, 1e10], [1e11, 1e10], [1e8, 1e13]])  # one cost each (6e21 FLOPs): the gains decide
    b = propose_batch(gaussian_posterior, cands, "loss@7e10x1e12", 2, outcomes=256, draws=8000, seed=2)
    # two runs at the same N: the joint closed form after both
    x = np.array([1.0, np.log(100.0)])
    h = np.array([1.0, np.log(70.0)])
    first = h @ np.linalg.inv(np.linalg.inv(S0) + np.outer(x, x) / SIGMA ** 2) @ h
    assert b["expected_var_after"][0] == pytest.approx(first, rel=0.08)
    both_same = h @ np.linalg.inv(np.linalg.inv(S0) + 2 * np.outer(x, x) / SIGMA ** 2) @ h
    y = np.array([1.0, np.log(0.1)])
    other = h @ np.linalg.inv(np.linalg.inv(S0) + (np.outer(x, x) + np.outer(y, y)) / SIGMA ** 2) @ h
    assert b["expected_var_after"][1] == pytest.approx(min(both_same, other), rel=0.1)
    assert b["cumulative_C"].is_monotonic_increasing and len(b) == 2
    # the precision utility ranks by 1/var gains per FLOP: a costly, informative run can beat a cheap one
    r = rank_candidates(gaussian_posterior, np.array([[1e11, 1e10], [1e8, 1e10]]), "loss@7e10x1e12", outcomes=128, draws=4000,
                        utility="precision")
    v0 = r["var_before"][0]
    assert r["precision_gain_per_exaflop"][0] == pytest.approx((1 / r["expected_var_after"][0] - 1 / v0) / (r["C"][0] / 1e18))
    assert r["precision_gain_per_exaflop"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="utility"):
        propose_batch(gaussian_posterior, cands, "loss@7e10x1e12", 1, utility="entropy")
    # a budget that fits one run only
    one = propose_batch(gaussian_posterior, cands, "loss@7e10x1e12", 3, budget=6 * 1e11 * 1e10 * 1.5, outcomes=64, draws=2000)
    assert len(one) == 1


def test_targets_and_bad_input(small_posterior):
    assert str(parse_target("N_opt@1e24")) == "log N_opt@1e+24"
    assert parse_target("loss@70Bx1.4T").plan == (70e9, 1.4e12)
    t = target_draws(small_posterior, "N_opt@1e24")
    assert t.shape == (small_posterior.num_chains * small_posterior.num_draws,)
    assert np.median(t) == pytest.approx(np.log(np.median(small_posterior.n_opt(1e24))), rel=1e-6)  # even count: mid-pair mean
    for bad in ("N_opt", "N_opt@x", "foo@1e24", "N_opt@-1"):
        with pytest.raises(ValueError):
            parse_target(bad)
    with pytest.raises(ValueError, match="candidate 2"):
        rank_candidates(small_posterior, [[1e8, 1e9], [-1, 1e9]], "N_opt@1e24")
    r = rank_candidates(small_posterior, [[1e8, 1e9], [3e8, 1e10], [1e9, 1e11]], "N_opt@1e24", outcomes=32, draws=200,
                        utility="variance")
    assert (r["reduction_per_exaflop"].diff().dropna() <= 0).all() and (r["median_ess"] > 0).all()
    r = rank_candidates(small_posterior, [[1e8, 1e9], [3e8, 1e10], [1e9, 1e11]], "N_opt@1e24", outcomes=32, draws=200)
    assert (r["precision_gain_per_exaflop"].diff().dropna() <= 0).all()  # the default ranks by the precision gain


def test_next_run_command(demo_report, tmp_path, capsys):
    cands = tmp_path / "cands.csv"
    cands.write_text("N,D\n1e8,2e9\n3e8,6e9\n1e9,2e10\n3e9,6e10\n")
    out = tmp_path / "next.json"
    code = main(["next-run", "--posterior", str(demo_report / "posterior.nc"), "--target", "N_opt@1e24", "--candidates",
                 str(cands), "--budget", "1e20", "--batch-runs", "2", "--outcomes", "32", "--design-draws", "200", "--json", str(out)])
    text = capsys.readouterr().out
    assert code in (0, 1)
    assert "per 1e18 FLOPs" in text and "proposed batch" in text
    d = json.loads(out.read_text())
    assert len(d["ranked"]) == 4 and 1 <= len(d["batch"]) <= 2 and sum(r["C"] for r in d["batch"]) <= 1e20


@pytest.mark.parametrize("content,argv,words", [
    ("N,D\n1e8,2e9\n", ["--target", "N_opt"], "--target"),
    ("N,T\n1e8,2e9\n", ["--target", "N_opt@1e24"], "needs columns N and D"),
    ("N,D\n1e8,2e9\n3e8,abc\n", ["--target", "N_opt@1e24"], "column D, row 3"),
    ("N,D\n1e8,2e9\n", ["--target", "N_opt@1e24", "--budget", "1e10"], "cheapest candidate"),
    ("N,D\n1e8,2e9\n", ["--target", "N_opt@1e24", "--batch-runs", "0"], "--batch-runs 0"),
])
def test_next_run_bad_input_is_one_line(demo_report, tmp_path, capsys, content, argv, words):
    cands = tmp_path / "c.csv"
    cands.write_text(content)
    code = main(["next-run", "--posterior", str(demo_report / "posterior.nc"), "--candidates", str(cands)] + argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1, err


def test_a_stack_of_laws_is_one_pool_of_draws(small_posterior):
    from bayes_scaling import StackedPosterior
    from bayes_scaling.planning import plan_losses

    # two copies of one posterior, weighted 0.3 / 0.7: the stack's pool is the same distribution, so the design and
    # the plans agree with the single posterior's to Monte Carlo error
    stack = StackedPosterior(posteriors={"a": small_posterior, "b": small_posterior}, weights={"a": 0.3, "b": 0.7})
    cands = [[1e8, 1e10], [1e9, 1e10], [3e9, 3e11]]
    one = rank_candidates(small_posterior, cands, "L*@1e23", outcomes=64, draws=400, seed=3, utility="variance")
    both = rank_candidates(stack, cands, "L*@1e23", outcomes=64, draws=400, seed=3, utility="variance")
    assert both["var_before"][0] == pytest.approx(one["var_before"][0], rel=0.25)
    assert set(both["N"]) == set(one["N"])
    t1 = plan_losses(small_posterior, ["70Bx1.4T"])["table"]
    t2 = plan_losses(stack, ["70Bx1.4T"])["table"]
    assert t2["loss"][0] == pytest.approx(t1["loss"][0], rel=1e-3)

"""The defects a new user met right after the demo (issue 12), one test per item; each failed before its fix.

Sampling here is short on purpose (a few hundred draws, 2 chains): the tests check what is reported and how,
not the posteriors' accuracy, which other modules test against published numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import data

from bayes_scaling import fit_point, load_runs, sample_posterior
from bayes_scaling.cli import main

TINY = dict(num_warmup=150, num_samples=150, num_chains=2)
CONFIG = ["dataset", "hparams", "warmup", "decay", "param_count", "loss_split"]


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _chinchilla_like(n, *, seed=0, E=1.8, noise=0.01):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(3e7), np.log(3e9), n))
    D = np.exp(rng.uniform(np.log(5e8), np.log(5e10), n))
    y = (E + 400 * N ** -0.34 + 1500 * D ** -0.30) * np.exp(noise * rng.standard_normal(n))
    return pd.DataFrame({"N": N, "D": D, "loss": y})


# ---- 1, 2: isoflop --by with configurations of different numbers of budgets -------------------------------------


@pytest.fixture(scope="module")
def uneven_isoflop(tmp_path_factory):
    """Two Porian configurations: one with its 12 budgets, one cut to its 5 smallest (7 budgets of padding)."""
    pts = pd.read_csv(data("isoflop_points.csv"))
    sel = lambda v: pts[(pts[CONFIG].astype(str).agg("/".join, axis=1)) == v]
    full = sel("rw/tuned/short/const/standard/val")
    small = sel("owt2/base/long/kaplan/standard/val")
    small = small[small["flops"] <= np.sort(small["flops"].unique())[4]]
    df = pd.concat([full, small])
    path = tmp_path_factory.mktemp("iso") / "uneven.csv"
    df.to_csv(path, index=False)
    return path, df


def test_isoflop_batch_vertices_and_d_opt_of_padded_configurations(uneven_isoflop):
    from bayes_scaling.analyses.isoflop import isoflop, isoflop_batch, prepare_isoflop

    path, df = uneven_isoflop
    batch = isoflop_batch(path, by=CONFIG, C="flops", N="n", D="t", **TINY)
    for label, post in batch.items():
        sub = df[df[CONFIG].astype(str).agg("/".join, axis=1) == label]
        alone = prepare_isoflop(sub, C="flops", N="n", D="t")
        # padded budgets and runs reach no statistic: the posterior holds the configuration's own data
        np.testing.assert_array_equal(post.data.C, alone.C)
        np.testing.assert_array_equal(post.data.log_r, alone.log_r)
        v = post.vertices()  # crashed (IndexError) for the configuration with fewer budgets
        assert len(v) == alone.num_budgets and np.all(v["N_opt_lo"] <= v["N_opt_hi"])
        # D_opt = C / (r N_opt) with r of the configuration's own budgets (padding zeros entered the median)
        C = np.array([1e21])
        product = post.d_opt(C) * post.n_opt(C)
        np.testing.assert_allclose(product, np.full(product.shape, C[0] / np.exp(np.median(alone.log_r))), rtol=1e-12)
        single = isoflop(sub, C="flops", N="n", D="t", **TINY)
        for col in ("N_opt", "D_opt"):  # the batch call against the single call (Monte-Carlo noise of short chains)
            b, s = batch[label].forecast([1e21])[col][0], single.forecast([1e21])[col][0]
            assert abs(np.log(b / s)) < 0.25, (label, col, b, s)


def test_isoflop_by_from_the_shell_with_uneven_budgets(uneven_isoflop, capsys):
    path, _ = uneven_isoflop
    code, out, err = _run(capsys, "isoflop", path, "--C", "flops", "--N", "n", "--D", "t", "--by", *CONFIG,
                          "--chains", "2", "--warmup", "150", "--draws", "150", "--json", "-")
    assert code in (0, 1), err
    res = json.loads(out)  # --json -: stdout is the JSON alone
    assert len(res["configurations"]) == 2
    for conf in res["configurations"].values():
        assert len(conf["vertices"]) >= 5 and all("extrapolation" in r for r in conf["forecast"])


# ---- 3: every result type reports sampler failure -----------------------------------------------------------------


def _bad_draws(watch=("a",)):
    """Draws of chains stuck in different places: R-hat far above 1.01, tiny ESS."""
    from bayes_scaling.draws import Draws

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 50)) * 0.01 + np.array([[0.0], [5.0]])
    draws = {w: x for w in watch}
    return Draws(draws=draws, sample_stats={"diverging": np.zeros((2, 50), bool)}, watch=tuple(watch))


def test_every_result_type_puts_sampler_failure_in_its_warnings():
    from bayes_scaling.analyses.batch_size import CriticalBatchPosterior, load_batch_sweep
    from bayes_scaling.analyses.hyperparams import PowerLawPosterior
    from bayes_scaling.analyses.isoflop import _posterior, prepare_isoflop

    d = prepare_isoflop(pd.read_csv(data("isoflop_points.csv")).query("dataset == 'rw' and hparams == 'tuned' and "
                                                                      "warmup == 'short' and loss_split == 'val'"),
                        C="flops", N="n", D="t")
    s = _bad_draws(("a", "m"))
    s.draws["vertex"] = np.zeros((2, 50, d.num_budgets))
    iso = _posterior(d, s, d.num_budgets, 0.0)
    assert not iso.diagnostics()["ok"] and any("R-hat" in w for w in iso.warnings)
    law = PowerLawPosterior(inputs=("C",), k=np.ones(100), exponents={"C": np.ones(100)}, tau=np.ones(100),
                            sampler=_bad_draws(), observed={})
    assert any("R-hat" in w for w in law.warnings)
    sweep = load_batch_sweep(data("steps_to_target_loss_DERIVED.csv"), batch="batch_size_seqs", steps="steps_to_target",
                             group="model_size")
    z = np.ones((100, 5))
    cbs = CriticalBatchPosterior(sweep=sweep, S_min=z, E_min=z, B_noise=z, cbs=z, sampler=_bad_draws())
    assert any("R-hat" in w for w in cbs.warnings)
    # one Health record answers for every result type, and agrees with its diagnostics and warnings
    from bayes_scaling.analyses.envelope import Envelope
    from bayes_scaling.diagnostics import Health

    env = Envelope(points=None, n_law=law, d_law=law)
    for result in (iso, law, cbs, env):
        h = result.health()
        assert isinstance(h, Health) and not h.ok and h.max_r_hat > 1.5
        assert result.diagnostics()["ok"] is False and result.diagnostics()["max_r_hat"] == h.max_r_hat
        assert str(h).startswith(f"NOT HEALTHY: 0 divergences, max R-hat {h.max_r_hat:.3f}")
        assert list(h.warnings) == list(result.diagnostics()["warnings"])
        if hasattr(result, "forecast"):  # one schema: compute budgets are the column "budget" in every forecast table
            assert result.forecast([1e20, 1e21]).columns[0] == "budget"
        idatas = result.to_arviz()  # and every one converts to arviz (the envelope: one InferenceData per fit)
        for idata in (idatas.values() if isinstance(idatas, dict) else [idatas]):
            assert "a" in idata.posterior or "k" in idata.posterior
            assert idata.posterior.sizes["chain"] == 2 and idata.sample_stats["diverging"].shape == (2, 50)


def test_an_unconverged_isoflop_posterior_says_so_and_exits_1(capsys, tmp_path):
    pts = pd.read_csv(data("isoflop_points.csv"))
    pts = pts[pts[CONFIG].astype(str).agg("/".join, axis=1) == "rw/tuned/short/const/standard/val"]
    pts.to_csv(tmp_path / "one.csv", index=False)
    code, out, err = _run(capsys, "isoflop", tmp_path / "one.csv", "--C", "flops", "--N", "n", "--D", "t", "--scatter",
                          "--chains", "2", "--warmup", "4", "--draws", "8", "--budgets", "1e20")
    assert code == 1
    assert "NOT HEALTHY" in out and "warning:" in out and "sampler:" in out and "FLAGGED" in out


def test_not_healthy_always_exits_1_even_when_only_tail_ess_fails(capsys, monkeypatch, zhang_critical_batch):
    from bayes_scaling.analyses import batch_size

    post = zhang_critical_batch
    sick = {"ok": False, "divergences": 0, "max_r_hat": 1.001, "min_ess_bulk": 900.0, "min_ess_tail": 120.0,
            "warnings": ["effective sample size below 400 for x (min bulk 900, tail 120): intervals are noisy."]}
    monkeypatch.setattr(type(post), "diagnostics", lambda self: sick)
    monkeypatch.setattr(batch_size, "critical_batch_size", lambda *a, **k: post)
    code, out, err = _run(capsys, "batch-size", data("steps_to_target_loss_DERIVED.csv"), "--batch", "batch_size_seqs",
                          "--steps", "steps_to_target", "--group", "model_size")
    assert code == 1 and "NOT HEALTHY" in out and "tail 120" in out


# ---- 4: hierarchical pooling where it helps ----------------------------------------------------------------------


def test_hierarchical_pooling_of_three_families_of_five_runs():
    from bayes_scaling.analyses.hierarchical import sample_hierarchical

    df = pd.concat([_chinchilla_like(5, seed=f, E=1.7 + 0.1 * f).assign(fam=f"f{f}") for f in range(3)])
    runs = load_runs(df, family="fam")
    post = sample_hierarchical("chinchilla", runs, **TINY)  # refused before: "no family has at least 6 runs"
    assert post.families == ("f0", "f1", "f2") and post.settings["init"].startswith("MAP")
    d = post.diagnostics()
    assert set(d) >= {"ok", "divergences", "max_r_hat", "min_ess_bulk", "min_ess_tail", "failing_families", "warnings"}
    table = post.forecast([1e21], prob=0.8)
    # one new run: the family's noise added to the mean law (quantiles of 300 draws each: 2% Monte-Carlo slack)
    assert np.all(table["L_new_hi"] - table["L_new_lo"] >= 0.98 * (table["L*_hi"] - table["L*_lo"]))
    assert np.all((table["L_new_lo"] < table["L*"]) & (table["L*"] < table["L_new_hi"]))
    assert np.all(table["extrapolation"] > 1)
    plan = post.loss_of_plan(1e9, 2e10, prob=0.8)
    assert list(plan["family"]) == ["f0", "f1", "f2"]
    assert np.all(plan["predictive_hi"] - plan["predictive_lo"] >= 0.98 * (plan["hi"] - plan["lo"]))
    one = post.loss_of_plan(1e9, 2e10, family="f1")
    assert one["median"][0] == pytest.approx(plan["median"][1])
    with pytest.raises(ValueError, match="no family 'f9'"):
        post.loss_of_plan(1e9, 2e10, family="f9")


# ---- 5: run counts count the law's parameters ---------------------------------------------------------------------


def test_run_counts_say_what_they_counted():
    from bayes_scaling.checks import min_runs

    five = load_runs(_chinchilla_like(5))
    fit = fit_point("chinchilla", five)  # least squares: 5 runs for 5 parameters, allowed
    assert any("zero residual degrees of freedom" in w for w in fit.warnings) and not fit.ok
    with pytest.raises(ValueError, match=r"5 runs; a maximum-likelihood fit of law 'chinchilla' needs at least 6 "
                                         r"\(the law's 5 parameters: E, A, B, alpha, beta, plus the noise scale sigma\)"):
        fit_point("chinchilla", five, objective="student_t")
    map_fit = fit_point("chinchilla", five, objective="student_t", prior=True)  # MAP: the priors regularise
    assert any("the priors, not the runs" in w for w in map_fit.warnings)
    post = sample_posterior("chinchilla", five, **TINY)  # refused before ("7 free parameters")
    assert any("5 runs for law 'chinchilla'" in w for w in post.diagnostics()["problems"])
    with pytest.raises(ValueError, match="1 run; a posterior of law 'chinchilla' needs at least 2"):
        sample_posterior("chinchilla", load_runs(_chinchilla_like(1)), **TINY)
    # one minimum for single and family fits: the batch skips exactly what a single fit refuses
    from bayes_scaling.batch import fit_point_batch

    df = pd.concat([_chinchilla_like(30).assign(fam="big"), _chinchilla_like(4, seed=3).assign(fam="four")])
    batch = fit_point_batch("chinchilla", load_runs(df, family="fam"))
    assert set(batch.skipped) == {"four"} and min_runs(fit.law, "least_squares") == 5
    with pytest.raises(ValueError) as single:
        fit_point("chinchilla", load_runs(df[df.fam == "four"]))
    assert batch.skipped["four"] == str(single.value)


# ---- 6: degenerate data is flagged, not fitted "cleanly" ---------------------------------------------------------


DEGENERATE = {
    "flat": (lambda d: d.assign(loss=2.5), "the loss is the same in every run"),
    "one_N": (lambda d: d.assign(N=1e8), "every run has the same N"),
    "random": (lambda d: d.assign(loss=np.random.default_rng(1).uniform(2, 4, len(d))), "explains only"),
    "as_many_as_parameters": (lambda d: d.iloc[:5], "zero residual degrees of freedom"),
    "perplexities": (lambda d: d.assign(loss=np.exp(d["loss"])), "look like perplexities"),
    "one_ratio": (lambda d: d.assign(D=20 * d["N"]), "the same tokens per parameter"),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_data_is_flagged_and_exits_1(case, capsys, tmp_path):
    make, words = DEGENERATE[case]
    make(_chinchilla_like(30)).to_csv(tmp_path / "runs.csv", index=False)
    code, out, err = _run(capsys, "fit", tmp_path / "runs.csv", "--budgets", "1e21", "--json", tmp_path / "fit.json")
    assert code == 1, (out, err)
    assert words in out and "FLAGGED" in out
    res = json.loads((tmp_path / "fit.json").read_text())
    assert any(words in w for w in res["warnings"])
    assert all(v is None or np.isfinite(v) for r in res["forecast"] for v in r.values())  # NaN written as null


def test_exponents_at_bounds_and_absurd_forecasts_are_flagged():
    from bayes_scaling.checks import fit_warnings
    from bayes_scaling.laws import get_law

    law = get_law("chinchilla")
    w = fit_warnings(law, {"E": 1.8, "A": 400.0, "B": 400.0, "alpha": 1e-9, "beta": 0.3})
    assert any("exponent alpha" in x and "ran to 0" in x for x in w)
    table = pd.DataFrame({"budget": [1e25], "N_opt": [1e20], "D_opt": [1.6e4], "D/N": [1.6e-16], "L*": [np.nan]})
    w = fit_warnings(law, {"E": 1.8, "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}, forecast=table)
    assert any("not finite" in x for x in w) and any("tokens per parameter" in x for x in w)


# ---- 7: report --posterior refuses a posterior of other data ------------------------------------------------------


def test_report_refuses_a_posterior_sampled_on_other_data(capsys, tmp_path):
    a = _chinchilla_like(12)
    a.to_csv(tmp_path / "a.csv", index=False)
    b = a.assign(loss=a["loss"] * 1.01)  # same rows, other numbers
    b.to_csv(tmp_path / "b.csv", index=False)
    code, out, err = _run(capsys, "sample", tmp_path / "a.csv", "--chains", "2", "--warmup", "150", "--draws", "150",
                          "--out", tmp_path / "post", "--budgets", "1e21")
    assert code in (0, 1), err
    from bayes_scaling import Posterior

    post = Posterior.load(tmp_path / "post" / "posterior.nc")
    assert len(post.settings["data_sha256"]) == 64
    code, out, err = _run(capsys, "report", tmp_path / "b.csv", "--posterior", tmp_path / "post" / "posterior.nc",
                          "--out", tmp_path / "rep")
    assert code == 2 and "sampled on other data" in err and "SHA-256" in err and err.count("\n") == 1
    assert not (tmp_path / "rep").exists()


# ---- 8: one line and exit 2 instead of tracebacks (the CLI cases are in test_cli_bad_input.py) ------------------


def test_library_calls_give_clear_errors(small_posterior):
    from bayes_scaling import forecast_table

    with pytest.raises(ValueError, match="budgets must be positive, finite numbers of FLOPs; -1 is not"):
        small_posterior.forecast([-1])
    with pytest.raises(ValueError, match="N = -5: must be a positive"):
        small_posterior.loss_of_plan(-5, 1e9)
    with pytest.raises(ValueError, match="num_chains must be a whole number >= 1, not 0"):
        sample_posterior("chinchilla", load_runs(_chinchilla_like(10)), num_chains=0)
    with pytest.raises(ValueError, match="num_samples must be a whole number >= 4"):
        sample_posterior("chinchilla", load_runs(_chinchilla_like(10)), num_samples=0)
    with pytest.raises(ValueError, match="would hold"):
        sample_posterior("chinchilla", load_runs(_chinchilla_like(10)), num_samples=10**9)
    with pytest.raises(ValueError, match="parameter\\(s\\) beta missing"):
        forecast_table("chinchilla", {"E": 1.8, "A": 400.0, "B": 400.0, "alpha": 0.3}, [1e21])
    with pytest.raises(ValueError, match="parameter E = 'x' is not a number"):
        forecast_table("chinchilla", {"E": "x", "A": 400.0, "B": 400.0, "alpha": 0.3, "beta": 0.3}, [1e21])
    with pytest.raises(ValueError, match="parameters must be a dict"):
        forecast_table("chinchilla", [1.8, 400.0], [1e21])
    with pytest.raises(ValueError, match="a run table must be a file path or a pandas DataFrame, not NoneType"):
        load_runs(None)
    with pytest.raises(ValueError, match="family= must name a column"):
        load_runs(_chinchilla_like(5), family=3)
    with pytest.raises(ValueError, match="N= must name a column"):
        load_runs(_chinchilla_like(5), N=3)


def test_json_to_stdout_is_pure_json(capsys, tmp_path):
    _chinchilla_like(20).to_csv(tmp_path / "runs.csv", index=False)
    code, out, err = _run(capsys, "fit", tmp_path / "runs.csv", "--budgets", "1e21", "--json", "-")
    assert code in (0, 1)
    res = json.loads(out)  # nothing but the JSON on stdout
    assert res["law"] == "chinchilla" and "forecast" in res and "objective:" in err


def test_family_fit_writes_its_json_and_force_starts_afresh(capsys, tmp_path):
    df = pd.concat([_chinchilla_like(20, seed=s).assign(fam=f"f{s}") for s in range(2)])
    df.to_csv(tmp_path / "fams.csv", index=False)
    args = ["fit", tmp_path / "fams.csv", "--family", "fam", "--budgets", "1e21"]
    code, out, err = _run(capsys, *args, "--json", tmp_path / "fams.json", "--family-out", tmp_path / "job")
    assert code in (0, 1), err
    res = json.loads((tmp_path / "fams.json").read_text())  # silently nothing before
    assert [r["family"] for r in res["families"]] == ["f0", "f1"]
    # the advice says --force: it must then work (it was refused: "already holds a job")
    code, out, err = _run(capsys, *args, "--family-out", tmp_path / "job")
    assert code == 2 and "--resume" in err and "--force" in err
    code, out, err = _run(capsys, *args, "--family-out", tmp_path / "job", "--force")
    assert code in (0, 1), err


# ---- 9: exit codes agree ------------------------------------------------------------------------------------------


def test_skipped_families_flag_fit_and_report_alike(capsys, tmp_path):
    df = pd.concat([_chinchilla_like(20).assign(fam="ok"), _chinchilla_like(1, seed=4).assign(fam="tiny")])
    df.to_csv(tmp_path / "fams.csv", index=False)
    code, out, err = _run(capsys, "fit", tmp_path / "fams.csv", "--family", "fam", "--budgets", "1e21")
    assert code == 1 and "skipped" in out and "FLAGGED" in out
    code, out, err = _run(capsys, "report", tmp_path / "fams.csv", "--family", "fam", "--budgets", "1e21", "--out",
                          tmp_path / "rep", "--chains", "2", "--warmup", "150", "--draws", "150")
    assert code == 1 and "skipped tiny" in out and "FLAGGED" in out


# ---- 10: messages -------------------------------------------------------------------------------------------------


def test_messages_name_the_file_the_row_and_quote_columns(capsys, tmp_path):
    from bayes_scaling.analyses.isoflop import isoflop_batch
    from bayes_scaling.diagnostics import fmt_rhat

    pts = pd.read_csv(data("isoflop_points.csv")).iloc[:60].astype({"loss": object})
    pts.loc[pts.index[40], "loss"] = "oops"
    pts.to_csv(tmp_path / "iso.csv", index=False)
    with pytest.raises(ValueError, match=r"iso\.csv \[.*\]: column 'loss', row 41: 'oops'"):
        isoflop_batch(tmp_path / "iso.csv", by=CONFIG, C="flops", N="n", D="t", **TINY)
    df = _chinchilla_like(8).rename(columns={"loss": "loss "})
    with pytest.raises(ValueError, match=r"column 'loss' \(for loss\) not found \(did you mean 'loss '\?.*'N', 'D', 'loss '"):
        load_runs(df)
    assert fmt_rhat(2.67) == "2.670" and fmt_rhat(1e16) == ">10" and fmt_rhat(float("nan")) == "-"


def test_semicolon_and_tab_tables_are_read(tmp_path):
    df = _chinchilla_like(6)
    df.to_csv(tmp_path / "semi.csv", index=False, sep=";")
    df.to_csv(tmp_path / "tabs.csv", index=False, sep="\t")
    for name in ("semi.csv", "tabs.csv"):
        runs = load_runs(tmp_path / name)
        np.testing.assert_allclose(runs.loss, df["loss"])
    (tmp_path / "broken.csv").write_text("N,D,loss\n1,2,3\n1,2,3,4,5\n")
    with pytest.raises(ValueError, match=r"broken\.csv: cannot read as a table: .*--sep"):
        load_runs(tmp_path / "broken.csv")


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    import pandas

    def no_engine(*a, **k):
        raise ImportError("Unable to find a usable engine")

    monkeypatch.setattr(pandas, "read_parquet", no_engine)
    (tmp_path / "runs.parquet").write_bytes(b"PAR1")
    with pytest.raises(ValueError, match=r"runs\.parquet: reading Parquet needs pyarrow: pip install pyarrow"):
        load_runs(tmp_path / "runs.parquet")


def test_tables_print_every_number_with_the_same_digits_and_wrap_status(capsys, tmp_path):
    import re

    _chinchilla_like(20).to_csv(tmp_path / "runs.csv", index=False)
    code, out, err = _run(capsys, "fit", tmp_path / "runs.csv", "--budgets", "1e21", "3e22")
    table = out[out.index("forecast ("):].splitlines()[2:4]
    for line in table:
        for cell in line.split():
            digits = re.sub(r"e[+-]\d+$", "", cell).replace(".", "").lstrip("0")
            assert len(digits) <= 4, (cell, line)
    df = pd.concat([_chinchilla_like(20, seed=s).assign(fam=f"family-{s}") for s in range(2)])
    df.to_csv(tmp_path / "fams.csv", index=False)
    code, out, err = _run(capsys, "fit", tmp_path / "fams.csv", "--family", "fam", "--budgets", "1e24")
    assert "warnings per family:" in out
    wrapped = out[out.index("warnings per family:"):out.index("FLAGGED")].splitlines()[1:]
    assert len(wrapped) > 2 and max(len(x) for x in wrapped) <= 112


# ---- truthful reports ---------------------------------------------------------------------------------------------


def test_extrapolation_stands_in_the_forecast_and_in_short(small_posterior):
    from bayes_scaling.report import build_report, render_html

    fc = small_posterior.forecast([1e21, 1e25])
    assert fc["extrapolation"].tolist() == pytest.approx([1e21 / 1.3e22, 1e25 / 1.3e22], rel=0.02)
    data_ = build_report(small_posterior, budgets=[1e21, 5.76e23, 1e25])
    short = data_["in_short"]
    assert short[0].startswith("WARNING") and any("1e+25 FLOPs is 772x the largest run" in s for s in short)
    assert any("(44x the largest run)" in s for s in short)
    page = render_html(data_, {})
    assert page.index("In short") < page.index("Data provenance") and "C / largest run" in page
    assert "None" not in page[page.index("NUTS:"):page.index("NUTS:") + 300]


def test_correlation_is_reported_in_the_sampled_coordinates(small_posterior):
    d = small_posterior.diagnostics()
    assert not any("A and alpha" in w for w in d["warnings"] + d["notes"])  # the natural ridge (r = 0.999) is not news
    coords = small_posterior.sampled_coordinates()
    assert {"log_A_c", "log_B_c", "alpha", "beta"} <= set(coords)
    natural = abs(np.corrcoef(np.log(small_posterior.flat()["A"]), small_posterior.flat()["alpha"])[0, 1])
    centred = abs(np.corrcoef(coords["log_A_c"], coords["alpha"])[0, 1])
    assert centred < natural


# ---- compile once -------------------------------------------------------------------------------------------------


def test_forecasts_compile_once_per_law_and_shape(small_posterior):
    from bayes_scaling import derived

    small_posterior.forecast([1e21, 1e22])
    before = derived.trace_count()
    small_posterior.forecast([3e21, 7e23])  # new budgets, same shape: no new program
    small_posterior.n_opt(5e22)
    small_posterior.n_opt(9e22)
    assert derived.trace_count() - before <= 1  # n_opt's single budget is one more shape, once


def test_screen_in_chunks_equals_the_full_screen(chinchilla_runs, monkeypatch):
    from bayes_scaling import fitting

    assert fitting.screen_batch(4500, 100_000) * 100_000 <= fitting.ELEMENTS_AT_ONCE
    full = fit_point("chinchilla", chinchilla_runs)
    monkeypatch.setattr(fitting, "ELEMENTS_AT_ONCE", 240 * 97)  # 97 starts at a time, a ragged last batch
    chunked = fit_point("chinchilla", chinchilla_runs)
    np.testing.assert_allclose(chunked.start_objectives, full.start_objectives, rtol=1e-12)
    for k, v in full.params.items():
        assert chunked.params[k] == pytest.approx(v, rel=1e-9)

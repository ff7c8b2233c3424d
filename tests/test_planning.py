"""Planning (issue 15): plan losses against the law's formula at the draws, the inference-aware optimum against a
brute-force grid and against the compute-optimal model at zero demand, costs against hand calculations (the seed's
worked example among them), and the ``plan`` command's table and one-line errors."""

import json

import numpy as np
import pytest

from bayes_scaling import derived, get_law, lifetime
from bayes_scaling.cli import main
from bayes_scaling.cost import ACCELERATORS, PF_DAY, Hardware, costs, flops_for_days, flops_for_dollars, get_accelerator
from bayes_scaling.planning import best_for_budget, cost_to_reach, inference_aware, parse_plan, plan_losses

EPOCH = {"E": 1.8169, "A": 482.01, "B": 2085.43, "alpha": 0.34781, "beta": 0.36585}
KAPLAN = {"N_c": 6.4e13, "D_c": 1.8e13, "alpha_N": 0.076, "alpha_D": 0.103}


# ---- cost: hand calculations ------------------------------------------------------------------------------------

def test_seed_example_7b_on_2t_tokens():
    # 6 x 7e9 x 2e12 = 8.4e22 FLOPs at 300 TFLOP/s effective: 8.4e22 / 3e14 / 3600 = 77,777.8 GPU-hours; x $2
    c = costs(6 * 7e9 * 2e12, Hardware(effective_flops=300e12, price=2.0, count=256))
    assert c["hours"] == pytest.approx(77_777.78, rel=1e-6)
    assert c["dollars"] == pytest.approx(155_555.56, rel=1e-6)
    assert c["days"] == pytest.approx(77_777.78 / 256 / 24, rel=1e-6)
    assert c["pf_days"] == pytest.approx(8.4e22 / 8.64e19, rel=1e-12)


def test_costs_from_peak_and_mfu_by_hand():
    hw = Hardware("A100", mfu=0.5, price=1.5, count=8, pue=1.2)
    flops = 1e21
    hours = flops / (312e12 * 0.5) / 3600  # 1780.6 h
    c = costs(flops, hw)
    assert c["hours"] == pytest.approx(hours, rel=1e-12)
    assert c["dollars"] == pytest.approx(1.5 * hours, rel=1e-12)
    assert c["days"] == pytest.approx(hours / 8 / 24, rel=1e-12)
    assert c["kwh"] == pytest.approx(hours * 400 * 1.2 / 1000, rel=1e-12)
    assert PF_DAY == 8.64e19
    assert flops_for_dollars(c["dollars"], hw) == pytest.approx(flops, rel=1e-12)
    assert flops_for_days(c["days"], hw) == pytest.approx(flops, rel=1e-12)
    arr = costs(np.array([1e21, 2e21]), hw)["hours"]
    assert arr[1] == pytest.approx(2 * arr[0])


def test_accelerator_table_and_errors():
    for name in ("A100", "H100", "H200", "B200", "TPUv5p"):
        a = get_accelerator(name)
        assert a.peak_flops > 1e14 and a.source
    assert get_accelerator("tpu-v5p").name == "TPUv5p" and get_accelerator("h100").peak_flops == 989e12
    assert np.isnan(costs(1e21, Hardware("TPUv5p"))["kwh"])  # Google publishes no power: no silent number
    assert costs(1e21, Hardware("TPUv5p", watts=300))["kwh"] > 0
    assert len(ACCELERATORS) >= 5
    for bad, match in ((dict(accelerator="V100"), "unknown accelerator"), (dict(mfu=1.5), "mfu"), (dict(mfu=0), "mfu"),
                       (dict(price=-2), "price"), (dict(count=2.5), "count"), (dict(pue=0.9), "pue")):
        with pytest.raises(ValueError, match=match):
            Hardware(**bad)


# ---- the inference-aware optimum: closed form, brute force, first-order condition -------------------------------

def _brute(law_params, loss, d_inf, kind="chinchilla"):
    """Least 6ND + 2N d_inf over a 4000 x 4000 log grid of (N, D) with L(N, D) <= loss."""
    lN = np.linspace(np.log(1e7), np.log(1e14), 4000)[:, None]
    lD = np.linspace(np.log(1e8), np.log(1e16), 4000)[None, :]
    N, D = np.exp(lN), np.exp(lD)
    if kind == "chinchilla":
        p = law_params
        L = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]
    else:
        p = law_params
        L = ((p["N_c"] / N) ** (p["alpha_N"] / p["alpha_D"]) + p["D_c"] / D) ** p["alpha_D"]
    total = np.where(L <= loss, 6 * N * D + 2 * N * d_inf, np.inf)
    i, j = np.unravel_index(np.argmin(total), total.shape)
    return float(N[i, 0]), float(D[0, j]), float(total[i, j])


@pytest.mark.parametrize("kind,loss", [("chinchilla", 2.0), ("chinchilla", 2.3), ("kaplan", 2.4)])
@pytest.mark.parametrize("d_inf", [1e11, 1e13, 1e14])
def test_inference_optimum_equals_brute_force_grid(kind, loss, d_inf):
    law, p = (get_law("chinchilla"), EPOCH) if kind == "chinchilla" else (get_law("kaplan"), KAPLAN)
    N, D = lifetime.inference_optimal(law, p, loss, d_inf)
    total = 6 * float(N) * float(D) + 2 * float(N) * d_inf
    bN, bD, btotal = _brute(p, loss, d_inf, kind)
    # the grid's cells are 0.4% apart in N and D; the optimum's cost is flat to first order, so it agrees to 1e-3,
    # and the grid's best cell lies within a few cells of the solved N
    assert total == pytest.approx(btotal, rel=1e-2) and total <= btotal * (1 + 1e-6)
    assert float(N) == pytest.approx(bN, rel=0.05)


@pytest.mark.parametrize("law_name,p,loss", [("chinchilla", EPOCH, 2.0), ("chinchilla", EPOCH, 2.5), ("kaplan", KAPLAN, 2.4)])
def test_zero_inference_demand_is_the_compute_optimal_model(law_name, p, loss):
    law = get_law(law_name)
    N, D = lifetime.inference_optimal(law, p, loss, 0.0)
    C = derived.compute_for_loss(law, p, loss)
    Nc, Dc = derived.compute_optimal(law, p, C)
    assert float(N) == pytest.approx(float(Nc), rel=1e-4) and float(D) == pytest.approx(float(Dc), rel=1e-4)
    # and the lifetime-budget form with no demand is the compute-optimal model at that budget
    Nl, Dl = lifetime.lifetime_optimal(law, p, 1e24, 0.0)
    No, Do = derived.compute_optimal(law, p, 1e24)
    assert float(Nl) == pytest.approx(float(No), rel=1e-4) and float(Dl) == pytest.approx(float(Do), rel=1e-4)


def test_halving_demand_halves_the_optimal_model():
    law = get_law("chinchilla")
    Nc, _ = derived.compute_optimal(law, EPOCH, derived.compute_for_loss(law, EPOCH, 2.0))
    d = lifetime.halving_demand(law, EPOCH, 2.0, Nc)
    N, _ = lifetime.inference_optimal(law, EPOCH, 2.0, d)
    assert float(N) == pytest.approx(float(Nc) / 2, rel=1e-3)
    # more demand, smaller model; and a target below the floor E is unreachable
    assert float(lifetime.inference_optimal(law, EPOCH, 2.0, 10 * float(d))[0]) < float(N)
    assert not np.isfinite(float(lifetime.inference_optimal(law, EPOCH, 1.8, 1e12)[0]))


def test_lifetime_budget_optimum_equals_brute_force():
    law = get_law("chinchilla")
    total, d_inf = 1e24, 1e13
    N, D = lifetime.lifetime_optimal(law, EPOCH, total, d_inf)
    assert 6 * float(N) * float(D) + 2 * float(N) * d_inf == pytest.approx(total, rel=1e-9)
    Ns = np.exp(np.linspace(np.log(1e8), np.log(total / (6 + 2 * d_inf)), 200_000))
    Ds = (total / Ns - 2 * d_inf) / 6
    L = EPOCH["E"] + EPOCH["A"] / Ns ** EPOCH["alpha"] + EPOCH["B"] / Ds ** EPOCH["beta"]
    assert float(N) == pytest.approx(Ns[np.argmin(L)], rel=1e-3)


# ---- over a posterior -------------------------------------------------------------------------------------------

def test_plan_losses_are_the_law_at_every_draw(small_posterior):
    post = small_posterior
    r = plan_losses(post, ["big=70Bx1.4T", (8e9, 15e12), ("tiny", 1e8, 2e9)], hardware=Hardware("H100", count=64))
    t = r["table"]
    p = post.flat()
    for i, (N, D) in enumerate([(70e9, 1.4e12), (8e9, 15e12), (1e8, 2e9)]):
        L = p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]  # the law's formula at each draw
        assert t["loss"][i] == pytest.approx(np.median(L), rel=1e-9)
        assert (t["loss_lo"][i], t["loss_hi"][i]) == pytest.approx(tuple(np.quantile(L, [0.05, 0.95])), rel=1e-9)
        assert t["loss_new_lo"][i] < t["loss_lo"][i] and t["loss_new_hi"][i] > t["loss_hi"][i]
        assert t["hours"][i] == pytest.approx(6 * N * D / (989e12 * 0.4) / 3600, rel=1e-12)
    assert list(t["plan"]) == ["big", "plan 2", "tiny"]
    assert t["tokens_per_param"][1] == pytest.approx(15e12 / 8e9)
    # 5e3 x (1e8)^0.74 = 4.2e9 tokens > 2e9: the tiny plan is below Kaplan's guide, the others far above it
    assert bool(t["below_kaplan_guide"][2]) and not t["below_kaplan_guide"][:2].any()
    assert t["kaplan_min_D"][0] == pytest.approx(5e3 * 70e9 ** 0.74)
    pb = r["p_better"]
    assert pb.loc["big", "tiny"] == 1.0 and pb.loc["tiny", "big"] == 0.0
    assert pb.loc["big", "plan 2"] + pb.loc["plan 2", "big"] == pytest.approx(1.0)
    assert 0 < r["p_better_new_run"].loc["big", "plan 2"] < 1


def test_inference_aware_over_draws_equals_per_draw_solves(small_posterior):
    post = small_posterior
    out = inference_aware(post, inference_tokens=1e13, loss=2.0, hardware=Hardware(price=3.0))
    p = post.flat()
    law = post.law
    idx = np.linspace(0, len(p["E"]) - 1, 5).astype(int)
    Ns = [float(lifetime.inference_optimal(law, {k: p[k][i] for k in law.param_names}, 2.0, 1e13)[0]) for i in idx]
    allN = derived.over_draws(law, "inference_optimal", p, np.array([[2.0, 1e13]]))["N"][:, 0]
    assert allN[idx] == pytest.approx(Ns, rel=1e-9)
    assert out["N"]["median"] == pytest.approx(np.median(allN), rel=1e-9)
    assert out["N"]["median"] < out["chinchilla_N"]["median"] and out["tokens_per_param"]["median"] > 20
    assert 0 < out["saving"]["lo"] <= out["saving"]["median"] <= out["saving"]["hi"] < 1
    assert out["lifetime_dollars"]["median"] == pytest.approx(out["lifetime_flops"]["median"] / (989e12 * 0.4) / 3600 * 3.0, rel=1e-9)
    # zero demand: the compute-optimal model, no saving
    z = inference_aware(post, inference_tokens=0.0, loss=2.0)
    assert z["N"]["median"] == pytest.approx(z["chinchilla_N"]["median"], rel=1e-3)
    assert abs(z["saving"]["median"]) < 1e-3
    b = inference_aware(post, inference_tokens=1e13, budget=1e24)
    assert b["target_loss"]["median"] == pytest.approx(np.median(derived.over_draws(law, "frontier", p, [1e24])["L*"]), rel=1e-9)


def test_best_model_for_dollars_and_cost_to_reach(small_posterior):
    post = small_posterior
    hw = Hardware("H100", price=2.0, count=1024)
    b = best_for_budget(post, dollars=1e7, hardware=hw)
    C = 1e7 / 2.0 * 3600 * 989e12 * 0.4
    assert b["budget"]["flops"] == pytest.approx(C, rel=1e-12)
    No = derived.over_draws(post.law, "frontier", post.flat(), [C])["N_opt"][:, 0]
    assert b["N"]["median"] == pytest.approx(np.median(No), rel=1e-9)
    assert b["training_flops"]["median"] == pytest.approx(C, rel=1e-6)
    lb = best_for_budget(post, flops=C, hardware=hw, inference_tokens=1e13)
    assert lb["N"]["median"] < b["N"]["median"] and lb["loss"]["median"] > b["loss"]["median"]
    c = cost_to_reach(post, 2.0, hardware=hw)
    cf = derived.over_draws(post.law, "compute_for_loss", post.flat(), [2.0])[:, 0]
    assert c["flops"]["median"] == pytest.approx(np.median(cf), rel=1e-9)
    assert c["dollars"]["median"] == pytest.approx(np.median(cf) / (989e12 * 0.4) / 3600 * 2.0, rel=1e-9)
    assert cost_to_reach(post, 1.0, hardware=hw)["p_unreachable"] == 1.0  # below every draw's floor
    with pytest.raises(ValueError, match="exactly one"):
        best_for_budget(post, dollars=1e7, days=3)


def test_parse_plan():
    assert parse_plan("8Bx15T") == ("8Bx15T", 8e9, 15e12)
    assert parse_plan("llama=8e9x1.5e13") == ("llama", 8e9, 1.5e13)
    assert parse_plan("70B X 1.4T")[1:] == (70e9, 1.4e12)
    for bad in ("8B", "8Bx", "-1x2", "abcx1T", "0x1T"):
        with pytest.raises(ValueError, match="plan"):
            parse_plan(bad)


# ---- the command ------------------------------------------------------------------------------------------------

def test_plan_command_prints_a_table_and_writes_json(demo_report, tmp_path, capsys):
    post = str(demo_report / "posterior.nc")
    out = tmp_path / "plan.json"
    code = main(["plan", "--posterior", post, "--plan", "a=8Bx15T", "b=70Bx1.4T", "--target-loss", "2.0",
                 "--inference-tokens", "1e13", "--dollars", "1e6", "--accelerator", "H100", "--count", "512", "--json", str(out)])
    text = capsys.readouterr().out
    assert code in (0, 1)
    for words in ("GPU-hours", "days on 512", "dollars", "tokens/param", "P(a beats b)", "inference-aware",
                  "saving against the compute-optimal model", "best model for $1M", "to reach loss 2"):
        assert words in text, words
    d = json.loads(out.read_text())
    assert {"plans", "cost_to_reach", "inference_aware", "best_for_budget", "hardware"} <= set(d)
    assert d["plans"]["table"][0]["plan"] == "a"
    # the seed's example through the command: 7B on 2T at 300 TFLOP/s effective and $2/GPU-hour
    main(["plan", "--posterior", post, "--plan", "7Bx2T", "--effective-flops", "300e12", "--price", "2", "--json", str(out), "--force"])
    row = json.loads(out.read_text())["plans"]["table"][0]
    assert row["hours"] == pytest.approx(77_777.78, rel=1e-6) and row["dollars"] == pytest.approx(155_555.56, rel=1e-6)


@pytest.mark.parametrize("argv,words", [
    (["--accelerator", "V100", "--plan", "8Bx1T"], "--accelerator: unknown accelerator 'V100'"),
    (["--mfu", "0", "--plan", "8Bx1T"], "--mfu"),
    (["--price", "-3", "--plan", "8Bx1T"], "--price"),
    (["--count", "0", "--plan", "8Bx1T"], "--count"),
    (["--plan", "8B"], "--plan: plan '8B': expected N x D"),
    (["--plan", "0x1T"], "--plan: plan '0x1T': N"),
    (["--target-loss", "-1"], "--target-loss"),
    (["--dollars", "1e6", "--days", "3"], "give one"),
    (["--inference-tokens", "-5", "--plan", "8Bx1T"], "--inference-tokens"),
    ([], "nothing to plan"),
])
def test_plan_command_bad_input_is_one_line(demo_report, capsys, argv, words):
    code = main(["plan", "--posterior", str(demo_report / "posterior.nc")] + argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and words in err and len(err.splitlines()) == 1, err


def test_plan_needs_a_law_of_n_and_d(tmp_path, capsys):
    p = tmp_path / "c.csv"
    p.write_text("C,loss\n1e18,3.1\n1e19,2.9\n1e20,2.7\n1e21,2.55\n1e22,2.45\n")
    code = main(["plan", str(p), "--law", "power_law_floor", "--x", "C", "--plan", "8Bx1T", "--chains", "1", "--draws", "4", "--warmup", "4"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "a plan needs a law of N and D" in err


def test_report_has_the_cost_and_plans_sections(small_posterior):
    from bayes_scaling.report import build_report, render_markdown

    data = build_report(small_posterior, budgets=[1e21, 1e23], plans=["big=70Bx1.4T"], hardware=Hardware("H200", count=64))
    pl = data["planning"]
    assert pl["plans"][0]["plan"] == "big" and pl["count"] == 64 and "H200" in pl["hardware"]
    assert pl["budgets"][0]["hours"] == pytest.approx(1e21 / (989e12 * 0.4) / 3600, rel=1e-12)
    assert any(line.startswith("Plan big (70B parameters on 1.4T tokens") for line in data["in_short"])
    md = render_markdown(data, [])
    assert "## What each budget costs: H200" in md and "## Plans:" in md and "| big | 70B | 1.4T |" in md

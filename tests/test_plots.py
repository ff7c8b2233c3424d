"""Every plot function renders to PNG and draws what it claims: bands, scales, labels, points."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, PolyCollection  # noqa: E402

from bayes_scaling import load_runs, plots  # noqa: E402

BUDGETS = [1e21, 5.76e23, 1e25]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def png(ax_or_axes) -> bytes:
    fig = np.asarray(ax_or_axes).ravel()[0].figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    return data


def bands(ax):
    return [c for c in ax.collections if type(c) is PolyCollection or c.__class__.__name__ == "FillBetweenPolyCollection"]


def scatter_points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def test_lazy_imports():
    import subprocess
    import sys

    code = "import sys, bayes_scaling, bayes_scaling.plots, bayes_scaling.report; print('matplotlib' in sys.modules, 'arviz' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_fit_by_model_size(small_posterior):
    ax = plots.plot_fit(small_posterior, num_curves=4)
    png(ax)
    assert len(bands(ax)) == 4 and len(ax.get_lines()) == 4
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "tokens D" and "loss" in ax.get_ylabel()
    assert scatter_points(ax) == 240
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert all(lab.startswith("N = ") for lab in labels)
    # the bands are the mean law's: each median line lies inside its band
    for line, band in zip(ax.get_lines(), bands(ax)):
        x, y = line.get_data()
        verts = band.get_paths()[0].vertices
        assert verts[:, 0].min() <= x.min() * 1.0001 and verts[:, 0].max() >= x.max() * 0.9999


def test_fit_by_tokens_and_point_fit(small_posterior, chinchilla_runs, chinchilla_fit):
    ax = plots.plot_fit(small_posterior, by="D", num_curves=3)
    png(ax)
    assert ax.get_xlabel() == "parameters N" and len(bands(ax)) == 3
    ax = plots.plot_fit(chinchilla_fit, chinchilla_runs, num_curves=3)
    png(ax)
    assert bands(ax) == [] and len(ax.get_lines()) == 3  # a point fit has no band
    with pytest.raises(ValueError, match="by must be"):
        plots.plot_fit(small_posterior, by="C")


def test_loss_frontier_reaches_the_budgets(small_posterior):
    ax = plots.plot_loss_frontier(small_posterior, BUDGETS)
    png(ax)
    assert ax.get_xscale() == "log"
    pred, mean = bands(ax)  # the predictive band first (underneath), then the mean law's
    for band in (pred, mean):
        x = band.get_paths()[0].vertices[:, 0]
        assert x.max() >= 2.9 * max(BUDGETS)  # the band reaches past the largest target budget
    lo_m, hi_m = _band_limits(mean)
    lo_p, hi_p = _band_limits(pred)
    assert np.all(lo_p <= lo_m + 1e-9) and np.all(hi_p >= hi_m - 1e-9)  # one new run is less certain than the mean
    # the budget markers show the same medians as the forecast table
    table = small_posterior.forecast(BUDGETS)
    marks = [c for c in ax.containers if hasattr(c, "lines")][0].lines[0]
    np.testing.assert_allclose(marks.get_xdata(), BUDGETS)
    np.testing.assert_allclose(marks.get_ydata(), table["L*"], rtol=1e-9)
    ax = plots.plot_loss_frontier(small_posterior, BUDGETS, predictive=False)
    assert len(bands(ax)) == 1


def _band_limits(band):
    v = band.get_paths()[0].vertices
    n = (len(v) - 1) // 2
    lower = v[1:n + 1] if v[1, 0] < v[n, 0] else v[n + 1:-1][::-1]
    upper = v[n + 2:-1][::-1] if v[1, 0] < v[n, 0] else v[1:n + 1]
    m = min(len(lower), len(upper))
    return lower[:m, 1], upper[:m, 1]


@pytest.mark.parametrize("quantity", ["N_opt", "D_opt", "D/N"])
def test_allocation_fan_chart(small_posterior, quantity):
    ax = plots.plot_allocation(small_posterior, BUDGETS, quantity=quantity)
    png(ax)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and ax.get_ylabel() == quantity
    fan = bands(ax)
    assert len(fan) == 4  # the default fan (50, 80, 95%) and the report's mass, 90%
    widths = [np.ptp(np.log(b.get_paths()[0].vertices[:, 1])) for b in fan]
    assert widths[0] >= widths[1] >= widths[2] >= widths[3]  # 95% drawn first (widest), then 90%, 80%, 50%
    x = fan[0].get_paths()[0].vertices[:, 0]
    assert x.max() >= 2.9 * max(BUDGETS)
    ref = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"][0]
    C, y = ref.get_data()
    expect = {"N_opt": np.sqrt(C / 120), "D_opt": np.sqrt(20 * C / 6), "D/N": np.full_like(C, 20.0)}[quantity]
    np.testing.assert_allclose(y, expect, rtol=1e-12)
    marks = [c for c in ax.containers if hasattr(c, "lines")][0].lines[0]
    np.testing.assert_allclose(marks.get_ydata(), small_posterior.forecast(BUDGETS)[quantity], rtol=1e-9)


def test_allocation_rejects_laws_without_N_and_D():
    law = "power_law"
    with pytest.raises(ValueError, match="needs a law of N and D"):
        plots.plot_allocation((law, {"k": [1.0, 2.0], "p": [0.1, 0.2]}), BUDGETS)


def test_prior_posterior(small_posterior):
    axes = plots.plot_prior_posterior(small_posterior)
    png(axes)
    shown = [a for a in axes.ravel() if a.get_visible()]
    assert [a.get_title() for a in shown] == ["E", "A", "B", "alpha", "beta"]
    assert [a.get_xlabel() for a in shown] == ["log10 E", "log10 A", "log10 B", "alpha", "beta"]
    for a in shown:
        (prior,) = a.get_lines()
        (post,) = bands(a)
        post_x = post.get_paths()[0].vertices[:, 0]
        assert np.ptp(post_x) < np.ptp(prior.get_xdata())  # the data narrowed every parameter


def test_predictive_check(small_posterior):
    ax = plots.plot_predictive_check(small_posterior)
    png(ax)
    assert ax.get_xscale() == "log" and len(bands(ax)) == 1
    assert scatter_points(ax) == 240
    inside = small_posterior.predictive_check(0.9)["coverage"]
    assert f"{100 * inside:.0f}% of runs inside" in ax.get_title()


def test_arviz_pair_trace_rank(small_posterior):
    axes = plots.plot_pairs(small_posterior)
    png(axes)
    assert axes.shape == (5, 5)
    assert axes[-1, 0].get_xlabel() == "E" and axes[-1, -1].get_xlabel() == "beta"
    assert scatter_points(axes[3, 1]) == small_posterior.num_chains * small_posterior.num_draws  # alpha vs A
    axes = plots.plot_trace(small_posterior, var_names=["alpha", "beta"])
    png(axes)
    assert axes.shape == (2, 2) and [a.get_title() for a in axes[:, 1]] == ["alpha", "beta"]
    assert len(axes[0, 1].get_lines()) == small_posterior.num_chains
    axes = plots.plot_rank(small_posterior)
    png(axes)
    assert sorted(a.get_title() for a in np.ravel(axes) if a.get_visible() and a.get_title()) == sorted(["E", "A", "B", "alpha", "beta"])


def test_families_small_multiples(small_posterior, chinchilla_runs, chinchilla_fit):
    df = pd.DataFrame({"N": chinchilla_runs.N, "C": chinchilla_runs.C, "loss": chinchilla_runs.loss,
                       "fam": np.where(chinchilla_runs.N < np.median(chinchilla_runs.N), "small", "large")})
    runs = load_runs(df, family="fam")
    flat = small_posterior.flat()
    fitted = {"small": chinchilla_fit, "large": ("chinchilla", {k: v[:50] for k, v in flat.items()}),
              "posterior": small_posterior}
    axes = plots.plot_families(fitted, BUDGETS, ncols=2)
    png(axes)
    assert axes.shape == (2, 2)
    shown = [a for a in axes.ravel() if a.get_visible()]
    assert [a.get_title() for a in shown] == ["small", "large", "posterior"]
    assert [len(bands(a)) for a in shown] == [0, 1, 2]  # point fit: none; draws: the mean band; posterior: + predictive
    axes = plots.plot_families({"small": chinchilla_fit, "large": chinchilla_fit}, BUDGETS, runs=runs, kind="allocation")
    assert [scatter_points(a) for a in axes.ravel()] == [0, 0]
    assert all(a.get_yscale() == "log" for a in axes.ravel())
    axes = plots.plot_families({"small": chinchilla_fit}, BUDGETS, runs=runs)
    assert scatter_points(axes.ravel()[0]) == int(np.sum(runs.family == "small"))


def test_families_from_a_hierarchical_posterior(small_posterior):
    from bayes_scaling.analyses.hierarchical import HierarchicalPosterior

    law = small_posterior.law
    draws = {k: np.stack([v, v * (1.02 if k == "E" else 1.0)], axis=-1) for k, v in small_posterior.draws.items()}
    hp = HierarchicalPosterior(law=law, families=("base", "shifted"), modes={"alpha": "complete", "beta": "complete"},
                               draws=draws, population={}, noise={"sigma": np.stack([small_posterior.noise["sigma"]] * 2, -1)},
                               sample_stats=small_posterior.sample_stats)
    axes = plots.plot_families(hp, BUDGETS, show_runs=False)
    png(axes)
    a, b = axes.ravel()
    assert (a.get_title(), b.get_title()) == ("base", "shifted") and len(bands(a)) == len(bands(b)) == 1
    # the shifted family's floor E is 2% higher: its frontier lies above the other's everywhere
    assert np.all(b.get_lines()[0].get_ydata() > a.get_lines()[0].get_ydata())


def test_shared_y_axis_shows_every_family(small_posterior, chinchilla_fit):
    low = dict(chinchilla_fit.params, E=chinchilla_fit.params["E"] - 0.5)
    axes = plots.plot_families({"base": chinchilla_fit, "lower": ("chinchilla", {k: [v] for k, v in low.items()})},
                               BUDGETS, show_runs=False)
    a, b = axes.ravel()
    assert a.get_ylim() == b.get_ylim()
    lo, hi = a.get_ylim()
    for ax in (a, b):
        y = ax.get_lines()[0].get_ydata()
        assert lo <= y.min() and y.max() <= hi  # neither family's frontier is cut off


# ---- IsoFLOP and critical-batch-size figures (posteriors of the published sweeps, shared via conftest) -----------
def markers(ax):
    """(x, y) of every non-empty errorbar's marker, in drawing order (legend stand-ins are empty)."""
    out = []
    for c in ax.containers:
        x, y = c.lines[0].get_data()
        if len(x):
            out.append((np.asarray(x, float), np.asarray(y, float)))
    return out


def band_x_range(band):
    v = band.get_paths()[0].vertices
    return v[:, 0].min(), v[:, 0].max()


def test_isoflop_curves(porian_tuned):
    post = porian_tuned
    K = post.vertex.shape[1]
    ax = plots.plot_isoflop(post, prob=0.9)
    png(ax)
    assert len(bands(ax)) == K and ax.get_xscale() == "log"
    assert ax.get_xlabel() == "parameters N" and "loss" in ax.get_ylabel()
    assert scatter_points(ax) == int(post.data.mask.sum())  # every run in a parabola window, none else
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert sum(lab.startswith("C = ") for lab in labels) == K
    # one vertex marker per budget, at the posterior median N_opt, with the interval of the vertices table
    v = post.vertices(prob=0.9)
    ms = markers(ax)
    assert len(ms) == K
    np.testing.assert_allclose([m[0][0] for m in ms], v["N_opt"], rtol=1e-3)
    np.testing.assert_allclose([m[1][0] for m in ms], np.median(post.sampler.flat("L_star")[:, :K], axis=0), rtol=1e-9)
    lo = [c.lines[2][0].get_segments()[0][0][0] for c in ax.containers if len(c.lines[0].get_xdata())]
    np.testing.assert_allclose(lo, v["N_opt_lo"], rtol=1e-3)


def test_isoflop_vertices_reach_the_budgets(porian_tuned):
    post = porian_tuned
    K = post.vertex.shape[1]
    budgets = [1e21, 1e22]
    ax = plots.plot_isoflop_vertices(post, budgets)
    png(ax)
    assert len(bands(ax)) == 1 and ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert "N_opt" in ax.get_ylabel() and "FLOPs" in ax.get_xlabel()
    ms = markers(ax)
    assert len(ms) == K + 1  # one per budget's vertex, one errorbar for both target budgets
    np.testing.assert_allclose([m[0][0] for m in ms[:K]], post.data.C[:K])
    fc = post.forecast(budgets)
    np.testing.assert_allclose(ms[-1][1], fc["N_opt"], rtol=1e-9)
    lo, hi = band_x_range(bands(ax)[0])
    assert lo < post.data.C.min() and hi > max(budgets)


def test_critical_batch_sweep(zhang_critical_batch):
    post = zhang_critical_batch
    G = len(post.sweep.groups)
    ax = plots.plot_critical_batch(post, batch_label="batch size (sequences)")
    png(ax)
    assert len(bands(ax)) == G == 5
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "batch size (sequences)" and "steps" in ax.get_ylabel()
    assert scatter_points(ax) == int(post.sweep.mask.sum())
    t = post.table(prob=0.9)
    ms = markers(ax)
    assert len(ms) == 2 * G  # per group: McCandlish's B_crit, then Zhang's CBS
    np.testing.assert_allclose([m[0][0] for m in ms[0::2]], t["B_crit"], rtol=1e-9)
    np.testing.assert_allclose([m[0][0] for m in ms[1::2]], t["cbs_zhang"], rtol=1e-9)
    labels = [t_.get_text() for t_ in ax.get_legend().get_texts()]
    assert set(post.sweep.groups) <= set(labels)
    ax = plots.plot_critical_batch(post, definition="zhang")
    assert len(markers(ax)) == G
    with pytest.raises(ValueError, match="definition must be"):
        plots.plot_critical_batch(post, definition="kaplan")


def test_critical_batch_law_reaches_the_forecasts(zhang_critical_batch, zhang_size_law):
    from bayes_scaling.analyses.batch_size import forecast_critical_batch

    post, law = zhang_critical_batch, zhang_size_law
    at = [3e9, 7e9]
    ax = plots.plot_critical_batch_law(post, law, at=at)
    png(ax)
    assert len(bands(ax)) == 1 and ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "N_params_nominal" and "critical batch size" in ax.get_ylabel()
    (gx, gy), (fx, fy) = markers(ax)
    np.testing.assert_allclose(gx, post.sweep.extra["N_params_nominal"])
    np.testing.assert_allclose(gy, post.table(prob=0.9)["cbs_zhang"], rtol=1e-9)
    np.testing.assert_allclose(fy, forecast_critical_batch(law, at=at)["median"], rtol=1e-9)
    lo, hi = band_x_range(bands(ax)[0])
    assert lo < gx.min() and hi > max(at)
    # the law alone: its own points (the groups' posterior means in log space), same band
    ax = plots.plot_critical_batch_law(law)
    assert len(bands(ax)) == 1 and len(markers(ax)) == 1 and len(markers(ax)[0][0]) == len(gx)
    with pytest.raises(ValueError, match="by must name"):
        plots.plot_critical_batch_law(post, by="lr")


# ---- what the legends claim is what is drawn, visibly; labels keep clear of the runs; the data's end is marked ---------
def line_labelled(ax, start):
    (line,) = [ln for ln in ax.get_lines() if ln.get_label().startswith(start)]
    return line


def band_labelled(ax, start):
    (band,) = [b for b in bands(ax) if b.get_label().startswith(start)]
    return band


def errorbar_extents(ax):
    """(lo, hi) of the first non-empty errorbar container's vertical bars."""
    c = [c for c in ax.containers if len(c.lines[0].get_xdata())][0]
    segs = c.lines[2][0].get_segments()
    return np.array([s[:, 1].min() for s in segs]), np.array([s[:, 1].max() for s in segs])


def band_edges(band):
    """``(x, lower, upper)`` of a fill_between band (its path: start, lower edge, upper edge backwards, close)."""
    v = band.get_paths()[0].vertices
    n = (len(v) - 3) // 2
    lower, upper = v[1:n + 1], v[n + 2:2 * n + 2][::-1]
    assert np.allclose(lower[:, 0], upper[:, 0])
    return lower[:, 0], lower[:, 1], upper[:, 1]


def quantiles(draws, prob):
    return np.quantile(draws.reshape(-1, draws.shape[-1]), [(1 - prob) / 2, (1 + prob) / 2], axis=0)


@pytest.mark.parametrize("prob", [0.9, 0.8])
def test_allocation_intervals_are_the_prob_intervals(small_posterior, prob):
    """The error bars at the budgets are the forecast table's ``prob`` intervals, and the fan holds a band of that mass."""
    post = small_posterior
    ax = plots.plot_allocation(post, BUDGETS, quantity="N_opt", prob=prob)
    fc = post.forecast(BUDGETS, prob=prob)
    lo, hi = errorbar_extents(ax)
    np.testing.assert_allclose(lo, fc["N_opt_lo"], rtol=1e-9)
    np.testing.assert_allclose(hi, fc["N_opt_hi"], rtol=1e-9)
    # the fan: 50, 80, 95% and prob, each named in the legend; the prob band is the prob interval of N_opt's draws
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    masses = sorted({0.5, 0.8, 0.95, prob})
    assert sorted(lab.split("%")[0] for lab in labels if "% interval" in lab) == sorted(f"{100 * q:g}" for q in masses)
    assert f"target budgets, {100 * prob:g}%" in labels
    band = band_labelled(ax, f"{100 * prob:g}% interval")
    C, lo_b, hi_b = band_edges(band)
    np.testing.assert_allclose(C, line_labelled(ax, "median").get_xdata(), rtol=1e-12)
    qlo, qhi = quantiles(post.n_opt(C), prob)
    np.testing.assert_allclose(lo_b, qlo, rtol=1e-9)
    np.testing.assert_allclose(hi_b, qhi, rtol=1e-9)


def band_width_points(ax, band):
    """Per grid point of ``band``: its x and its height on screen in points (draw the figure first)."""
    x, lo, hi = band_edges(band)
    lo_d = ax.transData.transform(np.c_[x, lo])[:, 1]
    hi_d = ax.transData.transform(np.c_[x, hi])[:, 1]
    return x, (hi_d - lo_d) * 72.0 / ax.figure.dpi


def test_frontier_band_shows_beside_the_median(small_posterior):
    """The L*(C) band is outlined and the median drawn over it is thinner than the band where it extrapolates: the band
    shows on both sides of the line wherever it is wider than a pixel."""
    post = small_posterior
    ax = plots.plot_loss_frontier(post, BUDGETS)
    ax.figure.canvas.draw()
    pred, mean = bands(ax)
    median = line_labelled(ax, "L*(C), median")
    assert mean.get_linewidth()[0] >= 0.5 and mean.get_edgecolor()[0][3] >= 0.8  # the band's edges are drawn
    assert median.get_zorder() > mean.get_zorder() and median.get_linewidth() <= 1.0
    x, w = band_width_points(ax, mean)
    C_max = np.max(6 * post.observed["N"] * post.observed["D"])
    beyond = x > C_max
    assert beyond.sum() >= 10 and np.all(w[beyond] > median.get_linewidth())
    # wherever the band is wider than a pixel, its outline reaches out past the median line
    pixel = 72.0 / ax.figure.dpi
    wide = w > pixel
    assert np.all(w[wide] + mean.get_linewidth()[0] > median.get_linewidth() + pixel / 2)
    # the budgets' error bars are the forecast table's intervals of L*
    fc = post.forecast(BUDGETS)
    lo, hi = errorbar_extents(ax)
    np.testing.assert_allclose(lo, fc["L*_lo"], rtol=1e-9)
    np.testing.assert_allclose(hi, fc["L*_hi"], rtol=1e-9)


CLAIM = r"(\d+(?:\.\d+)?)% (?:band|interval|posterior-predictive band)"


def claimed_masses(ax):
    import re

    texts = [ax.get_title()] + ([t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [])
    return {float(m) for t in texts for m in re.findall(CLAIM, t)}


FIGURES = {
    "fit": lambda post, req: plots.plot_fit(post, num_curves=3),
    "frontier": lambda post, req: plots.plot_loss_frontier(post, BUDGETS),
    "allocation": lambda post, req: plots.plot_allocation(post, BUDGETS),
    "families": lambda post, req: plots.plot_families({"a": post}, BUDGETS).ravel()[0],
    "families_allocation": lambda post, req: plots.plot_families({"a": post}, BUDGETS, kind="allocation").ravel()[0],
    "predictive_check": lambda post, req: plots.plot_predictive_check(post),
    "isoflop": lambda post, req: plots.plot_isoflop(req.getfixturevalue("porian_tuned")),
    "isoflop_vertices": lambda post, req: plots.plot_isoflop_vertices(req.getfixturevalue("porian_tuned"), [1e21]),
    "critical_batch": lambda post, req: plots.plot_critical_batch(req.getfixturevalue("zhang_critical_batch")),
    "critical_batch_law": lambda post, req: plots.plot_critical_batch_law(req.getfixturevalue("zhang_critical_batch"),
                                                                          req.getfixturevalue("zhang_size_law")),
}


@pytest.mark.parametrize("figure", list(FIGURES))
def test_claimed_bands_are_drawn_visibly(small_posterior, request, figure):
    """A figure whose title or legend names a band of some mass draws that mass (the default 90%, and for fan charts the
    masses of its legend), and draws it so that it shows: outlined (or a wide filled band), under lines no wider than 1 pt."""
    ax = FIGURES[figure](small_posterior, request)
    claimed = claimed_masses(ax)
    assert claimed and 90.0 in claimed
    drawn = bands(ax)
    assert drawn
    labelled = {float(b.get_label().split("%")[0].split()[-1]) for b in drawn if "%" in b.get_label()}
    assert labelled <= claimed  # every band named in the legend is one the figure claims
    if figure != "predictive_check":  # there the band is the check itself, wide and with no line on it
        outlined = [b for b in drawn if b.get_linewidth()[0] > 0]
        assert outlined and all(b.get_edgecolor()[0][3] >= 0.8 for b in outlined)
        medians = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
        assert medians and all(ln.get_linewidth() <= 1.0 for ln in medians)


def test_fit_bands_are_the_prob_bands(small_posterior):
    """plot_fit's title says 90% bands: each curve's band is the 90% interval of the law's loss over the draws."""
    import jax
    import jax.numpy as jnp

    post = small_posterior
    ax = plots.plot_fit(post, num_curves=3)
    assert "90% bands" in ax.get_title()
    logN = np.log10(post.observed["N"])
    for level, band in zip(np.linspace(logN.min(), logN.max(), 3), bands(ax)):
        D, lo, hi = band_edges(band)
        vals = post.derive(lambda p, N=10.0 ** level: jax.vmap(
            lambda d: jnp.exp(post.law.log_loss(p, {"N": N, "D": d})))(jnp.asarray(D)))
        qlo, qhi = quantiles(vals, 0.9)
        np.testing.assert_allclose(lo, qlo, rtol=1e-9)
        np.testing.assert_allclose(hi, qhi, rtol=1e-9)


def scatter_display(ax):
    pts = [c.get_offset_transform().transform(np.asarray(c.get_offsets(), float)) for c in ax.collections
           if isinstance(c, PathCollection) and len(c.get_offsets())]
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def markers_display(ax):
    pts = [ln.get_transform().transform(np.asarray(ln.get_xydata(), float)) for ln in ax.get_lines()
           if ln.get_marker() not in (None, "None", "none", "") and len(ln.get_xdata())]
    return np.concatenate(pts) if pts else np.zeros((0, 2))


def label_boxes(t, renderer):
    """A label's text extent and, when it has one, its box's."""
    patch = t.get_bbox_patch()
    return [t.get_window_extent(renderer)] + ([patch.get_window_extent(renderer)] if patch is not None else [])


def covers(bb, pts):
    return np.count_nonzero((pts[:, 0] >= bb.x0) & (pts[:, 0] <= bb.x1) & (pts[:, 1] >= bb.y0) & (pts[:, 1] <= bb.y1))


@pytest.mark.parametrize("dpi", [100, 50])
def test_frontier_labels_keep_clear_of_the_runs(small_posterior, dpi):
    """Each L* label at a target budget (text and its white box) covers no run and no error bar marker, and stays in the
    axes, at whatever resolution the figure is drawn (the place is chosen when drawn)."""
    ax = plots.plot_loss_frontier(small_posterior, BUDGETS)
    fig = ax.figure
    fig.set_dpi(dpi)
    fig.canvas.draw()
    labels = ax.texts
    assert [t.get_text() for t in labels] == [f"{v:.3f}" for v in small_posterior.forecast(BUDGETS)["L*"]]
    runs, marks = scatter_display(ax), markers_display(ax)
    assert len(runs) == 240
    renderer = fig.canvas.get_renderer()
    for t in labels:
        for bb in label_boxes(t, renderer):
            assert covers(bb, runs) == 0, t.get_text()
            assert covers(bb, marks) == 0, t.get_text()
            assert ax.bbox.x0 <= bb.x0 and bb.x1 <= ax.bbox.x1 and ax.bbox.y0 <= bb.y0 and bb.y1 <= ax.bbox.y1


@pytest.mark.parametrize("kind", ["frontier", "allocation"])
def test_labels_keep_clear_of_markers_legend_and_each_other(small_posterior, kind):
    """In small panels too (the families figure), no budget label covers a marker, the legend or another label."""
    axes = plots.plot_families({"a": small_posterior, "b": small_posterior}, BUDGETS, kind=kind)
    fig = axes.ravel()[0].figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in axes.ravel():
        boxes = [label_boxes(t, renderer)[-1] for t in ax.texts]
        assert len(boxes) == len(BUDGETS)
        pts = np.concatenate([scatter_display(ax), markers_display(ax)])
        legend = ax.get_legend()
        for i, bb in enumerate(boxes):
            assert covers(bb, pts) == 0
            if legend is not None:
                assert not bb.overlaps(legend.get_window_extent(renderer))
            assert not any(bb.overlaps(other) for other in boxes[i + 1:])


@pytest.mark.parametrize("kind", ["frontier", "allocation"])
def test_largest_run_marks_where_extrapolation_begins(small_posterior, kind):
    post = small_posterior
    make = plots.plot_loss_frontier if kind == "frontier" else plots.plot_allocation
    ax = make(post, BUDGETS)
    line = line_labelled(ax, "largest run")
    C_max = np.max(6 * post.observed["N"] * post.observed["D"])
    np.testing.assert_allclose(line.get_xdata(), [C_max, C_max], rtol=1e-12)
    assert line.get_linestyle() == ":"
    assert "largest run" in [t.get_text().split(" (")[0] for t in ax.get_legend().get_texts()]

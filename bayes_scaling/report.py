"""Reports a team can send around: one self-contained HTML page, a Markdown summary and a JSON file.

:func:`write_report` writes into a folder::

    report.html     the page: every figure embedded as a base64 PNG data URI, no script or style from the
                    network, so it opens anywhere (mail it, attach it to a ticket)
    report.md       the same tables in Markdown, figures linked from figures/
    report.json     every number of the page, machine-readable (NaN written as null)
    figures/*.png   the figures as files

Contents, in order: data provenance (file, SHA-256, rows, the conventions used such as C = 6ND), the law,
its priors and the noise model, the parameter table with equal-tailed and HDI intervals, the forecast table
per budget, sampler diagnostics and the posterior-predictive check in plain words, and the figures of
:mod:`bayes_scaling.plots`. Nothing is overwritten unless ``force=True``.

>>> report_files("out")[:3]
['out/report.html', 'out/report.md', 'out/report.json']
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import html
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .defaults import BUDGETS as DEFAULT_BUDGETS
from .discrepancy import resolve_discrepancy
from .html_page import figure_html, html_list_item, page_start
from .model import noise_prior_text
from .noise import noise_model, shape_from_settings, shape_settings
from .report_sections import (
    backtest_data,
    backtest_table,
    cost_table,
    in_short_lines,
    planning_data,
    plans_table,
    uncertainty_data,
    uncertainty_table,
)
from .tables import fmt_number, fmt_times

__all__ = ["write_report", "build_report", "provenance", "report_files", "FIGURES", "DEFAULT_BUDGETS"]

_FILES = ("report.html", "report.md", "report.json")

#: (file stem, caption) of each figure, in the order the report shows them
FIGURES = (
    ("frontier", "Loss at the compute-optimum L*(C) against compute, with its credible band (blue) and the band of "
                 "one new run's loss (orange), out to the target budgets (black: median and interval). Grey: the runs."),
    ("n_opt", "Compute-optimal model size N_opt(C), fan chart of nested credible intervals (log-log); dashed: a fixed "
              "20 tokens per parameter; grey span: the compute of the runs."),
    ("d_opt", "Compute-optimal training tokens D_opt(C), as for N_opt."),
    ("fit", "The runs (coloured by model size) against the fitted law at five model sizes, with credible bands."),
    ("predictive_check", "Posterior-predictive check: each run's log residual against the band new runs would fall in."),
    ("prior_posterior", "Each parameter's prior (line) and posterior (filled), each scaled to a peak of 1."),
    ("pairs", "Pairs of posterior draws: thin diagonals are ridges the data do not resolve (e.g. A with alpha)."),
    ("trace", "Trace plot: per parameter, each chain's density (left) and draws in order (right)."),
    ("rank", "Rank plot: each chain's ranks among all draws; flat and alike when the chains mixed."),
    ("calibration", "Backtest: the held-out runs' PIT (flat when calibrated, U-shaped when the intervals are too narrow) "
                    "and their coverage against the nominal interval mass (on the diagonal when calibrated)."),
)


def report_files(out_dir) -> list[str]:
    """The files :func:`write_report` writes in ``out_dir`` (figures included)."""
    out = [os.path.join(out_dir, f) for f in _FILES]
    return out + [os.path.join(out_dir, "figures", f"{name}.png") for name, _ in FIGURES]


# ---- provenance ------------------------------------------------------------------------------------------
def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rows_in_file(path) -> int | None:
    try:
        import pandas as pd

        ext = os.path.splitext(str(path))[1].lower()
        if ext in (".parquet", ".pq"):
            return int(len(pd.read_parquet(path)))
        return int(len(pd.read_csv(path, sep="\t" if ext in (".tsv", ".tab") else ",")))
    except Exception:  # provenance is best effort: a table the loader read but pandas re-reads differently
        return None


def provenance(runs=None, *, path=None, num_runs: int | None = None, notes: Iterable[str] = ()) -> dict[str, Any]:
    """Where the numbers came from: ``file`` (absolute path), ``sha256`` of its bytes, ``rows_in_file``,
    ``runs_used``, the ``columns`` mapping (role -> column), and ``conventions`` (C = 6ND, units, any column
    the loader filled from the others). ``path`` defaults to ``runs.source`` when that is a file."""
    from .data import FLOPS_CONVENTION

    path = path if path is not None else (runs.source if runs is not None and os.path.isfile(str(runs.source)) else None)
    out: dict[str, Any] = {"file": None, "sha256": None, "bytes": None, "rows_in_file": None}
    if path is not None:
        path = os.path.abspath(os.fspath(path))
        out.update(file=path, sha256=_sha256(path), bytes=os.path.getsize(path), rows_in_file=_rows_in_file(path))
    out["source"] = runs.source if runs is not None else (path or "")
    out["runs_used"] = int(len(runs)) if runs is not None else num_runs
    out["columns"] = dict(runs.columns) if runs is not None else {}
    conventions = [f"training compute {FLOPS_CONVENTION} (FLOPs; N parameters, D training tokens)",
                   "loss in nats per token, as given in the table"]
    conventions += list(runs.notes) if runs is not None else []
    conventions += list(notes)
    out["conventions"] = conventions
    return out


# ---- content --------------------------------------------------------------------------------------------
def json_safe(x):
    """JSON-safe: NaN/inf -> None, NumPy scalars -> Python."""
    if isinstance(x, Mapping):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    if isinstance(x, np.ndarray):
        return json_safe(x.tolist())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _plain_diagnostics(diag, ppc, settings) -> list[str]:
    """Sentences a reader can act on."""
    out = []
    from .diagnostics import fmt_rhat

    chains, draws = settings.get("num_chains"), settings.get("num_samples")
    if diag.get("sampler_ok", diag["ok"]):
        out.append(f"The sampler is healthy: no divergent transitions, the {chains} chains agree (max R-hat "
                   f"{fmt_rhat(diag['max_r_hat'])}), and at least {min(diag['min_ess_bulk'], diag['min_ess_tail']):.0f} "
                   "effective draws per parameter (bulk and tail).")
    else:
        out.append(f"The sampler needs attention: {diag['divergences']} divergent transitions, max R-hat "
                   f"{fmt_rhat(diag['max_r_hat'])}, min bulk ESS {diag['min_ess_bulk']:.0f}, min tail ESS "
                   f"{diag['min_ess_tail']:.0f} (from {chains} chains x {draws} draws).")
    out.extend(diag["warnings"])
    out.extend(diag.get("notes", []))
    cov, q = ppc["coverage"], ppc["prob"]
    verdict = ("as expected when the model describes the runs" if abs(cov - q) <= 0.07 else
               "fewer than expected: the noise model is too narrow or the law misses a trend" if cov < q else
               "more than expected: the noise model is wider than the runs need")
    out.append(f"Posterior-predictive check: {100 * cov:.0f}% of the runs lie inside their {100 * q:g}% predictive "
               f"interval, {verdict}. Bayesian p-value of the residual spread: {ppc['p_value_spread']:.2f} "
               "(near 0 or 1 flags a misfit).")
    return out


def build_report(post, *, runs=None, budgets=DEFAULT_BUDGETS, prob: float = 0.9, data_path=None,
                 title: str | None = None, notes: Iterable[str] = (), inputs: Mapping[str, float] | None = None,
                 discrepancy="default", backtest=None, plans=(), hardware=None) -> dict[str, Any]:
    """The report's content as a JSON-safe dict (no figures): ``title``, ``created``, ``provenance``,
    ``law``, ``noise``, ``parameters``, ``forecast``, ``diagnostics``, ``predictive_check``, ``sampler``,
    ``point_fit``, ``uncertainty`` (a new run's loss with the extrapolation term of ``discrepancy``, "default": the
    package's calibration, and the shares of noise, parameters, law form and extrapolation), ``planning`` (each
    budget's cost on ``hardware`` and the loss and cost of ``plans``: :func:`~.report_sections.planning_data`) and,
    given a :class:`~bayes_scaling.backtests.Backtest`, ``backtest``."""
    from . import __version__

    law = post.law
    pct = f"{100 * prob:g}%"
    table = post.summary(prob=prob)
    params = []
    for name, r in table.iterrows():
        params.append({"name": name, "median": r["median"], "mean": r["mean"], "sd": r["sd"],
                       "lo": r[f"eti_{pct}_lo"], "hi": r[f"eti_{pct}_hi"], "hdi_lo": r[f"hdi_{pct}_lo"],
                       "hdi_hi": r[f"hdi_{pct}_hi"], "r_hat": r["r_hat"], "ess_bulk": r["ess_bulk"], "ess_tail": r["ess_tail"]})
    forecast = None
    if ("N" in law.inputs and "D" in law.inputs) or law.inputs == ("C",):
        forecast = post.forecast(budgets, prob=prob, inputs=inputs).to_dict(orient="records")
    diag = post.diagnostics(budgets=budgets)
    ppc = post.predictive_check(prob=prob)
    s = post.settings
    recorded = s.get("priors", {})
    law_info = {
        "name": law.name, "formula": law.formula, "inputs": list(law.inputs), "reference": law.reference,
        "fixed": law.fixed_values,
        "parameters": [{"name": p.name, "prior": _prior(recorded, p), "doc": p.doc,
                        "fixed": law.fixed_values.get(p.name)} for p in law.params],
    }
    noise = {"likelihood": s.get("likelihood"), **shape_settings(s.get("likelihood"), shape_from_settings(s)),
             "sigma_prior": noise_prior_text(s.get("noise_prior", "half_normal"), s.get("noise_scale", 0.1)),
             "varies_with_compute": s.get("noise_varies_with_compute"),
             "description": _noise_words(s)}
    sampler = {k: s.get(k) for k in ("num_chains", "num_warmup", "num_samples", "seed", "target_accept", "dense_mass",
                                     "chain_method", "init", "seconds")}
    prov = provenance(runs, path=data_path, num_runs=len(post.observed.get("loss", [])), notes=notes)
    prov["data_sha256"] = s.get("data_sha256")
    disc = resolve_discrepancy(discrepancy)
    out = json_safe({
        "title": title or f"{law.name} law: posterior forecast",
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "bayes_scaling_version": __version__,
        "prob": prob, "interval": f"{pct} equal-tailed (HDI alongside)",
        "budgets": list(np.asarray(budgets, float)),
        "provenance": prov, "law": law_info, "noise": noise, "parameters": params, "forecast": forecast,
        "exponent_a": _exponent_a(post, prob),
        "diagnostics": {**diag, "plain": _plain_diagnostics(diag, ppc, s)}, "predictive_check": ppc,
        "sampler": sampler, "point_fit": post.point_fit,
        "uncertainty": None if inputs else uncertainty_data(post, budgets, prob, disc),
        "backtest": None if backtest is None else backtest_data(backtest),
        "planning": None if inputs else planning_data(post, budgets, prob, disc, plans, hardware),
    })
    out["in_short"] = in_short(out)
    return out


def _prior(recorded, p) -> str:
    """The prior the sampler recorded for parameter ``p``; the law's own where none (or an old object repr) is."""
    from .laws import prior_text

    text = recorded.get(p.name)
    return text if text and not text.startswith("<") else prior_text(p.prior)


def _noise_words(s) -> str:
    lik = s.get("likelihood", "student_t")
    shape = shape_from_settings(s)
    try:
        kind = noise_model(lik, legacy=True).describe(shape)
    except ValueError:
        kind = str(lik)
    scale = ("sigma x exp(gamma (log C - mean log C)), gamma ~ Normal(0, 0.5): the noise may grow or shrink with compute"
             if s.get("noise_varies_with_compute") else "a constant sigma")
    return f"{kind} noise on log loss with scale {scale}; sigma ~ {noise_prior_text(s.get('noise_prior', 'half_normal'), s.get('noise_scale', 0.1))}"


def _exponent_a(post, prob):
    from .posterior import interval

    if not ({"alpha", "beta"} <= set(post.draws) and post.law.optimum is not None):
        return None
    a = post.exponent_a()
    lo, hi = interval(a, prob)
    return {"median": float(np.median(a)), "lo": lo, "hi": hi}


# ---- figures -----------------------------------------------------------------------------------------
def render_figures(post, *, runs=None, budgets=DEFAULT_BUDGETS, prob: float = 0.9, dpi: int = 100,
                   inputs=None) -> dict[str, bytes]:
    """Each figure of :data:`FIGURES` that applies to the law, as PNG bytes keyed by name."""
    import matplotlib

    from . import plots

    law = post.law
    nd = "N" in law.inputs and "D" in law.inputs
    makers = {
        "frontier": lambda: plots.plot_loss_frontier(post, budgets, runs=runs, prob=prob, inputs=inputs),
        "n_opt": (lambda: plots.plot_allocation(post, budgets, runs=runs, quantity="N_opt", prob=prob, inputs=inputs)) if nd else None,
        "d_opt": (lambda: plots.plot_allocation(post, budgets, runs=runs, quantity="D_opt", prob=prob, inputs=inputs)) if nd else None,
        "fit": lambda: plots.plot_fit(post, runs, prob=prob, inputs=inputs),
        "predictive_check": lambda: plots.plot_predictive_check(post, prob=prob),
        "prior_posterior": lambda: plots.plot_prior_posterior(post),
        "pairs": lambda: plots.plot_pairs(post),
        "trace": lambda: plots.plot_trace(post),
        "rank": lambda: plots.plot_rank(post),
    }
    if not (nd or law.inputs == ("C",)):
        makers["frontier"] = None
    from . import progress

    out = {}
    todo = [name for name, _ in FIGURES if makers.get(name) is not None]
    with matplotlib.rc_context({"figure.max_open_warning": 0}):
        for i, name in enumerate(todo):
            out[name] = png_bytes(makers[name](), dpi)
            progress.report("report figures", i + 1, len(todo))
    return out


def png_bytes(axes, dpi: int = 100) -> bytes:
    """The figure of ``axes`` (one Axes or an array of them) as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    fig = np.asarray(axes).ravel()[0].figure
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


# ---- rendering ---------------------------------------------------------------------------------------
def in_short(data) -> list[str]:
    """The report's first lines, truth first: what is flagged (far extrapolation, an unhealthy sampler, the data's or
    the fit's problems) before the headline numbers, and each budget's distance beyond the runs."""
    from .checks import FAR_EXTRAPOLATION

    diag = data["diagnostics"]
    lines = []
    if not diag.get("sampler_ok", diag["ok"]):
        lines.append("WARNING: the sampler is not healthy; these numbers may be wrong (see Diagnostics).")
    lines += [f"WARNING: {w}" for w in diag.get("problems", [])]
    extra = in_short_lines(data)
    lines += [x for x in extra if x.startswith("WARNING")]
    for r in data["forecast"] or []:
        f = r.get("extrapolation")
        far = f is not None and f >= FAR_EXTRAPOLATION
        where = f" ({fmt_times(f).split(' ')[0]} the largest run{', far beyond the runs' if far else ''})" if f is not None else ""
        if "N_opt" in r:
            lines.append(f"At C = {r['budget']:.3g} FLOPs{where}: N_opt {r['N_opt']:.3g} ({r['N_opt_lo']:.3g}, "
                         f"{r['N_opt_hi']:.3g}), D_opt {r['D_opt']:.3g}, L* {r['L*']:.4f} ({r['L*_lo']:.4f}, {r['L*_hi']:.4f}).")
        else:
            lines.append(f"At C = {r['budget']:.3g} FLOPs{where}: L* {r['L*']:.4f} ({r['L*_lo']:.4f}, {r['L*_hi']:.4f}).")
    ex = data.get("exponent_a")
    if ex:
        lines.append(f"Exponent a (N_opt ∝ C^a): {ex['median']:.3f} ({ex['lo']:.3f}, {ex['hi']:.3f}).")
    return lines + [x for x in extra if not x.startswith("WARNING")]


def _tables(data) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(id, heading, header, rows) of every table, shared by the HTML and the Markdown."""
    prov = data["provenance"]
    pct = f"{100 * data['prob']:g}%"
    t = []
    rows = [["file", prov["file"] or prov["source"]], ["SHA-256", prov["sha256"] or "– (not a file)"],
            ["data SHA-256", prov.get("data_sha256") or "–"],
            ["rows in file", str(prov["rows_in_file"]) if prov["rows_in_file"] is not None else "–"],
            ["runs used", str(prov["runs_used"])],
            ["columns", ", ".join(f"{k} = {v!r}" for k, v in prov["columns"].items()) or "–"]]
    rows += [["convention", c] for c in prov["conventions"]]
    t.append(("provenance", "Data provenance", ["", ""], rows))
    law = data["law"]
    rows = [[p["name"], f"fixed at {p['fixed']:g}" if p["fixed"] is not None else p["prior"], p["doc"]]
            for p in law["parameters"]]
    rows.append(["noise", data["noise"]["description"], ""])
    t.append(("law", f"Law and priors: {law['name']}, {law['formula']}", ["parameter", "prior", "meaning"], rows))
    rows = [[p["name"], fmt_number(p["median"]), f"({fmt_number(p['lo'])}, {fmt_number(p['hi'])})",
             f"({fmt_number(p['hdi_lo'])}, {fmt_number(p['hdi_hi'])})",
             fmt_number(p["r_hat"]) if p["r_hat"] is None else f"{p['r_hat']:.3f}",
             fmt_number(p["ess_bulk"]) if p["ess_bulk"] is None else f"{p['ess_bulk']:.0f}"] for p in data["parameters"]]
    t.append(("parameters", f"Parameters: posterior median and {pct} intervals",
              ["parameter", "median", f"{pct} equal-tailed", f"{pct} HDI", "R-hat", "bulk ESS"], rows))
    if data["forecast"]:
        f0 = data["forecast"][0]
        cols = [c for c in ("N_opt", "D_opt", "D/N", "L*") if c in f0]
        kinds = {"L*": "loss", "D/N": "ratio"}
        rows = []
        for r in data["forecast"]:
            cells = [f"{r['budget']:.3g}"]
            for c in cols:
                k = kinds.get(c, "g")
                cells.append(f"{fmt_number(r[c], k)} ({fmt_number(r[c + '_lo'], k)}, {fmt_number(r[c + '_hi'], k)})")
            cells.append(f"({fmt_number(r['L_new_lo'], 'loss')}, {fmt_number(r['L_new_hi'], 'loss')})")
            cells.append(fmt_times(r.get("extrapolation")))
            rows.append(cells)
        t.append(("forecast", f"Forecast per budget: median ({pct} interval); C = 6ND FLOPs; the last column is how far "
                  "the budget lies beyond the largest run's compute",
                  ["budget C (FLOPs)"] + cols + ["one new run's loss", "C / largest run"], rows))
    if data.get("uncertainty"):
        t.append(uncertainty_table(data["uncertainty"], pct))
    if data.get("backtest"):
        t.append(backtest_table(data["backtest"]))
    if data.get("planning"):
        t += [plans_table(data["planning"], pct)] if data["planning"]["plans"] else []
        t.append(cost_table(data["planning"]))
    return t


def sampler_line(sm: Mapping[str, Any]) -> str:
    """The sampler's settings in one sentence; settings that were not recorded are left out (never "None")."""
    parts = [f"{sm['num_chains']} chains x ({sm['num_warmup']} warm-up + {sm['num_samples']} draws)"
             if all(sm.get(k) is not None for k in ("num_chains", "num_warmup", "num_samples")) else None,
             f"seed {sm['seed']}" if sm.get("seed") is not None else None,
             f"target acceptance {sm['target_accept']:g}" if sm.get("target_accept") is not None else None,
             "dense mass matrix" if sm.get("dense_mass") else None,
             f"start: {sm['init']}" if sm.get("init") else None,
             f"{sm['seconds']:.1f} s" if sm.get("seconds") is not None else None]
    return "NUTS: " + ", ".join(p for p in parts if p) + "."


def render_html(data, figures: Mapping[str, bytes]) -> str:
    e = html.escape
    parts = page_start(data["title"]) + [
             f"<p class=\"meta\">Written {e(data['created'])} by bayes_scaling {e(data['bayes_scaling_version'])}. "
             f"Intervals: {e(data['interval'])}.</p>"]
    headline = data.get("in_short") or in_short(data)
    if headline:
        parts.append('<h2>In short</h2><ul id="in-short">' + "".join(
            html_list_item(h) for h in headline) + "</ul>")
    for tid, heading, header, rows in _tables(data):
        parts.append(f"<h2>{e(heading)}</h2>")
        parts.append(f'<table id="{tid}">')
        if any(header):
            parts.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead>")
        parts.append("<tbody>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("<h2>Diagnostics in plain words</h2><ul id=\"diagnostics\">")
    parts += [f"<li>{e(s)}</li>" for s in data["diagnostics"]["plain"]]
    parts.append("</ul>")
    parts.append(f"<p class=\"meta\">{e(sampler_line(data['sampler']))}</p>")
    parts.append("<h2>Figures</h2>")
    captions = dict(FIGURES)
    parts += [figure_html(name, png, captions.get(name, name)) for name, png in figures.items()]
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(data, figures: Iterable[str]) -> str:
    lines = [f"# {data['title']}", "", f"Written {data['created']} by bayes_scaling {data['bayes_scaling_version']}. "
             f"Intervals: {data['interval']}.", ""]
    short = data.get("in_short") or in_short(data)
    if short:
        lines += ["## In short", ""] + [f"- {'**' + h + '**' if h.startswith('WARNING') else h}" for h in short] + [""]
    for _tid, heading, header, rows in _tables(data):
        lines += [f"## {heading}", ""]
        head = header if any(header) else ["item", "value"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    lines += ["## Diagnostics in plain words", ""] + [f"- {s}" for s in data["diagnostics"]["plain"]] + [""]
    captions = dict(FIGURES)
    lines += ["## Figures", ""]
    for name in figures:
        lines += [f"![{name}](figures/{name}.png)", "", f"*{captions.get(name, name)}*", ""]
    return "\n".join(lines)


def write_report(post, out_dir, *, runs=None, budgets=DEFAULT_BUDGETS, prob: float = 0.9, data_path=None,
                 title: str | None = None, notes: Iterable[str] = (), inputs=None, force: bool = False,
                 dpi: int = 100, discrepancy="default", backtest=None, plans=(), hardware=None) -> dict[str, str]:
    """Write report.html, report.md, report.json and figures/*.png for posterior ``post`` into ``out_dir``.

    runs:      the :class:`~bayes_scaling.Runs` the posterior was sampled on (provenance, figures); without
               it the data stored in the posterior are drawn and provenance names ``data_path`` only.
    data_path: the file to hash (default ``runs.source`` when it is a file).
    notes:     extra conventions or caveats for the provenance table (e.g. the subset used).
    discrepancy: the extrapolation term of a new run's forecast ("default": the package's calibration; None: none).
    backtest:  a :class:`~bayes_scaling.backtests.Backtest` of the same law and runs: its section and figure.
    plans, hardware: plans (as :func:`~bayes_scaling.planning.plan_losses` takes them) and the
               :class:`~bayes_scaling.cost.Hardware` they and each budget are costed on.
    force:     replace existing report files; without it an existing one raises ``FileExistsError``.

    Returns ``{"html": path, "markdown": path, "json": path, "figures": folder}``.
    """
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir}: exists and is not a directory")
    existing = [p for p in report_files(out_dir) if os.path.exists(p)]
    if existing and not force:
        raise FileExistsError(f"{existing[0]} exists; not overwriting it (pass force=True / --force to replace it)")
    data = build_report(post, runs=runs, budgets=budgets, prob=prob, data_path=data_path, title=title, notes=notes,
                        inputs=inputs, discrepancy=discrepancy, backtest=backtest, plans=plans, hardware=hardware)
    figures = render_figures(post, runs=runs, budgets=budgets, prob=prob, dpi=dpi, inputs=inputs)
    if backtest is not None:
        from .plots.calibration import plot_calibration

        fig = plot_calibration(backtest, backtest.rescored(None) if backtest.discrepancy is not None else None)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        figures["calibration"] = buf.getvalue()
        import matplotlib.pyplot as plt

        plt.close(fig)
    data["figures"] = [{"name": n, "file": f"figures/{n}.png", "caption": dict(FIGURES)[n]} for n in figures]
    return write_page(out_dir, "report", data, figures, render_html(data, figures), render_markdown(data, figures))


def write_page(out_dir, stem: str, data, figures: Mapping[str, bytes], html_text: str, markdown_text: str) -> dict[str, str]:
    """Write ``figures/*.png``, ``{stem}.html``, ``{stem}.md`` and ``{stem}.json`` (``data``) into ``out_dir``;
    returns their paths (``html``, ``markdown``, ``json``, ``figures``: the folder)."""
    fig_dir = os.path.join(out_dir, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    for name, png in figures.items():
        with open(os.path.join(fig_dir, f"{name}.png"), "wb") as fh:
            fh.write(png)
    paths = {"html": os.path.join(out_dir, f"{stem}.html"), "markdown": os.path.join(out_dir, f"{stem}.md"),
             "json": os.path.join(out_dir, f"{stem}.json"), "figures": fig_dir}
    for key, text in (("html", html_text), ("markdown", markdown_text)):
        with open(paths[key], "w", encoding="utf-8") as fh:
            fh.write(text)
    with open(paths["json"], "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, allow_nan=False)
        fh.write("\n")
    return paths

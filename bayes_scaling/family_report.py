"""A report for many families: one index page over the families, and each family's full report beside it.

:func:`write_family_report` takes a :class:`~bayes_scaling.batch_posterior.BatchPosterior` and writes into a folder::

    index.html              the overview, self-contained (figures embedded): provenance of the table, the law,
                            the families that need attention (unhealthy samplers, skipped families), one row
                            per family (runs, sampler health, N_opt and L* at each budget with intervals, a
                            link to its report), small multiples of the frontier and of N_opt
    index.md, index.json    the same in Markdown and as machine-readable numbers
    figures/*.png           the small multiples as files
    families/NNN-name/      each family's own report (:func:`~bayes_scaling.report.write_report`) and, with
                            ``save_posteriors``, its posterior.nc

Nothing is overwritten unless ``force=True``.

>>> family_dir_name(3, "owt2/base long")
'003-owt2_base_long'
"""

from __future__ import annotations

import datetime as _dt
import html
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import progress
from .defaults import ESS_MIN, HEALTH_TEXT, RHAT_MAX
from .html_page import figure_html, html_list_item, page_start
from .report import (
    DEFAULT_BUDGETS,
    json_safe,
    png_bytes,
    provenance,
    report_files,
    sampler_line,
    write_page,
    write_report,
)
from .tables import fmt_number, fmt_times

__all__ = ["write_family_report", "family_dir_name", "family_report_files"]

_INDEX = ("index.html", "index.md", "index.json")
_FIGURES = (
    ("families_frontier", "Per family: loss at the compute-optimum L*(C) with its credible band, the runs in grey, "
                          "and the budgets' medians and intervals."),
    ("families_n_opt", "Per family: compute-optimal model size N_opt(C), nested credible bands (log-log)."),
)


def family_dir_name(index: int, family: str) -> str:
    """A folder name for a family: its position (keeps names unique and in order) and its name made safe."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(family)).strip("._") or "family"
    return f"{index:03d}-{safe[:60]}"


def family_report_files(out_dir) -> list[str]:
    """The index files :func:`write_family_report` writes directly in ``out_dir``."""
    return [os.path.join(out_dir, f) for f in _INDEX] + [os.path.join(out_dir, "figures", f"{n}.png") for n, _ in _FIGURES]


def _figures(batch, runs, budgets, prob, dpi, max_families) -> dict[str, bytes]:
    from .plots import plot_families

    return {name: png_bytes(plot_families(batch, budgets, runs=runs, kind=kind, prob=prob, max_families=max_families), dpi)
            for name, kind in (("families_frontier", "frontier"), ("families_n_opt", "allocation"))}


def _family_rows(batch, runs, budgets, prob, inputs, dirs) -> list[dict[str, Any]]:
    failing = batch.failing()
    rows = []
    for fam, post in batch.posteriors.items():
        diag = post.diagnostics(budgets=budgets)
        sampler = [p for p in failing.get(fam, []) if p not in diag["problems"]]
        row = {"family": fam, "runs": int(len(post.observed.get("loss", ()))), "healthy": diag["ok"],
               "sampler_ok": diag["sampler_ok"], "problems": sampler, "warnings": diag["problems"],
               "divergences": diag["divergences"], "max_r_hat": diag["max_r_hat"], "min_ess_bulk": diag["min_ess_bulk"],
               "min_ess_tail": diag["min_ess_tail"], "largest_run": post.max_compute(),
               "report": f"families/{dirs[fam]}/report.html", "forecast": []}
        law = post.law
        if ("N" in law.inputs and "D" in law.inputs) or law.inputs == ("C",):
            row["forecast"] = post.forecast(budgets, prob=prob, inputs=inputs).to_dict(orient="records")
        rows.append(row)
    return rows


def _summary_table(data) -> tuple[list[str], list[list[str]]]:
    budgets = data["budgets"]
    header = ["family", "runs", "status", "largest run (FLOPs)"]
    has_n = any(r["forecast"] and "N_opt" in r["forecast"][0] for r in data["families"])
    for c in budgets:
        header.append(f"C / largest run at {c:.3g}")
        if has_n:
            header.append(f"N_opt at {c:.3g}")
        header.append(f"L* at {c:.3g}")
    rows = []
    for r in data["families"]:
        cells = [r["family"], str(r["runs"]), _status(r), fmt_number(r.get("largest_run"))]
        by_budget = {f["budget"]: f for f in r["forecast"]}
        for c in budgets:
            f = by_budget.get(c)
            cells.append(fmt_times(None if f is None else f.get("extrapolation")))
            if has_n:
                cells.append("–" if f is None or "N_opt" not in f else
                             f"{fmt_number(f['N_opt'])} ({fmt_number(f['N_opt_lo'])}, {fmt_number(f['N_opt_hi'])})")
            cells.append("–" if f is None or "L*" not in f else
                         f"{fmt_number(f['L*'], 'loss')} ({fmt_number(f['L*_lo'], 'loss')}, {fmt_number(f['L*_hi'], 'loss')})")
        rows.append(cells)
    return header, rows


def _status(r) -> str:
    """A family's status in a few words: ok only when its sampler is healthy and nothing is flagged."""
    if r["healthy"]:
        return "ok"
    parts = [] if r.get("sampler_ok", True) else ["sampler unhealthy"]
    far = [w for w in r.get("warnings", []) if "the largest run" in w]
    if far:
        parts.append("far extrapolation")
    if len(r.get("warnings", [])) > len(far):
        parts.append("data or fit flagged")
    return "NEEDS ATTENTION: " + ", ".join(parts)


def in_short(data) -> list[str]:
    """The index's first lines: how many families need attention and why, and how far the budgets lie beyond the
    runs (the smallest and largest factor over the families), with a warning from 100x."""
    from .checks import FAR_EXTRAPOLATION

    fams = data["families"]
    lines = []
    bad = [r for r in fams if not r["healthy"]]
    if bad or data["skipped"]:
        lines.append(f"WARNING: {len(bad)} of {len(fams)} families need attention and {len(data['skipped'])} were skipped "
                     "(see the list below).")
    for c in data["budgets"]:
        f = [g.get("extrapolation") for r in fams for g in r["forecast"] if g["budget"] == c and g.get("extrapolation")]
        if not f:
            continue
        lo, hi = min(f), max(f)
        span = fmt_times(lo).split(" ")[0] + (f"-{fmt_times(hi).split(' ')[0]}" if hi > lo * 1.001 else "")
        if lo >= FAR_EXTRAPOLATION:
            lines.append(f"WARNING: budget {c:.3g} FLOPs is {span} the largest run of each family: far beyond the runs; such "
                         "a forecast rests on the law's form holding over that range, and its interval is a lower bound "
                         "on the uncertainty.")
        else:
            lines.append(f"Budget {c:.3g} FLOPs is {span} the largest run of each family.")
    ok = [r for r in fams if r["healthy"]]
    lines.append(f"{len(ok)} of {len(fams)} families: healthy sampler and nothing flagged.")
    return lines


def _attention(data) -> list[str]:
    out = []
    for r in data["families"]:
        if r["healthy"]:
            continue
        if not r.get("sampler_ok", True):
            todo = []
            if r["divergences"]:
                todo.append("raise --target-accept (0.95-0.99) so NUTS takes smaller steps")
            if any(p.startswith(("R-hat", "bulk ESS", "tail ESS")) for p in r["problems"]):
                todo.append(f"run more --warmup and --draws ({HEALTH_TEXT})")
            out.append(f"family {r['family']!r}: sampler unhealthy ({'; '.join(r['problems'])}): {' and '.join(todo)}; "
                       "its report's trace and pairs plots show where the chains disagree")
        out += [f"family {r['family']!r}: {w}" for w in r.get("warnings", [])]
    out += [f"family {fam!r} was not sampled: {why}" for fam, why in data["skipped"].items()]
    return out


def _render_html(data, figures: Mapping[str, bytes]) -> str:
    e = html.escape
    pct = f"{100 * data['prob']:g}%"
    prov = data["provenance"]
    parts = page_start(data["title"]) + [
             f"<p class=\"meta\">Written {e(data['created'])} by bayes_scaling {e(data['bayes_scaling_version'])}. "
             f"{len(data['families'])} families sampled, {len(data['skipped'])} skipped. Intervals: {pct} equal-tailed. "
             f"Law: {e(data['law']['name'])}, {e(data['law']['formula'])}.</p>"]
    rows = [["file", prov["file"] or prov["source"]], ["SHA-256", prov["sha256"] or "– (not a file)"],
            ["rows in file", str(prov["rows_in_file"]) if prov["rows_in_file"] is not None else "–"],
            ["runs used", str(prov["runs_used"])], ["families from", data["family_columns"]]]
    rows += [["convention", c] for c in prov["conventions"]]
    parts.append('<h2>Data provenance</h2><table id="provenance"><tbody>')
    parts += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows]
    parts.append("</tbody></table>")
    parts.append('<h2>In short</h2><ul id="in-short">' + "".join(
        html_list_item(h) for h in data["in_short"]) + "</ul>")
    attention = _attention(data)
    parts.append('<h2>Families that need attention</h2><ul id="attention">')
    parts += [f"<li>{e(a)}</li>" for a in attention] or ["<li>none: every family's sampler is healthy (no divergences, "
                                                         f"R-hat ≤ {RHAT_MAX}, bulk and tail ESS ≥ {ESS_MIN}), nothing is flagged and none "
                                                         "was skipped</li>"]
    parts.append("</ul>")
    header, body = _summary_table(data)
    parts.append(f'<h2>Families: median ({pct} interval); C = 6ND FLOPs</h2><table id="families">')
    parts.append("<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr></thead><tbody>")
    for r, cells in zip(data["families"], body):
        link = f'<a href="{e(r["report"])}">{e(cells[0])}</a>'
        parts.append("<tr>" + f"<td>{link}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells[1:]) + "</tr>")
    parts.append("</tbody></table>")
    parts.append(f"<p class=\"meta\">{e(sampler_line(data['sampler']))} Per family, each with its own adaptation; "
                 f"{data['seconds']:.1f} s for all families in one batch.</p>")
    parts.append("<h2>Figures</h2>")
    captions = dict(_FIGURES)
    drawn, total = data["families_drawn"], len(data["families"])
    note = f" The first {drawn} of {total} families." if drawn < total else ""
    parts += [figure_html(name, png, captions[name] + note) for name, png in figures.items()]
    parts.append("</body></html>")
    return "\n".join(parts)


def _render_markdown(data, figures: Iterable[str]) -> str:
    pct = f"{100 * data['prob']:g}%"
    esc = lambda c: str(c).replace("|", "\\|")
    lines = [f"# {data['title']}", "", f"Written {data['created']}. {len(data['families'])} families sampled, "
             f"{len(data['skipped'])} skipped. Law: {data['law']['name']}, `{data['law']['formula']}`. "
             f"Data: {data['provenance']['file'] or data['provenance']['source']} (SHA-256 {data['provenance']['sha256'] or '–'}).",
             "", "## In short", ""]
    lines += [f"- {'**' + h + '**' if h.startswith('WARNING') else h}" for h in data["in_short"]]
    lines += ["", "## Families that need attention", ""]
    lines += [f"- {a}" for a in _attention(data)] or ["- none"]
    header, body = _summary_table(data)
    lines += ["", f"## Families: median ({pct} interval)", "", "| " + " | ".join(map(esc, header)) + " |",
              "|" + "---|" * len(header)]
    for r, cells in zip(data["families"], body):
        lines.append("| " + " | ".join([f"[{esc(cells[0])}]({r['report'].replace('.html', '.md')})"] + [esc(c) for c in cells[1:]]) + " |")
    lines += ["", "## Figures", ""] + [f"![{n}](figures/{n}.png)" for n in figures]
    return "\n".join(lines) + "\n"


def write_family_report(batch, out_dir, *, runs=None, budgets=DEFAULT_BUDGETS, prob: float = 0.9, data_path=None,
                        title: str | None = None, notes: Iterable[str] = (), inputs=None, force: bool = False,
                        save_posteriors: bool = True, max_families_drawn: int = 12, dpi: int = 100) -> dict[str, Any]:
    """Write the index and every family's report for ``batch`` (a BatchPosterior) into ``out_dir``.

    runs:      the table the batch was sampled from, with its family column (provenance, each family's runs);
    force:     replace existing files (without it any existing index or family report raises FileExistsError);
    save_posteriors: also write each family's posterior.nc beside its report.

    Returns ``{"html", "markdown", "json", "figures", "families": {family: its report paths}}``.
    """
    from . import __version__

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir}: exists and is not a directory")
    fams = list(batch.posteriors)
    if not fams:
        raise ValueError("no family was sampled (all skipped): nothing to report")
    dirs = {f: family_dir_name(i, f) for i, f in enumerate(fams)}
    fam_dirs = {f: os.path.join(out_dir, "families", d) for f, d in dirs.items()}
    if not force:
        existing = [p for p in family_report_files(out_dir) if os.path.exists(p)]
        for d in fam_dirs.values():
            existing += [p for p in report_files(d) + [os.path.join(d, "posterior.nc")] if os.path.exists(p)]
        if existing:
            raise FileExistsError(f"{existing[0]} exists; not overwriting it (pass force=True / --force to replace it)")
    law = batch.posteriors[fams[0]].law
    budgets = [float(b) for b in budgets]
    per_family = {}
    for f in fams:
        post = batch.posteriors[f]
        sub = runs.select(runs.family == f) if runs is not None and runs.family is not None else None
        os.makedirs(fam_dirs[f], exist_ok=True)
        per_family[f] = write_report(post, fam_dirs[f], runs=sub, budgets=budgets, prob=prob, data_path=data_path,
                                     title=f"{title or law.name + ' law'}: family {f}",
                                     notes=[f"family {f!r} of the table: its {len(post.observed.get('loss', ()))} runs"] + list(notes),
                                     inputs=inputs, force=True, dpi=dpi)
        if save_posteriors:
            post.save(os.path.join(fam_dirs[f], "posterior.nc"), overwrite=True)
            per_family[f]["posterior"] = os.path.join(fam_dirs[f], "posterior.nc")
        progress.report("family reports", len(per_family), len(fams))
    s = batch.posteriors[fams[0]].settings
    used = sum(len(p.observed.get("loss", ())) for p in batch.posteriors.values())
    prov = provenance(runs, path=data_path, num_runs=used, notes=notes)
    prov["runs_used"] = used
    if runs is not None and len(runs) > used:
        prov["conventions"].append(f"{len(runs) - used} runs of {len(batch.skipped)} skipped families not used")
    data = json_safe({
        "title": title or f"{law.name} law: posterior forecasts for {len(fams)} families",
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "bayes_scaling_version": __version__, "prob": prob, "budgets": budgets,
        "provenance": prov,
        "family_columns": str((runs.columns.get("family") if runs is not None else None) or "family"),
        "law": {"name": law.name, "formula": law.formula},
        "sampler": {k: s.get(k) for k in ("num_chains", "num_warmup", "num_samples", "seed", "likelihood", "target_accept",
                                          "dense_mass", "init")},
        "seconds": batch.seconds,
        "families": _family_rows(batch, runs, budgets, prob, inputs, dirs),
        "skipped": dict(batch.skipped),
        "families_drawn": min(len(fams), max_families_drawn),
    })
    data["in_short"] = in_short(data)
    figures = _figures(batch, runs, budgets, prob, dpi, max_families_drawn)
    paths = write_page(out_dir, "index", data, figures, _render_html(data, figures), _render_markdown(data, figures))
    paths["families"] = per_family
    return paths

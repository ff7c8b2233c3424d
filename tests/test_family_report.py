"""`report RUNS --family COL --out DIR`: one batch of posteriors, an index page over the families (attention list,
one row per family with forecasts, small multiples) and each family's full report beside it."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest
from test_report import _chromium, _run_chromium, parse

from bayes_scaling.cli import main
from bayes_scaling.family_report import family_dir_name

SMALL = ["--chains", "2", "--warmup", "300", "--draws", "200"]
TRUTH = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.347, "beta": 0.367}


@pytest.fixture(scope="module")
def family_table(tmp_path_factory):
    rng = np.random.default_rng(4)
    rows = []
    for fam, (E, n) in {"web/v1": (1.8, 40), "code": (1.6, 40), "tiny": (1.7, 1)}.items():
        N = np.exp(rng.uniform(np.log(5e7), np.log(5e9), n))
        D = np.exp(rng.uniform(np.log(1e9), np.log(1e11), n))
        y = (E + TRUTH["A"] * N ** -TRUTH["alpha"] + TRUTH["B"] * D ** -TRUTH["beta"]) * np.exp(0.01 * rng.standard_normal(n))
        rows.append(pd.DataFrame({"N": N, "D": D, "loss": y, "mix": fam}))
    path = tmp_path_factory.mktemp("fam") / "families.csv"
    pd.concat(rows, ignore_index=True).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def family_report(family_table, tmp_path_factory):
    out = tmp_path_factory.mktemp("famreport") / "report"
    code = main(["report", str(family_table), "--family", "mix", "--out", str(out), "--budgets", "1e21", "1e23"] + SMALL)
    return out, code


def test_index_and_family_reports(family_report):
    out, code = family_report
    assert code in (0, 1)  # 1 only when a family's sampler is flagged; the report is written either way
    data = json.loads((out / "index.json").read_text())
    assert [r["family"] for r in data["families"]] == ["web/v1", "code"]
    assert data["skipped"] and "tiny" in data["skipped"]
    for i, r in enumerate(data["families"]):
        d = out / "families" / family_dir_name(i, r["family"])
        assert r["report"] == f"families/{d.name}/report.html"
        for f in ("report.html", "report.md", "report.json", "posterior.nc"):
            assert (d / f).is_file(), (d, f)
        one = json.loads((d / "report.json").read_text())
        assert one["provenance"]["runs_used"] == r["runs"] == 40
        # the index's forecast is the family report's: the same posterior, the same numbers
        assert [f["N_opt"] for f in r["forecast"]] == pytest.approx([f["N_opt"] for f in one["forecast"]], rel=1e-12)
        assert [f["budget"] for f in r["forecast"]] == [1e21, 1e23]
        # the two families differ only in E: L* at a budget is lower for the lower offset
    lstar = {r["family"]: r["forecast"][1]["L*"] for r in data["families"]}
    assert lstar["code"] < lstar["web/v1"]
    assert data["provenance"]["sha256"] and data["provenance"]["runs_used"] == 80
    assert (out / "figures" / "families_frontier.png").is_file() and (out / "figures" / "families_n_opt.png").is_file()


def test_index_page_is_self_contained_and_lists_attention(family_report):
    out, code = family_report
    text = (out / "index.html").read_text()
    page = parse(text)
    assert page.external == [] and page.tables["families"] == 2 and page.tables["provenance"] >= 5
    assert len(page.images) == 2
    for src in page.images:
        assert base64.b64decode(src[len("data:image/png;base64,"):])[:8] == b"\x89PNG\r\n\x1a\n"
    assert 'href="families/000-web_v1/report.html"' in text and 'href="families/001-code/report.html"' in text
    assert "family &#x27;tiny&#x27; was not sampled: " in text and "1 run; a posterior of law" in text
    md = (out / "index.md").read_text()
    assert "[web/v1](families/000-web_v1/report.md)" in md and "tiny" in md


def test_family_report_refuses_to_overwrite_and_bad_options(family_report, family_table, capsys):
    out, _ = family_report
    base = ["report", str(family_table), "--family", "mix", "--out", str(out)] + SMALL
    assert main(base) == 2 and "exists; not overwriting it" in capsys.readouterr().err
    assert main(base + ["--posterior", "x.nc"]) == 2 and "--posterior reuses one saved posterior" in capsys.readouterr().err
    assert main(base + ["--resume"]) == 2 and "--family-out and --resume belong to fit and sample" in capsys.readouterr().err


def test_index_renders_in_headless_chromium(family_report):
    out, _ = family_report
    browser = _chromium()
    res = _run_chromium(browser, "--virtual-time-budget=15000", "--dump-dom", (out / "index.html").resolve().as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    page = parse(res.stdout)
    assert page.body.get("data-report-status") == "ok" and page.body["data-images-loaded"] == "2", page.body
    assert page.tables["families"] == 2

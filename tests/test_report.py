"""The report: `bayes-scaling demo --out DIR` / `report RUNS --out DIR` write HTML, Markdown and JSON with
provenance, tables, diagnostics and figures; the page renders in a real (headless) browser."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_scaling.cli import main
from bayes_scaling.datasets import chinchilla_path
from bayes_scaling.report import FIGURES, write_report

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


class Page(HTMLParser):
    """Body attributes, tables (id -> number of body rows), image sources, and external references."""

    def __init__(self):
        super().__init__()
        self.body, self.tables, self.images, self.external = {}, {}, [], []
        self._table, self._in_tbody = None, False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])
        if tag == "body":
            self.body = a
        elif tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = 0
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._in_tbody and self._table is not None:
            self.tables[self._table] += 1
        elif tag == "img":
            self.images.append(a.get("src", ""))

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_tbody = False
        elif tag == "table":
            self._table = None


def parse(text: str) -> Page:
    p = Page()
    p.feed(text)
    return p


# a report without a backtest: every figure but the backtest's calibration figure; its tables
BASE_FIGURES = [name for name, _ in FIGURES if name != "calibration"]
BASE_TABLES = {"provenance", "law", "parameters", "forecast", "uncertainty", "cost"}  # cost: each budget on the default hardware


def test_demo_report_files_and_numbers(demo_report, small_posterior):
    data = json.loads((demo_report / "report.json").read_text())
    prov = data["provenance"]
    assert prov["sha256"] == hashlib.sha256(Path(chinchilla_path()).read_bytes()).hexdigest()
    assert prov["rows_in_file"] == 245 and prov["runs_used"] == 240
    assert any("C = 6ND" in c for c in prov["conventions"]) and any("5 highest-loss" in c for c in prov["conventions"])
    assert data["law"]["name"] == "chinchilla" and "E + A / N^alpha" in data["law"]["formula"]
    assert {p["name"]: p["prior"] for p in data["law"]["parameters"]}["A"] == "LogNormal(loc=6, scale=3)"
    params = {p["name"]: p for p in data["parameters"]}
    assert set(params) >= {"E", "A", "B", "alpha", "beta", "sigma"}
    for p in params.values():
        assert p["lo"] <= p["median"] <= p["hi"]
    table = small_posterior.forecast([1e21, 5.76e23, 1e25], prob=0.9)
    assert [r["budget"] for r in data["forecast"]] == [1e21, 5.76e23, 1e25]
    np.testing.assert_allclose([r["N_opt"] for r in data["forecast"]], table["N_opt"], rtol=1e-9)
    # the Chinchilla/Gopher budget: N_opt near Epoch's 7.2e10 (METHODS §1.2), an interval around it
    gopher = data["forecast"][1]
    assert 4e10 < gopher["N_opt_lo"] < gopher["N_opt"] < gopher["N_opt_hi"] < 1.5e11
    plain = " ".join(data["diagnostics"]["plain"])
    assert "divergent" in plain and "predictive interval" in plain
    assert [f["name"] for f in data["figures"]] == BASE_FIGURES
    for f in data["figures"]:
        assert (demo_report / f["file"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (demo_report / "report.md").read_text()
    for heading in ("## Data provenance", "## Law and priors", "## Parameters", "## Forecast per budget",
                    "## Diagnostics in plain words", "## Figures"):
        assert heading in md
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", md):
        assert (demo_report / link).is_file()


def test_html_is_self_contained(demo_report):
    text = (demo_report / "report.html").read_text()
    page = parse(text)
    assert page.external == [] and "<link" not in text  # nothing fetched from the network
    assert set(page.tables) == BASE_TABLES
    assert page.tables["forecast"] == 3 and page.tables["parameters"] >= 6 and page.tables["uncertainty"] == 3
    assert len(page.images) == len(BASE_FIGURES)
    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        assert base64.b64decode(src[len(prefix):])[:8] == b"\x89PNG\r\n\x1a\n"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium on this machine: .ci/run installs Debian's 'chromium' with apt-get when it can "
                "(it needs root and the package mirror); install it to run the browser test")


def _run_chromium(browser, *args, timeout=180):
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def test_report_renders_in_headless_chromium(demo_report, tmp_path):
    browser = _chromium()
    url = (demo_report / "report.html").resolve().as_uri()
    res = _run_chromium(browser, "--virtual-time-budget=15000", "--dump-dom", url)
    assert res.returncode == 0, res.stderr[-2000:]
    page = parse(res.stdout)
    # the page's load handler checked every <img> (complete, naturalWidth > 0) and wrote the result on <body>
    assert page.body.get("data-report-status") == "ok", page.body
    assert page.body["data-images-loaded"] == page.body["data-images-total"] == str(len(BASE_FIGURES))
    assert set(page.tables) == BASE_TABLES and page.tables["forecast"] == 3
    shot = tmp_path / "report.png"
    res = _run_chromium(browser, "--window-size=1200,2400", f"--screenshot={shot}", url)
    assert res.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_nothing_is_overwritten_without_force(demo_report, small_posterior, capsys):
    before = (demo_report / "report.html").stat().st_mtime_ns
    assert main(["demo", "--out", str(demo_report)]) == 2
    assert "report.html exists; not overwriting it (pass --force" in capsys.readouterr().err
    assert main(["report", chinchilla_path(), "--N", "Model Size", "--C", "Training FLOP", "--out", str(demo_report)]) == 2
    assert "exists; not overwriting" in capsys.readouterr().err
    with pytest.raises(FileExistsError, match="report.html exists"):
        write_report(small_posterior, demo_report)
    assert (demo_report / "report.html").stat().st_mtime_ns == before
    assert main(["demo", "--point-only", "--out", str(demo_report / "x")]) == 2
    assert "drop --point-only" in capsys.readouterr().err


def test_report_command_from_a_saved_posterior(demo_report, chinchilla_runs, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"params": chinchilla_runs.N, "flops": chinchilla_runs.C, "loss": chinchilla_runs.loss}).to_csv(csv, index=False)
    post = str(demo_report / "posterior.nc")
    # the saved posterior was sampled on 240 runs, the full file has 245: refused, not silently mixed
    code = main(["report", chinchilla_path(), "--N", "Model Size", "--C", "Training FLOP", "--posterior", post,
                 "--out", str(tmp_path / "bad")])
    assert code == 2 and "sampled on other data" in capsys.readouterr().err
    out = tmp_path / "rep"
    code = main(["report", str(csv), "--N", "params", "--C", "flops", "--posterior", post, "--budgets", "1e22", "1e24",
                 "--prob", "0.8", "--title", "from a saved posterior", "--out", str(out)])
    assert code in (0, 1)
    assert "wrote the report" in capsys.readouterr().out
    data = json.loads((out / "report.json").read_text())
    assert data["title"] == "from a saved posterior" and data["prob"] == 0.8
    assert data["provenance"]["sha256"] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert data["provenance"]["rows_in_file"] == 240 and data["provenance"]["columns"]["N"] == "params"
    assert [r["budget"] for r in data["forecast"]] == [1e22, 1e24]
    assert not (out / "posterior.nc").exists()  # it was given, not sampled: not copied
    assert parse((out / "report.html").read_text()).tables["forecast"] == 2

"""The bad-input matrix of the command line: every case exits 2 with one line on stderr naming the problem (file,
column and row, or the option), no traceback, and no file created, changed or removed. Each case is refused
before any long work (no case here samples or fits).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import data

from bayes_scaling.cli import main


def _runs(n=12, seed=0):
    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(3e7), np.log(3e9), n))
    D = np.exp(rng.uniform(np.log(5e8), np.log(5e10), n))
    return pd.DataFrame({"N": N, "D": D, "loss": 1.8 + 400 * N ** -0.34 + 1500 * D ** -0.3, "fam": ["a", "b"] * (n // 2)})


@pytest.fixture
def files(tmp_path):
    """A folder of inputs: good and broken tables, a JSON a user wrote, a CSV and a cut NetCDF as --posterior."""
    good = _runs()
    good.to_csv(tmp_path / "runs.csv", index=False)
    bad = good.astype({"loss": object})
    bad.loc[3, "loss"] = "abc"
    bad.to_csv(tmp_path / "text.csv", index=False)
    good.assign(loss=good["loss"].where(good.index != 5)).to_csv(tmp_path / "nan.csv", index=False)
    good.assign(N=good["N"].where(good.index != 2, -1.0)).to_csv(tmp_path / "negative.csv", index=False)
    good.iloc[:0].to_csv(tmp_path / "header_only.csv", index=False)
    good.iloc[:3].to_csv(tmp_path / "three.csv", index=False)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "mine.json").write_text("precious")
    (tmp_path / "post.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 40)  # a NetCDF-4 header, cut short
    (tmp_path / "a_folder").mkdir()
    pd.read_csv(data("steps_to_target_loss_DERIVED.csv")).to_csv(tmp_path / "sweep.csv", index=False)
    pd.read_csv(data("isoflop_points.csv")).iloc[:120].to_csv(tmp_path / "iso.csv", index=False)
    return tmp_path


def _snapshot(root: Path):
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


SMALL = ["--chains", "2", "--warmup", "10", "--draws", "10"]
# (argv with {d} for the folder, words the one line must hold)
CASES = {
    "missing file": (["fit", "{d}/nope.csv"], "nope.csv: no such file"),
    "a folder as table": (["fit", "{d}/a_folder"], "is a folder, not a table file"),
    "empty file": (["fit", "{d}/empty.csv"], "empty.csv: the file is empty"),
    "no rows": (["fit", "{d}/header_only.csv"], "the table is empty"),
    "missing column": (["fit", "{d}/runs.csv", "--loss", "val_loss"], "column 'val_loss' (for loss) not found; the columns are: 'N'"),
    "text in a number column": (["fit", "{d}/text.csv"], "text.csv: column 'loss', row 4: 'abc' is not a number"),
    "missing value": (["fit", "{d}/nan.csv"], "nan.csv: column 'loss', row 6: value missing"),
    "negative value": (["fit", "{d}/negative.csv"], "negative.csv: column 'N', row 3: -1 must be positive"),
    "too few runs": (["fit", "{d}/three.csv"], "3 runs; a least-squares fit of law 'chinchilla' needs at least 5"),
    "too few runs, likelihood": (["fit", "{d}/three.csv", "--objective", "student_t"], "needs at least 6"),
    "unknown law": (["fit", "{d}/runs.csv", "--law", "chinchila"], "unknown law 'chinchila'"),
    "--nu with gaussian": (["sample", "{d}/runs.csv", "--likelihood", "gaussian", "--nu", "5"], "--nu/--k with --likelihood gaussian"),
    "--nu not a number": (["sample", "{d}/runs.csv", "--nu", "many"], "--nu many: give a positive number or 'learn'"),
    "--k with student_t": (["sample", "{d}/runs.csv", "--k", "2"], "k is the Huber density's threshold"),
    "--k negative": (["sample", "{d}/runs.csv", "--likelihood", "huber_density", "--k", "-1"], "k must be a positive number"),
    "--strategy varpro, nonlinear law": (["fit", "{d}/runs.csv", "--law", "kaplan", "--strategy", "varpro"], "--strategy varpro: law 'kaplan'"),
    "--strategy varpro with --protocol warm": (["fit", "{d}/runs.csv", "--family", "fam", "--strategy", "varpro", "--protocol",
                                                "warm"], "--strategy varpro with --protocol warm"),
    "--strategy varpro with --family, nonlinear law": (["fit", "{d}/runs.csv", "--family", "fam", "--law", "kaplan", "--strategy",
                                                        "varpro"], "--strategy varpro: law 'kaplan'"),
    "--fix not a number": (["fit", "{d}/runs.csv", "--fix", "alpha=x"], "--fix 'alpha=x': 'x' is not a number"),
    "--fix unknown parameter": (["fit", "{d}/runs.csv", "--fix", "gamma=1"], "has no parameter 'gamma'"),
    "--input negative": (["fit", "{d}/runs.csv", "--law", "data_constrained", "--input", "U=-1"], "--input U=-1: must be a positive"),
    "--map with huber": (["fit", "{d}/runs.csv", "--map"], "--map needs a likelihood"),
    "--chunk-size 0": (["fit", "{d}/runs.csv", "--family", "fam", "--chunk-size", "0"], "--chunk-size must be at least 1"),
    "--resume alone": (["fit", "{d}/runs.csv", "--family", "fam", "--resume"], "--resume continues a job saved with --family-out"),
    "--json exists": (["fit", "{d}/runs.csv", "--json", "{d}/mine.json"], "--json {d}/mine.json exists; not overwriting it"),
    "--json in a missing folder": (["fit", "{d}/runs.csv", "--json", "{d}/no/such/x.json"], "the folder {d}/no/such does not exist"),
    "--json under a file": (["fit", "{d}/runs.csv", "--json", "{d}/runs.csv/x.json"], "is a file, not a folder"),
    "--json a folder": (["fit", "{d}/runs.csv", "--json", "{d}/a_folder"], "--json {d}/a_folder: is a folder"),
    "--json unwritable": (["fit", "{d}/runs.csv", "--json", "/proc/x.json"], "--json /proc/x.json: cannot write in /proc"),
    "--family-out unwritable": (["fit", "{d}/runs.csv", "--family", "fam", "--family-out", "/proc/job"],
                                "--family-out /proc/job: cannot write in /proc"),
    "--prob outside (0, 1)": (["sample", "{d}/runs.csv", "--prob", "1.5"], "--prob 1.5: must be between 0 and 1"),
    "--chains 0": (["sample", "{d}/runs.csv", "--chains", "0"], "--chains must be at least 1"),
    "--draws 3": (["sample", "{d}/runs.csv", "--draws", "3"], "--draws must be at least 4"),
    "--draws beyond memory": (["sample", "{d}/runs.csv", "--draws", "100000000"], "--draws 100000000 / --chains 4:"),
    "demo --draws beyond memory": (["demo", "--draws", "100000000"], "would hold"),
    "sample --out unwritable": (["sample", "{d}/runs.csv", "--out", "/proc/post"], "--out /proc/post: cannot write in /proc"),
    "sample --out is a file": (["sample", "{d}/runs.csv", "--out", "{d}/runs.csv"], "--out {d}/runs.csv: exists and is not a folder"),
    "sample --json exists": (["sample", "{d}/runs.csv", "--json", "{d}/mine.json"], "exists; not overwriting"),
    "sample --family with --out": (["sample", "{d}/runs.csv", "--family", "fam", "--out", "{d}/o"], "with --family use --family-out"),
    "report --out unwritable": (["report", "{d}/runs.csv", "--out", "/proc/report"], "--out /proc/report: cannot write in /proc"),
    "report --out is a file": (["report", "{d}/runs.csv", "--out", "{d}/mine.json"], "exists and is not a folder"),
    "report --posterior a CSV": (["report", "{d}/runs.csv", "--out", "{d}/rep", "--posterior", "{d}/runs.csv"],
                                 "not a posterior saved by bayes_scaling"),
    "report --posterior cut short": (["report", "{d}/runs.csv", "--out", "{d}/rep", "--posterior", "{d}/post.nc"],
                                     "not a posterior saved by bayes_scaling"),
    "report --posterior missing": (["report", "{d}/runs.csv", "--out", "{d}/rep", "--posterior", "{d}/none.nc"],
                                   "--posterior {d}/none.nc: no such file"),
    "report --family with --posterior": (["report", "{d}/runs.csv", "--out", "{d}/rep", "--family", "fam", "--posterior",
                                          "{d}/post.nc"], "--posterior reuses one saved posterior"),
    "demo --out unwritable": (["demo", "--out", "/proc/demo"], "--out /proc/demo: cannot write in /proc"),
    "demo --point-only --out": (["demo", "--point-only", "--out", "{d}/o"], "drop --point-only"),
    "isoflop --by missing column": (["isoflop", "{d}/iso.csv", "--C", "flops", "--N", "n", "--D", "t", "--by", "config"],
                                    "iso.csv: column 'config' not found"),
    "isoflop --window": (["isoflop", "{d}/iso.csv", "--window", "wide"], "--window 'wide': expected a number or 'all'"),
    "isoflop --json unwritable": (["isoflop", "{d}/iso.csv", "--json", "/proc/i.json"], "cannot write in /proc"),
    "batch-size missing column": (["batch-size", "{d}/sweep.csv", "--batch", "bs"], "sweep.csv: column 'bs' not found"),
    "batch-size --forecast alone": (["batch-size", "{d}/sweep.csv", "--forecast", "3e9"], "--forecast needs --law-by"),
    "hyperparams --at malformed": (["hyperparams", "{d}/runs.csv", "--target", "D", "--by", "N", "--at", "N=big"],
                                   "--at N=big: N:"),
    "hyperparams same column": (["hyperparams", "{d}/runs.csv", "--target", "N", "--by", "N"], "must be different columns"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_nothing_touched(case, files, capsys):
    argv, words = CASES[case]
    d = str(files)
    argv = [a.replace("{d}", d) for a in argv]
    if argv[0] in ("sample", "report", "demo", "isoflop", "batch-size", "hyperparams") and "--chains" not in argv \
            and not any(a.startswith("--draws") for a in argv):
        argv += SMALL
    before = _snapshot(files)
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (case, out[-500:], err)
    assert err.count("\n") == 1 and err.startswith("bayes-scaling: error: "), (case, err)
    assert words.replace("{d}", d) in err, (case, err)
    assert "Traceback" not in err + out
    assert _snapshot(files) == before, case


def test_bad_cpu_device_count_is_one_line(files, capsys, monkeypatch):
    monkeypatch.setenv("BAYES_SCALING_CPU_DEVICES", "many")
    before = _snapshot(files)
    code = main(["fit", str(files / "runs.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "BAYES_SCALING_CPU_DEVICES must be a whole number" in err
    assert _snapshot(files) == before


def test_argparse_errors_are_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "runs.csv", "--budgets", "-1"])
    assert exit_.value.code == 2 and "must be a positive finite number" in capsys.readouterr().err

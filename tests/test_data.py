"""Run tables: loading, the C = 6ND convention, and every bad-input case named in issue 2."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import data

from bayes_scaling import fit_point, load_chinchilla, load_runs
from bayes_scaling.datasets import chinchilla_path


def _df(**cols):
    base = {"N": [1e8, 2e8, 4e8, 8e8, 1.6e9, 3.2e9], "D": [2e9, 4e9, 8e9, 1.6e10, 3.2e10, 6.4e10],
            "loss": [3.5, 3.2, 3.0, 2.8, 2.6, 2.5]}
    base.update(cols)
    return pd.DataFrame(base)


def test_bundled_chinchilla_matches_shared_copy():
    runs = load_chinchilla()
    assert len(runs) == 240 and len(load_chinchilla("all")) == 245
    # the standard subset drops exactly the 5 highest losses
    all_runs = load_chinchilla("all")
    assert np.sort(all_runs.loss)[-5:].min() > runs.loss.max()
    raw = pd.read_csv(data("svg_extracted_data.csv"))
    bundled = pd.read_csv(chinchilla_path())
    pd.testing.assert_frame_equal(raw, bundled)
    np.testing.assert_allclose(runs.D * runs.N * 6, runs.C, rtol=1e-12)
    assert any("6" in n and "D" in n for n in runs.notes)  # the convention is stated


def test_csv_parquet_dataframe_agree(tmp_path):
    df = _df()
    df.to_csv(tmp_path / "r.csv", index=False)
    df.to_parquet(tmp_path / "r.parquet")
    a, b, c = load_runs(df), load_runs(tmp_path / "r.csv"), load_runs(tmp_path / "r.parquet")
    for r in (b, c):
        np.testing.assert_array_equal(a.N, r.N)
        np.testing.assert_array_equal(a.loss, r.loss)
    np.testing.assert_allclose(a.C, 6 * a.N * a.D)
    assert "C = 6 N D" in a.notes[0]


def test_column_mapping_and_fill_D_from_C():
    df = pd.DataFrame({"params": [1e8, 2e8], "flops": [6e18, 1.2e19], "val": [3.0, 2.9], "bs": [256, 512],
                       "fam": ["a", "b"]})
    r = load_runs(df, N="params", C="flops", loss="val", batch_size="bs", family="fam")
    np.testing.assert_allclose(r.D, [1e10, 1e10])
    assert "D = C / (6 N)" in r.notes[0]
    assert list(r.family) == ["a", "b"] and list(r.batch_size) == [256, 512]


@pytest.mark.parametrize(
    "cols, kwargs, match",
    [
        ({}, {"loss": "val_loss"}, r"r\.csv: column 'val_loss' \(for loss\) not found"),
        ({"loss": [3.5, "abc", 3.0, 2.8, 2.6, 2.5]}, {}, r"r\.csv: column 'loss', row 2: 'abc' is not a number"),
        ({"loss": [3.5, 3.2, np.nan, 2.8, 2.6, 2.5]}, {}, r"r\.csv: column 'loss', row 3: value missing"),
        ({"N": [1e8, 2e8, 4e8, np.inf, 1.6e9, 3.2e9]}, {}, r"r\.csv: column 'N', row 4: value inf is not finite"),
        ({"D": [2e9, 4e9, 8e9, 1.6e10, 0, 6.4e10]}, {}, r"r\.csv: column 'D', row 5: 0 must be positive"),
        ({"loss": [3.5, 3.2, 3.0, 2.8, 2.6, -1.0]}, {}, r"r\.csv: column 'loss', row 6: -1 must be positive"),
    ],
)
def test_bad_csv_names_file_column_row(tmp_path, cols, kwargs, match):
    path = tmp_path / "r.csv"
    _df(**cols).to_csv(path, index=False)
    with pytest.raises(ValueError, match=match):
        load_runs(path, **kwargs)


def test_bad_dataframe_names_row_and_index():
    df = _df(loss=[3.5, 3.2, 3.0, 2.8, 2.6, -2.0])
    df.index = [10, 11, 12, 13, 14, 15]
    with pytest.raises(ValueError, match=r"<DataFrame>: column 'loss', row 6 \(index 15\)"):
        load_runs(df)


def test_empty_table_and_empty_file(tmp_path):
    (tmp_path / "h.csv").write_text("N,D,loss\n")
    with pytest.raises(ValueError, match=r"h\.csv: the table is empty"):
        load_runs(tmp_path / "h.csv")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(ValueError, match=r"e\.csv: the file is empty"):
        load_runs(tmp_path / "e.csv")
    with pytest.raises(ValueError, match=r"nope\.csv: no such file"):
        load_runs(tmp_path / "nope.csv")


def test_fewer_runs_than_free_parameters():
    runs = load_runs(_df().iloc[:4])
    with pytest.raises(ValueError, match=r"4 runs; a least-squares fit of law 'chinchilla' needs at least 5 \(the law's 5 "
                                         r"parameters: E, A, B, alpha, beta; noise is not counted\)"):
        fit_point("chinchilla", runs)


def test_law_input_missing_from_table():
    runs = load_runs(_df())
    with pytest.raises(ValueError, match=r"needs 'U' but the table has no column 'U'"):
        fit_point("data_constrained", runs)


def test_duplicates_kept_with_warning(tmp_path):
    df = pd.concat([_df(), _df().iloc[[2]]], ignore_index=True)
    df.to_csv(tmp_path / "d.csv", index=False)
    with pytest.warns(UserWarning, match=r"d\.csv: 2 runs are exact duplicates .*row 3, row 7"):
        runs = load_runs(tmp_path / "d.csv")
    assert len(runs) == 7

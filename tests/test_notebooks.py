"""Every notebook in notebooks/ executes from top to bottom (with short chains: BAYES_SCALING_QUICK=1), so none
can rot; each asserts a few of its own numbers. They are stored without outputs (checked here too)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_stored_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    names = {p.stem for p in NOTEBOOKS}
    assert {"quickstart", "chinchilla_bayes", "families_pooling", "critical_batch_isoflop"} <= names
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has stored outputs"
        assert "BAYES_SCALING_QUICK" in code[0].source, f"{path.name}: the QUICK flag must be the first code cell"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("BAYES_SCALING_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports the same bayes_scaling as the tests (an installed one or this checkout)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors

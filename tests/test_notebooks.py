"""The notebooks in notebooks/ run from top to bottom (executed with nbclient)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_committed_without_outputs():
    names = [p.name for p in NOTEBOOKS]
    assert "01_quickstart.ipynb" in names
    assert "02_compare_layouts.ipynb" in names
    assert "03_register_trends.ipynb" in names
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: clear outputs before committing"
                assert cell.execution_count is None


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    # the kernel inherits PLANNER_CACHE_DIR from the test session (set in conftest.py)
    assert os.environ.get("PLANNER_CACHE_DIR")
    client.execute()
    errors = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    assert last.outputs, "the last cell must show something"

"""Every notebook in notebooks/ runs from top to bottom, and is committed with its pictures."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT
from nbclient import NotebookClient

NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    names = [p.name for p in PATHS]
    assert names[:4] == [
        "01_quickstart.ipynb",
        "02_methods.ipynb",
        "03_slices.ipynb",
        "04_vnnlib.ipynb",
    ]


def images(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in out.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
    )


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_committed_with_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "run python notebooks/execute.py"
    assert images(nb) >= 1
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_executes(path: Path, tmp_path: Path):
    # run a copy (the committed file keeps its outputs) with notebooks/ as working directory,
    # where the notebooks find ../models
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    nb = nbformat.read(copy, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    nbformat.write(nb, copy)
    assert images(nb) >= 1

"""Execute the notebooks in place, keeping their outputs (run after editing a notebook).

    python notebooks/execute.py                 # every notebook
    python notebooks/execute.py 03_slices.ipynb # some of them

Each runs in a fresh Python kernel with the notebooks folder as working directory.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the kernel inherits it: no TensorFlow chatter


def execute(path: Path, timeout: int = 120) -> nbformat.NotebookNode:
    """The notebook at ``path``, executed (the file itself is not changed)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        # C-level output (TensorFlow's start-up log lines) goes to this terminal, not the cells
        extra_arguments=["--IPKernelApp.capture_fd_output=False"],
        resources={"metadata": {"path": str(HERE)}},
    )
    client.execute()
    return nb


def main(names: list[str]) -> None:
    paths = [HERE / n for n in names] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        t0 = time.perf_counter()
        nbformat.write(execute(path), path)
        print(f"{path.name}: executed in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Helpers shared by the benchmark scripts: where the shared networks live, timing medians."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def benchmarks_dir() -> Path:
    env = os.environ.get("NNRANGE_BENCHMARKS")
    path = Path(env) if env else ROOT.parent / "shared" / "benchmarks"
    if not path.is_dir():
        sys.exit(f"benchmark networks not found at {path}; set NNRANGE_BENCHMARKS")
    return path


def median_time(fn, repeat: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs, in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def single_thread() -> None:
    """Pin BLAS to one thread (call before importing numpy) so timings are comparable."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

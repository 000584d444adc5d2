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


def interleaved_medians(fns: dict, repeat: int = 7) -> dict:
    """Median wall time (s) of each ``fns[key]()``, timed in ``repeat`` rounds that each run
    every function, so that a burst of load on a shared machine hits all of them alike
    instead of every run of one. Each timed call follows an untimed one (warm caches, as in
    timing consecutive calls)."""
    times: dict = {key: [] for key in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            fn()
            t0 = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t0)
    return {key: statistics.median(ts) for key, ts in times.items()}


def single_thread() -> None:
    """Pin BLAS to one thread (call before importing numpy) so timings are comparable."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

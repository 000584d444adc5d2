"""Worker processes: each runs its numpy on one thread.

nnrange parallelises over processes (one search per core). Left alone, every worker's BLAS would
also start a thread per core, and the oversubscribed cores ran the searches up to twice slower.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits

_limits = None  # kept alive for the worker's lifetime


def one_blas_thread() -> None:
    """Pool initializer: limit BLAS/OpenMP thread pools of this process to one thread."""
    global _limits
    _limits = threadpool_limits(limits=1)

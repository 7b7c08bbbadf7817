"""Process-level parallelism with one BLAS thread per worker.

On a 2-core machine a multi-threaded BLAS that competes with other processes spins and loses
far more than it gains (measured: one convergence run 488 s with default OpenBLAS threads next
to other jobs, 28 s with one thread). Work that parallelises over independent items (runs,
sweep variants) therefore uses worker processes with one BLAS thread each.
"""

from __future__ import annotations

import os

__all__ = ["limit_blas_threads", "map_processes"]


def limit_blas_threads(threads: int = 1) -> None:
    """Limit BLAS/OpenMP threads of this process (threadpoolctl, brought by scikit-learn)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)


def map_processes(fn, items, processes: int | None = None):
    """Yield ``fn(item)`` in order, over ``processes`` forked workers (default: CPU count).

    With one process (or one item) it runs in this process, still with one BLAS thread.
    """
    items = list(items)
    processes = max(1, min(processes or os.cpu_count() or 1, len(items)))
    if processes == 1:
        limit_blas_threads(1)
        for item in items:
            yield fn(item)
        return
    import multiprocessing as mp
    with mp.get_context("fork").Pool(processes, initializer=limit_blas_threads, initargs=(1,)) as pool:
        yield from pool.imap(fn, items)

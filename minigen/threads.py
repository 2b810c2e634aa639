"""How many CPU threads the BLAS library (OpenBLAS, MKL) behind NumPy's matrix products may use.

A training step on the CPU spends most of its time in BLAS matrix products, so this one number
matters.  :mod:`minigen.backend` re-exports these functions (``mg.set_num_threads``,
``mg.backend.get_num_threads``, ``mg.backend.free_cpus``).
"""

import os

__all__ = ["set_num_threads", "get_num_threads", "free_cpus"]

_thread_limit = None
_thread_count = None     # the n of the limit in force


def set_num_threads(n):
    """Limit the CPU's BLAS library (OpenBLAS, MKL) to ``n`` threads, or lift the limit with None.

    More threads make large matrix products faster on idle cores, but BLAS threads that spin while
    waiting for a core another program holds can make them many times slower.  ``free_cpus()``
    is the number the command line and the tests use unless told otherwise (the README's
    Performance section has the measurements).
    """
    global _thread_limit, _thread_count
    # the maintained way to reach every BLAS at run time
    from threadpoolctl import threadpool_limits

    if _thread_limit is not None:
        _thread_limit.restore_original_limits()
        _thread_limit = None
    if n is not None:
        if int(n) < 1:
            raise ValueError(f"set_num_threads: n must be at least 1 (or None), not {n}")
        _thread_limit = threadpool_limits(limits=int(n), user_api="blas")
    _thread_count = None if n is None else int(n)


def get_num_threads():
    """The BLAS thread limit that :func:`set_num_threads` set, or None when none is set (the BLAS
    library then uses its own count).

    The count changes results in their last bits: BLAS splits a matrix product's sums among its
    threads, and sums taken in another order round differently.  A run records it, and
    ``minigen train --resume`` continues with the same count, so that a resumed run equals an
    uninterrupted one bit for bit."""
    return _thread_count


def free_cpus():
    """The CPUs this process may use that other work does not keep busy now: the CPUs available
    minus the 1-minute load average, at least 1 (all of them on an idle machine, one on a busy
    one)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except (AttributeError, OSError):         # no load average on this system: trust the cores
        busy = 0.0
    return max(1, min(cpus, int(cpus - busy + 0.5)))

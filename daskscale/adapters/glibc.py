"""glibc's allocator, tuned while blocks stream: the one place daskscale bypasses malloc's defaults.

Allocator (:func:`blocks_on_heap`): a Dask nanny starts its workers with
``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's mmap threshold at 128 KiB. Every
block (and zarr's compressed and decoded copies of it) is then a fresh ``mmap``, page-faulted
in by the kernel and unmapped again a moment later; measured on a worker, that made reading
two times slower and, through the unmapping, slowed the training thread too. While blocks
stream, the thresholds are raised so freed blocks are reused from the heap; afterwards they
are reset to the environment's values and the free memory is handed back (``malloc_trim``).

Opt-out: ``DASKSCALE_HEAP=0`` in the workers' environment leaves malloc alone. The measured
benefit (reading a store's blocks on a worker with and without it) is kept by
``benchmarks/bench_incremental.py`` (``BlockRead``). Distributed's documented route
(``distributed.nanny.pre-spawn-environ``) cannot do this: it fixes the thresholds for a
worker's whole life, so a worker would keep block-sized free memory between fits, where this
hands it back when the blocks stop (``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from daskscale.engine.process import PROCESS

__all__ = ["blocks_on_heap", "mmapped_bytes"]


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit: blocks up to 32 MB
_HEAP_TRIM_THRESHOLD = 1 << 30


@functools.lru_cache(maxsize=1)
def _glibc() -> Any:
    """glibc, loaded once per process (``blocks_on_heap`` runs in every short training task)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
            return None
        if hasattr(libc, "mallinfo2"):
            libc.mallinfo2.restype = _MallInfo2
        return libc
    except OSError:  # not glibc (macOS, Windows, musl)
        return None


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


def mmapped_bytes() -> int | None:
    """Bytes glibc's malloc holds in ``mmap``-ed chunks now (``mallinfo2().hblkhd``); ``None`` off glibc.

    A buffer allocated while this grows by its size got a fresh ``mmap`` of its own rather than
    heap memory: how :func:`blocks_on_heap` is checked, in a worker, by the tests.
    """
    libc = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    return int(libc.mallinfo2().hblkhd)


@contextmanager
def blocks_on_heap(linger: float = 0.0) -> Iterator[None]:
    """Keep block-sized buffers on the malloc heap while blocks stream (see the module notes).

    Only acts in a process whose environment fixes ``MALLOC_TRIM_THRESHOLD_`` (Dask workers):
    elsewhere glibc's dynamic mmap threshold already adapts to block-sized buffers. Nested and
    concurrent uses are counted; the last one out restores the environment's thresholds and
    hands free memory back, right away or, with ``linger`` seconds, only if nobody has entered
    again by then: a worker running one short task per round (parameter averaging) then keeps
    its block buffers from one round to the next instead of page-faulting them in every time.

    Examples
    --------
    >>> import numpy as np
    >>> with blocks_on_heap():
    ...     block = np.ones((1000, 50))
    """
    trim_env = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = _glibc() if trim_env is not None and os.environ.get("DASKSCALE_HEAP", "1") != "0" else None
    if libc is None:
        yield
        return
    heap = PROCESS.heap
    with heap.lock:
        heap.users += 1
        if heap.users == 1 and not heap.raised:
            libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _HEAP_TRIM_THRESHOLD)
            heap.raised = True
    try:
        yield
    finally:
        with heap.lock:
            heap.users -= 1
            if heap.users == 0:
                if linger > 0:  # one timer per process, however many short uses come and go
                    heap.until = time.monotonic() + linger
                    if heap.timer is None:
                        _start_heap_timer(linger, libc, trim_env)
                else:
                    _restore_heap(libc, trim_env)


def _start_heap_timer(delay: float, libc: Any, trim_env: str) -> None:
    heap = PROCESS.heap
    timer = threading.Timer(delay, _lingered, (libc, trim_env))
    timer.daemon = True
    heap.timer = timer
    timer.start()


def _lingered(libc: Any, trim_env: str) -> None:
    """The restore timer fired: restore, wait out a linger extended since, or leave it to the user inside."""
    heap = PROCESS.heap
    with heap.lock:
        heap.timer = None
        if heap.users or not heap.raised:
            return  # in use again: its last user out lingers anew
        rest = heap.until - time.monotonic()
        if rest > 0:
            _start_heap_timer(rest, libc, trim_env)
        else:
            _restore_heap(libc, trim_env)


def _restore_heap(libc: Any, trim_env: str) -> None:
    """The environment's thresholds back and free heap memory returned (the heap lock held)."""
    heap = PROCESS.heap
    if not heap.raised:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, int(os.environ.get("MALLOC_MMAP_THRESHOLD_", 128 * 1024)))
    libc.mallopt(_M_TRIM_THRESHOLD, int(trim_env))
    heap.raised = False
    libc.malloc_trim(0)

"""What daskscale keeps per process, in one object with one lifetime: the process.

A worker runs many short tasks (a parameter-averaging round is one task per worker), so a few
things are worth keeping from one task to the next in the worker process:

- ``stores``: opened Zarr arrays by path and metadata file times (re-reading a store's
  metadata costs ~5 ms a task; a rewritten store has new times, hence a new key);
- ``heap``: who holds the raised malloc thresholds of :func:`daskscale.adapters.glibc.blocks_on_heap`;
- ``ahead``: the one block a worker reads ahead for its next round while it waits for the
  other replicas.

:data:`PROCESS` is the only instance. A forked child starts with a fresh one (its parent's
threads, timers and locks do not exist there); :meth:`ProcessState.reset` does the same on
demand.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["ProcessState", "PROCESS"]

#: opened stores kept per process (least recently used dropped first)
MAX_STORES = 16


@dataclass
class HeapState:
    """Users of the raised malloc thresholds and the pending restore (see ``blocks_on_heap``)."""

    users: int = 0
    raised: bool = False
    until: float = 0.0  # monotonic time until which a lingering process keeps the raised settings
    timer: Any = None  # the one pending restore timer, if any
    lock: Any = field(default_factory=threading.Lock)


class ProcessState:
    """The per-process caches and slots of daskscale (see the module notes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stores: OrderedDict[tuple, Any] = OrderedDict()
        self.heap = HeapState()
        self._ahead: dict[tuple, Future] = {}
        self._ahead_pool: ThreadPoolExecutor | None = None
        #: blocks this process trained on from the read-ahead slot (diagnostics and tests)
        self.ahead_taken = 0

    def reset(self) -> None:
        """Forget everything (a fresh process's state)."""
        self.__init__()

    # ------------------------------------------------------------------ opened stores
    def store(self, key: tuple | None, open_: Callable[[], Any]) -> Any:
        """The arrays ``open_()`` returns, opened once per ``key`` (``None``: not cached)."""
        if key is None:
            return open_()
        with self._lock:
            hit = self.stores.get(key)
            if hit is not None:
                self.stores.move_to_end(key)
                return hit
        arrays = open_()
        with self._lock:
            self.stores[key] = arrays
            while len(self.stores) > MAX_STORES:
                self.stores.popitem(last=False)
        return arrays

    # ------------------------------------------------------------------ read-ahead slot
    def read_ahead(self, key: tuple | None, read: Callable[[], Any]) -> None:
        """Start ``read()`` in the background for block ``key``; it replaces any block held."""
        if key is None:
            return
        with self._lock:
            if self._ahead_pool is None:
                self._ahead_pool = ThreadPoolExecutor(1, thread_name_prefix="daskscale-read-ahead")
            self._ahead.clear()  # never more than one block held for a round that may not come
            self._ahead[key] = self._ahead_pool.submit(read)

    def take_ahead(self, key: tuple | None) -> Future | None:
        """The read started for ``key`` (and the slot emptied), or ``None``."""
        with self._lock:
            fut = self._ahead.pop(key, None) if key is not None else None
            self._ahead.clear()
            self.ahead_taken += fut is not None
        return fut


PROCESS = ProcessState()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=PROCESS.reset)

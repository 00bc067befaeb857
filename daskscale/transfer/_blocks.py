"""Row blocks of a dask array pair, one at a time: the bounded-memory loop of the trainers here.

Small data (under ``cache_bytes``) is computed once and sliced, so the many short fits of a
learning curve do not re-read a store each epoch. Larger data is streamed block by block,
with the next block computed on the cluster while the current one trains (one in flight).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import dask
import numpy as np

from daskscale.storage.convert import Data, aligned

CACHE_BYTES = 64 * 2**20


def _client() -> Any:
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


class BlockSource:
    """Yields ``(block_index, X, y)`` NumPy pairs of ``data`` in a given order."""

    def __init__(self, data: Data, cache_bytes: int | None = None) -> None:
        self.data = data
        self.bounds = np.cumsum((0,) + data.row_chunks)
        self.cached: tuple[np.ndarray, np.ndarray | None] | None = None
        self.streamed = data.X.nbytes > (CACHE_BYTES if cache_bytes is None else cache_bytes)
        if not self.streamed:
            X, y = dask.compute(data.X, data.y)
            self.cached = (aligned(np.asarray(X)), None if y is None else aligned(np.asarray(y)))

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def _parts(self, i: int) -> list[Any]:
        return [self.data.X.blocks[i]] + ([self.data.y.blocks[i]] if self.data.y is not None else [])

    def iterate(self, order: Sequence[int] | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
        order = list(range(self.n_blocks)) if order is None else list(order)
        if self.cached is not None:
            X, y = self.cached
            for i in order:
                a, b = self.bounds[i], self.bounds[i + 1]
                yield i, X[a:b], None if y is None else y[a:b]
            return
        client = _client()
        if client is None:
            for i in order:
                parts = dask.compute(*self._parts(i))
                yield i, parts[0], parts[1] if len(parts) > 1 else None
            return
        nxt = client.compute(self._parts(order[0])) if order else None
        for k, i in enumerate(order):
            parts = client.gather(nxt)
            nxt = client.compute(self._parts(order[k + 1])) if k + 1 < len(order) else None
            yield i, aligned(np.asarray(parts[0])), aligned(np.asarray(parts[1])) if len(parts) > 1 else None

"""Stream row blocks to a learner: bounded blocks in flight, prefetch, seeded shuffles.

A *reader* returns one row block ``(X, y)`` by index, from where the block lives:

- :class:`ZarrReader` reads a daskscale store's chunks directly with zarr (no Dask graph, no
  data shipped through the scheduler); it is what a worker-side fit uses.
- :class:`ArrayReader` slices NumPy arrays already in memory.
- :class:`DaskReader` computes one block of a dask array at a time (generated or derived data).

:func:`iter_blocks` walks blocks in a given order with at most ``max_in_flight`` blocks read
ahead by a background thread, so reading and decompressing the next block overlaps training
on the current one (zarr's Blosc decode and scikit-learn's SGD both release the GIL).

Shuffling is stateless: the block order of epoch ``e`` and the row permutation of block ``b``
are drawn from ``numpy.random.default_rng([seed, e, ...])``. A resumed fit therefore
replays exactly the same order without saving any random state.

Global shuffle (``interleave=k``): ``k`` blocks are read together, their rows permuted as
one unit and cut into mini-batches, so each batch mixes rows of ``k`` blocks. Cost: ``k``
blocks in memory instead of one (memory ~ ``(k + max_in_flight) x block``). Effect: it only
matters when rows are ordered within the store (sorted by time or by label), where it
removes the bias of batches drawn from one region; on i.i.d. rows it changes accuracy within
noise (see ``benchmarks/bench_incremental.py`` and notebook 02).
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Sequence

import numpy as np

from daskscale.storage.convert import Data

__all__ = ["ArrayReader", "ZarrReader", "DaskReader", "make_reader", "iter_blocks", "epoch_units",
           "mini_batches", "split_blocks"]


def _bounds(row_chunks: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(row_chunks)]).astype(np.int64)


class _Reader:
    """Block ``i`` as ``(X float, y or None)``; subclasses implement :meth:`read`."""

    bounds: np.ndarray

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def rows(self, i: int) -> tuple[int, int]:
        return int(self.bounds[i]), int(self.bounds[i + 1])

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:  # pragma: no cover - abstract
        raise NotImplementedError


class ArrayReader(_Reader):
    """Slices of in-memory arrays."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None, row_chunks: Sequence[int]):
        self.X, self.y, self.bounds = X, y, _bounds(row_chunks)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        a, b = self.rows(i)
        return self.X[a:b], (None if self.y is None else self.y[a:b])


class ZarrReader(_Reader):
    """Chunks of a daskscale store read directly with zarr; picklable (opens lazily)."""

    def __init__(self, path: str | os.PathLike, row_chunks: Sequence[int], has_y: bool = True):
        self.path, self.bounds, self.has_y = str(path), _bounds(row_chunks), has_y
        self._arrays: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        if self._arrays is None:
            import zarr

            g = zarr.open_group(self.path, mode="r")
            self._arrays = (g["X"], g["y"] if self.has_y and "y" in g else None)
        X, y = self._arrays
        a, b = self.rows(i)
        return X[a:b], (None if y is None else y[a:b])


class DaskReader(_Reader):
    """One block of dask arrays computed at a time (by the active scheduler)."""

    def __init__(self, X: Any, y: Any = None):
        self.X, self.y, self.bounds = X, y, _bounds(X.chunks[0])

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        import dask

        xb = self.X.blocks[i]
        if self.y is None:
            return np.asarray(xb.compute()), None
        xv, yv = dask.compute(xb, self.y.blocks[i])
        return np.asarray(xv), np.asarray(yv)


def make_reader(data: Data, original: Any = None) -> _Reader:
    """The cheapest reader for ``data``: zarr for a store, slices for NumPy, else Dask.

    ``original`` is what the user passed (the store path or array before :func:`as_data`).
    """
    if isinstance(original, (str, os.PathLike)) and data.sample_weight is None:
        return ZarrReader(original, data.row_chunks, has_y=data.y is not None)
    if isinstance(original, np.ndarray) or hasattr(original, "iloc"):
        X = np.asarray(original if not hasattr(original, "iloc") else data.X.compute())
        y = None if data.y is None else np.asarray(data.y.compute())
        return ArrayReader(X, y, data.row_chunks)
    return DaskReader(data.X, data.y)


def split_blocks(n_blocks: int, validation_fraction: float, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)`` block indices; validation is held out by whole blocks.

    Examples
    --------
    >>> tr, va = split_blocks(10, 0.2, seed=0)
    >>> len(tr), len(va), sorted(set(tr) | set(va)) == list(range(10))
    (8, 2, True)
    """
    n_val = 0
    if validation_fraction > 0 and n_blocks >= 2:
        n_val = min(n_blocks - 1, max(1, int(round(validation_fraction * n_blocks))))
    perm = np.random.default_rng([0 if seed is None else seed, 2**20]).permutation(n_blocks)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def epoch_units(blocks: Sequence[int], epoch: int, *, seed: int | None, shuffle: bool = True,
                group: int = 1) -> list[list[int]]:
    """The blocks of one epoch, in training order, grouped ``group`` at a time.

    Examples
    --------
    >>> epoch_units(range(5), 0, seed=1, shuffle=False, group=2)
    [[0, 1], [2, 3], [4]]
    >>> epoch_units(range(5), 3, seed=1) == epoch_units(range(5), 3, seed=1)
    True
    """
    order = np.asarray(list(blocks), dtype=np.int64)
    if shuffle:
        order = order[np.random.default_rng([0 if seed is None else seed, epoch]).permutation(len(order))]
    g = max(1, int(group))
    return [order[i:i + g].tolist() for i in range(0, len(order), g)]


def iter_blocks(reader: _Reader, order: Sequence[int], *, max_in_flight: int = 2) -> Iterator[tuple[int, tuple]]:
    """Yield ``(block_index, (X, y))`` in ``order``, reading ahead ``max_in_flight`` blocks.

    At most ``max_in_flight`` blocks are being read or waiting; the consumer holds one more.

    Examples
    --------
    >>> r = ArrayReader(np.arange(10.0).reshape(5, 2), None, [2, 2, 1])
    >>> [(i, xy[0].shape[0]) for i, xy in iter_blocks(r, [2, 0, 1])]
    [(2, 1), (0, 2), (1, 2)]
    """
    order = list(order)
    depth = max(1, int(max_in_flight))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="daskscale-prefetch") as pool:
        pending: deque = deque()
        nxt = 0
        try:
            while nxt < len(order) or pending:
                while nxt < len(order) and len(pending) < depth:
                    pending.append((order[nxt], pool.submit(reader.read, order[nxt])))
                    nxt += 1
                i, fut = pending.popleft()
                yield i, fut.result()
        finally:
            for _, fut in pending:
                fut.cancel()


def mini_batches(n_rows: int, batch_size: int | None, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Row index arrays of the mini-batches of one unit (permuted first when ``rng`` is given).

    ``batch_size=None`` gives one batch of the whole unit. The last batch may be shorter.

    Examples
    --------
    >>> [len(b) for b in mini_batches(10, 4, None)]
    [4, 4, 2]
    """
    idx = rng.permutation(n_rows) if rng is not None else np.arange(n_rows)
    if not batch_size or batch_size >= n_rows:
        return [idx]
    k = math.ceil(n_rows / batch_size)
    return [idx[j * batch_size:(j + 1) * batch_size] for j in range(k)]

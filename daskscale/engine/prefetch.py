"""Blocks to a learner in training order: seeded shuffles, bounded read-ahead in a thread.

Shuffling is stateless: the block order of epoch ``e`` and the row permutation of block ``b``
are drawn from ``numpy.random.default_rng([seed, e, ...])``. A resumed fit therefore
replays exactly the same order without saving any random state.

:func:`iter_units` walks units of blocks with at most ``max_in_flight`` blocks read ahead by
one background thread, so reading, decompressing, checking and scaling the next unit overlaps
training on the current one (zarr's Blosc decode, NumPy and scikit-learn's SGD release the GIL).

Global shuffle (``interleave=k``): ``k`` blocks are read together, their rows permuted as
one unit and cut into mini-batches, so each batch mixes rows of ``k`` blocks. Cost: ``k``
blocks in memory instead of one (memory ~ ``(k + max(max_in_flight, k)) x block``: the unit
training and the next ones, read and joined meanwhile). Effect: it only matters when rows are
ordered within the store (sorted by time or by label), where it removes the bias of batches
drawn from one region; on i.i.d. rows it changes accuracy within noise (notebook 02).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from daskscale.engine.source import Reader

__all__ = ["iter_units", "iter_blocks", "epoch_units", "mini_batches", "split_blocks"]


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


def iter_blocks(reader: Reader, order: Sequence[int], *, max_in_flight: int = 2,
                prepare: Callable[[int, tuple], Any] | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(block_index, (X, y))`` in ``order``, reading ahead ``max_in_flight`` blocks.

    While the consumer holds one block, the next ``max_in_flight`` (at least one) are being
    read or wait for it.
    ``prepare(i, (X, y))``, when given, runs in the prefetch thread right after the read and
    its result is yielded instead of ``(X, y)``: per-block checks, scaling and row permutation
    then overlap training too (NumPy releases the GIL for them).

    Examples
    --------
    >>> from daskscale.engine.source import ArrayReader
    >>> r = ArrayReader(np.arange(10.0).reshape(5, 2), None, [2, 2, 1])
    >>> [(i, xy[0].shape[0]) for i, xy in iter_blocks(r, [2, 0, 1])]
    [(2, 1), (0, 2), (1, 2)]
    >>> [n for _, n in iter_blocks(r, [0, 2], prepare=lambda i, xy: len(xy[0]))]
    [2, 1]
    """
    for unit, out in iter_units(reader, [[i] for i in order], max_in_flight=max_in_flight, prepare=prepare,
                                join=lambda unit, parts: parts[0]):
        yield unit[0], out


def iter_units(reader: Reader, units: Sequence[Sequence[int]], *, max_in_flight: int = 2,
               prepare: Callable[[int, tuple], Any] | None = None,
               join: Callable[[Sequence[int], list], Any] | None = None) -> Iterator[tuple[list[int], Any]]:
    """Yield ``(unit, joined)`` for units of blocks (say :func:`epoch_units`), read ahead.

    Every block of a unit is read and ``prepare``-d, then ``join(unit, [prepared blocks])``
    makes the unit (default: the list itself), all in the prefetch thread, so the consumer
    gets each unit ready to train on. While the consumer holds a unit, the next ones are being
    read: ``max_in_flight`` blocks, rounded down to whole units but at least one unit. Memory
    is therefore about ``k + max(max_in_flight, k)`` blocks for units of ``k`` blocks.

    Examples
    --------
    >>> from daskscale.engine.source import ArrayReader
    >>> r = ArrayReader(np.arange(10.0).reshape(5, 2), None, [2, 2, 1])
    >>> [(u, len(X)) for u, X in iter_units(r, [[2, 0], [1]], join=lambda u, xys: np.concatenate([X for X, _ in xys]))]
    [([2, 0], 3), ([1], 2)]
    """
    units = [list(u) for u in units]
    depth = max(1, int(max_in_flight) // max((len(u) for u in units), default=1))

    def load(unit: list[int]) -> Any:
        parts = []
        for i in unit:
            block = reader.read(i if isinstance(i, (int, np.integer)) else i[0])  # a piece: its block
            parts.append(block if prepare is None else prepare(i, block))
        return parts if join is None else join(unit, parts)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="daskscale-prefetch") as pool:
        pending: deque = deque()
        nxt = 0

        def refill() -> None:
            nonlocal nxt
            while nxt < len(units) and len(pending) < depth:
                pending.append((units[nxt], pool.submit(load, units[nxt])))
                nxt += 1

        try:
            refill()
            while pending:
                unit, fut = pending.popleft()
                out = fut.result()
                refill()  # before handing this unit over: the next ones are read while it trains
                yield unit, out
                del out
        finally:
            for _, fut in pending:
                fut.cancel()


def mini_batches(n_rows: int, batch_size: int | None) -> list[slice]:
    """The mini-batches of a unit whose rows are already in training order: contiguous slices,
    so each batch is a view, never a copy. ``batch_size=None`` gives one batch of the whole unit;
    the last batch may be shorter.

    Examples
    --------
    >>> mini_batches(10, 4)
    [slice(0, 4, None), slice(4, 8, None), slice(8, 10, None)]
    >>> mini_batches(10, None)
    [slice(0, 10, None)]
    """
    if not batch_size or batch_size >= n_rows:
        return [slice(0, n_rows)]
    return [slice(a, min(a + batch_size, n_rows)) for a in range(0, n_rows, batch_size)]

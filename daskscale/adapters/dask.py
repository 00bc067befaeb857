"""dask's graph internals, reached from here only: arrays made of hand-written block tasks.

:mod:`daskscale.grid` reshapes the grid of blocks itself (a grid block ``(i, j, k)`` is row
block ``n``, and back), which no public dask operation does: ``map_blocks`` and ``blockwise``
keep the block grid, ``concatenate`` / ``block`` of one array per block make a graph layer per
block. So it writes one task per block and wraps them as an array here, over the arrays it reads:

- :func:`array_from_tasks` relies on ``dask.highlevelgraph.HighLevelGraph.from_collections``
  (a new layer that keeps its dependencies' layers, so a ``Blockwise`` read of a store stays
  fusable into the block task and is never materialised whole), on the ``dask.array.Array``
  constructor taking that graph, and on tuple tasks ``(func, *args)`` whose key arguments are
  replaced by the blocks they name. ``dask.array.Array`` given a plain dict instead drops the
  dependencies' layers, so the dict would have to hold the whole materialised graph.
- :func:`block_index` relies on ``dask.layers.ArrayBlockIdDep``: an argument of
  :func:`dask.array.blockwise` that is the block's index, what ``map_blocks(block_id=...)``
  uses inside; ``map_blocks`` itself cannot align arrays that span only some of the dims.
- :func:`active_client` relies on ``dask.base.get_scheduler()`` returning a distributed
  client's bound ``get`` when that client is what ``dask.compute`` would use now: unlike
  ``distributed.get_client()``, it honours ``dask.config.set(scheduler="threads")`` inside a
  client's context (ingest stages its blocks as futures only when the client would run them).

``tests/adapters/test_dask_adapter.py`` fails loudly when dask changes any of these.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import dask.array as da
import numpy as np

__all__ = ["array_from_tasks", "block_index", "active_client"]


def array_from_tasks(name: str, tasks: Mapping[tuple, tuple], dependencies: Sequence[Any],
                     chunks: tuple[tuple[int, ...], ...], dtype: Any) -> da.Array:
    """A dask array named ``name`` whose block ``(name, *index)`` is ``tasks[(name, *index)]``.

    ``tasks`` maps every block key of the new array to a tuple task ``(func, *args)``; an
    argument that is a key of one of the ``dependencies`` (dask collections) is replaced by
    that block when the task runs.

    Examples
    --------
    >>> import operator
    >>> x = da.arange(6, chunks=3)
    >>> y = array_from_tasks("twice", {("twice", 0): (operator.mul, (x.name, 1), 2),
    ...                                 ("twice", 1): (operator.mul, (x.name, 0), 2)}, [x], ((3, 3),), x.dtype)
    >>> y.compute().tolist()
    [6, 8, 10, 0, 2, 4]
    """
    from dask.highlevelgraph import HighLevelGraph

    graph = HighLevelGraph.from_collections(name, dict(tasks), dependencies=list(dependencies))
    return da.Array(graph, name, chunks=chunks, dtype=np.dtype(dtype))


def block_index(chunks: tuple[tuple[int, ...], ...]) -> Any:
    """An argument of :func:`dask.array.blockwise` (index: the block dims) that is the block's index tuple.

    Pass ``align_arrays=False`` to ``blockwise``: it is not an array whose chunks can be unified.

    Examples
    --------
    >>> x = da.zeros((4, 6), chunks=(2, 3))
    >>> ids = da.blockwise(lambda b, i: np.full(b.shape, 10 * i[0] + i[1]), "ij", x, "ij", block_index(x.chunks), "ij",
    ...                    dtype=int, align_arrays=False)
    >>> ids.compute()[::2, ::3].tolist()
    [[0, 1], [10, 11]]
    """
    from dask.layers import ArrayBlockIdDep

    return ArrayBlockIdDep(chunks)


def active_client() -> Any | None:
    """The distributed client ``dask.compute`` would run on now, or ``None`` (a local scheduler).

    Examples
    --------
    >>> import dask
    >>> with dask.config.set(scheduler="sync"):
    ...     active_client() is None
    True
    """
    import dask.base

    client = getattr(dask.base.get_scheduler(), "__self__", None)
    return client if hasattr(client, "compute") and hasattr(client, "cancel") else None

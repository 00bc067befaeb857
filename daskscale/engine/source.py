"""The one input boundary: a :class:`Source` of row blocks, made once from any accepted input.

:meth:`Source.of` takes what the user passed (a store path, xarray, dask, NumPy, pandas, a
grid with ``sample_dims``), checks it once (:func:`~daskscale.storage.convert.as_data`: shapes,
dtypes, names, target) and picks the cheapest reader of its row blocks, once:

- :class:`ZarrReader` reads a daskscale store's chunks directly with zarr, in the process that
  trains (a worker-side fit reads on its worker; no Dask graph, nothing through the scheduler);
- :class:`ArrayReader` slices NumPy arrays already in memory (aligned once, here);
- :class:`DaskReader` computes one block of a dask array at a time (generated or derived data).

No later code looks at the original input again: the trainers, the block loop, the searches
and the evaluators take the :class:`Source` (``source.data`` is its lazy dask view, for the
fused reductions that run on the cluster).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from daskscale.adapters.zarr import ChunkFile
from daskscale.engine.process import PROCESS
from daskscale.storage.chunks import read_chunks
from daskscale.storage.convert import Data, aligned, as_data

__all__ = ["Source", "Reader", "ArrayReader", "ZarrReader", "DaskReader", "HeldReader"]


def _bounds(row_chunks: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(row_chunks)]).astype(np.int64)


class Reader:
    """Block ``i`` as ``(X, y or None)``; subclasses implement :meth:`read`."""

    bounds: np.ndarray

    @property
    def n_blocks(self) -> int:
        return len(self.bounds) - 1

    def rows(self, i: int) -> tuple[int, int]:
        return int(self.bounds[i]), int(self.bounds[i + 1])

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def block_key(self, i: int) -> tuple | None:
        """A key naming block ``i``'s content across processes and pickles, or ``None``."""
        return None


class ArrayReader(Reader):
    """Slices of in-memory arrays."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None, row_chunks: Sequence[int]):
        self.X, self.y, self.bounds = X, y, _bounds(row_chunks)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        a, b = self.rows(i)
        return self.X[a:b], (None if self.y is None else self.y[a:b])


class ZarrReader(Reader):
    """Chunks of a daskscale store read directly with zarr; picklable (opens lazily).

    A block that is exactly one chunk of a local Zarr v3 array encoded ``bytes`` (+ ``blosc``)
    is decoded straight from its chunk file (:class:`daskscale.adapters.zarr.ChunkFile`) unless
    ``fast=False``; any other layout (another codec, sharding, a remote store, a missing chunk)
    is read by zarr. The opened arrays are kept per process (:data:`daskscale.engine.process.PROCESS`).
    """

    def __init__(self, path: str | os.PathLike, row_chunks: Sequence[int], has_y: bool = True, fast: bool = True):
        self.path, self.bounds, self.has_y, self.fast = str(path), _bounds(row_chunks), has_y, fast
        self._arrays: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}

    def _open(self) -> Any:
        if self._arrays is None:
            stamp = _store_stamp(self.path, self.has_y)
            self._arrays = PROCESS.store(None if stamp is None else (*stamp, self.fast), self._open_arrays)
        return self._arrays

    def _open_arrays(self) -> tuple:
        import zarr

        g = zarr.open_group(self.path, mode="r")
        X, y = g["X"], (g["y"] if self.has_y and "y" in g else None)
        fast = ChunkFile.of if self.fast else (lambda arr: None)
        return X, y, fast(X), None if y is None else fast(y)

    def block_key(self, i: int) -> tuple | None:
        stamp = _store_stamp(self.path, self.has_y)
        return None if stamp is None else (stamp, self.rows(i))

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        X, y, fx, fy = self._open()
        a, b = self.rows(i)
        return self._rows(X, fx, "X", a, b), (None if y is None else self._rows(y, fy, "y", a, b))

    def _rows(self, arr: Any, fast: ChunkFile | None, name: str, a: int, b: int) -> np.ndarray:
        """Rows ``a:b`` of one array, from its chunk file if possible, else by zarr; a damaged
        chunk raises :class:`~daskscale.errors.CorruptChunkError` naming it either way."""
        try:
            out = fast.read(a, b) if fast is not None else None
        except (RuntimeError, ValueError, OSError):  # bad bytes: zarr reads again and names the chunk
            out = None
        return read_chunks(arr, slice(a, b), store=self.path, name=name) if out is None else out


def _store_stamp(path: str, has_y: bool) -> tuple | None:
    """``(path, has_y, mtimes of the metadata files)`` for a local store, else ``None`` (not cached)."""

    def mtime(name: str) -> int:
        try:
            return os.stat(os.path.join(path, name)).st_mtime_ns
        except FileNotFoundError:
            return 0

    try:
        times = tuple(mtime(n) for n in ("zarr.json", os.path.join("X", "zarr.json"), os.path.join("y", "zarr.json")))
    except (OSError, TypeError, ValueError):  # not a local path
        return None
    return None if times[1] == 0 else (os.path.abspath(path), has_y, times)


class DaskReader(Reader):
    """One block of dask arrays computed at a time (by the active scheduler)."""

    def __init__(self, X: Any, y: Any = None):
        self.X, self.y, self.bounds = X, y, _bounds(X.chunks[0])

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        import dask

        xb = self.X.blocks[i]
        if self.y is None:
            return aligned(np.asarray(xb.compute())), None
        xv, yv = dask.compute(xb, self.y.blocks[i])  # from a cluster: possibly unaligned (see aligned)
        return aligned(np.asarray(xv)), aligned(np.asarray(yv))


class HeldReader(Reader):
    """Blocks already in this process's memory: ``held[i]`` is block ``i`` as ``(X, y)``.

    ``read`` takes a block index or a piece ``(i, part, parts)`` (its whole block: the loop
    cuts the piece), as the prefetch of :func:`~daskscale.engine.loop.run` asks for either.

    ``bounds`` are the row offsets of every block of the input, so errors name a block's rows
    as any reader's do. A block fetched from another worker may be unaligned (:func:`aligned`).
    """

    def __init__(self, bounds: Sequence[int], held: dict[int, tuple[np.ndarray, Any]]):
        self.bounds, self.held = np.asarray(bounds), held

    def read(self, i: Any) -> tuple[np.ndarray, np.ndarray | None]:
        X, y = self.held[i if isinstance(i, (int, np.integer)) else i[0]]
        return aligned(np.asarray(X)), (None if y is None else aligned(np.asarray(y)))


@dataclass
class Source:
    """Row blocks of one input: ``data`` (metadata and lazy dask view) and ``reader`` (block ``i``).

    ``kind`` says where the blocks live: ``"store"`` (a daskscale store, readable on any
    worker that sees its path), ``"memory"`` (NumPy arrays in this process) or ``"dask"``.

    Examples
    --------
    >>> src = Source.of(np.arange(12.0).reshape(6, 2), np.arange(6) % 2, chunk_rows=4)
    >>> src.kind, src.n_blocks, src.rows(1), src.read(1)[0].tolist()
    ('memory', 2, (4, 6), [[8.0, 9.0], [10.0, 11.0]])
    """

    data: Data
    reader: Reader
    kind: str

    @classmethod
    def of(cls, X: Any, y: Any = None, *, require_y: bool = False, chunk_rows: int | None = None,
           target: str | None = None, sample_weight: Any = None, sample_dims: Any = None,
           feature_dim: str | None = None, mask: Any = None, name: str = "X") -> "Source":
        """The source of ``X`` (and ``y``); ``chunk_rows`` re-cuts the row blocks."""
        if isinstance(X, Source):
            return X
        data = as_data(X, y, require_y=require_y, chunk_rows=chunk_rows, target=target,
                       sample_weight=sample_weight, sample_dims=sample_dims, feature_dim=feature_dim, mask=mask,
                       name=name)
        own_blocks = chunk_rows is None or data.row_chunks == _stored_chunks(X)
        if (isinstance(X, (str, os.PathLike)) and y is None and sample_weight is None and sample_dims is None
                and own_blocks):
            return cls(data, ZarrReader(X, data.row_chunks, has_y=data.y is not None), "store")
        if isinstance(X, np.ndarray) or hasattr(X, "iloc") or isinstance(X, list):
            # in memory: a NumPy array is read where it is; pandas and lists are converted once (by
            # as_data), and taken back from its wrapper here (sync: no cluster round trip)
            import dask

            Xa, ya = dask.compute(data.X if not isinstance(X, np.ndarray) else None, data.y, scheduler="sync")
            Xa = X if isinstance(X, np.ndarray) else Xa
            return cls(data, ArrayReader(aligned(np.asarray(Xa)), None if ya is None else aligned(np.asarray(ya)),
                                         data.row_chunks), "memory")
        return cls(data, DaskReader(data.X, data.y), "dask")

    # the reader's view, so a Source can stand wherever a reader is read
    @property
    def n_blocks(self) -> int:
        return self.reader.n_blocks

    def rows(self, i: int) -> tuple[int, int]:
        return self.reader.rows(i)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        return self.reader.read(i)

    def block_key(self, i: int) -> tuple | None:
        return self.reader.block_key(i)

    @property
    def n_rows(self) -> int:
        return self.data.n_rows

    @property
    def n_features(self) -> int:
        return self.data.n_features


def _stored_chunks(X: Any) -> tuple[int, ...] | None:
    if not isinstance(X, (str, os.PathLike)):
        return None
    import zarr

    return tuple(int(c) for c in np.diff(_bounds_of(zarr.open_array(os.path.join(str(X), "X"), mode="r"))))


def _bounds_of(arr: Any) -> np.ndarray:
    rows, n = int(arr.chunks[0]), int(arr.shape[0])
    return np.append(np.arange(0, n, rows), n)

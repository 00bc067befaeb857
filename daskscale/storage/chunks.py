"""Chunk integrity: every read of a store's chunks goes through one guard.

:func:`read_chunks` reads a selection of a zarr array; a chunk file that is truncated,
overwritten or otherwise does not decode to its chunk's size raises :class:`CorruptChunkError`
naming the store, the array, the chunk index, its row range and what to do, wherever it is read
(in this process or inside a Dask task on a worker). :func:`guard_chunks` puts that guard under
a lazily opened dataset; :func:`check_store` decodes every chunk and lists all the bad ones.
"""

from __future__ import annotations

import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterator

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from daskscale.adapters.zarr import blosc_files, blosc_sizes, chunk_key
from daskscale.errors import CorruptChunkError, StoreError
from daskscale.storage import layout

__all__ = ["CorruptChunkError", "ChunkProblem", "check_store", "read_chunks", "guard_chunks"]


@dataclass(frozen=True)
class ChunkProblem:
    """One bad chunk found by :func:`check_store`."""

    array: str
    chunk: int | tuple[int, ...]
    rows: tuple[int, int]
    reason: str

    def __str__(self) -> str:
        return f"array {self.array!r} chunk {self.chunk} (rows {self.rows[0]}:{self.rows[1]}): {self.reason}"


def _chunk_grid(arr: zarr.Array) -> tuple[int, ...]:
    return tuple(math.ceil(s / c) for s, c in zip(arr.shape, arr.chunks))


def _chunk_id(arr: zarr.Array, idx: tuple[int, ...]) -> int | tuple[int, ...]:
    """A row chunk's index as one number (daskscale arrays are chunked along rows only)."""
    return idx[0] if idx and all(g == 1 for g in _chunk_grid(arr)[1:]) else idx


def _chunk_rows(arr: zarr.Array, idx: tuple[int, ...]) -> tuple[int, int]:
    if not idx:
        return 0, 0
    c = arr.chunks[0]
    return idx[0] * c, min((idx[0] + 1) * c, arr.shape[0])


def _header_problem(arr: zarr.Array, name: str, idx: tuple[int, ...], files: tuple[Any, str, int]) -> str | None:
    """What is wrong with the Blosc header of chunk ``idx``'s file, or ``None``."""
    fs, folder, want = files
    key = chunk_key(arr, name, idx)
    path = f"{folder}/{key.partition('/')[2]}"
    try:
        head, size = fs.cat_file(path, start=0, end=16), fs.size(path)
    except FileNotFoundError:  # never written: it holds the fill value
        return None
    if size < 16:
        return f"file {key} has {size} bytes, less than a Blosc header"
    nbytes, cbytes = blosc_sizes(head)
    if cbytes != size:
        return f"file {key} has {size} bytes but its Blosc header says {cbytes} (truncated or overwritten)"
    if nbytes != want:
        return f"file {key} decodes to {nbytes} bytes instead of the chunk's {want}"
    return None


def _decode_problem(arr: zarr.Array, name: str, idx: tuple[int, ...], files: Any = None) -> str | None:
    """Why chunk ``idx`` of ``arr`` does not decode to its size, or ``None`` when it does."""
    files = blosc_files(arr) if files is None else files
    reason = _header_problem(arr, name, idx, files) if files is not None else None
    if reason is not None:
        return reason
    region = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, arr.chunks, arr.shape))
    key = chunk_key(arr, name, idx)
    try:
        out = arr[region]
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - every codec raises its own types for bad bytes
        return f"file {key} does not decode ({type(exc).__name__}: {exc})"
    want = tuple(r.stop - r.start for r in region)
    if np.shape(out) != want:
        return f"file {key} decodes to shape {np.shape(out)} instead of {want}"
    return None


def _selected_chunks(arr: zarr.Array, selection: Any) -> Iterator[tuple[int, ...]]:
    sel = selection if isinstance(selection, tuple) else (selection,)
    sel = sel + (slice(None),) * (arr.ndim - len(sel))
    ranges = []
    for s, c, n in zip(sel, arr.chunks, arr.shape):
        if isinstance(s, slice):
            a, b, _ = s.indices(n)
            ranges.append(range(a // c, (b - 1) // c + 1) if b > a else range(0))
        else:
            i = int(s) % n
            ranges.append(range(i // c, i // c + 1))
    return itertools.product(*ranges)


def read_chunks(arr: zarr.Array, selection: Any, *, store: str | os.PathLike, name: str,
                files: tuple[Any, str, int] | None = None) -> np.ndarray:
    """``arr[selection]`` for the array ``name`` of ``store``; a damaged chunk raises
    :class:`CorruptChunkError` naming it.

    Local Blosc chunk files have their 16-byte header checked first (see :func:`daskscale.adapters.zarr.blosc_files`);
    any other damage shows as a decoding error, after which the selected chunks are decoded
    one by one to find the bad one. A good read costs zarr's own plus one small read per chunk.
    ``files``: where the chunk files are (default: found from ``arr``, for a local store).
    """
    files = blosc_files(arr) if files is None else files
    if files is not None:
        for idx in _selected_chunks(arr, selection):
            reason = _header_problem(arr, name, idx, files)
            if reason is not None:
                raise CorruptChunkError(str(store), name, _chunk_id(arr, idx), _chunk_rows(arr, idx), reason)
    try:
        return arr[selection]
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - narrowed below: re-raised unless a chunk is at fault
        for idx in _selected_chunks(arr, selection):
            reason = _decode_problem(arr, name, idx, files)
            if reason is not None:
                raise CorruptChunkError(str(store), name, _chunk_id(arr, idx), _chunk_rows(arr, idx), reason) from exc
        raise


class _GuardedArray:
    """A zarr array for :func:`dask.array.from_array` whose chunks are read by :func:`read_chunks`."""

    def __init__(self, arr: zarr.Array, store: str, name: str, files: tuple[Any, str, int] | None):
        self.arr, self.store, self.name, self.files = arr, store, name, files
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim

    def __getitem__(self, selection: Any) -> np.ndarray:
        return read_chunks(self.arr, selection, store=self.store, name=self.name, files=self.files)


def guard_chunks(ds: xr.Dataset, group: zarr.Group, label: str, fs: Any = None, root: str | None = None) -> xr.Dataset:
    """``ds`` (opened lazily by xarray from ``group``) with its data variables read through
    :func:`read_chunks`: same chunks, values and attributes, one task per chunk as before.
    ``fs`` and ``root``: the (synchronous) fsspec file system and folder of a store opened by URL.

    A variable that xarray decodes into other values (scaled, or masked by a non-NaN fill
    value) keeps xarray's own reader: daskscale never writes one.
    """
    new = {}
    for name, var in ds.data_vars.items():
        if name not in group or not hasattr(var.data, "dask"):
            continue
        arr = group[name]
        fill = var.encoding.get("_FillValue")
        plain = fill is None or (isinstance(fill, float) and np.isnan(fill))
        if var.dtype != arr.dtype or var.shape != arr.shape or not plain or {"scale_factor", "add_offset"} & set(var.encoding):
            continue
        data = da.from_array(_GuardedArray(arr, label, name, blosc_files(arr, fs, root)), chunks=var.data.chunks,
                             name=f"daskscale-{var.data.name}",
                             meta=np.empty((0,) * arr.ndim, dtype=arr.dtype))
        new[name] = var.copy(data=data)
    return ds.assign(new)


def check_store(store: str | os.PathLike) -> list[ChunkProblem]:
    """Decode every chunk of every array of ``store`` and return the bad ones (empty: all good).

    Chunks are decoded one at a time per task (memory: one chunk per thread), in parallel on
    the active :mod:`distributed` client's workers (which must see ``store``), else on a few
    local threads. Only committed rows are checked.

    Examples
    --------
    >>> import tempfile, daskscale
    >>> path = tempfile.mkdtemp() + "/d.zarr"
    >>> _ = daskscale.ingest(np.arange(12.0).reshape(6, 2), path, chunk_rows=4)
    >>> check_store(path)
    []
    """
    from daskscale.storage.store import store_attrs  # store.py opens datasets through this module

    attrs = store_attrs(store)
    group = zarr.open_group(str(store), mode="r")
    committed = attrs.get("n_rows_committed")
    batches = []
    for name, arr in sorted(group.arrays()):
        grid = list(_chunk_grid(arr))
        dims = getattr(arr.metadata, "dimension_names", None) or ()
        if committed is not None and dims[:1] == (layout.SAMPLE,):
            grid[0] = min(grid[0], math.ceil(int(committed) / arr.chunks[0]))
        chunks = list(itertools.product(*(range(g) for g in grid)))
        batches += [(str(store), name, chunks[i:i + 8]) for i in range(0, len(chunks), 8)]
    client = _active_client()
    if client is not None:
        futures = client.map(_check_batch, *zip(*batches), pure=False) if batches else []
        found = [p for ps in client.gather(futures) for p in ps]
    else:
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            found = [p for ps in pool.map(lambda b: _check_batch(*b), batches) for p in ps]
    return sorted(found, key=lambda p: (p.array, p.rows, str(p.chunk)))


def _active_client() -> Any:
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):  # no distributed, or no client: check locally
        return None


def _check_batch(store: str, name: str, chunks: list[tuple[int, ...]]) -> list[ChunkProblem]:
    if not os.path.isdir(store):
        raise StoreError(f"{store} is not visible from this worker ({os.uname().nodename}); check it where it lives")
    arr = zarr.open_array(store, path=name, mode="r")
    out = []
    for idx in chunks:
        reason = _decode_problem(arr, name, idx)
        if reason is not None:
            out.append(ChunkProblem(name, _chunk_id(arr, idx), _chunk_rows(arr, idx), reason))
    return out

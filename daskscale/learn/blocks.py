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
blocks in memory instead of one (memory ~ ``(k + max(max_in_flight, k)) x block``: the unit
training and the next ones, read and joined meanwhile). Effect: it only
matters when rows are ordered within the store (sorted by time or by label), where it
removes the bias of batches drawn from one region; on i.i.d. rows it changes accuracy within
noise (see ``benchmarks/bench_incremental.py`` and notebook 02).

Allocator (:func:`blocks_on_heap`): a Dask nanny starts its workers with
``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes glibc's mmap threshold at 128 KiB. Every
block (and zarr's compressed and decoded copies of it) is then a fresh ``mmap``, page-faulted
in by the kernel and unmapped again a moment later; measured on a worker, that made reading
two times slower and, through the unmapping, slowed the training thread too. While blocks
stream, the thresholds are raised so freed blocks are reused from the heap; afterwards they
are reset to the environment's values and the free memory is handed back (``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import os
import threading
import time
from collections import OrderedDict, deque
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from daskscale.storage.convert import Data, aligned
from daskscale.storage.chunks import read_chunks

__all__ = ["ArrayReader", "ZarrReader", "DaskReader", "make_reader", "iter_blocks", "iter_units", "epoch_units",
           "mini_batches", "split_blocks", "blocks_on_heap"]


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

    def block_key(self, i: int) -> tuple | None:
        """A key naming block ``i``'s content across processes and pickles, or ``None``."""
        return None


class ArrayReader(_Reader):
    """Slices of in-memory arrays."""

    def __init__(self, X: np.ndarray, y: np.ndarray | None, row_chunks: Sequence[int]):
        self.X, self.y, self.bounds = X, y, _bounds(row_chunks)

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        a, b = self.rows(i)
        return self.X[a:b], (None if self.y is None else self.y[a:b])


class ZarrReader(_Reader):
    """Chunks of a daskscale store read directly with zarr; picklable (opens lazily).

    A block that is exactly one chunk of a local Zarr v3 array encoded ``bytes`` (+ ``blosc``)
    is decoded straight from its chunk file into the block's array (:class:`_ChunkFile`):
    zarr's generic path would copy it twice more through its own buffers. Any other layout
    (another codec, sharding, a remote store, a missing chunk) is read by zarr.
    """

    def __init__(self, path: str | os.PathLike, row_chunks: Sequence[int], has_y: bool = True):
        self.path, self.bounds, self.has_y = str(path), _bounds(row_chunks), has_y
        self._arrays: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}

    def _open(self) -> Any:
        if self._arrays is None:
            key = _store_stamp(self.path, self.has_y)
            with _opened_lock:
                self._arrays = _opened.get(key) if key is not None else None
            if self._arrays is None:
                import zarr

                g = zarr.open_group(self.path, mode="r")
                X, y = g["X"], (g["y"] if self.has_y and "y" in g else None)
                self._arrays = (X, y, _ChunkFile.of(X), None if y is None else _ChunkFile.of(y))
                if key is not None:
                    with _opened_lock:
                        _opened[key] = self._arrays
                        while len(_opened) > 16:
                            _opened.popitem(last=False)
        return self._arrays

    def block_key(self, i: int) -> tuple | None:
        stamp = _store_stamp(self.path, self.has_y)
        return None if stamp is None else (stamp, self.rows(i))

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        X, y, fx, fy = self._open()
        a, b = self.rows(i)
        return self._rows(X, fx, "X", a, b), (None if y is None else self._rows(y, fy, "y", a, b))

    def _rows(self, arr: Any, fast: "_ChunkFile | None", name: str, a: int, b: int) -> np.ndarray:
        """Rows ``a:b`` of one array, from its chunk file if possible, else by zarr; a damaged
        chunk raises :class:`~daskscale.storage.chunks.CorruptChunkError` naming it either way."""
        try:
            out = fast.read(a, b) if fast is not None else None
        except (RuntimeError, ValueError, OSError):  # bad bytes: zarr reads again and names the chunk
            out = None
        return read_chunks(arr, slice(a, b), store=self.path, name=name) if out is None else out


# Opened stores of this process, by path and metadata file times: a worker that runs one short
# task per round (parameter averaging) would otherwise re-read the store's metadata (~5 ms) in
# every task. A rewritten store has new metadata files, hence a new key.
_opened: "OrderedDict[tuple, Any]" = OrderedDict()
_opened_lock = threading.Lock()


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


class _ChunkFile:
    """Whole row chunks of a local Zarr v3 array, decoded from their files into NumPy arrays.

    Only the layout whose decoding is fully known is handled: regular chunks with one chunk
    across the non-row dimensions, codecs ``bytes`` (native byte order) then optionally
    ``blosc``, no sharding. :meth:`read` returns ``None`` whenever zarr should read instead.
    """

    def __init__(self, folder: str, encode: Any, dtype: np.dtype, chunk_shape: tuple, n_rows: int, blosc: bool):
        self.folder, self.encode, self.dtype = folder, encode, dtype
        self.chunk_shape, self.n_rows, self.blosc = chunk_shape, n_rows, blosc

    @classmethod
    def of(cls, arr: Any) -> "_ChunkFile | None":
        import sys

        try:
            from zarr.codecs import BloscCodec, BytesCodec
            from zarr.storage import LocalStore

            meta = arr.metadata
            codecs = list(meta.codecs)
            if (meta.zarr_format != 3 or not isinstance(arr.store, LocalStore) or arr.dtype.kind not in "biuf"
                    or not codecs or len(codecs) > 2 or type(codecs[0]) is not BytesCodec
                    or (len(codecs) == 2 and type(codecs[1]) is not BloscCodec)
                    or tuple(arr.chunks[1:]) != tuple(arr.shape[1:])):
                return None
            endian = codecs[0].endian
            if arr.dtype.itemsize > 1 and (endian is None or endian.value != sys.byteorder):
                return None
            folder = os.path.join(str(arr.store.root), arr.path)
            return cls(folder, meta.chunk_key_encoding.encode_chunk_key, np.dtype(arr.dtype), tuple(arr.chunks),
                       int(arr.shape[0]), len(codecs) == 2)
        except Exception:  # noqa: BLE001 - any doubt about the layout: let zarr read it
            return None

    def read(self, a: int, b: int) -> np.ndarray | None:
        rows = self.chunk_shape[0]
        k, off = divmod(a, rows)
        if off or b != min(a + rows, self.n_rows):
            return None
        key = self.encode((k,) + (0,) * (len(self.chunk_shape) - 1))
        try:
            f = open(os.path.join(self.folder, key), "rb")
        except FileNotFoundError:  # an unwritten chunk holds the fill value: zarr knows it
            return None
        with f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return None
            # decoded straight from the page cache: no copy of the compressed bytes
            with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as raw:
                return self._decode(raw, size, b - a)

    def _decode(self, raw: Any, size: int, n: int) -> np.ndarray | None:
        out = np.empty(self.chunk_shape, dtype=self.dtype)
        if self.blosc:
            from numcodecs import blosc

            # header: uncompressed size, and compressed size = the file's (Blosc itself would read past a
            # truncated frame); on a mismatch zarr's path reads it and names the damaged chunk
            if (size < 16 or int.from_bytes(raw[4:8], "little") != out.nbytes
                    or int.from_bytes(raw[12:16], "little") != size):
                return None
            blosc.decompress(raw, out)  # releases the GIL: overlaps training
        elif size == out.nbytes:
            out.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
        else:
            return None
        return out if n == len(out) else out[:n]


class DaskReader(_Reader):
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


def make_reader(data: Data, original: Any = None, y: Any = None) -> _Reader:
    """The cheapest reader for ``data``: zarr for a store, slices for NumPy, else Dask.

    ``original`` is what the user passed (the store path or array before :func:`as_data`) and
    ``y`` the target passed with it, if any: a store path with a target of its own is read by
    zarr; with a separate ``y`` (which :func:`as_data` put in ``data``) it is read through Dask,
    so the blocks pair the store's rows with *that* target.
    """
    if isinstance(original, (str, os.PathLike)) and data.sample_weight is None and y is None:
        return ZarrReader(original, data.row_chunks, has_y=data.y is not None)
    if isinstance(original, np.ndarray) or hasattr(original, "iloc"):
        X = aligned(np.asarray(original if not hasattr(original, "iloc") else data.X.compute()))
        y = None if data.y is None else aligned(np.asarray(data.y.compute()))
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


def iter_blocks(reader: _Reader, order: Sequence[int], *, max_in_flight: int = 2,
                prepare: Callable[[int, tuple], Any] | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(block_index, (X, y))`` in ``order``, reading ahead ``max_in_flight`` blocks.

    While the consumer holds one block, the next ``max_in_flight`` (at least one) are being
    read or wait for it.
    ``prepare(i, (X, y))``, when given, runs in the prefetch thread right after the read and
    its result is yielded instead of ``(X, y)``: per-block checks, scaling and row permutation
    then overlap training too (NumPy releases the GIL for them).

    Examples
    --------
    >>> r = ArrayReader(np.arange(10.0).reshape(5, 2), None, [2, 2, 1])
    >>> [(i, xy[0].shape[0]) for i, xy in iter_blocks(r, [2, 0, 1])]
    [(2, 1), (0, 2), (1, 2)]
    >>> [n for _, n in iter_blocks(r, [0, 2], prepare=lambda i, xy: len(xy[0]))]
    [2, 1]
    """
    for unit, out in iter_units(reader, [[i] for i in order], max_in_flight=max_in_flight, prepare=prepare,
                                join=lambda unit, parts: parts[0]):
        yield unit[0], out


def iter_units(reader: _Reader, units: Sequence[Sequence[int]], *, max_in_flight: int = 2,
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
    >>> r = ArrayReader(np.arange(10.0).reshape(5, 2), None, [2, 2, 1])
    >>> [(u, len(X)) for u, X in iter_units(r, [[2, 0], [1]], join=lambda u, xys: np.concatenate([X for X, _ in xys]))]
    [([2, 0], 3), ([1], 2)]
    """
    units = [list(u) for u in units]
    depth = max(1, int(max_in_flight) // max((len(u) for u in units), default=1))

    def load(unit: list[int]) -> Any:
        parts = []
        for i in unit:
            block = reader.read(i)
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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_MMAP_THRESHOLD = 32 * 2**20  # glibc's largest allowed value on 64-bit: blocks up to 32 MB
_HEAP_TRIM_THRESHOLD = 1 << 30
_heap_users = [0]
_heap_raised = [False]
_heap_until = [0.0]  # monotonic time until which a lingering process keeps the raised settings
_heap_timer: list[Any] = [None]  # the one pending restore timer, if any
_heap_lock = threading.Lock()


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
    >>> with blocks_on_heap():
    ...     block = np.ones((1000, 50))
    """
    trim_env = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    libc = _glibc() if trim_env is not None else None
    if libc is None:
        yield
        return
    with _heap_lock:
        _heap_users[0] += 1
        if _heap_users[0] == 1 and not _heap_raised[0]:
            libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _HEAP_TRIM_THRESHOLD)
            _heap_raised[0] = True
    try:
        yield
    finally:
        with _heap_lock:
            _heap_users[0] -= 1
            if _heap_users[0] == 0:
                if linger > 0:  # one timer per process, however many short uses come and go
                    _heap_until[0] = time.monotonic() + linger
                    if _heap_timer[0] is None:
                        _start_heap_timer(linger, libc, trim_env)
                else:
                    _restore_heap(libc, trim_env)


def _start_heap_timer(delay: float, libc: Any, trim_env: str) -> None:
    timer = threading.Timer(delay, _lingered, (libc, trim_env))
    timer.daemon = True
    _heap_timer[0] = timer
    timer.start()


def _lingered(libc: Any, trim_env: str) -> None:
    """The restore timer fired: restore, wait out a linger extended since, or leave it to the user inside."""
    with _heap_lock:
        _heap_timer[0] = None
        if _heap_users[0] or not _heap_raised[0]:
            return  # in use again: its last user out lingers anew
        rest = _heap_until[0] - time.monotonic()
        if rest > 0:
            _start_heap_timer(rest, libc, trim_env)
        else:
            _restore_heap(libc, trim_env)


def _restore_heap(libc: Any, trim_env: str) -> None:
    """The environment's thresholds back and free heap memory returned (``_heap_lock`` held)."""
    if not _heap_raised[0]:
        return
    libc.mallopt(_M_MMAP_THRESHOLD, int(os.environ.get("MALLOC_MMAP_THRESHOLD_", 128 * 1024)))
    libc.mallopt(_M_TRIM_THRESHOLD, int(trim_env))
    _heap_raised[0] = False
    libc.malloc_trim(0)

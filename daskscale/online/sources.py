"""Stream sources: each yields :class:`Batch` es with a position that can be recorded.

A source's ``position`` (plain JSON) says where the NEXT batch starts; every batch carries
the position reached after it. Saving that position with the model that learned the batch
(:meth:`daskscale.online.OnlineLearner.save`) and calling ``seek(position)`` on restart
gives exactly-once learning.

- :class:`StoreSource`: a daskscale store that may keep growing (rows appended by
  :func:`daskscale.storage.append.append_rows` in another process). It reads only rows
  below ``n_rows_committed`` and, while following, only whole committed chunks, so a chunk
  still being written is never read; it stops when the writer calls ``close_stream`` (or
  after ``idle_timeout`` seconds without new rows).
- :class:`DirectorySource`: a folder where ``.parquet`` / ``.csv`` files arrive. The rule
  for "complete": a file whose name starts with ``.`` or ends in ``.tmp``/``.part`` is
  never read (write under such a name and rename into place: that is atomic), and any
  other file is read once it has not been modified for ``settle_seconds`` (use
  ``settle_seconds=0`` when every writer renames into place).
  A file that cannot be parsed is skipped, counted in ``skipped`` and logged, never retried.
- :class:`IteratorSource`: any iterable of ``(X, y)`` pairs or DataFrames; its position
  is the number of items consumed (resume re-creates the iterable and skips that many).
- :class:`ReplaySource`: an existing store replayed at ``rate`` rows per second.
- :class:`~daskscale.online.csv_tail.CsvTailSource` (its own module): one CSV file that
  keeps growing, read as ``tail -f`` reads it; its position is a byte offset and a row count.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import zarr

from daskscale.errors import SchemaError
from daskscale.storage.chunks import read_chunks
from daskscale.storage.store import store_attrs

__all__ = ["Batch", "StoreSource", "DirectorySource", "IteratorSource", "ReplaySource", "as_source"]

log = logging.getLogger("daskscale.online")


@dataclass
class Batch:
    """Rows that arrived together, and where the source stands after them."""

    X: Any
    y: Any
    position: Any
    where: str = ""
    arrived: float = field(default_factory=time.perf_counter)

    def __len__(self) -> int:
        return int(np.shape(self.X)[0])


class _Source:
    classes: list[Any] | None = None
    target: str | None = None
    skipped: list[dict[str, Any]]
    #: set by the learner on Ctrl-C: a waiting follower returns instead of polling on
    stopped: bool = False

    def seek(self, position: Any) -> None:
        self.position = position

    def __iter__(self) -> Iterator[Batch]:
        raise NotImplementedError


class StoreSource(_Source):
    """Batches of rows from a daskscale store, optionally following it as it grows.

    Examples
    --------
    >>> import tempfile, numpy as np, daskscale
    >>> path = tempfile.mkdtemp() + "/s.zarr"
    >>> _ = daskscale.ingest(np.arange(20.0).reshape(10, 2), path, chunk_rows=4)
    >>> [(len(b), b.position) for b in StoreSource(path, batch_size=4)]
    [(4, 4), (4, 8), (2, 10)]
    """

    def __init__(self, store: str | os.PathLike, *, batch_size: int | None = None, follow: bool = False,
                 poll_interval: float = 0.2, idle_timeout: float | None = None, start: int = 0):
        self.store = Path(store)
        attrs = store_attrs(store)
        self.classes = attrs.get("classes")
        self.target = attrs.get("target")
        group = zarr.open_group(str(store), mode="r")
        self.chunk_rows = int(attrs.get("chunk_rows") or group["X"].chunks[0])
        self.n_features = int(group["X"].shape[1])
        self.batch_size = int(batch_size or self.chunk_rows)
        self.follow = follow
        self.poll_interval = poll_interval
        self.idle_timeout = idle_timeout
        self.position = int(start)
        self.skipped = []

    def _readable(self) -> tuple[int, bool]:
        """Rows that may be read now, and whether the writer has finished."""
        attrs = store_attrs(self.store)
        n = int(attrs.get("n_rows_committed", 0))
        closed = bool(attrs.get("stream_closed")) or not self.follow
        if not closed:  # a growing store: whole chunks only
            n = (n // self.chunk_rows) * self.chunk_rows
        return n, closed

    def _read(self, group: Any, start: int, stop: int, n: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows ``start:stop``; a chunk is decoded once even when batches are smaller than it.

        Reads go through the chunk guard: a damaged chunk raises ``CorruptChunkError`` naming it.
        """
        c = self.chunk_rows
        k = start // c
        if self.batch_size >= c or stop > (k + 1) * c:
            return self._rows(group, "X", start, stop), self._rows(group, "y", start, stop)
        end = min((k + 1) * c, n)
        if self._cache is None or self._cache[0] != (k, end):
            self._cache = ((k, end), self._rows(group, "X", k * c, end), self._rows(group, "y", k * c, end))
        _, X, y = self._cache
        a, b = start - k * c, stop - k * c
        return X[a:b], (None if y is None else y[a:b])

    def _rows(self, group: Any, name: str, start: int, stop: int) -> np.ndarray | None:
        if name not in group:
            return None
        return read_chunks(group[name], slice(start, stop), store=str(self.store), name=name)

    def __iter__(self) -> Iterator[Batch]:
        group = zarr.open_group(str(self.store), mode="r")
        self._cache: Any = None
        idle_since = time.monotonic()
        while True:
            n, closed = self._readable()
            if self.position < n:
                stop = min(n, self.position + self.batch_size)
                if stop - self.position < self.batch_size and not closed:
                    stop = n  # a short tail of whole chunks: take it rather than wait
                start, arrived = self.position, time.perf_counter()
                X, y = self._read(group, start, stop, n)
                self.position = stop
                idle_since = time.monotonic()
                yield Batch(X, y, stop, f"{self.store.name} rows {start}:{stop}", arrived)
                continue
            if closed or self.stopped:
                return
            if self.idle_timeout is not None and time.monotonic() - idle_since > self.idle_timeout:
                log.info("%s: no new rows for %.1f s, stopping", self.store, self.idle_timeout)
                return
            time.sleep(self.poll_interval)


class ReplaySource(StoreSource):
    """Replay a complete store in batches at ``rate`` rows per second (``None``: as fast as possible).

    Examples
    --------
    >>> import tempfile, numpy as np, daskscale
    >>> path = tempfile.mkdtemp() + "/r.zarr"
    >>> _ = daskscale.ingest(np.zeros((6, 2)), path, chunk_rows=6)
    >>> [len(b) for b in ReplaySource(path, batch_size=4, rate=1e6)]
    [4, 2]
    """

    def __init__(self, store: str | os.PathLike, *, batch_size: int | None = None, rate: float | None = None,
                 start: int = 0):
        super().__init__(store, batch_size=batch_size, follow=False, start=start)
        self.rate = rate

    def __iter__(self) -> Iterator[Batch]:
        t0, done = time.perf_counter(), 0
        for batch in super().__iter__():
            if self.rate:
                due = t0 + done / self.rate  # when this batch "arrives" on the replayed clock
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                batch.arrived = max(due, batch.arrived)
            done += len(batch)
            yield batch


_HIDDEN_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


class DirectorySource(_Source):
    """Batches from ``.parquet`` / ``.csv`` files arriving in a folder, one batch per file.

    Files are taken in name order (name them so that order is arrival order, e.g. with a
    zero-padded counter or a timestamp). ``target`` names the label column (default ``"y"``).
    The position is the sorted list of file names done.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> d = tempfile.mkdtemp()
    >>> pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}).to_csv(d + "/000.csv", index=False)
    >>> [(len(b), b.position) for b in DirectorySource(d, settle_seconds=0)]
    [(2, ['000.csv'])]
    """

    def __init__(self, path: str | os.PathLike, *, target: str | None = "y", follow: bool = False,
                 settle_seconds: float = 2.0, poll_interval: float = 0.5, idle_timeout: float | None = None,
                 classes: list[Any] | None = None, start: list[str] | None = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise SchemaError(f"{self.path} is not a directory: DirectorySource watches a folder of arriving files")
        self.target = target
        self.classes = classes
        self.follow = follow
        self.settle_seconds = settle_seconds
        self.poll_interval = poll_interval
        self.idle_timeout = idle_timeout
        self.position = sorted(start or [])
        self.skipped = []

    def seek(self, position: Any) -> None:
        self.position = sorted(position or [])

    def _complete(self) -> list[Path]:
        done, now, ready = set(self.position), time.time(), []
        for f in sorted(self.path.iterdir()):
            if (f.name in done or f.name.startswith(".") or f.name.endswith(_HIDDEN_SUFFIXES)
                    or f.suffix.lower() not in (".csv", ".parquet", ".pq") or not f.is_file()):
                continue
            st = f.stat()
            if now - st.st_mtime >= self.settle_seconds:
                ready.append(f)
        return ready

    def _read(self, f: Path) -> tuple[np.ndarray, np.ndarray | None]:
        import pandas as pd

        df = pd.read_parquet(f) if f.suffix.lower() in (".parquet", ".pq") else pd.read_csv(f)
        if len(df) == 0:
            raise ValueError("the file has no rows")
        y = None
        if self.target is not None:
            if self.target not in df.columns:
                raise ValueError(f"no target column {self.target!r} (columns: {list(df.columns)})")
            y = df.pop(self.target).to_numpy()
        non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c].dtype)]
        if non_numeric:
            raise ValueError(f"non-numeric feature columns {non_numeric}")
        return df.to_numpy(dtype=np.float32), y

    def __iter__(self) -> Iterator[Batch]:
        idle_since = time.monotonic()
        while True:
            ready = self._complete()
            for f in ready:
                arrived = time.perf_counter()
                done = sorted(self.position + [f.name])
                try:
                    X, y = self._read(f)
                except Exception as exc:  # noqa: BLE001 - a bad file is skipped, counted and logged
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                    self.skipped.append({"where": f.name, "reason": reason})
                    log.warning("skipping file %s: %s", f, reason)
                    self.position = done
                    continue
                self.position = done
                idle_since = time.monotonic()
                yield Batch(X, y, done, f.name, arrived)
            if ready:
                continue
            if not self.follow or self.stopped:
                return
            if self.idle_timeout is not None and time.monotonic() - idle_since > self.idle_timeout:
                return
            time.sleep(self.poll_interval)


class IteratorSource(_Source):
    """Batches from any iterable of ``(X, y)`` pairs or DataFrames (label column ``target``).

    Resuming re-creates the iterable with ``factory`` and skips the items already learned,
    so the iterable must give the same items in the same order each time.

    Examples
    --------
    >>> import numpy as np
    >>> items = [(np.zeros((2, 3)), np.array([0, 1]))] * 3
    >>> src = IteratorSource(lambda: iter(items))
    >>> src.seek(1)
    >>> [b.position for b in src]
    [2, 3]
    """

    def __init__(self, factory: Callable[[], Iterable[Any]] | Iterable[Any], *, target: str | None = "y",
                 classes: list[Any] | None = None, start: int = 0):
        self.factory = factory
        self.target = target
        self.classes = classes
        self.position = int(start)
        self.skipped = []

    def __iter__(self) -> Iterator[Batch]:
        items = iter(self.factory() if callable(self.factory) else self.factory)
        for i, item in enumerate(items):
            if i < self.position:
                continue
            X, y = self._split(item)
            self.position = i + 1
            yield Batch(X, y, i + 1, f"item {i}")

    def _split(self, item: Any) -> tuple[Any, Any]:
        if hasattr(item, "columns"):  # a DataFrame
            if self.target is not None and self.target in item.columns:
                return item.drop(columns=[self.target]).to_numpy(), item[self.target].to_numpy()
            return item.to_numpy(), None
        if isinstance(item, tuple) and len(item) == 2:
            return item
        return item, None


def as_source(source: Any, **kwargs: Any) -> _Source:
    """A source from a store path, a folder path, a CSV file path, a source, or an iterable.

    A ``.csv`` file is read by :class:`~daskscale.online.csv_tail.CsvTailSource` (``follow=True``
    to keep reading the rows appended to it).

    An iterable (or a factory of iterables) whose first item is an event (a dict or a
    Kafka-style record) is read by
    :class:`~daskscale.online.events.EventSource`; other iterables (of ``(X, y)`` batches) by
    :class:`IteratorSource`.
    """
    if isinstance(source, _Source):
        return source
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        from daskscale.storage.store import is_store

        if is_store(p):
            return StoreSource(p, **kwargs)
        if p.is_dir():
            return DirectorySource(p, **kwargs)
        if p.suffix.lower() == ".csv":
            from daskscale.online.csv_tail import CsvTailSource

            return CsvTailSource(p, **kwargs)
        raise SchemaError(f"{p} is neither a daskscale store, a folder of arriving files nor a .csv file")
    from daskscale.online.events import EventSource, is_event

    if isinstance(source, (list, tuple)):
        if source and is_event(source[0]):
            return EventSource(source, **kwargs)
    elif callable(source):
        # a factory gives the same items each time (it is how a source resumes): look at one
        if is_event(next(iter(source()), None)):
            return EventSource(source, **kwargs)
    elif not hasattr(source, "__len__"):
        # an iterator: look at its first item, and hand it on with the rest
        it = iter(source)
        first = next(it, _END)
        if first is _END:
            return IteratorSource(iter(()), **kwargs)
        source = itertools.chain([first], it)
        if is_event(first):
            return EventSource(source, **kwargs)
    return IteratorSource(source, **kwargs)


_END = object()

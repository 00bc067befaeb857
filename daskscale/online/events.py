"""Events to micro-batches: single rows or small irregular batches, grouped with bounded latency.

A stream of events (one row each, or a few rows) is learned fastest in micro-batches: the
model's cost per call is mostly fixed, so grouping rows divides it, while waiting for rows
delays learning. :class:`EventBatcher` closes a micro-batch at ``max_batch`` rows or
``max_latency`` seconds after its oldest event arrived, whichever comes first. Each
:class:`MicroBatch` carries the arrival time of its oldest event (``arrived``, the
``time.perf_counter`` clock), so the learner reports latency from arrival to learned, and
``lag_rows``, the rows received but not yet learned when the batch was handed over (the
batch itself included): every row of the batch is predicted by a model that is that many
rows behind the stream.

Events may be

- a dict ``{feature: value, ..., target: label}``; the feature names are fixed by the first
  event (or ``features=``), mapped to columns once; a missing feature is NaN, an unknown key
  is ignored; fields named in ``categorical=`` go to ``MicroBatch.categories`` as they are;
- a Kafka-style record: an object with a ``value`` attribute or method (kafka-python's
  ``ConsumerRecord``, confluent-kafka's ``Message``), or a dict with ``key``/``value``/
  ``timestamp``, whose value is a dict or the bytes/str of a JSON object;
- a flat tuple, list or 1-D NumPy row (the label at column ``target`` when it is an int),
  or an ``(x, y)`` pair whose ``x`` is a row or a dict;
- a small batch: an ``(X, y)`` pair with a 2-D ``X``, a 2-D array, or a
  :class:`~daskscale.online.sources.Batch` (from a growing CSV/Zarr source).

Two ways to drive it: pull (:meth:`EventBatcher.batches` or :class:`EventSource`, an
iterator; a pull iterator only sees the clock when an event arrives, so a micro-batch
waiting on a silent stream closes at the next event) and push (:class:`EventStream`: a
thread-safe ``put(event)`` and a background consumer that also closes batches on time
while the stream is silent).

Cost per event: the dict path is one ``operator.itemgetter`` call, one list extend (the
values go into one flat list) and a clock read; rows become one array per micro-batch
(``struct.pack`` of the flat values as C doubles, one C call per batch: faster than
``np.fromiter`` or ``np.array`` of row tuples, which works out their nesting first, and than
writing each row into a preallocated array); the labels are a slice of the flat list.
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import queue
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from daskscale.errors import SchemaError
from daskscale.online.sources import Batch, _Source

__all__ = ["MicroBatch", "EventBatcher", "EventSource", "EventStream", "DEFAULT_MAX_BATCH", "is_event"]

#: rows at most in a micro-batch of one-row events: the per-batch cost is shared by this many
#: rows, and the default model predicts each row after the rows before it in the batch (to
#: first order), so 32 rows cost no accuracy on the shipped streams (see the curve in
#: ``daskscale.online.learner``); batches larger than its ``step_rows`` (64) go 64 rows at a
#: time, each piece predicted after the ones before it are learned
DEFAULT_MAX_BATCH = 32

_KAFKA_KEYS = frozenset({"key", "value", "timestamp", "headers", "topic", "partition", "offset"})
_chain = itertools.chain.from_iterable


@dataclass
class MicroBatch(Batch):
    """A micro-batch: ``X`` (rows x features, float64), ``y``, and when and how late it came.

    ``position`` counts the events consumed up to and including this batch; ``arrived`` is
    the oldest event's arrival, ``newest`` the newest's; ``lag_rows`` as in the module notes;
    ``categories`` holds the ``categorical=`` fields (rows x fields, object) or None.
    """

    newest: float = 0.0
    lag_rows: int = 0
    categories: Any = None


def is_event(item: Any) -> bool:
    """True for a dict event or a Kafka-style record (what :class:`EventSource` reads, not a source's batch)."""
    if isinstance(item, dict):
        return True
    return not isinstance(item, (tuple, list, np.ndarray, Batch)) and hasattr(item, "value")


def _decode(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, str)):
        return json.loads(value)
    return value


class EventBatcher:
    """Group events into :class:`MicroBatch` es of up to ``max_batch`` rows or ``max_latency`` s.

    Parameters
    ----------
    features : sequence of str, optional
        Feature fields of dict events, in column order (default: the first event's keys, less
        ``target`` and ``categorical``). Rows and arrays are taken as they come.
    target : str or int or None
        The label: a dict key, or a column index of flat rows (``-1``: the last). ``None``: no
        labels in the events.
    categorical : sequence of str
        Dict fields kept apart, unconverted, in ``MicroBatch.categories``.
    max_batch : int
        Rows at most in a micro-batch.
    max_latency : float
        Seconds at most from a micro-batch's oldest event to its hand-over.

    Examples
    --------
    >>> b = EventBatcher(max_batch=2, max_latency=10)
    >>> out = list(b.batches([{"a": 1, "b": 2.5, "y": 0}, {"b": 4, "a": 3, "y": 1}, {"a": 5, "b": 6, "y": 1}]))
    >>> [(m.X.tolist(), m.y.tolist(), m.position) for m in out]
    [([[1.0, 2.5], [3.0, 4.0]], [0, 1], 2), ([[5.0, 6.0]], [1], 3)]
    >>> b.features
    ['a', 'b']
    """

    def __init__(self, features: Sequence[str] | None = None, *, target: str | int | None = "y",
                 categorical: Sequence[str] = (), max_batch: int = DEFAULT_MAX_BATCH, max_latency: float = 0.05):
        if int(max_batch) < 1 or not max_latency >= 0:
            raise SchemaError(f"max_batch must be >= 1 and max_latency >= 0, got {max_batch} and {max_latency}")
        self.features = None if features is None else list(features)
        self.target = target
        self.categorical = list(categorical)
        self.max_batch = int(max_batch)
        self.max_latency = float(max_latency)
        self.position = 0
        self._reset()
        self._getter: Callable[[Any], tuple] | None = None
        self._width = 0

    # ------------------------------------------------------------------ the pending micro-batch
    def _reset(self) -> None:
        self._values: list[Any] = []  # the pending dict rows' values, row after row (``_width`` a row)
        self._blocks: list[tuple[np.ndarray, Any]] = []
        self._n = 0
        self._oldest = self._newest = 0.0

    @property
    def pending(self) -> int:
        """Rows waiting in the micro-batch being filled."""
        return self._n

    def _setup_dict(self, ev: dict) -> None:
        if self.features is None:
            skip = {self.target, *self.categorical}
            self.features = [k for k in ev if k not in skip]
        if not self.features:
            raise SchemaError(f"the first event {ev!r} has no feature fields (target {self.target!r})")
        names = [*self.features, *self.categorical] + ([self.target] if self.target is not None else [])
        self._width = len(names)
        # one C call per event: the values in column order (a 1-tuple for a single name)
        getter = operator.itemgetter(*names)
        self._getter = getter if len(names) > 1 else (lambda e: (getter(e),))

    def _dict_row(self, ev: dict) -> tuple:
        """A dict event with missing fields (NaN features, None label): the fast path failed."""
        return (tuple(ev.get(k, math.nan) for k in self.features) + tuple(ev.get(k) for k in self.categorical)
                + ((ev.get(self.target),) if self.target is not None else ()))

    def _normalise(self, ev: Any) -> Any:
        """A Kafka-style record's payload, an ``(dict, label)`` pair as one dict; else ``ev``."""
        if type(ev) is dict:
            return _decode(ev["value"]) if "value" in ev and ev.keys() <= _KAFKA_KEYS else ev
        if isinstance(ev, (tuple, list)):
            if len(ev) == 2 and type(ev[0]) is dict:
                return {**ev[0], self.target: ev[1]} if self.target is not None else ev[0]
            return ev
        if isinstance(ev, (np.ndarray, Batch)):
            return ev
        v = getattr(ev, "value", None)
        return ev if v is None else _decode(v() if callable(v) else v)

    def add(self, ev: Any, now: float | None = None) -> bool:
        """Add one event (any kind in the module notes); True when the micro-batch is full."""
        now = time.perf_counter() if now is None else now
        if self._n == 0:
            self._oldest = now
        self._newest = now
        ev = self._normalise(ev)
        if type(ev) is dict:
            if self._getter is None:
                self._setup_dict(ev)
            try:
                self._values.extend(self._getter(ev))
            except KeyError:
                self._values.extend(self._dict_row(ev))
            self._n += 1
        elif isinstance(ev, Batch):
            self._add_block(np.asarray(ev.X), ev.y)
        elif isinstance(ev, np.ndarray) and ev.ndim == 2:
            self._add_block(ev, None)
        elif isinstance(ev, (tuple, list)) and len(ev) == 2 and np.ndim(ev[0]) >= 1:
            x, y = np.asarray(ev[0]), ev[1]
            if x.ndim == 2:
                self._add_block(x, y)
            else:
                self._add_block(x.reshape(1, -1), None if y is None else [y])
        else:
            self._add_row(ev)
        return self._n >= self.max_batch

    def _add_row(self, ev: Any) -> None:
        row = np.asarray(ev)
        if row.ndim != 1:
            raise SchemaError(f"event {self.position + self._n} is a {type(ev).__name__} of shape {row.shape}: "
                              "send a dict, a row, an (x, y) pair, a 2-D batch or a Kafka-style record")
        if isinstance(self.target, int) and not isinstance(self.target, bool):
            self._add_block(np.delete(row, self.target).reshape(1, -1), [row[self.target]])
        else:
            self._add_block(row.reshape(1, -1), None)

    def _add_block(self, X: np.ndarray, y: Any) -> None:
        if X.ndim != 2:
            raise SchemaError(f"event {self.position + self._n}: a batch X must be 2-D, got shape {X.shape}")
        self._rows_to_block()  # keep arrival order: pending dict rows go first
        self._blocks.append((X, None if y is None else np.asarray(y), None))
        self._n += len(X)

    def _rows_to_block(self) -> None:
        """Turn the pending dict rows into one ``(X, y, categories)`` block."""
        values, self._values = self._values, []
        if not values:
            return
        p, k, w = len(self.features), len(self.categorical), self._width
        y = cats = None
        if self.target is not None:
            labels = values[w - 1::w]  # the last value of each row
            y = None if labels.count(None) == len(labels) else np.asarray(labels)
        if k == 0 and (y is None or y.dtype.kind in "biuf"):
            X = self._as_float(values, w, p)  # labels are numbers too: one conversion, then a column slice
        else:
            rows = list(zip(*[iter(values)] * w))
            X = self._as_float(list(_chain(map(operator.itemgetter(slice(0, p)), rows))), p, p)
            if k:
                cats = np.array(list(map(operator.itemgetter(slice(p, p + k)), rows)), dtype=object)
        self._blocks.append((X, y, cats))

    def _as_float(self, values: list[Any], width: int, keep: int) -> np.ndarray:
        """Rows of ``width`` values, one after the other: their first ``keep`` columns, float64."""
        try:
            # the values packed as C doubles in one C call (half the time of ``np.fromiter``, a
            # third of ``np.array`` of row tuples); struct takes what ``float()`` takes, and what
            # it refuses (None, text, ...) goes to ``np.array``, which converts or names the problem
            packed = np.frombuffer(struct.pack(f"{len(values)}d", *values)).reshape(-1, width)
        except Exception:  # noqa: BLE001 - see above
            packed = self._as_float_array(values).reshape(-1, width)
        return packed[:, :keep].copy()  # a new, writable, C-ordered array

    def _as_float_array(self, values: list[Any]) -> np.ndarray:
        try:
            return np.array(values, dtype=np.float64)
        except (ValueError, TypeError) as exc:
            raise SchemaError(f"events {self.position}..{self.position + self._n - 1}: a feature of "
                              f"{self.features} is not a number ({exc}); list text fields in categorical=") from None

    def flush(self, lag_rows: int | None = None) -> MicroBatch | None:
        """Hand over the pending rows as a :class:`MicroBatch` (None if there are none)."""
        if self._n == 0:
            return None
        self._rows_to_block()
        n, blocks = self._n, self._blocks
        if len(blocks) == 1:
            X, y, cats = blocks[0]
        else:
            X = np.concatenate([np.asarray(b[0], dtype=np.float64) for b in blocks])
            y = None if any(b[1] is None for b in blocks) else np.concatenate([b[1] for b in blocks])
            cats = None if any(b[2] is None for b in blocks) else np.concatenate([b[2] for b in blocks])
        self.position += n
        mb = MicroBatch(X, y, self.position, f"events {self.position - n}:{self.position}", self._oldest,
                        newest=self._newest, lag_rows=n if lag_rows is None else lag_rows, categories=cats)
        self._reset()
        return mb

    # ------------------------------------------------------------------ pull
    def batches(self, events: Iterable[Any]) -> Iterator[MicroBatch]:
        """Micro-batches of ``events`` (an iterable), in order; the last one may be short.

        A block bigger than ``max_batch`` (a source's batch) is handed over whole, not split.
        """
        clock, limit, latency = time.perf_counter, self.max_batch, self.max_latency
        # the pending rows' count and oldest arrival live in locals on the fast path (a plain dict
        # row, what most event streams are): written back before any other method reads them;
        # the micro-batch closes once the clock passes ``deadline`` (its oldest event + latency)
        values, n, oldest, getter, now = self._values, self._n, self._oldest, self._getter, self._newest
        extend, deadline = values.extend, oldest + latency
        for ev in events:
            now = clock()
            if type(ev) is dict and getter is not None and not ("value" in ev and ev.keys() <= _KAFKA_KEYS):
                if not n:
                    oldest, deadline = now, now + latency
                try:
                    extend(getter(ev))
                except KeyError:
                    extend(self._dict_row(ev))
                n += 1
                if n < limit and now < deadline:
                    continue
                self._n, self._oldest, self._newest = n, oldest, now
            else:
                self._n, self._oldest = n, oldest
                full = self.add(ev, now)
                n, oldest, getter = self._n, self._oldest, self._getter
                if not full and now - oldest < latency:
                    values, deadline = self._values, oldest + latency
                    extend = values.extend
                    continue
            yield self.flush()
            values, n = self._values, 0
            extend = values.extend
        self._n, self._oldest, self._newest = n, oldest, now
        last = self.flush()
        if last is not None:
            yield last


class EventSource(_Source):
    """A source of micro-batches over an iterable of events, for ``OnlineLearner.run``.

    Its position is the number of events learned; resuming re-creates the iterable with
    ``factory`` and skips that many, so the iterable must give the same events each time.

    Examples
    --------
    >>> events = [{"x": float(i), "y": i % 2} for i in range(5)]
    >>> src = EventSource(lambda: iter(events), max_batch=2)
    >>> src.seek(1)
    >>> [(len(b), b.position) for b in src]
    [(2, 3), (2, 5)]
    """

    def __init__(self, factory: Callable[[], Iterable[Any]] | Iterable[Any], *, features: Sequence[str] | None = None,
                 target: str | int | None = "y", categorical: Sequence[str] = (), max_batch: int = DEFAULT_MAX_BATCH,
                 max_latency: float = 0.05, classes: list[Any] | None = None, start: int = 0):
        self.factory = factory
        self.batcher = EventBatcher(features, target=target, categorical=categorical, max_batch=max_batch,
                                    max_latency=max_latency)
        self.target = target if isinstance(target, str) else None
        self.classes = classes
        self.position = int(start)
        self.skipped = []

    def __iter__(self) -> Iterator[MicroBatch]:
        events = iter(self.factory() if callable(self.factory) else self.factory)
        for _ in range(self.position):  # events learned before a restart
            next(events, None)
        self.batcher._reset()
        self.batcher.position = self.position
        for mb in self.batcher.batches(events):
            self.position = mb.position
            yield mb
            if self.stopped:
                return


_STOP = object()


class EventStream:
    """Push events from any thread; a background consumer hands micro-batches to ``handler``.

    ``put(event)`` is thread-safe and never waits for learning (a queue sits between).
    The consumer closes a micro-batch at ``max_batch`` rows, or ``max_latency`` seconds after
    its oldest event even while no event comes. ``close()`` hands over the last rows, stops
    the consumer and re-raises an error the handler raised. ``lag_rows`` of a micro-batch
    also counts the events still queued behind it.

    Examples
    --------
    >>> got = []
    >>> with EventStream(got.append, max_batch=3, max_latency=10) as s:
    ...     for i in range(7):
    ...         s.put({"x": float(i), "y": i % 2})
    >>> [len(m) for m in got], got[-1].position
    ([3, 3, 1], 7)
    """

    def __init__(self, handler: Callable[[MicroBatch], Any], *, features: Sequence[str] | None = None,
                 target: str | int | None = "y", categorical: Sequence[str] = (), max_batch: int = DEFAULT_MAX_BATCH,
                 max_latency: float = 0.05):
        self.handler = handler
        self.batcher = EventBatcher(features, target=target, categorical=categorical, max_batch=max_batch,
                                    max_latency=max_latency)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._consume, name="daskscale-events", daemon=True)
        self._thread.start()

    def put(self, event: Any) -> None:
        """Queue one event (stamped with its arrival time now)."""
        if self._error is not None:
            raise self._error
        self._queue.put((time.perf_counter(), event))

    def _hand_over(self) -> None:
        mb = self.batcher.flush(lag_rows=self.batcher.pending + self._queue.qsize())
        if mb is not None:
            self.handler(mb)

    def _consume(self) -> None:
        b, q = self.batcher, self._queue
        try:
            while True:
                if b.pending:
                    wait = b._oldest + b.max_latency - time.perf_counter()
                    try:
                        item = q.get(timeout=max(wait, 0.0)) if wait > 0 else q.get_nowait()
                    except queue.Empty:
                        self._hand_over()
                        continue
                else:
                    item = q.get()
                if item is _STOP:
                    self._hand_over()
                    return
                arrived, ev = item
                if b.add(ev, arrived):
                    self._hand_over()
        except BaseException as exc:  # noqa: BLE001 - given back to the producer by put/close
            self._error = exc

    def close(self, timeout: float | None = None) -> None:
        """Learn the events queued so far, stop the consumer, re-raise its error if any."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._error is not None:
            raise self._error

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

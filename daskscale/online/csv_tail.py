"""One growing CSV file, read as ``tail -f`` reads it: rows are learned as they are appended.

:class:`CsvTailSource` reads the header once (the column names; ``target`` names the label
column, as for :class:`~daskscale.online.sources.DirectorySource`), then polls the file's
size and parses only whole lines: a last line without its newline is still being written
and is left for a later poll (with ``follow=False`` the file is taken as complete, and a
last line without a newline is a row). Rows go out in
:class:`~daskscale.online.events.MicroBatch` es of up to ``max_batch`` rows, handed over
when full or ``max_latency`` seconds after their oldest row was read (``max_latency=None``:
only full batches, and the rest at the end, so the batches do not depend on timing).

Position (plain JSON, saved with the model by ``OnlineLearner.save``): ``offset``, the byte
after the last line handed over; ``line``, the lines read up to there (the header is
line 1); ``rows``, the rows handed over; ``check``, the CRC32 of the (up to) 64 bytes before
``offset``. ``seek(position)`` continues at the next unread row: never a row twice, never
one skipped. The check ties a position to the file's content, so a checkpoint resumed on a
file that was rewritten or replaced since is refused (:class:`SourceChangedError`), while
one resumed on a copy of the same file works.

A file that shrinks (truncated) or whose name now points to another file (rotated,
replaced: another inode, or gone) raises :class:`SourceChangedError` naming it, once the
rows of the old file are read; with ``on_rotate="restart"`` the source reads the new file
from its start instead (its header must be the same), and ``rows`` keeps counting.

A malformed row (a field count other than the header's, a numeric field that is not a
finite number, a label unlike the first one: an integer, a number or text) raises a
:class:`~daskscale.errors.SchemaError` naming the file, the line and the column; with
``on_bad_rows="skip"`` it is skipped with a :class:`~daskscale.errors.DaskscaleWarning`
and listed in ``skipped``. Blank lines are ignored. Fields are split at ``delimiter``,
with CSV quoting; a newline inside a quoted field is not supported (as in
``daskscale.ingest``). Columns named in ``categorical=`` are passed through as text, in
``MicroBatch.categories`` (rows x fields), for the learner's one-hot steps
(``preprocess=Features(onehot=[OnlineOneHot(), ...])``, one per field, in that order).
"""

from __future__ import annotations

import csv
import logging
import math
import operator
import os
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from daskscale.errors import DaskscaleWarning, SchemaError, SourceChangedError
from daskscale.online.events import DEFAULT_MAX_BATCH, MicroBatch
from daskscale.online.sources import _Source

__all__ = ["CsvTailSource", "SourceChangedError"]

log = logging.getLogger("daskscale.online")

#: bytes before a position whose CRC32 ties the position to the file's content
_CHECK_BYTES = 64
#: bytes read per poll at most (more only for a single longer line): bounds the rows parsed ahead, whose
#: latency counts from their reading
_READ_BYTES = 1 << 16


@dataclass
class _Rows:
    """Good rows parsed from one read, with where each one ends in the file."""

    X: np.ndarray
    y: np.ndarray | None
    cats: np.ndarray | None
    ends: np.ndarray  # byte offset after the row (and after the blank or bad lines behind it)
    lines: np.ndarray  # lines read up to there
    buf: bytes  # the bytes read, from ``base``: the check of a position is computed from them
    base: int
    arrived: float

    def __len__(self) -> int:
        return len(self.X)

    def split(self, k: int) -> tuple[_Rows, _Rows]:
        def part(s: slice) -> _Rows:
            return _Rows(self.X[s], None if self.y is None else self.y[s], None if self.cats is None else self.cats[s],
                         self.ends[s], self.lines[s], self.buf, self.base, self.arrived)

        return part(slice(None, k)), part(slice(k, None))


def _check(data: bytes) -> int:
    return zlib.crc32(data[-_CHECK_BYTES:])


class CsvTailSource(_Source):
    """Micro-batches of the rows appended to one CSV file, for ``OnlineLearner.run``.

    Parameters
    ----------
    path : str or path
        The CSV file (it must exist; with ``follow=True`` it may still be empty).
    target : str or None
        The label column (``None``: the rows have no labels).
    categorical : sequence of str
        Text columns passed through in ``MicroBatch.categories``; every other column but
        ``target`` is a numeric feature.
    follow : bool
        Keep reading rows as they are appended, until ``idle_timeout`` seconds pass without
        a new line (never, if ``None``) or the learner stops; ``False``: read the file as it
        is now, and stop.
    max_batch, max_latency : int, float or None
        A micro-batch is handed over at ``max_batch`` rows, or ``max_latency`` seconds after
        its oldest row was read (``None``: full batches only, and the rest at the end).
    poll_interval : float
        Seconds between looks at the file's size while nothing new is there.
    on_bad_rows : {"error", "skip"}
        A malformed row raises a :class:`~daskscale.errors.SchemaError`, or is skipped with
        a warning.
    on_rotate : {"error", "restart"}
        A truncated or replaced file raises :class:`SourceChangedError`, or is read again
        from its start.
    classes : list, optional
        Every label the stream may have (the learner's ``classes_``).
    delimiter, encoding : str
    start : dict, optional
        A position to start from (as :meth:`seek`).

    Examples
    --------
    >>> import tempfile
    >>> path = tempfile.mkdtemp() + "/events.csv"
    >>> with open(path, "w") as f:
    ...     _ = f.write("a,colour,y\\n1.5,red,0\\n2,blue,1\\n3,red,1\\n4.5,gre")  # the last line is not complete
    >>> src = CsvTailSource(path, categorical=["colour"], max_batch=2, follow=True, idle_timeout=0)
    >>> [(b.X.tolist(), b.y.tolist(), b.categories.tolist()) for b in src]
    [([[1.5], [2.0]], [0, 1], [['red'], ['blue']]), ([[3.0]], [1], [['red']])]
    >>> src.position["rows"], src.position["line"]
    (3, 4)
    """

    def __init__(self, path: str | os.PathLike, *, target: str | None = "y", categorical: Sequence[str] = (),
                 follow: bool = False, max_batch: int = DEFAULT_MAX_BATCH, max_latency: float | None = 0.05,
                 poll_interval: float = 0.05, idle_timeout: float | None = None, on_bad_rows: str = "error",
                 on_rotate: str = "error", classes: list[Any] | None = None, delimiter: str = ",",
                 encoding: str = "utf-8", start: dict[str, int] | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise SchemaError(f"{self.path} is not a file: CsvTailSource follows one CSV file as rows are appended")
        if on_bad_rows not in ("error", "skip"):
            raise SchemaError(f"on_bad_rows must be 'error' or 'skip', not {on_bad_rows!r}")
        if on_rotate not in ("error", "restart"):
            raise SchemaError(f"on_rotate must be 'error' or 'restart', not {on_rotate!r}")
        if int(max_batch) < 1 or not (max_latency is None or max_latency >= 0):
            raise SchemaError(f"max_batch must be >= 1 and max_latency >= 0 or None, got {max_batch}, {max_latency}")
        self.target = target
        self.categorical = list(categorical)
        self.follow = follow
        self.max_batch = int(max_batch)
        self.max_latency = max_latency
        self.poll_interval = poll_interval
        self.idle_timeout = idle_timeout
        self.on_bad_rows = on_bad_rows
        self.on_rotate = on_rotate
        self.classes = classes
        self.delimiter = delimiter
        self.encoding = encoding
        self.columns: list[str] | None = None
        self.features: list[str] | None = None
        self._label_kind: type | None = None
        self.skipped = []
        self.seek(start)
        with open(self.path, "rb") as fh:
            self._read_header(fh.fileno())  # early errors (no such target...) when the header is there

    def seek(self, position: dict[str, int] | None) -> None:
        """Continue at ``position`` (a batch's, or ``None``: the file's start)."""
        p = dict(position or {})
        self.position = {"offset": int(p.get("offset", 0)), "line": int(p.get("line", 0)),
                         "rows": int(p.get("rows", 0)), "check": int(p.get("check", 0))}

    # ------------------------------------------------------------------ header
    def _read_header(self, fd: int) -> int | None:
        """Read the header line and set the columns; its end offset, or None if not whole yet."""
        head = os.pread(fd, _READ_BYTES, 0)
        end = head.find(b"\n")
        if end < 0:
            if self.follow or not head:
                if not self.follow:
                    raise SchemaError(f"{self.path} is empty: a CSV file needs a header line of column names")
                return None
            end = len(head) - 1  # a complete file of one line: the header alone
        try:
            text = head[:end + 1].decode(self.encoding).lstrip("\ufeff").rstrip("\r\n")
            columns = next(csv.reader((text,), delimiter=self.delimiter, strict=True))
        except (UnicodeDecodeError, csv.Error) as exc:
            raise SchemaError(f"{self.path}, line 1: the header is not a line of column names ({exc})") from None
        if self.columns is not None:
            if columns != self.columns:
                raise SourceChangedError(f"{self.path} now has the columns {columns}, not {self.columns} as when it "
                                         "was first read: a restarted file must have the same header")
            return end + 1
        self._set_columns(columns)
        return end + 1

    def _set_columns(self, columns: list[str]) -> None:
        where = f"{self.path}, line 1 (the header)"
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise SchemaError(f"{where}: the columns {dupes} appear more than once; name each column once")
        missing = [c for c in [self.target, *self.categorical] if c is not None and c not in columns]
        if missing:
            raise SchemaError(f"{where}: no column {missing[0]!r} (columns: {columns}); pass target= and "
                              "categorical= with names from the header (target=None for rows without labels)")
        self.columns = columns
        self.features = [c for c in columns if c != self.target and c not in self.categorical]
        if not self.features:
            raise SchemaError(f"{where}: no numeric feature column besides target {self.target!r} and "
                              f"categorical {self.categorical}")
        self._num = [columns.index(c) for c in self.features]
        self._cat = [columns.index(c) for c in self.categorical]
        self._y = None if self.target is None else columns.index(self.target)

    # ------------------------------------------------------------------ parsing
    def _parse(self, data: bytes, base: int, line0: int) -> _Rows | None:
        """The good rows of ``data`` (whole lines from byte ``base``, after line ``line0``); None if none.

        The rows' ``buf``, ``base`` and ``arrived`` are the caller's to set.
        """
        raw = data.split(b"\n")
        if raw[-1] == b"":
            raw.pop()
        ends = np.minimum(base + np.cumsum([len(r) + 1 for r in raw]), base + len(data))
        keep, rows, bad = self._split_fast(data, len(raw)) or self._split(raw, b'"' in data)
        X, y, good = self._convert(rows, bad, keep)
        keep = [keep[j] for j in good] if good is not None else keep
        bad.sort()
        for i, column, reason in bad:
            self._bad_row(line0 + i + 1, column, reason)
        if not keep:
            return None
        # a row's end takes in the blank and bad lines behind it, up to the next good row
        last = np.array(keep[1:] + [len(raw)]) - 1
        cats = None
        if self._cat:
            pick = operator.itemgetter(*self._cat)
            cats = np.array([pick(rows_kept) for rows_kept in self._kept(rows, good)], dtype=object)
            cats = cats.reshape(len(keep), len(self._cat))
        return _Rows(X, y, cats, ends[last], line0 + last + 1, b"", 0, 0.0)

    def _split_fast(self, data: bytes, n: int) -> tuple[list[int], list[list[str]], list] | None:
        """Rows of plain ASCII text, no quotes, every line with the header's field count; else None."""
        if not n or b'"' in data or b"\r" in data or not data.isascii():
            return None
        lines = data.decode("ascii").split("\n", n - 1)
        lines[-1] = lines[-1].rstrip("\n")
        rows = [line.split(self.delimiter) for line in lines]
        if set(map(len, rows)) != {len(self.columns)}:  # a blank or ragged line: look at each
            return None
        return list(range(n)), rows, []

    def _split(self, raw: list[bytes], quoted: bool) -> tuple[list[int], list[list[str]], list]:
        """``(indices of the rows, their fields, bad lines)``: each line on its own."""
        delim, ncol = self.delimiter, len(self.columns)
        keep: list[int] = []
        rows: list[list[str]] = []
        bad: list[tuple[int, str | None, str]] = []
        for i, r in enumerate(raw):
            try:
                s = r.decode(self.encoding).rstrip("\r")
                if not s.strip():  # a blank line is no row
                    continue
                fields = next(csv.reader((s,), delimiter=delim, strict=True)) if quoted else s.split(delim)
            except (UnicodeDecodeError, csv.Error) as exc:
                bad.append((i, None, f"cannot be read as a CSV row ({exc})"))
                continue
            if len(fields) != ncol:
                bad.append((i, None, f"expected {ncol} fields (as in the header), found {len(fields)}: {s[:80]!r}"))
                continue
            keep.append(i)
            rows.append(fields)
        return keep, rows, bad

    @staticmethod
    def _kept(rows: list[list[str]], good: list[int] | None) -> list[list[str]]:
        return rows if good is None else [rows[j] for j in good]

    def _convert(self, rows: list[list[str]], bad: list[tuple[int, str | None, str]],
                 keep: list[int]) -> tuple[np.ndarray, np.ndarray | None, list[int] | None]:
        """``(X, y, good)``: the rows' numbers and labels; ``good`` lists the rows kept (None: all)."""
        if not rows:
            return np.empty((0, len(self._num))), None, None
        if self._label_kind is None and self._y is not None:
            self._label_kind = _label_kind(rows[0][self._y])
        try:
            X, y = self._numbers(rows)
            if np.isfinite(X).all():
                return X, y, None
        except (ValueError, TypeError):
            pass
        # a bad value somewhere: look at each row, to name the first bad field of each bad one
        good = []
        for j, fields in enumerate(rows):
            problem = self._row_problem(fields)
            if problem is None:
                good.append(j)
            else:
                bad.append((keep[j], *problem))
        X, y = self._numbers([rows[j] for j in good]) if good else (np.empty((0, len(self._num))), None)
        return X, y, good

    def _numbers(self, rows: list[list[str]]) -> tuple[np.ndarray, np.ndarray | None]:
        pick = operator.itemgetter(*self._num)
        X = np.array([pick(r) for r in rows], dtype=np.float64).reshape(len(rows), len(self._num))
        if self._y is None:
            return X, None
        labels = [r[self._y] for r in rows]
        kind = self._label_kind
        return X, (np.array(labels, dtype=np.int64) if kind is int else
                   np.array(labels, dtype=np.float64) if kind is float else np.array(labels))

    def _row_problem(self, fields: list[str]) -> tuple[str, str] | None:
        """``(column, reason)`` of the first bad field of a row of the right length, or None."""
        for j in self._num:
            try:
                v = float(fields[j])
            except ValueError:
                return self.columns[j], (f"{fields[j]!r} is not a number (a text column? list it in categorical=)"
                                         if fields[j].strip() else "the value is missing")
            if not math.isfinite(v):
                return self.columns[j], f"{fields[j]!r} is not a finite number"
        if self._y is not None and self._label_kind is not str:
            try:
                self._label_kind(fields[self._y])
            except ValueError:
                kind = "an integer" if self._label_kind is int else "a number"
                return self.target, f"the label {fields[self._y]!r} is not {kind}, as the first label read was"
        return None

    def _bad_row(self, line: int, column: str | None, reason: str) -> None:
        at = f"{self.path}, line {line}" + ("" if column is None else f", column {column!r}")
        if self.on_bad_rows == "error":
            raise SchemaError(f"{at}: {reason}; fix the row, or pass on_bad_rows='skip' (CLI: --on-bad-rows skip) "
                              "to skip such rows with a warning")
        self.skipped.append({"where": f"{self.path.name} line {line}", "reason": reason})
        warnings.warn(f"{at}: {reason}; row skipped", DaskscaleWarning, stacklevel=3)

    # ------------------------------------------------------------------ the file
    def _changed(self, what: str) -> None:
        p = self.position
        if self.on_rotate == "error":
            raise SourceChangedError(
                f"{self.path} {what}; the rows read so far (up to line {p['line']}, byte {p['offset']}) are no longer "
                "in it. A followed CSV file must only be appended to: pass on_rotate='restart' (CLI: --on-rotate "
                "restart) to read a rotated or rewritten file from its start")
        log.warning("%s %s: reading it again from its start", self.path, what)

    def _open(self) -> bool:
        """Open the file, read its header and go to the position; False if it has no whole header yet."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        header_end = self._read_header(fd)
        if header_end is None:
            os.close(fd)
            return False
        self._fd, self._ino = fd, os.fstat(fd).st_ino
        p = self.position
        if p["offset"] > 0:  # a resumed position must be one of this file's, with the same bytes before it
            size = os.fstat(fd).st_size
            before = os.pread(fd, min(_CHECK_BYTES, p["offset"]), max(0, p["offset"] - _CHECK_BYTES))
            if size < p["offset"]:
                self._changed(f"is {size} bytes long, shorter than the position to resume from")
            elif _check(before) != p["check"]:
                self._changed("has other bytes before the position to resume from (rewritten or replaced)")
            else:
                self._at = (p["offset"], p["line"], p["check"])
                return True
            self.position = {**p, "offset": 0, "line": 0, "check": 0}
        self._at = (header_end, 1, zlib.crc32(os.pread(fd, min(_CHECK_BYTES, header_end),
                                                       max(0, header_end - _CHECK_BYTES))))
        return True

    def _close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

    def _poll(self, final: bool) -> str:
        """Parse what was appended: "rows", "lines" (bad or blank only), "none", or "moved" (rotated)."""
        offset, line, check = self._at
        size = os.fstat(self._fd).st_size
        if size < offset:
            self._changed(f"was truncated: it is {size} bytes long, shorter than the {offset} bytes read")
            return "moved"
        if size == offset:
            try:
                moved = os.stat(self.path).st_ino != self._ino
            except FileNotFoundError:
                moved = True
            if moved:
                self._changed("was replaced or moved away (rotated)")
                return "moved"
            return "none"
        k = min(_CHECK_BYTES, offset)
        data = os.pread(self._fd, min(size - offset, _READ_BYTES) + k, offset - k)
        if zlib.crc32(data[:k]) != check:
            self._changed("was rewritten: the bytes already read have changed")
            return "moved"
        end = data.rfind(b"\n") + 1
        if end <= k and size - offset > _READ_BYTES:  # one line longer than a read: read up to its end
            data = os.pread(self._fd, size - offset + k, offset - k)
            end = data.rfind(b"\n") + 1
        if end <= k:
            if not final:
                return "none"  # a line still being written
            end = len(data)  # a complete file's last line, without its newline
        whole = data[k:end]
        rows = self._parse(whole, offset, line)
        self._at = (offset + len(whole), line + whole.count(b"\n") + (not whole.endswith(b"\n")),
                    _check(data[:end]))
        if rows is None:
            return "lines"
        # the bytes before each row's end, for its position's check
        rows.buf, rows.base, rows.arrived = data[:end], offset - k, time.perf_counter()
        self._pending.append(rows)
        self._n += len(rows)
        return "rows"

    # ------------------------------------------------------------------ batches
    def _hand_over(self, n: int) -> MicroBatch:
        """The first ``n`` pending rows as a micro-batch; the position moves past them."""
        parts, need, lag = [], n, self._n
        while need:
            head = self._pending[0]
            if len(head) <= need:
                parts.append(self._pending.pop(0))
            else:
                first, self._pending[0] = head.split(need)
                parts.append(first)
            need -= len(parts[-1])
        self._n -= n
        last = parts[-1]
        end = int(last.ends[-1])
        one = len(parts) == 1
        X = last.X if one else np.concatenate([p.X for p in parts])
        y = last.y if one or last.y is None else np.concatenate([p.y for p in parts])
        cats = last.cats if one or last.cats is None else np.concatenate([p.cats for p in parts])
        first = self.position["line"] + 1
        self.position = {"offset": end, "line": int(last.lines[-1]), "rows": self.position["rows"] + n,
                         "check": _check(last.buf[:end - last.base])}
        return MicroBatch(X, y, dict(self.position), f"{self.path.name} lines {first}-{self.position['line']}",
                          parts[0].arrived, newest=last.arrived, lag_rows=lag, categories=cats)

    def _drain(self) -> Iterator[MicroBatch]:
        while self._n:
            yield self._hand_over(min(self._n, self.max_batch))

    def __iter__(self) -> Iterator[MicroBatch]:
        self._pending: list[_Rows] = []
        self._n, self._fd = 0, None
        idle_since = time.monotonic()
        try:
            while not self._open():
                if not self.follow or self.stopped or self._idle(idle_since):
                    return
                time.sleep(self.poll_interval)
            while True:
                got = self._poll(final=not self.follow)
                if got == "moved":  # on_rotate="restart": the old file's rows first, then the new file
                    yield from self._drain()
                    self._close()
                    self.position = {**self.position, "offset": 0, "line": 0, "check": 0}
                    while not self._open():
                        if self.stopped or self._idle(idle_since):
                            return
                        time.sleep(self.poll_interval)
                    continue
                if got != "none":
                    idle_since = time.monotonic()
                while self._n >= self.max_batch:
                    yield self._hand_over(self.max_batch)
                    if self.stopped:
                        return
                late = self._late()
                if self.follow and late <= 0:  # the oldest pending row has waited max_latency
                    yield self._hand_over(self._n)
                if got != "none":
                    if not self._n:  # only bad or blank lines: nothing pending before the read position
                        offset, line, check = self._at
                        self.position = {**self.position, "offset": offset, "line": line, "check": check}
                    continue
                if not self.follow or self._idle(idle_since):
                    yield from self._drain()
                    self._left_unread()
                    return
                time.sleep(max(0.0, min(self._late(), self.poll_interval)))
        finally:
            self._close()

    def _late(self) -> float:
        """Seconds until the oldest pending row has waited ``max_latency`` (inf: no such row or bound)."""
        if not self._n or self.max_latency is None:
            return math.inf
        return self._pending[0].arrived + self.max_latency - time.perf_counter()

    def _idle(self, since: float) -> bool:
        if self.stopped:
            return True
        if self.idle_timeout is not None and time.monotonic() - since >= self.idle_timeout:
            log.info("%s: no new line for %.1f s, stopping", self.path, self.idle_timeout)
            return True
        return False

    def _left_unread(self) -> None:
        size = os.fstat(self._fd).st_size
        if self.follow and size > self._at[0]:
            log.info("%s: %d bytes of a line without its newline left unread at byte %d (line %d): read when the "
                     "line is complete", self.path, size - self._at[0], self._at[0], self._at[1] + 1)


def _label_kind(value: str) -> type:
    """``int``, ``float`` or ``str``: what the labels are, from the first one read."""
    for kind in (int, float):
        try:
            kind(value)
            return kind
        except ValueError:
            pass
    return str

"""Synthetic streams: batches of a classification task, with optional concept drift.

The rows are those of :func:`daskscale.datasets.make_classification` (same concept, same
``drift=`` specification over the global row index: ``"abrupt"``, ``"gradual"`` or a dict
``{"kind", "at", "width"}``), produced batch by batch, so a stream never exists whole.

- :func:`stream_batches` yields ``(X, y)`` numpy batches (for an ``IteratorSource``);
- :func:`stream_to_store` writes them into a store over time with
  :func:`daskscale.storage.append.append_rows` (a writer for a growing-store source).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterator

import dask.array as da
import numpy as np

from daskscale.datasets.synthetic import Concept, _classification_block
from daskscale.errors import SchemaError
from daskscale.storage import layout
from daskscale.storage.append import append_rows, close_stream
from daskscale.storage.store import write_store

__all__ = ["stream_batches", "stream_to_store"]


def stream_batches(n_rows: int, n_features: int, *, batch_rows: int = 1000, n_classes: int = 2, seed: int = 0,
                   drift: Any = None, label_noise: float = 0.6, start: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(X float32, y int64)`` batches of ``batch_rows`` rows, from row ``start``.

    Examples
    --------
    >>> [X.shape for X, y in stream_batches(2500, 4, batch_rows=1000)]
    [(1000, 4), (1000, 4), (500, 4)]
    """
    if n_rows <= 0 or n_features <= 0 or batch_rows <= 0:
        raise SchemaError(f"n_rows, n_features and batch_rows must be positive, got {n_rows}, {n_features}, {batch_rows}")
    concept = Concept.draw(n_features, 1 if n_classes == 2 else n_classes, seed, None)
    for a in range(start, n_rows, batch_rows):
        b = min(n_rows, a + batch_rows)
        yield _classification_block(concept, a, b, n_rows, seed, a // batch_rows, drift, n_classes, label_noise)


def stream_to_store(store: str | os.PathLike, n_rows: int, n_features: int, *, batch_rows: int = 1000,
                    chunk_rows: int | None = None, interval: float = 0.0, n_classes: int = 2, seed: int = 0,
                    drift: Any = None, label_noise: float = 0.6, overwrite: bool = False,
                    close: bool = True) -> Path:
    """Write a drifting classification stream into ``store``, one batch every ``interval`` s.

    The first batch creates the store (atomically); each later one is appended and
    committed (readers see whole batches only). With ``close`` the store is marked
    complete at the end, so a following reader stops.

    Examples
    --------
    >>> import tempfile, daskscale
    >>> p = stream_to_store(tempfile.mkdtemp() + "/s.zarr", 3000, 5, batch_rows=1000, drift="abrupt")
    >>> daskscale.open_dataset(p).X.shape
    (3000, 5)
    """
    chunk = int(chunk_rows or batch_rows)
    source = f"stream_to_store(seed={seed}, drift={drift!r})"
    path = Path(store)
    for i, (X, y) in enumerate(stream_batches(n_rows, n_features, batch_rows=batch_rows, n_classes=n_classes,
                                               seed=seed, drift=drift, label_noise=label_noise)):
        if i == 0:
            attrs = layout.make_attrs(target="y", classes=list(range(n_classes)), n_rows=len(X), source=source)
            with _synchronous():
                write_store(path, da.from_array(X, chunks=(chunk, -1)), da.from_array(y, chunks=chunk),
                            attrs=attrs, chunk_rows=chunk, overwrite=overwrite)
        else:
            if interval:
                time.sleep(interval)
            append_rows(path, X, y)
    if close:
        close_stream(path)
    return path


def _synchronous() -> Any:
    """The first small batch is written in this process, never shipped to a cluster."""
    import dask

    return dask.config.set(scheduler="synchronous")

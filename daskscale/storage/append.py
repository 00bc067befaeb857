"""Append rows to an existing daskscale store, so that readers never see a half-written row.

The commit protocol (one writer, any number of readers):

1. grow ``X`` / ``y`` / ``sample_weight`` along ``sample`` to hold the new rows (array
   metadata only);
2. write the new rows. Zarr's ``LocalStore`` writes every chunk to a temporary file and
   renames it into place, so a reader sees a chunk either as it was or as it is now, never
   torn; rows past ``n_rows_committed`` are hidden by :func:`daskscale.storage.open_dataset`;
3. LAST, bump the group attribute ``daskscale.n_rows_committed``. Only now are the rows
   visible.

A writer killed between 1 and 3 leaves the committed rows intact; the next append starts
again at ``n_rows_committed`` and overwrites the debris. :func:`close_stream` marks the
store as finished so followers (``daskscale.online.StoreSource(follow=True)``) stop.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import zarr

from daskscale.errors import SchemaError
from daskscale.storage import layout
from daskscale.storage.store import store_attrs

__all__ = ["append_rows", "close_stream", "committed_rows"]


def committed_rows(store: str | os.PathLike) -> int:
    """Rows a reader may see now (``n_rows_committed``)."""
    attrs = store_attrs(store)
    n = attrs.get("n_rows_committed")
    if n is None:
        return int(zarr.open_group(str(store), mode="r")["X"].shape[0])
    return int(n)


def append_rows(store: str | os.PathLike, X: Any, y: Any = None, *, sample_weight: Any = None) -> int:
    """Append the rows of ``X`` (and ``y``) to ``store``; return the new committed row count.

    Parameters
    ----------
    store : path
        An existing daskscale store (see :mod:`daskscale.storage.layout`).
    X : array-like, shape (m, n_features)
        New rows; cast to the store's dtype (float32). A different number of columns raises.
    y, sample_weight : array-like, shape (m,), optional
        Required when (and only when) the store has these arrays.

    Raises
    ------
    SchemaError
        If the columns, dtypes or lengths do not match the store; nothing is written then.

    Examples
    --------
    >>> import tempfile, numpy as np, daskscale
    >>> path = tempfile.mkdtemp() + "/s.zarr"
    >>> _ = daskscale.ingest(np.zeros((4, 2)), path, chunk_rows=4)
    >>> append_rows(path, np.ones((3, 2)))
    7
    >>> daskscale.open_dataset(path).X.shape
    (7, 2)
    """
    attrs = store_attrs(store)
    group = zarr.open_group(str(store), mode="r+")
    arrays = {"X": group["X"]}
    given = {"y": y, "sample_weight": sample_weight}
    for name, value in given.items():
        if name in group:
            if value is None:
                raise SchemaError(f"{store} has a '{name}' array: pass {name}= with the rows to append")
            arrays[name] = group[name]
        elif value is not None:
            raise SchemaError(f"{store} has no '{name}' array, but {name}= was given")
    data = {"X": _as_rows(np.asarray(X), arrays["X"], store)}
    m = data["X"].shape[0]
    for name in arrays:
        if name != "X":
            data[name] = _as_column(np.asarray(given[name]), arrays[name], m, name, store)
    if m == 0:
        return committed_rows(store)

    n = int(attrs.get("n_rows_committed", arrays["X"].shape[0]))
    for name, arr in arrays.items():  # 1. grow (or cut debris of a killed append)
        arr.resize((n + m,) + arr.shape[1:])
    for name, arr in arrays.items():  # 2. write (each chunk renamed into place by LocalStore)
        arr[n:n + m] = data[name]
    new = dict(store_attrs(store), n_rows_committed=n + m)
    group.attrs[layout.ATTR] = new  # 3. commit, last
    return n + m


def close_stream(store: str | os.PathLike) -> None:
    """Mark ``store`` as complete: followers read the last rows and stop."""
    group = zarr.open_group(str(store), mode="r+")
    group.attrs[layout.ATTR] = dict(store_attrs(store), stream_closed=True)


def _as_rows(X: np.ndarray, arr: Any, store: Any) -> np.ndarray:
    if X.ndim != 2 or X.shape[1] != arr.shape[1]:
        raise SchemaError(f"cannot append rows of shape {X.shape} to {store}: its X has "
                          f"{arr.shape[1]} features; pass a 2-D array with {arr.shape[1]} columns")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise SchemaError(f"cannot append X of dtype {X.dtype} to {store}: X must be numeric")
    return X.astype(arr.dtype, copy=False)


def _as_column(v: np.ndarray, arr: Any, m: int, name: str, store: Any) -> np.ndarray:
    if v.ndim != 1 or v.shape[0] != m:
        raise SchemaError(f"{name} has shape {v.shape} but X has {m} rows: append the same number to {store}")
    try:
        return v.astype(arr.dtype, casting="same_kind" if v.dtype.kind != "b" else "unsafe")
    except TypeError:
        raise SchemaError(f"cannot append {name} of dtype {v.dtype} to {store} whose {name} is {arr.dtype}") from None

"""One helper converts every accepted input into dask arrays: the public boundary.

Accepted: a daskscale store path, an :class:`xarray.Dataset` in daskscale layout (``X``/``y``)
or with one variable per feature, a 2-D :class:`xarray.DataArray`, NumPy and dask arrays,
pandas and dask DataFrames (all columns numeric), and for ``y`` also Series and 1-D arrays.
Gridded xarray input with ``sample_dims`` is stacked by :mod:`daskscale.grid`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from daskscale.errors import InputTypeError, SchemaError
from daskscale.storage import layout
from daskscale.storage.store import open_dataset, store_attrs

__all__ = ["Data", "as_data", "aligned"]


@dataclass
class Data:
    """Features and target as dask arrays, chunked along rows only, with their names."""

    X: da.Array
    y: da.Array | None = None
    feature_names: list[str] | None = None
    target: str | None = None
    classes: list[Any] | None = None
    sample_weight: da.Array | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def row_chunks(self) -> tuple[int, ...]:
        return tuple(self.X.chunks[0])


#: byte alignment of the blocks the products read: BLAS picks its kernels (and so its rounding) by it
ALIGN = 64


def empty_aligned(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An empty C-contiguous array whose data starts on an :data:`ALIGN`-byte boundary.

    Examples
    --------
    >>> empty_aligned((3, 5), np.float32).ctypes.data % ALIGN
    0
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, dtype=np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def aligned(a: Any) -> Any:
    """``a`` with its data aligned for its dtype: a copy only when it is not (else ``a`` itself).

    An array that Dask's distributed client or a worker receives is rebuilt in place over the
    message buffer and may start at any byte (seen: float32 data at an address ending in 49).
    scikit-learn's Cython loops and BLAS then take their slow unaligned paths: L-BFGS on such
    an array of 1.1M x 50 ran 8x slower than on a copy. Anything else (``None``, lists, dask
    arrays) is returned as is.

    Examples
    --------
    >>> raw = np.zeros(41, dtype=np.uint8)
    >>> odd = raw[1:].view(np.float64)  # 8-byte values starting at an odd address
    >>> odd.flags.aligned, aligned(odd).flags.aligned
    (False, True)
    """
    if isinstance(a, np.ndarray) and not a.flags.aligned:
        return np.require(a, requirements="A")
    return a


def _to_dask(a: Any, chunks: Any = "auto") -> da.Array:
    if isinstance(a, da.Array):
        return a
    if isinstance(a, (pd.Series, pd.DataFrame)):
        a = a.to_numpy()
    if isinstance(a, xr.DataArray):
        return _to_dask(a.data, chunks)
    return da.from_array(np.asarray(a), chunks=chunks)


def as_data(X: Any, y: Any = None, *, target: str | None = None, sample_weight: Any = None,
            chunk_rows: int | None = None, require_y: bool = False, name: str = "X",
            sample_dims: Any = None, feature_dim: str | None = None, mask: Any = None) -> Data:
    """Convert ``X`` (and ``y``) to a :class:`Data`; the one conversion at the public boundary.

    ``sample_dims`` / ``feature_dim`` / ``mask`` stack gridded xarray input into samples
    (:func:`daskscale.grid.stack.stack_to_data`).

    Raises
    ------
    InputTypeError
        For an unsupported type.
    SchemaError
        For non-numeric columns, a non-2-D ``X``, ``X``/``y`` length mismatch, a missing target
        when ``require_y``.
    """
    if sample_dims is not None:
        from daskscale.grid.stack import stack_to_data

        data = stack_to_data(X, sample_dims=sample_dims, feature_dim=feature_dim, target=target, mask=mask)
    else:
        data = _convert(X, target=target, name=name)
    if y is not None:
        ya = y if isinstance(y, da.Array) else _to_dask(y, chunks=(data.row_chunks,))
        if ya.ndim == 2 and ya.shape[1] == 1:
            ya = ya[:, 0]
        data.y = ya
        # a store's target name and class list describe its own target, not this one
        data.target, data.classes = getattr(y, "name", None) if hasattr(y, "iloc") else None, None
    if sample_weight is not None:
        data.sample_weight = _to_dask(sample_weight, chunks=(data.row_chunks,))
    if data.X.ndim != 2:
        raise SchemaError(f"{name} must be 2-D (samples, features), got shape {data.X.shape}")
    if data.X.dtype.kind not in "biuf":
        raise SchemaError(f"{name} has non-numeric dtype {data.X.dtype}")
    if data.X.shape[0] == 0:
        raise SchemaError(f"{name} has no rows")
    for nm, arr in (("y", data.y), ("sample_weight", data.sample_weight)):
        if arr is not None and arr.shape[0] != data.X.shape[0]:
            raise SchemaError(f"{name} has {data.X.shape[0]} rows but {nm} has {arr.shape[0]}: they must match")
    if require_y and data.y is None:
        raise SchemaError(f"{data.source or name}: no target given (pass y=, or a store with a target)")
    if chunk_rows is not None:
        data.X = data.X.rechunk({0: chunk_rows, 1: -1})
    elif data.X.numblocks[1] != 1:
        data.X = data.X.rechunk({1: -1})
    if data.y is not None and data.y.chunks[0] != data.X.chunks[0]:
        data.y = data.y.rechunk({0: data.X.chunks[0]})
    if data.sample_weight is not None and data.sample_weight.chunks[0] != data.X.chunks[0]:
        data.sample_weight = data.sample_weight.rechunk({0: data.X.chunks[0]})
    return data


def _convert(X: Any, *, target: str | None, name: str) -> Data:
    if isinstance(X, Data):
        return X
    if isinstance(X, (str, os.PathLike)):
        attrs = store_attrs(X)
        ds = open_dataset(X)
        return Data(ds["X"].data, ds["y"].data if "y" in ds else None,
                    [str(f) for f in ds[layout.FEATURE].values], attrs.get("target"), attrs.get("classes"),
                    ds["sample_weight"].data if "sample_weight" in ds else None, attrs, str(X))
    if isinstance(X, xr.Dataset):
        if "X" in X and X["X"].ndim == 2:
            fdim = X["X"].dims[1]
            names = [str(v) for v in X[fdim].values] if fdim in X.coords else None
            attrs = X.attrs.get(layout.ATTR, {})
            y = X[target or "y"].data if (target or "y") in X else None
            return Data(_to_dask(X["X"].data), _to_dask(y) if y is not None else None, names,
                        attrs.get("target", target), attrs.get("classes"), None, attrs, "xarray.Dataset")
        feats = [v for v in X.data_vars if v != target]
        for v in feats:
            if X[v].ndim != 1:
                raise SchemaError(f"variable {v!r} has dims {X[v].dims}; pass sample_dims to daskscale.grid "
                                  "to stack gridded data")
            if X[v].dtype.kind not in "biuf":
                raise SchemaError(f"variable {v!r} has non-numeric dtype {X[v].dtype}")
        cols = [_to_dask(X[v].data) for v in feats]
        chunks = cols[0].chunks[0]
        Xa = da.stack([c.rechunk({0: chunks}) for c in cols], axis=1)
        y = _to_dask(X[target].data).rechunk({0: chunks}) if target else None
        return Data(Xa, y, [str(v) for v in feats], target, None, None, {}, "xarray.Dataset")
    if isinstance(X, xr.DataArray):
        names = [str(v) for v in X[X.dims[1]].values] if X.ndim == 2 and X.dims[1] in X.coords else None
        return Data(_to_dask(X.data), feature_names=names, source="xarray.DataArray")
    if isinstance(X, pd.DataFrame):
        bad = [c for c in X.columns if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]
        if bad:
            raise SchemaError(f"column {bad[0]!r} of the DataFrame is not numeric (dtype {X[bad[0]].dtype}); "
                              "encode it first, e.g. daskscale.ingest(..., categorical='encode')")
        y = None
        if target is not None:
            if target not in X.columns:
                raise SchemaError(f"target column {target!r} not in the DataFrame's columns {list(X.columns)}")
            y, X = X[target], X.drop(columns=[target])
        return Data(_to_dask(X.to_numpy(dtype=np.float32)), _to_dask(y) if y is not None else None,
                    [str(c) for c in X.columns], target, source="DataFrame")
    if type(X).__module__.startswith("dask") and hasattr(X, "to_dask_array"):
        cols = list(X.columns)
        y = None
        if target is not None:
            if target not in cols:
                raise SchemaError(f"target column {target!r} not in the DataFrame's columns {cols}")
            y = X[target].to_dask_array(lengths=True)
            X = X.drop(columns=[target])
        arr = X.to_dask_array(lengths=True)
        return Data(arr, y, [str(c) for c in X.columns], target, source="dask DataFrame")
    if isinstance(X, (np.ndarray, da.Array, list)):
        return Data(_to_dask(X), source=name)
    raise InputTypeError(
        f"{name} of type {type(X).__name__} is not supported: give a store path, an xarray Dataset, "
        "a NumPy or dask array, or a pandas or dask DataFrame"
    )

"""``ingest``: any supported source -> a daskscale store, in one pass, atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from daskscale.errors import DaskscaleError, InputTypeError, SchemaError
from daskscale.storage import layout, precision
from daskscale.storage.atomic import remove_stale_temps, remove_tree, temp_sibling
from daskscale.storage.frames import (
    Producer, Staged, csv_producers, expand_paths, frame_producers, load_staged, parquet_producers, stage_block,
)
from daskscale.storage.store import write_store

__all__ = ["ingest"]

_CSV = (".csv", ".csv.gz", ".txt")
_PARQUET = (".parquet", ".parq", ".pq")
_NETCDF = (".nc", ".nc4", ".netcdf", ".cdf", ".h5")


def ingest(
    source: Any,
    store: str | os.PathLike,
    *,
    target: str | None = None,
    y: Any = None,
    features: Sequence[str] | None = None,
    chunk_mb: float = 64,
    chunk_rows: int | None = None,
    compressor: Any = "default",
    categorical: str = "error",
    sample_dim: str | None = None,
    sample_dims: Sequence[str] | str | None = None,
    feature_dim: str | None = None,
    overwrite: bool = False,
    blocksize: int = 64 * 2**20,
    dtype: Any = "float32",
    on_short_rows: str = "error",
) -> Path:
    """Write ``source`` to a new daskscale store at ``store``.

    Parameters
    ----------
    source
        A CSV file or glob, a Parquet file or (Spark-written, hive-partitioned) directory, a
        ``.npy`` file (memory-mapped), a NetCDF file or Zarr store that xarray opens, an
        :class:`xarray.Dataset`, a NumPy or dask array, or a pandas or dask DataFrame.
    store
        Path of the new store. It appears only once completely written.
    target
        Name of the target column (tables) or variable (xarray). String labels are encoded
        as integer codes; the labels are kept in the store's ``classes`` attribute.
    y
        Target for array sources: an array, or a ``.npy`` path.
    features
        Columns / variables to use as features (default: all but the target).
    chunk_mb, chunk_rows
        Rows per chunk: ``chunk_rows`` if given, else about ``chunk_mb`` MiB of ``X``.
    compressor
        A Zarr v3 codec, ``None`` for none, or ``"default"`` (Blosc lz4 + byte shuffle).
    categorical
        ``"error"`` (default) rejects non-numeric feature columns, naming the column;
        ``"encode"`` replaces each by ordinal codes ``0..k-1`` in sorted order of its
        distinct values (missing values stay NaN), with the categories kept in the store's
        ``categories`` attribute.
    sample_dim
        For xarray sources: the dimension that indexes samples (default: the first dim).
    sample_dims, feature_dim
        For gridded xarray sources: the dims stacked into samples and the optional dim whose
        labels are features (:func:`daskscale.grid.stack.stack_to_data`); cells with any NaN
        feature or target are dropped.
    overwrite
        Replace an existing store (atomically) instead of raising.
    blocksize
        Bytes of CSV parsed per task.
    dtype
        ``"float32"`` (default) or ``"float64"``: the dtype of ``X`` in the store. With
        float32, the pass that converts the data measures what the cast rounds away, and a
        :class:`~daskscale.storage.precision.PrecisionWarning` names each column whose largest
        rounding error exceeds ``1e-4`` of its standard deviation (a column at ``1e12 + N(0, 1)``,
        int64 near ``2**62``): ingest those with ``dtype="float64"``.
    on_short_rows
        CSV rows with fewer fields than the header: ``"error"`` (default) raises a
        :class:`SchemaError` naming the file, the line and the expected field count;
        ``"fill"`` fills the missing trailing fields with NaN. Rows with more fields than
        the header are always an error.

    Returns
    -------
    pathlib.Path
        The store's path.

    Raises
    ------
    SchemaError
        Ragged or malformed CSV, missing target column, non-numeric column, empty source,
        X and y of different lengths. The message names the file or block and the column,
        and for a ragged CSV row its line.

    Warns
    -----
    PrecisionWarning
        When float32 loses more than ``1e-4`` of a column's spread (see ``dtype``).

    Notes
    -----
    Temporary folders (``.STORE.tmp-*``, ``.STORE-staging.tmp-*``) are removed when an ingest
    fails; those of an ingest that was killed are removed by the next ingest into the same
    store once their writer is gone (:func:`daskscale.storage.atomic.remove_stale_temps`).

    Examples
    --------
    >>> import tempfile, numpy as np, daskscale
    >>> path = daskscale.ingest(np.ones((10, 3)), tempfile.mkdtemp() + "/ones.zarr", y=np.arange(10))
    >>> daskscale.info(path).n_rows
    10
    """
    if categorical not in ("error", "encode"):
        raise SchemaError(f"categorical must be 'error' or 'encode', not {categorical!r}")
    if on_short_rows not in ("error", "fill"):
        raise SchemaError(f"on_short_rows must be 'error' or 'fill', not {on_short_rows!r}")
    if _float_dtype(dtype) is None:
        raise SchemaError(f"dtype must be 'float32' or 'float64', not {dtype!r}")
    remove_stale_temps(store)
    remove_stale_temps(_staging_base(store))
    write = dict(chunk_mb=chunk_mb, chunk_rows=chunk_rows, compressor=compressor, overwrite=overwrite,
                 dtype=_float_dtype(dtype))
    if isinstance(source, (str, os.PathLike)):
        s = str(source)
        kind = _kind_of_path(s)
        if kind == "csv":
            return _ingest_frames(csv_producers(s, blocksize=blocksize, on_short_rows=on_short_rows), store,
                                  target, features, categorical, source=s, **write)
        if kind == "parquet":
            return _ingest_frames(parquet_producers(s), store, target, features, categorical, source=s, **write)
        if kind == "npy":
            return _ingest_arrays(_npy_array(s, chunk_rows), _as_target(y), store, source=s,
                                  features=features, **write)
        ds = _open_xarray(s)
        if sample_dims is not None:
            return _ingest_grid(ds, store, target, features, sample_dims, feature_dim, source=s, **write)
        return _ingest_xarray(ds, store, target, features, sample_dim, source=s, **write)
    if sample_dims is not None and isinstance(source, (xr.Dataset, xr.DataArray)):
        return _ingest_grid(source, store, target, features, sample_dims, feature_dim,
                            source=f"gridded {type(source).__name__}", **write)
    if isinstance(source, xr.DataArray):
        source = source.to_dataset(name=source.name or "X") if source.ndim == 1 else source
    if isinstance(source, xr.Dataset):
        return _ingest_xarray(source, store, target, features, sample_dim, source="xarray.Dataset", **write)
    if isinstance(source, pd.DataFrame) or _is_dask_dataframe(source):
        return _ingest_frames(frame_producers(source), store, target, features, categorical,
                              source=type(source).__name__, **write)
    if isinstance(source, (np.ndarray, da.Array, xr.DataArray)):
        X = source.data if isinstance(source, xr.DataArray) else source
        if X.ndim == 1:
            X = X[:, None]
        if X.dtype.kind not in "biuf":
            raise SchemaError(f"array of dtype {X.dtype} is not numeric")
        X = da.from_array(X, chunks=(chunk_rows or "auto", -1)) if isinstance(X, np.ndarray) else X
        return _ingest_arrays(X, _as_target(y), store, source=type(source).__name__, features=features, **write)
    raise InputTypeError(
        f"cannot ingest an object of type {type(source).__name__}; give a path (CSV, Parquet, .npy, "
        "NetCDF, Zarr), an xarray Dataset, a NumPy/dask array or a pandas/dask DataFrame"
    )


def _float_dtype(d: Any) -> np.dtype | None:
    """``d`` as float32 or float64, else ``None``."""
    try:
        dt = np.dtype(d) if d is not None else None
    except TypeError:
        return None
    return dt if dt in (np.float32, np.float64) else None


def _staging_base(store: str | os.PathLike) -> Path:
    return Path(store).with_name(Path(store).name + "-staging")


def _kind_of_path(s: str) -> str:
    low = s.lower().rstrip("/")
    if low.endswith(_CSV) or ("*" in low and any(x in low for x in (".csv", ".txt"))):
        return "csv"
    if low.endswith(_PARQUET) or ("*" in low and ".parq" in low):
        return "parquet"
    if low.endswith(".npy"):
        return "npy"
    if low.endswith(_NETCDF) or low.endswith(".zarr"):
        return "xarray"
    if os.path.isdir(s):
        names = [p.name for p in Path(s).rglob("*") if p.is_file()]
        if any(n.endswith(_PARQUET) or n.startswith("part-") for n in names):
            return "parquet"
        if any(n.endswith(_CSV) for n in names):
            return "csv"
        if any(n == "zarr.json" for n in names):
            return "xarray"
    if not os.path.exists(s) and not any(ch in s for ch in "*?["):
        raise SchemaError(f"{s}: no such file or directory")
    raise SchemaError(f"{s}: cannot tell the format (expected .csv, .parquet, .npy, .nc or .zarr)")


def _is_dask_dataframe(obj: Any) -> bool:
    return type(obj).__module__.startswith("dask") and hasattr(obj, "to_delayed") and hasattr(obj, "columns")


def _as_target(y: Any) -> da.Array | None:
    if y is None:
        return None
    if isinstance(y, (str, os.PathLike)):
        return _npy_array(str(y), None)
    if isinstance(y, (pd.Series, pd.DataFrame)):
        y = y.to_numpy()
    if isinstance(y, xr.DataArray):
        y = y.data
    return y if isinstance(y, da.Array) else da.from_array(np.asarray(y), chunks="auto")


def _npy_block(path: str, start: int, stop: int) -> np.ndarray:
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def _npy_array(path: str, chunk_rows: int | None) -> da.Array:
    """A dask array over a ``.npy`` file, each block memory-mapped by the task that reads it."""
    files = expand_paths(path, (".npy",))
    if len(files) != 1:
        raise SchemaError(f"{path}: expected one .npy file, found {len(files)}")
    mm = np.load(files[0], mmap_mode="r")
    if mm.dtype.kind not in "biuf":
        raise SchemaError(f"{path}: array dtype {mm.dtype} is not numeric")
    rows = chunk_rows or layout.rows_per_chunk(int(np.prod(mm.shape[1:], dtype=int)) or 1, 4, 64)
    blocks = [
        da.from_delayed(dask.delayed(_npy_block)(files[0], a, min(a + rows, mm.shape[0])),
                        shape=(min(a + rows, mm.shape[0]) - a,) + mm.shape[1:], dtype=mm.dtype)
        for a in range(0, mm.shape[0], rows)
    ]
    if not blocks:
        raise SchemaError(f"{path}: the array has no rows")
    return da.concatenate(blocks, axis=0)


def _ingest_arrays(X: da.Array, y: da.Array | None, store: Any, *, source: str,
                   features: Sequence[str] | None, dtype: np.dtype, **write: Any) -> Path:
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise SchemaError(f"{source}: X must be 1-D or 2-D, got shape {X.shape}")
    if y is not None and y.shape[0] != X.shape[0]:
        raise SchemaError(f"{source}: X has {X.shape[0]} rows but y has {y.shape[0]}: they must match")
    classes = None
    if y is not None and y.dtype.kind not in "biuf":
        raise SchemaError(f"{source}: y has dtype {y.dtype}; encode labels as numbers, or ingest a table")
    attrs = layout.make_attrs(target="y" if y is not None else None, classes=classes, source=source,
                              n_rows=X.shape[0])
    names = list(features) if features else None
    if not precision.needs_check(X.dtype, dtype):
        return write_store(store, X.astype(dtype), y, feature_names=names, attrs=attrs, **write)
    # The blocks that cast also measure what the cast rounds away, each leaving a small
    # note in a staging folder: the data is read once, and the client merges the notes.
    notes = temp_sibling(_staging_base(store))
    notes.mkdir(parents=True)
    try:
        cast = X.rechunk({1: -1}).map_blocks(_cast_block, target=dtype, notes=str(notes), dtype=dtype,
                                             meta=np.empty((0, 0), dtype))
        path = write_store(store, cast, y, feature_names=names, attrs=attrs, **write)
        loss = None
        for note in sorted(notes.glob("loss-*.npy")):
            loss = precision.merge_loss(loss, np.load(note))
        precision.warn_if_lossy(loss, names or [f"x{i}" for i in range(X.shape[1])], source)
        return path
    finally:
        remove_tree(notes)


def _cast_block(block: np.ndarray, *, target: np.dtype, notes: str, block_info: Any = None) -> np.ndarray:
    """Cast one row block and leave the loss of the cast in ``notes`` (same file if re-run)."""
    np.save(os.path.join(notes, f"loss-{block_info[0]['chunk-location'][0]:06d}.npy"),
            precision.cast_loss(block, target))
    return block.astype(target)


def _open_xarray(path: str) -> xr.Dataset:
    try:
        if path.rstrip("/").endswith(".zarr") or os.path.isdir(path):
            return xr.open_zarr(path, consolidated=False)
        return xr.open_dataset(path, chunks={})
    except (OSError, ValueError, KeyError) as exc:
        raise SchemaError(f"{path}: could not be opened by xarray: {exc}") from None


def _ingest_xarray(ds: xr.Dataset, store: Any, target: str | None, features: Sequence[str] | None,
                   sample_dim: str | None, *, source: str, **write: Any) -> Path:
    if "X" in ds and ds["X"].ndim == 2 and features is None:  # already in daskscale layout
        X = ds["X"].data
        names = [str(v) for v in ds[ds["X"].dims[1]].values] if ds["X"].dims[1] in ds.coords else None
        y_name = target or ("y" if "y" in ds else None)
        y = ds[y_name].data if y_name else None
        return _ingest_arrays(_dask(X), _dask(y) if y is not None else None, store, source=source,
                              features=names, **write)
    dim = sample_dim or (next(iter(ds.dims)) if ds.dims else None)
    if dim is None or dim not in ds.dims:
        raise SchemaError(f"{source}: sample dimension {sample_dim!r} not found; dims are {list(ds.dims)}")
    if target is not None and target not in ds:
        raise SchemaError(f"{source}: target variable {target!r} not found; variables are {list(ds.data_vars)}")
    names = list(features) if features else [str(v) for v in ds.data_vars if v != target]
    cols = []
    for v in names:
        if v not in ds:
            raise SchemaError(f"{source}: variable {v!r} not found; variables are {list(ds.data_vars)}")
        var = ds[v]
        if var.dims != (dim,):
            raise SchemaError(
                f"{source}: variable {v!r} has dims {var.dims}, expected ({dim!r},); for gridded data "
                "use daskscale.grid to stack sample dims first"
            )
        if var.dtype.kind not in "biufM":
            raise SchemaError(f"{source}: variable {v!r} has non-numeric dtype {var.dtype}")
        cols.append(_dask(var.data).astype(write["dtype"]) if var.dtype.kind == "M" else _dask(var.data))
    if not cols:
        raise SchemaError(f"{source}: no feature variables")
    X = da.stack(cols, axis=1)
    y = _dask(ds[target].data) if target else None
    path = _ingest_arrays(X, y, store, source=source, features=names, **write)
    return path


def _ingest_grid(src: Any, store: Any, target: str | None, features: Sequence[str] | None, sample_dims: Any,
                 feature_dim: str | None, *, source: str, **write: Any) -> Path:
    """Gridded xarray: stack the sample dims into rows (masked cells dropped), then write."""
    from daskscale.grid.stack import stack_to_data

    data = stack_to_data(src, sample_dims=sample_dims, feature_dim=feature_dim, target=target, features=features)
    return _ingest_arrays(data.X, data.y, store, source=source, features=data.feature_names, **write)


def _dask(a: Any) -> da.Array:
    return a if isinstance(a, da.Array) else da.from_array(np.asarray(a), chunks="auto")


def _ingest_frames(producers: list[Producer], store: Any, target: str | None, features: Sequence[str] | None,
                   categorical: str, *, source: str, dtype: np.dtype, **write: Any) -> Path:
    """Parse every block once into a staging area, then write the store from it."""
    staging = temp_sibling(_staging_base(store))
    staging.mkdir(parents=True)
    try:
        tasks = [dask.delayed(stage_block, pure=False)(
            p, i, str(staging), target=target, categorical=categorical,
            features=list(features) if features else None, dtype=dtype) for i, p in enumerate(producers)]
        staged = _stage_all(tasks)
        cols = staged[0].columns
        for s in staged[1:]:
            if s.columns != cols:
                raise SchemaError(f"{s.label}: columns {s.columns} differ from {staged[0].label}'s {cols}")
        staged = [s for s in staged if s.n_rows > 0]
        if not staged:
            raise SchemaError(f"{source}: the source has no rows")
        categories: dict[str, list[str]] = {}
        for s in staged:
            for c, u in s.uniques.items():
                categories[c] = sorted(set(categories.get(c, [])) | set(u))
        y_dtype = None
        if target is not None:
            y_dtype = np.int64 if target in categories else np.load(staged[0].path + ".y.npy", mmap_mode="r").dtype
        Xs, ys = [], []
        for s in staged:
            pair = dask.delayed(load_staged, nout=2, pure=True)(s, categories, target)
            Xs.append(da.from_delayed(pair[0], shape=(s.n_rows, len(cols)), dtype=dtype))
            if target is not None:
                ys.append(da.from_delayed(pair[1], shape=(s.n_rows,), dtype=y_dtype))
        X = da.concatenate(Xs)
        y = da.concatenate(ys) if ys else None
        classes = categories.get(target) if target else None
        if target is not None and classes is None and all(s.target_values is not None for s in staged):
            values = sorted(set().union(*(s.target_values for s in staged)))
            classes = values if len(values) <= 1000 else None
        feature_categories = {c: v for c, v in categories.items() if c != target}
        attrs = layout.make_attrs(target=target, classes=classes, categories=feature_categories,
                                  source=source, n_rows=X.shape[0])
        loss = None
        for s in staged:
            loss = precision.merge_loss(loss, s.loss)
        path = write_store(store, X, y, feature_names=cols, attrs=attrs, **write)
        precision.warn_if_lossy(loss, cols, source)
        return path
    finally:
        remove_tree(staging)


def _stage_all(tasks: list[Any]) -> list[Staged]:
    """Run the staging tasks; the first block that returned an error raises it here.

    On a distributed client the blocks run as futures and the first error cancels the
    rest, so a bad row near the top of a large file is reported without parsing the rest.
    """
    from daskscale.adapters.dask import active_client

    client = active_client()
    if client is None:
        results = dask.compute(*tasks)
        for r in results:
            if isinstance(r, DaskscaleError):
                raise r
        return list(results)
    from distributed import as_completed

    futures = client.compute(tasks)
    try:
        for fut in as_completed(futures):
            if isinstance(r := fut.result(), DaskscaleError):
                raise r
    except BaseException:
        client.cancel(futures)
        raise
    return [f.result() for f in futures]

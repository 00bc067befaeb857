"""Write, open and describe daskscale stores (see :mod:`daskscale.storage.layout`).

Reads go through the chunk guard of :mod:`daskscale.storage.chunks`: a damaged chunk raises
:class:`~daskscale.storage.chunks.CorruptChunkError` naming it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr

from daskscale.errors import SchemaError, StoreError
from daskscale.storage import layout
from daskscale.storage.atomic import atomic_dir
from daskscale.monitor import compute_with_progress
from daskscale.storage.chunks import guard_chunks

__all__ = ["write_store", "open_dataset", "load_xy", "info", "StoreInfo", "is_store", "store_attrs"]

# The names :func:`daskscale.storage.atomic.temp_sibling` gives a store while it is written
# (``.NAME.tmp-<id>.<pid>.<host>``, or ``.NAME.tmp-<id>`` as older versions named it).
_TEMP_NAME = re.compile(r"^\..+\.tmp-[0-9a-f]{12}(?:\.\d+\.[0-9a-f]{8})?$")


def write_store(
    path: str | os.PathLike,
    X: da.Array,
    y: da.Array | None = None,
    *,
    feature_names: list[str] | None = None,
    attrs: dict[str, Any],
    chunk_rows: int | None = None,
    chunk_mb: float = 64,
    compressor: Any = "default",
    sample_weight: da.Array | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``X`` (and ``y``) to a new store at ``path``, atomically.

    ``X`` is rechunked to ``chunk_rows`` rows (default: ``chunk_mb`` MiB of float32) and all
    columns; the blocks are computed and written by the active Dask scheduler, so a
    dataset larger than memory streams through.
    """
    if X.ndim != 2:
        raise SchemaError(f"X must be 2-D (sample, feature), got shape {X.shape}")
    n, p = X.shape
    if n == 0:
        raise SchemaError("the source has no rows: nothing to ingest")
    for name, arr in (("y", y), ("sample_weight", sample_weight)):
        if arr is not None and arr.shape[0] != n:
            raise SchemaError(f"X has {n} rows but {name} has {arr.shape[0]}: they must match")
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(p)]
    if len(names) != p:
        raise SchemaError(f"{len(names)} feature names for {p} columns of X")
    rows = chunk_rows or layout.rows_per_chunk(p, X.dtype.itemsize, chunk_mb)
    codec = layout.default_compressor() if compressor == "default" else compressor
    comp = [codec] if codec is not None else None

    X = X.rechunk({0: rows, 1: -1})
    data_vars = {"X": ((layout.SAMPLE, layout.FEATURE), X)}
    encoding = {"X": {"chunks": (rows, p), "compressors": comp}}
    for name, arr in (("y", y), ("sample_weight", sample_weight)):
        if arr is not None:
            data_vars[name] = ((layout.SAMPLE,), arr.rechunk(X.chunks[0]))
            encoding[name] = {"chunks": (rows,), "compressors": comp}
    ds = xr.Dataset(data_vars, coords={layout.FEATURE: np.array(names, dtype=object)})
    with atomic_dir(path, overwrite=overwrite) as tmp:
        compute_with_progress(ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False, encoding=encoding,
                                         compute=False), desc=f"writing {Path(path).name}", unit="task")
        # The daskscale attributes are the completion marker (see is_store): written only once
        # every chunk is, so a folder left by a killed write is never taken for a store.
        group = zarr.open_group(str(tmp), mode="r+")
        group.attrs[layout.ATTR] = dict(attrs, n_rows_committed=int(n), chunk_rows=int(rows))
    return Path(path)


def is_store(path: str | os.PathLike) -> bool:
    """True when ``path`` is a complete daskscale store.

    An incomplete store never is: a folder still being written (or left by a killed write)
    has a temporary name (``.NAME.tmp-...``) and lacks the ``daskscale`` attributes, which
    :func:`write_store` adds only after the last chunk.
    """
    try:
        store_attrs(path)
        return True
    except StoreError:
        return False


def store_attrs(path: str | os.PathLike) -> dict[str, Any]:
    """The ``daskscale`` attributes of a store; :class:`StoreError` if it is not one."""
    p = Path(path)
    if not p.exists():
        raise StoreError(f"{p}: no such store (the path does not exist)")
    if _TEMP_NAME.match(p.name):
        raise StoreError(f"{p} is the temporary folder of a store being written (or of an interrupted write), "
                         "not a store; ingest again")
    try:
        group = zarr.open_group(str(p), mode="r")
    except Exception as exc:  # zarr raises several types for "not a group"
        raise StoreError(f"{p} is not a Zarr group, so not a daskscale store ({exc})") from exc
    attrs = group.attrs.asdict().get(layout.ATTR)
    if not isinstance(attrs, dict) or "schema_version" not in attrs:
        raise StoreError(f"{p} is a Zarr group but not a (complete) daskscale store: no '{layout.ATTR}' "
                         "attributes, which a write adds last; ingest it again")
    if "X" not in group:
        raise StoreError(f"{p} is a daskscale store without its 'X' array (damaged)")
    return attrs


def open_dataset(store: str | os.PathLike) -> xr.Dataset:
    """Open a store lazily as an :class:`xarray.Dataset` (dims ``sample``, ``feature``).

    Costs O(1) in the data size: only metadata is read. Rows appended but not yet committed
    by a writer are not shown. A damaged chunk raises :class:`CorruptChunkError` when read.

    Examples
    --------
    >>> import tempfile, daskscale
    >>> path = tempfile.mkdtemp() + "/d.zarr"
    >>> _ = daskscale.ingest(np.arange(12.0).reshape(6, 2), path, chunk_rows=4)
    >>> daskscale.open_dataset(path).X.shape
    (6, 2)
    """
    attrs = store_attrs(store)
    ds = xr.open_zarr(str(store), consolidated=False, zarr_format=3)
    ds = guard_chunks(ds, zarr.open_group(str(store), mode="r"), str(store))
    n = attrs.get("n_rows_committed")
    if n is not None and ds.sizes[layout.SAMPLE] > n:
        ds = ds.isel({layout.SAMPLE: slice(0, int(n))})
    return ds


def load_xy(store: str | os.PathLike) -> tuple[da.Array, da.Array | None]:
    """Return the store's ``X`` and ``y`` as lazy dask arrays (``y`` is ``None`` if absent)."""
    ds = open_dataset(store)
    return ds["X"].data, (ds["y"].data if "y" in ds else None)


@dataclass
class StoreInfo:
    """What ``daskscale info`` prints about a store."""

    path: str
    n_rows: int
    n_features: int
    chunk_rows: int
    n_chunks: int
    dtypes: dict[str, str]
    bytes_in_memory: int
    bytes_on_disk: int
    target: str | None
    classes: list[Any] | None
    feature_names: list[str] = field(repr=False)
    attrs: dict[str, Any] = field(repr=False)

    @property
    def compression_ratio(self) -> float:
        return self.bytes_in_memory / max(1, self.bytes_on_disk)

    def as_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "attrs"}
        d["compression_ratio"] = round(self.compression_ratio, 3)
        return d

    def __str__(self) -> str:
        mib = 2**20
        return "\n".join([
            f"store        {self.path}",
            f"rows         {self.n_rows:,}",
            f"features     {self.n_features}",
            f"chunks       {self.n_chunks} x {self.chunk_rows:,} rows",
            "dtypes       " + ", ".join(f"{k}={v}" for k, v in self.dtypes.items()),
            f"in memory    {self.bytes_in_memory / mib:,.1f} MiB",
            f"on disk      {self.bytes_on_disk / mib:,.1f} MiB",
            f"compression  {self.compression_ratio:.2f}x",
            f"target       {self.target}" + (f" (classes {self.classes})" if self.classes else ""),
        ])

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>"
                       for k, v in self.as_dict().items() if k != "feature_names")
        return f"<table><caption>daskscale store</caption>{rows}</table>"


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def info(store: str | os.PathLike) -> StoreInfo:
    """Shape, chunks, dtypes, size on disk and in memory, and compression ratio of a store."""
    ds = open_dataset(store)
    attrs = store_attrs(store)
    X = ds["X"]
    return StoreInfo(
        path=str(store),
        n_rows=int(X.shape[0]),
        n_features=int(X.shape[1]),
        chunk_rows=int(X.data.chunks[0][0]),
        n_chunks=len(X.data.chunks[0]),
        dtypes={k: str(v.dtype) for k, v in ds.data_vars.items()},
        bytes_in_memory=int(sum(v.nbytes for v in ds.data_vars.values())),
        bytes_on_disk=_dir_size(Path(store)),
        target=attrs.get("target"),
        classes=attrs.get("classes"),
        feature_names=[str(f) for f in ds[layout.FEATURE].values],
        attrs=attrs,
    )

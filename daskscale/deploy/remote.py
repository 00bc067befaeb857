"""Data on Hadoop (``hdfs://``), object stores (``s3://``, ``gs://``) and any fsspec URL.

Running next to Hadoop/YARN: dask-yarn is unmaintained (its last release predates current
Dask), so do not build on it. What works today:

- **dask-gateway** with its YARN backend (``pip install dask-gateway``; the gateway server
  launches schedulers and workers as YARN containers through Skein) gives a
  ``gateway.new_cluster()`` whose scheduler address ``daskscale.connect(address)`` joins;
- or start ``dask scheduler`` / ``dask worker`` yourself (any launcher, e.g. a Skein
  application spec), with TLS from :mod:`daskscale.deploy.tls`.

Either way daskscale reads the data where Spark and Hive keep it through fsspec: pyarrow's
``HadoopFileSystem`` for ``hdfs://`` (needs ``libhdfs`` and ``CLASSPATH`` on every worker),
s3fs for ``s3://``. :func:`ingest_url` turns CSV/Parquet at such a URL into a local (or
shared) daskscale store; :func:`open_url` opens a daskscale store that lives at a URL.
"""

from __future__ import annotations

import os
from typing import Any

import fsspec
import xarray as xr

from daskscale.errors import StoreError

__all__ = ["open_url", "ingest_url"]


def _fs(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    try:
        return fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        proto = url.split("://", 1)[0] if "://" in url else "file"
        raise StoreError(f"cannot open {url!r}: no usable fsspec filesystem for {proto!r} ({exc}). "
                         "hdfs:// needs pyarrow with libhdfs; s3:// needs `pip install s3fs`") from None


def open_url(url: str, *, storage_options: dict[str, Any] | None = None) -> xr.Dataset:
    """Open a daskscale store at an fsspec URL lazily, like :func:`daskscale.open_dataset`
    (a damaged chunk raises :class:`~daskscale.storage.chunks.CorruptChunkError` when read).

    Examples
    --------
    >>> import numpy as np, tempfile, daskscale
    >>> p = tempfile.mkdtemp() + "/d.zarr"
    >>> _ = daskscale.ingest(np.ones((6, 2)), p, chunk_rows=3)
    >>> open_url("file://" + p).X.shape
    (6, 2)
    """
    import zarr

    from daskscale.storage import layout
    from daskscale.storage.chunks import guard_chunks

    fs, root = _fs(url, storage_options)
    mapper = fs.get_mapper(root)
    try:
        ds = xr.open_zarr(mapper, consolidated=False, zarr_format=3)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise StoreError(f"{url} is not a Zarr store ({type(exc).__name__}: {exc})") from None
    attrs = ds.attrs.get(layout.ATTR)
    if not isinstance(attrs, dict) or "X" not in ds:
        raise StoreError(f"{url} is a Zarr group but not a daskscale store (no '{layout.ATTR}' attributes or X)")
    ds = guard_chunks(ds, zarr.open_group(mapper, mode="r"), url, fs=fs, root=root)
    n = attrs.get("n_rows_committed")
    if n is not None and ds.sizes[layout.SAMPLE] > n:
        ds = ds.isel({layout.SAMPLE: slice(0, int(n))})
    return ds


def ingest_url(url: str, store: str | os.PathLike, *, storage_options: dict[str, Any] | None = None,
               blocksize: int = 64 * 2**20, **ingest_kwargs: Any) -> Any:
    """Ingest CSV or Parquet files at an fsspec URL (a file, glob or directory) into ``store``.

    Parquet directories written by Spark (``_SUCCESS``, ``.crc`` files, ``key=value``
    partition folders) are read as one table, the partition keys becoming columns.
    Workers read the files themselves, so the URL must be reachable from every worker.

    Examples
    --------
    >>> import pandas as pd, tempfile, daskscale
    >>> d = tempfile.mkdtemp()
    >>> pd.DataFrame({"a": [1.0, 2.0], "y": [0, 1]}).to_csv(d + "/t.csv", index=False)
    >>> daskscale.info(ingest_url("file://" + d + "/t.csv", d + "/t.zarr", target="y")).n_rows
    2
    """
    import dask.dataframe as dd

    import daskscale

    fs, root = _fs(url, storage_options)
    if fs.isdir(root):
        files = [f for f in fs.find(root) if not os.path.basename(f).startswith(("_", "."))
                 and not f.endswith(".crc")]
    else:
        files = fs.glob(root) if any(c in root for c in "*?[") else ([root] if fs.exists(root) else [])
    if not files:
        raise StoreError(f"no input files at {url!r}")
    proto = url.split("://", 1)[0] + "://" if "://" in url else ""
    so = storage_options or {}
    if all(f.endswith((".parquet", ".parq", ".pq")) or "part-" in os.path.basename(f) and ".csv" not in f
           for f in files):
        df = dd.read_parquet(url if fs.isdir(root) else [proto + f for f in files], storage_options=so)
        df = _numeric_partition_keys(df)
    else:
        df = dd.read_csv([proto + f for f in files], blocksize=blocksize, storage_options=so)
    return daskscale.ingest(df, store, **ingest_kwargs)


def _numeric_partition_keys(df: Any) -> Any:
    """Hive partition keys (``day=3/``) arrive as categories of strings; make numeric ones numbers."""
    import pandas as pd

    for col in df.columns:
        if isinstance(df[col].dtype, pd.CategoricalDtype) and df[col].cat.known:
            cats = pd.Series(df[col].cat.categories.astype(str))
            if pd.to_numeric(cats, errors="coerce").notna().all():
                df[col] = df[col].astype(str).astype("float64")
    return df

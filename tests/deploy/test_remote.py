"""Reading stores and tables through fsspec URLs (file:// and memory:// stand in for hdfs:// and s3://).

There is no HDFS or S3 here: the same code path (fsspec.url_to_fs + mapper) serves them, but
only file:// (read by the workers) and memory:// (read in-process) are exercised.
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest

import daskscale
from daskscale.deploy.remote import ingest_url, open_url
from daskscale.errors import StoreError


def test_open_url_over_file_protocol_reads_on_workers(client, small_store):
    ds = open_url("file://" + str(small_store))
    local = daskscale.open_dataset(small_store)
    assert ds.X.shape == local.X.shape == (20_000, 10)
    np.testing.assert_allclose(ds.X.mean("sample").compute(), local.X.mean("sample").compute(), rtol=1e-6)


def test_open_url_over_memory_protocol(tmp_path):
    import fsspec

    src = daskscale.ingest(np.arange(40.0, dtype=np.float32).reshape(20, 2), tmp_path / "m.zarr", chunk_rows=5)
    mem = fsspec.filesystem("memory")
    mem.put(str(src), "/bucket/m.zarr", recursive=True)
    with dask.config.set(scheduler="sync"):  # memory:// lives in this process only
        ds = open_url("memory://bucket/m.zarr")
        assert float(ds.X.sum().compute()) == float(np.arange(40.0).sum())
    with pytest.raises(StoreError):
        open_url("memory://bucket/nothing.zarr")


def test_ingest_spark_style_parquet_directory_from_a_url(client, tmp_path):
    root = tmp_path / "spark_out"
    for part in (0, 1):
        d = root / f"day={part}"
        d.mkdir(parents=True)
        pd.DataFrame({"a": np.arange(5.0) + part, "b": np.ones(5), "label": [0, 1, 0, 1, 1]}).to_parquet(
            d / f"part-0000{part}-abc.snappy.parquet")
    (root / "_SUCCESS").write_text("")
    out = ingest_url("file://" + str(root), tmp_path / "s.zarr", target="label")
    info = daskscale.info(out)
    assert info.n_rows == 10
    ds = daskscale.open_dataset(out)
    assert float(ds.X.sel(feature="a").sum()) == float(np.arange(5.0).sum() * 2 + 5)


def test_missing_url_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no input files"):
        ingest_url("file://" + str(tmp_path / "none" / "*.csv"), tmp_path / "x.zarr")
    with pytest.raises(StoreError, match="fsspec"):
        open_url("nosuchproto://x/y.zarr")

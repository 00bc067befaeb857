"""Hive partition folders (``key=value``) of a Parquet directory become columns, as Spark means them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import daskscale
from daskscale.errors import SchemaError


def _write(root, folder, rows, start):
    d = root / folder
    d.mkdir(parents=True)
    pd.DataFrame({"x": np.arange(start, start + rows, dtype=float), "y": np.arange(rows) % 2}).to_parquet(
        d / f"part-{start:05d}.snappy.parquet", index=False)


def test_partition_keys_are_unescaped_typed_and_missing_as_spark_writes_them(tmp_path, client):
    root = tmp_path / "spark"
    _write(root, "ratio=0.5/region=north%20east", 3, 0)      # Spark escapes a space as %20
    _write(root, "ratio=1.5/region=__HIVE_DEFAULT_PARTITION__", 2, 3)  # Spark's null
    _write(root, "ratio=2/region=south", 4, 5)
    (root / "_SUCCESS").write_bytes(b"")
    store = daskscale.ingest(root, tmp_path / "h.zarr", target="y", categorical="encode")
    ds = daskscale.open_dataset(store)
    assert list(ds.feature.values) == ["x", "ratio", "region"]
    assert daskscale.info(store).attrs["categories"]["region"] == ["north east", "south"]
    x = ds.X.sel(feature="x").values
    order = np.argsort(x)
    ratio = ds.X.sel(feature="ratio").values[order]
    region = ds.X.sel(feature="region").values[order]
    np.testing.assert_array_equal(ratio, [0.5] * 3 + [1.5] * 2 + [2.0] * 4)  # a float key is a number
    np.testing.assert_array_equal(region[:3], 0)
    assert np.isnan(region[3:5]).all() and (region[5:] == 1).all()


def test_unreadable_first_parquet_file_is_named(tmp_path, client):
    root = tmp_path / "broken"
    (root / "day=1").mkdir(parents=True)
    (root / "day=1" / "part-00000.parquet").write_bytes(b"not parquet")
    _write(root, "day=2", 2, 0)
    with pytest.raises(SchemaError, match=r"part-00000\.parquet"):
        daskscale.ingest(root, tmp_path / "b.zarr", target="y")
    assert not (tmp_path / "b.zarr").exists()

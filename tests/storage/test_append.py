"""Appending rows to a store: visible only once committed, never half-written, bad rows refused."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import daskscale
from daskscale.errors import SchemaError
from daskscale.storage import layout
from daskscale.storage.append import append_rows, close_stream, committed_rows


@pytest.fixture
def store(tmp_path):
    X = np.arange(40, dtype=np.float32).reshape(10, 4)
    return daskscale.ingest(X, tmp_path / "s.zarr", y=np.arange(10) % 2, chunk_rows=4)


def _xy(path):
    ds = daskscale.open_dataset(path)
    return ds.X.values, ds.y.values


def test_append_grows_store_and_keeps_old_rows(store):
    X0, y0 = _xy(store)
    new = np.full((7, 4), 5.5)
    assert append_rows(store, new, np.ones(7, dtype=np.int64)) == 17
    X, y = _xy(store)
    np.testing.assert_array_equal(X[:10], X0)
    np.testing.assert_array_equal(X[10:], new.astype(np.float32))
    np.testing.assert_array_equal(y, np.r_[y0, np.ones(7)])
    assert committed_rows(store) == 17
    assert daskscale.storage.info(store).n_rows == 17


def test_rows_written_but_not_committed_are_invisible_and_overwritten(store):
    # the state a writer killed between "write" and "commit" leaves behind
    g = zarr.open_group(str(store), mode="r+")
    for name in ("X", "y"):
        g[name].resize((16,) + g[name].shape[1:])
    g["X"][10:16] = -1.0
    g["y"][10:16] = 7
    X, y = _xy(store)
    assert X.shape == (10, 4) and (X >= 0).all() and 7 not in y
    append_rows(store, np.full((2, 4), 9.0), np.zeros(2, dtype=np.int64))
    X, y = _xy(store)
    assert X.shape == (12, 4) and (X >= 0).all() and 7 not in y
    assert zarr.open_group(str(store))["X"].shape[0] == 12  # the debris was cut


@pytest.mark.parametrize("X, y, match", [
    (np.zeros((3, 5)), np.zeros(3, dtype=np.int64), "4 features"),
    (np.array([["a"] * 4]), np.zeros(1, dtype=np.int64), "numeric"),
    (np.zeros((3, 4)), np.zeros(2, dtype=np.int64), "3 rows"),
    (np.zeros((3, 4)), None, "pass y="),
    (np.zeros((3, 4)), np.array([0.5, 1.5, 2.5]), "dtype"),
])
def test_bad_rows_are_refused_and_store_unchanged(store, X, y, match):
    before = _xy(store)
    with pytest.raises(SchemaError, match=match):
        append_rows(store, X, y)
    after = _xy(store)
    np.testing.assert_array_equal(before[0], after[0])
    assert committed_rows(store) == 10


def test_close_stream_marks_store(store):
    close_stream(store)
    attrs = daskscale.storage.store_attrs(store)
    assert attrs["stream_closed"] is True and attrs["n_rows_committed"] == 10
    assert layout.ATTR in zarr.open_group(str(store)).attrs

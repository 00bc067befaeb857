"""``ingest(dtype=...)`` keeps float64 end to end; float32 warns, naming the columns it rounds away."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import daskscale
from daskscale.errors import SchemaError
from daskscale.storage.precision import (
    LOSS_THRESHOLD, DaskscaleWarning, PrecisionWarning, cast_loss, lossy_columns, merge_loss,
)

N = 3000


def _table(seed=0):
    r = np.random.default_rng(seed)
    return pd.DataFrame({
        "big": 1e12 + r.normal(size=N),                   # float32 keeps nothing of the spread
        "huge_int": 2**62 + r.integers(0, 2**40, N),      # rounds to multiples of 2**39
        "plain": r.normal(size=N),                       # harmless
        "count": r.integers(0, 1000, N),                 # exact in float32
        "y": r.integers(0, 2, N),
    })


SOURCES = {
    "csv": lambda df, tmp: _csv(df, tmp),
    "parquet": lambda df, tmp: _parquet(df, tmp),
    "pandas": lambda df, tmp: df,
    "numpy": lambda df, tmp: df.drop(columns="y").to_numpy(dtype=np.float64),
    "dask": lambda df, tmp: da.from_array(df.drop(columns="y").to_numpy(dtype=np.float64), chunks=(700, 2)),
    "npy": lambda df, tmp: _npy(df, tmp),
    "xarray": lambda df, tmp: xr.Dataset({c: ("row", df[c].to_numpy()) for c in df.columns}),
}


def _csv(df, tmp):
    df.to_csv(tmp / "t.csv", index=False)
    return tmp / "t.csv"


def _parquet(df, tmp):
    df.to_parquet(tmp / "t.parquet", index=False)
    return tmp / "t.parquet"


def _npy(df, tmp):
    np.save(tmp / "t.npy", df.drop(columns="y").to_numpy(dtype=np.float64))
    return tmp / "t.npy"


def _ingest(kind, src, path, **kw):
    names = ["big", "huge_int", "plain", "count"]
    if kind in ("numpy", "dask", "npy"):
        return daskscale.ingest(src, path, features=names, chunk_rows=1000, **kw)
    return daskscale.ingest(src, path, target="y", chunk_rows=1000, blocksize=20_000, **kw)


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_float32_default_warns_naming_the_lossy_columns(tmp_path, client, kind):
    src = SOURCES[kind](_table(), tmp_path)
    with pytest.warns(PrecisionWarning) as rec:
        store = _ingest(kind, src, tmp_path / "s.zarr")
    ours = [w for w in rec if issubclass(w.category, DaskscaleWarning)]
    assert len(ours) == 1, [str(w.message) for w in ours]  # one warning, listing every column
    msg = str(ours[0].message)
    assert "'big'" in msg and "'huge_int'" in msg and "'plain'" not in msg and "'count'" not in msg
    assert "dtype='float64'" in msg
    assert daskscale.open_dataset(store).X.dtype == np.float32


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_float64_is_kept_end_to_end(tmp_path, client, kind):
    df = _table(1)
    src = SOURCES[kind](df, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        store = _ingest(kind, src, tmp_path / "s.zarr", dtype="float64")
    ds = daskscale.open_dataset(store)
    assert ds.X.dtype == np.float64
    X = ds.X.values
    np.testing.assert_array_equal(X[:, 0], df["big"].to_numpy())  # every digit kept
    assert abs(X[:, 0].std() - df["big"].std(ddof=0)) < 1e-3
    np.testing.assert_array_equal(X[:, 1], df["huge_int"].to_numpy(dtype=np.float64))


def test_exact_data_gives_no_warning(tmp_path, client):
    df = _table()[["plain", "count", "y"]]
    df.to_csv(tmp_path / "ok.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        daskscale.ingest(tmp_path / "ok.csv", tmp_path / "ok.zarr", target="y")
        daskscale.ingest(df.to_numpy(dtype=np.float32), tmp_path / "f32.zarr")


@pytest.mark.parametrize("bad", ["int64", "float16", "complex128", "float65", None])
def test_dtype_must_be_float32_or_float64(tmp_path, bad):
    with pytest.raises(SchemaError, match="dtype must be"):
        daskscale.ingest(np.ones((4, 2)), tmp_path / "d.zarr", dtype=bad)


@pytest.mark.parametrize("column, lossy", [
    (1e12 + np.random.default_rng(0).normal(size=500), True),
    (2.0**62 + np.arange(500) * 2.0**30, True),
    (np.full(500, 1e12 + 0.3), False),                 # constant: error tiny next to |x|
    (np.random.default_rng(1).normal(size=500) * 1e-30, False),
    (np.r_[np.random.default_rng(2).normal(size=499), np.nan], False),
    (np.r_[np.zeros(499), 1e300], True),               # overflows float32
    (1e3 + np.random.default_rng(3).normal(size=500), False),  # error ~3e-5 of std 1: fine
    (1e5 + np.random.default_rng(3).normal(size=500), True),   # error ~4e-3 of std 1: flagged
    (1e7 + np.random.default_rng(4).normal(size=500), True),   # error ~0.5 of std 1
])
def test_loss_merges_over_any_split(column, lossy):
    whole = cast_loss(column[:, None])
    for cuts in ([250], [1, 2, 499], [100, 300, 301]):
        state = None
        for part in np.split(column[:, None], cuts):
            state = merge_loss(state, cast_loss(part))
        np.testing.assert_allclose(state, whole, rtol=1e-5, atol=1e-12)  # the spread to 5 digits
    assert bool(lossy_columns(whole, ["c"])) is lossy
    assert LOSS_THRESHOLD == 1e-4

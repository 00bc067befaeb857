"""describe on stores, frames and xarray; group-by; a user-defined reducer; bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import daskscale
from daskscale.errors import InputTypeError, SchemaError
from daskscale.reduce import Reducer, groupby_reduce, reduce


def test_describe_store_in_one_pass_matches_numpy(small_store, client):
    t = daskscale.describe(small_store, bins=8, correlation=True, pca=2, distinct=True, progress=True)
    X, y = daskscale.load_xy(small_store)
    Xn, yn = X.compute().astype(np.float64), y.compute()
    assert list(t.columns[:6]) == ["count", "missing", "mean", "std", "min", "25%"]
    np.testing.assert_allclose(t["mean"], Xn.mean(0), rtol=1e-9)
    np.testing.assert_allclose(t["std"], Xn.std(0, ddof=1), rtol=1e-9)
    np.testing.assert_allclose(t["max"], Xn.max(0))
    assert (t["count"] == 20_000).all() and (t["distinct"] > 10_000).all()
    ex = t.attrs["daskscale"]
    for j in (0, 9):
        assert abs((Xn[:, j] <= t["50%"].iloc[j]).mean() - 0.5) <= ex["quantile_rank_error"]
    np.testing.assert_allclose(ex["correlation"].to_numpy(), np.corrcoef(Xn.T), atol=1e-9)
    assert ex["histogram"]["counts"].sum(axis=1).tolist() == [20_000] * 10  # auto range covers all
    assert ex["classes"] == {k: int((yn == k).sum()) for k in np.unique(yn)}
    assert ex["pca"]["components"].shape == (2, 10)
    assert "<table" in t._repr_html_()


def test_describe_reads_each_chunk_once(small_store):
    from daskscale.reduce import Summary
    from daskscale.reduce.base import reduce_states
    from daskscale.storage.convert import as_data

    d = as_data(small_store)
    graph = dict(reduce_states(d, [Summary()], compute=False).__dask_graph__())
    per_chunk = [k for k in graph if isinstance(k, tuple)]  # array-chunk tasks (reads, maps)
    # One task per chunk reads, decompresses and maps it for every reducer: no separate reads.
    assert len(per_chunk) == d.X.numblocks[0] == 4
    assert all(k[0].startswith("map_all") for k in per_chunk)


def test_describe_xarray_gives_a_dataset(rng):
    time = pd.date_range("2020-01-01", periods=120, freq="D")
    ds = xr.Dataset({"temp": ("time", rng.normal(10, 2, 120)), "rain": ("time", rng.gamma(1, 2, 120))},
                    coords={"time": time}).chunk({"time": 50})
    out = daskscale.describe(ds, correlation=True, bins=5)
    assert isinstance(out, xr.Dataset)
    assert list(out.feature.values) == ["temp", "rain"]
    np.testing.assert_allclose(out["mean"].sel(feature="rain"), ds.rain.values.mean())
    assert out["correlation"].shape == (2, 2) and out["histogram_counts"].shape == (2, 5)
    assert "<div" in out._repr_html_()
    g = groupby_reduce(ds, ds.time.dt.month, func=("mean", "count"))
    ref = ds.groupby("time.month").mean()
    np.testing.assert_allclose(g["temp_mean"].values, ref["temp"].values)
    assert g["rain_count"].values.tolist() == [31, 29, 31, 29]


def test_groupby_on_the_target_of_a_store(small_store, client):
    g = groupby_reduce(small_store, "y", func=("mean", "var", "count"))
    X, y = (a.compute() for a in daskscale.load_xy(small_store))
    for label in g.index:
        np.testing.assert_allclose(g.loc[label, ("mean", "x3")], X[y == label, 3].astype(float).mean(), rtol=1e-5)
        assert g.loc[label, ("count", "x0")] == (y == label).sum()


def test_describe_dataframe_integers_and_nan():
    df = pd.DataFrame({"a": np.arange(10, dtype=np.int64) * 10**15, "b": [1.0, np.nan] * 5})
    t = daskscale.describe(df, quantiles=None, stats=("count", "missing", "sum", "mean"))
    assert t.loc["b", "missing"] == 5 and t.loc["b", "count"] == 5
    assert t.loc["a", "sum"] == pytest.approx(45 * 10**15, rel=1e-6)


class CountAbove(Reducer):
    """The user-defined reducer of the docs: how many values exceed a threshold, per column."""

    name = "above"
    float64 = True

    def __init__(self, threshold: float = 0.0):
        self.threshold = threshold

    def map(self, X, y=None):
        return (X > self.threshold).sum(axis=0)

    def merge(self, a, b):
        return a + b


def test_user_defined_reducer_fuses_with_describe(rng):
    X = rng.standard_normal((1000, 3))
    Xd = da.from_array(X, chunks=(170, 3))
    assert reduce(Xd, [CountAbove(1.0)])["above"].tolist() == (X > 1.0).sum(0).tolist()
    t = daskscale.describe(Xd, quantiles=None, extra=[CountAbove(0.5)])
    assert t.attrs["daskscale"]["extra"]["above"].tolist() == (X > 0.5).sum(0).tolist()


def test_bad_input_names_the_problem():
    with pytest.raises(SchemaError, match="'name'.*not numeric"):
        daskscale.describe(pd.DataFrame({"x": [1.0, 2.0], "name": ["a", "b"]}))
    with pytest.raises(SchemaError, match="no rows"):
        daskscale.describe(np.empty((0, 3)))
    with pytest.raises(InputTypeError, match=r"reducers\[1\].*not a daskscale Reducer"):
        reduce(np.ones((3, 2)), [CountAbove(), "mean"])
    with pytest.raises(SchemaError, match="unknown statistic 'median'"):
        daskscale.describe(np.ones((3, 2)), stats=("mean", "median"))
    with pytest.raises(SchemaError, match="quantiles"):
        daskscale.describe(np.ones((3, 2)), quantiles=(1.5,))
    with pytest.raises(InputTypeError, match="extra"):
        daskscale.describe(np.ones((3, 2)), extra=[object()])

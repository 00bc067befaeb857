"""Group-by through flox and daskscale reducers per group, checked against pandas/NumPy."""

from __future__ import annotations

import cloudpickle
import numpy as np
import pytest

from daskscale.errors import SchemaError
from daskscale.grid import anomalies, climatology, group_moments, group_reduce, resample, seasonal_stats
from daskscale.reduce import Moments


@pytest.fixture
def year(client):
    from daskscale.datasets.gridded import make_gridded

    return make_gridded(400, 6, 8, chunks=50, seed=5).persist()


def _pandas_monthly(da):
    frame = da.to_series().dropna().reset_index()
    frame["month"] = frame["time"].dt.month
    return frame


def test_monthly_climatology_matches_pandas(year):
    clim = climatology(year["sst"])
    assert clim.dims == ("lat", "lon", "month") or set(clim.dims) == {"month", "lat", "lon"}
    frame = _pandas_monthly(year["sst"])
    expected = frame.groupby(["month", "lat", "lon"])["sst"].mean()
    got = clim.transpose("month", "lat", "lon").to_series().dropna()
    np.testing.assert_allclose(got.values, expected.loc[got.index].values, rtol=1e-5)
    # the seasonal cycle is there: northern-hemisphere August warmer than February at high latitude
    north = clim.sel(lat=clim.lat.max())
    assert float(north.sel(month=8).mean()) > float(north.sel(month=2).mean()) + 2


def test_anomalies_subtract_the_month_of_each_day(year):
    clim = climatology(year["sst"])
    anom = anomalies(year["sst"], clim)
    assert anom.dims == year["sst"].dims and "month" not in anom.coords
    months = year["time"].dt.month.values
    expected = year["sst"].values - clim.transpose("month", "lat", "lon").values[months - 1]
    np.testing.assert_allclose(anom.values, expected, rtol=1e-5, atol=1e-5)


def test_anomalies_are_blockwise_and_never_expand_the_climatology(year):
    clim = climatology(year["sst"]).compute()                      # in memory, as a user would keep it
    anom = anomalies(year["sst"], clim)
    assert anom.chunks == year["sst"].chunks
    size = lambda a: len(cloudpickle.dumps(dict(a.data.__dask_graph__())))  # noqa: E731
    assert size(anom) < size(year["sst"]) + year["sst"].nbytes / 4  # no (time, lat, lon) copy of clim in the graph
    both = anomalies(year[["sst", "wind"]])
    np.testing.assert_allclose(both["sst"].values, anomalies(year["sst"]).values, rtol=1e-6)
    with pytest.raises(SchemaError, match="no month"):
        anomalies(year["sst"], clim.sel(month=[1, 2]))


def test_seasonal_stats_and_resample(year):
    s = seasonal_stats(year["wind"], funcs=("nanmean", "nanmax"))
    assert list(s["stat"].values) == ["mean", "max"] and list(s["season"].values) == ["DJF", "MAM", "JJA", "SON"]
    assert (s.sel(stat="max") >= s.sel(stat="mean")).where(year["ocean"]).fillna(True).all()
    monthly = resample(year["wind"], "MS")
    expected = year["wind"].isel(time=slice(0, 31)).mean("time")
    np.testing.assert_allclose(monthly.isel(time=0).values, expected.values, rtol=1e-5)


def test_group_moments_per_month_match_numpy(year):
    out = group_moments(year[["sst", "wind"]], "time.month", sample_dims=("time", "lat", "lon"), mask="ocean")
    assert list(out["group"].values) == list(range(1, 13)) and list(out["feature"].values) == ["sst", "wind"]
    frame = _pandas_monthly(year["sst"])
    np.testing.assert_allclose(out["mean"].sel(feature="sst").values, frame.groupby("month")["sst"].mean().values,
                               rtol=1e-5)
    np.testing.assert_allclose(out["var"].sel(feature="sst").values, frame.groupby("month")["sst"].var().values,
                               rtol=1e-4)
    assert out["count"].sel(feature="sst").sum() == frame.shape[0]


def test_group_reduce_by_label_array_and_bad_input(year):
    band = (year["lat"] > 0).rename("north")
    res = group_reduce(year["sst"], band, Moments(), sample_dims=("time", "lat", "lon"), mask="ocean")
    assert set(res) == {False, True}
    assert res[True]["moments"]["count"][0] + res[False]["moments"]["count"][0] == int(
        np.isfinite(year["sst"].values).sum())
    with pytest.raises(SchemaError, match="sample dim 'depth' not found"):
        group_reduce(year["sst"], "time.month", Moments(), sample_dims=("time", "depth"))
    with pytest.raises(SchemaError, match="dim 'when' not found"):
        climatology(year["sst"], dim="when")

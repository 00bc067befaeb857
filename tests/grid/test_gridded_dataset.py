"""make_gridded: reproducible whatever the chunking, land masked, written to Zarr and NetCDF."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from daskscale.datasets.gridded import make_gridded
from daskscale.errors import SchemaError


def test_same_values_whatever_the_chunking_and_land_is_nan():
    a = make_gridded(20, 10, 16, chunks=3, seed=2)
    b = make_gridded(20, 10, 16, chunks={"time": 20, "lat": 5}, seed=2)
    assert b.chunks["lat"] == (5, 5)
    for v in a.data_vars:
        np.testing.assert_array_equal(a[v].values, b[v].values)
    land = ~a["ocean"].values
    assert 0.2 < land.mean() < 0.4
    assert np.isnan(a["sst"].values[:, land]).all() and np.isfinite(a["sst"].values[:, ~land]).all()
    assert not np.array_equal(a["sst"].values, make_gridded(20, 10, 16, seed=3)["sst"].values, equal_nan=True)


def test_fields_are_spatially_correlated_and_trend_upwards():
    ds = make_gridded(730, 24, 32, seed=0, land_fraction=0.0)
    noise = ds["salinity"].isel(time=0).values - 35
    lag1 = np.corrcoef(noise[:, :-1].ravel(), noise[:, 1:].ravel())[0, 1]
    assert lag1 > 0.8                                          # neighbours alike: spatial correlation
    yearly = ds["sst"].mean(["lat", "lon"]).groupby("time.year").mean().values
    assert yearly[1] > yearly[0]


def test_written_to_zarr_and_netcdf(tmp_path, client):
    z = make_gridded(30, 8, 12, chunks=10, seed=1, store=tmp_path / "g.zarr")
    n = make_gridded(30, 8, 12, chunks=10, seed=1, store=tmp_path / "g.nc")
    dz = xr.open_zarr(z, consolidated=False)
    dn = xr.open_dataset(n)
    assert dz.chunks["time"] == (10, 10, 10)
    xr.testing.assert_identical(dz.load(), dn.load())
    assert dz["sst"].attrs["units"] == "degC"
    with pytest.raises(Exception, match="already exists"):
        make_gridded(30, 8, 12, chunks=10, store=tmp_path / "g.zarr")
    with pytest.raises(SchemaError, match=".zarr or .nc"):
        make_gridded(3, 2, 2, store=tmp_path / "g.csv")

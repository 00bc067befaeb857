"""Small gridded datasets for the grid tests (tiny: every test must stay fast)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from daskscale.datasets.gridded import make_gridded


@pytest.fixture
def grid(client):
    """60 days x 12 lat x 20 lon, chunks of 15 days, 30% land (NaN), computed once into memory."""
    return make_gridded(60, 12, 20, chunks=15, seed=3).persist()


@pytest.fixture
def tiny():
    """A hand-made (t, y, x) Dataset with NaNs, chunked on two dims, and a 'band' feature dim."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 4, 5))
    a[0, 0, 0] = np.nan
    a[3, 2, 4] = np.nan
    ds = xr.Dataset(
        {"a": (("t", "y", "x"), a), "b": (("t", "y", "x"), rng.normal(size=(6, 4, 5))),
         "w": (("band", "t", "y", "x"), rng.normal(size=(3, 6, 4, 5)))},
        coords={"t": np.arange(6) * 10, "y": np.arange(4) + 0.5, "x": np.arange(5) - 2.0, "band": ["r", "g", "b"],
                "keep": (("y", "x"), rng.random((4, 5)) > 0.3)},
        attrs={"title": "tiny"},
    )
    return ds.chunk({"t": 2, "y": 2})

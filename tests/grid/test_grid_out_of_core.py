"""Round trip on a gridded store larger than a worker's memory limit, on its own small cluster."""

from __future__ import annotations

import dask
import numpy as np
import xarray as xr
from sklearn.linear_model import SGDRegressor

import daskscale
from daskscale.datasets.gridded import make_gridded
from daskscale.grid import GridEstimator, to_zarr

LIMIT = 500 * 2**20


def test_fit_predict_unstack_on_a_store_larger_than_worker_memory(tmp_path):
    with daskscale.connect(n_workers=2, threads_per_worker=1, memory_limit=LIMIT, dashboard_address=None,
                           quiet=True):
        # the data is written by threads in this process: generating it is not what is tested, and
        # on these 500 MiB workers it sometimes got a worker restarted (4 variables of a block at once)
        with dask.config.set(scheduler="threads"):
            src = make_gridded(2200, 90, 180, chunks=100, seed=11, store=tmp_path / "ocean.zarr")
        ds = xr.open_zarr(src, consolidated=False)
        assert ds.nbytes > LIMIT * 1.05                         # larger than one worker may hold
        scaled = ds.assign(sst=ds.sst / 10, wind=ds.wind / 10, salinity=ds.salinity - 35)
        g = GridEstimator(SGDRegressor(random_state=0, eta0=0.001), sample_dims=("time", "lat", "lon"),
                          target="chlorophyll", mask="ocean", fit_mode="blocks").fit(scaled)
        out = to_zarr(g.predict(scaled), tmp_path / "pred.zarr")
        pred = xr.open_zarr(out, consolidated=False)["chlorophyll_predicted"]
        for c in ("time", "lat", "lon"):
            xr.testing.assert_identical(pred[c], ds[c])
        assert pred.chunks == ds["sst"].chunks
        day = pred.isel(time=1500).values
        ocean = ds["ocean"].values
        assert np.isnan(day[~ocean]).all() and np.isfinite(day[ocean]).all()
        truth = ds["chlorophyll"].isel(time=1500).values
        assert np.corrcoef(day[ocean], truth[ocean])[0, 1] > 0.5    # the model learnt from every block
        assert g.n_rows_fit_ == 2200 * int(ocean.sum())

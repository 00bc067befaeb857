"""Labelled gridded path vs the same data already flat; flox group-by vs xarray's default.

- ``GridFitPredict``: one pass of ``SGDRegressor.partial_fit`` over the blocks plus a blockwise
  predict, on a gridded Zarr store (``GridEstimator``: stack, mask land, predict back onto the
  grid) vs on the same ocean cells already flat in a daskscale store (same loop, same blocks).
  Goal: the labelled path costs <= 1.2x the flat path (``track_labelled_over_flat``).
- ``GroupbyClimatology``: monthly climatology of a (time, lat, lon) variable through flox
  (:func:`daskscale.grid.climatology`: ``method="map-reduce"``, ``engine="flox"``) vs xarray's
  default group-by, ``groupby("time.month").mean()`` with ``xr.set_options(use_flox=False)``
  (xarray uses flox by itself when it is installed; that path is timed too, for reference).
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from benchmarks.common import CACHE, client, scaled

DIMS = ("time", "lat", "lon")
N_LAT, N_LON = 90, 180


def _grid_store(n_time: int) -> str:
    """A gridded (time, lat, lon) store, 73-day chunks (~4.7 MB per variable chunk), generated once."""
    from daskscale.datasets.gridded import make_gridded

    grid = CACHE / f"grid-{n_time}x{N_LAT}x{N_LON}.zarr"
    if not grid.exists():
        make_gridded(n_time, N_LAT, N_LON, chunks=_chunk(n_time), seed=0, store=grid, overwrite=True)
    return str(grid)


def _chunk(n_time: int) -> int:
    return max(1, min(n_time, 73))


def _store(n_time: int) -> tuple[str, str]:
    """The gridded store and the same ocean cells as a flat daskscale store (one row chunk per grid chunk)."""
    import daskscale
    from daskscale.storage import is_store

    grid = _grid_store(n_time)
    flat = CACHE / f"grid-flat-{n_time}x{N_LAT}x{N_LON}.zarr"
    if not is_store(flat):
        ds = xr.open_zarr(grid, consolidated=False)
        rows = int(ds["ocean"].sum()) * _chunk(n_time)
        daskscale.ingest(ds, flat, sample_dims=DIMS, target="chlorophyll", chunk_rows=rows, overwrite=True)
    return grid, str(flat)


def _import_grid() -> None:
    """Workers import the grid modules before timing (the flat path's imports are warmed by common)."""
    import daskscale.grid.stack  # noqa: F401
    import daskscale.grid.unstack  # noqa: F401


def _partial_fit_blocks(est, X, y):
    """The flat path's loop: same prefetching of two blocks as GridEstimator's 'blocks' mode."""
    from distributed import get_client

    cl = get_client()
    n = X.numblocks[0]
    jobs = [cl.compute([X.blocks[i], y.blocks[i]]) for i in range(min(2, n))]
    for i in range(n):
        job = jobs.pop(0)
        if i + 2 < n:
            jobs.append(cl.compute([X.blocks[i + 2], y.blocks[i + 2]]))
        Xb, yb = [f.result() for f in job]
        est.partial_fit(Xb, yb)
    return est


class GridFitPredict:
    params = [730, 1460]
    param_names = ["days"]
    timeout = 1200

    def setup(self, days):
        client().run(_import_grid)
        self.n_time = scaled(days, 8)
        self.grid, self.flat = _store(self.n_time)

    def _labelled(self):
        from sklearn.linear_model import SGDRegressor

        from daskscale.grid import GridEstimator

        ds = xr.open_zarr(self.grid, consolidated=False)
        g = GridEstimator(SGDRegressor(random_state=0), sample_dims=DIMS, target="chlorophyll", mask="ocean",
                          fit_mode="blocks").fit(ds)
        float(g.predict(ds).sum().compute())
        return g.n_rows_fit_

    def _flat(self):
        from sklearn.linear_model import SGDRegressor

        import daskscale

        X, y = daskscale.load_xy(self.flat)
        est = _partial_fit_blocks(SGDRegressor(random_state=0), X, y)
        float(X.map_blocks(est.predict, drop_axis=1, dtype=np.float64).sum().compute())
        return X.shape[0]

    def time_labelled_fit_predict(self, days):
        self._labelled()

    def time_flat_fit_predict(self, days):
        self._flat()

    def track_labelled_rows_per_s(self, days):
        t = time.perf_counter()
        n = self._labelled()
        return n / (time.perf_counter() - t)

    def track_flat_rows_per_s(self, days):
        t = time.perf_counter()
        n = self._flat()
        return n / (time.perf_counter() - t)

    def track_labelled_over_flat(self, days):
        """Time ratio labelled / flat, the two measured back to back (goal <= 1.2)."""
        t0 = time.perf_counter()
        self._flat()
        t1 = time.perf_counter()
        self._labelled()
        return (time.perf_counter() - t1) / (t1 - t0)

    track_labelled_rows_per_s.unit = "rows/s"
    track_flat_rows_per_s.unit = "rows/s"
    track_labelled_over_flat.unit = "ratio"


def _warm_groupby() -> None:
    """Run each group-by once on a tiny array, so no timed call pays for importing flox (and its
    numpy_groupies) in the client and the workers: ~0.5 s, once per process, not per call."""
    import pandas as pd

    from daskscale.grid import climatology

    t = pd.date_range("2000-01-01", periods=62, freq="D")
    a = xr.DataArray(np.ones((62, 2), np.float32), dims=("time", "x"), coords={"time": t}).chunk({"time": 31})
    climatology(a).compute()
    for use_flox in (False, True):
        with xr.set_options(use_flox=use_flox):
            a.groupby("time.month").mean().compute()


class GroupbyClimatology:
    """Monthly climatology of ``sst`` (time-chunked, 73 days a chunk), three ways, same data."""

    params = [365, 3650]
    param_names = ["days"]
    timeout = 900

    def setup(self, days):
        client()
        self.grid = _grid_store(scaled(days, 8))
        _warm_groupby()

    def _sst(self):
        return xr.open_zarr(self.grid, consolidated=False)["sst"]

    def time_flox_climatology(self, days):
        """daskscale: flox map-reduce, engine 'flox' (:func:`daskscale.grid.climatology`)."""
        from daskscale.grid import climatology

        climatology(self._sst()).compute()

    def time_xarray_default_groupby(self, days):
        """The baseline: xarray's own group-by, flox switched off."""
        with xr.set_options(use_flox=False):
            self._sst().groupby("time.month").mean().compute()

    def time_xarray_flox_auto_groupby(self, days):
        """For reference: what xarray does out of the box when flox is installed (flox picks the method)."""
        with xr.set_options(use_flox=True):
            self._sst().groupby("time.month").mean().compute()

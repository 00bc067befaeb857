"""Labelled gridded path vs the same data already flat; flox group-by vs xarray's default.

- ``GridFitPredict``: one pass of ``SGDRegressor.partial_fit`` over the blocks plus a blockwise
  predict, on a gridded Zarr store (``GridEstimator``: stack, mask land, predict back onto the
  grid) vs on the same ocean cells already flat in a daskscale store (same loop, same blocks).
  Goal: the labelled path costs <= 1.2x the flat path (``track_labelled_over_flat``).
- ``GroupbyClimatology``: monthly climatology of a (time, lat, lon) variable through flox
  (:func:`daskscale.grid.climatology`) vs ``groupby("time.month").mean()`` with
  ``xr.set_options(use_flox=False)``.
"""

from __future__ import annotations

import time

import numpy as np
import xarray as xr

from benchmarks.common import CACHE, client, scaled

DIMS = ("time", "lat", "lon")
N_LAT, N_LON = 90, 180


def _store(n_time: int) -> tuple[str, str]:
    """A gridded store and the same ocean cells as a flat daskscale store, generated once."""
    import daskscale
    from daskscale.datasets.gridded import make_gridded
    from daskscale.storage import is_store

    grid = CACHE / f"grid-{n_time}x{N_LAT}x{N_LON}.zarr"
    flat = CACHE / f"grid-flat-{n_time}x{N_LAT}x{N_LON}.zarr"
    chunk = max(1, min(n_time, 73))
    if not grid.exists():
        make_gridded(n_time, N_LAT, N_LON, chunks=chunk, seed=0, store=grid, overwrite=True)
    if not is_store(flat):
        ds = xr.open_zarr(grid, consolidated=False)
        rows = int(ds["ocean"].sum()) * chunk
        daskscale.ingest(ds, flat, sample_dims=DIMS, target="chlorophyll", chunk_rows=rows, overwrite=True)
    return str(grid), str(flat)


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
        client()
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


class GroupbyClimatology:
    params = [1460]
    param_names = ["days"]
    timeout = 900

    def setup(self, days):
        client()
        self.grid, _ = _store(scaled(days, 8))

    def _sst(self):
        return xr.open_zarr(self.grid, consolidated=False)["sst"]

    def time_flox_climatology(self, days):
        from daskscale.grid import climatology

        climatology(self._sst()).compute()

    def time_xarray_default_groupby(self, days):
        with xr.set_options(use_flox=False):
            self._sst().groupby("time.month").mean().compute()

"""Group-by and resampling on dask-backed xarray: flox for the standard reductions, the daskscale
reducers per group for anything else.

- :func:`climatology` (per month, day of year, season, ...), :func:`anomalies`,
  :func:`seasonal_stats` and :func:`resample` run through flox
  (:func:`flox.xarray.xarray_reduce`): one blockwise map-reduce, no per-group loop;
- :func:`group_reduce` runs any :class:`daskscale.reduce.Reducer` (quantile sketches,
  histograms, covariance, :class:`~daskscale.reduce.Moments`, ...) once per group, in one pass,
  through the daskscale executor: :class:`Grouped` turns a reducer's state into a
  ``{group: state}`` dict, which is itself a mergeable state. Cells follow the grid's
  missing-cell rule (:mod:`daskscale.grid.stack`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from flox.xarray import xarray_reduce

from daskscale.errors import SchemaError
from daskscale.grid.stack import as_dataset, grid_layout, stack_to_data
from daskscale.reduce import Moments, Reducer, reduce

__all__ = ["climatology", "anomalies", "seasonal_stats", "resample", "Grouped", "group_reduce", "group_moments"]

XR = xr.Dataset | xr.DataArray
_SEASONS = ("DJF", "MAM", "JJA", "SON")


def _by(obj: XR, dim: str, freq: str) -> xr.DataArray:
    if dim not in obj.dims:
        raise SchemaError(f"dim {dim!r} not found; the data's dims are {list(obj.dims)}")
    try:
        return getattr(obj[dim].dt, freq).rename(freq)
    except (AttributeError, TypeError) as exc:
        raise SchemaError(f"cannot group {dim!r} by {freq!r} ({exc}); {dim!r} must hold datetimes and "
                          "freq be a datetime field such as 'month', 'dayofyear' or 'season'") from None


def climatology(obj: XR, *, dim: str = "time", freq: str = "month", func: str = "nanmean",
                method: str = "map-reduce", engine: str | None = "flox") -> XR:
    """Per-``freq`` statistic over ``dim`` (e.g. the mean of every January), through flox.

    The defaults are the fastest measured for a climatology of time-chunked data
    (``benchmarks/bench_grid.py``): ``method="map-reduce"`` (each time chunk reduced to its
    few months, then a tree reduction: the result, 12 x space, is small) and ``engine="flox"``
    (sort-based ``reduceat`` inside a chunk). flox's own choice for these labels (``cohorts``,
    ``engine="numpy"``) was ~2x slower, slower than xarray without flox.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> t = pd.date_range("2000-01-01", periods=730, freq="D")
    >>> da = xr.DataArray(np.asarray(t.month, float), dims="time", coords={"time": t}).chunk(100)
    >>> climatology(da).values.tolist()[:3]
    [1.0, 2.0, 3.0]
    """
    return xarray_reduce(obj, _by(obj, dim, freq), func=func, dim=dim, method=method, engine=engine)


def _minus_group(values: np.ndarray, codes: np.ndarray, clim: np.ndarray) -> np.ndarray:
    idx = codes[..., None]
    nd = max(idx.ndim, clim.ndim)  # apply_ufunc leaves leading broadcast axes out
    idx = idx.reshape((1,) * (nd - idx.ndim) + idx.shape)
    clim = clim.reshape((1,) * (nd - clim.ndim) + clim.shape)
    return values - np.take_along_axis(clim, idx, axis=-1)[..., 0]


def anomalies(obj: XR, clim: XR | None = None, *, dim: str = "time", freq: str = "month") -> XR:
    """``obj`` minus its climatology (lazy; computed with :func:`climatology` if not given).

    Blockwise: each block of ``obj`` subtracts the groups of its own cells; the climatology is
    never expanded along ``dim`` (``clim.sel(month=...)`` would build an array the size of
    ``obj`` and, for an in-memory ``clim``, put it into the task graph).
    """
    clim = climatology(obj, dim=dim, freq=freq) if clim is None else clim
    if isinstance(obj, xr.Dataset):
        return xr.Dataset({v: anomalies(obj[v], clim[v], dim=dim, freq=freq) for v in clim.data_vars},
                          attrs=obj.attrs)
    labels = _by(obj, dim, freq)
    codes = clim.indexes[freq].get_indexer(labels.values)
    if (codes < 0).any():
        missing = sorted(set(labels.values[codes < 0].tolist()))
        raise SchemaError(f"the climatology has no {freq} {missing[:5]}; compute it over data covering them")
    codes = xr.DataArray(codes, dims=(dim,), coords={dim: obj[dim]})
    if obj.chunks:
        codes = codes.chunk({dim: obj.chunksizes[dim]})
    clim = clim.drop_vars([c for c in clim.coords if c != freq and c not in obj.coords], errors="ignore")
    if clim.chunks:
        clim = clim.chunk({freq: -1})
    return xr.apply_ufunc(_minus_group, obj, codes, clim, input_core_dims=[[], [], [freq]],
                          dask="parallelized", output_dtypes=[np.result_type(obj.dtype, clim.dtype)], keep_attrs=True)


def seasonal_stats(obj: XR, *, dim: str = "time", funcs: Sequence[str] = ("nanmean", "nanstd", "nanmin", "nanmax")) -> XR:
    """Statistics per season (DJF, MAM, JJA, SON), stacked along a ``stat`` dim, through flox."""
    by = _by(obj, dim, "season")
    parts = [xarray_reduce(obj, by, func=f, dim=dim, expected_groups=np.array(_SEASONS), method="map-reduce",
                           engine="flox").sel(season=list(_SEASONS))
             for f in funcs]  # flox sorts the groups; put them back in calendar order
    return xr.concat(parts, dim=pd.Index([f.removeprefix("nan") for f in funcs], name="stat"))


def resample(obj: XR, freq: str, *, dim: str = "time", func: str = "mean") -> XR:
    """Resample ``dim`` to ``freq`` (e.g. ``"MS"``, ``"QS-DEC"``) with ``func``, through flox."""
    if dim not in obj.dims:
        raise SchemaError(f"dim {dim!r} not found; the data's dims are {list(obj.dims)}")
    with xr.set_options(use_flox=True):
        return getattr(obj.resample({dim: freq}), func)()


class Grouped(Reducer):
    """Any reducer, per group: the state is ``{group code: inner state}``, merged key by key.

    Examples
    --------
    >>> import numpy as np
    >>> from daskscale.reduce import Moments
    >>> g = Grouped(Moments())
    >>> s = g.merge(g.map(np.array([[1.0], [5.0]]), np.array([0, 1])), g.map(np.array([[3.0]]), np.array([0])))
    >>> {k: v["mean"].tolist() for k, v in g.finalize(s).items()}
    {0: [2.0], 1: [5.0]}
    """

    needs_y = True

    def __init__(self, reducer: Reducer):
        self.reducer = reducer
        self.name = f"{reducer.name}_by_group"

    def map(self, X: np.ndarray, y: np.ndarray | None = None) -> dict[int, Any]:
        codes = np.asarray(y)
        return {int(g): self.reducer.map(X[codes == g]) for g in np.unique(codes)}

    def merge(self, a: dict[int, Any], b: dict[int, Any]) -> dict[int, Any]:
        out = dict(a)
        for g, s in b.items():
            out[g] = self.reducer.merge(out[g], s) if g in out else s
        return out

    def finalize(self, state: dict[int, Any]) -> dict[int, Any]:
        return {g: self.reducer.finalize(s) for g, s in sorted(state.items())}

    def empty(self, n_features: int) -> dict[int, Any]:
        return {}


def _codes(obj: xr.Dataset, by: Any, sample_dims: tuple[str, ...]) -> tuple[xr.DataArray, np.ndarray]:
    if isinstance(by, str):
        dim, _, field = by.partition(".")
        lab = _by(obj, dim, field) if field else obj[dim]
    elif isinstance(by, xr.DataArray):
        lab = by
    else:
        raise SchemaError(f"by must be 'dim.field' (e.g. 'time.month'), a coordinate name or a DataArray, not {by!r}")
    bad = [d for d in lab.dims if d not in sample_dims]
    if bad:
        raise SchemaError(f"group labels have dim {bad[0]!r}, which is not a sample dim {list(sample_dims)}")
    codes, uniques = pd.factorize(np.asarray(lab.values).reshape(-1), sort=True)
    return xr.DataArray(codes.reshape(lab.shape), dims=lab.dims, coords={d: obj[d] for d in lab.dims}), np.asarray(uniques)


def group_reduce(obj: XR, by: Any, reducers: Any, *, sample_dims: Any, feature_dim: str | None = None,
                 mask: Any = None) -> dict[Any, dict[str, Any]]:
    """Run daskscale reducers per group over the grid's cells, in one pass over the data.

    Parameters
    ----------
    obj
        Gridded Dataset or DataArray (features as in :func:`~daskscale.grid.stack.stack_to_data`).
    by
        ``"time.month"``, a coordinate name, or a DataArray of labels over some sample dims.
    reducers
        A reducer or a list of reducers (each run per group).
    sample_dims, feature_dim, mask
        As for :func:`~daskscale.grid.stack.stack_to_data`.

    Returns
    -------
    dict
        ``{group label: {reducer name: result}}``, labels sorted.
    """
    ds = as_dataset(obj)
    sdims = (sample_dims,) if isinstance(sample_dims, str) else tuple(sample_dims)
    for d in sdims:
        if d not in ds.dims:
            raise SchemaError(f"sample dim {d!r} not found; the data's dims are {list(ds.dims)}")
    codes, labels = _codes(ds, by, sdims)
    key = "__daskscale_group__"
    feats = [v for v in ds.data_vars if v != (mask if isinstance(mask, str) else None)]
    data = stack_to_data(ds.assign({key: codes}), sample_dims=sdims, feature_dim=feature_dim, target=key,
                         mask=mask, features=feats)
    rs = [reducers] if isinstance(reducers, Reducer) else list(reducers)
    out = reduce(data, [Grouped(r) for r in rs])
    result: dict[Any, dict[str, Any]] = {lab: {} for lab in labels}
    for r in rs:
        for code, value in out[f"{r.name}_by_group"].items():
            result[labels[code]][r.name] = value
    return {k: v for k, v in result.items() if v}


def group_moments(obj: XR, by: Any, *, sample_dims: Any, feature_dim: str | None = None, mask: Any = None) -> xr.Dataset:
    """Count, mean, var and std of every feature per group over all cells (daskscale Moments).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"a": (("t", "x"), [[1.0, 3.0], [10.0, np.nan]])}, coords={"t": ["u", "v"]}).chunk({"t": 1})
    >>> group_moments(ds, "t", sample_dims=("t", "x"))["mean"].values.tolist()
    [[2.0], [10.0]]
    """
    res = group_reduce(obj, by, Moments(), sample_dims=sample_dims, feature_dim=feature_dim, mask=mask)
    ds = as_dataset(obj)
    names = grid_layout(ds, sample_dims=sample_dims, feature_dim=feature_dim, mask=mask).feature_names
    groups = list(res)
    stats = {k: (("group", "feature"), np.stack([np.asarray(res[g]["moments"][k], dtype=float) for g in groups]))
             for k in ("count", "mean", "var", "std")}
    return xr.Dataset(stats, coords={"group": np.asarray(groups), "feature": names})

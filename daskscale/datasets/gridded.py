"""A realistic gridded (time, lat, lon) ocean dataset of any size, generated chunk by chunk.

Variables (float32, NaN over land):

- ``sst`` (deg C): warm tropics, cold poles, a seasonal cycle opposite in the two hemispheres
  and stronger at high latitude, a warming trend, spatially correlated weather noise;
- ``wind`` (m/s): stronger at mid latitudes, seasonal, correlated noise;
- ``salinity`` (PSU): correlated noise, fresher where warm;
- ``chlorophyll`` (log10 mg/m3), the target: a bell-shaped response to ``sst`` (peaks near
  14 C), a ``wind`` x ``salinity`` interaction and noise, so a linear model explains only part.

Coordinates: ``time`` (daily), ``lat``, ``lon`` and the boolean ``ocean`` (lat, lon) mask (a
fixed land mask drawn from a smooth random field). Each day's fields are drawn from the seed
and the day's index, so any chunking gives the same values and nothing is held in memory
beyond one chunk per task.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from daskscale.errors import SchemaError
from daskscale.storage.atomic import atomic_dir, atomic_file
from daskscale.storage.layout import default_compressor

__all__ = ["make_gridded", "GRIDDED_VARIABLES"]

GRIDDED_VARIABLES = {
    "sst": ("sea surface temperature", "degC"),
    "wind": ("wind speed at 10 m", "m s-1"),
    "salinity": ("sea surface salinity", "PSU"),
    "chlorophyll": ("log10 chlorophyll-a concentration", "log10(mg m-3)"),
}
_COARSE = 8  # grid cells per noise node: sets the spatial correlation length


def _interp_matrix(n: int, n_nodes: int) -> np.ndarray:
    """Linear interpolation weights from ``n_nodes`` evenly spaced nodes to ``n`` points."""
    pos = np.linspace(0, n_nodes - 1, n)
    lo = np.clip(np.floor(pos).astype(int), 0, max(0, n_nodes - 2))
    frac = pos - lo
    w = np.zeros((n, n_nodes))
    w[np.arange(n), lo] = 1 - frac
    if n_nodes > 1:
        w[np.arange(n), lo + 1] += frac
    return w


def _smooth(seed: int, key: int, days: np.ndarray, n_lat: int, n_lon: int) -> np.ndarray:
    """Spatially correlated unit noise, one field per day, reproducible from (seed, key, day)."""
    a, b = n_lat // _COARSE + 2, n_lon // _COARSE + 2
    coarse = np.stack([np.random.default_rng([seed, key, int(d)]).standard_normal((a, b)) for d in days])
    wl, wn = _interp_matrix(n_lat, a), _interp_matrix(n_lon, b)
    field = np.matmul(wl, coarse) @ wn.T  # two small matmuls: O(days x lat x lon x nodes)
    return field / np.sqrt((wl**2).sum(1).mean() * (wn**2).sum(1).mean())


def _ocean(seed: int, n_lat: int, n_lon: int, land_fraction: float) -> np.ndarray:
    field = _smooth(seed, 99, np.array([0]), n_lat, n_lon)[0]
    return field < np.quantile(field, 1 - land_fraction) if land_fraction > 0 else np.ones((n_lat, n_lon), bool)


def _block(seed: int, t0: int, t1: int, lat: np.ndarray, ocean: np.ndarray) -> np.ndarray:
    """All four variables for days ``t0:t1`` (array of shape (4, days, lat, lon), float32)."""
    days = np.arange(t0, t1)
    n_lat, n_lon = ocean.shape
    phase = 2 * np.pi * days / 365.25
    years = days / 365.25
    alat = np.abs(lat)[None, :, None] / 90.0
    hemi = np.sign(lat)[None, :, None] + (lat == 0)[None, :, None]
    season = np.cos(phase - 2 * np.pi * 225 / 365.25)[:, None, None] * hemi  # northern summer peaks mid August
    sst = (28 - 26 * alat**1.5 + 5 * alat * season + 0.03 * years[:, None, None]
           + 0.8 * _smooth(seed, 1, days, n_lat, n_lon))
    wind = np.clip(6 + 5 * np.sin(np.pi * alat) + 1.5 * season + 1.5 * _smooth(seed, 2, days, n_lat, n_lon), 0, None)
    sal = 35 + 0.7 * _smooth(seed, 3, days, n_lat, n_lon) - 0.03 * (sst - 15)
    eps = np.stack([np.random.default_rng([seed, 4, int(d)]).standard_normal((n_lat, n_lon)) for d in days])
    chl = (-0.6 + 1.0 * np.exp(-(((sst - 14) / 6) ** 2)) + 0.25 * np.tanh(wind - 7) * (sal - 35)
           + 0.04 * (wind - 7) + 0.08 * eps)
    out = np.stack([sst, wind, sal, chl]).astype(np.float32)
    out[:, :, ~ocean] = np.nan
    return out


def _chunk_sizes(chunks: Any, n_time: int, n_lat: int, n_lon: int) -> tuple[int, dict[str, Any]]:
    if chunks is None:
        per_day = n_lat * n_lon * 4
        return max(1, min(n_time, (16 * 2**20) // max(1, per_day))), {}
    if isinstance(chunks, int):
        return chunks, {}
    if isinstance(chunks, dict):
        bad = set(chunks) - {"time", "lat", "lon"}
        if bad:
            raise SchemaError(f"chunks may only name 'time', 'lat', 'lon', not {sorted(bad)}")
        t = int(chunks.get("time", n_time))
        return t, {k: v for k, v in chunks.items() if k != "time"}
    raise SchemaError(f"chunks must be an int (days per chunk) or a dict, not {type(chunks).__name__}")


def make_gridded(n_time: int, n_lat: int, n_lon: int, *, chunks: Any = None, seed: int = 0,
                 store: str | os.PathLike | None = None, land_fraction: float = 0.3,
                 start: str = "2000-01-01", overwrite: bool = False) -> xr.Dataset | Path:
    """A gridded ocean dataset: a lazy :class:`xarray.Dataset`, or a written Zarr/NetCDF path.

    Parameters
    ----------
    n_time, n_lat, n_lon
        Grid size (days, latitudes from -80 to 80, longitudes from 0 to 360).
    chunks
        Days per chunk (int), or a dict over ``time``/``lat``/``lon``; default ~16 MiB chunks.
    seed
        Same seed, same data, whatever the chunking.
    store
        ``None`` (return the lazy Dataset), or a path ending in ``.zarr`` (written chunk by chunk
        by the active Dask scheduler) or ``.nc`` (NetCDF4); written atomically.
    land_fraction
        Fraction of grid cells that are land (NaN in every variable).

    Examples
    --------
    >>> ds = make_gridded(40, 16, 32, chunks=10, seed=0)
    >>> dict(ds.sizes), list(ds.data_vars), ds.chunks["time"]
    ({'time': 40, 'lat': 16, 'lon': 32}, ['sst', 'wind', 'salinity', 'chlorophyll'], (10, 10, 10, 10))
    >>> bool(ds.sst.isel(time=0).where(~ds.ocean).isnull().all())
    True
    """
    if min(n_time, n_lat, n_lon) <= 0:
        raise SchemaError(f"grid sizes must be positive, got ({n_time}, {n_lat}, {n_lon})")
    if not 0 <= land_fraction < 1:
        raise SchemaError(f"land_fraction must be in [0, 1), got {land_fraction}")
    t_chunk, other = _chunk_sizes(chunks, n_time, n_lat, n_lon)
    lat = np.linspace(-80, 80, n_lat)
    lon = np.linspace(0, 360, n_lon, endpoint=False)
    ocean = _ocean(seed, n_lat, n_lon, land_fraction)
    parts = []
    for t0 in range(0, n_time, t_chunk):
        t1 = min(n_time, t0 + t_chunk)
        d = dask.delayed(_block, pure=True)(seed, t0, t1, lat, ocean)
        parts.append(da.from_delayed(d, shape=(4, t1 - t0, n_lat, n_lon), dtype=np.float32))
    allvars = da.concatenate(parts, axis=1)
    coords = {"time": pd.date_range(start, periods=n_time, freq="D"), "lat": lat, "lon": lon,
              "ocean": (("lat", "lon"), ocean)}
    ds = xr.Dataset({name: (("time", "lat", "lon"), allvars[i], {"long_name": ln, "units": u})
                     for i, (name, (ln, u)) in enumerate(GRIDDED_VARIABLES.items())}, coords=coords)
    ds["lat"].attrs = {"units": "degrees_north", "long_name": "latitude"}
    ds["lon"].attrs = {"units": "degrees_east", "long_name": "longitude"}
    ds["ocean"].attrs = {"long_name": "ocean mask (True = ocean, False = land)"}
    ds.attrs = {"title": "daskscale synthetic gridded ocean dataset", "source": f"make_gridded(seed={seed})"}
    if other:
        ds = ds.chunk(other)
    if store is None:
        return ds
    path = str(store)
    if path.rstrip("/").endswith(".zarr"):
        with atomic_dir(path, overwrite=overwrite) as tmp:
            # Blosc lz4 + shuffle: the project's default codec (fast to decode, see storage.layout)
            enc = {v: {"compressors": [default_compressor()]} for v in ds.data_vars}
            ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False, encoding=enc)
        return Path(path)
    if path.endswith((".nc", ".nc4")):
        if Path(path).exists() and not overwrite:
            raise SchemaError(f"{path} already exists; pass overwrite=True to replace it")
        with atomic_file(path) as tmp:
            ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        return Path(path)
    raise SchemaError(f"store must end in .zarr or .nc, got {path!r}")

"""Rows -> the original grid: outputs become xarray objects with the grid's coordinates.

Two ways back, both lazy and with the grid's own chunks (one output block per grid block):

- :func:`unstack` scatters a row array (one row chunk per grid block, as made by
  :func:`daskscale.grid.stack.stack_to_data`) back into the grid, one task per block; masked
  cells are NaN. Under the "mask" rule a block task reads only the mask block; under the
  "finite" rule the validity of each block is recomputed from the features, so the features
  are read once more;
- :func:`apply_to_grid` runs a function on each grid block's rows and writes its output
  straight into the block: the estimator's ``predict`` path, one task per block, no row
  counts needed and no gather.

:func:`to_zarr` writes the result in one call, atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import dask
import dask.array as da
import numpy as np
import xarray as xr

from daskscale.adapters.dask import array_from_tasks
from daskscale.errors import SchemaError
from daskscale.grid.stack import GridData, GridLayout, expand, finite_cells, gather_rows
from daskscale.storage.atomic import atomic_dir

__all__ = ["unstack", "apply_to_grid", "to_zarr", "fill_dtype"]


def fill_dtype(dtype: Any) -> np.dtype:
    """The dtype of a gridded output: floats stay, ints/bools become float64 (NaN), others object."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    return np.dtype(object)


def _scatter(values: np.ndarray, valid: np.ndarray, shape: tuple[int, ...], n_out: int | None,
             dtype: np.dtype) -> np.ndarray:
    tail = (n_out,) if n_out else ()
    out = np.full(valid.shape + tail, np.nan if dtype.kind == "f" else None, dtype=dtype)
    out[valid] = values.reshape((-1,) + tail)
    return out.reshape(shape + tail)


def _unstack_mask_block(mask_axes, shape, n_out, dtype, values, mask):
    valid = expand(np.asarray(mask, dtype=bool), mask_axes, shape).reshape(-1)
    return _scatter(np.asarray(values), valid, shape, n_out, dtype)


def _unstack_finite_block(spec, target_axes, shape, n_out, dtype, values, *blocks):
    return _scatter(np.asarray(values), finite_cells(spec, target_axes, *blocks), shape, n_out, dtype)


def _layout_of(layout: GridLayout | GridData) -> GridLayout:
    lay = layout.layout if isinstance(layout, GridData) else layout
    if not isinstance(lay, GridLayout) or lay.counts is None:
        raise SchemaError("unstack needs the GridData (or its .layout) returned by stack_to_data")
    return lay


def unstack(values: Any, layout: GridLayout | GridData, *, name: str | None = None,
            extra_dim: tuple[str, Any] | None = None, attrs: dict[str, Any] | None = None) -> xr.DataArray:
    """Put a row array (``n_rows`` or ``n_rows x k``) back on the grid it was stacked from.

    Parameters
    ----------
    values
        Dask or NumPy array with one row per kept cell, in the order of
        :func:`~daskscale.grid.stack.stack_to_data` (e.g. ``model.predict(data.X)``).
    layout
        The :class:`GridData` (or its ``.layout``).
    name, attrs
        Name and attributes of the result (default attributes: the source's).
    extra_dim
        ``(dim, labels)`` for a 2-D ``values`` (e.g. ``("class", classes)``); ``labels`` may be None.

    Returns
    -------
    xarray.DataArray
        Dims ``sample_dims`` (+ ``extra_dim``), the grid's coordinates and chunks; masked cells NaN.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from daskscale.grid.stack import stack_to_data
    >>> ds = xr.Dataset({"a": (("t", "x"), [[1.0, np.nan], [3.0, 4.0]])}, coords={"t": [10, 20]}).chunk({"t": 1})
    >>> d = stack_to_data(ds, sample_dims=("t", "x"))
    >>> unstack(d.X[:, 0] * 2, d).values.tolist()
    [[2.0, nan], [6.0, 8.0]]
    """
    lay = _layout_of(layout)
    rows = tuple(int(c) for c in lay.counts.reshape(-1))
    v = values if isinstance(values, da.Array) else da.from_array(np.asarray(values), chunks=(rows,) + np.shape(values)[1:])
    if v.shape[0] != sum(rows):
        raise SchemaError(f"values have {v.shape[0]} rows but the grid has {sum(rows)} kept cells")
    if v.ndim > 2:
        raise SchemaError(f"values must be 1-D or 2-D (rows, k), got shape {v.shape}")
    n_out = int(v.shape[1]) if v.ndim == 2 else None
    v = v.rechunk((rows,) + ((n_out,) if n_out else ()))
    if n_out and extra_dim is None:
        extra_dim = ("output", None)
    dtype = fill_dtype(v.dtype)
    # under the mask rule the kept cells are the mask's: the features are not read again
    masked = lay.mask is not None
    spec, m_axes, t_axes = lay.block_spec(with_target=True)
    args = [lay.mask] if masked else [*lay.arrays, *([lay.target] if lay.target is not None else [])]
    token = dask.base.tokenize(v, *args)
    name_ = f"grid-unstack-{token}"
    head: tuple[Any, ...] = (_unstack_mask_block, m_axes) if masked else (_unstack_finite_block, spec, t_axes)
    dsk: dict[Any, Any] = {}
    for i, idx in enumerate(np.ndindex(*lay.numblocks)):
        keys = lay.block_keys(idx, with_features=not masked, with_target=not masked)
        vkey = (v.name, i, 0) if n_out else (v.name, i)
        dsk[(name_, *idx) + ((0,) if n_out else ())] = (*head, lay.block_shape(idx), n_out, dtype, vkey, *keys)
    out = array_from_tasks(name_, dsk, [v, *args], lay.chunks + (((n_out,),) if n_out else ()), dtype)
    return lay.template(out, name=name, extra_dim=extra_dim if n_out else None, attrs=attrs)


def _apply_block(func, spec, mask_axes, n_out, dtype, *blocks):
    rows, _, lead, keep = gather_rows(spec, mask_axes, None, False, None, *blocks)
    tail = (n_out,) if n_out else ()
    values = func(rows) if len(rows) else np.empty((0,) + tail, dtype=dtype)
    shape = blocks[0].shape[1:] if spec[0] else blocks[0].shape
    # scatter per leading slice (e.g. per day under a (lat, lon) mask): no block-sized index
    out = np.full((lead, keep.size) + tail, np.nan if dtype.kind == "f" else None, dtype=dtype)
    out[:, keep] = np.asarray(values).reshape((lead, -1) + tail)
    return out.reshape(shape + tail)


def apply_to_grid(func: Callable[[np.ndarray], np.ndarray], layout: GridLayout, *, dtype: Any,
                  n_out: int | None = None, name: str | None = None, extra_dim: tuple[str, Any] | None = None,
                  attrs: dict[str, Any] | None = None) -> xr.DataArray:
    """Run ``func(rows) -> values`` on every grid block's kept cells; NaN elsewhere.

    One task per grid block reads the block, drops masked or non-finite cells, calls
    ``func`` (e.g. a fitted model's ``predict``) and scatters the result into the block.
    Row counts are not needed, so no counting pass runs.
    """
    k = len(layout.sample_dims)
    ind = tuple(range(1, k + 1))
    spec, m_axes, _ = layout.block_spec(with_target=False)
    dtype = fill_dtype(dtype)
    out_ind = ind + ((k + 1,) if n_out else ())
    out = da.blockwise(_apply_block, out_ind, func, None, spec, None, m_axes, None, n_out, None, dtype, None,
                       *layout.blockwise_args(with_target=False), dtype=dtype, concatenate=True,
                       new_axes={k + 1: n_out} if n_out else None, meta=np.empty((0,) * len(out_ind), dtype))
    return layout.template(out, name=name, extra_dim=extra_dim if n_out else None, attrs=attrs)


def to_zarr(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False,
            name: str | None = None) -> Path:
    """Write a gridded result to a Zarr v3 store in one call, chunk by chunk and atomically.

    The store appears at ``path`` only when complete. A DataArray is stored under its name
    (or ``name``, default ``"prediction"``).

    Examples
    --------
    >>> import tempfile, xarray as xr, numpy as np
    >>> p = to_zarr(xr.DataArray(np.ones((2, 3)), dims=("y", "x"), name="p"), tempfile.mkdtemp() + "/p.zarr")
    >>> xr.open_zarr(p, consolidated=False)["p"].shape
    (2, 3)
    """
    ds = obj.to_dataset(name=name or obj.name or "prediction") if isinstance(obj, xr.DataArray) else obj
    with atomic_dir(path, overwrite=overwrite) as tmp:
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False)
    return Path(path)

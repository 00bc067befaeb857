"""Gridded xarray data -> rows (samples) x features, lazily and chunk-aligned.

Every block of the grid (one chunk along each sample dim) becomes one row block, in
block-major order: block ``(i, j, ...)`` of the grid, enumerated in C order, is row block
``n``, and inside a block the cells are in C order of ``sample_dims``. Nothing is rechunked
along the sample dims (variables that disagree on chunks are aligned to the first one).

**Missing-cell rule** (documented once, applied everywhere in :mod:`daskscale.grid`):

- without a ``mask``, a cell is a sample iff every feature (and the target, when given) is
  finite. Row counts per block are then unknown until the data is read, so stacking runs
  one counting pass over the features (one extra read of the data, no data kept);
- with a ``mask`` (a boolean variable, coordinate or DataArray over some of the sample dims,
  ``True`` = keep), a cell is a sample iff the mask is ``True``: row counts come from the
  small mask alone, with no pass over the data. A kept cell with a NaN feature/target is an
  error (:class:`~daskscale.errors.SchemaError` naming the block): the mask must cover every
  missing cell.

Masked cells never reach a model; :mod:`daskscale.grid.unstack` puts NaN back in them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, Sequence

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.highlevelgraph import HighLevelGraph

from daskscale.errors import InputTypeError, SchemaError
from daskscale.storage.convert import Data

__all__ = ["GridLayout", "GridData", "stack_to_data", "grid_layout", "block_rows", "as_dataset"]


@dataclass
class GridLayout:
    """How a grid maps to rows: the aligned dask arrays, the mask rule, the row counts."""

    sample_dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[tuple[int, ...], ...]
    feature_names: list[str]
    arrays: list[da.Array]          # one per variable, dims (sample_dims) or (feature_dim, sample_dims)
    wide: list[bool]                # True for a variable carrying ``feature_dim`` (leading axis)
    dtype: np.dtype
    mask: da.Array | None = None    # bool, dims sample_dims, same chunks
    target: da.Array | None = None
    target_name: str | None = None
    coords: dict[str, Any] = field(default_factory=dict, repr=False)
    attrs: dict[str, Any] = field(default_factory=dict, repr=False)
    counts: np.ndarray | None = field(default=None, repr=False)  # valid cells per block

    @property
    def numblocks(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.chunks)

    @property
    def rule(self) -> str:
        return "mask" if self.mask is not None else "finite"

    def block_args(self, *, with_target: bool) -> list[da.Array]:
        """The arrays a block task receives, in the order :func:`block_rows` expects."""
        extra = [self.mask] if self.mask is not None else []
        return [*self.arrays, *extra, *([self.target] if with_target and self.target is not None else [])]

    def template(self, data: Any, *, name: str | None = None, extra_dim: tuple[str, Any] | None = None,
                 attrs: dict[str, Any] | None = None) -> xr.DataArray:
        """Wrap grid-shaped ``data`` as a DataArray with this grid's coordinates."""
        dims = self.sample_dims + ((extra_dim[0],) if extra_dim else ())
        coords = dict(self.coords)
        if extra_dim is not None and extra_dim[1] is not None:
            coords[extra_dim[0]] = extra_dim[1]
        return xr.DataArray(data, dims=dims, coords=coords, name=name,
                            attrs=dict(self.attrs if attrs is None else attrs))


@dataclass
class GridData(Data):
    """:class:`~daskscale.storage.convert.Data` that remembers the grid it was stacked from."""

    layout: GridLayout | None = None


def block_rows(spec: tuple[bool, ...], has_mask: bool, has_target: bool, check: bool, where: Any,
               *blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Rows of one grid block: ``(X_rows, y_rows, valid)`` with ``valid`` the kept cells (flat).

    ``blocks`` are the variables' blocks, then the mask's and the target's when present. With a
    mask, ``check=True`` raises on a kept cell that is not finite (stacking for a fit: the row
    counts came from the mask), ``check=False`` also drops such cells (prediction).
    """
    n_var = len(spec)
    cols = []
    for wide, b in zip(spec, blocks[:n_var]):
        cols.append(b.reshape(b.shape[0], -1).T if wide else b.reshape(-1, 1))
    Xb = np.concatenate(cols, axis=1) if len(cols) > 1 else cols[0]
    pos = n_var
    yb = None
    if has_mask:
        valid = np.asarray(blocks[pos], dtype=bool).reshape(-1)
        pos += 1
    else:
        valid = None
    if has_target:
        yb = np.asarray(blocks[pos]).reshape(-1)
    finite = np.isfinite(Xb).all(axis=1) if Xb.dtype.kind == "f" else np.ones(len(Xb), bool)
    if yb is not None and yb.dtype.kind == "f":
        finite &= np.isfinite(yb)
    if valid is None:
        valid = finite
    elif not check:
        valid = valid & finite
    elif not finite[valid].all():
        bad = int((~finite[valid]).sum())
        raise SchemaError(f"grid block {where}: {bad} cells kept by the mask have NaN features or target; "
                          "extend the mask to cover them, or pass mask=None to drop every cell with a NaN")
    return Xb[valid], (yb[valid] if yb is not None else None), valid


def _counts_block(spec, has_mask, has_target, *blocks):
    valid = block_rows(spec, has_mask, has_target, False, None, *blocks)[2]
    return np.array(valid.sum(), dtype=np.int64).reshape((1,) * blocks[-1].ndim)


def _count_valid(layout: GridLayout) -> np.ndarray:
    """Valid cells per grid block: from the mask alone, or one counting pass over the data."""
    k = len(layout.sample_dims)
    if layout.mask is not None:
        return layout.mask.map_blocks(lambda m: np.array(m.sum(), np.int64).reshape((1,) * k),
                                      chunks=((1,) * k), dtype=np.int64).compute()
    args = layout.block_args(with_target=True)
    ind = tuple(range(1, k + 1))
    pairs = []
    for a in args:
        pairs += [a, ((0,) + ind) if a.ndim == k + 1 else ind]
    spec = tuple(layout.wide)
    has_t = layout.target is not None
    out = da.blockwise(_counts_block, ind, spec, None, False, None, has_t, None, *pairs,
                       dtype=np.int64, concatenate=True, adjust_chunks={i: 1 for i in ind},
                       meta=np.empty((0,) * k, np.int64))
    return out.compute()


def _as_list(dims: Any) -> tuple[str, ...]:
    return (dims,) if isinstance(dims, str) else tuple(dims)


def _broadcast(arr: xr.DataArray, what: str, sample_dims: tuple[str, ...], shape: tuple[int, ...],
               chunks: tuple[tuple[int, ...], ...]) -> da.Array:
    """A variable over some of the sample dims, broadcast lazily to the grid's chunks."""
    extra = [d for d in arr.dims if d not in sample_dims]
    if extra:
        raise SchemaError(f"{what} has dims {arr.dims}; it may only use the sample dims {list(sample_dims)} "
                          f"(dim {extra[0]!r} is not one)")
    own = [d for d in sample_dims if d in arr.dims]
    a = arr.transpose(*own).data
    own_chunks = tuple(chunks[sample_dims.index(d)] for d in own)
    a = a.rechunk(own_chunks) if isinstance(a, da.Array) else da.from_array(np.asarray(a), chunks=own_chunks)
    index = tuple(slice(None) if d in own else None for d in sample_dims)
    return da.broadcast_to(a[index], shape, chunks=chunks)


def as_dataset(X: Any) -> xr.Dataset:
    """A Dataset as is; a DataArray as a one-variable Dataset (named after it, or ``x``)."""
    if isinstance(X, xr.Dataset):
        return X
    if isinstance(X, xr.DataArray):
        return X.to_dataset(name=str(X.name) if X.name is not None else "x")
    raise InputTypeError(f"sample_dims needs an xarray Dataset or DataArray, not {type(X).__name__}")


def grid_layout(X: xr.Dataset | xr.DataArray, *, sample_dims: Any, feature_dim: str | None = None,
                target: str | None = None, mask: Any = None, features: Sequence[str] | None = None) -> GridLayout:
    """Validate a gridded input and align its variables (lazy; row counts not computed).

    Raises
    ------
    SchemaError
        A sample dim or ``feature_dim`` that does not exist, a feature variable whose dims are
        not the sample dims (plus ``feature_dim``), a non-numeric variable, a bad target or mask.
    """
    ds = as_dataset(X)
    sdims = _as_list(sample_dims)
    if not sdims:
        raise SchemaError("sample_dims is empty: name the dims to stack into samples, e.g. ('time', 'lat', 'lon')")
    for d in sdims:
        if d not in ds.dims:
            raise SchemaError(f"sample dim {d!r} not found; the data's dims are {list(ds.dims)}")
    if feature_dim is not None and feature_dim not in ds.dims:
        raise SchemaError(f"feature_dim {feature_dim!r} not found; the data's dims are {list(ds.dims)}")
    if feature_dim in sdims:
        raise SchemaError(f"dim {feature_dim!r} cannot be both a sample dim and the feature_dim")
    if target is not None and target not in ds.variables:
        raise SchemaError(f"target variable {target!r} not found; variables are {list(ds.data_vars)}")
    mask_name = mask if isinstance(mask, str) else None
    if mask_name is not None and mask_name not in ds.variables:
        raise SchemaError(f"mask {mask_name!r} is not a variable or coordinate; variables are {list(ds.data_vars)}, "
                          f"coordinates {list(ds.coords)}")
    names = list(features) if features is not None else [str(v) for v in ds.data_vars if v not in (target, mask_name)]
    if not names:
        raise SchemaError("no feature variables: the dataset has only the target/mask")
    shape = tuple(int(ds.sizes[d]) for d in sdims)
    chunks = None
    for v in names:
        if v not in ds.data_vars:
            raise SchemaError(f"feature variable {v!r} not found; variables are {list(ds.data_vars)}")
        var = ds[v]
        want = set(sdims) | ({feature_dim} if feature_dim in var.dims else set())
        if set(var.dims) != want or (feature_dim is None and len(var.dims) != len(sdims)):
            raise SchemaError(
                f"variable {v!r} has dims {var.dims} but features must have exactly the sample dims "
                f"{list(sdims)}" + (f" (optionally plus {feature_dim!r})" if feature_dim else "")
                + "; select or broadcast it first, or leave it out with features=[...]")
        if var.dtype.kind not in "biuf":
            raise SchemaError(f"variable {v!r} has non-numeric dtype {var.dtype}; encode it as numbers or drop it")
        if chunks is None and isinstance(var.data, da.Array):
            chunks = tuple(var.data.chunks[var.dims.index(d)] for d in sdims)
    if chunks is None:
        chunks = da.core.normalize_chunks("auto", shape, dtype=np.float32)
    arrays, wide, fnames = [], [], []
    for v in names:
        var = ds[v]
        is_wide = feature_dim is not None and feature_dim in var.dims
        var = var.transpose(*(((feature_dim,) if is_wide else ()) + sdims))
        ch = (((var.shape[0],),) if is_wide else ()) + chunks
        a = var.data
        a = a.rechunk(ch) if isinstance(a, da.Array) else da.from_array(np.asarray(a), chunks=ch)
        arrays.append(a)
        wide.append(is_wide)
        if is_wide:
            labels = ds[feature_dim].values if feature_dim in ds.coords else range(var.shape[0])
            fnames += [f"{v}[{lab}]" for lab in labels]
        else:
            fnames.append(v)
    dtype = np.result_type(*[a.dtype for a in arrays], np.float32)
    m = None
    if mask is not None:
        marr = ds[mask_name] if mask_name is not None else mask
        if not isinstance(marr, xr.DataArray):
            raise SchemaError(f"mask must be a variable name or an xarray DataArray, not {type(mask).__name__}")
        if marr.dtype.kind not in "biu":
            raise SchemaError(f"mask {marr.name!r} has dtype {marr.dtype}; it must be boolean (True = keep)")
        m = _broadcast(marr.astype(bool), f"mask {marr.name!r}", sdims, shape, chunks)
    t = None
    if target is not None:
        if ds[target].dtype.kind not in "biuf":
            raise SchemaError(f"target {target!r} has non-numeric dtype {ds[target].dtype}; encode labels as numbers")
        t = _broadcast(ds[target], f"target {target!r}", sdims, shape, chunks)
    coords = {k: c.variable for k, c in ds.coords.items() if set(c.dims) <= set(sdims)}
    return GridLayout(sdims, shape, chunks, fnames, arrays, wide, dtype, m, t, target, coords, dict(ds.attrs))


def _rows_graph(layout: GridLayout, counts: np.ndarray) -> tuple[da.Array, da.Array | None]:
    """Custom graph: one task per grid block -> (rows, y); X and y are views of it."""
    k = len(layout.sample_dims)
    args = layout.block_args(with_target=True)
    token = dask.base.tokenize(*args, tuple(layout.wide))
    pair, xname, yname = f"grid-rows-{token}", f"grid-X-{token}", f"grid-y-{token}"
    spec = tuple(layout.wide)
    has_m, has_t = layout.mask is not None, layout.target is not None
    dsk: dict[Any, Any] = {}
    dsk_x: dict[Any, Any] = {}
    dsk_y: dict[Any, Any] = {}
    for i, idx in enumerate(np.ndindex(*layout.numblocks)):
        keys = [(a.name, *(((0,) if a.ndim == k + 1 else ()) + idx)) for a in args]
        dsk[(pair, i)] = (block_rows, spec, has_m, has_t, True, idx, *keys)
        dsk_x[(xname, i, 0)] = (itemgetter(0), (pair, i))
        dsk_y[(yname, i)] = (itemgetter(1), (pair, i))
    rows = tuple(int(c) for c in counts.reshape(-1))
    # the (rows, y) tuples as a collection, so that X and y are two layers over one task per block
    pairs = da.Array(HighLevelGraph.from_collections(pair, dsk, dependencies=args), pair, chunks=(rows,), dtype=object)
    p = len(layout.feature_names)
    X = da.Array(HighLevelGraph.from_collections(xname, dsk_x, dependencies=[pairs]), xname, chunks=(rows, (p,)),
                 dtype=layout.dtype)
    y = None
    if has_t:
        y = da.Array(HighLevelGraph.from_collections(yname, dsk_y, dependencies=[pairs]), yname, chunks=(rows,),
                     dtype=layout.target.dtype)
    return X, y


def stack_to_data(X: xr.Dataset | xr.DataArray, *, sample_dims: Any, feature_dim: str | None = None,
                  target: str | None = None, mask: Any = None, features: Sequence[str] | None = None) -> GridData:
    """Stack ``sample_dims`` of gridded ``X`` into rows; features from variables and/or ``feature_dim``.

    Parameters
    ----------
    X
        A Dataset (one feature per variable; a variable with ``feature_dim`` gives one feature per
        label) or a DataArray. NumPy-backed data is chunked; dask-backed data keeps its chunks.
    sample_dims
        Dims whose cells become samples, e.g. ``("time", "lat", "lon")``.
    feature_dim
        A dim whose labels are features (e.g. ``"band"``), optional.
    target
        Name of the target variable (over the sample dims, or a subset, broadcast).
    mask
        ``None`` (drop cells with any NaN, after one counting pass), or a boolean variable /
        coordinate name or DataArray (keep where ``True``; no pass over the data).
    features
        Variables to use as features (default: every data variable but target and mask).

    Returns
    -------
    GridData
        ``X`` (rows, features) with one row chunk per grid block, ``y``, ``feature_names`` and
        ``layout`` (used by :func:`daskscale.grid.unstack.unstack` to go back to the grid).

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"a": (("t", "x"), np.arange(6.0).reshape(2, 3)),
    ...                  "b": (("t", "x"), np.ones((2, 3)))}).chunk({"t": 1})
    >>> ds["a"][0, 1] = np.nan
    >>> d = stack_to_data(ds, sample_dims=("t", "x"))
    >>> d.X.shape, d.row_chunks, d.feature_names
    ((5, 2), (2, 3), ['a', 'b'])
    """
    layout = grid_layout(X, sample_dims=sample_dims, feature_dim=feature_dim, target=target, mask=mask,
                         features=features)
    layout.counts = _count_valid(layout)
    Xr, yr = _rows_graph(layout, layout.counts)
    n_cells = int(np.prod(layout.shape))
    attrs = {"sample_dims": list(layout.sample_dims), "grid_shape": list(layout.shape),
             "n_cells": n_cells, "n_masked": n_cells - int(layout.counts.sum()), "mask_rule": layout.rule}
    return GridData(Xr, yr, list(layout.feature_names), target, None, None, attrs, "gridded xarray", layout=layout)

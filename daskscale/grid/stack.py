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

from daskscale.adapters.dask import array_from_tasks, block_index
from daskscale.errors import InputTypeError, SchemaError
from daskscale.storage.convert import Data

__all__ = ["GridLayout", "GridData", "stack_to_data", "grid_layout", "gather_rows", "finite_cells", "expand",
           "as_dataset"]


@dataclass
class GridLayout:
    """How a grid maps to rows: the aligned dask arrays, the mask rule, the row counts.

    The mask and the target are kept over their own sample dims (``mask_axes``,
    ``target_axes``: positions in ``sample_dims``), chunked like the grid along them; a block
    task broadcasts them in memory, so a (lat, lon) land mask is never materialised over time.
    """

    sample_dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[tuple[int, ...], ...]
    feature_names: list[str]
    arrays: list[da.Array]          # one per variable, dims (sample_dims) or (feature_dim, sample_dims)
    wide: list[bool]                # True for a variable carrying ``feature_dim`` (leading axis)
    dtype: np.dtype
    mask: da.Array | None = None    # bool, over the sample dims in ``mask_axes``
    target: da.Array | None = None  # over the sample dims in ``target_axes``
    target_name: str | None = None
    coords: dict[str, Any] = field(default_factory=dict, repr=False)
    attrs: dict[str, Any] = field(default_factory=dict, repr=False)
    counts: np.ndarray | None = field(default=None, repr=False)  # valid cells per block
    mask_axes: tuple[int, ...] = ()
    target_axes: tuple[int, ...] = ()
    mask_values: np.ndarray | None = field(default=None, repr=False)  # the mask, when it was NumPy

    @property
    def numblocks(self) -> tuple[int, ...]:
        return tuple(len(c) for c in self.chunks)

    @property
    def rule(self) -> str:
        return "mask" if self.mask is not None else "finite"

    def block_spec(self, *, with_target: bool) -> tuple[Any, ...]:
        """The leading arguments of :func:`gather_rows`: ``(spec, mask_axes, target_axes)``."""
        return (tuple(self.wide), self.mask_axes if self.mask is not None else None,
                self.target_axes if with_target and self.target is not None else None)

    def blockwise_args(self, *, with_target: bool) -> list[Any]:
        """``(array, index)`` pairs for :func:`dask.array.blockwise` over the grid's blocks.

        Output index ``1..k`` is the sample dims; the arrays come in :func:`gather_rows` order
        (features, mask, target). Being blockwise, the reads of the source chunks fuse into
        the block task: one task per grid block reads, masks and stacks it.
        """
        k = len(self.sample_dims)
        ind = tuple(range(1, k + 1))
        pairs: list[Any] = []
        for a in self.arrays:
            pairs += [a, ((0,) + ind) if a.ndim == k + 1 else ind]
        if self.mask is not None:
            pairs += [self.mask, tuple(ind[i] for i in self.mask_axes)]
        if with_target and self.target is not None:
            pairs += [self.target, tuple(ind[i] for i in self.target_axes)]
        return pairs

    def block_keys(self, idx: tuple[int, ...], *, with_features: bool = True, with_target: bool = True) -> list[Any]:
        """Keys of grid block ``idx`` of each array, in :func:`gather_rows` order."""
        k = len(self.sample_dims)
        keys: list[Any] = []
        if with_features:
            keys += [(a.name, *(((0,) if a.ndim == k + 1 else ()) + idx)) for a in self.arrays]
        if self.mask is not None:
            keys.append((self.mask.name, *(idx[i] for i in self.mask_axes)))
        if with_target and self.target is not None:
            keys.append((self.target.name, *(idx[i] for i in self.target_axes)))
        return keys

    def block_shape(self, idx: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(c[i] for c, i in zip(self.chunks, idx))

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
    """:class:`~daskscale.storage.convert.Data` that remembers the grid it was stacked from.

    ``X`` and ``y`` are views of one task per grid block (see :func:`stack_to_data`): reading
    row block ``i`` of both runs that task once.
    """

    layout: GridLayout | None = None


def expand(block: np.ndarray, axes: tuple[int, ...], shape: tuple[int, ...]) -> np.ndarray:
    """A block over some sample axes, broadcast (a view) to a grid block of ``shape``."""
    if len(axes) == len(shape):
        return np.asarray(block)
    full = [shape[i] if i in axes else 1 for i in range(len(shape))]
    return np.broadcast_to(np.asarray(block).reshape(full), shape)


def _grid_shape(spec: tuple[bool, ...], first: np.ndarray) -> tuple[int, ...]:
    return first.shape[1:] if spec[0] else first.shape


def finite_cells(spec: tuple[bool, ...], target_axes: tuple[int, ...] | None, *blocks: np.ndarray) -> np.ndarray:
    """Cells of one grid block (flat, C order) whose features (and target) are all finite.

    ``blocks`` are the variables' blocks, then the target's when ``target_axes`` is not None.
    """
    n_var = len(spec)
    shape = _grid_shape(spec, blocks[0])
    valid: np.ndarray | None = None
    for wide, b in zip(spec, blocks[:n_var]):
        if b.dtype.kind == "f":
            fin = np.isfinite(b).reshape((b.shape[0], -1) if wide else (-1,))
            fin = fin.all(axis=0) if wide else fin
            valid = fin if valid is None else np.logical_and(valid, fin, out=valid)
    if target_axes is not None and blocks[n_var].dtype.kind == "f":
        fin = expand(np.isfinite(blocks[n_var]), target_axes, shape).reshape(-1)
        valid = fin if valid is None else np.logical_and(valid, fin, out=valid)
    return np.ones(int(np.prod(shape)), bool) if valid is None else valid


def gather_rows(spec: tuple[bool, ...], mask_axes: tuple[int, ...] | None, target_axes: tuple[int, ...] | None,
                check: bool, where: Any, *blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, int, np.ndarray]:
    """Rows of one grid block: ``(X_rows, y_rows, lead, keep)``.

    The kept cells are ``np.tile(keep, lead)`` (flat, C order): a mask over the trailing sample
    dims (a (lat, lon) land mask under a leading time dim) is applied per leading slice, so
    neither the mask nor an index is ever built at the size of the block.

    ``blocks`` are the variables' blocks, then the mask's and the target's when their axes
    (positions in the sample dims they span) are not None. With a mask, ``check=True`` raises
    on a kept cell that is not finite (stacking for a fit: the row counts came from the mask),
    ``check=False`` also drops such cells (prediction). ``where`` (the block index) names the
    block in errors. Each variable is gathered straight into its column of ``X``, so masked
    cells are never copied.
    """
    n_var = len(spec)
    feats = blocks[:n_var]
    shape = _grid_shape(spec, feats[0])
    k = len(shape)
    pos = n_var
    lead = 1
    if mask_axes is not None:
        n_lead = k - len(mask_axes)
        if mask_axes == tuple(range(n_lead, k)):
            keep = np.asarray(blocks[pos], dtype=bool).reshape(-1)
            lead = int(np.prod(shape[:n_lead], dtype=np.int64))
        else:
            keep = expand(np.asarray(blocks[pos], dtype=bool), mask_axes, shape).reshape(-1)
        pos += 1
    yfull = expand(blocks[pos], target_axes, shape).reshape(lead, -1) if target_axes is not None else None
    if mask_axes is None:
        keep = finite_cells(spec, None, *feats)
        if yfull is not None and yfull.dtype.kind == "f":
            keep &= np.isfinite(yfull.reshape(-1))
    idx = np.flatnonzero(keep)
    dtype = np.result_type(*[b.dtype for b in feats], np.float32)
    width = [b.shape[0] if wide else 1 for wide, b in zip(spec, feats)]
    Xb = np.empty((lead * len(idx), sum(width)), dtype=dtype)
    Xv = Xb.reshape(lead, len(idx), sum(width))  # a view: Xb is C-contiguous
    col = 0
    for wide, w, b in zip(spec, width, feats):
        if wide:
            Xv[:, :, col:col + w] = np.take(b.reshape(w, lead, -1), idx, axis=2).transpose(1, 2, 0)
        else:
            Xv[:, :, col] = np.take(b.reshape(lead, -1), idx, axis=1)
        col += w
    yb = np.take(yfull, idx, axis=1).reshape(-1) if yfull is not None else None
    if mask_axes is not None:
        # kept cells must be finite: one vectorised test over the kept rows, per row only on failure
        fx = dtype.kind != "f" or bool(np.isfinite(Xb).all())
        fy = yb is None or yb.dtype.kind != "f" or bool(np.isfinite(yb).all())
        if not (fx and fy):
            finite = np.isfinite(Xb).all(axis=1)
            if yb is not None and yb.dtype.kind == "f":
                finite &= np.isfinite(yb)
            if check:
                bad = int((~finite).sum())
                raise SchemaError(f"grid block {tuple(where) if where is not None else ''}: {bad} cells kept by "
                                  "the mask have NaN features or target; extend the mask to cover them, or "
                                  "pass mask=None to drop every cell with a NaN")
            rows = (np.arange(lead)[:, None] * keep.size + idx[None, :]).reshape(-1)
            keep = np.tile(keep, lead)
            keep[rows[~finite]] = False
            lead = 1
            Xb, yb = Xb[finite], (yb[finite] if yb is not None else None)
    return Xb, yb, lead, keep


def _counts_block(spec, target_axes, *blocks):
    n = np.count_nonzero(finite_cells(spec, target_axes, *blocks))
    return np.array(n, dtype=np.int64).reshape((1,) * len(_grid_shape(spec, blocks[0])))


def _count_mask_block(m: np.ndarray) -> np.ndarray:
    return np.array(np.count_nonzero(m), dtype=np.int64).reshape((1,) * m.ndim)


def _mask_counts(layout: GridLayout) -> np.ndarray:
    """Kept cells per grid block from the mask over its own dims, times the other dims' chunk sizes.

    A (lat, lon) land mask is counted once per (lat, lon) block (in memory when it is NumPy,
    else one small task per mask block), never broadcast over time.
    """
    k = len(layout.sample_dims)
    own = layout.mask_axes
    if layout.mask_values is None:
        m = layout.mask
        own_counts = (m.map_blocks(_count_mask_block, chunks=(1,) * m.ndim, dtype=np.int64).compute()
                      if m.ndim else np.asarray(int(bool(m.compute()))))
    else:
        bounds = [np.cumsum((0,) + layout.chunks[i]) for i in own]
        own_counts = np.empty(tuple(len(layout.chunks[i]) for i in own), np.int64)
        for idx in np.ndindex(*own_counts.shape):
            cut = tuple(slice(b[j], b[j + 1]) for b, j in zip(bounds, idx))
            own_counts[idx] = np.count_nonzero(layout.mask_values[cut])
    counts = own_counts.reshape([len(layout.chunks[i]) if i in own else 1 for i in range(k)])
    for i in range(k):
        if i not in own:
            counts = counts * np.asarray(layout.chunks[i], np.int64).reshape([-1 if j == i else 1 for j in range(k)])
    return np.broadcast_to(counts, layout.numblocks).copy()


def _count_valid(layout: GridLayout) -> np.ndarray:
    """Valid cells per grid block: from the mask alone, or one counting pass over the data."""
    if layout.mask is not None:
        return _mask_counts(layout)
    k = len(layout.sample_dims)
    ind = tuple(range(1, k + 1))
    spec, _, t_axes = layout.block_spec(with_target=True)
    out = da.blockwise(_counts_block, ind, spec, None, t_axes, None, *layout.blockwise_args(with_target=True),
                       dtype=np.int64, concatenate=True, adjust_chunks={i: 1 for i in ind},
                       meta=np.empty((0,) * k, np.int64))
    return out.compute()


def _as_list(dims: Any) -> tuple[str, ...]:
    return (dims,) if isinstance(dims, str) else tuple(dims)


def _own(arr: xr.DataArray, what: str, sample_dims: tuple[str, ...],
         chunks: tuple[tuple[int, ...], ...]) -> tuple[da.Array, tuple[int, ...], np.ndarray | None]:
    """A variable over some of the sample dims, chunked like the grid along them (not broadcast).

    Returns the dask array, the positions of its dims in ``sample_dims`` and, when the variable
    was in memory, its NumPy values.
    """
    extra = [d for d in arr.dims if d not in sample_dims]
    if extra:
        raise SchemaError(f"{what} has dims {arr.dims}; it may only use the sample dims {list(sample_dims)} "
                          f"(dim {extra[0]!r} is not one)")
    own = [d for d in sample_dims if d in arr.dims]
    src = arr.transpose(*own).data
    own_chunks = tuple(chunks[sample_dims.index(d)] for d in own)
    values = None
    if isinstance(src, da.Array):
        src = src.rechunk(own_chunks)
    else:
        values = np.asarray(src)
        src = da.from_array(values, chunks=own_chunks)
    return src, tuple(sample_dims.index(d) for d in own), values


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
    m = m_values = None
    m_axes: tuple[int, ...] = ()
    if mask is not None:
        marr = ds[mask_name] if mask_name is not None else mask
        if not isinstance(marr, xr.DataArray):
            raise SchemaError(f"mask must be a variable name or an xarray DataArray, not {type(mask).__name__}")
        if marr.dtype.kind not in "biu":
            raise SchemaError(f"mask {marr.name!r} has dtype {marr.dtype}; it must be boolean (True = keep)")
        m, m_axes, m_values = _own(marr.astype(bool), f"mask {marr.name!r}", sdims, chunks)
    t = None
    t_axes: tuple[int, ...] = ()
    if target is not None:
        if ds[target].dtype.kind not in "biuf":
            raise SchemaError(f"target {target!r} has non-numeric dtype {ds[target].dtype}; encode labels as numbers")
        t, t_axes, _ = _own(ds[target], f"target {target!r}", sdims, chunks)
    coords = {k: c.variable for k, c in ds.coords.items() if set(c.dims) <= set(sdims)}
    return GridLayout(sdims, shape, chunks, fnames, arrays, wide, dtype, m, t, target, coords, dict(ds.attrs),
                      mask_axes=m_axes, target_axes=t_axes, mask_values=m_values)


def _xy_rows(*args: Any) -> tuple[np.ndarray, np.ndarray | None]:
    return gather_rows(*args)[:2]


def _rows_graph(layout: GridLayout, counts: np.ndarray) -> tuple[da.Array, da.Array | None]:
    """One blockwise task per grid block -> (rows, y); X and y are views of it.

    The block task is blockwise so that Dask fuses the reads of the source chunks into it:
    a block is read, masked and stacked in one task, on one worker, with no transfer of
    grid chunks between workers.
    """
    k = len(layout.sample_dims)
    ind = tuple(range(1, k + 1))
    spec, m_axes, t_axes = layout.block_spec(with_target=True)
    pairs = da.blockwise(_xy_rows, ind, spec, None, m_axes, None, t_axes, None, True, None,
                         block_index(layout.chunks), ind, *layout.blockwise_args(with_target=True),
                         dtype=object, concatenate=True, meta=np.empty((0,) * k, object),
                         align_arrays=False, adjust_chunks=dict(zip(ind, layout.chunks)),
                         name=f"grid-rows-{dask.base.tokenize(layout.arrays, layout.mask, layout.target, spec)}")
    token = pairs.name.removeprefix("grid-rows-")
    xname, yname = f"grid-X-{token}", f"grid-y-{token}"
    dsk_x: dict[Any, Any] = {}
    dsk_y: dict[Any, Any] = {}
    for i, idx in enumerate(np.ndindex(*layout.numblocks)):
        dsk_x[(xname, i, 0)] = (itemgetter(0), (pairs.name, *idx))
        dsk_y[(yname, i)] = (itemgetter(1), (pairs.name, *idx))
    rows = tuple(int(c) for c in counts.reshape(-1))
    X = array_from_tasks(xname, dsk_x, [pairs], (rows, (len(layout.feature_names),)), layout.dtype)
    y = None if layout.target is None else array_from_tasks(yname, dsk_y, [pairs], (rows,), layout.target.dtype)
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

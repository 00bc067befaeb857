"""stack_to_data: rows in block order, counts per block, the missing-cell rule, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import daskscale
from daskscale.errors import SchemaError
from daskscale.grid import grid_layout, stack_to_data, unstack
from daskscale.reduce import Moments, reduce
from daskscale.storage.convert import as_data

DIMS = ("t", "y", "x")


def _expected_rows(ds, names, chunks, keep=None):
    """Rows the documented order promises: grid blocks in C order, cells in C order inside a block."""
    rows = []
    ct, cy, cx = (np.cumsum((0,) + c) for c in chunks)
    for i in range(len(ct) - 1):
        for j in range(len(cy) - 1):
            for k in range(len(cx) - 1):
                sl = dict(t=slice(ct[i], ct[i + 1]), y=slice(cy[j], cy[j + 1]), x=slice(cx[k], cx[k + 1]))
                cols = [ds[n].isel(sl).transpose(*DIMS).values.reshape(-1) for n in names]
                block = np.stack(cols, axis=1)
                ok = np.isfinite(block).all(1)
                if keep is not None:
                    ok &= np.broadcast_to(keep.isel(y=sl["y"], x=sl["x"]).values, ok.reshape(
                        ct[i + 1] - ct[i], cy[j + 1] - cy[j], cx[k + 1] - cx[k]).shape).reshape(-1)
                rows.append(block[ok])
    return np.concatenate(rows)


def test_stack_rows_follow_grid_blocks_and_drop_nan_cells(tiny):
    d = stack_to_data(tiny, sample_dims=DIMS, features=["a", "b"])
    expected = _expected_rows(tiny, ["a", "b"], tiny["a"].data.chunks)
    np.testing.assert_array_equal(d.X.compute(), expected)
    assert d.X.numblocks == (int(np.prod(tiny["a"].data.numblocks)), 1)   # one row block per grid block
    assert d.n_rows == 6 * 4 * 5 - 2 and d.attrs["n_masked"] == 2 and d.attrs["mask_rule"] == "finite"
    assert not any("rechunk" in name for name in d.X.dask.layers)          # chunk-aligned, no rechunk


def test_feature_dim_gives_one_feature_per_label(tiny):
    d = stack_to_data(tiny, sample_dims=DIMS, feature_dim="band")
    assert d.feature_names == ["a", "b", "w[r]", "w[g]", "w[b]"]
    X = d.X.compute()
    flat = tiny.assign(**{f"w{i}": tiny["w"].isel(band=i) for i in range(3)})
    expected = _expected_rows(flat, ["a", "b", "w0", "w1", "w2"], tiny["a"].data.chunks)
    np.testing.assert_array_equal(X, expected)


def test_mask_keeps_true_cells_without_reading_data(tiny):
    clean = tiny.fillna(0.0)
    d = stack_to_data(clean, sample_dims=DIMS, mask="keep", features=["a", "b"])
    assert d.n_rows == int(tiny["keep"].sum()) * 6 and d.attrs["mask_rule"] == "mask"
    np.testing.assert_array_equal(d.X.compute(), _expected_rows(clean, ["a", "b"], tiny["a"].data.chunks, tiny["keep"]))


def test_mask_that_misses_a_nan_cell_is_an_error_naming_the_block(tiny):
    keep = xr.ones_like(tiny["keep"])  # keeps the NaN cells too
    d = stack_to_data(tiny, sample_dims=DIMS, mask=keep, features=["a"])
    with pytest.raises(SchemaError, match="grid block .* NaN"):
        d.X.compute()


def test_target_nan_cells_are_dropped_and_unstack_restores_the_grid(tiny):
    ds = tiny.assign(z=tiny["b"].where(tiny["b"] < 1.5))
    d = stack_to_data(ds, sample_dims=DIMS, target="z", features=["a"])
    n_bad = int((~(np.isfinite(tiny["a"]) & np.isfinite(ds["z"]))).sum())
    assert d.n_rows == 120 - n_bad and d.y.shape == (d.n_rows,)
    back = unstack(d.y, d, name="z")
    xr.testing.assert_identical(back["t"], tiny["t"])
    assert back.chunks == tiny["a"].chunks
    np.testing.assert_array_equal(back.values, ds["z"].where(np.isfinite(tiny["a"])).transpose(*DIMS).values)


def test_as_data_and_reducers_accept_grids(tiny, client):
    d = as_data(tiny, sample_dims=DIMS, feature_dim="band")
    assert d.n_features == 5
    m = reduce(d, [Moments()])["moments"]
    np.testing.assert_allclose(m["mean"][0], np.nanmean(tiny["a"].where(np.isfinite(tiny["a"]) & np.isfinite(tiny["b"])
                                                                        ).values), rtol=1e-6)


def test_ingest_stacks_a_gridded_dataset_and_a_zarr_path(tiny, tmp_path, client):
    src = tiny.drop_vars("w")
    path = daskscale.ingest(src, tmp_path / "rows.zarr", sample_dims=DIMS, target="b")
    info = daskscale.info(path)
    assert info.n_rows == 118 and info.feature_names == ["a"] and info.target == "y"
    src.to_zarr(tmp_path / "grid.zarr", zarr_format=3, consolidated=False)
    path2 = daskscale.ingest(tmp_path / "grid.zarr", tmp_path / "rows2.zarr", sample_dims=DIMS)
    assert daskscale.info(path2).n_rows == 118 and daskscale.info(path2).n_features == 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(sample_dims=("t", "lat")), "sample dim 'lat' not found"),
    (dict(sample_dims=DIMS, feature_dim="colour"), "feature_dim 'colour' not found"),
    (dict(sample_dims=("t", "y")), "variable 'a' has dims"),
    (dict(sample_dims=DIMS, target="nope"), "target variable 'nope' not found"),
    (dict(sample_dims=DIMS, mask="nope"), "mask 'nope'"),
])
def test_bad_dims_and_names_raise_schema_errors_naming_them(tiny, kwargs, match):
    with pytest.raises(SchemaError, match=match):
        stack_to_data(tiny, **kwargs)


def test_mismatched_and_non_numeric_variables_are_named(tiny):
    with pytest.raises(SchemaError, match="variable 'w' has dims"):
        grid_layout(tiny, sample_dims=DIMS)                       # 'w' carries 'band' but no feature_dim
    bad = tiny.assign(s=tiny["a"].astype(str))
    with pytest.raises(SchemaError, match="variable 's' has non-numeric dtype"):
        grid_layout(bad, sample_dims=DIMS, feature_dim="band")
    partial = tiny.assign(p=tiny["a"].isel(t=0))
    with pytest.raises(SchemaError, match="variable 'p' has dims"):
        grid_layout(partial, sample_dims=DIMS, feature_dim="band")
    with pytest.raises(SchemaError, match="mask .* dims"):
        grid_layout(tiny.isel(t=0).drop_vars("w"), sample_dims=("y", "x"), mask=tiny["keep"].expand_dims(z=2))


def _masked_reference(ds, names, target, keep):
    """Rows under the mask rule, built with xarray: grid blocks in C order, kept cells in C order."""
    chunks = ds[names[0]].data.chunks
    ct, cy, cx = (np.cumsum((0,) + c) for c in chunks)
    full = keep.broadcast_like(ds[names[0]]).transpose(*DIMS)
    X, y = [], []
    for i in range(len(ct) - 1):
        for j in range(len(cy) - 1):
            for k in range(len(cx) - 1):
                sl = dict(t=slice(ct[i], ct[i + 1]), y=slice(cy[j], cy[j + 1]), x=slice(cx[k], cx[k + 1]))
                ok = full.isel(sl).values.reshape(-1)
                X.append(np.stack([ds[n].isel(sl).transpose(*DIMS).values.reshape(-1) for n in names], 1)[ok])
                y.append(ds[target].isel(sl).transpose(*DIMS).values.reshape(-1)[ok])
    return np.concatenate(X), np.concatenate(y)


@pytest.mark.parametrize("mask_dims", [("y", "x"), ("t",), ("t", "x"), ("y",), DIMS])
def test_mask_over_any_sample_dims_gives_the_documented_rows_and_unstacks(tmp_path, tiny, mask_dims):
    clean = tiny.drop_vars(["w", "keep"]).fillna(0.0)
    rng = np.random.default_rng(len(mask_dims))
    keep = xr.DataArray(rng.random([clean.sizes[d] for d in mask_dims]) > 0.4, dims=mask_dims)
    clean.to_zarr(tmp_path / "g.zarr", zarr_format=3, consolidated=False)
    src = xr.open_zarr(tmp_path / "g.zarr", consolidated=False)
    d = stack_to_data(src, sample_dims=DIMS, target="b", mask=keep, features=["a"])
    X_ref, y_ref = _masked_reference(clean, ["a"], "b", keep)
    X, y = d.X.compute(), d.y.compute()
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    # the counts come from the mask alone, before any block is read: each block really has that many rows
    assert [d.X.blocks[i].compute().shape[0] for i in range(d.X.numblocks[0])] == list(d.row_chunks)
    back = unstack(d.y, d, name="b")
    np.testing.assert_array_equal(back.values, clean["b"].where(keep).transpose(*DIMS).values)


def test_a_fit_block_is_one_task_that_reads_masks_and_stacks(tmp_path, tiny):
    """The source reads fuse into the block task: reading row block i of X and y (what the block
    loop's reader computes) runs one task on the grid's data, and no separate read per variable chunk."""
    import dask

    from daskscale.engine.source import Source

    tiny.drop_vars("w").fillna(0.0).to_zarr(tmp_path / "g.zarr", zarr_format=3, consolidated=False)
    src = xr.open_zarr(tmp_path / "g.zarr", consolidated=False)
    d = stack_to_data(src, sample_dims=DIMS, target="b", mask="keep", features=["a"])
    reads = {src[v].data.name for v in ("a", "b", "keep")}
    source = Source.of(d)
    assert source.n_blocks == d.X.numblocks[0] == int(np.prod(d.layout.numblocks))
    for i in range(source.n_blocks):
        opt = dask.optimize(d.X.blocks[i], d.y.blocks[i])
        keys = {k for o in opt for k in dict(o.__dask_graph__()) if isinstance(k, tuple)}
        assert not {k[0] for k in keys} & reads, keys                       # no separate chunk read
        assert len([k for k in keys if k[0].startswith("grid-rows-")]) == 1  # one task per grid block
        Xb, yb = source.read(i)
        np.testing.assert_array_equal(Xb, d.X.blocks[i].compute())
        np.testing.assert_array_equal(yb, d.y.blocks[i].compute())


def test_error_names_the_grid_block_index(tiny):
    keep = xr.ones_like(tiny["keep"])  # keeps the NaN cells at (t, y, x) = (0, 0, 0) and (3, 2, 4)
    d = stack_to_data(tiny, sample_dims=DIMS, mask=keep, features=["a"])
    with pytest.raises(SchemaError, match=r"grid block \((0, 0, 0|1, 1, 0)\): 1 cells kept by the mask"):
        d.X.compute()


def test_prediction_path_drops_kept_cells_with_nan(tiny):
    """apply_to_grid under a (y, x) mask: kept cells with a NaN feature come back NaN, the rest computed."""
    from daskscale.grid import apply_to_grid

    lay = grid_layout(tiny, sample_dims=DIMS, mask="keep", features=["a", "b"])
    def func(rows):
        assert np.isfinite(rows).all()  # rows with a NaN feature never reach the model
        return rows[:, 0] + rows[:, 1]

    out = apply_to_grid(func, lay, dtype=np.float64, name="s")
    expected = (tiny["a"] + tiny["b"]).where(tiny["keep"]).transpose(*DIMS)
    np.testing.assert_allclose(out.values, expected.values)
    assert out.chunks == tiny["a"].chunks

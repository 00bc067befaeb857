"""dask's graph internals used by daskscale.grid (daskscale.adapters.dask) against dask itself.

They depend on ``HighLevelGraph.from_collections`` keeping the dependencies' layers (a
``Blockwise`` read stays ``Blockwise``, so dask can still fuse it into the grid's block task),
on ``dask.array.Array`` accepting that graph, on tuple tasks whose key arguments are replaced
by blocks, and on ``dask.layers.ArrayBlockIdDep`` giving ``blockwise`` the block index. If dask
changes any of these, stacking a grid would break or silently lose its one-task-per-block
fusion: these tests fail first, naming what changed.
"""

from __future__ import annotations

import operator

import dask
import dask.array as da
import numpy as np
import pytest

from daskscale.adapters.dask import active_client, array_from_tasks, block_index

CHANGED = f"dask {dask.__version__} changed; update daskscale/adapters/dask.py"


def _reversed_blocks(x: da.Array) -> da.Array:
    n = x.numblocks[0]
    tasks = {("rev", i): (operator.neg, (x.name, n - 1 - i)) for i in range(n)}
    return array_from_tasks("rev", tasks, [x], (tuple(reversed(x.chunks[0])),), x.dtype)


def test_array_from_tasks_runs_tuple_tasks_on_the_blocks_they_name():
    x = da.arange(10, chunks=(4, 4, 2))
    y = _reversed_blocks(x)
    assert y.chunks == ((2, 4, 4),), CHANGED
    np.testing.assert_array_equal(y.compute(), -np.r_[8:10, 4:8, 0:4], err_msg=CHANGED)
    np.testing.assert_array_equal(y.blocks[0].compute(), [-8, -9], err_msg=CHANGED)


def test_array_from_tasks_keeps_the_dependency_layers_unmaterialised():
    from dask.highlevelgraph import HighLevelGraph
    from dask.layers import Blockwise

    x = da.ones((12, 3), chunks=(4, 3)) * 2          # a Blockwise layer, as a grid's block reads are
    col = x[:, 0]
    y = _reversed_blocks(col)
    g = y.__dask_graph__()
    assert isinstance(g, HighLevelGraph), CHANGED
    assert g.dependencies["rev"] == {col.name}, CHANGED
    assert isinstance(g.layers[x.name], Blockwise), CHANGED
    assert not g.layers[x.name].is_materialized(), CHANGED
    np.testing.assert_array_equal(y.compute(), -2 * np.ones(12), err_msg=CHANGED)


def test_the_public_constructor_still_drops_the_layers_the_adapter_keeps():
    """Why the adapter exists: ``dask.array.Array`` from a plain dict forgets its dependencies.
    If dask ever keeps them, the adapter can go and this test says so."""
    x = da.arange(8, chunks=4)
    dsk = {("plain", i): (operator.neg, (x.name, i)) for i in range(2)}
    plain = da.Array(dsk, "plain", chunks=((4, 4),), dtype=x.dtype)
    assert x.name not in plain.__dask_graph__().layers, "dask.array.Array now keeps dependencies: drop the adapter"
    with pytest.raises(Exception):
        plain.compute(scheduler="sync")


def test_block_index_is_each_blocks_index_in_blockwise_over_arrays_of_some_dims():
    grid = da.zeros((4, 6, 2), chunks=(2, 3, 1))
    mask = da.ones((6, 2), chunks=(3, 1), dtype=bool)    # over the trailing dims only, as a land mask

    def code(g, m, idx):
        assert m.shape == g.shape[1:]
        return np.full(g.shape, 100 * idx[0] + 10 * idx[1] + idx[2])

    out = da.blockwise(code, "ijk", grid, "ijk", mask, "jk", block_index(grid.chunks), "ijk", dtype=int,
                       align_arrays=False, concatenate=True)
    values = out.compute()
    for idx in np.ndindex(*grid.numblocks):
        corner = tuple(i * c[0] for i, c in zip(idx, grid.chunks))
        assert values[corner] == 100 * idx[0] + 10 * idx[1] + idx[2], CHANGED


def test_a_grid_block_task_stays_one_fused_task(tmp_path):
    """The use in daskscale.grid: the reads of every variable of a store fuse into the one block task."""
    import xarray as xr

    from daskscale.grid.stack import stack_to_data

    rng = np.random.default_rng(0)
    xr.Dataset({v: (("t", "x"), rng.normal(size=(6, 4))) for v in ("a", "b", "c")}).chunk({"t": 2}).to_zarr(
        tmp_path / "g.zarr", zarr_format=3, consolidated=False)
    ds = xr.open_zarr(tmp_path / "g.zarr", consolidated=False)
    d = stack_to_data(ds, sample_dims=("t", "x"), target="c", mask=xr.ones_like(ds["a"], dtype=bool))
    reads = {ds[v].data.name for v in ("a", "b", "c")}
    for i in range(d.X.numblocks[0]):
        opt = dask.optimize(d.X.blocks[i], d.y.blocks[i])
        keys = {k for o in opt for k in dict(o.__dask_graph__()) if isinstance(k, tuple)}
        assert not {k[0] for k in keys} & reads, f"{CHANGED}: the grid reads are no longer fused ({keys})"
        np.testing.assert_array_equal(d.X.blocks[i].compute(scheduler="sync"),
                                      np.stack([ds[v].values[2 * i:2 * i + 2].reshape(-1) for v in d.feature_names], 1))


def test_active_client_is_the_client_dask_compute_would_use(client):
    assert active_client() is client, CHANGED
    with dask.config.set(scheduler="threads"):
        assert active_client() is None, CHANGED
    with dask.config.set(scheduler=client):
        assert active_client() is client, CHANGED

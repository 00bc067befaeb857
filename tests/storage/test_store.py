from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import daskscale
import daskscale.storage
from daskscale.storage import layout


def test_store_layout_opens_with_plain_xarray(small_store):
    ds = xr.open_zarr(small_store, consolidated=False)
    assert ds.X.dims == ("sample", "feature") and ds.y.dims == ("sample",)
    assert ds.X.dtype == np.float32
    assert ds.X.data.chunks[1] == (10,) and ds.X.data.chunks[0] == (5000,) * 4
    assert ds.attrs[layout.ATTR]["schema_version"] == layout.SCHEMA_VERSION
    import zarr

    codecs = zarr.open_array(str(small_store) + "/X").metadata.codecs
    assert any("Blosc" in type(c).__name__ for c in codecs)


def test_info_reports_sizes(small_store):
    i = daskscale.info(small_store)
    assert (i.n_rows, i.n_features, i.n_chunks) == (20_000, 10, 4)
    assert i.bytes_in_memory == 20_000 * 10 * 4 + 20_000 * 8
    assert 0 < i.bytes_on_disk < 2 * i.bytes_in_memory
    assert "compression" in str(i) and "<table>" in i._repr_html_()


def test_open_is_lazy_and_hides_uncommitted_rows(small_store):
    import zarr

    g = zarr.open_group(str(small_store), mode="a")
    attrs = dict(g.attrs["daskscale"])
    attrs["n_rows_committed"] = 15_000
    g.attrs["daskscale"] = attrs
    ds = daskscale.open_dataset(small_store)
    assert ds.X.shape == (15_000, 10)
    assert hasattr(ds.X.data, "dask")


def _interrupted_write(tmp_path, at_block: int):
    """Write a store with the sync scheduler and look at its folder while block ``at_block`` is made:
    return ``(temp folder name, is_store(temp folder), is_store(a copy under a plain name))``."""
    import shutil

    import dask
    import dask.array as da

    from daskscale.storage.store import is_store, write_store

    seen = []

    def block(x, block_info=None):
        if block_info[None]["chunk-location"][0] == at_block and not seen:
            (tmp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".s.zarr.tmp-")]
            copy = tmp_path / "copy.zarr"
            shutil.copytree(tmp, copy)
            seen.append((tmp.name, is_store(tmp), is_store(copy)))
        return x

    X = da.ones((400, 3), chunks=(100, 3), dtype="f4").map_blocks(block, dtype="f4")
    with dask.config.set(scheduler="sync"):
        write_store(tmp_path / "s.zarr", X, attrs=layout.make_attrs(target=None, n_rows=400), chunk_rows=100)
    return seen[0]


def test_a_store_being_written_is_not_a_store(tmp_path):
    name, tmp_is_store, copy_is_store = _interrupted_write(tmp_path, at_block=2)
    assert name.startswith(".s.zarr.tmp-")
    assert not tmp_is_store  # by its temporary name
    assert not copy_is_store  # by its content: the attributes are written after the last chunk
    assert daskscale.storage.is_store(tmp_path / "s.zarr")  # the finished store is one
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize("suffix", ["0123456789ab", "0123456789ab.4242.deadbeef"])
def test_a_temporary_folder_is_never_a_store(small_store, tmp_path, suffix):
    """Even a complete copy under a temporary name (a write killed just before its rename)."""
    import shutil

    from daskscale.errors import StoreError

    tmp = tmp_path / f".small.zarr.tmp-{suffix}"
    shutil.copytree(small_store, tmp)
    assert not daskscale.storage.is_store(tmp)
    with pytest.raises(StoreError, match="temporary"):
        daskscale.open_dataset(tmp)
    assert daskscale.storage.is_store(small_store)


def test_a_group_without_the_attributes_is_not_a_store(tmp_path):
    from daskscale.errors import StoreError

    xr.Dataset({"X": (("sample", "feature"), np.ones((4, 2), dtype="f4"))}).to_zarr(
        tmp_path / "plain.zarr", zarr_format=3, consolidated=False)
    assert not daskscale.storage.is_store(tmp_path / "plain.zarr")
    with pytest.raises(StoreError, match="not a \\(complete\\) daskscale store"):
        daskscale.open_dataset(tmp_path / "plain.zarr")

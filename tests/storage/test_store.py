from __future__ import annotations

import numpy as np
import xarray as xr

import daskscale
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

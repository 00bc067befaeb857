"""The hand-made chunk decoder (daskscale.adapters.zarr.ChunkFile) against zarr itself.

It depends on zarr's metadata attributes (``metadata.codecs``, ``BytesCodec.endian``,
``chunk_key_encoding.encode_chunk_key``, ``LocalStore.root``, ``Array.path``) and on where zarr
writes a chunk's file. If zarr changes any of these, the decoder must not silently fall back
forever (the speed would be lost without a word) nor read wrong bytes: these tests fail first.
"""

from __future__ import annotations

import numpy as np
import zarr


def _array(tmp_path, codec_kw):
    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    a = g.create_array("X", shape=(1050, 7), chunks=(200, 7), dtype="float32", **codec_kw)
    a[:] = np.random.default_rng(0).normal(size=(1050, 7)).astype(np.float32)
    return a


def test_the_default_daskscale_layout_is_decoded_by_hand_and_equals_zarr(tmp_path):
    from zarr.codecs import BloscCodec

    from daskscale.adapters.zarr import ChunkFile

    a = _array(tmp_path, {"compressors": BloscCodec(cname="lz4", shuffle="shuffle")})
    fast = ChunkFile.of(a)
    assert fast is not None, f"zarr {zarr.__version__}: the chunk decoder no longer recognises a blosc store"
    for k in range(6):
        lo, hi = 200 * k, min(200 * (k + 1), 1050)
        out = fast.read(lo, hi)
        assert out is not None, f"zarr {zarr.__version__}: chunk {k} was not found where the decoder looks"
        np.testing.assert_array_equal(out, a[lo:hi])


def test_an_uncompressed_store_is_decoded_and_other_codecs_are_left_to_zarr(tmp_path):
    from zarr.codecs import ZstdCodec

    from daskscale.adapters.zarr import ChunkFile

    raw = _array(tmp_path / "raw", {"compressors": None})
    assert ChunkFile.of(raw) is not None
    np.testing.assert_array_equal(ChunkFile.of(raw).read(200, 400), raw[200:400])
    assert ChunkFile.of(_array(tmp_path / "zstd", {"compressors": ZstdCodec()})) is None
    assert ChunkFile.of(raw).read(100, 300) is None  # not one whole chunk: zarr reads it


def test_chunk_keys_and_blosc_headers_are_where_the_adapter_says(tmp_path):
    """The key names the chunk's file, and its Blosc header states the file's size and the decoded size."""
    import os

    from zarr.codecs import BloscCodec

    from daskscale.adapters.zarr import blosc_files, blosc_sizes, chunk_key

    a = _array(tmp_path, {"compressors": BloscCodec(cname="lz4", shuffle="shuffle")})
    fs, folder, want = blosc_files(a)
    assert want == 200 * 7 * 4
    key = chunk_key(a, "X", (2, 0))
    path = f"{folder}/{key.partition('/')[2]}"
    assert os.path.isfile(path), f"zarr {zarr.__version__}: chunk (2, 0) is not at {key}"
    with open(path, "rb") as f:
        head = f.read(16)
    assert blosc_sizes(head) == (want, os.path.getsize(path))

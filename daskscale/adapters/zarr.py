"""zarr's on-disk layout, reached from here only: chunk keys, Blosc frame headers, chunk files.

- :func:`chunk_key` / :func:`blosc_files` / :func:`blosc_sizes`: where a chunk's file is and
  what its Blosc header says (:mod:`daskscale.storage.chunks` checks them to name a damaged chunk:
  Blosc does not check a frame's length against its header, so a truncated frame would decode
  into whatever follows it in memory).

:class:`ChunkFile` reads a whole row chunk of a local Zarr v3 array straight from its file
into the block's array: zarr's generic path copies it twice more through its own buffers.
It relies on zarr's on-disk layout (the chunk key encoding, the ``bytes`` + ``blosc`` codec
pipeline) and on Blosc's frame header, so any doubt about the layout sends the read back to
zarr (``None``), and ``tests/adapters/test_zarr_adapter.py`` fails loudly when zarr changes
the metadata attributes used here. The benefit is kept by ``benchmarks/bench_blocks.py``
(``BlockRead``: this path beside ``zarr``'s own, same run).
"""

from __future__ import annotations

import math
import mmap
import os
from typing import Any

import numpy as np

__all__ = ["ChunkFile", "chunk_key", "blosc_files", "blosc_sizes"]


def chunk_key(arr: Any, name: str, idx: tuple[int, ...]) -> str:
    """``"X/c/3/0"``: the store key of chunk ``idx`` of array ``name`` (``name`` alone for Zarr v2)."""
    try:
        return f"{name}/{arr.metadata.chunk_key_encoding.encode_chunk_key(idx)}"
    except AttributeError:  # a Zarr v2 array: no chunk key encoding
        return name


def blosc_sizes(head: bytes) -> tuple[int, int]:
    """``(decoded bytes, frame bytes)`` from the first 16 bytes of a Blosc frame."""
    return int.from_bytes(head[4:8], "little"), int.from_bytes(head[12:16], "little")


def blosc_files(arr: Any, fs: Any = None, root: str | None = None) -> tuple[Any, str, int] | None:
    """``(file system, folder, bytes of a decoded chunk)`` when ``arr``'s chunks are files of
    Blosc frames, in a local store or in the (synchronous fsspec) file system ``fs`` whose
    folder ``root`` holds the store; else ``None``."""
    from zarr.codecs import BloscCodec, BytesCodec
    from zarr.storage import LocalStore

    codecs = list(getattr(arr.metadata, "codecs", ()))
    if len(codecs) != 2 or type(codecs[0]) is not BytesCodec or type(codecs[1]) is not BloscCodec:
        return None
    if fs is None:
        if not isinstance(arr.store, LocalStore):
            return None  # a store opened elsewhere: damage shows as a decoding error only
        import fsspec

        fs, root = fsspec.filesystem("file"), str(arr.store.root)
    return fs, f"{str(root).rstrip('/')}/{arr.path}", math.prod(arr.chunks) * arr.dtype.itemsize


class ChunkFile:
    """Whole row chunks of a local Zarr v3 array, decoded from their files into NumPy arrays.

    Only the layout whose decoding is fully known is handled: regular chunks with one chunk
    across the non-row dimensions, codecs ``bytes`` (native byte order) then optionally
    ``blosc``, no sharding. :meth:`read` returns ``None`` whenever zarr should read instead.
    """

    def __init__(self, folder: str, encode: Any, dtype: np.dtype, chunk_shape: tuple, n_rows: int, blosc: bool):
        self.folder, self.encode, self.dtype = folder, encode, dtype
        self.chunk_shape, self.n_rows, self.blosc = chunk_shape, n_rows, blosc

    @classmethod
    def of(cls, arr: Any) -> "ChunkFile | None":
        import sys

        try:
            from zarr.codecs import BloscCodec, BytesCodec
            from zarr.storage import LocalStore

            meta = arr.metadata
            codecs = list(meta.codecs)
            if (meta.zarr_format != 3 or not isinstance(arr.store, LocalStore) or arr.dtype.kind not in "biuf"
                    or not codecs or len(codecs) > 2 or type(codecs[0]) is not BytesCodec
                    or (len(codecs) == 2 and type(codecs[1]) is not BloscCodec)
                    or tuple(arr.chunks[1:]) != tuple(arr.shape[1:])):
                return None
            endian = codecs[0].endian
            if arr.dtype.itemsize > 1 and (endian is None or endian.value != sys.byteorder):
                return None
            folder = os.path.join(str(arr.store.root), arr.path)
            return cls(folder, meta.chunk_key_encoding.encode_chunk_key, np.dtype(arr.dtype), tuple(arr.chunks),
                       int(arr.shape[0]), len(codecs) == 2)
        except Exception:  # noqa: BLE001 - any doubt about the layout: let zarr read it
            return None

    def read(self, a: int, b: int) -> np.ndarray | None:
        rows = self.chunk_shape[0]
        k, off = divmod(a, rows)
        if off or b != min(a + rows, self.n_rows):
            return None
        key = self.encode((k,) + (0,) * (len(self.chunk_shape) - 1))
        try:
            f = open(os.path.join(self.folder, key), "rb")
        except FileNotFoundError:  # an unwritten chunk holds the fill value: zarr knows it
            return None
        with f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return None
            # decoded straight from the page cache: no copy of the compressed bytes
            with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as raw:
                return self._decode(raw, size, b - a)

    def _decode(self, raw: Any, size: int, n: int) -> np.ndarray | None:
        from daskscale.storage.convert import empty_aligned  # (storage imports this module)

        # aligned as the products want it: a float block can then be laid out in place
        out = empty_aligned(self.chunk_shape, self.dtype)
        if self.blosc:
            from numcodecs import blosc

            # header: uncompressed size, and compressed size = the file's (Blosc itself would read past a
            # truncated frame); on a mismatch zarr's path reads it and names the damaged chunk
            if size < 16 or blosc_sizes(raw[:16]) != (out.nbytes, size):
                return None
            blosc.decompress(raw, out)  # releases the GIL: overlaps training
        elif size == out.nbytes:
            out.reshape(-1).view(np.uint8)[:] = np.frombuffer(raw, dtype=np.uint8)
        else:
            return None
        return out if n == len(out) else out[:n]

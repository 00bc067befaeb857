"""Storage: ingest sources into daskscale Zarr stores, open them lazily, check and describe them."""

from daskscale.storage.ingest import ingest
from daskscale.storage.chunks import ChunkProblem, CorruptChunkError, check_store
from daskscale.storage.store import StoreInfo, info, is_store, load_xy, open_dataset, store_attrs, write_store

__all__ = ["ingest", "open_dataset", "load_xy", "info", "StoreInfo", "is_store", "store_attrs", "write_store",
           "check_store", "ChunkProblem", "CorruptChunkError"]

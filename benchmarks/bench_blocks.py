"""The two places daskscale bypasses a library, each beside the library's own path (same run).

- ``BlockRead``: reading every block of a store on a worker, the way a worker-side fit reads it,
  with the hand-made chunk decoder (:class:`daskscale.adapters.zarr.ChunkFile`) and with zarr's
  own path (``ZarrReader(fast=False)``), each with and without the raised malloc thresholds
  (:func:`daskscale.adapters.glibc.blocks_on_heap`; ``DASKSCALE_HEAP=0`` is the same switch for
  users). Both bypasses stay only while these rows show their benefit.
"""

from __future__ import annotations

import time

from benchmarks.common import cached_classification, default_client, scaled


def _read_all(path: str, row_chunks: list[int], fast: bool, heap: bool) -> float:
    """Runs on a worker: seconds to read (and sum) every block, as a fit's prefetch thread does."""
    from contextlib import nullcontext

    from daskscale.adapters.glibc import blocks_on_heap
    from daskscale.engine.source import ZarrReader

    reader = ZarrReader(path, row_chunks, fast=fast)
    t0 = time.perf_counter()
    with blocks_on_heap() if heap else nullcontext():
        for i in range(reader.n_blocks):
            X, _ = reader.read(i)
            X.sum()
    return time.perf_counter() - t0


class BlockRead:
    """Seconds to read a store's blocks on one worker of the default cluster (2M x 50 float32)."""

    params = (["chunk_file", "zarr"], ["heap", "malloc_default"])
    param_names = ["decoder", "allocator"]
    timeout = 600

    def setup(self, decoder, allocator):
        from daskscale.storage.convert import as_data

        # the store first: making it may start (and then close) another cluster layout
        self.path = str(cached_classification("blocks", scaled(2_000_000, 2_000), 50, scaled(100_000, 500)))
        self.client = default_client()
        self.chunks = list(as_data(self.path).row_chunks)
        self.worker = sorted(self.client.scheduler_info()["workers"])[0]
        self._run(decoder, allocator)  # the page cache warm, as for every fit after the first

    def _run(self, decoder, allocator):
        return self.client.submit(_read_all, self.path, self.chunks, decoder == "chunk_file", allocator == "heap",
                                  workers=[self.worker], pure=False).result()

    def track_read_seconds(self, decoder, allocator):
        return min(self._run(decoder, allocator) for _ in range(3))

    track_read_seconds.unit = "seconds"

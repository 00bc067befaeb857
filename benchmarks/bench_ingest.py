"""Ingest throughput: daskscale.ingest against plain dask, in the same run.

- CSV -> Zarr: ``daskscale.ingest`` vs ``dask.dataframe.read_csv(...).to_dask_array(lengths=True)``
  rechunked and written with ``dask.array.to_zarr``.
- NumPy (.npy) -> Zarr: ``daskscale.ingest`` vs ``dask.array.from_array(np.load(mmap)).to_zarr``.

``track_*_mb_per_s`` report uncompressed float32 MB written per second.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import client, scaled

N_FEATURES = 20


def _make_csv(path: Path, n_rows: int) -> None:
    rng = np.random.default_rng(0)
    with open(path, "w") as fh:
        fh.write(",".join(f"f{i}" for i in range(N_FEATURES)) + ",y\n")
        for start in range(0, n_rows, 50_000):
            m = min(50_000, n_rows - start)
            block = rng.normal(size=(m, N_FEATURES + 1)).round(5)
            block[:, -1] = block[:, -1] > 0
            np.savetxt(fh, block, delimiter=",", fmt="%.5g")


class IngestCSV:
    params = [100_000, 1_000_000]
    param_names = ["rows"]
    timeout = 900

    def setup_cache(self):
        root = Path(tempfile.mkdtemp(prefix="daskscale-bench-ingest-"))
        for rows in self.params:
            _make_csv(root / f"{rows}.csv", scaled(rows, 1000))
        return str(root)

    def setup(self, root, rows):
        self.csv = Path(root) / f"{rows}.csv"
        self.out = Path(tempfile.mkdtemp(prefix="daskscale-bench-out-"))
        self.mb = scaled(rows, 1000) * N_FEATURES * 4 / 1e6
        client()

    def teardown(self, root, rows):
        shutil.rmtree(self.out, ignore_errors=True)

    def _daskscale(self):
        import daskscale

        daskscale.ingest(self.csv, self.out / "ds.zarr", target="y", chunk_mb=16, overwrite=True)

    def _baseline(self):
        import dask.dataframe as dd

        df = dd.read_csv(str(self.csv), blocksize=64 * 2**20)
        X = df.drop(columns=["y"]).to_dask_array(lengths=True).astype("float32")
        X.rechunk({0: 200_000, 1: -1}).to_zarr(str(self.out / "base.zarr"), overwrite=True)

    def time_daskscale_ingest(self, root, rows):
        self._daskscale()

    def time_dask_read_csv_to_zarr(self, root, rows):
        self._baseline()

    def track_daskscale_mb_per_s(self, root, rows):
        t = time.perf_counter()
        self._daskscale()
        return self.mb / (time.perf_counter() - t)

    def track_dask_read_csv_mb_per_s(self, root, rows):
        t = time.perf_counter()
        self._baseline()
        return self.mb / (time.perf_counter() - t)

    track_daskscale_mb_per_s.unit = "MB/s"
    track_dask_read_csv_mb_per_s.unit = "MB/s"


class IngestNumpy:
    params = [1_000_000, 4_000_000]
    param_names = ["rows"]
    timeout = 900

    def setup_cache(self):
        root = Path(tempfile.mkdtemp(prefix="daskscale-bench-npy-"))
        rng = np.random.default_rng(0)
        for rows in self.params:
            n = scaled(rows, 1000)
            mm = np.lib.format.open_memmap(root / f"{rows}.npy", mode="w+", dtype=np.float32, shape=(n, N_FEATURES))
            for a in range(0, n, 500_000):
                mm[a:a + 500_000] = rng.normal(size=(min(500_000, n - a), N_FEATURES))
            mm.flush()
        return str(root)

    def setup(self, root, rows):
        self.npy = Path(root) / f"{rows}.npy"
        self.out = Path(tempfile.mkdtemp(prefix="daskscale-bench-out-"))
        self.mb = scaled(rows, 1000) * N_FEATURES * 4 / 1e6
        client()

    def teardown(self, root, rows):
        shutil.rmtree(self.out, ignore_errors=True)

    def _daskscale(self):
        import daskscale

        daskscale.ingest(self.npy, self.out / "ds.zarr", chunk_mb=16, overwrite=True)

    def _baseline(self):
        import dask.array as da

        X = da.from_array(np.load(self.npy, mmap_mode="r"), chunks=(200_000, -1))
        X.to_zarr(str(self.out / "base.zarr"), overwrite=True)

    def time_daskscale_ingest(self, root, rows):
        self._daskscale()

    def time_dask_to_zarr(self, root, rows):
        self._baseline()

    def track_daskscale_mb_per_s(self, root, rows):
        t = time.perf_counter()
        self._daskscale()
        return self.mb / (time.perf_counter() - t)

    def track_dask_to_zarr_mb_per_s(self, root, rows):
        t = time.perf_counter()
        self._baseline()
        return self.mb / (time.perf_counter() - t)

    track_daskscale_mb_per_s.unit = "MB/s"
    track_dask_to_zarr_mb_per_s.unit = "MB/s"

"""describe streams a store larger than a worker's memory limit without exceeding it."""

from __future__ import annotations

import numpy as np

import daskscale
from daskscale.monitor import peak_memory


def test_describe_store_larger_than_worker_memory(tmp_path, client):
    import dask.array as da

    from daskscale.storage import info, write_store

    rows, p = 3_800_000, 50  # float32: 760 MB > the 700 MiB limit of each session worker
    # Cheap to generate (the test is about memory, not randomness); column j holds i % 1000 + j.
    X = ((da.arange(rows, chunks=100_000, dtype=np.float32) % 1000)[:, None]
         + da.arange(p, dtype=np.float32)[None, :])
    path = write_store(tmp_path / "big.zarr", X, attrs={"schema_version": 1, "target": None}, chunk_rows=100_000)
    workers = client.scheduler_info()["workers"]
    limit = min(w["memory_limit"] for w in workers.values())
    assert info(path).bytes_in_memory > limit
    workers = set(workers)
    client.run(peak_memory, True)  # the workers' high-water marks restart here: the peak is describe's
    t = daskscale.describe(path, quantiles=(0.5,), stats=("count", "mean", "std", "min", "max"))
    peak = max(client.run(peak_memory).values())
    assert peak < limit, f"a worker peaked at {peak / 2**20:.0f} MiB"
    assert set(client.scheduler_info()["workers"]) == workers  # none was killed and restarted
    col = np.arange(rows) % 1000
    assert (t["count"] == rows).all()
    np.testing.assert_allclose(t["mean"], col.mean() + np.arange(p), rtol=1e-12)
    np.testing.assert_allclose(t["std"], col.std(ddof=1), rtol=1e-9)
    assert t["min"].tolist() == list(range(p)) and t["max"].tolist() == [999.0 + j for j in range(p)]
    assert np.abs(t["50%"] - (499.5 + np.arange(p))).max() <= 1000 * t.attrs["daskscale"]["quantile_rank_error"]

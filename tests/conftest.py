"""Shared fixtures: one real LocalCluster of worker processes for the whole session.

The cluster has 2 single-threaded worker processes with a small memory limit
(``SESSION_MEMORY_LIMIT``), so tests that write data larger than that limit are out-of-core
for real. Tests that need their own cluster (a worker killed, a tighter limit) start one
with :func:`daskscale.connect` and close it themselves.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("DASKSCALE_PROGRESS", "0")

SESSION_MEMORY_LIMIT = 700 * 2**20


@pytest.fixture(scope="session")
def client():
    """A distributed Client on a 2-worker LocalCluster (processes, 700 MiB per worker)."""
    import daskscale

    conn = daskscale.connect(n_workers=2, threads_per_worker=1, memory_limit=SESSION_MEMORY_LIMIT,
                             dashboard_address=None, quiet=True)
    yield conn.client
    conn.close()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def small_store(tmp_path, client):
    """A 20,000 x 10 binary classification store in 4 chunks."""
    from daskscale.datasets import make_classification

    return make_classification(20_000, 10, chunk_rows=5_000, seed=0, store=tmp_path / "small.zarr")

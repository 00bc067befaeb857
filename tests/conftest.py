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


_SESSION: dict = {}


@pytest.fixture(scope="session")
def client():
    """A distributed Client on a 2-worker LocalCluster (processes, 700 MiB per worker)."""
    import daskscale

    conn = daskscale.connect(n_workers=2, threads_per_worker=1, memory_limit=SESSION_MEMORY_LIMIT,
                             dashboard_address=None, quiet=True)
    _SESSION["client"] = conn.client
    yield conn.client
    _SESSION.clear()
    conn.close()


@pytest.fixture(autouse=True)
def _session_client_stays_the_default(request):
    """A test that leaves another client as Dask's default (one it opened and did not close)
    would send every later test's work to that client's cluster (in a full run, later tests saw
    one worker instead of two): such a leftover is closed, with a warning naming the test.
    Only a change made by the test itself counts (a module's own cluster fixture is left alone)."""
    from distributed import get_client

    def default():
        try:
            return get_client()
        except ValueError:
            return None

    session = _SESSION.get("client")
    if session is None or default() is not session:
        yield
        return
    yield
    import warnings

    for _ in range(8):
        other = default()
        if other is None or other is session:
            return
        warnings.warn(f"{request.node.nodeid} left a Dask client to {other.scheduler.address} as the default; "
                      "closed it", RuntimeWarning)
        other.close()


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def small_store(tmp_path, client):
    """A 20,000 x 10 binary classification store in 4 chunks."""
    from daskscale.datasets import make_classification

    return make_classification(20_000, 10, chunk_rows=5_000, seed=0, store=tmp_path / "small.zarr")

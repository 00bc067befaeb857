"""Shared by the asv suites: one local cluster per benchmark process, cached datasets.

Sizes scale with ``DASKSCALE_BENCH_SCALE`` (default 1.0); the test suite runs every
benchmark once with a tiny scale (``tests/benchmarks``), so the suites never rot.
:func:`default_client` is the cluster users get (``daskscale.connect()`` with no arguments);
:func:`client` a fixed layout for the suites that need one.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

SCALE = float(os.environ.get("DASKSCALE_BENCH_SCALE", "1"))
CACHE = Path(os.environ.get("DASKSCALE_BENCH_CACHE", Path(tempfile.gettempdir()) / "daskscale-bench"))

_CONNECTIONS: dict[tuple, Any] = {}


def scaled(n: int, minimum: int = 1) -> int:
    """``n`` times the benchmark scale, at least ``minimum``."""
    return max(minimum, int(n * SCALE))


def client(n_workers: int = 2, threads_per_worker: int = 1, memory_limit: str | int = "4GiB",
           lean_monitoring: bool = True) -> Any:
    """A Client on a local cluster of worker processes, started once per process and layout
    (``lean_monitoring``: see :func:`daskscale.connect`)."""
    return connected(n_workers=n_workers, threads_per_worker=threads_per_worker, memory_limit=memory_limit,
                    dashboard_address=None, quiet=True, lean_monitoring=lean_monitoring)


def default_client() -> Any:
    """The cluster a user gets: ``daskscale.connect()`` with no arguments (here: one
    single-threaded worker per core, 75% of RAM shared), started once per process."""
    return connected()


def connected(**kwargs: Any) -> Any:
    """The Client of ``daskscale.connect(**kwargs)``, started once per process; starting another
    layout closes the previous one (two clusters would share the same cores)."""
    import daskscale

    key = tuple(sorted(kwargs.items()))
    if key not in _CONNECTIONS:
        # worker processes must import `benchmarks.*` (tasks defined there); asv loads the
        # suite without putting the repository on sys.path, and spawned workers copy sys.path
        root = str(Path(__file__).resolve().parents[1])
        if root not in sys.path:
            sys.path.insert(0, root)
        for other in list(_CONNECTIONS):
            _CONNECTIONS.pop(other).close()
        _CONNECTIONS[key] = daskscale.connect(**kwargs)
        # warm the workers (imports) so the first timed call does not pay for them
        _CONNECTIONS[key].client.run(_warm)
    return _CONNECTIONS[key].client


def _warm() -> None:
    import daskscale.storage  # noqa: F401
    import sklearn.linear_model  # noqa: F401


@atexit.register
def _close() -> None:
    for conn in _CONNECTIONS.values():
        conn.close()
    _CONNECTIONS.clear()


def cached_classification(name: str, n_rows: int, n_features: int, chunk_rows: int, seed: int = 7, **kw: Any) -> Path:
    """A classification store under the benchmark cache, generated once."""
    from daskscale.datasets import make_classification
    from daskscale.storage import is_store

    path = CACHE / f"{name}-{n_rows}x{n_features}-c{chunk_rows}-s{seed}.zarr"
    if not is_store(path):
        client()
        make_classification(n_rows, n_features, chunk_rows=chunk_rows, seed=seed, store=path, overwrite=True, **kw)
    return path


def held_out(store: Path, fraction: float = 0.1) -> tuple[Path, Any, Any]:
    """``(training store, X_test, y_test)``: the store's last ``fraction`` of blocks (at least
    one) held out in memory, the rest written once as a store of its own next to it, so what a
    fit reads is a plain store path that never contains the held-out rows."""
    import numpy as np

    from daskscale.storage import layout, write_store
    from daskscale.storage.convert import as_data

    d = as_data(store, require_y=True)
    n_test = max(1, round(fraction * len(d.row_chunks)))
    cut = d.n_rows - sum(d.row_chunks[-n_test:])
    train = Path(store).with_name(Path(store).stem + f"-train{n_test}.zarr")
    if not train.exists():
        write_store(train, d.X[:cut], d.y[:cut], chunk_rows=d.row_chunks[0],
                    attrs=layout.make_attrs(target="y", classes=d.classes, n_rows=cut))
    return train, np.asarray(d.X[cut:].compute()), np.asarray(d.y[cut:].compute())


def blocks_in_memory(store: Path) -> list[tuple[Any, Any]]:
    """The store's row blocks ``(X, y)`` as aligned NumPy arrays, read with zarr in this process."""
    import zarr

    from daskscale.storage.convert import aligned

    g = zarr.open_group(str(store), mode="r")
    X, y = g["X"], g["y"]
    step = X.chunks[0]
    return [(aligned(X[a:a + step]), aligned(y[a:a + step])) for a in range(0, X.shape[0], step)]


def reset_worker_peaks(cl: Any) -> None:
    """Restart every worker's resident-memory high-water mark (see :func:`worker_peak_memory`)."""
    from daskscale.monitor import peak_memory

    cl.run(peak_memory, True)


def worker_peak_memory(cl: Any) -> int:
    """Largest peak resident memory of any worker since :func:`reset_worker_peaks` (bytes): the
    kernel's own high-water mark, so no peak between two samples is missed."""
    from daskscale.monitor import peak_memory

    return int(max(cl.run(peak_memory).values()))

"""Run every asv benchmark once on tiny sizes, so the suites never rot (as flox does).

Each ``benchmarks/bench_*.py`` module is imported with ``DASKSCALE_BENCH_SCALE`` tiny (and the
opt-in bigger-than-RAM benchmark switched on, at that tiny scale); for every class,
``setup_cache``/``setup``/each ``time_``/``peakmem_``/``track_``/``mem_`` method/``teardown`` run
with the first value of each parameter: the method's own ``params`` when it has them (asv
prefers them to the class's), else the class's.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py"))
PREFIXES = ("time_", "peakmem_", "track_", "mem_")


def _cases():
    for mod in MODULES:
        yield pytest.param(mod, id=mod)


@pytest.fixture(autouse=True)
def _tiny(monkeypatch, tmp_path):
    monkeypatch.setenv("DASKSCALE_BENCH_SCALE", os.environ.get("DASKSCALE_TEST_BENCH_SCALE", "0.002"))
    monkeypatch.setenv("DASKSCALE_BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DASKSCALE_BENCH_BIG", "1")
    monkeypatch.syspath_prepend(str(ROOT))
    for name in list(sys.modules):
        if name == "benchmarks" or name.startswith("benchmarks."):
            sys.modules.pop(name)
    yield
    common = sys.modules.get("benchmarks.common")
    if common is not None:
        common._close()


@pytest.mark.parametrize("module", list(_cases()))
def test_benchmark_module_runs_once(module):
    mod = importlib.import_module(f"benchmarks.{module}")
    classes = [c for _, c in inspect.getmembers(mod, inspect.isclass)
               if c.__module__ == mod.__name__ and any(n.startswith(PREFIXES) for n in dir(c))]
    assert classes, f"benchmarks/{module}.py defines no benchmark class"
    for cls in classes:
        obj = cls()
        cache = [obj.setup_cache()] if hasattr(obj, "setup_cache") else []
        # a subclass turns an inherited benchmark off by setting it to None (asv skips it too);
        # benchmarks on the same parameters run together (a parameter may name a cluster to start)
        names = [n for n in dir(cls) if n.startswith(PREFIXES) and callable(getattr(cls, n))]
        for name in sorted(names, key=lambda n: (repr(_first_params(cls, n)), n)):
            first = _first_params(cls, name)
            if hasattr(obj, "setup"):
                obj.setup(*cache, *first)
            try:
                result = getattr(obj, name)(*cache, *first)
                if name.startswith("track_"):
                    assert result is not None and result == result, f"{cls.__name__}.{name} returned {result!r}"
            finally:
                if hasattr(obj, "teardown"):
                    obj.teardown(*cache, *first)


def _first_params(cls: type, name: str) -> list:
    """The first value of each parameter of benchmark ``name``, as asv finds its ``params``."""
    params = getattr(getattr(cls, name), "params", None) or getattr(cls, "params", [])
    if params and not isinstance(params[0], (list, tuple)):
        params = [params]
    return [p[0] for p in params]


def test_incremental_defaults_run_on_the_cluster_they_name():
    """``connect()`` rows run on the cluster ``daskscale.connect()`` starts with no arguments,
    the extra rows on one worker with one thread, and the fits never see the held-out rows."""
    from daskscale.cluster import default_layout
    from daskscale.storage.convert import as_data

    mod = importlib.import_module("benchmarks.bench_incremental")
    bench = mod.DefaultCluster()
    n, threads, _ = default_layout()
    for cluster, layout in ((mod.DEFAULT, (n, threads)), (mod.ONE_WORKER, (1, 1))):
        bench.setup(cluster)
        workers = bench.cl.scheduler_info(n_workers=-1)["workers"].values()
        assert (len(workers), {w["nthreads"] for w in workers}) == (layout[0], {layout[1]}), cluster
    rows, chunk = mod.scaled(mod.ROWS, 2000), mod.scaled(mod.CHUNK_ROWS, 500)
    n_test = round(0.1 * -(-rows // chunk)) * chunk  # the last 10% of the blocks
    full = as_data(mod.cached_classification("defaults", rows, mod.N_FEATURES, chunk_rows=chunk), require_y=True)
    assert as_data(bench.train, require_y=True).n_rows == rows - n_test
    np.testing.assert_array_equal(bench.Xte, full.X[rows - n_test:].compute())


def test_bigger_than_ram_is_opt_in(monkeypatch):
    """Without ``DASKSCALE_BENCH_BIG`` the bigger-than-RAM benchmark is skipped (asv skips a
    benchmark whose ``setup`` raises NotImplementedError) and writes nothing."""
    monkeypatch.delenv("DASKSCALE_BENCH_BIG")
    mod = importlib.import_module("benchmarks.bench_incremental")
    bench = mod.BiggerThanRAM()
    cache = bench.setup_cache()
    with pytest.raises(NotImplementedError, match="DASKSCALE_BENCH_BIG"):
        bench.setup(cache)
    cache_dir = importlib.import_module("benchmarks.common").CACHE
    assert not any(cache_dir.glob("big-*"))

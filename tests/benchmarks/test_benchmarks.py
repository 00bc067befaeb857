"""Run every asv benchmark once on tiny sizes, so the suites never rot (as flox does).

Each ``benchmarks/bench_*.py`` module is imported with ``DASKSCALE_BENCH_SCALE`` tiny; for
every class, ``setup_cache``/``setup``/each ``time_``/``peakmem_``/``track_``/``mem_`` method/
``teardown`` run with the first value of each parameter.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path

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
        params = getattr(cls, "params", [])
        if params and not isinstance(params[0], (list, tuple)):
            params = [params]
        first = [p[0] for p in params]
        obj = cls()
        cache = [obj.setup_cache()] if hasattr(obj, "setup_cache") else []
        # a subclass turns an inherited benchmark off by setting it to None (asv skips it too)
        for name in sorted(n for n in dir(cls) if n.startswith(PREFIXES) and callable(getattr(cls, n))):
            if hasattr(obj, "setup"):
                obj.setup(*cache, *first)
            try:
                result = getattr(obj, name)(*cache, *first)
                if name.startswith("track_"):
                    assert result is not None and result == result, f"{cls.__name__}.{name} returned {result!r}"
            finally:
                if hasattr(obj, "teardown"):
                    obj.teardown(*cache, *first)

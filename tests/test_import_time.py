"""Start-up stays light: ``import daskscale`` and ``daskscale --help`` load no heavy library.

A timing assertion would be flaky on a shared machine; what makes start-up slow is which
modules get imported, and that is checked exactly, in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("sklearn", "distributed", "zarr", "xarray")


def _modules_after(code: str) -> dict:
    probe = (f"import sys, json\n{code}\n"
             f"print(json.dumps({{m: m in sys.modules for m in {list(HEAVY)!r}}}))")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_import_daskscale_loads_no_heavy_library():
    loaded = _modules_after("import daskscale")
    assert not any(loaded.values()), f"import daskscale pulled in {[m for m, v in loaded.items() if v]}"


def test_public_names_still_resolve_lazily():
    loaded = _modules_after("import daskscale\nassert callable(daskscale.connect) and callable(daskscale.load_model)\n"
                            "from daskscale import ingest, describe, Incremental")
    assert loaded["distributed"] and loaded["zarr"]  # resolving the names did import what they need


def test_not_fitted_error_is_still_sklearns():
    code = ("from daskscale.errors import NotFittedError, DaskscaleError\n"
            "from sklearn.exceptions import NotFittedError as Sk\n"
            "assert issubclass(NotFittedError, Sk) and issubclass(NotFittedError, DaskscaleError)\n"
            "assert issubclass(NotFittedError, ValueError) and issubclass(NotFittedError, AttributeError)\n"
            "from daskscale.errors import NotFittedError as Again\n"
            "assert Again is NotFittedError and NotFittedError.__qualname__ == 'NotFittedError'")
    _modules_after(code)


def test_help_lists_the_verbs_without_loading_ml_libraries():
    code = ("from daskscale.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    p = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps("
                        f"[m for m in {['sklearn', 'zarr', 'xarray', 'distributed']!r} if m in sys.modules]))"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    for verb in ("ingest", "describe", "fit", "evaluate", "predict", "compress", "transfer", "demo"):
        assert f"  {verb} " in p.stdout
    assert json.loads(p.stdout.strip().splitlines()[-1]) == []


def test_an_online_learner_without_a_cluster_does_not_import_distributed():
    """Looking for a client to publish metrics to must not import distributed (0.5 s, paid by the
    first stream of every process): no client can exist before it is imported."""
    code = ("import numpy as np\nfrom daskscale.online import EventSource, OnlineLearner\n"
            "rng = np.random.default_rng(0)\n"
            "events = [dict(a=float(a), b=float(b), y=int(a > b)) for a, b in rng.normal(size=(300, 2))]\n"
            "ol = OnlineLearner().run(EventSource(events, max_batch=32))\n"
            "assert ol.summary()['rows'] == 300, ol.summary()")
    loaded = _modules_after(code)
    assert loaded["sklearn"] and not loaded["distributed"], loaded

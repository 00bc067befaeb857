"""Every model ``daskscale fit`` writes composes with the other verbs: strategies x verbs.

Each strategy fits once on a tiny store (joined to the session cluster); then every verb runs on
its model file. A cell either succeeds with a checked output or is refused in one line that says
why and what to do.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from daskscale.cli import main
from daskscale.cli.learn import STRATEGIES
from daskscale.models import load_model

N_ROWS = 2_000

#: strategy -> words the one-line refusal must hold, for the verbs that cannot apply
REFUSED = {
    ("ensemble", "compress"): ["ensemble", "vote", "--strategy incremental"],
    ("ensemble", "transfer"): ["ensemble", "vote", "--strategy incremental"],
    ("exact", "transfer"): ["ExactLogisticRegression", "partial_fit", "--strategy incremental"],
    ("feature-sharded", "transfer"): ["FeatureShardedLinear", "partial_fit", "--strategy incremental"],
    ("ovr", "transfer"): ["DistributedOneVsRest", "partial_fit", "--strategy incremental"],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory, client):
    from daskscale.datasets import make_classification

    path = tmp_path_factory.mktemp("matrix") / "tiny.zarr"
    return str(make_classification(N_ROWS, 5, chunk_rows=500, seed=0, store=path))


@pytest.fixture(scope="module")
def sched(client):
    return ["--scheduler", client.scheduler.address]


@pytest.fixture(scope="module")
def fitted(store, sched, tmp_path_factory):
    """strategy -> model file, each written by ``daskscale fit`` (fitted on first use)."""
    cache: dict[str, str] = {}
    folder = tmp_path_factory.mktemp("models")

    def get(strategy: str) -> str:
        if strategy not in cache:
            out = folder / f"{strategy}.skops"
            main(["fit", store, "--strategy", strategy, "--epochs", "2", "--out", str(out), *sched])
            assert out.exists()
            cache[strategy] = str(out)
        return cache[strategy]

    return get


@pytest.fixture(scope="module")
def X(store):
    return xr.open_zarr(store)["X"].values


def _refused(capsys, argv: list[str], words: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("daskscale: error: "), err
    for w in words:
        assert w in err[0], (w, err[0])


def test_the_matrix_covers_every_strategy():
    assert set(STRATEGIES) == {"incremental", "average", "exact", "feature-sharded", "ovr", "ensemble", "auto"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_evaluate(strategy, fitted, store, sched, capsys):
    model = fitted(strategy)
    capsys.readouterr()  # what fit printed
    main(["evaluate", model, store, "--json", *sched])
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["kind"] == "classifier" and metrics["rows"] == N_ROWS and metrics["blocks"] == 4
    assert 0.6 < metrics["accuracy"] <= 1.0  # the target is learnable: well above chance


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_predict(strategy, fitted, store, sched, X, tmp_path, capsys):
    model = fitted(strategy)
    capsys.readouterr()  # what fit printed
    out = tmp_path / "pred.zarr"
    main(["predict", model, store, "--out", str(out), *sched])
    assert f"predictions written to {out}" in capsys.readouterr().out
    pred = xr.open_zarr(out)["prediction"].values
    assert pred.shape == (N_ROWS,)
    np.testing.assert_array_equal(pred, np.asarray(load_model(model).predict(X)))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_compress(strategy, fitted, store, sched, X, tmp_path, capsys):
    model = fitted(strategy)
    capsys.readouterr()  # what fit printed
    out = tmp_path / "small.skops"
    argv = ["compress", model, "--eval", store, "--quantize", "int8", "--out", str(out), "--json", *sched]
    if (strategy, "compress") in REFUSED:
        _refused(capsys, argv, REFUSED[strategy, "compress"])
        assert not out.exists()
        return
    main(argv)
    rep = json.loads(capsys.readouterr().out)
    assert [r["setting"] for r in rep["rows"]] == ["float32", "int8"]
    assert all(0.6 < r["score"] <= 1.0 for r in rep["rows"])
    small = load_model(out)
    assert type(small).__name__ == "CompressedClassifier"
    agree = np.mean(np.asarray(small.predict(X)) == np.asarray(load_model(model).predict(X)))
    assert agree > 0.97  # int8 weights: the same model, a few borderline rows aside


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_transfer(strategy, fitted, store, sched, X, tmp_path, capsys):
    model = fitted(strategy)
    capsys.readouterr()  # what fit printed
    out = tmp_path / "tuned.skops"
    argv = ["transfer", model, store, "--epochs", "1", "--min-steps", "5", "--out", str(out), "--json", *sched]
    if (strategy, "transfer") in REFUSED:
        _refused(capsys, argv, REFUSED[strategy, "transfer"])
        assert not out.exists()
        return
    main(argv)
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert 0.6 < result["score"] <= 1.0 and 0.6 < result["zero_shot"] <= 1.0
    tuned = load_model(out)
    assert np.asarray(tuned.predict(X)).shape == (N_ROWS,)

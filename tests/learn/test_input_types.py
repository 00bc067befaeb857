"""Every estimator fits, predicts and scores on every accepted input; NumPy in, NumPy out.

Matrix: estimators x input kinds (NumPy, pandas, dask, xarray DataArray, xarray Dataset,
store path as str and as Path), each case fitting, predicting and scoring on that kind.
In-memory input must give NumPy predictions; any other kind a lazy dask array. Predictions
must equal those on the same rows given as NumPy.
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

import daskscale
from daskscale.learn.ensemble import DistributedBagging, DistributedOneVsRest
from daskscale.learn.incremental import Incremental
from daskscale.learn.model_parallel import FeatureShardedLinear
from daskscale.learn.parallel import ParameterAveraging
from daskscale.learn.search import HyperbandSearch, SuccessiveHalvingSearch
from daskscale.learn.solvers import ExactLinearRegression, ExactLogisticRegression

ESTIMATORS = {
    "incremental": (lambda: Incremental(SGDClassifier(random_state=0), progress=False, random_state=0), "clf"),
    "average": (lambda: ParameterAveraging(SGDClassifier(random_state=0), random_state=0), "clf"),
    "ovr": (lambda: DistributedOneVsRest(LogisticRegression()), "clf"),
    "ensemble": (lambda: DistributedBagging(DecisionTreeClassifier(max_depth=3), n_estimators=2, random_state=0),
                 "clf"),
    "feature-sharded": (lambda: FeatureShardedLinear("squared", n_shards=2, max_iter=50), "reg"),
    "successive-halving": (lambda: SuccessiveHalvingSearch(SGDClassifier(random_state=0), {"alpha": [1e-4, 1e-3]},
                                                           n_candidates=2, random_state=0), "clf"),
    "hyperband": (lambda: HyperbandSearch(SGDClassifier(random_state=0), {"alpha": [1e-4, 1e-3]}, max_blocks=3,
                                          random_state=0), "clf"),
    "exact-logistic": (lambda: ExactLogisticRegression(), "clf"),
    "exact-linear": (lambda: ExactLinearRegression(), "reg"),
}
KINDS = ["numpy", "pandas", "dask", "xarray-dataarray", "xarray-dataset", "store-str", "store-path"]
ROWS, CHUNK = 2_000, 500


@pytest.fixture(scope="module")
def stores(tmp_path_factory, client):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(ROWS, 4))
    ys = {"clf": (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64), "reg": X @ [1.0, -2.0, 0.5, 0.0] + 0.1}
    root = tmp_path_factory.mktemp("inputs")
    paths = {t: daskscale.ingest(X, root / f"{t}.zarr", y=y, chunk_rows=CHUNK) for t, y in ys.items()}
    return X, ys, {t: Path(p) for t, p in paths.items()}


def _as(kind: str, X: np.ndarray, y: np.ndarray, store: Path) -> tuple:
    """(X, y) of ``kind``: y is None where X carries the target (a Dataset, a store)."""
    if kind == "numpy":
        return X, y
    if kind == "pandas":
        return pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), pd.Series(y, name="t")
    if kind == "dask":
        return da.from_array(X, chunks=(CHUNK, -1)), da.from_array(y, chunks=CHUNK)
    if kind == "xarray-dataarray":
        return xr.DataArray(X, dims=("sample", "feature")).chunk({"sample": CHUNK}), y
    if kind == "xarray-dataset":
        return xr.Dataset({"X": (("sample", "feature"), X), "y": (("sample",), y)}).chunk({"sample": CHUNK}), None
    return (str(store) if kind == "store-str" else store), None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_fit_predict_score_on_every_input(stores, name, kind):
    make, task = ESTIMATORS[name]
    X, ys, paths = stores
    Xk, yk = _as(kind, X, ys[task], paths[task])
    model = make().fit(Xk, yk)
    pred = model.predict(Xk)
    if kind in ("numpy", "pandas"):
        assert isinstance(pred, np.ndarray), type(pred)
    else:
        assert isinstance(pred, da.Array), type(pred)
        pred = pred.compute()
    assert pred.shape == (ROWS,)
    expected = model.predict(X.astype(np.float32) if kind.startswith("store") else X)
    np.testing.assert_allclose(np.asarray(pred, dtype=float), np.asarray(expected, dtype=float), rtol=1e-4, atol=1e-4)
    score = model.score(Xk, yk)
    assert isinstance(score, float) and score > (0.8 if task == "clf" else 0.9), score

"""Where the exact solvers run (one task / persisted / streamed), what they accept and return,
their convergence report and their progress metrics."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from daskscale.learn.solvers import ExactLinearRegression, ExactLogisticRegression, ExactPoissonRegression
from daskscale.monitor import recent_metrics
from daskscale.storage import load_xy


def test_small_data_is_one_task_and_equals_the_map_reduce(client, small_store):
    # tight: at the default tol the two stop at different points within tol (their
    # preconditioners sample different rows); both must reach the same optimum
    one = ExactLogisticRegression(tol=1e-8, progress=False).fit(small_store)
    per = ExactLogisticRegression(tol=1e-8, persist=True, progress=False).fit(small_store)
    assert one.placement_ == "one-task" and per.placement_ == "persisted"
    np.testing.assert_allclose(one.coef_, per.coef_, rtol=1e-5, atol=1e-7)


def test_defaults_mean_sklearns_defaults(client, small_store):
    X, y = (a.compute() for a in load_xy(small_store))
    ours = ExactLogisticRegression(progress=False).fit(small_store)
    ref = LogisticRegression().fit(X, y)
    assert ours.get_params()["tol"] == ref.get_params()["tol"] and ours.max_iter == ref.max_iter
    assert ours.converged_ and ours.n_iter_[0] <= ref.n_iter_[0]
    assert ours.score(X, y) == pytest.approx(ref.score(X, y), abs=5e-4)


@pytest.mark.parametrize("cls", [ExactLogisticRegression, ExactPoissonRegression, ExactLinearRegression])
def test_predict_and_score_take_every_input(cls, client, small_store):
    X, y = (a.compute() for a in load_xy(small_store))
    if cls is ExactPoissonRegression:
        y = np.random.default_rng(0).poisson(np.exp(0.1 * X[:, 0] / X[:, 0].std()))
    kw = {} if cls is ExactLinearRegression else {"progress": False}
    est = cls(**kw).fit(X, y)
    ref = est.predict(X)
    assert isinstance(ref, np.ndarray)  # NumPy in, NumPy out
    Xd = da.from_array(X, chunks=(5_000, X.shape[1]))
    inputs = {"pandas": pd.DataFrame(X), "dask": Xd,
              "xarray": xr.DataArray(X, dims=("sample", "feature"))}
    if cls is ExactLogisticRegression:
        inputs["store"] = str(small_store)  # before: a raw ValueError (string to float)
    for name, inp in inputs.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pandas columns named 0..9 vs none at fit
            got = est.predict(inp)
        got = got.compute() if hasattr(got, "compute") else got
        np.testing.assert_allclose(got, ref, rtol=1e-6, err_msg=name)
    if cls is ExactLogisticRegression:
        assert est.score(str(small_store)) == pytest.approx(est.score(X, y))


def test_not_converged_warns_like_sklearn(client, small_store):
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations"):
        est = ExactLogisticRegression(max_iter=2, progress=False).fit(small_store)
    assert not est.converged_ and est.n_iter_[0] == 2


@pytest.mark.parametrize("persist", ["auto", True])
def test_progress_metrics_reach_the_scheduler(client, small_store, persist):
    before = {m.get("run") for m in recent_metrics(client)}  # other tests' fits share the scheduler
    est = ExactLogisticRegression(persist=persist, progress=True).fit(small_store)
    msgs = [m for m in recent_metrics(client) if str(m.get("run", "")).startswith("exact-logistic")
            and m.get("run") not in before and "iteration" in m]
    assert msgs and {"loss", "grad_max"} <= set(msgs[-1])
    assert max(m["iteration"] for m in msgs) <= est.n_iter_[0]

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


def test_persisted_blocks_are_evaluated_by_one_task_per_worker_with_the_map_reduces_bits(client, small_store):
    from daskscale.learn.solvers_fit import LocalBlocks, _laid_arrays, _reference
    from daskscale.learn.solvers_kernels import LossGradient, encode_target
    from daskscale.reduce import reduce
    from daskscale.engine.source import Source
    from daskscale.storage.convert import Data

    src = Source.of(str(small_store))
    ref = _reference(src.read(0)[0][:1])
    Xl, y = _laid_arrays(src.data, ref, np.float32, src.reader)
    yc = y.map_blocks(encode_target, np.array([0, 1]), dtype=np.int32)
    Xl, yc = client.persist([Xl, yc])
    local = LocalBlocks(client, Xl, yc)
    workers = set(client.scheduler_info()["workers"])
    # every block once, grouped by a worker that holds it: one task per worker and evaluation
    assert sorted(i for blocks in local.groups.values() for i, _, _ in blocks) == list(range(src.n_blocks))
    assert set(local.groups) <= workers and len(local.groups) <= len(workers)
    rng = np.random.default_rng(3)
    r = LossGradient("logistic", rng.normal(size=11), rng.normal(size=10), rng.uniform(0.5, 2, size=10))
    from distributed import get_task_stream

    with get_task_stream(client) as ts:
        loss, grad = local.reduce(r)
    # one task per worker that holds blocks, not one per block
    assert len(ts.data) == len(local.groups) < src.n_blocks
    want_loss, want_grad = reduce(Data(Xl, yc), [r])["loss_grad"]
    assert loss == want_loss  # same bits: the same per-block states merged in the same tree
    np.testing.assert_array_equal(grad, want_grad)
    # and the blocks are the store's rows laid out (minus the first row), the target its own
    from daskscale.learn.solvers_kernels import layout_block

    X1, y1 = src.read(1)
    np.testing.assert_array_equal(np.asarray(Xl.blocks[1].compute()), layout_block(X1, ref))
    np.testing.assert_array_equal(np.asarray(yc.blocks[1].compute()), encode_target(y1, np.array([0, 1])))

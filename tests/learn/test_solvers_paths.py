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


@pytest.fixture
def store64(tmp_path, small_store):
    """``small_store``'s rows as float64: the products of float32 blocks are float32, whose
    rounding (1e-7 of each score) leaves the objective flat to ~1e-10 near the optimum, so two
    paths stop (converged, on ftol) up to 1e-4 apart in the coefficients; float64 blocks let
    ``tol=1e-8`` pin the optimum itself."""
    from daskscale.storage import layout, write_store

    X, y = load_xy(small_store)
    path = tmp_path / "small64.zarr"
    write_store(path, X.astype(np.float64), y, chunk_rows=int(X.chunks[0][0]),
                attrs=layout.make_attrs(target="y", classes=[0, 1], n_rows=int(X.shape[0])))
    return path


def test_small_data_is_one_task_and_equals_the_map_reduce(client, store64):
    # tight: at the default tol the two stop at different points within tol (their
    # preconditioners sample different rows); both must reach the same optimum
    one = ExactLogisticRegression(tol=1e-8, progress=False).fit(store64)
    per = ExactLogisticRegression(tol=1e-8, persist=True, progress=False).fit(store64)
    assert one.placement_ == "one-task" and per.placement_ == "persisted"
    np.testing.assert_allclose(one.coef_, per.coef_, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("cls", [ExactLogisticRegression, ExactPoissonRegression])
def test_every_placement_reaches_the_one_task_optimum(cls, client, store64):
    # a store (read by the engine's reader) and a dask array (persisted blocks laid out from
    # dask's own), held or streamed: the same optimum as the one-task fit of the same rows
    X, y = load_xy(store64)
    if cls is ExactPoissonRegression:
        y = (X[:, 0] > 0).astype(np.float64) * 3.0  # counts with a link to the features
    Xd = X.rechunk((int(X.chunks[0][0]), X.shape[1]))
    one = cls(tol=1e-8, progress=False).fit(Xd.compute(), y.compute())
    assert one.placement_ == "one-task"
    fits = [cls(tol=1e-8, persist=p, progress=False).fit(Xd, y) for p in (True, False)]
    if cls is ExactLogisticRegression:
        fits += [cls(tol=1e-8, persist=p, progress=False).fit(store64) for p in (True, False)]
    for est in fits:
        assert est.placement_ == ("persisted" if est.persist else "streamed") and est.converged_
        np.testing.assert_allclose(est.coef_, one.coef_, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(est.intercept_, one.intercept_, rtol=1e-5, atol=1e-7)


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


def test_held_blocks_are_evaluated_by_one_task_per_worker_with_the_map_reduces_bits(client, small_store):
    from distributed import get_task_stream, wait

    from daskscale.engine.source import Source
    from daskscale.learn.solvers_fit import LazyBlocks, WorkerBlocks, _first_reducers, _reference, Spec
    from daskscale.learn.solvers_kernels import LossGradient

    src = Source.of(str(small_store))
    ref = _reference(src.read(0)[0][:1])
    spec = Spec("logistic", 1.0, 1e-4, 100, src.data.row_chunks)
    held = WorkerBlocks(client, src.data, ref, persist=True, reader=src.reader)
    streamed = WorkerBlocks(client, src.data, ref, persist=False, reader=src.reader)
    lazy = LazyBlocks(src.data, ref, persist=False)
    firsts = [b.first_pass(_first_reducers(spec)) for b in (held, streamed, lazy)]
    # the first pass fused with the read gives what the map-reduce over the laid-out blocks gives
    for got in firsts[:2]:
        assert got["finite"] == firsts[2]["finite"]
        np.testing.assert_array_equal(got["labels"], firsts[2]["labels"])
        np.testing.assert_array_equal(got["gram"][0], firsts[2]["gram"][0])
    classes = np.array(firsts[0]["labels"])
    for b in (held, streamed, lazy):
        b.encode(classes)
    workers = set(client.scheduler_info()["workers"])
    # every block once, grouped by a worker that holds it: one task per worker and evaluation
    assert sorted(i for blocks in held.groups.values() for i, _, _ in blocks) == list(range(src.n_blocks))
    assert set(held.groups) <= workers and len(held.groups) <= len(workers)
    rng = np.random.default_rng(3)
    r = LossGradient("logistic", rng.normal(size=11), rng.normal(size=10), rng.uniform(0.5, 2, size=10))
    wait([yc for blocks in held.groups.values() for _, _, yc in blocks])  # the targets encoded (in the background)
    with get_task_stream(client) as ts:
        loss, grad = held.reduce(r)
    # one task per worker that holds blocks, not one per block
    assert len(ts.data) == len(held.groups) < src.n_blocks
    for other in (streamed, lazy):  # same bits: the same per-block states merged in the same tree
        want_loss, want_grad = other.reduce(r)
        assert loss == want_loss
        np.testing.assert_array_equal(grad, want_grad)
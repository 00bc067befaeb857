"""Data parallelism by parameter averaging; blockwise predict/score; survival of a lost worker."""

from __future__ import annotations

import os
import signal
import threading

import dask.array as da
import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier
from sklearn.tree import DecisionTreeClassifier

from daskscale.errors import InputTypeError, NotFittedError
from daskscale.learn.parallel import ModelAverage, ParameterAveraging, ReplicaLostWarning
from daskscale.learn.predict import predict_blockwise, score_blockwise
from daskscale.storage import load_xy


def _xy(store):
    X, y = load_xy(store)
    return X.compute(), y.compute()


def test_average_uses_every_worker_and_matches_one_replica(client, small_store):
    X, y = _xy(small_store)
    kw = dict(epochs=2, merge_every=1, random_state=0)
    one = ParameterAveraging(SGDClassifier(random_state=0), n_replicas=1, **kw).fit(small_store)
    two = ParameterAveraging(SGDClassifier(random_state=0), **kw).fit(small_store)
    assert two.n_replicas_ == 2 and one.n_replicas_ == 1
    assert two.n_rows_seen_ == one.n_rows_seen_ == 2 * 20_000
    assert two.rounds_ == one.rounds_ // 2  # two shards per round instead of one
    assert two.score(X, y) > 0.8
    assert abs(two.score(X, y) - one.score(X, y)) < 0.03


def test_mlp_replicas_are_averaged(client, small_store):
    X, y = _xy(small_store)
    pa = ParameterAveraging(MLPClassifier((16,), random_state=0), epochs=4, merge_every=1,
                            random_state=0).fit(small_store)
    one = ParameterAveraging(MLPClassifier((16,), random_state=0), epochs=2, n_replicas=1, merge_every=1,
                             random_state=0).fit(small_store)
    assert [c.shape for c in pa.estimator_.coefs_] == [(10, 16), (16, 1)]
    assert pa.n_rows_seen_ == 80_000
    # in the same number of rounds (the same wall time: each replica learns as many blocks as the
    # single replica does), two averaged replicas learn as well as one
    assert pa.rounds_ == one.rounds_
    assert pa.score(X, y) >= one.score(X, y) - 0.03


def test_reread_from_store_gives_same_model_as_persisted(client, small_store):
    a = ParameterAveraging(SGDRegressor(random_state=0), persist=True, random_state=0, shuffle=False)
    b = ParameterAveraging(SGDRegressor(random_state=0), persist=False, random_state=0, shuffle=False)
    X, y = _xy(small_store)
    a.fit(X, y.astype(float))
    b.fit(X, y.astype(float))
    np.testing.assert_allclose(a.estimator_.coef_, b.estimator_.coef_)


def test_model_average_is_weighted_and_order_free():
    rng = np.random.default_rng(0)
    models = []
    for _ in range(4):
        m = SGDRegressor().partial_fit(rng.normal(size=(5, 3)), rng.normal(size=5))
        m.coef_ = rng.normal(size=3)
        models.append(m)
    w = [1, 2, 3, 4]
    avg = ModelAverage()
    s = [avg.map(m, n) for m, n in zip(models, w)]
    left = avg.finalize(avg.merge(avg.merge(s[0], s[1]), avg.merge(s[2], s[3])))
    right = avg.finalize(avg.merge(s[3], avg.merge(s[2], avg.merge(s[1], s[0]))))
    expected = sum(n * m.coef_ for m, n in zip(models, w)) / sum(w)
    np.testing.assert_allclose(left.coef_, expected)
    np.testing.assert_allclose(right.coef_, expected)
    assert avg.merge(avg.empty(3), s[0]) is s[0]


def test_estimator_without_partial_fit_is_refused(client, small_store):
    with pytest.raises(InputTypeError, match="partial_fit"):
        ParameterAveraging(DecisionTreeClassifier()).fit(small_store)
    with pytest.raises(NotFittedError):
        ParameterAveraging(SGDClassifier()).predict(np.zeros((2, 10)))


def test_predict_blockwise_returns_lazy_array_equal_to_in_memory(client, small_store):
    X, y = _xy(small_store)
    m = SGDClassifier(random_state=0).fit(X, y)
    pred = predict_blockwise(m, small_store)
    proba = predict_blockwise(SGDClassifier(loss="log_loss", random_state=0).fit(X, y), small_store,
                              method="predict_proba")
    assert isinstance(pred, da.Array) and pred.numblocks == (4,)
    np.testing.assert_array_equal(pred.compute(), m.predict(X))
    assert proba.shape == (20_000, 2)
    assert score_blockwise(m, small_store) == pytest.approx(m.score(X, y))


def test_fit_survives_worker_loss(tmp_path):
    import daskscale
    from daskscale.datasets import make_classification

    with daskscale.connect(n_workers=2, threads_per_worker=1, memory_limit="600MiB", dashboard_address=None,
                           quiet=True) as conn:
        c = conn.client
        store = make_classification(20_000, 10, chunk_rows=2_500, seed=3, store=tmp_path / "ft.zarr")
        X, y = _xy(store)
        kw = dict(epochs=2, merge_every=1, random_state=0, timeout=60)
        # alpha=1e-2: on these unscaled features the default alpha swings by points with the block order alone
        sgd = SGDClassifier(alpha=1e-2, random_state=0)
        calm = ParameterAveraging(sgd, **kw).fit(store)
        victim = sorted(c.scheduler_info(n_workers=-1)["workers"])[1]
        pid = c.run(os.getpid, workers=[victim])[victim]

        def kill(round_index, _model):
            if round_index == 2:  # lands while round 3's replicas are training
                threading.Timer(0.05, os.kill, (pid, signal.SIGKILL)).start()

        with pytest.warns(ReplicaLostWarning, match="lost"):
            hit = ParameterAveraging(sgd, callback=kill, **kw).fit(store)
        assert victim not in c.scheduler_info(n_workers=-1)["workers"]
        assert hit.replicas_lost_ >= 1
        assert abs(hit.score(X, y) - calm.score(X, y)) <= 0.01


def test_stuck_replica_times_out_and_the_fit_goes_on(tmp_path):
    """A worker busy with something else for longer than ``timeout``: its replicas are dropped
    round after round (the rounds queued behind are redone), the fit ends, with a warning."""
    import time

    import dask

    import daskscale
    from daskscale.datasets import make_classification

    # no work stealing: the stuck worker's queued replicas must stay stuck (else Dask moves them)
    with dask.config.set({"distributed.scheduler.work-stealing": False}), \
            daskscale.connect(n_workers=2, threads_per_worker=1, memory_limit="600MiB", dashboard_address=None,
                              quiet=True) as conn:
        c = conn.client
        store = make_classification(20_000, 10, chunk_rows=2_500, seed=3, store=tmp_path / "st.zarr")
        X, y = _xy(store)
        sgd = SGDClassifier(alpha=1e-2, random_state=0)
        calm = ParameterAveraging(sgd, epochs=1, random_state=0, persist=False).fit(store)
        victim = sorted(c.scheduler_info(n_workers=-1)["workers"])[1]
        blocker = c.submit(time.sleep, 8, workers=[victim], allow_other_workers=False, pure=False)
        with pytest.warns(ReplicaLostWarning, match="timed out"):
            hit = ParameterAveraging(sgd, epochs=1, random_state=0, persist=False, timeout=1.0).fit(store)
        assert not blocker.done()  # the fit ended without waiting for the stuck worker
        assert hit.replicas_lost_ >= 1
        assert 0 < hit.n_rows_seen_ < calm.n_rows_seen_  # the stuck replica's blocks were not merged
        assert abs(hit.score(X, y) - calm.score(X, y)) <= 0.02


def _by_hand(est, X, y, row_chunks, n_workers, merge_every):
    """Parameter averaging in-process, from the documented pieces: row-balanced shards, rounds of
    ``merge_every`` units per replica, rows-weighted averages."""
    import copy

    from daskscale.engine.loop import piece
    from daskscale.learn.parallel import shard_units

    starts = np.concatenate([[0], np.cumsum(row_chunks)])
    shards = shard_units(range(len(row_chunks)), n_workers)
    model, first = est, True
    for r in range(0, max(len(s) for s in shards), merge_every):
        avg, state = ModelAverage(), None
        for units in shards:
            if not units[r:r + merge_every]:
                continue
            m, n = copy.deepcopy(model), 0
            for u in units[r:r + merge_every]:
                i = u if isinstance(u, int) else u[0]
                a, b = (0, row_chunks[i]) if isinstance(u, int) else piece(row_chunks[i], u[1], u[2])
                xb, yb = X[starts[i] + a:starts[i] + b], y[starts[i] + a:starts[i] + b]
                m.partial_fit(xb, yb, classes=[0, 1]) if first else m.partial_fit(xb, yb)
                n += len(xb)
            state = avg.merge(state, avg.map(m, n))
        model, first = avg.finalize(state), False
    return model


def _ahead_taken():
    from daskscale.engine.process import PROCESS

    return PROCESS.ahead_taken


@pytest.mark.parametrize("persist", [False, True])
def test_odd_blocks_are_split_by_rows_and_the_fit_is_the_documented_algorithm(client, tmp_path, persist):
    """5 blocks (the last one short) on 2 workers: the fifth is cut in two row pieces, one per
    replica, so both replicas see the same rows; the model is exactly the in-process average."""
    from daskscale.datasets import make_classification

    from daskscale.engine.loop import piece
    from daskscale.learn.parallel import shard_units

    store = make_classification(9_000, 6, chunk_rows=2_000, seed=4, store=tmp_path / "odd.zarr")
    X, y = _xy(store)
    sizes = [2000, 2000, 2000, 2000, 1000]
    rows = [sum(sizes[u] if isinstance(u, int) else -np.subtract(*piece(sizes[u[0]], u[1], u[2])) for u in shard)
            for shard in shard_units(range(5), 2)]
    assert rows == [4_500, 4_500]  # balanced by rows, not 3 blocks against 2
    sgd = SGDClassifier(alpha=1e-3, random_state=0)
    for merge_every in (1, 2):
        taken = client.run(_ahead_taken)
        pa = ParameterAveraging(sgd, merge_every=merge_every, shuffle=False, persist=persist,
                                random_state=0).fit(store)
        if not persist:  # rounds after the first start from the block each worker read ahead
            assert all(n > taken[w] for w, n in client.run(_ahead_taken).items())
        assert pa.n_rows_seen_ == 9_000
        assert pa.rounds_ == -(-3 // merge_every)  # 2 whole blocks + a half of the fifth per replica
        ref = _by_hand(SGDClassifier(alpha=1e-3, random_state=0), X, y, [2000, 2000, 2000, 2000, 1000], 2,
                       merge_every)
        np.testing.assert_allclose(pa.estimator_.coef_, ref.coef_, rtol=1e-10)
        np.testing.assert_allclose(pa.estimator_.intercept_, ref.intercept_, rtol=1e-10)


def test_a_bad_block_is_named_not_taken_for_a_lost_worker(client, tmp_path):
    import daskscale
    from daskscale.errors import SchemaError

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4_000, 3))
    y = (X[:, 0] > 0).astype(int)
    X[2_500, 1] = np.nan  # block 2 of 1,000-row blocks
    store = tmp_path / "nan.zarr"
    daskscale.ingest(X, store, y=y, chunk_rows=1_000)
    with pytest.raises(SchemaError, match=r"block 2 \(rows 2000-3000\) has NaN in 1 row\(s\), first at row 500"):
        ParameterAveraging(SGDClassifier(random_state=0), shuffle=False, persist=False, timeout=60).fit(store)


def test_batch_size_is_rows_per_partial_fit_call_and_chunk_rows_rows_per_block(client):
    """``batch_size`` means what it means everywhere (rows per ``partial_fit`` call, here 250);
    ``chunk_rows`` cuts the blocks (1,000 rows: one round per block with one replica)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4_000, 3))
    y = (X[:, 0] > 0).astype(int)

    def by_hand(rows):
        m = SGDClassifier(random_state=0)
        for a in range(0, len(X), rows):
            m.partial_fit(X[a:a + rows], y[a:a + rows], classes=[0, 1])
        return m

    kw = dict(n_replicas=1, merge_every=1, shuffle=False, chunk_rows=1_000)
    batched = ParameterAveraging(SGDClassifier(random_state=0), batch_size=250, **kw).fit(X, y)
    whole = ParameterAveraging(SGDClassifier(random_state=0), **kw).fit(X, y)
    assert batched.rounds_ == whole.rounds_ == 4 and batched.n_rows_seen_ == 4_000
    np.testing.assert_allclose(batched.estimator_.coef_, by_hand(250).coef_, rtol=1e-10)
    np.testing.assert_allclose(whole.estimator_.coef_, by_hand(1_000).coef_, rtol=1e-10)
    assert not np.allclose(batched.estimator_.coef_, whole.estimator_.coef_)


def test_merge_every_auto_is_one_round_per_epoch_alone_and_sqrt_of_the_shard_together(client, tmp_path):
    """One replica: no merge at all (one round per epoch, the mini-batch loop); several:
    ceil(sqrt(blocks per replica)) blocks between merges; a bad value is named."""
    from daskscale.datasets import make_classification
    from daskscale.errors import SchemaError

    store = make_classification(18_000, 5, chunk_rows=1_000, seed=5, store=tmp_path / "auto.zarr")
    sgd = SGDClassifier(alpha=1e-2, random_state=0)  # unscaled features: a smaller alpha swings by points
    one = ParameterAveraging(sgd, epochs=2, n_replicas=1, random_state=0).fit(store)
    two = ParameterAveraging(sgd, epochs=2, random_state=0).fit(store)
    every = ParameterAveraging(sgd, epochs=2, merge_every=1, random_state=0).fit(store)
    assert one.rounds_ == 2 and one.n_rows_seen_ == 36_000
    assert two.rounds_ == 2 * 3 and every.rounds_ == 2 * 9  # 9 blocks per replica: ceil(sqrt(9)) = 3
    assert abs(two.score(*_xy(store)) - every.score(*_xy(store))) < 0.01
    with pytest.raises(SchemaError, match="merge_every must be 'auto' or a number of blocks >= 1, not 0"):
        ParameterAveraging(sgd, merge_every=0).fit(store)

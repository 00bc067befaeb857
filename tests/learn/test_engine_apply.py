"""The one blockwise apply and the one score, pooled over rows (daskscale.engine.apply)."""

from __future__ import annotations

from itertools import pairwise

import dask.array as da
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from daskscale.engine.apply import ScoreState, apply_blockwise, score_blockwise, score_state
from daskscale.errors import SchemaError

#: uneven row blocks, one of them empty
BLOCKS = (400, 250, 0, 350)


def _offset_blocks(rng):
    """Rows in blocks whose target means differ by 5: the model explains the offsets.

    Within a block the target's spread is 1 (x0) + 1 (noise), so each block alone has
    R^2 ~ 0.5; across blocks the offsets add ~17 of spread the model explains, so the R^2
    over all rows is ~0.95. A mean of per-block R^2 reports the first, the truth is the second.
    """
    offsets = np.repeat([0.0, 5.0, 7.0, 10.0], BLOCKS)
    X = np.column_stack([rng.normal(size=len(offsets)), offsets + rng.normal(0, 0.01, len(offsets))])
    y = X[:, 0] + offsets + rng.normal(size=len(offsets))
    return X, y, LinearRegression().fit(X, y)


def _bounds():
    edges = np.cumsum((0, *BLOCKS))
    return list(pairwise(edges))  # the empty block too: its state is the empty state


def test_mean_of_block_r2_is_not_the_r2_of_all_rows_by_construction(rng):
    X, y, m = _offset_blocks(rng)
    per_block = [(b - a, r2_score(y[a:b], m.predict(X[a:b]))) for a, b in _bounds() if b > a]
    weighted_mean = sum(n * r for n, r in per_block) / len(y)
    assert r2_score(y, m.predict(X)) - weighted_mean > 0.3  # what the old row-weighted mean got wrong


def test_r2_folded_over_blocks_equals_sklearn_over_all_rows(rng):
    X, y, m = _offset_blocks(rng)
    w = rng.uniform(0.1, 3.0, size=len(y))
    state, weighted = ScoreState("regressor"), ScoreState("regressor")
    for a, b in _bounds():
        state += score_state(m, "regressor", X[a:b], y[a:b])
        weighted += score_state(m, "regressor", X[a:b], y[a:b], w[a:b])
    assert state.value() == pytest.approx(r2_score(y, m.predict(X)), rel=1e-12)
    assert weighted.value() == pytest.approx(r2_score(y, m.predict(X), sample_weight=w), rel=1e-12)
    # merged in another order and grouping: the same state
    states = [score_state(m, "regressor", X[a:b], y[a:b]) for a, b in _bounds()]
    regrouped = states[3] + (states[1] + (states[0] + states[2]))
    assert regrouped.value() == pytest.approx(state.value(), rel=1e-12)


def test_r2_of_a_target_far_from_zero_keeps_its_digits(rng):
    # sums of y and y**2 would cancel here: 1e8**2 leaves no digit for a spread of 1
    X, y, _ = _offset_blocks(rng)
    y_far = y + 1e8
    m_far = LinearRegression().fit(X, y_far)
    state = ScoreState("regressor")
    for a, b in _bounds():
        state += score_state(m_far, "regressor", X[a:b], y_far[a:b])
    assert state.value() == pytest.approx(r2_score(y_far, m_far.predict(X)), rel=1e-9)


def test_two_output_and_constant_targets_follow_r2_score(rng):
    X = rng.normal(size=(300, 3))
    Y = np.column_stack([X @ [1.0, 2.0, 0.0], X[:, 0] ** 2])
    m = LinearRegression().fit(X, Y)
    s = score_state(m, "regressor", X[:120], Y[:120]) + score_state(m, "regressor", X[120:], Y[120:])
    assert s.value() == pytest.approx(r2_score(Y, m.predict(X)), rel=1e-12)
    flat = LinearRegression().fit(X, np.full(300, 3.0))
    assert score_state(flat, "regressor", X, np.full(300, 3.0)).value() == r2_score(np.full(300, 3.0),
                                                                                   flat.predict(X)) == 1.0


def test_accuracy_pooled_over_uneven_blocks_with_weights(rng):
    X = rng.normal(size=(1000, 4))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=1000) > 0, "yes", "no")
    m = LogisticRegression().fit(X[:200], y[:200])
    w = rng.uniform(0.1, 3.0, size=1000)
    plain, weighted = ScoreState("classifier"), ScoreState("classifier")
    for a, b in _bounds():
        plain += score_state(m, "classifier", X[a:b], y[a:b])
        weighted += score_state(m, "classifier", X[a:b], y[a:b], w[a:b])
    assert plain.value() == pytest.approx(accuracy_score(y, m.predict(X)), rel=1e-12)
    assert weighted.value() == pytest.approx(accuracy_score(y, m.predict(X), sample_weight=w), rel=1e-12)


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_score_blockwise_on_dask_equals_sklearn_on_all_rows(client, rng, kind):
    X, y, m = _offset_blocks(rng)
    if kind == "classifier":
        y = (y > np.median(y)).astype(int)
        m, metric = LogisticRegression().fit(X[::3], y[::3]), accuracy_score
    else:
        metric = r2_score
    w = rng.uniform(0.1, 3.0, size=len(y))
    Xd = da.from_array(X, chunks=(BLOCKS, 2))
    yd = da.from_array(y, chunks=(BLOCKS,))
    assert score_blockwise(m, Xd, yd) == pytest.approx(metric(y, m.predict(X)), rel=1e-12)
    assert score_blockwise(m, Xd, yd, sample_weight=w) == pytest.approx(metric(y, m.predict(X), sample_weight=w),
                                                                        rel=1e-12)
    assert score_blockwise(m, X, y) == pytest.approx(metric(y, m.predict(X)), rel=1e-12)  # NumPy: one block


def _callers(name, X, y, m):
    """The score of each module moved onto the one definition, on blockwise input."""
    Xd, yd = da.from_array(X, chunks=(BLOCKS, 2)), da.from_array(y, chunks=(BLOCKS,))
    if name == "evaluate":
        from daskscale.learn.evaluate import evaluate

        return evaluate(m, Xd, yd)["r2"], m.predict(X)
    if name == "score_method":
        from daskscale.learn.predict import score_method

        return score_method(m, Xd, yd, fitted="coef_"), m.predict(X)
    from daskscale.compress import compress

    c = compress(m, quantize="float32")
    return c.score(Xd, yd), c.predict(X)


@pytest.mark.parametrize("caller", ["evaluate", "score_method", "compressed"])
def test_every_caller_reports_the_r2_of_all_rows(client, rng, caller):
    X, y, m = _offset_blocks(rng)
    got, pred = _callers(caller, X, y, m)
    assert got == pytest.approx(r2_score(y, pred), rel=1e-9)


def test_cluster_and_transformer_scores_are_per_row_over_all_rows(rng):
    X = np.vstack([rng.normal(c, 1.0, size=(n, 3)) for c, n in zip((0, 4, 9, 12), BLOCKS)])
    km = KMeans(3, n_init=1, random_state=0).fit(X)
    pca = PCA(2).fit(X)
    svd = TruncatedSVD(2, random_state=0).fit(X)
    states = {k: ScoreState(k) for k in ("cluster", "transformer", "svd")}
    for a, b in _bounds():
        states["cluster"] += score_state(km, "cluster", X[a:b])
        states["transformer"] += score_state(pca, "transformer", X[a:b])
        states["svd"] += score_state(svd, "transformer", X[a:b])
    assert states["cluster"].value() == pytest.approx(km.score(X) / len(X), rel=1e-9)  # -inertia per row
    assert states["transformer"].value() == pytest.approx(pca.score(X), rel=1e-9)  # mean log-likelihood
    err = svd.inverse_transform(svd.transform(X)) - X
    assert states["svd"].value() == pytest.approx(-np.mean(err**2), rel=1e-9)  # no score: reconstruction


def test_score_needs_a_target_and_rows(rng):
    X, y, m = _offset_blocks(rng)
    with pytest.raises(SchemaError, match="needs a target"):
        score_blockwise(m, X)
    with pytest.raises(SchemaError, match="needs a target"):
        score_blockwise(m, da.from_array(X, chunks=(BLOCKS, 2)))
    with pytest.raises(SchemaError, match="no rows"):
        score_blockwise(m, X[:0], y[:0])


def test_apply_blockwise_on_uneven_chunks_equals_predict_on_the_whole(client, rng):
    X = rng.normal(size=(1000, 4)) * [1.0, 10.0, 100.0, 0.1] + [0.0, 5.0, -50.0, 1.0]
    y = (X[:, 0] + (X[:, 3] - 1.0) * 10 > 0).astype(int)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    sc, m = pipe[0], pipe[1]
    Xd = da.from_array(X, chunks=(BLOCKS, 4))
    pred = apply_blockwise(m.predict, Xd, mean=sc.mean_, scale=sc.scale_)
    proba = apply_blockwise(m.predict_proba, Xd, mean=sc.mean_, scale=sc.scale_)
    assert isinstance(pred, da.Array) and pred.ndim == 1 and pred.chunks == (BLOCKS,)
    assert proba.ndim == 2 and proba.chunks == (BLOCKS, (2,))
    np.testing.assert_array_equal(pred.compute(), pipe.predict(X))
    np.testing.assert_allclose(proba.compute(), pipe.predict_proba(X), rtol=1e-12)
    # NumPy in, NumPy out, the same answer
    np.testing.assert_array_equal(apply_blockwise(m.predict, X, mean=sc.mean_, scale=sc.scale_), pipe.predict(X))


def test_apply_blockwise_reads_a_store_where_it_lives(client, small_store):
    from daskscale.storage import load_xy

    Xs, ys = load_xy(small_store)
    X, y = Xs.compute(), ys.compute()
    m = LogisticRegression().fit(X, y)
    pred = apply_blockwise(m.decision_function, small_store)
    assert pred.numblocks == (4,)
    np.testing.assert_allclose(pred.compute(), m.decision_function(X), rtol=1e-10)
    assert score_blockwise(m, small_store) == pytest.approx(m.score(X, y), rel=1e-12)

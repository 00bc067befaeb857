"""Moments: the no-NaN fast path and the NaN-aware path give the same state; merged blocks match the whole."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

from daskscale.reduce import Covariance, Moments, Reducer
from daskscale.reduce.base import map_all


def test_clean_block_state_equals_the_nan_aware_state(rng):
    # The same rows with NaN holes added take the NaN-aware path; the clean ones the fast path.
    X = rng.gamma(2.0, 3.0, size=(501, 4))
    holes = np.vstack([X, np.full((7, 4), np.nan)])
    holes[[3, 9], 2] = np.nan
    m = Moments()
    n, mean, m2 = m.map(X)
    nh, meanh, m2h = m.map(holes)
    assert n.tolist() == [501] * 4 and nh.tolist() == [501, 501, 499, 501]
    np.testing.assert_allclose(mean[[0, 1, 3]], meanh[[0, 1, 3]], rtol=1e-13)
    np.testing.assert_allclose(m2[[0, 1, 3]], m2h[[0, 1, 3]], rtol=1e-12)
    np.testing.assert_allclose(meanh[2], np.delete(X[:, 2], [3, 9]).mean(), rtol=1e-13)
    res = m.finalize(m.map(X))
    np.testing.assert_allclose(res["var"], X.var(0, ddof=1), rtol=1e-12)


def test_float32_block_with_a_large_offset_keeps_its_variance(rng):
    # float32 around 1e4 with unit steps: accumulated in float64 and centred, the variance holds
    X = (1e4 + rng.integers(-3, 4, size=(20_000, 3))).astype(np.float32)
    ref = X.astype(np.float64)
    res = Moments().finalize(Moments().map(X))
    np.testing.assert_allclose(res["mean"], ref.mean(0), rtol=1e-14)
    np.testing.assert_allclose(res["var"], ref.var(0, ddof=1), rtol=1e-10)


def test_inf_and_all_nan_columns_take_the_guarded_path_silently():
    X = np.array([[1.0, np.inf, np.nan], [3.0, 1.0, np.nan], [5.0, 2.0, np.nan]])
    m = Moments()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        n, mean, _ = m.map(X)
        merged = m.merge((n, mean, _), m.map(np.array([[7.0, 0.0, 2.0]])))
    assert n.tolist() == [3, 3, 0] and mean[0] == 3.0 and np.isinf(mean[1])
    res = m.finalize(merged)
    assert res["count"].tolist() == [4, 4, 1] and res["mean"][0] == 4.0 and res["mean"][2] == 2.0
    assert np.isnan(res["var"][2])  # one row: no variance with ddof=1


@pytest.mark.parametrize("split", [1, 17, 250, 499])
def test_merge_of_two_blocks_equals_the_whole(rng, split):
    X = rng.standard_normal((500, 3)) * [1.0, 10.0, 0.1] + [0.0, -5.0, 1e6]
    m = Moments()
    whole = m.finalize(m.map(X))
    parts = m.finalize(m.merge(m.map(X[:split]), m.map(X[split:])))
    for k in ("count", "mean", "var"):
        np.testing.assert_allclose(parts[k], whole[k], rtol=1e-9, err_msg=k)
    empty = m.empty(3)
    np.testing.assert_array_equal(m.merge(empty, m.map(X))[1], m.map(X)[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_map_never_writes_to_its_input(rng, dtype):
    # a float32 or integer block is converted to a float64 copy that is centred in place
    X = (rng.standard_normal((300, 3)) * 50).astype(dtype)
    before = X.copy()
    res = Moments().finalize(Moments().map(X))
    np.testing.assert_array_equal(X, before)
    np.testing.assert_allclose(res["var"], before.astype(np.float64).var(0, ddof=1), rtol=1e-12)


class _Seen(Reducer):
    """A float64 reducer that keeps (a copy of) the block it was given, to check what others did to it."""

    name = "seen"
    float64 = True

    def __init__(self):
        self.blocks = []

    def map(self, X, y=None):
        self.blocks.append((X, X.copy()))
        return 0

    def merge(self, a, b):
        return 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, "float64 unpickled"])
def test_fused_with_other_float64_reducers_moments_reuses_their_copy(rng, dtype):
    X = (rng.standard_normal((500, 4)) * 3 + 7).astype(np.float64 if dtype == "float64 unpickled" else dtype)
    if dtype == "float64 unpickled":
        # as a worker may hold it: np.asarray(X, float64) is then a new view of X, not X
        X = pickle.loads(pickle.dumps(X))
    before = X.copy()
    seen = _Seen()
    states = map_all({"seen": seen, "moments": Moments(), "cov": Covariance()}, X, None)
    # every other reducer had mapped the shared copy before Moments centred it
    (shared, at_map_time), = seen.blocks
    np.testing.assert_array_equal(at_map_time, before.astype(np.float64))
    if dtype == np.float32:
        # the copy was Moments' to overwrite, with no conversion of its own: it now holds the
        # squared deviations from the mean, centred and squared in place
        np.testing.assert_allclose(shared.mean(0), before.astype(np.float64).var(0), rtol=1e-9)
    np.testing.assert_array_equal(X, before)  # the caller's block is never overwritten
    fused = Moments().finalize(states["moments"])
    alone = Moments().finalize(Moments().map(X))
    np.testing.assert_allclose(fused["var"], alone["var"], rtol=1e-12)
    np.testing.assert_allclose(Covariance().finalize(states["cov"])["cov"],
                               np.cov(before.astype(np.float64), rowvar=False), rtol=1e-9)

"""Moments: the no-NaN fast path and the NaN-aware path give the same state; merged blocks match the whole."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daskscale.reduce import Covariance, Moments, Reducer
from daskscale.reduce.base import map_all
from daskscale.reduce.moments import central_moments


def test_clean_block_state_equals_the_nan_aware_state(rng):
    # The same rows with NaN holes added take the NaN-aware path; the clean ones the fast path.
    X = rng.gamma(2.0, 3.0, size=(501, 4))
    holes = np.vstack([X, np.full((7, 4), np.nan)])
    holes[[3, 9], 2] = np.nan
    m = Moments()
    n, mean, m2 = central_moments(m.map(X))
    nh, meanh, m2h = central_moments(m.map(holes))
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
        state = m.map(X)
        n, mean, _ = central_moments(state)
        merged = m.merge(state, m.map(np.array([[7.0, 0.0, 2.0]])))
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
    for got, want in zip(m.merge(empty, m.map(X)), m.map(X)):
        np.testing.assert_array_equal(got, want)


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


# --- issue 16: constant columns, huge offsets, int64 near 2**62 -------------------------------

CONSTANTS = [3.3, 1e12 + 0.3, -7.1e-5, 0.1, -2.5e300, 1e-300]


def _layouts(c: float) -> dict[str, list[np.ndarray]]:
    """Ways of cutting a constant column ``c`` (and a second constant one) into blocks."""
    col = np.full((1000, 2), c)
    col[:, 1] = -c
    holes = col.copy()
    holes[::7, 0] = np.nan  # blocks with different counts
    holes[:100, 1] = np.nan  # the first block has no finite value in column 1
    return {
        "one block": [col],
        "uneven blocks": np.split(col, [1, 3, 250, 613]),
        "NaN holes": np.split(holes, [50, 100, 400, 999]),
        "empty block": [col[:0], col[:300], col[300:300], col[300:]],
    }


def _tree_merge(m: Moments, states: list, rnd) -> tuple:
    states = list(states)
    while len(states) > 1:  # merge random neighbours: any tree shape
        i = rnd.randrange(len(states) - 1)
        states[i:i + 2] = [m.merge(states[i], states[i + 1])]
    return states[0]


@pytest.mark.parametrize("layout", ["one block", "uneven blocks", "NaN holes", "empty block"])
@pytest.mark.parametrize("c", CONSTANTS)
def test_constant_column_has_exact_mean_and_zero_variance(c, layout):
    import random

    m = Moments()
    blocks = _layouts(c)[layout]
    for seed in range(3):
        res = m.finalize(_tree_merge(m, [m.map(b) for b in blocks], random.Random(seed)))
        assert res["mean"].tolist() == [c, -c]
        assert res["var"].tolist() == [0.0, 0.0] and res["std"].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32, np.uint64])
def test_constant_column_of_any_dtype_has_zero_variance(dtype):
    X = np.full((500, 1), 7, dtype=dtype)
    res = Moments().finalize(Moments().merge(Moments().map(X[:123]), Moments().map(X[123:])))
    assert res["mean"].tolist() == [7.0] and res["var"].tolist() == [0.0]


@pytest.mark.parametrize("offset", [0.0, 1e6, 1e12, -1e12, 2.0**52])
@pytest.mark.parametrize("chunks", [1000, 333, 7])
def test_huge_offset_keeps_unit_std(rng, offset, chunks):
    X = offset + rng.standard_normal((1000, 2))
    m = Moments()
    res = m.finalize(_fold_blocks(m, X, chunks))
    exact = [np.sqrt(_exact_var(X[:, j])) for j in range(2)]
    np.testing.assert_allclose(res["std"], exact, rtol=1e-9)
    if abs(offset) <= 1e12:
        # NumPy's float64 two-pass std of the same values (past 2**52 its own mean drifts)
        np.testing.assert_allclose(res["std"], X.std(axis=0, ddof=1), rtol=1e-6)


def _fold_blocks(m, X, chunks):
    states = [m.map(X[a:a + chunks]) for a in range(0, len(X), chunks)]
    return _tree_merge(m, states, __import__("random").Random(len(states)))


def _exact_var(v: np.ndarray) -> float:
    """Sample variance of integers or floats in exact rational arithmetic."""
    from fractions import Fraction

    ints = [Fraction(int(x)) if isinstance(x, np.integer) else Fraction(float(x)) for x in v]
    n = len(ints)
    mean = Fraction(sum(ints), n)
    return float(sum((x - mean) ** 2 for x in ints) / (n - 1))


@pytest.mark.parametrize("spread", [1, 1_000, 10**9, 2**40])
@pytest.mark.parametrize("base", [2**62, -(2**62), 2**53 + 1])
def test_int64_near_2_62_keeps_its_std(rng, base, spread):
    v = base + rng.integers(-spread, spread + 1, size=2000)
    X = np.stack([v, v[::-1]], axis=1).astype(np.int64)
    m = Moments()
    res = m.finalize(_fold_blocks(m, X, 301))
    exact = np.sqrt(_exact_var(v))
    np.testing.assert_allclose(res["std"], [exact, exact], rtol=1e-6)
    if spread >= 10**9:
        # where float64 can resolve the spread, NumPy's float64 std agrees too
        np.testing.assert_allclose(res["std"], X.astype(np.float64).std(axis=0, ddof=1), rtol=1e-6)


def _column(kind: str, n: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    if kind == "constant":
        return np.full(n, 1e12 + 0.3)
    if kind == "near-constant":  # values one ulp apart around 1e12
        return 1e12 + np.spacing(1e12) * r.integers(0, 2, n)
    if kind == "huge offset":
        return 1e12 + r.standard_normal(n)
    return r.standard_normal(n) * 3.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=9).filter(lambda s: sum(s) >= 2),
       st.randoms(use_true_random=False), st.sampled_from(["constant", "near-constant", "huge offset", "normal"]),
       st.booleans())
def test_any_split_merged_in_any_order_gives_the_same_result(sizes, rnd, kind, with_nan):
    n = sum(sizes)
    X = np.stack([_column(kind, n, len(sizes)), _column("normal", n, n)], axis=1)
    if with_nan:
        X[:: 3, 0] = np.nan
    m = Moments()
    cuts = np.cumsum([0, *sizes])
    states = [m.map(X[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    rnd.shuffle(states)
    got = m.finalize(_tree_merge(m, states, rnd))
    whole = m.finalize(m.map(X))
    col = X[:, 0][~np.isnan(X[:, 0])]
    assert got["count"].tolist() == whole["count"].tolist()
    if kind == "constant":
        assert got["mean"][0] == col[0] and (col.size < 2 or got["std"][0] == 0.0)
    if col.size > 1:
        # against the exact std of the values (NumPy's rounds a near-constant column's mean
        # to one of its two values: its std is then off by up to 41 %), and for the offset
        # column against NumPy's float64 two-pass std
        np.testing.assert_allclose(got["std"][0], np.sqrt(_exact_var(col)), rtol=1e-9)
        if kind == "huge offset":
            np.testing.assert_allclose(got["std"][0], col.std(ddof=1), rtol=1e-6)
        np.testing.assert_allclose(got["std"], whole["std"], rtol=1e-9, atol=1e-9 * np.spacing(1e12))
    for j in range(2):
        np.testing.assert_allclose(got["mean"][j], whole["mean"][j], rtol=1e-14,
                                   atol=1e-14 * np.nanmax(np.abs(X[:, j]), initial=0.0))


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint32])
def test_integer_stream_from_an_empty_state_stays_exact(dtype):
    from daskscale.reduce import update

    base = 2**62 if dtype == np.int64 else 2**31 - 100
    state = {"moments": Moments().empty(1)}
    for k in range(5):  # a stream of small integer blocks, started from the empty state
        state = update([Moments()], state, (base + np.arange(k, k + 20)).reshape(-1, 1).astype(dtype))
    res = Moments().finalize(state["moments"])
    vals = np.concatenate([np.arange(k, k + 20) for k in range(5)]).astype(np.float64)
    np.testing.assert_allclose(res["var"], [vals.var(ddof=1)], rtol=1e-12)
    assert res["count"].tolist() == [100]

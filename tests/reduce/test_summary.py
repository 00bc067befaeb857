"""Summary / Moments / MinMax agree with NumPy and SciPy on hard data, and merge in any order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from daskscale.reduce import MinMax, Moments, Summary, reduce, update
from daskscale.reduce.base import states_of_blocks


def _reference(X: np.ndarray) -> dict[str, np.ndarray]:
    X = X.astype(np.float64)
    out = {k: [] for k in ("count", "missing", "mean", "var", "skew", "kurtosis", "min", "max")}
    for j in range(X.shape[1]):
        c = X[:, j]
        f = c[np.isfinite(c)]
        out["count"].append(f.size)
        out["missing"].append(np.isnan(c).sum())
        out["mean"].append(f.mean())
        out["var"].append(f.var(ddof=1))
        out["skew"].append(scipy.stats.skew(f))
        out["kurtosis"].append(scipy.stats.kurtosis(f))
        out["min"].append(np.nanmin(c))
        out["max"].append(np.nanmax(c))
    return {k: np.array(v) for k, v in out.items()}


def _check(X, chunks, rtol=1e-9, atol=1e-12):
    import dask.array as da

    got = reduce(da.from_array(X, chunks=(chunks, -1)), [Summary()])["summary"]
    ref = _reference(X)
    for k, v in ref.items():
        np.testing.assert_allclose(got[k], v, rtol=rtol, atol=atol, err_msg=k)
    return got


def test_summary_matches_numpy_scipy_with_uneven_chunks(rng):
    X = rng.gamma(2.0, 3.0, size=(1003, 4))
    _check(X, (1, 500, 2, 300, 200))


def test_large_offset_keeps_unit_variance(rng):
    # Around 1e8 with unit variance: sum of squares minus square of sum loses all digits.
    X = 1e8 + rng.standard_normal((20_000, 3))
    got = _check(X, 777, rtol=1e-7, atol=1e-6)
    naive = (X**2).mean(0) - X.mean(0) ** 2
    assert np.all(np.abs(got["var"] - X.var(0, ddof=1)) < 1e-6)
    assert np.any(np.abs(naive - X.var(0)) > 1e-3)  # the data is hard for the naive formula


def test_nan_and_inf_are_counted_and_moments_follow_pandas(rng):
    X = rng.standard_normal((300, 3))
    X[::7, 0] = np.nan
    X[5, 1] = np.inf
    X[9, 1] = -np.inf
    X[:, 2] = np.nan  # an all-NaN column
    got = reduce(X, [Summary()])["summary"]
    f0 = X[:, 0][np.isfinite(X[:, 0])]
    assert got["missing"].tolist() == [int(np.isnan(X[:, 0]).sum()), 0, 300]
    assert got["n_posinf"].tolist() == [0, 1, 0] and got["n_neginf"].tolist() == [0, 1, 0]
    assert got["count"].tolist() == [f0.size, 298, 0]
    np.testing.assert_allclose(got["mean"][0], f0.mean())
    # an inf of each sign: mean and std are NaN, as pandas reports them (issue 16)
    assert np.isnan(got["mean"][1]) and np.isnan(got["std"][1])
    with np.errstate(invalid="ignore"):  # pandas' own inf - inf
        assert np.isnan(pd.Series(X[:, 1]).mean()) and np.isnan(pd.Series(X[:, 1]).std())
    assert got["max"][1] == np.inf and got["min"][1] == -np.inf
    assert np.isnan(got["mean"][2]) and np.isnan(got["min"][2])


def test_single_row_and_one_row_chunks():
    X = np.array([[3.0, -1.0]])
    got = reduce(X, [Summary()])["summary"]
    assert got["count"].tolist() == [1, 1] and got["mean"].tolist() == [3.0, -1.0]
    assert np.isnan(got["var"]).all()  # ddof=1 of one value is undefined
    Y = np.arange(10.0).reshape(5, 2) ** 2
    _check(Y, 1)


def test_integer_input_does_not_overflow():
    import dask.array as da

    X = np.full((1000, 2), 2**62 // 1000, dtype=np.int64)
    X[::2] += 3
    got = reduce(da.from_array(X, chunks=(100, 2)), [Summary(), Moments()])
    s = got["summary"]["sum"]
    np.testing.assert_allclose(s, X.astype(np.float64).sum(0), rtol=1e-12)
    assert (s > 2**61).all()  # larger than int64 accumulation of squares could hold
    # the exact variance (500 values c, 500 values c + 3): NumPy's float64 var of these values
    # is 8.5, its mean rounded away in a sum past 2**53; the int64 shift keeps it exact
    exact = 500 * 1.5**2 * 2 / 999
    np.testing.assert_allclose(got["moments"]["var"], exact, rtol=1e-12)
    np.testing.assert_allclose(got["summary"]["var"], exact, rtol=1e-12)


def test_minmax_and_moments_agree_with_summary(rng):
    X = rng.standard_normal((500, 3))
    X[3, 1] = np.nan
    out = reduce(X, [Summary(), MinMax(), Moments()])
    np.testing.assert_allclose(out["minmax"]["min"], out["summary"]["min"])
    np.testing.assert_allclose(out["moments"]["std"], out["summary"]["std"])


def test_update_streams_to_the_same_result(rng):
    X = rng.standard_normal((400, 2)) + 50
    blocks = [(X[a:a + 37], None) for a in range(0, 400, 37)]
    s = states_of_blocks([Summary()], blocks)
    batch = reduce(X, [Summary()])["summary"]
    streamed = Summary().finalize(s["summary"])
    np.testing.assert_allclose(streamed["kurtosis"], batch["kurtosis"], rtol=1e-9)
    s2 = update([Summary()], None, X[:10])
    assert Summary().finalize(s2["summary"])["count"].tolist() == [10, 10]


def test_empty_state_is_neutral(rng):
    X = rng.standard_normal((50, 2))
    r = Summary()
    a = r.finalize(r.merge(r.empty(2), r.map(X)))
    b = r.finalize(r.map(X))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], err_msg=k)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=8), st.randoms(use_true_random=False),
       st.floats(-1e6, 1e6))
def test_merge_is_split_and_order_independent(sizes, rnd, offset):
    X = np.random.default_rng(len(sizes)).standard_normal((sum(sizes), 3)) * 3 + offset
    r = Summary()
    cuts = np.cumsum([0, *sizes])
    states = [r.map(X[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    rnd.shuffle(states)
    while len(states) > 1:  # merge random neighbours: any tree shape
        i = rnd.randrange(len(states) - 1)
        states[i:i + 2] = [r.merge(states[i], states[i + 1])]
    got = r.finalize(states[0])
    ref = r.finalize(r.map(X))
    for k in ("count", "mean", "var", "min", "max"):
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-8, atol=1e-8 * (1 + abs(offset)), err_msg=k)
    if len(X) > 3:
        np.testing.assert_allclose(got["skew"], ref["skew"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["kurtosis"], ref["kurtosis"], rtol=1e-5, atol=1e-5)

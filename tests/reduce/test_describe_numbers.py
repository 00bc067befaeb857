"""No silently wrong number (issue 16): constant columns, the caller's precision, infinities."""

from __future__ import annotations

import random
from fractions import Fraction

import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import daskscale
from daskscale.reduce import Covariance, Histogram, MinMax, Quantiles, Summary, groupby_reduce, reduce, rank_error

CONSTANTS = [3.3, 1e12 + 0.3, -7.1e-5]


def _constant_input(kind: str, c: float):
    col = np.full((3000, 1), c)
    if kind == "numpy":
        return col
    if kind == "dask blocks":
        return da.from_array(col, chunks=(700, 1))
    if kind == "dask blocks with NaN":  # blocks with different counts, one all-NaN
        col[::5] = np.nan
        col[700:1400] = np.nan
        return da.from_array(col, chunks=(700, 1))
    return pd.DataFrame({"x0": col[:, 0]})


@pytest.mark.parametrize("kind", ["numpy", "dask blocks", "dask blocks with NaN", "DataFrame"])
@pytest.mark.parametrize("c", CONSTANTS)
def test_describe_of_a_constant_column_is_exact(c, kind):
    t = daskscale.describe(_constant_input(kind, c), quantiles=None)
    assert t.loc["x0", "mean"] == c
    assert t.loc["x0", "std"] == 0.0
    assert np.isnan(t.loc["x0", "skew"]) and np.isnan(t.loc["x0", "kurtosis"])
    # (pandas 3.1 itself reports std 1.3e-4 for ten values of 1e12 + 0.3: no reference here)


def _exact_std(v: np.ndarray) -> float:
    vals = [Fraction(int(x)) if isinstance(x, np.integer) else Fraction(float(x)) for x in v]
    mean = sum(vals) / len(vals)
    return float(np.sqrt(float(sum((x - mean) ** 2 for x in vals) / (len(vals) - 1))))


def _column(kind: str, n: int, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    if kind == "constant":
        return np.full(n, -7.1e-5)
    if kind == "near-constant":
        return 1e12 + np.spacing(1e12) * r.integers(0, 3, n)
    if kind == "huge offset":
        return 1e12 + r.standard_normal(n)
    return r.gamma(2.0, 3.0, n)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=8).filter(lambda s: sum(s) >= 4),
       st.randoms(use_true_random=False), st.sampled_from(["constant", "near-constant", "huge offset", "gamma"]))
def test_summary_any_split_in_any_order_gives_the_same_result(sizes, rnd, kind):
    n = sum(sizes)
    X = np.stack([_column(kind, n, len(sizes)), _column("gamma", n, n)], axis=1)
    r = Summary()
    cuts = np.cumsum([0, *sizes])
    states = [r.map(X[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    rnd.shuffle(states)
    while len(states) > 1:
        i = rnd.randrange(len(states) - 1)
        states[i:i + 2] = [r.merge(states[i], states[i + 1])]
    got, whole = r.finalize(states[0]), r.finalize(r.map(X))
    np.testing.assert_allclose(got["std"][0], _exact_std(X[:, 0]), rtol=1e-9)
    if kind == "huge offset":
        np.testing.assert_allclose(got["std"][0], X[:, 0].std(ddof=1), rtol=1e-6)
    if kind in ("constant", "near-constant"):
        # no spread beyond the mean's last digit: skew and kurtosis are NaN, whatever the split
        assert np.isnan(got["skew"][0]) and np.isnan(got["kurtosis"][0])
        assert np.isnan(whole["skew"][0]) and np.isnan(whole["kurtosis"][0])
    if kind == "constant":
        assert got["mean"][0] == X[0, 0] and got["std"][0] == 0.0
    for k in ("skew", "kurtosis"):
        np.testing.assert_allclose(got[k][1], whole[k][1], rtol=1e-7, atol=1e-9)


# --- the caller's precision ------------------------------------------------------------------


def _offset_frame(rng, n: int = 4000) -> pd.DataFrame:
    x = 1e12 + rng.standard_normal(n)
    return pd.DataFrame({"a": x, "b": 2.0 * x - 1e12 + 0.5 * rng.standard_normal(n)})


def _as(kind: str, df: pd.DataFrame):
    if kind == "DataFrame":
        return df
    if kind == "numpy":
        return df.to_numpy()
    if kind == "dask array":
        return da.from_array(df.to_numpy(), chunks=(900, 2))
    return dd.from_pandas(df, npartitions=3)


INPUTS = ["DataFrame", "numpy", "dask array", "dask DataFrame"]


@pytest.mark.parametrize("kind", INPUTS)
def test_describe_sees_float64_at_a_huge_offset(rng, kind):
    df = _offset_frame(rng)
    t = daskscale.describe(_as(kind, df), bins=10)
    ref = df.to_numpy()
    np.testing.assert_allclose(t["std"], ref.std(axis=0, ddof=1), rtol=1e-6)
    # within a few units in the last place (a float32 cast is 1e4 off)
    np.testing.assert_allclose(t["mean"] - 1e12, ref.mean(axis=0) - 1e12, atol=4 * np.spacing(1e12))
    counts = t.attrs["daskscale"]["histogram"]["counts"]
    assert counts.sum(axis=1).tolist() == [len(df)] * 2 and (counts > 0).sum(axis=1).min() >= 5
    for j in range(2):  # the median sketch sees the spread, not one float32 value
        assert abs((ref[:, j] <= t["50%"].iloc[j]).mean() - 0.5) <= rank_error() + 0.01


@pytest.mark.parametrize("kind", INPUTS)
def test_other_reducers_see_float64_at_a_huge_offset(rng, kind):
    df = _offset_frame(rng)
    ref = df.to_numpy()
    out = reduce(_as(kind, df), [Covariance(), MinMax(), Quantiles(q=(0.5,)),
                                 Histogram(bins=8, range=(ref.min(0), ref.max(0)))])
    np.testing.assert_allclose(out["covariance"]["cov"], np.cov(ref, rowvar=False), rtol=1e-6)
    np.testing.assert_allclose(out["covariance"]["corr"][0, 1], np.corrcoef(ref, rowvar=False)[0, 1], rtol=1e-6)
    assert out["minmax"]["max"].tolist() == ref.max(0).tolist()
    assert (out["histogram"]["counts"] > 0).sum(axis=1).min() >= 5
    labels = np.arange(len(df)) % 3
    g = groupby_reduce(_as(kind, df) if kind != "dask DataFrame" else df, labels, func=("var",))
    for k in range(3):
        # flox's nanvar: ddof=0
        np.testing.assert_allclose(g.loc[k, ("var", g.columns[0][1])], ref[labels == k, 0].var(), rtol=1e-6)


@pytest.mark.parametrize("base", [2**62, -(2**62), 2**62 + 2**61])
@pytest.mark.parametrize("kind", ["numpy", "dask array", "DataFrame"])
def test_int64_near_2_62_keeps_its_std(rng, base, kind):
    v = base + rng.integers(-1000, 1001, size=3000)
    df = pd.DataFrame({"x0": v, "x1": v[::-1].copy()})
    t = daskscale.describe(_as(kind, df), quantiles=None, stats=("count", "mean", "std"))
    np.testing.assert_allclose(t["std"], [_exact_std(v)] * 2, rtol=1e-6)
    exact_mean = float(Fraction(sum(int(x) for x in v), len(v)))
    np.testing.assert_allclose(t["mean"], [exact_mean] * 2, rtol=1e-15)


@pytest.mark.parametrize("chunks", [5000, 777])
def test_float32_input_accumulates_in_float64(rng, chunks):
    X = (1e4 + rng.integers(-3, 4, size=(5000, 2))).astype(np.float32)
    X[:, 1] += np.float32(0.25)
    t = daskscale.describe(da.from_array(X, chunks=(chunks, 2)), quantiles=None)
    ref = X.astype(np.float64)
    np.testing.assert_allclose(t["mean"], ref.mean(0), rtol=1e-14)
    np.testing.assert_allclose(t["std"], ref.std(0, ddof=1), rtol=1e-10)


# --- infinities ------------------------------------------------------------------------------

INF_CASES = {
    "+inf": ([np.inf], 1, 0),
    "-inf": ([-np.inf], 0, 1),
    "both signs": ([np.inf, -np.inf], 1, 1),
    "inf and NaN": ([np.inf, np.nan, np.inf], 2, 0),
}


@pytest.mark.parametrize("case", list(INF_CASES))
@pytest.mark.parametrize("bins", ["auto", 7])
def test_an_inf_does_not_stretch_the_histogram(rng, case, bins):
    bad, n_pos, n_neg = INF_CASES[case]
    X = rng.standard_normal((2000, 2)) * [1.0, 5.0] + [0.0, 100.0]
    X[[10, 500, 1999][: len(bad)], 1] = bad
    t = daskscale.describe(da.from_array(X, chunks=(600, 2)), bins=bins)
    h = t.attrs["daskscale"]["histogram"]
    fin = X[:, 1][np.isfinite(X[:, 1])]
    assert h["edges"][1, 0] == fin.min() and h["edges"][1, -1] == fin.max()
    assert h["counts"][1].sum() == fin.size and h["counts"][0].sum() == 2000
    assert (h["posinf"][1], h["neginf"][1], h["missing"][1]) == (n_pos, n_neg, int(np.isnan(X[:, 1]).sum()))
    assert (t.loc["x1", "n_posinf"], t.loc["x1", "n_neginf"]) == (n_pos, n_neg)
    assert (t.loc["x0", "n_posinf"], t.loc["x0", "n_neginf"]) == (0, 0)


@pytest.mark.parametrize("case", list(INF_CASES))
def test_inf_statistics_follow_pandas(rng, case):
    bad = INF_CASES[case][0]
    x = rng.standard_normal(300)
    x[[3, 100, 250][: len(bad)]] = bad
    t = daskscale.describe(da.from_array(x[:, None], chunks=(70, 1)), quantiles=None)
    s = pd.Series(x)
    with np.errstate(invalid="ignore"):  # pandas' own inf - inf
        want = {"mean": s.mean(), "std": s.std(), "min": s.min(), "max": s.max(), "skew": np.nan}
    for k, v in want.items():
        np.testing.assert_equal(t.loc["x0", k], v, err_msg=k)


@pytest.mark.parametrize("finite,expect", [(False, (-np.inf, np.inf)), (True, (-2.0, 3.0))])
def test_minmax_keeps_inf_unless_finite(finite, expect):
    X = np.array([[1.0], [np.inf], [-2.0], [np.nan], [3.0], [-np.inf]])
    m = MinMax(finite=finite)
    out = m.finalize(m.merge(m.map(X[:3]), m.map(X[3:])))
    assert (out["min"][0], out["max"][0]) == expect


def test_describe_order_of_merges_does_not_matter_for_constants():
    # the same constant blocks merged left to right and right to left: bit-identical
    s = Summary()
    blocks = [np.full((k, 1), 1e12 + 0.3) for k in (1, 5, 17, 3)]
    states = [s.map(b) for b in blocks]
    for order in (states, states[::-1], random.Random(0).sample(states, 4)):
        acc = order[0]
        for st_ in order[1:]:
            acc = s.merge(acc, st_)
        out = s.finalize(acc)
        assert out["mean"][0] == 1e12 + 0.3 and out["var"][0] == 0.0 and np.isnan(out["skew"][0])


@pytest.mark.parametrize("chunks", [3000, 701, 64])
@pytest.mark.parametrize("c", CONSTANTS)
def test_covariance_of_a_constant_column_is_exactly_zero(rng, c, chunks):
    X = np.stack([np.full(3000, c), rng.standard_normal(3000)], axis=1)
    out = reduce(da.from_array(X, chunks=(chunks, 2)), [Covariance()])["covariance"]
    assert out["cov"][0].tolist() == [0.0, 0.0] and out["mean"][0] == c
    assert np.isnan(out["corr"][0, 1])  # no spread: no correlation, as NumPy's corrcoef
    np.testing.assert_allclose(out["cov"][1, 1], X[:, 1].var(ddof=1), rtol=1e-12)

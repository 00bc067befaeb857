"""Histogram, quantile sketch, distinct and class counts, covariance and PCA against NumPy."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from daskscale.reduce import (PCA, ClassCounts, Covariance, DistinctCount, Histogram, Quantiles, rank_error,
                              reduce)


def test_histogram_matches_numpy_histogram(rng):
    X = rng.standard_normal((2001, 3))
    X[4, 0] = np.nan
    X[5, 1] = np.inf
    out = reduce(da.from_array(X, chunks=(300, 3)), [Histogram(bins=10, range=(-2.0, 2.0))])["histogram"]
    for j in range(3):
        ref, edges = np.histogram(X[:, j][np.isfinite(X[:, j])], bins=10, range=(-2.0, 2.0))
        assert out["counts"][j].tolist() == ref.tolist()
        np.testing.assert_allclose(out["edges"][j], edges)
        col = X[:, j]
        assert out["above"][j] == int((col > 2).sum()) and out["below"][j] == int((col < -2).sum())
    assert out["missing"].tolist() == [1, 0, 0]


def test_histogram_per_column_ranges_and_integers():
    X = np.array([[0, 100], [1, 150], [2, 200], [2, 200]], dtype=np.int64)
    out = reduce(X, [Histogram(bins=2, range=([0, 100], [2, 200]))])["histogram"]
    assert out["counts"].tolist() == [[1, 3], [1, 3]]


@pytest.mark.parametrize("dist", ["normal", "lognormal", "ties"])
def test_quantile_sketch_within_its_rank_error_bound(rng, dist):
    n = 60_000
    X = {"normal": rng.standard_normal((n, 2)) + 1e8,
         "lognormal": rng.lognormal(0, 2, (n, 2)),
         "ties": rng.integers(0, 5, (n, 2)).astype(float)}[dist]
    X[::11, 1] = np.nan
    q = np.array([0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99])
    out = reduce(da.from_array(X, chunks=(7_001, 2)), [Quantiles(q=q)])["quantiles"]
    eps = out["rank_error"]
    assert eps == pytest.approx(rank_error(200)) and eps < 0.02
    for j in range(2):
        col = np.sort(X[:, j][~np.isnan(X[:, j])])
        for qq, v in zip(q, out["quantiles"][j]):
            # The true rank interval of v must meet [q - eps, q + eps] (ties span an interval).
            lo = np.searchsorted(col, v, "left") / col.size
            hi = np.searchsorted(col, v, "right") / col.size
            assert lo <= qq + eps and hi >= qq - eps, (dist, j, qq, v, lo, hi)
        assert abs(out["quantiles"][j][3] - np.quantile(col, 0.5)) <= np.ptp(col)  # sanity


def test_sampled_quantiles_report_the_wider_bound(rng):
    X = rng.standard_normal((50_000, 1))
    out = reduce(X, [Quantiles(q=(0.5,), sample_rate=0.2)])["quantiles"]
    assert out["rank_error"] > rank_error(200)
    rank = (X[:, 0] <= out["quantiles"][0, 0]).mean()
    assert abs(rank - 0.5) <= out["rank_error"]


def test_distinct_exact_when_small_then_hyperloglog(rng):
    small = rng.integers(0, 7, (30_000, 1)).astype(float)
    big = rng.permutation(30_000).astype(float)[:, None]
    out = reduce(da.from_array(np.hstack([small, big]), chunks=(4000, 2)), [DistinctCount(max_exact=10_000)])
    d = out["distinct"]
    assert d["distinct"][0] == len(np.unique(small)) and d["exact"][0]
    assert not d["exact"][1] and abs(d["distinct"][1] - 30_000) / 30_000 < 0.05


def test_class_counts_on_the_target(rng):
    X = rng.standard_normal((1000, 2))
    y = rng.integers(0, 3, 1000)
    out = reduce(X, [ClassCounts()], y=y)["classes"]
    assert out["counts"] == {k: int((y == k).sum()) for k in range(3)}


def test_covariance_correlation_with_offset_match_numpy(rng):
    Z = rng.standard_normal((3000, 4))
    X = 1e8 + Z @ rng.standard_normal((4, 4))
    X[10, 2] = np.nan
    out = reduce(da.from_array(X, chunks=(250, 4)), [Covariance()])["covariance"]
    ok = np.isfinite(X).all(1)
    np.testing.assert_allclose(out["cov"], np.cov(X[ok].T), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out["corr"], np.corrcoef(X[ok].T), atol=1e-8)
    assert out["rows_skipped"] == 1 and out["n"] == 2999


def test_pca_matches_scikit_learn(rng):
    from sklearn.decomposition import PCA as SkPCA

    X = rng.standard_normal((2000, 5)) @ rng.standard_normal((5, 5)) + 10
    out = reduce(da.from_array(X, chunks=(333, 5)), [PCA(n_components=3)])["pca"]
    ref = SkPCA(n_components=3).fit(X)
    np.testing.assert_allclose(out["explained_variance"], ref.explained_variance_, rtol=1e-8)
    np.testing.assert_allclose(np.abs(out["components"]), np.abs(ref.components_), atol=1e-6)

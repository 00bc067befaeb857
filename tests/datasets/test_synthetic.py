from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from daskscale.datasets import make_classification, make_regression, real_dataset_path


def test_same_call_same_bytes_and_block_independence(client):
    X1, y1 = make_classification(3000, 6, chunk_rows=1000, seed=3)
    X2, y2 = make_classification(3000, 6, chunk_rows=1000, seed=3)
    np.testing.assert_array_equal(X1.compute(), X2.compute())
    X3, _ = make_classification(3000, 6, chunk_rows=1000, seed=4)
    assert not np.allclose(X1.compute(), X3.compute())
    # a block depends only on (seed, block index): the last block alone is reproducible
    np.testing.assert_array_equal(X1.blocks[2].compute(), X2.blocks[2].compute())


def test_learnable_but_not_trivial(client):
    X, y = make_classification(20_000, 10, chunk_rows=5000, seed=1)
    X, y = X.compute(), y.compute()
    m = LogisticRegression(max_iter=500).fit(X[:15000], y[:15000])
    acc = m.score(X[15000:], y[15000:])
    assert 0.65 < acc < 0.97, acc
    assert 0.3 < y.mean() < 0.7


def test_drift_changes_the_concept(client):
    X, y = make_classification(20_000, 8, chunk_rows=5000, seed=2, drift="abrupt")
    X, y = X.compute(), y.compute()
    m = LogisticRegression(max_iter=500).fit(X[:8000], y[:8000])
    before, after = m.score(X[8000:10000], y[8000:10000]), m.score(X[10000:], y[10000:])
    assert before - after > 0.1, (before, after)


def test_regression_and_multiclass(tmp_path, client):
    p = make_regression(5000, 4, chunk_rows=2000, seed=0, store=tmp_path / "r.zarr")
    import daskscale

    assert daskscale.info(p).n_rows == 5000
    _, y = make_classification(5000, 6, n_classes=4, chunk_rows=2500, seed=0)
    assert set(np.unique(y.compute())) == {0, 1, 2, 3}


def test_real_datasets_are_shipped():
    for name in ("breast_cancer", "digits", "wine"):
        path, target = real_dataset_path(name)
        assert path.exists() and target in path.read_text().splitlines()[0]

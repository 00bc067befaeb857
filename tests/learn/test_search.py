"""Successive halving / Hyperband across the cluster; dask-ml's HyperbandSearchCV fails here."""

from __future__ import annotations

import dask.array as da
import pytest
from sklearn.linear_model import SGDClassifier

from daskscale.errors import InputTypeError
from daskscale.learn.search import HyperbandSearch, SuccessiveHalvingSearch

GRID = {"alpha": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]}


def test_successive_halving_drops_poor_candidates(client, small_store):
    s = SuccessiveHalvingSearch(SGDClassifier(random_state=0), GRID, n_candidates=6, max_blocks=2, eta=2,
                                test_size=0.25, random_state=0).fit(small_store)
    per_rung = {}
    for h in s.history_:
        per_rung.setdefault(h["rung"], []).append(h)
    assert [len(v) for _, v in sorted(per_rung.items())] == [6, 3]
    kept = {h["candidate"] for h in per_rung[1]}
    rung0 = sorted(per_rung[0], key=lambda h: -h["score"])
    assert kept == {h["candidate"] for h in rung0[:3]}  # the three best survived
    assert s.best_score_ == max(h["score"] for h in per_rung[1])
    assert s.best_params_ in GRID_LIST
    assert s.score(*[a.compute() for a in __import__("daskscale").load_xy(small_store)]) > 0.6


GRID_LIST = [{"alpha": a} for a in GRID["alpha"]]


def test_hyperband_runs_brackets(client, small_store):
    h = HyperbandSearch(SGDClassifier(random_state=0), GRID, max_blocks=3, eta=3, random_state=0).fit(small_store)
    assert sorted({r["bracket"] for r in h.history_}) == [0, 1]
    assert h.best_params_ in GRID_LIST and 0.5 < h.best_score_ <= 1.0


def test_search_needs_partial_fit(client, small_store):
    from sklearn.tree import DecisionTreeClassifier

    with pytest.raises(InputTypeError, match="partial_fit"):
        SuccessiveHalvingSearch(DecisionTreeClassifier(), {"max_depth": [1, 2]}).fit(small_store)


def test_dask_ml_hyperband_fails_with_this_distributed(client):
    """Why search.py is our own: dask-ml's HyperbandSearchCV cannot run on this distributed."""
    from dask_ml.model_selection import HyperbandSearchCV

    X = da.random.random((400, 3), chunks=100)
    y = (X[:, 0] > 0.5).astype(int)
    with pytest.raises(RuntimeError, match="asynchronous Client"):
        HyperbandSearchCV(SGDClassifier(), {"alpha": [1e-4, 1e-3]}, max_iter=2).fit(X, y, classes=[0, 1])


def test_chunk_rows_cuts_the_blocks_each_candidate_learns(client):
    """``chunk_rows`` (not ``batch_size``, which is rows per ``partial_fit`` call elsewhere) cuts
    1,000 rows into ten blocks: two held out, eight learned by every candidate in its rung."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(1_000, 3))
    y = (X[:, 0] > 0).astype(int)
    s = SuccessiveHalvingSearch(SGDClassifier(random_state=0), {"alpha": [1e-4, 1e-3]}, n_candidates=2, min_blocks=8,
                                max_blocks=8, chunk_rows=100, random_state=0).fit(X, y)
    assert [(h["blocks_seen"], h["rows_seen"]) for h in s.history_] == [(8, 800), (8, 800)]
    assert s.score(X, y) > 0.9

"""One block loop, one behaviour: every strategy that trains by ``partial_fit`` runs the engine's loop.

Each strategy is fitted on the session cluster on a real store of four 500-row blocks and must
show the same behaviour as every other: a NaN is an error naming its block, rows and first row
(or, with ``nan="skip"``, its rows are dropped and not counted as seen); the same
``random_state`` gives the same model and another one another model; a label outside the
store's classes and a value the estimator refuses (infinity) are :class:`SchemaError` naming
the block.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier

import daskscale
from daskscale.errors import SchemaError
from daskscale.learn.incremental import Incremental
from daskscale.learn.parallel import ParameterAveraging
from daskscale.learn.search import HyperbandSearch, SuccessiveHalvingSearch
from daskscale.storage.append import append_rows

GRID = {"alpha": [1e-4, 1e-3]}


def _incremental(random_state: int = 0, nan: str = "raise") -> Incremental:
    return Incremental(SGDClassifier(random_state=0), validation_fraction=0.0, scale=False, random_state=random_state,
                       nan=nan, progress=False)


def _average(persist: bool):
    def make(random_state: int = 0, nan: str = "raise") -> ParameterAveraging:
        return ParameterAveraging(SGDClassifier(random_state=0), persist=persist, random_state=random_state, nan=nan,
                                  timeout=120)

    return make


def _halving(random_state: int = 0, nan: str = "raise") -> SuccessiveHalvingSearch:
    # one rung in which both candidates learn all three training blocks
    return SuccessiveHalvingSearch(SGDClassifier(random_state=0), GRID, n_candidates=2, min_blocks=3, max_blocks=3,
                                   random_state=random_state, nan=nan)


def _hyperband(random_state: int = 0, nan: str = "raise") -> HyperbandSearch:
    return HyperbandSearch(SGDClassifier(random_state=0), GRID, max_blocks=3, eta=3, random_state=random_state,
                           nan=nan)


def _search_rows(model) -> int:
    return max(h["rows_seen"] for h in model.history_)


#: name -> (factory, fitted model's coefficients, rows seen, (rows seen clean, with one NaN row per block))
STRATEGIES = {
    "incremental": (_incremental, lambda m: m.estimator_.coef_, lambda m: m.history_.epochs[-1]["rows_seen"],
                    (2_000, 1_996)),
    "average-read": (_average(False), lambda m: m.estimator_.coef_, lambda m: m.n_rows_seen_, (2_000, 1_996)),
    "average-held": (_average(True), lambda m: m.estimator_.coef_, lambda m: m.n_rows_seen_, (2_000, 1_996)),
    # three blocks learned by each candidate (one of the four held out for scoring)
    "successive-halving": (_halving, lambda m: m.best_estimator_.coef_, _search_rows, (1_500, 1_497)),
    # the bracket's survivor learns one block, then three more (one of them again)
    "hyperband": (_hyperband, lambda m: m.best_estimator_.coef_, _search_rows, (2_000, 1_996)),
}


def _store(path, X, y) -> str:
    """A real store of 500-row blocks whose attributes list the classes (as a table's ingest writes)."""
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])]).assign(y=y)
    return str(daskscale.ingest(frame, path, target="y", chunk_rows=500))


def _xy(n: int = 2_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    return X, (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_nan_raise_names_the_block_its_rows_and_the_first_nan_row(client, tmp_path, strategy):
    X, y = _xy()
    X[1_007, 2] = X[1_300, 0] = np.nan  # block 2 (rows 1000-1500), rows 7 and 300 of the block
    store = _store(tmp_path / "nan.zarr", X, y)
    make = STRATEGIES[strategy][0]
    with pytest.raises(SchemaError, match=r"block 2 \(rows 1000-1500\) has NaN in 2 row\(s\), first at row 7 of "
                                          r"the block\. Clean the data, or pass nan='skip'"):
        make(nan="raise").fit(store)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_nan_skip_drops_the_rows_and_does_not_count_them(client, tmp_path, strategy):
    make, _, seen, (clean_rows, skip_rows) = STRATEGIES[strategy]
    X, y = _xy()
    clean = make(nan="skip").fit(_store(tmp_path / "clean.zarr", X, y))
    X[[3, 600, 1_007, 1_999], [0, 1, 2, 3]] = np.nan  # one row in each block
    skipped = make(nan="skip").fit(_store(tmp_path / "nan.zarr", X, y))
    assert seen(clean) == clean_rows
    assert seen(skipped) == skip_rows
    ok = ~np.isnan(X).any(axis=1)
    assert skipped.score(X[ok], y[ok]) > 0.8


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_the_same_seed_gives_the_same_model_and_another_seed_another(client, tmp_path, strategy):
    make, coef, _, _ = STRATEGIES[strategy]
    X, y = _xy()
    store = _store(tmp_path / "s.zarr", X, y)
    a, b, c = (coef(make(random_state=seed).fit(store)) for seed in (0, 0, 1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_label_outside_the_classes_is_named_with_its_block(client, tmp_path, strategy):
    X, y = _xy(1_500)
    store = _store(tmp_path / "grown.zarr", X, y)  # classes [0, 1] in the store's attributes
    append_rows(store, X[:500], np.full(500, 2))  # block 3 (rows 1500-2000) brings a label 2
    with pytest.raises(SchemaError, match=r"block 3 \(rows 1500-2000\) has class label\(s\) \[2\] not among the "
                                          r"classes \[0, 1\]"):
        STRATEGIES[strategy][0]().fit(store)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_a_value_error_of_the_estimator_names_the_block(client, tmp_path, strategy):
    X, y = _xy()
    X[[3, 600, 1_007, 1_999], 1] = np.inf  # left to scikit-learn, which refuses it, in whichever block comes first
    store = _store(tmp_path / "inf.zarr", X, y)
    with pytest.raises(SchemaError, match=r"^block [0-3] \(rows (0-500|500-1000|1000-1500|1500-2000)\): .*infinity"):
        STRATEGIES[strategy][0]().fit(store)

"""One NaN policy for every trainer (daskscale.learn.prep): a NaN is an error naming its block and row.

Each strategy is fitted on the cluster on a dask array of four 500-row blocks with one NaN at
row 7 of block 2 (row 1007), and must raise a SchemaError of the same text shape.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.tree import DecisionTreeClassifier

from daskscale.errors import SchemaError
from daskscale.learn.ensemble import DistributedBagging, DistributedOneVsRest
from daskscale.learn.incremental import Incremental
from daskscale.learn.model_parallel import FeatureShardedLinear
from daskscale.learn.parallel import ParameterAveraging
from daskscale.learn.search import HyperbandSearch, SuccessiveHalvingSearch

MESSAGE = r"block 2 \(rows 1000-1500\) has NaN in 1 row\(s\), first at row 7 of the block"

TRAINERS = {
    "incremental": lambda: Incremental(SGDClassifier(random_state=0), validation_fraction=0.0, shuffle=False,
                                       progress=False),
    "average": lambda: ParameterAveraging(SGDClassifier(random_state=0), shuffle=False),
    "ovr": lambda: DistributedOneVsRest(LogisticRegression()),
    "ensemble": lambda: DistributedBagging(DecisionTreeClassifier(max_depth=3), n_estimators=2, max_blocks=1.0),
    "feature-sharded": lambda: FeatureShardedLinear("logistic", n_shards=2, max_iter=20),
    "successive-halving": lambda: SuccessiveHalvingSearch(SGDClassifier(random_state=0), {"alpha": [1e-4, 1e-3]},
                                                          n_candidates=2, random_state=0),
    "hyperband": lambda: HyperbandSearch(SGDClassifier(random_state=0), {"alpha": [1e-4, 1e-3]}, max_blocks=3,
                                         random_state=0),
}


def _data(column: int) -> tuple[da.Array, da.Array]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000, 4))
    y = (X[:, 0] > 0).astype(int)
    X[1_007, column] = np.nan
    return da.from_array(X, chunks=(500, 4)), da.from_array(y, chunks=500)


@pytest.mark.parametrize("column", [0, 3])
@pytest.mark.parametrize("strategy", sorted(TRAINERS))
def test_nan_is_an_error_naming_block_and_row(client, strategy, column):
    X, y = _data(column)
    with pytest.raises(SchemaError, match=MESSAGE):
        TRAINERS[strategy]().fit(X, y)


@pytest.mark.parametrize("strategy", ["average", "ovr", "ensemble", "successive-halving"])
def test_nan_skip_is_the_explicit_choice(client, strategy):
    X, y = _data(0)
    model = TRAINERS[strategy]().set_params(nan="skip").fit(X, y)
    assert model.score(X[:1_000].compute(), y[:1_000].compute()) > 0.7


def test_feature_sharded_refuses_skip():
    with pytest.raises(SchemaError, match="nan must be one of 'raise'"):
        FeatureShardedLinear(nan="skip", client="local").fit(np.ones((4, 2)), [0.0, 1.0, 2.0, 3.0])

"""Every public estimator of daskscale.learn against scikit-learn's own estimator checks.

The instances are small (a few iterations, tiny search budgets) and use ``client="local"``:
every task runs in this process, as it does when no Dask client exists, so the checks need
no cluster and do not depend on whether another test module started one. Checks that cannot
apply are listed in ``EXPECTED`` with the reason, and nowhere else.
"""

from __future__ import annotations

import pytest
from sklearn.linear_model import LogisticRegression, SGDClassifier, SGDRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import parametrize_with_checks

from daskscale.learn.ensemble import DistributedBagging, DistributedOneVsRest
from daskscale.learn.incremental import Incremental
from daskscale.learn.model_parallel import FeatureShardedLinear
from daskscale.learn.parallel import ParameterAveraging
from daskscale.learn.search import HyperbandSearch, SuccessiveHalvingSearch

SEARCH_SPACE = {"alpha": [1e-4, 1e-2]}

ESTIMATORS = [
    ParameterAveraging(SGDClassifier(max_iter=5, random_state=0), epochs=2, random_state=0, client="local"),
    ParameterAveraging(SGDClassifier(loss="log_loss", max_iter=5, random_state=0), epochs=2, random_state=0,
                       client="local"),
    ParameterAveraging(SGDRegressor(max_iter=5, random_state=0), epochs=2, random_state=0, client="local"),
    DistributedOneVsRest(LogisticRegression(max_iter=50), client="local"),
    DistributedBagging(DecisionTreeClassifier(max_depth=4), n_estimators=3, max_blocks=1.0, random_state=0,
                       client="local"),
    DistributedBagging(DecisionTreeRegressor(max_depth=4), n_estimators=3, max_blocks=1.0, random_state=0,
                       client="local"),
    FeatureShardedLinear("squared", n_shards=2, max_iter=50, client="local"),
    FeatureShardedLinear("logistic", n_shards=2, max_iter=50, client="local"),
    SuccessiveHalvingSearch(SGDClassifier(max_iter=5, random_state=0), SEARCH_SPACE, n_candidates=2,
                            max_blocks=2, random_state=0, client="local"),
    HyperbandSearch(SGDRegressor(max_iter=5, random_state=0), SEARCH_SPACE, max_blocks=3, random_state=0,
                    client="local"),
    Incremental(SGDClassifier(max_iter=5, random_state=0), random_state=0, progress=False),
]

#: check name -> reason, per estimator class (the only checks allowed to fail)
EXPECTED: dict[str, dict[str, str]] = {}


def expected_failed_checks(estimator) -> dict[str, str]:
    return EXPECTED.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)

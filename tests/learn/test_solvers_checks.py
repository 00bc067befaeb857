"""The exact solvers pass scikit-learn's own estimator checks (run without a cluster: small
data is fitted in this process, no cluster is started)."""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from daskscale.learn.solvers import ExactLinearRegression, ExactLogisticRegression, ExactPoissonRegression

# Checks that cannot apply, with the reason (filled only with reasoned entries).
_EXPECTED: dict[str, str] = {}


def _expected(est):
    return _EXPECTED


@parametrize_with_checks([ExactLogisticRegression(progress=False), ExactPoissonRegression(progress=False),
                          ExactLinearRegression()], expected_failed_checks=_expected)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)

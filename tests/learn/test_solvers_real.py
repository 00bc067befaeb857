"""The exact logistic solver on raw real tables (as shipped in daskscale/datasets/data/,
unscaled): converged, at scikit-learn's tight-tolerance optimum, on the cluster (one task where
the data is).

The reference is scikit-learn's Newton solver at a tight tolerance (``newton-cholesky``,
tol=1e-10): it reaches a lower objective than its lbfgs at the same settings, in seconds where
lbfgs takes minutes (4,111 and 8,837 iterations on breast_cancer and wine). Ours runs with
tol=1e-10, max_iter=10000: at the default
tol=1e-4 (scikit-learn's, same meaning) neither side is within 1e-6 of the optimum on digits,
and scikit-learn's defaults do not converge on any of the three raw tables.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from daskscale.datasets.real import real_dataset_path
from daskscale.learn.solvers import ExactLogisticRegression


def _objective(X, y, coef, intercept, C):
    """scikit-learn's LogisticRegression objective per row: mean log loss + ||w||^2 / (2 C n)."""
    classes = np.unique(y)
    eta = X @ np.atleast_2d(coef).T + intercept
    if len(classes) == 2:
        t = (y == classes[1]).astype(float)
        loss = np.mean(np.logaddexp(0.0, eta[:, 0]) - t * eta[:, 0])
    else:
        codes = np.searchsorted(classes, y)
        loss = np.mean(logsumexp(eta, axis=1) - eta[np.arange(len(y)), codes])
    return loss + 0.5 * np.sum(np.asarray(coef) ** 2) / (C * len(y))


_REFS: dict[str, tuple] = {}


def _table_and_optimum(name):
    """``(X, y, scikit-learn's tight-tolerance objective)``, computed once per table."""
    if name not in _REFS:
        path, target = real_dataset_path(name)
        df = pd.read_csv(path)
        y = df.pop(target).to_numpy()
        X = df.to_numpy(dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ref = LogisticRegression(solver="newton-cholesky", tol=1e-10, max_iter=10000).fit(X, y)
        _REFS[name] = (X, y, _objective(X, y, ref.coef_, ref.intercept_, 1.0))
    return _REFS[name]


def _fit_without_warning(X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # ours must converge, with no warning
        return ExactLogisticRegression(progress=False, **kw).fit(X, y)


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "digits"])
def test_raw_real_table_reaches_sklearns_tight_optimum(name, client):
    X, y, f_ref = _table_and_optimum(name)
    ours = _fit_without_warning(X, y, tol=1e-10, max_iter=10000)
    assert ours.converged_ and ours.placement_ == "one-task"
    f_ours = _objective(X, y, ours.coef_, ours.intercept_, 1.0)
    assert (f_ours - f_ref) / f_ref <= 1e-6, (f_ours, f_ref)


@pytest.mark.parametrize("name", ["breast_cancer", "wine"])
def test_defaults_converge_on_raw_tables(name, client):
    # before: breast_cancer stopped at max_iter=500, 3.9% above the optimum, converged_=False, no warning
    X, y, f_ref = _table_and_optimum(name)
    ours = _fit_without_warning(X, y)
    assert ours.converged_ and ours.n_iter_[0] < 100
    f_ours = _objective(X, y, ours.coef_, ours.intercept_, 1.0)
    assert (f_ours - f_ref) / f_ref <= 1e-6, (f_ours, f_ref)

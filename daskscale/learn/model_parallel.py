"""Model parallelism for wide data: a linear model whose coefficient blocks live on different workers.

:class:`FeatureShardedLinear` splits the features into ``n_shards`` blocks; worker ``j`` holds
the columns ``X[:, F_j]`` of its block and the coefficients ``w_j``, and nothing else. Training
is ADMM in *sharing* form (Boyd et al. 2011, "Distributed Optimization and Statistical Learning
via ADMM", section 7.3)::

    minimise  sum_j r_j(w_j) + loss(sum_j X_j w_j)

- w-step, on each worker in parallel: a ridge solve with its own cached Cholesky factor,
  ``w_j = argmin r_j(w_j) + rho/2 ||X_j w_j - v_j||^2`` with ``v_j = X_j w_j^k + c``;
- z-step, on one worker: per-row closed form (squared loss) or a few vectorised Newton steps
  (logistic) on the averaged margins; it returns the per-row correction ``c`` for the next w-step.

Only per-row margins ``X_j w_j`` (an n-vector per shard) and ``c`` travel between workers each
iteration: never the feature columns. The objective is scikit-learn's ``Ridge`` (squared loss,
``alpha``) or L2 ``LogisticRegression`` (binary, ``C``), with an unpenalised intercept, so the
solution can be checked against the unsplit in-memory fit.
"""

from __future__ import annotations

import time
from typing import Any

import dask
import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from daskscale.errors import InputTypeError, NotFittedError, SchemaError
from daskscale.reduce import Moments, reduce
from daskscale.learn.predict import classes_of
from daskscale.storage.convert import Data, as_data

__all__ = ["FeatureShardedLinear"]


def _setup_shard(blocks: list[np.ndarray], mean: np.ndarray, lam: np.ndarray, rho: float, intercept: bool) -> dict:
    """Runs on the shard's worker: centred columns, Cholesky of ``rho X^T X + diag(lam)``."""
    Xj = np.concatenate([np.asarray(b, dtype=np.float64) for b in blocks]) - mean
    if intercept:
        Xj = np.hstack([Xj, np.ones((len(Xj), 1))])
    A = rho * (Xj.T @ Xj)
    A[np.diag_indices_from(A)] += lam
    return {"X": Xj, "chol": cho_factor(A), "rho": rho}


def _w_step(shard: dict, prev: tuple[np.ndarray, np.ndarray], state: dict) -> tuple[np.ndarray, np.ndarray]:
    w = cho_solve(shard["chol"], shard["rho"] * (shard["X"].T @ (prev[1] + state["c"])))
    return w, shard["X"] @ w


def _z_step(y: np.ndarray, loss: str, rho: float, state: dict, *steps: tuple[np.ndarray, np.ndarray]) -> dict:
    u, z = state["u"], state["z"]
    N = len(steps)
    xbar = sum(m for _, m in steps) / N
    a = u + xbar
    if loss == "squared":
        znew = (y + rho * a) / (N + rho)
    else:
        znew = a.copy()
        for _ in range(20):
            s = expit(N * znew)
            g = N * (s - y) + N * rho * (znew - a)
            h = N * N * s * (1 - s) + N * rho
            znew -= g / h
            if np.max(np.abs(g / h)) < 1e-12:
                break
    unew = u + xbar - znew
    return {"u": unew, "z": znew, "c": znew - xbar - unew,
            "r": float(np.linalg.norm(xbar - znew)), "s": float(rho * np.linalg.norm(znew - z))}


class FeatureShardedLinear(BaseEstimator):
    """Linear model with its coefficient blocks on different workers, trained by sharing-ADMM.

    Parameters
    ----------
    loss : "squared" or "logistic"
    alpha : float
        L2 strength (``Ridge(alpha)`` scale for squared loss); for logistic ``1 / C``.
    n_shards : int or None
        Feature blocks (default: one per worker).
    rho : float or None
        ADMM penalty (default 1.0 for squared loss, 0.25 for logistic: the loss curvature).
    tol : float
        Stop when the primal and dual residuals per row fall under ``tol``.
    max_iter, check_every : int
        Iteration cap; how often the client looks at the residuals.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 40)); y = X[:, 0] - X[:, 39]
    >>> m = FeatureShardedLinear(alpha=1.0, n_shards=2).fit(X, y)  # doctest: +SKIP
    >>> round(m.coef_[0], 1), round(m.coef_[39], 1)  # doctest: +SKIP
    (1.0, -1.0)
    """

    def __init__(self, loss: str = "squared", *, alpha: float = 1.0, n_shards: int | None = None, rho: float | None = None,
                 tol: float = 1e-6, max_iter: int = 500, check_every: int = 10, client: Any = None):
        self.loss = loss
        self.alpha = alpha
        self.n_shards = n_shards
        self.rho = rho
        self.tol = tol
        self.max_iter = max_iter
        self.check_every = check_every
        self.client = client

    @property
    def _estimator_type(self) -> str:
        return "classifier" if self.loss == "logistic" else "regressor"

    def fit(self, X: Any, y: Any = None) -> "FeatureShardedLinear":
        """Fit on ``X`` (anything :func:`as_data` accepts); each worker receives only its columns."""
        from distributed import get_client

        if self.loss not in ("squared", "logistic"):
            raise InputTypeError(f"loss={self.loss!r}: use 'squared' or 'logistic'")
        data = X if isinstance(X, Data) else as_data(X, y, require_y=True)
        client = self.client or get_client()
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        J = min(int(self.n_shards or len(workers)), data.n_features)
        t0 = time.perf_counter()
        yv = data.y
        if self.loss == "logistic":
            classes = classes_of(data)
            if len(classes) != 2:
                raise SchemaError(f"loss='logistic' is binary; the target has classes {classes.tolist()} "
                                  "(use DistributedOneVsRest for more)")
            self.classes_ = classes
            yv = (yv == classes[1]).astype(np.float64)
        mean = np.nan_to_num(np.asarray(reduce(data, [Moments()])["moments"]["mean"], dtype=float))
        yf = client.compute(yv.astype(np.float64), workers=[workers[0]])
        bounds = np.linspace(0, data.n_features, J + 1).astype(int)
        rho = float(self.rho if self.rho is not None else (1.0 if self.loss == "squared" else 0.25))
        n = data.n_rows
        shards, steps = [], []
        for j in range(J):
            lo, hi = bounds[j], bounds[j + 1]
            lam = np.full(hi - lo + (j == 0), float(self.alpha))
            if j == 0:
                lam[-1] = 0.0  # the intercept column is not penalised
            blocks = data.X[:, lo:hi].to_delayed(optimize_graph=True)[:, 0].tolist()
            w = workers[j % len(workers)]
            shards.append(client.compute(dask.delayed(_setup_shard)(blocks, mean[lo:hi], lam, rho, j == 0),
                                         workers=[w]))
            steps.append(client.submit(lambda p: (np.zeros(p), np.zeros(n)), len(lam), workers=[w], pure=False))
        state = client.submit(lambda: {"u": np.zeros(n), "z": np.zeros(n), "c": np.zeros(n)}, pure=False)
        self.n_iter_, self.converged_ = 0, False
        for it in range(1, int(self.max_iter) + 1):
            steps = [client.submit(_w_step, sh, st, state, workers=[workers[j % len(workers)]], pure=False)
                     for j, (sh, st) in enumerate(zip(shards, steps))]
            state = client.submit(_z_step, yf, self.loss, rho, state, *steps, workers=[workers[0]], pure=False)
            self.n_iter_ = it
            if it % max(1, int(self.check_every)) == 0:
                r, s = client.gather(client.submit(lambda d: (d["r"], d["s"]), state, pure=False))
                if r / np.sqrt(n) < self.tol and s / np.sqrt(n) < self.tol:
                    self.converged_ = True
                    break
        ws = client.gather([client.submit(lambda t: t[0], st, pure=False) for st in steps])
        coef = np.concatenate([ws[0][:-1]] + ws[1:])
        self.coef_ = coef if self.loss == "squared" else coef[None, :]
        self.intercept_ = float(ws[0][-1] - mean @ coef)
        if self.loss == "logistic":
            self.intercept_ = np.array([self.intercept_])
        self.shard_bounds_ = bounds
        self.n_features_in_ = data.n_features
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise NotFittedError("FeatureShardedLinear is not fitted: call fit(X, y) first")
        return np.asarray(X, dtype=np.float64) @ np.ravel(self.coef_) + float(np.ravel(self.intercept_)[0])

    def predict(self, X: Any) -> np.ndarray:
        eta = self.decision_function(X)
        return eta if self.loss == "squared" else self.classes_[(eta > 0).astype(int)]

    def predict_proba(self, X: Any) -> np.ndarray:
        p1 = expit(self.decision_function(X))
        return np.column_stack([1 - p1, p1])

    def score(self, X: Any, y: Any) -> float:
        mixin = ClassifierMixin if self.loss == "logistic" else RegressorMixin
        return mixin.score(self, X, y)

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

Without a Dask client (or with ``client="local"``) the shards are solved one after the other in
this process. NaN follows the policy of :mod:`daskscale.learn.prep` with ``nan="raise"`` only:
each shard checks its columns of every block as it caches them, and names the block and row.
"""

from __future__ import annotations

import time
from typing import Any

import dask
import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.utils.metaestimators import available_if

from daskscale.errors import InputTypeError, SchemaError
from daskscale.reduce import Moments, reduce
from daskscale.learn.local import executor, in_process
from daskscale.learn.predict import apply_method, classes_of, score_method
from daskscale.learn.prep import check_block, check_nan_option, fit_data, where_block

__all__ = ["FeatureShardedLinear"]


def _setup_shard(blocks: list[np.ndarray], mean: np.ndarray, lam: np.ndarray, rho: float, intercept: bool,
                 wheres: list[str], ys: list[np.ndarray] | None) -> dict:
    """Runs on the shard's worker: its columns checked for NaN (and the target's, for the first
    shard), centred; the Cholesky factor of ``rho X^T X + diag(lam)``."""
    for k, (b, where) in enumerate(zip(blocks, wheres)):
        check_block(b, None if ys is None else ys[k], where=where, nan="raise", classes=None)
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
    nan : "raise"
        NaN policy (:mod:`daskscale.learn.prep`): an error naming the block and row.
    client : distributed.Client, "local" or None
        Default: the current client; with none, or ``"local"``, this process.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 40)); y = X[:, 0] - X[:, 39]
    >>> m = FeatureShardedLinear(alpha=1.0, n_shards=2).fit(X, y)  # doctest: +SKIP
    >>> round(m.coef_[0], 1), round(m.coef_[39], 1)  # doctest: +SKIP
    (1.0, -1.0)
    """

    def __init__(self, loss: str = "squared", *, alpha: float = 1.0, n_shards: int | None = None, rho: float | None = None,
                 tol: float = 1e-6, max_iter: int = 500, check_every: int = 10, nan: str = "raise",
                 client: Any = None):
        self.loss = loss
        self.alpha = alpha
        self.n_shards = n_shards
        self.rho = rho
        self.tol = tol
        self.max_iter = max_iter
        self.check_every = check_every
        self.nan = nan
        self.client = client

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.target_tags.required = True
        if self.loss == "logistic":
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=False)
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        return tags

    def fit(self, X: Any, y: Any = None) -> "FeatureShardedLinear":
        """Fit on ``X`` (anything :func:`~daskscale.storage.convert.as_data` accepts); each worker
        receives only its columns."""
        if self.loss not in ("squared", "logistic"):
            raise InputTypeError(f"loss={self.loss!r}: use 'squared' or 'logistic'")
        check_nan_option(self.nan, ("raise",))
        client = executor(self.client)
        with in_process(client):
            return self._fit(client, X, y)

    def _fit(self, client: Any, X: Any, y: Any) -> "FeatureShardedLinear":
        data = fit_data(self, X, y, classifier=self.loss == "logistic")
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        J = min(int(self.n_shards or len(workers)), data.n_features)
        t0 = time.perf_counter()
        yv = data.y
        if self.loss == "logistic":
            classes = classes_of(data)
            if len(classes) != 2:
                kind = "1 class" if len(classes) == 1 else f"{len(classes)} classes"
                raise SchemaError(f"Only binary classification is supported by loss='logistic'; the target has {kind} "
                                  f"{classes.tolist()[:20]} (use DistributedOneVsRest for more than two)")
            self.classes_ = classes
            yv = (yv == classes[1]).astype(np.float64)
        mean = np.nan_to_num(np.asarray(reduce(data, [Moments()])["moments"]["mean"], dtype=float))
        yf = client.compute(yv.astype(np.float64), workers=[workers[0]])
        bounds = np.linspace(0, data.n_features, J + 1).astype(int)
        rho = float(self.rho if self.rho is not None else (1.0 if self.loss == "squared" else 0.25))
        n = data.n_rows
        starts = np.concatenate([[0], np.cumsum(data.row_chunks)]).astype(int)
        wheres = [where_block(i, int(starts[i]), int(c)) for i, c in enumerate(data.row_chunks)]
        y_blocks = data.y.to_delayed(optimize_graph=True).tolist()
        shards, steps = [], []
        for j in range(J):
            lo, hi = bounds[j], bounds[j + 1]
            lam = np.full(hi - lo + (j == 0), float(self.alpha))
            if j == 0:
                lam[-1] = 0.0  # the intercept column is not penalised
            blocks = data.X[:, lo:hi].to_delayed(optimize_graph=True)[:, 0].tolist()
            w = workers[j % len(workers)]
            setup = dask.delayed(_setup_shard)(blocks, mean[lo:hi], lam, rho, j == 0, wheres,
                                               y_blocks if j == 0 else None)
            shards.append(client.compute(setup, workers=[w]))
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
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64) @ np.ravel(self.coef_) + float(np.ravel(self.intercept_)[0])

    def _proba(self, X: np.ndarray) -> np.ndarray:
        p1 = expit(self._decision(X))
        return np.column_stack([1 - p1, p1])

    @available_if(lambda self: self.loss == "logistic")
    def decision_function(self, X: Any) -> Any:
        """``X @ coef_ + intercept_`` (NumPy in, NumPy out; else blockwise)."""
        return apply_method(self, X, "decision_function", self._decision, fitted="coef_")

    def predict(self, X: Any) -> Any:
        """Values (squared loss) or classes (logistic); NumPy in, NumPy out; else blockwise."""
        if self.loss == "squared":
            return apply_method(self, X, "predict", self._decision, fitted="coef_")
        return apply_method(self, X, "predict", lambda A: self.classes_[(self._decision(A) > 0).astype(int)],
                            fitted="coef_")

    @available_if(lambda self: self.loss == "logistic")
    def predict_proba(self, X: Any) -> Any:
        """Probabilities of the two classes (logistic loss)."""
        return apply_method(self, X, "predict_proba", self._proba, fitted="coef_")

    def score(self, X: Any, y: Any = None) -> float:
        """R^2 (squared loss) or accuracy (logistic); blockwise for out-of-memory input."""
        return score_method(self, X, y, fitted="coef_")

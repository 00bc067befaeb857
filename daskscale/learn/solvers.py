"""Exact full-batch solvers: scikit-learn's objectives, solved over row blocks.

- :class:`ExactLogisticRegression` (binary and multinomial, L2) and
  :class:`ExactPoissonRegression` (log link, L2): the objectives of scikit-learn's
  ``LogisticRegression`` / ``PoissonRegressor``, minimised by L-BFGS in preconditioned
  standardised coordinates (:mod:`daskscale.learn.solvers_optim`: why, and what ``tol`` means).
- :class:`ExactLinearRegression` (ridge / least squares): closed form from one pass of
  :class:`Gram`.

Where the fit runs (``persist="auto"``, :mod:`daskscale.learn.solvers_fit`):

- data of at most :data:`ONE_TASK_BYTES` (64 MiB on a cluster of three or more workers;
  :data:`FEW_WORKERS_TASK_BYTES`, 1 GiB, on one or two; never more than a quarter of the
  smallest worker's memory): the whole fit in ONE task on a worker (or in this process when no
  client is active: no cluster is started); every evaluation is then the products in memory,
  with no scheduler round trip. Measured on the default cluster of a 2-core machine (2
  single-threaded workers; asv ``bench_solvers.SolverPlacement``, one task vs held blocks,
  N(0, 1) float32 x 50): 19 MB 0.17 vs 0.46 s, 57 MB 0.38 vs 0.84 s, 172 MB 0.94 vs 1.51 s,
  and 744 MB 3.7 vs 4.2-4.4 s (scratch run): the two workers share one memory bus, and every
  held-blocks evaluation pays a round trip. The 64 MiB of larger clusters is not re-measured;
- larger data that takes under half the cluster's memory: laid out once and persisted on the
  workers, one task per worker and evaluation over the blocks it holds;
- larger still (or ``persist=False``): every evaluation streams the store (one read and
  decode of every chunk per evaluation).

``persist=True`` / ``False`` force the map-reduce over persisted / streamed blocks.
Every fit checks the values once, in its first pass: a NaN or an infinity in ``X`` or ``y``
raises :class:`~daskscale.errors.SchemaError` naming the block and the row.
"""

from __future__ import annotations

import time
import uuid
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning

from daskscale.errors import SchemaError
from daskscale.learn.solvers_io import SolverIO
from daskscale.learn.solvers_fit import Spec, fit_arrays, fit_blocks, fit_read, raise_if_not_finite
from daskscale.learn.solvers_kernels import Finite, Gram, LossGradient, layout_block
from daskscale.monitor import MetricsPublisher, current_client, progress
from daskscale.reduce import reduce
from daskscale.storage.convert import Data

__all__ = ["ExactLogisticRegression", "ExactPoissonRegression", "ExactLinearRegression", "LossGradient", "Gram",
           "ONE_TASK_BYTES"]

#: data up to this size is fitted in one task where it is (see the module's docstring) ...
ONE_TASK_BYTES = 64 * 2**20
#: ... or up to this size when the cluster has one or two workers: held blocks on two
#: single-threaded workers of one machine lost to one task at every size measured, 19 MB to 744 MB
FEW_WORKERS_TASK_BYTES = 1 * 2**30


def _cluster_memory(client: Any) -> tuple[int, int, int]:
    """``(total, smallest worker)`` memory limit in bytes (0 when unknown), and the number of workers."""
    limits = [w.get("memory_limit", 0) or 0 for w in client.scheduler_info(n_workers=-1)["workers"].values()]
    return (sum(limits), min(limits), len(limits)) if limits else (0, 0, 0)


def _placement(nbytes: int, persist: bool | str, client: Any) -> str:
    """``"one-task"``, ``"persisted"`` or ``"streamed"``."""
    if persist is True:
        return "persisted"
    if persist is False:
        return "streamed"
    if persist != "auto":
        raise SchemaError(f"persist must be 'auto', True or False, not {persist!r}")
    total, smallest, workers = _cluster_memory(client) if client is not None else (0, 0, 0)
    limit = ONE_TASK_BYTES if workers > 2 else FEW_WORKERS_TASK_BYTES
    limit = limit if not smallest else min(limit, smallest // 4)
    if nbytes <= limit:
        return "one-task"
    if client is not None and (total == 0 or nbytes < 0.5 * total):
        return "persisted"
    return "streamed"


def _follow(client: Any, fut: Any, run: str, bar: Any) -> dict[str, Any]:
    """Wait for a fit running as one worker task, moving the bar from its published metrics."""
    from distributed import wait

    from daskscale.monitor import recent_metrics

    seen = 0
    while not fut.done():
        try:
            wait(fut, timeout=0.25)
        except Exception:  # noqa: BLE001 - distributed's own TimeoutError type
            pass
        if fut.done():
            break
        try:
            msgs = recent_metrics(client, run=run)
        except Exception:  # noqa: BLE001 - the bar is cosmetic; the result is what matters
            msgs = []
        for m in msgs[seen:]:
            if "iteration" in m:
                bar.update(m["iteration"] - bar.n)
                bar.set_postfix({"loss": f"{m['loss']:.6g}", "grad": f"{m['grad_max']:.1e}"}, refresh=False)
        seen = len(msgs)
    try:
        return fut.result()
    finally:
        fut.release()  # the result lives in the model now, not on a worker


class _GLM(BaseEstimator):
    _kind = "logistic"

    def _strength(self) -> float:
        raise NotImplementedError

    def _run(self, data: Data, classes: Any, checked: bool, arrays: tuple | None, reader: Any) -> dict[str, Any]:
        """The fit where it belongs (one task / persisted / streamed), with a bar and metrics."""
        client = current_client()
        spec = Spec(self._kind, self._strength(), float(self.tol), int(self.max_iter), data.row_chunks,
                    data.source or "X", classes, not checked)
        nbytes = data.n_rows * data.n_features * (4 if data.X.dtype == np.float32 else 8)
        self.placement_ = _placement(nbytes, self.persist, client)
        run = f"exact-{self._kind}-{uuid.uuid4().hex[:8]}"
        pub = MetricsPublisher(run, client=client)
        with progress(total=int(self.max_iter), desc=type(self).__name__, unit="iter",
                      disable=None if self.progress else True) as bar:
            def on_iter(it: int, f: float, g: float) -> None:
                bar.update(1)
                bar.set_postfix({"loss": f"{f:.6g}", "grad": f"{g:.1e}"}, refresh=False)
                pub.publish(iteration=it, loss=f, grad_max=g)

            if self.placement_ == "one-task" and client is None:
                if arrays is None and reader is not None:
                    return fit_read(reader, spec, on_iter=on_iter)
                X, y = arrays if arrays is not None else (data.X.compute(), data.y.compute())
                return fit_arrays(X, y, spec, on_iter=on_iter)
            if self.placement_ == "one-task":
                if reader is not None:  # the worker reads the store itself: no task per chunk, no copy
                    return _follow(client, client.submit(fit_read, reader, spec, run, pure=False), run, bar)
                import dask

                task = dask.delayed(fit_arrays, pure=False)(data.X, data.y, spec, run)
                return _follow(client, client.compute(task), run, bar)
            return fit_blocks(data, spec, persist=self.placement_ == "persisted", client=client, on_iter=on_iter,
                              reader=reader)

    def _fit(self, X: Any, y: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        data, arrays, classes, reader = self._accept(X, y)
        out = self._run(data, classes, arrays is not None, arrays, reader)
        self.n_features_in_ = data.n_features
        self.n_evaluations_ = out["n_evaluations"]
        self.converged_ = bool(out["converged"])
        self.objective_ = float(out["objective"])
        self.fit_seconds_ = time.perf_counter() - t0
        if not self.converged_:
            warnings.warn(
                f"{type(self).__name__} did not converge in {out['n_iter']} iterations (largest gradient component "
                f"{out['grad_max']:.2e} > tol={self.tol:g}; {out['message']}). Increase max_iter, or loosen tol",
                ConvergenceWarning, stacklevel=3)
        return out


class ExactLogisticRegression(SolverIO, ClassifierMixin, _GLM):
    """L2 logistic regression (scikit-learn's objective) by preconditioned L-BFGS over row blocks.

    Parameters
    ----------
    C : float
        Inverse regularisation strength, as in ``sklearn.linear_model.LogisticRegression``.
    tol : float
        Stop when the largest gradient component (original units) is at most ``tol``:
        scikit-learn's lbfgs ``gtol`` (same default).
    max_iter : int
        Iteration cap (scikit-learn's default); a :class:`~sklearn.exceptions.ConvergenceWarning`
        when reached.
    persist : "auto", True or False
        Where the fit runs (module docstring).
    progress : bool
        Show a bar of iterations with the loss and gradient (metrics also go to the dashboard).

    Attributes
    ----------
    coef_, intercept_, classes_, n_iter_ (array of one), converged_, n_evaluations_,
    objective_, placement_ ("one-task", "persisted" or "streamed"), fit_seconds_

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(200, 3)); y = (X[:, 0] > 0).astype(int)
    >>> ExactLogisticRegression(progress=False).fit(X, y).score(X, y) > 0.95
    True
    """

    def __init__(self, C: float = 1.0, *, tol: float = 1e-4, max_iter: int = 100, persist: bool | str = "auto",
                 progress: bool = True):
        self.C = C
        self.tol = tol
        self.max_iter = max_iter
        self.persist = persist
        self.progress = progress

    def _strength(self) -> float:
        return float(self.C)

    def fit(self, X: Any, y: Any = None) -> "ExactLogisticRegression":
        out = self._fit(X, y)
        self.classes_ = np.asarray(out["classes"])
        self.coef_, self.intercept_ = out["coef"], out["intercept"]
        self.n_iter_ = np.array([out["n_iter"]])
        return self

    def decision_function(self, X: Any) -> Any:
        return self._apply(X, "decision")

    def predict_proba(self, X: Any) -> Any:
        return self._apply(X, "proba")

    def predict_log_proba(self, X: Any) -> Any:
        return np.log(self.predict_proba(X))

    def predict(self, X: Any) -> Any:
        return self._apply(X, "predict")


class ExactPoissonRegression(SolverIO, RegressorMixin, _GLM):
    """Poisson regression with log link and L2 (scikit-learn ``PoissonRegressor``'s objective).

    Parameters as :class:`ExactLogisticRegression`, with ``alpha`` (the L2 strength per mean
    loss, as in ``PoissonRegressor``) instead of ``C``; ``n_iter_`` is an int.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(300, 2)); y = np.random.default_rng(1).poisson(np.exp(X[:, 0]))
    >>> ExactPoissonRegression(alpha=0.0, progress=False).fit(X, y).coef_.round(0).tolist()
    [1.0, 0.0]
    """

    _kind = "poisson"

    def __init__(self, alpha: float = 1.0, *, tol: float = 1e-4, max_iter: int = 100,
                 persist: bool | str = "auto", progress: bool = True):
        self.alpha = alpha
        self.tol = tol
        self.max_iter = max_iter
        self.persist = persist
        self.progress = progress

    def _strength(self) -> float:
        return float(self.alpha)

    def fit(self, X: Any, y: Any = None) -> "ExactPoissonRegression":
        out = self._fit(X, y)
        self.coef_, self.intercept_ = out["coef"][0], float(out["intercept"][0])
        self.n_iter_ = int(out["n_iter"])
        return self

    def predict(self, X: Any) -> Any:
        return self._apply(X, "exp")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.positive_only = True
        return tags


class ExactLinearRegression(SolverIO, RegressorMixin, BaseEstimator):
    """Ridge (``alpha > 0``) or ordinary least squares in closed form from one Gram pass.

    Minimises ``||y - Xw - b||^2 + alpha ||w||^2`` (sklearn ``Ridge``; intercept unpenalised).
    The pass also checks the values (NaN / inf named by block and row).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(size=(100, 2)); y = X @ [2.0, -1.0] + 3
    >>> m = ExactLinearRegression(alpha=0.0).fit(X, y)
    >>> np.round(m.coef_, 6).tolist(), round(m.intercept_, 6)
    ([2.0, -1.0], 3.0)
    """

    _kind = "linear"

    def __init__(self, alpha: float = 1.0, *, persist: bool | str = False):
        self.alpha = alpha
        # kept for one interface across the solvers: a one-pass fit reads the data once either way
        self.persist = persist

    def fit(self, X: Any, y: Any = None) -> "ExactLinearRegression":
        t0 = time.perf_counter()
        data, *_ = self._accept(X, y)
        ref = np.nan_to_num(np.asarray(data.X[:1].compute(), dtype=np.float64).ravel(), nan=0.0, posinf=0.0,
                            neginf=0.0)
        dtype = np.float32 if data.X.dtype == np.float32 else np.float64
        Xl = data.X.map_blocks(layout_block, ref, dtype=dtype)
        out = reduce(Data(Xl, data.y), [Gram(), Finite()])
        raise_if_not_finite(out["finite"], Spec("linear", 0.0, 0.0, 0, data.row_chunks, data.source or "X"))
        G, b = out["gram"]
        p = data.n_features
        n = G[p, p]
        mx, my = G[p, :p] / n, b[p] / n
        # centring removes the intercept; then (Xc^T Xc + alpha I) w = Xc^T yc
        A = G[:p, :p] - n * np.outer(mx, mx) + float(self.alpha) * np.eye(p)
        rhs = b[:p] - n * mx * my
        try:
            w = np.linalg.solve(A, rhs)
        except np.linalg.LinAlgError:
            w = np.linalg.lstsq(A, rhs, rcond=None)[0]
        self.coef_, self.intercept_ = w, float(my - (mx + ref) @ w)
        self.n_features_in_ = p
        self.fit_seconds_ = time.perf_counter() - t0
        return self

    def predict(self, X: Any) -> Any:
        return self._apply(X, "identity")

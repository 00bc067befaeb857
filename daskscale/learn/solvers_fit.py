"""Where an exact GLM fit runs: in one task where the data is, or one map-reduce per evaluation.

- :func:`fit_arrays` (small data): the whole fit (check, statistics, every L-BFGS
  evaluation) over one in-memory array, in the calling process when no client is active, or
  as ONE task on a worker: no scheduler round trip per evaluation.
- :func:`fit_blocks` (large data): the blocks laid out once (:func:`layout_block`) and,
  when they fit, persisted on the workers; then one :func:`daskscale.reduce.reduce` of
  :class:`LossGradient` per evaluation. Out of core (``persist=False``) every evaluation
  streams the store: its cost is one read and decode of the store plus two matrix-vector
  products per block.

Both start with the same first pass: :class:`Finite` (NaN / inf, named by block and row),
:class:`~daskscale.reduce.Moments` (the standardisation) and a sampled :class:`Gram` (the
correlations the preconditioner uses), fused, so the data is read once before the L-BFGS
evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from daskscale.errors import SchemaError
from daskscale.learn.prep import Labels
from daskscale.learn.solvers_kernels import Finite, Gram, LossGradient, encode_target, layout_block, where_row
from daskscale.learn.solvers_optim import OptimResult, Problem, optimise
from daskscale.reduce import Moments, reduce, update
from daskscale.storage.convert import Data

__all__ = ["Spec", "fit_arrays", "fit_blocks", "raise_if_not_finite", "SAMPLE_ROWS"]

#: rows of every mapped piece that enter the preconditioner's correlation estimate
SAMPLE_ROWS = 4_096


@dataclass
class Spec:
    """What to fit: the GLM, its penalty, the tolerance, and where errors point."""

    kind: str                     # "logistic" or "poisson" (multinomial is decided by the classes)
    strength: float               # C (logistic) or alpha (poisson)
    tol: float
    max_iter: int
    row_chunks: tuple[int, ...]
    source: str = "X"
    classes: Any = None           # known class labels, or None (found in the first pass)
    check: bool = True            # False when the caller has checked the values already


def raise_if_not_finite(state: tuple, spec: Spec) -> None:
    """A :class:`SchemaError` naming the block and row of the first NaN / inf, if any."""
    _, row, what, *_ = state
    if row >= 0:
        raise SchemaError(f"{spec.source}: {what} at {where_row(row, spec.row_chunks)}. The exact solvers need "
                          "finite values: drop or impute those rows first (e.g. ingest with nan='skip', or "
                          "daskscale.learn.Incremental(nan='skip') to skip them while training)")


def _classes(spec: Spec, found: Any) -> np.ndarray | None:
    if spec.kind != "logistic":
        return None
    classes = np.asarray(spec.classes if spec.classes is not None else found)
    if len(classes) < 2:
        raise SchemaError(f"{spec.source}: the target has one class {classes.tolist()}: logistic regression "
                          "needs two or more")
    return classes


def _problem(spec: Spec, stats: dict, ref: np.ndarray, classes: np.ndarray | None) -> Problem:
    """The optimiser's view of the data from the first pass."""
    n, *_, y_sum, y_min = stats["finite"]
    mom = stats["moments"]
    mean = np.asarray(mom["mean"], dtype=np.float64)
    std = np.asarray(mom["std"], dtype=np.float64)
    scale = np.where(np.isfinite(std) & (std > 0), std, 1.0)
    G = stats["gram"][0]
    m = G[-1, -1]
    p = len(mean)
    corr = None
    if m > 1:
        ms = G[:p, p] / m
        cov = G[:p, :p] / m - np.outer(ms, ms)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        keep = sd > 1e-12 * np.maximum(np.abs(ms), 1.0)
        inv = np.where(keep, 1.0 / np.where(keep, sd, 1.0), 0.0)
        corr = cov * np.outer(inv, inv)
        corr[np.diag_indices(p)] = keep.astype(float)
    if spec.kind == "poisson":
        if y_min < 0:
            raise SchemaError(f"{spec.source}: the target has negative values (min {y_min:g}); Poisson regression "
                              "needs counts or rates >= 0")
        if y_sum <= 0:
            raise SchemaError(f"{spec.source}: the target is all zero; Poisson regression needs some positive values")
        mu = y_sum / n
        return Problem("poisson", 1, int(n), ref, mean, scale, float(spec.strength), mu, float(np.log(mu)), corr)
    k = len(classes)
    lam = 1.0 / (float(spec.strength) * n)
    if k == 2:
        return Problem("logistic", 1, int(n), ref, mean, scale, lam, 0.25, 0.0, corr)
    return Problem("multinomial", k, int(n), ref, mean, scale, lam, (1.0 / k) * (1.0 - 1.0 / k), 0.0, corr)


def _first_reducers(spec: Spec) -> dict[str, Any]:
    rs: dict[str, Any] = {"finite": Finite(), "moments": Moments(), "gram": Gram(rows=SAMPLE_ROWS, with_y=False)}
    if spec.kind == "logistic" and spec.classes is None:
        rs["labels"] = Labels()
    return rs


def _reference(first_row: np.ndarray) -> np.ndarray:
    """The shift of the layout: the first row, with non-finite values replaced by 0 (so NaN and
    inf stay where they are, and are found by the check)."""
    return np.nan_to_num(np.asarray(first_row, dtype=np.float64).ravel(), nan=0.0, posinf=0.0, neginf=0.0)


def _result(problem: Problem, res: OptimResult, classes: np.ndarray | None) -> dict[str, Any]:
    coef, intercept = problem.original(res.v)
    return {"coef": coef, "intercept": intercept, "n_iter": res.n_iter, "n_evaluations": res.n_evaluations,
            "converged": res.converged, "objective": res.objective, "grad_max": res.grad_max,
            "message": res.message, "classes": classes}


def _publisher(run: str | None, on_iter: Callable | None) -> Callable | None:
    """``on_iter`` as given, or one that publishes the metrics (a fit running in a worker task)."""
    if on_iter is not None or run is None:
        return on_iter
    from daskscale.monitor import MetricsPublisher

    pub = MetricsPublisher(run)

    def publish(it: int, f: float, g: float) -> None:
        pub.publish(iteration=it, loss=f, grad_max=g)

    return publish


def fit_arrays(X: np.ndarray, y: np.ndarray, spec: Spec, run: str | None = None,
               on_iter: Callable[[int, float, float], Any] | None = None) -> dict[str, Any]:
    """The whole fit over in-memory ``X``, ``y`` (in this process: a worker task, or the client).

    ``run`` names the metrics published from a worker (the client follows them with a bar).
    """
    X, y = np.asarray(X), np.asarray(y).ravel()
    ref = _reference(X[0])
    Xl = layout_block(X, ref)
    del X  # the laid-out copy is all the evaluations read
    rs = {k: r for k, r in _first_reducers(spec).items() if k != "labels"}
    stats = {k: rs[k].finalize(s) for k, s in update(rs, None, Xl, y).items()}
    if spec.check:
        raise_if_not_finite(stats["finite"], spec)
    classes = _classes(spec, np.unique(y) if spec.kind == "logistic" and spec.classes is None else None)
    yc = encode_target(y, classes)
    problem = _problem(spec, stats, ref, classes)

    def evaluate(v: np.ndarray) -> tuple[float, np.ndarray]:
        r = LossGradient(problem.kind, v, problem.mean, problem.scale, problem.n_out)
        return update({"lg": r}, None, Xl, yc)["lg"]

    res = optimise(problem, evaluate, tol=spec.tol, max_iter=spec.max_iter, on_iter=_publisher(run, on_iter))
    return _result(problem, res, classes)


def fit_blocks(data: Data, spec: Spec, *, persist: bool, client: Any,
               on_iter: Callable[[int, float, float], Any] | None = None) -> dict[str, Any]:
    """The fit as one map-reduce per evaluation over the blocks (persisted when ``persist``)."""
    import dask

    ref = _reference(data.X[:1].compute())
    dtype = np.float32 if data.X.dtype == np.float32 else np.float64
    Xl = data.X.map_blocks(layout_block, ref, dtype=dtype)
    y = data.y
    if persist:
        Xl, y = client.persist([Xl, y]) if client is not None else dask.persist(Xl, y)
    rs = _first_reducers(spec)
    stats = reduce(Data(Xl, y), rs)
    if spec.check:
        raise_if_not_finite(stats["finite"], spec)
    classes = _classes(spec, stats.get("labels"))
    yc = y.map_blocks(encode_target, classes, dtype=np.int32 if classes is not None else np.float64)
    if persist:
        yc = client.persist(yc) if client is not None else yc.persist()
    del y
    problem = _problem(spec, stats, ref, classes)
    laid = Data(Xl, yc)

    def evaluate(v: np.ndarray) -> tuple[float, np.ndarray]:
        r = LossGradient(problem.kind, v, problem.mean, problem.scale, problem.n_out)
        return reduce(laid, [r])["loss_grad"]

    res = optimise(problem, evaluate, tol=spec.tol, max_iter=spec.max_iter, on_iter=on_iter)
    return _result(problem, res, classes)

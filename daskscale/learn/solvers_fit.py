"""Where an exact GLM fit runs: in one task where the data is, or one map-reduce per evaluation.

- :func:`fit_arrays` (small data): the whole fit (check, statistics, every L-BFGS
  evaluation) over one in-memory array, in the calling process when no client is active, or
  as ONE task on a worker: no scheduler round trip per evaluation.
- :func:`fit_blocks` (large data): the blocks laid out once (:func:`layout_block`) and,
  when they fit, persisted on the workers; then, per evaluation, ONE task per worker over the
  blocks it holds (:class:`LocalBlocks`; a map-reduce of a task per block cost 0.25 s of
  scheduling per evaluation at 40 blocks, more than the products: 4M x 50 rows, 0.46 s an
  evaluation before, measured on this 2-core machine). Out of core (``persist=False``) every
  evaluation is one :func:`daskscale.reduce.reduce` of :class:`LossGradient` that streams the
  store: its cost is one read and decode of the store plus two matrix-vector products per block.

Both start with the same first pass: :class:`Finite` (NaN / inf, named by block and row) and
a sampled :class:`Gram` (the standardisation over blocks, and the correlations the
preconditioner uses), fused, so the data is read once before the L-BFGS evaluations; in one
task :class:`~daskscale.reduce.Moments` gives the standardisation (:func:`_first_reducers`).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from daskscale.errors import SchemaError
from daskscale.learn.prep import Labels
from daskscale.learn.solvers_kernels import Finite, Gram, LossGradient, encode_target, layout_block, where_row
from daskscale.learn.solvers_optim import OptimResult, Problem, optimise
from daskscale.reduce import Moments, reduce, update
from daskscale.reduce.base import map_all
from daskscale.storage.convert import Data

__all__ = ["Spec", "fit_arrays", "fit_blocks", "raise_if_not_finite", "LocalBlocks", "SAMPLE_ROWS"]

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
    G = stats["gram"][0]
    m = G[-1, -1]
    p = G.shape[0] - 1
    if "moments" in stats:
        mean = np.asarray(stats["moments"]["mean"], dtype=np.float64)
        std = np.asarray(stats["moments"]["std"], dtype=np.float64)
    else:  # the sampled rows' (see _first_reducers)
        mean = G[:p, p] / max(m, 1.0)
        std = np.sqrt(np.clip(np.diag(G)[:p] / max(m, 1.0) - mean**2, 0.0, None))
    scale = np.where(np.isfinite(std) & (std > 0), std, 1.0)
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


def _first_reducers(spec: Spec, moments: bool = True) -> dict[str, Any]:
    """The first pass: values checked, the target described, the sample for the preconditioner.

    The standardisation (``mean``, ``scale``) only conditions the problem (the objective in
    original units is the same for any), so over blocks it is taken from the sampled rows
    (``moments=False``): :class:`~daskscale.reduce.Moments` over every row cost 3/4 of the
    first pass (32 of 43 ms a 100k x 50 float32 block). In one task it stays exact (the
    sample would be the first rows only).
    """
    rs: dict[str, Any] = {"finite": Finite(), "gram": Gram(rows=SAMPLE_ROWS, with_y=False)}
    if moments:
        rs["moments"] = Moments()
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


def _block_states(reducer: Any, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[Any]:
    """The reducer's state of each ``(X, y)`` block, in order (a worker task over its blocks)."""
    rs = {"r": reducer}
    return [map_all(rs, X, y)["r"] for X, y in pairs]


def _fold_tree(merge: Callable[[Any, Any], Any], states: list[Any], split_every: int = 8) -> Any:
    """``states`` merged in the order of :func:`daskscale.reduce.reduce`'s tree (groups of
    ``split_every``, left to right), so the sums have the same bits as a map-reduce would give."""
    while len(states) > 1:
        states = [functools.reduce(merge, states[i:i + split_every]) for i in range(0, len(states), split_every)]
    return states[0]


class LocalBlocks:
    """Persisted row blocks grouped by the worker that holds them.

    :meth:`reduce` runs one task per worker over that worker's blocks (its ``X`` blocks are
    local; a ``y`` block persisted elsewhere is a few hundred kB to fetch) and returns every
    block's state in row order, merged here like the map-reduce would (same bits wherever
    a block is). A block whose worker left is recomputed by Dask where the task runs.
    """

    def __init__(self, client: Any, X: Any, y: Any):
        from distributed import futures_of, wait

        fx = {f.key: f for f in futures_of(X)}
        fy = {f.key: f for f in futures_of(y)}
        xs = [fx[row[0]] for row in X.__dask_keys__()]
        ys = [fy[k] for k in y.__dask_keys__()]
        wait(xs + ys)
        who = client.who_has(xs)
        self.client = client
        self.groups: dict[Any, list[tuple[int, Any, Any]]] = {}
        for i, (bx, by) in enumerate(zip(xs, ys)):
            holders = sorted(who.get(bx.key) or ())
            self.groups.setdefault(holders[0] if holders else None, []).append((i, bx, by))

    @staticmethod
    def usable(X: Any) -> bool:
        """Blocks of whole rows (one column chunk) held as futures: what :class:`LocalBlocks` groups."""
        return X.numblocks[1] == 1

    def reduce(self, reducer: Any) -> Any:
        """``reducer`` over every block (finalized), as :func:`daskscale.reduce.reduce` would give it."""
        futs = [self.client.submit(_block_states, reducer, [(bx, by) for _, bx, by in blocks],
                                   workers=None if w is None else [w], allow_other_workers=True, pure=False)
                for w, blocks in self.groups.items()]
        states: list[Any] = [None] * sum(len(b) for b in self.groups.values())
        for blocks, got in zip(self.groups.values(), self.client.gather(futs)):
            for (i, _, _), st in zip(blocks, got):
                states[i] = st
        return reducer.finalize(_fold_tree(reducer.merge, states))


def _read_laid(reader: Any, i: int, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, y = reader.read(i)
    return layout_block(X, ref), y


def _laid_arrays(data: Data, ref: np.ndarray, dtype: Any, reader: Any) -> tuple[Any, Any]:
    """The laid-out ``X`` and the target as dask arrays; with a ``reader``, each block is read
    by it in the task that lays it out (one read of ``X`` and ``y`` per block)."""
    if reader is None:
        return data.X.map_blocks(layout_block, ref, dtype=dtype), data.y
    import dask

    from daskscale.adapters.dask import array_from_tasks

    token = dask.base.tokenize(reader.path, data.row_chunks, ref, reader.block_key(0))
    pair, nx, ny = f"read-laid-{token}", f"laid-X-{token}", f"target-{token}"
    n = len(data.row_chunks)
    reads = {(pair, i): (_read_laid, reader, i, ref) for i in range(n)}
    Xl = array_from_tasks(nx, {**reads, **{(nx, i, 0): (operator.getitem, (pair, i), 0) for i in range(n)}}, [],
                          (data.row_chunks, (data.n_features,)), dtype)
    y = array_from_tasks(ny, {**reads, **{(ny, i): (operator.getitem, (pair, i), 1) for i in range(n)}}, [],
                         (data.row_chunks,), data.y.dtype)
    return Xl, y


def fit_blocks(data: Data, spec: Spec, *, persist: bool, client: Any,
               on_iter: Callable[[int, float, float], Any] | None = None, reader: Any = None) -> dict[str, Any]:
    """The fit as one map-reduce per evaluation over the blocks (persisted when ``persist``);
    ``reader`` reads a store's blocks (see :func:`_laid_arrays`)."""
    import dask

    ref = _reference(data.X[:1].compute())
    dtype = np.float32 if data.X.dtype == np.float32 else np.float64
    Xl, y = _laid_arrays(data, ref, dtype, reader)
    if persist:
        Xl, y = client.persist([Xl, y]) if client is not None else dask.persist(Xl, y)
    rs = _first_reducers(spec, moments=False)
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
    local = LocalBlocks(client, Xl, yc) if persist and client is not None and LocalBlocks.usable(Xl) else None

    def evaluate(v: np.ndarray) -> tuple[float, np.ndarray]:
        r = LossGradient(problem.kind, v, problem.mean, problem.scale, problem.n_out)
        return local.reduce(r) if local is not None else reduce(laid, [r])["loss_grad"]

    res = optimise(problem, evaluate, tol=spec.tol, max_iter=spec.max_iter, on_iter=on_iter)
    return _result(problem, res, classes)

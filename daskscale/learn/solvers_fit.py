"""Where an exact GLM fit runs: in one task where the data is, or one pass over the blocks per evaluation.

- :func:`fit_arrays` / :func:`fit_read` (small data): the whole fit (check, statistics, every
  L-BFGS evaluation) over one in-memory array, in the calling process when no client is
  active, or as ONE task on a worker (a store read there by the engine's reader): no
  scheduler round trip per evaluation.
- :func:`fit_blocks` (large data): every block read, laid out (:func:`layout_block`) and
  checked in one task, and, when the blocks fit, held on the workers; then, per evaluation,
  ONE task per worker over the blocks it holds (:class:`WorkerBlocks`). Out of core
  (``persist=False``) every evaluation reads the store again, a task per block: its cost is
  one read and decode of the store plus the products.

Both start with the same first pass: :class:`Finite` (NaN / inf, named by block and row) and
a sampled :class:`Gram` (the standardisation, and the correlations the preconditioner
uses: :func:`_first_reducers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from daskscale.errors import SchemaError
from daskscale.learn.prep import Labels
from daskscale.learn.solvers_kernels import Finite, Gram, LossGradient, encode_target, laid_dtype, layout_block, where_row
from daskscale.learn.solvers_optim import OptimResult, Problem, optimise
from daskscale.reduce import reduce, update
from daskscale.reduce.base import finalize_all, fold_states, map_all
from daskscale.storage.convert import Data, empty_aligned

__all__ = ["Spec", "fit_arrays", "fit_read", "fit_blocks", "raise_if_not_finite", "WorkerBlocks", "LazyBlocks", "SAMPLE_ROWS"]

#: rows of every block (in one task: spread over the array) that enter the standardisation and
#: the preconditioner's correlations (16k: 12 ms of Gram, where the exact Moments of 300k x 50
#: rows cost 80 ms of a 0.41 s one-task fit)
SAMPLE_ROWS = 16_384


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
    mean = G[:p, p] / max(m, 1.0)  # the sampled rows' (see _first_reducers)
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


def _first_reducers(spec: Spec) -> dict[str, Any]:
    """The first pass over blocks: values checked, the target described, the sample for the
    standardisation and the preconditioner (the first :data:`SAMPLE_ROWS` rows of every block).

    The standardisation (``mean``, ``scale``) only conditions the problem (the objective in
    original units is the same for any), so it is taken from the sampled rows:
    :class:`~daskscale.reduce.Moments` over every row cost 3/4 of the first pass (32 of 43 ms
    a 100k x 50 float32 block).
    """
    rs: dict[str, Any] = {"finite": Finite(), "gram": Gram(rows=SAMPLE_ROWS, with_y=False)}
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
    return _fit_laid(Xl, y, ref, spec, run, on_iter)


def fit_read(reader: Any, spec: Spec, run: str | None = None,
             on_iter: Callable[[int, float, float], Any] | None = None) -> dict[str, Any]:
    """:func:`fit_arrays` of a store's rows, read here block by block by the engine's ``reader``
    and laid out straight into one array (no dask task per chunk, no concatenated copy)."""
    X0, y0 = reader.read(0)
    ref = _reference(X0[0])
    n = reader.rows(reader.n_blocks - 1)[1]
    Xl = empty_aligned((n, X0.shape[1]), laid_dtype(X0.dtype))
    y = np.empty(n, dtype=np.asarray(y0).dtype)
    for i in range(reader.n_blocks):
        X, yb = (X0, y0) if i == 0 else reader.read(i)
        a, b = reader.rows(i)
        layout_block(X, ref, out=Xl[a:b])
        y[a:b] = np.asarray(yb).ravel()
    del X0, y0
    return _fit_laid(Xl, y, ref, spec, run, on_iter)


def _fit_laid(Xl: np.ndarray, y: np.ndarray, ref: np.ndarray, spec: Spec, run: str | None,
              on_iter: Callable[[int, float, float], Any] | None) -> dict[str, Any]:
    # the sample of one array: rows spread over all of it (a block's would be its first rows)
    sample = Xl[::max(1, len(Xl) // SAMPLE_ROWS)]
    stats = {"finite": Finite().map(Xl, y), "gram": Gram(with_y=False).map(sample)}
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


# --- blocks on the workers: the first pass fused with the read, then one task per worker per pass

def _laid_first(X: np.ndarray, y: np.ndarray, ref: np.ndarray, reducers: dict, own: bool = False) -> tuple:
    """A block laid out (in place when ``own``: see :func:`layout_block`), its raw target, and its
    first-pass state: one read of the block for all three."""
    Xl = layout_block(X, ref, own=own)
    return Xl, np.asarray(y).ravel(), map_all(reducers, Xl, y)


def _read_laid_first(reader: Any, i: int, ref: np.ndarray, reducers: dict) -> tuple:
    X, y = reader.read(i)  # a store's reader: arrays just decoded, this task's to overwrite
    return _laid_first(X, y, ref, reducers, own=True)


def _state_of(held: tuple) -> dict:
    return held[2]


def _encoded(held: tuple, classes: np.ndarray | None) -> np.ndarray:
    return encode_target(held[1], classes)


def _held_states(reducers: dict, blocks: list[tuple[tuple, np.ndarray]]) -> list[dict]:
    """The states of a worker's held blocks, in order (one task per worker and pass)."""
    return [map_all(reducers, held[0], yc) for held, yc in blocks]


def _read_states(reader: Any, i: int, ref: np.ndarray, classes: Any, encode: bool, reducers: dict) -> dict:
    """Block ``i`` read, laid out and mapped (a streamed pass: nothing is kept)."""
    X, y = reader.read(i)
    return map_all(reducers, layout_block(X, ref), encode_target(y, classes) if encode else y)


class WorkerBlocks:
    """Laid-out row blocks for a cluster's passes: held on the workers (``persist``), or read from
    the store on every pass (streamed, with a ``reader``).

    Held: each block is read (by the engine's ``reader`` for a store, else from the persisted
    dask blocks), laid out and mapped by the first pass in ONE task, and stays on its worker;
    every later pass is one task per worker over the blocks it holds (a map-reduce of a task
    per block cost 0.25 s of scheduling per evaluation at 40 blocks, more than the products).
    Streamed: one task per block and pass. Either way the block states are merged here in
    :func:`daskscale.reduce.reduce`'s tree order (:func:`~daskscale.reduce.base.fold_states`):
    the same bits wherever a block is. A block whose worker left is recomputed by Dask.
    """

    def __init__(self, client: Any, data: Data, ref: np.ndarray, *, persist: bool, reader: Any = None):
        self.client, self.data, self.ref, self.persist, self.reader = client, data, ref, persist, reader
        self.n = len(data.row_chunks)
        self.held: list[Any] = []
        self.groups: dict[Any, list[tuple[int, Any, Any]]] = {}
        self.classes: Any = None

    def first_pass(self, reducers: dict) -> dict[str, Any]:
        """The first pass's finalized results (and, when held, the blocks kept on the workers)."""
        c = self.client
        if not self.persist:
            futs = [c.submit(_read_states, self.reader, i, self.ref, None, False, reducers, pure=False)
                    for i in range(self.n)]
        else:
            if self.reader is not None:
                self.held = [c.submit(_read_laid_first, self.reader, i, self.ref, reducers, pure=False)
                             for i in range(self.n)]
            else:
                from distributed import futures_of

                X, y = c.persist([self.data.X.rechunk({1: -1}), self.data.y])
                fx, fy = {f.key: f for f in futures_of(X)}, {f.key: f for f in futures_of(y)}
                self.held = [c.submit(_laid_first, fx[kx[0]], fy[ky], self.ref, reducers, pure=False)
                             for kx, ky in zip(X.__dask_keys__(), y.__dask_keys__())]
                del X, y, fx, fy  # the raw blocks go once laid out
            futs = [c.submit(_state_of, h, pure=False) for h in self.held]
        return finalize_all(reducers, fold_states(reducers, c.gather(futs)))

    def encode(self, classes: np.ndarray | None) -> None:
        """The target encoded for the evaluations (on the worker of each held block)."""
        self.classes = classes
        if not self.persist:
            return
        c = self.client
        ycs = [c.submit(_encoded, h, classes, pure=False) for h in self.held]
        who = c.who_has(self.held)
        for i, (h, yc) in enumerate(zip(self.held, ycs)):
            holders = sorted(who.get(h.key) or ())
            self.groups.setdefault(holders[0] if holders else None, []).append((i, h, yc))

    def reduce(self, reducer: Any) -> Any:
        """``reducer`` over every block (finalized), as :func:`daskscale.reduce.reduce` would give it."""
        c, rs = self.client, {"r": reducer}
        if not self.persist:
            futs = [c.submit(_read_states, self.reader, i, self.ref, self.classes, True, rs, pure=False)
                    for i in range(self.n)]
            states = c.gather(futs)
        else:
            futs = [c.submit(_held_states, rs, [(h, yc) for _, h, yc in blocks], pure=False,
                             workers=None if w is None else [w], allow_other_workers=True)
                    for w, blocks in self.groups.items()]
            states = [None] * self.n
            for blocks, got in zip(self.groups.values(), c.gather(futs)):
                for (i, _, _), st in zip(blocks, got):
                    states[i] = st
        return reducer.finalize(fold_states(rs, states)["r"])

    def release(self) -> None:
        """The held blocks freed on the workers now (not when this object is collected)."""
        self.held, self.groups = [], {}


class LazyBlocks:
    """The same passes as :class:`WorkerBlocks` as one :func:`daskscale.reduce.reduce` each over
    laid-out dask arrays: without a cluster, or a dask input too big to hold and no store to read."""

    def __init__(self, data: Data, ref: np.ndarray, *, persist: bool):
        import dask

        self.persist = persist
        self.X = data.X.map_blocks(layout_block, ref, dtype=laid_dtype(data.X.dtype))
        self.y = data.y
        if persist:
            self.X, self.y = dask.persist(self.X, self.y)

    def first_pass(self, reducers: dict) -> dict[str, Any]:
        return reduce(Data(self.X, self.y), reducers)

    def encode(self, classes: np.ndarray | None) -> None:
        self.y = self.y.map_blocks(encode_target, classes, dtype=np.int32 if classes is not None else np.float64)
        if self.persist:
            self.y = self.y.persist()

    def reduce(self, reducer: Any) -> Any:
        return reduce(Data(self.X, self.y), [reducer])[reducer.name]

    def release(self) -> None:
        self.X = self.y = None


def fit_blocks(data: Data, spec: Spec, *, persist: bool, client: Any,
               on_iter: Callable[[int, float, float], Any] | None = None, reader: Any = None) -> dict[str, Any]:
    """The fit as one pass over the blocks per evaluation: held on the workers when ``persist``,
    else streamed (from the store by ``reader`` when given; see :class:`WorkerBlocks`)."""
    ref = _reference(data.X[:1].compute())
    if client is not None and (persist or reader is not None):
        blocks: WorkerBlocks | LazyBlocks = WorkerBlocks(client, data, ref, persist=persist, reader=reader)
    else:
        blocks = LazyBlocks(data, ref, persist=persist)
    stats = blocks.first_pass(_first_reducers(spec))
    if spec.check:
        raise_if_not_finite(stats["finite"], spec)
    classes = _classes(spec, stats.get("labels"))
    blocks.encode(classes)
    problem = _problem(spec, stats, ref, classes)

    def evaluate(v: np.ndarray) -> tuple[float, np.ndarray]:
        return blocks.reduce(LossGradient(problem.kind, v, problem.mean, problem.scale, problem.n_out))

    try:
        res = optimise(problem, evaluate, tol=spec.tol, max_iter=spec.max_iter, on_iter=on_iter)
    finally:
        blocks.release()
    return _result(problem, res, classes)

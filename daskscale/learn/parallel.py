"""Data parallelism by parameter averaging (local SGD): replicas on shards, merged every k blocks.

Each worker holds a shard of the row blocks and a replica of the model. A round is: every
replica runs the block loop (:func:`daskscale.engine.loop.run`, the one ``partial_fit`` loop of
daskscale, with its NaN policy and error messages) over its next ``merge_every`` blocks *on its
worker* (the blocks are read there; the data never moves to the client), then the replicas'
parameters are merged, weighted by the rows each one saw, and the merged model is the start
of every replica in the next round. The merge is a mergeable state (:class:`ModelAverage`),
the same ``map``/``merge``/``finalize`` shape as the reducers of :mod:`daskscale.reduce`.

Where the time goes, and what is done about it: each replica's next-round task takes the last
round's replica results as its input and merges them itself (a few microseconds for a linear
model), so a round costs one task per worker and one small transfer, not a merge task and two
hops. Shards are balanced by rows: blocks left over when the block count does not divide by the
workers are cut into row pieces, one per replica (:func:`shard_units`; the loop trains pieces).
A worker keeps the opened store and its heap between rounds, and reads its next round's first
block into its read-ahead slot (:data:`daskscale.engine.process.PROCESS`) while it waits for
the other replicas.

A worker lost during a round costs only that round's replica: its result is dropped from the
merge (or recomputed by Dask elsewhere), a :class:`ReplicaLostWarning` says so, and the fit goes
on with the workers that remain. Every wait has a timeout, so a stuck worker cannot hang a fit.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import dask
import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier

from daskscale.adapters.glibc import blocks_on_heap
from daskscale.engine.loop import TrainPlan, TrainState, block_of, run
from daskscale.engine.process import PROCESS
from daskscale.engine.source import HeldReader, Reader
from daskscale.errors import ClusterError, InputTypeError, SchemaError
from daskscale.learn.local import LOCAL_WORKER, LocalExecutor, executor, in_process
from daskscale.learn.predict import DelegatingPredictor, classes_of
from daskscale.learn.prep import check_nan_option, fit_source, kind_of
from daskscale.monitor import progress
from daskscale.reduce import Reducer
from daskscale.storage.convert import Data

__all__ = ["ParameterAveraging", "ModelAverage", "ReplicaLostWarning", "model_params", "set_model_params",
           "shard_units", "block_pairs"]


class ReplicaLostWarning(RuntimeWarning):
    """A replica's round was lost (worker died or timed out); the fit continued without it."""


def model_params(model: Any) -> list[np.ndarray]:
    """The arrays that parameter averaging merges (linear: coef/intercept; MLP: weights/biases)."""
    if hasattr(model, "coefs_"):
        return list(model.coefs_) + list(model.intercepts_)
    if hasattr(model, "coef_"):
        return [np.asarray(model.coef_), np.atleast_1d(np.asarray(model.intercept_, dtype=float))]
    raise InputTypeError(f"{type(model).__name__} has no coef_/coefs_: parameter averaging supports "
                         "SGD*, Perceptron, PassiveAggressive* and MLP* estimators")


def set_model_params(model: Any, params: Sequence[np.ndarray]) -> Any:
    """Write averaged ``params`` into ``model`` in place (MLP optimizers hold references to them)."""
    if hasattr(model, "coefs_"):
        n = len(model.coefs_)
        for dst, src in zip(list(model.coefs_) + list(model.intercepts_), params):
            dst[...] = src
        assert len(params) == 2 * n
    else:
        model.coef_ = np.array(params[0], dtype=np.asarray(model.coef_).dtype)
        model.intercept_ = np.array(params[1], dtype=float).reshape(np.shape(model.intercept_))
    return model


class ModelAverage(Reducer):
    """Mergeable state of replicas: rows-weighted sums of their parameters.

    ``map(model, n_rows)`` -> state; ``merge`` adds two states; ``finalize`` returns the
    weighted mean as a model (a copy of the first replica holding the averaged parameters).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDRegressor
    >>> a = SGDRegressor().partial_fit(np.ones((2, 1)), [1.0, 1.0])
    >>> b = SGDRegressor().partial_fit(np.ones((2, 1)), [1.0, 1.0])
    >>> a.coef_[:], b.coef_[:] = [1.0], [4.0]
    >>> avg = ModelAverage()
    >>> avg.finalize(avg.merge(avg.map(a, 1), avg.map(b, 2))).coef_.tolist()
    [3.0]
    """

    name = "model_average"

    def map(self, model: Any, y: Any = None) -> dict[str, Any]:
        w = float(1 if y is None else y)
        return {"model": model, "n": w, "sums": [w * np.asarray(p, dtype=float) for p in model_params(model)],
                "t": w * float(getattr(model, "t_", 0.0))}

    def merge(self, a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, Any] | None:
        if a is None or b is None:
            return a if b is None else b
        return {"model": a["model"], "n": a["n"] + b["n"], "sums": [x + y for x, y in zip(a["sums"], b["sums"])],
                "t": a["t"] + b["t"]}

    def finalize(self, state: dict[str, Any]) -> Any:
        model = copy.deepcopy(state["model"])
        n = max(state["n"], 1e-300)
        set_model_params(model, [s / n for s in state["sums"]])
        if hasattr(model, "t_"):
            model.t_ = state["t"] / n
        return model

    def empty(self, n_features: int) -> None:
        return None


def shard_units(order: Sequence[int], n_shards: int) -> list[list[Any]]:
    """Split blocks over ``n_shards`` so that each shard gets the same number of *rows*.

    Whole blocks are dealt out in ``order``; the ``len(order) % n_shards`` blocks left over at
    the end are each cut into ``n_shards`` row pieces, one per shard, so no shard waits at the
    end of an epoch for another one's extra block (with 11 blocks on 2 workers, 5.5 each instead
    of 6 and 5).

    Examples
    --------
    >>> shard_units([4, 2, 0, 1, 3], 2)
    [[4, 0, (3, 0, 2)], [2, 1, (3, 1, 2)]]
    >>> shard_units([0, 1, 2], 1)
    [[0, 1, 2]]
    """
    order = [int(i) for i in order]
    full = len(order) - len(order) % n_shards
    return [order[j:full:n_shards] + [(i, j, n_shards) for i in order[full:]] for j in range(n_shards)]


def block_pairs(X: Any, y: Any) -> list[Any]:
    """One delayed ``(X, y)`` per row block of the dask arrays ``X`` and ``y`` (read where it is computed)."""
    xb = X.to_delayed(optimize_graph=True)[:, 0]
    yb = y.to_delayed(optimize_graph=True)
    return [dask.delayed(_pair, pure=True)(a, b) for a, b in zip(xb, yb)]


def _pair(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(X), np.asarray(y)


class _ReadAhead(Reader):
    """``reader``, whose block ``first`` comes from this process's read-ahead slot when it holds it
    (``read`` takes a block index or a piece, as :class:`HeldReader`'s does)."""

    def __init__(self, reader: Reader, first: int):
        self.reader, self.first, self.bounds = reader, first, reader.bounds

    def read(self, i: Any) -> tuple[np.ndarray, np.ndarray | None]:
        i = block_of(i)
        if i != self.first:
            return self.reader.read(i)
        self.first = -1
        fut = PROCESS.take_ahead(self.reader.block_key(i))  # waits for it if still reading
        return fut.result() if fut is not None else self.reader.read(i)


def _replica(start: Any, reader: Reader, plan: TrainPlan) -> tuple[Any, int, int]:
    """Runs on a worker: one replica's round, the block loop over ``plan.train`` from ``start``.

    ``start`` is the initial model or the list of the last round's replica results
    ``(model, rows, rows before)``, merged right here (cheap, and the same on every worker), so
    a round needs no merge task and no hop between the replicas' results and the next round.
    The model trained is always a new object: the start objects live in the worker's memory,
    where the other replicas may still be fetching them. Returns ``(model, rows learned this
    round, rows merged into the start)``.
    """
    if isinstance(start, list):
        model, before = _merge_replicas(start), _rows_merged(start)
    else:
        model, before = copy.deepcopy(start), 0
    model, state, _ = run(model, reader, plan, TrainState(fitted=isinstance(start, list)))
    return model, state.rows_seen, before


def _read_and_train(start: Any, reader: Reader, plan: TrainPlan, ahead: int | None = None) -> tuple[Any, int, int]:
    """Runs on a worker: read this replica's blocks right here and train on them (:func:`_replica`).

    Reading inside the training task (rather than as separate read tasks) spares the worker a
    task and a 20 MB intermediate result per block. ``ahead`` is the block this worker trains
    first in the next round: it is read in the background once this round's training is done,
    while the worker would otherwise wait for the other replicas (the next round needs them all).
    """
    # sync: a DaskReader computes its block here, not via the cluster
    with dask.config.set(scheduler="sync"), blocks_on_heap(linger=_HEAP_LINGER):
        out = _replica(start, _ReadAhead(reader, block_of(plan.train[0])), plan)
    if ahead is not None:
        _read_ahead(reader, ahead)
    return out


#: seconds a worker keeps its block buffers on the heap after a round's task (see blocks_on_heap)
_HEAP_LINGER = 2.0


def _read_ahead(reader: Reader, i: int) -> None:
    """Start reading block ``i`` into this process's read-ahead slot (:data:`~daskscale.engine.process.PROCESS`)."""

    def read() -> tuple[np.ndarray, Any]:
        with dask.config.set(scheduler="sync"), blocks_on_heap(linger=_HEAP_LINGER):
            return reader.read(i)

    PROCESS.read_ahead(reader.block_key(i), read)


def _train_held(start: Any, held: dict[int, Any], bounds: Sequence[int], plan: TrainPlan) -> tuple[Any, int, int]:
    """Runs on a worker: train on blocks already in worker memory (``held[i]`` is block ``i``)."""
    return _replica(start, HeldReader(bounds, held), plan)


def _merge_replicas(results: list[tuple[Any, int, int]]) -> Any:
    avg = ModelAverage()
    state = None
    for model, n, _ in results:
        if n > 0:
            state = avg.merge(state, avg.map(model, n))
    return None if state is None else avg.finalize(state)


def _rows_merged(results: list[tuple[Any, int, int]]) -> int:
    """Rows learned by the model merged from ``results`` (every round before theirs included)."""
    return results[0][2] + sum(n for _, n, _ in results) if results else 0


@dataclass
class _Round:
    """One submitted round: each worker's units, its replicas, and what the round started from
    (the initial model, or the list of the previous round's replica futures)."""

    spec: list[tuple[str, list[Any]]]
    futs: list[Any]
    start: Any


class ParameterAveraging(DelegatingPredictor, MetaEstimatorMixin, BaseEstimator):
    """Data-parallel fit: one replica per worker, merged by rows-weighted parameter averaging.

    Parameters
    ----------
    estimator : sklearn estimator with ``partial_fit``
        SGDClassifier/Regressor, Perceptron, PassiveAggressive*, MLPClassifier/Regressor.
    epochs : int
        Passes over the data.
    merge_every : int or "auto"
        Blocks each replica learns between two merges (k). ``"auto"`` (default): one round per
        epoch for one replica (no merge: the mini-batch loop of ``Incremental``), else
        ``ceil(sqrt(blocks per replica))`` (18 blocks each: merges every 5 blocks). Each merge
        is a barrier where every replica waits for the slowest, and each round reads its first
        block without overlap; fewer, longer rounds cost less, while averaging replicas that
        drifted apart for longer costs accuracy. Measured in ``benchmarks/bench_incremental.py``
        (``DefaultCluster``) beside ``merge_every=1`` and ``Incremental``.
    batch_size : int or None
        Rows per ``partial_fit`` call, as everywhere in daskscale; default one call per block.
    chunk_rows : int or None
        Rows per block (re-cuts the input's row blocks); default the input's own blocks.
    n_replicas : int or None
        Replicas (one per worker); default every worker of the client.
    workers : list of str or None
        Worker addresses to use; default all.
    persist : bool or "auto"
        Keep the blocks in worker memory between epochs ("auto": for two epochs or more, when the
        data takes under half the cluster's memory); otherwise each round reads its blocks from
        the store inside its training task, overlapped with training.
    shuffle : bool
        Shuffle the block order each epoch.
    random_state : int or None
    timeout : float
        Seconds to wait for one round before dropping the replicas still running.
    callback : callable or None
        ``callback(round_index, fitted_model_future)`` after every merge.
    nan : "raise" or "skip"
        A NaN in a block: an error naming the block and row, or drop the rows (the NaN policy
        of :mod:`daskscale.learn.prep`).
    client : distributed.Client, "local" or None
        Default: the current client; with none, or ``"local"``, the replicas train one after
        the other in this process (:mod:`daskscale.learn.local`).

    ``predict`` answers NumPy for NumPy or pandas input and a lazy dask array for dask, xarray
    or store input; ``predict_proba`` and ``decision_function`` exist when the wrapped
    estimator has them.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> from daskscale.learn.parallel import ParameterAveraging
    >>> X = np.random.default_rng(0).normal(size=(400, 3)); y = (X[:, 0] > 0).astype(int)
    >>> pa = ParameterAveraging(SGDClassifier(random_state=0), epochs=2).fit(X, y)  # doctest: +SKIP
    >>> pa.score(X, y) > 0.9  # doctest: +SKIP
    True
    """

    def __init__(self, estimator: Any = None, *, epochs: int = 1, merge_every: int | str = "auto",
                 batch_size: int | None = None, chunk_rows: int | None = None, n_replicas: int | None = None,
                 workers: Sequence[str] | None = None, persist: bool | str = "auto", shuffle: bool = True,
                 random_state: int | None = None, timeout: float = 300.0,
                 callback: Callable[[int, Any], None] | None = None, nan: str = "raise", client: Any = None):
        self.estimator = estimator
        self.epochs = epochs
        self.merge_every = merge_every
        self.batch_size = batch_size
        self.chunk_rows = chunk_rows
        self.n_replicas = n_replicas
        self.workers = workers
        self.persist = persist
        self.shuffle = shuffle
        self.random_state = random_state
        self.timeout = timeout
        self.callback = callback
        self.nan = nan
        self.client = client

    # ------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any = None) -> "ParameterAveraging":
        """Fit replicas on shards of the row blocks of ``X`` (anything :func:`as_data` accepts)."""
        if self.estimator is None or not hasattr(self.estimator, "partial_fit"):
            raise InputTypeError(f"{type(self.estimator).__name__} has no partial_fit; parameter averaging "
                                 "needs an incremental estimator (e.g. SGDClassifier)")
        check_nan_option(self.nan)
        client = executor(self.client)
        with in_process(client):
            return self._fit(client, X, y)

    def _fit(self, client: Any, X: Any, y: Any) -> "ParameterAveraging":
        source = fit_source(self, X, y, classifier=is_classifier(self.estimator), chunk_rows=self.chunk_rows)
        data = source.data
        info = client.scheduler_info(n_workers=-1)["workers"]
        if isinstance(client, LocalExecutor):  # replicas one after the other, in this process
            workers = [LOCAL_WORKER] * int(self.n_replicas or 1)
        else:
            workers = list(self.workers or sorted(info))
        if not workers:
            raise ClusterError("the cluster has no workers: start some or connect to a running cluster")
        workers = workers[: self.n_replicas or len(workers)]
        classes = classes_of(data) if is_classifier(self.estimator) else None
        # one round of one replica: the block loop over its units, in order, no validation
        plan = TrainPlan(kind=kind_of(self.estimator), train=[], classes=None if classes is None else classes.tolist(),
                         epochs=1, batch_size=self.batch_size, shuffle=False, max_in_flight=1, nan=self.nan,
                         progressive=False, n_blocks=source.n_blocks, n_features=source.n_features)
        # NumPy or pandas input is already in memory: ship its blocks once, not with every round's task
        persist = source.kind == "memory" or isinstance(client, LocalExecutor) or self._should_persist(info, data)
        # persisted: each block read once, by its replica's worker, and kept there between epochs;
        # out of core: each round's training task reads its own blocks (zarr for a store path)
        pairs = block_pairs(data.X, data.y) if persist else None
        model = clone(self.estimator)
        if self.random_state is not None and "random_state" in model.get_params():
            model.set_params(random_state=self.random_state)
        self.rounds_, self.replicas_lost_ = 0, 0
        self._reported: set[str] = set()
        self._checked = time.perf_counter()
        cache: dict[int, Any] = {}
        t0 = time.perf_counter()
        todo = self._rounds(source.n_blocks, workers)
        current: Any = model  # the initial model, then the list of the last round's replica futures
        inflight: deque[_Round] = deque()
        bar = progress(total=len(todo), desc="parameter averaging", unit="round")
        while todo or inflight:
            if todo and len(inflight) < self.PIPELINE:
                # submitted ahead: the next round's reads and training queue behind this one, so
                # a worker never sits idle waiting for the client between rounds
                spec = todo.popleft()
                nxt = {w: block_of(u) for w, (u, *_) in (todo[0] if todo else [])}
                futs = [client.submit(_train_held, current, {block_of(u): self._block(client, pairs, u, w, cache)
                                                             for u in units},
                                      source.reader.bounds, replace(plan, train=units), workers=[w],
                                      allow_other_workers=True, pure=False)
                        if persist else
                        client.submit(_read_and_train, current, source.reader, replace(plan, train=units), nxt.get(w),
                                      workers=[w], allow_other_workers=True, pure=False)
                        for w, units in spec]
                inflight.append(_Round(spec, futs, current))
                current = futs
                continue
            done = inflight.popleft()
            ok = self._settle(client, done, last=not todo and not inflight)
            if len(ok) < len(done.futs):
                # lost or stuck replicas: keep the ones that finished and redo the rounds queued after it
                for later in inflight:
                    for f in later.futs:
                        f.cancel()
                todo.extendleft(reversed([r.spec for r in inflight]))
                inflight.clear()
                current = ok or done.start
            self.rounds_ += 1
            bar.update(1)
            if self.callback is not None:  # off the training path: a merge task only for the callback
                self.callback(self.rounds_, client.submit(_merge_replicas, ok, pure=False, priority=-1)
                              if ok else done.start)
        bar.close()
        results = client.gather(current) if isinstance(current, list) else []
        self.estimator_ = _merge_replicas(results) if results else copy.deepcopy(current)
        #: rows the final model learned from (rows dropped by nan="skip" and lost replicas' rows not counted)
        self.n_rows_seen_ = _rows_merged(results)
        self.fit_seconds_ = time.perf_counter() - t0
        self.n_replicas_ = len(workers)
        if classes is not None:
            self.classes_ = self.estimator_.classes_
        for f in cache.values():
            f.release()
        return self

    #: rounds in flight at once: one settling while the next is already queued on the workers
    PIPELINE = 2

    def _rounds(self, n_blocks: int, workers: list[str]) -> "deque[list[tuple[str, list[Any]]]]":
        """Every round of the fit, in order: per round, each worker's units (see :func:`shard_units`)."""
        rng = np.random.default_rng(self.random_state)
        out: deque[list[tuple[str, list[Any]]]] = deque()
        for _ in range(int(self.epochs)):
            order = rng.permutation(n_blocks) if self.shuffle else np.arange(n_blocks)
            shards = shard_units(order, min(len(workers), n_blocks))
            longest = max(len(s) for s in shards)
            k = self._merge_every(longest, len(shards))
            for start in range(0, longest, k):
                spec = [(w, s[start:start + k]) for w, s in zip(workers, shards)]
                out.append([(w, units) for w, units in spec if units])
        return out

    def _merge_every(self, blocks_per_replica: int, n_replicas: int) -> int:
        """``merge_every`` as a number of blocks (see the class notes for ``"auto"``)."""
        if self.merge_every == "auto":
            return blocks_per_replica if n_replicas == 1 else max(1, math.ceil(math.sqrt(blocks_per_replica)))
        if isinstance(self.merge_every, str) or int(self.merge_every) < 1:
            raise SchemaError(f"merge_every must be 'auto' or a number of blocks >= 1, not {self.merge_every!r}")
        return int(self.merge_every)

    def _should_persist(self, info: dict[str, Any], data: Data) -> bool:
        if self.persist != "auto":
            return bool(self.persist)
        if int(self.epochs) < 2:
            # read once either way: reading in the training task overlaps it with training (one
            # epoch of 4M rows on 2 workers: 1.40 s against 2.35 s persisted, bench_incremental)
            return False
        mem = sum(w.get("memory_limit", 0) or 0 for w in info.values())
        return mem == 0 or data.X.nbytes < 0.5 * mem

    @staticmethod
    def _block(client: Any, pairs: list[Any], unit: Any, worker: str, cache: dict[int, Any]) -> Any:
        i = block_of(unit)
        if i not in cache:
            # placed on the replica's worker: the block is read there and never shipped
            cache[i] = client.compute(pairs[i], workers=[worker], allow_other_workers=True)
        return cache[i]

    #: seconds between two checks that the fit's workers are still in the cluster
    MEMBERSHIP_EVERY = 1.0

    def _settle(self, client: Any, done: "_Round", last: bool) -> list[Any]:
        """Wait (with the timeout) for a round's replicas; warn about lost workers; the finished ones."""
        if isinstance(client, LocalExecutor):  # every replica has run, in this process
            return list(done.futs)
        from distributed import TimeoutError as DTimeout
        from distributed import wait
        from distributed.scheduler import KilledWorker

        try:
            wait(done.futs, timeout=self.timeout)
        except (DTimeout, TimeoutError):
            pass
        used = [w for w, _ in done.spec]
        for f in done.futs:
            if f.status == "error" and not isinstance(f.exception(), KilledWorker):
                f.result()  # the replica's own error (a bad block, a bad estimator): raised, not a lost worker
        ok = [f for f in done.futs if f.status == "finished"]
        lost = [w for f, w in zip(done.futs, used) if f.status != "finished"]
        # a worker that left the cluster since it was given a shard (even when its task was then
        # quietly rerun elsewhere) is reported once; asked of the scheduler after a loss, at the
        # last round and at most once a second otherwise (a round can take milliseconds)
        gone: set[str] = set()
        if lost or last or time.perf_counter() - self._checked > self.MEMBERSHIP_EVERY:
            self._checked = time.perf_counter()
            gone = set(used) - set(client.scheduler_info(n_workers=-1)["workers"]) - self._reported
        self._reported |= gone
        if lost or gone:
            self.replicas_lost_ += len(lost) or len(gone)
            warnings.warn(f"round {self.rounds_ + 1}: worker(s) {sorted(set(lost) | set(gone))} lost or timed "
                          f"out after {self.timeout:.0f} s; {len(ok)} of {len(done.futs)} replicas merged and the "
                          "fit continues on the remaining workers", ReplicaLostWarning, stacklevel=3)
            for f in done.futs:
                if f.status != "finished":
                    f.cancel()
        if not ok and not isinstance(done.start, list):
            raise ClusterError(f"round {self.rounds_ + 1}: no replica finished within {self.timeout} s")
        return ok

"""Hyper-parameter search across the cluster: successive halving and Hyperband.

Every candidate is a model trained incrementally on row blocks, by the block loop
(:func:`daskscale.engine.loop.run`: the one ``partial_fit`` loop, its NaN policy and its error
messages). In a rung, all surviving candidates train in parallel, each as a task on a worker
(round-robin), for their budget of blocks, then each is scored on a held-out set of blocks *on
its worker* (one score pooled over their rows, :func:`daskscale.engine.apply.score_state`); the
best ``1/eta`` go on to the next rung with ``eta`` times the budget, the rest are dropped. Models
move between rungs as futures (they stay on the workers); only scores reach the client.

Hyperband (Li et al. 2018) runs several successive-halving brackets that trade the number of
candidates against the budget each gets.

``dask_ml.model_selection.HyperbandSearchCV`` is not used: with the installed ``distributed`` it
fails with "Attempting to use an asynchronous Client in a synchronous context of
`dask.compute`" (``tests/learn/test_search.py`` shows it), and its design (an asyncio loop in
the client) is what breaks; this module is synchronous and uses only futures. Without a Dask
client (or with ``client="local"``) the candidates train one after the other in this process.

Input with fewer than two row blocks (NumPy, pandas) is cut into ``DEFAULT_BLOCKS`` blocks, or
blocks of ``chunk_rows`` rows. NaN in a block follows the policy of :mod:`daskscale.learn.prep`.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.model_selection import ParameterGrid, ParameterSampler

from daskscale.engine.apply import ScoreState, score_state
from daskscale.engine.loop import TrainPlan, TrainState, blocks, run
from daskscale.errors import InputTypeError, SchemaError
from daskscale.learn.local import executor, in_process
from daskscale.engine.source import HeldReader
from daskscale.learn.parallel import block_pairs
from daskscale.learn.predict import DelegatingPredictor, classes_of
from daskscale.learn.prep import check_nan_option, fit_source, kind_of

__all__ = ["SuccessiveHalvingSearch", "HyperbandSearch", "DEFAULT_BLOCKS"]

#: blocks an input of fewer than two row blocks is cut into (one of them held out at test_size=0.2)
DEFAULT_BLOCKS = 5


def _train(start: tuple[Any, int], held: dict[int, Any], bounds: Sequence[int], plan: TrainPlan) -> tuple[Any, int]:
    """Runs on a worker: one candidate's rung, the block loop over ``plan.train`` (blocks held on
    the worker). ``start`` and the result are ``(model, rows learned so far)``."""
    model, rows = start
    model, state, _ = run(model, HeldReader(bounds, held), plan, TrainState(fitted=rows > 0))
    return model, rows + state.rows_seen


def _score(trained: tuple[Any, int], held: dict[int, Any], bounds: Sequence[int], plan: TrainPlan) -> tuple[float, int]:
    """Runs on a worker: ``(score on the blocks plan.val pooled over their rows, rows learned)``."""
    model, rows = trained
    total = ScoreState(plan.kind)
    for _, X, y, _ in blocks(HeldReader(bounds, held), plan.val, plan):
        total = total + score_state(model, plan.kind, X, y)
    return total.value(), rows


class _Search(DelegatingPredictor, MetaEstimatorMixin, BaseEstimator):
    _fitted_model = "best_estimator_"  # predict, score, ... use the best candidate

    def fit(self, X: Any, y: Any = None) -> "_Search":
        """Search on ``X``, ``y`` (anything :func:`~daskscale.storage.convert.as_data` accepts)."""
        if self.estimator is None or not hasattr(self.estimator, "partial_fit"):
            raise InputTypeError(f"{type(self.estimator).__name__} has no partial_fit: the search trains "
                                 "candidates incrementally (e.g. SGDClassifier)")
        check_nan_option(self.nan)
        t0 = time.perf_counter()
        self._client = executor(self.client)
        with in_process(self._client):
            self._setup(X, y)
            self.history_, self.cv_results_, self.best_score_ = [], [], -np.inf
            self._search()
            self._finish(t0)
        return self

    def _setup(self, X: Any, y: Any) -> None:
        source = fit_source(self, X, y, classifier=is_classifier(self.estimator), chunk_rows=self.chunk_rows)
        data = source.data
        Xd, yd = data.X, data.y
        if Xd.numblocks[0] < 2:
            if data.n_rows < 2:
                raise SchemaError("X has 1 sample: the search needs >= 2 rows (one block held out for scoring)")
            Xd = Xd.rechunk({0: -(-data.n_rows // min(DEFAULT_BLOCKS, data.n_rows))})
            yd = yd.rechunk({0: Xd.chunks[0]})
        nb = Xd.numblocks[0]
        self._workers = sorted(self._client.scheduler_info(n_workers=-1)["workers"])
        rng = np.random.default_rng(self.random_state)
        order = rng.permutation(nb).tolist()
        n_val = max(1, int(round(nb * self.test_size)))
        # blocks are read once and kept on the workers for every rung
        self._held = dict(enumerate(self._client.compute(block_pairs(Xd, yd))))
        self._bounds = np.concatenate([[0], np.cumsum(Xd.chunks[0])]).astype(np.int64)
        self._train_blocks, self._val_blocks = order[n_val:], order[:n_val]
        classes = classes_of(data) if is_classifier(self.estimator) else None
        # one rung of one candidate: the block loop over its blocks, in order
        self._plan = TrainPlan(kind=kind_of(self.estimator), train=[], classes=None if classes is None else
                               classes.tolist(), epochs=1, shuffle=False, max_in_flight=1, nan=self.nan,
                               progressive=False, n_blocks=nb, n_features=data.n_features)
        self._rng = rng

    def _candidates(self, n: int) -> list[dict[str, Any]]:
        p = self.parameters
        grid = list(ParameterGrid(p)) if isinstance(p, (Mapping, list)) and all(
            isinstance(v, Sequence) for d in ([p] if isinstance(p, Mapping) else p) for v in d.values()) else None
        if grid is not None and len(grid) <= n:
            return grid
        return list(ParameterSampler(p, n, random_state=int(self._rng.integers(2**31))))

    def _halving(self, params: list[dict[str, Any]], budget: int, bracket: int) -> None:
        """One successive-halving bracket: ``budget`` blocks in the first rung, x eta per rung."""
        c = self._client
        models: list[Any] = [(clone(self.estimator).set_params(**p), 0) for p in params]
        alive = list(range(len(params)))
        used = [0] * len(params)
        ntr = len(self._train_blocks)
        val = replace(self._plan, val=self._val_blocks)
        val_held = {b: self._held[b] for b in self._val_blocks}
        rung = 0
        while alive:
            futs = {}
            for slot, i in enumerate(alive):
                train = [self._train_blocks[(used[i] + j) % ntr] for j in range(budget)]
                w = [self._workers[slot % len(self._workers)]]
                futs[i] = c.submit(_train, models[i], {b: self._held[b] for b in set(train)}, self._bounds,
                                   replace(self._plan, train=train), workers=w, allow_other_workers=True, pure=False)
                used[i] += budget
            scored = c.gather([c.submit(_score, futs[i], val_held, self._bounds, val, pure=False) for i in alive])
            scores = [s for s, _ in scored]
            for i, (s, rows) in zip(alive, scored):
                models[i] = futs[i]
                self.history_.append({"bracket": bracket, "rung": rung, "candidate": len(self.cv_results_) + i,
                                      "params": params[i], "blocks_seen": used[i], "rows_seen": rows, "score": s})
            keep = max(1, len(alive) // self.eta)
            if len(alive) == 1 or budget * self.eta > self.max_blocks:
                best = int(np.argmax(scores))
                self._consider(params[alive[best]], scores[best], models[alive[best]])
                break
            ranked = [alive[j] for j in np.argsort(scores)[::-1]]
            alive, budget, rung = ranked[:keep], budget * self.eta, rung + 1
        self.cv_results_.extend(params)

    def _consider(self, params: dict[str, Any], score: float, model: Any) -> None:
        if score > self.best_score_ or "_best_future" not in self.__dict__:
            self.best_score_, self.best_params_, self._best_future = score, params, model

    def _finish(self, t0: float) -> None:
        self.best_estimator_ = self._best_future.result()[0]
        self.fit_seconds_ = time.perf_counter() - t0
        for name in ("_held", "_bounds", "_train_blocks", "_val_blocks", "_plan", "_best_future", "_client", "_rng",
                     "_workers"):
            self.__dict__.pop(name, None)
        if is_classifier(self.estimator):
            self.classes_ = self.best_estimator_.classes_


class SuccessiveHalvingSearch(_Search):
    """Successive halving: ``n_candidates`` trained in parallel; each rung keeps the best ``1/eta``.

    Parameters
    ----------
    estimator : estimator with ``partial_fit``
    parameters : dict or list of dicts
        Lists (grid) or scipy distributions (sampled).
    n_candidates : int
    min_blocks : int
        Blocks each candidate learns in the first rung.
    max_blocks : int
        Budget cap of a rung (in blocks).
    eta : int
        Keep ``1/eta`` of the candidates per rung; the survivors get ``eta`` times the budget.
    test_size : float
        Fraction of the row blocks held out for scoring.
    chunk_rows : int or None
        Rows per block (re-cuts the input's row blocks); default the input's blocks (see the module
        docstring). Each candidate learns one ``partial_fit`` call per block.
    random_state : int or None
    nan : "raise" or "skip"
        NaN policy (:mod:`daskscale.learn.prep`): an error naming the block and row, or drop the rows.
    client : distributed.Client, "local" or None
        Default: the current client; with none, or ``"local"``, this process.

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> s = SuccessiveHalvingSearch(SGDClassifier(), {"alpha": [1e-5, 1e-4, 1e-3]})  # doctest: +SKIP
    >>> s.fit("store.zarr").best_params_  # doctest: +SKIP
    """

    def __init__(self, estimator: Any = None, parameters: Any = None, *, n_candidates: int = 8, min_blocks: int = 1,
                 max_blocks: int = 8, eta: int = 3, test_size: float = 0.2, chunk_rows: int | None = None,
                 random_state: int | None = None, nan: str = "raise", client: Any = None):
        self.estimator = estimator
        self.parameters = parameters
        self.n_candidates = n_candidates
        self.min_blocks = min_blocks
        self.max_blocks = max_blocks
        self.eta = eta
        self.test_size = test_size
        self.chunk_rows = chunk_rows
        self.random_state = random_state
        self.nan = nan
        self.client = client

    def _search(self) -> None:
        self._halving(self._candidates(self.n_candidates), max(1, int(self.min_blocks)), 0)


class HyperbandSearch(_Search):
    """Hyperband: successive-halving brackets from many-candidates/small-budget to few/large.

    ``max_blocks`` is the largest budget R (blocks) one candidate may get; with ``eta`` it fixes
    the brackets ``s = s_max..0``, each starting ``ceil((s_max+1)/(s+1) * eta**s)`` candidates
    at ``R * eta**-s`` blocks. The other parameters are those of :class:`SuccessiveHalvingSearch`.

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> h = HyperbandSearch(SGDClassifier(), {"alpha": [1e-5, 1e-4, 1e-3]}, max_blocks=9)  # doctest: +SKIP
    """

    def __init__(self, estimator: Any = None, parameters: Any = None, *, max_blocks: int = 9, eta: int = 3,
                 test_size: float = 0.2, chunk_rows: int | None = None, random_state: int | None = None,
                 nan: str = "raise", client: Any = None):
        self.estimator = estimator
        self.parameters = parameters
        self.max_blocks = max_blocks
        self.eta = eta
        self.test_size = test_size
        self.chunk_rows = chunk_rows
        self.random_state = random_state
        self.nan = nan
        self.client = client

    def _search(self) -> None:
        R, eta = int(self.max_blocks), int(self.eta)
        s_max = int(math.floor(math.log(R, eta) + 1e-9))
        for s in range(s_max, -1, -1):
            n = int(math.ceil((s_max + 1) / (s + 1) * eta ** s))
            self._halving(self._candidates(n), max(1, int(R * eta ** -s)), s_max - s)

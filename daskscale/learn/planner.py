"""Which strategy fits this data on this cluster, and why: ``plan(data, estimator, client)``.

The rules, in order (sizes from the store's metadata, memory from the scheduler):

1. wide data (``n_features >= wide_features``) and a linear model -> **model-parallel**
   (feature-sharded ADMM) when the features split across >= 2 workers;
2. data that fits comfortably in one worker (< 1/4 of its memory limit) and an estimator
   without ``partial_fit`` -> **in-memory** (fit on one worker);
3. an estimator with an exact distributed solver (LogisticRegression, Ridge, LinearRegression,
   PoissonRegressor) -> **data-parallel exact**;
4. an estimator with ``partial_fit`` -> **data-parallel** (parameter averaging) when the
   estimate below says it beats **incremental** (the mini-batch loop on one worker), else
   incremental: never a strategy slower than the one ``Incremental`` gives;
5. otherwise, if it fits one worker, in-memory; if not, bagging on block subsamples (ensemble).

The time estimate is measured: one block is fitted on a worker and timed, and the rows/s it
gives is scaled by the rows and epochs; for parameter averaging by the speed-up over
``Incremental`` and the fixed cost measured by ``benchmarks/bench_incremental.py``
(``DefaultCluster``: :data:`PARALLEL_SPEEDUP_2`, :data:`PARALLEL_FIXED_SECONDS`).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Any

import dask
import numpy as np
from sklearn.base import clone, is_classifier

from daskscale.engine.loop import Step
from daskscale.learn.prep import kind_of
from daskscale.storage.convert import Data, as_data

__all__ = ["plan", "Plan", "EXACT_ESTIMATORS"]

#: parameter averaging (defaults) on 2 workers against Incremental (one worker), one epoch of
#: SGDClassifier on 400k and 4M x 50 float32 rows in 100k-row blocks, the default cluster of a
#: 2-core machine (1.907 -> 1.40 s and 0.259 -> 0.189 s, medians; ``t_avg = t_inc / S + F``)
PARALLEL_SPEEDUP_2 = 1.36
#: ``F`` of the same fit: seconds averaging costs beyond its share of the rows (rounds, merges);
#: it came out at 0.00 +- 0.02 s, so small data is kept off it by the block count instead
PARALLEL_FIXED_SECONDS = 0.0

EXACT_ESTIMATORS = ("LogisticRegression", "Ridge", "LinearRegression", "PoissonRegressor")
LINEAR = EXACT_ESTIMATORS + ("SGDClassifier", "SGDRegressor", "Perceptron", "PassiveAggressiveClassifier",
                             "PassiveAggressiveRegressor", "RidgeClassifier")


@dataclass
class Plan:
    """The chosen strategy, the reasons, and a time estimate from measured throughput."""

    strategy: str
    reasons: list[str]
    estimated_seconds: float
    rows_per_second: float
    facts: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"strategy: {self.strategy}  (estimated {self.estimated_seconds:,.3g} s at "
                 f"{self.rows_per_second:,.0f} rows/s measured per worker)"]
        lines += [f"  - {r}" for r in self.reasons]
        lines += [f"  {k}: {v}" for k, v in self.facts.items()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
                       for k, v in self.facts.items())
        why = "".join(f"<li>{html.escape(r)}</li>" for r in self.reasons)
        return (f"<div><b>strategy: {html.escape(self.strategy)}</b> &mdash; estimated "
                f"{self.estimated_seconds:,.3g} s ({self.rows_per_second:,.0f} rows/s per worker, measured)"
                f"<ul>{why}</ul><table>{rows}</table></div>")


def _fmt(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def _measure(block: np.ndarray, y: np.ndarray, estimator: Any) -> float:
    """Runs on a worker: rows/s of one fit (or one step of the block loop) on block 0."""
    est = clone(estimator)
    t = time.perf_counter()
    if hasattr(est, "partial_fit"):
        step = Step(est, kind_of(est), classes=np.unique(y) if is_classifier(est) else None)
        step(block, y, where=f"block 0 (rows 0-{len(block)})")
    else:
        est.fit(block, y)
    return len(block) / max(time.perf_counter() - t, 1e-6)


def plan(data: Any, estimator: Any, client: Any = None, *, epochs: int = 1, wide_features: int = 1000,
         measure: bool = True) -> Plan:
    """Choose in-memory / incremental / data-parallel / model-parallel for ``estimator`` on ``data``.

    Parameters
    ----------
    data : anything :func:`as_data` accepts (a store path gives the on-disk size too)
    estimator : sklearn estimator
    client : distributed.Client or None
    epochs : int
        Passes the estimate assumes for iterative strategies.
    wide_features : int
        Feature count from which a linear model is split by features.
    measure : bool
        Time one block on a worker for the estimate (otherwise 1e5 rows/s is assumed).

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> p = plan("store.zarr", SGDClassifier())  # doctest: +SKIP
    >>> p.strategy  # doctest: +SKIP
    'data-parallel'
    """
    from distributed import get_client

    d = data if isinstance(data, Data) else as_data(data)
    client = client or get_client()
    workers = client.scheduler_info(n_workers=-1)["workers"]
    n_workers = max(1, len(workers))
    mem = [w.get("memory_limit", 0) or 0 for w in workers.values()]
    worker_mem = min(mem) if mem and min(mem) > 0 else 0
    in_memory = int(d.X.nbytes)
    on_disk = None
    if isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        from daskscale.storage import info

        on_disk = info(data).bytes_on_disk
    name = type(estimator).__name__
    linear = name in LINEAR
    fits_one = worker_mem == 0 or in_memory < worker_mem / 4
    incremental = hasattr(estimator, "partial_fit")
    reasons = [f"{d.n_rows:,} rows x {d.n_features:,} features = {_fmt(in_memory)} in memory"
               + (f", {_fmt(on_disk)} on disk" if on_disk else ""),
               f"{n_workers} worker(s), {_fmt(worker_mem) if worker_mem else 'unlimited'} memory each"]
    if linear and d.n_features >= wide_features and n_workers >= 2:
        strategy = "model-parallel"
        reasons.append(f"{d.n_features:,} features >= {wide_features:,} and {name} is linear: split the "
                       f"coefficients into {n_workers} feature shards (ADMM), exchanging per-row margins only")
    elif fits_one and not incremental and name not in EXACT_ESTIMATORS:
        strategy = "in-memory"
        reasons.append(f"the data takes under a quarter of one worker's memory and {name} has no partial_fit: "
                       "fit it on one worker in memory")
    elif name in EXACT_ESTIMATORS:
        strategy = "data-parallel-exact"
        reasons.append(f"{name} has an exact distributed solver: loss and gradient are one blockwise "
                       f"map-reduce per L-BFGS step over {n_workers} worker(s), same answer as in memory")
    elif incremental:
        strategy = "incremental"  # until the estimate below says parameter averaging is faster
    else:
        strategy = "in-memory" if fits_one else "ensemble"
    if strategy == "in-memory" and len(reasons) == 2:
        reasons.append("the data fits one worker: fit in memory")
    elif strategy == "ensemble":
        reasons.append(f"{name} has no partial_fit and the data does not fit one worker: bag members on "
                       "block subsamples, one per worker")
    rate = 1e5
    if measure and d.y is not None:
        n0 = min(d.row_chunks[0], 50_000)
        task = dask.delayed(_measure, pure=False)(d.X[:n0], d.y[:n0], estimator)
        rate = float(client.compute(task).result(timeout=120))
    if strategy == "incremental":
        strategy = _incremental_or_average(name, d, n_workers, epochs, rate, reasons)
    # an L-BFGS step costs about one partial_fit pass; ~30 steps is typical
    passes = epochs if strategy in ("data-parallel", "incremental") else (30 if strategy.endswith("exact") else 1)
    if strategy == "data-parallel":
        estimate = _averaging_seconds(d.n_rows * passes / rate, n_workers)
    else:
        parallel = n_workers if strategy not in ("incremental", "in-memory") else 1
        estimate = d.n_rows * passes / (rate * parallel)
    facts = {"rows": d.n_rows, "features": d.n_features, "bytes in memory": _fmt(in_memory),
             "bytes on disk": _fmt(on_disk) if on_disk else "n/a", "workers": n_workers,
             "memory per worker": _fmt(worker_mem) if worker_mem else "unlimited", "estimator": name,
             "passes assumed": passes, "measured rows/s per worker": f"{rate:,.0f}"}
    return Plan(strategy, reasons, float(estimate), rate, facts)


def _averaging_seconds(incremental_seconds: float, n_workers: int) -> float:
    """Parameter averaging's time from Incremental's, scaled by the measured speed-up (the gain of
    the second worker assumed for each further one) plus the measured fixed cost."""
    speedup = 1.0 + (n_workers - 1) * (PARALLEL_SPEEDUP_2 - 1.0)
    return incremental_seconds / max(speedup, 1e-9) + PARALLEL_FIXED_SECONDS


def _incremental_or_average(name: str, d: Any, n_workers: int, epochs: int, rate: float,
                            reasons: list[str]) -> str:
    """``"data-parallel"`` when its estimate beats Incremental's, else ``"incremental"``, with the reason."""
    alone = d.n_rows * epochs / rate
    together = _averaging_seconds(alone, n_workers)
    if n_workers >= 2 and d.X.numblocks[0] >= 2 * n_workers and together < alone:
        reasons.append(f"{name} has partial_fit and there are {n_workers} workers: one replica per worker on its "
                       f"shard of blocks, parameters averaged (estimated {together:,.3g} s against "
                       f"{alone:,.3g} s streaming through one worker)")
        return "data-parallel"
    why = "there is one worker" if n_workers < 2 else (
        f"averaging on {n_workers} workers would not be faster here (estimated {together:,.3g} s against "
        f"{alone:,.3g} s: too few blocks or rows to repay its rounds)")
    reasons.append(f"{name} has partial_fit: stream the blocks through one worker ({why})")
    return "incremental"

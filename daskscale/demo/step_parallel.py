"""Demo step: the data-parallel fit (parameter averaging), 1 replica against one per worker."""

from __future__ import annotations

from daskscale.demo.context import DemoContext

TITLE = "parallel: data-parallel fit, 1 replica vs one per worker"
#: alternating fits of each kind timed; the medians are compared (one fit is too noisy to quote)
REPEATS = 3
#: a median speed-up below this is within what a busy machine's noise can make: no claim
CLAIM_SPEEDUP = 1.2


def speed_claim(t1: float, tn: float, n_workers: int) -> str:
    """What the medians ``t1`` (1 replica) and ``tn`` (one per worker) support saying, no more.

    Examples
    --------
    >>> speed_claim(2.0, 1.0, 2)
    'data-parallel fit 2.00x faster on 2 workers'
    >>> speed_claim(1.0, 1.1, 2)
    'data-parallel fit: no speed-up on 2 workers (0.91x)'
    """
    ratio = t1 / tn
    if ratio >= CLAIM_SPEEDUP:
        return f"data-parallel fit {ratio:.2f}x faster on {n_workers} workers"
    if ratio > 1.0:
        return f"data-parallel fit: no clear speed-up on {n_workers} workers ({ratio:.2f}x, under {CLAIM_SPEEDUP}x)"
    return f"data-parallel fit: no speed-up on {n_workers} workers ({ratio:.2f}x)"


def run(ctx: DemoContext) -> list[str]:
    import numpy as np
    from sklearn.linear_model import SGDClassifier

    from daskscale.learn.parallel import ParameterAveraging
    from daskscale.learn.predict import score_blockwise
    from daskscale.reduce import Moments, reduce
    from daskscale.storage import layout, write_store
    from daskscale.storage.convert import as_data

    store = ctx.artifacts.get("store")
    if store is None:
        return ["skipped: no demo store (the data step did not run)"]
    data = as_data(store, require_y=True)
    # standardised once (SGD on raw, unequal scales averages poorly) into a training store of
    # its own, which each worker then reads with zarr, as a user's fit of a store would; the
    # last block is held out for scoring, and both fits see the same training blocks
    m = reduce(data, [Moments()])["moments"]
    X = ((data.X - m["mean"]) / m["std"]).astype("float32")
    cut = data.n_rows - data.row_chunks[-1] if data.X.numblocks[0] > 1 else data.n_rows
    test = as_data(X[cut:], data.y[cut:]) if cut < data.n_rows else as_data(X, data.y)
    train = write_store(ctx.path("parallel-train.zarr"), X[:cut], data.y[:cut], chunk_rows=data.row_chunks[0],
                        attrs=layout.make_attrs(target="y", classes=data.classes, n_rows=cut), overwrite=True)
    n_workers = len(ctx.client.scheduler_info(n_workers=-1)["workers"])

    def fit(n: int) -> ParameterAveraging:
        est = SGDClassifier(alpha=1e-4, average=True, random_state=0)
        return ParameterAveraging(est, epochs=1, n_replicas=n, merge_every=3, persist=False,
                                  random_state=0).fit(train)

    fit(1), fit(n_workers)  # untimed: the workers' imports and the store's metadata
    seconds: dict[int, list[float]] = {1: [], n_workers: []}
    fitted = {}
    for _ in range(REPEATS):
        for n in seconds:
            fitted[n] = fit(n)
            seconds[n].append(fitted[n].fit_seconds_)
    t1, t2 = float(np.median(seconds[1])), float(np.median(seconds[n_workers]))
    a1, a2 = (score_blockwise(fitted[n].estimator_, test) for n in (1, n_workers))
    rows = fitted[1].n_rows_seen_
    lines = [f"{speed_claim(t1, t2, n_workers)}, medians of {REPEATS} fits ({t2:.2f} s on {n_workers} workers, "
             f"{t1:.2f} s on 1); "
             f"held-out accuracy {a2:.4f} vs {a1:.4f}",
             f"1 replica: {rows / t1:,.0f} rows/s; {n_workers} replicas: {rows / t2:,.0f} rows/s (averaged SGD "
             "merged every 3 blocks; fits this short gain less than long ones: see benchmarks/bench_parallel.py)"]
    if t1 / t2 < CLAIM_SPEEDUP:
        lines.append("the workers share this machine's cores with whatever else runs on it; on a busy or "
                     "small machine parallel replicas cannot run faster")
    return lines

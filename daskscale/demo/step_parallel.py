"""Demo step: the data-parallel fit (parameter averaging, defaults) against the best one-worker
path, the mini-batch fit (``Incremental``), on the same store and cluster."""

from __future__ import annotations

from daskscale.demo.context import DemoContext

TITLE = "parallel: data-parallel fit on every worker vs the mini-batch fit on one"
#: alternating fits of each kind timed; the medians are compared (one fit is too noisy to quote)
REPEATS = 3
#: a median speed-up below this is within what a busy machine's noise can make: no claim
CLAIM_SPEEDUP = 1.2


def speed_claim(t1: float, tn: float, n_workers: int) -> str:
    """What the medians ``t1`` (the mini-batch fit, one worker) and ``tn`` (parameter averaging,
    one replica per worker) support saying, no more.

    Examples
    --------
    >>> speed_claim(2.0, 1.0, 2)
    'data-parallel fit on 2 workers 2.00x faster than the mini-batch fit on 1'
    >>> speed_claim(1.0, 1.1, 2)
    'data-parallel fit on 2 workers: no speed-up over the mini-batch fit on 1 (0.91x)'
    """
    ratio = t1 / tn
    head = f"data-parallel fit on {n_workers} workers"
    if ratio >= CLAIM_SPEEDUP:
        return f"{head} {ratio:.2f}x faster than the mini-batch fit on 1"
    if ratio > 1.0:
        return f"{head}: no clear speed-up over the mini-batch fit on 1 ({ratio:.2f}x, under {CLAIM_SPEEDUP}x)"
    return f"{head}: no speed-up over the mini-batch fit on 1 ({ratio:.2f}x)"


def run(ctx: DemoContext) -> list[str]:
    import numpy as np
    from sklearn.linear_model import SGDClassifier

    import time

    from daskscale.engine.apply import score_blockwise
    from daskscale.learn.incremental import Incremental
    from daskscale.learn.parallel import ParameterAveraging
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

    def fit(n: int) -> tuple[float, object]:
        """``n == 1``: the mini-batch fit (one task on one worker); else parameter averaging, defaults."""
        t = time.perf_counter()
        if n == 1:
            m = Incremental(SGDClassifier(random_state=0), validation_fraction=0, random_state=0,
                            progress=False).fit(train)
        else:
            m = ParameterAveraging(SGDClassifier(random_state=0), random_state=0).fit(train)
        return time.perf_counter() - t, m

    fit(1), fit(n_workers)  # untimed: the workers' imports and the store's metadata
    seconds: dict[int, list[float]] = {1: [], n_workers: []}
    fitted = {}
    for _ in range(REPEATS):
        for n in seconds:
            dt, fitted[n] = fit(n)
            seconds[n].append(dt)
    t1, t2 = float(np.median(seconds[1])), float(np.median(seconds[n_workers]))
    a1, a2 = (score_blockwise(fitted[n], test) for n in (1, n_workers))
    rows = cut
    lines = [f"{speed_claim(t1, t2, n_workers)}, medians of {REPEATS} fits "
             f"({t2:.2f} s vs {t1:.2f} s); held-out accuracy {a2:.4f} vs {a1:.4f}",
             f"mini-batch on 1 worker: {rows / t1:,.0f} rows/s; parameter averaging on {n_workers}: "
             f"{rows / t2:,.0f} rows/s (default settings; fits this short gain less than long ones: "
             "see benchmarks/bench_incremental.py)"]
    if t1 / t2 < CLAIM_SPEEDUP:
        lines.append("the workers share this machine's cores with whatever else runs on it; on a busy or "
                     "small machine parallel replicas cannot run faster")
    return lines

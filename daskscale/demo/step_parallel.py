"""Demo step: the data-parallel fit (parameter averaging), 1 replica against one per worker."""

from __future__ import annotations

from daskscale.demo.context import DemoContext

TITLE = "parallel: data-parallel fit, 1 replica vs one per worker"
#: alternating fits of each kind timed; the medians are compared (one fit is too noisy to quote)
REPEATS = 3


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
    return [f"data-parallel fit {t1 / t2:.2f}x faster on {n_workers} workers ({t2:.2f} s vs {t1:.2f} s, "
            f"medians of {REPEATS}), held-out accuracy {a2:.4f} vs {a1:.4f}",
            f"1 replica: {rows / t1:,.0f} rows/s; {n_workers} replicas: {rows / t2:,.0f} rows/s (averaged SGD "
            "merged every 3 blocks; fits this short gain less than long ones: see benchmarks/bench_parallel.py)"]

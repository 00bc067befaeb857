"""Demo step: the data-parallel fit (parameter averaging) against a single-replica incremental fit."""

from __future__ import annotations

from daskscale.demo.context import DemoContext

TITLE = "parallel: data-parallel fit, 1 replica vs one per worker"


def run(ctx: DemoContext) -> list[str]:
    from sklearn.linear_model import SGDClassifier

    from daskscale.learn.parallel import ParameterAveraging
    from daskscale.learn.predict import score_blockwise
    from daskscale.storage.convert import as_data

    store = ctx.artifacts.get("store")
    if store is None:
        return ["skipped: no demo store (the data step did not run)"]
    from daskscale.reduce import Moments, reduce

    data = as_data(store, require_y=True)
    # standardise on the fly with one Moments pass (SGD on raw, unequal scales averages poorly)
    m = reduce(data, [Moments()])["moments"]
    data = as_data(((data.X - m["mean"]) / m["std"]).astype("float32"), data.y)
    n_workers = len(ctx.client.scheduler_info(n_workers=-1)["workers"])
    # the last block is held out for scoring; both fits see the same training blocks
    nb = data.X.numblocks[0]
    train = as_data(data.X[: -data.row_chunks[-1]], data.y[: -data.row_chunks[-1]]) if nb > 1 else data
    test = as_data(data.X[-data.row_chunks[-1]:], data.y[-data.row_chunks[-1]:])
    runs = {}
    for label, n in (("1 replica (incremental)", 1), (f"{n_workers} replicas (averaged)", n_workers)):
        est = SGDClassifier(alpha=1e-4, random_state=0)
        pa = ParameterAveraging(est, epochs=1, n_replicas=n, persist=False, random_state=0).fit(train)
        runs[label] = (pa.fit_seconds_, score_blockwise(pa.estimator_, test), pa.n_rows_seen_)
    (l1, (t1, a1, rows)), (l2, (t2, a2, _)) = runs.items()
    return [f"data-parallel fit {t1 / t2:.2f}x faster on {n_workers} workers ({t2:.1f} s vs {t1:.1f} s), "
            f"held-out accuracy {a2:.4f} vs {a1:.4f}",
            f"{l1}: {t1:.1f} s, {rows / t1:,.0f} rows/s, accuracy {a1:.4f}",
            f"{l2}: {t2:.1f} s, {rows / t2:,.0f} rows/s, accuracy {a2:.4f}"]

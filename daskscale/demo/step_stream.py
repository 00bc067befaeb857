"""Demo step: test-then-train on the demo store replayed as a stream, and on a growing store."""

from __future__ import annotations

import threading
import time

from daskscale.demo.context import DemoContext

TITLE = "stream: prequential learning, drift"

REPLAY_BATCHES = 20
REPLAY_BATCH_ROWS = 10_000


def run(ctx: DemoContext) -> list[str]:
    from sklearn.linear_model import SGDClassifier

    from daskscale.datasets.stream import stream_to_store
    from daskscale.online import OnlineLearner, ReplaySource, StoreSource
    from daskscale.storage.append import close_stream

    store = ctx.artifacts.get("store")
    if store is None:  # the data step did not run: a small stream of our own
        store = stream_to_store(ctx.path("stream-replay.zarr"), 100_000, 20, batch_rows=10_000, overwrite=True)
    sgd = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=0.01, alpha=0.0, random_state=0)
    t = time.perf_counter()
    replay = OnlineLearner(sgd, drift_detector="ddm", reaction="retrain", run_id="demo-stream-replay").run(
        ReplaySource(store, batch_size=REPLAY_BATCH_ROWS), checkpoint=ctx.path("stream-replay.skops"),
        checkpoint_every=10, max_batches=REPLAY_BATCHES)
    replay_s = time.perf_counter() - t

    # a writer appends a drifting stream while the learner follows the store
    live = ctx.path("stream-live.zarr")
    stream_to_store(live, 5_000, 8, batch_rows=5_000, overwrite=True, close=False)

    def writer() -> None:
        from daskscale.datasets.stream import stream_batches
        from daskscale.storage.append import append_rows

        for X, y in stream_batches(150_000, 8, batch_rows=5_000, drift={"kind": "abrupt", "at": 0.5}, start=5_000):
            append_rows(live, X, y)
        close_stream(live)

    w = threading.Thread(target=writer, daemon=True)
    w.start()
    follow = OnlineLearner(sgd, drift_detector="ddm", reaction="retrain", run_id="demo-stream-live").run(
        StoreSource(live, follow=True, poll_interval=0.05, idle_timeout=30))
    w.join(30)
    s, f = replay.summary(), follow.summary()
    ctx.artifacts["stream_checkpoint"] = ctx.path("stream-replay.skops")
    events = ", ".join(str(e["position"]) for e in follow.events_) or "none"
    return [
        f"replayed {s['rows']:,} rows in {replay_s:.1f} s ({s['rows'] / replay_s:,.0f} rows/s), "
        f"prequential accuracy {s['cumulative_accuracy']:.3f}, latency p50 {s['latency_p50_s'] * 1e3:.0f} ms",
        f"growing store (writer thread appending, drift at row 75,000): {f['rows']:,} rows learned, "
        f"accuracy {f['cumulative_accuracy']:.3f}, drift events at rows {events}",
        "metrics published to the dashboard (topic 'daskscale-metrics'); checkpoint "
        f"{ctx.path('stream-replay.skops').name}",
    ]

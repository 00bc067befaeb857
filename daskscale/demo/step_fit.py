"""Demo step: mini-batch training of SGDClassifier on the demo store, inside a worker."""

from __future__ import annotations

from sklearn.linear_model import SGDClassifier

from daskscale.demo.context import DemoContext
from daskscale.learn.incremental import Incremental
from daskscale.models import save_model

TITLE = "fit: mini-batch SGD over Zarr blocks (bounded memory)"


def run(ctx: DemoContext) -> list[str]:
    store = ctx.artifacts["store"]
    inc = Incremental(SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0), epochs=2, scale=True,
                      validation_fraction=0.1, random_state=0, checkpoint=ctx.path("fit-checkpoints"),
                      checkpoint_every=20)
    inc.fit(store)
    path = save_model(inc, ctx.path("model.skops"), metadata={"strategy": "incremental", "store": str(store)})
    ctx.artifacts["model_path"] = path
    ctx.artifacts["model"] = inc
    h = inc.history_
    last = h.epochs[-1]
    return [
        f"held-out accuracy {last['score']:.3f} after {len(h)} epochs, {inc.rows_per_s_:,.0f} rows/s "
        f"(training inside one worker, reading Zarr blocks directly)",
        f"{sum(e['rows'] for e in h.epochs):,} rows trained, {len(h.blocks)} block steps, model saved to {path.name}",
    ]

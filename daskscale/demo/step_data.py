"""Demo step: generate a dataset block by block on the workers, and ingest a real CSV."""

from __future__ import annotations

from daskscale.datasets.real import real_dataset_path
from daskscale.datasets.recipes import RECIPES, make_recipe
from daskscale.demo.context import DemoContext
from daskscale.monitor import progress
from daskscale.storage import info, ingest

TITLE = "data: generate + ingest to Zarr"


def run(ctx: DemoContext) -> list[str]:
    _, kwargs = RECIPES["demo"]
    rows = ctx.rows or kwargs["n_rows"]
    # fewer rows than the recipe: smaller chunks, so the later steps still have blocks to split
    # (held-out blocks, one shard per worker): at least 12 of them, as in the recipe
    chunk_rows = min(kwargs["chunk_rows"], max(1_000, -(-rows // 12)))
    with progress(total=2, desc="writing stores", unit="store") as bar:
        store = make_recipe("demo", ctx.path("demo.zarr"), n_rows=rows, chunk_rows=chunk_rows)
        bar.update()
        csv, target = real_dataset_path("breast_cancer")
        real = ingest(csv, ctx.path("breast_cancer.zarr"), target=target)
        bar.update()
    ctx.artifacts["store"] = store
    ctx.artifacts["real_store"] = real
    i, r = info(store), info(real)
    return [
        f"{i.n_rows:,} rows x {i.n_features} features, {i.n_chunks} chunks, "
        f"{i.bytes_in_memory / 2**20:,.0f} MiB in memory, {i.compression_ratio:.2f}x compressed",
        f"real data: {csv.name} -> {r.n_rows} rows x {r.n_features} features, classes {r.classes}",
    ]

"""Demo step: describe the demo store in one fused pass (map-reduce)."""

from __future__ import annotations

import time

from daskscale.demo.context import DemoContext
from daskscale.reduce.describe import describe
from daskscale.storage import info

TITLE = "map-reduce: describe in one pass"


def run(ctx: DemoContext) -> list[str]:
    store = ctx.artifacts.get("store")
    if store is None:
        return ["skipped: no demo store (the data step did not run)"]
    t0 = time.perf_counter()
    table = describe(store, correlation=True, progress=True, output="frame")
    dt = time.perf_counter() - t0
    extras = table.attrs["daskscale"]
    gb = info(store).bytes_in_memory / 1e9
    corr = extras["correlation"].abs().to_numpy().copy()
    corr[range(len(corr)), range(len(corr))] = 0
    i, j = divmod(int(corr.argmax()), corr.shape[1])
    names = list(table.index)
    head = table.iloc[:3][["mean", "std", "min", "50%", "max", "skew"]]
    lines = [f"{len(table.columns)} statistics x {len(table)} columns of {extras['n_rows']:,} rows "
             f"in {dt:.1f} s ({gb / dt:.2f} GB/s, each chunk read once)"]
    lines += head.to_string(float_format=lambda v: f"{v:.3g}").splitlines()
    lines.append(f"classes: {extras.get('classes')}; most correlated pair: {names[i]} ~ {names[j]} "
                 f"(r = {extras['correlation'].iloc[i, j]:.2f})")
    return lines

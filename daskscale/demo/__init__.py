"""``daskscale demo``: every strategy, end to end, on a generated dataset.

Each step is a module ``daskscale.demo.step_<name>`` with a ``TITLE`` and a
``run(ctx) -> list[str]`` that returns its report lines; steps share a :class:`DemoContext`.
A step whose module is absent is skipped, so each capability adds its own step.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import tempfile
import time
from pathlib import Path

from daskscale.demo.context import DemoContext

__all__ = ["run_demo", "STEPS", "DemoContext"]

STEPS = ["data", "describe", "fit", "parallel", "stream", "compress", "transfer"]


def _module(step: str) -> str:
    return f"daskscale.demo.step_{step}"


def run_demo(*, rows: int | None = None, workdir: str | None = None, keep: bool = False,
             steps: list[str] | None = None, n_workers: int | None = None,
             memory_limit: str | int | None = None, echo=print) -> DemoContext:
    """Run the demo steps on an embedded local cluster and print a report."""
    from daskscale.cluster import connect

    chosen = [s for s in (steps or STEPS) if importlib.util.find_spec(_module(s)) is not None]
    wd = Path(workdir or tempfile.mkdtemp(prefix="daskscale-demo-"))
    wd.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    echo("daskscale demo: " + " -> ".join(chosen))
    with connect(n_workers=n_workers, memory_limit=memory_limit, quiet=True) as conn:
        d = conn.describe()
        echo(f"cluster: {d['n_workers']} local worker processes, {d['threads']} threads, "
             f"{d['memory_limit_per_worker'][0] / 2**30:.1f} GiB each")
        echo(f"dashboard: {conn.dashboard_link}   (open it to watch the tasks)")
        ctx = DemoContext(client=conn.client, workdir=wd, rows=rows, echo=echo)
        report: list[tuple[str, float, list[str]]] = []
        for step in chosen:
            mod = importlib.import_module(_module(step))
            echo(f"\n== {mod.TITLE} ==")
            s0 = time.perf_counter()
            lines = mod.run(ctx)
            dt = time.perf_counter() - s0
            for line in lines:
                echo("   " + line)
            report.append((mod.TITLE, dt, lines))
    total = time.perf_counter() - t0
    echo("\n== report ==")
    for title, dt, lines in report:
        echo(f"  {title:<40} {dt:7.1f} s   {lines[0] if lines else ''}")
    echo(f"  {'total':<40} {total:7.1f} s")
    if keep or workdir:
        echo(f"work directory kept: {wd}")
    else:
        shutil.rmtree(wd, ignore_errors=True)
    ctx.total_seconds = total
    return ctx

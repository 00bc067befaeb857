"""``daskscale demo``: the whole pipeline end to end on the embedded local cluster."""

from __future__ import annotations

import click


@click.command()
@click.option("--rows", type=int, default=None, help="Rows of the generated dataset (default: the demo recipe).")
@click.option("--workdir", default=None, help="Where to write stores and models (default: a temp dir).")
@click.option("--keep", is_flag=True, help="Keep the work directory.")
@click.option("--steps", default=None, help="Comma-separated subset of steps to run.")
def demo(rows: int | None, workdir: str | None, keep: bool, steps: str | None) -> None:
    """Generate data, ingest, describe, train, stream, compress and transfer; print a report."""
    from daskscale.demo import run_demo

    run_demo(rows=rows, workdir=workdir, keep=keep, steps=steps.split(",") if steps else None)

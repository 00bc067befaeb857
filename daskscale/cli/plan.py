"""``daskscale plan STORE --model NAME``: which strategy fits this data on this cluster, and why."""

from __future__ import annotations

import json

import click

from daskscale.cli.options import cluster_options, open_cluster


@click.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--model", "model_name", default="sgd-classifier", show_default=True,
              help="Estimator name as in `daskscale fit --model` (e.g. sgd-classifier, mlp-classifier).")
@click.option("--epochs", type=int, default=1, show_default=True, help="Passes the time estimate assumes.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@cluster_options
def plan(store: str, model_name: str, epochs: int, as_json: bool, scheduler: str | None, workers: int | None,
         memory_limit: str | None) -> None:
    """Choose in-memory, incremental, data-parallel or model-parallel training for STORE, and say why."""
    from daskscale.learn.planner import plan as _plan

    from daskscale.learn.estimators import make_estimator

    est = make_estimator(model_name)
    with open_cluster(scheduler, workers, memory_limit, quiet=True) as conn:
        result = _plan(store, est, conn.client, epochs=epochs)
    if as_json:
        click.echo(json.dumps({"strategy": result.strategy, "reasons": result.reasons,
                               "estimated_seconds": result.estimated_seconds,
                               "rows_per_second": result.rows_per_second,
                               "facts": {k: str(v) for k, v in result.facts.items()}}, indent=2))
    else:
        click.echo(str(result))

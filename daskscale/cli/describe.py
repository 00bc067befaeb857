"""``daskscale describe STORE``: one-pass statistics of every column, with a progress bar."""

from __future__ import annotations

import json

import click

from daskscale.cli.options import cluster_options, open_cluster


@click.command()
@click.argument("store")
@click.option("--quantiles", default="0.25,0.5,0.75", show_default=True,
              help="Comma-separated quantiles (KLL sketch); empty for none.")
@click.option("--bins", default=None, help="Histogram bins per column (an int, or 'auto').")
@click.option("--correlation", is_flag=True, help="Also the correlation matrix.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@cluster_options
def describe(store: str, quantiles: str, bins: str | None, correlation: bool, as_json: bool,
             scheduler: str | None, workers: int | None, memory_limit: str | None) -> None:
    """Count, missing, mean, std, min, quantiles, max, skew, kurtosis of every column of STORE."""
    from daskscale.reduce.describe import describe as run

    qs = [float(q) for q in quantiles.split(",") if q.strip()] or None
    with open_cluster(scheduler, workers, memory_limit, quiet=True):
        table = run(store, quantiles=qs, bins=bins if bins in (None, "auto") else int(bins),
                    correlation=correlation, progress=not as_json, output="frame")
    extras = table.attrs.get("daskscale", {})
    if as_json:
        out = {"n_rows": extras.get("n_rows"), "statistics": json.loads(table.to_json(orient="index", double_precision=15))}
        if "classes" in extras:
            out["classes"] = {str(k): v for k, v in extras["classes"].items()}
        if "correlation" in extras:
            out["correlation"] = json.loads(extras["correlation"].to_json(orient="index", double_precision=15))
        if "histogram" in extras:
            out["histogram"] = {k: v.tolist() for k, v in extras["histogram"].items()}
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"{extras.get('n_rows', 0):,} rows")
    click.echo(table.to_string(float_format=lambda v: f"{v:.4g}"))
    if "classes" in extras:
        click.echo("classes: " + ", ".join(f"{k}: {v:,}" for k, v in extras["classes"].items()))
    if "correlation" in extras:
        click.echo("correlation:\n" + extras["correlation"].to_string(float_format=lambda v: f"{v:.2f}"))

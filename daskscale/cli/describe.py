"""``daskscale describe STORE``: one-pass statistics of every column, with a progress bar."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from daskscale.cli.options import cluster_options, open_cluster


class Bins(click.ParamType):
    """``--bins``: a positive int, or ``auto``."""

    name = "bins"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            k = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number of bins nor 'auto' (e.g. --bins 20)", param, ctx)
        if k < 1:
            self.fail(f"{k} bins: give at least 1 (or 'auto')", param, ctx)
        return k


class Quantiles(click.ParamType):
    """``--quantiles``: comma-separated numbers in [0, 1]; empty for none."""

    name = "quantiles"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[float] | None:
        if value is None or isinstance(value, list):
            return value
        out = []
        for item in (s.strip() for s in str(value).split(",")):
            if not item:
                continue
            try:
                q = float(item)
            except ValueError:
                self.fail(f"{item!r} is not a number (give quantiles in [0, 1], e.g. 0.25,0.5,0.75)", param, ctx)
            if not (math.isfinite(q) and 0.0 <= q <= 1.0):
                self.fail(f"{item} is outside [0, 1] (give quantiles as fractions, e.g. 0.5 for the median)",
                          param, ctx)
            out.append(q)
        return out or None


class OneLineCommand(click.Command):
    """A command whose bad arguments end in one line on stderr (no usage block)."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            err = click.ClickException(f"daskscale {info_name}: {exc.format_message()}")
            err.exit_code = exc.exit_code
            raise err from None


@click.command(cls=OneLineCommand)
@click.argument("store")
@click.option("--quantiles", type=Quantiles(), default="0.25,0.5,0.75", show_default=True,
              help="Comma-separated quantiles in [0, 1] (KLL sketch); empty for none.")
@click.option("--bins", type=Bins(), default=None,
              help="Histogram bins per column (a positive int, or 'auto'); ranges from the finite values.")
@click.option("--correlation", is_flag=True, help="Also the correlation matrix.")
@click.option("--json", "as_json", is_flag=True,
              help="Machine-readable output (NaN and +-inf values are null; "
                   "n_posinf, n_neginf and missing count them).")
@cluster_options
def describe(store: str, quantiles: list[float] | None, bins: int | str | None, correlation: bool, as_json: bool,
             scheduler: str | None, workers: int | None, memory_limit: str | None) -> None:
    """Count, missing, mean, std, min, quantiles, max, skew, kurtosis and +inf/-inf counts of
    every column of STORE."""
    from daskscale.reduce.describe import describe as run

    with open_cluster(scheduler, workers, memory_limit, quiet=True):
        # a bar only where someone watches it (a terminal), never inside --json output
        table = run(store, quantiles=quantiles, bins=bins, correlation=correlation,
                    progress=False if as_json else None, output="frame")
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

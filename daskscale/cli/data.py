"""``daskscale ingest``, ``info`` and ``make-dataset``."""

from __future__ import annotations

import json
import sys
import warnings

import click

from daskscale.cli.options import cluster_options, open_cluster


@click.command()
@click.argument("source")
@click.argument("store")
@click.option("--target", default=None, help="Target column / variable.")
@click.option("--y", "y_path", default=None, help="Target .npy file (for .npy sources).")
@click.option("--chunk-mb", type=click.FloatRange(min=0, min_open=True), default=64, show_default=True, help="Uncompressed MiB per chunk.")
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None, help="Rows per chunk (overrides --chunk-mb).")
@click.option("--categorical", type=click.Choice(["error", "encode"]), default="error", show_default=True,
              help="Reject non-numeric feature columns, or encode them as ordinal codes.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="dtype of X in the store; float32 warns about columns it rounds too coarsely.")
@click.option("--on-short-rows", type=click.Choice(["error", "fill"]), default="error", show_default=True,
              help="CSV rows with fewer fields than the header: an error, or filled with NaN.")
@click.option("--overwrite", is_flag=True, help="Replace an existing store.")
@cluster_options
def ingest(source: str, store: str, target: str | None, y_path: str | None, chunk_mb: float,
           chunk_rows: int | None, categorical: str, dtype: str, on_short_rows: str, overwrite: bool,
           scheduler: str | None, workers: int | None, memory_limit: str | None) -> None:
    """Ingest SOURCE (CSV, Parquet, .npy, NetCDF, Zarr) into a daskscale STORE."""
    from daskscale.storage import info as store_info
    from daskscale.storage import ingest as do_ingest
    from daskscale.errors import DaskscaleWarning

    with open_cluster(scheduler, workers, memory_limit), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DaskscaleWarning)
        path = do_ingest(source, store, target=target, y=y_path, chunk_mb=chunk_mb, chunk_rows=chunk_rows,
                         categorical=categorical, overwrite=overwrite, dtype=dtype, on_short_rows=on_short_rows)
    for w in caught:  # daskscale's own warnings as one line each; any other as Python shows it
        if issubclass(w.category, DaskscaleWarning):
            click.echo(f"daskscale: warning: {w.message}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    click.echo(str(store_info(path)))


@click.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True,
              help="Decode every chunk and check its size; print each bad one and exit 1 if any.")
def info(store: str, as_json: bool, check: bool) -> None:
    """Shape, chunks, dtypes, size on disk and in memory, compression ratio of STORE."""
    from daskscale.storage import info as store_info

    if check:
        from daskscale.storage.chunks import check_store
        from daskscale.storage.store import open_dataset

        problems = check_store(store)
        for problem in problems:
            click.echo(str(problem))
        if problems:
            sys.exit(1)
        n = sum(len(v.data.chunks[0]) for v in open_dataset(store).data_vars.values())
        click.echo(f"ok: {n} chunks verified")
        return
    i = store_info(store)
    click.echo(json.dumps(i.as_dict(), indent=2, default=str) if as_json else str(i))


@click.command("make-dataset")
@click.argument("store")
@click.option("--recipe", default=None, help="A named recipe (daskscale.datasets.recipes).")
@click.option("--kind", type=click.Choice(["classification", "regression"]), default="classification")
@click.option("--rows", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--features", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--classes", type=click.IntRange(min=2), default=2, show_default=True)
@click.option("--chunk-rows", type=click.IntRange(min=1), default=None)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--drift", type=click.Choice(["abrupt", "gradual"]), default=None)
@click.option("--overwrite", is_flag=True)
@cluster_options
def make_dataset(store: str, recipe: str | None, kind: str, rows: int, features: int, classes: int,
                 chunk_rows: int | None, seed: int, drift: str | None, overwrite: bool,
                 scheduler: str | None, workers: int | None, memory_limit: str | None) -> None:
    """Generate a synthetic dataset into STORE, block by block."""
    from daskscale import datasets
    from daskscale.datasets.recipes import make_recipe
    from daskscale.storage import info as store_info

    with open_cluster(scheduler, workers, memory_limit):
        if recipe:
            path = make_recipe(recipe, store, overwrite=overwrite)
        elif kind == "classification":
            path = datasets.make_classification(rows, features, n_classes=classes, chunk_rows=chunk_rows,
                                                seed=seed, drift=drift, store=store, overwrite=overwrite)
        else:
            path = datasets.make_regression(rows, features, chunk_rows=chunk_rows, seed=seed, drift=drift,
                                            store=store, overwrite=overwrite)
    click.echo(str(store_info(path)))

"""``daskscale compress``: prune and/or quantize a saved model, report the trade-off."""

from __future__ import annotations

import click

from daskscale.cli.options import cluster_options, open_cluster


@click.command()
@click.argument("model_path", metavar="MODEL")
@click.option("--prune", "sparsity", type=float, default=0.0, show_default=True,
              help="Fraction of weights set to zero by magnitude, in [0, 1).")
@click.option("--scope", type=click.Choice(["global", "layer"]), default="global", show_default=True)
@click.option("--keep-units", type=float, default=None, help="MLP: fraction of hidden units kept.")
@click.option("--quantize", type=click.Choice(["float32", "float16", "int8"]), default="int8", show_default=True)
@click.option("--per-tensor", is_flag=True, help="int8 with one scale per tensor (default: per output channel).")
@click.option("--eval", "eval_store", required=True, help="Held-out store to score on.")
@click.option("--fine-tune", "train_store", default=None,
              help="Store to fine-tune on while pruning in steps (mask fixed between steps).")
@click.option("--epochs", type=int, default=1, show_default=True, help="Fine-tuning passes over the store.")
@click.option("--out", default=None, help="Write the compressed model here (safe model format).")
@click.option("--sweep", is_flag=True, help="Also measure the default sweep of settings.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@cluster_options
def compress(model_path: str, sparsity: float, scope: str, keep_units: float | None, quantize: str,
             per_tensor: bool, eval_store: str, train_store: str | None, epochs: int, out: str | None,
             sweep: bool, as_json: bool, scheduler: str | None, workers: int | None,
             memory_limit: str | None) -> None:
    """Compress MODEL and print size, sparsity, held-out score and speed per setting."""
    from daskscale.compress import compress as do_compress
    from daskscale.compress import prune_gradually, save_compressed
    from daskscale.compress.report import DEFAULT_SWEEP, report, setting_name
    from daskscale.compress.unwrap import plain_model
    from daskscale.models import load_model

    model = plain_model(load_model(model_path))  # whatever strategy fitted it: the model it trained
    chosen = {"sparsity": sparsity, "quantize": quantize, "per_channel": not per_tensor, "scope": scope,
              "keep_units": keep_units, "fine_tune": bool(train_store and sparsity)}
    settings = (DEFAULT_SWEEP if sweep else []) + [chosen]
    with open_cluster(scheduler, workers, memory_limit, quiet=True):
        rep = report(model, eval_store, settings, train_data=train_store, fine_tune_epochs=epochs)
        if out:
            m = model
            if chosen["fine_tune"]:
                m, _ = prune_gradually(model, sparsity, train_store, epochs=epochs, scope=scope)
            c = do_compress(m, sparsity=sparsity, scope=scope, keep_units=keep_units, quantize=quantize,
                            per_channel=not per_tensor)
            save_compressed(c, out, metadata={"compressed_from": str(model_path), "setting": setting_name(chosen)})
    if as_json:
        click.echo(rep.to_json())
    else:
        click.echo(str(rep))
        if out:
            click.echo(f"wrote {out}")

"""``daskscale transfer``: fine-tune a pre-trained model on a target store; learning curves."""

from __future__ import annotations

import json

import click

from daskscale.cli.options import cluster_options, open_cluster


@click.command()
@click.argument("pretrained")
@click.argument("target_store")
@click.option("--test", "test_store", default=None, help="Held-out store (default: the last 20% of TARGET_STORE).")
@click.option("--rows", type=int, default=None, help="Fine-tune on only the first N target rows.")
@click.option("--learning-rate", type=float, default=1e-3, show_default=True)
@click.option("--epochs", type=int, default=20, show_default=True)
@click.option("--min-steps", type=int, default=300, show_default=True, help="At least this many partial_fit steps.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--freeze", is_flag=True, help="Keep the hidden layers fixed (train the output layer only).")
@click.option("--new-classes", is_flag=True, help="The target has new classes (store attrs): fresh output layer.")
@click.option("--curve", is_flag=True, help="Also measure the learning curve with and without transfer.")
@click.option("--sizes", default="25,50,100,200,400", show_default=True, help="Target rows for --curve.")
@click.option("--out", default=None, help="Write the fine-tuned model here (safe model format).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@cluster_options
def transfer(pretrained: str, target_store: str, test_store: str | None, rows: int | None, learning_rate: float,
             epochs: int, min_steps: int, batch_size: int, freeze: bool, new_classes: bool, curve: bool, sizes: str,
             out: str | None, as_json: bool, scheduler: str | None, workers: int | None,
             memory_limit: str | None) -> None:
    """Fine-tune PRETRAINED (a zoo name or model file) on TARGET_STORE and report its score."""
    from daskscale.errors import SchemaError
    from daskscale.models import save_model
    from daskscale.storage import store_attrs
    from daskscale.transfer import fine_tune, learning_curve, score, train_from_scratch
    from daskscale.transfer.finetune import split_holdout
    from daskscale.transfer.zoo import resolve_pretrained

    try:
        curve_sizes = [int(v) for v in sizes.split(",")]
    except ValueError:
        raise click.BadParameter(f"{sizes!r} is not a comma-separated list of row counts, e.g. 25,50,100",
                                 param_hint="--sizes") from None
    pre = resolve_pretrained(pretrained)
    classes = store_attrs(target_store).get("classes") if new_classes else None
    if new_classes and not classes:
        raise SchemaError(f"{target_store} records no classes; --new-classes needs them in the store attrs")
    if test_store:
        train, test = target_store, test_store
    else:
        train, test = split_holdout(target_store)
    kw = dict(learning_rate=learning_rate, epochs=epochs, min_steps=min_steps, batch_size=batch_size)
    result: dict = {"pretrained": pre.name, "target": target_store, "rows": rows, "freeze": freeze}
    with open_cluster(scheduler, workers, memory_limit, quiet=True):
        model = fine_tune(pre, train, rows=rows, freeze=freeze, new_classes=classes, **kw)
        result["score"] = score(model, test)
        result["scratch_score"] = score(train_from_scratch(pre, train, rows=rows, classes=classes, **kw), test)
        if not new_classes:
            result["zero_shot"] = score(pre.model, test)
        lc = None
        if curve:
            lc = learning_curve(pre, train, test=test, sizes=curve_sizes, freeze=freeze,
                                new_classes=classes, **kw)
            result["curve"] = lc.as_dict()
    if out:
        save_model(model, out, metadata={"fine_tuned_from": pre.name, "target": target_store, "rows": rows,
                                         "score": result["score"], "features": pre.metadata.get("features"),
                                         "classes": [c.item() if hasattr(c, "item") else c for c in
                                                     getattr(model, "classes_", [])]})
        result["out"] = out
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    click.echo(f"fine-tuned {pre.name} on {rows or 'all'} rows of {target_store}: held-out score "
               f"{result['score']:.4f} (from scratch on the same rows {result['scratch_score']:.4f}"
               + (f", pre-trained without fine-tuning {result['zero_shot']:.4f})" if "zero_shot" in result else ")"))
    if lc is not None:
        click.echo(str(lc))
    if out:
        click.echo(f"wrote {out}")

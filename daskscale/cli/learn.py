"""``daskscale fit``, ``evaluate`` and ``predict``: thin wrappers over :mod:`daskscale.learn`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from daskscale.cli.options import cluster_options, open_cluster
from daskscale.errors import OptionError

STRATEGIES = ["incremental", "average", "exact", "feature-sharded", "ovr", "ensemble", "auto"]


def _params(pairs: tuple[str, ...], hint: str = "--param") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=hint)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@click.command()
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--model", "model_name", default="sgd-classifier", show_default=True,
              help="sgd-classifier, sgd-regressor, mlp-classifier, mlp-regressor, multinomial-nb, bernoulli-nb, "
                   "perceptron, passive-aggressive, minibatch-kmeans, incremental-pca")
@click.option("--param", "params", multiple=True, help="Estimator parameter KEY=VALUE (JSON value), repeatable.")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="incremental", show_default=True)
@click.option("--option", "options", multiple=True,
              help="Option of a non-incremental strategy's trainer KEY=VALUE (JSON value), repeatable: e.g. "
                   "merge_every=3 for average, n_estimators=8 for ensemble.")
@click.option("--epochs", type=int, default=5, show_default=True)
@click.option("--batch-size", type=int, default=None, help="Rows per partial_fit call (default: one block).")
@click.option("--scale/--no-scale", default=True, show_default=True, help="Standardise features on the fly.")
@click.option("--validation-fraction", type=float, default=0.1, show_default=True)
@click.option("--patience", type=int, default=None, help="Early stopping: epochs without improvement.")
@click.option("--checkpoint", type=click.Path(file_okay=False), default=None, help="Checkpoint directory.")
@click.option("--checkpoint-every", type=int, default=10, show_default=True, help="Blocks between checkpoints.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --checkpoint.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="Model file to write.")
@cluster_options
def fit(store: str, model_name: str, params: tuple[str, ...], strategy: str, options: tuple[str, ...],
        epochs: int, batch_size: int | None,
        scale: bool, validation_fraction: float, patience: int | None, checkpoint: str | None,
        checkpoint_every: int, resume: bool, seed: int, out: str, scheduler: str | None, workers: int | None,
        memory_limit: str | None) -> None:
    """Train a model on STORE and save it to --out (a safe model file)."""
    from daskscale.learn.estimators import make_estimator
    from daskscale.models import save_model

    est = make_estimator(model_name, random_state=seed, **_params(params))
    if resume and not checkpoint:
        raise click.UsageError("--resume needs --checkpoint DIR")
    ctx = click.get_current_context()
    given = [f"--{name.replace('_', '-')}" for name in ("scale", "validation_fraction", "patience", "checkpoint",
                                                         "checkpoint_every", "resume")
             if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
    if strategy != "incremental" and given:
        raise click.UsageError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to --strategy incremental "
                               f"only, not {strategy}")
    if strategy == "incremental" and options:
        raise click.UsageError("--option is for the other strategies' trainers; --strategy incremental takes "
                               "its own options (--batch-size, --scale, --patience, ...)")
    with open_cluster(scheduler, workers, memory_limit, quiet=True):
        if strategy == "incremental":
            from daskscale.learn.incremental import Incremental

            model = Incremental(est, epochs=epochs, batch_size=batch_size, scale=scale, random_state=seed,
                                validation_fraction=validation_fraction, patience=patience,
                                checkpoint=checkpoint, checkpoint_every=checkpoint_every)
            resume_from = Path(checkpoint) if resume and checkpoint else None
            if resume_from is not None and not (resume_from / "checkpoint.skops").exists():
                click.echo(f"no checkpoint in {resume_from}: starting from scratch", err=True)
                resume_from = None
            model.fit(store, resume=resume_from)
            hist = model.history_
            last = hist.epochs[-1] if hist.epochs else {}
            meta = {"strategy": strategy, "model": model_name, "epochs": len(hist), "score": last.get("score"),
                    "rows_per_s": model.rows_per_s_, "store": str(store)}
            click.echo(f"trained {model_name} for {len(hist)} epoch(s): validation score {last.get('score')}, "
                       f"{model.rows_per_s_ or 0:,.0f} rows/s")
        else:
            from daskscale.learn.strategies import make_trainer

            try:
                model = make_trainer(strategy, est, epochs=epochs, batch_size=batch_size, random_state=seed,
                                     **_params(options, "--option"))
            except OptionError as exc:  # an option the trainer does not take, by name
                raise click.BadParameter(str(exc), param_hint="--option")
            t = time.perf_counter()
            model.fit(store)
            seconds = getattr(model, "fit_seconds_", time.perf_counter() - t)  # the trainer's own, when it keeps one
            meta = {"strategy": strategy, "model": model_name, "store": str(store), "seconds": seconds}
            detail = ""
            if hasattr(model, "n_replicas_"):
                meta.update(replicas=model.n_replicas_, rounds=model.rounds_, rows_seen=model.n_rows_seen_)
                detail = (f": {model.n_replicas_} replica(s), {model.rounds_} round(s), {model.n_rows_seen_:,} rows "
                          f"in {seconds:.1f} s ({model.n_rows_seen_ / seconds:,.0f} rows/s)")
            click.echo(f"trained {model_name} with strategy {strategy}{detail}")
    save_model(model, out, metadata=meta)
    click.echo(f"model written to {out}")


def _check_features(model: Any, model_path: str, store: str) -> None:
    """Refuse, in one line, a store whose feature count is not the model's (before any work)."""
    from daskscale.errors import SchemaError
    from daskscale.storage import info

    expected, got = getattr(model, "n_features_in_", None), info(store).n_features
    if expected is not None and got != expected:
        raise SchemaError(f"{store} has {got} feature(s) but the model in {model_path} was fitted on {expected}: "
                          "use a store with the same feature columns")


@click.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@cluster_options
def evaluate(model_path: str, store: str, as_json: bool, scheduler: str | None, workers: int | None,
             memory_limit: str | None) -> None:
    """Score the model in MODEL_PATH on the rows of STORE, block by block."""
    from daskscale.learn.evaluate import evaluate as _evaluate
    from daskscale.models import load_model

    model = load_model(model_path)
    _check_features(model, model_path, store)
    with open_cluster(scheduler, workers, memory_limit, quiet=True):
        metrics = _evaluate(model, store)
    if as_json:
        click.echo(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            click.echo(f"{k:<10} {v:.4f}" if isinstance(v, float) else f"{k:<10} {v}")


@click.command()
@click.argument("model_path", type=click.Path(exists=True, dir_okay=False))
@click.argument("store", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", type=click.Path(), required=True, help="Zarr group to write the predictions to.")
@click.option("--overwrite", is_flag=True)
@cluster_options
def predict(model_path: str, store: str, out: str, overwrite: bool, scheduler: str | None, workers: int | None,
            memory_limit: str | None) -> None:
    """Predict every row of STORE blockwise and write a Zarr group to --out (atomically)."""
    from daskscale.learn.evaluate import predict_to_store
    from daskscale.models import load_model

    model = load_model(model_path)
    _check_features(model, model_path, store)
    with open_cluster(scheduler, workers, memory_limit, quiet=True):
        path = predict_to_store(model, store, out, overwrite=overwrite)
    click.echo(f"predictions written to {path}")

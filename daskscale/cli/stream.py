"""``daskscale stream``: prequential learning on a store, a folder of arriving files or a growing CSV file."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import click

from daskscale.cli.options import cluster_options, open_cluster

CHECKPOINT_FILE = "learner.skops"

#: models of counts or binary indicators: scaled (negative) features are not theirs to learn
COUNT_MODELS = frozenset({"multinomial-nb", "bernoulli-nb"})


def build_estimator(name: str, seed: int = 0) -> Any:
    """The estimator called ``name`` (``daskscale.learn.estimators`` names)."""
    from daskscale.learn.estimators import make_estimator

    return make_estimator(name, random_state=seed)


def preprocess_for(model: str, preprocess: str | None) -> str | None:
    """The learner's ``preprocess=`` for ``--model`` and ``--preprocess`` (``None``: the model's default).

    Online standard scaling for every model but the naive Bayes ones of counts, which take
    the features as they come; asking to scale for those is refused (scaled features are
    negative, which ``MultinomialNB`` rejects and ``BernoulliNB`` would binarise at 0).
    """
    if preprocess is None:
        preprocess = "none" if model in COUNT_MODELS else "standard"
    if preprocess == "standard" and model in COUNT_MODELS:
        raise click.BadParameter(f"{model} learns counts or indicators, not scaled features: use --preprocess none",
                                 param_hint="--preprocess")
    return None if preprocess == "none" else preprocess


def _features(scaling: str | None, text_columns: list[str]) -> Any:
    """The learner's ``preprocess=``: the scaling asked for, and one online one-hot step per text column."""
    if not text_columns:
        return scaling
    from daskscale.online import Features, OnlineOneHot, OnlineStandardScaler

    return Features(scaler=None if scaling is None else OnlineStandardScaler(),
                    onehot=[OnlineOneHot() for _ in text_columns])


def _line(rec: dict[str, Any], rows: int) -> str:
    acc = rec.get("accuracy")
    parts = [f"batch {rec['batch']:>5}", f"rows {rows:>10,}"]
    if acc is not None:
        parts += [f"acc {acc:.3f}", f"rolling {rec['rolling_accuracy']:.3f}", f"cumulative {rec['cumulative_accuracy']:.3f}"]
    else:
        parts += ["(first batch: trained, not scored)"] if rec["batch"] == 0 else []
    parts.append(f"latency {rec['latency_s'] * 1e3:.1f} ms")
    return "  ".join(parts)


@click.command()
@click.option("--source", required=True, type=click.Path(exists=True),
              help="A daskscale store, a folder of files, or a .csv file (rows appended to it are read with --follow).")
@click.option("--model", default="sgd-classifier", show_default=True, help="Estimator name (needs partial_fit).")
@click.option("--preprocess", type=click.Choice(["standard", "none"]), default=None,
              help="Online feature scaling before the model [default: standard; none for multinomial-nb and "
                   "bernoulli-nb]. A resumed checkpoint keeps its own.")
@click.option("--checkpoint", "checkpoint_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the checkpoint; resumes from it if one is there.")
@click.option("--follow", is_flag=True, help="Keep waiting for new rows / files until the writer closes the stream "
                                             "(a .csv file: until --idle-timeout, or Ctrl-C).")
@click.option("--batch-size", type=int, default=None,
              help="Rows per batch (stores: default one chunk; a .csv file: at most, default 32).")
@click.option("--max-latency", type=float, default=0.05, show_default=True,
              help="A .csv file: seconds at most a row read waits for its batch to fill.")
@click.option("--categorical", default="", help="A .csv file: comma-separated text columns, one-hot encoded online.")
@click.option("--on-bad-rows", type=click.Choice(["error", "skip"]), default="error", show_default=True,
              help="A .csv file: stop at a malformed row (naming its line and column), or skip it with a warning.")
@click.option("--on-rotate", type=click.Choice(["error", "restart"]), default="error", show_default=True,
              help="A .csv file that is truncated or replaced: stop, or read it again from its start.")
@click.option("--drift", "detector", type=click.Choice(["ddm", "page-hinkley", "adwin", "none"]), default="ddm",
              show_default=True)
@click.option("--reaction", type=click.Choice(["reset", "retrain", "background", "none"]), default="retrain",
              show_default=True)
@click.option("--rate", type=float, default=None, help="Replay a complete store at this many rows/s.")
@click.option("--target", default="y", show_default=True, help="Label column of arriving files or of a .csv file.")
@click.option("--settle-seconds", type=float, default=2.0, show_default=True,
              help="A file not modified for this long is complete (folders).")
@click.option("--idle-timeout", type=float, default=None, help="With --follow: stop after this long without data.")
@click.option("--checkpoint-every", type=int, default=1, show_default=True, help="Batches between checkpoints.")
@click.option("--max-batches", type=int, default=None, help="Stop after this many batches.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--dashboard/--no-dashboard", default=True, show_default=True,
              help="Publish metrics to a Dask scheduler (a local one unless --scheduler).")
@cluster_options
def stream(source: str, model: str, preprocess: str | None, checkpoint_dir: str, follow: bool, batch_size: int | None,
           max_latency: float, categorical: str, on_bad_rows: str, on_rotate: str, detector: str, reaction: str,
           rate: float | None, target: str, settle_seconds: float, idle_timeout: float | None,
           checkpoint_every: int, max_batches: int | None, seed: int, dashboard: bool, scheduler: str | None,
           workers: int | None, memory_limit: str | None) -> None:
    """Learn from a stream test-then-train; print live metrics; Ctrl-C stops with a checkpoint."""
    from daskscale.online import DirectorySource, OnlineLearner, ReplaySource, StoreSource
    from daskscale.online.csv_tail import CsvTailSource
    from daskscale.online.events import DEFAULT_MAX_BATCH
    from daskscale.storage.store import is_store

    ckpt = Path(checkpoint_dir) / CHECKPOINT_FILE
    scaling = preprocess_for(model, preprocess)
    text_columns = [c.strip() for c in categorical.split(",") if c.strip()]
    if is_store(source):
        src = (ReplaySource(source, batch_size=batch_size, rate=rate) if rate and not follow else
               StoreSource(source, batch_size=batch_size, follow=follow, idle_timeout=idle_timeout))
    elif Path(source).is_file():
        src = CsvTailSource(source, target=target, categorical=text_columns, follow=follow,
                            max_batch=batch_size or DEFAULT_MAX_BATCH, max_latency=max_latency,
                            idle_timeout=idle_timeout, on_bad_rows=on_bad_rows, on_rotate=on_rotate)
    else:
        src = DirectorySource(source, target=target, follow=follow, settle_seconds=settle_seconds,
                              idle_timeout=idle_timeout)
    conn = open_cluster(scheduler, workers or 1, memory_limit, quiet=True) if dashboard or scheduler else None
    with conn if conn is not None else contextlib.nullcontext():
        if conn is not None and conn.dashboard_link:
            click.echo(f"dashboard: {conn.dashboard_link}  (metrics topic 'daskscale-metrics')")
        if ckpt.exists():
            learner = OnlineLearner.load(ckpt)
            click.echo(f"resuming from {ckpt}: {learner.n_batches_} batches, {learner.n_rows_:,} rows learned")
        else:
            learner = OnlineLearner(build_estimator(model, seed), preprocess=_features(scaling, text_columns),
                                    drift_detector=None if detector == "none" else detector,
                                    reaction=None if reaction == "none" else reaction, publish=conn is not None)
        learner.publish = conn is not None
        events = len(learner.events_)

        def show(rec: dict[str, Any]) -> None:
            nonlocal events
            click.echo(_line(rec, learner.n_rows_))
            for ev in learner.events_[events:]:
                click.echo(f"DRIFT at {ev['where']} (batch {ev['batch']}, detector {ev['detector']}): "
                           f"reaction {ev['reaction']}")
            events = len(learner.events_)

        learner.run(src, checkpoint=ckpt, checkpoint_every=checkpoint_every, max_batches=max_batches, callback=show)
        s = learner.summary()
        stopped = " (stopped by Ctrl-C)" if learner.stopped else ""
        click.echo(f"done{stopped}: {s['batches']} batches, {s['rows']:,} rows, "
                   f"cumulative accuracy {s.get('cumulative_accuracy', float('nan')):.4f}, "
                   f"{s['drift_events']} drift events, {s['skipped_batches']} skipped; "
                   f"latency p50 {s['latency_p50_s'] * 1e3:.1f} ms p95 {s['latency_p95_s'] * 1e3:.1f} ms; "
                   f"checkpoint {ckpt}")

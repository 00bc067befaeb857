"""``Incremental``: train any ``partial_fit`` estimator on data larger than memory.

Where training runs (design choice): for a daskscale store on a distributed cluster, the
whole loop runs as *one task on a worker* that reads the store's chunks itself with zarr
(:class:`~daskscale.engine.source.ZarrReader`), with a prefetch thread. No block crosses the
network or is serialised, the scheduler sees one long task, and memory stays at about
``interleave + max(max_in_flight, interleave)`` blocks whatever the data size. Metrics go from that task to
the scheduler's event log; the client shows them in a progress bar. NumPy/pandas inputs
train on the client (they are already there); dask inputs train on the client, computing one
block at a time. ``where="client"`` forces client-side training (the store is then read by
the client process).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.exceptions import NotFittedError as _SklearnNotFitted
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data

from daskscale.errors import NotFittedError, SchemaError
from daskscale.engine.apply import apply_blockwise, in_memory, kind_of, score_blockwise
from daskscale.engine.loop import CHECKPOINT_FILE, Hooks, TrainPlan, TrainState, run
from daskscale.engine.prefetch import split_blocks
from daskscale.engine.source import Source
from daskscale.learn.history import History
from daskscale.learn.prep import Labels, require_partial_fit
from daskscale.monitor import METRICS_TOPIC, MetricsPublisher, advance_to, current_client, progress
from daskscale.reduce import Moments, reduce
from daskscale.reduce.base import states_of_blocks, finalize_all

__all__ = ["Incremental", "load_checkpoint"]


class IncrementalNotFittedError(NotFittedError, _SklearnNotFitted):
    """Raised before fit; also scikit-learn's NotFittedError, which its checks expect."""


def _has(name: str):
    return lambda self: hasattr(getattr(self, "estimator_", None) or self.estimator, name)


def load_checkpoint(path: str | os.PathLike) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """``(estimator, plan, state)`` of a checkpoint file or of a checkpoint directory."""
    from daskscale.models import load_model, read_metadata

    p = Path(path)
    p = p / CHECKPOINT_FILE if p.is_dir() else p
    if not p.exists():
        raise FileNotFoundError(f"{p}: no checkpoint to resume from")
    meta = read_metadata(p)
    if not meta.get("daskscale_checkpoint"):
        raise SchemaError(f"{p} is a model file but not an Incremental checkpoint")
    return load_model(p), meta["plan"], meta["state"]


class Incremental(MetaEstimatorMixin, BaseEstimator):
    """Mini-batch training of a ``partial_fit`` estimator over row blocks, with bounded memory.

    Parameters
    ----------
    estimator : scikit-learn estimator with ``partial_fit``
    batch_size : rows per ``partial_fit`` call (``None``: one call per unit of blocks).
    epochs : passes over the training blocks.
    shuffle : permute block order each epoch and rows within each unit (seeded).
    interleave : blocks mixed into one unit before cutting batches (better global shuffle).
    max_in_flight : blocks read ahead while training (at least one whole unit of ``interleave`` blocks).
    validation_fraction : share of blocks held out (whole blocks) to score each epoch.
    patience, tol : stop after ``patience`` epochs without a validation gain above ``tol``.
    scale : standardise features with moments from one reduce pass, applied on the fly.
    classes : class labels; ``None`` discovers them (store attributes or one reduce pass).
    nan : ``"raise"`` (error naming the block and rows) or ``"skip"`` (drop rows with NaN).
    checkpoint, checkpoint_every : directory and period (in blocks) of atomic checkpoints.
    random_state : seed of every shuffle and of the validation split.
    where : ``"auto"`` (a worker for a store on a cluster, else the client), ``"client"``, ``"worker"``.
    progress : show a progress bar (rows/s, latest score).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.random.default_rng(0).normal(size=(400, 3)); y = (X[:, 0] > 0).astype(int)
    >>> inc = Incremental(SGDClassifier(random_state=0), epochs=3, random_state=0, progress=False)
    >>> inc.fit(X, y).score(X, y) > 0.9
    True
    """

    def __init__(self, estimator: Any, *, batch_size: int | None = None, epochs: int = 1, shuffle: bool = True,
                 interleave: int = 1, max_in_flight: int = 2, validation_fraction: float = 0.1,
                 patience: int | None = None, tol: float = 1e-4, scale: bool = False, classes: Any = None,
                 nan: str = "raise", checkpoint: str | os.PathLike | None = None, checkpoint_every: int = 10,
                 random_state: int | None = None, where: str = "auto", progress: bool = True):
        self.estimator = estimator
        self.batch_size = batch_size
        self.epochs = epochs
        self.shuffle = shuffle
        self.interleave = interleave
        self.max_in_flight = max_in_flight
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.scale = scale
        self.classes = classes
        self.nan = nan
        self.checkpoint = checkpoint
        self.checkpoint_every = checkpoint_every
        self.random_state = random_state
        self.where = where
        self.progress = progress

    # ------------------------------------------------------------------ preparation
    def _validate(self, X: Any, y: Any, *, reset: bool, kind: str) -> tuple[Any, Any]:
        """In-memory input: scikit-learn's own checks (dtype, sparse, shapes, feature names)."""
        kw = dict(accept_sparse=False, ensure_all_finite="allow-nan", reset=reset, dtype=("float64", "float32"))
        if y is None and kind in ("classifier", "regressor"):
            raise SchemaError(f"{type(self.estimator).__name__} requires y to be passed, but the target y is None: "
                              "pass y=, or a store with a target")
        import scipy.sparse as sp

        if (y is not None and not sp.issparse(X) and hasattr(X, "__len__") and hasattr(y, "__len__")
                and len(X) != len(y)):
            raise SchemaError(f"X has {len(X)} rows but y has {len(y)}: they must match")
        if y is None or kind not in ("classifier", "regressor"):
            return validate_data(self, X, **kw), y
        X, y = validate_data(self, X, y, y_numeric=kind == "regressor", **kw)
        if kind == "classifier":
            check_classification_targets(y)
        return X, y

    def _prepare(self, X: Any, y: Any, *, validation: bool, classes: Any = None,
                 reset: bool = True) -> tuple[Any, dict]:
        require_partial_fit(self.estimator)
        if self.nan not in ("raise", "skip"):
            raise SchemaError(f"nan must be 'raise' or 'skip', not {self.nan!r}")
        kind = kind_of(self.estimator)
        if in_memory(X):
            X, y = self._validate(X, y, reset=reset, kind=kind)
        source = Source.of(X, y, require_y=kind in ("classifier", "regressor"))
        data = source.data
        train_b, val_b = split_blocks(source.n_blocks, self.validation_fraction if validation else 0.0,
                                      self.random_state)
        if classes is None and kind == "classifier":
            classes = self.classes if self.classes is not None else data.classes
        reducers: list[Any] = []
        if kind == "classifier" and classes is None:
            reducers.append(Labels())
        if self.scale:
            reducers.append(Moments())
        found: dict[str, Any] = {}
        if reducers:
            if source.kind != "memory":
                found = reduce(data, reducers)  # one fused pass on the cluster
            else:
                rs = {r.name: r for r in reducers}
                found = finalize_all(rs, states_of_blocks(rs, (source.read(i) for i in range(source.n_blocks))))
        if "labels" in found:
            classes = found["labels"]
        mean = scale = None
        if self.scale:
            mom = found["moments"]
            mean = np.nan_to_num(mom["mean"]).tolist()
            std = np.nan_to_num(mom["std"])
            scale = np.where(std > 0, std, 1.0).tolist()
        plan = TrainPlan(kind=kind, classes=None if classes is None else np.asarray(classes).tolist(),
                         mean=mean, scale=scale, train=train_b.tolist(), val=val_b.tolist(), epochs=int(self.epochs),
                         batch_size=self.batch_size, shuffle=bool(self.shuffle), group=max(1, int(self.interleave)),
                         max_in_flight=int(self.max_in_flight), seed=self.random_state, nan=self.nan,
                         patience=self.patience, tol=float(self.tol),
                         checkpoint=None if self.checkpoint is None else str(self.checkpoint),
                         checkpoint_every=int(self.checkpoint_every), n_blocks=source.n_blocks,
                         n_features=data.n_features, n_rows=data.n_rows, features=data.feature_names)
        return source, plan

    def _place(self, source: Source) -> Any:
        if self.where not in ("auto", "client", "worker"):
            raise SchemaError(f"where must be 'auto', 'client' or 'worker', not {self.where!r}")
        client = current_client()
        if self.where == "worker" and (client is None or source.kind != "store"):
            raise SchemaError("where='worker' needs a daskscale store path with its own target (not a separate y) "
                              "and a distributed client")
        if self.where == "client" or source.kind != "store":
            return None
        return client

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any = None, *, resume: str | os.PathLike | None = None) -> "Incremental":
        """Train from scratch (or from the checkpoint ``resume``) for ``epochs`` epochs."""
        source, plan = self._prepare(X, y, validation=True)
        if resume is not None:
            est, saved, saved_state = load_checkpoint(resume)
            for key in ("n_blocks", "train", "val", "seed", "batch_size", "group", "shuffle", "kind"):
                if saved.get(key) != getattr(plan, key):
                    raise SchemaError(f"checkpoint {resume} was made with {key}={saved.get(key)!r} but this fit "
                                      f"has {key}={getattr(plan, key)!r}: resume with the same data and parameters")
            plan.classes, plan.mean, plan.scale = saved["classes"], saved["mean"], saved["scale"]
            state = TrainState.from_dict({"fitted": saved_state.get("blocks_done", 0) > 0, **saved_state})
        else:
            est, state = clone(self.estimator), TrainState()
        self._run(est, source, plan, state)
        return self

    def partial_fit(self, X: Any, y: Any = None, classes: Any = None) -> "Incremental":
        """One more pass over the blocks of ``X`` (no validation, no early stopping)."""
        first = not hasattr(self, "estimator_")
        source, plan = self._prepare(X, y, validation=False, reset=first,
                                     classes=classes if first else getattr(self, "classes_", None))
        plan.epochs, plan.checkpoint = 1, None
        if not first:
            if plan.n_features != self.n_features_in_:
                raise SchemaError(f"X has {plan.n_features} features but this model was trained with "
                                  f"{self.n_features_in_}")
            plan.mean, plan.scale = self._mean, self._scale
        est = clone(self.estimator) if first else self.estimator_
        self._run(est, source, plan, TrainState(fitted=not first), append=not first)
        return self

    def _run(self, est: Any, source: Source, plan: TrainPlan, state: TrainState, append: bool = False) -> None:
        client = self._place(source)
        name = f"incremental-{uuid.uuid4().hex[:8]}"
        total = plan.epochs * len(plan.train)
        with progress(total=total, initial=min(total, state.blocks_done), desc="incremental fit",
                      unit="block", disable=None if self.progress else True) as bar:
            if client is None:
                hooks = Hooks(publish=MetricsPublisher(name).publish, on_unit=lambda row: _bar_update(bar, row))
                est, state, hist = run(est, source.reader, plan, state, hooks)
            else:
                fut = client.submit(_train_on_worker, est, source.reader, plan, state, name, pure=False)
                est, state, hist = _follow(client, fut, name, bar)
        self._store(est, plan, hist, append)

    def _store(self, est: Any, plan: TrainPlan, hist: History, append: bool) -> None:
        if append and hasattr(self, "history_"):
            hist = History(self.history_.blocks + hist.blocks, self.history_.epochs + hist.epochs)
        self.estimator_ = est
        self.history_ = hist
        self.n_features_in_ = plan.n_features
        if plan.classes is not None:
            self.classes_ = np.asarray(plan.classes)
        self._mean, self._scale = plan.mean, plan.scale
        self.n_epochs_ = len(hist.epochs)
        self.rows_per_s_ = float(np.mean([e["rows_per_s"] for e in hist.epochs])) if hist.epochs else None

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "estimator_"):
            raise IncrementalNotFittedError(f"this {type(self).__name__} is not fitted yet: call fit or partial_fit first")

    def _apply(self, method: str, X: Any) -> Any:
        self._check_fitted()
        if in_memory(X):
            X = validate_data(self, X, accept_sparse=False, reset=False, ensure_all_finite="allow-nan",
                              dtype=("float64", "float32"))
        else:
            X = Source.of(X).data
            if X.n_features != self.n_features_in_:
                raise SchemaError(f"X has {X.n_features} features but the model was trained with {self.n_features_in_}")
        return apply_blockwise(getattr(self.estimator_, method), X, mean=self._mean, scale=self._scale)

    def as_pipeline(self) -> Any:
        """The fitted model as a plain scikit-learn object: ``estimator_``, preceded by a fitted
        ``StandardScaler`` when ``scale=True`` (for tools that take sklearn models, e.g.
        :func:`daskscale.compress.compress`)."""
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        if not hasattr(self, "estimator_"):
            raise NotFittedError("Incremental is not fitted: call fit first")
        if getattr(self, "_mean", None) is None:
            return self.estimator_
        sc = StandardScaler()
        sc.mean_ = np.asarray(self._mean, dtype=np.float64)
        sc.scale_ = np.asarray(self._scale, dtype=np.float64)
        sc.var_ = sc.scale_ ** 2
        sc.n_features_in_ = len(sc.mean_)
        sc.n_samples_seen_ = 0
        return Pipeline([("scale", sc), ("model", self.estimator_)])

    def predict(self, X: Any) -> Any:
        """Predictions (NumPy for in-memory input, a lazy dask array otherwise, blockwise)."""
        return self._apply("predict", X)

    @available_if(_has("predict_proba"))
    def predict_proba(self, X: Any) -> Any:
        return self._apply("predict_proba", X)

    @available_if(_has("decision_function"))
    def decision_function(self, X: Any) -> Any:
        return self._apply("decision_function", X)

    @available_if(_has("transform"))
    def transform(self, X: Any) -> Any:
        return self._apply("transform", X)

    @available_if(_has("transform"))
    def fit_transform(self, X: Any, y: Any = None) -> Any:
        return self.fit(X, y).transform(X)

    def score(self, X: Any, y: Any = None) -> float:
        """The estimator's score over all rows (pooled over the blocks of out-of-memory data)."""
        self._check_fitted()
        kind = kind_of(self.estimator_)
        if in_memory(X):
            Xa = validate_data(self, X, accept_sparse=False, reset=False, ensure_all_finite="allow-nan",
                               dtype=("float64", "float32"))
            return score_blockwise(self.estimator_, Xa, y, kind=kind, mean=self._mean, scale=self._scale)
        source = Source.of(X, y, require_y=kind in ("classifier", "regressor"))
        plan = TrainPlan(kind=kind, train=[], val=list(range(source.n_blocks)), mean=self._mean, scale=self._scale,
                         max_in_flight=self.max_in_flight, nan=self.nan)
        from daskscale.engine.loop import validate

        return float(validate(self.estimator_, source.reader, plan))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = self.estimator.__sklearn_tags__()
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.transformer_tags = inner.transformer_tags
        tags.input_tags = inner.input_tags
        tags.input_tags.sparse = False
        tags.target_tags = inner.target_tags
        return tags


def _bar_update(bar: Any, row: dict) -> None:
    if row.get("epoch_done"):
        if row.get("score") is not None:
            bar.set_postfix(rows_s=bar.postfix or "", score=f"{row['score']:.4f}", refresh=True)
        return
    bar.update(len(row.get("blocks", [])))
    post = {"rows/s": f"{row['rows_per_s']:,.0f}"}
    if row.get("loss") is not None:
        post["loss"] = f"{row['loss']:.4f}"
    bar.set_postfix(post, refresh=False)


class _WorkerLog:
    """Publish from inside a task: the worker forwards events to the scheduler."""

    def __init__(self, worker: Any):
        self.worker = worker

    def log_event(self, topic: str, msg: dict) -> None:
        self.worker.log_event(topic, msg)


def _train_on_worker(est: Any, reader: Any, plan: TrainPlan, state: TrainState, name: str) -> tuple:
    from distributed import get_worker

    pub = MetricsPublisher(name, client=_WorkerLog(get_worker()))
    return run(est, reader, plan, state, Hooks(publish=pub.publish))


def _follow(client: Any, fut: Any, run: str, bar: Any) -> tuple:
    """Wait for the worker-side fit, moving the progress bar from its published metrics (read
    from the scheduler's event log only while a bar is shown: each read costs the scheduler,
    which shares the machine with the training worker)."""
    seen = 0
    from distributed import wait

    while not bar.disable and not fut.done():
        try:
            wait(fut, timeout=0.25)  # returns as soon as the fit ends: no polling latency
        except Exception:  # noqa: BLE001 - distributed raises a TimeoutError type of its own
            pass
        if fut.done():  # the result carries the final state: no round trip for metrics
            break
        try:
            msgs = [m for _, m in client.get_events(METRICS_TOPIC) if m.get("run") == run]
        except Exception:  # noqa: BLE001 - the bar is cosmetic; the result below is what matters
            msgs = []
        for m in msgs[seen:]:
            if "blocks_done" in m:  # totals since the start of the fit, resumed blocks included
                advance_to(bar, m["blocks_done"])
            if m.get("score") is not None:
                bar.set_postfix({"score": f"{m['score']:.4f}"}, refresh=False)
            elif m.get("rows_per_s"):
                bar.set_postfix({"rows/s": f"{m['rows_per_s']:,.0f}"}, refresh=False)
        seen = len(msgs)
    est, state, hist = fut.result()
    advance_to(bar, state.blocks_done)
    return est, state, hist

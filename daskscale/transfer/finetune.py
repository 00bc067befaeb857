"""Fine-tuning: continue a pre-trained model's training on the target data, block by block.

The pre-trained parameters are the starting point: all of them for the same task on shifted
data, all but the output layer for new classes (a fresh output layer). Training is the block
loop of :mod:`daskscale.engine.loop`: seeded shuffles of the blocks and of their rows,
mini-batches of ``batch_size`` rows, one row block in memory at a time. Frozen layers are
restored after every step (its ``after_batch`` hook), so they never move. A pipeline's leading
steps (the scaler fitted on the source data) are kept frozen too: they are part of what was
learned, and run on each block in the read-ahead thread (its ``transform`` hook).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import dask
import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline

from daskscale.engine.apply import score_blockwise
from daskscale.engine.loop import Hooks, TrainPlan, run
from daskscale.engine.source import ArrayReader, DaskReader, Source
from daskscale.errors import InputTypeError, SchemaError
from daskscale.learn.prep import kind_of
from daskscale.storage.convert import Data, aligned, as_data
from daskscale.transfer.zoo import Pretrained, resolve_pretrained

__all__ = ["SUPPORTED_KINDS", "fine_tune", "train_from_scratch", "score", "split_model", "check_features", "split_holdout",
           "target_source", "CACHE_BYTES"]

#: estimator kinds fine_tune can start from (optionally as the last step of a Pipeline)
SUPPORTED_KINDS = (MLPClassifier, MLPRegressor, SGDClassifier, SGDRegressor)
#: target data up to this size is read once into memory (the many short fits of a learning curve)
CACHE_BYTES = 64 * 2**20


def split_model(model: Any) -> tuple[list[tuple[str, Any]], Any]:
    """``(leading pipeline steps, final estimator)``; raises for an unsupported kind."""
    steps, final = (list(model.steps[:-1]), model.steps[-1][1]) if isinstance(model, Pipeline) else ([], model)
    if not isinstance(final, SUPPORTED_KINDS):
        raise InputTypeError(f"cannot transfer from a {type(final).__name__}: supported kinds are "
                             f"{[k.__name__ for k in SUPPORTED_KINDS]} (alone or as the last step of a Pipeline)")
    if not hasattr(final, "coef_") and not hasattr(final, "coefs_"):
        raise InputTypeError(f"the pre-trained {type(final).__name__} is not fitted")
    return steps, final


def target_source(X: Any, y: Any = None, *, rows: int | None = None) -> Source:
    """The target data as a :class:`~daskscale.engine.source.Source` with a target; the first
    ``rows`` rows if given.

    Data under :data:`CACHE_BYTES` is read once into memory, so the many short fits of a
    learning curve do not read a store every epoch; larger data stays where it lives and is
    read block by block (a whole store by zarr in this process, a row range by Dask).

    Examples
    --------
    >>> src = target_source(np.zeros((10, 2)), np.arange(10), rows=4)
    >>> src.kind, src.n_rows, src.read(0)[1].tolist()
    ('memory', 4, [0, 1, 2, 3])
    """
    src = Source.of(X, y, require_y=True)
    if rows is None and (src.kind == "memory" or src.data.X.nbytes > CACHE_BYTES):
        return src
    data = src.data
    if rows is not None:
        if rows <= 0:
            raise SchemaError(f"rows must be positive, got {rows}")
        n = min(int(rows), data.n_rows)
        data = Data(data.X[:n], data.y[:n], data.feature_names, data.target, data.classes, None, data.attrs,
                    data.source)
    if src.kind == "memory":
        n = data.n_rows
        return Source(data, ArrayReader(src.reader.X[:n], src.reader.y[:n], data.row_chunks), "memory")
    if data.X.nbytes > CACHE_BYTES:
        return Source(data, DaskReader(data.X, data.y), "dask")
    Xn, yn = dask.compute(data.X, data.y)
    return Source(data, ArrayReader(aligned(np.asarray(Xn)), aligned(np.asarray(yn)), data.row_chunks), "memory")


def check_features(pre: Pretrained, data: Data) -> None:
    """Raise :class:`SchemaError` if ``data`` does not have the model's features."""
    model = pre.model
    n_model = getattr(model, "n_features_in_", pre.metadata.get("n_features"))
    names = pre.metadata.get("features") or (list(getattr(model, "feature_names_in_", [])) or None)
    where = f"the pre-trained model {pre.name}"
    if n_model is not None and int(n_model) != data.n_features:
        diff = ""
        if names and data.feature_names:
            missing = [f for f in names if f not in data.feature_names][:5]
            extra = [f for f in data.feature_names if f not in names][:5]
            diff = f"; missing from the target: {missing}, not known to the model: {extra}"
        raise SchemaError(f"feature mismatch: {where} expects {n_model} features (shape (n, {n_model})) but "
                          f"the target data {data.source or ''} has shape {tuple(data.X.shape)}{diff}")
    if names and data.feature_names and list(names) != list(data.feature_names):
        bad = [(i, a, b) for i, (a, b) in enumerate(zip(names, data.feature_names)) if a != b][:5]
        raise SchemaError(f"feature mismatch: {where} and the target data both have {data.n_features} features "
                          f"but the names differ (position, model, target): {bad}; reorder or rename the columns")


def _transform(steps: list[tuple[str, Any]], X: np.ndarray) -> np.ndarray:
    for _, step in steps:
        X = step.transform(X)
    return X


def _layers(est: Any) -> list[np.ndarray]:
    """The parameter arrays, in layer order, that fine-tuning copies and freezes."""
    if isinstance(est, (MLPClassifier, MLPRegressor)):
        return [a for pair in zip(est.coefs_, est.intercepts_) for a in pair]
    return [est.coef_, est.intercept_]


def _fresh(final: Any, learning_rate: float | None, seed: int) -> Any:
    new = clone(final)
    if isinstance(new, (MLPClassifier, MLPRegressor)):
        params = {"random_state": seed, "warm_start": False, "early_stopping": False}
        if new.solver == "lbfgs":
            params["solver"] = "adam"  # lbfgs has no partial_fit
        if learning_rate is not None:
            params["learning_rate_init"] = learning_rate
    else:
        params = {"random_state": seed}
        if learning_rate is not None:
            params.update(learning_rate="constant", eta0=learning_rate)
    return new.set_params(**params)


def _n_epochs(n_rows: int, epochs: int, batch_size: int, max_steps: int | None, min_steps: int) -> int:
    per_epoch = max(1, math.ceil(n_rows / batch_size))
    want = max(epochs, math.ceil(min_steps / per_epoch))
    return want if max_steps is None else min(want, math.ceil(max_steps / per_epoch))


class _Anchor:
    """The ``after_batch`` hook: after the first call (which only built the arrays) the
    pre-trained weights ``init`` are copied in; after every later one the first ``n_frozen``
    layers are restored; after ``budget`` calls it ends the loop (returns True)."""

    def __init__(self, init: list[np.ndarray] | None, n_frozen: int, budget: float):
        self.init, self.n_frozen, self.budget = init, n_frozen, budget
        self.frozen: list[np.ndarray] | None = None
        self.done = 0

    def __call__(self, est: Any) -> bool:
        layers = _layers(est)
        if self.frozen is None:
            for dst, src in zip(layers, self.init or []):
                dst[...] = src
            self.frozen = [a.copy() for a in layers[: 2 * self.n_frozen]]
        else:
            for dst, src in zip(layers, self.frozen):
                dst[...] = src
        self.done += 1
        return self.done >= self.budget


def _train(est: Any, steps: list[tuple[str, Any]], source: Source, *, classes: Sequence[Any] | None,
           init: list[np.ndarray] | None, n_frozen: int, epochs: int, batch_size: int,
           max_steps: int | None, min_steps: int, seed: int) -> Any:
    """The block loop: shuffled blocks, their rows shuffled and cut into mini-batches, epoch after epoch."""
    plan = TrainPlan(kind=kind_of(est), train=list(range(source.n_blocks)),
                     classes=None if classes is None else np.asarray(classes).tolist(),
                     epochs=_n_epochs(source.n_rows, epochs, batch_size, max_steps, min_steps),
                     batch_size=batch_size, seed=seed, progressive=False)
    hooks = Hooks(transform=(lambda X: _transform(steps, X)) if steps else None,
                  after_batch=_Anchor(init, n_frozen, max_steps if max_steps is not None else math.inf))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        try:
            run(est, source.reader, plan, hooks=hooks)
        except SchemaError as exc:
            known = "-" if classes is None else list(classes)
            raise SchemaError(f"training on the target data failed: {exc}; the model's classes are {known}: "
                              "pass new_classes= for labels the model does not know") from exc
    return est


def fine_tune(pretrained: Any, X: Any, y: Any = None, *, learning_rate: float = 1e-3,
              freeze: bool | int = False, new_classes: Sequence[Any] | None = None, epochs: int = 10,
              batch_size: int = 32, rows: int | None = None, max_steps: int | None = None,
              min_steps: int = 0, seed: int = 0) -> Any:
    """Fine-tune a pre-trained model on target data; return a new fitted model of the same kind.

    Parameters
    ----------
    pretrained : zoo name, model file path, :class:`~daskscale.transfer.zoo.Pretrained` or estimator
        An MLP or SGD classifier/regressor, alone or as the last step of a Pipeline whose
        leading steps (scalers) stay frozen.
    X, y : store path, xarray, NumPy, dask or pandas (see :func:`daskscale.storage.convert.as_data`)
        The target data, read one row block at a time.
    learning_rate : float
        Step size of the continued training (Adam's ``learning_rate_init``; SGD's constant ``eta0``).
    freeze : bool or int
        ``True`` keeps every hidden layer fixed (only the output layer learns); an int keeps
        that many leading weight layers fixed. MLPs only.
    new_classes : sequence, optional
        Labels of a new classification task: the output layer is replaced by a fresh one.
    epochs, batch_size : int
        Passes over the target data and rows per ``partial_fit`` step.
    rows : int, optional
        Use only the first ``rows`` rows of the target (for learning curves).
    max_steps, min_steps : int, optional
        Cap, and floor, on the number of ``partial_fit`` steps (a floor helps tiny targets).
    seed : int
        Seeds the shuffling and the fresh output layer.

    Returns
    -------
    estimator
        The fine-tuned model (a Pipeline if ``pretrained`` was one); the original is untouched.

    Raises
    ------
    SchemaError
        Feature mismatch (both shapes and the differing names), or labels the model does not know.
    InputTypeError
        An unsupported model kind (the message lists the supported kinds), or ``freeze`` /
        ``new_classes`` on a model without hidden layers.

    Examples
    --------
    >>> from daskscale.transfer.tasks import digits_blur
    >>> t = digits_blur()
    >>> m = fine_tune("digits_mlp", t.X_target, t.y_target, rows=100, learning_rate=1e-3, epochs=30)
    >>> round(m.score(t.X_test, t.y_test), 2) >= 0.85
    True
    """
    pre = resolve_pretrained(pretrained)
    steps, final = split_model(pre.model)
    source = target_source(X, y, rows=rows)
    check_features(pre, source.data)
    is_mlp = isinstance(final, (MLPClassifier, MLPRegressor))
    n_layers = len(final.coefs_) if is_mlp else 1
    if (freeze or new_classes is not None) and not is_mlp:
        raise InputTypeError(f"freeze= and new_classes= need a model with hidden layers (MLPClassifier, "
                             f"MLPRegressor); a {type(final).__name__} has only its output layer")
    if new_classes is not None and not is_classifier(final):
        raise InputTypeError(f"new_classes= needs a classifier, not a {type(final).__name__}")
    n_frozen = (n_layers - 1) if freeze is True else int(freeze)
    if not 0 <= n_frozen < n_layers:
        raise SchemaError(f"freeze={freeze!r}: the model has {n_layers} weight layers and the last (output) "
                          f"layer must stay trainable; use 0..{n_layers - 1} or True")
    init = [a.copy() for a in _layers(final)]
    classes = getattr(final, "classes_", None)
    if new_classes is not None:
        init = init[:-2]  # a fresh output layer: drawn by the first partial_fit, not copied
        classes = list(new_classes)
    est = _fresh(final, learning_rate, seed)
    est = _train(est, steps, source, classes=classes, init=init, n_frozen=n_frozen, epochs=epochs,
                 batch_size=batch_size, max_steps=max_steps, min_steps=min_steps, seed=seed)
    return Pipeline(steps + [(pre.model.steps[-1][0], est)]) if steps else est


def train_from_scratch(pretrained: Any, X: Any, y: Any = None, *, learning_rate: float | None = None,
                       classes: Sequence[Any] | None = None, epochs: int = 10, batch_size: int = 32,
                       rows: int | None = None, max_steps: int | None = None, min_steps: int = 0,
                       seed: int = 0) -> Any:
    """The baseline: the same architecture with fresh weights, trained only on the target rows.

    Leading pipeline steps (scalers) are re-fitted on the target rows (``partial_fit`` over the
    blocks), so the baseline is not handicapped by the source's preprocessing.

    Examples
    --------
    >>> from daskscale.transfer.tasks import digits_blur
    >>> t = digits_blur()
    >>> m = train_from_scratch("digits_mlp", t.X_target, t.y_target, rows=100, epochs=30)
    >>> 0.5 < m.score(t.X_test, t.y_test) < 0.95
    True
    """
    pre = resolve_pretrained(pretrained)
    steps, final = split_model(pre.model)
    source = target_source(X, y, rows=rows)
    check_features(pre, source.data)
    fresh_steps = [(name, clone(step)) for name, step in steps]
    for k, (_, step) in enumerate(fresh_steps):
        if not hasattr(step, "partial_fit"):
            raise InputTypeError(f"pipeline step {type(step).__name__} has no partial_fit, so it cannot be "
                                 "re-fitted block by block for the from-scratch baseline")
        before = fresh_steps[:k]
        run(step, source.reader, TrainPlan(kind="transformer", train=list(range(source.n_blocks)), shuffle=False,
                                           progressive=False),
            hooks=Hooks(transform=(lambda X, before=before: _transform(before, X)) if before else None))
    if classes is None and is_classifier(final):
        classes = list(final.classes_)
    est = _fresh(final, learning_rate, seed)
    est = _train(est, fresh_steps, source, classes=classes, init=None, n_frozen=0, epochs=epochs,
                 batch_size=batch_size, max_steps=max_steps, min_steps=min_steps, seed=seed)
    return Pipeline(fresh_steps + [(pre.model.steps[-1][0], est)]) if fresh_steps else est


def score(model: Any, X: Any, y: Any = None) -> float:
    """Accuracy (classifiers) or R^2 (regressors) of ``model`` over all rows, computed block by block
    where the blocks live (:func:`~daskscale.engine.apply.score_blockwise`).

    Examples
    --------
    >>> from daskscale.transfer.zoo import load_pretrained
    >>> from daskscale.transfer.tasks import digits_blur
    >>> t = digits_blur()
    >>> round(score(load_pretrained("digits_mlp").model, t.X_test, t.y_test), 3) > 0.5
    True
    """
    return score_blockwise(model, X, y)


def split_holdout(X: Any, y: Any = None, *, fraction: float = 0.2) -> tuple[Data, Data]:
    """``(train, test)``: the last ``fraction`` of the rows held out (lazy slices, no copy).

    Examples
    --------
    >>> import numpy as np
    >>> tr, te = split_holdout(np.zeros((10, 2)), np.arange(10))
    >>> tr.n_rows, te.n_rows
    (8, 2)
    """
    data = as_data(X, y, require_y=True)
    if not 0 < fraction < 1:
        raise SchemaError(f"fraction must be in (0, 1), got {fraction}")
    cut = data.n_rows - max(1, int(round(fraction * data.n_rows)))
    if cut < 1:
        raise SchemaError(f"{data.n_rows} rows are too few to hold out {fraction:.0%} for testing")
    parts = [Data(data.X[a:b], data.y[a:b], data.feature_names, data.target, data.classes, None, data.attrs,
                  data.source) for a, b in ((0, cut), (cut, data.n_rows))]
    return parts[0], parts[1]

"""Pruning of fitted models: magnitude (unstructured), hidden units (structured), ensemble members.

- :func:`magnitude_prune` zeroes the smallest weights of a linear model (``coef_``) or an MLP
  (``coefs_``) to a target sparsity, over all layers at once (``scope="global"``) or layer by
  layer (``scope="layer"``). Biases are kept. It returns a pruned copy and the masks.
- :func:`prune_neurons` removes whole hidden units of an MLP: the result is a real, smaller
  scikit-learn MLP (``hidden_layer_sizes`` shrinks).
- :func:`fine_tune` continues training with the masks held fixed: ``partial_fit`` over the row
  blocks of a store (the block training and the next, read meanwhile), the masks re-applied
  after every call.
- :func:`prune_gradually` prunes in steps during that fine-tuning (Zhu & Gupta's cubic
  schedule), which costs less accuracy than pruning in one shot for the same passes.
- :func:`prune_ensemble` keeps the best members of a forest (held-out score) or the first
  stages of gradient boosting.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from daskscale.adapters.sklearn import is_linear_model, is_mlp, reset_mlp_optimizer, sgd_iterate
from daskscale.errors import InputTypeError, NotFittedError, SchemaError

__all__ = ["SUPPORTED", "magnitude_prune", "prune_gradually", "sparsity_schedule", "prune_neurons", "fine_tune",
           "prune_ensemble", "weights_of", "sparsity_of", "check_sparsity", "check_supported"]

#: what :func:`magnitude_prune` and :func:`daskscale.compress.compress` accept
SUPPORTED = ("linear models with coef_ (SGDClassifier, LogisticRegression, LinearSVC, Ridge, ...)",
             "MLPClassifier", "MLPRegressor")


def check_supported(model: Any) -> str:
    """``"mlp"`` or ``"linear"``; raise for anything else or for an unfitted model."""
    from sklearn.base import is_classifier, is_regressor

    model = _final(model)
    kind = "mlp" if is_mlp(model) or "MLP" in type(model).__name__ else None
    if kind is None and (is_classifier(model) or is_regressor(model)) and is_linear_model(model):
        kind = "linear"
    if kind is None:
        raise InputTypeError(f"cannot compress a {type(model).__name__}; supported: {', '.join(SUPPORTED)}"
                             " (tree ensembles: use prune_ensemble)")
    fitted = "coefs_" if kind == "mlp" else "coef_"
    if not hasattr(model, fitted):
        raise NotFittedError(f"this {type(model).__name__} is not fitted (it has no {fitted}); "
                             "call fit before compressing it")
    return kind


def check_sparsity(sparsity: float) -> float:
    """Sparsity must lie in [0, 1)."""
    try:
        s = float(sparsity)
    except (TypeError, ValueError):
        raise SchemaError(f"sparsity must be a number in [0, 1), got {sparsity!r}") from None
    if not 0.0 <= s < 1.0:
        raise SchemaError(f"sparsity must be in [0, 1) (the fraction of weights set to zero), got {s}")
    return s


def _final(model: Any) -> Any:
    from sklearn.pipeline import Pipeline

    return model.steps[-1][1] if isinstance(model, Pipeline) else model


def weights_of(model: Any) -> list[np.ndarray]:
    """The weight matrices, each ``(n_in, n_out)`` (a linear ``coef_`` is transposed)."""
    model = _final(model)
    if check_supported(model) == "mlp":
        return list(model.coefs_)
    return [np.atleast_2d(model.coef_).T]


def _set_weights(model: Any, ws: list[np.ndarray]) -> None:
    model = _final(model)
    if hasattr(model, "coefs_"):
        model.coefs_ = [np.asarray(w) for w in ws]
    else:
        model.coef_ = ws[0].T.reshape(np.shape(model.coef_)).copy()


def sparsity_of(model: Any) -> float:
    """Fraction of exactly-zero weights (biases excluded)."""
    ws = weights_of(model)
    return float(sum((w == 0).sum() for w in ws) / sum(w.size for w in ws))


def _threshold(values: np.ndarray, sparsity: float) -> float:
    k = int(round(sparsity * values.size))
    if k == 0:
        return -np.inf
    return float(np.partition(values, k - 1)[k - 1])


def _magnitude_masks(ws: list[np.ndarray], sparsity: float, scope: str) -> list[np.ndarray]:
    if scope == "global":
        t = _threshold(np.concatenate([np.abs(w).ravel() for w in ws]), sparsity)
        return [np.abs(w) > t for w in ws]
    return [np.abs(w) > _threshold(np.abs(w).ravel(), sparsity) for w in ws]


def magnitude_prune(model: Any, sparsity: float, *, scope: str = "global") -> tuple[Any, list[np.ndarray]]:
    """Zero the smallest-magnitude weights; return ``(pruned_copy, masks)``.

    Parameters
    ----------
    model : fitted linear model or MLP
    sparsity : float in [0, 1)
        Fraction of weights set to zero.
    scope : {"global", "layer"}
        One threshold over all layers, or each layer pruned to ``sparsity``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.random.default_rng(0).normal(size=(200, 10)); y = X[:, 0] > 0
    >>> pruned, masks = magnitude_prune(SGDClassifier(random_state=0).fit(X, y), 0.8)
    >>> round(sparsity_of(pruned), 2), masks[0].shape
    (0.8, (10, 1))
    """
    s = check_sparsity(sparsity)
    if scope not in ("global", "layer"):
        raise SchemaError(f"scope must be 'global' or 'layer', got {scope!r}")
    ws = weights_of(model)
    masks = _magnitude_masks(ws, s, scope)
    pruned = copy.deepcopy(model)
    _set_weights(pruned, [np.where(m, w, 0.0) for w, m in zip(ws, masks)])
    return pruned, masks


def prune_neurons(mlp: Any, keep: float | int | list) -> Any:
    """Remove whole hidden units of a fitted MLP; return a smaller scikit-learn MLP.

    A unit's importance is ``||incoming weights|| * ||outgoing weights||``; the least
    important go. ``keep`` is a fraction of units per hidden layer (float), a count (int),
    or a list with one count per hidden layer.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.neural_network import MLPClassifier
    >>> X = np.random.default_rng(0).normal(size=(200, 5)); y = X[:, 0] > 0
    >>> m = MLPClassifier((40,), max_iter=300, random_state=0).fit(X, y)
    >>> small = prune_neurons(m, 0.5)
    >>> small.hidden_layer_sizes, small.coefs_[0].shape, small.score(X, y) > 0.9
    ((20,), (5, 20), True)
    """
    from sklearn.pipeline import Pipeline

    if isinstance(mlp, Pipeline):
        small = copy.copy(mlp)
        small.steps = [*mlp.steps[:-1], (mlp.steps[-1][0], prune_neurons(mlp.steps[-1][1], keep))]
        return small
    if check_supported(mlp) != "mlp":
        raise InputTypeError(f"prune_neurons needs an MLP, got {type(mlp).__name__}; "
                             "use magnitude_prune for linear models")
    sizes = [w.shape[1] for w in mlp.coefs_[:-1]]
    if isinstance(keep, (list, tuple)):
        counts = [int(k) for k in keep]
    elif isinstance(keep, float):
        if not 0 < keep <= 1:
            raise SchemaError(f"keep as a fraction must be in (0, 1], got {keep}")
        counts = [max(1, int(round(keep * n))) for n in sizes]
    else:
        counts = [int(keep)] * len(sizes)
    if len(counts) != len(sizes) or any(not 1 <= c <= n for c, n in zip(counts, sizes)):
        raise SchemaError(f"keep={keep!r} does not fit hidden layers of sizes {sizes}")
    small = copy.deepcopy(mlp)
    coefs, intercepts = [w.copy() for w in mlp.coefs_], [b.copy() for b in mlp.intercepts_]
    for i, c in enumerate(counts):
        score = np.linalg.norm(coefs[i], axis=0) * np.linalg.norm(coefs[i + 1], axis=1)
        idx = np.sort(np.argsort(score)[::-1][:c])
        coefs[i], intercepts[i] = coefs[i][:, idx], intercepts[i][idx]
        coefs[i + 1] = coefs[i + 1][idx, :]
    small.coefs_, small.intercepts_ = coefs, intercepts
    small.hidden_layer_sizes = tuple(counts)
    reset_mlp_optimizer(small)  # its moments have the old shapes: a later partial_fit starts fresh ones
    return small


def _hold_at_zero(model: Any, masks: list[np.ndarray]) -> None:
    """Set the weights outside ``masks`` back to zero, in place (the weights are views of the
    model's own arrays: no copy per training step).

    An averaged SGD model (``average=True``) trains an iterate and reports the running average
    as ``coef_``: both are held at zero (:func:`~daskscale.adapters.sklearn.sgd_iterate`), or
    the pruned weights would go on learning in the iterate.
    """
    ws = weights_of(model)
    if all(w.flags.writeable for w in ws):
        for w, m in zip(ws, masks):
            np.copyto(w, 0.0, where=~m)
    else:
        _set_weights(model, [np.where(m, w, 0.0) for w, m in zip(ws, masks)])
    for arr in sgd_iterate(_final(model)):
        np.copyto(arr, 0.0, where=~masks[0].T.reshape(arr.shape))


class _Masks:
    """The ``after_batch`` hook of masked training: hold the pruned weights at zero after every
    ``partial_fit`` call, and re-prune by magnitude when the update count reaches a step of
    ``schedule`` (``{update: sparsity}``; pruned weights are zero, so masks only shrink)."""

    def __init__(self, model: Any, masks: list[np.ndarray] | None, schedule: dict[int, float], scope: str):
        self.model, self.masks, self.schedule, self.scope, self.update = model, masks, dict(schedule), scope, 0
        self._hold()
        self._prune()  # a step at update 0 comes before any training

    def _hold(self) -> None:
        if self.masks is not None:
            _hold_at_zero(self.model, self.masks)

    def _prune(self) -> None:
        if self.update in self.schedule:  # ranked with the pruned weights back at zero
            self.masks = _magnitude_masks(weights_of(self.model), self.schedule.pop(self.update), self.scope)
            self._hold()

    def __call__(self, est: Any) -> None:
        self._hold()
        self.update += 1
        self._prune()

    def finish(self) -> list[np.ndarray]:
        """The final masks; steps past the last update (rows counted differently) still reach the target."""
        if self.schedule:
            self.masks = _magnitude_masks(weights_of(self.model), max(self.schedule.values()), self.scope)
            _hold_at_zero(self.model, self.masks)
        return self.masks


def _masked_training(model: Any, X: Any, y: Any, *, epochs: int, batch_rows: int, classes: Any,
                     masks: list[np.ndarray] | None = None,
                     schedule: dict[int, float] | None = None, scope: str = "global") -> list[np.ndarray]:
    """The block loop over the row blocks of ``X`` for ``epochs`` passes, masked weights held at zero.

    ``X`` may be a :class:`~daskscale.engine.source.Source` already. ``schedule`` maps a
    mini-batch update number to a sparsity: before that update the mask is recomputed by
    magnitude. Blocks are read in order, the next while the current one trains (a store: by
    zarr, straight into this process), cast to the model's dtype and put through a Pipeline's
    fitted preprocessing in the read-ahead thread. Returns the final masks; ``model`` is
    updated in place.
    """
    from sklearn.pipeline import Pipeline

    from daskscale.engine.loop import Hooks, TrainPlan, TrainState, run
    from daskscale.engine.source import Source
    from daskscale.learn.prep import kind_of

    check_supported(model)
    est = _final(model)
    if not hasattr(est, "partial_fit"):
        raise InputTypeError(f"{type(est).__name__} has no partial_fit; fine-tuning needs an incremental "
                             "model (SGDClassifier, SGDRegressor, Perceptron, MLPClassifier, MLPRegressor)")
    if int(epochs) < 1:
        raise SchemaError(f"epochs must be at least 1, got {epochs!r}")
    source = Source.of(X, y, require_y=True)
    if classes is None:
        classes = getattr(est, "classes_", None)
    # a Pipeline([scaler, model]): its fitted preprocessing is applied to each block as is
    pre = model[:-1] if isinstance(model, Pipeline) else None
    # the solver keeps the dtype it was fitted with (SGD refuses to mix float32 and float64)
    dtype = weights_of(model)[0].dtype

    def transform(xb: np.ndarray) -> np.ndarray:
        xb = xb.astype(dtype, copy=False)
        return xb if pre is None else pre.transform(xb).astype(dtype, copy=False)

    hook = _Masks(model, masks, schedule or {}, scope)
    plan = TrainPlan(kind=kind_of(est), train=list(range(source.n_blocks)), epochs=int(epochs),
                     batch_size=_call_rows(est, batch_rows), shuffle=False, max_in_flight=1, progressive=False,
                     classes=None if classes is None or not hasattr(est, "classes_") else np.asarray(classes).tolist())
    run(est, source.reader, plan, TrainState(fitted=True), Hooks(transform=transform, after_batch=hook))
    return hook.finish()


def _call_rows(est: Any, batch_rows: int) -> int:
    """Rows per ``partial_fit`` call. An MLP takes one optimizer step per ``batch_size`` rows of
    a call, so calls of that size make the mask hold at every step; SGD linear models update
    per sample within a call, and the mask is re-applied after each call of ``batch_rows``."""
    bs = getattr(est, "batch_size", None) if hasattr(est, "coefs_") else None
    if bs is None:
        return int(batch_rows)
    return max(1, min(int(batch_rows), 200 if bs == "auto" else int(bs)))


def fine_tune(model: Any, masks: list[np.ndarray], X: Any, y: Any = None, *, epochs: int = 1,
              batch_rows: int = 10_000, classes: Any = None) -> Any:
    """Continue training a pruned model with its masks held fixed, block by block.

    Each row block of ``X`` (a store path, read by zarr right here; a dask or NumPy array) is
    split into mini-batches of ``batch_rows`` (an MLP: at most its ``batch_size``, one
    optimizer step a call) and fed to ``partial_fit``; after every call the masked weights are
    set back to zero, so the sparsity never decays. Works out-of-core: about two blocks are in
    memory, the one training and the next, read meanwhile. Returns ``model`` (updated in place). The solver continues
    with its own state (an MLP's Adam moments, SGD's decaying step). See
    :func:`prune_gradually` for pruning in steps during the fine-tuning, which recovers more.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.random.default_rng(0).normal(size=(400, 10)); y = (X[:, 0] > 0).astype(int)
    >>> pruned, masks = magnitude_prune(SGDClassifier(random_state=0).fit(X, y), 0.9)
    >>> tuned = fine_tune(pruned, masks, X, y)
    >>> round(sparsity_of(tuned), 2)
    0.9
    """
    _masked_training(model, X, y, epochs=epochs, batch_rows=batch_rows, classes=classes,
                     masks=[np.asarray(m, bool) for m in masks])
    return model


def sparsity_schedule(sparsity: float, steps: int, n_updates: int, ramp: float = 0.5) -> dict[int, float]:
    """Zhu & Gupta's cubic schedule: ``{update: sparsity}`` for gradual magnitude pruning.

    Step ``k`` of ``steps`` prunes to ``s * (1 - (1 - k / steps) ** 3)`` (fast at first, when
    many small weights are redundant, slowly near the target); the steps are spread evenly over
    the first ``ramp`` of the ``n_updates`` mini-batch updates, and the rest fine-tunes at the
    final sparsity. M. Zhu and S. Gupta, "To prune, or not to prune", arXiv:1710.01878 (2017).

    Examples
    --------
    >>> {u: round(s, 3) for u, s in sparsity_schedule(0.9, 3, 60).items()}
    {0: 0.633, 10: 0.867, 20: 0.9}
    """
    s = check_sparsity(sparsity)
    steps = max(1, int(steps))
    at = [int(round(n_updates * ramp * k / steps)) for k in range(steps)]
    out: dict[int, float] = {}
    for k, u in enumerate(at, start=1):
        out[u] = s * (1 - (1 - k / steps) ** 3)  # a later step at the same update wins
    return out


def prune_gradually(model: Any, sparsity: float, X: Any, y: Any = None, *, steps: int = 5, epochs: int = 1,
                    ramp: float = 0.5, scope: str = "global", batch_rows: int = 10_000,
                    classes: Any = None) -> tuple[Any, list[np.ndarray]]:
    """Gradual magnitude pruning with masked fine-tuning between steps; ``(pruned_copy, masks)``.

    Over ``epochs`` passes of mini-batch ``partial_fit`` on ``X`` (out-of-core, as in
    :func:`fine_tune`), the sparsity rises in ``steps`` steps on the cubic schedule of
    :func:`sparsity_schedule` (5 steps to 90%: 44%, 71%, 84%, 89%, 90%), the weights pruned at
    each step being the smallest of the *fine-tuned* model; the last ``1 - ramp`` of the
    updates fine-tune at the target with the mask fixed. Biases are never pruned. One-shot
    pruning removes weights the rest of the network has not yet learnt to do without; in
    steps, the network adapts on the way. What recovers the accuracy most is the number of
    updates: give it about as many as the original training had.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.random.default_rng(0).normal(size=(400, 10)); y = (X[:, 0] > 0).astype(int)
    >>> pruned, masks = prune_gradually(SGDClassifier(random_state=0).fit(X, y), 0.9, X, y, batch_rows=50)
    >>> round(sparsity_of(pruned), 2), bool(pruned.score(X, y) > 0.9)
    (0.9, True)
    """
    from daskscale.engine.source import Source

    check_sparsity(sparsity)
    if scope not in ("global", "layer"):
        raise SchemaError(f"scope must be 'global' or 'layer', got {scope!r}")
    pruned = copy.deepcopy(model)
    source = Source.of(X, y, require_y=True)
    step = _call_rows(_final(model), batch_rows)
    per_epoch = sum(-(-int(r) // step) for r in source.data.row_chunks)
    schedule = sparsity_schedule(sparsity, steps, per_epoch * max(1, int(epochs)), ramp)
    masks = _masked_training(pruned, source, None, epochs=epochs, batch_rows=batch_rows, classes=classes,
                             schedule=schedule, scope=scope)
    return pruned, masks


def prune_ensemble(model: Any, keep: float | int, X_val: Any = None, y_val: Any = None) -> Any:
    """Keep fewer members of a fitted tree ensemble; return a smaller copy.

    Forests (``estimators_`` list) keep the ``keep`` members with the best held-out score on
    ``(X_val, y_val)`` (or the first ones without it); gradient boosting keeps its first
    stages (later stages are small corrections).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import RandomForestClassifier
    >>> X = np.random.default_rng(0).normal(size=(300, 4)); y = X[:, 0] > 0
    >>> rf = RandomForestClassifier(20, random_state=0).fit(X, y)
    >>> len(prune_ensemble(rf, 0.25, X, y).estimators_)
    5
    """
    est = getattr(model, "estimators_", None)
    if est is None:
        raise InputTypeError(f"prune_ensemble needs a fitted tree ensemble (RandomForest*, ExtraTrees*, "
                             f"GradientBoosting*), got {type(model).__name__}")
    n = len(est)
    k = max(1, int(round(keep * n))) if isinstance(keep, float) else int(keep)
    if not 1 <= k <= n:
        raise SchemaError(f"keep={keep!r} must leave between 1 and {n} members")
    small = copy.deepcopy(model)
    if isinstance(est, np.ndarray):  # gradient boosting: stages in order
        small.estimators_ = est[:k].copy()
        small.train_score_ = model.train_score_[:k]
        small.n_estimators = k
        if hasattr(small, "n_estimators_"):
            small.n_estimators_ = k
        return small
    order = range(n)
    if X_val is not None:
        Xv, yv = np.asarray(X_val, dtype=np.float32), np.asarray(y_val)
        if hasattr(model, "classes_"):
            yv = np.searchsorted(model.classes_, yv)  # members predict class indices
        order = np.argsort([-m.score(Xv, yv) for m in est], kind="stable")
    small.estimators_ = [est[i] for i in sorted(order[:k])]
    small.n_estimators = k
    return small

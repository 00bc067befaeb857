"""Checkpoints of an :class:`~daskscale.online.OnlineLearner`: one file, written atomically.

The model(s), the batches kept for retraining or waiting for labels, the preprocessing
state (the running scaler's moments, the one-hot categories) and the streaming statistics
go into the skops archive of :func:`daskscale.models.save_model` (arrays, no
pickle); counters, metric history, drift events, skips, the detector's state and the
source position go into its JSON metadata, and so does a
:class:`~daskscale.online.river_model.RiverClassifier`'s model, as the JSON state of
:meth:`~daskscale.online.river_model.RiverClassifier.get_state` (River objects are not
archived: the archive holds no pickle). Because it is one file replaced by a rename,
the model and the position it has learned up to can never disagree: a learner killed at
any moment restarts from the last checkpoint and learns each later batch exactly once.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import numpy as np

from daskscale.errors import SchemaError, StoreError
from daskscale.models import load_model, read_metadata, save_model
from daskscale.online.drift import DETECTORS, DriftDetector
from daskscale.online.evaluate import Features, make_features
from daskscale.online.preprocess import RunningMoments
from daskscale.online.river_model import RiverClassifier

__all__ = ["save_learner", "load_learner", "KIND"]

KIND = "daskscale.online.OnlineLearner"
_PARAMS = ("metrics", "reaction", "window", "recent", "label_delay", "on_bad_batch", "statistics", "publish",
           "run_id")
_COUNTERS = ("n_batches_", "n_rows_", "n_scored_", "n_trained_", "n_skipped_", "loss_sum_", "n_features_in_",
             "history_", "events_", "skipped_", "position_")


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _preprocess_spec(spec: Any) -> Any:
    return spec.spec() if isinstance(spec, Features) else spec


def _river(model: Any) -> tuple[Any, Any]:
    """``(archived model, JSON state)``: a River model is written as JSON state only."""
    if isinstance(model, RiverClassifier):
        return None, model.get_state()
    return model, None


def save_learner(learner: Any, path: str | os.PathLike) -> Path:
    """Write ``learner``'s whole state to ``path`` (atomic: the old file survives a crash)."""
    det: DriftDetector | None = learner.detector_
    if isinstance(learner.estimator, RiverClassifier) and learner.estimator.model is not None:
        raise SchemaError("a RiverClassifier with a River model of your own cannot be checkpointed (the archive "
                          "holds no pickle): use RiverClassifier() (River's StandardScaler | LogisticRegression)")
    estimator, river_estimator = _river(learner.estimator_)
    background, river_background = _river(learner.background_)
    moments = learner.moments_
    own_moments = moments is not None and (learner.features_ is None or learner.features_.scaler is None)
    payload = {
        "template": learner.estimator,
        "estimator": estimator,
        "background": background,
        "recent": [[X, y] for X, y in learner.recent_],
        "pending": [[X, y, y_pred, None if c is None else np.asarray(c, dtype=object).tolist()]
                    for X, y, y_pred, _, _, _, c, _ in learner.pending_],
        "stats": list(moments.state()) if own_moments and moments.mean is not None else None,
        "features": None if learner.features_ is None else learner.features_.get_state(),
    }
    meta = {
        "kind": KIND,
        "params": {k: getattr(learner, k) for k in _PARAMS},
        "preprocess": _preprocess_spec(learner.preprocess),
        "river": {"estimator": river_estimator, "background": river_background},
        "classes": None if learner.classes is None else _plain(np.asarray(learner.classes)),
        "classes_": None if learner.classes_ is None else _plain(learner.classes_),
        "window_": [list(w) for w in learner.window_],
        "pending": [[p, w, lag] for _, _, _, p, w, _, _, lag in learner.pending_],
        "detector": None if det is None else {"name": det.name, "params": det.get_params(), "state": det.get_state()},
        **{k: getattr(learner, k) for k in _COUNTERS},
    }
    meta["params"]["metrics"] = list(meta["params"]["metrics"])
    # a resumed stream keeps its run id, so its metrics continue the same run on the dashboard
    meta["params"]["run_id"] = learner.run_id_
    return save_model(payload, path, metadata=meta)


def load_learner(cls: type, path: str | os.PathLike) -> Any:
    """Rebuild a learner saved by :func:`save_learner`.

    The file goes through :func:`daskscale.models.load_model` (nothing in it runs); a file
    whose content does not have a checkpoint's shape raises :class:`StoreError` naming it.
    """
    meta = read_metadata(path)
    if meta.get("kind") != KIND:
        raise StoreError(f"{path} is a model file but not an OnlineLearner checkpoint (kind {meta.get('kind')!r})")
    payload = load_model(path)
    try:
        return _rebuild(cls, meta, payload)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise StoreError(f"{path} is not a complete OnlineLearner checkpoint ({type(exc).__name__}: {exc}); "
                         "delete it to start from scratch") from None


def _rebuild(cls: type, meta: dict[str, Any], payload: Any) -> Any:
    keys = {"template", "estimator", "background", "recent", "pending", "stats"}
    # a checkpoint written before online preprocessing has no "features": it learned raw rows
    if not isinstance(payload, dict) or set(payload) - {"features"} != keys:
        raise ValueError("the archive does not hold a learner's state")
    if "features" not in payload:
        payload, meta = {**payload, "features": None}, {**meta, "preprocess": None,
                                                         "river": {"estimator": None, "background": None}}
        payload["pending"] = [[*p, None] for p in payload["pending"]]
        meta["pending"] = [[*m, None] for m in meta["pending"]]
    if not set(meta["params"]) <= set(_PARAMS):
        raise ValueError(f"unknown parameters {sorted(set(meta['params']) - set(_PARAMS))}")
    d = meta["detector"]
    detector = None
    if d is not None:
        detector = DETECTORS[d["name"]](**d["params"])
        detector.set_state(d["state"])
    learner = cls(payload["template"], preprocess=meta["preprocess"], drift_detector=detector,
                  classes=meta["classes"], **meta["params"])
    river = meta["river"]
    learner.estimator_ = _restore_model(payload["estimator"], river["estimator"])
    learner.background_ = _restore_model(payload["background"], river["background"])
    learner.detector_ = detector
    learner.features_ = make_features(meta["preprocess"])
    if learner.features_ is not None:
        learner.features_.set_state(payload["features"])
    scaler = None if learner.features_ is None else learner.features_.scaler
    learner.moments_ = (scaler.moments_ if scaler is not None else
                        RunningMoments().set_state(payload["stats"]) if learner.statistics else None)
    learner.classes_ = None if meta["classes_"] is None else np.asarray(meta["classes_"])
    for k in _COUNTERS:
        setattr(learner, k, meta[k])
    learner.window_ = collections.deque((tuple(w) for w in meta["window_"]), maxlen=learner.window)
    learner.recent_ = collections.deque((tuple(r) for r in payload["recent"]), maxlen=learner.recent)
    learner.pending_ = collections.deque(
        (X, y, y_pred, p, w, 0.0, None if c is None else np.asarray(c, dtype=object), lag)
        for (X, y, y_pred, c), (p, w, lag) in zip(payload["pending"], meta["pending"]))
    return learner


def _restore_model(archived: Any, river_state: Any) -> Any:
    if river_state is None:
        return archived
    return RiverClassifier().set_state(river_state)

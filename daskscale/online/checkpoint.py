"""Checkpoints of an :class:`~daskscale.online.OnlineLearner`: one file, written atomically.

The model(s), the batches kept for retraining or waiting for labels, and the streaming
statistics go into the skops archive of :func:`daskscale.models.save_model` (arrays, no
pickle); counters, metric history, drift events, skips, the detector's state and the
source position go into its JSON metadata. Because it is one file replaced by a rename,
the model and the position it has learned up to can never disagree: a learner killed at
any moment restarts from the last checkpoint and learns each later batch exactly once.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

import numpy as np

from daskscale.errors import StoreError
from daskscale.models import load_model, read_metadata, save_model
from daskscale.online.drift import DETECTORS, DriftDetector

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


def save_learner(learner: Any, path: str | os.PathLike) -> Path:
    """Write ``learner``'s whole state to ``path`` (atomic: the old file survives a crash)."""
    det: DriftDetector | None = learner.detector_
    payload = {
        "template": learner.estimator,
        "estimator": learner.estimator_,
        "background": learner.background_,
        "recent": [[X, y] for X, y in learner.recent_],
        "pending": [[X, y, y_pred] for X, y, y_pred, *_ in learner.pending_],
        "stats": None if learner.stats_ is None else list(learner.stats_["moments"]),
    }
    meta = {
        "kind": KIND,
        "params": {k: getattr(learner, k) for k in _PARAMS},
        "classes": None if learner.classes is None else _plain(np.asarray(learner.classes)),
        "classes_": None if learner.classes_ is None else _plain(learner.classes_),
        "window_": [list(w) for w in learner.window_],
        "pending": [[p, w] for *_, p, w, _ in learner.pending_],
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
    if not isinstance(payload, dict) or set(payload) != {"template", "estimator", "background", "recent", "pending",
                                                          "stats"}:
        raise ValueError("the archive does not hold a learner's state")
    if not set(meta["params"]) <= set(_PARAMS):
        raise ValueError(f"unknown parameters {sorted(set(meta['params']) - set(_PARAMS))}")
    d = meta["detector"]
    detector = None
    if d is not None:
        detector = DETECTORS[d["name"]](**d["params"])
        detector.set_state(d["state"])
    learner = cls(payload["template"], drift_detector=detector, classes=meta["classes"], **meta["params"])
    learner.estimator_ = payload["estimator"]
    learner.background_ = payload["background"]
    learner.detector_ = detector
    learner.classes_ = None if meta["classes_"] is None else np.asarray(meta["classes_"])
    for k in _COUNTERS:
        setattr(learner, k, meta[k])
    learner.window_ = collections.deque((tuple(w) for w in meta["window_"]), maxlen=learner.window)
    learner.recent_ = collections.deque((tuple(r) for r in payload["recent"]), maxlen=learner.recent)
    learner.pending_ = collections.deque(
        (X, y, y_pred, p, w, 0.0) for (X, y, y_pred), (p, w) in zip(payload["pending"], meta["pending"]))
    learner.stats_ = None if payload["stats"] is None else {"moments": tuple(payload["stats"])}
    return learner

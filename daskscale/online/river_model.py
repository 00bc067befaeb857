"""A River model as a scikit-learn style classifier on NumPy batches, learning row by row.

:class:`RiverClassifier` wraps a River classifier (or pipeline): ``partial_fit`` /
``predict`` / ``predict_proba`` take NumPy batches and go through them one row at a time
with River's ``learn_one`` / ``predict_one`` / ``predict_proba_one``, so the model learns
exactly as it would under River's own loop; this is the right estimator when events come one
by one and the model must change after every row. Feature names are the column indices.

Checkpoints: River models are Python objects, and a checkpoint holds no pickle. Their state
is written as JSON by :meth:`RiverClassifier.get_state`: every field of the model and of the
River objects inside it (pipeline steps, optimizer, loss, learning-rate schedule), numbers
and strings as they are, dicts, ``Counter``/``defaultdict`` and River's ``VectorDict`` as
``[key, value]`` pairs; :meth:`RiverClassifier.set_state` writes it back into a fresh clone
of the template. Derived data (tuples, frozensets, bound methods, a second reference to a
River object: a pipeline's cached plan) is not written; the clone rebuilds it. This covers River's linear models and its scalers (the default
``StandardScaler() | LogisticRegression()``). A model holding anything else (Hoeffding
trees keep node objects, for instance) raises :class:`~daskscale.errors.SchemaError` on
``get_state``: such a model resumes only by replaying the stream from the start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from daskscale.errors import SchemaError

__all__ = ["RiverClassifier", "default_river_model"]


def default_river_model() -> Any:
    """River's ``preprocessing.StandardScaler() | linear_model.LogisticRegression()``."""
    from river import linear_model, preprocessing

    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


class RiverClassifier(ClassifierMixin, BaseEstimator):
    """A River classifier behind ``partial_fit`` / ``predict`` / ``predict_proba`` on arrays.

    Parameters
    ----------
    model : River classifier or pipeline, optional
        The template, cloned on the first ``partial_fit`` (default
        :func:`default_river_model`). Two classes are given to River as ``False``/``True``
        (what its binary models expect), more as they are.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(400, 3)); y = (X[:, 0] > 0).astype(int)
    >>> m = RiverClassifier().partial_fit(X[:300], y[:300], classes=[0, 1])
    >>> float((m.predict(X[300:]) == y[300:]).mean()) > 0.9
    True
    >>> m.predict_proba(X[:2]).shape
    (2, 2)
    """

    def __init__(self, model: Any = None):
        self.model = model

    def _template(self) -> Any:
        return default_river_model() if self.model is None else self.model

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "RiverClassifier":
        """Learn the rows of ``(X, y)`` one by one, in order."""
        X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
        if not hasattr(self, "model_"):
            self.classes_ = np.unique(y) if classes is None else np.asarray(classes)
            self.model_ = self._template().clone()
            self.n_features_in_ = int(X.shape[1])
        elif X.shape[1] != self.n_features_in_:
            raise SchemaError(f"X has {X.shape[1]} features, {type(self).__name__} was trained on {self.n_features_in_}")
        learn, binary, c1 = self.model_.learn_one, len(self.classes_) == 2, self.classes_.tolist()[-1]
        cols = range(X.shape[1])
        for row, label in zip(X.tolist(), y.tolist()):
            learn(dict(zip(cols, row)), label == c1 if binary else label)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row."""
        X = np.asarray(X, dtype=np.float64)
        predict, cols = self.model_.predict_one, range(X.shape[1])
        out = [predict(dict(zip(cols, row))) for row in X.tolist()]
        if len(self.classes_) == 2:
            return self.classes_[np.asarray([bool(v) for v in out], dtype=int)]
        return np.asarray(out)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Rows x ``classes_`` probabilities (0 for a class River did not name)."""
        X = np.asarray(X, dtype=np.float64)
        proba, cols = self.model_.predict_proba_one, range(X.shape[1])
        keys = [False, True] if len(self.classes_) == 2 else self.classes_.tolist()
        return np.asarray([[p.get(k, 0.0) for k in keys] for p in (proba(dict(zip(cols, r))) for r in X.tolist())])

    # ------------------------------------------------------------------ checkpoints
    def get_state(self) -> dict[str, Any]:
        """The fitted state as JSON (see the module notes); raises SchemaError if not writable."""
        if not hasattr(self, "model_"):
            return {"fitted": False}
        return {"fitted": True, "classes": self.classes_.tolist(), "n_features_in": self.n_features_in_,
                "model": _snapshot(self.model_, type(self.model_).__name__)}

    def set_state(self, state: dict[str, Any]) -> "RiverClassifier":
        """Restore :meth:`get_state` into a clone of this estimator's template."""
        for attr in ("model_", "classes_", "n_features_in_"):
            self.__dict__.pop(attr, None)
        if state.get("fitted"):
            self.model_ = self._template().clone()
            _restore(self.model_, state["model"])
            self.classes_ = np.asarray(state["classes"])
            self.n_features_in_ = int(state["n_features_in"])
        return self


_CACHE = {"cache": True}


def _snapshot(obj: Any, where: str, seen: set[int] | None = None) -> dict[str, Any]:
    seen = set() if seen is None else seen
    seen.add(id(obj))
    return {k: _value(v, f"{where}.{k}", seen) for k, v in vars(obj).items()}


def _value(v: Any, where: str, seen: set[int]) -> Any:
    from river.base import Base

    if v is None or isinstance(v, (bool, str, int)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else {"float": repr(v)}  # JSON has no inf/nan
    if isinstance(v, Base):
        # a River object met a second time is a cached reference (a pipeline's last step)
        return _CACHE if id(v) in seen else {"object": _snapshot(v, where, seen)}
    if isinstance(v, (tuple, frozenset, set)) or (callable(v) and not isinstance(v, type)):
        # derived data River rebuilds itself: a pipeline's plan, bound methods
        return _CACHE
    if _is_mapping(v):
        items = [[k, _value(v[k], f"{where}[{k!r}]", seen)] for k in list(v)]
        return _CACHE if any(x is _CACHE for _, x in items) else {"map": items}
    raise SchemaError(f"{where} is a {type(v).__name__}: this River model cannot be checkpointed as JSON; "
                      "it resumes only by replaying the stream")


def _is_mapping(v: Any) -> bool:
    return isinstance(v, dict) or type(v).__name__ == "VectorDict"


def _restore(obj: Any, state: dict[str, Any]) -> None:
    for k, s in state.items():
        if isinstance(s, dict) and "cache" in s:
            continue  # left as the fresh clone has it: River rebuilds it when needed
        setattr(obj, k, _restored(getattr(obj, k, None), s))


def _restored(current: Any, s: Any) -> Any:
    if not isinstance(s, dict):
        return s
    if "float" in s:
        return float(s["float"])
    if "object" in s:
        _restore(current, s["object"])
        return current
    # a mapping: refill the clone's own (keeps defaultdict factories and River's VectorDict)
    old = {k: current[k] for k in list(current)} if current is not None else {}
    current.clear()
    for k, v in s["map"]:
        current[k] = _restored(old.get(k), v)
    return current

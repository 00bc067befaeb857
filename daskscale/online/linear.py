"""Prediction of a fitted scikit-learn linear classifier on a batch already checked.

The prequential loop predicts every batch before it learns it; for batches of a few thousand
rows, scikit-learn's per-call input validation costs more than the prediction. This module
does the same arithmetic without the checks, for the classes whose ``predict`` is exactly
scikit-learn's linear one; ``tests/online/test_online_learner.py`` pins bit-identical results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import SGDClassifier

__all__ = ["linear_predict"]


def linear_predict(model: Any, X: np.ndarray) -> np.ndarray | None:
    """``model.predict(X)`` for a fitted scikit-learn linear classifier, without its checks.

    scikit-learn's ``predict`` re-validates the batch on every call, which costs more than
    the prediction itself for batches of a few thousand rows. For a class that inherits
    scikit-learn's linear ``predict`` and ``decision_function`` unchanged (SGDClassifier,
    Perceptron, PassiveAggressiveClassifier), this computes the same thing, with the same
    operations in the same order (``X @ coef_.T + intercept_``, then the sign or the argmax
    into ``classes_``), on a batch the learner has already checked. None for any other model.
    """
    cls = type(model)
    if (getattr(cls, "predict", None) is not SGDClassifier.predict
            or getattr(cls, "decision_function", None) is not SGDClassifier.decision_function
            or X.dtype.kind != "f" or getattr(model, "coef_", None) is None or model.coef_.ndim != 2):
        return None
    scores = X @ model.coef_.T + model.intercept_
    index = (scores[:, 0] > 0).astype(np.intp) if scores.shape[1] == 1 else scores.argmax(axis=1)
    return model.classes_.take(index)

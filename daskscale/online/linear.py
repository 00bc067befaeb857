"""Lean linear classifiers for the prequential loop: River's logistic regression on NumPy batches.

The prequential loop predicts every micro-batch before it learns it. With events of one row,
micro-batches are small (8 to 32 rows) and what a model costs per call, not per row, bounds
the throughput: scikit-learn's ``SGDClassifier.partial_fit`` validates its input and builds
a Cython dataset on every call, about 20 times River's cost for a whole row
(``learn_one`` + ``predict_one``) measured side by side; its ``predict`` re-validates too.

- :class:`OnlineLogisticRegression`: River's ``linear_model.LogisticRegression()`` (plain SGD
  on the log loss, learning rate 0.01 for weights and intercept, no penalty, weights from
  zero) written as NumPy steps over a batch: the gradients of up to ``step_rows`` rows are
  taken at the same weights and summed, so each row moves the weights by the step River's
  ``learn_one`` would (a step of one row is exactly River's update). A step costs a handful of
  NumPy calls whatever its rows, so a micro-batch costs microseconds, and a 10,000-row batch
  is about 160 steps. :meth:`OnlineLogisticRegression.predict_then_learn` predicts a
  micro-batch's rows as one-row SGD would have (each after the rows before it, to first
  order) and learns it in the same step: the prequential learner's path. More than two classes: one-vs-rest, as ``SGDClassifier``; a label
  never seen becomes a new class (as River's models learn labels as they come), so a stream
  whose first rows all have one label is learned as it comes.
- :func:`linear_predict`: scikit-learn's linear ``predict`` without its checks, for a batch
  the learner has already checked.

Why these defaults (measured on the four shipped streams, prequential, online standard
scaling): River's constant 0.01 is what its users get and what the goal is stated against;
learning rate 0.03 gained 0.2-0.4 points on weather_rain and phishing but lost 1.3 on
sp500_direction, 0.1 lost on three streams; ``step_rows`` 1, 8 or 32 differed by less than
0.2 points (64 is the default: half the steps of a large batch); what costs accuracy is how
far behind the stream the model predicts (the micro-batch size), not the step, and
``predict_then_learn`` removes most of that (weather_rain, micro-batches of 32 rows: River's
accuracy to 0.01 point, 0.6 point below it when every row is predicted at the batch's first
weights). scikit-learn's default ``SGDClassifier()`` (hinge loss,
'optimal' schedule, ``alpha=1e-4``) was not used: its 'optimal' steps start near
``1 / (alpha * t0)``, large for a stream's first rows.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import SGDClassifier

from daskscale.errors import SchemaError

__all__ = ["OnlineLogisticRegression", "linear_predict"]


class OnlineLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression learned by plain SGD, River's defaults, in NumPy steps of rows.

    Parameters
    ----------
    learning_rate : float
        Step per row, for the weights and the intercept (River's ``optim.SGD(0.01)``).
    l2 : float
        L2 penalty per row (River's ``l2``), not applied to the intercept.
    step_rows : int
        Rows whose gradients are taken at the same weights (see the module notes).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(2000, 3)); y = (X[:, 0] - X[:, 1] > 0).astype(int)
    >>> m = OnlineLogisticRegression()
    >>> for a in range(0, 1500, 10):
    ...     m = m.partial_fit(X[a:a + 10], y[a:a + 10], classes=[0, 1])
    >>> float(m.score(X[1500:], y[1500:])) > 0.95, m.coef_.shape
    (True, (1, 3))
    """

    def __init__(self, learning_rate: float = 0.01, l2: float = 0.0, step_rows: int = 64):
        self.learning_rate = learning_rate
        self.l2 = l2
        self.step_rows = step_rows

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> "OnlineLogisticRegression":
        """One pass of SGD over the rows of ``(X, y)``, in order; new labels become new classes."""
        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise SchemaError(f"partial_fit takes X (rows x features) and y (rows,), got {X.shape} and {y.shape}")
        if not hasattr(self, "coef_"):
            self.classes_ = np.unique(y if classes is None else np.concatenate([np.asarray(classes), y]))
            self.coef_ = np.zeros((1 if self.classes_.size <= 2 else self.classes_.size, X.shape[1]))
            self.intercept_ = np.zeros(self.coef_.shape[0])
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise SchemaError(f"X has {X.shape[1]} features, {type(self).__name__} was trained on {self.n_features_in_}")
        self._steps(X, self._targets(y))
        return self

    def _targets(self, y: np.ndarray, known: bool = False) -> np.ndarray:
        """Rows x score columns of 0/1 targets for ``y``; labels never seen become new classes first.

        ``known``: the caller has checked that every label is one of ``classes_``.
        """
        c = self.classes_
        if (c.size == 2 and y.dtype.kind in "biu" and c.dtype.kind in "biu" and y.size and int(c[0]) == 0
                and int(c[-1]) == 1 and (known or y.dtype.kind == "b" or (int(y.min()) >= 0 and int(y.max()) <= 1))):
            return y[:, None]  # labels 0/1 (or False/True) against one score: the labels are the targets
        idx = np.searchsorted(c, y)
        if not (c.take(idx, mode="clip") == y).all():
            self._add_classes(np.setdiff1d(y, c))
            idx = np.searchsorted(self.classes_, y)
        if self.coef_.shape[0] == 1:
            # one weight vector: the score of classes_[-1] (of the only class while there is one)
            return (idx == self.classes_.size - 1)[:, None]
        return idx[:, None] == np.arange(self.classes_.size)

    def predict_then_learn(self, X_test: np.ndarray, X_train: np.ndarray, y: Any, *,
                           labels_known: bool = False) -> np.ndarray:
        """Predict the rows of a batch in order, as one-row SGD would have, then learn the batch.

        Row ``i`` is predicted by the weights before the batch plus the steps of rows
        ``0..i-1`` of the batch, to first order: its score is
        ``s_i = s0_i - learning_rate * sum_{j<i} g_j (x_j . x_i + 1)``, with ``s0`` the scores
        at the weights before the batch and ``g_j = expit(s0_j) - y_j``; the batch is then
        learned with the gradients at those scores, ``g = expit(s) - y``. Only earlier rows
        (and their labels) enter a row's prediction: it stays test-then-train. This removes
        most of what predicting a micro-batch at its first row's weights costs (weather_rain,
        32 rows: 0.6 point of River's accuracy, 0.05 with the correction), for about
        eight NumPy calls. A batch of more than ``step_rows`` rows goes ``step_rows`` rows at a
        time, each piece predicted after the pieces before it are learned: a large event is
        predicted as its rows would have been one by one (weather_rain, 100-row events: 1.12
        points below River when the whole event was predicted at its first row's weights).

        ``X_test``: the rows as the model should see them to predict (a learner's features
        before the batch); ``X_train``: as it should learn them (the features after). Both
        float64, finite, 2-D, checked by the caller; the model must have learned a batch.
        ``labels_known``: the caller has checked that every label is one of ``classes_``.
        """
        y = np.asarray(y)
        Y = self._targets(y, labels_known)
        n, step = X_test.shape[0], max(1, int(self.step_rows))
        if n == 1:
            pred = self.predict(X_test)
            self._steps(X_train, Y)
            return pred
        preds = [self._predict_then_learn(X_test[a:a + step], X_train[a:a + step], Y[a:a + step])
                 for a in range(0, n, step)]
        return preds[0] if len(preds) == 1 else np.concatenate(preds)

    def _predict_then_learn(self, X_test: np.ndarray, X_train: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """:meth:`predict_then_learn` of at most ``step_rows`` rows, targets ``Y`` (:meth:`_targets`)."""
        n = X_test.shape[0]
        W, b, lr = self.coef_, self.intercept_, self.learning_rate
        S0 = X_test @ W.T
        S0 += b
        K = X_test @ X_test.T
        K += 1.0
        K *= _lower(n, lr)  # lr * (x_j . x_i + 1) for the rows j before row i
        G = expit(S0)
        G -= Y
        S = K @ G
        np.subtract(S0, S, out=S)
        pred = self._classes_of(S)
        G = expit(S, out=S)
        G -= Y
        G *= lr
        if self.l2:
            W *= 1.0 - lr * self.l2 * n
        W -= G.T @ X_train
        b -= G.sum(axis=0)
        return pred

    def _add_classes(self, new: np.ndarray) -> None:
        """Make room for labels never seen, as River's one-vs-rest does when a class first comes.

        From one class to two, the vector (the first class's score) becomes the score of the
        larger label, negated if that is the new one: the model is then exactly the binary
        logistic regression of every row so far. From two classes to more, the vector ``w``
        becomes the rows ``-w`` and ``w``; a new class's row starts from zero.
        """
        old, W, b = self.classes_, self.coef_, self.intercept_
        classes = np.union1d(old, new)
        if classes.size == 2:
            sign = 1.0 if old.size == 2 or old[0] == classes[-1] else -1.0
            self.classes_, self.coef_, self.intercept_ = classes, sign * W, sign * b
            return
        if W.shape[0] == 1:  # one vector -> a row per class (OvR); -w scores the other class
            W, b = (np.vstack([-W, W]), np.r_[-b, b]) if old.size == 2 else (W, b)
        rows = np.searchsorted(classes, old)
        self.coef_ = np.zeros((classes.size, W.shape[1]))
        self.intercept_ = np.zeros(classes.size)
        self.coef_[rows], self.intercept_[rows] = W, b
        self.classes_ = classes

    def _steps(self, X: np.ndarray, Y: np.ndarray) -> None:
        """SGD over the rows of ``X`` against the targets ``Y`` (see :meth:`_targets`), ``step_rows`` at a time."""
        W, b, lr, l2, step = self.coef_, self.intercept_, self.learning_rate, self.l2, max(1, int(self.step_rows))
        for a in range(0, X.shape[0], step):
            Xs = X[a:a + step] if X.shape[0] > step else X
            G = Xs @ W.T
            G += b
            expit(G, out=G)
            G -= Y[a:a + step] if X.shape[0] > step else Y  # d(log loss)/d(score) of each row: p - y
            if l2:
                W *= 1.0 - lr * l2 * Xs.shape[0]
            W -= lr * (G.T @ Xs)
            b -= lr * G.sum(axis=0)

    def decision_function(self, X: Any) -> np.ndarray:
        """Scores: ``X @ coef_.T + intercept_`` (one column for two classes, raveled)."""
        s = np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_
        return s[:, 0] if s.shape[1] == 1 else s

    def predict(self, X: Any) -> np.ndarray:
        """The class of highest score."""
        return self._classes_of(np.asarray(X, dtype=np.float64) @ self.coef_.T + self.intercept_)

    def _classes_of(self, S: np.ndarray) -> np.ndarray:
        """The class of highest score of each row of ``S`` (rows x score columns)."""
        if S.shape[1] > 1:
            return self.classes_.take(S.argmax(axis=1))
        if self.classes_.size == 1:
            return np.repeat(self.classes_, S.shape[0])
        return self.classes_.take(S[:, 0] > 0)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Rows x ``classes_`` probabilities (one-vs-rest, normalised, for more than two classes)."""
        p = expit(self.decision_function(X))
        if p.ndim == 1:
            return np.ones((p.size, 1)) if self.classes_.size == 1 else np.column_stack([1.0 - p, p])
        return p / p.sum(axis=1, keepdims=True)


@functools.lru_cache(maxsize=64)
def _lower(n: int, lr: float) -> np.ndarray:
    """``lr`` below the diagonal of an ``n`` x ``n`` matrix, 0 on and above it (read-only, shared)."""
    out = lr * np.tri(n, n, -1)
    out.flags.writeable = False
    return out


def linear_predict(model: Any, X: np.ndarray) -> np.ndarray | None:
    """``model.predict(X)`` for a fitted scikit-learn linear classifier, without its checks.

    scikit-learn's ``predict`` re-validates the batch on every call, which costs more than
    the prediction itself for batches of a few thousand rows. For a class that inherits
    scikit-learn's linear ``predict`` and ``decision_function`` unchanged (SGDClassifier,
    Perceptron, PassiveAggressiveClassifier), this computes the same thing, with the same
    operations in the same order (``X @ coef_.T + intercept_``, then the sign or the argmax
    into ``classes_``), on a batch the learner has already checked; for an
    :class:`OnlineLogisticRegression` its own ``predict`` (it checks nothing). None for any
    other model.
    """
    cls = type(model)
    if cls is OnlineLogisticRegression:
        return model.predict(X)
    if (getattr(cls, "predict", None) is not SGDClassifier.predict
            or getattr(cls, "decision_function", None) is not SGDClassifier.decision_function
            or X.dtype.kind != "f" or getattr(model, "coef_", None) is None or model.coef_.ndim != 2):
        return None
    scores = X @ model.coef_.T + model.intercept_
    index = (scores[:, 0] > 0).astype(np.intp) if scores.shape[1] == 1 else scores.argmax(axis=1)
    return model.classes_.take(index)

"""Prequential learning: test-then-train, metrics, bad batches, delayed labels, drift reactions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import SGDClassifier, SGDRegressor
from sklearn.naive_bayes import MultinomialNB

from daskscale.datasets.stream import stream_batches
from daskscale.errors import InputTypeError, SchemaError
from daskscale.online import DDM, DriftDetector, OnlineLearner

SGD = SGDClassifier(random_state=0)


@pytest.fixture(scope="module")
def batches():
    return list(stream_batches(12_000, 5, batch_rows=500, seed=1))


def manual_prequential(est, batches, classes=(0, 1), delay=0):
    """Test-then-train written out by hand, to check the learner against."""
    est, correct, scored, preds, trained = clone(est), 0, 0, [], False
    for i, (X, y) in enumerate(batches):
        preds.append(est.predict(X) if trained else None)
        if i >= delay:
            Xd, yd = batches[i - delay]
            if preds[i - delay] is not None:
                correct += int((preds[i - delay] == yd).sum())
                scored += len(yd)
            est.partial_fit(Xd, yd, classes=np.array(classes))
            trained = True
    return est, correct / scored, scored


def test_prequential_matches_hand_written_loop(batches):
    ol = OnlineLearner(SGD, preprocess=None, publish=False).run(batches)
    est, acc, scored = manual_prequential(SGD, batches)
    assert ol.n_batches_ == len(batches) and ol.n_rows_ == 12_000
    assert ol.n_scored_ == scored == 11_500  # the first batch is trained, never scored
    assert ol.cumulative_accuracy == pytest.approx(acc, abs=1e-12)
    np.testing.assert_array_equal(ol.estimator_.coef_, est.coef_)
    h = ol.history()
    assert "accuracy" not in h.columns[h.iloc[0].notna()] and h.accuracy.iloc[1:].between(0, 1).all()
    w = h.iloc[-ol.window:]
    assert ol.rolling_accuracy == pytest.approx(1 - ((1 - w.accuracy) * w.rows).sum() / w.rows.sum())
    assert 0.6 < acc < 0.99


@pytest.mark.parametrize("labels, dtype", [((10, 20, 30), np.float32), (("a", "b", "c"), np.float64)])
def test_multiclass_prequential_matches_hand_written_loop(labels, dtype):
    # the learner predicts linear models from coef_/intercept_ itself: same labels as predict()
    from sklearn.linear_model import Perceptron

    rng = np.random.default_rng(5)
    W = rng.normal(size=(4, 3))
    bs = [(X.astype(dtype), np.asarray(labels)[(X @ W).argmax(1)]) for X in rng.normal(size=(15, 200, 4))]
    for est in (SGDClassifier(random_state=0), Perceptron(random_state=0)):
        ol = OnlineLearner(est, preprocess=None, classes=labels, publish=False).run(bs)
        ref, acc, scored = manual_prequential(est, bs, classes=labels)
        assert ol.n_scored_ == scored and ol.n_skipped_ == 0
        assert ol.cumulative_accuracy == pytest.approx(acc, abs=1e-12) and 0.5 < acc < 1
        np.testing.assert_array_equal(ol.estimator_.coef_, ref.coef_)


@pytest.mark.parametrize("classes, y, unseen", [
    ([0, 1, 2], [0, 2, 3], [3]), ([0, 1, 2], [-1, 0, 1], [-1]), ([0, 2, 5], [0, 2, 1], [1]),
    ([0, 1, 2], [0.0, 1.5, 2.0], [1.5]),
])
def test_label_outside_the_known_classes_is_skipped(classes, y, unseen):
    X = np.zeros((3, 2))
    ol = OnlineLearner(SGD, preprocess=None, classes=classes, publish=False)
    assert ol.learn_batch(X, np.array(classes)) is not None
    assert ol.learn_batch(X, np.array(y)) is None
    assert ol.n_skipped_ == 1 and f"labels {unseen}" in ol.skipped_[0]["reason"]


def test_streaming_feature_statistics_match_numpy(batches):
    ol = OnlineLearner(SGD, preprocess=None, publish=False).run(batches)
    X = np.concatenate([b[0] for b in batches]).astype(np.float64)
    st = ol.feature_statistics()
    np.testing.assert_allclose(st["mean"], X.mean(0), rtol=1e-9)
    np.testing.assert_allclose(st["var"], X.var(0, ddof=1), rtol=1e-9)


def test_delayed_labels_score_old_predictions(batches):
    ol = OnlineLearner(SGD, preprocess=None, label_delay=2, publish=False).run(batches)
    est, acc, scored = manual_prequential(SGD, batches, delay=2)
    assert ol.n_batches_ == len(batches) - 2 and len(ol.pending_) == 2
    # 2 batches wait for labels; batches 0-2 were predicted before any model existed
    assert ol.n_scored_ == (24 - 2 - 3) * 500
    assert ol.cumulative_accuracy == pytest.approx(acc, abs=1e-12) and ol.n_scored_ == scored
    np.testing.assert_array_equal(ol.estimator_.coef_, est.coef_)


def test_regressor_reports_mse():
    rng = np.random.default_rng(0)
    bs = [(X, X @ [1.0, -2.0]) for X in rng.normal(size=(10, 100, 2))]
    ol = OnlineLearner(SGDRegressor(random_state=0), metrics=("mse",), publish=False).run(bs)
    h = ol.history()
    assert h.mse.iloc[-1] < h.mse.iloc[1] and "cumulative_mse" in h


@pytest.mark.parametrize("bad, reason", [
    ((np.zeros((10, 4)), np.zeros(10, int)), "4 features"),
    ((np.array([["a"] * 5] * 3), np.zeros(3, int)), "dtype"),
    ((np.full((3, 5), np.nan), np.zeros(3, int)), "NaN"),
    ((np.zeros((3, 5)), np.array([0, 1, 7])), "never seen"),
    ((np.zeros((3, 5)), None), "no labels"),
])
def test_bad_batch_is_skipped_counted_and_model_untouched(batches, bad, reason):
    ol = OnlineLearner(SGD, preprocess=None, publish=False).run(batches[:3])
    coef = ol.estimator_.coef_.copy()
    assert ol.learn_batch(*bad, position="p-bad") is None
    assert ol.n_skipped_ == 1 and reason in ol.skipped_[0]["reason"] and ol.skipped_[0]["position"] == "p-bad"
    np.testing.assert_array_equal(ol.estimator_.coef_, coef)
    assert ol.n_batches_ == 3
    strict = OnlineLearner(SGD, preprocess=None, on_bad_batch="raise", publish=False).run(batches[:3])
    with pytest.raises(SchemaError, match=reason):
        strict.learn_batch(*bad)


def test_estimator_without_partial_fit_is_refused():
    from sklearn.linear_model import LogisticRegression

    X, y = np.ones((4, 2)), np.array([0, 1, 0, 1])
    # scikit-learn's convention: parameters are checked at first use, not in __init__
    with pytest.raises(InputTypeError, match="partial_fit"):
        OnlineLearner(LogisticRegression()).learn_batch(X, y)
    with pytest.raises(SchemaError, match="reaction"):
        OnlineLearner(SGD, preprocess=None, reaction="panic").run([(X, y)])
    with pytest.raises(SchemaError, match="on_bad_batch"):
        OnlineLearner(SGD, preprocess=None, on_bad_batch="ignore").partial_fit(X, y)


def test_sklearn_conventions_hold(batches):
    """__init__ stores parameters only; get/set_params and clone work; learned attributes end in '_'."""
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,
                                                check_parameters_default_constructible, check_set_params)

    ol = OnlineLearner(SGD, preprocess=None, window=7, publish=False)
    for check in (check_get_params_invariance, check_set_params, check_no_attributes_set_in_init,
                  check_parameters_default_constructible):
        check("OnlineLearner", ol)
    assert vars(ol) == ol.get_params(deep=False)
    assert ol.run_id is None and ol.metrics == ("accuracy",)
    twin = clone(ol)
    assert twin.get_params()["window"] == 7 and twin.estimator is not ol.estimator
    with pytest.raises(NotFittedError):
        ol.predict(np.ones((2, 3)))
    batches = batches[:5]
    ol.run(batches)
    learned = set(vars(ol)) - set(ol.get_params(deep=False))
    assert {"estimator_", "n_batches_", "events_", "run_id_"} <= learned
    assert all(k.endswith("_") or k.startswith("_") for k in learned), learned
    assert ol.run_id is None and ol.run_id_.startswith("stream-")
    assert ol.predict(batches[0][0]).shape == (len(batches[0][0]),)
    # a learned attribute read before the first batch (as the CLI does) makes the state then
    fresh = OnlineLearner(SGD, preprocess=None, publish=False)
    assert fresh.events_ == [] and fresh.n_rows_ == 0
    assert OnlineLearner(SGD, preprocess=None, run_id="mine", publish=False).run(batches).run_id_ == "mine"


class DriftAt(DriftDetector):
    """A real detector with a known answer: drift at batch ``at`` (counting scored batches)."""

    name = "drift-at"

    def __init__(self, at: int):
        self.at = at
        self.reset()

    def reset(self):
        self.count_ = 0

    def update(self, n_errors, n):
        self.count_ += 1
        return "drift" if self.count_ == self.at else None


def _fit_fresh(batches):
    est = clone(SGD)
    for X, y in batches:
        est.partial_fit(X, y, classes=np.array([0, 1]))
    return est


@pytest.mark.parametrize("reaction", ["reset", "retrain", None])
def test_drift_reactions_do_what_they_document(batches, reaction):
    # scored batches start at batch 1, so the 10th update is batch 10
    ol = OnlineLearner(SGD, preprocess=None, drift_detector=DriftAt(10), reaction=reaction, recent=3, publish=False).run(batches)
    assert [e["batch"] for e in ol.events_] == [10] and ol.history_[10]["drift"]
    first = {"reset": 10, "retrain": 8, None: 0}[reaction]
    np.testing.assert_array_equal(ol.estimator_.coef_, _fit_fresh(batches[first:]).coef_)


def test_background_model_replaces_the_model_on_drift(batches):
    # no warnings: the background model restarts every `window` batches (here at batch 8)
    ol = OnlineLearner(SGD, preprocess=None, drift_detector=DriftAt(11), reaction="background", window=4, publish=False).run(batches)
    np.testing.assert_array_equal(ol.estimator_.coef_, _fit_fresh(batches[8:]).coef_)


def test_ddm_detects_label_flip_and_multinomial_nb_works():
    bs = [(X, y if i < 30 else 1 - y) for i, (X, y) in enumerate(stream_batches(20_000, 6, batch_rows=500, seed=3))]
    ol = OnlineLearner(SGD, preprocess=None, drift_detector=DDM(), reaction="reset", publish=False).run(bs)
    assert any(30 <= e["batch"] <= 31 for e in ol.events_), ol.events_
    nb = OnlineLearner(MultinomialNB(), preprocess=None, publish=False).run([(np.abs(X), y) for X, y in bs[:10]])
    assert nb.n_batches_ == 10 and 0.4 < nb.cumulative_accuracy <= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_linear_predict_fast_path_is_taken_and_equals_predict(dtype, n_classes):
    """The learner's fast path: taken for scikit-learn's linear classifiers (so a scikit-learn
    upgrade that breaks its test is seen), identical to ``predict``; refused for anything else."""
    from sklearn.linear_model import PassiveAggressiveClassifier, Perceptron, SGDClassifier
    from sklearn.naive_bayes import GaussianNB

    from daskscale.online.linear import linear_predict

    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(500, 6)).astype(dtype)
    y = np.array(["a", "b", "c"])[rng.integers(0, n_classes, 500)]
    for est in (SGDClassifier(random_state=0), Perceptron(random_state=0), PassiveAggressiveClassifier(random_state=0)):
        est.partial_fit(X, y, classes=np.unique(y))
        fast = linear_predict(est, X)
        assert fast is not None, type(est).__name__
        np.testing.assert_array_equal(fast, est.predict(X))
    assert linear_predict(GaussianNB().fit(X, y), X) is None


@pytest.mark.parametrize("dtype", ["<i8", ">i8", "<i4", ">i2", "i1", "u1", "<u4"])
def test_labels_of_classes_0_to_k_are_checked_in_any_integer_type_and_byte_order(dtype):
    X = np.zeros((4, 2))
    ol = OnlineLearner(SGD, preprocess=None, classes=[0, 1, 2], publish=False)
    assert ol.learn_batch(X, np.array([0, 1, 2, 1], dtype=dtype)) is not None
    assert ol.learn_batch(X, np.array([2, 2, 0, 0], dtype=dtype)) is not None
    bad = [0, 3, 1, 1] if np.dtype(dtype).kind == "u" else [0, -1, 1, 3]
    assert ol.learn_batch(X, np.array(bad, dtype=dtype)) is None
    unseen = [3] if np.dtype(dtype).kind == "u" else [-1, 3]
    assert ol.n_skipped_ == 1 and f"labels {unseen}" in ol.skipped_[0]["reason"]
    assert ol.n_batches_ == 2


def test_nan_or_infinite_values_are_found_whatever_the_sum_of_the_batch():
    ol = OnlineLearner(preprocess=None, classes=[0, 1], publish=False)
    y = np.array([0, 1, 0])
    big = np.full((3, 2), 4e307)  # finite values whose sum (2.4e308) overflows: learned, not skipped
    with np.errstate(over="ignore"):
        assert not np.isfinite(big.sum())
    with np.errstate(over="ignore", invalid="ignore"):  # its running moments overflow (squares of 4e307)
        assert ol.learn_batch(big, y) is not None
    for bad in ([np.inf, -np.inf], [np.nan, 1.0], [np.inf, 0.0]):
        X = np.zeros((3, 2))
        X[1] = bad
        assert ol.learn_batch(X, y) is None
    assert ol.n_skipped_ == 3 and all("NaN or infinite" in s["reason"] for s in ol.skipped_)
    assert ol.n_batches_ == 1
    f32 = OnlineLearner(preprocess=None, classes=[0, 1], publish=False)
    assert f32.learn_batch(np.ones((3, 2), dtype=np.float32), y) is not None and f32.n_batches_ == 1

"""OnlineLearner on events: default scaling + River's model, micro-batches, push API, checkpoints."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from daskscale.datasets.real import load_stream
from daskscale.online import DDM, EventSource, OnlineLearner, RiverClassifier
from daskscale.online.evaluate import Features, prequential
from daskscale.online.events import DEFAULT_MAX_BATCH, EventBatcher
from daskscale.online.linear import OnlineLogisticRegression
from daskscale.online.preprocess import OnlineOneHot


def _events(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3)) * [1, 1000, 0.01] + [0, 5e4, 1]
    y = ((X[:, 0] + (X[:, 1] - 5e4) / 1000) > 0).astype(int)
    return X, y, [{"a": a, "b": b, "c": c, "y": int(t)} for (a, b, c), t in zip(X.tolist(), y.tolist())]


def test_default_learner_is_the_prequential_loop_with_scaling_and_rivers_model():
    X, y, events = _events()
    ol = OnlineLearner(publish=False).run(events, max_batch=8)
    ref = prequential(EventBatcher(max_batch=8).batches(events), OnlineLogisticRegression())
    s = ol.summary()
    assert s["rows"] == 1500 and s["scored_rows"] == ref.metrics.n_scored == 1492 and s["max_lag_rows"] == 8
    assert ol.cumulative_accuracy == pytest.approx(ref.metrics.accuracy, abs=1e-12) and ol.cumulative_accuracy > 0.9
    np.testing.assert_array_equal(ol.estimator_.coef_, ref.model.coef_)
    np.testing.assert_allclose(ol.features_.scaler.mean_, X.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(ol.feature_statistics()["var"], X.var(axis=0, ddof=1), rtol=1e-9)
    # predict goes through the scaler: raw rows in, the model's labels out
    np.testing.assert_array_equal(ol.predict(X[:20]), ref.model.predict(ref.features.transform(X[:20])))


@pytest.mark.parametrize("stream", ["weather_rain", "phishing", "shuttle", "sp500_direction"])
def test_accuracy_on_each_shipped_stream_is_within_half_a_point_of_rivers_pipeline(stream):
    from river import linear_model, metrics, preprocessing

    X, y, _ = load_stream(stream)
    X, y = X[:12_000], y[:12_000]
    river, acc = preprocessing.StandardScaler() | linear_model.LogisticRegression(), metrics.Accuracy()
    for xi, yi in zip(X.tolist(), y.tolist()):
        d = dict(enumerate(xi))
        acc.update(bool(yi), river.predict_one(d))
        river.learn_one(d, bool(yi))
    events = [dict(enumerate(r), y=t) for r, t in zip(X.tolist(), y.tolist())]
    ol = OnlineLearner(publish=False).run(events)  # the default micro-batch size
    assert ol.summary()["max_lag_rows"] == DEFAULT_MAX_BATCH == 32
    assert 100 * ol.cumulative_accuracy >= 100 * acc.get() - 0.5, (ol.cumulative_accuracy, acc.get())


def test_ddm_is_fed_the_batch_row_bits():
    seen = []

    class Recording(DDM):
        def update(self, n_errors, n, errors=None):
            seen.append((n_errors, n, None if errors is None else np.asarray(errors).copy()))
            return super().update(n_errors, n, errors=errors)

    X, y, events = _events(400, seed=3)
    ol = OnlineLearner(drift_detector=Recording(min_rows=30), publish=False, preprocess=None)
    ol.run(events, max_batch=50)
    assert len(seen) == 7 and all(e is not None and e.shape == (50,) and e.sum() == k for k, _, e in seen)
    _, _, events = _events(1500, seed=4)
    flipped = [dict(e, y=1 - e["y"]) if i >= 600 else e for i, e in enumerate(events)]
    ddm = OnlineLearner(drift_detector=DDM(min_rows=100), publish=False).run(flipped, max_batch=25)
    assert ddm.events_ and 600 < ddm.events_[0]["rows_seen"] <= 700  # the flip found within 4 batches


def test_push_stream_learns_from_threads_and_reports_lag_and_latency():
    X, y, events = _events(2000, seed=5)
    ol = OnlineLearner(publish=False)
    records = []
    with ol.stream(max_batch=32, max_latency=0.02, callback=records.append) as s:
        threads = [threading.Thread(target=lambda part: [s.put(e) for e in part], args=(events[i::2],))
                   for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    summ = ol.summary()
    assert summ["rows"] == 2000 and len(records) == summ["batches"]
    assert 1 <= summ["max_lag_rows"] and all(r["lag_rows"] >= r["rows"] for r in records)
    assert 0 < summ["latency_p50_s"] <= summ["latency_p95_s"] < 5 and summ["cumulative_accuracy"] > 0.85
    with pytest.raises(Exception, match="no feature fields"):
        with OnlineLearner(publish=False).stream(max_batch=2) as bad:
            bad.put({"y": 1})


def test_kafka_records_and_generators_of_dicts_are_read_as_events():
    X, y, events = _events(300, seed=6)

    class Record:  # kafka-python's ConsumerRecord shape: the JSON payload in .value
        def __init__(self, e):
            import json
            self.value = json.dumps(e).encode()

    a = OnlineLearner(publish=False).run([Record(e) for e in events], max_batch=10)
    b = OnlineLearner(publish=False).run(e for e in events)
    c = OnlineLearner(publish=False).run(EventSource(events, max_batch=10))
    assert a.n_rows_ == b.n_rows_ == c.n_rows_ == 300 and a.n_batches_ == 30
    np.testing.assert_array_equal(a.estimator_.coef_, c.estimator_.coef_)


def test_checkpoint_resumes_scaler_one_hot_and_model_exactly(tmp_path):
    rng = np.random.default_rng(7)
    cities = ["oslo", "lima", "pune", "kyiv"]
    events = [{"x": float(v) * 100 + 7, "city": cities[k], "y": int(k >= 2)}
              for v, k in zip(rng.normal(size=1200), rng.integers(0, 4, 1200))]
    feats = Features(onehot=[OnlineOneHot(max_categories=2, n_buckets=2)])
    kw = dict(preprocess=feats, publish=False)
    src = dict(categorical=["city"], max_batch=16)
    whole = OnlineLearner(**kw).run(lambda: iter(events), **src)
    part = OnlineLearner(**kw).run(lambda: iter(events), checkpoint=tmp_path / "ck.skops", max_batches=40, **src)
    assert part.n_rows_ == 640
    back = OnlineLearner.load(tmp_path / "ck.skops")
    assert back.features_.onehot[0].categories_ == part.features_.onehot[0].categories_
    back.run(lambda: iter(events), **src)
    assert back.n_rows_ == 1200 and back.cumulative_accuracy == whole.cumulative_accuracy > 0.7
    np.testing.assert_array_equal(back.estimator_.coef_, whole.estimator_.coef_)
    np.testing.assert_array_equal(back.features_.scaler.mean_, whole.features_.scaler.mean_)
    assert feats.scaler.n_samples_seen_ == 0  # the parameter given is never fitted


def test_river_model_checkpoints_as_json_and_resumes_exactly(tmp_path):
    from daskscale.models import read_metadata

    X, y, events = _events(600, seed=8)
    # one-row batches: the first has one label, so the classes are given
    kw = dict(preprocess=None, classes=[0, 1], publish=False)
    whole = OnlineLearner(RiverClassifier(), **kw).run(lambda: iter(events), max_batch=1)
    part = OnlineLearner(RiverClassifier(), **kw)
    part.run(lambda: iter(events), max_batch=1, checkpoint=tmp_path / "r.skops", max_batches=250)
    meta = read_metadata(tmp_path / "r.skops")
    assert meta["river"]["estimator"]["fitted"] and "model" in meta["river"]["estimator"]
    back = OnlineLearner.load(tmp_path / "r.skops").run(lambda: iter(events), max_batch=1)
    assert back.n_rows_ == 600 and back.cumulative_accuracy == whole.cumulative_accuracy
    np.testing.assert_array_equal(back.predict(X), whole.predict(X))


class _CallLog(__import__("sklearn.linear_model", fromlist=["SGDClassifier"]).SGDClassifier):
    """SGDClassifier that keeps the ``classes`` each ``partial_fit`` call was given."""

    def partial_fit(self, X, y, classes=None, **kw):
        self.__dict__.setdefault("given_", []).append(None if classes is None else list(classes))
        return super().partial_fit(X, y, classes=classes, **kw)


def test_the_model_update_is_the_block_loops_step_classes_first_call_only_errors_named_by_the_batch():
    from sklearn.naive_bayes import MultinomialNB

    from daskscale.errors import SchemaError

    _, y, events = _events(400)
    for ev in events[:16]:
        ev["y"] = 0                                          # the first batch has one label only
    ol = OnlineLearner(_CallLog(random_state=0), classes=[0, 1], publish=False).run(events, max_batch=16)
    assert ol.estimator_.given_[0] == [0, 1] and ol.estimator_.given_[1:] == [None] * 24
    # drift resets the model: the new one gets the classes on its own first call
    again = OnlineLearner(_CallLog(random_state=0), classes=[0, 1], drift_detector=DDM(min_rows=100), publish=False)
    again.run(events + [dict(ev, y=1 - ev["y"]) for ev in events], max_batch=16)
    given = again.estimator_.given_
    assert again.events_ and len(given) < again.n_trained_                 # a new model since the drift
    assert given[0] == [0, 1] and given[1:] == [None] * (len(given) - 1)
    # an estimator's ValueError comes back as a SchemaError naming the batch (scaled rows are negative)
    with pytest.raises(SchemaError, match=r"^events 0:16: Negative values in data passed to MultinomialNB"):
        OnlineLearner(MultinomialNB(), publish=False).run(events, max_batch=16)
    with pytest.raises(SchemaError, match=r"^events 0:50: Negative values in data passed to MultinomialNB"):
        prequential(EventBatcher(max_batch=50).batches(events), MultinomialNB())

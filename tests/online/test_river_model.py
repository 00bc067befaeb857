"""RiverClassifier: a River model behind partial_fit/predict on arrays, JSON checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
from river import linear_model, metrics, preprocessing, tree

from daskscale.errors import SchemaError
from daskscale.models import read_metadata, save_model
from daskscale.online.river_model import RiverClassifier


def _data(n=800, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)) * [1, 10, 100, 0.1] + [0, 5, -50, 3]
    return X, (X[:, 0] + X[:, 1] / 10 > 0.5).astype(int)


def test_prequential_run_equals_rivers_own_loop():
    X, y = _data()
    m, preds = RiverClassifier(), []
    m.partial_fit(X[:1], y[:1], classes=[0, 1])
    for i in range(1, len(X)):
        preds.append(m.predict(X[i:i + 1])[0])
        m.partial_fit(X[i:i + 1], y[i:i + 1])
    ref, acc, acc_ours = preprocessing.StandardScaler() | linear_model.LogisticRegression(), metrics.Accuracy(), 0
    ref.learn_one(dict(enumerate(X[0])), bool(y[0]))
    for i in range(1, len(X)):
        x = dict(enumerate(X[i]))
        acc.update(bool(y[i]), ref.predict_one(x))
        ref.learn_one(x, bool(y[i]))
    acc_ours = float(np.mean(np.asarray(preds) == y[1:]))
    assert acc_ours == pytest.approx(acc.get(), abs=1e-12) and acc_ours > 0.9
    p_ref = [ref.predict_proba_one(dict(enumerate(r)))[True] for r in X[:20]]
    np.testing.assert_allclose(m.predict_proba(X[:20])[:, 1], p_ref, rtol=1e-12)


def test_labels_come_back_in_the_callers_classes():
    X, y = _data()
    labels = np.array(["no", "yes"])[y]
    m = RiverClassifier().partial_fit(X, labels)
    assert set(m.predict(X[:50])) <= {"no", "yes"} and m.classes_.tolist() == ["no", "yes"]
    assert m.score(X, labels) > 0.9


def test_json_checkpoint_in_model_metadata_resumes_identically(tmp_path):
    X, y = _data()
    full = RiverClassifier().partial_fit(X[:400], y[:400], classes=[0, 1])
    full.predict(X[:3])  # a pipeline builds caches on predict: they must not break the state
    save_model({"kind": "river"}, tmp_path / "m.skops", metadata={"river": full.get_state()})
    back = RiverClassifier().set_state(read_metadata(tmp_path / "m.skops")["river"])
    full.partial_fit(X[400:700], y[400:700])
    back.partial_fit(X[400:700], y[400:700])
    np.testing.assert_array_equal(back.predict_proba(X[700:]), full.predict_proba(X[700:]))
    assert RiverClassifier().set_state(RiverClassifier().get_state()).__dict__.get("model_") is None


def test_a_model_without_a_json_state_says_so_and_resumes_by_replay():
    X, y = _data(300)
    m = RiverClassifier(tree.HoeffdingTreeClassifier(grace_period=50)).partial_fit(X, y)
    with pytest.raises(SchemaError, match="resumes only by replaying"):
        m.get_state()
    replayed = RiverClassifier(tree.HoeffdingTreeClassifier(grace_period=50))
    for a in range(0, 300, 37):  # replay in other batch sizes: River learns row by row anyway
        replayed.partial_fit(X[a:a + 37], y[a:a + 37], classes=[0, 1])
    np.testing.assert_array_equal(replayed.predict_proba(X), m.predict_proba(X))


def test_feature_count_is_checked():
    X, y = _data(20)
    m = RiverClassifier().partial_fit(X, y)
    with pytest.raises(SchemaError, match="3 features"):
        m.partial_fit(X[:, :3], y)

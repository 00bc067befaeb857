"""The lean logistic regression: River's model, row for row; steps of rows; classes as they come."""

from __future__ import annotations

import numpy as np
import pytest

from daskscale.online.linear import OnlineLogisticRegression


@pytest.mark.parametrize("first_label", [0, 1])
def test_one_row_steps_are_rivers_logistic_regression(first_label):
    from river import linear_model

    rng = np.random.default_rng(first_label)
    X = rng.normal(size=(600, 4)) * [1, 3, 0.5, 2]
    y = (X[:, 0] - X[:, 1] / 3 + 0.5 * rng.normal(size=600) > 0).astype(int)
    y[:5] = first_label  # the first rows have one label: the second class comes later
    ours, river = OnlineLogisticRegression(step_rows=1), linear_model.LogisticRegression()
    for xi, yi in zip(X, y):
        d = dict(enumerate(xi.tolist()))
        if hasattr(ours, "coef_") and ours.classes_.size == 2:
            assert ours.predict(xi[None])[0] == int(bool(river.predict_one(d)))
        ours.partial_fit(xi[None], [yi])
        river.learn_one(d, bool(yi))
    np.testing.assert_allclose(ours.coef_[0], [river.weights[i] for i in range(4)], rtol=1e-10, atol=1e-14)
    assert ours.intercept_[0] == pytest.approx(river.intercept, abs=1e-12)
    assert ours.classes_.tolist() == [0, 1]


def test_a_step_sums_the_row_gradients_at_the_same_weights():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(100, 3)), rng.integers(0, 2, 100)
    m = OnlineLogisticRegression(step_rows=40).partial_fit(X[:40], y[:40], classes=[0, 1])
    w, b = m.coef_[0].copy(), m.intercept_[0]
    m.partial_fit(X[40:80], y[40:80])
    g = 1 / (1 + np.exp(-(X[40:80] @ w + b))) - y[40:80]
    np.testing.assert_allclose(m.coef_[0], w - 0.01 * g @ X[40:80], rtol=1e-12)
    assert m.intercept_[0] == pytest.approx(b - 0.01 * g.sum(), rel=1e-12)


def test_a_late_third_class_gets_its_own_row_and_the_binary_model_is_kept():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(900, 2))
    y = np.where(X[:, 0] > 0, "b", "a")
    m = OnlineLogisticRegression().partial_fit(X[:300], y[:300])
    before = m.predict(X[:300])
    m.partial_fit(np.zeros((1, 2)), ["c"])  # a row of zeros moves only the intercepts
    assert m.classes_.tolist() == ["a", "b", "c"] and m.coef_.shape == (3, 2)
    # the binary vector w became the rows -w ("a") and w ("b"): same decisions between a and b
    np.testing.assert_array_equal(m.coef_[0], -m.coef_[1])
    np.testing.assert_array_equal(m.coef_[2], 0.0)
    np.testing.assert_array_equal(np.where(m.decision_function(X[:300])[:, 1] > m.decision_function(X[:300])[:, 0],
                                           "b", "a"), before)
    late = np.where(X[:, 1] > 1, "c", y)
    for a in range(300, 900, 10):
        m.partial_fit(X[a:a + 10], late[a:a + 10])
    p = m.predict_proba(X[:50])
    assert p.shape == (50, 3) and np.allclose(p.sum(axis=1), 1)
    assert (m.predict(X[:300]) == late[:300]).mean() > 0.8


def test_predict_then_learn_predicts_each_row_as_one_row_sgd_would_have():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(4200, 4))
    y = (X @ [1.0, -2.0, 0.5, 0.0] + rng.normal(size=4200) > 0).astype(int)
    # a learning rate large enough that 32 rows of steps move the decisions often
    lr, start = 0.2, 200
    ref = OnlineLogisticRegression(learning_rate=lr, step_rows=1).partial_fit(X[:start], y[:start], classes=[0, 1])
    seq = []
    for i in range(start, len(X)):
        seq.append(ref.predict(X[i:i + 1])[0])
        ref.partial_fit(X[i:i + 1], y[i:i + 1])
    seq = np.array(seq)
    corrected, stale = [], []
    a = OnlineLogisticRegression(learning_rate=lr).partial_fit(X[:start], y[:start], classes=[0, 1])
    b = OnlineLogisticRegression(learning_rate=lr).partial_fit(X[:start], y[:start], classes=[0, 1])
    for s in range(start, len(X), 32):
        Xb, yb = X[s:s + 32], y[s:s + 32]
        corrected.append(a.predict_then_learn(Xb, Xb, yb))
        stale.append(b.predict(Xb))
        b.partial_fit(Xb, yb)
    wrong_corrected = np.count_nonzero(np.concatenate(corrected) != seq)
    wrong_stale = np.count_nonzero(np.concatenate(stale) != seq)
    assert wrong_corrected * 4 < wrong_stale, (wrong_corrected, wrong_stale)
    # and the weights stay those of one-row SGD, to first order
    np.testing.assert_allclose(a.coef_, ref.coef_, rtol=0.05)


def test_predict_then_learn_uses_only_the_rows_before_each_row():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(300, 3)), rng.integers(0, 2, 300)
    base = OnlineLogisticRegression(learning_rate=0.5).partial_fit(X[:268], y[:268], classes=[0, 1])
    Xb, yb = X[268:], y[268:]
    ref_model = OnlineLogisticRegression(learning_rate=0.5).partial_fit(X[:268], y[:268], classes=[0, 1])
    ref = ref_model.predict_then_learn(Xb, Xb, yb)
    for k in (5, 17, 31):  # change row k's label and features: rows before k are predicted the same
        Xc, yc = Xb.copy(), yb.copy()
        Xc[k] *= -3
        yc[k:] = 1 - yc[k:]
        m = OnlineLogisticRegression(learning_rate=0.5).partial_fit(X[:268], y[:268], classes=[0, 1])
        got = m.predict_then_learn(Xc, Xc, yc)
        np.testing.assert_array_equal(got[:k], ref[:k])
    # the first row of a batch is predicted by the weights before it; one row is exactly predict
    assert ref[0] == base.predict(Xb[:1])[0]
    one = OnlineLogisticRegression(learning_rate=0.5).partial_fit(X[:268], y[:268], classes=[0, 1])
    assert one.predict_then_learn(Xb[:1], Xb[:1], yb[:1])[0] == base.predict(Xb[:1])[0]
    base.partial_fit(Xb[:1], yb[:1])
    np.testing.assert_array_equal(one.coef_, base.coef_)


def test_a_batch_larger_than_step_rows_is_predicted_piece_by_piece():
    """A 640-row event is predicted as ten 64-row events would be (each piece after the pieces
    before it are learned), not all at the weights before the event."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(840, 4))
    y = (X @ [1.0, -2.0, 0.5, 0.0] + rng.normal(size=840) > 0).astype(int)
    big = OnlineLogisticRegression(learning_rate=0.2).partial_fit(X[:200], y[:200], classes=[0, 1])
    pieces = OnlineLogisticRegression(learning_rate=0.2).partial_fit(X[:200], y[:200], classes=[0, 1])
    stale = OnlineLogisticRegression(learning_rate=0.2).partial_fit(X[:200], y[:200], classes=[0, 1])
    got = big.predict_then_learn(X[200:], X[200:], y[200:])
    want = np.concatenate([pieces.predict_then_learn(X[a:a + 64], X[a:a + 64], y[a:a + 64])
                           for a in range(200, 840, 64)])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(big.coef_, pieces.coef_, rtol=1e-12)
    # the rows after the first piece are not all predicted at the event's first weights
    assert (got[64:] != stale.predict(X[264:])).any()

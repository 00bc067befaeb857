"""Magnitude, structured and ensemble pruning; fine-tuning with the mask held fixed."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.neighbors import KNeighborsClassifier

from daskscale.compress import (compress, fine_tune, magnitude_prune, prune_ensemble, prune_gradually, prune_neurons,
                                sparsity_of, sparsity_schedule)
from daskscale.errors import InputTypeError, NotFittedError, SchemaError


@pytest.fixture(scope="module")
def linear(rng=np.random.default_rng(3)):
    X = rng.normal(size=(2000, 40)).astype(np.float32)
    w = np.zeros(40)
    w[:4] = [3, -2, 1.5, 1]  # few informative features: pruning should keep exactly these
    y = (X @ w + rng.logistic(size=2000) * 0.3 > 0).astype(int)
    return SGDClassifier(loss="log_loss", random_state=0).fit(X, y), X, y


def test_magnitude_prune_hits_sparsity_and_keeps_largest(linear):
    m, X, y = linear
    pruned, masks = magnitude_prune(m, 0.9)
    assert sparsity_of(pruned) == pytest.approx(0.9, abs=0.01)
    assert set(np.flatnonzero(pruned.coef_[0])) == set(np.argsort(-np.abs(m.coef_[0]))[:4])
    assert set(np.flatnonzero(pruned.coef_[0])) == {0, 1, 2, 3}
    assert np.all(m.coef_ != 0)  # the original is untouched
    assert pruned.score(X, y) > m.score(X, y) - 0.02


def test_global_and_layer_scope_differ_on_mlp(digits_mlp):
    g, _ = magnitude_prune(digits_mlp, 0.8, scope="global")
    l, masks = magnitude_prune(digits_mlp, 0.8, scope="layer")
    per_layer = [float((w == 0).mean()) for w in l.coefs_]
    assert per_layer == pytest.approx([0.8, 0.8], abs=0.01)
    assert sparsity_of(g) == pytest.approx(0.8, abs=0.01)
    assert [float((w == 0).mean()) for w in g.coefs_] != pytest.approx(per_layer, abs=0.01)


def test_fine_tune_on_store_recovers_and_keeps_mask(small_store, client):
    from daskscale.storage import load_xy

    X, y = load_xy(small_store)
    Xn, yn = X.compute(), y.compute()
    Xtr, ytr, Xte, yte = Xn[:15000], yn[:15000], Xn[15000:], yn[15000:]
    m = SGDClassifier(loss="log_loss", random_state=0, max_iter=3, tol=None).fit(Xtr[:500], ytr[:500])
    pruned, masks = magnitude_prune(m, 0.5)
    before = pruned.score(Xte, yte)
    tuned = fine_tune(pruned, masks, small_store, epochs=2, batch_rows=2000)
    assert np.all(tuned.coef_[~masks[0].T] == 0)  # pruned weights are still exactly zero
    assert sparsity_of(tuned) == pytest.approx(0.5)
    assert tuned.score(Xte, yte) > before + 0.01  # it learned from the store's blocks


def test_fine_tune_on_a_store_learns_the_target_it_is_given(small_store, client):
    from daskscale.storage import load_xy

    X, y = load_xy(small_store)
    Xn, flipped = X.compute(), 1 - y.compute()  # not the store's own target
    m = SGDClassifier(loss="log_loss", random_state=0, max_iter=3, tol=None).fit(Xn[:500], flipped[:500])
    pruned, masks = magnitude_prune(m, 0.5)
    tuned = fine_tune(pruned, masks, small_store, flipped, epochs=2, batch_rows=2000)
    # trained on the store's own target instead, it would score about 1 - this
    assert tuned.score(Xn, flipped) > 0.8


def test_averaged_sgd_trains_with_its_pruned_weights_held_at_zero(linear):
    from daskscale.adapters.sklearn import sgd_iterate

    model, X, y = linear
    avg = SGDClassifier(loss="log_loss", average=True, random_state=0).fit(X, y)
    pruned, masks = magnitude_prune(avg, 0.8)
    start = sgd_iterate(pruned)[0].copy()  # the iterate SGD trains
    tuned = fine_tune(pruned, masks, X, y, epochs=2, batch_rows=100)
    off = ~masks[0].T.ravel()
    iterate = sgd_iterate(tuned)[0].ravel()
    # the iterate SGD trains (not only the average it reports as coef_) keeps them at zero
    assert np.all(iterate[off] == 0) and np.all(tuned.coef_.ravel()[off] == 0)
    assert np.any(iterate[~off] != start.ravel()[~off])  # it did train


def test_schedule_rises_cubically_to_the_target_within_the_ramp():
    sched = sparsity_schedule(0.9, 5, 1000, ramp=0.5)
    updates, levels = list(sched), list(sched.values())
    assert updates == sorted(updates) and updates[0] == 0 and updates[-1] < 500
    assert levels == sorted(levels) and levels[-1] == pytest.approx(0.9)
    assert np.all(np.diff(levels) > 0) and np.diff(levels)[0] > np.diff(levels)[-1]  # fast first, slow near the end
    with pytest.raises(SchemaError, match=r"\[0, 1\)"):
        sparsity_schedule(1.0, 3, 10)


def test_training_follows_the_schedule_step_by_step(linear):
    from daskscale.compress.prune import _magnitude_masks, _masked_training, weights_of

    model, X, y = linear
    start = weights_of(model)
    first = _magnitude_masks(start, 0.3, "global")[0]  # update 0 comes before any training
    one_shot = _magnitude_masks(start, 0.6, "global")[0]
    tuned = copy.deepcopy(model)
    # 2000 rows in 200-row calls: 10 updates an epoch; the second step half-way through
    masks = _masked_training(tuned, X, y, epochs=2, batch_rows=200, classes=None, schedule={0: 0.3, 10: 0.6})
    assert masks[0].mean() == pytest.approx(0.4) and sparsity_of(tuned) == pytest.approx(0.6)
    assert not np.any(masks[0] & ~first)  # pruned at the first step, pruned for good
    # the second step ranked the weights as fine-tuned at 30%, not as they were at the start
    assert np.any(masks[0] != one_shot)
    assert np.all(weights_of(tuned)[0][~masks[0]] == 0)


def test_gradual_pruning_reaches_the_target_and_never_revives_a_weight(digits_mlp, digits):
    Xtr, Xte, ytr, yte = digits
    half, _ = magnitude_prune(digits_mlp, 0.5)
    pruned, masks = prune_gradually(half, 0.9, Xtr, ytr, steps=3, epochs=6, batch_rows=200, scope="layer")
    assert [float((w == 0).mean()) for w in pruned.coefs_] == pytest.approx([0.9, 0.9], abs=0.001)
    for w, m, w0 in zip(pruned.coefs_, masks, half.coefs_):
        assert m.dtype == bool and np.all(w[~m] == 0)
        assert np.all(w[w0 == 0] == 0)  # zero before any step, zero after all of them
    assert sparsity_of(half) == pytest.approx(0.5, abs=0.001)  # the input is untouched
    assert np.all(np.concatenate([b.ravel() for b in pruned.intercepts_]) != 0)  # biases are never pruned
    assert pruned.score(Xte, yte) > magnitude_prune(digits_mlp, 0.9, scope="layer")[0].score(Xte, yte)


def test_mlp_mask_holds_at_every_optimizer_step_whatever_the_batch_rows(digits_mlp, digits):
    Xtr, _, ytr, _ = digits
    # an MLP is fed calls of its own batch_size (one Adam step each, then the mask), so a large
    # batch_rows gives exactly the same weights as batch_rows=batch_size
    a, _ = prune_gradually(digits_mlp, 0.9, Xtr, ytr, epochs=2, batch_rows=200)
    b, _ = prune_gradually(digits_mlp, 0.9, Xtr, ytr, epochs=2, batch_rows=10_000)
    for wa, wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(wa, wb)


def test_gradual_pruning_fine_tunes_from_a_store_out_of_core(small_store, client):
    from daskscale.storage import load_xy

    X, y = load_xy(small_store)
    Xn, yn = X.compute(), y.compute()
    m = SGDClassifier(loss="log_loss", random_state=0, max_iter=3, tol=None).fit(Xn[:500], yn[:500])
    pruned, masks = prune_gradually(m, 0.5, small_store, epochs=2, batch_rows=2000)
    assert sparsity_of(pruned) == pytest.approx(0.5)
    assert np.all(pruned.coef_[~masks[0].T] == 0)
    one_shot = magnitude_prune(m, 0.5)[0].score(Xn[15000:], yn[15000:])
    assert pruned.score(Xn[15000:], yn[15000:]) > one_shot + 0.01  # it learned from the store's blocks


def test_sgd_regressor_is_supported_and_fine_tunes(rng):
    from sklearn.linear_model import SGDRegressor

    X = rng.normal(size=(2000, 20))
    y = X[:, :3] @ np.array([3.0, -2.0, 1.0])
    m = SGDRegressor(random_state=0).fit(X, y)
    pruned, _ = prune_gradually(m, 0.85, X, y, epochs=2, batch_rows=200)
    assert set(np.flatnonzero(pruned.coef_)) == {0, 1, 2}
    assert compress(pruned, quantize="int8").score(X, y) > 0.99


def test_prune_neurons_makes_a_smaller_mlp(digits_mlp, digits):
    _, Xte, _, yte = digits
    small = prune_neurons(digits_mlp, 0.5)
    assert small.hidden_layer_sizes == (128,)
    assert small.coefs_[0].shape == (64, 128) and small.coefs_[1].shape == (128, 10)
    assert small.score(Xte, yte) > digits_mlp.score(Xte, yte) - 0.05
    # the smaller model compresses too, and prunes better than dropping random units would
    rng = np.random.default_rng(0)
    keep = np.sort(rng.choice(256, 32, replace=False))
    rand = prune_neurons(digits_mlp, 0.125)
    rand.coefs_ = [digits_mlp.coefs_[0][:, keep], digits_mlp.coefs_[1][keep]]
    rand.intercepts_ = [digits_mlp.intercepts_[0][keep], digits_mlp.intercepts_[1]]
    assert prune_neurons(digits_mlp, 32).score(Xte, yte) >= rand.score(Xte, yte)
    assert compress(small, quantize="int8").score(Xte, yte) > 0.9


def test_prune_ensemble_keeps_best_members(digits):
    Xtr, Xte, ytr, yte = digits
    rf = RandomForestClassifier(40, max_depth=8, random_state=0).fit(Xtr[:600], ytr[:600])
    small = prune_ensemble(rf, 0.25, Xtr[600:900], ytr[600:900])
    assert len(small.estimators_) == 10 and len(rf.estimators_) == 40
    assert small.score(Xte, yte) > rf.score(Xte, yte) - 0.05
    gb = GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0).fit(Xtr[:300], ytr[:300])
    assert prune_ensemble(gb, 4).estimators_.shape[0] == 4


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "lots"])
def test_sparsity_outside_unit_interval_is_refused(linear, bad):
    with pytest.raises(SchemaError, match=r"\[0, 1\)"):
        magnitude_prune(linear[0], bad)


def test_unsupported_model_lists_what_is_supported(digits):
    Xtr, _, ytr, _ = digits
    with pytest.raises(InputTypeError, match="MLPClassifier") as e:
        compress(KNeighborsClassifier().fit(Xtr, ytr))
    assert "KNeighborsClassifier" in str(e.value) and "coef_" in str(e.value)


def test_unfitted_model_is_refused():
    with pytest.raises(NotFittedError, match="not fitted"):
        magnitude_prune(SGDClassifier(), 0.5)
    with pytest.raises(NotFittedError):
        compress(SGDClassifier())

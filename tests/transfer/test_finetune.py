"""Fine-tuning beats training from scratch on few target rows: a real task and a synthetic shift."""

from __future__ import annotations

import numpy as np
import pytest

from daskscale.transfer import fine_tune, finetune, load_pretrained, score, train_from_scratch

BUDGET = dict(epochs=20, min_steps=300, learning_rate=1e-3, batch_size=32)


def test_real_task_100_rows_fine_tuned_reach_90pct_of_full_scratch_does_not(blur_stores):
    train, test = blur_stores
    full = score(train_from_scratch("digits_mlp", train, **BUDGET), test)  # all 600 target rows
    tuned = score(fine_tune("digits_mlp", train, rows=100, **BUDGET), test)
    scratch = score(train_from_scratch("digits_mlp", train, rows=100, **BUDGET), test)
    zero_shot = score(load_pretrained("digits_mlp").model, test)
    assert full > 0.85
    assert tuned >= 0.9 * full
    assert scratch < 0.9 * full
    assert tuned - scratch > 0.05
    assert tuned > zero_shot + 0.03  # fine-tuning, not just the source model, does the work


@pytest.fixture(scope="module")
def shift_task():
    from daskscale.transfer.tasks import synthetic_shift

    return synthetic_shift()


def test_synthetic_shift_1pct_of_target_fine_tuned_reach_90pct_of_full(shift_task):
    t = shift_task
    n = len(t.X_target) // 100  # 1% of the 10,000 target rows
    full = score(train_from_scratch("synthetic_mlp", t.X_target, t.y_target, epochs=4), t.X_test, t.y_test)
    tuned = score(fine_tune("synthetic_mlp", t.X_target, t.y_target, rows=n, **BUDGET), t.X_test, t.y_test)
    scratch = score(train_from_scratch("synthetic_mlp", t.X_target, t.y_target, rows=n, **BUDGET),
                    t.X_test, t.y_test)
    zero_shot = score(load_pretrained("synthetic_mlp").model, t.X_test, t.y_test)
    assert tuned >= 0.9 * full
    assert scratch < 0.9 * full
    assert tuned - scratch > 0.05
    assert tuned > zero_shot + 0.02


def test_fine_tune_leaves_the_pretrained_model_untouched(blur_task):
    pre = load_pretrained("digits_mlp")
    before = [w.copy() for w in pre.model[-1].coefs_]
    fine_tune(pre, blur_task.X_target, blur_task.y_target, rows=64, max_steps=5)
    for a, b in zip(before, pre.model[-1].coefs_):
        np.testing.assert_array_equal(a, b)


def test_freeze_keeps_hidden_layer_fixed_and_trains_output(blur_task):
    pre = load_pretrained("digits_mlp")
    m = fine_tune(pre, blur_task.X_target, blur_task.y_target, freeze=True, rows=200, max_steps=40,
                  learning_rate=1e-2)
    np.testing.assert_array_equal(m[-1].coefs_[0], pre.model[-1].coefs_[0])
    np.testing.assert_array_equal(m[-1].intercepts_[0], pre.model[-1].intercepts_[0])
    assert not np.allclose(m[-1].coefs_[1], pre.model[-1].coefs_[1])
    free = fine_tune(pre, blur_task.X_target, blur_task.y_target, rows=200, max_steps=40, learning_rate=1e-2)
    assert not np.allclose(free[-1].coefs_[0], pre.model[-1].coefs_[0])


def test_new_classes_get_a_fresh_output_layer_on_the_pretrained_hidden_layer():
    from daskscale.transfer.tasks import digits_new_classes

    t = digits_new_classes()
    pre = load_pretrained("digits_0_4_mlp")
    m = fine_tune(pre, t.X_target, t.y_target, new_classes=t.target_classes, freeze=True, rows=100,
                  epochs=20, min_steps=200, learning_rate=1e-2)
    assert list(m.classes_) == [5, 6, 7, 8, 9]
    np.testing.assert_array_equal(m[-1].coefs_[0], pre.model[-1].coefs_[0])
    assert m[-1].coefs_[1].shape == (64, 5)
    assert score(m, t.X_test, t.y_test) > 0.8


def test_streamed_blocks_train_exactly_like_cached_blocks(blur_stores, monkeypatch):
    train, _ = blur_stores
    assert finetune.target_source(train, rows=300).kind == "memory"
    cached = fine_tune("digits_mlp", train, rows=300, max_steps=30, seed=1)
    monkeypatch.setattr(finetune, "CACHE_BYTES", 0)  # stream every block from the cluster, one ahead
    assert finetune.target_source(train, rows=300).kind == "dask"
    assert finetune.target_source(train).kind == "store"  # all rows: read by zarr, block by block
    streamed = fine_tune("digits_mlp", train, rows=300, max_steps=30, seed=1)
    for a, b in zip(cached[-1].coefs_, streamed[-1].coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)

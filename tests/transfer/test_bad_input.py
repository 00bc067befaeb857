"""Bad input: feature mismatch (both shapes, differing names), incompatible kinds, unknown labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier

from daskscale.datasets import real_dataset_path
from daskscale.errors import InputTypeError, SchemaError
from daskscale.transfer import fine_tune, learning_curve


def test_feature_mismatch_names_both_shapes_and_names():
    csv, target = real_dataset_path("wine")
    wine = pd.read_csv(csv)
    with pytest.raises(SchemaError) as err:
        fine_tune("digits_mlp", wine.drop(columns=[target]), wine[target])
    msg = str(err.value)
    assert "(n, 64)" in msg and "(178, 13)" in msg
    assert "pixel_0_0" in msg and "alcohol" in msg


def test_same_width_but_different_feature_names_is_refused(blur_task):
    df = pd.DataFrame(blur_task.X_target[:50], columns=blur_task.feature_names)
    df = df.rename(columns={"pixel_3_3": "brightness"})
    from daskscale.storage.convert import as_data

    data = as_data(df, blur_task.y_target[:50])
    data.feature_names = list(df.columns)
    with pytest.raises(SchemaError, match=r"pixel_3_3.*brightness"):
        fine_tune("digits_mlp", data, max_steps=1)


def test_unsupported_kind_lists_the_supported_kinds():
    forest = RandomForestClassifier(n_estimators=2).fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(InputTypeError) as err:
        fine_tune(forest, np.eye(4), [0, 1, 0, 1])
    for kind in ("MLPClassifier", "MLPRegressor", "SGDClassifier", "SGDRegressor"):
        assert kind in str(err.value)
    with pytest.raises(InputTypeError, match="zoo name"):
        fine_tune(42, np.eye(4), [0, 1, 0, 1])


def test_freeze_and_new_classes_need_hidden_layers():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 3)), rng.integers(0, 2, 60)
    sgd = SGDClassifier(random_state=0).fit(X, y)
    with pytest.raises(InputTypeError, match="hidden layers"):
        fine_tune(sgd, X, y, freeze=True)
    with pytest.raises(InputTypeError, match="hidden layers"):
        fine_tune(sgd, X, y, new_classes=[5, 6])
    tuned = fine_tune(sgd, X, y, max_steps=3, learning_rate=0.01)  # plain warm start works
    assert tuned.coef_.shape == sgd.coef_.shape


def test_labels_unknown_to_the_model_point_to_new_classes(blur_task):
    y = blur_task.y_target[:64] + 10
    with pytest.raises(SchemaError, match="new_classes"):
        fine_tune("digits_mlp", blur_task.X_target[:64], y, max_steps=2)


def test_freeze_out_of_range_and_missing_target(blur_task):
    with pytest.raises(SchemaError, match="output"):
        fine_tune("digits_mlp", blur_task.X_target[:64], blur_task.y_target[:64], freeze=2)
    with pytest.raises(SchemaError, match="target"):
        learning_curve("digits_mlp", blur_task.X_target, test=blur_task.X_test, test_y=blur_task.y_test)

"""Fitted models shared by the compression tests (trained once per module: the CPU is shared)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def digits():
    """The shipped digits CSV, split 70/30: ``(Xtr, Xte, ytr, yte)``, pixels scaled to [0, 1]."""
    from sklearn.model_selection import train_test_split

    from daskscale.datasets import real_dataset_path

    path, target = real_dataset_path("digits")
    df = pd.read_csv(path)
    y = df.pop(target).to_numpy()
    X = df.to_numpy(np.float32) / 16
    return train_test_split(X, y, test_size=0.3, random_state=0)


@pytest.fixture(scope="session")
def digits_mlp(digits):
    """An MLP with 256 hidden units on digits: its file is dominated by the weights."""
    from sklearn.neural_network import MLPClassifier

    Xtr, _, ytr, _ = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is kept small on purpose
        return MLPClassifier((256,), max_iter=60, random_state=0).fit(Xtr, ytr)

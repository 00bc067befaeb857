"""The real streams shipped in daskscale/datasets/data/: each loads with the shape its README row
documents."""

from __future__ import annotations

import re

import numpy as np
import pytest

from daskscale.datasets.real import REAL_DATASETS, STREAMS, datasets_dir, load_stream, real_dataset_path
from daskscale.errors import SchemaError

SHAPES = {"weather_rain": (18159, 8), "phishing": (1250, 9), "shuttle": (49097, 9), "sp500_direction": (1257, 10)}


@pytest.mark.parametrize("name", STREAMS)
def test_stream_loads_with_the_documented_shape(name):
    X, y, names = load_stream(name)
    assert X.shape == SHAPES[name] and y.shape == (X.shape[0],) and len(names) == X.shape[1]
    assert np.isfinite(X).all() and set(np.unique(y).tolist()) == {0, 1}
    path, target = real_dataset_path(name)
    assert path.stat().st_size < 5 * 2**20 and target not in names
    readme = (datasets_dir() / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith(f"| `{path.name}`"))
    rows, cols = map(int, re.search(r"\| (\d+) x (\d+) \|", row).groups())
    # the README counts the weather file's columns with its target, the others without
    assert (rows, cols) in {(X.shape[0], X.shape[1]), (X.shape[0], X.shape[1] + 1)}
    assert re.search(r"CC BY 4\.0|CC0|public domain|BSD|Apache", row), f"no licence in the README row of {name}"


def test_streams_are_registered_and_unknown_names_are_refused():
    assert set(STREAMS) <= set(REAL_DATASETS)
    with pytest.raises(SchemaError, match="not a shipped stream"):
        load_stream("wine")


def test_sp500_direction_is_in_time_order_of_its_source():
    X, y, names = load_stream("sp500_direction")
    assert names[:2] == ["AAPL", "AMZN"]
    # first trading day of the source (2013-02-11): AAPL +1.042235 %, next day down
    assert X[0, 0] == pytest.approx(1.04224) and y[0] == 0

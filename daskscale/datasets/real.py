"""Small real datasets shipped inside the package (``daskscale/datasets/data/``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from daskscale.errors import SchemaError

__all__ = ["REAL_DATASETS", "STREAMS", "real_dataset_path", "datasets_dir", "load_stream"]

#: name -> (file in daskscale/datasets/data/, target column, what it is)
REAL_DATASETS: dict[str, tuple[str, str, str]] = {
    "breast_cancer": ("breast_cancer.csv", "target", "Wisconsin diagnostic breast cancer, 569 x 30, binary"),
    "digits": ("digits.csv", "target", "8x8 handwritten digits, 1797 x 64, 10 classes"),
    "wine": ("wine.csv", "target", "wine recognition, 178 x 13, 3 classes"),
    "weather_rain": ("weather_rain.csv", "rain", "NOAA daily weather (Bellevue, Nebraska), a drifting stream"),
    "phishing": ("phishing.csv", "is_phishing", "UCI Website Phishing as River ships it, 1250 x 9, binary"),
    "shuttle": ("shuttle.csv", "anomaly", "UCI Statlog Shuttle (ODDS anomaly version, via River), 49097 x 9, binary"),
    "sp500_direction": ("sp500_direction.csv", "next_day_up",
                        "daily returns of ten S&P 500 stocks 2013-2018 (via River), 1257 x 10, next day up/down"),
}

#: the shipped datasets that are streams: rows in the order they are to be learned
STREAMS: tuple[str, ...] = ("weather_rain", "phishing", "shuttle", "sp500_direction")


def datasets_dir() -> Path:
    """The folder of the shipped data files, ``daskscale/datasets/data/`` inside the package.

    It is package data (``[tool.setuptools.package-data]``), so a wheel install has it too, not
    only an editable install from the repository.
    """
    return Path(__file__).resolve().parent / "data"


def real_dataset_path(name: str) -> tuple[Path, str]:
    """Return ``(csv_path, target_column)`` of a shipped dataset.

    Examples
    --------
    >>> path, target = real_dataset_path("wine")
    >>> path.name, target
    ('wine.csv', 'target')
    """
    if name not in REAL_DATASETS:
        raise SchemaError(f"unknown dataset {name!r}; shipped datasets are {sorted(REAL_DATASETS)}")
    file, target, _ = REAL_DATASETS[name]
    path = datasets_dir() / file
    if not path.exists():
        raise SchemaError(
            f"{path} is missing: daskscale was built without its data files (daskscale/datasets/data/, "
            "package data in pyproject.toml); reinstall it from a complete checkout"
        )
    return path, target


def load_stream(name: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(X float64, y int64, feature names)`` of a shipped stream, rows in stream order.

    Examples
    --------
    >>> X, y, names = load_stream("phishing")
    >>> X.shape, sorted(set(y.tolist())), names[0]
    ((1250, 9), [0, 1], 'empty_server_form_handler')
    """
    import pandas as pd

    if name not in STREAMS:
        raise SchemaError(f"{name!r} is not a shipped stream; streams are {list(STREAMS)}")
    path, target = real_dataset_path(name)
    df = pd.read_csv(path)
    y = df.pop(target).to_numpy(np.int64)
    return df.to_numpy(np.float64), y, list(df.columns)

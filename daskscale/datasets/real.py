"""Small real datasets shipped with the project (``datasets/`` at the repository top)."""

from __future__ import annotations

from pathlib import Path

from daskscale.errors import SchemaError

__all__ = ["REAL_DATASETS", "real_dataset_path", "datasets_dir"]

#: name -> (file in datasets/, target column, what it is)
REAL_DATASETS: dict[str, tuple[str, str, str]] = {
    "breast_cancer": ("breast_cancer.csv", "target", "Wisconsin diagnostic breast cancer, 569 x 30, binary"),
    "digits": ("digits.csv", "target", "8x8 handwritten digits, 1797 x 64, 10 classes"),
    "wine": ("wine.csv", "target", "wine recognition, 178 x 13, 3 classes"),
    "weather_rain": ("weather_rain.csv", "rain", "NOAA daily weather (Bellevue, Nebraska), a drifting stream"),
}


def datasets_dir() -> Path:
    """The repository's ``datasets/`` folder (the package is installed editable from it)."""
    return Path(__file__).resolve().parents[2] / "datasets"


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
        raise SchemaError(f"{path} is missing: the datasets/ folder of the repository is not beside the package")
    return path, target

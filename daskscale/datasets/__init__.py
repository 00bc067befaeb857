"""Dataset generators (any size, block by block) and the small real datasets shipped."""

from daskscale.datasets.real import REAL_DATASETS, real_dataset_path
from daskscale.datasets.gridded import make_gridded
from daskscale.datasets.synthetic import make_classification, make_regression

__all__ = ["make_classification", "make_regression", "make_gridded", "REAL_DATASETS", "real_dataset_path"]

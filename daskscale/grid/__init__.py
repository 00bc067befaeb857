"""Labelled N-d (gridded) data: stack grids into samples, fit any estimator, predict back onto the grid.

- :func:`stack_to_data` (``as_data(..., sample_dims=...)`` calls it): grid -> rows, lazily,
  one row block per grid block, masked cells dropped by a documented rule;
- :func:`unstack`, :func:`apply_to_grid`, :func:`to_zarr`: rows -> the grid (coordinates,
  attributes and chunks kept), written in one call;
- :class:`GridEstimator`: any scikit-learn style estimator on grids;
- :func:`climatology`, :func:`anomalies`, :func:`seasonal_stats`, :func:`resample` (flox) and
  :func:`group_reduce` / :func:`group_moments` (daskscale reducers per group).
"""

from __future__ import annotations

import importlib
from typing import Any

from daskscale.grid.stack import GridData, GridLayout, grid_layout, stack_to_data
from daskscale.grid.unstack import apply_to_grid, to_zarr, unstack

# imported on first use: workers that only run stacking tasks need not import sklearn or flox
_LAZY = {
    "GridEstimator": "estimator",
    "climatology": "groupby", "anomalies": "groupby", "seasonal_stats": "groupby", "resample": "groupby",
    "Grouped": "groupby", "group_reduce": "groupby", "group_moments": "groupby",
}
__all__ = ["stack_to_data", "grid_layout", "GridData", "GridLayout", "unstack", "apply_to_grid", "to_zarr", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"daskscale.grid.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'daskscale.grid' has no attribute {name!r}")

"""Named dataset recipes used by the demo, the notebooks and the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from daskscale.errors import SchemaError
from daskscale.datasets.synthetic import make_classification, make_regression

__all__ = ["RECIPES", "make_recipe"]

#: name -> (generator, keyword arguments)
RECIPES: dict[str, tuple[Any, dict[str, Any]]] = {
    # the demo: ~230 MiB in memory, a couple of minutes end to end on 2 cores
    "demo": (make_classification, dict(n_rows=1_200_000, n_features=50, chunk_rows=100_000, seed=42)),
    "tiny": (make_classification, dict(n_rows=20_000, n_features=10, chunk_rows=5_000, seed=0)),
    "bench-small": (make_classification, dict(n_rows=400_000, n_features=50, chunk_rows=50_000, seed=7)),
    "bench-large": (make_classification, dict(n_rows=10_000_000, n_features=50, chunk_rows=250_000, seed=7)),
    "drift-stream": (make_classification, dict(n_rows=200_000, n_features=20, chunk_rows=10_000, seed=5,
                                               drift={"kind": "abrupt", "at": 0.5})),
    "regression": (make_regression, dict(n_rows=400_000, n_features=30, chunk_rows=50_000, seed=11)),
}


def make_recipe(name: str, store: str | os.PathLike, *, overwrite: bool = False, **override: Any) -> Path:
    """Write the recipe ``name`` to ``store`` (keyword arguments override the recipe's)."""
    if name not in RECIPES:
        raise SchemaError(f"unknown recipe {name!r}; recipes are {sorted(RECIPES)}")
    fn, kwargs = RECIPES[name]
    return fn(**{**kwargs, **override}, store=store, overwrite=overwrite)

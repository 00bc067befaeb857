"""daskscale: scikit-learn style machine learning past the memory of one machine, on Dask.

The public names; everything else lives in the sub-packages (``daskscale.reduce``,
``daskscale.learn``, ``daskscale.online``, ``daskscale.compress``, ``daskscale.transfer``,
``daskscale.grid``, ``daskscale.datasets``).
"""

from __future__ import annotations

import importlib
from typing import Any

from daskscale.cluster import connect
from daskscale.errors import DaskscaleError
from daskscale.models import load_model, save_model
from daskscale.storage import info, ingest, load_xy, open_dataset

__version__ = "0.1.0"

# Names provided by sub-packages, imported on first use (keeps `import daskscale` light).
_LAZY = {
    "describe": "daskscale.reduce.describe",
    "Incremental": "daskscale.learn.incremental",
    "OnlineLearner": "daskscale.online.learner",
}

__all__ = ["connect", "ingest", "open_dataset", "load_xy", "info", "save_model", "load_model",
           "DaskscaleError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'daskscale' has no attribute {name!r}")

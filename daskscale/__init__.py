"""daskscale: scikit-learn style machine learning past the memory of one machine, on Dask.

The public names; everything else lives in the sub-packages (``daskscale.reduce``,
``daskscale.learn``, ``daskscale.online``, ``daskscale.compress``, ``daskscale.transfer``,
``daskscale.grid``, ``daskscale.datasets``).

Every name is imported on first use (PEP 562 ``__getattr__``): ``import daskscale`` loads
neither Dask's distributed scheduler nor Zarr, xarray or scikit-learn, so the command line and
a plain import start in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import Any

from daskscale.errors import DaskscaleError

__version__ = "0.1.0"

#: public name -> module that defines it
_LAZY = {
    "connect": "daskscale.cluster",
    "ingest": "daskscale.storage",
    "open_dataset": "daskscale.storage",
    "load_xy": "daskscale.storage",
    "info": "daskscale.storage",
    "save_model": "daskscale.models",
    "load_model": "daskscale.models",
    "describe": "daskscale.reduce.describe",
    "Incremental": "daskscale.learn.incremental",
    "OnlineLearner": "daskscale.online.learner",
}

__all__ = ["DaskscaleError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'daskscale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

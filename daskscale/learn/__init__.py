"""Learning strategies: mini-batch (incremental), data-parallel, model-parallel, search, plan.

Names are imported lazily from the module that defines them.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    # mini-batch (daskscale.learn.incremental, daskscale.engine)
    "Incremental": "daskscale.learn.incremental",
    "iter_blocks": "daskscale.engine.prefetch",
    "make_estimator": "daskscale.learn.estimators",
    # data parallelism
    "ParameterAveraging": "daskscale.learn.parallel",
    "ExactLogisticRegression": "daskscale.learn.solvers",
    "ExactLinearRegression": "daskscale.learn.solvers",
    "ExactPoissonRegression": "daskscale.learn.solvers",
    # model parallelism
    "FeatureShardedLinear": "daskscale.learn.model_parallel",
    "DistributedOneVsRest": "daskscale.learn.ensemble",
    "DistributedBagging": "daskscale.learn.ensemble",
    "SuccessiveHalvingSearch": "daskscale.learn.search",
    "HyperbandSearch": "daskscale.learn.search",
    "plan": "daskscale.learn.planner",
    "make_trainer": "daskscale.learn.strategies",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'daskscale.learn' has no attribute {name!r}")

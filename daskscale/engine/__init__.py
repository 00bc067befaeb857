"""The core written once: one input boundary, one block loop, one blockwise apply and score.

- :mod:`daskscale.engine.source`: :class:`Source`, row blocks of any accepted input;
- :mod:`daskscale.engine.prefetch`: seeded block orders, bounded read-ahead in a thread;
- :mod:`daskscale.engine.loop`: :class:`TrainPlan`, :class:`TrainState`, :class:`Hooks`,
  :class:`Step` (the one ``partial_fit`` call) and :func:`run`;
- :mod:`daskscale.engine.apply`: the one blockwise predict/transform and the pooled scores;
- :mod:`daskscale.engine.process`: the per-process state.

Names are imported lazily from the module that defines them.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Source": "daskscale.engine.source",
    "iter_units": "daskscale.engine.prefetch",
    "iter_blocks": "daskscale.engine.prefetch",
    "epoch_units": "daskscale.engine.prefetch",
    "mini_batches": "daskscale.engine.prefetch",
    "split_blocks": "daskscale.engine.prefetch",
    "TrainPlan": "daskscale.engine.loop",
    "TrainState": "daskscale.engine.loop",
    "Hooks": "daskscale.engine.loop",
    "Step": "daskscale.engine.loop",
    "run": "daskscale.engine.loop",
    "blocks": "daskscale.engine.loop",
    "PROCESS": "daskscale.engine.process",
    "apply_blockwise": "daskscale.engine.apply",
    "score_blockwise": "daskscale.engine.apply",
    "score_state": "daskscale.engine.apply",
    "ScoreState": "daskscale.engine.apply",
    "ScoreReducer": "daskscale.engine.apply",
    "kind_of": "daskscale.engine.apply",
    "in_memory": "daskscale.engine.apply",
    "scale_rows": "daskscale.engine.apply",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'daskscale.engine' has no attribute {name!r}")

"""Concept-drift detectors that watch a learner's error, one batch at a time.

Each detector is fed ``update(n_errors, n_rows)`` once per batch and answers ``"drift"``,
``"warning"`` or ``None``. Feeding batch summaries rather than single rows keeps the
learner vectorised (a detector update per row would cost more than the model itself).
State is JSON (``get_state``/``set_state``) so it goes into a checkpoint's metadata.

- :class:`DDM` (Gama et al. 2004, "Learning with drift detection"): the error rate ``p``
  and its std ``s = sqrt(p(1-p)/n)``; warning when ``p + s > p_min + 2 s_min``, drift at
  ``3 s_min``. Here ``n`` counts rows, so a batch moves it by its size.
- :class:`PageHinkley` (Page 1954): cumulative deviation of the batch error rate from its
  running mean; drift when it exceeds ``threshold``.
- :class:`ADWIN` (Bifet & Gavalda 2007): river's ``river.drift.ADWIN`` on the batch
  error rate. Its state is the list of every batch error rate seen (8 bytes a batch),
  replayed on restore so the rebuilt detector is identical.
"""

from __future__ import annotations

import math
from typing import Any

from daskscale.errors import SchemaError

__all__ = ["DriftDetector", "DDM", "PageHinkley", "ADWIN", "make_detector", "DETECTORS"]


class DriftDetector:
    """Base class: ``update(n_errors, n) -> "drift" | "warning" | None``, ``reset()``."""

    name = "detector"
    has_warning = False

    def update(self, n_errors: float, n: int) -> str | None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k.endswith("_")}

    def set_state(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


class DDM(DriftDetector):
    """Drift Detection Method on the error rate, fed per batch.

    Examples
    --------
    >>> d = DDM(min_rows=100)
    >>> [d.update(10, 100) for _ in range(5)][-1] is None
    True
    >>> d.update(60, 100)
    'drift'
    """

    name = "ddm"
    has_warning = True

    def __init__(self, min_rows: int = 1000, warning_level: float = 2.0, drift_level: float = 3.0):
        self.min_rows = min_rows
        self.warning_level = warning_level
        self.drift_level = drift_level
        self.reset()

    def reset(self) -> None:
        self.n_ = 0
        self.errors_ = 0.0
        self.p_min_ = math.inf
        self.s_min_ = math.inf

    def update(self, n_errors: float, n: int) -> str | None:
        self.n_ += int(n)
        self.errors_ += float(n_errors)
        if self.n_ < self.min_rows:
            return None
        p = self.errors_ / self.n_
        s = math.sqrt(max(p * (1 - p), 1e-12) / self.n_)
        if p + s < self.p_min_ + self.s_min_:
            self.p_min_, self.s_min_ = p, s
        if p + s > self.p_min_ + self.drift_level * self.s_min_:
            self.reset()
            return "drift"
        if p + s > self.p_min_ + self.warning_level * self.s_min_:
            return "warning"
        return None

    def get_state(self) -> dict[str, Any]:
        # JSON has no infinity: keep None for "not set yet"
        s = super().get_state()
        return {k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in s.items()}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state({k: (math.inf if v is None else v) for k, v in state.items()})


class PageHinkley(DriftDetector):
    """Page-Hinkley test for an increase of the batch error rate.

    Examples
    --------
    >>> d = PageHinkley(threshold=0.5, min_batches=3)
    >>> [d.update(1, 10) for _ in range(10)][-1] is None
    True
    >>> "drift" in [d.update(8, 10) for _ in range(3)]
    True
    """

    name = "page-hinkley"

    def __init__(self, threshold: float = 0.5, delta: float = 0.01, alpha: float = 1.0, min_batches: int = 5):
        self.threshold = threshold
        self.delta = delta
        self.alpha = alpha
        self.min_batches = min_batches
        self.reset()

    def reset(self) -> None:
        self.count_ = 0
        self.mean_ = 0.0
        self.sum_ = 0.0
        self.min_sum_ = 0.0

    def update(self, n_errors: float, n: int) -> str | None:
        x = float(n_errors) / max(1, int(n))
        self.count_ += 1
        self.mean_ += (x - self.mean_) / self.count_
        self.sum_ = self.alpha * self.sum_ + (x - self.mean_ - self.delta)
        self.min_sum_ = min(self.min_sum_, self.sum_)
        if self.count_ >= self.min_batches and self.sum_ - self.min_sum_ > self.threshold:
            self.reset()
            return "drift"
        return None


class ADWIN(DriftDetector):
    """ADaptive WINdowing (river's implementation) on the batch error rate.

    Examples
    --------
    >>> d = ADWIN(delta=0.002)
    >>> out = [d.update(1, 10) for _ in range(60)] + [d.update(9, 10) for _ in range(60)]
    >>> "drift" in out
    True
    """

    name = "adwin"

    def __init__(self, delta: float = 0.002, clock: int = 1):
        self.delta = delta
        self.clock = clock
        self.reset()

    def _new(self) -> Any:
        from river.drift import ADWIN as RiverADWIN

        return RiverADWIN(delta=self.delta, clock=self.clock, grace_period=2, min_window_length=2)

    def reset(self) -> None:
        self.values_: list[float] = []
        self._adwin = self._new()

    def update(self, n_errors: float, n: int) -> str | None:
        x = float(n_errors) / max(1, int(n))
        self._adwin.update(x)
        self.values_.append(x)
        return "drift" if self._adwin.drift_detected else None

    def set_state(self, state: dict[str, Any]) -> None:
        self._adwin = self._new()
        values = list(state.get("values_", []))
        for x in values:  # replaying every value rebuilds river's buckets exactly
            self._adwin.update(x)
        self.values_ = values


DETECTORS = {"ddm": DDM, "page-hinkley": PageHinkley, "adwin": ADWIN}


def make_detector(spec: Any) -> DriftDetector | None:
    """A detector from a name (``"ddm"``, ``"page-hinkley"``, ``"adwin"``), an instance, or None."""
    if spec is None or isinstance(spec, DriftDetector):
        return spec
    if isinstance(spec, str) and spec.lower() in DETECTORS:
        return DETECTORS[spec.lower()]()
    raise SchemaError(f"unknown drift detector {spec!r}: use one of {sorted(DETECTORS)} or a DriftDetector")

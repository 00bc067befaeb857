"""Concept-drift detectors that watch a learner's error: River's, behind one small interface.

Each detector is fed ``update(n_errors, n_rows)`` once per batch and answers ``"drift"``,
``"warning"`` or ``None``; after a drift it starts afresh. The statistics are River's own
(``river.drift``), so daskscale keeps no second implementation of them:

- :class:`DDM` (Gama et al. 2004, "Learning with drift detection"): ``river.drift.binary.DDM``
  fed one bit per row (1 = the row was misclassified), so its ``n`` counts rows as the
  method intends. The bits are the batch's own when ``update`` is given ``errors=``, else
  the ``n_errors`` errors spread evenly over the ``n`` rows. River costs about 1-6 us a
  row: cheap beside a one-row model update, noticeable (tens of ms) for 10,000-row batches.
- :class:`PageHinkley` (Page 1954): ``river.drift.PageHinkley`` (mode ``"up"``: only a rise
  of the error matters) on the batch error rate, one update per batch.
- :class:`ADWIN` (Bifet & Gavalda 2007): ``river.drift.ADWIN`` on the batch error rate.

Checkpoints hold no pickle: :meth:`DriftDetector.get_state` is plain JSON. For DDM and
Page-Hinkley it is a snapshot of the River detector's fields (floats, ints, bools and its
``river.stats.Mean``), written back on restore, so a restored detector takes exactly the
decisions the uninterrupted one would. River's ADWIN keeps its buckets in compiled code that
exposes no fields: its state is the list of batch error rates seen (8 bytes a batch),
replayed on restore.
"""

from __future__ import annotations

import math
from typing import Any

from daskscale.errors import SchemaError

__all__ = ["DriftDetector", "DDM", "PageHinkley", "ADWIN", "make_detector", "DETECTORS", "river_state",
           "set_river_state"]


class DriftDetector:
    """Base class: ``update(n_errors, n) -> "drift" | "warning" | None``, ``reset()``.

    The default state is every attribute whose name ends in ``_`` (JSON values).
    """

    name = "detector"
    has_warning = False
    #: ``update`` accepts ``errors=`` (one bit per row, in row order)
    takes_errors = False

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


def _plain(v: Any) -> Any:
    # JSON has no infinity: keep it as a string, read back by _value
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _value(v: Any) -> Any:
    return float(v) if v in ("inf", "-inf") else v


def river_state(detector: Any) -> dict[str, Any]:
    """The fields of a River detector as JSON: its parameters left out, ``stats.Mean`` as ``[n, mean]``.

    Raises :class:`~daskscale.errors.SchemaError` for a field of a type it cannot write (a new
    River version that keeps other objects), rather than writing a state that restores wrong.
    """
    import inspect

    from river import stats

    params = set(inspect.signature(type(detector)).parameters)
    out: dict[str, Any] = {}
    for k, v in vars(detector).items():
        if k in params or callable(v):  # parameters are rebuilt by the constructor, bound tests by _reset
            continue
        if isinstance(v, stats.Mean):
            out[k] = {"mean": [v.n, v.get()]}
        elif v is None or isinstance(v, (bool, int, float)):
            out[k] = _plain(v)
        else:
            raise SchemaError(f"{type(detector).__name__}.{k} is a {type(v).__name__}: daskscale cannot write it "
                              "into a checkpoint (River changed its detector?)")
    return out


def set_river_state(detector: Any, state: dict[str, Any]) -> None:
    """Write a :func:`river_state` snapshot back into a River detector built with the same parameters."""
    from river import stats

    for k, v in state.items():
        if isinstance(v, dict) and "mean" in v:
            m, (n, mean) = stats.Mean(), v["mean"]
            if n:
                m.update(mean, w=n)  # from empty, a weight-n update sets n and the mean exactly
            setattr(detector, k, m)
        else:
            setattr(detector, k, _value(v))


class _RiverDetector(DriftDetector):
    """A River detector in ``river_`` (rebuilt by ``reset``), its fields as the state."""

    def _new(self) -> Any:
        raise NotImplementedError

    def reset(self) -> None:
        self.river_ = self._new()

    def get_state(self) -> dict[str, Any]:
        return river_state(self.river_)

    def set_state(self, state: dict[str, Any]) -> None:
        self.river_ = self._new()
        set_river_state(self.river_, state)

    def get_params(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}


class DDM(_RiverDetector):
    """Drift Detection Method (River's) on the per-row error bits.

    Parameters
    ----------
    min_rows : int
        Rows seen before a warning or drift can be signalled (River's ``warm_start``).
    warning_level, drift_level : float
        Standard deviations above the best error rate for a warning, for a drift.

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
    takes_errors = True

    def __init__(self, min_rows: int = 1000, warning_level: float = 2.0, drift_level: float = 3.0):
        self.min_rows = min_rows
        self.warning_level = warning_level
        self.drift_level = drift_level
        self.reset()

    def _new(self) -> Any:
        from river.drift.binary import DDM as RiverDDM

        return RiverDDM(warm_start=self.min_rows, warning_threshold=self.warning_level,
                        drift_threshold=self.drift_level)

    def update(self, n_errors: float, n: int, errors: Any = None) -> str | None:
        """Feed a batch: ``errors`` (a boolean per row, in row order) or ``n_errors`` of ``n`` rows."""
        n, k = int(n), int(round(float(n_errors)))
        bits = (bool(e) for e in errors) if errors is not None else (
            (i + 1) * k // n - i * k // n for i in range(n))  # k ones spread evenly over n rows
        ddm = self.river_
        for bit in bits:
            ddm.update(bit)
            if ddm.drift_detected:
                self.reset()  # the next batch starts a new concept
                return "drift"
        return "warning" if ddm.warning_detected else None


class PageHinkley(_RiverDetector):
    """Page-Hinkley test (River's) for a rise of the batch error rate.

    Parameters
    ----------
    threshold : float
        Cumulative rise of the error rate (above its running mean) that signals drift.
    delta : float
        Rise tolerated per batch.
    alpha : float
        Forgetting factor of the cumulative sum.
    min_batches : int
        Batches seen before a drift can be signalled.

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

    def _new(self) -> Any:
        from river.drift import PageHinkley as RiverPH

        return RiverPH(min_instances=self.min_batches, delta=self.delta, threshold=self.threshold, alpha=self.alpha,
                       mode="up")

    def update(self, n_errors: float, n: int) -> str | None:
        self.river_.update(float(n_errors) / max(1, int(n)))
        if self.river_.drift_detected:
            self.reset()
            return "drift"
        return None


class ADWIN(DriftDetector):
    """ADaptive WINdowing (River's) on the batch error rate.

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

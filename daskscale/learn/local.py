"""Where a trainer's tasks run: the Dask client, or this process when there is none.

The distributed trainers (parameter averaging, one-vs-rest, bagging, feature sharding, the
searches) speak to a ``distributed.Client`` through four calls: ``submit``, ``compute``,
``gather`` and ``scheduler_info``. :class:`LocalExecutor` answers the same four calls by
running each task at once in this process (the ``sync`` Dask scheduler for collections), so
the same trainer code fits small in-memory data without a cluster: in a notebook before
``daskscale.connect()``, and in scikit-learn's estimator checks.
"""

from __future__ import annotations

from typing import Any

import dask

__all__ = ["Done", "LocalExecutor", "executor", "in_process", "LOCAL_WORKER"]

#: the one "worker" a :class:`LocalExecutor` reports
LOCAL_WORKER = "local"

# keywords of Client.submit/compute that place work on the cluster: meaningless in-process
_PLACEMENT = ("workers", "allow_other_workers", "pure", "priority", "key", "resources", "retries")


class Done:
    """The result of a task already run: the part of ``distributed.Future`` the trainers use."""

    status = "finished"

    def __init__(self, value: Any):
        self.value = value

    def result(self, timeout: float | None = None) -> Any:
        return self.value

    def done(self) -> bool:
        return True

    def exception(self) -> None:
        return None

    def release(self) -> None:
        """Nothing to release: the value lives in this process."""

    def cancel(self) -> None:
        """Nothing to cancel: the task has run."""


def _resolve(x: Any) -> Any:
    """``x`` with every :class:`Done` replaced by its value (as the scheduler does with futures)."""
    if isinstance(x, Done):
        return x.value
    if isinstance(x, list):
        return [_resolve(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_resolve(v) for v in x)
    if isinstance(x, dict):
        return {k: _resolve(v) for k, v in x.items()}
    return x


class LocalExecutor:
    """Runs every task at once in this process, in submission order.

    Examples
    --------
    >>> ex = LocalExecutor()
    >>> a = ex.submit(lambda v: v + 1, 1, workers=["x"])
    >>> ex.gather([ex.submit(lambda u, v: u * v, a, 3)])
    [6]
    """

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Done:
        kw = {k: v for k, v in kwargs.items() if k not in _PLACEMENT}
        return Done(fn(*_resolve(args), **_resolve(kw)))

    def compute(self, x: Any, **kwargs: Any) -> Any:
        if isinstance(x, (list, tuple)):
            return [Done(v) for v in dask.compute(*x, scheduler="sync")]
        return Done(dask.compute(x, scheduler="sync")[0])

    def gather(self, futures: Any) -> Any:
        return _resolve(futures)

    def scheduler_info(self, **kwargs: Any) -> dict[str, Any]:
        return {"workers": {LOCAL_WORKER: {"memory_limit": 0}}}


def executor(client: Any = None) -> Any:
    """``client`` if given; ``"local"`` or no current Dask client: a :class:`LocalExecutor`.

    Examples
    --------
    >>> type(executor("local")).__name__
    'LocalExecutor'
    """
    if isinstance(client, str):
        if client != "local":
            from daskscale.errors import OptionError

            raise OptionError(f"client={client!r}: pass a distributed.Client, None (the current client, or "
                              "this process when there is none) or 'local' (always this process)")
        return LocalExecutor()
    if client is not None:
        return client
    from daskscale.monitor import current_client

    return current_client() or LocalExecutor()


def in_process(ex: Any) -> Any:
    """A context in which Dask collections computed by a trainer run where ``ex`` runs its tasks:
    in this process for a :class:`LocalExecutor` (even when a client exists), else unchanged."""
    from contextlib import nullcontext

    return dask.config.set(scheduler="sync") if isinstance(ex, LocalExecutor) else nullcontext()

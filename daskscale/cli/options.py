"""Options shared by several verbs."""

from __future__ import annotations

from typing import Any, Callable

import click

from daskscale.cluster import Connection, connect


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--scheduler``, ``--workers`` and ``--memory-limit`` for verbs that compute."""
    f = click.option("--memory-limit", default=None, help="Memory limit per local worker, e.g. 2GiB.")(f)
    f = click.option("--workers", type=int, default=None, help="Local workers (default: one per core).")(f)
    f = click.option("--scheduler", envvar="DASK_SCHEDULER_ADDRESS", default=None,
                     help="Scheduler address to join instead of starting a local cluster.")(f)
    return f


def open_cluster(scheduler: str | None, workers: int | None, memory_limit: str | None,
                 quiet: bool = False) -> Connection:
    return connect(scheduler, n_workers=workers, memory_limit=memory_limit, quiet=quiet)

"""Options shared by several verbs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import click

from daskscale.cli import debugging

if TYPE_CHECKING:
    from daskscale.cluster import Connection


def cluster_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--scheduler``, ``--workers`` and ``--memory-limit`` for verbs that compute."""
    f = click.option("--memory-limit", default=None, help="Memory limit per local worker, e.g. 2GiB.")(f)
    f = click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="Local workers (default: one per core).")(f)
    f = click.option("--scheduler", envvar="DASK_SCHEDULER_ADDRESS", default=None,
                     help="Scheduler address to join instead of starting a local cluster.")(f)
    return f


def open_cluster(scheduler: str | None, workers: int | None, memory_limit: str | None,
                 quiet: bool = False) -> Connection:
    """The verb's cluster: joined at ``scheduler``, or started here.

    A cluster started here does not print each failed task's traceback on this terminal (the
    error itself reaches the command, which prints one line) unless :func:`debugging`.
    """
    from daskscale.cluster import connect, hide_task_failure_logs  # not at import: keeps --help fast

    conn = connect(scheduler, n_workers=workers, memory_limit=memory_limit, quiet=quiet)
    if conn.owns_cluster and not debugging():
        hide_task_failure_logs(conn.client)
    return conn

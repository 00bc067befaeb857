"""distributed's internals behind daskscale.adapters.distributed: the task progress hook.

(The dashboard's internals are checked by ``tests/test_dashboard.py`` through ``check()``.)"""

from __future__ import annotations


def test_watch_tasks_reports_every_task_of_a_graph_until_done(client):
    import dask.array as da
    import distributed

    from daskscale.adapters.distributed import watch_tasks

    seen = []
    future = client.compute(da.ones((1000, 4), chunks=(100, 4)).sum())
    watch_tasks(future, lambda done, total: seen.append((done, total)))
    assert future.done(), f"distributed {distributed.__version__}: TextProgressBar returned before the end"
    assert seen and seen[-1][0] == seen[-1][1] > 10, (
        f"distributed {distributed.__version__}: TextProgressBar no longer calls _draw_bar(remaining=, all=) "
        f"as daskscale/adapters/distributed.py expects (saw {seen[-3:]})")

"""The malloc thresholds raised while blocks stream (daskscale.adapters.glibc), checked in real
worker processes with glibc's own counters: these fail loudly if glibc or the nanny's
environment stops behaving as the adapter assumes."""

from __future__ import annotations

import numpy as np


def test_blocks_on_heap_lets_a_worker_reuse_block_buffers(client):
    """A nanny-started worker (MALLOC_TRIM_THRESHOLD_ set) gives every 16 MB block a fresh
    ``mmap`` (unmapped again when freed); inside ``blocks_on_heap`` blocks come from the heap, so
    a freed block's memory is reused. Measured with glibc's own counters (``mallinfo2``); the
    settings are restored when the last (nested) use ends."""
    from daskscale.adapters import glibc

    def mmapped_bytes_of_a_block(nested: int) -> tuple:
        import contextlib
        import os

        with contextlib.ExitStack() as stack:
            for _ in range(nested):
                stack.enter_context(glibc.blocks_on_heap())
            before = glibc.mmapped_bytes()
            x = np.ones(2_000_000)  # one 16 MB block
            mapped = glibc.mmapped_bytes() - before
            del x
            users = glibc.PROCESS.heap.users
        return os.environ.get("MALLOC_TRIM_THRESHOLD_"), mapped, users, glibc.PROCESS.heap.users

    for trim, mapped, users, after in client.run(mmapped_bytes_of_a_block, 0).values():
        assert trim is not None and mapped >= 16_000_000 and users == after == 0
    for trim, mapped, users, after in client.run(mmapped_bytes_of_a_block, 2).values():
        assert mapped == 0 and users == 2 and after == 0
    for trim, mapped, users, after in client.run(mmapped_bytes_of_a_block, 0).values():
        assert mapped >= 16_000_000  # restored


def test_blocks_on_heap_linger_keeps_the_heap_between_short_tasks(client):
    """With ``linger``, the settings outlive the last use by that long, so back-to-back short
    tasks (one per parameter-averaging round) reuse the same heap; re-entering in time keeps
    them; once the process is idle for ``linger``, the environment's settings are back."""
    from daskscale.adapters import glibc

    def mapped_after(linger: float, pause: float, reenter: bool) -> tuple:
        import time

        def mapped_by_a_block() -> int:
            before = glibc.mmapped_bytes()
            x = np.ones(2_000_000)  # one 16 MB block
            mapped = glibc.mmapped_bytes() - before
            del x
            return mapped

        with glibc.blocks_on_heap(linger=linger):
            pass
        if reenter:  # a second short use before the first one's linger ends: it lingers anew
            time.sleep(linger * 0.6)
            with glibc.blocks_on_heap(linger=linger):
                pass
            time.sleep(linger * 0.6)  # past the first restore's time, not the second's
        else:
            time.sleep(pause)
        mapped = mapped_by_a_block()
        time.sleep(linger * 1.5)  # whatever lingered has been restored by now
        return mapped, mapped_by_a_block(), glibc.PROCESS.heap.raised

    for mapped, later, raised in client.run(mapped_after, 0.5, 0.0, False).values():
        assert mapped == 0 and later >= 16_000_000 and not raised

    def threads_after_many_short_uses() -> int:
        import threading

        before = threading.active_count()
        for _ in range(200):  # 200 rounds of a few milliseconds: one pending restore, not 200
            with glibc.blocks_on_heap(linger=0.5):
                pass
        return threading.active_count() - before

    assert all(n <= 1 for n in client.run(threads_after_many_short_uses).values())
    for mapped, later, raised in client.run(mapped_after, 0.5, 0.0, True).values():
        assert mapped == 0 and later >= 16_000_000 and not raised
    for mapped, later, raised in client.run(mapped_after, 0.0, 0.0, False).values():
        assert mapped >= 16_000_000 and later >= 16_000_000 and not raised

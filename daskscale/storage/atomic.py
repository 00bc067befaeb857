"""Atomic directory writes: build under a temporary name, rename into place when complete.

A temporary sibling is named ``.NAME.tmp-<id>.<pid>.<host>``: the writer's process id and
a tag of its host name are part of the name (not a file inside, since Zarr's ``mode="w"``
empties the folder, and a temporary *file* has no inside). A writer that is killed
(``SIGKILL``, power loss) cannot remove its temporary folder, so the next write to the same
target removes the stale ones: those of this host whose process is gone, and those of
another host (or of an older daskscale, without an owner) not modified for
:data:`STALE_AFTER` seconds. A temporary folder of a live writer is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Iterator

from daskscale.errors import StoreError

__all__ = ["atomic_dir", "atomic_file", "temp_sibling", "remove_stale_temps", "remove_tree", "STALE_AFTER"]

#: seconds after which a temporary sibling whose writer cannot be checked counts as abandoned
STALE_AFTER = 24 * 3600

_OWNER = re.compile(r"^[0-9a-f]{12}(?:\.(?P<pid>\d+)\.(?P<host>[0-9a-f]{8}))?$")


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def temp_sibling(path: Path) -> Path:
    """A hidden sibling of ``path`` on the same file system (so ``rename`` is atomic).

    Its name carries this process's id and host tag, so that a later writer can tell
    whether the writer is gone (:func:`remove_stale_temps`).
    """
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}.{os.getpid()}.{_host_tag()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def _is_stale(path: Path, suffix: str, now: float) -> bool:
    m = _OWNER.match(suffix)
    if m is None:  # not one of ours (a user's file that happens to share the prefix)
        return False
    if m["pid"] is not None and m["host"] == _host_tag():
        return int(m["pid"]) != os.getpid() and not _pid_alive(int(m["pid"]))
    return now - _newest_mtime(path) > STALE_AFTER


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary siblings of ``path`` left by writers that are gone; return them."""
    target = Path(path)
    prefix = f".{target.name}.tmp-"
    if not target.parent.is_dir():
        return []
    now = time.time()
    removed = []
    for p in target.parent.iterdir():
        if p.name.startswith(prefix):
            with contextlib.suppress(OSError):
                if _is_stale(p, p.name[len(prefix):], now):
                    remove_tree(p)
                    removed.append(p)
    return removed


def remove_tree(path: Path, attempts: int = 5) -> None:
    """Remove a folder (or file), retrying while late writers (cancelled tasks) still add files."""
    for _ in range(attempts):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if not os.path.lexists(path):
            return
        time.sleep(0.2)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` only if the block completes.

    On any exception the temporary directory is removed; after a kill (nothing runs) it is
    hidden, never renamed, and removed by the next write to ``path``. The target path is
    untouched either way: the previous store or nothing.
    """
    target = Path(path)
    if target.exists() and not overwrite:
        raise StoreError(f"{target} already exists; pass overwrite=True to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = temp_sibling(target)
    try:
        yield tmp
    except BaseException:
        remove_tree(tmp)
        raise
    if target.exists():
        old = temp_sibling(target)
        os.rename(target, old)
        os.rename(tmp, target)
        remove_tree(old)
    else:
        os.rename(tmp, target)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path that replaces ``path`` (``os.replace``) on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = temp_sibling(target)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()

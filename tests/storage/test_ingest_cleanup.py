"""No hidden staging or temporary folder outlives an ingest: failed ones clean up, killed ones are
removed by the next ingest into the same store, a live writer's are never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import dask.array as da
import numpy as np
import pytest

import daskscale
from daskscale.errors import SchemaError
from daskscale.storage.atomic import STALE_AFTER, _host_tag


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def _boom(block, block_info=None):
    if block_info[0]["chunk-location"][0] == 3:
        raise RuntimeError("disk full (simulated)")
    return block


def test_failures_mid_ingest_leave_no_temporary_folders(tmp_path, client):
    # a bad row in the last of many CSV blocks: staging already holds the earlier blocks
    body = "".join(f"{i},{i},{i % 2}\n" for i in range(3000))
    (tmp_path / "late.csv").write_text("a,b,y\n" + body + "1,2\n")
    with pytest.raises(SchemaError, match="line 3002"):
        daskscale.ingest(tmp_path / "late.csv", tmp_path / "late.zarr", target="y", blocksize=2000)
    # an error while the store's chunks are written (float64 source: the precision notes too)
    X = da.from_array(np.ones((1000, 2)), chunks=(100, 2)).map_blocks(_boom, dtype=np.float64)
    with pytest.raises(RuntimeError, match="disk full"):
        daskscale.ingest(X, tmp_path / "arr.zarr", chunk_rows=100)
    assert _temps(tmp_path) == []
    assert not (tmp_path / "late.zarr").exists() and not (tmp_path / "arr.zarr").exists()


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_next_ingest_removes_stale_temporaries_of_that_store_only(tmp_path, client):
    host, dead = _host_tag(), _dead_pid()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        names = {
            f".out.zarr.tmp-aaaaaaaaaaaa.{dead}.{host}": False,              # killed writer, this host
            f".out.zarr-staging.tmp-bbbbbbbbbbbb.{dead}.{host}": False,      # its staging folder
            f".out.zarr.tmp-cccccccccccc.{sleeper.pid}.{host}": True,        # live writer: kept
            ".out.zarr.tmp-dddddddddddd.1234.0badc0de": True,                # other host, recent: kept
            ".out.zarr.tmp-eeeeeeeeeeee.1234.0badc0de": False,               # other host, old: removed
            ".out.zarr.tmp-ffffffffffff": False,                             # older daskscale, old
            ".out.zarr-staging.tmp-abcabcabcabc": True,                      # older daskscale, recent
            ".out.zarr.tmp-not-ours": True,                                  # not a daskscale name
            f".other.zarr.tmp-aaaaaaaaaaaa.{dead}.{host}": True,             # another store's
        }
        old = time.time() - STALE_AFTER - 60
        for name in names:
            (tmp_path / name / "X").mkdir(parents=True)
            (tmp_path / name / "X" / "0").write_bytes(b"x" * 100)
            if "eeee" in name or "ffff" in name:
                for p in (tmp_path / name / "X" / "0", tmp_path / name / "X", tmp_path / name):
                    os.utime(p, (old, old))
        daskscale.ingest(np.ones((10, 2), dtype=np.float32), tmp_path / "out.zarr")
        assert _temps(tmp_path) == sorted(n for n, kept in names.items() if kept)
        assert daskscale.info(tmp_path / "out.zarr").n_rows == 10
    finally:
        sleeper.kill()
        sleeper.wait()

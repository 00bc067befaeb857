"""``daskscale ingest`` and ``daskscale info --check`` as a user runs them: one line per message."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import zarr

import daskscale

# distributed warns when another cluster on this machine holds the default dashboard port (a
# race of daskscale.connect's port choice with the other processes here): not ingest's output
ENV = dict(os.environ, DASKSCALE_PROGRESS="0", PYTHONWARNINGS="ignore:Port:UserWarning:distributed.node")
ENV.pop("DASKSCALE_DEBUG", None)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "daskscale", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300)


@pytest.mark.parametrize("content, line", [
    ("a,b,y\n1,2,0\n3,4\n5,6,1\n", 3),      # too few fields
    ("a,b,y\n1,2,0\n5,6,1\n3,4,5,6\n", 4),  # too many
])
def test_cli_ragged_csv_is_one_line_on_a_fresh_cluster(tmp_path, content, line):
    (tmp_path / "bad.csv").write_text(content)
    out = _run("ingest", tmp_path / "bad.csv", tmp_path / "bad.zarr", "--target", "y", "--workers", "1")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "Compute Failed" not in out.stderr and "Traceback" not in out.stderr
    assert lines[0].startswith("daskscale: error: ") and f"bad.csv, line {line} " in lines[0]
    assert not (tmp_path / "bad.zarr").exists()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_cli_precision_warning_is_one_line_and_dtype_float64_keeps_digits(tmp_path):
    r = np.random.default_rng(0)
    pd.DataFrame({"big": 1e12 + r.normal(size=500), "ok": r.normal(size=500)}).to_csv(tmp_path / "p.csv", index=False)
    out = _run("ingest", tmp_path / "p.csv", tmp_path / "a.zarr", "--workers", "1")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("daskscale: warning: ") and "'big'" in lines[0], out.stderr
    assert "'ok'" not in lines[0]
    out = _run("ingest", tmp_path / "p.csv", tmp_path / "b.zarr", "--workers", "1", "--dtype", "float64")
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr
    assert daskscale.open_dataset(tmp_path / "b.zarr").X.dtype == np.float64


def test_cli_short_rows_fill_opt_in(tmp_path):
    (tmp_path / "s.csv").write_text("a,b,c\n1,2,3\n4,5\n")
    out = _run("ingest", tmp_path / "s.csv", tmp_path / "s.zarr", "--workers", "1", "--on-short-rows", "fill")
    assert out.returncode == 0, out.stderr
    X = daskscale.open_dataset(tmp_path / "s.zarr").X.values
    assert X.shape == (2, 3) and np.isnan(X[1, 2]) and X[1, 1] == 5


def test_info_check_reports_every_bad_chunk(tmp_path):
    X = np.random.default_rng(0).normal(size=(1000, 3))
    store = daskscale.ingest(X, tmp_path / "c.zarr", y=np.arange(1000) % 2, chunk_rows=200)
    out = _run("info", store, "--check")
    assert out.returncode == 0 and out.stdout.strip() == "ok: 10 chunks verified", out.stdout + out.stderr
    g = zarr.open_group(str(store), mode="r")
    assert g["X"].chunks == (200, 3)
    chunk = lambda i: store / "X" / "c" / str(i) / "0"  # noqa: E731 - zarr v3 default chunk keys
    data = chunk(1).read_bytes()
    chunk(1).write_bytes(data[: len(data) // 2])                     # truncated
    chunk(3).write_bytes(os.urandom(len(chunk(3).read_bytes())))     # garbage
    out = _run("info", store, "--check")
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout
    assert "'X' chunk 1 (rows 200:400)" in lines[0] and "'X' chunk 3 (rows 600:800)" in lines[1]
    assert "Traceback" not in out.stderr

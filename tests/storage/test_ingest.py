"""Ingest from every source kind; atomicity; bad input gets the package's errors."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import textwrap
import time

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import daskscale
import daskscale.storage
from daskscale.errors import DaskscaleError, InputTypeError, SchemaError, StoreError


def _frame(n=500, seed=0):
    r = np.random.default_rng(seed)
    return pd.DataFrame({"a": r.normal(size=n), "b": r.integers(0, 5, n), "c": r.random(n) > 0.5,
                         "label": r.choice(["cat", "dog", "eel"], n)})


def test_csv_glob_roundtrip_with_string_target(tmp_path, client):
    df = _frame(900)
    for i in range(3):
        df.iloc[i * 300:(i + 1) * 300].to_csv(tmp_path / f"part{i}.csv", index=False)
    store = daskscale.ingest(str(tmp_path / "part*.csv"), tmp_path / "s.zarr", target="label", chunk_rows=256)
    X, y = daskscale.load_xy(store)
    assert X.shape == (900, 3) and X.chunks[0][0] == 256
    np.testing.assert_allclose(X[:, 0].compute(), df["a"].to_numpy(np.float32), rtol=1e-6)
    classes = daskscale.info(store).classes
    assert classes == ["cat", "dog", "eel"]
    assert (np.asarray(classes)[y.compute()] == df["label"].to_numpy()).all()
    assert list(daskscale.open_dataset(store).feature.values) == ["a", "b", "c"]


def test_csv_split_in_byte_blocks_keeps_every_row(tmp_path, client):
    df = _frame(5000)
    df.to_csv(tmp_path / "big.csv", index=False)
    store = daskscale.ingest(tmp_path / "big.csv", tmp_path / "s.zarr", target="label", blocksize=20_000)
    X, _ = daskscale.load_xy(store)
    np.testing.assert_allclose(X[:, 1].compute(), df["b"].to_numpy(np.float32))


def test_categorical_feature_encoded_or_rejected(tmp_path, client):
    df = _frame(200)
    df["color"] = np.where(np.arange(200) % 3 == 0, "red", "blue")
    df.loc[5, "color"] = None
    df.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(SchemaError, match=r"c\.csv.*'color'"):
        daskscale.ingest(tmp_path / "c.csv", tmp_path / "bad.zarr", target="label")
    assert not (tmp_path / "bad.zarr").exists()
    store = daskscale.ingest(tmp_path / "c.csv", tmp_path / "ok.zarr", target="label", categorical="encode")
    X, _ = daskscale.load_xy(store)
    col = X[:, 3].compute()
    assert daskscale.info(store).attrs["categories"]["color"] == ["blue", "red"]
    assert col[0] == 1 and col[1] == 0 and np.isnan(col[5])


def test_parquet_written_like_spark(tmp_path, client):
    root = tmp_path / "spark_out"
    df = _frame(600).drop(columns=["label"])
    df["y"] = np.arange(600) % 2
    for k, part in enumerate(df.iloc[i:i + 200] for i in range(0, 600, 200)):
        d = root / f"year={2020 + k}"
        d.mkdir(parents=True)
        part.to_parquet(d / f"part-0000{k}-abc.snappy.parquet", index=False)
        (d / f".part-0000{k}-abc.snappy.parquet.crc").write_bytes(b"crc")
    (root / "_SUCCESS").write_bytes(b"")
    store = daskscale.ingest(root, tmp_path / "p.zarr", target="y")
    ds = daskscale.open_dataset(store)
    assert ds.X.shape == (600, 4)
    assert sorted(set(ds.X.sel(feature="year").values.tolist())) == [2020, 2021, 2022]
    assert int(ds.y.sum()) == int(df["y"].sum())
    assert daskscale.info(store).classes == [0, 1]  # an integer target's labels are recorded


def test_npy_memory_mapped(tmp_path, client):
    X = np.random.default_rng(0).random((1000, 4))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", np.arange(1000))
    store = daskscale.ingest(tmp_path / "X.npy", tmp_path / "n.zarr", y=tmp_path / "y.npy", chunk_rows=300)
    Xd, yd = daskscale.load_xy(store)
    np.testing.assert_allclose(Xd.compute(), X.astype(np.float32))
    assert (yd.compute() == np.arange(1000)).all()


def test_netcdf_and_xarray_dataset(tmp_path, client):
    n = 400
    ds = xr.Dataset({"t": ("time", np.linspace(0, 1, n)), "p": ("time", np.arange(n, dtype="f8")),
                     "target": ("time", np.arange(n) % 3)})
    ds.to_netcdf(tmp_path / "d.nc")
    store = daskscale.ingest(tmp_path / "d.nc", tmp_path / "x.zarr", target="target")
    out = daskscale.open_dataset(store)
    assert list(out.feature.values) == ["t", "p"]
    np.testing.assert_allclose(out.X.values[:, 1], np.arange(n))
    store2 = daskscale.ingest(ds, tmp_path / "x2.zarr", target="target")
    np.testing.assert_allclose(daskscale.load_xy(store2)[1].compute(), np.arange(n) % 3)


def test_in_memory_sources(tmp_path, client):
    X = np.arange(30.0).reshape(10, 3)
    daskscale.ingest(X, tmp_path / "a.zarr", y=np.arange(10))
    daskscale.ingest(da.from_array(X, chunks=4), tmp_path / "b.zarr")
    daskscale.ingest(pd.DataFrame(X, columns=list("abc")), tmp_path / "c.zarr", target="c")
    assert daskscale.info(tmp_path / "c.zarr").n_features == 2
    assert daskscale.info(tmp_path / "b.zarr").target is None


@pytest.mark.parametrize("content, match", [
    ("a,b,y\n1,2,0\n3,4,5,6\n", r"r\.csv.*ragged"),
    ("a,b,y\n", r"no rows"),
])
def test_bad_csv_names_the_file(tmp_path, client, content, match):
    (tmp_path / "r.csv").write_text(content)
    with pytest.raises(SchemaError, match=match):
        daskscale.ingest(tmp_path / "r.csv", tmp_path / "r.zarr", target="y")
    assert not (tmp_path / "r.zarr").exists()


def test_bad_inputs(tmp_path, client):
    (tmp_path / "m.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SchemaError, match="target column 'y' not found"):
        daskscale.ingest(tmp_path / "m.csv", tmp_path / "m.zarr", target="y")
    with pytest.raises(SchemaError, match="no input files match"):
        daskscale.ingest(str(tmp_path / "nothing*.csv"), tmp_path / "e.zarr")
    with pytest.raises(SchemaError, match="10 rows but y has 9"):
        daskscale.ingest(np.ones((10, 2)), tmp_path / "l.zarr", y=np.ones(9))
    with pytest.raises(InputTypeError):
        daskscale.ingest({"a": 1}, tmp_path / "d.zarr")
    with pytest.raises(StoreError, match=r"not a (\(complete\) )?daskscale store"):
        xr.Dataset({"v": ("x", [1, 2])}).to_zarr(tmp_path / "plain.zarr", zarr_format=3, consolidated=False)
        daskscale.open_dataset(tmp_path / "plain.zarr")
    with pytest.raises(StoreError, match="does not exist"):
        daskscale.load_xy(tmp_path / "missing.zarr")
    assert issubclass(SchemaError, ValueError) and issubclass(SchemaError, DaskscaleError)


def test_existing_store_is_not_overwritten_unless_asked(tmp_path, client):
    p = daskscale.ingest(np.ones((5, 2)), tmp_path / "s.zarr")
    with pytest.raises(StoreError, match="already exists"):
        daskscale.ingest(np.zeros((5, 2)), p)
    daskscale.ingest(np.zeros((7, 2)), p, overwrite=True)
    assert daskscale.info(p).n_rows == 7


def test_ingest_interrupted_leaves_no_store(tmp_path):
    """Kill an ingest part-way (SIGKILL): the target path must not exist afterwards."""
    csv = tmp_path / "big.csv"
    r = np.random.default_rng(1)
    pd.DataFrame(r.random((300_000, 8)), columns=[f"f{i}" for i in range(8)]).to_csv(csv, index=False)
    target = tmp_path / "out.zarr"
    code = textwrap.dedent(f"""
        import dask, daskscale
        dask.config.set(scheduler="synchronous")
        daskscale.ingest({str(csv)!r}, {str(target)!r}, chunk_rows=2000, blocksize=200_000)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 120
    # wait until the temporary store has started to fill, then kill
    while time.time() < deadline:
        tmps = [p for p in tmp_path.iterdir() if p.name.startswith(".out.zarr.tmp-")]
        if tmps and any((tmps[0] / "X").rglob("*")) and len(list((tmps[0] / "X").rglob("*"))) > 5:
            break
        if proc.poll() is not None:
            pytest.fail("ingest finished before it could be interrupted; make the CSV larger")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not target.exists()
    assert not daskscale.storage.is_store(target)
    left = [p for p in tmp_path.iterdir() if p.name.startswith((".out.zarr.tmp-", ".out.zarr-staging.tmp-"))]
    assert len(left) == 2  # the killed writer could not clean up: its temporary store and staging
    daskscale.ingest(np.ones((4, 2)), target)  # the next ingest into the same store removes them
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    assert daskscale.info(target).n_rows == 4


def test_csv_larger_than_worker_memory(tmp_path):
    """A CSV larger than each worker's memory limit ingests under that limit (no restart)."""
    limit = 500 * 2**20
    csv = tmp_path / "big.csv"
    r = np.random.default_rng(2)
    block = np.round(r.normal(size=(40_000, 21)), 6)
    block[:, -1] = block[:, -1] > 0
    text = io.StringIO()
    np.savetxt(text, block, delimiter=",", fmt="%.6g")
    body = text.getvalue()
    reps = 1 + (limit + 2**20) // len(body)
    with open(csv, "w") as fh:
        fh.write(",".join(f"f{i}" for i in range(20)) + ",y\n")
        for _ in range(reps):
            fh.write(body)
    assert csv.stat().st_size > limit
    with daskscale.connect(n_workers=2, threads_per_worker=1, memory_limit=limit, dashboard_address=None,
                           quiet=True) as conn:
        before = {w: info["id"] for w, info in conn.scheduler_info()["workers"].items()}
        store = daskscale.ingest(csv, tmp_path / "big.zarr", target="y", blocksize=16 * 2**20, chunk_mb=8)
        after = {w: info["id"] for w, info in conn.scheduler_info()["workers"].items()}
        assert before == after, "a worker was restarted"
        X, y = daskscale.load_xy(store)
        assert X.shape == (reps * 40_000, 20)
        assert X.nbytes < csv.stat().st_size  # float32 is smaller than the text
        s = float(y.sum().compute())
    assert 0.4 * X.shape[0] < s < 0.6 * X.shape[0]

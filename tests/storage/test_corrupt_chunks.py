"""A damaged chunk file is named wherever it is read, and ``check_store`` lists every bad one.

Each kind of damage (garbage, truncation, an empty file, bit flips, a valid chunk of the wrong
size) is put into one chunk of ``X`` or ``y`` of a real store, which is then read through every
read path: the lazy dataset computed on the session cluster (error raised on a worker, pickled
back), ``load_xy``, the worker-side block reader (its own decoder and zarr's), ``describe``,
an incremental fit, a store opened by URL, and ``check_store`` (on the cluster and locally).
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys

import numpy as np
import pytest
from numcodecs import Blosc

import daskscale
from daskscale.errors import DaskscaleError, StoreError
from daskscale.storage.chunks import ChunkProblem, CorruptChunkError, check_store

ROWS, COLS, CHUNK = 1_000, 4, 300  # chunks: rows 0:300, 300:600, 600:900, 900:1000


def _garbage(path: str) -> None:
    with open(path, "wb") as f:
        f.write(np.random.default_rng(0).bytes(2_000))


def _truncated(path: str) -> None:
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def _empty(path: str) -> None:
    open(path, "wb").close()


def _bit_flips(path: str) -> None:
    data = bytearray(open(path, "rb").read())
    for i in range(20, len(data), 5):
        data[i] ^= 0xFF
    with open(path, "wb") as f:
        f.write(bytes(data))


def _wrong_size(path: str) -> None:
    """A well-formed Blosc chunk holding a third of the values the chunk needs."""
    with open(path, "wb") as f:
        f.write(Blosc(cname="lz4", shuffle=Blosc.SHUFFLE).encode(np.ones(100, dtype="f8")))


def _truncated_plain_copy(path: str) -> None:
    """A Blosc frame stored as a plain copy (clevel 0, as Blosc stores incompressible data), cut
    in half: Blosc decodes it without an error, reading past the end of the frame."""
    nbytes = CHUNK * COLS * 4 if f"{os.sep}X{os.sep}" in path else CHUNK * 8
    frame = Blosc(cname="lz4", clevel=0).encode(np.zeros(nbytes, dtype=np.uint8))
    assert frame[2] & 0x02  # memcpyed flag
    with open(path, "wb") as f:
        f.write(frame[: len(frame) // 2])


DAMAGE = {"garbage": _garbage, "truncated": _truncated, "empty": _empty, "bit-flips": _bit_flips,
          "wrong-size": _wrong_size, "truncated-plain-copy": _truncated_plain_copy}


def _chunk_file(store, array: str, k: int) -> str:
    return os.path.join(store, array, "c", str(k), "0") if array == "X" else os.path.join(store, array, "c", str(k))


@pytest.fixture(scope="module")
def good(tmp_path_factory, client):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(ROWS, COLS))
    y = (X[:, 0] > 0).astype(np.int64)
    path = tmp_path_factory.mktemp("corrupt") / "good.zarr"
    daskscale.ingest(X, path, y=y, chunk_rows=CHUNK)
    return path, X.astype(np.float32), y


@pytest.fixture
def damaged(good, tmp_path):
    """``damage(kind, array, chunk)`` -> the path of a copy of the good store with that chunk damaged."""

    def damage(kind: str, array: str = "X", k: int = 1, more: tuple = ()) -> str:
        path = str(tmp_path / f"{kind}-{array}{k}.zarr")
        shutil.copytree(good[0], path)
        for arr, chunk in ((array, k), *more):
            DAMAGE[kind](_chunk_file(path, arr, chunk))
        return path

    return damage


def _rows(k: int) -> tuple[int, int]:
    return k * CHUNK, min((k + 1) * CHUNK, ROWS)


def _assert_names(err: CorruptChunkError, store: str, array: str, k: int) -> None:
    assert isinstance(err, StoreError) and isinstance(err, DaskscaleError) and isinstance(err, ValueError)
    assert (err.store, err.array, err.chunk, err.rows) == (str(store), array, k, _rows(k))
    msg = str(err)
    a, b = _rows(k)
    for part in (str(store), f"'{array}'", f"chunk {k}", f"rows {a}:{b}", "info --check", "again"):
        assert part in msg, (part, msg)
    assert "\n" not in msg


def test_a_good_store_reads_as_before_and_checks_clean(good):
    path, X, y = good
    ds = daskscale.open_dataset(path)
    assert ds.X.data.chunks == ((300, 300, 300, 100), (COLS,))  # still one task per chunk
    np.testing.assert_array_equal(ds.X.values, X)
    np.testing.assert_array_equal(ds.y.values, y)
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert check_store(path) == []


@pytest.mark.parametrize("kind", sorted(DAMAGE))
@pytest.mark.parametrize("array,k", [("X", 1), ("y", 3)])
def test_every_read_path_names_the_damaged_chunk(damaged, kind, array, k):
    from daskscale.engine.source import ZarrReader

    path = damaged(kind, array, k)
    ds = daskscale.open_dataset(path)
    with pytest.raises(CorruptChunkError) as e:  # computed on the session cluster's workers
        ds[array].sum().compute()
    _assert_names(e.value, path, array, k)

    X, y = daskscale.load_xy(path)
    with pytest.raises(CorruptChunkError) as e:
        (X if array == "X" else y).compute(scheduler="sync")
    _assert_names(e.value, path, array, k)

    reader = ZarrReader(path, [300, 300, 300, 100], has_y=True)
    reader.read(0)  # a good block still reads
    with pytest.raises(CorruptChunkError) as e:
        reader.read(k)
    _assert_names(e.value, path, array, k)

    problems = check_store(path)
    assert [(p.array, p.chunk, p.rows) for p in problems] == [(array, k, _rows(k))]


@pytest.mark.parametrize("kind", ["garbage", "wrong-size"])
def test_describe_and_fit_name_the_chunk(damaged, kind):
    from sklearn.linear_model import SGDClassifier

    path = damaged(kind, "X", 2)
    with pytest.raises(CorruptChunkError) as e:
        daskscale.describe(path)
    _assert_names(e.value, path, "X", 2)
    with pytest.raises(CorruptChunkError) as e:
        daskscale.Incremental(SGDClassifier(random_state=0), epochs=1, validation_fraction=0.0).fit(path)
    _assert_names(e.value, path, "X", 2)


def test_a_store_opened_by_url_names_the_chunk(damaged):
    from daskscale.deploy.remote import open_url

    path = damaged("truncated", "X", 0)
    with pytest.raises(CorruptChunkError) as e:
        open_url("file://" + path).X.values
    assert e.value.chunk == 0 and e.value.rows == (0, 300) and "X/c/0/0" in str(e.value)


def test_check_store_lists_every_bad_chunk(damaged):
    path = damaged("garbage", "X", 0, more=(("X", 3), ("y", 1)))
    problems = check_store(path)
    assert [(p.array, p.chunk, p.rows) for p in problems] == [("X", 0, (0, 300)), ("X", 3, (900, 1000)),
                                                              ("y", 1, (300, 600))]
    line = str(problems[1])
    assert "\n" not in line and "'X'" in line and "chunk 3" in line and "rows 900:1000" in line and "X/c/3/0" in line
    assert all(isinstance(p, ChunkProblem) and p.reason.startswith(f"file {p.array}/c/") for p in problems)


def test_check_store_without_a_cluster(damaged):
    """No distributed client in the process: the chunks are decoded on local threads."""
    path = damaged("truncated", "y", 2, more=(("X", 1),))
    code = ("from daskscale.storage.chunks import check_store\n"
            f"print(';'.join(f'{{p.array}}{{p.chunk}}{{p.rows}}' for p in check_store({path!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "X1(300, 600);y2(600, 900)"


def test_the_error_pickles_as_itself():
    err = CorruptChunkError("/data/s.zarr", "X", 4, (400, 500), "file X/c/4/0 does not decode (RuntimeError: x)")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is CorruptChunkError and str(back) == str(err)
    assert (back.store, back.array, back.chunk, back.rows, back.reason) == (err.store, "X", 4, (400, 500), err.reason)


def test_a_missing_chunk_is_not_damage(good, tmp_path):
    """Zarr does not write a chunk that holds only the fill value: its absence is no problem."""
    path = tmp_path / "nan.zarr"
    X = np.full((600, 2), np.nan)
    X[:300] = 1.0
    daskscale.ingest(X, path, chunk_rows=300)
    assert not os.path.exists(_chunk_file(str(path), "X", 1))
    assert check_store(path) == []
    assert np.isnan(daskscale.open_dataset(path).X.values[300:]).all()

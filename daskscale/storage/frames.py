"""Table sources (CSV, Parquet, pandas/dask dataframes) -> float32 blocks, parsed once.

Each source is cut into *frame producers*: a label that names where the rows come from
(``file.csv bytes 0-67108864``, ``part-00003.parquet``, ``partition 7``) and a function that
returns a :class:`pandas.DataFrame`. One task per producer parses, validates and converts
the rows, and stages them as ``.npy`` files, so the source is parsed exactly once whatever
its size; a second, cheap pass turns the staged blocks into the store's chunks.
"""

from __future__ import annotations

import glob
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from daskscale.errors import SchemaError

__all__ = ["Producer", "csv_producers", "parquet_producers", "frame_producers", "expand_paths"]

Producer = tuple[str, Callable[[], pd.DataFrame]]

_MAX_CLASSES = 1000  # an integer target with at most this many values is recorded as classes
_MISSING = "\x00"  # stands for a missing string; never a category, so it gets no code
_SPARK_JUNK = ("_SUCCESS", "_committed_", "_started_", "_common_metadata", "_metadata")


def expand_paths(source: str | os.PathLike, suffixes: Sequence[str]) -> list[str]:
    """Files named by a path, a glob, or a directory (searched recursively for ``suffixes``)."""
    s = str(source)
    if any(ch in s for ch in "*?["):
        files = sorted(glob.glob(s, recursive=True))
    elif os.path.isdir(s):
        files = sorted(
            str(p) for p in Path(s).rglob("*")
            if p.is_file() and not p.name.startswith((".",) + _SPARK_JUNK)
            and not p.name.endswith(".crc")
            and (p.name.endswith(tuple(suffixes)) or p.name.startswith("part-"))
        )
    else:
        files = [s] if os.path.exists(s) else []
    if not files:
        raise SchemaError(f"no input files match {s!r}: the source is empty or the path is wrong")
    return files


def csv_producers(source: str | os.PathLike, *, blocksize: int = 64 * 2**20, **read_csv_kwargs: Any) -> list[Producer]:
    """Cut CSV files into byte ranges that start at line boundaries (quoted newlines unsupported)."""
    out: list[Producer] = []
    for path in expand_paths(source, (".csv", ".csv.gz", ".txt")):
        if path.endswith(".gz"):
            out.append((path, lambda p=path: pd.read_csv(p, **read_csv_kwargs)))
            continue
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            header = fh.readline()
            offsets = [fh.tell()]
            while offsets[-1] < size:
                fh.seek(min(size, offsets[-1] + blocksize))
                fh.readline()
                offsets.append(min(size, fh.tell()))
        if len(offsets) == 1:
            offsets.append(size)
        for i, (a, b) in enumerate(zip(offsets[:-1], offsets[1:])):
            label = f"{path} (bytes {a}-{b})"
            out.append((label, lambda p=path, a=a, b=b: pd.read_csv(
                io.BytesIO(header + _slice(p, a, b)), **read_csv_kwargs)))
    return out


def _slice(path: str, a: int, b: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(a)
        return fh.read(b - a)


def parquet_producers(source: str | os.PathLike) -> list[Producer]:
    """One producer per Parquet file; hive partition keys (``key=value`` dirs) become columns.

    Spark's marker files (``_SUCCESS``, ``_committed_*``, ``.crc``) are ignored.
    """
    import pyarrow.parquet as pq

    files = expand_paths(source, (".parquet", ".parq", ".pq"))
    root = str(source) if os.path.isdir(str(source)) else None

    def read(path: str) -> pd.DataFrame:
        df = pq.read_table(path).to_pandas()
        if root is not None:
            rel = Path(path).relative_to(root).parent
            for part in rel.parts:
                if "=" in part:
                    key, _, val = part.partition("=")
                    df[key] = np.nan if val == "__HIVE_DEFAULT_PARTITION__" else _scalar(val)
        return df

    return [(p, lambda p=p: read(p)) for p in files]


def _scalar(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def frame_producers(df: Any) -> list[Producer]:
    """Producers for an in-memory pandas DataFrame (one) or a dask DataFrame (one per partition)."""
    if isinstance(df, pd.DataFrame):
        return [("DataFrame", lambda: df)]
    parts = df.to_delayed()
    return [(f"partition {i}", (lambda d=d: d.compute(scheduler="sync"))) for i, d in enumerate(parts)]


@dataclass
class Staged:
    """What one parsed block left in the staging directory."""

    path: str
    label: str
    n_rows: int
    columns: list[str]
    uniques: dict[str, list[str]]
    target_values: list[int] | None = None  # distinct values of an integer target (if few)


def stage_block(
    producer: Producer,
    index: int,
    staging: str,
    *,
    target: str | None,
    categorical: str,
    features: list[str] | None,
) -> Staged:
    """Parse one block, validate its columns, and save float32 features (+ target) as .npy."""
    label, fn = producer
    try:
        df = fn()
    except pd.errors.ParserError as exc:
        raise SchemaError(f"{label}: the CSV is ragged or malformed: {exc}") from None
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{label}: could not be read: {exc}") from None
    if target is not None and target not in df.columns:
        raise SchemaError(f"{label}: target column {target!r} not found; columns are {list(df.columns)}")
    cols = [c for c in df.columns if c != target] if features is None else list(features)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise SchemaError(f"{label}: columns {missing} are missing (expected {cols})")
    if len(df) == 0:  # a header-only block: nothing to validate or stage
        return Staged(os.path.join(staging, f"block-{index:06d}"), label, 0, cols, {})
    uniques: dict[str, list[str]] = {}
    target_values = None
    X = np.empty((len(df), len(cols)), dtype=np.float32)
    strings: dict[str, np.ndarray] = {}
    for j, c in enumerate(cols):
        s = df[c]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            X[:, j] = s.to_numpy(dtype=np.float32, na_value=np.nan)
        elif pd.api.types.is_datetime64_any_dtype(s):
            X[:, j] = (s.astype("int64") / 1e9).to_numpy(dtype=np.float32)
        elif categorical == "encode":
            vals = s.astype("string").to_numpy(dtype=object, na_value=None)
            strings[c] = vals
            uniques[c] = sorted({v for v in vals if v is not None})
            X[:, j] = np.nan
        else:
            bad = s[pd.to_numeric(s, errors="coerce").isna() & s.notna()]
            example = repr(bad.iloc[0]) if len(bad) else "?"
            raise SchemaError(
                f"{label}: column {c!r} is not numeric (e.g. {example}); pass categorical='encode' "
                "to encode it as ordinal codes, or drop the column"
            )
    base = os.path.join(staging, f"block-{index:06d}")
    np.save(base + ".X.npy", X)
    if target is not None:
        t = df[target]
        if pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t):
            if t.isna().any():
                raise SchemaError(f"{label}: target column {target!r} has missing values")
            yv = t.to_numpy()
            np.save(base + ".y.npy", yv)
            if yv.dtype.kind in "biu":
                distinct = np.unique(yv)
                target_values = distinct.tolist() if len(distinct) <= _MAX_CLASSES else None
        else:
            vals = t.astype("string").to_numpy(dtype=object, na_value=None)
            if any(v is None for v in vals):
                raise SchemaError(f"{label}: target column {target!r} has missing values")
            strings[target] = vals
            uniques[target] = sorted(set(vals))
    for c, vals in strings.items():
        filled = np.asarray([_MISSING if v is None else v for v in vals], dtype=str)
        np.save(f"{base}.s{cols.index(c) if c in cols else 'y'}.npy", filled)
    return Staged(base, label, len(df), cols, uniques, target_values)


def load_staged(staged: Staged, categories: dict[str, list[str]], target: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a staged block back, replacing string columns by their ordinal codes."""
    X = np.load(staged.path + ".X.npy")
    for j, c in enumerate(staged.columns):
        if c in categories and c != target:
            vals = np.load(f"{staged.path}.s{j}.npy")
            X[:, j] = _codes(vals, categories[c])
    y = None
    if target is not None:
        if target in categories:
            y = _codes(np.load(f"{staged.path}.sy.npy"), categories[target]).astype(np.int64)
        else:
            y = np.load(staged.path + ".y.npy")
    return X, y


def _codes(values: np.ndarray, cats: list[str]) -> np.ndarray:
    cats_arr = np.asarray(cats, dtype=str)
    idx = np.searchsorted(cats_arr, values)
    idx = np.clip(idx, 0, max(0, len(cats_arr) - 1))
    ok = (cats_arr[idx] == values) if len(cats_arr) else np.zeros(len(values), bool)
    out = idx.astype(np.float32)
    out[~ok] = np.nan  # missing values have no code
    return out

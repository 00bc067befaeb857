"""Source/target task pairs for transfer learning: one real, one synthetic, both reproducible.

- ``digits_blur`` (real): the shipped handwritten digits
  (``daskscale/datasets/data/digits.csv``), shuffled with a seed; the source task is 900
  original images, the target task the other 897 images seen through a blurring scanner (each
  pixel averaged with its upper and left neighbours), same 10 classes.
- ``digits_0_4`` / ``digits_5_9`` (real, new classes): the source task is digits 0-4, the target
  task digits 5-9, so fine-tuning needs a fresh output layer.
- ``synthetic_shift``: :func:`daskscale.datasets.make_classification` with ``seed=3``; the target
  is the same generator after a partial concept drift (30% of the way to the drifted concept,
  through the generator's ``drift=`` parameter), on rows the source never saw.

Every function returns a :class:`TransferTask` of NumPy arrays (the data are small);
:meth:`TransferTask.write_target` writes the target rows as daskscale stores.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import dask
import dask.array as da
import numpy as np
import pandas as pd

from daskscale.errors import SchemaError
from daskscale.storage import layout
from daskscale.storage.store import write_store

__all__ = ["TransferTask", "TASKS", "get_task", "digits_blur", "digits_new_classes", "synthetic_shift", "blur"]


@dataclass
class TransferTask:
    """A source task and a target task with the same features (NumPy arrays)."""

    name: str
    description: str
    feature_names: list[str]
    X_source: np.ndarray
    y_source: np.ndarray
    X_target: np.ndarray
    y_target: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    source_classes: list[int] = field(default_factory=list)
    target_classes: list[int] = field(default_factory=list)

    def write_target(self, directory: str | os.PathLike, *, chunk_rows: int | None = None,
                     overwrite: bool = True) -> tuple[Path, Path]:
        """Write the target training rows and the held-out test rows as two stores.

        Returns ``(train_store, test_store)``; ``chunk_rows`` defaults to a quarter of the rows.
        """
        d = Path(directory)
        paths = []
        for part, X, y in (("train", self.X_target, self.y_target), ("test", self.X_test, self.y_test)):
            rows = chunk_rows or max(1, math.ceil(len(X) / 4))
            attrs = layout.make_attrs(target="y", classes=self.target_classes, n_rows=len(X),
                                      source=f"daskscale.transfer.tasks.{self.name} ({part})")
            paths.append(write_store(d / f"{self.name}-{part}.zarr", da.from_array(X, chunks=(rows, -1)),
                                     da.from_array(y, chunks=rows), feature_names=self.feature_names,
                                     attrs=attrs, chunk_rows=rows, overwrite=overwrite))
        return paths[0], paths[1]


def _digits(seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from daskscale.datasets.real import real_dataset_path

    path, target = real_dataset_path("digits")
    df = pd.read_csv(path)
    X = df.drop(columns=[target]).to_numpy(np.float32)
    y = df[target].to_numpy(np.int64)
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order], y[order], [str(c) for c in df.columns if c != target]


def blur(X: np.ndarray) -> np.ndarray:
    """Each 8x8 digit pixel averaged with its upper and left neighbours (a blurring scanner).

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((1, 64), np.float32); img[0, 9] = 3.0
    >>> blur(img).reshape(8, 8)[1:3, 1:3].tolist()
    [[1.0, 1.0], [1.0, 0.0]]
    """
    im = X.reshape(-1, 8, 8)
    out = im.copy()
    out[:, 1:, :] += im[:, :-1, :]
    out[:, :, 1:] += im[:, :, :-1]
    return (out / 3).reshape(-1, 64).astype(np.float32)


def digits_blur(seed: int = 0, n_source: int = 900, n_target: int = 600) -> TransferTask:
    """Source: original digits; target: blurred digits of other writers' images, same classes.

    Examples
    --------
    >>> t = digits_blur()
    >>> t.X_source.shape, t.X_target.shape, t.X_test.shape
    ((900, 64), (600, 64), (297, 64))
    """
    X, y, names = _digits(seed)
    Xt = blur(X[n_source:])
    yt = y[n_source:]
    classes = list(range(10))
    return TransferTask("digits_blur", "digits.csv: original images -> blurred images (same 10 classes)", names,
                        X[:n_source], y[:n_source], Xt[:n_target], yt[:n_target], Xt[n_target:], yt[n_target:],
                        classes, classes)


def digits_new_classes(seed: int = 0, n_target: int = 600) -> TransferTask:
    """Source: digits 0-4; target: digits 5-9 (new classes: a fresh output layer).

    Examples
    --------
    >>> t = digits_new_classes()
    >>> sorted(set(t.y_source.tolist())), sorted(set(t.y_target.tolist()))
    ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    """
    X, y, names = _digits(seed)
    src, tgt = y < 5, y >= 5
    Xt, yt = X[tgt], y[tgt]
    return TransferTask("digits_new_classes", "digits.csv: digits 0-4 -> digits 5-9 (new classes)", names,
                        X[src], y[src], Xt[:n_target], yt[:n_target], Xt[n_target:], yt[n_target:],
                        list(range(5)), list(range(5, 10)))


def synthetic_shift(seed: int = 3, n_features: int = 20, n_source: int = 20_000, n_target: int = 10_000,
                    n_test: int = 5_000, shift: float = 0.3) -> TransferTask:
    """Source: ``make_classification(seed=seed)``; target: the same task after a partial drift.

    The generator's gradual drift is stretched so wide that the weight of the drifted concept
    is ``shift`` (0.3: 30% of the way) on every target row; the target rows come from blocks
    the source never used.

    Examples
    --------
    >>> t = synthetic_shift(n_source=2000, n_target=1000, n_test=500)
    >>> t.X_source.shape, t.X_target.shape, t.X_test.shape
    ((2000, 20), (1000, 20), (500, 20))
    """
    from daskscale.datasets import make_classification

    if not 0 < shift < 1:
        raise SchemaError(f"shift must be in (0, 1), got {shift}")
    chunk = 5_000 if n_source % 5_000 == 0 else n_source
    logit = math.log(shift / (1 - shift))
    # sigmoid((r/n - at) / (width/8)) is ~constant = shift for r in [0, n] when width >> 8.
    drift = {"kind": "gradual", "at": -logit * 1000, "width": 8000}
    with dask.config.set(scheduler="synchronous"):
        Xs, ys = dask.compute(*make_classification(n_source, n_features, chunk_rows=chunk, seed=seed))
        Xt, yt = dask.compute(*make_classification(n_source + n_target + n_test, n_features, chunk_rows=chunk,
                                                   seed=seed, drift=drift))
    Xt, yt = Xt[n_source:], yt[n_source:]
    names = [f"x{i}" for i in range(n_features)]
    return TransferTask("synthetic_shift", f"make_classification(seed={seed}) -> the same after a {shift:.0%} "
                        "concept drift", names, Xs, ys, Xt[:n_target], yt[:n_target], Xt[n_target:],
                        yt[n_target:], [0, 1], [0, 1])


TASKS: dict[str, Callable[..., TransferTask]] = {
    "digits_blur": digits_blur,
    "digits_new_classes": digits_new_classes,
    "synthetic_shift": synthetic_shift,
}


def get_task(name: str, **kwargs: Any) -> TransferTask:
    """The task called ``name`` (see :data:`TASKS`)."""
    if name not in TASKS:
        raise SchemaError(f"unknown transfer task {name!r}; known tasks are {sorted(TASKS)}")
    return TASKS[name](**kwargs)

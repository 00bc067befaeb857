"""Synthetic datasets of any size, generated block by block on the workers.

Each block is drawn from its own seed ``(seed, block_index)``, so a 100 GB dataset never
exists in memory and the same call always gives the same bytes. The task is learnable but
not trivial: features are correlated, shifted and scaled, the class boundary has an
interaction term and label noise, so a linear model scores well below 100%.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np

from daskscale.errors import SchemaError
from daskscale.storage import layout
from daskscale.storage.store import write_store

__all__ = ["make_classification", "make_regression", "Concept", "drift_weight"]


@dataclass(frozen=True)
class Concept:
    """The fixed parts of a synthetic task, drawn once from the seed."""

    mixing: np.ndarray      # (p, p) correlates the latent features
    offset: np.ndarray      # (p,) large, unequal means
    scale: np.ndarray       # (p,) unequal scales
    weights: np.ndarray     # (p, k) the concept before drift
    weights_after: np.ndarray  # (p, k) the concept after drift

    @classmethod
    def draw(cls, n_features: int, n_outputs: int, seed: int, n_informative: int | None) -> "Concept":
        rng = np.random.default_rng([seed, 2**31 - 1])
        p = n_features
        mixing = np.eye(p) + 0.3 * rng.standard_normal((p, p)) / np.sqrt(p)
        informative = n_informative or max(1, min(p, (p + 1) // 2))
        w = np.zeros((p, n_outputs))
        w[:informative] = rng.standard_normal((informative, n_outputs)) * 1.5
        w_after = np.zeros_like(w)
        w_after[:informative] = rng.standard_normal((informative, n_outputs)) * 1.5
        return cls(mixing, rng.normal(0, 3, p), rng.uniform(0.5, 4, p), w, w_after)


def drift_weight(rows: np.ndarray, n_rows: int, drift: Any) -> np.ndarray:
    """Weight of the *after* concept for each global row index (0 = before, 1 = after).

    ``drift`` is ``None``, ``"abrupt"`` / ``"gradual"`` (at the middle of the data) or a dict
    ``{"kind": "abrupt"|"gradual", "at": fraction, "width": fraction}``.
    """
    if drift is None:
        return np.zeros(len(rows))
    spec = {"kind": drift} if isinstance(drift, str) else dict(drift)
    kind, at = spec.get("kind", "abrupt"), float(spec.get("at", 0.5)) * n_rows
    if kind == "abrupt":
        return (rows >= at).astype(float)
    if kind == "gradual":
        width = max(1.0, float(spec.get("width", 0.1)) * n_rows)
        return 1.0 / (1.0 + np.exp(-(rows - at) / (width / 8)))
    raise SchemaError(f"drift kind must be 'abrupt' or 'gradual', not {kind!r}")


_PIECE = 32_768  # rows generated at a time inside a block: bounds a task's memory


def _pieces(concept: Concept, start: int, stop: int, n_rows: int, seed: int, block: int, drift: Any):
    """Yield ``(slice, X_piece, signal_piece, rng)`` over the block, a few MiB at a time."""
    rng = np.random.default_rng([seed, block])
    p = concept.mixing.shape[0]
    for a in range(start, stop, _PIECE):
        b = min(stop, a + _PIECE)
        z = rng.standard_normal((b - a, p))
        w = drift_weight(np.arange(a, b), n_rows, drift)[:, None]
        signal = (1 - w) * (z @ concept.weights) + w * (z @ concept.weights_after)
        if p >= 2:
            signal = signal + 0.8 * (z[:, [0]] * z[:, [1]])
        X = (z @ concept.mixing) * concept.scale + concept.offset
        yield slice(a - start, b - start), X.astype(np.float32), signal, rng


def _classification_block(concept: Concept, start: int, stop: int, n_rows: int, seed: int, block: int,
                          drift: Any, n_classes: int, label_noise: float) -> tuple[np.ndarray, np.ndarray]:
    X = np.empty((stop - start, concept.mixing.shape[0]), dtype=np.float32)
    y = np.empty(stop - start, dtype=np.int64)
    for sl, Xp, signal, rng in _pieces(concept, start, stop, n_rows, seed, block, drift):
        X[sl] = Xp
        if n_classes == 2:
            y[sl] = signal[:, 0] + rng.logistic(0, label_noise, len(Xp)) > 0
        else:
            y[sl] = np.argmax(signal + rng.gumbel(0, label_noise, signal.shape), axis=1)
    return X, y


def _regression_block(concept: Concept, start: int, stop: int, n_rows: int, seed: int, block: int,
                      drift: Any, noise: float) -> tuple[np.ndarray, np.ndarray]:
    X = np.empty((stop - start, concept.mixing.shape[0]), dtype=np.float32)
    y = np.empty(stop - start, dtype=np.float32)
    for sl, Xp, signal, rng in _pieces(concept, start, stop, n_rows, seed, block, drift):
        X[sl] = Xp
        y[sl] = signal[:, 0] + np.sin(Xp[:, 0]) + rng.normal(0, noise, len(Xp))
    return X, y


def _generate(block_fn: Any, n_rows: int, n_features: int, chunk_rows: int | None, y_dtype: Any,
              **kwargs: Any) -> tuple[da.Array, da.Array]:
    if n_rows <= 0 or n_features <= 0:
        raise SchemaError(f"n_rows and n_features must be positive, got {n_rows} and {n_features}")
    rows = chunk_rows or layout.rows_per_chunk(n_features)
    Xs, ys = [], []
    for b, start in enumerate(range(0, n_rows, rows)):
        stop = min(n_rows, start + rows)
        pair = dask.delayed(block_fn, nout=2, pure=True)(start=start, stop=stop, n_rows=n_rows, block=b, **kwargs)
        Xs.append(da.from_delayed(pair[0], shape=(stop - start, n_features), dtype=np.float32))
        ys.append(da.from_delayed(pair[1], shape=(stop - start,), dtype=y_dtype))
    return da.concatenate(Xs), da.concatenate(ys)


def _finish(X: da.Array, y: da.Array, store: str | os.PathLike | None, chunk_rows: int | None,
            attrs: dict, overwrite: bool) -> Any:
    if store is None:
        return X, y
    return write_store(store, X, y, attrs=attrs, chunk_rows=chunk_rows or X.chunks[0][0], overwrite=overwrite)


def make_classification(
    n_rows: int,
    n_features: int,
    *,
    n_classes: int = 2,
    chunk_rows: int | None = None,
    seed: int = 0,
    drift: Any = None,
    n_informative: int | None = None,
    label_noise: float = 0.6,
    store: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Any:
    """A classification dataset of any size: dask arrays ``(X, y)``, or a store if ``store``.

    Examples
    --------
    >>> X, y = make_classification(1000, 5, chunk_rows=250, seed=1)
    >>> X.shape, X.numblocks, sorted(set(y.compute().tolist()))
    ((1000, 5), (4, 1), [0, 1])
    """
    concept = Concept.draw(n_features, 1 if n_classes == 2 else n_classes, seed, n_informative)
    X, y = _generate(_classification_block, n_rows, n_features, chunk_rows, np.int64, concept=concept,
                     seed=seed, drift=drift, n_classes=n_classes, label_noise=label_noise)
    attrs = layout.make_attrs(target="y", classes=list(range(n_classes)), n_rows=n_rows,
                              source=f"make_classification(seed={seed}, drift={drift!r})")
    return _finish(X, y, store, chunk_rows, attrs, overwrite)


def make_regression(
    n_rows: int,
    n_features: int,
    *,
    chunk_rows: int | None = None,
    seed: int = 0,
    drift: Any = None,
    n_informative: int | None = None,
    noise: float = 1.0,
    store: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Any:
    """A regression dataset of any size: dask arrays ``(X, y)``, or a store if ``store``.

    Examples
    --------
    >>> X, y = make_regression(600, 4, chunk_rows=200, seed=3)
    >>> X.dtype, y.shape
    (dtype('float32'), (600,))
    """
    concept = Concept.draw(n_features, 1, seed, n_informative)
    X, y = _generate(_regression_block, n_rows, n_features, chunk_rows, np.float32, concept=concept,
                     seed=seed, drift=drift, noise=noise)
    attrs = layout.make_attrs(target="y", n_rows=n_rows, source=f"make_regression(seed={seed}, drift={drift!r})")
    return _finish(X, y, store, chunk_rows, attrs, overwrite)

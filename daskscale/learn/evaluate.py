"""Score a fitted model over a store block by block, and write blockwise predictions to Zarr."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from daskscale.learn.blocks import iter_blocks, make_reader
from daskscale.learn.predict import require_n_features
from daskscale.learn.prep import block_score, kind_of
from daskscale.storage.convert import as_data

__all__ = ["evaluate", "predict_to_store"]


def evaluate(model: Any, X: Any, y: Any = None, *, max_in_flight: int = 2) -> dict[str, Any]:
    """Row-weighted score of ``model`` over the blocks of ``X`` (nothing gathered).

    Classifiers report ``accuracy``, regressors ``r2`` (mean of block R^2 weighted by rows),
    clusterers/transformers ``score`` (per row).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.random.default_rng(0).normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
    >>> evaluate(SGDClassifier(random_state=0).fit(X, y), X, y)["accuracy"] > 0.9
    True
    """
    kind = kind_of(model)
    data = as_data(X, y, require_y=kind in ("classifier", "regressor"))
    require_n_features(model, data)
    reader = make_reader(data, X, y)
    total, rows = 0.0, 0
    for _, (Xb, yb) in iter_blocks(reader, range(reader.n_blocks), max_in_flight=max_in_flight):
        Xb = np.asarray(Xb)
        total += block_score(model, kind, Xb, None if yb is None else np.asarray(yb)) * len(Xb)
        rows += len(Xb)
    metric = {"classifier": "accuracy", "regressor": "r2"}.get(kind, "score")
    return {metric: total / max(rows, 1), "rows": rows, "blocks": reader.n_blocks, "kind": kind}


def predict_to_store(model: Any, X: Any, out: str | os.PathLike, *, overwrite: bool = False,
                     proba: bool = True) -> Path:
    """Predict blockwise on the workers and write ``prediction`` (and ``proba``) to a Zarr group.

    The group is written under a temporary name and renamed when complete (atomic).

    Examples
    --------
    >>> import numpy as np, tempfile, xarray as xr
    >>> from sklearn.linear_model import SGDClassifier
    >>> X = np.random.default_rng(0).normal(size=(100, 2)); y = (X[:, 0] > 0).astype(int)
    >>> p = predict_to_store(SGDClassifier(random_state=0).fit(X, y), X, tempfile.mkdtemp() + "/p.zarr")
    >>> xr.open_zarr(p).prediction.shape
    (100,)
    """
    import xarray as xr

    from daskscale.storage.atomic import atomic_dir

    data = as_data(X)
    require_n_features(model, data)
    Xd = data.X

    def call(method: str, block: np.ndarray) -> np.ndarray:
        return np.asarray(getattr(model, method)(np.asarray(block)))

    probe = call("predict", np.zeros((1, data.n_features), dtype=Xd.dtype))
    vars_: dict[str, Any] = {"prediction": (("sample",), Xd.map_blocks(lambda b: call("predict", b), drop_axis=1,
                                                                         dtype=probe.dtype))}
    coords: dict[str, Any] = {}
    if proba and hasattr(model, "predict_proba"):
        try:
            k = call("predict_proba", np.zeros((1, data.n_features), dtype=Xd.dtype)).shape[1]
            vars_["proba"] = (("sample", "class"), Xd.map_blocks(lambda b: call("predict_proba", b),
                                                                  chunks=(Xd.chunks[0], (k,)), dtype=np.float64))
            coords["class"] = np.asarray(getattr(model, "classes_", np.arange(k)))
        except AttributeError:  # estimators whose predict_proba depends on a parameter (SGD hinge)
            pass
    ds = xr.Dataset(vars_, coords=coords)
    ds.attrs["daskscale"] = {"kind": "predictions", "model": type(model).__name__, "source": str(data.source)}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False)
    return Path(out)

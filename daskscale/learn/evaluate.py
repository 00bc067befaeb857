"""Score a fitted model over a store block by block, and write blockwise predictions to Zarr."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from daskscale.engine.apply import apply_blockwise, kind_of, score_blockwise
from daskscale.learn.predict import require_n_features
from daskscale.storage.convert import as_data

__all__ = ["evaluate", "predict_to_store"]


def evaluate(model: Any, X: Any, y: Any = None) -> dict[str, Any]:
    """The score of ``model`` over all rows of ``X``, computed where its blocks live (nothing gathered).

    Classifiers report ``accuracy``, regressors ``r2`` (over all rows, not a mean of block
    R^2), clusterers/transformers ``score`` (per row): the one score of
    :func:`daskscale.engine.apply.score_blockwise`.

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
    metric = {"classifier": "accuracy", "regressor": "r2"}.get(kind, "score")
    return {metric: score_blockwise(model, data, kind=kind), "rows": data.n_rows, "blocks": data.X.numblocks[0],
            "kind": kind}


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
    vars_: dict[str, Any] = {"prediction": (("sample",), apply_blockwise(model.predict, data))}
    coords: dict[str, Any] = {}
    if proba and hasattr(model, "predict_proba"):
        try:
            p = apply_blockwise(model.predict_proba, data)
            vars_["proba"] = (("sample", "class"), p)
            coords["class"] = np.asarray(getattr(model, "classes_", np.arange(p.shape[1])))
        except AttributeError:  # estimators whose predict_proba depends on a parameter (SGD hinge)
            pass
    ds = xr.Dataset(vars_, coords=coords)
    ds.attrs["daskscale"] = {"kind": "predictions", "model": type(model).__name__, "source": str(data.source)}
    with atomic_dir(out, overwrite=overwrite) as tmp:
        ds.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False)
    return Path(out)

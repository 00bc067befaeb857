"""``GridEstimator``: any scikit-learn style estimator on gridded xarray data, predictions on the grid.

Fit stacks the grid into rows (:func:`daskscale.grid.stack.stack_to_data`, masked cells
dropped) and fits the wrapped estimator by the simplest way that fits memory:

- ``"dask"``: estimators that take dask arrays (dask-ml, daskscale) get the row arrays;
- ``"memory"``: the kept rows are computed and passed to ``fit`` (exact) when they are
  smaller than ``max_memory_bytes``;
- ``"blocks"``: otherwise, one epoch of the block loop (:func:`daskscale.engine.loop.run`)
  over the grid blocks: each is computed on the cluster (read, masked and stacked in one
  task) while the previous one trains, the block order is shuffled by ``random_state`` as
  in :class:`~daskscale.learn.Incremental`, classes go with the first ``partial_fit`` call,
  and an estimator's error names the block and its rows (bounded memory).

The stacked rows are made once, at the boundary (:meth:`daskscale.engine.source.Source.of`);
masked and non-finite cells follow the grid's missing-cell rule (:mod:`daskscale.grid.stack`),
so the rows the loop checks again are finite.

``predict``, ``predict_proba`` and ``transform`` run the fitted model blockwise on the grid
(one task per grid block, no gather) and return a lazy :class:`xarray.DataArray` with the
grid's coordinates and chunks; masked cells are NaN.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import dask
import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone

from daskscale.engine.loop import Hooks, TrainPlan, run
from daskscale.engine.source import Source
from daskscale.errors import DaskscaleError, NotFittedError, SchemaError
from daskscale.grid.stack import as_dataset, grid_layout
from daskscale.grid.unstack import apply_to_grid
from daskscale.learn.prep import Labels, kind_of
from daskscale.monitor import progress
from daskscale.reduce import reduce
from daskscale.storage.convert import aligned

__all__ = ["GridEstimator"]

_MODES = ("auto", "dask", "memory", "blocks")
_TARGET = "__daskscale_target__"


def _dask_aware(est: Any) -> bool:
    return type(est).__module__.split(".")[0] in ("daskscale", "dask_ml")


def _predict_rows(method: Any, rows: np.ndarray) -> np.ndarray:
    out = method(rows)
    # daskscale estimators may answer a dask array even for NumPy input; we are inside a task
    return out.compute(scheduler="sync") if hasattr(out, "compute") else np.asarray(out)


class GridEstimator(MetaEstimatorMixin, BaseEstimator):
    """Fit ``estimator`` on the cells of a grid, predict back onto the grid.

    Parameters
    ----------
    estimator
        Any scikit-learn style estimator (cloned at fit).
    sample_dims
        Dims stacked into samples, e.g. ``("time", "lat", "lon")``.
    feature_dim
        Optional dim whose labels are features.
    target
        Name of the target variable in the fit Dataset (or pass ``y`` to :meth:`fit`).
    mask
        ``None`` (drop cells with any NaN) or a boolean variable/coordinate name or DataArray
        (``True`` = keep); see :mod:`daskscale.grid.stack` for the rule.
    fit_mode
        ``"auto"`` (dask-aware estimators get dask arrays; else in memory if small, else
        ``partial_fit`` over blocks), or one of ``"dask"``, ``"memory"``, ``"blocks"``.
    max_memory_bytes
        Largest stacked ``X`` that ``"auto"`` fits in memory.
    shuffle, random_state
        ``"blocks"`` mode: shuffle the block order (and, for an estimator that does not
        shuffle each call itself, the rows of each block), seeded, as ``Incremental`` does.

    Attributes
    ----------
    estimator_ : the fitted clone.
    variables_ : list of str, the feature variables used at fit.
    feature_names_ : list of str, one per column (``var[label]`` for ``feature_dim`` variables).
    n_features_in_, n_rows_fit_, n_masked_fit_, fit_mode_ : int / str.
    classes_ : the classes, for classifiers.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from sklearn.linear_model import LinearRegression
    >>> t = np.arange(24.0).reshape(4, 6)
    >>> ds = xr.Dataset({"a": (("t", "x"), t), "y": (("t", "x"), 2 * t + 1)}).chunk({"t": 2})
    >>> g = GridEstimator(LinearRegression(), sample_dims=("t", "x"), target="y").fit(ds)
    >>> g.predict(ds).round(6).values[1].tolist()
    [13.0, 15.0, 17.0, 19.0, 21.0, 23.0]
    """

    def __init__(self, estimator: Any, *, sample_dims: Any, feature_dim: str | None = None,
                 target: str | None = None, mask: Any = None, fit_mode: str = "auto",
                 max_memory_bytes: int = 256 * 2**20, shuffle: bool = True, random_state: int | None = None):
        self.estimator = estimator
        self.sample_dims = sample_dims
        self.feature_dim = feature_dim
        self.target = target
        self.mask = mask
        self.fit_mode = fit_mode
        self.max_memory_bytes = max_memory_bytes
        self.shuffle = shuffle
        self.random_state = random_state

    def _with_target(self, X: Any, y: Any) -> tuple[xr.Dataset, str | None]:
        if not isinstance(X, (xr.Dataset, xr.DataArray)):
            raise SchemaError(f"GridEstimator needs an xarray Dataset or DataArray, not {type(X).__name__}")
        ds = as_dataset(X)
        if y is None:
            return ds, self.target
        if isinstance(y, str):
            return ds, y
        if not isinstance(y, xr.DataArray):
            raise SchemaError("y must be the name of a target variable or an xarray DataArray on the grid")
        return ds.assign({_TARGET: y}), _TARGET

    def fit(self, X: xr.Dataset | xr.DataArray, y: Any = None, **fit_params: Any) -> "GridEstimator":
        """Fit on the kept cells of ``X`` (target: ``y`` or the ``target`` variable)."""
        if self.fit_mode not in _MODES:
            raise SchemaError(f"fit_mode must be one of {_MODES}, not {self.fit_mode!r}")
        ds, target = self._with_target(X, y)
        # the one boundary: stacked once, read block by block from here on
        source = Source.of(ds, target=target, sample_dims=self.sample_dims, feature_dim=self.feature_dim,
                           mask=self.mask)
        data = source.data
        est = clone(self.estimator)
        mode = self.fit_mode
        if mode == "auto":
            if _dask_aware(est):
                mode = "dask"
            elif data.X.nbytes <= self.max_memory_bytes or not hasattr(est, "partial_fit"):
                mode = "memory"
            else:
                mode = "blocks"
        if mode == "dask":
            est.fit(data.X, data.y, **fit_params)
        elif mode == "memory":
            if data.X.nbytes > self.max_memory_bytes:
                raise DaskscaleError(
                    f"{type(est).__name__} has no partial_fit and no dask support, and the stacked data "
                    f"({data.X.nbytes / 2**20:,.0f} MiB) exceeds max_memory_bytes; use an incremental "
                    "estimator (SGD*, MiniBatchKMeans, ...) or raise max_memory_bytes")
            Xm, ym = dask.compute(data.X, data.y)
            est.fit(aligned(Xm), aligned(ym), **fit_params)
        else:
            self._fit_blocks(est, source, fit_params)
        self.estimator_ = est
        self.fit_mode_ = mode
        lay = data.layout
        self.variables_ = [v for v in ds.data_vars if v not in (target, self.mask if isinstance(self.mask, str) else None)]
        self.feature_names_ = list(data.feature_names)
        self.n_features_in_ = data.n_features
        self.n_rows_fit_ = data.n_rows
        self.n_masked_fit_ = int(data.attrs["n_masked"])
        self.target_name_ = self.target if target == _TARGET else target
        self.target_attrs_ = dict(ds[target].attrs) if target is not None else {}
        self.grid_dims_ = tuple(lay.sample_dims)
        if hasattr(est, "classes_"):
            self.classes_ = est.classes_
        return self

    def _fit_blocks(self, est: Any, source: Source, fit_params: dict[str, Any]) -> None:
        """One epoch of the block loop over the grid blocks (see the module notes)."""
        if not hasattr(est, "partial_fit"):
            raise DaskscaleError(f"{type(est).__name__} has no partial_fit: use fit_mode='memory' or 'auto'")
        kind = kind_of(est)
        if source.data.y is None and kind in ("classifier", "regressor"):
            raise SchemaError(f"a {kind} needs a target: pass target= or y=")
        other = sorted(set(fit_params) - {"classes"})
        if other:
            raise SchemaError(f"fit_mode='blocks' passes only classes= to partial_fit, not {other}; "
                              "use fit_mode='memory' for other fit parameters")
        classes = fit_params.get("classes")
        if kind == "classifier" and classes is None:
            classes = reduce(source.data, [Labels()])["labels"]  # one pass: every block's labels
        plan = TrainPlan(kind=kind, train=list(range(source.n_blocks)),
                         classes=None if classes is None else np.asarray(classes).tolist(), shuffle=bool(self.shuffle),
                         seed=self.random_state, progressive=False, n_blocks=source.n_blocks,
                         n_features=source.n_features, n_rows=source.n_rows, features=source.data.feature_names)
        with progress(total=source.n_blocks, desc="grid partial_fit") as bar:
            run(est, source.reader, plan, hooks=Hooks(on_unit=lambda row: bar.update(len(row.get("blocks", ())))))

    def _check(self) -> None:
        if not hasattr(self, "estimator_"):
            raise NotFittedError("this GridEstimator is not fitted yet; call fit(ds) first")

    def _layout(self, X: Any) -> Any:
        self._check()
        ds, _ = self._with_target(X, None)
        missing = [v for v in self.variables_ if v not in ds.data_vars]
        if missing:
            raise SchemaError(f"variable {missing[0]!r} was a feature at fit but is not in the data to predict")
        lay = grid_layout(ds, sample_dims=self.sample_dims, feature_dim=self.feature_dim, mask=self.mask,
                          features=self.variables_)
        if lay.feature_names != self.feature_names_:
            raise SchemaError(f"features {lay.feature_names} differ from those at fit {self.feature_names_}")
        return lay

    def predict(self, X: xr.Dataset | xr.DataArray) -> xr.DataArray:
        """Predictions on the grid (lazy, same chunks and coordinates; masked cells NaN)."""
        lay = self._layout(X)
        meth = self.estimator_.predict
        dtype = getattr(self, "classes_", np.array([0.0])).dtype
        name = f"{self.target_name_}_predicted" if self.target_name_ else "prediction"
        attrs = {**self.target_attrs_, "description": f"prediction of {type(self.estimator_).__name__}"}
        return apply_to_grid(partial(_predict_rows, meth), lay, dtype=dtype, name=name, attrs=attrs)

    def predict_proba(self, X: xr.Dataset | xr.DataArray) -> xr.DataArray:
        """Class probabilities on the grid, with a ``class`` dim labelled by ``classes_``."""
        lay = self._layout(X)
        if not hasattr(self.estimator_, "predict_proba"):
            raise DaskscaleError(f"{type(self.estimator_).__name__} has no predict_proba")
        meth = self.estimator_.predict_proba
        return apply_to_grid(partial(_predict_rows, meth), lay, dtype=np.float64, n_out=len(self.classes_),
                             name="probability", extra_dim=("class", np.asarray(self.classes_)), attrs={})

    def transform(self, X: xr.Dataset | xr.DataArray) -> xr.DataArray:
        """Transformed features on the grid, with a ``component`` dim."""
        lay = self._layout(X)
        if not hasattr(self.estimator_, "transform"):
            raise DaskscaleError(f"{type(self.estimator_).__name__} has no transform")
        meth = self.estimator_.transform
        probe = _predict_rows(meth, np.zeros((1, self.n_features_in_), dtype=lay.dtype))
        try:
            labels = np.asarray(self.estimator_.get_feature_names_out(self.feature_names_), dtype=object)
        except (AttributeError, ValueError, TypeError):
            labels = None
        return apply_to_grid(partial(_predict_rows, meth), lay, dtype=probe.dtype, n_out=int(probe.shape[1]),
                             name="transformed", extra_dim=("component", labels), attrs={})

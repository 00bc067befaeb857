"""The reducers' input boundary: :func:`~daskscale.storage.convert.as_data`, at the caller's precision.

``as_data`` turns a pandas DataFrame into float32 (the training default); a statistic must see
the values the caller has. This helper hands a DataFrame to ``as_data`` as an array of the
frame's own common dtype (float64 stays float64, int64 stays int64), so every reducer
accumulates from the values as given. Every other input (NumPy, dask, xarray, stores) keeps
its dtype through ``as_data`` itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from daskscale.storage.convert import Data, as_data

__all__ = ["as_reduce_data"]


def _frame_dtype(frame: pd.DataFrame) -> np.dtype:
    """The dtype that holds every column exactly where one can (float64 otherwise)."""
    dtypes = list(frame.dtypes)
    if dtypes and all(isinstance(t, np.dtype) and t.kind in "iuf" for t in dtypes):
        return np.result_type(*dtypes)
    return np.dtype(np.float64)  # bool, nullable and extension dtypes: NA becomes NaN


def as_reduce_data(data: Any, y: Any = None, **kwargs: Any) -> Data:
    """:func:`~daskscale.storage.convert.as_data` that keeps a DataFrame's precision.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"a": [1e12 + 0.5, 1e12 + 1.5]})
    >>> d = as_reduce_data(df)
    >>> d.X.dtype, d.feature_names, float(d.X[1, 0].compute() - d.X[0, 0].compute())
    (dtype('float64'), ['a'], 1.0)
    """
    if isinstance(data, Data) or not isinstance(data, pd.DataFrame):
        return as_data(data, y, **kwargs)
    target = kwargs.pop("target", None)
    # the columns (numeric?) and the target are checked by as_data on the first row alone
    head = as_data(data.iloc[:1], target=target, **{k: v for k, v in kwargs.items() if k == "name"})
    frame = data.drop(columns=[target]) if target is not None else data
    if target is not None and y is None:
        y = data[target]
    X = frame.to_numpy(dtype=_frame_dtype(frame), na_value=np.nan)
    d = as_data(X, y, **kwargs)
    d.feature_names, d.source = head.feature_names, head.source
    if target is not None:
        d.target = target
    return d

"""One NaN or infinity in X or y: every exact solver refuses it by block and row (it used to
return all-zero logistic coefficients, or NaN linear ones, without a word)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from daskscale.errors import DaskscaleError, SchemaError
from daskscale.learn.solvers import ExactLinearRegression, ExactLogisticRegression, ExactPoissonRegression
from daskscale.storage import layout, write_store

ROWS, CHUNK, BAD_ROW = 4_000, 1_000, 2_417  # block 2 (rows 2000-2999), row 417 of the block


def _data(solver):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(ROWS, 4)).astype(np.float32)
    if solver == "logistic":
        y = (X[:, 0] > 0).astype(np.float64)
    elif solver == "poisson":
        y = rng.poisson(np.exp(0.3 * X[:, 0])).astype(np.float64)
    else:
        y = X @ np.arange(1.0, 5.0)
    return X, y


SOLVERS = {"logistic": ExactLogisticRegression, "poisson": ExactPoissonRegression, "linear": ExactLinearRegression}


@pytest.mark.parametrize("form", ["numpy", "dask", "store"])
@pytest.mark.parametrize("bad", ["nan-in-X", "inf-in-X", "nan-in-y"])
@pytest.mark.parametrize("solver", sorted(SOLVERS))
def test_non_finite_value_is_named_by_block_and_row(solver, bad, form, tmp_path, client):
    X, y = _data(solver)
    if bad == "nan-in-X":
        X[BAD_ROW, 2] = np.nan
    elif bad == "inf-in-X":
        X[BAD_ROW, 1] = -np.inf
    else:
        y[BAD_ROW] = np.nan
    if form == "numpy":
        args = (X, y)
    elif form == "dask":
        args = (da.from_array(X, chunks=(CHUNK, 4)), da.from_array(y, chunks=CHUNK))
    else:
        path = tmp_path / "bad.zarr"
        write_store(path, da.from_array(X, chunks=(CHUNK, 4)), da.from_array(y, chunks=CHUNK), chunk_rows=CHUNK,
                    attrs=layout.make_attrs(target="y", n_rows=ROWS))
        args = (str(path),)
    est = SOLVERS[solver]() if solver == "linear" else SOLVERS[solver](progress=False)
    with pytest.raises(SchemaError) as info:
        est.fit(*args)
    msg = str(info.value)
    what = {"nan-in-X": "NaN in X", "inf-in-X": "inf in X", "nan-in-y": "NaN in y"}[bad]
    assert what in msg and f"row {BAD_ROW} of the data" in msg, msg
    if form != "numpy":  # numpy input is one block; dask and store blocks are named
        assert "block 2 (rows 2000-2999), row 417 of the block" in msg, msg
    assert isinstance(info.value, (DaskscaleError, ValueError))
    assert not hasattr(est, "coef_")

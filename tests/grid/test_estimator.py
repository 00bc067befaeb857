"""GridEstimator: stack, fit, predict, unstack; coordinates exact, masked cells masked."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression, SGDRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_get_params_invariance, check_no_attributes_set_in_init, check_set_params,
)

from daskscale.errors import NotFittedError, SchemaError
from daskscale.grid import GridEstimator, to_zarr, unstack

DIMS = ("time", "lat", "lon")
FEATURES = ["sst", "wind", "salinity"]


def _cells(ds):
    """Feature rows of every ocean cell in C order of (time, lat, lon), and the boolean grid mask."""
    keep = np.broadcast_to(ds["ocean"].values, ds["sst"].shape)
    X = np.stack([ds[v].transpose(*DIMS).values[keep] for v in FEATURES], axis=1)
    return X, keep


def test_roundtrip_keeps_coordinates_chunks_attrs_and_mask(grid):
    g = GridEstimator(LinearRegression(), sample_dims=DIMS, target="chlorophyll", mask="ocean").fit(grid)
    pred = g.predict(grid)
    assert pred.dims == DIMS and pred.chunks == grid["sst"].chunks
    for c in ("time", "lat", "lon", "ocean"):
        xr.testing.assert_identical(pred[c], grid[c])
    assert pred.attrs["units"] == grid["chlorophyll"].attrs["units"] and pred.name == "chlorophyll_predicted"
    values = pred.values
    X, keep = _cells(grid)
    assert np.isnan(values[~keep]).all()                       # land stays masked
    np.testing.assert_allclose(values[keep], g.estimator_.predict(X), rtol=1e-5)
    assert g.n_rows_fit_ == keep.sum() and g.fit_mode_ == "memory"
    r2 = 1 - np.nanvar(values - grid["chlorophyll"].values) / np.nanvar(grid["chlorophyll"].values)
    assert 0.3 < r2 < 0.9                                      # learnable, not trivially linear


def test_predict_matches_unstack_of_row_predictions(grid):
    from daskscale.grid import stack_to_data

    g = GridEstimator(LinearRegression(), sample_dims=DIMS, target="chlorophyll", mask="ocean").fit(grid)
    d = stack_to_data(grid, sample_dims=DIMS, target="chlorophyll", mask="ocean")
    rows = d.X.map_blocks(g.estimator_.predict, drop_axis=1, dtype=np.float64)
    np.testing.assert_allclose(unstack(rows, d).values, g.predict(grid).values, rtol=1e-6)


def test_finite_rule_drops_nan_cells_and_predicts_nan_there(grid):
    ds = grid.copy(deep=True).compute()
    ds["wind"][5, 3, :] = np.nan                               # a gap in one variable, on ocean too
    g = GridEstimator(LinearRegression(), sample_dims=DIMS, target="chlorophyll").fit(ds.chunk({"time": 15}))
    ocean = np.broadcast_to(ds["ocean"].values, ds["sst"].shape)
    assert g.n_rows_fit_ == ocean.sum() - ocean[5, 3, :].sum()
    pred = g.predict(ds.chunk({"time": 15})).values
    assert np.isnan(pred[5, 3, :]).all() and np.isfinite(pred[ocean & ~np.isnan(ds["wind"].values)]).all()


def test_blocks_mode_streams_partial_fit_over_grid_blocks(grid):
    g = GridEstimator(SGDRegressor(random_state=0, eta0=0.001), sample_dims=DIMS, target="chlorophyll",
                      mask="ocean", fit_mode="blocks")
    g.fit(grid.assign(sst=grid.sst / 10, wind=grid.wind / 10, salinity=grid.salinity - 35))
    assert g.fit_mode_ == "blocks" and g.estimator_.t_ > g.n_rows_fit_  # every kept row was seen once


def _scaled(grid):
    return grid.assign(sst=grid.sst / 10, wind=grid.wind / 10, salinity=grid.salinity - 35)


def _blockwise_fit(est, grid, order):
    """The reference: ``est.partial_fit`` on the stacked row blocks in ``order``, by hand."""
    from daskscale.grid import stack_to_data

    d = stack_to_data(grid, sample_dims=DIMS, target="chlorophyll", mask="ocean")
    for i in order:
        est.partial_fit(d.X.blocks[i].compute(), d.y.blocks[i].compute())
    return est, d.X.numblocks[0]


@pytest.mark.parametrize("shuffle", [False, True])
def test_blocks_mode_runs_the_block_loop_in_its_seeded_order(grid, shuffle):
    """fit_mode='blocks' is the engine's loop: blocks in order, or in the seeded order of epoch 0."""
    from daskscale.engine.prefetch import epoch_units

    ds = _scaled(grid).chunk({"time": 10, "lat": 6})                      # 12 grid blocks
    est = SGDRegressor(random_state=0, eta0=0.001)
    g = GridEstimator(est, sample_dims=DIMS, target="chlorophyll", mask="ocean", fit_mode="blocks",
                      shuffle=shuffle, random_state=7).fit(ds)
    n = 12
    order = [u[0] for u in epoch_units(range(n), 0, seed=7)] if shuffle else list(range(n))
    assert (order != list(range(n))) == shuffle
    ref, n_blocks = _blockwise_fit(clone(est), ds, order)
    assert n_blocks == n
    np.testing.assert_array_equal(g.estimator_.coef_, ref.coef_)
    np.testing.assert_array_equal(g.estimator_.intercept_, ref.intercept_)
    again = clone(g).fit(ds)
    np.testing.assert_array_equal(again.estimator_.coef_, g.estimator_.coef_)   # seeded: the same fit


def test_blocks_mode_gives_every_class_on_the_first_call_and_names_the_block_of_an_error(grid):
    from sklearn.linear_model import SGDClassifier

    ds = _scaled(grid).chunk({"time": 15})
    # the first grid block (days 0-14) has one label only; the others have both
    high = xr.where(ds["time"].dt.day > 15, (ds["chlorophyll"] > float(np.nanmedian(ds["chlorophyll"].values))), 0)
    high = high.astype(float).where(ds["ocean"])
    clf = GridEstimator(SGDClassifier(random_state=0), sample_dims=DIMS, mask="ocean", fit_mode="blocks",
                        shuffle=False).fit(ds.drop_vars("chlorophyll"), high)
    assert clf.classes_.tolist() == [0.0, 1.0] and clf.estimator_.t_ > clf.n_rows_fit_
    with pytest.raises(SchemaError, match=r"^block \d \(rows \d+-\d+\) has class label\(s\) \[1.0\] not among"):
        clone(clf).set_params(shuffle=True, random_state=0).fit(ds.drop_vars("chlorophyll"), high, classes=[0.0])
    bad = GridEstimator(SGDRegressor(penalty="l1", l1_ratio=2.0), sample_dims=DIMS, target="chlorophyll",
                        mask="ocean", fit_mode="blocks", shuffle=False)
    with pytest.raises(SchemaError, match=r"^block 0 \(rows 0-\d+\): .*l1_ratio"):
        bad.fit(ds)
    with pytest.raises(SchemaError, match="only classes="):
        clone(bad).fit(ds, sample_weight=np.ones(3))


def test_predict_proba_and_transform_come_back_on_the_grid(grid):
    high = (grid["chlorophyll"] > float(np.nanmedian(grid["chlorophyll"].values))).where(grid["ocean"])
    clf = GridEstimator(LogisticRegression(), sample_dims=DIMS, mask="ocean").fit(grid.drop_vars("chlorophyll"), high)
    proba = clf.predict_proba(grid.drop_vars("chlorophyll"))
    assert proba.dims == DIMS + ("class",) and list(proba["class"].values) == [0.0, 1.0]
    p = proba.values
    _, keep = _cells(grid)
    np.testing.assert_allclose(p[keep].sum(axis=-1), 1.0)
    assert np.isnan(p[~keep]).all()
    labels = clf.predict(grid.drop_vars("chlorophyll")).values
    assert set(np.unique(labels[keep])) <= {0.0, 1.0} and np.isnan(labels[~keep]).all()
    sc = GridEstimator(StandardScaler(), sample_dims=DIMS, mask="ocean").fit(grid.drop_vars("chlorophyll"))
    z = sc.transform(grid.drop_vars("chlorophyll"))
    assert z.dims == DIMS + ("component",) and list(z["component"].values) == FEATURES
    zv = z.values[keep]
    np.testing.assert_allclose(zv.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(zv.std(0), 1, rtol=1e-4)


def test_predictions_write_to_zarr_in_one_call(grid, tmp_path):
    g = GridEstimator(LinearRegression(), sample_dims=DIMS, target="chlorophyll", mask="ocean").fit(grid)
    pred = g.predict(grid)
    path = to_zarr(pred, tmp_path / "pred.zarr")
    back = xr.open_zarr(path, consolidated=False)["chlorophyll_predicted"]
    xr.testing.assert_identical(back["time"], grid["time"])
    assert back.chunks == grid["sst"].chunks
    np.testing.assert_array_equal(back.values, pred.values)


def test_estimator_contract_and_errors(grid):
    est = GridEstimator(LinearRegression(), sample_dims=DIMS, target="chlorophyll")
    # parametrize_with_checks feeds NumPy arrays, which a grid estimator rejects by design:
    # run the checks of the parameter contract that apply
    check_no_attributes_set_in_init("GridEstimator", est)
    check_get_params_invariance("GridEstimator", est)
    check_set_params("GridEstimator", est)
    assert clone(est).get_params()["sample_dims"] == DIMS
    with pytest.raises(NotFittedError):
        est.predict(grid)
    with pytest.raises(SchemaError, match="needs an xarray"):
        est.fit(np.zeros((3, 3)))
    with pytest.raises(SchemaError, match="fit_mode"):
        clone(est).set_params(fit_mode="magic").fit(grid)
    est.fit(grid)
    with pytest.raises(SchemaError, match="variable 'wind' was a feature"):
        est.predict(grid.drop_vars("wind"))


def test_grid_estimator_follows_sklearn_conventions():
    """__init__ stores parameters only; get/set_params and clone work; unfitted predict is NotFittedError."""
    import numpy as np
    import xarray as xr
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError
    from sklearn.linear_model import LinearRegression
    from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,
                                                check_parameters_default_constructible, check_set_params)

    from daskscale.grid.estimator import GridEstimator

    g = GridEstimator(LinearRegression(), sample_dims=("t", "x"), target="y")
    for check in (check_get_params_invariance, check_set_params, check_no_attributes_set_in_init,
                  check_parameters_default_constructible):
        check("GridEstimator", g)
    assert vars(g) == g.get_params(deep=False)
    assert clone(g).get_params()["sample_dims"] == ("t", "x")
    t = np.arange(24.0).reshape(4, 6)
    ds = xr.Dataset({"a": (("t", "x"), t), "y": (("t", "x"), 2 * t + 1)}).chunk({"t": 2})
    with pytest.raises(NotFittedError):
        g.predict(ds)
    g.fit(ds)
    learned = set(vars(g)) - set(g.get_params(deep=False))
    assert {"estimator_", "n_features_in_", "fit_mode_"} <= learned
    assert all(k.endswith("_") for k in learned), learned

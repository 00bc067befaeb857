"""Learning curves: the table, the rows needed, the data saved, the plot, the HTML."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from daskscale.transfer import learning_curve, rows_to_reach  # noqa: E402


def test_learning_curve_reports_rows_needed_and_data_saved(blur_stores):
    train, test = blur_stores
    lc = learning_curve("digits_mlp", train, test=test, sizes=[25, 400], epochs=10, min_steps=150)
    t = lc.table
    assert list(t["rows"]) == [25, 400]
    assert lc.n_target_rows == 600 and 0.85 < lc.full_score <= 1
    assert abs(lc.goal - 0.9 * lc.full_score) < 1e-12
    # what the table says is what rows_needed says
    for m in ("transfer", "scratch"):
        assert lc.rows_needed[m] == rows_to_reach(t["rows"], t[m], lc.goal)
    assert lc.rows_needed["transfer"] is not None
    assert (t["transfer"] >= t["scratch"]).all()
    scratch_rows = lc.rows_needed["scratch"] or lc.n_target_rows
    assert lc.data_saved == scratch_rows / lc.rows_needed["transfer"] and lc.data_saved >= 4
    html = lc._repr_html_()
    assert "<table" in html and "transfer" in html and "less target data" in html
    ax = lc.plot()
    assert ax.get_title() and ax.get_xlabel() == "target training rows" and ax.get_ylabel()
    assert len(ax.lines) >= 4
    d = lc.as_dict()
    assert d["rows_needed"] == lc.rows_needed and len(d["table"]) == 2


def test_fixed_goal_is_used_as_given(blur_task):
    t = blur_task
    lc = learning_curve("digits_mlp", t.X_target, t.y_target, test=t.X_test, test_y=t.y_test, sizes=[50],
                        goal=0.99, epochs=2, min_steps=20)
    assert lc.goal == 0.99 and lc.goal_fraction is None
    assert lc.rows_needed == {"transfer": None, "scratch": None} and lc.data_saved is None
    assert "not reached" in lc.summary()

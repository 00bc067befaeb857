"""The trade-off report, the ``daskscale compress`` verb and the demo step."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from daskscale.compress.report import report
from daskscale.errors import SchemaError


@pytest.fixture(scope="module")
def fitted_store(tmp_path_factory, client):
    from daskscale.datasets import make_classification
    from daskscale.models import save_model
    from daskscale.storage import load_xy

    root = tmp_path_factory.mktemp("compress")
    train = make_classification(8000, 30, chunk_rows=2000, seed=1, store=root / "train.zarr")
    test = make_classification(4000, 30, chunk_rows=2000, seed=1, store=root / "test.zarr")
    X, y = load_xy(train)
    m = SGDClassifier(loss="log_loss", random_state=0).fit(X.compute(), y.compute())
    return m, train, test, save_model(m, root / "model.skops")


def test_report_table_plot_and_json(digits_mlp, digits):
    _, Xte, _, yte = digits
    rep = report(digits_mlp, Xte, [{"quantize": "int8", "per_channel": False}, {"sparsity": 0.9}], y=yte)
    t = rep.table
    assert list(t["setting"]) == ["float32", "int8/tensor", "prune 0.9 + float32"]
    assert t.loc[0, "size_ratio"] == 1.0 and t.loc[1, "size_ratio"] >= 3.5
    assert t.loc[2, "sparsity"] == pytest.approx(0.9, abs=0.01)
    assert t.loc[2, "score_change"] < -0.03  # pruning without fine-tuning costs accuracy, and it shows
    assert abs(t.loc[1, "score_change"]) <= 0.005
    assert (t["rows_per_s"] > 0).all() and (t["bytes_memory"] < t["bytes_disk"] * 2).all()
    assert "<table" in rep._repr_html_() and "int8/tensor" in rep._repr_html_()
    ax = rep.plot()
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert json.loads(rep.to_json())["rows"][1]["setting"] == "int8/tensor"


def test_report_refuses_bad_settings(digits_mlp, digits):
    _, Xte, _, yte = digits
    with pytest.raises(SchemaError, match="unknown keys"):
        report(digits_mlp, Xte, [{"bits": 4}], y=yte)
    with pytest.raises(SchemaError, match=r"\[0, 1\)"):
        report(digits_mlp, Xte, [{"sparsity": 1.2}], y=yte)
    with pytest.raises(SchemaError, match="train_data"):
        report(digits_mlp, Xte, [{"sparsity": 0.9, "fine_tune": True}], y=yte)


def test_cli_compress_json_and_out(fitted_store, client, tmp_path):
    from click.testing import CliRunner

    from daskscale.cli import cli
    from daskscale.models import load_model

    m, train, test, path = fitted_store
    out = tmp_path / "small.skops"
    res = CliRunner().invoke(cli, ["compress", str(path), "--prune", "0.5", "--quantize", "int8", "--eval",
                                   str(test), "--fine-tune", str(train), "--out", str(out), "--json",
                                   "--scheduler", client.scheduler.address])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)["rows"]
    assert [r["setting"] for r in rows] == ["float32", "prune 0.5 + int8 + fine-tuned"]
    assert rows[1]["sparsity"] == pytest.approx(0.5, abs=0.04)
    assert rows[1]["score"] > 0.6
    small = load_model(out)
    assert small.layers_[0].values.dtype == np.int8


def test_cli_bad_sparsity_is_one_line_error(fitted_store, client, capsys):
    from daskscale.cli import main

    _, _, test, path = fitted_store
    with pytest.raises(SystemExit) as e:
        main(["compress", str(path), "--prune", "1.5", "--eval", str(test), "--scheduler", client.scheduler.address])
    assert e.value.code == 2
    assert "sparsity must be in [0, 1)" in capsys.readouterr().err


def test_demo_step_compresses_and_prints_table(fitted_store, client, tmp_path, monkeypatch):
    from daskscale.demo import step_compress
    from daskscale.demo.context import DemoContext

    m, train, test, path = fitted_store
    ctx = DemoContext(client=client, workdir=tmp_path, artifacts={"store": train, "model_path": path})
    monkeypatch.setattr(step_compress, "EVAL_ROWS", 2000)
    monkeypatch.setattr(step_compress, "TRAIN_ROWS", 4000)
    monkeypatch.setattr(step_compress, "MLP_ROWS", 4000)
    lines = step_compress.run(ctx)
    # the MLP, whose file is its weights, leads; the linear model from the model file follows
    assert lines[0].startswith("MLP (128 hidden): ") and "the goal (>= 4x smaller, <= 1 point lost)" in lines[0]
    assert lines[1].startswith(f"linear SGD (model file {path})")
    mlp, linear = ctx.artifacts["compress_report"].table, ctx.artifacts["compress_report_linear"].table
    assert len(mlp) == len(linear) == 5 and (mlp["size_ratio"].iloc[1:] > 1).all()
    # int8 takes an MLP's file to well under half; a 31-weight linear model's barely shrinks
    assert mlp.set_index("setting").loc["int8", "size_ratio"] > 2.5
    assert linear.set_index("setting").loc["int8", "size_ratio"] < 1.5
    assert any("prune 0.75 + int8" in line for line in lines)

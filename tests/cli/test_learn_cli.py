"""``daskscale fit / evaluate / predict`` on a real store, joined to the session cluster."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import xarray as xr

from daskscale.cli import main
from daskscale.models import load_model, read_metadata


def test_fit_evaluate_predict_round_trip(small_store, client, tmp_path, capsys):
    sched = ["--scheduler", client.scheduler.address]
    model = tmp_path / "m.skops"
    main(["fit", str(small_store), "--model", "sgd-classifier", "--epochs", "2", "--batch-size", "2000",
          "--checkpoint", str(tmp_path / "ck"), "--out", str(model), *sched])
    out = capsys.readouterr().out
    assert "trained sgd-classifier for 2 epoch(s)" in out and (tmp_path / "ck" / "checkpoint.skops").exists()
    assert read_metadata(model)["strategy"] == "incremental"
    fitted = load_model(model)
    main(["evaluate", str(model), str(small_store), *sched])
    acc = float(capsys.readouterr().out.split("accuracy")[1].split()[0])
    assert 0.7 < acc <= 1.0
    main(["predict", str(model), str(small_store), "--out", str(tmp_path / "p.zarr"), *sched])
    pred = xr.open_zarr(tmp_path / "p.zarr")
    X = xr.open_zarr(small_store)["X"].values
    np.testing.assert_array_equal(pred["prediction"].values, fitted.predict(X))
    assert pred["proba"].shape == (20_000, 2)

    main(["fit", str(small_store), "--epochs", "3", "--batch-size", "2000", "--checkpoint", str(tmp_path / "ck"), "--resume",
          "--out", str(model), *sched])  # resumes after epoch 2 and trains the third
    assert "for 3 epoch(s)" in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path, small_store):
    p = subprocess.run([sys.executable, "-m", "daskscale", "fit", str(small_store), "--model", "random-forest",
                        "--out", str(tmp_path / "m.skops")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "unknown model 'random-forest'" in p.stderr and "Traceback" not in p.stderr


def test_fit_average_takes_trainer_options_and_reports_the_rounds(small_store, client, tmp_path, capsys):
    import pytest

    sched = ["--scheduler", client.scheduler.address]
    model = tmp_path / "avg.skops"
    main(["fit", str(small_store), "--strategy", "average", "--epochs", "1", "--option", "merge_every=2",
          "--out", str(model), *sched])
    out = capsys.readouterr().out
    meta = read_metadata(model)
    # 4 blocks on 2 workers, merged every 2 blocks: one round; with the default merge_every=1 it is two
    assert meta["strategy"] == "average" and meta["replicas"] == 2 and meta["rounds"] == 1
    assert meta["rows_seen"] == 20_000 and "2 replica(s), 1 round(s), 20,000 rows" in out
    with pytest.raises(SystemExit) as e:  # options of the incremental trainer are refused, by name
        main(["fit", str(small_store), "--strategy", "average", "--no-scale", "--patience", "2",
              "--out", str(model), *sched])
    assert e.value.code == 2
    assert "--scale, --patience apply to --strategy incremental only, not average" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["fit", str(small_store), "--strategy", "average", "--option", "merge_evry=2", "--out", str(model), *sched])
    assert e.value.code == 2 and "merge_evry" in capsys.readouterr().err

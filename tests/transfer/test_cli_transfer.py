"""``daskscale transfer`` on the command line, against the session cluster."""

from __future__ import annotations

import json

import pytest

from daskscale.cli import main
from daskscale.models import load_model, read_metadata


def test_cli_transfer_fine_tunes_reports_and_writes_a_model(blur_stores, client, tmp_path, capsys):
    train, test = blur_stores
    out = tmp_path / "tuned.skops"
    main(["transfer", "digits_mlp", str(train), "--test", str(test), "--rows", "100", "--epochs", "10",
          "--min-steps", "150", "--json", "--out", str(out), "--scheduler", client.scheduler.address])
    res = json.loads(capsys.readouterr().out)
    assert res["pretrained"] == "digits_mlp" and res["rows"] == 100
    assert res["score"] > res["scratch_score"]
    assert res["score"] > res["zero_shot"]
    assert read_metadata(out)["fine_tuned_from"] == "digits_mlp"
    assert load_model(out).score(*_xy(test)) == pytest.approx(res["score"])


def _xy(store):
    from daskscale.storage import load_xy

    X, y = load_xy(store)
    return X.compute(), y.compute()


def test_cli_transfer_curve_prints_the_table(blur_stores, client, capsys):
    train, _ = blur_stores  # no --test: the last 20% of the target is held out
    main(["transfer", "digits_mlp", str(train), "--curve", "--sizes", "25,100", "--epochs", "3",
          "--min-steps", "30", "--scheduler", client.scheduler.address])
    out = capsys.readouterr().out
    assert "fine-tuned digits_mlp" in out and "rows  fraction" in out and "goal" in out


def test_cli_feature_mismatch_is_one_line_and_exit_2(blur_stores, client, capsys):
    train, _ = blur_stores  # 64 pixel features; synthetic_mlp knows 20 features x0..x19
    with pytest.raises(SystemExit) as ex:
        main(["transfer", "synthetic_mlp", str(train), "--scheduler", client.scheduler.address])
    assert ex.value.code == 2
    err = capsys.readouterr().err
    assert "feature mismatch" in err and "(n, 20)" in err and "(480, 64)" in err and "Traceback" not in err

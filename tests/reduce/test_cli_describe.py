"""``daskscale describe STORE`` prints the table, or JSON with --json."""

from __future__ import annotations

import json

import numpy as np

import daskscale
from daskscale.cli import main


def test_cli_describe_json_matches_the_api(small_store, client, capsys):
    addr = client.scheduler.address
    main(["describe", str(small_store), "--json", "--correlation", "--bins", "4", "--scheduler", addr])
    out = json.loads(capsys.readouterr().out)
    t = daskscale.describe(small_store)
    assert out["n_rows"] == 20_000
    np.testing.assert_allclose([out["statistics"][f]["mean"] for f in t.index], t["mean"], rtol=1e-12)
    assert sum(out["classes"].values()) == 20_000
    assert len(out["correlation"]) == 10 and len(out["histogram"]["counts"][0]) == 4


def test_cli_describe_table_and_bad_store(small_store, client, capsys, tmp_path):
    import pytest

    main(["describe", str(small_store), "--quantiles", "0.5", "--scheduler", client.scheduler.address])
    text = capsys.readouterr().out
    assert "20,000 rows" in text and "50%" in text and "x9" in text
    with pytest.raises(SystemExit) as e:
        main(["describe", str(tmp_path / "nope.zarr"), "--scheduler", client.scheduler.address])
    assert e.value.code == 2
    assert "no such store" in capsys.readouterr().err

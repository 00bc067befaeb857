"""``daskscale describe STORE`` prints the table, or JSON with --json."""

from __future__ import annotations

import json

import numpy as np
import pytest

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
    main(["describe", str(small_store), "--quantiles", "0.5", "--scheduler", client.scheduler.address])
    text = capsys.readouterr().out
    assert "20,000 rows" in text and "50%" in text and "x9" in text
    with pytest.raises(SystemExit) as e:
        main(["describe", str(tmp_path / "nope.zarr"), "--scheduler", client.scheduler.address])
    assert e.value.code == 2
    assert "no such store" in capsys.readouterr().err


BAD_INVOCATIONS = {
    "bins not a number": (["--bins", "foo"], "--bins"),
    "bins negative": (["--bins", "-3"], "--bins"),
    "bins zero": (["--bins", "0"], "--bins"),
    "bins a fraction": (["--bins", "2.5"], "--bins"),
    "quantile not a number": (["--quantiles", "0.5,abc"], "abc"),
    "quantile above 1": (["--quantiles", "1.5"], "1.5"),
    "quantile below 0": (["--quantiles", "0.25,-0.1"], "-0.1"),
    "quantile NaN": (["--quantiles", "nan"], "nan"),
}


@pytest.mark.parametrize("case", list(BAD_INVOCATIONS))
def test_cli_describe_bad_input_is_one_line(small_store, client, capsys, case):
    args, named = BAD_INVOCATIONS[case]
    with pytest.raises(SystemExit) as e:
        main(["describe", str(small_store), *args, "--scheduler", client.scheduler.address])
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.strip()]
    assert e.value.code not in (0, None)
    assert len(lines) == 1 and "Traceback" not in captured.err + captured.out, captured.err
    assert named in lines[0] and "describe" in lines[0]


def test_cli_describe_json_reports_infinities(tmp_path, client, capsys):
    X = np.random.default_rng(3).standard_normal((4000, 3)) + [0.0, 50.0, 0.0]
    X[[7, 3000], 1] = np.inf
    X[11, 1] = -np.inf
    X[[5, 6, 2500], 2] = np.nan
    X[100, 2] = np.inf
    store = daskscale.ingest(X, tmp_path / "inf.zarr", chunk_rows=1000)
    main(["describe", str(store), "--json", "--bins", "auto", "--scheduler", client.scheduler.address])
    out = json.loads(capsys.readouterr().out)
    st = out["statistics"]
    assert [(st[f]["n_posinf"], st[f]["n_neginf"], st[f]["missing"]) for f in ("x0", "x1", "x2")] == \
        [(0, 0, 0), (2, 1, 0), (1, 0, 3)]
    h = out["histogram"]
    fin = X[:, 1][np.isfinite(X[:, 1])]
    # the bins span the finite values, not [0, 1]; inf counted beside them
    np.testing.assert_allclose([h["edges"][1][0], h["edges"][1][-1]], [fin.min(), fin.max()], rtol=1e-6)
    assert sum(h["counts"][1]) == fin.size and h["posinf"][1] == 2 and h["neginf"][1] == 1
    assert sum(h["counts"][2]) == 3996 and h["missing"][2] == 3

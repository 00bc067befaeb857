from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd

from daskscale.cli import COMMANDS, cli, main


def run(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "daskscale", *args], capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_every_verb_has_help():
    from click.testing import CliRunner

    r = CliRunner()
    out = r.invoke(cli, ["--help"]).output
    for verb in cli.list_commands(None):
        assert verb in out
        res = r.invoke(cli, [verb, "--help"])
        assert res.exit_code == 0 and "Usage" in res.output, verb
    assert set(cli.list_commands(None)) <= set(COMMANDS)


def test_make_dataset_ingest_info(tmp_path):
    run("make-dataset", str(tmp_path / "g.zarr"), "--rows", "3000", "--features", "4", "--chunk-rows", "1000",
        "--workers", "1", "--memory-limit", "600MiB")
    out = json.loads(run("info", str(tmp_path / "g.zarr"), "--json").stdout)
    assert out["n_rows"] == 3000 and out["n_chunks"] == 3
    pd.DataFrame(np.ones((10, 3)), columns=["a", "b", "t"]).to_csv(tmp_path / "d.csv", index=False)
    p = run("ingest", str(tmp_path / "d.csv"), str(tmp_path / "d.zarr"), "--target", "t", "--workers", "1",
            "--memory-limit", "600MiB")
    assert "rows         10" in p.stdout


def test_bad_input_is_one_line_and_nonzero(tmp_path):
    p = run("info", str(tmp_path / "nope.zarr"), check=False)
    assert p.returncode != 0
    assert p.stderr.strip().count("\n") == 0 and "nope.zarr" in p.stderr and "Traceback" not in p.stderr

"""The README's first command: ``daskscale demo`` runs every step end to end (here on few rows)."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

from daskscale.demo import STEPS


def test_demo_runs_every_step_and_reports_each(tmp_path):
    out = subprocess.run([sys.executable, "-m", "daskscale", "demo", "--rows", "60000", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = out.stdout.split("== report ==")[1]
    for step in STEPS:  # one report line per step, with its time and its first result line
        title = importlib.import_module(f"daskscale.demo.step_{step}").TITLE
        assert re.search(rf"^  {re.escape(title)} +\d+\.\d s   \S", report, re.M), (title, report)
    assert "skipped" not in report and "Traceback" not in out.stderr
    assert re.search(r"data-parallel fit \d+\.\d\dx faster on 2 workers \(.+medians of 3\), held-out accuracy "
                     r"0\.\d{4} vs 0\.\d{4}", report)
    assert (tmp_path / "parallel-train.zarr").is_dir()  # the workers read a store, not a dask graph

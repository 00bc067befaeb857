"""The README's Python example runs as written: saved as a script, twice in a row."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def example_code() -> str:
    text = README.read_text()
    section = text[text.index("## In ten lines"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_as_a_script_twice(tmp_path):
    script = tmp_path / "example.py"
    script.write_text(example_code())
    for run in (1, 2):  # the second run must replace what the first wrote
        p = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300, env={**os.environ, "DASKSCALE_PROGRESS": "0"})
        assert p.returncode == 0, f"run {run}:\n{p.stderr[-3000:]}"
        assert "Traceback" not in p.stderr and "Nanny failed to start" not in p.stderr, p.stderr[-3000:]
        assert "200,000" in p.stdout or "200000" in p.stdout, p.stdout  # info() printed the rows
    from daskscale.storage import load_xy

    X, y = load_xy(tmp_path / "sales.zarr")
    assert X.shape == (3, 2) and y.compute().tolist() == [1, 0, 1]
    assert load_xy(tmp_path / "data.zarr")[0].shape == (200_000, 20)

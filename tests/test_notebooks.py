"""Execute every notebook in notebooks/ (small sizes: DASKSCALE_NB_SMALL=1) and fail on any error.

Also the tool that saves a notebook executed, at full size, for readers:
``python tests/test_notebooks.py notebooks/00_quickstart.ipynb``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def execute(path: Path, *, small: bool, cwd: Path, timeout: int = 900):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = {"DASKSCALE_NB_SMALL": "1" if small else "0", "DASKSCALE_PROGRESS": "0" if small else "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nb = execute(path, small=True, cwd=tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "the notebook printed nothing"


def test_saved_notebooks_have_outputs():
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), f"{path.name} is not saved executed"


if __name__ == "__main__":
    import nbformat

    for arg in sys.argv[1:]:
        p = Path(arg).resolve()
        nb = execute(p, small=False, cwd=p.parent)
        nbformat.write(nb, p)
        print("saved executed", p)

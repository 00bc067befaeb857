"""Execute every notebook in notebooks/ (small sizes: DASKSCALE_NB_SMALL=1) and fail on any error.

The saved notebooks (the committed files, executed at full size) and the small runs are also
checked for outputs a reader must not see: warnings, tracebacks, distributed's log noise
(memory warnings, "killing" workers, a dashboard port already in use) and absolute paths of
the machine a notebook ran on.

Also the tool that saves a notebook executed, at full size, for readers:
``python tests/test_notebooks.py notebooks/00_quickstart.ipynb``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

#: what no output may contain, each with the reason a reader should not see it
FORBIDDEN = {
    r"Warning|WARNING": "a warning",
    r"warnings\.warn": "a warning's source line",
    r"Traceback": "a traceback",
    r"(?i)\bkilling\b": "a worker killed at close",
    r"Port \d+ is already in use": "a dashboard port clash",
    r"/tmp/|/work/|/root/|/home/": "an absolute path of the machine it ran on",
}
#: text kinds of rich outputs (images are base64 and are not searched)
TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "application/json")


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


def output_texts(nb) -> list[tuple[int, str, str]]:
    """``(cell index, output kind, text)`` of every output of every code cell."""
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for o in cell.get("outputs", []):
            if o.output_type == "stream":
                out.append((i, o.name, o.text))
            elif o.output_type == "error":
                out.append((i, "error", "\n".join([f"{o.ename}: {o.evalue}", *o.traceback])))
            else:
                for kind in TEXT_TYPES:
                    if kind in o.get("data", {}):
                        text = o.data[kind]
                        out.append((i, kind, text if isinstance(text, str) else repr(text)))
    return out


def problems(nb) -> list[str]:
    """Each forbidden pattern found in an output, with the cell it is in and its line."""
    found = []
    for i, kind, text in output_texts(nb):
        for pattern, what in FORBIDDEN.items():
            for m in re.finditer(pattern, text):
                line = text[text.rfind("\n", 0, m.start()) + 1:].split("\n", 1)[0]
                found.append(f"cell {i} ({kind}): {what}: {line.strip()[:160]!r}")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path):
    nb = execute(path, small=True, cwd=tmp_path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "the notebook printed nothing"
    stderr = [t for _, kind, t in output_texts(nb) if kind == "stderr"]
    assert not [s for s in stderr if re.search(r"Warning|WARNING|warnings\.warn|Traceback", s)], stderr
    assert not problems(nb)


def test_saved_notebooks_have_outputs():
    import nbformat

    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.get("execution_count") for c in code), f"{path.name} is not saved executed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_saved_notebook_outputs_are_clean(path):
    import nbformat

    assert not problems(nbformat.read(path, as_version=4))


def test_problems_finds_each_kind_of_noise():
    import nbformat

    noise = [
        "2026-11-25 06:43:31,815 - distributed.worker.memory - WARNING - Unmanaged memory use is high.",
        "/x/distributed/node.py:195: UserWarning: Port 8787 is already in use.\n  warnings.warn(",
        "2026-11-25 07:55:43,940 - distributed.nanny - WARNING - Worker process still alive after 4.0 seconds, "
        "killing",
        "Traceback (most recent call last):",
        "store        /tmp/quickstart-oe6bjw5l/synthetic.zarr",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stderr", text=t) for t in noise])])
    assert len({p.split(":")[1] for p in problems(nb)}) == len(FORBIDDEN)
    clean = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="store data.zarr: 4,000,000 rows, killed: exit -9")])])
    assert problems(clean) == []


if __name__ == "__main__":
    import nbformat

    # a saved notebook keeps results, not the first frame of each progress bar
    os.environ.setdefault("DASKSCALE_PROGRESS", "0")

    for arg in sys.argv[1:]:
        p = Path(arg).resolve()
        nb = execute(p, small=False, cwd=p.parent)
        nbformat.write(nb, p)
        print("saved executed", p)

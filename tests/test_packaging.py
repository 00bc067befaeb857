"""The wheel carries the shipped data: a non-editable install (asv builds a wheel) has every CSV,
the model zoo and the data README, and finds them inside the installed package.

The wheel is built for real, offline, with the setuptools of this environment. It is built from a
copy of the repository's sources in a temporary folder, not in the work tree: setuptools reuses
``build/lib`` between builds, so a stale copy of the data there would hide a broken
``package-data`` setting.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from daskscale.datasets.real import REAL_DATASETS, datasets_dir
from daskscale.transfer.zoo import RECIPES

ROOT = Path(__file__).resolve().parents[1]
DATA_IN_WHEEL = "daskscale/datasets/data"
# what a clean checkout would not have: environments, caches, build leftovers
NOT_SOURCES = shutil.ignore_patterns(".venv", ".asv", ".git", "build", "dist", "*.egg-info", "__pycache__",
                                     ".hypothesis", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints",
                                     "dask-worker-space", "*.zarr")


def _data_files_on_disk() -> dict[str, Path]:
    """``{name inside the wheel: file}`` for every file of the shipped data folder."""
    root = datasets_dir()
    return {f"{DATA_IN_WHEEL}/{p.relative_to(root).as_posix()}": p
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel ``pip wheel --no-deps --no-build-isolation --no-index`` builds from the sources."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, out = tmp / "src", tmp / "dist"
    shutil.copytree(ROOT, src, ignore=NOT_SOURCES)
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(out)], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, (
        f"pip wheel failed (it needs setuptools and wheel in this environment):\n{proc.stdout[-3000:]}"
        f"\n{proc.stderr[-3000:]}")
    (whl,) = out.glob("daskscale-*.whl")
    return whl


def test_wheel_holds_every_shipped_data_file_byte_for_byte(wheel):
    on_disk = _data_files_on_disk()
    # the folder itself is complete, so the comparison below is not vacuous
    names = {Path(n).name for n in on_disk}
    assert {file for file, _, _ in REAL_DATASETS.values()} <= names
    assert {f"{name}.skops" for name in RECIPES} <= names
    assert f"{DATA_IN_WHEEL}/README.md" in on_disk
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = set(zf.namelist())
        missing = sorted(set(on_disk) - in_wheel)
        assert not missing, f"{wheel.name} lacks {missing}: add them to [tool.setuptools.package-data]"
        for name, path in on_disk.items():
            assert zf.read(name) == path.read_bytes(), f"{name} in {wheel.name} differs from {path}"


def test_package_installed_from_the_wheel_finds_its_data_inside_itself(wheel, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)  # a pure-Python wheel installs by unpacking it onto sys.path
    probe = (
        "import json, daskscale\n"
        "from daskscale.datasets.real import datasets_dir, load_stream, real_dataset_path\n"
        "from daskscale.transfer.zoo import load_pretrained, models_dir\n"
        "X, y, _ = load_stream('phishing')\n"
        "print(json.dumps({'package': daskscale.__file__, 'data': str(datasets_dir()),\n"
        "                  'wine': str(real_dataset_path('wine')[0]), 'models': str(models_dir()),\n"
        "                  'rows': len(y), 'zoo_score': load_pretrained('digits_mlp').metadata['score']}))\n"
    )
    # run outside the repository (cwd is the first entry of sys.path) with the unpacked wheel
    # first on the path, ahead of the editable install of the work tree
    env = {**os.environ, "PYTHONPATH": str(site), "DASKSCALE_PROGRESS": "0"}
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    package = (site / "daskscale").resolve()
    assert Path(got["package"]).resolve().parent == package, "the probe imported the work tree, not the wheel"
    assert Path(got["data"]) == package / "datasets" / "data"
    assert Path(got["wine"]).is_relative_to(package) and Path(got["wine"]).is_file()
    assert Path(got["models"]) == package / "datasets" / "data" / "models"
    assert got["rows"] == 1250 and got["zoo_score"] > 0.85

"""The model zoo: committed files load safely, carry their metadata, and rebuild from the recipe."""

from __future__ import annotations

import numpy as np
import pytest

from daskscale.models import untrusted_types
from daskscale.transfer.zoo import RECIPES, build, load_pretrained, models_dir


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_zoo_file_is_small_safe_and_described(name):
    path = models_dir() / f"{name}.skops"
    assert path.exists(), f"run python -m daskscale.transfer.zoo build {name}"
    assert path.stat().st_size < 2**20
    assert untrusted_types(path) == []
    pre = load_pretrained(name)
    meta = pre.metadata
    for key in ("features", "classes", "source_task", "score", "recipe", "kind"):
        assert key in meta, key
    assert meta["recipe"]["command"] == f"python -m daskscale.transfer.zoo build {name}"
    assert len(meta["features"]) == pre.model.n_features_in_
    assert list(pre.model.classes_) == meta["classes"]
    assert meta["score"] > 0.85


def test_real_dataset_model_is_in_the_zoo():
    meta = load_pretrained("digits_mlp").metadata
    assert "digits.csv" in meta["source_task"]
    assert meta["features"][:2] == ["pixel_0_0", "pixel_0_1"]


def test_recipe_rebuilds_the_committed_model(tmp_path):
    path = build("digits_0_4_mlp", tmp_path)
    new, old = load_pretrained(path), load_pretrained("digits_0_4_mlp")
    assert new.metadata["score"] == old.metadata["score"]
    for a, b in zip(new.model[-1].coefs_, old.model[-1].coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_missing_zoo_model_says_how_to_build(tmp_path):
    from daskscale.errors import DaskscaleError

    with pytest.raises(DaskscaleError, match="python -m daskscale.transfer.zoo build digits_mlp"):
        load_pretrained("digits_mlp", directory=tmp_path)

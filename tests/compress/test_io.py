"""Compressed model files: small on disk, loaded safely, and files of the older format still load."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from daskscale.compress import compress, save_compressed
from daskscale.models import load_model, read_metadata

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name", ["v1_int8_sparse_mlp", "v1_int8_dense_linear"])
def test_files_of_the_affine_v1_format_load_and_predict_as_when_written(name, tmp_path):
    path = DATA / f"{name}.skops"
    meta = read_metadata(path)
    X = np.random.default_rng(0).normal(size=(40, 12)).astype(np.float32)
    model = load_model(path)
    assert any(q.zero_point is not None for q in model.layers_)  # really the old affine form
    np.testing.assert_array_equal(model.predict(X), np.asarray(meta["predict"], dtype=model.predict(X).dtype))
    if "predict_proba" in meta:
        np.testing.assert_allclose(model.predict_proba(X), meta["predict_proba"], rtol=1e-6)
    # re-saved in the current format, it predicts the same (zero points kept, not re-quantized)
    again = load_model(save_compressed(model, tmp_path / "again.skops"))
    np.testing.assert_array_equal(again.predict(X), model.predict(X))


def test_file_holds_one_weight_array_and_small_fixed_parts(digits_mlp, tmp_path):
    path = save_compressed(compress(digits_mlp, quantize="int8"), tmp_path / "m.skops")
    with zipfile.ZipFile(path) as z:
        arrays = [i for i in z.infolist() if i.filename.endswith(".npy")]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    # classes_ and the packed layers: one array holds every layer's weights, scales and biases
    assert len(arrays) == 2
    # a byte a weight; per-channel scales and biases (float16) and the index add under 8%
    weights = 64 * 256 + 256 * 10
    assert max(i.file_size for i in arrays) < 1.08 * weights


@pytest.mark.parametrize("mode", ["int8", "float16", "float32"])
def test_saved_and_loaded_model_predicts_exactly_the_same(digits_mlp, digits, tmp_path, mode):
    _, Xte, _, _ = digits
    c = compress(digits_mlp, quantize=mode)
    back = load_model(save_compressed(c, tmp_path / f"{mode}.skops"))
    np.testing.assert_array_equal(back.predict_proba(Xte), c.predict_proba(Xte))
    np.testing.assert_array_equal(back.__getstate__()["packed_"], c.__getstate__()["packed_"])  # same bytes

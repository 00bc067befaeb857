"""Model and checkpoint files never run code on load: a crafted pickle and an untrusted skops type."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier

from daskscale.errors import UnsafeModelError
from daskscale.models import load_model, save_model


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        # what a malicious model file does: run code at unpickling time
        return (open, (str(self.marker), "w"))


def test_crafted_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    for name in ("model.skops", "model.pkl", "checkpoint.skops"):
        p = tmp_path / name
        p.write_bytes(pickle.dumps(_Payload(marker)))
        with pytest.raises(UnsafeModelError):
            load_model(p)
    assert not marker.exists(), "loading a model file ran code"


def _fake_archive(path, marker):
    """A pickle hidden inside a zip that looks like a skops archive."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("schema.json", "{}")
        z.writestr("payload.pkl", pickle.dumps(_Payload(marker)))
    return path


def test_pickle_inside_a_fake_skops_archive_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(UnsafeModelError):
        load_model(_fake_archive(tmp_path / "zipped.skops", marker))
    assert not marker.exists(), "loading a model file ran code"


def test_fake_skops_archive_is_refused_with_a_clear_error(tmp_path):
    with pytest.raises(UnsafeModelError):
        load_model(_fake_archive(tmp_path / "zipped.skops", tmp_path / "pwned"))


def test_skops_file_with_an_untrusted_type_is_refused(tmp_path):
    import fractions

    from skops.io import dump

    p = tmp_path / "odd.skops"
    dump({"coef": np.ones(3), "hidden": fractions.Fraction(1, 3)}, p)
    with pytest.raises(UnsafeModelError, match="fractions.Fraction"):
        load_model(p)
    ok = save_model(SGDClassifier().fit(np.eye(2), [0, 1]), tmp_path / "ok.skops")
    assert type(load_model(ok)).__name__ == "SGDClassifier"

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier

from daskscale.errors import UnsafeModelError
from daskscale.models import load_model, read_metadata, save_model


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_roundtrip_keeps_predictions_and_metadata(tmp_path):
    X = np.random.default_rng(0).random((200, 4))
    y = (X[:, 0] > 0.5).astype(int)
    for m in (SGDClassifier(random_state=0).fit(X, y), MLPClassifier((5,), max_iter=50, random_state=0).fit(X, y)):
        p = save_model(m, tmp_path / f"{type(m).__name__}.skops", metadata={"features": ["a", "b", "c", "d"]})
        m2 = load_model(p)
        np.testing.assert_array_equal(m.predict(X), m2.predict(X))
        assert read_metadata(p)["features"] == ["a", "b", "c", "d"]


def test_pickle_file_is_refused_and_never_run(tmp_path, capsys):
    p = tmp_path / "evil.skops"
    p.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UnsafeModelError, match="not a daskscale model file"):
        load_model(p)
    assert "pwned" not in capsys.readouterr().out


def test_untrusted_type_is_refused(tmp_path):
    import collections

    from skops.io import dump

    p = tmp_path / "odd.skops"
    dump({"f": np.ones(2), "c": collections.Counter("ab"), "d": __import__("fractions").Fraction(1, 3)}, p)
    with pytest.raises(UnsafeModelError, match="fractions.Fraction"):
        load_model(p)


def test_save_is_atomic(tmp_path):
    p = tmp_path / "m.skops"
    save_model(SGDClassifier().fit(np.eye(2), [0, 1]), p)
    before = p.read_bytes()
    with pytest.raises(TypeError):
        save_model(SGDClassifier(), p, metadata={"bad": object()})
    assert p.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["m.skops"]

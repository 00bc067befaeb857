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


# ------------------------------------------------------------------ every kind daskscale saves
def _kinds():
    """name -> builder(store, X, y, folder) returning (saved file, object to compare, loader)."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from daskscale.learn.estimators import make_estimator
    from daskscale.learn.strategies import make_trainer

    def incremental(name, **kw):
        def fit(store, X, y, d):
            from daskscale.learn.incremental import Incremental

            est = make_estimator(name, random_state=0, **kw)
            if name == "multinomial-nb":
                return Incremental(est, epochs=1, random_state=0, progress=False).fit(np.abs(X), y)
            return Incremental(est, epochs=1, random_state=0, progress=False, scale=True).fit(store)
        return fit

    def strategy(strat, name="sgd-classifier", **kw):
        return lambda store, X, y, d: make_trainer(strat, make_estimator(name, random_state=0), epochs=1,
                                                   random_state=0, **kw).fit(store)

    def compressed(model, **kw):
        def fit(store, X, y, d):
            from daskscale.compress import compress

            return compress(model().fit(X, y), **kw)
        return fit

    def transfer(store, X, y, d):
        from daskscale.transfer import fine_tune

        pipe = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier((4,), max_iter=20, random_state=0))])
        return fine_tune(pipe.fit(X, y), X, y, epochs=1)

    def sparse_coef(store, X, y, d):
        return SGDClassifier(penalty="l1", alpha=0.05, random_state=0).fit(X, y).sparsify()

    kinds = {f"incremental-{n}": incremental(n) for n in ("sgd-classifier", "sgd-regressor", "perceptron",
                                                          "passive-aggressive", "bernoulli-nb", "multinomial-nb",
                                                          "minibatch-kmeans")}
    kinds["incremental-mlp-classifier"] = incremental("mlp-classifier", hidden_layer_sizes=(3,))
    kinds["incremental-mlp-regressor-sgd"] = incremental("mlp-regressor", hidden_layer_sizes=(3,), solver="sgd")
    kinds["incremental-incremental-pca"] = incremental("incremental-pca", n_components=2)
    kinds.update({
        "averaged-classifier": strategy("average"),
        "averaged-regressor": strategy("average", "sgd-regressor"),
        "exact-logistic": strategy("exact"),
        "exact-linear": strategy("exact", "sgd-regressor"),
        "one-vs-rest": strategy("ovr"),
        "bagging": strategy("ensemble", n_estimators=2),
        "feature-sharded": strategy("feature-sharded"),
        "auto": strategy("auto"),
        "compressed-mlp-int8-pruned": compressed(lambda: MLPClassifier((6,), max_iter=30, random_state=0),
                                                 sparsity=0.5, quantize="int8"),
        "compressed-sgd-float16": compressed(lambda: SGDClassifier(random_state=0), quantize="float16"),
        "transfer-fine-tuned": transfer,
        "sparse-coefficients": sparse_coef,
    })
    return kinds


KINDS = _kinds()


@pytest.fixture(scope="module")
def kind_data(client, tmp_path_factory):
    from daskscale.datasets import make_classification

    d = tmp_path_factory.mktemp("kinds")
    store = make_classification(2_000, 5, chunk_rows=500, seed=0, store=d / "s.zarr")
    X = np.random.default_rng(1).normal(size=(200, 5))
    return store, X, (X[:, 0] > 0).astype(int)


def _same_predictions(a, b, X):
    X = X.astype(np.float32)  # what the store-trained models saw (KMeans refuses to mix dtypes)
    try:
        expected, got = a.predict(X), b.predict(X)
    except AttributeError:  # a transformer (IncrementalPCA), possibly wrapped
        expected, got = a.transform(X), b.transform(X)
    np.testing.assert_array_equal(expected, got)


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_model_kind_round_trips(kind, kind_data, tmp_path):
    """Every kind of model daskscale saves loads back under the exact-name trust list."""
    from daskscale.compress import save_compressed

    store, X, y = kind_data
    model = KINDS[kind](store, X, y, tmp_path)
    for save in (save_model, save_compressed):
        p = save(model, tmp_path / f"{kind}.skops", metadata={"kind": kind})
        _same_predictions(model, load_model(p), X)
        assert read_metadata(p)["kind"] == kind


def test_checkpoints_round_trip(kind_data, tmp_path):
    """Incremental and OnlineLearner checkpoints go through the same loader and load back."""
    from daskscale.learn.estimators import make_estimator
    from daskscale.learn.incremental import Incremental, load_checkpoint
    from daskscale.online import OnlineLearner, StoreSource

    store, X, y = kind_data
    inc = Incremental(make_estimator("sgd-classifier", random_state=0), epochs=1, checkpoint=tmp_path / "ck",
                      checkpoint_every=1, random_state=0, progress=False, scale=True).fit(store)
    est, plan, state = load_checkpoint(tmp_path / "ck")
    assert type(est) is type(inc.estimator_) and plan["n_blocks"] == 4 and state
    for detector, reaction in (("adwin", "background"), ("ddm", "retrain"), ("page-hinkley", "reset"), (None, None)):
        learner = OnlineLearner(make_estimator("sgd-classifier", random_state=0), drift_detector=detector,
                                reaction=reaction, publish=False)
        learner.run(StoreSource(store), checkpoint=tmp_path / "learner.skops", max_batches=3)
        back = OnlineLearner.load(tmp_path / "learner.skops")
        assert back.n_batches_ == learner.n_batches_ == 3
        _same_predictions(learner.estimator_, back.estimator_, X)

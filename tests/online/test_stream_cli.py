"""``daskscale stream --preprocess``: scaled features for linear models, raw ones for naive Bayes of counts."""

from __future__ import annotations

import pytest

from daskscale.cli import main
from daskscale.online import OnlineLearner


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from daskscale.datasets.stream import stream_to_store

    return stream_to_store(tmp_path_factory.mktemp("stream-cli") / "s.zarr", 2_000, 4, batch_rows=500)


def _stream(args, client, capsys):
    try:
        code = main(["stream", *map(str, args), "--scheduler", client.scheduler.address, "--drift", "none"])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code or 0, out.out, out.err


@pytest.mark.parametrize("model, flag, scaled", [
    ("sgd-classifier", [], True),                         # default for a linear model: scaled
    ("sgd-classifier", ["--preprocess", "none"], False),
    ("bernoulli-nb", [], False),                          # default for naive Bayes: raw features
    ("perceptron", ["--preprocess", "standard"], True),
])
def test_stream_scales_features_as_the_model_needs(store, tmp_path, client, capsys, model, flag, scaled):
    code, out, err = _stream(["--source", store, "--checkpoint", tmp_path / "ck", "--model", model, *flag],
                             client, capsys)
    assert code == 0, err
    assert "done: 4 batches, 2,000 rows" in out
    learner = OnlineLearner.load(tmp_path / "ck" / "learner.skops")
    assert learner.preprocess == ("standard" if scaled else None)
    if scaled:  # the scaler learned every row, and checkpoints with the model
        assert learner.features_.scaler.n_samples_seen_ == 2_000
    else:
        assert learner.features_ is None
    assert learner.cumulative_accuracy > 0.5


@pytest.mark.parametrize("model", ["multinomial-nb", "bernoulli-nb"])
def test_scaling_a_naive_bayes_of_counts_is_refused_in_one_line(store, tmp_path, client, capsys, model):
    code, out, err = _stream(["--source", store, "--checkpoint", tmp_path / "ck", "--model", model,
                              "--preprocess", "standard"], client, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert model in lines[0] and "--preprocess none" in lines[0]
    assert not (tmp_path / "ck" / "learner.skops").exists()

"""The one block loop: its typed plan and state, the one partial_fit call, its cheap metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import SGDClassifier, SGDRegressor

from daskscale.engine.loop import Step, TrainPlan, TrainState, run
from daskscale.engine.source import Source
from daskscale.errors import SchemaError


class CountingSGD(SGDClassifier):
    """A real SGDClassifier that records which calls got ``classes``."""

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        self.calls_ = getattr(self, "calls_", []) + [classes is not None]
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)


def test_classes_go_with_the_first_partial_fit_call_only_even_across_epochs_and_resumes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 3))
    y = (X[:, 0] > 0).astype(int)
    src = Source.of(X, y, chunk_rows=100)
    plan = TrainPlan(kind="classifier", train=list(range(6)), classes=[0, 1], epochs=2, batch_size=50, seed=0)
    est, state, hist = run(CountingSGD(random_state=0), src.reader, plan)
    assert est.calls_ == [True] + [False] * 23 and state.fitted and state.blocks_done == 12
    plan.epochs = 3  # resumed from the state (as a checkpoint would): no classes again
    est, state, _ = run(est, src.reader, plan, TrainState.from_dict(json.loads(json.dumps(state.as_dict()))))
    assert est.calls_ == [True] + [False] * 35 and state.epoch == 3


def test_plan_and_state_survive_json_and_ignore_unknown_keys():
    plan = TrainPlan(kind="regressor", train=[0, (5, 1, 2)], val=[3], mean=[0.5], scale=[2.0], batch_size=10)
    back = TrainPlan.from_dict({**json.loads(json.dumps(plan.as_dict())), "from_a_newer_version": 1})
    assert back.as_dict() == {**plan.as_dict(), "train": [0, [5, 1, 2]]}
    state = TrainState(epoch=2, rows_seen=10, fitted=True)
    assert TrainState.from_dict(json.loads(json.dumps(state.as_dict()))) == state


def test_an_estimator_error_names_the_block_and_its_rows():
    X = np.ones((30, 2))
    y = np.array(["a", "b"] * 15)  # a regressor refuses string targets with a ValueError
    src = Source.of(X, np.arange(30.0), chunk_rows=10)
    reader = type("Strings", (), {"n_blocks": 3, "rows": src.reader.rows,
                                  "read": lambda self, i: (X[10 * i:10 * i + 10], y[10 * i:10 * i + 10]),
                                  "block_key": lambda self, i: None})()
    plan = TrainPlan(kind="regressor", train=[0, 1, 2], shuffle=False)
    with pytest.raises(SchemaError, match=r"^block 0 \(rows 0-10\): "):
        run(SGDRegressor(), reader, plan)


def test_pieces_of_blocks_are_trained_on_their_rows_only():
    """Parameter averaging balances shards with pieces (i, part, parts) of blocks: a piece's
    rows are the block's rows it names, and every row of the block is in exactly one piece."""
    X = np.arange(50.0).reshape(25, 2)
    y = np.arange(25.0)
    seen = []

    class Recorder(SGDRegressor):
        def partial_fit(self, X, y, sample_weight=None):
            seen.append(y.copy())
            return super().partial_fit(X, y)

    src = Source.of(X, y, chunk_rows=10)
    run(Recorder(), src.reader, TrainPlan(kind="regressor", train=[(1, 0, 3), (1, 1, 3), (1, 2, 3), 2],
                                          shuffle=False, progressive=False))
    assert [s.tolist() for s in seen] == [[10.0, 11.0, 12.0], [13.0, 14.0, 15.0], [16.0, 17.0, 18.0, 19.0],
                                          list(np.arange(20.0, 25.0))]


def test_step_reports_what_it_trained_and_runs_the_after_hook():
    after = []
    step = Step(SGDClassifier(random_state=0), "classifier", classes=[0, 1], after=lambda est: after.append(est.t_))
    step(np.array([[0.0], [1.0]]), np.array([0, 1]), where="batch 1")
    step(np.array([[0.0], [1.0]]), np.array([1, 0]), where="batch 2")
    assert step.fitted and after == [3.0, 5.0]
    fitted = Step(step.est, "classifier", classes=[0, 1], fitted=None)
    assert fitted.fitted  # asked the estimator: it is fitted, so no classes are sent again


def test_block_loss_is_sklearns_log_loss_without_its_checks():
    from sklearn.metrics import log_loss

    from daskscale.learn.prep import block_loss

    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 4))
    y = rng.choice([3, 7, 9], size=500)
    model = SGDClassifier(loss="log_loss", random_state=0).fit(X, y)
    assert block_loss(model, "classifier", X, y) == pytest.approx(
        log_loss(y, model.predict_proba(X), labels=model.classes_), rel=1e-12)
    hinge = SGDClassifier(random_state=0).fit(X, y)  # no probabilities: the zero-one loss
    assert block_loss(hinge, "classifier", X, y) == pytest.approx(np.mean(hinge.predict(X) != y))


def test_class_discovery_reads_the_target_only(tmp_path, client):
    """Labels alone never reads X: a store whose X chunk is unreadable still yields its classes."""
    import daskscale
    from daskscale.learn.prep import Labels
    from daskscale.reduce import reduce

    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 3))
    path = tmp_path / "s.zarr"
    daskscale.ingest(X, path, y=rng.choice([1, 4, 6], size=400), chunk_rows=100)
    chunk = path / "X" / "c" / "1" / "0"
    chunk.write_bytes(b"not a chunk")
    assert reduce(str(path), [Labels()])["labels"].tolist() == [1, 4, 6]
    with pytest.raises(daskscale.errors.CorruptChunkError):
        daskscale.describe(str(path))


def test_an_after_batch_hook_returning_true_ends_the_run_after_that_batch():
    X = np.random.default_rng(3).normal(size=(400, 2))
    src = Source.of(X, X[:, 0] * 2.0, chunk_rows=100)
    calls = []

    def budget(est):
        calls.append(est.t_)
        return len(calls) == 5

    from daskscale.engine.loop import Hooks

    est, state, hist = run(SGDRegressor(random_state=0), src.reader,
                           TrainPlan(kind="regressor", train=[0, 1, 2, 3], epochs=4, batch_size=30, seed=0),
                           hooks=Hooks(after_batch=budget))
    assert len(calls) == 5 and state.stopped and state.epoch == 1 and est.t_ == calls[-1]

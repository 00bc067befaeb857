"""Checkpoints: atomic, complete, and a killed learner resumes learning every batch exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import SGDClassifier

from daskscale.datasets.stream import stream_batches, stream_to_store
from daskscale.errors import StoreError, UnsafeModelError
from daskscale.models import read_metadata, save_model
from daskscale.online import ADWIN, DDM, OnlineLearner, PageHinkley, StoreSource

ROWS, BATCH = 16_000, 1000


def _cli(*args):
    env = dict(os.environ, DASKSCALE_PROGRESS="0")
    return subprocess.Popen([sys.executable, "-m", "daskscale", "stream", *map(str, args), "--no-dashboard"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for_checkpoint(path, min_batches, proc, timeout=60):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if path.exists():
            try:
                n = read_metadata(path)["n_batches_"]
            except Exception:  # noqa: BLE001 - never happens with atomic writes; retry if it did
                n = -1
            if n >= min_batches:
                return n
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def _reference(store):
    from daskscale.cli.stream import build_estimator

    return OnlineLearner(build_estimator("sgd-classifier", 0), drift_detector="adwin", reaction="background",
                         publish=False).run(StoreSource(store))


def test_killed_learner_resumes_exactly_once(tmp_path):
    store = stream_to_store(tmp_path / "s.zarr", ROWS, 5, batch_rows=BATCH, drift="abrupt")
    ck = tmp_path / "ck"
    args = ["--source", store, "--checkpoint", ck, "--drift", "adwin", "--reaction", "background"]
    proc = _cli(*args, "--rate", 2000)
    killed_at = _wait_for_checkpoint(ck / "learner.skops", 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    at_kill = read_metadata(ck / "learner.skops")["n_batches_"]
    assert killed_at <= at_kill < ROWS // BATCH, "the learner was not killed part-way"

    proc = _cli(*args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"resuming from {ck / 'learner.skops'}: {at_kill} batches" in out

    resumed, ref = OnlineLearner.load(ck / "learner.skops"), _reference(store)
    positions = [h["position"] for h in resumed.history_]
    assert positions == list(range(BATCH, ROWS + 1, BATCH))  # every batch once, none lost, none twice
    assert resumed.n_rows_ == ROWS and resumed.position_ == ROWS
    assert positions == [h["position"] for h in ref.history_]
    np.testing.assert_array_equal(resumed.estimator_.coef_, ref.estimator_.coef_)
    np.testing.assert_array_equal(resumed.estimator_.intercept_, ref.estimator_.intercept_)
    assert resumed.cumulative_accuracy == ref.cumulative_accuracy
    assert resumed.events_ == ref.events_


def test_ctrl_c_stops_a_follower_with_a_checkpoint(tmp_path):
    store = stream_to_store(tmp_path / "f.zarr", 5000, 4, batch_rows=1000, close=False)
    ck = tmp_path / "ck"
    proc = _cli("--source", store, "--checkpoint", ck, "--follow")
    _wait_for_checkpoint(ck / "learner.skops", 5, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped by Ctrl-C" in out and "batch     4" in out
    meta = read_metadata(ck / "learner.skops")
    assert meta["n_batches_"] == 5 and meta["position_"] == 5000


def test_cli_learns_from_a_folder_and_counts_corrupt_files(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (X, y) in enumerate(stream_batches(3000, 3, batch_rows=500)):
        df = pd.DataFrame(X, columns=["a", "b", "c"]).assign(y=y)
        df.to_parquet(folder / f"{i:03d}.parquet")
    (folder / "003.parquet").write_bytes(b"PAR1 half-written")
    from click.testing import CliRunner

    from daskscale.cli.stream import stream

    res = CliRunner().invoke(stream, ["--source", str(folder), "--checkpoint", str(tmp_path / "ck"),
                                      "--settle-seconds", "0", "--no-dashboard"])
    assert res.exit_code == 0, res.output
    out = res.output
    meta = read_metadata(tmp_path / "ck" / "learner.skops")
    assert meta["n_batches_"] == 5 and meta["n_skipped_"] == 1 and meta["skipped_"][0]["where"] == "003.parquet"
    assert sorted(meta["position_"]) == [f"{i:03d}.parquet" for i in range(6)]
    assert "1 skipped" in out


@pytest.mark.parametrize("detector", [DDM(min_rows=500), PageHinkley(threshold=0.2), ADWIN()])
def test_checkpoint_round_trip_continues_identically(tmp_path, detector):
    bs = [(X, y if i < 12 else 1 - y) for i, (X, y) in enumerate(stream_batches(12_000, 4, batch_rows=500, seed=2))]
    kw = dict(reaction="retrain", recent=3, label_delay=1, publish=False)
    full = OnlineLearner(SGDClassifier(random_state=0), drift_detector=type(detector)(**detector.get_params()), **kw).run(bs)
    half = OnlineLearner(SGDClassifier(random_state=0), drift_detector=detector, **kw).run(bs[:10])
    half.save(tmp_path / "c.skops")
    back = OnlineLearner.load(tmp_path / "c.skops")
    assert back.detector_.get_state() == half.detector_.get_state()
    for i, (X, y) in enumerate(bs[10:], start=10):
        back.learn_batch(X, y, position=i + 1, where=f"item {i}")
    np.testing.assert_array_equal(back.estimator_.coef_, full.estimator_.coef_)
    assert back.cumulative_accuracy == full.cumulative_accuracy and back.events_ == full.events_
    np.testing.assert_allclose(back.feature_statistics()["mean"], full.feature_statistics()["mean"])


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path):
    from sklearn.linear_model import SGDClassifier as S

    save_model(S(), tmp_path / "m.skops")
    with pytest.raises(StoreError, match="not an OnlineLearner checkpoint"):
        OnlineLearner.load(tmp_path / "m.skops")
    (tmp_path / "bad.skops").write_bytes(b"\x80\x04 not a zip")
    with pytest.raises(UnsafeModelError):
        OnlineLearner.load(tmp_path / "bad.skops")




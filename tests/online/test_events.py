"""Events to micro-batches: every kind of event, size and time limits, pull and push."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

import daskscale
from daskscale.datasets.stream import stream_to_store
from daskscale.errors import SchemaError
from daskscale.online import StoreSource
from daskscale.online.events import EventBatcher, EventSource, EventStream


def _dicts(n, start=0):
    return [{"a": float(i), "b": 2.0 * i, "y": i % 2} for i in range(start, start + n)]


def test_dict_events_fill_batches_of_max_batch_in_order():
    out = list(EventBatcher(max_batch=4, max_latency=60).batches(_dicts(10)))
    assert [len(m) for m in out] == [4, 4, 2]
    assert [m.position for m in out] == [4, 8, 10]
    X = np.concatenate([m.X for m in out])
    np.testing.assert_array_equal(X, np.c_[np.arange(10.0), 2 * np.arange(10.0)])
    np.testing.assert_array_equal(np.concatenate([m.y for m in out]), np.arange(10) % 2)
    assert all(m.X.dtype == np.float64 and m.X.flags.c_contiguous for m in out)
    assert all(m.arrived <= m.newest for m in out) and all(m.lag_rows == len(m) for m in out)


def test_columns_follow_the_first_event_missing_fields_are_nan_and_extra_keys_ignored():
    events = [{"b": 1.0, "a": 2.0, "y": 0}, {"a": 3.0, "y": 1}, {"a": 4.0, "b": 5.0, "zzz": 9.0, "y": 1}]
    b = EventBatcher(max_batch=10)
    (m,) = b.batches(events)
    assert b.features == ["b", "a"]
    np.testing.assert_array_equal(m.X, [[1.0, 2.0], [np.nan, 3.0], [5.0, 4.0]])
    np.testing.assert_array_equal(m.y, [0, 1, 1])


def test_every_kind_of_event_in_one_stream_keeps_arrival_order():
    class Record:  # kafka-python's ConsumerRecord: attributes
        def __init__(self, value):
            self.key, self.value, self.timestamp = None, value, 0

    class Message:  # confluent-kafka's Message: methods
        def __init__(self, value):
            self._v = value

        def value(self):
            return self._v

    events = [
        {"a": 1, "b": 2, "y": 0},
        Record(json.dumps({"a": 3, "b": 4, "y": 1}).encode()),
        Message(json.dumps({"a": 5, "b": 6, "y": 0})),
        {"key": b"k", "value": b'{"a": 7, "b": 8, "y": 1}', "timestamp": 123},
        ({"a": 9, "b": 10}, 0),
        (np.array([11.0, 12.0]), 1),
        (np.array([[13.0, 14.0], [15.0, 16.0]]), np.array([0, 1])),
        {"a": 17, "b": 18, "y": 0},
    ]
    (m,) = EventBatcher(max_batch=100).batches(events)
    np.testing.assert_array_equal(m.X, np.arange(1.0, 19.0).reshape(9, 2))
    np.testing.assert_array_equal(m.y, [0, 1, 0, 1, 0, 1, 0, 1, 0])
    assert m.position == 9


def test_flat_rows_take_the_label_from_the_target_column():
    rows = [(1.0, 2.0, 0), [3.0, 4.0, 1], np.array([5.0, 6.0, 1.0])]
    (m,) = EventBatcher(target=-1).batches(rows)
    np.testing.assert_array_equal(m.X, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(m.y, [0, 1, 1])
    (m,) = EventBatcher(target=None).batches([(1.0, 2.0), (3.0, 4.0)])
    assert m.y is None and m.X.shape == (2, 2)


def test_categorical_fields_are_kept_apart_as_they_are():
    events = [{"x": 1.0, "city": "Oslo", "y": 0}, {"x": 2.0, "city": "Lima", "y": 1}]
    (m,) = EventBatcher(categorical=["city"]).batches(events)
    np.testing.assert_array_equal(m.X, [[1.0], [2.0]])
    assert m.categories.tolist() == [["Oslo"], ["Lima"]]


def test_a_text_feature_names_the_events_and_the_fix():
    with pytest.raises(SchemaError, match=r"events 0\.\.1.*categorical="):
        list(EventBatcher().batches([{"x": 1.0, "y": 0}, {"x": "oops", "y": 1}]))
    with pytest.raises(SchemaError, match="event 0"):
        list(EventBatcher().batches([np.zeros((2, 2, 2))]))


def test_a_slow_stream_closes_micro_batches_on_time():
    def slow():
        for e in _dicts(12):
            time.sleep(0.02)
            yield e

    out = list(EventBatcher(max_batch=1000, max_latency=0.05).batches(slow()))
    assert sum(len(m) for m in out) == 12
    # without the time limit this would be one batch of 12; with it, batches of ~3 events
    assert len(out) >= 3 and max(len(m) for m in out) < 12


def test_small_batches_from_a_growing_store_are_regrouped_without_loss(tmp_path):
    path = stream_to_store(tmp_path / "s.zarr", 1000, 3, batch_rows=100, chunk_rows=100)
    out = list(EventBatcher(max_batch=250).batches(StoreSource(path, batch_size=100)))
    assert [len(m) for m in out] == [300, 300, 300, 100]  # a source's batch is never split
    np.testing.assert_array_equal(np.concatenate([m.X for m in out]), daskscale.open_dataset(path).X.values)
    np.testing.assert_array_equal(np.concatenate([m.y for m in out]), daskscale.open_dataset(path).y.values)


def test_event_source_resumes_after_the_events_learned():
    events = _dicts(25)
    src = EventSource(lambda: iter(events), max_batch=10)
    first = next(iter(src))
    assert first.position == 10 and src.position == 10
    again = EventSource(lambda: iter(events), max_batch=10)
    again.seek(10)
    rest = list(again)
    assert [m.position for m in rest] == [20, 25]
    np.testing.assert_array_equal(np.concatenate([first.X] + [m.X for m in rest])[:, 0], np.arange(25.0))


def test_push_stream_learns_every_event_once_from_several_threads():
    got, lock = [], threading.Lock()

    def handler(mb):
        with lock:
            got.append(mb)

    stream = EventStream(handler, max_batch=64, max_latency=0.05)
    threads = [threading.Thread(target=lambda k=k: [stream.put(e) for e in _dicts(500, start=500 * k)])
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stream.close()
    X = np.concatenate([m.X for m in got])
    assert sorted(X[:, 0].tolist()) == list(map(float, range(2000)))
    assert max(len(m) for m in got) <= 64 and got[-1].position == 2000
    assert all(m.lag_rows >= len(m) for m in got)


def test_push_stream_hands_over_a_waiting_batch_while_the_stream_is_silent():
    got = []
    stream = EventStream(got.append, max_batch=1000, max_latency=0.05)
    t0 = time.perf_counter()
    for e in _dicts(3):
        stream.put(e)
    deadline = t0 + 5
    while not got and time.perf_counter() < deadline:
        time.sleep(0.005)
    waited = time.perf_counter() - t0
    try:
        assert [len(m) for m in got] == [3], "no batch handed over by the clock"
        assert waited < 2.0
        assert got[0].arrived >= t0
    finally:
        stream.close()


def test_push_stream_reraises_the_handler_error():
    def handler(mb):
        raise RuntimeError("model exploded")

    stream = EventStream(handler, max_batch=2)
    stream.put({"x": 1.0, "y": 0})
    stream.put({"x": 2.0, "y": 1})
    with pytest.raises(RuntimeError, match="model exploded"):
        stream.close()


def test_bad_limits_are_refused():
    with pytest.raises(SchemaError, match="max_batch"):
        EventBatcher(max_batch=0)


def test_kafka_like_namespace_with_dict_value():
    (m,) = EventBatcher().batches([SimpleNamespace(key=None, value={"x": 1.5, "y": 1}, timestamp=0)])
    np.testing.assert_array_equal(m.X, [[1.5]])
    np.testing.assert_array_equal(m.y, [1])


@pytest.mark.parametrize("value, expected", [
    ("1.5", 1.5), (None, np.nan), (True, 1.0), (np.float32(0.1), float(np.float32(0.1))), (np.int64(3), 3.0),
    (b"2", 2.0), (np.array(2.5), 2.5),
])
def test_values_convert_as_numpy_converts_them(value, expected):
    # the batcher reads the values one by one (np.fromiter): what np.array made of them before
    events = [{"a": 1.0, "b": 2.0, "y": 0}, {"a": value, "b": 4.0, "y": 1}]
    (m,) = EventBatcher(max_batch=10).batches(events)
    np.testing.assert_array_equal(m.X, [[1.0, 2.0], [expected, 4.0]])
    assert m.X.dtype == np.float64 and m.X.flags.c_contiguous and m.X.shape == (2, 2)
    np.testing.assert_array_equal(m.y, [0, 1])


@pytest.mark.parametrize("value", [[1.0], 1 + 2j, "abc", {"x": 1}])
def test_a_value_that_is_not_one_number_names_the_events(value):
    events = [{"a": 1.0, "y": 0}, {"a": 2.0, "y": 1}, {"a": value, "y": 1}]
    with pytest.raises(SchemaError, match=r"events 0\.\.2: a feature of \['a'\] is not a number"):
        list(EventBatcher(max_batch=10).batches(events))


def test_labels_of_every_kind_stay_apart_from_the_features():
    # numbers: one conversion, then the label column is cut off; text or missing labels: features alone
    for ys, dtype in (([0, 1, 2], np.int64), ([0.5, 1.5, 2.5], np.float64), ([True, False, True], np.bool_),
                      (["no", "yes", "no"], np.str_), ([None, 1, 0], object)):
        events = [{"a": float(i), "b": -float(i), "y": t} for i, t in enumerate(ys)]
        (m,) = EventBatcher(max_batch=10).batches(events)
        np.testing.assert_array_equal(m.X, [[0.0, -0.0], [1.0, -1.0], [2.0, -2.0]])
        assert m.X.flags.c_contiguous and m.y.dtype.type is np.dtype(dtype).type and m.y.tolist() == ys
    (m,) = EventBatcher(max_batch=10).batches([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}])
    assert m.y is None and m.X.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    (m,) = EventBatcher(target=None, max_batch=10).batches([{"a": 1.0, "b": 2.0}, {"a": 3.0, "b": 4.0}])
    assert m.y is None and m.X.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_categorical_fields_and_text_labels_with_several_features():
    events = [{"x": 1.0, "z": -1.0, "city": "Oslo", "kind": 3, "y": "a"},
              {"x": 2.0, "city": "Lima", "kind": 4, "z": -2.0, "y": "b"},
              {"x": 3.0, "city": "Rome", "y": "a"}]  # z and kind missing: NaN and None
    (m,) = EventBatcher(categorical=["city", "kind"], max_batch=10).batches(events)
    np.testing.assert_array_equal(m.X, [[1.0, -1.0], [2.0, -2.0], [3.0, np.nan]])
    assert m.categories.tolist() == [["Oslo", 3], ["Lima", 4], ["Rome", None]]
    assert m.y.tolist() == ["a", "b", "a"]


def test_the_latency_limit_closes_a_batch_of_dict_events_at_its_deadline():
    def stream():  # events 2 and 5 come 0.3 s after the ones before them, the others at once
        for i in range(7):
            if i in (2, 5):
                time.sleep(0.3)
            yield {"x": float(i), "y": i % 2}

    out = list(EventBatcher(max_batch=100, max_latency=0.1).batches(stream()))
    # the first event past a batch's deadline (oldest + 0.1 s) is the batch's last
    assert [m.X[:, 0].tolist() for m in out] == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0]]
    assert [m.position for m in out] == [3, 6, 7]
    assert all(m.newest - m.arrived >= 0.1 for m in out[:2])

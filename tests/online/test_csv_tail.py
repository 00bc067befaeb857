"""A growing CSV file read as ``tail -f`` reads it: real files, real writer threads, real learners."""

from __future__ import annotations

import json
import os
import re
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

from daskscale.cli import main
from daskscale.datasets.real import real_dataset_path
from daskscale.errors import DaskscaleWarning, SchemaError
from daskscale.online import Features, IteratorSource, OnlineLearner, OnlineOneHot, as_source
from daskscale.online.csv_tail import CsvTailSource, SourceChangedError

HEADER = "id,value,y\n"


def _rows(start: int, stop: int) -> str:
    # values a partial line would change (12.25 read as 12.2 or 12), labels from the id
    return "".join(f"{i},{i * 0.5 + 0.25},{i % 3 % 2}\n" for i in range(start, stop))


def _write_in_pieces(path, text: str, seed: int, pause: float = 0.002, max_piece: int = 120) -> None:
    """Append ``text`` in random pieces that cut lines anywhere, flushed one by one."""
    rng = np.random.default_rng(seed)
    data, i = text.encode(), 0
    with open(path, "ab") as fh:
        while i < len(data):
            n = int(rng.integers(1, max_piece))
            fh.write(data[i:i + n])
            fh.flush()
            i += n
            time.sleep(pause * rng.random())


def _ids(batches) -> np.ndarray:
    return np.concatenate([b.X[:, 0] for b in batches]).astype(int)


def _writer(target, *args, **kwargs) -> threading.Thread:
    t = threading.Thread(target=target, args=args, kwargs=kwargs, daemon=True)
    t.start()
    return t


def test_rows_appended_while_reading_come_out_once_and_in_order(tmp_path):
    path = tmp_path / "grow.csv"
    path.write_text(HEADER)
    n = 3000
    src = CsvTailSource(path, follow=True, max_batch=16, max_latency=0.01, poll_interval=0.002, idle_timeout=1.0)
    w = _writer(_write_in_pieces, path, _rows(0, n), seed=1)
    batches = list(src)
    w.join()
    ids = _ids(batches)
    np.testing.assert_array_equal(ids, np.arange(n))  # every row once, in file order
    X = np.concatenate([b.X for b in batches])
    np.testing.assert_array_equal(X[:, 1], ids * 0.5 + 0.25)  # no line was read before it was whole
    np.testing.assert_array_equal(np.concatenate([b.y for b in batches]), ids % 3 % 2)
    assert all(len(b) <= 16 for b in batches) and len(batches) > n / 16  # latency closed some batches early
    rows = [b.position["rows"] for b in batches]
    assert rows == list(np.cumsum([len(b) for b in batches]))
    assert batches[-1].position["offset"] == path.stat().st_size and batches[-1].position["line"] == n + 1
    assert src.skipped == []


def test_half_written_line_is_read_only_once_its_newline_comes(tmp_path):
    path = tmp_path / "half.csv"
    path.write_text(HEADER + "0,12.")
    early = CsvTailSource(path, follow=True, poll_interval=0.01, idle_timeout=0.2)
    assert list(early) == [] and early.position["rows"] == 0 and early.position["offset"] == 0

    def finish():
        time.sleep(0.3)
        with open(path, "a") as fh:
            fh.write("25,1\n")

    src = CsvTailSource(path, follow=True, poll_interval=0.01, idle_timeout=1.0)
    w = _writer(finish)
    batches = list(src)
    w.join()
    assert [b.X.tolist() for b in batches] == [[[0.0, 12.25]]] and batches[0].y.tolist() == [1]
    # a complete file (follow=False) has no writer: its last line is a row even without a newline
    with open(path, "a") as fh:
        fh.write("1,0.75,0")
    assert [b.X.tolist() for b in CsvTailSource(path)] == [[[0.0, 12.25], [1.0, 0.75]]]


def test_resume_from_a_saved_position_continues_at_the_next_unread_row(tmp_path):
    path = tmp_path / "resume.csv"
    text = _rows(0, 40)
    path.write_text(HEADER + text[:200] + "\n" + text[200:])  # a blank line is skipped, and counted as a line
    first = CsvTailSource(path, max_batch=7)
    it = iter(first)
    taken = [next(it) for _ in range(3)]
    saved = json.loads(json.dumps(taken[-1].position))  # plain JSON, as a checkpoint keeps it
    assert saved["rows"] == 21 and first.position == saved
    with open(path, "a") as fh:
        fh.write(_rows(40, 60))
    rest = list(CsvTailSource(path, max_batch=7, start=saved))
    np.testing.assert_array_equal(_ids(taken + rest), np.arange(60))
    assert rest[-1].position["rows"] == 60 and rest[-1].position["line"] == 62  # header + blank + 60 rows
    assert rest[0].where == f"resume.csv lines {saved['line'] + 1}-{rest[0].position['line']}"


def test_a_checkpointed_learner_resumes_on_the_grown_file_as_if_never_stopped(tmp_path):
    path, target = real_dataset_path("weather_rain")
    lines = path.read_text().splitlines(keepends=True)[:4001]
    whole, grow = tmp_path / "whole.csv", tmp_path / "grow.csv"
    whole.write_text("".join(lines))
    grow.write_text("".join(lines[:2001]))
    ref = OnlineLearner(publish=False).run(str(whole), target=target)
    ckpt = tmp_path / "learner.skops"
    OnlineLearner(publish=False).run(str(grow), target=target, checkpoint=ckpt, checkpoint_every=1000,
                                     max_batches=20)
    with open(grow, "a") as fh:
        fh.write("".join(lines[2001:]))
    resumed = OnlineLearner.load(ckpt)
    assert resumed.n_rows_ == 640 and resumed.position_["rows"] == 640
    resumed.run(str(grow), target=target)
    assert resumed.n_rows_ == ref.n_rows_ == 4000 and resumed.n_batches_ == ref.n_batches_
    assert resumed.cumulative_accuracy == ref.cumulative_accuracy
    np.testing.assert_array_equal(resumed.estimator_.coef_, ref.estimator_.coef_)


def test_resuming_on_a_rewritten_file_is_refused_or_restarts_when_asked(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(HEADER + _rows(0, 10))
    saved = list(CsvTailSource(path, max_batch=4))[1].position
    path.write_text(HEADER + _rows(100, 130))  # another file under the same name, longer than the position
    with pytest.raises(SourceChangedError, match=re.escape(f"{path} has other bytes before the position")):
        list(CsvTailSource(path, start=saved))
    again = list(CsvTailSource(path, start=saved, on_rotate="restart"))
    np.testing.assert_array_equal(_ids(again), np.arange(100, 130))
    assert again[-1].position["rows"] == saved["rows"] + 30  # rows keep counting across the restart
    path.write_text(HEADER)
    with pytest.raises(SourceChangedError, match=re.escape(f"{path} is {len(HEADER)} bytes long, shorter than the position")):
        list(CsvTailSource(path, start=saved))


def test_truncation_while_following_raises_naming_the_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(HEADER + _rows(0, 20))
    it = iter(CsvTailSource(path, follow=True, max_batch=8, poll_interval=0.01, idle_timeout=3))
    assert len(next(it)) == 8
    path.write_text(HEADER + _rows(0, 2))  # truncated in place (same inode), as copytruncate does
    with pytest.raises(SourceChangedError, match=re.escape(f"{path} was truncated")) as err:
        for _ in it:
            pass
    assert "on_rotate='restart'" in str(err.value)


def test_rotation_raises_or_reads_the_new_file_from_its_start(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text(HEADER + _rows(0, 5))
    strict = iter(CsvTailSource(path, follow=True, poll_interval=0.01, idle_timeout=3, max_latency=0))
    assert _ids([next(strict)]).tolist() == list(range(5))
    os.rename(path, tmp_path / "log.csv.1")
    path.write_text(HEADER + _rows(5, 8))
    with pytest.raises(SourceChangedError, match=re.escape(f"{path} was replaced or moved away")):
        next(strict)

    os.rename(path, tmp_path / "log.csv.2")
    path.write_text(HEADER + _rows(0, 5))
    src = CsvTailSource(path, follow=True, poll_interval=0.01, idle_timeout=0.5, on_rotate="restart")

    def rotate():
        time.sleep(0.2)
        with open(path, "a") as fh:  # rows written just before the rotation are read from the old file
            fh.write(_rows(5, 9))
        os.rename(path, tmp_path / "log.csv.3")
        _write_in_pieces(path, HEADER + _rows(9, 30), seed=2)

    w = _writer(rotate)
    batches = list(src)
    w.join()
    np.testing.assert_array_equal(_ids(batches), np.arange(30))
    assert batches[-1].position["rows"] == 30 and batches[-1].position["line"] == 22  # lines of the new file


BAD_ROWS = [
    ("3,abc,1\n", "line 5, column 'value': 'abc' is not a number"),
    ("3,,1\n", "line 5, column 'value': the value is missing"),
    ("3,nan,1\n", "line 5, column 'value': 'nan' is not a finite number"),
    ("3,1.5\n", "line 5: expected 3 fields (as in the header), found 2"),
    ("3,1.5,1,9\n", "line 5: expected 3 fields (as in the header), found 4"),
    ("3,1.5,yes\n", "line 5, column 'y': the label 'yes' is not an integer"),
    ('3,"1.5,1\n', "line 5: cannot be read as a CSV row"),
]


@pytest.mark.parametrize("bad, message", BAD_ROWS)
def test_a_malformed_row_is_named_by_file_line_and_column(tmp_path, bad, message):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + _rows(0, 3) + bad + _rows(4, 6))
    with pytest.raises(SchemaError, match=re.escape(f"{path}, {message}") + ".*on_bad_rows='skip'"):
        list(CsvTailSource(path))


@pytest.mark.parametrize("bad, message", BAD_ROWS)
def test_skip_mode_warns_and_learns_the_other_rows(tmp_path, bad, message):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + _rows(0, 3) + bad + _rows(4, 6) + bad)
    src = CsvTailSource(path, on_bad_rows="skip", max_batch=2)
    with pytest.warns(DaskscaleWarning) as caught:
        batches = list(src)
    said = [str(w.message) for w in caught if issubclass(w.category, DaskscaleWarning)]
    assert len(said) == 2 and said[0].startswith(f"{path}, {message}")
    assert said[1].startswith(f"{path}, {message.replace('line 5', 'line 8')}") and said[1].endswith("row skipped")
    assert _ids(batches).tolist() == [0, 1, 2, 4, 5]
    assert [s["where"] for s in src.skipped] == ["bad.csv line 5", "bad.csv line 8"]
    assert src.position["line"] == 8 and src.position["offset"] == path.stat().st_size  # past the last bad line


def test_skipped_rows_reach_the_learner_report(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + _rows(0, 50) + "50,oops,1\n" + _rows(51, 100))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DaskscaleWarning)
        ol = OnlineLearner(publish=False).run(str(path), on_bad_rows="skip")
    assert ol.n_rows_ == 99 and ol.skipped_[0]["where"] == "bad.csv line 52"
    assert ol.position_["line"] == 101


def test_text_columns_reach_the_one_hot_step(tmp_path):
    rng = np.random.default_rng(0)
    colour = rng.choice(["red", "green", "blue"], 2000)
    df = pd.DataFrame({"noise": rng.normal(size=2000), "colour": colour, "y": (colour == "red").astype(int)})
    path = tmp_path / "cat.csv"
    df.to_csv(path, index=False)
    with pytest.raises(SchemaError, match=r"line 2, column 'colour': '\w+' is not a number.*categorical="):
        list(CsvTailSource(path))
    src = CsvTailSource(path, categorical=["colour"])
    assert src.features == ["noise"]
    ol = OnlineLearner(preprocess=Features(onehot=[OnlineOneHot()]), publish=False).run(src)
    assert sorted(ol.features_.onehot[0].categories_) == ["blue", "green", "red"]
    assert ol.n_rows_ == 2000 and ol.cumulative_accuracy > 0.95  # the label is the colour: learned from it


def test_header_problems_are_named(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b,label\n1,2,0\n")
    with pytest.raises(SchemaError, match=re.escape(f"{path}, line 1 (the header): no column 'y' (columns: ['a', 'b', 'label'])")):
        CsvTailSource(path)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(SchemaError, match=re.escape(f"{empty} is empty")):
        CsvTailSource(empty)
    assert isinstance(as_source(str(path), target="label"), CsvTailSource)


def test_followed_file_that_starts_empty_waits_for_its_header(tmp_path):
    path = tmp_path / "late.csv"
    path.write_text("")
    src = CsvTailSource(path, follow=True, poll_interval=0.01, idle_timeout=1.0)
    w = _writer(_write_in_pieces, path, HEADER + _rows(0, 50), seed=3, max_piece=7)
    batches = list(src)
    w.join()
    np.testing.assert_array_equal(_ids(batches), np.arange(50))
    assert src.columns == ["id", "value", "y"]


def test_learner_tailing_a_real_stream_scores_as_on_the_complete_file(tmp_path):
    path, target = real_dataset_path("weather_rain")
    text = path.read_text()
    header, body = text.split("\n", 1)
    grow = tmp_path / "weather_rain.csv"
    grow.write_text(header + "\n")
    # full micro-batches only (max_latency=None), so batch boundaries do not depend on timing
    src = CsvTailSource(grow, target=target, follow=True, max_latency=None, poll_interval=0.005, idle_timeout=2.0)
    w = _writer(_write_in_pieces, grow, body, seed=4, pause=0.001, max_piece=4000)
    tailing = OnlineLearner(publish=False).run(src)
    w.join()
    complete = OnlineLearner(publish=False).run(str(path), target=target)
    # an independent reading of the same rows: pandas, in batches of the same size
    df = pd.read_csv(path)
    y, X = df.pop(target).to_numpy(), np.ascontiguousarray(df.to_numpy(dtype=np.float64))
    pieces = [(X[i:i + 32], y[i:i + 32]) for i in range(0, len(X), 32)]
    by_pandas = OnlineLearner(publish=False).run(IteratorSource(pieces))
    assert tailing.n_rows_ == complete.n_rows_ == by_pandas.n_rows_ == 18159
    assert tailing.cumulative_accuracy == complete.cumulative_accuracy == by_pandas.cumulative_accuracy
    assert 0.7 < tailing.cumulative_accuracy < 0.8
    np.testing.assert_array_equal(tailing.estimator_.coef_, complete.estimator_.coef_)
    np.testing.assert_array_equal(tailing.estimator_.coef_, by_pandas.estimator_.coef_)
    assert tailing.position_["offset"] == grow.stat().st_size == path.stat().st_size


def test_stream_cli_learns_a_growing_csv_and_resumes_after_it_grew(tmp_path, capsys):
    path, target = real_dataset_path("phishing")
    lines = path.read_text().splitlines(keepends=True)
    csv_path = tmp_path / "phishing.csv"
    csv_path.write_text("".join(lines[:601]))
    args = ["stream", "--source", str(csv_path), "--target", target, "--checkpoint", str(tmp_path / "ck"),
            "--no-dashboard", "--drift", "none", "--checkpoint-every", "100"]
    assert main(args) in (0, None)
    assert "done: 19 batches, 600 rows" in capsys.readouterr().out
    with open(csv_path, "a") as fh:
        fh.write("".join(lines[601:]))
    assert main(args) in (0, None)
    out = capsys.readouterr().out
    assert "resuming from" in out and "600 rows learned" in out and "1,250 rows" in out
    assert OnlineLearner.load(tmp_path / "ck" / "learner.skops").position_["rows"] == 1250

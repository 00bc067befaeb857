"""A CSV row with the wrong number of fields is an error naming the file and its line."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

import daskscale
from daskscale.errors import SchemaError

GOOD = "".join(f"{i},{i + 1},{i % 2}\n" for i in range(200))  # 200 good rows, lines 2..201


@pytest.mark.parametrize("bad, line, found, blocksize", [
    ("7,8\n", 202, 2, 64 * 2**20),         # too few, one block
    ("7,8\n", 202, 2, 100),                # too few, in a block that starts mid-file
    ("7,8,9,10\n", 202, 4, 64 * 2**20),   # too many
    ("7,8,9,10\n", 202, 4, 100),
    ("7\n", 202, 1, 333),
])
def test_ragged_row_names_file_line_and_field_count(tmp_path, client, bad, line, found, blocksize):
    csv = tmp_path / "r.csv"
    csv.write_text("a,b,y\n" + GOOD + bad + GOOD)
    with pytest.raises(SchemaError) as err:
        daskscale.ingest(csv, tmp_path / "r.zarr", target="y", blocksize=blocksize)
    msg = str(err.value)
    assert f"r.csv, line {line} " in msg and "expected 3 fields" in msg and f"found {found}" in msg, msg
    assert repr(bad.strip()) in msg
    assert not (tmp_path / "r.zarr").exists()


def test_first_row_of_a_block_with_one_field_too_many_is_not_taken_as_an_index(tmp_path, client):
    # pandas silently makes the first column the index when the first data row has one more
    # field than the header, shifting every column by one
    csv = tmp_path / "shift.csv"
    csv.write_text("a,b,y\n1,2,0,9\n3,4,5\n")
    with pytest.raises(SchemaError, match=r"shift\.csv, line 2 .*expected 3 fields.*found 4"):
        daskscale.ingest(csv, tmp_path / "s.zarr", target="y")


def test_line_numbers_count_blank_lines_crlf_and_quoted_newlines(tmp_path, client):
    csv = tmp_path / "odd.csv"
    body = 'a,b,y\r\n1,2,0\r\n\r\n"x\r\ny",3,1\r\n5,6\r\n7,8,1\r\n'
    csv.write_bytes(body.encode())
    with pytest.raises(SchemaError, match=r"odd\.csv, line 6 .*found 2: '5,6'"):
        daskscale.ingest(csv, tmp_path / "o.zarr", target="y", categorical="encode")


def test_gzip_csv_short_row(tmp_path, client):
    path = tmp_path / "z.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("a,b,y\n" + GOOD + "7,8\n")
    with pytest.raises(SchemaError, match=r"z\.csv\.gz, line 202: ragged row: expected 3 fields.*found 2"):
        daskscale.ingest(path, tmp_path / "z.zarr", target="y")


def test_missing_values_are_not_short_rows(tmp_path, client):
    csv = tmp_path / "nan.csv"
    csv.write_text("a,b,y\n1,,0\n2,3,\n4,5,1\n")  # empty fields, right count: NaN, no error
    store = daskscale.ingest(csv, tmp_path / "n.zarr")
    X = daskscale.load_xy(store)[0].compute()
    assert X.shape == (3, 3) and np.isnan(X[0, 1]) and np.isnan(X[1, 2]) and X[2, 2] == 1


def test_fill_opt_in_fills_short_rows_but_still_refuses_long_ones(tmp_path, client):
    csv = tmp_path / "f.csv"
    csv.write_text("a,b,c\n1,2,3\n4\n5,6\n")
    store = daskscale.ingest(csv, tmp_path / "f.zarr", on_short_rows="fill")
    X = daskscale.load_xy(store)[0].compute()
    np.testing.assert_array_equal(np.isnan(X), [[0, 0, 0], [0, 1, 1], [0, 0, 1]])
    (tmp_path / "g.csv").write_text("a,b,c\n4\n1,2,3,4\n")
    with pytest.raises(SchemaError, match=r"g\.csv, line 3 .*found 4"):
        daskscale.ingest(tmp_path / "g.csv", tmp_path / "g.zarr", on_short_rows="fill")
    with pytest.raises(SchemaError, match="on_short_rows must be"):
        daskscale.ingest(csv, tmp_path / "h.zarr", on_short_rows="pad")


def test_bad_block_is_not_logged_by_the_worker(tmp_path, client):
    """The error comes back as a value: no "Compute Failed" block with a traceback on the worker."""
    def failures():
        logs = client.get_worker_logs()
        return sum("Compute Failed" in line and "stage_block" in line for lines in logs.values()
                   for _, line in lines)

    before = failures()
    (tmp_path / "b.csv").write_text("a,b,y\n1,2,0\n3,4\n")
    with pytest.raises(SchemaError, match="line 3"):
        daskscale.ingest(tmp_path / "b.csv", tmp_path / "b.zarr", target="y")
    (tmp_path / "t.csv").write_text("a,b,y\n1,2,\n")
    with pytest.raises(SchemaError, match="missing values"):
        daskscale.ingest(tmp_path / "t.csv", tmp_path / "t.zarr", target="y", on_short_rows="fill")
    assert failures() == before
